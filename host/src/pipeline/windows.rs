//! Records at the device's ADC rate, and a candidate's examples cut from them.
//!
//! Whole-recording tasks (`cinc2017`, `cinc2021`) cut windows of the candidate's length at a
//! stride of half a window from sample 0, the last one aligned to the recording's end (one
//! window, zero-padded, when the recording is shorter); a recording's answer averages its
//! windows' probabilities. Beats take the candidate's window around the annotated sample,
//! repeating the edge sample beyond the record.

use crate::data::resample::resample;
use crate::data::tasks::{Dataset, Split, Target, TaskKind};
use crate::data::DataError;
use crate::space::{Preprocessing, SpaceError, Window};
use crate::train::{ExampleSet, Targets};

use super::preprocess::LeadPlan;

/// One record resampled to the ADC rate, with its examples' positions at that rate.
#[derive(Debug, Clone)]
pub struct AdcRecord {
    /// Record name.
    pub id: String,
    /// Split side.
    pub split: Split,
    /// Leads at the ADC rate.
    pub leads: Vec<Vec<f32>>,
    /// Example anchor samples at the ADC rate, with their targets.
    pub examples: Vec<(usize, Target)>,
}

/// A task's dataset at the device's ADC rate: what every candidate's examples are cut from.
#[derive(Debug, Clone)]
pub struct AdcDataset {
    /// The task.
    pub task: TaskKind,
    /// Class names.
    pub labels: Vec<String>,
    /// The ADC rate, Hz.
    pub fs_hz: f64,
    /// The records.
    pub records: Vec<AdcRecord>,
}

/// A candidate's examples of one split.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The network's inputs, one per window.
    pub set: ExampleSet,
    /// For each window, the index of the group (recording or example) it answers for.
    pub groups: Vec<usize>,
    /// The label of each group.
    pub group_targets: Targets,
}

impl AdcDataset {
    /// Resamples every record of `dataset` to `fs_hz` (once per search).
    pub fn new(dataset: &Dataset, fs_hz: f64) -> Result<AdcDataset, DataError> {
        let mut records = Vec::with_capacity(dataset.records.len());
        for r in &dataset.records {
            let from = r.record.fs;
            let leads = r
                .record
                .leads
                .iter()
                .map(|lead| {
                    // Invalid (NaN) samples would spread through every filter: hold zero.
                    let clean: Vec<f32> = lead
                        .samples
                        .iter()
                        .map(|v| if v.is_finite() { *v } else { 0.0 })
                        .collect();
                    resample(&clean, from, fs_hz).map_err(|e| {
                        DataError::invalid(
                            r.record
                                .path
                                .clone()
                                .unwrap_or_else(|| r.record.id.clone().into()),
                            e.to_string(),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let scale = fs_hz / from;
            let examples = r
                .examples
                .iter()
                .map(|e| {
                    (
                        ((e.position as f64) * scale).round() as usize,
                        e.target.clone(),
                    )
                })
                .collect();
            records.push(AdcRecord {
                id: r.record.id.clone(),
                split: r.split,
                leads,
                examples,
            });
        }
        Ok(AdcDataset {
            task: dataset.task,
            labels: dataset.labels.clone(),
            fs_hz,
            records,
        })
    }

    /// Whether each example is a whole recording, answered by averaging windows.
    fn whole_recordings(&self) -> bool {
        matches!(self.task, TaskKind::Cinc2017 | TaskKind::Cinc2021)
    }

    /// Cuts the raw windows (at the ADC rate, before preprocessing) of the examples of `split`
    /// for a candidate's window gene.
    pub fn raw_examples(
        &self,
        split: Split,
        preprocessing: &Preprocessing,
    ) -> Result<RawExamples, SpaceError> {
        let shape = preprocessing.pipeline_shape(self.fs_hz)?;
        let n_leads = self.records.first().map_or(1, |r| r.leads.len());
        let multi = self.task.multi_label();
        let mut windows = Vec::new();
        let mut side = Vec::new();
        let mut window_targets = Vec::new();
        let mut groups = Vec::new();
        let mut group_targets = Vec::new();
        let mut origins = Vec::new();
        for record in self.records.iter().filter(|r| r.split == split) {
            let n = record.leads.first().map_or(0, Vec::len);
            let rr = match preprocessing.window {
                Window::Beat {
                    rr_intervals: true, ..
                } => rr_features(&record.examples),
                _ => Vec::new(),
            };
            for (e, (position, target)) in record.examples.iter().enumerate() {
                let starts: Vec<isize> = match (&preprocessing.window, self.whole_recordings()) {
                    (Window::Fixed { .. }, true) => {
                        recording_window_starts(n, shape.window_samples)
                    }
                    (Window::Fixed { .. }, false) => vec![*position as isize],
                    (Window::Beat { .. }, _) => {
                        vec![*position as isize - shape.fiducial_index.unwrap_or(0) as isize]
                    }
                };
                let group = group_targets.len();
                group_targets.push(target.clone());
                for start in starts {
                    for lead in &record.leads {
                        windows.extend(cut(
                            lead,
                            start,
                            shape.window_samples,
                            matches!(preprocessing.window, Window::Beat { .. }),
                        ));
                    }
                    if let Some(features) = rr.get(e) {
                        side.extend_from_slice(features);
                    }
                    window_targets.push(target.clone());
                    groups.push(group);
                    origins.push((record.id.clone(), start));
                }
            }
        }
        Ok(RawExamples {
            windows,
            n: groups.len(),
            leads: n_leads,
            window_samples: shape.window_samples,
            side,
            side_width: shape.side_inputs,
            targets: to_targets(window_targets, multi),
            groups,
            group_targets: to_targets(group_targets, multi),
            origins,
        })
    }

    /// Cuts and preprocesses the examples of `split` for a candidate's preprocessing.
    pub fn prepare(
        &self,
        split: Split,
        preprocessing: &Preprocessing,
    ) -> Result<Prepared, SpaceError> {
        let raw = self.raw_examples(split, preprocessing)?;
        let shape = preprocessing.pipeline_shape(self.fs_hz)?;
        let plan = LeadPlan::new(preprocessing, &shape);
        let mut inputs = Vec::with_capacity(raw.n * raw.leads * plan.output_len());
        for lead_window in raw.windows.chunks(raw.window_samples.max(1)) {
            inputs.extend(plan.run(lead_window).map_err(SpaceError::Pipeline)?);
        }
        let set = ExampleSet {
            n: raw.n,
            channels: raw.leads,
            len: shape.network_samples,
            inputs,
            side_width: raw.side_width,
            side: raw.side,
            targets: raw.targets,
        };
        Ok(Prepared {
            set,
            groups: raw.groups,
            group_targets: raw.group_targets,
        })
    }
}

fn to_targets(targets: Vec<Target>, multi: bool) -> Targets {
    if multi {
        Targets::Labels(
            targets
                .into_iter()
                .map(|t| match t {
                    Target::Labels(f) => f,
                    Target::Class(c) => vec![c == 0],
                })
                .collect(),
        )
    } else {
        Targets::Classes(
            targets
                .into_iter()
                .map(|t| match t {
                    Target::Class(c) => c as u32,
                    Target::Labels(_) => 0,
                })
                .collect(),
        )
    }
}

/// A split's raw example windows at the ADC rate, before preprocessing: what the exported ONNX
/// model and the device take.
#[derive(Debug, Clone)]
pub struct RawExamples {
    /// Windows, example-major, then lead, then sample (mV).
    pub windows: Vec<f32>,
    /// Number of windows.
    pub n: usize,
    /// Leads.
    pub leads: usize,
    /// Samples per lead of one window.
    pub window_samples: usize,
    /// RR side inputs, `n * side_width` values.
    pub side: Vec<f32>,
    /// Side inputs per window (0 or 3).
    pub side_width: usize,
    /// Each window's label.
    pub targets: Targets,
    /// For each window, the group (recording or example) it answers for.
    pub groups: Vec<usize>,
    /// The label of each group.
    pub group_targets: Targets,
    /// Each window's record and first sample (at the ADC rate; negative before the start).
    pub origins: Vec<(String, isize)>,
}

impl RawExamples {
    /// Window `i`'s samples, `leads x window_samples`.
    pub fn window(&self, i: usize) -> &[f32] {
        let w = self.leads * self.window_samples;
        &self.windows[i * w..(i + 1) * w]
    }

    /// Window `i`'s side inputs.
    pub fn side_of(&self, i: usize) -> &[f32] {
        &self.side[i * self.side_width..(i + 1) * self.side_width]
    }

    /// Averages window probabilities per group (arithmetic mean).
    pub fn group_probabilities(&self, window_probs: &[Vec<f32>]) -> Vec<Vec<f32>> {
        group_means(&self.groups, self.group_targets.len(), window_probs)
    }
}

impl Prepared {
    /// Averages window probabilities per group (arithmetic mean).
    pub fn group_probabilities(&self, window_probs: &[Vec<f32>]) -> Vec<Vec<f32>> {
        group_means(&self.groups, self.group_targets.len(), window_probs)
    }
}

/// The arithmetic mean of the windows' probabilities of each of `n_groups` groups.
fn group_means(groups: &[usize], n_groups: usize, window_probs: &[Vec<f32>]) -> Vec<Vec<f32>> {
    let width = window_probs.first().map_or(0, Vec::len);
    let mut sums = vec![vec![0f32; width]; n_groups];
    let mut counts = vec![0usize; n_groups];
    for (probs, &g) in window_probs.iter().zip(groups) {
        for (s, p) in sums[g].iter_mut().zip(probs) {
            *s += p;
        }
        counts[g] += 1;
    }
    for (s, &c) in sums.iter_mut().zip(&counts) {
        s.iter_mut().for_each(|v| *v /= c.max(1) as f32);
    }
    sums
}

/// Window starts over a recording of `n` samples: stride `w / 2` from 0, the last window
/// ending at the recording's end; one window when the recording is shorter than `w`.
fn recording_window_starts(n: usize, w: usize) -> Vec<isize> {
    if n <= w {
        return vec![0];
    }
    let stride = (w / 2).max(1);
    let mut starts: Vec<isize> = (0..=(n - w)).step_by(stride).map(|s| s as isize).collect();
    if starts.last().is_some_and(|&s| s as usize + w < n) {
        starts.push((n - w) as isize);
    }
    starts
}

/// `len` samples from `start`: beyond the record, the edge sample (beats) or zero (windows).
fn cut(lead: &[f32], start: isize, len: usize, repeat_edges: bool) -> Vec<f32> {
    let n = lead.len() as isize;
    (start..start + len as isize)
        .map(|i| {
            if (0..n).contains(&i) {
                lead[i as usize]
            } else if repeat_edges && n > 0 {
                lead[i.clamp(0, n - 1) as usize]
            } else {
                0.0
            }
        })
        .collect()
}

/// RR side inputs of each beat: previous RR, next RR and the mean of the last 10 RR, each
/// divided by the record's mean RR (the beats given are the task's examples, in order).
fn rr_features(examples: &[(usize, Target)]) -> Vec<[f32; 3]> {
    let positions: Vec<f64> = examples.iter().map(|(p, _)| *p as f64).collect();
    let rr: Vec<f64> = positions.windows(2).map(|w| w[1] - w[0]).collect();
    let mean = if rr.is_empty() {
        1.0
    } else {
        rr.iter().sum::<f64>() / rr.len() as f64
    }
    .max(1.0);
    (0..positions.len())
        .map(|i| {
            let prev = if i > 0 { rr[i - 1] } else { mean };
            let next = rr.get(i).copied().unwrap_or(mean);
            let from = i.saturating_sub(10);
            let last: &[f64] = if i > 0 { &rr[from..i] } else { &[] };
            let local = if last.is_empty() {
                mean
            } else {
                last.iter().sum::<f64>() / last.len() as f64
            };
            [
                (prev / mean) as f32,
                (next / mean) as f32,
                (local / mean) as f32,
            ]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recording_windows_cover_the_end() {
        assert_eq!(recording_window_starts(100, 40), vec![0, 20, 40, 60]);
        assert_eq!(recording_window_starts(90, 40), vec![0, 20, 40, 50]);
        assert_eq!(recording_window_starts(30, 40), vec![0]);
    }

    #[test]
    fn beats_repeat_edges_windows_pad_zero() {
        let lead = [1.0, 2.0, 3.0];
        assert_eq!(cut(&lead, -2, 4, true), vec![1.0, 1.0, 1.0, 2.0]);
        assert_eq!(cut(&lead, 1, 4, false), vec![2.0, 3.0, 0.0, 0.0]);
    }

    #[test]
    fn rr_features_are_relative_to_the_mean() {
        let ex: Vec<(usize, Target)> = [0usize, 100, 200, 400]
            .iter()
            .map(|&p| (p, Target::Class(0)))
            .collect();
        let f = rr_features(&ex);
        let mean = 400.0 / 3.0;
        assert!((f[1][0] - (100.0 / mean) as f32).abs() < 1e-6);
        assert!((f[2][1] - (200.0 / mean) as f32).abs() < 1e-6);
        assert!((f[0][0] - 1.0).abs() < 1e-6);
    }
}
