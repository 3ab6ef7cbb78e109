//! `cargo xtask bench`: the worker's numbers, each next to a baseline run
//! side by side on the same machine, reported as ratios (never asserted).
//!
//! - start-to-exit time of a run with no work, interleaved (the order
//!   rotating from one round to the next) with:
//!   - the tutorial's job.py (`python3 -c` with random and sys.exit), run by
//!     the interpreter itself: `python3` on PATH is resolved once to its
//!     `sys.executable`, because PATH often holds a version manager's shim
//!     (pyenv's is a bash script) that costs as much as Python's own start;
//!     when PATH's `python3` is such a wrapper it is timed too, separately;
//!   - `/bin/true`: the least a program can do, the floor of starting a
//!     process on this machine (usually glibc, dynamically linked);
//! - SIGTERM-to-exit latency in `hang` mode, against the 100 ms the contract
//!   allows;
//! - binary size, against the 512 KiB aim;
//! - `cargo xtask push --builder docker` (build, export, push) against
//!   `docker build` + `docker push` of the same Dockerfile and binary to the
//!   same local registry, each to a fresh repository, builds cached for
//!   both (the Docker daemon mounts layers across repositories, so its push
//!   of a known layer sends nothing, while ours uploads them); and the time
//!   of a second, no-op push: by the docker builder, and by the daemonless
//!   one for both platforms (its default) and for linux/amd64 alone (what
//!   the docker baseline builds: its daemon's one platform);
//! - a Job run locally (`cargo xtask run-local`: 5 completions, parallelism
//!   2, FAIL_PROBABILITY 0.2, `--time-scale 0.01`) against the same number
//!   of pods run one after the other by `docker run` (the Docker CLI's
//!   create, start, attach and wait) of the same image with the same
//!   FAIL_PROBABILITY: the wall time of the whole Job against that of the
//!   `docker run`s, and per pod the daemon's own times from the container's
//!   creation to its exit (`Created` to `State.FinishedAt`), so both are
//!   measured by one clock; removal is outside both.

use std::ffi::OsStr;
use std::fmt;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Serialize, Serializer};

use crate::choices::Target;
use crate::flags::BenchFlags;
use crate::report::Reporter;
use crate::{Error, build};

/// The tutorial's job.py, as one `python3 -c` program.
const JOB_PY: &str =
    "import random, sys\nif random.random() < 0.2:\n    print('Job failed')\n    sys.exit(1)\nprint('Job succeeded')\n";

/// Asks an interpreter where it is and which version it is, one per line.
const WHICH_PYTHON: &str = "import sys, platform\nprint(sys.executable)\nprint(platform.python_version())\n";

/// The floor: a process that starts and exits.
const TRUE: &str = "/bin/true";

pub fn run(flags: &BenchFlags, out: &Reporter) -> Result<()> {
    if flags.runs < 10 {
        return Err(crate::Error::usage(format!(
            "--runs {} is too few for a median and a 90th percentile: use 10 or more",
            flags.runs
        ))
        .into());
    }
    let worker = build::build(Target::Musl, out)?;
    let python = Interpreter::resolve()?;
    let floor = Floor::of(Path::new(TRUE))?;
    out.status(format!("python3 on PATH is {}; timing the interpreter itself: {}", python.on_path.display(), python));

    // One entry per program, timed in turn within each round.
    let mut programs: Vec<(Command, Vec<Duration>)> = Vec::new();
    let mut worker_cmd = Command::new(&worker.path);
    worker_cmd.env("TERMINATION_LOG", "/dev/null");
    programs.push((worker_cmd, Vec::new()));
    let mut python_cmd = Command::new(&python.executable);
    python_cmd.arg("-c").arg(JOB_PY);
    programs.push((python_cmd, Vec::new()));
    programs.push((Command::new(&floor.path), Vec::new()));
    if python.wrapper {
        let mut shim_cmd = Command::new(&python.on_path);
        shim_cmd.arg("-c").arg(JOB_PY);
        programs.push((shim_cmd, Vec::new()));
    }
    out.status(format!(
        "timing {} runs each of job-worker, python3 job.py{}, and {TRUE}, interleaved",
        flags.runs,
        if python.wrapper { " (the interpreter, and through PATH's wrapper)" } else { "" }
    ));
    for round in 0..flags.runs as usize {
        let n = programs.len();
        // Rotated, so that no program always runs right after the same other one.
        for k in 0..n {
            let (cmd, times) = &mut programs[(round + k) % n];
            times.push(time_run(cmd)?);
        }
    }
    let mut stats = programs.into_iter().map(|(_, mut times)| Stats::of(&mut times));
    let (w, p, t) = (stats.next().unwrap(), stats.next().unwrap(), stats.next().unwrap());
    let shim = stats.next();

    let signal_runs = (flags.runs / 10).max(10);
    out.status(format!("timing SIGTERM-to-exit in hang mode, {signal_runs} runs"));
    let mut latencies = Vec::new();
    for _ in 0..signal_runs {
        latencies.push(sigterm_latency(&worker.path)?);
    }
    let pipeline = if flags.pipeline_runs > 0 { Some(pipeline(flags.pipeline_runs, &worker.path, out)?) } else { None };
    let local = if flags.local_runs > 0 { Some(local_run(flags.local_runs, &worker.path, out)?) } else { None };
    let odds_target = if flags.odds_runs > 0 { Some(odds_target(flags.odds_runs, out)?) } else { None };

    let median_ratio = |a: &Stats, b: &Stats| a.median.as_secs_f64() / b.median.as_secs_f64();
    let report = Report {
        runs: flags.runs,
        worker: Worker {
            path: worker.path.clone(),
            target: worker.target.triple(),
            size_bytes: worker.size,
            size_kib: worker.size as f64 / 1024.0,
            size_aim_kib: 512,
        },
        python3: python,
        true_: floor,
        start_to_exit_us: StartToExit {
            python_over_worker_median: median_ratio(&p, &w),
            shim_over_worker_median: shim.as_ref().map(|s| median_ratio(s, &w)),
            worker_over_true_median: median_ratio(&w, &t),
            job_worker: w,
            python3_job_py: p,
            python3_shim_job_py: shim,
            true_: t,
        },
        signal_runs,
        sigterm_to_exit_us: Stats::of(&mut latencies),
        pipeline_seconds: pipeline,
        local_job: local,
        odds_target,
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
    local_job: Option<LocalRun>,
    odds_target: Option<OddsTarget>,
}

#[derive(Debug, Serialize)]
struct Worker {
    path: PathBuf,
    target: &'static str,
    size_bytes: u64,
    size_kib: f64,
    size_aim_kib: u32,
}

#[derive(Debug, Serialize)]
struct StartToExit {
    job_worker: Stats,
    /// job.py run by the interpreter itself (`sys.executable`).
    python3_job_py: Stats,
    /// job.py run through PATH's `python3` when that is a wrapper (a shim).
    #[serde(skip_serializing_if = "Option::is_none")]
    python3_shim_job_py: Option<Stats>,
    #[serde(rename = "true")]
    true_: Stats,
    python_over_worker_median: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    shim_over_worker_median: Option<f64>,
    /// Below 1: the worker starts faster than `/bin/true`.
    worker_over_true_median: f64,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Report { worker, python3, true_, start_to_exit_us: st, sigterm_to_exit_us: s, .. } = self;
        writeln!(
            f,
            "job-worker ({}): {} bytes = {:.1} KiB (aim: at most {} KiB)",
            worker.target, worker.size_bytes, worker.size_kib, worker.size_aim_kib
        )?;
        writeln!(f, "start to exit, median (p90) of {} runs each, interleaved:", self.runs)?;
        let row = |f: &mut fmt::Formatter<'_>, name: &str, st: &Stats, what: &str| {
            let line = format!("  {name:<24} {:>9.0} us ({:>6.0})  {what}", st.median_us(), st.p90_us());
            writeln!(f, "{}", line.trim_end())
        };
        row(f, "job-worker", &st.job_worker, "")?;
        row(f, &true_.path.display().to_string(), &st.true_, &format!("{}, the floor", true_.linkage))?;
        row(f, "python3 job.py", &st.python3_job_py, &python3.to_string())?;
        if let Some(shim) = &st.python3_shim_job_py {
            row(f, "python3 job.py via PATH", shim, &format!("{} (a wrapper)", python3.on_path.display()))?;
        }
        write!(f, "  job-worker is {:.1}x faster than the Python equivalent", st.python_over_worker_median)?;
        if let Some(r) = st.shim_over_worker_median {
            write!(f, " ({r:.1}x through PATH's wrapper)")?;
        }
        writeln!(
            f,
            "\n  job-worker takes {:.2}x the time of {} ({})",
            st.worker_over_true_median,
            true_.path.display(),
            if st.worker_over_true_median < 1.0 { "faster than the floor" } else { "the floor is the limit" }
        )?;
        write!(
            f,
            "SIGTERM to exit in hang mode, median (p90, max) of {}: {:.0} us ({:.0}, {:.0}); the contract allows 100 ms",
            self.signal_runs,
            s.median_us(),
            s.p90_us(),
            s.max.as_secs_f64() * 1e6,
        )?;
        if let Some(pl) = &self.pipeline_seconds {
            let (x, d) = (pl.xtask.median.as_secs_f64(), pl.docker.median.as_secs_f64());
            write!(
                f,
                "\nbuild + push to a local registry, median of {} runs:\n  cargo xtask push --builder docker  {x:.2} s\n  \
                 docker build + docker push         {d:.2} s\n  ratio                              {:.2}x (docker / xtask)\n  \
                 a second, no-op cargo xtask push   {:.2} s (0 bytes uploaded)\n  \
                 ratio                              {:.2}x (docker / no-op xtask; the goal is at least 1)",
                pl.runs,
                pl.docker_over_xtask,
                pl.noop.median.as_secs_f64(),
                pl.docker_over_noop,
            )?;
            write!(
                f,
                "\nno-op cargo xtask push --builder oci, against docker build + push (one platform, the daemon's):"
            )?;
            for (what, noop, ratio) in [
                ("linux/amd64 + linux/arm64", &pl.noop_oci, pl.docker_over_noop_oci),
                ("--platform linux/amd64", &pl.noop_oci_amd64, pl.docker_over_noop_oci_amd64),
            ] {
                write!(
                    f,
                    "\n  {what:<26} {:.2} s  {ratio:.2}x (docker / no-op xtask): {}",
                    noop.median.as_secs_f64(),
                    if ratio >= 1.0 { "meets the goal" } else { "misses the goal of 1" }
                )?;
            }
        }
        if let Some(l) = &self.local_job {
            write!(f, "\n{l}")?;
        }
        if let Some(o) = &self.odds_target {
            write!(f, "\n{o}")?;
        }
        Ok(())
    }
}

/// The local Job against `docker run`s of the same pods; seconds.
#[derive(Debug, Serialize)]
struct LocalRun {
    runs: u32,
    completions: u32,
    parallelism: u32,
    fail_probability: f64,
    time_scale: f64,
    /// Pods each local Job ran (failed ones replaced), in order of the runs.
    pods: Vec<usize>,
    /// Wall time of `cargo xtask run-local`, start to report (the process,
    /// the daemon connection, every pod and back-off, the removal).
    #[serde(serialize_with = "median_seconds")]
    run_local: Stats,
    /// Wall time of as many `docker run`s, one after the other.
    #[serde(serialize_with = "median_seconds")]
    docker_runs: Stats,
    /// Per pod, the daemon's container creation to the process's exit.
    #[serde(serialize_with = "median_seconds")]
    run_local_pod: Stats,
    #[serde(serialize_with = "median_seconds")]
    docker_run_pod: Stats,
}

impl fmt::Display for LocalRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = |st: &Stats| st.median.as_secs_f64();
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
            s(&self.run_local),
            s(&self.docker_runs),
            s(&self.run_local_pod),
            s(&self.docker_run_pod),
        )
    }
}

/// `odds --target` for a Job of a million completions against a plain
/// `odds` of the same Job (one manual try of one limit), both the xtask
/// binary that runs the bench, interleaved; seconds.
#[derive(Debug, Serialize)]
struct OddsTarget {
    runs: u32,
    args: Vec<&'static str>,
    #[serde(serialize_with = "median_seconds")]
    target_search: Stats,
    #[serde(serialize_with = "median_seconds")]
    plain_odds: Stats,
    plain_over_target_median: f64,
}

impl fmt::Display for OddsTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = |st: &Stats| st.median.as_secs_f64();
        write!(
            f,
            "odds {}, median of {} runs:\n  odds --target 99.9%                  {:.3} s\n  \
             odds (one try, simulation included)  {:.3} s\n  ratio                                {:.1}x (plain / target)",
            self.args.join(" "),
            self.runs,
            s(&self.target_search),
            s(&self.plain_odds),
            self.plain_over_target_median
        )
    }
}

/// Times the target search against a plain odds of the same Job.
fn odds_target(runs: u32, out: &Reporter) -> Result<OddsTarget> {
    let xtask = std::env::current_exe().context("finding the xtask binary")?;
    let args = vec!["--completions", "1000000", "--parallelism", "100"];
    out.status(format!("timing odds --target 99.9% against odds, {} {runs} runs each, interleaved", args.join(" ")));
    let (mut search, mut plain) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let mut cmd = xtask_child(&xtask);
        cmd.args(["odds", "--target", "99.9%"]).args(&args);
        search.push(time_run(&mut cmd)?);
        let mut cmd = xtask_child(&xtask);
        cmd.arg("odds").args(&args);
        plain.push(time_run(&mut cmd)?);
    }
    let (target_search, plain_odds) = (Stats::of(&mut search), Stats::of(&mut plain));
    Ok(OddsTarget {
        runs,
        args,
        plain_over_target_median: plain_odds.median.as_secs_f64() / target_search.median.as_secs_f64(),
        target_search,
        plain_odds,
    })
}

/// A child `cargo xtask` of the bench, free of the project's settings file
/// and of JOB_TEST_<FLAG>: what is measured is what its arguments say.
fn xtask_child(xtask: &Path) -> Command {
    let mut cmd = Command::new(xtask);
    crate::config::without_settings(&mut cmd);
    cmd
}

/// Times local Jobs and their `docker run` baselines, interleaved, with an
/// image of the freshly built worker tagged for the bench and removed after.
fn local_run(runs: u32, worker: &Path, out: &Reporter) -> Result<LocalRun> {
    let (completions, parallelism, p, scale) = (5u32, 2u32, 0.2, 0.01);
    let xtask = std::env::current_exe().context("finding the running xtask")?;
    let pid = std::process::id();
    let context = std::env::temp_dir().join(format!("job-test-bench-local-{pid}"));
    std::fs::create_dir_all(&context)?;
    std::fs::copy(crate::project_root().join("Dockerfile"), context.join("Dockerfile"))?;
    std::fs::copy(worker, context.join("job-worker"))?;
    let image = format!("job-test-bench-local:{pid}");
    let name = format!("job-test-bench-{pid}");
    let quiet = |cmd: &mut Command| -> Result<String> {
        let o = cmd.stderr(Stdio::piped()).output().with_context(|| format!("running {cmd:?}"))?;
        if !o.status.success() {
            bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&o.stderr).trim());
        }
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    };
    quiet(Command::new("docker").args(["build", "--quiet", "--tag", &image]).arg(&context))?;
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
                .args(["run-local", "--keep", "--name", &name, "--image", &image])
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
                    .arg(&image)
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
    // Whatever happened: no container, image or folder of the bench is left.
    let _ = xtask_child(&xtask).args(["delete", "--local", "--name", &name]).output();
    if let Ok(o) = Command::new("docker").args(["ps", "-aq", "--filter", &format!("label={name}")]).output() {
        let ids = String::from_utf8_lossy(&o.stdout).into_owned();
        let _ = Command::new("docker").args(["rm", "--force"]).args(ids.split_whitespace()).output();
    }
    let _ = Command::new("docker").args(["rmi", "--force", &image]).output();
    let _ = std::fs::remove_dir_all(&context);
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

/// The Python that `python3` on PATH runs, resolved once.
#[derive(Debug, Serialize)]
struct Interpreter {
    /// What PATH gives for `python3`.
    on_path: PathBuf,
    /// Its `sys.executable`: the interpreter itself, timed directly.
    executable: PathBuf,
    /// `platform.python_version()`.
    version: String,
    /// `on_path` is not the interpreter but something that starts it (a
    /// version manager's shim, a wrapper script); it is timed too.
    wrapper: bool,
}

impl Interpreter {
    fn resolve() -> Result<Interpreter> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let on_path = find_on_path("python3", &path).ok_or_else(|| {
            Error::prerequisite("python3 is needed as the baseline (the tutorial's job.py) but is not on PATH")
        })?;
        let o = Command::new(&on_path).arg("-c").arg(WHICH_PYTHON).stderr(Stdio::piped()).output().map_err(|e| {
            Error::prerequisite(format!(
                "python3 ({}) is needed as the baseline (the tutorial's job.py) but cannot run: {e}",
                on_path.display()
            ))
        })?;
        if !o.status.success() {
            return Err(Error::prerequisite(format!(
                "python3 ({}) is needed as the baseline (the tutorial's job.py) but failed ({}): {}",
                on_path.display(),
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            ))
            .into());
        }
        let (executable, version) = parse_interpreter(&String::from_utf8_lossy(&o.stdout))
            .with_context(|| format!("asking {} which interpreter it runs", on_path.display()))?;
        let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        let wrapper = !same(&on_path, &executable);
        Ok(Interpreter { on_path, executable, version, wrapper })
    }
}

impl fmt::Display for Interpreter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (Python {})", self.executable.display(), self.version)
    }
}

/// Reads what `WHICH_PYTHON` prints: the interpreter's absolute path, then
/// its version.
fn parse_interpreter(stdout: &str) -> Result<(PathBuf, String)> {
    let mut lines = stdout.lines().map(str::trim);
    let executable = lines.next().unwrap_or_default();
    let version = lines.next().unwrap_or_default();
    // sys.executable is empty (or None) when Python cannot tell, e.g. when embedded.
    if executable.is_empty() || executable == "None" || !executable.starts_with('/') {
        bail!(
            "python3 did not name its interpreter (sys.executable is {executable:?}), so it cannot be timed directly"
        );
    }
    if version.is_empty() {
        bail!("python3 did not print its version");
    }
    Ok((PathBuf::from(executable), version.to_owned()))
}

/// The first executable file called `name` in the directories of `path`
/// (a PATH value), as a shell would find it. Empty entries are skipped.
fn find_on_path(name: &str, path: &OsStr) -> Option<PathBuf> {
    std::env::split_paths(path).filter(|dir| !dir.as_os_str().is_empty()).map(|dir| dir.join(name)).find(|candidate| {
        std::fs::metadata(candidate).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// The floor baseline: `/bin/true` and how it is linked.
#[derive(Debug, Serialize)]
struct Floor {
    path: PathBuf,
    linkage: &'static str,
}

impl Floor {
    fn of(path: &Path) -> Result<Floor> {
        let bytes = std::fs::read(path)
            .map_err(|e| Error::prerequisite(format!("{} is needed as the floor baseline: {e}", path.display())))?;
        // The build's static check: anything it refuses has a loader or needs libraries.
        let linkage = build::linkage(&bytes).map_or("dynamically linked", build::Linkage::as_str);
        Ok(Floor { path: path.to_owned(), linkage })
    }
}

#[derive(Debug, Serialize)]
struct Pipeline {
    runs: u32,
    #[serde(rename = "xtask_push_docker", serialize_with = "median_seconds")]
    xtask: Stats,
    #[serde(rename = "docker_build_push", serialize_with = "median_seconds")]
    docker: Stats,
    #[serde(rename = "xtask_noop_push", serialize_with = "median_seconds")]
    noop: Stats,
    docker_over_xtask: f64,
    /// The goal: at least 1, a no-op push no slower than docker's build + push.
    docker_over_noop: f64,
    /// A no-op push by the daemonless builder, both platforms (an index).
    #[serde(rename = "xtask_noop_push_oci", serialize_with = "median_seconds")]
    noop_oci: Stats,
    /// The same for linux/amd64 alone: as many platforms as docker builds.
    #[serde(rename = "xtask_noop_push_oci_amd64", serialize_with = "median_seconds")]
    noop_oci_amd64: Stats,
    docker_over_noop_oci: f64,
    docker_over_noop_oci_amd64: f64,
}

fn median_seconds<S: Serializer>(st: &Stats, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(st.median.as_secs_f64())
}

/// Times both pipelines, interleaved, each run to a fresh repository.
fn pipeline(runs: u32, worker: &Path, out: &Reporter) -> Result<Pipeline> {
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
    let (mut oci_two, mut oci_amd64) = (Vec::new(), Vec::new());
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
    let (xtask, docker) = (Stats::of(&mut xs), Stats::of(&mut ds));
    let docker_over_xtask = docker.median.as_secs_f64() / xtask.median.as_secs_f64();
    let noop = Stats::of(&mut ns);
    let docker_over_noop = docker.median.as_secs_f64() / noop.median.as_secs_f64();
    let (noop_oci, noop_oci_amd64) = (Stats::of(&mut oci_two), Stats::of(&mut oci_amd64));
    let over = |noop: &Stats| docker.median.as_secs_f64() / noop.median.as_secs_f64();
    Ok(Pipeline {
        runs,
        docker_over_noop_oci: over(&noop_oci),
        docker_over_noop_oci_amd64: over(&noop_oci_amd64),
        xtask,
        docker,
        noop,
        noop_oci,
        noop_oci_amd64,
        docker_over_xtask,
        docker_over_noop,
    })
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

/// Durations of one program's runs; in JSON as microseconds to 0.1.
#[derive(Debug, Serialize)]
struct Stats {
    #[serde(serialize_with = "micros")]
    median: Duration,
    #[serde(serialize_with = "micros")]
    p90: Duration,
    #[serde(serialize_with = "micros")]
    min: Duration,
    #[serde(serialize_with = "micros")]
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
}

fn micros<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1e7).round() / 10.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interpreter_is_read_from_its_own_answer() {
        let (exe, version) = parse_interpreter("/root/.pyenv/versions/3.11.7/bin/python3\n3.11.7\n").unwrap();
        assert_eq!(exe, Path::new("/root/.pyenv/versions/3.11.7/bin/python3"));
        assert_eq!(version, "3.11.7");
        // Embedded interpreters cannot name themselves: refused, not timed as "".
        for unknown in ["\n3.11.7\n", "None\n3.11.7\n", "python3\n3.11.7\n"] {
            let err = parse_interpreter(unknown).unwrap_err().to_string();
            assert!(err.contains("sys.executable"), "{unknown:?}: {err}");
        }
        assert!(parse_interpreter("/usr/bin/python3\n").unwrap_err().to_string().contains("version"));
    }

    #[test]
    fn path_lookup_takes_the_first_executable_file() {
        let root = std::env::temp_dir().join(format!("job-test-bench-path-{}", std::process::id()));
        let (plain, exec, dir) = (root.join("plain"), root.join("exec"), root.join("dir"));
        for d in [&plain, &exec, &dir.join("python3")] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(plain.join("python3"), "not executable").unwrap();
        std::fs::write(exec.join("python3"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(exec.join("python3"), std::fs::Permissions::from_mode(0o755)).unwrap();
        // A directory named python3 and a file without the x bit are passed over, as a shell does.
        let path = std::env::join_paths([&dir, &plain, &PathBuf::new(), &exec]).unwrap();
        assert_eq!(find_on_path("python3", &path), Some(exec.join("python3")));
        let without = std::env::join_paths([&dir, &plain]).unwrap();
        assert_eq!(find_on_path("python3", &without), None);
        std::fs::remove_dir_all(&root).unwrap();
    }

    fn stats(median_us: u64) -> Stats {
        let d = Duration::from_micros(median_us);
        Stats { median: d, p90: d * 2, min: d / 2, max: d * 3 }
    }

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
        assert!(text.contains("odds --target 99.9%                  0.030 s"), "{text}");
        // And the new ones.
        assert_eq!(json["python3"]["executable"], "/root/.pyenv/versions/3.11.7/bin/python3");
        assert_eq!(json["start_to_exit_us"]["true"]["median"], 625.0);
        assert_eq!(json["start_to_exit_us"]["worker_over_true_median"], 0.8);

        // The no-op pushes, each against the goal.
        report.pipeline_seconds = Some(pipeline_stats());
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
    }

    fn pipeline_stats() -> Pipeline {
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

    #[test]
    fn pipeline_times_are_medians_in_seconds() {
        let pl = pipeline_stats();
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
