//! The int8 kernels: one op a file, each with its parameter struct, its
//! `scratch_len` (bytes of scratch it needs, the CMSIS-NN `*_get_buffer_size` habit; 0 for all
//! of today's kernels) and its tests against a naive i64 reference beside it.
//!
//! Conventions, shared with TFLite Micro and CMSIS-NN so the host's exported model and the
//! device agree bit for bit:
//! - activations are channels-last int8 tensors `[length][channels]` (TFLM runs a 1-D conv as
//!   NHWC with H = 1), with zero points; kernels take `input_offset = -input_zero_point` and
//!   `output_offset = output_zero_point`;
//! - weights are symmetric int8 (zero point 0), per output channel: conv `[out][kernel][in]`,
//!   depthwise `[kernel][channels]` (multiplier 1), dense `[out][in]`; bias is int32 at scale
//!   `input_scale * weight_scale[o]`;
//! - each output channel is requantised by [`crate::quant::requantize`] with its own
//!   `(multiplier, shift)` ([`PerChannelQuant`]); the activation is folded into a [`Clamp`];
//! - accumulation is int32 and wraps instead of overflowing (exact up to 2^16 terms per
//!   output, as TFLM assumes);
//! - every length and parameter is checked before any write; a violation is a
//!   [`KernelError`], never a panic, and the output is left untouched;
//! - `conv1d`, `depthwise_conv1d` and `dense` have a portable scalar path (public as
//!   `*_scalar`, the reference) and, on a Cortex-M with the DSP extension (`target_arch =
//!   "arm"` and the `dsp` Cargo feature), a `SMLAD` path through the `asm!` wrappers of the
//!   private `dsp` module, bit-identical to the scalar one.

pub mod activation;
pub mod add;
pub mod avg_pool;
pub mod conv1d;
pub mod dense;
pub mod depthwise1d;
#[cfg(all(target_arch = "arm", feature = "dsp"))]
mod dsp;
pub mod error;
pub mod global_avg_pool;
pub mod max_pool;
pub mod params;
pub mod paths;

#[cfg(test)]
mod test_util;

pub use error::{Buffer, KernelError, Param};

/// Bound on the stack bytes any one DSP path (`conv1d`, `depthwise_conv1d`, `dense` on a
/// Cortex-M with the DSP extension) uses, its public entry point's frame included: its fixed
/// buffers (conv1d 5504 bytes of input band and expanded filters, or for one input channel
/// 3456 bytes of packed filters, output constants and pair words; depthwise 3584 bytes of
/// columns, dense 3584 bytes of packed input) plus the frames of the calls, measured from the
/// `thumbv7em-none-eabihf` release code (`sub sp` and pushes of each function in the deepest
/// chain: conv1d 3984 with 1280 bytes of filters, so about 6032 with today's 3328; one input
/// channel about 4000, depthwise 4048, dense 3928). The same for every layer; the scalar paths
/// use less. For the cost model's RAM budget.
pub const DSP_STACK_BYTES: usize = 6144;
pub use params::{window_output_len, Clamp, Padding, PerChannelQuant, Pool1dParams};

#[cfg(test)]
mod robustness {
    //! Every kernel on arbitrary parameters (huge values included) and arbitrary buffers:
    //! a result, never a panic; on success the output has the length the parameters imply.
    use super::*;
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    fn dim() -> impl Strategy<Value = usize> {
        prop_oneof![
            0usize..6,
            Just(usize::MAX),
            Just(usize::MAX / 2),
            Just(1usize << 32)
        ]
    }

    fn offset() -> impl Strategy<Value = i32> {
        prop_oneof![-130i32..130, any::<i32>()]
    }

    fn clamp() -> impl Strategy<Value = Clamp> {
        (any::<i8>(), any::<i8>()).prop_map(|(min, max)| Clamp { min, max })
    }

    fn padding() -> impl Strategy<Value = Padding> {
        prop_oneof![Just(Padding::Same), Just(Padding::Valid)]
    }

    fn bytes() -> impl Strategy<Value = Vec<i8>> {
        proptest::collection::vec(any::<i8>(), 0..48)
    }

    fn words() -> impl Strategy<Value = Vec<i32>> {
        proptest::collection::vec(any::<i32>(), 0..6)
    }

    proptest! {
        #[test]
        fn conv_and_depthwise_never_panic(
            (length, cin, cout) in (dim(), dim(), dim()),
            (kernel, stride, dilation) in (dim(), dim(), dim()),
            (padding, input_offset, output_offset) in (padding(), offset(), offset()),
            clamp in clamp(),
            (input, weights, out_len) in (bytes(), bytes(), 0usize..48),
            (bias, multipliers, shifts) in (words(), words(), words()),
        ) {
            let quant = PerChannelQuant { multipliers: &multipliers, shifts: &shifts };
            let p = conv1d::Conv1dParams {
                length, in_channels: cin, out_channels: cout, kernel, stride, dilation, padding,
                input_offset, output_offset, clamp,
            };
            let mut out = vec![0i8; out_len];
            if conv1d::conv1d(&p, &quant, &input, &weights, &bias, &mut out).is_ok() {
                prop_assert_eq!(p.output_len(), Ok(out_len));
            }
            let _ = conv1d::conv1d_scalar(&p, &quant, &input, &weights, &bias, &mut out);
            let d = depthwise1d::Depthwise1dParams {
                length, channels: cin, kernel, stride, dilation, padding, input_offset,
                output_offset, clamp,
            };
            let result =
                depthwise1d::depthwise_conv1d(&d, &quant, &input, &weights, &bias, &mut out);
            if result.is_ok() {
                prop_assert_eq!(d.output_len(), Ok(out_len));
            }
            let f = dense::DenseParams {
                in_features: cin, out_features: cout, input_offset, output_offset, clamp,
            };
            if dense::dense(&f, &quant, &input, &weights, &bias, &mut out).is_ok() {
                prop_assert_eq!(cout, out_len);
            }
        }

        #[test]
        fn pools_add_and_decisions_never_panic(
            (length, channels, window, stride) in (dim(), dim(), dim(), dim()),
            (padding, clamp) in (padding(), clamp()),
            (input, input2, out_len) in (bytes(), bytes(), 0usize..48),
            (o1, o2, o3, m, s) in (offset(), offset(), offset(), any::<i32>(), any::<i32>()),
        ) {
            let p = Pool1dParams { length, channels, window, stride, padding, clamp };
            let mut out = vec![0i8; out_len];
            if max_pool::max_pool(&p, &input, &mut out).is_ok() {
                prop_assert_eq!(p.output_len(), Ok(out_len));
            }
            if avg_pool::avg_pool(&p, &input, &mut out).is_ok() {
                prop_assert_eq!(p.output_len(), Ok(out_len));
            }
            let g = global_avg_pool::GlobalAvgPoolParams { length, channels, clamp };
            if global_avg_pool::global_avg_pool(&g, &input, &mut out).is_ok() {
                prop_assert_eq!(channels, out_len);
            }
            let a = add::AddParams {
                len: length,
                input1: add::AddInput { offset: o1, multiplier: m, shift: s },
                input2: add::AddInput { offset: o2, multiplier: s, shift: m },
                output_multiplier: m,
                output_shift: s,
                output_offset: o3,
                clamp,
            };
            if add::add(&a, &input, &input2, &mut out).is_ok() {
                prop_assert_eq!(length, out_len);
            }
            let _ = activation::argmax(&input);
            let mut decisions = vec![false; out_len];
            let _ = activation::threshold(&input, &input2, &mut decisions);
        }
    }
}
