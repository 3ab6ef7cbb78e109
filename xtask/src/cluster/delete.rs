//! `cargo xtask delete`: the Job and its pods, waiting until both are gone
//! (`--local`: the containers run-local kept, `local::kept`).

use std::time::Duration;

use anyhow::Result;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams};
use kube::runtime::wait::{await_condition, conditions};
use serde::Serialize;

use super::{Attempt, Cluster, explain, job_pods_selector};
use crate::flags::DeleteFlags;
use crate::report::Reporter;

pub fn run(flags: &DeleteFlags, out: &Reporter) -> Result<()> {
    if flags.local {
        return crate::local::kept::run(flags.name.as_deref(), out);
    }
    let name = flags.name.clone().unwrap_or_else(|| "job-test".into());
    crate::runtime()?.block_on(async {
        let cluster = super::connect(&super::Access::from(&flags.cluster), out).await?;
        let (deleted, pods) = delete(&cluster, &name, &flags.namespace, out).await?;
        out.result(&Deleted { job: name, deleted, pods });
        Ok(())
    })
}

/// What `delete` did.
#[derive(Serialize)]
struct Deleted {
    job: String,
    /// Whether there was a Job to delete.
    deleted: bool,
    /// Its pods, all gone now.
    pods: usize,
}

impl std::fmt::Display for Deleted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.deleted {
            write!(f, "job.batch/{} deleted, with its {} pods", self.job, self.pods)
        } else {
            write!(f, "job.batch/{} was not there: nothing to delete", self.job)
        }
    }
}

/// Deletes the Job with background propagation (the garbage collector
/// deletes its pods), then waits until the Job and its pods are gone.
/// Returns whether there was a Job, and how many pods it had.
pub async fn delete(cluster: &Cluster, name: &str, namespace: &str, out: &Reporter) -> Result<(bool, usize)> {
    let jobs: Api<Job> = Api::namespaced(cluster.client.clone(), namespace);
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), namespace);
    let attempt = |verb, resource| Attempt { verb, resource, namespace: Some(namespace) };
    let Some(job) = super::get_job(cluster, name, namespace).await? else {
        return Ok((false, 0));
    };
    let selector = ListParams::default().labels(&job_pods_selector(&job)?);
    let count = pods.list(&selector).await.map_err(|e| explain(cluster, &attempt("list", "pods"), &e))?.items.len();
    jobs.delete(name, &DeleteParams::background())
        .await
        .map_err(|e| explain(cluster, &attempt("delete", "jobs"), &e))?;
    let uid = job.uid().unwrap_or_default();
    tokio::time::timeout(Duration::from_secs(120), await_condition(jobs, name, conditions::is_deleted(&uid)))
        .await
        .map_err(|_| {
        crate::Error::remote(format!("job.batch/{name} is still there 2 minutes after its deletion (a finalizer?)"))
    })??;
    // The garbage collector removes the pods after the Job: wait for it.
    for _ in 0..240 {
        if pods.list(&selector).await.map_err(|e| explain(cluster, &attempt("list", "pods"), &e))?.items.is_empty() {
            return Ok((true, count));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    out.warn(format!("job.batch/{name} is gone but some of its pods are still terminating"));
    Ok((true, count))
}
