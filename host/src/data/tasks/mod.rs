//! Tasks turn records into labelled examples and split them by record.
//!
//! A task (section 1 of the benchmark definitions in the README) fixes the classes, what an
//! example is (a beat, a window, a whole recording), which lead it reads and how records are
//! split into training, validation and test sets. A record never appears on two sides.

pub mod augment;
mod cinc2017;
mod cinc2021;
mod mitdb;
pub mod split;
mod synthetic;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{DataError, EcgRecord};
pub use split::Split;

/// The tasks ecgnas knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum TaskKind {
    /// Built-in synthetic ECG, six multi-label rhythm labels, one 10 s window per record.
    Synthetic,
    /// MIT-BIH beats in the AAMI classes N, S, V, F; de Chazal's DS1/DS2 split.
    MitdbAami,
    /// MIT-BIH rhythm annotations as labels of 10 s windows (7 labels, multi-label).
    MitdbRhythm,
    /// CinC 2017 single-lead recordings: N, A, O, ~.
    Cinc2017,
    /// CinC 2021 12-lead recordings: 26 scored SNOMED CT classes, multi-label.
    Cinc2021,
}

impl TaskKind {
    /// The name used on the command line and in files.
    pub fn name(self) -> &'static str {
        match self {
            TaskKind::Synthetic => "synthetic",
            TaskKind::MitdbAami => "mitdb-aami",
            TaskKind::MitdbRhythm => "mitdb-rhythm",
            TaskKind::Cinc2017 => "cinc2017",
            TaskKind::Cinc2021 => "cinc2021",
        }
    }

    /// The task called `name` (as [`TaskKind::name`] spells it).
    pub fn from_name(name: &str) -> Option<TaskKind> {
        [
            TaskKind::Synthetic,
            TaskKind::MitdbAami,
            TaskKind::MitdbRhythm,
            TaskKind::Cinc2017,
            TaskKind::Cinc2021,
        ]
        .into_iter()
        .find(|t| t.name() == name)
    }

    /// The class names, in output order.
    pub fn labels(self) -> Vec<String> {
        let names: &[&str] = match self {
            TaskKind::Synthetic => &crate::data::synthetic::LABELS,
            TaskKind::MitdbAami => &crate::data::labels::aami::AAMI_CLASSES,
            TaskKind::MitdbRhythm => &mitdb::RHYTHM_LABELS,
            TaskKind::Cinc2017 => &crate::data::labels::cinc2017::CINC2017_CLASSES,
            TaskKind::Cinc2021 => &crate::data::labels::cinc2021::CINC2021_CLASSES,
        };
        names.iter().map(|s| s.to_string()).collect()
    }

    /// Whether an example may carry several labels (sigmoid outputs) or exactly one (softmax).
    pub fn multi_label(self) -> bool {
        matches!(
            self,
            TaskKind::Synthetic | TaskKind::MitdbRhythm | TaskKind::Cinc2021
        )
    }
}

impl std::fmt::Display for TaskKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What an example's label is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One class (single-label tasks).
    Class(usize),
    /// One flag per class (multi-label tasks).
    Labels(Vec<bool>),
}

/// One labelled example, located in its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    /// The anchor sample in the record: the beat's fiducial point (beats), the window's first
    /// sample (windows), 0 (whole recordings).
    pub position: usize,
    /// The label.
    pub target: Target,
}

/// A record with the examples a task takes from it.
#[derive(Debug, Clone)]
pub struct TaskRecord {
    /// The record, reduced to the leads the task reads, in the task's lead order.
    pub record: EcgRecord,
    /// Every lead the file holds, in file order.
    pub file_leads: Vec<String>,
    /// The examples, in record order.
    pub examples: Vec<Example>,
    /// Which side of the split the record is on.
    pub split: Split,
}

/// A record the task leaves out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Excluded {
    /// The record's name.
    pub id: String,
    /// Why it is left out.
    pub reason: String,
}

/// Where a task's records come from.
#[derive(Debug, Clone, PartialEq)]
pub enum DataSource {
    /// The built-in generator: `n_windows` windows from `seed`.
    Synthetic {
        /// Dataset seed.
        seed: u64,
        /// Number of windows (records).
        n_windows: usize,
    },
    /// A folder of records, or one record.
    Path(PathBuf),
}

impl DataSource {
    /// The built-in synthetic set as the `synthetic` task defines it: 6,000 windows, seed 0.
    pub fn default_synthetic() -> DataSource {
        DataSource::Synthetic {
            seed: 0,
            n_windows: 6000,
        }
    }
}

/// Lead subsets of CinC 2021 (`--leads`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum LeadSet {
    /// All twelve leads.
    #[default]
    Twelve,
    /// I, II, III, aVR, aVL, aVF.
    Six,
    /// I, II, III, V2.
    Four,
    /// I, II, V2.
    Three,
    /// I, II.
    Two,
}

impl LeadSet {
    /// The lead set with this many leads.
    pub fn from_count(n: usize) -> Option<LeadSet> {
        Some(match n {
            12 => LeadSet::Twelve,
            6 => LeadSet::Six,
            4 => LeadSet::Four,
            3 => LeadSet::Three,
            2 => LeadSet::Two,
            _ => return None,
        })
    }

    /// Lead names in order.
    pub fn names(self) -> &'static [&'static str] {
        match self {
            LeadSet::Twelve => &[
                "I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6",
            ],
            LeadSet::Six => &["I", "II", "III", "aVR", "aVL", "aVF"],
            LeadSet::Four => &["I", "II", "III", "V2"],
            LeadSet::Three => &["I", "II", "V2"],
            LeadSet::Two => &["I", "II"],
        }
    }
}

/// Settings of task loading.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadOptions {
    /// Seed of the stratified splits (0 unless stated).
    pub split_seed: u64,
    /// Sampling rate of CSV records, which do not store it.
    pub csv_fs_hz: Option<f64>,
    /// CinC 2021 leads.
    pub leads: LeadSet,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            split_seed: 0,
            csv_fs_hz: None,
            leads: LeadSet::Twelve,
        }
    }
}

/// A task's examples over a set of records.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The task.
    pub task: TaskKind,
    /// Class names in output order.
    pub labels: Vec<String>,
    /// The records the task uses, sorted by name.
    pub records: Vec<TaskRecord>,
    /// The records it leaves out.
    pub excluded: Vec<Excluded>,
    /// Facts about the loading worth telling the user (which label file was used).
    pub notes: Vec<String>,
}

/// The lowest sampling rate accepted for ECG: below it the QRS complex (10-40 Hz content)
/// cannot be represented, so such a rate is almost certainly a mistake.
pub const MIN_ECG_FS_HZ: f64 = 50.0;

/// Loads a task's dataset.
pub fn load(
    task: TaskKind,
    source: &DataSource,
    options: &LoadOptions,
) -> Result<Dataset, DataError> {
    let mut dataset =
        match (task, source) {
            (TaskKind::Synthetic, DataSource::Synthetic { seed, n_windows }) => {
                synthetic::load(*seed, *n_windows, options.split_seed)
            }
            (_, DataSource::Synthetic { .. }) => {
                return Err(DataError::invalid(
                    "synthetic",
                    format!(
                        "the built-in synthetic data serve the `synthetic` task only, not `{task}`"
                    ),
                ))
            }
            (TaskKind::Synthetic, DataSource::Path(path)) => return Err(DataError::invalid(
                path,
                "the `synthetic` task reads the built-in generator; give `synthetic` as the data",
            )),
            (TaskKind::MitdbAami, DataSource::Path(path)) => mitdb::load_aami(path)?,
            (TaskKind::MitdbRhythm, DataSource::Path(path)) => mitdb::load_rhythm(path)?,
            (TaskKind::Cinc2017, DataSource::Path(path)) => cinc2017::load(path, options)?,
            (TaskKind::Cinc2021, DataSource::Path(path)) => cinc2021::load(path, options)?,
        };
    dataset
        .records
        .sort_by(|a, b| a.record.id.cmp(&b.record.id));
    Ok(dataset)
}

/// Checks a record's sampling rate before a task uses it.
fn check_fs(record: &EcgRecord) -> Result<(), DataError> {
    if !(record.fs.is_finite() && record.fs >= MIN_ECG_FS_HZ) {
        return Err(DataError::invalid(
            record
                .path
                .clone()
                .unwrap_or_else(|| PathBuf::from(&record.id)),
            format!(
                "sampling rate {} Hz is too low for ECG (at least {MIN_ECG_FS_HZ} Hz)",
                record.fs
            ),
        ));
    }
    Ok(())
}

/// Keeps only the named leads, in that order; `None` when one is missing.
fn select_leads(record: &EcgRecord, names: &[&str]) -> Option<EcgRecord> {
    let leads = names
        .iter()
        .map(|n| record.lead(n).cloned())
        .collect::<Option<Vec<_>>>()?;
    Some(EcgRecord {
        leads,
        ..record.clone()
    })
}

impl Dataset {
    /// Examples per class in one record: for single-label tasks the examples of each class,
    /// for multi-label tasks the examples where each label is positive.
    pub fn label_counts(&self, record: &TaskRecord) -> Vec<usize> {
        let mut counts = vec![0; self.labels.len()];
        for example in &record.examples {
            match &example.target {
                Target::Class(c) => counts[*c] += 1,
                Target::Labels(flags) => {
                    for (count, _) in counts.iter_mut().zip(flags).filter(|(_, f)| **f) {
                        *count += 1;
                    }
                }
            }
        }
        counts
    }

    /// [`Dataset::label_counts`] summed over the records of one split, or all when `None`.
    pub fn totals(&self, split: Option<Split>) -> Vec<usize> {
        let mut totals = vec![0; self.labels.len()];
        for record in self
            .records
            .iter()
            .filter(|r| split.is_none_or(|s| r.split == s))
        {
            for (t, c) in totals.iter_mut().zip(self.label_counts(record)) {
                *t += c;
            }
        }
        totals
    }

    /// Number of examples in a split.
    pub fn n_examples(&self, split: Split) -> usize {
        self.records
            .iter()
            .filter(|r| r.split == split)
            .map(|r| r.examples.len())
            .sum()
    }

    /// Loss weights for the classes, from the training split.
    ///
    /// Single-label: `n / (k * n_c)` (balanced weights; an absent class gets 0). Multi-label:
    /// the positive-example weight `n_neg / n_pos` per label (1 when a label never occurs).
    pub fn class_weights(&self) -> Vec<f32> {
        let counts = self.totals(Some(Split::Train));
        let n = self.n_examples(Split::Train) as f32;
        if self.task.multi_label() {
            counts
                .iter()
                .map(|&pos| {
                    if pos == 0 {
                        1.0
                    } else {
                        (n - pos as f32) / pos as f32
                    }
                })
                .collect()
        } else {
            let k = counts.iter().filter(|&&c| c > 0).count() as f32;
            counts
                .iter()
                .map(|&c| if c == 0 { 0.0 } else { n / (k * c as f32) })
                .collect()
        }
    }
}
