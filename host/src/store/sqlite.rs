//! [`SqliteStore`]: the trial store in one SQLite file, the default store of a run folder.
//!
//! Durability: the journal is a write-ahead log and `synchronous=FULL`, so each commit is
//! synced to disk before [`TrialStore::record_trial`] returns. `synchronous=NORMAL` would
//! already survive `kill -9` of the process (the log is in the kernel's page cache), but it
//! may lose the last commits to a power cut or a kernel crash; a trial takes seconds to
//! hours, one sync per trial costs nothing next to it, so FULL it is. On a file system where
//! SQLite cannot use a write-ahead log, it keeps its rollback journal, which with
//! `synchronous=FULL` is as safe.
//!
//! Schema: `MIGRATIONS` is the ordered list of SQL steps; step `i` takes the schema from
//! version `i` to `i + 1`, and the `schema_version` table holds the version reached. Opening a
//! file runs the missing steps in one transaction; a file from a newer ecgnas is refused. The
//! file's SQLite `application_id` marks it as an ecgnas store, so that another application's
//! database is never written into.

use super::rows::{
    fail_reason, json_text, json_value, seed_to_sql, static_status, to_sql_id, RawRun, RawTrial,
};
use super::{
    expired_reason, run_differences, validate_finish, validate_lease_s, validate_trial, Expired,
    Lease, RunInfo, RunState, RunningTrial, StoreError, TrialRecord, TrialStore, WorkQueue,
};
use rusqlite::{Connection, OptionalExtension, ToSql, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The schema version this ecgnas writes (the number of migration steps).
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The SQLite `application_id` of an ecgnas trial store ("ECNS").
const APPLICATION_ID: i64 = 0x4543_4E53;

/// How long a write waits for another process's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The migration steps, oldest first: step `i` takes the schema from version `i` to `i + 1`.
/// Never edit a step that has shipped; append one.
const MIGRATIONS: &[&str] = &[
    // Version 1: runs, trials (with the work queue's lease columns), strategy checkpoints.
    "CREATE TABLE schema_version (version INTEGER NOT NULL) STRICT;
     CREATE TABLE runs (
         run_id         TEXT PRIMARY KEY,
         created_at     TEXT NOT NULL,
         task           TEXT NOT NULL,
         data           TEXT NOT NULL,
         profile        TEXT NOT NULL,
         strategy       TEXT NOT NULL,
         seed           INTEGER NOT NULL,
         budget         TEXT NOT NULL CHECK (json_valid(budget)),
         space          TEXT NOT NULL CHECK (json_valid(space)),
         ecgnas_version TEXT NOT NULL
     ) STRICT;
     CREATE TABLE trials (
         run_id       TEXT NOT NULL REFERENCES runs (run_id),
         trial_id     INTEGER NOT NULL CHECK (trial_id >= 0),
         candidate_id TEXT NOT NULL,
         candidate    TEXT NOT NULL CHECK (json_valid(candidate)),
         status       TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
         fail_reason  TEXT CHECK ((status = 'failed') = (fail_reason IS NOT NULL)),
         quality      REAL,
         metrics      TEXT NOT NULL CHECK (json_valid(metrics)),
         costs        TEXT NOT NULL CHECK (json_valid(costs)),
         reward       REAL,
         feasible     INTEGER CHECK (feasible IN (0, 1)),
         wall_s       REAL,
         seed         INTEGER NOT NULL,
         started_at   TEXT,
         finished_at  TEXT,
         worker       TEXT,
         lease_until  REAL,
         attempts     INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
         PRIMARY KEY (run_id, trial_id)
     ) STRICT;
     CREATE INDEX trials_by_candidate ON trials (run_id, candidate_id);
     CREATE INDEX trials_by_status ON trials (run_id, status, trial_id);
     CREATE TABLE strategy_state (
         run_id      TEXT PRIMARY KEY REFERENCES runs (run_id),
         after_trial INTEGER NOT NULL,
         state       TEXT NOT NULL CHECK (json_valid(state))
     ) STRICT;",
];

/// The store's clock, in seconds since 1970, as an SQL expression.
const NOW_S: &str = "((julianday('now') - 2440587.5) * 86400.0)";

/// The columns of a trial, in the order [`RawTrial::from_row`] reads them.
const TRIAL_COLUMNS: &str = "trial_id, candidate_id, candidate, status, fail_reason, quality, \
     metrics, costs, reward, feasible, wall_s, seed, started_at, finished_at";

/// The columns of a run, in the order [`RawRun::from_row`] reads them.
const RUN_COLUMNS: &str =
    "run_id, created_at, task, data, profile, strategy, seed, budget, space, ecgnas_version";

/// A trial store in one SQLite file.
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    conn: Connection,
    run_id: Option<String>,
}

impl SqliteStore {
    /// Opens the store at `path`, creating the file and its schema if absent and bringing an
    /// older schema up to date. The folder must exist.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let sql = sql_err(path);
        let mut conn = Connection::open(path).map_err(&sql)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(&sql)?;
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
            .map_err(&sql)?;
        // The file is known to be an ecgnas store (or made one) before anything is changed,
        // the journal mode included.
        migrate(path, &mut conn)?;
        // The answer is the mode in force: "wal", or the old one where WAL is impossible
        // (which, with synchronous=FULL, is as durable).
        let _mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(&sql)?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            conn,
            run_id: None,
        })
    }

    /// The schema version of the open file (always [`SCHEMA_VERSION`] once opened).
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row("SELECT max(version) FROM schema_version", [], |r| r.get(0))
            .map_err(sql_err(&self.path))
    }

    fn run_id(&self) -> Result<&str, StoreError> {
        self.run_id.as_deref().ok_or_else(|| StoreError::NoRun {
            db: self.path.clone(),
        })
    }
}

/// The store holds something it cannot read back.
fn corrupt(path: &Path, message: String) -> StoreError {
    StoreError::Corrupt {
        db: path.to_path_buf(),
        message,
    }
}

/// A request the store refuses.
fn invalid(path: &Path, message: String) -> StoreError {
    StoreError::Invalid {
        db: path.to_path_buf(),
        message,
    }
}

/// Reads a trial by id, inside or outside a transaction.
fn read_trial(
    path: &Path,
    conn: &Connection,
    run_id: &str,
    trial_id: u64,
) -> Result<Option<TrialRecord>, StoreError> {
    let raw = conn
        .query_row(
            &format!("SELECT {TRIAL_COLUMNS} FROM trials WHERE run_id = ?1 AND trial_id = ?2"),
            rusqlite::params![run_id, to_sql_id(trial_id)],
            RawTrial::from_row,
        )
        .optional()
        .map_err(sql_err(path))?;
    raw.map(|r| r.into_record().map_err(|m| corrupt(path, m)))
        .transpose()
}

/// Turns SQLite's errors into the store's, naming the file.
fn sql_err(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |source| StoreError::Sqlite {
        db: path.to_path_buf(),
        source,
    }
}

/// Creates or updates the schema, in one transaction.
fn migrate(path: &Path, conn: &mut Connection) -> Result<(), StoreError> {
    let sql = sql_err(path);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(&sql)?;
    let app_id: i64 = tx
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(&sql)?;
    let version: i64 = if app_id == APPLICATION_ID {
        tx.query_row("SELECT max(version) FROM schema_version", [], |r| {
            r.get::<_, Option<i64>>(0)
        })
        .map_err(&sql)?
        .unwrap_or(0)
    } else {
        let n_objects: i64 = tx
            .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
            .map_err(&sql)?;
        if app_id != 0 {
            return Err(StoreError::NotAStore {
                db: path.to_path_buf(),
                detail: format!("SQLite application id {app_id:#x}"),
            });
        }
        if n_objects > 0 {
            return Err(StoreError::NotAStore {
                db: path.to_path_buf(),
                detail: format!("{n_objects} table(s) or index(es), no ecgnas schema"),
            });
        }
        0
    };
    if version > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            db: path.to_path_buf(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    if version == SCHEMA_VERSION {
        return tx.commit().map_err(&sql);
    }
    for step in MIGRATIONS
        .iter()
        .skip(usize::try_from(version).unwrap_or(0))
    {
        tx.execute_batch(step).map_err(&sql)?;
    }
    tx.execute("DELETE FROM schema_version", []).map_err(&sql)?;
    tx.execute(
        "INSERT INTO schema_version (version) VALUES (?1)",
        [SCHEMA_VERSION],
    )
    .map_err(&sql)?;
    tx.execute_batch(&format!("PRAGMA application_id = {APPLICATION_ID}"))
        .map_err(&sql)?;
    tx.commit().map_err(&sql)
}

impl RawTrial {
    fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawTrial> {
        Ok(RawTrial {
            trial_id: row.get(0)?,
            candidate_id: row.get(1)?,
            candidate: row.get(2)?,
            status: row.get(3)?,
            fail_reason: row.get(4)?,
            quality: row.get(5)?,
            metrics: row.get(6)?,
            costs: row.get(7)?,
            reward: row.get(8)?,
            feasible: row.get(9)?,
            wall_s: row.get(10)?,
            seed: row.get(11)?,
            started_at: row.get(12)?,
            finished_at: row.get(13)?,
        })
    }
}

impl RawRun {
    fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawRun> {
        Ok(RawRun {
            run_id: row.get(0)?,
            created_at: row.get(1)?,
            task: row.get(2)?,
            data: row.get(3)?,
            profile: row.get(4)?,
            strategy: row.get(5)?,
            seed: row.get(6)?,
            budget: row.get(7)?,
            space: row.get(8)?,
            ecgnas_version: row.get(9)?,
        })
    }
}

/// Who may update a trial row.
enum Writer<'a> {
    /// The search loop, through [`TrialStore::record_trial`]: the row must exist; any lease on
    /// it is dropped.
    Loop,
    /// A worker, through [`WorkQueue::finish`]: the row must be running under its lease; the
    /// worker stays recorded.
    Worker {
        /// The worker's name.
        worker: &'a str,
        /// The attempt it holds.
        attempt: u32,
    },
}

/// Inserts `trial` as a new row of run `run_id`.
fn insert_trial(conn: &Connection, run_id: &str, trial: &TrialRecord) -> rusqlite::Result<usize> {
    let row = TrialRow::new(run_id, trial);
    conn.execute(
        &format!(
            "INSERT INTO trials (run_id, {TRIAL_COLUMNS}) VALUES (:run_id, :trial_id, \
             :candidate_id, :candidate, :status, :fail_reason, :quality, :metrics, :costs, \
             :reward, :feasible, :wall_s, :seed, :started_at, :finished_at)"
        ),
        &row.params()[..],
    )
}

/// Replaces every column of the row of `trial` with its content, if `writer` may; returns the
/// number of rows changed (0 when the row is absent or the worker's lease is gone).
fn update_trial(
    conn: &Connection,
    run_id: &str,
    trial: &TrialRecord,
    writer: &Writer<'_>,
) -> rusqlite::Result<usize> {
    let row = TrialRow::new(run_id, trial);
    let mut params = row.params();
    let (worker_set, lease_cond) = match writer {
        Writer::Loop => ("worker = NULL,", ""),
        Writer::Worker { worker, attempt } => {
            params.push((":worker", worker));
            params.push((":attempt", attempt));
            (
                "",
                "AND status = 'running' AND worker = :worker AND attempts = :attempt",
            )
        }
    };
    conn.execute(
        &format!(
            "UPDATE trials SET candidate_id = :candidate_id, candidate = :candidate, \
             status = :status, fail_reason = :fail_reason, quality = :quality, \
             metrics = :metrics, costs = :costs, reward = :reward, feasible = :feasible, \
             wall_s = :wall_s, seed = :seed, started_at = :started_at, \
             finished_at = :finished_at, {worker_set} lease_until = NULL \
             WHERE run_id = :run_id AND trial_id = :trial_id {lease_cond}"
        ),
        &params[..],
    )
}

/// A trial's columns as SQL values, for binding.
struct TrialRow<'a> {
    run_id: &'a str,
    trial: &'a TrialRecord,
    trial_id: i64,
    seed: i64,
    status: &'static str,
    fail_reason: Option<&'a str>,
    candidate: String,
    metrics: String,
    costs: String,
}

impl<'a> TrialRow<'a> {
    fn new(run_id: &'a str, trial: &'a TrialRecord) -> TrialRow<'a> {
        TrialRow {
            run_id,
            trial,
            trial_id: to_sql_id(trial.trial_id),
            seed: seed_to_sql(trial.seed),
            status: trial.status.name(),
            fail_reason: fail_reason(&trial.status),
            candidate: json_text(&trial.candidate),
            metrics: json_text(&trial.metrics),
            costs: json_text(&trial.costs),
        }
    }

    /// The named parameters of every column (and `:run_id`).
    fn params(&self) -> Vec<(&'static str, &dyn ToSql)> {
        let t = self.trial;
        vec![
            (":run_id", &self.run_id as &dyn ToSql),
            (":trial_id", &self.trial_id),
            (":candidate_id", &t.candidate_id),
            (":candidate", &self.candidate),
            (":status", &self.status),
            (":fail_reason", &self.fail_reason),
            (":quality", &t.quality),
            (":metrics", &self.metrics),
            (":costs", &self.costs),
            (":reward", &t.reward),
            (":feasible", &t.feasible),
            (":wall_s", &t.wall_s),
            (":seed", &self.seed),
            (":started_at", &t.started_at),
            (":finished_at", &t.finished_at),
        ]
    }
}

impl TrialStore for SqliteStore {
    fn location(&self) -> &Path {
        &self.path
    }

    fn create_or_open_run(&mut self, info: &RunInfo) -> Result<RunState, StoreError> {
        self.run_id = None;
        let sql = sql_err(&self.path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&sql)?;
        let stored = tx
            .query_row(
                &format!("SELECT {RUN_COLUMNS} FROM runs WHERE run_id = ?1"),
                [&info.run_id],
                RawRun::from_row,
            )
            .optional()
            .map_err(&sql)?;
        let (resumed, run) = match stored {
            Some(raw) => {
                let stored = raw.into_info().map_err(|message| StoreError::Corrupt {
                    db: self.path.clone(),
                    message,
                })?;
                let differences = run_differences(&stored, info);
                if !differences.is_empty() {
                    return Err(StoreError::RunMismatch {
                        db: self.path.clone(),
                        run_id: info.run_id.clone(),
                        differences,
                    });
                }
                (true, stored)
            }
            None => {
                tx.execute(
                    &format!(
                        "INSERT INTO runs ({RUN_COLUMNS}) VALUES \
                         (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
                    ),
                    rusqlite::params![
                        info.run_id,
                        info.created_at,
                        info.task,
                        info.data,
                        info.profile,
                        info.strategy,
                        seed_to_sql(info.seed),
                        json_text(&info.budget),
                        json_text(&info.space),
                        info.ecgnas_version,
                    ],
                )
                .map_err(&sql)?;
                (false, info.clone())
            }
        };
        let (n_finished, next): (i64, i64) = tx
            .query_row(
                "SELECT count(*) FILTER (WHERE status IN ('done', 'failed')), \
                 coalesce(max(trial_id) + 1, 0) FROM trials WHERE run_id = ?1",
                [&info.run_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(&sql)?;
        let unfinished = {
            let mut stmt = tx
                .prepare(
                    "SELECT trial_id FROM trials WHERE run_id = ?1 \
                     AND status IN ('pending', 'running') ORDER BY trial_id",
                )
                .map_err(&sql)?;
            let ids = stmt
                .query_map([&info.run_id], |r| r.get::<_, i64>(0))
                .map_err(&sql)?
                .collect::<Result<Vec<i64>, _>>()
                .map_err(&sql)?;
            ids.into_iter().map(|id| id as u64).collect()
        };
        tx.commit().map_err(&sql)?;
        self.run_id = Some(info.run_id.clone());
        Ok(RunState {
            resumed,
            run,
            n_finished: usize::try_from(n_finished).unwrap_or(0),
            next_trial_id: u64::try_from(next).unwrap_or(0),
            unfinished,
        })
    }

    fn runs(&self) -> Result<Vec<RunInfo>, StoreError> {
        let sql = sql_err(&self.path);
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {RUN_COLUMNS} FROM runs ORDER BY run_id"))
            .map_err(&sql)?;
        let raws = stmt
            .query_map([], RawRun::from_row)
            .map_err(&sql)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(&sql)?;
        raws.into_iter()
            .map(|r| r.into_info().map_err(|m| corrupt(&self.path, m)))
            .collect()
    }

    fn record_trial(&mut self, trial: &TrialRecord) -> Result<(), StoreError> {
        let run_id = self.run_id()?.to_string();
        validate_trial(trial).map_err(|m| invalid(&self.path, m))?;
        let sql = sql_err(&self.path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&sql)?;
        let existing: Option<String> = tx
            .query_row(
                "SELECT status FROM trials WHERE run_id = ?1 AND trial_id = ?2",
                rusqlite::params![run_id, to_sql_id(trial.trial_id)],
                |r| r.get(0),
            )
            .optional()
            .map_err(&sql)?;
        match existing.as_deref() {
            Some(status @ ("done" | "failed")) => {
                return Err(StoreError::DuplicateTrial {
                    db: self.path.clone(),
                    run_id,
                    trial_id: trial.trial_id,
                    status: static_status(status),
                });
            }
            Some(_) => {
                update_trial(&tx, &run_id, trial, &Writer::Loop).map_err(&sql)?;
            }
            None => {
                let next: i64 = tx
                    .query_row(
                        "SELECT coalesce(max(trial_id) + 1, 0) FROM trials WHERE run_id = ?1",
                        [&run_id],
                        |r| r.get(0),
                    )
                    .map_err(&sql)?;
                if next != to_sql_id(trial.trial_id) {
                    return Err(StoreError::TrialIdGap {
                        db: self.path.clone(),
                        run_id,
                        expected: u64::try_from(next).unwrap_or(0),
                        got: trial.trial_id,
                    });
                }
                insert_trial(&tx, &run_id, trial).map_err(&sql)?;
            }
        }
        tx.commit().map_err(&sql)
    }

    fn trials(&self) -> Result<Vec<TrialRecord>, StoreError> {
        let run_id = self.run_id()?;
        let sql = sql_err(&self.path);
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {TRIAL_COLUMNS} FROM trials WHERE run_id = ?1 ORDER BY trial_id"
            ))
            .map_err(&sql)?;
        let raws = stmt
            .query_map([run_id], RawTrial::from_row)
            .map_err(&sql)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(&sql)?;
        raws.into_iter()
            .map(|r| r.into_record().map_err(|m| corrupt(&self.path, m)))
            .collect()
    }

    fn n_finished(&self) -> Result<usize, StoreError> {
        let run_id = self.run_id()?;
        let n: i64 = self
            .conn
            .query_row(
                "SELECT count(*) FROM trials WHERE run_id = ?1 AND status IN ('done', 'failed')",
                [run_id],
                |r| r.get(0),
            )
            .map_err(sql_err(&self.path))?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    fn save_strategy_state(
        &mut self,
        after_trial: u64,
        state: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let run_id = self.run_id()?.to_string();
        let sql = sql_err(&self.path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&sql)?;
        let finished: bool = i64::try_from(after_trial).is_ok()
            && tx
                .query_row(
                    "SELECT count(*) FROM trials WHERE run_id = ?1 AND trial_id = ?2 \
                     AND status IN ('done', 'failed')",
                    rusqlite::params![run_id, to_sql_id(after_trial)],
                    |r| r.get::<_, i64>(0),
                )
                .map_err(&sql)?
                > 0;
        if !finished {
            return Err(StoreError::CheckpointNotFinished {
                db: self.path.clone(),
                run_id,
                after_trial,
            });
        }
        tx.execute(
            "INSERT INTO strategy_state (run_id, after_trial, state) VALUES (?1, ?2, ?3) \
             ON CONFLICT (run_id) DO UPDATE SET after_trial = excluded.after_trial, \
             state = excluded.state",
            rusqlite::params![run_id, to_sql_id(after_trial), json_text(state)],
        )
        .map_err(&sql)?;
        tx.commit().map_err(&sql)
    }

    fn load_strategy_state(&self) -> Result<Option<(u64, serde_json::Value)>, StoreError> {
        let run_id = self.run_id()?;
        let row: Option<(i64, String)> = self
            .conn
            .query_row(
                "SELECT after_trial, state FROM strategy_state WHERE run_id = ?1",
                [run_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(sql_err(&self.path))?;
        row.map(|(after, text)| {
            let after = u64::try_from(after)
                .map_err(|_| corrupt(&self.path, format!("checkpoint after trial {after}")))?;
            let state = json_value("state", &text).map_err(|m| corrupt(&self.path, m))?;
            Ok((after, state))
        })
        .transpose()
    }

    fn find_by_candidate(&self, candidate_id: &str) -> Result<Option<TrialRecord>, StoreError> {
        let run_id = self.run_id()?;
        let raw = self
            .conn
            .query_row(
                &format!(
                    "SELECT {TRIAL_COLUMNS} FROM trials WHERE run_id = ?1 AND candidate_id = ?2 \
                     AND status IN ('done', 'failed') ORDER BY status = 'done' DESC, trial_id \
                     LIMIT 1"
                ),
                [run_id, candidate_id],
                RawTrial::from_row,
            )
            .optional()
            .map_err(sql_err(&self.path))?;
        raw.map(|r| r.into_record().map_err(|m| corrupt(&self.path, m)))
            .transpose()
    }
}

impl WorkQueue for SqliteStore {
    fn claim(&mut self, worker: &str, lease_s: f64) -> Result<Option<Lease>, StoreError> {
        let run_id = self.run_id()?.to_string();
        validate_lease_s(lease_s).map_err(|m| invalid(&self.path, m))?;
        let sql = sql_err(&self.path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&sql)?;
        let claimed: Option<(i64, i64)> = tx
            .query_row(
                &format!(
                    "UPDATE trials SET status = 'running', worker = ?2, \
                     lease_until = {NOW_S} + ?3, attempts = attempts + 1 \
                     WHERE run_id = ?1 AND trial_id = (SELECT min(trial_id) FROM trials \
                     WHERE run_id = ?1 AND status = 'pending') RETURNING trial_id, attempts"
                ),
                rusqlite::params![run_id, worker, lease_s],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(&sql)?;
        let Some((trial_id, attempts)) = claimed else {
            return Ok(None);
        };
        let trial_id = u64::try_from(trial_id)
            .map_err(|_| corrupt(&self.path, format!("negative trial id {trial_id}")))?;
        let attempt = u32::try_from(attempts)
            .map_err(|_| corrupt(&self.path, format!("trial {trial_id}: {attempts} attempts")))?;
        let trial = read_trial(&self.path, &tx, &run_id, trial_id)?.ok_or_else(|| {
            corrupt(
                &self.path,
                format!("trial {trial_id} vanished while claimed"),
            )
        })?;
        tx.commit().map_err(&sql)?;
        Ok(Some(Lease {
            trial,
            worker: worker.to_string(),
            attempt,
        }))
    }

    fn renew(&mut self, lease: &Lease, lease_s: f64) -> Result<(), StoreError> {
        let run_id = self.run_id()?.to_string();
        validate_lease_s(lease_s).map_err(|m| invalid(&self.path, m))?;
        let changed = self
            .conn
            .execute(
                &format!(
                    "UPDATE trials SET lease_until = {NOW_S} + ?3 WHERE run_id = ?1 \
                     AND trial_id = ?2 AND status = 'running' AND worker = ?4 AND attempts = ?5"
                ),
                rusqlite::params![
                    run_id,
                    to_sql_id(lease.trial.trial_id),
                    lease_s,
                    lease.worker,
                    lease.attempt
                ],
            )
            .map_err(sql_err(&self.path))?;
        if changed == 0 {
            return Err(StoreError::LeaseLost {
                db: self.path.clone(),
                run_id,
                trial_id: lease.trial.trial_id,
                worker: lease.worker.clone(),
            });
        }
        Ok(())
    }

    fn finish(&mut self, lease: &Lease, result: &TrialRecord) -> Result<(), StoreError> {
        let run_id = self.run_id()?.to_string();
        validate_finish(lease, result).map_err(|m| invalid(&self.path, m))?;
        let writer = Writer::Worker {
            worker: &lease.worker,
            attempt: lease.attempt,
        };
        let changed =
            update_trial(&self.conn, &run_id, result, &writer).map_err(sql_err(&self.path))?;
        if changed == 0 {
            return Err(StoreError::LeaseLost {
                db: self.path.clone(),
                run_id,
                trial_id: lease.trial.trial_id,
                worker: lease.worker.clone(),
            });
        }
        Ok(())
    }

    fn requeue_expired(&mut self, max_attempts: u32) -> Result<Expired, StoreError> {
        let run_id = self.run_id()?.to_string();
        let sql = sql_err(&self.path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&sql)?;
        let rows: Vec<(i64, i64, Option<String>)> = {
            let mut stmt = tx
                .prepare(&format!(
                    "SELECT trial_id, attempts, worker FROM trials WHERE run_id = ?1 \
                     AND status = 'running' AND lease_until IS NOT NULL \
                     AND lease_until <= {NOW_S} ORDER BY trial_id"
                ))
                .map_err(&sql)?;
            let rows = stmt
                .query_map([&run_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(&sql)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(&sql)?;
            rows
        };
        let mut expired = Expired::default();
        for (trial_id, attempts, worker) in rows {
            let attempts = u32::try_from(attempts).unwrap_or(u32::MAX);
            if attempts >= max_attempts {
                tx.execute(
                    "UPDATE trials SET status = 'failed', fail_reason = ?3, lease_until = NULL \
                     WHERE run_id = ?1 AND trial_id = ?2",
                    rusqlite::params![
                        run_id,
                        trial_id,
                        expired_reason(attempts, worker.as_deref())
                    ],
                )
                .map_err(&sql)?;
                expired.failed.push(trial_id as u64);
            } else {
                tx.execute(
                    "UPDATE trials SET status = 'pending', worker = NULL, lease_until = NULL \
                     WHERE run_id = ?1 AND trial_id = ?2",
                    rusqlite::params![run_id, trial_id],
                )
                .map_err(&sql)?;
                expired.requeued.push(trial_id as u64);
            }
        }
        tx.commit().map_err(&sql)?;
        Ok(expired)
    }

    fn running(&self) -> Result<Vec<RunningTrial>, StoreError> {
        let run_id = self.run_id()?;
        let sql = sql_err(&self.path);
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT trial_id, worker, attempts, lease_until - {NOW_S} FROM trials \
                 WHERE run_id = ?1 AND status = 'running' ORDER BY trial_id"
            ))
            .map_err(&sql)?;
        let rows = stmt
            .query_map([run_id], |r| {
                Ok(RunningTrial {
                    trial_id: r.get::<_, i64>(0)? as u64,
                    worker: r.get(1)?,
                    attempts: r.get(2)?,
                    lease_left_s: r.get(3)?,
                })
            })
            .map_err(&sql)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(&sql)?;
        Ok(rows)
    }
}

#[cfg(test)]
impl SqliteStore {
    /// The connection, for tests that look at pragmas and raw rows.
    pub(super) fn connection(&self) -> &Connection {
        &self.conn
    }
}
