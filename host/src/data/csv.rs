//! CSV import: one column per lead, a header row, the sampling rate given by the user.
