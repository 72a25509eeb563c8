//! Post-training int8 quantisation of a lowered network, and the int8 model it produces.
//!
//! Calibration runs the f32 graph over training windows and keeps each tensor's range and a
//! sample of its values; each activation's range is the one, among the full range and ranges
//! shrunk towards 0, with the least squared quantisation error on the sample. Then, as TFLite
//! Micro and CMSIS-NN expect:
//! - activations are per-tensor asymmetric int8, `real = scale * (q - zero_point)`, the range
//!   widened to include 0; pools and the global average pool keep their input's scale (the
//!   kernels sum raw int8 values), and the RR side inputs share the pooled features' scale
//!   (the head's dense layer reads both as one tensor);
//! - weights are symmetric int8 per output channel (`scale = max |w| / 127`), biases int32 at
//!   `input_scale * weight_scale`;
//! - each output channel's `input_scale * weight_scale / output_scale` becomes a Q31
//!   multiplier and shift with the firmware's own `quantize_multiplier`.
//!
//! The resulting [`Int8Model`] runs through the firmware crate's [`Model`] (compiled for the
//! host): the int8 reference and the device execute the same code.

use anyhow::{bail, Context};
use candle_core::Tensor;
use ecgnas_firmware::arena::{plan, BufferRequest, DEFAULT_ALIGNMENT};
use ecgnas_firmware::kernels::add::{AddInput, AddParams, ADD_LEFT_SHIFT};
use ecgnas_firmware::kernels::conv1d::Conv1dParams;
use ecgnas_firmware::kernels::dense::DenseParams;
use ecgnas_firmware::kernels::depthwise1d::Depthwise1dParams;
use ecgnas_firmware::kernels::global_avg_pool::GlobalAvgPoolParams;
use ecgnas_firmware::kernels::{Clamp, Padding, PerChannelQuant, Pool1dParams};
use ecgnas_firmware::model::{slot_mut, Layer, Model, Op as DeviceOp, Slot, Weights};
use ecgnas_firmware::preprocess::quantize_value;
use ecgnas_firmware::quant::quantize_multiplier;
use serde::{Deserialize, Serialize};

use super::graph::{Activation, Graph, Op};
use crate::train::ExampleSet;

/// Examples the calibration uses at most (spread evenly over the training set).
pub const CALIBRATION_EXAMPLES: usize = 512;

/// Per-tensor affine quantisation: `real = scale * (q - zero_point)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QuantParams {
    /// The step.
    pub scale: f32,
    /// The int8 value of real 0.
    pub zero_point: i32,
}

impl QuantParams {
    /// The parameters covering `[min, max]` (widened to include 0).
    pub fn from_range(min: f32, max: f32) -> QuantParams {
        let (min, max) = (min.min(0.0), max.max(0.0));
        let scale = ((max - min) / 255.0).max(1e-8);
        let zero_point = (-128.0 - min / scale).round().clamp(-128.0, 127.0) as i32;
        QuantParams { scale, zero_point }
    }

    /// `q`'s real value.
    pub fn dequantize(&self, q: i8) -> f32 {
        self.scale * (i32::from(q) - self.zero_point) as f32
    }

    /// `x` as int8 (the firmware's input quantisation).
    pub fn quantize(&self, x: f32) -> i8 {
        quantize_value(x, self.scale, self.zero_point)
    }
}

/// A slot of the arena (serialisable twin of the firmware's [`Slot`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotPlan {
    /// First byte.
    pub offset: usize,
    /// Bytes.
    pub len: usize,
}

impl From<SlotPlan> for Slot {
    fn from(s: SlotPlan) -> Slot {
        Slot {
            offset: s.offset,
            len: s.len,
        }
    }
}

/// What one int8 layer computes (its weights live in [`Int8Layer`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Int8Op {
    /// Standard or pointwise convolution, weights `[out][kernel][in]`.
    Conv {
        /// Input length.
        length: usize,
        /// Input channels.
        in_channels: usize,
        /// Output channels.
        out_channels: usize,
        /// Kernel.
        kernel: usize,
        /// Stride.
        stride: usize,
        /// Dilation.
        dilation: usize,
    },
    /// Depthwise convolution, weights `[kernel][channels]`.
    Depthwise {
        /// Input length.
        length: usize,
        /// Channels.
        channels: usize,
        /// Kernel.
        kernel: usize,
        /// Stride.
        stride: usize,
        /// Dilation.
        dilation: usize,
    },
    /// Dense layer, weights `[out][in]`.
    Dense {
        /// Input features.
        in_features: usize,
        /// Output features.
        out_features: usize,
    },
    /// Max pooling, window 2, stride 2.
    MaxPool {
        /// Input length.
        length: usize,
        /// Channels.
        channels: usize,
    },
    /// Average pooling, window 2, stride 2.
    AvgPool {
        /// Input length.
        length: usize,
        /// Channels.
        channels: usize,
    },
    /// Global average pooling.
    GlobalAvgPool {
        /// Input length.
        length: usize,
        /// Channels.
        channels: usize,
    },
    /// Residual add.
    Add {
        /// Elements.
        len: usize,
        /// `(offset, multiplier, shift)` of the first input.
        input1: (i32, i32, i32),
        /// The same for the second input.
        input2: (i32, i32, i32),
        /// Output multiplier.
        output_multiplier: i32,
        /// Output shift.
        output_shift: i32,
    },
}

/// One layer of the int8 model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Int8Layer {
    /// The op and its shape.
    pub op: Int8Op,
    /// The graph node it comes from.
    pub node: usize,
    /// `-input_zero_point`.
    pub input_offset: i32,
    /// `output_zero_point`.
    pub output_offset: i32,
    /// The fused activation's clamp `[min, max]`.
    pub clamp: (i8, i8),
    /// The input slot.
    pub input: SlotPlan,
    /// The second input slot (add only).
    pub second_input: SlotPlan,
    /// The output slot.
    pub output: SlotPlan,
    /// Per-output-channel weight scales (conv and dense; empty otherwise).
    pub weight_scales: Vec<f32>,
    /// Int8 weights (stored as a tensor, not in the plan).
    #[serde(skip)]
    pub weights: Vec<i8>,
    /// Int32 bias.
    #[serde(skip)]
    pub bias: Vec<i32>,
    /// Q31 multipliers per output channel.
    #[serde(skip)]
    pub multipliers: Vec<i32>,
    /// Shifts per output channel.
    #[serde(skip)]
    pub shifts: Vec<i32>,
}

/// A quantised network with its arena plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Int8Model {
    /// Layers in execution order.
    pub layers: Vec<Int8Layer>,
    /// Arena bytes.
    pub arena_len: usize,
    /// The network input's slot (`[samples][leads]`).
    pub input: SlotPlan,
    /// The RR side inputs' slot (`len` 0 if none).
    pub side_input: SlotPlan,
    /// The logits' slot.
    pub output: SlotPlan,
    /// Leads.
    pub leads: usize,
    /// Samples per lead of the network input.
    pub samples: usize,
    /// The quantisation of every graph tensor (index = graph tensor).
    pub tensors: Vec<QuantParams>,
    /// The quantisation of the RR side inputs (that of the pooled features).
    pub side_quant: Option<QuantParams>,
    /// The graph tensor holding the logits.
    pub logits_tensor: usize,
}

#[derive(Clone, Copy)]
struct Range {
    min: f32,
    max: f32,
}

impl Range {
    const EMPTY: Range = Range {
        min: f32::INFINITY,
        max: f32::NEG_INFINITY,
    };
    fn add(&mut self, v: f32) {
        if v.is_finite() {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
    }
    fn union(self, o: Range) -> Range {
        Range {
            min: self.min.min(o.min),
            max: self.max.max(o.max),
        }
    }
    fn params(self) -> QuantParams {
        if self.min > self.max {
            QuantParams::from_range(0.0, 0.0)
        } else {
            QuantParams::from_range(self.min, self.max)
        }
    }
}

/// What calibration keeps of one tensor: its exact range and an evenly strided sample of its
/// values.
#[derive(Clone)]
struct Stats {
    range: Range,
    samples: Vec<f32>,
}

/// Values a tensor keeps per calibration batch.
const SAMPLES_PER_BATCH: usize = 16_384;

impl Stats {
    fn new() -> Stats {
        Stats {
            range: Range::EMPTY,
            samples: Vec::new(),
        }
    }

    fn add_all(&mut self, values: &[f32]) {
        values.iter().for_each(|&v| self.range.add(v));
        let stride = values.len().div_ceil(SAMPLES_PER_BATCH).max(1);
        self.samples
            .extend(values.iter().step_by(stride).filter(|v| v.is_finite()));
    }

    fn merge(&mut self, other: &Stats) {
        self.range = self.range.union(other.range);
        self.samples.extend_from_slice(&other.samples);
    }

    /// The quantisation with the least squared error on the samples, among the full range and
    /// ranges shrunk towards 0 (clipping rare outliers buys finer steps for the bulk of the
    /// values).
    fn best_params(&self) -> QuantParams {
        if self.range.min > self.range.max {
            return QuantParams::from_range(0.0, 0.0);
        }
        let mut best = (f64::INFINITY, self.range.params());
        for step in 0..=12 {
            let f = 1.0 - 0.05 * step as f32;
            let q = QuantParams::from_range(self.range.min * f, self.range.max * f);
            let error: f64 = self
                .samples
                .iter()
                .map(|&x| f64::from(x - q.dequantize(q.quantize(x))).powi(2))
                .sum();
            if error < best.0 {
                best = (error, q);
            }
        }
        best.1
    }
}

/// Each tensor's statistics over up to [`CALIBRATION_EXAMPLES`] examples of `set`, and the side
/// inputs'.
fn calibrate(graph: &Graph, set: &ExampleSet) -> anyhow::Result<(Vec<Stats>, Stats)> {
    let device = Graph::device();
    let picked: Vec<usize> = if set.n <= CALIBRATION_EXAMPLES {
        (0..set.n).collect()
    } else {
        (0..CALIBRATION_EXAMPLES)
            .map(|i| i * set.n / CALIBRATION_EXAMPLES)
            .collect()
    };
    if picked.is_empty() {
        bail!("no calibration examples");
    }
    let mut stats = vec![Stats::new(); graph.tensors.len()];
    let mut side_stats = Stats::new();
    let width = set.channels * set.len;
    for chunk in picked.chunks(128) {
        let mut x = Vec::with_capacity(chunk.len() * width);
        let mut side = Vec::new();
        for &i in chunk {
            x.extend_from_slice(&set.inputs[i * width..(i + 1) * width]);
            side.extend_from_slice(&set.side[i * set.side_width..(i + 1) * set.side_width]);
        }
        side_stats.add_all(&side);
        let x = Tensor::from_vec(x, (chunk.len(), set.channels, set.len), &device)?;
        let side = if set.side_width > 0 {
            Some(Tensor::from_vec(
                side,
                (chunk.len(), set.side_width),
                &device,
            )?)
        } else {
            None
        };
        for (s, t) in stats.iter_mut().zip(graph.eval(&x, side.as_ref())?) {
            s.add_all(&t.flatten_all()?.to_vec1::<f32>()?);
        }
    }
    Ok((stats, side_stats))
}

fn clamp_for(activation: Activation, out: QuantParams) -> (i8, i8) {
    let zp = out.zero_point.clamp(-128, 127) as i8;
    match activation {
        Activation::None => (i8::MIN, i8::MAX),
        Activation::Relu => (zp, i8::MAX),
        Activation::Relu6 => {
            let six = (6.0 / out.scale).round() as i64 + i64::from(out.zero_point);
            (zp, six.clamp(i64::from(zp), 127) as i8)
        }
    }
}

/// Symmetric per-channel weights: `(int8 weights in the source order, scales)`.
fn quantize_weights(weight: &[f32], out_channels: usize) -> (Vec<i8>, Vec<f32>) {
    let per = weight.len() / out_channels.max(1);
    let mut q = Vec::with_capacity(weight.len());
    let mut scales = Vec::with_capacity(out_channels);
    for row in weight.chunks(per.max(1)) {
        let peak = row.iter().fold(0f32, |m, v| m.max(v.abs()));
        let scale = if peak > 0.0 {
            peak / 127.0
        } else {
            1.0 / 127.0
        };
        scales.push(scale);
        q.extend(
            row.iter()
                .map(|&v| (v / scale).round().clamp(-127.0, 127.0) as i8),
        );
    }
    (q, scales)
}

fn requant(
    bias: &[f32],
    input: QuantParams,
    weight_scales: &[f32],
    output: QuantParams,
) -> (Vec<i32>, Vec<i32>, Vec<i32>) {
    let mut b = Vec::with_capacity(bias.len());
    let mut m = Vec::with_capacity(bias.len());
    let mut s = Vec::with_capacity(bias.len());
    for (&bias, &ws) in bias.iter().zip(weight_scales) {
        let bias_scale = f64::from(input.scale) * f64::from(ws);
        b.push(
            (f64::from(bias) / bias_scale)
                .round()
                .clamp(i32::MIN as f64, i32::MAX as f64) as i32,
        );
        let (mult, shift) = quantize_multiplier(bias_scale / f64::from(output.scale));
        m.push(mult);
        s.push(shift);
    }
    (b, m, s)
}

/// Quantises `graph` with ranges calibrated on `calibration` (preprocessed training
/// examples), and plans its arena.
pub fn quantize(graph: &Graph, calibration: &ExampleSet) -> anyhow::Result<Int8Model> {
    let (stats, side_stats) = calibrate(graph, calibration).context("calibration")?;
    // Tensors that must share their input's quantisation.
    let mut group: Vec<usize> = (0..graph.tensors.len()).collect();
    let mut concat = None;
    for node in &graph.nodes {
        match node.op {
            Op::MaxPool2 | Op::AvgPool2 | Op::GlobalAvgPool => {
                group[node.output] = group[node.inputs[0]]
            }
            Op::ConcatSide => {
                group[node.output] = group[node.inputs[0]];
                concat = Some(node.output);
            }
            _ => {}
        }
    }
    let mut group_stats = vec![Stats::new(); graph.tensors.len()];
    for (t, s) in stats.iter().enumerate() {
        // A pool's or the concat's values are its input's: counted once, with the input.
        if group[t] == t {
            group_stats[t].merge(s);
        } else {
            let range = s.range;
            group_stats[group[t]].range = group_stats[group[t]].range.union(range);
        }
    }
    if let Some(c) = concat {
        group_stats[group[c]].merge(&side_stats);
    }
    // The logits keep their full range: clipped logits would tie, and ties cost ranking
    // metrics (AUROC) more than coarser steps do.
    let group_params: Vec<QuantParams> = group_stats
        .iter()
        .enumerate()
        .map(|(t, s)| {
            if t == group[graph.output] {
                s.range.params()
            } else {
                s.best_params()
            }
        })
        .collect();
    let tensors: Vec<QuantParams> = (0..graph.tensors.len())
        .map(|t| group_params[group[t]])
        .collect();

    // Execution steps: every node but the concat, which is a placement in the arena.
    let steps: Vec<usize> = graph
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.op != Op::ConcatSide)
        .map(|(i, _)| i)
        .collect();
    let step_of_node = |node: usize| steps.iter().position(|&s| s == node);
    // Buffers: one per tensor, except the pooled features, which live in the concat's buffer.
    let mut alias: Vec<Option<usize>> = vec![None; graph.tensors.len()];
    if let Some(c) = concat {
        if let Some(n) = graph.nodes.iter().find(|n| n.output == c) {
            alias[n.inputs[0]] = Some(c);
        }
    }
    let buffer_of = |t: usize| alias[t].unwrap_or(t);
    let last_step = steps.len().saturating_sub(1);
    let mut first = vec![usize::MAX; graph.tensors.len()];
    let mut last = vec![0usize; graph.tensors.len()];
    first[0] = 0;
    if let Some(c) = concat {
        // The caller writes the side inputs before the first layer.
        first[c] = 0;
    }
    for (step, &n) in steps.iter().enumerate() {
        let node = &graph.nodes[n];
        let out = buffer_of(node.output);
        first[out] = first[out].min(step);
        last[out] = last[out].max(step);
        for &i in &node.inputs {
            let b = buffer_of(i);
            last[b] = last[b].max(step);
        }
    }
    if let Some(c) = concat {
        // Read by the layer after the concat node.
        if let Some(reader) = graph.nodes.iter().position(|n| n.inputs.contains(&c)) {
            if let Some(step) = step_of_node(reader) {
                last[c] = last[c].max(step);
            }
        }
    }
    last[buffer_of(graph.output)] = last_step;
    let buffers: Vec<usize> = (0..graph.tensors.len())
        .filter(|&t| alias[t].is_none() && first[t] != usize::MAX)
        .collect();
    let requests: Vec<BufferRequest> = buffers
        .iter()
        .map(|&t| BufferRequest {
            size: graph.tensors[t].elements(),
            first_use: first[t],
            last_use: last[t].max(first[t]),
        })
        .collect();
    let mut offsets = vec![0usize; requests.len()];
    let arena_len = plan(&requests, DEFAULT_ALIGNMENT, &mut offsets)
        .map_err(|e| anyhow::anyhow!("arena plan: {e}"))?;
    let slot = |t: usize| -> SlotPlan {
        let b = buffer_of(t);
        let offset = buffers
            .iter()
            .position(|&x| x == b)
            .map_or(0, |i| offsets[i]);
        SlotPlan {
            offset,
            len: graph.tensors[t].elements(),
        }
    };

    let mut layers = Vec::with_capacity(steps.len());
    for &n in &steps {
        let node = &graph.nodes[n];
        let x = node.inputs[0];
        let (qi, qo) = (tensors[x], tensors[node.output]);
        let shape = graph.tensors[x];
        let empty = SlotPlan { offset: 0, len: 0 };
        let mut layer = Int8Layer {
            op: Int8Op::MaxPool {
                length: 0,
                channels: 0,
            },
            node: n,
            input_offset: -qi.zero_point,
            output_offset: qo.zero_point,
            clamp: (i8::MIN, i8::MAX),
            input: slot(x),
            second_input: empty,
            output: slot(node.output),
            weight_scales: Vec::new(),
            weights: Vec::new(),
            bias: Vec::new(),
            multipliers: Vec::new(),
            shifts: Vec::new(),
        };
        match &node.op {
            Op::Conv(c) => {
                let (q, scales) = quantize_weights(&c.weight, c.out_channels);
                // PyTorch (out, in/groups, k) to the kernels' layouts.
                let weights = if c.depthwise {
                    let mut w = vec![0i8; q.len()];
                    for ch in 0..c.out_channels {
                        for k in 0..c.kernel {
                            w[k * c.out_channels + ch] = q[ch * c.kernel + k];
                        }
                    }
                    w
                } else {
                    let mut w = vec![0i8; q.len()];
                    for o in 0..c.out_channels {
                        for i in 0..c.in_channels {
                            for k in 0..c.kernel {
                                w[(o * c.kernel + k) * c.in_channels + i] =
                                    q[(o * c.in_channels + i) * c.kernel + k];
                            }
                        }
                    }
                    w
                };
                let (bias, multipliers, shifts) = requant(&c.bias, qi, &scales, qo);
                layer.op = if c.depthwise {
                    Int8Op::Depthwise {
                        length: shape.len,
                        channels: c.in_channels,
                        kernel: c.kernel,
                        stride: c.stride,
                        dilation: c.dilation,
                    }
                } else {
                    Int8Op::Conv {
                        length: shape.len,
                        in_channels: c.in_channels,
                        out_channels: c.out_channels,
                        kernel: c.kernel,
                        stride: c.stride,
                        dilation: c.dilation,
                    }
                };
                layer.clamp = clamp_for(c.activation, qo);
                layer.weight_scales = scales;
                (layer.weights, layer.bias, layer.multipliers, layer.shifts) =
                    (weights, bias, multipliers, shifts);
            }
            Op::Dense(d) => {
                let (q, scales) = quantize_weights(&d.weight, d.out_features);
                let (bias, multipliers, shifts) = requant(&d.bias, qi, &scales, qo);
                layer.op = Int8Op::Dense {
                    in_features: d.in_features,
                    out_features: d.out_features,
                };
                layer.clamp = clamp_for(d.activation, qo);
                layer.weight_scales = scales;
                (layer.weights, layer.bias, layer.multipliers, layer.shifts) =
                    (q, bias, multipliers, shifts);
            }
            Op::Add(act) => {
                let b = node.inputs[1];
                let (q1, q2) = (qi, tensors[b]);
                let twice_max = 2.0 * f64::from(q1.scale.max(q2.scale));
                let (m1, s1) = quantize_multiplier(f64::from(q1.scale) / twice_max);
                let (m2, s2) = quantize_multiplier(f64::from(q2.scale) / twice_max);
                let (mo, so) = quantize_multiplier(
                    twice_max / (f64::from(1u32 << ADD_LEFT_SHIFT) * f64::from(qo.scale)),
                );
                if s1 > 0 || s2 > 0 || so > 0 {
                    bail!("residual add at node {n}: scales too far apart to requantise");
                }
                layer.op = Int8Op::Add {
                    len: graph.tensors[node.output].elements(),
                    input1: (-q1.zero_point, m1, s1),
                    input2: (-q2.zero_point, m2, s2),
                    output_multiplier: mo,
                    output_shift: so,
                };
                layer.second_input = slot(b);
                layer.clamp = clamp_for(*act, qo);
            }
            Op::MaxPool2 => {
                layer.op = Int8Op::MaxPool {
                    length: shape.len,
                    channels: shape.channels,
                }
            }
            Op::AvgPool2 => {
                layer.op = Int8Op::AvgPool {
                    length: shape.len,
                    channels: shape.channels,
                }
            }
            Op::GlobalAvgPool => {
                layer.op = Int8Op::GlobalAvgPool {
                    length: shape.len,
                    channels: shape.channels,
                }
            }
            Op::ConcatSide => continue,
        }
        layers.push(layer);
    }
    let side_input = match concat {
        Some(c) => {
            let whole = slot(c);
            let features = graph.tensors[c].channels - graph.side_inputs;
            SlotPlan {
                offset: whole.offset + features,
                len: graph.side_inputs,
            }
        }
        None => SlotPlan { offset: 0, len: 0 },
    };
    let model = Int8Model {
        layers,
        arena_len,
        input: slot(0),
        side_input,
        output: slot(graph.output),
        leads: graph.tensors[0].channels,
        samples: graph.tensors[0].len,
        side_quant: concat.map(|c| tensors[c]),
        tensors,
        logits_tensor: graph.output,
    };
    model.check()?;
    Ok(model)
}

impl Int8Layer {
    /// The kind of layer, as the firmware names it (`conv1d`, `pointwise`, `depthwise`...).
    pub fn op_name(&self) -> &'static str {
        self.device_layer().op.name()
    }

    /// Multiply-accumulates of one inference.
    pub fn macs(&self) -> usize {
        self.device_layer().op.macs()
    }

    /// The firmware's view of the layer, borrowing its weights.
    pub fn device_layer(&self) -> Layer<'_> {
        let clamp = Clamp {
            min: self.clamp.0,
            max: self.clamp.1,
        };
        let weights = Weights {
            weights: &self.weights,
            bias: &self.bias,
            quant: PerChannelQuant {
                multipliers: &self.multipliers,
                shifts: &self.shifts,
            },
        };
        let pool = |length: usize, channels: usize| Pool1dParams {
            length,
            channels,
            window: 2,
            stride: 2,
            padding: Padding::Valid,
            clamp,
        };
        let op = match self.op {
            Int8Op::Conv {
                length,
                in_channels,
                out_channels,
                kernel,
                stride,
                dilation,
            } => DeviceOp::Conv(
                Conv1dParams {
                    length,
                    in_channels,
                    out_channels,
                    kernel,
                    stride,
                    dilation,
                    padding: Padding::Same,
                    input_offset: self.input_offset,
                    output_offset: self.output_offset,
                    clamp,
                },
                weights,
            ),
            Int8Op::Depthwise {
                length,
                channels,
                kernel,
                stride,
                dilation,
            } => DeviceOp::Depthwise(
                Depthwise1dParams {
                    length,
                    channels,
                    kernel,
                    stride,
                    dilation,
                    padding: Padding::Same,
                    input_offset: self.input_offset,
                    output_offset: self.output_offset,
                    clamp,
                },
                weights,
            ),
            Int8Op::Dense {
                in_features,
                out_features,
            } => DeviceOp::Dense(
                DenseParams {
                    in_features,
                    out_features,
                    input_offset: self.input_offset,
                    output_offset: self.output_offset,
                    clamp,
                },
                weights,
            ),
            Int8Op::MaxPool { length, channels } => DeviceOp::MaxPool(pool(length, channels)),
            Int8Op::AvgPool { length, channels } => DeviceOp::AvgPool(pool(length, channels)),
            Int8Op::GlobalAvgPool { length, channels } => {
                DeviceOp::GlobalAvgPool(GlobalAvgPoolParams {
                    length,
                    channels,
                    clamp,
                })
            }
            Int8Op::Add {
                len,
                input1,
                input2,
                output_multiplier,
                output_shift,
            } => DeviceOp::Add(AddParams {
                len,
                input1: AddInput {
                    offset: input1.0,
                    multiplier: input1.1,
                    shift: input1.2,
                },
                input2: AddInput {
                    offset: input2.0,
                    multiplier: input2.1,
                    shift: input2.2,
                },
                output_multiplier,
                output_shift,
                output_offset: self.output_offset,
                clamp,
            }),
        };
        Layer {
            op,
            input: self.input.into(),
            second_input: self.second_input.into(),
            output: self.output.into(),
        }
    }
}

impl Int8Model {
    /// The firmware's layers, borrowing this model's weights.
    pub fn device_layers(&self) -> Vec<Layer<'_>> {
        self.layers.iter().map(Int8Layer::device_layer).collect()
    }

    /// The firmware model over `layers` (from [`Int8Model::device_layers`]).
    pub fn device_model<'a>(&self, layers: &'a [Layer<'a>]) -> Model<'a> {
        Model {
            layers,
            arena_len: self.arena_len,
            input: self.input.into(),
            side_input: self.side_input.into(),
            output: self.output.into(),
        }
    }

    /// The logits' quantisation.
    pub fn logits_quant(&self) -> QuantParams {
        self.tensors[self.logits_tensor]
    }

    /// The network input's quantisation.
    pub fn input_quant(&self) -> QuantParams {
        self.tensors[0]
    }

    /// Checks the plan on a zero input: every layer runs.
    pub fn check(&self) -> anyhow::Result<()> {
        let input = vec![0f32; self.leads * self.samples];
        let side = vec![0f32; self.side_input.len];
        self.run(&input, &side).map(|_| ())
    }

    /// The int8 logits for one preprocessed example: `input` channel-major (`leads x
    /// samples`, as the f32 network takes it), `side` the RR inputs.
    pub fn run(&self, input: &[f32], side: &[f32]) -> anyhow::Result<Vec<i8>> {
        if input.len() != self.leads * self.samples || side.len() != self.side_input.len {
            bail!(
                "int8 model: input of {} values and {} side inputs, expected {} x {} and {}",
                input.len(),
                side.len(),
                self.leads,
                self.samples,
                self.side_input.len
            );
        }
        let mut arena = vec![0i8; self.arena_len];
        let q = self.input_quant();
        let slot = slot_mut(&mut arena, self.input.into())
            .ok_or_else(|| anyhow::anyhow!("int8 model: input slot outside the arena"))?;
        // Channel-major to the kernels' channels-last layout.
        for (t, row) in slot.chunks_exact_mut(self.leads).enumerate() {
            for (lead, v) in row.iter_mut().enumerate() {
                *v = q.quantize(input[lead * self.samples + t]);
            }
        }
        if let Some(sq) = self.side_quant {
            let slot = slot_mut(&mut arena, self.side_input.into())
                .ok_or_else(|| anyhow::anyhow!("int8 model: side slot outside the arena"))?;
            for (v, &x) in slot.iter_mut().zip(side) {
                *v = sq.quantize(x);
            }
        }
        let layers = self.device_layers();
        let model = self.device_model(&layers);
        model
            .run(&mut arena)
            .map_err(|e| anyhow::anyhow!("int8 model: {e}"))?;
        Ok(model.logits(&arena).to_vec())
    }

    /// Dequantised logits.
    pub fn dequantize_logits(&self, logits: &[i8]) -> Vec<f32> {
        let q = self.logits_quant();
        logits.iter().map(|&v| q.dequantize(v)).collect()
    }
}
