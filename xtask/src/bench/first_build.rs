//! The first build on a fresh machine, compile only: what the first `cargo
//! xtask` compiles (`cargo build -p xtask`, the dev profile) from an empty
//! target directory, against what the image needs (`cargo build --release
//! -p job-worker --target x86_64-unknown-linux-musl`) from another, one
//! after the other, the crates already downloaded for both. cargo's
//! `--timings` page of the pipeline's build is kept, for its critical path.

use std::fmt;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use xshell::Shell;

use crate::report::Reporter;

#[derive(Debug, Serialize)]
pub(super) struct FirstBuild {
    pub(super) xtask_seconds: f64,
    /// User plus system time of the build's processes.
    pub(super) xtask_cpu_seconds: f64,
    /// Crates compiled (cargo's "Compiling" lines; build scripts not counted).
    pub(super) xtask_units: usize,
    pub(super) worker_seconds: f64,
    pub(super) worker_cpu_seconds: f64,
    pub(super) worker_units: usize,
    pub(super) xtask_over_worker: f64,
    /// cargo's `--timings` page of the pipeline's build.
    pub(super) timings: PathBuf,
}

impl fmt::Display for FirstBuild {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "first build from an empty target directory (crates already downloaded):\n  \
             cargo build -p xtask (what the first cargo xtask compiles)  {:.1} s ({:.1} s of CPU), {} crates\n  \
             the worker alone (release, musl)                           {:.1} s ({:.1} s of CPU), {} crates\n  \
             ratio                                                      {:.1}x (pipeline / worker)\n  \
             critical path: {}",
            self.xtask_seconds,
            self.xtask_cpu_seconds,
            self.xtask_units,
            self.worker_seconds,
            self.worker_cpu_seconds,
            self.worker_units,
            self.xtask_over_worker,
            self.timings.display()
        )
    }
}

/// What one clean build took.
struct Built {
    wall: Duration,
    cpu: Duration,
    crates: usize,
}

/// User plus system time of this process's waited-for children and their
/// waited-for descendants, so far.
fn children_cpu_time() -> Duration {
    // SAFETY: getrusage writes one plain struct, zeroed here first.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to that struct; RUSAGE_CHILDREN cannot fail.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// One clean build of `args` in a target directory of its own, removed
/// after: its wall and CPU time and the crates cargo compiled.
fn clean_build(name: &str, args: &[&str], keep_timings: Option<&PathBuf>) -> Result<Built> {
    let target = std::env::temp_dir().join(format!("job-test-bench-first-build-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&target);
    let sh = Shell::new()?;
    sh.change_dir(crate::project_root());
    let mut build = Command::from(
        crate::build::cargo_cmd(&sh)
            .args(["build", "--locked"])
            .args(args)
            .env("CARGO_TARGET_DIR", &target)
            .env("CARGO_TERM_PROGRESS_WHEN", "never"),
    );
    let (start, cpu_before) = (Instant::now(), children_cpu_time());
    let built = build.output().with_context(|| format!("running cargo build {}", args.join(" ")))?;
    let (wall, cpu) = (start.elapsed(), children_cpu_time().saturating_sub(cpu_before));
    let kept = match keep_timings {
        Some(keep) if built.status.success() => keep
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::copy(target.join("cargo-timings").join("cargo-timing.html"), keep))
            .map(drop)
            .with_context(|| format!("keeping cargo's timings page as {}", keep.display())),
        _ => Ok(()),
    };
    let _ = std::fs::remove_dir_all(&target);
    if !built.status.success() {
        bail!("cargo build {} failed: {}", args.join(" "), String::from_utf8_lossy(&built.stderr));
    }
    kept?;
    let stderr = String::from_utf8_lossy(&built.stderr);
    let crates = stderr.lines().filter(|l| l.trim_start().starts_with("Compiling ")).count();
    Ok(Built { wall, cpu, crates })
}

pub(super) fn measure(out: &Reporter) -> Result<FirstBuild> {
    out.status("building the pipeline, then the worker, each from an empty target directory (some minutes)");
    // Fetched once, first, so that downloads are not timed.
    let sh = Shell::new()?;
    sh.change_dir(crate::project_root());
    crate::build::cargo_cmd(&sh).args(["fetch", "--locked"]).quiet().run().context("cargo fetch")?;
    let timings = crate::target_dir().join("bench").join("first-build-timings.html");
    let xtask = clean_build("xtask", &["-p", "xtask", "--timings"], Some(&timings))?;
    let worker =
        clean_build("worker", &["--release", "-p", "job-worker", "--target", "x86_64-unknown-linux-musl"], None)?;
    Ok(FirstBuild {
        xtask_seconds: xtask.wall.as_secs_f64(),
        xtask_cpu_seconds: xtask.cpu.as_secs_f64(),
        xtask_units: xtask.crates,
        worker_seconds: worker.wall.as_secs_f64(),
        worker_cpu_seconds: worker.cpu.as_secs_f64(),
        worker_units: worker.crates,
        xtask_over_worker: xtask.wall.as_secs_f64() / worker.wall.as_secs_f64(),
        timings,
    })
}

/// A report of a first build, for the tests.
#[cfg(test)]
pub(super) fn example() -> FirstBuild {
    FirstBuild {
        xtask_seconds: 150.0,
        xtask_cpu_seconds: 280.0,
        xtask_units: 402,
        worker_seconds: 10.0,
        worker_cpu_seconds: 12.5,
        worker_units: 20,
        xtask_over_worker: 15.0,
        timings: "/w/target/bench/first-build-timings.html".into(),
    }
}
