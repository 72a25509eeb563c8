//! Hardware profiles and the cost model: what a candidate costs on a chip.
//!
//! - [`profile`]: the chips, as `hw-profiles/*.toml` files typed and checked.

pub mod profile;
