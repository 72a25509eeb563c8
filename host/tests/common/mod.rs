//! What the CLI tests share: where the real PhysioNet records live.

use std::path::PathBuf;

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
