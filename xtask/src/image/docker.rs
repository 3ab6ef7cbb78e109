//! The Docker builder, through the Engine API (bollard): the Dockerfile and
//! the binary sent as a two-file tar context, the build stream shown as it
//! comes, the result exported back into an OCI layout so that `push` uploads
//! what the daemon built, with gzip layers.
//!
//! `docker save` (the export endpoint) answers in two formats: the classic
//! one (manifest.json, uncompressed layer tars), and since Engine 25 an OCI
//! layout (index.json, blobs/), which under the containerd image store may
//! put an index in front of the manifest. Both are read.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bollard::Docker;
use bollard::query_parameters::{BuildImageOptionsBuilder, ImportImageOptionsBuilder};
use futures_util::StreamExt;
use serde_json::Value;

use oci_client::manifest::{IMAGE_CONFIG_MEDIA_TYPE, IMAGE_LAYER_GZIP_MEDIA_TYPE, OciManifest};

use super::layout::{self, Image, Manifest};
use super::{BINARY_MODE, Labels, tar_file};
use crate::Error;
use crate::choices::Platform;
use crate::report::Reporter;

/// Connects to the local daemon (DOCKER_HOST or /var/run/docker.sock) and
/// agrees on an API version both sides speak: bollard's default is newer
/// than older engines accept.
pub async fn local_daemon() -> Result<Docker> {
    let no_daemon = |e: &dyn std::fmt::Display| {
        Error::prerequisite(format!(
            "the Docker daemon does not answer ({e}); start it, set DOCKER_HOST, or use --builder oci, which needs no daemon"
        ))
    };
    let docker = Docker::connect_with_local_defaults().map_err(|e| no_daemon(&e))?;
    let docker = tokio::time::timeout(Duration::from_secs(5), docker.negotiate_version())
        .await
        .map_err(|_| no_daemon(&"no answer within 5 s"))?
        .map_err(|e| no_daemon(&e))?;
    tokio::time::timeout(Duration::from_secs(5), docker.ping())
        .await
        .map_err(|_| no_daemon(&"no answer within 5 s"))?
        .map_err(|e| no_daemon(&e))?;
    Ok(docker)
}

/// The daemon's own platform: what it builds and what it runs.
pub async fn platform(docker: &Docker) -> Result<Platform> {
    let version = docker.version().await.context("asking the Docker daemon for its platform")?;
    let (os, arch) = (version.os.unwrap_or_default(), version.arch.unwrap_or_default());
    Platform::of_daemon(&os, &arch).ok_or_else(|| {
        Error::prerequisite(format!(
            "the Docker daemon runs on {os}/{arch}, which the worker is not built for; use --builder oci, which \
             makes linux/amd64 and linux/arm64 without a daemon"
        ))
        .into()
    })
}

/// The build context: exactly the Dockerfile and the binary.
pub fn context_tar(dockerfile: &[u8], binary: &[u8], mtime: u64) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    tar_file(&mut tar, "Dockerfile", dockerfile, 0o644, mtime);
    tar_file(&mut tar, "job-worker", binary, BINARY_MODE, mtime);
    tar.into_inner().expect("writing to memory")
}

/// Builds the image on the daemon, tagged `tag`; returns the image ID.
pub async fn build(docker: &Docker, context: Vec<u8>, tag: &str, labels: &Labels, out: &Reporter) -> Result<String> {
    let args = HashMap::from([
        ("VERSION".to_owned(), labels.version.clone()),
        ("REVISION".to_owned(), labels.revision.clone()),
        ("SOURCE".to_owned(), labels.source.clone()),
        ("LICENSES".to_owned(), labels.licenses.clone()),
    ]);
    let options = BuildImageOptionsBuilder::default()
        .dockerfile("Dockerfile")
        .t(tag)
        .rm(true)
        .forcerm(true)
        .buildargs(&args)
        .build();
    let mut stream = docker.build_image(options, None, Some(bollard::body_full(context.into())));
    let mut id = None;
    while let Some(item) = stream.next().await {
        // An error inside the stream is a failed build even though the
        // HTTP call itself succeeded: report the daemon's own words.
        let info = item.map_err(|e| anyhow::anyhow!("the Docker daemon failed the build: {e}"))?;
        if let Some(detail) = info.error_detail.as_ref().and_then(|d| d.message.clone()) {
            bail!("the Docker daemon failed the build: {detail}");
        }
        if let Some(line) = info.stream.as_deref().map(str::trim_end).filter(|l| !l.is_empty()) {
            out.detail(format!("  docker: {line}"));
        }
        if let Some(aux_id) = info.aux.and_then(|a| a.id) {
            id = Some(aux_id);
        }
    }
    match id {
        Some(id) => Ok(id),
        None => Ok(docker
            .inspect_image(tag)
            .await
            .context("inspecting the built image")?
            .id
            .context("the built image has no ID")?),
    }
}

/// Exports the image (built for the daemon's `platform`) from the daemon
/// into the layout, layers gzip-compressed, the labels as the manifest's
/// annotations.
pub async fn export(
    docker: &Docker,
    tag: &str,
    platform: Platform,
    layout_dir: &Path,
    ref_name: &str,
    labels: &Labels,
) -> Result<Image> {
    let mut saved = Vec::new();
    let mut stream = docker.export_image(tag);
    while let Some(chunk) = stream.next().await {
        saved.extend_from_slice(&chunk.context("exporting the image from the daemon")?);
    }
    let files = untar(&saved).context("reading the exported image")?;
    let (config, layers) = if files.contains_key("index.json") && files.contains_key("oci-layout") {
        read_oci_save(&files, platform)?
    } else {
        read_classic_save(&files)?
    };
    check_config_platform(&config, platform)?;
    let config = layout::put_blob(layout_dir, IMAGE_CONFIG_MEDIA_TYPE, &config)?;
    let mut descriptors = Vec::new();
    for layer in layers {
        let tar = if layer.starts_with(&[0x1f, 0x8b]) { layout::gunzip(&layer)? } else { layer };
        descriptors.push(layout::put_blob(layout_dir, IMAGE_LAYER_GZIP_MEDIA_TYPE, &layout::gzip(&tar))?);
    }
    let annotations = labels.annotations();
    let manifest = Manifest::write(layout_dir, platform.oci(), config, descriptors, &annotations)?;
    layout::write_image(layout_dir, vec![manifest], ref_name, &annotations)
}

fn untar(bytes: &[u8]) -> Result<HashMap<String, Vec<u8>>> {
    let mut files = HashMap::new();
    let mut archive = tar::Archive::new(bytes);
    for entry in archive.entries()? {
        let mut entry = entry?;
        if entry.header().entry_type().is_file() {
            let path = entry.path()?.to_string_lossy().trim_start_matches("./").to_owned();
            let mut data = Vec::new();
            entry.read_to_end(&mut data)?;
            files.insert(path, data);
        }
    }
    Ok(files)
}

/// The pre-25 format: manifest.json lists the config and layer tar paths.
fn read_classic_save(files: &HashMap<String, Vec<u8>>) -> Result<(Vec<u8>, Vec<Vec<u8>>)> {
    let manifest: Value =
        serde_json::from_slice(files.get("manifest.json").context("no manifest.json in the export")?)?;
    let entry = &manifest[0];
    let get = |path: &str| files.get(path).cloned().with_context(|| format!("{path} missing from the export"));
    let config = get(entry["Config"].as_str().context("manifest.json without Config")?)?;
    let layers = entry["Layers"]
        .as_array()
        .context("manifest.json without Layers")?
        .iter()
        .map(|l| get(l.as_str().unwrap_or_default()))
        .collect::<Result<Vec<_>>>()?;
    Ok((config, layers))
}

/// The Engine 25+ format: an OCI layout, maybe with indexes in front,
/// followed down to the manifest for `platform`. An index entry without a
/// platform is followed only when it is the only one (the layout's own
/// index.json in front of the image's index); an index that has other
/// platforms only is refused, naming them: stamping the daemon's platform
/// on another's manifest would push a lie.
fn read_oci_save(files: &HashMap<String, Vec<u8>>, platform: Platform) -> Result<(Vec<u8>, Vec<Vec<u8>>)> {
    let blob = |digest: &str| {
        let path = format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"));
        files.get(&path).cloned().with_context(|| format!("{path} missing from the export"))
    };
    let wanted = platform.oci();
    let mut manifest: OciManifest = serde_json::from_slice(&files["index.json"]).context("reading index.json")?;
    for _ in 0..4 {
        let OciManifest::ImageIndex(index) = manifest else { break };
        let own = index
            .manifests
            .iter()
            .find(|m| m.platform.as_ref().is_some_and(|p| p.os == wanted.os && p.architecture == wanted.architecture));
        let entry = match (own, index.manifests.as_slice()) {
            (Some(entry), _) => entry,
            (None, [only]) if only.platform.is_none() => only,
            (None, []) => bail!("the export's index is empty"),
            (None, entries) => {
                let found = entries
                    .iter()
                    .map(|m| m.platform.as_ref().map_or_else(|| "no platform".to_owned(), layout::platform_name))
                    .collect::<Vec<_>>();
                bail!(
                    "the daemon built for {platform}, but the export's index has no {platform} manifest (it has {})",
                    found.join(", ")
                )
            }
        };
        manifest = serde_json::from_slice(&blob(&entry.digest)?).context("reading a manifest of the export")?;
    }
    let OciManifest::Image(manifest) = manifest else { bail!("indexes nested more than four deep in the export") };
    let config = blob(&manifest.config.digest)?;
    let layers = manifest.layers.iter().map(|l| blob(&l.digest)).collect::<Result<Vec<_>>>()?;
    Ok((config, layers))
}

/// The image's own word for its platform (its config's `os` and
/// `architecture`) must be the daemon's, which the layout's manifest is
/// labelled with.
fn check_config_platform(config: &[u8], platform: Platform) -> Result<()> {
    let config: Value = serde_json::from_slice(config).context("reading the exported image's config")?;
    let (os, arch) = (config["os"].as_str().unwrap_or_default(), config["architecture"].as_str().unwrap_or_default());
    if format!("{os}/{arch}") != platform.to_string() {
        bail!("the daemon built for {platform}, but the exported image's config says {os}/{arch}");
    }
    Ok(())
}

/// Loads one platform's manifest of an image from the layout into the
/// daemon as `tag`, in the classic `docker save` format every engine reads
/// (uncompressed layers).
pub async fn load(docker: &Docker, image: &Image, manifest: &Manifest, tag: &str) -> Result<()> {
    let config = image.read_blob(&manifest.config)?;
    let mut tar = tar::Builder::new(Vec::new());
    let mut add = |path: &str, bytes: &[u8]| tar_file(&mut tar, path, bytes, 0o644, 0);
    let config_name = format!("{}.json", manifest.config.digest.trim_start_matches("sha256:"));
    add(&config_name, &config);
    let mut layer_names = Vec::new();
    for layer in &manifest.layers {
        let raw = layout::gunzip(&image.read_blob(layer)?)?;
        let name = format!("{}/layer.tar", layout::sha256_digest(&raw).trim_start_matches("sha256:"));
        add(&name, &raw);
        layer_names.push(name);
    }
    let manifest = serde_json::json!([{ "Config": config_name, "RepoTags": [tag], "Layers": layer_names }]);
    add("manifest.json", &serde_json::to_vec(&manifest)?);
    let archive = tar.into_inner()?;
    let mut stream =
        docker.import_image(ImportImageOptionsBuilder::default().build(), bollard::body_full(archive.into()), None);
    while let Some(item) = stream.next().await {
        item.map_err(|e| anyhow::anyhow!("the Docker daemon refused to load the image: {e}"))?;
    }
    docker.inspect_image(tag).await.with_context(|| format!("the daemon loaded the archive but has no image {tag}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        for (path, bytes) in files {
            tar_file(&mut tar, path, bytes, 0o644, 0);
        }
        tar.into_inner().unwrap()
    }

    fn blob(bytes: &[u8]) -> (String, String) {
        let digest = layout::sha256_digest(bytes);
        let path = format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"));
        (digest, path)
    }

    /// Both `docker save` formats, built here by hand, read to the same config and layers.
    #[test]
    fn classic_and_oci_saves_read_the_same() {
        let config = br#"{"architecture":"amd64","os":"linux","config":{"User":"65532:65532"}}"#.to_vec();
        let layer = b"a layer tar".to_vec();

        // Before Engine 25: manifest.json and uncompressed layer tars.
        let classic = tar_of(&[
            ("manifest.json", br#"[{"Config":"abc.json","RepoTags":["x:1"],"Layers":["l1/layer.tar"]}]"#.to_vec()),
            ("abc.json", config.clone()),
            ("l1/layer.tar", layer.clone()),
        ]);

        // Engine 25+ with the containerd image store: an OCI layout whose
        // index points at another index, which points at the manifest.
        let (config_digest, config_path) = blob(&config);
        let (layer_digest, layer_path) = blob(&layer);
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len() },
            "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len() }],
        }))
        .unwrap();
        let (manifest_digest, manifest_path) = blob(&manifest);
        let inner = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                { "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:00", "size": 1, "platform": { "architecture": "arm64", "os": "linux" } },
                { "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest, "size": manifest.len(), "platform": { "architecture": "amd64", "os": "linux" } },
            ],
        }))
        .unwrap();
        let (inner_digest, inner_path) = blob(&inner);
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{ "mediaType": "application/vnd.oci.image.index.v1+json", "digest": inner_digest, "size": inner.len() }],
        }))
        .unwrap();
        let oci = tar_of(&[
            ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
            ("index.json", index),
            (&inner_path, inner),
            (&manifest_path, manifest),
            (&config_path, config.clone()),
            (&layer_path, layer.clone()),
            ("manifest.json", b"[]".to_vec()),
        ]);

        let classic = read_classic_save(&untar(&classic).unwrap()).unwrap();
        let oci_files = untar(&oci).unwrap();
        assert!(oci_files.contains_key("index.json") && oci_files.contains_key("oci-layout"));
        let oci = read_oci_save(&oci_files, Platform::LinuxAmd64).unwrap();
        // An arm64 daemon would follow the index to its own entry (absent here).
        let arm64 = read_oci_save(&oci_files, Platform::LinuxArm64).unwrap_err().to_string();
        assert!(arm64.contains("blobs/sha256/00 missing"), "{arm64}");
        assert_eq!(classic, (config.clone(), vec![layer.clone()]));
        assert_eq!(oci, (config.clone(), vec![layer]));
        check_config_platform(&config, Platform::LinuxAmd64).unwrap();
        let e = check_config_platform(&config, Platform::LinuxArm64).unwrap_err().to_string();
        assert_eq!(e, "the daemon built for linux/arm64, but the exported image's config says linux/amd64");
    }

    /// An index without the daemon's platform is refused, naming what it
    /// has, rather than its first manifest passed off as the daemon's.
    #[test]
    fn an_export_without_the_daemons_platform_is_refused() {
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                { "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:01", "size": 1, "platform": { "architecture": "amd64", "os": "linux" } },
                { "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:02", "size": 1, "platform": { "architecture": "s390x", "os": "linux" } },
            ],
        }))
        .unwrap();
        let files =
            untar(&tar_of(&[("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()), ("index.json", index)]))
                .unwrap();
        let e = read_oci_save(&files, Platform::LinuxArm64).unwrap_err().to_string();
        assert_eq!(
            e,
            "the daemon built for linux/arm64, but the export's index has no linux/arm64 manifest (it has \
             linux/amd64, linux/s390x)"
        );
    }
}
