//! ECG data: records on disk, the built-in synthetic ECG, and the tasks that turn records into
//! labelled examples.
//!
//! This module owns file formats and labels. It knows nothing of training, search or chips,
//! and never prints: every failure is a [`DataError`] that names the file and the problem.

pub mod csv;
pub mod error;
pub mod labels;
pub mod resample;
pub mod signal;
pub mod source;
pub mod stats;
pub mod synthetic;
pub mod tasks;
pub mod wfdb;

pub use error::DataError;
pub use signal::{EcgRecord, Lead};
