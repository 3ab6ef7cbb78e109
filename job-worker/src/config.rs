//! The worker's configuration: every setting, where its value came from, and
//! the one place that turns flags and environment variables into it.
//!
//! The contract (names, defaults, exit codes) is in docs/worker.md; flags win
//! over the environment, and an empty environment variable counts as unset so
//! that a manifest template can leave a value blank.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Where the Kubernetes kubelet writes nothing and we write the failure reason.
pub const DEFAULT_TERMINATION_LOG: &str = "/dev/termination-log";

/// One setting of the worker: its flag, its environment variable, its default
/// and what it accepts. `--help` and every error message are made from this
/// table, so the names cannot drift apart.
pub struct Spec {
    pub flag: &'static str,
    pub env: &'static str,
    pub default: &'static str,
    pub accepted: &'static str,
    pub help: &'static str,
}

pub const FAIL_PROBABILITY: Spec = Spec {
    flag: "--fail-probability",
    env: "FAIL_PROBABILITY",
    default: "0.2",
    accepted: "a number from 0 to 1, such as 0.2",
    help: "chance that this run fails",
};
pub const FAILURE_MODE: Spec = Spec {
    flag: "--failure-mode",
    env: "FAILURE_MODE",
    default: "exit",
    accepted: FAILURE_MODE_ACCEPTED,
    help: "how a failing run fails",
};
pub const FAIL_EXIT_CODE: Spec = Spec {
    flag: "--fail-exit-code",
    env: "FAIL_EXIT_CODE",
    default: "1",
    accepted: "a whole number from 1 to 255 other than 2 (2 means a configuration error)",
    help: "exit code of a simulated failure",
};
pub const WORK_DURATION: Spec = Spec {
    flag: "--work-duration",
    env: "WORK_DURATION",
    default: "0s",
    accepted: "a duration such as 0s, 500ms, 2s or 1m30s",
    help: "simulated work before the decision",
};
pub const SEED: Spec = Spec {
    flag: "--seed",
    env: "WORKER_SEED",
    default: "none",
    accepted: "a whole number from 0 to 18446744073709551615",
    help: "makes the decision a pure function of (seed, pod name, completion index, attempt)",
};
pub const LOG_FORMAT: Spec = Spec {
    flag: "--log-format",
    env: "LOG_FORMAT",
    default: "plain",
    accepted: "plain or json",
    help: "one line per event on stdout, as text or as JSON objects",
};
pub const TERMINATION_LOG: Spec = Spec {
    flag: "--termination-log",
    env: "TERMINATION_LOG",
    default: DEFAULT_TERMINATION_LOG,
    accepted: "a file path",
    help: "where the failure reason is written, if writable",
};
pub const FAIL_INDEXES: Spec = Spec {
    flag: "--fail-indexes",
    env: "FAIL_INDEXES",
    default: "none",
    accepted: "odd, even, or a list of indexes and ranges such as 0,3-5,7:42 (:N = that index exits N)",
    help: "completion indexes that always fail",
};
pub const FAIL_ATTEMPTS: Spec = Spec {
    flag: "--fail-attempts",
    env: "FAIL_ATTEMPTS",
    default: "0",
    accepted: "a whole number from 0 to 4294967295",
    help: "the first N attempts fail, later ones succeed",
};
pub const STATE_DIR: Spec = Spec {
    flag: "--state-dir",
    env: "STATE_DIR",
    default: "none",
    accepted: "a writable directory (an emptyDir volume), which counts attempts across container restarts",
    help: "where attempts are counted across container restarts",
};

/// Every setting, in the order `--help` and the start line show them.
pub const SPECS: [&Spec; 10] = [
    &FAIL_PROBABILITY,
    &FAILURE_MODE,
    &FAIL_EXIT_CODE,
    &WORK_DURATION,
    &SEED,
    &LOG_FORMAT,
    &TERMINATION_LOG,
    &FAIL_INDEXES,
    &FAIL_ATTEMPTS,
    &STATE_DIR,
];

/// Set by Kubernetes, never by the user: the pod name.
pub const ENV_HOSTNAME: &str = "HOSTNAME";
/// Set by Kubernetes for Indexed Jobs.
pub const ENV_COMPLETION_INDEX: &str = "JOB_COMPLETION_INDEX";
/// Set from the pod annotation `batch.kubernetes.io/job-index-failure-count`
/// through the downward API (Indexed Jobs with backoffLimitPerIndex).
pub const ENV_INDEX_FAILURE_COUNT: &str = "JOB_INDEX_FAILURE_COUNT";

/// Where a setting's value came from, shown in the start line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Default,
    Env(&'static str),
    Flag(&'static str),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::Env(name) | Source::Flag(name) => f.write_str(name),
        }
    }
}

/// A value together with where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Setting<T> {
    pub value: T,
    pub source: Source,
}

impl<T> Setting<T> {
    fn default(value: T) -> Self {
        Setting { value, source: Source::Default }
    }
}

/// Declares [`FailureMode`] from one list of variants and names, so that the
/// parser, `as_str`, `--help` and every error message read the same names.
macro_rules! failure_modes {
    ($($(#[$doc:meta])* $variant:ident = $name:literal),+ $(,)?) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum FailureMode {
            $($(#[$doc])* $variant,)+
        }

        impl FailureMode {
            /// Every mode, in the order `--help` lists them.
            pub const ALL: &'static [FailureMode] = &[$(FailureMode::$variant),+];

            /// The name users write (FAILURE_MODE, --failure-mode).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(FailureMode::$variant => $name,)+
                }
            }
        }

        /// What FAILURE_MODE accepts, for `--help` and error messages.
        const FAILURE_MODE_ACCEPTED: &str = failure_modes!(@accepted $($name),+);
    };
    (@accepted $first:literal $(, $rest:literal)*) => {
        concat!("one of ", $first $(, ", ", $rest)*)
    };
}

failure_modes! {
    /// Exit with FAIL_EXIT_CODE.
    Exit = "exit",
    /// A Rust panic: message on stderr, exit code 101.
    Panic = "panic",
    /// Killed by SIGABRT, as by a failed assertion in C.
    Abort = "abort",
    /// Never finish on its own; exercises activeDeadlineSeconds.
    Hang = "hang",
    /// Allocate and touch memory until the kernel kills the process.
    Oom = "oom",
}

impl FailureMode {
    /// The mode named `name` (any case).
    pub fn parse(name: &str) -> Option<FailureMode> {
        FailureMode::ALL.iter().copied().find(|m| m.as_str().eq_ignore_ascii_case(name))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Plain,
    Json,
}

/// Completion indexes that always fail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FailIndexes {
    Odd,
    Even,
    /// Inclusive ranges, each with the exit code of that index when given.
    List(Vec<IndexRule>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexRule {
    pub first: u32,
    pub last: u32,
    pub exit_code: Option<u8>,
}

impl FailIndexes {
    /// Whether `index` fails, and with which exit code if the rule names one.
    pub fn matches(&self, index: u32) -> Option<Option<u8>> {
        match self {
            FailIndexes::Odd => (index % 2 == 1).then_some(None),
            FailIndexes::Even => (index % 2 == 0).then_some(None),
            FailIndexes::List(rules) => rules.iter().find(|r| (r.first..=r.last).contains(&index)).map(|r| r.exit_code),
        }
    }
}

impl fmt::Display for FailIndexes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailIndexes::Odd => f.write_str("odd"),
            FailIndexes::Even => f.write_str("even"),
            FailIndexes::List(rules) => {
                for (i, r) in rules.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{}", r.first)?;
                    if r.last != r.first {
                        write!(f, "-{}", r.last)?;
                    }
                    if let Some(code) = r.exit_code {
                        write!(f, ":{code}")?;
                    }
                }
                Ok(())
            }
        }
    }
}

/// The worker's effective configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub fail_probability: Setting<f64>,
    pub failure_mode: Setting<FailureMode>,
    pub fail_exit_code: Setting<u8>,
    pub work_duration: Setting<Duration>,
    pub seed: Setting<Option<u64>>,
    pub log_format: Setting<LogFormat>,
    pub termination_log: Setting<PathBuf>,
    pub fail_indexes: Setting<Option<FailIndexes>>,
    pub fail_attempts: Setting<u32>,
    pub state_dir: Setting<Option<PathBuf>>,
    /// What Kubernetes tells the pod about itself.
    pub pod: PodIdentity,
}

/// What Kubernetes tells the pod about itself through its environment.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PodIdentity {
    /// HOSTNAME: the pod name (None when unset; the caller may ask the kernel).
    pub name: Option<String>,
    /// JOB_COMPLETION_INDEX, for Indexed Jobs.
    pub completion_index: Option<u32>,
    /// JOB_INDEX_FAILURE_COUNT, for Indexed Jobs with backoffLimitPerIndex.
    pub index_failure_count: Option<u32>,
}

/// What the command line asked for.
#[derive(Debug, PartialEq)]
pub enum Command {
    Run(Box<Config>),
    Help,
    Version,
}

/// A configuration the worker refuses. Its message names the variable or
/// flag, the value and what is accepted; the worker exits 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The flag or environment variable, as the user wrote it.
    pub name: String,
    pub value: String,
    /// What would have been accepted, or why the value cannot be used.
    pub accepted: String,
    pub kind: ErrorKind,
}

/// What is wrong, which decides how the message reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A known setting with a value it does not accept.
    InvalidValue,
    /// A flag the worker does not have.
    UnknownFlag,
    /// A flag at the end of the command line, without its value.
    MissingValue,
}

impl ConfigError {
    fn invalid(name: impl Into<String>, value: impl Into<String>, accepted: impl Into<String>) -> ConfigError {
        ConfigError { name: name.into(), value: value.into(), accepted: accepted.into(), kind: ErrorKind::InvalidValue }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ErrorKind::InvalidValue => {
                write!(f, "invalid value {:?} for {}: expected {}", self.value, self.name, self.accepted)
            }
            ErrorKind::UnknownFlag => write!(f, "unknown flag {}: expected {}", self.name, self.accepted),
            ErrorKind::MissingValue => write!(f, "missing value for {}: expected {}", self.name, self.accepted),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Every setting the worker refuses, found in one pass so that a user fixes
/// them all at once, and where the reason is to be written (the termination
/// log as far as it could be read).
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigErrors {
    pub errors: Vec<ConfigError>,
    pub termination_log: Setting<PathBuf>,
}

impl ConfigErrors {
    /// All the errors on one line, for the termination message.
    pub fn one_line(&self) -> String {
        let all: Vec<String> = self.errors.iter().map(ToString::to_string).collect();
        format!("invalid configuration: {}", all.join("; "))
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// What every flag takes.
const FLAG_USAGE: &str = "a flag listed by --help, each with a value (--flag VALUE or --flag=VALUE)";

/// Reads the configuration from the command line (without the program name)
/// and the environment, flags first. Every refused setting is reported.
pub fn parse<I, E>(args: I, env: E) -> Result<Command, ConfigErrors>
where
    I: IntoIterator,
    I::Item: Into<OsString>,
    E: Fn(&str) -> Option<OsString>,
{
    let mut errors: Vec<ConfigError> = Vec::new();
    let mut flags: Vec<(&'static Spec, String)> = Vec::new();
    let mut parser = lexopt::Parser::from_args(args);
    // After an unknown flag, a following plain word is taken as its value
    // rather than reported a second time as a stray argument.
    let mut after_unknown = false;
    loop {
        let arg = match parser.next() {
            Ok(Some(arg)) => arg,
            Ok(None) => break,
            Err(err) => {
                // lexopt cannot say where the command line resumes.
                errors.push(usage_error(err));
                break;
            }
        };
        let was_after_unknown = std::mem::take(&mut after_unknown);
        match arg {
            lexopt::Arg::Long("help") | lexopt::Arg::Short('h') => return Ok(Command::Help),
            lexopt::Arg::Long("version") | lexopt::Arg::Short('V') => return Ok(Command::Version),
            lexopt::Arg::Long(name) => {
                let Some(spec) = SPECS.iter().find(|s| &s.flag[2..] == name) else {
                    errors.push(ConfigError {
                        name: format!("--{name}"),
                        value: String::new(),
                        accepted: "one of the flags listed by --help".into(),
                        kind: ErrorKind::UnknownFlag,
                    });
                    // Consumes `--bogus=1`; `--bogus 1` leaves the word.
                    after_unknown = parser.optional_value().is_none();
                    continue;
                };
                match parser.value().map_err(usage_error) {
                    Err(e) => errors.push(e),
                    Ok(value) => match value.into_string() {
                        Ok(value) => flags.push((spec, value)),
                        Err(raw) => errors.push(ConfigError::invalid(
                            spec.flag,
                            raw.to_string_lossy().into_owned(),
                            "UTF-8 text",
                        )),
                    },
                }
            }
            lexopt::Arg::Value(_) if was_after_unknown => {}
            other => errors.push(usage_error(other.unexpected())),
        }
    }

    // The value for a spec: the last flag, else a non-empty env var, else none.
    let mut raw = |spec: &'static Spec| -> Option<(String, Source)> {
        if let Some((_, v)) = flags.iter().rev().find(|(s, _)| std::ptr::eq(*s, spec)) {
            return Some((v.clone(), Source::Flag(spec.flag)));
        }
        env_value(&env, spec.env)
            .unwrap_or_else(|e| {
                errors.push(e);
                None
            })
            .map(|v| (v, Source::Env(spec.env)))
    };
    let fail_probability = setting(raw(&FAIL_PROBABILITY), &FAIL_PROBABILITY, 0.2, parse_probability);
    let failure_mode = setting(raw(&FAILURE_MODE), &FAILURE_MODE, FailureMode::Exit, FailureMode::parse);
    let fail_exit_code = setting(raw(&FAIL_EXIT_CODE), &FAIL_EXIT_CODE, 1, parse_exit_code);
    let work_duration = setting(raw(&WORK_DURATION), &WORK_DURATION, Duration::ZERO, parse_duration);
    let seed = setting(raw(&SEED), &SEED, None, |v| v.parse::<u64>().ok().map(Some));
    let log_format = setting(raw(&LOG_FORMAT), &LOG_FORMAT, LogFormat::Plain, parse_log_format);
    let termination_log = match raw(&TERMINATION_LOG) {
        Some((value, source)) => Setting { value: PathBuf::from(value), source },
        None => Setting::default(DEFAULT_TERMINATION_LOG.into()),
    };
    let fail_indexes = setting(raw(&FAIL_INDEXES), &FAIL_INDEXES, None, |v| parse_fail_indexes(v).map(Some));
    let fail_attempts = setting(raw(&FAIL_ATTEMPTS), &FAIL_ATTEMPTS, 0, |v| v.parse::<u32>().ok());
    let state_dir = match raw(&STATE_DIR) {
        None => Ok(Setting::default(None)),
        Some((value, source)) => check_state_dir(&value, source).map(|dir| Setting { value: Some(dir), source }),
    };
    let name = env_value(&env, ENV_HOSTNAME);
    let completion_index = env_number(&env, ENV_COMPLETION_INDEX);
    let index_failure_count = env_number(&env, ENV_INDEX_FAILURE_COUNT);

    // Every result is looked at, so that every error is collected.
    fn ok<T>(errors: &mut Vec<ConfigError>, r: Result<T, ConfigError>) -> Option<T> {
        r.map_err(|e| errors.push(e)).ok()
    }
    let e = &mut errors;
    let config = (
        ok(e, fail_probability),
        ok(e, failure_mode),
        ok(e, fail_exit_code),
        ok(e, work_duration),
        ok(e, seed),
        ok(e, log_format),
        ok(e, fail_indexes),
        ok(e, fail_attempts),
        ok(e, state_dir),
        ok(e, name),
        ok(e, completion_index),
        ok(e, index_failure_count),
    );
    let (
        Some(fail_probability),
        Some(failure_mode),
        Some(fail_exit_code),
        Some(work_duration),
        Some(seed),
        Some(log_format),
        Some(fail_indexes),
        Some(fail_attempts),
        Some(state_dir),
        Some(name),
        Some(completion_index),
        Some(index_failure_count),
    ) = config
    else {
        return Err(ConfigErrors { errors, termination_log });
    };
    if !errors.is_empty() {
        return Err(ConfigErrors { errors, termination_log });
    }
    Ok(Command::Run(Box::new(Config {
        fail_probability,
        failure_mode,
        fail_exit_code,
        work_duration,
        seed,
        log_format,
        termination_log,
        fail_indexes,
        fail_attempts,
        state_dir,
        pod: PodIdentity { name, completion_index, index_failure_count },
    })))
}

fn usage_error(err: lexopt::Error) -> ConfigError {
    match err {
        lexopt::Error::MissingValue { option } => ConfigError {
            name: option.unwrap_or_default(),
            value: String::new(),
            accepted: "a value after the flag".into(),
            kind: ErrorKind::MissingValue,
        },
        lexopt::Error::UnexpectedValue { option, value } => {
            ConfigError::invalid(option, value.to_string_lossy().into_owned(), "no value")
        }
        lexopt::Error::UnexpectedOption(option) => ConfigError {
            name: option,
            value: String::new(),
            accepted: "one of the flags listed by --help".into(),
            kind: ErrorKind::UnknownFlag,
        },
        lexopt::Error::UnexpectedArgument(value) => {
            ConfigError::invalid("the command line", value.to_string_lossy().into_owned(), FLAG_USAGE)
        }
        other => ConfigError::invalid("the command line", other.to_string(), FLAG_USAGE),
    }
}

fn env_value<E: Fn(&str) -> Option<OsString>>(env: &E, name: &str) -> Result<Option<String>, ConfigError> {
    match env(name) {
        None => Ok(None),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) => v
            .into_string()
            .map(Some)
            .map_err(|raw| ConfigError::invalid(name, raw.to_string_lossy().into_owned(), "UTF-8 text")),
    }
}

fn env_number<E: Fn(&str) -> Option<OsString>>(env: &E, name: &'static str) -> Result<Option<u32>, ConfigError> {
    match env_value(env, name)? {
        None => Ok(None),
        Some(v) => v.trim().parse().map(Some).map_err(|_| {
            ConfigError::invalid(name, v, "a whole number from 0 to 4294967295 (Kubernetes sets this variable)")
        }),
    }
}

fn setting<T>(
    raw: Option<(String, Source)>,
    spec: &Spec,
    default: T,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Setting<T>, ConfigError> {
    let Some((value, source)) = raw else {
        return Ok(Setting::default(default));
    };
    match parse(value.trim()) {
        Some(parsed) => Ok(Setting { value: parsed, source }),
        None => Err(ConfigError::invalid(source_name(source, spec), value, spec.accepted)),
    }
}

fn source_name(source: Source, spec: &Spec) -> String {
    match source {
        Source::Default => spec.flag.into(),
        Source::Env(name) | Source::Flag(name) => name.into(),
    }
}

/// FAIL_PROBABILITY's parser, also used by xtask to read a Job's setting.
pub fn parse_probability(v: &str) -> Option<f64> {
    let p: f64 = v.parse().ok()?;
    (0.0..=1.0).contains(&p).then_some(p)
}

fn parse_exit_code(v: &str) -> Option<u8> {
    let code: u8 = v.parse().ok()?;
    (code != 0 && code != crate::EXIT_CONFIG).then_some(code)
}

fn parse_duration(v: &str) -> Option<Duration> {
    // humantime wants a unit; a bare 0 is unambiguous and common in manifests.
    if v == "0" {
        return Some(Duration::ZERO);
    }
    humantime::parse_duration(v).ok()
}

fn parse_log_format(v: &str) -> Option<LogFormat> {
    match v.to_ascii_lowercase().as_str() {
        "plain" | "text" => Some(LogFormat::Plain),
        "json" => Some(LogFormat::Json),
        _ => None,
    }
}

/// `odd`, `even`, or a comma list of `N`, `N-M`, `N:CODE`, `N-M:CODE`; the
/// list form is the one Kubernetes uses for completedIndexes, plus exit codes.
pub fn parse_fail_indexes(v: &str) -> Option<FailIndexes> {
    match v.to_ascii_lowercase().as_str() {
        "odd" => return Some(FailIndexes::Odd),
        "even" => return Some(FailIndexes::Even),
        _ => {}
    }
    let mut rules: Vec<IndexRule> = Vec::new();
    for item in v.split(',') {
        let item = item.trim();
        let (range, exit_code) = match item.split_once(':') {
            Some((range, code)) => (range.trim(), Some(parse_exit_code(code.trim())?)),
            None => (item, None),
        };
        let (first, last) = match range.split_once('-') {
            Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
            None => {
                let n = range.parse().ok()?;
                (n, n)
            }
        };
        if first > last {
            return None;
        }
        // Overlaps would make the exit code of an index ambiguous.
        if rules.iter().any(|r| first <= r.last && r.first <= last) {
            return None;
        }
        rules.push(IndexRule { first, last, exit_code });
    }
    Some(FailIndexes::List(rules))
}

fn check_state_dir(value: &str, source: Source) -> Result<PathBuf, ConfigError> {
    let path = PathBuf::from(value);
    let refuse = |why: String| {
        ConfigError::invalid(source_name(source, &STATE_DIR), value, format!("{} ({why})", STATE_DIR.accepted))
    };
    match std::fs::metadata(&path) {
        Err(e) => Err(refuse(format!("cannot read it: {e}"))),
        Ok(m) if !m.is_dir() => Err(refuse("it is not a directory".into())),
        Ok(_) => {
            // Writability is proven by writing, not by reading permission bits
            // (read-only mounts and root both make the bits lie).
            let probe = path.join(".job-worker-probe");
            std::fs::write(&probe, b"")
                .and_then(|()| std::fs::remove_file(&probe))
                .map_err(|e| refuse(format!("cannot write in it: {e}")))?;
            Ok(path)
        }
    }
}

/// The `--help` text, made from the settings table.
pub fn help() -> String {
    let mut out = String::from(concat!(
        "job-worker ",
        env!("CARGO_PKG_VERSION"),
        "\nA flaky Kubernetes Job workload: fails with a chosen probability, in a chosen way.\n\n",
        "Usage: job-worker [--flag VALUE]...\n\n",
        "Every flag has an environment variable; flags win over the environment.\n\n"
    ));
    for spec in SPECS {
        out.push_str(&format!(
            "  {:<20} {:<18} {} (default {})\n  {:<39} accepts {}\n",
            spec.flag, spec.env, spec.help, spec.default, "", spec.accepted
        ));
    }
    out.push_str(concat!(
        "  -h, --help                              print this help\n",
        "  -V, --version                           print the version\n\n",
        "Kubernetes sets HOSTNAME (the pod name), JOB_COMPLETION_INDEX (Indexed Jobs)\n",
        "and, through the downward API, JOB_INDEX_FAILURE_COUNT (the attempt number).\n\n",
        "Exit codes: 0 success; FAIL_EXIT_CODE a simulated failure; 2 invalid\n",
        "configuration; 101 panic; 134 (SIGABRT) abort; 143 after SIGTERM; 130 after SIGINT.\n",
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse_with(args: &[&str], env: &[(&str, &str)]) -> Result<Command, ConfigErrors> {
        let env: HashMap<String, OsString> = env.iter().map(|(k, v)| (k.to_string(), OsString::from(v))).collect();
        parse(args.iter().map(|a| a.to_string()), |name| env.get(name).cloned())
    }

    fn config(args: &[&str], env: &[(&str, &str)]) -> Config {
        match parse_with(args, env) {
            Ok(Command::Run(c)) => *c,
            other => panic!("expected a run, got {other:?}"),
        }
    }

    fn errors(args: &[&str], env: &[(&str, &str)]) -> ConfigErrors {
        match parse_with(args, env) {
            Err(e) => e,
            Ok(other) => panic!("expected an error, got {other:?}"),
        }
    }

    fn error(args: &[&str], env: &[(&str, &str)]) -> ConfigError {
        let e = errors(args, env);
        assert_eq!(e.errors.len(), 1, "{args:?} {env:?}: {e}");
        e.errors[0].clone()
    }

    #[test]
    fn defaults_follow_the_contract() {
        let c = config(&[], &[]);
        assert_eq!(c.fail_probability, Setting { value: 0.2, source: Source::Default });
        assert_eq!(c.failure_mode.value, FailureMode::Exit);
        assert_eq!(c.fail_exit_code.value, 1);
        assert_eq!(c.work_duration.value, Duration::ZERO);
        assert_eq!(c.seed.value, None);
        assert_eq!(c.log_format.value, LogFormat::Plain);
        assert_eq!(c.termination_log.value, PathBuf::from("/dev/termination-log"));
        assert_eq!(c.fail_indexes.value, None);
        assert_eq!(c.fail_attempts.value, 0);
        assert_eq!(c.state_dir.value, None);
        assert_eq!(c.pod, PodIdentity::default());
    }

    #[test]
    fn every_setting_reads_its_environment_variable() {
        let dir = std::env::temp_dir();
        let dir_s = dir.to_str().unwrap();
        let c = config(
            &[],
            &[
                ("FAIL_PROBABILITY", "0.5"),
                ("FAILURE_MODE", "oom"),
                ("FAIL_EXIT_CODE", "42"),
                ("WORK_DURATION", "1m30s"),
                ("WORKER_SEED", "7"),
                ("LOG_FORMAT", "json"),
                ("TERMINATION_LOG", "/tmp/msg"),
                ("FAIL_INDEXES", "0,3-5,7:42"),
                ("FAIL_ATTEMPTS", "2"),
                ("STATE_DIR", dir_s),
                ("HOSTNAME", "job-test-abcde"),
                ("JOB_COMPLETION_INDEX", "3"),
                ("JOB_INDEX_FAILURE_COUNT", "1"),
            ],
        );
        assert_eq!(c.fail_probability, Setting { value: 0.5, source: Source::Env("FAIL_PROBABILITY") });
        assert_eq!(c.failure_mode.value, FailureMode::Oom);
        assert_eq!(c.fail_exit_code.value, 42);
        assert_eq!(c.work_duration.value, Duration::from_secs(90));
        assert_eq!(c.seed.value, Some(7));
        assert_eq!(c.log_format.value, LogFormat::Json);
        assert_eq!(c.termination_log.value, PathBuf::from("/tmp/msg"));
        assert_eq!(c.fail_indexes.value.as_ref().unwrap().to_string(), "0,3-5,7:42");
        assert_eq!(c.fail_attempts.value, 2);
        assert_eq!(c.state_dir.value.as_deref(), Some(dir.as_path()));
        assert_eq!(
            c.pod,
            PodIdentity {
                name: Some("job-test-abcde".into()),
                completion_index: Some(3),
                index_failure_count: Some(1)
            }
        );
    }

    #[test]
    fn flags_win_over_environment_and_say_so() {
        let c = config(
            &["--fail-probability", "0.9", "--failure-mode=panic"],
            &[("FAIL_PROBABILITY", "0.1"), ("FAILURE_MODE", "hang")],
        );
        assert_eq!(c.fail_probability, Setting { value: 0.9, source: Source::Flag("--fail-probability") });
        assert_eq!(c.failure_mode, Setting { value: FailureMode::Panic, source: Source::Flag("--failure-mode") });
        // The last of a repeated flag wins, as with most command lines.
        assert_eq!(config(&["--seed", "1", "--seed", "2"], &[]).seed.value, Some(2));
    }

    #[test]
    fn empty_environment_variables_count_as_unset() {
        let c = config(&[], &[("FAIL_PROBABILITY", ""), ("WORKER_SEED", ""), ("JOB_COMPLETION_INDEX", "")]);
        assert_eq!(c.fail_probability.source, Source::Default);
        assert_eq!(c.seed.value, None);
        assert_eq!(c.pod.completion_index, None);
    }

    #[test]
    fn help_and_version() {
        assert_eq!(parse_with(&["--help"], &[]), Ok(Command::Help));
        assert_eq!(parse_with(&["-h"], &[]), Ok(Command::Help));
        assert_eq!(parse_with(&["--version"], &[]), Ok(Command::Version));
        // --help wins even over a bad value given before it is reached.
        assert_eq!(parse_with(&["--help"], &[("FAIL_PROBABILITY", "nope")]), Ok(Command::Help));
        let help = help();
        for spec in SPECS {
            assert!(help.contains(spec.flag) && help.contains(spec.env), "{} missing from --help", spec.flag);
        }
    }

    /// A bad input (flags, env) and what its message must carry: the
    /// setting's name, the value, and a piece of what is accepted.
    type BadInput<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str, &'a str, &'a str);

    #[test]
    fn every_bad_input_names_the_setting_the_value_and_what_is_accepted() {
        let cases: &[BadInput] = &[
            (&[], &[("FAIL_PROBABILITY", "1.5")], "FAIL_PROBABILITY", "1.5", "from 0 to 1"),
            (&[], &[("FAIL_PROBABILITY", "-0.1")], "FAIL_PROBABILITY", "-0.1", "from 0 to 1"),
            (&[], &[("FAIL_PROBABILITY", "NaN")], "FAIL_PROBABILITY", "NaN", "from 0 to 1"),
            (&["--fail-probability", "twenty%"], &[], "--fail-probability", "twenty%", "from 0 to 1"),
            (&[], &[("FAILURE_MODE", "segfault")], "FAILURE_MODE", "segfault", "exit, panic, abort, hang, oom"),
            (&[], &[("FAIL_EXIT_CODE", "0")], "FAIL_EXIT_CODE", "0", "from 1 to 255 other than 2"),
            (&[], &[("FAIL_EXIT_CODE", "2")], "FAIL_EXIT_CODE", "2", "configuration error"),
            (&[], &[("FAIL_EXIT_CODE", "256")], "FAIL_EXIT_CODE", "256", "from 1 to 255"),
            (&["--fail-exit-code", "-1"], &[], "--fail-exit-code", "-1", "from 1 to 255"),
            (&[], &[("WORK_DURATION", "5")], "WORK_DURATION", "5", "500ms"),
            (&[], &[("WORK_DURATION", "soon")], "WORK_DURATION", "soon", "500ms"),
            (&[], &[("WORKER_SEED", "-3")], "WORKER_SEED", "-3", "whole number"),
            (&["--seed", "0x10"], &[], "--seed", "0x10", "whole number"),
            (&[], &[("LOG_FORMAT", "yaml")], "LOG_FORMAT", "yaml", "plain or json"),
            (&[], &[("FAIL_INDEXES", "1,,2")], "FAIL_INDEXES", "1,,2", "odd, even"),
            (&[], &[("FAIL_INDEXES", "5-3")], "FAIL_INDEXES", "5-3", "odd, even"),
            (&[], &[("FAIL_INDEXES", "1:2")], "FAIL_INDEXES", "1:2", "odd, even"),
            (&[], &[("FAIL_INDEXES", "1:0")], "FAIL_INDEXES", "1:0", "odd, even"),
            (&[], &[("FAIL_INDEXES", "1-3,2")], "FAIL_INDEXES", "1-3,2", "odd, even"),
            (&[], &[("FAIL_INDEXES", "first")], "FAIL_INDEXES", "first", "odd, even"),
            (&[], &[("FAIL_ATTEMPTS", "-1")], "FAIL_ATTEMPTS", "-1", "whole number"),
            (&[], &[("STATE_DIR", "/nonexistent/state")], "STATE_DIR", "/nonexistent/state", "cannot read it"),
            (&[], &[("STATE_DIR", "/etc/hostname")], "STATE_DIR", "/etc/hostname", "not a directory"),
            (&[], &[("JOB_COMPLETION_INDEX", "x")], "JOB_COMPLETION_INDEX", "x", "whole number"),
            (&[], &[("JOB_INDEX_FAILURE_COUNT", "-1")], "JOB_INDEX_FAILURE_COUNT", "-1", "whole number"),
            (&["--no-such-flag", "1"], &[], "--no-such-flag", "", "--help"),
            (&["--seed"], &[], "--seed", "", "a value after the flag"),
            (&["stray"], &[], "the command line", "stray", "--help"),
        ];
        for (args, env, name, value, accepted) in cases {
            let e = error(args, env);
            let message = e.to_string();
            assert_eq!(e.name, *name, "{args:?} {env:?}: {message}");
            assert_eq!(e.value, *value, "{args:?} {env:?}: {message}");
            assert!(message.contains(accepted), "{args:?} {env:?}: {message:?} should mention {accepted:?}");
        }
    }

    #[test]
    fn every_invalid_setting_is_reported_at_once() {
        let e = errors(
            &["--work-duration=-1s", "--fail-exit-code", "2"],
            &[("FAIL_PROBABILITY", "1.5"), ("FAILURE_MODE", "nope"), ("JOB_COMPLETION_INDEX", "x")],
        );
        let names: Vec<&str> = e.errors.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            ["FAIL_PROBABILITY", "FAILURE_MODE", "--fail-exit-code", "--work-duration", "JOB_COMPLETION_INDEX"]
        );
        let text = e.to_string();
        assert_eq!(text.lines().count(), 5, "{text}");
        assert!(text.contains("invalid value \"nope\" for FAILURE_MODE: expected one of exit, panic"), "{text}");
        // One line for the termination message, every error in it.
        let line = e.one_line();
        assert!(!line.contains('\n') && line.starts_with("invalid configuration: invalid value \"1.5\""), "{line}");
        assert!(line.contains("; invalid value \"-1s\" for --work-duration"), "{line}");
    }

    #[test]
    fn an_unknown_flag_is_called_unknown() {
        for args in [&["--bogus"][..], &["--bogus", "1"], &["--bogus=1"]] {
            let e = error(args, &[]);
            assert_eq!(e.to_string(), "unknown flag --bogus: expected one of the flags listed by --help", "{args:?}");
        }
        // Two unknown flags and a bad value: all three.
        let e = errors(&["--bogus", "--other", "x", "--seed", "y"], &[]);
        assert_eq!(e.errors.len(), 3, "{e}");
        assert_eq!(error(&["--seed"], &[]).to_string(), "missing value for --seed: expected a value after the flag");
    }

    #[test]
    fn a_refused_configuration_still_says_where_the_termination_log_is() {
        let e = errors(&["--termination-log", "/tmp/t", "--seed", "x"], &[]);
        assert_eq!(
            e.termination_log,
            Setting { value: PathBuf::from("/tmp/t"), source: Source::Flag("--termination-log") }
        );
        let e = errors(&[], &[("TERMINATION_LOG", "/tmp/u"), ("FAIL_PROBABILITY", "2")]);
        assert_eq!(e.termination_log.value, PathBuf::from("/tmp/u"));
        assert_eq!(errors(&["--seed", "x"], &[]).termination_log, Setting::default(DEFAULT_TERMINATION_LOG.into()));
    }

    #[test]
    fn failure_modes_are_named_once() {
        for mode in FailureMode::ALL {
            assert_eq!(FailureMode::parse(mode.as_str()), Some(*mode));
            assert_eq!(FailureMode::parse(&mode.as_str().to_uppercase()), Some(*mode));
            assert!(FAILURE_MODE.accepted.contains(mode.as_str()), "{}", FAILURE_MODE.accepted);
        }
        assert_eq!(FAILURE_MODE.accepted, "one of exit, panic, abort, hang, oom");
        assert_eq!(FailureMode::parse("segfault"), None);
    }

    #[test]
    fn a_read_only_state_dir_is_refused() {
        // Root ignores permission bits, so use a directory no one can write:
        // /proc is read-only for everyone.
        let e = error(&["--state-dir", "/proc"], &[]);
        assert_eq!(e.name, "--state-dir");
        assert!(e.accepted.contains("cannot write in it"), "{e}");
    }

    #[test]
    fn index_lists() {
        let f = parse_fail_indexes("0, 3-5 ,7:42").unwrap();
        let got: Vec<_> = (0..9).map(|i| f.matches(i)).collect();
        assert_eq!(got, [Some(None), None, None, Some(None), Some(None), Some(None), None, Some(Some(42)), None]);
        assert_eq!(parse_fail_indexes("ODD").unwrap().matches(3), Some(None));
        assert_eq!(parse_fail_indexes("odd").unwrap().matches(4), None);
        assert_eq!(parse_fail_indexes("even").unwrap().matches(0), Some(None));
        assert_eq!(parse_fail_indexes("even").unwrap().matches(1), None);
        assert_eq!(parse_fail_indexes("1-3:7").unwrap().to_string(), "1-3:7");
    }
}
