//! `apply --dry-run` and `release --dry-run`: what an apply would change,
//! object by object, with nothing changed.
//!
//! `server`: each object goes through `apply`'s own code (`apply::Mode::
//! DryRun`): the same forced server-side apply with `dryRun=All`, so the
//! API server decodes, defaults, validates and admits it and stores
//! nothing. The answer is compared with the live object here (`compare`:
//! managedFields, resourceVersion, generation and status left out, since
//! they move without the user changing anything) to tell `configured` from
//! `unchanged`. A Job whose pod template changed is refused with 422 "field
//! is immutable" as in a real apply; that is reported `replaced` (what
//! `apply` would do: delete it and its pods, create it again) and nothing
//! is deleted.
//!
//! A Namespace that does not exist yet cannot hold dry-run objects: the
//! API server answers NotFound for every object in it, as `kubectl apply
//! --dry-run=server` shows (kubernetes/kubernetes#83562). Like timoni, the
//! Namespace is reported `created` and so is everything in it, marked as
//! checked here only (the rendering's own rules), never by the server.
//!
//! `client`: the objects are rendered (or read) and checked here, for the
//! newest Kubernetes the schema covers; no request is made.

use std::fmt;

use anyhow::{Context, Result};
use kube::ResourceExt;
use serde::Serialize;

use super::Cluster;
use super::apply::{self, Mode, Outcome, kubectl_name};
use crate::choices::DryRun;
use crate::image_ref::ImageRef;
use crate::manifest::params::JobParams;
use crate::manifest::versions::{self, KubeVersion, NEWEST};
use crate::manifest::{self, Object};
use crate::report::Reporter;

/// `apply --dry-run=MODE`.
pub fn run(mode: DryRun, access: &super::Access, mut objects: Vec<Object>, out: &Reporter) -> Result<()> {
    let report = match mode {
        DryRun::Client => client(objects, out)?,
        DryRun::Server => crate::runtime()?.block_on(async {
            let cluster = super::connect(access, out).await?;
            let version = apply::for_server(&cluster, &mut objects, out).await?;
            server(&cluster, objects, version, out).await
        })?,
    };
    out.result(&report);
    Ok(())
}

/// What a dry run found: one line per object, in the order `apply` takes them.
#[derive(Debug, Serialize)]
pub struct DryRunReport {
    pub dry_run: DryRun,
    /// The API server asked (server dry runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The Kubernetes version the objects were rendered for: the server's,
    /// or for `client` the newest the schema covers.
    pub kubernetes: String,
    pub objects: Vec<DryRunObject>,
}

#[derive(Debug, Serialize)]
pub struct DryRunObject {
    /// kubectl's name: `job.batch/job-test`.
    pub object: String,
    /// What a real apply would do; none for `client` (no cluster was asked).
    pub result: Option<Outcome>,
    /// Who checked it.
    pub checked_by: CheckedBy,
    /// For `configured`: the fields that would change (paths, never values).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckedBy {
    /// The API server validated and admitted it (`dryRun=All`).
    Server,
    /// Only the rendering's rules here: a client dry run, or an object in a
    /// Namespace the dry run would create (the server cannot take it).
    Client,
}

impl fmt::Display for DryRunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match self.dry_run {
            DryRun::Server => "server dry run",
            DryRun::Client => "client dry run",
        };
        for o in &self.objects {
            writeln!(f, "{}", o.line(mode))?;
        }
        match &self.server {
            Some(server) => write!(
                f,
                "nothing was changed: the API server at {server} (Kubernetes {}) checked what it could and stored nothing",
                self.kubernetes
            ),
            None => write!(
                f,
                "nothing was sent: rendered for Kubernetes {} and checked here only (--dry-run=server asks the cluster)",
                self.kubernetes
            ),
        }
    }
}

impl DryRunObject {
    /// `job.batch/job-test configured (server dry run): spec.activeDeadlineSeconds`
    fn line(&self, mode: &str) -> String {
        let Some(result) = self.result else {
            return format!("{} checked ({mode})", self.object);
        };
        let mut line = format!("{} {} ({mode}", self.object, result.as_str());
        if self.checked_by == CheckedBy::Client {
            line.push_str("; its namespace does not exist yet, so the server could not check it");
        }
        line.push(')');
        match result {
            Outcome::Configured if !self.changes.is_empty() => line.push_str(&format!(": {}", self.changes.join(", "))),
            Outcome::Replaced => line.push_str(
                ": the pod template changed, which Kubernetes does not allow in place; apply would delete the Job and \
                 its pods and create it again",
            ),
            Outcome::Untouched => line.push_str(": it exists and job-test did not create it"),
            _ => {}
        }
        line
    }
}

/// `--dry-run=client`: the objects adapted to the newest version and
/// checked here; no request.
pub fn client(mut objects: Vec<Object>, out: &Reporter) -> Result<DryRunReport> {
    let source = "the newest the schema covers (--dry-run=client asks no cluster)";
    for w in versions::adapt(&mut objects, NEWEST).into_result(NEWEST, source)? {
        out.warn(w);
    }
    apply::in_order(&mut objects);
    let objects = objects
        .iter()
        .map(|o| DryRunObject { object: kubectl_name(o), result: None, checked_by: CheckedBy::Client, changes: vec![] })
        .collect();
    Ok(DryRunReport { dry_run: DryRun::Client, server: None, kubernetes: NEWEST.to_string(), objects })
}

/// `--dry-run=server`: every object through the API server with
/// `dryRun=All`, in `apply`'s order. The objects are already adapted to
/// `version`.
pub async fn server(
    cluster: &Cluster,
    mut objects: Vec<Object>,
    version: KubeVersion,
    out: &Reporter,
) -> Result<DryRunReport> {
    apply::in_order(&mut objects);
    // Refused as a real apply would refuse it: a Secret job-test did not make.
    apply::refuse_foreign_secrets(cluster, &objects).await?;
    // Namespaces this dry run would create: what goes into them cannot be
    // dry-run applied (NotFound), so it is created too, checked here only.
    let mut created: Vec<String> = Vec::new();
    let mut report = Vec::new();
    for object in &objects {
        let name = kubectl_name(object);
        let entry = match object.namespace() {
            Some(ns) if created.iter().any(|c| c == ns) => DryRunObject {
                object: name,
                result: Some(Outcome::Created),
                checked_by: CheckedBy::Client,
                changes: vec![],
            },
            _ => {
                let (result, changes) = apply::apply_one_object(cluster, object, Mode::DryRun, out)
                    .await
                    .with_context(|| format!("the server dry run of {name}"))?;
                DryRunObject { object: name, result: Some(result), checked_by: CheckedBy::Server, changes }
            }
        };
        if let (Object::Namespace(ns), Some(Outcome::Created)) = (object, entry.result) {
            created.push(ns.name_any());
        }
        out.status(entry.line("server dry run"));
        report.push(entry);
    }
    Ok(DryRunReport {
        dry_run: DryRun::Server,
        server: Some(cluster.server.clone()),
        kubernetes: version.to_string(),
        objects: report,
    })
}

/// `release --dry-run`, after the build and the render (`objects`, the pull
/// secret included, with `job.image` pinned by the digest it would be
/// pushed with): write the manifests beside a real release's
/// (`NAME.dry-run.yaml`, so those stay as applied; 0600 when they hold a
/// credential), and dry-run the apply. `version` is the cluster's (checked
/// already), or the newest for `client`.
pub async fn release(
    cluster: Option<&Cluster>,
    job: &JobParams,
    mut objects: Vec<Object>,
    version: KubeVersion,
    out: &Reporter,
) -> Result<()> {
    // Checked (refusals, warnings) before anything is written: for a server
    // dry run before the build, against the server's version.
    let client_report = match cluster {
        Some(_) => None,
        None => Some(client(objects.clone(), out)?),
    };
    versions::adapt(&mut objects, version);
    let dir = crate::target_dir().join("release");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let file = dir.join(format!("{}.dry-run.yaml", job.name));
    crate::render::write_manifests(&file, &objects, &manifest::to_yaml(&objects)?, out)?;
    out.status(format!("  wrote {}", file.display()));
    let dry_run = match (cluster, client_report) {
        (Some(cluster), _) => {
            out.status("4/5 apply, as a server dry run (nothing is stored)");
            server(cluster, objects, version, out).await?
        }
        (None, report) => {
            out.status("4/5 checked here (--dry-run=client: no cluster is asked)");
            report.context("a client dry run made its report above")?
        }
    };
    out.result(&WouldRelease { reference: job.image.clone(), pushed: false, manifests: file, dry_run });
    Ok(())
}

/// What `release --dry-run` found: the image it would push (built, not
/// pushed), the manifests it wrote, what the apply would change.
#[derive(Serialize)]
pub struct WouldRelease {
    reference: ImageRef,
    pushed: bool,
    manifests: std::path::PathBuf,
    dry_run: DryRunReport,
}

impl fmt::Display for WouldRelease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "would push {} (built here; nothing pushed)", self.reference)?;
        writeln!(f, "manifests in {}", self.manifests.display())?;
        write!(f, "{}", self.dry_run)
    }
}
