//! Random search: every proposal an independent [`SearchSpace::sample`].
//!
//! The plain baseline that NAS methods must beat (Li & Talwalkar 2019). It learns nothing; its
//! only state is the number of proposals made, kept so a resumed search can say how far it got.

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::strategy::{state_from_json, state_to_json, Observation, Strategy, StrategyError};
use crate::space::{Candidate, SearchSpace};

const NAME: &str = "random";

/// Uniform sampling of every decision ([`SearchSpace::sample`]), independent of all rewards.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RandomSearch {
    proposed: u64,
}

/// The saved state of [`RandomSearch`].
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RandomState {
    proposed: u64,
}

impl RandomSearch {
    /// A random search that has proposed nothing yet.
    pub fn new() -> RandomSearch {
        RandomSearch::default()
    }

    /// How many candidates it has proposed.
    pub fn proposed(&self) -> u64 {
        self.proposed
    }
}

impl Strategy for RandomSearch {
    fn name(&self) -> &'static str {
        NAME
    }

    fn propose(
        &mut self,
        space: &SearchSpace,
        rng: &mut ChaCha8Rng,
    ) -> Result<Candidate, StrategyError> {
        let candidate = space.sample(rng).map_err(|e| StrategyError::Internal {
            strategy: NAME,
            message: e.to_string(),
        })?;
        self.proposed += 1;
        Ok(candidate)
    }

    fn observe(
        &mut self,
        _space: &SearchSpace,
        _observation: &Observation,
    ) -> Result<(), StrategyError> {
        Ok(())
    }

    fn save(&self) -> Result<serde_json::Value, StrategyError> {
        state_to_json(
            NAME,
            &RandomState {
                proposed: self.proposed,
            },
        )
    }

    fn restore(&mut self, state: &serde_json::Value) -> Result<(), StrategyError> {
        let state: RandomState = state_from_json(NAME, state)?;
        self.proposed = state.proposed;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::search::toy::{drive, medium_space, TargetReward};

    #[test]
    fn proposes_members_of_the_space_deterministically() {
        let space = medium_space();
        let reward = TargetReward::with_blocks(&space, 1, 2);
        let run = |seed| {
            let mut strategy = RandomSearch::new();
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            drive(&mut strategy, &space, &reward, &mut rng, 0, 100)
        };
        let a = run(3);
        assert!(a.iter().all(|(c, _)| space.encode(c).is_some()));
        assert_eq!(a, run(3));
        assert_ne!(a, run(4));
    }

    #[test]
    fn save_restore_continues_identically() {
        let space = medium_space();
        let reward = TargetReward::with_blocks(&space, 1, 2);
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let mut strategy = RandomSearch::new();
        drive(&mut strategy, &space, &reward, &mut rng, 0, 30);
        let state = serde_json::to_string(&strategy.save().unwrap()).unwrap();
        let mut resumed = RandomSearch::new();
        resumed
            .restore(&serde_json::from_str(&state).unwrap())
            .unwrap();
        assert_eq!(resumed, strategy);
        let mut rng2 = rng.clone();
        let next = drive(&mut strategy, &space, &reward, &mut rng, 30, 20);
        let next_resumed = drive(&mut resumed, &space, &reward, &mut rng2, 30, 20);
        assert_eq!(next, next_resumed);
        assert_eq!(resumed.proposed(), 50);
        assert!(resumed
            .restore(&serde_json::json!({"population": []}))
            .is_err());
    }
}
