//! A Job run locally (`cargo xtask run-local`: 5 completions, parallelism
//! 2, FAIL_PROBABILITY 0.2, `--time-scale 0.01`) against the same number
//! of pods run one after the other by `docker run` (the Docker CLI's
//! create, start, attach and wait) of the same image with the same
//! FAIL_PROBABILITY: the wall time of the whole Job against that of the
//! `docker run`s, and per pod the daemon's own times from the container's
//! creation to its exit (`Created` to `State.FinishedAt`), so both are
//! measured by one clock; removal is outside both.

use std::fmt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use super::stats::{Stats, median_seconds};
use super::{BenchImage, xtask_child};
use crate::report::Reporter;

/// The local Job against `docker run`s of the same pods; seconds.
#[derive(Debug, Serialize)]
pub(super) struct LocalRun {
    pub(super) runs: u32,
    pub(super) completions: u32,
    pub(super) parallelism: u32,
    pub(super) fail_probability: f64,
    pub(super) time_scale: f64,
    /// Pods each local Job ran (failed ones replaced), in order of the runs.
    pub(super) pods: Vec<usize>,
    /// Wall time of `cargo xtask run-local`, start to report (the process,
    /// the daemon connection, every pod and back-off, the removal).
    #[serde(serialize_with = "median_seconds")]
    pub(super) run_local: Stats,
    /// Wall time of as many `docker run`s, one after the other.
    #[serde(serialize_with = "median_seconds")]
    pub(super) docker_runs: Stats,
    /// Per pod, the daemon's container creation to the process's exit.
    #[serde(serialize_with = "median_seconds")]
    pub(super) run_local_pod: Stats,
    #[serde(serialize_with = "median_seconds")]
    pub(super) docker_run_pod: Stats,
}

impl fmt::Display for LocalRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a local Job ({} completions, parallelism {}, p {}, --time-scale {}), median of {} runs (pods: {}):\n  \
             cargo xtask run-local              {:.2} s\n  \
             the same pods by docker run, serial {:.2} s\n  \
             per pod, created to exited: run-local {:.3} s, docker run {:.3} s (the daemon's times, median)",
            self.completions,
            self.parallelism,
            self.fail_probability,
            self.time_scale,
            self.runs,
            self.pods.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
            self.run_local.median_secs(),
            self.docker_runs.median_secs(),
            self.run_local_pod.median_secs(),
            self.docker_run_pod.median_secs(),
        )
    }
}

/// Times local Jobs and their `docker run` baselines, interleaved, with an
/// image of the freshly built worker tagged for the bench and removed after.
pub(super) fn measure(runs: u32, worker: &Path, out: &Reporter) -> Result<LocalRun> {
    let (completions, parallelism, p, scale) = (5u32, 2u32, 0.2, 0.01);
    let xtask = std::env::current_exe().context("finding the running xtask")?;
    let pid = std::process::id();
    let bench_image = BenchImage::build("local", worker)?;
    let image = &bench_image.tag;
    let name = format!("job-test-bench-{pid}");
    let quiet = |cmd: &mut Command| -> Result<String> {
        let o = cmd.stderr(Stdio::piped()).output().with_context(|| format!("running {cmd:?}"))?;
        if !o.status.success() {
            bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&o.stderr).trim());
        }
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    };
    out.status(format!(
        "timing {runs} local Jobs ({completions} completions, parallelism {parallelism}, p {p}, --time-scale {scale}) \
         and as many pods by docker run, interleaved"
    ));
    let measured = (|| -> Result<_> {
        let (mut totals, mut baselines, mut pod_times, mut docker_pod_times, mut pods) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            let start = Instant::now();
            let o = xtask_child(&xtask)
                .args(["run-local", "--keep", "--name", &name, "--image", image])
                .args(["--completions", &completions.to_string(), "--parallelism", &parallelism.to_string()])
                .args(["--fail-probability", &p.to_string(), "--backoff-limit", "100"])
                .args(["--time-scale", &scale.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .output()
                .context("running cargo xtask run-local")?;
            totals.push(start.elapsed());
            if !o.status.success() {
                bail!("run-local failed: {}", String::from_utf8_lossy(&o.stderr));
            }
            let kept = quiet(
                Command::new("docker")
                    .args(["ps", "-aq", "--filter"])
                    .arg(format!("label={}={name}", crate::local::pod::JOB_LABEL)),
            )?;
            let ids: Vec<&str> = kept.split_whitespace().collect();
            pods.push(ids.len());
            pod_times.extend(created_to_exited(&ids)?);
            quiet(xtask_child(&xtask).args(["delete", "--local", "--name", &name]))?;
            let start = Instant::now();
            for _ in 0..*pods.last().expect("pushed above") {
                // Without --rm, so that the daemon's times can be read; exit 1 is a simulated failure.
                let o = Command::new("docker")
                    .args(["run", "--network", "none", "--label", &format!("{name}=baseline")])
                    .args(["-e", &format!("FAIL_PROBABILITY={p}"), "-e", "TERMINATION_LOG=/dev/null"])
                    .arg(image)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .context("running docker run")?;
                if !matches!(o.code(), Some(0 | 1)) {
                    bail!("docker run of the worker ended with {o}");
                }
            }
            baselines.push(start.elapsed());
            let listed = quiet(Command::new("docker").args(["ps", "-aq", "--filter", &format!("label={name}")]))?;
            let ids: Vec<&str> = listed.split_whitespace().collect();
            docker_pod_times.extend(created_to_exited(&ids)?);
            quiet(Command::new("docker").args(["rm", "--force"]).args(&ids))?;
        }
        Ok((totals, baselines, pod_times, docker_pod_times, pods))
    })();
    // Whatever happened: no container of the bench is left (nor its image,
    // which `bench_image` removes when dropped, after them).
    let _ = xtask_child(&xtask).args(["delete", "--local", "--name", &name]).output();
    if let Ok(o) = Command::new("docker").args(["ps", "-aq", "--filter", &format!("label={name}")]).output() {
        let ids = String::from_utf8_lossy(&o.stdout).into_owned();
        let _ = Command::new("docker").args(["rm", "--force"]).args(ids.split_whitespace()).output();
    }
    let (mut totals, mut baselines, mut pod_times, mut docker_pod_times, pods) = measured?;
    Ok(LocalRun {
        runs,
        completions,
        parallelism,
        fail_probability: p,
        time_scale: scale,
        pods,
        run_local: Stats::of(&mut totals),
        docker_runs: Stats::of(&mut baselines),
        run_local_pod: Stats::of(&mut pod_times),
        docker_run_pod: Stats::of(&mut docker_pod_times),
    })
}

/// The daemon's creation-to-exit time of each container.
fn created_to_exited(ids: &[&str]) -> Result<Vec<Duration>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let o = Command::new("docker")
        .args(["inspect", "--format", "{{.Created}} {{.State.FinishedAt}}"])
        .args(ids)
        .output()
        .context("docker inspect")?;
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|line| {
            let (created, finished) =
                line.split_once(' ').with_context(|| format!("docker inspect printed {line:?}"))?;
            let t = |s: &str| s.parse::<jiff::Timestamp>().with_context(|| format!("not a time: {s:?}"));
            let d = t(finished)?.duration_since(t(created)?);
            Duration::try_from(d).with_context(|| format!("exited before it was created: {line:?}"))
        })
        .collect()
}
