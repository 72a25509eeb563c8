//! `ecgnas evaluate`: a model on every example of a task in the records given, with the task's
//! metrics, the confusion matrix and 95% bootstrap intervals over records.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::model::Precision;
use super::search::load_task_data;
use super::{print_stdout, Outcome};
use crate::data::tasks::{Split, TaskKind};
use crate::export::load;
use crate::metrics::{argmax, confusion_matrix, task_metrics, Truth};
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
    let (_, mut adc) = load_task_data(
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
    for r in &mut adc.records {
        r.split = Split::Test;
    }
    let raw = adc
        .raw_examples(Split::Test, &model.manifest.candidate.preprocessing)
        .context("cutting the examples")?;
    if raw.n == 0 {
        bail!("{}: no example of task {}", args.data, args.task);
    }
    if raw.leads != model.manifest.input.leads {
        bail!(
            "the data has {} leads, the model takes {}",
            raw.leads,
            model.manifest.input.leads
        );
    }
    let windows: Vec<&[f32]> = (0..raw.n).map(|i| raw.window(i)).collect();
    let sides: Vec<&[f32]> = (0..raw.n).map(|i| raw.side_of(i)).collect();
    let window_probs: Vec<Vec<f32>> = match args.precision {
        Precision::F32 => model.predict_f32(&windows, &sides)?,
        Precision::Int8 => windows
            .iter()
            .zip(&sides)
            .map(|(w, s)| model.predict_int8(w, s))
            .collect::<anyhow::Result<_>>()?,
    };
    // Each example's probabilities: the mean of its windows'; its record and first window.
    let n_groups = raw.group_targets.len();
    let width = model.manifest.labels.len();
    let probs = raw.group_probabilities(&window_probs);
    let mut group_record = vec![String::new(); n_groups];
    let mut group_start = vec![0isize; n_groups];
    for (i, &g) in raw.groups.iter().enumerate().rev() {
        group_record[g] = raw.origins[i].0.clone();
        group_start[g] = raw.origins[i].1;
    }
    let thresholds =
        (!model.manifest.thresholds.is_empty()).then_some(&model.manifest.thresholds[..]);
    let truth = match &raw.group_targets {
        Targets::Classes(c) => Truth::Classes(c),
        Targets::Labels(l) => Truth::Labels(l),
    };
    let m = task_metrics(args.task, &probs, truth, thresholds);

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
