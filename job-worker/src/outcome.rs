//! One run from start to exit: count the attempt, do the simulated work,
//! decide, and carry the decision out the way a real program would fail.
//!
//! Every path that ends the run in failure first writes a one-line reason to
//! the termination log, which Kubernetes copies into the container's
//! `terminated.message` in the pod status.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::config::{Config, FailureMode, Setting, Source};
use crate::decision::{self, Reason, Rules, Verdict};
use crate::log::{Fields, Logger, Value};
use crate::signals::{Signal, Signals};

/// Where the attempt number came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptSource {
    /// JOB_INDEX_FAILURE_COUNT, set by Kubernetes through the downward API.
    IndexFailureCount,
    /// The counter file in STATE_DIR.
    StateDir,
    /// Nothing counts attempts: every run is attempt 0.
    None,
}

impl AttemptSource {
    fn as_str(self) -> &'static str {
        match self {
            AttemptSource::IndexFailureCount => "JOB_INDEX_FAILURE_COUNT",
            AttemptSource::StateDir => "STATE_DIR",
            AttemptSource::None => "none",
        }
    }
}

/// Name of the counter file inside STATE_DIR.
pub const ATTEMPTS_FILE: &str = "attempts";

/// The attempt number of this run, counting it in STATE_DIR when that is
/// where attempts are counted. The count is written before any work, so a run
/// that dies (OOM, SIGKILL) still counts.
pub fn attempt(config: &Config) -> Result<(u32, AttemptSource), String> {
    if let Some(count) = config.pod.index_failure_count {
        return Ok((count, AttemptSource::IndexFailureCount));
    }
    let Some(dir) = &config.state_dir.value else {
        return Ok((0, AttemptSource::None));
    };
    let path = dir.join(ATTEMPTS_FILE);
    let previous = match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().parse::<u32>().map_err(|_| {
            format!(
                "{} holds {:?}, not an attempt count: remove the file to start counting from 0",
                path.display(),
                text.trim()
            )
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    // Write-then-rename so that a kill mid-write never leaves a torn count.
    let tmp = dir.join(".attempts.tmp");
    std::fs::write(&tmp, format!("{}\n", previous.saturating_add(1)))
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok((previous, AttemptSource::StateDir))
}

/// Runs the worker to its end and returns the exit code (for the paths that
/// end by exiting; panic, abort and oom end the process their own way).
pub fn run(config: &Config, signals: &Signals) -> i32 {
    let started = Instant::now();
    let log = Logger { format: config.log_format.value };
    let pod_name = config.pod.name.clone().unwrap_or_else(kernel_hostname);
    let index = config.pod.completion_index;

    let (attempt, attempt_source) = match attempt(config) {
        Ok(a) => a,
        Err(why) => {
            let message = format!(
                "job-worker: invalid value {:?} for {}: {why}",
                config.state_dir.value.as_deref().unwrap_or(Path::new("")).display(),
                config.state_dir.source
            );
            eprintln!("{message}");
            write_termination_log(&config.termination_log, &message);
            return i32::from(crate::EXIT_CONFIG);
        }
    };
    log.event("start", start_fields(config, &pod_name, attempt, attempt_source));

    let failure_message = |what: String| {
        format!(
            "job-worker: {what} (pod {pod_name}, index {}, attempt {attempt})",
            index.map_or("none".to_string(), |i| i.to_string())
        )
    };
    let terminate = |signal: Signal, during: &str| -> i32 {
        let elapsed = started.elapsed();
        let written = write_termination_log(
            &config.termination_log,
            &failure_message(format!("terminated by {} after {} {during}", signal.name(), fmt_duration(elapsed))),
        );
        log.event(
            "signal",
            vec![
                ("signal", signal.name().into()),
                ("during", during.into()),
                ("elapsed_ms", millis(elapsed)),
                ("exit_code", signal.exit_code().into()),
                ("termination_log", written.into()),
            ],
        );
        signal.exit_code()
    };

    if let Some(signal) = work(config.work_duration.value, signals, &log, started) {
        return terminate(signal, "while working");
    }

    let rules = Rules {
        fail_probability: config.fail_probability.value,
        fail_indexes: config.fail_indexes.value.as_ref(),
        fail_attempts: config.fail_attempts.value,
        failure_mode: config.failure_mode.value,
        fail_exit_code: config.fail_exit_code.value,
    };
    let mut draw_error = None;
    let verdict = decision::decide(&rules, index, attempt, || match config.seed.value {
        Some(seed) => decision::seeded_draw(seed, &pod_name, index, attempt),
        None => decision::os_draw().unwrap_or_else(|e| {
            // Without OS randomness the run cannot be honest about its
            // probability; fail loudly instead of drawing something fixed.
            draw_error = Some(e.to_string());
            0.0
        }),
    });
    if let Some(e) = draw_error {
        let message = format!("job-worker: cannot read the operating system's randomness: {e}");
        eprintln!("{message}");
        write_termination_log(&config.termination_log, &message);
        return i32::from(crate::EXIT_CONFIG);
    }

    let elapsed = started.elapsed();
    let (mode, exit_code, reason) = match verdict {
        Verdict::Succeed { draw, threshold } => {
            log.event(
                "outcome",
                vec![
                    ("result", "success".into()),
                    ("decided_by", "draw".into()),
                    ("draw", draw.into()),
                    ("threshold", threshold.into()),
                    ("elapsed_ms", millis(elapsed)),
                    ("exit_code", 0u32.into()),
                ],
            );
            return 0;
        }
        Verdict::Fail { mode, exit_code, reason } => (mode, exit_code, reason),
    };

    let (decided_by, draw, why) = match reason {
        Reason::FailIndex { index } => {
            ("fail-indexes", None, format!("completion index {index} is listed in FAIL_INDEXES"))
        }
        Reason::FailAttempts { attempt, fail_attempts } => {
            ("fail-attempts", None, format!("attempt {attempt} is below FAIL_ATTEMPTS={fail_attempts}"))
        }
        Reason::Draw { draw, threshold } => ("draw", Some(draw), format!("draw {draw} < fail probability {threshold}")),
    };
    let consequence = match mode {
        FailureMode::Exit => format!("exit code {exit_code}"),
        FailureMode::Panic => "panic".into(),
        FailureMode::Abort => "abort (SIGABRT)".into(),
        FailureMode::Hang => "hang until killed (activeDeadlineSeconds or SIGTERM)".into(),
        FailureMode::Oom => "allocate memory until the kernel kills the container".into(),
    };
    let message = failure_message(format!("simulated failure: {why}; {consequence}"));
    let written = write_termination_log(&config.termination_log, &message);
    log.event(
        "outcome",
        vec![
            ("result", "failure".into()),
            ("decided_by", decided_by.into()),
            ("draw", draw.into()),
            ("threshold", rules.fail_probability.into()),
            ("failure_mode", mode.as_str().into()),
            ("exit_code", (mode == FailureMode::Exit).then_some(exit_code).into()),
            ("elapsed_ms", millis(elapsed)),
            ("message", message.clone().into()),
            ("termination_log", written.into()),
        ],
    );

    match mode {
        FailureMode::Exit => i32::from(exit_code),
        FailureMode::Panic => panic!("{message}"),
        FailureMode::Abort => std::process::abort(),
        FailureMode::Hang => loop {
            if let Some(signal) = signals.wait(None) {
                return terminate(signal, "while hanging");
            }
        },
        FailureMode::Oom => {
            let signal = allocate_until_killed(signals, &log);
            terminate(signal, "while allocating memory")
        }
    }
}

/// Simulated work: sleeps, but wakes at once for SIGTERM or SIGINT. Long work
/// logs at most ten progress ticks, at least a second apart.
fn work(duration: Duration, signals: &Signals, log: &Logger, started: Instant) -> Option<Signal> {
    if duration.is_zero() {
        return signals.poll();
    }
    let tick = (duration / 10).max(Duration::from_secs(1));
    let end = started + duration;
    let mut next_tick = started + tick;
    loop {
        let now = Instant::now();
        if now >= end {
            return signals.poll();
        }
        let wake = end.min(next_tick);
        if let Some(signal) = signals.wait(Some(wake - now)) {
            return Some(signal);
        }
        let now = Instant::now();
        if now >= next_tick && now < end {
            let done = now - started;
            log.event(
                "work",
                vec![
                    ("elapsed_ms", millis(done)),
                    ("remaining_ms", millis(end - now)),
                    ("percent", ((done.as_secs_f64() / duration.as_secs_f64() * 100.0).floor() as u32).into()),
                ],
            );
            next_tick += tick;
        }
    }
}

/// Allocates and touches memory in chunks until the kernel's OOM killer ends
/// the process (SIGKILL, OOMKilled in the pod status). Returns only for a
/// signal. Under no memory limit this takes the whole machine: that is the
/// point, and why it only runs when asked for.
fn allocate_until_killed(signals: &Signals, log: &Logger) -> Signal {
    const CHUNK: usize = 16 << 20;
    const REPORT_EVERY: usize = 16;
    let mut held: Vec<Vec<u8>> = Vec::new();
    loop {
        if let Some(signal) = signals.poll() {
            return signal;
        }
        // Non-zero bytes: every page is written, so it counts as resident
        // memory and not as a shared zero page.
        held.push(std::hint::black_box(vec![0xa5u8; CHUNK]));
        if held.len() % REPORT_EVERY == 0 {
            log.event("oom", vec![("allocated_mib", (((held.len() * CHUNK) >> 20) as u64).into())]);
        }
    }
}

/// Writes the failure reason where Kubernetes looks for it. Returns what
/// happened, for the log line; never fails the run. The default path is
/// only written when it already exists (the kubelet mounts it), so running
/// the worker by hand does not create files in /dev.
pub fn write_termination_log(setting: &Setting<PathBuf>, message: &str) -> String {
    let path = &setting.value;
    let create = setting.source != Source::Default;
    let result = OpenOptions::new()
        .write(true)
        .truncate(true)
        .create(create)
        .open(path)
        .and_then(|mut f| f.write_all(format!("{message}\n").as_bytes()));
    match result {
        Ok(()) => format!("written to {}", path.display()),
        Err(e) => format!("not written to {}: {e}", path.display()),
    }
}

fn start_fields(config: &Config, pod_name: &str, attempt: u32, attempt_source: AttemptSource) -> Fields {
    let mut warnings = Vec::new();
    if config.fail_indexes.value.is_some() && config.pod.completion_index.is_none() {
        warnings
            .push("FAIL_INDEXES is set but JOB_COMPLETION_INDEX is not (not an Indexed Job): no index fails by rule");
    }
    if config.fail_attempts.value > 0 && attempt_source == AttemptSource::None {
        warnings.push("FAIL_ATTEMPTS is set but nothing counts attempts: every run is attempt 0 (set STATE_DIR to an emptyDir with restartPolicy OnFailure, or JOB_INDEX_FAILURE_COUNT with backoffLimitPerIndex)");
    }
    let sources: Vec<(&'static str, Value)> = [
        ("fail_probability", config.fail_probability.source),
        ("failure_mode", config.failure_mode.source),
        ("fail_exit_code", config.fail_exit_code.source),
        ("work_duration", config.work_duration.source),
        ("seed", config.seed.source),
        ("log_format", config.log_format.source),
        ("termination_log", config.termination_log.source),
        ("fail_indexes", config.fail_indexes.source),
        ("fail_attempts", config.fail_attempts.source),
        ("state_dir", config.state_dir.source),
    ]
    .into_iter()
    .filter(|(_, s)| *s != Source::Default)
    .map(|(k, s)| (k, s.to_string().into()))
    .collect();
    let mut fields: Fields = vec![
        ("version", env!("CARGO_PKG_VERSION").into()),
        ("pid", std::process::id().into()),
        ("pod", pod_name.into()),
        ("index", config.pod.completion_index.into()),
        ("attempt", attempt.into()),
        ("attempt_source", attempt_source.as_str().into()),
        ("fail_probability", config.fail_probability.value.into()),
        ("failure_mode", config.failure_mode.value.as_str().into()),
        ("fail_exit_code", config.fail_exit_code.value.into()),
        ("work_duration", fmt_duration(config.work_duration.value).into()),
        ("seed", config.seed.value.into()),
        ("fail_indexes", config.fail_indexes.value.as_ref().map(|f| f.to_string()).into()),
        ("fail_attempts", config.fail_attempts.value.into()),
        ("state_dir", config.state_dir.value.as_ref().map(|p| p.display().to_string()).into()),
        ("termination_log", config.termination_log.value.display().to_string().into()),
        ("sources", Value::Object(sources)),
    ];
    if !warnings.is_empty() {
        fields.push(("warning", warnings.join("; ").into()));
    }
    fields
}

fn millis(d: Duration) -> Value {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).into()
}

fn fmt_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".into();
    }
    // Millisecond precision is what a reader of the log can use.
    humantime::format_duration(Duration::from_millis(d.as_millis() as u64)).to_string().replace(' ', "")
}

fn kernel_hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates
    // within it on success (and we stop at the first NUL either way).
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..len]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Command, parse};

    fn config(env: &[(&str, &str)]) -> Config {
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        match parse(Vec::<String>::new(), |n| env.iter().find(|(k, _)| k == n).map(|(_, v)| v.into())) {
            Ok(Command::Run(c)) => *c,
            other => panic!("{other:?}"),
        }
    }

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("job-worker-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn without_a_counter_every_run_is_attempt_zero() {
        let c = config(&[("FAIL_ATTEMPTS", "2")]);
        assert_eq!(attempt(&c), Ok((0, AttemptSource::None)));
        assert_eq!(attempt(&c), Ok((0, AttemptSource::None)));
    }

    #[test]
    fn state_dir_counts_attempts_across_runs() {
        let dir = temp_dir("count");
        let c = config(&[("STATE_DIR", dir.to_str().unwrap())]);
        let seen: Vec<_> = (0..4).map(|_| attempt(&c).unwrap()).collect();
        assert_eq!(seen, [0, 1, 2, 3].map(|n| (n, AttemptSource::StateDir)));
        assert_eq!(std::fs::read_to_string(dir.join(ATTEMPTS_FILE)).unwrap(), "4\n");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_index_failure_count_wins_over_the_state_dir() {
        let dir = temp_dir("index");
        let c = config(&[("STATE_DIR", dir.to_str().unwrap()), ("JOB_INDEX_FAILURE_COUNT", "3")]);
        assert_eq!(attempt(&c), Ok((3, AttemptSource::IndexFailureCount)));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_corrupt_counter_is_an_error_that_says_how_to_recover() {
        let dir = temp_dir("corrupt");
        std::fs::write(dir.join(ATTEMPTS_FILE), "many").unwrap();
        let c = config(&[("STATE_DIR", dir.to_str().unwrap())]);
        let e = attempt(&c).unwrap_err();
        assert!(e.contains("\"many\"") && e.contains("remove the file"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
