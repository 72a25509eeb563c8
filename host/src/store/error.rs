//! The one error type of the trial store: each variant names the database.

use std::fmt;
use std::path::PathBuf;

/// One argument in which a resumed run differs from the stored one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDiff {
    /// The argument (`task`, `data`, `profile`, `strategy`, `seed` or `space`).
    pub field: &'static str,
    /// Its value in the store.
    pub stored: String,
    /// Its value now.
    pub given: String,
}

impl fmt::Display for FieldDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} was {:?}, now {:?}",
            self.field,
            shorten(&self.stored),
            shorten(&self.given)
        )
    }
}

/// A value cut to a length an error message can show.
fn shorten(value: &str) -> String {
    const MAX_CHARS: usize = 120;
    if value.chars().count() <= MAX_CHARS {
        value.to_string()
    } else {
        let head: String = value.chars().take(MAX_CHARS).collect();
        format!("{head}... ({} bytes)", value.len())
    }
}

/// Everything that can go wrong in the trial store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite itself failed (the file cannot be opened, is not a database, is locked, ...).
    #[error("trial store {db}: {source}")]
    Sqlite {
        /// The database file.
        db: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// PostgreSQL failed (the server is unreachable, refuses the credentials, ...).
    #[error("trial store {db}: {}", postgres_message(source))]
    Postgres {
        /// The server's URL, without its password.
        db: PathBuf,
        /// What the client or the server said.
        #[source]
        source: postgres::Error,
    },
    /// Another coordinator is running the run.
    #[error("trial store {db}: another coordinator is running run {run_id:?}; stop it first (or resume this run once it has stopped)")]
    RunBusy {
        /// The store.
        db: PathBuf,
        /// The run.
        run_id: String,
    },
    /// The database was written by a newer ecgnas, with a schema this one does not know.
    #[error("trial store {db}: schema version {found} is newer than the {supported} this ecgnas ({version}) knows: open it with a newer ecgnas", version = env!("CARGO_PKG_VERSION"))]
    SchemaTooNew {
        /// The database file.
        db: PathBuf,
        /// The version in the file.
        found: i64,
        /// The newest version this ecgnas knows.
        supported: i64,
    },
    /// The file is a database, but not an ecgnas trial store.
    #[error("trial store {db}: the file is a database of another application ({detail}); refusing to write into it")]
    NotAStore {
        /// The database file.
        db: PathBuf,
        /// What gave it away.
        detail: String,
    },
    /// The store holds data it cannot read back (a bad JSON text, an unknown status).
    #[error("trial store {db}: corrupt data: {message}")]
    Corrupt {
        /// The database.
        db: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A run was resumed with arguments other than those it was started with.
    #[error("trial store {db}: run {run_id:?} was started with other arguments, refusing to resume it: {}", join(.differences))]
    RunMismatch {
        /// The database.
        db: PathBuf,
        /// The run.
        run_id: String,
        /// Each argument that differs.
        differences: Vec<FieldDiff>,
    },
    /// A trial method was called before [`create_or_open_run`](super::TrialStore::create_or_open_run).
    #[error("trial store {db}: no run is open (create_or_open_run comes first)")]
    NoRun {
        /// The database.
        db: PathBuf,
    },
    /// A trial id that is already finished was written again.
    #[error("trial store {db}: trial {trial_id} of run {run_id:?} is already {status}; a finished trial is never written twice")]
    DuplicateTrial {
        /// The database.
        db: PathBuf,
        /// The run.
        run_id: String,
        /// The trial.
        trial_id: u64,
        /// Its stored status (`done` or `failed`).
        status: &'static str,
    },
    /// A new trial's id is not the next one.
    #[error("trial store {db}: run {run_id:?} expects trial {expected} next, not {got} (trial ids are contiguous from 0)")]
    TrialIdGap {
        /// The database.
        db: PathBuf,
        /// The run.
        run_id: String,
        /// The id the next new trial must have.
        expected: u64,
        /// The id given.
        got: u64,
    },
    /// A checkpoint names a trial that is not finished (or does not exist).
    #[error("trial store {db}: a strategy checkpoint after trial {after_trial} of run {run_id:?} is refused: that trial is not finished")]
    CheckpointNotFinished {
        /// The database.
        db: PathBuf,
        /// The run.
        run_id: String,
        /// The trial the checkpoint claims to follow.
        after_trial: u64,
    },
    /// A value the store cannot keep faithfully, or a request that makes no sense.
    #[error("trial store {db}: {message}")]
    Invalid {
        /// The database.
        db: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A worker's lease on a trial is gone: the trial was requeued (and maybe claimed again).
    #[error("trial store {db}: worker {worker:?} no longer holds trial {trial_id} of run {run_id:?} (its lease expired and the trial was requeued)")]
    LeaseLost {
        /// The database.
        db: PathBuf,
        /// The run.
        run_id: String,
        /// The trial.
        trial_id: u64,
        /// The worker that thought it held it.
        worker: String,
    },
}

/// The client's error with the server's message when there is one: the client's own
/// `Display` of a server error says only "db error".
fn postgres_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

/// The differences of a mismatch, one after another.
fn join(differences: &[FieldDiff]) -> String {
    differences
        .iter()
        .map(FieldDiff::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
