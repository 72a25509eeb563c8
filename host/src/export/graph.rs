//! A trained network lowered to a flat list of operations over numbered tensors: the one form
//! the ONNX writers, the quantiser and the int8 model are all built from, so every exported
//! file computes the same layers in the same order.
//!
//! Tensor 0 is the network input (leads x samples); with RR side inputs, a `Concat` node
//! appends them to the pooled features. Float values are f32 in PyTorch's layouts (conv
//! weights `(out, in / groups, k)`, dense `(out, in)`).

use candle_core::{Device, Tensor};

use crate::space::{Activation as GeneActivation, ConvKind, Pool};
use crate::train::{ops, Network};

/// The activation fused into a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// None.
    None,
    /// `max(x, 0)`.
    Relu,
    /// `min(max(x, 0), 6)`.
    Relu6,
}

impl From<GeneActivation> for Activation {
    fn from(a: GeneActivation) -> Activation {
        match a {
            GeneActivation::Relu => Activation::Relu,
            GeneActivation::Relu6 => Activation::Relu6,
        }
    }
}

/// The shape of one tensor of a single example: `channels x len` (a feature vector has
/// `len == 1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TensorShape {
    /// Channels (or features).
    pub channels: usize,
    /// Time steps (1 for vectors).
    pub len: usize,
}

impl TensorShape {
    /// Elements.
    pub fn elements(&self) -> usize {
        self.channels * self.len
    }
}

/// A convolution's geometry and weights.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvNode {
    /// The variable prefix (`block0.conv`), naming the ONNX initialisers.
    pub name: String,
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Kernel size.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Dilation.
    pub dilation: usize,
    /// Depthwise (groups = channels) or standard.
    pub depthwise: bool,
    /// `(out, in / groups, k)`.
    pub weight: Vec<f32>,
    /// `(out)`.
    pub bias: Vec<f32>,
    /// Fused activation.
    pub activation: Activation,
}

impl ConvNode {
    /// Padding on each side ("same" for odd kernels at stride 1).
    pub fn padding(&self) -> usize {
        self.dilation * (self.kernel - 1) / 2
    }
}

/// A dense layer.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseNode {
    /// The variable prefix (`head.out`).
    pub name: String,
    /// Input features.
    pub in_features: usize,
    /// Output features.
    pub out_features: usize,
    /// `(out, in)`.
    pub weight: Vec<f32>,
    /// `(out)`.
    pub bias: Vec<f32>,
    /// Fused activation.
    pub activation: Activation,
}

/// One operation.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Convolution (standard, depthwise or pointwise).
    Conv(ConvNode),
    /// `a + b`, then the activation.
    Add(Activation),
    /// Max pooling, window 2, stride 2.
    MaxPool2,
    /// Average pooling, window 2, stride 2.
    AvgPool2,
    /// Mean over time: `(C, L)` to `(C, 1)`.
    GlobalAvgPool,
    /// The pooled features followed by the RR side inputs.
    ConcatSide,
    /// Dense layer.
    Dense(DenseNode),
}

/// One node: an op, the tensors it reads and the tensor it writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The op.
    pub op: Op,
    /// Input tensors (two for `Add`).
    pub inputs: Vec<usize>,
    /// Output tensor.
    pub output: usize,
}

/// A network as nodes over tensors.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    /// Every tensor's shape; tensor 0 is the input.
    pub tensors: Vec<TensorShape>,
    /// Nodes in execution order.
    pub nodes: Vec<Node>,
    /// Number of RR side inputs (0 or 3).
    pub side_inputs: usize,
    /// The logits tensor.
    pub output: usize,
}

fn values(t: &Tensor) -> candle_core::Result<Vec<f32>> {
    t.flatten_all()?.to_vec1::<f32>()
}

impl Graph {
    /// Lowers `network` for inputs of `leads x samples`.
    pub fn lower(network: &Network, leads: usize, samples: usize) -> candle_core::Result<Graph> {
        let mut g = Graph {
            tensors: vec![TensorShape {
                channels: leads,
                len: samples,
            }],
            nodes: Vec::new(),
            side_inputs: network.side_inputs,
            output: 0,
        };
        let mut x = 0usize;
        for (i, block) in network.blocks.iter().enumerate() {
            let genes = &block.genes;
            let act = Activation::from(genes.activation);
            let shape = g.tensors[x];
            // Without a skip the last conv carries the activation; with one, the add does.
            let last_act = if block.skip { Activation::None } else { act };
            let y = match (&genes.kind, &block.pointwise) {
                (ConvKind::DepthwiseSeparable, Some(pw)) => {
                    let dw = g.conv(
                        x,
                        format!("block{i}.dw"),
                        &block.conv.weight,
                        &block.conv.bias,
                        (shape.channels, genes.kernel, genes.stride, genes.dilation),
                        true,
                        act,
                    )?;
                    g.conv(
                        dw,
                        format!("block{i}.pw"),
                        &pw.weight,
                        &pw.bias,
                        (genes.channels, 1, 1, 1),
                        false,
                        last_act,
                    )?
                }
                _ => g.conv(
                    x,
                    format!("block{i}.conv"),
                    &block.conv.weight,
                    &block.conv.bias,
                    (genes.channels, genes.kernel, genes.stride, genes.dilation),
                    false,
                    last_act,
                )?,
            };
            let y = if block.skip {
                let shortcut = match &block.projection {
                    Some(p) => g.conv(
                        x,
                        format!("block{i}.proj"),
                        &p.weight,
                        &p.bias,
                        (genes.channels, 1, genes.stride, 1),
                        false,
                        Activation::None,
                    )?,
                    None => x,
                };
                let shape = g.tensors[y];
                g.push(Op::Add(act), vec![y, shortcut], shape)
            } else {
                y
            };
            x = match genes.pool {
                Pool::None => y,
                Pool::Max2 | Pool::Avg2 => {
                    let s = g.tensors[y];
                    let op = if genes.pool == Pool::Max2 {
                        Op::MaxPool2
                    } else {
                        Op::AvgPool2
                    };
                    g.push(
                        op,
                        vec![y],
                        TensorShape {
                            channels: s.channels,
                            len: s.len / 2,
                        },
                    )
                }
            };
        }
        let channels = g.tensors[x].channels;
        let mut h = g.push(Op::GlobalAvgPool, vec![x], TensorShape { channels, len: 1 });
        if network.side_inputs > 0 {
            h = g.push(
                Op::ConcatSide,
                vec![h],
                TensorShape {
                    channels: channels + network.side_inputs,
                    len: 1,
                },
            );
        }
        if let Some((w, b)) = &network.hidden {
            h = g.dense(h, "head.hidden", w, b, Activation::Relu)?;
        }
        g.output = g.dense(
            h,
            "head.out",
            &network.output.0,
            &network.output.1,
            Activation::None,
        )?;
        Ok(g)
    }

    fn push(&mut self, op: Op, inputs: Vec<usize>, shape: TensorShape) -> usize {
        self.tensors.push(shape);
        let output = self.tensors.len() - 1;
        self.nodes.push(Node { op, inputs, output });
        output
    }

    #[allow(clippy::too_many_arguments)]
    fn conv(
        &mut self,
        x: usize,
        name: String,
        weight: &Tensor,
        bias: &Tensor,
        (out_channels, kernel, stride, dilation): (usize, usize, usize, usize),
        depthwise: bool,
        activation: Activation,
    ) -> candle_core::Result<usize> {
        let input = self.tensors[x];
        let len = ops::conv_out_len(input.len, kernel, stride, dilation);
        let node = ConvNode {
            name,
            in_channels: input.channels,
            out_channels,
            kernel,
            stride,
            dilation,
            depthwise,
            weight: values(weight)?,
            bias: values(bias)?,
            activation,
        };
        Ok(self.push(
            Op::Conv(node),
            vec![x],
            TensorShape {
                channels: out_channels,
                len,
            },
        ))
    }

    fn dense(
        &mut self,
        x: usize,
        name: &str,
        weight: &Tensor,
        bias: &Tensor,
        activation: Activation,
    ) -> candle_core::Result<usize> {
        let (out_features, in_features) = weight.dims2()?;
        let node = DenseNode {
            name: name.to_string(),
            in_features,
            out_features,
            weight: values(weight)?,
            bias: values(bias)?,
            activation,
        };
        Ok(self.push(
            Op::Dense(node),
            vec![x],
            TensorShape {
                channels: out_features,
                len: 1,
            },
        ))
    }

    /// Every tensor for a batch, in f32 with candle: `x` is `(B, leads, samples)`, `side`
    /// `(B, side_inputs)`. Tensors come back as `(B, C, L)`, vectors as `(B, C)`. The
    /// quantiser calibrates on these; `logits` is the last of them.
    pub fn eval(&self, x: &Tensor, side: Option<&Tensor>) -> candle_core::Result<Vec<Tensor>> {
        let device = x.device();
        let mut values: Vec<Option<Tensor>> = vec![None; self.tensors.len()];
        values[0] = Some(x.clone());
        let get = |values: &[Option<Tensor>], i: usize| -> candle_core::Result<Tensor> {
            values[i]
                .clone()
                .ok_or_else(|| candle_core::Error::Msg(format!("tensor {i} read before written")))
        };
        for node in &self.nodes {
            let a = get(&values, node.inputs[0])?;
            let y = match &node.op {
                Op::Conv(c) => {
                    let groups_in = if c.depthwise { 1 } else { c.in_channels };
                    let w = Tensor::from_vec(
                        c.weight.clone(),
                        (c.out_channels, groups_in, c.kernel),
                        device,
                    )?;
                    let b = Tensor::from_vec(c.bias.clone(), c.out_channels, device)?;
                    let y = if c.depthwise {
                        ops::depthwise_conv1d(&a, &w, &b, c.stride, c.dilation)?
                    } else {
                        ops::conv1d(&a, &w, &b, c.stride, c.dilation)?
                    };
                    activate(&y, c.activation)?
                }
                Op::Add(act) => activate(&(a + get(&values, node.inputs[1])?)?, *act)?,
                Op::MaxPool2 => ops::max_pool1d(&a, 2)?,
                Op::AvgPool2 => ops::avg_pool1d(&a, 2)?,
                Op::GlobalAvgPool => ops::global_avg_pool(&a)?,
                Op::ConcatSide => match side {
                    Some(s) => Tensor::cat(&[&a, s], 1)?,
                    None => candle_core::bail!("the network takes RR side inputs"),
                },
                Op::Dense(d) => {
                    let w = Tensor::from_vec(
                        d.weight.clone(),
                        (d.out_features, d.in_features),
                        device,
                    )?;
                    let b = Tensor::from_vec(d.bias.clone(), d.out_features, device)?;
                    activate(&ops::dense(&a, &w, &b)?, d.activation)?
                }
            };
            values[node.output] = Some(y);
        }
        values
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                v.ok_or_else(|| candle_core::Error::Msg(format!("tensor {i} never written")))
            })
            .collect()
    }

    /// The logits for a batch (see [`Graph::eval`]).
    pub fn logits(&self, x: &Tensor, side: Option<&Tensor>) -> candle_core::Result<Tensor> {
        let mut all = self.eval(x, side)?;
        all.pop()
            .ok_or_else(|| candle_core::Error::Msg("empty graph".into()))
    }

    /// The device a fresh evaluation would use (CPU: export is a host job).
    pub fn device() -> Device {
        Device::Cpu
    }
}

fn activate(x: &Tensor, activation: Activation) -> candle_core::Result<Tensor> {
    match activation {
        Activation::None => Ok(x.clone()),
        Activation::Relu => x.relu(),
        Activation::Relu6 => ops::relu6(x),
    }
}
