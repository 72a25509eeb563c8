//! `synthetic`: the built-in generator's windows, one record each, split on the label set.

use super::{split, Dataset, Example, Target, TaskKind, TaskRecord};
use crate::data::synthetic::{generate_window, FS_HZ, LABELS};
use crate::data::{EcgRecord, Lead};

/// Generates `n_windows` windows from `seed` (on every core: windows are independent).
pub fn load(seed: u64, n_windows: usize, split_seed: u64) -> Dataset {
    let n_threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(16);
    let chunk = n_windows.div_ceil(n_threads).max(1);
    let windows: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n_windows)
            .step_by(chunk)
            .map(|start| {
                scope.spawn(move || {
                    (start..(start + chunk).min(n_windows))
                        .map(|i| generate_window(seed, i as u64))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let width = n_windows.saturating_sub(1).to_string().len().max(4);
    let ids: Vec<String> = (0..windows.len()).map(|i| format!("{i:0width$}")).collect();
    let keys: Vec<(String, u8)> = ids
        .iter()
        .zip(&windows)
        .map(|(id, w)| (id.clone(), w.labels.0))
        .collect();
    let sides = split::stratified(&keys, split_seed);
    let records = ids
        .into_iter()
        .zip(windows)
        .map(|(id, window)| {
            let flags = (0..LABELS.len())
                .map(|i| window.labels.0 & (1 << i) != 0)
                .collect();
            TaskRecord {
                split: sides[&id],
                file_leads: vec!["ECG".to_string()],
                examples: vec![Example {
                    position: 0,
                    target: Target::Labels(flags),
                }],
                record: EcgRecord {
                    id,
                    path: None,
                    fs: FS_HZ,
                    leads: vec![Lead {
                        name: "ECG".to_string(),
                        units: "mV".to_string(),
                        samples: window.samples_mv,
                    }],
                    comments: Vec::new(),
                },
            }
        })
        .collect();
    Dataset {
        task: TaskKind::Synthetic,
        labels: TaskKind::Synthetic.labels(),
        records,
        excluded: Vec::new(),
        notes: vec![format!(
            "{n_windows} synthetic windows, dataset seed {seed}, split seed {split_seed}"
        )],
    }
}
