//! `cargo xtask run-local`: run a Job on the local Docker engine, with no
//! cluster. The very Job object `render` produces (or a Job file) is run
//! by the Job controller's documented rules (`controller`), each pod a
//! container made from the pod template (`pod`). The live table, the
//! report, its JSON and the exit codes are those of `cargo xtask watch`.
//!
//! A real cluster remains the source of truth: the first line says that
//! this is the local engine, and whose rules: those of one Kubernetes
//! version (`--kube-version`, the newest by default), adapted to as `apply`
//! adapts to a cluster. `--evict` evicts a running pod as the Eviction API
//! would. Back-offs can be shrunk for demos
//! (`--time-scale`); the deadline is not. Every container is removed when
//! the run ends, on success, failure, Ctrl-C or an error (one clean-up for
//! all), unless `--keep`. Container names carry the run's id, so no run
//! meets another's containers.
//!
//! Here: the command, the Job adapted to the version, the image, signals.
//! The run itself is `job_run` ([`LocalRun`]: one method per event); pod
//! and container names are `naming`'s.

pub mod controller;
mod job_run;
pub mod kept;
mod naming;
pub mod pod;

pub use job_run::LocalRun;
pub(crate) use naming::random_suffix;

use std::time::Duration;

use anyhow::{Context, Result};
use bollard::Docker;
use bollard::query_parameters::CreateImageOptions;
use futures_util::TryStreamExt;
use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt;

use crate::flags::RunLocalFlags;
use crate::image_ref::ImageRef;
use crate::manifest::versions::{self, KubeVersion};
use crate::manifest::{self, objects, params};
use crate::report::Reporter;
use crate::report::job::JobReport;
use crate::{Error, ErrorKind};

/// How a local run is shaped beyond the Job.
#[derive(Debug, Clone)]
pub struct Options {
    /// Every back-off is multiplied by this (1 = as a cluster waits).
    pub time_scale: f64,
    /// Keep the containers (and their logs) after the run.
    pub keep: bool,
    pub timeout: Option<Duration>,
    /// Whose Job controller's rules the run follows.
    pub version: KubeVersion,
    /// When a running pod is evicted, from the run's start.
    pub evict: Vec<Duration>,
    /// A line said right after the first (the odds of the rendered Job).
    pub summary: Option<String>,
}

pub fn run(flags: &RunLocalFlags, out: &Reporter) -> Result<()> {
    let mut summary = None;
    let job = match &flags.file {
        Some(path) => manifest::job_from_file(path)?,
        None => {
            // With no --image, the image `push` and `release` make by
            // default, not the manifests' placeholder (no cluster's).
            let mut job_flags = flags.job.clone();
            if job_flags.image.is_none() {
                job_flags.image = Some(crate::image::default_reference()?);
            }
            let (p, warnings) = params::job_params(&job_flags)?;
            for w in &warnings {
                out.warn(w);
            }
            summary = Some(crate::odds::summary(&p));
            objects::job(&p)
        }
    };
    let options = Options {
        time_scale: flags.time_scale,
        keep: flags.keep,
        timeout: flags.timeout,
        version: flags.kube_version.unwrap_or(versions::NEWEST),
        evict: flags.evict.clone(),
        summary,
    };
    crate::runtime()?.block_on(async {
        let report = run_job(&job, &options, out).await?;
        crate::report::files::ReportFiles::from(&flags.files).keep(&report, out)?;
        out.result(&report);
        Ok(report.verdict()?)
    })
}

/// The Job as the chosen version takes it (`versions::adapt_job`, as
/// `apply` adapts to a cluster): what it cannot take is refused (exit 2).
/// A Job the built-in controller would skip (spec.managedBy names another
/// controller) is refused too.
fn adapt(job: &Job, version: KubeVersion, out: &Reporter) -> Result<Job> {
    let mut job = job.clone();
    let warnings =
        versions::adapt_job(&mut job, version).into_result(version, "--kube-version, the local run's rules")?;
    for w in &warnings {
        out.warn(w);
    }
    if let Some(manager) = crate::cluster::status::managed_by(&job) {
        // "Jobs" documentation, "Delegation of managing a Job object to
        // external controller"; job_controller.go's syncJob returns early
        // ("Skip syncing the job as it is managed by an external controller").
        return Err(Error::usage(format!(
            "job.batch/{}: spec.managedBy is {manager:?}, not {}: the built-in Job controller skips this Job and \
             {manager} runs it, so it is not run locally either; leave spec.managedBy out to run it here",
            job.name_any(),
            crate::manifest::params::JOB_CONTROLLER
        ))
        .into());
    }
    Ok(job)
}

/// Runs the Job to its end on the local engine.
pub async fn run_job(job: &Job, options: &Options, out: &Reporter) -> Result<JobReport> {
    LocalRun::new(job, options, out).await?.run().await
}

/// The image in the local daemon: there already, or pulled (a registry on
/// this machine is reached over plain HTTP by the daemon's own rule).
pub(crate) async fn ensure_image(docker: &Docker, reference: &str, out: &Reporter) -> Result<String> {
    let parsed = ImageRef::parse(reference)
        .map_err(|why| Error::usage(format!("the Job's image {reference}: not an image reference ({why})")))?;
    let reference = parsed.pull_reference().to_string();
    if docker.inspect_image(&reference).await.is_ok() {
        return Ok(reference);
    }
    // The embedded registry keeps what was pushed in the target directory:
    // started again (after a reboot, say), it serves the pipeline's images.
    if parsed.registry.is_some() && parsed.registry == crate::local_registry::address().ok() {
        tokio::task::block_in_place(|| crate::local_registry::ensure_running(out))?;
    }
    out.status(format!("pulling {reference} into the local Docker engine"));
    let options = CreateImageOptions { from_image: Some(reference.clone()), ..Default::default() };
    docker.create_image(Some(options), None, None).try_collect::<Vec<_>>().await.map_err(|e| {
        Error::prerequisite(format!(
            "{reference} is not in the local Docker engine and cannot be pulled ({e}). Build it there with \
             `cargo xtask image` (the docker builder, or --builder oci --load), or push it with `cargo xtask push` \
             (with no --image: the default this run looks for)"
        ))
    })?;
    Ok(reference)
}

/// SIGINT and SIGTERM, as error kinds (exit 130 and 143); `logs -f` uses
/// them too.
pub(crate) struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    pub(crate) fn new() -> Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt()).context("listening for Ctrl-C")?,
            terminate: signal(SignalKind::terminate()).context("listening for SIGTERM")?,
        })
    }

    pub(crate) async fn next(&mut self) -> ErrorKind {
        tokio::select! {
            _ = self.interrupt.recv() => ErrorKind::Interrupted,
            _ = self.terminate.recv() => ErrorKind::Terminated,
        }
    }
}
