//! `ecgnas data inspect --task ... --json` on real and synthetic data.

use std::collections::BTreeMap;
use std::process::Command;

use serde::Deserialize;

mod common;
use common::shared_data;

// The documented --json shape, read back with unknown fields refused, so that a change of
// schema fails here.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Inspection {
    task: String,
    records: Vec<RecordRow>,
    totals: BTreeMap<String, u64>,
    #[serde(default)]
    excluded: Vec<ExcludedRow>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordRow {
    id: String,
    fs: f64,
    n_samples: u64,
    duration_s: f64,
    leads: Vec<String>,
    labels: BTreeMap<String, u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExcludedRow {
    id: String,
    reason: String,
}

fn inspect_json(args: &[&str]) -> Inspection {
    let out = Command::new(env!("CARGO_BIN_EXE_ecgnas"))
        .args(["data", "inspect"])
        .args(args)
        .arg("--json")
        .output()
        .expect("ecgnas runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON of the documented shape")
}

#[test]
fn mitdb_aami_counts_equal_the_published_table() {
    let Some(mitdb) = shared_data("mitdb") else {
        return;
    };
    let report = inspect_json(&[mitdb.to_str().expect("utf-8 path"), "--task", "mitdb-aami"]);
    assert_eq!(report.task, "mitdb-aami");

    // aami_counts.csv: record,N,S,V,F,Q,total,paced,split (computed independently).
    let table = std::fs::read_to_string(mitdb.join("aami_counts.csv")).expect("aami_counts.csv");
    let mut expected: BTreeMap<String, [u64; 4]> = BTreeMap::new();
    let mut paced = Vec::new();
    for line in table.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        if f[0].ends_with("TOTAL") {
            continue;
        }
        if f[7] == "yes" {
            paced.push(f[0].to_string());
            continue;
        }
        let n = |i: usize| f[i].parse::<u64>().expect("count");
        expected.insert(f[0].to_string(), [n(1), n(2), n(3), n(4)]);
    }
    assert_eq!(expected.len(), 44);
    // The same counts as the README's table (`| 100 | 2239 | 33 | 1 | 0 | 0 | 2273 |  | DS2 |`).
    let readme = std::fs::read_to_string(mitdb.join("README.md")).expect("README.md");
    let mut readme_rows = 0;
    for line in readme.lines() {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        if cells.len() == 9 && cells[0].len() == 3 && cells[0].chars().all(|c| c.is_ascii_digit()) {
            if cells[7] == "paced" {
                continue;
            }
            let n = |i: usize| cells[i].parse::<u64>().expect("count");
            assert_eq!(
                expected.get(cells[0]),
                Some(&[n(1), n(2), n(3), n(4)]),
                "README row {}",
                cells[0]
            );
            readme_rows += 1;
        }
    }
    assert_eq!(readme_rows, 44, "README table rows of non-paced records");
    assert_eq!(report.records.len(), 44);
    for row in &report.records {
        let want = expected
            .get(&row.id)
            .unwrap_or_else(|| panic!("unexpected record {}", row.id));
        let got = [
            row.labels["N"],
            row.labels["S"],
            row.labels["V"],
            row.labels["F"],
        ];
        assert_eq!(&got, want, "record {}", row.id);
        assert_eq!(row.fs, 360.0);
        assert_eq!(row.n_samples, 650000);
        assert_eq!(row.duration_s, 1805.56);
        assert_eq!(row.leads.len(), 2);
    }
    let totals: [u64; 4] = expected.values().fold([0; 4], |mut acc, c| {
        (0..4).for_each(|i| acc[i] += c[i]);
        acc
    });
    assert_eq!(
        [
            report.totals["N"],
            report.totals["S"],
            report.totals["V"],
            report.totals["F"]
        ],
        totals
    );
    let mut excluded: Vec<String> = report.excluded.iter().map(|e| e.id.clone()).collect();
    excluded.sort();
    paced.sort();
    assert_eq!(excluded, paced);
    assert!(report.excluded.iter().all(|e| e.reason.contains("paced")));
    // Record 114 has its leads swapped: MLII is found by name, second.
    let r114 = report.records.iter().find(|r| r.id == "114").expect("114");
    assert_eq!(r114.leads, vec!["V5", "MLII"]);
}

#[test]
fn cinc2017_counts_one_label_per_recording() {
    let Some(folder) = shared_data("cinc2017") else {
        return;
    };
    let report = inspect_json(&[folder.to_str().expect("utf-8 path"), "--task", "cinc2017"]);
    assert_eq!(report.records.len(), 300);
    // v3 labels (REFERENCE.csv): N 148, A 47, O 65, ~ 40 (the folder's README).
    let t = &report.totals;
    assert_eq!((t["N"], t["A"], t["O"], t["~"]), (148, 47, 65, 40));
    assert!(report
        .records
        .iter()
        .all(|r| r.labels.values().sum::<u64>() == 1));
}

#[test]
fn synthetic_inspection_covers_every_label() {
    let report = inspect_json(&["synthetic", "--task", "synthetic"]);
    assert_eq!(report.records.len(), 6000);
    for label in ["NSR", "STach", "SB", "AF", "PVC", "IAVB"] {
        assert!(
            report.totals[label] > 300,
            "{label}: {}",
            report.totals[label]
        );
    }
    let rhythms =
        report.totals["NSR"] + report.totals["STach"] + report.totals["SB"] + report.totals["AF"];
    assert_eq!(rhythms, 6000, "exactly one rhythm per window");
    assert!(report
        .records
        .iter()
        .all(|r| r.n_samples == 2500 && r.fs == 250.0));
}
