//! The search space: what a candidate pipeline is, and which candidates are valid.
