//! ENAS weight sharing: one supernet whose variables hold every candidate of a space.
//!
//! Each block position has, per kernel size, one standard and one depthwise weight tensor of
//! the space's widest shape, and one pointwise and one projection tensor; the head has one
//! hidden layer per width and the output layers. A child is the ordinary [`Network`] built
//! from slices of those tensors (its first `c_out` filters over its first `c_in` channels), so
//! it trains and predicts with the same code as a child trained alone, and its gradients flow
//! into the shared variables (Pham et al. 2018; slicing for widths as in Once-for-All).

use std::collections::HashMap;

use candle_core::{DType, Device, Result, Shape, Tensor, Var};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::fit::{loss, predict};
use super::{ExampleSet, Network};
use crate::data::tasks::Split;
use crate::metrics::task_metrics;
use crate::pipeline::{AdcDataset, Prepared};
use crate::search::enas::SharedEvaluator;
use crate::space::{Architecture, ArchitectureSpace, Candidate};

/// The shared variables, by name, at their widest shapes.
struct SharedVars {
    vars: HashMap<String, Var>,
    /// Widest block output.
    max_channels: usize,
    /// RR side inputs of the head.
    side_inputs: usize,
}

impl SharedVars {
    fn var(&self, key: &str) -> Result<&Var> {
        self.vars
            .get(key)
            .ok_or_else(|| candle_core::Error::Msg(format!("the supernet has no variable {key}")))
    }
}

/// One child's view of the shared variables: which slice each of its variables is.
struct ChildView<'a> {
    shared: &'a SharedVars,
    /// The child's hidden head width: it decides which output layer the head uses.
    hidden: Option<usize>,
    /// The child's RR side inputs (0, or all the supernet holds).
    side: usize,
}

impl ChildView<'_> {
    /// The first `rows` rows and, of the columns, the first `features - side` then the `side`
    /// ones stored after the widest block: a head layer over GAP features and RR inputs.
    fn head_columns(&self, full: &Tensor, rows: usize, features: usize) -> Result<Tensor> {
        let side = self.side;
        let channels = features.saturating_sub(side);
        let w = full.narrow(0, 0, rows)?;
        if side == 0 {
            return w.narrow(1, 0, channels)?.contiguous();
        }
        Tensor::cat(
            &[
                &w.narrow(1, 0, channels)?,
                &w.narrow(1, self.shared.max_channels, side)?,
            ],
            1,
        )
    }
}

impl SimpleBackend for ChildView<'_> {
    fn get(
        &self,
        s: Shape,
        name: &str,
        _: candle_nn::Init,
        _: DType,
        _: &Device,
    ) -> Result<Tensor> {
        let dims = s.dims();
        let parts: Vec<&str> = name.split('.').collect();
        let slice = |key: &str, lens: &[usize]| -> Result<Tensor> {
            let mut t = self.shared.var(key)?.as_tensor().clone();
            for (axis, &len) in lens.iter().enumerate() {
                if len > t.dim(axis)? {
                    candle_core::bail!("{name}: {len} exceeds the supernet's {}", t.dim(axis)?)
                }
                t = t.narrow(axis, 0, len)?;
            }
            t.contiguous()
        };
        match (parts.as_slice(), dims) {
            ([block, role @ ("conv" | "dw"), "weight"], &[rows, cols, k]) => {
                slice(&format!("{block}.{role}.k{k}.weight"), &[rows, cols, k])
            }
            ([block, role @ ("conv" | "dw" | "pw" | "proj"), "bias"], &[rows]) => {
                slice(&format!("{block}.{role}.bias"), &[rows])
            }
            ([block, role @ ("pw" | "proj"), "weight"], &[rows, cols, 1]) => {
                slice(&format!("{block}.{role}.weight"), &[rows, cols, 1])
            }
            (["head", "hidden", "weight"], &[units, features]) => {
                let full = self.shared.var(&format!("head.hidden.u{units}.weight"))?;
                self.head_columns(full.as_tensor(), units, features)
            }
            (["head", "hidden", "bias"], &[units]) => {
                slice(&format!("head.hidden.u{units}.bias"), &[units])
            }
            (["head", "out", "weight"], &[outputs, features]) => match self.hidden {
                Some(units) => slice(&format!("head.out.h{units}.weight"), &[outputs, features]),
                None => {
                    let full = self.shared.var("head.out.weight")?;
                    self.head_columns(full.as_tensor(), outputs, features)
                }
            },
            (["head", "out", "bias"], &[outputs]) => match self.hidden {
                Some(units) => slice(&format!("head.out.h{units}.bias"), &[outputs]),
                None => slice("head.out.bias", &[outputs]),
            },
            _ => candle_core::bail!("the supernet has no variable {name} of shape {dims:?}"),
        }
    }

    fn get_unchecked(&self, name: &str, _: DType, _: &Device) -> Result<Tensor> {
        candle_core::bail!("the supernet needs a shape for {name}")
    }

    fn contains_tensor(&self, _: &str) -> bool {
        true
    }
}

/// The weight-shared supernet of a space, with its optimiser.
pub struct Supernet {
    shared: SharedVars,
    in_channels: usize,
    optimizer: AdamW,
    device: Device,
}

impl Supernet {
    /// Every shared variable for `space` on `in_channels` leads with `side_inputs` RR inputs
    /// and `outputs` classes, initialised as PyTorch initialises the widest layer, from `seed`.
    pub fn new(
        space: &ArchitectureSpace,
        in_channels: usize,
        side_inputs: usize,
        seed: u64,
        learning_rate: f64,
        device: &Device,
    ) -> Result<Supernet> {
        let max_channels = space.block.channels.iter().copied().max().unwrap_or(1);
        if in_channels == 0 {
            candle_core::bail!("a supernet needs at least one input lead")
        }
        let max_inputs = max_channels.max(in_channels);
        let max_blocks = space.n_blocks.iter().copied().max().unwrap_or(1);
        let outputs = space.head.outputs;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut vars = HashMap::new();
        let mut add = |name: String, shape: &[usize], fan_in: usize| -> Result<()> {
            let bound = 1.0 / (fan_in.max(1) as f32).sqrt();
            let n: usize = shape.iter().product();
            let values: Vec<f32> = (0..n).map(|_| rng.random_range(-bound..bound)).collect();
            vars.insert(name, Var::from_vec(values, shape, device)?);
            Ok(())
        };
        for b in 0..max_blocks {
            for &k in &space.block.kernel {
                add(
                    format!("block{b}.conv.k{k}.weight"),
                    &[max_channels, max_inputs, k],
                    max_inputs * k,
                )?;
                add(format!("block{b}.dw.k{k}.weight"), &[max_inputs, 1, k], k)?;
            }
            add(format!("block{b}.conv.bias"), &[max_channels], max_inputs)?;
            add(format!("block{b}.dw.bias"), &[max_inputs], 3)?;
            for role in ["pw", "proj"] {
                add(
                    format!("block{b}.{role}.weight"),
                    &[max_channels, max_inputs, 1],
                    max_inputs,
                )?;
                add(format!("block{b}.{role}.bias"), &[max_channels], max_inputs)?;
            }
        }
        let features = max_channels + side_inputs;
        for units in space.head.hidden.iter().flatten() {
            add(
                format!("head.hidden.u{units}.weight"),
                &[*units, features],
                features,
            )?;
            add(format!("head.hidden.u{units}.bias"), &[*units], features)?;
            add(
                format!("head.out.h{units}.weight"),
                &[outputs, *units],
                *units,
            )?;
            add(format!("head.out.h{units}.bias"), &[outputs], *units)?;
        }
        add("head.out.weight".into(), &[outputs, features], features)?;
        add("head.out.bias".into(), &[outputs], features)?;
        let mut names: Vec<&String> = vars.keys().collect();
        names.sort();
        let all: Vec<Var> = names.iter().map(|n| vars[*n].clone()).collect();
        let optimizer = AdamW::new(
            all,
            ParamsAdamW {
                lr: learning_rate,
                weight_decay: 1e-4,
                ..ParamsAdamW::default()
            },
        )?;
        Ok(Supernet {
            shared: SharedVars {
                vars,
                max_channels,
                side_inputs,
            },
            in_channels,
            optimizer,
            device: device.clone(),
        })
    }

    /// Scalar parameters held.
    pub fn n_params(&self) -> usize {
        self.shared.vars.values().map(|v| v.elem_count()).sum()
    }

    /// The child `architecture` on inputs of `input_len` samples with `side_inputs` RR inputs,
    /// over the shared variables.
    pub fn child(
        &self,
        architecture: &Architecture,
        input_len: usize,
        side_inputs: usize,
    ) -> Result<Network> {
        if side_inputs != 0 && side_inputs != self.shared.side_inputs {
            candle_core::bail!(
                "{side_inputs} side inputs; the supernet holds {}",
                self.shared.side_inputs
            )
        }
        let view = ChildView {
            shared: &self.shared,
            hidden: architecture.head.hidden,
            side: side_inputs,
        };
        let vb = VarBuilder::from_backend(Box::new(view), DType::F32, self.device.clone());
        Network::new(vb, architecture, self.in_channels, input_len, side_inputs)
    }

    /// One optimiser step of `architecture` on the examples `indices` of `set`; the loss.
    pub fn train_step(
        &mut self,
        architecture: &Architecture,
        set: &ExampleSet,
        indices: &[usize],
        class_weights: &Tensor,
    ) -> Result<f64> {
        let network = self.child(architecture, set.len, set.side_width)?;
        let (x, side) = set.batch(indices, &self.device)?;
        let logits = network.forward(&x, side.as_ref())?;
        let l = loss(&logits, &set.targets, indices, class_weights, &self.device)?;
        self.optimizer.backward_step(&l)?;
        l.to_dtype(DType::F64)?.to_scalar::<f64>()
    }

    /// Probabilities of every example of `set` under `architecture` with the shared weights.
    pub fn predict(&self, architecture: &Architecture, set: &ExampleSet) -> Result<Vec<Vec<f32>>> {
        let network = self.child(architecture, set.len, set.side_width)?;
        predict(&network, set, 256, &self.device)
    }
}

/// Prepared examples of both splits for a preprocessing.
struct PreparedPair {
    train: Prepared,
    validation: Prepared,
}

/// How many preprocessings' examples are kept at once (each is one split's windows).
const CACHED_PREPROCESSINGS: usize = 24;

/// Trains and scores children of a supernet on a task's dataset (the ENAS evaluator).
pub struct SupernetEvaluator<'a> {
    data: &'a AdcDataset,
    class_weights: Tensor,
    supernet: Supernet,
    batch_size: usize,
    /// Prepared examples by preprocessing (its JSON), most recently used last.
    cache: Vec<(String, PreparedPair)>,
}

impl<'a> SupernetEvaluator<'a> {
    /// A fresh supernet over `space` for `data`.
    pub fn new(
        data: &'a AdcDataset,
        class_weights: &[f32],
        space: &ArchitectureSpace,
        side_inputs: usize,
        seed: u64,
        batch_size: usize,
        device: &Device,
    ) -> Result<SupernetEvaluator<'a>> {
        let leads = data.records.first().map_or(1, |r| r.leads.len());
        Ok(SupernetEvaluator {
            data,
            class_weights: Tensor::from_vec(class_weights.to_vec(), class_weights.len(), device)?,
            supernet: Supernet::new(space, leads, side_inputs, seed, 3e-3, device)?,
            batch_size,
            cache: Vec::new(),
        })
    }

    /// The supernet's size.
    pub fn n_params(&self) -> usize {
        self.supernet.n_params()
    }

    fn prepared(&mut self, candidate: &Candidate) -> std::result::Result<usize, String> {
        let key = serde_json::to_string(&candidate.preprocessing).map_err(|e| e.to_string())?;
        if let Some(at) = self.cache.iter().position(|(k, _)| *k == key) {
            let entry = self.cache.remove(at);
            self.cache.push(entry);
        } else {
            let prepare = |split| {
                self.data
                    .prepare(split, &candidate.preprocessing)
                    .map_err(|e| e.to_string())
            };
            let pair = PreparedPair {
                train: prepare(Split::Train)?,
                validation: prepare(Split::Validation)?,
            };
            if pair.train.set.n == 0 || pair.validation.set.n == 0 {
                return Err("no training or validation example for this preprocessing".into());
            }
            if self.cache.len() >= CACHED_PREPROCESSINGS {
                self.cache.remove(0);
            }
            self.cache.push((key, pair));
        }
        Ok(self.cache.len() - 1)
    }
}

impl SharedEvaluator for SupernetEvaluator<'_> {
    fn train_step(
        &mut self,
        candidate: &Candidate,
        rng: &mut ChaCha8Rng,
    ) -> std::result::Result<f64, String> {
        let at = self.prepared(candidate)?;
        let set = &self.cache[at].1.train.set;
        let indices: Vec<usize> = (0..self.batch_size.min(set.n))
            .map(|_| rng.random_range(0..set.n))
            .collect();
        self.supernet
            .train_step(&candidate.architecture, set, &indices, &self.class_weights)
            .map_err(|e| e.to_string())
    }

    fn quality(&mut self, candidate: &Candidate) -> std::result::Result<f64, String> {
        let at = self.prepared(candidate)?;
        let validation = &self.cache[at].1.validation;
        let probs = self
            .supernet
            .predict(&candidate.architecture, &validation.set)
            .map_err(|e| e.to_string())?;
        let grouped = validation.group_probabilities(&probs);
        let truth = super::child::truth(&validation.group_targets);
        Ok(task_metrics(self.data.task, &grouped, truth, None).primary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::{SearchSpace, TaskShape, WindowKind};

    fn space() -> SearchSpace {
        SearchSpace::default_for(&TaskShape {
            window: WindowKind::Fixed {
                choices_s: vec![10.0],
            },
            multi_label: false,
            n_classes: 4,
            input_fs_hz: 250.0,
            leads: 1,
        })
    }

    #[test]
    fn children_share_slices_of_one_set_of_weights() {
        let space = space();
        let net = Supernet::new(&space.architecture, 1, 0, 3, 1e-3, &Device::Cpu).expect("net");
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let a = space.sample(&mut rng).expect("a").architecture;
        let child = net.child(&a, 1250, 0).expect("child");
        // The first block's weight is the leading corner of its shared tensor.
        let b0 = &a.blocks[0];
        let role = match b0.kind {
            crate::space::ConvKind::Standard => "conv",
            crate::space::ConvKind::DepthwiseSeparable => "dw",
        };
        let shared = net.shared.vars[&format!("block0.{role}.k{}.weight", b0.kernel)]
            .as_tensor()
            .clone();
        let w = &child.blocks[0].conv.weight;
        let (rows, cols, k) = w.dims3().expect("3-d");
        let corner = shared
            .narrow(0, 0, rows)
            .and_then(|t| t.narrow(1, 0, cols))
            .and_then(|t| t.narrow(2, 0, k))
            .expect("corner");
        let diff = (w - &corner)
            .and_then(|d| d.abs())
            .and_then(|d| d.sum_all())
            .and_then(|d| d.to_scalar::<f32>())
            .expect("diff");
        assert_eq!(diff, 0.0);
    }

    #[test]
    fn a_step_of_one_child_moves_only_its_slices() {
        let space = space();
        let mut net = Supernet::new(&space.architecture, 1, 0, 3, 1e-2, &Device::Cpu).expect("net");
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let arch = space.sample(&mut rng).expect("candidate").architecture;
        let len = 1250;
        let n = 4;
        let inputs: Vec<f32> = (0..n * len)
            .map(|i| ((i % 97) as f32 / 50.0) - 1.0)
            .collect();
        let set = ExampleSet {
            inputs,
            n,
            channels: 1,
            len,
            side: Vec::new(),
            side_width: 0,
            targets: super::super::Targets::Classes(vec![0, 1, 2, 3]),
        };
        let before: HashMap<String, Vec<f32>> = net
            .shared
            .vars
            .iter()
            .map(|(k, v)| {
                let flat = v.as_tensor().flatten_all().and_then(|t| t.to_vec1::<f32>());
                (k.clone(), flat.expect("values"))
            })
            .collect();
        let weights = Tensor::ones(4, DType::F32, &Device::Cpu).expect("weights");
        let l = net
            .train_step(&arch, &set, &[0, 1, 2, 3], &weights)
            .expect("step");
        assert!(l.is_finite());
        let moved: Vec<&String> = net
            .shared
            .vars
            .iter()
            .filter(|(k, v)| {
                let flat = v
                    .as_tensor()
                    .flatten_all()
                    .and_then(|t| t.to_vec1::<f32>())
                    .expect("values");
                flat != before[*k]
            })
            .map(|(k, _)| k)
            .collect();
        // The first block's kernel and the output layer it feeds moved; the kernels of other
        // sizes at block 0 did not.
        let b0 = &arch.blocks[0];
        let role = match b0.kind {
            crate::space::ConvKind::Standard => "conv",
            crate::space::ConvKind::DepthwiseSeparable => "dw",
        };
        let own = format!("block0.{role}.k{}.weight", b0.kernel);
        assert!(moved.contains(&&own), "{own} did not move: {moved:?}");
        for &k in &space.architecture.block.kernel {
            if k != b0.kernel {
                let other = format!("block0.{role}.k{k}.weight");
                assert!(!moved.contains(&&other), "{other} moved");
            }
        }
        // Blocks beyond the child's depth were not touched.
        let depth = arch.blocks.len();
        assert!(moved
            .iter()
            .all(|k| !k.starts_with(&format!("block{depth}."))));
    }
}
