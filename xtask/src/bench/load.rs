//! A big local Job (`run-local`: 500 completions, parallelism 20,
//! FAIL_PROBABILITY 0.2, WORK_DURATION 1s, `--time-scale 0.01`) against a
//! one-pod Job run the same way, both under GNU time (`/usr/bin/time -f
//! "%e %M"`): the wall time against the floor the Job's own numbers set
//! (every pod it ran, times its work, over its parallelism), and the peak
//! memory (maximum resident set) against the one-pod run's, which is the
//! fixed cost of the process. Run side by side, the one-pod run first.

use std::fmt;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use super::BenchImage;
use crate::report::Reporter;

/// What the big Job and its one-pod baseline took.
#[derive(Debug, Serialize)]
pub(super) struct Load {
    pub(super) completions: u32,
    pub(super) parallelism: u32,
    pub(super) fail_probability: f64,
    pub(super) work_seconds: f64,
    pub(super) time_scale: f64,
    /// Pods the big Job ran (failed ones replaced).
    pub(super) pods: u64,
    pub(super) seconds: f64,
    /// pods × work ÷ parallelism: the wall time with nothing but the work.
    pub(super) floor_seconds: f64,
    pub(super) peak_rss_kib: u64,
    pub(super) one_pod_seconds: f64,
    pub(super) one_pod_peak_rss_kib: u64,
}

impl fmt::Display for Load {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a big local Job ({} completions, parallelism {}, p {}, work {} s, --time-scale {}; {} pods):\n  \
             wall time    {:.1} s against its floor of {:.1} s (pods x work / parallelism): {:.2}x\n  \
             peak memory  {:.1} MiB against {:.1} MiB for a one-pod Job run the same way: {:.2}x",
            self.completions,
            self.parallelism,
            self.fail_probability,
            self.work_seconds,
            self.time_scale,
            self.pods,
            self.seconds,
            self.floor_seconds,
            self.seconds / self.floor_seconds,
            self.peak_rss_kib as f64 / 1024.0,
            self.one_pod_peak_rss_kib as f64 / 1024.0,
            self.peak_rss_kib as f64 / self.one_pod_peak_rss_kib as f64,
        )
    }
}

pub(super) fn measure(worker: &Path, out: &Reporter) -> Result<Load> {
    let (completions, parallelism, p, work, scale) = (500u32, 20u32, 0.2, 1.0, 0.01);
    crate::debian::GNU_TIME.ensure(false, out)?;
    let xtask = std::env::current_exe().context("finding the running xtask")?;
    let pid = std::process::id();
    let image = BenchImage::build("load", worker)?;
    let image = &image.tag;
    let timed = |name: &str, completions: u32, parallelism: u32| -> Result<(f64, u64, u64)> {
        let times = std::env::temp_dir().join(format!("{name}.time"));
        // The settings file and JOB_TEST_ variables left out, as for
        // every child the bench runs; GNU time passes its environment on.
        let mut cmd = Command::new(crate::debian::GNU_TIME.program);
        crate::config::without_settings(&mut cmd);
        cmd.args(["-f", "%e %M", "-o"]).arg(&times).arg(&xtask);
        let o = cmd
            .args(["--output", "json", "run-local", "--name", name, "--image", image])
            .args(["--completions", &completions.to_string(), "--parallelism", &parallelism.to_string()])
            .args(["--fail-probability", &p.to_string(), "--work-duration", "1s", "--backoff-limit", "100000"])
            .args(["--time-scale", &scale.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .context("running cargo xtask run-local under /usr/bin/time")?;
        if !o.status.success() {
            bail!("run-local failed: {}", String::from_utf8_lossy(&o.stderr));
        }
        let report: serde_json::Value = serde_json::from_slice(&o.stdout).context("run-local's JSON report")?;
        let pods = report["pods"].as_array().map_or(0, Vec::len) as u64;
        let said = std::fs::read_to_string(&times).context("reading GNU time's output")?;
        let _ = std::fs::remove_file(&times);
        let last = said.lines().last().unwrap_or_default();
        let (seconds, kib) = last.split_once(' ').with_context(|| format!("GNU time printed {said:?}"))?;
        Ok((seconds.parse()?, kib.trim().parse()?, pods))
    };
    out.status("timing a one-pod local Job, then one of 500 completions at parallelism 20 (three minutes on 2 cores)");
    let (one_pod_seconds, one_pod_peak_rss_kib, _) = timed(&format!("job-test-bench-one-{pid}"), 1, 1)?;
    let (seconds, peak_rss_kib, pods) = timed(&format!("job-test-bench-load-{pid}"), completions, parallelism)?;
    Ok(Load {
        completions,
        parallelism,
        fail_probability: p,
        work_seconds: work,
        time_scale: scale,
        pods,
        seconds,
        floor_seconds: pods as f64 * work / f64::from(parallelism),
        peak_rss_kib,
        one_pod_seconds,
        one_pod_peak_rss_kib,
    })
}
