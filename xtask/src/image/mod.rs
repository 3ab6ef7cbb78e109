//! `cargo xtask image`: the worker's image, built by the Docker daemon
//! (`docker`) or without one (`oci`), always ending as an OCI image layout
//! under target/ that `push` uploads.
//!
//! Both builders make the same image: the one file /job-worker (mode 0555,
//! owner 0:0), user 65532:65532, that entrypoint, the same OCI labels.

pub mod docker;
pub mod layout;
pub mod oci;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::Serialize;
use xshell::{Shell, cmd};

use crate::flags::{Builder, BuilderFlags, ImageFlags, Target};
use crate::image_ref::ImageRef;
use crate::report::Reporter;
use crate::{Error, build, project_root};

pub const BINARY_PATH: &str = "/job-worker";
pub const BINARY_MODE: u32 = 0o555;
pub const USER: &str = "65532:65532";

/// Appends one regular file owned by 0:0: the layer, the build context and
/// the archive `--load` sends are all made of these.
pub fn tar_file(tar: &mut tar::Builder<Vec<u8>>, path: &str, bytes: &[u8], mode: u32, mtime: u64) {
    let mut header = tar::Header::new_ustar();
    header.set_path(path).expect("a short relative path");
    header.set_size(bytes.len() as u64);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(mtime);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    tar.append(&header, bytes).expect("writing to memory");
}

/// The OCI labels, the same from both builders (the Dockerfile sets them
/// from build arguments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labels {
    pub version: String,
    pub revision: String,
    pub source: String,
}

impl Labels {
    pub fn map(&self) -> BTreeMap<&'static str, String> {
        BTreeMap::from([
            ("org.opencontainers.image.title", "job-worker".to_owned()),
            (
                "org.opencontainers.image.description",
                "A flaky Kubernetes Job workload: fails on purpose, in every way real programs fail".to_owned(),
            ),
            ("org.opencontainers.image.source", self.source.clone()),
            ("org.opencontainers.image.version", self.version.clone()),
            ("org.opencontainers.image.revision", self.revision.clone()),
            ("org.opencontainers.image.licenses", "MIT OR Apache-2.0".to_owned()),
        ])
    }

    /// This version, and the commit the tree is at (`-dirty` with uncommitted changes).
    pub fn of_checkout(sh: &Shell) -> Labels {
        let revision =
            cmd!(sh, "git rev-parse HEAD").quiet().ignore_stderr().read().unwrap_or_else(|_| "unknown".into());
        let dirty = cmd!(sh, "git status --porcelain --untracked-files=no")
            .quiet()
            .ignore_stderr()
            .read()
            .is_ok_and(|s| !s.is_empty());
        Labels {
            version: env!("CARGO_PKG_VERSION").into(),
            revision: if dirty { format!("{revision}-dirty") } else { revision },
            source: env!("CARGO_PKG_REPOSITORY").into(),
        }
    }
}

/// The time stamped into the image: SOURCE_DATE_EPOCH (the reproducible
/// builds convention), else the last commit's time, so that the same sources
/// give the same image.
pub fn source_date_epoch(sh: &Shell) -> Result<u64> {
    if let Some(v) = std::env::var_os("SOURCE_DATE_EPOCH").filter(|v| !v.is_empty()) {
        let v = v.to_string_lossy();
        return v.trim().parse().map_err(|_| {
            Error::usage(format!("SOURCE_DATE_EPOCH {v:?}: expected seconds since 1970 as a whole number")).into()
        });
    }
    let time = cmd!(sh, "git log -1 --format=%ct").quiet().ignore_stderr().read().context(
        "cannot read the last commit's time for the image timestamp: set SOURCE_DATE_EPOCH or build in a git checkout",
    )?;
    time.trim().parse().context("git printed a commit time that is not a number")
}

/// A built image, in its layout.
#[derive(Debug, Clone, Serialize)]
pub struct BuiltImage {
    pub reference: ImageRef,
    pub builder: Builder,
    #[serde(flatten)]
    pub image: layout::Image,
    /// The daemon's image ID, for the docker builder.
    pub docker_id: Option<String>,
}

impl std::fmt::Display for BuiltImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let size = self.image.compressed_size();
        write!(
            f,
            "image {} (built by {})\n  digest           {}\n  compressed size  {size} bytes ({:.1} KiB)\n  layout           {}",
            self.reference,
            self.builder,
            self.image.digest,
            size as f64 / 1024.0,
            self.image.layout.display(),
        )?;
        if let Some(id) = &self.docker_id {
            write!(f, "\n  docker image ID  {id}")?;
        }
        Ok(())
    }
}

pub fn default_layout() -> PathBuf {
    crate::target_dir().join("oci").join("job-worker")
}

pub fn run(flags: &ImageFlags, out: &Reporter) -> Result<()> {
    let reference = flags.image.clone().unwrap_or_else(default_reference);
    let built = crate::runtime()?.block_on(build_image(&reference, &flags.build, out))?;
    out.result(&built);
    Ok(())
}

/// What `image` builds with no `--image`: `job-test:<version>`, for the
/// local daemon.
pub fn default_reference() -> ImageRef {
    ImageRef::parse(&format!("job-test:{}", env!("CARGO_PKG_VERSION"))).expect("the default image is a valid reference")
}

/// Builds the worker, then the image; the result is in the layout.
pub async fn build_image(reference: &ImageRef, settings: &BuilderFlags, out: &Reporter) -> Result<BuiltImage> {
    if reference.digest.is_some() {
        return Err(Error::usage(format!(
            "--image {reference}: names a digest; a build makes a new image, so give a tag (repo:tag) and the digest \
             is printed"
        ))
        .into());
    }
    let reference = reference.clone();
    let builder = match settings.builder {
        Some(b) => b,
        None if docker::daemon_answers().await => Builder::Docker,
        None => {
            out.status("no Docker daemon answers: building without one (--builder oci)");
            Builder::Oci
        }
    };
    if settings.load && builder == Builder::Docker {
        out.warn("--load is for --builder oci: the docker builder's image is in the daemon already");
    }

    let reporter = *out;
    let worker = tokio::task::spawn_blocking(move || build::build(Target::Musl, &reporter))
        .await
        .context("the build task")??;
    let sh = Shell::new()?;
    sh.change_dir(project_root());
    let labels = Labels::of_checkout(&sh);
    let mtime = source_date_epoch(&sh)?;
    let binary = std::fs::read(&worker.path).with_context(|| format!("reading {}", worker.path.display()))?;
    let layout_dir = settings.layout.clone().unwrap_or_else(default_layout);
    let ref_name = reference.tag.clone().unwrap_or_else(|| "latest".into());

    match builder {
        Builder::Oci => {
            out.status(format!("assembling {reference} without a daemon in {}", layout_dir.display()));
            let image = oci::build(&binary, &labels, mtime, &layout_dir, &ref_name)?;
            if settings.load {
                let docker = docker::connect().await?;
                docker::load(&docker, &image, &reference.to_string()).await?;
                out.status(format!("loaded {reference} into the Docker daemon"));
            }
            Ok(BuiltImage { reference, builder, image, docker_id: None })
        }
        Builder::Docker => {
            let docker = docker::connect().await?;
            let dockerfile = std::fs::read(project_root().join("Dockerfile")).context("reading the Dockerfile")?;
            let context = docker::context_tar(&dockerfile, &binary, mtime);
            out.status(format!("building {reference} with the Docker daemon ({} byte context)", context.len()));
            let id = docker::build(&docker, context, &reference.to_string(), &labels, out).await?;
            // The image ID is the digest of its config, which the export
            // keeps byte for byte: the same ID means the layout has it already.
            let image = match layout::read_image(&layout_dir) {
                Ok(existing)
                    if existing.config.digest == id && existing.blobs().all(|b| existing.read_blob(b).is_ok()) =>
                {
                    out.status("  unchanged since the last export: the layout is reused");
                    layout::write_image(&layout_dir, existing.config.clone(), existing.layers.clone(), &ref_name)?
                }
                _ => docker::export(&docker, &reference.to_string(), &layout_dir, &ref_name)
                    .await
                    .with_context(|| format!("exporting {reference} from the daemon into {}", layout_dir.display()))?,
            };
            Ok(BuiltImage { reference, builder, image, docker_id: Some(id) })
        }
    }
}
