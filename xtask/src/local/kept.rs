//! `cargo xtask delete --local`: the containers `run-local --keep` kept,
//! found by their labels (`job-test.local/kept=true`, and
//! `job-test.local/{run,job,pod}` to say whose), removed with the run's
//! folder of termination logs and volumes. A run still going (one of its
//! containers running) is left alone, and said to be: its own clean-up, or
//! a later `delete --local`, removes it.

use std::collections::HashMap;
use std::fmt;

use anyhow::{Context, Result};
use bollard::models::{ContainerSummary, ContainerSummaryStateEnum};
use bollard::query_parameters::{ListContainersOptions, RemoveContainerOptions};
use serde::Serialize;

use super::pod::{JOB_LABEL, KEPT_LABEL, POD_LABEL, RUN_LABEL};
use crate::image::docker;
use crate::report::Reporter;

/// What `delete --local` removed.
#[derive(Debug, Serialize)]
pub struct Removed {
    /// The Job asked for; None for every Job.
    pub job: Option<String>,
    pub containers: Vec<KeptPod>,
    /// The containers of kept runs still going (one of their containers
    /// running), not removed.
    pub skipped: Vec<KeptPod>,
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
            write!(f, "no containers {whose}kept by `run-local --keep`: nothing to remove")?;
        } else {
            write!(f, "removed {} containers {whose}kept by `run-local --keep`", self.containers.len())?;
            by_job(f, &self.containers)?;
            write!(f, "\n  and {} folders of their termination logs and volumes", self.folders.len())?;
        }
        if !self.skipped.is_empty() {
            write!(
                f,
                "\nleft {} containers of runs still going (a container of theirs is running); once they end, \
                 run `delete --local` again",
                self.skipped.len()
            )?;
            by_job(f, &self.skipped)?;
        }
        Ok(())
    }
}

/// `  job JOB: POD, POD` lines, one per Job.
fn by_job(f: &mut fmt::Formatter<'_>, containers: &[KeptPod]) -> fmt::Result {
    let mut jobs: Vec<(&str, Vec<&str>)> = Vec::new();
    for c in containers {
        match jobs.iter_mut().find(|(j, _)| *j == c.job) {
            Some((_, pods)) => pods.push(&c.pod),
            None => jobs.push((&c.job, vec![&c.pod])),
        }
    }
    for (job, pods) in jobs {
        write!(f, "\n  job {job}: {}", pods.join(", "))?;
    }
    Ok(())
}

pub fn run(job: Option<&str>, out: &Reporter) -> Result<()> {
    let removed = crate::runtime()?.block_on(remove_kept(job))?;
    out.result(&removed);
    Ok(())
}

/// Removes every kept container (of `job` only, when given) and the folders
/// of their runs; the runs still going are left as they are.
pub async fn remove_kept(job: Option<&str>) -> Result<Removed> {
    let docker = docker::local_daemon().await?;
    // Only what `--keep` marked: a run without it is not ours to remove,
    // whether it is still going or its clean-up has not yet run.
    let mut labels = vec![format!("{KEPT_LABEL}=true")];
    labels.extend(job.map(|job| format!("{JOB_LABEL}={job}")));
    let filters = HashMap::from([("label".to_owned(), labels)]);
    let options = ListContainersOptions { all: true, filters: Some(filters), ..Default::default() };
    let listed = docker.list_containers(Some(options)).await.context("listing the containers run-local kept")?;
    let label =
        |c: &ContainerSummary, key: &str| c.labels.as_ref().and_then(|l| l.get(key)).cloned().unwrap_or_default();
    // A run with a running container is still going (or stopping): none of
    // its containers, nor its folder, is touched.
    let going: Vec<String> = listed
        .iter()
        .filter(|c| {
            matches!(
                c.state,
                Some(
                    ContainerSummaryStateEnum::RUNNING
                        | ContainerSummaryStateEnum::RESTARTING
                        | ContainerSummaryStateEnum::PAUSED
                )
            )
        })
        .map(|c| label(c, RUN_LABEL))
        .collect();
    let mut containers = Vec::new();
    let mut skipped = Vec::new();
    let mut folders = Vec::new();
    for c in &listed {
        let (job, pod, run) = (label(c, JOB_LABEL), label(c, POD_LABEL), label(c, RUN_LABEL));
        let Some(id) = &c.id else { continue };
        if going.contains(&run) {
            skipped.push(KeptPod { job, pod, run });
            continue;
        }
        let options = RemoveContainerOptions { force: true, ..Default::default() };
        docker
            .remove_container(id, Some(options))
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
    let order = |a: &KeptPod, b: &KeptPod| (&a.job, &a.pod).cmp(&(&b.job, &b.pod));
    containers.sort_by(order);
    skipped.sort_by(order);
    Ok(Removed { job: job.map(str::to_owned), containers, skipped, folders })
}
