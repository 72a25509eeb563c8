//! `ecgnas data ...`: look at records and at what a task makes of them.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::json::{
    AnnotationCountsJson, RecordStatsJson, RecordsInspection, SignalStatsJson, TaskInspection,
    TaskRecordSummary,
};
use super::{print_stdout, Outcome};
use crate::data::source::{self, RecordSource};
use crate::data::stats::{self, RecordStats};
use crate::data::tasks::{self, DataSource, Dataset, LeadSet, LoadOptions, TaskKind};
use crate::data::wfdb::{record::read_annotations, WfdbRecord};

#[derive(Debug, Subcommand)]
pub(super) enum DataCommand {
    /// Per-record facts and the task's label counts; without `--task`, per-record statistics of
    /// WFDB records (header fields, digital sums, invalid samples, checksums, annotations).
    Inspect(InspectArgs),
    /// An ECG strip of a WFDB record on ECG paper (25 mm/s, 10 mm/mV), with its beat and
    /// rhythm annotations, as SVG or PNG.
    Plot(super::strip::StripArgs),
}

#[derive(Debug, Args)]
pub(super) struct InspectArgs {
    /// A folder of records, one record (its `.hea`, or a `.csv`), or `synthetic`.
    data: String,
    /// The task whose examples to count. Without it: per-record statistics of WFDB records.
    #[arg(long, value_enum)]
    task: Option<TaskKind>,
    /// Print JSON on stdout instead of a table.
    #[arg(long)]
    json: bool,
    /// Sampling rate of CSV records, in Hz (CSV files do not store it).
    #[arg(long)]
    fs: Option<f64>,
    /// CinC 2021 lead set: 12, 6, 4, 3 or 2.
    #[arg(long, default_value_t = 12, value_parser = parse_lead_count)]
    leads: usize,
    /// Seed of the stratified split.
    #[arg(long, default_value_t = 0)]
    split_seed: u64,
}

fn parse_lead_count(text: &str) -> Result<usize, String> {
    let n: usize = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    LeadSet::from_count(n)
        .map(|_| n)
        .ok_or_else(|| format!("{n} is not a lead set (12, 6, 4, 3 or 2)"))
}

pub(super) fn run(command: DataCommand) -> anyhow::Result<Outcome> {
    match command {
        DataCommand::Inspect(args) => inspect(args),
        DataCommand::Plot(args) => super::strip::run(args),
    }
}

/// Parses the data argument: `synthetic` names the built-in generator.
pub(super) fn data_source(data: &str) -> DataSource {
    if data == "synthetic" && !std::path::Path::new(data).exists() {
        DataSource::default_synthetic()
    } else {
        DataSource::Path(PathBuf::from(data))
    }
}

fn inspect(args: InspectArgs) -> anyhow::Result<Outcome> {
    let Some(task) = args.task else {
        return inspect_records(&args);
    };
    let options = LoadOptions {
        split_seed: args.split_seed,
        csv_fs_hz: args.fs,
        leads: LeadSet::from_count(args.leads).unwrap_or_default(),
    };
    let source = data_source(&args.data);
    let dataset = tasks::load(task, &source, &options)
        .with_context(|| format!("cannot load task {task} from {}", args.data))?;
    for note in &dataset.notes {
        eprintln!("note: {note}");
    }
    let report = task_inspection(&dataset);
    if args.json {
        print_stdout(&(serde_json::to_string_pretty(&report)? + "\n"))?;
    } else {
        print_stdout(&inspection_table(&report))?;
    }
    Ok(Outcome::Success)
}

fn counts_map(labels: &[String], counts: &[usize]) -> serde_json::Map<String, serde_json::Value> {
    labels
        .iter()
        .zip(counts)
        .map(|(l, c)| (l.clone(), serde_json::Value::from(*c)))
        .collect()
}

fn task_inspection(dataset: &Dataset) -> TaskInspection {
    let records = dataset
        .records
        .iter()
        .map(|r| TaskRecordSummary {
            id: r.record.id.clone(),
            fs: r.record.fs,
            n_samples: r.record.n_samples(),
            duration_s: (r.record.duration_s() * 100.0).round() / 100.0,
            leads: r.file_leads.clone(),
            labels: counts_map(&dataset.labels, &dataset.label_counts(r)),
        })
        .collect();
    TaskInspection {
        task: dataset.task.name().to_string(),
        records,
        totals: counts_map(&dataset.labels, &dataset.totals(None)),
        excluded: dataset.excluded.clone(),
    }
}

fn inspection_table(report: &TaskInspection) -> String {
    use std::fmt::Write;
    let labels: Vec<&String> = report.totals.keys().collect();
    let mut out = String::new();
    let _ = write!(
        out,
        "{:<12} {:>8} {:>9} {:>9}  {:<16}",
        "record", "fs_hz", "samples", "seconds", "leads"
    );
    for l in &labels {
        let _ = write!(out, " {l:>7}");
    }
    out.push('\n');
    for r in &report.records {
        let _ = write!(
            out,
            "{:<12} {:>8} {:>9} {:>9.2}  {:<16}",
            r.id,
            r.fs,
            r.n_samples,
            r.duration_s,
            r.leads.join(",")
        );
        for l in &labels {
            let _ = write!(out, " {:>7}", r.labels[l.as_str()]);
        }
        out.push('\n');
    }
    let _ = write!(
        out,
        "{:<12} {:>8} {:>9} {:>9}  {:<16}",
        "total",
        "",
        "",
        "",
        format!("{} records", report.records.len())
    );
    for l in &labels {
        let _ = write!(out, " {:>7}", report.totals[l.as_str()]);
    }
    out.push('\n');
    for e in &report.excluded {
        let _ = writeln!(out, "excluded {}: {}", e.id, e.reason);
    }
    out
}

/// `data inspect` without `--task`: statistics of every WFDB record at `args.data`.
fn inspect_records(args: &InspectArgs) -> anyhow::Result<Outcome> {
    if let DataSource::Synthetic { .. } = data_source(&args.data) {
        anyhow::bail!(
            "`synthetic` is generated, not read from record files: per-record statistics need \
             a folder or a WFDB header; give --task to count the synthetic set's examples"
        );
    }
    let path = PathBuf::from(&args.data);
    let sources = source::discover(&path)?;
    let mut records = Vec::with_capacity(sources.len());
    for found in &sources {
        records.push(wfdb_record_stats(found)?);
    }
    if args.json {
        let report = RecordsInspection {
            records: records.into_iter().map(record_json).collect(),
        };
        print_stdout(&(serde_json::to_string_pretty(&report)? + "\n"))?;
    } else {
        print_stdout(&records_table(&records))?;
    }
    Ok(Outcome::Success)
}

/// Reads one record and its `.atr` file (when there is one) and computes its statistics.
fn wfdb_record_stats(found: &RecordSource) -> anyhow::Result<RecordStats> {
    let header = match found {
        RecordSource::Wfdb(header) => header,
        RecordSource::Csv(csv) => anyhow::bail!(
            "{}: a CSV file has no WFDB header or digital samples, so it has no per-record \
             statistics; inspect CSV records with --task (and --fs)",
            csv.display()
        ),
    };
    let record = WfdbRecord::read(header)?;
    let atr = record.annotation_path("atr");
    let annotations = if atr.is_file() {
        Some(read_annotations(&atr)?)
    } else {
        None
    };
    Ok(stats::record_stats(&record, annotations.as_deref())?)
}

fn record_json(record: RecordStats) -> RecordStatsJson {
    let annotations = record.annotations.unwrap_or_default();
    RecordStatsJson {
        id: record.id,
        fs: record.fs,
        n_samples: record.n_samples,
        signals: record
            .signals
            .into_iter()
            .map(|s| SignalStatsJson {
                name: s.name,
                units: s.units,
                format: s.format,
                gain: s.gain,
                baseline: s.baseline,
                adc_res: s.adc_resolution,
                adc_zero: s.adc_zero,
                min: s.min,
                max: s.max,
                sum: s.sum,
                sum_sq: s.sum_sq,
                invalid: s.invalid,
                checksum_ok: s.checksum_ok,
            })
            .collect(),
        annotations: AnnotationCountsJson {
            counts: annotations.counts,
            aux_counts: annotations.aux_counts,
        },
    }
}

/// `a 3, b 1`, or `-` for no entries.
fn counts_text(counts: &std::collections::BTreeMap<String, usize>) -> String {
    if counts.is_empty() {
        return "-".to_string();
    }
    counts
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A gain for the table: integral gains as integers, others to 3 decimals (JSON has them all).
fn gain_text(gain: f64) -> String {
    if gain.fract() == 0.0 {
        format!("{gain}")
    } else {
        format!("{gain:.3}")
    }
}

fn records_table(records: &[RecordStats]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<12} {:>8} {:>9} {:>9} {:>7}  annotations",
        "record", "fs_hz", "samples", "seconds", "signals"
    );
    let _ = writeln!(
        out,
        "  {:<10} {:<6} {:>6} {:>8} {:>8} {:>7} {:>8} {:>11} {:>11} {:>14} {:>20} {:>8} {:>8}",
        "signal",
        "units",
        "format",
        "gain",
        "baseline",
        "adc_res",
        "adc_zero",
        "min",
        "max",
        "sum",
        "sum_sq",
        "invalid",
        "checksum"
    );
    for r in records {
        let annotations = match &r.annotations {
            None => "no .atr file (counts empty)".to_string(),
            Some(a) => {
                let total: usize = a.counts.values().sum();
                let mut text = format!("{total}: {}", counts_text(&a.counts));
                if !a.aux_counts.is_empty() {
                    let _ = write!(text, "; aux {}", counts_text(&a.aux_counts));
                }
                text
            }
        };
        let _ = writeln!(
            out,
            "{:<12} {:>8} {:>9} {:>9.2} {:>7}  {annotations}",
            r.id,
            r.fs,
            r.n_samples,
            r.duration_s,
            r.signals.len()
        );
        for s in &r.signals {
            let extreme = |v: Option<i32>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
            let checksum = match s.checksum_ok {
                Some(true) => "ok",
                Some(false) => "MISMATCH",
                None => "none",
            };
            let name = if s.name.is_empty() { "-" } else { &s.name };
            let _ = writeln!(
                out,
                "  {:<10} {:<6} {:>6} {:>8} {:>8} {:>7} {:>8} {:>11} {:>11} {:>14} {:>20} {:>8} {:>8}",
                name,
                s.units,
                s.format,
                gain_text(s.gain),
                s.baseline,
                s.adc_resolution,
                s.adc_zero,
                extreme(s.min),
                extreme(s.max),
                s.sum,
                s.sum_sq,
                s.invalid,
                checksum
            );
        }
        for (i, s) in r.signals.iter().enumerate().filter(|(_, s)| !s.calibrated) {
            let _ = writeln!(
                out,
                "  note: signal {i} ({}) is uncalibrated (no gain or gain 0 in the header): \
                 WFDB's default gain {} applies and its {} values are nominal",
                if s.name.is_empty() { "-" } else { &s.name },
                gain_text(s.gain),
                s.units
            );
        }
    }
    out
}
