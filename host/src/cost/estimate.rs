//! What a candidate costs on a chip: MACs, parameters, flash, peak SRAM, cycles, latency and
//! energy, preprocessing included.
//!
//! SRAM comes from the firmware's own arena planner ([`ecgnas_firmware::arena::plan`]) run on
//! the candidate's buffers, so the prediction is the plan the device will use. Cycles are the
//! profile's per-kernel model `a*MACs + b*outputs + c*inputs + d + e*extra`, each count as the
//! layer's code path runs it ([`PathWork`]).

use ecgnas_firmware::arena::{plan, BufferRequest, DEFAULT_ALIGNMENT};
use ecgnas_firmware::kernels::paths::PathWork;
use serde::{Deserialize, Serialize};

use super::profile::{KernelKind, Profile};
use crate::space::{
    Band, Baseline, Candidate, ConvRole, LayerOp, LayerShape, Normalisation, SpaceError,
};

/// Flash taken by the runtime's own code (the firmware's size goal), in bytes.
pub const RUNTIME_CODE_BYTES: u64 = 16 * 1024;
/// Stack reserved for the runtime while it runs a model, in bytes.
pub const RUNTIME_STACK_BYTES: u64 = 2 * 1024;
/// Flash per layer for the layer plan (kind, shapes, offsets), in bytes.
const LAYER_PLAN_BYTES: u64 = 32;

/// A candidate's predicted cost on one profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostEstimate {
    /// Multiply-accumulates per inference, preprocessing included.
    pub macs: u64,
    /// Weights and biases stored for the network.
    pub params: u64,
    /// Flash: int8 weights, int32 biases, per-channel requantisation parameters, the layer
    /// plan, FIR taps and the runtime's code.
    pub flash_bytes: u64,
    /// Peak SRAM: the activation arena, the raw input window and the stack.
    pub sram_bytes: u64,
    /// The activation arena alone (the planner's size).
    pub arena_bytes: u64,
    /// Cycles (or instructions, as the profile's unit says) per inference.
    pub cycles: f64,
    /// Latency per inference, milliseconds.
    pub latency_ms: f64,
    /// Energy per inference, microjoules.
    pub energy_uj: f64,
    /// Whether the candidate fits the profile's flash, SRAM and latency budget.
    pub fits: bool,
    /// Whether it fits the hard limits alone, flash and SRAM (latency is a soft term of the
    /// search's reward).
    pub fits_memory: bool,
    /// What does not fit, in words.
    pub violations: Vec<String>,
}

/// Why a candidate cannot be costed.
#[derive(Debug, thiserror::Error)]
pub enum CostError {
    /// The candidate does not run on the profile's input.
    #[error("candidate does not run at the profile's ADC rate: {0}")]
    Space(#[from] SpaceError),
    /// The arena planner refused the buffers (a bug: they are built here).
    #[error("arena planner: {0:?}")]
    Arena(ecgnas_firmware::arena::ArenaError),
}

struct LayerCost {
    kind: KernelKind,
    macs: u64,
    /// The MACs the kernel's code path executes (padding and dilation gaps included), which
    /// its cost follows.
    priced_macs: u64,
    /// The kind's extra work (see [`PathWork`]; the divisions of average pooling).
    extra: u64,
    params: u64,
    quant_channels: u64,
    /// The outputs and inputs priced (for a convolution, its path's: see [`PathWork`]).
    outputs: u64,
    inputs: u64,
}

/// The kernel kind of a convolution, by the code the device runs for its shape
/// ([`ecgnas_firmware::kernels::paths`]), and the work its path does.
fn conv_kind(
    layer: &LayerShape,
    role: ConvRole,
    kernel: usize,
    stride: usize,
    dilation: usize,
) -> (KernelKind, PathWork) {
    use ecgnas_firmware::kernels::conv1d::Conv1dParams;
    use ecgnas_firmware::kernels::depthwise1d::Depthwise1dParams;
    use ecgnas_firmware::kernels::paths::{
        conv1d_path, conv1d_work, depthwise_path, depthwise_work, KernelPath,
    };
    use ecgnas_firmware::kernels::{Clamp, Padding};
    if role == ConvRole::Depthwise {
        let p = Depthwise1dParams {
            length: layer.in_length,
            channels: layer.in_channels,
            kernel,
            stride,
            dilation,
            padding: Padding::Same,
            input_offset: 0,
            output_offset: 0,
            clamp: Clamp::NONE,
        };
        let kind = match depthwise_path(&p) {
            KernelPath::Scalar => KernelKind::DepthwiseScalar,
            _ => KernelKind::Depthwise,
        };
        return (kind, depthwise_work(&p, layer.out_length));
    }
    let p = Conv1dParams {
        length: layer.in_length,
        in_channels: layer.in_channels,
        out_channels: layer.out_channels,
        kernel,
        stride,
        dilation,
        padding: Padding::Same,
        input_offset: 0,
        output_offset: 0,
        clamp: Clamp::NONE,
    };
    let kind = match conv1d_path(&p) {
        KernelPath::ConvSingle => KernelKind::ConvSingle,
        KernelPath::Scalar => KernelKind::ConvScalar,
        _ if kernel == 1 => KernelKind::Pointwise,
        _ => KernelKind::Conv,
    };
    (kind, conv1d_work(&p, layer.out_length))
}

/// The kernel kind of a dense layer of `in_features` inputs.
fn dense_kind(in_features: usize) -> KernelKind {
    use ecgnas_firmware::kernels::dense::DenseParams;
    use ecgnas_firmware::kernels::paths::{dense_path, KernelPath};
    use ecgnas_firmware::kernels::Clamp;
    let p = DenseParams {
        in_features,
        out_features: 1,
        input_offset: 0,
        output_offset: 0,
        clamp: Clamp::NONE,
    };
    match dense_path(&p) {
        KernelPath::Scalar => KernelKind::DenseScalar,
        _ => KernelKind::Dense,
    }
}

/// The work an int8 convolution's code path does for `out_len` output steps (see
/// [`PathWork`]); `None` for the other ops, whose terms are their MACs, outputs and inputs.
pub fn device_layer_work(op: &ecgnas_firmware::model::Op<'_>, out_len: usize) -> Option<PathWork> {
    use ecgnas_firmware::kernels::paths::{conv1d_work, depthwise_work};
    use ecgnas_firmware::model::Op;
    match op {
        Op::Conv(p, _) => Some(conv1d_work(p, out_len)),
        Op::Depthwise(p, _) => Some(depthwise_work(p, out_len)),
        _ => None,
    }
}

/// The kernel kind of an int8 layer of the firmware, by the code the device runs for it: the
/// calibration fits each measured layer to this kind.
pub fn device_layer_kind(op: &ecgnas_firmware::model::Op<'_>) -> KernelKind {
    use ecgnas_firmware::kernels::paths::{conv1d_path, dense_path, depthwise_path, KernelPath};
    use ecgnas_firmware::model::Op;
    match op {
        Op::Conv(p, _) => match conv1d_path(p) {
            KernelPath::ConvSingle => KernelKind::ConvSingle,
            KernelPath::Scalar => KernelKind::ConvScalar,
            _ if p.kernel == 1 => KernelKind::Pointwise,
            _ => KernelKind::Conv,
        },
        Op::Depthwise(p, _) => match depthwise_path(p) {
            KernelPath::Scalar => KernelKind::DepthwiseScalar,
            _ => KernelKind::Depthwise,
        },
        Op::Dense(p, _) => match dense_path(p) {
            KernelPath::Scalar => KernelKind::DenseScalar,
            _ => KernelKind::Dense,
        },
        Op::MaxPool(_) | Op::AvgPool(_) | Op::GlobalAvgPool(_) => KernelKind::Pool,
        Op::Add(_) => KernelKind::Elementwise,
    }
}

fn layer_cost(layer: &LayerShape) -> LayerCost {
    let outputs = (layer.out_channels * layer.out_length) as u64;
    let inputs = (layer.in_channels * layer.in_length) as u64;
    let zero = |kind| LayerCost {
        kind,
        macs: 0,
        priced_macs: 0,
        extra: 0,
        params: 0,
        quant_channels: 0,
        outputs,
        inputs,
    };
    match &layer.op {
        LayerOp::Conv {
            role,
            kernel,
            stride,
            dilation,
            groups,
            ..
        } => {
            let per_output = (layer.in_channels / groups.max(&1)) * kernel;
            let (kind, work) = conv_kind(layer, *role, *kernel, *stride, *dilation);
            LayerCost {
                kind,
                macs: outputs * per_output as u64,
                priced_macs: work.macs as u64,
                extra: work.extra as u64,
                params: (layer.out_channels * per_output + layer.out_channels) as u64,
                quant_channels: layer.out_channels as u64,
                outputs: work.outputs as u64,
                inputs: work.inputs as u64,
            }
        }
        LayerOp::Dense { .. } | LayerOp::Output { .. } => LayerCost {
            kind: dense_kind(layer.in_channels),
            macs: (layer.in_channels * layer.out_channels) as u64,
            priced_macs: (layer.in_channels * layer.out_channels) as u64,
            extra: 0,
            params: (layer.in_channels * layer.out_channels + layer.out_channels) as u64,
            quant_channels: layer.out_channels as u64,
            outputs,
            inputs,
        },
        LayerOp::Pool { pool } => LayerCost {
            macs: outputs * 2,
            priced_macs: outputs * 2,
            // Average pooling divides each window's sum.
            extra: if matches!(pool, crate::space::Pool::Avg2) {
                outputs
            } else {
                0
            },
            ..zero(KernelKind::Pool)
        },
        LayerOp::GlobalAvgPool => LayerCost {
            macs: inputs,
            priced_macs: inputs,
            extra: 0,
            ..zero(KernelKind::Pool)
        },
        LayerOp::Add { .. } => LayerCost {
            macs: outputs,
            priced_macs: outputs,
            extra: 0,
            ..zero(KernelKind::Elementwise)
        },
        LayerOp::ConcatRr { .. } => zero(KernelKind::Elementwise),
    }
}

/// The activation buffers of a layer list, with lifetimes: buffer 0 is the network input;
/// each layer writes one new buffer; a block's input lives until its shortcut is consumed.
fn buffer_requests(layers: &[LayerShape], in_bytes: usize) -> Vec<BufferRequest> {
    let mut requests = vec![BufferRequest {
        size: in_bytes,
        first_use: 0,
        last_use: 0,
    }];
    let mut current = 0usize;
    let mut block_input = 0usize;
    let mut projection: Option<usize> = None;
    let mut block = None;
    for (i, layer) in layers.iter().enumerate() {
        if layer.block != block {
            block = layer.block;
            block_input = current;
            projection = None;
        }
        let size = layer.out_channels * layer.out_length;
        let read = |requests: &mut Vec<BufferRequest>, b: usize| {
            requests[b].last_use = requests[b].last_use.max(i)
        };
        match &layer.op {
            LayerOp::Conv {
                role: ConvRole::Projection,
                ..
            } => {
                read(&mut requests, block_input);
                requests.push(BufferRequest {
                    size,
                    first_use: i,
                    last_use: i,
                });
                projection = Some(requests.len() - 1);
                continue;
            }
            LayerOp::Add { .. } => {
                read(&mut requests, current);
                read(&mut requests, projection.unwrap_or(block_input));
            }
            LayerOp::ConcatRr { .. } => {
                // The pooled features are written straight into the concat's buffer, which
                // holds the RR inputs from before the first layer (the firmware's layout).
                let pooled = &mut requests[current];
                pooled.size = size;
                pooled.first_use = 0;
                pooled.last_use = pooled.last_use.max(i);
                continue;
            }
            _ => read(&mut requests, current),
        }
        requests.push(BufferRequest {
            size,
            first_use: i,
            last_use: i,
        });
        current = requests.len() - 1;
    }
    // The output is read once more, by the decision step.
    requests[current].last_use = layers.len();
    requests
}

/// Per kept sample, the set-up of a preprocessing stage in units of its own per-tap work,
/// measured on QEMU: the moving average's window and mean (14 of its taps), a normalisation's
/// passes (5), the FIR's window and edge handling (6 of its taps).
const MOVING_AVERAGE_SAMPLE_UNITS: usize = 14;
const NORMALISATION_SAMPLE_UNITS: usize = 5;
const FIR_SAMPLE_UNITS: usize = 6;

/// The preprocessing's work as the cost model prices it, for `leads` leads of `window` raw
/// samples each giving `samples` kept ones: as MACs the moving average's taps with its and the
/// normalisation's per-sample set-up, the kept samples, the raw ones, and as extra the FIR's
/// taps with its set-up.
pub fn preprocessing_work(
    leads: usize,
    window: usize,
    samples: usize,
    fir_taps: usize,
    moving_average: usize,
    normalised: bool,
) -> PathWork {
    let n_out = samples.saturating_mul(leads);
    let stage = |on: bool, units: usize| if on { units.saturating_mul(n_out) } else { 0 };
    PathWork {
        macs: moving_average
            .saturating_mul(n_out)
            .saturating_add(stage(moving_average > 0, MOVING_AVERAGE_SAMPLE_UNITS))
            .saturating_add(stage(normalised, NORMALISATION_SAMPLE_UNITS)),
        outputs: n_out,
        inputs: window.saturating_mul(leads),
        extra: fir_taps
            .saturating_mul(n_out)
            .saturating_add(stage(fir_taps > 0, FIR_SAMPLE_UNITS)),
    }
}

/// Predicts what `candidate` costs on `profile` for `leads` input leads at the profile's ADC
/// rate.
pub fn estimate(
    candidate: &Candidate,
    profile: &Profile,
    leads: usize,
) -> Result<CostEstimate, CostError> {
    estimate_at(candidate, profile, leads, profile.ecg.adc_sample_rate_hz)
}

/// [`estimate`] for windows arriving at `fs` Hz (a model exported for another profile's ADC
/// rate, run on this profile's core).
pub fn estimate_at(
    candidate: &Candidate,
    profile: &Profile,
    leads: usize,
    fs: f64,
) -> Result<CostEstimate, CostError> {
    let shape = candidate.preprocessing.pipeline_shape(fs)?;
    let layers = candidate.layer_shapes(shape.network_samples, leads)?;
    let model = &profile.cost;

    // Preprocessing on the device: the FIR computed only at the kept outputs, the moving
    // average as each sample's window sum, normalisation in two or three passes.
    let n_out = (shape.network_samples * leads) as u64;
    let n_in = (shape.window_samples * leads) as u64;
    let fir_taps = match candidate.preprocessing.band {
        Band::LowPass { taps, .. } => taps as u64,
        Band::None => 0,
    };
    // Counted as the exported ONNX graph's operators are: the FIR's taps per kept sample; the
    // moving average's window sum per sample plus its subtraction; for the z-score two sums,
    // the centring, the squares and the division; for max-abs the maximum and the division.
    let mut pre_macs = fir_taps * n_out;
    if !matches!(candidate.preprocessing.baseline, Baseline::None) {
        pre_macs += (shape.moving_average_samples.unwrap_or(0) as u64 + 1) * n_out;
    }
    pre_macs += match candidate.preprocessing.normalisation {
        Normalisation::None => 0,
        Normalisation::ZScore => 5 * n_out,
        Normalisation::MaxAbs => 2 * n_out,
    };
    let work = preprocessing_work(
        leads,
        shape.window_samples,
        shape.network_samples,
        fir_taps as usize,
        shape.moving_average_samples.unwrap_or(0),
        !matches!(candidate.preprocessing.normalisation, Normalisation::None),
    );
    let mut cycles = model
        .coefficients(KernelKind::Preprocessing)
        .cost_with_extra(
            work.macs as u64,
            work.outputs as u64,
            work.inputs as u64,
            work.extra as u64,
        );
    let (mut macs, mut params, mut quant_channels) = (pre_macs, 0u64, 0u64);
    for layer in &layers {
        let c = layer_cost(layer);
        // The concat is a placement in the arena: the device runs nothing for it.
        if !matches!(layer.op, LayerOp::ConcatRr { .. }) {
            cycles += model.coefficients(c.kind).cost_with_extra(
                c.priced_macs,
                c.outputs,
                c.inputs,
                c.extra,
            );
        }
        macs += c.macs;
        params += c.params;
        quant_channels += c.quant_channels;
    }
    let bias_count: u64 = layers
        .iter()
        .filter(|l| {
            matches!(
                l.op,
                LayerOp::Conv { .. } | LayerOp::Dense { .. } | LayerOp::Output { .. }
            )
        })
        .map(|l| l.out_channels as u64)
        .sum();
    let weight_count = params - bias_count;
    let flash_bytes = weight_count
        + 4 * bias_count
        + 8 * quant_channels
        + LAYER_PLAN_BYTES * layers.len() as u64
        + 2 * fir_taps
        + RUNTIME_CODE_BYTES;

    let requests = buffer_requests(&layers, shape.network_samples * leads);
    let mut offsets = vec![0usize; requests.len()];
    let arena_bytes =
        plan(&requests, DEFAULT_ALIGNMENT, &mut offsets).map_err(CostError::Arena)? as u64;
    // The firmware holds the raw window (f32, mV) and one lead's preprocessed samples with the
    // moving average's scratch (f32 each) beside the arena.
    let preprocessing_bytes = 4 * n_in + 8 * shape.network_samples as u64;
    let sram_bytes = arena_bytes + preprocessing_bytes + RUNTIME_STACK_BYTES;

    let latency_ms = profile.cycles_to_ms(cycles);
    let mut violations = Vec::new();
    if flash_bytes > profile.available_flash_bytes().get() {
        violations.push(format!(
            "flash {flash_bytes} B exceeds the {} B available",
            profile.available_flash_bytes().get()
        ));
    }
    let sram_limit = profile
        .available_sram_bytes()
        .get()
        .min(profile.sram_largest_region_bytes().get());
    if sram_bytes > sram_limit {
        violations.push(format!(
            "SRAM {sram_bytes} B exceeds the {sram_limit} B available"
        ));
    }
    let fits_memory = violations.is_empty();
    if latency_ms > profile.budget.latency_ms {
        violations.push(format!(
            "latency {latency_ms:.2} ms exceeds the {} ms budget",
            profile.budget.latency_ms
        ));
    }
    Ok(CostEstimate {
        macs,
        params,
        flash_bytes,
        sram_bytes,
        arena_bytes,
        cycles,
        latency_ms,
        energy_uj: profile.energy_uj(latency_ms),
        fits: violations.is_empty(),
        fits_memory,
        violations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::{SearchSpace, TaskShape, WindowKind};
    use rand::SeedableRng;

    fn space() -> SearchSpace {
        SearchSpace::default_for(&TaskShape {
            window: WindowKind::Fixed {
                choices_s: vec![10.0],
            },
            multi_label: true,
            n_classes: 6,
            input_fs_hz: 250.0,
            leads: 1,
        })
    }

    #[test]
    fn params_and_macs_of_sampled_candidates_are_consistent() {
        let profile = Profile::load("nrf52840").unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let mut costed = 0;
        for _ in 0..50 {
            let c = space().sample(&mut rng).unwrap();
            let Ok(e) = estimate(&c, &profile, 1) else {
                continue;
            };
            costed += 1;
            assert!(e.macs > 0 && e.params > 0);
            assert!(e.flash_bytes > RUNTIME_CODE_BYTES + e.params);
            assert!(e.sram_bytes > e.arena_bytes);
            assert_eq!(e.fits, e.violations.is_empty());
            assert!((e.latency_ms - e.cycles / 64_000.0).abs() < 1e-9 * e.latency_ms.max(1.0));
        }
        assert!(costed > 25);
    }

    #[test]
    fn arena_holds_the_two_largest_neighbours_of_a_chain() {
        // A plain chain: at each layer only its input and output are live.
        let layers: Vec<LayerShape> = [(1, 100, 8, 50), (8, 50, 16, 25)]
            .iter()
            .enumerate()
            .map(|(i, &(ci, li, co, lo))| LayerShape {
                block: Some(i),
                op: LayerOp::Pool {
                    pool: crate::space::Pool::Max2,
                },
                in_channels: ci,
                out_channels: co,
                in_length: li,
                out_length: lo,
            })
            .collect();
        let requests = buffer_requests(&layers, 100);
        assert_eq!(requests.len(), 3);
        assert_eq!((requests[0].first_use, requests[0].last_use), (0, 0));
        assert_eq!((requests[1].first_use, requests[1].last_use), (0, 1));
        assert_eq!((requests[2].first_use, requests[2].last_use), (1, 2));
        let mut offsets = vec![0; 3];
        let size = plan(&requests, 4, &mut offsets).unwrap();
        assert_eq!(size, 400 + 400); // 8x50 and 16x25 live together; 100 and 400 before
    }
}
