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
//!
//! A pod that cannot pull its image (ErrImagePull, ImagePullBackOff) never
//! fails on its own: the Job waits for it until its deadline. So the
//! watch says at once why the pull fails and what to do (`status::image_pull`),
//! and repeats it in the report of a Job that did not complete and in the
//! message of a `--timeout`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::job_events::{JobEvents, Update, job_events};
use super::status::{early_verdict, image_pull, is_job_complete, is_job_failed, job_report, pod_row};
use super::{Attempt, Cluster, explain, job_pods_selector};
use crate::flags::WatchFlags;
use crate::report::Reporter;
use crate::report::job::{ImagePull, JobReport, JobResult, PodRow, PullCause, StatusAt};
use crate::report::pod_table::PodTable;
use crate::{Error, ErrorKind};
use anyhow::Result;
use futures_util::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use kube::runtime::watcher;

pub fn run(flags: &WatchFlags, out: &Reporter) -> Result<()> {
    crate::runtime()?.block_on(async {
        let cluster = super::connect(&super::Access::from(&flags.job.cluster), out).await?;
        let report = watch(&cluster, &flags.job.name, &flags.job.namespace, flags.timeout, out).await?;
        crate::report::files::ReportFiles::from(&flags.files).keep(&report, out)?;
        out.result(&report);
        Ok(report.verdict()?)
    })
}

/// Follows the Job to its end.
pub async fn watch(
    cluster: &Cluster,
    name: &str,
    namespace: &str,
    timeout: Option<Duration>,
    out: &Reporter,
) -> Result<JobReport> {
    let JobEvents { job: first, selector, pods, mut events } = job_events(cluster, name, namespace).await?;

    let started = Instant::now();
    let mut table = PodTable::new(out);
    // Who writes the Job's status: said first, as a delegated Job's
    // conditions are another controller's ("Jobs" documentation,
    // "Delegation of managing a Job object to external controller").
    let manager = super::status::managed_by(&first).map(str::to_owned);
    // The status counts as they changed, by this clock, from the Job's creation.
    let mut history: Vec<StatusAt> = Vec::new();
    let mut job = Some(first);
    // Rows, not Pod objects: a Job of thousands of pods stays small.
    let mut rows: BTreeMap<String, PodRow> = BTreeMap::new();
    let mut announced = false;
    // The last pull failure seen, with a cause when the kubelet gave one.
    let mut pull: Option<ImagePull> = None;
    out.status(format!(
        "watching job.batch/{name} in {namespace} and its pods; {}",
        match &manager {
            Some(m) => format!(
                "managed by {m} (spec.managedBy), not the built-in Job controller: its status is what {m} writes"
            ),
            None => "managed by the built-in Job controller".to_owned(),
        }
    ));
    loop {
        if let Some(j) = &job {
            note_status(&mut history, j);
            if is_job_complete(j).is_some() || is_job_failed(j).is_some() {
                table.close(&rows);
                // The report from a fresh list: the pod watch may lag the
                // Job's by an event or two. The list rebuilds the rows, so
                // the watch's go first and a big Job is held once.
                drop(rows);
                let (rows, listed_pull) =
                    list_rows(cluster, &pods, &selector, namespace, super::status::created_second(j)).await?;
                let mut report = job_report(j, rows);
                if let Some(times) = report.times.as_mut() {
                    times.status = history;
                }
                if report.result == JobResult::Failed {
                    // The watch may have seen a cause the last back-off no longer shows.
                    report.image_pull = match (listed_pull, pull) {
                        (Some(listed), Some(seen)) if listed.cause == PullCause::Unknown => Some(seen),
                        (listed, seen) => listed.or(seen),
                    };
                }
                return Ok(report);
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
                    table.close(&rows);
                    let why = pull.map(|p| format!("; {p}")).unwrap_or_default();
                    return Err(Error::new(
                        ErrorKind::Timeout,
                        format!(
                            "gave up after {}: the Job had not finished (it goes on in the cluster){why}",
                            humantime::format_duration(t)
                        ),
                    )
                    .into());
                }
            },
            None => events.next().await,
        };
        match next {
            None => anyhow::bail!("the watch streams ended"),
            Some(Ok(Update::Job(e))) => match *e {
                watcher::Event::Apply(j) | watcher::Event::InitApply(j) => job = Some(j),
                watcher::Event::Delete(_) => {
                    table.close(&rows);
                    return Err(
                        Error::remote(format!("job.batch/{name} was deleted while it was being watched")).into()
                    );
                }
                watcher::Event::Init | watcher::Event::InitDone => {}
            },
            Some(Ok(Update::Pod(e))) => match *e {
                watcher::Event::Apply(p) | watcher::Event::InitApply(p) => {
                    if let Some(failed) = image_pull(&p) {
                        note_pull(&mut table, &mut pull, failed);
                    }
                    let row = pod_row(&p, None);
                    let before = rows.insert(row.name.clone(), row.clone());
                    table.update(before.as_ref(), &row, &rows);
                }
                watcher::Event::Delete(p) => {
                    rows.remove(&p.name_any());
                }
                watcher::Event::Init | watcher::Event::InitDone => {}
            },
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

/// The Job on the cluster and its report as it stands now (its pods listed
/// once; no status history, as no watch saw it change).
pub async fn read_now(access: &super::Access, name: &str, namespace: &str, out: &Reporter) -> Result<(Job, JobReport)> {
    let cluster = super::connect(access, out).await?;
    let job = super::get_job(&cluster, name, namespace).await?.ok_or_else(|| super::missing_job(name, namespace))?;
    let selector = job_pods_selector(&job)?;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), namespace);
    let since = super::status::created_second(&job);
    let (rows, _) = list_rows(&cluster, &pods, &selector, namespace, since).await?;
    let report = job_report(&job, rows);
    Ok((job, report))
}

/// Records the Job's status counts when they changed.
fn note_status(history: &mut Vec<StatusAt>, job: &Job) {
    let Some(created) = super::status::created_second(job) else { return };
    let status = job.status.clone().unwrap_or_default();
    let (active, succeeded, failed) =
        (status.active.unwrap_or(0), status.succeeded.unwrap_or(0), status.failed.unwrap_or(0));
    if history.last().is_some_and(|s| (s.active, s.succeeded, s.failed) == (active, succeeded, failed)) {
        return;
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs_f64();
    history.push(StatusAt { at: (now - created as f64).max(0.0), active, succeeded, failed });
}

/// Keeps the latest pull failure and says so under the table when its
/// cause is new: a back-off (no cause given) keeps the cause known before,
/// and pods failing alike are told once.
fn note_pull(table: &mut PodTable, pull: &mut Option<ImagePull>, failed: ImagePull) {
    let known = pull.as_ref().map(|p| p.cause);
    if failed.cause == PullCause::Unknown && known.is_some() {
        return;
    }
    if known != Some(failed.cause) {
        table.note(&format!("{failed}"));
    }
    *pull = Some(failed);
}

/// Pods per page of a list: a Job of thousands of pods is read a page at a
/// time and kept as rows, never as all its Pod objects at once.
const LIST_PAGE: u32 = 500;

/// The Job's pods as report rows, listed page by page, and a pull failure
/// among them (one with a cause first).
async fn list_rows(
    cluster: &Cluster,
    pods: &Api<Pod>,
    selector: &str,
    namespace: &str,
    since: Option<i64>,
) -> Result<(Vec<PodRow>, Option<ImagePull>)> {
    let mut params = ListParams::default().labels(selector).limit(LIST_PAGE);
    let mut rows = Vec::new();
    let mut pull: Option<ImagePull> = None;
    loop {
        let page = pods.list(&params).await.map_err(|e| {
            explain(cluster, &Attempt { verb: "list", resource: "pods", namespace: Some(namespace) }, &e)
        })?;
        rows.extend(page.items.iter().map(|p| pod_row(p, since)));
        for failed in page.items.iter().filter_map(image_pull) {
            if pull.as_ref().is_none_or(|p| p.cause == PullCause::Unknown) {
                pull = Some(failed);
            }
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok((rows, pull)),
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
