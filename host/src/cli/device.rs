//! `--device`: where children train.

use anyhow::{bail, Context};
use candle_core::Device;

/// The device a `--device` value names: `cpu`, or `cuda` / `cuda:N` in a build with the `cuda`
/// feature.
pub(super) fn parse(name: &str) -> anyhow::Result<Device> {
    let ordinal = match name {
        "cpu" => return Ok(Device::Cpu),
        "cuda" => 0,
        _ => match name.strip_prefix("cuda:") {
            Some(n) => n
                .parse::<usize>()
                .with_context(|| format!("--device {name:?}: expected cuda:N with N a number"))?,
            None => bail!("--device {name:?}: expected cpu, cuda or cuda:N"),
        },
    };
    cuda(name, ordinal)
}

#[cfg(feature = "cuda")]
fn cuda(name: &str, ordinal: usize) -> anyhow::Result<Device> {
    Device::new_cuda(ordinal).with_context(|| format!("--device {name}: no usable CUDA device"))
}

#[cfg(not(feature = "cuda"))]
fn cuda(name: &str, _ordinal: usize) -> anyhow::Result<Device> {
    bail!(
        "--device {name}: this ecgnas was built without CUDA; build it with \
         `bash scripts/build-cuda.sh` (cargo build --release --features cuda)"
    )
}
