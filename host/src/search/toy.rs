//! Test helpers: small spaces and a cheap deterministic evaluator with a known optimum, so the
//! strategies are tested in milliseconds without training a child (NASLib's tabular habit).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::strategy::{Observation, Strategy};
use crate::space::{
    Activation, Band, Baseline, BlockSpace, Candidate, ConvKind, Decision, DecisionKind,
    Normalisation, Pool, SearchSpace, TaskShape, WindowKind,
};

fn task(windows: Vec<f64>) -> TaskShape {
    TaskShape {
        window: WindowKind::Fixed { choices_s: windows },
        multi_label: true,
        n_classes: 6,
        input_fs_hz: 250.0,
        leads: 1,
    }
}

/// 31 decisions (5 preprocessing, the block count 1..=3, 3 x 8 block decisions, the head);
/// about 1.2e8 candidates of two blocks, so a uniform sampler essentially never hits a given
/// two-block target (probability 1 / 1.2e8 per trial).
pub(crate) fn medium_space() -> SearchSpace {
    let mut space = SearchSpace::default_for(&task(vec![5.0, 10.0]));
    let pre = &mut space.preprocessing;
    pre.band = vec![
        Band::None,
        Band::LowPass {
            cutoff_hz: 40.0,
            taps: 31,
        },
    ];
    let arch = &mut space.architecture;
    arch.n_blocks = vec![1, 2, 3];
    arch.block = BlockSpace {
        kind: vec![ConvKind::Standard, ConvKind::DepthwiseSeparable],
        channels: vec![8, 16, 32],
        kernel: vec![3, 5, 7],
        stride: vec![1, 2],
        dilation: vec![1],
        activation: vec![Activation::Relu, Activation::Relu6],
        skip: vec![false, true],
        pool: vec![Pool::None, Pool::Max2, Pool::Avg2],
    };
    arch.head.hidden = vec![None, Some(16)];
    debug_assert!(space.validate().is_ok());
    space
}

/// 23 decisions (5 preprocessing of which decimation, baseline and normalisation have 3 choices,
/// the block count 1..=2, 2 x 8 block decisions of which kind and channels have 2 choices, the
/// head): 27 x (4 + 16) x 2 = 1080 candidates; a given two-block target has probability
/// 1 / 1728 per uniform draw.
pub(crate) fn small_space() -> SearchSpace {
    let mut space = SearchSpace::default_for(&task(vec![10.0]));
    let pre = &mut space.preprocessing;
    pre.band = vec![Band::None];
    pre.baseline = vec![
        Baseline::None,
        Baseline::MovingAverage { window_s: 0.2 },
        Baseline::MovingAverage { window_s: 0.6 },
    ];
    pre.normalisation = vec![
        Normalisation::None,
        Normalisation::ZScore,
        Normalisation::MaxAbs,
    ];
    let arch = &mut space.architecture;
    arch.n_blocks = vec![1, 2];
    arch.block = BlockSpace {
        kind: vec![ConvKind::Standard, ConvKind::DepthwiseSeparable],
        channels: vec![8, 16],
        kernel: vec![5],
        stride: vec![1],
        dilation: vec![1],
        activation: vec![Activation::Relu],
        skip: vec![false],
        pool: vec![Pool::None],
    };
    arch.head.hidden = vec![None, Some(16)];
    debug_assert!(space.validate().is_ok());
    space
}

/// Reward = the fraction of decisions on which a candidate agrees with a hidden target, over
/// the decisions active in the candidate or in the target (a decision active in only one of
/// them counts as a miss). 1.0 exactly at the target; additive, so each decision can be
/// learnt on its own.
pub(crate) struct TargetReward {
    decisions: Vec<Decision>,
    target: Vec<usize>,
    target_blocks: usize,
}

impl TargetReward {
    /// A target drawn from `seed`, with `n_blocks` blocks (which must be allowed).
    pub(crate) fn with_blocks(space: &SearchSpace, seed: u64, n_blocks: usize) -> TargetReward {
        let decisions = space.decisions();
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x007a_26e7);
        let mut choices: Vec<usize> = decisions
            .iter()
            .map(|d| rng.random_range(0..d.n_choices))
            .collect();
        for (choice, decision) in choices.iter_mut().zip(&decisions) {
            if decision.kind == DecisionKind::NumBlocks {
                *choice = space
                    .architecture
                    .n_blocks
                    .iter()
                    .position(|&n| n == n_blocks)
                    .unwrap_or(0);
            }
        }
        let target = space.decode(&choices).unwrap();
        TargetReward::new(space, &target)
    }

    /// The reward whose optimum is `target`.
    pub(crate) fn new(space: &SearchSpace, target: &Candidate) -> TargetReward {
        TargetReward {
            decisions: space.decisions(),
            target: space.encode(target).unwrap_or_default(),
            target_blocks: target.architecture.blocks.len(),
        }
    }

    /// The target's choice sequence (0 for its inactive decisions).
    pub(crate) fn target(&self) -> &[usize] {
        &self.target
    }

    /// Whether decision `i` is active in the target.
    pub(crate) fn target_active(&self, i: usize) -> bool {
        self.decisions[i].is_active(self.target_blocks)
    }

    /// The reward of a candidate of the space.
    pub(crate) fn reward(&self, space: &SearchSpace, candidate: &Candidate) -> f64 {
        let choices = space.encode(candidate).unwrap_or_default();
        let blocks = candidate.architecture.blocks.len();
        let (mut hits, mut counted) = (0usize, 0usize);
        for (i, decision) in self.decisions.iter().enumerate() {
            let (in_candidate, in_target) = (
                decision.is_active(blocks),
                decision.is_active(self.target_blocks),
            );
            if in_candidate || in_target {
                counted += 1;
                if in_candidate && in_target && choices.get(i) == Some(&self.target[i]) {
                    hits += 1;
                }
            }
        }
        hits as f64 / counted.max(1) as f64
    }
}

/// Runs `trials` propose/observe rounds with trial ids from `first_trial`, returning every
/// proposal with its reward.
pub(crate) fn drive(
    strategy: &mut dyn Strategy,
    space: &SearchSpace,
    reward: &TargetReward,
    rng: &mut ChaCha8Rng,
    first_trial: u64,
    trials: u64,
) -> Vec<(Candidate, f64)> {
    (first_trial..first_trial + trials)
        .map(|trial_id| {
            let candidate = strategy
                .propose(space, rng)
                .unwrap_or_else(|e| panic!("propose: {e}"));
            let value = reward.reward(space, &candidate);
            strategy
                .observe(
                    space,
                    &Observation {
                        trial_id,
                        candidate: candidate.clone(),
                        reward: value,
                        feasible: true,
                    },
                )
                .unwrap_or_else(|e| panic!("observe: {e}"));
            (candidate, value)
        })
        .collect()
}

#[test]
fn the_toy_reward_peaks_at_the_target_only() {
    let space = medium_space();
    let reward = TargetReward::with_blocks(&space, 5, 2);
    let target = space
        .decode(reward.target())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(target.architecture.blocks.len(), 2);
    assert_eq!(reward.reward(&space, &target), 1.0);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for _ in 0..2000 {
        let c = space.sample(&mut rng).unwrap_or_else(|e| panic!("{e}"));
        let r = reward.reward(&space, &c);
        assert!((0.0..1.0).contains(&r), "{r}");
    }
    // A one-block candidate equal to the target's first block misses the 8 decisions of block 2.
    let mut one = target.clone();
    one.architecture.blocks.truncate(1);
    let active = (0..space.decisions().len())
        .filter(|&i| reward.target_active(i))
        .count();
    assert_eq!(active, 5 + 1 + 16 + 1);
    let expected = (active - 1 - 8) as f64 / active as f64;
    assert!((reward.reward(&space, &one) - expected).abs() < 1e-12);
    assert!(
        (space.size() - 108.0 * 2.0 * (432.0 + 432.0f64.powi(2) + 432.0f64.powi(3))).abs() < 1.0
    );
    assert_eq!(small_space().size(), 1080.0);
}
