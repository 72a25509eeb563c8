//! Training children: a candidate as a candle network, trained and evaluated.
//!
//! This module owns candle. It never sees a search strategy or a hardware profile.

pub mod ops;
