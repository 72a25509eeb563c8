//! The WFDB variants PhysioNet serves, on records written by an independent writer:
//! `scripts/make_wfdb_corpus.py` writes them with PhysioNet's Python package `wfdb` (and packs
//! the formats it does not write after signal(5)), then reads them back with `wfdb.rdrecord`.
//! ecgnas must read every digital value exactly as that reader does, and `data inspect` must
//! report the same statistics.
//!
//! Needs `$ECGNAS_PYTHON` (or `python3`) with `wfdb` and `numpy`; skips with a notice without
//! them, unless `ECGNAS_REQUIRE_WFDB` is set.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use ecgnas::data::wfdb::{SignalFormat, WfdbRecord};
use serde_json::Value;

/// The corpus, written once per test binary into a temporary folder.
fn corpus() -> Option<&'static Path> {
    static CORPUS: std::sync::OnceLock<Option<tempfile::TempDir>> = std::sync::OnceLock::new();
    CORPUS
        .get_or_init(|| {
            let python = python()?;
            let dir = tempfile::tempdir().expect("temp dir");
            let script =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/make_wfdb_corpus.py");
            let out = Command::new(&python)
                .arg(&script)
                .arg(dir.path())
                .output()
                .expect("python runs");
            assert!(
                out.status.success(),
                "{} failed:\n{}",
                script.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            Some(dir)
        })
        .as_ref()
        .map(|d| d.path())
}

fn python() -> Option<String> {
    let python = std::env::var("ECGNAS_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&python)
        .args(["-c", "import wfdb, numpy"])
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(python);
    }
    assert!(
        std::env::var_os("ECGNAS_REQUIRE_WFDB").is_none(),
        "ECGNAS_REQUIRE_WFDB is set but {python} lacks wfdb"
    );
    #[allow(clippy::print_stderr)]
    {
        eprintln!("SKIPPED: {python} lacks the wfdb package (pip install wfdb numpy)");
    }
    None
}

fn json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("JSON written by the script");
    serde_json::from_str(&text).expect("valid JSON")
}

fn expected(dir: &Path) -> Vec<Value> {
    json(&dir.join("expected.json"))["records"]
        .as_array()
        .expect("records")
        .clone()
}

/// WFDB's documented ADC resolution when a header gives none or 0 (header(5)).
fn default_adc_res(format: u16) -> u64 {
    match format {
        212 => 12,
        310 | 311 => 10,
        80 | 8 => 8,
        _ => 16,
    }
}

#[test]
fn every_variant_reads_back_exactly() {
    let Some(dir) = corpus() else { return };
    let records = expected(dir);
    assert!(records.len() >= 19, "the corpus lost records");
    let mut formats = BTreeSet::new();
    for want in &records {
        let id = want["record"].as_str().expect("name");
        let path = dir.join(format!("{id}.hea"));
        let record = WfdbRecord::read(&path).unwrap_or_else(|e| panic!("{id}: {e}"));
        let header = &record.header;
        assert_eq!(Some(header.fs), want["fs"].as_f64(), "{id}: fs");
        assert_eq!(header.counter_fs, want["counter_freq"].as_f64(), "{id}");
        assert_eq!(header.base_counter, want["base_counter"].as_f64(), "{id}");
        assert_eq!(
            Some(record.n_samples() as u64),
            want["n_samples"].as_u64(),
            "{id}: frames"
        );
        let uncalibrated: Vec<u64> = want["uncalibrated"]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(Value::as_u64)
            .collect();
        let signals = want["signals"].as_array().expect("signals");
        assert_eq!(header.signals.len(), signals.len(), "{id}: signal count");
        for (i, (spec, ws)) in header.signals.iter().zip(signals).enumerate() {
            let at = format!("{id}/{i}");
            let format = spec.format_code;
            formats.insert(format);
            assert_eq!(
                Some(format.to_string().as_str()),
                ws["fmt"].as_str(),
                "{at}"
            );
            assert_eq!(
                spec.description,
                ws["name"].as_str().unwrap_or(""),
                "{at}: name"
            );
            assert_eq!(Some(spec.units.as_str()), ws["units"].as_str(), "{at}");
            assert_eq!(Some(spec.gain), ws["adc_gain"].as_f64(), "{at}: gain");
            assert_eq!(
                spec.calibrated,
                !uncalibrated.contains(&(i as u64)),
                "{at}: calibrated"
            );
            assert_eq!(Some(spec.baseline), ws["baseline"].as_i64(), "{at}");
            let adc_res = match ws["adc_res"].as_u64() {
                None | Some(0) => default_adc_res(format),
                Some(bits) => bits,
            };
            assert_eq!(u64::from(spec.adc_resolution), adc_res, "{at}: adc_res");
            assert_eq!(spec.adc_zero, ws["adc_zero"].as_i64().unwrap_or(0), "{at}");
            assert_eq!(
                Some(u64::from(spec.samples_per_frame)),
                ws["samps_per_frame"].as_u64(),
                "{at}"
            );
            assert_eq!(
                u64::from(spec.skew.unwrap_or(0)),
                ws["skew"].as_u64().unwrap_or(0),
                "{at}"
            );
            assert_eq!(
                spec.byte_offset.unwrap_or(0),
                ws["byte_offset"].as_u64().unwrap_or(0),
                "{at}"
            );

            let values: Vec<i32> = ws["values"]
                .as_array()
                .expect("values")
                .iter()
                .map(|v| v.as_i64().expect("integer") as i32)
                .collect();
            let got = &record.samples[i];
            assert_eq!(got.len(), values.len(), "{at}: sample count");
            if let Some(k) = got.iter().zip(&values).position(|(a, b)| a != b) {
                panic!("{at}: sample {k} is {}, wfdb reads {}", got[k], values[k]);
            }
            assert_eq!(
                Some(record.invalid_count(i) as u64),
                ws["n_invalid"].as_u64(),
                "{at}: invalid"
            );
            assert_eq!(record.checksum_ok(i), ws["checksum_ok"].as_bool(), "{at}");
            // Invalid samples never become physical values; the others are (d - baseline) / gain.
            let invalid = SignalFormat::from_code(format).and_then(|f| f.invalid_code());
            for (&d, p) in values.iter().zip(record.physical(i)) {
                if Some(d) == invalid {
                    assert!(p.is_nan(), "{at}: invalid sample {d} became {p}");
                } else {
                    let want = ((f64::from(d) - spec.baseline as f64) / spec.gain) as f32;
                    assert_eq!(p, want, "{at}: physical value of {d}");
                }
            }
        }
    }
    let want: BTreeSet<u16> = [8, 16, 24, 32, 61, 80, 160, 212, 310, 311].into();
    assert_eq!(formats, want, "every supported format is in the corpus");
}

/// The names and counts `data inspect --json` prints for the corpus folder.
#[test]
fn inspect_reports_the_reference_statistics() {
    let Some(dir) = corpus() else { return };
    let out = Command::new(env!("CARGO_BIN_EXE_ecgnas"))
        .args(["data", "inspect", "--json"])
        .arg(dir)
        .output()
        .expect("ecgnas runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let got = report["records"].as_array().expect("records");
    let mut want = expected(dir);
    want.sort_by(|a, b| a["record"].as_str().cmp(&b["record"].as_str()));
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        let id = w["record"].as_str().expect("name");
        assert_eq!(g["id"].as_str(), Some(id));
        assert_eq!(g["n_samples"], w["n_samples"], "{id}");
        let signals = w["signals"].as_array().expect("signals");
        for (i, ws) in signals.iter().enumerate() {
            let gs = &g["signals"][i];
            for (key, want_key) in [
                ("sum", "sum"),
                ("sum_sq", "sum_sq"),
                ("min", "min"),
                ("max", "max"),
                ("invalid", "n_invalid"),
                ("checksum_ok", "checksum_ok"),
                ("baseline", "baseline"),
                ("gain", "adc_gain"),
            ] {
                assert_eq!(gs[key], ws[want_key], "{id}/{i}: {key}");
            }
        }
    }
}

/// Unsupported formats, multi-segment records, short and missing signal files: one error
/// line naming the file and the problem, exit status 2, no panic.
#[test]
fn bad_records_give_one_clear_error() {
    let Some(dir) = corpus() else { return };
    let refused = json(&dir.join("refused.json"));
    for case in refused["records"].as_array().expect("records") {
        let id = case["record"].as_str().expect("name");
        let header: PathBuf = dir.join("refused").join(format!("{id}.hea"));
        let out = Command::new(env!("CARGO_BIN_EXE_ecgnas"))
            .args(["data", "inspect"])
            .arg(&header)
            .output()
            .expect("ecgnas runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{id}: {stderr}");
        assert!(!stderr.contains("panicked"), "{id}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{id}: one line: {stderr}");
        for word in case["error_contains"].as_array().expect("words") {
            let word = word.as_str().expect("text");
            assert!(stderr.contains(word), "{id}: {word:?} missing in {stderr}");
        }
    }
}

/// The table says which signals are uncalibrated (a gain of 0, and no gain at all).
#[test]
fn table_marks_uncalibrated_signals() {
    let Some(dir) = corpus() else { return };
    let out = Command::new(env!("CARGO_BIN_EXE_ecgnas"))
        .args(["data", "inspect"])
        .arg(dir.join("texts.hea"))
        .output()
        .expect("ecgnas runs");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{table}");
    let notes: Vec<&str> = table
        .lines()
        .filter(|l| l.contains("uncalibrated"))
        .collect();
    assert_eq!(notes.len(), 2, "{table}");
    assert!(
        notes[0].contains("signal 1 (II)") && notes[1].contains("signal 2 (-)"),
        "{table}"
    );
}
