//! The `--json` output of each command, one serde struct per command.

use serde::Serialize;

/// `ecgnas data inspect --task T --json`.
#[derive(Debug, Serialize)]
pub struct TaskInspection {
    /// The task's name.
    pub task: String,
    /// One entry per record the task uses, sorted by name.
    pub records: Vec<TaskRecordSummary>,
    /// Examples per class over all records.
    pub totals: serde_json::Map<String, serde_json::Value>,
    /// Records the task leaves out, with the reason.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub excluded: Vec<crate::data::tasks::Excluded>,
}

/// One record of [`TaskInspection`].
#[derive(Debug, Serialize)]
pub struct TaskRecordSummary {
    /// Record name.
    pub id: String,
    /// Sampling frequency, Hz.
    pub fs: f64,
    /// Samples per lead.
    pub n_samples: usize,
    /// Duration in seconds, two decimals.
    pub duration_s: f64,
    /// Every lead of the file.
    pub leads: Vec<String>,
    /// Examples per class in this record.
    pub labels: serde_json::Map<String, serde_json::Value>,
}

/// `ecgnas data inspect --json` without `--task`: per-record statistics of WFDB records.
#[derive(Debug, Serialize)]
pub struct RecordsInspection {
    /// One entry per record, sorted by name.
    pub records: Vec<RecordStatsJson>,
}

/// One record of [`RecordsInspection`].
#[derive(Debug, Serialize)]
pub struct RecordStatsJson {
    /// Record name.
    pub id: String,
    /// Sampling frequency from the header, Hz.
    pub fs: f64,
    /// Samples per signal.
    pub n_samples: usize,
    /// One entry per signal, in header order.
    pub signals: Vec<SignalStatsJson>,
    /// Annotation counts of the record's `.atr` file (empty without one).
    pub annotations: AnnotationCountsJson,
}

/// One signal of [`RecordStatsJson`]: header fields and exact sums of the digital samples.
#[derive(Debug, Serialize)]
pub struct SignalStatsJson {
    /// The signal's description (lead name).
    pub name: String,
    /// Physical unit.
    pub units: String,
    /// Storage format number.
    pub format: u16,
    /// ADC units per physical unit.
    pub gain: f64,
    /// Digital value of 0 physical units.
    pub baseline: i64,
    /// ADC resolution, bits.
    pub adc_res: u32,
    /// ADC zero.
    pub adc_zero: i64,
    /// Smallest stored digital sample (`null` without samples).
    pub min: Option<i32>,
    /// Largest stored digital sample (`null` without samples).
    pub max: Option<i32>,
    /// Sum of the stored digital samples, invalid codes included.
    pub sum: i64,
    /// Sum of their squares.
    pub sum_sq: u64,
    /// Number of invalid samples.
    pub invalid: usize,
    /// Whether the header's checksum matches (`null` where the header has none).
    pub checksum_ok: Option<bool>,
}

/// Annotation counts of [`RecordStatsJson`].
#[derive(Debug, Serialize)]
pub struct AnnotationCountsJson {
    /// Annotations per symbol.
    pub counts: std::collections::BTreeMap<String, usize>,
    /// Annotations per non-empty aux note, NUL padding removed.
    pub aux_counts: std::collections::BTreeMap<String, usize>,
}
