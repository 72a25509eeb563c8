//! Training children: a candidate as a candle network, trained and evaluated.
//!
//! This module owns candle. It never sees a search strategy or a hardware profile.

pub mod bench;
pub mod child;
pub mod darts;
mod direct_conv;
pub mod fit;
pub mod kernels;
pub mod network;
pub mod ops;
pub mod supernet;

pub use child::{ChildEvaluator, TrainedChild};
pub use fit::{fit, predict, EpochLog, ExampleSet, Fitted, Targets, TrainConfig};
pub use network::Network;
