//! The trial store: every trial of a search, as it finishes, in a database.
//!
//! The store owns SQL: no other module writes a query. It knows nothing of the other ecgnas
//! modules either; a candidate, its metrics and its costs reach it as JSON values, so the search
//! loop (and, later, remote workers) see only the [`TrialStore`] trait (and [`WorkQueue`] for
//! a work queue shared by many workers).
//!
//! Three implementations:
//!
//! - [`SqliteStore`]: a single SQLite file in the run folder, the default. WAL journal,
//!   `synchronous=FULL`: a trial whose [`TrialStore::record_trial`] returned survives `kill -9`
//!   of the process and a power cut alike.
//! - [`MemoryStore`]: the same behaviour in memory, for fast strategy tests.
//!
//! - [`PostgresStore`]: a PostgreSQL database that many workers on many machines share; the
//!   shared test suite of this module runs on it against a real server.
//!
//! [`StoreAddress`] names one of the SQL stores (`sqlite:PATH` or a `postgres://` URL).
//!
//! # Data model
//!
//! A store holds runs ([`RunInfo`], keyed by `run_id`); a store is bound to one run by
//! [`TrialStore::create_or_open_run`], and every other method acts on that run. A run holds
//! trials ([`TrialRecord`]) numbered `0, 1, 2, ...` in the order the strategy proposed them,
//! and at most one checkpoint of the strategy's state, "after trial k".
//!
//! The store enforces:
//!
//! - trial ids are contiguous: a new trial gets exactly the next id (`0` for the first), so a
//!   run is never left with a hole;
//! - a finished trial ([`TrialStatus::Done`] or [`TrialStatus::Failed`]) is immutable: writing
//!   a trial id that is already finished is an error ([`StoreError::DuplicateTrial`]), never a
//!   silent duplicate or an overwrite; an unfinished one (`Pending`, `Running`) may be
//!   rewritten, which is how an interrupted trial is re-run;
//! - each write is one transaction: after a crash a trial is either entirely there (every
//!   field as written) or, if it was being written, in its previous state;
//! - a checkpoint names a finished trial;
//! - a resumed run has the arguments it was started with: `task`, `data`, `profile`,
//!   `strategy`, `seed` and `space` must match ([`StoreError::RunMismatch`] names each
//!   difference); the budget may differ (a run can be extended) and the stored `created_at`,
//!   `budget` and `ecgnas_version` are those of the first start.
//!
//! # How the search loop uses the store
//!
//! The protocol below continues a search killed at any point (between two trials, in the
//! middle of one, in the middle of a write) without losing or repeating a finished trial.
//!
//! 1. Open the store and call [`TrialStore::create_or_open_run`] with the run's arguments and
//!    a `run_id` that the same arguments give again on `--resume` (for the SQLite store in a
//!    run folder, any fixed name such as `"main"` does; [`TrialStore::runs`] lists what a store
//!    holds). The returned [`RunState`] says whether the run is new.
//! 2. On resume, read [`TrialStore::trials`] and [`TrialStore::load_strategy_state`]. If a
//!    checkpoint "after trial k" exists, restore the strategy from it, else start the strategy
//!    afresh with the run's seed (`k = -1`). Then feed every finished trial with an id above
//!    `k`, in id order, to the strategy's `observe`: the strategy is then exactly where it was
//!    after the last finished trial. Trials that are not finished are not observed: they are
//!    re-run.
//! 3. Trial ids are assigned in proposal order. The next trial to run is the lowest
//!    unfinished id ([`RunState::unfinished`]) if there is one, else
//!    [`RunState::next_trial_id`]. An unfinished trial is re-run with whatever the restored
//!    strategy proposes now; recording it overwrites its old content.
//! 4. For each trial: optionally record it as `Running` (so that `status` shows it), evaluate
//!    it, record it as `Done` or `Failed` (one [`TrialStore::record_trial`] call, one
//!    transaction), feed it to `observe`, and from time to time call
//!    [`TrialStore::save_strategy_state`] with the id of that trial. The order matters: the
//!    trial first, its checkpoint second. A crash between the two leaves a checkpoint that is
//!    one trial older, and step 2 replays that trial.
//! 5. The budget counts finished trials ([`TrialStore::n_finished`]): a run asked for `N`
//!    trials stops when `N` are finished, however many times it was killed.
//! 6. To skip a candidate already evaluated, [`TrialStore::find_by_candidate`] gives the trial
//!    that evaluated it.
//!
//! A strategy's checkpoint must therefore be everything it needs to continue (its weights,
//! optimiser state, population, random generator state), and its `observe` must be
//! deterministic, so that "checkpoint after k, then observe k+1..n" equals "the state after n".
//! (Proposals draw from the strategy's random generator too. When the checkpoint follows the
//! last finished trial, the resumed run proposes exactly what the uninterrupted one would have;
//! when trials were replayed, its later proposals differ, since a replay observes without
//! proposing. Either way nothing is lost or repeated.)
//!
//! Two processes writing one run are not coordinated by `record_trial`; its id checks make the
//! second fail ([`StoreError::TrialIdGap`], [`StoreError::DuplicateTrial`]) rather than
//! write a finished trial twice. Many writers use [`WorkQueue`].
//!
//! # Work queue
//!
//! With many workers ([`WorkQueue`]) the coordinator records proposals as `Pending` trials;
//! a worker [claims](WorkQueue::claim) the lowest pending one under a lease, [renews](
//! WorkQueue::renew) it while it trains, and [finishes](WorkQueue::finish) it with the result
//! in one transaction. [`WorkQueue::requeue_expired`] returns the trials of dead workers to the
//! queue, or fails them after too many attempts. Lease times come from the store's clock.
//!
//! # Storage conventions
//!
//! JSON values are stored as their compact text. `u64` seeds are stored as the `i64` with the
//! same bits (SQL has no unsigned 64-bit integer); trial ids above `i64::MAX` are refused.
//! `quality`, `reward` and `wall_s` may be infinite (an infeasible candidate's reward may be
//! `-inf`) but not NaN, which SQL cannot keep apart from NULL.

mod error;
mod memory;
mod postgres;
mod rows;
mod sqlite;
#[doc(hidden)]
pub mod testing;
#[cfg(test)]
mod tests;

pub use error::{FieldDiff, StoreError};
pub use memory::MemoryStore;
pub use postgres::{PostgresStore, POSTGRES_SCHEMA_VERSION};
pub use sqlite::{SqliteStore, SCHEMA_VERSION};

use serde::{Deserialize, Serialize};
use std::path::Path;

/// What a run is: the arguments it was started with, recorded once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The run's key in the store.
    pub run_id: String,
    /// When the run was first started (RFC 3339, as the caller wrote it).
    pub created_at: String,
    /// The task's name.
    pub task: String,
    /// The data source (a folder, or `synthetic`).
    pub data: String,
    /// The hardware profile's name or file.
    pub profile: String,
    /// The search strategy's name.
    pub strategy: String,
    /// The run's seed.
    pub seed: u64,
    /// The budget as asked for (trials or time), in the search's own JSON form.
    pub budget: serde_json::Value,
    /// The search space, in its JSON form.
    pub space: serde_json::Value,
    /// The version of ecgnas that started the run.
    pub ecgnas_version: String,
}

/// Where a trial stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TrialStatus {
    /// Proposed, waiting for a worker.
    Pending,
    /// Being trained and evaluated.
    Running,
    /// Evaluated: its metrics, costs and reward are known.
    Done,
    /// Could not be evaluated; it will not be retried.
    Failed {
        /// Why.
        reason: String,
    },
}

impl TrialStatus {
    /// Whether the trial is over (done or failed): such a trial never changes again.
    pub fn is_finished(&self) -> bool {
        matches!(self, TrialStatus::Done | TrialStatus::Failed { .. })
    }

    /// The status's name as stored: `pending`, `running`, `done` or `failed`.
    pub fn name(&self) -> &'static str {
        match self {
            TrialStatus::Pending => "pending",
            TrialStatus::Running => "running",
            TrialStatus::Done => "done",
            TrialStatus::Failed { .. } => "failed",
        }
    }
}

/// One trial of a run: a candidate and what its evaluation gave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialRecord {
    /// The trial's number in the run, `0, 1, 2, ...` in proposal order.
    pub trial_id: u64,
    /// A stable identifier of the candidate (e.g. a hash of its canonical JSON), for
    /// deduplication.
    pub candidate_id: String,
    /// The candidate, in its JSON form.
    pub candidate: serde_json::Value,
    /// Where the trial stands.
    pub status: TrialStatus,
    /// The quality metric the search optimises, once known.
    pub quality: Option<f64>,
    /// Every metric of the evaluation (JSON; `null` when none).
    pub metrics: serde_json::Value,
    /// What the candidate costs on the device (JSON; `null` when none).
    pub costs: serde_json::Value,
    /// The strategy's reward, once known.
    pub reward: Option<f64>,
    /// Whether the candidate fits the device's hard limits, once known.
    pub feasible: Option<bool>,
    /// Wall time of the evaluation in seconds, once known.
    pub wall_s: Option<f64>,
    /// The seed the trial was trained with.
    pub seed: u64,
    /// When the evaluation started (RFC 3339).
    pub started_at: Option<String>,
    /// When it finished (RFC 3339).
    pub finished_at: Option<String>,
}

/// What [`TrialStore::create_or_open_run`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct RunState {
    /// `false` for a run created by this call, `true` for one that was already there.
    pub resumed: bool,
    /// The run as stored (for a resumed run: its first `created_at`, `budget` and version).
    pub run: RunInfo,
    /// How many trials are finished.
    pub n_finished: usize,
    /// The id a new trial gets: one more than the highest id, `0` when there is none.
    pub next_trial_id: u64,
    /// The ids of the trials that are not finished (pending or running when the run stopped),
    /// in increasing order: they are to be re-run.
    pub unfinished: Vec<u64>,
}

/// The store of a search's trials, behind which SQLite or PostgreSQL sits.
///
/// Every method but [`create_or_open_run`](TrialStore::create_or_open_run) and
/// [`runs`](TrialStore::runs) acts on the run opened last and fails with
/// [`StoreError::NoRun`] before one is opened. Every write is one transaction. The read methods
/// take `&self`; an implementation whose client needs `&mut` for a query keeps it behind a
/// mutex.
pub trait TrialStore {
    /// The database this store is (a file, or a description), as errors name it.
    fn location(&self) -> &Path;

    /// Opens the run `info.run_id`, creating it if the store does not hold it, and binds the
    /// store to it.
    ///
    /// A run that exists must have been started with the same `task`, `data`, `profile`,
    /// `strategy`, `seed` and `space`; otherwise [`StoreError::RunMismatch`] names each
    /// difference and the store stays unbound.
    fn create_or_open_run(&mut self, info: &RunInfo) -> Result<RunState, StoreError>;

    /// Every run the store holds, by `run_id`.
    fn runs(&self) -> Result<Vec<RunInfo>, StoreError>;

    /// Writes a trial, in one transaction.
    ///
    /// A new trial must have the next id ([`StoreError::TrialIdGap`] otherwise); a trial whose
    /// id exists and is unfinished is replaced entirely; a trial whose id is finished cannot be
    /// written again ([`StoreError::DuplicateTrial`]). A NaN in `quality`, `reward` or `wall_s`
    /// is refused ([`StoreError::Invalid`]).
    fn record_trial(&mut self, trial: &TrialRecord) -> Result<(), StoreError>;

    /// Every trial of the run, by increasing id.
    fn trials(&self) -> Result<Vec<TrialRecord>, StoreError>;

    /// How many trials of the run are finished (done or failed).
    fn n_finished(&self) -> Result<usize, StoreError>;

    /// Saves the strategy's state as it is after trial `after_trial`, replacing the previous
    /// checkpoint, in one transaction. The trial must be finished
    /// ([`StoreError::CheckpointNotFinished`] otherwise).
    fn save_strategy_state(
        &mut self,
        after_trial: u64,
        state: &serde_json::Value,
    ) -> Result<(), StoreError>;

    /// The last checkpoint saved, with the trial it follows; `None` when there is none.
    fn load_strategy_state(&self) -> Result<Option<(u64, serde_json::Value)>, StoreError>;

    /// The trial that evaluated a candidate: the earliest done trial with this `candidate_id`,
    /// else the earliest failed one; `None` when no finished trial has it.
    fn find_by_candidate(&self, candidate_id: &str) -> Result<Option<TrialRecord>, StoreError>;
}

/// A claimed trial: the worker holds it until its lease runs out.
#[derive(Debug, Clone, PartialEq)]
pub struct Lease {
    /// The trial as claimed (now `Running`).
    pub trial: TrialRecord,
    /// The worker that holds it.
    pub worker: String,
    /// Which attempt this is, from 1.
    pub attempt: u32,
}

/// What [`WorkQueue::requeue_expired`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expired {
    /// Trials returned to `Pending`, by id.
    pub requeued: Vec<u64>,
    /// Trials marked `Failed` because they ran out of attempts, by id.
    pub failed: Vec<u64>,
}

/// A work queue in the store, for workers that evaluate the trials a coordinator proposes.
///
/// The coordinator records trials as [`TrialStatus::Pending`] with
/// [`TrialStore::record_trial`]; workers claim, renew and finish them here. Leases are counted
/// on the store's clock, so that workers on machines with different clocks agree.
pub trait WorkQueue: TrialStore {
    /// Claims the pending trial with the lowest id for `worker`: it becomes `Running`, its
    /// attempt count goes up by one, and the lease lasts `lease_s` seconds. `None` when no
    /// trial is pending.
    fn claim(&mut self, worker: &str, lease_s: f64) -> Result<Option<Lease>, StoreError>;

    /// Extends a lease to `lease_s` seconds from now. Fails with [`StoreError::LeaseLost`] if
    /// the trial is no longer this worker's (it was requeued, possibly claimed by another).
    fn renew(&mut self, lease: &Lease, lease_s: f64) -> Result<(), StoreError>;

    /// Writes the result of a claimed trial (status `Done` or `Failed`, same id and candidate)
    /// in one transaction. Fails with [`StoreError::LeaseLost`] if the trial is no longer this
    /// worker's; a lease that ran out but was not yet requeued is still accepted.
    fn finish(&mut self, lease: &Lease, result: &TrialRecord) -> Result<(), StoreError>;

    /// Returns every running trial whose lease has run out to `Pending`, or marks it `Failed`
    /// (with the reason) if it has had `max_attempts` attempts already.
    fn requeue_expired(&mut self, max_attempts: u32) -> Result<Expired, StoreError>;

    /// The running trials with their workers and leases, by id (for `ecgnas status`).
    fn running(&self) -> Result<Vec<RunningTrial>, StoreError>;
}

/// A running trial as [`WorkQueue::running`] shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunningTrial {
    /// The trial.
    pub trial_id: u64,
    /// The worker holding it (none when the search loop runs it itself).
    pub worker: Option<String>,
    /// Attempts so far, this one included.
    pub attempts: u32,
    /// Seconds left on its lease by the store's clock (negative: expired, not yet requeued);
    /// none without a lease.
    pub lease_left_s: Option<f64>,
}

/// The differences between a stored run and the arguments of a resume, empty when it may
/// resume.
fn run_differences(stored: &RunInfo, given: &RunInfo) -> Vec<FieldDiff> {
    let mut diffs = Vec::new();
    let mut check = |field: &'static str, a: String, b: String| {
        if a != b {
            diffs.push(FieldDiff {
                field,
                stored: a,
                given: b,
            });
        }
    };
    check("task", stored.task.clone(), given.task.clone());
    check("data", stored.data.clone(), given.data.clone());
    check("profile", stored.profile.clone(), given.profile.clone());
    check("strategy", stored.strategy.clone(), given.strategy.clone());
    check("seed", stored.seed.to_string(), given.seed.to_string());
    if stored.space != given.space {
        check("space", stored.space.to_string(), given.space.to_string());
    }
    diffs
}

/// Refuses what a store cannot keep faithfully: a NaN, or an id beyond `i64`.
fn validate_trial(trial: &TrialRecord) -> Result<(), String> {
    if i64::try_from(trial.trial_id).is_err() {
        return Err(format!(
            "trial id {} is beyond the largest id a store keeps ({})",
            trial.trial_id,
            i64::MAX
        ));
    }
    for (name, value) in [
        ("quality", trial.quality),
        ("reward", trial.reward),
        ("wall_s", trial.wall_s),
    ] {
        if value.is_some_and(f64::is_nan) {
            return Err(format!(
                "trial {}: {name} is NaN (record the trial as failed instead)",
                trial.trial_id
            ));
        }
    }
    Ok(())
}

/// Checks that `result` may finish the trial held by `lease`.
fn validate_finish(lease: &Lease, result: &TrialRecord) -> Result<(), String> {
    if result.trial_id != lease.trial.trial_id {
        return Err(format!(
            "the result is for trial {}, the lease for trial {}",
            result.trial_id, lease.trial.trial_id
        ));
    }
    if result.candidate_id != lease.trial.candidate_id {
        return Err(format!(
            "trial {}: the result is for candidate {}, the lease for candidate {}",
            result.trial_id, result.candidate_id, lease.trial.candidate_id
        ));
    }
    if !result.status.is_finished() {
        return Err(format!(
            "trial {}: a result must be done or failed, not {}",
            result.trial_id,
            result.status.name()
        ));
    }
    validate_trial(result)
}

/// Checks a lease duration.
fn validate_lease_s(lease_s: f64) -> Result<(), String> {
    if lease_s.is_finite() && lease_s >= 0.0 {
        Ok(())
    } else {
        Err(format!(
            "a lease must last a finite, non-negative number of seconds, not {lease_s}"
        ))
    }
}

/// The reason a trial fails with when its lease ran out too often.
fn expired_reason(attempts: u32, worker: Option<&str>) -> String {
    format!(
        "lease expired {attempts} time(s) (last worker: {})",
        worker.unwrap_or("unknown")
    )
}

/// Where a trial store is: an SQLite file, or a PostgreSQL database shared by many workers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreAddress {
    /// An SQLite file.
    Sqlite(std::path::PathBuf),
    /// A `postgres://` URL.
    Postgres(String),
}

impl StoreAddress {
    /// `postgres://...` or `postgresql://...` is PostgreSQL; `sqlite:PATH`, or any other text
    /// taken as a path, is SQLite.
    pub fn parse(text: &str) -> StoreAddress {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            StoreAddress::Postgres(text.to_string())
        } else {
            StoreAddress::Sqlite(text.strip_prefix("sqlite:").unwrap_or(text).into())
        }
    }

    /// Opens (and creates or migrates) the store.
    pub fn open(&self) -> Result<Box<dyn WorkQueue + Send>, StoreError> {
        Ok(match self {
            StoreAddress::Sqlite(path) => Box::new(SqliteStore::open(path)?),
            StoreAddress::Postgres(url) => Box::new(PostgresStore::open(url)?),
        })
    }
}

impl std::fmt::Display for StoreAddress {
    /// The address as messages show it: without a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreAddress::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            StoreAddress::Postgres(url) => f.write_str(&postgres::redact_url(url)),
        }
    }
}
