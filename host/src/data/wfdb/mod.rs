//! PhysioNet's WFDB formats: headers (`.hea`), signal files (`.dat`, and the MATLAB v4 `.mat`
//! container of the CinC challenges) and MIT-format annotation files (`.atr`).
//!
//! The parsers ([`header::Header::parse`], [`annotation::parse`], [`signal::decode`]) work on
//! bytes and know no paths, so they can be fuzzed; [`record`] reads files and adds the path to
//! every error.

pub mod annotation;
pub mod format;
pub mod header;
pub mod matlab;
pub mod record;
pub mod signal;

pub use annotation::{Annotation, AnnotationCode};
pub use format::SignalFormat;
pub use header::{Header, SignalSpec};
pub use record::WfdbRecord;

/// A parse failure inside one file, before the file's path is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line (headers) or byte offset (annotations); 0 for the file as a whole.
    pub position: usize,
    /// What is wrong.
    pub message: String,
}

impl ParseError {
    fn new(position: usize, message: impl Into<String>) -> Self {
        ParseError {
            position,
            message: message.into(),
        }
    }
}
