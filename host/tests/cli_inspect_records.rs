//! `ecgnas data inspect <DIR|RECORD>` without `--task`: per-record statistics of WFDB records,
//! checked against the `reference.json` that PhysioNet's own reader (`wfdb`) wrote for every
//! shared folder, and on small generated records.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use ecgnas::data::wfdb::annotation::encode as encode_annotations;
use ecgnas::data::wfdb::signal::encode;
use ecgnas::data::wfdb::{Annotation, AnnotationCode, SignalFormat};
use serde::Deserialize;
use serde_json::Value;

mod common;
use common::shared_data;

// The documented --json shape, read back with unknown fields refused, so that a change of
// schema fails here.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Inspection {
    records: Vec<RecordRow>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordRow {
    id: String,
    fs: f64,
    n_samples: u64,
    signals: Vec<SignalRow>,
    annotations: AnnotationRow,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignalRow {
    name: String,
    units: String,
    format: u16,
    gain: f64,
    baseline: i64,
    adc_res: u32,
    adc_zero: i64,
    min: Option<i64>,
    max: Option<i64>,
    sum: i64,
    sum_sq: u64,
    invalid: u64,
    checksum_ok: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnnotationRow {
    counts: BTreeMap<String, u64>,
    aux_counts: BTreeMap<String, u64>,
}

/// Runs `ecgnas data inspect <args>`; returns (exit code, stdout, stderr).
fn inspect(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ecgnas"))
        .args(["data", "inspect"])
        .args(args)
        .output()
        .expect("ecgnas runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn inspect_json(data: &Path) -> Inspection {
    let (code, stdout, stderr) = inspect(&[data.to_str().expect("utf-8 path"), "--json"]);
    assert_eq!(code, 0, "{stderr}");
    serde_json::from_str(&stdout).expect("JSON of the documented shape")
}

fn reference(folder: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(folder.join("reference.json")).expect("reference.json");
    let json: Value = serde_json::from_str(&text).expect("reference.json is JSON");
    json["records"].as_array().expect("records").clone()
}

fn counts(value: &Value) -> BTreeMap<String, u64> {
    serde_json::from_value(value.clone()).expect("a map of counts")
}

/// Asserts that one inspected record equals its reference entry.
fn assert_matches_reference(got: &RecordRow, want: &Value) {
    let id = want["record"].as_str().expect("record name");
    assert_eq!(got.id, id);
    assert_eq!(Some(got.fs), want["fs"].as_f64(), "{id}: fs");
    assert_eq!(
        Some(got.n_samples),
        want["n_samples"].as_u64(),
        "{id}: n_samples"
    );
    let channels = want["channels"].as_array().expect("channels");
    assert_eq!(got.signals.len(), channels.len(), "{id}: signal count");
    for (i, (s, ch)) in got.signals.iter().zip(channels).enumerate() {
        let at = |key: &str| &want[key][i];
        assert_eq!(
            Some(s.name.as_str()),
            at("sig_name").as_str(),
            "{id}/{i}: name"
        );
        assert_eq!(Some(s.sum), ch["sum"].as_i64(), "{id}/{i}: sum");
        assert_eq!(Some(s.sum_sq), ch["sum_sq"].as_u64(), "{id}/{i}: sum_sq");
        assert_eq!(s.min, ch["min"].as_i64(), "{id}/{i}: min");
        assert_eq!(s.max, ch["max"].as_i64(), "{id}/{i}: max");
        assert_eq!(
            Some(s.invalid),
            ch["n_invalid"].as_u64(),
            "{id}/{i}: invalid"
        );
        // The reference writes `false` where the header has no checksum; ecgnas writes null.
        let want_ok = if at("checksum").is_null() {
            None
        } else {
            at("checksum_ok").as_bool()
        };
        assert_eq!(s.checksum_ok, want_ok, "{id}/{i}: checksum_ok");
        assert_eq!(
            Some(s.format.to_string().as_str()),
            at("fmt").as_str(),
            "{id}/{i}: format"
        );
        assert_eq!(Some(s.gain), at("adc_gain").as_f64(), "{id}/{i}: gain");
        assert_eq!(
            Some(s.baseline),
            at("baseline").as_i64(),
            "{id}/{i}: baseline"
        );
        assert_eq!(
            Some(s.adc_zero),
            at("adc_zero").as_i64(),
            "{id}/{i}: adc_zero"
        );
        assert_eq!(
            Some(u64::from(s.adc_res)),
            at("adc_res").as_u64(),
            "{id}/{i}: adc_res"
        );
    }
    match want.get("annotations") {
        Some(ann) => {
            assert_eq!(
                got.annotations.counts,
                counts(&ann["counts"]),
                "{id}: counts"
            );
            assert_eq!(
                got.annotations.aux_counts,
                counts(&ann["aux_counts"]),
                "{id}: aux_counts"
            );
        }
        None => {
            assert!(got.annotations.counts.is_empty(), "{id}: no .atr, counts");
            assert!(got.annotations.aux_counts.is_empty(), "{id}: no .atr, aux");
        }
    }
}

/// Inspects a whole shared folder and compares every record with `reference.json`.
fn folder_matches_reference(name: &str) {
    let Some(folder) = shared_data(name) else {
        return;
    };
    let report = inspect_json(&folder);
    let want = reference(&folder);
    assert_eq!(report.records.len(), want.len(), "{name}: record count");
    for (got, want) in report.records.iter().zip(&want) {
        assert_matches_reference(got, want);
    }
}

#[test]
fn mitdb_matches_reference() {
    folder_matches_reference("mitdb");
}

#[test]
fn cpsc2021_matches_reference() {
    folder_matches_reference("cpsc2021");
}

#[test]
fn cinc2017_matches_reference() {
    folder_matches_reference("cinc2017");
}

#[test]
fn cinc2021_matches_reference() {
    folder_matches_reference("cinc2021");
}

#[test]
fn one_record_by_its_header_path() {
    let Some(mitdb) = shared_data("mitdb") else {
        return;
    };
    let want = reference(&mitdb);
    let want_100 = want
        .iter()
        .find(|r| r["record"] == "100")
        .expect("100 in reference");
    for path in [mitdb.join("100.hea"), mitdb.join("100")] {
        let report = inspect_json(&path);
        assert_eq!(report.records.len(), 1, "{}", path.display());
        assert_matches_reference(&report.records[0], want_100);
    }
    // The documented example: record 100's first lead.
    let report = inspect_json(&mitdb.join("100.hea"));
    let r = &report.records[0];
    let s = &r.signals[0];
    assert_eq!((r.fs, r.n_samples), (360.0, 650_000));
    assert_eq!((s.name.as_str(), s.units.as_str()), ("MLII", "mV"));
    assert_eq!((s.format, s.gain, s.baseline), (212, 200.0, 1024));
    assert_eq!((s.adc_res, s.adc_zero, s.invalid), (11, 1024, 0));
    assert_eq!(s.checksum_ok, Some(true));
    assert_eq!(r.annotations.counts.get("N"), Some(&2239));
    assert_eq!(r.annotations.aux_counts.get("(N"), Some(&1));

    // The table: one line per record, an indented line per signal.
    let (code, table, stderr) = inspect(&[mitdb.join("100.hea").to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2 + 1 + 2, "{table}");
    assert!(lines[2].starts_with("100 "), "{table}");
    assert!(
        lines[2].contains("1805.56") && lines[2].contains("N 2239"),
        "{table}"
    );
    assert!(
        lines[3].starts_with("  MLII") && lines[4].starts_with("  V5"),
        "{table}"
    );
    assert!(
        lines[3].contains(" 212 ") && lines[3].ends_with("ok"),
        "{table}"
    );
}

/// Writes a one-signal format-16 record; `checksum` and `atr` are optional.
fn write_record(dir: &Path, name: &str, values: &[i32], checksum: bool, atr: Option<&[u8]>) {
    let sum: i64 = values.iter().map(|&v| i64::from(v)).sum();
    let tail = if checksum {
        format!(" {} {} 0 ECG", values[0], sum.rem_euclid(65536))
    } else {
        String::new()
    };
    let header = format!(
        "{name} 1 250 {}\r\n# a comment\r\n{name}.dat 16 100(-3)/uV 16 5{tail}\r\n",
        values.len()
    );
    std::fs::write(dir.join(format!("{name}.hea")), header).expect("header");
    std::fs::write(
        dir.join(format!("{name}.dat")),
        encode(SignalFormat::F16, values),
    )
    .expect("signal");
    if let Some(bytes) = atr {
        std::fs::write(dir.join(format!("{name}.atr")), bytes).expect("annotations");
    }
}

fn annotation(sample: i64, symbol: &str, aux: &str, aux_had_nul: bool) -> Annotation {
    Annotation {
        sample,
        code: AnnotationCode::from_symbol(symbol).expect("a standard symbol"),
        subtype: 0,
        chan: 0,
        num: 0,
        aux: aux.to_string(),
        aux_had_nul,
    }
}

#[test]
fn generated_records_without_atr_or_checksum() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Record a: no checksum, no .atr, two invalid samples (-32768 in format 16).
    let a = [7, -32768, 32767, -5, -32768, 0];
    write_record(dir.path(), "a", &a, false, None);
    // Record b: a checksum and an .atr whose aux notes are NUL-padded.
    let b = [1, 2, 3, 4];
    let atr = encode_annotations(&[
        annotation(0, "+", "(N", true),
        annotation(1, "N", "", false),
        annotation(2, "V", "", false),
        annotation(3, "+", "(AFIB", false),
        annotation(3, "N", "", false),
    ]);
    write_record(dir.path(), "b", &b, true, Some(&atr));

    let report = inspect_json(dir.path());
    assert_eq!(report.records.len(), 2);
    let ra = &report.records[0];
    assert_eq!((ra.id.as_str(), ra.fs, ra.n_samples), ("a", 250.0, 6));
    let s = &ra.signals[0];
    assert_eq!(
        (s.units.as_str(), s.gain, s.baseline, s.adc_zero),
        ("uV", 100.0, -3, 5)
    );
    assert_eq!((s.format, s.adc_res), (16, 16));
    assert_eq!((s.min, s.max), (Some(-32768), Some(32767)));
    let sum: i64 = a.iter().map(|&v| i64::from(v)).sum();
    let sum_sq: u64 = a
        .iter()
        .map(|&v| (i64::from(v) * i64::from(v)) as u64)
        .sum();
    assert_eq!((s.sum, s.sum_sq, s.invalid), (sum, sum_sq, 2));
    assert_eq!(s.checksum_ok, None, "no checksum in the header: null");
    assert!(ra.annotations.counts.is_empty() && ra.annotations.aux_counts.is_empty());

    let rb = &report.records[1];
    let s = &rb.signals[0];
    assert_eq!(
        (s.name.as_str(), s.sum, s.sum_sq, s.invalid),
        ("ECG", 10, 30, 0)
    );
    assert_eq!(s.checksum_ok, Some(true));
    let want: BTreeMap<String, u64> = [("+", 2), ("N", 2), ("V", 1)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    assert_eq!(rb.annotations.counts, want);
    let want: BTreeMap<String, u64> = [("(AFIB", 1), ("(N", 1)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    assert_eq!(rb.annotations.aux_counts, want, "NUL padding stripped");

    // The table says when a record has no .atr file.
    let (code, table, stderr) = inspect(&[dir.path().to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{stderr}");
    let line_a = table
        .lines()
        .find(|l| l.starts_with("a "))
        .expect("row of a");
    assert!(line_a.contains("no .atr"), "{table}");
    assert!(table.contains("(AFIB 1"), "{table}");
    assert!(
        table.lines().any(|l| l.trim_end().ends_with("none")),
        "{table}"
    );
}

#[test]
fn csv_and_synthetic_are_refused_without_task() {
    let dir = tempfile::tempdir().expect("temp dir");
    let csv = dir.path().join("rec.csv");
    std::fs::write(&csv, "I,II\n0.1,0.2\n0.3,0.4\n").expect("csv");
    for args in [
        vec![dir.path().to_str().expect("utf-8")],
        vec![csv.to_str().expect("utf-8"), "--fs", "250"],
    ] {
        let (code, _, stderr) = inspect(&args);
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains("rec.csv"), "names the file: {stderr}");
        assert!(stderr.contains("--task"), "says what to do: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let (code, _, stderr) = inspect(&["synthetic", "--json"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--task"), "{stderr}");
}
