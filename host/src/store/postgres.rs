//! [`PostgresStore`]: the trial store in a PostgreSQL database, for many workers on many
//! machines sharing one search.
//!
//! Same data model and rules as the SQLite store (the shared test suite runs on both); what
//! differs is concurrency. Every write that checks before it writes (`record_trial`'s id
//! checks, a checkpoint) first locks its run's row, so writers of one run queue up behind each
//! other, while workers claim trials concurrently with `FOR UPDATE SKIP LOCKED`: two workers
//! never get the same trial and never wait for each other. Lease times come from the server's
//! clock (`clock_timestamp()`), so the workers' clocks do not matter.
//!
//! Schema: ecgnas's tables carry the prefix `ecgnas_`, in the first schema of the connection's
//! `search_path` (`?options=-csearch_path%3Dmyschema` in the URL chooses another), so the store
//! can share a database with other applications. `MIGRATIONS` is applied as in the SQLite
//! store, under an advisory lock, so that workers starting together migrate once.
//!
//! Connections are plain TCP (no TLS): run the store on the cluster's private network, or
//! reach it through a tunnel.

use super::rows::{
    fail_reason, json_text, json_value, seed_to_sql, static_status, to_sql_id, RawRun, RawTrial,
};
use super::{
    expired_reason, run_differences, validate_finish, validate_lease_s, validate_trial, Expired,
    Lease, RunInfo, RunState, RunningTrial, StoreError, TrialRecord, TrialStore, WorkQueue,
};
use postgres::types::ToSql;
use postgres::{Client, NoTls, Row};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// The schema version this ecgnas writes (the number of migration steps).
pub const POSTGRES_SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The key of the advisory lock taken while migrating ("ECNS").
const MIGRATION_LOCK: i64 = 0x4543_4E53;

/// How long connecting may take when the URL does not say (`connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The migration steps, oldest first. Never edit a step that has shipped; append one.
const MIGRATIONS: &[&str] = &[
    // Version 1: runs, trials (with the work queue's lease columns), strategy checkpoints.
    "CREATE TABLE ecgnas_schema_version (version INTEGER NOT NULL);
     CREATE TABLE ecgnas_runs (
         run_id         TEXT PRIMARY KEY,
         created_at     TEXT NOT NULL,
         task           TEXT NOT NULL,
         data           TEXT NOT NULL,
         profile        TEXT NOT NULL,
         strategy       TEXT NOT NULL,
         seed           BIGINT NOT NULL,
         budget         TEXT NOT NULL CHECK (budget::json IS NOT NULL),
         space          TEXT NOT NULL CHECK (space::json IS NOT NULL),
         ecgnas_version TEXT NOT NULL
     );
     CREATE TABLE ecgnas_trials (
         run_id       TEXT NOT NULL REFERENCES ecgnas_runs (run_id),
         trial_id     BIGINT NOT NULL CHECK (trial_id >= 0),
         candidate_id TEXT NOT NULL,
         candidate    TEXT NOT NULL CHECK (candidate::json IS NOT NULL),
         status       TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
         fail_reason  TEXT CHECK ((status = 'failed') = (fail_reason IS NOT NULL)),
         quality      DOUBLE PRECISION,
         metrics      TEXT NOT NULL CHECK (metrics::json IS NOT NULL),
         costs        TEXT NOT NULL CHECK (costs::json IS NOT NULL),
         reward       DOUBLE PRECISION,
         feasible     BOOLEAN,
         wall_s       DOUBLE PRECISION,
         seed         BIGINT NOT NULL,
         started_at   TEXT,
         finished_at  TEXT,
         worker       TEXT,
         lease_until  DOUBLE PRECISION,
         attempts     INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
         PRIMARY KEY (run_id, trial_id)
     );
     CREATE INDEX ecgnas_trials_by_candidate ON ecgnas_trials (run_id, candidate_id);
     CREATE INDEX ecgnas_trials_by_status ON ecgnas_trials (run_id, status, trial_id);
     CREATE TABLE ecgnas_strategy_state (
         run_id      TEXT PRIMARY KEY REFERENCES ecgnas_runs (run_id),
         after_trial BIGINT NOT NULL,
         state       TEXT NOT NULL CHECK (state::json IS NOT NULL)
     );",
];

/// The server's clock, in seconds since 1970, as an SQL expression.
const NOW_S: &str = "extract(epoch FROM clock_timestamp())::double precision";

/// The columns of a trial, in the order [`raw_trial`] reads them.
const TRIAL_COLUMNS: &str = "trial_id, candidate_id, candidate, status, fail_reason, quality, \
     metrics, costs, reward, feasible, wall_s, seed, started_at, finished_at";

/// The columns of a run, in the order [`raw_run`] reads them.
const RUN_COLUMNS: &str =
    "run_id, created_at, task, data, profile, strategy, seed, budget, space, ecgnas_version";

/// A trial store in a PostgreSQL database.
pub struct PostgresStore {
    /// The URL without its password, as errors name the store.
    location: PathBuf,
    /// One connection; behind a lock because reads take `&self` and the client `&mut`.
    client: Mutex<Client>,
    run_id: Option<String>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("location", &self.location)
            .field("run_id", &self.run_id)
            .finish()
    }
}

/// `url` with its password, if any, replaced by `***`.
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        if let Some((userinfo, host)) = authority.rsplit_once('@') {
            if let Some((user, _password)) = userinfo.split_once(':') {
                return format!("{scheme}://{user}:***@{host}{tail}");
            }
        }
        return url.to_string();
    }
    // key=value form: `host=... password=secret ...`.
    url.split_whitespace()
        .map(|kv| match kv.split_once('=') {
            Some(("password", _)) => "password=***".to_string(),
            _ => kv.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/dbname`),
    /// creating ecgnas's tables if absent and bringing an older schema up to date.
    pub fn open(url: &str) -> Result<PostgresStore, StoreError> {
        let location = PathBuf::from(redact_url(url));
        let pg = pg_err(&location);
        let mut config: postgres::Config = url.parse().map_err(&pg)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.application_name("ecgnas");
        let mut client = config.connect(NoTls).map_err(&pg)?;
        migrate(&location, &mut client)?;
        drop(pg);
        Ok(PostgresStore {
            location,
            client: Mutex::new(client),
            run_id: None,
        })
    }

    /// The schema version of the database (always [`POSTGRES_SCHEMA_VERSION`] once opened).
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        let mut client = self.client();
        let row = client
            .query_one(
                "SELECT max(version)::bigint FROM ecgnas_schema_version",
                &[],
            )
            .map_err(pg_err(&self.location))?;
        row.try_get(0).map_err(pg_err(&self.location))
    }

    fn client(&self) -> std::sync::MutexGuard<'_, Client> {
        // A panic while the lock was held cannot leave the connection half-used in a way the
        // server does not already undo (an open transaction is rolled back on its drop).
        self.client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn run_id(&self) -> Result<String, StoreError> {
        self.run_id.clone().ok_or_else(|| StoreError::NoRun {
            db: self.location.clone(),
        })
    }

    fn corrupt(&self, message: String) -> StoreError {
        StoreError::Corrupt {
            db: self.location.clone(),
            message,
        }
    }

    fn invalid(&self, message: String) -> StoreError {
        StoreError::Invalid {
            db: self.location.clone(),
            message,
        }
    }

    fn lease_lost(&self, run_id: String, lease: &Lease) -> StoreError {
        StoreError::LeaseLost {
            db: self.location.clone(),
            run_id,
            trial_id: lease.trial.trial_id,
            worker: lease.worker.clone(),
        }
    }
}

/// Turns the client's errors into the store's, naming the server.
fn pg_err(location: &Path) -> impl Fn(postgres::Error) -> StoreError + '_ {
    move |source| StoreError::Postgres {
        db: location.to_path_buf(),
        source,
    }
}

/// Creates or updates the schema, in one transaction, one migrating process at a time.
fn migrate(location: &Path, client: &mut Client) -> Result<(), StoreError> {
    let pg = pg_err(location);
    let mut tx = client.transaction().map_err(&pg)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(&pg)?;
    let exists: bool = tx
        .query_one(
            "SELECT to_regclass('ecgnas_schema_version') IS NOT NULL",
            &[],
        )
        .and_then(|r| r.try_get(0))
        .map_err(&pg)?;
    let version: i64 = if exists {
        tx.query_one(
            "SELECT coalesce(max(version), 0)::bigint FROM ecgnas_schema_version",
            &[],
        )
        .and_then(|r| r.try_get(0))
        .map_err(&pg)?
    } else {
        0
    };
    if version > POSTGRES_SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            db: location.to_path_buf(),
            found: version,
            supported: POSTGRES_SCHEMA_VERSION,
        });
    }
    if version == POSTGRES_SCHEMA_VERSION {
        return tx.commit().map_err(&pg);
    }
    for step in MIGRATIONS
        .iter()
        .skip(usize::try_from(version).unwrap_or(0))
    {
        tx.batch_execute(step).map_err(&pg)?;
    }
    tx.execute("DELETE FROM ecgnas_schema_version", &[])
        .map_err(&pg)?;
    tx.execute(
        "INSERT INTO ecgnas_schema_version (version) VALUES ($1)",
        &[&(POSTGRES_SCHEMA_VERSION as i32)],
    )
    .map_err(&pg)?;
    tx.commit().map_err(&pg)
}

/// A trial's row, in [`TRIAL_COLUMNS`] order from column `at`.
fn raw_trial(row: &Row, at: usize) -> Result<RawTrial, postgres::Error> {
    Ok(RawTrial {
        trial_id: row.try_get(at)?,
        candidate_id: row.try_get(at + 1)?,
        candidate: row.try_get(at + 2)?,
        status: row.try_get(at + 3)?,
        fail_reason: row.try_get(at + 4)?,
        quality: row.try_get(at + 5)?,
        metrics: row.try_get(at + 6)?,
        costs: row.try_get(at + 7)?,
        reward: row.try_get(at + 8)?,
        feasible: row.try_get(at + 9)?,
        wall_s: row.try_get(at + 10)?,
        seed: row.try_get(at + 11)?,
        started_at: row.try_get(at + 12)?,
        finished_at: row.try_get(at + 13)?,
    })
}

/// A run's row, in [`RUN_COLUMNS`] order.
fn raw_run(row: &Row) -> Result<RawRun, postgres::Error> {
    Ok(RawRun {
        run_id: row.try_get(0)?,
        created_at: row.try_get(1)?,
        task: row.try_get(2)?,
        data: row.try_get(3)?,
        profile: row.try_get(4)?,
        strategy: row.try_get(5)?,
        seed: row.try_get(6)?,
        budget: row.try_get(7)?,
        space: row.try_get(8)?,
        ecgnas_version: row.try_get(9)?,
    })
}

/// A trial's columns as SQL values, in [`TRIAL_COLUMNS`] order after the run id (`$1`).
struct TrialParams<'a> {
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

impl<'a> TrialParams<'a> {
    fn new(run_id: &'a str, trial: &'a TrialRecord) -> TrialParams<'a> {
        TrialParams {
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

    /// `$1` the run, `$2..$15` the columns.
    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        let t = self.trial;
        vec![
            &self.run_id,
            &self.trial_id,
            &t.candidate_id,
            &self.candidate,
            &self.status,
            &self.fail_reason,
            &t.quality,
            &self.metrics,
            &self.costs,
            &t.reward,
            &t.feasible,
            &t.wall_s,
            &self.seed,
            &t.started_at,
            &t.finished_at,
        ]
    }
}

/// Rewrites every column of the trial's row from `$3` on (see [`TrialParams::params`]).
const UPDATE_TRIAL: &str = "UPDATE ecgnas_trials SET candidate_id = $3, candidate = $4, \
     status = $5, fail_reason = $6, quality = $7, metrics = $8, costs = $9, reward = $10, \
     feasible = $11, wall_s = $12, seed = $13, started_at = $14, finished_at = $15, \
     lease_until = NULL";

impl TrialStore for PostgresStore {
    fn location(&self) -> &Path {
        &self.location
    }

    fn create_or_open_run(&mut self, info: &RunInfo) -> Result<RunState, StoreError> {
        self.run_id = None;
        let pg = pg_err(&self.location);
        let mut client = self.client();
        let mut tx = client.transaction().map_err(&pg)?;
        // A new run's row, unless it exists; then the stored one, locked, to compare.
        let created = tx
            .query_opt(
                &format!(
                    "INSERT INTO ecgnas_runs ({RUN_COLUMNS}) VALUES \
                     ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (run_id) DO NOTHING \
                     RETURNING run_id"
                ),
                &[
                    &info.run_id,
                    &info.created_at,
                    &info.task,
                    &info.data,
                    &info.profile,
                    &info.strategy,
                    &seed_to_sql(info.seed),
                    &json_text(&info.budget),
                    &json_text(&info.space),
                    &info.ecgnas_version,
                ],
            )
            .map_err(&pg)?
            .is_some();
        let row = tx
            .query_one(
                &format!("SELECT {RUN_COLUMNS} FROM ecgnas_runs WHERE run_id = $1 FOR UPDATE"),
                &[&info.run_id],
            )
            .map_err(&pg)?;
        let stored = raw_run(&row)
            .map_err(&pg)?
            .into_info()
            .map_err(|m| self.corrupt(m))?;
        if !created {
            let differences = run_differences(&stored, info);
            if !differences.is_empty() {
                return Err(StoreError::RunMismatch {
                    db: self.location.clone(),
                    run_id: info.run_id.clone(),
                    differences,
                });
            }
        }
        let counts = tx
            .query_one(
                "SELECT count(*) FILTER (WHERE status IN ('done', 'failed')), \
                 coalesce(max(trial_id) + 1, 0) FROM ecgnas_trials WHERE run_id = $1",
                &[&info.run_id],
            )
            .map_err(&pg)?;
        let n_finished: i64 = counts.try_get(0).map_err(&pg)?;
        let next: i64 = counts.try_get(1).map_err(&pg)?;
        let unfinished = tx
            .query(
                "SELECT trial_id FROM ecgnas_trials WHERE run_id = $1 \
                 AND status IN ('pending', 'running') ORDER BY trial_id",
                &[&info.run_id],
            )
            .map_err(&pg)?
            .iter()
            .map(|r| r.try_get::<_, i64>(0).map(|id| id as u64))
            .collect::<Result<Vec<u64>, _>>()
            .map_err(&pg)?;
        tx.commit().map_err(&pg)?;
        drop(client);
        self.run_id = Some(info.run_id.clone());
        Ok(RunState {
            resumed: !created,
            run: if created { info.clone() } else { stored },
            n_finished: usize::try_from(n_finished).unwrap_or(0),
            next_trial_id: u64::try_from(next).unwrap_or(0),
            unfinished,
        })
    }

    fn runs(&self) -> Result<Vec<RunInfo>, StoreError> {
        let pg = pg_err(&self.location);
        let rows = self
            .client()
            .query(
                &format!("SELECT {RUN_COLUMNS} FROM ecgnas_runs ORDER BY run_id"),
                &[],
            )
            .map_err(&pg)?;
        rows.iter()
            .map(|r| {
                raw_run(r)
                    .map_err(&pg)?
                    .into_info()
                    .map_err(|m| self.corrupt(m))
            })
            .collect()
    }

    fn record_trial(&mut self, trial: &TrialRecord) -> Result<(), StoreError> {
        let run_id = self.run_id()?;
        validate_trial(trial).map_err(|m| self.invalid(m))?;
        let pg = pg_err(&self.location);
        let mut client = self.client();
        let mut tx = client.transaction().map_err(&pg)?;
        lock_run(&mut tx, &run_id).map_err(&pg)?;
        let existing: Option<String> = tx
            .query_opt(
                "SELECT status FROM ecgnas_trials WHERE run_id = $1 AND trial_id = $2",
                &[&run_id, &to_sql_id(trial.trial_id)],
            )
            .map_err(&pg)?
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(&pg)?;
        let row = TrialParams::new(&run_id, trial);
        match existing.as_deref() {
            Some(status @ ("done" | "failed")) => {
                return Err(StoreError::DuplicateTrial {
                    db: self.location.clone(),
                    run_id: run_id.clone(),
                    trial_id: trial.trial_id,
                    status: static_status(status),
                });
            }
            Some(_) => {
                tx.execute(
                    &format!("{UPDATE_TRIAL}, worker = NULL WHERE run_id = $1 AND trial_id = $2"),
                    &row.params(),
                )
                .map_err(&pg)?;
            }
            None => {
                let next: i64 = tx
                    .query_one(
                        "SELECT coalesce(max(trial_id) + 1, 0) FROM ecgnas_trials WHERE run_id = $1",
                        &[&run_id],
                    )
                    .and_then(|r| r.try_get(0))
                    .map_err(&pg)?;
                if next != to_sql_id(trial.trial_id) {
                    return Err(StoreError::TrialIdGap {
                        db: self.location.clone(),
                        run_id: run_id.clone(),
                        expected: u64::try_from(next).unwrap_or(0),
                        got: trial.trial_id,
                    });
                }
                tx.execute(
                    &format!(
                        "INSERT INTO ecgnas_trials (run_id, {TRIAL_COLUMNS}) VALUES ($1, $2, \
                         $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
                    ),
                    &row.params(),
                )
                .map_err(&pg)?;
            }
        }
        tx.commit().map_err(&pg)
    }

    fn trials(&self) -> Result<Vec<TrialRecord>, StoreError> {
        let run_id = self.run_id()?;
        let pg = pg_err(&self.location);
        let rows = self
            .client()
            .query(
                &format!(
                    "SELECT {TRIAL_COLUMNS} FROM ecgnas_trials WHERE run_id = $1 ORDER BY trial_id"
                ),
                &[&run_id],
            )
            .map_err(&pg)?;
        rows.iter()
            .map(|r| {
                raw_trial(r, 0)
                    .map_err(&pg)?
                    .into_record()
                    .map_err(|m| self.corrupt(m))
            })
            .collect()
    }

    fn n_finished(&self) -> Result<usize, StoreError> {
        let run_id = self.run_id()?;
        let pg = pg_err(&self.location);
        let n: i64 = self
            .client()
            .query_one(
                "SELECT count(*) FROM ecgnas_trials WHERE run_id = $1 \
                 AND status IN ('done', 'failed')",
                &[&run_id],
            )
            .and_then(|r| r.try_get(0))
            .map_err(&pg)?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    fn save_strategy_state(
        &mut self,
        after_trial: u64,
        state: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let run_id = self.run_id()?;
        let pg = pg_err(&self.location);
        let mut client = self.client();
        let mut tx = client.transaction().map_err(&pg)?;
        lock_run(&mut tx, &run_id).map_err(&pg)?;
        let finished = i64::try_from(after_trial).is_ok()
            && tx
                .query_one(
                    "SELECT count(*) FROM ecgnas_trials WHERE run_id = $1 AND trial_id = $2 \
                     AND status IN ('done', 'failed')",
                    &[&run_id, &to_sql_id(after_trial)],
                )
                .and_then(|r| r.try_get::<_, i64>(0))
                .map_err(&pg)?
                > 0;
        if !finished {
            return Err(StoreError::CheckpointNotFinished {
                db: self.location.clone(),
                run_id: run_id.clone(),
                after_trial,
            });
        }
        tx.execute(
            "INSERT INTO ecgnas_strategy_state (run_id, after_trial, state) VALUES ($1, $2, $3) \
             ON CONFLICT (run_id) DO UPDATE SET after_trial = excluded.after_trial, \
             state = excluded.state",
            &[&run_id, &to_sql_id(after_trial), &json_text(state)],
        )
        .map_err(&pg)?;
        tx.commit().map_err(&pg)
    }

    fn load_strategy_state(&self) -> Result<Option<(u64, serde_json::Value)>, StoreError> {
        let run_id = self.run_id()?;
        let pg = pg_err(&self.location);
        let row = self
            .client()
            .query_opt(
                "SELECT after_trial, state FROM ecgnas_strategy_state WHERE run_id = $1",
                &[&run_id],
            )
            .map_err(&pg)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let after: i64 = row.try_get(0).map_err(&pg)?;
        let text: String = row.try_get(1).map_err(&pg)?;
        let after = u64::try_from(after)
            .map_err(|_| self.corrupt(format!("checkpoint after trial {after}")))?;
        let state = json_value("state", &text).map_err(|m| self.corrupt(m))?;
        Ok(Some((after, state)))
    }

    fn find_by_candidate(&self, candidate_id: &str) -> Result<Option<TrialRecord>, StoreError> {
        let run_id = self.run_id()?;
        let pg = pg_err(&self.location);
        let row = self
            .client()
            .query_opt(
                &format!(
                    "SELECT {TRIAL_COLUMNS} FROM ecgnas_trials WHERE run_id = $1 \
                     AND candidate_id = $2 AND status IN ('done', 'failed') \
                     ORDER BY status = 'done' DESC, trial_id LIMIT 1"
                ),
                &[&run_id, &candidate_id],
            )
            .map_err(&pg)?;
        row.map(|r| {
            raw_trial(&r, 0)
                .map_err(&pg)?
                .into_record()
                .map_err(|m| self.corrupt(m))
        })
        .transpose()
    }
}

/// Locks the run's row until the transaction ends: writers of one run take turns.
fn lock_run(tx: &mut postgres::Transaction<'_>, run_id: &str) -> Result<(), postgres::Error> {
    tx.execute(
        "SELECT 1 FROM ecgnas_runs WHERE run_id = $1 FOR UPDATE",
        &[&run_id],
    )
    .map(|_| ())
}

impl WorkQueue for PostgresStore {
    fn claim(&mut self, worker: &str, lease_s: f64) -> Result<Option<Lease>, StoreError> {
        let run_id = self.run_id()?;
        validate_lease_s(lease_s).map_err(|m| self.invalid(m))?;
        let pg = pg_err(&self.location);
        // The lowest pending trial no other claim holds; one statement, one transaction.
        let row = self
            .client()
            .query_opt(
                &format!(
                    "UPDATE ecgnas_trials SET status = 'running', worker = $2, \
                     lease_until = {NOW_S} + $3, attempts = attempts + 1 \
                     WHERE run_id = $1 AND trial_id = (SELECT trial_id FROM ecgnas_trials \
                     WHERE run_id = $1 AND status = 'pending' ORDER BY trial_id LIMIT 1 \
                     FOR UPDATE SKIP LOCKED) RETURNING attempts, {TRIAL_COLUMNS}"
                ),
                &[&run_id, &worker, &lease_s],
            )
            .map_err(&pg)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let attempts: i32 = row.try_get(0).map_err(&pg)?;
        let trial = raw_trial(&row, 1)
            .map_err(&pg)?
            .into_record()
            .map_err(|m| self.corrupt(m))?;
        let attempt = u32::try_from(attempts)
            .map_err(|_| self.corrupt(format!("trial {}: {attempts} attempts", trial.trial_id)))?;
        Ok(Some(Lease {
            trial,
            worker: worker.to_string(),
            attempt,
        }))
    }

    fn renew(&mut self, lease: &Lease, lease_s: f64) -> Result<(), StoreError> {
        let run_id = self.run_id()?;
        validate_lease_s(lease_s).map_err(|m| self.invalid(m))?;
        let attempt = i32::try_from(lease.attempt).unwrap_or(i32::MAX);
        let changed = self
            .client()
            .execute(
                &format!(
                    "UPDATE ecgnas_trials SET lease_until = {NOW_S} + $3 WHERE run_id = $1 \
                     AND trial_id = $2 AND status = 'running' AND worker = $4 AND attempts = $5"
                ),
                &[
                    &run_id,
                    &to_sql_id(lease.trial.trial_id),
                    &lease_s,
                    &lease.worker,
                    &attempt,
                ],
            )
            .map_err(pg_err(&self.location))?;
        if changed == 0 {
            return Err(self.lease_lost(run_id, lease));
        }
        Ok(())
    }

    fn finish(&mut self, lease: &Lease, result: &TrialRecord) -> Result<(), StoreError> {
        let run_id = self.run_id()?;
        validate_finish(lease, result).map_err(|m| self.invalid(m))?;
        let row = TrialParams::new(&run_id, result);
        let attempt = i32::try_from(lease.attempt).unwrap_or(i32::MAX);
        let mut params = row.params();
        params.push(&lease.worker);
        params.push(&attempt);
        let changed = self
            .client()
            .execute(
                &format!(
                    "{UPDATE_TRIAL} WHERE run_id = $1 AND trial_id = $2 AND status = 'running' \
                     AND worker = $16 AND attempts = $17"
                ),
                &params,
            )
            .map_err(pg_err(&self.location))?;
        if changed == 0 {
            return Err(self.lease_lost(run_id, lease));
        }
        Ok(())
    }

    fn requeue_expired(&mut self, max_attempts: u32) -> Result<Expired, StoreError> {
        let run_id = self.run_id()?;
        let pg = pg_err(&self.location);
        let max_attempts = i32::try_from(max_attempts).unwrap_or(i32::MAX);
        let mut client = self.client();
        let mut tx = client.transaction().map_err(&pg)?;
        // Locked rows are re-checked once their lock is free: a worker that finished in the
        // meantime keeps its result.
        let rows = tx
            .query(
                &format!(
                    "SELECT trial_id, attempts, worker FROM ecgnas_trials WHERE run_id = $1 \
                     AND status = 'running' AND lease_until IS NOT NULL \
                     AND lease_until <= {NOW_S} ORDER BY trial_id FOR UPDATE"
                ),
                &[&run_id],
            )
            .map_err(&pg)?;
        let mut expired = Expired::default();
        for r in &rows {
            let trial_id: i64 = r.try_get(0).map_err(&pg)?;
            let attempts: i32 = r.try_get(1).map_err(&pg)?;
            let worker: Option<String> = r.try_get(2).map_err(&pg)?;
            if attempts >= max_attempts {
                let reason =
                    expired_reason(u32::try_from(attempts).unwrap_or(0), worker.as_deref());
                tx.execute(
                    "UPDATE ecgnas_trials SET status = 'failed', fail_reason = $3, \
                     lease_until = NULL WHERE run_id = $1 AND trial_id = $2",
                    &[&run_id, &trial_id, &reason],
                )
                .map_err(&pg)?;
                expired.failed.push(trial_id as u64);
            } else {
                tx.execute(
                    "UPDATE ecgnas_trials SET status = 'pending', worker = NULL, \
                     lease_until = NULL WHERE run_id = $1 AND trial_id = $2",
                    &[&run_id, &trial_id],
                )
                .map_err(&pg)?;
                expired.requeued.push(trial_id as u64);
            }
        }
        tx.commit().map_err(&pg)?;
        Ok(expired)
    }

    fn running(&self) -> Result<Vec<RunningTrial>, StoreError> {
        let run_id = self.run_id()?;
        let pg = pg_err(&self.location);
        let rows = self
            .client()
            .query(
                &format!(
                    "SELECT trial_id, worker, attempts, lease_until - {NOW_S} FROM ecgnas_trials \
                     WHERE run_id = $1 AND status = 'running' ORDER BY trial_id"
                ),
                &[&run_id],
            )
            .map_err(&pg)?;
        rows.iter()
            .map(|r| {
                Ok(RunningTrial {
                    trial_id: r.try_get::<_, i64>(0)? as u64,
                    worker: r.try_get(1)?,
                    attempts: u32::try_from(r.try_get::<_, i32>(2)?).unwrap_or(0),
                    lease_left_s: r.try_get(3)?,
                })
            })
            .collect::<Result<Vec<_>, postgres::Error>>()
            .map_err(&pg)
    }
}

impl PostgresStore {
    /// Makes this connection the run's only coordinator until it closes (a killed coordinator's
    /// connection closes with it): a second coordinator of the run gets
    /// [`StoreError::RunBusy`].
    pub fn lock_as_coordinator(&mut self) -> Result<(), StoreError> {
        let run_id = self.run_id()?;
        let pg = pg_err(&self.location);
        let locked: bool = self
            .client()
            .query_one(
                // Per schema: runs of the same name in two schemas are two runs.
                "SELECT pg_try_advisory_lock($1, hashtext(current_schema() || '/' || $2))",
                &[&(MIGRATION_LOCK as i32), &run_id],
            )
            .and_then(|r| r.try_get(0))
            .map_err(&pg)?;
        if !locked {
            return Err(StoreError::RunBusy {
                db: self.location.clone(),
                run_id,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
impl PostgresStore {
    /// Runs `sql` on the store's connection, for tests that tamper with the schema.
    pub(super) fn execute_raw(&self, sql: &str) -> Result<(), postgres::Error> {
        self.client().batch_execute(sql)
    }
}
