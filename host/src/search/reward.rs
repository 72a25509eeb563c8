//! The reward: a candidate's quality, shaped, times a latency term; infeasible candidates get
//! the lowest reward.
//!
//! Shaping of the quality `q` (in [0, 1]): identity; power `q^p` (Zoph & Le use the cube of the
//! accuracy); sigmoid `C / (1 + exp(-A q + B))`, whose threshold `B / A` separates good from bad
//! candidates. The latency term is MnasNet's `(LAT / T)^w`: `w = soft_exponent` (-0.07: twice
//! the latency costs about 5%) below the target and `hard_exponent` (-1) beyond it. Flash and
//! SRAM are hard limits: a candidate that does not fit gets [`INFEASIBLE_REWARD`].

use serde::{Deserialize, Serialize};

/// The reward of a candidate that does not fit the device (or failed to train).
pub const INFEASIBLE_REWARD: f64 = 0.0;

/// How the quality is shaped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Shaping {
    /// `q`.
    Identity,
    /// `q^exponent`.
    Power {
        /// The exponent (3 for Zoph & Le's accuracy cubed).
        exponent: f64,
    },
    /// `c / (1 + exp(-a q + b))`.
    Sigmoid {
        /// Steepness.
        a: f64,
        /// Offset: the threshold is `b / a`.
        b: f64,
        /// Scale.
        c: f64,
    },
}

/// The whole reward.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewardConfig {
    /// Quality shaping.
    pub shaping: Shaping,
    /// Target latency per inference, ms (the profile's budget by default).
    pub target_latency_ms: f64,
    /// Exponent while the latency is within the target (MnasNet soft constraint: -0.07).
    pub soft_exponent: f64,
    /// Exponent beyond the target (-1: a hard constraint).
    pub hard_exponent: f64,
}

impl RewardConfig {
    /// MnasNet's soft/hard latency term around `target_latency_ms`, identity shaping.
    pub fn mnasnet(target_latency_ms: f64) -> RewardConfig {
        RewardConfig {
            shaping: Shaping::Identity,
            target_latency_ms,
            soft_exponent: -0.07,
            hard_exponent: -1.0,
        }
    }

    /// The reward of a feasible candidate of quality `quality` and latency `latency_ms`.
    pub fn reward(&self, quality: f64, latency_ms: f64) -> f64 {
        let q = quality.clamp(0.0, 1.0);
        let shaped = match self.shaping {
            Shaping::Identity => q,
            Shaping::Power { exponent } => q.powf(exponent),
            Shaping::Sigmoid { a, b, c } => c / (1.0 + (-a * q + b).exp()),
        };
        let ratio = (latency_ms / self.target_latency_ms).max(1e-9);
        let w = if ratio <= 1.0 {
            self.soft_exponent
        } else {
            self.hard_exponent
        };
        let r = shaped * ratio.powf(w);
        if r.is_finite() {
            r
        } else {
            INFEASIBLE_REWARD
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_term_follows_mnasnet() {
        let r = RewardConfig::mnasnet(10.0);
        // At the target the term is 1; at half the target 2^0.07 (a small bonus).
        assert!((r.reward(0.8, 10.0) - 0.8).abs() < 1e-12);
        assert!((r.reward(0.8, 5.0) - 0.8 * 2f64.powf(0.07)).abs() < 1e-12);
        // Beyond the target the hard exponent: twice the latency halves the reward.
        assert!((r.reward(0.8, 20.0) - 0.4).abs() < 1e-12);
    }

    #[test]
    fn shapings() {
        let mut r = RewardConfig::mnasnet(1.0);
        r.shaping = Shaping::Power { exponent: 3.0 };
        assert!((r.reward(0.5, 1.0) - 0.125).abs() < 1e-12);
        r.shaping = Shaping::Sigmoid {
            a: 10.0,
            b: 5.0,
            c: 1.0,
        };
        assert!(
            (r.reward(0.5, 1.0) - 0.5).abs() < 1e-12,
            "threshold b/a gives c/2"
        );
        assert!(r.reward(0.9, 1.0) > 0.95);
    }
}
