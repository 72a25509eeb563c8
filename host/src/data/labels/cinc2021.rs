//! CinC 2021 labels: SNOMED CT codes in the header's `Dx:` comment, merged into the
//! Challenge's 26 scored classes.
//!
//! The classes and their order are the columns of `weights.csv` from
//! physionetchallenges/evaluation-2021 (BSD 2-Clause, licence beside the file), commit
//! 27a766451ba61e40ac7fdad2e4a407369aaacd86, kept here byte for byte (sha256 below, checked
//! by a test). Columns joined with `|` are equivalence classes: a record carrying either code
//! is positive for the class.

use std::sync::OnceLock;

/// The Challenge's `weights.csv`, byte for byte.
pub const WEIGHTS_CSV: &str = include_str!("cinc2021_weights.csv");

/// sha256 of `weights.csv` at commit 27a766451ba61e40ac7fdad2e4a407369aaacd86.
pub const WEIGHTS_SHA256: &str = "668cb04555a97e8977488cb4bb6088d0d2bf9e59557945deedf29d5065c14d2b";

/// Abbreviations of the 26 scored classes, in `weights.csv` column order.
pub const CINC2021_CLASSES: [&str; 26] = [
    "AF",
    "AFL",
    "BBB",
    "Brady",
    "CLBBB|LBBB",
    "CRBBB|RBBB",
    "IAVB",
    "IRBBB",
    "LAD",
    "LAnFB",
    "LPR",
    "LQRSV",
    "LQT",
    "NSIVCB",
    "NSR",
    "PAC|SVPB",
    "PR",
    "PRWP",
    "PVC|VPB",
    "QAb",
    "RAD",
    "SA",
    "SB",
    "STach",
    "TAb",
    "TInv",
];

/// The scored classes and the weight matrix of the Challenge metric.
#[derive(Debug, Clone)]
pub struct ScoredClasses {
    /// Per class, the SNOMED CT codes that make it positive.
    pub codes: Vec<Vec<String>>,
    /// The 26 x 26 weight matrix (rows = true class, columns = predicted class).
    pub weights: Vec<Vec<f64>>,
}

impl ScoredClasses {
    /// The classes parsed from the embedded `weights.csv`.
    pub fn get() -> &'static ScoredClasses {
        static CLASSES: OnceLock<ScoredClasses> = OnceLock::new();
        CLASSES.get_or_init(|| parse_weights(WEIGHTS_CSV))
    }

    /// The class of a SNOMED CT code, if it is scored.
    pub fn class_of(&self, code: &str) -> Option<usize> {
        self.codes.iter().position(|c| c.iter().any(|x| x == code))
    }

    /// The multi-hot label vector of a record's Dx codes (unscored codes are ignored).
    pub fn label_vector(&self, dx_codes: &[String]) -> Vec<bool> {
        let mut out = vec![false; self.codes.len()];
        for code in dx_codes {
            if let Some(c) = self.class_of(code) {
                out[c] = true;
            }
        }
        out
    }
}

/// Parses the embedded table; it is part of the program, so a malformed table is a bug that
/// the tests catch, and missing cells parse as 0.
fn parse_weights(text: &str) -> ScoredClasses {
    let mut lines = text.lines();
    let codes: Vec<Vec<String>> = lines
        .next()
        .unwrap_or_default()
        .split(',')
        .skip(1)
        .map(|col| col.split('|').map(str::to_string).collect())
        .collect();
    let weights = lines
        .map(|line| {
            line.split(',')
                .skip(1)
                .map(|w| w.trim().parse::<f64>().unwrap_or(0.0))
                .collect()
        })
        .collect();
    ScoredClasses { codes, weights }
}

/// The Dx codes of a header's comments (`Dx: 164889003,426783006`).
pub fn dx_codes(comments: &[String]) -> Option<Vec<String>> {
    comments.iter().find_map(|c| {
        let value = c.strip_prefix("Dx:")?;
        Some(
            value
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn weights_file_is_the_challenge_file() {
        let digest = Sha256::digest(WEIGHTS_CSV.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, WEIGHTS_SHA256);
        assert_eq!(WEIGHTS_CSV.len(), 4113);
    }

    #[test]
    fn twenty_six_classes_with_equivalences_and_a_unit_diagonal() {
        let classes = ScoredClasses::get();
        assert_eq!(classes.codes.len(), 26);
        assert_eq!(classes.weights.len(), 26);
        for (i, row) in classes.weights.iter().enumerate() {
            assert_eq!(row.len(), 26);
            assert_eq!(row[i], 1.0);
            for (j, w) in row.iter().enumerate() {
                assert_eq!(*w, classes.weights[j][i], "weights are symmetric");
            }
        }
        // Both codes of an equivalence pair map to one class.
        assert_eq!(classes.class_of("59118001"), classes.class_of("713427006"));
        assert_eq!(classes.class_of("426783006"), Some(14)); // NSR, column 15
        assert_eq!(CINC2021_CLASSES[14], "NSR");
        assert_eq!(classes.class_of("55930002"), None); // unscored S-T changes
        let v = classes.label_vector(&["17338001".into(), "251238007".into()]);
        assert_eq!(v.iter().filter(|x| **x).count(), 1);
        assert!(v[18]); // PVC|VPB
    }

    #[test]
    fn dx_line_parsing() {
        let comments = vec![
            "Age: 74".to_string(),
            "Dx: 67741000119109,426177001".to_string(),
        ];
        assert_eq!(
            dx_codes(&comments),
            Some(vec!["67741000119109".to_string(), "426177001".to_string()])
        );
        assert_eq!(dx_codes(&["Sex: Male".to_string()]), None);
    }
}
