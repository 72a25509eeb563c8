//! `ecgnas scale`: one found network grown into a family, the largest member that fits each
//! device trained, exported and verified (compound scaling, [`crate::search::scale`]).
//!
//! 1. The bases: each point of a small grid under `alpha * beta^2 * gamma = 2` scales the base
//!    to `phi = 1`, trained on the base profile's data; the best validation quality wins.
//! 2. For each profile, the largest `phi` (in `--phi-step` steps, down to negative values
//!    when even the base is too big) whose candidate fits its flash, SRAM and latency budget.
//! 3. That member trained at the profile's ADC rate, exported to `OUT/<profile>/` like a
//!    search's best, and verified like any export; a table (`family.csv`, `family.md`) and a
//!    plot of quality against latency (`family.svg`).

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use serde::Serialize;

use super::model::verify_model;
use super::plot::{scatter_svg, Mark, Series};
use super::search::{export_trained, load_task_data};
use super::{print_stdout, Outcome};
use crate::cost::{estimate, Profile};
use crate::data::tasks::{Dataset, TaskKind};
use crate::pipeline::AdcDataset;
use crate::search::scale::{coefficient_grid, fitting_members, phi_steps, scale, Coefficients};
use crate::space::Candidate;
use crate::train::{ChildEvaluator, TrainConfig, TrainedChild};

/// The smallest `phi` tried for a profile the base does not fit.
const PHI_MIN: f64 = -4.0;

#[derive(Debug, Args)]
pub(super) struct ScaleArgs {
    /// The base network: a model folder, or a candidate JSON file (then `--task` is needed).
    base: PathBuf,
    /// The profiles to scale to (built-in names or profile TOML files), comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    profiles: Vec<String>,
    /// A folder of records, one record, or `synthetic`.
    #[arg(long, default_value = "synthetic")]
    data: String,
    /// The task (a model folder's own by default).
    #[arg(long, value_enum)]
    task: Option<TaskKind>,
    /// The profile whose data the bases are chosen on (the model folder's, else the first of
    /// `--profiles`).
    #[arg(long)]
    base_profile: Option<String>,
    /// Grid points tried for the bases (1 to 9; 1 takes the balanced point untrained).
    #[arg(long, default_value_t = 4)]
    grid: usize,
    /// Given bases `alpha,beta,gamma` instead of the grid search.
    #[arg(long, value_delimiter = ',', num_args = 3)]
    coefficients: Option<Vec<f64>>,
    /// The largest exponent tried.
    #[arg(long, default_value_t = 6.0)]
    phi_max: f64,
    /// The step between exponents tried.
    #[arg(long, default_value_t = 0.5)]
    phi_step: f64,
    /// Epochs per network trained.
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    /// Seed of every network trained.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Synthetic windows to generate for `--data synthetic`.
    #[arg(long, default_value_t = 2000)]
    synthetic_windows: usize,
    /// Windows run through every form of each model when verifying it.
    #[arg(long, default_value_t = 100)]
    verify_windows: usize,
    /// Members tried per profile, largest first, until one passes verification (its int8
    /// form can lose more quality than the limit allows; the next smaller one may not).
    #[arg(long, default_value_t = 3)]
    tries: usize,
    /// Where networks train.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Sampling rate of CSV records, Hz.
    #[arg(long)]
    fs: Option<f64>,
    /// The folder to write: one model folder per profile, the table and the plot.
    #[arg(long)]
    out: PathBuf,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// One grid point's result.
#[derive(Debug, Clone, Serialize)]
struct GridPoint {
    coefficients: Coefficients,
    /// Validation quality of the base scaled to `phi = 1`; `None` when not trained.
    quality: Option<f64>,
    candidate: String,
}

/// One profile's member of the family.
#[derive(Debug, Clone, Serialize)]
struct FamilyRow {
    profile: String,
    phi: f64,
    candidate: String,
    /// Validation quality (f32) and the int8 model's on the same windows.
    quality: f64,
    quality_int8: Option<f64>,
    metric: String,
    latency_ms: f64,
    latency_budget_ms: f64,
    flash_bytes: u64,
    flash_available: u64,
    sram_bytes: u64,
    sram_available: u64,
    fits: bool,
    verified: bool,
    /// Larger members that fitted but failed verification: their phis, space-separated.
    rejected_phis: String,
    model_dir: String,
}

#[derive(Debug, Serialize)]
struct ScaleJson {
    base: String,
    base_profile: String,
    coefficients: Coefficients,
    grid: Vec<GridPoint>,
    family: Vec<FamilyRow>,
    /// Profiles no member fits, even at the smallest `phi`.
    unfit: Vec<String>,
}

/// The task's data at one ADC rate, loaded once per rate.
struct DataAtRate {
    dataset: Dataset,
    adc: AdcDataset,
}

pub(super) fn run(args: ScaleArgs) -> anyhow::Result<Outcome> {
    if !(args.phi_step > 0.0 && args.phi_step.is_finite()) {
        bail!("--phi-step {}: must be a positive number", args.phi_step);
    }
    if !(1..=9).contains(&args.grid) {
        bail!("--grid {}: must be 1 to 9", args.grid);
    }
    let (base, task, model_profile) = load_base(&args)?;
    let profiles = args
        .profiles
        .iter()
        .map(|p| Profile::load(p).with_context(|| format!("profile {p}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let base_profile_name = args
        .base_profile
        .clone()
        .or(model_profile)
        .unwrap_or_else(|| args.profiles[0].clone());
    let base_profile = Profile::load(&base_profile_name)
        .with_context(|| format!("profile {base_profile_name}"))?;
    let device = super::device::parse(&args.device)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;

    let mut data: HashMap<u64, DataAtRate> = HashMap::new();
    let train = |at: &DataAtRate, candidate: &Candidate| -> anyhow::Result<TrainedChild> {
        let evaluator = ChildEvaluator {
            data: &at.adc,
            class_weights: at.dataset.class_weights(),
            train: TrainConfig {
                epochs: args.epochs,
                ..TrainConfig::default()
            },
            device: device.clone(),
        };
        evaluator
            .train(candidate, args.seed)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("training {candidate}"))
    };

    // 1. The bases.
    let (coefficients, grid) = match &args.coefficients {
        Some(abc) => {
            let c = Coefficients {
                alpha: abc[0],
                beta: abc[1],
                gamma: abc[2],
            };
            if !(c.alpha >= 1.0 && c.beta >= 1.0 && c.gamma >= 1.0 && c.mac_growth().is_finite()) {
                bail!("--coefficients {abc:?}: alpha, beta and gamma must be at least 1");
            }
            (c, Vec::new())
        }
        None if args.grid == 1 => {
            let c = coefficient_grid(1)[0];
            let point = GridPoint {
                coefficients: c,
                quality: None,
                candidate: scale(&base, &c, 1.0).to_string(),
            };
            (c, vec![point])
        }
        None => {
            let at = data_at(&mut data, &args, task, base_profile.ecg.adc_sample_rate_hz)?;
            let mut grid = Vec::new();
            for c in coefficient_grid(args.grid) {
                let candidate = scale(&base, &c, 1.0);
                eprintln!(
                    "scale: grid alpha {:.2} beta {:.2} gamma {:.3}: {candidate}",
                    c.alpha, c.beta, c.gamma
                );
                let child = train(at, &candidate)?;
                eprintln!(
                    "scale:   validation {} {:.4}",
                    child.metrics.primary_name, child.metrics.primary
                );
                grid.push(GridPoint {
                    coefficients: c,
                    quality: Some(child.metrics.primary),
                    candidate: candidate.to_string(),
                });
            }
            let best = grid
                .iter()
                .max_by(|a, b| {
                    a.quality
                        .unwrap_or(0.0)
                        .total_cmp(&b.quality.unwrap_or(0.0))
                })
                .map(|p| p.coefficients)
                .context("an empty grid")?;
            (best, grid)
        }
    };
    eprintln!(
        "scale: bases alpha {:.2} beta {:.2} gamma {:.3} (MACs x{:.2} per unit of phi)",
        coefficients.alpha,
        coefficients.beta,
        coefficients.gamma,
        coefficients.mac_growth()
    );

    // 2 and 3. Each profile's largest fitting member, trained, exported and verified.
    let phis = phi_steps(PHI_MIN, args.phi_max, args.phi_step);
    let mut family = Vec::new();
    let mut unfit = Vec::new();
    for profile in &profiles {
        let fs = profile.ecg.adc_sample_rate_hz;
        let at = data_at(&mut data, &args, task, fs)?;
        let leads = at.adc.records.first().map_or(1, |r| r.leads.len());
        let members = fitting_members(&base, &coefficients, profile, leads, &phis);
        if members.is_empty() {
            eprintln!(
                "scale: {}: no member fits, not even at phi {PHI_MIN}",
                profile.name
            );
            unfit.push(profile.name.clone());
            continue;
        }
        let dir = args.out.join(&profile.name);
        let mut rejected_phis: Vec<String> = Vec::new();
        for (attempt, member) in members.iter().take(args.tries.max(1)).enumerate() {
            eprintln!(
                "scale: {}: phi {} fits ({:.2} ms, flash {} B, SRAM {} B): {}",
                profile.name,
                member.phi,
                member.cost.latency_ms,
                member.cost.flash_bytes,
                member.cost.sram_bytes,
                member.candidate
            );
            let child = train(at, &member.candidate)?;
            if dir.exists() {
                std::fs::remove_dir_all(&dir)
                    .with_context(|| format!("cannot replace {}", dir.display()))?;
            }
            export_trained(&dir, &member.candidate, &child, &at.adc, &profile.name)?;
            write_json(&dir.join("candidate.json"), &member.candidate)?;
            write_json(&dir.join("metrics.json"), &child.metrics)?;
            let verified = verify_model(&dir, Some(&args.data), args.verify_windows)
                .with_context(|| format!("verifying {}", dir.display()))?;
            let last = attempt + 1 == members.len().min(args.tries.max(1));
            if !verified.passed && !last {
                eprintln!(
                    "scale: {}: phi {} failed verification{}; trying the next smaller member",
                    profile.name,
                    member.phi,
                    verified
                        .quality
                        .as_ref()
                        .map(|q| format!(" (int8 loses {:.4} {})", q.loss, q.metric))
                        .unwrap_or_default()
                );
                rejected_phis.push(member.phi.to_string());
                continue;
            }
            // The cost of what was exported, recomputed from the folder's own manifest.
            let exported = crate::export::read_manifest(&dir)?;
            let cost = estimate(&exported.candidate, profile, leads)
                .with_context(|| format!("costing {}", dir.display()))?;
            family.push(FamilyRow {
                profile: profile.name.clone(),
                phi: member.phi,
                candidate: member.candidate.to_string(),
                quality: child.metrics.primary,
                quality_int8: verified.quality.as_ref().map(|q| q.int8),
                metric: child.metrics.primary_name.clone(),
                latency_ms: cost.latency_ms,
                latency_budget_ms: profile.budget.latency_ms,
                flash_bytes: cost.flash_bytes,
                flash_available: profile.available_flash_bytes().0,
                sram_bytes: cost.sram_bytes,
                sram_available: profile.available_sram_bytes().0,
                fits: cost.fits,
                verified: verified.passed,
                rejected_phis: rejected_phis.join(" "),
                model_dir: dir.display().to_string(),
            });
            break;
        }
    }

    write_csv(&args.out.join("family.csv"), &family)?;
    let table = family_table(&family, &unfit);
    std::fs::write(args.out.join("family.md"), &table)
        .with_context(|| format!("cannot write {}", args.out.join("family.md").display()))?;
    write_plot(&args.out.join("family.svg"), &family)?;
    let all_good = unfit.is_empty() && family.iter().all(|r| r.fits && r.verified);
    let json = ScaleJson {
        base: args.base.display().to_string(),
        base_profile: base_profile.name.clone(),
        coefficients,
        grid,
        family,
        unfit,
    };
    write_json(&args.out.join("scale.json"), &json)?;
    if args.json {
        print_stdout(&(serde_json::to_string_pretty(&json)? + "\n"))?;
    } else {
        print_stdout(&table)?;
    }
    Ok(if all_good {
        Outcome::Success
    } else {
        Outcome::CheckFailed
    })
}

/// The task's data at `fs` Hz, loaded on first use.
fn data_at<'a>(
    cache: &'a mut HashMap<u64, DataAtRate>,
    args: &ScaleArgs,
    task: TaskKind,
    fs: f64,
) -> anyhow::Result<&'a DataAtRate> {
    Ok(match cache.entry(fs.to_bits()) {
        Entry::Occupied(loaded) => loaded.into_mut(),
        Entry::Vacant(slot) => {
            let (dataset, adc) =
                load_task_data(task, &args.data, fs, args.synthetic_windows, args.fs)?;
            slot.insert(DataAtRate { dataset, adc })
        }
    })
}

/// The base candidate, its task, and the profile a model folder was made for.
fn load_base(args: &ScaleArgs) -> anyhow::Result<(Candidate, TaskKind, Option<String>)> {
    let path = &args.base;
    if path.is_dir() {
        let manifest = crate::export::read_manifest(path)?;
        let task = manifest.task_kind()?;
        if let Some(given) = args.task {
            if given != task {
                bail!(
                    "{}: the model is for task {task}, not {given}",
                    path.display()
                );
            }
        }
        return Ok((manifest.candidate, task, Some(manifest.profile)));
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let candidate: Candidate = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a candidate", path.display()))?;
    let task = args
        .task
        .with_context(|| format!("{}: a candidate file needs --task", path.display()))?;
    Ok((candidate, task, None))
}

fn write_json(path: &Path, value: &impl Serialize) -> anyhow::Result<()> {
    std::fs::write(path, serde_json::to_string_pretty(value)? + "\n")
        .with_context(|| format!("cannot write {}", path.display()))
}

fn write_csv(path: &Path, rows: &[FamilyRow]) -> anyhow::Result<()> {
    let mut w =
        csv::Writer::from_path(path).with_context(|| format!("cannot write {}", path.display()))?;
    for row in rows {
        w.serialize(row)?;
    }
    w.flush()
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn family_table(rows: &[FamilyRow], unfit: &[String]) -> String {
    let mut out = String::from(
        "| profile | phi | quality | int8 | latency ms (budget) | flash B (available) | SRAM B (available) | fits | verified | candidate |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        out += &format!(
            "| {} | {}{} | {} {:.4} | {} | {:.2} ({:.0}) | {} ({}) | {} ({}) | {} | {} | `{}` |\n",
            r.profile,
            r.phi,
            if r.rejected_phis.is_empty() {
                String::new()
            } else {
                format!(" ({} failed verification)", r.rejected_phis)
            },
            r.metric,
            r.quality,
            r.quality_int8
                .map_or("-".to_string(), |q| format!("{q:.4}")),
            r.latency_ms,
            r.latency_budget_ms,
            r.flash_bytes,
            r.flash_available,
            r.sram_bytes,
            r.sram_available,
            if r.fits { "yes" } else { "NO" },
            if r.verified { "yes" } else { "NO" },
            r.candidate
        );
    }
    for name in unfit {
        out += &format!("| {name} | - | nothing fits | | | | | NO | | |\n");
    }
    out
}

/// Quality against latency: the family as a line in order of latency, each profile's member
/// as a labelled dot.
fn write_plot(path: &Path, rows: &[FamilyRow]) -> anyhow::Result<()> {
    let mut line: Vec<(f64, f64)> = rows.iter().map(|r| (r.latency_ms, r.quality)).collect();
    line.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut series = vec![Series {
        name: "family".to_string(),
        points: line,
        mark: Mark::Line,
    }];
    for r in rows {
        series.push(Series {
            name: format!("{} (phi {})", r.profile, r.phi),
            points: vec![(r.latency_ms, r.quality)],
            mark: Mark::Dot,
        });
    }
    let metric = rows.first().map_or("quality", |r| r.metric.as_str());
    scatter_svg(
        path,
        "compound scaling: one network per device",
        "latency_ms",
        metric,
        &series,
    )
}
