//! Each task's metrics on a set of outputs, and its primary quality (what the search rewards).

use serde::{Deserialize, Serialize};

use super::{
    argmax, auroc, best_threshold, challenge_f1_2017, confusion_matrix, macro_mean,
    multi_label_counts, single_label_counts,
};
use crate::data::tasks::TaskKind;

/// The labels of the examples scored.
#[derive(Debug, Clone, Copy)]
pub enum Truth<'a> {
    /// One class per example.
    Classes(&'a [u32]),
    /// One flag per class per example.
    Labels(&'a [Vec<bool>]),
}

/// One class's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    /// Sensitivity.
    pub se: Option<f64>,
    /// Positive predictivity.
    pub ppv: Option<f64>,
    /// F1.
    pub f1: Option<f64>,
    /// False-positive rate.
    pub fpr: Option<f64>,
    /// AUROC (one-vs-rest for single-label tasks).
    pub auroc: Option<f64>,
    /// Examples of the class.
    pub support: u64,
}

/// A task's metrics on one set of outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskMetrics {
    /// The task's primary metric: macro AUROC (synthetic, mitdb-rhythm, cinc2021), macro F1
    /// (mitdb-aami), Challenge F1 (cinc2017). 0 when undefined.
    pub primary: f64,
    /// The primary metric's name.
    pub primary_name: String,
    /// Accuracy (exact label-set match for multi-label tasks).
    pub accuracy: f64,
    /// Macro F1 over classes with a defined F1.
    pub macro_f1: Option<f64>,
    /// Macro AUROC over classes with a defined AUROC.
    pub macro_auroc: Option<f64>,
    /// Per-class figures, in label order.
    pub per_class: Vec<ClassMetrics>,
    /// Decision thresholds per class (multi-label tasks), chosen on these outputs unless given.
    pub thresholds: Option<Vec<f32>>,
}

/// Scores `probabilities` (one row per example) against `truth`. Multi-label decisions use
/// `thresholds` when given (the model's, chosen on validation), else ones chosen here.
pub fn task_metrics(
    task: TaskKind,
    probabilities: &[Vec<f32>],
    truth: Truth<'_>,
    thresholds: Option<&[f32]>,
) -> TaskMetrics {
    let k = probabilities.first().map_or(0, Vec::len);
    let column = |c: usize| -> Vec<f32> { probabilities.iter().map(|p| p[c]).collect() };
    match truth {
        Truth::Classes(classes) => {
            let truth: Vec<usize> = classes.iter().map(|&c| c as usize).collect();
            let predicted: Vec<usize> = probabilities.iter().map(|p| argmax(p)).collect();
            let counts = single_label_counts(&truth, &predicted, k);
            let per_class: Vec<ClassMetrics> = (0..k)
                .map(|c| {
                    let positives: Vec<bool> = truth.iter().map(|&t| t == c).collect();
                    ClassMetrics {
                        se: counts[c].se(),
                        ppv: counts[c].ppv(),
                        f1: counts[c].f1(),
                        fpr: counts[c].fpr(),
                        auroc: auroc(&column(c), &positives),
                        support: counts[c].support(),
                    }
                })
                .collect();
            let correct = truth.iter().zip(&predicted).filter(|(t, p)| t == p).count();
            let macro_f1 = macro_mean(&per_class.iter().map(|c| c.f1).collect::<Vec<_>>());
            let macro_auroc = macro_mean(&per_class.iter().map(|c| c.auroc).collect::<Vec<_>>());
            let (primary, name) = match task {
                TaskKind::Cinc2017 => (
                    challenge_f1_2017(&confusion_matrix(&truth, &predicted, k)),
                    "challenge_f1",
                ),
                _ => (macro_f1, "macro_f1"),
            };
            TaskMetrics {
                primary: primary.unwrap_or(0.0),
                primary_name: name.to_string(),
                accuracy: correct as f64 / truth.len().max(1) as f64,
                macro_f1,
                macro_auroc,
                per_class,
                thresholds: None,
            }
        }
        Truth::Labels(flags) => {
            let thresholds: Vec<f32> = match thresholds {
                Some(t) => t.to_vec(),
                None => (0..k)
                    .map(|c| {
                        best_threshold(&column(c), &flags.iter().map(|f| f[c]).collect::<Vec<_>>())
                    })
                    .collect(),
            };
            let decisions: Vec<Vec<bool>> = probabilities
                .iter()
                .map(|p| p.iter().zip(&thresholds).map(|(v, t)| v >= t).collect())
                .collect();
            let counts = multi_label_counts(flags, &decisions);
            let per_class: Vec<ClassMetrics> = (0..k)
                .map(|c| ClassMetrics {
                    se: counts[c].se(),
                    ppv: counts[c].ppv(),
                    f1: counts[c].f1(),
                    fpr: counts[c].fpr(),
                    auroc: auroc(&column(c), &flags.iter().map(|f| f[c]).collect::<Vec<_>>()),
                    support: counts[c].support(),
                })
                .collect();
            let exact = flags.iter().zip(&decisions).filter(|(t, d)| t == d).count();
            let macro_f1 = macro_mean(&per_class.iter().map(|c| c.f1).collect::<Vec<_>>());
            let macro_auroc = macro_mean(&per_class.iter().map(|c| c.auroc).collect::<Vec<_>>());
            TaskMetrics {
                primary: macro_auroc.unwrap_or(0.0),
                primary_name: "macro_auroc".to_string(),
                accuracy: exact as f64 / flags.len().max(1) as f64,
                macro_f1,
                macro_auroc,
                per_class,
                thresholds: Some(thresholds),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_label_primary_metrics() {
        let probs = vec![
            vec![0.9, 0.1, 0.0, 0.0],
            vec![0.2, 0.7, 0.1, 0.0],
            vec![0.1, 0.1, 0.8, 0.0],
            vec![0.6, 0.3, 0.1, 0.0],
        ];
        let classes = [0u32, 1, 2, 1];
        let m = task_metrics(TaskKind::Cinc2017, &probs, Truth::Classes(&classes), None);
        assert_eq!(m.primary_name, "challenge_f1");
        assert!((m.accuracy - 0.75).abs() < 1e-12);
        // F1: N 2/3, A 2/3, O 1 -> Challenge F1 = 7/9.
        assert!((m.primary - 7.0 / 9.0).abs() < 1e-12, "{}", m.primary);
        let m = task_metrics(TaskKind::MitdbAami, &probs, Truth::Classes(&classes), None);
        assert_eq!(m.primary_name, "macro_f1");
    }

    #[test]
    fn multi_label_uses_thresholds() {
        let probs = vec![vec![0.9, 0.2], vec![0.4, 0.8], vec![0.1, 0.3]];
        let flags = vec![vec![true, false], vec![true, true], vec![false, false]];
        let m = task_metrics(TaskKind::Synthetic, &probs, Truth::Labels(&flags), None);
        assert_eq!(m.primary, 1.0);
        assert_eq!(m.accuracy, 1.0);
        let fixed = task_metrics(
            TaskKind::Synthetic,
            &probs,
            Truth::Labels(&flags),
            Some(&[0.95, 0.95]),
        );
        assert_eq!(fixed.accuracy, 1.0 / 3.0);
    }

    #[test]
    fn a_class_without_examples_is_undefined_not_zero() {
        // AAMI N, S, V, F; no F beat, and F never predicted. Counted by hand from the rows.
        let probs = vec![
            vec![0.7, 0.1, 0.1, 0.1], // N -> N
            vec![0.6, 0.2, 0.1, 0.1], // N -> N
            vec![0.2, 0.6, 0.1, 0.1], // N -> S
            vec![0.1, 0.8, 0.1, 0.0], // S -> S
            vec![0.1, 0.2, 0.7, 0.0], // V -> V
            vec![0.1, 0.5, 0.4, 0.0], // V -> S
        ];
        let classes = [0u32, 0, 0, 1, 2, 2];
        let m = task_metrics(TaskKind::MitdbAami, &probs, Truth::Classes(&classes), None);
        let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 1e-12);
        // N: TP 2, FN 1, FP 0.
        assert!(close(m.per_class[0].se, 2.0 / 3.0) && close(m.per_class[0].ppv, 1.0));
        assert!(close(m.per_class[0].f1, 0.8));
        // S: TP 1, FN 0, FP 2.
        assert!(close(m.per_class[1].se, 1.0) && close(m.per_class[1].ppv, 1.0 / 3.0));
        assert!(close(m.per_class[1].f1, 0.5));
        // V: TP 1, FN 1, FP 0.
        assert!(close(m.per_class[2].f1, 2.0 / 3.0));
        // F: no example and no prediction: every rate is 0/0, and it stays out of the means.
        let f = &m.per_class[3];
        assert_eq!(
            (f.support, f.se, f.ppv, f.f1, f.auroc),
            (0, None, None, None, None)
        );
        assert!(close(f.fpr, 0.0));
        assert!(close(m.macro_f1, (0.8 + 0.5 + 2.0 / 3.0) / 3.0));
        assert!(close(Some(m.primary), (0.8 + 0.5 + 2.0 / 3.0) / 3.0));
        assert!(close(Some(m.accuracy), 4.0 / 6.0));
    }

    #[test]
    fn multi_label_edge_cases() {
        // Label 0 always present, label 1 never, label 2 on one example; the third example has
        // no label at all. Thresholds given: 0.5 each.
        let probs = vec![
            vec![0.9, 0.6, 0.8], // predicted {0, 1, 2}
            vec![0.7, 0.1, 0.2], // predicted {0}
            vec![0.4, 0.2, 0.1], // predicted {}
        ];
        let flags = vec![
            vec![true, false, true],
            vec![true, false, false],
            vec![true, false, false],
        ];
        let m = task_metrics(
            TaskKind::MitdbRhythm,
            &probs,
            Truth::Labels(&flags),
            Some(&[0.5, 0.5, 0.5]),
        );
        let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 1e-12);
        // Label 0: TP 2, FN 1; no negative, so no AUROC and no false-positive rate.
        assert!(close(m.per_class[0].se, 2.0 / 3.0) && close(m.per_class[0].f1, 0.8));
        assert_eq!((m.per_class[0].auroc, m.per_class[0].fpr), (None, None));
        // Label 1: no positive; one false positive: F1 0 (2*0 / 1), Se undefined, AUROC undefined.
        assert_eq!(m.per_class[1].support, 0);
        assert_eq!((m.per_class[1].se, m.per_class[1].auroc), (None, None));
        assert!(close(m.per_class[1].f1, 0.0) && close(m.per_class[1].fpr, 1.0 / 3.0));
        // Label 2: TP 1 and two true negatives scored lower: F1 1, AUROC 1.
        assert!(close(m.per_class[2].f1, 1.0) && close(m.per_class[2].auroc, 1.0));
        // Macro AUROC over the one label where it is defined; macro F1 over all three.
        assert!(close(m.macro_auroc, 1.0) && close(Some(m.primary), 1.0));
        assert!(close(m.macro_f1, (0.8 + 0.0 + 1.0) / 3.0));
        // Exact-match accuracy: only the second example's set is right.
        assert!(close(Some(m.accuracy), 1.0 / 3.0));
        assert_eq!(m.thresholds.as_deref(), Some(&[0.5f32, 0.5, 0.5][..]));
    }
}
