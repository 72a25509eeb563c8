//! Brings in the model and the memory map chosen by `ecgnas deploy`:
//! - `ECGNAS_MODEL_RS`: the generated model module (default: the repository's default model,
//!   `models/default/model.rs`);
//! - `ECGNAS_MEMORY_X`: the linker memory map (default: QEMU mps2-an386's, `memory.x` here);
//! - `ECGNAS_BENCH_RS`: the calibration networks (default: none, `bench_default.rs` here).

use std::{env, fs, path::PathBuf};

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let model = env::var_os("ECGNAS_MODEL_RS")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir.join("../../models/default/model.rs"));
    let memory = env::var_os("ECGNAS_MEMORY_X")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir.join("memory.x"));
    let bench = env::var_os("ECGNAS_BENCH_RS")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir.join("bench_default.rs"));
    for (from, to) in [
        (&model, "model.rs"),
        (&memory, "memory.x"),
        (&bench, "bench.rs"),
    ] {
        let bytes =
            fs::read(from).unwrap_or_else(|e| panic!("cannot read {}: {e}", from.display()));
        fs::write(out.join(to), bytes).expect("write into OUT_DIR");
        println!("cargo:rerun-if-changed={}", from.display());
    }
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-env-changed=ECGNAS_MODEL_RS");
    println!("cargo:rerun-if-env-changed=ECGNAS_MEMORY_X");
    println!("cargo:rerun-if-env-changed=ECGNAS_BENCH_RS");
    println!("cargo:rerun-if-changed=build.rs");
}
