//! The genes: one candidate pipeline, from the raw ADC window to the class scores.
//!
//! Every gene is something the int8 firmware implements and ONNX expresses; each type says what
//! it computes, why it is there and what it costs on the chip. Shapes and the exact arithmetic of
//! padding are in [`super::shape`] and the module docs of [`super`].

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One point of the search space: a preprocessing chain and a network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct Candidate {
    /// What is done to the ADC samples before the network sees them.
    pub preprocessing: Preprocessing,
    /// The network.
    pub architecture: Architecture,
}

impl Candidate {
    /// The canonical JSON form: compact, fields in declaration order. Its hash is [`Self::id`].
    pub fn canonical_json(&self) -> String {
        // Serialising structs of numbers, booleans and enums into a String cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A stable short name: the first 12 hex digits of the SHA-256 of [`Self::canonical_json`].
    ///
    /// Equal candidates have equal ids on every machine and in every run, so the search
    /// deduplicates by id and the trial store keys trials by it.
    pub fn id(&self) -> String {
        let digest = Sha256::digest(self.canonical_json().as_bytes());
        digest
            .iter()
            .take(6)
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }
}

/// The preprocessing genes, applied in the order of the fields (see the module docs of
/// [`super`]): window, low-pass, decimation, baseline removal, normalisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct Preprocessing {
    /// Which samples form one example.
    pub window: Window,
    /// Band limiting at the ADC rate, before decimation (it is also the anti-alias filter).
    pub band: Band,
    /// Keep every `decimation`-th sample (1, 2 or 4): the network runs at `fs / decimation`.
    /// Fewer samples mean fewer MACs and less SRAM in every layer; without a low-pass the
    /// decimated signal aliases, which the search may accept or not.
    pub decimation: usize,
    /// Baseline wander removal at the decimated rate.
    pub baseline: Baseline,
    /// Amplitude normalisation of each window, last.
    pub normalisation: Normalisation,
}

/// What one example is: a fixed window (rhythm tasks) or a beat around its fiducial point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Window {
    /// A window of `length_s` seconds (`round(length_s * fs)` samples at the ADC rate).
    /// Longer windows see more beats (AF needs several RR intervals) and cost linearly more.
    Fixed {
        /// Window length in seconds.
        length_s: f64,
    },
    /// `round(pre_s * fs)` samples before the annotated fiducial sample and `round(post_s * fs)`
    /// from it on (the fiducial is the first "post" sample).
    Beat {
        /// Seconds before the fiducial point.
        pre_s: f64,
        /// Seconds from the fiducial point on.
        post_s: f64,
        /// Feed three RR side inputs to the head: previous RR, next RR and the mean of the
        /// last 10 RR, each divided by the record's mean RR (benchmark definitions 1.2). They
        /// are concatenated to the global-average-pooled features; 3 more inputs to the head.
        rr_intervals: bool,
    },
}

/// Band limiting: a linear-phase FIR low-pass (no IIR: ONNX expresses a FIR as a convolution,
/// and the firmware runs it with the conv1d kernel).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Band {
    /// No filter.
    None,
    /// Hamming-windowed sinc low-pass, unit DC gain ([`super::fir_lowpass`] gives the taps).
    /// Removes EMG and mains noise; costs `taps / decimation` MACs per ADC sample when only the
    /// kept outputs are computed, and `taps` samples of history.
    LowPass {
        /// Cutoff (-6 dB point) in Hz; must be below half the ADC rate.
        cutoff_hz: f64,
        /// Number of taps, odd (3..=255), so the delay `(taps - 1) / 2` is a whole sample.
        taps: usize,
    },
}

/// Baseline wander removal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Baseline {
    /// Leave the baseline.
    None,
    /// Subtract a centred moving average of `window_s` seconds (an odd number of samples at
    /// the decimated rate, see [`super::PipelineShape`]); removes wander below about
    /// `1 / window_s` Hz. A running sum makes it 2 adds per sample whatever the window.
    MovingAverage {
        /// Averaging window in seconds.
        window_s: f64,
    },
}

/// Per-window amplitude normalisation (the gain of a wearable's front end varies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Normalisation {
    /// Leave the amplitude (mV).
    None,
    /// `(x - mean) / max(std, 1e-6)` over the window (population std).
    ZScore,
    /// `x / max(max |x|, 1e-6)` over the window.
    MaxAbs,
}

/// The network: convolution blocks, then the head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct Architecture {
    /// The blocks, input first (1 to 8).
    pub blocks: Vec<Block>,
    /// Global average pool and dense layers.
    pub head: Head,
}

/// One convolution block (the layers it expands to are listed in the module docs of [`super`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct Block {
    /// Standard or depthwise-separable convolution.
    pub kind: ConvKind,
    /// Output channels (4..=64).
    pub channels: usize,
    /// Kernel size, odd (3..=15).
    pub kernel: usize,
    /// Stride (1, 2, 4): divides the length, and the cost of every later layer.
    pub stride: usize,
    /// Dilation (1, 2, 4): widens the receptive field at no cost in MACs.
    pub dilation: usize,
    /// The block's activation.
    pub activation: Activation,
    /// Residual shortcut: identity when the shapes agree, else a 1x1 projection.
    pub skip: bool,
    /// Pooling after the block.
    pub pool: Pool,
}

/// The convolution of a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ConvKind {
    /// One conv1d, `c_in * c_out * k` weights and MACs per output sample.
    Standard,
    /// Depthwise conv1d (`c_in * k`) then pointwise 1x1 (`c_in * c_out`): MobileNet's
    /// factorisation, far cheaper for wide layers.
    DepthwiseSeparable,
}

/// Hidden activations (both are a clamp in int8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Activation {
    /// `max(x, 0)`.
    Relu,
    /// `min(max(x, 0), 6)`: a bounded range that quantises well.
    Relu6,
}

/// Pooling after a block: window 2, stride 2, no padding, so `out = floor(len / 2)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Pool {
    /// No pooling.
    None,
    /// Maximum of each pair.
    Max2,
    /// Mean of each pair.
    Avg2,
}

/// The head: global average pool over time, optional hidden dense layer (ReLU), output layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct Head {
    /// Units of the hidden dense layer (ReLU), or none.
    pub hidden: Option<usize>,
    /// Output units: the task's number of classes.
    pub outputs: usize,
    /// The output activation, fixed by the task.
    pub output: OutputActivation,
}

/// The output activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum OutputActivation {
    /// Independent sigmoids: multi-label tasks.
    Sigmoid,
    /// One softmax: single-label tasks.
    Softmax,
}
