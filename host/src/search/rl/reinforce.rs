//! REINFORCE (Williams 1992) with a moving-average baseline, as Zoph & Le and ENAS train their
//! controllers, and the Adam optimiser it steps.
//!
//! Each observation becomes an [`Episode`] whose advantage is its reward minus the baseline
//! *before* that reward is folded in (so the advantage does not depend on its own reward); the
//! baseline then moves to `decay * baseline + (1 - decay) * reward`. The first reward sets the
//! baseline (its advantage is 0). Once `batch` episodes are collected, one Adam step descends
//! [`Controller::loss`] and the batch is emptied.

use candle_core::{Tensor, Var};
use serde::{Deserialize, Serialize};

use super::controller::{Controller, Episode, SavedTensor};

/// Adam's first-moment decay.
pub const BETA1: f64 = 0.9;
/// Adam's second-moment decay.
pub const BETA2: f64 = 0.999;
/// Adam's denominator epsilon.
pub const EPSILON: f64 = 1e-8;

/// Adam (Kingma & Ba 2015) without weight decay, with its moments kept so that a checkpoint
/// resumes bit for bit (`candle_nn::AdamW` does not expose them).
#[derive(Debug)]
pub struct Adam {
    lr: f64,
    step: u64,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
}

/// Adam's saved state: the step count and both moments per parameter, in [`Controller::vars`]
/// order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedAdam {
    /// Steps taken.
    pub step: u64,
    /// First moments.
    pub m: Vec<SavedTensor>,
    /// Second moments.
    pub v: Vec<SavedTensor>,
}

impl Adam {
    /// Zero moments for these parameters.
    pub fn new<'a>(lr: f64, vars: impl Iterator<Item = &'a Var>) -> candle_core::Result<Adam> {
        let m = vars
            .map(|v| v.as_tensor().zeros_like())
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Adam {
            lr,
            step: 0,
            v: m.clone(),
            m,
        })
    }

    /// Steps taken.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// One step on `vars` (the same ones, in the same order, as at [`Self::new`]) along
    /// `loss`'s gradient. A parameter without a gradient is left as it is.
    pub fn step<'a>(
        &mut self,
        vars: impl Iterator<Item = &'a Var>,
        loss: &Tensor,
    ) -> candle_core::Result<()> {
        let grads = loss.backward()?;
        self.step += 1;
        let t = self.step as i32;
        let (bc1, bc2) = (1.0 - BETA1.powi(t), 1.0 - BETA2.powi(t));
        for ((var, m), v) in vars.zip(&mut self.m).zip(&mut self.v) {
            let Some(g) = grads.get(var.as_tensor()) else {
                continue;
            };
            *m = m.affine(BETA1, 0.0)?.add(&g.affine(1.0 - BETA1, 0.0)?)?;
            *v = v
                .affine(BETA2, 0.0)?
                .add(&g.sqr()?.affine(1.0 - BETA2, 0.0)?)?;
            let update = m
                .affine(1.0 / bc1, 0.0)?
                .div(&v.affine(1.0 / bc2, 0.0)?.sqrt()?.affine(1.0, EPSILON)?)?;
            var.set(
                &var.as_tensor()
                    .detach()
                    .sub(&update.affine(self.lr, 0.0)?)?,
            )?;
        }
        Ok(())
    }

    /// The state to checkpoint.
    pub fn save(&self) -> candle_core::Result<SavedAdam> {
        let all = |ts: &[Tensor]| {
            ts.iter()
                .map(SavedTensor::of)
                .collect::<candle_core::Result<Vec<_>>>()
        };
        Ok(SavedAdam {
            step: self.step,
            m: all(&self.m)?,
            v: all(&self.v)?,
        })
    }

    /// Restores [`Self::save`]'s form; the shapes must be those of the current moments.
    pub fn restore(&mut self, saved: &SavedAdam) -> candle_core::Result<()> {
        let load = |current: &[Tensor], saved: &[SavedTensor]| {
            if current.len() != saved.len() {
                candle_core::bail!(
                    "{} Adam moments saved, {} expected",
                    saved.len(),
                    current.len()
                );
            }
            current
                .iter()
                .zip(saved)
                .map(|(c, s)| {
                    if s.shape != c.dims() {
                        candle_core::bail!(
                            "Adam moment of shape {:?}, expected {:?}",
                            s.shape,
                            c.dims()
                        );
                    }
                    s.to_tensor(c.dtype())
                })
                .collect::<candle_core::Result<Vec<_>>>()
        };
        let m = load(&self.m, &saved.m)?;
        let v = load(&self.v, &saved.v)?;
        (self.step, self.m, self.v) = (saved.step, m, v);
        Ok(())
    }
}

/// The learner's state apart from Adam: baseline and the batch being collected.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReinforceState {
    /// The moving average of rewards (`None` before the first).
    pub baseline: Option<f64>,
    /// Episodes observed since the last update.
    pub batch: Vec<Episode>,
    /// Updates made.
    pub updates: u64,
}

/// REINFORCE with a moving-average baseline; see the module docs.
#[derive(Debug)]
pub struct Reinforce {
    /// Baseline, pending batch, update count.
    pub state: ReinforceState,
    /// The optimiser.
    pub adam: Adam,
    decay: f64,
    entropy_weight: f64,
    batch: usize,
}

impl Reinforce {
    /// A learner for `controller`'s parameters.
    pub fn new(
        controller: &Controller,
        lr: f64,
        decay: f64,
        entropy_weight: f64,
        batch: usize,
    ) -> candle_core::Result<Reinforce> {
        Ok(Reinforce {
            state: ReinforceState::default(),
            adam: Adam::new(lr, controller.vars().map(|(_, v)| v))?,
            decay,
            entropy_weight,
            batch: batch.max(1),
        })
    }

    /// Records one reward for a sampled sequence, and updates `controller` when the batch is
    /// full. Returns whether it updated.
    pub fn observe(
        &mut self,
        controller: &Controller,
        choices: Vec<usize>,
        active: Vec<bool>,
        reward: f64,
    ) -> candle_core::Result<bool> {
        let baseline = self.state.baseline.unwrap_or(reward);
        self.state.baseline = Some(self.decay * baseline + (1.0 - self.decay) * reward);
        self.state.batch.push(Episode {
            choices,
            active,
            advantage: reward - baseline,
        });
        if self.state.batch.len() < self.batch {
            return Ok(false);
        }
        let loss = controller.loss(&self.state.batch, self.entropy_weight)?;
        self.adam.step(controller.vars().map(|(_, v)| v), &loss)?;
        self.state.batch.clear();
        self.state.updates += 1;
        Ok(true)
    }
}
