//! MIT-format annotation files (`.atr` and friends).
//!
//! The file is a stream of 16-bit little-endian words: the top 6 bits are a code, the low 10
//! bits a number. Codes 1..=49 are annotations, the number their sample distance from the
//! previous one. Pseudo-codes modify the stream: SKIP (59) carries a 32-bit interval in the next
//! two words (high half first), NUM (60), SUB (61) and CHN (62) set the field of the annotation
//! just read, AUX (63) attaches a string of the given byte length (padded to an even count).
//! `0, 0` ends the file. NUM and CHN carry over to later annotations; SUB and AUX do not.
//! Code 0 (NOTQRS) annotations and the `##` definition notes at sample 0 are not returned,
//! as in PhysioNet's readers.

use super::ParseError;

/// One annotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation {
    /// Sample index from the start of the record.
    pub sample: i64,
    /// The annotation code.
    pub code: AnnotationCode,
    /// Subtype (`SUB`).
    pub subtype: i8,
    /// Signal number (`CHN`).
    pub chan: u8,
    /// Annotator number (`NUM`).
    pub num: i8,
    /// The auxiliary note with trailing NUL bytes removed; empty when there is none.
    pub aux: String,
    /// Whether the stored note ended in NUL bytes (MIT-BIH writes `(N\0`).
    pub aux_had_nul: bool,
}

/// An annotation code (1..=49 are defined by WFDB's `ecgcodes.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AnnotationCode(pub u8);

/// WFDB's mnemonic symbols for codes 0..=41 (`ecgcodes.h`, `annot.c`); others print as `[n]`.
const SYMBOLS: [&str; 42] = [
    " ", "N", "L", "R", "a", "V", "F", "J", "A", "S", "E", "j", "/", "Q", "~", "[15]", "|", "[17]",
    "s", "T", "*", "D", "\"", "=", "p", "B", "^", "t", "+", "u", "?", "!", "[", "]", "e", "n", "@",
    "x", "f", "(", ")", "r",
];

impl AnnotationCode {
    /// The rhythm-change code `+`, whose aux note names the new rhythm.
    pub const RHYTHM: AnnotationCode = AnnotationCode(28);
    /// The comment code `"`.
    pub const NOTE: AnnotationCode = AnnotationCode(22);

    /// WFDB's symbol (`N`, `V`, `+`...).
    pub fn symbol(self) -> String {
        match SYMBOLS.get(usize::from(self.0)) {
            Some(s) => (*s).to_string(),
            None => format!("[{}]", self.0),
        }
    }

    /// The code for a symbol, if it is a standard one.
    pub fn from_symbol(symbol: &str) -> Option<AnnotationCode> {
        SYMBOLS
            .iter()
            .position(|s| *s == symbol)
            .map(|i| AnnotationCode(i as u8))
    }
}

const SKIP: u16 = 59;
const NUM: u16 = 60;
const SUB: u16 = 61;
const CHN: u16 = 62;
const AUX: u16 = 63;

/// Parses a whole annotation file.
pub fn parse(bytes: &[u8]) -> Result<Vec<Annotation>, ParseError> {
    if bytes.len() % 2 == 1 {
        return Err(ParseError::new(
            bytes.len() - 1,
            "odd byte count: an annotation file is a sequence of 16-bit words",
        ));
    }
    let word_at = |offset: usize| -> Option<u16> {
        bytes
            .get(offset..offset + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let mut out: Vec<Annotation> = Vec::new();
    let mut keep: Vec<bool> = Vec::new();
    let mut time: i64 = 0;
    let (mut chan, mut num) = (0u8, 0i8);
    let mut offset = 0;
    while let Some(word) = word_at(offset) {
        let (code, value) = (word >> 10, word & 0x3ff);
        match code {
            0 if value == 0 => break,
            SKIP => {
                let (Some(high), Some(low)) = (word_at(offset + 2), word_at(offset + 4)) else {
                    return Err(ParseError::new(offset, "SKIP without its 32-bit interval"));
                };
                let interval = ((u32::from(high) << 16) | u32::from(low)) as i32;
                time += i64::from(interval);
                offset += 6;
            }
            NUM | SUB | CHN | AUX => {
                let Some(last) = out.last_mut() else {
                    return Err(ParseError::new(
                        offset,
                        format!("pseudo-annotation {code} before any annotation"),
                    ));
                };
                let low_byte = (value & 0xff) as u8;
                offset += 2;
                match code {
                    NUM => {
                        num = low_byte as i8;
                        last.num = num;
                    }
                    SUB => last.subtype = low_byte as i8,
                    CHN => {
                        chan = low_byte;
                        last.chan = chan;
                    }
                    _ => {
                        let len = usize::from(value & 0xff);
                        let Some(text) = bytes.get(offset..offset + len) else {
                            return Err(ParseError::new(
                                offset,
                                format!("AUX note of {len} bytes runs past the end of the file"),
                            ));
                        };
                        let trimmed_len = text.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
                        last.aux_had_nul = trimmed_len < len;
                        // WFDB notes are bytes; Latin-1 maps each byte to one character.
                        last.aux = text[..trimmed_len].iter().map(|&b| char::from(b)).collect();
                        offset += len + len % 2;
                    }
                }
            }
            _ => {
                time += i64::from(value);
                out.push(Annotation {
                    sample: time,
                    code: AnnotationCode(code as u8),
                    subtype: 0,
                    chan,
                    num,
                    aux: String::new(),
                    aux_had_nul: false,
                });
                keep.push(code != 0);
                offset += 2;
            }
        }
    }
    let mut keep = keep.into_iter();
    out.retain(|a| {
        let is_annotation = keep.next().unwrap_or(true);
        let is_definition =
            a.sample == 0 && a.code == AnnotationCode::NOTE && a.aux.starts_with("##");
        is_annotation && !is_definition
    });
    Ok(out)
}

/// Encodes annotations in the MIT format (the inverse of [`parse`]); used to write test files.
pub fn encode(annotations: &[Annotation]) -> Vec<u8> {
    let mut out = Vec::new();
    let push = |out: &mut Vec<u8>, code: u16, value: u16| {
        out.extend(((code << 10) | (value & 0x3ff)).to_le_bytes())
    };
    let (mut time, mut chan, mut num) = (0i64, 0u8, 0i8);
    for a in annotations {
        let mut delta = a.sample - time;
        while !(0..=1023).contains(&delta) {
            let step = delta.clamp(i64::from(i32::MIN), i64::from(i32::MAX));
            let interval = step as i32 as u32;
            push(&mut out, SKIP, 0);
            out.extend(((interval >> 16) as u16).to_le_bytes());
            out.extend((interval as u16).to_le_bytes());
            delta -= step;
        }
        push(&mut out, u16::from(a.code.0), delta as u16);
        time = a.sample;
        if a.subtype != 0 {
            push(&mut out, SUB, u16::from(a.subtype as u8));
        }
        if a.chan != chan {
            push(&mut out, CHN, u16::from(a.chan));
            chan = a.chan;
        }
        if a.num != num {
            push(&mut out, NUM, u16::from(a.num as u8));
            num = a.num;
        }
        if !a.aux.is_empty() || a.aux_had_nul {
            let mut text: Vec<u8> = a.aux.chars().map(|c| c as u32 as u8).collect();
            if a.aux_had_nul {
                text.push(0);
            }
            push(&mut out, AUX, text.len() as u16);
            out.extend(&text);
            if text.len() % 2 == 1 {
                out.push(0);
            }
        }
    }
    out.extend([0, 0]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ann(sample: i64, code: u8) -> Annotation {
        Annotation {
            sample,
            code: AnnotationCode(code),
            subtype: 0,
            chan: 0,
            num: 0,
            aux: String::new(),
            aux_had_nul: false,
        }
    }

    #[test]
    fn symbols_match_wfdb() {
        assert_eq!(AnnotationCode(1).symbol(), "N");
        assert_eq!(AnnotationCode(5).symbol(), "V");
        assert_eq!(AnnotationCode(28).symbol(), "+");
        assert_eq!(AnnotationCode(38).symbol(), "f");
        assert_eq!(AnnotationCode(45).symbol(), "[45]");
        assert_eq!(AnnotationCode::from_symbol("/"), Some(AnnotationCode(12)));
    }

    #[test]
    fn hand_written_stream_with_every_pseudo_code() {
        // N at 18; SUB 2, CHN 1, NUM 3 on it; '+' 5 later with aux "(N\0"; SKIP 100000; V.
        let mut b = Vec::new();
        let w = |b: &mut Vec<u8>, code: u16, v: u16| b.extend(((code << 10) | v).to_le_bytes());
        w(&mut b, 1, 18);
        w(&mut b, SUB, 2);
        w(&mut b, CHN, 1);
        w(&mut b, NUM, 3);
        w(&mut b, 28, 5);
        w(&mut b, AUX, 3);
        b.extend(b"(N\0\0");
        w(&mut b, SKIP, 0);
        b.extend(1u16.to_le_bytes()); // high half: 65536
        b.extend(34464u16.to_le_bytes()); // low half: 34464 -> 100000
        w(&mut b, 5, 7);
        b.extend([0, 0]);
        let a = parse(&b).unwrap();
        assert_eq!(a.len(), 3);
        assert_eq!(
            (a[0].sample, a[0].subtype, a[0].chan, a[0].num),
            (18, 2, 1, 3)
        );
        assert_eq!(
            (a[1].sample, a[1].aux.as_str(), a[1].aux_had_nul),
            (23, "(N", true)
        );
        assert_eq!(
            (a[1].chan, a[1].num, a[1].subtype),
            (1, 3, 0),
            "CHN and NUM carry over"
        );
        assert_eq!((a[2].sample, a[2].code.symbol()), (100030, "V".to_string()));
    }

    #[test]
    fn truncated_streams_are_errors() {
        let mut b = Vec::new();
        b.extend(((1u16 << 10) | 5).to_le_bytes());
        b.extend(((AUX << 10) | 10).to_le_bytes());
        b.extend(b"ab");
        assert!(parse(&b).unwrap_err().message.contains("AUX"));
        assert!(parse(&[1]).unwrap_err().message.contains("odd byte count"));
        let skip = (SKIP << 10).to_le_bytes();
        assert!(parse(&skip).unwrap_err().message.contains("SKIP"));
        let sub_first = (SUB << 10).to_le_bytes();
        assert!(parse(&sub_first).is_err());
    }

    proptest! {
        #[test]
        fn encode_then_parse_is_identity(
            steps in proptest::collection::vec((0i64..5000, 1u8..50, any::<i8>(), 0u8..4, 0i8..3, "[(A-Z]{0,6}"), 0..60)
        ) {
            let mut time = 0;
            let anns: Vec<Annotation> = steps.iter().map(|(dt, code, sub, chan, num, aux)| {
                time += dt;
                Annotation { sample: time, code: AnnotationCode(*code), subtype: *sub, chan: *chan, num: *num, aux: aux.clone(), aux_had_nul: false }
            }).filter(|a| a.code != AnnotationCode::NOTE || a.sample != 0).collect();
            let back = parse(&encode(&anns)).unwrap();
            prop_assert_eq!(back, anns);
        }
    }

    #[test]
    fn notqrs_annotations_are_dropped() {
        let bytes = encode(&[ann(10, 1), ann(20, 0), ann(30, 5)]);
        let a = parse(&bytes).unwrap();
        assert_eq!(a.iter().map(|a| a.sample).collect::<Vec<_>>(), vec![10, 30]);
    }
}
