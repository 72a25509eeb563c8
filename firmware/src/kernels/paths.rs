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

/// The work a layer's code path does, in the units the cost model prices (each unit's
/// instructions are a coefficient of the kind's table): `a * macs + b * outputs + c * inputs +
/// d + e * extra`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PathWork {
    /// Multiply-accumulates executed, padding and rounding included.
    pub macs: usize,
    /// Output values computed (the DSP convolution path computes whole 2 x 2 blocks).
    pub outputs: usize,
    /// Input values read or expanded.
    pub inputs: usize,
    /// The path's further work (see [`conv1d_work`] and [`depthwise_work`]).
    pub extra: usize,
}

/// Instruction weights of the DSP convolution path's slower loops relative to its faster ones,
/// measured on QEMU. A band row whose channels are not a multiple of 4 is expanded element by
/// element, 5 times a word of an aligned row. In units of a filter word cleared (1), the
/// expansion of one group of four weights for one channel takes 2 through `expand_groups` (a
/// dense filter of aligned channels) and 9 through the generic loop (a dilated filter or
/// unaligned channels, which are cleared first); each pair of output channels of each band
/// has 120 of set-up.
const SLOW_ROW_WEIGHT: usize = 5;
const FAST_GROUP_UNITS: usize = 2;
const SLOW_GROUP_UNITS: usize = 9;
const PAIR_SETUP_UNITS: usize = 120;

/// The work of a convolution for `out_len` output steps, by its path:
///
/// - the DSP path: `SMLAD` lanes of the 2 positions x 2 channels blocks (each a loop of passes
///   over 16 values of the window, channels rounded up to 4, a dilated filter as a dense one
///   over its span), the blocks' outputs, the band rows it expands (each band re-expands the
///   rows its windows share with the next; unaligned rows weighted, see `SLOW_ROW_WEIGHT`),
///   and as extra the filters it expands once per band and pair of output channels with their
///   set-up;
/// - the one-input-channel path: its pairs of taps (rounded up to an even count), outputs,
///   the pair words it builds from the input, and as extra the output positions (each one
///   loop over the blocks of channels);
/// - the scalar loop: the taps inside the input, outputs, inputs, and as extra every
///   `(position, channel, tap)` the loop visits (padding taps included).
pub fn conv1d_work(p: &Conv1dParams, out_len: usize) -> PathWork {
    let outputs = out_len.saturating_mul(p.out_channels);
    let inputs = p.length.saturating_mul(p.in_channels);
    match conv1d_path(p) {
        KernelPath::ConvSingle => PathWork {
            macs: outputs.saturating_mul(2 * p.kernel.div_ceil(2).next_multiple_of(2)),
            outputs,
            inputs: conv_single_pair_words(p, out_len),
            extra: out_len,
        },
        KernelPath::ConvDsp => conv_dsp_work(p, out_len),
        _ => PathWork {
            macs: in_bounds_taps(p.length, p.kernel, p.stride, p.dilation, p.padding, out_len)
                .saturating_mul(p.out_channels)
                .saturating_mul(p.in_channels),
            outputs,
            inputs,
            extra: outputs.saturating_mul(p.kernel),
        },
    }
}

/// The pair words the one-input-channel path builds for `out_len` output steps, chunk by
/// chunk as `conv1d`'s `single` module runs it (each chunk also builds the words its last
/// windows reach past its positions).
fn conv_single_pair_words(p: &Conv1dParams, out_len: usize) -> usize {
    let pairs = p.kernel.div_ceil(2).next_multiple_of(2);
    let phases = p.dilation.saturating_mul(2).max(1);
    let row = 160 / phases;
    let stride = p.stride.max(1);
    let chunk = phases.saturating_mul(row.saturating_sub(pairs)) / stride + 1;
    let mut words = 0usize;
    let mut first = 0usize;
    while first < out_len {
        let positions = chunk.min(out_len - first);
        let need = (positions - 1)
            .saturating_mul(stride)
            .saturating_add(phases.saturating_mul(pairs))
            .min(phases.saturating_mul(row));
        words = words.saturating_add(need);
        first += positions;
    }
    words
}

/// [`conv1d_work`] on the DSP path, band by band as `conv1d`'s `fast` module runs it.
fn conv_dsp_work(p: &Conv1dParams, out_len: usize) -> PathWork {
    let cin_p = p.in_channels.next_multiple_of(4);
    let span = p.kernel.saturating_sub(1).saturating_mul(p.dilation) + 1;
    let groups = span.saturating_mul(cin_p) / 4;
    let w_words = groups.div_ceil(4).saturating_mul(16);
    let passes = w_words / 16;
    let row_words = (cin_p / 2).max(1);
    let rows = (544 - 8) / row_words;
    let stride = p.stride.max(1);
    let band_positions = ((rows.saturating_sub(span) / stride + 1) & !1).max(2);
    let pairs = p.out_channels.div_ceil(2);
    let pad = p.padding.amount(p.kernel, p.dilation);
    let aligned = p.in_channels % 4 == 0;
    // Per pair of channels and band: the two filters' expansion and the pair's set-up.
    let filters = if aligned && p.dilation == 1 {
        2 * FAST_GROUP_UNITS * groups
    } else {
        w_words + 2 * SLOW_GROUP_UNITS * p.kernel.saturating_mul(p.in_channels.div_ceil(4))
    } + PAIR_SETUP_UNITS;
    let mut work = PathWork::default();
    let mut first = 0usize;
    while first < out_len {
        let positions = band_positions.min(out_len - first);
        let blocks = positions.div_ceil(2).saturating_mul(pairs);
        work.macs = work
            .macs
            .saturating_add(blocks.saturating_mul(passes).saturating_mul(64));
        work.outputs = work.outputs.saturating_add(4 * blocks);
        // Rows `first * stride..` of the padded input; those inside it are the input's.
        let lo = first.saturating_mul(stride);
        let band_rows = (positions - 1).saturating_mul(stride).saturating_add(span);
        let hi = lo.saturating_add(band_rows);
        let real = hi
            .min(pad.saturating_add(p.length))
            .saturating_sub(lo.max(pad));
        let weight = if aligned { 1 } else { SLOW_ROW_WEIGHT };
        let rows_priced = (band_rows - real).saturating_add(weight.saturating_mul(real));
        work.inputs = work
            .inputs
            .saturating_add(rows_priced.saturating_mul(row_words));
        work.extra = work.extra.saturating_add(pairs.saturating_mul(filters));
        first += positions;
    }
    work
}

/// The work of a depthwise convolution for `out_len` output steps, by its path: on the DSP
/// path the pairs of taps (an odd kernel gets a zero tap), outputs, the padded column steps it
/// expands per channel, and as extra the channels (each packs its taps and constants); on the
/// scalar loop the taps inside the input, outputs, inputs, and as extra every
/// `(position, channel, tap)` the loop visits.
pub fn depthwise_work(p: &Depthwise1dParams, out_len: usize) -> PathWork {
    let outputs = out_len.saturating_mul(p.channels);
    match depthwise_path(p) {
        KernelPath::DepthwiseDsp => {
            let pad = p.padding.amount(p.kernel, 1);
            PathWork {
                macs: outputs.saturating_mul(2 * p.kernel.div_ceil(2)),
                outputs,
                inputs: p.channels.saturating_mul(p.length + 2 * pad + 2),
                extra: p.channels,
            }
        }
        _ => PathWork {
            macs: in_bounds_taps(p.length, p.kernel, p.stride, p.dilation, p.padding, out_len)
                .saturating_mul(p.channels),
            outputs,
            inputs: p.length.saturating_mul(p.channels),
            extra: outputs.saturating_mul(p.kernel),
        },
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::{Clamp, Padding};

    fn conv(length: usize, cin: usize, cout: usize, kernel: usize) -> Conv1dParams {
        Conv1dParams {
            length,
            in_channels: cin,
            out_channels: cout,
            kernel,
            stride: 1,
            dilation: 1,
            padding: Padding::Same,
            input_offset: 0,
            output_offset: 0,
            clamp: Clamp::NONE,
        }
    }

    #[test]
    fn dsp_conv_work_counts_blocks_passes_band_rows_and_filters() {
        // 4 -> 4 channels, k3, 10 steps: one band of 10 positions, 5 x 2 blocks of one pass.
        let p = conv(10, 4, 4, 3);
        assert_eq!(conv1d_path(&p), KernelPath::ConvDsp);
        let w = conv1d_work(&p, 10);
        assert_eq!(w.macs, 10 * 64);
        assert_eq!(w.outputs, 40);
        // 12 band rows of 2 words, 2 of them padding.
        assert_eq!(w.inputs, 24);
        assert_eq!(w.extra, 2 * (2 * FAST_GROUP_UNITS * 3 + PAIR_SETUP_UNITS));
        // One output step still computes a block of two positions.
        assert_eq!(conv1d_work(&conv(1, 4, 4, 3), 1).macs, 2 * 64);
        // Unaligned channels: each input row weighs more, padding rows do not.
        let w2 = conv1d_work(&conv(10, 2, 4, 3), 10);
        assert_eq!(w2.inputs, (2 + SLOW_ROW_WEIGHT * 10) * 2);
    }

    #[test]
    fn single_channel_work_counts_the_pair_words_built() {
        let p = conv(100, 1, 8, 5);
        assert_eq!(conv1d_path(&p), KernelPath::ConvSingle);
        let w = conv1d_work(&p, 100);
        assert_eq!(w.macs, 800 * 8);
        assert_eq!(w.inputs, 99 + 2 * 4);
        assert_eq!(w.extra, 100);
    }

    #[test]
    fn scalar_depthwise_work_counts_every_visited_tap() {
        let p = Depthwise1dParams {
            length: 8,
            channels: 3,
            kernel: 3,
            stride: 1,
            dilation: 4,
            padding: Padding::Same,
            input_offset: 0,
            output_offset: 0,
            clamp: Clamp::NONE,
        };
        assert_eq!(depthwise_path(&p), KernelPath::Scalar);
        let w = depthwise_work(&p, 8);
        assert_eq!(w.extra, 8 * 3 * 3);
        // Taps at t - 4, t, t + 4: 4 + 8 + 4 inside the 8 steps.
        assert_eq!(w.macs, 16 * 3);
    }
}
