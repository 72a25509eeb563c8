//! The `ecgnas` command: parse the arguments, run, turn the outcome into an exit code.

use std::process::ExitCode;

// Training allocates and frees the same large activation buffers every step; mimalloc reuses
// their pages where the system allocator returns them to the kernel and faults them back in.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // candle's CPU worker pool spins after each of its parallel ops before it sleeps; on a few
    // cores that spinning takes the cores the training kernels (rayon's pool) need next.
    // Set before candle starts its pool (lazily, on its first parallel op).
    if std::env::var_os("CANDLE_BARRIER_POOL_SPIN_LIMIT").is_none() {
        std::env::set_var("CANDLE_BARRIER_POOL_SPIN_LIMIT", "0");
    }
    ecgnas::allocator::keep_freed_pages();
    ecgnas::cli::main()
}
