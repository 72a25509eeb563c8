//! Any bytes given to the header parser: no panic, and a header that parses describes itself
//! consistently (one spec per declared signal, positive sampling rate, non-zero gains).
#![no_main]

use ecgnas::data::wfdb::Header;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = Header::parse(data) {
        assert!(header.fs > 0.0 && header.fs.is_finite());
        for s in &header.signals {
            assert!(s.gain > 0.0 && s.gain.is_finite());
            assert!(s.samples_per_frame >= 1);
        }
        let _ = header.duration_s();
    }
});
