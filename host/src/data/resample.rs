//! Resampling to a target rate with an anti-aliasing filter.
//!
//! The search resamples every record to the rate of the target device (MIT-BIH 360 Hz → 250 Hz,
//! CinC 2017 300 Hz → 250 Hz, CinC 2021 500 Hz → 250 Hz), and the device later does the same to
//! its ADC stream (e.g. 500 Hz → 125 Hz), so both sides share this one implementation.
//!
//! The method is rational polyphase resampling, as `scipy.signal.resample_poly`: the ratio
//! `to / from` is reduced to `p / q`, the signal is conceptually upsampled by `p` (zeros inserted),
//! low-pass filtered by a linear-phase FIR filter of gain `p` whose cutoff is the lower of the two
//! Nyquist frequencies, and downsampled by `q`. The computation is done in polyphase form: each
//! output sample is one short dot product of input samples with one phase of the filter, and the
//! upsampled signal is never built.
//!
//! The filter is a Kaiser-windowed sinc (β = [`KAISER_BETA`]) of `2·h + 1` taps with
//! `h = `[`HALF_LENGTH_PER_TERM`]`·max(p, q)`, twice scipy's length, so that the transition band is
//! narrow: relative to the lower of the two Nyquist frequencies the response is flat (within
//! 0.03 dB) up to 90 %, −6 dB at 100 %, and below −70 dB from 112 % on (140 Hz when going from
//! 360 Hz to 250 Hz). Each phase of the filter is normalised to sum to one,
//! so a constant signal stays exactly constant (DC gain 1). The filter's delay is compensated: a
//! sample at time `t` in the input stays at time `t` in the output (sample `k` of a signal at
//! `fs` Hz is at `k / fs` seconds).
//!
//! Beyond its ends the input is taken to hold its first and last values (edge padding), so a
//! record with a baseline offset shows no ramp at its edges.
//!
//! NaN samples (invalid, missing) are not treated specially: a NaN makes every output sample
//! whose filter window covers it NaN, which is about `2·h / p` input samples around it (80 ms
//! either side when going from 360 Hz to 250 Hz).

use super::signal::{EcgRecord, Lead};

/// The largest numerator or denominator of the reduced ratio `to / from` the resampler accepts.
pub const MAX_RATIO_TERM: u32 = 1000;

/// Half-length of the anti-aliasing filter, in taps of the upsampled rate, per unit of
/// `max(p, q)`.
pub const HALF_LENGTH_PER_TERM: usize = 20;

/// Shape parameter β of the Kaiser window of the anti-aliasing filter.
pub const KAISER_BETA: f64 = 7.0;

/// Relative tolerance when matching `to / from` to a ratio of small integers.
const RATIO_TOLERANCE: f64 = 1e-9;

/// Taps of each phase are padded with zeros to a multiple of this, so the inner loop has no tail.
const LANES: usize = 8;

/// Why a resampler cannot be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResampleError {
    /// A sampling rate that is zero, negative, infinite or NaN.
    #[error("cannot resample: {rate_hz} Hz is not a sampling rate (it must be a positive finite number)")]
    InvalidRate {
        /// The rate as given.
        rate_hz: f64,
    },
    /// Two rates whose ratio is not a fraction of small integers.
    #[error("cannot resample from {from_hz} Hz to {to_hz} Hz: the ratio is not a small rational (after reduction its numerator and denominator must be at most {MAX_RATIO_TERM})")]
    NotRational {
        /// The input rate.
        from_hz: f64,
        /// The output rate.
        to_hz: f64,
    },
}

/// A rational polyphase resampler from one rate to another, built once and applied to any
/// number of signals.
#[derive(Debug, Clone)]
pub struct Resampler {
    /// Upsampling factor.
    p: usize,
    /// Downsampling factor.
    q: usize,
    /// Half-length of the prototype filter (its delay, in upsampled samples).
    half_len: usize,
    /// Taps per phase, a multiple of [`LANES`].
    taps_per_phase: usize,
    /// `p` phases of `taps_per_phase` taps each, time-reversed, so that phase `φ` is applied as
    /// a plain dot product with consecutive input samples.
    phases: Vec<f32>,
}

impl Resampler {
    /// A resampler from `from_hz` to `to_hz`.
    ///
    /// Fails when a rate is not a positive finite number, or when `to_hz / from_hz` is not (within
    /// a relative 1e-9) a fraction `p / q` with `p` and `q` at most [`MAX_RATIO_TERM`].
    pub fn new(from_hz: f64, to_hz: f64) -> Result<Resampler, ResampleError> {
        for rate_hz in [from_hz, to_hz] {
            if !rate_hz.is_finite() || rate_hz <= 0.0 {
                return Err(ResampleError::InvalidRate { rate_hz });
            }
        }
        let (p, q) =
            small_ratio(to_hz / from_hz).ok_or(ResampleError::NotRational { from_hz, to_hz })?;
        Ok(Self::from_ratio(p as usize, q as usize))
    }

    /// The resampler for the reduced ratio `p / q` (both at least 1).
    fn from_ratio(p: usize, q: usize) -> Resampler {
        if p == q {
            return Resampler {
                p: 1,
                q: 1,
                half_len: 0,
                taps_per_phase: 0,
                phases: Vec::new(),
            };
        }
        let half_len = HALF_LENGTH_PER_TERM * p.max(q);
        let h = design_lowpass(half_len, 1.0 / p.max(q) as f64, KAISER_BETA);
        let len = h.len();
        let taps_per_phase = len.div_ceil(p).div_ceil(LANES) * LANES;
        let mut phases = Vec::with_capacity(p * taps_per_phase);
        for phi in 0..p {
            // Phase φ holds h[φ], h[φ + p], h[φ + 2p], …, normalised to sum to one (the whole
            // filter then has gain p), reversed and zero-padded at the front.
            let taps: Vec<f64> = (0..taps_per_phase)
                .map(|t| h.get(phi + t * p).copied().unwrap_or(0.0))
                .collect();
            let sum: f64 = taps.iter().sum();
            let scale = if sum.abs() > f64::EPSILON {
                1.0 / sum
            } else {
                1.0
            };
            phases.extend(taps.iter().rev().map(|&v| (v * scale) as f32));
        }
        Resampler {
            p,
            q,
            half_len,
            taps_per_phase,
            phases,
        }
    }

    /// The reduced ratio `(p, q)`: the output has `p` samples for every `q` input samples.
    pub fn ratio(&self) -> (u32, u32) {
        (self.p as u32, self.q as u32)
    }

    /// Taps of the anti-aliasing filter (`2·h + 1`; 0 when the rates are equal).
    pub fn filter_len(&self) -> usize {
        if self.p == self.q {
            0
        } else {
            2 * self.half_len + 1
        }
    }

    /// Output samples for `n` input samples: `ceil(n·p / q)`.
    pub fn output_len(&self, n: usize) -> usize {
        let num = n as u128 * self.p as u128;
        num.div_ceil(self.q as u128) as usize
    }

    /// Resamples one signal. Equal rates return a copy of the input.
    ///
    /// Output sample `j` is at time `j / to_hz`, like input sample `k` at `k / from_hz`. NaN
    /// inputs make the output NaN where the filter covers them (see the module documentation).
    pub fn apply(&self, input: &[f32]) -> Vec<f32> {
        let n = input.len();
        if self.p == self.q {
            return input.to_vec();
        }
        let (Some(&first), Some(&last)) = (input.first(), input.last()) else {
            return Vec::new();
        };
        let (p, q, t) = (self.p, self.q, self.taps_per_phase);
        let n_out = self.output_len(n);

        // Output j is Σ_i x[i]·h[j·q + h − i·p]. With c = j·q + h, i_max = c / p and φ = c % p,
        // that is the dot product of phase φ with x[i_max − t + 1 ..= i_max], which is
        // padded[i_max .. i_max + t] once t − 1 samples are put in front.
        let last_c = (n_out - 1) as u128 * q as u128 + self.half_len as u128;
        let last_i = (last_c / p as u128) as usize;
        let padded_len = (last_i + t).max(t - 1 + n);
        let mut padded = Vec::with_capacity(padded_len);
        padded.resize(t - 1, first);
        padded.extend_from_slice(input);
        padded.resize(padded_len, last);

        let (step_i, step_phi) = (q / p, q % p);
        let mut i_max = self.half_len / p;
        let mut phi = self.half_len % p;
        let mut out = Vec::with_capacity(n_out);
        for _ in 0..n_out {
            let taps = &self.phases[phi * t..(phi + 1) * t];
            let x = &padded[i_max..i_max + t];
            out.push(dot(taps, x));
            i_max += step_i;
            phi += step_phi;
            if phi >= p {
                phi -= p;
                i_max += 1;
            }
        }
        out
    }
}

/// Resamples one signal from `from_hz` to `to_hz` (see [`Resampler`]).
pub fn resample(input: &[f32], from_hz: f64, to_hz: f64) -> Result<Vec<f32>, ResampleError> {
    Ok(Resampler::new(from_hz, to_hz)?.apply(input))
}

/// A copy of `record` with every lead resampled to `to_hz` and `fs` set to `to_hz`; the id,
/// path, lead names, units and comments are kept.
pub fn resample_record(record: &EcgRecord, to_hz: f64) -> Result<EcgRecord, ResampleError> {
    let resampler = Resampler::new(record.fs, to_hz)?;
    Ok(EcgRecord {
        id: record.id.clone(),
        path: record.path.clone(),
        fs: to_hz,
        leads: record
            .leads
            .iter()
            .map(|lead| Lead {
                name: lead.name.clone(),
                units: lead.units.clone(),
                samples: resampler.apply(&lead.samples),
            })
            .collect(),
        comments: record.comments.clone(),
    })
}

/// The smallest `(p, q)` with `p / q` equal to `ratio` within [`RATIO_TOLERANCE`] and both terms
/// at most [`MAX_RATIO_TERM`]; the first `q` found gives a reduced fraction.
fn small_ratio(ratio: f64) -> Option<(u32, u32)> {
    (1..=MAX_RATIO_TERM).find_map(|q| {
        let p = (ratio * f64::from(q)).round();
        if p < 1.0 || p > f64::from(MAX_RATIO_TERM) {
            return None;
        }
        let err = (p / f64::from(q) - ratio).abs();
        (err <= RATIO_TOLERANCE * ratio).then_some((p as u32, q))
    })
}

/// A linear-phase low-pass filter of `2·half_len + 1` taps: a sinc with cutoff `cutoff` (a
/// fraction of the Nyquist frequency, as scipy's `firwin`) under a Kaiser window of shape `beta`.
fn design_lowpass(half_len: usize, cutoff: f64, beta: f64) -> Vec<f64> {
    let len = 2 * half_len + 1;
    let i0_beta = bessel_i0(beta);
    (0..len)
        .map(|k| {
            let m = k as f64 - half_len as f64;
            let x = cutoff * m;
            let sinc = if m == 0.0 {
                1.0
            } else {
                (std::f64::consts::PI * x).sin() / (std::f64::consts::PI * x)
            };
            let r = m / half_len as f64;
            let window = bessel_i0(beta * (1.0 - r * r).max(0.0).sqrt()) / i0_beta;
            cutoff * sinc * window
        })
        .collect()
}

/// The modified Bessel function of the first kind, order zero (power series; fine for the
/// window's arguments, at most β).
fn bessel_i0(x: f64) -> f64 {
    let half_sq = x * x / 4.0;
    let mut term = 1.0;
    let mut sum = 1.0;
    for k in 1..200 {
        term *= half_sq / (k * k) as f64;
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    sum
}

/// Dot product of two slices of equal length, a multiple of [`LANES`], with independent
/// accumulators so the compiler can vectorise it.
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    for (ca, cb) in a.chunks_exact(LANES).zip(b.chunks_exact(LANES)) {
        for k in 0..LANES {
            acc[k] += ca[k] * cb[k];
        }
    }
    acc.iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::f64::consts::PI;

    fn sine(freq_hz: f64, fs_hz: f64, n: usize) -> Vec<f32> {
        (0..n)
            .map(|k| (2.0 * PI * freq_hz * k as f64 / fs_hz).sin() as f32)
            .collect()
    }

    fn rms(x: &[f32]) -> f64 {
        (x.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / x.len() as f64).sqrt()
    }

    /// Largest deviation from the analytic sine at the output rate, ignoring `edge_s` seconds at
    /// each end.
    fn sine_error(freq_hz: f64, from_hz: f64, to_hz: f64, seconds: f64, edge_s: f64) -> f64 {
        let n = (seconds * from_hz) as usize;
        let out = resample(&sine(freq_hz, from_hz, n), from_hz, to_hz).unwrap();
        let expected = sine(freq_hz, to_hz, out.len());
        let edge = (edge_s * to_hz) as usize;
        out.iter()
            .zip(&expected)
            .skip(edge)
            .take(out.len() - 2 * edge)
            .map(|(&a, &b)| f64::from(a - b).abs())
            .fold(0.0, f64::max)
    }

    #[test]
    fn ratios_are_reduced() {
        assert_eq!(Resampler::new(360.0, 250.0).unwrap().ratio(), (25, 36));
        assert_eq!(Resampler::new(300.0, 250.0).unwrap().ratio(), (5, 6));
        assert_eq!(Resampler::new(500.0, 250.0).unwrap().ratio(), (1, 2));
        assert_eq!(Resampler::new(500.0, 125.0).unwrap().ratio(), (1, 4));
        assert_eq!(Resampler::new(125.0, 250.0).unwrap().ratio(), (2, 1));
        assert_eq!(Resampler::new(128.0, 250.0).unwrap().ratio(), (125, 64));
        assert_eq!(Resampler::new(250.0, 250.0).unwrap().ratio(), (1, 1));
        assert_eq!(Resampler::new(0.5, 0.25).unwrap().ratio(), (1, 2));
    }

    #[test]
    fn bad_rates_are_refused() {
        for (from, to) in [
            (0.0, 250.0),
            (-360.0, 250.0),
            (360.0, f64::NAN),
            (f64::INFINITY, 250.0),
        ] {
            assert!(matches!(
                Resampler::new(from, to),
                Err(ResampleError::InvalidRate { .. })
            ));
        }
        for (from, to) in [
            (360.0001, 250.0),
            (PI * 100.0, 250.0),
            (1.0, 2000.0),
            (1001.0, 1.0),
        ] {
            let err = Resampler::new(from, to).unwrap_err();
            assert!(
                matches!(err, ResampleError::NotRational { .. }),
                "{from} → {to}"
            );
            assert!(err.to_string().contains("not a small rational"), "{err}");
        }
    }

    #[test]
    fn equal_rates_return_the_input() {
        let x = vec![1.0, f32::NAN, -3.5, 0.25];
        let y = resample(&x, 250.0, 250.0).unwrap();
        assert_eq!(x.len(), y.len());
        assert!(x.iter().zip(&y).all(|(a, b)| a.to_bits() == b.to_bits()));
    }

    #[test]
    fn sine_360_to_250_matches_the_analytic_sine() {
        assert!(sine_error(10.0, 360.0, 250.0, 10.0, 0.5) < 1e-3);
        // Well inside the pass band too.
        assert!(sine_error(40.0, 360.0, 250.0, 10.0, 0.5) < 1e-3);
    }

    #[test]
    fn other_common_ratios_match_the_analytic_sine() {
        for (from, to) in [
            (500.0, 250.0),
            (300.0, 250.0),
            (500.0, 125.0),
            (125.0, 250.0),
            (250.0, 360.0),
        ] {
            let err = sine_error(10.0, from, to, 10.0, 0.5);
            assert!(err < 1e-3, "{from} → {to}: error {err}");
        }
    }

    #[test]
    fn the_pass_band_is_flat_to_80_percent_of_the_new_nyquist() {
        for (freq, from, to) in [
            (100.0, 360.0, 250.0),
            (100.0, 500.0, 250.0),
            (50.0, 500.0, 125.0),
            (50.0, 125.0, 250.0),
        ] {
            let x = sine(freq, from, (20.0 * from) as usize);
            let y = resample(&x, from, to).unwrap();
            let edge = (0.5 * to) as usize;
            let gain = rms(&y[edge..y.len() - edge]) / rms(&x[(0.5 * from) as usize..]);
            assert!(
                (gain - 1.0).abs() < 2e-3,
                "{freq} Hz, {from} → {to}: gain {gain}"
            );
        }
    }

    #[test]
    fn tones_above_the_new_nyquist_are_removed() {
        // 140 Hz cannot be represented at 250 Hz; it would alias to 110 Hz.
        for (freq, from, to) in [
            (140.0, 360.0, 250.0),
            (200.0, 500.0, 250.0),
            (140.0, 300.0, 250.0),
            (70.0, 500.0, 125.0),
        ] {
            let x = sine(freq, from, (20.0 * from) as usize);
            let y = resample(&x, from, to).unwrap();
            let edge = (0.5 * to) as usize;
            let attenuation_db = 20.0 * (rms(&y[edge..y.len() - edge]) / rms(&x)).log10();
            assert!(
                attenuation_db < -60.0,
                "{freq} Hz, {from} → {to}: {attenuation_db} dB"
            );
        }
    }

    #[test]
    fn dc_gain_is_one() {
        for (from, to) in [
            (360.0, 250.0),
            (500.0, 250.0),
            (300.0, 250.0),
            (125.0, 250.0),
            (128.0, 250.0),
        ] {
            let y = resample(&vec![0.7f32; 5000], from, to).unwrap();
            // Edge padding keeps even the ends flat.
            assert!(y.iter().all(|&v| (v - 0.7).abs() < 1e-5), "{from} → {to}");
        }
    }

    #[test]
    fn output_lengths() {
        let r = Resampler::new(360.0, 250.0).unwrap();
        assert_eq!(r.apply(&[]).len(), 0);
        assert_eq!(r.apply(&[1.0]).len(), 1);
        assert_eq!(r.apply(&vec![0.0; 360]).len(), 250);
        assert_eq!(r.apply(&vec![0.0; 361]).len(), 251);
        assert_eq!(r.apply(&vec![0.0; 650_000]).len(), 451_389);
        let up = Resampler::new(125.0, 250.0).unwrap();
        assert_eq!(up.apply(&[0.0; 7]).len(), 14);
        assert_eq!(r.filter_len(), 2 * 20 * 36 + 1);
    }

    #[test]
    fn impulses_stay_in_place() {
        for (from, to) in [
            (360.0, 250.0),
            (500.0, 250.0),
            (300.0, 250.0),
            (125.0, 250.0),
            (500.0, 125.0),
        ] {
            for k in [997usize, 1000, 1003] {
                let mut x = vec![0.0f32; 2000];
                x[k] = 1.0;
                let y = resample(&x, from, to).unwrap();
                let (mut m0, mut m1) = (0.0f64, 0.0f64);
                for (j, &v) in y.iter().enumerate() {
                    m0 += f64::from(v);
                    m1 += j as f64 * f64::from(v);
                }
                let centroid_s = m1 / m0 / to;
                let expected_s = k as f64 / from;
                assert!(
                    (centroid_s - expected_s).abs() < 0.01 / to,
                    "{from} → {to}, impulse at {k}: {centroid_s} s, expected {expected_s} s"
                );
                // The energy of the impulse is preserved in the mean: the sum scales by to/from.
                assert!((m0 - to / from).abs() < 1e-3, "{from} → {to}: sum {m0}");
            }
        }
    }

    #[test]
    fn nan_spreads_only_locally() {
        let mut x = vec![0.0f32; 3600];
        x[1800] = f32::NAN;
        let y = resample(&x, 360.0, 250.0).unwrap();
        let nan: Vec<usize> = (0..y.len()).filter(|&j| y[j].is_nan()).collect();
        assert!(!nan.is_empty());
        let centre = 1800.0 * 250.0 / 360.0;
        assert!(nan.iter().all(|&j| (j as f64 - centre).abs() < 0.1 * 250.0));
    }

    #[test]
    fn records_are_resampled_lead_by_lead() {
        let record = EcgRecord {
            id: "100".into(),
            path: None,
            fs: 360.0,
            leads: vec![
                Lead {
                    name: "MLII".into(),
                    units: "mV".into(),
                    samples: sine(5.0, 360.0, 3600),
                },
                Lead {
                    name: "V5".into(),
                    units: "mV".into(),
                    samples: vec![0.5; 3600],
                },
            ],
            comments: vec!["69 M".into()],
        };
        let out = resample_record(&record, 250.0).unwrap();
        assert_eq!(out.fs, 250.0);
        assert_eq!(out.n_samples(), 2500);
        assert_eq!(out.lead_names(), record.lead_names());
        assert_eq!(out.comments, record.comments);
        assert!(out.leads[1].samples.iter().all(|&v| (v - 0.5).abs() < 1e-5));
        assert!(resample_record(&record, 360.5 * PI).is_err());
    }

    proptest! {
        #[test]
        fn lengths_are_right(
            input in proptest::collection::vec(-10.0f32..10.0, 0..2000),
            rates in proptest::sample::select(vec![
                (360.0, 250.0), (300.0, 250.0), (500.0, 250.0), (500.0, 125.0),
                (125.0, 250.0), (250.0, 360.0), (128.0, 250.0), (250.0, 250.0),
            ]),
        ) {
            let (from, to) = rates;
            let r = Resampler::new(from, to).unwrap();
            let (p, q) = r.ratio();
            let y = r.apply(&input);
            let expected = (input.len() as u64 * u64::from(p)).div_ceil(u64::from(q)) as usize;
            prop_assert_eq!(y.len(), expected);
            prop_assert!(y.iter().all(|v| v.is_finite()));
            // Bounded input, bounded output (the filter's L1 norm per phase is below 3).
            prop_assert!(y.iter().all(|v| v.abs() <= 30.0));
        }
    }
}
