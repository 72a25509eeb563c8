//! The WFDB signal formats this reader decodes, and how many bytes they take.

use std::fmt;

/// A WFDB signal storage format (the number in the header's format field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignalFormat {
    /// 8-bit first differences: each byte is added to the signal's previous sample, the first
    /// to the header's initial value.
    F8,
    /// Two 12-bit two's-complement samples packed in three bytes (MIT-BIH).
    F212,
    /// 16-bit two's complement, little-endian.
    F16,
    /// 16-bit two's complement, big-endian.
    F61,
    /// 8-bit offset binary (stored byte minus 128).
    F80,
    /// 16-bit offset binary, little-endian (stored value minus 32,768).
    F160,
    /// 24-bit two's complement, little-endian.
    F24,
    /// 32-bit two's complement, little-endian.
    F32,
    /// Three 10-bit samples in two little-endian 16-bit words: bits 1..=10 of each word hold
    /// the first and second sample, bits 11..=15 of the first and second word the low and
    /// high half of the third.
    F310,
    /// Three 10-bit samples in one little-endian 32-bit word, at bits 0..=9, 10..=19, 20..=29.
    F311,
}

/// Every decodable format, for error messages and tests.
pub const SUPPORTED: [SignalFormat; 10] = [
    SignalFormat::F8,
    SignalFormat::F16,
    SignalFormat::F24,
    SignalFormat::F32,
    SignalFormat::F61,
    SignalFormat::F80,
    SignalFormat::F160,
    SignalFormat::F212,
    SignalFormat::F310,
    SignalFormat::F311,
];

impl SignalFormat {
    /// The format for a header's format number, or `None` when it is not supported.
    pub fn from_code(code: u16) -> Option<Self> {
        SUPPORTED.into_iter().find(|f| f.code() == code)
    }

    /// The number written in headers.
    pub fn code(self) -> u16 {
        match self {
            SignalFormat::F8 => 8,
            SignalFormat::F212 => 212,
            SignalFormat::F16 => 16,
            SignalFormat::F61 => 61,
            SignalFormat::F80 => 80,
            SignalFormat::F160 => 160,
            SignalFormat::F24 => 24,
            SignalFormat::F32 => 32,
            SignalFormat::F310 => 310,
            SignalFormat::F311 => 311,
        }
    }

    /// Bits per stored value, the default ADC resolution when a header gives none (or 0).
    pub fn bits(self) -> u32 {
        match self {
            SignalFormat::F310 | SignalFormat::F311 => 10,
            SignalFormat::F212 => 12,
            SignalFormat::F8 | SignalFormat::F80 => 8,
            SignalFormat::F16 | SignalFormat::F61 | SignalFormat::F160 => 16,
            SignalFormat::F24 => 24,
            SignalFormat::F32 => 32,
        }
    }

    /// The digital value that marks an invalid sample (WFDB's `WFDB_INVALID_SAMPLE`, the most
    /// negative value of the format's range); `None` for format 8, whose differences can
    /// reach any value and so reserve none.
    pub fn invalid_code(self) -> Option<i32> {
        match self {
            SignalFormat::F8 => None,
            _ => Some(-(1i64 << (self.bits() - 1)) as i32),
        }
    }

    /// Bytes that `n_values` consecutive samples occupy (the fewest that hold them all);
    /// saturates at `u64::MAX` for counts no file can hold.
    pub fn bytes_for(self, n_values: u64) -> u64 {
        if n_values > u64::MAX / 4 {
            return u64::MAX;
        }
        match self {
            // Pairs take 3 bytes; a trailing odd sample takes 2.
            SignalFormat::F212 => n_values / 2 * 3 + (n_values % 2) * 2,
            // Triples take 4 bytes; one trailing sample needs the first word, two need both.
            SignalFormat::F310 => n_values / 3 * 4 + [0, 2, 4][(n_values % 3) as usize],
            // One trailing sample ends in byte 1, two in byte 2.
            SignalFormat::F311 => n_values / 3 * 4 + [0, 2, 3][(n_values % 3) as usize],
            SignalFormat::F8 | SignalFormat::F80 => n_values,
            SignalFormat::F16 | SignalFormat::F61 | SignalFormat::F160 => n_values * 2,
            SignalFormat::F24 => n_values * 3,
            SignalFormat::F32 => n_values * 4,
        }
    }

    /// How many whole samples `n_bytes` hold.
    pub fn values_in(self, n_bytes: u64) -> u64 {
        match self {
            SignalFormat::F212 => n_bytes / 3 * 2 + u64::from(n_bytes % 3 == 2),
            SignalFormat::F310 => n_bytes / 4 * 3 + u64::from(n_bytes % 4 >= 2),
            SignalFormat::F311 => n_bytes / 4 * 3 + [0, 0, 1, 2][(n_bytes % 4) as usize],
            SignalFormat::F8 | SignalFormat::F80 => n_bytes,
            SignalFormat::F16 | SignalFormat::F61 | SignalFormat::F160 => n_bytes / 2,
            SignalFormat::F24 => n_bytes / 3,
            SignalFormat::F32 => n_bytes / 4,
        }
    }

    /// Values that always start on a byte boundary: blocks of frames decoded apart must hold
    /// a multiple of this many values.
    pub fn values_per_group(self) -> usize {
        match self {
            SignalFormat::F212 => 2,
            SignalFormat::F310 | SignalFormat::F311 => 3,
            _ => 1,
        }
    }
}

impl fmt::Display for SignalFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code())
    }
}
