//! `cargo xtask watch`: follow a Job and its pods with watches (not
//! polling) until the Job is Complete or Failed, and report what the
//! retries did.
//!
//! kube-rs's watcher resumes from the last resourceVersion when a watch
//! stream drops and lists again when the server says the version is gone
//! (410). The verdict is announced as soon as the Job controller decides it
//! (the SuccessCriteriaMet / FailureTarget conditions come before Complete /
//! Failed while the last pods terminate, "Jobs" documentation, "Job
//! termination and cleanup").

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::Result;
use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

use super::{Attempt, Cluster, explain, job_pods_selector};
use crate::flags::WatchFlags;
use crate::report::Reporter;
use crate::{InvalidInput, Remote};

/// The Job ran and failed: exit code 1.
#[derive(Debug, thiserror::Error)]
#[error("job.batch/{name} failed: {reason}")]
pub struct JobFailed {
    pub name: String,
    pub reason: String,
}

/// `--timeout` ran out: exit code 5.
#[derive(Debug, thiserror::Error)]
#[error("gave up after {0}: the Job had not finished (it goes on in the cluster)")]
pub struct TimedOut(pub String);

/// A true condition of this type, with its reason and message.
fn condition(job: &Job, kind: &str) -> Option<(String, String)> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind && c.status == "True")
        .map(|c| (c.reason.clone().unwrap_or_default(), c.message.clone().unwrap_or_default()))
}

/// Complete (reason, message) when the Job has finished successfully.
pub fn is_job_complete(job: &Job) -> Option<(String, String)> {
    condition(job, "Complete")
}

/// kube-rs has `is_job_completed` but nothing for failure: the reason
/// (BackoffLimitExceeded, DeadlineExceeded, PodFailurePolicy,
/// FailedIndexes, MaxFailedIndexesExceeded) and message of a failed Job.
pub fn is_job_failed(job: &Job) -> Option<(String, String)> {
    condition(job, "Failed")
}

/// The early verdict, before the last pods have terminated.
fn early_verdict(job: &Job) -> Option<(bool, String)> {
    if let Some((reason, _)) = condition(job, "FailureTarget") {
        return Some((false, reason));
    }
    condition(job, "SuccessCriteriaMet").map(|(reason, _)| (true, reason))
}

/// What one pod did, for the table and the report.
#[derive(Debug, Clone, PartialEq)]
pub struct PodRow {
    pub name: String,
    pub phase: String,
    pub index: Option<String>,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub restarts: i32,
    pub seconds: Option<f64>,
    /// Exit codes of earlier runs of the container (OnFailure restarts).
    pub last_exit_code: Option<i32>,
}

impl PodRow {
    /// The exit code that failed it: this run's, else the previous run's
    /// (a restarted container now running); `-` when none is known.
    fn failed_exit_code(&self) -> String {
        self.exit_code.or(self.last_exit_code).map_or("-".into(), |c| c.to_string())
    }
}

fn pod_row(pod: &Pod) -> PodRow {
    let status = pod.status.clone().unwrap_or_default();
    let container = status.container_statuses.as_ref().and_then(|c| c.first().cloned());
    let terminated = container.as_ref().and_then(|c| c.state.as_ref()).and_then(|s| s.terminated.clone());
    let last = container.as_ref().and_then(|c| c.last_state.as_ref()).and_then(|s| s.terminated.clone());
    let started = status.start_time.as_ref().map(|t| t.0);
    let finished = terminated.as_ref().and_then(|t| t.finished_at.as_ref()).map(|t| t.0);
    let seconds = match (started, finished) {
        (Some(s), Some(f)) => Some((f.as_second() - s.as_second()) as f64),
        (Some(s), None) => Some((jiff::Timestamp::now().as_second() - s.as_second()).max(0) as f64),
        _ => None,
    };
    PodRow {
        name: pod.name_any(),
        phase: status.phase.clone().unwrap_or_else(|| "Pending".into()),
        index: pod.annotations().get("batch.kubernetes.io/job-completion-index").cloned(),
        exit_code: terminated.as_ref().map(|t| t.exit_code),
        reason: terminated.as_ref().and_then(|t| t.reason.clone()).or_else(|| {
            container
                .as_ref()
                .and_then(|c| c.state.as_ref())
                .and_then(|s| s.waiting.as_ref())
                .and_then(|w| w.reason.clone())
        }),
        message: terminated.as_ref().and_then(|t| t.message.clone()).map(|m| m.trim().to_owned()),
        restarts: container.as_ref().map_or(0, |c| c.restart_count),
        seconds,
        last_exit_code: last.map(|t| t.exit_code),
    }
}

/// Failed runs listed one by one in the text report; the rest are
/// summarised by exit code.
const FAILED_LISTED: usize = 10;

/// The final report.
#[derive(Debug, Clone)]
pub struct Report {
    pub name: String,
    pub namespace: String,
    pub complete: bool,
    pub reason: String,
    pub message: String,
    pub succeeded: i32,
    pub completions: i32,
    pub failed_pods: i32,
    pub pods: Vec<PodRow>,
    pub seconds: Option<f64>,
    pub configured_probability: Option<f64>,
    /// Runs that ended, and how many of them failed.
    pub runs: i32,
    pub failed_runs: i32,
}

impl Report {
    fn new(job: &Job, pods: &BTreeMap<String, Pod>) -> Report {
        let status = job.status.clone().unwrap_or_default();
        let spec = job.spec.clone().unwrap_or_default();
        let (complete, reason, message) = match (is_job_complete(job), is_job_failed(job)) {
            (Some((r, m)), _) => (true, if r.is_empty() { "Complete".into() } else { r }, m),
            (None, Some((r, m))) => (false, r, m),
            (None, None) => (false, String::new(), String::new()),
        };
        let rows: Vec<PodRow> = pods.values().map(pod_row).collect();
        let restarts: i32 = rows.iter().map(|r| r.restarts).sum();
        let failed_pods = status.failed.unwrap_or(0);
        let succeeded = status.succeeded.unwrap_or(0);
        let seconds = match (status.start_time.as_ref(), status.completion_time.as_ref()) {
            (Some(s), Some(c)) => Some((c.0.as_second() - s.0.as_second()) as f64),
            (Some(s), None) => job_finished_at(job).map(|f| (f - s.0.as_second()) as f64),
            _ => None,
        };
        let configured_probability = spec
            .template
            .spec
            .as_ref()
            .and_then(|p| p.containers.first())
            .and_then(|c| c.env.as_ref())
            .and_then(|env| env.iter().find(|e| e.name == "FAIL_PROBABILITY"))
            .and_then(|e| e.value.as_deref())
            .and_then(|v| v.parse().ok());
        Report {
            name: job.name_any(),
            namespace: job.namespace().unwrap_or_default(),
            complete,
            reason,
            message,
            succeeded,
            completions: spec.completions.unwrap_or(1),
            failed_pods,
            seconds,
            configured_probability,
            // Failed pods (Never) and container restarts (OnFailure) are
            // failed runs; succeeded pods are the successful ones.
            runs: succeeded + failed_pods + restarts,
            failed_runs: failed_pods + restarts,
            pods: rows,
        }
    }

    /// Ok when the Job completed; a failed Job is an error (exit code 1).
    pub fn verdict(&self) -> Result<()> {
        if self.complete {
            Ok(())
        } else {
            Err(JobFailed { name: self.name.clone(), reason: self.reason.clone() }.into())
        }
    }

    pub fn text(&self) -> String {
        let verdict = if self.complete { "Complete" } else { "Failed" };
        let mut t = format!("job.batch/{} {verdict}", self.name);
        if !self.complete {
            t += &format!(": {}", self.reason);
        }
        if !self.message.is_empty() {
            t += &format!(" ({})", self.message);
        }
        t += &format!(
            "\n  succeeded {} of {}, failed pods {}{}",
            self.succeeded,
            self.completions,
            self.failed_pods,
            self.seconds.map_or(String::new(), |s| format!(", took {}", crate::report::human_seconds(s)))
        );
        let failed: Vec<&PodRow> = self
            .pods
            .iter()
            .filter(|p| p.phase == "Failed" || p.restarts > 0 || p.exit_code.is_some_and(|c| c != 0))
            .collect();
        if !failed.is_empty() {
            t += "\n  failed runs:";
            for p in failed.iter().take(FAILED_LISTED) {
                t += &format!(
                    "\n    {}  exit {}  {}{}{}",
                    p.name,
                    p.failed_exit_code(),
                    p.reason.as_deref().unwrap_or("-"),
                    if p.restarts > 0 { format!("  restarts {}", p.restarts) } else { String::new() },
                    p.message.as_deref().map_or(String::new(), |m| format!("  {m}"))
                );
            }
            if failed.len() > FAILED_LISTED {
                // The rest by exit code, most common first.
                let mut codes: BTreeMap<String, usize> = BTreeMap::new();
                for p in &failed[FAILED_LISTED..] {
                    *codes.entry(p.failed_exit_code()).or_default() += 1;
                }
                let mut codes: Vec<_> = codes.into_iter().collect();
                codes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                t += &format!(
                    "\n    and {} more (exit {}); `--output json` lists every pod",
                    failed.len() - FAILED_LISTED,
                    codes.iter().map(|(c, n)| format!("{c} ×{n}")).collect::<Vec<_>>().join(", ")
                );
            }
        }
        if self.runs > 0 {
            t += &format!(
                "\n  observed failure rate {} of {} runs = {:.0}%{}",
                self.failed_runs,
                self.runs,
                100.0 * f64::from(self.failed_runs) / f64::from(self.runs),
                self.configured_probability.map_or(String::new(), |p| format!(" (configured FAIL_PROBABILITY {p})"))
            );
        }
        t
    }

    pub fn json(&self) -> serde_json::Value {
        json!({
            "job": self.name, "namespace": self.namespace,
            "result": if self.complete { "Complete" } else { "Failed" },
            "reason": self.reason, "message": self.message,
            "succeeded": self.succeeded, "completions": self.completions, "failed_pods": self.failed_pods,
            "seconds": self.seconds,
            "runs": self.runs, "failed_runs": self.failed_runs,
            "configured_probability": self.configured_probability,
            "pods": self.pods.iter().map(|p| json!({
                "name": p.name, "phase": p.phase, "index": p.index, "exit_code": p.exit_code,
                "reason": p.reason, "message": p.message, "restarts": p.restarts,
            })).collect::<Vec<_>>(),
        })
    }
}

/// When a failed Job was marked failed (it has no completionTime).
fn job_finished_at(job: &Job) -> Option<i64> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Failed")
        .and_then(|c| c.last_transition_time.as_ref())
        .map(|t| t.0.as_second())
}

pub fn run(flags: &WatchFlags, out: &Reporter) -> Result<()> {
    let timeout = parse_timeout(flags.timeout.as_deref())?;
    crate::runtime()?.block_on(async {
        let cluster = super::connect(&flags.job.cluster, out).await?;
        let report = watch(&cluster, &flags.job.name, &flags.job.namespace, timeout, out).await?;
        finish(&report, out)
    })
}

pub fn parse_timeout(t: Option<&str>) -> Result<Option<Duration>> {
    t.map(|t| {
        humantime::parse_duration(t)
            .map_err(|e| InvalidInput(format!("--timeout {t}: not a duration ({e}); e.g. 10m")).into())
    })
    .transpose()
}

/// Prints the report; a failed Job is an error (exit code 1).
pub fn finish(report: &Report, out: &Reporter) -> Result<()> {
    out.result(report.text(), &report.json());
    report.verdict()
}

enum Update {
    Job(Box<watcher::Event<Job>>),
    Pod(Box<watcher::Event<Pod>>),
}

/// Follows the Job to its end.
pub async fn watch(
    cluster: &Cluster,
    name: &str,
    namespace: &str,
    timeout: Option<Duration>,
    out: &Reporter,
) -> Result<Report> {
    let jobs: Api<Job> = Api::namespaced(cluster.client.clone(), namespace);
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), namespace);
    let pods_api = pods.clone();
    // A plain GET first: a missing Job or refused credentials are reported
    // at once and clearly, not as watch retries.
    let first = super::get_job(cluster, name, namespace).await?.ok_or_else(|| super::missing_job(name, namespace))?;
    let selector = job_pods_selector(&first)?;
    pods.list(&kube::api::ListParams::default().labels(&selector).limit(1))
        .await
        .map_err(|e| explain(cluster, &Attempt { verb: "list", resource: "pods", namespace: Some(namespace) }, &e))?;

    let job_events = watcher(jobs, watcher::Config::default().fields(&format!("metadata.name={name}")))
        .default_backoff()
        .map_ok(|e| Update::Job(Box::new(e)))
        .map_err(|e| ("jobs", e));
    let pod_events = watcher(pods, watcher::Config::default().labels(&selector))
        .default_backoff()
        .map_ok(|e| Update::Pod(Box::new(e)))
        .map_err(|e| ("pods", e));
    let mut events = std::pin::pin!(futures_util::stream::select(job_events, pod_events));

    let started = Instant::now();
    let mut table = Table::new(out);
    let mut job = Some(first);
    let mut pods_now: BTreeMap<String, Pod> = BTreeMap::new();
    let mut announced = false;
    out.status(format!("watching job.batch/{name} in {namespace} and its pods"));
    loop {
        if let Some(j) = &job {
            if is_job_complete(j).is_some() || is_job_failed(j).is_some() {
                table.close();
                // The report from a fresh list: the pod watch may lag the
                // Job's by an event or two.
                let list = pods_api.list(&kube::api::ListParams::default().labels(&selector)).await.map_err(|e| {
                    explain(cluster, &Attempt { verb: "list", resource: "pods", namespace: Some(namespace) }, &e)
                })?;
                let final_pods = list.items.into_iter().map(|p| (p.name_any(), p)).collect();
                return Ok(Report::new(j, &final_pods));
            }
            if !announced && let Some((success, reason)) = early_verdict(j) {
                announced = true;
                table.note(&format!(
                    "verdict: the Job {} ({reason}); waiting for its pods to terminate",
                    if success { "has succeeded" } else { "has failed" }
                ));
            }
        }
        let next = match timeout {
            Some(t) => match tokio::time::timeout(t.saturating_sub(started.elapsed()), events.next()).await {
                Ok(n) => n,
                Err(_) => {
                    table.close();
                    return Err(TimedOut(humantime::format_duration(t).to_string()).into());
                }
            },
            None => events.next().await,
        };
        match next {
            None => anyhow::bail!("the watch streams ended"),
            Some(Ok(Update::Job(e))) => match *e {
                watcher::Event::Apply(j) | watcher::Event::InitApply(j) => job = Some(j),
                watcher::Event::Delete(_) => {
                    table.close();
                    return Err(Remote(format!("job.batch/{name} was deleted while it was being watched")).into());
                }
                watcher::Event::Init | watcher::Event::InitDone => {}
            },
            Some(Ok(Update::Pod(e))) => {
                match *e {
                    watcher::Event::Apply(p) | watcher::Event::InitApply(p) => {
                        pods_now.insert(p.name_any(), p);
                    }
                    watcher::Event::Delete(p) => {
                        pods_now.remove(&p.name_any());
                    }
                    watcher::Event::Init | watcher::Event::InitDone => {}
                }
                table.update(&pods_now);
            }
            Some(Err((what, e))) => {
                if let Some(status) = watch_status(&e)
                    && matches!(status.code, 401 | 403)
                {
                    return Err(explain(
                        cluster,
                        &Attempt { verb: "watch", resource: what, namespace: Some(namespace) },
                        &kube::Error::Api(status.clone().boxed()),
                    )
                    .into());
                }
                table.note(&format!("the {what} watch was interrupted ({e}); resuming"));
            }
        }
    }
}

fn watch_status(e: &watcher::Error) -> Option<&kube::core::Status> {
    match e {
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s))
        | watcher::Error::WatchFailed(kube::Error::Api(s)) => Some(s),
        watcher::Error::WatchError(s) => Some(s),
        _ => None,
    }
}

/// The live view: a table redrawn in place on a terminal, a line per change
/// otherwise (logs and pipes).
struct Table {
    tty: bool,
    drawn: usize,
    last: BTreeMap<String, String>,
    out: Reporter,
}

impl Table {
    fn new(out: &Reporter) -> Table {
        Table { tty: std::io::stderr().is_terminal(), drawn: 0, last: BTreeMap::new(), out: *out }
    }

    fn line(row: &PodRow) -> String {
        format!(
            "{:<28} {:<10} {:>5} {:>6} {:<18} {:>8} {:>8}",
            row.name,
            row.phase,
            row.index.as_deref().unwrap_or("-"),
            row.exit_code.map_or("-".into(), |c| c.to_string()),
            row.reason.as_deref().unwrap_or("-"),
            row.restarts,
            row.seconds.map_or("-".into(), |s| format!("{s:.0}s")),
        )
    }

    fn update(&mut self, pods: &BTreeMap<String, Pod>) {
        let rows: Vec<PodRow> = pods.values().map(pod_row).collect();
        if self.tty {
            let mut screen = format!(
                "{:<28} {:<10} {:>5} {:>6} {:<18} {:>8} {:>8}\n",
                "POD", "PHASE", "INDEX", "EXIT", "REASON", "RESTARTS", "TIME"
            );
            for r in &rows {
                screen += &Self::line(r);
                screen.push('\n');
            }
            if self.drawn > 0 {
                eprint!("\x1b[{}A\x1b[J", self.drawn);
            }
            eprint!("{screen}");
            self.drawn = rows.len() + 1;
        } else {
            for r in &rows {
                // Time changes every second; a line is printed when anything else does.
                let key = format!(
                    "{} {} {:?} {:?} {}",
                    r.phase,
                    r.index.as_deref().unwrap_or("-"),
                    r.exit_code,
                    r.reason,
                    r.restarts
                );
                if self.last.get(&r.name) != Some(&key) {
                    self.last.insert(r.name.clone(), key);
                    self.out.status(format!("pod {}", Self::line(r).trim_end()));
                }
            }
        }
    }

    fn note(&mut self, message: &str) {
        self.drawn = 0;
        self.out.status(message);
    }

    fn close(&mut self) {
        self.drawn = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed_pod(n: usize, code: i32) -> PodRow {
        PodRow {
            name: format!("job-test-{n:05}"),
            phase: "Failed".into(),
            index: None,
            exit_code: Some(code),
            reason: Some("Error".into()),
            message: Some(format!("job-worker: simulated failure ({n})")),
            restarts: 0,
            seconds: Some(1.0),
            last_exit_code: None,
        }
    }

    fn report(pods: Vec<PodRow>) -> Report {
        Report {
            name: "job-test".into(),
            namespace: "job-test".into(),
            complete: false,
            reason: "BackoffLimitExceeded".into(),
            message: String::new(),
            succeeded: 0,
            completions: 1,
            failed_pods: pods.len() as i32,
            seconds: None,
            configured_probability: None,
            runs: pods.len() as i32,
            failed_runs: pods.len() as i32,
            pods,
        }
    }

    #[test]
    fn failed_pods_are_listed_with_exit_code_and_message_then_summarised() {
        let few = report((0..3).map(|n| failed_pod(n, 1)).collect()).text();
        assert!(few.contains("job-test-00002  exit 1  Error  job-worker: simulated failure (2)"), "{few}");
        assert!(!few.contains("more"), "{few}");

        let mut pods: Vec<PodRow> = (0..FAILED_LISTED + 2).map(|n| failed_pod(n, 1)).collect();
        pods.push(failed_pod(99, 137));
        pods.push(failed_pod(98, 1));
        let many = report(pods).text();
        assert_eq!(many.lines().filter(|l| l.contains("  exit ")).count(), FAILED_LISTED, "{many}");
        assert!(many.contains("\n    and 4 more (exit 1 ×3, 137 ×1); `--output json` lists every pod"), "{many}");
    }
}
