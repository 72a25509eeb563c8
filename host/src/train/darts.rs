//! The relaxed (DARTS) block: every option of a block's kind, kernel, dilation, activation and
//! shortcut computed, and mixed with softmax weights of the architecture parameters.
//!
//! Kernels are mixed in weight space: with "same" padding `dilation * (k - 1) / 2`, a kernel of
//! size `k` zero-padded at both ends to the largest size `K` gives the same output as the
//! smaller convolution, so `sum_k p_k conv_k(x) = conv(x, sum_k p_k pad(W_k))` (biases mixed
//! likewise), one convolution per kind and dilation instead of one per kernel. Kinds,
//! dilations, activations and the shortcut are mixed in output space. Every convolution goes
//! through [`super::ops`], whose gradients are checked against finite differences.

use candle_core::{DType, Device, Result, Tensor, Var, D};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

use super::fit::loss;
use super::kernels::{Fused, Pool2};
use super::ops;
use super::ExampleSet;
use crate::search::darts::{BlockProbabilities, CostTables, DartsConfig, Relaxation};
use crate::space::{Activation, ConvKind, Pool};

/// Softmax of a 1-D tensor of architecture parameters.
pub fn softmax(alpha: &Tensor) -> Result<Tensor> {
    // The maximum is a constant shift: it changes no probability and keeps exp finite.
    let max = alpha.max_keepdim(D::Minus1)?.detach();
    let e = alpha.broadcast_sub(&max)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
}

/// The options of a relaxed block.
#[derive(Debug, Clone, PartialEq)]
pub struct MixedOptions {
    /// Convolution kinds.
    pub kinds: Vec<ConvKind>,
    /// Kernel sizes, odd.
    pub kernels: Vec<usize>,
    /// Dilations.
    pub dilations: Vec<usize>,
    /// Activations.
    pub activations: Vec<Activation>,
    /// Shortcut or not.
    pub skips: Vec<bool>,
}

/// One convolution's weights per kernel option.
struct PerKernel {
    weights: Vec<Var>,
    biases: Vec<Var>,
}

/// A block's layers for every option, and its architecture parameters.
pub struct MixedBlock {
    options: MixedOptions,
    stride: usize,
    max_kernel: usize,
    /// `[kind][dilation]`: standard conv, or the depthwise part.
    conv: Vec<Vec<PerKernel>>,
    /// `[kind][dilation]`: the pointwise part of a separable kind.
    pointwise: Vec<Vec<Option<(Var, Var)>>>,
    /// The shortcut's 1x1 projection when the shapes differ.
    projection: Option<(Var, Var)>,
    /// One parameter vector per decision (kind, kernel, dilation, activation, skip).
    pub alphas: Vec<Var>,
}

fn uniform_var(
    rng: &mut impl Rng,
    shape: &[usize],
    fan_in: usize,
    dtype: DType,
    device: &Device,
) -> Result<Var> {
    let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
    let n: usize = shape.iter().product();
    let values: Vec<f64> = (0..n).map(|_| rng.random_range(-bound..bound)).collect();
    Var::from_tensor(&Tensor::from_vec(values, shape, device)?.to_dtype(dtype)?)
}

/// The fused activation of an option.
fn fused(a: Activation) -> Fused {
    match a {
        Activation::Relu => Fused::Relu,
        Activation::Relu6 => Fused::Relu6,
    }
}

impl MixedBlock {
    /// A block from `c_in` to `c_out` channels with `stride`, weights as PyTorch initialises
    /// them and architecture parameters at zero (uniform probabilities).
    pub fn new(
        options: MixedOptions,
        c_in: usize,
        c_out: usize,
        stride: usize,
        rng: &mut impl Rng,
        dtype: DType,
        device: &Device,
    ) -> Result<MixedBlock> {
        let lens = [
            options.kinds.len(),
            options.kernels.len(),
            options.dilations.len(),
            options.activations.len(),
            options.skips.len(),
        ];
        if lens.contains(&0) {
            candle_core::bail!("a relaxed decision has no option")
        }
        if options.kernels.iter().any(|k| k % 2 == 0) {
            candle_core::bail!("kernel sizes must be odd to be mixed")
        }
        let max_kernel = options.kernels.iter().copied().max().unwrap_or(1);
        let (mut conv, mut pointwise) = (Vec::new(), Vec::new());
        for kind in &options.kinds {
            let (mut per_dil, mut pw_dil) = (Vec::new(), Vec::new());
            for _ in &options.dilations {
                let (mut weights, mut biases) = (Vec::new(), Vec::new());
                for &k in &options.kernels {
                    let (shape, fan_in) = match kind {
                        ConvKind::Standard => (vec![c_out, c_in, k], c_in * k),
                        ConvKind::DepthwiseSeparable => (vec![c_in, 1, k], k),
                    };
                    weights.push(uniform_var(rng, &shape, fan_in, dtype, device)?);
                    biases.push(uniform_var(rng, &[shape[0]], fan_in, dtype, device)?);
                }
                per_dil.push(PerKernel { weights, biases });
                pw_dil.push(match kind {
                    ConvKind::Standard => None,
                    ConvKind::DepthwiseSeparable => Some((
                        uniform_var(rng, &[c_out, c_in, 1], c_in, dtype, device)?,
                        uniform_var(rng, &[c_out], c_in, dtype, device)?,
                    )),
                });
            }
            conv.push(per_dil);
            pointwise.push(pw_dil);
        }
        let projection = if options.skips.contains(&true) && (c_in != c_out || stride != 1) {
            Some((
                uniform_var(rng, &[c_out, c_in, 1], c_in, dtype, device)?,
                uniform_var(rng, &[c_out], c_in, dtype, device)?,
            ))
        } else {
            None
        };
        let alphas = lens
            .iter()
            .map(|&n| Var::from_tensor(&Tensor::zeros(n, dtype, device)?))
            .collect::<Result<Vec<Var>>>()?;
        Ok(MixedBlock {
            options,
            stride,
            max_kernel,
            conv,
            pointwise,
            projection,
            alphas,
        })
    }

    /// The weight variables (not the architecture parameters).
    pub fn weights(&self) -> Vec<Var> {
        let mut out = Vec::new();
        for per_dil in &self.conv {
            for pk in per_dil {
                out.extend(pk.weights.iter().cloned());
                out.extend(pk.biases.iter().cloned());
            }
        }
        for (w, b) in self.pointwise.iter().flatten().flatten() {
            out.push(w.clone());
            out.push(b.clone());
        }
        if let Some((w, b)) = &self.projection {
            out.push(w.clone());
            out.push(b.clone());
        }
        out
    }

    /// The softmax probabilities of each decision.
    pub fn probabilities(&self) -> Result<Vec<Tensor>> {
        self.alphas.iter().map(|a| softmax(a.as_tensor())).collect()
    }

    /// The kernel-mixed weights and bias of one convolution: `sum_k p_k pad(W_k)`.
    fn mixed_kernel(&self, pk: &PerKernel, p_kernel: &Tensor) -> Result<(Tensor, Tensor)> {
        let mut w: Option<Tensor> = None;
        let mut b: Option<Tensor> = None;
        for (i, &k) in self.options.kernels.iter().enumerate() {
            let p = p_kernel.narrow(0, i, 1)?;
            let side = (self.max_kernel - k) / 2;
            let padded = pk.weights[i].as_tensor().pad_with_zeros(2, side, side)?;
            let wi = padded.broadcast_mul(&p.reshape((1, 1, 1))?)?;
            let bi = pk.biases[i].as_tensor().broadcast_mul(&p)?;
            w = Some(match w {
                Some(acc) => (acc + wi)?,
                None => wi,
            });
            b = Some(match b {
                Some(acc) => (acc + bi)?,
                None => bi,
            });
        }
        match (w, b) {
            (Some(w), Some(b)) => Ok((w, b)),
            _ => candle_core::bail!("a relaxed block has no kernel option"),
        }
    }

    /// The block's mixed output for (B, C_in, L) (before any pooling).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let p = self.probabilities()?;
        let scalar = |t: &Tensor, i: usize| t.narrow(0, i, 1)?.reshape((1, 1, 1));
        // The activations' mixture of a tensor.
        let mixed_act = |y: &Tensor| -> Result<Tensor> {
            let mut out: Option<Tensor> = None;
            for (i, &a) in self.options.activations.iter().enumerate() {
                let term = ops::activation(y, fused(a))?.broadcast_mul(&scalar(&p[3], i)?)?;
                out = Some(match out {
                    Some(acc) => (acc + term)?,
                    None => term,
                });
            }
            out.ok_or_else(|| candle_core::Error::Msg("no activation option".into()))
        };
        let mut z: Option<Tensor> = None;
        for (ki, kind) in self.options.kinds.iter().enumerate() {
            for (di, &d) in self.options.dilations.iter().enumerate() {
                let (w, b) = self.mixed_kernel(&self.conv[ki][di], &p[1])?;
                let y = match (kind, &self.pointwise[ki][di]) {
                    (ConvKind::DepthwiseSeparable, Some((pw, pb))) => {
                        let dw =
                            ops::depthwise_conv1d_act(x, &w, &b, self.stride, d, Fused::Identity)?;
                        let dw = mixed_act(&dw)?;
                        ops::conv1d_act(&dw, pw.as_tensor(), pb.as_tensor(), 1, 1, Fused::Identity)?
                    }
                    _ => ops::conv1d_act(x, &w, &b, self.stride, d, Fused::Identity)?,
                };
                let weight = (scalar(&p[0], ki)? * scalar(&p[2], di)?)?;
                let term = y.broadcast_mul(&weight)?;
                z = Some(match z {
                    Some(acc) => (acc + term)?,
                    None => term,
                });
            }
        }
        let z = z.ok_or_else(|| candle_core::Error::Msg("no convolution option".into()))?;
        let mut out: Option<Tensor> = None;
        for (si, &skip) in self.options.skips.iter().enumerate() {
            let pre = if skip {
                let shortcut = match &self.projection {
                    Some((w, b)) => ops::conv1d_act(
                        x,
                        w.as_tensor(),
                        b.as_tensor(),
                        self.stride,
                        1,
                        Fused::Identity,
                    )?,
                    None => x.clone(),
                };
                (&z + shortcut)?
            } else {
                z.clone()
            };
            let term = mixed_act(&pre)?.broadcast_mul(&scalar(&p[4], si)?)?;
            out = Some(match out {
                Some(acc) => (acc + term)?,
                None => term,
            });
        }
        out.ok_or_else(|| candle_core::Error::Msg("no shortcut option".into()))
    }
}

/// The joint probabilities of a block's decisions (the outer product, flattened row-major in
/// decision order), as one differentiable tensor.
pub fn joint_probabilities(probabilities: &[Tensor]) -> Result<Tensor> {
    let mut joint = match probabilities.first() {
        Some(p) => p.clone(),
        None => candle_core::bail!("no decision"),
    };
    for p in &probabilities[1..] {
        let n = joint.dim(0)?;
        let m = p.dim(0)?;
        joint = joint
            .reshape((n, 1))?
            .broadcast_mul(&p.reshape((1, m))?)?
            .reshape(n * m)?;
    }
    Ok(joint)
}

/// `reference + sum_b sum_j joint_b[j] * delta[b][j]`: a cost's expectation under the blocks'
/// probabilities (the cost tables hold the constants).
pub fn expected_cost(
    joint: &[Tensor],
    reference: f64,
    delta: &[Vec<f64>],
    device: &Device,
) -> Result<Tensor> {
    let dtype = joint.first().map_or(DType::F32, Tensor::dtype);
    let mut total = Tensor::new(reference, device)?.to_dtype(dtype)?;
    for (p, d) in joint.iter().zip(delta) {
        let costs = Tensor::from_vec(d.clone(), d.len(), device)?.to_dtype(dtype)?;
        total = (total + (p * costs)?.sum_all()?)?;
    }
    Ok(total)
}

/// The relaxed network: mixed blocks with a fixed pooling, then the fixed head.
pub struct RelaxedNet {
    blocks: Vec<MixedBlock>,
    pool: Pool,
    hidden: Option<(Var, Var)>,
    output: (Var, Var),
    side_inputs: usize,
}

impl RelaxedNet {
    /// The network of `relaxation` on `in_channels` leads with `side_inputs` RR inputs.
    pub fn new(
        relaxation: &Relaxation,
        in_channels: usize,
        side_inputs: usize,
        seed: u64,
        device: &Device,
    ) -> Result<RelaxedNet> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let arch = &relaxation.reference.architecture;
        let options = MixedOptions {
            kinds: relaxation.kinds.clone(),
            kernels: relaxation.kernels.clone(),
            dilations: relaxation.dilations.clone(),
            activations: relaxation.activations.clone(),
            skips: relaxation.skips.clone(),
        };
        let mut blocks = Vec::new();
        let mut c = in_channels;
        for b in &arch.blocks {
            blocks.push(MixedBlock::new(
                options.clone(),
                c,
                b.channels,
                b.stride,
                &mut rng,
                DType::F32,
                device,
            )?);
            c = b.channels;
        }
        let pool = arch.blocks.first().map_or(Pool::None, |b| b.pool);
        let mut features = c + side_inputs;
        let hidden = match arch.head.hidden {
            Some(units) => {
                let layer = (
                    uniform_var(&mut rng, &[units, features], features, DType::F32, device)?,
                    uniform_var(&mut rng, &[units], features, DType::F32, device)?,
                );
                features = units;
                Some(layer)
            }
            None => None,
        };
        let outputs = arch.head.outputs;
        let output = (
            uniform_var(&mut rng, &[outputs, features], features, DType::F32, device)?,
            uniform_var(&mut rng, &[outputs], features, DType::F32, device)?,
        );
        Ok(RelaxedNet {
            blocks,
            pool,
            hidden,
            output,
            side_inputs,
        })
    }

    /// Logits for (B, C, L) and the RR side inputs.
    pub fn forward(&self, x: &Tensor, side: Option<&Tensor>) -> Result<Tensor> {
        let mut x = x.clone();
        for block in &self.blocks {
            x = block.forward(&x)?;
            x = match self.pool {
                Pool::None => x,
                Pool::Max2 => ops::pool2(&x, Pool2::Max)?,
                Pool::Avg2 => ops::pool2(&x, Pool2::Avg)?,
            };
        }
        let hidden = self
            .hidden
            .as_ref()
            .map(|(w, b)| (w.as_tensor(), b.as_tensor()));
        let output = (self.output.0.as_tensor(), self.output.1.as_tensor());
        super::network::head(&x, self.side_inputs, side, hidden, output)
    }

    fn weights(&self) -> Vec<Var> {
        let mut out: Vec<Var> = self.blocks.iter().flat_map(MixedBlock::weights).collect();
        for (w, b) in self.hidden.iter().chain(std::iter::once(&self.output)) {
            out.push(w.clone());
            out.push(b.clone());
        }
        out
    }

    fn alphas(&self) -> Vec<Var> {
        self.blocks.iter().flat_map(|b| b.alphas.clone()).collect()
    }
}

/// One epoch of alternating steps, for progress reports.
#[derive(Debug, Clone, PartialEq)]
pub struct RelaxedEpoch {
    /// Weight (and architecture) steps taken: fewer than asked when the deadline came first.
    pub steps: usize,
    /// Mean training loss of the weight steps.
    pub train_loss: f64,
    /// Mean validation loss (task part) of the architecture steps.
    pub val_loss: f64,
    /// Expected latency after the epoch, ms.
    pub expected_latency_ms: f64,
    /// Expected flash after the epoch, bytes.
    pub expected_flash_bytes: f64,
    /// Expected peak SRAM after the epoch, bytes.
    pub expected_sram_bytes: f64,
}

/// First-order DARTS: weight steps on the training split, architecture steps on the
/// validation split with the hardware term added.
pub struct RelaxedTrainer<'a> {
    net: RelaxedNet,
    weights: AdamW,
    architecture: AdamW,
    train: &'a ExampleSet,
    val: &'a ExampleSet,
    class_weights: Tensor,
    tables: CostTables,
    lambda: f64,
    memory_penalty: f64,
    batch_size: usize,
    device: Device,
}

impl<'a> RelaxedTrainer<'a> {
    /// A trainer of `net` with the cost tables and the loss weights of `config`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        net: RelaxedNet,
        train: &'a ExampleSet,
        val: &'a ExampleSet,
        class_weights: &[f32],
        tables: CostTables,
        config: &DartsConfig,
        batch_size: usize,
        device: &Device,
    ) -> Result<RelaxedTrainer<'a>> {
        if train.n == 0 || val.n == 0 {
            candle_core::bail!("the relaxed search needs training and validation examples")
        }
        let weights = AdamW::new(
            net.weights(),
            ParamsAdamW {
                lr: 3e-3,
                weight_decay: 1e-4,
                ..ParamsAdamW::default()
            },
        )?;
        // Liu et al. use Adam at 3e-4 over 50 epochs; searches here are far shorter.
        let architecture = AdamW::new(
            net.alphas(),
            ParamsAdamW {
                lr: 3e-2,
                beta1: 0.5,
                weight_decay: 1e-3,
                ..ParamsAdamW::default()
            },
        )?;
        Ok(RelaxedTrainer {
            net,
            weights,
            architecture,
            train,
            val,
            class_weights: Tensor::from_vec(class_weights.to_vec(), class_weights.len(), device)?,
            tables,
            lambda: config.lambda,
            memory_penalty: config.memory_penalty,
            batch_size: batch_size.max(1),
            device: device.clone(),
        })
    }

    /// The expected latency, flash and SRAM under the current probabilities, as tensors.
    fn expected(&self) -> Result<(Tensor, Tensor, Tensor)> {
        let joint = self
            .net
            .blocks
            .iter()
            .map(|b| joint_probabilities(&b.probabilities()?))
            .collect::<Result<Vec<Tensor>>>()?;
        let t = &self.tables;
        let e = |c: &crate::search::darts::CostTable| {
            expected_cost(&joint, c.reference, &c.delta, &self.device)
        };
        Ok((e(&t.latency_ms)?, e(&t.flash_bytes)?, e(&t.sram_bytes)?))
    }

    /// `lambda * E[latency] / budget + penalty * (relu(E[flash] / limit - 1) + relu(E[SRAM] /
    /// limit - 1))`.
    fn hardware_loss(&self) -> Result<Tensor> {
        let (lat, flash, sram) = self.expected()?;
        let t = &self.tables;
        let over = |e: Tensor, scale: f64| e.affine(1.0 / scale, -1.0)?.relu();
        let memory = (over(flash, t.flash_bytes.scale)? + over(sram, t.sram_bytes.scale)?)?;
        lat.affine(self.lambda / t.latency_ms.scale, 0.0)?
            + memory.affine(self.memory_penalty, 0.0)?
    }

    fn batch_loss(&self, set: &ExampleSet, rng: &mut ChaCha8Rng) -> Result<Tensor> {
        let indices: Vec<usize> = (0..self.batch_size.min(set.n))
            .map(|_| rng.random_range(0..set.n))
            .collect();
        let (x, side) = set.batch(&indices, &self.device)?;
        let logits = self.net.forward(&x, side.as_ref())?;
        loss(
            &logits,
            &set.targets,
            &indices,
            &self.class_weights,
            &self.device,
        )
    }

    /// `steps` weight steps and as many architecture steps, alternating.
    /// Ends early, after the step in progress, once `deadline` has passed.
    pub fn epoch(
        &mut self,
        steps: usize,
        rng: &mut ChaCha8Rng,
        deadline: Option<Instant>,
    ) -> Result<RelaxedEpoch> {
        let (mut train_sum, mut val_sum) = (0.0, 0.0);
        let mut done = 0;
        for _ in 0..steps {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            let l = self.batch_loss(self.train, rng)?;
            // Only the weights move here: the architecture optimiser holds the alphas.
            self.weights.backward_step(&l)?;
            train_sum += l.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            let task = self.batch_loss(self.val, rng)?;
            val_sum += task.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            let total = (task + self.hardware_loss()?)?;
            self.architecture.backward_step(&total)?;
            done += 1;
        }
        let n = done.max(1) as f64;
        let (lat, flash, sram) = self.expected()?;
        let scalar = |t: Tensor| t.to_dtype(DType::F64)?.to_scalar::<f64>();
        Ok(RelaxedEpoch {
            steps: done,
            train_loss: train_sum / n,
            val_loss: val_sum / n,
            expected_latency_ms: scalar(lat)?,
            expected_flash_bytes: scalar(flash)?,
            expected_sram_bytes: scalar(sram)?,
        })
    }

    /// Every block's probabilities, per decision.
    pub fn probabilities(&self) -> Result<Vec<BlockProbabilities>> {
        self.net
            .blocks
            .iter()
            .map(|b| {
                b.probabilities()?
                    .iter()
                    .map(|p| p.to_dtype(DType::F64)?.to_vec1::<f64>())
                    .collect()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> MixedOptions {
        MixedOptions {
            kinds: vec![ConvKind::Standard, ConvKind::DepthwiseSeparable],
            kernels: vec![3, 5],
            dilations: vec![1, 2],
            activations: vec![Activation::Relu, Activation::Relu6],
            skips: vec![false, true],
        }
    }

    /// The loss whose gradient is checked: a fixed projection of the block's output plus the
    /// expected latency.
    fn loss(block: &MixedBlock, x: &Tensor, r: &Tensor, delta: &[Vec<f64>]) -> Result<Tensor> {
        let y = block.forward(x)?;
        let joint = joint_probabilities(&block.probabilities()?)?;
        let lat = expected_cost(&[joint], 2.0, delta, &Device::Cpu)?;
        (y * r)?.sum_all()? + lat
    }

    #[test]
    fn architecture_gradients_match_central_differences() {
        let dev = Device::Cpu;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let block = MixedBlock::new(options(), 3, 4, 1, &mut rng, DType::F64, &dev).expect("block");
        // Away from zero: distinct probabilities, so every mixing weight matters.
        for (i, a) in block.alphas.iter().enumerate() {
            let n = a.dim(0).expect("dim");
            let v: Vec<f64> = (0..n)
                .map(|j| 0.3 * (i as f64 + 1.0) * (j as f64 - 0.4))
                .collect();
            a.set(&Tensor::from_vec(v, n, &dev).expect("alpha"))
                .expect("set");
        }
        let n_joint = 32;
        let delta = vec![(0..n_joint)
            .map(|j| (j as f64 * 0.37).sin() * 3.0)
            .collect::<Vec<f64>>()];
        let (b, l) = (2, 9);
        let xs: Vec<f64> = (0..b * 3 * l)
            .map(|i| ((i * 7919) % 23) as f64 / 11.0 - 1.0)
            .collect();
        let x = Tensor::from_vec(xs, (b, 3, l), &dev).expect("x");
        let rs: Vec<f64> = (0..b * 4 * l)
            .map(|i| ((i * 104729) % 17) as f64 / 8.0 - 1.0)
            .collect();
        let r = Tensor::from_vec(rs, (b, 4, l), &dev).expect("r");

        let grads = loss(&block, &x, &r, &delta)
            .expect("loss")
            .backward()
            .expect("backward");
        let eps = 1e-5;
        let mut checked = 0;
        for a in &block.alphas {
            let analytic: Vec<f64> = grads
                .get(a.as_tensor())
                .expect("gradient")
                .to_vec1()
                .expect("values");
            let base: Vec<f64> = a.as_tensor().to_vec1().expect("values");
            for j in 0..base.len() {
                let at = |d: f64| {
                    let mut v = base.clone();
                    v[j] += d;
                    a.set(&Tensor::from_vec(v, base.len(), &dev).expect("t"))
                        .expect("set");
                    loss(&block, &x, &r, &delta)
                        .and_then(|t| t.to_scalar::<f64>())
                        .expect("loss")
                };
                let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
                a.set(&Tensor::from_vec(base.clone(), base.len(), &dev).expect("t"))
                    .expect("reset");
                let err = (numeric - analytic[j]).abs() / numeric.abs().max(1e-3);
                assert!(
                    err < 1e-5,
                    "alpha {j}: analytic {} numeric {numeric}",
                    analytic[j]
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 10);
    }

    #[test]
    fn mixing_kernels_in_weight_space_equals_mixing_outputs() {
        let dev = Device::Cpu;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let mut opts = options();
        opts.kinds = vec![ConvKind::Standard];
        opts.dilations = vec![2];
        opts.activations = vec![Activation::Relu];
        opts.skips = vec![false];
        let block = MixedBlock::new(opts, 2, 3, 1, &mut rng, DType::F64, &dev).expect("block");
        block.alphas[1]
            .set(&Tensor::new(&[0.5f64, -0.25], &dev).expect("a"))
            .expect("set");
        let xs: Vec<f64> = (0..2 * 2 * 11)
            .map(|i| ((i * 31) % 13) as f64 / 6.0 - 1.0)
            .collect();
        let x = Tensor::from_vec(xs, (2, 2, 11), &dev).expect("x");
        let mixed = block.forward(&x).expect("mixed");
        let p: Vec<f64> = block.probabilities().expect("p")[1].to_vec1().expect("p");
        let mut sum: Option<Tensor> = None;
        for (i, &pi) in p.iter().enumerate() {
            let pk = &block.conv[0][0];
            let y = ops::conv1d_act(
                &x,
                pk.weights[i].as_tensor(),
                pk.biases[i].as_tensor(),
                1,
                2,
                Fused::Identity,
            )
            .and_then(|y| y.affine(pi, 0.0))
            .expect("conv");
            sum = Some(match sum {
                Some(s) => (s + y).expect("add"),
                None => y,
            });
        }
        let want = ops::activation(&sum.expect("sum"), Fused::Relu).expect("relu");
        let diff: f64 = (mixed - want)
            .and_then(|d| d.abs())
            .and_then(|d| d.max_all())
            .and_then(|d| d.to_scalar())
            .expect("diff");
        assert!(diff < 1e-12, "{diff}");
    }
}
