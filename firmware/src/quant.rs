//! Fixed-point requantisation with TFLite Micro / CMSIS-NN integer semantics.
//!
//! An int32 accumulator is scaled by a real multiplier `M = m * 2^shift` where `m` is a Q31
//! value in [0.5, 1): `out = round(acc * m * 2^shift)`, computed as CMSIS-NN's
//! `arm_nn_requantize`: a left shift, the saturating rounding doubling high multiply, then a
//! rounding right shift.

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
pub const fn requantize(acc: i32, multiplier: i32, shift: i32) -> i32 {
    let left = if shift > 0 { shift as u32 } else { 0 };
    let right = if shift > 0 { 0 } else { (-shift) as u32 };
    let shifted = acc.wrapping_shl(left);
    rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(shifted, multiplier),
        right,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_scale_rounds_half_away_from_zero() {
        // multiplier 2^30 (0.5 in Q31), shift 0: acc / 2 rounded.
        let half = 1 << 30;
        assert_eq!(requantize(10, half, 0), 5);
        assert_eq!(requantize(11, half, 0), 6);
        assert_eq!(requantize(-11, half, 0), -6);
        // shift -2 divides by a further 4.
        assert_eq!(requantize(100, half, -2), 13); // 100 / 8 = 12.5 -> 13
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
}
