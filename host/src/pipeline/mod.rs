//! From a task's dataset to the network's inputs: records at the device's ADC rate, examples
//! cut into windows, and the candidate's preprocessing applied in floating point.
//!
//! The steps and sample counts are those of [`crate::space`]'s module docs (window, low-pass,
//! decimation, baseline, normalisation); the firmware runs the same steps in integers.

pub mod preprocess;
pub mod windows;

pub use windows::{AdcDataset, Prepared, RawExamples};
