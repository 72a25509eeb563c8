//! 1-D average pooling on int8 (TFLM's integer `AveragePool`, CMSIS-NN's `arm_avgpool_s8`).
//!
//! Input `[length][channels]`, output `[out_length][channels]`. Input and output share scale
//! and zero point, so each output is the rounded mean of the raw int8 values of its window's
//! in-bounds taps (padded taps are excluded from sum and count, ONNX `count_include_pad = 0`),
//! then clamped by the fused activation. Rounding as TFLM's reference:
//! `sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count` with truncating division,
//! i.e. half away from zero.

use super::error::KernelError;
use super::params::{window_bounds, Pool1dParams};

/// Scratch bytes [`avg_pool`] needs: 0.
pub const fn scratch_len(_params: &Pool1dParams) -> usize {
    0
}

/// TFLM's rounded division of a window sum by its tap count (half away from zero).
/// `count` is at least 1 for every window the geometry admits; 0 gives 0 rather than a panic.
pub(crate) const fn rounded_mean(sum: i32, count: i32) -> i32 {
    if count <= 0 {
        return 0;
    }
    let half = count / 2;
    if sum > 0 {
        (sum + half) / count
    } else {
        (sum - half) / count
    }
}

/// Runs average pooling.
///
/// Errors, before writing anything, on a zero dimension, an invalid clamp, a window longer than
/// the padded input, more than [`super::params::MAX_POOL_TAPS`] in-bounds taps, or a buffer of
/// the wrong length.
pub fn avg_pool(params: &Pool1dParams, input: &[i8], output: &mut [i8]) -> Result<(), KernelError> {
    let (_, pad) = params.check(input, output)?;
    let ch = params.channels;
    let mut start = 0usize;
    for out_row in output.chunks_exact_mut(ch) {
        let (lo, hi) = window_bounds(start, params.window, pad, params.length);
        let rows = input.get(lo * ch..hi * ch).unwrap_or(&[]);
        // hi - lo <= MAX_POOL_TAPS (checked), so count and |sum| <= 2^30 fit i32.
        let count = (hi - lo) as i32;
        for (c, y) in out_row.iter_mut().enumerate() {
            let sum = rows
                .chunks_exact(ch)
                .filter_map(|row| row.get(c))
                .fold(0i32, |acc, &v| acc.wrapping_add(i32::from(v)));
            let mean = rounded_mean(sum, count);
            *y = mean.clamp(i32::from(params.clamp.min), i32::from(params.clamp.max)) as i8;
        }
        start = start.saturating_add(params.stride);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::params::{Clamp, Padding};
    use super::super::test_util::*;
    use super::*;
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    /// Round half away from zero in i64, written differently from `rounded_mean`.
    fn naive_mean(sum: i64, count: i64) -> i64 {
        let q = sum / count;
        let r = sum % count;
        if 2 * r.abs() >= count {
            q + sum.signum()
        } else {
            q
        }
    }

    fn reference(p: &Pool1dParams, x: &[i8]) -> Option<Vec<i8>> {
        let (pad, out_len) = naive_geometry(p.length, p.window, p.stride, 1, p.padding)?;
        let mut out = vec![0i8; out_len * p.channels];
        for t in 0..out_len {
            for c in 0..p.channels {
                let (mut sum, mut count) = (0i64, 0i64);
                for k in 0..p.window {
                    let pos = (t * p.stride + k) as i64 - pad;
                    if pos >= 0 && pos < p.length as i64 {
                        sum += i64::from(x[pos as usize * p.channels + c]);
                        count += 1;
                    }
                }
                let v = naive_mean(sum, count);
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
                    avg_pool(&p, &x, &mut out).unwrap();
                    prop_assert_eq!(out, expected);
                }
                None => {
                    let mut out = vec![0i8; 1];
                    let result = avg_pool(&p, &x, &mut out);
                    let is_too_long = matches!(result, Err(KernelError::WindowTooLong { .. }));
                    prop_assert!(is_too_long);
                }
            }
        }

        #[test]
        fn rounded_mean_rounds_half_away_from_zero(
            sum in -(1i32 << 30)..(1i32 << 30),
            count in 1i32..1000,
        ) {
            prop_assert_eq!(
                i64::from(rounded_mean(sum, count)),
                naive_mean(i64::from(sum), i64::from(count))
            );
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
                matches!(avg_pool(&p, &x, &mut out), Err(KernelError::BufferLen { .. }));
            prop_assert!(is_len_error);
            prop_assert!(out.iter().all(|&v| v == 7));
        }
    }

    #[test]
    fn hand_computed() {
        // Window 2 stride 2: (1+2)/2 = 1.5 -> 2, (-1-2)/2 = -1.5 -> -2, (4+5)/2 = 4.5 -> 5.
        let p = Pool1dParams {
            length: 6,
            channels: 1,
            window: 2,
            stride: 2,
            padding: Padding::Valid,
            clamp: Clamp::NONE,
        };
        let mut out = [0i8; 3];
        avg_pool(&p, &[1, 2, -1, -2, 4, 5], &mut out).unwrap();
        assert_eq!(out, [2, -2, 5]);
        // Window 3, same padding: the edges average 2 taps, not 3 with a zero.
        let p = Pool1dParams {
            length: 3,
            window: 3,
            stride: 1,
            padding: Padding::Same,
            ..p
        };
        let mut out = [0i8; 3];
        avg_pool(&p, &[9, 3, -6], &mut out).unwrap();
        // (9+3)/2 = 6, (9+3-6)/3 = 2, (3-6)/2 = -1.5 -> -2.
        assert_eq!(out, [6, 2, -2]);
        assert_eq!(rounded_mean(7, 0), 0);
        assert_eq!(rounded_mean(-127 * 2 - 1, 2), -128);
        assert_eq!(scratch_len(&p), 0);
    }
}
