//! The search: strategies propose candidates, the loop evaluates them, rewards shape them.

pub mod random;
pub mod reward;
pub mod run;
pub mod strategy;

pub use reward::{RewardConfig, Shaping, INFEASIBLE_REWARD};
pub use run::{
    best_trial, pareto_front, run_search, strategy_by_name, Evaluation, Evaluator, SearchConfig,
    SearchError,
};
pub use strategy::{Observation, Strategy, StrategyError};
