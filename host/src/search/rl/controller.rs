//! The controller's policy: an LSTM that samples the decision sequence one choice at a time.
//!
//! At step `t` the LSTM reads `x_t = E_choice[prev] + E_clue[gene(t)]`, where `prev` is the
//! row of the previous step's choice in one embedding table over every (decision, choice) pair
//! (row 0 is the start token read at `t = 0`), and `E_clue` embeds which gene the decision at
//! `t` sets (N2NAS's "clue": the controller knows whether it is choosing a kernel or a
//! decimation factor). Its output `h_t` feeds the softmax head of decision `t`, a linear layer
//! of its own with `n_choices` outputs. The logits are divided by the temperature and, with a
//! logit clip `c`, squashed to `c * tanh(logits)` (ENAS's tanh constant). Every decision is
//! sampled, inactive ones too, and each sampled choice is fed back, so the sequence is the
//! same length for every candidate.
//!
//! The LSTM cell is written out with matmuls (gates in PyTorch's order i, f, g, o; one bias),
//! and only uses candle ops whose gradients are right in candle 0.11.1 (matmul on contiguous
//! or transposed 2-D operands, `index_select`, `narrow`, sigmoid, tanh, exp, log, sums; see
//! `../shared/GPU.md`): no `candle_nn::LSTM`, whose initialisation draws from candle's own
//! unseeded generator. The weights start uniform in `[-0.1, 0.1]` (ENAS) from a ChaCha8
//! generator seeded by [`RlConfig::seed`], so a controller is reproducible.
//!
//! Parameters, with `H` hidden units, `E` embedding width, `N` the sum of `n_choices`:
//!
//! | name | shape |
//! |---|---|
//! | `choice_embedding` | `(1 + N, E)` |
//! | `clue_embedding` | `(Gene::COUNT, E)` |
//! | `lstm.w_ih` | `(E, 4H)` |
//! | `lstm.w_hh` | `(H, 4H)` |
//! | `lstm.bias` | `(4H)` |
//! | `heads.weight` | `(H, N)`: columns `off_t .. off_t + n_t` are decision `t`'s head |
//! | `heads.bias` | `(N)` |

use std::collections::BTreeMap;

use candle_core::{DType, Device, Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::RlConfig;
use crate::space::{Decision, Gene};

/// The parameter names, in the order of [`Controller::vars`] and of the initialisation draws.
pub const PARAM_NAMES: [&str; 7] = [
    "choice_embedding",
    "clue_embedding",
    "lstm.w_ih",
    "lstm.w_hh",
    "lstm.bias",
    "heads.weight",
    "heads.bias",
];

/// Half-width of the uniform initialisation.
const INIT_RANGE: f64 = 0.1;

/// One sampled sequence with what REINFORCE needs to weigh it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Episode {
    /// The choice at every decision, inactive ones included (they were fed back).
    pub choices: Vec<usize>,
    /// Which decisions count (the others are left out of the loss).
    pub active: Vec<bool>,
    /// Reward minus baseline.
    pub advantage: f64,
}

/// A tensor's values and shape, as saved in a checkpoint (values widened to f64 so an f32
/// weight comes back bit for bit through JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedTensor {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Values in row-major order.
    pub data: Vec<f64>,
}

impl SavedTensor {
    /// Copies a tensor out.
    pub fn of(tensor: &Tensor) -> candle_core::Result<SavedTensor> {
        Ok(SavedTensor {
            shape: tensor.dims().to_vec(),
            data: tensor
                .flatten_all()?
                .to_dtype(DType::F64)?
                .to_vec1::<f64>()?,
        })
    }

    /// The tensor, in `dtype` on the CPU.
    pub fn to_tensor(&self, dtype: DType) -> candle_core::Result<Tensor> {
        Tensor::from_vec(self.data.clone(), self.shape.as_slice(), &Device::Cpu)?.to_dtype(dtype)
    }
}

/// The variables' tensors, by role.
struct Weights {
    choice_embedding: Tensor,
    clue_embedding: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    bias: Tensor,
    head_w: Tensor,
    head_b: Tensor,
}

/// The LSTM policy over a space's decision sequence; see the module docs.
#[derive(Debug)]
pub struct Controller {
    dtype: DType,
    device: Device,
    hidden: usize,
    embedding: usize,
    temperature: f64,
    logit_clip: Option<f64>,
    decisions: Vec<Decision>,
    /// Column of decision `t`'s choice 0 in the heads; its embedding row is one more.
    offsets: Vec<usize>,
    vars: [Var; 7],
}

impl Controller {
    /// A freshly initialised controller for a decision sequence (on the CPU, in `dtype`: f32
    /// for searches, f64 for gradient checks).
    pub fn new(
        decisions: &[Decision],
        config: &RlConfig,
        dtype: DType,
    ) -> candle_core::Result<Controller> {
        if decisions.is_empty() || decisions.iter().any(|d| d.n_choices == 0) {
            candle_core::bail!("the space has no decision, or a decision without choices");
        }
        let device = Device::Cpu;
        let (h, e) = (config.hidden, config.embedding);
        let mut offsets = Vec::with_capacity(decisions.len());
        let mut total = 0;
        for d in decisions {
            offsets.push(total);
            total += d.n_choices;
        }
        let shapes: [Vec<usize>; 7] = [
            vec![1 + total, e],
            vec![Gene::COUNT, e],
            vec![e, 4 * h],
            vec![h, 4 * h],
            vec![4 * h],
            vec![h, total],
            vec![total],
        ];
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let make = |shape: &Vec<usize>, rng: &mut ChaCha8Rng| {
            let n: usize = shape.iter().product();
            let data: Vec<f64> = (0..n)
                .map(|_| rng.random_range(-INIT_RANGE..INIT_RANGE))
                .collect();
            Var::from_tensor(&Tensor::from_vec(data, shape.as_slice(), &device)?.to_dtype(dtype)?)
        };
        let vars = [
            make(&shapes[0], &mut rng)?,
            make(&shapes[1], &mut rng)?,
            make(&shapes[2], &mut rng)?,
            make(&shapes[3], &mut rng)?,
            make(&shapes[4], &mut rng)?,
            make(&shapes[5], &mut rng)?,
            make(&shapes[6], &mut rng)?,
        ];
        Ok(Controller {
            dtype,
            device,
            hidden: h,
            embedding: e,
            temperature: config.temperature,
            logit_clip: config.logit_clip,
            decisions: decisions.to_vec(),
            offsets,
            vars,
        })
    }

    /// The decision sequence it samples.
    pub fn decisions(&self) -> &[Decision] {
        &self.decisions
    }

    /// The parameters with their names ([`PARAM_NAMES`]), in a fixed order.
    pub fn vars(&self) -> impl Iterator<Item = (&'static str, &Var)> {
        PARAM_NAMES.into_iter().zip(self.vars.iter())
    }

    /// The number of scalar parameters.
    pub fn n_params(&self) -> usize {
        self.vars.iter().map(|v| v.elem_count()).sum()
    }

    /// Every parameter by name.
    pub fn export(&self) -> candle_core::Result<BTreeMap<String, SavedTensor>> {
        self.vars()
            .map(|(name, var)| Ok((name.to_string(), SavedTensor::of(var.as_tensor())?)))
            .collect()
    }

    /// Overwrites every parameter from [`Self::export`]'s form; names and shapes must match.
    pub fn import(&self, saved: &BTreeMap<String, SavedTensor>) -> candle_core::Result<()> {
        if saved.len() != PARAM_NAMES.len() {
            candle_core::bail!(
                "expected the parameters {PARAM_NAMES:?}, got {:?}",
                saved.keys().collect::<Vec<_>>()
            );
        }
        let mut tensors = Vec::with_capacity(PARAM_NAMES.len());
        for (name, var) in self.vars() {
            let Some(tensor) = saved.get(name) else {
                candle_core::bail!("parameter {name} missing");
            };
            if tensor.shape != var.dims() {
                candle_core::bail!(
                    "parameter {name} has shape {:?}, the controller {:?}",
                    tensor.shape,
                    var.dims()
                );
            }
            tensors.push(tensor.to_tensor(self.dtype)?);
        }
        // All checked before any is written.
        for (var, tensor) in self.vars.iter().zip(&tensors) {
            var.set(tensor)?;
        }
        Ok(())
    }

    fn weights(&self) -> Weights {
        let get = |i: usize| self.vars[i].as_tensor().clone();
        Weights {
            choice_embedding: get(0),
            clue_embedding: get(1),
            w_ih: get(2),
            w_hh: get(3),
            bias: get(4),
            head_w: get(5),
            head_b: get(6),
        }
    }

    /// The embedding row fed at step `t` after `choices[..t]`.
    fn input_row(&self, t: usize, choices: &[usize]) -> usize {
        if t == 0 {
            0
        } else {
            1 + self.offsets[t - 1] + choices[t - 1]
        }
    }

    /// The logits after the temperature and the clip.
    fn shape_logit(&self, logit: f64) -> f64 {
        let logit = logit / self.temperature;
        match self.logit_clip {
            Some(clip) => clip * logit.tanh(),
            None => logit,
        }
    }

    /// Log-probabilities of every decision for a batch of teacher-forced sequences (each
    /// `choices` entry as long as the decision sequence), as a `(T * B, N)` tensor whose row
    /// `t * B + b` holds decision `t`'s log-softmax of sequence `b` in columns
    /// `off_t .. off_t + n_t` and about `-1e9` elsewhere (masked before the softmax, so those
    /// entries have probability 0 and carry no gradient).
    fn log_probs(&self, sequences: &[&[usize]]) -> candle_core::Result<Tensor> {
        let b = sequences.len();
        let t_len = self.decisions.len();
        let w = self.weights();
        let (mut rows, mut genes) = (Vec::with_capacity(t_len * b), Vec::with_capacity(t_len * b));
        for t in 0..t_len {
            let gene = self.decisions[t].kind.gene().index() as u32;
            for choices in sequences {
                rows.push(self.input_row(t, choices) as u32);
                genes.push(gene);
            }
        }
        let rows = Tensor::new(rows.as_slice(), &self.device)?;
        let genes = Tensor::new(genes.as_slice(), &self.device)?;
        // Every step's input projection at once: (T * B, 4H).
        let projected = w
            .choice_embedding
            .index_select(&rows, 0)?
            .add(&w.clue_embedding.index_select(&genes, 0)?)?
            .matmul(&w.w_ih)?
            .broadcast_add(&w.bias)?;
        let hd = self.hidden;
        let zeros = Tensor::zeros((b, hd), self.dtype, &self.device)?;
        let (mut h, mut c) = (zeros.clone(), zeros);
        let mut hs = Vec::with_capacity(t_len);
        for t in 0..t_len {
            let gates = projected.narrow(0, t * b, b)?.add(&h.matmul(&w.w_hh)?)?;
            let sigmoid = |i: usize| candle_nn::ops::sigmoid(&gates.narrow(1, i * hd, hd)?);
            let (i, f, o) = (sigmoid(0)?, sigmoid(1)?, sigmoid(3)?);
            let g = gates.narrow(1, 2 * hd, hd)?.tanh()?;
            c = f.mul(&c)?.add(&i.mul(&g)?)?;
            h = o.mul(&c.tanh()?)?;
            hs.push(h.clone());
        }
        // Every head at once: (T * B, N), then each row keeps its own decision's columns.
        let mut logits = Tensor::cat(&hs, 0)?
            .matmul(&w.head_w)?
            .broadcast_add(&w.head_b)?;
        if self.temperature != 1.0 {
            logits = logits.affine(1.0 / self.temperature, 0.0)?;
        }
        if let Some(clip) = self.logit_clip {
            logits = logits.tanh()?.affine(clip, 0.0)?;
        }
        let total = self.total_choices();
        let mut mask = vec![MASKED; t_len * b * total];
        for t in 0..t_len {
            let (off, n) = (self.offsets[t], self.decisions[t].n_choices);
            for row in t * b..(t + 1) * b {
                mask[row * total + off..row * total + off + n].fill(0.0);
            }
        }
        let mask =
            Tensor::from_vec(mask, (t_len * b, total), &self.device)?.to_dtype(self.dtype)?;
        candle_nn::ops::log_softmax(&logits.add(&mask)?, 1)
    }

    fn total_choices(&self) -> usize {
        self.decisions.iter().map(|d| d.n_choices).sum()
    }

    fn check_sequence(&self, choices: &[usize]) -> candle_core::Result<()> {
        if choices.len() != self.decisions.len() {
            candle_core::bail!(
                "{} choices for {} decisions",
                choices.len(),
                self.decisions.len()
            );
        }
        if let Some((t, (&k, d))) = choices
            .iter()
            .zip(&self.decisions)
            .enumerate()
            .find(|(_, (&k, d))| k >= d.n_choices)
        {
            candle_core::bail!("choice {k} of decision {t}, which has {}", d.n_choices);
        }
        Ok(())
    }

    /// Runs the policy once on the host (f64 arithmetic on a copy of the weights, much faster
    /// than candle's per-op overhead for one sequence); `choose` picks the choice at each step
    /// from its distribution. Returns the choices and the distributions. The same function as
    /// [`Self::log_probs`], which the tests check.
    fn unroll(
        &self,
        mut choose: impl FnMut(usize, &[f64]) -> usize,
    ) -> candle_core::Result<(Vec<usize>, Vec<Vec<f64>>)> {
        let host = |i: usize| -> candle_core::Result<Vec<f64>> {
            self.vars[i]
                .as_tensor()
                .flatten_all()?
                .to_dtype(DType::F64)?
                .to_vec1::<f64>()
        };
        let (choice_embedding, clue_embedding, w_ih, w_hh, bias, head_w, head_b) = (
            host(0)?,
            host(1)?,
            host(2)?,
            host(3)?,
            host(4)?,
            host(5)?,
            host(6)?,
        );
        let (hd, e, total) = (self.hidden, self.embedding, self.total_choices());
        let (mut h, mut c) = (vec![0.0; hd], vec![0.0; hd]);
        let mut x = vec![0.0; e];
        let mut gates = vec![0.0; 4 * hd];
        let t_len = self.decisions.len();
        let mut choices = Vec::with_capacity(t_len);
        let mut dists = Vec::with_capacity(t_len);
        let sigmoid = |v: f64| 1.0 / (1.0 + (-v).exp());
        for t in 0..t_len {
            let row = self.input_row(t, &choices);
            let gene = self.decisions[t].kind.gene().index();
            for (k, xk) in x.iter_mut().enumerate() {
                *xk = choice_embedding[row * e + k] + clue_embedding[gene * e + k];
            }
            gates.copy_from_slice(&bias);
            for (k, &xk) in x.iter().enumerate() {
                let w_row = &w_ih[k * 4 * hd..(k + 1) * 4 * hd];
                for (g, w) in gates.iter_mut().zip(w_row) {
                    *g += xk * w;
                }
            }
            for (k, &hk) in h.iter().enumerate() {
                let w_row = &w_hh[k * 4 * hd..(k + 1) * 4 * hd];
                for (g, w) in gates.iter_mut().zip(w_row) {
                    *g += hk * w;
                }
            }
            for j in 0..hd {
                let (i, f) = (sigmoid(gates[j]), sigmoid(gates[hd + j]));
                let (g, o) = (gates[2 * hd + j].tanh(), sigmoid(gates[3 * hd + j]));
                c[j] = f * c[j] + i * g;
                h[j] = o * c[j].tanh();
            }
            let (off, n) = (self.offsets[t], self.decisions[t].n_choices);
            let mut logits = head_b[off..off + n].to_vec();
            for (k, &hk) in h.iter().enumerate() {
                let w_row = &head_w[k * total + off..k * total + off + n];
                for (l, w) in logits.iter_mut().zip(w_row) {
                    *l += hk * w;
                }
            }
            for l in &mut logits {
                *l = self.shape_logit(*l);
            }
            let dist = softmax(&logits);
            let k = choose(t, &dist).min(n - 1);
            choices.push(k);
            dists.push(dist);
        }
        Ok((choices, dists))
    }

    /// Samples a choice sequence (every decision, inactive ones too) with `rng`: one uniform
    /// draw per decision, inverted through the cumulative distribution.
    pub fn sample(&self, rng: &mut impl Rng) -> candle_core::Result<Vec<usize>> {
        let (choices, _) = self.unroll(|_, dist| {
            let u: f64 = rng.random();
            let mut acc = 0.0;
            for (k, p) in dist.iter().enumerate() {
                acc += p;
                if u < acc {
                    return k;
                }
            }
            // Rounding left u above the last partial sum: the last choice of nonzero mass.
            dist.iter().rposition(|&p| p > 0.0).unwrap_or(0)
        })?;
        Ok(choices)
    }

    /// The most likely choice at each step, feeding back its own choices (greedy decoding),
    /// with the distribution at every step.
    pub fn greedy(&self) -> candle_core::Result<(Vec<usize>, Vec<Vec<f64>>)> {
        self.unroll(|_, dist| {
            (0..dist.len())
                .reduce(|best, k| if dist[k] > dist[best] { k } else { best })
                .unwrap_or(0)
        })
    }

    /// The policy's distribution at every step when fed `choices` (teacher forcing), computed
    /// with the host arithmetic of [`Self::sample`].
    pub fn probabilities_along(&self, choices: &[usize]) -> candle_core::Result<Vec<Vec<f64>>> {
        self.check_sequence(choices)?;
        Ok(self.unroll(|t, _| choices[t])?.1)
    }

    /// [`Self::probabilities_along`] computed by the candle graph that [`Self::loss`]
    /// differentiates (to check that sampling and learning use the same policy).
    pub fn probabilities_along_graph(
        &self,
        choices: &[usize],
    ) -> candle_core::Result<Vec<Vec<f64>>> {
        self.check_sequence(choices)?;
        let rows = self
            .log_probs(&[choices])?
            .exp()?
            .to_dtype(DType::F64)?
            .to_vec2::<f64>()?;
        Ok(rows
            .iter()
            .enumerate()
            .map(|(t, row)| {
                row[self.offsets[t]..self.offsets[t] + self.decisions[t].n_choices].to_vec()
            })
            .collect())
    }

    /// The REINFORCE loss of a batch of episodes, a scalar tensor:
    ///
    /// `(1 / B) * sum_b [ -advantage_b * sum_t log pi(a_bt) - entropy_weight * sum_t H(pi_bt) ]`
    ///
    /// with both sums over the active decisions of episode `b` only.
    pub fn loss(&self, episodes: &[Episode], entropy_weight: f64) -> candle_core::Result<Tensor> {
        let b = episodes.len();
        let t_len = self.decisions.len();
        if b == 0 {
            candle_core::bail!("a loss needs at least one episode");
        }
        for e in episodes {
            self.check_sequence(&e.choices)?;
            if e.active.len() != t_len {
                candle_core::bail!("{} active flags for {t_len} decisions", e.active.len());
            }
        }
        let sequences: Vec<&[usize]> = episodes.iter().map(|e| e.choices.as_slice()).collect();
        let log_p = self.log_probs(&sequences)?;
        // Host-built weights, row t * B + b: -advantage / B on the chosen entry (policy
        // gradient) and entropy_weight / B on the row (H = -sum p log p); zero where inactive.
        let total = self.total_choices();
        let mut pick = vec![0f64; t_len * b * total];
        let mut ent = vec![0f64; t_len * b];
        for t in 0..t_len {
            for (i, e) in episodes.iter().enumerate() {
                if e.active[t] {
                    let row = t * b + i;
                    pick[row * total + self.offsets[t] + e.choices[t]] = -e.advantage / b as f64;
                    ent[row] = entropy_weight / b as f64;
                }
            }
        }
        let pick =
            Tensor::from_vec(pick, (t_len * b, total), &self.device)?.to_dtype(self.dtype)?;
        let ent = Tensor::from_vec(ent, (t_len * b, 1), &self.device)?.to_dtype(self.dtype)?;
        let p_log_p = log_p.exp()?.mul(&log_p)?;
        log_p
            .mul(&pick)?
            .sum_all()?
            .add(&p_log_p.broadcast_mul(&ent)?.sum_all()?)
    }
}

/// The additive mask of the columns outside a row's decision.
const MASKED: f64 = -1e9;

/// A numerically stable softmax in f64.
fn softmax(logits: &[f64]) -> Vec<f64> {
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exp: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
    let sum: f64 = exp.iter().sum();
    exp.iter().map(|e| e / sum).collect()
}
