//! The host half of `scripts/qemu-smoke.sh`: runs the board app's layer set
//! (`../src/layers.rs`, the same file the app compiles) through the same `ecgnas-firmware`
//! kernels built for the host, runs the same self-checks, and prints one
//! `checksum <layer> <hex>` line per layer in the app's format. The script compares those
//! lines with the app's output on QEMU: equal lines mean the Cortex-M build of the kernels is
//! bit-exact with the host build for these layers.
//!
//! Then the app's random cases (`Workspace::random_case`, same seed), whose combined output
//! hash is printed as `checksum random_cases <hex>`, so QEMU's DSP outputs are compared with
//! the host's scalar ones there too.
//!
//! Also prints, per layer, how many outputs sit at the clamp bounds, to show the data keeps
//! the requantisation busy rather than saturated. Exit status 0, or 1 when a layer fails.

#[path = "../../src/layers.rs"]
mod layers;

use std::process::ExitCode;

use layers::{Workspace, XorShift32, LAYERS, RANDOM_CASES, RANDOM_SEED};

fn main() -> ExitCode {
    let mut workspace = Box::new(Workspace::new());
    let mut checksums = Vec::with_capacity(LAYERS.len());
    for (index, layer) in LAYERS.iter().enumerate() {
        let result = workspace
            .prepare(layer, layers::seed(index))
            .and_then(|mut case| {
                let macs = case.macs()?;
                case.run()?;
                let checksum = layers::fnv1a(case.output());
                case.self_check()?;
                Ok((macs, checksum, case.output().len(), clamped(case.output())))
            });
        match result {
            Ok((macs, checksum, outputs, (low, high))) => {
                println!(
                    "{:<18} macs {macs:>8}  outputs {outputs:>6}  at min {low:>5}  at 127 {high:>5}  \
                     self-check ok",
                    layer.name,
                );
                checksums.push(checksum);
            }
            Err(e) => {
                println!("error: layer {}: {e}", layer.name);
                return ExitCode::FAILURE;
            }
        }
    }
    let mut rng = XorShift32::new(RANDOM_SEED);
    let mut random_hash = layers::fnv1a(&[]);
    for case in 0..RANDOM_CASES {
        match workspace.random_case(&mut rng) {
            Ok(hash) => random_hash = layers::combine(random_hash, hash),
            Err(e) => {
                println!("error: random case {case}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!("random cases: {RANDOM_CASES} ok");
    for (layer, checksum) in LAYERS.iter().zip(checksums) {
        println!("checksum {} {:#010x}", layer.name, checksum);
    }
    println!("checksum random_cases {random_hash:#010x}");
    ExitCode::SUCCESS
}

/// Outputs at the smallest value present (the ReLU floor, or -128 without activation) and at
/// 127: the clamped ones.
fn clamped(output: &[i8]) -> (usize, usize) {
    let min = output.iter().copied().min().unwrap_or(0);
    let low = output.iter().filter(|&&y| y == min).count();
    let high = output.iter().filter(|&&y| y == i8::MAX).count();
    (low, high)
}
