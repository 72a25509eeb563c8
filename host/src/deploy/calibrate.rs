//! Calibration of the cost model on the target: random candidates of the default spaces,
//! quantised with stand-in weights, timed layer by layer in one board binary
//! (`firmware/deploy`'s `ecgnas-calibrate`); a least-squares fit of each kernel kind's
//! coefficients on some candidates, and the prediction error on the others.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use candle_core::Device;
use rand::SeedableRng;
use serde::Serialize;

use super::codegen::{bench_module, BenchModel};
use crate::cost::profile::{Coefficients, KernelKind};
use crate::cost::{estimate_at, Profile};
use crate::export::graph::Graph;
use crate::export::quantize::{quantize, Int8Layer, Int8Model, Int8Op};
use crate::pipeline::preprocess::LeadPlan;
use crate::space::{Candidate, SearchSpace, TaskShape, WindowKind};
use crate::train::{ExampleSet, Targets};

/// One candidate built for the board.
pub struct BenchCandidate {
    /// The candidate.
    pub candidate: Candidate,
    /// Leads.
    pub leads: usize,
    /// Input rate, Hz.
    pub fs: f64,
    /// The preprocessing.
    pub plan: LeadPlan,
    /// Its int8 model (seeded weights, calibrated on noise).
    pub int8: Int8Model,
}

/// The task shapes candidates are drawn from: single-lead rhythm windows at 250 Hz and
/// two-lead beats with RR inputs at 360 Hz.
fn shapes() -> [TaskShape; 2] {
    [
        TaskShape {
            window: WindowKind::Fixed {
                choices_s: vec![5.0, 10.0],
            },
            multi_label: true,
            n_classes: 6,
            input_fs_hz: 250.0,
            leads: 1,
        },
        TaskShape {
            window: WindowKind::Beat,
            multi_label: false,
            n_classes: 4,
            input_fs_hz: 360.0,
            leads: 2,
        },
    ]
}

fn noise_set(leads: usize, len: usize, side: usize) -> ExampleSet {
    let n = 4;
    let mut state = 0x9e37_79b9u32;
    let inputs = (0..n * leads * len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state % 2001) as f32 / 500.0 - 2.0
        })
        .collect();
    ExampleSet {
        inputs,
        n,
        channels: leads,
        len,
        side: vec![1.0; n * side],
        side_width: side,
        targets: Targets::Classes(vec![0; n]),
    }
}

/// `n` random candidates (alternating task shapes) of at most `max_macs`, from `seed`.
pub fn candidates(n: usize, seed: u64, max_macs: u64) -> anyhow::Result<Vec<BenchCandidate>> {
    let board = Profile::load("qemu-mps2-an386")?;
    let shapes = shapes();
    let spaces: Vec<SearchSpace> = shapes.iter().map(SearchSpace::default_for).collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(n);
    let mut tries = 0usize;
    while out.len() < n {
        tries += 1;
        if tries > 200 * n.max(1) {
            bail!("found only {} candidates below {max_macs} MACs", out.len());
        }
        let which = out.len() % shapes.len();
        let shape = &shapes[which];
        let candidate = spaces[which].sample(&mut rng)?;
        let Ok(e) = estimate_at(&candidate, &board, shape.leads, shape.input_fs_hz) else {
            continue;
        };
        if e.macs > max_macs {
            continue;
        }
        let pipeline = candidate.preprocessing.pipeline_shape(shape.input_fs_hz)?;
        let plan = LeadPlan::new(&candidate.preprocessing, &pipeline);
        let (_, network) = crate::train::network::build(
            &candidate.architecture,
            shape.leads,
            pipeline.network_samples,
            pipeline.side_inputs,
            seed ^ tries as u64,
            &Device::Cpu,
        )?;
        let graph = Graph::lower(&network, shape.leads, pipeline.network_samples)?;
        let set = noise_set(shape.leads, pipeline.network_samples, pipeline.side_inputs);
        let int8 = quantize(&graph, &set)?;
        out.push(BenchCandidate {
            candidate,
            leads: shape.leads,
            fs: shape.input_fs_hz,
            plan,
            int8,
        });
    }
    Ok(out)
}

/// Measured instructions of one candidate: preprocessing, then each layer.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Preprocessing with the input quantisation.
    pub preprocessing: u32,
    /// Each int8 layer.
    pub layers: Vec<u32>,
}

impl Measured {
    /// The whole inference.
    pub fn total(&self) -> f64 {
        f64::from(self.preprocessing) + self.layers.iter().map(|&v| f64::from(v)).sum::<f64>()
    }
}

/// Builds the calibration binary for `benches` and runs it on QEMU.
pub fn measure(
    benches: &[BenchCandidate],
    work: &Path,
    target_dir: &Path,
) -> anyhow::Result<Vec<Measured>> {
    let models: Vec<BenchModel<'_>> = benches
        .iter()
        .map(|b| BenchModel {
            int8: &b.int8,
            plan: &b.plan,
        })
        .collect();
    let elf = super::build_calibration(&bench_module(&models), work, target_dir)?;
    super::run_qemu(&elf, work, Duration::from_secs(600))?;
    let bytes = std::fs::read(work.join("calibration.bin"))?;
    let words: Vec<u32> = bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let mut at = 0usize;
    let mut out = Vec::with_capacity(benches.len());
    for b in benches {
        let n = b.int8.layers.len();
        if words.len() < at + 1 + n {
            bail!("calibration.bin is short: {} words", words.len());
        }
        out.push(Measured {
            preprocessing: words[at],
            layers: words[at + 1..at + 1 + n].to_vec(),
        });
        at += 1 + n;
    }
    Ok(out)
}

/// The cost model's counts of one int8 layer: `(kind, [priced MACs, outputs, inputs, 1,
/// extra])`, by the rules of [`crate::cost::estimate`].
pub fn layer_terms(l: &Int8Layer) -> (KernelKind, [f64; TERMS]) {
    use crate::cost::estimate::{device_layer_kind, device_layer_work};
    let outputs = l.output.len as u64;
    let inputs = l.input.len as u64;
    let op = l.device_layer().op;
    let kind = device_layer_kind(&op);
    let out_len = match l.op {
        Int8Op::Conv { out_channels, .. } => l.output.len / out_channels.max(1),
        Int8Op::Depthwise { channels, .. } => l.output.len / channels.max(1),
        _ => 0,
    };
    let (macs, outputs, inputs, extra) = match (device_layer_work(&op, out_len), &l.op) {
        (Some(w), _) => (
            w.macs as u64,
            w.outputs as u64,
            w.inputs as u64,
            w.extra as u64,
        ),
        (None, Int8Op::MaxPool { .. }) => (2 * outputs, outputs, inputs, 0),
        // Average pooling divides each window's sum.
        (None, Int8Op::AvgPool { .. }) => (2 * outputs, outputs, inputs, outputs),
        (None, Int8Op::GlobalAvgPool { .. }) => (inputs, outputs, inputs, 0),
        (None, Int8Op::Add { .. }) => (outputs, outputs, inputs, 0),
        (None, _) => (l.macs() as u64, outputs, inputs, 0),
    };
    (
        kind,
        [
            macs as f64,
            outputs as f64,
            inputs as f64,
            1.0,
            extra as f64,
        ],
    )
}

/// The terms of the fit: MACs, outputs, inputs, a constant, extra work.
const TERMS: usize = 5;

/// The preprocessing's terms as the estimate makes them
/// ([`crate::cost::estimate::preprocessing_work`]).
fn preprocessing_terms(b: &BenchCandidate) -> [f64; TERMS] {
    let w = crate::cost::estimate::preprocessing_work(
        b.leads,
        b.plan.window,
        b.plan.output_len(),
        b.plan.taps.len(),
        b.plan.moving_average,
        !matches!(
            b.plan.normalisation,
            ecgnas_firmware::preprocess::Normalisation::None
        ),
    );
    [
        w.macs as f64,
        w.outputs as f64,
        w.inputs as f64,
        1.0,
        w.extra as f64,
    ]
}

/// Solves `min |W (A x - y)|` over the columns in `mask` (the others 0), `W = 1 / y` so that
/// relative errors count, by the normal equations; `None` if singular.
fn least_squares_on(rows: &[([f64; TERMS], f64)], mask: u32) -> Option<[f64; TERMS]> {
    let cols: Vec<usize> = (0..TERMS).filter(|c| mask & (1 << c) != 0).collect();
    let k = cols.len();
    let mut m = vec![vec![0f64; k + 1]; k];
    for (a, y) in rows {
        let w2 = 1.0 / y.max(1.0).powi(2);
        for (i, &ci) in cols.iter().enumerate() {
            m[i][k] += w2 * a[ci] * y;
            for (j, &cj) in cols.iter().enumerate() {
                m[i][j] += w2 * a[ci] * a[cj];
            }
        }
    }
    for col in 0..k {
        let pivot = (col..k).max_by(|&a, &b| m[a][col].abs().total_cmp(&m[b][col].abs()))?;
        m.swap(col, pivot);
        if m[col][col].abs() < 1e-12 * (1.0 + m[col][col].abs()) || m[col][col] == 0.0 {
            return None;
        }
        for r in 0..k {
            if r != col {
                let f = m[r][col] / m[col][col];
                let pivot_row = m[col].clone();
                for (v, p) in m[r].iter_mut().zip(&pivot_row).skip(col) {
                    *v -= f * p;
                }
            }
        }
    }
    let mut x = [0f64; TERMS];
    for (i, &ci) in cols.iter().enumerate() {
        x[ci] = m[i][k] / m[i][i];
    }
    Some(x)
}

/// Non-negative least squares: the best of the unconstrained solutions over
/// every subset of columns that comes out non-negative (profiles hold no negative cost).
fn least_squares(rows: &[([f64; TERMS], f64)]) -> Option<[f64; TERMS]> {
    let residual = |x: &[f64; TERMS]| -> f64 {
        rows.iter()
            .map(|(a, y)| {
                let p: f64 = a.iter().zip(x).map(|(a, x)| a * x).sum();
                ((p - y) / y.max(1.0)).powi(2)
            })
            .sum()
    };
    (1u32..(1 << TERMS))
        .filter_map(|mask| least_squares_on(rows, mask))
        .filter(|x| x.iter().all(|&v| v >= 0.0 && v.is_finite()))
        .min_by(|a, b| residual(a).total_cmp(&residual(b)))
}

/// Fits every kernel kind's coefficients to the measured layers of `benches`.
pub fn fit(
    benches: &[BenchCandidate],
    measured: &[Measured],
    profile: &Profile,
) -> anyhow::Result<Vec<(KernelKind, Coefficients, usize)>> {
    let mut rows: Vec<(KernelKind, [f64; TERMS], f64)> = Vec::new();
    for (b, m) in benches.iter().zip(measured) {
        rows.push((
            KernelKind::Preprocessing,
            preprocessing_terms(b),
            f64::from(m.preprocessing),
        ));
        for (l, &cost) in b.int8.layers.iter().zip(&m.layers) {
            let (kind, terms) = layer_terms(l);
            rows.push((kind, terms, f64::from(cost)));
        }
    }
    let mut out = Vec::new();
    for kind in KernelKind::ALL.into_iter().chain(KernelKind::PATHS) {
        let of_kind: Vec<([f64; TERMS], f64)> = rows
            .iter()
            .filter(|r| r.0 == kind)
            .map(|r| (r.1, r.2))
            .collect();
        let current = *profile.cost.coefficients(kind);
        if of_kind.len() < TERMS {
            out.push((kind, current, of_kind.len()));
            continue;
        }
        let x =
            least_squares(&of_kind).with_context(|| format!("the fit for {kind:?} is singular"))?;
        out.push((
            kind,
            Coefficients {
                a_per_mac: x[0],
                b_per_output: x[1],
                c_per_input: x[2],
                d_fixed: x[3],
                e_per_extra: x[4],
            },
            of_kind.len(),
        ));
    }
    Ok(out)
}

/// How well predicted totals match measured ones.
#[derive(Debug, Clone, Serialize)]
pub struct Accuracy {
    /// Candidates compared.
    pub candidates: usize,
    /// Share of candidates predicted within 5% of the measurement.
    pub within_5_percent: f64,
    /// Largest relative error.
    pub max_relative_error: f64,
    /// Median relative error.
    pub median_relative_error: f64,
    /// Spearman rank correlation of predicted and measured totals.
    pub spearman: f64,
}

fn ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0f64; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0;
        for k in i..=j {
            r[idx[k]] = rank;
        }
        i = j + 1;
    }
    r
}

/// Spearman's rank correlation.
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    let (ra, rb) = (ranks(a), ranks(b));
    let n = a.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let cov: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = ra.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = rb.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt().max(f64::MIN_POSITIVE)
}

/// Predicted (through the estimate with `profile`) against measured totals.
pub fn accuracy(
    benches: &[BenchCandidate],
    measured: &[Measured],
    profile: &Profile,
) -> anyhow::Result<Accuracy> {
    let mut predicted = Vec::new();
    let mut actual = Vec::new();
    for (b, m) in benches.iter().zip(measured) {
        predicted.push(estimate_at(&b.candidate, profile, b.leads, b.fs)?.cycles);
        actual.push(m.total());
    }
    let mut errors: Vec<f64> = predicted
        .iter()
        .zip(&actual)
        .map(|(p, a)| (p - a).abs() / a.max(1.0))
        .collect();
    let within = errors.iter().filter(|&&e| e <= 0.05).count() as f64 / errors.len().max(1) as f64;
    errors.sort_by(f64::total_cmp);
    Ok(Accuracy {
        candidates: errors.len(),
        within_5_percent: within,
        max_relative_error: errors.last().copied().unwrap_or(0.0),
        median_relative_error: errors.get(errors.len() / 2).copied().unwrap_or(0.0),
        spearman: spearman(&predicted, &actual),
    })
}
