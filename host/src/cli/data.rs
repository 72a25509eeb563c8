//! `ecgnas data ...`: look at records and at what a task makes of them.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::json::{TaskInspection, TaskRecordSummary};
use super::{print_stdout, Outcome};
use crate::data::tasks::{self, DataSource, Dataset, LeadSet, LoadOptions, TaskKind};

#[derive(Debug, Subcommand)]
pub(super) enum DataCommand {
    /// Per-record facts and the task's label counts.
    Inspect(InspectArgs),
}

#[derive(Debug, Args)]
pub(super) struct InspectArgs {
    /// A folder of records, one record (its `.hea`, or a `.csv`), or `synthetic`.
    data: String,
    /// The task whose examples to count.
    #[arg(long, value_enum)]
    task: TaskKind,
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
    let options = LoadOptions {
        split_seed: args.split_seed,
        csv_fs_hz: args.fs,
        leads: LeadSet::from_count(args.leads).unwrap_or_default(),
    };
    let source = data_source(&args.data);
    let dataset = tasks::load(args.task, &source, &options)
        .with_context(|| format!("cannot load task {} from {}", args.task, args.data))?;
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
