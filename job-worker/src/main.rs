//! job-worker's entry point: block the termination signals, read the
//! configuration, run. Everything else lives in the library.

use std::process::ExitCode;

use job_worker::config::{self, Command};
use job_worker::signals::Signals;

fn main() -> ExitCode {
    // First, before anything could start a thread: see `signals`.
    let signals = match Signals::block() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("job-worker: cannot block SIGTERM and SIGINT: {e}");
            return ExitCode::from(job_worker::EXIT_CONFIG);
        }
    };
    let command = match config::parse(std::env::args_os().skip(1), |name| std::env::var_os(name)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "job-worker: {e}\njob-worker: run with --help for every setting; exit code 2 means invalid configuration"
            );
            return ExitCode::from(job_worker::EXIT_CONFIG);
        }
    };
    match command {
        Command::Help => print!("{}", config::help()),
        Command::Version => println!("job-worker {}", env!("CARGO_PKG_VERSION")),
        Command::Run(config) => {
            let code = job_worker::outcome::run(&config, &signals);
            return ExitCode::from(u8::try_from(code).unwrap_or(1));
        }
    }
    ExitCode::SUCCESS
}
