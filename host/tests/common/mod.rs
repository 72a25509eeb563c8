//! What the CLI tests share: the binary under test and where the real PhysioNet records live.
// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// The `ecgnas` binary built for these tests.
pub fn ecgnas() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ecgnas"))
}

/// Runs `cmd` to its end; a binary that cannot start is a broken test setup.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("ecgnas runs")
}

/// What the command wrote on stderr.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The shared PhysioNet folder (`../shared/data` beside the repository, or
/// `$ECGNAS_SHARED_DATA`), or `None` with a printed notice when it is absent.
pub fn shared_data(folder: &str) -> Option<PathBuf> {
    let root = std::env::var_os("ECGNAS_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"));
    let path = root.join(folder);
    if path.is_dir() {
        Some(path)
    } else {
        #[allow(clippy::print_stderr)]
        {
            eprintln!(
                "SKIPPED: {} is absent; this test needs the shared PhysioNet data",
                path.display()
            );
        }
        None
    }
}
