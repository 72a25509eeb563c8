//! Classification metrics as ecgnas's benchmark definitions fix them (section 0 of the
//! benchmark notes): per-class one-vs-rest counts, Se, +P, F1, FPR, AUROC over distinct
//! scores, per-class decision thresholds, macro means that skip undefined values, and the
//! CinC 2017 Challenge F1.
//!
//! Used by training (validation quality, the search's reward) and by evaluation; no tensors.

pub mod task;

pub use task::{task_metrics, ClassMetrics, TaskMetrics, Truth};

/// One-vs-rest counts of one class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BinaryCounts {
    /// True positives.
    pub tp: u64,
    /// False positives.
    pub fp: u64,
    /// False negatives.
    pub fn_: u64,
    /// True negatives.
    pub tn: u64,
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

impl BinaryCounts {
    /// Adds one example.
    pub fn add(&mut self, truth: bool, predicted: bool) {
        match (truth, predicted) {
            (true, true) => self.tp += 1,
            (false, true) => self.fp += 1,
            (true, false) => self.fn_ += 1,
            (false, false) => self.tn += 1,
        }
    }
    /// Sensitivity TP / (TP + FN); `None` for 0/0.
    pub fn se(&self) -> Option<f64> {
        ratio(self.tp, self.tp + self.fn_)
    }
    /// Positive predictivity TP / (TP + FP).
    pub fn ppv(&self) -> Option<f64> {
        ratio(self.tp, self.tp + self.fp)
    }
    /// F1 = 2TP / (2TP + FP + FN).
    pub fn f1(&self) -> Option<f64> {
        ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn_)
    }
    /// False-positive rate FP / (FP + TN).
    pub fn fpr(&self) -> Option<f64> {
        ratio(self.fp, self.fp + self.tn)
    }
    /// Examples of the class.
    pub fn support(&self) -> u64 {
        self.tp + self.fn_
    }
}

/// The single-label decision: the most probable class, the lowest index among ties.
pub fn argmax(probabilities: &[f32]) -> usize {
    (0..probabilities.len())
        .max_by(|&a, &b| {
            probabilities[a]
                .total_cmp(&probabilities[b])
                .then(b.cmp(&a))
        })
        .unwrap_or(0)
}

/// Per-class counts of single-label predictions (argmax decisions).
pub fn single_label_counts(
    truth: &[usize],
    predicted: &[usize],
    n_classes: usize,
) -> Vec<BinaryCounts> {
    let mut counts = vec![BinaryCounts::default(); n_classes];
    for (&t, &p) in truth.iter().zip(predicted) {
        for (c, count) in counts.iter_mut().enumerate() {
            count.add(t == c, p == c);
        }
    }
    counts
}

/// Per-class counts of multi-label decisions.
pub fn multi_label_counts(truth: &[Vec<bool>], predicted: &[Vec<bool>]) -> Vec<BinaryCounts> {
    let n_classes = truth.first().map_or(0, Vec::len);
    let mut counts = vec![BinaryCounts::default(); n_classes];
    for (t, p) in truth.iter().zip(predicted) {
        for (c, count) in counts.iter_mut().enumerate() {
            count.add(t[c], p[c]);
        }
    }
    counts
}

/// The confusion matrix of single-label decisions: rows true, columns predicted.
pub fn confusion_matrix(truth: &[usize], predicted: &[usize], n_classes: usize) -> Vec<Vec<u64>> {
    let mut m = vec![vec![0u64; n_classes]; n_classes];
    for (&t, &p) in truth.iter().zip(predicted) {
        if t < n_classes && p < n_classes {
            m[t][p] += 1;
        }
    }
    m
}

/// Area under the ROC curve, trapezoidal over the distinct score values (the Challenge 2021
/// scoring code's `compute_auc`); `None` without a positive or without a negative example.
pub fn auroc(scores: &[f32], positives: &[bool]) -> Option<f64> {
    let n_pos = positives.iter().filter(|p| **p).count() as f64;
    let n_neg = positives.len() as f64 - n_pos;
    if n_pos == 0.0 || n_neg == 0.0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut fp) = (0f64, 0f64);
    let mut area = 0.0;
    let mut i = 0;
    while i < order.len() {
        // Every example sharing this score moves the curve at once (one threshold).
        let score = scores[order[i]];
        let (tp0, fp0) = (tp, fp);
        while i < order.len() && scores[order[i]] == score {
            if positives[order[i]] {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
            i += 1;
        }
        // Trapezoid in (FPR, TPR).
        area += (fp - fp0) / n_neg * (tp + tp0) / (2.0 * n_pos);
    }
    Some(area)
}

/// The thresholds a multi-label class may use: 0.05, 0.10, ..., 0.95.
pub fn threshold_grid() -> impl Iterator<Item = f32> {
    (1..=19).map(|i| i as f32 * 0.05)
}

/// The decision threshold of one class chosen on validation outputs: the grid value that
/// maximises the class's F1 (ties: the lowest), 0.5 when there is no positive example.
pub fn best_threshold(probabilities: &[f32], positives: &[bool]) -> f32 {
    if !positives.iter().any(|p| *p) {
        return 0.5;
    }
    let mut best = (f64::NEG_INFINITY, 0.5);
    for threshold in threshold_grid() {
        let mut counts = BinaryCounts::default();
        for (&p, &t) in probabilities.iter().zip(positives) {
            counts.add(t, p >= threshold);
        }
        let f1 = counts.f1().unwrap_or(0.0);
        if f1 > best.0 {
            best = (f1, threshold);
        }
    }
    best.1
}

/// Unweighted mean of the defined values; `None` when none is defined.
pub fn macro_mean(values: &[Option<f64>]) -> Option<f64> {
    let defined: Vec<f64> = values.iter().flatten().copied().collect();
    (!defined.is_empty()).then(|| defined.iter().sum::<f64>() / defined.len() as f64)
}

/// The CinC 2017 Challenge F1: the mean of the F1 of N, A and O (classes 0, 1, 2) computed as
/// `2 AA(x,x) / (row sum + column sum)` of the confusion matrix; the noisy class is left out.
pub fn challenge_f1_2017(confusion: &[Vec<u64>]) -> Option<f64> {
    let f1 = |x: usize| -> Option<f64> {
        let row: u64 = confusion.get(x)?.iter().sum();
        let col: u64 = confusion
            .iter()
            .map(|r| r.get(x).copied().unwrap_or(0))
            .sum();
        ratio(2 * confusion[x][x], row + col)
    };
    Some((f1(0)? + f1(1)? + f1(2)?) / 3.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auroc_of_perfect_reversed_and_tied_scores() {
        let pos = [true, true, false, false];
        assert_eq!(auroc(&[0.9, 0.8, 0.2, 0.1], &pos), Some(1.0));
        assert_eq!(auroc(&[0.1, 0.2, 0.8, 0.9], &pos), Some(0.0));
        // All tied: the diagonal.
        assert_eq!(auroc(&[0.5; 4], &pos), Some(0.5));
        assert_eq!(auroc(&[0.5, 0.4], &[true, true]), None);
    }

    #[test]
    fn auroc_equals_the_pairwise_probability() {
        // AUROC = P(score of a positive > score of a negative) + P(tie)/2.
        let scores = [0.3f32, 0.7, 0.7, 0.2, 0.9, 0.1, 0.5, 0.7];
        let pos = [true, false, true, false, true, false, false, true];
        let mut wins = 0.0;
        let mut pairs = 0.0;
        for i in 0..scores.len() {
            for j in 0..scores.len() {
                if pos[i] && !pos[j] {
                    pairs += 1.0;
                    wins += if scores[i] > scores[j] {
                        1.0
                    } else if scores[i] == scores[j] {
                        0.5
                    } else {
                        0.0
                    };
                }
            }
        }
        let got = auroc(&scores, &pos).unwrap();
        assert!(
            (got - wins / pairs).abs() < 1e-12,
            "{got} vs {}",
            wins / pairs
        );
    }

    #[test]
    fn counts_and_rates() {
        let c = single_label_counts(&[0, 0, 1, 1, 2], &[0, 1, 1, 1, 0], 3);
        assert_eq!(
            c[1],
            BinaryCounts {
                tp: 2,
                fp: 1,
                fn_: 0,
                tn: 2
            }
        );
        assert_eq!(c[1].se(), Some(1.0));
        assert!((c[1].ppv().unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(c[2].f1(), Some(0.0));
        assert_eq!(BinaryCounts::default().se(), None);
        assert_eq!(macro_mean(&[Some(1.0), None, Some(0.0)]), Some(0.5));
    }

    #[test]
    fn thresholds_maximise_f1_with_lowest_ties() {
        let probs = [0.9, 0.8, 0.3, 0.2];
        let pos = [true, true, false, false];
        // Every threshold in (0.3, 0.8] separates perfectly; the lowest grid value is 0.35.
        assert!((best_threshold(&probs, &pos) - 0.35).abs() < 1e-6);
        assert_eq!(best_threshold(&probs, &[false; 4]), 0.5);
    }

    #[test]
    fn challenge_2017_f1_leaves_out_noise() {
        // Rows = reference N, A, O, ~; columns = answers.
        let m = vec![
            vec![10, 0, 0, 5],
            vec![0, 5, 0, 0],
            vec![0, 0, 4, 0],
            vec![1, 1, 1, 1],
        ];
        let f1n = 20.0 / (15.0 + 11.0);
        let f1a = 10.0 / (5.0 + 6.0);
        let f1o = 8.0 / (4.0 + 5.0);
        let got = challenge_f1_2017(&m).unwrap();
        assert!((got - (f1n + f1a + f1o) / 3.0).abs() < 1e-12);
    }
}
