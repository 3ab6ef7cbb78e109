//! `cargo xtask config`: every setting's effective value and where it came
//! from (a flag, a JOB_TEST_ variable, FILE:key, the default), secrets
//! masked; the Job and authorization values checked as `render` checks them.

use std::fmt;
use std::path::PathBuf;

use anyhow::Result;
use clap::ArgMatches;
use serde::Serialize;

use super::{CONFIG_ENV, Chosen, FILE_NAME, MASK, Settings, Source, is_secret};
use crate::flags::ConfigFlags;
use crate::report::Reporter;

/// What `cargo xtask config` prints.
#[derive(Debug, Serialize)]
pub struct Effective {
    /// The settings file read, if any.
    pub file: Option<PathBuf>,
    /// How it was chosen.
    pub file_chosen_by: Option<Chosen>,
    pub settings: Vec<Setting>,
    /// Credentials the environment holds, masked.
    pub credentials: Vec<Setting>,
}

#[derive(Debug, Serialize)]
pub struct Setting {
    /// `section.name`.
    pub key: String,
    /// The flag or variable that sets it.
    pub flag: String,
    /// As it would be typed after the flag; None when unset (the command
    /// decides at run time, see its --help).
    pub value: Option<String>,
    /// flag, environment, file or default.
    pub source: &'static str,
    /// The flag, the variable, or FILE:key.
    pub from: Option<String>,
}

/// `cargo xtask config`: every setting's effective value and source. The
/// Job and authorization values are checked as `render` checks them, so a
/// bad one is found here and named with where it came from.
pub fn run(flags: &ConfigFlags, settings: &Settings, matches: &ArgMatches, out: &Reporter) -> Result<()> {
    use crate::manifest::params::{self, UnpinnedImage};
    params::rendering(&flags.job, &flags.rbac, false, UnpinnedImage::Quiet)?;
    let settings_rows = settings
        .keys
        .iter()
        .map(|key| {
            let value =
                matches.ids().any(|id| id.as_str() == key.id).then(|| matches.get_raw(&key.id)).flatten().map(|raw| {
                    raw.map(|v| v.to_string_lossy().into_owned()).collect::<Vec<_>>().join(&key.separator.to_string())
                });
            let source = settings.source(matches, key).unwrap_or(Source::Default);
            let secret = is_secret(&key.name);
            Setting {
                key: key.full(),
                flag: format!("--{}", key.name),
                value: value.map(|v| if secret { MASK.to_owned() } else { v }),
                source: match source {
                    Source::Flag(_) => "flag",
                    Source::Environment(_) => "environment",
                    Source::File(..) => "file",
                    Source::Default => "default",
                },
                from: (source != Source::Default).then(|| match source {
                    Source::Flag(flag) => flag,
                    Source::Environment(name) => name,
                    other => other.to_string(),
                }),
            }
        })
        .collect();
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let credential = |key: &str, name: &str, secret: bool| {
        let value = env(name);
        Setting {
            key: key.to_owned(),
            flag: name.to_owned(),
            source: if value.is_some() { "environment" } else { "default" },
            from: value.is_some().then(|| name.to_owned()),
            value: value.map(|v| if secret { MASK.to_owned() } else { v }),
        }
    };
    let effective = Effective {
        file: settings.file.as_ref().map(|f| f.path.clone()),
        file_chosen_by: settings.file.as_ref().map(|f| f.chosen),
        settings: settings_rows,
        credentials: vec![
            credential("registry.username", "REGISTRY_USERNAME", false),
            credential("registry.password", "REGISTRY_PASSWORD", true),
            credential("cluster.token", crate::cluster::TOKEN_ENV, true),
        ],
    };
    out.result(&effective);
    Ok(())
}

impl fmt::Display for Effective {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.file_chosen_by) {
            (Some(path), Some(chosen)) => writeln!(f, "settings file: {} (from {chosen})", path.display())?,
            _ => writeln!(
                f,
                "settings file: none (no {FILE_NAME} in the project root; --config FILE or {CONFIG_ENV} names one)"
            )?,
        }
        let rows: Vec<&Setting> = self.settings.iter().chain(&self.credentials).collect();
        let key_width = rows.iter().map(|r| r.key.len()).max().unwrap_or(0);
        let value_width = rows.iter().map(|r| r.value.as_deref().map_or(7, str::len)).max().unwrap_or(0).min(40);
        let line = |f: &mut fmt::Formatter<'_>, r: &Setting| {
            let value = r.value.as_deref().unwrap_or("(unset)");
            let from = match (&r.from, r.source) {
                (Some(from), "flag") => format!("flag {from}"),
                (Some(from), "environment") => format!("environment variable {from}"),
                (Some(from), _) => from.clone(),
                (None, _) => "default".to_owned(),
            };
            writeln!(f, "  {:key_width$}  {value:value_width$}  {from}", r.key)
        };
        writeln!(f, "\n  {:key_width$}  {:value_width$}  FROM", "KEY", "VALUE")?;
        for r in &self.settings {
            line(f, r)?;
        }
        writeln!(f, "\ncredentials (never read from the settings file; secrets shown as {MASK}):")?;
        for r in &self.credentials {
            line(f, r)?;
        }
        write!(f, "\nprecedence: flag > environment (JOB_TEST_<FLAG>) > settings file > default")
    }
}
