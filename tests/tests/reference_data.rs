//! Every record under ../shared/data read by ecgnas and compared with the folder's
//! `reference.json`, which PhysioNet's own Python reader (`wfdb` 4.3.1) computed.
//!
//! Compared: header fields, sample counts, per-channel exact sums and sums of squares, min,
//! max, invalid samples, checksums, digital and physical probes, and the annotation files'
//! counts by symbol and aux note, and their first and last annotations.

use std::collections::BTreeMap;
use std::path::Path;

use ecgnas::data::wfdb::record::read_annotations;
use ecgnas::data::wfdb::WfdbRecord;
use ecgnas_tests::shared_data;
use serde_json::Value;

fn as_i128(v: &Value) -> i128 {
    match v {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .unwrap_or_else(|| n.to_string().parse().expect("integer")),
        other => panic!("expected an integer, got {other}"),
    }
}

fn as_f64(v: &Value) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("expected a number, got {v}"))
}

/// Checks one record against its reference entry; returns the mismatches found.
fn check_record(folder: &Path, reference: &Value) -> Vec<String> {
    let name = reference["record"].as_str().expect("record name");
    let mut errors = Vec::new();
    let mut expect = |what: &str, ok: bool, detail: String| {
        if !ok {
            errors.push(format!("{name}: {what}: {detail}"));
        }
    };
    let record = match WfdbRecord::read(&folder.join(format!("{name}.hea"))) {
        Ok(r) => r,
        Err(e) => return vec![format!("{name}: cannot read: {e}")],
    };
    let h = &record.header;
    let n_signals = h.signals.len();
    expect("fs", h.fs == as_f64(&reference["fs"]), format!("{}", h.fs));
    expect(
        "n_samples",
        record.n_samples() as i128 == as_i128(&reference["n_samples"]),
        format!("{}", record.n_samples()),
    );
    expect(
        "n_signals",
        n_signals as i128 == as_i128(&reference["n_signals"]),
        format!("{n_signals}"),
    );
    let column =
        |key: &str| -> Vec<Value> { reference[key].as_array().cloned().unwrap_or_default() };
    let comments: Vec<Value> = column("comments");
    expect(
        "comments",
        h.comments
            .iter()
            .map(|c| Value::from(c.as_str()))
            .collect::<Vec<_>>()
            == comments,
        format!("{:?}", h.comments),
    );
    for (i, spec) in h.signals.iter().enumerate() {
        let at = |key: &str| column(key).get(i).cloned().unwrap_or(Value::Null);
        expect(
            "sig_name",
            at("sig_name") == spec.description.as_str(),
            spec.description.clone(),
        );
        expect(
            "units",
            at("units") == spec.units.as_str(),
            spec.units.clone(),
        );
        expect(
            "fmt",
            at("fmt") == spec.format_code.to_string().as_str(),
            spec.format_code.to_string(),
        );
        expect(
            "adc_gain",
            as_f64(&at("adc_gain")) == spec.gain,
            format!("{}", spec.gain),
        );
        expect(
            "baseline",
            as_i128(&at("baseline")) == i128::from(spec.baseline),
            format!("{}", spec.baseline),
        );
        expect(
            "adc_zero",
            as_i128(&at("adc_zero")) == i128::from(spec.adc_zero),
            format!("{}", spec.adc_zero),
        );
        expect(
            "adc_res",
            as_i128(&at("adc_res")) == i128::from(spec.adc_resolution),
            format!("{}", spec.adc_resolution),
        );
        expect(
            "init_value",
            as_i128(&at("init_value")) == i128::from(spec.initial_value),
            format!("{}", spec.initial_value),
        );
        expect(
            "checksum",
            at("checksum").as_i64() == spec.checksum,
            format!("{:?}", spec.checksum),
        );
        expect(
            "file_name",
            at("file_name") == spec.file_name.as_str(),
            spec.file_name.clone(),
        );
        expect(
            "byte_offset",
            at("byte_offset").as_u64() == spec.byte_offset,
            format!("{:?}", spec.byte_offset),
        );
        expect(
            "samps_per_frame",
            as_i128(&at("samps_per_frame")) == i128::from(spec.samples_per_frame),
            format!("{}", spec.samples_per_frame),
        );
        expect(
            "skew",
            at("skew").as_u64() == spec.skew.map(u64::from),
            format!("{:?}", spec.skew),
        );
        expect(
            "checksum_ok",
            at("checksum_ok").as_bool() == record.checksum_ok(i),
            format!("{:?}", record.checksum_ok(i)),
        );

        let channel = &reference["channels"][i];
        let samples = &record.samples[i];
        let sum: i128 = samples.iter().map(|&d| i128::from(d)).sum();
        let sum_sq: i128 = samples.iter().map(|&d| i128::from(d) * i128::from(d)).sum();
        expect(
            "sum",
            sum == as_i128(&channel["sum"]),
            format!("signal {i}: {sum}"),
        );
        expect(
            "sum_sq",
            sum_sq == as_i128(&channel["sum_sq"]),
            format!("signal {i}: {sum_sq}"),
        );
        let min = samples.iter().copied().min().unwrap_or(0);
        let max = samples.iter().copied().max().unwrap_or(0);
        expect(
            "min",
            i128::from(min) == as_i128(&channel["min"]),
            format!("signal {i}: {min}"),
        );
        expect(
            "max",
            i128::from(max) == as_i128(&channel["max"]),
            format!("signal {i}: {max}"),
        );
        expect(
            "n_invalid",
            record.invalid_count(i) as i128 == as_i128(&channel["n_invalid"]),
            format!("signal {i}: {}", record.invalid_count(i)),
        );
        expect(
            "checksum_computed",
            i128::from(record.checksum_computed(i)) == as_i128(&channel["checksum_computed"]),
            format!("signal {i}: {}", record.checksum_computed(i)),
        );
        let physical = record.physical(i);
        for (probe, physical_probe) in channel["probes"].as_array().expect("probes").iter().zip(
            channel["physical_probes"]
                .as_array()
                .expect("physical probes"),
        ) {
            let index = as_i128(&probe[0]) as usize;
            let digital = samples[index];
            expect(
                "probe",
                i128::from(digital) == as_i128(&probe[1]),
                format!("signal {i} sample {index}: {digital}"),
            );
            let exact = record.physical_value(i, digital);
            match physical_probe[1].as_f64() {
                None => expect(
                    "physical probe",
                    exact.is_none(),
                    format!("signal {i} sample {index}: {exact:?} for null"),
                ),
                Some(want) => {
                    let got = exact.unwrap_or(f64::NAN);
                    expect(
                        "physical probe",
                        (got - want).abs() <= 5e-7,
                        format!("signal {i} sample {index}: {got} vs {want}"),
                    );
                    // The f32 samples every task reads are that value, rounded once.
                    expect(
                        "physical f32",
                        physical[index] == got as f32,
                        format!("signal {i} sample {index}"),
                    );
                }
            }
        }
    }

    if let Some(ann) = reference.get("annotations") {
        let path = folder.join(ann["file"].as_str().expect("annotation file"));
        match read_annotations(&path) {
            Err(e) => errors.push(format!("{name}: cannot read annotations: {e}")),
            Ok(anns) => {
                let mut expect = |what: &str, ok: bool, detail: String| {
                    if !ok {
                        errors.push(format!("{name}: annotations: {what}: {detail}"));
                    }
                };
                expect(
                    "n_annotations",
                    anns.len() as i128 == as_i128(&ann["n_annotations"]),
                    format!("{}", anns.len()),
                );
                let mut counts: BTreeMap<String, i128> = BTreeMap::new();
                let mut aux_counts: BTreeMap<String, i128> = BTreeMap::new();
                for a in &anns {
                    *counts.entry(a.code.symbol()).or_default() += 1;
                    if !a.aux.is_empty() {
                        *aux_counts.entry(a.aux.clone()).or_default() += 1;
                    }
                }
                let want = |key: &str| -> BTreeMap<String, i128> {
                    ann[key]
                        .as_object()
                        .expect("counts")
                        .iter()
                        .map(|(k, v)| (k.clone(), as_i128(v)))
                        .collect()
                };
                expect("counts", counts == want("counts"), format!("{counts:?}"));
                expect(
                    "aux_counts",
                    aux_counts == want("aux_counts"),
                    format!("{aux_counts:?}"),
                );
                let with_nul = anns.iter().filter(|a| a.aux_had_nul).count();
                expect(
                    "n_aux_with_trailing_nul",
                    with_nul as i128 == as_i128(&ann["n_aux_with_trailing_nul"]),
                    format!("{with_nul}"),
                );
                let as_row = |a: &ecgnas::data::wfdb::Annotation| {
                    serde_json::json!([a.sample, a.code.symbol(), a.subtype, a.chan, a.num, a.aux])
                };
                let first: Vec<Value> = anns.iter().take(20).map(as_row).collect();
                expect(
                    "first",
                    Value::from(first.clone()) == ann["first"],
                    format!("{first:?}"),
                );
                let last = anns.last().map(as_row).unwrap_or(Value::Null);
                expect("last", last == ann["last"], format!("{last}"));
            }
        }
    }
    errors
}

fn check_folder(folder_name: &str, expected_records: usize) {
    let Some(folder) = shared_data(folder_name) else {
        return;
    };
    let text = std::fs::read_to_string(folder.join("reference.json")).expect("reference.json");
    let reference: Value = serde_json::from_str(&text).expect("reference.json parses");
    let records = reference["records"].as_array().expect("records");
    assert_eq!(
        records.len(),
        expected_records,
        "{folder_name}: reference lists every record"
    );
    let errors: Vec<String> = records
        .iter()
        .flat_map(|r| check_record(&folder, r))
        .collect();
    assert!(
        errors.is_empty(),
        "{} mismatch(es) in {folder_name}:\n{}",
        errors.len(),
        errors
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn mitdb_matches_reference() {
    check_folder("mitdb", 48);
}

#[test]
fn cinc2017_matches_reference() {
    check_folder("cinc2017", 300);
}

#[test]
fn cinc2021_matches_reference() {
    check_folder("cinc2021", 50);
}

#[test]
fn cpsc2021_matches_reference() {
    check_folder("cpsc2021", 18);
}
