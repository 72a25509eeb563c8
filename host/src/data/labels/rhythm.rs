//! Rhythm intervals from MIT-format rhythm annotations.
//!
//! Each `+` annotation starts the rhythm named by its aux note (`(AFIB`, `(N`...) and the
//! rhythm lasts until the next `+` or the record's end; samples before the first `+` are of
//! unknown rhythm.

use crate::data::wfdb::{Annotation, AnnotationCode};

/// A stretch of one rhythm, `[start, end)` in samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RhythmInterval {
    /// First sample.
    pub start: usize,
    /// One past the last sample.
    pub end: usize,
    /// The aux note as written, trailing NULs and spaces removed (`(AFIB`).
    pub rhythm: String,
}

/// The rhythm intervals of a record of `n_samples` samples.
pub fn rhythm_intervals(annotations: &[Annotation], n_samples: usize) -> Vec<RhythmInterval> {
    let changes: Vec<(usize, String)> = annotations
        .iter()
        .filter(|a| a.code == AnnotationCode::RHYTHM && !a.aux.trim().is_empty())
        .map(|a| {
            let at = a.sample.clamp(0, n_samples as i64) as usize;
            (at, a.aux.trim_end_matches(['\0', ' ']).to_string())
        })
        .collect();
    let mut out = Vec::with_capacity(changes.len());
    for (i, (start, rhythm)) in changes.iter().enumerate() {
        let end = changes.get(i + 1).map_or(n_samples, |(next, _)| *next);
        if end > *start {
            out.push(RhythmInterval {
                start: *start,
                end,
                rhythm: rhythm.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rhythm(sample: i64, aux: &str) -> Annotation {
        Annotation {
            sample,
            code: AnnotationCode::RHYTHM,
            subtype: 0,
            chan: 0,
            num: 0,
            aux: aux.to_string(),
            aux_had_nul: false,
        }
    }

    #[test]
    fn intervals_run_to_the_next_change_or_the_end() {
        let beat = Annotation {
            code: AnnotationCode(1),
            ..rhythm(50, "")
        };
        let anns = [
            rhythm(18, "(N"),
            beat,
            rhythm(100, "(AFIB "),
            rhythm(300, "(N"),
        ];
        let iv = rhythm_intervals(&anns, 1000);
        assert_eq!(iv.len(), 3);
        assert_eq!(
            (iv[0].start, iv[0].end, iv[0].rhythm.as_str()),
            (18, 100, "(N")
        );
        assert_eq!(
            (iv[1].start, iv[1].end, iv[1].rhythm.as_str()),
            (100, 300, "(AFIB")
        );
        assert_eq!((iv[2].start, iv[2].end), (300, 1000));
    }
}
