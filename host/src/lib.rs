//! ecgnas designs ECG classifiers for wearable microcontrollers.
//!
//! The modules follow the data flow of the tool:
//!
//! - [`data`]: records on disk (WFDB, MATLAB v4, CSV) and the built-in synthetic ECG, turned by a
//!   task into labelled examples split by record;
//! - [`cli`]: the `ecgnas` command line, the only module that prints.
#![forbid(unsafe_code)]

pub mod cli;
pub mod data;
