//! A search killed with SIGKILL part way resumes and ends with exactly the requested number of
//! distinct finished trials, none lost or repeated.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TRIALS: usize = 6;

fn search(out: &Path, resume: bool) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ecgnas"));
    cmd.args([
        "search",
        "--strategy",
        "random",
        "--epochs",
        "1",
        "--synthetic-windows",
        "300",
        "--seed",
        "3",
    ])
    .args(["--trials", &TRIALS.to_string()])
    .arg("--out")
    .arg(out);
    if resume {
        cmd.arg("--resume");
    }
    cmd
}

/// Finished trial ids and candidate ids, read from the store with the library.
fn finished(out: &Path) -> Vec<(u64, String)> {
    use ecgnas::store::{SqliteStore, TrialStore};
    let store = SqliteStore::open(&out.join("trials.sqlite")).expect("store");
    let runs = store.runs().expect("runs");
    let Some(run) = runs.first() else {
        return Vec::new();
    };
    let mut store = store;
    store.create_or_open_run(run).expect("open run");
    store
        .trials()
        .expect("trials")
        .into_iter()
        .filter(|t| t.status.is_finished())
        .map(|t| (t.trial_id, t.candidate_id))
        .collect()
}

#[test]
fn killed_search_resumes_without_losing_or_repeating_trials() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("run");
    let mut child = search(&out, false)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn");
    // Kill as soon as at least two trials are stored.
    let start = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(50));
        if out.join("trials.sqlite").exists() && finished(&out).len() >= 2 {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("search ended before it could be killed: {status}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "no trial finished in time"
        );
    }
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("wait");
    assert!(!status.success());
    let before = finished(&out);
    assert!(
        before.len() < TRIALS,
        "killed too late to test anything ({} trials)",
        before.len()
    );

    // Without --resume the run folder is refused, so nothing is overwritten.
    let refused = search(&out, false).output().expect("run");
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--resume"));

    let resumed = search(&out, true).output().expect("resume");
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    let after = finished(&out);
    assert_eq!(
        after.len(),
        TRIALS,
        "exactly the requested number of finished trials"
    );
    let ids: Vec<u64> = after.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        ids,
        (0..TRIALS as u64).collect::<Vec<_>>(),
        "contiguous trial ids"
    );
    for (id, candidate) in &before {
        assert!(
            after.contains(&(*id, candidate.clone())),
            "trial {id} was lost or changed on resume"
        );
    }
    let mut candidates: Vec<&String> = after.iter().map(|(_, c)| c).collect();
    candidates.sort();
    candidates.dedup();
    assert_eq!(candidates.len(), TRIALS, "distinct candidates");
    assert!(out.join("report.md").is_file() && out.join("trials.csv").is_file());
}

#[test]
fn enas_retrains_its_ranking_and_resumes_without_a_second_supernet_phase() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("run");
    let enas = |trials: usize, resume: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ecgnas"));
        cmd.args([
            "search",
            "--strategy",
            "enas",
            "--epochs",
            "1",
            "--enas-epochs",
            "2",
            "--enas-steps",
            "5",
            "--synthetic-windows",
            "300",
            "--seed",
            "5",
            "--json",
        ])
        .args(["--trials", &trials.to_string()])
        .arg("--out")
        .arg(&out);
        if resume {
            cmd.arg("--resume");
        }
        cmd.output().expect("ecgnas runs")
    };
    let first = enas(2, false);
    let stderr = String::from_utf8_lossy(&first.stderr).into_owned();
    assert!(first.status.success(), "{stderr}");
    assert_eq!(stderr.matches("enas epoch").count(), 2, "{stderr}");
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("enas.json")).expect("enas.json"))
            .expect("json");
    let ranked = saved["ranked"].as_array().expect("ranked");
    assert!(ranked.len() >= 2, "{} ranked", ranked.len());
    // The first trials are the ranking's head, in order, trained from scratch.
    let trials = finished(&out);
    assert_eq!(trials.len(), 2);
    for (at, (_, candidate_id)) in trials.iter().enumerate() {
        let c: ecgnas::space::Candidate =
            serde_json::from_value(ranked[at]["candidate"].clone()).expect("candidate");
        assert_eq!(&c.id(), candidate_id, "trial {at} is not the ranking's");
    }
    let report: serde_json::Value = serde_json::from_slice(&first.stdout).expect("--json");
    assert_eq!(report["trials"], 2);

    let again = enas(3, true);
    let stderr = String::from_utf8_lossy(&again.stderr).into_owned();
    assert!(again.status.success(), "{stderr}");
    assert!(stderr.contains("the supernet phase is done"), "{stderr}");
    assert_eq!(stderr.matches("enas epoch").count(), 0, "{stderr}");
    let trials = finished(&out);
    assert_eq!(trials.len(), 3);
    let distinct: std::collections::HashSet<&String> = trials.iter().map(|(_, c)| c).collect();
    assert_eq!(distinct.len(), 3, "a candidate trained twice");
}
