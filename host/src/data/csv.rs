//! CSV import: one column per lead, a header row, the sampling rate given by the user.
//!
//! The format is the plainest one a spreadsheet or another tool exports:
//!
//! ```text
//! MLII,V5
//! -0.145,-0.065
//! -0.145,-0.065
//! ```
//!
//! - the first row names the leads, one column each;
//! - every further row holds one sample of every lead, in millivolts;
//! - the sampling rate is not in the file: the caller gives it.
//!
//! Fields may be surrounded by whitespace, the file may start with a UTF-8 byte order mark, and
//! blank lines are skipped. Every problem is a [`DataError`] naming the file and the 1-based line.

use std::collections::HashSet;
use std::path::Path;

use super::error::DataError;
use super::signal::{EcgRecord, Lead};

/// The UTF-8 byte order mark some spreadsheet programs write at the start of a file.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Reads a CSV file of leads in millivolts sampled at `fs_hz`.
///
/// The record's id is the file stem, its path the file, every lead's unit `mV`, and it has no
/// comments. Fails when `fs_hz` is not a positive finite number ([`DataError::Invalid`]), when the
/// file cannot be read ([`DataError::Io`]), and with [`DataError::Table`] (file and line) when
/// the file is empty, its first row does not name the leads, a row has the wrong number of
/// fields, a value is not a number or not finite (`column V5: value NaN is not a finite number`),
/// or there are no data rows.
pub fn read_csv(path: &Path, fs_hz: f64) -> Result<EcgRecord, DataError> {
    if !fs_hz.is_finite() || fs_hz <= 0.0 {
        return Err(DataError::invalid(
            path,
            format!("sampling rate {fs_hz} Hz is not a positive finite number"),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let content = bytes.strip_prefix(UTF8_BOM).unwrap_or(&bytes);
    let table_error = |line: usize, message: String| DataError::Table {
        path: path.to_path_buf(),
        line,
        message,
    };

    let mut rows = Rows::new(content, path);
    let mut row = csv::ByteRecord::new();

    // The header row: the first row that is not blank.
    let (names, header_line) = loop {
        let Some(line) = rows.next(&mut row)? else {
            return Err(table_error(
                1,
                "the file is empty: expected a header row naming the leads".to_string(),
            ));
        };
        if !is_blank(&row) {
            break (lead_names(&row, line, path)?, line);
        }
    };

    let mut columns: Vec<Vec<f32>> = vec![Vec::new(); names.len()];
    while let Some(line) = rows.next(&mut row)? {
        if is_blank(&row) {
            continue;
        }
        if row.len() != names.len() {
            return Err(table_error(
                line,
                format!(
                    "{} field(s), but the header names {} lead(s)",
                    row.len(),
                    names.len()
                ),
            ));
        }
        for ((field, name), column) in row.iter().zip(&names).zip(&mut columns) {
            column.push(parse_value(field, name).map_err(|m| table_error(line, m))?);
        }
    }
    if columns.first().is_none_or(|c| c.is_empty()) {
        return Err(table_error(
            header_line + 1,
            "no data rows after the header row".to_string(),
        ));
    }

    let id = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(EcgRecord {
        id,
        path: Some(path.to_path_buf()),
        fs: fs_hz,
        leads: names
            .into_iter()
            .zip(columns)
            .map(|(name, samples)| Lead {
                name,
                units: "mV".to_string(),
                samples,
            })
            .collect(),
        comments: Vec::new(),
    })
}

/// Rows of a CSV file with the 1-based line each starts on.
///
/// The csv crate skips empty lines and does not count them, so lines are counted here from the
/// byte offset of each row (`\n`, `\r\n` and a lone `\r` each end a line).
struct Rows<'a> {
    reader: csv::Reader<&'a [u8]>,
    content: &'a [u8],
    /// Bytes of `content` whose line ends are counted.
    counted: usize,
    /// The line of byte `counted`.
    line: usize,
    path: &'a Path,
}

impl<'a> Rows<'a> {
    fn new(content: &'a [u8], path: &'a Path) -> Self {
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(content);
        Rows {
            reader,
            content,
            counted: 0,
            line: 1,
            path,
        }
    }

    /// The line of byte `offset` (at or after every offset asked before).
    fn line_at(&mut self, offset: u64) -> usize {
        let end = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.content.len());
        if end > self.counted {
            let chunk = &self.content[self.counted..end];
            let next = self.content.get(end).copied();
            self.line += chunk
                .iter()
                .enumerate()
                .filter(|&(i, &b)| {
                    b == b'\n' || (b == b'\r' && chunk.get(i + 1).copied().or(next) != Some(b'\n'))
                })
                .count();
            self.counted = end;
        }
        self.line
    }

    /// Reads the next row into `row` and returns its line; `None` at the end of the file.
    fn next(&mut self, row: &mut csv::ByteRecord) -> Result<Option<usize>, DataError> {
        match self.reader.read_byte_record(row) {
            Ok(false) => Ok(None),
            Ok(true) => {
                let offset = row
                    .position()
                    .map_or(self.counted as u64, csv::Position::byte);
                // The position is where the reader started, before the empty lines it skipped.
                let start = usize::try_from(offset).unwrap_or(usize::MAX);
                let skipped = self
                    .content
                    .get(start..)
                    .unwrap_or_default()
                    .iter()
                    .take_while(|&&b| b == b'\n' || b == b'\r')
                    .count();
                Ok(Some(self.line_at(offset + skipped as u64)))
            }
            Err(e) => {
                let offset = e
                    .position()
                    .map_or(self.counted as u64, csv::Position::byte);
                Err(DataError::Table {
                    path: self.path.to_path_buf(),
                    line: self.line_at(offset),
                    message: format!("cannot parse the row: {e}"),
                })
            }
        }
    }
}

/// A row whose fields are all empty (a line of spaces, or of commas only).
fn is_blank(row: &csv::ByteRecord) -> bool {
    row.iter().all(<[u8]>::is_empty)
}

/// The lead names of the header row at `line`.
fn lead_names(row: &csv::ByteRecord, line: usize, path: &Path) -> Result<Vec<String>, DataError> {
    let error = |message: String| DataError::Table {
        path: path.to_path_buf(),
        line,
        message,
    };
    let mut names = Vec::with_capacity(row.len());
    let mut seen = HashSet::new();
    for (i, field) in row.iter().enumerate() {
        let name = std::str::from_utf8(field).map_err(|_| {
            error(format!(
                "column {}: the lead name is not valid UTF-8",
                i + 1
            ))
        })?;
        if name.is_empty() {
            return Err(error(format!(
                "column {}: empty lead name (the first row must name every lead)",
                i + 1
            )));
        }
        if !seen.insert(name) {
            return Err(error(format!("lead {name} is named twice")));
        }
        names.push(name.to_string());
    }
    if names.iter().all(|n| n.parse::<f64>().is_ok()) {
        return Err(error(
            "the first row holds numbers, not lead names: the file needs a header row naming \
             each lead (e.g. MLII,V5)"
                .to_string(),
        ));
    }
    Ok(names)
}

/// One sample in mV; the error message names the column.
fn parse_value(field: &[u8], lead: &str) -> Result<f32, String> {
    let text = String::from_utf8_lossy(field);
    if text.is_empty() {
        return Err(format!("column {lead}: empty value"));
    }
    let value: f64 = text
        .parse()
        .map_err(|_| format!("column {lead}: value {text:?} is not a number"))?;
    if !value.is_finite() {
        return Err(format!(
            "column {lead}: value {text} is not a finite number"
        ));
    }
    let sample = value as f32;
    if !sample.is_finite() {
        return Err(format!(
            "column {lead}: value {text} is out of range for a sample in mV"
        ));
    }
    Ok(sample)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(dir: &tempfile::TempDir, name: &str, content: &[u8]) -> std::path::PathBuf {
        let path = dir.path().join(name);
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(content).unwrap();
        path
    }

    /// The line and message of a `Table` error, panicking on any other result.
    fn table_error(content: &str) -> (usize, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "bad.csv", content.as_bytes());
        match read_csv(&path, 250.0) {
            Err(DataError::Table {
                path: p,
                line,
                message,
            }) => {
                assert_eq!(p, path);
                (line, message)
            }
            other => panic!("expected a table error for {content:?}, got {other:?}"),
        }
    }

    #[test]
    fn a_good_file_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let leads = [
            ("MLII", [-0.145f32, 0.0, 1.25, -2.5e-3]),
            ("V5", [0.5, -0.065, 3.0, 1e-4]),
        ];
        let mut text = String::from("MLII,V5\n");
        for k in 0..4 {
            text.push_str(&format!("{},{}\n", leads[0].1[k], leads[1].1[k]));
        }
        let path = write(&dir, "rec_17.csv", text.as_bytes());
        let record = read_csv(&path, 360.0).unwrap();
        assert_eq!(record.id, "rec_17");
        assert_eq!(record.path.as_deref(), Some(path.as_path()));
        assert_eq!(record.fs, 360.0);
        assert_eq!(record.lead_names(), vec!["MLII", "V5"]);
        assert!(record.comments.is_empty());
        for (lead, (name, values)) in record.leads.iter().zip(&leads) {
            assert_eq!(lead.name, *name);
            assert_eq!(lead.units, "mV");
            assert_eq!(lead.samples, values.to_vec());
        }
    }

    #[test]
    fn whitespace_bom_crlf_and_blank_lines_are_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            &dir,
            "a.csv",
            b"\xEF\xBB\xBF I , II \r\n 1.5 ,\t-2\r\n\r\n3e-1, 4 \r\n   \n",
        );
        let record = read_csv(&path, 500.0).unwrap();
        assert_eq!(record.lead_names(), vec!["I", "II"]);
        assert_eq!(record.leads[0].samples, vec![1.5, 0.3]);
        assert_eq!(record.leads[1].samples, vec![-2.0, 4.0]);
    }

    #[test]
    fn a_single_lead_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "one.csv", b"ECG\n0.1\n0.2\n0.3");
        let record = read_csv(&path, 250.0).unwrap();
        assert_eq!(record.n_samples(), 3);
        assert_eq!(record.leads[0].samples, vec![0.1, 0.2, 0.3]);
    }

    #[test]
    fn empty_files_are_refused() {
        for content in ["", "\n\n", " \n"] {
            let (line, message) = table_error(content);
            assert_eq!(line, 1);
            assert!(message.contains("empty"), "{message}");
        }
    }

    #[test]
    fn a_missing_header_row_is_refused() {
        let (line, message) = table_error("0.1,0.2\n0.3,0.4\n");
        assert_eq!(line, 1);
        assert!(message.contains("header row"), "{message}");
        let (line, message) = table_error("MLII,,V5\n1,2,3\n");
        assert_eq!(line, 1);
        assert!(message.contains("column 2: empty lead name"), "{message}");
        let (_, message) = table_error("I,I\n1,2\n");
        assert!(message.contains("named twice"), "{message}");
    }

    #[test]
    fn rows_with_the_wrong_number_of_fields_are_refused() {
        let (line, message) = table_error("MLII,V5\n1,2\n3,4\n5\n6,7\n");
        assert_eq!(line, 4);
        assert!(
            message.contains("1 field(s), but the header names 2 lead(s)"),
            "{message}"
        );
        let (line, _) = table_error("MLII,V5\n1,2\n3,4,5\n");
        assert_eq!(line, 3);
    }

    #[test]
    fn values_that_are_not_numbers_are_refused() {
        let (line, message) = table_error("MLII,V5\n1,2\n3,abc\n");
        assert_eq!(line, 3);
        assert_eq!(message, "column V5: value \"abc\" is not a number");
        let (line, message) = table_error("MLII,V5\n1,2\n\n3,\n");
        assert_eq!(line, 4);
        assert_eq!(message, "column V5: empty value");
    }

    #[test]
    fn line_numbers_count_blank_lines_and_crlf() {
        let (line, message) = table_error("\r\nMLII,V5\r\n1,2\r\n\r\n\n3,x\r\n");
        assert_eq!(line, 6, "{message}");
        let (line, _) = table_error("MLII,V5\r1,2\r\r3\r");
        assert_eq!(line, 4);
        let (line, _) = table_error("MLII,V5\n\"1\",\"2\"\n  \n,,\n1,2,3\n");
        assert_eq!(line, 5);
    }

    #[test]
    fn values_that_are_not_finite_are_refused() {
        let mut text = String::from("MLII,V5\n");
        for k in 0..15 {
            text.push_str(&format!("{k},0.5\n"));
        }
        text.push_str("1.0,NaN\n");
        let (line, message) = table_error(&text);
        assert_eq!(line, 17);
        assert_eq!(message, "column V5: value NaN is not a finite number");
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "x.csv", text.as_bytes());
        let shown = read_csv(&path, 250.0).unwrap_err().to_string();
        assert!(
            shown.ends_with("x.csv, line 17: column V5: value NaN is not a finite number"),
            "{shown}"
        );

        let (line, message) = table_error("MLII\n1\n-inf\n");
        assert_eq!(line, 3);
        assert!(message.contains("not a finite number"), "{message}");
        let (line, message) = table_error("MLII\n1e300\n");
        assert_eq!(line, 2);
        assert!(message.contains("out of range"), "{message}");
    }

    #[test]
    fn a_header_without_data_rows_is_refused() {
        let (line, message) = table_error("MLII,V5\n");
        assert_eq!(line, 2);
        assert!(message.contains("no data rows"), "{message}");
        let (line, _) = table_error("\nMLII,V5\n\n");
        assert_eq!(line, 3);
    }

    #[test]
    fn bad_sampling_rates_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "ok.csv", b"MLII\n1\n");
        for fs in [0.0, -250.0, f64::NAN, f64::INFINITY] {
            assert!(
                matches!(read_csv(&path, fs), Err(DataError::Invalid { .. })),
                "{fs}"
            );
        }
    }

    #[test]
    fn a_missing_file_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.csv");
        match read_csv(&path, 250.0) {
            Err(DataError::Io { path: p, .. }) => assert_eq!(p, path),
            other => panic!("expected an I/O error, got {other:?}"),
        }
    }
}
