//! Tasks turn records into labelled examples and split them by record.
