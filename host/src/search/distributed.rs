//! The search across many workers: one coordinator proposes, workers on any machine train.
//!
//! Both sides meet only in the store's work queue ([`WorkQueue`]):
//!
//! - the coordinator ([`run_coordinator`]) runs the strategy, keeps up to `in_flight` trials
//!   pending or running, observes results in whatever order they arrive, and returns the
//!   trials of dead workers (their leases ran out) to the queue, failing a trial after
//!   `max_attempts`;
//! - a worker ([`run_worker`]) claims the lowest pending trial, keeps its lease alive with a
//!   heartbeat on a second connection while it trains, scores it exactly as the single-process
//!   loop does ([`score_trial`]) and writes the result in one transaction.
//!
//! Proposals come from a generator seeded by the run's seed and the trial id, as in the
//! single-process loop, so a strategy that does not learn from results (`random`) proposes the
//! same candidates however many workers there are. A learning strategy sees results as they
//! arrive: with `w` workers its proposals run up to `in_flight` results behind.
//!
//! Resuming: results arrive out of order, so there is no checkpoint "after trial k"; the
//! coordinator restores its strategy by replaying every finished trial, and trials left
//! pending or running stay queued for the workers.

use std::collections::BTreeSet;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::run::{now, observation, propose_trial, running_trial, score_trial};
use super::strategy::Strategy;
use super::{Evaluator, SearchConfig, SearchError};
use crate::cost::Profile;
use crate::space::{Candidate, SearchSpace};
use crate::store::{Expired, RunInfo, StoreError, TrialRecord, TrialStatus, WorkQueue};

/// How the coordinator runs.
#[derive(Debug, Clone)]
pub struct CoordinatorOptions {
    /// Trials pending or running at once: enough to keep every worker busy.
    pub in_flight: usize,
    /// Time between two looks at the store.
    pub poll: Duration,
    /// Attempts a trial gets before it is failed (its workers kept dying).
    pub max_attempts: u32,
}

/// What the coordinator reports as it goes.
#[derive(Debug)]
pub enum CoordinatorEvent<'a> {
    /// A trial was queued.
    Queued(&'a TrialRecord),
    /// A worker finished a trial.
    Finished(&'a TrialRecord),
    /// Leases ran out: trials requeued or failed.
    Expired(&'a Expired),
}

/// Runs (or resumes) the coordinator of a distributed search until `config.trials` trials are
/// finished (with a `deadline`: no trial is queued after it, and the queued ones are waited
/// for). Returns every finished trial.
#[allow(clippy::too_many_arguments)]
pub fn run_coordinator(
    run: &RunInfo,
    space: &SearchSpace,
    strategy: &mut dyn Strategy,
    profile: &Profile,
    store: &mut dyn WorkQueue,
    config: &SearchConfig,
    options: &CoordinatorOptions,
    on_event: &mut dyn FnMut(CoordinatorEvent<'_>),
    deadline: Option<Instant>,
) -> Result<Vec<TrialRecord>, SearchError> {
    let state = store.create_or_open_run(run)?;
    let mut observed = BTreeSet::new();
    let mut next_id = state.next_trial_id;
    loop {
        let expired = store.requeue_expired(options.max_attempts)?;
        if expired != Expired::default() {
            on_event(CoordinatorEvent::Expired(&expired));
        }
        let trials = store.trials()?;
        for trial in &trials {
            if trial.status.is_finished() && observed.insert(trial.trial_id) {
                strategy.observe(space, &observation(trial)?)?;
                on_event(CoordinatorEvent::Finished(trial));
            }
        }
        let finished = observed.len();
        let mut unfinished = trials.len() - finished;
        let in_time = deadline.is_none_or(|d| Instant::now() < d) || finished + unfinished == 0;
        if finished >= config.trials || (!in_time && unfinished == 0) {
            break;
        }
        while in_time && unfinished < options.in_flight && finished + unfinished < config.trials {
            let (candidate, _) = propose_trial(strategy, space, profile, config, next_id, &*store)?;
            let mut trial = running_trial(next_id, &candidate, config);
            trial.status = TrialStatus::Pending;
            trial.started_at = None;
            store.record_trial(&trial)?;
            on_event(CoordinatorEvent::Queued(&trial));
            unfinished += 1;
            next_id += 1;
        }
        std::thread::sleep(options.poll);
    }
    Ok(store
        .trials()?
        .into_iter()
        .filter(|t| t.status.is_finished())
        .collect())
}

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The worker's name in the store (host and process, by default).
    pub name: String,
    /// How long a claim holds without a heartbeat.
    pub lease_s: f64,
    /// Time between two heartbeats (well under the lease).
    pub heartbeat: Duration,
    /// Time between two looks at an empty queue.
    pub poll: Duration,
    /// How long an empty queue is waited on before the worker stops (the run is complete
    /// earlier when its budget of trials is finished).
    pub idle_exit: Duration,
}

/// What a worker reports as it goes.
#[derive(Debug)]
pub enum WorkerEvent<'a> {
    /// It claimed a trial.
    Claimed(&'a TrialRecord),
    /// It wrote a trial's result.
    Finished(&'a TrialRecord),
    /// It lost a trial's lease (it was too slow to renew, and the trial went back to the
    /// queue): its result was dropped.
    LeaseLost(u64),
}

/// Why a worker stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerExit {
    /// The run's budget of trials is finished.
    Complete,
    /// The queue stayed empty for `idle_exit`.
    Idle,
}

/// Claims, trains and finishes trials of the store's open run until the run is complete or
/// the queue stays empty. `heartbeat_store` is a second connection to the same store and run,
/// which renews the lease while `evaluator` trains.
pub fn run_worker(
    store: &mut dyn WorkQueue,
    heartbeat_store: &mut (dyn WorkQueue + Send),
    evaluator: &mut dyn Evaluator,
    profile: &Profile,
    config: &SearchConfig,
    options: &WorkerOptions,
    on_event: &mut dyn FnMut(WorkerEvent<'_>),
) -> Result<WorkerExit, SearchError> {
    let mut idle_since = Instant::now();
    loop {
        let Some(lease) = store.claim(&options.name, options.lease_s)? else {
            if store.n_finished()? >= config.trials && store.running()?.is_empty() {
                return Ok(WorkerExit::Complete);
            }
            if idle_since.elapsed() >= options.idle_exit {
                return Ok(WorkerExit::Idle);
            }
            std::thread::sleep(options.poll);
            continue;
        };
        on_event(WorkerEvent::Claimed(&lease.trial));
        let mut trial = lease.trial.clone();
        trial.started_at = Some(now());
        let result = match serde_json::from_value::<Candidate>(trial.candidate.clone()) {
            Err(e) => {
                // Recorded, not retried: another worker would fail the same way.
                trial.status = TrialStatus::Failed {
                    reason: format!("the queued candidate is not one of this ecgnas: {e}"),
                };
                trial.finished_at = Some(now());
                trial
            }
            Ok(candidate) => {
                let previous = store.find_by_candidate(&candidate.id())?;
                let (scored, heartbeat) = std::thread::scope(|scope| {
                    let (stop, stopped) = mpsc::channel::<()>();
                    let lease = &lease;
                    let beat_store = &mut *heartbeat_store;
                    let beating = scope.spawn(move || -> Result<(), StoreError> {
                        // Renews until the sender is dropped (training is over).
                        while let Err(mpsc::RecvTimeoutError::Timeout) =
                            stopped.recv_timeout(options.heartbeat)
                        {
                            beat_store.renew(lease, options.lease_s)?;
                        }
                        Ok(())
                    });
                    let scored = score_trial(
                        trial,
                        &candidate,
                        previous,
                        evaluator,
                        profile,
                        config,
                        &mut |_| Ok(()),
                    );
                    drop(stop);
                    let heartbeat = beating.join().unwrap_or_else(|_| {
                        Err(StoreError::Invalid {
                            db: heartbeat_store_location(),
                            message: "the heartbeat thread panicked".to_string(),
                        })
                    });
                    (scored, heartbeat)
                });
                match heartbeat {
                    Err(StoreError::LeaseLost { .. }) => {
                        on_event(WorkerEvent::LeaseLost(lease.trial.trial_id));
                        idle_since = Instant::now();
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                    Ok(()) => {}
                }
                scored?
            }
        };
        match store.finish(&lease, &result) {
            Ok(()) => on_event(WorkerEvent::Finished(&result)),
            Err(StoreError::LeaseLost { .. }) => {
                on_event(WorkerEvent::LeaseLost(lease.trial.trial_id))
            }
            Err(e) => return Err(e.into()),
        }
        idle_since = Instant::now();
    }
}

/// The location a panicked heartbeat is reported under (its store is borrowed by the thread).
fn heartbeat_store_location() -> std::path::PathBuf {
    std::path::PathBuf::from("(heartbeat connection)")
}
