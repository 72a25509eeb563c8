//! Hardware profiles and the cost model: what a candidate costs on a chip.
//!
//! - [`profile`]: the chips, as `hw-profiles/*.toml` files typed and checked;
//! - [`estimate`]: MACs, parameters, flash, SRAM, cycles, latency and energy of a candidate.

pub mod estimate;
pub mod profile;

pub use estimate::{estimate, estimate_at, CostError, CostEstimate};
pub use profile::Profile;
