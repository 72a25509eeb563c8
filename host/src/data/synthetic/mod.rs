//! The built-in synthetic ECG (the `synthetic` task, BENCHMARKS.md section 1.1).
//!
//! Each window is one lead, 10 s at 250 Hz in mV, drawn from McSharry et al.'s dynamical model
//! (ECGSYN) with its own rhythm, rate, PR interval, optional PVCs and noise. Labels come from the
//! generator's parameters, never from measuring the signal.
//!
//! Steps, one file each:
//! - `plan`: rhythm and labels, beat times (`rr`: the sinus and AF RR processes), PVCs, and the
//!   Gaussian waves of every beat;
//! - `model`: the z equation of the model, integrated with RK4 at 1,000 Hz from t = 0 and kept
//!   every 4th sample over [1, 11) s, then scaled as ECGSYN onto −0.4..1.2 mV;
//! - `noise`: AF f-waves, then baseline wander, EMG, mains and the global gain.
//!
//! A window depends only on `(dataset_seed, index)`: its random numbers come from a ChaCha8
//! stream keyed by both, so windows can be generated in any order, on any number of threads.

mod model;
mod noise;
mod plan;
mod rr;

use std::fmt;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The labels of the synthetic task, in output order (abbreviations as in CinC 2021).
pub const LABELS: [&str; 6] = ["NSR", "STach", "SB", "AF", "PVC", "IAVB"];
/// Sampling rate of a window, Hz.
pub const FS_HZ: f64 = 250.0;
/// Samples in a window (10 s).
pub const WINDOW_SAMPLES: usize = 2500;

/// A label set as a bit mask over LABELS (bit i = LABELS[i]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LabelSet(pub u8);

impl LabelSet {
    /// No label.
    pub const EMPTY: LabelSet = LabelSet(0);
    /// Sinus rhythm, 60-100 bpm.
    pub const NSR: LabelSet = LabelSet(1 << 0);
    /// Sinus tachycardia.
    pub const STACH: LabelSet = LabelSet(1 << 1);
    /// Sinus bradycardia.
    pub const SB: LabelSet = LabelSet(1 << 2);
    /// Atrial fibrillation.
    pub const AF: LabelSet = LabelSet(1 << 3);
    /// At least one premature ventricular beat.
    pub const PVC: LabelSet = LabelSet(1 << 4);
    /// First-degree AV block.
    pub const IAVB: LabelSet = LabelSet(1 << 5);
    /// The four rhythm labels, exactly one of which every window has.
    pub const RHYTHMS: LabelSet = LabelSet(0b1111);

    /// The set holding only `LABELS[i]`; `None` when `i` is out of range.
    pub fn from_index(i: usize) -> Option<LabelSet> {
        (i < LABELS.len()).then(|| LabelSet(1 << i))
    }

    /// The set holding the label called `name` (as in [`LABELS`]).
    pub fn from_name(name: &str) -> Option<LabelSet> {
        LABELS
            .iter()
            .position(|&l| l == name)
            .and_then(Self::from_index)
    }

    /// Whether every label of `other` is in `self`.
    pub const fn contains(self, other: LabelSet) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether `LABELS[i]` is in the set.
    pub const fn has_index(self, i: usize) -> bool {
        i < LABELS.len() && self.0 & (1 << i) != 0
    }

    /// The labels of both sets.
    #[must_use]
    pub const fn union(self, other: LabelSet) -> LabelSet {
        LabelSet(self.0 | other.0)
    }

    /// The labels in both sets.
    #[must_use]
    pub const fn intersection(self, other: LabelSet) -> LabelSet {
        LabelSet(self.0 & other.0)
    }

    /// Number of labels in the set.
    pub const fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// Whether the set has no label.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The names of the labels in the set, in [`LABELS`] order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        LABELS
            .iter()
            .enumerate()
            .filter(move |&(i, _)| self.has_index(i))
            .map(|(_, &name)| name)
    }
}

impl fmt::Display for LabelSet {
    /// Names joined by `+` (`NSR+PVC`), or `-` for the empty set.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("-");
        }
        for (k, name) in self.names().enumerate() {
            if k > 0 {
                f.write_str("+")?;
            }
            f.write_str(name)?;
        }
        Ok(())
    }
}

/// One generated window.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticWindow {
    /// The signal, [`WINDOW_SAMPLES`] samples at [`FS_HZ`], mV.
    pub samples_mv: Vec<f32>,
    /// The window's labels (from the generator's parameters).
    pub labels: LabelSet,
    /// The mean heart rate parameter the rhythm was drawn with, bpm (the ventricular rate in AF).
    pub mean_hr_bpm: f64,
    /// Sample indices of the R peaks inside the window (the model's θ = 0 of each beat, the
    /// trough for a PVC of negative polarity), PVCs included, in time order.
    pub r_peaks: Vec<usize>,
    /// Sample indices of the PVCs' R peaks (a subset of `r_peaks`).
    pub pvc_peaks: Vec<usize>,
}

/// The ChaCha8 stream of one window: the key holds the dataset seed, the index and a tag, so
/// every (seed, index) pair has its own stream.
fn window_rng(dataset_seed: u64, index: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&dataset_seed.to_le_bytes());
    key[8..16].copy_from_slice(&index.to_le_bytes());
    key[16..].copy_from_slice(b"ecgnas/synthetic");
    ChaCha8Rng::from_seed(key)
}

/// Sample index of a time on the simulation clock, if inside the window.
fn sample_index(t: f64) -> Option<usize> {
    let x = ((t - model::KEEP_START_S) * FS_HZ).round();
    (x >= 0.0 && x < WINDOW_SAMPLES as f64).then_some(x as usize)
}

/// Generates a window, with or without noise; also returns its plan (for tests).
fn synthesize(dataset_seed: u64, index: u64, noisy: bool) -> (SyntheticWindow, plan::Plan) {
    let mut rng = window_rng(dataset_seed, index);
    let plan = plan::draw(&mut rng);
    let mut x = model::simulate(&plan.waves);
    model::scale_ecgsyn(&mut x);
    if plan.rhythm == plan::Rhythm::Af {
        noise::add_f_waves(&mut rng, &mut x);
    }
    if noisy {
        noise::Noise::draw(&mut rng).apply(&mut rng, &mut x);
    }
    let mut r_peaks = Vec::new();
    let mut pvc_peaks = Vec::new();
    for beat in &plan.beats {
        if let Some(i) = sample_index(beat.t) {
            r_peaks.push(i);
            if beat.pvc.is_some() {
                pvc_peaks.push(i);
            }
        }
    }
    let window = SyntheticWindow {
        samples_mv: x.iter().map(|&v| v as f32).collect(),
        labels: plan.labels,
        mean_hr_bpm: plan.hr_mean,
        r_peaks,
        pvc_peaks,
    };
    (window, plan)
}

/// Deterministic: the same (dataset_seed, index) always gives the same window, independent of any other window.
pub fn generate_window(dataset_seed: u64, index: u64) -> SyntheticWindow {
    synthesize(dataset_seed, index, true).0
}

/// The window [`generate_window`] gives for the same arguments before noise and gain: the same
/// beats and labels, the model's output scaled onto −0.4..1.2 mV plus, in AF, the f-waves.
pub fn generate_clean_window(dataset_seed: u64, index: u64) -> SyntheticWindow {
    synthesize(dataset_seed, index, false).0
}

#[cfg(test)]
mod tests;
