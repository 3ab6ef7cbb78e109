//! The statistics every measurement reports (median, 90th percentile,
//! minimum and maximum of its runs, and their ratios), how they go into the
//! JSON, and the one timed run of a program most of them are made of.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Serialize, Serializer};

/// Durations of one program's runs; in JSON as microseconds to 0.1.
#[derive(Debug, Serialize)]
pub(super) struct Stats {
    #[serde(serialize_with = "micros")]
    pub(super) median: Duration,
    #[serde(serialize_with = "micros")]
    pub(super) p90: Duration,
    #[serde(serialize_with = "micros")]
    pub(super) min: Duration,
    #[serde(serialize_with = "micros")]
    pub(super) max: Duration,
}

impl Stats {
    pub(super) fn of(samples: &mut [Duration]) -> Stats {
        samples.sort();
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        Stats { median: at(0.5), p90: at(0.9), min: samples[0], max: samples[samples.len() - 1] }
    }
    pub(super) fn median_us(&self) -> f64 {
        self.median.as_secs_f64() * 1e6
    }
    pub(super) fn p90_us(&self) -> f64 {
        self.p90.as_secs_f64() * 1e6
    }
    pub(super) fn median_secs(&self) -> f64 {
        self.median.as_secs_f64()
    }
    /// How many times `base`'s median this median is: every ratio the
    /// bench reports.
    pub(super) fn median_over(&self, base: &Stats) -> f64 {
        self.median_secs() / base.median_secs()
    }
}

/// A `Stats` field whose JSON is its median alone, in seconds (the
/// measurements that take seconds, not microseconds).
pub(super) fn median_seconds<S: Serializer>(st: &Stats, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(st.median_secs())
}

fn micros<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1e7).round() / 10.0)
}

/// One timed run of a program, its output thrown away.
pub(super) fn time_run(cmd: &mut Command) -> Result<Duration> {
    let start = Instant::now();
    let status = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().context("starting the program")?;
    let elapsed = start.elapsed();
    // Exit code 1 is the simulated failure; anything else is a broken run.
    if !matches!(status.code(), Some(0 | 1)) {
        bail!("a timed run ended with {status}");
    }
    Ok(elapsed)
}

/// Runs `cmd` to its end with `input` on its stdin (closed at once when
/// empty): the time it took and its stdout, or an error with the command
/// and its stderr. For the runs that must succeed (builds, pushes, the
/// tools that set a measurement up); a secret goes in on stdin, never on
/// the command line the error shows.
pub(super) fn run_checked(cmd: &mut Command, input: &[u8]) -> Result<(Duration, Vec<u8>)> {
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {cmd:?}"))?;
    let mut stdin = child.stdin.take().context("the child's stdin")?;
    std::io::Write::write_all(&mut stdin, input).with_context(|| format!("writing to {cmd:?}"))?;
    drop(stdin);
    let o = child.wait_with_output()?;
    let elapsed = start.elapsed();
    if !o.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&o.stderr).trim());
    }
    Ok((elapsed, o.stdout))
}

/// Stats around a median, for the reports' tests.
#[cfg(test)]
pub(super) fn example(median_us: u64) -> Stats {
    let d = Duration::from_micros(median_us);
    Stats { median: d, p90: d * 2, min: d / 2, max: d * 3 }
}
