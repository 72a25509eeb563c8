//! `ecgnas deploy`: a model folder on the target, bit-exact with the host, with its measured
//! cost, flash and SRAM beside the cost model's prediction.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use serde::Serialize;

use super::model::{evaluation_windows, EvaluationWindows};
use super::{print_stdout, Outcome};
use crate::cost::{estimate_at, Profile};
use crate::deploy::{self, elf, LayerKindCost};
use crate::export::load;

/// Where the model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum Target {
    /// QEMU's mps2-an386 (Cortex-M4F), here.
    Qemu,
    /// A board through a debug probe (probe-rs).
    Probe,
}

#[derive(Debug, Args)]
pub(super) struct DeployArgs {
    /// The model folder.
    model_dir: PathBuf,
    /// The hardware profile whose limits the build is checked against (the model's own by
    /// default).
    #[arg(long)]
    profile: Option<String>,
    /// The target.
    #[arg(long, value_enum, default_value_t = Target::Qemu)]
    target: Target,
    /// The probe-rs chip name (probe target; the profile's by default).
    #[arg(long)]
    chip: Option<String>,
    /// Windows to run on the target.
    #[arg(long, default_value_t = 200)]
    vectors: usize,
    /// Records of the model's task: windows come from their validation split (synthetic
    /// windows otherwise).
    #[arg(long)]
    data: Option<String>,
    /// Where the board binary is built (reused between runs).
    #[arg(long)]
    build_dir: Option<PathBuf>,
    /// Only write the generated Rust module (the model as `static` data for your own firmware)
    /// to this file, and stop.
    #[arg(long)]
    emit_rust: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct DeployJson {
    bit_exact: bool,
    vectors: usize,
    mismatches: usize,
    measured_cost: f64,
    predicted_cost: f64,
    cost_unit: String,
    measured_preprocessing_cost: f64,
    flash_bytes: u64,
    sram_bytes: u64,
    predicted_flash_bytes: u64,
    predicted_sram_bytes: u64,
    predicted_arena_bytes: u64,
    arena_bytes: usize,
    profile: String,
    fits: bool,
    limits: Vec<String>,
    layers: Vec<LayerKindCost>,
    source: String,
}

pub(super) fn run(args: DeployArgs) -> anyhow::Result<Outcome> {
    let model = load(&args.model_dir)?;
    if let Some(path) = &args.emit_rust {
        std::fs::write(path, deploy::codegen::model_module(&model))
            .with_context(|| format!("cannot write {}", path.display()))?;
        return Ok(Outcome::Success);
    }
    let profile_name = args
        .profile
        .clone()
        .unwrap_or(model.manifest.profile.clone());
    let profile =
        Profile::load(&profile_name).with_context(|| format!("profile {profile_name}"))?;
    if args.target == Target::Probe {
        let chip = args.chip.clone().or(profile.probe_rs_chip.clone());
        bail!(
            "no debug probe is attached to this machine (probe target, chip {}); deploy to --target qemu",
            chip.as_deref().unwrap_or("unknown")
        );
    }
    if args.vectors == 0 {
        bail!("--vectors must be at least 1");
    }
    // QEMU counts instructions: the prediction uses the QEMU profile's coefficients.
    let board = Profile::load("qemu-mps2-an386")?;
    let leads = model.manifest.input.leads;
    let predicted = estimate_at(
        &model.manifest.candidate,
        &board,
        leads,
        model.manifest.input.fs,
    )?;
    let limits = estimate_at(
        &model.manifest.candidate,
        &profile,
        leads,
        model.manifest.input.fs,
    )?;

    let EvaluationWindows {
        windows,
        sides,
        source,
    } = evaluation_windows(&model, args.data.as_deref(), args.vectors)?;
    let work = tempfile::tempdir().context("cannot create a work folder")?;
    let build_dir = args
        .build_dir
        .clone()
        .unwrap_or_else(deploy::default_target_dir);
    eprintln!(
        "deploy: building the board binary ({})",
        build_dir.display()
    );
    let elf_path = deploy::build(&model, work.path(), &build_dir)?;
    let sizes = elf::sizes(&elf_path)?;
    let values = leads * model.manifest.input.samples;
    let side = model.manifest.input.side_inputs;
    let window_refs: Vec<&[f32]> = windows.iter().map(Vec::as_slice).collect();
    let side_refs: Vec<&[f32]> = sides.iter().map(Vec::as_slice).collect();
    deploy::write_vectors(
        &work.path().join("vectors.bin"),
        &window_refs,
        &side_refs,
        values,
        side,
    )?;
    eprintln!(
        "deploy: running {} windows on QEMU mps2-an386",
        windows.len()
    );
    let timeout = Duration::from_secs(60 + 2 * windows.len() as u64);
    deploy::run_qemu(&elf_path, work.path(), timeout)?;
    let outputs = deploy::read_outputs(
        &work.path().join("outputs.bin"),
        windows.len(),
        model.manifest.labels.len(),
        model.int8.layers.len(),
    )?;
    let mut mismatches = 0usize;
    for ((w, s), out) in window_refs.iter().zip(&side_refs).zip(&outputs) {
        let reference = model.logits_int8(w, s)?;
        mismatches += usize::from(reference != out.logits);
    }
    let n = outputs.len() as f64;
    let measured = outputs.iter().map(|o| f64::from(o.total)).sum::<f64>() / n;
    let measured_pre = outputs
        .iter()
        .map(|o| f64::from(o.preprocessing))
        .sum::<f64>()
        / n;
    let mut limit_notes = limits.violations.clone();
    if sizes.flash_bytes > profile.available_flash_bytes().get() {
        limit_notes.push(format!(
            "the binary's flash {} B exceeds the {} B {} leaves",
            sizes.flash_bytes,
            profile.available_flash_bytes().get(),
            profile.name
        ));
    }
    if sizes.ram_bytes > profile.available_sram_bytes().get() {
        limit_notes.push(format!(
            "the binary's static RAM {} B exceeds the {} B {} leaves",
            sizes.ram_bytes,
            profile.available_sram_bytes().get(),
            profile.name
        ));
    }
    let report = DeployJson {
        bit_exact: mismatches == 0,
        vectors: outputs.len(),
        mismatches,
        measured_cost: measured,
        predicted_cost: predicted.cycles,
        cost_unit: "instructions".into(),
        measured_preprocessing_cost: measured_pre,
        flash_bytes: sizes.flash_bytes,
        sram_bytes: sizes.ram_bytes,
        predicted_flash_bytes: predicted.flash_bytes,
        predicted_sram_bytes: predicted.sram_bytes,
        predicted_arena_bytes: predicted.arena_bytes,
        arena_bytes: model.int8.arena_len,
        profile: profile.name.clone(),
        fits: limit_notes.is_empty(),
        limits: limit_notes,
        layers: deploy::cost_by_kind(&model, &outputs),
        source,
    };
    if args.json {
        print_stdout(&(serde_json::to_string_pretty(&report)? + "\n"))?;
    } else {
        print_stdout(&text(&report))?;
    }
    Ok(if report.bit_exact {
        Outcome::Success
    } else {
        Outcome::CheckFailed
    })
}

fn text(r: &DeployJson) -> String {
    let mut out = format!(
        "deploy on QEMU mps2-an386: {} windows ({}), {} mismatches: {}\n  cost per inference: measured {:.0} {u} (preprocessing {:.0}), predicted {:.0} {u} ({:+.1}%)\n  flash {} B (predicted {}), static RAM {} B (predicted SRAM {}, arena {} B, predicted arena {} B)\n  limits of {}: {}\n",
        r.vectors,
        r.source,
        r.mismatches,
        if r.bit_exact { "bit-exact" } else { "NOT bit-exact" },
        r.measured_cost,
        r.measured_preprocessing_cost,
        r.predicted_cost,
        100.0 * (r.predicted_cost - r.measured_cost) / r.measured_cost.max(1.0),
        r.flash_bytes,
        r.predicted_flash_bytes,
        r.sram_bytes,
        r.predicted_sram_bytes,
        r.arena_bytes,
        r.predicted_arena_bytes,
        r.profile,
        if r.limits.is_empty() { "fits".to_string() } else { r.limits.join("; ") },
        u = r.cost_unit,
    );
    out += &format!(
        "  {:<16} {:>6} {:>10} {:>14} {:>10}\n",
        "layer kind", "layers", "MACs", "instructions", "instr/MAC"
    );
    for k in &r.layers {
        out += &format!(
            "  {:<16} {:>6} {:>10} {:>14.0} {:>10}\n",
            k.kind,
            k.layers,
            k.macs,
            k.instructions,
            k.instructions_per_mac
                .map_or("-".into(), |v| format!("{v:.2}"))
        );
    }
    out
}
