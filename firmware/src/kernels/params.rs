//! Parameter types the kernels share: the fused-activation clamp, per-channel requantisation,
//! the padding rule and the window geometry of convolutions and pools, and the checks that
//! turn bad values into [`KernelError`]s.

use super::error::{Buffer, KernelError, Param};

/// The fused activation as an int8 clamp `[min, max]` applied after requantisation.
///
/// No activation is [`Clamp::NONE`]; ReLU clamps at the output zero point; ReLU6 also clamps at
/// the quantised 6.0, `zero_point + round(6.0 / output_scale)` (computed on the host), as TFLM's
/// `CalculateActivationRangeQuantized`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clamp {
    /// The smallest output value.
    pub min: i8,
    /// The largest output value.
    pub max: i8,
}

impl Clamp {
    /// No activation: the full int8 range.
    pub const NONE: Clamp = Clamp {
        min: i8::MIN,
        max: i8::MAX,
    };

    /// ReLU: nothing below the output zero point (real 0.0).
    pub const fn relu(output_zero_point: i8) -> Clamp {
        Clamp {
            min: output_zero_point,
            max: i8::MAX,
        }
    }

    /// ReLU6: between the output zero point and `quantized_six`, the int8 value of 6.0
    /// (already clamped to 127 by the host).
    pub const fn relu6(output_zero_point: i8, quantized_six: i8) -> Clamp {
        Clamp {
            min: output_zero_point,
            max: quantized_six,
        }
    }

    pub(crate) const fn check(self) -> Result<(), KernelError> {
        if self.min > self.max {
            Err(KernelError::InvalidClamp {
                min: self.min,
                max: self.max,
            })
        } else {
            Ok(())
        }
    }
}

/// Per-output-channel requantisation, as CMSIS-NN's `cmsis_nn_per_channel_quant_params`:
/// channel `o` is scaled by `multipliers[o] * 2^shifts[o] / 2^31` (see
/// [`crate::quant::requantize`]). Both slices have one entry per output channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerChannelQuant<'a> {
    /// Q31 multipliers, normally in `[2^30, 2^31)`.
    pub multipliers: &'a [i32],
    /// Power-of-two shifts, normally in `-31..=30`.
    pub shifts: &'a [i32],
}

/// The padding rule of convolutions and pools (the padded value contributes nothing: the input
/// zero point for convolutions, an excluded tap for pools).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// `pad = dilation * (kernel - 1) / 2` steps on each side (PyTorch's symmetric padding, and
    /// ONNX `pads = [pad, pad]`); for odd kernels and stride 1 the output is as long as the input.
    Same,
    /// No padding.
    Valid,
}

impl Padding {
    /// The padding, in time steps, on each side for this kernel and dilation (floored).
    pub const fn amount(self, kernel: usize, dilation: usize) -> usize {
        match self {
            // Saturating: absurd sizes are rejected by `window_output_len` as overflow anyway.
            Padding::Same => dilation.saturating_mul(kernel.saturating_sub(1)) / 2,
            Padding::Valid => 0,
        }
    }
}

/// The output length of a window op:
/// `floor((length + 2 * pad - dilation * (kernel - 1) - 1) / stride) + 1`, with `pad` from
/// [`Padding::amount`].
///
/// Errors when a dimension is zero, when the window is longer than the padded input, and when a
/// size overflows `usize`.
pub fn window_output_len(
    length: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    padding: Padding,
) -> Result<usize, KernelError> {
    nonzero(length, Param::Length)?;
    nonzero(kernel, Param::Kernel)?;
    nonzero(stride, Param::Stride)?;
    nonzero(dilation, Param::Dilation)?;
    let span = dilation
        .checked_mul(kernel - 1)
        .and_then(|s| s.checked_add(1))
        .ok_or(KernelError::SizeOverflow)?;
    let pad = padding.amount(kernel, dilation);
    let padded_length = pad
        .checked_mul(2)
        .and_then(|p| p.checked_add(length))
        .ok_or(KernelError::SizeOverflow)?;
    match padded_length.checked_sub(span) {
        Some(room) => Ok(room / stride + 1),
        None => Err(KernelError::WindowTooLong {
            span,
            padded_length,
        }),
    }
}

/// Parameters of the 1-D pools ([`crate::kernels::max_pool`], [`crate::kernels::avg_pool`]):
/// input `[length][channels]`, output `[out_len][channels]`, input and output share scale and
/// zero point (as TFLM requires), so the pools work on raw int8 values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool1dParams {
    /// Input length in time steps.
    pub length: usize,
    /// Channels (the innermost dimension).
    pub channels: usize,
    /// Window size in time steps.
    pub window: usize,
    /// Step between windows.
    pub stride: usize,
    /// Padding; padded taps are excluded (ONNX `count_include_pad = 0`).
    pub padding: Padding,
    /// Fused activation.
    pub clamp: Clamp,
}

impl Pool1dParams {
    /// The output length (see [`window_output_len`], dilation 1).
    pub fn output_length(&self) -> Result<usize, KernelError> {
        window_output_len(self.length, self.window, self.stride, 1, self.padding)
    }

    /// Elements of the input tensor, `length * channels`.
    pub fn input_len(&self) -> Result<usize, KernelError> {
        checked_product(self.length, self.channels)
    }

    /// Elements of the output tensor, `output_length * channels`.
    pub fn output_len(&self) -> Result<usize, KernelError> {
        checked_product(self.output_length()?, self.channels)
    }

    /// Validates the parameters and both buffers; returns `(output_length, pad)`.
    pub(crate) fn check(&self, input: &[i8], output: &[i8]) -> Result<(usize, usize), KernelError> {
        nonzero(self.channels, Param::Channels)?;
        nonzero(self.window, Param::Window)?;
        self.clamp.check()?;
        let out_length = self.output_length()?;
        // Sums of in-bounds taps and their rounding stay in i32 (|sum| <= 128 * 2^23 = 2^30).
        if self.window.min(self.length) > MAX_POOL_TAPS {
            return Err(KernelError::InvalidParam(Param::Window));
        }
        check_len(Buffer::Input, self.input_len()?, input.len())?;
        check_len(
            Buffer::Output,
            checked_product(out_length, self.channels)?,
            output.len(),
        )?;
        Ok((out_length, self.padding.amount(self.window, 1)))
    }
}

/// The most in-bounds taps a pooling window may have (so an i32 sum of int8 values is exact).
pub const MAX_POOL_TAPS: usize = 1 << 23;

/// The in-bounds part `[lo, hi)` of the window that starts at padded position `start`.
pub(crate) fn window_bounds(
    start: usize,
    window: usize,
    pad: usize,
    length: usize,
) -> (usize, usize) {
    let lo = start.saturating_sub(pad).min(length);
    let hi = start.saturating_add(window).saturating_sub(pad).min(length);
    (lo, hi.max(lo))
}

/// The input row (all channels) at padded position `padded_pos`, or `None` in the padding.
pub(crate) fn input_row(
    input: &[i8],
    padded_pos: usize,
    pad: usize,
    channels: usize,
) -> Option<&[i8]> {
    let start = padded_pos.checked_sub(pad)?.checked_mul(channels)?;
    input.get(start..start.checked_add(channels)?)
}

pub(crate) const fn nonzero(value: usize, param: Param) -> Result<(), KernelError> {
    if value == 0 {
        Err(KernelError::InvalidParam(param))
    } else {
        Ok(())
    }
}

/// `-input_zero_point` for an int8 zero point.
pub(crate) const fn check_input_offset(offset: i32) -> Result<(), KernelError> {
    if offset < -127 || offset > 128 {
        Err(KernelError::InvalidParam(Param::InputOffset))
    } else {
        Ok(())
    }
}

/// `output_zero_point`, an int8.
pub(crate) const fn check_output_offset(offset: i32) -> Result<(), KernelError> {
    if offset < -128 || offset > 127 {
        Err(KernelError::InvalidParam(Param::OutputOffset))
    } else {
        Ok(())
    }
}

pub(crate) const fn check_len(
    buffer: Buffer,
    expected: usize,
    actual: usize,
) -> Result<(), KernelError> {
    if expected == actual {
        Ok(())
    } else {
        Err(KernelError::BufferLen {
            buffer,
            expected,
            actual,
        })
    }
}

pub(crate) fn checked_product(a: usize, b: usize) -> Result<usize, KernelError> {
    a.checked_mul(b).ok_or(KernelError::SizeOverflow)
}

/// Checks per-channel quantisation and bias against `channels`.
pub(crate) fn check_channel_params(
    quant: &PerChannelQuant<'_>,
    bias: &[i32],
    channels: usize,
) -> Result<(), KernelError> {
    check_len(Buffer::Bias, channels, bias.len())?;
    check_len(Buffer::Multipliers, channels, quant.multipliers.len())?;
    check_len(Buffer::Shifts, channels, quant.shifts.len())
}

/// `sum((x + input_offset) * w)` over two equally long rows, wrapping on overflow (exact while
/// a dot product has at most 2^16 terms, the same bound as TFLM's int32 accumulators).
#[inline]
pub(crate) fn dot(x: &[i8], w: &[i8], input_offset: i32) -> i32 {
    x.iter().zip(w).fold(0i32, |acc, (&x, &w)| {
        // |x + offset| <= 255 and |w| <= 128 once the offset is checked: the product fits.
        acc.wrapping_add((i32::from(x) + input_offset).wrapping_mul(i32::from(w)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_padding_keeps_length_for_odd_kernels() {
        for k in [1, 3, 5, 7, 9] {
            for d in 1..=3 {
                assert_eq!(window_output_len(40, k, 1, d, Padding::Same), Ok(40));
            }
        }
        // Even kernel: pad = floor(d(k-1)/2), one step shorter.
        assert_eq!(window_output_len(10, 2, 1, 1, Padding::Same), Ok(9));
        assert_eq!(window_output_len(10, 4, 1, 1, Padding::Same), Ok(9));
        assert_eq!(window_output_len(10, 3, 2, 1, Padding::Same), Ok(5));
        assert_eq!(window_output_len(10, 2, 2, 1, Padding::Valid), Ok(5));
        assert_eq!(window_output_len(11, 2, 2, 1, Padding::Valid), Ok(5));
    }

    #[test]
    fn geometry_errors() {
        assert_eq!(
            window_output_len(2, 3, 1, 1, Padding::Valid),
            Err(KernelError::WindowTooLong {
                span: 3,
                padded_length: 2
            })
        );
        assert_eq!(
            window_output_len(1, 2, 1, 1, Padding::Same),
            Err(KernelError::WindowTooLong {
                span: 2,
                padded_length: 1
            })
        );
        assert_eq!(
            window_output_len(0, 1, 1, 1, Padding::Same),
            Err(KernelError::InvalidParam(Param::Length))
        );
        assert_eq!(
            window_output_len(4, 1, 0, 1, Padding::Same),
            Err(KernelError::InvalidParam(Param::Stride))
        );
        assert_eq!(
            window_output_len(4, usize::MAX, 1, 2, Padding::Valid),
            Err(KernelError::SizeOverflow)
        );
    }

    #[test]
    fn window_bounds_clip_to_input() {
        assert_eq!(window_bounds(0, 3, 1, 5), (0, 2));
        assert_eq!(window_bounds(4, 3, 1, 5), (3, 5));
        assert_eq!(window_bounds(10, 3, 1, 5), (5, 5));
    }
}
