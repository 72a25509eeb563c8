//! Training one child: AdamW, a cosine learning-rate schedule, class-weighted loss, and early
//! stopping on the validation quality (the best epoch's weights are kept).

use candle_core::{DType, Device, Result, Tensor, D};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarMap};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::network::{build, Network};
use super::ops;
use crate::space::Architecture;

/// Labels of a set of examples.
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// One class per example (softmax outputs).
    Classes(Vec<u32>),
    /// One flag per class per example (sigmoid outputs).
    Labels(Vec<Vec<bool>>),
}

impl Targets {
    /// Number of examples.
    pub fn len(&self) -> usize {
        match self {
            Targets::Classes(c) => c.len(),
            Targets::Labels(l) => l.len(),
        }
    }

    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Preprocessed examples, ready for the network: `n` inputs of `channels x len` samples.
#[derive(Debug, Clone)]
pub struct ExampleSet {
    /// Inputs, example-major, then channel, then time.
    pub inputs: Vec<f32>,
    /// Number of examples.
    pub n: usize,
    /// Input channels (leads).
    pub channels: usize,
    /// Samples per channel.
    pub len: usize,
    /// Side inputs per example (RR features), `n * side_width` values.
    pub side: Vec<f32>,
    /// Side inputs per example (0 or 3).
    pub side_width: usize,
    /// The examples' labels.
    pub targets: Targets,
}

impl ExampleSet {
    /// The inputs `(B, C, L)` and side inputs `(B, side_width)` of the examples `indices`.
    pub(crate) fn batch(
        &self,
        indices: &[usize],
        device: &Device,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let width = self.channels * self.len;
        let mut x = Vec::with_capacity(indices.len() * width);
        let mut side = Vec::with_capacity(indices.len() * self.side_width);
        for &i in indices {
            x.extend_from_slice(&self.inputs[i * width..(i + 1) * width]);
            side.extend_from_slice(&self.side[i * self.side_width..(i + 1) * self.side_width]);
        }
        let x = Tensor::from_vec(x, (indices.len(), self.channels, self.len), device)?;
        let side = if self.side_width > 0 {
            Some(Tensor::from_vec(
                side,
                (indices.len(), self.side_width),
                device,
            )?)
        } else {
            None
        };
        Ok((x, side))
    }
}

/// Settings of child training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Maximum epochs.
    pub epochs: usize,
    /// Examples per step.
    pub batch_size: usize,
    /// Peak learning rate of the cosine schedule.
    pub learning_rate: f64,
    /// AdamW's decoupled weight decay.
    pub weight_decay: f64,
    /// Stop after this many epochs without a better validation quality.
    pub patience: usize,
    /// Seed of the initial weights and of the batch order.
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 10,
            batch_size: 64,
            learning_rate: 3e-3,
            weight_decay: 1e-4,
            patience: 3,
            seed: 0,
        }
    }
}

/// One epoch's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochLog {
    /// Epoch, from 0.
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// Validation quality after the epoch.
    pub val_quality: f64,
}

/// A trained child.
pub struct Fitted {
    /// The variables, holding the best epoch's values.
    pub varmap: VarMap,
    /// The network over those variables.
    pub network: Network,
    /// The epoch whose weights were kept.
    pub best_epoch: usize,
    /// Best validation quality.
    pub best_quality: f64,
    /// Every epoch.
    pub history: Vec<EpochLog>,
}

/// The class-weighted loss of `logits` for the examples `indices` of `targets`: weights per
/// class (single-label) or positive weights per label (multi-label).
pub(crate) fn loss(
    logits: &Tensor,
    targets: &Targets,
    indices: &[usize],
    weights: &Tensor,
    device: &Device,
) -> Result<Tensor> {
    match targets {
        Targets::Classes(classes) => {
            let labels: Vec<u32> = indices.iter().map(|&i| classes[i]).collect();
            let labels = ops::labels_tensor(&labels, device)?;
            ops::weighted_cross_entropy(logits, &labels, Some(weights))
        }
        Targets::Labels(flags) => {
            let k = logits.dim(1)?;
            let t: Vec<f32> = indices
                .iter()
                .flat_map(|&i| flags[i].iter().map(|&f| if f { 1.0 } else { 0.0 }))
                .collect();
            let t = Tensor::from_vec(t, (indices.len(), k), device)?;
            ops::bce_with_logits(logits, &t, Some(weights))
        }
    }
}

/// Output probabilities for every example of a set: softmax for single-label targets,
/// sigmoids for multi-label ones.
pub fn predict(
    network: &Network,
    set: &ExampleSet,
    batch_size: usize,
    device: &Device,
) -> Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(set.n);
    let order: Vec<usize> = (0..set.n).collect();
    for chunk in order.chunks(batch_size.max(1)) {
        let (x, side) = set.batch(chunk, device)?;
        let logits = network.forward(&x, side.as_ref())?;
        let probs = match set.targets {
            Targets::Classes(_) => candle_nn::ops::softmax(&logits, D::Minus1)?,
            Targets::Labels(_) => candle_nn::ops::sigmoid(&logits)?,
        };
        out.extend(probs.to_dtype(DType::F32)?.to_vec2::<f32>()?);
    }
    Ok(out)
}

/// Trains a child on `train`, choosing the epoch by `quality` on `val` (higher is better).
///
/// `class_weights`: per-class loss weights (single-label) or positive weights (multi-label).
pub fn fit(
    architecture: &Architecture,
    train: &ExampleSet,
    val: &ExampleSet,
    class_weights: &[f32],
    quality: &dyn Fn(&[Vec<f32>]) -> f64,
    config: &TrainConfig,
    device: &Device,
) -> Result<Fitted> {
    if train.n == 0 || val.n == 0 {
        candle_core::bail!("training needs examples in both the training and the validation split")
    }
    let (varmap, network) = build(
        architecture,
        train.channels,
        train.len,
        train.side_width,
        config.seed,
        device,
    )?;
    let vars = varmap.all_vars();
    let mut optimizer = AdamW::new(
        vars.clone(),
        ParamsAdamW {
            lr: config.learning_rate,
            weight_decay: config.weight_decay,
            ..ParamsAdamW::default()
        },
    )?;
    let weights = Tensor::from_vec(class_weights.to_vec(), class_weights.len(), device)?;
    let steps_per_epoch = train.n.div_ceil(config.batch_size.max(1));
    let total_steps = (steps_per_epoch * config.epochs).max(1);
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed.wrapping_add(0x5eed));
    let mut order: Vec<usize> = (0..train.n).collect();
    let mut history = Vec::new();
    let mut best: Option<(f64, usize, Vec<Tensor>)> = None;
    let mut step = 0usize;
    for epoch in 0..config.epochs {
        order.shuffle(&mut rng);
        let mut loss_sum = 0.0;
        for chunk in order.chunks(config.batch_size.max(1)) {
            let lr = config.learning_rate
                * 0.5
                * (1.0 + (std::f64::consts::PI * step as f64 / total_steps as f64).cos());
            optimizer.set_learning_rate(lr);
            let (x, side) = train.batch(chunk, device)?;
            let logits = network.forward(&x, side.as_ref())?;
            let l = loss(&logits, &train.targets, chunk, &weights, device)?;
            optimizer.backward_step(&l)?;
            loss_sum += l.to_dtype(DType::F64)?.to_scalar::<f64>()? * chunk.len() as f64;
            step += 1;
        }
        let probs = predict(&network, val, 256, device)?;
        let q = quality(&probs);
        let q = if q.is_finite() { q } else { f64::NEG_INFINITY };
        history.push(EpochLog {
            epoch,
            train_loss: loss_sum / train.n as f64,
            val_quality: q,
        });
        if best.as_ref().is_none_or(|(b, _, _)| q > *b) {
            let snapshot = vars
                .iter()
                .map(|v| v.as_tensor().copy())
                .collect::<Result<Vec<_>>>()?;
            best = Some((q, epoch, snapshot));
        } else if best
            .as_ref()
            .is_some_and(|(_, e, _)| epoch - e >= config.patience)
        {
            break;
        }
    }
    let Some((best_quality, best_epoch, snapshot)) = best else {
        candle_core::bail!("no epoch was trained")
    };
    for (var, value) in vars.iter().zip(&snapshot) {
        var.set(value)?;
    }
    Ok(Fitted {
        varmap,
        network,
        best_epoch,
        best_quality,
        history,
    })
}
