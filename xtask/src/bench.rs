//! `cargo xtask bench`: the worker's numbers, each next to a baseline run
//! side by side on the same machine, reported as ratios (never asserted).
//!
//! - start-to-exit time of a run with no work, against the tutorial's job.py
//!   (`python3 -c` with random and sys.exit), runs interleaved so that both
//!   see the same machine state;
//! - SIGTERM-to-exit latency in `hang` mode, against the 100 ms the contract
//!   allows;
//! - binary size, against the 512 KiB aim;
//! - `cargo xtask push --builder docker` (build, export, push) against
//!   `docker build` + `docker push` of the same Dockerfile and binary to the
//!   same local registry, each to a fresh repository, builds cached for
//!   both (the Docker daemon mounts layers across repositories, so its push
//!   of a known layer sends nothing, while ours uploads them); and the time
//!   of a second, no-op push.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::flags::{BenchFlags, Target};
use crate::report::Reporter;
use crate::{Prerequisite, build};

/// The tutorial's job.py, as one `python3 -c` program.
const JOB_PY: &str =
    "import random, sys\nif random.random() < 0.2:\n    print('Job failed')\n    sys.exit(1)\nprint('Job succeeded')\n";

pub fn run(flags: &BenchFlags, out: &Reporter) -> Result<()> {
    if flags.runs < 10 {
        return Err(crate::InvalidInput(format!(
            "--runs {} is too few for a median and a 90th percentile: use 10 or more",
            flags.runs
        ))
        .into());
    }
    let worker = build::build(Target::Musl, out)?;
    Command::new("python3").arg("--version").output().map_err(|e| {
        Prerequisite(format!("python3 is needed as the baseline (the tutorial's job.py) but cannot run: {e}"))
    })?;

    out.status(format!("timing {} runs each of job-worker and python3 job.py, interleaved", flags.runs));
    let mut worker_times = Vec::new();
    let mut python_times = Vec::new();
    for _ in 0..flags.runs {
        worker_times.push(time_run(Command::new(&worker.path).env("TERMINATION_LOG", "/dev/null"))?);
        python_times.push(time_run(Command::new("python3").arg("-c").arg(JOB_PY))?);
    }
    let signal_runs = (flags.runs / 10).max(10);
    out.status(format!("timing SIGTERM-to-exit in hang mode, {signal_runs} runs"));
    let mut latencies = Vec::new();
    for _ in 0..signal_runs {
        latencies.push(sigterm_latency(&worker.path)?);
    }

    let (w, p, s) = (Stats::of(&mut worker_times), Stats::of(&mut python_times), Stats::of(&mut latencies));
    let pipeline = if flags.pipeline_runs > 0 { Some(pipeline(flags.pipeline_runs, &worker.path, out)?) } else { None };

    let ratio = p.median.as_secs_f64() / w.median.as_secs_f64();
    let size_kib = worker.size as f64 / 1024.0;
    let report = json!({
        "runs": flags.runs,
        "worker": { "path": worker.path, "size_bytes": worker.size, "size_kib": size_kib, "size_aim_kib": 512 },
        "start_to_exit_us": {
            "job_worker": w.json(), "python3_job_py": p.json(),
            "python_over_worker_median": ratio,
        },
        "sigterm_to_exit_us": s.json(),
        "pipeline_seconds": pipeline.as_ref().map(Pipeline::json),
    });
    let mut text = format!(
        "job-worker ({}): {} bytes = {size_kib:.1} KiB (aim: at most 512 KiB)\n\
         start to exit, median (p90) of {} runs:\n  job-worker      {:>9.0} us ({:.0})\n  python3 job.py  {:>9.0} us ({:.0})\n  \
         ratio           {ratio:.1}x faster than the Python equivalent\n\
         SIGTERM to exit in hang mode, median (p90, max) of {signal_runs}: {:.0} us ({:.0}, {:.0}); the contract allows 100 ms",
        worker.target.triple(),
        worker.size,
        flags.runs,
        w.median_us(),
        w.p90_us(),
        p.median_us(),
        p.p90_us(),
        s.median_us(),
        s.p90_us(),
        s.max.as_secs_f64() * 1e6,
    );
    if let Some(pl) = &pipeline {
        let (x, d) = (pl.xtask.median.as_secs_f64(), pl.docker.median.as_secs_f64());
        text += &format!(
            "\nbuild + push to a local registry, median of {} runs:\n  cargo xtask push --builder docker  {x:.2} s\n  \
             docker build + docker push         {d:.2} s\n  ratio                              {:.2}x (docker / xtask)\n  \
             a second, no-op cargo xtask push   {:.2} s (0 bytes uploaded)",
            flags.pipeline_runs,
            d / x,
            pl.noop.median.as_secs_f64()
        );
    }
    out.result(text, &report);
    if let Some(path) = &flags.save {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing the results to {}", path.display()))?;
    }
    Ok(())
}

struct Pipeline {
    xtask: Stats,
    docker: Stats,
    noop: Stats,
}

impl Pipeline {
    fn json(&self) -> serde_json::Value {
        let s = |st: &Stats| st.median.as_secs_f64();
        json!({ "xtask_push_docker": s(&self.xtask), "docker_build_push": s(&self.docker), "xtask_noop_push": s(&self.noop),
                "docker_over_xtask": s(&self.docker) / s(&self.xtask) })
    }
}

/// Times both pipelines, interleaved, each run to a fresh repository.
fn pipeline(runs: u32, worker: &std::path::Path, out: &Reporter) -> Result<Pipeline> {
    crate::local_registry::ensure_running(out)?;
    let xtask = std::env::current_exe().context("finding the running xtask")?;
    let context = std::env::temp_dir().join(format!("job-test-bench-{}", std::process::id()));
    std::fs::create_dir_all(&context)?;
    std::fs::copy(crate::project_root().join("Dockerfile"), context.join("Dockerfile"))?;
    std::fs::copy(worker, context.join("job-worker"))?;
    let layout = context.join("layout");
    let registry = crate::local_registry::address()?;
    out.status(format!("timing {runs} runs each of both build-and-push pipelines against {registry}"));
    let (mut xs, mut ds, mut ns) = (Vec::new(), Vec::new(), Vec::new());
    let mut tags = Vec::new();
    // The same build arguments as `cargo xtask image` passes, so both builds hit the same cache.
    let sh = xshell::Shell::new()?;
    sh.change_dir(crate::project_root());
    let labels = crate::image::Labels::of_checkout(&sh);
    let run = |cmd: &mut Command| -> Result<Duration> {
        let start = Instant::now();
        let o = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).output()?;
        if !o.status.success() {
            bail!("{:?} failed: {}", cmd, String::from_utf8_lossy(&o.stderr));
        }
        Ok(start.elapsed())
    };
    for i in 0..runs {
        let tag = format!("{registry}/bench-{}-{i}/xtask:1", std::process::id());
        let push = |c: &mut Command| -> Result<Duration> {
            run(c.arg("push").args(["--builder", "docker", "--image", &tag, "--layout"]).arg(&layout))
        };
        xs.push(push(&mut Command::new(&xtask))?);
        ns.push(push(&mut Command::new(&xtask))?);
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
    Ok(Pipeline { xtask: Stats::of(&mut xs), docker: Stats::of(&mut ds), noop: Stats::of(&mut ns) })
}

fn time_run(cmd: &mut Command) -> Result<Duration> {
    let start = Instant::now();
    let status = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().context("starting the program")?;
    let elapsed = start.elapsed();
    // Exit code 1 is the simulated failure; anything else is a broken run.
    if !matches!(status.code(), Some(0 | 1)) {
        bail!("a timed run ended with {status}");
    }
    Ok(elapsed)
}

/// Starts the worker in hang mode, waits for its outcome line (it is then
/// hanging), sends SIGTERM and times until it has exited.
fn sigterm_latency(worker: &std::path::Path) -> Result<Duration> {
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

struct Stats {
    median: Duration,
    p90: Duration,
    min: Duration,
    max: Duration,
}

impl Stats {
    fn of(samples: &mut [Duration]) -> Stats {
        samples.sort();
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        Stats { median: at(0.5), p90: at(0.9), min: samples[0], max: samples[samples.len() - 1] }
    }
    fn median_us(&self) -> f64 {
        self.median.as_secs_f64() * 1e6
    }
    fn p90_us(&self) -> f64 {
        self.p90.as_secs_f64() * 1e6
    }
    fn json(&self) -> serde_json::Value {
        let us = |d: Duration| (d.as_secs_f64() * 1e7).round() / 10.0;
        json!({ "median": us(self.median), "p90": us(self.p90), "min": us(self.min), "max": us(self.max) })
    }
}
