//! A distributed search against a real PostgreSQL server (`ECGNAS_TEST_POSTGRES`, started by
//! `scripts/pg-test-server.sh`): a coordinator and three worker processes finish a run while
//! one worker and the coordinator are killed with `kill -9`; and with `random` and a fixed
//! seed the distributed run records the same candidates as a single-process one.

#![allow(clippy::print_stderr)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{ecgnas, run, stderr};
use ecgnas::store::{PostgresStore, TrialRecord, TrialStatus, TrialStore};

/// A fresh schema on the test server, as a store URL; `None` (with a notice) without a server.
fn fresh_store(name: &str) -> Option<String> {
    ecgnas::store::testing::postgres_test_url(&format!("it_{name}"))
}

/// The search's arguments, the same for the coordinator, its restart and the local run.
fn search_args(trials: usize, epochs: usize, windows: usize, seed: u64) -> Vec<String> {
    [
        "search",
        "--strategy",
        "random",
        "--trials",
        &trials.to_string(),
        "--epochs",
        &epochs.to_string(),
        "--synthetic-windows",
        &windows.to_string(),
        "--seed",
        &seed.to_string(),
        "--json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// `ecgnas search` as the coordinator of a run in `store`, writing its folder `out`.
fn coordinator(search: Vec<String>, store: &str, out: &Path, extra: &[&str]) -> Command {
    let mut cmd = ecgnas();
    cmd.args(search)
        .args(["--store", store, "--workers", "external"])
        .args(extra)
        .arg("--out")
        .arg(out);
    cmd
}

fn spawn_logged(cmd: &mut Command, log: &Path) -> Child {
    let file = std::fs::File::create(log).expect("log file");
    cmd.stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .expect("ecgnas starts")
}

fn worker(store: &str, name: &str, log: &Path) -> Child {
    spawn_logged(
        ecgnas().args([
            "worker",
            "--store",
            store,
            "--name",
            name,
            "--lease",
            "3s",
            "--idle-exit",
            "60s",
        ]),
        log,
    )
}

fn trials_of(store: &str) -> Vec<TrialRecord> {
    let mut s = PostgresStore::open(store).expect("store opens");
    let run = s.runs().expect("runs").remove(0);
    s.create_or_open_run(&run).expect("run opens");
    s.trials().expect("trials")
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn workers_and_coordinator_survive_kill_9() {
    let Some(store) = fresh_store("kill") else {
        return;
    };
    const N: usize = 10;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut coordinator_cmd = coordinator(
        search_args(N, 3, 2000, 5),
        &store,
        &out,
        &["--in-flight", "4"],
    );
    let mut coordinator_process =
        spawn_logged(&mut coordinator_cmd, &dir.path().join("coord1.log"));
    let logs: Vec<_> = (1..=3)
        .map(|i| dir.path().join(format!("w{i}.log")))
        .collect();
    let mut workers: Vec<Child> = (1..=3)
        .map(|i| worker(&store, &format!("w{i}"), &logs[i - 1]))
        .collect();

    // Kill worker w1 while it holds a trial that is training.
    let mut victim = None;
    wait_for("w1 to train a trial", Duration::from_secs(240), || {
        let o = run(ecgnas().args(["status", "--store", &store, "--json"]));
        let Ok(status) = serde_json::from_slice::<serde_json::Value>(&o.stdout) else {
            return false;
        };
        victim = status["running"].as_array().and_then(|r| {
            r.iter()
                .find(|t| t["worker"] == "w1")
                .and_then(|t| t["trial_id"].as_u64())
        });
        victim.is_some()
    });
    let victim = victim.unwrap();
    workers[0].kill().unwrap();
    workers[0].wait().unwrap();
    eprintln!("killed w1 during trial {victim}");

    // Kill the coordinator too once a few trials are in, then resume it.
    wait_for("3 finished trials", Duration::from_secs(240), || {
        trials_of(&store)
            .iter()
            .filter(|t| t.status.is_finished())
            .count()
            >= 3
    });
    coordinator_process.kill().unwrap();
    coordinator_process.wait().unwrap();
    let mut resumed_cmd = coordinator(
        search_args(N, 3, 2000, 5),
        &store,
        &out,
        &["--in-flight", "4", "--resume"],
    );
    let resumed = spawn_logged(&mut resumed_cmd, &dir.path().join("coord2.log"));
    let finished = resumed.wait_with_output().unwrap();
    let coord_log = std::fs::read_to_string(dir.path().join("coord2.log")).unwrap();
    assert!(finished.status.success(), "{coord_log}");
    for w in &mut workers[1..] {
        assert!(w.wait().unwrap().success());
    }

    let trials = trials_of(&store);
    let ids: Vec<u64> = trials.iter().map(|t| t.trial_id).collect();
    assert_eq!(ids, (0..N as u64).collect::<Vec<_>>(), "{coord_log}");
    assert!(
        trials
            .iter()
            .all(|t| t.status == TrialStatus::Done && t.finished_at.is_some()),
        "{trials:?}"
    );
    // The killed worker's trial went back to the queue and another worker finished it.
    let reclaimed = logs[1..].iter().any(|log| {
        std::fs::read_to_string(log)
            .unwrap()
            .contains(&format!("claimed trial {victim}\n"))
    });
    assert!(reclaimed, "no other worker claimed trial {victim}");
    let w1 = std::fs::read_to_string(&logs[0]).unwrap();
    assert!(
        !w1.contains(&format!("trial {victim:>3}  ")),
        "w1 recorded its trial before it was killed: {w1}"
    );
    // The coordinator's report and best model come from the finished run.
    assert!(out.join("best/model.int8.onnx").exists());
    let status = run(ecgnas().args(["status", "--store", &store]));
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains(&format!("{N} done, 0 failed, 0 pending, 0 running")),
        "{text}"
    );
}

#[test]
fn distributed_random_search_records_the_single_process_candidates() {
    let Some(store) = fresh_store("same") else {
        return;
    };
    const N: usize = 8;
    let dir = tempfile::tempdir().unwrap();
    let local = run(ecgnas()
        .args(search_args(N, 1, 600, 11))
        .arg("--out")
        .arg(dir.path().join("local")));
    assert!(local.status.success(), "{}", stderr(&local));

    let mut coordinator_cmd = coordinator(
        search_args(N, 1, 600, 11),
        &store,
        &dir.path().join("distributed"),
        &[],
    );
    let coordinator_process = spawn_logged(&mut coordinator_cmd, &dir.path().join("coord.log"));
    let mut workers: Vec<Child> = (1..=2)
        .map(|i| {
            worker(
                &store,
                &format!("w{i}"),
                &dir.path().join(format!("w{i}.log")),
            )
        })
        .collect();
    assert!(coordinator_process
        .wait_with_output()
        .unwrap()
        .status
        .success());
    for w in &mut workers {
        assert!(w.wait().unwrap().success());
    }

    let candidates = |trials: &[TrialRecord]| -> BTreeSet<String> {
        trials.iter().map(|t| t.candidate_id.clone()).collect()
    };
    let mut sqlite =
        ecgnas::store::SqliteStore::open(&dir.path().join("local/trials.sqlite")).unwrap();
    let run_info = sqlite.runs().unwrap().remove(0);
    sqlite.create_or_open_run(&run_info).unwrap();
    let single = sqlite.trials().unwrap();
    let distributed = trials_of(&store);
    assert_eq!(single.len(), N);
    assert_eq!(distributed.len(), N);
    assert_eq!(candidates(&single), candidates(&distributed));
    // Trial by trial, too: the proposals depend on the run's seed and the trial id only.
    for (a, b) in single.iter().zip(&distributed) {
        assert_eq!((a.trial_id, &a.candidate_id), (b.trial_id, &b.candidate_id));
    }
}

#[test]
fn one_shot_strategies_refuse_external_workers_and_bad_stores_fail_clearly() {
    for strategy in ["enas", "darts"] {
        let o = run(ecgnas().args([
            "search",
            "--strategy",
            strategy,
            "--workers",
            "external",
            "--store",
            "postgres://nobody@127.0.0.1:1/none",
        ]));
        assert!(!o.status.success());
        assert!(stderr(&o).contains("--workers external"), "{}", stderr(&o));
    }
    // Nothing listens on port 1: one clear line naming the store, no password, no panic.
    let o = run(ecgnas().args([
        "worker",
        "--store",
        "postgres://ecgnas:hunter2@127.0.0.1:1/db?connect_timeout=2",
        "--idle-exit",
        "1s",
    ]));
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(err.contains("127.0.0.1:1"), "{err}");
    assert!(err.contains("error connecting"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    if let Some(store) = fresh_store("busy") {
        // A second coordinator of a running run is refused.
        let dir = tempfile::tempdir().unwrap();
        let mut first_cmd = coordinator(
            search_args(4, 1, 600, 1),
            &store,
            &dir.path().join("a"),
            &[],
        );
        let mut first = spawn_logged(&mut first_cmd, &dir.path().join("a.log"));
        wait_for("the first coordinator", Duration::from_secs(60), || {
            std::fs::read_to_string(dir.path().join("a.log"))
                .is_ok_and(|l| l.contains("coordinating run"))
        });
        let second = run(&mut coordinator(
            search_args(4, 1, 600, 1),
            &store,
            &dir.path().join("b"),
            &["--resume"],
        ));
        first.kill().unwrap();
        first.wait().unwrap();
        assert!(!second.status.success());
        assert!(
            stderr(&second).contains("another coordinator"),
            "{}",
            stderr(&second)
        );
    }
}

/// The store benchmark runs on any store and every queued trivial trial is finished once (it
/// checks the count itself and fails otherwise); `status` reads a local run folder's store.
#[test]
fn store_benchmark_and_status_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bench.sqlite");
    let store = format!("sqlite:{}", db.display());
    let o = run(ecgnas().args([
        "bench",
        "store",
        "--store",
        &store,
        "--connections",
        "1,3",
        "--trials",
        "60",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with(['1', '3']))
        .collect();
    assert_eq!(rows.len(), 2, "{text}");
    for row in rows {
        let rate: f64 = row.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert!(rate > 0.0, "{row}");
    }
    // Two benchmark runs in one store: status asks which.
    let o = run(ecgnas().args(["status", "--store", &store]));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--run-id"), "{}", stderr(&o));
    let missing = run(ecgnas().args(["status", "--store", "sqlite:/nonexistent/trials.sqlite"]));
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("/nonexistent/trials.sqlite"),
        "{}",
        stderr(&missing)
    );
}
