//! Regularised (aging) evolution, Real et al. 2019, "Regularized evolution for image classifier
//! architecture search", Algorithm 1.
//!
//! The population is a queue of the last `population` observed candidates. The first
//! `population` proposals are uniform samples; every later one is a one-gene mutation
//! ([`SearchSpace::mutate`]) of the best of `sample` members drawn uniformly (without
//! replacement) from the population. Every observation joins the queue at the back, and the
//! oldest member leaves once the queue is longer than `population`: a candidate survives by
//! age, not by reward, which keeps the search from clinging to a lucky early result.
//!
//! Proposals and observations need not alternate: a proposal uses whatever has been observed
//! so far (a uniform sample while nothing has), and an observation is taken as it comes.

use std::collections::VecDeque;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::strategy::{state_from_json, state_to_json, Observation, Strategy, StrategyError};
use crate::space::{Candidate, SearchSpace};

const NAME: &str = "evolution";

/// Settings of [`RegularizedEvolution`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvolutionConfig {
    /// Population size P: the queue's length, and the number of random proposals first.
    pub population: usize,
    /// Sample size S: how many members compete to be the next parent.
    pub sample: usize,
}

impl Default for EvolutionConfig {
    /// P = 20, S = 5.
    fn default() -> EvolutionConfig {
        EvolutionConfig {
            population: 20,
            sample: 5,
        }
    }
}

/// One member of the population: an observed candidate and its reward.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// The trial that evaluated it.
    pub trial_id: u64,
    /// The candidate.
    pub candidate: Candidate,
    /// Its reward (NaN ranks below everything).
    pub reward: f64,
}

/// Regularised evolution; see the module docs.
#[derive(Debug, Clone, PartialEq)]
pub struct RegularizedEvolution {
    config: EvolutionConfig,
    proposed: u64,
    population: VecDeque<Member>,
}

/// The saved state: the settings (checked on restore), the proposal count and the queue,
/// oldest first.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EvolutionState {
    config: EvolutionConfig,
    proposed: u64,
    population: Vec<Member>,
}

impl RegularizedEvolution {
    /// An empty population with these settings; both sizes must be at least 1.
    pub fn new(config: EvolutionConfig) -> Result<RegularizedEvolution, StrategyError> {
        if config.population == 0 || config.sample == 0 {
            return Err(StrategyError::Internal {
                strategy: NAME,
                message: format!(
                    "population ({}) and sample ({}) sizes must be at least 1",
                    config.population, config.sample
                ),
            });
        }
        Ok(RegularizedEvolution {
            config,
            proposed: 0,
            population: VecDeque::with_capacity(config.population + 1),
        })
    }

    /// The settings.
    pub fn config(&self) -> EvolutionConfig {
        self.config
    }

    /// The population, oldest first.
    pub fn population(&self) -> impl ExactSizeIterator<Item = &Member> {
        self.population.iter()
    }

    /// How many candidates it has proposed.
    pub fn proposed(&self) -> u64 {
        self.proposed
    }

    /// The best of `sample` members drawn without replacement (all of them when fewer).
    fn tournament(&self, rng: &mut ChaCha8Rng) -> Option<&Member> {
        let n = self.population.len();
        let mut order: Vec<usize> = (0..n).collect();
        let draws = self.config.sample.min(n);
        // Partial Fisher-Yates: the first `draws` entries become a uniform sample.
        for i in 0..draws {
            let j = rng.random_range(i..n);
            order.swap(i, j);
        }
        order[..draws]
            .iter()
            .map(|&i| &self.population[i])
            .reduce(|best, member| {
                if rank(member.reward) > rank(best.reward) {
                    member
                } else {
                    best
                }
            })
    }
}

/// NaN ranks lowest; ties keep the earlier drawn member.
fn rank(reward: f64) -> f64 {
    if reward.is_nan() {
        f64::NEG_INFINITY
    } else {
        reward
    }
}

impl Strategy for RegularizedEvolution {
    fn name(&self) -> &'static str {
        NAME
    }

    fn propose(
        &mut self,
        space: &SearchSpace,
        rng: &mut ChaCha8Rng,
    ) -> Result<Candidate, StrategyError> {
        let internal = |e: crate::space::SpaceError| StrategyError::Internal {
            strategy: NAME,
            message: e.to_string(),
        };
        let random_phase = self.proposed < self.config.population as u64;
        let parent = if random_phase {
            None
        } else {
            self.tournament(rng)
        };
        let candidate = match parent {
            Some(parent) => space.mutate(&parent.candidate, rng),
            None => space.sample(rng),
        }
        .map_err(internal)?;
        self.proposed += 1;
        Ok(candidate)
    }

    fn observe(
        &mut self,
        _space: &SearchSpace,
        observation: &Observation,
    ) -> Result<(), StrategyError> {
        self.population.push_back(Member {
            trial_id: observation.trial_id,
            candidate: observation.candidate.clone(),
            reward: observation.reward,
        });
        while self.population.len() > self.config.population {
            self.population.pop_front();
        }
        Ok(())
    }

    fn save(&self) -> Result<serde_json::Value, StrategyError> {
        state_to_json(
            NAME,
            &EvolutionState {
                config: self.config,
                proposed: self.proposed,
                population: self.population.iter().cloned().collect(),
            },
        )
    }

    fn restore(&mut self, state: &serde_json::Value) -> Result<(), StrategyError> {
        let bad = |message: String| StrategyError::BadState {
            strategy: NAME,
            message,
        };
        let state: EvolutionState = state_from_json(NAME, state)?;
        if state.config != self.config {
            return Err(bad(format!(
                "saved with {:?}, resumed with {:?}",
                state.config, self.config
            )));
        }
        if state.population.len() > self.config.population {
            return Err(bad(format!(
                "{} members saved, more than the population size {}",
                state.population.len(),
                self.config.population
            )));
        }
        self.proposed = state.proposed;
        self.population = state.population.into();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::search::random::RandomSearch;
    use crate::search::toy::{drive, medium_space, TargetReward};

    fn evolution() -> RegularizedEvolution {
        RegularizedEvolution::new(EvolutionConfig::default()).unwrap()
    }

    #[test]
    fn proposes_members_of_the_space_deterministically() {
        let space = medium_space();
        let reward = TargetReward::with_blocks(&space, 2, 2);
        let run = |seed| {
            let mut strategy = evolution();
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            drive(&mut strategy, &space, &reward, &mut rng, 0, 120)
        };
        let a = run(5);
        assert!(a.iter().all(|(c, _)| space.encode(c).is_some()));
        assert_eq!(a, run(5));
        assert_ne!(a, run(6));
    }

    #[test]
    fn population_is_bounded_and_the_oldest_leaves() {
        let space = medium_space();
        let reward = TargetReward::with_blocks(&space, 2, 2);
        let config = EvolutionConfig {
            population: 7,
            sample: 3,
        };
        let mut strategy = RegularizedEvolution::new(config).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for trial in 0..40u64 {
            drive(&mut strategy, &space, &reward, &mut rng, trial, 1);
            let ids: Vec<u64> = strategy.population().map(|m| m.trial_id).collect();
            let first = (trial + 1).saturating_sub(7);
            // Exactly the last min(trial + 1, P) observations, oldest first, whatever their
            // rewards: the best one is dropped too when its time has come.
            assert_eq!(ids, (first..=trial).collect::<Vec<_>>());
        }
        assert!(RegularizedEvolution::new(EvolutionConfig {
            population: 0,
            sample: 1
        })
        .is_err());
    }

    #[test]
    fn first_proposals_are_random_then_mutations_of_a_member() {
        let space = medium_space();
        let reward = TargetReward::with_blocks(&space, 2, 2);
        let mut strategy = evolution();
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut random_rng = rng.clone();
        let first = drive(&mut strategy, &space, &reward, &mut rng, 0, 20);
        // The same draws as random search while the population fills.
        let random = drive(
            &mut RandomSearch::new(),
            &space,
            &reward,
            &mut random_rng,
            0,
            20,
        );
        assert_eq!(first, random);
        // After that, each proposal differs from some member in exactly one decision.
        let decisions = space.decisions();
        for _ in 0..20 {
            let before: Vec<Vec<usize>> = strategy
                .population()
                .map(|m| space.encode(&m.candidate).unwrap())
                .collect();
            let (child, _) = drive(&mut strategy, &space, &reward, &mut rng, 20, 1).remove(0);
            let child = space.encode(&child).unwrap();
            let one_gene_away = before.iter().any(|parent| {
                let changed: Vec<usize> = (0..decisions.len())
                    .filter(|&i| parent[i] != child[i])
                    .collect();
                // A changed block count also redraws the appended blocks.
                changed.len() == 1
                    || changed
                        .first()
                        .is_some_and(|&i| decisions[i].kind.gene() == crate::space::Gene::NumBlocks)
            });
            assert!(one_gene_away);
        }
    }

    #[test]
    fn proposals_ahead_of_observations_still_work() {
        let space = medium_space();
        let mut strategy = evolution();
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        // 30 proposals with nothing observed: all uniform samples, no panic.
        let pending: Vec<Candidate> = (0..30)
            .map(|_| strategy.propose(&space, &mut rng).unwrap())
            .collect();
        assert_eq!(strategy.population().len(), 0);
        for (i, candidate) in pending.into_iter().enumerate() {
            strategy
                .observe(
                    &space,
                    &Observation {
                        trial_id: i as u64,
                        candidate,
                        reward: i as f64,
                        feasible: true,
                    },
                )
                .unwrap();
        }
        assert_eq!(strategy.population().len(), 20);
        let child = strategy.propose(&space, &mut rng).unwrap();
        assert!(space.encode(&child).is_some());
    }

    /// Best reward within 300 trials on the medium space, averaged over 6 targets and seeds:
    /// evolution must beat random search clearly.
    #[test]
    fn beats_random_search_on_a_known_reward() {
        let space = medium_space();
        let (mut evo_best, mut random_best) = (0.0, 0.0);
        let seeds = 6;
        for seed in 0..seeds {
            let reward = TargetReward::with_blocks(&space, seed, 2);
            let best = |strategy: &mut dyn Strategy| {
                let mut rng = ChaCha8Rng::seed_from_u64(100 + seed);
                drive(strategy, &space, &reward, &mut rng, 0, 300)
                    .iter()
                    .map(|(_, r)| *r)
                    .fold(0.0, f64::max)
            };
            evo_best += best(&mut evolution()) / seeds as f64;
            random_best += best(&mut RandomSearch::new()) / seeds as f64;
        }
        eprintln!(
            "mean best reward in 300 trials: evolution {evo_best:.3}, random {random_best:.3}"
        );
        assert!(
            evo_best > random_best + 0.15,
            "evolution {evo_best:.3}, random {random_best:.3}"
        );
    }

    #[test]
    fn save_restore_continues_identically() {
        let space = medium_space();
        let reward = TargetReward::with_blocks(&space, 3, 2);
        let mut strategy = evolution();
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        drive(&mut strategy, &space, &reward, &mut rng, 0, 45);
        let text = serde_json::to_string(&strategy.save().unwrap()).unwrap();
        let mut resumed = evolution();
        resumed
            .restore(&serde_json::from_str(&text).unwrap())
            .unwrap();
        assert_eq!(resumed, strategy);
        let mut rng2 = rng.clone();
        let next = drive(&mut strategy, &space, &reward, &mut rng, 45, 30);
        let next_resumed = drive(&mut resumed, &space, &reward, &mut rng2, 45, 30);
        assert_eq!(next, next_resumed);
        assert_eq!(resumed, strategy);
        // A state saved with other settings is refused.
        let mut other = RegularizedEvolution::new(EvolutionConfig {
            population: 10,
            sample: 5,
        })
        .unwrap();
        assert!(matches!(
            other.restore(&serde_json::from_str(&text).unwrap()),
            Err(StrategyError::BadState { .. })
        ));
    }
}
