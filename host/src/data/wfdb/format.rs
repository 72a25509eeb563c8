//! The WFDB signal formats this reader decodes, and how many bytes they take.

use std::fmt;

/// A WFDB signal storage format (the number in the header's format field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignalFormat {
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
}

impl SignalFormat {
    /// The format for a header's format number, or `None` when it is not supported.
    pub fn from_code(code: u16) -> Option<Self> {
        Some(match code {
            212 => SignalFormat::F212,
            16 => SignalFormat::F16,
            61 => SignalFormat::F61,
            80 => SignalFormat::F80,
            160 => SignalFormat::F160,
            24 => SignalFormat::F24,
            32 => SignalFormat::F32,
            _ => return None,
        })
    }

    /// The number written in headers.
    pub fn code(self) -> u16 {
        match self {
            SignalFormat::F212 => 212,
            SignalFormat::F16 => 16,
            SignalFormat::F61 => 61,
            SignalFormat::F80 => 80,
            SignalFormat::F160 => 160,
            SignalFormat::F24 => 24,
            SignalFormat::F32 => 32,
        }
    }

    /// Bits per stored sample, the default ADC resolution when a header gives none.
    pub fn bits(self) -> u32 {
        match self {
            SignalFormat::F212 => 12,
            SignalFormat::F80 => 8,
            SignalFormat::F16 | SignalFormat::F61 | SignalFormat::F160 => 16,
            SignalFormat::F24 => 24,
            SignalFormat::F32 => 32,
        }
    }

    /// The digital value that marks an invalid sample (WFDB's `WFDB_INVALID_SAMPLE` per format).
    pub fn invalid_code(self) -> i32 {
        match self {
            SignalFormat::F212 => -2048,
            SignalFormat::F80 => -128,
            SignalFormat::F16 | SignalFormat::F61 | SignalFormat::F160 => -32768,
            SignalFormat::F24 => -(1 << 23),
            SignalFormat::F32 => i32::MIN,
        }
    }

    /// Bytes that `n_values` consecutive samples occupy.
    pub fn bytes_for(self, n_values: u64) -> u64 {
        match self {
            // Pairs take 3 bytes; a trailing odd sample takes 2.
            SignalFormat::F212 => n_values / 2 * 3 + (n_values % 2) * 2,
            SignalFormat::F80 => n_values,
            SignalFormat::F16 | SignalFormat::F61 | SignalFormat::F160 => n_values * 2,
            SignalFormat::F24 => n_values * 3,
            SignalFormat::F32 => n_values * 4,
        }
    }

    /// How many whole samples `n_bytes` hold.
    pub fn values_in(self, n_bytes: u64) -> u64 {
        match self {
            SignalFormat::F212 => n_bytes / 3 * 2 + u64::from(n_bytes % 3 == 2),
            SignalFormat::F80 => n_bytes,
            SignalFormat::F16 | SignalFormat::F61 | SignalFormat::F160 => n_bytes / 2,
            SignalFormat::F24 => n_bytes / 3,
            SignalFormat::F32 => n_bytes / 4,
        }
    }
}

impl fmt::Display for SignalFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code())
    }
}
