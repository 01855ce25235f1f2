//! The `vigil` binary: everything lives in the library; see `vigil --help`.

fn main() -> std::process::ExitCode {
    vigil::cli::main()
}
