//! Reading a WFDB record from disk: its header, its signal files, and its annotation files.

use std::path::{Path, PathBuf};

use super::annotation::{self, Annotation};
use super::format::SignalFormat;
use super::header::Header;
use super::{matlab, signal};
use crate::data::DataError;

/// A record as stored: the header and each signal's digital samples.
#[derive(Debug, Clone)]
pub struct WfdbRecord {
    /// The header file this record was read from.
    pub header_path: PathBuf,
    /// The parsed header.
    pub header: Header,
    /// Digital samples per signal, as stored (baseline not subtracted; invalid codes kept).
    /// A signal with `k` samples per frame has `k` values per frame.
    pub samples: Vec<Vec<i32>>,
}

/// Reads and parses a header file.
pub fn read_header(path: &Path) -> Result<Header, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    Header::parse(&bytes).map_err(|e| DataError::Header {
        path: path.to_path_buf(),
        line: e.position,
        message: e.message,
    })
}

/// Reads an annotation file.
pub fn read_annotations(path: &Path) -> Result<Vec<Annotation>, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    annotation::parse(&bytes).map_err(|e| DataError::Annotation {
        path: path.to_path_buf(),
        offset: e.position,
        message: e.message,
    })
}

impl WfdbRecord {
    /// Reads the record whose header is `header_path` (signal files are looked up beside it).
    pub fn read(header_path: &Path) -> Result<WfdbRecord, DataError> {
        let header = read_header(header_path)?;
        let folder = header_path.parent().unwrap_or(Path::new("."));
        Self::from_header(header_path, header, |file_name| {
            let data_path = folder.join(file_name);
            std::fs::read(&data_path).map_err(|e| DataError::io(&data_path, e))
        })
    }

    /// Decodes a record from bytes: the header's, and those `signal_file` returns for each
    /// signal file name. What [`WfdbRecord::read`] does without the file system, so that the
    /// header parser and the signal readers can be fuzzed together; `header_path` only names
    /// the files in errors (and tells `.mat` containers apart).
    pub fn from_bytes(
        header_path: &Path,
        header_bytes: &[u8],
        signal_file: impl FnMut(&str) -> Result<Vec<u8>, DataError>,
    ) -> Result<WfdbRecord, DataError> {
        let header = Header::parse(header_bytes).map_err(|e| DataError::Header {
            path: header_path.to_path_buf(),
            line: e.position,
            message: e.message,
        })?;
        Self::from_header(header_path, header, signal_file)
    }

    fn from_header(
        header_path: &Path,
        header: Header,
        mut signal_file: impl FnMut(&str) -> Result<Vec<u8>, DataError>,
    ) -> Result<WfdbRecord, DataError> {
        let folder = header_path.parent().unwrap_or(Path::new("."));
        let mut samples: Vec<Vec<i32>> = vec![Vec::new(); header.signals.len()];
        for group in file_groups(&header) {
            let first = &header.signals[group[0]];
            let format = first.format().ok_or_else(|| DataError::UnsupportedFormat {
                path: header_path.to_path_buf(),
                format: first.format_code.to_string(),
            })?;
            if let Some(&other) = group
                .iter()
                .find(|&&i| header.signals[i].format_code != first.format_code)
            {
                return Err(DataError::invalid(
                    header_path,
                    format!(
                        "signals {} and {} share the file {} but have formats {} and {}",
                        group[0],
                        other,
                        first.file_name,
                        first.format_code,
                        header.signals[other].format_code
                    ),
                ));
            }
            if let Some(&other) = group
                .iter()
                .find(|&&i| header.signals[i].byte_offset != first.byte_offset)
            {
                return Err(DataError::invalid(
                    header_path,
                    format!(
                        "signals {} and {} share the file {} but have different byte offsets",
                        group[0], other, first.file_name
                    ),
                ));
            }
            let data_path = folder.join(&first.file_name);
            let bytes = signal_file(&first.file_name)?;
            let decoded = decode_group(&header, &group, format, &data_path, &bytes)?;
            for (signal_index, values) in group.iter().zip(decoded) {
                samples[*signal_index] = values;
            }
        }
        Ok(WfdbRecord {
            header_path: header_path.to_path_buf(),
            header,
            samples,
        })
    }

    /// Samples per signal (frames).
    pub fn n_samples(&self) -> usize {
        match (self.samples.first(), self.header.signals.first()) {
            (Some(s), Some(spec)) => s.len() / spec.samples_per_frame as usize,
            _ => self.header.n_samples.unwrap_or(0) as usize,
        }
    }

    /// The signal's storage format (always decodable once the record is read).
    pub fn format(&self, signal: usize) -> Option<SignalFormat> {
        self.header.signals.get(signal).and_then(|s| s.format())
    }

    /// The physical value of a digital sample of one signal, `(digital - baseline) / gain` in
    /// f64 as PhysioNet's readers compute it; `None` for the invalid-sample code.
    pub fn physical_value(&self, signal: usize, digital: i32) -> Option<f64> {
        self.to_physical(signal)(digital)
    }

    /// Physical values of one signal as f32; NaN for invalid samples.
    pub fn physical(&self, signal: usize) -> Vec<f32> {
        let convert = self.to_physical(signal);
        self.samples[signal]
            .iter()
            .map(|&d| convert(d).map_or(f32::NAN, |v| v as f32))
            .collect()
    }

    /// The digital-to-physical conversion of one signal, its constants looked up once.
    fn to_physical(&self, signal: usize) -> impl Fn(i32) -> Option<f64> {
        let spec = &self.header.signals[signal];
        let invalid = self.format(signal).and_then(|f| f.invalid_code());
        let (baseline, gain) = (spec.baseline as f64, spec.gain);
        move |digital| (Some(digital) != invalid).then(|| (f64::from(digital) - baseline) / gain)
    }

    /// Number of invalid-sample codes in one signal.
    pub fn invalid_count(&self, signal: usize) -> usize {
        match self.format(signal).and_then(|f| f.invalid_code()) {
            Some(code) => self.samples[signal].iter().filter(|&&d| d == code).count(),
            None => 0,
        }
    }

    /// The 16-bit sum of a signal's samples, as WFDB computes checksums.
    pub fn checksum_computed(&self, signal: usize) -> i16 {
        let sum = self.samples[signal]
            .iter()
            .fold(0u16, |acc, &d| acc.wrapping_add(d as u16));
        sum as i16
    }

    /// Whether the header's checksum matches the samples (modulo 2^16); `None` without one.
    pub fn checksum_ok(&self, signal: usize) -> Option<bool> {
        let stated = self.header.signals[signal].checksum?;
        Some(stated.rem_euclid(65536) == i64::from(self.checksum_computed(signal) as u16))
    }

    /// Path of an annotation file of this record (`atr`, `qrs`...), whether or not it exists.
    pub fn annotation_path(&self, extension: &str) -> PathBuf {
        let folder = self.header_path.parent().unwrap_or(Path::new("."));
        let stem = self.header_path.file_stem().map_or_else(
            || self.header.record_name.clone(),
            |s| s.to_string_lossy().into_owned(),
        );
        folder.join(format!("{stem}.{extension}"))
    }
}

/// Signal indices grouped by the file that stores them, in order of first appearance.
fn file_groups(header: &Header) -> Vec<Vec<usize>> {
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, spec) in header.signals.iter().enumerate() {
        match groups.iter_mut().find(|(name, _)| *name == spec.file_name) {
            Some((_, members)) => members.push(i),
            None => groups.push((spec.file_name.clone(), vec![i])),
        }
    }
    groups.into_iter().map(|(_, members)| members).collect()
}

/// Decodes one signal file holding the signals `group` (interleaved by frame).
fn decode_group(
    header: &Header,
    group: &[usize],
    format: SignalFormat,
    path: &Path,
    bytes: &[u8],
) -> Result<Vec<Vec<i32>>, DataError> {
    let first = &header.signals[group[0]];
    let offset = first.byte_offset.unwrap_or(0);
    let spf: Vec<usize> = group
        .iter()
        .map(|&i| header.signals[i].samples_per_frame as usize)
        .collect();
    let values_per_frame: usize = spf.iter().sum();
    let file_len = bytes.len() as u64;

    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("mat"))
    {
        let mat = matlab::parse_header(bytes).map_err(|message| DataError::Matlab {
            path: path.to_path_buf(),
            message,
        })?;
        matlab::check_against_header(&mat, format, group.len(), offset, header.n_samples).map_err(
            |message| DataError::Matlab {
                path: path.to_path_buf(),
                message,
            },
        )?;
    }

    let available = file_len.saturating_sub(offset);
    let n_frames = match header.n_samples {
        Some(n) => n,
        None => format.values_in(available) / values_per_frame as u64,
    };
    // Saturating: an absurd sample count becomes a truncated file, caught by the size check
    // before anything is allocated.
    let n_values = n_frames.saturating_mul(values_per_frame as u64);
    let expected = offset.saturating_add(format.bytes_for(n_values));
    let size_error = |truncated: bool| {
        let (expected, got, n_samples, n_signals, format) =
            (expected, file_len, n_frames, group.len(), format.code());
        let path = path.to_path_buf();
        if truncated {
            DataError::TruncatedSignal {
                path,
                expected,
                got,
                n_samples,
                n_signals,
                format,
            }
        } else {
            DataError::SizeMismatch {
                path,
                expected,
                got,
                n_samples,
                n_signals,
                format,
            }
        }
    };
    if file_len < expected {
        return Err(size_error(true));
    }
    // Anything beyond the declared samples, other than padding shorter than one frame, means
    // the header and the file describe different recordings.
    let frame_bytes = format.bytes_for(values_per_frame as u64).max(1);
    if file_len - expected >= frame_bytes {
        return Err(size_error(false));
    }

    let mut per_signal: Vec<Vec<i32>> =
        spf.iter().map(|k| vec![0; k * n_frames as usize]).collect();
    let data = &bytes[offset as usize..];
    if decode_two_signal_212(format, &spf, data, &mut per_signal) {
        apply_skew(header, group, format, &mut per_signal);
        return Ok(per_signal);
    }
    // Decode a block of frames at a time into a small buffer and scatter it to the signals:
    // no whole-file intermediate copy. A frame count per block divisible by 6 keeps format
    // 212's pairs and formats 310/311's triples from straddling two blocks.
    const FRAMES_PER_BLOCK: usize = 6 * 1024;
    debug_assert_eq!(FRAMES_PER_BLOCK % format.values_per_group(), 0);
    let mut block = Vec::with_capacity(FRAMES_PER_BLOCK * values_per_frame);
    let mut frame = 0usize;
    while frame < n_frames as usize {
        let frames = FRAMES_PER_BLOCK.min(n_frames as usize - frame);
        let first_value = (frame * values_per_frame) as u64;
        let from = format.bytes_for(first_value) as usize;
        block.clear();
        signal::decode(format, &data[from..], frames * values_per_frame, &mut block);
        if values_per_frame == group.len() {
            for (out, signal) in per_signal.iter_mut().zip(0..) {
                let dest = &mut out[frame..frame + frames];
                for (d, v) in dest
                    .iter_mut()
                    .zip(block.iter().skip(signal).step_by(values_per_frame))
                {
                    *d = *v;
                }
            }
        } else {
            for (f, values) in block.chunks_exact(values_per_frame).enumerate() {
                let mut at = 0;
                for (out, &k) in per_signal.iter_mut().zip(&spf) {
                    let dest = (frame + f) * k;
                    out[dest..dest + k].copy_from_slice(&values[at..at + k]);
                    at += k;
                }
            }
        }
        frame += frames;
    }
    if format == SignalFormat::F8 {
        integrate_differences(header, group, &mut per_signal);
    }
    apply_skew(header, group, format, &mut per_signal);
    Ok(per_signal)
}

/// Format 8: each stored value is the difference from the same signal's previous sample, the
/// first one from the header's initial value.
fn integrate_differences(header: &Header, group: &[usize], per_signal: &mut [Vec<i32>]) {
    for (values, &i) in per_signal.iter_mut().zip(group) {
        // Initial values beyond 32 bits cannot come from a real format-8 recording; they wrap
        // like every later sum rather than abort the read.
        let mut level = header.signals[i].initial_value as i32;
        for v in values.iter_mut() {
            level = level.wrapping_add(*v);
            *v = level;
        }
    }
}

/// A skewed signal's sample i is stored in frame i + skew; the tail it lacks is invalid (for
/// format 8, which has no invalid code, it repeats the last sample).
fn apply_skew(header: &Header, group: &[usize], format: SignalFormat, per_signal: &mut [Vec<i32>]) {
    for (out, &i) in per_signal.iter_mut().zip(group) {
        let spec = &header.signals[i];
        if let Some(skew) = spec.skew.filter(|&s| s > 0) {
            let shift = (skew as usize * spec.samples_per_frame as usize).min(out.len());
            out.drain(..shift);
            let fill = format
                .invalid_code()
                .or_else(|| out.last().copied())
                .unwrap_or(0);
            out.extend(std::iter::repeat_n(fill, shift));
        }
    }
}

/// The MIT-BIH layout (two signals in format 212, one sample each per frame), where each
/// three bytes are exactly one frame: decoded straight into the two signals. Returns `false`
/// for any other layout.
fn decode_two_signal_212(
    format: SignalFormat,
    spf: &[usize],
    data: &[u8],
    per_signal: &mut [Vec<i32>],
) -> bool {
    let [first, second] = per_signal else {
        return false;
    };
    if format != SignalFormat::F212 || spf != [1, 1] {
        return false;
    }
    let sign_extend_12 = |v: u16| i32::from(((v << 4) as i16) >> 4);
    for ((b, x), y) in data
        .chunks_exact(3)
        .zip(first.iter_mut())
        .zip(second.iter_mut())
    {
        *x = sign_extend_12(u16::from(b[0]) | (u16::from(b[1] & 0x0f) << 8));
        *y = sign_extend_12(u16::from(b[2]) | (u16::from(b[1] & 0xf0) << 4));
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::wfdb::signal::encode;
    use proptest::prelude::*;

    fn read(header: &str, data: &[u8]) -> Result<WfdbRecord, DataError> {
        WfdbRecord::from_bytes(Path::new("t/rec.hea"), header.as_bytes(), |_| {
            Ok(data.to_vec())
        })
    }

    #[test]
    fn format_8_adds_differences_per_signal_from_the_initial_values() {
        // Two signals interleaved: differences 1, 2, 3 for the first (from 100), -1, -1, -1 for
        // the second (from -50).
        let header = "rec 2 100 3\nrec.dat 8 200 8 0 100 0 0 a\nrec.dat 8 200 8 0 -50 0 0 b\n";
        let data = encode(SignalFormat::F8, &[1, -1, 2, -1, 3, -1]);
        let r = read(header, &data).unwrap();
        assert_eq!(r.samples, vec![vec![101, 103, 106], vec![-51, -52, -53]]);
        assert_eq!(r.invalid_count(0), 0, "format 8 has no invalid code");
    }

    #[test]
    fn skew_shifts_and_marks_the_tail_invalid() {
        let header = "rec 2 100 4\nrec.dat 16 200 16 0 0 0 0 a\nrec.dat 16:2 200 16 0 0 0 0 b\n";
        let data = encode(SignalFormat::F16, &[1, 10, 2, 20, 3, 30, 4, 40]);
        let r = read(header, &data).unwrap();
        assert_eq!(r.samples[0], vec![1, 2, 3, 4]);
        assert_eq!(r.samples[1], vec![30, 40, -32768, -32768]);
        assert_eq!(r.physical_value(1, -32768), None);
    }

    #[test]
    fn absurd_sample_counts_are_truncated_files_not_allocations() {
        let header = "rec 2 100 18446744073709551615\nrec.dat 16x65536\nrec.dat 16x65536\n";
        let e = read(header, &[0; 8]).unwrap_err();
        assert!(matches!(e, DataError::TruncatedSignal { .. }), "{e}");
    }

    #[test]
    fn unsupported_formats_are_named() {
        let e = read("rec 1 500 10\nrec.dat 516 200/mV\n", &[0; 20]).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("t/rec.hea") && text.contains("516"), "{text}");
    }

    /// Header lines assembled from the grammar's pieces, valid and not.
    fn header_text() -> impl Strategy<Value = String> {
        let format = prop::sample::select(vec![
            "8", "16", "24", "32", "61", "80", "160", "212", "310", "311", "516", "0", "x",
        ]);
        let signal = (
            format,
            prop::option::of(1u32..5),
            prop::option::of(0u32..4),
            prop::option::of(0u64..9),
            prop::sample::select(vec![
                "",
                " 200",
                " 0(5)",
                " 1.5e+03(-7)/uV",
                " 200/",
                " -1",
                " 200 0",
                " 100 12 0 5 123 0 V5",
            ]),
        )
            .prop_map(|(f, spf, skew, offset, rest)| {
                let mut field = f.to_string();
                if let Some(k) = spf {
                    field += &format!("x{k}");
                }
                if let Some(s) = skew {
                    field += &format!(":{s}");
                }
                if let Some(o) = offset {
                    field += &format!("+{o}");
                }
                format!("rec.dat {field}{rest}")
            });
        (
            0usize..4,
            prop::option::of(0u64..40),
            prop::collection::vec(signal, 0..4),
            any::<bool>(),
        )
            .prop_map(|(n, samples, lines, crlf)| {
                let count = samples.map_or(String::new(), |s| format!(" {s}"));
                let mut text = format!("# c\nrec {n} 250{count}\n");
                for l in lines {
                    text += &l;
                    text += "\n";
                }
                if crlf {
                    text = text.replace('\n', "\r\n");
                }
                text
            })
    }

    proptest! {
        /// Header parser and signal readers together, on headers of the grammar's pieces and
        /// arbitrary signal bytes: never a panic, and a record that reads is consistent.
        #[test]
        fn reading_never_panics(header in header_text(), data in prop::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(r) = read(&header, &data) {
                let frames = r.n_samples();
                for (spec, values) in r.header.signals.iter().zip(&r.samples) {
                    prop_assert_eq!(values.len(), frames * spec.samples_per_frame as usize);
                }
                for i in 0..r.samples.len() {
                    let physical = r.physical(i);
                    prop_assert_eq!(physical.iter().filter(|v| v.is_nan()).count(), r.invalid_count(i));
                }
            }
        }
    }
}
