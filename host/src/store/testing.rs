//! For tests of the PostgreSQL store, here and in the CLI's tests: a fresh schema on the test
//! server (`scripts/pg-test-server.sh`).

/// The store URL of a fresh schema (named from `tag`) on the test server that
/// `ECGNAS_TEST_POSTGRES` names, or `None` with a printed notice when there is none
/// (`ECGNAS_REQUIRE_POSTGRES` set makes that a failure, as in CI).
///
/// # Panics
///
/// When the server cannot be reached or the schema cannot be created: a test setup error.
#[allow(clippy::print_stderr, clippy::unwrap_used)]
pub fn postgres_test_url(tag: &str) -> Option<String> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let Ok(server) = std::env::var("ECGNAS_TEST_POSTGRES") else {
        assert!(
            std::env::var_os("ECGNAS_REQUIRE_POSTGRES").is_none(),
            "ECGNAS_REQUIRE_POSTGRES is set but ECGNAS_TEST_POSTGRES names no server"
        );
        eprintln!("SKIPPED: no PostgreSQL test server (set ECGNAS_TEST_POSTGRES; scripts/pg-test-server.sh starts one)");
        return None;
    };
    let schema = format!(
        "{tag}_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
    );
    let mut admin = postgres::Client::connect(&server, postgres::NoTls)
        .unwrap_or_else(|e| panic!("test server {server}: {e}"));
    admin
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .unwrap();
    let sep = if server.contains('?') { '&' } else { '?' };
    Some(format!("{server}{sep}options=-csearch_path%3D{schema}"))
}
