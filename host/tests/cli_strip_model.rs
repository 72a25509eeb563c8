//! A model's decisions on ECG strips: `data plot --model` and `evaluate --plots`, with a
//! small `mitdb-aami` model trained here on two MIT-BIH records and scored on two others.

use std::path::{Path, PathBuf};
use std::process::Command;

use ecgnas::data::wfdb::record::read_annotations;

mod common;
use common::shared_data;

fn ecgnas(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ecgnas"))
        .args(args)
        .output()
        .expect("ecgnas runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A folder of links to MIT-BIH records 119 (training), 106 (validation), 100 and 213 (test),
/// and a one-trial `mitdb-aami` search on it; returns (data folder, model folder).
fn small_model(mitdb: &Path, work: &Path) -> (PathBuf, PathBuf) {
    let data = work.join("mitdb");
    std::fs::create_dir_all(&data).expect("data folder");
    for record in ["100", "106", "119", "213"] {
        for ext in ["hea", "dat", "atr"] {
            let name = format!("{record}.{ext}");
            std::fs::copy(mitdb.join(&name), data.join(&name)).expect("copy record");
        }
    }
    let run = work.join("run");
    let (code, _, stderr) = ecgnas(&[
        "search",
        "--data",
        data.to_str().expect("utf-8"),
        "--task",
        "mitdb-aami",
        "--strategy",
        "random",
        "--trials",
        "1",
        "--epochs",
        "2",
        "--out",
        run.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 0, "{stderr}");
    (data, run.join("best"))
}

/// `(text, fill colour)` of each `<text>` element of a plotters SVG.
fn svg_texts(svg: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for piece in svg.split("<text").skip(1) {
        let Some((attributes, rest)) = piece.split_once('>') else {
            continue;
        };
        let text = rest
            .split("</text>")
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        let fill = attributes
            .split("fill=\"")
            .nth(1)
            .and_then(|f| f.split('"').next())
            .unwrap_or("")
            .to_string();
        out.push((text, fill));
    }
    out
}

/// The AAMI class of an MIT-BIH beat symbol (AAMI EC57), written out here independently of
/// ecgnas's own table.
fn aami(symbol: &str) -> Option<&'static str> {
    match symbol {
        "N" | "L" | "R" | "e" | "j" => Some("N"),
        "A" | "a" | "J" | "S" => Some("S"),
        "V" | "E" => Some("V"),
        "F" => Some("F"),
        _ => None,
    }
}

#[test]
fn strips_show_each_decision_right_or_wrong_and_the_worst_errors() {
    let Some(mitdb) = shared_data("mitdb") else {
        return;
    };
    let work = tempfile::tempdir().expect("temp dir");
    let (data, model) = small_model(&mitdb, work.path());

    // `data plot --model`: record 100, 10 s from 0 s, both leads, as SVG (to read) and PNG.
    let svg = work.path().join("strip-model.svg");
    let png = work.path().join("strip-model.png");
    for out in [&svg, &png] {
        let (code, _, stderr) = ecgnas(&[
            "data",
            "plot",
            data.join("100").to_str().expect("utf-8"),
            "--seconds",
            "10",
            "--model",
            model.to_str().expect("utf-8"),
            "--out",
            out.to_str().expect("utf-8"),
        ]);
        assert_eq!(code, 0, "{stderr}");
    }
    let texts = svg_texts(&std::fs::read_to_string(&svg).expect("svg"));
    // The record's beats of the first 10 s, in AAMI classes, from the annotation file.
    let annotations = read_annotations(&data.join("100.atr")).expect("100.atr");
    let beats: Vec<&str> = annotations
        .iter()
        .filter(|a| a.sample < 3600)
        .filter_map(|a| aami(&a.code.symbol()))
        .collect();
    assert!(beats.len() >= 10, "{} beats", beats.len());
    // One decision per beat, below the reference, in green (right) or red (wrong).
    let green = "#008C3C";
    let red = "#D20000";
    let decisions: Vec<&(String, String)> = texts
        .iter()
        .filter(|(_, fill)| fill.eq_ignore_ascii_case(green) || fill.eq_ignore_ascii_case(red))
        .collect();
    assert_eq!(decisions.len(), beats.len(), "{texts:?}");
    // The decisions are in time order, as the beats: each is green exactly when it is the
    // beat's class.
    for ((decided, fill), truth) in decisions.iter().map(|d| (&d.0, &d.1)).zip(&beats) {
        assert!(
            ["N", "S", "V", "F"].contains(&decided.as_str()),
            "{decided}"
        );
        assert_eq!(
            fill.eq_ignore_ascii_case(green),
            decided == truth,
            "{decided} on a {truth} beat drawn {fill}"
        );
    }
    assert!(texts.iter().any(|(t, _)| t == "model"));
    assert!(std::fs::metadata(&png).expect("png").len() > 10_000);

    // `evaluate --plots`: the worst errors of each class on the test records 100 and 213.
    let plots = work.path().join("errors");
    let (code, _, stderr) = ecgnas(&[
        "evaluate",
        model.to_str().expect("utf-8"),
        "--data",
        data.to_str().expect("utf-8"),
        "--task",
        "mitdb-aami",
        "--plots",
        plots.to_str().expect("utf-8"),
        "--plots-per-class",
        "2",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let mut index = csv::Reader::from_path(plots.join("index.csv")).expect("index.csv");
    let rows: Vec<csv::StringRecord> = index.records().map(|r| r.expect("row")).collect();
    assert!(
        !rows.is_empty(),
        "a two-epoch model on 213's V and F beats makes errors"
    );
    let mut per_class = std::collections::BTreeMap::new();
    for row in &rows {
        let (class, record, truth, predicted, file) = (&row[0], &row[1], &row[3], &row[4], &row[5]);
        *per_class.entry(class.to_string()).or_insert(0) += 1;
        assert!(
            ["100", "213"].contains(&record),
            "{record} is not a test record"
        );
        assert_eq!(truth, class);
        assert_ne!(truth, predicted);
        let strip = plots.join(file);
        let bytes = std::fs::read(&strip).expect("strip file");
        assert_eq!(&bytes[1..4], b"PNG", "{}", strip.display());
    }
    assert!(per_class.values().all(|&n| n <= 2), "{per_class:?}");
}
