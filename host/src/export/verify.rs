//! Proof that every form of an exported model computes the same thing: the ONNX files run in
//! tract against candle (f32) and against the firmware's int8 code (int8), and the quality the
//! int8 model loses on validation data.

use std::path::Path;

use anyhow::Context;
use serde::Serialize;
use tract_onnx::prelude::*;

use super::LoadedModel;

/// The largest f32 probability difference allowed between tract and candle.
pub const F32_TOLERANCE: f64 = 1e-4;
/// The fewest windows whose int8 decisions must agree between tract and the int8 reference:
/// ONNX runtimes round with float scales and half-to-even, the TFLM pipeline in fixed point,
/// so single tensors may differ by a step, and the steps compound over the layers.
pub const INT8_MIN_AGREEMENT: f64 = 0.95;
/// The most task-metric quality the int8 model may lose against f32.
pub const MAX_QUALITY_LOSS: f64 = 0.01;

/// A model run by tract with a fixed batch.
pub struct TractRunner {
    model: std::sync::Arc<TypedRunnableModel>,
    batch: usize,
    leads: usize,
    samples: usize,
    side: usize,
}

/// One batch's outputs from tract.
pub struct TractOutputs {
    /// Probabilities, `batch x classes`.
    pub probabilities: Vec<Vec<f32>>,
    /// Quantised logits (int8 files only).
    pub logits_int8: Option<Vec<Vec<i8>>>,
}

impl TractRunner {
    /// Loads `path` for batches of `batch` windows of `leads x samples` (and `side` RR inputs).
    pub fn load(
        path: &Path,
        batch: usize,
        leads: usize,
        samples: usize,
        side: usize,
    ) -> anyhow::Result<TractRunner> {
        let mut model = tract_onnx::onnx()
            .model_for_path(path)
            .map_err(|e| anyhow::anyhow!("{}: tract cannot read it: {e}", path.display()))?
            .with_input_fact(0, f32::fact([batch, leads, samples]).into())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if side > 0 {
            model = model
                .with_input_fact(1, f32::fact([batch, side]).into())
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        let model = model
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .map_err(|e| anyhow::anyhow!("{}: tract cannot run it: {e}", path.display()))?;
        Ok(TractRunner {
            model,
            batch,
            leads,
            samples,
            side,
        })
    }

    /// Runs one full batch: `windows` is `batch x leads x samples`, `side` `batch x side`.
    pub fn run(&self, windows: &[f32], side: &[f32]) -> anyhow::Result<TractOutputs> {
        let x = Tensor::from_shape(&[self.batch, self.leads, self.samples], windows)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut inputs: TVec<TValue> = tvec!(x.into());
        if self.side > 0 {
            let s = Tensor::from_shape(&[self.batch, self.side], side)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            inputs.push(s.into());
        }
        let outputs = self
            .model
            .run(inputs)
            .map_err(|e| anyhow::anyhow!("tract: {e}"))?;
        let rows = |values: Vec<f32>| -> Vec<Vec<f32>> {
            let width = values.len() / self.batch.max(1);
            values.chunks(width.max(1)).map(<[f32]>::to_vec).collect()
        };
        let probabilities = rows(
            outputs[0]
                .to_plain_array_view::<f32>()
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .iter()
                .copied()
                .collect(),
        );
        let logits_int8 = match outputs.get(1) {
            Some(t) => {
                let v: Vec<i8> = t
                    .to_plain_array_view::<i8>()
                    .map_err(|e| anyhow::anyhow!("{e}"))?
                    .iter()
                    .copied()
                    .collect();
                let width = v.len() / self.batch.max(1);
                Some(v.chunks(width.max(1)).map(<[i8]>::to_vec).collect())
            }
            None => None,
        };
        Ok(TractOutputs {
            probabilities,
            logits_int8,
        })
    }
}

/// Windows to check: raw `leads x samples` windows and their side inputs.
pub struct Windows<'a> {
    /// Raw windows.
    pub windows: Vec<&'a [f32]>,
    /// Side inputs per window (empty slices without RR inputs).
    pub sides: Vec<&'a [f32]>,
}

/// The checks of `ecgnas verify`.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// Windows run.
    pub windows: usize,
    /// Largest |tract - candle| over every probability.
    pub f32_max_abs_diff: f64,
    /// Whether it is within [`F32_TOLERANCE`].
    pub f32_ok: bool,
    /// Largest |tract - int8 reference| over every logit, in quantisation steps.
    pub int8_max_step_diff: i32,
    /// Logits that differ at all.
    pub int8_logits_differing: usize,
    /// Logits compared.
    pub int8_logits: usize,
    /// Share of windows whose decided labels agree (tract int8 vs the int8 reference).
    pub int8_label_agreement: f64,
    /// Whether the agreement reaches [`INT8_MIN_AGREEMENT`].
    pub int8_ok: bool,
    /// Share of windows whose labels agree between f32 (candle) and the int8 reference.
    pub f32_int8_label_agreement: f64,
}

/// Runs the windows through tract (both files), candle and the int8 reference.
pub fn check_equivalence(
    dir: &Path,
    model: &LoadedModel,
    windows: &Windows<'_>,
) -> anyhow::Result<VerifyReport> {
    let n = windows.windows.len();
    anyhow::ensure!(n > 0, "no windows to verify with");
    let m = &model.manifest;
    let (leads, samples, side) = (m.input.leads, m.input.samples, m.input.side_inputs);
    let flat: Vec<f32> = windows
        .windows
        .iter()
        .flat_map(|w| w.iter().copied())
        .collect();
    let flat_side: Vec<f32> = windows
        .sides
        .iter()
        .flat_map(|s| s.iter().copied())
        .collect();
    let f32_runner = TractRunner::load(&dir.join(&m.files.onnx), n, leads, samples, side)?;
    let tract_f32 = f32_runner.run(&flat, &flat_side)?;
    let candle = model.predict_f32(&windows.windows, &windows.sides)?;
    let mut f32_max_abs_diff = 0f64;
    for (a, b) in tract_f32.probabilities.iter().zip(&candle) {
        for (x, y) in a.iter().zip(b) {
            let d = f64::from((x - y).abs());
            // NaN anywhere fails the check.
            f32_max_abs_diff = if d.is_nan() {
                f64::INFINITY
            } else {
                f32_max_abs_diff.max(d)
            };
        }
    }
    let int8_runner = TractRunner::load(&dir.join(&m.files.int8_onnx), n, leads, samples, side)?;
    let tract_int8 = int8_runner.run(&flat, &flat_side)?;
    let tract_logits = tract_int8
        .logits_int8
        .context("the int8 ONNX file has no logits_int8 output")?;
    let mut max_step = 0i32;
    let mut differing = 0usize;
    let mut compared = 0usize;
    let mut agree = 0usize;
    let mut agree_f32 = 0usize;
    for i in 0..n {
        let reference = model.logits_int8(windows.windows[i], windows.sides[i])?;
        for (a, b) in reference.iter().zip(&tract_logits[i]) {
            let d = (i32::from(*a) - i32::from(*b)).abs();
            max_step = max_step.max(d);
            differing += usize::from(d != 0);
            compared += 1;
        }
        let decide = |logits: &[i8]| {
            model.decide(&super::probabilities(
                &model.int8.dequantize_logits(logits),
                m.multi_label(),
            ))
        };
        let reference_labels = decide(&reference);
        agree += usize::from(reference_labels == decide(&tract_logits[i]));
        agree_f32 += usize::from(reference_labels == model.decide(&candle[i]));
    }
    let int8_label_agreement = agree as f64 / n as f64;
    Ok(VerifyReport {
        windows: n,
        f32_max_abs_diff,
        f32_ok: f32_max_abs_diff <= F32_TOLERANCE,
        int8_max_step_diff: max_step,
        int8_logits_differing: differing,
        int8_logits: compared,
        int8_label_agreement,
        int8_ok: int8_label_agreement >= INT8_MIN_AGREEMENT,
        f32_int8_label_agreement: agree_f32 as f64 / n as f64,
    })
}
