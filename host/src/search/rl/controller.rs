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

/// The weights used by one forward pass: tracked (the variables) or detached (sampling).
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

    fn weights(&self, tracked: bool) -> Weights {
        let get = |i: usize| {
            let t = self.vars[i].as_tensor();
            if tracked {
                t.clone()
            } else {
                t.detach()
            }
        };
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
    fn input_row(&self, t: usize, choices: &[usize]) -> u32 {
        if t == 0 {
            0
        } else {
            (1 + self.offsets[t - 1] + choices[t - 1]) as u32
        }
    }

    /// One LSTM step for a batch: rows of `choice_embedding` in, decision `t`'s (shaped)
    /// logits `(B, n_t)` and the new state out.
    fn step(
        &self,
        w: &Weights,
        t: usize,
        rows: &Tensor,
        h: &Tensor,
        c: &Tensor,
    ) -> candle_core::Result<(Tensor, Tensor, Tensor)> {
        let gene = self.decisions[t].kind.gene().index();
        let x = w
            .choice_embedding
            .index_select(rows, 0)?
            .broadcast_add(&w.clue_embedding.narrow(0, gene, 1)?)?;
        let gates = x
            .matmul(&w.w_ih)?
            .add(&h.matmul(&w.w_hh)?)?
            .broadcast_add(&w.bias)?;
        let hd = self.hidden;
        let sigmoid = |i: usize| candle_nn::ops::sigmoid(&gates.narrow(1, i * hd, hd)?);
        let (i, f, o) = (sigmoid(0)?, sigmoid(1)?, sigmoid(3)?);
        let g = gates.narrow(1, 2 * hd, hd)?.tanh()?;
        let c = f.mul(c)?.add(&i.mul(&g)?)?;
        let h = o.mul(&c.tanh()?)?;
        let (off, n) = (self.offsets[t], self.decisions[t].n_choices);
        let mut logits = h
            .matmul(&w.head_w.narrow(1, off, n)?.contiguous()?)?
            .broadcast_add(&w.head_b.narrow(0, off, n)?)?;
        if self.temperature != 1.0 {
            logits = logits.affine(1.0 / self.temperature, 0.0)?;
        }
        if let Some(clip) = self.logit_clip {
            logits = logits.tanh()?.affine(clip, 0.0)?;
        }
        Ok((logits, h, c))
    }

    fn zero_state(&self, batch: usize) -> candle_core::Result<(Tensor, Tensor)> {
        let zeros = Tensor::zeros((batch, self.hidden), self.dtype, &self.device)?;
        Ok((zeros.clone(), zeros))
    }

    /// Runs the policy once; `choose` picks the choice at each step from its distribution
    /// (f64, summing to 1) and the steps so far. Returns the choices and the distributions.
    fn unroll(
        &self,
        mut choose: impl FnMut(usize, &[f64]) -> usize,
    ) -> candle_core::Result<(Vec<usize>, Vec<Vec<f64>>)> {
        let w = self.weights(false);
        let (mut h, mut c) = self.zero_state(1)?;
        let mut choices = Vec::with_capacity(self.decisions.len());
        let mut dists = Vec::with_capacity(self.decisions.len());
        for t in 0..self.decisions.len() {
            let rows = Tensor::new(&[self.input_row(t, &choices)], &self.device)?;
            let (logits, h2, c2) = self.step(&w, t, &rows, &h, &c)?;
            (h, c) = (h2, c2);
            let logits = logits
                .flatten_all()?
                .to_dtype(DType::F64)?
                .to_vec1::<f64>()?;
            let dist = softmax(&logits);
            let k = choose(t, &dist).min(dist.len() - 1);
            choices.push(k);
            dists.push(dist);
        }
        Ok((choices, dists))
    }

    /// Samples a choice sequence (every decision, inactive ones too) with `rng`.
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

    /// The policy's distribution at every step when fed `choices` (teacher forcing).
    pub fn probabilities_along(&self, choices: &[usize]) -> candle_core::Result<Vec<Vec<f64>>> {
        if choices.len() != self.decisions.len() {
            candle_core::bail!(
                "{} choices for {} decisions",
                choices.len(),
                self.decisions.len()
            );
        }
        let (_, dists) = self.unroll(|t, _| choices[t])?;
        Ok(dists)
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
        if let Some(e) = episodes
            .iter()
            .find(|e| e.choices.len() != t_len || e.active.len() != t_len)
        {
            candle_core::bail!(
                "an episode has {} choices and {} flags for {t_len} decisions",
                e.choices.len(),
                e.active.len()
            );
        }
        let w = self.weights(true);
        let (mut h, mut c) = self.zero_state(b)?;
        let mut terms = Vec::with_capacity(t_len);
        for t in 0..t_len {
            let n = self.decisions[t].n_choices;
            let rows: Vec<u32> = episodes
                .iter()
                .map(|e| self.input_row(t, &e.choices))
                .collect();
            let rows = Tensor::new(rows.as_slice(), &self.device)?;
            let (logits, h2, c2) = self.step(&w, t, &rows, &h, &c)?;
            (h, c) = (h2, c2);
            // Host-built weights: -advantage / B on the chosen entry (policy gradient) and
            // entropy_weight / B on every entry (H = -sum p log p), zero where inactive.
            let mut pick = vec![0f64; b * n];
            let mut ent = vec![0f64; b];
            for (i, e) in episodes.iter().enumerate() {
                if e.active[t] {
                    if e.choices[t] >= n {
                        candle_core::bail!("choice {} of decision {t} has {n}", e.choices[t]);
                    }
                    pick[i * n + e.choices[t]] = -e.advantage / b as f64;
                    ent[i] = entropy_weight / b as f64;
                }
            }
            let pick = Tensor::from_vec(pick, (b, n), &self.device)?.to_dtype(self.dtype)?;
            let ent = Tensor::from_vec(ent, (b, 1), &self.device)?.to_dtype(self.dtype)?;
            let log_p = candle_nn::ops::log_softmax(&logits, 1)?;
            let p_log_p = log_p.exp()?.mul(&log_p)?;
            let term = log_p
                .mul(&pick)?
                .sum_all()?
                .add(&p_log_p.broadcast_mul(&ent)?.sum_all()?)?;
            terms.push(term);
        }
        Tensor::stack(&terms, 0)?.sum_all()
    }
}

/// A numerically stable softmax in f64.
fn softmax(logits: &[f64]) -> Vec<f64> {
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exp: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
    let sum: f64 = exp.iter().sum();
    exp.iter().map(|e| e / sum).collect()
}
