//! The checked-in default model (`models/default`) is what its recorded commands produce:
//! retraining the candidate gives the same weights and int8 model, and the generated Rust
//! module the board binary builds is byte for byte the checked-in one.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::ecgnas;

fn default_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/default")
}

/// Every tensor of a safetensors file by name, in name order (so that a failure names the same
/// tensors on every run).
fn tensors(path: &Path) -> BTreeMap<String, (Vec<usize>, Vec<u8>)> {
    let bytes = std::fs::read(path).expect("a safetensors file");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    st.tensors()
        .into_iter()
        .map(|(name, view)| (name, (view.shape().to_vec(), view.data().to_vec())))
        .collect()
}

#[test]
fn generated_module_matches_the_checked_in_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model.rs");
    let o = ecgnas()
        .arg("deploy")
        .arg(default_dir())
        .arg("--emit-rust")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let generated = std::fs::read_to_string(out).unwrap();
    let checked_in = std::fs::read_to_string(default_dir().join("model.rs")).unwrap();
    assert!(generated.contains("pub static MODEL: Model<'static>"));
    assert_eq!(
        generated, checked_in,
        "regenerate it with the command in models/README.md"
    );
}

#[test]
fn retraining_reproduces_the_default_model() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("default");
    let o = ecgnas()
        .arg("train")
        .arg(default_dir().join("candidate.json"))
        .args([
            "--task",
            "synthetic",
            "--profile",
            "nrf52840",
            "--epochs",
            "8",
        ])
        .args(["--seed", "2", "--synthetic-windows", "2000", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for file in ["model.safetensors", "model.int8.safetensors"] {
        let a = tensors(&out.join(file));
        let b = tensors(&default_dir().join(file));
        assert_eq!(
            a.keys().collect::<Vec<_>>(),
            b.keys().collect::<Vec<_>>(),
            "{file}"
        );
        let differing: Vec<&String> = b
            .keys()
            .filter(|name| a.get(*name) != b.get(*name))
            .collect();
        assert!(
            differing.is_empty(),
            "{file}: {differing:?} differ from the checked-in model (regenerate it with the commands in models/README.md)"
        );
    }
    let manifest = |dir: &Path| -> serde_json::Value {
        let mut m: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap())
                .unwrap();
        // The safetensors headers hold their metadata in no fixed order: hashes may differ.
        m.as_object_mut().unwrap().remove("sha256");
        m
    };
    assert_eq!(manifest(&out), manifest(&default_dir()));
}

#[test]
fn evaluate_scores_the_synthetic_test_split_and_refuses_training_windows() {
    let run = |extra: &[&str]| {
        ecgnas()
            .arg("evaluate")
            .arg(default_dir())
            .args(["--data", "synthetic", "--task", "synthetic", "--json"])
            .args(["--bootstrap", "10"])
            .args(extra)
            .output()
            .expect("ecgnas runs")
    };
    // The model was trained on 2,000 windows: the test split of that set is what its manifest
    // does not list (about 15%), every window scored once.
    let o = run(&[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(default_dir().join("manifest.json")).expect("manifest"),
    )
    .expect("json");
    let trained_on = manifest["trained_on"].as_array().expect("trained_on").len() as u64;
    let scored = report["n_records"].as_u64().expect("n_records");
    assert_eq!(scored + trained_on, 2000);
    assert!((250..=350).contains(&scored), "{scored} test windows");
    assert_eq!(report["n_examples"].as_u64(), Some(scored));
    let auroc = report["metrics"]["macro_auroc"]
        .as_f64()
        .expect("macro AUROC");
    assert!(auroc > 0.6, "macro AUROC {auroc}");
    // Every window, or a set of another size (whose split differs): refused.
    for extra in [&["--split", "all"][..], &["--synthetic-windows", "600"][..]] {
        let o = run(extra);
        assert_eq!(o.status.code(), Some(2), "{extra:?}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("trained"));
    }
}
