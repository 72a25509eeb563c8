//! The preprocessing genes of the search space on one lead's window, in f32, and the input
//! quantisation that hands the result to the int8 network.
//!
//! The host trains on the output of these same functions (compiled for the host) and the
//! device runs them on its ADC window, so the network sees the same values on both: every
//! operation is plain IEEE-754 single precision in a fixed order (no fused multiply-add, the
//! square root from `libm`, correctly rounded), which the x86-64 host and the Cortex-M4F FPU
//! compute bit for bit alike.
//!
//! The order, for each lead of a window at the ADC rate:
//! 1. band limiting and decimation in one pass: the symmetric FIR low-pass evaluated only at
//!    the kept samples `0, d, 2d, ...`, the window's ends repeating the edge sample;
//! 2. baseline removal: the centred moving average of `m` (odd) samples subtracted, the ends
//!    repeating the edge sample;
//! 3. normalisation: none, per-window z-score, or per-window max-abs;
//!
//! then [`quantize`] maps the network input to int8 (TFLM's `Quantize`: round half away from
//! zero of `x / scale`, plus the zero point, saturated).

use core::fmt;

/// The smallest standard deviation or peak a window is divided by: a flat window stays finite.
pub const MIN_SCALE: f32 = 1e-6;

/// The per-window normalisation gene.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Normalisation {
    /// Left as it is (mV).
    None,
    /// `(x - mean) / max(std, MIN_SCALE)`, the population standard deviation.
    ZScore,
    /// `x / max(max |x|, MIN_SCALE)`.
    MaxAbs,
}

/// One lead's preprocessing: what the genes became at the device's ADC rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LeadPipeline<'a> {
    /// Samples of the window at the ADC rate.
    pub window: usize,
    /// The low-pass taps (odd count, symmetric), or empty for no band limiting.
    pub fir_taps: &'a [f32],
    /// Keep one sample in `decimation` (at least 1).
    pub decimation: usize,
    /// Length of the centred moving average whose value is subtracted (odd), or 0 for none.
    pub moving_average: usize,
    /// The normalisation.
    pub normalisation: Normalisation,
}

/// Why preprocessing refused to run. Nothing is written on error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreprocessError {
    /// The raw window's length differs from [`LeadPipeline::window`].
    WindowLen {
        /// Samples the pipeline expects.
        expected: usize,
        /// Samples given.
        actual: usize,
    },
    /// The output's length differs from [`LeadPipeline::output_len`].
    OutputLen {
        /// Samples the pipeline produces.
        expected: usize,
        /// The output slice's length.
        actual: usize,
    },
    /// An empty window, a zero decimation, an even tap count or an even moving average.
    InvalidPipeline,
    /// The scratch slice is shorter than the output.
    ScratchLen,
    /// The quantisation scale is not a positive finite number.
    InvalidScale,
}

impl fmt::Display for PreprocessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PreprocessError::WindowLen { expected, actual } => {
                write!(
                    f,
                    "window of {actual} samples, the pipeline expects {expected}"
                )
            }
            PreprocessError::OutputLen { expected, actual } => {
                write!(
                    f,
                    "output of {actual} samples, the pipeline writes {expected}"
                )
            }
            PreprocessError::InvalidPipeline => f.write_str(
                "invalid pipeline (empty window, zero decimation or an even filter length)",
            ),
            PreprocessError::ScratchLen => f.write_str("scratch buffer shorter than the output"),
            PreprocessError::InvalidScale => {
                f.write_str("the input scale is not a positive finite number")
            }
        }
    }
}

impl LeadPipeline<'_> {
    /// Samples the network sees: `ceil(window / decimation)`.
    pub const fn output_len(&self) -> usize {
        if self.decimation == 0 {
            0
        } else {
            self.window.div_ceil(self.decimation)
        }
    }

    fn check(&self) -> Result<(), PreprocessError> {
        let even_taps = !self.fir_taps.is_empty() && self.fir_taps.len() % 2 == 0;
        let even_average = self.moving_average != 0 && self.moving_average % 2 == 0;
        if self.window == 0 || self.decimation == 0 || even_taps || even_average {
            return Err(PreprocessError::InvalidPipeline);
        }
        Ok(())
    }

    /// Runs the pipeline on `raw` (the lead's window at the ADC rate, in mV) into `out`
    /// ([`Self::output_len`] samples). `scratch` (at least as long as `out`) holds the moving
    /// average.
    pub fn run(
        &self,
        raw: &[f32],
        out: &mut [f32],
        scratch: &mut [f32],
    ) -> Result<(), PreprocessError> {
        self.check()?;
        if raw.len() != self.window {
            return Err(PreprocessError::WindowLen {
                expected: self.window,
                actual: raw.len(),
            });
        }
        let n = self.output_len();
        if out.len() != n {
            return Err(PreprocessError::OutputLen {
                expected: n,
                actual: out.len(),
            });
        }
        let scratch = scratch.get_mut(..n).ok_or(PreprocessError::ScratchLen)?;
        filter_and_decimate(raw, self.fir_taps, self.decimation, out);
        if self.moving_average > 0 {
            remove_moving_average(out, self.moving_average, scratch);
        }
        normalise(out, self.normalisation);
        Ok(())
    }
}

/// The sample at `i`, the ends repeating the edge sample (0 for an empty `x`).
#[inline]
fn edge(x: &[f32], i: isize) -> f32 {
    let last = x.len() as isize - 1;
    let j = i.clamp(0, last.max(0));
    x.get(j as usize).copied().unwrap_or(0.0)
}

/// The `len` samples from `start` (which may lie outside `x`), the ends repeating the edge
/// sample, as three parts in order: copies of the first sample, the samples inside, copies of
/// the last sample.
fn clamped_window(x: &[f32], start: isize, len: usize) -> (usize, &[f32], usize) {
    let n = x.len() as isize;
    let end = start.saturating_add(len as isize);
    let from = start.clamp(0, n);
    let to = end.clamp(from, n);
    let left = (from - start).clamp(0, len as isize) as usize;
    let inside = x.get(from as usize..to as usize).unwrap_or(&[]);
    (left, inside, len - left - inside.len())
}

/// `out[j] = sum_t taps[t] * x[j * d + t - half]` (or `x[j * d]` without taps), taps in order,
/// the ends repeating the edge sample: taps over the window's part before the signal multiply
/// its first sample, then the samples inside, then the last sample, in tap order, so every
/// output adds the same terms in the same order wherever its window lies.
fn filter_and_decimate(x: &[f32], taps: &[f32], decimation: usize, out: &mut [f32]) {
    let half = (taps.len() / 2) as isize;
    let first = edge(x, 0);
    let last = edge(x, x.len() as isize - 1);
    for (j, y) in out.iter_mut().enumerate() {
        let centre = (j * decimation) as isize;
        if taps.is_empty() {
            *y = edge(x, centre);
            continue;
        }
        let start = centre - half;
        if let Some(window) = usize::try_from(start)
            .ok()
            .and_then(|s| x.get(s..s + taps.len()))
        {
            // Inside the signal: the same terms in the same order, without the edge cases.
            let mut acc = 0.0f32;
            for (&h, &v) in taps.iter().zip(window) {
                acc += h * v;
            }
            *y = acc;
            continue;
        }
        let (left, inside, _) = clamped_window(x, start, taps.len());
        let mut acc = 0.0f32;
        let (left_taps, rest) = taps.split_at(left);
        for &h in left_taps {
            acc += h * first;
        }
        let (inside_taps, right_taps) = rest.split_at(inside.len());
        for (&h, &v) in inside_taps.iter().zip(inside) {
            acc += h * v;
        }
        for &h in right_taps {
            acc += h * last;
        }
        *y = acc;
    }
}

/// Subtracts the centred mean of `m` samples (ends repeating the edge sample). Each mean is its
/// window's sum in order divided by `m`: no running sum, so no drift, and the same value an
/// ONNX `AveragePool` over an edge-padded input computes up to rounding.
fn remove_moving_average(x: &mut [f32], m: usize, means: &mut [f32]) {
    let half = (m / 2) as isize;
    let count = m as f32;
    let first = edge(x, 0);
    let last = edge(x, x.len() as isize - 1);
    for (i, mean) in means.iter_mut().enumerate() {
        let start = i as isize - half;
        if let Some(window) = usize::try_from(start).ok().and_then(|s| x.get(s..s + m)) {
            let mut sum = 0.0f32;
            for &v in window {
                sum += v;
            }
            *mean = sum / count;
            continue;
        }
        let (left, inside, right) = clamped_window(x, start, m);
        let mut sum = 0.0f32;
        for _ in 0..left {
            sum += first;
        }
        for &v in inside {
            sum += v;
        }
        for _ in 0..right {
            sum += last;
        }
        *mean = sum / count;
    }
    for (v, mean) in x.iter_mut().zip(means.iter()) {
        *v -= *mean;
    }
}

fn normalise(x: &mut [f32], normalisation: Normalisation) {
    let n = x.len().max(1) as f32;
    match normalisation {
        Normalisation::None => {}
        Normalisation::ZScore => {
            let mut sum = 0.0f32;
            for &v in x.iter() {
                sum += v;
            }
            let mean = sum / n;
            let mut squares = 0.0f32;
            for &v in x.iter() {
                let d = v - mean;
                squares += d * d;
            }
            let std = libm::sqrtf(squares / n);
            let scale = if std > MIN_SCALE { std } else { MIN_SCALE };
            for v in x.iter_mut() {
                *v = (*v - mean) / scale;
            }
        }
        Normalisation::MaxAbs => {
            let mut peak = MIN_SCALE;
            for &v in x.iter() {
                let a = if v < 0.0 { -v } else { v };
                if a > peak {
                    peak = a;
                }
            }
            for v in x.iter_mut() {
                *v /= peak;
            }
        }
    }
}

/// The int8 value of `x`: `clamp(round_half_away(x / scale) + zero_point, -128, 127)` (TFLM's
/// reference `Quantize`; NaN maps to the zero point).
#[inline]
pub fn quantize_value(x: f32, scale: f32, zero_point: i32) -> i8 {
    let q = libm::roundf(x / scale);
    // `as` saturates and maps NaN to 0.
    let q = (q as i32).saturating_add(zero_point);
    q.clamp(-128, 127) as i8
}

/// Quantises `x` into `out` (same length) with `scale` and `zero_point`.
pub fn quantize(
    x: &[f32],
    scale: f32,
    zero_point: i32,
    out: &mut [i8],
) -> Result<(), PreprocessError> {
    if !(scale.is_finite() && scale > 0.0) {
        return Err(PreprocessError::InvalidScale);
    }
    if out.len() != x.len() {
        return Err(PreprocessError::OutputLen {
            expected: x.len(),
            actual: out.len(),
        });
    }
    for (q, &v) in out.iter_mut().zip(x) {
        *q = quantize_value(v, scale, zero_point);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    fn pipeline(taps: &[f32], decimation: usize, m: usize, n: Normalisation) -> LeadPipeline<'_> {
        LeadPipeline {
            window: 0,
            fir_taps: taps,
            decimation,
            moving_average: m,
            normalisation: n,
        }
    }

    fn run(p: LeadPipeline<'_>, raw: &[f32]) -> Vec<f32> {
        let p = LeadPipeline {
            window: raw.len(),
            ..p
        };
        let mut out = vec![0.0; p.output_len()];
        let mut scratch = vec![0.0; p.output_len()];
        p.run(raw, &mut out, &mut scratch).unwrap();
        out
    }

    #[test]
    fn decimation_keeps_samples_zero_d_2d() {
        let raw: Vec<f32> = (0..10).map(|i| i as f32).collect();
        let out = run(pipeline(&[], 4, 0, Normalisation::None), &raw);
        assert_eq!(out, vec![0.0, 4.0, 8.0]);
    }

    #[test]
    fn filter_matches_a_naive_edge_padded_convolution() {
        let raw: Vec<f32> = (0..37).map(|i| ((i * 7919) % 13) as f32 - 6.0).collect();
        let taps = [0.1f32, 0.2, 0.4, 0.2, 0.1];
        let out = run(pipeline(&taps, 2, 0, Normalisation::None), &raw);
        for (j, &y) in out.iter().enumerate() {
            let mut expected = 0.0f64;
            for (t, &h) in taps.iter().enumerate() {
                let i = (2 * j as isize + t as isize - 2).clamp(0, 36) as usize;
                expected += f64::from(h) * f64::from(raw[i]);
            }
            assert!(
                (f64::from(y) - expected).abs() < 1e-5,
                "{j}: {y} vs {expected}"
            );
        }
    }

    #[test]
    fn edge_windows_add_the_same_terms_in_the_same_order_as_naive_indexing() {
        let x: Vec<f32> = (0..40)
            .map(|i| ((i * 37) % 11) as f32 * 0.37 - 1.3)
            .collect();
        let taps: Vec<f32> = (0..15).map(|t| 0.01 * (t as f32 + 1.0)).collect();
        let naive = |i: isize| x[i.clamp(0, 39) as usize];
        let mut out = vec![0.0; 20];
        filter_and_decimate(&x, &taps, 2, &mut out);
        for (j, &y) in out.iter().enumerate() {
            let mut acc = 0.0f32;
            for (t, &h) in taps.iter().enumerate() {
                acc += h * naive(2 * j as isize + t as isize - 7);
            }
            assert_eq!(y.to_bits(), acc.to_bits(), "fir {j}");
        }
        // A moving average longer than the signal: every window reaches past both ends.
        let mut y = x.clone();
        let mut means = vec![0.0; 40];
        remove_moving_average(&mut y, 61, &mut means);
        for i in 0..40 {
            let mut sum = 0.0f32;
            for k in -30..=30 {
                sum += naive(i as isize + k);
            }
            assert_eq!(means[i].to_bits(), (sum / 61.0).to_bits(), "mean {i}");
            assert_eq!(y[i].to_bits(), (x[i] - sum / 61.0).to_bits());
        }
    }

    #[test]
    fn moving_average_removes_an_offset_and_keeps_a_fast_wave() {
        let raw: Vec<f32> = (0..200)
            .map(|i| 3.0 + if i % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        let out = run(pipeline(&[], 1, 51, Normalisation::None), &raw);
        for v in &out[30..170] {
            assert!((v.abs() - 1.0).abs() < 0.03, "{v}");
        }
    }

    #[test]
    fn normalisations_scale_as_defined() {
        let z = run(pipeline(&[], 1, 0, Normalisation::ZScore), &[1.0, 3.0, 5.0]);
        let mean: f32 = z.iter().sum::<f32>() / 3.0;
        assert!(
            mean.abs() < 1e-6 && (z[2] - 1.224_744_9).abs() < 1e-5,
            "{z:?}"
        );
        let m = run(pipeline(&[], 1, 0, Normalisation::MaxAbs), &[-4.0, 2.0]);
        assert_eq!(m, vec![-1.0, 0.5]);
        // A flat window stays finite.
        let flat = run(pipeline(&[], 1, 0, Normalisation::ZScore), &[2.0; 8]);
        assert!(flat.iter().all(|v| *v == 0.0));
    }

    #[test]
    fn bad_pipelines_and_buffers_are_errors() {
        let p = LeadPipeline {
            window: 4,
            ..pipeline(&[1.0, 1.0], 1, 0, Normalisation::None)
        };
        let mut out = [0.0; 4];
        let mut scratch = [0.0; 4];
        assert_eq!(
            p.run(&[0.0; 4], &mut out, &mut scratch),
            Err(PreprocessError::InvalidPipeline)
        );
        let p = LeadPipeline { fir_taps: &[], ..p };
        assert_eq!(
            p.run(&[0.0; 3], &mut out, &mut scratch),
            Err(PreprocessError::WindowLen {
                expected: 4,
                actual: 3
            })
        );
        assert_eq!(
            p.run(&[0.0; 4], &mut out[..3], &mut scratch),
            Err(PreprocessError::OutputLen {
                expected: 4,
                actual: 3
            })
        );
        let p = LeadPipeline {
            moving_average: 3,
            ..p
        };
        assert_eq!(
            p.run(&[0.0; 4], &mut out, &mut scratch[..2]),
            Err(PreprocessError::ScratchLen)
        );
    }

    #[test]
    fn quantisation_rounds_half_away_and_saturates() {
        let mut q = [0i8; 6];
        quantize(
            &[0.25, -0.25, 0.24, 100.0, -100.0, f32::NAN],
            0.5,
            3,
            &mut q,
        )
        .unwrap();
        // 0.5 -> 1, -0.5 -> -1, 0.48 -> 0, then + 3; saturation; NaN -> zero point.
        assert_eq!(q, [4, 2, 3, 127, -128, 3]);
        assert_eq!(
            quantize(&[1.0], 0.0, 0, &mut q[..1]),
            Err(PreprocessError::InvalidScale)
        );
    }
}
