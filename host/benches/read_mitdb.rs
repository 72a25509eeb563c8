//! Reads every MIT-BIH record (header, format-212 signals, `.atr` annotations) on one core and
//! prints the time, best of five passes.
//!
//! `cargo bench -p ecgnas --bench read_mitdb [-- DIR]` (default `../shared/data/mitdb`).
//! `scripts/bench-read-mitdb.sh` runs it beside wfdb-python on the same files.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::exit, missing_docs)]

use std::path::PathBuf;
use std::time::Instant;

use ecgnas::data::source::{discover, RecordSource};
use ecgnas::data::wfdb::record::read_annotations;
use ecgnas::data::wfdb::WfdbRecord;

fn main() {
    let folder = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/mitdb")
        });
    let Ok(sources) = discover(&folder) else {
        println!("SKIPPED: no records in {}", folder.display());
        return;
    };
    let mut best = f64::INFINITY;
    let mut totals = (0usize, 0usize, 0usize);
    for _ in 0..5 {
        let start = Instant::now();
        let (mut records, mut samples, mut annotations) = (0, 0, 0);
        for source in &sources {
            let RecordSource::Wfdb(header) = source else {
                continue;
            };
            let record = match WfdbRecord::read(header) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: {e}");
                    std::process::exit(2);
                }
            };
            samples += record.samples.iter().map(Vec::len).sum::<usize>();
            if let Ok(anns) = read_annotations(&record.annotation_path("atr")) {
                annotations += anns.len();
            }
            records += 1;
        }
        best = best.min(start.elapsed().as_secs_f64());
        totals = (records, samples, annotations);
    }
    let (records, samples, annotations) = totals;
    println!(
        "ecgnas read_mitdb: {records} records, {:.1} M samples, {annotations} annotations in {best:.3} s (best of 5, one core; {:.0} M samples/s)",
        samples as f64 / 1e6,
        samples as f64 / 1e6 / best
    );
}
