//! What both SQL stores share: a row's columns as the database keeps them, and their
//! conversion to and from the store's types (see the storage conventions in the module above).

use super::{RunInfo, TrialRecord, TrialStatus};

/// A trial id as SQL keeps it (ids beyond `i64::MAX` are refused before any write, and no
/// such id can be stored, so the saturation never matches a row).
pub(super) fn to_sql_id(id: u64) -> i64 {
    i64::try_from(id).unwrap_or(i64::MAX)
}

/// A `u64` seed as the `i64` with the same bits.
pub(super) fn seed_to_sql(seed: u64) -> i64 {
    seed as i64
}

/// The `u64` seed whose bits a stored `i64` holds.
pub(super) fn seed_from_sql(seed: i64) -> u64 {
    seed as u64
}

/// A JSON value as stored.
pub(super) fn json_text(value: &serde_json::Value) -> String {
    value.to_string()
}

/// A stored JSON text parsed, or what is wrong with it.
pub(super) fn json_value(column: &str, text: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(text).map_err(|e| format!("column {column}: not JSON: {e}"))
}

/// A trial's row as the database gives it, before its text columns are parsed.
pub(super) struct RawTrial {
    pub(super) trial_id: i64,
    pub(super) candidate_id: String,
    pub(super) candidate: String,
    pub(super) status: String,
    pub(super) fail_reason: Option<String>,
    pub(super) quality: Option<f64>,
    pub(super) metrics: String,
    pub(super) costs: String,
    pub(super) reward: Option<f64>,
    pub(super) feasible: Option<bool>,
    pub(super) wall_s: Option<f64>,
    pub(super) seed: i64,
    pub(super) started_at: Option<String>,
    pub(super) finished_at: Option<String>,
}

impl RawTrial {
    pub(super) fn into_record(self) -> Result<TrialRecord, String> {
        let trial_id = u64::try_from(self.trial_id)
            .map_err(|_| format!("negative trial id {}", self.trial_id))?;
        let status = match (self.status.as_str(), self.fail_reason) {
            ("pending", None) => TrialStatus::Pending,
            ("running", None) => TrialStatus::Running,
            ("done", None) => TrialStatus::Done,
            ("failed", Some(reason)) => TrialStatus::Failed { reason },
            (other, reason) => {
                return Err(format!(
                    "trial {trial_id}: status {other:?} with failure reason {reason:?}"
                ))
            }
        };
        Ok(TrialRecord {
            trial_id,
            candidate_id: self.candidate_id,
            candidate: json_value("candidate", &self.candidate)?,
            status,
            quality: self.quality,
            metrics: json_value("metrics", &self.metrics)?,
            costs: json_value("costs", &self.costs)?,
            reward: self.reward,
            feasible: self.feasible,
            wall_s: self.wall_s,
            seed: seed_from_sql(self.seed),
            started_at: self.started_at,
            finished_at: self.finished_at,
        })
    }
}

/// A run's row as the database gives it.
pub(super) struct RawRun {
    pub(super) run_id: String,
    pub(super) created_at: String,
    pub(super) task: String,
    pub(super) data: String,
    pub(super) profile: String,
    pub(super) strategy: String,
    pub(super) seed: i64,
    pub(super) budget: String,
    pub(super) space: String,
    pub(super) ecgnas_version: String,
}

impl RawRun {
    pub(super) fn into_info(self) -> Result<RunInfo, String> {
        Ok(RunInfo {
            budget: json_value("budget", &self.budget)?,
            space: json_value("space", &self.space)?,
            run_id: self.run_id,
            created_at: self.created_at,
            task: self.task,
            data: self.data,
            profile: self.profile,
            strategy: self.strategy,
            seed: seed_from_sql(self.seed),
            ecgnas_version: self.ecgnas_version,
        })
    }
}

/// The failure reason column of a status.
pub(super) fn fail_reason(status: &TrialStatus) -> Option<&str> {
    match status {
        TrialStatus::Failed { reason } => Some(reason),
        _ => None,
    }
}

/// The stored status name as the error type keeps it.
pub(super) fn static_status(name: &str) -> &'static str {
    match name {
        "pending" => "pending",
        "running" => "running",
        "done" => "done",
        _ => "failed",
    }
}
