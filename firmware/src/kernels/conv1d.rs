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
//! `SMLAD` path of the private `fast` module, elsewhere (and for windows over 1024 values) to a
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
/// DSP path keeps its im2col and expanded weights in fixed stack buffers instead (about
/// 21.5 KiB of stack, the same for every layer). The cost model adds this to the arena.
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
    if fast::conv(params, geometry, quant, input, weights, bias, output) {
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

/// The Cortex-M4 DSP path (CMSIS-NN's `arm_convolve_s8` scheme): for each pair of output
/// positions, an im2col of both input windows as int16 pairs with the input offset added (the
/// padding as zeros); the weights of up to [`fast::BLOCK_PAIRS`] channel pairs as int16 pairs,
/// expanded once per block; then each 2 positions x 2 channels block is four `SMLAD` chains
/// over the window (two MACs per instruction) and the DSP output stage.
#[cfg(all(target_arch = "arm", feature = "dsp"))]
mod fast {
    use super::{input_row, Conv1dParams, Geometry, PerChannelQuant};
    use crate::kernels::dsp::{dot2x2, ChannelQuant, Output, Packer};

    /// Words (int16 pairs) of one position's window: windows up to 1024 values (4 KiB for two).
    const COL_WORDS: usize = 512;
    /// Words of expanded weights, all channel pairs of a block (16 KiB).
    const W_WORDS: usize = 2048;
    /// Channel pairs per block.
    pub(super) const BLOCK_PAIRS: usize = 32;

    /// Bias and output constants of two channels.
    #[derive(Clone, Copy, Default)]
    struct PairParams {
        bias: [i32; 2],
        q: [ChannelQuant; 2],
    }

    /// Runs the convolution if its window fits the stack buffers; `false` (nothing written)
    /// otherwise. Buffers are already checked.
    pub(super) fn conv(
        params: &Conv1dParams,
        geometry: Geometry,
        quant: &PerChannelQuant<'_>,
        input: &[i8],
        weights: &[i8],
        bias: &[i32],
        output: &mut [i8],
    ) -> bool {
        let filter_len = params.kernel * params.in_channels;
        // Words per window, a multiple of 4 (the inner loop's unrolling); the padding is zero.
        let n = filter_len.div_ceil(8) * 4;
        if n > COL_WORDS {
            return false;
        }
        let args = (params, geometry, quant, input, weights, bias);
        run(args, n, output);
        true
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
    fn run(args: Args<'_, '_>, n: usize, output: &mut [i8]) {
        let (params, geometry, quant, input, weights, bias) = args;
        let cout = params.out_channels;
        let filter_len = params.kernel * params.in_channels;
        let block_pairs = (W_WORDS / n).min(BLOCK_PAIRS);
        let out = Output::new(quant, params.output_offset, params.clamp);
        let mut cols = [[0u32; 2]; COL_WORDS];
        let cols = &mut cols[..n];
        let mut wbuf = [[0u32; 2]; W_WORDS];
        let mut pp = [PairParams::default(); BLOCK_PAIRS];
        let total_pairs = cout.div_ceil(2);
        let mut first = 0;
        while first < total_pairs {
            let pairs = block_pairs.min(total_pairs - first);
            for (j, (p, w)) in pp[..pairs]
                .iter_mut()
                .zip(wbuf.chunks_exact_mut(n))
                .enumerate()
            {
                let o = 2 * (first + j);
                *p = pair_params(o, cout, quant, bias);
                expand_weights(w, 0, weights, o, filter_len);
                expand_weights(w, 1, weights, o + 1, filter_len);
            }
            let block = &pp[..pairs];
            let block_w = &wbuf[..pairs * n];
            let o_first = 2 * first;
            let mut start = 0usize;
            for rows in output.chunks_mut(2 * cout) {
                let (row0, row1) = rows.split_at_mut(cout.min(rows.len()));
                column(cols, 0, params, geometry, input, start);
                if !row1.is_empty() {
                    column(cols, 1, params, geometry, input, start + params.stride);
                }
                start += 2 * params.stride;
                let row0 = row0.get_mut(o_first..).unwrap_or(&mut []);
                let row1 = row1.get_mut(o_first..).unwrap_or(&mut []);
                if row0.len() >= 2 * pairs && row1.len() >= 2 * pairs {
                    // Whole channel pairs in both rows.
                    let dst = row0.chunks_exact_mut(2).zip(row1.chunks_exact_mut(2));
                    for ((p, w), (d0, d1)) in block.iter().zip(block_w.chunks_exact(n)).zip(dst) {
                        let [a00, a01, a10, a11] = dot2x2(cols, w, p.bias);
                        if let (Ok(d0), Ok(d1)) = (d0.try_into(), d1.try_into()) {
                            out.store2(a00, a01, &p.q, d0);
                            out.store2(a10, a11, &p.q, d1);
                        }
                    }
                } else {
                    for (j, (p, w)) in block.iter().zip(block_w.chunks_exact(n)).enumerate() {
                        let acc = dot2x2(cols, w, p.bias);
                        store(row0, 2 * j, &out, (acc[0], acc[1]), &p.q);
                        store(row1, 2 * j, &out, (acc[2], acc[3]), &p.q);
                    }
                }
            }
            first += pairs;
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

    /// Channel `o`'s filter (zeros past the last channel) into lane `lane` of `dst`.
    fn expand_weights(
        dst: &mut [[u32; 2]],
        lane: usize,
        weights: &[i8],
        o: usize,
        filter_len: usize,
    ) {
        let mut packer = Packer::new(dst, lane, 0);
        if let Some(filter) = weights.get(o * filter_len..(o + 1) * filter_len) {
            packer.values(filter);
        }
        packer.finish();
    }

    /// The window of the output that starts at padded position `start` into lane `lane`.
    #[inline(never)]
    fn column(
        cols: &mut [[u32; 2]],
        lane: usize,
        params: &Conv1dParams,
        geometry: Geometry,
        input: &[i8],
        start: usize,
    ) {
        let cin = params.in_channels;
        let mut packer = Packer::new(cols, lane, params.input_offset);
        if params.dilation == 1 {
            // The in-bounds rows of the window are one contiguous run of the input.
            let lo = start.saturating_sub(geometry.pad).min(params.length);
            let hi = (start + params.kernel)
                .saturating_sub(geometry.pad)
                .min(params.length);
            let lead = (geometry.pad.saturating_sub(start)).min(params.kernel);
            packer.zeros(lead * cin);
            packer.values(input.get(lo * cin..hi * cin).unwrap_or(&[]));
        } else {
            let mut pos = start;
            for _ in 0..params.kernel {
                match input_row(input, pos, geometry.pad, cin) {
                    Some(row) => packer.values(row),
                    None => packer.zeros(cin),
                }
                pos += params.dilation;
            }
        }
        packer.finish();
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
