//! `cargo xtask`: read the settings (file and environment), parse the flags
//! with the settings as their defaults, run the subcommand, print the error
//! with its cause chain and where a named setting came from, exit with the
//! documented code (see `xtask::exit`).

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{ArgMatches, CommandFactory, FromArgMatches};
use xtask::config::Settings;
use xtask::flags::{Command, Xtask};
use xtask::report::Reporter;
use xtask::{
    alerts, bench, build, cluster, completions, config, conformance, exit, fuzz, image, local, odds, push, release,
    render, report_cmd, test,
};

fn main() -> ExitCode {
    xtask::install_crypto_provider();
    let args: Vec<OsString> = std::env::args_os().collect();
    let settings = match Settings::load(&Xtask::command(), &args) {
        Ok(settings) => settings,
        Err(err) => match unsettled(&args) {
            // What reads no setting still works, so that a broken file
            // does not hide the help that says how to fix it.
            Unsettled::Printed(e) => {
                eprintln!("warning: settings not read: {err} (--help shows the built-in defaults)");
                let _ = e.print();
                return ExitCode::from(exit::OK);
            }
            Unsettled::Completions => {
                eprintln!("warning: settings not read: {err} (the completion script does not need them)");
                Settings { keys: config::keys(&Xtask::command()), file: None }
            }
            Unsettled::Refused => {
                eprintln!("error: {err}");
                return ExitCode::from(exit::USAGE);
            }
        },
    };
    let parsed = settings
        .apply(Xtask::command())
        .try_get_matches_from(&args)
        .and_then(|matches| Ok((Xtask::from_arg_matches(&matches)?, matches)));
    let (mut flags, matches) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { exit::USAGE } else { exit::OK });
        }
    };
    config::typed_only(&mut flags.command, &matches);
    match run(flags, &settings, &matches) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            for note in settings.notes(&matches, &format!("{err:#}")) {
                eprintln!("  note: {note}");
            }
            ExitCode::from(xtask::error::exit_code(&err))
        }
    }
}

/// What a run whose settings cannot be read may still do.
enum Unsettled {
    /// --help or --version, printed without the settings.
    Printed(clap::Error),
    /// `completions`: the script is the same whatever the settings.
    Completions,
    /// Anything else: the settings change what it does.
    Refused,
}

/// Parses `args` without the settings to tell whether they are needed.
fn unsettled(args: &[OsString]) -> Unsettled {
    use clap::error::ErrorKind;
    match Xtask::command().try_get_matches_from(args) {
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => Unsettled::Printed(e),
        Ok(m) if m.subcommand_name() == Some("completions") => Unsettled::Completions,
        _ => Unsettled::Refused,
    }
}

/// Runs one subcommand.
fn run(flags: Xtask, settings: &Settings, matches: &ArgMatches) -> anyhow::Result<()> {
    let out = Reporter::new(flags.output).verbose(flags.verbose);
    match flags.command {
        Command::Build(f) => build::run(&f, &out).map(drop),
        Command::Test(f) => test::run(&f, &out),
        Command::Bench(f) => bench::run(&f, &out),
        Command::Fuzz(f) => fuzz::run(&f, &out),
        Command::Image(f) => image::run(&f, &out),
        Command::Push(f) => push::run(&f, &out),
        Command::Render(f) => render::run(&f, &out),
        Command::Odds(f) => {
            let (_, sub) = matches.subcommand().expect("a subcommand was parsed");
            odds::run(&f, sub, &out)
        }
        Command::Apply(f) => cluster::apply_cmd::run(&f, &out),
        Command::Watch(f) => cluster::watch::run(&f, &out),
        Command::Logs(f) => cluster::logs::run(&f, &out),
        Command::Delete(f) => cluster::delete::run(&f, &out),
        Command::Pods(f) => cluster::pods::run(&f, &out),
        Command::ServiceAccount(f) => cluster::service_account::run(&f, &out),
        Command::RunLocal(f) => local::run(&f, &out),
        Command::Conformance(f) => conformance::run(&f, &out),
        Command::Evict(f) => cluster::evict::run(&f, &out),
        Command::Alerts(f) => {
            let (_, sub) = matches.subcommand().expect("a subcommand was parsed");
            let source = xtask::args::job_source(sub, "--report", f.report.as_deref(), &f.job.name, "drills")?;
            alerts::run(&f, source, &out)
        }
        Command::Release(f) => release::run(&f, &out),
        Command::Report(f) => report_cmd::run(&f, &out),
        Command::Config(f) => {
            let (_, sub) = matches.subcommand().expect("a subcommand was parsed");
            config::run(&f, settings, sub, &out)
        }
        Command::Completions(f) => completions::run(&f, &out),
    }
}
