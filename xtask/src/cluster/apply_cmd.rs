//! `cargo xtask apply`: the objects to apply (a fresh rendering or `-f`
//! files), then either a dry run (`dry_run`) or the apply itself (`apply`).

use anyhow::Result;

use super::apply::{Applied, apply_all, for_server};
use super::{Access, dry_run};
use crate::Error;
use crate::flags::ApplyFlags;
use crate::manifest::params::{self, UnpinnedImage};
use crate::manifest::{self, Object, pull_secret};
use crate::report::Reporter;
use serde::Serialize;

pub fn run(flags: &ApplyFlags, out: &Reporter) -> Result<()> {
    let mut objects = objects(flags, out)?;
    if let Some(mode) = flags.dry_run {
        return dry_run::run(mode, &Access::from(&flags.cluster), objects, out);
    }
    crate::runtime()?.block_on(async {
        let cluster = super::connect(&Access::from(&flags.cluster), out).await?;
        for_server(&cluster, &mut objects, out).await?;
        let applied = apply_all(&cluster, objects, out).await?;
        out.result(&ApplyResult { applied });
        Ok(())
    })
}

/// `apply`'s result: `{"applied": [...]}` in JSON.
#[derive(Serialize)]
struct ApplyResult {
    applied: Applied,
}

impl std::fmt::Display for ApplyResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.applied, f)
    }
}

/// The objects to apply: from the files, or a fresh rendering.
fn objects(flags: &ApplyFlags, out: &Reporter) -> Result<Vec<Object>> {
    if flags.files.is_empty() {
        let (job, rbac, warnings) =
            params::rendering(&flags.job, &flags.rbac, flags.pull_secret.create_pull_secret, UnpinnedImage::Warn)?;
        for w in &warnings {
            out.warn(w);
        }
        let mut objects = manifest::all_objects(&job, &rbac);
        if let Some(inputs) = crate::args::pull_secret_inputs(&flags.pull_secret)? {
            pull_secret::add_found(&mut objects, &job, &inputs, out)?;
        }
        return Ok(objects);
    }
    let mut objects = Vec::new();
    for path in &flags.files {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::usage(format!("-f {}: cannot read it ({e})", path.display())))?;
        let parsed = manifest::from_yaml(&text).map_err(|e| Error::usage(format!("-f {}: {e}", path.display())))?;
        pull_secret::refuse_without_data(&parsed, path)?;
        objects.extend(parsed);
    }
    Ok(objects)
}
