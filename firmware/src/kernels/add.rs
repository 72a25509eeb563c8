//! Residual add of two int8 tensors with their own scales (TFLM's int8 `ADD`,
//! `reference/integer_ops/add.h`; CMSIS-NN's `arm_elementwise_add_s8`).
//!
//! Per element, with `left_shift = `[`ADD_LEFT_SHIFT`]:
//! `v_i = (x_i + offset_i) * 2^20`, `s_i = requantize(v_i, m_i, shift_i)`,
//! `y = clamp(requantize(s_1 + s_2, m_out, shift_out) + output_offset)`.
//! The host derives the constants as TFLM's `add_common.cc`: `twice_max = 2 * max(s1, s2)`,
//! `r_i = s_i / twice_max`, `r_out = twice_max / (2^20 * s_out)`, each quantised with a shift
//! `<= 0` (all three reals are below 1).

use super::error::{Buffer, KernelError, Param};
use super::params::{check_input_offset, check_len, check_output_offset, Clamp};
use crate::quant::{requantize, requantize_to_i8};

/// TFLM's `left_shift` for int8 `ADD`: inputs are scaled up by 2^20 before their multipliers.
pub const ADD_LEFT_SHIFT: u32 = 20;

/// The quantisation of one input of [`add`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddInput {
    /// `-zero_point` of this input, in `-127..=128`.
    pub offset: i32,
    /// Q31 multiplier of `scale / (2 * max(scale_1, scale_2))`.
    pub multiplier: i32,
    /// Its shift, `<= 0`.
    pub shift: i32,
}

/// Shape and quantisation of a residual add.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddParams {
    /// Elements in each input and in the output (`length * channels`).
    pub len: usize,
    /// The first input.
    pub input1: AddInput,
    /// The second input.
    pub input2: AddInput,
    /// Q31 multiplier of `2 * max(scale_1, scale_2) / (2^20 * output_scale)`.
    pub output_multiplier: i32,
    /// Its shift, `<= 0`.
    pub output_shift: i32,
    /// `output_zero_point`, in `-128..=127`.
    pub output_offset: i32,
    /// Fused activation.
    pub clamp: Clamp,
}

/// Scratch bytes [`add`] needs: 0.
pub const fn scratch_len(_params: &AddParams) -> usize {
    0
}

fn check_input(input: &AddInput) -> Result<(), KernelError> {
    check_input_offset(input.offset)?;
    if input.shift > 0 {
        return Err(KernelError::InvalidParam(Param::Shift));
    }
    Ok(())
}

/// `requantize((x + offset) << 20, m, shift)`: one input brought to the common scale.
#[inline]
fn rescale(x: i8, input: &AddInput) -> i32 {
    // |x + offset| <= 255, so the shifted value is below 2^28.
    let shifted = (i32::from(x) + input.offset).wrapping_shl(ADD_LEFT_SHIFT);
    requantize(shifted, input.multiplier, input.shift)
}

/// Adds two int8 tensors element by element into `output`.
///
/// Errors, before writing anything, on a zero length, an offset or clamp out of range, a
/// positive shift, or a buffer whose length differs from `params.len`.
pub fn add(
    params: &AddParams,
    input1: &[i8],
    input2: &[i8],
    output: &mut [i8],
) -> Result<(), KernelError> {
    if params.len == 0 {
        return Err(KernelError::InvalidParam(Param::Length));
    }
    check_input(&params.input1)?;
    check_input(&params.input2)?;
    if params.output_shift > 0 {
        return Err(KernelError::InvalidParam(Param::Shift));
    }
    check_output_offset(params.output_offset)?;
    params.clamp.check()?;
    check_len(Buffer::Input, params.len, input1.len())?;
    check_len(Buffer::SecondInput, params.len, input2.len())?;
    check_len(Buffer::Output, params.len, output.len())?;

    for ((y, &a), &b) in output.iter_mut().zip(input1).zip(input2) {
        let sum = rescale(a, &params.input1).wrapping_add(rescale(b, &params.input2));
        *y = requantize_to_i8(
            sum,
            params.output_multiplier,
            params.output_shift,
            params.output_offset,
            params.clamp.min,
            params.clamp.max,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;
    use crate::quant::quantize_multiplier;
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    fn reference(p: &AddParams, a: &[i8], b: &[i8]) -> Vec<i8> {
        let scaled = |x: i8, q: &AddInput| -> i64 {
            let v = (i64::from(x) + i64::from(q.offset)) * (1i64 << 20);
            i64::from(requantize(i32::try_from(v).unwrap(), q.multiplier, q.shift))
        };
        a.iter()
            .zip(b)
            .map(|(&x, &y)| {
                let sum = scaled(x, &p.input1) + scaled(y, &p.input2);
                naive_output(
                    sum,
                    p.output_multiplier,
                    p.output_shift,
                    p.output_offset,
                    p.clamp,
                )
            })
            .collect()
    }

    fn add_input() -> impl Strategy<Value = AddInput> {
        (input_offset(), (1i32 << 30)..=i32::MAX, -10i32..=0).prop_map(|(offset, m, s)| AddInput {
            offset,
            multiplier: m,
            shift: s,
        })
    }

    fn case() -> impl Strategy<Value = (AddParams, Vec<i8>, Vec<i8>)> {
        (
            1usize..=640,
            add_input(),
            add_input(),
            (1i32 << 30)..=i32::MAX,
            -31i32..=0,
            output_offset(),
            clamp(),
        )
            .prop_flat_map(|(len, input1, input2, m, s, ooff, clamp)| {
                let p = AddParams {
                    len,
                    input1,
                    input2,
                    output_multiplier: m,
                    output_shift: s,
                    output_offset: ooff,
                    clamp,
                };
                (Just(p), data(len), data(len))
            })
    }

    proptest! {
        #[test]
        fn matches_naive_reference((p, a, b) in case()) {
            let mut out = vec![0i8; p.len];
            add(&p, &a, &b, &mut out).unwrap();
            prop_assert_eq!(out, reference(&p, &a, &b));
        }

        #[test]
        fn wrong_lengths_are_errors((p, a, b) in case(), which in 0usize..3) {
            let (mut a, mut b) = (a, b);
            let mut out_len = p.len;
            match which {
                0 => a.push(0),
                1 => { b.pop(); }
                _ => out_len += 1,
            }
            let mut out = vec![7i8; out_len];
            let result = add(&p, &a, &b, &mut out);
            let is_len_error = matches!(result, Err(KernelError::BufferLen { .. }));
            prop_assert!(is_len_error);
            prop_assert!(out.iter().all(|&v| v == 7));
        }
    }

    /// The constants TFLM's `add_common.cc` derives from the three scales.
    fn tflm_params(s1: f64, zp1: i8, s2: f64, zp2: i8, s_out: f64, zp_out: i8) -> AddParams {
        let twice_max = 2.0 * s1.max(s2);
        let (m1, sh1) = quantize_multiplier(s1 / twice_max);
        let (m2, sh2) = quantize_multiplier(s2 / twice_max);
        let (mo, sho) = quantize_multiplier(twice_max / ((1u64 << 20) as f64 * s_out));
        AddParams {
            len: 4,
            input1: AddInput {
                offset: -i32::from(zp1),
                multiplier: m1,
                shift: sh1,
            },
            input2: AddInput {
                offset: -i32::from(zp2),
                multiplier: m2,
                shift: sh2,
            },
            output_multiplier: mo,
            output_shift: sho,
            output_offset: i32::from(zp_out),
            clamp: Clamp::NONE,
        }
    }

    #[test]
    fn hand_computed_real_values() {
        // Input 1: scale 0.5, zp 0 (values 1, 2, -3, 10 -> 0.5, 1, -1.5, 5).
        // Input 2: scale 0.25, zp 4 (values 8, 0, 4, 20 -> 1, -1, 0, 4).
        // Output: scale 0.5, zp -1: sums 1.5, 0, -1.5, 9 -> 3, 0, -3, 18, then -1.
        let p = tflm_params(0.5, 0, 0.25, 4, 0.5, -1);
        let mut out = [0i8; 4];
        add(&p, &[1, 2, -3, 10], &[8, 0, 4, 20], &mut out).unwrap();
        assert_eq!(out, [2, -1, -4, 17]);
        // ReLU at the output zero point.
        let p = AddParams {
            clamp: Clamp::relu(-1),
            ..p
        };
        add(&p, &[1, 2, -3, 10], &[8, 0, 4, 20], &mut out).unwrap();
        assert_eq!(out, [2, -1, -1, 17]);
        assert_eq!(scratch_len(&p), 0);
    }

    #[test]
    fn parameter_errors() {
        let p = tflm_params(0.5, 0, 0.25, 4, 0.5, -1);
        let mut out = [0i8; 4];
        let x = [0i8; 4];
        let bad = AddParams {
            input2: AddInput {
                shift: 1,
                ..p.input2
            },
            ..p
        };
        assert_eq!(
            add(&bad, &x, &x, &mut out),
            Err(KernelError::InvalidParam(Param::Shift))
        );
        let bad = AddParams {
            output_shift: 1,
            ..p
        };
        assert_eq!(
            add(&bad, &x, &x, &mut out),
            Err(KernelError::InvalidParam(Param::Shift))
        );
        let bad = AddParams { len: 0, ..p };
        assert_eq!(
            add(&bad, &[], &[], &mut []),
            Err(KernelError::InvalidParam(Param::Length))
        );
        let bad = AddParams {
            input1: AddInput {
                offset: 200,
                ..p.input1
            },
            ..p
        };
        assert_eq!(
            add(&bad, &x, &x, &mut out),
            Err(KernelError::InvalidParam(Param::InputOffset))
        );
    }
}
