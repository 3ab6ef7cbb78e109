//! `cargo xtask delete --local`: the containers `run-local --keep` kept,
//! found by their labels (`job-test.local/{run,job,pod}`), removed with
//! the run's folder of termination logs and volumes.

use std::collections::HashMap;
use std::fmt;

use anyhow::{Context, Result};
use bollard::query_parameters::{ListContainersOptions, RemoveContainerOptions};
use serde::Serialize;

use super::pod::{JOB_LABEL, POD_LABEL, RUN_LABEL};
use crate::image::docker;
use crate::report::Reporter;

/// What `delete --local` removed.
#[derive(Debug, Serialize)]
pub struct Removed {
    /// The Job asked for; None for every Job.
    pub job: Option<String>,
    pub containers: Vec<KeptPod>,
    /// The runs' folders (termination logs, emptyDir volumes) removed.
    pub folders: Vec<String>,
}

/// One kept container.
#[derive(Debug, Serialize)]
pub struct KeptPod {
    pub job: String,
    pub pod: String,
    pub run: String,
}

impl fmt::Display for Removed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whose = match &self.job {
            Some(job) => format!("of job {job} "),
            None => String::new(),
        };
        if self.containers.is_empty() {
            return write!(f, "no containers {whose}kept by `run-local --keep`: nothing to remove");
        }
        write!(f, "removed {} containers {whose}kept by `run-local --keep`", self.containers.len())?;
        let mut by_job: Vec<(&str, Vec<&str>)> = Vec::new();
        for c in &self.containers {
            match by_job.iter_mut().find(|(j, _)| *j == c.job) {
                Some((_, pods)) => pods.push(&c.pod),
                None => by_job.push((&c.job, vec![&c.pod])),
            }
        }
        for (job, pods) in by_job {
            write!(f, "\n  job {job}: {}", pods.join(", "))?;
        }
        write!(f, "\n  and {} folders of their termination logs and volumes", self.folders.len())
    }
}

pub fn run(job: Option<&str>, out: &Reporter) -> Result<()> {
    let removed = crate::runtime()?.block_on(remove_kept(job))?;
    out.result(&removed);
    Ok(())
}

/// Removes every kept container (of `job` only, when given) and the folders
/// of their runs.
pub async fn remove_kept(job: Option<&str>) -> Result<Removed> {
    let docker = docker::connect().await?;
    let label = match job {
        Some(job) => format!("{JOB_LABEL}={job}"),
        None => RUN_LABEL.to_owned(),
    };
    let filters = HashMap::from([("label".to_owned(), vec![label])]);
    let options = ListContainersOptions { all: true, filters: Some(filters), ..Default::default() };
    let listed = docker.list_containers(Some(options)).await.context("listing the containers run-local kept")?;
    let mut containers = Vec::new();
    let mut folders = Vec::new();
    for c in listed {
        let labels = c.labels.unwrap_or_default();
        let label = |key: &str| labels.get(key).cloned().unwrap_or_default();
        let (job, pod, run) = (label(JOB_LABEL), label(POD_LABEL), label(RUN_LABEL));
        let Some(id) = c.id else { continue };
        let options = RemoveContainerOptions { force: true, ..Default::default() };
        docker
            .remove_container(&id, Some(options))
            .await
            .with_context(|| format!("removing the container of pod {pod}"))?;
        // The folder run-local made for the run (see `run_job`).
        let folder = crate::target_dir().join("local").join(format!("{job}-{run}"));
        if !job.is_empty() && !run.is_empty() && folder.exists() && !folders.contains(&folder.display().to_string()) {
            std::fs::remove_dir_all(&folder).with_context(|| format!("removing {}", folder.display()))?;
            folders.push(folder.display().to_string());
        }
        containers.push(KeptPod { job, pod, run });
    }
    containers.sort_by(|a, b| (&a.job, &a.pod).cmp(&(&b.job, &b.pod)));
    Ok(Removed { job: job.map(str::to_owned), containers, folders })
}
