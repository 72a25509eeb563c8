//! The cost model against what export builds: the predicted arena is the int8 model's arena
//! byte for byte, and the predicted MACs and parameters equal a count made from the exported
//! ONNX graph alone.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use candle_core::Device;
use ecgnas::cost::{estimate_at, Profile};
use ecgnas::export::graph::Graph;
use ecgnas::export::onnx::{build, OnnxSpec};
use ecgnas::export::quantize::quantize;
use ecgnas::pipeline::preprocess::LeadPlan;
use ecgnas::space::{Candidate, SearchSpace, TaskShape, WindowKind};
use ecgnas::train::{ExampleSet, Targets};
use prost::Message;
use rand::SeedableRng;
use tract_onnx::pb::{attribute_proto::AttributeType, ModelProto, NodeProto};

/// A task shape of each kind: 10 s rhythm windows (one lead, sigmoid) and beats with RR inputs
/// (two leads, softmax).
fn shapes() -> Vec<TaskShape> {
    vec![
        TaskShape {
            window: WindowKind::Fixed {
                choices_s: vec![10.0],
            },
            multi_label: true,
            n_classes: 6,
            input_fs_hz: 250.0,
            leads: 1,
        },
        TaskShape {
            window: WindowKind::Beat,
            multi_label: false,
            n_classes: 4,
            input_fs_hz: 360.0,
            leads: 2,
        },
    ]
}

struct Built {
    candidate: Candidate,
    graph: Graph,
    plan: LeadPlan,
    leads: usize,
    fs: f64,
}

/// Random candidates of the default spaces that fit in a few million MACs, as untrained
/// networks with seeded weights.
fn candidates(n_per_shape: usize) -> Vec<Built> {
    let profile = Profile::load("qemu-mps2-an386").unwrap();
    let mut out = Vec::new();
    for shape in shapes() {
        let space = SearchSpace::default_for(&shape);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut found = 0;
        for seed in 0..2000u64 {
            if found == n_per_shape {
                break;
            }
            let candidate = space.sample(&mut rng).unwrap();
            let Ok(e) = estimate_at(&candidate, &profile, shape.leads, shape.input_fs_hz) else {
                continue;
            };
            if e.macs > 4_000_000 {
                continue;
            }
            let pipeline = candidate
                .preprocessing
                .pipeline_shape(shape.input_fs_hz)
                .unwrap();
            let plan = LeadPlan::new(&candidate.preprocessing, &pipeline);
            let (_, network) = ecgnas::train::network::build(
                &candidate.architecture,
                shape.leads,
                pipeline.network_samples,
                pipeline.side_inputs,
                seed,
                &Device::Cpu,
            )
            .unwrap();
            let graph = Graph::lower(&network, shape.leads, pipeline.network_samples).unwrap();
            out.push(Built {
                candidate,
                graph,
                plan,
                leads: shape.leads,
                fs: shape.input_fs_hz,
            });
            found += 1;
        }
        assert_eq!(found, n_per_shape, "not enough small candidates");
    }
    out
}

fn calibration(b: &Built) -> ExampleSet {
    let len = b.plan.output_len();
    let n = 4;
    let mut state = 0x9e37_79b9u32;
    let inputs: Vec<f32> = (0..n * b.leads * len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state % 2000) as f32 / 500.0 - 2.0
        })
        .collect();
    let side_width = b.graph.side_inputs;
    ExampleSet {
        inputs,
        n,
        channels: b.leads,
        len,
        side: vec![1.0; n * side_width],
        side_width,
        targets: Targets::Classes(vec![0; n]),
    }
}

#[test]
fn predicted_arena_is_the_int8_models_arena() {
    let profile = Profile::load("qemu-mps2-an386").unwrap();
    for b in candidates(25) {
        let int8 = quantize(&b.graph, &calibration(&b)).unwrap();
        let e = estimate_at(&b.candidate, &profile, b.leads, b.fs).unwrap();
        assert_eq!(
            e.arena_bytes as usize,
            int8.arena_len,
            "{}",
            b.candidate.describe()
        );
    }
}

fn ints(node: &NodeProto, name: &str) -> Vec<i64> {
    node.attribute
        .iter()
        .find(|a| a.name == name && a.r#type == AttributeType::Ints as i32)
        .map(|a| a.ints.clone())
        .unwrap_or_default()
}

/// MACs and parameters counted from an ONNX file alone: shapes propagated op by op from the
/// input, each op counted by its own rule.
fn onnx_counts(bytes: &[u8], leads: usize, samples: usize) -> (u64, u64) {
    let model = ModelProto::decode(bytes).unwrap();
    let graph = model.graph.unwrap();
    let init: HashMap<&str, Vec<i64>> = graph
        .initializer
        .iter()
        .map(|t| (t.name.as_str(), t.dims.clone()))
        .collect();
    let int64s: HashMap<&str, Vec<i64>> = graph
        .initializer
        .iter()
        .filter(|t| t.data_type == 7)
        .map(|t| {
            let v = t
                .raw_data
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
                .collect();
            (t.name.as_str(), v)
        })
        .collect();
    // Shapes without the batch: (channels, length) or (features,).
    let mut shape: HashMap<String, Vec<usize>> = HashMap::new();
    shape.insert("window".into(), vec![leads, samples]);
    shape.insert("rr".into(), vec![3]);
    let mut macs = 0u64;
    let elems = |s: &[usize]| s.iter().product::<usize>() as u64;
    for node in &graph.node {
        let x = shape.get(&node.input[0]).cloned().unwrap_or_default();
        let out: Vec<usize> = match node.op_type.as_str() {
            "Pad" => {
                let p = &int64s[node.input[1].as_str()];
                vec![x[0], x[1] + (p[2] + p[5]) as usize]
            }
            "Conv" => {
                let w = &init[node.input[1].as_str()];
                let (k, s, d) = (
                    ints(node, "kernel_shape")[0] as usize,
                    ints(node, "strides").first().copied().unwrap_or(1) as usize,
                    ints(node, "dilations").first().copied().unwrap_or(1) as usize,
                );
                let pads = ints(node, "pads");
                let padded = x[1] + pads.iter().sum::<i64>() as usize;
                let len = (padded - d * (k - 1) - 1) / s + 1;
                let y = vec![w[0] as usize, len];
                // Each output reads in/groups x k inputs.
                macs += elems(&y) * (w[1] * w[2]) as u64;
                y
            }
            "Slice" => {
                let step = int64s[node.input[4].as_str()][0] as usize;
                vec![x[0], x[1].div_ceil(step)]
            }
            "AveragePool" | "MaxPool" => {
                let (k, s) = (
                    ints(node, "kernel_shape")[0] as usize,
                    ints(node, "strides")[0] as usize,
                );
                let y = vec![x[0], (x[1] - k) / s + 1];
                macs += elems(&y) * k as u64;
                y
            }
            "GlobalAveragePool" => {
                macs += elems(&x);
                vec![x[0], 1]
            }
            "Flatten" => vec![elems(&x) as usize],
            "ReduceMean" | "ReduceMax" => {
                macs += elems(&x);
                vec![x[0], 1]
            }
            "Sub" | "Mul" | "Div" | "Add" => {
                let other = shape.get(&node.input[1]).cloned().unwrap_or_default();
                let y = if elems(&other) > elems(&x) { other } else { x };
                macs += elems(&y);
                y
            }
            "Gemm" => {
                let w = &init[node.input[1].as_str()];
                macs += (w[0] * w[1]) as u64;
                vec![w[0] as usize]
            }
            "Concat" => {
                let other = shape.get(&node.input[1]).cloned().unwrap_or_default();
                vec![x[0] + other[0]]
            }
            // Activations (clamps on the device), Sqrt, Max, Abs, Softmax, Sigmoid: not counted.
            _ => x,
        };
        shape.insert(node.output[0].clone(), out);
    }
    let params: u64 = graph
        .initializer
        .iter()
        .filter(|t| t.name.ends_with(".weight") || t.name.ends_with(".bias"))
        .map(|t| t.dims.iter().product::<i64>() as u64)
        .sum();
    (macs, params)
}

#[test]
fn macs_and_params_equal_a_count_over_the_onnx_graph() {
    let profile = Profile::load("qemu-mps2-an386").unwrap();
    for b in candidates(15) {
        let spec = OnnxSpec {
            graph: &b.graph,
            plan: &b.plan,
            leads: b.leads,
            multi_label: false,
            metadata: vec![],
        };
        let bytes = build(&spec, None).unwrap();
        let (macs, params) = onnx_counts(&bytes, b.leads, b.plan.window);
        let e = estimate_at(&b.candidate, &profile, b.leads, b.fs).unwrap();
        assert_eq!(
            (e.macs, e.params),
            (macs, params),
            "{}",
            b.candidate.describe()
        );
    }
}
