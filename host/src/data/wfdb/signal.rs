//! Decoding WFDB signal files: bytes in one format to the digital samples of each signal.
//!
//! Format 8 stores first differences; [`decode`] returns them as stored, and the record
//! reader adds them up per signal (only it knows which values belong to which signal and the
//! header's initial values).

use super::format::SignalFormat;

/// Decodes `n_values` consecutive samples of `format` from `bytes` into `out` (appended).
///
/// The caller checks that `bytes` holds at least `format.bytes_for(n_values)` bytes; fewer
/// values are decoded when it does not.
pub fn decode(format: SignalFormat, bytes: &[u8], n_values: usize, out: &mut Vec<i32>) {
    let n_values = n_values.min(format.values_in(bytes.len() as u64) as usize);
    out.reserve(n_values);
    match format {
        SignalFormat::F212 => decode_212(bytes, n_values, out),
        SignalFormat::F16 => out.extend(
            bytes
                .chunks_exact(2)
                .take(n_values)
                .map(|b| i32::from(i16::from_le_bytes([b[0], b[1]]))),
        ),
        SignalFormat::F61 => out.extend(
            bytes
                .chunks_exact(2)
                .take(n_values)
                .map(|b| i32::from(i16::from_be_bytes([b[0], b[1]]))),
        ),
        SignalFormat::F8 => out.extend(bytes.iter().take(n_values).map(|&b| i32::from(b as i8))),
        SignalFormat::F80 => out.extend(bytes.iter().take(n_values).map(|&b| i32::from(b) - 128)),
        SignalFormat::F310 => decode_triples(bytes, n_values, out, unpack_310),
        SignalFormat::F311 => decode_triples(bytes, n_values, out, unpack_311),
        SignalFormat::F160 => out.extend(
            bytes
                .chunks_exact(2)
                .take(n_values)
                .map(|b| i32::from(u16::from_le_bytes([b[0], b[1]])) - 32768),
        ),
        SignalFormat::F24 => out.extend(
            bytes
                .chunks_exact(3)
                .take(n_values)
                // Place the 24 bits at the top of an i32, then shift back to sign-extend.
                .map(|b| i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8),
        ),
        SignalFormat::F32 => out.extend(
            bytes
                .chunks_exact(4)
                .take(n_values)
                .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        ),
    }
}

/// Format 212: each pair of 12-bit samples takes three bytes. Byte 0 is the low byte of the
/// first sample, the low nibble of byte 1 its high bits; the high nibble of byte 1 holds the
/// second sample's high bits and byte 2 its low byte.
fn decode_212(bytes: &[u8], n_values: usize, out: &mut Vec<i32>) {
    let sign_extend_12 = |v: u16| i32::from(((v << 4) as i16) >> 4);
    let n_pairs = n_values / 2;
    for b in bytes.chunks_exact(3).take(n_pairs) {
        let first = u16::from(b[0]) | (u16::from(b[1] & 0x0f) << 8);
        let second = u16::from(b[2]) | (u16::from(b[1] & 0xf0) << 4);
        out.push(sign_extend_12(first));
        out.push(sign_extend_12(second));
    }
    if n_values % 2 == 1 {
        let b = &bytes[n_pairs * 3..];
        out.push(sign_extend_12(
            u16::from(b[0]) | (u16::from(b[1] & 0x0f) << 8),
        ));
    }
}

/// Two's-complement value of the low 10 bits.
fn sign_extend_10(v: u32) -> i32 {
    (((v & 0x3ff) << 22) as i32) >> 22
}

/// Format 310: the two 16-bit words of `b`; samples at bits 1..=10 of each word, the third
/// from bits 11..=15 of the first word (low half) and of the second (high half).
fn unpack_310(b: [u8; 4]) -> [i32; 3] {
    let w0 = u32::from(u16::from_le_bytes([b[0], b[1]]));
    let w1 = u32::from(u16::from_le_bytes([b[2], b[3]]));
    [
        sign_extend_10(w0 >> 1),
        sign_extend_10(w1 >> 1),
        sign_extend_10((w0 >> 11) | ((w1 >> 11) << 5)),
    ]
}

/// Format 311: one 32-bit word, samples at bits 0..=9, 10..=19 and 20..=29.
fn unpack_311(b: [u8; 4]) -> [i32; 3] {
    let w = u32::from_le_bytes(b);
    [
        sign_extend_10(w),
        sign_extend_10(w >> 10),
        sign_extend_10(w >> 20),
    ]
}

/// Formats 310 and 311: each three samples take four bytes; a trailing partial group is
/// decoded from the bytes there are, the missing ones read as zero.
fn decode_triples(
    bytes: &[u8],
    n_values: usize,
    out: &mut Vec<i32>,
    unpack: fn([u8; 4]) -> [i32; 3],
) {
    let mut left = n_values;
    for chunk in bytes.chunks(4) {
        if left == 0 {
            break;
        }
        let mut group = [0u8; 4];
        group[..chunk.len()].copy_from_slice(chunk);
        let values = unpack(group);
        let take = left.min(3);
        out.extend_from_slice(&values[..take]);
        left -= take;
    }
}

/// Packs three 10-bit samples (missing ones as 0) the way [`unpack_310`] reads them.
fn pack_310(v: [i32; 3]) -> [u8; 4] {
    let bits = |x: i32| (x as u32) & 0x3ff;
    let w0 = (bits(v[0]) << 1) | ((bits(v[2]) & 0x1f) << 11);
    let w1 = (bits(v[1]) << 1) | ((bits(v[2]) >> 5) << 11);
    let (a, b) = ((w0 as u16).to_le_bytes(), (w1 as u16).to_le_bytes());
    [a[0], a[1], b[0], b[1]]
}

/// Packs three 10-bit samples the way [`unpack_311`] reads them.
fn pack_311(v: [i32; 3]) -> [u8; 4] {
    let bits = |x: i32| (x as u32) & 0x3ff;
    (bits(v[0]) | (bits(v[1]) << 10) | (bits(v[2]) << 20)).to_le_bytes()
}

/// Encodes samples in `format` (the inverse of [`decode`]; format 8 takes the differences);
/// used to write test records.
pub fn encode(format: SignalFormat, values: &[i32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(format.bytes_for(values.len() as u64) as usize);
    match format {
        SignalFormat::F212 => {
            for pair in values.chunks(2) {
                let a = (pair[0] & 0xfff) as u16;
                let b = pair.get(1).map_or(0, |v| (v & 0xfff) as u16);
                out.push((a & 0xff) as u8);
                out.push(((a >> 8) as u8 & 0x0f) | (((b >> 8) as u8) << 4));
                if pair.len() == 2 {
                    out.push((b & 0xff) as u8);
                }
            }
        }
        SignalFormat::F16 => values
            .iter()
            .for_each(|&v| out.extend((v as i16).to_le_bytes())),
        SignalFormat::F61 => values
            .iter()
            .for_each(|&v| out.extend((v as i16).to_be_bytes())),
        SignalFormat::F8 => values.iter().for_each(|&v| out.push(v as i8 as u8)),
        SignalFormat::F80 => values.iter().for_each(|&v| out.push((v + 128) as u8)),
        SignalFormat::F310 | SignalFormat::F311 => {
            let pack = if format == SignalFormat::F310 {
                pack_310
            } else {
                pack_311
            };
            for triple in values.chunks(3) {
                let mut v = [0; 3];
                v[..triple.len()].copy_from_slice(triple);
                let bytes = pack(v);
                let used = format.bytes_for(triple.len() as u64) as usize;
                out.extend_from_slice(&bytes[..used]);
            }
        }
        SignalFormat::F160 => values
            .iter()
            .for_each(|&v| out.extend(((v + 32768) as u16).to_le_bytes())),
        SignalFormat::F24 => values
            .iter()
            .for_each(|&v| out.extend(&v.to_le_bytes()[..3])),
        SignalFormat::F32 => values.iter().for_each(|&v| out.extend(v.to_le_bytes())),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use crate::data::wfdb::format::SUPPORTED as ALL;

    #[test]
    fn format_212_bytes_as_documented() {
        // Samples 995 (0x3E3) and -22 (0xFEA as 12 bits): byte 0 = 0xE3, byte 1 = 0xF3, byte 2 = 0xEA.
        let mut out = Vec::new();
        decode(SignalFormat::F212, &[0xE3, 0xF3, 0xEA], 2, &mut out);
        assert_eq!(out, vec![995, -22]);
    }

    #[test]
    fn offset_binary_formats() {
        let mut out = Vec::new();
        decode(SignalFormat::F80, &[0, 128, 255], 3, &mut out);
        assert_eq!(out, vec![-128, 0, 127]);
        out.clear();
        decode(SignalFormat::F160, &[0, 0, 0, 0x80], 2, &mut out);
        assert_eq!(out, vec![-32768, 0]);
    }

    #[test]
    fn format_310_and_311_bits_as_documented() {
        // 311: 1, -1 (0x3ff), -512 (0x200) at bits 0, 10, 20 of one little-endian word.
        let word: u32 = 1 | (0x3ff << 10) | (0x200 << 20);
        let mut out = Vec::new();
        decode(SignalFormat::F311, &word.to_le_bytes(), 3, &mut out);
        assert_eq!(out, vec![1, -1, -512]);
        // 310: 5 at bits 1..=10 of word 0, -2 at bits 1..=10 of word 1; the third sample 0x155
        // has its low five bits (0x15) at bits 11..=15 of word 0, its high five (0x0a) in word 1.
        let w0: u16 = (5 << 1) | (0x15 << 11);
        let w1: u16 = ((0x3fe & 0x3ff) << 1) | (0x0a << 11);
        let mut bytes = w0.to_le_bytes().to_vec();
        bytes.extend(w1.to_le_bytes());
        out.clear();
        decode(SignalFormat::F310, &bytes, 3, &mut out);
        assert_eq!(out, vec![5, -2, 0x155]);
        // A trailing single sample of format 310 needs only the first word.
        out.clear();
        decode(SignalFormat::F310, &bytes[..2], 1, &mut out);
        assert_eq!(out, vec![5]);
    }

    #[test]
    fn format_8_yields_signed_differences() {
        let mut out = Vec::new();
        decode(SignalFormat::F8, &[0x7f, 0x80, 0xff], 3, &mut out);
        assert_eq!(out, vec![127, -128, -1]);
    }

    proptest! {
        #[test]
        fn round_trip_every_format(raw in proptest::collection::vec(any::<i32>(), 0..200), which in 0usize..ALL.len()) {
            let format = ALL[which];
            let bits = format.bits();
            let values: Vec<i32> = raw.iter().map(|v| {
                if bits == 32 { *v } else { v.rem_euclid(1 << bits) - (1 << (bits - 1)) }
            }).collect();
            let bytes = encode(format, &values);
            prop_assert_eq!(bytes.len() as u64, format.bytes_for(values.len() as u64));
            // Formats 310 and 311 may hold one value more in the bytes of a partial group.
            let held = format.values_in(bytes.len() as u64);
            prop_assert!(held >= values.len() as u64 && held <= values.len() as u64 + 1);
            let mut out = Vec::new();
            decode(format, &bytes, values.len(), &mut out);
            prop_assert_eq!(out, values);
        }
    }
}
