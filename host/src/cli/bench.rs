//! `ecgnas bench train`: child training speed, side by side with PyTorch on the same machine.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde::Serialize;

use super::{print_stdout, Outcome};
use crate::train::bench::{self, BenchNetwork, Timing};

#[derive(Debug, Subcommand)]
pub(super) enum BenchCommand {
    /// Steps per second of child training (the reference network and candidates of the
    /// default space), and the loss curve against PyTorch's from the same weights.
    Train(TrainBenchArgs),
    /// The trial store's own throughput: claims and results per second with trivial trials,
    /// for a number of concurrent worker connections.
    Store(StoreBenchArgs),
}

#[derive(Debug, Args)]
pub(super) struct StoreBenchArgs {
    /// The store (a `postgres://` URL, or `sqlite:PATH`); the benchmark writes its own runs.
    #[arg(long)]
    store: String,
    /// Concurrent worker connections, one measurement each (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,8,64")]
    connections: Vec<usize>,
    /// Trivial trials queued per measurement.
    #[arg(long, default_value_t = 2000)]
    trials: u64,
}

#[derive(Debug, Args)]
pub(super) struct TrainBenchArgs {
    /// Networks: `reference`, `reference-dwsep`, `candidates` (comma-separated).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "reference,reference-dwsep,candidates"
    )]
    networks: Vec<String>,
    /// How many candidates of the default space `candidates` draws.
    #[arg(long, default_value_t = 4)]
    candidates: usize,
    /// Batch sizes (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "64,1")]
    batch: Vec<usize>,
    /// Timed runs per network and batch size (the median is reported).
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Seconds per timed run.
    #[arg(long, default_value_t = 1.0)]
    secs: f64,
    /// Rounds: each times every network in candle, then in PyTorch, so that both sides of a
    /// ratio share the machine's load of that moment; the table gives the median round.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Training steps of the convergence comparison (at the first batch size above 1).
    #[arg(long, default_value_t = 50)]
    trace: usize,
    /// Threads for candle (and for PyTorch); the machine's cores by default.
    #[arg(long)]
    threads: Option<usize>,
    /// A Python with torch, numpy and safetensors: trains the same networks in PyTorch.
    #[arg(long)]
    pytorch: Option<PathBuf>,
    /// The PyTorch side.
    #[arg(long, default_value = "scripts/bench_train.py")]
    pytorch_script: PathBuf,
    /// Where to train: cpu, cuda or cuda:N (PyTorch gets the same device).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Seed of the weights and the data.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also write every figure as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// One network at one batch size, in both frameworks.
#[derive(Debug, Serialize)]
struct Row {
    network: String,
    batch: usize,
    candle: Timing,
    torch: Option<Timing>,
    /// candle / PyTorch steps per second, per round.
    ratios: Vec<f64>,
}

/// The convergence comparison of one network.
#[derive(Debug, Serialize)]
struct Parity {
    network: String,
    batch: usize,
    candle: Vec<f64>,
    torch: Vec<f64>,
    relative_difference: f64,
}

/// What the PyTorch side prints per network.
#[derive(Debug, serde::Deserialize)]
struct TorchLine {
    name: String,
    batch: usize,
    steps_per_s: f64,
    min: f64,
    max: f64,
    phase_ms: [f64; 3],
    trace: Vec<f64>,
}

/// Convergence parity: the loss after the compared steps within this fraction of PyTorch's.
const PARITY: f64 = 0.05;

pub(super) fn run(command: BenchCommand) -> anyhow::Result<Outcome> {
    match command {
        BenchCommand::Store(args) => store_bench(&args),
        BenchCommand::Train(args) => {
            let threads = args
                .threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .context("cannot start the thread pool")?;
            pool.install(|| train(&args, threads))
        }
    }
}

fn networks(args: &TrainBenchArgs) -> anyhow::Result<Vec<BenchNetwork>> {
    let mut nets = Vec::new();
    for name in &args.networks {
        match name.as_str() {
            "reference" => nets.push(bench::reference(false)),
            "reference-dwsep" => nets.push(bench::reference(true)),
            "candidates" => nets.extend(
                bench::sampled_candidates(args.candidates, args.seed)
                    .map_err(|e| anyhow::anyhow!("cannot draw candidates: {e}"))?,
            ),
            other => bail!(
                "--networks: unknown network {other:?} (reference, reference-dwsep, candidates)"
            ),
        }
    }
    Ok(nets)
}

fn train(args: &TrainBenchArgs, threads: usize) -> anyhow::Result<Outcome> {
    if args.batch.is_empty() || args.batch.contains(&0) {
        bail!("--batch: batch sizes must be at least 1");
    }
    let device = super::device::parse(&args.device)?;
    let nets = networks(args)?;
    let trace_batch = args.batch.iter().copied().find(|&b| b > 1);
    let mut out = format!(
        "# child training, candle {}, device {}, {threads} threads, AdamW lr 1e-3, BCE over {} labels\n",
        "0.11.1",
        args.device,
        bench::LABELS
    );
    for net in &nets {
        out.push_str(&format!(
            "# {}: {} x {} input; {}\n",
            net.name,
            net.in_channels,
            net.input_len,
            describe(net)
        ));
    }
    print_stdout(&out)?;

    let dir = tempfile::tempdir().context("cannot create a temporary folder")?;
    if args.pytorch.is_some() {
        for net in &nets {
            for &batch in &args.batch {
                bench::write_for_pytorch(net, batch, args.seed, dir.path())
                    .with_context(|| format!("writing {} for PyTorch", net.name))?;
            }
        }
        if !args.pytorch_script.is_file() {
            bail!(
                "{}: the PyTorch side of the benchmark is missing (run from the repository root, \
                 or give --pytorch-script)",
                args.pytorch_script.display()
            );
        }
    }
    let cases: Vec<(&BenchNetwork, usize)> = nets
        .iter()
        .flat_map(|net| args.batch.iter().map(move |&batch| (net, batch)))
        .collect();
    // Per round: candle's timing of every case, then PyTorch's.
    let mut candle_rounds: Vec<Vec<Timing>> = Vec::new();
    let mut torch_rounds: Vec<Vec<Option<Timing>>> = Vec::new();
    let mut torch_header = None;
    let mut torch_traces = Vec::new();
    for round in 0..args.rounds.max(1) {
        let mut timings = Vec::with_capacity(cases.len());
        for &(net, batch) in &cases {
            timings.push(
                bench::time_training(net, batch, args.repeats, args.secs, args.seed, &device)
                    .with_context(|| format!("training {} at batch {batch}", net.name))?,
            );
        }
        candle_rounds.push(timings);
        if let Some(python) = &args.pytorch {
            // The loss trace is the same every round: only the first computes it.
            let trace = if round == 0 { args.trace } else { 0 };
            let (header, lines) = run_pytorch(args, python, dir.path(), threads, trace)?;
            torch_header = header;
            if round == 0 {
                torch_traces = lines
                    .iter()
                    .map(|t| (t.name.clone(), t.batch, t.trace.clone()))
                    .collect();
            }
            torch_rounds.push(
                cases
                    .iter()
                    .map(|(net, batch)| {
                        lines
                            .iter()
                            .find(|t| t.name == net.name && t.batch == *batch)
                            .map(|t| Timing {
                                steps_per_s: t.steps_per_s,
                                min: t.min,
                                max: t.max,
                                phase_ms: t.phase_ms,
                            })
                    })
                    .collect(),
            );
        }
    }
    let mut rows = Vec::with_capacity(cases.len());
    for (i, &(net, batch)) in cases.iter().enumerate() {
        let candle: Vec<Timing> = candle_rounds.iter().map(|r| r[i].clone()).collect();
        let torch: Vec<Timing> = torch_rounds.iter().filter_map(|r| r[i].clone()).collect();
        let ratios: Vec<f64> = if torch.len() == candle.len() {
            candle
                .iter()
                .zip(&torch)
                .map(|(c, t)| c.steps_per_s / t.steps_per_s)
                .collect()
        } else {
            Vec::new()
        };
        rows.push(Row {
            network: net.name.clone(),
            batch,
            candle: median_timing(candle),
            torch: (!torch.is_empty()).then(|| median_timing(torch)),
            ratios,
        });
    }
    let mut candle_traces = Vec::new();
    if let Some(batch) = trace_batch.filter(|_| args.trace > 0) {
        for net in &nets {
            candle_traces.push(
                bench::loss_trace(net, batch, args.trace, args.seed, &device)
                    .with_context(|| format!("loss trace of {}", net.name))?,
            );
        }
    }
    let mut parity = Vec::new();
    if let Some(batch) = trace_batch {
        for (net, candle) in nets.iter().zip(&candle_traces) {
            let torch = torch_traces
                .iter()
                .find(|(name, b, _)| *name == net.name && *b == batch)
                .map(|(_, _, trace)| trace.clone())
                .unwrap_or_default();
            let relative_difference = match (candle.last(), torch.last()) {
                (Some(c), Some(t)) if torch.len() == candle.len() => (c - t).abs() / t.abs(),
                _ => f64::NAN,
            };
            parity.push(Parity {
                network: net.name.clone(),
                batch,
                candle: candle.clone(),
                torch,
                relative_difference,
            });
        }
    }

    print_stdout(&report(&rows, &parity, args.trace, torch_header.as_deref()))?;
    if let Some(path) = &args.json {
        let json = serde_json::json!({
            "threads": threads,
            "device": args.device,
            "torch": torch_header,
            "networks": nets,
            "speed": rows,
            "parity": parity,
        });
        std::fs::write(path, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let parity_failed = parity.iter().any(|p| {
        !p.torch.is_empty()
            && p.relative_difference.partial_cmp(&PARITY) != Some(std::cmp::Ordering::Less)
    });
    Ok(if parity_failed {
        Outcome::CheckFailed
    } else {
        Outcome::Success
    })
}

/// The timing of the median round (by steps per second).
fn median_timing(mut rounds: Vec<Timing>) -> Timing {
    rounds.sort_by(|a, b| a.steps_per_s.total_cmp(&b.steps_per_s));
    rounds.swap_remove(rounds.len() / 2)
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

/// Runs the PyTorch side on the networks written to `dir`: its header line and one line per
/// network and batch size.
fn run_pytorch(
    args: &TrainBenchArgs,
    python: &Path,
    dir: &Path,
    threads: usize,
    trace: usize,
) -> anyhow::Result<(Option<String>, Vec<TorchLine>)> {
    let output = Command::new(python)
        .arg(&args.pytorch_script)
        .arg(dir)
        .args(["--threads", &threads.to_string()])
        .args(["--repeats", &args.repeats.to_string()])
        .args(["--secs", &args.secs.to_string()])
        .args(["--trace", &trace.to_string()])
        .args(["--device", &args.device])
        .output()
        .with_context(|| format!("cannot run {}", python.display()))?;
    if !output.status.success() {
        bail!(
            "{} {} failed: {}",
            python.display(),
            args.pytorch_script.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut lines = stdout.lines();
    let header = lines.next().map(str::to_string);
    let parsed = lines
        .map(|line| {
            serde_json::from_str(line)
                .with_context(|| format!("unexpected output of the PyTorch side: {line}"))
        })
        .collect::<anyhow::Result<Vec<TorchLine>>>()?;
    Ok((header, parsed))
}

fn describe(net: &BenchNetwork) -> String {
    let blocks: Vec<String> = net
        .architecture
        .blocks
        .iter()
        .map(|b| {
            let kind = match b.kind {
                crate::space::ConvKind::Standard => "conv",
                crate::space::ConvKind::DepthwiseSeparable => "dwsep",
            };
            let mut s = format!("{kind}{}k{}s{}", b.channels, b.kernel, b.stride);
            if b.dilation > 1 {
                s.push_str(&format!("d{}", b.dilation));
            }
            if b.skip {
                s.push_str("+skip");
            }
            match b.pool {
                crate::space::Pool::None => {}
                crate::space::Pool::Max2 => s.push_str("+max"),
                crate::space::Pool::Avg2 => s.push_str("+avg"),
            }
            s
        })
        .collect();
    blocks.join(" ")
}

fn report(rows: &[Row], parity: &[Parity], steps: usize, torch: Option<&str>) -> String {
    let mut out = String::new();
    if let Some(header) = torch {
        out.push_str(&format!("# PyTorch: {header}\n"));
    }
    out.push_str(
        "\n| network | batch | candle steps/s | candle samples/s | candle ms fwd / bwd / opt \
         | torch steps/s | torch ms fwd / bwd / opt | candle / torch |\n|---|---|---|---|---|---|---|---|\n",
    );
    let ms = |t: &Timing| {
        format!(
            "{:.2} / {:.2} / {:.2}",
            t.phase_ms[0], t.phase_ms[1], t.phase_ms[2]
        )
    };
    for r in rows {
        let (torch_rate, torch_ms, ratio) = match &r.torch {
            Some(t) if r.ratios.len() > 1 => {
                let (lo, hi) = r
                    .ratios
                    .iter()
                    .fold((f64::MAX, 0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
                (
                    format!("{:.2}", t.steps_per_s),
                    ms(t),
                    format!("**{:.2}x** ({lo:.2}..{hi:.2})", median(&r.ratios)),
                )
            }
            Some(t) => (
                format!("{:.2}", t.steps_per_s),
                ms(t),
                format!("**{:.2}x**", r.candle.steps_per_s / t.steps_per_s),
            ),
            None => ("-".into(), "-".into(), "-".into()),
        };
        out.push_str(&format!(
            "| {} | {} | {:.2} ({:.2}..{:.2}) | {:.0} | {} | {torch_rate} | {torch_ms} | {ratio} |\n",
            r.network,
            r.batch,
            r.candle.steps_per_s,
            r.candle.min,
            r.candle.max,
            r.candle.steps_per_s * r.batch as f64,
            ms(&r.candle),
        ));
    }
    if !parity.is_empty() {
        out.push_str(&format!(
            "\nConvergence: the loss after {steps} steps from the same weights and batch \
             (parity: within {:.0}%)\n\n| network | batch | loss at step 0 | candle | torch | relative difference |\n|---|---|---|---|---|---|\n",
            PARITY * 100.0
        ));
        for p in parity {
            let last = |v: &[f64]| v.last().map_or("-".into(), |l| format!("{l:.6}"));
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                p.network,
                p.batch,
                p.candle.first().map_or("-".into(), |l| format!("{l:.6}")),
                last(&p.candle),
                last(&p.torch),
                if p.relative_difference.is_finite() {
                    format!("{:.3}%", 100.0 * p.relative_difference)
                } else {
                    "-".into()
                }
            ));
        }
    }
    out
}

/// One trivial trial: what a worker claims and finishes, with realistic JSON sizes.
fn trivial_trial(id: u64, status: crate::store::TrialStatus) -> crate::store::TrialRecord {
    crate::store::TrialRecord {
        trial_id: id,
        candidate_id: format!("bench-{id}"),
        candidate: serde_json::json!({"blocks": [{"kind": "dw", "channels": 16, "kernel": 5}]}),
        status,
        quality: None,
        metrics: serde_json::Value::Null,
        costs: serde_json::json!({"latency_ms": 12.5, "flash_bytes": 65536, "sram_bytes": 20000}),
        reward: None,
        feasible: None,
        wall_s: None,
        seed: id,
        started_at: None,
        finished_at: None,
    }
}

/// Queues `trials` trivial trials in a fresh run, then `connections` threads (one store
/// connection each) claim and finish them all; prints claims+results per second.
fn store_bench(args: &StoreBenchArgs) -> anyhow::Result<Outcome> {
    use crate::store::{RunInfo, StoreAddress, TrialStatus};
    let address = StoreAddress::parse(&args.store);
    let mut coordinator = address.open()?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut lines = format!(
        "trial store throughput, {address}: {} trivial trials per measurement\n\nconnections  claims/s (= results/s)  seconds\n",
        args.trials
    );
    for &connections in &args.connections {
        if connections == 0 {
            anyhow::bail!("--connections must be at least 1");
        }
        let run = RunInfo {
            run_id: format!("bench-store-{stamp}-{connections}"),
            created_at: stamp.to_string(),
            task: "none".into(),
            data: "none".into(),
            profile: "none".into(),
            strategy: "none".into(),
            seed: 0,
            budget: serde_json::json!({"trials": args.trials}),
            space: serde_json::json!({}),
            ecgnas_version: env!("CARGO_PKG_VERSION").into(),
        };
        coordinator.create_or_open_run(&run)?;
        for id in 0..args.trials {
            coordinator.record_trial(&trivial_trial(id, TrialStatus::Pending))?;
        }
        // Connections are opened before the clock starts.
        let mut stores = Vec::with_capacity(connections);
        for _ in 0..connections {
            let mut store = address.open()?;
            store.create_or_open_run(&run)?;
            stores.push(store);
        }
        let started = std::time::Instant::now();
        let finished: Vec<anyhow::Result<u64>> = std::thread::scope(|scope| {
            let handles: Vec<_> = stores
                .iter_mut()
                .enumerate()
                .map(|(w, store)| {
                    scope.spawn(move || -> anyhow::Result<u64> {
                        let name = format!("bench-{w}");
                        let mut done = 0;
                        while let Some(lease) = store.claim(&name, 60.0)? {
                            let mut result = lease.trial.clone();
                            result.status = TrialStatus::Done;
                            result.quality = Some(0.5);
                            result.reward = Some(0.5);
                            result.feasible = Some(true);
                            result.wall_s = Some(0.0);
                            store.finish(&lease, &result)?;
                            done += 1;
                        }
                        Ok(done)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("a benchmark thread panicked")))
                })
                .collect()
        });
        let seconds = started.elapsed().as_secs_f64();
        let total: u64 = finished.into_iter().sum::<anyhow::Result<u64>>()?;
        if total != args.trials || coordinator.n_finished()? != args.trials as usize {
            anyhow::bail!(
                "{connections} connections finished {total} of {} trials",
                args.trials
            );
        }
        lines += &format!(
            "{connections:>11}  {:>20.0}  {seconds:>7.2}\n",
            total as f64 / seconds
        );
    }
    print_stdout(&lines)?;
    Ok(Outcome::Success)
}
