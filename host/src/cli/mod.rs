//! The `ecgnas` command line: arguments, output and exit codes. The only module that prints.
//!
//! Exit codes: 0 success; 1 the command ran and a check failed; 2 bad input or an error.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod answers;
mod bench;
mod calibrate;
mod data;
mod deploy;
mod device;
mod distributed;
mod estimate;
mod evaluate;
pub mod json;
mod model;
mod plot;
mod profiles;
mod scale;
mod search;
mod strip;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Design ECG classifiers for wearable microcontrollers.
///
/// Exit codes: 0 success; 1 the command ran and a check failed; 2 bad input or an error.
#[derive(Debug, Parser)]
#[command(name = "ecgnas", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Read ECG data: records, tasks, label counts.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Search for the best network within a device's budget (the main job).
    Search(search::SearchArgs),
    /// List the built-in hardware profiles.
    Profiles(profiles::ProfilesArgs),
    /// Export a search's candidate as a model folder (safetensors, ONNX f32 and int8).
    Export(model::ExportArgs),
    /// Evaluate a model on every example of a task in the records given.
    Evaluate(evaluate::EvaluateArgs),
    /// Train one given candidate and export it as a model folder.
    Train(model::TrainArgs),
    /// Check that a model folder's files compute the same thing (tract, candle, int8).
    Verify(model::VerifyArgs),
    /// Run a model on a recording, window by window.
    Predict(model::PredictArgs),
    /// Fit the cost model's coefficients to instruction counts measured on the target.
    Calibrate(calibrate::CalibrateArgs),
    /// Predict what a candidate or a model costs on a chip (flash, SRAM, cycles, energy).
    Estimate(estimate::EstimateArgs),
    /// Build a model into the board binary, run it on the target, compare with the host.
    Deploy(deploy::DeployArgs),
    /// Benchmarks: child training speed against PyTorch.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Grow one network into a family by compound scaling: the largest member that fits each
    /// profile, trained, exported and verified.
    Scale(scale::ScaleArgs),
    /// Train the trials a distributed search's coordinator queues (`search --workers external`).
    Worker(distributed::WorkerArgs),
    /// Show a search's progress in its store: trials done, pending, running, failed, the best.
    Status(distributed::StatusArgs),
    /// Draw a CSV's rows as a quality-against-latency scatter (SVG), one colour per group.
    Plot(plot::PlotArgs),
}

/// The outcome of a command that ran to the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything held.
    Success,
    /// The command ran, and a check it makes failed.
    CheckFailed,
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Data(command) => data::run(command),
        Command::Search(args) => search::run(args),
        Command::Profiles(args) => profiles::run(args),
        Command::Export(args) => model::export(args),
        Command::Verify(args) => model::verify(args),
        Command::Train(args) => model::train(args),
        Command::Evaluate(args) => evaluate::run(args),
        Command::Predict(args) => model::predict(args),
        Command::Deploy(args) => deploy::run(args),
        Command::Estimate(args) => estimate::run(args),
        Command::Calibrate(args) => calibrate::run(args),
        Command::Plot(args) => plot::run(args),
        Command::Scale(args) => scale::run(args),
        Command::Worker(args) => distributed::worker(args),
        Command::Status(args) => distributed::status(args),
        Command::Bench(command) => bench::run(command),
    };
    match result {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::CheckFailed) => ExitCode::from(1),
        Err(error) => {
            report_error(&error);
            ExitCode::from(2)
        }
    }
}

/// Prints an error and its chain of causes to stderr. A cause the message before it already
/// quotes (an I/O error behind "path: error") is not repeated.
fn report_error(error: &anyhow::Error) {
    let mut stderr = std::io::stderr().lock();
    let mut previous = error.to_string();
    let _ = writeln!(stderr, "error: {previous}");
    for cause in error.chain().skip(1) {
        let text = cause.to_string();
        if !previous.contains(&text) {
            let _ = writeln!(stderr, "  caused by: {text}");
        }
        previous = text;
    }
}

/// Writes to stdout; a closed pipe (`ecgnas ... | head`) is not an error.
fn print_stdout(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush())
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
