//! RR-interval processes: ECGSYN's bimodal sinus spectrum and i.i.d. atrial-fibrillation intervals.

use std::f64::consts::TAU;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

/// Centre of the low-frequency (Mayer wave) peak of the sinus RR spectrum, Hz.
pub(super) const F_LF_HZ: f64 = 0.1;
/// Centre of the high-frequency (respiratory) peak, Hz.
pub(super) const F_HF_HZ: f64 = 0.25;
/// Standard deviation of both spectral peaks, Hz.
pub(super) const F_STD_HZ: f64 = 0.01;
/// Length of the virtual RR series whose spectrum is synthesised: ECGSYN draws a whole series by
/// inverse FFT and normalises it; a 256 s period gives bins of 1/256 Hz, fine enough to resolve
/// peaks of σ = 0.01 Hz (about 2.5 bins per σ).
const PERIOD_S: f64 = 256.0;
/// Bins farther than this many σ from both peaks are left out (their power is below e^-12.5).
const PEAK_SIGMAS: f64 = 5.0;

/// ECGSYN's sinus RR process, `RR(t) = rr_mean + x(t)`, where `x` has the bimodal spectrum
/// `S(f) = (LF/HF)·N(f; 0.1, 0.01) + N(f; 0.25, 0.01)` and random phases, scaled so that its
/// standard deviation over the series is `60·hr_std/hr_mean²` s, as `rrprocess` in ECGSYN.
///
/// ECGSYN synthesises the series by inverse FFT; this is the same sum of cosines at the bin
/// frequencies, evaluated only at the times that need it (the beat times).
#[derive(Debug, Clone)]
pub(super) struct SinusRr {
    /// Mean RR interval, s.
    pub rr_mean: f64,
    /// Index of the first spectral line: line j is at (k0 + j)/256 Hz.
    k0: u32,
    /// Complex amplitude (a·cos φ, a·sin φ) of each line: x(t) = Σ Re(c_j·e^{iω_j t}).
    lines: Vec<(f64, f64)>,
}

impl SinusRr {
    /// Draws the random phases of a new process.
    pub fn new(rng: &mut ChaCha8Rng, hr_mean: f64, hr_std: f64, lf_hf: f64) -> Self {
        let rr_mean = 60.0 / hr_mean;
        let rr_std = 60.0 * hr_std / (hr_mean * hr_mean);
        let df = 1.0 / PERIOD_S;
        let k0 = ((F_LF_HZ - PEAK_SIGMAS * F_STD_HZ) / df).ceil().max(1.0) as u32;
        let k1 = ((F_HF_HZ + PEAK_SIGMAS * F_STD_HZ) / df).floor() as u32;
        let gauss = |f: f64, f0: f64| {
            let d = (f - f0) / F_STD_HZ;
            (-0.5 * d * d).exp() / (F_STD_HZ * TAU.sqrt())
        };
        let mut lines = Vec::with_capacity((k1 - k0 + 1) as usize);
        let mut variance = 0.0;
        for k in k0..=k1 {
            let f = f64::from(k) * df;
            let power = lf_hf * gauss(f, F_LF_HZ) + gauss(f, F_HF_HZ);
            let amplitude = power.sqrt();
            let phase = TAU * rng.random::<f64>();
            variance += 0.5 * amplitude * amplitude;
            let (s, c) = phase.sin_cos();
            lines.push((amplitude * c, amplitude * s));
        }
        // The standard deviation of a sum of cosines over a whole period is exact, so this is
        // ECGSYN's normalisation of the series to `rr_std`.
        let scale = rr_std / variance.sqrt();
        for line in &mut lines {
            line.0 *= scale;
            line.1 *= scale;
        }
        Self { rr_mean, k0, lines }
    }

    /// The RR interval that starts at time `t` (s); ECGSYN holds `rr(t_beat)` for the beat.
    ///
    /// The lines are harmonics of 1/256 Hz, so e^{iω_j t} are successive powers of one complex
    /// number: two `sin_cos` a call instead of a `cos` a line.
    pub fn at(&self, t: f64) -> f64 {
        let w = TAU / PERIOD_S * t;
        let (s1, c1) = w.sin_cos();
        let (mut s, mut c) = (f64::from(self.k0) * w).sin_cos();
        let mut x = 0.0;
        for &(re, im) in &self.lines {
            // Re((re + i·im)(c + i·s)).
            x += re * c - im * s;
            (c, s) = (c * c1 - s * s1, s * c1 + c * s1);
        }
        self.rr_mean + x
    }
}

/// Shortest and longest atrial-fibrillation RR interval, s.
pub(super) const AF_RR_CLIP_S: (f64, f64) = (0.3, 2.0);

/// The i.i.d. ventricular intervals of atrial fibrillation: normal with mean `60/hr_mean` and
/// coefficient of variation `cv`, clipped to [0.3, 2.0] s.
#[derive(Debug, Clone)]
pub(super) struct AfRr {
    /// Mean RR interval (before clipping), s.
    pub rr_mean: f64,
    normal: Normal<f64>,
}

impl AfRr {
    /// The process for a mean ventricular rate (bpm) and a coefficient of variation.
    pub fn new(hr_mean: f64, cv: f64) -> Self {
        let rr_mean = 60.0 / hr_mean;
        // Mean and σ are finite and σ > 0 for every rate and CV the generator draws.
        let normal = Normal::new(rr_mean, cv * rr_mean).unwrap_or_else(|_| unreachable!());
        Self { rr_mean, normal }
    }

    /// Draws the next interval.
    pub fn next(&self, rng: &mut ChaCha8Rng) -> f64 {
        self.normal
            .sample(rng)
            .clamp(AF_RR_CLIP_S.0, AF_RR_CLIP_S.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// Power of `x` (sampled at `fs`) summed over DFT bins in [lo, hi] Hz.
    fn band_power(x: &[f64], fs: f64, lo: f64, hi: f64) -> f64 {
        let n = x.len();
        let mean = x.iter().sum::<f64>() / n as f64;
        let df = fs / n as f64;
        let (k_lo, k_hi) = ((lo / df).ceil() as usize, (hi / df).floor() as usize);
        (k_lo..=k_hi)
            .map(|k| {
                let w = TAU * k as f64 / n as f64;
                let (mut re, mut im) = (0.0, 0.0);
                for (j, v) in x.iter().enumerate() {
                    re += (v - mean) * (w * j as f64).cos();
                    im -= (v - mean) * (w * j as f64).sin();
                }
                re * re + im * im
            })
            .sum()
    }

    #[test]
    fn sinus_rr_has_the_requested_mean_std_and_lf_hf_ratio() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for &(hr, hr_std, lf_hf) in &[(60.0, 2.0, 0.5), (120.0, 3.0, 2.0), (45.0, 1.0, 1.0)] {
            let rr = SinusRr::new(&mut rng, hr, hr_std, lf_hf);
            // One whole period sampled at 4 Hz: exact bins, no leakage.
            let fs = 4.0;
            let x: Vec<f64> = (0..1024).map(|j| rr.at(j as f64 / fs)).collect();
            let n = x.len() as f64;
            let mean = x.iter().sum::<f64>() / n;
            let std = (x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
            let want_std = 60.0 * hr_std / (hr * hr);
            assert!((mean - 60.0 / hr).abs() < 1e-9, "mean {mean}");
            assert!(
                (std / want_std - 1.0).abs() < 1e-6,
                "std {std} want {want_std}"
            );
            let lf = band_power(&x, fs, 0.04, 0.16);
            let hf = band_power(&x, fs, 0.19, 0.31);
            let total = band_power(&x, fs, 0.0, 2.0);
            assert!(
                ((lf / hf) / lf_hf - 1.0).abs() < 1e-3,
                "LF/HF {} want {lf_hf}",
                lf / hf
            );
            assert!((lf + hf) / total > 0.999, "power outside the two peaks");
        }
    }

    #[test]
    fn harmonic_recurrence_matches_direct_cosines() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let rr = SinusRr::new(&mut rng, 70.0, 2.5, 1.3);
        for &t in &[-5.3, 0.0, 0.77, 6.5, 12.4, 250.0] {
            let direct: f64 = rr
                .lines
                .iter()
                .enumerate()
                .map(|(j, &(re, im))| {
                    let w = TAU * f64::from(rr.k0 + j as u32) / PERIOD_S;
                    re * (w * t).cos() - im * (w * t).sin()
                })
                .sum();
            assert!((rr.at(t) - rr.rr_mean - direct).abs() < 1e-12, "t {t}");
        }
    }

    #[test]
    fn af_rr_is_clipped_with_the_requested_mean_and_cv() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let af = AfRr::new(100.0, 0.2);
        let x: Vec<f64> = (0..20_000).map(|_| af.next(&mut rng)).collect();
        let n = x.len() as f64;
        let mean = x.iter().sum::<f64>() / n;
        let cv = (x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt() / mean;
        assert!((mean - 0.6).abs() < 0.01, "mean {mean}");
        assert!((cv - 0.2).abs() < 0.01, "cv {cv}");
        assert!(x.iter().all(|&v| (0.3..=2.0).contains(&v)));
        let af = AfRr::new(150.0, 0.3);
        let clipped = (0..20_000).filter(|_| af.next(&mut rng) == 0.3).count();
        // P(N(0.4, 0.12) < 0.3) = Φ(-0.83) ≈ 0.20.
        assert!((3_600..4_400).contains(&clipped), "clipped {clipped}");
    }
}
