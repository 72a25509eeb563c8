//! `ecgnas worker` and `ecgnas status`: the two sides of a distributed search besides its
//! coordinator (`ecgnas search --workers external`).

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use serde::Serialize;

use super::search::{load_task_data, parse_duration, search_config, trial_line};
use super::{print_stdout, Outcome};
use crate::cost::Profile;
use crate::data::tasks::TaskKind;
use crate::search::best_trial;
use crate::search::distributed::{run_worker, WorkerEvent, WorkerExit, WorkerOptions};
use crate::store::{RunInfo, RunningTrial, StoreAddress, TrialStatus, WorkQueue};
use crate::train::{ChildEvaluator, TrainConfig};

#[derive(Debug, Args)]
pub(super) struct WorkerArgs {
    /// The run's store: a `postgres://` URL (or `sqlite:PATH` for workers on one machine).
    #[arg(long)]
    store: String,
    /// The run to work for (the store's only run when there is one).
    #[arg(long)]
    run_id: Option<String>,
    /// The data folder on this machine, when it is not where the coordinator has it.
    #[arg(long)]
    data: Option<String>,
    /// Where children train.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// The worker's name in the store (default: host name and process id).
    #[arg(long)]
    name: Option<String>,
    /// How long a claimed trial stays this worker's without a heartbeat (`30s`, `2m`).
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    lease: Duration,
    /// Stop after the queue has been empty this long (the worker stops at once when the
    /// run's budget is finished).
    #[arg(long, value_parser = parse_duration, default_value = "120s")]
    idle_exit: Duration,
}

/// The run `run_id` of the store, or its only run.
fn pick_run(
    store: &dyn WorkQueue,
    address: &StoreAddress,
    run_id: Option<&str>,
) -> anyhow::Result<RunInfo> {
    let runs = store.runs()?;
    let names = || {
        runs.iter()
            .map(|r| format!("{:?}", r.run_id))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match run_id {
        Some(id) => runs
            .iter()
            .find(|r| r.run_id == id)
            .cloned()
            .with_context(|| format!("{address} holds no run {id:?} (it holds: {})", names())),
        None if runs.len() == 1 => Ok(runs[0].clone()),
        None if runs.is_empty() => bail!("{address} holds no run yet: start the coordinator first"),
        None => bail!(
            "{address} holds several runs ({}): choose one with --run-id",
            names()
        ),
    }
}

/// This process's default worker name: host and process id.
fn default_worker_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "host".to_string());
    format!("{host}:{}", std::process::id())
}

pub(super) fn worker(args: WorkerArgs) -> anyhow::Result<Outcome> {
    let device = super::device::parse(&args.device)?;
    let address = StoreAddress::parse(&args.store);
    if let StoreAddress::Sqlite(path) = &address {
        if !path.exists() {
            bail!("{}: no trial store here", path.display());
        }
    }
    let mut store = address.open()?;
    // Workers may start before their coordinator (a job array starts them all at once): the
    // run is waited for as long as an empty queue would be.
    let waiting_since = std::time::Instant::now();
    let run = loop {
        match pick_run(&*store, &address, args.run_id.as_deref()) {
            Ok(run) => break run,
            Err(e) if waiting_since.elapsed() >= args.idle_exit => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_secs(1)),
        }
    };
    store.create_or_open_run(&run)?;
    let mut heartbeat = address.open()?;
    heartbeat.create_or_open_run(&run)?;

    let task = TaskKind::from_name(&run.task)
        .with_context(|| format!("run {:?}: unknown task {:?}", run.run_id, run.task))?;
    let profile =
        Profile::load(&run.profile).with_context(|| format!("profile {}", run.profile))?;
    let budget = &run.budget;
    let count = |key: &str| budget[key].as_u64().map(|v| v as usize);
    let (Some(trials), Some(epochs), Some(synthetic_windows)) =
        (count("trials"), count("epochs"), count("synthetic_windows"))
    else {
        bail!(
            "run {:?}: its budget {} lacks trials, epochs or synthetic_windows",
            run.run_id,
            budget
        );
    };
    let max_latency_factor = budget["max_latency_factor"].as_f64().unwrap_or(1.5);
    let data = args.data.clone().unwrap_or_else(|| run.data.clone());
    if data != "synthetic" && !Path::new(&data).exists() {
        bail!("{data}: the run's data is not on this machine; give its folder here with --data");
    }
    let (dataset, adc) = load_task_data(
        task,
        &data,
        profile.ecg.adc_sample_rate_hz,
        synthetic_windows,
        budget["fs"].as_f64(),
    )?;
    let leads = dataset.records.first().map_or(1, |r| r.record.leads.len());
    let config = search_config(&profile, trials, run.seed, leads, max_latency_factor);
    let mut evaluator = ChildEvaluator {
        data: &adc,
        class_weights: dataset.class_weights(),
        train: TrainConfig {
            epochs,
            ..TrainConfig::default()
        },
        device,
    };
    let lease_s = args.lease.as_secs_f64();
    if lease_s < 1.0 {
        bail!("--lease must be at least 1 s");
    }
    let options = WorkerOptions {
        name: args.name.clone().unwrap_or_else(default_worker_name),
        lease_s,
        // Three heartbeats per lease: one lost or late renewal does not lose the trial.
        heartbeat: args.lease / 3,
        poll: Duration::from_millis(500),
        idle_exit: args.idle_exit,
    };
    eprintln!(
        "worker {}: run {:?} of {address} ({} on {}, {} trials x {epochs} epochs)",
        options.name, run.run_id, run.task, run.profile, trials
    );
    let mut best = f64::NEG_INFINITY;
    let exit = run_worker(
        &mut *store,
        &mut *heartbeat,
        &mut evaluator,
        &profile,
        &config,
        &options,
        &mut |event| {
            match event {
            WorkerEvent::Claimed(t) => eprintln!("worker: claimed trial {}", t.trial_id),
            WorkerEvent::Finished(t) => {
                if t.feasible == Some(true) {
                    best = best.max(t.quality.unwrap_or(f64::NEG_INFINITY));
                }
                eprintln!("{}", trial_line(t, best));
            }
            WorkerEvent::LeaseLost(id) => eprintln!(
                "worker: lost the lease of trial {id} (it went back to the queue); its result is dropped"
            ),
        }
        },
    )?;
    eprintln!(
        "worker {}: {}",
        options.name,
        match exit {
            WorkerExit::Complete => "the run's budget is finished",
            WorkerExit::Idle => "the queue stayed empty; stopping",
        }
    );
    Ok(Outcome::Success)
}

#[derive(Debug, Args)]
pub(super) struct StatusArgs {
    /// The store: a `postgres://` URL or `sqlite:PATH` (a run folder's `trials.sqlite`).
    #[arg(long)]
    store: String,
    /// The run to show (the store's only run when there is one).
    #[arg(long)]
    run_id: Option<String>,
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// `ecgnas status --json`.
#[derive(Debug, Serialize)]
struct StatusJson {
    run_id: String,
    task: String,
    profile: String,
    strategy: String,
    budget_trials: Option<u64>,
    done: usize,
    failed: usize,
    pending: usize,
    running: Vec<RunningTrial>,
    failures: Vec<(u64, String)>,
    best: Option<BestJson>,
}

#[derive(Debug, Serialize)]
struct BestJson {
    trial_id: u64,
    quality: Option<f64>,
    reward: Option<f64>,
    latency_ms: Option<f64>,
}

pub(super) fn status(args: StatusArgs) -> anyhow::Result<Outcome> {
    let address = StoreAddress::parse(&args.store);
    if let StoreAddress::Sqlite(path) = &address {
        if !path.exists() {
            bail!("{}: no trial store here", path.display());
        }
    }
    let mut store = address.open()?;
    let run = pick_run(&*store, &address, args.run_id.as_deref())?;
    store.create_or_open_run(&run)?;
    let trials = store.trials()?;
    let count = |f: &dyn Fn(&TrialStatus) -> bool| trials.iter().filter(|t| f(&t.status)).count();
    let finished: Vec<_> = trials
        .iter()
        .filter(|t| t.status.is_finished())
        .cloned()
        .collect();
    let best = best_trial(&finished).map(|t| BestJson {
        trial_id: t.trial_id,
        quality: t.quality,
        reward: t.reward,
        latency_ms: t.costs["latency_ms"].as_f64(),
    });
    let json = StatusJson {
        run_id: run.run_id.clone(),
        task: run.task.clone(),
        profile: run.profile.clone(),
        strategy: run.strategy.clone(),
        budget_trials: run.budget["trials"].as_u64(),
        done: count(&|s| *s == TrialStatus::Done),
        failed: count(&|s| matches!(s, TrialStatus::Failed { .. })),
        pending: count(&|s| *s == TrialStatus::Pending),
        running: store.running()?,
        failures: trials
            .iter()
            .filter_map(|t| match &t.status {
                TrialStatus::Failed { reason } => Some((t.trial_id, reason.clone())),
                _ => None,
            })
            .collect(),
        best,
    };
    if args.json {
        print_stdout(&(serde_json::to_string_pretty(&json)? + "\n"))?;
        return Ok(Outcome::Success);
    }
    let mut text = format!(
        "run {:?} in {address}: {} on {}, strategy {}\n  trials: {} done, {} failed, {} pending, {} running (budget {})\n",
        json.run_id,
        json.task,
        json.profile,
        json.strategy,
        json.done,
        json.failed,
        json.pending,
        json.running.len(),
        json.budget_trials.map_or("?".to_string(), |b| b.to_string())
    );
    for r in &json.running {
        text += &format!(
            "  running: trial {} on {} (attempt {}), lease {}\n",
            r.trial_id,
            r.worker.as_deref().unwrap_or("the search process"),
            r.attempts,
            match r.lease_left_s {
                Some(s) if s >= 0.0 => format!("{s:.0} s left"),
                Some(s) => format!("expired {:.0} s ago", -s),
                None => "none".to_string(),
            }
        );
    }
    for (id, reason) in &json.failures {
        text += &format!("  failed: trial {id}: {reason}\n");
    }
    match &json.best {
        Some(b) => {
            text += &format!(
                "  best so far: trial {} quality {} latency {} ms\n",
                b.trial_id,
                b.quality.map_or("-".to_string(), |q| format!("{q:.4}")),
                b.latency_ms.map_or("-".to_string(), |l| format!("{l:.2}"))
            )
        }
        None => text += "  best so far: none yet\n",
    }
    print_stdout(&text)?;
    Ok(Outcome::Success)
}
