//! The layer set of the kernel benchmark, shared by the board app (`src/main.rs`) and the host
//! check (`host-check/src/main.rs`, which includes this file with `#[path]`), so both build the
//! same layers from the same data, run the same `ecgnas_firmware` kernels and hash the outputs
//! the same way. `no_std`, no float, no panic on the paths the app takes.
//!
//! The shapes are those of the CMSIS-NN comparison in BENCHMARKS.md section 6, at the lengths
//! of one 10 s window at 125 Hz (1250 samples) going through a strided stem:
//! 1250 -> 625 -> 313 -> 157 time steps (`Same` padding, dilation 1). The depthwise-separable
//! layers run at the length of the matching standard layer's input (313 for 32 channels, 157
//! for 64). Instructions per MAC hardly depend on the length.

use core::fmt;

use ecgnas_firmware::kernels::conv1d::{conv1d, conv1d_scalar, Conv1dParams};
use ecgnas_firmware::kernels::dense::{dense, dense_scalar, DenseParams};
use ecgnas_firmware::kernels::depthwise1d::{
    depthwise_conv1d, depthwise_conv1d_scalar, Depthwise1dParams,
};
use ecgnas_firmware::kernels::{Clamp, KernelError, Padding, PerChannelQuant};

/// The operator of a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A standard convolution, [`conv1d`] (kernel 1 is the pointwise path).
    Conv {
        /// Input channels.
        in_channels: usize,
        /// Output channels.
        out_channels: usize,
    },
    /// A depthwise convolution with channel multiplier 1, [`depthwise_conv1d`].
    Depthwise {
        /// Channels, in and out.
        channels: usize,
    },
    /// A dense layer, [`dense`], on `length * channels` features (a flattened tensor).
    Dense {
        /// Channels of the flattened tensor (the features are `length * channels`).
        channels: usize,
        /// Output features.
        out_features: usize,
    },
}

/// One benchmarked layer: its shape, and the CMSIS-NN figure it is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layer {
    /// Name in the table and in the `checksum` lines (no spaces).
    pub name: &'static str,
    /// Operator and channels.
    pub op: Op,
    /// Input length in time steps.
    pub length: usize,
    /// Kernel size.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Fused ReLU (clamp at the output zero point) or no activation.
    pub relu: bool,
    /// CMSIS-NN 99f736a on QEMU mps2-an386, instructions per MAC times 100
    /// (BENCHMARKS.md section 6); 0 where not measured.
    pub cmsis_nn_centi: u32,
}

/// The benchmark, in the order of BENCHMARKS.md section 6.
pub const LAYERS: [Layer; 8] = [
    Layer {
        name: "first_1to16_k7s2",
        op: Op::Conv {
            in_channels: 1,
            out_channels: 16,
        },
        length: 1250,
        kernel: 7,
        stride: 2,
        relu: true,
        cmsis_nn_centi: 1230,
    },
    Layer {
        name: "conv_16to32_k5s2",
        op: Op::Conv {
            in_channels: 16,
            out_channels: 32,
        },
        length: 625,
        kernel: 5,
        stride: 2,
        relu: true,
        cmsis_nn_centi: 240,
    },
    Layer {
        name: "conv_32to64_k5s2",
        op: Op::Conv {
            in_channels: 32,
            out_channels: 64,
        },
        length: 313,
        kernel: 5,
        stride: 2,
        relu: true,
        cmsis_nn_centi: 199,
    },
    Layer {
        name: "conv_64to64_k3",
        op: Op::Conv {
            in_channels: 64,
            out_channels: 64,
        },
        length: 157,
        kernel: 3,
        stride: 1,
        relu: true,
        cmsis_nn_centi: 193,
    },
    Layer {
        name: "pointwise_32to64",
        op: Op::Conv {
            in_channels: 32,
            out_channels: 64,
        },
        length: 313,
        kernel: 1,
        stride: 1,
        relu: false,
        cmsis_nn_centi: 270,
    },
    Layer {
        name: "depthwise_32_k5",
        op: Op::Depthwise { channels: 32 },
        length: 313,
        kernel: 5,
        stride: 1,
        relu: true,
        cmsis_nn_centi: 1740,
    },
    Layer {
        name: "depthwise_64_k3",
        op: Op::Depthwise { channels: 64 },
        length: 157,
        kernel: 3,
        stride: 1,
        relu: false,
        cmsis_nn_centi: 2250,
    },
    Layer {
        name: "dense_640to32",
        op: Op::Dense {
            channels: 16,
            out_features: 32,
        },
        length: 40,
        kernel: 1,
        stride: 1,
        relu: true,
        cmsis_nn_centi: 0,
    },
];

/// A size of a layer, for the compile-time workspace bounds.
#[derive(Clone, Copy)]
enum Dim {
    Length,
    OutLength,
    Kernel,
    Channels,
    Input,
    Weights,
    Output,
}

impl Layer {
    /// `(in_channels, out_channels)`.
    pub const fn channels(&self) -> (usize, usize) {
        match self.op {
            Op::Conv {
                in_channels,
                out_channels,
            } => (in_channels, out_channels),
            Op::Depthwise { channels } => (channels, channels),
            Op::Dense {
                channels,
                out_features,
            } => (channels, out_features),
        }
    }

    /// Output length with `Same` padding and dilation 1 (the kernels compute it again and
    /// reject a buffer of any other length, so this only sizes the [`Workspace`]).
    pub const fn out_length(&self) -> usize {
        if let Op::Dense { .. } = self.op {
            return 1;
        }
        let padded = self.length + 2 * Padding::Same.amount(self.kernel, 1);
        (padded - self.kernel) / self.stride + 1
    }

    const fn dim(&self, dim: Dim) -> usize {
        let (cin, cout) = self.channels();
        match dim {
            Dim::Length => self.length,
            Dim::OutLength => self.out_length(),
            Dim::Kernel => self.kernel,
            Dim::Channels => cout,
            Dim::Input => self.length * cin,
            Dim::Weights => match self.op {
                Op::Conv { .. } => cout * self.kernel * cin,
                Op::Depthwise { .. } => self.kernel * cin,
                Op::Dense { .. } => self.length * cin * cout,
            },
            Dim::Output => self.out_length() * cout,
        }
    }

    fn clamp(&self, output_offset: i32) -> Clamp {
        if self.relu {
            // The offset is drawn in -16..16, so it is an i8.
            Clamp::relu(output_offset as i8)
        } else {
            Clamp::NONE
        }
    }
}

const fn max_dim(dim: Dim) -> usize {
    let mut max = 0;
    let mut i = 0;
    while i < LAYERS.len() {
        let n = LAYERS[i].dim(dim);
        if n > max {
            max = n;
        }
        i += 1;
    }
    max
}

const MAX_LENGTH: usize = max_dim(Dim::Length);
const MAX_OUT_LENGTH: usize = max_dim(Dim::OutLength);
const MAX_KERNEL: usize = max_dim(Dim::Kernel);
const MAX_CHANNELS: usize = max_dim(Dim::Channels);
const MAX_INPUT: usize = max_dim(Dim::Input);
const MAX_WEIGHTS: usize = max_dim(Dim::Weights);
const MAX_OUTPUT: usize = max_dim(Dim::Output);

/// Marsaglia's xorshift32: the deterministic data of every layer, the same on both sides.
#[derive(Debug, Clone)]
pub struct XorShift32(u32);

impl XorShift32 {
    /// A generator; a zero seed (a fixed point of xorshift) is replaced by 1.
    pub const fn new(seed: u32) -> Self {
        XorShift32(if seed == 0 { 1 } else { seed })
    }

    /// The next 32 bits.
    pub fn next_u32(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }

    /// Uniform in `lo..=hi` (a small modulo bias, irrelevant here).
    pub fn range(&mut self, lo: i32, hi: i32) -> i32 {
        let span = hi.abs_diff(lo) + 1;
        lo.wrapping_add((self.next_u32() % span) as i32)
    }
}

/// 32-bit FNV-1a of the output bytes: the checksum the host and the board must agree on.
pub fn fnv1a(bytes: &[i8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |hash, &b| {
        (hash ^ u32::from(b as u8)).wrapping_mul(0x0100_0193)
    })
}

/// Folds a case's hash into a running FNV-1a hash (its four bytes, little-endian).
pub fn combine(hash: u32, value: u32) -> u32 {
    value.to_le_bytes().iter().fold(hash, |hash, &b| {
        (hash ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// Why a layer could not be benchmarked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchError {
    /// A kernel refused the layer.
    Kernel(KernelError),
    /// The optimised path and the reference path disagree at this output index.
    Mismatch {
        /// Index into the output tensor.
        index: usize,
        /// The benchmarked kernel's value.
        got: i8,
        /// The reference's value.
        expected: i8,
    },
    /// The optimised path and the reference path returned different results (one an error,
    /// or two different errors).
    Disagree,
    /// A layer is larger than the [`Workspace`] (cannot happen for [`LAYERS`]).
    Workspace,
}

impl From<KernelError> for BenchError {
    fn from(e: KernelError) -> Self {
        BenchError::Kernel(e)
    }
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BenchError::Kernel(e) => write!(f, "kernel error: {e}"),
            BenchError::Mismatch {
                index,
                got,
                expected,
            } => write!(
                f,
                "self-check failed: output[{index}] = {got}, reference {expected}"
            ),
            BenchError::Disagree => f.write_str(
                "self-check failed: the fast and the scalar path returned different results",
            ),
            BenchError::Workspace => f.write_str("layer does not fit the workspace"),
        }
    }
}

/// The buffers for the largest layer of [`LAYERS`]: activations, weights, per-channel
/// parameters and the self-check's reference output. About 64 KiB.
pub struct Workspace {
    input: [i8; MAX_INPUT],
    weights: [i8; MAX_WEIGHTS],
    output: [i8; MAX_OUTPUT],
    reference: [i8; MAX_OUTPUT],
    bias: [i32; MAX_CHANNELS],
    multipliers: [i32; MAX_CHANNELS],
    shifts: [i32; MAX_CHANNELS],
    column_in: [i8; MAX_LENGTH],
    column_weights: [i8; MAX_KERNEL],
    column_out: [i8; MAX_OUT_LENGTH],
}

impl Default for Workspace {
    fn default() -> Self {
        Self::new()
    }
}

impl Workspace {
    /// All zeros.
    pub const fn new() -> Self {
        Workspace {
            input: [0; MAX_INPUT],
            weights: [0; MAX_WEIGHTS],
            output: [0; MAX_OUTPUT],
            reference: [0; MAX_OUTPUT],
            bias: [0; MAX_CHANNELS],
            multipliers: [0; MAX_CHANNELS],
            shifts: [0; MAX_CHANNELS],
            column_in: [0; MAX_LENGTH],
            column_weights: [0; MAX_KERNEL],
            column_out: [0; MAX_OUT_LENGTH],
        }
    }

    /// Fills the buffers with `layer`'s deterministic data (seeded by `seed`) and returns the
    /// case ready to run.
    ///
    /// Data: int8 inputs over the full range, symmetric weights in `-127..=127`, zero points in
    /// `-16..16`, int32 bias in `-4096..=4095`, Q31 multipliers in `[2^30, 2^31)` and shifts
    /// around `-(7 + log2(terms) / 2)`, which keeps most outputs inside int8 without clipping.
    pub fn prepare(&mut self, layer: &Layer, seed: u32) -> Result<Case<'_>, BenchError> {
        let mut rng = XorShift32::new(seed);
        let (cin, cout) = layer.channels();
        let input_offset = -rng.range(-16, 15);
        let output_offset = rng.range(-16, 15);
        let clamp = layer.clamp(output_offset);
        let params = match layer.op {
            Op::Conv { .. } => Params::Conv(Conv1dParams {
                length: layer.length,
                in_channels: cin,
                out_channels: cout,
                kernel: layer.kernel,
                stride: layer.stride,
                dilation: 1,
                padding: Padding::Same,
                input_offset,
                output_offset,
                clamp,
            }),
            Op::Depthwise { channels } => Params::Depthwise(Depthwise1dParams {
                length: layer.length,
                channels,
                kernel: layer.kernel,
                stride: layer.stride,
                dilation: 1,
                padding: Padding::Same,
                input_offset,
                output_offset,
                clamp,
            }),
            Op::Dense { out_features, .. } => Params::Dense(DenseParams {
                in_features: layer.length * cin,
                out_features,
                input_offset,
                output_offset,
                clamp,
            }),
        };
        let (n_in, n_w, n_out) = params.lens()?;
        let terms = match layer.op {
            Op::Conv { .. } => layer.kernel * cin,
            Op::Depthwise { .. } => layer.kernel,
            Op::Dense { .. } => layer.length * cin,
        };
        let base_shift = -(7 + (terms.max(1).ilog2() / 2) as i32);

        let Workspace {
            input,
            weights,
            output,
            reference,
            bias,
            multipliers,
            shifts,
            column_in,
            column_weights,
            column_out,
        } = self;
        let input = input.get_mut(..n_in).ok_or(BenchError::Workspace)?;
        let weights = weights.get_mut(..n_w).ok_or(BenchError::Workspace)?;
        let output = output.get_mut(..n_out).ok_or(BenchError::Workspace)?;
        let reference = reference.get_mut(..n_out).ok_or(BenchError::Workspace)?;
        let bias = bias.get_mut(..cout).ok_or(BenchError::Workspace)?;
        let multipliers = multipliers.get_mut(..cout).ok_or(BenchError::Workspace)?;
        let shifts = shifts.get_mut(..cout).ok_or(BenchError::Workspace)?;
        if column_in.len() < layer.length
            || column_weights.len() < layer.kernel
            || column_out.len() < layer.out_length()
        {
            return Err(BenchError::Workspace);
        }

        for x in input.iter_mut() {
            *x = rng.next_u32() as i8;
        }
        for w in weights.iter_mut() {
            *w = rng.range(-127, 127) as i8;
        }
        for ((b, m), s) in bias
            .iter_mut()
            .zip(multipliers.iter_mut())
            .zip(shifts.iter_mut())
        {
            *b = rng.range(-4096, 4095);
            *m = (1 << 30) | (rng.next_u32() >> 2) as i32;
            *s = base_shift + rng.range(-1, 1);
        }
        output.fill(0);
        reference.fill(0);
        Ok(Case {
            params,
            input,
            weights,
            bias,
            multipliers,
            shifts,
            output,
            reference,
            column_in,
            column_weights,
            column_out,
        })
    }
}

/// The kernel parameters of a prepared layer.
#[derive(Debug, Clone, Copy)]
enum Params {
    Conv(Conv1dParams),
    Depthwise(Depthwise1dParams),
    Dense(DenseParams),
}

impl Params {
    /// `(input, weights, output)` lengths as the kernels compute them.
    fn lens(&self) -> Result<(usize, usize, usize), KernelError> {
        match self {
            Params::Conv(p) => Ok((p.input_len()?, p.weights_len()?, p.output_len()?)),
            Params::Depthwise(p) => Ok((p.input_len()?, p.weights_len()?, p.output_len()?)),
            Params::Dense(p) => Ok((p.in_features, p.weights_len()?, p.out_features)),
        }
    }
}

/// A layer with its data in a [`Workspace`], ready to run.
pub struct Case<'a> {
    params: Params,
    input: &'a [i8],
    weights: &'a [i8],
    bias: &'a [i32],
    multipliers: &'a [i32],
    shifts: &'a [i32],
    output: &'a mut [i8],
    reference: &'a mut [i8],
    column_in: &'a mut [i8],
    column_weights: &'a mut [i8],
    column_out: &'a mut [i8],
}

impl Case<'_> {
    /// Multiply-accumulates of one run, as the kernel's params count them.
    pub fn macs(&self) -> Result<usize, KernelError> {
        match &self.params {
            Params::Conv(p) => p.macs(),
            Params::Depthwise(p) => p.macs(),
            Params::Dense(p) => p.macs(),
        }
    }

    /// The benchmarked call: the kernel's entry point (`conv1d`, `depthwise_conv1d` or
    /// `dense`, each picking its fastest path for the target: the DSP path on the Cortex-M4)
    /// with its checks and requantisation, into the output buffer.
    #[inline(never)]
    pub fn run(&mut self) -> Result<(), KernelError> {
        let quant = PerChannelQuant {
            multipliers: self.multipliers,
            shifts: self.shifts,
        };
        let (input, weights, bias) = (self.input, self.weights, self.bias);
        match &self.params {
            Params::Conv(p) => conv1d(p, &quant, input, weights, bias, self.output),
            Params::Depthwise(p) => depthwise_conv1d(p, &quant, input, weights, bias, self.output),
            Params::Dense(p) => dense(p, &quant, input, weights, bias, self.output),
        }
    }

    /// The output of the last [`Case::run`].
    pub fn output(&self) -> &[i8] {
        self.output
    }

    /// Checks the last [`Case::run`] against the scalar path of the same kernel
    /// (`conv1d_scalar`, `depthwise_conv1d_scalar`, `dense_scalar`: the reference every fast
    /// path must equal bit for bit), and a depthwise layer also channel by channel against a
    /// 1 -> 1 `conv1d_scalar`.
    pub fn self_check(&mut self) -> Result<(), BenchError> {
        let quant = PerChannelQuant {
            multipliers: self.multipliers,
            shifts: self.shifts,
        };
        let (input, weights, bias) = (self.input, self.weights, self.bias);
        match self.params {
            Params::Conv(p) => conv1d_scalar(&p, &quant, input, weights, bias, self.reference)?,
            Params::Depthwise(p) => {
                depthwise_conv1d_scalar(&p, &quant, input, weights, bias, self.reference)?;
                compare(self.output, self.reference)?;
                self.depthwise_reference(&p)?;
            }
            Params::Dense(p) => dense_scalar(&p, &quant, input, weights, bias, self.reference)?,
        }
        compare(self.output, self.reference)
    }

    /// Channel `c` of a depthwise convolution is a 1 -> 1 convolution of input column `c`
    /// with weight column `c`: builds [`Case::reference`] that way.
    fn depthwise_reference(&mut self, p: &Depthwise1dParams) -> Result<(), BenchError> {
        let ch = p.channels;
        let out_length = p.output_length()?;
        let column_in = self
            .column_in
            .get_mut(..p.length)
            .ok_or(BenchError::Workspace)?;
        let column_weights = self
            .column_weights
            .get_mut(..p.kernel)
            .ok_or(BenchError::Workspace)?;
        let column_out = self
            .column_out
            .get_mut(..out_length)
            .ok_or(BenchError::Workspace)?;
        let single = Conv1dParams {
            length: p.length,
            in_channels: 1,
            out_channels: 1,
            kernel: p.kernel,
            stride: p.stride,
            dilation: p.dilation,
            padding: p.padding,
            input_offset: p.input_offset,
            output_offset: p.output_offset,
            clamp: p.clamp,
        };
        for c in 0..ch {
            for (x, row) in column_in.iter_mut().zip(self.input.chunks_exact(ch)) {
                *x = row[c];
            }
            for (w, row) in column_weights.iter_mut().zip(self.weights.chunks_exact(ch)) {
                *w = row[c];
            }
            let quant = PerChannelQuant {
                multipliers: &self.multipliers[c..=c],
                shifts: &self.shifts[c..=c],
            };
            conv1d_scalar(
                &single,
                &quant,
                column_in,
                column_weights,
                &self.bias[c..=c],
                column_out,
            )?;
            for (y, row) in column_out.iter().zip(self.reference.chunks_exact_mut(ch)) {
                row[c] = *y;
            }
        }
        Ok(())
    }
}

/// `Ok` when `got` equals `expected` element for element, else the first difference.
fn compare(got: &[i8], expected: &[i8]) -> Result<(), BenchError> {
    match got.iter().zip(expected).position(|(a, b)| a != b) {
        None if got.len() == expected.len() => Ok(()),
        None => Err(BenchError::Mismatch {
            index: got.len().min(expected.len()),
            got: 0,
            expected: 0,
        }),
        Some(index) => Err(BenchError::Mismatch {
            index,
            got: got[index],
            expected: expected[index],
        }),
    }
}

/// How many random cases [`Workspace::random_case`] runs after the benchmark.
pub const RANDOM_CASES: u32 = 600;

/// The seed of the random cases.
pub const RANDOM_SEED: u32 = 0x5eed_d5b1;

impl Workspace {
    /// One random case: a random shape (conv1d, depthwise or dense, small enough for the
    /// workspace), random data over the full int8 range, random offsets, clamps, biases,
    /// multipliers (mostly Q31 in `[2^30, 2^31)`, sometimes any value) and shifts
    /// (`-31..=4`). Runs the kernel's entry point (on the Cortex-M4 its DSP path) and its scalar
    /// path and checks that both give the same result, error or output, bit for bit. Returns
    /// the FNV-1a hash of the output (or of nothing, for an error), which the host compares.
    pub fn random_case(&mut self, rng: &mut XorShift32) -> Result<u32, BenchError> {
        // Half the cases are first layers: a conv1d with one input channel, up to 300 steps
        // and 64 filters, kernels 1..=16.
        let first_layer = rng.range(0, 1) == 0;
        let op = if first_layer { 0 } else { rng.range(0, 2) };
        // Of the others, one case in four has a single input channel too.
        let cin = if first_layer || rng.range(0, 3) == 0 {
            1
        } else {
            rng.range(1, 24) as usize
        };
        let cout = rng.range(1, if first_layer { 64 } else { 24 }) as usize;
        let length = rng.range(1, if first_layer { 300 } else { 64 }) as usize;
        let kernel = rng.range(1, if first_layer { 16 } else { 15 }) as usize;
        let stride = rng.range(1, 4) as usize;
        let dilation = [1, 1, 2, 4][rng.range(0, 3) as usize];
        let padding = if rng.range(0, 1) == 0 {
            Padding::Same
        } else {
            Padding::Valid
        };
        let input_offset = rng.range(-127, 128);
        let output_offset = rng.range(-128, 127);
        let (a, b) = (rng.range(-128, 127) as i8, rng.range(-128, 127) as i8);
        let clamp = match rng.range(0, 2) {
            0 => Clamp::NONE,
            1 => Clamp::relu(output_offset as i8),
            _ => Clamp {
                min: a.min(b),
                max: a.max(b),
            },
        };
        let params = match op {
            0 => Params::Conv(Conv1dParams {
                length,
                in_channels: cin,
                out_channels: cout,
                kernel,
                stride,
                dilation,
                padding,
                input_offset,
                output_offset,
                clamp,
            }),
            1 => Params::Depthwise(Depthwise1dParams {
                length,
                channels: cin,
                kernel,
                stride,
                dilation,
                padding,
                input_offset,
                output_offset,
                clamp,
            }),
            _ => Params::Dense(DenseParams {
                in_features: length * cin,
                // At most 24 * 64 * 24 weights would not fit; keep the matrix in the workspace.
                out_features: cout.min(MAX_WEIGHTS / (length * cin)),
                input_offset,
                output_offset,
                clamp,
            }),
        };
        let channels = match params {
            Params::Conv(_) => cout,
            Params::Depthwise(_) => cin,
            Params::Dense(p) => p.out_features,
        };
        let (n_in, n_w, n_out) = match params.lens() {
            Ok(lens) => lens,
            // A window longer than the padded input: both paths must refuse it alike.
            Err(_) => (length * cin, kernel * cin * cout, 0),
        };
        let Workspace {
            input,
            weights,
            output,
            reference,
            bias,
            multipliers,
            shifts,
            ..
        } = self;
        let input = input.get_mut(..n_in).ok_or(BenchError::Workspace)?;
        let weights = weights.get_mut(..n_w).ok_or(BenchError::Workspace)?;
        let output = output.get_mut(..n_out).ok_or(BenchError::Workspace)?;
        let reference = reference.get_mut(..n_out).ok_or(BenchError::Workspace)?;
        let bias = bias.get_mut(..channels).ok_or(BenchError::Workspace)?;
        let multipliers = multipliers
            .get_mut(..channels)
            .ok_or(BenchError::Workspace)?;
        let shifts = shifts.get_mut(..channels).ok_or(BenchError::Workspace)?;
        for x in input.iter_mut() {
            *x = rng.next_u32() as i8;
        }
        for w in weights.iter_mut() {
            *w = rng.next_u32() as i8;
        }
        let wide_bias = rng.range(0, 3) == 0;
        for ((b, m), s) in bias
            .iter_mut()
            .zip(multipliers.iter_mut())
            .zip(shifts.iter_mut())
        {
            *b = if wide_bias {
                rng.next_u32() as i32
            } else {
                rng.range(-20000, 20000)
            };
            *m = match rng.range(0, 15) {
                0 => rng.next_u32() as i32,
                1 => 0,
                _ => (1 << 30) | (rng.next_u32() >> 2) as i32,
            };
            *s = rng.range(-31, 4);
        }
        output.fill(0x55);
        reference.fill(0x55);
        let quant = PerChannelQuant {
            multipliers,
            shifts,
        };
        let (input, weights, bias) = (&*input, &*weights, &*bias);
        let (fast, slow) = match &params {
            Params::Conv(p) => (
                conv1d(p, &quant, input, weights, bias, output),
                conv1d_scalar(p, &quant, input, weights, bias, reference),
            ),
            Params::Depthwise(p) => (
                depthwise_conv1d(p, &quant, input, weights, bias, output),
                depthwise_conv1d_scalar(p, &quant, input, weights, bias, reference),
            ),
            Params::Dense(p) => (
                dense(p, &quant, input, weights, bias, output),
                dense_scalar(p, &quant, input, weights, bias, reference),
            ),
        };
        if fast != slow {
            return Err(BenchError::Disagree);
        }
        compare(output, reference)?;
        Ok(if fast.is_ok() {
            fnv1a(output)
        } else {
            fnv1a(&[])
        })
    }
}

/// The seed of layer `index` of [`LAYERS`].
pub const fn seed(index: usize) -> u32 {
    0x9e37_79b9u32.wrapping_mul(index as u32 + 1) ^ 0x00ec_9a55
}
