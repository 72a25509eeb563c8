//! The one error type of the kernels: every length, shape and parameter is checked before a
//! kernel touches its buffers, and a violation comes back as a [`KernelError`], never a panic.

use core::fmt;

/// A buffer a kernel reads or writes, named in [`KernelError::BufferLen`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Buffer {
    /// The (first) input activation tensor.
    Input,
    /// The second input of a two-input op (residual add).
    SecondInput,
    /// The int8 weights.
    Weights,
    /// The int32 bias.
    Bias,
    /// The per-channel requantisation multipliers.
    Multipliers,
    /// The per-channel requantisation shifts.
    Shifts,
    /// The output activation tensor.
    Output,
    /// The int8 thresholds of [`crate::kernels::activation::threshold`].
    Thresholds,
    /// The decisions written by [`crate::kernels::activation::threshold`].
    Decisions,
}

/// A scalar parameter of a kernel, named in [`KernelError::InvalidParam`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    /// The input length (time steps); must be at least 1.
    Length,
    /// The channel count of a depthwise op or a pool; must be at least 1.
    Channels,
    /// Input channels or input features; must be at least 1.
    InChannels,
    /// Output channels or output features; must be at least 1.
    OutChannels,
    /// The kernel size of a convolution; must be at least 1.
    Kernel,
    /// The stride; must be at least 1.
    Stride,
    /// The dilation; must be at least 1.
    Dilation,
    /// The pooling window; must be at least 1, and at most 2^23 taps may fall inside the input.
    Window,
    /// An input offset (`-input_zero_point`); must lie in `-127..=128`.
    InputOffset,
    /// The output offset (`output_zero_point`); must lie in `-128..=127`.
    OutputOffset,
    /// A requantisation shift of the residual add; must be `<= 0` (TFLM's
    /// `QuantizeMultiplierSmallerThanOneExp`).
    Shift,
}

/// Why a kernel refused to run. No kernel writes its output when it returns an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelError {
    /// A buffer's length differs from the one the parameters imply.
    BufferLen {
        /// Which buffer.
        buffer: Buffer,
        /// The length, in elements, the parameters require.
        expected: usize,
        /// The length passed.
        actual: usize,
    },
    /// A parameter is zero or outside its range (see [`Param`]).
    InvalidParam(Param),
    /// The clamp's lower bound is above its upper bound.
    InvalidClamp {
        /// The lower bound passed.
        min: i8,
        /// The upper bound passed.
        max: i8,
    },
    /// The (dilated) window is longer than the padded input, so there is no output.
    WindowTooLong {
        /// The window's span, `dilation * (kernel - 1) + 1`.
        span: usize,
        /// The input length plus the padding on both sides.
        padded_length: usize,
    },
    /// A size computed from the parameters does not fit in `usize`.
    SizeOverflow,
    /// The input is empty where at least one element is needed (argmax).
    EmptyInput,
}

impl fmt::Display for Buffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Buffer::Input => "input",
            Buffer::SecondInput => "second input",
            Buffer::Weights => "weights",
            Buffer::Bias => "bias",
            Buffer::Multipliers => "multipliers",
            Buffer::Shifts => "shifts",
            Buffer::Output => "output",
            Buffer::Thresholds => "thresholds",
            Buffer::Decisions => "decisions",
        };
        f.write_str(name)
    }
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KernelError::BufferLen {
                buffer,
                expected,
                actual,
            } => write!(
                f,
                "{buffer} buffer has {actual} elements, the parameters need {expected}"
            ),
            KernelError::InvalidParam(param) => write!(f, "parameter {param:?} is out of range"),
            KernelError::InvalidClamp { min, max } => {
                write!(f, "activation clamp min {min} is above max {max}")
            }
            KernelError::WindowTooLong {
                span,
                padded_length,
            } => write!(
                f,
                "window spans {span} steps but the padded input has only {padded_length}"
            ),
            KernelError::SizeOverflow => f.write_str("a buffer size overflows usize"),
            KernelError::EmptyInput => f.write_str("the input is empty"),
        }
    }
}
