//! Decoding WFDB signal files: bytes in one format to the digital samples of each signal.

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
        SignalFormat::F80 => out.extend(bytes.iter().take(n_values).map(|&b| i32::from(b) - 128)),
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

/// Encodes samples in `format` (the inverse of [`decode`]); used to write test records.
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
        SignalFormat::F80 => values.iter().for_each(|&v| out.push((v + 128) as u8)),
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

    const ALL: [SignalFormat; 7] = [
        SignalFormat::F212,
        SignalFormat::F16,
        SignalFormat::F61,
        SignalFormat::F80,
        SignalFormat::F160,
        SignalFormat::F24,
        SignalFormat::F32,
    ];

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

    proptest! {
        #[test]
        fn round_trip_every_format(raw in proptest::collection::vec(any::<i32>(), 0..200), which in 0usize..7) {
            let format = ALL[which];
            let bits = format.bits();
            let values: Vec<i32> = raw.iter().map(|v| {
                if bits == 32 { *v } else { v.rem_euclid(1 << bits) - (1 << (bits - 1)) }
            }).collect();
            let bytes = encode(format, &values);
            prop_assert_eq!(bytes.len() as u64, format.bytes_for(values.len() as u64));
            prop_assert_eq!(format.values_in(bytes.len() as u64), values.len() as u64);
            let mut out = Vec::new();
            decode(format, &bytes, values.len(), &mut out);
            prop_assert_eq!(out, values);
        }
    }
}
