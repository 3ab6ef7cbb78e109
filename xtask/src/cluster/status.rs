//! Reading a cluster's Job and Pod status into the Job report: the
//! conditions the Job controller sets ("Jobs" documentation, "Job
//! termination and cleanup"), and what each pod's container did.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

use crate::report::job::{JobReport, JobResult, PodRow};

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
pub fn early_verdict(job: &Job) -> Option<(bool, String)> {
    if let Some((reason, _)) = condition(job, "FailureTarget") {
        return Some((false, reason));
    }
    condition(job, "SuccessCriteriaMet").map(|(reason, _)| (true, reason))
}

/// What one pod did, from its status.
pub fn pod_row(pod: &Pod) -> PodRow {
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

/// The report of a finished Job, from the Job and its pods.
pub fn job_report(job: &Job, pods: impl IntoIterator<Item = PodRow>) -> JobReport {
    let status = job.status.clone().unwrap_or_default();
    let spec = job.spec.clone().unwrap_or_default();
    let (result, reason, message) = match (is_job_complete(job), is_job_failed(job)) {
        (Some((r, m)), _) => (JobResult::Complete, if r.is_empty() { "Complete".into() } else { r }, m),
        (None, Some((r, m))) => (JobResult::Failed, r, m),
        (None, None) => (JobResult::Failed, String::new(), String::new()),
    };
    let rows: Vec<PodRow> = pods.into_iter().collect();
    let restarts: i32 = rows.iter().map(|r| r.restarts).sum();
    let failed_pods = status.failed.unwrap_or(0);
    let succeeded = status.succeeded.unwrap_or(0);
    let seconds = match (status.start_time.as_ref(), status.completion_time.as_ref()) {
        (Some(s), Some(c)) => Some((c.0.as_second() - s.0.as_second()) as f64),
        (Some(s), None) => job_finished_at(job).map(|f| (f - s.0.as_second()) as f64),
        _ => None,
    };
    let configured_probability = configured_probability(job);
    JobReport {
        name: job.name_any(),
        namespace: job.namespace().unwrap_or_default(),
        result,
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

/// The worker's FAIL_PROBABILITY in the Job's pod template, read by the
/// worker's own parser.
pub fn configured_probability(job: &Job) -> Option<f64> {
    let spec = job.spec.as_ref()?.template.spec.as_ref()?;
    let env = spec.containers.first()?.env.as_ref()?;
    let value = env.iter().find(|e| e.name == job_worker::config::FAIL_PROBABILITY.env)?.value.as_deref()?;
    job_worker::config::parse_probability(value)
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
