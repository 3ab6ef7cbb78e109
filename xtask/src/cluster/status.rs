//! Reading a cluster's Job and Pod status into the Job report: the
//! conditions the Job controller sets ("Jobs" documentation, "Job
//! termination and cleanup"), what each pod's container did, and why a
//! pod cannot pull its image (`image_pull`).

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

use crate::image_ref::ImageRef;
use crate::push::target::{is_loopback, registry_host};
use crate::report::job::{ImagePull, JobCondition, JobReport, JobResult, JobTimes, PodPhase, PodRow, PullCause};

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

/// What one pod did, from its status; with `since` (the Job's creation, in
/// Unix seconds), when it was created and ended, relative to it.
pub fn pod_row(pod: &Pod, since: Option<i64>) -> PodRow {
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
    let phase = status.phase.as_deref().map_or(PodPhase::Pending, PodPhase::from_api);
    PodRow {
        name: pod.name_any(),
        phase,
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
        created_at: seconds_after(since, pod.metadata.creation_timestamp.as_ref().map(|t| t.0)),
        finished_at: seconds_after(since, finished.filter(|_| matches!(phase, PodPhase::Succeeded | PodPhase::Failed))),
    }
}

/// `t` in seconds after `since` (Unix seconds), when both are known: how a
/// report's times are written.
fn seconds_after(since: Option<i64>, t: Option<jiff::Timestamp>) -> Option<f64> {
    since.zip(t).map(|(s, t)| (t.as_second() - s) as f64)
}

/// The Job's creation in Unix seconds: the zero of a report's times.
pub fn created_second(job: &Job) -> Option<i64> {
    job.metadata.creation_timestamp.as_ref().map(|t| t.0.as_second())
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
        (Some(s), None) => seconds_after(Some(s.0.as_second()), job_finished_at(job)),
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
        conditions: conditions(job),
        completed_indexes: status.completed_indexes.clone(),
        failed_indexes: status.failed_indexes.clone(),
        terminating: status.terminating,
        managed_by: managed_by(job).map(str::to_owned),
        image_pull: None,
        times: Some(job_times(job)),
    }
}

/// The Job's timeline, relative to its creation.
fn job_times(job: &Job) -> JobTimes {
    let since = created_second(job);
    let status = job.status.clone().unwrap_or_default();
    let spec = job.spec.clone().unwrap_or_default();
    JobTimes {
        created: job.metadata.creation_timestamp.as_ref().map(|t| t.0.to_string()),
        started: seconds_after(since, status.start_time.map(|t| t.0)),
        finished: seconds_after(since, status.completion_time.map(|t| t.0).or_else(|| job_finished_at(job))),
        ttl_seconds_after_finished: spec.ttl_seconds_after_finished.map(i64::from),
        active_deadline_seconds: spec.active_deadline_seconds,
        parallelism: spec.parallelism,
        status: Vec::new(),
    }
}

/// The Job's conditions as the controller wrote them, in order.
pub fn conditions(job: &Job) -> Vec<JobCondition> {
    let since = created_second(job);
    let list = job.status.as_ref().and_then(|s| s.conditions.as_ref());
    list.into_iter()
        .flatten()
        .map(|c| JobCondition {
            kind: c.type_.clone(),
            status: c.status.clone(),
            reason: c.reason.clone().unwrap_or_default(),
            message: c.message.clone().unwrap_or_default(),
            at: seconds_after(since, c.last_transition_time.as_ref().map(|t| t.0)),
        })
        .collect()
}

/// The controller a Job is delegated to, when it is not the built-in one
/// ("Jobs" documentation, "Delegation of managing a Job object to external
/// controller": unset means the built-in one).
pub fn managed_by(job: &Job) -> Option<&str> {
    job.spec.as_ref()?.managed_by.as_deref().filter(|m| *m != crate::manifest::params::JOB_CONTROLLER)
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
fn job_finished_at(job: &Job) -> Option<jiff::Timestamp> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Failed")
        .and_then(|c| c.last_transition_time.as_ref())
        .map(|t| t.0)
}

/// The waiting reasons of a container whose image cannot be pulled: the
/// kubelet's first failure, and the back-off between the next tries (whose
/// message repeats no cause).
const PULL_REASONS: [&str; 2] = ["ErrImagePull", "ImagePullBackOff"];

/// Whether `word` stands in `text` as a word of its own (a status code, not
/// three digits inside a digest).
fn has_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric()) && !after.is_some_and(|c| c.is_ascii_alphanumeric())
    })
}

/// Why the image cannot be pulled, from the container's waiting reason and
/// message; None when the container is not waiting on a pull. The kubelet
/// passes the container runtime's words on as text only (Docker's
/// "no basic auth credentials", containerd's "failed to authorize",
/// registries' "manifest unknown"), so this reads text, the image
/// reference taken out first so that its name cannot say anything.
pub fn classify_pull(reason: &str, message: &str, image: &str) -> Option<PullCause> {
    if !PULL_REASONS.contains(&reason) {
        return None;
    }
    let mut text = message.to_lowercase();
    if let Ok(r) = ImageRef::parse(image) {
        for name in [image.to_lowercase(), r.name(), r.repository.clone()] {
            text = text.replace(&name, "IMAGE");
        }
    }
    let any = |phrases: &[&str]| phrases.iter().any(|p| text.contains(p));
    let code = |codes: &[&str]| codes.iter().any(|c| has_word(&text, c));
    let host = ImageRef::parse(image).map(|r| registry_host(&r)).unwrap_or_default();
    Some(if any(&["does not exist or may require", "pull access denied"]) {
        PullCause::DeniedOrMissing
    } else if any(&[
        "unauthorized",
        "authentication required",
        "no basic auth credentials",
        "failed to authorize",
        "authorization failed",
        "insufficient_scope",
        "access denied",
        "forbidden",
        "denied:",
    ]) || code(&["401", "403"])
    {
        PullCause::Unauthorized
    } else if any(&["not found", "manifest unknown", "manifest_unknown", "name unknown", "name_unknown"])
        || code(&["404"])
    {
        PullCause::NotFound
    } else if is_loopback(&host) {
        PullCause::Loopback
    } else if any(&[
        "connection refused",
        "no such host",
        "i/o timeout",
        "timeout",
        "no route to host",
        "network is unreachable",
        "x509",
        "certificate",
        "tls",
        "http response to https client",
        "dial tcp",
    ]) {
        PullCause::Unreachable
    } else {
        PullCause::Unknown
    })
}

/// What to do about it; `secrets` are the pod's imagePullSecrets.
pub fn pull_advice(cause: PullCause, image: &str, pod: &str, secrets: &[String]) -> String {
    let host = ImageRef::parse(image).map(|r| registry_host(&r)).unwrap_or_default();
    match cause {
        PullCause::Unauthorized if secrets.is_empty() => format!(
            "the registry {host} wants credentials and the pod has no pull secret: apply (or release) again with \
             --create-pull-secret, which makes one from the credential `cargo xtask push` uses, or name an existing \
             one with --image-pull-secret"
        ),
        PullCause::Unauthorized => format!(
            "the registry {host} refused the credential in the pull secret {}: it is wrong, expired or for another \
             registry; apply again with --create-pull-secret and the credential `cargo xtask push` accepts",
            secrets.join(", ")
        ),
        PullCause::DeniedOrMissing => format!(
            "the registry {host} says the repository does not exist or needs credentials, without saying which: check \
             the reference (`cargo xtask push` prints the one it pushed), and, for a private repository, apply again \
             with --create-pull-secret"
        ),
        PullCause::NotFound => format!(
            "{image} is not in the registry {host}: check the reference (repository, tag, digest); `cargo xtask push` \
             prints the one it pushed"
        ),
        PullCause::Loopback => format!(
            "{host} is a loopback address: a cluster node cannot reach this machine's loopback (127.0.0.1, \
             localhost and ::1 are the node itself); push to a registry the nodes can reach (--image \
             REGISTRY/REPOSITORY:TAG), or run the Job on this machine with `cargo xtask release --local`"
        ),
        PullCause::Unreachable => format!(
            "a node cannot reach the registry {host}: its network, DNS or trust of the registry's certificate (the \
             message above says which)"
        ),
        PullCause::Unknown => format!(
            "the kubelet keeps failing to pull {image}; `kubectl describe pod {pod}` shows the container runtime's \
             message"
        ),
    }
}

/// A pod whose container waits on a pull that fails, with the cause and
/// what to do.
pub fn image_pull(pod: &Pod) -> Option<ImagePull> {
    let container = pod.status.as_ref()?.container_statuses.as_ref()?.first()?;
    let waiting = container.state.as_ref()?.waiting.as_ref()?;
    let reason = waiting.reason.clone()?;
    let message = crate::one_line(waiting.message.as_deref().unwrap_or_default());
    let spec = pod.spec.as_ref();
    let image =
        spec.and_then(|s| s.containers.first()).and_then(|c| c.image.clone()).unwrap_or(container.image.clone());
    let cause = classify_pull(&reason, &message, &image)?;
    let secrets: Vec<String> =
        spec.and_then(|s| s.image_pull_secrets.as_ref()).into_iter().flatten().map(|r| r.name.clone()).collect();
    let advice = pull_advice(cause, &image, &pod.name_any(), &secrets);
    Some(ImagePull { pod: pod.name_any(), image, reason, message, cause, advice })
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMAGE: &str = "registry.example:5000/team/job-test:1.0@sha256:4010401040104010401040104010401040104010401040104010401040104010";

    #[test]
    fn pull_failures_are_classified_by_what_the_runtime_said() {
        let cases = [
            // Docker (dockershim, 1.20), containerd, registries' own words.
            (
                "ErrImagePull",
                "rpc error: code = Unknown desc = Error response from daemon: Head https://registry.example:5000/v2/team/job-test/manifests/sha256:40104010: no basic auth credentials",
                PullCause::Unauthorized,
            ),
            (
                "ErrImagePull",
                "failed to pull and unpack image: failed to resolve reference: failed to authorize: failed to fetch anonymous token: unexpected status: 401 Unauthorized",
                PullCause::Unauthorized,
            ),
            (
                "ErrImagePull",
                "Error response from daemon: Get https://registry.example:5000/v2/: unauthorized: authentication required",
                PullCause::Unauthorized,
            ),
            (
                "ErrImagePull",
                "rpc error: code = Unknown desc = Error response from daemon: pull access denied for team/job-test, repository does not exist or may require 'docker login': denied: requested access to the resource is denied",
                PullCause::DeniedOrMissing,
            ),
            (
                "ErrImagePull",
                "Error response from daemon: manifest for registry.example:5000/team/job-test:1.0 not found: manifest unknown: manifest unknown",
                PullCause::NotFound,
            ),
            (
                "ErrImagePull",
                "rpc error: code = NotFound desc = failed to pull and unpack image: not found",
                PullCause::NotFound,
            ),
            (
                "ErrImagePull",
                "Error response from daemon: Get https://registry.example:5000/v2/: dial tcp 10.0.0.9:5000: connect: connection refused",
                PullCause::Unreachable,
            ),
            (
                "ErrImagePull",
                "Error response from daemon: Get https://registry.example:5000/v2/: x509: certificate signed by unknown authority",
                PullCause::Unreachable,
            ),
            (
                "ImagePullBackOff",
                "Back-off pulling image \"registry.example:5000/team/job-test:1.0\"",
                PullCause::Unknown,
            ),
            // The digest's 401 and 404 are no status codes.
            ("ErrImagePull", "something else about sha256:4010401040104010", PullCause::Unknown),
        ];
        for (reason, message, cause) in cases {
            assert_eq!(classify_pull(reason, message, IMAGE), Some(cause), "{message}");
        }
        assert_eq!(classify_pull("CrashLoopBackOff", "unauthorized", IMAGE), None);
        assert_eq!(classify_pull("ContainerCreating", "", IMAGE), None);
        // A repository named after a word is not that word.
        assert_eq!(
            classify_pull("ErrImagePull", "boom: registry.example/denied:1 failed", "registry.example/denied:1"),
            Some(PullCause::Unknown)
        );
    }

    #[test]
    fn a_loopback_registry_is_named_unless_the_registry_answered() {
        for image in ["127.0.0.1:5000/job-test:1", "localhost:5000/job-test:1", "127.0.0.2/job-test:1"] {
            let refused = "Error response from daemon: Get https://127.0.0.1:5000/v2/: dial tcp 127.0.0.1:5000: connect: connection refused";
            assert_eq!(classify_pull("ErrImagePull", refused, image), Some(PullCause::Loopback), "{image}");
            let backoff = format!("Back-off pulling image \"{image}\"");
            assert_eq!(classify_pull("ImagePullBackOff", &backoff, image), Some(PullCause::Loopback), "{image}");
            // It answered: the node has a registry of its own there.
            assert_eq!(
                classify_pull("ErrImagePull", "no basic auth credentials", image),
                Some(PullCause::Unauthorized)
            );
        }
    }

    #[test]
    fn the_advice_says_what_to_do() {
        let none = pull_advice(PullCause::Unauthorized, IMAGE, "p", &[]);
        assert!(none.contains("--create-pull-secret") && none.contains("registry.example:5000"), "{none}");
        let with = pull_advice(PullCause::Unauthorized, IMAGE, "p", &["job-test-pull-secret".into()]);
        assert!(with.contains("refused the credential in the pull secret job-test-pull-secret"), "{with}");
        assert!(pull_advice(PullCause::NotFound, IMAGE, "p", &[]).contains("check the reference"));
        let lo = pull_advice(PullCause::Loopback, "127.0.0.1:5000/job-test:1", "p", &[]);
        assert!(lo.contains("a cluster node cannot reach this machine's loopback"), "{lo}");
    }
}
