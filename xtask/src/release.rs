//! `cargo xtask release`: the whole pipeline. Build the static worker and
//! its image, push it, render the manifests with the image pinned by
//! digest, apply them, watch the Job to its end and report what the
//! retries did. Every step is also its own subcommand.
//!
//! With no registry named, the image goes to the local default registry;
//! with no cluster configured (no --server, --kubeconfig, KUBECONFIG or
//! ~/.kube/config), or with `--local`, the rendered Job runs on the local
//! Docker engine (`local`), and the manifests stay in target/release/ for
//! `cargo xtask apply -f`.
//!
//! `--dry-run` builds the image (here, nothing leaves the machine) but
//! pushes nothing: the manifests name the image by the digest it would be
//! pushed with (push uploads the layout's bytes as they are), and the apply
//! is a dry run (`cluster::dry_run`); `client` asks no cluster either.

use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::choices::DryRun;
use crate::cluster::apply::Applied;
use crate::cluster::{self, apply, dry_run, watch};
use crate::flags::{JobFlags, ReleaseFlags};
use crate::image_ref::ImageRef;
use crate::manifest::params::UnpinnedImage;
use crate::manifest::{self, params, pull_secret, versions};
use crate::report::Reporter;
use crate::report::job::JobReport;
use crate::{image, local, odds, push};

pub fn run(flags: &ReleaseFlags, out: &Reporter) -> Result<()> {
    // Everything that can be checked is checked before anything is built.
    // A dry run starts no embedded registry: it pushes nothing.
    let target = match flags.dry_run {
        Some(_) => push::target::target_reference(flags.job.image.as_ref())?,
        None => push::resolve_target(flags.job.image.as_ref(), out)?,
    };
    let job_flags = JobFlags { image: Some(target.clone()), ..flags.job.clone() };
    let (mut job, rbac, warnings) =
        params::rendering(&job_flags, &flags.rbac, flags.create_pull_secret, UnpinnedImage::Quiet)?;
    for w in &warnings {
        out.warn(w);
    }
    let inputs =
        push::credentials::Inputs::from_process(flags.registry.username.clone(), flags.registry.password_stdin)?;
    let ca = push::read_ca(flags.registry.registry_ca_cert.as_deref())?;
    // Looked up once, before anything is built (blocking: a credential
    // helper may run): the push uses it, and the pull secret is made of it.
    // A dry run pushes nothing, so without a pull secret it needs none (and
    // `--dry-run=client` runs no helper: it makes no request at all).
    let login = match flags.dry_run.is_none() || flags.create_pull_secret {
        true => Some(push::credentials::lookup(&push::target::registry_host(&target), &inputs)?),
        false => None,
    };
    let pull_secret = match (&login, flags.create_pull_secret) {
        (Some((credential, source)), true) => Some(pull_secret::secret(&job, credential, source)?),
        _ => None,
    };

    crate::runtime()?.block_on(async {
        // The cluster first: what its version cannot take is refused before
        // anything is built or pushed. With --local, a configured cluster
        // still gives the version whose rules the local run follows.
        let connected = match flags.dry_run {
            // A client dry run asks no cluster (and reads no configuration).
            Some(DryRun::Client) => None,
            _ => match cluster::connect(&cluster::Access::from(&flags.cluster), out).await {
                Err(e) if flags.dry_run.is_some() => {
                    return Err(e.context("--dry-run=server asks the cluster; --dry-run=client checks without one"));
                }
                Ok(c) => Some(c),
                Err(e) if crate::error::kind(&e) == Some(crate::ErrorKind::NoCluster) => {
                    out.status(format!("{}: the Job will run on the local Docker engine", cluster::NO_CLUSTER));
                    None
                }
                Err(_) if flags.local => None,
                Err(e) => return Err(e),
            },
        };
        let version = match &connected {
            Some(c) => {
                let mut objects = manifest::all_objects(&job, &rbac);
                let version = apply::for_server(c, &mut objects, out).await?;
                if flags.local {
                    out.status(format!(
                        "the cluster at {} runs Kubernetes {version}: the local run follows its rules",
                        c.server
                    ));
                } else {
                    out.status(format!("the cluster at {} runs Kubernetes {version}", c.server));
                    // A Secret someone else made is refused before the build.
                    objects.extend(pull_secret.map(manifest::Object::Secret));
                    apply::refuse_foreign_secrets(c, &objects).await?;
                }
                version
            }
            None => versions::NEWEST,
        };
        // With --local the cluster only gave its version: nothing is applied to it.
        let cluster = connected.filter(|_| !flags.local);

        out.status("1/5 build: the static worker and its image");
        let built = image::build_image(&target, &image::BuildOptions::from(&flags.build), out).await?;
        let (pushed, sbom) = match flags.dry_run {
            Some(_) => {
                let reference = target.with_digest(&built.image.digest);
                out.status(format!("2/5 push: nothing pushed (--dry-run); it would push {reference}"));
                out.status("3/5 render, with the image pinned by the digest it would be pushed with");
                (reference, None)
            }
            None => {
                out.status("2/5 push");
                let (credential, source) = login.as_ref().context("a release that pushes looked its credential up")?;
                let pushed =
                    push::push(&built, &target, credential, source, ca, &push::Transport::from(&flags.registry), out)
                        .await?;
                out.status(format!("  {} {}", if pushed.unchanged { "unchanged" } else { "pushed" }, pushed.reference));
                if let Some(sbom) = &pushed.sbom {
                    out.status(format!("  sbom {sbom}"));
                }
                out.status("3/5 render, with the image pinned by digest");
                (pushed.reference, pushed.sbom.map(|s| s.reference))
            }
        };
        job.pin(pushed.clone());
        out.status(format!("  {}", odds::summary(&job)));
        let mut objects = manifest::all_objects(&job, &rbac);
        if let (Some((credential, source)), true) = (&login, flags.create_pull_secret) {
            pull_secret::add(&mut objects, &job, credential, source, out)?;
        }
        if flags.dry_run.is_some() {
            return dry_run::release(cluster.as_ref(), &job, objects, version, out).await;
        }
        // Checked against this version above: the warnings were shown then.
        versions::adapt(&mut objects, version);
        let dir = crate::target_dir().join("release");
        std::fs::create_dir_all(&dir)?;
        let file = dir.join(format!("{}.yaml", job.name));
        crate::render::write_manifests(&file, &objects, &manifest::to_yaml(&objects)?, out)?;
        out.status(format!("  wrote {}", file.display()));

        let Some(cluster) = cluster else {
            out.status("4/5 run on the local Docker engine (no cluster is used)");
            let options = local::Options {
                time_scale: flags.time_scale,
                keep: flags.keep,
                timeout: flags.timeout,
                version,
                evict: Vec::new(),
                summary: None,
            };
            let job_object = objects.iter().find_map(|o| match o {
                manifest::Object::Job(j) => Some(j.as_ref().clone()),
                _ => None,
            });
            let report = local::run_job(&job_object.context("the rendering has a Job")?, &options, out).await?;
            crate::report::files::ReportFiles::from(&flags.files).keep(&report, out)?;
            let verdict = report.verdict();
            out.result(&Released {
                reference: pushed.clone(),
                sbom,
                manifests: file,
                ran_on: RanOn::Local,
                applied: None,
                report: Some(report),
            });
            return Ok(verdict?);
        };
        out.status("4/5 apply");
        let applied = apply::apply_all(&cluster, objects, out).await?;

        out.status("5/5 watch");
        let report = watch::watch(&cluster, &job.name, &job.namespace, flags.timeout, out).await?;
        crate::report::files::ReportFiles::from(&flags.files).keep(&report, out)?;
        let verdict = report.verdict();
        out.result(&Released {
            reference: pushed.clone(),
            sbom,
            manifests: file,
            ran_on: RanOn::Cluster { server: cluster.server.clone() },
            applied: Some(applied),
            report: Some(report),
        });
        Ok(verdict?)
    })
}

/// Where the Job ran.
#[derive(Serialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
enum RanOn {
    Cluster {
        server: String,
    },
    /// The local Docker engine, by the Job controller's documented rules.
    Local,
}

/// What a release did: the pinned image, the manifests it wrote, and, with
/// a cluster, what was applied and what the Job did.
#[derive(Serialize)]
struct Released {
    reference: ImageRef,
    /// The image's SBOM in the registry (`registry/repository@sha256:...`).
    sbom: Option<ImageRef>,
    manifests: PathBuf,
    ran_on: RanOn,
    applied: Option<Applied>,
    report: Option<JobReport>,
}

impl std::fmt::Display for Released {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}", self.reference)?;
        if let Some(sbom) = &self.sbom {
            writeln!(f, "sbom {sbom}")?;
        }
        if let Some(applied) = &self.applied {
            writeln!(f, "{applied}")?;
        }
        if let RanOn::Local = self.ran_on {
            writeln!(
                f,
                "ran on the local Docker engine, not a cluster; for a cluster: `cargo xtask apply -f {}` (and \
                 `cargo xtask watch`)",
                self.manifests.display()
            )?;
        }
        match &self.report {
            Some(report) => write!(f, "{report}"),
            None => write!(f, "rendered {}", self.manifests.display()),
        }
    }
}
