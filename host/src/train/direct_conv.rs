//! Direct convolution for standard conv1d layers: no unfolded copy of the input, no GEMM
//! packing.
//!
//! An unfold writes each input sample K times, and the GEMM then copies it once more into its
//! own panels; on two cores these copies cost about as much as the multiply-adds of a small
//! ECG network. Here the input of each example is copied once, split by stride phase and zero
//! padded, so that tap `t` of every output position reads a contiguous stretch of one phase
//! row:
//!
//! ```text
//! out[co][j] = sum over ci, t of  w[co][ci][t] * phases[(t*d) % s][ci][j + (t*d) / s]
//! ```
//!
//! A microkernel keeps a tile of 6 output rows by 16 positions in registers and walks the
//! `C_in * K` taps; the input gradient is the same correlation over the output gradient (per
//! phase of the input, with the taps of that phase), and the weight gradient a tile of 4 x 3
//! dot products along the output positions. On x86-64 with AVX2 and FMA the microkernels are
//! vector code; elsewhere, and in f64, they are plain loops with the same data flow, which the
//! tests compare with the unfold path of [`super::kernels`].
//!
//! Every sum has a fixed order, whatever the number of threads.
// The AVX2 microkernels load through raw pointers; each checks its bounds before it does.
#![allow(unsafe_code)]

use rayon::prelude::*;

use super::kernels::{gather, Fused, Geometry, Real};

/// Output rows per tile.
const ROWS: usize = 6;
/// Lanes of one vector (AVX's eight f32).
const LANES: usize = 8;
/// Vectors per tile row: a tile covers `LANES * MAX_VECTORS` output positions.
const MAX_VECTORS: usize = 2;
/// Positions per full tile.
const TILE: usize = LANES * MAX_VECTORS;
/// Output channels and taps per weight-gradient tile.
const DOT_ROWS: usize = 4;
const DOT_COLS: usize = 3;

/// Where a tile's results go: `act(value + bias[m])` into row `m` of `rows` (up to [`ROWS`]
/// rows of `row_len`), positions `q0..q0 + n` (`n` at most [`TILE`]).
pub(super) struct TileOut<'a, T> {
    rows: &'a mut [T],
    row_len: usize,
    q0: usize,
    n: usize,
    /// One per row, or empty for none.
    bias: &'a [T],
    act: Fused,
}

impl<T: Real> TileOut<'_, T> {
    fn row_count(&self) -> usize {
        self.rows.len() / self.row_len
    }

    fn bias_of(&self, m: usize) -> T {
        self.bias.get(m).copied().unwrap_or(T::ZERO)
    }
}

/// Offsets of the source rows a correlation reads, one per tap, with the largest one kept so
/// that a microkernel checks its bounds once per tile.
pub(super) struct Taps {
    offsets: Vec<usize>,
    reach: usize,
}

impl Taps {
    fn new(offsets: Vec<usize>) -> Taps {
        let reach = offsets.iter().copied().max().unwrap_or(0);
        Taps { offsets, reach }
    }

    fn len(&self) -> usize {
        self.offsets.len()
    }
}

/// The element types with direct-convolution microkernels.
pub(super) trait DirectReal: Real {
    /// Whether the direct path beats the unfold-and-GEMM path for this type here.
    fn direct_is_fast() -> bool;

    /// `out[m][i] = sum_r w[r * ROWS + m] * base[taps[r] + q0 + i]` for `i < LANES * vectors`.
    fn correlate(base: &[Self], taps: &Taps, w: &[Self], out: TileOut<'_, Self>);

    /// `out[m][c] = sum_{i < n} g[m][i] * s[c][i]`.
    fn dot(
        g: [&[Self]; DOT_ROWS],
        s: [&[Self]; DOT_COLS],
        n: usize,
        out: &mut [[Self; DOT_COLS]; DOT_ROWS],
    );
}

fn correlate_portable<T: Real>(base: &[T], taps: &Taps, w: &[T], out: TileOut<'_, T>) {
    let n = out.n;
    let mut tile = [[T::ZERO; TILE]; ROWS];
    for (r, &offset) in taps.offsets.iter().enumerate() {
        let src = &base[offset + out.q0..][..n];
        for (m, row) in tile.iter_mut().enumerate() {
            let weight = w[r * ROWS + m];
            for (o, &s) in row[..n].iter_mut().zip(src) {
                *o += weight * s;
            }
        }
    }
    for (m, values) in tile.iter().enumerate().take(out.row_count()) {
        let offset = out.bias_of(m);
        let dst = &mut out.rows[m * out.row_len + out.q0..][..n];
        dst.copy_from_slice(&values[..n]);
        out.act.apply_offset(dst, offset);
    }
}

fn dot_portable<T: Real>(
    g: [&[T]; DOT_ROWS],
    s: [&[T]; DOT_COLS],
    n: usize,
    out: &mut [[T; DOT_COLS]; DOT_ROWS],
) {
    for (m, out_row) in out.iter_mut().enumerate() {
        for (c, o) in out_row.iter_mut().enumerate() {
            let mut sum = T::ZERO;
            for (&a, &b) in g[m][..n].iter().zip(&s[c][..n]) {
                sum += a * b;
            }
            *o = sum;
        }
    }
}

impl DirectReal for f64 {
    fn direct_is_fast() -> bool {
        false
    }

    fn correlate(base: &[f64], taps: &Taps, w: &[f64], out: TileOut<'_, f64>) {
        correlate_portable(base, taps, w, out)
    }

    fn dot(
        g: [&[f64]; DOT_ROWS],
        s: [&[f64]; DOT_COLS],
        n: usize,
        out: &mut [[f64; DOT_COLS]; DOT_ROWS],
    ) {
        dot_portable(g, s, n, out)
    }
}

impl DirectReal for f32 {
    fn direct_is_fast() -> bool {
        avx2::available()
    }

    fn correlate(base: &[f32], taps: &Taps, w: &[f32], out: TileOut<'_, f32>) {
        if avx2::available() {
            avx2::correlate(base, taps, w, out)
        } else {
            correlate_portable(base, taps, w, out)
        }
    }

    fn dot(
        g: [&[f32]; DOT_ROWS],
        s: [&[f32]; DOT_COLS],
        n: usize,
        out: &mut [[f32; DOT_COLS]; DOT_ROWS],
    ) {
        if avx2::available() {
            avx2::dot(g, s, n, out)
        } else {
            dot_portable(g, s, n, out)
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::super::kernels::Fused;
    use super::{Taps, TileOut, DOT_COLS, DOT_ROWS, LANES, MAX_VECTORS, ROWS};

    pub(super) fn available() -> bool {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }

    /// See [`super::DirectReal::correlate`]; the caller has checked [`available`].
    pub(super) fn correlate(base: &[f32], taps: &Taps, w: &[f32], out: TileOut<'_, f32>) {
        let vectors = out.n.div_ceil(LANES);
        // Every load below reads `base[taps[r] + q0 ..][.. LANES * vectors]` and
        // `w[.. ROWS * taps]`; every store writes `rows[m * row_len + q0 ..][.. n]`.
        assert!(taps.reach + out.q0 + LANES * vectors <= base.len() || taps.len() == 0);
        assert!(w.len() >= taps.len() * ROWS && (1..=MAX_VECTORS).contains(&vectors));
        let rows = out.row_count();
        assert!(
            rows <= ROWS && out.q0 + out.n <= out.row_len && rows * out.row_len <= out.rows.len()
        );
        let bias: [f32; ROWS] = std::array::from_fn(|m| out.bias_of(m));
        let dst = Dst {
            ptr: out.rows.as_mut_ptr(),
            row_len: out.row_len,
            q0: out.q0,
            n: out.n,
            rows,
        };
        // SAFETY: the asserts above bound every load and store; `available` checked AVX2 and
        // FMA.
        unsafe {
            match vectors {
                1 => correlate_n::<1>(base.as_ptr(), &taps.offsets, w.as_ptr(), dst, bias, out.act),
                _ => correlate_n::<MAX_VECTORS>(
                    base.as_ptr(),
                    &taps.offsets,
                    w.as_ptr(),
                    dst,
                    bias,
                    out.act,
                ),
            }
        }
    }

    /// A tile's destination rows, checked by [`correlate`].
    struct Dst {
        ptr: *mut f32,
        row_len: usize,
        q0: usize,
        n: usize,
        rows: usize,
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn correlate_n<const N: usize>(
        base: *const f32,
        offsets: &[usize],
        w: *const f32,
        dst: Dst,
        bias: [f32; ROWS],
        act: Fused,
    ) {
        let mut acc = [[_mm256_setzero_ps(); N]; ROWS];
        for (r, &offset) in offsets.iter().enumerate() {
            // SAFETY (this block and the next): bounds checked by the caller.
            let src = unsafe { base.add(offset + dst.q0) };
            let mut s = [_mm256_setzero_ps(); N];
            for (v, s) in s.iter_mut().enumerate() {
                *s = unsafe { _mm256_loadu_ps(src.add(LANES * v)) };
            }
            for (m, acc_m) in acc.iter_mut().enumerate() {
                let weight = unsafe { _mm256_broadcast_ss(&*w.add(r * ROWS + m)) };
                for (a, &s) in acc_m.iter_mut().zip(&s) {
                    *a = _mm256_fmadd_ps(weight, s, *a);
                }
            }
        }
        let zero = _mm256_setzero_ps();
        let six = _mm256_set1_ps(6.0);
        // The last vector may be partial: its store is masked.
        let tail = dst.n - LANES * (N - 1);
        // SAFETY: `MASKS[8 - tail..][..8]` is inside the table.
        let mask = unsafe { _mm256_loadu_si256(MASKS.as_ptr().add(LANES - tail).cast()) };
        for (m, acc_m) in acc.iter().enumerate().take(dst.rows) {
            let b = _mm256_set1_ps(bias[m]);
            // SAFETY: row `m < rows`, positions `q0..q0 + n` checked by the caller.
            let row = unsafe { dst.ptr.add(m * dst.row_len + dst.q0) };
            for (v, &a) in acc_m.iter().enumerate() {
                let x = _mm256_add_ps(a, b);
                let x = match act {
                    Fused::Identity => x,
                    Fused::Relu => _mm256_max_ps(x, zero),
                    Fused::Relu6 => _mm256_min_ps(_mm256_max_ps(x, zero), six),
                };
                unsafe {
                    if v + 1 < N {
                        _mm256_storeu_ps(row.add(LANES * v), x)
                    } else {
                        _mm256_maskstore_ps(row.add(LANES * v), mask, x)
                    }
                }
            }
        }
    }

    /// See [`super::DirectReal::dot`]; the caller has checked [`available`].
    pub(super) fn dot(
        g: [&[f32]; DOT_ROWS],
        s: [&[f32]; DOT_COLS],
        n: usize,
        out: &mut [[f32; DOT_COLS]; DOT_ROWS],
    ) {
        assert!(g.iter().all(|r| r.len() >= n) && s.iter().all(|r| r.len() >= n));
        // SAFETY: every row holds `n` values, the loads stay below `n` (masked in the tail);
        // `available` checked AVX2 and FMA.
        unsafe { dot_rows(g.map(<[f32]>::as_ptr), s.map(<[f32]>::as_ptr), n, out) }
    }

    /// Lane masks: `MASKS[8 - k..][..8]` enables the first `k` lanes.
    static MASKS: [i32; 16] = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];

    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot_rows(
        g: [*const f32; DOT_ROWS],
        s: [*const f32; DOT_COLS],
        n: usize,
        out: &mut [[f32; DOT_COLS]; DOT_ROWS],
    ) {
        let mut acc = [[_mm256_setzero_ps(); DOT_COLS]; DOT_ROWS];
        let full = n / LANES;
        for i in 0..full {
            // SAFETY (this loop): `LANES * (i + 1) <= n`.
            let sv = s.map(|p| unsafe { _mm256_loadu_ps(p.add(LANES * i)) });
            for (acc_m, &gp) in acc.iter_mut().zip(&g) {
                let gv = unsafe { _mm256_loadu_ps(gp.add(LANES * i)) };
                for (a, &sv) in acc_m.iter_mut().zip(&sv) {
                    *a = _mm256_fmadd_ps(gv, sv, *a);
                }
            }
        }
        let rest = n - full * LANES;
        if rest > 0 {
            // SAFETY: `MASKS[8 - rest..][..8]` is inside the table; masked lanes are not read.
            let mask = unsafe { _mm256_loadu_si256(MASKS.as_ptr().add(LANES - rest).cast()) };
            let at = full * LANES;
            let sv = s.map(|p| unsafe { _mm256_maskload_ps(p.add(at), mask) });
            for (acc_m, &gp) in acc.iter_mut().zip(&g) {
                let gv = unsafe { _mm256_maskload_ps(gp.add(at), mask) };
                for (a, &sv) in acc_m.iter_mut().zip(&sv) {
                    *a = _mm256_fmadd_ps(gv, sv, *a);
                }
            }
        }
        // The 12 horizontal sums, eight at a time through `sum8`.
        let flat: [__m256; DOT_ROWS * DOT_COLS] =
            std::array::from_fn(|i| acc[i / DOT_COLS][i % DOT_COLS]);
        let zero = _mm256_setzero_ps();
        let mut sums = [0f32; 2 * LANES];
        let first = sum8([
            flat[0], flat[1], flat[2], flat[3], flat[4], flat[5], flat[6], flat[7],
        ]);
        let rest = sum8([flat[8], flat[9], flat[10], flat[11], zero, zero, zero, zero]);
        // SAFETY: `sums` holds two vectors.
        unsafe {
            _mm256_storeu_ps(sums.as_mut_ptr(), first);
            _mm256_storeu_ps(sums.as_mut_ptr().add(LANES), rest);
        }
        for (i, &v) in sums.iter().take(DOT_ROWS * DOT_COLS).enumerate() {
            out[i / DOT_COLS][i % DOT_COLS] = v;
        }
    }

    /// Lane `i` of the result is the sum of the lanes of `v[i]`.
    #[target_feature(enable = "avx2,fma")]
    fn sum8(v: [__m256; 8]) -> __m256 {
        // Within each 128-bit half: pairs, then quadruples of four vectors at once.
        let q0 = _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3]));
        let q1 = _mm256_hadd_ps(_mm256_hadd_ps(v[4], v[5]), _mm256_hadd_ps(v[6], v[7]));
        // Lower halves hold lanes 0-3 of each vector, upper halves lanes 4-7.
        _mm256_add_ps(
            _mm256_permute2f128_ps(q0, q1, 0x20),
            _mm256_permute2f128_ps(q0, q1, 0x31),
        )
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod avx2 {
    use super::{Taps, TileOut, DOT_COLS, DOT_ROWS};

    pub(super) fn available() -> bool {
        false
    }

    pub(super) fn correlate(_: &[f32], _: &Taps, _: &[f32], _: TileOut<'_, f32>) {
        unreachable!("no AVX2 on this architecture")
    }

    pub(super) fn dot(
        _: [&[f32]; DOT_ROWS],
        _: [&[f32]; DOT_COLS],
        _: usize,
        _: &mut [[f32; DOT_COLS]; DOT_ROWS],
    ) {
        unreachable!("no AVX2 on this architecture")
    }
}

/// Sizes of one geometry's phase-split buffers.
struct Phases {
    stride: usize,
    /// `(t * dilation) / stride`: where tap `t` starts in its phase row.
    offsets: Vec<usize>,
    /// The largest of `offsets`.
    reach: usize,
    /// Length of a phase row of the input: every tile's reads fit.
    input_row: usize,
    /// Positions per phase row of the input gradient: `ceil((pad + len) / stride)`.
    grad_positions: usize,
    /// Length of a zero-padded row of the output gradient: `reach` zeros, then room for every
    /// tile's reads.
    grad_row: usize,
}

impl Phases {
    fn new(g: &Geometry) -> Phases {
        let offsets: Vec<usize> = (0..g.kernel).map(|t| t * g.dilation / g.stride).collect();
        let reach = offsets.last().copied().unwrap_or(0);
        let grad_positions = (g.pad + g.len).div_ceil(g.stride);
        Phases {
            stride: g.stride,
            reach,
            input_row: g.l_out.next_multiple_of(LANES) + reach,
            grad_positions,
            grad_row: reach + grad_positions.next_multiple_of(LANES),
            offsets,
        }
    }

    fn phase_of(&self, g: &Geometry, t: usize) -> usize {
        t * g.dilation % self.stride
    }

    /// The buffer of one example's input phases: `(stride, C_in, input_row)`.
    fn input_len(&self, g: &Geometry) -> usize {
        self.stride * g.c_in * self.input_row
    }

    /// Splits one example's input `(C_in, L)` into zero-padded phase rows:
    /// `phases[ph][ci][q] = x[ci][q * stride + ph - pad]`.
    fn split<T: Real>(&self, g: &Geometry, x: &[T], phases: &mut [T]) {
        let s = self.stride;
        for ph in 0..s {
            for ci in 0..g.c_in {
                let row = &mut phases[(ph * g.c_in + ci) * self.input_row..][..self.input_row];
                let signal = &x[ci * g.len..(ci + 1) * g.len];
                // Positions q with 0 <= q * s + ph - pad < len.
                let lo = g.pad.saturating_sub(ph).div_ceil(s).min(self.input_row);
                let hi = (g.len + g.pad)
                    .saturating_sub(ph)
                    .div_ceil(s)
                    .clamp(lo, self.input_row);
                row[..lo].fill(T::ZERO);
                row[hi..].fill(T::ZERO);
                if lo < hi {
                    let first = lo * s + ph - g.pad;
                    gather(&mut row[lo..hi], &signal[first..], s);
                }
            }
        }
    }

    /// The taps of the forward pass, in the order of the weights' `(ci, t)`.
    fn forward_taps(&self, g: &Geometry) -> Taps {
        let mut offsets = Vec::with_capacity(g.c_in * g.kernel);
        for ci in 0..g.c_in {
            for t in 0..g.kernel {
                let row = self.phase_of(g, t) * g.c_in + ci;
                offsets.push(row * self.input_row + self.offsets[t]);
            }
        }
        Taps::new(offsets)
    }
}

/// The weights `(C_out, C_in, K)` as panels of `ROWS` output channels:
/// `panel[r * ROWS + m] = w[panel * ROWS + m][r]` for `r = ci * K + t` (zero past `C_out`).
fn forward_panels<T: Real>(g: &Geometry, w: &[T]) -> Vec<T> {
    let taps = g.c_in * g.kernel;
    let panels = g.c_out.div_ceil(ROWS);
    let mut packed = vec![T::ZERO; panels * taps * ROWS];
    for co in 0..g.c_out {
        let (p, m) = (co / ROWS, co % ROWS);
        for r in 0..taps {
            packed[(p * taps + r) * ROWS + m] = w[co * taps + r];
        }
    }
    packed
}

/// Examples handed to one thread at a time, or `None` when the batch is too small to split
/// (then each example's output rows are split instead).
fn examples_per_thread(g: &Geometry) -> Option<usize> {
    let threads = rayon::current_num_threads();
    (threads > 1 && g.batch >= 2 * threads).then(|| g.batch.div_ceil(threads))
}

/// Output positions per block: the source rows a block reads stay in L1 while every panel of
/// weights passes over them.
const BLOCK: usize = 2 * TILE;

/// Computes the tiles of `positions` (a range starting at a multiple of [`TILE`]) in output
/// rows `rows` (up to [`ROWS`] of `row_len`) from one example's source buffer, then
/// `act(value + bias)` into them.
#[allow(clippy::too_many_arguments)]
fn correlate_rows<T: DirectReal>(
    source: &[T],
    taps: &Taps,
    panel_weights: &[T],
    rows: &mut [T],
    row_len: usize,
    positions: std::ops::Range<usize>,
    bias: &[T],
    act: Fused,
) {
    for q0 in positions.clone().step_by(TILE) {
        let out = TileOut {
            rows: &mut *rows,
            row_len,
            q0,
            n: (positions.end - q0).min(TILE),
            bias,
            act,
        };
        T::correlate(source, taps, panel_weights, out);
    }
}

/// All output rows `out` (`row_len` each) of one example: by blocks of positions, each block
/// through every panel of `packed`; with `split_rows`, the panels are split between threads.
#[allow(clippy::too_many_arguments)]
fn correlate_example<T: DirectReal>(
    source: &[T],
    taps: &Taps,
    packed: &[T],
    out: &mut [T],
    row_len: usize,
    bias: &[T],
    act: Fused,
    split_rows: bool,
) {
    let panel_len = taps.len() * ROWS;
    let panel_bias = |p: usize| &bias[(p * ROWS).min(bias.len())..((p + 1) * ROWS).min(bias.len())];
    if split_rows {
        out.par_chunks_mut(ROWS * row_len)
            .enumerate()
            .for_each(|(p, rows)| {
                let weights = &packed[p * panel_len..(p + 1) * panel_len];
                correlate_rows(
                    source,
                    taps,
                    weights,
                    rows,
                    row_len,
                    0..row_len,
                    panel_bias(p),
                    act,
                );
            });
        return;
    }
    for start in (0..row_len).step_by(BLOCK) {
        let block = start..(start + BLOCK).min(row_len);
        for (p, rows) in out.chunks_mut(ROWS * row_len).enumerate() {
            let weights = &packed[p * panel_len..(p + 1) * panel_len];
            correlate_rows(
                source,
                taps,
                weights,
                rows,
                row_len,
                block.clone(),
                panel_bias(p),
                act,
            );
        }
    }
}

/// Forward pass: `act(conv(x, w) + bias)`, (B, C_out, L_out).
pub(super) fn forward<T: DirectReal>(
    g: &Geometry,
    x: &[T],
    w: &[T],
    bias: &[T],
    act: Fused,
) -> Vec<T> {
    let phases = Phases::new(g);
    let taps = phases.forward_taps(g);
    let packed = forward_panels(g, w);
    let out_len = g.c_out * g.l_out;
    let mut out = vec![T::ZERO; g.batch * out_len];
    let example = |b: usize, out_b: &mut [T], source: &mut Vec<T>, split_rows: bool| {
        let x_b = &x[b * g.c_in * g.len..(b + 1) * g.c_in * g.len];
        source.resize(phases.input_len(g), T::ZERO);
        phases.split(g, x_b, source);
        correlate_example(
            source, &taps, &packed, out_b, g.l_out, bias, act, split_rows,
        );
    };
    match examples_per_thread(g) {
        Some(per_thread) => out
            .par_chunks_mut(per_thread * out_len)
            .enumerate()
            .for_each(|(group, outs)| {
                let mut source = Vec::new();
                for (i, out_b) in outs.chunks_mut(out_len).enumerate() {
                    example(group * per_thread + i, out_b, &mut source, false);
                }
            }),
        None => {
            let mut source = Vec::new();
            for (b, out_b) in out.chunks_mut(out_len).enumerate() {
                example(b, out_b, &mut source, true);
            }
        }
    }
    out
}

/// Writes one row of the input gradient, `gx[p] = phase_row((p + pad) % s)[(p + pad) / s]`,
/// from its `s` phase rows; strides 1 and 2 as plain copies and interleaves that vectorise.
fn scatter_phases<'a, T: Real + 'a>(
    gx: &mut [T],
    pad: usize,
    s: usize,
    phase_row: impl Fn(usize) -> &'a [T],
) {
    // The first position of phase `ph`, and where it reads in its phase row.
    let first = |ph: usize| (ph + s - pad % s) % s;
    match s {
        1 => gx.copy_from_slice(&phase_row(0)[pad..pad + gx.len()]),
        2 => {
            // Position 0 belongs to phase `pad % 2`; pairs (2j, 2j + 1) read the same index.
            let (a, b) = (phase_row(pad % 2), phase_row((pad + 1) % 2));
            let (q_a, q_b) = (pad / 2, pad.div_ceil(2));
            let pairs = gx.len() / 2;
            for (j, pair) in gx.chunks_exact_mut(2).enumerate() {
                pair[0] = a[q_a + j];
                pair[1] = b[q_b + j];
            }
            if gx.len() % 2 == 1 {
                gx[2 * pairs] = a[q_a + pairs];
            }
        }
        _ => {
            for ph in 0..s {
                let p0 = first(ph);
                if p0 >= gx.len() {
                    continue;
                }
                let src = &phase_row(ph)[(p0 + pad) / s..];
                gx[p0..]
                    .iter_mut()
                    .step_by(s)
                    .zip(src)
                    .for_each(|(d, v)| *d = *v);
            }
        }
    }
}

/// Examples per work item of the backward pass: weight-gradient partial sums are added in
/// this fixed grouping whatever the number of threads.
const CHUNK: usize = 8;

/// The per-phase plan of the input gradient: for each input phase, the `(co, t)` taps that
/// land on it (reading the padded gradient rows) and the weights as panels of [`ROWS`] input
/// channels.
fn input_grad_plan<T: Real>(g: &Geometry, phases: &Phases, w: &[T]) -> Vec<(Taps, Vec<T>)> {
    let taps_per_out = g.c_in * g.kernel;
    (0..g.stride)
        .map(|ph| {
            let kernel_taps: Vec<usize> = (0..g.kernel)
                .filter(|&t| phases.phase_of(g, t) == ph)
                .collect();
            let mut offsets = Vec::with_capacity(g.c_out * kernel_taps.len());
            for co in 0..g.c_out {
                for &t in &kernel_taps {
                    offsets.push(co * phases.grad_row + phases.reach - phases.offsets[t]);
                }
            }
            let reduction = offsets.len();
            let mut packed = vec![T::ZERO; g.c_in.div_ceil(ROWS) * reduction * ROWS];
            for ci in 0..g.c_in {
                let (p, m) = (ci / ROWS, ci % ROWS);
                for co in 0..g.c_out {
                    for (i, &t) in kernel_taps.iter().enumerate() {
                        let r = co * kernel_taps.len() + i;
                        packed[(p * reduction + r) * ROWS + m] =
                            w[co * taps_per_out + ci * g.kernel + t];
                    }
                }
            }
            (Taps::new(offsets), packed)
        })
        .collect()
}

/// Scratch of one thread's examples.
struct BackwardScratch<T> {
    /// The gradient through the activation, as zero-padded rows of `Phases::grad_row`.
    padded: Vec<T>,
    /// The input gradient's phase rows.
    grad_phases: Vec<T>,
    /// The input's phase rows.
    source: Vec<T>,
}

/// The gradients of one convolution, in one buffer: first of its input (when
/// `input_needed`), (B, C_in, L), then of its weights and bias, (C_out, C_in * K + 1) with the
/// bias in the last column; from the gradient `grad` of its output and `out`, the output
/// itself, through which `act` passes the gradient.
#[allow(clippy::too_many_arguments)]
pub(super) fn backward<T: DirectReal>(
    g: &Geometry,
    grad: &[T],
    out: &[T],
    act: Fused,
    x: &[T],
    w: &[T],
    input_needed: bool,
) -> Vec<T> {
    let phases = Phases::new(g);
    let taps = phases.forward_taps(g);
    let plan = if input_needed {
        input_grad_plan(g, &phases, w)
    } else {
        Vec::new()
    };
    let (in_len, out_len) = (g.c_in * g.len, g.c_out * g.l_out);
    let positions = phases.grad_positions;
    // Weight-gradient columns: one per tap, then the bias, a dot product with a row of ones.
    let width = taps.len() + 1;
    let zeros = vec![T::ZERO; g.l_out];
    let ones = vec![T::ONE; g.l_out];

    // One example: its input gradient into `gx_b` (when wanted), its weight gradient added
    // to `acc`; with `split`, each part is split between threads.
    let example =
        |b: usize, gx_b: &mut [T], acc: &mut [T], scratch: &mut BackwardScratch<T>, split: bool| {
            let BackwardScratch {
                padded,
                grad_phases,
                source,
            } = scratch;
            // Only the middle of each padded row is written, so its zero margins stay.
            padded.resize(g.c_out * phases.grad_row, T::ZERO);
            let (grad_b, out_b) = (
                &grad[b * out_len..][..out_len],
                &out[b * out_len..][..out_len],
            );
            for (co, row) in padded.chunks_mut(phases.grad_row).enumerate() {
                let at = co * g.l_out..(co + 1) * g.l_out;
                act.mask(
                    &mut row[phases.reach..][..g.l_out],
                    &grad_b[at.clone()],
                    &out_b[at],
                );
            }
            let padded: &[T] = padded;
            if input_needed {
                grad_phases.resize(g.stride * g.c_in * positions, T::ZERO);
                for (ph, out_ph) in grad_phases.chunks_mut(g.c_in * positions).enumerate() {
                    let (taps_ph, packed) = &plan[ph];
                    if taps_ph.len() == 0 {
                        out_ph.fill(T::ZERO);
                    } else {
                        correlate_example(
                            padded,
                            taps_ph,
                            packed,
                            out_ph,
                            positions,
                            &[],
                            Fused::Identity,
                            split,
                        );
                    }
                }
                // Back from phases: gx[ci][p] = grad_phases[(p + pad) % s][ci][(p + pad) / s].
                let s = g.stride;
                for ci in 0..g.c_in {
                    let gx_row = &mut gx_b[ci * g.len..(ci + 1) * g.len];
                    let phase_row = |ph: usize| {
                        let start = (ph * g.c_in + ci) * positions;
                        &grad_phases[start..start + positions]
                    };
                    scatter_phases(gx_row, g.pad, s, phase_row);
                }
            }
            source.resize(phases.input_len(g), T::ZERO);
            phases.split(g, &x[b * in_len..(b + 1) * in_len], source);
            let source: &[T] = source;
            let grad_row = |co: usize| -> &[T] {
                if co < g.c_out {
                    &padded[co * phases.grad_row + phases.reach..][..g.l_out]
                } else {
                    &zeros
                }
            };
            // Weight rows `first_panel * DOT_ROWS ..` of `acc_p`.
            let add_panel = |p: usize, acc_p: &mut [T]| {
                let co0 = p * DOT_ROWS;
                let g_rows: [&[T]; DOT_ROWS] = std::array::from_fn(|m| grad_row(co0 + m));
                let rows_here = acc_p.len() / width;
                let mut dots = [[T::ZERO; DOT_COLS]; DOT_ROWS];
                for r0 in (0..width).step_by(DOT_COLS) {
                    let s_rows: [&[T]; DOT_COLS] = std::array::from_fn(|c| {
                        match (taps.offsets.get(r0 + c), r0 + c == taps.len()) {
                            (Some(&offset), _) => &source[offset..offset + g.l_out],
                            (None, true) => &ones,
                            (None, false) => &zeros,
                        }
                    });
                    T::dot(g_rows, s_rows, g.l_out, &mut dots);
                    let cols = DOT_COLS.min(width - r0);
                    for (m, dots_m) in dots.iter().enumerate().take(rows_here) {
                        for (a, &v) in acc_p[m * width + r0..][..cols].iter_mut().zip(dots_m) {
                            *a += v;
                        }
                    }
                }
            };
            if split {
                acc.par_chunks_mut(DOT_ROWS * width)
                    .enumerate()
                    .for_each(|(p, acc_p)| add_panel(p, acc_p));
            } else {
                acc.chunks_mut(DOT_ROWS * width)
                    .enumerate()
                    .for_each(|(p, acc_p)| add_panel(p, acc_p));
            }
        };

    let gx_len = if input_needed { in_len } else { 0 };
    let mut flat = vec![T::ZERO; g.batch * gx_len + g.c_out * width];
    let (gx, weights) = flat.split_at_mut(g.batch * gx_len);
    let chunks = g.batch.div_ceil(CHUNK);
    let threads = rayon::current_num_threads();
    let chunk_of = |chunk: usize, gx_chunk: &mut [T], split: bool| -> Vec<T> {
        let mut acc = vec![T::ZERO; g.c_out * width];
        let mut scratch = BackwardScratch {
            padded: Vec::new(),
            grad_phases: Vec::new(),
            source: Vec::new(),
        };
        let first = chunk * CHUNK;
        for b in first..(first + CHUNK).min(g.batch) {
            let gx_b = &mut gx_chunk[(b - first) * gx_len..][..gx_len];
            example(b, gx_b, &mut acc, &mut scratch, split);
        }
        acc
    };
    let by_chunks = threads > 1 && chunks >= threads;
    let partials: Vec<Vec<T>> = match (by_chunks, input_needed) {
        (true, true) => gx
            .par_chunks_mut(CHUNK * in_len)
            .enumerate()
            .map(|(c, gx_chunk)| chunk_of(c, gx_chunk, false))
            .collect(),
        (true, false) => (0..chunks)
            .into_par_iter()
            .map(|c| chunk_of(c, &mut [], false))
            .collect(),
        (false, true) => gx
            .chunks_mut(CHUNK * in_len)
            .enumerate()
            .map(|(c, gx_chunk)| chunk_of(c, gx_chunk, threads > 1))
            .collect(),
        (false, false) => (0..chunks)
            .map(|c| chunk_of(c, &mut [], threads > 1))
            .collect(),
    };
    for p in &partials {
        for (t, v) in weights.iter_mut().zip(p) {
            *t += *v;
        }
    }
    flat
}

#[cfg(test)]
mod tests {
    //! The direct path against the unfold path of [`super::super::kernels`] (whose gradients
    //! are checked against finite differences in [`super::super::ops`]): in f64 through the
    //! portable microkernels, in f32 through the vector ones where the CPU has them.
    use super::super::kernels::{self, Fused, Geometry};
    use super::*;

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        }
        fn below(&mut self, n: usize) -> usize {
            ((self.next() + 1.0) / 2.0 * n as f64) as usize % n
        }
        fn values(&mut self, n: usize, scale: f64) -> Vec<f64> {
            (0..n).map(|_| self.next() * scale).collect()
        }
    }

    /// Geometries across the tile edges: channels not multiples of the tile rows, lengths
    /// around the tile widths, strides 1-4, dilations 1-4, kernels up to 15, batches that are
    /// and are not split between threads.
    fn geometries(rng: &mut Rng, n: usize) -> Vec<Geometry> {
        let mut out = vec![
            Geometry::new(&[64, 64, 313], &[64, 64, 3], 1, 1, false).unwrap(),
            Geometry::new(&[8, 16, 1250], &[32, 16, 5], 2, 1, false).unwrap(),
            Geometry::new(&[1, 3, 40], &[5, 3, 15], 2, 4, false).unwrap(),
            Geometry::new(&[3, 2, 9], &[3, 2, 1], 1, 1, false).unwrap(),
        ];
        while out.len() < n {
            let kernel = 1 + rng.below(15);
            let stride = 1 + rng.below(4);
            let dilation = 1 + rng.below(4);
            let (c_in, c_out) = (1 + rng.below(13), 1 + rng.below(13));
            let len = 1 + rng.below(90);
            let batch = [1, 2, 5, 17][rng.below(4)];
            if let Ok(g) = Geometry::new(
                &[batch, c_in, len],
                &[c_out, c_in, kernel],
                stride,
                dilation,
                false,
            ) {
                out.push(g);
            }
        }
        out
    }

    fn close<T: Into<f64> + Copy>(what: &str, got: &[T], want: &[T], tolerance: f64) {
        assert_eq!(got.len(), want.len(), "{what}: lengths");
        let scale = want.iter().fold(1e-30f64, |m, &v| m.max(v.into().abs()));
        for (i, (&a, &b)) in got.iter().zip(want).enumerate() {
            let err = (a.into() - b.into()).abs() / scale;
            assert!(
                err <= tolerance,
                "{what}: element {i}: {} against {} (relative {err:e})",
                a.into(),
                b.into()
            );
        }
    }

    fn compare<T: DirectReal + Into<f64> + std::fmt::Debug>(from: fn(f64) -> T, tolerance: f64) {
        let mut rng = Rng(0x5eed);
        for g in geometries(&mut rng, 60) {
            let cast = |v: Vec<f64>| v.into_iter().map(from).collect::<Vec<T>>();
            let x = cast(rng.values(g.batch * g.c_in * g.len, 1.0));
            let w = cast(rng.values(g.c_out * g.c_in * g.kernel, 1.0));
            let bias = cast(rng.values(g.c_out, 1.0));
            let grad = cast(rng.values(g.batch * g.c_out * g.l_out, 1.0));
            for act in [Fused::Identity, Fused::Relu, Fused::Relu6] {
                let what = format!("{g:?} {act:?}");
                let out = forward(&g, &x, &w, &bias, act);
                close(
                    &format!("forward {what}"),
                    &out,
                    &kernels::forward(&g, &x, &w, &bias, act),
                    tolerance,
                );
                // The unfold path's gradients, after the activation's mask.
                let mut masked = vec![T::ZERO; grad.len()];
                act.mask(&mut masked, &grad, &out);
                let gx = kernels::input_grad(&g, &masked, &w);
                let gw = kernels::weight_grad(&g, &masked, &x);
                let both = backward(&g, &grad, &out, act, &x, &w, true);
                close(
                    &format!("input gradient {what}"),
                    &both[..gx.len()],
                    &gx,
                    tolerance,
                );
                close(
                    &format!("weight gradient {what}"),
                    &both[gx.len()..],
                    &gw,
                    tolerance,
                );
                let weights_only = backward(&g, &grad, &out, act, &x, &w, false);
                assert_eq!(
                    weights_only,
                    both[gx.len()..],
                    "{what}: the weight gradient alone"
                );
            }
        }
    }

    #[test]
    fn portable_microkernels_match_the_unfold_path_in_f64() {
        compare::<f64>(|v| v, 1e-12);
    }

    #[test]
    fn f32_microkernels_match_the_unfold_path() {
        if !f32::direct_is_fast() {
            println!("SKIPPED: this CPU has no AVX2 and FMA; the f32 path is the f64 one's code");
        }
        compare::<f32>(|v| v as f32, 2e-5);
    }

    /// Throughput of the reference network's layers at batch 64, both paths side by side
    /// (`cargo test --release -p ecgnas layer_throughput -- --ignored --nocapture`).
    #[test]
    #[ignore = "a benchmark: prints figures"]
    fn layer_throughput() {
        let layers = [
            ([64, 1, 2500], [16, 1, 7], 2),
            ([64, 16, 1250], [32, 16, 5], 2),
            ([64, 32, 625], [64, 32, 5], 2),
            ([64, 64, 313], [64, 64, 3], 1),
            ([64, 32, 625], [64, 32, 1], 1),
        ];
        let mut rng = Rng(7);
        for (x_shape, w_shape, stride) in layers {
            let g = Geometry::new(&x_shape, &w_shape, stride, 1, false).unwrap();
            let values = |rng: &mut Rng, n| rng.values(n, 1.0).into_iter().map(|v| v as f32);
            let x: Vec<f32> = values(&mut rng, g.batch * g.c_in * g.len).collect();
            let w: Vec<f32> = values(&mut rng, g.c_out * g.c_in * g.kernel).collect();
            let bias: Vec<f32> = values(&mut rng, g.c_out).collect();
            let grad: Vec<f32> = values(&mut rng, g.batch * g.c_out * g.l_out).collect();
            let flops = 2.0 * (g.batch * g.c_out * g.c_in * g.kernel * g.l_out) as f64;
            let out = forward(&g, &x, &w, &bias, Fused::Relu);
            type Pass<'a> = (&'static str, Box<dyn FnMut() + 'a>);
            let mut passes: [Pass; 6] = [
                (
                    "direct forward",
                    Box::new(|| {
                        std::hint::black_box(forward(&g, &x, &w, &bias, Fused::Relu));
                    }),
                ),
                (
                    "unfold forward",
                    Box::new(|| {
                        std::hint::black_box(kernels::forward(&g, &x, &w, &bias, Fused::Relu));
                    }),
                ),
                (
                    "direct backward",
                    Box::new(|| {
                        std::hint::black_box(backward(&g, &grad, &out, Fused::Relu, &x, &w, true));
                    }),
                ),
                (
                    "unfold backward",
                    Box::new(|| {
                        let mut masked = vec![0f32; grad.len()];
                        Fused::Relu.mask(&mut masked, &grad, &out);
                        std::hint::black_box(kernels::input_grad(&g, &masked, &w));
                        std::hint::black_box(kernels::weight_grad(&g, &masked, &x));
                    }),
                ),
                (
                    "direct weight gradient",
                    Box::new(|| {
                        std::hint::black_box(backward(&g, &grad, &out, Fused::Relu, &x, &w, false));
                    }),
                ),
                (
                    "unfold weight gradient",
                    Box::new(|| {
                        let mut masked = vec![0f32; grad.len()];
                        Fused::Relu.mask(&mut masked, &grad, &out);
                        std::hint::black_box(kernels::weight_grad(&g, &masked, &x));
                    }),
                ),
            ];
            // Interleaved, so that every pass sees the machine's load of the same moments.
            let mut best = [f64::INFINITY; 6];
            for _ in 0..20 {
                for (b, (_, f)) in best.iter_mut().zip(passes.iter_mut()) {
                    let t = std::time::Instant::now();
                    f();
                    *b = b.min(t.elapsed().as_secs_f64());
                }
            }
            print!("{x_shape:?} * {w_shape:?} s{stride}:");
            for (i, ((name, _), b)) in passes.iter().zip(best).enumerate() {
                let work = [1.0, 1.0, 2.0, 2.0, 1.0, 1.0][i] * flops;
                print!(" {name} {:.2} ms ({:.0} GFLOP/s);", b * 1e3, work / b / 1e9);
            }
            println!();
        }
    }
}
