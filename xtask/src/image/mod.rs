//! `cargo xtask image`: the worker's image, built by the Docker daemon
//! (`docker`) or without one (`oci`), always ending as an OCI image layout
//! under target/ that `push` uploads.
//!
//! Both builders make the same image: the one file /job-worker (mode 0555,
//! owner 0:0), user 65532:65532, that entrypoint, the same OCI labels (in
//! the config, and as the manifests' and the index's annotations), and the
//! same SBOM of the worker (`sbom`), attached to the image in the layout.
//!
//! Platforms: the daemonless builder cross-compiles the worker and makes
//! one manifest per platform under an image index (linux/amd64 and
//! linux/arm64 by default, as ko does), so arm64 nodes pull their own; the
//! Docker builder makes only its daemon's platform (a `FROM scratch`
//! Dockerfile cannot be built for another without emulation) and says so.

pub mod docker;
pub mod layout;
pub mod oci;
pub mod sbom;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::Serialize;
use xshell::{Shell, cmd};

use crate::choices::{Builder, Platform};
use crate::flags::ImageFlags;
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
    /// The workspace's licence, an SPDX expression.
    pub licenses: String,
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
            ("org.opencontainers.image.licenses", self.licenses.clone()),
        ])
    }

    /// The same, as the manifests' and the index's annotations.
    pub fn annotations(&self) -> layout::Annotations {
        self.map().into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
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
            licenses: env!("CARGO_PKG_LICENSE").into(),
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
    /// The SBOM attached to it.
    pub sbom: Option<sbom::Summary>,
}

impl std::fmt::Display for BuiltImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let size = self.image.compressed_size();
        write!(
            f,
            "image {} (built by {})\n  digest           {}\n  platforms        {}\n  compressed size  {size} bytes ({:.1} KiB)\n  layout           {}",
            self.reference,
            self.builder,
            self.image.digest,
            self.image.platforms().join(", "),
            size as f64 / 1024.0,
            self.image.layout.display(),
        )?;
        if let Some(sbom) = &self.sbom {
            write!(f, "\n  sbom             {sbom}")?;
        }
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
    let reference = match &flags.image {
        Some(image) => image.clone(),
        None => default_reference()?,
    };
    let built = crate::runtime()?.block_on(build_image(&reference, &BuildOptions::from(&flags.build), out))?;
    out.result(&built);
    Ok(())
}

/// The pipeline's one default image, what every command takes with no
/// `--image`: this version in the embedded local registry
/// (`127.0.0.1:5000/job-test:<version>`), which `push` and `release` push
/// to, the docker builder tags in the daemon and `run-local` pulls from.
pub fn default_reference() -> Result<ImageRef> {
    crate::local_registry::default_push_target()
}

/// How the image is built: by what, for which platforms, into which OCI
/// layout, and whether the daemonless image is loaded into Docker too.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// None: docker when the daemon answers and can build what is asked, else oci.
    pub builder: Option<Builder>,
    pub load: bool,
    pub layout: Option<PathBuf>,
    /// Empty: the builder's default.
    pub platform: Vec<Platform>,
    /// No SBOM attached (`--sbom=false`).
    pub skip_sbom: bool,
}

/// Builds the worker, then the image; the result is in the layout.
pub async fn build_image(reference: &ImageRef, settings: &BuildOptions, out: &Reporter) -> Result<BuiltImage> {
    if reference.digest.is_some() {
        return Err(Error::usage(format!(
            "--image {reference}: names a digest; a build makes a new image, so give a tag (repo:tag) and the digest \
             is printed"
        ))
        .into());
    }
    let reference = reference.clone();
    let requested = settings.platform.iter().copied().collect::<std::collections::BTreeSet<_>>();
    // The automatic choice takes the daemon only when it can build what was
    // asked: no daemon, a platform the worker is not built for (or one the
    // daemon does not say) or another `--platform` all fall back to `oci`.
    let (builder, daemon) = match settings.builder {
        Some(Builder::Oci) => (Builder::Oci, None),
        Some(Builder::Docker) => {
            let daemon = docker::local_daemon().await?;
            let own = docker::platform(&daemon).await?;
            (Builder::Docker, Some((daemon, own)))
        }
        None => match docker::local_daemon().await {
            Ok(daemon) => match automatic(&requested, docker::platform(&daemon).await) {
                Ok(own) => (Builder::Docker, Some((daemon, own))),
                Err(why) => {
                    out.status(why);
                    (Builder::Oci, None)
                }
            },
            Err(_) => {
                out.status("no Docker daemon answers: building without one (--builder oci)");
                (Builder::Oci, None)
            }
        },
    };
    if settings.load && builder == Builder::Docker {
        out.warn("--load is for --builder oci: the docker builder's image is in the daemon already");
    }

    // The labels and the time come from git: asked on a thread of their
    // own while cargo checks the worker.
    let checkout = tokio::task::spawn_blocking(|| -> Result<(Labels, u64)> {
        let sh = Shell::new()?;
        sh.change_dir(project_root());
        Ok((Labels::of_checkout(&sh), source_date_epoch(&sh)?))
    });
    let layout_dir = settings.layout.clone().unwrap_or_else(default_layout);
    let ref_name = reference.tag.clone().unwrap_or_else(|| "latest".into());

    let platforms: Vec<Platform> = match &daemon {
        Some((_, own)) => {
            if requested.iter().any(|p| p != own) {
                return Err(Error::usage(format!(
                    "--platform {}: the docker builder makes only its daemon's platform, {own}; use --builder oci, \
                     which builds {} without a daemon",
                    list(&requested),
                    list(&Platform::ALL.into())
                ))
                .into());
            }
            if requested.is_empty() {
                out.status(format!(
                    "the docker builder makes {own} only, its daemon's platform (--builder oci makes {})",
                    list(&Platform::ALL.into())
                ));
            }
            vec![*own]
        }
        None if requested.is_empty() => Platform::ALL.into(),
        None => requested.iter().copied().collect(),
    };
    // The crates the worker links, for its SBOM: cargo's resolve graph,
    // read once cargo has built (both would wait for its package cache
    // lock), while the image is assembled.
    let targets = platforms.iter().map(|p| p.target()).collect::<Vec<_>>();
    let skip_sbom = settings.skip_sbom;
    let read_crates = || {
        tokio::task::spawn_blocking(move || if skip_sbom { Ok(None) } else { sbom::read_crates(&targets).map(Some) })
    };

    let (mut image, docker_id, labels, mtime, crates) = match daemon {
        Some((docker, own)) => {
            let binary = build_workers(&[own], out).await?.remove(0).1;
            let crates = read_crates();
            let (labels, mtime) = checkout.await.context("the git task")??;
            let dockerfile = std::fs::read(project_root().join("Dockerfile")).context("reading the Dockerfile")?;
            let context = docker::context_tar(&dockerfile, &binary.bytes, mtime);
            out.status(format!("building {reference} with the Docker daemon ({} byte context)", context.len()));
            let id = docker::build(&docker, context, &reference.to_string(), &labels, out).await?;
            // The image ID is the digest of its config, which the export
            // keeps byte for byte: the same ID means the layout has it already.
            let image = match layout::read_image(&layout_dir) {
                Ok(existing)
                    if matches!(existing.manifests.as_slice(), [m] if m.config.digest == id)
                        && existing.blobs().all(|b| existing.read_blob(b).is_ok()) =>
                {
                    out.status("  unchanged since the last export: the layout is reused");
                    let annotations = labels.annotations();
                    let manifests = existing
                        .manifests
                        .into_iter()
                        .map(|m| layout::Manifest::write(&layout_dir, m.platform, m.config, m.layers, &annotations))
                        .collect::<Result<Vec<_>>>()?;
                    layout::write_image(&layout_dir, manifests, &ref_name, &annotations)?
                }
                _ => docker::export(&docker, &reference.to_string(), own, &layout_dir, &ref_name, &labels)
                    .await
                    .with_context(|| format!("exporting {reference} from the daemon into {}", layout_dir.display()))?,
            };
            (image, Some(id), labels, mtime, crates)
        }
        None => {
            let binaries = build_workers(&platforms, out).await?;
            let crates = read_crates();
            let (labels, mtime) = checkout.await.context("the git task")??;
            out.status(format!(
                "assembling {reference} for {} without a daemon in {}",
                list(&platforms.iter().copied().collect()),
                layout_dir.display()
            ));
            let image = oci::build(&binaries, &labels, mtime, &layout_dir, &ref_name, out)?;
            if settings.load {
                let docker = docker::local_daemon().await?;
                let own = docker::platform(&docker).await?;
                let manifest = image.for_platform(&own.oci()).ok_or_else(|| {
                    Error::usage(format!(
                        "--load: the image has no {own} manifest for this daemon (it has {}); add {own} to --platform",
                        image.platforms().join(", ")
                    ))
                })?;
                docker::load(&docker, &image, manifest, &reference.to_string()).await?;
                out.status(format!("loaded {reference} ({own}) into the Docker daemon"));
            }
            (image, None, labels, mtime, crates)
        }
    };
    if let Some(crates) = crates.await.context("the SBOM task")?? {
        sbom::attach(&mut image, &crates, &labels, &created(mtime)?, &ref_name)?;
    }
    let sbom = sbom::summary(&image)?;
    Ok(BuiltImage { reference, builder, image, docker_id, sbom })
}

/// The image's time as its config and SBOM give it: RFC 3339 with second
/// precision, as `docker inspect` shows it.
pub fn created(mtime: u64) -> Result<String> {
    Ok(jiff::Timestamp::from_second(mtime as i64)
        .map_err(|e| Error::usage(format!("SOURCE_DATE_EPOCH {mtime}: not a time ({e})")))?
        .to_string())
}

/// The static worker for each platform, built in one cargo run off the
/// async runtime: each binary's bytes, with their sha256.
async fn build_workers(platforms: &[Platform], out: &Reporter) -> Result<Vec<(Platform, oci::Binary)>> {
    let reporter = *out;
    let targets = platforms.iter().map(|p| p.target()).collect::<Vec<_>>();
    let workers = tokio::task::spawn_blocking(move || build::build_all(&targets, &reporter))
        .await
        .context("the build task")??;
    platforms
        .iter()
        .zip(workers)
        .map(|(platform, worker)| {
            let bytes = std::fs::read(&worker.path).with_context(|| format!("reading {}", worker.path.display()))?;
            Ok((*platform, oci::Binary::new(bytes)))
        })
        .collect()
}

/// The automatic choice, once a daemon answered: its platform when it can
/// build what was asked, else why the daemonless builder is taken (the
/// status line). A daemon whose platform cannot be read, or is not one the
/// worker is built for, is no reason to fail: `oci` needs no daemon.
fn automatic(requested: &std::collections::BTreeSet<Platform>, own: Result<Platform>) -> Result<Platform, String> {
    match own {
        Ok(own) if requested.iter().any(|p| *p != own) => Err(format!(
            "--platform {}: the docker builder makes only its daemon's platform ({own}); building without it \
             (--builder oci)",
            list(requested)
        )),
        Ok(own) => Ok(own),
        Err(e) => Err(format!("building without the Docker daemon (--builder oci): {e:#}")),
    }
}

/// `linux/amd64,linux/arm64`, as `--platform` takes it.
fn list(platforms: &std::collections::BTreeSet<Platform>) -> String {
    platforms.iter().map(Platform::to_string).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeSet;

    use super::{Platform, automatic};

    #[test]
    fn the_automatic_builder_falls_back_to_oci_when_the_daemon_cannot_build() {
        let none = BTreeSet::new();
        let amd64 = BTreeSet::from([Platform::LinuxAmd64]);
        let both = BTreeSet::from(Platform::ALL);
        assert_eq!(automatic(&none, Ok(Platform::LinuxArm64)), Ok(Platform::LinuxArm64));
        assert_eq!(automatic(&amd64, Ok(Platform::LinuxAmd64)), Ok(Platform::LinuxAmd64));
        let other = automatic(&both, Ok(Platform::LinuxAmd64)).unwrap_err();
        assert!(other.contains("only its daemon's platform (linux/amd64)") && other.ends_with("(--builder oci)"));
        // A daemon on a platform the worker is not built for, or one that
        // does not answer the question, is not an error: oci needs no daemon.
        let unknown = anyhow::Error::from(crate::Error::prerequisite("the Docker daemon runs on linux/s390x"));
        let why = automatic(&none, Err(unknown)).unwrap_err();
        assert_eq!(why, "building without the Docker daemon (--builder oci): the Docker daemon runs on linux/s390x");
    }

    /// A fresh directory for one unit test.
    pub fn tempdir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
