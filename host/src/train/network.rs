//! A candidate's architecture as a candle network.
//!
//! Layers of a block, in order (the same expansion the cost model, the ONNX export and the
//! firmware use):
//! - standard: conv1d (k, stride, dilation) + bias;
//! - depthwise-separable: depthwise conv1d (k, stride, dilation) + bias, the activation, then
//!   pointwise 1x1 conv1d + bias;
//! - the shortcut, when `skip`: the block's input added before the final activation; an
//!   identity when channels and length agree, else a 1x1 conv1d with the block's stride;
//! - the activation (ReLU or ReLU6);
//! - the pool (window 2, stride 2), if any.
//!
//! The head: global average pool, the optional RR side inputs concatenated, an optional
//! hidden dense layer with ReLU, the output dense layer (logits; sigmoid or softmax is applied
//! by the loss and by prediction).
//!
//! Variable names (`block0.conv.weight`, `block1.dw.bias`, `block1.pw.weight`,
//! `block2.proj.weight`, `head.hidden.weight`, `head.out.weight`) are shared with
//! `model.safetensors` and the ONNX initialisers.

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::{Init, VarBuilder, VarMap};

use super::kernels::{Fused, Pool2};
use super::ops;
use crate::space::{Activation, Architecture, Block, ConvKind, Pool};

/// The weights of one convolution.
#[derive(Debug, Clone)]
pub struct ConvWeights {
    /// (C_out, C_in / groups, K).
    pub weight: Tensor,
    /// (C_out).
    pub bias: Tensor,
}

/// One block's layers.
#[derive(Debug, Clone)]
pub struct BlockLayers {
    /// The block's genes.
    pub genes: Block,
    /// Standard conv, or the depthwise part of a separable one.
    pub conv: ConvWeights,
    /// The pointwise part of a separable conv.
    pub pointwise: Option<ConvWeights>,
    /// The shortcut's projection (1x1, the block's stride), when shapes differ.
    pub projection: Option<ConvWeights>,
    /// Whether the shortcut is used at all.
    pub skip: bool,
}

/// A child network, ready for forward passes.
#[derive(Debug, Clone)]
pub struct Network {
    /// The blocks, input first.
    pub blocks: Vec<BlockLayers>,
    /// Hidden dense layer (W: (H, F), b: (H)).
    pub hidden: Option<(Tensor, Tensor)>,
    /// Output dense layer.
    pub output: (Tensor, Tensor),
    /// Number of RR side inputs the head takes (0 or 3).
    pub side_inputs: usize,
}

fn conv_weights(
    vb: &VarBuilder,
    c_out: usize,
    c_in_per_group: usize,
    k: usize,
) -> Result<ConvWeights> {
    // Zeros here; `build` draws the values from its own seeded generator (`initialise`).
    let weight = vb.get_with_hints((c_out, c_in_per_group, k), "weight", Init::Const(0.0))?;
    let bias = vb.get_with_hints(c_out, "bias", Init::Const(0.0))?;
    Ok(ConvWeights { weight, bias })
}

fn dense_weights(vb: &VarBuilder, out: usize, inp: usize) -> Result<(Tensor, Tensor)> {
    let w = vb.get_with_hints((out, inp), "weight", Init::Const(0.0))?;
    let b = vb.get_with_hints(out, "bias", Init::Const(0.0))?;
    Ok((w, b))
}

impl Network {
    /// Builds the network for `in_channels` input leads and an input of `input_len` samples,
    /// creating (or loading, with a loading `VarBuilder`) its variables.
    pub fn new(
        vb: VarBuilder,
        architecture: &Architecture,
        in_channels: usize,
        input_len: usize,
        side_inputs: usize,
    ) -> Result<Network> {
        let mut blocks = Vec::with_capacity(architecture.blocks.len());
        let (mut c, mut len) = (in_channels, input_len);
        for (i, genes) in architecture.blocks.iter().enumerate() {
            let vb = vb.pp(format!("block{i}"));
            let (conv, pointwise) = match genes.kind {
                ConvKind::Standard => (
                    conv_weights(&vb.pp("conv"), genes.channels, c, genes.kernel)?,
                    None,
                ),
                ConvKind::DepthwiseSeparable => (
                    conv_weights(&vb.pp("dw"), c, 1, genes.kernel)?,
                    Some(conv_weights(&vb.pp("pw"), genes.channels, c, 1)?),
                ),
            };
            let out_len = ops::conv_out_len(len, genes.kernel, genes.stride, genes.dilation);
            if out_len == 0 {
                candle_core::bail!("block {i}: input of {len} samples is too short for its kernel")
            }
            let projection = if genes.skip && (c != genes.channels || out_len != len) {
                Some(conv_weights(&vb.pp("proj"), genes.channels, c, 1)?)
            } else {
                None
            };
            blocks.push(BlockLayers {
                genes: genes.clone(),
                conv,
                pointwise,
                projection,
                skip: genes.skip,
            });
            c = genes.channels;
            len = match genes.pool {
                Pool::None => out_len,
                Pool::Max2 | Pool::Avg2 => out_len / 2,
            };
            if len == 0 {
                candle_core::bail!("block {i}: pooling leaves no samples")
            }
        }
        let mut features = c + side_inputs;
        let hidden = match architecture.head.hidden {
            Some(units) => {
                let layer = dense_weights(&vb.pp("head.hidden"), units, features)?;
                features = units;
                Some(layer)
            }
            None => None,
        };
        let output = dense_weights(&vb.pp("head.out"), architecture.head.outputs, features)?;
        Ok(Network {
            blocks,
            hidden,
            output,
            side_inputs,
        })
    }

    /// Logits for a batch: `x` (B, C, L); `side` (B, side_inputs) when the head takes RR inputs.
    pub fn forward(&self, x: &Tensor, side: Option<&Tensor>) -> Result<Tensor> {
        let mut x = x.clone();
        for block in &self.blocks {
            x = block.forward(&x)?;
        }
        let hidden = self.hidden.as_ref().map(|(w, b)| (w, b));
        head(
            &x,
            self.side_inputs,
            side,
            hidden,
            (&self.output.0, &self.output.1),
        )
    }
}

/// The head on the last block's output (B, C, L): global average pooling, the RR side inputs
/// appended when the network takes them, an optional hidden ReLU layer, then the logits.
pub(super) fn head(
    x: &Tensor,
    side_inputs: usize,
    side: Option<&Tensor>,
    hidden: Option<(&Tensor, &Tensor)>,
    output: (&Tensor, &Tensor),
) -> Result<Tensor> {
    let mut h = ops::global_avg_pool(x)?;
    if side_inputs > 0 {
        match side {
            Some(s) => h = Tensor::cat(&[&h, s], 1)?,
            None => candle_core::bail!("the network takes {side_inputs} RR side inputs"),
        }
    }
    if let Some((w, b)) = hidden {
        h = ops::dense(&h, w, b)?.relu()?;
    }
    ops::dense(&h, output.0, output.1)
}

/// The activation as the kernels fuse it.
fn fused(activation: Activation) -> Fused {
    match activation {
        Activation::Relu => Fused::Relu,
        Activation::Relu6 => Fused::Relu6,
    }
}

impl BlockLayers {
    /// The block's output for (B, C_in, L).
    ///
    /// The activation is fused into the block's last convolution unless a shortcut is added
    /// before it.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let g = &self.genes;
        let act = fused(g.activation);
        let last_act = if self.skip { Fused::Identity } else { act };
        let (conv, stride, dilation) = (&self.conv, g.stride, g.dilation);
        let mut y = match &self.pointwise {
            None => ops::conv1d_act(x, &conv.weight, &conv.bias, stride, dilation, last_act)?,
            Some(pw) => {
                let dw =
                    ops::depthwise_conv1d_act(x, &conv.weight, &conv.bias, stride, dilation, act)?;
                ops::conv1d_act(&dw, &pw.weight, &pw.bias, 1, 1, last_act)?
            }
        };
        if self.skip {
            let shortcut = match &self.projection {
                Some(p) => ops::conv1d_act(x, &p.weight, &p.bias, stride, 1, Fused::Identity)?,
                None => x.clone(),
            };
            y = ops::activation(&(y + shortcut)?, act)?;
        }
        match g.pool {
            Pool::None => Ok(y),
            Pool::Max2 => ops::pool2(&y, Pool2::Max),
            Pool::Avg2 => ops::pool2(&y, Pool2::Avg),
        }
    }
}

/// A fresh network with its variables in a new `VarMap`, initialised from `seed`.
pub fn build(
    architecture: &Architecture,
    in_channels: usize,
    input_len: usize,
    side_inputs: usize,
    seed: u64,
    device: &Device,
) -> Result<(VarMap, Network)> {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
    let network = Network::new(vb, architecture, in_channels, input_len, side_inputs)?;
    initialise(&varmap, seed)?;
    Ok((varmap, network))
}

/// PyTorch's default initialisation of Conv1d and Linear, `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`
/// for weights and biases alike, drawn per variable from a generator seeded by `seed` and the
/// variable's name: the same seed gives the same network on every device.
pub fn initialise(varmap: &VarMap, seed: u64) -> Result<()> {
    use rand::{Rng, SeedableRng};
    let data = varmap
        .data()
        .lock()
        .map_err(|_| candle_core::Error::Msg("variable map lock poisoned".into()))?;
    let shapes: std::collections::HashMap<String, Vec<usize>> = data
        .iter()
        .map(|(name, var)| (name.clone(), var.dims().to_vec()))
        .collect();
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    for name in names {
        let var = &data[name];
        let weight_name = match name.strip_suffix(".bias") {
            Some(prefix) => format!("{prefix}.weight"),
            None => name.clone(),
        };
        let fan_in: usize = shapes
            .get(&weight_name)
            .map_or(1, |s| s.iter().skip(1).product());
        let bound = 1.0 / (fan_in.max(1) as f32).sqrt();
        let name_hash = name.bytes().fold(0xcbf29ce484222325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
        });
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ name_hash);
        let values: Vec<f32> = (0..var.elem_count())
            .map(|_| rng.random_range(-bound..bound))
            .collect();
        var.set(&Tensor::from_vec(values, var.dims(), var.device())?.to_dtype(var.dtype())?)?;
    }
    Ok(())
}
