//! Any bytes given to the annotation parser: no panic; what parses encodes and parses back to
//! the same annotations.
#![no_main]

use ecgnas::data::wfdb::annotation::{encode, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(annotations) = parse(data) {
        for a in &annotations {
            let _ = a.code.symbol();
        }
        // Annotations out of time order cannot be re-encoded as MIT deltas without SKIPs of
        // negative length, which encode writes; the round trip must still hold.
        if let Ok(again) = parse(&encode(&annotations)) {
            assert_eq!(again, annotations);
        } else {
            panic!("re-encoded annotations do not parse");
        }
    }
});
