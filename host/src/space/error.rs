//! The one error type of the search space: a bad space file, a decision sequence that is not in
//! the space, or a candidate whose layers do not fit its input.

use std::path::PathBuf;

use super::decisions::DecisionKind;

/// Everything that can go wrong with a search space or a candidate.
#[derive(Debug, thiserror::Error)]
pub enum SpaceError {
    /// The space file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The space file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A problem inside a space file; `problem` says what.
    #[error("{}: {problem}", path.display())]
    InFile {
        /// The space file.
        path: PathBuf,
        /// What is wrong with its contents.
        problem: Box<SpaceError>,
    },
    /// The JSON does not describe a search space (syntax error, unknown field, missing field,
    /// unknown choice name). serde's message names the field and the line.
    #[error("not a search space: {source}")]
    Parse {
        /// serde's diagnosis, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// The space's `version` is not one this build reads.
    #[error(
        "search space version {found} is not supported (this build reads version {supported})"
    )]
    UnsupportedVersion {
        /// The version in the file.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// A gene lists no choice at all.
    #[error("{gene}: the list of choices is empty")]
    EmptyChoices {
        /// The gene, as a JSON path (`architecture.block.kernel`).
        gene: &'static str,
    },
    /// A gene lists the same choice twice (it would be sampled twice as often).
    #[error("{gene}: the choice {value} is listed twice")]
    DuplicateChoice {
        /// The gene, as a JSON path.
        gene: &'static str,
        /// The repeated choice.
        value: String,
    },
    /// A kernel size is even: "same" padding needs an odd kernel.
    #[error(
        "architecture.block.kernel: kernel {kernel} is even; kernels must be odd (3, 5, ..., 15)"
    )]
    EvenKernel {
        /// The kernel size.
        kernel: usize,
    },
    /// A kernel size is outside 3..=15.
    #[error("architecture.block.kernel: kernel {kernel} is outside 3..=15")]
    KernelOutOfRange {
        /// The kernel size.
        kernel: usize,
    },
    /// A block's output channel count is outside 4..=64.
    #[error("architecture.block.channels: {channels} channels is outside 4..=64")]
    ChannelsOutOfRange {
        /// The channel count.
        channels: usize,
    },
    /// Any other choice outside what the firmware implements.
    #[error("{gene}: {value} is not allowed (allowed: {allowed})")]
    NotAllowed {
        /// The gene, as a JSON path.
        gene: &'static str,
        /// The rejected choice.
        value: String,
        /// What is allowed, in words.
        allowed: &'static str,
    },
    /// A choice sequence has the wrong number of decisions.
    #[error("a candidate of this space takes {expected} decisions, got {got}")]
    WrongDecisionCount {
        /// `SearchSpace::decisions().len()`.
        expected: usize,
        /// The length of the sequence given.
        got: usize,
    },
    /// A decision's choice index is beyond its number of choices.
    #[error("decision {kind:?}: choice {choice} is out of range (it has {n_choices} choices)")]
    ChoiceOutOfRange {
        /// The decision.
        kind: DecisionKind,
        /// The index given.
        choice: usize,
        /// How many choices the decision has.
        n_choices: usize,
    },
    /// A candidate that the space does not contain (mutation needs its encoding).
    #[error("candidate {id} is not in this search space")]
    NotInSpace {
        /// The candidate's id.
        id: String,
    },
    /// The network input is empty (no samples or no channels).
    #[error("the network input is empty ({samples} samples, {channels} channels)")]
    EmptyInput {
        /// Samples per channel.
        samples: usize,
        /// Channels (leads).
        channels: usize,
    },
    /// A layer would produce no output sample: the candidate cannot run on this input length.
    #[error("block {block}: {layer} receives {in_length} sample(s) and leaves none")]
    LengthVanishes {
        /// The block (0-based).
        block: usize,
        /// The layer that empties the signal.
        layer: &'static str,
        /// Its input length.
        in_length: usize,
    },
    /// The low-pass cutoff is not below the Nyquist frequency of the rate it runs at.
    #[error("low-pass cutoff {cutoff_hz} Hz is not below the Nyquist frequency {nyquist_hz} Hz")]
    CutoffAboveNyquist {
        /// The cutoff.
        cutoff_hz: f64,
        /// Half the input sampling rate.
        nyquist_hz: f64,
    },
    /// The example window holds no sample at this rate.
    #[error("the example window holds no sample at {fs_hz} Hz")]
    EmptyWindow {
        /// The ADC rate.
        fs_hz: f64,
    },
    /// The sampling rate given to the preprocessing is not a positive number.
    #[error("sampling rate {fs_hz} Hz is not a positive number")]
    BadSampleRate {
        /// The rate.
        fs_hz: f64,
    },
    /// The preprocessing genes make a pipeline the firmware cannot run (an even filter or
    /// moving-average length, an empty window).
    #[error("preprocessing: {0}")]
    Pipeline(ecgnas_firmware::preprocess::PreprocessError),
}
