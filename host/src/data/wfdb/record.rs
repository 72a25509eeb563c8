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
            let data_path = folder.join(&first.file_name);
            let bytes = std::fs::read(&data_path).map_err(|e| DataError::io(&data_path, e))?;
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
        let invalid = self.format(signal).map(|f| f.invalid_code());
        let (baseline, gain) = (spec.baseline as f64, spec.gain);
        move |digital| (Some(digital) != invalid).then(|| (f64::from(digital) - baseline) / gain)
    }

    /// Number of invalid-sample codes in one signal.
    pub fn invalid_count(&self, signal: usize) -> usize {
        match self.format(signal) {
            Some(f) => {
                let code = f.invalid_code();
                self.samples[signal].iter().filter(|&&d| d == code).count()
            }
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
    let n_values = n_frames * values_per_frame as u64;
    let expected = offset + format.bytes_for(n_values);
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
    // no whole-file intermediate copy. An even frame count per block keeps format 212's
    // sample pairs from straddling two blocks.
    const FRAMES_PER_BLOCK: usize = 4096;
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
    apply_skew(header, group, format, &mut per_signal);
    Ok(per_signal)
}

/// A skewed signal's sample i is stored in frame i + skew; the tail it lacks is invalid.
fn apply_skew(header: &Header, group: &[usize], format: SignalFormat, per_signal: &mut [Vec<i32>]) {
    for (out, &i) in per_signal.iter_mut().zip(group) {
        let spec = &header.signals[i];
        if let Some(skew) = spec.skew.filter(|&s| s > 0) {
            let shift = (skew as usize * spec.samples_per_frame as usize).min(out.len());
            out.drain(..shift);
            out.extend(std::iter::repeat_n(format.invalid_code(), shift));
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
