//! AAMI EC57 beat classes from MIT-BIH beat symbols, as de Chazal et al. (2004) group them.

/// The four AAMI classes ecgnas classifies, in output order.
pub const AAMI_CLASSES: [&str; 4] = ["N", "S", "V", "F"];

/// An AAMI class of a beat symbol: `Some(0..=3)` for N, S, V, F; `None` for class Q (paced,
/// fusion of paced and normal, unclassifiable), which is left out as usual, and for
/// everything that is not a beat (`+`, `~`, `|`, `x`, `!`, `[`, `]`, `"`...).
///
/// N = {N, L, R, e, j}, S = {A, a, J, S}, V = {V, E}, F = {F}. Some public code puts `e` and
/// `j` in S; that is not the AAMI grouping.
pub fn aami_class(symbol: &str) -> Option<usize> {
    match symbol {
        "N" | "L" | "R" | "e" | "j" => Some(0),
        "A" | "a" | "J" | "S" => Some(1),
        "V" | "E" => Some(2),
        "F" => Some(3),
        _ => None,
    }
}

/// Whether a symbol is an AAMI class Q beat (`/`, `f`, `Q`).
pub fn is_q_beat(symbol: &str) -> bool {
    matches!(symbol, "/" | "f" | "Q")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_beats_are_normal_class() {
        assert_eq!(aami_class("e"), Some(0));
        assert_eq!(aami_class("j"), Some(0));
        assert_eq!(aami_class("J"), Some(1));
        assert_eq!(aami_class("E"), Some(2));
        assert_eq!(aami_class("/"), None);
        assert!(is_q_beat("f"));
        assert_eq!(aami_class("+"), None);
    }
}
