//! The `vigil` binary: everything lives in the library; see `vigil --help`.

/// mimalloc: evaluating a policy allocates many small values; it cuts replay time by a measured
/// share against the system allocator (see README, Performance).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    vigil::cli::main()
}
