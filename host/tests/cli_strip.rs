//! `ecgnas data plot`: strips of MIT-BIH record 100 as SVG and PNG.

use std::process::Command;

use ecgnas::data::wfdb::record::read_annotations;

mod common;
use common::shared_data;

fn plot(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ecgnas"))
        .args(["data", "plot"])
        .args(args)
        .output()
        .expect("ecgnas runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn strip_of_record_100_with_both_leads_and_annotations() {
    let Some(mitdb) = shared_data("mitdb") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let record = mitdb.join("100");
    let record = record.to_str().expect("utf-8");
    let svg = dir.path().join("strip.svg");
    let png = dir.path().join("strip.png");
    for out in [&svg, &png] {
        let (code, stderr) = plot(&[
            record,
            "--from",
            "0",
            "--seconds",
            "10",
            "--out",
            out.to_str().expect("utf-8"),
        ]);
        assert_eq!(code, 0, "{stderr}");
    }

    // Every annotation of the first 10 s (read from the .atr here) is labelled on the strip.
    let svg_text = std::fs::read_to_string(&svg).expect("svg");
    let annotations = read_annotations(&mitdb.join("100.atr")).expect("100.atr");
    let in_strip: Vec<String> = annotations
        .iter()
        .filter(|a| a.sample < 3600 && a.code.symbol() != "+")
        .map(|a| a.code.symbol())
        .collect();
    assert!(in_strip.len() > 5);
    for symbol in ["N", "A"] {
        let want = in_strip.iter().filter(|s| *s == symbol).count();
        // plotters writes each label as `>\nTEXT\n</text>`.
        let got = svg_text.matches(&format!(">\n{symbol}\n</text>")).count();
        // The rhythm band's label `N` may add one.
        assert!(
            got == want || got == want + 1,
            "{symbol}: {got} labels, {want} annotations"
        );
    }
    for label in ["MLII", "V5", "0 s", "10 s"] {
        assert!(svg_text.contains(label), "{label} missing");
    }

    // The PNG decodes, is as wide as 10 s of paper at 25 mm/s needs, and has trace and grid.
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&png).expect("png"),
    ));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).expect("pixels");
    assert!(info.width >= 250 * 3, "width {}", info.width);
    let rgb: Vec<&[u8]> = pixels[..info.buffer_size()].chunks(3).collect();
    let black = rgb
        .iter()
        .filter(|p| p[0] < 60 && p[1] < 60 && p[2] < 60)
        .count();
    let pink = rgb
        .iter()
        .filter(|p| p[0] > 200 && p[1] < 210 && p[2] < 210)
        .count();
    assert!(black > 2000, "trace pixels: {black}");
    assert!(pink > 10 * black, "grid pixels: {pink}");
}

#[test]
fn bad_requests_are_one_clear_error() {
    let Some(mitdb) = shared_data("mitdb") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("x.svg");
    let out = out.to_str().expect("utf-8");
    let record = mitdb.join("100.hea");
    let record = record.to_str().expect("utf-8");
    for (args, words) in [
        (
            vec![record, "--leads", "V9", "--out", out],
            vec!["V9", "MLII"],
        ),
        (
            vec![record, "--from", "5000", "--out", out],
            vec!["past the record's end"],
        ),
        (
            vec![record, "--out", "strip.gif"],
            vec!["strip.gif", ".png"],
        ),
    ] {
        let (code, stderr) = plot(&args);
        assert_eq!(code, 2, "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        for w in words {
            assert!(stderr.contains(w), "{w}: {stderr}");
        }
    }
}
