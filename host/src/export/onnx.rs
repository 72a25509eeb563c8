//! The whole pipeline as ONNX (opset 13): from the raw window (mV, at the device's ADC rate)
//! through the preprocessing genes, as ONNX operators, to class probabilities.
//!
//! Built with tract-onnx's protobuf types and prost. Two forms:
//! - f32: the network as trained;
//! - int8 (QDQ): every tensor the int8 model stores goes through `QuantizeLinear` and
//!   `DequantizeLinear` with its scale and zero point, weights are int8 initialisers behind a
//!   per-channel `DequantizeLinear` (axis 0) and biases int32 ones at `input_scale *
//!   weight_scale`. A second output, `logits_int8`, is the quantised logits the device
//!   computes.
//!
//! Inputs: `window` `(batch, leads, samples)`, and `rr` `(batch, 3)` for beat models with RR
//! features. Outputs: `probabilities` `(batch, classes)` (softmax or sigmoid), and for the
//! int8 form `logits_int8`.

use prost::Message;
use tract_onnx::pb::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto, type_proto,
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto,
    TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};

use super::graph::{Activation, ConvNode, Graph, Op};
use super::quantize::{Int8Layer, Int8Model, QuantParams};
use crate::pipeline::preprocess::LeadPlan;
use ecgnas_firmware::preprocess::{Normalisation, MIN_SCALE};

/// The opset the files declare.
pub const OPSET: i64 = 13;
/// The IR version the files declare (ONNX 1.8, the first with opset 13).
pub const IR_VERSION: i64 = 7;

/// Everything the writer needs besides the network.
pub struct OnnxSpec<'a> {
    /// The lowered network.
    pub graph: &'a Graph,
    /// The preprocessing of each lead.
    pub plan: &'a LeadPlan,
    /// Leads.
    pub leads: usize,
    /// Sigmoid (multi-label) instead of softmax outputs.
    pub multi_label: bool,
    /// `key = value` metadata (candidate, labels, task...).
    pub metadata: Vec<(String, String)>,
}

struct Builder {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    next: usize,
}

fn attr_ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints: values.to_vec(),
        ..Default::default()
    }
}

fn attr_int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i: value,
        ..Default::default()
    }
}

fn attr_string(name: &str, value: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::String as i32,
        s: value.as_bytes().to_vec(),
        ..Default::default()
    }
}

fn dims(d: &[usize]) -> Vec<i64> {
    d.iter().map(|&v| v as i64).collect()
}

impl Builder {
    fn new() -> Builder {
        Builder {
            nodes: Vec::new(),
            initializers: Vec::new(),
            next: 0,
        }
    }

    fn node(&mut self, op: &str, inputs: &[&str], attributes: Vec<AttributeProto>) -> String {
        self.next += 1;
        let output = format!("{}_{}", op.to_lowercase(), self.next);
        self.named_node(op, inputs, attributes, &output);
        output
    }

    fn named_node(
        &mut self,
        op: &str,
        inputs: &[&str],
        attributes: Vec<AttributeProto>,
        output: &str,
    ) {
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.to_string()],
            name: format!("n{}_{}", self.nodes.len(), op),
            op_type: op.into(),
            attribute: attributes,
            ..Default::default()
        });
    }

    fn tensor(&mut self, name: &str, shape: &[usize], data_type: DataType, raw: Vec<u8>) -> String {
        self.initializers.push(TensorProto {
            dims: dims(shape),
            data_type: data_type as i32,
            name: name.into(),
            raw_data: raw,
            ..Default::default()
        });
        name.to_string()
    }

    fn f32s(&mut self, name: &str, shape: &[usize], values: &[f32]) -> String {
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.tensor(name, shape, DataType::Float, raw)
    }

    fn i64s(&mut self, name: &str, values: &[i64]) -> String {
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.tensor(name, &[values.len()], DataType::Int64, raw)
    }

    fn i8s(&mut self, name: &str, shape: &[usize], values: &[i8]) -> String {
        let raw = values.iter().map(|&v| v as u8).collect();
        self.tensor(name, shape, DataType::Int8, raw)
    }

    fn i32s(&mut self, name: &str, shape: &[usize], values: &[i32]) -> String {
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.tensor(name, shape, DataType::Int32, raw)
    }

    fn scalar(&mut self, name: &str, value: f32) -> String {
        self.f32s(name, &[], &[value])
    }

    /// `QuantizeLinear` then `DequantizeLinear` with per-tensor parameters; returns the
    /// quantised and the dequantised names.
    fn qdq(&mut self, x: &str, tag: &str, q: QuantParams) -> (String, String) {
        let scale = self.scalar(&format!("{tag}.scale"), q.scale);
        let zp = self.i8s(&format!("{tag}.zero_point"), &[], &[q.zero_point as i8]);
        let quantised = self.node("QuantizeLinear", &[x, &scale, &zp], vec![]);
        let dequantised = self.node("DequantizeLinear", &[&quantised, &scale, &zp], vec![]);
        (quantised, dequantised)
    }

    /// A layer's int8 weights (PyTorch layout, `shape`) and int32 biases as initialisers
    /// behind per-channel (axis 0) `DequantizeLinear`s: weights at the layer's weight scales,
    /// biases at `input_scale * weight_scale`. Returns the dequantised weight and bias names.
    fn int8_weights(
        &mut self,
        name: &str,
        shape: &[usize],
        weights: &[i8],
        layer: &Int8Layer,
        input_scale: f32,
    ) -> (String, String) {
        let channels = shape[0];
        let wq = self.i8s(&format!("{name}.weight_int8"), shape, weights);
        let ws = self.f32s(
            &format!("{name}.weight_scale"),
            &[channels],
            &layer.weight_scales,
        );
        let wz = self.i8s(
            &format!("{name}.weight_zero_point"),
            &[channels],
            &vec![0; channels],
        );
        let axis = || vec![attr_int("axis", 0)];
        let w = self.node("DequantizeLinear", &[&wq, &ws, &wz], axis());
        let bias_scales: Vec<f32> = layer
            .weight_scales
            .iter()
            .map(|s| s * input_scale)
            .collect();
        let bq = self.i32s(&format!("{name}.bias_int32"), &[channels], &layer.bias);
        let bs = self.f32s(&format!("{name}.bias_scale"), &[channels], &bias_scales);
        let bz = self.i32s(
            &format!("{name}.bias_zero_point"),
            &[channels],
            &vec![0; channels],
        );
        let bias = self.node("DequantizeLinear", &[&bq, &bs, &bz], axis());
        (w, bias)
    }

    fn activation(&mut self, x: &str, activation: Activation) -> String {
        match activation {
            Activation::None => x.to_string(),
            Activation::Relu => self.node("Relu", &[x], vec![]),
            Activation::Relu6 => {
                let lo = self.scalar(&format!("clip{}.min", self.next), 0.0);
                let hi = self.scalar(&format!("clip{}.max", self.next), 6.0);
                self.node("Clip", &[x, &lo, &hi], vec![])
            }
        }
    }
}

fn value_info(name: &str, data_type: DataType, shape: &[Option<usize>]) -> ValueInfoProto {
    let dim = shape
        .iter()
        .map(|d| tensor_shape_proto::Dimension {
            denotation: String::new(),
            value: Some(match d {
                Some(v) => tensor_shape_proto::dimension::Value::DimValue(*v as i64),
                None => tensor_shape_proto::dimension::Value::DimParam("batch".into()),
            }),
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            denotation: String::new(),
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: data_type as i32,
                shape: Some(TensorShapeProto { dim }),
            })),
        }),
        ..Default::default()
    }
}

/// The preprocessing genes as ONNX operators on `(batch, leads, samples)`.
fn preprocessing(b: &mut Builder, x: &str, plan: &LeadPlan, leads: usize) -> String {
    let pad_edge = |b: &mut Builder, x: &str, half: usize, tag: &str| -> String {
        let pads = b.i64s(
            &format!("{tag}.pads"),
            &[0, 0, half as i64, 0, 0, half as i64],
        );
        b.node("Pad", &[x, &pads], vec![attr_string("mode", "edge")])
    };
    let mut x = x.to_string();
    if !plan.taps.is_empty() {
        // The FIR evaluated at the kept samples only: a strided grouped convolution.
        let half = plan.taps.len() / 2;
        let padded = pad_edge(b, &x, half, "fir");
        let taps: Vec<f32> = (0..leads).flat_map(|_| plan.taps.iter().copied()).collect();
        let w = b.f32s("fir.taps", &[leads, 1, plan.taps.len()], &taps);
        x = b.node(
            "Conv",
            &[&padded, &w],
            vec![
                attr_ints("kernel_shape", &[plan.taps.len() as i64]),
                attr_ints("strides", &[plan.decimation as i64]),
                attr_int("group", leads as i64),
            ],
        );
    } else if plan.decimation > 1 {
        let starts = b.i64s("decimate.starts", &[0]);
        let ends = b.i64s("decimate.ends", &[plan.window as i64]);
        let axes = b.i64s("decimate.axes", &[2]);
        let steps = b.i64s("decimate.steps", &[plan.decimation as i64]);
        x = b.node("Slice", &[&x, &starts, &ends, &axes, &steps], vec![]);
    }
    if plan.moving_average > 0 {
        let padded = pad_edge(b, &x, plan.moving_average / 2, "baseline");
        let mean = b.node(
            "AveragePool",
            &[&padded],
            vec![
                attr_ints("kernel_shape", &[plan.moving_average as i64]),
                attr_ints("strides", &[1]),
            ],
        );
        x = b.node("Sub", &[&x, &mean], vec![]);
    }
    match plan.normalisation {
        Normalisation::None => {}
        Normalisation::ZScore => {
            let axes = vec![attr_ints("axes", &[2]), attr_int("keepdims", 1)];
            let mean = b.node("ReduceMean", &[&x], axes.clone());
            let centred = b.node("Sub", &[&x, &mean], vec![]);
            let squares = b.node("Mul", &[&centred, &centred], vec![]);
            let var = b.node("ReduceMean", &[&squares], axes);
            let std = b.node("Sqrt", &[&var], vec![]);
            let floor = b.scalar("zscore.min_scale", MIN_SCALE);
            let scale = b.node("Max", &[&std, &floor], vec![]);
            x = b.node("Div", &[&centred, &scale], vec![]);
        }
        Normalisation::MaxAbs => {
            let abs = b.node("Abs", &[&x], vec![]);
            let peak = b.node(
                "ReduceMax",
                &[&abs],
                vec![attr_ints("axes", &[2]), attr_int("keepdims", 1)],
            );
            let floor = b.scalar("maxabs.min_scale", MIN_SCALE);
            let scale = b.node("Max", &[&peak, &floor], vec![]);
            x = b.node("Div", &[&x, &scale], vec![]);
        }
    }
    x
}

/// The int8 weights of a layer back in PyTorch's layout (the int8 model stores the kernels').
fn torch_layout_weights(c: &ConvNode, kernel_layout: &[i8]) -> Vec<i8> {
    let mut w = vec![0i8; kernel_layout.len()];
    if c.depthwise {
        for ch in 0..c.out_channels {
            for k in 0..c.kernel {
                w[ch * c.kernel + k] = kernel_layout[k * c.out_channels + ch];
            }
        }
    } else {
        for o in 0..c.out_channels {
            for i in 0..c.in_channels {
                for k in 0..c.kernel {
                    w[(o * c.in_channels + i) * c.kernel + k] =
                        kernel_layout[(o * c.kernel + k) * c.in_channels + i];
                }
            }
        }
    }
    w
}

/// Encodes the pipeline; `int8` gives the QDQ form.
pub fn build(spec: &OnnxSpec<'_>, int8: Option<&Int8Model>) -> anyhow::Result<Vec<u8>> {
    let g = spec.graph;
    let mut b = Builder::new();
    let mut names: Vec<String> = vec![String::new(); g.tensors.len()];
    let x = preprocessing(&mut b, "window", spec.plan, spec.leads);
    names[0] = match int8 {
        Some(m) => b.qdq(&x, "t0", m.tensors[0]).1,
        None => x,
    };
    // Where each graph node's int8 layer is, and the scale of a tensor it reads.
    let layer_of = |node: usize| int8.and_then(|m| m.layers.iter().find(|l| l.node == node));
    let input_scale = |tensor: usize| int8.map_or(1.0, |m| m.tensors[tensor].scale);
    let mut logits_int8 = None;
    for (n, node) in g.nodes.iter().enumerate() {
        let input = names[node.inputs[0]].clone();
        let mut y = match &node.op {
            Op::Conv(c) => {
                let groups_in = if c.depthwise { 1 } else { c.in_channels };
                let wshape = [c.out_channels, groups_in, c.kernel];
                let (w, bias) = match layer_of(n) {
                    Some(layer) => {
                        let q = torch_layout_weights(c, &layer.weights);
                        b.int8_weights(&c.name, &wshape, &q, layer, input_scale(node.inputs[0]))
                    }
                    None => (
                        b.f32s(&format!("{}.weight", c.name), &wshape, &c.weight),
                        b.f32s(&format!("{}.bias", c.name), &[c.out_channels], &c.bias),
                    ),
                };
                let p = c.padding() as i64;
                let conv = b.node(
                    "Conv",
                    &[&input, &w, &bias],
                    vec![
                        attr_ints("kernel_shape", &[c.kernel as i64]),
                        attr_ints("strides", &[c.stride as i64]),
                        attr_ints("dilations", &[c.dilation as i64]),
                        attr_ints("pads", &[p, p]),
                        attr_int("group", if c.depthwise { c.in_channels as i64 } else { 1 }),
                    ],
                );
                b.activation(&conv, c.activation)
            }
            Op::Add(act) => {
                let other = names[node.inputs[1]].clone();
                let sum = b.node("Add", &[&input, &other], vec![]);
                b.activation(&sum, *act)
            }
            Op::MaxPool2 | Op::AvgPool2 => b.node(
                if node.op == Op::MaxPool2 {
                    "MaxPool"
                } else {
                    "AveragePool"
                },
                &[&input],
                vec![attr_ints("kernel_shape", &[2]), attr_ints("strides", &[2])],
            ),
            Op::GlobalAvgPool => {
                let pooled = b.node("GlobalAveragePool", &[&input], vec![]);
                b.node("Flatten", &[&pooled], vec![attr_int("axis", 1)])
            }
            Op::ConcatSide => {
                let rr = match int8.and_then(|m| m.side_quant) {
                    Some(q) => b.qdq("rr", "rr", q).1,
                    None => "rr".to_string(),
                };
                b.node("Concat", &[&input, &rr], vec![attr_int("axis", 1)])
            }
            Op::Dense(d) => {
                let wshape = [d.out_features, d.in_features];
                let (w, bias) = match layer_of(n) {
                    Some(layer) => b.int8_weights(
                        &d.name,
                        &wshape,
                        &layer.weights,
                        layer,
                        input_scale(node.inputs[0]),
                    ),
                    None => (
                        b.f32s(&format!("{}.weight", d.name), &wshape, &d.weight),
                        b.f32s(&format!("{}.bias", d.name), &[d.out_features], &d.bias),
                    ),
                };
                let y = b.node("Gemm", &[&input, &w, &bias], vec![attr_int("transB", 1)]);
                b.activation(&y, d.activation)
            }
        };
        if let Some(m) = int8 {
            // Pools and the concat keep their input's parameters: re-quantising with the same
            // scale is what the int8 kernels do.
            let (q, dq) = b.qdq(&y, &format!("t{}", node.output), m.tensors[node.output]);
            if node.output == g.output {
                logits_int8 = Some(q);
            }
            y = dq;
        }
        names[node.output] = y;
    }
    let logits = names[g.output].clone();
    let final_op = if spec.multi_label {
        "Sigmoid"
    } else {
        "Softmax"
    };
    let attrs = if spec.multi_label {
        vec![]
    } else {
        vec![attr_int("axis", 1)]
    };
    b.named_node(final_op, &[&logits], attrs, "probabilities");
    let classes = g.tensors[g.output].channels;
    let mut outputs = vec![value_info(
        "probabilities",
        DataType::Float,
        &[None, Some(classes)],
    )];
    if let Some(q) = logits_int8 {
        b.named_node("Identity", &[&q], vec![], "logits_int8");
        outputs.push(value_info(
            "logits_int8",
            DataType::Int8,
            &[None, Some(classes)],
        ));
    }
    let mut inputs = vec![value_info(
        "window",
        DataType::Float,
        &[None, Some(spec.leads), Some(spec.plan.window)],
    )];
    if g.side_inputs > 0 {
        inputs.push(value_info(
            "rr",
            DataType::Float,
            &[None, Some(g.side_inputs)],
        ));
    }
    let model = ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        producer_name: "ecgnas".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(GraphProto {
            node: b.nodes,
            name: if int8.is_some() {
                "ecgnas_int8"
            } else {
                "ecgnas"
            }
            .into(),
            initializer: b.initializers,
            input: inputs,
            output: outputs,
            ..Default::default()
        }),
        metadata_props: spec
            .metadata
            .iter()
            .map(|(k, v)| StringStringEntryProto {
                key: k.clone(),
                value: v.clone(),
            })
            .collect(),
        ..Default::default()
    };
    Ok(model.encode_to_vec())
}
