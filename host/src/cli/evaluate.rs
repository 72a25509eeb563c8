//! `ecgnas evaluate`: a model on every example of a task in the records given, with the task's
//! metrics, the confusion matrix and 95% bootstrap intervals over records.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::answers::{answer_all, worst_errors, Answer, Place};
use super::model::Precision;
use super::search::load_task_data;
use super::strip::{error_strip, write_strip};
use super::{print_stdout, Outcome};
use crate::data::tasks::{Dataset, Split, Target, TaskKind};
use crate::export::{load, LoadedModel};
use crate::metrics::{argmax, confusion_matrix, task_metrics, Truth};
use crate::space::Window;
use crate::train::Targets;

#[derive(Debug, Args)]
pub(super) struct EvaluateArgs {
    /// The model folder.
    model_dir: PathBuf,
    /// A folder of records, one record, or `synthetic`.
    #[arg(long)]
    data: String,
    /// The task (its labels must be the model's).
    #[arg(long, value_enum)]
    task: TaskKind,
    /// Only these records (comma-separated names); overrides `--split`.
    #[arg(long, value_delimiter = ',')]
    records: Option<Vec<String>>,
    /// Which records of the data: the task's test split (record-disjoint from the training and
    /// validation splits), or all of them. Records that trained the model are refused either way.
    #[arg(long, value_enum, default_value_t = EvalSplit::Test)]
    split: EvalSplit,
    /// Which form of the model to run.
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    precision: Precision,
    /// Write one CSV row per example here.
    #[arg(long)]
    predictions: Option<PathBuf>,
    /// Write strips (PNG) of the worst errors of each class into this folder, with an
    /// `index.csv` listing them.
    #[arg(long)]
    plots: Option<PathBuf>,
    /// Strips per class with `--plots`.
    #[arg(long, default_value_t = 3)]
    plots_per_class: usize,
    /// Bootstrap replicates (records resampled with replacement).
    #[arg(long, default_value_t = 200)]
    bootstrap: usize,
    /// Synthetic windows to generate (`synthetic` data only): as many as the model was trained
    /// on, so that the task's split, and so its test windows, are the same.
    #[arg(long, default_value_t = 2000)]
    synthetic_windows: usize,
    /// Sampling rate of CSV records, Hz.
    #[arg(long)]
    fs: Option<f64>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// The records `evaluate` scores when no `--records` are given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum EvalSplit {
    /// The task's test split.
    Test,
    /// Every record of the data.
    All,
}

#[derive(Debug, Serialize)]
struct Confusion {
    labels: Vec<String>,
    matrix: Vec<Vec<u64>>,
}

#[derive(Debug, Serialize)]
struct EvaluateJson {
    task: String,
    precision: String,
    n_examples: usize,
    n_records: usize,
    metrics: BTreeMap<String, Option<f64>>,
    ci95: BTreeMap<String, [f64; 2]>,
    per_class: BTreeMap<String, crate::metrics::ClassMetrics>,
    confusion: Option<Confusion>,
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let at = (q * (sorted.len() - 1) as f64).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

pub(super) fn run(args: EvaluateArgs) -> anyhow::Result<Outcome> {
    let model = load(&args.model_dir)?;
    if args.task.labels() != model.manifest.labels {
        bail!(
            "task {} has labels {:?}, the model {:?}",
            args.task,
            args.task.labels(),
            model.manifest.labels
        );
    }
    let (dataset, mut adc) = load_task_data(
        args.task,
        &args.data,
        model.manifest.input.fs,
        args.synthetic_windows,
        args.fs,
    )?;
    if let Some(wanted) = &args.records {
        for name in wanted {
            if !adc.records.iter().any(|r| &r.id == name) {
                bail!("{}: no record {name} of task {}", args.data, args.task);
            }
        }
        adc.records.retain(|r| wanted.contains(&r.id));
    } else if args.split == EvalSplit::Test {
        adc.records.retain(|r| r.split == Split::Test);
    }
    // Never score a model on what it learnt from.
    let seen: Vec<&str> = adc
        .records
        .iter()
        .filter(|r| model.manifest.trained_on.contains(&r.id))
        .map(|r| r.id.as_str())
        .collect();
    if !seen.is_empty() {
        bail!(
            "{} of the records to evaluate trained {} or chose its epoch ({}{}): evaluate on other records (the task's test split is the default)",
            seen.len(),
            args.model_dir.display(),
            seen[..seen.len().min(5)].join(", "),
            if seen.len() > 5 { ", ..." } else { "" }
        );
    }
    if model.manifest.trained_on.is_empty() {
        eprintln!(
            "note: {} does not list its training records; it cannot be checked that they are not among these",
            args.model_dir.display()
        );
    }
    // Every example of the records given, whatever split the task puts them in.
    let answered = answer_all(&model, &mut adc, args.precision)?;
    let raw = &answered.raw;
    if raw.n == 0 {
        bail!("{}: no example of task {}", args.data, args.task);
    }
    let n_groups = raw.group_targets.len();
    let width = model.manifest.labels.len();
    let probs = &answered.probabilities;
    let group_record: Vec<String> = answered
        .group_origin
        .iter()
        .map(|(r, _)| r.clone())
        .collect();
    let group_start: Vec<isize> = answered.group_origin.iter().map(|(_, s)| *s).collect();
    let thresholds =
        (!model.manifest.thresholds.is_empty()).then_some(&model.manifest.thresholds[..]);
    let truth = match &raw.group_targets {
        Targets::Classes(c) => Truth::Classes(c),
        Targets::Labels(l) => Truth::Labels(l),
    };
    let m = task_metrics(args.task, probs, truth, thresholds);

    // Bootstrap over records.
    let mut records: Vec<String> = group_record.clone();
    records.sort();
    records.dedup();
    let by_record: Vec<Vec<usize>> = records
        .iter()
        .map(|r| (0..n_groups).filter(|&g| &group_record[g] == r).collect())
        .collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let mut samples: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for _ in 0..args.bootstrap {
        let mut picked: Vec<usize> = Vec::with_capacity(n_groups);
        for _ in 0..records.len() {
            picked.extend(
                by_record[rng.random_range(0..records.len())]
                    .iter()
                    .copied(),
            );
        }
        let p: Vec<Vec<f32>> = picked.iter().map(|&g| probs[g].clone()).collect();
        let b = match &raw.group_targets {
            Targets::Classes(c) => {
                let t: Vec<u32> = picked.iter().map(|&g| c[g]).collect();
                task_metrics(args.task, &p, Truth::Classes(&t), thresholds)
            }
            Targets::Labels(l) => {
                let t: Vec<Vec<bool>> = picked.iter().map(|&g| l[g].clone()).collect();
                task_metrics(args.task, &p, Truth::Labels(&t), thresholds)
            }
        };
        let mut push = |k: &'static str, v: Option<f64>| {
            if let Some(v) = v.filter(|v| v.is_finite()) {
                samples.entry(k).or_default().push(v);
            }
        };
        push("primary", Some(b.primary));
        push("accuracy", Some(b.accuracy));
        push("macro_f1", b.macro_f1);
        push("macro_auroc", b.macro_auroc);
    }
    let ci95: BTreeMap<String, [f64; 2]> = samples
        .into_iter()
        .map(|(k, mut v)| {
            v.sort_by(f64::total_cmp);
            (
                k.to_string(),
                [percentile(&v, 0.025), percentile(&v, 0.975)],
            )
        })
        .collect();

    let confusion = match &raw.group_targets {
        Targets::Classes(c) => {
            let t: Vec<usize> = c.iter().map(|&v| v as usize).collect();
            let p: Vec<usize> = probs.iter().map(|row| argmax(row)).collect();
            Some(Confusion {
                labels: model.manifest.labels.clone(),
                matrix: confusion_matrix(&t, &p, width),
            })
        }
        Targets::Labels(_) => None,
    };
    if let Some(path) = &args.predictions {
        let mut w = csv::Writer::from_path(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        let mut header = vec![
            "record".to_string(),
            "position".into(),
            "true".into(),
            "predicted".into(),
        ];
        header.extend(model.manifest.labels.iter().map(|l| format!("p_{l}")));
        w.write_record(&header)?;
        let fiducial = model
            .manifest
            .candidate
            .preprocessing
            .pipeline_shape(model.manifest.input.fs)?
            .fiducial_index
            .unwrap_or(0) as isize;
        for g in 0..n_groups {
            let labels = &model.manifest.labels;
            let true_labels = match &raw.group_targets {
                Targets::Classes(c) => labels[c[g] as usize].clone(),
                Targets::Labels(l) => labels
                    .iter()
                    .zip(&l[g])
                    .filter(|(_, &on)| on)
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(";"),
            };
            let mut row = vec![
                group_record[g].clone(),
                (group_start[g] + fiducial).to_string(),
                true_labels,
                model.decide(&probs[g]).join(";"),
            ];
            row.extend(probs[g].iter().map(|p| format!("{p:.6}")));
            w.write_record(&row)?;
        }
        w.flush()?;
    }
    if let Some(dir) = &args.plots {
        let answers = answered.answers(&model, adc.fs_hz)?;
        let written = plot_worst_errors(dir, &model, &dataset, &answers, args.plots_per_class)?;
        eprintln!(
            "wrote {written} strips of the worst errors to {}",
            dir.display()
        );
    }
    let mut metrics = BTreeMap::new();
    metrics.insert(m.primary_name.clone(), Some(m.primary));
    metrics.insert("accuracy".to_string(), Some(m.accuracy));
    metrics.insert("macro_f1".to_string(), m.macro_f1);
    metrics.insert("macro_auroc".to_string(), m.macro_auroc);
    let per_class: BTreeMap<String, _> = model
        .manifest
        .labels
        .iter()
        .cloned()
        .zip(m.per_class.iter().cloned())
        .collect();
    let report = EvaluateJson {
        task: args.task.name().to_string(),
        precision: format!("{:?}", args.precision).to_lowercase(),
        n_examples: n_groups,
        n_records: records.len(),
        metrics,
        ci95,
        per_class,
        confusion,
    };
    if args.json {
        print_stdout(&(serde_json::to_string_pretty(&report)? + "\n"))?;
    } else {
        let mut out = format!(
            "{} on {} examples of {} records ({}): {} {:.4}",
            args.task,
            report.n_examples,
            report.n_records,
            report.precision,
            m.primary_name,
            m.primary
        );
        if let Some([lo, hi]) = report.ci95.get("primary") {
            out += &format!(" (95% CI {lo:.4}-{hi:.4}, records resampled)");
        }
        out += "\n";
        out += &format!(
            "  {:<10} {:>8} {:>8} {:>8} {:>8} {:>8}\n",
            "class", "Se", "+P", "F1", "AUROC", "n"
        );
        let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
        for (name, c) in &report.per_class {
            out += &format!(
                "  {:<10} {:>8} {:>8} {:>8} {:>8} {:>8}\n",
                name,
                f(c.se),
                f(c.ppv),
                f(c.f1),
                f(c.auroc),
                c.support
            );
        }
        if let Some(c) = &report.confusion {
            out += &format!(
                "  confusion (rows true, columns predicted): {}\n",
                c.labels.join(" ")
            );
            for (label, row) in c.labels.iter().zip(&c.matrix) {
                out += &format!(
                    "  {label:<10} {}\n",
                    row.iter().map(|v| format!("{v:>7}")).collect::<String>()
                );
            }
        }
        print_stdout(&out)?;
    }
    Ok(Outcome::Success)
}

/// Writes a strip of each of the worst errors of each class into `dir`, and `index.csv`
/// (class, record, place, truth, decision, file); returns how many strips it wrote.
fn plot_worst_errors(
    dir: &Path,
    model: &LoadedModel,
    dataset: &Dataset,
    answers: &[Answer],
    per_class: usize,
) -> anyhow::Result<usize> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let labels = &model.manifest.labels;
    let worst = worst_errors(answers, labels, model.manifest.multi_label(), per_class);
    let index_path = dir.join("index.csv");
    let mut index = csv::Writer::from_path(&index_path)
        .with_context(|| format!("cannot write {}", index_path.display()))?;
    index.write_record(["class", "record", "seconds", "true", "predicted", "file"])?;
    let beats = matches!(
        model.manifest.candidate.preprocessing.window,
        Window::Beat { .. }
    );
    for (rank, (class, error)) in worst.iter().enumerate() {
        let Some(task_record) = dataset.records.iter().find(|r| r.record.id == error.record) else {
            continue;
        };
        let record = &task_record.record;
        // Beats carry their true class above the paper; windows show it in their band.
        let truths: Vec<(f64, String)> = if beats {
            task_record
                .examples
                .iter()
                .map(|e| {
                    (
                        e.position as f64 / record.fs,
                        target_name(&e.target, labels),
                    )
                })
                .collect()
        } else {
            Vec::new()
        };
        let same_record: Vec<&Answer> = answers
            .iter()
            .filter(|a| a.record == error.record)
            .collect();
        let strip = error_strip(record, &truths, &same_record, error, class);
        let at = match error.place {
            Place::Beat(t) | Place::Span(t, _) => t,
        };
        let safe_class: String = class
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let file = format!("{:02}-{safe_class}-{}-{at:.1}s.png", rank + 1, error.record);
        write_strip(&strip, &dir.join(&file))?;
        index.write_record([
            class.as_str(),
            error.record.as_str(),
            &format!("{at:.3}"),
            &error.truth.join(";"),
            &error.predicted.join(";"),
            &file,
        ])?;
    }
    index
        .flush()
        .with_context(|| format!("cannot write {}", index_path.display()))?;
    Ok(worst.len())
}

fn target_name(target: &Target, labels: &[String]) -> String {
    match target {
        Target::Class(c) => labels.get(*c).cloned().unwrap_or_default(),
        Target::Labels(on) => labels
            .iter()
            .zip(on)
            .filter(|(_, &o)| o)
            .map(|(l, _)| l.as_str())
            .collect::<Vec<_>>()
            .join("+"),
    }
}
