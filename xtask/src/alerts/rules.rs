//! The alerting rules a drill evaluates: the user's files, or the ones
//! shipped in `alerts/job-alerts.yaml` (the kubernetes-mixin's Job alerts).
//! promtool evaluates them; this reads only what the report needs to
//! explain an outcome: each alert's name and `for`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::Error;

/// The shipped rules, as the binary carries them (written out for
/// promtool when no --rules file is given).
pub const DEFAULT_RULES: &str = include_str!("../../../alerts/job-alerts.yaml");
/// Where the shipped rules live in the project.
pub const DEFAULT_RULES_PATH: &str = "alerts/job-alerts.yaml";
/// The shipped alert on failed Jobs.
pub const FAILED_JOB_ALERT: &str = "KubeJobFailed";

#[derive(Deserialize)]
struct RuleFile {
    #[serde(default)]
    groups: Vec<Group>,
}

#[derive(Deserialize)]
struct Group {
    #[serde(default)]
    rules: Vec<Rule>,
}

#[derive(Deserialize)]
struct Rule {
    alert: Option<String>,
    #[serde(rename = "for")]
    hold: Option<String>,
}

/// An alerting rule: its name and how long its expression must hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub name: String,
    pub hold: Duration,
}

/// The alerting rules of a rules file's text, in order.
pub fn alerts_in(text: &str, file: &Path) -> Result<Vec<Alert>> {
    let parsed: RuleFile = serde_saphyr::from_str(text)
        .map_err(|e| Error::usage(format!("--rules {}: not a Prometheus rules file: {e}", file.display())))?;
    let mut alerts = Vec::new();
    for rule in parsed.groups.into_iter().flat_map(|g| g.rules) {
        let Some(name) = rule.alert else { continue };
        let hold = match rule.hold.as_deref() {
            None => Duration::ZERO,
            Some(d) => prometheus_duration(d).ok_or_else(|| {
                Error::usage(format!(
                    "--rules {}: alert {name}: `for: {d}` is not a Prometheus duration",
                    file.display()
                ))
            })?,
        };
        alerts.push(Alert { name, hold });
    }
    Ok(alerts)
}

/// The alerts of the given files, or of the shipped rules (written into
/// `dir` for promtool) when none are given; with the files promtool reads.
pub fn load(files: &[PathBuf], dir: &Path) -> Result<(Vec<PathBuf>, Vec<Alert>)> {
    if files.is_empty() {
        let path = dir.join("job-alerts.yaml");
        std::fs::write(&path, DEFAULT_RULES).with_context(|| format!("writing {}", path.display()))?;
        return Ok((vec![path], alerts_in(DEFAULT_RULES, Path::new(DEFAULT_RULES_PATH))?));
    }
    let mut alerts = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading --rules {}", file.display()))?;
        alerts.extend(alerts_in(&text, file)?);
    }
    Ok((files.to_vec(), alerts))
}

/// The shipped KubeJobFailed's `for`.
pub fn failed_job_hold() -> Duration {
    alerts_in(DEFAULT_RULES, Path::new(DEFAULT_RULES_PATH))
        .ok()
        .and_then(|a| a.into_iter().find(|a| a.name == FAILED_JOB_ALERT))
        .map_or(Duration::ZERO, |a| a.hold)
}

/// Prometheus' default scrape and evaluation interval.
pub const PROMETHEUS_INTERVAL: Duration = Duration::from_secs(60);

/// How long a failed Job must exist for an alert held `hold` to fire: the
/// scrape that sees the failure and the evaluation after it may each come
/// up to an interval late (`window`: one scrape and one evaluation
/// interval), then the expression must hold for `hold`. The
/// ttlSecondsAfterFinished a failure alert needs.
pub fn needed_lifetime(hold: Duration, window: Duration) -> Duration {
    hold + window
}

/// Prometheus's duration notation: units y, w, d, h, m, s, ms, largest
/// first (`1h30m`, `15m`, `500ms`).
pub fn prometheus_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let mut total = 0u64;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let ms = match &rest[..unit_len] {
            "y" => 365 * 86_400_000,
            "w" => 7 * 86_400_000,
            "d" => 86_400_000,
            "h" => 3_600_000,
            "m" => 60_000,
            "s" => 1_000,
            "ms" => 1,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(ms)?)?;
        rest = &rest[unit_len..];
    }
    Some(Duration::from_millis(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_rules_hold_the_mixins_alerts() {
        let alerts = alerts_in(DEFAULT_RULES, Path::new(DEFAULT_RULES_PATH)).unwrap();
        let names: Vec<&str> = alerts.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["KubeJobFailed", "KubeJobNotCompleted"]);
        assert_eq!(failed_job_hold(), Duration::from_secs(15 * 60));
    }

    #[test]
    fn prometheus_durations() {
        assert_eq!(prometheus_duration("15m"), Some(Duration::from_secs(900)));
        assert_eq!(prometheus_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(prometheus_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(prometheus_duration("1d"), Some(Duration::from_secs(86_400)));
        for bad in ["", "15", "m", "1.5h", "15 m"] {
            assert_eq!(prometheus_duration(bad), None, "{bad}");
        }
    }
}
