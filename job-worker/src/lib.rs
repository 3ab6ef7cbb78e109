//! job-worker: a Kubernetes Job workload that fails on purpose.
//!
//! `config` reads flags and environment, `decision` makes the one
//! succeed-or-fail decision, `outcome` runs the work and carries the decision
//! out (exit code, panic, abort, hang, out of memory), `signals` keeps SIGTERM
//! working when the worker is PID 1, `log` prints the event lines.

pub mod config;
pub mod decision;
pub mod log;
pub mod outcome;
pub mod signals;

/// Exit code for a configuration the worker refuses. The rendered Job's
/// podFailurePolicy fails the Job at once on it: retrying cannot fix it.
pub const EXIT_CONFIG: u8 = 2;
