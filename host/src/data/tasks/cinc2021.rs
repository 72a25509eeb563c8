//! `cinc2021`: 12-lead recordings with SNOMED CT `Dx:` codes, 26 scored classes.

use std::collections::BTreeMap;
use std::path::Path;

use super::{
    check_fs, select_leads, split, Dataset, Example, Excluded, LoadOptions, Target, TaskKind,
    TaskRecord,
};
use crate::data::labels::cinc2021::{dx_codes, ScoredClasses};
use crate::data::source::{discover, load as load_record};
use crate::data::DataError;

/// Loads the recordings of `path`, reduced to the requested lead set.
pub fn load(path: &Path, options: &LoadOptions) -> Result<Dataset, DataError> {
    let classes = ScoredClasses::get();
    let lead_names = options.leads.names();
    let mut kept = Vec::new();
    let mut excluded = Vec::new();
    for source in discover(path)? {
        let record = load_record(&source, options.csv_fs_hz)?;
        check_fs(&record)?;
        let Some(codes) = dx_codes(&record.comments) else {
            excluded.push(Excluded {
                id: record.id.clone(),
                reason: "no `Dx:` line in the header".to_string(),
            });
            continue;
        };
        let file_leads = record.lead_names();
        let Some(reduced) = select_leads(&record, lead_names) else {
            excluded.push(Excluded {
                id: record.id.clone(),
                reason: format!(
                    "lacks a lead of the {}-lead set (leads: {})",
                    lead_names.len(),
                    file_leads.join(", ")
                ),
            });
            continue;
        };
        kept.push((reduced, file_leads, classes.label_vector(&codes)));
    }
    // Stratify on each recording's rarest scored class (by frequency in this set), "none"
    // when it has none, so that rare classes reach every side of the split.
    let mut frequency = vec![0usize; classes.codes.len()];
    for (_, _, flags) in &kept {
        for (f, _) in frequency.iter_mut().zip(flags).filter(|(_, on)| **on) {
            *f += 1;
        }
    }
    let keys: Vec<(String, Option<usize>)> = kept
        .iter()
        .map(|(r, _, flags)| {
            let rarest = (0..flags.len())
                .filter(|&c| flags[c])
                .min_by_key(|&c| (frequency[c], c));
            (r.id.clone(), rarest)
        })
        .collect();
    let sides: BTreeMap<_, _> = split::stratified(&keys, options.split_seed);
    let records = kept
        .into_iter()
        .map(|(record, file_leads, flags)| TaskRecord {
            split: sides[&record.id],
            file_leads,
            examples: vec![Example {
                position: 0,
                target: Target::Labels(flags),
            }],
            record,
        })
        .collect();
    Ok(Dataset {
        task: TaskKind::Cinc2021,
        labels: TaskKind::Cinc2021.labels(),
        records,
        excluded,
        notes: Vec::new(),
    })
}
