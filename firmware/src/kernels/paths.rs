//! Which code each kernel call runs on a core with the DSP extension (the `dsp` feature on
//! `target_arch = "arm"`): the DSP paths bound their stack buffers (see
//! [`crate::kernels::DSP_STACK_BYTES`]) and leave shapes that do not fit to the scalar loops.
//! Compiled everywhere, so that the host's cost model prices each layer by the code the device
//! will run. The conditions are those of the paths' own plans in `conv1d.rs`,
//! `depthwise1d.rs` and `dense.rs`.

use super::conv1d::Conv1dParams;
use super::dense::DenseParams;
use super::depthwise1d::Depthwise1dParams;

/// The implementation a layer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelPath {
    /// The one-input-channel convolution path (pairs of taps).
    ConvSingle,
    /// The general DSP convolution path (2 positions x 2 channels per `SMLAD` loop).
    ConvDsp,
    /// The DSP depthwise path.
    DepthwiseDsp,
    /// The DSP dense path.
    DenseDsp,
    /// The portable scalar loop.
    Scalar,
}

/// The path of a convolution.
pub fn conv1d_path(p: &Conv1dParams) -> KernelPath {
    if conv_single_fits(p) {
        KernelPath::ConvSingle
    } else if conv_fast_fits(p) {
        KernelPath::ConvDsp
    } else {
        KernelPath::Scalar
    }
}

fn conv_single_fits(p: &Conv1dParams) -> bool {
    // 16 blocks of 4 channels, 8 pairs of taps, 160 pair words.
    if p.in_channels != 1 || p.out_channels > 64 || p.kernel == 0 {
        return false;
    }
    let pairs = p.kernel.div_ceil(2).next_multiple_of(2);
    let Some(phases) = p.dilation.checked_mul(2) else {
        return false;
    };
    if phases == 0 {
        return false;
    }
    let row = 160 / phases;
    pairs <= 8 && row > pairs
}

fn conv_fast_fits(p: &Conv1dParams) -> bool {
    // A 544-word input band (8 words of slack), two expanded filters of at most 832 words.
    let Some(cin_p) = p.in_channels.checked_next_multiple_of(4) else {
        return false;
    };
    if cin_p == 0 || p.kernel == 0 {
        return false;
    }
    let Some(span) = (p.kernel - 1).checked_mul(p.dilation).map(|s| s + 1) else {
        return false;
    };
    let Some(groups) = span.checked_mul(cin_p).map(|g| g / 4) else {
        return false;
    };
    let Some(w_words) = groups.div_ceil(4).checked_mul(16) else {
        return false;
    };
    let rows = (544 - 8) / (cin_p / 2);
    w_words <= 832 && span.checked_add(p.stride).is_some_and(|need| rows >= need)
}

/// The path of a depthwise convolution.
pub fn depthwise_path(p: &Depthwise1dParams) -> KernelPath {
    let pad = p.padding.amount(p.kernel, 1);
    let fits = p.dilation == 1
        && p.kernel.div_ceil(2) <= 8
        && p.length
            .checked_add(2 * pad + 2)
            .is_some_and(|steps| steps <= 896);
    if fits {
        KernelPath::DepthwiseDsp
    } else {
        KernelPath::Scalar
    }
}

/// The path of a dense layer.
pub fn dense_path(p: &DenseParams) -> KernelPath {
    if p.in_features / 4 * 2 <= 896 {
        KernelPath::DenseDsp
    } else {
        KernelPath::Scalar
    }
}

/// Multiply-accumulates a convolution's path executes for `out_len` output steps: the DSP
/// path runs a dilated filter as a dense one over its span, with the input channels rounded
/// up to 4; the one-input-channel path rounds the taps up to an even number of pairs; the
/// scalar loop runs the taps themselves. What the cost model prices, where `macs` counts the
/// network's own multiply-accumulates.
pub fn conv1d_executed_macs(p: &Conv1dParams, out_len: usize) -> usize {
    let outputs = out_len.saturating_mul(p.out_channels);
    match conv1d_path(p) {
        KernelPath::ConvSingle => {
            outputs.saturating_mul(2 * p.kernel.div_ceil(2).next_multiple_of(2))
        }
        KernelPath::ConvDsp => {
            let span = p.kernel.saturating_sub(1).saturating_mul(p.dilation) + 1;
            let cin_p = p.in_channels.next_multiple_of(4);
            outputs.saturating_mul(span).saturating_mul(cin_p)
        }
        _ => in_bounds_taps(p.length, p.kernel, p.stride, p.dilation, p.padding, out_len)
            .saturating_mul(p.out_channels)
            .saturating_mul(p.in_channels),
    }
}

/// Multiply-accumulates a depthwise convolution's path executes for `out_len` output steps:
/// every tap on the DSP path (it pads its columns), only the taps inside the input on the
/// scalar loop.
pub fn depthwise_executed_macs(p: &Depthwise1dParams, out_len: usize) -> usize {
    match depthwise_path(p) {
        KernelPath::DepthwiseDsp => out_len.saturating_mul(p.channels).saturating_mul(p.kernel),
        _ => in_bounds_taps(p.length, p.kernel, p.stride, p.dilation, p.padding, out_len)
            .saturating_mul(p.channels),
    }
}

/// Over all `out_len` output steps, the taps that fall inside an input of `length` steps (the
/// scalar loops skip the padding).
fn in_bounds_taps(
    length: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    padding: super::Padding,
    out_len: usize,
) -> usize {
    let pad = padding.amount(kernel, dilation);
    let mut taps = 0usize;
    for j in 0..out_len {
        for t in 0..kernel {
            let at = j
                .saturating_mul(stride)
                .saturating_add(t.saturating_mul(dilation));
            if at >= pad && at - pad < length {
                taps += 1;
            }
        }
    }
    taps
}

/// Words of filter the DSP convolution path expands to int16 for `out_len` output steps (each
/// pair of output channels' filters once per band of input rows), or packs once (the
/// one-input-channel path); 0 on the scalar loop. The second cost of those paths, beside
/// their MACs.
pub fn conv1d_filter_expansion(p: &Conv1dParams, out_len: usize) -> usize {
    match conv1d_path(p) {
        KernelPath::ConvSingle => p
            .out_channels
            .saturating_mul(2 * p.kernel.div_ceil(2).next_multiple_of(2)),
        KernelPath::ConvDsp => {
            let cin_p = p.in_channels.next_multiple_of(4);
            let span = p.kernel.saturating_sub(1).saturating_mul(p.dilation) + 1;
            let rows = (544 - 8) / (cin_p / 2).max(1);
            let band_positions = (((rows.saturating_sub(span)) / p.stride.max(1) + 1) & !1).max(2);
            let bands = out_len.div_ceil(band_positions);
            p.out_channels
                .next_multiple_of(2)
                .saturating_mul(span)
                .saturating_mul(cin_p)
                .saturating_mul(bands)
        }
        _ => 0,
    }
}
