//! Every flag of every subcommand, declared in one place with a doc line
//! each: `--help` is made from these, and the README's command list follows
//! them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// job-test's release pipeline: build the flaky worker, package it, ship it,
/// run it as a Kubernetes Job and report what the retries did.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", version, max_term_width = 100)]
pub struct Xtask {
    /// How to print results: text for people, json for scripts (one object on stdout).
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build the static job-worker binary and print its path, size and sha256.
    Build(BuildFlags),
    /// Install or check what the tests need, then run the whole test suite.
    Test(TestFlags),
    /// Measure the worker's size, start-up time and SIGTERM latency against baselines.
    Bench(BenchFlags),
}

#[derive(Debug, Clone, Args)]
pub struct BuildFlags {
    /// Target triple. The musl target gives the smallest static binary; the
    /// gnu target is built with crt-static where musl cannot be installed.
    #[arg(long, value_enum, default_value_t = Target::Musl)]
    pub target: Target,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// x86_64-unknown-linux-musl
    #[value(name = "x86_64-unknown-linux-musl")]
    Musl,
    /// x86_64-unknown-linux-gnu with -C target-feature=+crt-static (about 2.7x larger)
    #[value(name = "x86_64-unknown-linux-gnu")]
    GnuStatic,
}

impl Target {
    pub fn triple(self) -> &'static str {
        match self {
            Target::Musl => "x86_64-unknown-linux-musl",
            Target::GnuStatic => "x86_64-unknown-linux-gnu",
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct TestFlags {
    /// Only check the prerequisites; install nothing (fails when one is missing).
    #[arg(long)]
    pub no_install: bool,
    /// Arguments passed to `cargo test` after `--` (a test name filter, say).
    #[arg(last = true)]
    pub cargo_test_args: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct BenchFlags {
    /// Runs of each program, interleaved so that both see the same machine.
    #[arg(long, default_value_t = 300)]
    pub runs: u32,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub save: Option<PathBuf>,
}
