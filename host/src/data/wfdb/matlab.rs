//! The MATLAB containers PhysioNet stores signals in (`.mat`).
//!
//! A level-4 MAT file (the CinC challenges') starts with five little-endian `i32`: type
//! (`MOPT` digits: M machine, O 0, P precision, T 0 for a full matrix), rows, columns,
//! imaginary flag, name length; then the name and the data, column by column. The challenges
//! store a signals x samples `int16` matrix (P = 3) named `val`, so the data are frames of
//! interleaved samples, exactly a WFDB format-16 file at byte offset 20 + name length, which
//! is what their headers say (`16+24`).
//!
//! A level-5 file (what WFDB's `wfdb2mat` and wfdb-python's `wfdb_to_mat` write) has a
//! 128-byte text header, then tagged elements: one uncompressed `miMATRIX` whose array flags,
//! dimensions and name precede the real part's tag, after which come the same column-major
//! samples (their header says `16+192` for a 3-letter name). Compressed level-5 files are
//! refused: their samples are not at a byte offset.
//!
//! This module checks that the container agrees with the WFDB header.

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

/// Reads the container header from the start of a `.mat` file (level 4 or level 5).
pub fn parse_header(bytes: &[u8]) -> Result<MatHeader, String> {
    if bytes.starts_with(b"MATLAB 5.0") {
        return parse_level5(bytes);
    }
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

/// Level-5 data types (`miINT8`...) and the level-4 precision digit of the same storage.
fn level5_precision(data_type: u32) -> Option<u32> {
    match data_type {
        1 | 2 => Some(5), // miINT8, miUINT8: one byte per value
        3 => Some(3),     // miINT16
        4 => Some(4),     // miUINT16
        5 => Some(2),     // miINT32
        7 => Some(1),     // miSINGLE
        9 => Some(0),     // miDOUBLE
        _ => None,
    }
}

/// The level-5 layout: header, then the first element, which must be an uncompressed matrix.
fn parse_level5(bytes: &[u8]) -> Result<MatHeader, String> {
    let u32_at = |at: usize| -> Result<u32, String> {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| {
                format!(
                    "level-5 MAT file of {} bytes ends inside its first matrix (byte {at})",
                    bytes.len()
                )
            })
    };
    match bytes.get(126..128) {
        Some(b"IM") => {}
        Some(b"MI") => return Err("big-endian level-5 MAT files are not supported".into()),
        _ => return Err("level-5 MAT header without its endian indicator".into()),
    }
    let element_type = u32_at(128)?;
    if element_type == 15 {
        return Err("compressed level-5 MAT files are not supported (save with -v4 or -v6)".into());
    }
    if element_type != 14 {
        return Err(format!(
            "the first level-5 element has type {element_type}, not a matrix (14)"
        ));
    }
    // Sub-elements: array flags, dimensions, name, real part. A tag whose upper half is
    // non-zero is a "small element": type and size in one word, data in the next four bytes.
    let mut at = 136;
    let sub = |at: &mut usize| -> Result<(u32, usize, usize), String> {
        let word = u32_at(*at)?;
        if word >> 16 != 0 {
            let start = *at + 4;
            *at += 8;
            return Ok((word & 0xffff, start, (word >> 16) as usize));
        }
        let size = u32_at(*at + 4)? as usize;
        let start = *at + 8;
        *at = start + size.div_ceil(8) * 8;
        Ok((word, start, size))
    };
    sub(&mut at)?; // array flags (the class MATLAB converts to on loading)
    let (dim_type, dims_at, dims_size) = sub(&mut at)?;
    if dim_type != 5 || dims_size != 8 {
        return Err("the matrix is not two-dimensional".into());
    }
    let (rows, cols) = (u32_at(dims_at)?, u32_at(dims_at + 4)?);
    sub(&mut at)?; // name
    let data_tag = at;
    let data_type = u32_at(data_tag)?;
    if data_type >> 16 != 0 {
        return Err("the matrix holds too few values to be a record".into());
    }
    let precision = level5_precision(data_type)
        .ok_or_else(|| format!("level-5 data type {data_type} is not numeric"))?;
    Ok(MatHeader {
        machine: 0,
        precision,
        rows,
        cols,
        data_offset: data_tag as u64 + 8,
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

    /// The bytes wfdb-python's `wfdb_to_mat` writes before the samples of a 2 x 150 matrix.
    fn level5_bytes() -> Vec<u8> {
        let mut b = b"MATLAB 5.0 MAT-file".to_vec();
        b.resize(124, b' ');
        b.extend([0x00, 0x01, b'I', b'M']);
        for w in [14u32, 656, 6, 8, 6, 0, 5, 8, 2, 150, 1, 3] {
            b.extend(w.to_le_bytes());
        }
        b.extend(b"val\0\0\0\0\0");
        b.extend(3u32.to_le_bytes());
        b.extend(600u32.to_le_bytes());
        b
    }

    #[test]
    fn level5_container_gives_its_data_offset() {
        let b = level5_bytes();
        let mat = parse_header(&b).unwrap();
        assert_eq!(
            (mat.precision, mat.rows, mat.cols, mat.data_offset),
            (3, 2, 150, 192)
        );
        check_against_header(&mat, SignalFormat::F16, 2, 192, Some(150)).unwrap();
        let mut compressed = b.clone();
        compressed[128] = 15;
        assert!(parse_header(&compressed)
            .unwrap_err()
            .contains("compressed"));
        assert!(parse_header(&b[..150]).unwrap_err().contains("ends inside"));
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
