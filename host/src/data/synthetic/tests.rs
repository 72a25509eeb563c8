//! Properties of generated windows: determinism, label prevalences, rates, PVC and AF shapes,
//! amplitudes. Measurements are made on the signal or the beat times, never on the labels.

use std::sync::OnceLock;

use super::plan::{Plan, Rhythm, PVC_SPAN_S};
use super::*;

const N: u64 = 2000;

/// Windows 0..2000 of dataset seed 0, with their plans.
fn windows() -> &'static [(SyntheticWindow, Plan)] {
    static W: OnceLock<Vec<(SyntheticWindow, Plan)>> = OnceLock::new();
    W.get_or_init(|| (0..N).map(|i| synthesize(0, i, true)).collect())
}

fn is_sinus(labels: LabelSet) -> bool {
    !labels.contains(LabelSet::AF)
}

/// RR intervals (s) between consecutive R peaks when neither is a PVC.
fn normal_rr(w: &SyntheticWindow) -> Vec<f64> {
    w.r_peaks
        .windows(2)
        .filter(|p| !w.pvc_peaks.contains(&p[0]) && !w.pvc_peaks.contains(&p[1]))
        .map(|p| (p[1] - p[0]) as f64 / FS_HZ)
        .collect()
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

fn cv(x: &[f64]) -> f64 {
    let m = mean(x);
    (x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / x.len() as f64).sqrt() / m
}

/// The model's raw z (isoelectric line at exactly 0, no f-waves, no scaling) at 250 Hz.
fn raw_z(plan: &Plan) -> Vec<f64> {
    model::simulate(&plan.waves)
}

#[test]
fn same_seed_and_index_give_the_same_window() {
    for &(seed, index) in &[(0, 0), (0, 1999), (7, 123_456_789), (u64::MAX, u64::MAX)] {
        assert_eq!(generate_window(seed, index), generate_window(seed, index));
        assert_eq!(
            generate_clean_window(seed, index),
            generate_clean_window(seed, index)
        );
    }
    // Independent of what was generated before, or of the order.
    let forward: Vec<_> = (0..8).map(|i| generate_window(5, i)).collect();
    let backward: Vec<_> = (0..8).rev().map(|i| generate_window(5, i)).collect();
    assert!(forward.iter().eq(backward.iter().rev()));
}

#[test]
fn different_index_or_seed_gives_a_different_window() {
    let a = generate_window(0, 10);
    assert_ne!(a.samples_mv, generate_window(0, 11).samples_mv);
    assert_ne!(a.samples_mv, generate_window(1, 10).samples_mv);
    // Even seed and index swapped.
    assert_ne!(
        generate_window(2, 3).samples_mv,
        generate_window(3, 2).samples_mv
    );
}

#[test]
fn clean_window_has_the_same_beats_and_labels_as_the_noisy_one() {
    for i in 0..50 {
        let (noisy, clean) = (generate_window(9, i), generate_clean_window(9, i));
        assert_eq!(noisy.labels, clean.labels);
        assert_eq!(noisy.r_peaks, clean.r_peaks);
        assert_eq!(noisy.pvc_peaks, clean.pvc_peaks);
        assert_ne!(noisy.samples_mv, clean.samples_mv);
    }
}

#[test]
fn label_prevalences_match_the_table() {
    let count = |l: LabelSet| {
        windows()
            .iter()
            .filter(|(w, _)| w.labels.contains(l))
            .count()
    };
    let n = N as f64;
    // Tolerances are about 3.5 binomial standard deviations.
    for (label, p, tol) in [
        (LabelSet::NSR, 0.4, 0.04),
        (LabelSet::STACH, 0.2, 0.032),
        (LabelSet::SB, 0.2, 0.032),
        (LabelSet::AF, 0.2, 0.032),
        (LabelSet::PVC, 0.3, 0.036),
    ] {
        let f = count(label) as f64 / n;
        assert!((f - p).abs() < tol, "{label}: {f:.3}, want {p}");
    }
    let nsr_sb = count(LabelSet::NSR) + count(LabelSet::SB);
    let iavb = count(LabelSet::IAVB) as f64 / nsr_sb as f64;
    assert!((iavb - 0.3).abs() < 0.045, "IAVB {iavb:.3} of NSR+SB");
}

#[test]
fn every_window_has_one_rhythm_and_iavb_only_in_nsr_or_sb() {
    let mut combos = std::collections::BTreeSet::new();
    for (w, plan) in windows() {
        assert_eq!(
            w.labels.intersection(LabelSet::RHYTHMS).len(),
            1,
            "{}",
            w.labels
        );
        if w.labels.contains(LabelSet::IAVB) {
            assert!(w.labels.contains(LabelSet::NSR) || w.labels.contains(LabelSet::SB));
        }
        assert_eq!(w.labels.contains(LabelSet::PVC), !w.pvc_peaks.is_empty());
        assert_eq!(
            w.labels.contains(LabelSet::AF),
            plan.rhythm == Rhythm::Af && plan.pr_s.is_none()
        );
        combos.insert(w.labels);
    }
    // 4 sinus-or-AF rhythms × PVC, with IAVB for NSR and SB: 12 label sets, all present.
    assert_eq!(combos.len(), 12, "{combos:?}");
}

#[test]
fn measured_heart_rate_is_in_the_labels_range() {
    let mut unmeasured = 0;
    for (i, (w, _)) in windows().iter().enumerate() {
        let rr = normal_rr(w);
        if rr.is_empty() {
            // Slow bigeminy can leave no two normal beats in a row.
            assert!(
                w.pvc_peaks.len() >= 2,
                "window {i}: no interval between normal beats"
            );
            unmeasured += 1;
            continue;
        }
        let hr = 60.0 / mean(&rr);
        let (range, slack) = if w.labels.contains(LabelSet::NSR) {
            ((62.0, 98.0), 4.0)
        } else if w.labels.contains(LabelSet::STACH) {
            ((103.0, 150.0), 6.0)
        } else if w.labels.contains(LabelSet::SB) {
            ((40.0, 57.0), 3.0)
        } else {
            ((60.0, 150.0), 20.0)
        };
        assert!(
            (range.0..=range.1).contains(&w.mean_hr_bpm),
            "window {i} {}: parameter {}",
            w.labels,
            w.mean_hr_bpm
        );
        // A mean of few AF intervals is itself random: check it when there are enough.
        assert!(
            (!is_sinus(w.labels) && rr.len() < 5) || (hr > range.0 - slack && hr < range.1 + slack),
            "window {i} {}: measured {hr:.1} bpm, parameter {:.1}",
            w.labels,
            w.mean_hr_bpm
        );
        if is_sinus(w.labels) {
            // HR std is at most 3 bpm; the mean of several beats is closer still.
            let tol = if rr.len() >= 4 { 4.0 } else { 9.0 };
            assert!(
                (hr - w.mean_hr_bpm).abs() < tol,
                "window {i}: {hr} vs {}",
                w.mean_hr_bpm
            );
        }
    }
    assert!(
        unmeasured < 20,
        "{unmeasured} windows without two normal beats in a row"
    );
}

#[test]
fn r_peaks_sit_on_the_r_waves() {
    for (i, (w, plan)) in windows().iter().take(300).enumerate() {
        let z = raw_z(plan);
        for &r in &w.r_peaks {
            if w.pvc_peaks.contains(&r) {
                continue;
            }
            let (lo, hi) = (r.saturating_sub(10), (r + 10).min(WINDOW_SAMPLES - 1));
            let top = (lo..=hi).fold(lo, |m, j| if z[j] > z[m] { j } else { m });
            assert!(top.abs_diff(r) <= 1, "window {i}: R at {top}, r_peak {r}");
        }
    }
}

#[test]
fn pvcs_number_1_to_3_and_stay_away_from_the_edges() {
    let edge = (0.2 * FS_HZ) as usize;
    let mut counts = [0usize; 4];
    for (i, (w, plan)) in windows().iter().enumerate() {
        if !w.labels.contains(LabelSet::PVC) {
            assert!(w.pvc_peaks.is_empty());
            continue;
        }
        let n = w.pvc_peaks.len();
        assert!((1..=3).contains(&n), "window {i}: {n} PVCs");
        counts[n] += 1;
        for &p in &w.pvc_peaks {
            assert!(
                p >= edge && p <= WINDOW_SAMPLES - edge,
                "window {i}: PVC at {p}"
            );
            assert!(w.r_peaks.contains(&p));
        }
        // Every PVC of the plan is inside the window: none is lost at the edges.
        let planned = plan.beats.iter().filter(|b| b.pvc.is_some()).count();
        assert_eq!(planned, n, "window {i}");
        assert!(plan
            .beats
            .iter()
            .filter(|b| b.pvc.is_some())
            .all(|b| (PVC_SPAN_S.0..=PVC_SPAN_S.1).contains(&b.t)));
    }
    assert!(counts[1..].iter().all(|&c| c > 50), "PVC counts {counts:?}");
}

#[test]
fn pvcs_are_premature_with_a_full_compensatory_pause_in_sinus_rhythm() {
    for (i, (w, plan)) in windows().iter().enumerate() {
        let b = &plan.beats;
        for m in 1..b.len() - 1 {
            if b[m].pvc.is_none() || b[m - 1].pvc.is_some() {
                continue;
            }
            let coupling = b[m].t - b[m - 1].t;
            let pause = b[m + 1].t - b[m].t;
            if is_sinus(w.labels) {
                assert!(
                    pause > coupling,
                    "window {i}: coupling {coupling}, pause {pause}"
                );
                // The sinus cycle before the PVC (or the one in the plan when it follows one).
                let rr = b[m - 1].t_cycle;
                assert!((0.55..=0.75).contains(&(coupling / rr)), "window {i}");
                // The sinus node is not reset: the next conducted beat comes two sinus cycles after
                // the one before the PVC (the second cycle is the one that holds its P wave).
                let Some(next_cycle) = b[m + 1].p_cycle else {
                    panic!("window {i}: no P wave after a sinus PVC");
                };
                let total = coupling + pause;
                assert!(
                    (total - rr - next_cycle).abs() < 1e-9,
                    "window {i}: {total} vs {rr}"
                );
                assert!(
                    (total / (2.0 * rr) - 1.0).abs() < 0.25,
                    "window {i}: {total} vs {rr}"
                );
            }
        }
    }
}

/// Full width (s) at half amplitude of the deflection at `r` in `z` (baseline 0).
fn width_at_half(z: &[f64], r: usize) -> f64 {
    let (lo, hi) = (r.saturating_sub(12), (r + 12).min(z.len() - 1));
    let peak = (lo..=hi).fold(lo, |m, j| if z[j].abs() > z[m].abs() { j } else { m });
    let half = 0.5 * z[peak];
    let inside = |j: usize| (z[j] - half) * half.signum() > 0.0;
    let (mut a, mut b) = (peak, peak);
    while a > 0 && inside(a - 1) {
        a -= 1;
    }
    while b + 1 < z.len() && inside(b + 1) {
        b += 1;
    }
    (b - a + 1) as f64 / FS_HZ
}

#[test]
fn a_pvc_qrs_is_wider_than_a_normal_qrs_and_its_t_wave_is_opposite() {
    let mut n = 0;
    for (i, (w, plan)) in windows().iter().enumerate() {
        if w.pvc_peaks.is_empty() {
            continue;
        }
        let z = raw_z(plan);
        let normal: Vec<f64> = w
            .r_peaks
            .iter()
            .filter(|r| !w.pvc_peaks.contains(r))
            .map(|&r| width_at_half(&z, r))
            .collect();
        // Widths are counted in 4 ms samples: a normal QRS is 5-10 samples wide at half amplitude.
        let normal = mean(&normal);
        for &p in &w.pvc_peaks {
            let pvc = width_at_half(&z, p);
            assert!(
                pvc > 1.8 * normal,
                "window {i}: PVC {pvc} s, normal {normal} s"
            );
            n += 1;
        }
        if is_sinus(w.labels) {
            for beat in plan.beats.iter().filter(|b| b.pvc.is_some()) {
                let Some(r) = sample_index(beat.t) else {
                    continue;
                };
                let Some(t) = sample_index(beat.t + 0.25 * beat.t_cycle) else {
                    continue;
                };
                let qrs = z[r.saturating_sub(3)..=r + 3].iter().fold(0.0f64, |m, &v| {
                    if v.abs() > m.abs() {
                        v
                    } else {
                        m
                    }
                });
                assert!(qrs * z[t] < 0.0, "window {i}: QRS {qrs}, T {}", z[t]);
            }
        }
    }
    assert!(n > 300, "{n} PVCs");
}

#[test]
fn pr_interval_measured_on_the_signal_matches_the_label() {
    let mut checked = 0;
    for (i, (w, plan)) in windows().iter().enumerate() {
        if !(w.labels.contains(LabelSet::NSR) || w.labels.contains(LabelSet::SB)) {
            continue;
        }
        let Some(pr) = plan.pr_s else {
            panic!("window {i}: sinus without PR");
        };
        assert_eq!(
            w.labels.contains(LabelSet::IAVB),
            pr > 0.2,
            "window {i}: PR {pr}"
        );
        let z = raw_z(plan);
        let lead = |s: f64| (s * FS_HZ) as usize;
        let measured: Vec<f64> = plan
            .beats
            .windows(2)
            .filter(|b| b[0].pvc.is_none() && b[1].pvc.is_none())
            .filter_map(|b| sample_index(b[1].t))
            .filter(|&r| r >= lead(0.36))
            .map(|r| {
                let (lo, hi) = (r - lead(0.36), r - lead(0.08));
                let p = (lo..=hi).fold(lo, |m, j| if z[j] > z[m] { j } else { m });
                (r - p) as f64 / FS_HZ
            })
            .collect();
        if measured.is_empty() {
            continue;
        }
        let m = mean(&measured);
        assert!(
            (m - pr).abs() < 0.010,
            "window {i} {}: measured PR {m}, PR {pr}",
            w.labels
        );
        checked += 1;
    }
    assert!(checked > 1000);
}

#[test]
fn af_rr_is_more_irregular_than_sinus_rr() {
    let (mut af, mut sinus) = (Vec::new(), Vec::new());
    for (w, _) in windows() {
        let rr = normal_rr(w);
        if rr.len() < 4 {
            continue;
        }
        if is_sinus(w.labels) {
            sinus.push(cv(&rr));
        } else {
            af.push(cv(&rr));
        }
    }
    sinus.sort_by(f64::total_cmp);
    af.sort_by(f64::total_cmp);
    let q = |x: &[f64], p: f64| x[((x.len() - 1) as f64 * p) as usize];
    // Sinus: HR std 1-3 bpm, CV about 1-7%; AF: CV 0.15-0.30 (less after clipping and on few
    // intervals).
    assert!(q(&sinus, 0.5) < 0.04, "sinus CV median {}", q(&sinus, 0.5));
    assert!(q(&af, 0.5) > 0.15, "AF CV median {}", q(&af, 0.5));
    assert!(
        q(&af, 0.05) > q(&sinus, 0.95),
        "AF CV 5th percentile {} vs sinus 95th {}",
        q(&af, 0.05),
        q(&sinus, 0.95)
    );
    assert!(
        af[0] > q(&sinus, 0.5),
        "an AF window as regular as a median sinus one"
    );
}

#[test]
fn amplitudes_are_plausible_and_finite() {
    for i in 0..300 {
        let clean = generate_clean_window(0, i);
        let (lo, hi) = clean
            .samples_mv
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        if clean.labels.contains(LabelSet::AF) {
            // ECGSYN's −0.4..1.2 mV plus f-waves of at most 0.1 mV.
            assert!(
                (-0.5..=-0.3).contains(&lo) && (1.1..=1.3).contains(&hi),
                "{lo} {hi}"
            );
        } else {
            assert!(
                (lo + 0.4).abs() < 1e-5 && (hi - 1.2).abs() < 1e-5,
                "{lo} {hi}"
            );
        }
    }
    for (i, (w, _)) in windows().iter().enumerate() {
        assert_eq!(w.samples_mv.len(), WINDOW_SAMPLES);
        assert!(w.samples_mv.iter().all(|v| v.is_finite()), "window {i}");
        let (lo, hi) = w
            .samples_mv
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        // Gain 0.6..1.4 on 1.6 mV peak to peak, plus wander, mains and EMG.
        assert!(hi - lo > 0.8 && hi - lo < 3.2, "window {i}: {lo}..{hi}");
        assert!(lo > -1.3 && hi < 2.5, "window {i}: {lo}..{hi}");
    }
}

#[test]
fn noise_is_present_but_leaves_the_ecg_visible() {
    for i in 0..200 {
        let (noisy, clean) = (generate_window(1, i), generate_clean_window(1, i));
        let x: Vec<f64> = noisy.samples_mv.iter().map(|&v| f64::from(v)).collect();
        let y: Vec<f64> = clean.samples_mv.iter().map(|&v| f64::from(v)).collect();
        let (mx, my) = (mean(&x), mean(&y));
        let sxy: f64 = x.iter().zip(&y).map(|(a, b)| (a - mx) * (b - my)).sum();
        let sxx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
        let syy: f64 = y.iter().map(|b| (b - my).powi(2)).sum();
        let corr = sxy / (sxx * syy).sqrt();
        assert!(
            corr > 0.6 && corr < 0.9999,
            "window {i}: correlation {corr}"
        );
        // noisy = gain·(clean + noise): the least-squares fit recovers a gain in 0.6..1.4 (give
        // or take the wander's share) and leaves at least the EMG (σ ≥ 0.005 mV × gain).
        let g = sxy / syy;
        assert!((0.5..1.5).contains(&g), "window {i}: gain {g}");
        let resid = x
            .iter()
            .zip(&y)
            .map(|(a, b)| (a - mx - g * (b - my)).powi(2))
            .sum::<f64>()
            / x.len() as f64;
        assert!(
            resid.sqrt() > 0.0025,
            "window {i}: residual {}",
            resid.sqrt()
        );
    }
}

#[test]
fn print_label_counts_of_seed_0() {
    let mut counts = std::collections::BTreeMap::new();
    for (w, _) in windows() {
        *counts.entry(w.labels.to_string()).or_insert(0) += 1;
    }
    for (i, name) in LABELS.iter().enumerate() {
        let c = windows()
            .iter()
            .filter(|(w, _)| w.labels.has_index(i))
            .count();
        println!("{name}: {c}");
    }
    println!("{counts:?}");
}

#[test]
fn label_set_helpers() {
    let s = LabelSet::NSR.union(LabelSet::PVC);
    assert_eq!(s.to_string(), "NSR+PVC");
    assert_eq!(s.names().collect::<Vec<_>>(), ["NSR", "PVC"]);
    assert_eq!(LabelSet::from_name("IAVB"), Some(LabelSet::IAVB));
    assert_eq!(LabelSet::from_name("LBBB"), None);
    assert_eq!(LabelSet::from_index(6), None);
    assert!(s.has_index(4) && !s.has_index(5) && !s.has_index(60));
    assert_eq!(LabelSet::EMPTY.to_string(), "-");
    for (i, name) in LABELS.iter().enumerate() {
        assert_eq!(LabelSet::from_index(i), LabelSet::from_name(name));
    }
}
