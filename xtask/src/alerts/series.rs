//! A Job's timeline as the series kube-state-metrics exposes for it, scraped
//! at a fixed interval: what Prometheus would have stored, written in
//! promtool's expanding notation.
//!
//! The exposition follows kube-state-metrics' Job store
//! (internal/store/job.go), in its own terms:
//! - `kube_job_status_failed` has no `reason` while the Job has no Failed
//!   condition with a reason it knows (BackoffLimitExceeded,
//!   DeadlineExceeded, Evicted); once it has one, that series ends and one
//!   per known reason takes its place, valued 1 for the Job's reason and 0
//!   for the others: a count before, a flag after;
//! - `kube_job_complete` and `kube_job_failed` exist only once the Job has
//!   that condition, one series per `condition` (true, false, unknown), 1
//!   for the condition's status;
//! - every series carries `namespace` and `job_name`, and the scrape adds
//!   `job="kube-state-metrics"`, which the kubernetes-mixin's rules select.
//!
//! A Job's series end when ttlSecondsAfterFinished deletes it: the scrape
//! after that writes a staleness marker, as Prometheus does for a series a
//! target stops exposing.

use std::collections::BTreeMap;

use crate::report::job::{JobReport, JobResult, PodPhase};

/// The scrape job label the kubernetes-mixin's rules select.
pub const SCRAPE_JOB: &str = "kube-state-metrics";

/// Reasons kube-state-metrics gives `kube_job_status_failed` a series of
/// its own for (`jobFailureReasons`).
const KNOWN_FAILURE_REASONS: [&str; 3] = ["BackoffLimitExceeded", "DeadlineExceeded", "Evicted"];

/// The Job's status at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct JobState {
    pub active: i32,
    pub succeeded: i32,
    pub failed: i32,
    pub started: Option<f64>,
    pub completed: Option<f64>,
    /// (type, status, reason) of the conditions added by then.
    pub conditions: Vec<(String, String, String)>,
}

/// When the Job finished, in seconds after its creation.
pub fn finished_at(r: &JobReport) -> Option<f64> {
    r.times.as_ref()?.finished
}

/// When ttlSecondsAfterFinished deletes the Job (and so its series).
pub fn deleted_at(r: &JobReport) -> Option<f64> {
    let times = r.times.as_ref()?;
    Some(times.finished? + times.ttl_seconds_after_finished? as f64)
}

/// The Job's status at `t` seconds after its creation; None when it does
/// not exist (before its creation, after its deletion).
pub fn state_at(r: &JobReport, t: f64) -> Option<JobState> {
    if t < 0.0 || deleted_at(r).is_some_and(|d| t >= d) {
        return None;
    }
    let finished = finished_at(r).is_some_and(|f| t >= f);
    let ended_by = |at: Option<f64>| at.is_some_and(|a| a <= t);
    let history = r.times.as_ref().map(|x| x.status.as_slice()).unwrap_or_default();
    let (active, succeeded, failed) = if finished {
        // The controller's last status: no pod active, the final counts.
        (0, r.succeeded, r.failed_pods)
    } else if !history.is_empty() {
        // What the Job's status said then, as the watch saw it.
        history.iter().take_while(|s| s.at <= t).last().map_or((0, 0, 0), |s| (s.active, s.succeeded, s.failed))
    } else {
        let created = |p: &&crate::report::job::PodRow| p.created_at.is_some_and(|c| c <= t);
        let active = r.pods.iter().filter(created).filter(|p| !ended_by(p.finished_at)).count() as i32;
        let ended = |phase| r.pods.iter().filter(|p| p.phase == phase && ended_by(p.finished_at)).count() as i32;
        (active, ended(PodPhase::Succeeded).min(r.succeeded), ended(PodPhase::Failed).min(r.failed_pods))
    };
    let times = r.times.as_ref();
    let conditions = r
        .conditions
        .iter()
        .filter(|c| c.at.or(finished_at(r)).is_some_and(|a| a <= t))
        .map(|c| (c.kind.clone(), c.status.clone(), c.reason.clone()))
        .collect();
    Some(JobState {
        active,
        succeeded,
        failed,
        started: times.and_then(|x| x.started).filter(|s| *s <= t),
        completed: finished_at(r).filter(|_| finished && r.result == JobResult::Complete),
        conditions,
    })
}

/// A series' identity in PromQL's notation: `name{label="value",...}`.
fn series(name: &str, r: &JobReport, extra: &[(&str, &str)]) -> String {
    let mut labels: Vec<(String, String)> = vec![
        ("job".into(), SCRAPE_JOB.into()),
        ("namespace".into(), r.namespace.clone()),
        ("job_name".into(), r.name.clone()),
    ];
    // An empty label is no label, to Prometheus as here.
    labels.extend(extra.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| (k.to_string(), v.to_string())));
    let body: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={}", quote(v))).collect();
    format!("{name}{{{}}}", body.join(","))
}

/// A label value as PromQL quotes it.
fn quote(v: &str) -> String {
    serde_json::to_string(v).expect("a string serializes")
}

/// Every series kube-state-metrics exposes for the Job in `state`, with
/// its value (times in seconds after the Job's creation: the drill's clock
/// starts there, so `time()` in a rule reads the same way).
pub fn exposition(r: &JobReport, state: &JobState) -> Vec<(String, f64)> {
    let times = r.times.clone().unwrap_or_default();
    let mut out = vec![
        (series("kube_job_info", r, &[]), 1.0),
        (series("kube_job_created", r, &[]), 0.0),
        (series("kube_job_owner", r, &[("owner_kind", ""), ("owner_name", ""), ("owner_is_controller", "")]), 1.0),
        (series("kube_job_spec_completions", r, &[]), f64::from(r.completions)),
        (series("kube_job_status_active", r, &[]), f64::from(state.active)),
        (series("kube_job_status_succeeded", r, &[]), f64::from(state.succeeded)),
    ];
    if let Some(p) = times.parallelism {
        out.push((series("kube_job_spec_parallelism", r, &[]), f64::from(p)));
    }
    if let Some(d) = times.active_deadline_seconds {
        out.push((series("kube_job_spec_active_deadline_seconds", r, &[]), d as f64));
    }
    if let Some(s) = state.started {
        out.push((series("kube_job_status_start_time", r, &[]), s.floor()));
    }
    if let Some(c) = state.completed {
        out.push((series("kube_job_status_completion_time", r, &[]), c.floor()));
    }
    // kube_job_status_failed: a count, until a Failed condition with a known
    // reason turns it into one flag per known reason.
    let failed_reasons: Vec<&str> =
        state.conditions.iter().filter(|(k, _, _)| k == "Failed").map(|(_, _, reason)| reason.as_str()).collect();
    let known = failed_reasons.iter().any(|r| KNOWN_FAILURE_REASONS.contains(r));
    if state.failed > 0 && known {
        for reason in failed_reasons {
            for known in KNOWN_FAILURE_REASONS {
                let flag = if reason == known { 1.0 } else { 0.0 };
                out.push((series("kube_job_status_failed", r, &[("reason", known)]), flag));
            }
        }
    } else {
        out.push((series("kube_job_status_failed", r, &[]), f64::from(state.failed)));
    }
    for (kind, metric) in [("Complete", "kube_job_complete"), ("Failed", "kube_job_failed")] {
        for (_, status, _) in state.conditions.iter().filter(|(k, _, _)| k == kind) {
            for condition in ["true", "false", "unknown"] {
                let value = if status.eq_ignore_ascii_case(condition) { 1.0 } else { 0.0 };
                out.push((series(metric, r, &[("condition", condition)]), value));
            }
        }
    }
    out
}

/// One scrape's sample of a series.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Sample {
    Missing,
    Value(f64),
    Stale,
}

/// The series Prometheus would store scraping the Job every `scrape`
/// seconds from its creation to `horizon`: each with its values in
/// promtool's expanding notation (`_x3 0x4 1 stale`).
pub fn scraped(r: &JobReport, scrape: f64, horizon: f64) -> Vec<(String, String)> {
    let steps = (horizon / scrape).ceil() as usize + 1;
    let mut samples: BTreeMap<String, Vec<Sample>> = BTreeMap::new();
    for k in 0..steps {
        let t = k as f64 * scrape;
        let exposed: BTreeMap<String, f64> =
            state_at(r, t).map(|s| exposition(r, &s).into_iter().collect()).unwrap_or_default();
        for (name, value) in &exposed {
            samples.entry(name.clone()).or_insert_with(|| vec![Sample::Missing; k]).push(Sample::Value(*value));
        }
        for values in samples.values_mut() {
            if values.len() == k {
                // Not exposed now: stale right after it was last exposed.
                let was = values.last().is_some_and(|s| matches!(s, Sample::Value(_)));
                values.push(if was { Sample::Stale } else { Sample::Missing });
            }
        }
    }
    samples.into_iter().map(|(name, values)| (name, notation(&values))).collect()
}

/// promtool's expanding notation, run-length encoded: `_xN` is N missing
/// samples, `VxN` is N+1 samples of V; trailing missing samples are left
/// out.
fn notation(values: &[Sample]) -> String {
    let end = values.iter().rposition(|s| *s != Sample::Missing).map_or(0, |i| i + 1);
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < end {
        let run = values[i..end].iter().take_while(|s| **s == values[i]).count();
        out.push(match values[i] {
            Sample::Missing => format!("_x{run}"),
            Sample::Stale => vec!["stale"; run].join(" "),
            Sample::Value(v) if run == 1 => format!("{v}"),
            Sample::Value(v) => format!("{v}x{}", run - 1),
        });
        i += run;
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_notation_is_promtools() {
        let v = |x| Sample::Value(x);
        let s = [Sample::Missing, Sample::Missing, v(0.0), v(0.0), v(0.0), v(1.0), Sample::Stale, Sample::Missing];
        assert_eq!(notation(&s), "_x2 0x2 1 stale");
        assert_eq!(notation(&[Sample::Missing]), "");
    }
}
