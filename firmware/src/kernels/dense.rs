//! Dense (fully connected) layer, int8 in and out, per-output requantisation (TFLM's
//! `FullyConnectedPerChannel`, CMSIS-NN's `arm_fully_connected_s8`).
//!
//! Layouts: input `[in_features]`, weights `[out_features][in_features]`, bias
//! `[out_features]`, output `[out_features]`. Per output `o`:
//! `acc = bias[o] + sum_i w[o][i] * (x[i] + input_offset)`, then
//! `y = clamp(requantize(acc, m[o], s[o]) + output_offset)`.
//! A per-tensor model passes the same multiplier and shift for every output.

use super::error::{Buffer, KernelError, Param};
use super::params::{
    check_channel_params, check_input_offset, check_len, check_output_offset, checked_product, dot,
    nonzero, Clamp, PerChannelQuant,
};
use crate::quant::requantize_to_i8;

/// Shape and quantisation of a dense layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DenseParams {
    /// Input features.
    pub in_features: usize,
    /// Output features.
    pub out_features: usize,
    /// `-input_zero_point`, in `-127..=128`.
    pub input_offset: i32,
    /// `output_zero_point`, in `-128..=127`.
    pub output_offset: i32,
    /// Fused activation.
    pub clamp: Clamp,
}

impl DenseParams {
    /// Elements of the weight matrix, `out_features * in_features`.
    pub fn weights_len(&self) -> Result<usize, KernelError> {
        checked_product(self.out_features, self.in_features)
    }

    /// Multiply-accumulates per inference, `out_features * in_features`.
    pub fn macs(&self) -> Result<usize, KernelError> {
        self.weights_len()
    }
}

/// Scratch bytes [`dense`] needs: 0.
pub const fn scratch_len(_params: &DenseParams) -> usize {
    0
}

/// Runs the dense layer on the best path for this target (on a Cortex-M with the DSP
/// extension, `SMLAD` over int16 pairs; elsewhere the scalar loop of [`dense_scalar`]; the
/// results are identical).
///
/// Errors, before writing anything, on a zero dimension, an offset or clamp out of range, or any
/// buffer of the wrong length.
pub fn dense(
    params: &DenseParams,
    quant: &PerChannelQuant<'_>,
    input: &[i8],
    weights: &[i8],
    bias: &[i32],
    output: &mut [i8],
) -> Result<(), KernelError> {
    check(params, quant, input, weights, bias, output)?;
    #[cfg(all(target_arch = "arm", feature = "dsp"))]
    if fast::dense(params, quant, input, weights, bias, output) {
        return Ok(());
    }
    scalar(params, quant, input, weights, bias, output);
    Ok(())
}

/// The scalar loop, the reference [`dense`]'s other paths must equal bit for bit. Same contract
/// and errors as [`dense`].
pub fn dense_scalar(
    params: &DenseParams,
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
    params: &DenseParams,
    quant: &PerChannelQuant<'_>,
    input: &[i8],
    weights: &[i8],
    bias: &[i32],
    output: &[i8],
) -> Result<(), KernelError> {
    nonzero(params.in_features, Param::InChannels)?;
    nonzero(params.out_features, Param::OutChannels)?;
    check_input_offset(params.input_offset)?;
    check_output_offset(params.output_offset)?;
    params.clamp.check()?;
    check_len(Buffer::Input, params.in_features, input.len())?;
    check_len(Buffer::Weights, params.weights_len()?, weights.len())?;
    check_channel_params(quant, bias, params.out_features)?;
    check_len(Buffer::Output, params.out_features, output.len())
}

fn scalar(
    params: &DenseParams,
    quant: &PerChannelQuant<'_>,
    input: &[i8],
    weights: &[i8],
    bias: &[i32],
    output: &mut [i8],
) {
    let outputs = output
        .iter_mut()
        .zip(weights.chunks_exact(params.in_features))
        .zip(bias)
        .zip(quant.multipliers.iter().zip(quant.shifts));
    for (((y, w), &b), (&m, &s)) in outputs {
        let acc = b.wrapping_add(dot(input, w, params.input_offset));
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

/// The Cortex-M4 DSP path (CMSIS-NN's `arm_nn_vec_mat_mult_t_s8` scheme): the input once as
/// int16 pairs with the offset added, in the "even/odd" order of `SXTB16`, so each group of
/// four weights is one `LDR` and two `SXTB16` feeding two `SMLAD`s; two outputs per pass share
/// the input loads. Buffers are already checked.
#[cfg(all(target_arch = "arm", feature = "dsp"))]
mod fast {
    use super::{DenseParams, PerChannelQuant};
    use crate::kernels::dsp::{
        load4, sadd16, smlad, splat16, unpack4_reordered, ChannelQuant, Output,
    };

    /// Words of the packed input: up to 1792 features (3584 bytes).
    const X_WORDS: usize = 896;
    // The buffers leave room for the frames within the published bound.
    const _: () = assert!(4 * X_WORDS + 512 <= crate::kernels::DSP_STACK_BYTES);

    /// Runs the layer if its input fits the stack buffer; `false` (nothing written) otherwise.
    pub(super) fn dense(
        params: &DenseParams,
        quant: &PerChannelQuant<'_>,
        input: &[i8],
        weights: &[i8],
        bias: &[i32],
        output: &mut [i8],
    ) -> bool {
        if params.in_features / 4 * 2 > X_WORDS {
            return false;
        }
        let args = (params, quant, input, weights, bias);
        run(args, output);
        true
    }

    type Args<'a, 'b> = (
        &'a DenseParams,
        &'a PerChannelQuant<'b>,
        &'a [i8],
        &'a [i8],
        &'a [i32],
    );

    #[inline(never)]
    fn run(args: Args<'_, '_>, output: &mut [i8]) {
        let (params, quant, input, weights, bias) = args;
        let in_features = params.in_features;
        let offset = params.input_offset;
        let offset_pair = splat16(offset);
        let groups = in_features / 4;
        let mut xbuf = [0u32; X_WORDS];
        let x = &mut xbuf[..2 * groups];
        let chunks = input.chunks_exact(4);
        let x_tail = chunks.remainder();
        for (words, v) in x.chunks_exact_mut(2).zip(chunks) {
            let (even, odd) = unpack4_reordered(load4(&[v[0], v[1], v[2], v[3]]));
            words[0] = sadd16(even, offset_pair);
            words[1] = sadd16(odd, offset_pair);
        }
        let x = &*x;
        let out = Output::new(quant, params.output_offset, params.clamp);
        let per_pair = output
            .chunks_mut(2)
            .zip(weights.chunks(2 * in_features))
            .zip(bias.chunks(2))
            .zip(quant.multipliers.chunks(2).zip(quant.shifts.chunks(2)));
        for (((dst, w2), b2), (m2, s2)) in per_pair {
            let (w0, w1) = w2.split_at(in_features.min(w2.len()));
            match (dst, b2, m2, s2) {
                ([d0, d1], &[b0, b1], &[m0, m1], &[s0, s1]) => {
                    let (a0, a1) = row_dot2(x, x_tail, (w0, w1), (b0, b1), offset);
                    let q = [ChannelQuant::new(m0, s0), ChannelQuant::new(m1, s1)];
                    let mut pair = [0i8; 2];
                    out.store2(a0, a1, &q, &mut pair);
                    *d0 = pair[0];
                    *d1 = pair[1];
                }
                ([d0], &[b0], &[m0], &[s0]) => {
                    let (a0, _) = row_dot2(x, x_tail, (w0, w0), (b0, b0), offset);
                    *d0 = out.one(a0, &ChannelQuant::new(m0, s0));
                }
                _ => {}
            }
        }
    }

    /// Two rows' dot products with the packed input (`x_tail`: the last `in_features % 4`
    /// inputs, unpacked), each starting from its bias.
    #[inline(always)]
    fn row_dot2(
        x: &[u32],
        x_tail: &[i8],
        (w0, w1): (&[i8], &[i8]),
        (b0, b1): (i32, i32),
        offset: i32,
    ) -> (i32, i32) {
        let (mut a0, mut a1) = (b0, b1);
        let (r0, r1) = (w0.chunks_exact(4), w1.chunks_exact(4));
        let (t0, t1) = (r0.remainder(), r1.remainder());
        for ((xw, c0), c1) in x.chunks_exact(2).zip(r0).zip(r1) {
            let (e0, o0) = unpack4_reordered(load4(&[c0[0], c0[1], c0[2], c0[3]]));
            let (e1, o1) = unpack4_reordered(load4(&[c1[0], c1[1], c1[2], c1[3]]));
            a0 = smlad(xw[0], e0, a0);
            a1 = smlad(xw[0], e1, a1);
            a0 = smlad(xw[1], o0, a0);
            a1 = smlad(xw[1], o1, a1);
        }
        for ((&xv, &v0), &v1) in x_tail.iter().zip(t0).zip(t1) {
            let xv = i32::from(xv) + offset;
            a0 = a0.wrapping_add(xv.wrapping_mul(i32::from(v0)));
            a1 = a1.wrapping_add(xv.wrapping_mul(i32::from(v1)));
        }
        (a0, a1)
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
        params: DenseParams,
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

    fn reference(c: &Case) -> Vec<i8> {
        let p = &c.params;
        (0..p.out_features)
            .map(|o| {
                let mut acc = i64::from(c.bias[o]);
                for i in 0..p.in_features {
                    let x = i64::from(c.input[i]) + i64::from(p.input_offset);
                    acc += x * i64::from(c.weights[o * p.in_features + i]);
                }
                naive_output(acc, c.multipliers[o], c.shifts[o], p.output_offset, p.clamp)
            })
            .collect()
    }

    fn case() -> impl Strategy<Value = Case> {
        // In features up to 16 channels x 40 steps, as after a flatten.
        (
            1usize..=640,
            1usize..=16,
            input_offset(),
            output_offset(),
            clamp(),
        )
            .prop_flat_map(|(inf, outf, ioff, ooff, clamp)| {
                let params = DenseParams {
                    in_features: inf,
                    out_features: outf,
                    input_offset: ioff,
                    output_offset: ooff,
                    clamp,
                };
                (
                    Just(params),
                    data(inf),
                    data(inf * outf),
                    bias(outf),
                    per_channel(outf),
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
            let mut out = vec![0i8; c.params.out_features];
            dense(&c.params, &c.quant(), &c.input, &c.weights, &c.bias, &mut out).unwrap();
            prop_assert_eq!(out, reference(&c));
        }

        #[test]
        fn wrong_lengths_are_errors(c in case(), which in 0usize..6) {
            let mut c = c;
            let mut out_len = c.params.out_features;
            match which {
                0 => c.input.push(0),
                1 => { c.weights.pop(); }
                2 => c.bias.push(0),
                3 => { c.multipliers.pop(); }
                4 => c.shifts.push(0),
                _ => out_len += 1,
            }
            let mut out = vec![7i8; out_len];
            let result = dense(&c.params, &c.quant(), &c.input, &c.weights, &c.bias, &mut out);
            let is_len_error = matches!(result, Err(KernelError::BufferLen { .. }));
            prop_assert!(is_len_error);
            prop_assert!(out.iter().all(|&v| v == 7));
        }
    }

    #[test]
    fn hand_computed() {
        // Input zero point -2 (offset 2): x + 2 = [3, 0, 5].
        let p = DenseParams {
            in_features: 3,
            out_features: 2,
            input_offset: 2,
            output_offset: -1,
            clamp: Clamp::NONE,
        };
        let quant = PerChannelQuant {
            multipliers: &[1 << 30, 1 << 30],
            shifts: &[1, -1], // 1.0 and 0.25
        };
        let mut out = [0i8; 2];
        dense(
            &p,
            &quant,
            &[1, -2, 3],
            &[1, 2, 3, -1, 0, 1],
            &[4, -4],
            &mut out,
        )
        .unwrap();
        // o0: 3 + 0 + 15 + 4 = 22 -> 22 - 1 = 21; o1: -3 + 5 - 4 = -2 -> -0.5 -> -1, -1 -> -2.
        assert_eq!(out, [21, -2]);
        // ReLU at the output zero point -1.
        let p = DenseParams {
            clamp: Clamp::relu(-1),
            ..p
        };
        dense(
            &p,
            &quant,
            &[1, -2, 3],
            &[1, 2, 3, -1, 0, 1],
            &[4, -4],
            &mut out,
        )
        .unwrap();
        assert_eq!(out, [21, -1]);
        assert_eq!(p.macs(), Ok(6));
        assert_eq!(scratch_len(&p), 0);
    }

    #[test]
    fn parameter_errors() {
        let p = DenseParams {
            in_features: 0,
            out_features: 1,
            input_offset: 0,
            output_offset: 0,
            clamp: Clamp::NONE,
        };
        let quant = PerChannelQuant {
            multipliers: &[1],
            shifts: &[0],
        };
        let mut out = [0i8; 1];
        assert_eq!(
            dense(&p, &quant, &[], &[], &[0], &mut out),
            Err(KernelError::InvalidParam(Param::InChannels))
        );
        let p = DenseParams {
            in_features: 1,
            input_offset: -128,
            ..p
        };
        assert_eq!(
            dense(&p, &quant, &[0], &[0], &[0], &mut out),
            Err(KernelError::InvalidParam(Param::InputOffset))
        );
    }
}
