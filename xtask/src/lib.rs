//! job-test's release pipeline, as a library so that the end-to-end tests can
//! reach the same code the `cargo xtask` binary runs.
//!
//! One module per subcommand, each exposing `run`; `flags` declares every
//! flag; `report` prints results as text or JSON.

pub mod bench;
pub mod build;
pub mod cluster;
pub mod control_plane;
pub mod flags;
pub mod image;
pub mod image_ref;
pub mod local_registry;
pub mod manifest;
pub mod odds;
pub mod push;
pub mod release;
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
    /// A remote service refused or could not be reached: the registry or the
    /// cluster (credentials, permissions, TLS trust, DNS, connection).
    pub const REMOTE: u8 = 4;
    /// `--timeout` ran out while watching a Job.
    pub const TIMEOUT: u8 = 5;
}

/// A missing prerequisite: the message says what is missing and how to get it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Prerequisite(pub String);

/// Bad input: the message names the flag, the value and the fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidInput(pub String);

/// A remote service refused or failed: the message says which step, why,
/// and how to fix it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Remote(pub String);

/// The exit code for an error: the most specific kind found in its chain.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if err.chain().any(|e| e.is::<InvalidInput>()) {
        exit::USAGE
    } else if err.chain().any(|e| e.is::<Prerequisite>()) {
        exit::PREREQUISITE
    } else if err.chain().any(|e| e.is::<cluster::watch::TimedOut>()) {
        exit::TIMEOUT
    } else if err.chain().any(|e| e.is::<Remote>() || e.is::<cluster::NoCluster>()) {
        exit::REMOTE
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
        flags::Command::Image(f) => image::run(&f, &out),
        flags::Command::Push(f) => push::run(&f, &out),
        flags::Command::Render(f) => render::run(&f, &out),
        flags::Command::Odds(f) => odds::run(&f, &out),
        flags::Command::Apply(f) => cluster::apply::run(&f, &out),
        flags::Command::Watch(f) => cluster::watch::run(&f, &out),
        flags::Command::Logs(f) => cluster::logs::run(&f, &out),
        flags::Command::Delete(f) => cluster::delete::run(&f, &out),
        flags::Command::Pods(f) => cluster::pods::run(&f, &out),
        flags::Command::Auth(f) => cluster::auth::run(&f, &out),
        flags::Command::Release(f) => release::run(&f, &out),
    }
}

/// The workspace root (the folder holding the top-level Cargo.toml).
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives one level below the root").to_path_buf()
}

/// Where everything the pipeline makes goes: cargo's target directory
/// (`CARGO_TARGET_DIR`, relative to the project root when relative, as
/// cargo reads it), else `target/` in the project.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => project_root().join(dir),
        None => project_root().join("target"),
    }
}

/// Installs the process's one rustls crypto provider (ring, the one kube
/// uses); oci-client is built without one. Without this, the first TLS
/// connection panics when two providers are compiled in. Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The async runtime for the subcommands that talk to daemons, registries
/// and clusters.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    install_crypto_provider();
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?)
}

/// An error and its causes on one line, `outer: inner: innermost`.
pub fn error_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A message from a server on one line, cut at 400 characters.
pub fn one_line(message: &str) -> String {
    let line = message.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() > 400 { format!("{}…", line.chars().take(400).collect::<String>()) } else { line }
}
