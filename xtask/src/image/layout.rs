//! OCI image layouts on disk (`oci-layout`, `index.json`, `blobs/sha256/`):
//! what both builders produce and what `push` uploads, so that a pushed
//! image is exactly the bytes that were built.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER_GZIP_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The annotation that names an image in an index.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// A content descriptor: what a manifest says of a blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

impl Descriptor {
    fn json(&self) -> Value {
        json!({ "mediaType": self.media_type, "digest": self.digest, "size": self.size })
    }

    fn from_json(v: &Value) -> Result<Descriptor> {
        Ok(Descriptor {
            media_type: v["mediaType"].as_str().context("descriptor without mediaType")?.into(),
            digest: v["digest"].as_str().context("descriptor without digest")?.into(),
            size: v["size"].as_u64().context("descriptor without size")?,
        })
    }
}

/// `sha256:<hex>` of some bytes.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", crate::build::hex(&Sha256::digest(bytes)))
}

/// An image in a layout: its manifest (the bytes whose digest names the
/// image), config and layers.
#[derive(Debug, Clone)]
pub struct Image {
    pub layout: PathBuf,
    pub manifest: Vec<u8>,
    pub digest: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// In a result: what names the image and where it is, not its bytes.
impl serde::Serialize for Image {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(3))?;
        map.serialize_entry("digest", &self.digest)?;
        map.serialize_entry("compressed_size", &self.compressed_size())?;
        map.serialize_entry("layout", &self.layout)?;
        map.end()
    }
}

impl Image {
    /// Every blob the registry must have before the manifest: layers, then config.
    pub fn blobs(&self) -> impl Iterator<Item = &Descriptor> {
        self.layers.iter().chain(std::iter::once(&self.config))
    }

    /// What a registry stores for it: layers, config and manifest.
    pub fn compressed_size(&self) -> u64 {
        self.blobs().map(|d| d.size).sum::<u64>() + self.manifest.len() as u64
    }

    pub fn blob_path(&self, digest: &str) -> PathBuf {
        blob_path(&self.layout, digest)
    }

    pub fn read_blob(&self, d: &Descriptor) -> Result<Vec<u8>> {
        let path = self.blob_path(&d.digest);
        let bytes = std::fs::read(&path).with_context(|| format!("reading blob {}", path.display()))?;
        if sha256_digest(&bytes) != d.digest {
            bail!(
                "blob {} does not match its digest: the layout at {} is corrupt; build again",
                path.display(),
                self.layout.display()
            );
        }
        Ok(bytes)
    }
}

fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    layout.join("blobs").join("sha256").join(hex)
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
pub fn put_blob(layout: &Path, media_type: &str, bytes: &[u8]) -> Result<Descriptor> {
    Ok(Descriptor { media_type: media_type.into(), digest: write_blob(layout, bytes)?, size: bytes.len() as u64 })
}

/// The manifest of an image with these blobs, with its media type set
/// explicitly (some registries, ACR among them, refuse it unset).
pub fn manifest(config: &Descriptor, layers: &[Descriptor]) -> Vec<u8> {
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": config.json(),
        "layers": layers.iter().map(Descriptor::json).collect::<Vec<_>>(),
    });
    serde_json::to_vec(&manifest).expect("a JSON value serializes")
}

/// Writes the blobs' manifest and points the layout's index at it, named
/// `ref_name`. The blobs must already be in the layout.
pub fn write_image(layout: &Path, config: Descriptor, layers: Vec<Descriptor>, ref_name: &str) -> Result<Image> {
    let manifest = manifest(&config, &layers);
    let digest = write_blob(layout, &manifest)?;
    let index = json!({
        "schemaVersion": 2,
        "mediaType": INDEX_MEDIA_TYPE,
        "manifests": [{
            "mediaType": MANIFEST_MEDIA_TYPE,
            "digest": digest,
            "size": manifest.len(),
            "annotations": { REF_NAME: ref_name },
        }],
    });
    std::fs::write(layout.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
        .and_then(|()| std::fs::write(layout.join("index.json"), serde_json::to_vec(&index).unwrap()))
        .with_context(|| format!("writing the index of {}", layout.display()))?;
    Ok(Image { layout: layout.to_owned(), manifest, digest, config, layers })
}

/// Reads the image the layout's index points at.
pub fn read_image(layout: &Path) -> Result<Image> {
    let index_path = layout.join("index.json");
    let index: Value = serde_json::from_slice(
        &std::fs::read(&index_path)
            .with_context(|| format!("reading {}: build the image first", index_path.display()))?,
    )
    .with_context(|| format!("parsing {}", index_path.display()))?;
    let entry = Descriptor::from_json(&index["manifests"][0]).context("the layout's index names no manifest")?;
    let manifest = std::fs::read(blob_path(layout, &entry.digest)).context("reading the manifest blob")?;
    if sha256_digest(&manifest) != entry.digest {
        bail!("the manifest in {} does not match its digest: build again", layout.display());
    }
    let parsed: Value = serde_json::from_slice(&manifest).context("parsing the manifest")?;
    let config = Descriptor::from_json(&parsed["config"])?;
    let layers = parsed["layers"]
        .as_array()
        .context("manifest without layers")?
        .iter()
        .map(Descriptor::from_json)
        .collect::<Result<Vec<_>>>()?;
    Ok(Image { layout: layout.to_owned(), manifest, digest: entry.digest, config, layers })
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
    use super::*;

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

    #[test]
    fn layouts_round_trip() {
        let dir = std::env::temp_dir().join(format!("xtask-layout-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let layer = gzip(b"layer");
        let config = br#"{"architecture":"amd64"}"#;
        let l = put_blob(&dir, LAYER_GZIP_MEDIA_TYPE, &layer).unwrap();
        let c = put_blob(&dir, CONFIG_MEDIA_TYPE, config).unwrap();
        let written = write_image(&dir, c, vec![l], "job-test:1").unwrap();
        let read = read_image(&dir).unwrap();
        assert_eq!(
            (read.digest.clone(), read.config.clone(), read.layers.clone()),
            (written.digest, written.config, written.layers)
        );
        assert_eq!(read.read_blob(&read.layers[0]).unwrap(), layer);
        let manifest: Value = serde_json::from_slice(&read.manifest).unwrap();
        assert_eq!(manifest["mediaType"], MANIFEST_MEDIA_TYPE);
        std::fs::write(read.blob_path(&read.layers[0].digest), b"tampered").unwrap();
        assert!(read.read_blob(&read.layers[0]).unwrap_err().to_string().contains("corrupt"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
