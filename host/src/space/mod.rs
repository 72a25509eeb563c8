//! The search space: what a candidate pipeline is, and which candidates are valid.
//!
//! Pure data: no candle, no I/O except [`SearchSpace::load`] reading a user's space file.
//! A [`Candidate`] is one preprocessing chain and one network; a [`SearchSpace`] lists the
//! allowed choices of every gene ([`SearchSpace::default_for`] builds the default one of a task
//! from a [`TaskShape`]). Strategies see the space as a fixed-length sequence of decisions
//! ([`SearchSpace::decisions`], [`SearchSpace::decode`], [`SearchSpace::encode`]), or through
//! [`SearchSpace::sample`] and [`SearchSpace::mutate`]. Every gene is one the int8 firmware
//! implements and ONNX expresses.
//!
//! # The preprocessing, in the order it runs
//!
//! At the ADC rate `fs` (see [`Preprocessing::pipeline_shape`] for every sample count):
//! 1. **window**: `round(length_s * fs)` samples, or for a beat `round(pre_s * fs)` samples
//!    before the fiducial sample and `round(post_s * fs)` from it on;
//! 2. **band**: the FIR low-pass of [`fir_lowpass`] at `fs`, a "same" convolution whose ends
//!    repeat the edge sample (it doubles as the anti-alias filter of step 3);
//! 3. **decimation** by `d`: keep samples `0, d, 2d, ...`, `ceil(n / d)` of them, at `fs / d`;
//! 4. **baseline**: subtract the centred moving average of `m` samples (odd), ends repeating
//!    the edge sample;
//! 5. **normalisation**: per-window z-score or max-abs (epsilon 1e-6).
//!
//! A beat candidate with `rr_intervals` also feeds [`RR_SIDE_INPUTS`] values to the head.
//!
//! # The network, and the one length formula
//!
//! Every convolution pads `pad = dilation * (kernel - 1) / 2` zeros at each end ("same"
//! padding; kernels are odd, so it is exact) and its output length is
//!
//! ```text
//! out = floor((L + 2 * pad - dilation * (kernel - 1) - 1) / stride) + 1
//! ```
//!
//! which for odd kernels is `floor((L - 1) / stride) + 1`. Pooling has window 2, stride 2 and no
//! padding: `out = floor(L / 2)` (ONNX `ceil_mode = 0`). The candle network, the ONNX export and
//! the firmware use exactly this ([`same_padding`], [`conv_out_len`], [`pool_out_len`],
//! [`Candidate::layer_shapes`]); a candidate whose length reaches 0 is invalid on that input.
//!
//! A block is, with `act` its activation:
//! - standard: `conv(k, s, d)` from `c_in` to `c_out` channels;
//! - depthwise-separable: depthwise `conv(k, s, d, groups = c_in)`, `act`, then pointwise
//!   `conv(1)` to `c_out`;
//! - without skip, `act` follows; with skip the block computes `act(main(x) + shortcut(x))`,
//!   where the shortcut is the identity when `c_in == c_out` and `s == 1`, and otherwise a
//!   1x1 projection `conv(1, s)` (no padding, no activation) from `c_in` to `c_out`. Its length
//!   `floor((L - 1) / s) + 1` always equals the main path's, so a skip is valid in every block
//!   (ResNet's option B): the search never has to reject one;
//! - then the pooling, if any.
//!
//! The head: global average pool over time (length 1), the RR side inputs appended when
//! present, an optional hidden dense layer with ReLU, and the output dense layer with sigmoid
//! (multi-label tasks) or softmax (single-label tasks).
//!
//! # The JSON form
//!
//! Types use `snake_case` names and reject unknown fields; a space file carries
//! `"version": 1` ([`SPACE_VERSION`]). A candidate looks like
//! `{"preprocessing": {"window": {"fixed": {"length_s": 10.0}}, "band": "none", ...},
//! "architecture": {"blocks": [...], "head": {...}}}`; its [`Candidate::id`] hashes the
//! compact form.

mod choices;
mod decisions;
mod describe;
mod error;
mod genes;
mod hand_designed;
mod preprocess;
mod sample;
mod shape;
#[cfg(test)]
mod tests;

pub use choices::{
    ArchitectureSpace, BlockSpace, HeadSpace, PreprocessingSpace, SearchSpace, TaskShape,
    WindowKind, WindowSpace, SPACE_VERSION,
};
pub use decisions::{Decision, DecisionKind, Gene};
pub use error::SpaceError;
pub use genes::{
    Activation, Architecture, Band, Baseline, Block, Candidate, ConvKind, Head, Normalisation,
    OutputActivation, Pool, Preprocessing, Window,
};
pub use hand_designed::{Family, HandDesigned, HandDesignedError};
pub use preprocess::{fir_lowpass, PipelineShape};
pub use shape::{
    conv_out_len, pool_out_len, same_padding, ConvRole, LayerOp, LayerShape, RR_SIDE_INPUTS,
};
