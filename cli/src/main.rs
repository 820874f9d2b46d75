//! `hookline`: parses the command line, runs the command, exits with its code
//! (0 ok, 1 failed, 2 usage or configuration, 3 not found).

use std::process::ExitCode;

use clap::Parser as _;
use hookline_cli::args::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse(); // usage errors exit 2, --help and --version 0
    let env: Vec<(String, String)> = std::env::vars().collect();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("hookline: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(hookline_cli::run(cli, &env)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("hookline: {}", error.one_line());
            error.exit()
        }
    }
}
