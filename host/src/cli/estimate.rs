//! `ecgnas estimate`: what a candidate or a model costs on a chip, before anything is flashed.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::{print_stdout, Outcome};
use crate::cost::{estimate_at, Profile};
use crate::space::Candidate;

#[derive(Debug, Args)]
pub(super) struct EstimateArgs {
    /// A model folder, or a candidate JSON file (`candidate.json` of a search's best).
    model: PathBuf,
    /// A built-in profile name or a profile TOML file.
    #[arg(long)]
    profile: String,
    /// Input leads of a candidate file (a model folder knows its own).
    #[arg(long, default_value_t = 1)]
    leads: usize,
    /// Sampling rate of the raw windows, Hz (a model folder knows its own; the profile's ADC
    /// rate otherwise).
    #[arg(long)]
    fs: Option<f64>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(super) fn run(args: EstimateArgs) -> anyhow::Result<Outcome> {
    let profile =
        Profile::load(&args.profile).with_context(|| format!("profile {}", args.profile))?;
    let (candidate, leads, fs) = if args.model.is_dir() {
        let manifest = crate::export::read_manifest(&args.model)?;
        (manifest.candidate, manifest.input.leads, manifest.input.fs)
    } else {
        let text = std::fs::read_to_string(&args.model)
            .with_context(|| format!("cannot read {}", args.model.display()))?;
        let candidate: Candidate = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a candidate", args.model.display()))?;
        (
            candidate,
            args.leads,
            args.fs.unwrap_or(profile.ecg.adc_sample_rate_hz),
        )
    };
    let e = estimate_at(&candidate, &profile, leads, fs)
        .with_context(|| format!("{}: cannot estimate", args.model.display()))?;
    if args.json {
        let json = serde_json::json!({
            "macs": e.macs,
            "params": e.params,
            "flash_bytes": e.flash_bytes,
            "sram_bytes": e.sram_bytes,
            "arena_bytes": e.arena_bytes,
            "cycles": e.cycles,
            "cost_unit": profile.cost.unit,
            "latency_ms": e.latency_ms,
            "energy_uj": e.energy_uj,
            "fits": e.fits,
            "violations": e.violations,
        });
        print_stdout(&(serde_json::to_string_pretty(&json)? + "\n"))?;
    } else {
        print_stdout(&format!(
            "{} on {}: {} MACs, {} parameters, flash {} B, SRAM {} B (arena {} B), {:.0} {:?}, {:.2} ms, {:.1} uJ: {}\n",
            candidate.describe(),
            profile.name,
            e.macs,
            e.params,
            e.flash_bytes,
            e.sram_bytes,
            e.arena_bytes,
            e.cycles,
            profile.cost.unit,
            e.latency_ms,
            e.energy_uj,
            if e.fits { "fits".to_string() } else { e.violations.join("; ") }
        ))?;
    }
    Ok(Outcome::Success)
}
