//! The ecgnas on-device runtime: int8 kernels, requantisation and the arena planner for
//! Cortex-M wearables.
//!
//! `no_std`, no heap, no panic reachable from any input: every kernel checks all lengths and
//! parameters first and returns a [`kernels::KernelError`] instead. No floating point on the
//! int8 path (only the preprocessing before the input quantisation is f32). Compiled for the
//! host, this same crate is the int8 reference that ecgnas's export, verification and cost
//! model call, so host and device compute bit-identical results and the
//! host predicts SRAM with the device's own planner.
//!
//! Modules:
//! - [`quant`]: `requantize` with TFLite Micro / CMSIS-NN semantics, the only copy in ecgnas
//!   (and, with the `host` feature, `quantize_multiplier`);
//! - [`kernels`]: the portable scalar int8 kernels, one op a file: [`kernels::conv1d`],
//!   [`kernels::depthwise1d`], [`kernels::dense`], [`kernels::max_pool`],
//!   [`kernels::avg_pool`], [`kernels::global_avg_pool`], [`kernels::add`] and the output
//!   decisions in [`kernels::activation`];
//! - [`arena`]: TFLM's greedy memory planner, lifetimes in, offsets and arena bytes out;
//! - [`model`]: a whole network as a static layer plan over one planned arena;
//! - [`preprocess`]: the search space's preprocessing in f32 and the input quantisation.
//!
//! Cargo features: `host` (off by default) adds host-only helpers that use floating point.
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(test)]
extern crate std;

pub mod arena;
pub mod kernels;
pub mod model;
pub mod preprocess;
pub mod quant;
