//! ecgnas designs ECG classifiers for wearable microcontrollers.
//!
//! The modules follow the data flow of the tool:
//!
//! - [`data`]: records on disk (WFDB, MATLAB v4, CSV) and the built-in synthetic ECG, turned by a
//!   task into labelled examples split by record;
//! - [`space`]: what a candidate pipeline (preprocessing and architecture) is;
//! - [`pipeline`]: a task's examples at the device's rate, preprocessed for a candidate;
//! - [`train`]: a candidate as a candle network, trained and evaluated;
//! - [`metrics`]: the benchmark metrics (Se, +P, F1, AUROC, Challenge scores);
//! - [`export`]: a trained network as a model folder (safetensors, ONNX f32 and int8 QDQ, the
//!   int8 layer plan the firmware runs) and back;
//! - [`deploy`]: an exported model built into the board binary and run on the target;
//! - [`cost`]: hardware profiles and what a candidate costs on a chip;
//! - [`search`]: strategies, the reward and the search loop;
//! - [`store`]: the trial store of a search;
//! - [`cli`]: the `ecgnas` command line, the only module that prints;
//! - [`allocator`]: the binary's allocator settings for training.
// No unsafe code, except where a module allows it with its reasons: the raw-pointer GEMM call
// of `train::kernels`, the AVX2 microkernels of `train::direct_conv`, mimalloc's options in
// `allocator`.
#![deny(unsafe_code)]

pub mod allocator;
pub mod cli;
pub mod cost;
pub mod data;
pub mod deploy;
pub mod export;
pub mod metrics;
pub mod pipeline;
pub mod search;
pub mod space;
pub mod store;
pub mod train;
