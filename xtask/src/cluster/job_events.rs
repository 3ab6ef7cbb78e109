//! A Job and its pods as one stream of watch events: how `watch` and
//! `logs -f` both follow a Job, from the Job's own selector.

use anyhow::Result;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::runtime::{WatchStreamExt, watcher};

use super::{Attempt, Cluster, explain, job_pods_selector};

/// What the Job and pod watchers send into one stream.
pub(super) enum Update {
    Job(Box<watcher::Event<Job>>),
    Pod(Box<watcher::Event<Pod>>),
}

/// A watcher's error, with what it watched ("jobs" or "pods").
pub(super) type Interrupted = (&'static str, watcher::Error);

/// The Job as found before any event, and the events of it and its pods.
pub(super) struct JobEvents {
    pub job: Job,
    /// The Job's spec.selector as a label selector.
    pub selector: String,
    pub pods: Api<Pod>,
    pub events: BoxStream<'static, Result<Update, Interrupted>>,
}

/// Gets the Job, checks its pods can be listed, and merges a watcher on the
/// Job (by name) with one on its pods (by its selector).
pub(super) async fn job_events(cluster: &Cluster, name: &str, namespace: &str) -> Result<JobEvents> {
    // A plain GET and a one-pod LIST first: a missing Job or refused
    // credentials are reported at once and clearly, not as watch retries.
    let job = super::get_job(cluster, name, namespace).await?.ok_or_else(|| super::missing_job(name, namespace))?;
    let selector = job_pods_selector(&job)?;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), namespace);
    pods.list(&ListParams::default().labels(&selector).limit(1))
        .await
        .map_err(|e| explain(cluster, &Attempt { verb: "list", resource: "pods", namespace: Some(namespace) }, &e))?;

    let jobs: Api<Job> = Api::namespaced(cluster.client.clone(), namespace);
    let job_events = watcher(jobs, watcher::Config::default().fields(&format!("metadata.name={name}")))
        .default_backoff()
        .map_ok(|e| Update::Job(Box::new(e)))
        .map_err(|e| ("jobs", e));
    let pod_events = watcher(pods.clone(), watcher::Config::default().labels(&selector))
        .default_backoff()
        .map_ok(|e| Update::Pod(Box::new(e)))
        .map_err(|e| ("pods", e));
    let events = futures_util::stream::select(job_events, pod_events).boxed();
    Ok(JobEvents { job, selector, pods, events })
}
