//! The search's evaluator: cut a candidate's examples, train it, score it on validation.

use candle_core::Device;

use super::{fit, Fitted, Targets, TrainConfig};
use crate::data::tasks::{Split, TaskKind};
use crate::metrics::{task_metrics, TaskMetrics, Truth};
use crate::pipeline::{AdcDataset, Prepared};
use crate::search::{Evaluation, Evaluator};
use crate::space::Candidate;

/// Trains children on a task's dataset at the device's ADC rate.
pub struct ChildEvaluator<'a> {
    /// The dataset at the ADC rate.
    pub data: &'a AdcDataset,
    /// Loss weights (from the training split).
    pub class_weights: Vec<f32>,
    /// Training settings (the seed is replaced per trial).
    pub train: TrainConfig,
    /// Where to train.
    pub device: Device,
}

/// A trained and scored child.
pub struct TrainedChild {
    /// The network and its weights.
    pub fitted: Fitted,
    /// Validation metrics of the kept epoch.
    pub metrics: TaskMetrics,
    /// The validation examples.
    pub val: Prepared,
}

/// The metrics' view of a set's labels.
pub(crate) fn truth(targets: &Targets) -> Truth<'_> {
    match targets {
        Targets::Classes(c) => Truth::Classes(c),
        Targets::Labels(l) => Truth::Labels(l),
    }
}

impl ChildEvaluator<'_> {
    /// Trains `candidate` with `seed` and scores it on the validation split.
    pub fn train(&self, candidate: &Candidate, seed: u64) -> Result<TrainedChild, String> {
        let task: TaskKind = self.data.task;
        let train = self
            .data
            .prepare(Split::Train, &candidate.preprocessing)
            .map_err(|e| e.to_string())?;
        let val = self
            .data
            .prepare(Split::Validation, &candidate.preprocessing)
            .map_err(|e| e.to_string())?;
        let quality = |probs: &[Vec<f32>]| {
            let grouped = val.group_probabilities(probs);
            task_metrics(task, &grouped, truth(&val.group_targets), None).primary
        };
        let config = TrainConfig {
            seed,
            ..self.train.clone()
        };
        let fitted = fit(
            &candidate.architecture,
            &train.set,
            &val.set,
            &self.class_weights,
            &quality,
            &config,
            &self.device,
        )
        .map_err(|e| e.to_string())?;
        let probs = super::predict(&fitted.network, &val.set, 256, &self.device)
            .map_err(|e| e.to_string())?;
        let metrics = task_metrics(
            task,
            &val.group_probabilities(&probs),
            truth(&val.group_targets),
            None,
        );
        Ok(TrainedChild {
            fitted,
            metrics,
            val,
        })
    }
}

impl Evaluator for ChildEvaluator<'_> {
    fn evaluate(&mut self, candidate: &Candidate, seed: u64) -> Result<Evaluation, String> {
        let child = self.train(candidate, seed)?;
        Ok(Evaluation {
            quality: child.metrics.primary,
            metrics: serde_json::json!({
                "validation": child.metrics,
                "best_epoch": child.fitted.best_epoch,
                "history": child.fitted.history,
            }),
        })
    }
}
