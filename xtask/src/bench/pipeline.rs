//! The xtask binary's `push --builder docker` (build, export, push; run
//! directly, so cargo's own check is not in it: `secure_push` times the
//! command through cargo too) against
//! `docker build` + `docker push` of the same Dockerfile and binary to the
//! same local registry, each to a fresh repository, builds cached for
//! both (the Docker daemon mounts layers across repositories, so its push
//! of a known layer sends nothing, while ours uploads them); and the time
//! of a second, no-op push: by the docker builder, and by the daemonless
//! one for both platforms (its default) and for linux/amd64 alone (what
//! the docker baseline builds: its daemon's one platform).

use std::fmt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;

use super::stats::{Stats, median_seconds, run_checked};
use super::{docker_context, xtask_child};
use crate::report::Reporter;

#[derive(Debug, Serialize)]
pub(super) struct Pipeline {
    pub(super) runs: u32,
    #[serde(rename = "xtask_push_docker", serialize_with = "median_seconds")]
    pub(super) xtask: Stats,
    #[serde(rename = "docker_build_push", serialize_with = "median_seconds")]
    pub(super) docker: Stats,
    #[serde(rename = "xtask_noop_push", serialize_with = "median_seconds")]
    pub(super) noop: Stats,
    pub(super) docker_over_xtask: f64,
    /// The goal: at least 1, a no-op push no slower than docker's build + push.
    pub(super) docker_over_noop: f64,
    /// A no-op push by the daemonless builder, both platforms (an index).
    #[serde(rename = "xtask_noop_push_oci", serialize_with = "median_seconds")]
    pub(super) noop_oci: Stats,
    /// The same for linux/amd64 alone: as many platforms as docker builds.
    #[serde(rename = "xtask_noop_push_oci_amd64", serialize_with = "median_seconds")]
    pub(super) noop_oci_amd64: Stats,
    pub(super) docker_over_noop_oci: f64,
    pub(super) docker_over_noop_oci_amd64: f64,
}

impl fmt::Display for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "build + push to a local registry by the xtask binary (cargo's check not included), median of {} runs:\n  \
             xtask push --builder docker        {:.2} s\n  \
             docker build + docker push         {:.2} s\n  ratio                              {:.2}x (docker / xtask)\n  \
             a second, no-op xtask push         {:.2} s (0 bytes uploaded)\n  \
             ratio                              {:.2}x (docker / no-op xtask; the goal is at least 1)",
            self.runs,
            self.xtask.median_secs(),
            self.docker.median_secs(),
            self.docker_over_xtask,
            self.noop.median_secs(),
            self.docker_over_noop,
        )?;
        write!(
            f,
            "\nno-op xtask push --builder oci (the binary), against docker build + push (one platform, the daemon's):"
        )?;
        for (what, noop, ratio) in [
            ("linux/amd64 + linux/arm64", &self.noop_oci, self.docker_over_noop_oci),
            ("--platform linux/amd64", &self.noop_oci_amd64, self.docker_over_noop_oci_amd64),
        ] {
            write!(
                f,
                "\n  {what:<26} {:.2} s  {ratio:.2}x (docker / no-op xtask): {}",
                noop.median_secs(),
                if ratio >= 1.0 { "meets the goal" } else { "misses the goal of 1" }
            )?;
        }
        Ok(())
    }
}

/// Times both pipelines, interleaved, each run to a fresh repository.
pub(super) fn measure(runs: u32, worker: &Path, out: &Reporter) -> Result<Pipeline> {
    crate::local_registry::ensure_running(out)?;
    let xtask = std::env::current_exe().context("finding the running xtask")?;
    let context = docker_context(&format!("job-test-bench-{}", std::process::id()), worker)?;
    let layout = context.join("layout");
    let registry = crate::local_registry::address()?;
    out.status(format!("timing {runs} runs each of both build-and-push pipelines against {registry}"));
    let (mut xs, mut ds, mut ns) = (Vec::new(), Vec::new(), Vec::new());
    let (mut oci_two, mut oci_amd64) = (Vec::new(), Vec::new());
    let mut tags = Vec::new();
    // The same build arguments as `cargo xtask image` passes, so both builds hit the same cache.
    let sh = xshell::Shell::new()?;
    sh.change_dir(crate::project_root());
    let labels = crate::image::Labels::of_checkout(&sh);
    let run = |cmd: &mut Command| run_checked(cmd, b"").map(|(took, _)| took);
    for i in 0..runs {
        let tag = format!("{registry}/bench-{}-{i}/xtask:1", std::process::id());
        let push = |c: &mut Command| -> Result<Duration> {
            run(c.arg("push").args(["--builder", "docker", "--image", &tag, "--layout"]).arg(&layout))
        };
        xs.push(push(&mut xtask_child(&xtask))?);
        ns.push(push(&mut xtask_child(&xtask))?);
        // The daemonless builder: a first push (not timed), then the no-op.
        for (name, platform, times) in [("oci", None, &mut oci_two), ("oci-amd64", Some("linux/amd64"), &mut oci_amd64)]
        {
            let tag = format!("{registry}/bench-{}-{i}/{name}:1", std::process::id());
            let oci_push = || -> Result<Duration> {
                let mut c = xtask_child(&xtask);
                c.arg("push").args(["--builder", "oci", "--image", &tag, "--layout"]).arg(context.join(name));
                c.args(platform.map(|p| ["--platform", p]).into_iter().flatten());
                run(&mut c)
            };
            oci_push()?;
            times.push(oci_push()?);
        }
        let dtag = format!("{registry}/bench-{}-{i}/docker:1", std::process::id());
        let start = Instant::now();
        run(Command::new("docker")
            .args(["build", "--quiet", "--tag", &dtag])
            .args(["--build-arg", &format!("VERSION={}", labels.version)])
            .args(["--build-arg", &format!("REVISION={}", labels.revision)])
            .args(["--build-arg", &format!("SOURCE={}", labels.source)])
            .arg(&context))?;
        run(Command::new("docker").args(["push", &dtag]))?;
        ds.push(start.elapsed());
        tags.extend([tag, dtag]);
    }
    // Removed only at the end: removing an image also removes the build
    // cache behind it, which would make every run a cold build.
    let _ = Command::new("docker").arg("rmi").arg("--force").args(&tags).output();
    let _ = std::fs::remove_dir_all(&context);
    let (xtask, docker, noop) = (Stats::of(&mut xs), Stats::of(&mut ds), Stats::of(&mut ns));
    let (noop_oci, noop_oci_amd64) = (Stats::of(&mut oci_two), Stats::of(&mut oci_amd64));
    Ok(Pipeline {
        runs,
        docker_over_xtask: docker.median_over(&xtask),
        docker_over_noop: docker.median_over(&noop),
        docker_over_noop_oci: docker.median_over(&noop_oci),
        docker_over_noop_oci_amd64: docker.median_over(&noop_oci_amd64),
        xtask,
        docker,
        noop,
        noop_oci,
        noop_oci_amd64,
    })
}

/// A pipeline report whose no-op pushes miss and meet the goal, for the tests.
#[cfg(test)]
pub(super) fn example() -> Pipeline {
    use super::stats::example as stats;
    Pipeline {
        runs: 5,
        xtask: stats(400_000),
        docker: stats(80_000),
        noop: stats(300_000),
        docker_over_xtask: 0.2,
        docker_over_noop: 0.25,
        noop_oci: stats(160_000),
        noop_oci_amd64: stats(50_000),
        docker_over_noop_oci: 0.5,
        docker_over_noop_oci_amd64: 1.6,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn pipeline_times_are_medians_in_seconds() {
        let pl = super::example();
        let json = serde_json::to_value(&pl).unwrap();
        assert_eq!(json["xtask_push_docker"], 0.4);
        assert_eq!(json["docker_build_push"], 0.08);
        assert_eq!(json["xtask_noop_push"], 0.3);
        assert_eq!(json["docker_over_noop"], 0.25);
        assert_eq!(json["xtask_noop_push_oci"], 0.16);
        assert_eq!(json["xtask_noop_push_oci_amd64"], 0.05);
        assert_eq!(json["docker_over_noop_oci_amd64"], 1.6);
    }
}
