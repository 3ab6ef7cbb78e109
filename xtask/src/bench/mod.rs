//! `cargo xtask bench`: the worker's numbers, each next to a baseline run
//! side by side on the same machine, reported as ratios (never asserted).
//! One file per measurement, each saying what it measures against what:
//!
//! - `startup`: start-to-exit time against python3's job.py and `/bin/true`;
//! - `sigterm`: SIGTERM-to-exit latency in `hang` mode, against the 100 ms
//!   the contract allows;
//! - binary size, against the 512 KiB aim (from the build; no file of its own);
//! - `pipeline`: `cargo xtask push` against `docker build` + `docker push`;
//! - `secure_push`: a no-op `cargo xtask push`, through cargo, against
//!   docker's, to a registry with TLS and basic auth;
//! - `local_run`: `cargo xtask run-local` against serial `docker run`s;
//! - `odds`: `odds --target` against a plain `odds`;
//! - `first_build`: the pipeline's first build against the worker's, each
//!   from an empty target directory (`--first-build`);
//! - `load`: a local Job of 500 completions against its floor (time) and a
//!   one-pod Job (peak memory).
//!
//! The report is one value: text (Display) and JSON (Serialize).

mod first_build;
mod load;
mod local_run;
mod odds;
mod pipeline;
mod secure_push;
mod sigterm;
mod startup;
mod stats;

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::build;
use crate::choices::Target;
use crate::flags::BenchFlags;
use crate::report::Reporter;
use first_build::FirstBuild;
use load::Load;
use local_run::LocalRun;
use odds::OddsTarget;
use pipeline::Pipeline;
use secure_push::SecurePush;
use startup::{Floor, Interpreter, StartToExit};
use stats::Stats;

pub fn run(flags: &BenchFlags, out: &Reporter) -> Result<()> {
    if flags.runs < 10 {
        return Err(crate::Error::usage(format!(
            "--runs {} is too few for a median and a 90th percentile: use 10 or more",
            flags.runs
        ))
        .into());
    }
    let worker = build::build(Target::Musl, out)?;
    let startup = startup::measure(flags.runs, &worker.path, out)?;
    let signal_runs = (flags.runs / 10).max(10);
    let sigterm = sigterm::measure(signal_runs, &worker.path, out)?;
    // The sections with a run count of their own are skipped at 0.
    let pipeline =
        (flags.pipeline_runs > 0).then(|| pipeline::measure(flags.pipeline_runs, &worker.path, out)).transpose()?;
    let secure_push =
        (flags.pipeline_runs > 0).then(|| secure_push::measure(flags.pipeline_runs, &worker.path, out)).transpose()?;
    let local = (flags.local_runs > 0).then(|| local_run::measure(flags.local_runs, &worker.path, out)).transpose()?;
    let odds_target = (flags.odds_runs > 0).then(|| odds::measure(flags.odds_runs, out)).transpose()?;
    let first_build = flags.first_build.then(|| first_build::measure(out)).transpose()?;
    let load = flags.load.then(|| load::measure(&worker.path, out)).transpose()?;

    let report = Report {
        runs: flags.runs,
        worker: Worker {
            path: worker.path.clone(),
            target: worker.target.triple(),
            size_bytes: worker.size,
            size_kib: worker.size as f64 / 1024.0,
            size_aim_kib: 512,
        },
        python3: startup.python3,
        true_: startup.floor,
        start_to_exit_us: startup.times,
        signal_runs,
        sigterm_to_exit_us: sigterm,
        pipeline_seconds: pipeline,
        secure_push_seconds: secure_push,
        local_job: local,
        odds_target,
        first_build,
        load,
    };
    out.result(&report);
    if let Some(path) = &flags.save {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing the results to {}", path.display()))?;
    }
    Ok(())
}

/// What `cargo xtask bench` prints: as text (Display) and as JSON.
#[derive(Debug, Serialize)]
struct Report {
    runs: u32,
    worker: Worker,
    /// The Python baseline: which interpreter ran job.py.
    python3: Interpreter,
    /// The floor baseline.
    #[serde(rename = "true")]
    true_: Floor,
    start_to_exit_us: StartToExit,
    signal_runs: u32,
    sigterm_to_exit_us: Stats,
    pipeline_seconds: Option<Pipeline>,
    secure_push_seconds: Option<SecurePush>,
    local_job: Option<LocalRun>,
    odds_target: Option<OddsTarget>,
    first_build: Option<FirstBuild>,
    load: Option<Load>,
}

#[derive(Debug, Serialize)]
struct Worker {
    path: PathBuf,
    target: &'static str,
    size_bytes: u64,
    size_kib: f64,
    size_aim_kib: u32,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Report { worker, python3, true_, start_to_exit_us, signal_runs, sigterm_to_exit_us, .. } = self;
        writeln!(
            f,
            "job-worker ({}): {} bytes = {:.1} KiB (aim: at most {} KiB)",
            worker.target, worker.size_bytes, worker.size_kib, worker.size_aim_kib
        )?;
        startup::write(f, self.runs, python3, true_, start_to_exit_us)?;
        sigterm::write(f, *signal_runs, sigterm_to_exit_us)?;
        if let Some(pl) = &self.pipeline_seconds {
            write!(f, "\n{pl}")?;
        }
        if let Some(s) = &self.secure_push_seconds {
            write!(f, "\n{s}")?;
        }
        if let Some(l) = &self.local_job {
            write!(f, "\n{l}")?;
        }
        if let Some(o) = &self.odds_target {
            write!(f, "\n{o}")?;
        }
        if let Some(b) = &self.first_build {
            write!(f, "\n{b}")?;
        }
        if let Some(l) = &self.load {
            write!(f, "\n{l}")?;
        }
        Ok(())
    }
}

/// The image of the freshly built worker that a measurement runs, tagged
/// `job-test-bench-NAME:PID` by `docker build`; removed from the daemon
/// when dropped, whatever the measurement did.
struct BenchImage {
    tag: String,
}

impl BenchImage {
    fn build(name: &str, worker: &Path) -> Result<BenchImage> {
        let pid = std::process::id();
        let context = docker_context(&format!("job-test-bench-{name}-{pid}"), worker)?;
        let tag = format!("job-test-bench-{name}:{pid}");
        let built = Command::new("docker").args(["build", "--quiet", "--tag", &tag]).arg(&context).output();
        let _ = std::fs::remove_dir_all(&context);
        match built {
            Ok(o) if o.status.success() => Ok(BenchImage { tag }),
            Ok(o) => anyhow::bail!("docker build of {tag} failed: {}", String::from_utf8_lossy(&o.stderr).trim()),
            Err(e) => Err(e).context("running docker build"),
        }
    }
}

impl Drop for BenchImage {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", "--force", &self.tag]).output();
    }
}

/// A folder holding the project's Dockerfile and the freshly built worker,
/// for the measurements that build the image with `docker build`.
fn docker_context(name: &str, worker: &Path) -> Result<PathBuf> {
    let context = std::env::temp_dir().join(name);
    std::fs::create_dir_all(&context)?;
    std::fs::copy(crate::project_root().join("Dockerfile"), context.join("Dockerfile"))?;
    std::fs::copy(worker, context.join("job-worker"))?;
    Ok(context)
}

/// A child `cargo xtask` of the bench, free of the project's settings file
/// and of JOB_TEST_<FLAG>: what is measured is what its arguments say.
fn xtask_child(xtask: &Path) -> Command {
    let mut cmd = Command::new(xtask);
    crate::config::without_settings(&mut cmd);
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;
    use startup::TRUE;
    use stats::example as stats;

    #[test]
    fn the_report_names_each_baseline_and_keeps_its_json_fields() {
        let mut report = Report {
            runs: 300,
            worker: Worker {
                path: "/w/job-worker".into(),
                target: "x86_64-unknown-linux-musl",
                size_bytes: 512_560,
                size_kib: 500.5,
                size_aim_kib: 512,
            },
            python3: Interpreter {
                on_path: "/root/.pyenv/shims/python3".into(),
                executable: "/root/.pyenv/versions/3.11.7/bin/python3".into(),
                version: "3.11.7".into(),
                wrapper: true,
            },
            true_: Floor { path: TRUE.into(), linkage: "dynamically linked" },
            start_to_exit_us: StartToExit {
                job_worker: stats(500),
                python3_job_py: stats(36_000),
                python3_shim_job_py: Some(stats(85_000)),
                true_: stats(625),
                python_over_worker_median: 72.0,
                shim_over_worker_median: Some(170.0),
                worker_over_true_median: 0.8,
            },
            signal_runs: 30,
            sigterm_to_exit_us: stats(150),
            pipeline_seconds: None,
            secure_push_seconds: None,
            local_job: Some(LocalRun {
                runs: 3,
                completions: 5,
                parallelism: 2,
                fail_probability: 0.2,
                time_scale: 0.01,
                pods: vec![5, 6, 7],
                run_local: stats(2_500_000),
                docker_runs: stats(3_000_000),
                run_local_pod: stats(400_000),
                docker_run_pod: stats(450_000),
            }),
            odds_target: Some(OddsTarget {
                runs: 3,
                args: vec!["--completions", "1000000"],
                target_search: stats(30_000),
                plain_odds: stats(3_000_000),
                plain_over_target_median: 100.0,
                budget_spent: stats(500_000),
                default_job: stats(100_000),
                budget_spent_over_default_job: 5.0,
            }),
            first_build: Some(first_build::example()),
            load: Some(Load {
                completions: 500,
                parallelism: 20,
                fail_probability: 0.2,
                work_seconds: 1.0,
                time_scale: 0.01,
                pods: 620,
                seconds: 62.0,
                floor_seconds: 31.0,
                peak_rss_kib: 40_960,
                one_pod_seconds: 2.0,
                one_pod_peak_rss_kib: 20_480,
            }),
        };
        let text = report.to_string();
        assert!(text.contains("/root/.pyenv/versions/3.11.7/bin/python3 (Python 3.11.7)"), "{text}");
        assert!(text.contains("/root/.pyenv/shims/python3 (a wrapper)"), "{text}");
        assert!(text.contains("72.0x faster than the Python equivalent (170.0x through PATH's wrapper)"), "{text}");
        assert!(text.contains("0.80x the time of /bin/true (faster than the floor)"), "{text}");
        assert!(text.lines().all(|l| l == l.trim_end()), "trailing blanks: {text:?}");

        let json = serde_json::to_value(&report).unwrap();
        // The names scripts already read, in the units they had.
        assert_eq!(json["worker"]["size_bytes"], 512_560);
        assert_eq!(json["start_to_exit_us"]["job_worker"]["median"], 500.0);
        assert_eq!(json["start_to_exit_us"]["python3_job_py"]["p90"], 72_000.0);
        assert_eq!(json["start_to_exit_us"]["python_over_worker_median"], 72.0);
        assert_eq!(json["sigterm_to_exit_us"]["max"], 450.0);
        assert!(json["pipeline_seconds"].is_null());
        assert!(text.contains(
            "a local Job (5 completions, parallelism 2, p 0.2, --time-scale 0.01), median of 3 runs (pods: 5, 6, 7):\n  \
             cargo xtask run-local              2.50 s\n  \
             the same pods by docker run, serial 3.00 s\n  \
             per pod, created to exited: run-local 0.400 s, docker run 0.450 s (the daemon's times, median)"
        ), "{text}");
        assert_eq!(json["local_job"]["run_local"], 2.5);
        assert_eq!(json["local_job"]["docker_run_pod"], 0.45);
        assert_eq!(json["odds_target"]["target_search"], 0.03);
        assert!(
            text.contains(
                "a big local Job (500 completions, parallelism 20, p 0.2, work 1 s, --time-scale 0.01; 620 pods):\n  \
             wall time    62.0 s against its floor of 31.0 s (pods x work / parallelism): 2.00x\n  \
             peak memory  40.0 MiB against 20.0 MiB for a one-pod Job run the same way: 2.00x"
            ),
            "{text}"
        );
        assert_eq!(json["load"]["peak_rss_kib"], 40_960);
        assert!(
            text.contains(
                "cargo build -p xtask (what the first cargo xtask compiles)  150.0 s (280.0 s of CPU), 402 crates\n  \
                 the worker alone (release, musl)                           10.0 s (12.5 s of CPU), 20 crates\n  \
                 ratio                                                      15.0x (pipeline / worker)"
            ),
            "{text}"
        );
        assert_eq!(json["first_build"]["xtask_units"], 402);
        assert_eq!(json["first_build"]["xtask_cpu_seconds"], 280.0);
        assert!(text.contains("odds --target 99.9%                  0.030 s"), "{text}");
        assert!(
            text.contains(
                "odds --backoff-limit 1000000         0.500 s (the whole simulation budget; the goal is under 1 s)\n  \
                 odds of the default Job              0.100 s\n  \
                 ratio                                5.0x (a million / the default)"
            ),
            "{text}"
        );
        assert_eq!(json["odds_target"]["budget_spent"], 0.5);
        // And the new ones.
        assert_eq!(json["python3"]["executable"], "/root/.pyenv/versions/3.11.7/bin/python3");
        assert_eq!(json["start_to_exit_us"]["true"]["median"], 625.0);
        assert_eq!(json["start_to_exit_us"]["worker_over_true_median"], 0.8);

        // The no-op pushes, each against the goal.
        report.pipeline_seconds = Some(pipeline::example());
        let text = report.to_string();
        assert!(
            text.contains("linux/amd64 + linux/arm64  0.16 s  0.50x (docker / no-op xtask): misses the goal"),
            "{text}"
        );
        assert!(
            text.contains("--platform linux/amd64     0.05 s  1.60x (docker / no-op xtask): meets the goal"),
            "{text}"
        );
        assert!(text.lines().all(|l| l == l.trim_end()), "trailing blanks: {text:?}");

        // The no-op push where users push, through cargo, against docker's.
        report.secure_push_seconds = Some(secure_push::example());
        let text = report.to_string();
        assert!(
            text.contains(
                "cargo xtask push --builder oci --platform linux/amd64   0.56 s  0.34x (docker / cargo xtask): misses \
                 the goal of 1"
            ),
            "{text}"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["secure_push_seconds"]["cargo_xtask_noop"], 0.56);
        assert_eq!(json["secure_push_seconds"]["docker_build_push"], 0.19);
        assert_eq!(json["secure_push_seconds"]["docker_over_cargo_xtask"], 0.34);
    }
}
