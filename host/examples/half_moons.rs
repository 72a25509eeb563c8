//! The seed experiment of RL architecture search, reproduced with ecgnas's controller: an LSTM
//! policy trained with REINFORCE searches small MLPs for the two-moons problem.
//!
//! Setting (as published, 96.04% test accuracy): 1000 points of two interleaved half-moons with
//! Gaussian noise 0.2, split 700 / 200 / 100 into training, validation and test; an MLP of 1 to 5
//! hidden layers, each of 1, 2, 4, 8, 16 or 32 units and ReLU or tanh, and a sigmoid output; the
//! reward is the best validation accuracy of the last 5 epochs, cubed (Zoph & Le's sharpening);
//! the controller is trained with Adam at 0.01 for 500 episodes, the baseline's moving average
//! decaying by 0.9. The children's training is not published: Adam at 0.01, batch 32, 30 epochs.
//!
//! The decision sequence reuses the ECG space's block genes: the number of blocks is the number
//! of hidden layers, a block's channels its units, a block's activation its non-linearity, so the
//! controller (clue embeddings included) is exactly the one `ecgnas search --strategy rl` runs.
//!
//! ```sh
//! cargo run --release -p ecgnas --example half_moons -- [--trials N] [--seed S]
//! ```

use std::collections::HashMap;
use std::f64::consts::PI;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::{AdamW, Linear, Module, Optimizer, ParamsAdamW};
use ecgnas::search::rl::{Controller, Reinforce};
use ecgnas::search::RlConfig;
use ecgnas::space::{Decision, DecisionKind};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

/// Hidden layers: 1 to 5.
pub const MAX_LAYERS: usize = 5;
/// Units per hidden layer.
pub const UNITS: [usize; 6] = [1, 2, 4, 8, 16, 32];
/// The reward is the best validation accuracy over this many final epochs.
pub const LAST_EPOCHS: usize = 5;

/// A hidden layer's non-linearity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Activation {
    /// max(0, x).
    Relu,
    /// tanh(x).
    Tanh,
}

/// One MLP of the space: the units and activation of each hidden layer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mlp {
    /// `(units, activation)` per hidden layer, input side first.
    pub layers: Vec<(usize, Activation)>,
}

impl std::fmt::Display for Mlp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .layers
            .iter()
            .map(|(units, act)| {
                format!(
                    "{units}{}",
                    if *act == Activation::Relu { "r" } else { "t" }
                )
            })
            .collect();
        write!(f, "2-{}-2", parts.join("-"))
    }
}

/// The search's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Children trained (architectures already trained are not trained again).
    pub trials: usize,
    /// Seed of the data, the controller and every child's initialisation.
    pub seed: u64,
    /// Epochs per child.
    pub epochs: usize,
    /// Minibatch size for the children.
    pub batch: usize,
    /// Children's Adam learning rate (AdamW without weight decay).
    pub lr: f64,
    /// Controller settings (baseline decay 0.9 as published).
    pub controller: RlConfig,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            trials: 500,
            seed: 0,
            epochs: 30,
            batch: 32,
            lr: 0.01,
            controller: RlConfig {
                lr: 0.01,
                baseline_decay: 0.9,
                ..RlConfig::default()
            },
        }
    }
}

/// Points `(x, y)` and labels (0: upper moon, 1: lower moon).
pub struct Points {
    /// Row-major `(n, 2)` coordinates.
    pub x: Vec<f32>,
    /// Class per point.
    pub y: Vec<u32>,
}

/// A split as tensors: `(n, 2)` points, `(n,)` labels as 0.0 or 1.0.
struct Split {
    x: Tensor,
    y: Tensor,
}

impl Points {
    fn len(&self) -> usize {
        self.y.len()
    }

    fn tensors(&self, device: &Device) -> Result<Split> {
        let y: Vec<f32> = self.y.iter().map(|&y| y as f32).collect();
        Ok(Split {
            x: Tensor::from_slice(&self.x, (self.len(), 2), device)?,
            y: Tensor::from_slice(&y, self.len(), device)?,
        })
    }
}

/// Two interleaved half-moons (scikit-learn's `make_moons`: `n / 2` points on each arc, evenly
/// spaced in angle, then Gaussian noise of standard deviation `noise` on both coordinates),
/// shuffled.
pub fn make_moons(n: usize, noise: f64, rng: &mut ChaCha8Rng) -> Result<Points> {
    let normal = Normal::new(0.0, noise).context("noise must be finite and non-negative")?;
    let mut points = arcs(n);
    points.shuffle(rng);
    let mut x = Vec::with_capacity(2 * n);
    let mut y = Vec::with_capacity(n);
    for (px, py, label) in points {
        x.push((px + normal.sample(rng)) as f32);
        x.push((py + normal.sample(rng)) as f32);
        y.push(label);
    }
    Ok(Points { x, y })
}

/// The arc positions of `make_moons` without noise, `(x, y, class)`.
fn arcs(n: usize) -> Vec<(f64, f64, u32)> {
    let (n_upper, n_lower) = (n / 2, n - n / 2);
    let arc = |k: usize, count: usize| PI * k as f64 / (count.max(2) - 1) as f64;
    let upper = (0..n_upper).map(|k| (arc(k, n_upper).cos(), arc(k, n_upper).sin(), 0));
    let lower = (0..n_lower).map(|k| (1.0 - arc(k, n_lower).cos(), 0.5 - arc(k, n_lower).sin(), 1));
    upper.chain(lower).collect()
}

/// Accuracy of the Bayes-optimal classifier on `points`: each class is an equal mixture of
/// Gaussians of standard deviation `noise` at its arc positions (how the points were drawn),
/// so the most likely class under that density is the best any model can do. It shows how
/// much of a test split's error no network can remove.
pub fn bayes_accuracy(points: &Points, n: usize, noise: f64) -> f64 {
    let centres = arcs(n);
    let correct = points
        .x
        .chunks(2)
        .zip(&points.y)
        .filter(|(xy, &label)| {
            let mut density = [0.0f64; 2];
            for &(cx, cy, class) in &centres {
                let d2 = (f64::from(xy[0]) - cx).powi(2) + (f64::from(xy[1]) - cy).powi(2);
                density[class as usize] += (-d2 / (2.0 * noise * noise)).exp();
            }
            u32::from(density[1] > density[0]) == label
        })
        .count();
    correct as f64 / points.len().max(1) as f64
}

/// The first `a` points, the next `b`, and the rest.
fn split(points: &Points, a: usize, b: usize) -> (Points, Points, Points) {
    let part = |from: usize, to: usize| Points {
        x: points.x[2 * from..2 * to].to_vec(),
        y: points.y[from..to].to_vec(),
    };
    let n = points.len();
    (part(0, a), part(a, a + b), part(a + b, n))
}

/// The controller's decision sequence: the layer count, then units and activation per layer.
pub fn decisions() -> Vec<Decision> {
    let mut out = vec![Decision {
        kind: DecisionKind::NumBlocks,
        n_choices: MAX_LAYERS,
    }];
    for block in 0..MAX_LAYERS {
        out.push(Decision {
            kind: DecisionKind::Channels { block },
            n_choices: UNITS.len(),
        });
        out.push(Decision {
            kind: DecisionKind::Activation { block },
            n_choices: 2,
        });
    }
    out
}

/// The MLP a choice sequence stands for, and which decisions it used.
pub fn decode(choices: &[usize]) -> Result<(Mlp, Vec<bool>)> {
    let decisions = decisions();
    if choices.len() != decisions.len() {
        bail!(
            "{} choices for {} decisions",
            choices.len(),
            decisions.len()
        );
    }
    let n_layers = choices[0] + 1;
    let mut layers = Vec::with_capacity(n_layers);
    for layer in 0..n_layers {
        let units = *UNITS
            .get(choices[1 + 2 * layer])
            .context("units choice out of range")?;
        let activation = match choices[2 + 2 * layer] {
            0 => Activation::Relu,
            1 => Activation::Tanh,
            other => bail!("activation choice {other} out of range"),
        };
        layers.push((units, activation));
    }
    let active = decisions.iter().map(|d| d.is_active(n_layers)).collect();
    Ok((Mlp { layers }, active))
}

/// A trained child: its network and its per-epoch validation accuracy.
struct Child {
    hidden: Vec<(Linear, Activation)>,
    output: Linear,
}

impl Child {
    /// Layers initialised as PyTorch's `nn.Linear` (uniform in `+-1/sqrt(fan_in)`) from a
    /// seeded generator, so a trial is reproducible (candle's CPU generator cannot be seeded);
    /// returns the network and its variables.
    fn new(mlp: &Mlp, rng: &mut ChaCha8Rng) -> Result<(Child, Vec<Var>)> {
        let mut vars = Vec::new();
        let mut layer = |fan_in: usize, fan_out: usize| -> Result<Linear> {
            let bound = 1.0 / (fan_in as f32).sqrt();
            let mut uniform = |n: usize| -> Vec<f32> {
                (0..n).map(|_| rng.random_range(-bound..bound)).collect()
            };
            let w = Var::from_vec(uniform(fan_in * fan_out), (fan_out, fan_in), &Device::Cpu)?;
            let b = Var::from_vec(uniform(fan_out), fan_out, &Device::Cpu)?;
            let linear = Linear::new(w.as_tensor().clone(), Some(b.as_tensor().clone()));
            vars.extend([w, b]);
            Ok(linear)
        };
        let mut hidden = Vec::new();
        let mut width = 2;
        for &(units, activation) in &mlp.layers {
            hidden.push((layer(width, units)?, activation));
            width = units;
        }
        let output = layer(width, 1)?;
        Ok((Child { hidden, output }, vars))
    }

    /// The logit of class 1 per point, `(n,)`.
    fn logits(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        for (layer, activation) in &self.hidden {
            h = layer.forward(&h)?;
            h = match activation {
                Activation::Relu => h.relu()?,
                Activation::Tanh => h.tanh()?,
            };
        }
        Ok(self.output.forward(&h)?.squeeze(D::Minus1)?)
    }

    /// Share of points on the right side of the sigmoid's 0.5 (logit 0).
    fn accuracy(&self, split: &Split) -> Result<f64> {
        let predicted = self.logits(&split.x)?.ge(0.0)?.to_dtype(DType::F32)?;
        let correct = predicted.eq(&split.y)?.to_dtype(DType::F32)?.sum_all()?;
        Ok(f64::from(correct.to_scalar::<f32>()?) / split.y.dims1()? as f64)
    }
}

/// What one child's training gave.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// Best validation accuracy of the last [`LAST_EPOCHS`] epochs.
    pub validation: f64,
    /// Test accuracy of the weights kept by early stopping (the best validation epoch's).
    pub test: f64,
}

/// The three splits as tensors.
struct Splits {
    train: Split,
    validation: Split,
    test: Split,
}

/// Trains one MLP with Adam on shuffled minibatches, binary cross-entropy on the sigmoid.
fn train(mlp: &Mlp, data: &Splits, config: &Config, seed: u64) -> Result<Outcome> {
    let device = Device::Cpu;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (child, vars) = Child::new(mlp, &mut rng)?;
    let mut optimizer = AdamW::new(
        vars,
        ParamsAdamW {
            lr: config.lr,
            weight_decay: 0.0,
            ..ParamsAdamW::default()
        },
    )?;
    let n = data.train.y.dims1()?;
    let mut order: Vec<u32> = (0..n as u32).collect();
    let mut validation = Vec::with_capacity(config.epochs);
    // Early stopping: the weights kept are those of the best validation epoch (the latest of
    // equals), and the test figure is theirs.
    let mut kept = (f64::NEG_INFINITY, 0.0);
    for _ in 0..config.epochs {
        order.shuffle(&mut rng);
        for batch in order.chunks(config.batch) {
            let index = Tensor::from_slice(batch, batch.len(), &device)?;
            let logits = child.logits(&data.train.x.index_select(&index, 0)?)?;
            let target = data.train.y.index_select(&index, 0)?;
            let loss = candle_nn::loss::binary_cross_entropy_with_logit(&logits, &target)?;
            optimizer.backward_step(&loss)?;
        }
        let accuracy = child.accuracy(&data.validation)?;
        validation.push(accuracy);
        if accuracy >= kept.0 {
            kept = (accuracy, child.accuracy(&data.test)?);
        }
    }
    let last = &validation[validation.len().saturating_sub(LAST_EPOCHS)..];
    Ok(Outcome {
        validation: last.iter().copied().fold(0.0, f64::max),
        test: kept.1,
    })
}

/// One trial of the search.
#[derive(Debug, Clone)]
pub struct Trial {
    /// The architecture.
    pub mlp: Mlp,
    /// Its training outcome.
    pub outcome: Outcome,
}

/// A finished search.
#[derive(Debug)]
pub struct Report {
    /// Every trial in the order the controller proposed it (repeats included).
    pub trials: Vec<Trial>,
    /// The trial of the best validation reward (the earliest among ties).
    pub best: Trial,
    /// Distinct architectures trained.
    pub distinct: usize,
    /// The final choice: of the [`FINALISTS`] best architectures by search reward, the one
    /// whose [`RETRAININGS`] fresh trainings have the best mean validation accuracy.
    pub chosen: Mlp,
    /// The chosen architecture's retrainings, in seed order.
    pub retrained: Vec<Outcome>,
    /// The Bayes-optimal accuracy on the test points ([`bayes_accuracy`]).
    pub bayes_test: f64,
}

/// Architectures retrained at the end.
pub const FINALISTS: usize = 5;
/// Fresh trainings of each finalist: one validation figure of 200 points, maximised over
/// hundreds of architectures, flatters its winner (its test accuracy is lower); the mean of
/// several trainings ranks them by what they do, not by one lucky initialisation.
pub const RETRAININGS: usize = 5;

/// Runs the search: the controller proposes, each new architecture is trained once (a repeat
/// reuses its outcome, as a table would), REINFORCE learns from the cubed reward.
pub fn run(config: &Config) -> Result<Report> {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let points = make_moons(1000, 0.2, &mut rng)?;
    let (train_points, validation_points, test_points) = split(&points, 700, 200);
    let bayes_test = bayes_accuracy(&test_points, 1000, 0.2);
    let device = Device::Cpu;
    let data = Splits {
        train: train_points.tensors(&device)?,
        validation: validation_points.tensors(&device)?,
        test: test_points.tensors(&device)?,
    };
    let controller_config = RlConfig {
        seed: config.seed,
        ..config.controller
    };
    let controller = Controller::new(&decisions(), &controller_config, DType::F32)?;
    let mut learner = Reinforce::new(
        &controller,
        controller_config.lr,
        controller_config.baseline_decay,
        controller_config.entropy_weight,
        controller_config.batch,
    )?;
    let mut trained: HashMap<Mlp, Outcome> = HashMap::new();
    let mut trials = Vec::with_capacity(config.trials);
    for trial in 0..config.trials {
        let choices = controller.sample(&mut rng)?;
        let (mlp, active) = decode(&choices)?;
        let outcome = match trained.get(&mlp) {
            Some(outcome) => *outcome,
            None => {
                let outcome = train(&mlp, &data, config, config.seed ^ (trial as u64 + 1))?;
                trained.insert(mlp.clone(), outcome);
                outcome
            }
        };
        learner.observe(&controller, choices, active, outcome.validation.powi(3))?;
        trials.push(Trial { mlp, outcome });
    }
    let best = trials
        .iter()
        .reduce(|best, t| {
            if t.outcome.validation > best.outcome.validation {
                t
            } else {
                best
            }
        })
        .cloned()
        .context("no trial ran")?;

    let mut ranked: Vec<(&Mlp, &Outcome)> = trained.iter().collect();
    ranked.sort_by(|a, b| {
        b.1.validation
            .total_cmp(&a.1.validation)
            .then_with(|| a.0.to_string().cmp(&b.0.to_string()))
    });
    let mut finalists: Vec<(Mlp, Vec<Outcome>)> = Vec::with_capacity(FINALISTS);
    for (mlp, _) in ranked.into_iter().take(FINALISTS) {
        let outcomes = (0..RETRAININGS as u64)
            .map(|k| {
                train(
                    mlp,
                    &data,
                    config,
                    config.seed.wrapping_mul(1000) + 10_000 + k,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        finalists.push((mlp.clone(), outcomes));
    }
    let mean_validation =
        |o: &[Outcome]| o.iter().map(|o| o.validation).sum::<f64>() / o.len() as f64;
    let (chosen, retrained) = finalists
        .into_iter()
        .reduce(|a, b| {
            if mean_validation(&b.1) > mean_validation(&a.1) {
                b
            } else {
                a
            }
        })
        .context("no architecture to retrain")?;
    Ok(Report {
        distinct: trained.len(),
        trials,
        best,
        chosen,
        retrained,
        bayes_test,
    })
}

/// Mean test accuracy of some trainings.
pub fn mean_test(outcomes: &[Outcome]) -> f64 {
    outcomes.iter().map(|o| o.test).sum::<f64>() / outcomes.len().max(1) as f64
}

/// `--trials N` and `--seed S`.
fn parse_args() -> Result<Config> {
    let mut config = Config::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--trials" => config.trials = value.parse().context("--trials: not a count")?,
            "--seed" => config.seed = value.parse().context("--seed: not an integer")?,
            "--epochs" => config.epochs = value.parse().context("--epochs: not a count")?,
            other => bail!("unknown option {other} (expected --trials, --seed, --epochs)"),
        }
    }
    if config.trials == 0 || config.epochs < LAST_EPOCHS {
        bail!("need at least one trial and {LAST_EPOCHS} epochs");
    }
    Ok(config)
}

#[allow(clippy::print_stdout)]
fn main() -> Result<()> {
    let config = parse_args()?;
    let started = std::time::Instant::now();
    let report = run(&config)?;
    let window = 20.min(report.trials.len());
    let mean = |trials: &[Trial]| {
        trials.iter().map(|t| t.outcome.validation).sum::<f64>() / trials.len() as f64
    };
    println!(
        "{} trials ({} distinct architectures) in {:.1} s, seed {}",
        report.trials.len(),
        report.distinct,
        started.elapsed().as_secs_f64(),
        config.seed
    );
    println!(
        "mean validation accuracy: first {window} trials {:.2}%, last {window} {:.2}%",
        100.0 * mean(&report.trials[..window]),
        100.0 * mean(&report.trials[report.trials.len() - window..])
    );
    println!(
        "best trial {}: validation {:.2}%, test {:.2}%",
        report.best.mlp,
        100.0 * report.best.outcome.validation,
        100.0 * report.best.outcome.test
    );
    let tests: Vec<String> = report
        .retrained
        .iter()
        .map(|o| format!("{:.0}", 100.0 * o.test))
        .collect();
    println!(
        "chosen architecture {} ({RETRAININGS} fresh trainings, best mean validation of the top {FINALISTS}): test accuracy {:.2}% (runs: {}%; published: 96.04%)",
        report.chosen,
        100.0 * mean_test(&report.retrained),
        tests.join(", ")
    );
    println!(
        "Bayes-optimal accuracy on these test points: {:.2}%",
        100.0 * report.bayes_test
    );
    Ok(())
}
