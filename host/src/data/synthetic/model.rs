//! McSharry et al.'s dynamical model (IEEE TBME 50(3):289-294, 2003) for the z (voltage)
//! coordinate, integrated with fixed-step RK4 at 1,000 Hz and kept every 4th sample.
//!
//! With the phase given by the beat times (see `plan`), the model's z equation is
//!
//! ```text
//! ż = −Σ_i a_i Δθ_i exp(−Δθ_i² / (2 b_i²)) − (z − z0),   Δθ_i = ω_i (t − c_i)
//! ```
//!
//! We take z0 = 0: ECGSYN's z0 is a small respiratory sinusoid; here baseline wander is added
//! with the noise instead (section 1.1), with its frequency, phase and amplitude drawn per window.
//!
//! The forcing F(t) does not depend on z, so RK4 needs it at t, t + h/2 (stages 2 and 3) and
//! t + h (stage 4, which is the next step's stage 1): two evaluations a step, tabulated once on
//! the half-step grid. Each Gaussian is added only within ±5 b_i of its centre, and by a
//! recurrence (two multiplications a point) instead of an `exp` a point.

use super::{FS_HZ, WINDOW_SAMPLES};

/// One Gaussian wave: Δθ = ω (t − c) near its centre `c`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Wave {
    /// Centre on the simulation clock, s.
    pub c: f64,
    /// Angular rate of the phase at the wave, rad/s.
    pub omega: f64,
    /// McSharry's a_i.
    pub a: f64,
    /// McSharry's b_i, rad.
    pub b: f64,
}

impl Wave {
    /// Standard deviation in time, s.
    fn sigma(&self) -> f64 {
        self.b / self.omega
    }
}

/// Internal (integration) rate, Hz.
pub(super) const INTERNAL_HZ: f64 = 1000.0;
/// RK4 step, s.
const H: f64 = 1.0 / INTERNAL_HZ;
/// Internal samples per output sample (1000 Hz → 250 Hz).
const DECIMATE: usize = (INTERNAL_HZ / FS_HZ) as usize;
/// The simulation starts at t = 0 and the window keeps [1, 11) s. The ODE is causal, so the
/// twelfth simulated second, which the window drops, is not integrated.
pub(super) const KEEP_START_S: f64 = 1.0;
/// RK4 step index of the first kept sample.
const KEEP_START_STEP: usize = (KEEP_START_S * INTERNAL_HZ) as usize;
const _: () = assert!(KEEP_START_STEP % DECIMATE == 0);
/// RK4 step index of the last kept sample.
const LAST_STEP: usize = KEEP_START_STEP + DECIMATE * (WINDOW_SAMPLES - 1);
/// Gaussians are cut at this many b_i (σ) from their centre: the cut-off loses e^-12.5 ≈ 4e-6
/// of a wave.
const SUPPORT_SIGMAS: f64 = 5.0;

/// Adds the forcing −a Δθ exp(−Δθ²/(2b²)) of every wave to `f`, sampled at `t_j = j·dt`.
pub(super) fn add_forcing(waves: &[Wave], dt: f64, f: &mut [f64]) {
    let Some(last) = f.len().checked_sub(1) else {
        return;
    };
    for w in waves {
        let sigma = w.sigma();
        let half = SUPPORT_SIGMAS * sigma;
        let lo = ((w.c - half) / dt).ceil().max(0.0);
        let hi = ((w.c + half) / dt).floor().min(last as f64);
        if lo > hi {
            continue;
        }
        let (lo, hi) = (lo as usize, hi as usize);
        add_gaussian_derivative(
            &mut f[lo..=hi],
            lo as f64 * dt - w.c,
            dt,
            sigma,
            -w.a * w.omega,
        );
    }
}

/// Adds `scale·u·exp(−u²/(2σ²))` to `f[j]` at `u = u0 + j·dt`.
///
/// No `exp` a point: with D = 4·dt, g(u + D) = g(u)·R(u) and R(u + D) = R(u)·Q, where
/// R(u) = exp(−(2uD + D²)/(2σ²)) and Q = exp(−D²/σ²). Four interleaved lanes (j mod 4) each carry
/// their own g and R, so the loop has no long dependency chain and vectorises. In f64 the
/// recurrence's rounding stays below 1e-11 of the peak over the support (tested).
fn add_gaussian_derivative(f: &mut [f64], u0: f64, dt: f64, sigma: f64, scale: f64) {
    const LANES: usize = 4;
    let inv2s2 = 0.5 / (sigma * sigma);
    let d = LANES as f64 * dt;
    let lane_u: [f64; LANES] = std::array::from_fn(|l| u0 + l as f64 * dt);
    let mut g = lane_u.map(|u| (-u * u * inv2s2).exp());
    let mut r = lane_u.map(|u| (-(2.0 * u * d + d * d) * inv2s2).exp());
    let q = (-2.0 * d * d * inv2s2).exp();
    let full = f.len() / LANES;
    let mut chunks = f.chunks_exact_mut(LANES);
    for (i, chunk) in (&mut chunks).enumerate() {
        let base = i as f64 * d;
        for l in 0..LANES {
            chunk[l] += scale * (lane_u[l] + base) * g[l];
            g[l] *= r[l];
            r[l] *= q;
        }
    }
    let base = full as f64 * d;
    for (l, fj) in chunks.into_remainder().iter_mut().enumerate() {
        *fj += scale * (lane_u[l] + base) * g[l];
    }
}

/// Complementary error function (Numerical Recipes `erfcc`, fractional error < 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let e = t * poly.exp();
    if x >= 0.0 {
        e
    } else {
        2.0 - e
    }
}

/// The exact z(t) of the model started at rest at t = −∞ (the ODE is linear): with u = t − c,
/// σ = b/ω and g(u) = exp(−u²/(2σ²)), a wave's forcing is K·g'(u) with K = a·b²/ω, whose response
/// is K·(g(u) − ∫ e^{−(u−s)} g(s) ds) = K·(g(u) − σ√(π/2)·e^{σ²/2 − u}·erfc((σ² − u)/(σ√2))).
///
/// It sets the state at the start of the simulation, so the window carries no start-up transient
/// whatever the phase there (one second of e^-t decay alone would leave 37% of a wrong start).
pub(super) fn exact_z(waves: &[Wave], t: f64) -> f64 {
    let sqrt_half_pi = (0.5 * std::f64::consts::PI).sqrt();
    waves
        .iter()
        .filter_map(|w| {
            let sigma = w.sigma();
            let u = t - w.c;
            if u < -8.0 * sigma {
                return None;
            }
            let k = w.a * w.b * w.b / w.omega;
            let g = (-0.5 * u * u / (sigma * sigma)).exp();
            let s2 = sigma * sigma;
            let h = sigma
                * sqrt_half_pi
                * (0.5 * s2 - u).exp()
                * erfc((s2 - u) / (sigma * std::f64::consts::SQRT_2));
            Some(k * (g - h))
        })
        .sum()
}

/// One classical RK4 step of ż = F(t) − z, given F at t, t + h/2 and t + h.
fn rk4_step(z: f64, f0: f64, f_half: f64, f1: f64) -> f64 {
    let k1 = f0 - z;
    let k2 = f_half - (z + 0.5 * H * k1);
    let k3 = f_half - (z + 0.5 * H * k2);
    let k4 = f1 - (z + H * k3);
    z + H / 6.0 * (k1 + 2.0 * (k2 + k3) + k4)
}

/// Integrates z with RK4 from t = 0 (z(0) from [`exact_z`]) and returns the window's samples:
/// t = 1 s + j/250 Hz, j = 0..2500.
///
/// The equation is linear, so an RK4 step is z ← P·z + α·F(t) + β·F(t + h/2) + γ·F(t + h), with
/// the coefficients read off [`rk4_step`] itself, and the four steps between two kept samples
/// compose into z ← P⁴·z + Σ_j c_j·F(t + j·h/2), j = 0..8. The serial path is then one
/// multiply-add per kept sample; the rest vectorises. It is the same RK4, rounded differently
/// (the tests compare it with plain steps).
pub(super) fn simulate(waves: &[Wave]) -> Vec<f64> {
    const HALF_STEPS: usize = 2 * DECIMATE;
    let mut f = vec![0.0; 2 * LAST_STEP + 1];
    add_forcing(waves, 0.5 * H, &mut f);
    let p = rk4_step(1.0, 0.0, 0.0, 0.0);
    let abc = [
        rk4_step(0.0, 1.0, 0.0, 0.0),
        rk4_step(0.0, 0.0, 1.0, 0.0),
        rk4_step(0.0, 0.0, 0.0, 1.0),
    ];
    let mut c = [0.0; HALF_STEPS + 1];
    for i in 0..DECIMATE {
        let later = p.powi((DECIMATE - 1 - i) as i32);
        for (m, coef) in abc.iter().enumerate() {
            c[2 * i + m] += later * coef;
        }
    }
    let p4 = p.powi(DECIMATE as i32);
    let drive = |block: usize| {
        let f = &f[HALF_STEPS * block..=HALF_STEPS * (block + 1)];
        f.iter().zip(&c).map(|(a, b)| a * b).sum::<f64>()
    };
    let mut z = exact_z(waves, 0.0);
    for block in 0..KEEP_START_STEP / DECIMATE {
        z = p4 * z + drive(block);
    }
    let mut out = Vec::with_capacity(WINDOW_SAMPLES);
    out.push(z);
    for block in KEEP_START_STEP / DECIMATE..LAST_STEP / DECIMATE {
        z = p4 * z + drive(block);
        out.push(z);
    }
    debug_assert_eq!(out.len(), WINDOW_SAMPLES);
    out
}

/// ECGSYN's output scaling: the window is mapped linearly onto −0.4..1.2 mV.
pub(super) fn scale_ecgsyn(z: &mut [f64]) {
    let (lo, hi) = z
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let range = hi - lo;
    if range > 0.0 && range.is_finite() {
        let k = 1.6 / range;
        for v in z {
            *v = (*v - lo) * k - 0.4;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beat_waves(t: f64) -> Vec<Wave> {
        let w = std::f64::consts::TAU * 75.0 / 60.0;
        [
            (-0.2, 1.2, 0.25),
            (-0.03, -5.0, 0.1),
            (0.0, 30.0, 0.1),
            (0.03, -7.5, 0.1),
            (0.2, 0.75, 0.4),
        ]
        .iter()
        .map(|&(dc, a, b)| Wave {
            c: t + dc,
            omega: w,
            a,
            b,
        })
        .collect()
    }

    #[test]
    fn erfc_matches_known_values() {
        for &(x, want) in &[
            (0.0, 1.0),
            (0.5, 0.479_500_122_186_953_5),
            (1.0, 0.157_299_207_050_285_13),
            (2.0, 0.004_677_734_981_047_266),
            (-1.0, 1.842_700_792_949_715),
            (4.0, 1.541_725_790_028_002e-8),
        ] {
            let got = erfc(x);
            assert!(
                ((got - want) / want).abs() < 2e-7,
                "erfc({x}) = {got}, want {want}"
            );
        }
    }

    #[test]
    fn recurrence_forcing_matches_direct_exp() {
        let waves = beat_waves(0.6);
        let dt = 0.0005;
        let mut f = vec![0.0; 2400];
        add_forcing(&waves, dt, &mut f);
        let peak = f.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (j, &fj) in f.iter().enumerate() {
            let t = j as f64 * dt;
            let direct: f64 = waves
                .iter()
                .filter(|w| (t - w.c).abs() < SUPPORT_SIGMAS * w.sigma())
                .map(|w| {
                    let d = w.omega * (t - w.c);
                    -w.a * d * (-d * d / (2.0 * w.b * w.b)).exp()
                })
                .sum();
            assert!(
                (fj - direct).abs() < 1e-11 * peak,
                "t {t}: {fj} vs {direct}"
            );
        }
    }

    #[test]
    fn rk4_matches_the_exact_solution() {
        // Beats around the start: the initial state comes from `exact_z`, and the RK4 samples
        // must follow the exact solution through the whole window.
        let waves: Vec<Wave> = (0..16)
            .flat_map(|n| beat_waves(-0.3 + 0.8 * n as f64))
            .collect();
        let z = simulate(&waves);
        let peak = z.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(peak > 0.02, "peak {peak}");
        for (j, &zj) in z.iter().enumerate() {
            let t = KEEP_START_S + j as f64 / FS_HZ;
            let exact = exact_z(&waves, t);
            assert!(
                (zj - exact).abs() < 1e-5 * peak,
                "t {t}: rk4 {zj} exact {exact}"
            );
        }
    }

    #[test]
    fn collapsed_steps_equal_plain_rk4_steps() {
        let waves = beat_waves(1.4);
        let mut f = vec![0.0; 2 * LAST_STEP + 1];
        add_forcing(&waves, 0.5 * H, &mut f);
        let mut z = exact_z(&waves, 0.0);
        let mut plain = Vec::new();
        for k in 0..LAST_STEP {
            if k >= KEEP_START_STEP && (k - KEEP_START_STEP) % DECIMATE == 0 {
                plain.push(z);
            }
            z = rk4_step(z, f[2 * k], f[2 * k + 1], f[2 * k + 2]);
        }
        plain.push(z);
        let fast = simulate(&waves);
        assert_eq!(plain.len(), fast.len());
        for (a, b) in plain.iter().zip(&fast) {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
    }

    #[test]
    fn a_wave_leaves_no_baseline_step() {
        // The forcing of a wave integrates to zero, so far after it z decays from a tiny value
        // (only the −z term's loss during the wave remains, then e^-t).
        let waves = vec![Wave {
            c: 1.5,
            omega: std::f64::consts::TAU,
            a: 30.0,
            b: 0.3,
        }];
        let z = simulate(&waves);
        let peak = z.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let late = z[(8.0 * FS_HZ) as usize].abs();
        assert!(late < 1e-3 * peak, "late {late} peak {peak}");
    }

    #[test]
    fn ecgsyn_scaling_maps_onto_minus_0_4_to_1_2() {
        let mut z = vec![0.1, -0.3, 2.0, 0.5];
        scale_ecgsyn(&mut z);
        assert!((z[1] + 0.4).abs() < 1e-12 && (z[2] - 1.2).abs() < 1e-12);
        assert!((z[0] - (0.4 * 1.6 / 2.3 - 0.4)).abs() < 1e-12);
    }
}
