//! Record-level splits: fixed lists (MIT-BIH) and seeded stratified splits (everything else).

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// The side of the split a record is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// Training records.
    Train,
    /// Validation records: architecture, thresholds and early stopping are chosen on them.
    Validation,
    /// Test records, scored once per final model.
    Test,
}

impl Split {
    /// The name used in files.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Validation => "validation",
            Split::Test => "test",
        }
    }
}

/// A seeded split stratified on a key per record, 70 / 15 / 15.
///
/// Inside each stratum (in key order): sort the ids, shuffle them with one ChaCha8 generator
/// seeded by `seed` (shared by the strata, drawn in key order), then the first `⌊0.70 n⌋` go to
/// training, the next `⌊0.15 n⌋` to validation and the rest to test.
pub fn stratified<K: Ord + Clone>(records: &[(String, K)], seed: u64) -> BTreeMap<String, Split> {
    let mut strata: BTreeMap<K, Vec<String>> = BTreeMap::new();
    for (id, key) in records {
        strata.entry(key.clone()).or_default().push(id.clone());
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = BTreeMap::new();
    for ids in strata.values_mut() {
        ids.sort();
        ids.shuffle(&mut rng);
        let n = ids.len();
        let n_train = n * 70 / 100;
        let n_val = n * 15 / 100;
        for (i, id) in ids.iter().enumerate() {
            let split = if i < n_train {
                Split::Train
            } else if i < n_train + n_val {
                Split::Validation
            } else {
                Split::Test
            };
            out.insert(id.clone(), split);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proportions_per_stratum_and_no_record_twice() {
        let records: Vec<(String, u8)> = (0..1000)
            .map(|i| (format!("r{i:04}"), (i % 3) as u8))
            .collect();
        let split = stratified(&records, 0);
        assert_eq!(split.len(), 1000);
        for key in 0..3u8 {
            let in_key: Vec<_> = records.iter().filter(|(_, k)| *k == key).collect();
            let n = in_key.len();
            let train = in_key
                .iter()
                .filter(|(id, _)| split[id] == Split::Train)
                .count();
            let val = in_key
                .iter()
                .filter(|(id, _)| split[id] == Split::Validation)
                .count();
            assert_eq!(train, n * 70 / 100);
            assert_eq!(val, n * 15 / 100);
        }
    }

    #[test]
    fn seeded_and_independent_of_input_order() {
        let mut records: Vec<(String, u8)> =
            (0..200).map(|i| (format!("r{i}"), (i % 2) as u8)).collect();
        let a = stratified(&records, 7);
        records.reverse();
        assert_eq!(a, stratified(&records, 7));
        assert_ne!(a, stratified(&records, 8));
    }
}
