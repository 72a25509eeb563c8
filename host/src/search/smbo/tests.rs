use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::search::evolution::{EvolutionConfig, RegularizedEvolution};
use crate::search::random::RandomSearch;
use crate::search::toy::{drive, medium_space, small_space, TargetReward};

/// Trials until a strategy first proposes the target (reward 1.0), `cap` when it never does.
fn trials_to_target(
    strategy: &mut dyn Strategy,
    space: &SearchSpace,
    reward: &TargetReward,
    seed: u64,
    cap: u64,
) -> u64 {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for trial in 0..cap {
        let found = drive(strategy, space, reward, &mut rng, trial, 1);
        if found.first().is_some_and(|(_, r)| *r >= 1.0) {
            return trial + 1;
        }
    }
    cap
}

fn smbo(seed: u64) -> Smbo {
    Smbo::new(SmboConfig {
        seed,
        ..SmboConfig::default()
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn finds_the_target_in_fewer_trials_than_random() {
    // A two-block target of the 1080-candidate space: a uniform draw hits it with probability
    // 1 / 1728, so random search needs about 1700 trials on average.
    let space = small_space();
    let cap = 3000;
    let mut figures = Vec::new();
    for seed in 0..5u64 {
        let reward = TargetReward::with_blocks(&space, seed, 2);
        let s = trials_to_target(&mut smbo(seed), &space, &reward, seed, cap);
        let r = trials_to_target(&mut RandomSearch::new(), &space, &reward, seed, cap);
        figures.push((seed, s, r));
    }
    eprintln!("trials to the target (seed, smbo, random): {figures:?}");
    let smbo_mean = figures.iter().map(|f| f.1 as f64).sum::<f64>() / 5.0;
    let random_mean = figures.iter().map(|f| f.2 as f64).sum::<f64>() / 5.0;
    let smbo_wins = figures.iter().filter(|f| f.1 < f.2).count();
    assert!(smbo_wins >= 4, "{figures:?}");
    assert!(smbo_mean * 3.0 < random_mean, "{figures:?}");
    // Every seed found within a budget far below random's expectation.
    assert!(figures.iter().all(|f| f.1 <= 300), "{figures:?}");
}

#[test]
fn is_deterministic_for_a_seed_and_restores_exactly() {
    let space = medium_space();
    let reward = TargetReward::with_blocks(&space, 2, 2);
    let run = |seed| {
        let mut strategy = smbo(seed);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        drive(&mut strategy, &space, &reward, &mut rng, 0, 25)
    };
    let a = run(7);
    assert!(a.iter().all(|(c, _)| space.encode(c).is_some()));
    assert_eq!(a, run(7));
    assert_ne!(a, run(8));

    let mut strategy = smbo(1);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    drive(&mut strategy, &space, &reward, &mut rng, 0, 15);
    let state = serde_json::to_string(&strategy.save().unwrap()).unwrap();
    let mut resumed = smbo(1);
    resumed
        .restore(&serde_json::from_str(&state).unwrap())
        .unwrap();
    assert_eq!(resumed.observed(), 15);
    let mut rng2 = rng.clone();
    let next = drive(&mut strategy, &space, &reward, &mut rng, 15, 5);
    let next_resumed = drive(&mut resumed, &space, &reward, &mut rng2, 15, 5);
    assert_eq!(next, next_resumed);
    // Other settings, or another strategy's state, are refused.
    assert!(smbo(2)
        .restore(&serde_json::from_str(&state).unwrap())
        .is_err());
    assert!(smbo(1)
        .restore(&serde_json::json!({"proposed": 3}))
        .is_err());
}

#[test]
fn continues_from_another_strategys_history() {
    let space = small_space();
    let reward = TargetReward::with_blocks(&space, 3, 2);
    let mut evolution =
        RegularizedEvolution::new(EvolutionConfig::default()).unwrap_or_else(|e| panic!("{e}"));
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let history = drive(&mut evolution, &space, &reward, &mut rng, 0, 40);
    let best_before = history.iter().map(|h| h.1).fold(0.0, f64::max);

    // What a resumed search does: replay every finished trial into the new strategy.
    let mut strategy = smbo(3);
    for (trial_id, (candidate, value)) in history.iter().enumerate() {
        strategy
            .observe(
                &space,
                &Observation {
                    trial_id: trial_id as u64,
                    candidate: candidate.clone(),
                    reward: *value,
                    feasible: true,
                },
            )
            .unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(strategy.observed(), 40);
    let next = drive(&mut strategy, &space, &reward, &mut rng, 40, 60);
    // It knows the history: nothing evaluated before is proposed again, and it improves on it.
    let before: HashSet<String> = history.iter().map(|h| h.0.id()).collect();
    assert!(next.iter().all(|(c, _)| !before.contains(&c.id())));
    let best_after = next.iter().map(|n| n.1).fold(0.0, f64::max);
    assert!(best_after > best_before, "{best_before} -> {best_after}");
    assert!(best_after >= 1.0, "{best_after}");
}

#[test]
fn never_proposes_what_the_hard_limit_rejects() {
    let space = medium_space();
    // The target itself is beyond the limit (two blocks); the limit allows one block of at
    // most 16 channels.
    let reward = TargetReward::with_blocks(&space, 4, 2);
    let allowed =
        |c: &Candidate| c.architecture.blocks.len() == 1 && c.architecture.blocks[0].channels <= 16;
    let mut strategy = smbo(4).with_feasibility(Box::new(allowed));
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let proposals = drive(&mut strategy, &space, &reward, &mut rng, 0, 40);
    assert!(proposals.iter().all(|(c, _)| allowed(c)));
    // Without the limit, the surrogate goes after the two-block target.
    let mut free = smbo(4);
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let proposals = drive(&mut free, &space, &reward, &mut rng, 0, 40);
    assert!(proposals.iter().any(|(c, _)| !allowed(c)));
}

#[test]
fn refuses_empty_settings() {
    assert!(Smbo::new(SmboConfig {
        trees: 0,
        ..SmboConfig::default()
    })
    .is_err());
    assert!(Smbo::new(SmboConfig {
        samples: 0,
        ..SmboConfig::default()
    })
    .is_err());
}

#[test]
fn expected_improvement_prefers_high_mean_and_high_spread() {
    assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
    assert!((normal_cdf(1.96) - 0.975).abs() < 1e-3);
    assert!(normal_cdf(-8.0) < 1e-10);
    let best = 0.5;
    assert!(expected_improvement(0.6, 0.1, best) > expected_improvement(0.4, 0.1, best));
    assert!(expected_improvement(0.4, 0.3, best) > expected_improvement(0.4, 0.1, best));
    assert_eq!(expected_improvement(0.4, 0.0, best), 0.0);
}
