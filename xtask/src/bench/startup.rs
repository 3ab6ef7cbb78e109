//! Start-to-exit time of a worker run with no work, interleaved (the order
//! rotating from one round to the next) with:
//!
//! - the tutorial's job.py (`python3 -c` with random and sys.exit), run by
//!   the interpreter itself: `python3` on PATH is resolved once to its
//!   `sys.executable`, because PATH often holds a version manager's shim
//!   (pyenv's is a bash script) that costs as much as Python's own start;
//!   when PATH's `python3` is such a wrapper it is timed too, separately;
//! - `/bin/true`: the least a program can do, the floor of starting a
//!   process on this machine (usually glibc, dynamically linked).

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Serialize;

use super::stats::{Stats, time_run};
use crate::report::Reporter;
use crate::{Error, build};

/// The tutorial's job.py, as one `python3 -c` program.
const JOB_PY: &str =
    "import random, sys\nif random.random() < 0.2:\n    print('Job failed')\n    sys.exit(1)\nprint('Job succeeded')\n";

/// Asks an interpreter where it is and which version it is, one per line.
const WHICH_PYTHON: &str = "import sys, platform\nprint(sys.executable)\nprint(platform.python_version())\n";

/// The floor: a process that starts and exits.
pub(super) const TRUE: &str = "/bin/true";

/// What the measurement found: the baselines and the times.
pub(super) struct Startup {
    pub(super) python3: Interpreter,
    pub(super) floor: Floor,
    pub(super) times: StartToExit,
}

#[derive(Debug, Serialize)]
pub(super) struct StartToExit {
    pub(super) job_worker: Stats,
    /// job.py run by the interpreter itself (`sys.executable`).
    pub(super) python3_job_py: Stats,
    /// job.py run through PATH's `python3` when that is a wrapper (a shim).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) python3_shim_job_py: Option<Stats>,
    #[serde(rename = "true")]
    pub(super) true_: Stats,
    pub(super) python_over_worker_median: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) shim_over_worker_median: Option<f64>,
    /// Below 1: the worker starts faster than `/bin/true`.
    pub(super) worker_over_true_median: f64,
}

/// Times `runs` rounds of the worker and its baselines.
pub(super) fn measure(runs: u32, worker: &Path, out: &Reporter) -> Result<Startup> {
    let python = Interpreter::resolve()?;
    let floor = Floor::of(Path::new(TRUE))?;
    out.status(format!("python3 on PATH is {}; timing the interpreter itself: {}", python.on_path.display(), python));

    // One entry per program, timed in turn within each round.
    let mut programs: Vec<(Command, Vec<Duration>)> = Vec::new();
    let mut worker_cmd = Command::new(worker);
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
        "timing {runs} runs each of job-worker, python3 job.py{}, and {TRUE}, interleaved",
        if python.wrapper { " (the interpreter, and through PATH's wrapper)" } else { "" }
    ));
    for round in 0..runs as usize {
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
    let times = StartToExit {
        python_over_worker_median: p.median_over(&w),
        shim_over_worker_median: shim.as_ref().map(|s| s.median_over(&w)),
        worker_over_true_median: w.median_over(&t),
        job_worker: w,
        python3_job_py: p,
        python3_shim_job_py: shim,
        true_: t,
    };
    Ok(Startup { python3: python, floor, times })
}

/// The report's start-to-exit lines, each baseline named.
pub(super) fn write(
    f: &mut fmt::Formatter<'_>,
    runs: u32,
    python3: &Interpreter,
    floor: &Floor,
    st: &StartToExit,
) -> fmt::Result {
    writeln!(f, "start to exit, median (p90) of {runs} runs each, interleaved:")?;
    let row = |f: &mut fmt::Formatter<'_>, name: &str, st: &Stats, what: &str| {
        let line = format!("  {name:<24} {:>9.0} us ({:>6.0})  {what}", st.median_us(), st.p90_us());
        writeln!(f, "{}", line.trim_end())
    };
    row(f, "job-worker", &st.job_worker, "")?;
    row(f, &floor.path.display().to_string(), &st.true_, &format!("{}, the floor", floor.linkage))?;
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
        floor.path.display(),
        if st.worker_over_true_median < 1.0 { "faster than the floor" } else { "the floor is the limit" }
    )
}

/// The Python that `python3` on PATH runs, resolved once.
#[derive(Debug, Serialize)]
pub(super) struct Interpreter {
    /// What PATH gives for `python3`.
    pub(super) on_path: PathBuf,
    /// Its `sys.executable`: the interpreter itself, timed directly.
    pub(super) executable: PathBuf,
    /// `platform.python_version()`.
    pub(super) version: String,
    /// `on_path` is not the interpreter but something that starts it (a
    /// version manager's shim, a wrapper script); it is timed too.
    pub(super) wrapper: bool,
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
pub(super) struct Floor {
    pub(super) path: PathBuf,
    pub(super) linkage: &'static str,
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
}
