//! Tests of the trial store: one suite that every store must pass (run on [`MemoryStore`] and
//! [`SqliteStore`]), a property test that the two answer every sequence of calls alike, and
//! the SQLite store's own tests (reopening, schema versions, a `kill -9` in the middle of a
//! search).

use super::*;
use proptest::prelude::*;
use serde_json::json;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

// ----- fixtures -------------------------------------------------------------------------------

fn run_info(run_id: &str, task: &str) -> RunInfo {
    RunInfo {
        run_id: run_id.to_string(),
        created_at: "2025-01-02T03:04:05Z".to_string(),
        task: task.to_string(),
        data: "synthetic".to_string(),
        profile: "nrf52840".to_string(),
        strategy: "rl".to_string(),
        seed: 42,
        budget: json!({"trials": 20}),
        space: json!({"version": 1, "blocks": [1, 8], "kernels": [3, 5, 7]}),
        ecgnas_version: "0.1.0".to_string(),
    }
}

/// A trial whose every field is set and depends on its id and status.
fn trial(id: u64, status: TrialStatus) -> TrialRecord {
    let finished = status == TrialStatus::Done;
    TrialRecord {
        trial_id: id,
        candidate_id: format!("cand-{id}"),
        candidate: json!({
            "pre": {"decimation": 2, "window_s": 10.0, "norm": "zscore"},
            "blocks": [{"kind": "dw", "channels": 16 + id, "kernel": 5}],
        }),
        quality: finished.then_some(0.5 + id as f64 / 1000.0),
        metrics: if finished {
            json!({"f1": [0.1, 0.2, 1.0 / 3.0], "auroc": 0.75})
        } else {
            serde_json::Value::Null
        },
        costs: json!({"latency_ms": 12.5, "flash_bytes": 65_536, "sram_bytes": 20_000}),
        reward: finished.then_some(-0.25),
        feasible: finished.then_some(matches!(id % 4, 0 | 3)),
        wall_s: finished.then_some(3.25),
        seed: 1_000 + id,
        started_at: Some(format!("2025-01-02T03:{:02}:00Z", id % 60)),
        finished_at: finished.then(|| format!("2025-01-02T04:{:02}:00Z", id % 60)),
        status,
    }
}

fn done(id: u64) -> TrialRecord {
    trial(id, TrialStatus::Done)
}

fn failed(id: u64, reason: &str) -> TrialRecord {
    TrialRecord {
        status: TrialStatus::Failed {
            reason: reason.to_string(),
        },
        ..trial(id, TrialStatus::Running)
    }
}

fn with_candidate(mut t: TrialRecord, candidate_id: &str) -> TrialRecord {
    t.candidate_id = candidate_id.to_string();
    t
}

// ----- the shared suite -----------------------------------------------------------------------

/// Every field, including the extremes, comes back as written.
fn round_trip_every_field(store: &mut dyn WorkQueue) {
    let info = RunInfo {
        seed: u64::MAX,
        data: "/données/ecg «mitdb»".to_string(),
        ..run_info("r", "mitdb-aami")
    };
    let state = store.create_or_open_run(&info).unwrap();
    assert_eq!(
        state,
        RunState {
            resumed: false,
            run: info.clone(),
            n_finished: 0,
            next_trial_id: 0,
            unfinished: vec![],
        }
    );
    assert_eq!(store.runs().unwrap(), vec![info]);
    let all_none = TrialRecord {
        trial_id: 3,
        candidate_id: String::new(),
        candidate: json!(null),
        status: TrialStatus::Pending,
        quality: None,
        metrics: json!({}),
        costs: json!([]),
        reward: None,
        feasible: None,
        wall_s: None,
        seed: 0,
        started_at: None,
        finished_at: None,
    };
    let extremes = TrialRecord {
        trial_id: 4,
        candidate_id: "ünïcødé ✓ 'quoted' \"too\"".to_string(),
        candidate: json!({"z": 1, "a": [1.5e-300, -0.0, 123456789012345678u64, -9i64], "m": "x"}),
        quality: Some(f64::MIN_POSITIVE),
        reward: Some(f64::NEG_INFINITY),
        wall_s: Some(f64::INFINITY),
        feasible: Some(false),
        seed: u64::MAX,
        ..done(4)
    };
    let trials = vec![
        done(0),
        failed(1, "out of memory: 3 GiB"),
        trial(2, TrialStatus::Running),
        all_none,
        extremes,
    ];
    for t in &trials {
        store.record_trial(t).unwrap();
    }
    let back = store.trials().unwrap();
    assert_eq!(back, trials);
    // Key order inside JSON objects is kept.
    assert_eq!(
        back[4].candidate.to_string(),
        trials[4].candidate.to_string()
    );
    assert_eq!(back[4].reward, Some(f64::NEG_INFINITY));
    assert_eq!(back[4].seed, u64::MAX);
}

/// A finished trial is never written twice, whatever the new status; an unfinished one is
/// replaced.
fn duplicate_trial_ids_are_rejected(store: &mut dyn WorkQueue) {
    store.create_or_open_run(&run_info("r", "t")).unwrap();
    store.record_trial(&done(0)).unwrap();
    store.record_trial(&failed(1, "diverged")).unwrap();
    for again in [
        done(0),
        failed(0, "x"),
        trial(0, TrialStatus::Running),
        trial(0, TrialStatus::Pending),
    ] {
        let err = store.record_trial(&again).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::DuplicateTrial {
                    trial_id: 0,
                    status: "done",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("trial 0"), "{err}");
    }
    let err = store.record_trial(&done(1)).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::DuplicateTrial {
                trial_id: 1,
                status: "failed",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        store.trials().unwrap(),
        vec![done(0), failed(1, "diverged")]
    );
    assert_eq!(store.n_finished().unwrap(), 2);
}

/// An unfinished trial is replaced entirely (that is how an interrupted trial is re-run).
fn unfinished_trials_are_replaced(store: &mut dyn WorkQueue) {
    store.create_or_open_run(&run_info("r", "t")).unwrap();
    store.record_trial(&done(0)).unwrap();
    store.record_trial(&trial(1, TrialStatus::Pending)).unwrap();
    store.record_trial(&trial(1, TrialStatus::Running)).unwrap();
    let rerun = with_candidate(done(1), "another");
    store.record_trial(&rerun).unwrap();
    assert_eq!(store.trials().unwrap(), vec![done(0), rerun]);
}

/// New trials take the next id: no hole, no id from the future.
fn trial_ids_are_contiguous(store: &mut dyn WorkQueue) {
    store.create_or_open_run(&run_info("r", "t")).unwrap();
    let err = store.record_trial(&done(1)).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::TrialIdGap {
                expected: 0,
                got: 1,
                ..
            }
        ),
        "{err}"
    );
    store.record_trial(&done(0)).unwrap();
    let err = store.record_trial(&done(2)).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::TrialIdGap {
                expected: 1,
                got: 2,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(store.trials().unwrap(), vec![done(0)]);
}

/// A run resumed with another task (or seed, profile, ...) is refused, naming each
/// difference; the budget and the start time may differ.
fn resume_with_other_arguments_is_rejected(store: &mut dyn WorkQueue) {
    let info = run_info("r", "cinc2017");
    store.create_or_open_run(&info).unwrap();
    store.record_trial(&done(0)).unwrap();

    let other_task = run_info("r", "mitdb-aami");
    let err = store.create_or_open_run(&other_task).unwrap_err();
    let StoreError::RunMismatch {
        differences,
        run_id,
        ..
    } = &err
    else {
        panic!("not a mismatch: {err}");
    };
    assert_eq!(run_id, "r");
    assert_eq!(
        differences,
        &vec![FieldDiff {
            field: "task",
            stored: "cinc2017".to_string(),
            given: "mitdb-aami".to_string(),
        }]
    );
    let message = err.to_string();
    assert!(
        message.contains("task") && message.contains("cinc2017") && message.contains("mitdb"),
        "{message}"
    );
    // The store is left unbound, so nothing can be written into the wrong run.
    assert!(matches!(
        store.record_trial(&done(1)),
        Err(StoreError::NoRun { .. })
    ));

    let many = RunInfo {
        seed: 7,
        profile: "stm32l4".to_string(),
        strategy: "random".to_string(),
        data: "elsewhere".to_string(),
        space: json!({"version": 2}),
        ..info.clone()
    };
    let err = store.create_or_open_run(&many).unwrap_err();
    let StoreError::RunMismatch { differences, .. } = &err else {
        panic!("not a mismatch: {err}");
    };
    let fields: Vec<_> = differences.iter().map(|d| d.field).collect();
    assert_eq!(fields, ["data", "profile", "strategy", "seed", "space"]);

    // Same arguments, a new budget and a new start time: resumed, as first stored.
    let extended = RunInfo {
        budget: json!({"trials": 50}),
        created_at: "2030-01-01T00:00:00Z".to_string(),
        ecgnas_version: "0.2.0".to_string(),
        ..info.clone()
    };
    let state = store.create_or_open_run(&extended).unwrap();
    assert!(state.resumed);
    assert_eq!(state.run, info);
    assert_eq!(state.n_finished, 1);
    assert_eq!(store.trials().unwrap(), vec![done(0)]);
}

/// What a resume needs to know comes back in the run state.
fn resume_state_reports_progress(store: &mut dyn WorkQueue) {
    let info = run_info("r", "t");
    store.create_or_open_run(&info).unwrap();
    store.record_trial(&done(0)).unwrap();
    store.record_trial(&failed(1, "nan loss")).unwrap();
    store.record_trial(&trial(2, TrialStatus::Running)).unwrap();
    store.record_trial(&trial(3, TrialStatus::Pending)).unwrap();
    store.record_trial(&done(4)).unwrap();
    let state = store.create_or_open_run(&info).unwrap();
    assert_eq!(
        state,
        RunState {
            resumed: true,
            run: info,
            n_finished: 3,
            next_trial_id: 5,
            unfinished: vec![2, 3],
        }
    );
}

/// The strategy checkpoint comes back as saved, replaces the previous one, and must follow a
/// finished trial.
fn strategy_state_round_trip(store: &mut dyn WorkQueue) {
    store.create_or_open_run(&run_info("r", "t")).unwrap();
    assert_eq!(store.load_strategy_state().unwrap(), None);
    let state =
        json!({"lstm": [[0.1, -2.5e-8], [3.0, 4.0]], "rng": "0123456789abcdef", "baseline": 0.9});
    for (after, status) in [(0, "absent"), (0, "running")] {
        if status == "running" {
            store.record_trial(&trial(0, TrialStatus::Running)).unwrap();
        }
        let err = store.save_strategy_state(after, &state).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::CheckpointNotFinished { after_trial: 0, .. }
            ),
            "{err}"
        );
    }
    assert_eq!(store.load_strategy_state().unwrap(), None);
    store.record_trial(&done(0)).unwrap();
    store.save_strategy_state(0, &state).unwrap();
    assert_eq!(
        store.load_strategy_state().unwrap(),
        Some((0, state.clone()))
    );
    store.record_trial(&failed(1, "x")).unwrap();
    let later = json!({"population": ["a", "b"]});
    store.save_strategy_state(1, &later).unwrap();
    assert_eq!(store.load_strategy_state().unwrap(), Some((1, later)));
    assert!(store.save_strategy_state(u64::MAX, &state).is_err());
}

/// Deduplication finds the trial that evaluated a candidate: done first, then failed, never an
/// unfinished one.
fn find_by_candidate_finds_the_evaluation(store: &mut dyn WorkQueue) {
    store.create_or_open_run(&run_info("r", "t")).unwrap();
    store
        .record_trial(&with_candidate(failed(0, "oom"), "a"))
        .unwrap();
    store.record_trial(&with_candidate(done(1), "a")).unwrap();
    store.record_trial(&with_candidate(done(2), "a")).unwrap();
    store
        .record_trial(&with_candidate(failed(3, "oom"), "b"))
        .unwrap();
    store
        .record_trial(&with_candidate(trial(4, TrialStatus::Running), "c"))
        .unwrap();
    let found = |s: &dyn WorkQueue, c: &str| s.find_by_candidate(c).unwrap().map(|t| t.trial_id);
    assert_eq!(found(store, "a"), Some(1));
    assert_eq!(
        store.find_by_candidate("a").unwrap(),
        Some(with_candidate(done(1), "a"))
    );
    assert_eq!(found(store, "b"), Some(3));
    assert_eq!(found(store, "c"), None);
    assert_eq!(found(store, "nobody"), None);
}

/// Before a run is opened, every run method fails with `NoRun`.
fn methods_need_an_open_run(store: &mut dyn WorkQueue) {
    let no_run = |r: Result<(), StoreError>| matches!(r, Err(StoreError::NoRun { .. }));
    assert!(no_run(store.record_trial(&done(0))));
    assert!(no_run(store.trials().map(drop)));
    assert!(no_run(store.n_finished().map(drop)));
    assert!(no_run(store.save_strategy_state(0, &json!(1))));
    assert!(no_run(store.load_strategy_state().map(drop)));
    assert!(no_run(store.find_by_candidate("a").map(drop)));
    assert!(no_run(store.claim("w", 1.0).map(drop)));
    assert!(no_run(store.requeue_expired(3).map(drop)));
    assert_eq!(store.runs().unwrap(), vec![]);
}

/// NaN cannot be stored faithfully, so it is refused, and nothing is written.
fn nan_is_refused(store: &mut dyn WorkQueue) {
    store.create_or_open_run(&run_info("r", "t")).unwrap();
    for t in [
        TrialRecord {
            quality: Some(f64::NAN),
            ..done(0)
        },
        TrialRecord {
            reward: Some(f64::NAN),
            ..done(0)
        },
        TrialRecord {
            wall_s: Some(f64::NAN),
            ..done(0)
        },
    ] {
        let err = store.record_trial(&t).unwrap_err();
        assert!(matches!(err, StoreError::Invalid { .. }), "{err}");
        assert!(err.to_string().contains("NaN"), "{err}");
    }
    let err = store
        .record_trial(&TrialRecord {
            trial_id: u64::MAX,
            ..done(0)
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid { .. }), "{err}");
    assert_eq!(store.trials().unwrap(), vec![]);
}

/// Two runs in one store do not see each other's trials or checkpoints.
fn runs_are_separate(store: &mut dyn WorkQueue) {
    store.create_or_open_run(&run_info("b", "t1")).unwrap();
    store.record_trial(&done(0)).unwrap();
    store.record_trial(&done(1)).unwrap();
    store.save_strategy_state(1, &json!("b")).unwrap();
    store.create_or_open_run(&run_info("a", "t2")).unwrap();
    assert_eq!(store.trials().unwrap(), vec![]);
    assert_eq!(store.load_strategy_state().unwrap(), None);
    store.record_trial(&failed(0, "x")).unwrap();
    assert_eq!(store.find_by_candidate("cand-1").unwrap(), None);
    let ids: Vec<_> = store
        .runs()
        .unwrap()
        .into_iter()
        .map(|r| r.run_id)
        .collect();
    assert_eq!(ids, ["a", "b"]);
    store.create_or_open_run(&run_info("b", "t1")).unwrap();
    assert_eq!(store.trials().unwrap(), vec![done(0), done(1)]);
    assert_eq!(store.load_strategy_state().unwrap(), Some((1, json!("b"))));
}

/// The work queue: claim the lowest pending trial, finish it, claim the next.
fn queue_claims_and_finishes(store: &mut dyn WorkQueue) {
    store.create_or_open_run(&run_info("r", "t")).unwrap();
    assert_eq!(store.claim("w1", 60.0).unwrap(), None);
    for id in 0..3 {
        store
            .record_trial(&trial(id, TrialStatus::Pending))
            .unwrap();
    }
    let a = store.claim("w1", 60.0).unwrap().unwrap();
    let b = store.claim("w2", 60.0).unwrap().unwrap();
    assert_eq!(
        a,
        Lease {
            trial: trial(0, TrialStatus::Running),
            worker: "w1".to_string(),
            attempt: 1,
        }
    );
    assert_eq!((b.trial.trial_id, b.worker.as_str()), (1, "w2"));
    store.renew(&a, 60.0).unwrap();
    store.finish(&b, &done(1)).unwrap();
    // A result cannot be written twice, nor by the loop over a finished trial.
    assert!(matches!(
        store.finish(&b, &done(1)),
        Err(StoreError::LeaseLost { trial_id: 1, .. })
    ));
    // Results must be finished, for the leased trial and candidate.
    for bad in [
        trial(0, TrialStatus::Running),
        done(2),
        with_candidate(done(0), "other"),
    ] {
        let err = store.finish(&a, &bad).unwrap_err();
        assert!(matches!(err, StoreError::Invalid { .. }), "{err}");
    }
    store.finish(&a, &failed(0, "oom")).unwrap();
    let c = store.claim("w1", 60.0).unwrap().unwrap();
    assert_eq!(c.trial.trial_id, 2);
    assert_eq!(store.claim("w1", 60.0).unwrap(), None);
    assert_eq!(store.requeue_expired(3).unwrap(), Expired::default());
    assert_eq!(
        store.trials().unwrap(),
        vec![failed(0, "oom"), done(1), trial(2, TrialStatus::Running)]
    );
    assert_eq!(store.n_finished().unwrap(), 2);
}

/// An expired lease returns its trial to the queue; the old worker's lease is then lost; after
/// `max_attempts` attempts the trial fails with the reason.
fn queue_requeues_expired_leases(store: &mut dyn WorkQueue) {
    store.create_or_open_run(&run_info("r", "t")).unwrap();
    store.record_trial(&trial(0, TrialStatus::Pending)).unwrap();
    let first = store.claim("dead", 0.0).unwrap().unwrap();
    assert_eq!(
        store.requeue_expired(2).unwrap(),
        Expired {
            requeued: vec![0],
            failed: vec![]
        }
    );
    assert_eq!(store.trials().unwrap()[0].status, TrialStatus::Pending);
    for r in [store.renew(&first, 10.0), store.finish(&first, &done(0))] {
        assert!(
            matches!(r, Err(StoreError::LeaseLost { trial_id: 0, ref worker, .. }) if worker == "dead"),
            "{r:?}"
        );
    }
    let second = store.claim("alive", 0.0).unwrap().unwrap();
    assert_eq!(second.attempt, 2);
    // The first worker's lease stays lost even though the trial runs again.
    assert!(store.finish(&first, &done(0)).is_err());
    assert_eq!(
        store.requeue_expired(2).unwrap(),
        Expired {
            requeued: vec![],
            failed: vec![0]
        }
    );
    let t = &store.trials().unwrap()[0];
    let TrialStatus::Failed { reason } = &t.status else {
        panic!("not failed: {t:?}");
    };
    assert!(
        reason.contains("2 time") && reason.contains("alive"),
        "{reason}"
    );
    assert_eq!(store.n_finished().unwrap(), 1);
    assert!(store.claim("w", 1.0).unwrap().is_none());
    assert!(matches!(
        store.claim("w", f64::NAN),
        Err(StoreError::Invalid { .. })
    ));
}

fn postgres_test_url() -> Option<String> {
    super::testing::postgres_test_url("t")
}

macro_rules! shared_suite {
    ($($name:ident),* $(,)?) => {
        mod memory_store {
            $(
                #[test]
                fn $name() {
                    let mut store = super::MemoryStore::new();
                    super::$name(&mut store);
                }
            )*
        }
        mod postgres_store {
            $(
                #[test]
                fn $name() {
                    let Some(url) = super::postgres_test_url() else { return };
                    let mut store = super::PostgresStore::open(&url).unwrap();
                    super::$name(&mut store);
                    drop(store);
                    let _ = super::PostgresStore::open(&url).unwrap();
                }
            )*
        }
        mod sqlite_store {
            $(
                #[test]
                fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let path = dir.path().join("trials.sqlite");
                    let mut store = super::SqliteStore::open(&path).unwrap();
                    super::$name(&mut store);
                    drop(store);
                    // What a test wrote survives a reopen.
                    let _ = super::SqliteStore::open(&path).unwrap();
                }
            )*
        }
    };
}

shared_suite!(
    round_trip_every_field,
    duplicate_trial_ids_are_rejected,
    unfinished_trials_are_replaced,
    trial_ids_are_contiguous,
    resume_with_other_arguments_is_rejected,
    resume_state_reports_progress,
    strategy_state_round_trip,
    find_by_candidate_finds_the_evaluation,
    methods_need_an_open_run,
    nan_is_refused,
    runs_are_separate,
    queue_claims_and_finishes,
    queue_requeues_expired_leases,
);

// ----- both stores answer every sequence of calls alike --------------------------------------

#[derive(Debug, Clone)]
enum Op {
    Open {
        task: u8,
    },
    /// `back` picks the id: 0 the next one, 9 one past it (a gap), else `back` before the next.
    Record {
        back: u8,
        status: u8,
        cand: u8,
    },
    /// Saves a checkpoint after the trial `back` before the next id.
    Save {
        back: u8,
    },
    Load,
    Find {
        cand: u8,
    },
    Count,
    List,
    Claim {
        lease_s: f64,
    },
    Renew {
        lease: usize,
    },
    Finish {
        lease: usize,
        ok: bool,
    },
    Requeue {
        max_attempts: u32,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (0u8..3).prop_map(|task| Op::Open { task }),
        8 => (
            prop_oneof![4 => Just(0u8), 2 => Just(1u8), 1 => Just(2u8), 1 => Just(9u8)],
            0u8..4,
            0u8..3,
        )
            .prop_map(|(back, status, cand)| Op::Record { back, status, cand }),
        2 => (0u8..3).prop_map(|back| Op::Save { back }),
        1 => Just(Op::Load),
        1 => (0u8..3).prop_map(|cand| Op::Find { cand }),
        2 => Just(Op::Count),
        1 => Just(Op::List),
        2 => prop_oneof![Just(0.0), Just(3600.0)].prop_map(|lease_s| Op::Claim { lease_s }),
        1 => (0usize..4).prop_map(|lease| Op::Renew { lease }),
        2 => (0usize..4, any::<bool>()).prop_map(|(lease, ok)| Op::Finish { lease, ok }),
        1 => (0u32..3).prop_map(|max_attempts| Op::Requeue { max_attempts }),
    ]
}

/// The `i`-th lease handed out so far, cyclically.
fn pick(leases: &[Lease], i: usize) -> Option<Lease> {
    leases.get(i % leases.len().max(1)).cloned()
}

/// Applies `op` and describes its outcome with the store's location left out, so that two
/// stores' outcomes compare.
fn apply(store: &mut dyn WorkQueue, leases: &mut Vec<Lease>, op: &Op) -> String {
    fn show<T: std::fmt::Debug>(store: &dyn WorkQueue, r: Result<T, StoreError>) -> String {
        match r {
            Ok(v) => format!("ok {v:?}"),
            Err(e) => {
                let location = store.location().display().to_string();
                format!("err {}", e.to_string().replace(&location, "DB"))
            }
        }
    }
    match op {
        Op::Open { task } => {
            let info = match task {
                0 => run_info("r", "task0"),
                1 => run_info("r", "task1"),
                _ => run_info("s", "task0"),
            };
            let r = store.create_or_open_run(&info);
            show(store, r)
        }
        Op::Record { back, status, cand } => {
            let next = store.trials().map_or(0, |t| t.len() as u64);
            let id = &match back {
                9 => next + 1,
                b => next.saturating_sub(u64::from(*b)),
            };
            let t = match status {
                0 => trial(*id, TrialStatus::Pending),
                1 => trial(*id, TrialStatus::Running),
                2 => done(*id),
                _ => failed(*id, "boom"),
            };
            let r = store.record_trial(&with_candidate(t, &format!("c{cand}")));
            show(store, r)
        }
        Op::Save { back } => {
            let next = store.trials().map_or(0, |t| t.len() as u64);
            let after = next.saturating_sub(u64::from(*back));
            let r = store.save_strategy_state(after, &json!({ "after": after }));
            show(store, r)
        }
        Op::Load => show(store, store.load_strategy_state()),
        Op::Find { cand } => show(store, store.find_by_candidate(&format!("c{cand}"))),
        Op::Count => show(store, store.n_finished()),
        Op::List => show(store, store.trials()),
        Op::Claim { lease_s } => {
            let r = store.claim("w", *lease_s);
            if let Ok(Some(l)) = &r {
                leases.push(l.clone());
            }
            show(store, r)
        }
        Op::Renew { lease: i } => match pick(leases, *i) {
            Some(l) => {
                let r = store.renew(&l, 3600.0);
                show(store, r)
            }
            None => "no lease".to_string(),
        },
        Op::Finish { lease: i, ok } => match pick(leases, *i) {
            Some(l) => {
                let mut result = if *ok {
                    done(l.trial.trial_id)
                } else {
                    failed(l.trial.trial_id, "worker said no")
                };
                result.candidate_id = l.trial.candidate_id.clone();
                let r = store.finish(&l, &result);
                show(store, r)
            }
            None => "no lease".to_string(),
        },
        Op::Requeue { max_attempts } => {
            let r = store.requeue_expired(*max_attempts);
            show(store, r)
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// MemoryStore and SqliteStore give the same answer, error for error, to any sequence of
    /// calls; and the SQLite file reopened holds what the memory store holds.
    #[test]
    fn memory_and_sqlite_stores_agree(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trials.sqlite");
        let mut memory = MemoryStore::new();
        let mut sqlite = SqliteStore::open(&path).unwrap();
        let (mut memory_leases, mut sqlite_leases) = (Vec::new(), Vec::new());
        let first = Op::Open { task: 0 };
        for (i, op) in std::iter::once(&first).chain(&ops).enumerate() {
            let m = apply(&mut memory, &mut memory_leases, op);
            let s = apply(&mut sqlite, &mut sqlite_leases, op);
            prop_assert_eq!(&m, &s, "step {} ({:?})", i, op);
        }
        drop(sqlite);
        let mut reopened = SqliteStore::open(&path).unwrap();
        for task in 0..2 {
            let info = run_info("r", &format!("task{task}"));
            let m = memory.create_or_open_run(&info).map(|s| s.resumed);
            let s = reopened.create_or_open_run(&info).map(|s| s.resumed);
            prop_assert_eq!(m.is_ok(), s.is_ok());
            if m.is_ok() {
                prop_assert_eq!(memory.trials().unwrap(), reopened.trials().unwrap());
                prop_assert_eq!(
                    memory.load_strategy_state().unwrap(),
                    reopened.load_strategy_state().unwrap()
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// MemoryStore and PostgresStore give the same answer, error for error, to any sequence of
    /// calls (skipped without a test server).
    #[test]
    fn memory_and_postgres_stores_agree(ops in proptest::collection::vec(op(), 1..40)) {
        let Some(url) = postgres_test_url() else {
            return Ok(());
        };
        let mut memory = MemoryStore::new();
        let mut postgres = PostgresStore::open(&url).unwrap();
        let (mut memory_leases, mut postgres_leases) = (Vec::new(), Vec::new());
        let first = Op::Open { task: 0 };
        for (i, op) in std::iter::once(&first).chain(&ops).enumerate() {
            let m = apply(&mut memory, &mut memory_leases, op);
            let p = apply(&mut postgres, &mut postgres_leases, op);
            prop_assert_eq!(&m, &p, "step {} ({:?})", i, op);
        }
    }
}

// ----- the SQLite store on its own ------------------------------------------------------------

fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trials.sqlite");
    (dir, path)
}

#[test]
fn sqlite_reopen_gives_the_same_trials() {
    let (_dir, path) = temp_db();
    let info = run_info("main", "cinc2017");
    let written = vec![
        done(0),
        failed(1, "diverged"),
        done(2),
        trial(3, TrialStatus::Running),
    ];
    {
        let mut store = SqliteStore::open(&path).unwrap();
        store.create_or_open_run(&info).unwrap();
        for t in &written {
            store.record_trial(t).unwrap();
        }
        store.save_strategy_state(2, &json!({"k": 2})).unwrap();
    }
    let mut store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.runs().unwrap(), vec![info.clone()]);
    let state = store.create_or_open_run(&info).unwrap();
    assert!(state.resumed);
    assert_eq!(state.n_finished, 3);
    assert_eq!(state.unfinished, vec![3]);
    assert_eq!(store.trials().unwrap(), written);
    assert_eq!(store.n_finished().unwrap(), 3);
    assert_eq!(
        store.load_strategy_state().unwrap(),
        Some((2, json!({"k": 2})))
    );
    assert_eq!(store.find_by_candidate("cand-2").unwrap(), Some(done(2)));
}

#[test]
fn sqlite_uses_wal_full_sync_and_a_versioned_schema() {
    let (_dir, path) = temp_db();
    let store = SqliteStore::open(&path).unwrap();
    let conn = store.connection();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let sync: i64 = conn
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sync, 2, "synchronous=FULL");
    let fk: i64 = conn
        .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
        .unwrap();
    assert_eq!(fk, 1);
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    drop(store);
    // Reopening does not run the migrations again.
    let store = SqliteStore::open(&path).unwrap();
    let rows: i64 = store
        .connection()
        .query_row("SELECT count(*) FROM schema_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 1);
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
}

#[test]
fn sqlite_refuses_a_newer_schema() {
    let (_dir, path) = temp_db();
    {
        let mut store = SqliteStore::open(&path).unwrap();
        store.create_or_open_run(&run_info("r", "t")).unwrap();
        store
            .connection()
            .execute(
                "UPDATE schema_version SET version = ?1",
                [SCHEMA_VERSION + 1],
            )
            .unwrap();
    }
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaTooNew { found, supported, .. }
            if found == SCHEMA_VERSION + 1 && supported == SCHEMA_VERSION),
        "{err}"
    );
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("newer"), "{message}");
}

#[test]
fn sqlite_refuses_what_is_not_a_store() {
    let (dir, path) = temp_db();
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE patients (name TEXT)")
            .unwrap();
    }
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::NotAStore { .. }), "{err}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    // The other application's database is untouched.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);

    let other = dir.path().join("other.sqlite");
    {
        let conn = rusqlite::Connection::open(&other).unwrap();
        conn.execute_batch("PRAGMA application_id = 1234").unwrap();
    }
    let err = SqliteStore::open(&other).unwrap_err();
    assert!(matches!(err, StoreError::NotAStore { .. }), "{err}");

    let text = dir.path().join("notes.txt");
    std::fs::write(
        &text,
        "this is not a database, it is a long enough text file ".repeat(20),
    )
    .unwrap();
    let err = SqliteStore::open(&text).unwrap_err();
    assert!(matches!(err, StoreError::Sqlite { .. }), "{err}");
    assert!(err.to_string().contains("notes.txt"), "{err}");

    let err = SqliteStore::open(&dir.path().join("no/such/folder/t.sqlite")).unwrap_err();
    assert!(err.to_string().contains("no/such/folder"), "{err}");
}

// ----- kill -9 in the middle of a search ------------------------------------------------------

/// The environment variable that turns [`crash_child_search_loop`] into the writer process.
const CRASH_DB_ENV: &str = "ECGNAS_STORE_CRASH_TEST_DB";

/// The helper's full test name, for the test harness's `--exact` filter.
const CRASH_CHILD: &str = "store::tests::crash_child_search_loop";

fn crash_run() -> RunInfo {
    run_info("main", "crash")
}

/// The trial the helper writes with id `id`: every field depends on it, and the candidate is
/// large enough that one trial spans several database pages.
fn crash_trial(id: u64, status: TrialStatus) -> TrialRecord {
    let mut t = trial(id, status);
    t.candidate = json!({
        "id": id,
        "genes": (0..400).map(|g| (id * 31 + g) % 97).collect::<Vec<_>>(),
    });
    t
}

/// The strategy's state after trial `k`: the sum of the ids observed so far.
fn crash_state(k: u64) -> serde_json::Value {
    json!({"after": k, "sum": k * (k + 1) / 2, "padding": "x".repeat(2_000)})
}

/// Not a test on its own: the process that [`sqlite_survives_kill_9_mid_search`] starts and
/// kills. It follows the module's resume protocol and runs trials until killed.
#[test]
#[ignore = "helper process of sqlite_survives_kill_9_mid_search"]
fn crash_child_search_loop() {
    let Some(path) = std::env::var_os(CRASH_DB_ENV) else {
        return;
    };
    let mut store = SqliteStore::open(Path::new(&path)).unwrap();
    let state = store.create_or_open_run(&crash_run()).unwrap();
    // Resume: restore the checkpoint after k, replay the finished trials after k.
    let mut sum = match store.load_strategy_state().unwrap() {
        Some((k, s)) => {
            assert_eq!(s, crash_state(k), "checkpoint after {k}");
            s["sum"].as_u64().unwrap()
        }
        None => 0,
    };
    let after = store.load_strategy_state().unwrap().map(|(k, _)| k);
    for t in store.trials().unwrap() {
        if t.status.is_finished() && after.is_none_or(|k| t.trial_id > k) {
            sum += t.trial_id;
        }
    }
    let mut next = state
        .unfinished
        .first()
        .copied()
        .unwrap_or(state.next_trial_id);
    // A safety net: the helper never outlives a forgotten parent by long.
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        store
            .record_trial(&crash_trial(next, TrialStatus::Running))
            .unwrap();
        // "Training": the kill often lands here, with the trial running.
        std::thread::sleep(Duration::from_millis(2));
        store
            .record_trial(&crash_trial(next, TrialStatus::Done))
            .unwrap();
        sum += next;
        assert_eq!(
            sum,
            next * (next + 1) / 2,
            "the replay lost or repeated a trial"
        );
        store.save_strategy_state(next, &crash_state(next)).unwrap();
        next += 1;
    }
}

/// Checks what a killed search left: contiguous ids from 0, every finished trial complete,
/// at most the last one unfinished, a checkpoint at most one trial behind. Returns the
/// number of finished trials.
fn check_after_kill(path: &Path) -> usize {
    let mut store = SqliteStore::open(path).unwrap();
    let state = store.create_or_open_run(&crash_run()).unwrap();
    assert!(state.resumed);
    let trials = store.trials().unwrap();
    let n = trials.len();
    for (i, t) in trials.iter().enumerate() {
        assert_eq!(t.trial_id, i as u64, "ids must be contiguous from 0");
        if t.status.is_finished() {
            assert_eq!(t, &crash_trial(t.trial_id, TrialStatus::Done), "trial {i}");
        } else {
            assert_eq!(i + 1, n, "only the last trial may be unfinished");
            assert_eq!(
                t,
                &crash_trial(t.trial_id, TrialStatus::Running),
                "trial {i}"
            );
        }
    }
    let n_finished = state.n_finished;
    assert_eq!(
        n_finished,
        trials.iter().filter(|t| t.status.is_finished()).count()
    );
    if n_finished > 0 {
        let (k, s) = store.load_strategy_state().unwrap().expect("a checkpoint");
        assert_eq!(s, crash_state(k));
        let last = n_finished as u64 - 1;
        assert!(
            k == last || k + 1 == last,
            "checkpoint after {k}, last trial {last}"
        );
    }
    n_finished
}

#[test]
fn sqlite_survives_kill_9_mid_search() {
    use std::os::unix::process::ExitStatusExt;
    let (_dir, path) = temp_db();
    let exe = std::env::current_exe().unwrap();
    let mut finished = 0;
    for round in 0..4 {
        let mut child = Command::new(&exe)
            .args([CRASH_CHILD, "--exact", "--ignored", "--test-threads=1"])
            .env(CRASH_DB_ENV, &path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Let it run a few trials past where the previous round stopped; vary the moment.
        let target = finished + 10 + round * 3;
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("round {round}: the writer exited on its own ({status}) before the kill");
            }
            if Instant::now() > deadline {
                child.kill().unwrap();
                child.wait().unwrap();
                panic!("round {round}: the writer made no progress (at {finished} trials)");
            }
            let progress = SqliteStore::open(&path).ok().and_then(|mut s| {
                s.create_or_open_run(&crash_run()).ok()?;
                s.n_finished().ok()
            });
            if progress.is_some_and(|n| n >= target) {
                break;
            }
            std::thread::sleep(Duration::from_millis(5 + 7 * round as u64));
        }
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(9), "round {round}: {status}");
        let now = check_after_kill(&path);
        assert!(
            now >= target,
            "round {round}: {now} finished, expected {target}"
        );
        finished = now;
    }
}

// ----- the PostgreSQL store's own tests --------------------------------------------------------

#[test]
fn postgres_refuses_a_newer_schema() {
    let Some(url) = postgres_test_url() else {
        return;
    };
    let store = PostgresStore::open(&url).unwrap();
    assert_eq!(store.schema_version().unwrap(), POSTGRES_SCHEMA_VERSION);
    store
        .execute_raw("UPDATE ecgnas_schema_version SET version = version + 1")
        .unwrap();
    drop(store);
    let err = PostgresStore::open(&url).unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaTooNew { found, .. } if found == POSTGRES_SCHEMA_VERSION + 1),
        "{err}"
    );
    assert!(err.to_string().contains("newer"), "{err}");
}

#[test]
fn postgres_unreachable_server_is_a_clear_error() {
    // A port nothing listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://ecgnas:secret@127.0.0.1:{port}/db?connect_timeout=2");
    let err = PostgresStore::open(&url).unwrap_err().to_string();
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(err.contains("connect"), "{err}");
    assert!(!err.contains("secret"), "the password leaked: {err}");
    let garbled = PostgresStore::open("postgres://[bad")
        .unwrap_err()
        .to_string();
    assert!(garbled.contains("invalid connection string"), "{garbled}");
}

#[test]
fn postgres_redacts_passwords() {
    use super::postgres::redact_url;
    assert_eq!(
        redact_url("postgres://u:pw@h:5432/d?x=1"),
        "postgres://u:***@h:5432/d?x=1"
    );
    assert_eq!(redact_url("postgres://u@h/d"), "postgres://u@h/d");
    assert_eq!(
        redact_url("host=h user=u password=pw dbname=d"),
        "host=h user=u password=*** dbname=d"
    );
}

/// Workers claiming from many connections at once each get a different trial, and every
/// trial is claimed exactly once.
#[test]
fn postgres_concurrent_claims_never_share_a_trial() {
    let Some(url) = postgres_test_url() else {
        return;
    };
    const TRIALS: u64 = 200;
    let mut coordinator = PostgresStore::open(&url).unwrap();
    coordinator.create_or_open_run(&run_info("r", "t")).unwrap();
    for id in 0..TRIALS {
        coordinator
            .record_trial(&trial(id, TrialStatus::Pending))
            .unwrap();
    }
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let url = url.clone();
            std::thread::spawn(move || {
                let mut store = PostgresStore::open(&url).unwrap();
                store.create_or_open_run(&run_info("r", "t")).unwrap();
                let mut mine = Vec::new();
                while let Some(lease) = store.claim(&format!("w{w}"), 60.0).unwrap() {
                    let id = lease.trial.trial_id;
                    store.finish(&lease, &done(id)).unwrap();
                    mine.push(id);
                }
                mine
            })
        })
        .collect();
    let mut all: Vec<u64> = workers
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(all, (0..TRIALS).collect::<Vec<_>>());
    assert_eq!(coordinator.n_finished().unwrap(), TRIALS as usize);
}

/// The test server's role `ecgnas_password` (see `scripts/pg-test-server.sh`) with a wrong
/// password: one clear error, the password not shown.
#[test]
fn postgres_wrong_credentials_are_a_clear_error() {
    let Some(url) = postgres_test_url() else {
        return;
    };
    let wrong = url.replacen(
        "postgres://ecgnas@",
        "postgres://ecgnas_password:wrong-password@",
        1,
    );
    assert_ne!(
        wrong, url,
        "the test server's URL has an unexpected form: {url}"
    );
    let err = PostgresStore::open(&wrong).unwrap_err().to_string();
    assert!(err.contains("password authentication failed"), "{err}");
    assert!(err.contains("ecgnas_password:***@"), "{err}");
    assert!(!err.contains("wrong-password"), "{err}");
    let right = wrong.replacen("wrong-password", "right-password", 1);
    // The role exists and the right password passes (it may lack rights on the schema).
    if let Err(e) = PostgresStore::open(&right) {
        assert!(!e.to_string().contains("password authentication"), "{e}");
    }
}
