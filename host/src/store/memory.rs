//! [`MemoryStore`]: the trial store in memory, with the behaviour of the SQLite one.

use super::{
    expired_reason, run_differences, validate_finish, validate_lease_s, validate_trial, Expired,
    Lease, RunInfo, RunState, RunningTrial, StoreError, TrialRecord, TrialStatus, TrialStore,
    WorkQueue,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// A trial store that lives in memory and dies with the process: for tests of strategies and of
/// the search loop. It behaves as [`SqliteStore`](super::SqliteStore) does, error for error.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    location: PathBuf,
    runs: BTreeMap<String, MemRun>,
    current: Option<String>,
}

#[derive(Debug, Clone)]
struct MemRun {
    info: RunInfo,
    /// Indexed by trial id: ids are contiguous from 0.
    trials: Vec<MemTrial>,
    checkpoint: Option<(u64, serde_json::Value)>,
}

#[derive(Debug, Clone)]
struct MemTrial {
    record: TrialRecord,
    worker: Option<String>,
    lease_until: Option<f64>,
    attempts: u32,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore {
            location: PathBuf::from("(memory)"),
            runs: BTreeMap::new(),
            current: None,
        }
    }

    fn run(&self) -> Result<(&str, &MemRun), StoreError> {
        let no_run = || StoreError::NoRun {
            db: self.location.clone(),
        };
        let id = self.current.as_deref().ok_or_else(no_run)?;
        let run = self.runs.get(id).ok_or_else(no_run)?;
        Ok((id, run))
    }

    fn run_mut(&mut self) -> Result<(&Path, &str, &mut MemRun), StoreError> {
        let no_run = StoreError::NoRun {
            db: self.location.clone(),
        };
        let Some(id) = self.current.as_deref() else {
            return Err(no_run);
        };
        let Some(run) = self.runs.get_mut(id) else {
            return Err(no_run);
        };
        Ok((&self.location, id, run))
    }
}

/// Seconds since 1970 on this machine's clock.
fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The index of a trial id in a run's list (ids are below `i64::MAX`, so they fit a `usize` on
/// 64-bit machines; elsewhere an id that does not fit is simply absent).
fn index(trial_id: u64) -> Option<usize> {
    usize::try_from(trial_id).ok()
}

fn lease_lost(db: &Path, run_id: &str, lease: &Lease) -> StoreError {
    StoreError::LeaseLost {
        db: db.to_path_buf(),
        run_id: run_id.to_string(),
        trial_id: lease.trial.trial_id,
        worker: lease.worker.clone(),
    }
}

/// Whether `lease` still holds `trial`.
fn holds(trial: &MemTrial, lease: &Lease) -> bool {
    trial.record.status == TrialStatus::Running
        && trial.worker.as_deref() == Some(lease.worker.as_str())
        && trial.attempts == lease.attempt
}

impl TrialStore for MemoryStore {
    fn location(&self) -> &Path {
        &self.location
    }

    fn create_or_open_run(&mut self, info: &RunInfo) -> Result<RunState, StoreError> {
        self.current = None;
        let resumed = match self.runs.get(&info.run_id) {
            Some(run) => {
                let differences = run_differences(&run.info, info);
                if !differences.is_empty() {
                    return Err(StoreError::RunMismatch {
                        db: self.location.clone(),
                        run_id: info.run_id.clone(),
                        differences,
                    });
                }
                true
            }
            None => {
                self.runs.insert(
                    info.run_id.clone(),
                    MemRun {
                        info: info.clone(),
                        trials: Vec::new(),
                        checkpoint: None,
                    },
                );
                false
            }
        };
        self.current = Some(info.run_id.clone());
        let (_, run) = self.run()?;
        Ok(RunState {
            resumed,
            run: run.info.clone(),
            n_finished: run
                .trials
                .iter()
                .filter(|t| t.record.status.is_finished())
                .count(),
            next_trial_id: run.trials.len() as u64,
            unfinished: run
                .trials
                .iter()
                .filter(|t| !t.record.status.is_finished())
                .map(|t| t.record.trial_id)
                .collect(),
        })
    }

    fn runs(&self) -> Result<Vec<RunInfo>, StoreError> {
        Ok(self.runs.values().map(|r| r.info.clone()).collect())
    }

    fn record_trial(&mut self, trial: &TrialRecord) -> Result<(), StoreError> {
        let (db, run_id, run) = self.run_mut()?;
        validate_trial(trial).map_err(|message| StoreError::Invalid {
            db: db.to_path_buf(),
            message,
        })?;
        let next = run.trials.len() as u64;
        match index(trial.trial_id).and_then(|i| run.trials.get_mut(i)) {
            Some(existing) if existing.record.status.is_finished() => {
                Err(StoreError::DuplicateTrial {
                    db: db.to_path_buf(),
                    run_id: run_id.to_string(),
                    trial_id: trial.trial_id,
                    status: existing.record.status.name(),
                })
            }
            Some(existing) => {
                existing.record = trial.clone();
                existing.worker = None;
                existing.lease_until = None;
                Ok(())
            }
            None if trial.trial_id == next => {
                run.trials.push(MemTrial {
                    record: trial.clone(),
                    worker: None,
                    lease_until: None,
                    attempts: 0,
                });
                Ok(())
            }
            None => Err(StoreError::TrialIdGap {
                db: db.to_path_buf(),
                run_id: run_id.to_string(),
                expected: next,
                got: trial.trial_id,
            }),
        }
    }

    fn trials(&self) -> Result<Vec<TrialRecord>, StoreError> {
        let (_, run) = self.run()?;
        Ok(run.trials.iter().map(|t| t.record.clone()).collect())
    }

    fn n_finished(&self) -> Result<usize, StoreError> {
        let (_, run) = self.run()?;
        Ok(run
            .trials
            .iter()
            .filter(|t| t.record.status.is_finished())
            .count())
    }

    fn save_strategy_state(
        &mut self,
        after_trial: u64,
        state: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let (db, run_id, run) = self.run_mut()?;
        let finished = index(after_trial)
            .and_then(|i| run.trials.get(i))
            .is_some_and(|t| t.record.status.is_finished());
        if !finished {
            return Err(StoreError::CheckpointNotFinished {
                db: db.to_path_buf(),
                run_id: run_id.to_string(),
                after_trial,
            });
        }
        run.checkpoint = Some((after_trial, state.clone()));
        Ok(())
    }

    fn load_strategy_state(&self) -> Result<Option<(u64, serde_json::Value)>, StoreError> {
        let (_, run) = self.run()?;
        Ok(run.checkpoint.clone())
    }

    fn find_by_candidate(&self, candidate_id: &str) -> Result<Option<TrialRecord>, StoreError> {
        let (_, run) = self.run()?;
        let with = |status: fn(&TrialStatus) -> bool| {
            run.trials
                .iter()
                .map(|t| &t.record)
                .find(|r| r.candidate_id == candidate_id && status(&r.status))
        };
        let found = with(|s| *s == TrialStatus::Done)
            .or_else(|| with(|s| matches!(s, TrialStatus::Failed { .. })));
        Ok(found.cloned())
    }
}

impl WorkQueue for MemoryStore {
    fn claim(&mut self, worker: &str, lease_s: f64) -> Result<Option<Lease>, StoreError> {
        let (db, _, run) = self.run_mut()?;
        validate_lease_s(lease_s).map_err(|message| StoreError::Invalid {
            db: db.to_path_buf(),
            message,
        })?;
        let Some(trial) = run
            .trials
            .iter_mut()
            .find(|t| t.record.status == TrialStatus::Pending)
        else {
            return Ok(None);
        };
        trial.record.status = TrialStatus::Running;
        trial.worker = Some(worker.to_string());
        trial.lease_until = Some(now_s() + lease_s);
        trial.attempts = trial.attempts.saturating_add(1);
        Ok(Some(Lease {
            trial: trial.record.clone(),
            worker: worker.to_string(),
            attempt: trial.attempts,
        }))
    }

    fn renew(&mut self, lease: &Lease, lease_s: f64) -> Result<(), StoreError> {
        let (db, run_id, run) = self.run_mut()?;
        validate_lease_s(lease_s).map_err(|message| StoreError::Invalid {
            db: db.to_path_buf(),
            message,
        })?;
        match index(lease.trial.trial_id).and_then(|i| run.trials.get_mut(i)) {
            Some(trial) if holds(trial, lease) => {
                trial.lease_until = Some(now_s() + lease_s);
                Ok(())
            }
            _ => Err(lease_lost(db, run_id, lease)),
        }
    }

    fn finish(&mut self, lease: &Lease, result: &TrialRecord) -> Result<(), StoreError> {
        let (db, run_id, run) = self.run_mut()?;
        validate_finish(lease, result).map_err(|message| StoreError::Invalid {
            db: db.to_path_buf(),
            message,
        })?;
        match index(lease.trial.trial_id).and_then(|i| run.trials.get_mut(i)) {
            Some(trial) if holds(trial, lease) => {
                trial.record = result.clone();
                trial.lease_until = None;
                Ok(())
            }
            _ => Err(lease_lost(db, run_id, lease)),
        }
    }

    fn requeue_expired(&mut self, max_attempts: u32) -> Result<Expired, StoreError> {
        let (_, _, run) = self.run_mut()?;
        let now = now_s();
        let mut expired = Expired::default();
        for trial in &mut run.trials {
            let running = trial.record.status == TrialStatus::Running;
            if !running || !trial.lease_until.is_some_and(|t| t <= now) {
                continue;
            }
            trial.lease_until = None;
            if trial.attempts >= max_attempts {
                trial.record.status = TrialStatus::Failed {
                    reason: expired_reason(trial.attempts, trial.worker.as_deref()),
                };
                expired.failed.push(trial.record.trial_id);
            } else {
                trial.record.status = TrialStatus::Pending;
                trial.worker = None;
                expired.requeued.push(trial.record.trial_id);
            }
        }
        Ok(expired)
    }

    fn running(&self) -> Result<Vec<RunningTrial>, StoreError> {
        let (_, run) = self.run()?;
        let now = now_s();
        Ok(run
            .trials
            .iter()
            .filter(|t| t.record.status == TrialStatus::Running)
            .map(|t| RunningTrial {
                trial_id: t.record.trial_id,
                worker: t.worker.clone(),
                attempts: t.attempts,
                lease_left_s: t.lease_until.map(|l| l - now),
            })
            .collect())
    }
}
