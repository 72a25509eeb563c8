//! Sequential model-based optimisation (SMBO), in the manner of SMAC (Hutter et al. 2011).
//!
//! A random forest of regression trees is fitted on every observed trial, whichever strategy
//! proposed it, so a search started by another strategy continues with all it learnt. The
//! first `initial` proposals are uniform samples; every later one is the candidate with the
//! highest expected improvement over the best observed reward among a pool of uniform samples
//! and mutations of the best observed candidates. The forest's mean over trees is the
//! prediction, its spread (between and within trees) the uncertainty.
//!
//! A candidate is encoded as one feature per decision ([`SearchSpace::encode`]): the choice's
//! index, or [`INACTIVE`] for the decisions of blocks it does not have. Candidates that a
//! feasibility predicate (the profile's hard limits, [`Smbo::with_feasibility`]) rejects are
//! never proposed, and candidates already observed are not proposed again.
//!
//! The surrogate is written here rather than taken from a crate: the forests of the Rust ML
//! crates do not expose the per-tree predictions that the uncertainty needs, and a forest of
//! a few hundred rows and a few dozen features is small.

use std::collections::HashSet;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::strategy::{state_from_json, state_to_json, Observation, Strategy, StrategyError};
use crate::space::{Candidate, SearchSpace};

const NAME: &str = "smbo";

/// The feature of a decision that the candidate does not have (a block beyond its count).
pub const INACTIVE: f64 = -1.0;

/// Uniform draws tried for one feasible proposal before the strategy gives up filtering.
const MAX_FEASIBLE_DRAWS: usize = 200;

/// Settings of [`Smbo`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmboConfig {
    /// Uniform proposals before the surrogate is used (counted over all observations).
    pub initial: usize,
    /// Uniform samples scored by the acquisition per proposal.
    pub samples: usize,
    /// How many of the best observed candidates are mutated for the pool.
    pub parents: usize,
    /// Mutations drawn per parent (chains of one to three one-gene mutations).
    pub mutations: usize,
    /// Trees of the forest.
    pub trees: usize,
    /// Fewest rows a tree splits.
    pub min_split: usize,
    /// Seed of the forest's bootstraps and feature draws.
    pub seed: u64,
}

impl Default for SmboConfig {
    /// 10 initial designs, 1000 samples plus 5 x 100 mutations, 24 trees.
    fn default() -> SmboConfig {
        SmboConfig {
            initial: 10,
            samples: 1000,
            parents: 5,
            mutations: 100,
            trees: 24,
            min_split: 3,
            seed: 0,
        }
    }
}

/// One observed trial as the surrogate keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Seen {
    candidate: Candidate,
    reward: f64,
}

/// A predicate on candidates: `false` for those the cost model knows cannot be used.
pub type Feasibility = Box<dyn Fn(&Candidate) -> bool>;

/// SMBO with a random-forest surrogate and expected improvement; see the module docs.
pub struct Smbo {
    config: SmboConfig,
    proposed: u64,
    seen: Vec<Seen>,
    feasible: Option<Feasibility>,
}

impl std::fmt::Debug for Smbo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smbo")
            .field("config", &self.config)
            .field("proposed", &self.proposed)
            .field("observed", &self.seen.len())
            .field("feasibility", &self.feasible.is_some())
            .finish()
    }
}

/// The saved state: the settings (checked on restore), the proposal count and every
/// observation (the forest is refitted from them).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SmboState {
    config: SmboConfig,
    proposed: u64,
    seen: Vec<Seen>,
}

impl Smbo {
    /// A strategy that has observed nothing; trees and samples must be at least 1.
    pub fn new(config: SmboConfig) -> Result<Smbo, StrategyError> {
        if config.trees == 0 || config.samples == 0 {
            return Err(StrategyError::Internal {
                strategy: NAME,
                message: format!(
                    "trees ({}) and samples ({}) must be at least 1",
                    config.trees, config.samples
                ),
            });
        }
        Ok(Smbo {
            config,
            proposed: 0,
            seen: Vec::new(),
            feasible: None,
        })
    }

    /// Proposes only candidates that `feasible` accepts (while it can find any).
    pub fn with_feasibility(mut self, feasible: Feasibility) -> Smbo {
        self.feasible = Some(feasible);
        self
    }

    /// The settings.
    pub fn config(&self) -> SmboConfig {
        self.config
    }

    /// How many candidates it has proposed.
    pub fn proposed(&self) -> u64 {
        self.proposed
    }

    /// How many observations the surrogate is fitted on.
    pub fn observed(&self) -> usize {
        self.seen.len()
    }

    fn accepts(&self, candidate: &Candidate) -> bool {
        self.feasible.as_ref().is_none_or(|f| f(candidate))
    }

    /// A uniform sample the predicate accepts (the last draw when none is found).
    fn feasible_sample(
        &self,
        space: &SearchSpace,
        rng: &mut ChaCha8Rng,
    ) -> Result<Candidate, StrategyError> {
        let mut candidate = sample(space, rng)?;
        for _ in 0..MAX_FEASIBLE_DRAWS {
            if self.accepts(&candidate) {
                break;
            }
            candidate = sample(space, rng)?;
        }
        Ok(candidate)
    }

    /// The pool's candidate of highest expected improvement, or `None` when the pool holds
    /// nothing new and feasible.
    fn best_by_acquisition(
        &self,
        space: &SearchSpace,
        rng: &mut ChaCha8Rng,
    ) -> Result<Option<Candidate>, StrategyError> {
        let mut rows = Vec::with_capacity(self.seen.len());
        let mut targets = Vec::with_capacity(self.seen.len());
        let mut known = HashSet::new();
        for s in &self.seen {
            if let Some(x) = features(space, &s.candidate) {
                known.insert(s.candidate.id());
                rows.push(x);
                targets.push(s.reward);
            }
        }
        if rows.is_empty() {
            return Ok(None);
        }
        let mut forest_rng = ChaCha8Rng::seed_from_u64(
            self.config.seed ^ (rows.len() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let forest = Forest::fit(&rows, &targets, &self.config, &mut forest_rng);
        let best = targets.iter().copied().fold(f64::NEG_INFINITY, f64::max);

        let mut pool = Vec::with_capacity(self.config.samples + self.config.parents);
        for _ in 0..self.config.samples {
            pool.push(sample(space, rng)?);
        }
        let mut ranked: Vec<&Seen> = self.seen.iter().collect();
        ranked.sort_by(|a, b| b.reward.total_cmp(&a.reward));
        for parent in ranked.iter().take(self.config.parents) {
            for _ in 0..self.config.mutations {
                let mut child = parent.candidate.clone();
                for _ in 0..rng.random_range(1..=3) {
                    child = space
                        .mutate(&child, rng)
                        .map_err(|e| StrategyError::Internal {
                            strategy: NAME,
                            message: e.to_string(),
                        })?;
                }
                pool.push(child);
            }
        }
        let mut chosen: Option<(f64, Candidate)> = None;
        let mut scored = HashSet::new();
        for candidate in pool {
            let id = candidate.id();
            if known.contains(&id) || !scored.insert(id) || !self.accepts(&candidate) {
                continue;
            }
            let Some(x) = features(space, &candidate) else {
                continue;
            };
            let (mu, sigma) = forest.predict(&x);
            let ei = expected_improvement(mu, sigma, best);
            if chosen.as_ref().is_none_or(|(e, _)| ei > *e) {
                chosen = Some((ei, candidate));
            }
        }
        Ok(chosen.map(|(_, c)| c))
    }
}

fn sample(space: &SearchSpace, rng: &mut ChaCha8Rng) -> Result<Candidate, StrategyError> {
    space.sample(rng).map_err(|e| StrategyError::Internal {
        strategy: NAME,
        message: e.to_string(),
    })
}

/// One feature per decision: the choice index, or [`INACTIVE`]; `None` outside the space.
pub fn features(space: &SearchSpace, candidate: &Candidate) -> Option<Vec<f64>> {
    let choices = space.encode(candidate)?;
    let blocks = candidate.architecture.blocks.len();
    Some(
        space
            .decisions()
            .iter()
            .zip(choices)
            .map(|(d, c)| {
                if d.is_active(blocks) {
                    c as f64
                } else {
                    INACTIVE
                }
            })
            .collect(),
    )
}

/// Expected improvement of a Gaussian N(mu, sigma^2) over `best` (maximisation).
fn expected_improvement(mu: f64, sigma: f64, best: f64) -> f64 {
    if sigma <= 1e-12 {
        return (mu - best).max(0.0);
    }
    let z = (mu - best) / sigma;
    (mu - best) * normal_cdf(z) + sigma * normal_pdf(z)
}

fn normal_pdf(z: f64) -> f64 {
    (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// The standard normal CDF.
fn normal_cdf(z: f64) -> f64 {
    0.5 * libm::erfc(-z / std::f64::consts::SQRT_2)
}

/// A node of a regression tree: a split on one feature, or a leaf's mean and variance.
#[derive(Debug, Clone)]
enum Node {
    Split {
        feature: usize,
        threshold: f64,
        left: usize,
        right: usize,
    },
    Leaf {
        mean: f64,
        variance: f64,
    },
}

/// A CART regression tree (squared error), grown on a bootstrap with a random subset of
/// features tried at each split.
#[derive(Debug, Clone)]
struct Tree {
    nodes: Vec<Node>,
}

impl Tree {
    fn fit(
        rows: &[Vec<f64>],
        targets: &[f64],
        sample: Vec<usize>,
        config: &SmboConfig,
        rng: &mut ChaCha8Rng,
    ) -> Tree {
        let mut tree = Tree { nodes: Vec::new() };
        tree.grow(rows, targets, sample, config, rng);
        tree
    }

    /// Grows the subtree of `sample`, returning its node's index.
    fn grow(
        &mut self,
        rows: &[Vec<f64>],
        targets: &[f64],
        sample: Vec<usize>,
        config: &SmboConfig,
        rng: &mut ChaCha8Rng,
    ) -> usize {
        let n = sample.len().max(1) as f64;
        let mean = sample.iter().map(|&i| targets[i]).sum::<f64>() / n;
        let variance = sample
            .iter()
            .map(|&i| (targets[i] - mean).powi(2))
            .sum::<f64>()
            / n;
        let index = self.nodes.len();
        self.nodes.push(Node::Leaf { mean, variance });
        if sample.len() < config.min_split.max(2) || variance <= 1e-18 {
            return index;
        }
        let n_features = rows[sample[0]].len();
        // SMAC's choice: five sixths of the features at each split.
        let tried = (n_features * 5).div_ceil(6).max(1);
        let mut features: Vec<usize> = (0..n_features).collect();
        for i in 0..tried.min(n_features) {
            let j = rng.random_range(i..n_features);
            features.swap(i, j);
        }
        let mut best: Option<(f64, usize, f64)> = None;
        for &feature in &features[..tried.min(n_features)] {
            let mut order = sample.clone();
            order.sort_by(|&a, &b| rows[a][feature].total_cmp(&rows[b][feature]));
            let total: f64 = order.iter().map(|&i| targets[i]).sum();
            let total_sq: f64 = order.iter().map(|&i| targets[i] * targets[i]).sum();
            let (mut left, mut left_sq) = (0.0, 0.0);
            for k in 1..order.len() {
                let y = targets[order[k - 1]];
                left += y;
                left_sq += y * y;
                let (a, b) = (rows[order[k - 1]][feature], rows[order[k]][feature]);
                if a == b {
                    continue;
                }
                let (nl, nr) = (k as f64, (order.len() - k) as f64);
                let sse = (left_sq - left * left / nl)
                    + ((total_sq - left_sq) - (total - left).powi(2) / nr);
                if best.is_none_or(|(s, _, _)| sse < s) {
                    best = Some((sse, feature, 0.5 * (a + b)));
                }
            }
        }
        let Some((_, feature, threshold)) = best else {
            return index;
        };
        let (l, r): (Vec<usize>, Vec<usize>) = sample
            .into_iter()
            .partition(|&i| rows[i][feature] <= threshold);
        let left = self.grow(rows, targets, l, config, rng);
        let right = self.grow(rows, targets, r, config, rng);
        self.nodes[index] = Node::Split {
            feature,
            threshold,
            left,
            right,
        };
        index
    }

    /// The leaf's mean and variance for `x`.
    fn predict(&self, x: &[f64]) -> (f64, f64) {
        let mut at = 0;
        loop {
            match self.nodes.get(at) {
                Some(Node::Split {
                    feature,
                    threshold,
                    left,
                    right,
                }) => {
                    at = if x.get(*feature).copied().unwrap_or(INACTIVE) <= *threshold {
                        *left
                    } else {
                        *right
                    };
                }
                Some(Node::Leaf { mean, variance }) => return (*mean, *variance),
                None => return (0.0, 0.0),
            }
        }
    }
}

/// A random forest of regression trees on bootstraps of the observations.
#[derive(Debug, Clone)]
struct Forest {
    trees: Vec<Tree>,
}

impl Forest {
    fn fit(
        rows: &[Vec<f64>],
        targets: &[f64],
        config: &SmboConfig,
        rng: &mut ChaCha8Rng,
    ) -> Forest {
        let n = rows.len();
        let trees = (0..config.trees)
            .map(|_| {
                let bootstrap: Vec<usize> = (0..n).map(|_| rng.random_range(0..n)).collect();
                Tree::fit(rows, targets, bootstrap, config, rng)
            })
            .collect();
        Forest { trees }
    }

    /// Mean over trees, and the standard deviation by the law of total variance (the spread
    /// of the trees' means plus their leaves' mean variance).
    fn predict(&self, x: &[f64]) -> (f64, f64) {
        let preds: Vec<(f64, f64)> = self.trees.iter().map(|t| t.predict(x)).collect();
        let n = preds.len().max(1) as f64;
        let mean = preds.iter().map(|p| p.0).sum::<f64>() / n;
        let between = preds.iter().map(|p| (p.0 - mean).powi(2)).sum::<f64>() / n;
        let within = preds.iter().map(|p| p.1).sum::<f64>() / n;
        (mean, (between + within).max(0.0).sqrt())
    }
}

impl Strategy for Smbo {
    fn name(&self) -> &'static str {
        NAME
    }

    fn propose(
        &mut self,
        space: &SearchSpace,
        rng: &mut ChaCha8Rng,
    ) -> Result<Candidate, StrategyError> {
        let candidate = if self.seen.len() < self.config.initial {
            self.feasible_sample(space, rng)?
        } else {
            match self.best_by_acquisition(space, rng)? {
                Some(c) => c,
                None => self.feasible_sample(space, rng)?,
            }
        };
        self.proposed += 1;
        Ok(candidate)
    }

    fn observe(
        &mut self,
        _space: &SearchSpace,
        observation: &Observation,
    ) -> Result<(), StrategyError> {
        if observation.reward.is_finite() {
            self.seen.push(Seen {
                candidate: observation.candidate.clone(),
                reward: observation.reward,
            });
        }
        Ok(())
    }

    fn save(&self) -> Result<serde_json::Value, StrategyError> {
        state_to_json(
            NAME,
            &SmboState {
                config: self.config,
                proposed: self.proposed,
                seen: self.seen.clone(),
            },
        )
    }

    fn restore(&mut self, state: &serde_json::Value) -> Result<(), StrategyError> {
        let state: SmboState = state_from_json(NAME, state)?;
        if state.config != self.config {
            return Err(StrategyError::BadState {
                strategy: NAME,
                message: format!(
                    "saved with settings {:?}, now {:?}",
                    state.config, self.config
                ),
            });
        }
        self.proposed = state.proposed;
        self.seen = state.seen;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
