//! `ecgnas search`: the main job. Finds the networks that classify best within a device's
//! budget, writes the trial store, a report and the best candidate's weights.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use serde::Serialize;

use super::data::data_source;
use super::plot::{scatter_svg, Mark, Series};
use super::{print_stdout, Outcome};
use crate::cost::Profile;
use crate::data::tasks::{self, LeadSet, LoadOptions, Split, TaskKind};
use crate::export::{varmap_tensors, ExportInput};
use crate::pipeline::AdcDataset;
use crate::search::darts::{
    collapse, discretise, BlockProbabilities, CostTables, DartsConfig, DartsStrategy, Discrete,
    Relaxation,
};
use crate::search::distributed::{run_coordinator, CoordinatorEvent, CoordinatorOptions};
use crate::search::enas::{train_supernet, EnasConfig, EnasStrategy, Ranked};
use crate::search::{
    best_trial, pareto_front, run_search, RewardConfig, RlConfig, RlController, SearchConfig,
    Strategy,
};
use crate::space::{
    Candidate, Pool, SearchSpace, TaskShape, WindowKind, WindowSpace, RR_SIDE_INPUTS,
};
use crate::store::{PostgresStore, RunInfo, StoreAddress, TrialRecord, TrialStore, WorkQueue};
use crate::train::darts::{RelaxedNet, RelaxedTrainer};
use crate::train::supernet::SupernetEvaluator;
use crate::train::{ChildEvaluator, TrainConfig, TrainedChild};

/// Search strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum StrategyName {
    /// LSTM controller trained with REINFORCE.
    Rl,
    /// The RL controller on a weight-shared supernet (ENAS), then the best retrained.
    Enas,
    /// Uniform random sampling (baseline).
    Random,
    /// Regularised evolution (baseline).
    Evolution,
    /// A random-forest surrogate with expected improvement (SMBO).
    Smbo,
    /// Differentiable, hardware-aware search (DARTS with the expected latency in the loss).
    Darts,
}

impl StrategyName {
    fn as_str(self) -> &'static str {
        match self {
            StrategyName::Rl => "rl",
            StrategyName::Enas => "enas",
            StrategyName::Random => "random",
            StrategyName::Evolution => "evolution",
            StrategyName::Smbo => "smbo",
            StrategyName::Darts => "darts",
        }
    }
}

/// Who trains the children.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum Workers {
    /// This process.
    Local,
    /// `ecgnas worker` processes, through the store's work queue.
    External,
}

#[derive(Debug, Args)]
pub(super) struct SearchArgs {
    /// A folder of records, one record, or `synthetic` (the built-in generator).
    #[arg(long, default_value = "synthetic")]
    data: String,
    /// The task.
    #[arg(long, value_enum, default_value_t = TaskKind::Synthetic)]
    task: TaskKind,
    /// A built-in hardware profile (`ecgnas profiles`) or a profile TOML file.
    #[arg(long, default_value = "nrf52840")]
    profile: String,
    /// The search strategy.
    #[arg(long, value_enum, default_value_t = StrategyName::Rl)]
    strategy: StrategyName,
    /// Finished trials to reach.
    #[arg(long, default_value_t = 10)]
    trials: usize,
    /// Stop starting new trials after this long (`90s`, `30m`, `2h`).
    #[arg(long, value_parser = parse_duration)]
    time_budget: Option<std::time::Duration>,
    /// Candidates predicted slower than this many times the profile's latency budget are not
    /// trained (lowest reward).
    #[arg(long, default_value_t = 1.5)]
    max_latency_factor: f64,
    /// Epochs per child.
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    /// `enas`: supernet epochs before the best candidates are retrained (`--trials` of them).
    #[arg(long, default_value_t = 10)]
    enas_epochs: usize,
    /// `enas`: shared-weight steps (one sampled child, one minibatch) per supernet epoch.
    #[arg(long, default_value_t = 50)]
    enas_steps: usize,
    /// `darts`: epochs of alternating weight and architecture steps.
    #[arg(long, default_value_t = 10)]
    darts_epochs: usize,
    /// `darts`: weight steps (and as many architecture steps) per epoch.
    #[arg(long, default_value_t = 30)]
    darts_steps: usize,
    /// `darts`: weight of the expected latency (relative to the profile's budget) in the
    /// architecture loss.
    #[arg(long, default_value_t = 0.1)]
    darts_lambda: f64,
    /// `darts`: blocks of the relaxed network (the nearest depth the space offers).
    #[arg(long, default_value_t = 4)]
    darts_blocks: usize,
    /// `darts`: most blocks with a shortcut, as a share of the blocks (the collapse guard).
    #[arg(long, default_value_t = 0.5)]
    darts_max_skip_share: f64,
    /// Where children train.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Seed of the search and of every child.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// A search space JSON file (the task's default space otherwise).
    #[arg(long)]
    space: Option<PathBuf>,
    /// Synthetic windows to generate (the `synthetic` task's benchmark set is 6,000; a search
    /// defaults to fewer so that it finishes in minutes on 2 cores).
    #[arg(long, default_value_t = 2000)]
    synthetic_windows: usize,
    /// The run folder: trial store, report, best model.
    #[arg(long, default_value = "runs/demo")]
    out: PathBuf,
    /// Continue the search stored in the run folder (or the `--store`'s run `--run-id`).
    #[arg(long)]
    resume: bool,
    /// The trial store: `sqlite:PATH` (the default is `trials.sqlite` in the run folder) or a
    /// `postgres://user:password@host:port/dbname` URL that many workers share.
    #[arg(long)]
    store: Option<String>,
    /// The run's name in the store (a PostgreSQL store may hold many runs).
    #[arg(long, default_value = "main")]
    run_id: String,
    /// `local`: this process trains every child. `external`: it coordinates, and
    /// `ecgnas worker` processes on any machine train the children.
    #[arg(long, value_enum, default_value_t = Workers::Local)]
    workers: Workers,
    /// `--workers external`: trials queued at once (at least the number of workers).
    #[arg(long, default_value_t = 8)]
    in_flight: usize,
    /// `--workers external`: attempts a trial gets when the workers holding it die.
    #[arg(long, default_value_t = 3)]
    max_attempts: u32,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Sampling rate of CSV records, Hz.
    #[arg(long)]
    fs: Option<f64>,
}

pub(super) fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(text.len()),
    );
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 90s, 30m or 2h"))?;
    let seconds = match unit {
        "" | "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (s, m or h)")),
    };
    Ok(std::time::Duration::from_secs_f64(seconds))
}

/// One row of the `--json` output and of the Pareto table.
#[derive(Debug, Serialize)]
struct TrialSummary {
    id: u64,
    quality: f64,
    latency_ms: f64,
    flash_bytes: u64,
    sram_bytes: u64,
    candidate: serde_json::Value,
}

/// `ecgnas search --json`.
#[derive(Debug, Serialize)]
struct SearchJson {
    trials: usize,
    best: Option<TrialSummary>,
    pareto: Vec<TrialSummary>,
}

fn summary(t: &TrialRecord) -> TrialSummary {
    TrialSummary {
        id: t.trial_id,
        quality: t.quality.unwrap_or(0.0),
        latency_ms: t.costs["latency_ms"].as_f64().unwrap_or(0.0),
        flash_bytes: t.costs["flash_bytes"].as_u64().unwrap_or(0),
        sram_bytes: t.costs["sram_bytes"].as_u64().unwrap_or(0),
        candidate: t.candidate.clone(),
    }
}

fn make_strategy(
    name: StrategyName,
    space: &SearchSpace,
    seed: u64,
) -> anyhow::Result<Box<dyn Strategy>> {
    crate::search::strategy_by_name(name.as_str(), space, seed)
        .with_context(|| format!("strategy {}", name.as_str()))
}

/// What the supernet phase leaves in the run folder (`enas.json`), so that a resumed search
/// retrains without training the supernet again.
#[derive(Debug, Serialize, serde::Deserialize)]
struct EnasSaved {
    config: EnasConfig,
    ranked: Vec<Ranked>,
    controller: serde_json::Value,
}

/// A one-shot strategy's finished phase saved in the run folder, if there is one, so that a
/// resumed search does not search again.
fn load_phase<T: serde::de::DeserializeOwned>(
    path: &std::path::Path,
    phase: &str,
) -> anyhow::Result<Option<T>> {
    if !path.exists() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let saved = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a saved {phase} phase", path.display()))?;
    Ok(Some(saved))
}

fn save_phase<T: Serialize>(path: &std::path::Path, saved: &T) -> anyhow::Result<()> {
    std::fs::write(path, serde_json::to_string(saved)? + "\n")
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The `enas` strategy: the supernet phase (or its saved result), then its ranking.
fn enas_strategy(
    args: &SearchArgs,
    space: &SearchSpace,
    adc: &AdcDataset,
    class_weights: &[f32],
    profile: &Profile,
    config: &SearchConfig,
    device: &candle_core::Device,
) -> anyhow::Result<EnasStrategy> {
    let mut controller = RlController::new(
        space,
        RlConfig {
            seed: args.seed,
            ..RlConfig::default()
        },
    )?;
    let saved_path = args.out.join("enas.json");
    if let Some(saved) = load_phase::<EnasSaved>(&saved_path, "supernet")? {
        controller
            .restore(&saved.controller)
            .with_context(|| format!("{}", saved_path.display()))?;
        eprintln!(
            "enas: the supernet phase is done ({} candidates ranked in {}); retraining",
            saved.ranked.len(),
            saved_path.display()
        );
        return Ok(EnasStrategy::new(&saved.ranked, controller));
    }
    let side_inputs = match &space.preprocessing.window {
        WindowSpace::Beat { rr_intervals, .. } if rr_intervals.contains(&true) => RR_SIDE_INPUTS,
        _ => 0,
    };
    let mut supernet = SupernetEvaluator::new(
        adc,
        class_weights,
        &space.architecture,
        side_inputs,
        args.seed,
        TrainConfig::default().batch_size,
        device,
    )?;
    let enas = EnasConfig {
        epochs: args.enas_epochs,
        steps_per_epoch: args.enas_steps,
        ..EnasConfig::default()
    };
    eprintln!(
        "enas: supernet of {} shared parameters; {} epochs of {} shared-weight steps and {} controller samples",
        supernet.n_params(),
        enas.epochs,
        enas.steps_per_epoch,
        enas.controller_samples
    );
    let ranked = train_supernet(
        space,
        &mut controller,
        &mut supernet,
        profile,
        config,
        &enas,
        &mut |e| {
            eprintln!(
                "enas epoch {:>2}  shared-weight loss {:.4}  controller reward mean {:.4}, best {:.4}",
                e.epoch, e.mean_loss, e.mean_reward, e.best_reward
            )
        },
    )?;
    let saved = EnasSaved {
        config: enas,
        ranked,
        controller: controller.save()?,
    };
    save_phase(&saved_path, &saved)?;
    eprintln!(
        "enas: {} feasible candidates ranked by shared-weight reward; retraining the best {} from scratch",
        saved.ranked.len(),
        config.trials
    );
    Ok(EnasStrategy::new(&saved.ranked, controller))
}

/// What the relaxed phase leaves in the run folder (`darts.json`), so that a resumed search
/// retrains without searching again.
#[derive(Debug, Serialize, serde::Deserialize)]
struct DartsSaved {
    config: DartsConfig,
    relaxation: Relaxation,
    probabilities: Vec<BlockProbabilities>,
    discrete: Discrete,
}

/// Under `--time-budget`, the share of it the relaxed phase may take.
const DARTS_RELAXED_SHARE_OF_BUDGET: f64 = 0.6;

/// Epochs before the collapse guard may stop the relaxed phase: after one epoch the
/// architecture weights have barely moved from uniform and their argmax is noise.
const DARTS_WARMUP_EPOCHS: usize = 2;

/// The `darts` strategy: the relaxed phase (or its saved result), then its discrete network.
/// The relaxed phase stops at `relaxed_deadline` if it comes first.
#[allow(clippy::too_many_arguments)]
fn darts_strategy(
    args: &SearchArgs,
    space: &SearchSpace,
    adc: &AdcDataset,
    class_weights: &[f32],
    profile: &Profile,
    config: &SearchConfig,
    device: &candle_core::Device,
    relaxed_deadline: Option<Instant>,
) -> anyhow::Result<DartsStrategy> {
    let saved_path = args.out.join("darts.json");
    if let Some(saved) = load_phase::<DartsSaved>(&saved_path, "relaxed")? {
        eprintln!(
            "darts: the relaxed phase is done ({}); retraining",
            saved_path.display()
        );
        return Ok(DartsStrategy::new(
            saved.relaxation,
            saved.probabilities,
            saved.config.max_skip_share,
            saved.discrete.candidate,
        ));
    }
    if !(0.0..=1.0).contains(&args.darts_max_skip_share) || !args.darts_lambda.is_finite() {
        bail!("--darts-max-skip-share must be in [0, 1] and --darts-lambda finite");
    }
    let darts = DartsConfig {
        blocks: args.darts_blocks,
        epochs: args.darts_epochs,
        steps_per_epoch: args.darts_steps,
        lambda: args.darts_lambda,
        max_skip_share: args.darts_max_skip_share,
        ..DartsConfig::default()
    };
    let relaxation = Relaxation::new(space, darts.blocks)?;
    let tables = CostTables::new(&relaxation, profile, config.leads)?;
    let reference = &relaxation.reference;
    let train = adc
        .prepare(Split::Train, &reference.preprocessing)
        .context("cutting the relaxed network's training windows")?;
    let val = adc
        .prepare(Split::Validation, &reference.preprocessing)
        .context("cutting the relaxed network's validation windows")?;
    let side_inputs = train.set.side_width;
    let net = RelaxedNet::new(&relaxation, config.leads, side_inputs, args.seed, device)?;
    let mut trainer = RelaxedTrainer::new(
        net,
        &train.set,
        &val.set,
        class_weights,
        tables,
        &darts,
        TrainConfig::default().batch_size,
        device,
    )?;
    let b = &reference.architecture.blocks;
    eprintln!(
        "darts: {} relaxed blocks of {} channels (width fixed to the largest; stride {}, pooling {:?} and preprocessing fixed); {} epochs of {} weight and architecture steps, lambda {}",
        b.len(),
        b.first().map_or(0, |b| b.channels),
        b.first().map_or(1, |b| b.stride),
        b.first().map_or(Pool::None, |b| b.pool),
        darts.epochs,
        darts.steps_per_epoch,
        darts.lambda
    );
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(args.seed ^ 0xda27);
    let mut stopped_early = false;
    for epoch in 0..darts.epochs {
        let e = trainer.epoch(darts.steps_per_epoch, &mut rng, relaxed_deadline)?;
        let c = collapse(&relaxation, &trainer.probabilities()?, darts.max_skip_share);
        eprintln!(
            "darts epoch {epoch:>2}  train loss {:.4}  val loss {:.4}  E[latency] {:.2} ms  E[flash] {:.0} B  E[SRAM] {:.0} B  alpha entropy {:.3}  shortcut share {:.2}",
            e.train_loss, e.val_loss, e.expected_latency_ms, e.expected_flash_bytes, e.expected_sram_bytes, c.entropy, c.skip_share
        );
        if e.steps < darts.steps_per_epoch {
            eprintln!(
                "darts: the relaxed phase's share of --time-budget is spent after {} steps of epoch {epoch}; discretising now",
                e.steps
            );
            break;
        }
        if c.collapsed && epoch + 1 >= DARTS_WARMUP_EPOCHS {
            // DARTS+ (Liang et al. 2019): stop before shortcuts take over.
            eprintln!(
                "darts: collapse guard: {:.0}% of blocks prefer the shortcut, above the cap of {:.0}%; stopping the relaxed phase early",
                100.0 * c.skip_share,
                100.0 * darts.max_skip_share
            );
            stopped_early = true;
            break;
        }
    }
    let probabilities = trainer.probabilities()?;
    let c = collapse(&relaxation, &probabilities, darts.max_skip_share);
    let fits = |candidate: &Candidate| {
        crate::search::enas::feasible_latency(candidate, profile, config).is_some()
    };
    let discrete = discretise(&relaxation, &probabilities, darts.max_skip_share, &fits)?;
    eprintln!(
        "darts: collapse check: shortcut share {:.2}, alpha entropy {:.3}: {}",
        c.skip_share,
        c.entropy,
        if c.collapsed || stopped_early || discrete.skips_removed > 0 {
            format!(
                "collapse towards shortcuts detected; {} shortcut(s) removed by the cap",
                discrete.skips_removed
            )
        } else {
            "no collapse".to_string()
        }
    );
    if discrete.fell_back {
        eprintln!("darts: the most likely network breaks the device's hard limits; the most likely feasible one is used instead");
    }
    if discrete.infeasible {
        eprintln!("darts: no feasible network found near the learnt choices; the most likely one is proposed and will be recorded as too big");
    }
    eprintln!("darts: discrete network {}", discrete.candidate.describe());
    let saved = DartsSaved {
        config: darts,
        relaxation,
        probabilities,
        discrete,
    };
    save_phase(&saved_path, &saved)?;
    Ok(DartsStrategy::new(
        saved.relaxation,
        saved.probabilities,
        saved.config.max_skip_share,
        saved.discrete.candidate,
    ))
}

pub(super) fn run(args: SearchArgs) -> anyhow::Result<Outcome> {
    let device = super::device::parse(&args.device)?;
    let profile =
        Profile::load(&args.profile).with_context(|| format!("profile {}", args.profile))?;
    if args.workers == Workers::External
        && matches!(args.strategy, StrategyName::Enas | StrategyName::Darts)
    {
        bail!(
            "--strategy {} trains one shared supernet in one process; it cannot run with --workers external (use rl, random, evolution or smbo)",
            args.strategy.as_str()
        );
    }
    if args.in_flight == 0 || args.max_attempts == 0 {
        bail!("--in-flight and --max-attempts must be at least 1");
    }
    let address = match &args.store {
        Some(text) => StoreAddress::parse(text),
        None => StoreAddress::Sqlite(args.out.join("trials.sqlite")),
    };
    if let StoreAddress::Sqlite(path) = &address {
        if path.exists() && !args.resume {
            bail!(
                "{} already holds a search: add --resume to continue it, or choose another --out",
                path.display()
            );
        }
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let mut store = address.open()?;
    if !args.resume && store.runs()?.iter().any(|r| r.run_id == args.run_id) {
        bail!(
            "{address} already holds run {:?}: add --resume to continue it, or choose another --run-id",
            args.run_id
        );
    }

    let started = Instant::now();
    let fs = profile.ecg.adc_sample_rate_hz;
    let (dataset, adc) =
        load_task_data(args.task, &args.data, fs, args.synthetic_windows, args.fs)?;
    let leads = dataset.records.first().map_or(1, |r| r.record.leads.len());
    let shape = TaskShape {
        window: match args.task {
            TaskKind::MitdbAami => WindowKind::Beat,
            TaskKind::Cinc2017 | TaskKind::Cinc2021 => WindowKind::Fixed {
                choices_s: vec![5.0, 10.0, 15.0, 20.0],
            },
            TaskKind::Synthetic | TaskKind::MitdbRhythm => WindowKind::Fixed {
                choices_s: vec![10.0],
            },
        },
        multi_label: args.task.multi_label(),
        n_classes: dataset.labels.len(),
        input_fs_hz: fs,
        leads,
    };
    let space = match &args.space {
        Some(path) => SearchSpace::load(path)?,
        None => SearchSpace::default_for(&shape),
    };
    eprintln!(
        "search: task {} ({} records), profile {} (ADC {} Hz), strategy {}, space of {:.3e} candidates, {} trials x {} epochs",
        args.task,
        dataset.records.len(),
        profile.name,
        fs,
        args.strategy.as_str(),
        space.size(),
        args.trials,
        args.epochs
    );
    let run = RunInfo {
        run_id: args.run_id.clone(),
        created_at: format!(
            "{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        ),
        task: args.task.name().to_string(),
        data: args.data.clone(),
        profile: profile.name.clone(),
        strategy: args.strategy.as_str().to_string(),
        seed: args.seed,
        budget: serde_json::json!({
            "trials": args.trials,
            "epochs": args.epochs,
            "synthetic_windows": args.synthetic_windows,
            "max_latency_factor": args.max_latency_factor,
            "fs": args.fs,
        }),
        space: serde_json::to_value(&space)?,
        ecgnas_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let train = TrainConfig {
        epochs: args.epochs,
        ..TrainConfig::default()
    };
    let mut evaluator = ChildEvaluator {
        data: &adc,
        class_weights: dataset.class_weights(),
        train: train.clone(),
        device: device.clone(),
    };
    let config = search_config(
        &profile,
        args.trials,
        args.seed,
        leads,
        args.max_latency_factor,
    );
    let mut strategy: Box<dyn Strategy> = match args.strategy {
        StrategyName::Enas => Box::new(enas_strategy(
            &args,
            &space,
            &adc,
            &evaluator.class_weights,
            &profile,
            &config,
            &evaluator.device,
        )?),
        StrategyName::Darts => Box::new(darts_strategy(
            &args,
            &space,
            &adc,
            &evaluator.class_weights,
            &profile,
            &config,
            &evaluator.device,
            // The rest of the budget retrains the discrete network.
            args.time_budget
                .map(|d| started + d.mul_f64(DARTS_RELAXED_SHARE_OF_BUDGET)),
        )?),
        StrategyName::Smbo => {
            // The search's hard limits, so that SMBO never proposes what the loop would not train.
            let (limits, search) = (profile.clone(), config.clone());
            Box::new(
                crate::search::Smbo::new(crate::search::SmboConfig {
                    seed: args.seed,
                    ..crate::search::SmboConfig::default()
                })?
                .with_feasibility(Box::new(move |c| {
                    crate::search::enas::feasible_latency(c, &limits, &search).is_some()
                })),
            )
        }
        other => make_strategy(other, &space, args.seed)?,
    };
    let mut best_quality = f64::NEG_INFINITY;
    let deadline = args.time_budget.map(|d| started + d);
    let progress = progress_bar(args.time_budget.is_none().then_some(args.trials as u64));
    let mut on_trial = |t: &TrialRecord| {
        if t.feasible == Some(true) {
            best_quality = best_quality.max(t.quality.unwrap_or(f64::NEG_INFINITY));
        }
        // Printed above the bar (and printed as well when stderr is not a terminal and the
        // bar is hidden).
        progress.suspend(|| eprintln!("{}", trial_line(t, best_quality)));
        progress.inc(1);
        if best_quality.is_finite() {
            progress.set_message(format!("best feasible quality {best_quality:.4}"));
        }
    };
    let trials = match args.workers {
        Workers::Local => run_search(
            &run,
            &space,
            strategy.as_mut(),
            &mut evaluator,
            &profile,
            &mut *store,
            &config,
            &mut on_trial,
            deadline,
        ),
        Workers::External => {
            let mut store = coordinator_store(&address, &run, store)?;
            eprintln!(
                "search: coordinating run {:?} in {address}: start `ecgnas worker --store <URL> --run-id {}` anywhere the data is",
                run.run_id, run.run_id
            );
            let options = CoordinatorOptions {
                in_flight: args.in_flight,
                poll: COORDINATOR_POLL,
                max_attempts: args.max_attempts,
            };
            run_coordinator(
                &run,
                &space,
                strategy.as_mut(),
                &profile,
                &mut *store,
                &config,
                &options,
                &mut |event| {
                    match event {
                    CoordinatorEvent::Finished(t) => on_trial(t),
                    CoordinatorEvent::Queued(_) => {}
                    CoordinatorEvent::Expired(e) => eprintln!(
                        "search: leases ran out: trial(s) {:?} requeued, {:?} failed after {} attempts",
                        e.requeued, e.failed, args.max_attempts
                    ),
                }
                },
                deadline,
            )
        }
    };
    progress.finish_and_clear();
    let trials = trials?;

    write_trials_csv(&args.out.join("trials.csv"), &trials)?;
    let front = pareto_front(&trials);
    write_pareto_svg(&args.out.join("pareto.svg"), &trials, &front, args.task)?;
    let best = best_trial(&trials);
    if let Some(best) = best {
        let candidate: Candidate = serde_json::from_value(best.candidate.clone())?;
        let best_dir = args.out.join("best");
        let child = evaluator
            .train(&candidate, best.seed)
            .map_err(anyhow::Error::msg)
            .context("retraining the best candidate")?;
        export_trained(&best_dir, &candidate, &child, &adc, &profile.name)?;
        std::fs::write(
            best_dir.join("candidate.json"),
            serde_json::to_string_pretty(&candidate)? + "\n",
        )?;
        std::fs::write(
            best_dir.join("metrics.json"),
            serde_json::to_string_pretty(&child.metrics)? + "\n",
        )?;
    }
    let report = report_markdown(
        &args,
        &profile,
        &space,
        &trials,
        &front,
        best,
        started.elapsed().as_secs_f64(),
    );
    std::fs::write(args.out.join("report.md"), &report)?;
    if args.json {
        let json = SearchJson {
            trials: trials.len(),
            best: best.map(summary),
            pareto: front.iter().map(|t| summary(t)).collect(),
        };
        print_stdout(&(serde_json::to_string_pretty(&json)? + "\n"))?;
    } else {
        print_stdout(&pareto_table(&front))?;
        eprintln!("report: {}", args.out.join("report.md").display());
    }
    Ok(Outcome::Success)
}

/// Loads `task` from `data` (a folder, a record or `synthetic`) and resamples it to the
/// device's ADC rate `fs_hz`.
pub(super) fn load_task_data(
    task: TaskKind,
    data: &str,
    fs_hz: f64,
    synthetic_windows: usize,
    csv_fs: Option<f64>,
) -> anyhow::Result<(tasks::Dataset, AdcDataset)> {
    let mut source = data_source(data);
    if let tasks::DataSource::Synthetic { n_windows, .. } = &mut source {
        *n_windows = synthetic_windows;
    }
    let options = LoadOptions {
        csv_fs_hz: csv_fs,
        leads: LeadSet::Twelve,
        ..LoadOptions::default()
    };
    let dataset = tasks::load(task, &source, &options)
        .with_context(|| format!("cannot load task {task} from {data}"))?;
    let adc = AdcDataset::new(&dataset, fs_hz)
        .context("cannot resample the records to the profile's ADC rate")?;
    Ok((dataset, adc))
}

/// Exports a trained child into the model folder `dir`: calibrated on its training windows,
/// with the decision thresholds chosen on validation.
pub(super) fn export_trained(
    dir: &Path,
    candidate: &Candidate,
    child: &TrainedChild,
    adc: &AdcDataset,
    profile: &str,
) -> anyhow::Result<crate::export::Manifest> {
    let calibration = adc
        .prepare(Split::Train, &candidate.preprocessing)
        .context("cutting calibration windows")?;
    let leads = adc.records.first().map_or(1, |r| r.leads.len());
    let input = ExportInput {
        candidate,
        network: &child.fitted.network,
        weights: varmap_tensors(&child.fitted.varmap)?,
        task: adc.task,
        labels: adc.labels.clone(),
        profile: profile.to_string(),
        fs_hz: adc.fs_hz,
        leads,
        calibration: &calibration.set,
        thresholds: if adc.task.multi_label() {
            child.metrics.thresholds.clone().unwrap_or_default()
        } else {
            Vec::new()
        },
        trained_on: adc
            .records
            .iter()
            .filter(|r| matches!(r.split, Split::Train | Split::Validation))
            .map(|r| r.id.clone())
            .collect(),
    };
    crate::export::export(dir, &input).with_context(|| format!("exporting to {}", dir.display()))
}

fn write_trials_csv(path: &Path, trials: &[TrialRecord]) -> anyhow::Result<()> {
    let mut w =
        csv::Writer::from_path(path).with_context(|| format!("cannot write {}", path.display()))?;
    w.write_record([
        "trial",
        "candidate_id",
        "status",
        "feasible",
        "quality",
        "reward",
        "latency_ms",
        "macs",
        "params",
        "flash_bytes",
        "sram_bytes",
        "wall_s",
        "candidate",
    ])?;
    for t in trials {
        let cost = |k: &str| {
            t.costs[k]
                .as_f64()
                .map_or(String::new(), |v| format!("{v}"))
        };
        w.write_record([
            t.trial_id.to_string(),
            t.candidate_id.clone(),
            t.status.name().to_string(),
            t.feasible.map_or(String::new(), |f| f.to_string()),
            t.quality.map_or(String::new(), |q| format!("{q:.6}")),
            t.reward.map_or(String::new(), |r| format!("{r:.6}")),
            cost("latency_ms"),
            cost("macs"),
            cost("params"),
            cost("flash_bytes"),
            cost("sram_bytes"),
            t.wall_s.map_or(String::new(), |s| format!("{s:.2}")),
            t.candidate.to_string(),
        ])?;
    }
    w.flush()?;
    Ok(())
}

/// The search's settings: the same in a coordinator and in its workers.
pub(super) fn search_config(
    profile: &Profile,
    trials: usize,
    seed: u64,
    leads: usize,
    max_latency_factor: f64,
) -> SearchConfig {
    SearchConfig {
        trials,
        seed,
        reward: RewardConfig::mnasnet(profile.budget.latency_ms),
        leads,
        max_latency_ms: Some(profile.budget.latency_ms * max_latency_factor),
    }
}

/// How often the coordinator looks at the work queue.
const COORDINATOR_POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// The store as the run's one coordinator holds it: a PostgreSQL coordinator locks the run, so
/// that a second one is refused.
fn coordinator_store(
    address: &StoreAddress,
    run: &RunInfo,
    opened: Box<dyn WorkQueue + Send>,
) -> anyhow::Result<Box<dyn WorkQueue + Send>> {
    match address {
        StoreAddress::Postgres(url) => {
            drop(opened);
            let mut store = PostgresStore::open(url)?;
            store.create_or_open_run(run)?;
            store.lock_as_coordinator()?;
            Ok(Box::new(store))
        }
        StoreAddress::Sqlite(_) => Ok(opened),
    }
}

/// One finished trial as the search and the workers print it.
pub(super) fn trial_line(t: &TrialRecord, best_quality: f64) -> String {
    let candidate: Option<Candidate> = serde_json::from_value(t.candidate.clone()).ok();
    format!(
        "trial {:>3}  {}  quality {}  reward {:.4}  latency {:>8.2} ms  best {:.4}  [{:.1} s]  {}",
        t.trial_id,
        match (&t.status, t.feasible) {
            (crate::store::TrialStatus::Failed { .. }, _) => "failed ",
            (_, Some(true)) => "fits   ",
            _ => "too big",
        },
        t.quality
            .map_or("   -  ".to_string(), |q| format!("{q:.4}")),
        t.reward.unwrap_or(0.0),
        t.costs["latency_ms"].as_f64().unwrap_or(f64::NAN),
        best_quality,
        t.wall_s.unwrap_or(0.0),
        candidate.map(|c| c.describe()).unwrap_or_default()
    )
}

/// A bar of trials finished (a spinner under a time budget) with the best quality so far; drawn
/// only when stderr is a terminal.
fn progress_bar(trials: Option<u64>) -> indicatif::ProgressBar {
    let template = match trials {
        Some(_) => "{bar:32} {pos}/{len} trials  {msg}  [{elapsed} elapsed, about {eta} left]",
        None => "{spinner} {pos} trials  {msg}  [{elapsed} elapsed]",
    };
    let bar = match trials {
        Some(n) => indicatif::ProgressBar::new(n),
        None => indicatif::ProgressBar::new_spinner(),
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

/// `pareto.svg`: every trained trial's quality against its latency, feasible and not, with the
/// quality-latency front joined and the trials of the full front (SRAM and flash too) marked.
fn write_pareto_svg(
    path: &Path,
    trials: &[TrialRecord],
    front: &[&TrialRecord],
    task: TaskKind,
) -> anyhow::Result<()> {
    let point = |t: &TrialRecord| Some((t.costs["latency_ms"].as_f64()?, t.quality?));
    let feasible: Vec<(f64, f64)> = trials
        .iter()
        .filter(|t| t.feasible == Some(true))
        .filter_map(point)
        .collect();
    let too_big: Vec<(f64, f64)> = trials
        .iter()
        .filter(|t| t.feasible == Some(false))
        .filter_map(point)
        .collect();
    // The two-objective front: by latency, each point better than every faster one.
    let mut by_latency = feasible.clone();
    by_latency.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
    let mut front_2d: Vec<(f64, f64)> = Vec::new();
    for p in by_latency {
        if front_2d.last().is_none_or(|last| p.1 > last.1) {
            front_2d.push(p);
        }
    }
    let series = [
        Series {
            name: "quality-latency front".into(),
            points: front_2d,
            mark: Mark::Line,
        },
        Series {
            name: "feasible trials".into(),
            points: feasible,
            mark: Mark::Dot,
        },
        Series {
            name: "over a hard limit".into(),
            points: too_big,
            mark: Mark::Dot,
        },
        Series {
            name: "Pareto front (quality, latency, SRAM, flash)".into(),
            points: front.iter().filter_map(|t| point(t)).collect(),
            mark: Mark::Ring,
        },
    ];
    scatter_svg(
        path,
        &format!("{task}: validation quality against predicted latency"),
        "latency per inference (ms, log scale)",
        "validation quality",
        &series,
    )
}

fn pareto_table(front: &[&TrialRecord]) -> String {
    let mut out = format!(
        "{:>6} {:>8} {:>11} {:>11} {:>11}  candidate\n",
        "trial", "quality", "latency_ms", "sram_B", "flash_B"
    );
    for t in front {
        let s = summary(t);
        let describe = serde_json::from_value::<Candidate>(t.candidate.clone())
            .map(|c| c.describe())
            .unwrap_or_default();
        out += &format!(
            "{:>6} {:>8.4} {:>11.3} {:>11} {:>11}  {}\n",
            s.id, s.quality, s.latency_ms, s.sram_bytes, s.flash_bytes, describe
        );
    }
    out
}

fn report_markdown(
    args: &SearchArgs,
    profile: &Profile,
    space: &SearchSpace,
    trials: &[TrialRecord],
    front: &[&TrialRecord],
    best: Option<&TrialRecord>,
    wall_s: f64,
) -> String {
    let feasible = trials.iter().filter(|t| t.feasible == Some(true)).count();
    let mut out = format!(
        "# ecgnas search report\n\n- task: `{}`, data: `{}`\n- profile: `{}` ({} Hz ADC, {} budget {} ms; cost model: {:?})\n- strategy: `{}`, seed {}\n- budget: {} trials x {} epochs; {} trials finished, {} feasible\n- search space: {:.3e} candidates\n- wall time: {:.1} s (cpu)\n\n",
        args.task, args.data, profile.name, profile.ecg.adc_sample_rate_hz, "latency", profile.budget.latency_ms,
        profile.cost.provenance.kind, args.strategy.as_str(), args.seed, args.trials, args.epochs, trials.len(), feasible, space.size(), wall_s
    );
    if let Some(b) = best {
        out += &format!("## Best feasible candidate\n\ntrial {}, validation quality {:.4}, reward {:.4}\n\n```json\n{}\n```\n\n", b.trial_id, b.quality.unwrap_or(0.0), b.reward.unwrap_or(0.0), serde_json::to_string_pretty(&b.candidate).unwrap_or_default());
    }
    out += "## Pareto front (quality against latency, SRAM, flash)\n\n```\n";
    out += &pareto_table(front);
    out += "```\n\n![quality against latency](pareto.svg)\n\nEvery trial: `trials.csv`; the trial store: `trials.sqlite`.\n";
    out
}
