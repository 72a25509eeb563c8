//! Standard 1-D convolution, int8 in and out, per-channel requantisation (TFLM's
//! `ConvPerChannel` with H = 1, CMSIS-NN's `arm_convolve_s8`).
//!
//! Layouts: input `[length][in_channels]`, weights `[out_channels][kernel][in_channels]`, bias
//! `[out_channels]`, output `[out_length][out_channels]`. Per output `(t, o)`:
//! `acc = bias[o] + sum_{k, c} w[o][k][c] * (x[t * stride + k * dilation - pad][c] + input_offset)`
//! over in-bounds taps (a padded tap holds the input zero point, so it adds 0), then
//! `y = clamp(requantize(acc, m[o], s[o]) + output_offset)`.
//!
//! Paths: [`conv1d`] is the entry point; it validates everything once and dispatches, today to
//! a pointwise (kernel 1) loop or to the general scalar loop. [`conv1d_scalar`] always runs the
//! general loop and is the reference every special case and every future fast path (the
//! Cortex-M4 `SMLAD` path of issue 6) is tested against, bit for bit.

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

/// Scratch bytes [`conv1d`] needs (CMSIS-NN's `*_get_buffer_size` habit): 0, as neither the
/// scalar paths nor the planned DSP path (dot products over contiguous channels-last rows)
/// needs an im2col buffer. The cost model adds this to the arena.
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

/// Runs the convolution on the best path for this target (today: the pointwise loop when
/// `kernel == 1`, else the general scalar loop; both give results identical to
/// [`conv1d_scalar`]).
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
