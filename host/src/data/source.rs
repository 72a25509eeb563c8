//! Finding records: a folder, a header path, a CSV file.
