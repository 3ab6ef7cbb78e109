//! `cargo xtask logs`: the logs of every pod of the Job, failed ones
//! included, each line prefixed by its pod; for a restarted container
//! (restartPolicy OnFailure) the previous run's logs too. `-f` follows
//! them as they are written (`follow`).

use anyhow::Result;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, ListParams, LogParams};
use serde::Serialize;

use super::{Attempt, Cluster, explain, job_pods_selector};
use crate::flags::LogsFlags;
use crate::report::Reporter;

pub fn run(flags: &LogsFlags, out: &Reporter) -> Result<()> {
    let job = &flags.job;
    crate::runtime()?.block_on(async {
        let cluster = super::connect(&super::Access::from(&job.cluster), out).await?;
        if flags.follow {
            return super::follow::follow(&cluster, &job.name, &job.namespace, out).await;
        }
        let lines = logs(&cluster, &job.name, &job.namespace).await?;
        out.result(&Logs { job: job.name.clone(), lines });
        Ok(())
    })
}

/// Every pod's log lines, oldest pod first.
#[derive(Serialize)]
struct Logs {
    job: String,
    lines: Vec<LogLine>,
}

#[derive(Serialize)]
pub struct LogLine {
    pub pod: String,
    /// From the container's previous run (OnFailure restarts).
    pub previous: bool,
    pub line: String,
}

impl std::fmt::Display for Logs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text: Vec<String> = self
            .lines
            .iter()
            .map(|l| format!("{}{}: {}", l.pod, if l.previous { " (previous)" } else { "" }, l.line))
            .collect();
        f.write_str(&text.join("\n"))
    }
}

/// Every pod's lines, oldest pod first; a restarted container's previous
/// run before its current one.
pub async fn logs(cluster: &Cluster, name: &str, namespace: &str) -> Result<Vec<LogLine>> {
    let api: Api<Pod> = Api::namespaced(cluster.client.clone(), namespace);
    let attempt = |verb| Attempt { verb, resource: "pods", namespace: Some(namespace) };
    let job = super::get_job(cluster, name, namespace).await?.ok_or_else(|| super::missing_job(name, namespace))?;
    let mut pods = api
        .list(&ListParams::default().labels(&job_pods_selector(&job)?))
        .await
        .map_err(|e| explain(cluster, &attempt("list"), &e))?
        .items;
    if pods.is_empty() {
        return Err(crate::Error::remote(format!(
            "job.batch/{name} in {namespace} has no pods (yet: it may be suspended or waiting for its back-off)"
        ))
        .into());
    }
    // Creation times have second precision: ties go by name.
    pods.sort_by_key(|p| (p.creation_timestamp().map(|t| t.0), p.name_any()));
    let mut lines = Vec::new();
    for pod in &pods {
        let pod_name = pod.name_any();
        let restarted = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.restart_count > 0));
        let runs: &[bool] = if restarted { &[true, false] } else { &[false] };
        for &previous in runs {
            let params = LogParams { previous, ..LogParams::default() };
            let text = api.logs(&pod_name, &params).await.map_err(|e| {
                explain(cluster, &Attempt { verb: "get", resource: "pods/log", namespace: Some(namespace) }, &e)
            })?;
            lines.extend(text.lines().map(|l| LogLine { pod: pod_name.clone(), previous, line: l.to_owned() }));
        }
    }
    Ok(lines)
}
