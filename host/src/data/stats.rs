//! Per-record statistics of a WFDB record as stored: what `ecgnas data inspect` without a
//! task reports, so a user can check that ecgnas read a recording right.
//!
//! Every number is computed on the digital samples exactly as the signal files store them
//! (baseline not subtracted, invalid-sample codes included), the convention of PhysioNet's
//! `wfdb.rdrecord(..., physical=False)` and of the `reference.json` files under
//! `shared/data`. Sums are exact: they are accumulated with checked 64-bit arithmetic, and a
//! record whose sums do not fit is refused with an error rather than reported wrong.

use std::collections::BTreeMap;

use super::wfdb::{Annotation, WfdbRecord};
use super::DataError;

/// Statistics of one record.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordStats {
    /// The record's name: its header's file stem.
    pub id: String,
    /// Sampling frequency from the header, in Hz (the frame rate for multi-frequency records).
    pub fs: f64,
    /// Samples per signal (frames).
    pub n_samples: usize,
    /// Duration in seconds, `n_samples / fs`.
    pub duration_s: f64,
    /// One entry per signal, in header order.
    pub signals: Vec<SignalStats>,
    /// Annotation counts, or `None` when no annotation list was given (no `.atr` file).
    pub annotations: Option<AnnotationCounts>,
}

/// Statistics of one signal: its header fields and sums over its digital samples.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalStats {
    /// The signal's description (its lead name), as written in the header.
    pub name: String,
    /// The physical unit.
    pub units: String,
    /// The storage format number.
    pub format: u16,
    /// ADC units per physical unit.
    pub gain: f64,
    /// Whether the header states a gain (a missing or zero gain means uncalibrated: `gain`
    /// is then WFDB's default and physical values are nominal).
    pub calibrated: bool,
    /// The digital value of 0 physical units.
    pub baseline: i64,
    /// ADC resolution in bits.
    pub adc_resolution: u32,
    /// ADC zero.
    pub adc_zero: i64,
    /// Smallest stored digital sample; `None` for a signal without samples.
    pub min: Option<i32>,
    /// Largest stored digital sample; `None` for a signal without samples.
    pub max: Option<i32>,
    /// Exact sum of every stored digital sample (invalid codes included as stored).
    pub sum: i64,
    /// Exact sum of the squares of every stored digital sample.
    pub sum_sq: u64,
    /// Number of invalid-sample codes.
    pub invalid: usize,
    /// Whether the header's checksum matches the samples; `None` where the header has none.
    pub checksum_ok: Option<bool>,
}

/// Annotation counts of one record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnnotationCounts {
    /// Annotations per WFDB symbol (`N`, `V`, `+`...).
    pub counts: BTreeMap<String, usize>,
    /// Annotations per non-empty auxiliary note, trailing NUL padding removed (`(N`, `(AFIB`).
    pub aux_counts: BTreeMap<String, usize>,
}

/// Computes a record's statistics; `annotations` are those of its `.atr` file, if it has one.
///
/// Fails only when a sum or sum of squares does not fit in 64 bits.
pub fn record_stats(
    record: &WfdbRecord,
    annotations: Option<&[Annotation]>,
) -> Result<RecordStats, DataError> {
    let header = &record.header;
    let n_samples = record.n_samples();
    let signals = header
        .signals
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let sums = digital_sums(&record.samples[i]).ok_or_else(|| {
                DataError::invalid(
                    &record.header_path,
                    format!(
                        "signal {i} ({}): the sum or sum of squares of its samples does not fit \
                         in 64 bits",
                        spec.description
                    ),
                )
            })?;
            Ok(SignalStats {
                name: spec.description.clone(),
                units: spec.units.clone(),
                format: spec.format_code,
                gain: spec.gain,
                calibrated: spec.calibrated,
                baseline: spec.baseline,
                adc_resolution: spec.adc_resolution,
                adc_zero: spec.adc_zero,
                min: sums.min,
                max: sums.max,
                sum: sums.sum,
                sum_sq: sums.sum_sq,
                invalid: record.invalid_count(i),
                checksum_ok: record.checksum_ok(i),
            })
        })
        .collect::<Result<Vec<_>, DataError>>()?;
    let duration_s = if header.fs > 0.0 {
        n_samples as f64 / header.fs
    } else {
        0.0
    };
    Ok(RecordStats {
        id: record.header_path.file_stem().map_or_else(
            || header.record_name.clone(),
            |s| s.to_string_lossy().into_owned(),
        ),
        fs: header.fs,
        n_samples,
        duration_s,
        signals,
        annotations: annotations.map(annotation_counts),
    })
}

/// Counts annotations by symbol and by auxiliary note (trailing NULs removed, empty notes
/// not counted).
pub fn annotation_counts(annotations: &[Annotation]) -> AnnotationCounts {
    let mut out = AnnotationCounts::default();
    for a in annotations {
        *out.counts.entry(a.code.symbol()).or_insert(0) += 1;
        let aux = a.aux.trim_end_matches('\0');
        if !aux.is_empty() {
            *out.aux_counts.entry(aux.to_string()).or_insert(0) += 1;
        }
    }
    out
}

/// Minimum, maximum, sum and sum of squares of a signal's samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DigitalSums {
    min: Option<i32>,
    max: Option<i32>,
    sum: i64,
    sum_sq: u64,
}

/// The exact sums of `samples`, or `None` if a sum overflows 64 bits.
fn digital_sums(samples: &[i32]) -> Option<DigitalSums> {
    let mut sum: i64 = 0;
    let mut sum_sq: u64 = 0;
    for &v in samples {
        sum = sum.checked_add(i64::from(v))?;
        let magnitude = u64::from(v.unsigned_abs());
        // |v| <= 2^31, so the square (<= 2^62) always fits; only the running sum can overflow.
        sum_sq = sum_sq.checked_add(magnitude * magnitude)?;
    }
    Some(DigitalSums {
        min: samples.iter().copied().min(),
        max: samples.iter().copied().max(),
        sum,
        sum_sq,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::wfdb::AnnotationCode;

    #[test]
    fn sums_are_exact_and_include_extremes() {
        let s = digital_sums(&[-2048, 3, 2047, i32::MIN]).expect("fits");
        assert_eq!(s.min, Some(i32::MIN));
        assert_eq!(s.max, Some(2047));
        assert_eq!(s.sum, -2048 + 3 + 2047 + i64::from(i32::MIN));
        assert_eq!(
            s.sum_sq,
            2048 * 2048 + 9 + 2047 * 2047 + (1u64 << 31) * (1u64 << 31)
        );
    }

    #[test]
    fn empty_signal_has_no_extremes() {
        let s = digital_sums(&[]).expect("fits");
        assert_eq!((s.min, s.max, s.sum, s.sum_sq), (None, None, 0, 0));
    }

    #[test]
    fn overflowing_sum_of_squares_is_refused() {
        // Each square is 2^62: four of them make 2^64, one more than u64 holds.
        assert!(digital_sums(&[i32::MIN; 3]).is_some());
        assert!(digital_sums(&[i32::MIN; 4]).is_none());
    }

    #[test]
    fn aux_notes_lose_nul_padding_and_empty_ones_are_not_counted() {
        let ann = |code: u8, aux: &str| Annotation {
            sample: 0,
            code: AnnotationCode(code),
            subtype: 0,
            chan: 0,
            num: 0,
            aux: aux.to_string(),
            aux_had_nul: false,
        };
        let counts = annotation_counts(&[ann(28, "(N\0"), ann(1, ""), ann(1, ""), ann(28, "(N")]);
        assert_eq!(counts.counts.get("N"), Some(&2));
        assert_eq!(counts.counts.get("+"), Some(&2));
        assert_eq!(counts.aux_counts.len(), 1);
        assert_eq!(counts.aux_counts.get("(N"), Some(&2));
    }
}
