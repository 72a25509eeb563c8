//! Hardware profiles and the cost model: what a candidate costs on a chip.
