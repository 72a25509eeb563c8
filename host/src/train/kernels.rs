//! CPU kernels for a child network's convolutions and activations, as candle custom ops.
//!
//! A child's training step is dominated by its convolutions. Built from candle's generic ops
//! (an unfold, then a batched matmul: the portable path of [`super::ops`]), one step of a small
//! ECG convnet runs at a tenth of PyTorch's speed on two cores, because the backward pass
//! through the graph of views and copies costs ten times the forward. Here a convolution is
//! one custom op whose forward pass and both gradients are, per example, an unfold into a
//! reused buffer and one GEMM (the `gemm` crate that candle's own matmul uses), with the bias
//! and the activation fused in; the examples of a batch run in parallel on rayon's pool.
//!
//! Layout and padding are those of [`super::ops`]: x (B, C_in, L); w (C_out, C_in, K), or
//! (C, 1, K) for a depthwise convolution; `pad = dilation * (K - 1) / 2` on the left; output
//! length [`super::ops::conv_out_len`]. f32 and f64 (the gradient tests run in f64). The
//! results do not depend on the number of threads: every reduction has a fixed order.

use candle_core::{
    CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Storage, Tensor,
};
use rayon::prelude::*;

use super::direct_conv::{self, DirectReal};
use super::ops::conv_out_len;

/// The activation fused into a convolution's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fused {
    /// None: the output is the convolution plus its bias.
    Identity,
    /// max(x, 0).
    Relu,
    /// min(max(x, 0), 6).
    Relu6,
}

/// The element types the kernels run in.
pub trait Real:
    Copy
    + Send
    + Sync
    + PartialOrd
    + std::ops::Add<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::AddAssign
    + 'static
{
    /// 0.
    const ZERO: Self;
    /// 1.
    const ONE: Self;
    /// 6, ReLU6's ceiling.
    const SIX: Self;
}

impl Real for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const SIX: Self = 6.0;
}

impl Real for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const SIX: Self = 6.0;
}

// One loop per activation (the match outside, never per element), so that each vectorises.
impl Fused {
    /// `values[i] = act(values[i] + offset)`.
    pub(super) fn apply_offset<T: Real>(self, values: &mut [T], offset: T) {
        match self {
            Fused::Identity => values.iter_mut().for_each(|v| *v += offset),
            Fused::Relu => values.iter_mut().for_each(|v| {
                let x = *v + offset;
                *v = if x > T::ZERO { x } else { T::ZERO };
            }),
            Fused::Relu6 => values.iter_mut().for_each(|v| {
                let x = *v + offset;
                let x = if x > T::ZERO { x } else { T::ZERO };
                *v = if x < T::SIX { x } else { T::SIX };
            }),
        }
    }

    /// `dst[i] = grad[i]` where the output `out[i]` passes the gradient (the activation's
    /// slope there is 1), else 0.
    pub(super) fn mask<T: Real>(self, dst: &mut [T], grad: &[T], out: &[T]) {
        let pairs = dst.iter_mut().zip(grad.iter().zip(out));
        match self {
            Fused::Identity => dst.copy_from_slice(grad),
            Fused::Relu => pairs.for_each(|(d, (&g, &o))| {
                *d = if o > T::ZERO { g } else { T::ZERO };
            }),
            Fused::Relu6 => pairs.for_each(|(d, (&g, &o))| {
                *d = if o > T::ZERO && o < T::SIX {
                    g
                } else {
                    T::ZERO
                };
            }),
        }
    }
}

/// Examples per work item of a weight gradient: partial sums are added in this fixed grouping
/// whatever the number of threads.
const WEIGHT_GRAD_CHUNK: usize = 8;

/// Shapes of one convolution.
#[derive(Debug, Clone, Copy)]
pub(super) struct Geometry {
    pub(super) batch: usize,
    pub(super) c_in: usize,
    pub(super) len: usize,
    pub(super) c_out: usize,
    pub(super) kernel: usize,
    pub(super) stride: usize,
    pub(super) dilation: usize,
    pub(super) pad: usize,
    pub(super) l_out: usize,
    pub(super) depthwise: bool,
}

impl Geometry {
    pub(super) fn new(
        x_dims: &[usize],
        w_dims: &[usize],
        stride: usize,
        dilation: usize,
        depthwise: bool,
    ) -> Result<Geometry> {
        let (&[batch, c_in, len], &[c_out, w_in, kernel]) = (x_dims, w_dims) else {
            candle_core::bail!("conv1d: input {x_dims:?} and weights {w_dims:?} must be 3-D")
        };
        let fits = if depthwise {
            c_out == c_in && w_in == 1
        } else {
            w_in == c_in
        };
        if !fits || kernel == 0 || stride == 0 || dilation == 0 {
            candle_core::bail!(
                "conv1d: input {x_dims:?} does not fit weights {w_dims:?} (depthwise {depthwise})"
            )
        }
        let l_out = conv_out_len(len, kernel, stride, dilation);
        if l_out == 0 {
            candle_core::bail!("conv1d: an input of {len} samples is shorter than the kernel span")
        }
        Ok(Geometry {
            batch,
            c_in,
            len,
            c_out,
            kernel,
            stride,
            dilation,
            pad: dilation * (kernel - 1) / 2,
            l_out,
            depthwise,
        })
    }

    /// Rows of the unfolded input: `C_in * K`.
    fn unfolded_rows(&self) -> usize {
        self.c_in * self.kernel
    }

    /// A 1x1 convolution with stride 1 reads its input as is: no unfold.
    fn reads_input_directly(&self) -> bool {
        self.kernel == 1 && self.stride == 1
    }

    /// The outputs `lo..hi` whose input position for tap `t` lies inside the signal, and the
    /// input position of output `lo` (output `j` reads `first + (j - lo) * stride`).
    fn tap_range(&self, t: usize) -> (usize, usize, usize) {
        let offset = (t * self.dilation) as isize - self.pad as isize;
        let s = self.stride as isize;
        // j * s + offset >= 0  and  j * s + offset < len
        let lo = if offset >= 0 {
            0
        } else {
            ((-offset + s - 1) / s) as usize
        };
        let end = self.len as isize - offset; // j * s < end
        let hi = if end <= 0 {
            0
        } else {
            (((end + s - 1) / s) as usize).min(self.l_out)
        };
        let lo = lo.min(hi);
        let first = (lo as isize * s + offset).max(0) as usize;
        (lo, hi, first)
    }

    /// Writes the unfolded input of one example, `(C_in * K, L_out)` row-major, into `cols`.
    fn unfold<T: Real>(&self, x: &[T], cols: &mut [T]) {
        for ci in 0..self.c_in {
            let signal = &x[ci * self.len..(ci + 1) * self.len];
            for t in 0..self.kernel {
                let row = &mut cols[(ci * self.kernel + t) * self.l_out..][..self.l_out];
                let (lo, hi, first) = self.tap_range(t);
                row[..lo].fill(T::ZERO);
                row[hi..].fill(T::ZERO);
                if lo < hi {
                    gather(&mut row[lo..hi], &signal[first..], self.stride);
                }
            }
        }
    }

    /// Adds an unfolded gradient `(C_in * K, L_out)` back onto one example's input gradient.
    fn fold_add<T: Real>(&self, cols: &[T], gx: &mut [T]) {
        for ci in 0..self.c_in {
            let signal = &mut gx[ci * self.len..(ci + 1) * self.len];
            for t in 0..self.kernel {
                let row = &cols[(ci * self.kernel + t) * self.l_out..][..self.l_out];
                let (lo, hi, first) = self.tap_range(t);
                if lo < hi {
                    scatter_add(&mut signal[first..], &row[lo..hi], self.stride);
                }
            }
        }
    }

    /// Whether a pass over the batch should split the examples between threads (enough of
    /// them), or run them one after another with a multi-threaded GEMM.
    fn split_examples(&self, threads: usize) -> bool {
        threads > 1 && self.batch >= 2 * threads
    }
}

/// `dst[j] = src[j * stride]`; strides 1, 2 and 4 get loops of their own that vectorise.
pub(super) fn gather<T: Real>(dst: &mut [T], src: &[T], stride: usize) {
    fn fixed<T: Real, const S: usize>(dst: &mut [T], src: &[T]) {
        let Some((last, head)) = dst.split_last_mut() else {
            return;
        };
        for (d, chunk) in head.iter_mut().zip(src.chunks_exact(S)) {
            *d = chunk[0];
        }
        *last = src[head.len() * S];
    }
    match stride {
        1 => dst.copy_from_slice(&src[..dst.len()]),
        2 => fixed::<T, 2>(dst, src),
        4 => fixed::<T, 4>(dst, src),
        _ => dst
            .iter_mut()
            .zip(src.iter().step_by(stride))
            .for_each(|(d, s)| *d = *s),
    }
}

/// `dst[j * stride] += src[j]`: the transpose of [`gather`].
fn scatter_add<T: Real>(dst: &mut [T], src: &[T], stride: usize) {
    fn fixed<T: Real, const S: usize>(dst: &mut [T], src: &[T]) {
        let Some((last, head)) = src.split_last() else {
            return;
        };
        for (chunk, v) in dst.chunks_exact_mut(S).zip(head) {
            chunk[0] += *v;
        }
        dst[head.len() * S] += *last;
    }
    match stride {
        1 => dst.iter_mut().zip(src).for_each(|(d, s)| *d += *s),
        2 => fixed::<T, 2>(dst, src),
        4 => fixed::<T, 4>(dst, src),
        _ => dst
            .iter_mut()
            .step_by(stride)
            .zip(src)
            .for_each(|(d, s)| *d += *s),
    }
}

/// One input row of a depthwise convolution, read tap by tap: with a stride above 1 it is
/// split by phase first, so that the samples one tap reads are contiguous (and its loops
/// vectorise).
struct DepthwiseRow<'a, T> {
    values: &'a [T],
    stride: usize,
    per_phase: usize,
}

impl<'a, T: Real> DepthwiseRow<'a, T> {
    /// `phases` is scratch, reused from row to row.
    fn new(g: &Geometry, signal: &'a [T], phases: &'a mut Vec<T>) -> DepthwiseRow<'a, T> {
        if g.stride == 1 {
            return DepthwiseRow {
                values: signal,
                stride: 1,
                per_phase: signal.len(),
            };
        }
        let per_phase = signal.len().div_ceil(g.stride);
        phases.clear();
        phases.resize(g.stride * per_phase, T::ZERO);
        for (ph, dst) in phases.chunks_mut(per_phase).enumerate() {
            if ph < signal.len() {
                let n = (signal.len() - ph).div_ceil(g.stride);
                gather(&mut dst[..n], &signal[ph..], g.stride);
            }
        }
        DepthwiseRow {
            values: phases,
            stride: g.stride,
            per_phase,
        }
    }

    /// The `n` samples `first, first + stride, ...` of the row.
    fn tap(&self, first: usize, n: usize) -> &'a [T] {
        let at = (first % self.stride) * self.per_phase + first / self.stride;
        &self.values[at..at + n]
    }
}

/// Lanes of the partial sums of [`dot`] and [`sum`]: independent sums that vectorise, added in
/// a fixed order.
const PARTIAL_SUMS: usize = 8;

fn dot<T: Real>(a: &[T], b: &[T]) -> T {
    let mut partial = [T::ZERO; PARTIAL_SUMS];
    let (a_chunks, b_chunks) = (a.chunks_exact(PARTIAL_SUMS), b.chunks_exact(PARTIAL_SUMS));
    let mut tail = T::ZERO;
    for (x, y) in a_chunks.remainder().iter().zip(b_chunks.remainder()) {
        tail += *x * *y;
    }
    for (x, y) in a_chunks.zip(b_chunks) {
        for i in 0..PARTIAL_SUMS {
            partial[i] += x[i] * y[i];
        }
    }
    partial.iter().fold(T::ZERO, |s, &p| s + p) + tail
}

fn sum<T: Real>(a: &[T]) -> T {
    let mut partial = [T::ZERO; PARTIAL_SUMS];
    let chunks = a.chunks_exact(PARTIAL_SUMS);
    let tail = chunks.remainder().iter().fold(T::ZERO, |s, &v| s + v);
    for x in chunks {
        for i in 0..PARTIAL_SUMS {
            partial[i] += x[i];
        }
    }
    partial.iter().fold(T::ZERO, |s, &p| s + p) + tail
}

/// A strided matrix operand: element `(r, c)` at `data[r * row_stride + c * col_stride]`.
struct Operand<'a, T> {
    data: &'a [T],
    row_stride: usize,
    col_stride: usize,
}

/// `dst = [dst +] lhs · rhs` for an `m x k` lhs and a `k x n` rhs; `dst` is `m x n` with row
/// stride `dst_row_stride` and unit column stride.
// The one unsafe call of the crate's training code: `gemm` takes raw pointers and strides.
#[allow(unsafe_code)]
fn gemm_into<T: Real>(
    (m, n, k): (usize, usize, usize),
    dst: &mut [T],
    dst_row_stride: usize,
    accumulate: bool,
    lhs: Operand<'_, T>,
    rhs: Operand<'_, T>,
    threads: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    let last = |rows: usize, cols: usize, rs: usize, cs: usize| (rows - 1) * rs + (cols - 1) * cs;
    // The bounds the raw-pointer GEMM relies on; a failure is a bug in this module.
    assert!(
        last(m, n, dst_row_stride, 1) < dst.len(),
        "gemm: dst too small"
    );
    if k == 0 {
        if !accumulate {
            dst.fill(T::ZERO);
        }
        return;
    }
    assert!(last(m, k, lhs.row_stride, lhs.col_stride) < lhs.data.len());
    assert!(last(k, n, rhs.row_stride, rhs.col_stride) < rhs.data.len());
    let parallelism = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the asserts above keep every element the GEMM reads or writes inside its slice;
    // `dst` is borrowed mutably and does not alias `lhs` or `rhs` (shared borrows).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_row_stride as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            T::ONE,
            T::ONE,
            false,
            false,
            false,
            parallelism,
        )
    }
}

/// Runs `per_example(b, chunk, scratch, gemm_threads)` over the batch's chunks of `chunk_len`:
/// split between threads when there are enough examples, else one by one with a parallel GEMM.
fn for_each_example<T: Real>(
    g: &Geometry,
    out: &mut [T],
    chunk_len: usize,
    per_example: impl Fn(usize, &mut [T], &mut Vec<T>, usize) + Sync,
) {
    let threads = rayon::current_num_threads();
    if g.split_examples(threads) {
        // One contiguous group of examples per thread, each with one scratch buffer.
        let per_group = g.batch.div_ceil(threads);
        out.par_chunks_mut(per_group * chunk_len)
            .enumerate()
            .for_each(|(group, examples)| {
                let mut scratch = Vec::new();
                for (i, chunk) in examples.chunks_mut(chunk_len).enumerate() {
                    per_example(group * per_group + i, chunk, &mut scratch, 1);
                }
            });
    } else {
        let mut scratch = Vec::new();
        for (b, chunk) in out.chunks_mut(chunk_len).enumerate() {
            per_example(b, chunk, &mut scratch, threads);
        }
    }
}

fn scratch_of<T: Real>(scratch: &mut Vec<T>, len: usize) -> &mut [T] {
    if scratch.len() < len {
        scratch.resize(len, T::ZERO);
    }
    &mut scratch[..len]
}

/// Forward pass: `act(conv(x, w) + bias)`, (B, C_out, L_out).
pub(super) fn forward<T: Real>(g: &Geometry, x: &[T], w: &[T], bias: &[T], act: Fused) -> Vec<T> {
    let mut out = vec![T::ZERO; g.batch * g.c_out * g.l_out];
    if g.depthwise {
        out.par_chunks_mut(g.l_out)
            .with_min_len(8)
            .enumerate()
            .for_each_init(Vec::new, |phases, (row, out_row)| {
                let c = row % g.c_in;
                let signal = DepthwiseRow::new(g, &x[row * g.len..(row + 1) * g.len], phases);
                out_row.fill(bias[c]);
                for t in 0..g.kernel {
                    let (lo, hi, first) = g.tap_range(t);
                    if lo < hi {
                        let tap = w[c * g.kernel + t];
                        for (o, s) in out_row[lo..hi].iter_mut().zip(signal.tap(first, hi - lo)) {
                            *o += tap * *s;
                        }
                    }
                }
                act.apply_offset(out_row, T::ZERO);
            });
        return out;
    }
    let rows = g.unfolded_rows();
    for_each_example(
        g,
        &mut out,
        g.c_out * g.l_out,
        |b, out_b, scratch, threads| {
            let x_b = &x[b * g.c_in * g.len..(b + 1) * g.c_in * g.len];
            let cols: &[T] = if g.reads_input_directly() {
                x_b
            } else {
                let cols = scratch_of(scratch, rows * g.l_out);
                g.unfold(x_b, cols);
                cols
            };
            gemm_into(
                (g.c_out, g.l_out, rows),
                out_b,
                g.l_out,
                false,
                Operand {
                    data: w,
                    row_stride: rows,
                    col_stride: 1,
                },
                Operand {
                    data: cols,
                    row_stride: g.l_out,
                    col_stride: 1,
                },
                threads,
            );
            for (o_row, &b_o) in out_b.chunks_mut(g.l_out).zip(bias) {
                act.apply_offset(o_row, b_o);
            }
        },
    );
    out
}

/// Gradient with respect to the input, (B, C_in, L), from the output's gradient `grad`
/// (already through the activation).
pub(super) fn input_grad<T: Real>(g: &Geometry, grad: &[T], w: &[T]) -> Vec<T> {
    let mut gx = vec![T::ZERO; g.batch * g.c_in * g.len];
    if g.depthwise {
        gx.par_chunks_mut(g.len)
            .with_min_len(8)
            .enumerate()
            .for_each_init(Vec::new, |phases, (row, gx_row)| {
                let c = row % g.c_in;
                let grad_row = &grad[row * g.l_out..(row + 1) * g.l_out];
                // Sums into the phase rows of the input (contiguous per tap), then interleaves.
                let per_phase = g.len.div_ceil(g.stride);
                let sums: &mut [T] = if g.stride == 1 {
                    gx_row
                } else {
                    phases.clear();
                    phases.resize(g.stride * per_phase, T::ZERO);
                    phases
                };
                for t in 0..g.kernel {
                    let (lo, hi, first) = g.tap_range(t);
                    if lo < hi {
                        let tap = w[c * g.kernel + t];
                        let at = (first % g.stride) * per_phase + first / g.stride;
                        for (d, s) in sums[at..at + hi - lo].iter_mut().zip(&grad_row[lo..hi]) {
                            *d += tap * *s;
                        }
                    }
                }
                if g.stride > 1 {
                    for (i, d) in gx_row.iter_mut().enumerate() {
                        *d = phases[(i % g.stride) * per_phase + i / g.stride];
                    }
                }
            });
        return gx;
    }
    let rows = g.unfolded_rows();
    // The transposed weights, (C_in * K, C_out), as a strided view.
    let w_t = || Operand {
        data: w,
        row_stride: 1,
        col_stride: rows,
    };
    for_each_example(g, &mut gx, g.c_in * g.len, |b, gx_b, scratch, threads| {
        let grad_b = Operand {
            data: &grad[b * g.c_out * g.l_out..(b + 1) * g.c_out * g.l_out],
            row_stride: g.l_out,
            col_stride: 1,
        };
        if g.reads_input_directly() {
            gemm_into(
                (rows, g.l_out, g.c_out),
                gx_b,
                g.l_out,
                false,
                w_t(),
                grad_b,
                threads,
            );
        } else {
            let cols = scratch_of(scratch, rows * g.l_out);
            gemm_into(
                (rows, g.l_out, g.c_out),
                cols,
                g.l_out,
                false,
                w_t(),
                grad_b,
                threads,
            );
            g.fold_add(cols, gx_b);
        }
    });
    gx
}

/// Gradients of the weights and the bias, (C_out, C_in/groups * K + 1): the weight gradient
/// in the first columns, the bias gradient in the last.
pub(super) fn weight_grad<T: Real>(g: &Geometry, grad: &[T], x: &[T]) -> Vec<T> {
    if g.depthwise {
        let width = g.kernel + 1;
        let mut out = vec![T::ZERO; g.c_in * width];
        out.par_chunks_mut(width).enumerate().for_each(|(c, acc)| {
            let mut phases = Vec::new();
            for b in 0..g.batch {
                let row = b * g.c_in + c;
                let signal = DepthwiseRow::new(g, &x[row * g.len..(row + 1) * g.len], &mut phases);
                let grad_row = &grad[row * g.l_out..(row + 1) * g.l_out];
                for (t, acc_t) in acc[..g.kernel].iter_mut().enumerate() {
                    let (lo, hi, first) = g.tap_range(t);
                    if lo < hi {
                        *acc_t += dot(&grad_row[lo..hi], signal.tap(first, hi - lo));
                    }
                }
                acc[g.kernel] += sum(grad_row);
            }
        });
        return out;
    }
    let rows = g.unfolded_rows();
    let width = rows + 1;
    let chunks = g.batch.div_ceil(WEIGHT_GRAD_CHUNK);
    let threads = rayon::current_num_threads();
    let gemm_threads = if threads > 1 && chunks < threads {
        threads
    } else {
        1
    };
    let partial = |chunk: usize| -> Vec<T> {
        let mut acc = vec![T::ZERO; g.c_out * width];
        let mut scratch = Vec::new();
        let first = chunk * WEIGHT_GRAD_CHUNK;
        for b in first..(first + WEIGHT_GRAD_CHUNK).min(g.batch) {
            let x_b = &x[b * g.c_in * g.len..(b + 1) * g.c_in * g.len];
            let grad_b = &grad[b * g.c_out * g.l_out..(b + 1) * g.c_out * g.l_out];
            // The unfolded input, transposed: (L_out, C_in * K).
            let cols_t = if g.reads_input_directly() {
                Operand {
                    data: x_b,
                    row_stride: 1,
                    col_stride: g.len,
                }
            } else {
                let cols = scratch_of(&mut scratch, rows * g.l_out);
                g.unfold(x_b, cols);
                Operand {
                    data: &*cols,
                    row_stride: 1,
                    col_stride: g.l_out,
                }
            };
            gemm_into(
                (g.c_out, rows, g.l_out),
                &mut acc,
                width,
                true,
                Operand {
                    data: grad_b,
                    row_stride: g.l_out,
                    col_stride: 1,
                },
                cols_t,
                gemm_threads,
            );
            for (co, grad_row) in grad_b.chunks(g.l_out).enumerate() {
                let mut sum = T::ZERO;
                for &d in grad_row {
                    sum += d;
                }
                acc[co * width + rows] += sum;
            }
        }
        acc
    };
    let partials: Vec<Vec<T>> = if gemm_threads > 1 {
        (0..chunks).map(partial).collect()
    } else {
        (0..chunks).into_par_iter().map(partial).collect()
    };
    let mut total = vec![T::ZERO; g.c_out * width];
    for p in &partials {
        for (t, v) in total.iter_mut().zip(p) {
            *t += *v;
        }
    }
    total
}

/// Which passes of a standard convolution take the direct path ([`direct_conv`]). Measured
/// side by side on the layers of the reference network and a pointwise layer
/// (`direct_conv`'s `layer_throughput`), the unfold path's GEMM is as fast or faster in the
/// forward pass, and the direct path's fused backward pass 1.3-3.2x faster than the unfold
/// path's, so the default mixes them; `ECGNAS_CONV_PATH=unfold` or `direct` puts both passes
/// on one path, for comparisons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConvPath {
    Unfold,
    Mixed,
    Direct,
}

fn conv_path() -> ConvPath {
    static PATH: std::sync::OnceLock<ConvPath> = std::sync::OnceLock::new();
    *PATH.get_or_init(|| match std::env::var("ECGNAS_CONV_PATH").as_deref() {
        Ok("unfold") => ConvPath::Unfold,
        Ok("direct") => ConvPath::Direct,
        _ => ConvPath::Mixed,
    })
}

/// Taps (`C_in * K`) below which even `ECGNAS_CONV_PATH=direct` keeps the forward pass on the
/// unfold path: with few taps per output the direct tiles spend more time storing than
/// multiplying.
const DIRECT_MIN_TAPS: usize = 24;

fn conv_forward<T: DirectReal>(g: &Geometry, x: &[T], w: &[T], bias: &[T], act: Fused) -> Vec<T> {
    // A 1x1 convolution of stride 1 is multiplied as it is on the unfold path, without
    // unfolding.
    let direct_suits =
        !g.depthwise && g.c_in * g.kernel >= DIRECT_MIN_TAPS && (g.kernel, g.stride) != (1, 1);
    if conv_path() == ConvPath::Direct && T::direct_is_fast() && direct_suits {
        direct_conv::forward(g, x, w, bias, act)
    } else {
        forward(g, x, w, bias, act)
    }
}

/// The gradient through the activation: `grad` where the output `out` passes it, else 0.
fn through_activation<T: Real>(grad: &[T], out: &[T], act: Fused) -> Vec<T> {
    let mut g = vec![T::ZERO; grad.len()];
    g.par_chunks_mut(4096)
        .zip(grad.par_chunks(4096).zip(out.par_chunks(4096)))
        .for_each(|(dst, (src, o))| {
            act.mask(dst, src, o);
        });
    g
}

fn contiguous<'a, T>(data: &'a [T], layout: &Layout, what: &str) -> Result<&'a [T]> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("{what}: the kernels take contiguous tensors"),
    }
}

/// Dispatches a kernel on f32 or f64 storages of one dtype.
macro_rules! on_real_storages {
    ($name:expr, ($($s:ident, $l:ident),+), |$($v:ident),+| $body:expr) => {
        match ($($s),+) {
            ($(CpuStorage::F32($v)),+) => {
                $(let $v = contiguous($v, $l, $name)?;)+
                CpuStorage::F32($body)
            }
            ($(CpuStorage::F64($v)),+) => {
                $(let $v = contiguous($v, $l, $name)?;)+
                CpuStorage::F64($body)
            }
            _ => candle_core::bail!("{}: the kernels take f32 or f64 tensors of one dtype", $name),
        }
    };
}

/// A convolution with its bias and activation: inputs x, w, bias.
struct ConvOp {
    stride: usize,
    dilation: usize,
    depthwise: bool,
    act: Fused,
}

impl CustomOp3 for ConvOp {
    fn name(&self) -> &'static str {
        "ecgnas-conv1d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = Geometry::new(
            l1.dims(),
            l2.dims(),
            self.stride,
            self.dilation,
            self.depthwise,
        )?;
        if l3.dims() != [g.c_out] {
            candle_core::bail!("conv1d: bias {:?} for {} outputs", l3.dims(), g.c_out)
        }
        let out = on_real_storages!(self.name(), (s1, l1, s2, l2, s3, l3), |x, w, b| {
            conv_forward(&g, x, w, b, self.act)
        });
        Ok((out, Shape::from((g.batch, g.c_out, g.l_out))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _bias: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let (b, c, l) = x.dims3()?;
        let (c_out, w_in, k) = w.dims3()?;
        // The network's input needs no gradient: skip its pass.
        let input_needed = x.track_op();
        if x.dtype() == DType::F32
            && f32::direct_is_fast()
            && conv_path() != ConvPath::Unfold
            && !self.depthwise
        {
            let op = DirectGradOp {
                stride: self.stride,
                dilation: self.dilation,
                act: self.act,
                x: x.clone(),
                w: w.clone(),
                out: res.clone(),
                input_needed,
            };
            let flat = grad.apply_op1_no_bwd(&op)?;
            let gx_len = if input_needed { b * c * l } else { 0 };
            let gx = if input_needed {
                Some(flat.narrow(0, 0, gx_len)?.reshape((b, c, l))?)
            } else {
                None
            };
            let cols = w_in * k;
            let gwb = flat
                .narrow(0, gx_len, c_out * (cols + 1))?
                .reshape((c_out, cols + 1))?;
            let gw = gwb.narrow(1, 0, cols)?.reshape(w.shape())?;
            let gb = gwb.narrow(1, cols, 1)?.squeeze(1)?;
            return Ok((gx, Some(gw), Some(gb)));
        }
        let grad = match self.act {
            Fused::Identity => grad,
            act => grad.apply_op2_no_bwd(res, &ActivationGradOp { act })?,
        };
        let op = GradOp {
            stride: self.stride,
            dilation: self.dilation,
            depthwise: self.depthwise,
            x_dims: [b, c, l],
        };
        let gx = if input_needed {
            Some(grad.apply_op2_no_bwd(w, &InputGradOp(op))?)
        } else {
            None
        };
        let gwb = grad.apply_op2_no_bwd(x, &WeightGradOp(op, (c_out, w_in, k)))?;
        let cols = gwb.dim(1)? - 1;
        let gw = gwb.narrow(1, 0, cols)?.reshape(w.shape())?;
        let gb = gwb.narrow(1, cols, 1)?.squeeze(1)?;
        Ok((gx, Some(gw), Some(gb)))
    }
}

/// Both gradients of a convolution on the direct path ([`direct_conv::backward`]): input
/// the output's gradient; out one buffer, the input's gradient (when needed) then the weights'
/// and the bias's.
struct DirectGradOp {
    stride: usize,
    dilation: usize,
    act: Fused,
    x: Tensor,
    w: Tensor,
    /// The convolution's output, where the activation's slope is read.
    out: Tensor,
    input_needed: bool,
}

/// The f32 values of a contiguous CPU tensor.
fn f32_values<'a>(storage: &'a Storage, layout: &Layout, what: &str) -> Result<&'a [f32]> {
    match storage {
        Storage::Cpu(CpuStorage::F32(v)) => contiguous(v, layout, what),
        _ => candle_core::bail!("{what}: expected an f32 CPU tensor"),
    }
}

impl CustomOp1 for DirectGradOp {
    fn name(&self) -> &'static str {
        "ecgnas-conv1d-grad"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = Geometry::new(
            self.x.dims(),
            self.w.dims(),
            self.stride,
            self.dilation,
            false,
        )?;
        if layout.dims() != [g.batch, g.c_out, g.l_out] || self.out.dims() != layout.dims() {
            candle_core::bail!("conv1d gradient: gradient {:?}", layout.dims())
        }
        let CpuStorage::F32(grad) = storage else {
            candle_core::bail!("{}: expected f32", self.name())
        };
        let grad = contiguous(grad, layout, self.name())?;
        let (x_storage, x_layout) = self.x.storage_and_layout();
        let (w_storage, w_layout) = self.w.storage_and_layout();
        let (out_storage, out_layout) = self.out.storage_and_layout();
        let flat = direct_conv::backward(
            &g,
            grad,
            f32_values(&out_storage, out_layout, self.name())?,
            self.act,
            f32_values(&x_storage, x_layout, self.name())?,
            f32_values(&w_storage, w_layout, self.name())?,
            self.input_needed,
        );
        let len = flat.len();
        Ok((CpuStorage::F32(flat), Shape::from(len)))
    }
}

/// The convolution a gradient belongs to.
#[derive(Clone, Copy)]
struct GradOp {
    stride: usize,
    dilation: usize,
    depthwise: bool,
    x_dims: [usize; 3],
}

/// The input gradient: inputs grad (B, C_out, L_out), w.
struct InputGradOp(GradOp);

impl CustomOp2 for InputGradOp {
    fn name(&self) -> &'static str {
        "ecgnas-conv1d-input-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let op = self.0;
        let g = Geometry::new(&op.x_dims, l2.dims(), op.stride, op.dilation, op.depthwise)?;
        if l1.dims() != [g.batch, g.c_out, g.l_out] {
            candle_core::bail!("conv1d input gradient: gradient {:?}", l1.dims())
        }
        let gx = on_real_storages!(self.name(), (s1, l1, s2, l2), |grad, w| {
            input_grad(&g, grad, w)
        });
        Ok((gx, Shape::from(op.x_dims.to_vec())))
    }
}

/// The weight and bias gradients: inputs grad (B, C_out, L_out), x.
struct WeightGradOp(GradOp, (usize, usize, usize));

impl CustomOp2 for WeightGradOp {
    fn name(&self) -> &'static str {
        "ecgnas-conv1d-weight-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (op, (c_out, w_in, k)) = (self.0, self.1);
        let g = Geometry::new(
            l2.dims(),
            &[c_out, w_in, k],
            op.stride,
            op.dilation,
            op.depthwise,
        )?;
        if l1.dims() != [g.batch, g.c_out, g.l_out] {
            candle_core::bail!("conv1d weight gradient: gradient {:?}", l1.dims())
        }
        let gw = on_real_storages!(self.name(), (s1, l1, s2, l2), |grad, x| {
            weight_grad(&g, grad, x)
        });
        Ok((gw, Shape::from((c_out, w_in * k + 1))))
    }
}

/// The gradient through an activation: inputs grad, the activation's output.
struct ActivationGradOp {
    act: Fused,
}

impl CustomOp2 for ActivationGradOp {
    fn name(&self) -> &'static str {
        "ecgnas-activation-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        if l1.dims() != l2.dims() {
            candle_core::bail!(
                "activation gradient: {:?} against {:?}",
                l1.dims(),
                l2.dims()
            )
        }
        let g = on_real_storages!(self.name(), (s1, l1, s2, l2), |grad, out| {
            through_activation(grad, out, self.act)
        });
        Ok((g, l1.shape().clone()))
    }
}

/// An activation on its own (after a shortcut's addition).
struct ActivationOp {
    act: Fused,
}

impl CustomOp1 for ActivationOp {
    fn name(&self) -> &'static str {
        "ecgnas-activation"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        fn apply<T: Real>(x: &[T], act: Fused) -> Vec<T> {
            let mut out = x.to_vec();
            out.par_chunks_mut(4096)
                .for_each(|c| act.apply_offset(c, T::ZERO));
            out
        }
        let out = match storage {
            CpuStorage::F32(x) => {
                CpuStorage::F32(apply(contiguous(x, layout, self.name())?, self.act))
            }
            CpuStorage::F64(x) => {
                CpuStorage::F64(apply(contiguous(x, layout, self.name())?, self.act))
            }
            _ => candle_core::bail!("{}: the kernels take f32 or f64 tensors", self.name()),
        };
        Ok((out, layout.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let grad = grad.contiguous()?;
        Ok(Some(grad.apply_op2_no_bwd(
            res,
            &ActivationGradOp { act: self.act },
        )?))
    }
}

/// `act(conv1d(x, w) + bias)` on the CPU; `depthwise` takes w (C, 1, K).
pub fn conv1d(
    x: &Tensor,
    w: &Tensor,
    bias: &Tensor,
    stride: usize,
    dilation: usize,
    depthwise: bool,
    act: Fused,
) -> Result<Tensor> {
    x.contiguous()?.apply_op3(
        &w.contiguous()?,
        &bias.contiguous()?,
        ConvOp {
            stride,
            dilation,
            depthwise,
            act,
        },
    )
}

/// `act(x)` on the CPU, with the gradient of [`Fused`]'s slopes.
pub fn activation(x: &Tensor, act: Fused) -> Result<Tensor> {
    match act {
        Fused::Identity => Ok(x.clone()),
        act => x.contiguous()?.apply_op1(ActivationOp { act }),
    }
}

/// Window-2, stride-2 pooling over the length (a last odd sample is dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pool2 {
    /// The larger of each pair; the gradient goes to the first of equal values, as PyTorch's.
    Max,
    /// The mean of each pair.
    Avg,
}

/// Pooling of (B, C, L) rows of `len` samples into rows of `len / 2`.
fn pool_forward<T: Real>(x: &[T], len: usize, pool: Pool2, half: T) -> Vec<T> {
    let out_len = len / 2;
    let rows = x.len() / len;
    let mut out = vec![T::ZERO; rows * out_len];
    out.par_chunks_mut(out_len)
        .zip(x.par_chunks(len))
        .with_min_len(16)
        .for_each(|(o, row)| {
            let pairs = o.iter_mut().zip(row.chunks_exact(2));
            match pool {
                Pool2::Max => pairs.for_each(|(o, p)| *o = if p[1] > p[0] { p[1] } else { p[0] }),
                Pool2::Avg => pairs.for_each(|(o, p)| *o = (p[0] + p[1]) * half),
            }
        });
    out
}

/// The input gradient of [`pool_forward`].
fn pool_backward<T: Real>(grad: &[T], x: &[T], len: usize, pool: Pool2, half: T) -> Vec<T> {
    let out_len = len / 2;
    let mut gx = vec![T::ZERO; x.len()];
    gx.par_chunks_mut(len)
        .zip(x.par_chunks(len).zip(grad.par_chunks(out_len)))
        .with_min_len(16)
        .for_each(|(gx_row, (row, g_row))| {
            let items = gx_row
                .chunks_exact_mut(2)
                .zip(row.chunks_exact(2))
                .zip(g_row);
            match pool {
                Pool2::Max => items.for_each(|((d, p), &g)| {
                    let second = p[1] > p[0];
                    d[0] = if second { T::ZERO } else { g };
                    d[1] = if second { g } else { T::ZERO };
                }),
                Pool2::Avg => items.for_each(|((d, _), &g)| {
                    d[0] = g * half;
                    d[1] = g * half;
                }),
            }
        });
    gx
}

struct PoolOp(Pool2);

impl CustomOp1 for PoolOp {
    fn name(&self) -> &'static str {
        "ecgnas-pool2"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let &[b, c, len] = layout.dims() else {
            candle_core::bail!("pool: expected (B, C, L), got {:?}", layout.dims())
        };
        if len < 2 {
            candle_core::bail!("pool: a length of {len} leaves no samples")
        }
        let out = match storage {
            CpuStorage::F32(x) => CpuStorage::F32(pool_forward(
                contiguous(x, layout, self.name())?,
                len,
                self.0,
                0.5,
            )),
            CpuStorage::F64(x) => CpuStorage::F64(pool_forward(
                contiguous(x, layout, self.name())?,
                len,
                self.0,
                0.5,
            )),
            _ => candle_core::bail!("{}: the kernels take f32 or f64 tensors", self.name()),
        };
        Ok((out, Shape::from((b, c, len / 2))))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(
            grad.contiguous()?
                .apply_op2_no_bwd(arg, &PoolGradOp(self.0))?,
        ))
    }
}

/// The pool's input gradient: inputs grad (B, C, L / 2), x (B, C, L).
struct PoolGradOp(Pool2);

impl CustomOp2 for PoolGradOp {
    fn name(&self) -> &'static str {
        "ecgnas-pool2-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let &[b, c, len] = l2.dims() else {
            candle_core::bail!("pool gradient: expected (B, C, L), got {:?}", l2.dims())
        };
        if l1.dims() != [b, c, len / 2] {
            candle_core::bail!(
                "pool gradient: gradient {:?} for input {:?}",
                l1.dims(),
                l2.dims()
            )
        }
        let gx = on_real_storages!(self.name(), (s1, l1, s2, l2), |grad, x| {
            pool_backward(grad, x, len, self.0, 0.5)
        });
        Ok((gx, l2.shape().clone()))
    }
}

/// Window-2 pooling on the CPU.
pub fn pool2(x: &Tensor, pool: Pool2) -> Result<Tensor> {
    x.contiguous()?.apply_op1(PoolOp(pool))
}
