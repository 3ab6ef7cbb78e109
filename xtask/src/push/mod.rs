//! `cargo xtask push`: build the image (a no-op when nothing changed), then
//! upload it with oci-client, blob by blob, and write the tag last.
//!
//! oci-client's one-call `Client::push` uploads every blob without asking
//! whether the registry has it; here each blob is checked first
//! (`blob_exists`) and only missing ones are sent, so a second push of an
//! unchanged image uploads no layer bytes. Transient failures (connection
//! reset, timeouts, 5xx, 429) are retried with a doubling back-off; the
//! manifest, which writes the tag, goes up only once every blob is there,
//! so a failed push leaves no tag behind. A multi-platform image goes up in
//! the same order, one level more: the blobs of every platform, then each
//! platform's manifest by digest (no tag), then the index with the tag.
//!
//! The registry is reached and the tag read (a `Session`) while the image
//! builds; when the tag names the built digest already, nothing else is
//! asked. Blobs and manifests are asked about all at once.
//!
//! Manifests go up as the layout's bytes (`push_manifest_raw`), not
//! re-serialized by oci-client, so the pushed digest is the built one.
//!
//! After the tag, the image's referrers (its SBOM): their blobs (checked
//! with the image's, in the same round), their manifest by digest, and a
//! place in the image's referrers list (`referrers`: the registry's API, or
//! the `sha256-<hex>` tag where it has none). An unchanged image whose SBOM
//! is there and listed costs one round of requests and uploads nothing; a
//! push that stopped after the tag attaches the SBOM the next time.

pub mod credentials;
pub mod failure;
pub mod referrers;
pub mod session;
pub mod target;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, Result};
use bytes::Bytes;
use futures_util::future::{join_all, try_join_all};
use oci_client::Reference;
use oci_client::errors::OciDistributionError;
use serde::Serialize;

use crate::Error;
use crate::choices::Builder;
use crate::flags::PushFlags;
use oci_client::manifest::{OCI_IMAGE_INDEX_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE, OciDescriptor, OciImageIndex};

use crate::image::layout::{Artifact, Image, canonical_json};
use crate::image::sbom::{self, Summary};
use crate::image::{self, BuiltImage};
use crate::image_ref::ImageRef;
use crate::report::Reporter;
use credentials::{Credential, Source};
use failure::{Failure, explain, retry};
use referrers::{Listing, fallback_tag, lists, with_entry};
pub use session::Transport;
use target::{is_loopback, registry_host};
pub use target::{read_ca, resolve_target};

/// A pushed image.
#[derive(Debug, Clone, Serialize)]
pub struct Pushed {
    /// `registry/repository:tag@sha256:...`: what to deploy.
    pub reference: ImageRef,
    pub digest: String,
    /// `os/arch` of each manifest (several: the digest is an image index's).
    pub platforms: Vec<String>,
    /// The tag named this image already: nothing was uploaded or written.
    pub unchanged: bool,
    pub bytes_uploaded: u64,
    pub blobs_uploaded: usize,
    pub blobs_skipped: usize,
    pub seconds: f64,
    pub builder: Builder,
    /// The image's SBOM, as the registry now has it.
    pub sbom: Option<PushedSbom>,
}

/// An SBOM in the registry: where it is, what it names, how it is found
/// from the image.
#[derive(Debug, Clone, Serialize)]
pub struct PushedSbom {
    /// `registry/repository@sha256:...` of the SBOM artifact.
    pub reference: ImageRef,
    #[serde(flatten)]
    pub summary: Summary,
    /// The image it refers to (its `subject`).
    pub subject: String,
    /// How a client finds it from the image: `referrers-api` or `fallback-tag`.
    pub listed_by: Listing,
    /// The `sha256-<hex>` tag that lists it, on a registry without the referrers API.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referrers_tag: Option<String>,
    /// Whether this push wrote it: its manifest, or its entry in the referrers tag.
    pub written: bool,
}

impl std::fmt::Display for PushedSbom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}, {} crates, {} bytes), listed by ",
            self.reference, self.summary.format, self.summary.packages, self.summary.size
        )?;
        match &self.referrers_tag {
            Some(tag) => write!(f, "the tag {tag} (the registry has no referrers API)"),
            None => write!(f, "{}", self.listed_by),
        }
    }
}

impl std::fmt::Display for Pushed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}", self.reference)?;
        writeln!(f, "  platforms {}", self.platforms.join(", "))?;
        let sbom_written = self.sbom.as_ref().is_some_and(|s| s.written);
        match (self.unchanged, sbom_written) {
            (true, false) => write!(
                f,
                "  unchanged: the tag already names this image; nothing was uploaded or written, in {:.1} s",
                self.seconds
            )?,
            (true, true) => write!(
                f,
                "  the tag already names this image; its SBOM was attached ({} bytes uploaded), in {:.1} s",
                self.bytes_uploaded, self.seconds
            )?,
            (false, _) => write!(
                f,
                "  uploaded {} bytes in {} blobs, {} already there, in {:.1} s",
                self.bytes_uploaded, self.blobs_uploaded, self.blobs_skipped, self.seconds
            )?,
        }
        if let Some(sbom) = &self.sbom {
            write!(f, "\n  sbom      {sbom}")?;
        }
        Ok(())
    }
}

pub fn run(flags: &PushFlags, out: &Reporter) -> Result<()> {
    let target = resolve_target(flags.image.image.as_ref(), out)?;
    let inputs = credentials::Inputs::from_process(flags.registry.username.clone(), flags.registry.password_stdin)?;
    let ca = read_ca(flags.registry.registry_ca_cert.as_deref())?;
    crate::runtime()?.block_on(async {
        // The registry is reached, and the tag read, while cargo checks the
        // worker: on a push of an unchanged image that is most of the time.
        let session = async {
            let (credential, source) = credential_for(&target, inputs).await?;
            Session::open(&target, &credential, source, ca, &Transport::from(&flags.registry), out).await
        };
        let build = image::BuildOptions::from(&flags.image.build);
        let (built, session) = tokio::join!(image::build_image(&target, &build, out), session);
        let built = built?;
        out.status(format!(
            "built {} ({} bytes compressed, digest {})",
            built.reference,
            built.image.compressed_size(),
            built.image.digest
        ));
        let pushed = session?.push(&built, out).await?;
        out.result(&pushed);
        Ok(())
    })
}

/// Finds the credential for the target's registry, off the async runtime
/// (credential helpers are processes).
pub async fn credential_for(target: &ImageRef, inputs: credentials::Inputs) -> Result<(Credential, Source)> {
    let host = registry_host(target);
    tokio::task::spawn_blocking(move || credentials::lookup(&host, &inputs)).await?
}

/// Pushes the built image to `target`.
pub async fn push(
    built: &BuiltImage,
    target: &ImageRef,
    credential: &Credential,
    source: &Source,
    ca: Option<Vec<u8>>,
    flags: &Transport,
    out: &Reporter,
) -> Result<Pushed> {
    Session::open(target, credential, source.clone(), ca, flags, out).await?.push(built, out).await
}

/// A registry reached for one target, and what its tag names: all a push
/// needs before the image is known, so it can be had while the image builds.
pub struct Session {
    started: Instant,
    target: ImageRef,
    host: String,
    tag: String,
    reference: Reference,
    auth: oci_client::secrets::RegistryAuth,
    client: oci_client::Client,
    source: Source,
    tls_hint: bool,
    attempts: u32,
    /// The digest the tag names now; None when it names nothing.
    current: Option<String>,
}

impl Session {
    /// Connects (choosing the scheme) and reads the tag.
    pub async fn open(
        target: &ImageRef,
        credential: &Credential,
        source: Source,
        ca: Option<Vec<u8>>,
        flags: &Transport,
        out: &Reporter,
    ) -> Result<Session> {
        let started = Instant::now();
        let host = registry_host(target);
        let tag = target.tag.clone().unwrap_or_else(|| "latest".into());
        let reference: Reference = target::oci_reference(target, &tag);
        let auth = credential.to_auth();
        if flags.insecure_registry && !is_loopback(&host) {
            out.warn(format!(
                "--insecure-registry: the certificate of {host} is not verified, and plain HTTP is allowed"
            ));
        }
        let tls_hint = ca.is_none() && !flags.insecure_registry;
        let fail = |step: &str, f: Failure| explain(step, &host, &target.repository, &f, &source, tls_hint);
        out.status(format!(
            "pushing {target} to {host} as {}",
            match &source {
                Source::Anonymous => "anonymous".to_owned(),
                other => format!("the user from {other}"),
            }
        ));
        let client = session::open(&reference, &auth, ca.as_deref(), flags, out, &host)
            .await
            .map_err(|f| fail("connecting to the registry", f))?;
        let attempts = flags.attempts;
        let current =
            match retry("reading the tag", attempts, out, || client.fetch_manifest_digest(&reference, &auth)).await {
                Ok(current) => Some(current),
                Err(Failure::NotFound(_) | Failure::Other(_)) => None,
                Err(f) => return Err(fail("reading the tag", f).into()),
            };
        Ok(Session {
            started,
            target: target.clone(),
            host,
            tag,
            reference,
            auth,
            client,
            source,
            tls_hint,
            attempts,
            current,
        })
    }

    fn fail(&self, step: &str, f: Failure) -> Error {
        explain(step, &self.host, &self.target.repository, &f, &self.source, self.tls_hint)
    }

    fn fail_after_tag(&self, step: &str, f: Failure) -> Error {
        failure::explain_after_tag(step, &self.host, &self.target.repository, &f, &self.source, self.tls_hint)
    }

    /// Uploads what the registry lacks, then writes the tag, unless the tag
    /// named this image already; then attaches the image's referrers.
    pub async fn push(&self, built: &BuiltImage, out: &Reporter) -> Result<Pushed> {
        let Session { started, target, host, tag, reference, client, attempts, .. } = self;
        let attempts = *attempts;
        let fail = |step: &str, f: Failure| self.fail(step, f);
        let image = &built.image;
        // A registry accepts a manifest only when it has every blob it names:
        // a tag that names this digest already means the image is there.
        let unchanged = self.current.as_deref() == Some(image.digest.as_str());
        if unchanged {
            out.status(format!("  the tag {tag} already names {}: nothing to upload or write", image.digest));
        }

        // Every blob is asked about at once (the referrers' with the
        // image's, and where the referrers are listed): on a registry that
        // has them all, one round trip instead of one per blob.
        let mut blobs: Vec<&OciDescriptor> = if unchanged { Vec::new() } else { image.blobs().collect() };
        for blob in image.referrers.iter().flat_map(Artifact::blobs) {
            if !blobs.iter().any(|b| b.digest == blob.digest) {
                blobs.push(blob);
            }
        }
        let checks = try_join_all(blobs.iter().map(|blob| async {
            retry("checking a blob", attempts, out, || client.blob_exists(reference, &blob.digest))
                .await
                .map_err(|f| fail(&format!("checking whether the registry has {}", blob_label(blob, image)), f))
        }));
        let states = try_join_all(image.referrers.iter().map(|a| self.referrer_state(a, image, out)));
        let (present, states) = tokio::try_join!(async { Ok(checks.await?) }, states)?;
        let skipped_image_blobs = if unchanged { image.blobs().count() } else { 0 };
        let mut bytes_uploaded = 0;
        let (mut uploaded, mut skipped) = (0, skipped_image_blobs);
        for (blob, exists) in blobs.iter().zip(present) {
            let label = blob_label(blob, image);
            if exists {
                if !unchanged {
                    out.status(format!("  {label}: already in the registry, not uploaded"));
                }
                skipped += 1;
                continue;
            }
            let data = Bytes::from(image.read_blob(blob)?);
            let sent = Arc::new(AtomicU64::new(0));
            retry(&format!("uploading {label}"), attempts, out, || {
                sent.store(0, Ordering::Relaxed);
                let stream = progress_stream(data.clone(), label.clone(), sent.clone(), *out);
                client.push_blob_stream(reference, stream, &blob.digest, Some(data.len() as u64))
            })
            .await
            .map_err(|f| fail(&format!("uploading {label}"), f))?;
            bytes_uploaded += data.len() as u64;
            uploaded += 1;
        }
        if uploaded > 0 {
            // The manifests go up only when the registry has every blob.
            let there = try_join_all(blobs.iter().map(|blob| async {
                retry("checking a blob", attempts, out, || client.blob_exists(reference, &blob.digest))
                    .await
                    .map_err(|f| fail("checking the uploaded blobs", f))
            }))
            .await?;
            if let Some((blob, _)) = blobs.iter().zip(there).find(|(_, there)| !there) {
                return Err(Error::remote(format!(
                    "the registry {host} does not have {} after its upload; nothing was tagged",
                    blob_label(blob, image)
                ))
                .into());
            }
        }
        if !unchanged {
            self.push_image(image, out).await?;
        }

        let mut pushed_referrers = Vec::new();
        for (artifact, state) in image.referrers.iter().zip(states) {
            pushed_referrers.push((artifact, self.attach(artifact, image, state, out).await?));
        }
        let sbom = match (&built.sbom, pushed_referrers.iter().find(|(a, _)| a.artifact_type == sbom::SPDX_MEDIA_TYPE))
        {
            (Some(summary), Some((artifact, (listed_by, written)))) => Some(PushedSbom {
                reference: ImageRef { tag: None, ..target.with_digest(&artifact.digest) },
                summary: summary.clone(),
                subject: image.digest.clone(),
                listed_by: *listed_by,
                referrers_tag: (*listed_by == Listing::FallbackTag).then(|| fallback_tag(&image.digest)),
                written: *written,
            }),
            _ => None,
        };
        Ok(Pushed {
            reference: target.with_digest(&image.digest),
            digest: image.digest.clone(),
            platforms: image.platforms(),
            unchanged,
            bytes_uploaded,
            blobs_uploaded: uploaded,
            blobs_skipped: skipped,
            seconds: started.elapsed().as_secs_f64(),
            builder: built.builder,
            sbom,
        })
    }

    /// The image's manifests (an index's by digest, asked about at once),
    /// then the tag, read back. Every blob is in the registry already.
    async fn push_image(&self, image: &Image, out: &Reporter) -> Result<()> {
        let Session { host, tag, reference, auth, client, attempts, .. } = self;
        let attempts = *attempts;
        let fail = |step: &str, f: Failure| self.fail(step, f);
        if image.is_index() {
            let manifest_type = http::HeaderValue::from_static(OCI_IMAGE_MEDIA_TYPE);
            let by_digest =
                image.manifests.iter().map(|m| reference.clone_with_digest(m.digest.clone())).collect::<Vec<_>>();
            let there = join_all(image.manifests.iter().zip(&by_digest).map(|(manifest, by_digest)| async {
                retry("checking a manifest", attempts, out, || client.fetch_manifest_digest(by_digest, auth))
                    .await
                    .is_ok_and(|d| d == manifest.digest)
            }))
            .await;
            for ((manifest, by_digest), there) in image.manifests.iter().zip(&by_digest).zip(there) {
                let platform = crate::image::layout::platform_name(&manifest.platform);
                if there {
                    out.status(format!("  {platform} manifest: already in the registry, not uploaded"));
                    continue;
                }
                retry(&format!("uploading the {platform} manifest"), attempts, out, || {
                    client.push_manifest_raw(by_digest, manifest.bytes.clone(), manifest_type.clone())
                })
                .await
                .map_err(|f| fail(&format!("uploading the {platform} manifest"), f))?;
            }
        }
        let content_type = http::HeaderValue::from_str(&image.media_type).context("the manifest's media type")?;
        retry("writing the tag", attempts, out, || {
            client.push_manifest_raw(reference, image.bytes.clone(), content_type.clone())
        })
        .await
        .map_err(|f| {
            fail(&format!("writing the {} and the tag {tag}", if image.is_index() { "index" } else { "manifest" }), f)
        })?;
        let served = retry("reading the tag back", attempts, out, || client.fetch_manifest_digest(reference, auth))
            .await
            .map_err(|f| fail("reading the tag back", f))?;
        if served != image.digest {
            return Err(Error::remote(format!(
                "the registry {host} serves {served} for {tag}, not the pushed {}: another push may have raced this one",
                image.digest
            ))
            .into());
        }
        Ok(())
    }

    /// What the registry has of a referrer: whether it has its manifest,
    /// and where it lists it among the image's referrers.
    async fn referrer_state(&self, artifact: &Artifact, image: &Image, out: &Reporter) -> Result<ReferrerState> {
        let Session { reference, auth, client, attempts, .. } = self;
        let by_digest = reference.clone_with_digest(artifact.digest.clone());
        let manifest = async {
            retry("checking the SBOM's manifest", *attempts, out, || client.fetch_manifest_digest(&by_digest, auth))
                .await
                .is_ok_and(|d| d == artifact.digest)
        };
        let (manifest, (listed, fallback)) = tokio::join!(manifest, self.listing(artifact, image, out));
        Ok(ReferrerState { manifest, listed: listed?, fallback })
    }

    /// Where the registry lists `artifact` among the image's referrers: the
    /// referrers tag's index (read here, and kept to be added to), and
    /// oci-client's `pull_referrers` (the API, or that tag where there is
    /// none).
    async fn listing(
        &self,
        artifact: &Artifact,
        image: &Image,
        out: &Reporter,
    ) -> (Result<Option<Listing>>, Option<OciImageIndex>) {
        let Session { target, reference, auth, client, attempts, .. } = self;
        let tag = target::oci_reference(target, &fallback_tag(&image.digest));
        let subject = reference.clone_with_digest(image.digest.clone());
        let fallback = async {
            match retry("reading the referrers tag", *attempts, out, || {
                client.pull_manifest_raw(&tag, auth, &[OCI_IMAGE_INDEX_MEDIA_TYPE])
            })
            .await
            {
                // A tag that holds no index lists nothing: it is written anew.
                Ok((bytes, _)) => Ok(serde_json::from_slice::<OciImageIndex>(&bytes).ok()),
                Err(Failure::NotFound(_)) => Ok(None),
                Err(f) => Err(self.fail_after_tag("reading the image's referrers tag", f)),
            }
        };
        // A registry that cannot answer the API is one without it: the
        // spec's answer to that is the tag.
        let api = async {
            retry("asking for the image's referrers", *attempts, out, || {
                client.pull_referrers(&subject, Some(&artifact.artifact_type))
            })
            .await
            .is_ok_and(|index| lists(&index, &artifact.digest))
        };
        let (fallback, api) = tokio::join!(fallback, api);
        match fallback {
            Err(e) => (Err(e.into()), None),
            Ok(index) if index.as_ref().is_some_and(|i| lists(i, &artifact.digest)) => {
                (Ok(Some(Listing::FallbackTag)), index)
            }
            Ok(index) => (Ok(api.then_some(Listing::ReferrersApi)), index),
        }
    }

    /// Pushes a referrer's manifest when the registry lacks it, then lists
    /// it where the registry has no referrers API: where it is listed, and
    /// whether anything was written.
    async fn attach(
        &self,
        artifact: &Artifact,
        image: &Image,
        mut state: ReferrerState,
        out: &Reporter,
    ) -> Result<(Listing, bool)> {
        let Session { target, reference, client, attempts, .. } = self;
        let attempts = *attempts;
        let name = artifact_name(artifact);
        let short = &artifact.digest[..19];
        if let (true, Some(listed)) = (state.manifest, state.listed) {
            out.status(format!("  {name} {short}: already in the registry, listed by {listed}"));
            return Ok((listed, false));
        }
        if !state.manifest {
            let by_digest = reference.clone_with_digest(artifact.digest.clone());
            let content_type = http::HeaderValue::from_static(OCI_IMAGE_MEDIA_TYPE);
            retry(&format!("uploading the {name}'s manifest"), attempts, out, || {
                client.push_manifest_raw(&by_digest, artifact.bytes.clone(), content_type.clone())
            })
            .await
            .map_err(|f| self.fail_after_tag(&format!("uploading the {name}'s manifest"), f))?;
            // A registry with the referrers API lists it now.
            let (listed, fallback) = self.listing(artifact, image, out).await;
            state = ReferrerState { manifest: true, listed: listed?, fallback };
        }
        if let Some(listed) = state.listed {
            out.status(format!("  {name} {short}: uploaded, listed by {listed}"));
            return Ok((listed, true));
        }
        // No referrers API: the spec's referrers tag, with this artifact added.
        let tag = fallback_tag(&image.digest);
        let index = canonical_json(&with_entry(state.fallback, artifact.index_entry()));
        let tag_ref = target::oci_reference(target, &tag);
        let index_type = http::HeaderValue::from_static(OCI_IMAGE_INDEX_MEDIA_TYPE);
        retry("writing the referrers tag", attempts, out, || {
            client.push_manifest_raw(&tag_ref, index.clone(), index_type.clone())
        })
        .await
        .map_err(|f| self.fail_after_tag(&format!("writing the referrers tag {tag}"), f))?;
        out.status(format!("  {name} {short}: listed in the tag {tag} (the registry has no referrers API)"));
        Ok((Listing::FallbackTag, true))
    }
}

/// What the registry has of a referrer before it is attached.
struct ReferrerState {
    manifest: bool,
    listed: Option<Listing>,
    /// The referrers tag's index, to be added to.
    fallback: Option<OciImageIndex>,
}

/// "SBOM" for the SPDX document, else its artifact type.
fn artifact_name(artifact: &Artifact) -> String {
    if artifact.artifact_type == sbom::SPDX_MEDIA_TYPE { "SBOM".into() } else { artifact.artifact_type.clone() }
}

/// `config sha256:0123456789ab (600 bytes)`, with the platform in front
/// when the image has several.
fn blob_label(blob: &OciDescriptor, image: &Image) -> String {
    if let Some(artifact) = image.referrers.iter().find(|a| a.blobs().any(|b| b.digest == blob.digest)) {
        let what = if artifact.config.digest == blob.digest { "empty config" } else { "document" };
        return format!("{} {what} {} ({} bytes)", artifact_name(artifact), &blob.digest[..19], blob.size);
    }
    let owner = image.manifests.iter().find(|m| m.blobs().any(|b| b.digest == blob.digest));
    let kind = if owner.is_some_and(|m| m.config.digest == blob.digest) { "config" } else { "layer" };
    let platform = match owner {
        Some(m) if image.is_index() => format!("{} ", crate::image::layout::platform_name(&m.platform)),
        _ => String::new(),
    };
    format!("{platform}{kind} {} ({} bytes)", &blob.digest[..19], blob.size)
}

/// The blob as a stream of 64 KiB chunks, counting what the upload has
/// consumed and showing it.
fn progress_stream(
    data: Bytes,
    label: String,
    sent: Arc<AtomicU64>,
    out: Reporter,
) -> impl futures_util::Stream<Item = Result<Bytes, OciDistributionError>> + Send + 'static {
    const CHUNK: usize = 64 * 1024;
    let total = data.len() as u64;
    let chunks: Vec<Bytes> =
        (0..data.len()).step_by(CHUNK).map(|i| data.slice(i..(i + CHUNK).min(data.len()))).collect();
    futures_util::stream::iter(chunks.into_iter().map(move |chunk| {
        let done = sent.fetch_add(chunk.len() as u64, Ordering::Relaxed) + chunk.len() as u64;
        out.progress(&format!("  {label}: {done} / {total} bytes"), done == total);
        Ok(chunk)
    }))
}
