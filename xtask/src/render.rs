//! `cargo xtask render`: the manifests as YAML on stdout, in a file, or
//! refreshed in manifests/ (the golden files). Every check runs before
//! anything is written.

use anyhow::{Context, Result};
use serde_json::json;

use crate::flags::RenderFlags;
use crate::manifest::versions::{self, NEWEST};
use crate::manifest::{self, params};
use crate::report::Reporter;
use crate::{odds, project_root};

/// The golden files `--write` refreshes, relative to the project root.
pub const JOB_FILE: &str = "manifests/job-deploy.yaml";
pub const AUTH_FILE: &str = "manifests/authorization.yaml";

pub fn run(flags: &RenderFlags, out: &Reporter) -> Result<()> {
    let (job, mut warnings) = params::job_params(&flags.job)?;
    warnings.extend(params::unpinned_image_warning(&flags.job, &job));
    let (auth, auth_warnings) = params::auth_params(&flags.auth, &job.namespace)?;
    warnings.extend(auth_warnings);
    let version = flags.kube_version.unwrap_or(NEWEST);
    let mut objects = manifest::all_objects(&job, &auth);
    let source = if flags.kube_version.is_some() { "--kube-version" } else { "the newest the schema covers" };
    warnings.extend(versions::adapt(&mut objects, version).into_result(version, source)?);
    for w in &warnings {
        out.warn(w);
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
            (AUTH_FILE, manifest::to_yaml(&manifest::auth_objects(&auth))?),
        ];
        for (file, yaml) in &files {
            let path = project_root().join(file);
            std::fs::write(&path, yaml).with_context(|| format!("writing {}", path.display()))?;
        }
        out.result_parts(
            format!("wrote {JOB_FILE} and {AUTH_FILE}"),
            &json!({ "written": files.iter().map(|(f, _)| f).collect::<Vec<_>>() }),
        );
        return Ok(());
    }

    let yaml = manifest::to_yaml(&objects)?;
    match &flags.out {
        Some(path) => {
            std::fs::write(path, &yaml).with_context(|| format!("writing {}", path.display()))?;
            out.result_parts(
                format!(
                    "wrote {} ({})",
                    path.display(),
                    objects.iter().map(|o| o.describe()).collect::<Vec<_>>().join(", ")
                ),
                &json!({ "written": [path], "objects": objects.iter().map(|o| o.describe()).collect::<Vec<_>>() }),
            );
        }
        // The YAML is the result; --output json gives the same objects as
        // one JSON object, a v1 List, which `kubectl apply -f` also takes.
        None => out.result_parts(
            yaml.trim_end(),
            &json!({ "apiVersion": "v1", "kind": "List", "items": serde_json::to_value(&objects)? }),
        ),
    }
    Ok(())
}
