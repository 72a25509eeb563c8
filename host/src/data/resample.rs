//! Resampling to a target rate with an anti-aliasing filter.
