//! The search: strategies propose candidates, the loop evaluates them, rewards shape them.
//!
//! Strategies: [`RandomSearch`] and [`RegularizedEvolution`] (the baselines) and
//! [`RlController`] (an LSTM controller trained with REINFORCE) and [`Smbo`] (a random-forest
//! surrogate with expected improvement); [`enas`] and [`darts`] search on one supernet and hand
//! their result to the same loop.

pub mod darts;
pub mod distributed;
pub mod enas;
pub mod evolution;
pub mod random;
pub mod reward;
pub mod rl;
pub mod run;
pub mod scale;
pub mod smbo;
pub mod strategy;
#[cfg(test)]
pub(crate) mod toy;

pub use evolution::{EvolutionConfig, Member, RegularizedEvolution};
pub use random::RandomSearch;
pub use reward::{RewardConfig, Shaping, INFEASIBLE_REWARD};
pub use rl::{RlConfig, RlController};
pub use run::{
    best_trial, pareto_front, run_search, strategy_by_name, Evaluation, Evaluator, SearchConfig,
    SearchError,
};
pub use smbo::{Smbo, SmboConfig};
pub use strategy::{Observation, Strategy, StrategyError};
