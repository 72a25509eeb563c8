//! Times the synthetic ECG generator: 10,000 windows on one thread.
//!
//! `cargo bench -p ecgnas --bench synthetic` prints the figure; run without `--bench` (as
//! `cargo test --benches` does) it only generates a few windows, as a smoke test.
#![allow(clippy::print_stdout)]

use std::hint::black_box;
use std::time::Instant;

use ecgnas::data::synthetic::{generate_window, WINDOW_SAMPLES};

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let n: u64 = if bench { 10_000 } else { 20 };
    let start = Instant::now();
    let mut checksum = 0.0f64;
    for i in 0..n {
        let w = black_box(generate_window(0, black_box(i)));
        assert_eq!(w.samples_mv.len(), WINDOW_SAMPLES);
        checksum += f64::from(w.samples_mv[WINDOW_SAMPLES / 2]);
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "synthetic ECG: {n} windows in {secs:.2} s ({:.0} windows/s, one core)",
        n as f64 / secs
    );
    black_box(checksum);
}
