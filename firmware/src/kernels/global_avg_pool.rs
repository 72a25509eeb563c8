//! Global average pooling on int8: `[length][channels]` to `[channels]`, each channel's rounded
//! mean over time. The same arithmetic as [`crate::kernels::avg_pool`] with one window covering
//! the whole input (TFLM's `AveragePool` with a full-length filter; ONNX `GlobalAveragePool`
//! with input and output sharing scale and zero point), then the fused-activation clamp.

use super::avg_pool::rounded_mean;
use super::error::{Buffer, KernelError, Param};
use super::params::{check_len, checked_product, nonzero, Clamp, MAX_POOL_TAPS};

/// Shape of a global average pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GlobalAvgPoolParams {
    /// Input length in time steps, at most [`MAX_POOL_TAPS`].
    pub length: usize,
    /// Channels (the output length).
    pub channels: usize,
    /// Fused activation.
    pub clamp: Clamp,
}

/// Scratch bytes [`global_avg_pool`] needs: 0.
pub const fn scratch_len(_params: &GlobalAvgPoolParams) -> usize {
    0
}

/// Runs global average pooling.
///
/// Errors, before writing anything, on a zero dimension, a length above [`MAX_POOL_TAPS`], an
/// invalid clamp, or a buffer of the wrong length.
pub fn global_avg_pool(
    params: &GlobalAvgPoolParams,
    input: &[i8],
    output: &mut [i8],
) -> Result<(), KernelError> {
    nonzero(params.length, Param::Length)?;
    nonzero(params.channels, Param::Channels)?;
    if params.length > MAX_POOL_TAPS {
        return Err(KernelError::InvalidParam(Param::Length));
    }
    params.clamp.check()?;
    check_len(
        Buffer::Input,
        checked_product(params.length, params.channels)?,
        input.len(),
    )?;
    check_len(Buffer::Output, params.channels, output.len())?;
    // length <= 2^23 (checked), so count and |sum| <= 2^30 fit i32.
    let count = params.length as i32;
    for (c, y) in output.iter_mut().enumerate() {
        let sum = input
            .chunks_exact(params.channels)
            .filter_map(|row| row.get(c))
            .fold(0i32, |acc, &v| acc.wrapping_add(i32::from(v)));
        let mean = rounded_mean(sum, count);
        *y = mean.clamp(i32::from(params.clamp.min), i32::from(params.clamp.max)) as i8;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::avg_pool::avg_pool;
    use super::super::params::{Padding, Pool1dParams};
    use super::super::test_util::*;
    use super::*;
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    fn reference(p: &GlobalAvgPoolParams, x: &[i8]) -> Vec<i8> {
        (0..p.channels)
            .map(|c| {
                let sum: i64 = (0..p.length)
                    .map(|t| i64::from(x[t * p.channels + c]))
                    .sum();
                let n = p.length as i64;
                // Round half away from zero: add half of n in the direction of the sign.
                let v = if sum >= 0 {
                    (2 * sum + n) / (2 * n)
                } else {
                    -((-2 * sum + n) / (2 * n))
                };
                v.clamp(i64::from(p.clamp.min), i64::from(p.clamp.max)) as i8
            })
            .collect()
    }

    fn case() -> impl Strategy<Value = (GlobalAvgPoolParams, Vec<i8>)> {
        (1usize..=16, 1usize..=40, clamp()).prop_flat_map(|(ch, len, clamp)| {
            let p = GlobalAvgPoolParams {
                length: len,
                channels: ch,
                clamp,
            };
            (Just(p), data(len * ch))
        })
    }

    proptest! {
        #[test]
        fn matches_naive_reference((p, x) in case()) {
            let mut out = vec![0i8; p.channels];
            global_avg_pool(&p, &x, &mut out).unwrap();
            prop_assert_eq!(out, reference(&p, &x));
        }

        #[test]
        fn equals_avg_pool_with_a_full_window((p, x) in case()) {
            let mut global = vec![0i8; p.channels];
            global_avg_pool(&p, &x, &mut global).unwrap();
            let pool = Pool1dParams {
                length: p.length,
                channels: p.channels,
                window: p.length,
                stride: 1,
                padding: Padding::Valid,
                clamp: p.clamp,
            };
            let mut pooled = vec![0i8; p.channels];
            avg_pool(&pool, &x, &mut pooled).unwrap();
            prop_assert_eq!(global, pooled);
        }

        #[test]
        fn wrong_lengths_are_errors((p, x) in case(), out_side in any::<bool>()) {
            let mut x = x;
            let mut out_len = p.channels;
            if out_side { out_len += 1 } else { x.pop(); }
            let mut out = vec![7i8; out_len];
            let is_len_error =
                matches!(global_avg_pool(&p, &x, &mut out), Err(KernelError::BufferLen { .. }));
            prop_assert!(is_len_error);
            prop_assert!(out.iter().all(|&v| v == 7));
        }
    }

    #[test]
    fn hand_computed() {
        // Channel 0: (1 + 2 + 4 + 4) / 4 = 2.75 -> 3; channel 1: (-1 - 1 - 1 - 3) / 4 = -1.5 -> -2.
        let p = GlobalAvgPoolParams {
            length: 4,
            channels: 2,
            clamp: Clamp::NONE,
        };
        let mut out = [0i8; 2];
        global_avg_pool(&p, &[1, -1, 2, -1, 4, -1, 4, -3], &mut out).unwrap();
        assert_eq!(out, [3, -2]);
        let p = GlobalAvgPoolParams {
            clamp: Clamp::relu(0),
            ..p
        };
        global_avg_pool(&p, &[1, -1, 2, -1, 4, -1, 4, -3], &mut out).unwrap();
        assert_eq!(out, [3, 0]);
        assert_eq!(scratch_len(&p), 0);
    }

    #[test]
    fn parameter_errors() {
        let mut out = [0i8; 1];
        let p = GlobalAvgPoolParams {
            length: MAX_POOL_TAPS + 1,
            channels: 1,
            clamp: Clamp::NONE,
        };
        assert_eq!(
            global_avg_pool(&p, &[], &mut out),
            Err(KernelError::InvalidParam(Param::Length))
        );
        let p = GlobalAvgPoolParams { length: 0, ..p };
        assert_eq!(
            global_avg_pool(&p, &[], &mut out),
            Err(KernelError::InvalidParam(Param::Length))
        );
        let p = GlobalAvgPoolParams {
            length: 1,
            channels: usize::MAX,
            ..p
        };
        assert_eq!(
            global_avg_pool(&p, &[], &mut out),
            Err(KernelError::BufferLen {
                buffer: Buffer::Input,
                expected: usize::MAX,
                actual: 0
            })
        );
    }
}
