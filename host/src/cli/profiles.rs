//! `ecgnas profiles`: the built-in hardware profiles.

use clap::Args;
use serde::Serialize;

use super::{print_stdout, Outcome};
use crate::cost::Profile;

#[derive(Debug, Args)]
pub(super) struct ProfilesArgs {
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct ProfileRow {
    name: String,
    core: String,
    clock_hz: u64,
    sram_bytes: u64,
    flash_bytes: u64,
}

#[derive(Debug, Serialize)]
struct ProfilesJson {
    profiles: Vec<ProfileRow>,
}

pub(super) fn run(args: ProfilesArgs) -> anyhow::Result<Outcome> {
    let rows: Vec<ProfileRow> = Profile::all_builtin()?
        .into_iter()
        .map(|p| ProfileRow {
            name: p.name.clone(),
            core: p.core.as_str().to_string(),
            clock_hz: p.clock_hz.get(),
            sram_bytes: p.memory.sram_bytes.get(),
            flash_bytes: p.memory.flash_bytes.get(),
        })
        .collect();
    if args.json {
        print_stdout(&(serde_json::to_string_pretty(&ProfilesJson { profiles: rows })? + "\n"))?;
    } else {
        let mut out = format!(
            "{:<18} {:<12} {:>12} {:>12} {:>12}\n",
            "name", "core", "clock_hz", "sram_B", "flash_B"
        );
        for r in rows {
            out += &format!(
                "{:<18} {:<12} {:>12} {:>12} {:>12}\n",
                r.name, r.core, r.clock_hz, r.sram_bytes, r.flash_bytes
            );
        }
        print_stdout(&out)?;
    }
    Ok(Outcome::Success)
}
