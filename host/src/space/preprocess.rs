//! What the preprocessing genes mean in samples, at a given ADC rate, and the low-pass taps.
//!
//! The host (training data), the ONNX export and the firmware derive every sample count from
//! [`Preprocessing::pipeline_shape`] and every filter tap from [`fir_lowpass`], so they agree.

use std::f64::consts::PI;

use serde::{Deserialize, Serialize};

use super::genes::{Band, Baseline, Preprocessing, Window};
use super::shape::RR_SIDE_INPUTS;
use super::SpaceError;

/// The sample counts of a candidate's preprocessing at one ADC rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct PipelineShape {
    /// The ADC rate, in Hz.
    pub input_fs_hz: f64,
    /// Samples of one example at the ADC rate: `round(length_s * fs)`, or
    /// `round(pre_s * fs) + round(post_s * fs)` for a beat.
    pub window_samples: usize,
    /// For a beat, the index of the fiducial sample in the window (`round(pre_s * fs)`).
    pub fiducial_index: Option<usize>,
    /// Taps of the low-pass, if any (run at the ADC rate).
    pub fir_taps: Option<usize>,
    /// The decimation factor.
    pub decimation: usize,
    /// The rate the network runs at, `fs / decimation`.
    pub network_fs_hz: f64,
    /// Samples the network sees: `ceil(window_samples / decimation)` (samples 0, d, 2d, ...).
    pub network_samples: usize,
    /// Length of the baseline moving average at the network rate, if any:
    /// `round(window_s * fs / decimation)`, plus one if even (centred), at least 1.
    pub moving_average_samples: Option<usize>,
    /// Side inputs to the head (the RR intervals), 0 or 3.
    pub side_inputs: usize,
}

impl Preprocessing {
    /// The sample counts of this preprocessing for examples arriving at `input_fs_hz`.
    ///
    /// Fails when the rate is not positive, the low-pass cutoff is not below half the rate,
    /// the decimation is 0 or the window holds no sample.
    pub fn pipeline_shape(&self, input_fs_hz: f64) -> Result<PipelineShape, SpaceError> {
        if !(input_fs_hz.is_finite() && input_fs_hz > 0.0) {
            return Err(SpaceError::BadSampleRate { fs_hz: input_fs_hz });
        }
        let samples = |seconds: f64| (seconds.max(0.0) * input_fs_hz).round() as usize;
        let (window_samples, fiducial_index, side_inputs) = match self.window {
            Window::Fixed { length_s } => (samples(length_s), None, 0),
            Window::Beat {
                pre_s,
                post_s,
                rr_intervals,
            } => {
                let pre = samples(pre_s);
                let side = if rr_intervals { RR_SIDE_INPUTS } else { 0 };
                (pre + samples(post_s), Some(pre), side)
            }
        };
        if window_samples == 0 {
            return Err(SpaceError::EmptyWindow { fs_hz: input_fs_hz });
        }
        let fir_taps = match self.band {
            Band::None => None,
            Band::LowPass { cutoff_hz, taps } => {
                let nyquist_hz = input_fs_hz / 2.0;
                if !(cutoff_hz > 0.0 && cutoff_hz < nyquist_hz) {
                    return Err(SpaceError::CutoffAboveNyquist {
                        cutoff_hz,
                        nyquist_hz,
                    });
                }
                Some(taps)
            }
        };
        let decimation = self.decimation;
        if decimation == 0 {
            return Err(SpaceError::NotAllowed {
                gene: "preprocessing.decimation",
                value: "0".to_string(),
                allowed: "1, 2 or 4",
            });
        }
        let network_fs_hz = input_fs_hz / decimation as f64;
        let moving_average_samples = match self.baseline {
            Baseline::None => None,
            Baseline::MovingAverage { window_s } => {
                let m = (window_s.max(0.0) * network_fs_hz).round() as usize;
                Some(if m % 2 == 0 { m + 1 } else { m })
            }
        };
        Ok(PipelineShape {
            input_fs_hz,
            window_samples,
            fiducial_index,
            fir_taps,
            decimation,
            network_fs_hz,
            network_samples: window_samples.div_ceil(decimation),
            moving_average_samples,
            side_inputs,
        })
    }
}

/// The taps of the low-pass gene: a Hamming-windowed sinc, normalised to unit DC gain.
///
/// `h[n] = w[n] * 2 fc/fs * sinc(2 fc/fs * (n - M))` for `n = 0..taps`, `M = (taps - 1) / 2`,
/// `sinc(x) = sin(pi x) / (pi x)`, `w[n] = 0.54 - 0.46 cos(2 pi n / (taps - 1))`, then every tap
/// divided by their sum. Symmetric (linear phase, delay `M` samples). Applied as a "same"
/// convolution whose ends repeat the edge sample.
pub fn fir_lowpass(cutoff_hz: f64, taps: usize, fs_hz: f64) -> Vec<f64> {
    if taps <= 1 {
        return vec![1.0; taps];
    }
    let fc = cutoff_hz / fs_hz;
    let m = (taps - 1) as f64 / 2.0;
    let raw: Vec<f64> = (0..taps)
        .map(|n| {
            let x = 2.0 * fc * (n as f64 - m);
            let sinc = if x == 0.0 {
                1.0
            } else {
                (PI * x).sin() / (PI * x)
            };
            let window = 0.54 - 0.46 * (2.0 * PI * n as f64 / (taps - 1) as f64).cos();
            window * 2.0 * fc * sinc
        })
        .collect();
    let sum: f64 = raw.iter().sum();
    raw.into_iter().map(|h| h / sum).collect()
}
