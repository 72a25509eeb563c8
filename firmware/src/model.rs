//! A whole int8 network: the layer plan, run over one statically planned arena.
//!
//! A [`Model`] is plain data that can live in flash: the layers in execution order, each with
//! its kernel parameters and weights, and a table of tensor slots (byte ranges of the arena)
//! that the host planned ahead of time with [`crate::arena::plan`]. [`Model::run`] calls the
//! kernels in order; each layer reads its input slots and writes its output slot, which the
//! plan keeps disjoint (checked here: an overlapping plan is an error, not a corrupt result).
//!
//! The host builds the same `Model` from its exported int8 model and runs it as the int8
//! reference; `ecgnas deploy` writes it out as `static` Rust data for the board binary.

use core::fmt;

use crate::kernels::add::{add, AddParams};
use crate::kernels::avg_pool::avg_pool;
use crate::kernels::conv1d::{conv1d, Conv1dParams};
use crate::kernels::dense::{dense, DenseParams};
use crate::kernels::depthwise1d::{depthwise_conv1d, Depthwise1dParams};
use crate::kernels::global_avg_pool::{global_avg_pool, GlobalAvgPoolParams};
use crate::kernels::max_pool::max_pool;
use crate::kernels::{KernelError, PerChannelQuant, Pool1dParams};

/// A byte range of the arena holding one int8 tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// First byte.
    pub offset: usize,
    /// Bytes.
    pub len: usize,
}

impl Slot {
    const fn end(&self) -> Option<usize> {
        self.offset.checked_add(self.len)
    }
}

/// The weights of a convolution or dense layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Weights<'a> {
    /// Int8 weights in the kernel's layout.
    pub weights: &'a [i8],
    /// Int32 bias, one per output channel.
    pub bias: &'a [i32],
    /// Per-channel requantisation.
    pub quant: PerChannelQuant<'a>,
}

/// One layer's operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op<'a> {
    /// Standard or pointwise convolution.
    Conv(Conv1dParams, Weights<'a>),
    /// Depthwise convolution.
    Depthwise(Depthwise1dParams, Weights<'a>),
    /// Fully connected layer.
    Dense(DenseParams, Weights<'a>),
    /// Max pooling.
    MaxPool(Pool1dParams),
    /// Average pooling.
    AvgPool(Pool1dParams),
    /// Global average pooling.
    GlobalAvgPool(GlobalAvgPoolParams),
    /// Residual add of the layer's two inputs.
    Add(AddParams),
}

impl Op<'_> {
    /// The op's name, for reports.
    pub const fn name(&self) -> &'static str {
        match self {
            Op::Conv(p, _) if p.kernel == 1 => "pointwise",
            Op::Conv(..) => "conv1d",
            Op::Depthwise(..) => "depthwise",
            Op::Dense(..) => "dense",
            Op::MaxPool(_) => "max_pool",
            Op::AvgPool(_) => "avg_pool",
            Op::GlobalAvgPool(_) => "global_avg_pool",
            Op::Add(_) => "add",
        }
    }

    /// Multiply-accumulates of a convolution or dense layer (0 for the others).
    pub fn macs(&self) -> usize {
        match self {
            Op::Conv(p, _) => p.macs().unwrap_or(0),
            Op::Depthwise(p, _) => p.macs().unwrap_or(0),
            Op::Dense(p, _) => p.macs().unwrap_or(0),
            _ => 0,
        }
    }
}

/// One layer: its op, the slots it reads (the second only for [`Op::Add`]) and the slot it
/// writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layer<'a> {
    /// What the layer computes.
    pub op: Op<'a>,
    /// The input slot.
    pub input: Slot,
    /// The second input slot of an add (ignored otherwise).
    pub second_input: Slot,
    /// The output slot.
    pub output: Slot,
}

/// A network ready to run: the layer plan and its arena size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Model<'a> {
    /// Layers in execution order.
    pub layers: &'a [Layer<'a>],
    /// Bytes of arena the plan needs.
    pub arena_len: usize,
    /// Where the caller writes the quantised network input (channels-last).
    pub input: Slot,
    /// Where the caller writes the quantised side inputs (RR features), if any (`len` 0 if
    /// none); it directly follows the pooled features the head's dense layer reads.
    pub side_input: Slot,
    /// Where the int8 logits are after [`Model::run`].
    pub output: Slot,
}

/// Why a model could not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelError {
    /// The arena is smaller than the plan needs.
    ArenaTooSmall {
        /// Bytes the plan needs.
        needed: usize,
        /// Bytes given.
        actual: usize,
    },
    /// A layer's slot lies outside the arena or overlaps its output slot.
    BadSlot {
        /// The layer's index.
        layer: usize,
    },
    /// A kernel refused its parameters or buffers.
    Kernel {
        /// The layer's index.
        layer: usize,
        /// The kernel's error.
        error: KernelError,
    },
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelError::ArenaTooSmall { needed, actual } => {
                write!(f, "arena of {actual} bytes, the model needs {needed}")
            }
            ModelError::BadSlot { layer } => {
                write!(
                    f,
                    "layer {layer}: a tensor slot is outside the arena or overlaps"
                )
            }
            ModelError::Kernel { layer, error } => write!(f, "layer {layer}: {error}"),
        }
    }
}

/// Splits the arena into the read-only input views and the output slot.
fn views<'a>(
    arena: &'a mut [i8],
    output: Slot,
    inputs: [Slot; 2],
) -> Option<([&'a [i8]; 2], &'a mut [i8])> {
    let out_end = output.end()?;
    if out_end > arena.len() {
        return None;
    }
    let (left, rest) = arena.split_at_mut(output.offset);
    let (out, right) = rest.split_at_mut(output.len);
    let (left, right): (&'a [i8], &'a [i8]) = (left, right);
    let view = |slot: Slot| -> Option<&'a [i8]> {
        let end = slot.end()?;
        if end <= output.offset {
            left.get(slot.offset..end)
        } else if slot.offset >= out_end {
            right.get(slot.offset - out_end..end - out_end)
        } else if slot.len == 0 {
            Some(&[])
        } else {
            None
        }
    };
    Some(([view(inputs[0])?, view(inputs[1])?], out))
}

impl Model<'_> {
    /// Runs every layer over `arena`, whose input slots the caller has filled. On success the
    /// logits are in [`Model::output`]; [`Model::logits`] reads them.
    pub fn run(&self, arena: &mut [i8]) -> Result<(), ModelError> {
        self.run_observed(arena, |_, _| {})
    }

    /// [`Model::run`], calling `after_layer(index, output)` after each layer (the board times
    /// layers with it; the host checks intermediate tensors).
    pub fn run_observed(
        &self,
        arena: &mut [i8],
        mut after_layer: impl FnMut(usize, &[i8]),
    ) -> Result<(), ModelError> {
        if arena.len() < self.arena_len {
            return Err(ModelError::ArenaTooSmall {
                needed: self.arena_len,
                actual: arena.len(),
            });
        }
        for (index, layer) in self.layers.iter().enumerate() {
            let second = match layer.op {
                Op::Add(_) => layer.second_input,
                _ => Slot { offset: 0, len: 0 },
            };
            let ([input, input2], output) = views(arena, layer.output, [layer.input, second])
                .ok_or(ModelError::BadSlot { layer: index })?;
            let result = match &layer.op {
                Op::Conv(p, w) => conv1d(p, &w.quant, input, w.weights, w.bias, output),
                Op::Depthwise(p, w) => {
                    depthwise_conv1d(p, &w.quant, input, w.weights, w.bias, output)
                }
                Op::Dense(p, w) => dense(p, &w.quant, input, w.weights, w.bias, output),
                Op::MaxPool(p) => max_pool(p, input, output),
                Op::AvgPool(p) => avg_pool(p, input, output),
                Op::GlobalAvgPool(p) => global_avg_pool(p, input, output),
                Op::Add(p) => add(p, input, input2, output),
            };
            result.map_err(|error| ModelError::Kernel {
                layer: index,
                error,
            })?;
            after_layer(index, output);
        }
        Ok(())
    }

    /// The int8 logits after [`Model::run`] (empty if the slot lies outside `arena`).
    pub fn logits<'b>(&self, arena: &'b [i8]) -> &'b [i8] {
        slot_of(arena, self.output)
    }
}

fn slot_of(arena: &[i8], slot: Slot) -> &[i8] {
    slot.end()
        .and_then(|end| arena.get(slot.offset..end))
        .unwrap_or(&[])
}

/// The bytes of `slot` in `arena`, for the caller to fill (`None` if outside).
pub fn slot_mut(arena: &mut [i8], slot: Slot) -> Option<&mut [i8]> {
    let end = slot.end()?;
    arena.get_mut(slot.offset..end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::{Clamp, Padding};

    const ONE: PerChannelQuant<'static> = PerChannelQuant {
        multipliers: &[1 << 30, 1 << 30],
        shifts: &[1, 1],
    };

    fn conv() -> Op<'static> {
        Op::Conv(
            Conv1dParams {
                length: 4,
                in_channels: 1,
                out_channels: 2,
                kernel: 3,
                stride: 1,
                dilation: 1,
                padding: Padding::Same,
                input_offset: 0,
                output_offset: 0,
                clamp: Clamp::NONE,
            },
            Weights {
                weights: &[1, 1, 1, 0, 1, 0],
                bias: &[0, 10],
                quant: ONE,
            },
        )
    }

    #[test]
    fn runs_layers_over_their_slots() {
        let pool = Op::MaxPool(Pool1dParams {
            length: 4,
            channels: 2,
            window: 2,
            stride: 2,
            padding: Padding::Valid,
            clamp: Clamp::NONE,
        });
        let layers = [
            Layer {
                op: conv(),
                input: Slot { offset: 0, len: 4 },
                second_input: Slot { offset: 0, len: 0 },
                output: Slot { offset: 4, len: 8 },
            },
            Layer {
                op: pool,
                input: Slot { offset: 4, len: 8 },
                second_input: Slot { offset: 0, len: 0 },
                output: Slot { offset: 0, len: 4 },
            },
        ];
        let model = Model {
            layers: &layers,
            arena_len: 12,
            input: Slot { offset: 0, len: 4 },
            side_input: Slot { offset: 0, len: 0 },
            output: Slot { offset: 0, len: 4 },
        };
        let mut arena = [0i8; 12];
        slot_mut(&mut arena, model.input)
            .unwrap()
            .copy_from_slice(&[1, 2, 3, 4]);
        model.run(&mut arena).unwrap();
        // Conv: channel 0 = 3-tap sum (same padding), channel 1 = x + 10.
        // Rows [3,11] [6,12] [9,13] [7,14]; max pool pairs rows.
        assert_eq!(model.logits(&arena), &[6, 12, 9, 14]);
    }

    #[test]
    fn overlapping_or_outside_slots_are_errors() {
        let layer = Layer {
            op: conv(),
            input: Slot { offset: 0, len: 4 },
            second_input: Slot { offset: 0, len: 0 },
            output: Slot { offset: 2, len: 8 },
        };
        let layers = [layer];
        let mut model = Model {
            layers: &layers,
            arena_len: 10,
            input: layer.input,
            side_input: Slot { offset: 0, len: 0 },
            output: layer.output,
        };
        let mut arena = [0i8; 10];
        assert_eq!(model.run(&mut arena), Err(ModelError::BadSlot { layer: 0 }));
        model.arena_len = 20;
        assert_eq!(
            model.run(&mut arena),
            Err(ModelError::ArenaTooSmall {
                needed: 20,
                actual: 10
            })
        );
    }
}
