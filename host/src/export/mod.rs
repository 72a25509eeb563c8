//! A trained candidate leaves ecgnas as a model folder, and comes back from one.
//!
//! The flow: the candle [`Network`] is lowered to a [`graph::Graph`]; the graph is written as
//! f32 ONNX, quantised ([`quantize`]) into an [`quantize::Int8Model`] (the firmware's layer
//! plan), and that is written as int8 QDQ ONNX and as `model.int8.safetensors`. The manifest
//! names every file with its SHA-256. [`load`] reads a folder back, checking each file, and
//! gives the three forms side by side: candle f32, the int8 reference (the firmware crate's
//! code) and the ONNX files for other runtimes ([`verify`]).

pub mod files;
pub mod graph;
pub mod onnx;
pub mod quantize;
pub mod verify;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{bail, Context};
use candle_core::{Device, Tensor};

use crate::data::tasks::TaskKind;
use crate::pipeline::preprocess::LeadPlan;
use crate::space::Candidate;
use crate::train::{ExampleSet, Network};
pub use files::{read_manifest, Manifest};
use graph::Graph;
use quantize::Int8Model;

/// What [`export`] needs.
pub struct ExportInput<'a> {
    /// The candidate.
    pub candidate: &'a Candidate,
    /// The trained network.
    pub network: &'a Network,
    /// Its variables by name (`block0.conv.weight`...).
    pub weights: HashMap<String, Tensor>,
    /// The task.
    pub task: TaskKind,
    /// Class names.
    pub labels: Vec<String>,
    /// The hardware profile's name.
    pub profile: String,
    /// The ADC rate, Hz.
    pub fs_hz: f64,
    /// Leads.
    pub leads: usize,
    /// Preprocessed training examples for the int8 calibration.
    pub calibration: &'a ExampleSet,
    /// Sigmoid decision thresholds (empty for softmax tasks).
    pub thresholds: Vec<f32>,
    /// The records whose examples trained it or chose its epoch and thresholds.
    pub trained_on: Vec<String>,
}

/// The variables of a trained network's `VarMap`.
pub fn varmap_tensors(varmap: &candle_nn::VarMap) -> anyhow::Result<HashMap<String, Tensor>> {
    let data = varmap
        .data()
        .lock()
        .map_err(|_| anyhow::anyhow!("variable map lock poisoned"))?;
    Ok(data
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
        .collect())
}

fn onnx_metadata(manifest: &Manifest) -> anyhow::Result<Vec<(String, String)>> {
    Ok(vec![
        ("ecgnas.task".into(), manifest.task.clone()),
        (
            "ecgnas.labels".into(),
            serde_json::to_string(&manifest.labels)?,
        ),
        ("ecgnas.profile".into(), manifest.profile.clone()),
        (
            "ecgnas.candidate".into(),
            serde_json::to_string(&manifest.candidate)?,
        ),
        (
            "ecgnas.input".into(),
            serde_json::to_string(&manifest.input)?,
        ),
    ])
}

/// Writes the model folder `dir` and returns its manifest.
pub fn export(dir: &Path, input: &ExportInput<'_>) -> anyhow::Result<Manifest> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let shape = input
        .candidate
        .preprocessing
        .pipeline_shape(input.fs_hz)
        .context("the candidate's preprocessing")?;
    let plan = LeadPlan::new(&input.candidate.preprocessing, &shape);
    let graph = Graph::lower(input.network, input.leads, plan.output_len())?;
    let int8 = quantize::quantize(&graph, input.calibration).context("int8 quantisation")?;
    let mut manifest = Manifest {
        format: files::FORMAT.into(),
        format_version: files::FORMAT_VERSION,
        input: files::InputSpec {
            fs: input.fs_hz,
            samples: shape.window_samples,
            leads: input.leads,
            units: "mV".into(),
            side_inputs: shape.side_inputs,
        },
        labels: input.labels.clone(),
        task: input.task.name().into(),
        output: if input.task.multi_label() {
            "sigmoid"
        } else {
            "softmax"
        }
        .into(),
        thresholds: input.thresholds.clone(),
        trained_on: input.trained_on.clone(),
        profile: input.profile.clone(),
        candidate: input.candidate.clone(),
        network_samples: plan.output_len(),
        files: files::Files {
            weights: files::WEIGHTS.into(),
            onnx: files::ONNX.into(),
            int8_onnx: files::INT8_ONNX.into(),
            int8_weights: files::INT8_WEIGHTS.into(),
        },
        sha256: BTreeMap::new(),
        ecgnas_version: env!("CARGO_PKG_VERSION").into(),
    };
    let mut meta = HashMap::new();
    for (k, v) in onnx_metadata(&manifest)? {
        meta.insert(k, v);
    }
    meta.insert(
        "ecgnas.thresholds".into(),
        serde_json::to_string(&manifest.thresholds)?,
    );
    meta.insert("ecgnas.version".into(), manifest.ecgnas_version.clone());
    meta.insert(
        "ecgnas.bn_folded".into(),
        "no batch normalisation layers".into(),
    );
    files::write_weights(&dir.join(files::WEIGHTS), &input.weights, meta)?;
    let spec = onnx::OnnxSpec {
        graph: &graph,
        plan: &plan,
        leads: input.leads,
        multi_label: input.task.multi_label(),
        metadata: onnx_metadata(&manifest)?,
    };
    for (file, int8_model) in [(files::ONNX, None), (files::INT8_ONNX, Some(&int8))] {
        let bytes = onnx::build(&spec, int8_model)?;
        std::fs::write(dir.join(file), bytes)
            .with_context(|| format!("cannot write {}", dir.join(file).display()))?;
    }
    files::write_int8(&dir.join(files::INT8_WEIGHTS), &int8, &plan.taps)?;
    for file in [
        files::WEIGHTS,
        files::ONNX,
        files::INT8_ONNX,
        files::INT8_WEIGHTS,
    ] {
        manifest
            .sha256
            .insert(file.into(), files::sha256_file(&dir.join(file))?);
    }
    std::fs::write(
        dir.join(files::MANIFEST),
        serde_json::to_string_pretty(&manifest)? + "\n",
    )?;
    Ok(manifest)
}

/// A model folder read back: the three forms of one model.
pub struct LoadedModel {
    /// The manifest.
    pub manifest: Manifest,
    /// The f32 candle network.
    pub network: Network,
    /// Its lowered graph.
    pub graph: Graph,
    /// The preprocessing.
    pub plan: LeadPlan,
    /// The int8 model.
    pub int8: Int8Model,
}

/// Reads the model folder `dir`, checking each file against the manifest and the others.
pub fn load(dir: &Path) -> anyhow::Result<LoadedModel> {
    let manifest = read_manifest(dir)?;
    let shape = manifest
        .candidate
        .preprocessing
        .pipeline_shape(manifest.input.fs)
        .with_context(|| format!("{}: the candidate's preprocessing", dir.display()))?;
    if shape.window_samples != manifest.input.samples
        || shape.side_inputs != manifest.input.side_inputs
        || shape.network_samples != manifest.network_samples
    {
        bail!(
            "{}: the input ({} samples, {} side inputs) disagrees with the candidate's preprocessing ({} samples, {} side inputs)",
            dir.join(files::MANIFEST).display(),
            manifest.input.samples,
            manifest.input.side_inputs,
            shape.window_samples,
            shape.side_inputs
        );
    }
    let plan = LeadPlan::new(&manifest.candidate.preprocessing, &shape);
    let network = files::read_network(&dir.join(&manifest.files.weights), &manifest)?;
    let graph = Graph::lower(&network, manifest.input.leads, plan.output_len())?;
    let int8_path = dir.join(&manifest.files.int8_weights);
    let (int8, taps) = files::read_int8(&int8_path)?;
    if int8.leads != manifest.input.leads
        || int8.samples != plan.output_len()
        || int8.side_input.len != manifest.input.side_inputs
        || taps != plan.taps
        || int8.logits_tensor != graph.output
    {
        bail!(
            "{}: the int8 model does not match the manifest's candidate",
            int8_path.display()
        );
    }
    let classes = graph.tensors[graph.output].channels;
    if classes != manifest.labels.len() {
        bail!(
            "{}: {} labels, the network has {} outputs",
            dir.join(files::MANIFEST).display(),
            manifest.labels.len(),
            classes
        );
    }
    Ok(LoadedModel {
        manifest,
        network,
        graph,
        plan,
        int8,
    })
}

/// Probabilities from logits.
pub fn probabilities(logits: &[f32], multi_label: bool) -> Vec<f32> {
    if multi_label {
        logits.iter().map(|&x| 1.0 / (1.0 + (-x).exp())).collect()
    } else {
        let max = logits.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let exps: Vec<f32> = logits.iter().map(|&v| (v - max).exp()).collect();
        let sum: f32 = exps.iter().sum();
        exps.iter().map(|e| e / sum).collect()
    }
}

impl LoadedModel {
    /// One window (`leads x samples`, raw mV) through the preprocessing.
    pub fn preprocess(&self, window: &[f32]) -> anyhow::Result<Vec<f32>> {
        let per_lead = self.manifest.input.samples;
        if window.len() != per_lead * self.manifest.input.leads {
            bail!(
                "a window of {} values, the model takes {} leads x {} samples",
                window.len(),
                self.manifest.input.leads,
                per_lead
            );
        }
        let mut out = Vec::with_capacity(self.manifest.input.leads * self.plan.output_len());
        for lead in window.chunks(per_lead) {
            out.extend(self.plan.run(lead).map_err(|e| anyhow::anyhow!("{e}"))?);
        }
        Ok(out)
    }

    /// f32 probabilities of raw windows (each `leads x samples`), with their side inputs.
    pub fn predict_f32(
        &self,
        windows: &[&[f32]],
        sides: &[&[f32]],
    ) -> anyhow::Result<Vec<Vec<f32>>> {
        let device = Device::Cpu;
        let mut out = Vec::with_capacity(windows.len());
        let leads = self.manifest.input.leads;
        let len = self.plan.output_len();
        let side_width = self.manifest.input.side_inputs;
        for (chunk, side_chunk) in windows.chunks(256).zip(sides.chunks(256)) {
            let mut x = Vec::with_capacity(chunk.len() * leads * len);
            for w in chunk {
                x.extend(self.preprocess(w)?);
            }
            let x = Tensor::from_vec(x, (chunk.len(), leads, len), &device)?;
            let side = if side_width > 0 {
                let s: Vec<f32> = side_chunk.iter().flat_map(|s| s.iter().copied()).collect();
                Some(Tensor::from_vec(s, (chunk.len(), side_width), &device)?)
            } else {
                None
            };
            let logits = self.network.forward(&x, side.as_ref())?.to_vec2::<f32>()?;
            out.extend(
                logits
                    .iter()
                    .map(|l| probabilities(l, self.manifest.multi_label())),
            );
        }
        Ok(out)
    }

    /// The int8 logits of one raw window (the host int8 reference: the firmware's code).
    pub fn logits_int8(&self, window: &[f32], side: &[f32]) -> anyhow::Result<Vec<i8>> {
        let x = self.preprocess(window)?;
        self.int8.run(&x, side)
    }

    /// int8 probabilities of one raw window.
    pub fn predict_int8(&self, window: &[f32], side: &[f32]) -> anyhow::Result<Vec<f32>> {
        let logits = self.logits_int8(window, side)?;
        Ok(probabilities(
            &self.int8.dequantize_logits(&logits),
            self.manifest.multi_label(),
        ))
    }

    /// The labels a row of probabilities decides: the most probable class (softmax), or every
    /// class at or above its threshold (sigmoid; 0.5 where the manifest has none).
    pub fn decide(&self, probabilities: &[f32]) -> Vec<String> {
        let labels = &self.manifest.labels;
        if self.manifest.multi_label() {
            probabilities
                .iter()
                .enumerate()
                .filter(|(i, &p)| p >= self.manifest.thresholds.get(*i).copied().unwrap_or(0.5))
                .map(|(i, _)| labels[i].clone())
                .collect()
        } else {
            vec![labels[crate::metrics::argmax(probabilities)].clone()]
        }
    }
}
