//! The output activation on the device: integer decisions on the int8 logits.
//!
//! The network's last layer produces quantised logits. Softmax and sigmoid are monotonic, so
//! the device does not compute them: the class is the [`argmax`] of the logits (softmax), and a
//! binary or multi-label decision compares each logit with an int8 threshold ([`threshold`],
//! sigmoid). Probabilities, when a report needs them, are computed on the host from the
//! dequantised logits, `scale * (q - zero_point)`. TFLM's int8 LUT logistic is not implemented.

use super::error::{Buffer, KernelError};
use super::params::check_len;

/// The index of the largest logit; ties go to the lowest index (TFLM's `ArgMax`, NumPy's
/// `argmax`). Since dequantisation is monotonic, this is the softmax's most probable class.
///
/// ```
/// use ecgnas_firmware::kernels::activation::argmax;
/// assert_eq!(argmax(&[-3, 7, 2, 7]), Ok(1));
/// ```
pub fn argmax(logits: &[i8]) -> Result<usize, KernelError> {
    let mut best: Option<(usize, i8)> = None;
    for (i, &v) in logits.iter().enumerate() {
        match best {
            Some((_, b)) if v <= b => {}
            _ => best = Some((i, v)),
        }
    }
    best.map(|(i, _)| i).ok_or(KernelError::EmptyInput)
}

/// `decisions[i] = logits[i] >= thresholds[i]`: the sigmoid decision `sigmoid(x_i) >= p_i`.
///
/// The host turns a probability threshold `p` into the int8 threshold
/// `ceil(ln(p / (1 - p)) / scale) + zero_point`, clamped to int8 (the smallest logit whose
/// dequantised value reaches the log-odds of `p`); a threshold of `i8::MIN` always fires.
///
/// Errors when the three slices differ in length.
pub fn threshold(
    logits: &[i8],
    thresholds: &[i8],
    decisions: &mut [bool],
) -> Result<(), KernelError> {
    check_len(Buffer::Thresholds, logits.len(), thresholds.len())?;
    check_len(Buffer::Decisions, logits.len(), decisions.len())?;
    for ((d, &x), &t) in decisions.iter_mut().zip(logits).zip(thresholds) {
        *d = x >= t;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    proptest! {
        #[test]
        fn argmax_is_the_first_maximum(logits in proptest::collection::vec(any::<i8>(), 1..40)) {
            let i = argmax(&logits).unwrap();
            let max = *logits.iter().max().unwrap();
            prop_assert_eq!(logits[i], max);
            prop_assert!(logits[..i].iter().all(|&v| v < max));
        }

        #[test]
        fn threshold_compares_each_logit(
            pairs in proptest::collection::vec((any::<i8>(), any::<i8>()), 0..40)
        ) {
            let (logits, thresholds): (Vec<i8>, Vec<i8>) = pairs.iter().copied().unzip();
            let mut decisions = vec![false; logits.len()];
            threshold(&logits, &thresholds, &mut decisions).unwrap();
            for ((&x, &t), &d) in logits.iter().zip(&thresholds).zip(&decisions) {
                prop_assert_eq!(d, i64::from(x) >= i64::from(t));
            }
        }
    }

    #[test]
    fn hand_computed() {
        assert_eq!(argmax(&[5]), Ok(0));
        assert_eq!(argmax(&[-128, -128]), Ok(0));
        assert_eq!(argmax(&[-1, 3, 127, 127, 0]), Ok(2));
        let mut d = [true; 3];
        threshold(&[0, -5, 127], &[0, -4, i8::MIN], &mut d).unwrap();
        assert_eq!(d, [true, false, true]);
    }

    #[test]
    fn errors() {
        assert_eq!(argmax(&[]), Err(KernelError::EmptyInput));
        let mut d = [false; 2];
        assert_eq!(
            threshold(&[1, 2], &[0], &mut d),
            Err(KernelError::BufferLen {
                buffer: Buffer::Thresholds,
                expected: 2,
                actual: 1
            })
        );
        let mut d = [false; 1];
        assert!(matches!(
            threshold(&[1, 2], &[0, 0], &mut d),
            Err(KernelError::BufferLen {
                buffer: Buffer::Decisions,
                ..
            })
        ));
    }
}
