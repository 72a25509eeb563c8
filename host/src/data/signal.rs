//! The in-memory ECG record every source produces: leads of physical samples at one rate.

use std::path::PathBuf;

/// One ECG recording, whatever file it came from, in physical units.
#[derive(Debug, Clone, PartialEq)]
pub struct EcgRecord {
    /// The record's name (`100`, `A00001`, a CSV file's stem, `synthetic-17`).
    pub id: String,
    /// The file it was read from (a header, a CSV file); `None` for generated records.
    pub path: Option<PathBuf>,
    /// Sampling frequency in Hz, the same for every lead.
    pub fs: f64,
    /// The leads, in file order.
    pub leads: Vec<Lead>,
    /// Free-text comments (WFDB header comment lines).
    pub comments: Vec<String>,
}

/// One lead's samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Lead {
    /// Lead name as the file gives it (`MLII`, `V5`, `I`).
    pub name: String,
    /// Physical unit as the file gives it (`mV` for every ECG source ecgnas reads).
    pub units: String,
    /// Physical samples; NaN marks an invalid (missing) sample.
    pub samples: Vec<f32>,
}

impl EcgRecord {
    /// Samples per lead.
    pub fn n_samples(&self) -> usize {
        self.leads.first().map_or(0, |l| l.samples.len())
    }

    /// Duration in seconds.
    pub fn duration_s(&self) -> f64 {
        self.n_samples() as f64 / self.fs
    }

    /// The first lead with this name.
    pub fn lead(&self, name: &str) -> Option<&Lead> {
        self.leads.iter().find(|l| l.name == name)
    }

    /// Lead names in order.
    pub fn lead_names(&self) -> Vec<String> {
        self.leads.iter().map(|l| l.name.clone()).collect()
    }
}
