//! A model's answer for every example of some records: where each example lies in its record,
//! its true labels, the model's decision and how wrong it is. `evaluate` scores these; the
//! strips of `data plot --model` and `evaluate --plots` draw them.

use anyhow::Context;

use super::model::Precision;
use crate::data::tasks::Split;
use crate::export::LoadedModel;
use crate::pipeline::{AdcDataset, RawExamples};
use crate::space::Window;
use crate::train::Targets;

/// Where an example lies in its record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Place {
    /// A beat: its fiducial point, seconds from the record's start.
    Beat(f64),
    /// A window or a whole recording: its first and last second.
    Span(f64, f64),
}

/// One example (a beat, a window, or a recording answered by its windows).
#[derive(Debug, Clone)]
pub(super) struct Answer {
    /// The record's name.
    pub record: String,
    /// Where it lies.
    pub place: Place,
    /// The true labels (one class, or the labels that are on).
    pub truth: Vec<String>,
    /// The model's decision.
    pub predicted: Vec<String>,
    /// The probabilities, in the model's label order.
    pub probabilities: Vec<f32>,
}

impl Answer {
    /// Whether the decision is the truth, label for label.
    pub fn correct(&self) -> bool {
        let mut a = self.truth.clone();
        let mut b = self.predicted.clone();
        a.sort();
        b.sort();
        a == b
    }
}

/// The examples of a model's task cut from every record of `adc` (whatever split the task puts
/// them in), and the model's probabilities for each example: the mean over its windows.
pub(super) struct Answered {
    /// The raw windows, their groups and the groups' targets.
    pub raw: RawExamples,
    /// One row of probabilities per group (example).
    pub probabilities: Vec<Vec<f32>>,
    /// Each group's record and first window start (ADC samples).
    pub group_origin: Vec<(String, isize)>,
    /// Each group's last window start (ADC samples).
    pub group_last_start: Vec<isize>,
}

/// Runs `model` on every example of `adc`'s records.
pub(super) fn answer_all(
    model: &LoadedModel,
    adc: &mut AdcDataset,
    precision: Precision,
) -> anyhow::Result<Answered> {
    for r in &mut adc.records {
        r.split = Split::Test;
    }
    let raw = adc
        .raw_examples(Split::Test, &model.manifest.candidate.preprocessing)
        .context("cutting the examples")?;
    if raw.n > 0 && raw.leads != model.manifest.input.leads {
        anyhow::bail!(
            "the data has {} leads, the model takes {}",
            raw.leads,
            model.manifest.input.leads
        );
    }
    let windows: Vec<&[f32]> = (0..raw.n).map(|i| raw.window(i)).collect();
    let sides: Vec<&[f32]> = (0..raw.n).map(|i| raw.side_of(i)).collect();
    let window_probs: Vec<Vec<f32>> = match precision {
        Precision::F32 => model.predict_f32(&windows, &sides)?,
        Precision::Int8 => windows
            .iter()
            .zip(&sides)
            .map(|(w, s)| model.predict_int8(w, s))
            .collect::<anyhow::Result<_>>()?,
    };
    let probabilities = raw.group_probabilities(&window_probs);
    let n_groups = raw.group_targets.len();
    let mut group_origin = vec![(String::new(), 0isize); n_groups];
    let mut group_last_start = vec![0isize; n_groups];
    // Windows are in group order: the first of a group is its origin, the last its end.
    for (i, &g) in raw.groups.iter().enumerate().rev() {
        group_origin[g] = raw.origins[i].clone();
    }
    for (i, &g) in raw.groups.iter().enumerate() {
        group_last_start[g] = raw.origins[i].1;
    }
    Ok(Answered {
        raw,
        probabilities,
        group_origin,
        group_last_start,
    })
}

impl Answered {
    /// Each example's answer, placed in seconds at the ADC rate `fs_hz`.
    pub fn answers(&self, model: &LoadedModel, fs_hz: f64) -> anyhow::Result<Vec<Answer>> {
        let labels = &model.manifest.labels;
        let preprocessing = &model.manifest.candidate.preprocessing;
        let shape = preprocessing.pipeline_shape(fs_hz)?;
        let beats = matches!(preprocessing.window, Window::Beat { .. });
        let fiducial = shape.fiducial_index.unwrap_or(0) as f64;
        let window_s = shape.window_samples as f64 / fs_hz;
        let mut out = Vec::with_capacity(self.probabilities.len());
        for (g, probabilities) in self.probabilities.iter().enumerate() {
            let (record, first) = &self.group_origin[g];
            let start_s = *first as f64 / fs_hz;
            let place = if beats {
                Place::Beat((*first as f64 + fiducial) / fs_hz)
            } else {
                let end_s = self.group_last_start[g] as f64 / fs_hz + window_s;
                Place::Span(start_s.max(0.0), end_s)
            };
            let truth = match &self.raw.group_targets {
                Targets::Classes(c) => vec![labels[c[g] as usize].clone()],
                Targets::Labels(l) => labels
                    .iter()
                    .zip(&l[g])
                    .filter(|(_, &on)| on)
                    .map(|(n, _)| n.clone())
                    .collect(),
            };
            out.push(Answer {
                record: record.clone(),
                place,
                truth,
                predicted: model.decide(probabilities),
                probabilities: probabilities.clone(),
            });
        }
        Ok(out)
    }
}

/// The worst errors of each class, at most `per_class` of each, most confident first.
///
/// For one class per example, an error of class `c` is an example of true class `c` that the
/// model calls something else, ranked by how little probability it gave `c`. For multi-label
/// tasks, an error of label `c` is an example whose decision on `c` is wrong (missed or
/// false), ranked by the distance of `p(c)` from the truth. An example appears once per class
/// it is wrong on.
pub(super) fn worst_errors<'a>(
    answers: &'a [Answer],
    labels: &[String],
    multi_label: bool,
    per_class: usize,
) -> Vec<(String, &'a Answer)> {
    let mut picked = Vec::new();
    for (c, label) in labels.iter().enumerate() {
        let mut wrong: Vec<(f32, &Answer)> = answers
            .iter()
            .filter_map(|a| {
                let truly = a.truth.contains(label);
                let said = a.predicted.contains(label);
                let p = a.probabilities.get(c).copied().unwrap_or(0.0);
                if multi_label {
                    (truly != said).then_some((if truly { 1.0 - p } else { p }, a))
                } else {
                    (truly && !said).then_some((1.0 - p, a))
                }
            })
            .collect();
        wrong.sort_by(|x, y| y.0.total_cmp(&x.0));
        picked.extend(
            wrong
                .into_iter()
                .take(per_class)
                .map(|(_, a)| (label.clone(), a)),
        );
    }
    picked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(truth: &[&str], predicted: &[&str], probabilities: &[f32]) -> Answer {
        Answer {
            record: "r".into(),
            place: Place::Beat(1.0),
            truth: truth.iter().map(|s| s.to_string()).collect(),
            predicted: predicted.iter().map(|s| s.to_string()).collect(),
            probabilities: probabilities.to_vec(),
        }
    }

    #[test]
    fn worst_errors_rank_single_label_errors_by_the_true_class_probability() {
        let labels: Vec<String> = ["N", "V"].iter().map(|s| s.to_string()).collect();
        let answers = vec![
            answer(&["N"], &["N"], &[0.9, 0.1]),
            answer(&["N"], &["V"], &[0.4, 0.6]),
            answer(&["N"], &["V"], &[0.1, 0.9]),
            answer(&["V"], &["N"], &[0.7, 0.3]),
        ];
        let worst = worst_errors(&answers, &labels, false, 1);
        assert_eq!(worst.len(), 2);
        assert_eq!(worst[0].0, "N");
        assert_eq!(worst[0].1.probabilities, vec![0.1, 0.9]);
        assert_eq!(worst[1].0, "V");
        assert!(worst.iter().all(|(_, a)| !a.correct()));
    }

    #[test]
    fn worst_errors_of_multi_label_answers_count_misses_and_false_labels() {
        let labels: Vec<String> = ["AF", "PAC"].iter().map(|s| s.to_string()).collect();
        let answers = vec![
            // Misses AF, says PAC falsely.
            answer(&["AF"], &["PAC"], &[0.2, 0.8]),
            // Right.
            answer(&["AF", "PAC"], &["AF", "PAC"], &[0.9, 0.9]),
        ];
        let worst = worst_errors(&answers, &labels, true, 3);
        let classes: Vec<&str> = worst.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(classes, vec!["AF", "PAC"]);
    }
}
