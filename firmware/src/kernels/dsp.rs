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

/// The four dot products of a 2 positions x 2 channels block over `groups` groups of four
/// int16 values, four groups per pass: `x0` and `x1` hold the two positions' windows, two words
/// per group in the "even/odd" order of [`unpack4_reordered`] (`[v0, v2]`, `[v1, v3]`); `w`
/// holds four words per group, `[c0 even, c0 odd, c1 even, c1 odd]`. Returns `[p0c0, p0c1,
/// p1c0, p1c1]`, each `init[c] + sum(SMLAD)`, or `init` alone when a slice is shorter than the
/// passes need (`passes = w.len() / 16`; `x0` and `x1` need `8 * passes` words).
#[inline(always)]
#[allow(unsafe_code)]
pub(crate) fn dot2x2(x0: &[u32], x1: &[u32], w: &[u32], init: [i32; 2]) -> [i32; 4] {
    let passes = w.len() / 16;
    let (mut a00, mut a01, mut a10, mut a11) = (init[0], init[1], init[0], init[1]);
    if passes == 0 || x0.len() < 8 * passes || x1.len() < 8 * passes {
        return [a00, a01, a10, a11];
    }
    // SAFETY: the loop runs `passes >= 1` times; each pass reads 8 words from `x0` and from
    // `x1` and 16 words from `w`, post-incremented, so it reads the first `8 * passes` words of
    // `x0` and `x1` and the first `16 * passes` of `w`, all in bounds (checked above); the
    // slices are of `u32`, word aligned as `ldrd` and `ldm` need. `r6` and `r7` (which cannot
    // be operands) are saved on the stack and restored; every other register written is an
    // operand. Flags are clobbered (`subs`, and Q by `smlad`).
    unsafe {
        asm!(
            "push {{r6, r7}}",
            "2:",
            "ldrd r6, r7, [r0], #8",
            "ldm r2!, {{r10, r11, r12, lr}}",
            "smlad r4, r6, r10, r4",
            "smlad r4, r7, r11, r4",
            "smlad r5, r6, r12, r5",
            "smlad r5, r7, lr, r5",
            "ldrd r6, r7, [r1], #8",
            "smlad r8, r6, r10, r8",
            "smlad r8, r7, r11, r8",
            "smlad r9, r6, r12, r9",
            "smlad r9, r7, lr, r9",
            "ldrd r6, r7, [r0], #8",
            "ldm r2!, {{r10, r11, r12, lr}}",
            "smlad r4, r6, r10, r4",
            "smlad r4, r7, r11, r4",
            "smlad r5, r6, r12, r5",
            "smlad r5, r7, lr, r5",
            "ldrd r6, r7, [r1], #8",
            "smlad r8, r6, r10, r8",
            "smlad r8, r7, r11, r8",
            "smlad r9, r6, r12, r9",
            "smlad r9, r7, lr, r9",
            "ldrd r6, r7, [r0], #8",
            "ldm r2!, {{r10, r11, r12, lr}}",
            "smlad r4, r6, r10, r4",
            "smlad r4, r7, r11, r4",
            "smlad r5, r6, r12, r5",
            "smlad r5, r7, lr, r5",
            "ldrd r6, r7, [r1], #8",
            "smlad r8, r6, r10, r8",
            "smlad r8, r7, r11, r8",
            "smlad r9, r6, r12, r9",
            "smlad r9, r7, lr, r9",
            "ldrd r6, r7, [r0], #8",
            "ldm r2!, {{r10, r11, r12, lr}}",
            "smlad r4, r6, r10, r4",
            "smlad r4, r7, r11, r4",
            "smlad r5, r6, r12, r5",
            "smlad r5, r7, lr, r5",
            "ldrd r6, r7, [r1], #8",
            "smlad r8, r6, r10, r8",
            "smlad r8, r7, r11, r8",
            "smlad r9, r6, r12, r9",
            "smlad r9, r7, lr, r9",
            "subs r3, r3, #1",
            "bne 2b",
            "pop {{r6, r7}}",
            inout("r0") x0.as_ptr() => _,
            inout("r1") x1.as_ptr() => _,
            inout("r2") w.as_ptr() => _,
            inout("r3") passes => _,
            inout("r4") a00,
            inout("r5") a01,
            inout("r8") a10,
            inout("r9") a11,
            out("r10") _,
            out("r11") _,
            out("r12") _,
            out("lr") _,
            options(readonly),
        );
    }
    [a00, a01, a10, a11]
}

/// One position times four channels over `pairs` natural-order int16 pairs of taps (`pairs`
/// even, at least 2): `w` starts with the four channels' initial accumulators (their biases),
/// then four words per pair, `[c0, c1, c2, c3]`; `x` holds the position's pairs, one word each.
/// Returns `init[c] + sum_j SMLAD(x[j], w[4 + 4j + c])`, or `[0; 4]` when `pairs` is odd or
/// zero or a slice is shorter than that (`x` needs `pairs` words, `w` `4 + 4 * pairs`).
#[inline(always)]
#[allow(unsafe_code)]
pub(crate) fn dot1x4(x: &[u32], w: &[u32], pairs: usize) -> [i32; 4] {
    let (mut a0, mut a1, mut a2, mut a3) = (0i32, 0i32, 0i32, 0i32);
    let passes = pairs / 2;
    if passes == 0 || pairs % 2 != 0 || x.len() < pairs || w.len() < 4 + 4 * pairs {
        return [a0, a1, a2, a3];
    }
    // SAFETY: the first `ldm` reads words 0..4 of `w`; the loop runs `passes >= 1` times and
    // each pass reads 2 words of `x` and 8 of `w`, post-incremented, so it reads the first
    // `2 * passes = pairs` words of `x` and `4 + 4 * pairs` of `w`, in bounds (checked above);
    // the slices are of `u32`, word aligned as `ldrd` and `ldm` need. `r6` and `r7` (which
    // cannot be operands) are saved on the stack and restored; every other register written
    // is an operand. Flags are clobbered (`subs`, and Q by `smlad`).
    unsafe {
        asm!(
            "push {{r6, r7}}",
            "ldm r1!, {{r3, r4, r5, r8}}",
            "2:",
            "ldrd r9, r10, [r0], #8",
            "ldm r1!, {{r6, r11, r12, lr}}",
            "smlad r3, r9, r6, r3",
            "smlad r4, r9, r11, r4",
            "smlad r5, r9, r12, r5",
            "smlad r8, r9, lr, r8",
            "ldm r1!, {{r6, r11, r12, lr}}",
            "smlad r3, r10, r6, r3",
            "smlad r4, r10, r11, r4",
            "smlad r5, r10, r12, r5",
            "smlad r8, r10, lr, r8",
            "subs r2, r2, #1",
            "bne 2b",
            "pop {{r6, r7}}",
            inout("r0") x.as_ptr() => _,
            inout("r1") w.as_ptr() => _,
            inout("r2") passes => _,
            inout("r3") a0,
            inout("r4") a1,
            inout("r5") a2,
            inout("r8") a3,
            out("r9") _,
            out("r10") _,
            out("r11") _,
            out("r12") _,
            out("lr") _,
            options(readonly),
        );
    }
    [a0, a1, a2, a3]
}

/// [`dot1x4`] and the [`STAGE_RIGHT`] output stage (as [`Output::store2`], four lanes and one
/// word store) for `blocks` consecutive blocks of four channels of
/// one position, in one `asm!` block: block `b` reads words `b * (4 + 4 * pairs)..` of `w`
/// (biases, then pairs as for [`dot1x4`]), words `8b..8b + 8` of `q` (`[b, right]` per
/// channel) and writes bytes `4b..4b + 4` of `dst`. For [`STAGE_RIGHT`] only (the caller checks
/// `out.stage`). Does nothing when `pairs` is odd or zero, `blocks` is zero or a slice is
/// shorter than that.
#[inline(always)]
#[allow(unsafe_code)]
pub(crate) fn conv1x4_blocks(
    x: &[u32],
    w: &[u32],
    pairs: usize,
    q: &[u32],
    out: &Output,
    dst: &mut [i8],
    blocks: usize,
) {
    let passes = pairs / 2;
    if passes == 0
        || pairs % 2 != 0
        || blocks == 0
        || x.len() < pairs
        || w.len() / (4 + 4 * pairs) < blocks
        || q.len() / 8 < blocks
        || dst.len() / 4 < blocks
    {
        return;
    }
    // SAFETY: each of the `blocks >= 1` iterations reads `pairs` words of `x` from its start
    // (reloaded from the stack), the next `4 + 4 * pairs` words of `w` (post-incremented, so
    // `blocks * (4 + 4 * pairs)` in all), 8 words of `q` and the three words of the
    // `#[repr(C)]` `Output` (`offset`, `min_q`, `max_q`), and writes 4 bytes of `dst` (`str`
    // may be unaligned on ARMv7-M), all in bounds (checked above); `x`, `w` and `q` are word
    // aligned as `ldrd` and `ldm` need. The 6 words pushed are popped before the end, and `r6`
    // and `r7` (which cannot be operands) are saved and restored; every other register written
    // is an operand. Flags are clobbered (`subs`, GE by `ssub8`, Q by `smlad`).
    unsafe {
        asm!(
            "push {{r6, r7}}",
            "push {{r0, r2, r3, r4, r5, r8}}",
            "1:",
            "ldr r0, [sp]",
            "ldr r2, [sp, #4]",
            "ldm r1!, {{r3, r4, r5, r8}}",
            "2:",
            "ldrd r9, r10, [r0], #8",
            "ldm r1!, {{r6, r11, r12, lr}}",
            "smlad r3, r9, r6, r3",
            "smlad r4, r9, r11, r4",
            "smlad r5, r9, r12, r5",
            "smlad r8, r9, lr, r8",
            "ldm r1!, {{r6, r11, r12, lr}}",
            "smlad r3, r10, r6, r3",
            "smlad r4, r10, r11, r4",
            "smlad r5, r10, r12, r5",
            "smlad r8, r10, lr, r8",
            "subs r2, r2, #1",
            "bne 2b",
            "ldr r2, [sp, #8]",
            "ldr r12, [sp, #20]",
            "ldr r0, [r12]",
            "ldrd r6, r9, [r2]",
            "smmlar r10, r3, r6, r3",
            "add r10, r10, r10, asr #31",
            "asrs r10, r10, r9",
            "adc r3, r10, r0",
            "ldrd r6, r9, [r2, #8]",
            "smmlar r10, r4, r6, r4",
            "add r10, r10, r10, asr #31",
            "asrs r10, r10, r9",
            "adc r4, r10, r0",
            "ldrd r6, r9, [r2, #16]",
            "smmlar r10, r5, r6, r5",
            "add r10, r10, r10, asr #31",
            "asrs r10, r10, r9",
            "adc r5, r10, r0",
            "ldrd r6, r9, [r2, #24]",
            "smmlar r10, r8, r6, r8",
            "add r10, r10, r10, asr #31",
            "asrs r10, r10, r9",
            "adc r8, r10, r0",
            "add r2, r2, #32",
            "str r2, [sp, #8]",
            "ssat r3, #8, r3",
            "ssat r4, #8, r4",
            "ssat r5, #8, r5",
            "ssat r8, #8, r8",
            "bfi r3, r4, #8, #8",
            "bfi r3, r5, #16, #8",
            "bfi r3, r8, #24, #8",
            "ldrd r6, r9, [r12, #4]",
            "ssub8 r10, r3, r6",
            "sel r3, r3, r6",
            "ssub8 r10, r9, r3",
            "sel r3, r3, r9",
            "ldrd r2, r4, [sp, #12]",
            "str r3, [r2], #4",
            "subs r4, r4, #1",
            "strd r2, r4, [sp, #12]",
            "bne 1b",
            "add sp, sp, #24",
            "pop {{r6, r7}}",
            inout("r0") x.as_ptr() => _,
            inout("r1") w.as_ptr() => _,
            inout("r2") passes => _,
            inout("r3") q.as_ptr() => _,
            inout("r4") dst.as_mut_ptr() => _,
            inout("r5") blocks => _,
            inout("r8") out as *const Output => _,
            out("r9") _,
            out("r10") _,
            out("r11") _,
            out("r12") _,
            out("lr") _,
        );
    }
}

/// Groups of four int8 values of `src` as even/odd int16 pairs (as [`unpack4_reordered`]) into
/// words `4 * g + lane` and `4 * g + lane + 1` of `dst` (`lane` 0 or 2), for
/// `g < min(src.len() / 4, dst.len() / 4)`; the other words are left as they are.
#[inline(always)]
#[allow(unsafe_code)]
pub(crate) fn expand_groups(dst: &mut [u32], lane: usize, src: &[i8]) {
    let lane = lane & 2;
    let groups = (src.len() / 4).min(dst.len() / 4);
    let Some(dst) = dst.get_mut(lane..) else {
        return;
    };
    if groups == 0 {
        return;
    }
    // SAFETY: the loop runs `groups >= 1` times; pass `g` reads bytes `4g..4g + 4` of `src`
    // (`ldr` may be unaligned on ARMv7-M) and writes words `4g` and `4g + 1` of the resliced
    // `dst`, so it reads the first `4 * groups <= src.len()` bytes and writes below word
    // `4 * groups - 2` of it, in bounds since the original slice has at least `4 * groups`
    // words and `lane <= 2`; `dst` is word aligned as `strd` needs. Only operands are written;
    // flags are clobbered.
    unsafe {
        asm!(
            "2:",
            "ldr {t}, [{s}], #4",
            "sxtb16 {e}, {t}",
            "sxtb16 {o}, {t}, ror #8",
            "strd {e}, {o}, [{d}], #16",
            "subs {n}, {n}, #1",
            "bne 2b",
            s = inout(reg) src.as_ptr() => _,
            d = inout(reg) dst.as_mut_ptr() => _,
            n = inout(reg) groups => _,
            t = out(reg) _,
            e = out(reg) _,
            o = out(reg) _,
            options(nostack),
        );
    }
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
