//! Finding and loading records: a folder of WFDB records or CSV files, one header, one CSV.

use std::path::{Path, PathBuf};

use super::wfdb::WfdbRecord;
use super::{DataError, EcgRecord, Lead};

/// Where one record lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordSource {
    /// A WFDB record, by its header file.
    Wfdb(PathBuf),
    /// A CSV file with one column per lead.
    Csv(PathBuf),
}

impl RecordSource {
    /// The record's name: the file stem.
    pub fn id(&self) -> String {
        let path = match self {
            RecordSource::Wfdb(p) | RecordSource::Csv(p) => p,
        };
        path.file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned())
    }

    /// The file that names the record.
    pub fn path(&self) -> &Path {
        match self {
            RecordSource::Wfdb(p) | RecordSource::Csv(p) => p,
        }
    }
}

/// The records at `path`: every `*.hea` of a folder (or, in a folder without headers, every
/// `*.csv`), sorted by name; or the one record a header, CSV file or extension-less record
/// path names.
pub fn discover(path: &Path) -> Result<Vec<RecordSource>, DataError> {
    if path.is_dir() {
        let entries = std::fs::read_dir(path).map_err(|e| DataError::io(path, e))?;
        let mut headers = Vec::new();
        let mut csvs = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| DataError::io(path, e))?;
            let file = entry.path();
            // Label tables (CinC's REFERENCE*.csv) sit beside the records; they are not records.
            let is_label_table = file
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("REFERENCE"));
            if is_label_table {
                continue;
            }
            match file.extension().and_then(|e| e.to_str()) {
                Some("hea") => headers.push(file),
                Some("csv") => csvs.push(file),
                _ => {}
            }
        }
        headers.sort();
        csvs.sort();
        let found: Vec<RecordSource> = if headers.is_empty() {
            csvs.into_iter().map(RecordSource::Csv).collect()
        } else {
            headers.into_iter().map(RecordSource::Wfdb).collect()
        };
        if found.is_empty() {
            return Err(DataError::EmptyFolder {
                path: path.to_path_buf(),
            });
        }
        return Ok(found);
    }
    match path.extension().and_then(|e| e.to_str()) {
        Some("hea") if path.is_file() => Ok(vec![RecordSource::Wfdb(path.to_path_buf())]),
        Some("csv") if path.is_file() => Ok(vec![RecordSource::Csv(path.to_path_buf())]),
        _ => {
            let header = path.with_extension("hea");
            if header.is_file() {
                Ok(vec![RecordSource::Wfdb(header)])
            } else {
                Err(DataError::io(
                    path,
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "no such folder, WFDB header (.hea) or CSV file",
                    ),
                ))
            }
        }
    }
}

/// Loads a record in physical units. CSV files need the sampling rate (`csv_fs_hz`).
pub fn load(source: &RecordSource, csv_fs_hz: Option<f64>) -> Result<EcgRecord, DataError> {
    match source {
        RecordSource::Wfdb(header) => Ok(ecg_record_from_wfdb(&WfdbRecord::read(header)?)?),
        RecordSource::Csv(path) => {
            let fs = csv_fs_hz.ok_or_else(|| {
                DataError::invalid(path, "a CSV record needs its sampling rate (--fs)")
            })?;
            super::csv::read_csv(path, fs)
        }
    }
}

/// A WFDB record in physical units, leads named by their header descriptions.
pub fn ecg_record_from_wfdb(record: &WfdbRecord) -> Result<EcgRecord, DataError> {
    let header = &record.header;
    let spf = header.signals.first().map_or(1, |s| s.samples_per_frame);
    if header.signals.iter().any(|s| s.samples_per_frame != spf) {
        return Err(DataError::invalid(
            &record.header_path,
            "signals are sampled at different rates (samples per frame differ); resample them first",
        ));
    }
    let leads = header
        .signals
        .iter()
        .enumerate()
        .map(|(i, spec)| Lead {
            name: if spec.description.is_empty() {
                format!("signal{i}")
            } else {
                spec.description.clone()
            },
            units: spec.units.clone(),
            samples: record.physical(i),
        })
        .collect();
    Ok(EcgRecord {
        id: record.header_path.file_stem().map_or_else(
            || header.record_name.clone(),
            |s| s.to_string_lossy().into_owned(),
        ),
        path: Some(record.header_path.clone()),
        fs: header.fs * f64::from(spf),
        leads,
        comments: header.comments.clone(),
    })
}
