//! `ecgnas export`, `ecgnas verify` and `ecgnas predict`: a search's candidate as a model
//! folder, the proof that its files agree, and the model run on a recording.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use serde::Serialize;

use super::search::{export_trained, load_task_data};
use super::{print_stdout, Outcome};
use crate::cost::Profile;
use crate::data::resample::resample;
use crate::data::source::{discover, load as load_record, RecordSource};
use crate::data::tasks::{Split, TaskKind};
use crate::export::verify::{check_equivalence, VerifyReport, Windows, MAX_QUALITY_LOSS};
use crate::export::{load, probabilities, LoadedModel};
use crate::metrics::{task_metrics, Truth};
use crate::pipeline::{AdcDataset, RawExamples};
use crate::space::{Candidate, HandDesigned};
use crate::store::{SqliteStore, TrialStore};
use crate::train::{ChildEvaluator, Targets, TrainConfig};

#[derive(Debug, Args)]
pub(super) struct ExportArgs {
    /// A search's run folder (with `trials.sqlite`).
    run_dir: PathBuf,
    /// The trial to export (the best feasible one by default).
    #[arg(long)]
    candidate: Option<u64>,
    /// The model folder to write.
    #[arg(long)]
    out: PathBuf,
    /// The data folder, if it moved since the search.
    #[arg(long)]
    data: Option<String>,
}

pub(super) fn export(args: ExportArgs) -> anyhow::Result<Outcome> {
    let store_path = args.run_dir.join("trials.sqlite");
    if !store_path.exists() {
        bail!(
            "{}: no trial store here (not a search's run folder)",
            store_path.display()
        );
    }
    let mut store = SqliteStore::open(&store_path)?;
    let run = store
        .runs()?
        .into_iter()
        .next()
        .with_context(|| format!("{}: the store holds no run", store_path.display()))?;
    store.create_or_open_run(&run)?;
    let trials = store.trials()?;
    let trial = match args.candidate {
        Some(id) => trials
            .iter()
            .find(|t| t.trial_id == id)
            .with_context(|| format!("{}: no trial {id}", store_path.display()))?,
        None => crate::search::best_trial(&trials)
            .with_context(|| format!("{}: no feasible finished trial", store_path.display()))?,
    };
    let candidate: Candidate = serde_json::from_value(trial.candidate.clone())
        .with_context(|| format!("trial {}: its candidate is malformed", trial.trial_id))?;
    let task = TaskKind::from_name(&run.task)
        .with_context(|| format!("{}: unknown task {:?}", store_path.display(), run.task))?;
    let profile =
        Profile::load(&run.profile).with_context(|| format!("profile {}", run.profile))?;
    let data = args.data.unwrap_or(run.data.clone());
    let synthetic_windows = run.budget["synthetic_windows"].as_u64().unwrap_or(2000) as usize;
    let epochs = run.budget["epochs"].as_u64().unwrap_or(3) as usize;
    let (dataset, adc) = load_task_data(
        task,
        &data,
        profile.ecg.adc_sample_rate_hz,
        synthetic_windows,
        None,
    )?;
    let evaluator = ChildEvaluator {
        data: &adc,
        class_weights: dataset.class_weights(),
        train: TrainConfig {
            epochs,
            ..TrainConfig::default()
        },
        device: candle_core::Device::Cpu,
    };
    eprintln!(
        "export: retraining trial {} (seed {}) for {epochs} epochs",
        trial.trial_id, trial.seed
    );
    let child = evaluator
        .train(&candidate, trial.seed)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("retraining trial {}", trial.trial_id))?;
    let manifest = export_trained(&args.out, &candidate, &child, &adc, &profile.name)?;
    print_stdout(&format!(
        "exported trial {} to {} ({} labels, input {} x {} samples at {} Hz)\n",
        trial.trial_id,
        args.out.display(),
        manifest.labels.len(),
        manifest.input.leads,
        manifest.input.samples,
        manifest.input.fs
    ))?;
    Ok(Outcome::Success)
}

#[derive(Debug, Args)]
pub(super) struct TrainArgs {
    /// A candidate JSON file (a search's `best/candidate.json`), a baseline of
    /// `models/baselines/`, or a model folder.
    candidate: PathBuf,
    /// A folder of records, one record, or `synthetic`.
    #[arg(long, default_value = "synthetic")]
    data: String,
    /// The task.
    #[arg(long, value_enum, default_value_t = TaskKind::Synthetic)]
    task: TaskKind,
    /// The hardware profile (its ADC rate is the model's input rate).
    #[arg(long, default_value = "nrf52840")]
    profile: String,
    /// Epochs.
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Seed of the initial weights and the batch order (a search's trial seed reproduces it).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Synthetic windows to generate (`synthetic` data only).
    #[arg(long, default_value_t = 2000)]
    synthetic_windows: usize,
    /// Sampling rate of CSV records, Hz.
    #[arg(long)]
    fs: Option<f64>,
    /// The model folder to write.
    #[arg(long)]
    out: PathBuf,
}

pub(super) fn train(args: TrainArgs) -> anyhow::Result<Outcome> {
    let candidate: Candidate = if args.candidate.is_dir() {
        crate::export::read_manifest(&args.candidate)?.candidate
    } else {
        let text = std::fs::read_to_string(&args.candidate)
            .with_context(|| format!("cannot read {}", args.candidate.display()))?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{}: not JSON", args.candidate.display()))?;
        if HandDesigned::is_baseline_json(&json) {
            // A shipped baseline: its head is fitted to the task.
            let baseline = HandDesigned::from_json(&text, &args.candidate)?;
            eprintln!("baseline {}: {}", baseline.name, baseline.reference);
            baseline.for_task(
                args.task.name(),
                args.task == TaskKind::MitdbAami,
                args.task.labels().len(),
                args.task.multi_label(),
                &args.candidate,
            )?
        } else {
            serde_json::from_value(json)
                .with_context(|| format!("{}: not a candidate", args.candidate.display()))?
        }
    };
    let profile =
        Profile::load(&args.profile).with_context(|| format!("profile {}", args.profile))?;
    let (dataset, adc) = load_task_data(
        args.task,
        &args.data,
        profile.ecg.adc_sample_rate_hz,
        args.synthetic_windows,
        args.fs,
    )?;
    let evaluator = ChildEvaluator {
        data: &adc,
        class_weights: dataset.class_weights(),
        train: TrainConfig {
            epochs: args.epochs,
            ..TrainConfig::default()
        },
        device: candle_core::Device::Cpu,
    };
    eprintln!(
        "train: {} for {} epochs (seed {})",
        candidate.describe(),
        args.epochs,
        args.seed
    );
    let child = evaluator
        .train(&candidate, args.seed)
        .map_err(anyhow::Error::msg)
        .context("training")?;
    let manifest = export_trained(&args.out, &candidate, &child, &adc, &profile.name)?;
    std::fs::write(
        args.out.join("candidate.json"),
        serde_json::to_string_pretty(&candidate)? + "\n",
    )?;
    std::fs::write(
        args.out.join("metrics.json"),
        serde_json::to_string_pretty(&child.metrics)? + "\n",
    )?;
    print_stdout(&format!(
        "trained and exported to {}: validation {} {:.4} (best epoch {})\n",
        args.out.display(),
        child.metrics.primary_name,
        child.metrics.primary,
        child.fitted.best_epoch,
    ))?;
    let _ = manifest;
    Ok(Outcome::Success)
}

#[derive(Debug, Args)]
pub(super) struct VerifyArgs {
    /// The model folder.
    model_dir: PathBuf,
    /// Records of the model's task: windows come from their validation split (synthetic
    /// windows otherwise).
    #[arg(long)]
    data: Option<String>,
    /// Windows to run through every form of the model.
    #[arg(long, default_value_t = 200)]
    windows: usize,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// The quality the int8 model keeps.
#[derive(Debug, Clone, Serialize)]
pub(super) struct QualityCheck {
    pub(super) metric: String,
    examples: usize,
    f32: f64,
    pub(super) int8: f64,
    pub(super) loss: f64,
    ok: bool,
}

#[derive(Debug, Clone, Serialize)]
pub(super) struct VerifyJson {
    model: String,
    source: String,
    #[serde(flatten)]
    equivalence: VerifyReport,
    pub(super) quality: Option<QualityCheck>,
    pub(super) passed: bool,
}

/// Evenly spaced indices, at most `n` of `total`.
fn spread(total: usize, n: usize) -> Vec<usize> {
    if total <= n {
        (0..total).collect()
    } else {
        (0..n).map(|i| i * total / n).collect()
    }
}

fn quality(model: &LoadedModel, task: TaskKind, raw: &RawExamples) -> anyhow::Result<QualityCheck> {
    let windows: Vec<&[f32]> = (0..raw.n).map(|i| raw.window(i)).collect();
    let sides: Vec<&[f32]> = (0..raw.n).map(|i| raw.side_of(i)).collect();
    let f32_probs = model.predict_f32(&windows, &sides)?;
    let int8_probs = windows
        .iter()
        .zip(&sides)
        .map(|(w, s)| model.predict_int8(w, s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let truth = match &raw.group_targets {
        Targets::Classes(c) => Truth::Classes(c),
        Targets::Labels(l) => Truth::Labels(l),
    };
    let thresholds =
        (!model.manifest.thresholds.is_empty()).then_some(&model.manifest.thresholds[..]);
    let f32_metrics = task_metrics(
        task,
        &raw.group_probabilities(&f32_probs),
        truth,
        thresholds,
    );
    let int8_metrics = task_metrics(
        task,
        &raw.group_probabilities(&int8_probs),
        truth,
        thresholds,
    );
    let loss = f32_metrics.primary - int8_metrics.primary;
    Ok(QualityCheck {
        metric: f32_metrics.primary_name.clone(),
        examples: raw.group_targets.len(),
        f32: f32_metrics.primary,
        int8: int8_metrics.primary,
        loss,
        ok: loss <= MAX_QUALITY_LOSS,
    })
}

/// Raw windows and their side inputs.
type WindowsAndSides = (Vec<Vec<f32>>, Vec<Vec<f32>>);

/// Synthetic windows for a model whose task has no data at hand: the built-in generator's
/// ECG at the model's rate, every lead the same, RR inputs of a regular rhythm.
fn synthetic_windows(model: &LoadedModel, n: usize) -> anyhow::Result<WindowsAndSides> {
    use crate::data::synthetic::{generate_window, FS_HZ};
    let input = &model.manifest.input;
    let mut windows = Vec::with_capacity(n);
    for i in 0..n {
        let w = generate_window(0x5eed, i as u64);
        let lead = resample(&w.samples_mv, FS_HZ, input.fs)?;
        let mut one: Vec<f32> = lead.iter().copied().cycle().take(input.samples).collect();
        one.resize(input.samples, 0.0);
        windows.push((0..input.leads).flat_map(|_| one.iter().copied()).collect());
    }
    let sides = vec![vec![1.0f32; input.side_inputs]; n];
    Ok((windows, sides))
}

/// Synthetic windows generated for `verify --data synthetic`: enough that the validation split
/// (about 300 windows) measures the int8 quality loss to well under [`MAX_QUALITY_LOSS`]'s
/// size, where 600 windows (85 validation windows) made it a coin toss for weak models.
const VERIFY_SYNTHETIC_WINDOWS: usize = 2000;

/// The data a model is checked on, with the name it was given: `data` when given, the
/// generator for a model of the synthetic task without it, else none (synthetic windows).
fn model_data(
    model: &LoadedModel,
    data: Option<&str>,
) -> anyhow::Result<Option<(String, AdcDataset)>> {
    let task = model.manifest.task_kind()?;
    let data = match (data, task) {
        (Some(d), _) => d.to_string(),
        (None, TaskKind::Synthetic) => "synthetic".to_string(),
        (None, _) => return Ok(None),
    };
    let (_, adc) = load_task_data(
        task,
        &data,
        model.manifest.input.fs,
        VERIFY_SYNTHETIC_WINDOWS,
        None,
    )?;
    Ok(Some((data, adc)))
}

/// Checks that the model folder `dir`'s files compute the same thing (tract, candle, int8) on
/// `windows` windows of `data` (synthetic windows without data), and what quality the int8
/// model keeps.
pub(super) fn verify_model(
    dir: &Path,
    data: Option<&str>,
    windows: usize,
) -> anyhow::Result<VerifyJson> {
    let model = load(dir)?;
    let task = model.manifest.task_kind()?;
    let (report, quality_check, source) = match model_data(&model, data)? {
        Some((data, adc)) => {
            let raw = validation_windows(&adc, &model)?;
            let picked = spread(raw.n, windows);
            let windows = Windows {
                windows: picked.iter().map(|&i| raw.window(i)).collect(),
                sides: picked.iter().map(|&i| raw.side_of(i)).collect(),
            };
            let report = check_equivalence(dir, &model, &windows)?;
            (report, Some(quality(&model, task, &raw)?), data)
        }
        None => {
            let (windows, sides) = synthetic_windows(&model, windows)?;
            let view = Windows {
                windows: windows.iter().map(Vec::as_slice).collect(),
                sides: sides.iter().map(Vec::as_slice).collect(),
            };
            let report = check_equivalence(dir, &model, &view)?;
            (report, None, "synthetic windows".to_string())
        }
    };
    let passed = report.f32_ok && report.int8_ok && quality_check.as_ref().is_none_or(|q| q.ok);
    let json = VerifyJson {
        model: dir.display().to_string(),
        source,
        equivalence: report,
        quality: quality_check,
        passed,
    };
    Ok(json)
}

pub(super) fn verify(args: VerifyArgs) -> anyhow::Result<Outcome> {
    let json = verify_model(&args.model_dir, args.data.as_deref(), args.windows)?;
    let passed = json.passed;
    if args.json {
        print_stdout(&(serde_json::to_string_pretty(&json)? + "\n"))?;
    } else {
        print_stdout(&verify_text(&json))?;
    }
    Ok(if passed {
        Outcome::Success
    } else {
        Outcome::CheckFailed
    })
}

/// Windows to run a model on, owned.
pub(super) struct EvaluationWindows {
    /// Raw windows, `leads x samples` each.
    pub windows: Vec<Vec<f32>>,
    /// Their side inputs.
    pub sides: Vec<Vec<f32>>,
    /// Where they come from.
    pub source: String,
}

/// Up to `n` windows of the model's task from `data` (its validation split, evenly spaced), or
/// synthetic windows when there is no data (the built-in synthetic task's own for synthetic
/// models).
pub(super) fn evaluation_windows(
    model: &LoadedModel,
    data: Option<&str>,
    n: usize,
) -> anyhow::Result<EvaluationWindows> {
    match model_data(model, data)? {
        Some((data, adc)) => {
            let preprocessing = &model.manifest.candidate.preprocessing;
            let mut out = EvaluationWindows {
                windows: Vec::new(),
                sides: Vec::new(),
                source: String::new(),
            };
            let mut used = Vec::new();
            // Validation windows first; when the split holds fewer than `n`, test then training
            // windows make up the rest (each split's windows evenly spaced).
            for split in [Split::Validation, Split::Test, Split::Train] {
                let missing = n - out.windows.len();
                if missing == 0 {
                    break;
                }
                let raw = adc.raw_examples(split, preprocessing)?;
                if raw.n > 0 && raw.leads != model.manifest.input.leads {
                    bail!(
                        "the data has {} leads, the model takes {}",
                        raw.leads,
                        model.manifest.input.leads
                    );
                }
                let picked = spread(raw.n, missing);
                if !picked.is_empty() {
                    used.push(format!("{} {split:?}", picked.len()).to_lowercase());
                }
                out.windows
                    .extend(picked.iter().map(|&i| raw.window(i).to_vec()));
                out.sides
                    .extend(picked.iter().map(|&i| raw.side_of(i).to_vec()));
            }
            if out.windows.is_empty() {
                bail!("{data}: no example of task {}", model.manifest.task);
            }
            out.source = format!("{data}: {} windows", used.join(", "));
            Ok(out)
        }
        None => {
            let (windows, sides) = synthetic_windows(model, n)?;
            Ok(EvaluationWindows {
                windows,
                sides,
                source: "synthetic windows".into(),
            })
        }
    }
}

fn validation_windows(adc: &AdcDataset, model: &LoadedModel) -> anyhow::Result<RawExamples> {
    let preprocessing = &model.manifest.candidate.preprocessing;
    let mut raw = adc.raw_examples(Split::Validation, preprocessing)?;
    if raw.n == 0 {
        raw = adc.raw_examples(Split::Test, preprocessing)?;
    }
    if raw.n == 0 {
        raw = adc.raw_examples(Split::Train, preprocessing)?;
    }
    if raw.leads != model.manifest.input.leads {
        bail!(
            "the data has {} leads, the model takes {}",
            raw.leads,
            model.manifest.input.leads
        );
    }
    if raw.n == 0 {
        bail!("the data holds no example of task {}", model.manifest.task);
    }
    Ok(raw)
}

fn verify_text(v: &VerifyJson) -> String {
    let r = &v.equivalence;
    let mark = |ok: bool| if ok { "ok" } else { "FAILED" };
    let mut out = format!(
        "verify {} on {} windows ({})\n  f32: tract vs candle, largest probability difference {:.3e} (limit {:.0e}) {}\n  int8: tract vs the int8 reference, largest logit difference {} step(s), {} of {} logits differ, labels agree on {:.2}% of windows {}\n  f32 vs int8 reference: labels agree on {:.2}% of windows\n",
        v.model,
        r.windows,
        v.source,
        r.f32_max_abs_diff,
        crate::export::verify::F32_TOLERANCE,
        mark(r.f32_ok),
        r.int8_max_step_diff,
        r.int8_logits_differing,
        r.int8_logits,
        100.0 * r.int8_label_agreement,
        mark(r.int8_ok),
        100.0 * r.f32_int8_label_agreement,
    );
    if let Some(q) = &v.quality {
        out += &format!(
            "  quality on {} validation examples: {} f32 {:.4}, int8 {:.4}, lost {:.4} (limit {}) {}\n",
            q.examples, q.metric, q.f32, q.int8, q.loss, MAX_QUALITY_LOSS, mark(q.ok)
        );
    }
    out += if v.passed { "passed\n" } else { "FAILED\n" };
    out
}

/// Precision of `ecgnas predict`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum Precision {
    /// The f32 network (candle).
    F32,
    /// The int8 model (the firmware's code).
    Int8,
}

#[derive(Debug, Args)]
pub(super) struct PredictArgs {
    /// The model folder.
    model_dir: PathBuf,
    /// A WFDB record (header) or a CSV file.
    #[arg(long)]
    input: PathBuf,
    /// Sampling rate of a CSV file (the model's own rate if omitted); must equal it.
    #[arg(long)]
    fs: Option<f64>,
    /// Which form of the model to run.
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    precision: Precision,
    /// Samples between window starts (the window length by default).
    #[arg(long)]
    stride: Option<usize>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct WindowPrediction {
    start: usize,
    probabilities: Vec<f32>,
    labels: Vec<String>,
    /// The quantised logits (`--precision int8`).
    #[serde(skip_serializing_if = "Option::is_none")]
    logits_int8: Option<Vec<i8>>,
}

#[derive(Debug, Serialize)]
struct PredictJson {
    windows: Vec<WindowPrediction>,
}

fn input_leads(model: &LoadedModel, path: &Path, fs: Option<f64>) -> anyhow::Result<Vec<Vec<f32>>> {
    let input = &model.manifest.input;
    let sources = discover(path)?;
    let source = match sources.as_slice() {
        [one] => one.clone(),
        _ => bail!(
            "{}: give one record (a header or a CSV file)",
            path.display()
        ),
    };
    let record = match &source {
        RecordSource::Csv(p) => {
            let fs = fs.unwrap_or(input.fs);
            if (fs - input.fs).abs() > 1e-9 {
                bail!(
                    "{}: sampled at {fs} Hz, the model takes {} Hz; resample the CSV first (WFDB records are resampled for you)",
                    p.display(),
                    input.fs
                );
            }
            load_record(&source, Some(fs))?
        }
        RecordSource::Wfdb(_) => load_record(&source, None)?,
    };
    if record.leads.len() < input.leads {
        bail!(
            "{}: {} lead(s), the model takes {}",
            path.display(),
            record.leads.len(),
            input.leads
        );
    }
    record
        .leads
        .iter()
        .take(input.leads)
        .map(|lead| {
            let clean: Vec<f32> = lead
                .samples
                .iter()
                .map(|v| if v.is_finite() { *v } else { 0.0 })
                .collect();
            if (record.fs - input.fs).abs() > 1e-9 {
                Ok(resample(&clean, record.fs, input.fs)?)
            } else {
                Ok(clean)
            }
        })
        .collect()
}

pub(super) fn predict(args: PredictArgs) -> anyhow::Result<Outcome> {
    let model = load(&args.model_dir)?;
    let leads = input_leads(&model, &args.input, args.fs)?;
    let w = model.manifest.input.samples;
    let stride = args.stride.unwrap_or(w);
    if stride == 0 {
        bail!("--stride must be at least 1");
    }
    let n = leads.first().map_or(0, Vec::len);
    if n < w {
        bail!(
            "{}: {n} samples at {} Hz, shorter than the model's window of {w}",
            args.input.display(),
            model.manifest.input.fs
        );
    }
    let starts: Vec<usize> = (0..=n - w).step_by(stride).collect();
    let windows: Vec<Vec<f32>> = starts
        .iter()
        .map(|&s| {
            leads
                .iter()
                .flat_map(|l| l[s..s + w].iter().copied())
                .collect()
        })
        .collect();
    // Without beat annotations, the RR inputs of a beat model are those of a regular rhythm.
    let side = vec![1.0f32; model.manifest.input.side_inputs];
    let (probs, logits): (Vec<Vec<f32>>, Vec<Option<Vec<i8>>>) = match args.precision {
        Precision::F32 => {
            let views: Vec<&[f32]> = windows.iter().map(Vec::as_slice).collect();
            let probs = model.predict_f32(&views, &vec![side.as_slice(); views.len()])?;
            let none = vec![None; probs.len()];
            (probs, none)
        }
        Precision::Int8 => {
            let mut probs = Vec::with_capacity(windows.len());
            let mut logits = Vec::with_capacity(windows.len());
            for win in &windows {
                let l = model.logits_int8(win, &side)?;
                probs.push(probabilities(
                    &model.int8.dequantize_logits(&l),
                    model.manifest.multi_label(),
                ));
                logits.push(Some(l));
            }
            (probs, logits)
        }
    };
    let rows: Vec<WindowPrediction> = starts
        .iter()
        .zip(probs)
        .zip(logits)
        .map(|((&start, probabilities), logits_int8)| WindowPrediction {
            start,
            labels: model.decide(&probabilities),
            probabilities,
            logits_int8,
        })
        .collect();
    if args.json {
        print_stdout(&(serde_json::to_string(&PredictJson { windows: rows })? + "\n"))?;
    } else {
        let mut out = format!(
            "{:>9}  {:<20}  probabilities ({})\n",
            "start",
            "labels",
            model.manifest.labels.join(", ")
        );
        for r in &rows {
            out += &format!(
                "{:>9}  {:<20}  {}\n",
                r.start,
                r.labels.join(","),
                r.probabilities
                    .iter()
                    .map(|p| format!("{p:.4}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
        print_stdout(&out)?;
    }
    Ok(Outcome::Success)
}
