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
