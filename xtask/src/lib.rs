//! job-test's release pipeline, as a library so that the end-to-end tests can
//! reach the same code the `cargo xtask` binary runs.
//!
//! One module per subcommand, each exposing `run`; `flags` declares every
//! flag; `report` prints results as text or JSON.

pub mod bench;
pub mod build;
pub mod flags;
pub mod image_ref;
pub mod manifest;
pub mod odds;
pub mod render;
pub mod report;
pub mod test;

use std::path::{Path, PathBuf};

use anyhow::Result;

/// The documented exit codes of `cargo xtask`.
pub mod exit {
    /// Done.
    pub const OK: u8 = 0;
    /// The work ran and failed (tests failed, a command failed).
    pub const FAILED: u8 = 1;
    /// Bad flags or values: nothing was done.
    pub const USAGE: u8 = 2;
    /// Something the task needs is missing from this machine (a toolchain
    /// target, the Docker daemon, the registry binary).
    pub const PREREQUISITE: u8 = 3;
}

/// A missing prerequisite: the message says what is missing and how to get it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Prerequisite(pub String);

/// Bad input: the message names the flag, the value and the fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidInput(pub String);

/// The exit code for an error: the most specific kind found in its chain.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if err.chain().any(|e| e.is::<InvalidInput>()) {
        exit::USAGE
    } else if err.chain().any(|e| e.is::<Prerequisite>()) {
        exit::PREREQUISITE
    } else {
        exit::FAILED
    }
}

/// Runs one subcommand.
pub fn run(flags: flags::Xtask) -> Result<()> {
    let out = report::Reporter::new(flags.output);
    match flags.command {
        flags::Command::Build(f) => build::run(&f, &out).map(drop),
        flags::Command::Test(f) => test::run(&f, &out),
        flags::Command::Bench(f) => bench::run(&f, &out),
        flags::Command::Render(f) => render::run(&f, &out),
        flags::Command::Odds(f) => odds::run(&f, &out),
    }
}

/// The workspace root (the folder holding the top-level Cargo.toml).
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives one level below the root").to_path_buf()
}
