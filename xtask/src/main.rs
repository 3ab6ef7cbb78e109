//! `cargo xtask`: parse the flags, run the subcommand, print the error with
//! its cause chain, exit with the documented code (see `xtask::exit`).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    xtask::install_crypto_provider();
    let flags = match xtask::flags::Xtask::try_parse() {
        Ok(flags) => flags,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { xtask::exit::USAGE } else { xtask::exit::OK });
        }
    };
    match xtask::run(flags) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(xtask::exit_code(&err))
        }
    }
}
