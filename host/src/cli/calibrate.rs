//! `ecgnas calibrate`: the cost model's coefficients fitted to instruction counts measured on
//! the target, and their error on candidates the fit never saw.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;

use super::deploy::Target;
use super::{print_stdout, Outcome};
use crate::cost::profile::{Provenance, ProvenanceKind};
use crate::cost::Profile;
use crate::deploy::calibrate::{accuracy, candidates, fit, measure};

#[derive(Debug, Args)]
pub(super) struct CalibrateArgs {
    /// The profile whose coefficients are fitted (a built-in name or a TOML file).
    #[arg(long, default_value = "qemu-mps2-an386")]
    profile: String,
    /// Where the benchmarks run.
    #[arg(long, value_enum, default_value_t = Target::Qemu)]
    target: Target,
    /// Random candidates whose layers the fit uses.
    #[arg(long, default_value_t = 30)]
    fit_candidates: usize,
    /// Other random candidates the fitted model is checked on.
    #[arg(long, default_value_t = 50)]
    check_candidates: usize,
    /// Candidates above this many MACs are not drawn.
    #[arg(long, default_value_t = 3_000_000)]
    max_macs: u64,
    /// Seed of the candidates.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write the calibrated profile here (TOML).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(super) fn run(args: CalibrateArgs) -> anyhow::Result<Outcome> {
    if args.target == Target::Probe {
        bail!("no debug probe is attached to this machine; calibrate with --target qemu");
    }
    let profile =
        Profile::load(&args.profile).with_context(|| format!("profile {}", args.profile))?;
    if profile.cost.unit != crate::cost::profile::CostUnit::Instructions {
        bail!(
            "profile {} counts {:?}; QEMU measures instructions: calibrate qemu-mps2-an386, or a board through --target probe",
            profile.name,
            profile.cost.unit
        );
    }
    eprintln!(
        "calibrate: {} + {} random candidates (at most {} MACs)",
        args.fit_candidates, args.check_candidates, args.max_macs
    );
    let all = candidates(
        args.fit_candidates + args.check_candidates,
        args.seed,
        args.max_macs,
    )?;
    let work = tempfile::tempdir()?;
    let target_dir = crate::deploy::default_target_dir();
    eprintln!("calibrate: building and running the benchmark binary on QEMU");
    let measured = measure(&all, work.path(), &target_dir)?;
    let (fit_set, check_set) = all.split_at(args.fit_candidates);
    let (fit_measured, check_measured) = measured.split_at(args.fit_candidates);
    let before = accuracy(check_set, check_measured, &profile)?;
    let fitted = fit(fit_set, fit_measured, &profile)?;
    let mut calibrated = profile.clone();
    for (kind, coefficients, layers) in &fitted {
        // An optional kind no layer used keeps falling back to its base kind.
        if *layers > 0 || kind.base() == *kind {
            *calibrated.cost.coefficients_mut(*kind) = *coefficients;
        }
    }
    let after = accuracy(check_set, check_measured, &calibrated)?;
    let train = accuracy(fit_set, fit_measured, &calibrated)?;
    calibrated.cost.provenance = Provenance {
        kind: ProvenanceKind::CalibratedQemu,
        date: today(),
        firmware_version: Some(env!("CARGO_PKG_VERSION").to_string()),
        board: None,
        fit_error_pct: Some(100.0 * after.median_relative_error),
        note: format!(
            "`ecgnas calibrate --profile {} --target qemu --fit-candidates {} --check-candidates {} --seed {}`: least squares per kernel kind on the layers of {} random candidates; on {} others, {:.0}% within 5%, median error {:.2}%, Spearman {:.4}",
            args.profile,
            args.fit_candidates,
            args.check_candidates,
            args.seed,
            args.fit_candidates,
            args.check_candidates,
            100.0 * after.within_5_percent,
            100.0 * after.median_relative_error,
            after.spearman
        ),
    };
    if let Some(out) = &args.out {
        let text =
            Profile::with_cost_section(&Profile::source_text(&args.profile)?, &calibrated.cost)?;
        std::fs::write(out, text).with_context(|| format!("cannot write {}", out.display()))?;
    }
    let json = serde_json::json!({
        "profile": profile.name,
        "fit_candidates": fit_set.len(),
        "check_candidates": check_set.len(),
        "before": before,
        "after": after,
        "fit_set": train,
        "coefficients": fitted.iter().map(|(k, c, n)| serde_json::json!({"kind": format!("{k:?}"), "layers": n, "a_per_mac": c.a_per_mac, "b_per_output": c.b_per_output, "c_per_input": c.c_per_input, "d_fixed": c.d_fixed, "e_per_extra": c.e_per_extra})).collect::<Vec<_>>(),
    });
    if args.json {
        print_stdout(&(serde_json::to_string_pretty(&json)? + "\n"))?;
    } else {
        let mut out = format!(
            "calibrated {} on {} candidates; checked on {} others\n  before: {:.0}% within 5%, median error {:.1}%, max {:.1}%, Spearman {:.4}\n  after:  {:.0}% within 5%, median error {:.2}%, max {:.1}%, Spearman {:.4}\n",
            profile.name,
            fit_set.len(),
            check_set.len(),
            100.0 * before.within_5_percent,
            100.0 * before.median_relative_error,
            100.0 * before.max_relative_error,
            before.spearman,
            100.0 * after.within_5_percent,
            100.0 * after.median_relative_error,
            100.0 * after.max_relative_error,
            after.spearman
        );
        for (k, c, n) in &fitted {
            out += &format!(
                "  {:<16} {:>4} layers  a {:>7.3}/MAC  b {:>7.2}/output  c {:>6.2}/input  d {:>8.1}  e {:>6.3}/extra\n",
                format!("{k:?}"),
                n,
                c.a_per_mac,
                c.b_per_output,
                c.c_per_input,
                c.d_fixed,
                c.e_per_extra
            );
        }
        print_stdout(&out)?;
    }
    Ok(Outcome::Success)
}

/// Today's date, `YYYY-MM-DD` (UTC).
fn today() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}
