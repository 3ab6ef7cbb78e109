//! What can go wrong, as kinds the user acts on differently, each with one
//! documented exit code (nextest's `ExpectedError::process_exit_code` is the
//! model). Library code returns an [`Error`] of a kind; `anyhow` contexts may
//! wrap it, and `main` finds it in the chain to choose the exit code.

/// The documented exit codes of `cargo xtask`.
pub mod exit {
    /// Done.
    pub const OK: u8 = 0;
    /// The work ran and failed (tests failed, a Job failed, a command failed).
    pub const FAILED: u8 = 1;
    /// Bad flags or values: nothing was done.
    pub const USAGE: u8 = 2;
    /// Something the task needs is missing from this machine (a toolchain
    /// target, the Docker daemon, the registry binary).
    pub const PREREQUISITE: u8 = 3;
    /// A remote service refused or could not be reached: the registry or the
    /// cluster (credentials, permissions, TLS trust, DNS, connection), or no
    /// usable cluster configuration at all.
    pub const REMOTE: u8 = 4;
    /// `--timeout` ran out while watching a Job.
    pub const TIMEOUT: u8 = 5;
    /// Stopped by Ctrl-C (SIGINT), after cleaning up (128 + 2, as shells do).
    pub const INTERRUPTED: u8 = 130;
    /// Stopped by SIGTERM, after cleaning up (128 + 15).
    pub const TERMINATED: u8 = 143;
}

/// How an error is handled: each kind has one exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad input: the message names the flag, the value and the fix.
    Usage,
    /// Missing from this machine: the message says what and how to get it.
    Prerequisite,
    /// No cluster is configured at all: `release` stops before applying.
    NoCluster,
    /// A cluster configuration was named (KUBECONFIG, `--kubeconfig`,
    /// `--context`) but cannot be used: the same exit code as none at all,
    /// since either way there is no cluster to talk to.
    ClusterConfig,
    /// A registry, cluster or the Docker daemon refused or failed: the message says which
    /// step, why, and how to fix it.
    Remote,
    /// `--timeout` ran out; the work goes on where it runs.
    Timeout,
    /// The work ran and failed (a Job failed).
    Failed,
    /// Ctrl-C stopped the work; what it started was removed.
    Interrupted,
    /// SIGTERM stopped the work; what it started was removed.
    Terminated,
}

impl ErrorKind {
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Usage => exit::USAGE,
            ErrorKind::Prerequisite => exit::PREREQUISITE,
            ErrorKind::NoCluster | ErrorKind::ClusterConfig | ErrorKind::Remote => exit::REMOTE,
            ErrorKind::Timeout => exit::TIMEOUT,
            ErrorKind::Failed => exit::FAILED,
            ErrorKind::Interrupted => exit::INTERRUPTED,
            ErrorKind::Terminated => exit::TERMINATED,
        }
    }
}

/// An error of a kind, with the message the user reads.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error { kind, message: message.into() }
    }

    pub fn usage(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Usage, message)
    }

    pub fn prerequisite(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Prerequisite, message)
    }

    pub fn remote(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Remote, message)
    }
}

/// The kind of the first [`Error`] in the chain, if any.
pub fn kind(err: &anyhow::Error) -> Option<ErrorKind> {
    err.chain().find_map(|e| e.downcast_ref::<Error>()).map(|e| e.kind)
}

/// The exit code for an error: its kind's, else 1.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    kind(err).map_or(exit::FAILED, ErrorKind::exit_code)
}

#[cfg(test)]
mod tests {
    use anyhow::Context;

    use super::*;

    #[test]
    fn the_kind_is_found_under_contexts_and_chooses_the_exit_code() {
        let err = Err::<(), _>(Error::new(ErrorKind::Timeout, "gave up after 1s"))
            .context("watching job.batch/job-test")
            .unwrap_err();
        assert_eq!(kind(&err), Some(ErrorKind::Timeout));
        assert_eq!(exit_code(&err), exit::TIMEOUT);
        assert_eq!(exit_code(&anyhow::anyhow!("something else")), exit::FAILED);
        assert_eq!(exit_code(&Error::usage("--x").into()), exit::USAGE);
        assert_eq!(exit_code(&Error::new(ErrorKind::NoCluster, "none").into()), exit::REMOTE);
    }
}
