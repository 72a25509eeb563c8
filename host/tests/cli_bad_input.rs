//! Bad input gets one clear error naming the file and the problem, and exit code 2.

use std::path::Path;
use std::process::Command;

use ecgnas::data::wfdb::signal::encode;
use ecgnas::data::wfdb::SignalFormat;

/// Runs `ecgnas data inspect <data> --task <task>`; returns (exit code, stderr).
fn inspect(data: &Path, task: &str, extra: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ecgnas"))
        .args(["data", "inspect"])
        .arg(data)
        .args(["--task", task])
        .args(extra)
        .output()
        .expect("ecgnas runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Asserts exit code 2, no panic, and a message naming `file` and containing `problem`.
fn assert_clear_error(data: &Path, task: &str, file: &str, problem: &str) {
    let (code, _, stderr) = inspect(data, task, &[]);
    assert_eq!(code, 2, "exit code, stderr:\n{stderr}");
    assert!(!stderr.contains("panicked"), "panic:\n{stderr}");
    assert!(
        stderr.contains(file),
        "message should name {file}:\n{stderr}"
    );
    assert!(
        stderr.to_lowercase().contains(&problem.to_lowercase()),
        "message should say {problem:?}:\n{stderr}"
    );
    assert_eq!(stderr.matches("error:").count(), 1, "one error:\n{stderr}");
}

/// A folder with one CinC-2017-style record `A00001` (format 16, one signal, 3000 samples at
/// 300 Hz) and its label file.
fn cinc_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let values: Vec<i32> = (0..3000).map(|i| ((i * 37) % 400) - 200).collect();
    write_record(dir.path(), "A00001", "16", &values, 3000);
    std::fs::write(dir.path().join("REFERENCE.csv"), "A00001,N\n").expect("labels");
    dir
}

fn write_record(dir: &Path, name: &str, format: &str, values: &[i32], n_samples: usize) {
    let header = format!(
        "{name} 1 300 {n_samples}\n{name}.dat {format} 1000/mV 16 0 {} 0 0 ECG\n",
        values[0]
    );
    std::fs::write(dir.join(format!("{name}.hea")), header).expect("header");
    let bytes = encode(SignalFormat::F16, values);
    std::fs::write(dir.join(format!("{name}.dat")), bytes).expect("signal");
}

#[test]
fn a_good_record_is_read() {
    let dir = cinc_folder();
    let (code, stdout, stderr) = inspect(dir.path(), "cinc2017", &["--json"]);
    assert_eq!(code, 0, "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(json["records"][0]["n_samples"], 3000);
    assert_eq!(json["totals"]["N"], 1);
}

#[test]
fn missing_signal_file() {
    let dir = cinc_folder();
    std::fs::remove_file(dir.path().join("A00001.dat")).expect("remove");
    assert_clear_error(dir.path(), "cinc2017", "A00001.dat", "No such file");
}

#[test]
fn truncated_signal_file() {
    let dir = cinc_folder();
    let path = dir.path().join("A00001.dat");
    let bytes = std::fs::read(&path).expect("read");
    std::fs::write(&path, &bytes[..bytes.len() - 101]).expect("truncate");
    assert_clear_error(
        dir.path(),
        "cinc2017",
        "A00001.dat",
        "signal file ends after 5899 bytes",
    );
}

#[test]
fn header_disagreeing_with_file_size() {
    let dir = cinc_folder();
    let path = dir.path().join("A00001.dat");
    let mut bytes = std::fs::read(&path).expect("read");
    bytes.extend(vec![0u8; 400]);
    std::fs::write(&path, bytes).expect("extend");
    assert_clear_error(
        dir.path(),
        "cinc2017",
        "A00001.dat",
        "header disagrees with the file size",
    );
}

#[test]
fn unknown_signal_format() {
    let dir = cinc_folder();
    let header = "A00001 1 300 3000\nA00001.dat 516 1000/mV 16 0 0 0 0 ECG\n";
    std::fs::write(dir.path().join("A00001.hea"), header).expect("header");
    assert_clear_error(
        dir.path(),
        "cinc2017",
        "A00001.hea",
        "signal format 516 is not supported",
    );
}

#[test]
fn malformed_header_line() {
    let dir = cinc_folder();
    let header = "A00001 1 300 3000\nA00001.dat 16 1000/mV 16 zero 0 0 0 ECG\n";
    std::fs::write(dir.path().join("A00001.hea"), header).expect("header");
    assert_clear_error(
        dir.path(),
        "cinc2017",
        "A00001.hea, line 2",
        "bad ADC zero \"zero\"",
    );
}

#[test]
fn non_utf8_header() {
    let dir = cinc_folder();
    let mut header = b"A00001 1 300 3000\nA00001.dat 16 1000/mV 16 0 0 0 0 ".to_vec();
    header.extend([0xC3, 0x28, b'\n']);
    std::fs::write(dir.path().join("A00001.hea"), header).expect("header");
    assert_clear_error(dir.path(), "cinc2017", "A00001.hea", "not valid UTF-8");
}

#[test]
fn wrong_sampling_rate() {
    let dir = cinc_folder();
    let header = "A00001 1 3 3000\nA00001.dat 16 1000/mV 16 0 0 0 0 ECG\n";
    std::fs::write(dir.path().join("A00001.hea"), header).expect("header");
    assert_clear_error(
        dir.path(),
        "cinc2017",
        "A00001.hea",
        "sampling rate 3 Hz is too low",
    );
}

#[test]
fn nan_and_infinite_values_in_csv() {
    for bad in ["NaN", "inf", "-infinity"] {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("A00001.csv");
        std::fs::write(&path, format!("ECG\n0.1\n0.2\n{bad}\n0.3\n")).expect("csv");
        std::fs::write(dir.path().join("REFERENCE.csv"), "A00001,N\n").expect("labels");
        let (code, _, stderr) = inspect(dir.path(), "cinc2017", &["--fs", "300"]);
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains("A00001.csv"), "{stderr}");
        assert!(stderr.contains("line 4"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn empty_folder() {
    let dir = tempfile::tempdir().expect("temp dir");
    let name = dir.path().display().to_string();
    assert_clear_error(dir.path(), "mitdb-aami", &name, "no ECG records found");
}

#[test]
fn missing_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("no-such-record");
    assert_clear_error(&missing, "mitdb-aami", "no-such-record", "no such folder");
}

#[test]
fn missing_annotation_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let values: Vec<i32> = (0..3600).map(|i| (i % 200) - 100).collect();
    let header = "100 1 360 3600\n100.dat 16 200 11 1024 -100 0 0 MLII\n";
    std::fs::write(dir.path().join("100.hea"), header).expect("header");
    std::fs::write(
        dir.path().join("100.dat"),
        encode(SignalFormat::F16, &values),
    )
    .expect("dat");
    assert_clear_error(dir.path(), "mitdb-aami", "100.atr", "No such file");
}

#[test]
fn corrupt_annotation_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let values: Vec<i32> = (0..3600).map(|i| (i % 200) - 100).collect();
    let header = "100 1 360 3600\n100.dat 16 200 11 1024 -100 0 0 MLII\n";
    std::fs::write(dir.path().join("100.hea"), header).expect("header");
    std::fs::write(
        dir.path().join("100.dat"),
        encode(SignalFormat::F16, &values),
    )
    .expect("dat");
    // An N beat, then an AUX note claiming 200 bytes with only 2 present.
    let bytes = [
        ((1u16 << 10) | 5).to_le_bytes(),
        ((63u16 << 10) | 200).to_le_bytes(),
        *b"(N",
    ]
    .concat();
    std::fs::write(dir.path().join("100.atr"), bytes).expect("atr");
    assert_clear_error(
        dir.path(),
        "mitdb-aami",
        "100.atr",
        "runs past the end of the file",
    );
}
