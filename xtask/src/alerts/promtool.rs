//! The Prometheus rule engine, run as `promtool test rules`: the real
//! evaluation of the user's rules (their `for`, staleness, `time()`), not a
//! re-implementation of PromQL.
//!
//! promtool's unit tests only compare: they print what an expression gave
//! when it differs from what was expected. So the drill asks, at every
//! evaluation, for the alerts (`ALERTS`, which the rule evaluations write)
//! counted by name and state and labelled with the evaluation's number,
//! expects none, and reads promtool's account of what it got instead.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;
use xshell::{Shell, cmd};

use crate::Error;

/// An alert's state at one evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Pending,
    Firing,
}

/// Checks each rule file with promtool; a file it refuses is a usage error
/// (exit 2) carrying promtool's own words, which name the file and line.
pub fn check_rules(files: &[PathBuf]) -> Result<()> {
    let sh = Shell::new()?;
    for file in files {
        if !file.is_file() {
            return Err(Error::usage(format!("--rules {}: no such file", file.display())).into());
        }
        let output = cmd!(sh, "promtool check rules {file}").quiet().ignore_status().output()?;
        if !output.status.success() {
            let said = String::from_utf8_lossy(&output.stderr).to_string() + &String::from_utf8_lossy(&output.stdout);
            let lines: Vec<&str> = said
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && *l != "FAILED:" && !l.starts_with("Checking "))
                .collect();
            return Err(Error::usage(format!(
                "--rules {}: promtool refused the rules: {}; fix the file (promtool check rules {} says the same)",
                file.display(),
                lines.join("; "),
                file.display()
            ))
            .into());
        }
    }
    Ok(())
}

/// The promtool unit test that replays `series` (scraped every `scrape`
/// seconds) through `rules` (evaluated every `evaluation` seconds) and asks
/// for the alerts at each of `evaluations` evaluations.
fn unit_test(
    rules: &[PathBuf],
    series: &[(String, String)],
    scrape: u64,
    evaluation: u64,
    evaluations: u64,
) -> serde_json::Value {
    let asks: Vec<serde_json::Value> = (0..evaluations)
        .map(|i| {
            serde_json::json!({
                "expr": format!("label_replace(count by (alertname, alertstate) (ALERTS), \"step\", \"{i}\", \"\", \"\")"),
                "eval_time": format!("{}s", i * evaluation),
                "exp_samples": [],
            })
        })
        .collect();
    serde_json::json!({
        "rule_files": rules,
        "evaluation_interval": format!("{evaluation}s"),
        "tests": [{
            "interval": format!("{scrape}s"),
            "input_series": series.iter().map(|(s, v)| serde_json::json!({"series": s, "values": v})).collect::<Vec<_>>(),
            "promql_expr_test": asks,
        }],
    })
}

/// Each alert's state at each evaluation (by evaluation number) where it
/// was pending or firing.
pub type Timeline = BTreeMap<String, BTreeMap<u64, State>>;

/// Runs the drill in promtool, in `dir` (a directory of the caller's).
pub fn replay(
    dir: &Path,
    rules: &[PathBuf],
    series: &[(String, String)],
    scrape: u64,
    evaluation: u64,
    evaluations: u64,
) -> Result<Timeline> {
    let test = dir.join("drill.json");
    let rules: Vec<PathBuf> = rules.iter().map(|r| std::path::absolute(r).unwrap_or_else(|_| r.clone())).collect();
    // JSON is YAML: promtool reads it as its test file.
    let body = serde_json::to_vec_pretty(&unit_test(&rules, series, scrape, evaluation, evaluations))?;
    std::fs::write(&test, body).with_context(|| format!("writing {}", test.display()))?;
    let sh = Shell::new()?;
    let output = cmd!(sh, "promtool test rules {test}").quiet().ignore_status().output()?;
    let said = String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr);
    let timeline = parse(&said);
    if !output.status.success() && timeline.is_empty() {
        anyhow::bail!("promtool test rules {} failed: {}", test.display(), crate::one_line(&said));
    }
    Ok(timeline)
}

/// Reads the alerts out of promtool's report of failed expectations: lines
/// `got: {alertname="A", alertstate="firing", step="3"} 1E+00, {...} 1E+00`.
fn parse(said: &str) -> Timeline {
    let mut timeline = Timeline::new();
    for line in said.lines() {
        let Some(got) = line.trim().strip_prefix("got: ") else { continue };
        for labels in label_sets(got) {
            let (Some(name), Some(state), Some(step)) =
                (labels.get("alertname"), labels.get("alertstate"), labels.get("step"))
            else {
                continue;
            };
            let state = match state.as_str() {
                "pending" => State::Pending,
                "firing" => State::Firing,
                _ => continue,
            };
            if let Ok(step) = step.parse() {
                timeline.entry(name.clone()).or_default().insert(step, state);
            }
        }
    }
    timeline
}

/// The label sets in `{a="x", b="y\"z"} 1E+00, {...} 1E+00`, values
/// unquoted (Go's quoting: backslash escapes).
fn label_sets(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut sets = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '{' {
            continue;
        }
        let mut set = BTreeMap::new();
        loop {
            let name: String =
                chars.by_ref().skip_while(|c| *c == ' ' || *c == ',').take_while(|c| *c != '=').collect();
            if name.is_empty() || name.contains('}') {
                break;
            }
            if chars.next() != Some('"') {
                break;
            }
            let mut value = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
            set.insert(name.trim().to_owned(), value);
            if chars.peek() == Some(&'}') {
                chars.next();
                break;
            }
        }
        sets.push(set);
    }
    sets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn promtools_report_is_read_back() {
        let said = r#"Unit Testing:  drill.json
  FAILED:
    expr: "label_replace(...)", time: 1m,
        exp: nil
        got: {alertname="A", alertstate="firing", step="3"} 1E+00, {alertname="B, \"x\"", alertstate="pending", step="3"} 1E+00
    expr: "label_replace(...)", time: 2m,
        exp: nil
        got: {alertname="A", alertstate="firing", step="4"} 1E+00
"#;
        let t = parse(said);
        assert_eq!(t["A"], BTreeMap::from([(3, State::Firing), (4, State::Firing)]));
        assert_eq!(t["B, \"x\""], BTreeMap::from([(3, State::Pending)]));
    }
}
