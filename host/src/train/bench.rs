//! The training benchmark: how fast a child trains, and whether it learns as PyTorch does.
//!
//! Each benchmarked network trains on one fixed batch (normal inputs, Bernoulli(0.3) targets
//! for six labels) with the mean binary cross-entropy and AdamW at lr 1e-3 (candle's and
//! PyTorch's defaults otherwise), starting from [`network::initialise`]'s weights. The same
//! weights and data can be written out ([`write_for_pytorch`]) so that
//! `scripts/bench_train.py` trains the very same network in PyTorch, side by side.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::network::{build, Network};
use super::ops;
use crate::space::{
    Activation, Architecture, Block, ConvKind, Head, OutputActivation, Pool, SearchSpace,
    TaskShape, WindowKind,
};

/// Labels of the benchmark's targets.
pub const LABELS: usize = 6;
/// Samples per input: 10 s at 250 Hz.
pub const INPUT_LEN: usize = 2500;

/// A network to benchmark.
#[derive(Debug, Clone, Serialize)]
pub struct BenchNetwork {
    /// Its name in the tables.
    pub name: String,
    /// Its layers.
    pub architecture: Architecture,
    /// Input leads.
    pub in_channels: usize,
    /// Input samples per lead.
    pub input_len: usize,
}

fn block(kind: ConvKind, channels: usize, kernel: usize, stride: usize) -> Block {
    Block {
        kind,
        channels,
        kernel,
        stride,
        dilation: 1,
        activation: Activation::Relu,
        skip: false,
        pool: Pool::None,
    }
}

/// The reference network of the training benchmark: four conv1d layers (channels, kernel,
/// stride) = (16, 7, 2), (32, 5, 2), (64, 5, 2), (64, 3, 1) with ReLU, a global average pool
/// and a dense layer to six logits, on (B, 1, 2500). With `separable`, layers 2-4 are
/// depthwise-separable (in this search space's form: the activation after the depthwise
/// part too).
pub fn reference(separable: bool) -> BenchNetwork {
    let later = if separable {
        ConvKind::DepthwiseSeparable
    } else {
        ConvKind::Standard
    };
    BenchNetwork {
        name: if separable {
            "reference-dwsep".into()
        } else {
            "reference".into()
        },
        architecture: Architecture {
            blocks: vec![
                block(ConvKind::Standard, 16, 7, 2),
                block(later, 32, 5, 2),
                block(later, 64, 5, 2),
                block(later, 64, 3, 1),
            ],
            head: Head {
                hidden: None,
                outputs: LABELS,
                output: OutputActivation::Sigmoid,
            },
        },
        in_channels: 1,
        input_len: INPUT_LEN,
    }
}

/// `n` candidates drawn from the default space of a 10 s, 250 Hz, one-lead, six-label task
/// (their own preprocessing sets the input length).
pub fn sampled_candidates(n: usize, seed: u64) -> std::result::Result<Vec<BenchNetwork>, String> {
    let task = TaskShape {
        window: WindowKind::Fixed {
            choices_s: vec![10.0],
        },
        multi_label: true,
        n_classes: LABELS,
        input_fs_hz: 250.0,
        leads: 1,
    };
    let space = SearchSpace::default_for(&task);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut nets = Vec::with_capacity(n);
    // Draws that leave no samples for some layer are skipped, as the search skips them.
    for _ in 0..1000 * n.max(1) {
        if nets.len() == n {
            break;
        }
        let candidate = space.sample(&mut rng).map_err(|e| e.to_string())?;
        if !candidate.is_valid_for(&task) {
            continue;
        }
        let shape = candidate
            .preprocessing
            .pipeline_shape(task.input_fs_hz)
            .map_err(|e| e.to_string())?;
        nets.push(BenchNetwork {
            name: format!("candidate-{}", nets.len()),
            architecture: candidate.architecture,
            in_channels: task.leads,
            input_len: shape.network_samples,
        });
    }
    if nets.len() < n {
        return Err(format!("drew only {} valid candidates of {n}", nets.len()));
    }
    Ok(nets)
}

/// A network ready to train on its batch.
pub struct Setup {
    /// Its variables.
    pub varmap: VarMap,
    /// The network.
    pub network: Network,
    /// Inputs (B, C, L).
    pub x: Tensor,
    /// Targets (B, 6) in {0, 1}.
    pub y: Tensor,
}

/// Builds `net` with the weights of `seed` and its batch of `batch` examples.
pub fn setup(net: &BenchNetwork, batch: usize, seed: u64, device: &Device) -> Result<Setup> {
    let (varmap, network) = build(
        &net.architecture,
        net.in_channels,
        net.input_len,
        0,
        seed,
        device,
    )?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xda7a);
    let normal = rand_distr::StandardNormal;
    let x: Vec<f32> = (0..batch * net.in_channels * net.input_len)
        .map(|_| rng.sample::<f32, _>(normal))
        .collect();
    let y: Vec<f32> = (0..batch * LABELS)
        .map(|_| if rng.random::<f64>() < 0.3 { 1.0 } else { 0.0 })
        .collect();
    Ok(Setup {
        varmap,
        network,
        x: Tensor::from_vec(x, (batch, net.in_channels, net.input_len), device)?,
        y: Tensor::from_vec(y, (batch, LABELS), device)?,
    })
}

fn optimizer(varmap: &VarMap) -> Result<AdamW> {
    AdamW::new(
        varmap.all_vars(),
        ParamsAdamW {
            lr: 1e-3,
            ..ParamsAdamW::default()
        },
    )
}

/// The loss before each of the first `steps` training steps.
pub fn loss_trace(
    net: &BenchNetwork,
    batch: usize,
    steps: usize,
    seed: u64,
    device: &Device,
) -> Result<Vec<f64>> {
    let s = setup(net, batch, seed, device)?;
    let mut opt = optimizer(&s.varmap)?;
    let mut losses = Vec::with_capacity(steps);
    for _ in 0..steps {
        let loss = ops::bce_with_logits(&s.network.forward(&s.x, None)?, &s.y, None)?;
        losses.push(f64::from(loss.to_scalar::<f32>()?));
        opt.backward_step(&loss)?;
    }
    Ok(losses)
}

/// Training speed of one network at one batch size.
#[derive(Debug, Clone, Serialize)]
pub struct Timing {
    /// Median steps per second over the repeats.
    pub steps_per_s: f64,
    /// Slowest repeat.
    pub min: f64,
    /// Fastest repeat.
    pub max: f64,
    /// Mean milliseconds per step in the forward pass, the backward pass and the optimizer.
    pub phase_ms: [f64; 3],
}

/// Times training steps: a warm-up of at least 3 steps and 0.3 s sizes `repeats` runs of
/// about `secs` seconds each; the median run's rate is reported.
pub fn time_training(
    net: &BenchNetwork,
    batch: usize,
    repeats: usize,
    secs: f64,
    seed: u64,
    device: &Device,
) -> Result<Timing> {
    let s = setup(net, batch, seed, device)?;
    let mut opt = optimizer(&s.varmap)?;
    let mut phase = [0f64; 3];
    let mut step = |phase: &mut [f64; 3]| -> Result<()> {
        let t0 = Instant::now();
        let loss = ops::bce_with_logits(&s.network.forward(&s.x, None)?, &s.y, None)?;
        device.synchronize()?;
        let t1 = Instant::now();
        let grads = loss.backward()?;
        device.synchronize()?;
        let t2 = Instant::now();
        opt.step(&grads)?;
        device.synchronize()?;
        let t3 = Instant::now();
        phase[0] += (t1 - t0).as_secs_f64();
        phase[1] += (t2 - t1).as_secs_f64();
        phase[2] += (t3 - t2).as_secs_f64();
        Ok(())
    };
    let start = Instant::now();
    let mut n = 0usize;
    while n < 3 || start.elapsed().as_secs_f64() < 0.3 {
        step(&mut phase)?;
        n += 1;
    }
    let per_step = start.elapsed().as_secs_f64() / n as f64;
    let steps = ((secs / per_step).ceil() as usize).max(3);
    phase = [0.0; 3];
    let mut rates = Vec::with_capacity(repeats);
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        for _ in 0..steps {
            step(&mut phase)?;
        }
        rates.push(steps as f64 / t.elapsed().as_secs_f64());
    }
    let total = (steps * rates.len()) as f64;
    let (min, max) = rates
        .iter()
        .fold((f64::MAX, 0f64), |(lo, hi), &r| (lo.min(r), hi.max(r)));
    rates.sort_by(f64::total_cmp);
    Ok(Timing {
        steps_per_s: rates[rates.len() / 2],
        min,
        max,
        phase_ms: phase.map(|p| 1e3 * p / total),
    })
}

/// Writes what `scripts/bench_train.py` needs to train `net` exactly as here: its
/// architecture (`NAME.json`) and its initial weights with the batch (`NAME.safetensors`:
/// the variables by their names, `x` and `y`).
pub fn write_for_pytorch(net: &BenchNetwork, batch: usize, seed: u64, dir: &Path) -> Result<()> {
    let s = setup(net, batch, seed, &Device::Cpu)?;
    let mut tensors: HashMap<String, Tensor> = s
        .varmap
        .data()
        .lock()
        .map_err(|_| candle_core::Error::Msg("variable map lock poisoned".into()))?
        .iter()
        .map(|(name, var)| (name.clone(), var.as_tensor().clone()))
        .collect();
    tensors.insert("x".into(), s.x.to_dtype(DType::F32)?);
    tensors.insert("y".into(), s.y);
    let stem = format!("{}-b{batch}", net.name);
    candle_core::safetensors::save(&tensors, dir.join(format!("{stem}.safetensors")))?;
    let spec = serde_json::json!({
        "name": net.name,
        "batch": batch,
        "architecture": net.architecture,
        "in_channels": net.in_channels,
        "input_len": net.input_len,
        "weights": format!("{stem}.safetensors"),
    });
    std::fs::write(
        dir.join(format!("{stem}.json")),
        serde_json::to_string_pretty(&spec).map_err(|e| candle_core::Error::Msg(e.to_string()))?,
    )?;
    Ok(())
}
