//! Settings that persist: the settings file (`job-test.toml`) and the
//! JOB_TEST_<FLAG> environment variables, installed as the flags'
//! defaults. `command` is `cargo xtask config`, which prints the effective
//! settings and where each came from.
//!
//! The keys are not listed here: they are the flags of the groups `config`
//! flattens (`flags::ConfigFlags`: Image, Registry, Cluster, Job, Worker,
//! Authorization), read from the clap `Command`, so a flag added to one of
//! those groups is a key at once. A key is `[heading] long-name`, as
//! `--help` shows it: `[job] namespace`, `[worker] fail-probability`,
//! `[cluster] context`. It applies to every command that has the flag.
//!
//! Precedence is clap's own: a flag, then the arg's `env`, then its
//! `default_value`. The file's values are installed as the defaults
//! (`Command::mut_arg`), so clap resolves the order and
//! `ArgMatches::value_source` tells which level a value came from; a
//! default that the file set is told apart by the file holding the key.
//! File and environment values are checked with the arg's own value parser
//! before anything runs, so a bad one names its file and key (or its
//! variable), not a flag the user never typed. A switch is declared to
//! take `=false` (see `flags`), so that the flag level can turn off a
//! file's `true`; the file alone may not turn the TLS switch-offs on
//! (`NOT_TRUE_IN_FILE`).

use std::any::TypeId;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::error::{ContextKind, ContextValue};
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};
use serde::Serialize;

use crate::flags::{Command as Subcommand, NOT_SETTINGS_IN};
use crate::{Error, project_root};

mod command;
pub use command::{Effective, Setting, run};

/// The settings file's name, looked for in the project root.
pub const FILE_NAME: &str = "job-test.toml";
pub use crate::flags::CONFIG_ENV;
/// A setting's variable is this and its flag's name: JOB_TEST_NAMESPACE.
pub const ENV_PREFIX: &str = "JOB_TEST_";

/// Flags of the groups that are not settings, and why. Credentials are
/// kept where credentials are kept, never in a settings file that may be
/// committed; and `--username` only pairs with `--password-stdin`.
const NOT_SETTINGS: [(&str, &str); 2] = [
    (
        "username",
        "registry credentials are not settings: `docker login` keeps them in the Docker config, or set \
         REGISTRY_USERNAME and REGISTRY_PASSWORD, or pass --username with --password-stdin",
    ),
    ("password_stdin", "the password is read from standard input on each run: it is not a setting"),
];

/// Switches a settings file may not turn on, and why. The file is meant to
/// be committed, so `true` there would turn off a certificate check for
/// everyone who runs the project, on every run, and the warning each run
/// prints would soon go unread; a flag (or JOB_TEST_<FLAG>, set in one
/// shell) is one person's choice. `false` is allowed: it changes nothing.
const NOT_TRUE_IN_FILE: [(&str, &str); 2] = [
    (
        "insecure_skip_tls_verify",
        "a committed file would turn off the API server's certificate check for everyone who uses it: put \
         ca-cert = \"FILE\" (the cluster's CA) there instead, or pass --insecure-skip-tls-verify on the runs that \
         need it",
    ),
    (
        "insecure_registry",
        "a committed file would allow plain HTTP and unverified TLS to the registry for everyone who uses it: put \
         registry-ca-cert = \"FILE\" there instead, or pass --insecure-registry on the runs that need it",
    ),
];

/// What a secret's value is shown as.
pub const MASK: &str = "***";

/// A key whose name says it holds a secret is masked and refused in a file.
fn is_secret(name: &str) -> bool {
    name.contains("password") || name.ends_with("token")
}

/// One setting: a flag of a settings group.
#[derive(Debug, Clone)]
pub struct Key {
    /// The `[section]`: the flag's help heading, lower-case.
    pub section: String,
    /// The flag's long name, the key within the section.
    pub name: String,
    /// The clap id, shared by the same flag in every command.
    pub id: String,
    /// JOB_TEST_<FLAG>.
    pub env: String,
    /// A path: relative values in the file are relative to the file's folder.
    pub path: bool,
    /// Takes a list (`pod-verbs = ["get", "list"]`); else one value.
    pub multiple: bool,
    /// What separates a list's values in one JOB_TEST_<FLAG> value (and in
    /// `config`'s column): the flag's delimiter, `,` for `pod-verbs`, `;`
    /// for rules whose values hold commas (`success-policy`).
    pub separator: char,
}

impl Key {
    /// `section.name`, as messages and `config` name it.
    pub fn full(&self) -> String {
        format!("{}.{}", self.section, self.name)
    }
}

/// Every key, in `config --help` order: the flags of `config`'s groups.
pub fn keys(cmd: &Command) -> Vec<Key> {
    let mut cmd = cmd.clone();
    cmd.build();
    let config = cmd.find_subcommand("config").expect("the config subcommand");
    config
        .get_arguments()
        .filter(|a| !a.is_global_set() && !NOT_SETTINGS.iter().any(|(id, _)| a.get_id() == *id))
        .filter_map(|a| {
            let heading = a.get_help_heading()?;
            let name = a.get_long()?.to_owned();
            Some(Key {
                section: heading.to_lowercase(),
                env: format!("{ENV_PREFIX}{}", name.to_uppercase().replace('-', "_")),
                id: a.get_id().to_string(),
                path: a.get_value_parser().type_id() == TypeId::of::<PathBuf>(),
                multiple: matches!(a.get_action(), ArgAction::Append) || a.get_value_delimiter().is_some(),
                separator: a.get_value_delimiter().unwrap_or(','),
                name,
            })
        })
        .collect()
}

/// How the settings file was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Chosen {
    /// `--config FILE`.
    Flag,
    /// JOB_TEST_CONFIG.
    Environment,
    /// job-test.toml in the project root.
    Default,
}

impl fmt::Display for Chosen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Chosen::Flag => f.write_str("--config"),
            Chosen::Environment => write!(f, "environment variable {CONFIG_ENV}"),
            Chosen::Default => write!(f, "{FILE_NAME} in the project root"),
        }
    }
}

/// The settings file that was read.
#[derive(Debug, Clone)]
pub struct SettingsFile {
    pub path: PathBuf,
    pub chosen: Chosen,
    /// Raw values by clap id, as they would be typed after the flag.
    pub values: BTreeMap<String, Vec<String>>,
}

/// The settings of this run: the keys, and the file when there is one.
#[derive(Debug, Clone)]
pub struct Settings {
    pub keys: Vec<Key>,
    pub file: Option<SettingsFile>,
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flag(String),
    Environment(String),
    File(PathBuf, String),
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag(flag) => write!(f, "flag {flag}"),
            Source::Environment(name) => write!(f, "environment variable {name}"),
            Source::File(path, key) => write!(f, "{}:{key}", path.display()),
            Source::Default => f.write_str("default"),
        }
    }
}

impl Settings {
    /// Finds and reads the settings file (`--config` in `args`, else
    /// JOB_TEST_CONFIG, else job-test.toml in the project root when it
    /// exists), checking every key and value; checks the JOB_TEST_
    /// variables too. `cmd` is the command before `apply`.
    pub fn load(cmd: &Command, args: &[OsString]) -> Result<Settings, Error> {
        // Built once: building fills in each flag's parser, and takes longer
        // than everything else here.
        let mut cmd = cmd.clone();
        cmd.build();
        let cmd = &cmd;
        let keys = keys(cmd);
        check_environment(cmd, &keys)?;
        let located = match config_flag(args) {
            Some(path) => Some((path, Chosen::Flag)),
            None => match std::env::var_os(CONFIG_ENV).filter(|v| !v.is_empty()) {
                Some(path) => Some((PathBuf::from(path), Chosen::Environment)),
                None => Some(project_root().join(FILE_NAME)).filter(|p| p.exists()).map(|p| (p, Chosen::Default)),
            },
        };
        let file = match located {
            // Absolute, so that every message and `config` name the same file
            // whatever the folder the command ran in.
            Some((path, chosen)) => Some(read(cmd, &keys, std::path::absolute(&path).unwrap_or(path), chosen)?),
            None => None,
        };
        Ok(Settings { keys, file })
    }

    /// The command with every key's variable and the file's values as the
    /// defaults, in every subcommand that has the flag.
    pub fn apply(&self, mut cmd: Command) -> Command {
        let names: Vec<String> = cmd.get_subcommands().map(|s| s.get_name().to_owned()).collect();
        for name in names {
            cmd = cmd.mut_subcommand(&name, |mut sub| {
                for key in &self.keys {
                    if !sub.get_arguments().any(|a| a.get_id() == key.id.as_str())
                        || NOT_SETTINGS_IN.contains(&(name.as_str(), key.id.as_str()))
                    {
                        continue;
                    }
                    let value = self.file.as_ref().and_then(|f| f.values.get(&key.id));
                    sub = sub.mut_arg(&key.id, |mut arg| {
                        arg = arg.env(key.env.clone()).hide_env(true);
                        if let Some(values) = value {
                            // The joined form is what a delimited flag's own default is written as,
                            // joined by its own delimiter (a rule's values hold commas).
                            arg = arg.default_value(values.join(&key.separator.to_string()));
                        }
                        arg
                    });
                }
                sub
            });
        }
        cmd
    }

    /// Where the value of `key` came from in this run (`matches` is the
    /// subcommand's); None when the command has no such flag or it is unset.
    pub fn source(&self, matches: &ArgMatches, key: &Key) -> Option<Source> {
        if !matches.ids().any(|id| id.as_str() == key.id) {
            return None;
        }
        match matches.value_source(&key.id)? {
            ValueSource::CommandLine => Some(Source::Flag(format!("--{}", key.name))),
            ValueSource::EnvVariable => Some(Source::Environment(key.env.clone())),
            ValueSource::DefaultValue => Some(match &self.file {
                Some(file) if file.values.contains_key(&key.id) => Source::File(file.path.clone(), key.full()),
                _ => Source::Default,
            }),
            _ => Some(Source::Default),
        }
    }

    /// For an error that names flags: one line for each named flag whose
    /// value came from the file or the environment, so that the user finds
    /// where to fix it.
    pub fn notes(&self, matches: &ArgMatches, message: &str) -> Vec<String> {
        let Some((_, sub)) = matches.subcommand() else { return Vec::new() };
        self.keys
            .iter()
            .filter(|k| names_flag(message, &k.name))
            .filter_map(|k| match self.source(sub, k)? {
                source @ (Source::File(..) | Source::Environment(_)) => {
                    Some(format!("--{} came from {source}: change or remove it there", k.name))
                }
                _ => None,
            })
            .collect()
    }
}

/// Drops what the settings gave a flag that, in this use of its command,
/// takes only what is typed (see also `flags::NOT_SETTINGS_IN`): `delete
/// --local` removes every Job's kept containers unless `--name` is typed.
/// The settings' name is the Job that `apply` and `run-local` make, and
/// narrowing to it would quietly leave other Jobs' containers behind, while
/// `delete` without --local still deletes that Job from the cluster.
pub fn typed_only(command: &mut Subcommand, matches: &ArgMatches) {
    let Some((_, sub)) = matches.subcommand() else { return };
    if let Subcommand::Delete(flags) = command
        && flags.local
        && sub.value_source("name") != Some(ValueSource::CommandLine)
    {
        flags.name = None;
    }
}

/// Makes `cmd`, a child `cargo xtask`, run with none of this machine's
/// settings: no JOB_TEST_<FLAG> (nor JOB_TEST_CONFIG) and an empty settings
/// file instead of the project's job-test.toml, so that it does only what
/// its arguments say. The bench measures the same thing on every machine
/// with it; the tests see only what they set.
pub fn without_settings(cmd: &mut std::process::Command) -> &mut std::process::Command {
    remove_settings(cmd, std::env::vars_os().map(|(name, _)| name))
}

/// `without_settings` for an environment holding the variables `names`.
fn remove_settings(
    cmd: &mut std::process::Command,
    names: impl Iterator<Item = OsString>,
) -> &mut std::process::Command {
    for name in names.filter(|n| n.to_string_lossy().starts_with(ENV_PREFIX)) {
        cmd.env_remove(name);
    }
    cmd.env(CONFIG_ENV, "/dev/null")
}

/// Whether `message` names `--flag` (and not a longer flag it begins).
fn names_flag(message: &str, flag: &str) -> bool {
    let needle = format!("--{flag}");
    message.match_indices(&needle).any(|(i, _)| {
        !message[i + needle.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    })
}

/// The value of `--config FILE` or `--config=FILE` before `--`: the file
/// is read before clap parses, since its values become clap's defaults.
fn config_flag(args: &[OsString]) -> Option<PathBuf> {
    let mut args = args.iter().skip(1).take_while(|a| *a != "--");
    let mut found = None;
    while let Some(arg) = args.next() {
        if arg == "--config" {
            found = args.next().map(PathBuf::from);
        } else if let Some(path) = arg.to_str().and_then(|a| a.strip_prefix("--config=")) {
            found = Some(PathBuf::from(path));
        }
    }
    found
}

/// Reads and checks the settings file.
fn read(cmd: &Command, keys: &[Key], path: PathBuf, chosen: Chosen) -> Result<SettingsFile, Error> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(&path).map_err(|e| {
        let named = match chosen {
            Chosen::Flag => format!("--config {shown}"),
            Chosen::Environment => format!("{CONFIG_ENV}={shown}"),
            Chosen::Default => shown.clone(),
        };
        Error::usage(format!("{named}: cannot read the settings file: {e}"))
    })?;
    parse(cmd, keys, &text, path, chosen)
}

/// Checks the settings file's text, read from `path` (which names it in
/// messages and anchors its relative paths). `cmd` is built
/// (`Command::build`) and `keys` are its keys.
pub fn parse(cmd: &Command, keys: &[Key], text: &str, path: PathBuf, chosen: Chosen) -> Result<SettingsFile, Error> {
    let shown = path.display().to_string();
    let table: toml::Table = toml::from_str(text)
        .map_err(|e| Error::usage(format!("{shown}: not a valid TOML file: {}", e.to_string().trim_end())))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut values = BTreeMap::new();
    for (section, entries) in &table {
        let Some(entries) = entries.as_table() else {
            return Err(unknown_key(&shown, keys, None, section));
        };
        for (name, value) in entries {
            let Some(key) = keys.iter().find(|k| k.section == *section && k.name == *name) else {
                return Err(unknown_key(&shown, keys, Some(section), name));
            };
            if let (toml::Value::Array(items), false) = (value, key.multiple) {
                let written: Vec<String> = items.iter().map(toml_text).collect();
                let one = written.first().map_or("VALUE", String::as_str);
                return Err(Error::usage(format!(
                    "{shown}: key {}: takes one value, not a list ([{}]), as --{} does; write `{} = {one}`, or \
                     remove the key",
                    key.full(),
                    written.join(", "),
                    key.name,
                    key.name
                )));
            }
            let mut raw = scalars(value).ok_or_else(|| {
                Error::usage(format!(
                    "{shown}: key {}: expected a string, number, boolean or a list of them, as for --{}",
                    key.full(),
                    key.name
                ))
            })?;
            if key.path {
                raw = raw.into_iter().map(|p| dir.join(p).display().to_string()).collect();
            }
            for value in &raw {
                check_value(cmd, key, value).map_err(|why| {
                    Error::usage(format!(
                        "{shown}: key {}: invalid value {value:?}: {why}; write it as --{} takes it (see --help), \
                         or remove the key",
                        key.full(),
                        key.name
                    ))
                })?;
            }
            if let Some((_, why)) = NOT_TRUE_IN_FILE.iter().find(|(id, _)| *id == key.id)
                && raw.iter().any(|v| v == "true")
            {
                return Err(Error::usage(format!("{shown}: key {} = true is not allowed: {why}", key.full())));
            }
            values.insert(key.id.clone(), raw);
        }
    }
    Ok(SettingsFile { path, chosen, values })
}

/// A value as the file would write it (a string quoted), for messages.
fn toml_text(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => format!("{s:?}"),
        other => scalars(other).map_or_else(|| "...".to_owned(), |v| v.join(", ")),
    }
}

/// A TOML value as the strings typed after its flag; None for a table or
/// a date.
fn scalars(value: &toml::Value) -> Option<Vec<String>> {
    match value {
        toml::Value::String(s) => Some(vec![s.clone()]),
        toml::Value::Integer(i) => Some(vec![i.to_string()]),
        toml::Value::Float(f) => Some(vec![f.to_string()]),
        toml::Value::Boolean(b) => Some(vec![b.to_string()]),
        toml::Value::Array(items) => {
            items.iter().map(|v| scalars(v).filter(|s| s.len() == 1).map(|mut s| s.remove(0))).collect()
        }
        _ => None,
    }
}

/// The error for a key the file may not hold: why, for a credential; else
/// the closest known key.
fn unknown_key(file: &str, keys: &[Key], section: Option<&str>, name: &str) -> Error {
    let full = section.map_or_else(|| name.to_owned(), |s| format!("{s}.{name}"));
    let snake = name.replace('-', "_");
    if let Some((_, why)) = NOT_SETTINGS.iter().find(|(id, _)| *id == snake) {
        return Error::usage(format!("{file}: key {full} is not allowed: {why}"));
    }
    if is_secret(name) {
        return Error::usage(format!(
            "{file}: key {full} is not allowed: a secret never goes in a settings file; a registry password \
             comes from `docker login`, REGISTRY_PASSWORD or --password-stdin, a cluster token from \
             --token-file or KUBE_TOKEN"
        ));
    }
    let hint = match closest(keys, section, name) {
        Some(known) => format!("did you mean {known}?"),
        None => "`cargo xtask config` lists every key".to_owned(),
    };
    let what = if section.is_none() { "unknown section or top-level key" } else { "unknown key" };
    Error::usage(format!("{file}: {what} {full}: {hint} (keys are [section] then the flag's name, as in --help)"))
}

/// The known key nearest to what was written: the same name in another
/// section, else the most similar `section.name` (clap's measure and
/// threshold for misspelt flags).
fn closest(keys: &[Key], section: Option<&str>, name: &str) -> Option<String> {
    let snake = name.replace('_', "-");
    if let Some(k) = keys.iter().find(|k| k.name == snake || k.section == name) {
        return Some(if k.name == snake { k.full() } else { format!("[{}]", k.section) });
    }
    let written = section.map_or_else(|| name.to_owned(), |s| format!("{s}.{snake}"));
    keys.iter()
        .map(|k| {
            let full = k.full();
            (strsim::jaro(&written, &full).max(strsim::jaro(&snake, &k.name)), full)
        })
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, full)| full)
}

/// Checks one raw value with the flag's own value parser (`cmd` built), in
/// every command that has the flag (the same flag may be parsed differently: `image`'s
/// `--image` is an image reference).
fn check_value(cmd: &Command, key: &Key, value: &str) -> Result<(), String> {
    for sub in cmd.get_subcommands() {
        let Some(arg) = sub.get_arguments().find(|a| a.get_id() == key.id.as_str()) else { continue };
        let parts: Vec<&str> = match arg.get_value_delimiter() {
            Some(d) => value.split(d).collect(),
            None => vec![value],
        };
        // The flag's parser alone, in a command of its own: clap's parsers
        // run only inside a parse.
        let check = Command::new(sub.get_name().to_owned())
            .no_binary_name(true)
            .arg(Arg::new("value").long("value").action(ArgAction::Set).value_parser(arg.get_value_parser().clone()));
        for part in parts {
            check.clone().try_get_matches_from([format!("--value={part}")]).map_err(|e| reason(&e))?;
        }
    }
    Ok(())
}

/// What a clap value error says is wrong, without its "error:" frame.
fn reason(e: &clap::Error) -> String {
    if let Some(ContextValue::Strings(valid)) = e.get(ContextKind::ValidValue) {
        return format!("expected one of {}", valid.join(", "));
    }
    if let Some(source) = std::error::Error::source(e) {
        return source.to_string();
    }
    let text = e.render().to_string();
    text.lines().next().unwrap_or_default().trim_start_matches("error: ").to_owned()
}

/// Checks every JOB_TEST_<FLAG> that is set, naming the variable.
fn check_environment(cmd: &Command, keys: &[Key]) -> Result<(), Error> {
    for key in keys {
        let Some(value) = std::env::var_os(&key.env).filter(|v| !v.is_empty()) else { continue };
        let value = value.to_string_lossy();
        check_value(cmd, key, &value).map_err(|why| {
            Error::usage(format!(
                "environment variable {}: invalid value {value:?}: {why}; set it as --{} takes it, or unset it",
                key.env, key.name
            ))
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, FromArgMatches};

    use super::*;
    use crate::flags::Xtask;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn keys_come_from_the_groups_with_their_headings() {
        let keys = keys(&Xtask::command());
        let full: Vec<String> = keys.iter().map(Key::full).collect();
        for expected in [
            "job.namespace",
            "job.image",
            "worker.fail-probability",
            "cluster.context",
            "registry.upload-mode",
            "image.builder",
            "authorization.pod-verbs",
        ] {
            assert!(full.iter().any(|k| k == expected), "{expected} missing from {full:?}");
        }
        assert!(!full.iter().any(|k| k.ends_with("username") || k.ends_with("password-stdin")), "{full:?}");
        assert!(!full.iter().any(|k| k.ends_with(".config") || k.ends_with(".output")), "{full:?}");
        let kubeconfig = keys.iter().find(|k| k.id == "kubeconfig").unwrap();
        assert!(kubeconfig.path && kubeconfig.env == "JOB_TEST_KUBECONFIG");
        assert!(!keys.iter().find(|k| k.id == "namespace").unwrap().path);
    }

    #[test]
    fn the_config_flag_is_found_before_clap_parses() {
        assert_eq!(config_flag(&args(&["x", "render", "--config", "a.toml"])), Some("a.toml".into()));
        assert_eq!(config_flag(&args(&["x", "--config=b.toml", "render"])), Some("b.toml".into()));
        assert_eq!(config_flag(&args(&["x", "test", "--", "--config", "c"])), None);
    }

    #[test]
    fn a_flag_is_named_only_whole() {
        assert!(names_flag("--image x: not pinned", "image"));
        assert!(names_flag("bad --cpu", "cpu"));
        assert!(!names_flag("--image-pull-secret x: bad", "image"));
    }

    #[test]
    fn the_closest_key_is_suggested() {
        let keys = keys(&Xtask::command());
        assert_eq!(closest(&keys, Some("job"), "namspace").as_deref(), Some("job.namespace"));
        assert_eq!(closest(&keys, Some("job"), "context").as_deref(), Some("cluster.context"));
        assert_eq!(closest(&keys, Some("worker"), "fail_probability").as_deref(), Some("worker.fail-probability"));
        assert_eq!(closest(&keys, None, "namespace").as_deref(), Some("job.namespace"));
        assert_eq!(closest(&keys, None, "cluster").as_deref(), Some("[cluster]"));
        assert_eq!(closest(&keys, Some("job"), "zzzzzzzz"), None);
    }

    fn with_file(values: &[(&str, &[&str])]) -> (Settings, Command) {
        let cmd = Xtask::command();
        let values = values.iter().map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect())).collect();
        let settings = Settings {
            keys: keys(&cmd),
            file: Some(SettingsFile { path: "s.toml".into(), chosen: Chosen::Flag, values }),
        };
        let cmd = settings.apply(cmd);
        (settings, cmd)
    }

    /// `[job] suspend = true` becomes the flag's default, so a flag must be
    /// able to say false: every boolean key takes `=false` (a flag added to
    /// a group later too), and bare still means true.
    #[test]
    fn a_flag_turns_off_every_switch_the_file_turns_on() {
        let mut built = Xtask::command();
        built.build();
        let config = built.find_subcommand("config").unwrap();
        let (settings, _) = with_file(&[]);
        let switches: Vec<&Key> = settings
            .keys
            .iter()
            .filter(|k| {
                let arg = config.get_arguments().find(|a| a.get_id() == k.id.as_str()).unwrap();
                arg.get_value_parser().type_id() == TypeId::of::<bool>()
            })
            .collect();
        let names: Vec<&str> = switches.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "suspend",
                "no-network-policy",
                "cluster-wide",
                "insecure-skip-tls-verify",
                "insecure-registry",
                "load",
                "sbom"
            ]
        );
        for key in switches {
            let (settings, cmd) = with_file(&[(&key.id, &["true"])]);
            let parse = |args: &[&str]| {
                let m = cmd.clone().try_get_matches_from(["x", "config"].iter().chain(args)).unwrap_or_else(|e| {
                    panic!("config {args:?}: {e}");
                });
                let (_, sub) = m.subcommand().unwrap();
                (*sub.get_one::<bool>(&key.id).unwrap(), settings.source(sub, key).unwrap())
            };
            let flag = format!("--{}", key.name);
            assert_eq!(parse(&[]), (true, Source::File("s.toml".into(), key.full())), "{flag}");
            assert_eq!(parse(&[&format!("{flag}=false")]), (false, Source::Flag(flag.clone())));
            assert_eq!(parse(&[&format!("{flag}=true")]), (true, Source::Flag(flag.clone())));
            // Bare, and not taking the next word as its value.
            assert_eq!(parse(&[&flag, "--name", "x"]), (true, Source::Flag(flag.clone())));
        }
    }

    /// `pods -n` is the namespace `kubectl get pods` would list; the file's
    /// `[job] namespace` still reaches every command where it is the Job's.
    #[test]
    fn the_settings_do_not_reach_a_flag_that_means_something_else() {
        let (_, cmd) = with_file(&[("namespace", &["from-file"]), ("name", &["file-job"])]);
        let parsed = |args: &[&str]| {
            let m = cmd.clone().try_get_matches_from(["x"].iter().chain(args)).unwrap();
            let mut flags = Xtask::from_arg_matches(&m).unwrap();
            typed_only(&mut flags.command, &m);
            flags.command
        };
        let Subcommand::Pods(pods) = parsed(&["pods"]) else { unreachable!() };
        assert_eq!(pods.namespace, None);
        let Subcommand::Pods(pods) = parsed(&["pods", "-n", "typed"]) else { unreachable!() };
        assert_eq!(pods.namespace.as_deref(), Some("typed"));
        for sub in ["watch", "logs", "delete", "auth"] {
            let m = cmd.clone().try_get_matches_from(["x", sub]).unwrap();
            assert_eq!(m.subcommand().unwrap().1.get_one::<String>("namespace").unwrap(), "from-file", "{sub}");
        }
        // `delete` deletes the settings' Job from the cluster; `delete
        // --local` every Job's containers unless --name is typed.
        let Subcommand::Delete(delete) = parsed(&["delete"]) else { unreachable!() };
        assert_eq!(delete.name.as_deref(), Some("file-job"));
        let Subcommand::Delete(delete) = parsed(&["delete", "--local"]) else { unreachable!() };
        assert_eq!(delete.name, None);
        let Subcommand::Delete(delete) = parsed(&["delete", "--local", "--name", "typed"]) else { unreachable!() };
        assert_eq!(delete.name.as_deref(), Some("typed"));
    }

    /// The bench's child processes (and the tests') see no JOB_TEST_<FLAG>
    /// of this machine and an empty settings file, whatever else is set.
    #[test]
    fn a_child_without_settings_loses_every_job_test_variable() {
        let mut cmd = std::process::Command::new("xtask");
        let names = ["JOB_TEST_NAME", "JOB_TEST_CONFIG", "JOB_TEST_SUSPEND", "HOME", "KUBECONFIG"];
        remove_settings(&mut cmd, names.into_iter().map(OsString::from));
        let mut envs: Vec<(String, Option<String>)> = cmd
            .get_envs()
            .map(|(k, v)| (k.to_string_lossy().into_owned(), v.map(|v| v.to_string_lossy().into_owned())))
            .collect();
        envs.sort();
        assert_eq!(
            envs,
            [
                ("JOB_TEST_CONFIG".to_owned(), Some("/dev/null".to_owned())),
                ("JOB_TEST_NAME".to_owned(), None),
                ("JOB_TEST_SUSPEND".to_owned(), None),
            ]
        );
    }

    /// A rule's value holds commas (`indexes=0,2-3,count=1`): the file's
    /// list and JOB_TEST_SUCCESS_POLICY keep each rule whole, `;` between
    /// rules in one variable, as on the command line.
    #[test]
    fn list_keys_whose_values_hold_commas_keep_each_rule_whole() {
        let keys = keys(&Xtask::command());
        for (id, full) in [("success_policy", "job.success-policy"), ("pod_failure_rule", "job.pod-failure-rule")] {
            let key = keys.iter().find(|k| k.id == id).unwrap();
            assert_eq!((key.full().as_str(), key.multiple, key.separator), (full, true, ';'));
        }
        assert_eq!(keys.iter().find(|k| k.id == "pod_verbs").unwrap().separator, ',');
        let rules: &[&str] = &["indexes=0,2-3,count=1", "count=4"];
        let failure: &[&str] = &["FailJob:exit=1,3-5", "Ignore:condition=DisruptionTarget"];
        let (settings, cmd) = with_file(&[("success_policy", rules), ("pod_failure_rule", failure)]);
        let m = cmd.clone().try_get_matches_from(["x", "render"]).unwrap();
        let (_, sub) = m.subcommand().unwrap();
        let got: Vec<&String> = sub.get_many::<String>("success_policy").unwrap().collect();
        assert_eq!(got, rules);
        let got: Vec<&String> = sub.get_many::<String>("pod_failure_rule").unwrap().collect();
        assert_eq!(got, failure);
        let key = settings.keys.iter().find(|k| k.id == "success_policy").unwrap();
        assert_eq!(settings.source(sub, key), Some(Source::File("s.toml".into(), "job.success-policy".into())));
        // The flag replaces the file's rules; `;` separates rules in one value.
        let m = cmd.try_get_matches_from(["x", "render", "--success-policy", "count=1;indexes=1,3"]).unwrap();
        let (_, sub) = m.subcommand().unwrap();
        let got: Vec<&String> = sub.get_many::<String>("success_policy").unwrap().collect();
        assert_eq!(got, ["count=1", "indexes=1,3"]);
    }

    #[test]
    fn file_values_become_defaults_that_the_environment_and_flags_override() {
        let cmd = Xtask::command();
        let mut values = BTreeMap::new();
        values.insert("namespace".to_owned(), vec!["from-file".to_owned()]);
        values.insert("pod_verbs".to_owned(), vec!["get".to_owned(), "list".to_owned()]);
        let settings = Settings {
            keys: keys(&cmd),
            file: Some(SettingsFile { path: "s.toml".into(), chosen: Chosen::Flag, values }),
        };
        let cmd = settings.apply(cmd);
        let m = cmd.clone().try_get_matches_from(["x", "render"]).unwrap();
        let (_, sub) = m.subcommand().unwrap();
        assert_eq!(sub.get_one::<String>("namespace").unwrap(), "from-file");
        let verbs: Vec<&String> = sub.get_many::<String>("pod_verbs").unwrap().collect();
        assert_eq!(verbs, ["get", "list"]);
        let ns = settings.keys.iter().find(|k| k.id == "namespace").unwrap();
        assert_eq!(settings.source(sub, ns), Some(Source::File("s.toml".into(), "job.namespace".into())));
        let m = cmd.try_get_matches_from(["x", "watch", "-n", "flag"]).unwrap();
        let (_, sub) = m.subcommand().unwrap();
        assert_eq!(sub.get_one::<String>("namespace").unwrap(), "flag");
        assert_eq!(settings.source(sub, ns), Some(Source::Flag("--namespace".into())));
    }
}
