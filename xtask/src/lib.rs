//! job-test's release pipeline, as a library so that the end-to-end tests can
//! reach the same code the `cargo xtask` binary runs.
//!
//! One module per subcommand, each exposing `run` (`main` dispatches);
//! `flags` declares every flag; `report` prints results as text or JSON;
//! `error` holds the error kinds and their exit codes. What is here is the
//! ground every module stands on: where things are, the runtime, and how
//! an error reads on one line.

pub mod alerts;
pub mod args;
pub mod bench;
pub mod build;
pub mod choices;
pub mod cluster;
pub mod completions;
pub mod config;
pub mod conformance;
pub mod control_plane;
pub mod debian;
pub mod error;
pub mod flags;
pub mod fuzz;
pub mod image;
pub mod image_ref;
pub mod kube_version;
#[cfg(test)]
mod layers;
pub mod local;
pub mod local_registry;
pub mod manifest;
pub mod net;
pub mod odds;
pub mod push;
pub mod release;
pub mod render;
pub mod report;
pub mod report_cmd;
pub mod test;

use std::path::{Path, PathBuf};

pub use error::{Error, ErrorKind, exit};

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

/// The variables `cargo run` sets for the program it runs (the package's
/// manifest and metadata), which a cargo started from `cargo xtask` must
/// not inherit (`build::cargo_cmd`): ring's build script reruns when
/// CARGO_MANIFEST_DIR changes, so with them a nested cargo rebuilt ring and
/// all that depends on it (rustls, kube, bollard, xtask), and the user's
/// next `cargo xtask` rebuilt them all again without them.
pub fn vars_set_by_cargo_run() -> Vec<std::ffi::OsString> {
    std::env::vars_os()
        .map(|(name, _)| name)
        .filter(|name| {
            let name = name.to_string_lossy();
            ["CARGO_MANIFEST_DIR", "CARGO_MANIFEST_PATH", "CARGO_CRATE_NAME", "CARGO_BIN_NAME", "CARGO_PRIMARY_PACKAGE"]
                .contains(&name.as_ref())
                || name.starts_with("CARGO_PKG_")
        })
        .collect()
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

/// Writes a file readable by its owner only (mode 0600), for files that
/// hold a credential (a kubeconfig with a token, a pull secret).
pub fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    // An existing file keeps its mode on open: make sure it is 0600.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("chmod 0600 {}", path.display()))?;
    file.write_all(contents).with_context(|| format!("writing {}", path.display()))
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

#[cfg(test)]
mod tests {
    /// cargo runs the tests as it runs `cargo xtask`, with the package's
    /// variables set: those are the ones a nested cargo must not see, and
    /// what configures cargo or finds it stays.
    #[test]
    fn a_nested_cargo_drops_what_cargo_run_set_and_keeps_the_rest() {
        let dropped = super::vars_set_by_cargo_run();
        let has = |name: &str| dropped.iter().any(|d| d == name);
        assert!(has("CARGO_MANIFEST_DIR") && has("CARGO_PKG_NAME") && has("CARGO_PKG_VERSION"), "{dropped:?}");
        assert!(!has("CARGO") && !has("PATH") && !has("HOME"), "{dropped:?}");
        assert!(dropped.iter().all(|d| d.to_string_lossy().starts_with("CARGO_")), "{dropped:?}");
    }
}
