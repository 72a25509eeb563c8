//! Depthwise 1-D convolution (channel multiplier 1), int8 in and out, per-channel
//! requantisation (TFLM's `DepthwiseConvPerChannel` with H = 1, CMSIS-NN's
//! `arm_depthwise_conv_s8`).
//!
//! Layouts: input `[length][channels]`, weights `[kernel][channels]`, bias `[channels]`, output
//! `[out_length][channels]`. Per output `(t, c)`:
//! `acc = bias[c] + sum_k w[k][c] * (x[t * stride + k * dilation - pad][c] + input_offset)`
//! over in-bounds taps, then `y = clamp(requantize(acc, m[c], s[c]) + output_offset)`. Padding
//! and output length follow the same rule as [`crate::kernels::conv1d`].

use super::error::{Buffer, KernelError, Param};
use super::params::{
    check_channel_params, check_input_offset, check_len, check_output_offset, checked_product,
    input_row, nonzero, window_output_len, Clamp, Padding, PerChannelQuant,
};
use crate::quant::requantize_to_i8;

/// Shape and quantisation of a depthwise 1-D convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Depthwise1dParams {
    /// Input length in time steps.
    pub length: usize,
    /// Channels, in and out.
    pub channels: usize,
    /// Kernel size in time steps.
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

impl Depthwise1dParams {
    /// Output length, as for [`crate::kernels::conv1d::Conv1dParams::output_length`].
    pub fn output_length(&self) -> Result<usize, KernelError> {
        window_output_len(
            self.length,
            self.kernel,
            self.stride,
            self.dilation,
            self.padding,
        )
    }

    /// Elements of the input tensor, `length * channels`.
    pub fn input_len(&self) -> Result<usize, KernelError> {
        checked_product(self.length, self.channels)
    }

    /// Elements of the weight tensor, `kernel * channels`.
    pub fn weights_len(&self) -> Result<usize, KernelError> {
        checked_product(self.kernel, self.channels)
    }

    /// Elements of the output tensor, `output_length * channels`.
    pub fn output_len(&self) -> Result<usize, KernelError> {
        checked_product(self.output_length()?, self.channels)
    }

    /// Multiply-accumulates per inference, `output_length * channels * kernel`.
    pub fn macs(&self) -> Result<usize, KernelError> {
        checked_product(self.output_len()?, self.kernel)
    }
}

/// Scratch bytes [`depthwise_conv1d`] needs: 0.
pub const fn scratch_len(_params: &Depthwise1dParams) -> usize {
    0
}

/// Runs the depthwise convolution on the best path for this target (on a Cortex-M with the DSP
/// extension, `SMLAD` over pairs of taps; elsewhere the scalar loop of
/// [`depthwise_conv1d_scalar`]; the results are identical).
///
/// Errors, before writing anything, on a zero dimension, an offset or clamp out of range, a
/// window longer than the padded input, or any buffer of the wrong length.
pub fn depthwise_conv1d(
    params: &Depthwise1dParams,
    quant: &PerChannelQuant<'_>,
    input: &[i8],
    weights: &[i8],
    bias: &[i32],
    output: &mut [i8],
) -> Result<(), KernelError> {
    check(params, quant, input, weights, bias, output)?;
    #[cfg(all(target_arch = "arm", feature = "dsp"))]
    if fast::depthwise(params, quant, input, weights, bias, output) {
        return Ok(());
    }
    scalar(params, quant, input, weights, bias, output);
    Ok(())
}

/// The scalar loop, the reference [`depthwise_conv1d`]'s other paths must equal bit for bit.
/// Same contract and errors as [`depthwise_conv1d`].
pub fn depthwise_conv1d_scalar(
    params: &Depthwise1dParams,
    quant: &PerChannelQuant<'_>,
    input: &[i8],
    weights: &[i8],
    bias: &[i32],
    output: &mut [i8],
) -> Result<(), KernelError> {
    check(params, quant, input, weights, bias, output)?;
    scalar(params, quant, input, weights, bias, output);
    Ok(())
}

fn check(
    params: &Depthwise1dParams,
    quant: &PerChannelQuant<'_>,
    input: &[i8],
    weights: &[i8],
    bias: &[i32],
    output: &[i8],
) -> Result<(), KernelError> {
    let ch = params.channels;
    nonzero(ch, Param::Channels)?;
    check_input_offset(params.input_offset)?;
    check_output_offset(params.output_offset)?;
    params.clamp.check()?;
    let output_len = params.output_len()?;
    check_len(Buffer::Input, params.input_len()?, input.len())?;
    check_len(Buffer::Weights, params.weights_len()?, weights.len())?;
    check_channel_params(quant, bias, ch)?;
    check_len(Buffer::Output, output_len, output.len())
}

fn scalar(
    params: &Depthwise1dParams,
    quant: &PerChannelQuant<'_>,
    input: &[i8],
    weights: &[i8],
    bias: &[i32],
    output: &mut [i8],
) {
    let ch = params.channels;
    let pad = params.padding.amount(params.kernel, params.dilation);

    let mut start = 0usize;
    for out_row in output.chunks_exact_mut(ch) {
        let channels = out_row
            .iter_mut()
            .zip(bias)
            .zip(quant.multipliers.iter().zip(quant.shifts))
            .enumerate();
        for (c, ((y, &b), (&m, &s))) in channels {
            let mut acc = b;
            let mut pos = start;
            for taps in weights.chunks_exact(ch) {
                let x = input_row(input, pos, pad, ch).and_then(|row| row.get(c));
                if let (Some(&x), Some(&w)) = (x, taps.get(c)) {
                    acc = acc.wrapping_add(
                        (i32::from(x) + params.input_offset).wrapping_mul(i32::from(w)),
                    );
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

/// The Cortex-M4 DSP path, for dilation 1: per pair of channels, each channel's input column
/// over the padded time axis as int16 with the input offset added (the padding as zeros), so
/// two neighbouring taps are one unaligned `LDR` and one `SMLAD` against the channel's packed
/// weight pair; both channels' outputs go through the DSP output stage together. Buffers are
/// already checked.
#[cfg(all(target_arch = "arm", feature = "dsp"))]
mod fast {
    use super::{Depthwise1dParams, PerChannelQuant};
    use crate::kernels::dsp::{pair, smlad, ChannelQuant, Output};

    /// Time steps of a padded column (1792 bytes per column, two columns).
    const COL_STEPS: usize = 896;
    // The buffers leave room for the frames within the published bound.
    const _: () = assert!(4 * COL_STEPS + 512 <= crate::kernels::DSP_STACK_BYTES);
    /// Pairs of taps: kernels up to 16.
    const TAP_PAIRS: usize = 8;

    /// Runs the layer if it fits the stack buffers; `false` (nothing written) otherwise.
    pub(super) fn depthwise(
        params: &Depthwise1dParams,
        quant: &PerChannelQuant<'_>,
        input: &[i8],
        weights: &[i8],
        bias: &[i32],
        output: &mut [i8],
    ) -> bool {
        let pad = params.padding.amount(params.kernel, 1);
        if params.dilation != 1
            || params.kernel.div_ceil(2) > TAP_PAIRS
            || params.length + 2 * pad + 2 > COL_STEPS
        {
            return false;
        }
        let args = (params, quant, input, weights, bias);
        run(args, pad, output);
        true
    }

    type Args<'a, 'b> = (
        &'a Depthwise1dParams,
        &'a PerChannelQuant<'b>,
        &'a [i8],
        &'a [i8],
        &'a [i32],
    );

    #[inline(never)]
    fn run(args: Args<'_, '_>, pad: usize, output: &mut [i8]) {
        let (params, quant, input, weights, bias) = args;
        let ch = params.channels;
        let taps = params.kernel.div_ceil(2);
        let out = Output::new(quant, params.output_offset, params.clamp);
        let mut col0 = [0u8; 2 * COL_STEPS];
        let mut col1 = [0u8; 2 * COL_STEPS];
        // The padded axis and two more steps, which the last pair of taps may read.
        let steps = (params.length + 2 * pad + 2).min(COL_STEPS);
        let (col0, col1) = (&mut col0[..2 * steps], &mut col1[..2 * steps]);
        let mut c = 0;
        while c < ch {
            let two = c + 1 < ch;
            column(col0, params, input, pad, c);
            let w0 = tap_pairs(weights, ch, c);
            let q0 = ChannelQuant::new(quant.multipliers[c], quant.shifts[c]);
            let b0 = bias[c];
            if two {
                column(col1, params, input, pad, c + 1);
                let w1 = tap_pairs(weights, ch, c + 1);
                let q = [
                    q0,
                    ChannelQuant::new(quant.multipliers[c + 1], quant.shifts[c + 1]),
                ];
                let b1 = bias[c + 1];
                let mut start = 0;
                for row in output.chunks_exact_mut(ch) {
                    let a0 = dot(col0, start, &w0[..taps], b0);
                    let a1 = dot(col1, start, &w1[..taps], b1);
                    if let Some(Ok(dst)) = row.get_mut(c..c + 2).map(<&mut [i8; 2]>::try_from) {
                        out.store2(a0, a1, &q, dst);
                    }
                    start += params.stride;
                }
            } else {
                let mut start = 0;
                for row in output.chunks_exact_mut(ch) {
                    let a0 = dot(col0, start, &w0[..taps], b0);
                    if let Some(y) = row.get_mut(c) {
                        *y = out.one(a0, &q0);
                    }
                    start += params.stride;
                }
            }
            c += 2;
        }
    }

    /// Channel `c` of the input over the padded time axis, int16 little-endian, plus offset;
    /// zeros in the padding and after it.
    fn column(col: &mut [u8], params: &Depthwise1dParams, input: &[i8], pad: usize, c: usize) {
        let ch = params.channels;
        let (head, rest) = col.split_at_mut((2 * pad).min(col.len()));
        head.fill(0);
        let mut written = 0;
        if let Some(input) = input.get(c..) {
            for (dst, x) in rest.chunks_exact_mut(2).zip(input.chunks(ch)) {
                let v = (i32::from(x[0]) + params.input_offset) as i16;
                dst.copy_from_slice(&v.to_le_bytes());
                written += 2;
            }
        }
        if let Some(tail) = rest.get_mut(written..) {
            tail.fill(0);
        }
    }

    /// Channel `c`'s taps as int16 pairs `[w[2j][c], w[2j + 1][c]]` (0 past the kernel).
    fn tap_pairs(weights: &[i8], ch: usize, c: usize) -> [u32; TAP_PAIRS] {
        let mut pairs = [0u32; TAP_PAIRS];
        let mut taps = weights.iter().skip(c).step_by(ch);
        for p in pairs.iter_mut() {
            let lo = taps.next().map_or(0, |&w| i32::from(w));
            let hi = taps.next().map_or(0, |&w| i32::from(w));
            *p = pair(lo, hi);
        }
        pairs
    }

    /// `bias + sum_j SMLAD(column[start + 2j .. start + 2j + 2], w[j])`.
    #[inline(always)]
    fn dot(col: &[u8], start: usize, w: &[u32], bias: i32) -> i32 {
        let mut acc = bias;
        let window = col.get(2 * start..).unwrap_or(&[]);
        for (x, &w) in window.chunks_exact(4).zip(w) {
            acc = smlad(u32::from_le_bytes([x[0], x[1], x[2], x[3]]), w, acc);
        }
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    #[derive(Debug, Clone)]
    struct Case {
        params: Depthwise1dParams,
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

        fn run(&self) -> Result<Vec<i8>, KernelError> {
            let mut out = vec![0i8; self.params.output_len()?];
            depthwise_conv1d(
                &self.params,
                &self.quant(),
                &self.input,
                &self.weights,
                &self.bias,
                &mut out,
            )?;
            Ok(out)
        }
    }

    fn reference(c: &Case) -> Option<Vec<i8>> {
        let p = &c.params;
        let (pad, out_len) = naive_geometry(p.length, p.kernel, p.stride, p.dilation, p.padding)?;
        let mut out = vec![0i8; out_len * p.channels];
        for t in 0..out_len {
            for ch in 0..p.channels {
                let mut acc = i64::from(c.bias[ch]);
                for k in 0..p.kernel {
                    let pos = (t * p.stride + k * p.dilation) as i64 - pad;
                    if pos < 0 || pos >= p.length as i64 {
                        continue;
                    }
                    let x = i64::from(c.input[pos as usize * p.channels + ch]);
                    let w = i64::from(c.weights[k * p.channels + ch]);
                    acc += (x + i64::from(p.input_offset)) * w;
                }
                out[t * p.channels + ch] = naive_output(
                    acc,
                    c.multipliers[ch],
                    c.shifts[ch],
                    p.output_offset,
                    p.clamp,
                );
            }
        }
        Some(out)
    }

    fn case() -> impl Strategy<Value = Case> {
        (
            1usize..=16,
            1usize..=40,
            1usize..=9,
            1usize..=4,
            1usize..=3,
            padding(),
            input_offset(),
            output_offset(),
            clamp(),
        )
            .prop_flat_map(|(ch, len, k, stride, dil, pad, ioff, ooff, clamp)| {
                let params = Depthwise1dParams {
                    length: len,
                    channels: ch,
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
                    data(len * ch),
                    data(k * ch),
                    bias(ch),
                    per_channel(ch),
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

    proptest! {
        #[test]
        fn matches_naive_reference(c in case()) {
            match reference(&c) {
                Some(expected) => prop_assert_eq!(c.run(), Ok(expected)),
                None => {
                    let is_too_long = matches!(c.run(), Err(KernelError::WindowTooLong { .. }));
                    prop_assert!(is_too_long);
                }
            }
        }

        #[test]
        fn wrong_lengths_are_errors(c in case(), which in 0usize..6) {
            prop_assume!(reference(&c).is_some());
            let mut c = c;
            let mut out_len = c.params.output_len().unwrap();
            match which {
                0 => { c.input.pop(); }
                1 => c.weights.push(0),
                2 => { c.bias.pop(); }
                3 => c.multipliers.push(0),
                4 => { c.shifts.pop(); }
                _ => out_len -= 1,
            }
            let mut out = vec![7i8; out_len];
            let result =
                depthwise_conv1d(&c.params, &c.quant(), &c.input, &c.weights, &c.bias, &mut out);
            let is_len_error = matches!(result, Err(KernelError::BufferLen { .. }));
            prop_assert!(is_len_error);
            prop_assert!(out.iter().all(|&v| v == 7));
        }
    }

    #[test]
    fn hand_computed_two_channels() {
        // Channel 0 sums its 3 neighbours, channel 1 takes the difference x[t+1] - x[t-1];
        // input zero point 1 (offset -1), so the padding adds 0 and x - 1 is used.
        let p = Depthwise1dParams {
            length: 3,
            channels: 2,
            kernel: 3,
            stride: 1,
            dilation: 1,
            padding: Padding::Same,
            input_offset: -1,
            output_offset: 0,
            clamp: Clamp::NONE,
        };
        let quant = PerChannelQuant {
            multipliers: &[1 << 30, 1 << 30],
            shifts: &[1, 0], // channel 0 scale 1.0, channel 1 scale 0.5
        };
        // x - 1: channel 0 = [0, 1, 2], channel 1 = [0, 4, 9].
        let input = [1, 1, 2, 5, 3, 10];
        let weights = [1, -1, 1, 0, 1, 1]; // [k][c]
        let mut out = [0i8; 6];
        depthwise_conv1d(&p, &quant, &input, &weights, &[0, 1], &mut out).unwrap();
        // ch0: [0+0+1, 0+1+2, 1+2+0] = [1, 3, 3]
        // ch1: (1 + x[t+1] - x[t-1]) * 0.5 = [(1+4)/2, (1+9)/2, (1-4)/2] = [2.5, 5, -1.5]
        //      -> [3, 5, -1] (scale 0.5 with shift 0 rounds in the doubling high multiply,
        //      half toward +inf)
        assert_eq!(out, [1, 3, 3, 5, 3, -1]);
    }

    #[test]
    fn parameter_errors() {
        let mut p = Depthwise1dParams {
            length: 3,
            channels: 0,
            kernel: 3,
            stride: 1,
            dilation: 1,
            padding: Padding::Same,
            input_offset: 0,
            output_offset: 0,
            clamp: Clamp::NONE,
        };
        let quant = PerChannelQuant {
            multipliers: &[],
            shifts: &[],
        };
        let mut out = [0i8; 0];
        assert_eq!(
            depthwise_conv1d(&p, &quant, &[], &[], &[], &mut out),
            Err(KernelError::InvalidParam(Param::Channels))
        );
        p.channels = 1;
        p.kernel = 0;
        assert_eq!(
            depthwise_conv1d(&p, &quant, &[], &[], &[], &mut out),
            Err(KernelError::InvalidParam(Param::Kernel))
        );
        p.kernel = 3;
        p.length = 0;
        assert_eq!(
            depthwise_conv1d(&p, &quant, &[], &[], &[], &mut out),
            Err(KernelError::InvalidParam(Param::Length))
        );
        assert_eq!(scratch_len(&p), 0);
    }
}
