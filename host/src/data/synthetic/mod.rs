//! The built-in synthetic ECG.
