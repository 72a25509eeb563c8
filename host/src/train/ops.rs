//! The differentiable operations of a child network, built only from candle ops whose
//! gradients are right in candle 0.11.1.
//!
//! candle's own `conv1d` has wrong weight gradients for batches larger than one, and its
//! `max_pool2d`/`avg_pool2d` have wrong gradients used as 1-D pools, so none of them is used.
//! Convolutions are an unfold (`index_select` of every tap's positions) followed by one
//! matmul; pools reshape the length axis into windows and reduce them. Every op here has a
//! finite-difference test below.
//!
//! On the CPU, [`conv1d_act`] and [`depthwise_conv1d_act`] run the fused kernels of
//! [`super::kernels`] instead (the same function, ten times faster to train); the unfold path
//! stays for other devices and as the kernels' reference in the tests.
//!
//! Lengths follow the search space's rule ([`crate::space`]): padding
//! `dilation * (k - 1) / 2` on the left and the rest on the right, output length
//! `floor((L + 2 * pad - dilation * (k - 1) - 1) / stride) + 1`.

use candle_core::{DType, Result, Tensor, D};

use super::kernels::{self, Fused, Pool2};

/// Whether the CPU kernels can run `x`: a CPU tensor of f32 or f64.
fn on_cpu_kernels(x: &Tensor) -> bool {
    x.device().is_cpu() && matches!(x.dtype(), DType::F32 | DType::F64)
}

/// `act(conv1d(x, w) + bias)`: the CPU kernels where they run, else the unfold path.
pub fn conv1d_act(
    x: &Tensor,
    w: &Tensor,
    bias: &Tensor,
    stride: usize,
    dilation: usize,
    act: Fused,
) -> Result<Tensor> {
    if on_cpu_kernels(x) {
        kernels::conv1d(x, w, bias, stride, dilation, false, act)
    } else {
        activation(&conv1d(x, w, bias, stride, dilation)?, act)
    }
}

/// `act(depthwise_conv1d(x, w) + bias)`: the CPU kernels where they run, else the unfold path.
pub fn depthwise_conv1d_act(
    x: &Tensor,
    w: &Tensor,
    bias: &Tensor,
    stride: usize,
    dilation: usize,
    act: Fused,
) -> Result<Tensor> {
    if on_cpu_kernels(x) {
        kernels::conv1d(x, w, bias, stride, dilation, true, act)
    } else {
        activation(&depthwise_conv1d(x, w, bias, stride, dilation)?, act)
    }
}

/// Window-2, stride-2 pooling: the CPU kernel where it runs, else [`max_pool1d`] or
/// [`avg_pool1d`].
pub fn pool2(x: &Tensor, pool: Pool2) -> Result<Tensor> {
    match pool {
        _ if on_cpu_kernels(x) => kernels::pool2(x, pool),
        Pool2::Max => max_pool1d(x, 2),
        Pool2::Avg => avg_pool1d(x, 2),
    }
}

/// An activation: the CPU kernel where it runs, else candle's ops.
pub fn activation(x: &Tensor, act: Fused) -> Result<Tensor> {
    match act {
        Fused::Identity => Ok(x.clone()),
        _ if on_cpu_kernels(x) => kernels::activation(x, act),
        Fused::Relu => x.relu(),
        Fused::Relu6 => relu6(x),
    }
}

/// Output length of a convolution with "same"-style padding (`pad = dilation * (k - 1) / 2`).
pub fn conv_out_len(len: usize, kernel: usize, stride: usize, dilation: usize) -> usize {
    let span = dilation * (kernel - 1);
    let padded = len + 2 * (span / 2);
    if padded <= span {
        return 0;
    }
    (padded - span - 1) / stride + 1
}

/// The input positions every output reads, tap-major: index `t * l_out + j` holds the padded
/// input position of tap `t` for output `j`.
fn tap_positions(l_out: usize, kernel: usize, stride: usize, dilation: usize) -> Vec<u32> {
    (0..kernel)
        .flat_map(|t| (0..l_out).map(move |j| (t * dilation + j * stride) as u32))
        .collect()
}

/// The unfolded input `(B, C, K, L_out)` of a convolution.
fn unfold(x: &Tensor, kernel: usize, stride: usize, dilation: usize) -> Result<Tensor> {
    let (b, c, l) = x.dims3()?;
    let span = dilation * (kernel - 1);
    let pad = span / 2;
    let l_out = conv_out_len(l, kernel, stride, dilation);
    if l_out == 0 {
        candle_core::bail!("convolution input of length {l} is shorter than the kernel span {span}")
    }
    let xp = x.pad_with_zeros(D::Minus1, pad, pad)?;
    let idx = Tensor::from_vec(
        tap_positions(l_out, kernel, stride, dilation),
        kernel * l_out,
        x.device(),
    )?;
    xp.index_select(&idx, 2)?.reshape((b, c, kernel, l_out))
}

/// Standard 1-D convolution by unfold and matmul (the portable path). `x`: (B, C_in, L); `w`: (C_out, C_in, K); `bias`: (C_out).
pub fn conv1d(
    x: &Tensor,
    w: &Tensor,
    bias: &Tensor,
    stride: usize,
    dilation: usize,
) -> Result<Tensor> {
    let (b, c_in, _) = x.dims3()?;
    let (c_out, w_in, k) = w.dims3()?;
    if w_in != c_in {
        candle_core::bail!("conv1d: input has {c_in} channels, weights expect {w_in}")
    }
    let cols = unfold(x, k, stride, dilation)?;
    let l_out = cols.dim(3)?;
    let cols = cols.reshape((b, c_in * k, l_out))?;
    let out = w
        .reshape((c_out, c_in * k))?
        .broadcast_left(b)?
        .matmul(&cols)?;
    out.broadcast_add(&bias.reshape((1, c_out, 1))?)
}

/// Depthwise 1-D convolution (one filter per channel) by unfold (the portable path). `w`: (C, 1, K); `bias`: (C).
pub fn depthwise_conv1d(
    x: &Tensor,
    w: &Tensor,
    bias: &Tensor,
    stride: usize,
    dilation: usize,
) -> Result<Tensor> {
    let (_, c, _) = x.dims3()?;
    let (w_c, one, k) = w.dims3()?;
    if w_c != c || one != 1 {
        candle_core::bail!(
            "depthwise_conv1d: input has {c} channels, weights are {:?}",
            w.dims()
        )
    }
    let cols = unfold(x, k, stride, dilation)?; // (B, C, K, L_out)
    let out = cols.broadcast_mul(&w.reshape((1, c, k, 1))?)?.sum(2)?;
    out.broadcast_add(&bias.reshape((1, c, 1))?)
}

/// Dense layer on (B, In): `w` (Out, In), `bias` (Out).
pub fn dense(x: &Tensor, w: &Tensor, bias: &Tensor) -> Result<Tensor> {
    // A contiguous 2-D input: candle 0.11.1's Linear is wrong on transposed 3-D inputs.
    x.contiguous()?.matmul(&w.t()?)?.broadcast_add(bias)
}

/// ReLU6 as `relu(x) - relu(x - 6)`: the same function, with ReLU's well-tested gradient.
pub fn relu6(x: &Tensor) -> Result<Tensor> {
    x.relu()? - (x - 6.0)?.relu()?
}

/// Max pooling over non-overlapping windows of `k` along the length (a tail shorter than `k`
/// is dropped, as floor mode does).
pub fn max_pool1d(x: &Tensor, k: usize) -> Result<Tensor> {
    let (b, c, l) = x.dims3()?;
    let n = l / k;
    if n == 0 {
        candle_core::bail!("max_pool1d: length {l} is shorter than the window {k}")
    }
    x.narrow(2, 0, n * k)?.reshape((b, c, n, k))?.max(D::Minus1)
}

/// Average pooling over non-overlapping windows of `k` (floor mode).
pub fn avg_pool1d(x: &Tensor, k: usize) -> Result<Tensor> {
    let (b, c, l) = x.dims3()?;
    let n = l / k;
    if n == 0 {
        candle_core::bail!("avg_pool1d: length {l} is shorter than the window {k}")
    }
    x.narrow(2, 0, n * k)?
        .reshape((b, c, n, k))?
        .mean(D::Minus1)
}

/// Global average pooling: (B, C, L) -> (B, C).
pub fn global_avg_pool(x: &Tensor) -> Result<Tensor> {
    x.mean(D::Minus1)
}

/// Mean binary cross-entropy with logits, weighted per label: each positive target of label
/// `c` counts `pos_weight[c]` times (as PyTorch's `BCEWithLogitsLoss(pos_weight=..)`).
///
/// Written as `max(x,0) - x*t + log(1 + exp(-|x|))`, stable for saturated logits (candle's own
/// version gives NaN beyond |x| of about 17 in f32).
pub fn bce_with_logits(
    logits: &Tensor,
    target: &Tensor,
    pos_weight: Option<&Tensor>,
) -> Result<Tensor> {
    let softplus_neg_abs = (logits.abs()?.neg()?.exp()? + 1.0)?.log()?;
    // log(1 + exp(-x)) = softplus(-x) = max(-x, 0) + log(1 + exp(-|x|)).
    let log_sig_neg = (logits.neg()?.relu()? + &softplus_neg_abs)?; // -log(sigmoid(x))
    let log_one_minus = (logits.relu()? + &softplus_neg_abs)?; // -log(1 - sigmoid(x))
    let pos_term = match pos_weight {
        Some(w) => (target * log_sig_neg)?.broadcast_mul(&w.reshape((1, ()))?)?,
        None => (target * log_sig_neg)?,
    };
    let neg_term = ((1.0 - target)? * log_one_minus)?;
    (pos_term + neg_term)?.mean_all()
}

/// Weighted softmax cross-entropy: `-Σ w[y_i] log p(y_i) / Σ w[y_i]` (PyTorch's
/// `cross_entropy(weight=..)` mean). `labels`: (B) u32.
pub fn weighted_cross_entropy(
    logits: &Tensor,
    labels: &Tensor,
    weights: Option<&Tensor>,
) -> Result<Tensor> {
    let log_p = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    let picked = log_p.gather(&labels.unsqueeze(1)?, 1)?.squeeze(1)?;
    match weights {
        None => picked.mean_all()?.neg(),
        Some(w) => {
            let wy = w.index_select(labels, 0)?.to_dtype(logits.dtype())?;
            let total = wy.sum_all()?;
            (picked * &wy)?.sum_all()?.neg()?.broadcast_div(&total)
        }
    }
}

/// Converts labels of a single-label batch to the u32 tensor the losses take.
pub fn labels_tensor(labels: &[u32], device: &candle_core::Device) -> Result<Tensor> {
    Tensor::from_vec(labels.to_vec(), labels.len(), device)?.to_dtype(DType::U32)
}

#[cfg(test)]
mod tests {
    //! Gradients against central finite differences, in f64 on the CPU, at batch sizes above
    //! one (where candle's own conv1d is wrong).
    use super::*;
    use candle_core::{Device, Var};

    const EPS: f64 = 1e-6;

    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        }
        fn tensor(&mut self, shape: &[usize]) -> Tensor {
            let n = shape.iter().product();
            let v: Vec<f64> = (0..n).map(|_| self.next()).collect();
            Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
        }
    }

    /// Checks d(sum(f(inputs) * r))/d(input i) for every input against finite differences;
    /// returns the largest relative error.
    fn grad_error(inputs: &[Tensor], f: &dyn Fn(&[Tensor]) -> Result<Tensor>) -> f64 {
        let mut rng = Lcg(99);
        let vars: Vec<Var> = inputs
            .iter()
            .map(|t| Var::from_tensor(t).unwrap())
            .collect();
        let tensors: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
        let out = f(&tensors).unwrap();
        let r = rng.tensor(out.dims());
        let loss = |xs: &[Tensor]| -> f64 {
            (f(xs).unwrap() * &r)
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f64>()
                .unwrap()
        };
        let grads = (out * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let mut worst = 0f64;
        for (i, var) in vars.iter().enumerate() {
            let analytic: Vec<f64> = grads
                .get(var)
                .expect("gradient")
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let base: Vec<f64> = inputs[i].flatten_all().unwrap().to_vec1().unwrap();
            let (mut err, mut scale) = (0f64, 1e-12f64);
            for j in 0..base.len() {
                let at = |d: f64| {
                    let mut v = base.clone();
                    v[j] += d;
                    let mut xs = inputs.to_vec();
                    xs[i] = Tensor::from_vec(v, inputs[i].dims(), &Device::Cpu).unwrap();
                    loss(&xs)
                };
                let numeric = (at(EPS) - at(-EPS)) / (2.0 * EPS);
                err = err.max((analytic[j] - numeric).abs());
                scale = scale.max(numeric.abs());
            }
            worst = worst.max(err / scale);
        }
        worst
    }

    fn assert_grads(name: &str, inputs: &[Tensor], f: &dyn Fn(&[Tensor]) -> Result<Tensor>) {
        let e = grad_error(inputs, f);
        assert!(e < 1e-6, "{name}: relative gradient error {e:e}");
    }

    #[test]
    fn conv1d_gradients_for_strides_and_dilations() {
        let mut rng = Lcg(1);
        for &(c_in, c_out, k, stride, dilation, len) in &[
            (1, 4, 7, 2, 1, 23),
            (3, 5, 5, 1, 2, 17),
            (4, 4, 3, 4, 1, 19),
            (2, 3, 1, 1, 1, 9), // pointwise
            (3, 2, 15, 2, 4, 80),
        ] {
            let inputs = [
                rng.tensor(&[3, c_in, len]),
                rng.tensor(&[c_out, c_in, k]),
                rng.tensor(&[c_out]),
            ];
            assert_grads(
                &format!("conv1d k{k} s{stride} d{dilation}"),
                &inputs,
                &|x| conv1d(&x[0], &x[1], &x[2], stride, dilation),
            );
        }
    }

    /// The f32 training path (the direct convolution where the CPU has AVX2, whose backward
    /// pass is one op) against the f64 one, whose gradients the tests above check: outputs and
    /// all three gradients, with the input a variable and without.
    #[test]
    fn f32_conv1d_gradients_match_f64() {
        let mut rng = Lcg(12);
        for &(c_in, c_out, k, stride, dilation, len, batch) in &[
            (8, 12, 5, 2, 1, 50, 5),
            (16, 7, 3, 1, 2, 31, 9),
            (6, 9, 7, 3, 1, 64, 1),
        ] {
            let inputs = [
                rng.tensor(&[batch, c_in, len]),
                rng.tensor(&[c_out, c_in, k]),
                rng.tensor(&[c_out]),
            ];
            for input_is_variable in [true, false] {
                let grads_of = |dtype: DType| -> Vec<Vec<f64>> {
                    let vars: Vec<Var> = inputs
                        .iter()
                        .map(|t| Var::from_tensor(&t.to_dtype(dtype).unwrap()).unwrap())
                        .collect();
                    let x = if input_is_variable {
                        vars[0].as_tensor().clone()
                    } else {
                        inputs[0].to_dtype(dtype).unwrap()
                    };
                    let out = conv1d_act(
                        &x,
                        vars[1].as_tensor(),
                        vars[2].as_tensor(),
                        stride,
                        dilation,
                        Fused::Relu,
                    )
                    .unwrap();
                    let r = Tensor::arange(0u32, out.elem_count() as u32, &Device::Cpu)
                        .unwrap()
                        .to_dtype(dtype)
                        .unwrap()
                        .reshape(out.dims())
                        .unwrap()
                        .sin()
                        .unwrap();
                    let grads = (&out * &r).unwrap().sum_all().unwrap().backward().unwrap();
                    let flat = |t: &Tensor| {
                        t.to_dtype(DType::F64)
                            .unwrap()
                            .flatten_all()
                            .unwrap()
                            .to_vec1::<f64>()
                            .unwrap()
                    };
                    let mut all = vec![flat(&out)];
                    for (i, var) in vars.iter().enumerate() {
                        match grads.get(var.as_tensor()) {
                            Some(g) if i > 0 || input_is_variable => all.push(flat(g)),
                            _ => assert!(i == 0 && !input_is_variable, "no gradient for input {i}"),
                        }
                    }
                    all
                };
                let (f32s, f64s) = (grads_of(DType::F32), grads_of(DType::F64));
                assert_eq!(f32s.len(), f64s.len());
                for (part, (a, b)) in f32s.iter().zip(&f64s).enumerate() {
                    let scale = b.iter().fold(1e-12f64, |m, v| m.max(v.abs()));
                    let err = a.iter().zip(b).fold(0f64, |m, (a, b)| m.max((a - b).abs())) / scale;
                    assert!(
                        err < 1e-5,
                        "part {part} of k{k} s{stride} d{dilation}: relative error {err:e}"
                    );
                }
            }
        }
    }

    #[test]
    fn depthwise_gradients() {
        let mut rng = Lcg(2);
        for &(c, k, stride, dilation, len) in
            &[(4, 5, 2, 1, 21), (3, 3, 1, 4, 16), (2, 9, 4, 2, 40)]
        {
            let inputs = [
                rng.tensor(&[3, c, len]),
                rng.tensor(&[c, 1, k]),
                rng.tensor(&[c]),
            ];
            assert_grads("depthwise", &inputs, &|x| {
                depthwise_conv1d(&x[0], &x[1], &x[2], stride, dilation)
            });
        }
    }

    /// Geometries for the kernels: (C_in, C_out, K, stride, dilation, L), covering the unfold
    /// (k > 1, strides, dilations), the direct 1x1 path, the strided 1x1 projection, and a
    /// kernel span longer than the signal's edges.
    const KERNEL_CASES: [(usize, usize, usize, usize, usize, usize); 6] = [
        (1, 4, 7, 2, 1, 23),
        (3, 5, 5, 1, 2, 17),
        (4, 4, 3, 4, 1, 19),
        (2, 3, 1, 1, 1, 9),
        (3, 2, 1, 2, 1, 11),
        (3, 2, 15, 2, 4, 80),
    ];

    #[test]
    fn fused_kernels_gradients_match_finite_differences() {
        let mut rng = Lcg(6);
        for act in [Fused::Identity, Fused::Relu, Fused::Relu6] {
            for &(c_in, c_out, k, stride, dilation, len) in &KERNEL_CASES {
                // Outputs spread over a few units, so ReLU6's ceiling is crossed too.
                let scale = if act == Fused::Relu6 { 6.0 } else { 1.0 };
                let inputs = [
                    (rng.tensor(&[3, c_in, len]) * scale).unwrap(),
                    rng.tensor(&[c_out, c_in, k]),
                    rng.tensor(&[c_out]),
                ];
                assert_grads(
                    &format!("kernel conv1d k{k} s{stride} d{dilation} {act:?}"),
                    &inputs,
                    &|x| conv1d_act(&x[0], &x[1], &x[2], stride, dilation, act),
                );
                let inputs = [
                    (rng.tensor(&[3, c_in, len]) * scale).unwrap(),
                    rng.tensor(&[c_in, 1, k]),
                    rng.tensor(&[c_in]),
                ];
                assert_grads(
                    &format!("kernel depthwise k{k} s{stride} d{dilation} {act:?}"),
                    &inputs,
                    &|x| depthwise_conv1d_act(&x[0], &x[1], &x[2], stride, dilation, act),
                );
            }
            let y = ((rng.tensor(&[3, 4, 13]) * 8.0).unwrap() + 3.0).unwrap();
            assert_grads(&format!("kernel {act:?}"), &[y], &|t| {
                activation(&t[0], act)
            });
        }
    }

    #[test]
    fn pool_kernels_match_finite_differences_and_the_reshape_path() {
        let mut rng = Lcg(9);
        for len in [12, 13] {
            let x = rng.tensor(&[3, 4, len]);
            for (pool, reference) in [
                (
                    Pool2::Max,
                    max_pool1d as fn(&Tensor, usize) -> Result<Tensor>,
                ),
                (Pool2::Avg, avg_pool1d),
            ] {
                assert_grads(
                    &format!("kernel {pool:?} L{len}"),
                    std::slice::from_ref(&x),
                    &|t| pool2(&t[0], pool),
                );
                let fast = outputs_and_grads(std::slice::from_ref(&x), &|t| pool2(&t[0], pool));
                let slow = outputs_and_grads(std::slice::from_ref(&x), &|t| reference(&t[0], 2));
                assert_eq!(fast, slow, "{pool:?} L{len}");
            }
        }
        // Ties: the whole gradient goes to the first of equal values (PyTorch's choice).
        let tied = Tensor::from_vec(vec![1.0f64, 1.0, 2.0, 3.0], (1, 1, 4), &Device::Cpu).unwrap();
        let grads = outputs_and_grads(&[tied], &|t| pool2(&t[0], Pool2::Max));
        let r: Vec<f64> = Lcg(7)
            .tensor(&[1, 1, 2])
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(grads[1], vec![r[0], 0.0, 0.0, r[1]]);
    }

    /// Outputs and gradients (x, w, bias) of `f` under a random upstream gradient.
    fn outputs_and_grads(
        inputs: &[Tensor],
        f: &dyn Fn(&[Tensor]) -> Result<Tensor>,
    ) -> Vec<Vec<f64>> {
        let vars: Vec<Var> = inputs
            .iter()
            .map(|t| Var::from_tensor(t).unwrap())
            .collect();
        let tensors: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
        let out = f(&tensors).unwrap();
        let r = Lcg(7).tensor(out.dims()).to_dtype(out.dtype()).unwrap();
        let grads = (&out * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let flat = |t: &Tensor| -> Vec<f64> {
            t.to_dtype(DType::F64)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap()
        };
        let mut all = vec![flat(&out)];
        all.extend(vars.iter().map(|v| flat(grads.get(v).expect("gradient"))));
        all
    }

    #[test]
    fn kernels_match_the_unfold_path_at_every_batch_size() {
        // Batches of 1 and 3 run one example at a time with a parallel GEMM; 20 splits the
        // examples between threads; the weight gradient groups examples by 8.
        let mut rng = Lcg(8);
        for dtype in [DType::F64, DType::F32] {
            let tol = if dtype == DType::F64 { 1e-10 } else { 2e-4 };
            for batch in [1, 3, 20] {
                for &(c_in, c_out, k, stride, dilation, len) in &KERNEL_CASES {
                    for depthwise in [false, true] {
                        let w_shape = if depthwise {
                            [c_in, 1, k]
                        } else {
                            [c_out, c_in, k]
                        };
                        let inputs = [
                            rng.tensor(&[batch, c_in, len]).to_dtype(dtype).unwrap(),
                            rng.tensor(&w_shape).to_dtype(dtype).unwrap(),
                            rng.tensor(&[w_shape[0]]).to_dtype(dtype).unwrap(),
                        ];
                        let fast = outputs_and_grads(&inputs, &|x| {
                            if depthwise {
                                depthwise_conv1d_act(
                                    &x[0],
                                    &x[1],
                                    &x[2],
                                    stride,
                                    dilation,
                                    Fused::Relu,
                                )
                            } else {
                                conv1d_act(&x[0], &x[1], &x[2], stride, dilation, Fused::Relu)
                            }
                        });
                        let reference = outputs_and_grads(&inputs, &|x| {
                            let y = if depthwise {
                                depthwise_conv1d(&x[0], &x[1], &x[2], stride, dilation)?
                            } else {
                                conv1d(&x[0], &x[1], &x[2], stride, dilation)?
                            };
                            y.relu()
                        });
                        for (what, (a, b)) in ["output", "dx", "dw", "dbias"]
                            .iter()
                            .zip(fast.iter().zip(&reference))
                        {
                            assert_eq!(a.len(), b.len(), "{what}");
                            let scale = b.iter().fold(1e-12f64, |m, v| m.max(v.abs()));
                            let err = a.iter().zip(b).fold(0f64, |m, (x, y)| m.max((x - y).abs()));
                            assert!(
                                err / scale < tol,
                                "{what} {dtype:?} batch {batch} k{k} s{stride} d{dilation} \
                                 depthwise {depthwise}: relative error {:e}",
                                err / scale
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn pooling_dense_and_activation_gradients() {
        let mut rng = Lcg(3);
        let x = rng.tensor(&[3, 4, 13]);
        for k in [2, 3, 4] {
            assert_grads("max_pool1d", std::slice::from_ref(&x), &|t| {
                max_pool1d(&t[0], k)
            });
            assert_grads("avg_pool1d", std::slice::from_ref(&x), &|t| {
                avg_pool1d(&t[0], k)
            });
        }
        assert_grads("global_avg_pool", std::slice::from_ref(&x), &|t| {
            global_avg_pool(&t[0])
        });
        // Spread values around 0 and 6 so both kinks of ReLU6 are exercised (away from them).
        let y = ((rng.tensor(&[3, 4, 13]) * 8.0).unwrap() + 3.0).unwrap();
        assert_grads("relu6", &[y], &|t| relu6(&t[0]));
        let inputs = [rng.tensor(&[5, 7]), rng.tensor(&[3, 7]), rng.tensor(&[3])];
        assert_grads("dense", &inputs, &|t| dense(&t[0], &t[1], &t[2]));
    }

    #[test]
    fn loss_gradients_and_values() {
        let mut rng = Lcg(4);
        let logits = (rng.tensor(&[6, 3]) * 4.0).unwrap();
        let target = Tensor::from_vec(
            vec![
                1.0f64, 0., 1., 0., 0., 1., 1., 1., 0., 0., 0., 0., 1., 0., 1., 0., 1., 0.,
            ],
            (6, 3),
            &Device::Cpu,
        )
        .unwrap();
        let pw = Tensor::from_vec(vec![2.0f64, 0.5, 1.0], 3, &Device::Cpu).unwrap();
        assert_grads("bce", std::slice::from_ref(&logits), &|t| {
            bce_with_logits(&t[0], &target, Some(&pw))
        });
        let labels = labels_tensor(&[0, 2, 1, 2, 0, 1], &Device::Cpu).unwrap();
        let w = Tensor::from_vec(vec![1.0f64, 3.0, 0.5], 3, &Device::Cpu).unwrap();
        assert_grads("weighted ce", std::slice::from_ref(&logits), &|t| {
            weighted_cross_entropy(&t[0], &labels, Some(&w))
        });

        // Values against the closed form: BCE of logit 0 is ln 2; huge logits stay finite.
        let zero = Tensor::zeros((2, 2), DType::F64, &Device::Cpu).unwrap();
        let ones = Tensor::ones((2, 2), DType::F64, &Device::Cpu).unwrap();
        let v = bce_with_logits(&zero, &ones, None)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        assert!((v - std::f64::consts::LN_2).abs() < 1e-12);
        let big = Tensor::full(-200.0f32, (2, 2), &Device::Cpu).unwrap();
        let v = bce_with_logits(&big, &ones.to_dtype(DType::F32).unwrap(), None)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!((v - 200.0).abs() < 1e-3, "{v}");
    }

    #[test]
    fn conv1d_matches_a_direct_sum() {
        // out[b, o, j] = bias[o] + Σ_c Σ_t w[o, c, t] * x[b, c, j*s + t*d - pad], zero outside.
        let mut rng = Lcg(5);
        let (b, c_in, c_out, k, s, d, l) = (2, 3, 2, 5, 2, 2, 19);
        let x = rng.tensor(&[b, c_in, l]);
        let w = rng.tensor(&[c_out, c_in, k]);
        let bias = rng.tensor(&[c_out]);
        let got: Vec<f64> = conv1d(&x, &w, &bias, s, d)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let xv: Vec<f64> = x.flatten_all().unwrap().to_vec1().unwrap();
        let wv: Vec<f64> = w.flatten_all().unwrap().to_vec1().unwrap();
        let bv: Vec<f64> = bias.to_vec1().unwrap();
        let pad = d * (k - 1) / 2;
        let l_out = conv_out_len(l, k, s, d);
        assert_eq!(got.len(), b * c_out * l_out);
        for bi in 0..b {
            for o in 0..c_out {
                for j in 0..l_out {
                    let mut acc = bv[o];
                    for c in 0..c_in {
                        for t in 0..k {
                            let p = (j * s + t * d) as isize - pad as isize;
                            if p >= 0 && (p as usize) < l {
                                acc += wv[(o * c_in + c) * k + t]
                                    * xv[(bi * c_in + c) * l + p as usize];
                            }
                        }
                    }
                    let g = got[(bi * c_out + o) * l_out + j];
                    assert!((g - acc).abs() < 1e-12, "({bi},{o},{j}): {g} vs {acc}");
                }
            }
        }
    }
}
