//! The MATLAB v4 container the PhysioNet/CinC challenges store signals in (`.mat`).
//!
//! A level-4 MAT file starts with five little-endian `i32`: type (`MOPT` digits: M machine,
//! O 0, P precision, T 0 for a full matrix), rows, columns, imaginary flag, name length; then
//! the name and the data, column by column. The challenges store a signals x samples `int16`
//! matrix (P = 3) named `val`, so the data are frames of interleaved samples, exactly a WFDB
//! format-16 file at byte offset 20 + name length, which is what their headers say
//! (`16+24`). This module checks that the container agrees with the header.

use super::format::SignalFormat;

/// The fixed part of a MATLAB v4 matrix header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatHeader {
    /// Machine digit M: 0 little-endian IEEE, 1 big-endian IEEE.
    pub machine: u32,
    /// Precision digit P: 0 f64, 1 f32, 2 i32, 3 i16, 4 u16, 5 u8.
    pub precision: u32,
    /// Rows (signals).
    pub rows: u32,
    /// Columns (samples per signal).
    pub cols: u32,
    /// Byte offset of the first data byte.
    pub data_offset: u64,
}

/// Reads the container header from the start of a `.mat` file.
pub fn parse_header(bytes: &[u8]) -> Result<MatHeader, String> {
    let field = |i: usize| -> Result<i32, String> {
        bytes
            .get(i * 4..i * 4 + 4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| {
                format!(
                    "file of {} bytes is too short for a MATLAB v4 header",
                    bytes.len()
                )
            })
    };
    let type_code = field(0)?;
    if !(0..=4999).contains(&type_code) {
        return Err(format!(
            "type field {type_code} is not a level-4 MAT type (only MATLAB v4 files are supported)"
        ));
    }
    let type_code = type_code as u32;
    let (machine, precision, matrix) = (type_code / 1000, type_code / 10 % 10, type_code % 10);
    if type_code / 100 % 10 != 0 || matrix != 0 {
        return Err(format!("type {type_code} is not a full numeric matrix"));
    }
    let (rows, cols, imaginary, name_len) = (field(1)?, field(2)?, field(3)?, field(4)?);
    if rows < 0 || cols < 0 || name_len <= 0 || imaginary != 0 {
        return Err(format!(
            "implausible matrix header (rows {rows}, columns {cols}, imaginary {imaginary}, name length {name_len})"
        ));
    }
    Ok(MatHeader {
        machine,
        precision,
        rows: rows as u32,
        cols: cols as u32,
        data_offset: 20 + name_len as u64,
    })
}

/// Checks a container against what the WFDB header says of its signals.
pub fn check_against_header(
    mat: &MatHeader,
    format: SignalFormat,
    n_signals: usize,
    byte_offset: u64,
    n_samples: Option<u64>,
) -> Result<(), String> {
    let expected_precision = match format {
        SignalFormat::F16 if mat.machine == 0 => 3,
        SignalFormat::F32 if mat.machine == 0 => 2,
        SignalFormat::F61 if mat.machine == 1 => 3,
        _ => {
            return Err(format!(
                "the header's format {format} cannot describe a MATLAB matrix of machine type {} and precision {}",
                mat.machine, mat.precision
            ))
        }
    };
    if mat.precision != expected_precision {
        return Err(format!(
            "matrix precision {} does not match the header's format {format}",
            mat.precision
        ));
    }
    if mat.data_offset != byte_offset {
        return Err(format!(
            "data start at byte {}, but the header's byte offset is {byte_offset}",
            mat.data_offset
        ));
    }
    if mat.rows as usize != n_signals {
        return Err(format!(
            "matrix has {} rows, but the header puts {n_signals} signal(s) in this file",
            mat.rows
        ));
    }
    if let Some(n) = n_samples {
        if u64::from(mat.cols) != n {
            return Err(format!(
                "matrix has {} columns, but the header says {n} samples",
                mat.cols
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mat_bytes(type_code: i32, rows: i32, cols: i32) -> Vec<u8> {
        let mut b = Vec::new();
        for v in [type_code, rows, cols, 0, 4] {
            b.extend(v.to_le_bytes());
        }
        b.extend(b"val\0");
        b
    }

    #[test]
    fn challenge_container_agrees_with_its_header() {
        let mat = parse_header(&mat_bytes(30, 12, 5000)).unwrap();
        assert_eq!(
            (mat.precision, mat.rows, mat.cols, mat.data_offset),
            (3, 12, 5000, 24)
        );
        check_against_header(&mat, SignalFormat::F16, 12, 24, Some(5000)).unwrap();
    }

    #[test]
    fn disagreements_are_reported() {
        let mat = parse_header(&mat_bytes(30, 12, 5000)).unwrap();
        assert!(
            check_against_header(&mat, SignalFormat::F16, 1, 24, Some(5000))
                .unwrap_err()
                .contains("rows")
        );
        assert!(
            check_against_header(&mat, SignalFormat::F16, 12, 24, Some(4000))
                .unwrap_err()
                .contains("columns")
        );
        assert!(check_against_header(&mat, SignalFormat::F212, 12, 24, Some(5000)).is_err());
        assert!(parse_header(&mat_bytes(0, 12, 5000)).is_ok());
        assert!(parse_header(&[1, 2, 3]).unwrap_err().contains("too short"));
        assert!(parse_header(&mat_bytes(12345, 1, 1)).is_err());
    }
}
