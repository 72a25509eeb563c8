//! A short `--strategy darts` search on synthetic data: the relaxed phase runs, the discrete
//! network and its neighbours are trained and stored like any trial, and the chosen network
//! fits the profile.

use std::process::Command;

#[test]
fn darts_search_records_trials_and_its_choice_fits_the_profile() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("run");
    let space_path = dir.path().join("space.json");
    // A small space (two options per relaxed decision, narrow blocks) keeps the test short.
    let space = serde_json::json!({
        "version": 1,
        "preprocessing": {
            "window": {"fixed": {"length_s": [10.0]}},
            "band": ["none"],
            "decimation": [4],
            "baseline": ["none"],
            "normalisation": ["z_score"]
        },
        "architecture": {
            "n_blocks": [2],
            "block": {
                "kind": ["standard", "depthwise_separable"],
                "channels": [8],
                "kernel": [3, 5],
                "stride": [1],
                "dilation": [1, 2],
                "activation": ["relu", "relu6"],
                "skip": [false, true],
                "pool": ["max2"]
            },
            "head": {"hidden": [null], "outputs": 6, "output": "softmax"}
        }
    });
    std::fs::write(&space_path, space.to_string()).expect("space file");
    let output = Command::new(env!("CARGO_BIN_EXE_ecgnas"))
        .args([
            "search",
            "--strategy",
            "darts",
            "--profile",
            "nrf52840",
            "--trials",
            "2",
            "--epochs",
            "1",
            "--darts-epochs",
            "2",
            "--darts-steps",
            "3",
            "--synthetic-windows",
            "200",
            "--seed",
            "2",
            "--json",
        ])
        .arg("--space")
        .arg(&space_path)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("darts epoch  1"), "{stderr}");
    assert!(stderr.contains("collapse check"), "{stderr}");

    use ecgnas::store::{SqliteStore, TrialStore};
    let mut store = SqliteStore::open(&out.join("trials.sqlite")).expect("store");
    let run = store
        .runs()
        .expect("runs")
        .into_iter()
        .next()
        .expect("a run");
    assert_eq!(run.strategy, "darts");
    store.create_or_open_run(&run).expect("open run");
    let trials: Vec<_> = store
        .trials()
        .expect("trials")
        .into_iter()
        .filter(|t| t.status.is_finished())
        .collect();
    assert_eq!(trials.len(), 2, "the requested number of trials");

    // The first trial is the discrete network saved by the relaxed phase, and it fits.
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("darts.json")).expect("darts.json"))
            .expect("json");
    let chosen = &saved["discrete"]["candidate"];
    let first = trials.iter().find(|t| t.trial_id == 0).expect("trial 0");
    assert_eq!(&first.candidate, chosen);
    assert_eq!(first.feasible, Some(true), "{:?}", first.metrics);
    assert!(first.quality.is_some());
    let profile = ecgnas::cost::Profile::load("nrf52840").expect("profile");
    let candidate: ecgnas::space::Candidate =
        serde_json::from_value(chosen.clone()).expect("candidate");
    let cost = ecgnas::cost::estimate(&candidate, &profile, 1).expect("cost");
    assert!(cost.fits_memory, "{:?}", cost.violations);
    assert_eq!(candidate.architecture.blocks.len(), 2);
    assert!(
        candidate
            .architecture
            .blocks
            .iter()
            .filter(|b| b.skip)
            .count()
            <= 1,
        "the cap allows half the blocks a shortcut"
    );

    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("--json output");
    assert_eq!(json["trials"], 2);
    assert!(json["best"].is_object());
    assert!(out.join("best").join("candidate.json").is_file());
}
