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
use ecgnas_firmware::kernels::depthwise1d::{depthwise_conv1d, Depthwise1dParams};
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
    /// (BENCHMARKS.md section 6).
    pub cmsis_nn_centi: u32,
}

/// The benchmark, in the order of BENCHMARKS.md section 6.
pub const LAYERS: [Layer; 7] = [
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
        }
    }

    /// Output length with `Same` padding and dilation 1 (the kernels compute it again and
    /// reject a buffer of any other length, so this only sizes the [`Workspace`]).
    pub const fn out_length(&self) -> usize {
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
        };
        let (n_in, n_w, n_out) = params.lens()?;
        let terms = match layer.op {
            Op::Conv { .. } => layer.kernel * cin,
            Op::Depthwise { .. } => layer.kernel,
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
}

impl Params {
    /// `(input, weights, output)` lengths as the kernels compute them.
    fn lens(&self) -> Result<(usize, usize, usize), KernelError> {
        match self {
            Params::Conv(p) => Ok((p.input_len()?, p.weights_len()?, p.output_len()?)),
            Params::Depthwise(p) => Ok((p.input_len()?, p.weights_len()?, p.output_len()?)),
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
        }
    }

    /// The benchmarked call: the kernel's entry point (`conv1d`, which picks its fastest path,
    /// or `depthwise_conv1d`) with its checks and requantisation, into the output buffer.
    #[inline(never)]
    pub fn run(&mut self) -> Result<(), KernelError> {
        let quant = PerChannelQuant {
            multipliers: self.multipliers,
            shifts: self.shifts,
        };
        match &self.params {
            Params::Conv(p) => conv1d(p, &quant, self.input, self.weights, self.bias, self.output),
            Params::Depthwise(p) => {
                depthwise_conv1d(p, &quant, self.input, self.weights, self.bias, self.output)
            }
        }
    }

    /// The output of the last [`Case::run`].
    pub fn output(&self) -> &[i8] {
        self.output
    }

    /// Checks the last [`Case::run`] against a second path through the library: a standard
    /// convolution against `conv1d_scalar` (the general loop every fast path must equal), a
    /// depthwise one channel by channel against a 1 -> 1 `conv1d_scalar`.
    pub fn self_check(&mut self) -> Result<(), BenchError> {
        match self.params {
            Params::Conv(p) => {
                let quant = PerChannelQuant {
                    multipliers: self.multipliers,
                    shifts: self.shifts,
                };
                conv1d_scalar(
                    &p,
                    &quant,
                    self.input,
                    self.weights,
                    self.bias,
                    self.reference,
                )?;
            }
            Params::Depthwise(p) => self.depthwise_reference(&p)?,
        }
        match self
            .output
            .iter()
            .zip(self.reference.iter())
            .position(|(a, b)| a != b)
        {
            None => Ok(()),
            Some(index) => Err(BenchError::Mismatch {
                index,
                got: self.output[index],
                expected: self.reference[index],
            }),
        }
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

/// The seed of layer `index` of [`LAYERS`].
pub const fn seed(index: usize) -> u32 {
    0x9e37_79b9u32.wrapping_mul(index as u32 + 1) ^ 0x00ec_9a55
}
