//! Fixed-point requantisation with TFLite Micro / CMSIS-NN integer semantics.
//!
//! An int32 accumulator is scaled by a real multiplier `M = m * 2^shift` where `m` is a Q31
//! value in [0.5, 1): `out = round(acc * m * 2^shift)`, computed as CMSIS-NN's
//! `arm_nn_requantize` (default double rounding, `CMSIS_NN_USE_SINGLE_ROUNDING` off): a left
//! shift, the saturating rounding doubling high multiply (rounds half toward +inf), then a
//! rounding right shift (rounds half away from zero). Bit-exact with TFLM's
//! `MultiplyByQuantizedMultiplier`; not with a single `round()`, which differs on ties.
//!
//! This is the only requantisation in ecgnas: every kernel, and the host through this crate,
//! calls [`requantize`]. `quantize_multiplier`, which turns a real scale into
//! `(multiplier, shift)`, uses floating point and is therefore compiled only for tests and
//! under the `host` cargo feature, never into the device's int8 path.

/// `round(a * b / 2^31)` with saturation: gemmlowp's `SaturatingRoundingDoublingHighMul`.
pub const fn saturating_rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    if a == i32::MIN && b == i32::MIN {
        return i32::MAX;
    }
    let product = a as i64 * b as i64;
    let nudge: i64 = if product >= 0 { 1 << 30 } else { 1 - (1 << 30) };
    ((product + nudge) / (1i64 << 31)) as i32
}

/// Rounding arithmetic right shift (round half away from zero), gemmlowp's `RoundingDivideByPOT`.
///
/// Exponents above 31 are treated as 31.
pub const fn rounding_divide_by_pot(x: i32, exponent: u32) -> i32 {
    if exponent == 0 {
        return x;
    }
    let exponent = if exponent > 31 { 31 } else { exponent };
    let mask: i32 = ((1i64 << exponent) - 1) as i32;
    let remainder = x & mask;
    let threshold = (mask >> 1) + if x < 0 { 1 } else { 0 };
    (x >> exponent) + if remainder > threshold { 1 } else { 0 }
}

/// Scales an accumulator by `multiplier * 2^shift / 2^31` (the one requantisation of ecgnas).
///
/// Identical to CMSIS-NN's `arm_nn_requantize` and TFLM's `MultiplyByQuantizedMultiplier` for
/// the shifts they produce (`-31..=30`). Never panics: a positive shift is applied as a
/// wrapping left shift, a negative one through [`rounding_divide_by_pot`].
pub const fn requantize(acc: i32, multiplier: i32, shift: i32) -> i32 {
    let left = if shift > 0 { shift as u32 } else { 0 };
    let right = if shift > 0 { 0 } else { shift.unsigned_abs() };
    let shifted = acc.wrapping_shl(left);
    rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(shifted, multiplier),
        right,
    )
}

/// The output stage every int8 kernel shares: [`requantize`], add the output zero point
/// (`output_offset`), clamp to `[act_min, act_max]` (the fused activation) and narrow to int8.
///
/// The addition saturates instead of overflowing; that only matters for accumulators no real
/// layer produces, and the clamp hides it.
pub const fn requantize_to_i8(
    acc: i32,
    multiplier: i32,
    shift: i32,
    output_offset: i32,
    act_min: i8,
    act_max: i8,
) -> i8 {
    let value = requantize(acc, multiplier, shift).saturating_add(output_offset);
    let value = if value < act_min as i32 {
        act_min as i32
    } else if value > act_max as i32 {
        act_max as i32
    } else {
        value
    };
    value as i8
}

/// Host only (feature `host`, and tests): TFLM's `QuantizeMultiplier`, a real multiplier as a
/// Q31 `multiplier` and a power-of-two `shift` with `real ≈ multiplier * 2^(shift - 31)`.
///
/// Follows `tensorflow/lite/kernels/internal/quantization_util.cc` with double rounding:
/// `frexp`, round half away from zero of `q * 2^31`, a mantissa that rounds up to `2^31` is
/// halved with the shift incremented, and shifts below -31 flush to `(0, 0)`. Zero, subnormal
/// and non-finite inputs (NaN, ±inf) give `(0, 0)`: callers must check `real.is_finite()` first,
/// since a zero multiplier silently zeroes a layer. Meant for `|real| < 2^31`; larger values
/// give shifts above 31 that [`requantize`] does not support. Negative reals give negative
/// multipliers, as in TFLM.
#[cfg(any(test, feature = "host"))]
pub fn quantize_multiplier(real: f64) -> (i32, i32) {
    const EXP_MASK: u64 = 0x7ff << 52;
    let bits = real.to_bits();
    let biased_exp = ((bits & EXP_MASK) >> 52) as i32;
    if biased_exp == 0 || biased_exp == 0x7ff {
        return (0, 0);
    }
    // frexp: real = q * 2^shift with |q| in [0.5, 1).
    let mut shift = biased_exp - 1022;
    let q = f64::from_bits((bits & !EXP_MASK) | (1022u64 << 52));
    // q * 2^31 is exact (53-bit mantissa); round half away from zero by hand, as `core` has no
    // `f64::round` in every supported toolchain.
    let scaled = q * 2_147_483_648.0;
    let truncated = scaled as i64;
    let fraction = scaled - truncated as f64;
    let mut q_fixed = if fraction >= 0.5 {
        truncated + 1
    } else if fraction <= -0.5 {
        truncated - 1
    } else {
        truncated
    };
    if q_fixed == 1i64 << 31 || q_fixed == -(1i64 << 31) {
        q_fixed /= 2;
        shift += 1;
    }
    if shift < -31 {
        return (0, 0);
    }
    (q_fixed as i32, shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_of_each_stage() {
        // Multiplier 2^30 (0.5 in Q31), shift 0: only the doubling high multiply rounds, and it
        // rounds half toward +inf (gemmlowp / CMSIS-NN, ../shared/EMBEDDED.md section 4).
        let half = 1 << 30;
        assert_eq!(requantize(10, half, 0), 5);
        // 5.5 -> 6 and -5.5 -> -5 (not -6).
        assert_eq!(requantize(11, half, 0), 6);
        assert_eq!(requantize(-11, half, 0), -5);
        // Shift -2 divides by a further 4 in the rounding shift, which rounds half away from
        // zero: 100 / 8 = 12.5 -> 13 and -100 / 8 = -12.5 -> -13.
        assert_eq!(requantize(100, half, -2), 13);
        assert_eq!(requantize(-100, half, -2), -13);
    }

    #[test]
    fn double_rounding_example_from_embedded_md() {
        // -2000 * 0.5 * 2^-4 = -62.5: double rounding gives -63 (single rounding would give -62).
        assert_eq!(requantize(-2000, 1 << 30, -4), -63);
    }

    #[test]
    fn extreme_inputs_saturate() {
        assert_eq!(
            saturating_rounding_doubling_high_mul(i32::MIN, i32::MIN),
            i32::MAX
        );
        assert_eq!(rounding_divide_by_pot(-1, 1), -1);
        assert_eq!(rounding_divide_by_pot(1, 1), 1);
    }

    #[test]
    fn any_shift_is_panic_free() {
        for shift in [i32::MIN, -1000, -32, -31, 31, 32, 1000, i32::MAX] {
            for acc in [i32::MIN, -1, 0, 1, i32::MAX] {
                let _ = requantize(acc, i32::MAX, shift);
            }
        }
        // Right shifts past 31 behave as 31.
        assert_eq!(requantize(i32::MAX, i32::MAX, i32::MIN), 1);
    }

    #[test]
    fn output_stage_adds_offset_and_clamps() {
        let one = (1 << 30, 1); // 1.0
        assert_eq!(requantize_to_i8(5, one.0, one.1, 3, -128, 127), 8);
        assert_eq!(requantize_to_i8(500, one.0, one.1, 0, -128, 127), 127);
        assert_eq!(requantize_to_i8(-500, one.0, one.1, 0, -128, 127), -128);
        // ReLU with output zero point -10 clamps at -10.
        assert_eq!(requantize_to_i8(-50, one.0, one.1, -10, -10, 127), -10);
        assert_eq!(
            requantize_to_i8(i32::MAX, one.0, one.1, i32::MAX, -128, 127),
            127
        );
    }

    #[test]
    fn quantize_multiplier_matches_tflm_values() {
        // Values checked against TFLM's QuantizeMultiplier in ../shared/EMBEDDED.md section 4.
        assert_eq!(quantize_multiplier(0.5), (1_073_741_824, 0));
        assert_eq!(quantize_multiplier(1.0), (1_073_741_824, 1));
        assert_eq!(quantize_multiplier(0.0123), (1_690_499_128, -6));
        assert_eq!(quantize_multiplier(0.0), (0, 0));
        assert_eq!(quantize_multiplier(f64::NAN), (0, 0));
        assert_eq!(quantize_multiplier(f64::INFINITY), (0, 0));
        // Below 2^-32 the shift would be < -31: flushed to zero.
        assert_eq!(quantize_multiplier(1e-12), (0, 0));
        // The mantissa rounding up to 2^31 is halved and the shift incremented.
        let just_below_one = 1.0 - f64::EPSILON / 2.0;
        assert_eq!(quantize_multiplier(just_below_one), (1_073_741_824, 1));
        assert_eq!(quantize_multiplier(-0.5), (-1_073_741_824, 0));
    }

    #[test]
    fn quantize_multiplier_then_requantize_scales() {
        let (m, s) = quantize_multiplier(0.25);
        assert_eq!(requantize(1000, m, s), 250);
        let (m, s) = quantize_multiplier(3.0);
        assert_eq!(requantize(7, m, s), 21);
    }
}
