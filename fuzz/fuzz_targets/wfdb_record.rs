//! The header parser and the signal readers together: the bytes up to the first NUL are a
//! header, the rest the contents of every signal file it names (read as `rec.dat`, or as a
//! MAT container when the input's first byte is odd). No panic; a record that reads holds
//! samples-per-frame values per frame for every signal.
#![no_main]

use std::path::Path;

use ecgnas::data::wfdb::WfdbRecord;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let (header, rest) = data.split_at(split);
    let signal = rest.get(1..).unwrap_or(&[]).to_vec();
    let name = if data.first().is_some_and(|b| b % 2 == 1) { "rec.mat" } else { "rec.dat" };
    let path = Path::new("fuzz").join(name).with_extension("hea");
    if let Ok(record) = WfdbRecord::from_bytes(&path, header, |_| Ok(signal.clone())) {
        let frames = record.n_samples();
        for (spec, samples) in record.header.signals.iter().zip(&record.samples) {
            assert_eq!(samples.len(), frames * spec.samples_per_frame as usize);
        }
        for i in 0..record.samples.len() {
            let _ = record.checksum_ok(i);
            let _ = record.physical(i);
        }
    }
});
