//! Shape inference: the layers a candidate expands to, with their channels and lengths.
//!
//! The candle network, the ONNX export, the cost model and the firmware all build the same
//! layer list from these functions; the formulas are in the module docs of [`super`].

use serde::{Deserialize, Serialize};

use super::choices::TaskShape;
use super::genes::{Activation, Block, Candidate, ConvKind, OutputActivation, Pool, Window};
use super::SpaceError;

/// The number of RR side inputs of a beat candidate with `rr_intervals` (previous RR, next RR,
/// mean of the last 10 RR; each over the record's mean RR).
pub const RR_SIDE_INPUTS: usize = 3;

/// One layer of a candidate, with its input and output shapes (channels x length).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct LayerShape {
    /// The block the layer belongs to; `None` for the head.
    pub block: Option<usize>,
    /// What the layer computes.
    pub op: LayerOp,
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Input length (samples).
    pub in_length: usize,
    /// Output length (samples).
    pub out_length: usize,
}

/// What a layer computes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum LayerOp {
    /// A conv1d with bias, "same" padding on both sides, then the activation if any.
    Conv {
        /// Where the convolution sits in its block.
        role: ConvRole,
        /// Kernel size.
        kernel: usize,
        /// Stride.
        stride: usize,
        /// Dilation.
        dilation: usize,
        /// Zeros added at each end: `dilation * (kernel - 1) / 2` (0 for 1x1 convolutions).
        padding: usize,
        /// Groups: 1, or the input channels for a depthwise convolution.
        groups: usize,
        /// The activation applied to its output, if any.
        activation: Option<Activation>,
    },
    /// Elementwise sum of the block's main path and its shortcut, then the activation.
    Add {
        /// The block's activation.
        activation: Activation,
    },
    /// Window-2, stride-2 pooling without padding.
    Pool {
        /// Max or average (never [`Pool::None`]).
        pool: Pool,
    },
    /// Mean over time of each channel: length becomes 1.
    GlobalAvgPool,
    /// The RR side inputs appended to the pooled features.
    ConcatRr {
        /// How many values are appended.
        features: usize,
    },
    /// A fully connected layer with bias, then the activation if any.
    Dense {
        /// The activation (ReLU for the hidden layer).
        activation: Option<Activation>,
    },
    /// The output layer: fully connected with bias, then the output activation.
    Output {
        /// Sigmoid or softmax.
        activation: OutputActivation,
    },
}

/// Where a convolution sits in its block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ConvRole {
    /// The one convolution of a standard block.
    Standard,
    /// The depthwise half of a depthwise-separable block.
    Depthwise,
    /// The pointwise (1x1) half of a depthwise-separable block.
    Pointwise,
    /// The 1x1 projection of a shortcut whose shapes differ (reads the block input).
    Projection,
}

/// The padding at each end of a "same" convolution: `dilation * (kernel - 1) / 2`.
pub fn same_padding(kernel: usize, dilation: usize) -> usize {
    dilation * kernel.saturating_sub(1) / 2
}

/// The output length of a conv1d:
/// `floor((len + 2 * padding - dilation * (kernel - 1) - 1) / stride) + 1`, or 0 when the
/// padded input is shorter than the dilated kernel (or the stride is 0).
pub fn conv_out_len(
    len: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    padding: usize,
) -> usize {
    let span = dilation * kernel.saturating_sub(1) + 1;
    let padded = len + 2 * padding;
    if padded < span || stride == 0 {
        0
    } else {
        (padded - span) / stride + 1
    }
}

/// The output length of a window-2, stride-2 pooling: `floor(len / 2)`.
pub fn pool_out_len(len: usize) -> usize {
    len / 2
}

impl Candidate {
    /// The layers of the network for an input of `in_channels` x `input_samples` (the
    /// preprocessed window), in execution order.
    ///
    /// Fails when the input is empty or a layer would leave no sample.
    pub fn layer_shapes(
        &self,
        input_samples: usize,
        in_channels: usize,
    ) -> Result<Vec<LayerShape>, SpaceError> {
        if input_samples == 0 || in_channels == 0 {
            return Err(SpaceError::EmptyInput {
                samples: input_samples,
                channels: in_channels,
            });
        }
        let mut layers = Vec::new();
        let (mut channels, mut length) = (in_channels, input_samples);
        for (index, block) in self.architecture.blocks.iter().enumerate() {
            (channels, length) = block_layers(index, block, channels, length, &mut layers)?;
        }
        let head = &self.architecture.head;
        let mut push = |op, in_channels, out_channels, in_length| {
            layers.push(LayerShape {
                block: None,
                op,
                in_channels,
                out_channels,
                in_length,
                out_length: 1,
            });
        };
        push(LayerOp::GlobalAvgPool, channels, channels, length);
        if let Window::Beat {
            rr_intervals: true, ..
        } = self.preprocessing.window
        {
            let features = RR_SIDE_INPUTS;
            push(
                LayerOp::ConcatRr { features },
                channels,
                channels + features,
                1,
            );
            channels += features;
        }
        if let Some(units) = head.hidden {
            let activation = Some(Activation::Relu);
            push(LayerOp::Dense { activation }, channels, units, 1);
            channels = units;
        }
        let activation = head.output;
        push(LayerOp::Output { activation }, channels, head.outputs, 1);
        Ok(layers)
    }

    /// Whether [`Self::layer_shapes`] succeeds on this input.
    pub fn is_valid(&self, input_samples: usize, in_channels: usize) -> bool {
        self.layer_shapes(input_samples, in_channels).is_ok()
    }

    /// [`Self::layer_shapes`] for a task: the input length comes from the preprocessing genes
    /// at the task's ADC rate ([`super::Preprocessing::pipeline_shape`]), the channels are its
    /// leads.
    pub fn shapes_for(&self, task: &TaskShape) -> Result<Vec<LayerShape>, SpaceError> {
        let pipeline = self.preprocessing.pipeline_shape(task.input_fs_hz)?;
        self.layer_shapes(pipeline.network_samples, task.leads)
    }

    /// Whether the candidate runs on a task's input: its preprocessing fits the ADC rate and
    /// no layer empties the signal.
    pub fn is_valid_for(&self, task: &TaskShape) -> bool {
        self.shapes_for(task).is_ok()
    }
}

/// Appends one block's layers; returns its output (channels, length).
fn block_layers(
    index: usize,
    block: &Block,
    in_channels: usize,
    in_length: usize,
    layers: &mut Vec<LayerShape>,
) -> Result<(usize, usize), SpaceError> {
    let (k, s, d) = (block.kernel, block.stride, block.dilation);
    if k % 2 == 0 {
        // "Same" padding, and the shortcut's length, need an odd kernel.
        return Err(SpaceError::EvenKernel { kernel: k });
    }
    let padding = same_padding(k, d);
    let length = conv_out_len(in_length, k, s, d, padding);
    if length == 0 {
        return Err(SpaceError::LengthVanishes {
            block: index,
            layer: "the convolution",
            in_length,
        });
    }
    // With a shortcut the activation moves after the sum.
    let last_activation = (!block.skip).then_some(block.activation);
    let mut push = |op, in_channels, out_channels, in_length, out_length| {
        layers.push(LayerShape {
            block: Some(index),
            op,
            in_channels,
            out_channels,
            in_length,
            out_length,
        });
    };
    let conv = |role, kernel, stride, dilation, padding, groups, activation| LayerOp::Conv {
        role,
        kernel,
        stride,
        dilation,
        padding,
        groups,
        activation,
    };
    let out_channels = block.channels;
    match block.kind {
        ConvKind::Standard => {
            let op = conv(ConvRole::Standard, k, s, d, padding, 1, last_activation);
            push(op, in_channels, out_channels, in_length, length);
        }
        ConvKind::DepthwiseSeparable => {
            let activation = Some(block.activation);
            let op = conv(
                ConvRole::Depthwise,
                k,
                s,
                d,
                padding,
                in_channels,
                activation,
            );
            push(op, in_channels, in_channels, in_length, length);
            let op = conv(ConvRole::Pointwise, 1, 1, 1, 0, 1, last_activation);
            push(op, in_channels, out_channels, length, length);
        }
    }
    if block.skip {
        if in_channels != out_channels || s != 1 {
            // A 1x1 convolution with the block's stride: its length formula gives
            // floor((in_length - 1) / s) + 1, the same as the odd-kernel "same" main path.
            let op = conv(ConvRole::Projection, 1, s, 1, 0, 1, None);
            push(op, in_channels, out_channels, in_length, length);
        }
        let op = LayerOp::Add {
            activation: block.activation,
        };
        push(op, out_channels, out_channels, length, length);
    }
    if block.pool == Pool::None {
        return Ok((out_channels, length));
    }
    let pooled = pool_out_len(length);
    if pooled == 0 {
        return Err(SpaceError::LengthVanishes {
            block: index,
            layer: "the pooling",
            in_length: length,
        });
    }
    let op = LayerOp::Pool { pool: block.pool };
    push(op, out_channels, out_channels, length, pooled);
    Ok((out_channels, pooled))
}
