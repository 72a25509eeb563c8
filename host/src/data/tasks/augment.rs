//! Training-time augmentation of one example window: amplitude scaling, baseline wander,
//! additive Gaussian noise and a time shift.
//!
//! [`augment`] changes one lead's window in place. For a multi-lead example, draw one
//! [`Augmentation`] with [`AugmentConfig::draw`] and [`Augmentation::apply`] it to every lead:
//! the leads then share the scale, shift and wander (they stay aligned, as in a real recording)
//! and each gets its own noise.
//!
//! The steps, in order: the window is shifted in time (edge-padded: the samples moved in at one
//! end repeat the first or last value, nothing wraps around), scaled, the baseline wander is
//! added, then the noise.

use rand::Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

/// What augmentation to apply, and how much. Ranges `(low, high)` are drawn uniformly; a range
/// with `low == high` always gives that value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AugmentConfig {
    /// Range of the factor every sample is multiplied by.
    pub amplitude_scale: (f32, f32),
    /// Range of the standard deviation of the additive white Gaussian noise, in mV.
    pub noise_std_mv: (f32, f32),
    /// Largest amplitude of the baseline wander sinusoid, in mV (drawn in `[0, this]`).
    pub wander_amplitude_mv: f32,
    /// Range of the baseline wander's frequency, in Hz.
    pub wander_freq_hz: (f32, f32),
    /// Largest time shift either way, in seconds (rounded to whole samples).
    pub max_shift_s: f32,
    /// Whether to augment at all: when `false` windows are left untouched.
    pub enabled: bool,
}

impl Default for AugmentConfig {
    /// Moderate augmentation: scale U(0.8, 1.2), noise σ U(0, 0.02) mV, wander up to 0.1 mV at
    /// 0.05-0.5 Hz, shifts up to ±0.1 s.
    fn default() -> Self {
        AugmentConfig {
            amplitude_scale: (0.8, 1.2),
            noise_std_mv: (0.0, 0.02),
            wander_amplitude_mv: 0.1,
            wander_freq_hz: (0.05, 0.5),
            max_shift_s: 0.1,
            enabled: true,
        }
    }
}

/// Why a configuration cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("augmentation setting {field}: {message}")]
pub struct AugmentConfigError {
    /// The setting (`amplitude_scale`, `noise_std_mv`, …).
    pub field: &'static str,
    /// What is wrong with it.
    pub message: String,
}

impl AugmentConfig {
    /// No augmentation: disabled, and every setting neutral.
    pub fn none() -> Self {
        AugmentConfig {
            amplitude_scale: (1.0, 1.0),
            noise_std_mv: (0.0, 0.0),
            wander_amplitude_mv: 0.0,
            wander_freq_hz: (0.0, 0.0),
            max_shift_s: 0.0,
            enabled: false,
        }
    }

    /// Checks that every setting is finite, every range ordered (`low ≤ high`), and amplitudes,
    /// standard deviations, frequencies and the shift not negative.
    pub fn validate(&self) -> Result<(), AugmentConfigError> {
        let ranges = [
            ("amplitude_scale", self.amplitude_scale),
            ("noise_std_mv", self.noise_std_mv),
            ("wander_freq_hz", self.wander_freq_hz),
        ];
        for (field, (low, high)) in ranges {
            if !(low.is_finite() && high.is_finite() && low >= 0.0 && low <= high) {
                return Err(AugmentConfigError {
                    field,
                    message: format!(
                        "({low}, {high}) is not a range of finite non-negative values with low ≤ high"
                    ),
                });
            }
        }
        let values = [
            ("wander_amplitude_mv", self.wander_amplitude_mv),
            ("max_shift_s", self.max_shift_s),
        ];
        for (field, value) in values {
            if !(value.is_finite() && value >= 0.0) {
                return Err(AugmentConfigError {
                    field,
                    message: format!("{value} is not a finite non-negative number"),
                });
            }
        }
        Ok(())
    }

    /// Draws the parameters of one augmentation of a window sampled at `fs_hz`.
    ///
    /// Disabled configurations give [`Augmentation::identity`] without drawing from `rng`.
    /// Settings that [`validate`](Self::validate) would refuse (non-finite, unordered ranges)
    /// are read leniently: a range is drawn between its smaller and larger end, and a setting
    /// that is not finite has no effect.
    pub fn draw(&self, fs_hz: f64, rng: &mut impl Rng) -> Augmentation {
        if !self.enabled {
            return Augmentation::identity();
        }
        let scale = uniform(rng, self.amplitude_scale, 1.0);
        let noise_std_mv = uniform(rng, self.noise_std_mv, 0.0).max(0.0);
        let wander_amplitude_mv = uniform(rng, (0.0, self.wander_amplitude_mv), 0.0);
        let wander_freq_hz = uniform(rng, self.wander_freq_hz, 0.0);
        let wander_phase = uniform(rng, (0.0, std::f32::consts::TAU), 0.0);
        let max_shift = f64::from(self.max_shift_s) * fs_hz;
        let max_shift = if max_shift.is_finite() {
            max_shift.abs().round().min(i32::MAX as f64) as i64
        } else {
            0
        };
        let shift = if max_shift > 0 {
            rng.random_range(-max_shift..=max_shift)
        } else {
            0
        };
        Augmentation {
            scale,
            noise_std_mv,
            wander_amplitude_mv,
            wander_freq_hz,
            wander_phase,
            shift,
            fs_hz,
        }
    }
}

/// The parameters drawn for one augmentation, to apply to one or several leads of a window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Augmentation {
    /// Factor every sample is multiplied by.
    pub scale: f32,
    /// Standard deviation of the additive Gaussian noise, in mV.
    pub noise_std_mv: f32,
    /// Amplitude of the baseline wander, in mV.
    pub wander_amplitude_mv: f32,
    /// Frequency of the baseline wander, in Hz.
    pub wander_freq_hz: f32,
    /// Phase of the baseline wander at the window's first sample, in radians.
    pub wander_phase: f32,
    /// Time shift in samples; positive moves the content later.
    pub shift: i64,
    /// Sampling rate of the window, in Hz.
    pub fs_hz: f64,
}

impl Augmentation {
    /// The augmentation that changes nothing.
    pub fn identity() -> Self {
        Augmentation {
            scale: 1.0,
            noise_std_mv: 0.0,
            wander_amplitude_mv: 0.0,
            wander_freq_hz: 0.0,
            wander_phase: 0.0,
            shift: 0,
            fs_hz: 1.0,
        }
    }

    /// Applies this augmentation to one lead's window (mV), drawing its noise from `rng`.
    ///
    /// Steps that are neutral (scale 1, no wander, no noise, no shift) are skipped, so the
    /// identity leaves the window bit-identical and draws nothing.
    pub fn apply(&self, window: &mut [f32], rng: &mut impl Rng) {
        shift_edge_padded(window, self.shift);
        if self.scale != 1.0 {
            for v in window.iter_mut() {
                *v *= self.scale;
            }
        }
        if self.wander_amplitude_mv != 0.0 && self.fs_hz.is_finite() && self.fs_hz > 0.0 {
            let step = std::f64::consts::TAU * f64::from(self.wander_freq_hz) / self.fs_hz;
            let (amplitude, phase) = (
                f64::from(self.wander_amplitude_mv),
                f64::from(self.wander_phase),
            );
            for (k, v) in window.iter_mut().enumerate() {
                *v += (amplitude * (step * k as f64 + phase).sin()) as f32;
            }
        }
        if self.noise_std_mv > 0.0 {
            for v in window.iter_mut() {
                let z: f32 = rng.sample(StandardNormal);
                *v += self.noise_std_mv * z;
            }
        }
    }
}

/// Augments one lead's window (mV, sampled at `fs_hz`) in place: draws an [`Augmentation`] from
/// `config` and applies it. A disabled configuration leaves the window bit-identical and does
/// not use `rng`. The result depends only on the window, the configuration and the state of
/// `rng`, so a seeded generator reproduces it.
pub fn augment(window: &mut [f32], fs_hz: f64, config: &AugmentConfig, rng: &mut impl Rng) {
    if !config.enabled {
        return;
    }
    config.draw(fs_hz, rng).apply(window, rng);
}

/// A value drawn uniformly between the ends of `range`; the end itself when both are equal, and
/// `neutral` when an end is not finite.
fn uniform(rng: &mut impl Rng, range: (f32, f32), neutral: f32) -> f32 {
    let (a, b) = range;
    if !(a.is_finite() && b.is_finite()) {
        return neutral;
    }
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    if low == high {
        low
    } else {
        rng.random_range(low..high)
    }
}

/// Shifts `window` by `shift` samples (positive: later), repeating the edge value into the
/// samples that are moved in.
fn shift_edge_padded(window: &mut [f32], shift: i64) {
    let n = window.len();
    if shift == 0 || n == 0 {
        return;
    }
    let s = (shift.unsigned_abs() as usize).min(n);
    if shift > 0 {
        let first = window[0];
        window.copy_within(..n - s, s);
        window[..s].fill(first);
    } else {
        let last = window[n - 1];
        window.copy_within(s.., 0);
        window[n - s..].fill(last);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn ecg_like(n: usize) -> Vec<f32> {
        (0..n)
            .map(|k| {
                let t = k as f32 / 250.0;
                0.3 + (t * 7.0).sin() + if k % 200 == 50 { 1.5 } else { 0.0 }
            })
            .collect()
    }

    fn only(config: AugmentConfig) -> AugmentConfig {
        AugmentConfig {
            enabled: true,
            ..config
        }
    }

    #[test]
    fn disabled_leaves_the_window_bit_identical() {
        let original = ecg_like(1000);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let disabled = AugmentConfig {
            enabled: false,
            ..AugmentConfig::default()
        };
        for config in [AugmentConfig::none(), disabled] {
            let mut w = original.clone();
            augment(&mut w, 250.0, &config, &mut rng);
            assert!(w
                .iter()
                .zip(&original)
                .all(|(a, b)| a.to_bits() == b.to_bits()));
        }
        // Nothing was drawn.
        let mut fresh = ChaCha8Rng::seed_from_u64(1);
        assert_eq!(rng.random::<u64>(), fresh.random::<u64>());
        // Enabled but with every setting neutral changes nothing either.
        let mut w = original.clone();
        augment(&mut w, 250.0, &only(AugmentConfig::none()), &mut rng);
        assert!(w
            .iter()
            .zip(&original)
            .all(|(a, b)| a.to_bits() == b.to_bits()));
    }

    #[test]
    fn seeded_runs_are_identical() {
        let config = AugmentConfig::default();
        let run = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut w = ecg_like(2500);
            augment(&mut w, 250.0, &config, &mut rng);
            w
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        assert_ne!(run(7), ecg_like(2500));
    }

    #[test]
    fn scaling_multiplies_every_sample_by_one_factor() {
        let config = only(AugmentConfig {
            amplitude_scale: (0.8, 1.2),
            ..AugmentConfig::none()
        });
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut factors = Vec::new();
        for _ in 0..20 {
            let original = ecg_like(500);
            let mut w = original.clone();
            augment(&mut w, 250.0, &config, &mut rng);
            let ratios: Vec<f32> = w
                .iter()
                .zip(&original)
                .filter(|(_, o)| o.abs() > 1e-3)
                .map(|(a, o)| a / o)
                .collect();
            let r0 = ratios[0];
            assert!((0.8..1.2).contains(&r0), "{r0}");
            assert!(ratios.iter().all(|r| (r - r0).abs() < 1e-5));
            factors.push(r0);
        }
        // Different windows get different factors.
        assert!(factors.iter().any(|&f| (f - factors[0]).abs() > 1e-3));
    }

    #[test]
    fn a_shift_moves_a_spike_by_the_drawn_amount() {
        let config = only(AugmentConfig {
            max_shift_s: 0.2,
            ..AugmentConfig::none()
        });
        let fs = 250.0;
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let mut w = vec![0.25f32; 500];
            w[250] = 2.0;
            let before = rng.clone();
            augment(&mut w, fs, &config, &mut rng);
            let shift = config.draw(fs, &mut before.clone()).shift;
            assert!(shift.abs() <= 50);
            let peak = w.iter().position(|&v| v == 2.0).unwrap();
            assert_eq!(peak as i64, 250 + shift);
            assert_eq!(w.iter().filter(|&&v| v == 0.25).count(), 499);
            seen.insert(shift);
        }
        assert!(seen.len() > 50, "shifts drawn: {}", seen.len());
    }

    #[test]
    fn shifts_pad_with_the_edge_values() {
        let mut w = vec![1.0, 2.0, 3.0, 4.0, 5.0];
        shift_edge_padded(&mut w, 2);
        assert_eq!(w, vec![1.0, 1.0, 1.0, 2.0, 3.0]);
        let mut w = vec![1.0, 2.0, 3.0, 4.0, 5.0];
        shift_edge_padded(&mut w, -3);
        assert_eq!(w, vec![4.0, 5.0, 5.0, 5.0, 5.0]);
        let mut w = vec![1.0, 2.0, 3.0];
        shift_edge_padded(&mut w, 10);
        assert_eq!(w, vec![1.0, 1.0, 1.0]);
        let mut w: Vec<f32> = vec![];
        shift_edge_padded(&mut w, -1);
        assert!(w.is_empty());
    }

    #[test]
    fn noise_has_the_requested_standard_deviation() {
        for sigma in [0.005f32, 0.02] {
            let config = only(AugmentConfig {
                noise_std_mv: (sigma, sigma),
                ..AugmentConfig::none()
            });
            let mut rng = ChaCha8Rng::seed_from_u64(5);
            let n = 100_000;
            let mut w = vec![0.0f32; n];
            augment(&mut w, 250.0, &config, &mut rng);
            let mean = w.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64;
            let var = w
                .iter()
                .map(|&v| (f64::from(v) - mean).powi(2))
                .sum::<f64>()
                / n as f64;
            let std = var.sqrt() as f32;
            assert!(mean.abs() < 1e-3, "{mean}");
            assert!(
                (std / sigma - 1.0).abs() < 0.02,
                "σ {std}, expected {sigma}"
            );
        }
    }

    #[test]
    fn baseline_wander_is_a_slow_bounded_sinusoid() {
        let config = only(AugmentConfig {
            wander_amplitude_mv: 0.1,
            wander_freq_hz: (0.05, 0.5),
            ..AugmentConfig::none()
        });
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        for _ in 0..20 {
            let mut w = vec![0.0f32; 2500];
            let drawn = config.draw(250.0, &mut rng.clone());
            augment(&mut w, 250.0, &config, &mut rng);
            assert!((0.05..0.5).contains(&drawn.wander_freq_hz));
            assert!(drawn.wander_amplitude_mv <= 0.1);
            assert!(w
                .iter()
                .all(|v| v.abs() <= drawn.wander_amplitude_mv + 1e-6));
            // Slow: consecutive samples differ by at most 2π·f·A/fs.
            let max_step = std::f32::consts::TAU * 0.5 * 0.1 / 250.0 + 1e-6;
            assert!(w.windows(2).all(|p| (p[1] - p[0]).abs() <= max_step));
        }
    }

    #[test]
    fn leads_of_one_example_share_scale_and_shift() {
        let config = AugmentConfig {
            noise_std_mv: (0.0, 0.0),
            wander_amplitude_mv: 0.0,
            ..AugmentConfig::default()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let drawn = config.draw(250.0, &mut rng);
        let mut a = ecg_like(500);
        let mut b = ecg_like(500);
        drawn.apply(&mut a, &mut rng);
        drawn.apply(&mut b, &mut rng);
        assert_eq!(a, b);
    }

    #[test]
    fn degenerate_and_invalid_settings_do_not_panic() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let weird = AugmentConfig {
            amplitude_scale: (1.2, 0.8),
            noise_std_mv: (f32::NAN, 0.01),
            wander_amplitude_mv: f32::INFINITY,
            wander_freq_hz: (0.5, 0.5),
            max_shift_s: -0.1,
            enabled: true,
        };
        assert!(weird.validate().is_err());
        let mut w = ecg_like(100);
        augment(&mut w, 250.0, &weird, &mut rng);
        assert!(w.iter().all(|v| v.is_finite()));
        let mut empty: Vec<f32> = vec![];
        augment(&mut empty, 250.0, &AugmentConfig::default(), &mut rng);
        augment(&mut w, f64::NAN, &AugmentConfig::default(), &mut rng);
        assert_eq!(AugmentConfig::default().validate(), Ok(()));
        assert_eq!(AugmentConfig::none().validate(), Ok(()));
    }

    #[test]
    fn configs_round_trip_through_json() {
        let config = AugmentConfig::default();
        let json = serde_json::to_string(&config).unwrap();
        let back: AugmentConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, config);
        // Missing fields take their default values.
        let partial: AugmentConfig = serde_json::from_str(r#"{"max_shift_s": 0.25}"#).unwrap();
        assert_eq!(partial.max_shift_s, 0.25);
        assert_eq!(partial.amplitude_scale, (0.8, 1.2));
        assert!(serde_json::from_str::<AugmentConfig>(r#"{"shift": 1}"#).is_err());
    }
}
