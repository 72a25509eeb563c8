//! The `ecgnas` command line: arguments, output and exit codes. The only module that prints.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use clap::Parser;

/// ecgnas: design ECG classifiers for wearable microcontrollers.
#[derive(Debug, Parser)]
#[command(name = "ecgnas", version)]
pub struct Cli {}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let _cli = Cli::parse();
    ExitCode::SUCCESS
}
