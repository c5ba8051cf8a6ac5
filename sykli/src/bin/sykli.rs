//! The `sykli` command line.

fn main() -> std::process::ExitCode {
    sykli::cli::main()
}
