//! The Cortex-M4 DSP extension (`SMLAD`, `SXTB16`, `SMMLAR`, `SSUB8`/`SEL`...) through stable
//! `asm!`, and the pieces the fast kernel paths share: packed int16 operands, the per-channel
//! requantisation constants and the output stage.
//!
//! Compiled only where `target_arch = "arm"` and the `dsp` Cargo feature hold (see
//! `kernels/mod.rs`). The `core::arch::arm` intrinsics are unstable and there is no `__sxtb16`,
//! so each instruction is a small `asm!` wrapper here; every wrapper only reads and writes the
//! registers it names. Every fast path built on them is checked bit for bit against the scalar
//! reference on QEMU (`firmware/app`).
//!
//! Packed operands: a `u32` holds two int16 lanes, lane 0 in bits 0..16 ("natural" order:
//! element `2i` in lane 0 and `2i + 1` in lane 1). Activations are packed with the input offset
//! already added (`x + input_offset` lies in `-255..=255`), weights as they are, so
//! `SMLAD(x, w, acc) = acc + x0 * w0 + x1 * w1` exactly, modulo 2^32 as the scalar path's
//! wrapping accumulation.

use core::arch::asm;

use super::params::{Clamp, PerChannelQuant};
use crate::quant::requantize_to_i8;

/// `acc + lo(x) * lo(y) + hi(x) * hi(y)`, modulo 2^32 (`SMLAD`).
#[inline(always)]
#[allow(unsafe_code)]
pub(crate) fn smlad(x: u32, y: u32, acc: i32) -> i32 {
    let r: i32;
    // SAFETY: `smlad` reads three registers and writes one; no memory or stack access. It may
    // set the Q flag, so flags are not declared preserved.
    unsafe {
        asm!(
            "smlad {r}, {x}, {y}, {a}",
            r = lateout(reg) r,
            x = in(reg) x,
            y = in(reg) y,
            a = in(reg) acc,
            options(pure, nomem, nostack),
        );
    }
    r
}

/// The four dot products of a 2 positions x 2 channels block over `n4` groups of four words:
/// `x[i] = [position 0, position 1]` and `w[i] = [channel 0, channel 1]` are int16 pairs;
/// returns `[p0c0, p0c1, p1c0, p1c1]`, each `init[c] + sum(SMLAD)`. Reads `min(x.len(),
/// w.len())` words rounded down to a multiple of 4 (nothing when that is 0).
#[inline(always)]
#[allow(unsafe_code)]
pub(crate) fn dot2x2(x: &[[u32; 2]], w: &[[u32; 2]], init: [i32; 2]) -> [i32; 4] {
    let groups = x.len().min(w.len()) / 4;
    let (mut a00, mut a01, mut a10, mut a11) = (init[0], init[1], init[0], init[1]);
    if groups == 0 {
        return [a00, a01, a10, a11];
    }
    // SAFETY: the loop runs `groups >= 1` times and each pass reads 4 `[u32; 2]` (32 bytes)
    // from each pointer, post-incremented, so it reads exactly the first `4 * groups` elements
    // of `x` and of `w`, both in bounds; `[u32; 2]` is word aligned as `ldrd` needs. Only the
    // named registers are written; flags are clobbered (`subs`, and Q by `smlad`).
    unsafe {
        asm!(
            "2:",
            "ldrd {x0}, {x1}, [{px}], #8",
            "ldrd {w0}, {w1}, [{pw}], #8",
            "smlad {a00}, {x0}, {w0}, {a00}",
            "smlad {a01}, {x0}, {w1}, {a01}",
            "smlad {a10}, {x1}, {w0}, {a10}",
            "smlad {a11}, {x1}, {w1}, {a11}",
            "ldrd {x0}, {x1}, [{px}], #8",
            "ldrd {w0}, {w1}, [{pw}], #8",
            "smlad {a00}, {x0}, {w0}, {a00}",
            "smlad {a01}, {x0}, {w1}, {a01}",
            "smlad {a10}, {x1}, {w0}, {a10}",
            "smlad {a11}, {x1}, {w1}, {a11}",
            "ldrd {x0}, {x1}, [{px}], #8",
            "ldrd {w0}, {w1}, [{pw}], #8",
            "smlad {a00}, {x0}, {w0}, {a00}",
            "smlad {a01}, {x0}, {w1}, {a01}",
            "smlad {a10}, {x1}, {w0}, {a10}",
            "smlad {a11}, {x1}, {w1}, {a11}",
            "ldrd {x0}, {x1}, [{px}], #8",
            "ldrd {w0}, {w1}, [{pw}], #8",
            "smlad {a00}, {x0}, {w0}, {a00}",
            "smlad {a01}, {x0}, {w1}, {a01}",
            "smlad {a10}, {x1}, {w0}, {a10}",
            "smlad {a11}, {x1}, {w1}, {a11}",
            "subs {n}, {n}, #1",
            "bne 2b",
            px = inout(reg) x.as_ptr() => _,
            pw = inout(reg) w.as_ptr() => _,
            n = inout(reg) groups => _,
            a00 = inout(reg) a00,
            a01 = inout(reg) a01,
            a10 = inout(reg) a10,
            a11 = inout(reg) a11,
            x0 = out(reg) _,
            x1 = out(reg) _,
            w0 = out(reg) _,
            w1 = out(reg) _,
            options(readonly, nostack),
        );
    }
    [a00, a01, a10, a11]
}

/// Lane-wise `a + b` of two int16 pairs (`SADD16`; no lane overflows for the values used here).
#[inline(always)]
#[allow(unsafe_code)]
pub(crate) fn sadd16(a: u32, b: u32) -> u32 {
    let r: u32;
    // SAFETY: register-only arithmetic; sets the GE flags, so flags are not declared preserved.
    unsafe {
        asm!(
            "sadd16 {r}, {a}, {b}",
            r = lateout(reg) r,
            a = in(reg) a,
            b = in(reg) b,
            options(pure, nomem, nostack),
        );
    }
    r
}

/// Four int8 values (one little-endian word) as two natural-order int16 pairs with `offset`
/// (both lanes of the word `offset_pair`) added: `([b0, b1], [b2, b3])`, each `+ offset`.
#[inline(always)]
#[allow(unsafe_code)]
pub(crate) fn unpack4(word: u32, offset_pair: u32) -> (u32, u32) {
    let lo: u32;
    let hi: u32;
    // SAFETY: register-only arithmetic (`sxtb16`, `sadd16`, `pkhbt`, `pkhtb`); `sadd16` sets
    // the GE flags, so flags are not declared preserved.
    unsafe {
        asm!(
            "sxtb16 {e}, {w}",
            "sxtb16 {o}, {w}, ror #8",
            "sadd16 {e}, {e}, {off}",
            "sadd16 {o}, {o}, {off}",
            "pkhbt {lo}, {e}, {o}, lsl #16",
            "pkhtb {hi}, {o}, {e}, asr #16",
            w = in(reg) word,
            off = in(reg) offset_pair,
            e = out(reg) _,
            o = out(reg) _,
            lo = lateout(reg) lo,
            hi = lateout(reg) hi,
            options(pure, nomem, nostack),
        );
    }
    (lo, hi)
}

/// Four int8 values (one little-endian word) as two int16 pairs in "even/odd" order:
/// `([b0, b2], [b1, b3])` (`SXTB16` and `SXTB16 ROR #8`, CMSIS-NN's `read_and_pad_reordered`).
#[inline(always)]
#[allow(unsafe_code)]
pub(crate) fn unpack4_reordered(word: u32) -> (u32, u32) {
    let even: u32;
    let odd: u32;
    // SAFETY: register-only arithmetic; flags untouched.
    unsafe {
        asm!(
            "sxtb16 {e}, {w}",
            "sxtb16 {o}, {w}, ror #8",
            w = in(reg) word,
            // `out`, not `lateout`: the first result must not take the input's register, which
            // the second instruction still reads.
            e = out(reg) even,
            o = lateout(reg) odd,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    (even, odd)
}

/// A little-endian word of four int8 values (a single `LDR`; unaligned loads are fine on
/// ARMv7-M).
#[inline(always)]
pub(crate) fn load4(bytes: &[i8; 4]) -> u32 {
    u32::from_le_bytes([
        bytes[0] as u8,
        bytes[1] as u8,
        bytes[2] as u8,
        bytes[3] as u8,
    ])
}

/// Both int16 lanes set to `value` (which must fit an int16).
#[inline(always)]
pub(crate) const fn splat16(value: i32) -> u32 {
    let half = value as u16 as u32;
    half | (half << 16)
}

/// All four int8 lanes set to `value`.
#[inline(always)]
pub(crate) const fn splat8(value: i8) -> u32 {
    (value as u8 as u32) * 0x0101_0101
}

/// The natural-order pair `[lo, hi]` of two int16 values.
#[inline(always)]
pub(crate) const fn pair(lo: i32, hi: i32) -> u32 {
    (lo as u16 as u32) | ((hi as u16 as u32) << 16)
}

/// One channel's requantisation as the DSP instructions compute it: the Q31 multiplier `m`
/// (in `[2^30, 2^31)`) as `2 * m` modulo 2^32, and the left and right shifts of
/// [`crate::quant::requantize`]; the raw pair for the scalar stage.
///
/// With `b = 2m - 2^32`, `SMMLAR(a, b, a) = (a * 2^32 + a * b + 2^31) >> 32
/// = floor((a * m + 2^30) / 2^31)`, which is the saturating rounding doubling high multiply
/// (saturation happens only for `m = i32::MIN`, excluded here). The rounding right shift by
/// `e` (half away from zero) is `(t >> e) + carry` with `t = y - (y < 0)`: `ASRS` leaves the
/// last bit shifted out, bit `e - 1` of `t`, in the carry flag; for `e = 0` the `ADDS` that
/// forms `t` leaves the carry set exactly when `y < 0`, undoing the `- 1`.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C)]
pub(crate) struct ChannelQuant {
    /// `2 * multiplier` modulo 2^32.
    pub b: u32,
    /// Right shift, `-shift` for `shift <= 0`, at most 31, else 0.
    pub right: u32,
    /// Left shift, `shift` for `shift > 0` (modulo 32, as `wrapping_shl`), else 0.
    pub left: u32,
    /// The multiplier as given.
    pub multiplier: i32,
    /// The shift as given.
    pub shift: i32,
}

impl ChannelQuant {
    /// The constants for `(multiplier, shift)` (the DSP ones are meaningful only for
    /// multipliers in `[2^30, 2^31)`; see [`OutputStage::of`]).
    #[inline]
    pub(crate) fn new(multiplier: i32, shift: i32) -> ChannelQuant {
        let (left, right) = if shift > 0 {
            (shift as u32 & 31, 0)
        } else {
            (0, shift.unsigned_abs().min(31))
        };
        ChannelQuant {
            b: (multiplier as u32).wrapping_mul(2),
            right,
            left,
            multiplier,
            shift,
        }
    }
}

/// Every multiplier in `[2^30, 2^31)` and every shift `<= -1`: [`requant_right`].
pub(crate) const STAGE_RIGHT: u8 = 0;
/// Every multiplier in `[2^30, 2^31)`: [`requant_general`].
pub(crate) const STAGE_GENERAL: u8 = 1;
/// Some other multiplier: the scalar [`requantize_to_i8`].
pub(crate) const STAGE_SCALAR: u8 = 2;

/// The output stage that covers every channel of `quant` (`STAGE_*`).
pub(crate) fn stage_of(quant: &PerChannelQuant<'_>) -> u8 {
    let mut stage = STAGE_RIGHT;
    for (&m, &s) in quant.multipliers.iter().zip(quant.shifts) {
        if m < (1 << 30) {
            return STAGE_SCALAR;
        }
        if s > -1 {
            stage = STAGE_GENERAL;
        }
    }
    stage
}

/// `requantize(acc, m, shift) + output_offset` for a multiplier in `[2^30, 2^31)` and a shift
/// `<= -1` (`right` in `1..=31`, no left shift). The result lies within `±2^30 + 128`, so the
/// offset is added without saturation.
#[inline(always)]
#[allow(unsafe_code)]
pub(crate) fn requant_right(acc: i32, q: &ChannelQuant, output_offset: i32) -> i32 {
    let r: i32;
    // SAFETY: register-only arithmetic (`smmlar`, `add`, `asrs`, `adc`); the flags are
    // clobbered (not declared preserved).
    unsafe {
        asm!(
            "smmlar {t}, {a}, {b}, {a}",
            "add {t}, {t}, {t}, asr #31",
            "asrs {t}, {t}, {e}",
            "adc {r}, {t}, {off}",
            a = in(reg) acc,
            b = in(reg) q.b,
            e = in(reg) q.right,
            off = in(reg) output_offset,
            t = out(reg) _,
            r = lateout(reg) r,
            options(pure, nomem, nostack),
        );
    }
    r
}

/// `requantize(acc, m, shift).saturating_add(output_offset)` for a multiplier in
/// `[2^30, 2^31)` and any shift.
#[inline(always)]
#[allow(unsafe_code)]
pub(crate) fn requant_general(acc: i32, q: &ChannelQuant, output_offset: i32) -> i32 {
    let r: i32;
    // SAFETY: register-only arithmetic (`lsl`, `smmlar`, `adds`, `asrs`, `adc`, `qadd`); the
    // flags are clobbered (not declared preserved).
    unsafe {
        asm!(
            "lsl {a}, {a}, {l}",
            "smmlar {t}, {a}, {b}, {a}",
            "adds {t}, {t}, {t}, asr #31",
            "asrs {t}, {t}, {e}",
            "adc {t}, {t}, #0",
            "qadd {r}, {t}, {off}",
            a = inout(reg) acc => _,
            l = in(reg) q.left,
            b = in(reg) q.b,
            e = in(reg) q.right,
            off = in(reg) output_offset,
            t = out(reg) _,
            r = lateout(reg) r,
            options(pure, nomem, nostack),
        );
    }
    r
}

/// One requantised value (with the output offset) saturated to int8 and clamped to
/// `[min, max]`, in byte 0.
#[inline(always)]
#[allow(unsafe_code)]
pub(crate) fn clamp1(v: i32, min_q: u32, max_q: u32) -> u32 {
    let r: u32;
    // SAFETY: register-only arithmetic (`ssat`, `ssub8`, `sel`); flags clobbered.
    unsafe {
        asm!(
            "ssat {r}, #8, {v}",
            "ssub8 {t}, {r}, {lo}",
            "sel {r}, {r}, {lo}",
            "ssub8 {t}, {hi}, {r}",
            "sel {r}, {r}, {hi}",
            v = in(reg) v,
            lo = in(reg) min_q,
            hi = in(reg) max_q,
            t = out(reg) _,
            r = out(reg) r,
            options(pure, nomem, nostack),
        );
    }
    r
}

/// The output stage of one layer: how to requantise (`STAGE_*`, from [`stage_of`]), the output
/// offset and the clamp bounds (`#[repr(C)]`: the asm of [`Output::store2`] reads `offset`,
/// `min_q` and `max_q` at offsets 0, 4 and 8).
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub(crate) struct Output {
    pub offset: i32,
    pub min_q: u32,
    pub max_q: u32,
    pub clamp: Clamp,
    pub stage: u8,
}

impl Output {
    pub(crate) fn new(quant: &PerChannelQuant<'_>, offset: i32, clamp: Clamp) -> Output {
        Output {
            offset,
            min_q: splat8(clamp.min),
            max_q: splat8(clamp.max),
            clamp,
            stage: stage_of(quant),
        }
    }

    /// Two outputs of channels `q[0]` and `q[1]` into `dst`: the whole output stage in one
    /// `asm!` block for the DSP stages (so the accumulators stay in registers), else
    /// [`Output::two`].
    #[inline(always)]
    #[allow(unsafe_code)]
    pub(crate) fn store2(&self, acc0: i32, acc1: i32, q: &[ChannelQuant; 2], dst: &mut [i8; 2]) {
        if self.stage == STAGE_RIGHT {
            // SAFETY: reads `q[0].b`, `q[0].right` (offsets 0, 4), `q[1].b`, `q[1].right`
            // (20, 24) of the `#[repr(C)]` `[ChannelQuant; 2]` and `offset`, `min_q`, `max_q`
            // (0, 4, 8) of the `#[repr(C)]` `Output`, all word aligned for `ldrd`; writes the
            // two bytes of `dst` (`strh` may be unaligned on ARMv7-M). No stack use.
            unsafe {
                asm!(
                    "ldrd {b}, {e}, [{q}]",
                    "ldr {off}, [{o}]",
                    "smmlar {t}, {a0}, {b}, {a0}",
                    "add {t}, {t}, {t}, asr #31",
                    "asrs {t}, {t}, {e}",
                    "adc {a0}, {t}, {off}",
                    "ldrd {b}, {e}, [{q}, #20]",
                    "smmlar {t}, {a1}, {b}, {a1}",
                    "add {t}, {t}, {t}, asr #31",
                    "asrs {t}, {t}, {e}",
                    "adc {a1}, {t}, {off}",
                    "ldrd {b}, {e}, [{o}, #4]",
                    "ssat {a0}, #8, {a0}",
                    "ssat {a1}, #8, {a1}",
                    "bfi {a0}, {a1}, #8, #8",
                    "ssub8 {t}, {a0}, {b}",
                    "sel {a0}, {a0}, {b}",
                    "ssub8 {t}, {e}, {a0}",
                    "sel {a0}, {a0}, {e}",
                    "strh {a0}, [{d}]",
                    a0 = inout(reg) acc0 => _,
                    a1 = inout(reg) acc1 => _,
                    q = in(reg) q.as_ptr(),
                    o = in(reg) self as *const Output,
                    d = in(reg) dst.as_mut_ptr(),
                    b = out(reg) _,
                    e = out(reg) _,
                    t = out(reg) _,
                    off = out(reg) _,
                    options(nostack),
                );
            }
        } else if self.stage == STAGE_GENERAL {
            self.store2_general(acc0, acc1, q, dst);
        } else {
            *dst = [self.scalar(acc0, &q[0]), self.scalar(acc1, &q[1])];
        }
    }

    /// [`Output::store2`] for [`STAGE_GENERAL`] (out of line: rare, and it keeps the kernels
    /// small).
    #[inline(never)]
    #[allow(unsafe_code)]
    fn store2_general(&self, acc0: i32, acc1: i32, q: &[ChannelQuant; 2], dst: &mut [i8; 2]) {
        // SAFETY: as in `store2`, also reading `q[0].left` and `q[1].left` (offsets 8, 28).
        unsafe {
            asm!(
                "ldrd {b}, {e}, [{q}]",
                "ldr {l}, [{q}, #8]",
                "ldr {off}, [{o}]",
                "lsl {a0}, {a0}, {l}",
                "smmlar {t}, {a0}, {b}, {a0}",
                "adds {t}, {t}, {t}, asr #31",
                "asrs {t}, {t}, {e}",
                "adc {t}, {t}, #0",
                "qadd {a0}, {t}, {off}",
                "ldrd {b}, {e}, [{q}, #20]",
                "ldr {l}, [{q}, #28]",
                "lsl {a1}, {a1}, {l}",
                "smmlar {t}, {a1}, {b}, {a1}",
                "adds {t}, {t}, {t}, asr #31",
                "asrs {t}, {t}, {e}",
                "adc {t}, {t}, #0",
                "qadd {a1}, {t}, {off}",
                "ldrd {b}, {e}, [{o}, #4]",
                "ssat {a0}, #8, {a0}",
                "ssat {a1}, #8, {a1}",
                "bfi {a0}, {a1}, #8, #8",
                "ssub8 {t}, {a0}, {b}",
                "sel {a0}, {a0}, {b}",
                "ssub8 {t}, {e}, {a0}",
                "sel {a0}, {a0}, {e}",
                "strh {a0}, [{d}]",
                a0 = inout(reg) acc0 => _,
                a1 = inout(reg) acc1 => _,
                q = in(reg) q.as_ptr(),
                o = in(reg) self as *const Output,
                d = in(reg) dst.as_mut_ptr(),
                b = out(reg) _,
                e = out(reg) _,
                l = out(reg) _,
                t = out(reg) _,
                off = out(reg) _,
                options(nostack),
            );
        }
    }

    /// One output.
    #[inline(never)]
    pub(crate) fn one(&self, acc: i32, q: &ChannelQuant) -> i8 {
        match self.stage {
            STAGE_RIGHT => clamp1(requant_right(acc, q, self.offset), self.min_q, self.max_q) as i8,
            STAGE_GENERAL => {
                clamp1(requant_general(acc, q, self.offset), self.min_q, self.max_q) as i8
            }
            _ => self.scalar(acc, q),
        }
    }

    #[inline(never)]
    fn scalar(&self, acc: i32, q: &ChannelQuant) -> i8 {
        requantize_to_i8(
            acc,
            q.multiplier,
            q.shift,
            self.offset,
            self.clamp.min,
            self.clamp.max,
        )
    }
}

/// Writes a stream of int8 values (`+ offset`) and zeros as natural-order int16 pairs into
/// lane `lane` (0 or 1) of consecutive words of `dst`; the words after the stream are zeroed
/// by [`Packer::finish`]. Callers size `dst` for the whole stream (extra values are dropped).
pub(crate) struct Packer<'a> {
    dst: &'a mut [[u32; 2]],
    /// Next word to write.
    pos: usize,
    /// A value waiting for its partner in the upper lane.
    pending: Option<i32>,
    offset: i32,
    offset_pair: u32,
    lane: usize,
}

impl<'a> Packer<'a> {
    pub(crate) fn new(dst: &'a mut [[u32; 2]], lane: usize, offset: i32) -> Self {
        Packer {
            lane: lane & 1,
            dst,
            pos: 0,
            pending: None,
            offset,
            offset_pair: splat16(offset),
        }
    }

    #[inline]
    fn push(&mut self, value: i32) {
        match self.pending.take() {
            None => self.pending = Some(value),
            Some(lo) => {
                if let Some(word) = self.dst.get_mut(self.pos) {
                    word[self.lane & 1] = pair(lo, value);
                }
                self.pos += 1;
            }
        }
    }

    /// `count` zeros (padding taps: the input zero point, which adds nothing).
    #[inline]
    pub(crate) fn zeros(&mut self, count: usize) {
        let mut count = count;
        if self.pending.is_some() && count > 0 {
            self.push(0);
            count -= 1;
        }
        let words = count / 2;
        let end = (self.pos + words).min(self.dst.len());
        let lane = self.lane & 1;
        for word in self.dst.get_mut(self.pos..end).unwrap_or(&mut []) {
            word[lane] = 0;
        }
        self.pos += words;
        if count % 2 == 1 {
            self.push(0);
        }
    }

    /// The values of `src`, each plus the offset.
    #[inline]
    pub(crate) fn values(&mut self, src: &[i8]) {
        let mut src = src;
        if self.pending.is_some() {
            if let Some((&first, rest)) = src.split_first() {
                self.push(i32::from(first) + self.offset);
                src = rest;
            }
        }
        let chunks = src.chunks_exact(4);
        let tail = chunks.remainder();
        let start = self.pos.min(self.dst.len());
        let mut written = 0;
        let lane = self.lane & 1;
        for (words, x) in self.dst[start..].chunks_exact_mut(2).zip(chunks) {
            let (lo, hi) = unpack4(load4(&[x[0], x[1], x[2], x[3]]), self.offset_pair);
            words[0][lane] = lo;
            words[1][lane] = hi;
            written += 2;
        }
        self.pos += written;
        for &x in tail {
            self.push(i32::from(x) + self.offset);
        }
    }

    /// Flushes a pending value and zeroes the rest of `dst`.
    pub(crate) fn finish(mut self) {
        if self.pending.is_some() {
            self.push(0);
        }
        let lane = self.lane & 1;
        for word in self.dst.get_mut(self.pos..).unwrap_or(&mut []) {
            word[lane] = 0;
        }
    }
}
