//! A model from the default search on real CinC 2017 records, exported, verified (tract
//! against candle and against the firmware's int8 code), checked by the official ONNX
//! checker and by onnxruntime against `ecgnas predict`, and refused when its files are bad.

#![allow(clippy::print_stderr)]

mod common;

use common::{ecgnas, run, stderr};

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use ecgnas::data::resample::resample;
use ecgnas::data::source::{load, RecordSource};

/// One small search on the CinC 2017 records, shared by the tests: its run folder, the data
/// and the best trial's id.
fn searched() -> Option<&'static (PathBuf, PathBuf, u64)> {
    static RUN: OnceLock<Option<(PathBuf, PathBuf, u64)>> = OnceLock::new();
    RUN.get_or_init(|| {
        let data = common::shared_data("cinc2017")?;
        let dir = tempfile::tempdir().expect("temp dir").keep();
        let out = dir.join("run");
        let o = run(ecgnas()
            .args([
                "search", "--task", "cinc2017", "--trials", "2", "--epochs", "1", "--json",
            ])
            // 15 s windows of the default space are slow on the nRF52840: train them anyway.
            .args(["--max-latency-factor", "10"])
            .arg("--data")
            .arg(&data)
            .arg("--out")
            .arg(&out));
        assert!(o.status.success(), "search failed: {}", stderr(&o));
        let result: serde_json::Value = serde_json::from_slice(&o.stdout).expect("search --json");
        let best = result["best"]["id"].as_u64().expect("a feasible trial");
        Some((out, data, best))
    })
    .as_ref()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create the copy");
    for entry in std::fs::read_dir(from).expect("read the model folder") {
        let entry = entry.expect("a folder entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy a file");
    }
}

#[test]
fn search_exports_every_file_and_verify_passes_on_real_records() {
    let Some((run_dir, data, _)) = searched() else {
        return;
    };
    let best = run_dir.join("best");
    for file in [
        "manifest.json",
        "model.safetensors",
        "model.onnx",
        "model.int8.onnx",
        "model.int8.safetensors",
    ] {
        assert!(best.join(file).is_file(), "{file} missing");
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(best.join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["task"], "cinc2017");
    assert_eq!(manifest["input"]["fs"], 250.0);
    assert_eq!(manifest["labels"].as_array().unwrap().len(), 4);

    let o = run(ecgnas()
        .arg("verify")
        .arg(&best)
        .arg("--data")
        .arg(data)
        .arg("--json"));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("verify --json: {e}: {}", stderr(&o)));
    eprintln!("{report:#}");
    assert!(report["windows"].as_u64().unwrap() >= 100, "{report}");
    let f32_diff = report["f32_max_abs_diff"].as_f64().unwrap();
    assert!(f32_diff <= 1e-4, "tract vs candle {f32_diff}");
    assert_eq!(report["f32_ok"], true);
    assert!(
        report["int8_label_agreement"].as_f64().unwrap() >= 0.95,
        "{report}"
    );
    assert!(
        report["int8_max_step_diff"].as_i64().unwrap() <= 2,
        "{report}"
    );
    assert!(report["quality"]["loss"].is_number(), "{report}");
    assert_eq!(
        o.status.code(),
        Some(if report["passed"] == true { 0 } else { 1 })
    );
}

#[test]
fn export_of_a_named_trial_writes_a_loadable_model() {
    let Some((run_dir, _, best_id)) = searched() else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let model = out.path().join("model");
    let o = run(ecgnas()
        .arg("export")
        .arg(run_dir)
        .arg("--candidate")
        .arg(best_id.to_string())
        .arg("--out")
        .arg(&model));
    assert!(o.status.success(), "{}", stderr(&o));
    // Retrained with the trial's seed: the same weights as the search's best.
    let load = |p: PathBuf| {
        candle_core::safetensors::load(p, &candle_core::Device::Cpu).expect("safetensors")
    };
    let a = load(model.join("model.safetensors"));
    let b = load(run_dir.join("best/model.safetensors"));
    assert_eq!(a.len(), b.len());
    for (name, t) in &a {
        let x = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let y = b[name].flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(x, y, "{name}: export retrains deterministically");
    }
    let o = run(ecgnas().arg("verify").arg(&model).args(["--windows", "20"]));
    assert!(
        o.status.code() == Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

/// The first record of the data as a CSV at the model's rate.
fn record_csv(data: &Path, fs: f64, dir: &Path) -> PathBuf {
    let record = load(&RecordSource::Wfdb(data.join("A00001.hea")), None).expect("A00001");
    let lead = resample(&record.leads[0].samples, record.fs, fs).expect("resampled");
    let path = dir.join("A00001.csv");
    let text: String = lead.iter().map(|v| format!("{v}\n")).collect();
    std::fs::write(&path, format!("ecg\n{text}")).expect("write the CSV");
    path
}

fn python() -> Option<String> {
    let python = std::env::var("ECGNAS_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&python)
        .args(["-c", "import onnx, onnxruntime, numpy"])
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(python);
    }
    assert!(
        std::env::var_os("ECGNAS_REQUIRE_ONNX").is_none(),
        "ECGNAS_REQUIRE_ONNX is set but {python} lacks onnx/onnxruntime"
    );
    eprintln!("SKIPPED: {python} lacks onnx and onnxruntime (pip install onnx onnxruntime numpy)");
    None
}

#[test]
fn onnx_checker_and_onnxruntime_agree_with_ecgnas_predict() {
    let Some((run_dir, data, _)) = searched() else {
        return;
    };
    let Some(python) = python() else {
        return;
    };
    let best = run_dir.join("best");
    let dir = tempfile::tempdir().unwrap();
    let csv = record_csv(data, 250.0, dir.path());
    let mut outputs = Vec::new();
    for precision in ["f32", "int8"] {
        let o = run(ecgnas()
            .arg("predict")
            .arg(&best)
            .arg("--input")
            .arg(&csv)
            .args(["--precision", precision, "--stride", "500", "--json"]));
        assert!(o.status.success(), "{}", stderr(&o));
        let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert!(json["windows"].as_array().unwrap().len() >= 3, "{json}");
        let path = dir.path().join(format!("{precision}.json"));
        std::fs::write(&path, &o.stdout).unwrap();
        outputs.push(path);
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/check_onnx.py");
    let o = run(Command::new(python)
        .arg(script)
        .arg(&best)
        .arg("--csv")
        .arg(&csv)
        .arg("--f32")
        .arg(&outputs[0])
        .arg("--int8")
        .arg(&outputs[1]));
    let report = String::from_utf8_lossy(&o.stdout);
    eprintln!("{report}{}", stderr(&o));
    assert!(o.status.success(), "check_onnx.py failed: {report}");
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["onnx_checker"], "ok");
    assert_eq!(report["int8_onnx_checker"], "ok");
    assert!(report["f32_max_abs_diff"].as_f64().unwrap() <= 1e-4);
}

#[test]
fn bad_model_folders_and_inputs_are_clear_errors() {
    let Some((run_dir, data, _)) = searched() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let expect_error = |args: &[&std::ffi::OsStr], needles: &[&str]| {
        let o = run(ecgnas().args(args));
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        for n in needles {
            assert!(err.contains(n), "{args:?}: {n:?} not in {err}");
        }
        assert!(!err.contains("panicked"), "{err}");
    };
    let os = |s: &str| std::ffi::OsString::from(s);

    // A corrupted int8 model: one byte flipped.
    let corrupt = dir.path().join("corrupt");
    copy_dir(&run_dir.join("best"), &corrupt);
    let path = corrupt.join("model.int8.safetensors");
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() - 3;
    bytes[at] ^= 0x55;
    std::fs::write(&path, bytes).unwrap();
    expect_error(
        &[os("verify").as_os_str(), corrupt.as_os_str()],
        &["model.int8.safetensors", "SHA-256"],
    );

    // A missing file.
    let missing = dir.path().join("missing");
    copy_dir(&run_dir.join("best"), &missing);
    std::fs::remove_file(missing.join("model.onnx")).unwrap();
    expect_error(
        &[os("verify").as_os_str(), missing.as_os_str()],
        &["model.onnx"],
    );

    // A manifest whose candidate disagrees with the weights (one more block channel).
    let mismatch = dir.path().join("mismatch");
    copy_dir(&run_dir.join("best"), &mismatch);
    let manifest_path = mismatch.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    let channels = &mut manifest["candidate"]["architecture"]["blocks"][0]["channels"];
    *channels = serde_json::json!(channels.as_u64().unwrap() + 4);
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();
    expect_error(
        &[os("verify").as_os_str(), mismatch.as_os_str()],
        &["model.safetensors", "do not match"],
    );

    // A CSV at the wrong sampling rate.
    let csv = record_csv(data, 250.0, dir.path());
    let best = run_dir.join("best");
    expect_error(
        &[
            os("predict").as_os_str(),
            best.as_os_str(),
            os("--input").as_os_str(),
            csv.as_os_str(),
            os("--fs").as_os_str(),
            os("360").as_os_str(),
        ],
        &["A00001.csv", "360 Hz", "250 Hz"],
    );
    // Not a model folder.
    expect_error(
        &[
            os("predict").as_os_str(),
            dir.path().as_os_str(),
            os("--input").as_os_str(),
            csv.as_os_str(),
        ],
        &["manifest.json"],
    );
}

fn qemu_available() -> bool {
    let ok = Command::new("qemu-system-arm")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("ECGNAS_REQUIRE_QEMU").is_none(),
            "ECGNAS_REQUIRE_QEMU is set but qemu-system-arm is missing"
        );
        eprintln!("SKIPPED: qemu-system-arm is missing (apt-get install qemu-system-arm)");
    }
    ok
}

#[test]
fn deploy_on_qemu_is_bit_exact_on_200_real_windows() {
    let Some((run_dir, data, _)) = searched() else {
        return;
    };
    if !qemu_available() {
        return;
    }
    let o = run(ecgnas()
        .arg("deploy")
        .arg(run_dir.join("best"))
        .args(["--target", "qemu", "--vectors", "200", "--json", "--data"])
        .arg(data));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("deploy --json: {e}: {}", stderr(&o)));
    eprintln!("{report:#}");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(report["bit_exact"], true);
    assert_eq!(report["vectors"], 200);
    assert_eq!(report["mismatches"], 0);
    assert_eq!(report["cost_unit"], "instructions");
    assert!(report["measured_cost"].as_f64().unwrap() > 0.0);
    // The arena the host planned is the one the binary holds in its static RAM.
    let arena = report["arena_bytes"].as_u64().unwrap();
    assert_eq!(arena, report["predicted_arena_bytes"].as_u64().unwrap());
    assert!(report["sram_bytes"].as_u64().unwrap() > arena);
    let macs: u64 = report["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["macs"].as_u64().unwrap())
        .sum();
    assert!(macs > 0);
}

#[test]
fn evaluate_reports_metrics_intervals_and_predictions_over_records() {
    let Some((run_dir, data, _)) = searched() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let predictions = dir.path().join("predictions.csv");
    let o = run(ecgnas()
        .arg("evaluate")
        .arg(run_dir.join("best"))
        .args([
            "--task",
            "cinc2017",
            "--json",
            "--bootstrap",
            "50",
            "--data",
        ])
        .arg(data)
        .arg("--predictions")
        .arg(&predictions));
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let n = report["n_examples"].as_u64().unwrap();
    // Every labelled CinC 2017 record of the test split is one example (15% of the records).
    assert_eq!(n, report["n_records"].as_u64().unwrap());
    assert!(n >= 30, "{report}");
    let f1 = report["metrics"]["challenge_f1"].as_f64().unwrap();
    let [lo, hi] = [0, 1].map(|i| report["ci95"]["primary"][i].as_f64().unwrap());
    assert!(
        lo <= hi && lo <= f1 + 1e-9 && f1 <= hi + 1e-9,
        "{f1} not in [{lo}, {hi}]"
    );
    let matrix = report["confusion"]["matrix"].as_array().unwrap();
    let total: u64 = matrix
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter().map(|v| v.as_u64().unwrap()))
        .sum();
    assert_eq!(total, n);
    let rows = std::fs::read_to_string(&predictions).unwrap();
    assert_eq!(rows.lines().count() as u64, n + 1);
    assert!(rows.starts_with("record,position,true,predicted,p_N,p_A,p_O,p_~"));

    // No record scored trained the model or chose its epoch, and none of those is left out
    // of the manifest's list: training, validation and test records partition the folder.
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("best/manifest.json")).unwrap())
            .unwrap();
    let trained_on: Vec<&str> = manifest["trained_on"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let scored: Vec<&str> = rows
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert!(scored.iter().all(|r| !trained_on.contains(r)));
    let in_folder = std::fs::read_dir(data)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "hea"))
        })
        .count();
    assert_eq!(trained_on.len() + scored.len(), in_folder);

    // Every record, or one that trained it: refused, naming the reason.
    for extra in [["--split", "all"], ["--records", trained_on[0]]] {
        let o = run(ecgnas()
            .arg("evaluate")
            .arg(run_dir.join("best"))
            .args(["--task", "cinc2017", "--data"])
            .arg(data)
            .args(extra));
        assert_eq!(o.status.code(), Some(2), "{extra:?}");
        assert!(stderr(&o).contains("trained"), "{}", stderr(&o));
    }

    // A subset of test records, and a record that is not there.
    let o = run(ecgnas()
        .arg("evaluate")
        .arg(run_dir.join("best"))
        .args(["--task", "cinc2017", "--json", "--records"])
        .arg(format!("{},{}", scored[0], scored[1]))
        .arg("--data")
        .arg(data));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["n_records"], 2);
    let o = run(ecgnas()
        .arg("evaluate")
        .arg(run_dir.join("best"))
        .args(["--task", "cinc2017", "--records", "Z99999", "--data"])
        .arg(data));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("Z99999"), "{}", stderr(&o));
}
