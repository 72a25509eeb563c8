//! `cinc2017`: single-lead AliveCor recordings labelled N, A, O or `~` in `REFERENCE*.csv`.

use std::path::Path;

use super::{
    check_fs, split, Dataset, Example, Excluded, LoadOptions, Target, TaskKind, TaskRecord,
};
use crate::data::labels::cinc2017::{newest_label_file, read_labels};
use crate::data::source::{discover, load as load_record};
use crate::data::DataError;

/// Loads the recordings of `path` with the newest label file of their folder.
pub fn load(path: &Path, options: &LoadOptions) -> Result<Dataset, DataError> {
    let folder = if path.is_dir() {
        path.to_path_buf()
    } else {
        path.parent().unwrap_or(Path::new(".")).to_path_buf()
    };
    let label_file = newest_label_file(&folder).ok_or_else(|| {
        DataError::invalid(
            &folder,
            "no CinC 2017 label file (REFERENCE-v3.csv, REFERENCE.csv, ...) in this folder",
        )
    })?;
    let labels = read_labels(&label_file)?;
    let mut kept = Vec::new();
    let mut excluded = Vec::new();
    for source in discover(path)? {
        let record = load_record(&source, options.csv_fs_hz)?;
        check_fs(&record)?;
        let Some(&class) = labels.get(&record.id) else {
            excluded.push(Excluded {
                id: record.id.clone(),
                reason: format!("no label in {}", label_file.display()),
            });
            continue;
        };
        kept.push((record, class));
    }
    let keys: Vec<(String, usize)> = kept.iter().map(|(r, c)| (r.id.clone(), *c)).collect();
    let sides = split::stratified(&keys, options.split_seed);
    let records = kept
        .into_iter()
        .map(|(record, class)| TaskRecord {
            split: sides[&record.id],
            file_leads: record.lead_names(),
            examples: vec![Example {
                position: 0,
                target: Target::Class(class),
            }],
            record,
        })
        .collect();
    Ok(Dataset {
        task: TaskKind::Cinc2017,
        labels: TaskKind::Cinc2017.labels(),
        records,
        excluded,
        notes: vec![format!("labels from {}", label_file.display())],
    })
}
