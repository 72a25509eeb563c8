//! What is added to the model's output: AF fibrillatory waves (part of the rhythm), then the
//! per-window noise and gain (section 1.1).

use std::f64::consts::TAU;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use super::FS_HZ;

fn uniform(rng: &mut ChaCha8Rng, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.random::<f64>()
}

/// Adds `amplitude·sin(2π f t + phase)` at 250 Hz, by rotating a unit vector (no `sin` a sample;
/// the rounding drift over 2,500 samples is about 1e-13).
fn add_sinusoid(x: &mut [f64], amplitude: f64, freq_hz: f64, phase: f64) {
    let step = TAU * freq_hz / FS_HZ;
    let (ds, dc) = step.sin_cos();
    let (mut s, mut c) = phase.sin_cos();
    for v in x {
        *v += amplitude * s;
        (s, c) = (s * dc + c * ds, c * dc - s * ds);
    }
}

/// AF f-waves: a sinusoid at U(5, 9) Hz whose phase also takes a random walk (σ 0.02 rad a
/// sample), amplitude U(0.02, 0.10) mV. They are added after ECGSYN's scaling, so their amplitude
/// is in mV as drawn.
pub(super) fn add_f_waves(rng: &mut ChaCha8Rng, x: &mut [f64]) {
    let freq = uniform(rng, 5.0, 9.0);
    let amplitude = uniform(rng, 0.02, 0.10);
    let mut phase = TAU * rng.random::<f64>();
    let step = TAU * freq / FS_HZ;
    for v in x {
        *v += amplitude * phase.sin();
        let jitter: f64 = StandardNormal.sample(rng);
        phase += step + 0.02 * jitter;
    }
}

/// The noise of one window, drawn once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Noise {
    /// Baseline wander: frequency U(0.15, 0.5) Hz, random phase, amplitude U(0, 0.2) mV.
    pub wander: (f64, f64, f64),
    /// White Gaussian EMG σ ~ U(0.005, 0.03) mV.
    pub emg_sigma: f64,
    /// Mains: 50 or 60 Hz (p = ½ each), random phase, amplitude U(0, 0.03) mV.
    pub mains: (f64, f64, f64),
    /// Global gain U(0.6, 1.4) on the whole signal, noise included (an amplifier's gain).
    pub gain: f64,
}

impl Noise {
    /// Draws the noise parameters.
    pub fn draw(rng: &mut ChaCha8Rng) -> Self {
        let wander = (
            uniform(rng, 0.15, 0.5),
            TAU * rng.random::<f64>(),
            uniform(rng, 0.0, 0.2),
        );
        let emg_sigma = uniform(rng, 0.005, 0.03);
        let mains_hz = if rng.random_bool(0.5) { 50.0 } else { 60.0 };
        let mains = (mains_hz, TAU * rng.random::<f64>(), uniform(rng, 0.0, 0.03));
        let gain = uniform(rng, 0.6, 1.4);
        Self {
            wander,
            emg_sigma,
            mains,
            gain,
        }
    }

    /// Adds the noise to `x` and applies the gain; the EMG samples come from `rng`.
    pub fn apply(&self, rng: &mut ChaCha8Rng, x: &mut [f64]) {
        add_sinusoid(x, self.wander.2, self.wander.0, self.wander.1);
        add_sinusoid(x, self.mains.2, self.mains.0, self.mains.1);
        for v in x {
            let e: f64 = StandardNormal.sample(rng);
            *v = self.gain * (*v + self.emg_sigma * e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_sinusoid_matches_sin() {
        let mut x = vec![0.0; 2500];
        add_sinusoid(&mut x, 0.7, 50.0, 1.1);
        for (j, v) in x.iter().enumerate() {
            let want = 0.7 * (TAU * 50.0 * j as f64 / FS_HZ + 1.1).sin();
            assert!((v - want).abs() < 1e-10, "sample {j}: {v} vs {want}");
        }
    }
}
