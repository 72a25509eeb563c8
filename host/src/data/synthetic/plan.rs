//! A window's generator parameters: rhythm and labels, beat times, and the Gaussian waves of
//! every beat (BENCHMARKS.md section 1.1).

use std::f64::consts::{PI, TAU};

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::model::Wave;
use super::rr::{AfRr, SinusRr};
use super::LabelSet;

/// The underlying rhythm of a window: exactly one per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Rhythm {
    /// Sinus rhythm, mean HR ~ U(62, 98) bpm.
    Nsr,
    /// Sinus tachycardia, mean HR ~ U(103, 150) bpm.
    STach,
    /// Sinus bradycardia, mean HR ~ U(40, 57) bpm.
    Sb,
    /// Atrial fibrillation, mean ventricular rate ~ U(60, 150) bpm.
    Af,
}

impl Rhythm {
    fn label(self) -> LabelSet {
        match self {
            Rhythm::Nsr => LabelSet::NSR,
            Rhythm::STach => LabelSet::STACH,
            Rhythm::Sb => LabelSet::SB,
            Rhythm::Af => LabelSet::AF,
        }
    }

    /// The range the mean heart rate parameter is drawn from, bpm.
    pub fn hr_range(self) -> (f64, f64) {
        match self {
            Rhythm::Nsr => (62.0, 98.0),
            Rhythm::STach => (103.0, 150.0),
            Rhythm::Sb => (40.0, 57.0),
            Rhythm::Af => (60.0, 150.0),
        }
    }
}

/// Time (s, simulation clock) of the first beat drawn: the waves of the five seconds before the
/// simulation starts still shape its initial state (they decay as e^-t), see `model`.
const FIRST_BEAT_S: f64 = -5.0;
/// Beats are drawn until this time; later beats cannot reach the last kept sample (10.996 s).
const LAST_BEAT_S: f64 = 12.5;
/// PVC R peaks lie in this span of the simulation clock: at least 0.2 s inside the window
/// [1, 11) s.
pub(super) const PVC_SPAN_S: (f64, f64) = (1.2, 10.8);

/// How a premature ventricular beat differs from a normal beat.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct PvcShape {
    /// Factor on b_Q, b_R, b_S, ~ U(2.5, 3.5).
    pub widen: f64,
    /// Factor on the R wave's amplitude, ±U(1.0, 1.6) (the sign is the QRS main deflection).
    pub r_gain: f64,
    /// Factor on the T wave's amplitude, ~ U(1.5, 2.5); the T wave's sign is opposite to `r_gain`.
    pub t_gain: f64,
}

/// One ventricular beat.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Beat {
    /// R peak (θ = 0) on the simulation clock, s.
    pub t: f64,
    /// The sinus cycle (s) that ends at this beat and holds its P wave; `None` for no P wave.
    pub p_cycle: Option<f64>,
    /// The cycle (s) that maps this beat's T wave (θ_T = 90° is a quarter of it after R).
    pub t_cycle: f64,
    /// `Some` for a premature ventricular beat.
    pub pvc: Option<PvcShape>,
}

/// Everything drawn for one window before the noise.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    /// The window's labels (from these parameters, never measured).
    pub labels: LabelSet,
    /// The underlying rhythm.
    pub rhythm: Rhythm,
    /// Mean heart rate parameter, bpm.
    pub hr_mean: f64,
    /// PR interval (P peak to R peak), s; `None` in AF.
    #[cfg_attr(not(test), allow(dead_code))]
    pub pr_s: Option<f64>,
    /// Beats in time order, PVCs included.
    pub beats: Vec<Beat>,
    /// The Gaussian waves of all beats.
    pub waves: Vec<Wave>,
}

fn uniform(rng: &mut ChaCha8Rng, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.random::<f64>()
}

/// Draws a window's parameters. The order of the draws is part of the generator's definition:
/// changing it changes every window.
pub(super) fn draw(rng: &mut ChaCha8Rng) -> Plan {
    let u: f64 = rng.random();
    let rhythm = if u < 0.4 {
        Rhythm::Nsr
    } else if u < 0.6 {
        Rhythm::STach
    } else if u < 0.8 {
        Rhythm::Sb
    } else {
        Rhythm::Af
    };
    let has_pvc = rng.random_bool(0.3);
    let has_iavb = matches!(rhythm, Rhythm::Nsr | Rhythm::Sb) && rng.random_bool(0.3);
    let mut labels = rhythm.label();
    if has_pvc {
        labels = labels.union(LabelSet::PVC);
    }
    if has_iavb {
        labels = labels.union(LabelSet::IAVB);
    }
    let (lo, hi) = rhythm.hr_range();
    let hr_mean = uniform(rng, lo, hi);

    let (mut beats, pr_s, p_gain, af_rr_mean) = if rhythm == Rhythm::Af {
        let cv = uniform(rng, 0.15, 0.30);
        let af = AfRr::new(hr_mean, cv);
        (af_beats(rng, &af), None, 0.0, Some(af.rr_mean))
    } else {
        let hr_std = uniform(rng, 1.0, 3.0);
        let lf_hf = uniform(rng, 0.5, 2.0);
        let pr = if has_iavb {
            uniform(rng, 0.230, 0.320)
        } else {
            uniform(rng, 0.140, 0.190)
        };
        let p_gain = uniform(rng, 0.8, 1.2);
        let rr = SinusRr::new(rng, hr_mean, hr_std, lf_hf);
        (sinus_beats(rng, &rr), Some(pr), p_gain, None)
    };
    if has_pvc {
        // u32 draws: the same on every platform (a usize range may not be).
        let n = rng.random_range(1..=3u32);
        insert_pvcs(rng, &mut beats, n, af_rr_mean);
    }
    let waves = waves(&beats, hr_mean, pr_s, p_gain);
    Plan {
        labels,
        rhythm,
        hr_mean,
        pr_s,
        beats,
        waves,
    }
}

/// Sinus beats: `t_{n+1} = t_n + RR(t_n)`, from a random phase. Each beat's P wave sits in the
/// cycle that ends at it and its T wave in the cycle that starts at it, as the phase of ECGSYN.
fn sinus_beats(rng: &mut ChaCha8Rng, rr: &SinusRr) -> Vec<Beat> {
    // The clamp practically never binds (RR std ≤ 0.11 s); it bounds the loop whatever happens.
    let next = |t: f64| rr.at(t).clamp(0.25, 2.5);
    let mut t = FIRST_BEAT_S + rng.random::<f64>() * rr.rr_mean;
    let mut prev = rr.rr_mean;
    let mut beats = Vec::with_capacity(40);
    while t < LAST_BEAT_S {
        let cycle = next(t);
        beats.push(Beat {
            t,
            p_cycle: Some(prev),
            t_cycle: cycle,
            pvc: None,
        });
        prev = cycle;
        t += cycle;
    }
    beats
}

/// AF beats: i.i.d. intervals. The T wave uses the mean cycle: the ventricles cannot know the
/// next random interval (and the QT of AF beats follows the rate, not the next interval).
fn af_beats(rng: &mut ChaCha8Rng, af: &AfRr) -> Vec<Beat> {
    let mut t = FIRST_BEAT_S + rng.random::<f64>() * af.rr_mean;
    let mut beats = Vec::with_capacity(50);
    while t < LAST_BEAT_S {
        beats.push(Beat {
            t,
            p_cycle: None,
            t_cycle: af.rr_mean,
            pvc: None,
        });
        t += af.next(rng);
    }
    beats
}

/// Replaces up to `n` conducted beats by PVCs, each inside [`PVC_SPAN_S`].
///
/// A PVC follows a conducted beat `m` after the coupling interval c·RR, c ~ U(0.55, 0.75), and
/// takes the place of the conducted beat `m + 1`. In sinus rhythm RR is the sinus cycle
/// `t_{m+1} − t_m` and the sinus node is not reset, so beat `m + 2` keeps its time: a full
/// compensatory pause (PVC to next R = 2·RR − coupling over the two sinus cycles). In AF, RR is
/// the mean cycle (or the interval itself when shorter, so the PVC is always premature), and the
/// pause after the PVC is random.
///
/// PVCs never follow each other (no couplets; bigeminy can occur). The first PVC always finds a
/// place (the span is longer than any RR); a later one that finds none (every slot taken) is left
/// out, so a window has 1-3 PVCs.
fn insert_pvcs(rng: &mut ChaCha8Rng, beats: &mut [Beat], n: u32, af_rr_mean: Option<f64>) {
    for _ in 0..n {
        let coupling = uniform(rng, 0.55, 0.75);
        let slots: Vec<(usize, f64, f64)> = (0..beats.len() - 1)
            // Beat m conducts, beat m + 1 is replaced, and beat m + 2 is not a PVC (whose
            // coupling was measured from m + 1): no couplets.
            .filter(|&m| (m..(m + 3).min(beats.len())).all(|j| beats[j].pvc.is_none()))
            .filter_map(|m| {
                let interval = beats[m + 1].t - beats[m].t;
                let rr = af_rr_mean.map_or(interval, |mean| mean.min(interval));
                let t = beats[m].t + coupling * rr;
                (PVC_SPAN_S.0..=PVC_SPAN_S.1)
                    .contains(&t)
                    .then_some((m, t, rr))
            })
            .collect();
        if slots.is_empty() {
            break;
        }
        // At most a few dozen slots: the index fits a u32 draw.
        let (m, t, rr) = slots[rng.random_range(0..slots.len() as u32) as usize];
        let widen = uniform(rng, 2.5, 3.5);
        let sign = if rng.random_bool(0.5) { 1.0 } else { -1.0 };
        let r_gain = sign * uniform(rng, 1.0, 1.6);
        let t_gain = uniform(rng, 1.5, 2.5);
        beats[m + 1] = Beat {
            t,
            p_cycle: None,
            t_cycle: rr,
            pvc: Some(PvcShape {
                widen,
                r_gain,
                t_gain,
            }),
        };
    }
}

/// McSharry's PQRST extrema (C ECGSYN): θ (degrees), a, b for P, Q, R, S, T.
pub(super) const THETA_DEG: [f64; 5] = [-60.0, -15.0, 0.0, 15.0, 90.0];
/// Amplitudes a_i.
pub(super) const A: [f64; 5] = [1.2, -5.0, 30.0, -7.5, 0.75];
/// Widths b_i (rad) at 60 bpm.
pub(super) const B: [f64; 5] = [0.25, 0.1, 0.1, 0.1, 0.4];

/// The Gaussian waves of every beat.
///
/// Each wave is placed on the beat's unwrapped phase (R of beat n at Θ = 2πn) and linearised
/// around its centre: Δθ = ω·(t − c) with one angular rate ω per wave, so a wave that straddles an
/// R peak (the QRS always does; a wide PVC QRS between a short coupling interval and a long pause
/// most of all) keeps a forcing that integrates to zero, and leaves no baseline step behind.
///
/// - rate scaling as ECGSYN: b_i ×√(HR/60) and θ_Q, θ_S ×√(HR/60), with HR the window's mean rate;
///   Q, R and S use the mean rate's ω, so the QRS has the same shape in every beat;
/// - P: θ_P = −2π·PR/RR on the sinus cycle RR that ends at the beat, i.e. the P peak lies exactly
///   PR before R, even when a long PR puts it before the previous cycle's T wave;
/// - T: θ_T = 90° on the beat's T cycle.
///
/// A PVC widens Q, R, S by `widen` and divides their a_i by `widen²`: in this model a wave's peak
/// is ≈ a·b²/ω, so the widening alone would make the PVC about 9 times taller than the normal
/// beats; with the division the PVC's R is `r_gain` times the normal R, as section 1.1 means.
fn waves(beats: &[Beat], hr_mean: f64, pr_s: Option<f64>, p_gain: f64) -> Vec<Wave> {
    let hr_fact = (hr_mean / 60.0).sqrt();
    let omega_qrs = TAU * hr_mean / 60.0;
    let rad = PI / 180.0;
    let theta_q = THETA_DEG[1] * rad * hr_fact;
    let theta_s = THETA_DEG[3] * rad * hr_fact;
    let theta_t = THETA_DEG[4] * rad;
    let b = B.map(|b| b * hr_fact);
    let mut waves = Vec::with_capacity(beats.len() * 5);
    for beat in beats {
        if let (Some(cycle), Some(pr)) = (beat.p_cycle, pr_s) {
            let omega = TAU / cycle;
            // θ_P = −2π·PR/cycle, so the centre is PR before R.
            waves.push(Wave {
                c: beat.t - pr,
                omega,
                a: A[0] * p_gain,
                b: b[0],
            });
        }
        let (k, r_gain, t_gain) = match beat.pvc {
            None => (1.0, 1.0, 1.0),
            Some(p) => (p.widen, p.r_gain, -p.r_gain.signum() * p.t_gain),
        };
        let k2 = k * k;
        for (theta, i, gain) in [(theta_q, 1, 1.0), (0.0, 2, r_gain), (theta_s, 3, 1.0)] {
            waves.push(Wave {
                c: beat.t + theta / omega_qrs,
                omega: omega_qrs,
                a: A[i] * gain / k2,
                b: b[i] * k,
            });
        }
        let omega_t = TAU / beat.t_cycle;
        waves.push(Wave {
            c: beat.t + theta_t / omega_t,
            omega: omega_t,
            a: A[4] * t_gain,
            b: b[4],
        });
    }
    waves
}
