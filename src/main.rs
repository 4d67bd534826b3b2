//! The `crier` binary: parse the command line and hand over to [`crier::cli`].

fn main() -> std::process::ExitCode {
    crier::cli::main()
}
