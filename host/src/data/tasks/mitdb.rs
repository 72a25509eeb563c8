//! The MIT-BIH tasks: `mitdb-aami` (beats) and `mitdb-rhythm` (10 s windows).

use std::path::Path;

use super::{
    check_fs, select_leads, Dataset, Example, Excluded, Split, Target, TaskKind, TaskRecord,
};
use crate::data::labels::aami::aami_class;
use crate::data::labels::rhythm::rhythm_intervals;
use crate::data::source::{discover, ecg_record_from_wfdb, RecordSource};
use crate::data::wfdb::record::read_annotations;
use crate::data::wfdb::{Annotation, WfdbRecord};
use crate::data::{DataError, EcgRecord};

/// de Chazal et al. (IEEE TBME 51(7), 2004) training records.
pub const DS1: [&str; 22] = [
    "101", "106", "108", "109", "112", "114", "115", "116", "118", "119", "122", "124", "201",
    "203", "205", "207", "208", "209", "215", "220", "223", "230",
];
/// de Chazal et al. test records.
pub const DS2: [&str; 22] = [
    "100", "103", "105", "111", "113", "117", "121", "123", "200", "202", "210", "212", "213",
    "214", "219", "221", "222", "228", "231", "232", "233", "234",
];
/// DS1 records held out for validation (about a quarter of DS1's S and V beats).
pub const VALIDATION: [&str; 5] = ["106", "118", "201", "215", "220"];
/// Paced records, which AAMI EC57 leaves out.
pub const PACED: [&str; 4] = ["102", "104", "107", "217"];
/// Records 201 (DS1) and 202 (DS2) come from the same subject.
pub const SAME_SUBJECT_AS_201: &str = "202";

/// The seven kept rhythm labels of `mitdb-rhythm`.
pub const RHYTHM_LABELS: [&str; 7] = ["N", "AFIB", "AFL", "SVTA", "VT", "B", "T"];

/// The lead every MIT-BIH task reads (chosen by name: record 114 has its leads swapped).
const LEAD: &str = "MLII";

/// Window length of `mitdb-rhythm`, in seconds.
const RHYTHM_WINDOW_S: f64 = 10.0;

/// The kept label of a rhythm note, or `None` for a dropped or unknown rhythm.
fn rhythm_label(note: &str) -> Option<usize> {
    Some(match note {
        "(N" => 0,
        "(AFIB" => 1,
        "(AFL" => 2,
        "(SVTA" => 3,
        "(VT" | "(VFL" => 4,
        "(B" => 5,
        "(T" => 6,
        _ => return None,
    })
}

/// One MIT-BIH record: MLII and the reference annotations; or why it is left out.
enum Loaded {
    Kept(EcgRecord, Vec<String>, Vec<Annotation>),
    Excluded(Excluded),
}

fn load_record(source: &RecordSource) -> Result<Loaded, DataError> {
    let id = source.id();
    if PACED.contains(&id.as_str()) {
        return Ok(Loaded::Excluded(Excluded {
            id,
            reason: "paced record (AAMI EC57 leaves paced records out)".to_string(),
        }));
    }
    let RecordSource::Wfdb(header) = source else {
        return Err(DataError::invalid(
            source.path(),
            "MIT-BIH tasks need WFDB records with .atr annotations, not CSV files",
        ));
    };
    let wfdb = WfdbRecord::read(header)?;
    let record = ecg_record_from_wfdb(&wfdb)?;
    check_fs(&record)?;
    let file_leads = record.lead_names();
    let Some(record) = select_leads(&record, &[LEAD]) else {
        return Ok(Loaded::Excluded(Excluded {
            id,
            reason: format!("no {LEAD} lead (leads: {})", file_leads.join(", ")),
        }));
    };
    let annotations = read_annotations(&wfdb.annotation_path("atr"))?;
    Ok(Loaded::Kept(record, file_leads, annotations))
}

fn load_all(path: &Path) -> Result<Vec<Loaded>, DataError> {
    discover(path)?.iter().map(load_record).collect()
}

fn not_in_split(id: String) -> Excluded {
    Excluded {
        id,
        reason: "not in the DS1/DS2 inter-patient split".to_string(),
    }
}

/// `mitdb-aami`: one example per beat annotation of an AAMI class N, S, V or F.
pub fn load_aami(path: &Path) -> Result<Dataset, DataError> {
    let mut records = Vec::new();
    let mut excluded = Vec::new();
    for loaded in load_all(path)? {
        let (record, file_leads, annotations) = match loaded {
            Loaded::Kept(r, l, a) => (r, l, a),
            Loaded::Excluded(e) => {
                excluded.push(e);
                continue;
            }
        };
        let id = record.id.as_str();
        let split = if VALIDATION.contains(&id) {
            Split::Validation
        } else if DS1.contains(&id) {
            Split::Train
        } else if DS2.contains(&id) {
            Split::Test
        } else {
            excluded.push(not_in_split(record.id.clone()));
            continue;
        };
        let examples = annotations
            .iter()
            .filter_map(|a| {
                let class = aami_class(&a.code.symbol())?;
                Some(Example {
                    position: a.sample.max(0) as usize,
                    target: Target::Class(class),
                })
            })
            .collect();
        records.push(TaskRecord {
            record,
            file_leads,
            examples,
            split,
        });
    }
    Ok(Dataset {
        task: TaskKind::MitdbAami,
        labels: TaskKind::MitdbAami.labels(),
        records,
        excluded,
        notes: Vec::new(),
    })
}

/// `mitdb-rhythm`: non-overlapping 10 s windows from sample 0; a label is positive when its
/// rhythm covers at least 30% of the window; a window where dropped or unknown rhythms
/// cover half or more is not an example.
pub fn load_rhythm(path: &Path) -> Result<Dataset, DataError> {
    let mut records = Vec::new();
    let mut excluded = Vec::new();
    for loaded in load_all(path)? {
        let (record, file_leads, annotations) = match loaded {
            Loaded::Kept(r, l, a) => (r, l, a),
            Loaded::Excluded(e) => {
                excluded.push(e);
                continue;
            }
        };
        let id = record.id.as_str();
        let split = if VALIDATION.contains(&id) {
            Split::Validation
        } else if DS1.contains(&id) || id == SAME_SUBJECT_AS_201 {
            Split::Train
        } else if DS2.contains(&id) {
            Split::Test
        } else {
            excluded.push(not_in_split(record.id.clone()));
            continue;
        };
        let examples = rhythm_windows(&annotations, record.n_samples(), record.fs);
        records.push(TaskRecord {
            record,
            file_leads,
            examples,
            split,
        });
    }
    Ok(Dataset {
        task: TaskKind::MitdbRhythm,
        labels: TaskKind::MitdbRhythm.labels(),
        records,
        excluded,
        notes: Vec::new(),
    })
}

/// The labelled windows of one record.
fn rhythm_windows(annotations: &[Annotation], n_samples: usize, fs: f64) -> Vec<Example> {
    let window = (RHYTHM_WINDOW_S * fs).round() as usize;
    let intervals = rhythm_intervals(annotations, n_samples);
    let mut examples = Vec::new();
    for start in (0..n_samples / window).map(|w| w * window) {
        let end = start + window;
        let mut covered = [0usize; RHYTHM_LABELS.len()];
        for iv in &intervals {
            let overlap = iv.end.min(end).saturating_sub(iv.start.max(start));
            if let Some(label) = rhythm_label(&iv.rhythm) {
                covered[label] += overlap;
            }
        }
        let kept: usize = covered.iter().sum();
        // Dropped plus unknown rhythms cover the rest of the window.
        if (window - kept) * 2 >= window {
            continue;
        }
        let flags = covered.iter().map(|&c| c * 10 >= window * 3).collect();
        examples.push(Example {
            position: start,
            target: Target::Labels(flags),
        });
    }
    examples
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::wfdb::AnnotationCode;

    fn change(sample: i64, aux: &str) -> Annotation {
        Annotation {
            sample,
            code: AnnotationCode::RHYTHM,
            subtype: 0,
            chan: 0,
            num: 0,
            aux: aux.to_string(),
            aux_had_nul: false,
        }
    }

    #[test]
    fn windows_carry_rhythms_covering_thirty_percent() {
        // fs 10 Hz: windows of 100 samples. Unknown until 20, N until 170, AFIB to 205, P after.
        let anns = [change(20, "(N"), change(170, "(AFIB"), change(205, "(P")];
        let w = rhythm_windows(&anns, 400, 10.0);
        // Window 0: unknown 20% -> kept, N. Window 1: N 70%, AFIB 30% -> both.
        // Window 2: AFIB 5%, paced 95% -> excluded. Window 3: paced -> excluded.
        assert_eq!(w.len(), 2);
        assert_eq!(
            w[0].target,
            Target::Labels(vec![true, false, false, false, false, false, false])
        );
        assert_eq!(w[1].position, 100);
        assert_eq!(
            w[1].target,
            Target::Labels(vec![true, true, false, false, false, false, false])
        );
    }

    #[test]
    fn flutter_counts_as_vt_and_partial_windows_are_dropped() {
        let anns = [change(0, "(VFL")];
        let w = rhythm_windows(&anns, 250, 10.0);
        assert_eq!(w.len(), 2);
        assert!(matches!(&w[0].target, Target::Labels(f) if f[4]));
    }
}
