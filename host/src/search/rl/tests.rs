//! Tests of the RL controller: membership, gradients, learning on a known reward, resuming.

use std::time::Instant;

use candle_core::{DType, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::search::random::RandomSearch;
use crate::search::toy::{drive, medium_space, small_space, TargetReward};

fn rl(space: &SearchSpace, config: RlConfig) -> RlController {
    RlController::new(space, config).unwrap()
}

#[test]
fn proposes_members_of_the_space_deterministically() {
    let space = medium_space();
    let reward = TargetReward::with_blocks(&space, 1, 2);
    let run = |seed| {
        let mut strategy = rl(&space, RlConfig::default());
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        drive(&mut strategy, &space, &reward, &mut rng, 0, 40)
    };
    let a = run(1);
    assert!(a.iter().all(|(c, _)| space.encode(c).is_some()));
    assert_eq!(a, run(1));
    assert_ne!(a, run(2));
    // The initial policy is near uniform (weights within +-0.1) on the default space too.
    let default = SearchSpace::default_for(&crate::space::TaskShape {
        window: crate::space::WindowKind::Beat,
        multi_label: false,
        n_classes: 4,
        input_fs_hz: 360.0,
        leads: 1,
    });
    let strategy = rl(&default, RlConfig::default());
    for dist in strategy.probabilities(&default).unwrap() {
        let uniform = 1.0 / dist.len() as f64;
        assert!(dist.iter().all(|&p| p > 0.6 * uniform), "{dist:?}");
    }
}

/// The host arithmetic that samples and the candle graph that learns are the same policy,
/// with and without the clip and the temperature, in f32 and f64.
#[test]
fn sampler_and_loss_graph_agree() {
    let space = medium_space();
    for (dtype, clip, temperature, tol) in [
        (DType::F32, Some(2.5), 1.0, 1e-5),
        (DType::F64, None, 0.6, 1e-12),
    ] {
        let config = RlConfig {
            logit_clip: clip,
            temperature,
            ..RlConfig::default()
        };
        let strategy = RlController::with_dtype(&space, config, dtype).unwrap();
        let controller = strategy.controller();
        for (_, var) in controller.vars() {
            var.set(&var.as_tensor().affine(10.0, 0.0).unwrap())
                .unwrap();
        }
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        for _ in 0..3 {
            let choices = controller.sample(&mut rng).unwrap();
            let host = controller.probabilities_along(&choices).unwrap();
            let graph = controller.probabilities_along_graph(&choices).unwrap();
            let mut worst = 0.0f64;
            for (h, g) in host.iter().zip(&graph) {
                assert_eq!(h.len(), g.len());
                for (a, b) in h.iter().zip(g) {
                    worst = worst.max((a - b).abs());
                }
            }
            assert!(worst < tol, "{dtype:?}: {worst}");
            // Scaled weights make the policy far from uniform: a real comparison.
            assert!(host.iter().flatten().any(|&p| p > 0.9));
        }
    }
}

/// The loss's gradient against central finite differences, in f64, for every parameter
/// element of a tiny controller, with the logit clip, a temperature and a large entropy weight
/// so that every term of the loss is exercised. The heads of decisions inactive in every
/// episode get exactly zero gradient.
#[test]
fn loss_gradient_matches_finite_differences() {
    let space = small_space();
    let config = RlConfig {
        hidden: 3,
        embedding: 2,
        temperature: 0.7,
        logit_clip: Some(2.5),
        entropy_weight: 0.3,
        seed: 5,
        ..RlConfig::default()
    };
    let strategy = RlController::with_dtype(&space, config, DType::F64).unwrap();
    let controller = strategy.controller();
    // Larger weights than the initialisation so that the tanh clip and the gates bend.
    for (_, var) in controller.vars() {
        var.set(&var.as_tensor().affine(8.0, 0.05).unwrap())
            .unwrap();
    }
    let decisions = space.decisions();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut episodes = Vec::new();
    for advantage in [0.7, -1.3, 0.4] {
        // One-block candidates: the second block's 8 decisions are inactive everywhere.
        let mut choices = controller.sample(&mut rng).unwrap();
        choices[5] = 0;
        let n_blocks = space.decode(&choices).unwrap().architecture.blocks.len();
        assert_eq!(n_blocks, 1);
        episodes.push(Episode {
            active: decisions.iter().map(|d| d.is_active(n_blocks)).collect(),
            choices,
            advantage,
        });
    }
    let loss_of = |c: &Controller| {
        c.loss(&episodes, config.entropy_weight)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
    };
    let loss = controller.loss(&episodes, config.entropy_weight).unwrap();
    let grads = loss.backward().unwrap();
    let eps = 1e-6;
    let mut worst = 0.0f64;
    let mut checked = 0;
    for (name, var) in controller.vars() {
        let analytic: Vec<f64> = grads
            .get(var.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let original = var.as_tensor().copy().unwrap();
        let flat: Vec<f64> = original.flatten_all().unwrap().to_vec1().unwrap();
        for i in 0..flat.len() {
            let at = |delta: f64| {
                let mut x = flat.clone();
                x[i] += delta;
                var.set(&Tensor::from_vec(x, original.shape(), &candle_core::Device::Cpu).unwrap())
                    .unwrap();
                loss_of(controller)
            };
            let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
            let error =
                (numeric - analytic[i]).abs() / (1e-4 + numeric.abs().max(analytic[i].abs()));
            assert!(
                error < 1e-5,
                "{name}[{i}]: analytic {} numeric {numeric}",
                analytic[i]
            );
            worst = worst.max(error);
            checked += 1;
        }
        var.set(&original).unwrap();
    }
    assert_eq!(checked, controller.n_params());
    // Heads of the inactive second block: no gradient at all.
    let head_grad = grads
        .get(controller.vars().nth(5).unwrap().1.as_tensor())
        .unwrap()
        .to_vec2::<f64>()
        .unwrap();
    let mut column = 0;
    for d in &decisions {
        let inactive = !d.is_active(1);
        for _ in 0..d.n_choices {
            let g: f64 = head_grad.iter().map(|row| row[column].abs()).sum();
            // A one-choice head has log-probability 0 whatever its weights.
            if inactive || d.n_choices == 1 {
                assert_eq!(g, 0.0, "{:?}", d.kind);
            } else {
                assert!(g > 0.0, "{:?}", d.kind);
            }
            column += 1;
        }
    }
    assert!(worst < 1e-5);
}

/// A fixed positive advantage on one sequence: repeated updates raise its log-probability
/// (and a negative one lowers it).
#[test]
fn updates_move_the_policy_towards_rewarded_sequences() {
    let space = small_space();
    let decisions = space.decisions();
    for sign in [1.0, -1.0] {
        let config = RlConfig {
            batch: 1,
            lr: 0.01,
            ..RlConfig::default()
        };
        let mut learner_rng = ChaCha8Rng::seed_from_u64(0);
        let strategy = rl(&space, config);
        let controller = strategy.controller();
        let choices = controller.sample(&mut learner_rng).unwrap();
        let blocks = space.decode(&choices).unwrap().architecture.blocks.len();
        let active: Vec<bool> = decisions.iter().map(|d| d.is_active(blocks)).collect();
        let log_p = |c: &Controller| -> f64 {
            let dists = c.probabilities_along(&choices).unwrap();
            (0..choices.len())
                .filter(|&t| active[t])
                .map(|t| dists[t][choices[t]].ln())
                .sum()
        };
        let before = log_p(controller);
        let mut learner = Reinforce::new(controller, config.lr, 0.9, 0.0, 1).unwrap();
        // The first observation sets the baseline at 0; then rewards of +-1 give advantages
        // of +-1, +-0.9, ...
        learner
            .observe(controller, choices.clone(), active.clone(), 0.0)
            .unwrap();
        for _ in 0..20 {
            learner
                .observe(controller, choices.clone(), active.clone(), sign)
                .unwrap();
        }
        let after = log_p(controller);
        assert_eq!(learner.state.updates, 21);
        assert!(
            sign * (after - before) > 1.0,
            "sign {sign}: log-probability {before:.3} -> {after:.3}"
        );
    }
}

/// The issue's "done when": on the medium space (31 decisions, 23 of them active at the
/// two-block target, about 1.2e8 two-block candidates) with the reward "fraction of active
/// decisions equal to a hidden target" (1.0 only at the target), the controller, after
/// `TRIALS` trials (`TRIALS / 5` updates), puts at least 0.8 on the target's choice at every
/// active decision, its mean reward over the last 50 proposals is far above random search's at
/// the same budget, and it proposes the target itself, in every one of the seeds. Random search
/// hits the target with probability 1 / 1.2e8 per trial, so it never finds it in this budget
/// (it is not expected to: that is the point; its best reward is reported for comparison).
#[test]
fn learns_a_known_reward_far_faster_than_random_search() {
    const TRIALS: u64 = 500;
    let space = medium_space();
    let config = RlConfig::default();
    let seeds = [0u64, 1, 2];
    let start = Instant::now();
    let mut report = Vec::new();
    for &seed in &seeds {
        let reward = TargetReward::with_blocks(&space, seed, 2);
        let mut strategy = rl(&space, RlConfig { seed, ..config });
        let mut rng = ChaCha8Rng::seed_from_u64(1000 + seed);
        let history = drive(&mut strategy, &space, &reward, &mut rng, 0, TRIALS);
        let mut random_rng = ChaCha8Rng::seed_from_u64(2000 + seed);
        let random = drive(
            &mut RandomSearch::new(),
            &space,
            &reward,
            &mut random_rng,
            0,
            TRIALS,
        );
        let mean_last =
            |h: &[(Candidate, f64)]| h[h.len() - 50..].iter().map(|(_, r)| r).sum::<f64>() / 50.0;
        let first_hit = history.iter().position(|(_, r)| *r == 1.0);
        let random_best = random.iter().map(|(_, r)| *r).fold(0.0, f64::max);
        let dists = strategy
            .probabilities_along(&space, reward.target())
            .unwrap();
        let min_target_p = (0..dists.len())
            .filter(|&t| reward.target_active(t))
            .map(|t| dists[t][reward.target()[t]])
            .fold(1.0, f64::min);
        let greedy = strategy.most_likely(&space).unwrap();
        report.push(format!(
            "seed {seed}: min target p {min_target_p:.3}, RL last-50 mean {:.3}, random last-50 \
             mean {:.3}, random best {random_best:.3}, RL first hit at trial {first_hit:?}, \
             greedy = target: {}",
            mean_last(&history),
            mean_last(&random),
            reward.reward(&space, &greedy) == 1.0,
        ));
        eprintln!("{}", report.last().unwrap());
        assert!(min_target_p >= 0.8, "{}", report.join("\n"));
        assert!(
            mean_last(&history) > mean_last(&random) + 0.3,
            "{}",
            report.join("\n")
        );
        assert!(first_hit.is_some(), "{}", report.join("\n"));
        assert!(random_best < 1.0);
    }
    eprintln!("{} s", start.elapsed().as_secs_f64());
}

/// On the small space (1080 candidates; the two-block target has probability 1 / 1728 per
/// uniform draw), the controller proposes the target for the first time after fewer trials
/// than random search, on average over five targets and seeds.
#[test]
fn finds_the_target_sooner_than_random_search() {
    let space = small_space();
    let config = RlConfig::default();
    let seeds = 0..5u64;
    let (mut rl_trials, mut random_trials) = (0.0, 0.0);
    for seed in seeds.clone() {
        let reward = TargetReward::with_blocks(&space, 10 + seed, 2);
        let first_hit = |strategy: &mut dyn Strategy, rng_seed: u64, cap: u64| {
            let mut rng = ChaCha8Rng::seed_from_u64(rng_seed);
            let hit = (0..cap)
                .find(|&trial| drive(strategy, &space, &reward, &mut rng, trial, 1)[0].1 == 1.0);
            hit.map_or(cap, |t| t + 1) as f64
        };
        let rl_hit = first_hit(&mut rl(&space, RlConfig { seed, ..config }), seed, 2000);
        let random_hit = first_hit(&mut RandomSearch::new(), seed, 50_000);
        eprintln!("seed {seed}: RL first hit {rl_hit}, random {random_hit}");
        rl_trials += rl_hit / 5.0;
        random_trials += random_hit / 5.0;
    }
    eprintln!("mean trials to the target: RL {rl_trials}, random {random_trials}");
    assert!(
        rl_trials < 0.5 * random_trials,
        "RL {rl_trials}, random {random_trials}"
    );
}

#[test]
fn save_restore_continues_identically() {
    let space = medium_space();
    let reward = TargetReward::with_blocks(&space, 4, 2);
    let config = RlConfig::default();
    let mut strategy = rl(&space, config);
    let mut rng = ChaCha8Rng::seed_from_u64(77);
    // 23 trials: 4 updates, 3 episodes waiting in the batch.
    drive(&mut strategy, &space, &reward, &mut rng, 0, 23);
    // One proposal not yet observed: it must survive the checkpoint too.
    let outstanding = strategy.propose(&space, &mut rng).unwrap();
    let text = serde_json::to_string(&strategy.save().unwrap()).unwrap();
    let mut resumed = rl(&space, config);
    resumed
        .restore(&serde_json::from_str(&text).unwrap())
        .unwrap();
    assert_eq!(resumed.updates(), 4);
    assert_eq!(resumed.baseline(), strategy.baseline());
    let mut rng2 = rng.clone();
    for s in [&mut strategy, &mut resumed] {
        let observation = Observation {
            trial_id: 23,
            candidate: outstanding.clone(),
            reward: reward.reward(&space, &outstanding),
            feasible: true,
        };
        s.observe(&space, &observation).unwrap();
    }
    // Across several updates, with Adam's moments restored too.
    let next = drive(&mut strategy, &space, &reward, &mut rng, 24, 26);
    let next_resumed = drive(&mut resumed, &space, &reward, &mut rng2, 24, 26);
    assert_eq!(next, next_resumed);
    assert_eq!(strategy.save().unwrap(), resumed.save().unwrap());
    // Other settings, or another space, are refused.
    let other = RlConfig {
        hidden: 32,
        ..config
    };
    let state: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(matches!(
        rl(&space, other).restore(&state),
        Err(StrategyError::BadState { .. })
    ));
    assert!(matches!(
        rl(&small_space(), config).restore(&state),
        Err(StrategyError::BadState { .. })
    ));
}

#[test]
fn foreign_observations_and_bad_rewards() {
    let space = medium_space();
    let mut strategy = rl(&space, RlConfig::default());
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let foreign = space.sample(&mut rng).unwrap();
    let mut observation = Observation {
        trial_id: 0,
        candidate: foreign,
        reward: 0.5,
        feasible: true,
    };
    // Not proposed by the controller: learnt from its encoded sequence.
    strategy.observe(&space, &observation).unwrap();
    assert_eq!(strategy.baseline(), Some(0.5));
    observation.reward = f64::NAN;
    assert!(strategy.observe(&space, &observation).is_err());
    // Another space than the controller's.
    assert!(strategy.propose(&small_space(), &mut rng).is_err());
    assert!(RlController::new(
        &space,
        RlConfig {
            baseline_decay: 1.0,
            ..RlConfig::default()
        }
    )
    .is_err());
    // The settings' JSON form, defaults filled in.
    let parsed: RlConfig = serde_json::from_str(r#"{"lr": 0.01, "logit_clip": null}"#).unwrap();
    assert_eq!(parsed.hidden, 64);
    assert_eq!(parsed.logit_clip, None);
}

/// The sweep behind [`RlConfig::default`]'s doc: `LR`, `ENTROPY`, `CLIP` (0 for none),
/// `TRIALS`, `SEED0` and `SEEDS` from the environment, one line per seed and a summary. Run
/// with `cargo test -p ecgnas --release --lib settings_sweep -- --ignored --nocapture`.
#[test]
#[ignore]
fn settings_sweep() {
    let var =
        |name: &str, default: f64| std::env::var(name).map_or(default, |s| s.parse().unwrap());
    let defaults = RlConfig::default();
    let clip = var("CLIP", defaults.logit_clip.unwrap_or(0.0));
    let config = RlConfig {
        lr: var("LR", defaults.lr),
        entropy_weight: var("ENTROPY", defaults.entropy_weight),
        logit_clip: (clip > 0.0).then_some(clip),
        ..defaults
    };
    let trials = var("TRIALS", 500.0) as u64;
    let seed0 = var("SEED0", 20.0) as u64;
    let seeds = var("SEEDS", 20.0) as u64;
    let space = medium_space();
    let (mut below, mut missed) = (0, 0);
    for seed in seed0..seed0 + seeds {
        let reward = TargetReward::with_blocks(&space, seed, 2);
        let mut strategy = rl(&space, RlConfig { seed, ..config });
        let mut rng = ChaCha8Rng::seed_from_u64(1000 + seed);
        let history = drive(&mut strategy, &space, &reward, &mut rng, 0, trials);
        let dists = strategy
            .probabilities_along(&space, reward.target())
            .unwrap();
        let min_p = (0..dists.len())
            .filter(|&t| reward.target_active(t))
            .map(|t| dists[t][reward.target()[t]])
            .fold(1.0, f64::min);
        let first_hit = history.iter().position(|(_, r)| *r == 1.0);
        let last: f64 = history[history.len() - 50..]
            .iter()
            .map(|(_, r)| r)
            .sum::<f64>()
            / 50.0;
        eprintln!(
            "seed {seed}: min target p {min_p:.3}, last-50 mean {last:.3}, first hit {first_hit:?}"
        );
        below += usize::from(min_p < 0.8);
        missed += usize::from(first_hit.is_none());
    }
    eprintln!("{config:?}: {below} of {seeds} below 0.8, {missed} never hit the target");
}
