//! WFDB header files (`.hea`): the record line, one line per signal, and comment lines.
//!
//! Grammar (PhysioNet's *header(5)*):
//! `record[/segments] n_signals [fs[/counter_fs[(base_counter)]] [n_samples [base_time [base_date]]]]`,
//! then per signal
//! `file format[xspf][:skew][+offset] [gain[(baseline)][/units] [adc_res [adc_zero [init [checksum [block_size [description]]]]]]]`.
//! Lines starting with `#` are comments and may appear anywhere.
//!
//! Real files bend the grammar, and the parser accepts what PhysioNet serves: CinC 2017 writes
//! the date before the time as `YYYY-MM-DD`, CinC 2021 (Georgia) names the record with its
//! `.mat` extension and writes `DD-Mon-YYYY`, PTB-XL spells the unit `mv`, CPSC 2021 writes
//! fractional gains, baselines beyond 16 bits and unsigned checksums. Base time and date are
//! kept as written and never interpreted.

use super::format::SignalFormat;
use super::ParseError;

/// WFDB's default gain when a header gives none (or 0): 200 ADC units per physical unit.
pub const DEFAULT_GAIN: f64 = 200.0;

/// A parsed header.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// The record name as written (a trailing `.mat` or `.hea`, as some CinC headers have, removed).
    pub record_name: String,
    /// Number of segments for a multi-segment record (`name/n`); `None` for ordinary records.
    pub n_segments: Option<u32>,
    /// Sampling frequency per signal, in Hz (WFDB's default 250 when absent).
    pub fs: f64,
    /// Counter frequency, if given.
    pub counter_fs: Option<f64>,
    /// Base counter value, if given.
    pub base_counter: Option<f64>,
    /// Samples per signal, if given.
    pub n_samples: Option<u64>,
    /// The base time field as written, never interpreted.
    pub base_time: Option<String>,
    /// The base date field as written, never interpreted.
    pub base_date: Option<String>,
    /// One entry per signal, in header order.
    pub signals: Vec<SignalSpec>,
    /// Comment lines without the leading `#` and surrounding white space.
    pub comments: Vec<String>,
}

/// One signal line of a header.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalSpec {
    /// The signal file's name, relative to the header's folder.
    pub file_name: String,
    /// The storage format number (see [`SignalFormat`]; unsupported numbers are kept so the
    /// reader can name them).
    pub format_code: u16,
    /// Samples of this signal per frame.
    pub samples_per_frame: u32,
    /// Skew in frames, if given.
    pub skew: Option<u32>,
    /// Bytes to skip at the start of the signal file, if given.
    pub byte_offset: Option<u64>,
    /// ADC units per physical unit ([`DEFAULT_GAIN`] when absent or 0).
    pub gain: f64,
    /// Whether the header states a gain: a missing or zero gain means an uncalibrated signal,
    /// whose physical values use [`DEFAULT_GAIN`] and are only nominal.
    pub calibrated: bool,
    /// The digital value that corresponds to 0 physical units (ADC zero when not given).
    pub baseline: i64,
    /// The physical unit (`mV` when not given).
    pub units: String,
    /// ADC resolution in bits (the format's width when not given).
    pub adc_resolution: u32,
    /// ADC zero.
    pub adc_zero: i64,
    /// The first sample's value as the header states it.
    pub initial_value: i64,
    /// The 16-bit checksum of all samples, if given (stored as written: signed or unsigned).
    pub checksum: Option<i64>,
    /// Block size, if given.
    pub block_size: Option<u32>,
    /// The signal's description (its lead name for ECG).
    pub description: String,
}

impl SignalSpec {
    /// The storage format, or `None` when this reader does not decode it.
    pub fn format(&self) -> Option<SignalFormat> {
        SignalFormat::from_code(self.format_code)
    }
}

impl Header {
    /// Parses a header file's bytes.
    pub fn parse(bytes: &[u8]) -> Result<Header, ParseError> {
        let text = std::str::from_utf8(bytes).map_err(|e| {
            ParseError::new(
                0,
                format!(
                    "the header is not valid UTF-8 text (bad byte at offset {})",
                    e.valid_up_to()
                ),
            )
        })?;
        let mut comments = Vec::new();
        let mut record: Option<(usize, &str)> = None;
        let mut signal_lines = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if let Some(comment) = trimmed.strip_prefix('#') {
                comments.push(comment.trim().to_string());
            } else if trimmed.is_empty() {
                continue;
            } else if record.is_none() {
                record = Some((index + 1, trimmed));
            } else {
                signal_lines.push((index + 1, trimmed));
            }
        }
        let Some((record_line_no, record_line)) = record else {
            return Err(ParseError::new(0, "the header has no record line"));
        };
        let (mut header, n_signals) = parse_record_line(record_line_no, record_line)?;
        header.comments = comments;
        if header.n_segments.is_some() {
            return Err(ParseError::new(
                record_line_no,
                "multi-segment records (a master header listing segments) are not \
                 supported: read each segment's own header",
            ));
        }
        if signal_lines.len() < n_signals {
            return Err(ParseError::new(
                signal_lines.last().map_or(record_line_no, |(n, _)| *n),
                format!(
                    "the record line declares {n_signals} signal(s) but only {} signal line(s) follow",
                    signal_lines.len()
                ),
            ));
        }
        if signal_lines.len() > n_signals {
            let (line_no, _) = signal_lines[n_signals];
            return Err(ParseError::new(
                line_no,
                format!(
                    "the record line declares {n_signals} signal(s) but more signal lines follow"
                ),
            ));
        }
        for (line_no, line) in signal_lines {
            header.signals.push(parse_signal_line(line_no, line)?);
        }
        Ok(header)
    }

    /// Index of the first signal whose description is `name`.
    pub fn signal_index(&self, name: &str) -> Option<usize> {
        self.signals.iter().position(|s| s.description == name)
    }

    /// Duration in seconds, when the header gives the sample count.
    pub fn duration_s(&self) -> Option<f64> {
        self.n_samples.map(|n| n as f64 / self.fs)
    }
}

/// Parses the record line; returns the header without signals, and the declared signal count.
fn parse_record_line(line_no: usize, line: &str) -> Result<(Header, usize), ParseError> {
    let err = |message: String| ParseError::new(line_no, message);
    let fields: Vec<&str> = line.split_whitespace().collect();
    let name_field = fields[0];
    let (name, n_segments) = match name_field.split_once('/') {
        Some((name, segs)) => {
            let n = segs
                .parse::<u32>()
                .map_err(|_| err(format!("bad segment count {segs:?} in record line")))?;
            (name, Some(n))
        }
        None => (name_field, None),
    };
    let name = name
        .strip_suffix(".mat")
        .or_else(|| name.strip_suffix(".hea"))
        .unwrap_or(name);
    let n_signals_field = fields
        .get(1)
        .ok_or_else(|| err("the record line has no signal count".to_string()))?;
    let n_signals: usize = n_signals_field.parse().map_err(|_| {
        err(format!(
            "bad signal count {n_signals_field:?} in record line"
        ))
    })?;
    if n_signals > 4096 {
        return Err(err(format!(
            "implausible signal count {n_signals} in record line"
        )));
    }
    let mut fs = 250.0;
    let mut counter_fs = None;
    let mut base_counter = None;
    if let Some(fs_field) = fields.get(2) {
        let (fs_text, counter) = match fs_field.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (*fs_field, None),
        };
        fs = parse_positive_f64(fs_text).ok_or_else(|| {
            err(format!(
                "bad sampling frequency {fs_field:?} in record line"
            ))
        })?;
        if let Some(counter) = counter {
            let (cf, bc) = split_parenthesised(counter)
                .ok_or_else(|| err(format!("bad counter frequency {counter:?}")))?;
            counter_fs = Some(
                parse_positive_f64(cf)
                    .ok_or_else(|| err(format!("bad counter frequency {cf:?}")))?,
            );
            if let Some(bc) = bc {
                base_counter = Some(
                    bc.parse::<f64>()
                        .map_err(|_| err(format!("bad base counter value {bc:?}")))?,
                );
            }
        }
    }
    let n_samples = match fields.get(3) {
        Some(text) => Some(
            text.parse::<u64>()
                .map_err(|_| err(format!("bad sample count {text:?} in record line")))?,
        ),
        None => None,
    };
    let header = Header {
        record_name: name.to_string(),
        n_segments,
        fs,
        counter_fs,
        base_counter,
        n_samples,
        base_time: fields.get(4).map(|s| s.to_string()),
        base_date: fields.get(5).map(|s| s.to_string()),
        signals: Vec::with_capacity(n_signals),
        comments: Vec::new(),
    };
    Ok((header, n_signals))
}

fn parse_signal_line(line_no: usize, line: &str) -> Result<SignalSpec, ParseError> {
    let err = |message: String| ParseError::new(line_no, message);
    let fields: Vec<&str> = line.split_whitespace().collect();
    let file_name = fields[0].to_string();
    let format_field = fields
        .get(1)
        .ok_or_else(|| err(format!("signal line for {file_name} has no format field")))?;
    let (format_code, samples_per_frame, skew, byte_offset) = parse_format_field(format_field)
        .ok_or_else(|| {
            err(format!(
                "bad format field {format_field:?} (expected format[xspf][:skew][+offset])"
            ))
        })?;
    let default_bits = SignalFormat::from_code(format_code).map_or(12, |f| f.bits());

    let (mut gain, mut baseline, mut units) = (DEFAULT_GAIN, None, "mV".to_string());
    let mut calibrated = false;
    if let Some(gain_field) = fields.get(2) {
        let (g, b, u) = parse_gain_field(gain_field).ok_or_else(|| {
            err(format!(
                "bad gain field {gain_field:?} (expected gain[(baseline)][/units])"
            ))
        })?;
        if g != 0.0 {
            gain = g;
            calibrated = true;
        }
        baseline = b;
        if let Some(u) = u {
            units = u.to_string();
        }
    }
    let integer = |index: usize, what: &str| -> Result<Option<i64>, ParseError> {
        match fields.get(index) {
            None => Ok(None),
            Some(text) => text
                .parse::<i64>()
                .map(Some)
                .map_err(|_| err(format!("bad {what} {text:?}"))),
        }
    };
    let adc_resolution = match integer(3, "ADC resolution")? {
        None | Some(0) => default_bits,
        Some(bits) if (1..=32).contains(&bits) => bits as u32,
        Some(bits) => return Err(err(format!("ADC resolution {bits} is outside 1..32 bits"))),
    };
    let adc_zero = integer(4, "ADC zero")?.unwrap_or(0);
    let initial_value = integer(5, "initial value")?.unwrap_or(adc_zero);
    let checksum = integer(6, "checksum")?;
    let block_size = match integer(7, "block size")? {
        None => None,
        Some(b) => Some(u32::try_from(b).map_err(|_| err(format!("bad block size {b}")))?),
    };
    let description = if fields.len() > 8 {
        fields[8..].join(" ")
    } else {
        String::new()
    };
    Ok(SignalSpec {
        file_name,
        format_code,
        samples_per_frame,
        skew,
        byte_offset,
        gain,
        calibrated,
        baseline: baseline.unwrap_or(adc_zero),
        units,
        adc_resolution,
        adc_zero,
        initial_value,
        checksum,
        block_size,
        description,
    })
}

/// `format[xspf][:skew][+offset]` -> (format, samples per frame, skew, byte offset).
fn parse_format_field(field: &str) -> Option<(u16, u32, Option<u32>, Option<u64>)> {
    let (rest, offset) = match field.split_once('+') {
        Some((a, b)) => (a, Some(b.parse::<u64>().ok()?)),
        None => (field, None),
    };
    let (rest, skew) = match rest.split_once(':') {
        Some((a, b)) => (a, Some(b.parse::<u32>().ok()?)),
        None => (rest, None),
    };
    let (format, spf) = match rest.split_once('x') {
        Some((a, b)) => (a, b.parse::<u32>().ok()?),
        None => (rest, 1),
    };
    if spf == 0 || spf > 1 << 16 {
        return None;
    }
    Some((format.parse::<u16>().ok()?, spf, skew, offset))
}

/// `gain[(baseline)][/units]` -> (gain, baseline, units).
fn parse_gain_field(field: &str) -> Option<(f64, Option<i64>, Option<&str>)> {
    let (rest, units) = match field.split_once('/') {
        Some((a, b)) if !b.is_empty() => (a, Some(b)),
        Some(_) => return None,
        None => (field, None),
    };
    let (gain, baseline) = split_parenthesised(rest)?;
    let gain: f64 = gain.parse().ok()?;
    if !gain.is_finite() || gain < 0.0 {
        return None;
    }
    let baseline = match baseline {
        Some(b) => Some(b.parse::<i64>().ok()?),
        None => None,
    };
    Some((gain, baseline, units))
}

/// `value(inner)` -> ("value", Some("inner")); `value` -> ("value", None).
fn split_parenthesised(text: &str) -> Option<(&str, Option<&str>)> {
    match text.split_once('(') {
        Some((value, rest)) => Some((value, Some(rest.strip_suffix(')')?))),
        None => Some((text, None)),
    }
}

fn parse_positive_f64(text: &str) -> Option<f64> {
    let value: f64 = text.parse().ok()?;
    (value.is_finite() && value > 0.0).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mitdb_header_with_defaults_for_baseline_and_units() {
        let text = "100 2 360 650000\r\n100.dat 212 200 11 1024 995 -22131 0 MLII\r\n100.dat 212 200 11 1024 1011 20052 0 V5\r\n# 69 M 1085 1629 x1\r\n";
        let h = Header::parse(text.as_bytes()).unwrap();
        assert_eq!(h.record_name, "100");
        assert_eq!(h.fs, 360.0);
        assert_eq!(h.n_samples, Some(650000));
        assert_eq!(h.signals.len(), 2);
        let s = &h.signals[0];
        assert_eq!(
            (s.format_code, s.gain, s.baseline, s.adc_zero),
            (212, 200.0, 1024, 1024)
        );
        assert_eq!(s.units, "mV");
        assert_eq!(s.checksum, Some(-22131));
        assert_eq!(h.signals[1].description, "V5");
        assert_eq!(h.comments, vec!["69 M 1085 1629 x1"]);
    }

    #[test]
    fn cinc_headers_with_offsets_dates_and_extensions() {
        let text = "E07500.mat 12 500 5000 05-May-2020 09:49:17\n".to_string()
            + &"E07500.mat 16+24 1000/mV 16 0 -68 1250 0 I\n".repeat(12)
            + "#Dx: 164889003,426783006\n";
        let h = Header::parse(text.as_bytes()).unwrap();
        assert_eq!(h.record_name, "E07500");
        assert_eq!(h.base_time.as_deref(), Some("05-May-2020"));
        let s = &h.signals[0];
        assert_eq!((s.byte_offset, s.gain, s.baseline), (Some(24), 1000.0, 0));
        assert_eq!(h.comments, vec!["Dx: 164889003,426783006"]);
    }

    #[test]
    fn fractional_gain_wide_baseline_and_unsigned_checksum() {
        let text = "data_92_19 1 200 72490\ndata_92_19.dat 16 37837.142857142855(-178440)/mV 16 0 -2497 39969 0 I\n";
        let s = &Header::parse(text.as_bytes()).unwrap().signals[0];
        assert_eq!(s.gain, 37837.142857142855);
        assert_eq!(s.baseline, -178440);
        assert_eq!(s.checksum, Some(39969));
    }

    #[test]
    fn format_field_with_frames_skew_and_offset() {
        assert_eq!(
            parse_format_field("212x4:3+512"),
            Some((212, 4, Some(3), Some(512)))
        );
        assert_eq!(parse_format_field("16"), Some((16, 1, None, None)));
        assert_eq!(parse_format_field("16x0"), None);
        assert_eq!(parse_format_field("abc"), None);
    }

    #[test]
    fn malformed_lines_name_their_line() {
        let e = Header::parse(b"rec 1 360 1000\nrec.dat 212 abc(1)/mV\n").unwrap_err();
        assert_eq!(e.position, 2);
        assert!(e.message.contains("gain"), "{}", e.message);
        let e = Header::parse(b"rec 2 360 1000\nrec.dat 212\n").unwrap_err();
        assert!(e.message.contains("declares 2 signal"), "{}", e.message);
        let e = Header::parse(b"rec x 360\n").unwrap_err();
        assert_eq!(e.position, 1);
        let e = Header::parse(b"# only a comment\n").unwrap_err();
        assert!(e.message.contains("no record line"));
        let e = Header::parse(b"rec 1 360\n\xff\xfe 212\n").unwrap_err();
        assert!(e.message.contains("UTF-8"));
    }
}
