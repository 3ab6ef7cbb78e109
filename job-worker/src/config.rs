//! The worker's configuration: every setting, where its value came from, and
//! the one place that turns flags and environment variables into it.
//!
//! The contract (names, defaults, exit codes) is in README.md; flags win over
//! the environment, and an empty environment variable counts as unset so that a
//! manifest template can leave a value blank.

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
    accepted: "one of exit, panic, abort, hang, oom",
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
    help: "makes the decision a pure function of (seed, pod name, completion index)",
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureMode {
    /// Exit with FAIL_EXIT_CODE.
    Exit,
    /// A Rust panic: message on stderr, exit code 101.
    Panic,
    /// Killed by SIGABRT, as by a failed assertion in C.
    Abort,
    /// Never finish on its own; exercises activeDeadlineSeconds.
    Hang,
    /// Allocate and touch memory until the kernel kills the process.
    Oom,
}

impl FailureMode {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureMode::Exit => "exit",
            FailureMode::Panic => "panic",
            FailureMode::Abort => "abort",
            FailureMode::Hang => "hang",
            FailureMode::Oom => "oom",
        }
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
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid value {:?} for {}: expected {}", self.value, self.name, self.accepted)
    }
}

impl std::error::Error for ConfigError {}

/// Reads the configuration from the command line (without the program name)
/// and the environment, flags first.
pub fn parse<I, E>(args: I, env: E) -> Result<Command, ConfigError>
where
    I: IntoIterator,
    I::Item: Into<OsString>,
    E: Fn(&str) -> Option<OsString>,
{
    let mut flags: Vec<(&'static Spec, String)> = Vec::new();
    let mut parser = lexopt::Parser::from_args(args);
    loop {
        let arg = match parser.next() {
            Ok(Some(arg)) => arg,
            Ok(None) => break,
            Err(err) => return Err(usage_error(err)),
        };
        match arg {
            lexopt::Arg::Long("help") | lexopt::Arg::Short('h') => return Ok(Command::Help),
            lexopt::Arg::Long("version") | lexopt::Arg::Short('V') => return Ok(Command::Version),
            lexopt::Arg::Long(name) => {
                let Some(spec) = SPECS.iter().find(|s| &s.flag[2..] == name) else {
                    return Err(ConfigError {
                        name: format!("--{name}"),
                        value: String::new(),
                        accepted: "one of the flags listed by --help".into(),
                    });
                };
                let value = parser.value().map_err(usage_error)?;
                let value = value.into_string().map_err(|raw| ConfigError {
                    name: spec.flag.into(),
                    value: raw.to_string_lossy().into_owned(),
                    accepted: "UTF-8 text".into(),
                })?;
                flags.push((spec, value));
            }
            other => return Err(usage_error(other.unexpected())),
        }
    }

    // The value for a spec: the last flag, else a non-empty env var, else none.
    let raw = |spec: &'static Spec| -> Result<Option<(String, Source)>, ConfigError> {
        if let Some((_, v)) = flags.iter().rev().find(|(s, _)| std::ptr::eq(*s, spec)) {
            return Ok(Some((v.clone(), Source::Flag(spec.flag))));
        }
        env_value(&env, spec.env).map(|v| v.map(|v| (v, Source::Env(spec.env))))
    };

    let config = Config {
        fail_probability: setting(raw(&FAIL_PROBABILITY)?, &FAIL_PROBABILITY, 0.2, parse_probability)?,
        failure_mode: setting(raw(&FAILURE_MODE)?, &FAILURE_MODE, FailureMode::Exit, parse_failure_mode)?,
        fail_exit_code: setting(raw(&FAIL_EXIT_CODE)?, &FAIL_EXIT_CODE, 1, parse_exit_code)?,
        work_duration: setting(raw(&WORK_DURATION)?, &WORK_DURATION, Duration::ZERO, parse_duration)?,
        seed: setting(raw(&SEED)?, &SEED, None, |v| v.parse::<u64>().ok().map(Some))?,
        log_format: setting(raw(&LOG_FORMAT)?, &LOG_FORMAT, LogFormat::Plain, parse_log_format)?,
        termination_log: setting(raw(&TERMINATION_LOG)?, &TERMINATION_LOG, DEFAULT_TERMINATION_LOG.into(), |v| {
            Some(PathBuf::from(v))
        })?,
        fail_indexes: setting(raw(&FAIL_INDEXES)?, &FAIL_INDEXES, None, |v| parse_fail_indexes(v).map(Some))?,
        fail_attempts: setting(raw(&FAIL_ATTEMPTS)?, &FAIL_ATTEMPTS, 0, |v| v.parse::<u32>().ok())?,
        state_dir: match raw(&STATE_DIR)? {
            None => Setting::default(None),
            Some((value, source)) => Setting { value: Some(check_state_dir(&value, source)?), source },
        },
        pod: PodIdentity {
            name: env_value(&env, ENV_HOSTNAME)?,
            completion_index: env_number(&env, ENV_COMPLETION_INDEX)?,
            index_failure_count: env_number(&env, ENV_INDEX_FAILURE_COUNT)?,
        },
    };
    Ok(Command::Run(Box::new(config)))
}

fn usage_error(err: lexopt::Error) -> ConfigError {
    let accepted = "a flag listed by --help, each with a value (--flag VALUE or --flag=VALUE)";
    match err {
        lexopt::Error::MissingValue { option } => ConfigError {
            name: option.unwrap_or_default(),
            value: String::new(),
            accepted: "a value after the flag".into(),
        },
        lexopt::Error::UnexpectedValue { option, value } => {
            ConfigError { name: option, value: value.to_string_lossy().into_owned(), accepted: "no value".into() }
        }
        lexopt::Error::UnexpectedOption(option) => {
            ConfigError { name: option, value: String::new(), accepted: accepted.into() }
        }
        lexopt::Error::UnexpectedArgument(value) => ConfigError {
            name: "the command line".into(),
            value: value.to_string_lossy().into_owned(),
            accepted: accepted.into(),
        },
        other => ConfigError { name: "the command line".into(), value: other.to_string(), accepted: accepted.into() },
    }
}

fn env_value<E: Fn(&str) -> Option<OsString>>(env: &E, name: &str) -> Result<Option<String>, ConfigError> {
    match env(name) {
        None => Ok(None),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) => v.into_string().map(Some).map_err(|raw| ConfigError {
            name: name.into(),
            value: raw.to_string_lossy().into_owned(),
            accepted: "UTF-8 text".into(),
        }),
    }
}

fn env_number<E: Fn(&str) -> Option<OsString>>(env: &E, name: &'static str) -> Result<Option<u32>, ConfigError> {
    match env_value(env, name)? {
        None => Ok(None),
        Some(v) => v.trim().parse().map(Some).map_err(|_| ConfigError {
            name: name.into(),
            value: v,
            accepted: "a whole number from 0 to 4294967295 (Kubernetes sets this variable)".into(),
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
        None => Err(ConfigError { name: source_name(source, spec), value, accepted: spec.accepted.into() }),
    }
}

fn source_name(source: Source, spec: &Spec) -> String {
    match source {
        Source::Default => spec.flag.into(),
        Source::Env(name) | Source::Flag(name) => name.into(),
    }
}

fn parse_probability(v: &str) -> Option<f64> {
    let p: f64 = v.parse().ok()?;
    (0.0..=1.0).contains(&p).then_some(p)
}

fn parse_failure_mode(v: &str) -> Option<FailureMode> {
    Some(match v.to_ascii_lowercase().as_str() {
        "exit" => FailureMode::Exit,
        "panic" => FailureMode::Panic,
        "abort" => FailureMode::Abort,
        "hang" => FailureMode::Hang,
        "oom" => FailureMode::Oom,
        _ => return None,
    })
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
    let refuse = |why: String| ConfigError {
        name: source_name(source, &STATE_DIR),
        value: value.into(),
        accepted: format!("{} ({why})", STATE_DIR.accepted),
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

    fn parse_with(args: &[&str], env: &[(&str, &str)]) -> Result<Command, ConfigError> {
        let env: HashMap<String, OsString> = env.iter().map(|(k, v)| (k.to_string(), OsString::from(v))).collect();
        parse(args.iter().map(|a| a.to_string()), |name| env.get(name).cloned())
    }

    fn config(args: &[&str], env: &[(&str, &str)]) -> Config {
        match parse_with(args, env) {
            Ok(Command::Run(c)) => *c,
            other => panic!("expected a run, got {other:?}"),
        }
    }

    fn error(args: &[&str], env: &[(&str, &str)]) -> ConfigError {
        match parse_with(args, env) {
            Err(e) => e,
            Ok(other) => panic!("expected an error, got {other:?}"),
        }
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
