//! SIGTERM-to-exit latency in `hang` mode, against the 100 ms the contract
//! allows.

use std::fmt;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::stats::Stats;
use crate::report::Reporter;

/// Times `runs` SIGTERMs, one worker each.
pub(super) fn measure(runs: u32, worker: &Path, out: &Reporter) -> Result<Stats> {
    out.status(format!("timing SIGTERM-to-exit in hang mode, {runs} runs"));
    let mut latencies = Vec::new();
    for _ in 0..runs {
        latencies.push(sigterm_latency(worker)?);
    }
    Ok(Stats::of(&mut latencies))
}

/// The report's SIGTERM line, against the contract.
pub(super) fn write(f: &mut fmt::Formatter<'_>, runs: u32, s: &Stats) -> fmt::Result {
    write!(
        f,
        "SIGTERM to exit in hang mode, median (p90, max) of {runs}: {:.0} us ({:.0}, {:.0}); the contract allows 100 ms",
        s.median_us(),
        s.p90_us(),
        s.max.as_secs_f64() * 1e6,
    )
}

/// Starts the worker in hang mode, waits for its outcome line (it is then
/// hanging), sends SIGTERM and times until it has exited.
fn sigterm_latency(worker: &Path) -> Result<Duration> {
    let mut child = Command::new(worker)
        .args(["--fail-probability", "1", "--failure-mode", "hang", "--termination-log", "/dev/null"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting the worker")?;
    let stdout = child.stdout.take().context("worker stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    loop {
        let line = lines.next().context("the worker exited before it hung")??;
        if line.contains(" outcome ") {
            break;
        }
    }
    let pid = child.id() as libc::pid_t;
    let start = Instant::now();
    // SAFETY: plain syscall on a child we own and have not reaped.
    if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
        bail!("kill(SIGTERM) failed: {}", std::io::Error::last_os_error());
    }
    let status = child.wait()?;
    let elapsed = start.elapsed();
    if status.code() != Some(143) {
        bail!("after SIGTERM the worker ended with {status}, expected exit code 143");
    }
    Ok(elapsed)
}
