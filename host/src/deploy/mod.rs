//! A model folder onto a board: the int8 model as generated Rust, built into the board binary
//! (`firmware/deploy`), run on real windows, every output compared bit for bit with the host's
//! int8 reference, and the measured cost, flash and SRAM set against the cost model.
//!
//! Targets: QEMU's mps2-an386 here (semihosting files, instruction counts from SysTick under
//! `-icount shift=0`).

pub mod calibrate;
pub mod codegen;
pub mod elf;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Serialize;

use crate::export::LoadedModel;

/// Where the board binary's sources are: `$ECGNAS_FIRMWARE_DIR`, or `firmware/deploy` of the
/// source tree this ecgnas was built from.
pub fn firmware_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::var_os("ECGNAS_FIRMWARE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware/deploy"));
    if !dir.join("Cargo.toml").is_file() {
        bail!(
            "{}: the board binary's sources are not there; set ECGNAS_FIRMWARE_DIR to ecgnas's firmware/deploy folder",
            dir.display()
        );
    }
    Ok(dir)
}

/// Where board binaries are built unless told otherwise: `~/.cache/ecgnas/deploy-target`,
/// kept between runs so that only the generated module recompiles.
pub fn default_target_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(".cache/ecgnas/deploy-target")
}

/// Builds the binary `bin` of `firmware/deploy` for QEMU's memory map, with the generated
/// module `module` handed to its build script through the variable `module_var`; returns the
/// ELF's path.
fn build_bin(
    bin: &str,
    module_var: &str,
    module: &Path,
    work: &Path,
    target_dir: &Path,
) -> anyhow::Result<PathBuf> {
    let dir = firmware_dir()?;
    let memory = work.join("memory.x");
    std::fs::write(&memory, QEMU_MEMORY_X)
        .with_context(|| format!("cannot write {}", memory.display()))?;
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(&dir)
        .args(["build", "--release", "--bin", bin, "--target-dir"])
        .arg(target_dir)
        .env(module_var, module)
        .env("ECGNAS_MEMORY_X", &memory)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .output()
        .with_context(|| format!("cannot run cargo to build {bin}"))?;
    if !output.status.success() {
        bail!(
            "building {bin} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(target_dir.join("thumbv7em-none-eabihf/release").join(bin))
}

/// Builds the board binary for `model` and returns the ELF's path. `work` receives the
/// generated module and the linker map.
pub fn build(model: &LoadedModel, work: &Path, target_dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(work).with_context(|| format!("cannot create {}", work.display()))?;
    let module = work.join("model.rs");
    std::fs::write(&module, codegen::model_module(model))
        .with_context(|| format!("cannot write {}", module.display()))?;
    build_bin(
        "ecgnas-deploy",
        "ECGNAS_MODEL_RS",
        &module,
        work,
        target_dir,
    )
}

/// Builds the calibration binary for the networks of the module text `bench`.
pub fn build_calibration(bench: &str, work: &Path, target_dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(work).with_context(|| format!("cannot create {}", work.display()))?;
    let module = work.join("bench.rs");
    std::fs::write(&module, bench).with_context(|| format!("cannot write {}", module.display()))?;
    build_bin(
        "ecgnas-calibrate",
        "ECGNAS_BENCH_RS",
        &module,
        work,
        target_dir,
    )
}

/// The linker memory map of QEMU's mps2-an386 (the image is loaded at 0x0).
pub const QEMU_MEMORY_X: &str =
    "MEMORY\n{\n  FLASH : ORIGIN = 0x00000000, LENGTH = 4M\n  RAM   : ORIGIN = 0x20000000, LENGTH = 4M\n}\n";

/// What one run of the board produced for one window.
#[derive(Debug, Clone, PartialEq)]
pub struct BoardOutput {
    /// The int8 logits.
    pub logits: Vec<i8>,
    /// Instructions (or cycles) of the whole inference.
    pub total: u32,
    /// Of which preprocessing and input quantisation.
    pub preprocessing: u32,
    /// Of each layer.
    pub layers: Vec<u32>,
}

/// Writes `vectors.bin` for the board.
pub fn write_vectors(
    path: &Path,
    windows: &[&[f32]],
    sides: &[&[f32]],
    values: usize,
    side: usize,
) -> anyhow::Result<()> {
    let mut bytes = Vec::with_capacity(16 + windows.len() * (values + side) * 4);
    bytes.extend_from_slice(b"ECGV");
    for v in [windows.len(), values, side] {
        bytes.extend_from_slice(&(v as u32).to_le_bytes());
    }
    for (w, s) in windows.iter().zip(sides) {
        if w.len() != values || s.len() != side {
            bail!(
                "a window of {} values and {} side inputs, the model takes {values} and {side}",
                w.len(),
                s.len()
            );
        }
        for v in w.iter().chain(s.iter()) {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
    }
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// Reads `outputs.bin`: `n` records of `classes` logits and `2 + layers` u32 costs.
pub fn read_outputs(
    path: &Path,
    n: usize,
    classes: usize,
    layers: usize,
) -> anyhow::Result<Vec<BoardOutput>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let record = classes + 4 * (2 + layers);
    if bytes.len() != n * record {
        bail!(
            "{}: {} bytes, expected {n} records of {record}",
            path.display(),
            bytes.len()
        );
    }
    Ok(bytes
        .chunks_exact(record)
        .map(|r| {
            let word = |i: usize| {
                let at = classes + 4 * i;
                u32::from_le_bytes([r[at], r[at + 1], r[at + 2], r[at + 3]])
            };
            BoardOutput {
                logits: r[..classes].iter().map(|&b| b as i8).collect(),
                total: word(0),
                preprocessing: word(1),
                layers: (0..layers).map(|i| word(2 + i)).collect(),
            }
        })
        .collect())
}

/// Runs the ELF on QEMU mps2-an386 in `work` (where `vectors.bin` is), at most `timeout`.
pub fn run_qemu(elf: &Path, work: &Path, timeout: Duration) -> anyhow::Result<String> {
    let mut child = Command::new("qemu-system-arm")
        .current_dir(work)
        .args([
            "-cpu",
            "cortex-m4",
            "-machine",
            "mps2-an386",
            "-nographic",
            "-semihosting-config",
            "enable=on,target=native",
            "-icount",
            "shift=0",
            "-kernel",
        ])
        .arg(elf)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("cannot start qemu-system-arm (install QEMU: apt-get install qemu-system-arm)")?;
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            let out = child.wait_with_output()?;
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            if !status.success() {
                bail!("the board binary exited with {status} on QEMU:\n{text}");
            }
            return Ok(text);
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            bail!("QEMU ran longer than {} s; stopped", timeout.as_secs());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Per-layer-kind cost on the board.
#[derive(Debug, Clone, Serialize)]
pub struct LayerKindCost {
    /// `conv1d`, `pointwise`, `depthwise`, `dense`...
    pub kind: String,
    /// Layers of that kind.
    pub layers: usize,
    /// Their MACs per inference.
    pub macs: u64,
    /// Their measured instructions per inference (mean over windows).
    pub instructions: f64,
    /// Instructions per MAC (null for layers without MACs).
    pub instructions_per_mac: Option<f64>,
}

/// Sums the measured cost by layer kind.
pub fn cost_by_kind(model: &LoadedModel, outputs: &[BoardOutput]) -> Vec<LayerKindCost> {
    let mut kinds: Vec<LayerKindCost> = Vec::new();
    let n = outputs.len().max(1) as f64;
    for (i, layer) in model.int8.layers.iter().enumerate() {
        let kind = layer.op_name().to_string();
        let measured: f64 = outputs.iter().map(|o| f64::from(o.layers[i])).sum::<f64>() / n;
        let entry = match kinds.iter_mut().find(|k| k.kind == kind) {
            Some(e) => e,
            None => {
                kinds.push(LayerKindCost {
                    kind,
                    layers: 0,
                    macs: 0,
                    instructions: 0.0,
                    instructions_per_mac: None,
                });
                kinds.last_mut().expect("just pushed")
            }
        };
        entry.layers += 1;
        entry.macs += layer.macs() as u64;
        entry.instructions += measured;
    }
    for k in &mut kinds {
        k.instructions_per_mac = (k.macs > 0).then(|| k.instructions / k.macs as f64);
    }
    kinds
}
