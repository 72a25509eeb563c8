//! The interface every search strategy implements: propose candidates, learn from rewards.
//!
//! A strategy never trains, reads files or sees tensors of a child: the search loop calls the
//! evaluator and hands back an [`Observation`]. Its state is serde JSON, stored in the trial
//! store after each trial so that `--resume` continues where a killed search stopped.

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::space::{Candidate, SearchSpace};

/// What the loop tells a strategy about one finished trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// The trial's number, in proposal order.
    pub trial_id: u64,
    /// The candidate evaluated.
    pub candidate: Candidate,
    /// Its reward (quality shaped by the device's cost; the lowest for infeasible ones).
    pub reward: f64,
    /// Whether it fits the device's hard limits.
    pub feasible: bool,
}

/// Errors of a strategy.
#[derive(Debug, thiserror::Error)]
pub enum StrategyError {
    /// The saved state cannot be restored.
    #[error("cannot restore the {strategy} strategy's saved state: {message}")]
    BadState {
        /// The strategy's name.
        strategy: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The strategy's own computation failed (the RL controller's tensors).
    #[error("{strategy} strategy: {message}")]
    Internal {
        /// The strategy's name.
        strategy: &'static str,
        /// What failed.
        message: String,
    },
}

/// A strategy's state as the JSON its `save` returns.
pub(crate) fn state_to_json<S: Serialize>(
    strategy: &'static str,
    state: &S,
) -> Result<serde_json::Value, StrategyError> {
    serde_json::to_value(state).map_err(|e| StrategyError::Internal {
        strategy,
        message: e.to_string(),
    })
}

/// A strategy's state read back from the JSON its `save` returned.
pub(crate) fn state_from_json<S: serde::de::DeserializeOwned>(
    strategy: &'static str,
    state: &serde_json::Value,
) -> Result<S, StrategyError> {
    S::deserialize(state).map_err(|e| StrategyError::BadState {
        strategy,
        message: e.to_string(),
    })
}

/// A search strategy.
pub trait Strategy {
    /// The strategy's name (`random`, `evolution`, `rl`).
    fn name(&self) -> &'static str;
    /// The next candidate to evaluate (always a member of the space).
    fn propose(
        &mut self,
        space: &SearchSpace,
        rng: &mut ChaCha8Rng,
    ) -> Result<Candidate, StrategyError>;
    /// Learns from a finished trial.
    fn observe(
        &mut self,
        space: &SearchSpace,
        observation: &Observation,
    ) -> Result<(), StrategyError>;
    /// The state to checkpoint (JSON).
    fn save(&self) -> Result<serde_json::Value, StrategyError>;
    /// Restores a checkpoint written by [`Strategy::save`].
    fn restore(&mut self, state: &serde_json::Value) -> Result<(), StrategyError>;
}
