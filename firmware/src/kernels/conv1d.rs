//! Standard 1-D convolution, int8 in and out, per-channel requantisation (TFLM's
//! `ConvPerChannel` with H = 1, CMSIS-NN's `arm_convolve_s8`).
//!
//! Layouts: input `[length][in_channels]`, weights `[out_channels][kernel][in_channels]`, bias
//! `[out_channels]`, output `[out_length][out_channels]`. Per output `(t, o)`:
//! `acc = bias[o] + sum_{k, c} w[o][k][c] * (x[t * stride + k * dilation - pad][c] + input_offset)`
//! over in-bounds taps (a padded tap holds the input zero point, so it adds 0), then
//! `y = clamp(requantize(acc, m[o], s[o]) + output_offset)`.
//!
//! Paths: [`conv1d`] is the entry point; it validates everything once and dispatches: on a
//! Cortex-M with the DSP extension (`target_arch = "arm"`, the `dsp` Cargo feature) to the
//! `SMLAD` path of the private `fast` module, elsewhere (and for windows over 320 values once
//! the input channels are rounded up to a multiple of 4, or too long for its input band) to a
//! pointwise (kernel 1) loop or to the general scalar loop. [`conv1d_scalar`] always runs the
//! general loop and is the reference every special case and fast path is tested against, bit
//! for bit (on QEMU by `firmware/app`).

use super::error::Buffer;
use super::error::{KernelError, Param};
use super::params::{
    check_channel_params, check_input_offset, check_len, check_output_offset, checked_product, dot,
    input_row, nonzero, window_output_len, Clamp, Padding, PerChannelQuant,
};
use crate::quant::requantize_to_i8;

/// Shape and quantisation of a standard 1-D convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv1dParams {
    /// Input length in time steps.
    pub length: usize,
    /// Input channels.
    pub in_channels: usize,
    /// Output channels (filters).
    pub out_channels: usize,
    /// Kernel size in time steps (1: pointwise).
    pub kernel: usize,
    /// Step between output positions.
    pub stride: usize,
    /// Spacing of the kernel taps.
    pub dilation: usize,
    /// Padding rule (see [`Padding`]).
    pub padding: Padding,
    /// `-input_zero_point`, in `-127..=128`.
    pub input_offset: i32,
    /// `output_zero_point`, in `-128..=127`.
    pub output_offset: i32,
    /// Fused activation.
    pub clamp: Clamp,
}

impl Conv1dParams {
    /// Output length: `floor((length + 2 * pad - dilation * (kernel - 1) - 1) / stride) + 1`.
    pub fn output_length(&self) -> Result<usize, KernelError> {
        window_output_len(
            self.length,
            self.kernel,
            self.stride,
            self.dilation,
            self.padding,
        )
    }

    /// Elements of the input tensor, `length * in_channels`.
    pub fn input_len(&self) -> Result<usize, KernelError> {
        checked_product(self.length, self.in_channels)
    }

    /// Elements of the weight tensor, `out_channels * kernel * in_channels`.
    pub fn weights_len(&self) -> Result<usize, KernelError> {
        checked_product(
            self.out_channels,
            checked_product(self.kernel, self.in_channels)?,
        )
    }

    /// Elements of the output tensor, `output_length * out_channels`.
    pub fn output_len(&self) -> Result<usize, KernelError> {
        checked_product(self.output_length()?, self.out_channels)
    }

    /// Multiply-accumulates per inference, `output_length * out_channels * kernel * in_channels`
    /// (padded taps included, as cost models count them).
    pub fn macs(&self) -> Result<usize, KernelError> {
        checked_product(
            self.output_len()?,
            checked_product(self.kernel, self.in_channels)?,
        )
    }
}

/// Scratch bytes [`conv1d`] needs in the arena (CMSIS-NN's `*_get_buffer_size` habit): 0. The
/// DSP path keeps its input band and expanded filters in fixed stack buffers instead, within
/// [`crate::kernels::DSP_STACK_BYTES`] of stack, the same for every layer.
pub const fn scratch_len(_params: &Conv1dParams) -> usize {
    0
}

/// The validated geometry the loops run on.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    pad: usize,
}

fn check(
    params: &Conv1dParams,
    quant: &PerChannelQuant<'_>,
    input: &[i8],
    weights: &[i8],
    bias: &[i32],
    output: &[i8],
) -> Result<Geometry, KernelError> {
    nonzero(params.in_channels, Param::InChannels)?;
    nonzero(params.out_channels, Param::OutChannels)?;
    check_input_offset(params.input_offset)?;
    check_output_offset(params.output_offset)?;
    params.clamp.check()?;
    let output_len = params.output_len()?;
    check_len(Buffer::Input, params.input_len()?, input.len())?;
    check_len(Buffer::Weights, params.weights_len()?, weights.len())?;
    check_channel_params(quant, bias, params.out_channels)?;
    check_len(Buffer::Output, output_len, output.len())?;
    Ok(Geometry {
        pad: params.padding.amount(params.kernel, params.dilation),
    })
}

/// Runs the convolution on the best path for this target (the DSP path on a Cortex-M with the
/// DSP extension; elsewhere the pointwise loop when `kernel == 1`, else the general scalar
/// loop); every path gives results identical to [`conv1d_scalar`].
///
/// Errors, before writing anything, on a zero dimension, an offset or clamp out of range, a
/// window longer than the padded input, or any buffer whose length differs from the one the
/// parameters imply.
///
/// ```
/// use ecgnas_firmware::kernels::conv1d::{conv1d, Conv1dParams};
/// use ecgnas_firmware::kernels::{Clamp, Padding, PerChannelQuant};
/// let params = Conv1dParams {
///     length: 4, in_channels: 1, out_channels: 1, kernel: 3, stride: 1, dilation: 1,
///     padding: Padding::Same, input_offset: 0, output_offset: 0, clamp: Clamp::NONE,
/// };
/// // Multiplier 2^30 with shift 1 is a scale of exactly 1.0.
/// let quant = PerChannelQuant { multipliers: &[1 << 30], shifts: &[1] };
/// let mut out = [0i8; 4];
/// conv1d(&params, &quant, &[1, 2, 3, 4], &[1, 1, 1], &[0], &mut out)?;
/// assert_eq!(out, [3, 6, 9, 7]);
/// # Ok::<(), ecgnas_firmware::kernels::KernelError>(())
/// ```
pub fn conv1d(
    params: &Conv1dParams,
    quant: &PerChannelQuant<'_>,
    input: &[i8],
    weights: &[i8],
    bias: &[i32],
    output: &mut [i8],
) -> Result<(), KernelError> {
    let geometry = check(params, quant, input, weights, bias, output)?;
    #[cfg(all(target_arch = "arm", feature = "dsp"))]
    if single::conv(params, geometry, quant, input, weights, bias, output)
        || fast::conv(params, geometry, quant, input, weights, bias, output)
    {
        return Ok(());
    }
    if params.kernel == 1 {
        pointwise_rows(params, quant, input, weights, bias, output);
    } else {
        general_rows(params, geometry, quant, input, weights, bias, output);
    }
    Ok(())
}

/// The general scalar loop for every shape, with no special case: the reference each other
/// path of [`conv1d`] must equal bit for bit. Same contract and errors as [`conv1d`].
pub fn conv1d_scalar(
    params: &Conv1dParams,
    quant: &PerChannelQuant<'_>,
    input: &[i8],
    weights: &[i8],
    bias: &[i32],
    output: &mut [i8],
) -> Result<(), KernelError> {
    let geometry = check(params, quant, input, weights, bias, output)?;
    general_rows(params, geometry, quant, input, weights, bias, output);
    Ok(())
}

/// Any kernel, stride, dilation and padding. Buffers are already checked: `chunks_exact` sizes
/// are non-zero and every row lookup goes through `input_row`, which yields `None` in the
/// padding instead of indexing out of bounds.
fn general_rows(
    params: &Conv1dParams,
    geometry: Geometry,
    quant: &PerChannelQuant<'_>,
    input: &[i8],
    weights: &[i8],
    bias: &[i32],
    output: &mut [i8],
) {
    let in_ch = params.in_channels;
    let filter_len = params.kernel * in_ch;
    let mut start = 0usize;
    for out_row in output.chunks_exact_mut(params.out_channels) {
        let channels = out_row
            .iter_mut()
            .zip(weights.chunks_exact(filter_len))
            .zip(bias)
            .zip(quant.multipliers.iter().zip(quant.shifts));
        for (((y, filter), &b), (&m, &s)) in channels {
            let mut acc = b;
            let mut pos = start;
            for taps in filter.chunks_exact(in_ch) {
                if let Some(x) = input_row(input, pos, geometry.pad, in_ch) {
                    acc = acc.wrapping_add(dot(x, taps, params.input_offset));
                }
                pos = pos.saturating_add(params.dilation);
            }
            *y = requantize_to_i8(
                acc,
                m,
                s,
                params.output_offset,
                params.clamp.min,
                params.clamp.max,
            );
        }
        start = start.saturating_add(params.stride);
    }
}

/// Kernel 1 (pointwise): no padding whatever the rule, each output row is one input row times
/// the `[out_channels][in_channels]` weight matrix.
fn pointwise_rows(
    params: &Conv1dParams,
    quant: &PerChannelQuant<'_>,
    input: &[i8],
    weights: &[i8],
    bias: &[i32],
    output: &mut [i8],
) {
    let rows = input
        .chunks_exact(params.in_channels)
        .step_by(params.stride);
    for (out_row, x) in output.chunks_exact_mut(params.out_channels).zip(rows) {
        let channels = out_row
            .iter_mut()
            .zip(weights.chunks_exact(params.in_channels))
            .zip(bias)
            .zip(quant.multipliers.iter().zip(quant.shifts));
        for (((y, w), &b), (&m, &s)) in channels {
            let acc = b.wrapping_add(dot(x, w, params.input_offset));
            *y = requantize_to_i8(
                acc,
                m,
                s,
                params.output_offset,
                params.clamp.min,
                params.clamp.max,
            );
        }
    }
}

/// The Cortex-M4 DSP path, with bounded stack (5504 bytes of buffers, see
/// [`crate::kernels::DSP_STACK_BYTES`]): the
/// padded input is expanded, a band of rows at a time, to int16 (input offset added, padding
/// rows and the lanes that round each row up to a multiple of 4 channels zero) in the
/// "even/odd" lane order of `SXTB16`; for each pair of output channels the two filters are
/// expanded once per band the same way (a dilated filter with zero rows in its gaps), and each
/// 2 positions x 2 channels block is one `SMLAD` loop straight over the band (the windows are
/// slices of it, no im2col copy), two MACs per `SMLAD`, then the DSP output stage.
#[cfg(all(target_arch = "arm", feature = "dsp"))]
mod fast {
    use super::{Conv1dParams, Geometry, PerChannelQuant};
    use crate::kernels::dsp::{
        dot2x2, expand_groups, load4, pair, sadd16, splat16, unpack4_reordered, ChannelQuant,
        Output,
    };

    /// Words of the input band (2176 bytes).
    const BAND_WORDS: usize = 544;
    /// Words past the last window that the four-group passes may read (times zero weights).
    const SLACK_WORDS: usize = 8;
    /// Words of two expanded filters: windows up to 832 values (3328 bytes).
    const W_WORDS: usize = 832;
    /// Words of the two buffers, the bulk of this path's stack.
    const STACK_WORDS: usize = BAND_WORDS + W_WORDS;
    // The buffers leave room for the frames within the published bound.
    const _: () = assert!(4 * STACK_WORDS + 512 <= crate::kernels::DSP_STACK_BYTES);

    /// Bias and output constants of two channels.
    #[derive(Clone, Copy, Default)]
    struct PairParams {
        bias: [i32; 2],
        q: [ChannelQuant; 2],
    }

    /// The validated sizes of one layer on this path.
    #[derive(Clone, Copy)]
    struct Plan {
        /// Input channels rounded up to a multiple of 4.
        cin_p: usize,
        /// Rows a window spans, `(kernel - 1) * dilation + 1`.
        span: usize,
        /// Words of both expanded filters, 16 per pass of `dot2x2`.
        w_words: usize,
        /// Output positions per band.
        band_positions: usize,
    }

    fn plan(params: &Conv1dParams) -> Option<Plan> {
        let cin_p = params.in_channels.checked_next_multiple_of(4)?;
        let span = (params.kernel - 1).checked_mul(params.dilation)? + 1;
        let groups = span.checked_mul(cin_p)? / 4;
        let w_words = groups.div_ceil(4).checked_mul(16)?;
        let row_words = cin_p / 2;
        let rows = (BAND_WORDS - SLACK_WORDS) / row_words;
        // Two positions at least per band.
        if w_words > W_WORDS || rows < span.checked_add(params.stride)? {
            return None;
        }
        Some(Plan {
            cin_p,
            span,
            w_words,
            // Even, so that no band ends with a lone position.
            band_positions: ((rows - span) / params.stride + 1) & !1,
        })
    }

    /// Runs the convolution if it fits the stack buffers; `false` (nothing written) otherwise.
    /// Buffers are already checked.
    pub(super) fn conv(
        params: &Conv1dParams,
        geometry: Geometry,
        quant: &PerChannelQuant<'_>,
        input: &[i8],
        weights: &[i8],
        bias: &[i32],
        output: &mut [i8],
    ) -> bool {
        match plan(params) {
            Some(plan) => {
                run(
                    (params, geometry, quant, input, weights, bias),
                    plan,
                    output,
                );
                true
            }
            None => false,
        }
    }

    type Args<'a, 'b> = (
        &'a Conv1dParams,
        Geometry,
        &'a PerChannelQuant<'b>,
        &'a [i8],
        &'a [i8],
        &'a [i32],
    );

    #[inline(never)]
    fn run(args: Args<'_, '_>, plan: Plan, output: &mut [i8]) {
        let (params, geometry, quant, input, weights, bias) = args;
        let cout = params.out_channels;
        let stride = params.stride;
        let row_words = plan.cin_p / 2;
        let step = stride * row_words;
        let out = Output::new(quant, params.output_offset, params.clamp);
        let mut band = [0u32; BAND_WORDS];
        let mut wbuf = [0u32; W_WORDS];
        let wbuf = &mut wbuf[..plan.w_words];
        let mut first = 0;
        for rows in output.chunks_mut(plan.band_positions * cout) {
            let positions = rows.len() / cout;
            let band_rows = (positions - 1) * stride + plan.span;
            expand_band(
                &mut band,
                params,
                geometry,
                input,
                first * stride,
                band_rows,
            );
            for o in (0..cout).step_by(2) {
                let p = pair_params(o, cout, quant, bias);
                expand_filters(wbuf, params, plan, weights, o);
                let wbuf = &*wbuf;
                let mut x = &band[..];
                for rows2 in rows.chunks_mut(2 * cout) {
                    let (row0, row1) = rows2.split_at_mut(cout.min(rows2.len()));
                    let x1 = x.get(step..).unwrap_or(&[]);
                    let [a00, a01, a10, a11] = dot2x2(x, x1, wbuf, p.bias);
                    store(row0, o, &out, (a00, a01), &p.q);
                    store(row1, o, &out, (a10, a11), &p.q);
                    x = x1.get(step..).unwrap_or(&[]);
                }
            }
            first += positions;
        }
    }

    fn pair_params(o: usize, cout: usize, quant: &PerChannelQuant<'_>, bias: &[i32]) -> PairParams {
        let mut p = PairParams::default();
        for lane in 0..2 {
            let c = o + lane;
            if let (true, Some(&b), Some(&m), Some(&s)) = (
                c < cout,
                bias.get(c),
                quant.multipliers.get(c),
                quant.shifts.get(c),
            ) {
                p.bias[lane] = b;
                p.q[lane] = ChannelQuant::new(m, s);
            }
        }
        p
    }

    /// Four values (`x[i] + offset`, 0 where `x` is too short) as an even/odd pair of words.
    #[inline(always)]
    fn group(x: &[i8], offset: i32, offset_pair: u32) -> (u32, u32) {
        if let Ok(x) = <&[i8; 4]>::try_from(x) {
            let (even, odd) = unpack4_reordered(load4(x));
            (sadd16(even, offset_pair), sadd16(odd, offset_pair))
        } else {
            let v = |i: usize| x.get(i).map_or(0, |&v| i32::from(v) + offset);
            (pair(v(0), v(2)), pair(v(1), v(3)))
        }
    }

    /// Padded rows `first..first + rows` into the band, `cin_p / 2` words a row.
    fn expand_band(
        band: &mut [u32],
        params: &Conv1dParams,
        geometry: Geometry,
        input: &[i8],
        first: usize,
        rows: usize,
    ) {
        let cin = params.in_channels;
        let row_words = cin.div_ceil(4) * 2;
        let offset = params.input_offset;
        let offset_pair = splat16(offset);
        for (r, dst) in band.chunks_exact_mut(row_words).take(rows).enumerate() {
            let row = (first + r)
                .checked_sub(geometry.pad)
                .filter(|&r| r < params.length)
                .and_then(|r| input.get(r * cin..(r + 1) * cin));
            match row {
                Some(row) if cin % 4 == 0 => {
                    for (words, x) in dst.chunks_exact_mut(2).zip(row.chunks_exact(4)) {
                        let (even, odd) = unpack4_reordered(load4(&[x[0], x[1], x[2], x[3]]));
                        words[0] = sadd16(even, offset_pair);
                        words[1] = sadd16(odd, offset_pair);
                    }
                }
                Some(row) => {
                    for (words, x) in dst.chunks_exact_mut(2).zip(row.chunks(4)) {
                        (words[0], words[1]) = group(x, offset, offset_pair);
                    }
                }
                None => dst.fill(0),
            }
        }
    }

    /// The filters of channels `o` and `o + 1` (zeros for a channel past the last, for the
    /// rows in a dilated filter's gaps and after the last group), four words a group:
    /// `[o even, o odd, o + 1 even, o + 1 odd]`.
    fn expand_filters(
        wbuf: &mut [u32],
        params: &Conv1dParams,
        plan: Plan,
        weights: &[i8],
        o: usize,
    ) {
        let cin = params.in_channels;
        let filter_len = params.kernel * cin;
        let row_groups = plan.cin_p / 4;
        if cin % 4 == 0 && params.dilation == 1 {
            // The filter is its groups in order: no gaps, no padded lanes.
            let groups = filter_len / 4;
            for lane in 0..2 {
                match weights.get((o + lane) * filter_len..(o + lane + 1) * filter_len) {
                    Some(filter) => expand_groups(wbuf, 2 * lane, filter),
                    None => {
                        for words in wbuf.chunks_exact_mut(4).take(groups) {
                            words[2 * lane] = 0;
                            words[2 * lane + 1] = 0;
                        }
                    }
                }
            }
            wbuf.get_mut(4 * groups..).unwrap_or(&mut []).fill(0);
            return;
        }
        wbuf.fill(0);
        for lane in 0..2 {
            let Some(filter) = weights.get((o + lane) * filter_len..(o + lane + 1) * filter_len)
            else {
                continue;
            };
            for (tap, w) in filter.chunks_exact(cin).enumerate() {
                let first = tap * params.dilation * row_groups;
                let dst = wbuf.get_mut(4 * first..).unwrap_or(&mut []);
                for (words, w) in dst.chunks_exact_mut(4).zip(w.chunks(4)) {
                    (words[2 * lane], words[2 * lane + 1]) = group(w, 0, 0);
                }
            }
        }
    }

    /// Channels `o` and `o + 1` of one output row (only `o` when it is the last channel; nothing
    /// for an empty row).
    #[inline(always)]
    fn store(row: &mut [i8], o: usize, out: &Output, acc: (i32, i32), q: &[ChannelQuant; 2]) {
        if let Some(Ok(dst)) = row.get_mut(o..o + 2).map(<&mut [i8; 2]>::try_from) {
            out.store2(acc.0, acc.1, q, dst);
        } else if let Some(dst) = row.get_mut(o) {
            *dst = out.one(acc.0, &q[0]);
        }
    }
}

/// The Cortex-M4 DSP path for one input channel (the first layer of a single-lead model), with
/// bounded stack (3456 bytes of buffers, see [`crate::kernels::DSP_STACK_BYTES`]).
///
/// With `xp` the padded input plus the input offset (0 in the padding), the pair word
/// `P[i] = [xp[i], xp[i + d]]` (dilation `d`) holds taps `2j` and `2j + 1` of every window that
/// has tap `2j` at `i`, so position `t` needs `P[t * stride + 2j * d]` for each pair `j` of
/// taps. The pair words of a chunk of positions are stored phase-split, `2d` rows of index
/// `i mod 2d`, so that each position's pairs are consecutive words. The filters are packed
/// once per call as pairs of taps (an odd kernel gets a zero tap), four channels a block with
/// their biases first, and each position x 4 channels block is one `SMLAD` loop (two MACs per
/// `SMLAD`, one `LDM` of four channels' weights per pair) and one output stage of four
/// channels with a single word store.
#[cfg(all(target_arch = "arm", feature = "dsp"))]
mod single {
    use super::{Conv1dParams, Geometry, PerChannelQuant};
    use crate::kernels::dsp::{conv1x4_blocks, dot1x4, pair, ChannelQuant, Output, STAGE_RIGHT};

    /// Blocks of four output channels: up to 64 channels.
    const MAX_BLOCKS: usize = 16;
    /// Pairs of taps: kernels up to 16.
    const MAX_PAIRS: usize = 8;
    /// Words of one block: four biases, then four words per pair.
    const MAX_BLOCK_WORDS: usize = 4 + 4 * MAX_PAIRS;
    /// Words of the packed filters (2304 bytes).
    const W_WORDS: usize = MAX_BLOCKS * MAX_BLOCK_WORDS;
    /// Words of the output constants, `[b, right]` per channel (512 bytes).
    const Q_WORDS: usize = 8 * MAX_BLOCKS;
    /// Words of the phase-split pair words of a chunk (640 bytes).
    const P_WORDS: usize = 160;
    // The buffers leave room for the frames within the published bound.
    const _: () =
        assert!(4 * (W_WORDS + Q_WORDS + P_WORDS) + 512 <= crate::kernels::DSP_STACK_BYTES);

    /// The validated sizes of one layer on this path.
    #[derive(Clone, Copy)]
    struct Plan {
        /// Pairs of taps, rounded up to an even count.
        pairs: usize,
        /// Phases, `2 * dilation`.
        phases: usize,
        /// Words per phase row.
        row: usize,
        /// Output positions per chunk.
        chunk: usize,
        /// Blocks of four channels.
        blocks: usize,
    }

    fn plan(params: &Conv1dParams) -> Option<Plan> {
        if params.in_channels != 1 || params.out_channels > 4 * MAX_BLOCKS {
            return None;
        }
        let pairs = params.kernel.div_ceil(2).next_multiple_of(2);
        let phases = params.dilation.checked_mul(2)?;
        let row = P_WORDS / phases;
        if pairs > MAX_PAIRS || row <= pairs {
            return None;
        }
        Some(Plan {
            pairs,
            phases,
            row,
            chunk: phases * (row - pairs) / params.stride + 1,
            blocks: params.out_channels.div_ceil(4),
        })
    }

    /// Runs the convolution if it fits this path; `false` (nothing written) otherwise.
    /// Buffers are already checked.
    pub(super) fn conv(
        params: &Conv1dParams,
        geometry: Geometry,
        quant: &PerChannelQuant<'_>,
        input: &[i8],
        weights: &[i8],
        bias: &[i32],
        output: &mut [i8],
    ) -> bool {
        match plan(params) {
            Some(plan) => {
                run(
                    (params, geometry, quant, input, weights, bias),
                    plan,
                    output,
                );
                true
            }
            None => false,
        }
    }

    type Args<'a, 'b> = (
        &'a Conv1dParams,
        Geometry,
        &'a PerChannelQuant<'b>,
        &'a [i8],
        &'a [i8],
        &'a [i32],
    );

    #[inline(never)]
    fn run(args: Args<'_, '_>, plan: Plan, output: &mut [i8]) {
        let (params, geometry, quant, input, weights, bias) = args;
        let cout = params.out_channels;
        let stride = params.stride;
        let block_words = 4 + 4 * plan.pairs;
        let out = Output::new(quant, params.output_offset, params.clamp);
        let mut wbuf = [0u32; W_WORDS];
        pack_filters(&mut wbuf, params, plan, weights, bias);
        let wbuf = &wbuf[..plan.blocks * block_words];
        let mut qbuf = [0u32; Q_WORDS];
        for (q, (&m, &s)) in qbuf
            .chunks_exact_mut(2)
            .zip(quant.multipliers.iter().zip(quant.shifts))
        {
            let c = ChannelQuant::new(m, s);
            q[0] = c.b;
            q[1] = c.right;
        }
        // Blocks of four channels with the single-asm output stage; the rest one by one.
        let fast_blocks = if out.stage == STAGE_RIGHT {
            cout / 4
        } else {
            0
        };
        let (w_rest, q_rest) = (fast_blocks * block_words, 8 * fast_blocks);
        let mut pbuf = [0u32; P_WORDS];
        let mut first = 0;
        for rows in output.chunks_mut(plan.chunk * cout) {
            let positions = rows.len() / cout;
            build_pairs(
                &mut pbuf,
                params,
                geometry,
                plan,
                input,
                first * stride,
                positions,
            );
            let mut offset = 0;
            for row in rows.chunks_exact_mut(cout) {
                let start = (offset % plan.phases) * plan.row + offset / plan.phases;
                let x = pbuf.get(start..).unwrap_or(&[]);
                conv1x4_blocks(x, wbuf, plan.pairs, &qbuf, &out, row, fast_blocks);
                let rest = wbuf
                    .get(w_rest..)
                    .unwrap_or(&[])
                    .chunks_exact(block_words)
                    .zip(
                        row.get_mut(4 * fast_blocks..)
                            .unwrap_or(&mut [])
                            .chunks_mut(4),
                    );
                for (b, (w, dst)) in rest.enumerate() {
                    let acc = dot1x4(x, w, plan.pairs);
                    for (lane, y) in dst.iter_mut().enumerate() {
                        let c = q_rest / 2 + 4 * b + lane;
                        if let (Some(&m), Some(&s)) =
                            (quant.multipliers.get(c), quant.shifts.get(c))
                        {
                            *y = out.one(acc[lane], &ChannelQuant::new(m, s));
                        }
                    }
                }
                offset += stride;
            }
            first += positions;
        }
    }

    /// Block `b` of `wbuf` (all zeros on entry): the biases of channels `4b..4b + 4`, then for
    /// each pair `j` the words `[w[c][2j], w[c][2j + 1]]` of those channels (zero past the
    /// kernel or the last channel).
    fn pack_filters(
        wbuf: &mut [u32],
        params: &Conv1dParams,
        plan: Plan,
        weights: &[i8],
        bias: &[i32],
    ) {
        let block_words = 4 + 4 * plan.pairs;
        let filters = weights.chunks_exact(params.kernel).zip(bias);
        for (o, (filter, &b)) in filters.enumerate() {
            let base = (o / 4) * block_words + o % 4;
            if let Some(word) = wbuf.get_mut(base) {
                *word = b as u32;
            }
            for (i, &w) in filter.iter().enumerate() {
                if let Some(word) = wbuf.get_mut(base + 4 + 4 * (i / 2)) {
                    *word |= u32::from(w as u16) << (16 * (i % 2));
                }
            }
        }
    }

    /// The pair words of the positions `first / stride..` (`positions` of them) from padded
    /// index `first`, phase-split: word `i` of the chunk at `(i % phases) * row + i / phases`.
    fn build_pairs(
        pbuf: &mut [u32],
        params: &Conv1dParams,
        geometry: Geometry,
        plan: Plan,
        input: &[i8],
        first: usize,
        positions: usize,
    ) {
        let d = params.dilation;
        let offset = params.input_offset;
        let xp = |i: usize| {
            i.checked_sub(geometry.pad)
                .and_then(|i| input.get(i))
                .map_or(0, |&v| i32::from(v) + offset)
        };
        let need = ((positions - 1) * params.stride + plan.phases * plan.pairs)
            .min(plan.phases * plan.row);
        for (r, words) in pbuf
            .chunks_exact_mut(plan.row)
            .take(plan.phases)
            .enumerate()
        {
            let mut i = first + r;
            for word in words
                .iter_mut()
                .take((need + plan.phases - 1 - r) / plan.phases)
            {
                *word = pair(xp(i), xp(i + d));
                i += plan.phases;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    const ONE: (i32, i32) = (1 << 30, 1); // scale 1.0

    #[derive(Debug, Clone)]
    struct Case {
        params: Conv1dParams,
        input: Vec<i8>,
        weights: Vec<i8>,
        bias: Vec<i32>,
        multipliers: Vec<i32>,
        shifts: Vec<i32>,
    }

    impl Case {
        fn quant(&self) -> PerChannelQuant<'_> {
            PerChannelQuant {
                multipliers: &self.multipliers,
                shifts: &self.shifts,
            }
        }
    }

    /// Naive i64 loops straight from the definition.
    fn reference(c: &Case) -> Option<Vec<i8>> {
        let p = &c.params;
        let (pad, out_len) = naive_geometry(p.length, p.kernel, p.stride, p.dilation, p.padding)?;
        let mut out = vec![0i8; out_len * p.out_channels];
        for t in 0..out_len {
            for o in 0..p.out_channels {
                let mut acc = i64::from(c.bias[o]);
                for k in 0..p.kernel {
                    let pos = (t * p.stride + k * p.dilation) as i64 - pad;
                    if pos < 0 || pos >= p.length as i64 {
                        continue;
                    }
                    let pos = pos as usize;
                    for ch in 0..p.in_channels {
                        let x = i64::from(c.input[pos * p.in_channels + ch]);
                        let w = i64::from(c.weights[(o * p.kernel + k) * p.in_channels + ch]);
                        acc += (x + i64::from(p.input_offset)) * w;
                    }
                }
                out[t * p.out_channels + o] =
                    naive_output(acc, c.multipliers[o], c.shifts[o], p.output_offset, p.clamp);
            }
        }
        Some(out)
    }

    fn case(kernel: impl Strategy<Value = usize>) -> impl Strategy<Value = Case> {
        (
            1usize..=16,
            1usize..=16,
            1usize..=40,
            kernel,
            1usize..=4,
            1usize..=3,
            padding(),
            input_offset(),
            output_offset(),
            clamp(),
        )
            .prop_flat_map(|(cin, cout, len, k, stride, dil, pad, ioff, ooff, clamp)| {
                let params = Conv1dParams {
                    length: len,
                    in_channels: cin,
                    out_channels: cout,
                    kernel: k,
                    stride,
                    dilation: dil,
                    padding: pad,
                    input_offset: ioff,
                    output_offset: ooff,
                    clamp,
                };
                (
                    Just(params),
                    data(len * cin),
                    data(cout * k * cin),
                    bias(cout),
                    per_channel(cout),
                )
            })
            .prop_map(
                |(params, input, weights, bias, (multipliers, shifts))| Case {
                    params,
                    input,
                    weights,
                    bias,
                    multipliers,
                    shifts,
                },
            )
    }

    type ConvFn = fn(
        &Conv1dParams,
        &PerChannelQuant<'_>,
        &[i8],
        &[i8],
        &[i32],
        &mut [i8],
    ) -> Result<(), KernelError>;

    fn run(c: &Case, f: ConvFn) -> Result<Vec<i8>, KernelError> {
        let mut out = vec![0i8; c.params.output_len()?];
        f(
            &c.params,
            &c.quant(),
            &c.input,
            &c.weights,
            &c.bias,
            &mut out,
        )?;
        Ok(out)
    }

    proptest! {
        #[test]
        fn matches_naive_reference(c in case(1usize..=9)) {
            match reference(&c) {
                Some(expected) => {
                    prop_assert_eq!(run(&c, conv1d), Ok(expected.clone()));
                    prop_assert_eq!(run(&c, conv1d_scalar), Ok(expected));
                }
                None => {
                    let is_too_long = matches!(
                        run(&c, conv1d),
                        Err(KernelError::WindowTooLong { .. })
                    );
                    prop_assert!(is_too_long);
                }
            }
        }

        #[test]
        fn pointwise_path_equals_general_path(c in case(Just(1usize))) {
            let mut general = vec![0i8; c.params.output_len().unwrap()];
            let mut pointwise = general.clone();
            let q = c.quant();
            let g = check(&c.params, &q, &c.input, &c.weights, &c.bias, &general).unwrap();
            general_rows(&c.params, g, &q, &c.input, &c.weights, &c.bias, &mut general);
            pointwise_rows(&c.params, &q, &c.input, &c.weights, &c.bias, &mut pointwise);
            prop_assert_eq!(&pointwise, &general);
            prop_assert_eq!(Some(general), reference(&c));
        }

        #[test]
        fn wrong_lengths_are_errors(c in case(1usize..=9), delta in 1usize..3, which in 0usize..6) {
            prop_assume!(reference(&c).is_some());
            let mut c = c;
            let mut out_len = c.params.output_len().unwrap();
            match which {
                0 => c.input.resize(c.input.len() + delta, 0),
                1 => c.weights.truncate(c.weights.len().saturating_sub(delta)),
                2 => c.bias.push(0),
                3 => { c.multipliers.pop(); }
                4 => c.shifts.push(0),
                _ => out_len += delta,
            }
            let mut out = vec![7i8; out_len];
            let result = conv1d(&c.params, &c.quant(), &c.input, &c.weights, &c.bias, &mut out);
            let is_len_error = matches!(result, Err(KernelError::BufferLen { .. }));
            prop_assert!(is_len_error);
            prop_assert!(out.iter().all(|&v| v == 7), "output written on error");
        }
    }

    fn small(kernel: usize, stride: usize, dilation: usize, input_offset: i32) -> Conv1dParams {
        Conv1dParams {
            length: 4,
            in_channels: 1,
            out_channels: 1,
            kernel,
            stride,
            dilation,
            padding: Padding::Same,
            input_offset,
            output_offset: 0,
            clamp: Clamp::NONE,
        }
    }

    fn run_small(p: &Conv1dParams, weights: &[i8], bias: i32, m: (i32, i32)) -> Vec<i8> {
        let quant = PerChannelQuant {
            multipliers: &[m.0],
            shifts: &[m.1],
        };
        let mut out = vec![0i8; p.output_len().unwrap()];
        conv1d(p, &quant, &[1, 2, 3, 4], weights, &[bias], &mut out).unwrap();
        out
    }

    #[test]
    fn hand_computed_box_filter() {
        // Zero point 0: [0+1+2, 1+2+3, 2+3+4, 3+4+0].
        assert_eq!(
            run_small(&small(3, 1, 1, 0), &[1, 1, 1], 0, ONE),
            [3, 6, 9, 7]
        );
        // Zero point 1 (offset -1): the padding holds the zero point and adds nothing;
        // x - 1 = [0, 1, 2, 3] gives [0+0+1, 0+1+2, 1+2+3, 2+3+0].
        assert_eq!(
            run_small(&small(3, 1, 1, -1), &[1, 1, 1], 0, ONE),
            [1, 3, 6, 5]
        );
        // Stride 2: windows start at padded 0 and 2.
        assert_eq!(run_small(&small(3, 2, 1, -1), &[1, 1, 1], 0, ONE), [1, 6]);
        // Dilation 2: pad 2, taps t-2, t, t+2 -> [0+2, 1+3, 0+2, 1+3].
        assert_eq!(
            run_small(&small(3, 1, 2, -1), &[1, 1, 1], 0, ONE),
            [2, 4, 2, 4]
        );
        // Bias 10 and weights [1, -2, 3] on x - 1 = [0, 1, 2, 3]:
        // t0: 0*1... = -2*0 + 3*1 = 3; t1: 0 - 2 + 6 = 4; t2: 1 - 4 + 9 = 6; t3: 2 - 6 + 0 = -4.
        assert_eq!(
            run_small(&small(3, 1, 1, -1), &[1, -2, 3], 10, ONE),
            [13, 14, 16, 6]
        );
    }

    #[test]
    fn hand_computed_requantisation_and_clamps() {
        // Scale 0.5 (2^30, shift 0): 3/2 -> 2, 9/2 -> 5, 7/2 -> 4.
        assert_eq!(
            run_small(&small(3, 1, 1, 0), &[1, 1, 1], 0, (1 << 30, 0)),
            [2, 3, 5, 4]
        );
        // Negative: the halving happens in the doubling high multiply, which rounds half toward
        // +inf: -3/2 -> -1, -9/2 -> -4, -7/2 -> -3.
        assert_eq!(
            run_small(&small(3, 1, 1, 0), &[-1, -1, -1], 0, (1 << 30, 0)),
            [-1, -3, -4, -3]
        );
        // Scale 0.25 (2^30, shift -1): the last halving is the rounding shift, half away from
        // zero: -3/4 -> -1, -6/4 = -1.5 -> -2, -9/4 -> -2, -7/4 -> -2.
        assert_eq!(
            run_small(&small(3, 1, 1, 0), &[-1, -1, -1], 0, (1 << 30, -1)),
            [-1, -2, -2, -2]
        );
        // Output zero point 5 with ReLU (clamp at 5) and ReLU6 at quantised 6.0 = 11.
        let mut p = small(3, 1, 1, 0);
        p.output_offset = 5;
        p.clamp = Clamp::relu6(5, 11);
        assert_eq!(run_small(&p, &[-1, 0, 1], 0, ONE), [7, 7, 7, 5]);
        // Saturation at the int8 range.
        assert_eq!(
            run_small(&small(3, 1, 1, 0), &[100, 100, 100], 0, ONE),
            [127, 127, 127, 127]
        );
    }

    #[test]
    fn two_channels_hand_computed() {
        // in 2, out 1, kernel 1: y[t] = 2*x[t][0] - x[t][1].
        let p = Conv1dParams {
            length: 3,
            in_channels: 2,
            out_channels: 1,
            kernel: 1,
            stride: 1,
            dilation: 1,
            padding: Padding::Same,
            input_offset: 0,
            output_offset: 0,
            clamp: Clamp::NONE,
        };
        let quant = PerChannelQuant {
            multipliers: &[ONE.0],
            shifts: &[ONE.1],
        };
        let mut out = [0i8; 3];
        conv1d(&p, &quant, &[1, 2, 3, 4, 5, 6], &[2, -1], &[0], &mut out).unwrap();
        assert_eq!(out, [0, 2, 4]);
        conv1d_scalar(&p, &quant, &[1, 2, 3, 4, 5, 6], &[2, -1], &[0], &mut out).unwrap();
        assert_eq!(out, [0, 2, 4]);
    }

    #[test]
    fn parameter_errors() {
        let quant = PerChannelQuant {
            multipliers: &[ONE.0],
            shifts: &[ONE.1],
        };
        let mut out = [0i8; 4];
        let go = |p: &Conv1dParams, out: &mut [i8]| {
            conv1d(p, &quant, &[1, 2, 3, 4], &[1, 1, 1], &[0], out)
        };
        let mut p = small(3, 1, 1, 0);
        p.in_channels = 0;
        assert_eq!(
            go(&p, &mut out),
            Err(KernelError::InvalidParam(Param::InChannels))
        );
        let mut p = small(3, 1, 1, 0);
        p.stride = 0;
        assert_eq!(
            go(&p, &mut out),
            Err(KernelError::InvalidParam(Param::Stride))
        );
        let mut p = small(3, 1, 1, 0);
        p.dilation = 0;
        assert_eq!(
            go(&p, &mut out),
            Err(KernelError::InvalidParam(Param::Dilation))
        );
        assert_eq!(
            go(&small(3, 1, 1, 129), &mut out),
            Err(KernelError::InvalidParam(Param::InputOffset))
        );
        let mut p = small(3, 1, 1, 0);
        p.output_offset = -129;
        assert_eq!(
            go(&p, &mut out),
            Err(KernelError::InvalidParam(Param::OutputOffset))
        );
        let mut p = small(3, 1, 1, 0);
        p.clamp = Clamp { min: 3, max: 2 };
        assert_eq!(
            go(&p, &mut out),
            Err(KernelError::InvalidClamp { min: 3, max: 2 })
        );
        let mut p = small(3, 1, 1, 0);
        p.padding = Padding::Valid;
        p.length = 2;
        assert!(matches!(
            go(&p, &mut out),
            Err(KernelError::WindowTooLong { .. })
        ));
        let mut p = small(3, 1, 1, 0);
        p.out_channels = usize::MAX;
        assert_eq!(go(&p, &mut out), Err(KernelError::SizeOverflow));
        assert_eq!(scratch_len(&small(3, 1, 1, 0)), 0);
        assert_eq!(small(3, 1, 1, 0).macs(), Ok(12));
    }

    #[test]
    fn overflowing_accumulator_wraps_without_panic() {
        let p = small(1, 1, 1, 128);
        let quant = PerChannelQuant {
            multipliers: &[i32::MAX],
            shifts: &[0],
        };
        let mut out = [0i8; 4];
        // i32::MAX + (1 + 128) * 127 wraps; the result is defined (and meaningless).
        conv1d(&p, &quant, &[1, 2, 3, 4], &[127], &[i32::MAX], &mut out).unwrap();
        conv1d_scalar(&p, &quant, &[1, 2, 3, 4], &[127], &[i32::MAX], &mut out).unwrap();
    }
}
