//! OCI image layouts on disk (`oci-layout`, `index.json`, `blobs/sha256/`):
//! what both builders produce and what `push` uploads, so that a pushed
//! image is exactly the bytes that were built.
//!
//! The tag names either one platform's manifest, or (several platforms) an
//! image index with one manifest per platform; the layout's `index.json`
//! points at that manifest or index blob, as `skopeo copy --all` and
//! buildx's OCI exporter lay it out. Manifests, indexes and descriptors are
//! oci-client's types, written as canonical JSON (sorted keys, no
//! whitespace: the form oci-client's own `push_manifest` sends), so the same
//! blobs always give the same bytes and digests.
//!
//! Beside the image, the layout's `index.json` lists the artifacts that
//! refer to it (OCI 1.1: an image manifest with an `artifactType`, the empty
//! config, its files as layers and the image as its `subject`), the SBOM
//! among them, as ORAS lays referrers out in a layout: `push` uploads them
//! after the image.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use oci_client::manifest::{
    ImageIndexEntry, OCI_IMAGE_INDEX_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE, OciDescriptor, OciImageIndex, OciImageManifest,
    Platform,
};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The annotation that names an image in a layout's index.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The empty descriptor's media type and content (image-spec 1.1,
/// "Guidance for an Empty Descriptor"): an artifact's config.
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
pub const EMPTY_CONTENT: &[u8] = b"{}";

/// Annotations as the types take them: none is absent, not an empty map.
pub type Annotations = BTreeMap<String, String>;

fn some_annotations(annotations: &Annotations) -> Option<Annotations> {
    (!annotations.is_empty()).then(|| annotations.clone())
}

/// `sha256:<hex>` of some bytes.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", crate::build::hex(&Sha256::digest(bytes)))
}

/// Canonical JSON (OLPC: sorted keys, no insignificant whitespace): the
/// bytes do not depend on field order or on serde_json's features.
pub fn canonical_json<T: Serialize>(value: &T) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut bytes, olpc_cjson::CanonicalFormatter::new());
    value.serialize(&mut serializer).expect("manifests, indexes and configs hold no floats");
    bytes
}

/// `os/architecture`, as `--platform` takes it.
pub fn platform_name(platform: &Platform) -> String {
    format!("{}/{}", platform.os, platform.architecture)
}

/// One platform's image: its manifest (the bytes whose digest names it),
/// config and layers.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub platform: Platform,
    pub bytes: Vec<u8>,
    pub digest: String,
    pub config: OciDescriptor,
    pub layers: Vec<OciDescriptor>,
}

impl Manifest {
    /// Writes the manifest of these blobs, which must be in the layout
    /// already, with its media type set explicitly (some registries, ACR
    /// among them, refuse it unset) and the image's annotations.
    pub fn write(
        layout: &Path,
        platform: Platform,
        config: OciDescriptor,
        layers: Vec<OciDescriptor>,
        annotations: &Annotations,
    ) -> Result<Manifest> {
        let manifest = OciImageManifest {
            schema_version: 2,
            media_type: Some(OCI_IMAGE_MEDIA_TYPE.into()),
            config: config.clone(),
            layers: layers.clone(),
            annotations: some_annotations(annotations),
            ..Default::default()
        };
        let bytes = canonical_json(&manifest);
        let digest = write_blob(layout, &bytes)?;
        Ok(Manifest { platform, bytes, digest, config, layers })
    }

    /// Every blob the registry must have before this manifest: layers, then config.
    pub fn blobs(&self) -> impl Iterator<Item = &OciDescriptor> {
        self.layers.iter().chain(std::iter::once(&self.config))
    }

    fn read(layout: &Path, digest: &str, platform: Option<Platform>) -> Result<Manifest> {
        let bytes = read_verified(layout, digest).context("reading a manifest")?;
        let parsed: OciImageManifest = serde_json::from_slice(&bytes).context("parsing a manifest")?;
        let platform = match platform {
            Some(p) => p,
            // A lone manifest names no platform: its config does.
            None => {
                let config = read_verified(layout, &parsed.config.digest).context("reading the image config")?;
                serde_json::from_slice(&config).context("reading the platform from the image config")?
            }
        };
        Ok(Manifest { platform, bytes, digest: digest.into(), config: parsed.config, layers: parsed.layers })
    }
}

/// What a layout's tag names: one manifest, or an index of one manifest
/// per platform.
#[derive(Debug, Clone)]
pub struct Image {
    pub layout: PathBuf,
    /// OCI_IMAGE_MEDIA_TYPE or OCI_IMAGE_INDEX_MEDIA_TYPE.
    pub media_type: String,
    /// The manifest's or the index's bytes: what the tag is written with.
    pub bytes: Vec<u8>,
    pub digest: String,
    /// One per platform, in the order given.
    pub manifests: Vec<Manifest>,
    /// The artifacts whose subject is this image (the SBOM), in the
    /// layout's order.
    pub referrers: Vec<Artifact>,
}

/// An artifact that refers to an image: an OCI 1.1 image manifest with an
/// `artifactType`, the empty config, one file as its layer, and the image's
/// manifest or index as its `subject`.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub artifact_type: String,
    /// The manifest's bytes, and their digest.
    pub bytes: Vec<u8>,
    pub digest: String,
    pub config: OciDescriptor,
    pub layers: Vec<OciDescriptor>,
    /// The manifest's annotations, which a referrers list repeats.
    pub annotations: Annotations,
}

impl Artifact {
    /// Writes `file` (of `media_type`, named `title`), the empty config and
    /// the manifest that points them at `subject`.
    pub fn write(
        layout: &Path,
        subject: &Image,
        artifact_type: &str,
        file: &[u8],
        title: &str,
        annotations: &Annotations,
    ) -> Result<Artifact> {
        let config = put_blob(layout, EMPTY_MEDIA_TYPE, EMPTY_CONTENT)?;
        let layer = OciDescriptor {
            annotations: Some([("org.opencontainers.image.title".to_owned(), title.to_owned())].into()),
            ..put_blob(layout, artifact_type, file)?
        };
        let manifest = OciImageManifest {
            schema_version: 2,
            media_type: Some(OCI_IMAGE_MEDIA_TYPE.into()),
            artifact_type: Some(artifact_type.into()),
            config: config.clone(),
            layers: vec![layer.clone()],
            subject: Some(subject.descriptor()),
            annotations: some_annotations(annotations),
        };
        let bytes = canonical_json(&manifest);
        let digest = write_blob(layout, &bytes)?;
        Ok(Artifact {
            artifact_type: artifact_type.into(),
            bytes,
            digest,
            config,
            layers: vec![layer],
            annotations: annotations.clone(),
        })
    }

    /// Every blob the registry must have before this manifest.
    pub fn blobs(&self) -> impl Iterator<Item = &OciDescriptor> {
        self.layers.iter().chain(std::iter::once(&self.config))
    }

    /// How a referrers list (the registry's, or the fallback tag's index)
    /// names it: with its artifact type and annotations.
    pub fn index_entry(&self) -> ImageIndexEntry {
        ImageIndexEntry {
            media_type: OCI_IMAGE_MEDIA_TYPE.into(),
            digest: self.digest.clone(),
            size: self.bytes.len() as i64,
            platform: None,
            annotations: some_annotations(&self.annotations),
            artifact_type: Some(self.artifact_type.clone()),
        }
    }

    /// The artifact the layout holds as `digest`, when it refers to `subject`.
    fn read(layout: &Path, digest: &str, subject: &str) -> Result<Option<Artifact>> {
        let bytes = read_verified(layout, digest).context("reading an artifact's manifest")?;
        let parsed: OciImageManifest = serde_json::from_slice(&bytes).context("parsing an artifact's manifest")?;
        let (Some(artifact_type), Some(of)) = (parsed.artifact_type, parsed.subject) else { return Ok(None) };
        if of.digest != subject {
            return Ok(None);
        }
        Ok(Some(Artifact {
            artifact_type,
            bytes,
            digest: digest.into(),
            config: parsed.config,
            layers: parsed.layers,
            annotations: parsed.annotations.unwrap_or_default(),
        }))
    }
}

/// In a result: what names the image and where it is, not its bytes.
impl Serialize for Image {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(4))?;
        map.serialize_entry("digest", &self.digest)?;
        map.serialize_entry("platforms", &self.platforms())?;
        map.serialize_entry("compressed_size", &self.compressed_size())?;
        map.serialize_entry("layout", &self.layout)?;
        map.end()
    }
}

impl Image {
    pub fn is_index(&self) -> bool {
        self.media_type == OCI_IMAGE_INDEX_MEDIA_TYPE
    }

    /// What names the image (an artifact's `subject`).
    pub fn descriptor(&self) -> OciDescriptor {
        OciDescriptor {
            media_type: self.media_type.clone(),
            digest: self.digest.clone(),
            size: self.bytes.len() as i64,
            ..Default::default()
        }
    }

    /// Makes `artifact` the image's one referrer of its type and lists it
    /// in the layout's index, beside the image.
    pub fn attach(&mut self, artifact: Artifact, ref_name: &str) -> Result<()> {
        self.referrers.retain(|a| a.artifact_type != artifact.artifact_type);
        self.referrers.push(artifact);
        write_index(self, ref_name)
    }

    /// `os/arch` of each manifest.
    pub fn platforms(&self) -> Vec<String> {
        self.manifests.iter().map(|m| platform_name(&m.platform)).collect()
    }

    /// The manifest for a platform, if the image has one.
    pub fn for_platform(&self, platform: &Platform) -> Option<&Manifest> {
        self.manifests.iter().find(|m| m.platform.os == platform.os && m.platform.architecture == platform.architecture)
    }

    /// Every blob of every platform.
    pub fn blobs(&self) -> impl Iterator<Item = &OciDescriptor> {
        self.manifests.iter().flat_map(Manifest::blobs)
    }

    /// What a registry stores for it: blobs, manifests and the index.
    pub fn compressed_size(&self) -> u64 {
        let blobs = self.blobs().map(|d| d.size.max(0) as u64).sum::<u64>();
        let manifests = self.manifests.iter().map(|m| m.bytes.len() as u64).sum::<u64>();
        blobs + manifests + if self.is_index() { self.bytes.len() as u64 } else { 0 }
    }

    pub fn blob_path(&self, digest: &str) -> PathBuf {
        blob_path(&self.layout, digest)
    }

    pub fn read_blob(&self, d: &OciDescriptor) -> Result<Vec<u8>> {
        read_verified(&self.layout, &d.digest)
    }
}

fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    layout.join("blobs").join("sha256").join(hex)
}

/// A blob's bytes, checked against its digest.
fn read_verified(layout: &Path, digest: &str) -> Result<Vec<u8>> {
    let path = blob_path(layout, digest);
    let bytes = std::fs::read(&path).with_context(|| format!("reading blob {}", path.display()))?;
    if sha256_digest(&bytes) != digest {
        bail!(
            "blob {} does not match its digest: the layout at {} is corrupt; build again",
            path.display(),
            layout.display()
        );
    }
    Ok(bytes)
}

/// Whether the layout holds the blob, of that size and matching its digest.
pub fn blob_intact(layout: &Path, digest: &str, size: i64) -> bool {
    read_verified(layout, digest).is_ok_and(|bytes| bytes.len() as i64 == size)
}

/// Writes a blob (content-addressed: an existing one is left alone).
pub fn write_blob(layout: &Path, bytes: &[u8]) -> Result<String> {
    let digest = sha256_digest(bytes);
    let path = blob_path(layout, &digest);
    if path.exists() && std::fs::read(&path).map(|b| b == bytes).unwrap_or(false) {
        return Ok(digest);
    }
    std::fs::create_dir_all(path.parent().unwrap()).with_context(|| format!("creating {}", layout.display()))?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(digest)
}

/// Writes a blob and describes it.
pub fn put_blob(layout: &Path, media_type: &str, bytes: &[u8]) -> Result<OciDescriptor> {
    Ok(OciDescriptor {
        media_type: media_type.into(),
        digest: write_blob(layout, bytes)?,
        size: bytes.len() as i64,
        ..Default::default()
    })
}

/// Points the layout's index at these manifests, named `ref_name`: at the
/// manifest itself when there is one, else at an index of them (with the
/// image's annotations), written as a blob. The manifests must be in the
/// layout already. The image has no referrers yet: the layout's index lists
/// the image alone.
pub fn write_image(
    layout: &Path,
    manifests: Vec<Manifest>,
    ref_name: &str,
    annotations: &Annotations,
) -> Result<Image> {
    let (media_type, bytes, digest) = match manifests.as_slice() {
        [] => bail!("an image needs at least one platform"),
        [one] => (OCI_IMAGE_MEDIA_TYPE, one.bytes.clone(), one.digest.clone()),
        several => {
            let index = OciImageIndex {
                schema_version: 2,
                media_type: Some(OCI_IMAGE_INDEX_MEDIA_TYPE.into()),
                manifests: several
                    .iter()
                    .map(|m| ImageIndexEntry {
                        media_type: OCI_IMAGE_MEDIA_TYPE.into(),
                        digest: m.digest.clone(),
                        size: m.bytes.len() as i64,
                        platform: Some(m.platform.clone()),
                        annotations: None,
                        artifact_type: None,
                    })
                    .collect(),
                artifact_type: None,
                annotations: some_annotations(annotations),
            };
            let bytes = canonical_json(&index);
            let digest = write_blob(layout, &bytes)?;
            (OCI_IMAGE_INDEX_MEDIA_TYPE, bytes, digest)
        }
    };
    let image = Image {
        layout: layout.to_owned(),
        media_type: media_type.into(),
        bytes,
        digest,
        manifests,
        referrers: Vec::new(),
    };
    write_index(&image, ref_name)?;
    Ok(image)
}

/// The layout's `oci-layout` and `index.json`: the image named `ref_name`,
/// then each of its referrers.
fn write_index(image: &Image, ref_name: &str) -> Result<()> {
    let named = ImageIndexEntry {
        media_type: image.media_type.clone(),
        digest: image.digest.clone(),
        size: image.bytes.len() as i64,
        platform: None,
        annotations: Some([(REF_NAME.to_owned(), ref_name.to_owned())].into()),
        artifact_type: None,
    };
    let layout_index = OciImageIndex {
        schema_version: 2,
        media_type: Some(OCI_IMAGE_INDEX_MEDIA_TYPE.into()),
        manifests: std::iter::once(named).chain(image.referrers.iter().map(Artifact::index_entry)).collect(),
        artifact_type: None,
        annotations: None,
    };
    let layout = &image.layout;
    std::fs::write(layout.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
        .and_then(|()| std::fs::write(layout.join("index.json"), canonical_json(&layout_index)))
        .with_context(|| format!("writing the index of {}", layout.display()))
}

/// Reads the image the layout's index points at.
pub fn read_image(layout: &Path) -> Result<Image> {
    let index_path = layout.join("index.json");
    let index: OciImageIndex = serde_json::from_slice(
        &std::fs::read(&index_path)
            .with_context(|| format!("reading {}: build the image first", index_path.display()))?,
    )
    .with_context(|| format!("parsing {}", index_path.display()))?;
    let entry = index.manifests.first().context("the layout's index names no manifest")?;
    let mut image = read_named(layout, entry)?;
    for other in &index.manifests[1..] {
        if other.artifact_type.is_some()
            && let Some(artifact) = Artifact::read(layout, &other.digest, &image.digest)?
        {
            image.referrers.push(artifact);
        }
    }
    Ok(image)
}

/// The image an entry of the layout's index names.
fn read_named(layout: &Path, entry: &ImageIndexEntry) -> Result<Image> {
    match entry.media_type.as_str() {
        OCI_IMAGE_MEDIA_TYPE => {
            let manifest = Manifest::read(layout, &entry.digest, None)?;
            let bytes = manifest.bytes.clone();
            Ok(Image {
                layout: layout.to_owned(),
                media_type: entry.media_type.clone(),
                bytes,
                digest: entry.digest.clone(),
                manifests: vec![manifest],
                referrers: Vec::new(),
            })
        }
        OCI_IMAGE_INDEX_MEDIA_TYPE => {
            let bytes = read_verified(layout, &entry.digest).context("reading the image index")?;
            let inner: OciImageIndex = serde_json::from_slice(&bytes).context("parsing the image index")?;
            let manifests = inner
                .manifests
                .iter()
                .map(|m| {
                    let platform = m.platform.clone().context("an index entry without a platform")?;
                    Manifest::read(layout, &m.digest, Some(platform))
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(Image {
                layout: layout.to_owned(),
                media_type: entry.media_type.clone(),
                bytes,
                digest: entry.digest.clone(),
                manifests,
                referrers: Vec::new(),
            })
        }
        other => bail!("the layout {} names a {other}, not an OCI image or index: build again", layout.display()),
    }
}

/// gzip with fixed settings and no name or time in the header: the same
/// input gives the same bytes on every machine (the backend is pinned in
/// Cargo.toml).
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::GzBuilder::new()
        .operating_system(255)
        .write(Vec::with_capacity(bytes.len() / 2), flate2::Compression::best());
    encoder.write_all(bytes).expect("writing to memory");
    encoder.finish().expect("writing to memory")
}

pub fn gunzip(bytes: &[u8]) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).context("decompressing a gzip layer")?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use oci_client::manifest::{IMAGE_CONFIG_MEDIA_TYPE, IMAGE_LAYER_GZIP_MEDIA_TYPE};
    use serde_json::Value;

    use super::*;
    use crate::choices::Platform as P;

    #[test]
    fn gzip_is_stable_across_releases_of_the_backend() {
        // A golden value: if this changes, every image digest changes. It
        // catches a switch of flate2 backend (zlib and miniz_oxide differ)
        // through feature unification elsewhere in the tree.
        let data: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 251) as u8).collect();
        let gz = gzip(&data);
        assert_eq!(&gz[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 255], "header: no name, no mtime, OS unknown");
        assert_eq!(gunzip(&gz).unwrap(), data);
        assert_eq!(sha256_digest(&gz), GOLDEN_GZIP_DIGEST);
    }

    const GOLDEN_GZIP_DIGEST: &str = "sha256:3ea33ceb8d107a5ce9a2969dfaaa5b533356cb256db06cbea913a8317e30bd64";

    fn platform_image(dir: &Path, platform: P) -> Manifest {
        let layer = put_blob(dir, IMAGE_LAYER_GZIP_MEDIA_TYPE, &gzip(platform.to_string().as_bytes())).unwrap();
        let config = format!(r#"{{"architecture":"{}","os":"linux"}}"#, platform.oci().architecture);
        let config = put_blob(dir, IMAGE_CONFIG_MEDIA_TYPE, config.as_bytes()).unwrap();
        Manifest::write(dir, platform.oci(), config, vec![layer], &Annotations::new()).unwrap()
    }

    #[test]
    fn a_one_platform_layout_round_trips_and_its_manifest_is_canonical() {
        let dir = crate::image::tests::tempdir("layout-one");
        let written =
            write_image(&dir, vec![platform_image(&dir, P::LinuxAmd64)], "job-test:1", &Annotations::new()).unwrap();
        let read = read_image(&dir).unwrap();
        assert_eq!((read.digest.as_str(), read.is_index()), (written.digest.as_str(), false));
        assert_eq!(read.platforms(), ["linux/amd64"]);
        let m = &read.manifests[0];
        assert_eq!(read.read_blob(&m.layers[0]).map(|b| gunzip(&b).unwrap()).unwrap(), b"linux/amd64");
        // The bytes the hand-written JSON had before oci-client's types:
        // sorted keys, no whitespace, so earlier digests still hold.
        let text = String::from_utf8(m.bytes.clone()).unwrap();
        assert!(text.starts_with(r#"{"config":{"digest":"sha256:"#), "{text}");
        assert!(text.ends_with(r#""mediaType":"application/vnd.oci.image.manifest.v1+json","schemaVersion":2}"#));
        std::fs::write(read.blob_path(&m.layers[0].digest), b"tampered").unwrap();
        assert!(read.read_blob(&m.layers[0]).unwrap_err().to_string().contains("corrupt"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_attached_artifact_is_listed_beside_the_image_and_read_back_only_for_its_subject() {
        let dir = crate::image::tests::tempdir("layout-artifact");
        let empty = Annotations::new();
        let mut image = write_image(&dir, vec![platform_image(&dir, P::LinuxAmd64)], "job-test:1", &empty).unwrap();
        let created: Annotations = [("org.opencontainers.image.created".into(), "2023-11-14T22:13:20Z".into())].into();
        let sbom = Artifact::write(&dir, &image, "application/spdx+json", b"{}\n", "w.spdx.json", &created).unwrap();
        image.attach(sbom.clone(), "job-test:1").unwrap();
        let manifest: Value = serde_json::from_slice(&sbom.bytes).unwrap();
        assert_eq!(manifest["artifactType"], "application/spdx+json");
        assert_eq!(manifest["mediaType"], OCI_IMAGE_MEDIA_TYPE);
        assert_eq!(manifest["config"]["mediaType"], EMPTY_MEDIA_TYPE);
        // The spec's empty descriptor: the digest of `{}`.
        let empty_digest = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
        assert_eq!(
            (manifest["config"]["digest"].as_str(), manifest["config"]["size"].as_i64()),
            (Some(empty_digest), Some(2))
        );
        assert_eq!(manifest["subject"]["digest"], image.digest.as_str());
        assert_eq!(manifest["layers"][0]["annotations"]["org.opencontainers.image.title"], "w.spdx.json");
        let layout_index: Value = serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
        let entries = layout_index["manifests"].as_array().unwrap();
        assert_eq!(entries.len(), 2, "{layout_index}");
        assert_eq!(entries[0]["digest"], image.digest.as_str());
        assert_eq!(
            (entries[1]["digest"].as_str(), entries[1]["artifactType"].as_str()),
            (Some(sbom.digest.as_str()), Some("application/spdx+json"))
        );
        assert_eq!(entries[1]["annotations"], serde_json::json!(created), "no ref name: the tag names the image");

        let read = read_image(&dir).unwrap();
        assert_eq!(read.referrers.iter().map(|a| &a.digest).collect::<Vec<_>>(), [&sbom.digest]);
        assert_eq!(read.referrers[0].blobs().count(), 2);
        // Attached again, still one.
        image.attach(sbom, "job-test:1").unwrap();
        assert_eq!(read_image(&dir).unwrap().referrers.len(), 1);
        // Another image in the layout, listed with the old one's artifact:
        // that refers to another subject, and is not this image's.
        let mut other = write_image(&dir, vec![platform_image(&dir, P::LinuxArm64)], "job-test:1", &empty).unwrap();
        other.referrers = image.referrers.clone();
        write_index(&other, "job-test:1").unwrap();
        assert!(read_image(&dir).unwrap().referrers.is_empty());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn several_platforms_make_an_index_with_each_platform() {
        let dir = crate::image::tests::tempdir("layout-index");
        let manifests = vec![platform_image(&dir, P::LinuxAmd64), platform_image(&dir, P::LinuxArm64)];
        let written = write_image(&dir, manifests.clone(), "job-test:1", &Annotations::new()).unwrap();
        assert!(written.is_index());
        let index: Value = serde_json::from_slice(&written.bytes).unwrap();
        assert_eq!(index["mediaType"], OCI_IMAGE_INDEX_MEDIA_TYPE);
        let platforms: Vec<_> = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["platform"]["os"].as_str().unwrap(), m["platform"]["architecture"].as_str().unwrap()))
            .collect();
        assert_eq!(platforms, [("linux", "amd64"), ("linux", "arm64")]);
        let layout_index: Value = serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
        assert_eq!(layout_index["manifests"][0]["digest"], written.digest.as_str());
        assert_eq!(layout_index["manifests"][0]["annotations"][REF_NAME], "job-test:1");

        let read = read_image(&dir).unwrap();
        assert_eq!((&read.digest, &read.bytes), (&written.digest, &written.bytes));
        assert_eq!(read.platforms(), ["linux/amd64", "linux/arm64"]);
        assert_eq!(read.for_platform(&P::LinuxArm64.oci()).unwrap().digest, manifests[1].digest);
        assert_eq!(read.blobs().count(), 4);
        // The same manifests give the same index, byte for byte.
        let again = write_image(&dir, manifests, "job-test:1", &Annotations::new()).unwrap();
        assert_eq!(again.digest, written.digest);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
