//! 1-D max pooling on int8 (TFLM's integer `MaxPool`, CMSIS-NN's `arm_max_pool_s8`).
//!
//! Input `[length][channels]`, output `[out_length][channels]`; each output is the largest
//! in-bounds value of its window (padded taps are ignored), then clamped by the fused
//! activation. Input and output share scale and zero point.

use super::error::KernelError;
use super::params::{window_bounds, Pool1dParams};

/// Scratch bytes [`max_pool`] needs: 0.
pub const fn scratch_len(_params: &Pool1dParams) -> usize {
    0
}

/// Runs max pooling.
///
/// Errors, before writing anything, on a zero dimension, an invalid clamp, a window longer
/// than the padded input, or a buffer of the wrong length.
pub fn max_pool(params: &Pool1dParams, input: &[i8], output: &mut [i8]) -> Result<(), KernelError> {
    let (_, pad) = params.check(input, output)?;
    let ch = params.channels;
    let mut start = 0usize;
    for out_row in output.chunks_exact_mut(ch) {
        let (lo, hi) = window_bounds(start, params.window, pad, params.length);
        let rows = input.get(lo * ch..hi * ch).unwrap_or(&[]);
        for (c, y) in out_row.iter_mut().enumerate() {
            let max = rows
                .chunks_exact(ch)
                .filter_map(|row| row.get(c).copied())
                .fold(i8::MIN, i8::max);
            *y = max.clamp(params.clamp.min, params.clamp.max);
        }
        start = start.saturating_add(params.stride);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::error::Param;
    use super::super::params::{Clamp, Padding};
    use super::super::test_util::*;
    use super::*;
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    fn reference(p: &Pool1dParams, x: &[i8]) -> Option<Vec<i8>> {
        let (pad, out_len) = naive_geometry(p.length, p.window, p.stride, 1, p.padding)?;
        let mut out = vec![0i8; out_len * p.channels];
        for t in 0..out_len {
            for c in 0..p.channels {
                let mut best: Option<i64> = None;
                for k in 0..p.window {
                    let pos = (t * p.stride + k) as i64 - pad;
                    if pos >= 0 && pos < p.length as i64 {
                        let v = i64::from(x[pos as usize * p.channels + c]);
                        best = Some(best.map_or(v, |b| b.max(v)));
                    }
                }
                let v = best.expect("every window has an in-bounds tap");
                out[t * p.channels + c] =
                    v.clamp(i64::from(p.clamp.min), i64::from(p.clamp.max)) as i8;
            }
        }
        Some(out)
    }

    proptest! {
        #[test]
        fn matches_naive_reference((p, x) in pool_case()) {
            match reference(&p, &x) {
                Some(expected) => {
                    let mut out = vec![0i8; expected.len()];
                    max_pool(&p, &x, &mut out).unwrap();
                    prop_assert_eq!(out, expected);
                }
                None => {
                    let mut out = vec![0i8; 1];
                    let result = max_pool(&p, &x, &mut out);
                    let is_too_long = matches!(result, Err(KernelError::WindowTooLong { .. }));
                    prop_assert!(is_too_long);
                }
            }
        }

        #[test]
        fn wrong_lengths_are_errors(
            (p, x) in pool_case(),
            longer in any::<bool>(),
            out_side in any::<bool>(),
        ) {
            prop_assume!(reference(&p, &x).is_some());
            let mut x = x;
            let mut out_len = p.output_len().unwrap();
            match (out_side, longer) {
                (false, true) => x.push(0),
                (false, false) => { x.pop(); }
                (true, true) => out_len += 1,
                (true, false) => out_len -= 1,
            }
            let mut out = vec![7i8; out_len];
            let is_len_error =
                matches!(max_pool(&p, &x, &mut out), Err(KernelError::BufferLen { .. }));
            prop_assert!(is_len_error);
            prop_assert!(out.iter().all(|&v| v == 7));
        }
    }

    #[test]
    fn hand_computed() {
        // Window 2, stride 2, valid: [max(1,-3), max(5,4), max(-7,-8)] per channel 0.
        let p = Pool1dParams {
            length: 6,
            channels: 1,
            window: 2,
            stride: 2,
            padding: Padding::Valid,
            clamp: Clamp::NONE,
        };
        let mut out = [0i8; 3];
        max_pool(&p, &[1, -3, 5, 4, -7, -8], &mut out).unwrap();
        assert_eq!(out, [1, 5, -7]);
        // ReLU at zero point 0 clamps the last window.
        let p = Pool1dParams {
            clamp: Clamp::relu(0),
            ..p
        };
        max_pool(&p, &[1, -3, 5, 4, -7, -8], &mut out).unwrap();
        assert_eq!(out, [1, 5, 0]);
        // Same padding, window 3, stride 1: padded taps are ignored, not -128 or 0.
        let p = Pool1dParams {
            length: 3,
            channels: 2,
            window: 3,
            stride: 1,
            padding: Padding::Same,
            clamp: Clamp::NONE,
        };
        let mut out = [0i8; 6];
        max_pool(&p, &[-5, 1, -9, 2, -7, 3], &mut out).unwrap();
        assert_eq!(out, [-5, 2, -5, 3, -7, 3]);
        assert_eq!(scratch_len(&p), 0);
    }

    #[test]
    fn parameter_errors() {
        let p = Pool1dParams {
            length: 4,
            channels: 0,
            window: 2,
            stride: 2,
            padding: Padding::Valid,
            clamp: Clamp::NONE,
        };
        let mut out = [0i8; 2];
        assert_eq!(
            max_pool(&p, &[], &mut out),
            Err(KernelError::InvalidParam(Param::Channels))
        );
        let p = Pool1dParams {
            channels: 1,
            window: 0,
            ..p
        };
        assert_eq!(
            max_pool(&p, &[0; 4], &mut out),
            Err(KernelError::InvalidParam(Param::Window))
        );
        let p = Pool1dParams {
            window: 2,
            stride: 0,
            ..p
        };
        assert_eq!(
            max_pool(&p, &[0; 4], &mut out),
            Err(KernelError::InvalidParam(Param::Stride))
        );
        let p = Pool1dParams {
            stride: 2,
            clamp: Clamp { min: 1, max: 0 },
            ..p
        };
        assert_eq!(
            max_pool(&p, &[0; 4], &mut out),
            Err(KernelError::InvalidClamp { min: 1, max: 0 })
        );
    }
}
