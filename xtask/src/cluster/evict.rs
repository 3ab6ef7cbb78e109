//! `cargo xtask evict`: evict one running pod of the Job through the
//! Eviction API, as `kubectl drain` does, then say whether that failure
//! counted against backoffLimit.
//!
//! The eviction is a POST of an Eviction to the pod's `eviction`
//! subresource: policy/v1 from Kubernetes 1.22, policy/v1beta1 before
//! ("API-initiated Eviction"). The API server checks PodDisruptionBudgets
//! (429 when one forbids it) and deletes the pod gracefully; from 1.26
//! (PodDisruptionConditions) it first adds the DisruptionTarget condition
//! with reason EvictionByEvictionAPI, which a podFailurePolicy rule can
//! match (render's own `Ignore` on DisruptionTarget).

use std::time::{Duration, Instant};

use anyhow::Result;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, ListParams, PostParams};
use serde::Serialize;
use serde_json::json;

use super::{Attempt, Cluster, explain, job_pods_selector};
use crate::flags::EvictFlags;
use crate::manifest::versions::{self, ControllerRules, KubeVersion};
use crate::report::Reporter;
use crate::{Error, ErrorKind};

pub fn run(flags: &EvictFlags, out: &Reporter) -> Result<()> {
    crate::runtime()?.block_on(async {
        let cluster = super::connect(&super::Access::from(&flags.job.cluster), out).await?;
        let report =
            evict(&cluster, &flags.job.name, &flags.job.namespace, flags.pod.as_deref(), flags.timeout, out).await?;
        out.result(&report);
        Ok(())
    })
}

/// What the eviction did to the Job.
#[derive(Debug, Clone, Serialize)]
pub struct Evicted {
    pub job: String,
    pub namespace: String,
    pub pod: String,
    /// The Eviction's API version: policy/v1, or policy/v1beta1 before 1.22.
    pub api: String,
    /// The reason of the pod's DisruptionTarget condition, when it got one.
    pub disruption_target: Option<String>,
    /// How the pod ended, as last seen: its phase and exit code.
    pub ended: String,
    pub failed_before: i32,
    pub failed_after: i32,
    pub backoff_limit: Option<i32>,
    /// Whether the Job's failed count went up for it.
    pub counted: bool,
    /// Why, in a sentence.
    pub why: String,
    /// The Job's verdict when it finished while this watched.
    pub job_finished: Option<String>,
}

impl std::fmt::Display for Evicted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pod/{} of job.batch/{} evicted ({} Eviction)", self.pod, self.job, self.api)?;
        match &self.disruption_target {
            Some(reason) => write!(f, "\n  the pod got DisruptionTarget ({reason})")?,
            None => write!(f, "\n  the pod got no DisruptionTarget condition")?,
        }
        write!(f, "\n  it ended {}", self.ended)?;
        write!(
            f,
            "\n  {}: failed {} → {}{}",
            if self.counted { "counted against backoffLimit" } else { "not counted against backoffLimit" },
            self.failed_before,
            self.failed_after,
            self.backoff_limit.map(|l| format!(" (backoffLimit {l})")).unwrap_or_default()
        )?;
        write!(f, "\n  {}", self.why)?;
        if let Some(verdict) = &self.job_finished {
            write!(f, "\n  job.batch/{} {verdict}", self.job)?;
        }
        Ok(())
    }
}

/// The Eviction API's group version on a server of this version.
pub fn eviction_api(version: KubeVersion) -> &'static str {
    if version >= versions::EVICTION_POLICY_V1 { "policy/v1" } else { "policy/v1beta1" }
}

/// Evicts one running pod of the Job (`pod`, else the oldest running one),
/// follows it until it is gone and the Job controller has accounted for
/// it, and says whether it counted.
pub async fn evict(
    cluster: &Cluster,
    job_name: &str,
    namespace: &str,
    pod: Option<&str>,
    timeout: Duration,
    out: &Reporter,
) -> Result<Evicted> {
    let started = Instant::now();
    let attempt = |verb, resource| Attempt { verb, resource, namespace: Some(namespace) };
    let job =
        super::get_job(cluster, job_name, namespace).await?.ok_or_else(|| super::missing_job(job_name, namespace))?;
    let selector = job_pods_selector(&job)?;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), namespace);
    let list = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| explain(cluster, &attempt("list", "pods"), &e))?;
    let running = |p: &Pod| {
        p.metadata.deletion_timestamp.is_none() && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
    };
    let mut candidates: Vec<&Pod> = list.items.iter().filter(|p| running(p)).collect();
    candidates.sort_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0));
    let target = match pod {
        Some(name) => candidates.iter().find(|p| p.name_any() == name).map(|p| p.name_any()).ok_or_else(|| {
            Error::usage(format!(
                "--pod {name}: not a running pod of job.batch/{job_name} in {namespace} (running: {})",
                names(&candidates)
            ))
        })?,
        None => candidates.first().map(|p| p.name_any()).ok_or_else(|| {
            Error::usage(format!(
                "job.batch/{job_name} in {namespace} has no running pod to evict ({} pods, none Running): evict \
                 while it runs, e.g. with --work-duration or --failure-mode hang",
                list.items.len()
            ))
        })?,
    };
    let failed_before = failed(&job);
    let version = super::server_version(cluster).await?;
    let api = eviction_api(version);
    let body = json!({
        "apiVersion": api,
        "kind": "Eviction",
        "metadata": { "name": target, "namespace": namespace },
    });
    let answer: Result<serde_json::Value, kube::Error> =
        pods.create_subresource("eviction", &target, &PostParams::default(), &body).await;
    match answer {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 429 => {
            return Err(Error::remote(format!(
                "pod/{target} was not evicted: a PodDisruptionBudget forbids it now ({}); the Eviction API refuses \
                 while the budget would be broken, as `kubectl drain` waits. Try again later, or relax the budget",
                s.message
            ))
            .into());
        }
        Err(kube::Error::Api(s)) if s.code == 404 => {
            return Err(
                Error::remote(format!("pod/{target} was not evicted: it is gone already ({})", s.message)).into()
            );
        }
        Err(e) => return Err(explain(cluster, &attempt("create", "pods/eviction"), &e).into()),
    }
    out.status(format!("pod/{target} evicted ({api} Eviction); following it and job.batch/{job_name}"));

    // Until the pod is gone: its last status tells how it ended.
    let mut disruption_target = None;
    let mut ended = "deleted before its end was seen".to_owned();
    loop {
        let remaining = timeout.saturating_sub(started.elapsed());
        if remaining.is_zero() {
            return Err(Error::new(
                ErrorKind::Timeout,
                format!("gave up after {}: pod/{target} is still there", humantime::format_duration(timeout)),
            )
            .into());
        }
        let Some(p) = pods.get_opt(&target).await.map_err(|e| explain(cluster, &attempt("get", "pods"), &e))? else {
            break;
        };
        let status = p.status.clone().unwrap_or_default();
        if let Some(c) =
            status.conditions.iter().flatten().find(|c| c.type_ == "DisruptionTarget" && c.status == "True")
        {
            disruption_target = Some(c.reason.clone().unwrap_or_default());
        }
        let code = status
            .container_statuses
            .iter()
            .flatten()
            .find_map(|c| c.state.as_ref()?.terminated.as_ref().map(|t| t.exit_code));
        if let Some(phase) = status.phase.as_deref().filter(|p| matches!(*p, "Failed" | "Succeeded")) {
            ended = format!("{phase}{}", code.map(|c| format!(", exit code {c}")).unwrap_or_default());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The Job controller has accounted for the pod once its status, read
    // twice a second apart after the pod is gone, stays the same and the
    // Job has moved on: a replacement pod, or a verdict. (Before Job
    // tracking with finalizers the controller recounts status.failed from
    // the Failed pods that still exist, so a count seen while the pod
    // lingered can fall back once it is gone.)
    let jobs: Api<Job> = Api::namespaced(cluster.client.clone(), namespace);
    let mut last: Option<(i32, Option<String>)> = None;
    let job = loop {
        let remaining = timeout.saturating_sub(started.elapsed());
        if remaining.is_zero() {
            return Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "gave up after {}: job.batch/{job_name} did not settle after the eviction",
                    humantime::format_duration(timeout)
                ),
            )
            .into());
        }
        let job = jobs.get(job_name).await.map_err(|e| explain(cluster, &attempt("get", "jobs"), &e))?;
        let verdict = finished(&job);
        let now = (failed(&job), verdict.clone());
        let moved_on = verdict.is_some() || {
            let list = pods
                .list(&ListParams::default().labels(&selector))
                .await
                .map_err(|e| explain(cluster, &attempt("list", "pods"), &e))?;
            list.items.iter().any(|p| p.name_any() != target && !was_there(&candidates, p))
        };
        if moved_on && last.as_ref() == Some(&now) {
            break job;
        }
        last = Some(now);
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let failed_after = failed(&job);
    let counted = failed_after > failed_before;
    let rule = ignore_rule(&job);
    let rules = ControllerRules::of(version);
    let why = match (counted, &disruption_target, rule) {
        (false, Some(_), Some(i)) => format!(
            "podFailurePolicy rule {i} (Ignore on DisruptionTarget) matched: the disruption is not the workload's \
             failure, and a replacement was made"
        ),
        (false, None, _) if !rules.counts_deleted_pods => format!(
            "Kubernetes {version}'s Job controller counts only the Failed pods that still exist (no Job tracking with \
             finalizers before {}), and an evicted pod is deleted",
            versions::JOB_TRACKING_WITH_FINALIZERS.on_by_default
        ),
        (false, _, _) => "the Job controller did not count it".to_owned(),
        (true, Some(_), None) => {
            "no podFailurePolicy rule ignores DisruptionTarget: the eviction counted like any failure".to_owned()
        }
        (true, None, _) if !rules.disruption_conditions => format!(
            "Kubernetes {version} has no pod disruption conditions (on by default from {}): nothing tells an \
             eviction from a failure",
            versions::POD_DISRUPTION_CONDITIONS.on_by_default
        ),
        (true, _, _) => "the Job controller counted it as a failed pod".to_owned(),
    };
    Ok(Evicted {
        job: job_name.into(),
        namespace: namespace.into(),
        pod: target,
        api: api.into(),
        disruption_target,
        ended,
        failed_before,
        failed_after,
        backoff_limit: job.spec.as_ref().and_then(|s| s.backoff_limit),
        counted,
        why,
        job_finished: finished(&job),
    })
}

fn names(pods: &[&Pod]) -> String {
    if pods.is_empty() { "none".into() } else { pods.iter().map(|p| p.name_any()).collect::<Vec<_>>().join(", ") }
}

fn was_there(before: &[&Pod], p: &Pod) -> bool {
    before.iter().any(|b| b.metadata.uid == p.metadata.uid)
}

fn failed(job: &Job) -> i32 {
    job.status.as_ref().and_then(|s| s.failed).unwrap_or(0)
}

/// `Complete` or `Failed (REASON)` once the Job has finished.
fn finished(job: &Job) -> Option<String> {
    if super::status::is_job_complete(job).is_some() {
        return Some("Complete".into());
    }
    super::status::is_job_failed(job).map(|(reason, _)| format!("Failed ({reason})"))
}

/// The index of the Job's podFailurePolicy rule that ignores DisruptionTarget.
fn ignore_rule(job: &Job) -> Option<usize> {
    let rules = &job.spec.as_ref()?.pod_failure_policy.as_ref()?.rules;
    rules.iter().position(|r| {
        r.action == "Ignore"
            && r.on_pod_conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "DisruptionTarget" && (c.status.is_empty() || c.status == "True"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eviction_api_version_follows_the_server() {
        assert_eq!(eviction_api(KubeVersion::new(1, 20)), "policy/v1beta1");
        assert_eq!(eviction_api(KubeVersion::new(1, 21)), "policy/v1beta1");
        assert_eq!(eviction_api(KubeVersion::new(1, 22)), "policy/v1");
    }

    #[test]
    fn the_rendered_ignore_rule_is_found() {
        let mut job = Job::default();
        job.spec.get_or_insert_default().pod_failure_policy =
            Some(crate::manifest::objects::default_pod_failure_policy());
        assert_eq!(ignore_rule(&job), Some(1));
        assert_eq!(ignore_rule(&Job::default()), None);
    }
}
