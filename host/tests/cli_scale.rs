//! `ecgnas scale`: the default model grown into a family for three profiles on synthetic data.
//! Each member must fit its own profile by `ecgnas estimate` on the exported folder, pass
//! `ecgnas verify`, and be listed in the table, the CSV and the plot.

#![allow(clippy::print_stderr)]

mod common;

use common::{ecgnas, run, stderr};

use std::path::{Path, PathBuf};

fn default_model() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/default")
}

fn estimate(dir: &Path, profile: &str) -> serde_json::Value {
    let o = run(ecgnas()
        .arg("estimate")
        .arg(dir)
        .args(["--profile", profile, "--json"]));
    assert!(o.status.success(), "estimate failed: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).expect("estimate --json")
}

#[test]
fn a_family_for_three_profiles_fits_and_verifies() {
    let out = tempfile::tempdir().expect("temp dir");
    let profiles = ["nrf52840", "apollo4-plus", "esp32-s3"];
    let o = run(ecgnas()
        .arg("scale")
        .arg(default_model())
        .args(["--profiles", &profiles.join(",")])
        .args(["--grid", "1", "--epochs", "5", "--json"])
        .arg("--out")
        .arg(out.path()));
    assert!(o.status.success(), "scale failed: {}", stderr(&o));
    let result: serde_json::Value = serde_json::from_slice(&o.stdout).expect("scale --json");

    // The bases keep the compound constraint: MACs grow by about 2 per unit of phi (conv
    // MACs are linear in the input length, so alpha * beta^2 * gamma ~ 2).
    let c = &result["coefficients"];
    let (alpha, beta, gamma) = (
        c["alpha"].as_f64().expect("alpha"),
        c["beta"].as_f64().expect("beta"),
        c["gamma"].as_f64().expect("gamma"),
    );
    assert!(alpha >= 1.0 && beta >= 1.0 && gamma >= 1.0, "{c}");
    assert!((alpha * beta * beta * gamma - 2.0).abs() < 0.05, "{c}");

    let family = result["family"].as_array().expect("family");
    assert_eq!(family.len(), profiles.len(), "{result}");
    let mut latencies = Vec::new();
    for (row, profile) in family.iter().zip(profiles) {
        assert_eq!(row["profile"], profile);
        assert_eq!(row["verified"], true, "{row}");
        let dir = PathBuf::from(row["model_dir"].as_str().expect("model_dir"));
        // The exported folder, costed afresh, fits its profile and is what the table says.
        let cost = estimate(&dir, profile);
        assert_eq!(cost["fits"], true, "{profile}: {cost}");
        assert_eq!(cost["flash_bytes"], row["flash_bytes"], "{profile}");
        assert_eq!(cost["sram_bytes"], row["sram_bytes"], "{profile}");
        let latency = cost["latency_ms"].as_f64().expect("latency");
        assert!(latency <= row["latency_budget_ms"].as_f64().expect("budget"));
        latencies.push(latency);
        // Verified like any export: the folder passes `ecgnas verify` on its own.
        let v = run(ecgnas()
            .arg("verify")
            .arg(&dir)
            .args(["--data", "synthetic"]));
        assert!(
            v.status.success(),
            "{profile}: verify failed: {}",
            stderr(&v)
        );
        for file in [
            "model.onnx",
            "model.int8.onnx",
            "model.safetensors",
            "manifest.json",
        ] {
            assert!(dir.join(file).is_file(), "{}: no {file}", dir.display());
        }
    }
    // The table, the CSV and the plot name every profile.
    for file in ["family.md", "family.csv", "family.svg"] {
        let text = std::fs::read_to_string(out.path().join(file)).expect(file);
        for profile in profiles {
            assert!(text.contains(profile), "{file} lacks {profile}");
        }
    }
    // Different budgets give different members, not one network copied three times.
    latencies.dedup_by(|a, b| (*a - *b).abs() < 1e-9);
    assert!(
        latencies.len() > 1,
        "every member costs the same: {latencies:?}"
    );
}

#[test]
fn a_profile_nothing_fits_is_reported_and_fails() {
    let out = tempfile::tempdir().expect("temp dir");
    let tiny = out.path().join("tiny.toml");
    let nrf = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../hw-profiles/nrf52840.toml"),
    )
    .expect("nrf52840 profile");
    // The same chip with a latency budget no network meets.
    let budget = with_line_replaced(&nrf, "latency_ms", "latency_ms = 0.001");
    std::fs::write(&tiny, budget).expect("write profile");
    let o = run(ecgnas()
        .arg("scale")
        .arg(default_model())
        .arg("--profiles")
        .arg(&tiny)
        .args(["--grid", "1", "--epochs", "1", "--synthetic-windows", "300"])
        .arg("--out")
        .arg(out.path().join("family")));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("no member fits"), "{}", stderr(&o));
}

/// `text` with the line that starts with `key` replaced by `line`.
fn with_line_replaced(text: &str, key: &str, line: &str) -> String {
    let mut found = false;
    let out: Vec<String> = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with(key) {
                found = true;
                line.to_string()
            } else {
                l.to_string()
            }
        })
        .collect();
    assert!(found, "no {key} line in the profile");
    out.join("\n") + "\n"
}
