//! ENAS (Pham et al. 2018): the RL controller trained on one weight-shared supernet instead of
//! on children trained from scratch, then the best candidates it finds retrained alone.
//!
//! Each supernet epoch has two phases, as in the paper:
//! 1. shared weights: for each step, the controller samples a child (preprocessing and
//!    architecture) and one minibatch of its examples moves the supernet's slices it uses;
//! 2. controller: sampled children are scored on the validation split with the shared
//!    weights, shaped by the device's cost exactly as a trained child's quality is, and
//!    REINFORCE learns from those rewards.
//!
//! After the last epoch, distinct candidates sampled from the controller (its most likely one
//! first) are ranked by their shared-weight reward; [`EnasStrategy`] proposes them in that
//! order to the ordinary search loop, which trains each from scratch, records it in the trial
//! store like any trial and lets the controller keep learning from the true rewards. Candidates
//! beyond the hardware's hard limits are never trained, in either phase. Weight-sharing
//! rankings are known to be biased (Sciuto et al. 2019): the from-scratch retraining is what the
//! search reports.

use std::collections::HashSet;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::reward::INFEASIBLE_REWARD;
use super::rl::RlController;
use super::run::{SearchConfig, SearchError};
use super::strategy::{state_from_json, state_to_json, Observation, Strategy, StrategyError};
use crate::cost::{estimate, Profile};
use crate::space::{Candidate, SearchSpace};

/// Trains and scores children with shared weights (implemented by the training module).
pub trait SharedEvaluator {
    /// One optimiser step of the shared weights on a minibatch of `candidate`'s training
    /// examples; the minibatch loss.
    fn train_step(&mut self, candidate: &Candidate, rng: &mut ChaCha8Rng) -> Result<f64, String>;
    /// `candidate`'s validation quality with the shared weights as they are.
    fn quality(&mut self, candidate: &Candidate) -> Result<f64, String>;
}

/// Settings of the supernet phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnasConfig {
    /// Supernet epochs (each: shared-weight steps, then controller samples).
    pub epochs: usize,
    /// Shared-weight steps per epoch (one sampled child and one minibatch each).
    pub steps_per_epoch: usize,
    /// Controller samples per epoch, scored with the shared weights.
    pub controller_samples: usize,
    /// Distinct candidates sampled at the end and ranked for retraining.
    pub final_samples: usize,
}

impl Default for EnasConfig {
    /// 10 epochs of 50 steps and 20 controller samples; 40 final samples.
    fn default() -> EnasConfig {
        EnasConfig {
            epochs: 10,
            steps_per_epoch: 50,
            controller_samples: 20,
            final_samples: 40,
        }
    }
}

/// One supernet epoch, for progress reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnasEpoch {
    /// Epoch, from 0.
    pub epoch: usize,
    /// Mean minibatch loss of the shared-weight phase.
    pub mean_loss: f64,
    /// Mean reward of the controller's samples (infeasible ones at the lowest reward).
    pub mean_reward: f64,
    /// Best of those rewards.
    pub best_reward: f64,
}

/// A candidate ranked by its shared-weight reward.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ranked {
    /// The candidate.
    pub candidate: Candidate,
    /// Its validation quality with the shared weights.
    pub shared_quality: f64,
    /// That quality shaped by its cost.
    pub reward: f64,
}

/// `candidate`'s predicted latency when the device can run it (it fits flash and SRAM and the
/// search's latency limit), `None` when it is infeasible (never trained, lowest reward).
pub(crate) fn feasible_latency(
    candidate: &Candidate,
    profile: &Profile,
    config: &SearchConfig,
) -> Option<f64> {
    let cost = estimate(candidate, profile, config.leads).ok()?;
    let too_slow = config
        .max_latency_ms
        .is_some_and(|limit| cost.latency_ms > limit);
    (cost.fits_memory && !too_slow).then_some(cost.latency_ms)
}

/// Proposals drawn for one feasible child before the phase gives up on the step.
const MAX_DRAWS: usize = 200;

/// A feasible sample of the controller; infeasible ones are observed at the lowest reward.
fn sample_feasible(
    controller: &mut RlController,
    space: &SearchSpace,
    profile: &Profile,
    config: &SearchConfig,
    rng: &mut ChaCha8Rng,
) -> Result<Option<Candidate>, SearchError> {
    for _ in 0..MAX_DRAWS {
        let candidate = controller.propose(space, rng)?;
        if feasible_latency(&candidate, profile, config).is_some() {
            return Ok(Some(candidate));
        }
        controller.observe(
            space,
            &Observation {
                trial_id: 0,
                candidate,
                reward: INFEASIBLE_REWARD,
                feasible: false,
            },
        )?;
    }
    Ok(None)
}

/// Trains the supernet and the controller, then ranks distinct final samples (best first).
pub fn train_supernet(
    space: &SearchSpace,
    controller: &mut RlController,
    evaluator: &mut dyn SharedEvaluator,
    profile: &Profile,
    config: &SearchConfig,
    enas: &EnasConfig,
    on_epoch: &mut dyn FnMut(&EnasEpoch),
) -> Result<Vec<Ranked>, SearchError> {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0xe7a5);
    let failed = |message: String| {
        SearchError::Strategy(StrategyError::Internal {
            strategy: "enas",
            message,
        })
    };
    for epoch in 0..enas.epochs {
        let (mut loss_sum, mut steps) = (0.0, 0usize);
        for _ in 0..enas.steps_per_epoch {
            let Some(child) = sample_feasible(controller, space, profile, config, &mut rng)? else {
                continue;
            };
            // The controller learns only in its own phase: forget this proposal.
            let loss = evaluator.train_step(&child, &mut rng).map_err(failed)?;
            if loss.is_finite() {
                loss_sum += loss;
                steps += 1;
            }
        }
        let mut rewards = Vec::with_capacity(enas.controller_samples);
        for _ in 0..enas.controller_samples {
            let candidate = controller.propose(space, &mut rng)?;
            let reward = match feasible_latency(&candidate, profile, config) {
                Some(latency_ms) => {
                    let quality = evaluator.quality(&candidate).map_err(failed)?;
                    config.reward.reward(quality, latency_ms)
                }
                None => INFEASIBLE_REWARD,
            };
            rewards.push(reward);
            controller.observe(
                space,
                &Observation {
                    trial_id: 0,
                    candidate,
                    reward,
                    feasible: reward > INFEASIBLE_REWARD,
                },
            )?;
        }
        on_epoch(&EnasEpoch {
            epoch,
            mean_loss: loss_sum / steps.max(1) as f64,
            mean_reward: rewards.iter().sum::<f64>() / rewards.len().max(1) as f64,
            best_reward: rewards.iter().copied().fold(INFEASIBLE_REWARD, f64::max),
        });
    }

    // The controller's most likely candidate first, then its samples.
    let mut seen = HashSet::new();
    let mut ranked = Vec::new();
    let mut candidates = vec![controller.most_likely(space)?];
    for _ in 0..enas.final_samples * 5 {
        if candidates.len() >= enas.final_samples.max(1) {
            break;
        }
        candidates.push(controller.propose(space, &mut rng)?);
    }
    for candidate in candidates {
        if !seen.insert(candidate.id()) {
            continue;
        }
        let Some(latency_ms) = feasible_latency(&candidate, profile, config) else {
            continue;
        };
        let quality = evaluator.quality(&candidate).map_err(failed)?;
        ranked.push(Ranked {
            candidate,
            shared_quality: quality,
            reward: config.reward.reward(quality, latency_ms),
        });
    }
    ranked.sort_by(|a, b| b.reward.total_cmp(&a.reward));
    Ok(ranked)
}

/// The search loop's strategy after the supernet phase: the ranked candidates in order, then
/// the controller's samples; every from-scratch result trains the controller further.
pub struct EnasStrategy {
    queue: Vec<Candidate>,
    next: usize,
    controller: RlController,
}

/// [`EnasStrategy`]'s checkpoint.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnasState {
    queue: Vec<Candidate>,
    next: usize,
    controller: serde_json::Value,
}

impl EnasStrategy {
    /// Proposes `ranked` first (best first), then samples of `controller`.
    pub fn new(ranked: &[Ranked], controller: RlController) -> EnasStrategy {
        EnasStrategy {
            queue: ranked.iter().map(|r| r.candidate.clone()).collect(),
            next: 0,
            controller,
        }
    }
}

impl Strategy for EnasStrategy {
    fn name(&self) -> &'static str {
        "enas"
    }

    fn propose(
        &mut self,
        space: &SearchSpace,
        rng: &mut ChaCha8Rng,
    ) -> Result<Candidate, StrategyError> {
        if let Some(candidate) = self.queue.get(self.next) {
            self.next += 1;
            return Ok(candidate.clone());
        }
        self.controller.propose(space, rng)
    }

    fn observe(
        &mut self,
        space: &SearchSpace,
        observation: &Observation,
    ) -> Result<(), StrategyError> {
        self.controller.observe(space, observation)
    }

    fn save(&self) -> Result<serde_json::Value, StrategyError> {
        state_to_json(
            "enas",
            &EnasState {
                queue: self.queue.clone(),
                next: self.next,
                controller: self.controller.save()?,
            },
        )
    }

    fn restore(&mut self, state: &serde_json::Value) -> Result<(), StrategyError> {
        let state: EnasState = state_from_json("enas", state)?;
        self.controller.restore(&state.controller)?;
        self.queue = state.queue;
        self.next = state.next.min(self.queue.len());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::reward::RewardConfig;
    use crate::search::rl::RlConfig;
    use crate::search::toy::small_space;
    use crate::space::Normalisation;

    /// A stand-in supernet whose quality is a known function of the candidate: z-score
    /// normalisation and more blocks are better. It counts the steps it was asked for.
    struct Known {
        steps: usize,
    }

    impl SharedEvaluator for Known {
        fn train_step(&mut self, _: &Candidate, _: &mut ChaCha8Rng) -> Result<f64, String> {
            self.steps += 1;
            Ok(1.0)
        }
        fn quality(&mut self, c: &Candidate) -> Result<f64, String> {
            let z = c.preprocessing.normalisation == Normalisation::ZScore;
            Ok(0.2 + 0.5 * f64::from(u8::from(z)) + 0.1 * c.architecture.blocks.len() as f64)
        }
    }

    #[test]
    fn the_controller_learns_from_shared_rewards_and_ranks_the_best_first() {
        let space = small_space();
        let profile = Profile::load("qemu-mps2-an386").expect("profile");
        let config = SearchConfig {
            trials: 1,
            seed: 4,
            reward: RewardConfig::mnasnet(1e9),
            leads: 1,
            max_latency_ms: None,
        };
        let mut controller = RlController::new(
            &space,
            RlConfig {
                seed: 4,
                ..RlConfig::default()
            },
        )
        .expect("controller");
        let mut known = Known { steps: 0 };
        let enas = EnasConfig {
            epochs: 15,
            steps_per_epoch: 4,
            controller_samples: 20,
            final_samples: 10,
        };
        let mut epochs = Vec::new();
        let ranked = train_supernet(
            &space,
            &mut controller,
            &mut known,
            &profile,
            &config,
            &enas,
            &mut |e| epochs.push(e.clone()),
        )
        .expect("supernet phase");
        assert_eq!(epochs.len(), 15);
        assert_eq!(known.steps, 15 * 4);
        // Uniform sampling gets z-score a third of the time; the controller learns to prefer it.
        let early = epochs[0].mean_reward;
        let late = epochs[14].mean_reward;
        assert!(late > early + 0.1, "mean reward {early} -> {late}");
        assert!(!ranked.is_empty());
        assert!(ranked.windows(2).all(|w| w[0].reward >= w[1].reward));
        let ids: HashSet<String> = ranked.iter().map(|r| r.candidate.id()).collect();
        assert_eq!(ids.len(), ranked.len(), "a candidate ranked twice");
        assert_eq!(
            ranked[0].candidate.preprocessing.normalisation,
            Normalisation::ZScore
        );

        // The strategy proposes the ranking in order, and resumes where it was.
        let mut strategy = EnasStrategy::new(&ranked, controller);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let first = strategy.propose(&space, &mut rng).expect("first");
        assert_eq!(first, ranked[0].candidate);
        let saved = strategy.save().expect("save");
        let mut again = EnasStrategy::new(
            &[],
            RlController::new(
                &space,
                RlConfig {
                    seed: 4,
                    ..RlConfig::default()
                },
            )
            .expect("controller"),
        );
        again.restore(&saved).expect("restore");
        if ranked.len() > 1 {
            assert_eq!(
                again.propose(&space, &mut rng).expect("second"),
                ranked[1].candidate
            );
        }
    }
}
