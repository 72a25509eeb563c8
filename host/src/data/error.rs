//! The one error type of the data layer: each variant names the file and says what is wrong.

use std::path::PathBuf;

/// Everything that can go wrong while reading ECG data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A header (`.hea`) line could not be understood.
    #[error("{path}, line {line}: {message}")]
    Header {
        /// The header file.
        path: PathBuf,
        /// 1-based line number (0 when the problem is the file as a whole).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The header names a signal format this reader does not decode.
    #[error(
        "{path}: signal format {format} is not supported (supported: 8, 16, 24, 32, 61, 80, 160, 212, 310, 311; the FLAC formats 508, 516 and 524 are not)"
    )]
    UnsupportedFormat {
        /// The header file.
        path: PathBuf,
        /// The format as written in the header.
        format: String,
    },
    /// A signal file is shorter than its header says.
    #[error("{path}: signal file ends after {got} bytes, the header needs {expected} ({n_samples} samples of {n_signals} signal(s) in format {format})")]
    TruncatedSignal {
        /// The signal file.
        path: PathBuf,
        /// Bytes the header implies.
        expected: u64,
        /// Bytes on disk.
        got: u64,
        /// Samples per signal the header declares.
        n_samples: u64,
        /// Signals stored in this file.
        n_signals: usize,
        /// The file's format.
        format: u16,
    },
    /// A signal file is longer than its header says.
    #[error("{path}: signal file holds {got} bytes, but the header describes {expected} ({n_samples} samples of {n_signals} signal(s) in format {format}): the header disagrees with the file size")]
    SizeMismatch {
        /// The signal file.
        path: PathBuf,
        /// Bytes the header implies.
        expected: u64,
        /// Bytes on disk.
        got: u64,
        /// Samples per signal the header declares.
        n_samples: u64,
        /// Signals stored in this file.
        n_signals: usize,
        /// The file's format.
        format: u16,
    },
    /// A MATLAB v4 container whose own header disagrees with the WFDB header.
    #[error("{path}: MATLAB v4 container: {message}")]
    Matlab {
        /// The `.mat` file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// An annotation file that cannot be decoded.
    #[error("{path}, byte {offset}: {message}")]
    Annotation {
        /// The annotation file.
        path: PathBuf,
        /// Byte offset of the problem.
        offset: usize,
        /// What is wrong.
        message: String,
    },
    /// A CSV or label file with bad content.
    #[error("{path}, line {line}: {message}")]
    Table {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A folder that holds no record this reader understands.
    #[error("{path}: no ECG records found (looked for WFDB headers *.hea and *.csv files)")]
    EmptyFolder {
        /// The folder.
        path: PathBuf,
    },
    /// Anything else about a file's content.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl DataError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            source,
        }
    }

    /// A content problem in `path`.
    pub fn invalid(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        DataError::Invalid {
            path: path.into(),
            message: message.into(),
        }
    }
}
