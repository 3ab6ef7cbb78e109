//! `cargo xtask render`: the manifests as YAML on stdout, in a file, or
//! refreshed in manifests/ (the golden files). Every check runs before
//! anything is written. A pull secret's data (`--create-pull-secret`)
//! goes only into an `--out` file, written with mode 0600.

use std::fmt;
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::flags::RenderFlags;
use crate::manifest::params::UnpinnedImage;
use crate::manifest::versions::{self, NEWEST};
use crate::manifest::{self, Object, params, pull_secret};
use crate::report::Reporter;
use crate::{odds, project_root};

/// The golden files `--write` refreshes, relative to the project root.
pub const JOB_FILE: &str = "manifests/job-deploy.yaml";
pub const RBAC_FILE: &str = "manifests/authorization.yaml";

pub fn run(flags: &RenderFlags, out: &Reporter) -> Result<()> {
    let (job, rbac, mut warnings) =
        params::rendering(&flags.job, &flags.rbac, flags.pull_secret.create_pull_secret, UnpinnedImage::Warn)?;
    let version = flags.kube_version.unwrap_or(NEWEST);
    let mut objects = manifest::all_objects(&job, &rbac);
    let source = if flags.kube_version.is_some() { "--kube-version" } else { "the newest the schema covers" };
    warnings.extend(versions::adapt(&mut objects, version).into_result(version, source)?);
    for w in &warnings {
        out.warn(w);
    }
    if let Some(inputs) = crate::args::pull_secret_inputs(&flags.pull_secret)? {
        pull_secret::add_found(&mut objects, &job, &inputs, out)?;
    }
    out.status(odds::summary(&job));

    if flags.write {
        if version != NEWEST {
            return Err(crate::Error::usage(format!(
                "--write with --kube-version {version}: the golden files are rendered for {NEWEST}, the default"
            ))
            .into());
        }
        let files = [
            (JOB_FILE, manifest::to_yaml(&manifest::job_objects(&job))?),
            (RBAC_FILE, manifest::to_yaml(&manifest::rbac_objects(&rbac))?),
        ];
        for (file, yaml) in &files {
            let path = project_root().join(file);
            std::fs::write(&path, yaml).with_context(|| format!("writing {}", path.display()))?;
        }
        out.result(&Written { written: files.iter().map(|(f, _)| PathBuf::from(f)).collect(), objects: None });
        return Ok(());
    }

    // The credential goes only into a file of the owner's (asked for with
    // --out), never to standard output, which ends in terminals, CI logs
    // and pipes: there the pull secret is shown without its data.
    if flags.out.is_none() {
        for name in pull_secret::without_data(&mut objects) {
            out.warn(format!(
                "secret/{name} is shown without its data (the registry credential); `--out FILE` writes it, with \
                 mode 0600, for `cargo xtask apply -f FILE`"
            ));
        }
    }
    let yaml = manifest::to_yaml(&objects)?;
    match &flags.out {
        Some(path) => {
            write_manifests(path, &objects, &yaml, out)?;
            out.result(&Written {
                written: vec![path.clone()],
                objects: Some(objects.iter().map(|o| o.describe()).collect()),
            });
        }
        None => out.result(&Rendered { api_version: "v1", kind: "List", items: objects, yaml }),
    }
    Ok(())
}

/// Writes a rendering to a file: one that holds a pull secret's data with
/// mode 0600, and says so.
pub fn write_manifests(path: &std::path::Path, objects: &[Object], yaml: &str, out: &Reporter) -> Result<()> {
    if pull_secret::holds_credential(objects) {
        crate::write_private(path, yaml.as_bytes())?;
        out.status(format!("{} holds the registry credential: written with mode 0600", path.display()));
        return Ok(());
    }
    std::fs::write(path, yaml).with_context(|| format!("writing {}", path.display()))
}

/// What `--write` and `--out` wrote: the files, and for `--out` the
/// objects in the file (`--write` writes the two golden files).
#[derive(Debug, Serialize)]
pub struct Written {
    pub written: Vec<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub objects: Option<Vec<String>>,
}

impl fmt::Display for Written {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let files: Vec<String> = self.written.iter().map(|p| p.display().to_string()).collect();
        write!(f, "wrote {}", files.join(" and "))?;
        if let Some(objects) = &self.objects {
            write!(f, " ({})", objects.join(", "))?;
        }
        Ok(())
    }
}

/// The manifests on stdout: the YAML is the text; the JSON is the same
/// objects as one JSON object, a v1 List, which `kubectl apply -f` also
/// takes.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rendered {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub items: Vec<Object>,
    /// The items as YAML, serialized once (and checked) before printing.
    #[serde(skip)]
    pub yaml: String,
}

impl fmt::Display for Rendered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.yaml.trim_end())
    }
}
