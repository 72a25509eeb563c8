//! CinC 2017 labels: `REFERENCE*.csv` files of `record,label` rows, labels N, A, O, `~`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::data::DataError;

/// The four classes in output order: normal, atrial fibrillation, other rhythm, noisy.
pub const CINC2017_CLASSES: [&str; 4] = ["N", "A", "O", "~"];

/// Label files, newest first: the revised v3 labels (6 Nov 2017) supersede earlier releases,
/// and the validation subset's own file is the oldest.
const LABEL_FILES: [&str; 6] = [
    "REFERENCE-v3.csv",
    "REFERENCE-v2.csv",
    "REFERENCE-v1.csv",
    "REFERENCE.csv",
    "REFERENCE-original.csv",
    "REFERENCE-sample2017-validation.csv",
];

/// The newest label file present in `folder`.
pub fn newest_label_file(folder: &Path) -> Option<PathBuf> {
    LABEL_FILES
        .iter()
        .map(|name| folder.join(name))
        .find(|p| p.is_file())
}

/// Reads a label file into record name -> class index (see [`CINC2017_CLASSES`]).
pub fn read_labels(path: &Path) -> Result<BTreeMap<String, usize>, DataError> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    let mut labels = BTreeMap::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let bad = |message: String| DataError::Table {
            path: path.to_path_buf(),
            line: index + 1,
            message,
        };
        let (record, label) = line
            .split_once(',')
            .ok_or_else(|| bad(format!("expected `record,label`, found {line:?}")))?;
        let label = label.trim();
        let class = CINC2017_CLASSES
            .iter()
            .position(|c| *c == label)
            .ok_or_else(|| bad(format!("unknown label {label:?} (expected N, A, O or ~)")))?;
        if labels.insert(record.trim().to_string(), class).is_some() {
            return Err(bad(format!("record {} is labelled twice", record.trim())));
        }
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_crlf_files_and_rejects_unknown_labels() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("REFERENCE.csv");
        std::fs::write(&good, "A00001,N\r\nA00002,A\r\nA00003,~\r\n").unwrap();
        let labels = read_labels(&good).unwrap();
        assert_eq!(labels["A00002"], 1);
        assert_eq!(labels["A00003"], 3);
        assert_eq!(newest_label_file(dir.path()), Some(good.clone()));
        std::fs::write(dir.path().join("REFERENCE-v3.csv"), "A00001,X\n").unwrap();
        let newest = newest_label_file(dir.path()).unwrap();
        assert!(newest.ends_with("REFERENCE-v3.csv"));
        match read_labels(&newest) {
            Err(DataError::Table {
                line: 1, message, ..
            }) => assert!(message.contains("\"X\"")),
            other => panic!("expected a table error, got {other:?}"),
        }
    }
}
