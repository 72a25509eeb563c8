//! The search space as a fixed-length sequence of decisions, as the RL controller samples it.
//!
//! N2NAS samples the whole pipeline with one controller; at each step it is told which kind of
//! decision comes next (the "clue", [`DecisionKind::gene`]). The sequence is fixed for a space:
//! preprocessing decisions (in the order of [`super::Preprocessing`]'s fields), the number of
//! blocks, eight decisions for each of the `max(n_blocks)` block positions, then the head.
//! Decisions of block positions at or beyond the chosen number of blocks are still sampled but
//! ignored by [`SearchSpace::decode`] ([`Decision::is_active`] says which count);
//! [`SearchSpace::encode`] writes 0 for them, so `decode(encode(c)) == c` for every candidate
//! and `encode(decode(x)) == x` for every `x` whose ignored decisions are 0.

use serde::{Deserialize, Serialize};

use super::choices::{SearchSpace, WindowSpace};
use super::genes::{Architecture, Block, Candidate, Head, Preprocessing, Window};
use super::SpaceError;

/// One decision of the sequence: which gene, and among how many choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct Decision {
    /// Which gene this decision sets.
    pub kind: DecisionKind,
    /// How many choices it has (a softmax of this width).
    pub n_choices: usize,
}

impl Decision {
    /// Whether the decision counts in a candidate of `n_blocks` blocks (block decisions beyond
    /// the block count are ignored).
    pub fn is_active(&self, n_blocks: usize) -> bool {
        self.kind.block().is_none_or(|block| block < n_blocks)
    }
}

/// Which gene a decision sets, with its block position for block genes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum DecisionKind {
    /// Window length (window tasks).
    WindowLength,
    /// Seconds before the fiducial point (beat tasks).
    BeatPre,
    /// Seconds from the fiducial point on (beat tasks).
    BeatPost,
    /// RR side inputs or not (beat tasks).
    RrIntervals,
    /// Band limiting.
    Band,
    /// Decimation factor.
    Decimation,
    /// Baseline removal.
    Baseline,
    /// Normalisation.
    Normalisation,
    /// Number of blocks.
    NumBlocks,
    /// A block's convolution kind.
    BlockKind {
        /// Block position, 0-based.
        block: usize,
    },
    /// A block's output channels.
    Channels {
        /// Block position, 0-based.
        block: usize,
    },
    /// A block's kernel size.
    Kernel {
        /// Block position, 0-based.
        block: usize,
    },
    /// A block's stride.
    Stride {
        /// Block position, 0-based.
        block: usize,
    },
    /// A block's dilation.
    Dilation {
        /// Block position, 0-based.
        block: usize,
    },
    /// A block's activation.
    Activation {
        /// Block position, 0-based.
        block: usize,
    },
    /// A block's residual shortcut.
    Skip {
        /// Block position, 0-based.
        block: usize,
    },
    /// A block's pooling.
    Pool {
        /// Block position, 0-based.
        block: usize,
    },
    /// The head's hidden dense layer.
    HeadHidden,
}

/// A decision's gene without its block position: what the controller embeds as the clue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Gene {
    /// Window length.
    WindowLength,
    /// Beat pre-fiducial extent.
    BeatPre,
    /// Beat post-fiducial extent.
    BeatPost,
    /// RR side inputs.
    RrIntervals,
    /// Band limiting.
    Band,
    /// Decimation.
    Decimation,
    /// Baseline removal.
    Baseline,
    /// Normalisation.
    Normalisation,
    /// Number of blocks.
    NumBlocks,
    /// Block convolution kind.
    BlockKind,
    /// Block channels.
    Channels,
    /// Block kernel.
    Kernel,
    /// Block stride.
    Stride,
    /// Block dilation.
    Dilation,
    /// Block activation.
    Activation,
    /// Block shortcut.
    Skip,
    /// Block pooling.
    Pool,
    /// Head hidden layer.
    HeadHidden,
}

impl Gene {
    /// How many genes there are (the size of the controller's clue embedding).
    pub const COUNT: usize = 18;

    /// A dense index in `0..Gene::COUNT`, stable across versions of the same space format.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The gene's place in the space file, for error messages.
    pub fn json_path(self) -> &'static str {
        match self {
            Gene::WindowLength => "preprocessing.window.fixed.length_s",
            Gene::BeatPre => "preprocessing.window.beat.pre_s",
            Gene::BeatPost => "preprocessing.window.beat.post_s",
            Gene::RrIntervals => "preprocessing.window.beat.rr_intervals",
            Gene::Band => "preprocessing.band",
            Gene::Decimation => "preprocessing.decimation",
            Gene::Baseline => "preprocessing.baseline",
            Gene::Normalisation => "preprocessing.normalisation",
            Gene::NumBlocks => "architecture.n_blocks",
            Gene::BlockKind => "architecture.block.kind",
            Gene::Channels => "architecture.block.channels",
            Gene::Kernel => "architecture.block.kernel",
            Gene::Stride => "architecture.block.stride",
            Gene::Dilation => "architecture.block.dilation",
            Gene::Activation => "architecture.block.activation",
            Gene::Skip => "architecture.block.skip",
            Gene::Pool => "architecture.block.pool",
            Gene::HeadHidden => "architecture.head.hidden",
        }
    }
}

impl DecisionKind {
    /// The gene, without the block position.
    pub fn gene(self) -> Gene {
        match self {
            DecisionKind::WindowLength => Gene::WindowLength,
            DecisionKind::BeatPre => Gene::BeatPre,
            DecisionKind::BeatPost => Gene::BeatPost,
            DecisionKind::RrIntervals => Gene::RrIntervals,
            DecisionKind::Band => Gene::Band,
            DecisionKind::Decimation => Gene::Decimation,
            DecisionKind::Baseline => Gene::Baseline,
            DecisionKind::Normalisation => Gene::Normalisation,
            DecisionKind::NumBlocks => Gene::NumBlocks,
            DecisionKind::BlockKind { .. } => Gene::BlockKind,
            DecisionKind::Channels { .. } => Gene::Channels,
            DecisionKind::Kernel { .. } => Gene::Kernel,
            DecisionKind::Stride { .. } => Gene::Stride,
            DecisionKind::Dilation { .. } => Gene::Dilation,
            DecisionKind::Activation { .. } => Gene::Activation,
            DecisionKind::Skip { .. } => Gene::Skip,
            DecisionKind::Pool { .. } => Gene::Pool,
            DecisionKind::HeadHidden => Gene::HeadHidden,
        }
    }

    /// The block position of a block gene.
    pub fn block(self) -> Option<usize> {
        match self {
            DecisionKind::BlockKind { block }
            | DecisionKind::Channels { block }
            | DecisionKind::Kernel { block }
            | DecisionKind::Stride { block }
            | DecisionKind::Dilation { block }
            | DecisionKind::Activation { block }
            | DecisionKind::Skip { block }
            | DecisionKind::Pool { block } => Some(block),
            _ => None,
        }
    }
}

impl SearchSpace {
    /// The largest number of blocks the space allows (the number of block positions).
    pub fn max_blocks(&self) -> usize {
        self.architecture
            .n_blocks
            .iter()
            .copied()
            .max()
            .unwrap_or(0)
    }

    /// The decision sequence, the same for every candidate of this space.
    ///
    /// In order: the window decisions (window length, or beat pre, beat post and RR side
    /// inputs), band, decimation, baseline, normalisation, the number of blocks, then for each
    /// of the [`Self::max_blocks`] block positions its kind, channels, kernel, stride, dilation,
    /// activation, skip and pool, and last the head's hidden layer. Decisions of block
    /// positions at or beyond the chosen number of blocks are sampled but ignored
    /// ([`Decision::is_active`]); [`Self::encode`] writes 0 for them. Genes with a single
    /// choice keep their (one-way) decision, so the sequence has the same layout in every
    /// space of a task kind.
    pub fn decisions(&self) -> Vec<Decision> {
        let d = |kind, n_choices| Decision { kind, n_choices };
        let pre = &self.preprocessing;
        let mut out = Vec::new();
        match &pre.window {
            WindowSpace::Fixed { length_s } => {
                out.push(d(DecisionKind::WindowLength, length_s.len()));
            }
            WindowSpace::Beat {
                pre_s,
                post_s,
                rr_intervals,
            } => {
                out.push(d(DecisionKind::BeatPre, pre_s.len()));
                out.push(d(DecisionKind::BeatPost, post_s.len()));
                out.push(d(DecisionKind::RrIntervals, rr_intervals.len()));
            }
        }
        out.push(d(DecisionKind::Band, pre.band.len()));
        out.push(d(DecisionKind::Decimation, pre.decimation.len()));
        out.push(d(DecisionKind::Baseline, pre.baseline.len()));
        out.push(d(DecisionKind::Normalisation, pre.normalisation.len()));
        let arch = &self.architecture;
        out.push(d(DecisionKind::NumBlocks, arch.n_blocks.len()));
        let b = &arch.block;
        for block in 0..self.max_blocks() {
            out.push(d(DecisionKind::BlockKind { block }, b.kind.len()));
            out.push(d(DecisionKind::Channels { block }, b.channels.len()));
            out.push(d(DecisionKind::Kernel { block }, b.kernel.len()));
            out.push(d(DecisionKind::Stride { block }, b.stride.len()));
            out.push(d(DecisionKind::Dilation { block }, b.dilation.len()));
            out.push(d(DecisionKind::Activation { block }, b.activation.len()));
            out.push(d(DecisionKind::Skip { block }, b.skip.len()));
            out.push(d(DecisionKind::Pool { block }, b.pool.len()));
        }
        out.push(d(DecisionKind::HeadHidden, arch.head.hidden.len()));
        out
    }

    /// The candidate a choice sequence stands for (one index per [`Self::decisions`] entry).
    ///
    /// Every index is range-checked, ignored ones included, so a controller bug shows.
    pub fn decode(&self, choices: &[usize]) -> Result<Candidate, SpaceError> {
        let decisions = self.decisions();
        if choices.len() != decisions.len() {
            return Err(SpaceError::WrongDecisionCount {
                expected: decisions.len(),
                got: choices.len(),
            });
        }
        if let Some((decision, &choice)) = decisions
            .iter()
            .zip(choices)
            .find(|(decision, &choice)| choice >= decision.n_choices)
        {
            return Err(SpaceError::ChoiceOutOfRange {
                kind: decision.kind,
                choice,
                n_choices: decision.n_choices,
            });
        }
        let mut next = Cursor {
            decisions: &decisions,
            choices,
            pos: 0,
        };
        let pre = &self.preprocessing;
        let window = match &pre.window {
            WindowSpace::Fixed { length_s } => Window::Fixed {
                length_s: next.pick(length_s)?,
            },
            WindowSpace::Beat {
                pre_s,
                post_s,
                rr_intervals,
            } => Window::Beat {
                pre_s: next.pick(pre_s)?,
                post_s: next.pick(post_s)?,
                rr_intervals: next.pick(rr_intervals)?,
            },
        };
        let preprocessing = Preprocessing {
            window,
            band: next.pick(&pre.band)?,
            decimation: next.pick(&pre.decimation)?,
            baseline: next.pick(&pre.baseline)?,
            normalisation: next.pick(&pre.normalisation)?,
        };
        let arch = &self.architecture;
        let n_blocks = next.pick(&arch.n_blocks)?;
        let b = &arch.block;
        let mut blocks = Vec::with_capacity(n_blocks);
        for position in 0..self.max_blocks() {
            let block = Block {
                kind: next.pick(&b.kind)?,
                channels: next.pick(&b.channels)?,
                kernel: next.pick(&b.kernel)?,
                stride: next.pick(&b.stride)?,
                dilation: next.pick(&b.dilation)?,
                activation: next.pick(&b.activation)?,
                skip: next.pick(&b.skip)?,
                pool: next.pick(&b.pool)?,
            };
            if position < n_blocks {
                blocks.push(block);
            }
        }
        let head = Head {
            hidden: next.pick(&arch.head.hidden)?,
            outputs: arch.head.outputs,
            output: arch.head.output,
        };
        Ok(Candidate {
            preprocessing,
            architecture: Architecture { blocks, head },
        })
    }

    /// The choice sequence of a candidate, or `None` when the space does not contain it.
    /// Ignored block decisions are 0.
    pub fn encode(&self, candidate: &Candidate) -> Option<Vec<usize>> {
        let pre = &self.preprocessing;
        let cp = &candidate.preprocessing;
        let mut out = Vec::new();
        match (&pre.window, &cp.window) {
            (WindowSpace::Fixed { length_s }, Window::Fixed { length_s: chosen }) => {
                out.push(index_of(length_s, chosen)?);
            }
            (
                WindowSpace::Beat {
                    pre_s,
                    post_s,
                    rr_intervals,
                },
                Window::Beat {
                    pre_s: chosen_pre,
                    post_s: chosen_post,
                    rr_intervals: chosen_rr,
                },
            ) => {
                out.push(index_of(pre_s, chosen_pre)?);
                out.push(index_of(post_s, chosen_post)?);
                out.push(index_of(rr_intervals, chosen_rr)?);
            }
            _ => return None,
        }
        out.push(index_of(&pre.band, &cp.band)?);
        out.push(index_of(&pre.decimation, &cp.decimation)?);
        out.push(index_of(&pre.baseline, &cp.baseline)?);
        out.push(index_of(&pre.normalisation, &cp.normalisation)?);
        let arch = &self.architecture;
        let ca = &candidate.architecture;
        out.push(index_of(&arch.n_blocks, &ca.blocks.len())?);
        let b = &arch.block;
        for position in 0..self.max_blocks() {
            match ca.blocks.get(position) {
                Some(block) => {
                    out.push(index_of(&b.kind, &block.kind)?);
                    out.push(index_of(&b.channels, &block.channels)?);
                    out.push(index_of(&b.kernel, &block.kernel)?);
                    out.push(index_of(&b.stride, &block.stride)?);
                    out.push(index_of(&b.dilation, &block.dilation)?);
                    out.push(index_of(&b.activation, &block.activation)?);
                    out.push(index_of(&b.skip, &block.skip)?);
                    out.push(index_of(&b.pool, &block.pool)?);
                }
                None => out.extend([0; 8]),
            }
        }
        out.push(index_of(&arch.head.hidden, &ca.head.hidden)?);
        if ca.head.outputs != arch.head.outputs || ca.head.output != arch.head.output {
            return None;
        }
        Some(out)
    }

    /// The number of distinct candidates, as a float (exact below 2^53; approximate above).
    ///
    /// Block decisions beyond the block count do not inflate it: it is the sum over the allowed
    /// block counts `n` of (preprocessing choices) x (block choices)^n x (head choices). Shape
    /// validity on a given input is not taken into account.
    pub fn size(&self) -> f64 {
        let (pre, block, head) = self.factor_sizes();
        let blocks: f64 = self
            .architecture
            .n_blocks
            .iter()
            .map(|&n| (block as f64).powi(n as i32))
            .sum();
        pre as f64 * blocks * head as f64
    }

    /// [`Self::size`] exactly, or `None` when it exceeds `u128::MAX`.
    pub fn size_exact(&self) -> Option<u128> {
        let (pre, block, head) = self.factor_sizes();
        let mut blocks: u128 = 0;
        for &n in &self.architecture.n_blocks {
            let power = (block as u128).checked_pow(u32::try_from(n).ok()?)?;
            blocks = blocks.checked_add(power)?;
        }
        (pre as u128).checked_mul(blocks)?.checked_mul(head as u128)
    }

    /// Products of the choice counts: all preprocessing genes, one block, the head.
    fn factor_sizes(&self) -> (usize, usize, usize) {
        let (mut pre, mut block, mut head) = (1usize, 1usize, 1usize);
        for decision in self.decisions() {
            let n = decision.n_choices;
            match decision.kind.gene() {
                Gene::NumBlocks => {}
                Gene::HeadHidden => head = head.saturating_mul(n),
                _ if decision.kind.block() == Some(0) => block = block.saturating_mul(n),
                _ if decision.kind.block().is_some() => {}
                _ => pre = pre.saturating_mul(n),
            }
        }
        (pre, block, head)
    }
}

/// Reads the choice sequence in order.
struct Cursor<'a> {
    decisions: &'a [Decision],
    choices: &'a [usize],
    pos: usize,
}

impl Cursor<'_> {
    fn pick<T: Clone>(&mut self, list: &[T]) -> Result<T, SpaceError> {
        let choice = self.choices.get(self.pos).copied().unwrap_or(usize::MAX);
        let kind = self
            .decisions
            .get(self.pos)
            .map_or(DecisionKind::HeadHidden, |d| d.kind);
        self.pos += 1;
        list.get(choice)
            .cloned()
            .ok_or(SpaceError::ChoiceOutOfRange {
                kind,
                choice,
                n_choices: list.len(),
            })
    }
}

fn index_of<T: PartialEq>(list: &[T], value: &T) -> Option<usize> {
    list.iter().position(|v| v == value)
}
