//! Proptest strategies and the naive output stage shared by the kernels' tests.

use proptest::prelude::*;
use std::vec::Vec;

use super::params::{Clamp, Padding, Pool1dParams};

/// Q31 multipliers in `[2^30, 2^31)` and shifts in `-10..=0`, one pair per channel.
pub fn per_channel(channels: usize) -> impl Strategy<Value = (Vec<i32>, Vec<i32>)> {
    (
        proptest::collection::vec((1i32 << 30)..=i32::MAX, channels),
        proptest::collection::vec(-10i32..=0, channels),
    )
}

/// `-input_zero_point` for a random int8 zero point.
pub fn input_offset() -> impl Strategy<Value = i32> {
    any::<i8>().prop_map(|zp| -i32::from(zp))
}

/// A random output zero point, as `output_offset`.
pub fn output_offset() -> impl Strategy<Value = i32> {
    any::<i8>().prop_map(i32::from)
}

/// No activation, ReLU at a random zero point, or a random valid range.
pub fn clamp() -> impl Strategy<Value = Clamp> {
    prop_oneof![
        Just(Clamp::NONE),
        any::<i8>().prop_map(Clamp::relu),
        (any::<i8>(), any::<i8>()).prop_map(|(a, b)| Clamp {
            min: a.min(b),
            max: a.max(b)
        }),
    ]
}

/// Either padding rule.
pub fn padding() -> impl Strategy<Value = Padding> {
    prop_oneof![Just(Padding::Same), Just(Padding::Valid)]
}

/// Bias values that keep the i64 reference accumulator inside i32 for the tested shapes.
pub fn bias(channels: usize) -> impl Strategy<Value = Vec<i32>> {
    proptest::collection::vec(-(1i32 << 17)..(1i32 << 17), channels)
}

/// Random int8 data.
pub fn data(len: usize) -> impl Strategy<Value = Vec<i8>> {
    proptest::collection::vec(any::<i8>(), len)
}

/// The naive output stage: an i64 accumulator that must fit i32, the crate's one
/// `requantize`, the offset and the clamp in i64.
pub fn naive_output(acc: i64, multiplier: i32, shift: i32, output_offset: i32, clamp: Clamp) -> i8 {
    let acc = i32::try_from(acc).expect("reference accumulator overflows i32");
    let y = i64::from(crate::quant::requantize(acc, multiplier, shift)) + i64::from(output_offset);
    y.clamp(i64::from(clamp.min), i64::from(clamp.max)) as i8
}

/// The naive padding and output length, written out independently of `window_output_len`.
pub fn naive_geometry(
    length: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    padding: Padding,
) -> Option<(i64, usize)> {
    let pad = match padding {
        Padding::Same => (dilation * (kernel - 1) / 2) as i64,
        Padding::Valid => 0,
    };
    let room = length as i64 + 2 * pad - (dilation * (kernel - 1)) as i64 - 1;
    if room < 0 {
        None
    } else {
        Some((pad, (room / stride as i64) as usize + 1))
    }
}

/// A random pool: channels 1..=16, length 1..=40, window 1..=9, stride 1..=4, and its input.
pub fn pool_case() -> impl Strategy<Value = (Pool1dParams, Vec<i8>)> {
    (
        1usize..=16,
        1usize..=40,
        1usize..=9,
        1usize..=4,
        padding(),
        clamp(),
    )
        .prop_flat_map(|(ch, len, window, stride, padding, clamp)| {
            let params = Pool1dParams {
                length: len,
                channels: ch,
                window,
                stride,
                padding,
                clamp,
            };
            (Just(params), data(len * ch))
        })
}
