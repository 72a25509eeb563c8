//! The ecgnas on-device runtime: int8 kernels and requantisation for Cortex-M wearables.
//!
//! `no_std`, no heap, no panic reachable from any input. Compiled for the host, this same
//! crate is the int8 reference that ecgnas's export and verification call, so host and device
//! compute bit-identical results.
#![no_std]
#![deny(unsafe_code)]

pub mod quant;
