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
            for error in &e.errors {
                eprintln!("job-worker: {error}");
            }
            eprintln!("job-worker: run with --help for every setting; exit code 2 means invalid configuration");
            // A refused configuration is a failure like any other: the pod
            // status says why (the Job's podFailurePolicy fails it on exit 2).
            job_worker::outcome::write_termination_log(&e.termination_log, &format!("job-worker: {}", e.one_line()));
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
