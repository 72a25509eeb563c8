//! The search loop: propose, cost, train, reward, record, learn; resumable at any point.
//!
//! It follows the trial store's protocol ([`crate::store`]): trials are numbered in proposal
//! order, recorded as they finish, the strategy checkpointed after each; on resume the
//! strategy is restored and the finished trials after its checkpoint are replayed, and the
//! budget counts finished trials, so a killed search loses and repeats nothing.

use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::reward::{RewardConfig, INFEASIBLE_REWARD};
use super::strategy::{Observation, Strategy, StrategyError};
use crate::cost::{estimate, CostEstimate, Profile};
use crate::space::{Candidate, SearchSpace};
use crate::store::{RunInfo, StoreError, TrialRecord, TrialStatus, TrialStore};

/// The result of training and scoring one candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// The task's primary quality on the validation split, in [0, 1].
    pub quality: f64,
    /// Every metric, for the report.
    pub metrics: serde_json::Value,
}

/// Trains and scores candidates (the search never trains itself).
pub trait Evaluator {
    /// Trains `candidate` with `seed` and scores it on validation data.
    fn evaluate(&mut self, candidate: &Candidate, seed: u64) -> Result<Evaluation, String>;
}

/// Settings of one search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchConfig {
    /// Finished trials to reach.
    pub trials: usize,
    /// Seed of the proposals and of every child's training.
    pub seed: u64,
    /// The reward.
    pub reward: RewardConfig,
    /// Input leads of the task.
    pub leads: usize,
    /// Candidates predicted slower than this are not trained and get the lowest reward (the
    /// reward's hard latency exponent would leave them little anyway; training them is most
    /// of a search's time). `None`: no limit.
    pub max_latency_ms: Option<f64>,
}

/// Errors of a search.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The trial store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The strategy failed.
    #[error(transparent)]
    Strategy(#[from] StrategyError),
    /// A stored trial cannot be read back.
    #[error("trial {trial}: stored candidate is not one of this space: {message}")]
    BadTrial {
        /// The trial id.
        trial: u64,
        /// What is wrong.
        message: String,
    },
}

/// How many proposals may repeat an evaluated candidate before one is accepted anyway.
const MAX_DUPLICATE_PROPOSALS: usize = 20;

/// Now, as the trial store's timestamps keep it (seconds since 1970).
pub(crate) fn now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("{secs}")
}

/// Runs (or resumes) a search until `config.trials` trials are finished (or, with a
/// `deadline`, no new trial starts after it, though a run always finishes at least one
/// trial, so that a budget spent before the first never leaves an empty result);
/// `on_trial` sees each trial as it is recorded.
/// Returns every finished trial.
#[allow(clippy::too_many_arguments)]
pub fn run_search(
    run: &RunInfo,
    space: &SearchSpace,
    strategy: &mut dyn Strategy,
    evaluator: &mut dyn Evaluator,
    profile: &Profile,
    store: &mut dyn TrialStore,
    config: &SearchConfig,
    on_trial: &mut dyn FnMut(&TrialRecord),
    deadline: Option<Instant>,
) -> Result<Vec<TrialRecord>, SearchError> {
    let state = store.create_or_open_run(run)?;
    if state.resumed {
        let checkpoint = store.load_strategy_state()?;
        let after = match &checkpoint {
            Some((k, value)) => {
                strategy.restore(value)?;
                Some(*k)
            }
            None => None,
        };
        for trial in store.trials()? {
            if !trial.status.is_finished() || after.is_some_and(|k| trial.trial_id <= k) {
                continue;
            }
            strategy.observe(space, &observation(&trial)?)?;
        }
    }
    let mut next_id = state
        .unfinished
        .first()
        .copied()
        .unwrap_or(state.next_trial_id);
    loop {
        let finished = store.n_finished()?;
        let in_time = deadline.is_none_or(|d| Instant::now() < d) || finished == 0;
        if finished >= config.trials || !in_time {
            break;
        }
        let (candidate, previous) =
            propose_trial(strategy, space, profile, config, next_id, &*store)?;
        let trial = evaluate_trial(
            next_id, &candidate, previous, evaluator, profile, config, store,
        )?;
        on_trial(&trial);
        strategy.observe(space, &observation(&trial)?)?;
        store.save_strategy_state(next_id, &strategy.save()?)?;
        next_id += 1;
    }
    Ok(store
        .trials()?
        .into_iter()
        .filter(|t| t.status.is_finished())
        .collect())
}

/// The strategy's proposal for trial `trial_id` (drawn from a generator seeded by the run's
/// seed and the id, so that a run proposes the same whoever evaluates), drawn again while it
/// repeats a candidate the store has evaluated; with that evaluation when it still does.
pub(crate) fn propose_trial(
    strategy: &mut dyn Strategy,
    space: &SearchSpace,
    profile: &Profile,
    config: &SearchConfig,
    trial_id: u64,
    store: &dyn TrialStore,
) -> Result<(Candidate, Option<TrialRecord>), SearchError> {
    let mut rng =
        ChaCha8Rng::seed_from_u64(config.seed ^ trial_id.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut candidate = propose_runnable(strategy, space, profile, config, trial_id, &mut rng)?;
    let mut previous = store.find_by_candidate(&candidate.id())?;
    for _ in 0..MAX_DUPLICATE_PROPOSALS {
        if previous.is_none() {
            break;
        }
        candidate = propose_runnable(strategy, space, profile, config, trial_id, &mut rng)?;
        previous = store.find_by_candidate(&candidate.id())?;
    }
    Ok((candidate, previous))
}

/// How many structurally impossible proposals (a layer's length reaching 0 on this input) a
/// trial may draw before one is evaluated anyway, and recorded as failed.
const MAX_UNRUNNABLE_PROPOSALS: usize = 200;

/// A proposal that can run on the profile's input at all. Impossible ones are not trials: the
/// strategy learns from them (lowest reward) and proposes again.
fn propose_runnable(
    strategy: &mut dyn Strategy,
    space: &SearchSpace,
    profile: &Profile,
    config: &SearchConfig,
    trial_id: u64,
    rng: &mut ChaCha8Rng,
) -> Result<Candidate, SearchError> {
    let mut candidate = strategy.propose(space, rng)?;
    for _ in 0..MAX_UNRUNNABLE_PROPOSALS {
        if estimate(&candidate, profile, config.leads).is_ok() {
            break;
        }
        let observation = Observation {
            trial_id,
            candidate: candidate.clone(),
            reward: INFEASIBLE_REWARD,
            feasible: false,
        };
        strategy.observe(space, &observation)?;
        candidate = strategy.propose(space, rng)?;
    }
    Ok(candidate)
}

pub(crate) fn observation(trial: &TrialRecord) -> Result<Observation, SearchError> {
    let candidate: Candidate =
        serde_json::from_value(trial.candidate.clone()).map_err(|e| SearchError::BadTrial {
            trial: trial.trial_id,
            message: e.to_string(),
        })?;
    Ok(Observation {
        trial_id: trial.trial_id,
        candidate,
        reward: trial.reward.unwrap_or(INFEASIBLE_REWARD),
        feasible: trial.feasible.unwrap_or(false),
    })
}

/// Costs, trains (when feasible) and records one trial.
fn evaluate_trial(
    trial_id: u64,
    candidate: &Candidate,
    previous: Option<TrialRecord>,
    evaluator: &mut dyn Evaluator,
    profile: &Profile,
    config: &SearchConfig,
    store: &mut dyn TrialStore,
) -> Result<TrialRecord, SearchError> {
    let trial = score_trial(
        running_trial(trial_id, candidate, config),
        candidate,
        previous,
        evaluator,
        profile,
        config,
        &mut |t| store.record_trial(t),
    )?;
    store.record_trial(&trial)?;
    Ok(trial)
}

/// A trial of `candidate` as it starts: running, with its training seed.
pub(crate) fn running_trial(
    trial_id: u64,
    candidate: &Candidate,
    config: &SearchConfig,
) -> TrialRecord {
    TrialRecord {
        trial_id,
        candidate_id: candidate.id(),
        candidate: serde_json::to_value(candidate).unwrap_or_default(),
        status: TrialStatus::Running,
        quality: None,
        metrics: serde_json::Value::Null,
        costs: serde_json::Value::Null,
        reward: None,
        feasible: None,
        wall_s: None,
        seed: config.seed.wrapping_add(trial_id),
        started_at: Some(now()),
        finished_at: None,
    }
}

/// Costs `trial`'s candidate and trains it when it is feasible (after `on_training` has seen
/// the trial as it starts training), and returns the finished trial: the same in the search
/// loop and in a worker. `previous` is an earlier evaluation of the same candidate, reused.
pub(crate) fn score_trial(
    mut trial: TrialRecord,
    candidate: &Candidate,
    previous: Option<TrialRecord>,
    evaluator: &mut dyn Evaluator,
    profile: &Profile,
    config: &SearchConfig,
    on_training: &mut dyn FnMut(&TrialRecord) -> Result<(), StoreError>,
) -> Result<TrialRecord, SearchError> {
    let started = Instant::now();
    let seed = trial.seed;
    let cost: Result<CostEstimate, String> =
        estimate(candidate, profile, config.leads).map_err(|e| e.to_string());
    match cost {
        Err(reason) => {
            trial.status = TrialStatus::Failed {
                reason: reason.clone(),
            };
            trial.feasible = Some(false);
            trial.reward = Some(INFEASIBLE_REWARD);
        }
        Ok(cost) => {
            trial.costs = serde_json::to_value(&cost).unwrap_or_default();
            let too_slow = config
                .max_latency_ms
                .is_some_and(|limit| cost.latency_ms > limit);
            trial.feasible = Some(cost.fits_memory && !too_slow);
            if too_slow && cost.fits_memory {
                trial.status = TrialStatus::Done;
                trial.reward = Some(INFEASIBLE_REWARD);
                trial.metrics = serde_json::json!({"infeasible": [format!(
                    "latency {:.2} ms beyond the search's limit of {:.2} ms",
                    cost.latency_ms,
                    config.max_latency_ms.unwrap_or(f64::INFINITY)
                )]});
            } else if !cost.fits_memory {
                // Never trained: the device cannot hold it.
                trial.status = TrialStatus::Done;
                trial.reward = Some(INFEASIBLE_REWARD);
                trial.metrics = serde_json::json!({"infeasible": cost.violations});
            } else if let Some(done) = previous.filter(|p| p.quality.is_some()) {
                // The same candidate again (the strategy insisted): reuse its evaluation.
                trial.status = TrialStatus::Done;
                trial.quality = done.quality;
                trial.metrics =
                    serde_json::json!({"duplicate_of": done.trial_id, "metrics": done.metrics});
                trial.reward = Some(
                    config
                        .reward
                        .reward(done.quality.unwrap_or(0.0), cost.latency_ms),
                );
            } else {
                on_training(&trial)?;
                match evaluator.evaluate(candidate, seed) {
                    Ok(evaluation) => {
                        trial.status = TrialStatus::Done;
                        trial.quality = Some(evaluation.quality);
                        trial.metrics = evaluation.metrics;
                        trial.reward =
                            Some(config.reward.reward(evaluation.quality, cost.latency_ms));
                    }
                    Err(reason) => {
                        trial.status = TrialStatus::Failed { reason };
                        trial.reward = Some(INFEASIBLE_REWARD);
                    }
                }
            }
        }
    }
    trial.wall_s = Some(started.elapsed().as_secs_f64());
    trial.finished_at = Some(now());
    Ok(trial)
}

/// The Pareto front of feasible finished trials: quality against latency, SRAM and flash
/// (a trial is on the front when no other is at least as good on all four and better on one).
pub fn pareto_front(trials: &[TrialRecord]) -> Vec<&TrialRecord> {
    /// Quality, latency, SRAM, flash.
    type Point = (f64, f64, f64, f64);
    let key = |t: &TrialRecord| -> Option<Point> {
        let q = t.quality?;
        let c = &t.costs;
        Some((
            q,
            c["latency_ms"].as_f64()?,
            c["sram_bytes"].as_f64()?,
            c["flash_bytes"].as_f64()?,
        ))
    };
    let feasible: Vec<(&TrialRecord, Point)> = trials
        .iter()
        .filter(|t| t.feasible == Some(true))
        .filter_map(|t| key(t).map(|k| (t, k)))
        .collect();
    let dominates = |a: &Point, b: &Point| {
        a.0 >= b.0
            && a.1 <= b.1
            && a.2 <= b.2
            && a.3 <= b.3
            && (a.0 > b.0 || a.1 < b.1 || a.2 < b.2 || a.3 < b.3)
    };
    let mut front: Vec<&TrialRecord> = feasible
        .iter()
        .filter(|(_, k)| !feasible.iter().any(|(_, other)| dominates(other, k)))
        .map(|(t, _)| *t)
        .collect();
    front.sort_by(|a, b| {
        b.quality
            .unwrap_or(0.0)
            .total_cmp(&a.quality.unwrap_or(0.0))
    });
    front
}

/// The best feasible finished trial by reward (ties: the earlier).
pub fn best_trial(trials: &[TrialRecord]) -> Option<&TrialRecord> {
    trials
        .iter()
        .filter(|t| t.feasible == Some(true) && t.quality.is_some())
        .fold(None, |best: Option<&TrialRecord>, t| match best {
            Some(b) if b.reward.unwrap_or(0.0) >= t.reward.unwrap_or(0.0) => Some(b),
            _ => Some(t),
        })
}

/// A fresh strategy by its command-line name (`random`, `evolution`, `rl`, `smbo`), seeded.
pub fn strategy_by_name(
    name: &str,
    space: &SearchSpace,
    seed: u64,
) -> Result<Box<dyn Strategy>, StrategyError> {
    match name {
        "random" => Ok(Box::new(super::random::RandomSearch::new())),
        "evolution" => Ok(Box::new(super::evolution::RegularizedEvolution::new(
            super::evolution::EvolutionConfig::default(),
        )?)),
        "rl" => Ok(Box::new(super::rl::RlController::new(
            space,
            super::rl::RlConfig {
                seed,
                ..super::rl::RlConfig::default()
            },
        )?)),
        "smbo" => Ok(Box::new(super::smbo::Smbo::new(super::smbo::SmboConfig {
            seed,
            ..super::smbo::SmboConfig::default()
        })?)),
        _ => Err(StrategyError::BadState {
            strategy: "search",
            message: format!("unknown or unavailable strategy {name:?}"),
        }),
    }
}
