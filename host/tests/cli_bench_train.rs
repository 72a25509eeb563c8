//! `ecgnas bench train`: the training benchmark runs, reports what it measured, and, where a
//! Python with PyTorch is given (`ECGNAS_TORCH_PYTHON`), trains the same networks in PyTorch
//! to the same losses from the same weights.

#![allow(clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn ecgnas(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ecgnas"))
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .output()
        .expect("run ecgnas")
}

fn bench_json(extra: &[&str]) -> (Output, Value) {
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("bench.json");
    let json_arg = json.to_string_lossy().to_string();
    let mut args = vec![
        "bench",
        "train",
        "--batch",
        "4,1",
        "--repeats",
        "1",
        "--secs",
        "0.05",
        "--trace",
        "6",
        "--candidates",
        "2",
        "--rounds",
        "2",
        "--json",
        &json_arg,
    ];
    args.extend_from_slice(extra);
    let out = ecgnas(&args);
    let value = std::fs::read_to_string(&json)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    (out, value)
}

#[test]
fn the_benchmark_times_every_network_and_traces_its_loss() {
    let (out, json) = bench_json(&["--networks", "reference,reference-dwsep,candidates"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let speed = json["speed"].as_array().expect("speed rows");
    // 2 reference networks + 2 candidates, at 2 batch sizes.
    assert_eq!(speed.len(), 8, "{json}");
    for row in speed {
        let rate = row["candle"]["steps_per_s"].as_f64().expect("rate");
        assert!(rate.is_finite() && rate > 0.0, "{row}");
        assert!(row["torch"].is_null(), "no PyTorch was asked for: {row}");
        assert_eq!(row["ratios"].as_array().map(Vec::len), Some(0), "{row}");
    }
    for parity in json["parity"].as_array().expect("parity rows") {
        let losses: Vec<f64> = parity["candle"]
            .as_array()
            .expect("trace")
            .iter()
            .filter_map(Value::as_f64)
            .collect();
        assert_eq!(losses.len(), 6, "{parity}");
        // Mean BCE from PyTorch's initialisation starts near ln 2, and AdamW on one fixed
        // batch brings it down.
        assert!((losses[0] - std::f64::consts::LN_2).abs() < 0.2, "{parity}");
        assert!(losses[5] < losses[0], "{parity}");
    }
    assert!(stdout.contains("| reference | 4 |"), "{stdout}");
}

#[test]
fn pytorch_trains_the_same_networks_to_the_same_losses() {
    let Some(python) = std::env::var_os("ECGNAS_TORCH_PYTHON").map(PathBuf::from) else {
        eprintln!(
            "SKIPPED: set ECGNAS_TORCH_PYTHON to a Python with torch to compare with PyTorch"
        );
        return;
    };
    let python = python.to_string_lossy().to_string();
    let (out, json) = bench_json(&["--pytorch", &python]);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for row in json["speed"].as_array().expect("speed rows") {
        assert!(
            row["torch"]["steps_per_s"].as_f64().unwrap_or(0.0) > 0.0,
            "{row}"
        );
        // One ratio per round, each from the two sides of that round.
        let ratios: Vec<f64> = row["ratios"]
            .as_array()
            .expect("ratios")
            .iter()
            .filter_map(Value::as_f64)
            .collect();
        assert_eq!(ratios.len(), 2, "{row}");
        assert!(ratios.iter().all(|r| r.is_finite() && *r > 0.0), "{row}");
    }
    for parity in json["parity"].as_array().expect("parity rows") {
        let pairs: Vec<(f64, f64)> = parity["candle"]
            .as_array()
            .expect("candle trace")
            .iter()
            .zip(parity["torch"].as_array().expect("torch trace"))
            .filter_map(|(c, t)| Some((c.as_f64()?, t.as_f64()?)))
            .collect();
        assert_eq!(pairs.len(), 6, "{parity}");
        // The same function, weights, data and optimizer: equal up to f32 rounding at every step.
        for (step, (c, t)) in pairs.iter().enumerate() {
            assert!(
                (c - t).abs() < 1e-4,
                "{} step {step}: candle {c}, torch {t}",
                parity["network"]
            );
        }
    }
}

#[test]
fn bad_arguments_get_one_clear_error() {
    let out = ecgnas(&["bench", "train", "--networks", "resnet"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown network \"resnet\""), "{err}");

    if !cfg!(feature = "cuda") {
        let out = ecgnas(&[
            "bench",
            "train",
            "--device",
            "cuda",
            "--networks",
            "reference",
        ]);
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("built without CUDA"), "{err}");
    }

    let out = ecgnas(&[
        "bench",
        "train",
        "--networks",
        "reference",
        "--batch",
        "2",
        "--repeats",
        "1",
        "--secs",
        "0.01",
        "--trace",
        "0",
        "--pytorch",
        "/nonexistent/python",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/python"), "{err}");
}
