//! The model folder on disk: the manifest, the f32 and int8 safetensors, and reading them
//! back with every disagreement reported against the file it is in.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{bail, Context};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::quantize::Int8Model;
use crate::data::tasks::TaskKind;
use crate::space::Candidate;
use crate::train::Network;

/// The manifest's format name.
pub const FORMAT: &str = "ecgnas-model";
/// The manifest's format version.
pub const FORMAT_VERSION: u32 = 1;

/// File names inside a model folder.
pub const MANIFEST: &str = "manifest.json";
/// The f32 weights.
pub const WEIGHTS: &str = "model.safetensors";
/// The f32 ONNX pipeline.
pub const ONNX: &str = "model.onnx";
/// The int8 QDQ ONNX pipeline.
pub const INT8_ONNX: &str = "model.int8.onnx";
/// The int8 model for the firmware.
pub const INT8_WEIGHTS: &str = "model.int8.safetensors";

/// What one raw input window is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// Sampling rate, Hz (the device's ADC rate).
    pub fs: f64,
    /// Samples per lead.
    pub samples: usize,
    /// Leads.
    pub leads: usize,
    /// Units of the samples.
    pub units: String,
    /// RR side inputs (0 or 3): previous RR, next RR and the mean of the last 10, each over
    /// the record's mean RR.
    pub side_inputs: usize,
}

/// The files of the folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Files {
    /// f32 weights.
    pub weights: String,
    /// f32 ONNX.
    pub onnx: String,
    /// int8 QDQ ONNX.
    pub int8_onnx: String,
    /// int8 weights and layer plan.
    pub int8_weights: String,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// The raw input.
    pub input: InputSpec,
    /// Class names, in output order.
    pub labels: Vec<String>,
    /// The task.
    pub task: String,
    /// `softmax` (one class) or `sigmoid` (multi-label).
    pub output: String,
    /// Decision thresholds on the probabilities (sigmoid outputs; empty for softmax, whose
    /// decision is the most probable class).
    pub thresholds: Vec<f32>,
    /// The records whose examples trained it or chose its epoch and thresholds (training and
    /// validation splits); `ecgnas evaluate` refuses them. Empty in manifests written before
    /// it was kept.
    #[serde(default)]
    pub trained_on: Vec<String>,
    /// The hardware profile it was searched for.
    pub profile: String,
    /// The candidate (preprocessing and architecture).
    pub candidate: Candidate,
    /// Samples per lead the network itself sees.
    pub network_samples: usize,
    /// The files.
    pub files: Files,
    /// SHA-256 of each file, by file name.
    pub sha256: BTreeMap<String, String>,
    /// The ecgnas version that wrote it.
    pub ecgnas_version: String,
}

impl Manifest {
    /// The task.
    pub fn task_kind(&self) -> anyhow::Result<TaskKind> {
        TaskKind::from_name(&self.task)
            .ok_or_else(|| anyhow::anyhow!("unknown task {:?} in the manifest", self.task))
    }

    /// Whether the outputs are independent sigmoids.
    pub fn multi_label(&self) -> bool {
        self.output == "sigmoid"
    }
}

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(format!("{:x}", Sha256::digest(&bytes)))
}

fn f32_bytes(t: &Tensor) -> anyhow::Result<Vec<u8>> {
    Ok(t.flatten_all()?
        .to_vec1::<f32>()?
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect())
}

/// Writes the f32 weights with `metadata`.
pub fn write_weights(
    path: &Path,
    weights: &HashMap<String, Tensor>,
    metadata: HashMap<String, String>,
) -> anyhow::Result<()> {
    let mut owned: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, t) in weights {
        owned.push((name.clone(), t.dims().to_vec(), f32_bytes(t)?));
    }
    owned.sort_by(|a, b| a.0.cmp(&b.0));
    let views = owned
        .iter()
        .map(|(name, shape, bytes)| {
            TensorView::new(Dtype::F32, shape.clone(), bytes).map(|v| (name.clone(), v))
        })
        .collect::<Result<Vec<_>, _>>()?;
    safetensors::tensor::serialize_to_file(views, Some(metadata), path)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Reads the f32 network of a model folder, checking every variable's shape against the
/// candidate.
pub fn read_network(path: &Path, manifest: &Manifest) -> anyhow::Result<Network> {
    let tensors = candle_core::safetensors::load(path, &Device::Cpu)
        .with_context(|| format!("{}: not a readable safetensors file", path.display()))?;
    let n_tensors = tensors.len();
    let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
    let network = Network::new(
        vb,
        &manifest.candidate.architecture,
        manifest.input.leads,
        manifest.network_samples,
        manifest.input.side_inputs,
    )
    .with_context(|| {
        format!(
            "{}: the weights do not match the manifest's candidate",
            path.display()
        )
    })?;
    let expected = network_variable_count(&network);
    if expected != n_tensors {
        bail!(
            "{}: {n_tensors} tensors, the manifest's candidate has {expected}",
            path.display()
        );
    }
    Ok(network)
}

fn network_variable_count(n: &Network) -> usize {
    let blocks: usize = n
        .blocks
        .iter()
        .map(|b| 2 * (1 + usize::from(b.pointwise.is_some()) + usize::from(b.projection.is_some())))
        .sum();
    blocks + 2 + if n.hidden.is_some() { 2 } else { 0 }
}

/// The metadata key of the int8 layer plan.
const PLAN_KEY: &str = "ecgnas.int8_plan";

/// Writes the int8 model: each layer's arrays as tensors, the plan as metadata.
pub fn write_int8(path: &Path, model: &Int8Model, taps: &[f32]) -> anyhow::Result<()> {
    let mut owned: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (i, layer) in model.layers.iter().enumerate() {
        if layer.weights.is_empty() {
            continue;
        }
        let w: Vec<u8> = layer.weights.iter().map(|&v| v as u8).collect();
        owned.push((format!("layer{i}.weights"), Dtype::I8, vec![w.len()], w));
        for (what, values) in [
            ("bias", &layer.bias),
            ("multipliers", &layer.multipliers),
            ("shifts", &layer.shifts),
        ] {
            let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            owned.push((
                format!("layer{i}.{what}"),
                Dtype::I32,
                vec![values.len()],
                bytes,
            ));
        }
    }
    if !taps.is_empty() {
        let bytes: Vec<u8> = taps.iter().flat_map(|v| v.to_le_bytes()).collect();
        owned.push((
            "preprocess.fir_taps".into(),
            Dtype::F32,
            vec![taps.len()],
            bytes,
        ));
    }
    let views = owned
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            TensorView::new(*dtype, shape.clone(), bytes).map(|v| (name.clone(), v))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let metadata = HashMap::from([(PLAN_KEY.to_string(), serde_json::to_string(model)?)]);
    safetensors::tensor::serialize_to_file(views, Some(metadata), path)
        .with_context(|| format!("cannot write {}", path.display()))
}

fn tensor_of<'a>(
    st: &SafeTensors<'a>,
    path: &Path,
    name: &str,
    dtype: Dtype,
    len: usize,
) -> anyhow::Result<&'a [u8]> {
    let view = st
        .tensor(name)
        .map_err(|_| anyhow::anyhow!("{}: tensor {name} is missing", path.display()))?;
    let width = match dtype {
        Dtype::I8 => 1,
        _ => 4,
    };
    if view.dtype() != dtype || view.data().len() != len * width {
        bail!(
            "{}: tensor {name} is {:?} {:?}, the plan needs {dtype:?} of {len}",
            path.display(),
            view.dtype(),
            view.shape()
        );
    }
    Ok(view.data())
}

fn i32s(bytes: &[u8]) -> Vec<i32> {
    bytes
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Reads the int8 model and the FIR taps, checking every array against the plan, and runs
/// the plan once on a zero input so that a corrupt plan fails here.
pub fn read_int8(path: &Path) -> anyhow::Result<(Int8Model, Vec<f32>)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let (_, header) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: not a safetensors file: {e}", path.display()))?;
    let plan = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get(PLAN_KEY))
        .ok_or_else(|| anyhow::anyhow!("{}: no {PLAN_KEY} metadata", path.display()))?;
    let mut model: Int8Model = serde_json::from_str(plan)
        .with_context(|| format!("{}: the int8 layer plan is malformed", path.display()))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: not a safetensors file: {e}", path.display()))?;
    for (i, layer) in model.layers.iter_mut().enumerate() {
        let (n_weights, channels) = match layer.op {
            super::quantize::Int8Op::Conv {
                in_channels,
                out_channels,
                kernel,
                ..
            } => (in_channels * out_channels * kernel, out_channels),
            super::quantize::Int8Op::Depthwise {
                channels, kernel, ..
            } => (channels * kernel, channels),
            super::quantize::Int8Op::Dense {
                in_features,
                out_features,
            } => (in_features * out_features, out_features),
            _ => continue,
        };
        layer.weights = tensor_of(
            &st,
            path,
            &format!("layer{i}.weights"),
            Dtype::I8,
            n_weights,
        )?
        .iter()
        .map(|&b| b as i8)
        .collect();
        layer.bias = i32s(tensor_of(
            &st,
            path,
            &format!("layer{i}.bias"),
            Dtype::I32,
            channels,
        )?);
        layer.multipliers = i32s(tensor_of(
            &st,
            path,
            &format!("layer{i}.multipliers"),
            Dtype::I32,
            channels,
        )?);
        layer.shifts = i32s(tensor_of(
            &st,
            path,
            &format!("layer{i}.shifts"),
            Dtype::I32,
            channels,
        )?);
    }
    let taps = match st.tensor("preprocess.fir_taps") {
        Ok(v) if v.dtype() == Dtype::F32 => v
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Ok(_) => bail!("{}: preprocess.fir_taps is not f32", path.display()),
        Err(_) => Vec::new(),
    };
    model
        .check()
        .with_context(|| format!("{}: the int8 plan does not run", path.display()))?;
    Ok((model, taps))
}

/// Reads and checks `manifest.json` of `dir`: the format, and each file's SHA-256.
pub fn read_manifest(dir: &Path) -> anyhow::Result<Manifest> {
    let path = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}: not a model folder?", path.display()))?;
    let manifest: Manifest = serde_json::from_str(&text)
        .with_context(|| format!("{}: not an ecgnas manifest", path.display()))?;
    if manifest.format != FORMAT || manifest.format_version != FORMAT_VERSION {
        bail!(
            "{}: format {:?} version {}, this ecgnas reads {FORMAT:?} version {FORMAT_VERSION}",
            path.display(),
            manifest.format,
            manifest.format_version
        );
    }
    for (file, expected) in &manifest.sha256 {
        let file_path = dir.join(file);
        let actual = sha256_file(&file_path)?;
        if &actual != expected {
            bail!(
                "{}: its SHA-256 differs from the manifest's ({}); the file was changed or corrupted",
                file_path.display(),
                path.display()
            );
        }
    }
    Ok(manifest)
}
