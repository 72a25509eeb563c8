//! DARTS (Liu et al. 2019), hardware-aware as in FBNet and ProxylessNAS: the block decisions
//! relaxed to softmax mixtures, trained by gradient descent, then made discrete again.
//!
//! What is relaxed, per block: the convolution kind, the kernel size, the dilation, the
//! activation and the residual shortcut. What is fixed (the relaxation needs one tensor shape
//! through the network): the preprocessing (the space's largest decimation, z-score when
//! offered, otherwise each gene's first choice), the depth, the width (the space's largest
//! channel count), the stride (the smallest), the pooling (max pooling when offered) and the
//! head (its first choice).
//!
//! The hardware term of the architecture loss is an expectation under the softmax
//! probabilities: for every block and every joint choice of its five decisions, the cost model
//! prices the candidate that differs from a reference only in that block ([`CostTables`]).
//! Latency and flash are sums over layers and the block's layers depend only on its own genes
//! (the fixed width and stride fix every shape), so their expectation is exact; peak SRAM is a
//! maximum over the arena plan, and its expectation is the same first-order approximation.
//!
//! Guard against collapse (Zela et al. 2020; Liang et al. 2019, "DARTS+"): the share of blocks
//! whose most likely choice is the shortcut is watched after every epoch; the architecture
//! phase stops early once it exceeds the cap, and the discretised network keeps at most the
//! cap's number of shortcuts (those with the highest probability).

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashSet};

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::strategy::{state_from_json, state_to_json, Observation, Strategy, StrategyError};
use crate::cost::{estimate, Profile};
use crate::space::{
    Activation, Architecture, Baseline, Block, Candidate, ConvKind, Normalisation, Pool,
    Preprocessing, SearchSpace, Window, WindowSpace,
};

/// The relaxed decisions of a block, in the order of [`BlockProbabilities`] and of the
/// [`CostTables`]' joint index.
pub const DECISIONS: [&str; 5] = ["kind", "kernel", "dilation", "activation", "skip"];

/// Settings of the relaxed phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DartsConfig {
    /// Blocks of the relaxed network (the nearest depth the space offers).
    pub blocks: usize,
    /// Epochs of alternating steps.
    pub epochs: usize,
    /// Weight steps (and as many architecture steps) per epoch.
    pub steps_per_epoch: usize,
    /// Weight of the expected latency, relative to the profile's latency budget, in the
    /// architecture loss.
    pub lambda: f64,
    /// Weight of the expected flash and SRAM beyond the profile's limits (relative excess).
    pub memory_penalty: f64,
    /// Most blocks with a shortcut, as a share of the blocks (the collapse guard).
    pub max_skip_share: f64,
}

impl Default for DartsConfig {
    /// 4 blocks; 10 epochs of 30 steps; lambda 0.1, memory penalty 10; at most half the
    /// blocks with a shortcut.
    fn default() -> DartsConfig {
        DartsConfig {
            blocks: 4,
            epochs: 10,
            steps_per_epoch: 30,
            lambda: 0.1,
            memory_penalty: 10.0,
            max_skip_share: 0.5,
        }
    }
}

/// The relaxation of a space: the fixed genes and the options of each relaxed decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Relaxation {
    /// The reference candidate: the fixed genes, and every block at each decision's first
    /// option.
    pub reference: Candidate,
    /// Convolution kinds.
    pub kinds: Vec<ConvKind>,
    /// Kernel sizes.
    pub kernels: Vec<usize>,
    /// Dilations.
    pub dilations: Vec<usize>,
    /// Activations.
    pub activations: Vec<Activation>,
    /// Shortcut or not.
    pub skips: Vec<bool>,
}

/// Why a space cannot be relaxed.
#[derive(Debug, thiserror::Error)]
pub enum DartsError {
    /// A list of the space is empty.
    #[error("the search space offers no choice for {0}")]
    Empty(&'static str),
    /// The cost model cannot price a candidate of the relaxation.
    #[error("cannot cost the relaxed network's candidate: {0}")]
    Cost(String),
    /// Probabilities do not match the relaxation.
    #[error("{0}")]
    Shape(String),
}

fn first<T: Clone>(list: &[T], name: &'static str) -> Result<T, DartsError> {
    list.first().cloned().ok_or(DartsError::Empty(name))
}

impl Relaxation {
    /// The relaxation of `space` with `blocks` blocks (the nearest depth it offers).
    pub fn new(space: &SearchSpace, blocks: usize) -> Result<Relaxation, DartsError> {
        let p = &space.preprocessing;
        let window = match &p.window {
            WindowSpace::Fixed { length_s } => Window::Fixed {
                length_s: first(length_s, "window length")?,
            },
            WindowSpace::Beat {
                pre_s,
                post_s,
                rr_intervals,
            } => Window::Beat {
                pre_s: first(pre_s, "beat pre")?,
                post_s: first(post_s, "beat post")?,
                rr_intervals: first(rr_intervals, "RR inputs")?,
            },
        };
        let preprocessing = Preprocessing {
            window,
            band: first(&p.band, "band")?,
            decimation: p
                .decimation
                .iter()
                .copied()
                .max()
                .ok_or(DartsError::Empty("decimation"))?,
            baseline: first::<Baseline>(&p.baseline, "baseline")?,
            normalisation: if p.normalisation.contains(&Normalisation::ZScore) {
                Normalisation::ZScore
            } else {
                first(&p.normalisation, "normalisation")?
            },
        };
        let a = &space.architecture;
        let b = &a.block;
        let depth = a
            .n_blocks
            .iter()
            .copied()
            .min_by_key(|&n| (n.abs_diff(blocks), n))
            .ok_or(DartsError::Empty("number of blocks"))?;
        let block = Block {
            kind: first(&b.kind, "kind")?,
            channels: b
                .channels
                .iter()
                .copied()
                .max()
                .ok_or(DartsError::Empty("channels"))?,
            kernel: first(&b.kernel, "kernel")?,
            stride: b
                .stride
                .iter()
                .copied()
                .min()
                .ok_or(DartsError::Empty("stride"))?,
            dilation: first(&b.dilation, "dilation")?,
            activation: first(&b.activation, "activation")?,
            skip: first(&b.skip, "skip")?,
            pool: if b.pool.contains(&Pool::Max2) {
                Pool::Max2
            } else {
                first(&b.pool, "pool")?
            },
        };
        let head = crate::space::Head {
            hidden: first(&a.head.hidden, "hidden units")?,
            outputs: a.head.outputs,
            output: a.head.output,
        };
        Ok(Relaxation {
            reference: Candidate {
                preprocessing,
                architecture: Architecture {
                    blocks: vec![block; depth],
                    head,
                },
            },
            kinds: b.kind.clone(),
            kernels: b.kernel.clone(),
            dilations: b.dilation.clone(),
            activations: b.activation.clone(),
            skips: b.skip.clone(),
        })
    }

    /// Options of each decision, in [`DECISIONS`] order.
    pub fn options(&self) -> [usize; 5] {
        [
            self.kinds.len(),
            self.kernels.len(),
            self.dilations.len(),
            self.activations.len(),
            self.skips.len(),
        ]
    }

    /// Number of blocks.
    pub fn n_blocks(&self) -> usize {
        self.reference.architecture.blocks.len()
    }

    /// The joint index of one choice per decision (row-major in [`DECISIONS`] order).
    pub fn joint_index(&self, choice: &[usize; 5]) -> usize {
        let options = self.options();
        choice
            .iter()
            .zip(options)
            .fold(0, |acc, (&c, n)| acc * n + c)
    }

    /// `block` of the reference with the choice `choice`.
    fn block_with(&self, block: usize, choice: &[usize; 5]) -> Block {
        let mut b = self.reference.architecture.blocks[block].clone();
        b.kind = self.kinds[choice[0]];
        b.kernel = self.kernels[choice[1]];
        b.dilation = self.dilations[choice[2]];
        b.activation = self.activations[choice[3]];
        b.skip = self.skips[choice[4]];
        b
    }

    /// The candidate with one choice per decision of every block.
    pub fn candidate(&self, choices: &[[usize; 5]]) -> Candidate {
        let mut c = self.reference.clone();
        for (i, choice) in choices.iter().enumerate().take(c.architecture.blocks.len()) {
            c.architecture.blocks[i] = self.block_with(i, choice);
        }
        c
    }

    /// Every joint choice of a block, in joint-index order.
    fn joint_choices(&self) -> Vec<[usize; 5]> {
        let options = self.options();
        let total: usize = options.iter().product();
        (0..total)
            .map(|mut index| {
                let mut choice = [0; 5];
                for d in (0..5).rev() {
                    choice[d] = index % options[d];
                    index /= options[d];
                }
                choice
            })
            .collect()
    }
}

/// One cost's expectation table: the reference's value, and per block and joint choice the
/// change from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostTable {
    /// The reference candidate's cost.
    pub reference: f64,
    /// `delta[block][joint]`: the cost of the reference with `block` at that joint choice,
    /// minus the reference's.
    pub delta: Vec<Vec<f64>>,
    /// The profile's limit (or budget) the cost is divided by in the loss.
    pub scale: f64,
}

impl CostTable {
    /// The expectation under per-block joint probabilities (each block's sum is 1).
    pub fn expected(&self, joint: &[Vec<f64>]) -> f64 {
        self.reference
            + self
                .delta
                .iter()
                .zip(joint)
                .map(|(d, p)| d.iter().zip(p).map(|(c, q)| c * q).sum::<f64>())
                .sum::<f64>()
    }
}

/// The cost model's latency, flash and SRAM for every block's every joint choice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostTables {
    /// Latency, ms; scaled by the profile's latency budget.
    pub latency_ms: CostTable,
    /// Flash, bytes; scaled by the flash available.
    pub flash_bytes: CostTable,
    /// Peak SRAM, bytes; scaled by the SRAM available.
    pub sram_bytes: CostTable,
}

impl CostTables {
    /// Prices every block's joint choices on `profile` for `leads` leads.
    pub fn new(
        relaxation: &Relaxation,
        profile: &Profile,
        leads: usize,
    ) -> Result<CostTables, DartsError> {
        let price = |c: &Candidate| {
            estimate(c, profile, leads)
                .map(|e| (e.latency_ms, e.flash_bytes as f64, e.sram_bytes as f64))
                .map_err(|e| DartsError::Cost(e.to_string()))
        };
        let reference = price(&relaxation.reference)?;
        let joint = relaxation.joint_choices();
        let (mut lat, mut flash, mut sram) = (Vec::new(), Vec::new(), Vec::new());
        for block in 0..relaxation.n_blocks() {
            let (mut l, mut f, mut s) = (Vec::new(), Vec::new(), Vec::new());
            for choice in &joint {
                let mut c = relaxation.reference.clone();
                c.architecture.blocks[block] = relaxation.block_with(block, choice);
                let cost = price(&c)?;
                l.push(cost.0 - reference.0);
                f.push(cost.1 - reference.1);
                s.push(cost.2 - reference.2);
            }
            lat.push(l);
            flash.push(f);
            sram.push(s);
        }
        Ok(CostTables {
            latency_ms: CostTable {
                reference: reference.0,
                delta: lat,
                scale: profile.budget.latency_ms.max(1e-9),
            },
            flash_bytes: CostTable {
                reference: reference.1,
                delta: flash,
                scale: (profile.available_flash_bytes().get() as f64).max(1.0),
            },
            sram_bytes: CostTable {
                reference: reference.2,
                delta: sram,
                scale: (profile.available_sram_bytes().get() as f64).max(1.0),
            },
        })
    }
}

/// One block's softmax probabilities, one list per decision in [`DECISIONS`] order.
pub type BlockProbabilities = Vec<Vec<f64>>;

/// The joint probabilities of a block's choices, in joint-index order (the outer product).
pub fn joint_probabilities(block: &BlockProbabilities) -> Vec<f64> {
    block.iter().fold(vec![1.0], |acc, p| {
        acc.iter()
            .flat_map(|a| p.iter().map(move |q| a * q))
            .collect()
    })
}

/// Mean entropy of the decisions, each divided by the log of its number of options (1:
/// uniform, 0: one option certain). Decisions with one option are left out.
pub fn normalised_entropy(probabilities: &[BlockProbabilities]) -> f64 {
    let (mut sum, mut n) = (0.0, 0usize);
    for p in probabilities.iter().flatten().filter(|p| p.len() > 1) {
        let h: f64 = p.iter().filter(|&&q| q > 0.0).map(|q| -q * q.ln()).sum();
        sum += h / (p.len() as f64).ln();
        n += 1;
    }
    if n == 0 {
        0.0
    } else {
        sum / n as f64
    }
}

fn argmax(p: &[f64]) -> usize {
    p.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}

/// How many blocks may keep a shortcut under the cap (at least 0, at most all).
pub fn skip_cap(n_blocks: usize, max_skip_share: f64) -> usize {
    ((n_blocks as f64 * max_skip_share.clamp(0.0, 1.0)).floor() as usize).min(n_blocks)
}

/// The collapse statistics of a set of probabilities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Collapse {
    /// Share of blocks whose most likely choice is the shortcut.
    pub skip_share: f64,
    /// Mean normalised entropy of the decisions.
    pub entropy: f64,
    /// Whether the skip share exceeds the cap.
    pub collapsed: bool,
}

/// Skip share, entropy and whether the cap is exceeded.
pub fn collapse(
    relaxation: &Relaxation,
    probabilities: &[BlockProbabilities],
    max_skip_share: f64,
) -> Collapse {
    let skips = probabilities
        .iter()
        .filter(|b| {
            b.get(4)
                .and_then(|p| relaxation.skips.get(argmax(p)))
                .copied()
                .unwrap_or(false)
        })
        .count();
    let n = probabilities.len().max(1);
    Collapse {
        skip_share: skips as f64 / n as f64,
        entropy: normalised_entropy(probabilities),
        collapsed: skips > skip_cap(probabilities.len(), max_skip_share),
    }
}

/// The outcome of discretisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Discrete {
    /// The chosen candidate.
    pub candidate: Candidate,
    /// Whether the argmax (after the skip cap) broke a hard limit and a less likely feasible
    /// candidate was chosen instead.
    pub fell_back: bool,
    /// Whether no feasible candidate was found (the argmax is proposed, and recorded as too
    /// big).
    pub infeasible: bool,
    /// Shortcuts removed by the cap.
    pub skips_removed: usize,
    /// The candidate's log-probability under the relaxation.
    pub log_probability: f64,
}

/// Candidates tried before discretisation gives up on finding a feasible one.
const MAX_EXPANSIONS: usize = 20_000;

#[derive(PartialEq)]
struct Node {
    log_p: f64,
    ranks: Vec<usize>,
}

impl Eq for Node {}

impl PartialOrd for Node {
    fn partial_cmp(&self, other: &Node) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Node {
    fn cmp(&self, other: &Node) -> Ordering {
        self.log_p.total_cmp(&other.log_p)
    }
}

/// The argmax of every decision, at most the cap's number of shortcuts, and, when that breaks
/// a hard limit (`fits` false), the most probable candidate that fits (best-first over the
/// decisions' options by probability).
pub fn discretise(
    relaxation: &Relaxation,
    probabilities: &[BlockProbabilities],
    max_skip_share: f64,
    fits: &dyn Fn(&Candidate) -> bool,
) -> Result<Discrete, DartsError> {
    let options = relaxation.options();
    if probabilities.len() != relaxation.n_blocks()
        || probabilities
            .iter()
            .any(|b| b.len() != 5 || b.iter().zip(options).any(|(p, n)| p.len() != n))
    {
        return Err(DartsError::Shape(
            "the probabilities do not match the relaxed decisions".into(),
        ));
    }
    // The collapse guard: keep the shortcut only where it is most likely, up to the cap.
    let mut probs = probabilities.to_vec();
    let cap = skip_cap(probs.len(), max_skip_share);
    let skip_index = relaxation.skips.iter().position(|&s| s);
    let no_skip_index = relaxation.skips.iter().position(|&s| !s);
    let mut skips_removed = 0;
    if let (Some(yes), Some(no)) = (skip_index, no_skip_index) {
        let mut skipping: Vec<usize> = (0..probs.len())
            .filter(|&b| argmax(&probs[b][4]) == yes)
            .collect();
        skipping.sort_by(|&a, &b| probs[b][4][yes].total_cmp(&probs[a][4][yes]));
        for &b in skipping.iter().skip(cap) {
            // Only the no-shortcut option remains for this block.
            for (i, p) in probs[b][4].iter_mut().enumerate() {
                *p = if i == no { 1.0 } else { 0.0 };
            }
            skips_removed += 1;
        }
    }
    // Per slot (block, decision), the options by probability, most likely first.
    let slots: Vec<Vec<(usize, f64)>> = probs
        .iter()
        .flatten()
        .map(|p| {
            let mut ranked: Vec<(usize, f64)> = p
                .iter()
                .copied()
                .enumerate()
                .filter(|(_, q)| *q > 0.0)
                .collect();
            ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
            ranked
        })
        .collect();
    if slots.iter().any(Vec::is_empty) {
        return Err(DartsError::Shape(
            "a decision has no probable option".into(),
        ));
    }
    let build = |ranks: &[usize]| -> (Candidate, f64) {
        let mut choices = vec![[0usize; 5]; probs.len()];
        let mut log_p = 0.0;
        for (s, &r) in ranks.iter().enumerate() {
            let (option, q) = slots[s][r];
            choices[s / 5][s % 5] = option;
            log_p += q.ln();
        }
        (relaxation.candidate(&choices), log_p)
    };
    let start = vec![0usize; slots.len()];
    let (argmax_candidate, argmax_log_p) = build(&start);
    if fits(&argmax_candidate) {
        return Ok(Discrete {
            candidate: argmax_candidate,
            fell_back: false,
            infeasible: false,
            skips_removed,
            log_probability: argmax_log_p,
        });
    }
    let mut heap = BinaryHeap::new();
    let mut seen = HashSet::new();
    seen.insert(start.clone());
    heap.push(Node {
        log_p: argmax_log_p,
        ranks: start,
    });
    for _ in 0..MAX_EXPANSIONS {
        let Some(node) = heap.pop() else { break };
        let (candidate, log_p) = build(&node.ranks);
        if fits(&candidate) {
            return Ok(Discrete {
                candidate,
                fell_back: true,
                infeasible: false,
                skips_removed,
                log_probability: log_p,
            });
        }
        for s in 0..slots.len() {
            if node.ranks[s] + 1 < slots[s].len() {
                let mut next = node.ranks.clone();
                next[s] += 1;
                if seen.insert(next.clone()) {
                    let log_p =
                        node.log_p - slots[s][node.ranks[s]].1.ln() + slots[s][next[s]].1.ln();
                    heap.push(Node { log_p, ranks: next });
                }
            }
        }
    }
    Ok(Discrete {
        candidate: argmax_candidate,
        fell_back: false,
        infeasible: true,
        skips_removed,
        log_probability: argmax_log_p,
    })
}

/// The search loop's strategy after the relaxed phase: the discretised candidate first, then
/// samples of the learnt distribution (each decision drawn from its probabilities, the skip
/// cap applied), so that further trials explore around it.
pub struct DartsStrategy {
    state: DartsState,
}

/// [`DartsStrategy`]'s checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DartsState {
    relaxation: Relaxation,
    probabilities: Vec<BlockProbabilities>,
    max_skip_share: f64,
    first: Candidate,
    proposed: usize,
}

impl DartsStrategy {
    /// Proposes `first`, then samples of `probabilities`.
    pub fn new(
        relaxation: Relaxation,
        probabilities: Vec<BlockProbabilities>,
        max_skip_share: f64,
        first: Candidate,
    ) -> DartsStrategy {
        DartsStrategy {
            state: DartsState {
                relaxation,
                probabilities,
                max_skip_share,
                first,
                proposed: 0,
            },
        }
    }

    fn sample(&self, rng: &mut ChaCha8Rng) -> Candidate {
        let s = &self.state;
        let draw = |p: &[f64], rng: &mut ChaCha8Rng| {
            let u: f64 = rng.random();
            let mut acc = 0.0;
            for (i, q) in p.iter().enumerate() {
                acc += q;
                if u < acc {
                    return i;
                }
            }
            p.len().saturating_sub(1)
        };
        let mut choices: Vec<[usize; 5]> = s
            .probabilities
            .iter()
            .map(|b| {
                let mut c = [0; 5];
                for (d, p) in b.iter().enumerate().take(5) {
                    c[d] = draw(p, rng);
                }
                c
            })
            .collect();
        let cap = skip_cap(choices.len(), s.max_skip_share);
        let no_skip = s.relaxation.skips.iter().position(|&k| !k);
        let mut kept = 0;
        for c in &mut choices {
            if s.relaxation.skips.get(c[4]).copied().unwrap_or(false) {
                kept += 1;
                if kept > cap {
                    if let Some(no) = no_skip {
                        c[4] = no;
                    }
                }
            }
        }
        s.relaxation.candidate(&choices)
    }
}

impl Strategy for DartsStrategy {
    fn name(&self) -> &'static str {
        "darts"
    }

    fn propose(
        &mut self,
        _: &SearchSpace,
        rng: &mut ChaCha8Rng,
    ) -> Result<Candidate, StrategyError> {
        self.state.proposed += 1;
        if self.state.proposed == 1 {
            return Ok(self.state.first.clone());
        }
        Ok(self.sample(rng))
    }

    fn observe(&mut self, _: &SearchSpace, _: &Observation) -> Result<(), StrategyError> {
        // The distribution was learnt in the relaxed phase; trials only report on it.
        Ok(())
    }

    fn save(&self) -> Result<serde_json::Value, StrategyError> {
        state_to_json("darts", &self.state)
    }

    fn restore(&mut self, state: &serde_json::Value) -> Result<(), StrategyError> {
        self.state = state_from_json("darts", state)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::toy::small_space as toy_space;

    /// The toy space with two options for every relaxed decision.
    fn small_space() -> SearchSpace {
        let mut space = toy_space();
        let b = &mut space.architecture.block;
        b.kernel = vec![3, 5];
        b.dilation = vec![1, 2];
        b.activation = vec![Activation::Relu, Activation::Relu6];
        b.skip = vec![false, true];
        space.architecture.n_blocks = vec![1, 2, 3];
        space
    }

    fn uniform(r: &Relaxation) -> Vec<BlockProbabilities> {
        let options = r.options();
        (0..r.n_blocks())
            .map(|_| options.iter().map(|&n| vec![1.0 / n as f64; n]).collect())
            .collect()
    }

    #[test]
    fn expected_costs_of_a_certain_choice_are_the_cost_model_s() {
        let space = small_space();
        let profile = Profile::load("qemu-mps2-an386").expect("profile");
        let r = Relaxation::new(&space, 2).expect("relaxation");
        let tables = CostTables::new(&r, &profile, 1).expect("tables");
        // Put all mass on one choice per block: the expectation is that candidate's cost.
        let mut probs = uniform(&r);
        let last: Vec<usize> = r.options().iter().map(|n| n - 1).collect();
        for b in &mut probs {
            for (d, p) in b.iter_mut().enumerate() {
                p.iter_mut().for_each(|q| *q = 0.0);
                p[last[d]] = 1.0;
            }
        }
        let joint: Vec<Vec<f64>> = probs.iter().map(joint_probabilities).collect();
        let choice: [usize; 5] = [last[0], last[1], last[2], last[3], last[4]];
        let c = r.candidate(&vec![choice; r.n_blocks()]);
        let truth = estimate(&c, &profile, 1).expect("estimate");
        let lat = tables.latency_ms.expected(&joint);
        let flash = tables.flash_bytes.expected(&joint);
        assert!((lat - truth.latency_ms).abs() < 1e-9 * truth.latency_ms.max(1.0));
        assert!((flash - truth.flash_bytes as f64).abs() < 1e-6);
        assert_eq!(joint[0].iter().filter(|&&q| q > 0.0).count(), 1);
        assert_eq!(joint[0][r.joint_index(&choice)], 1.0);
    }

    #[test]
    fn discretisation_caps_shortcuts_and_falls_back_to_a_feasible_candidate() {
        let space = small_space();
        let r = Relaxation::new(&space, 3).expect("relaxation");
        assert!(r.skips.contains(&true), "the toy space offers the shortcut");
        // Distinct probabilities, the first option of each decision the most likely.
        let mut probs = uniform(&r);
        for p in probs.iter_mut().flatten() {
            let w: Vec<f64> = (0..p.len()).map(|i| 0.5f64.powi(i as i32)).collect();
            let total: f64 = w.iter().sum();
            *p = w.iter().map(|x| x / total).collect();
        }
        for b in &mut probs {
            b[4] = r.skips.iter().map(|&s| if s { 0.9 } else { 0.1 }).collect();
            b[1] = vec![0.0; r.kernels.len()];
            b[1][0] = 0.7;
            if r.kernels.len() > 1 {
                b[1][1] = 0.3;
            }
        }
        let c = collapse(&r, &probs, 0.5);
        assert!(c.collapsed && c.skip_share == 1.0, "{c:?}");
        let all = |_: &Candidate| true;
        let d = discretise(&r, &probs, 0.5, &all).expect("discrete");
        let skips = d
            .candidate
            .architecture
            .blocks
            .iter()
            .filter(|b| b.skip)
            .count();
        assert_eq!(skips, skip_cap(r.n_blocks(), 0.5));
        assert_eq!(d.skips_removed, r.n_blocks() - skips);
        assert!(!d.fell_back);
        // Forbid the most likely kernel: the fallback takes the next most likely one.
        if r.kernels.len() > 1 {
            let banned = r.kernels[0];
            let fits = |c: &Candidate| c.architecture.blocks.iter().all(|b| b.kernel != banned);
            let d = discretise(&r, &probs, 0.5, &fits).expect("fallback");
            assert!(d.fell_back && !d.infeasible);
            assert!(d
                .candidate
                .architecture
                .blocks
                .iter()
                .all(|b| b.kernel == r.kernels[1]));
        }
        let none = |_: &Candidate| false;
        let d = discretise(&r, &probs, 0.5, &none).expect("infeasible");
        assert!(d.infeasible);
    }
}
