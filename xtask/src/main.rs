//! `cargo xtask`: parse the flags, run the subcommand, print the error with
//! its cause chain, exit with the documented code (see `xtask::exit`).

use std::process::ExitCode;

use clap::Parser;
use xtask::flags::{Command, Xtask};
use xtask::report::Reporter;
use xtask::{bench, build, cluster, exit, image, local, odds, push, release, render, test};

fn main() -> ExitCode {
    xtask::install_crypto_provider();
    let flags = match Xtask::try_parse() {
        Ok(flags) => flags,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { exit::USAGE } else { exit::OK });
        }
    };
    match run(flags) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(xtask::error::exit_code(&err))
        }
    }
}

/// Runs one subcommand.
fn run(flags: Xtask) -> anyhow::Result<()> {
    let out = Reporter::new(flags.output);
    match flags.command {
        Command::Build(f) => build::run(&f, &out).map(drop),
        Command::Test(f) => test::run(&f, &out),
        Command::Bench(f) => bench::run(&f, &out),
        Command::Image(f) => image::run(&f, &out),
        Command::Push(f) => push::run(&f, &out),
        Command::Render(f) => render::run(&f, &out),
        Command::Odds(f) => odds::run(&f, &out),
        Command::Apply(f) => cluster::apply::run(&f, &out),
        Command::Watch(f) => cluster::watch::run(&f, &out),
        Command::Logs(f) => cluster::logs::run(&f, &out),
        Command::Delete(f) => cluster::delete::run(&f, &out),
        Command::Pods(f) => cluster::pods::run(&f, &out),
        Command::Auth(f) => cluster::auth::run(&f, &out),
        Command::RunLocal(f) => local::run(&f, &out),
        Command::Release(f) => release::run(&f, &out),
    }
}
