//! The daemonless builder: the same image the Dockerfile describes (one file,
//! user 65532, the entrypoint, the labels), assembled without any daemon and
//! reproducibly: sorted entries, owner 0:0, fixed mode and mtime, a gzip
//! header without name or time, a config whose only time is the source's.
//! One manifest per platform, each with its own binary and a config naming
//! its architecture; several are joined under an image index.
//!
//! The layer (tar, then gzip at the best level: most of a build's time) is
//! cached beside the layout, keyed by what its bytes are made of: the
//! binary's sha256 and the timestamp. An unchanged binary reuses the layer
//! blob the layout holds already, after checking it against its digest, so
//! a cached build gives the same bytes as a fresh one.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use oci_client::manifest::{IMAGE_CONFIG_MEDIA_TYPE, IMAGE_LAYER_GZIP_MEDIA_TYPE, OciDescriptor};
use serde::{Deserialize, Serialize};

use super::layout::{self, Image, Manifest};
use super::{BINARY_MODE, BINARY_PATH, Labels, USER, tar_file};
use crate::choices::Platform;
use crate::report::Reporter;

/// A worker binary and its sha256, which keys its cached layer.
#[derive(Debug, Clone)]
pub struct Binary {
    pub bytes: Vec<u8>,
    pub digest: String,
}

impl Binary {
    pub fn new(bytes: Vec<u8>) -> Binary {
        Binary { digest: layout::sha256_digest(&bytes), bytes }
    }
}

/// Part of every cache key: raise it when the layer is made differently
/// (its tar entry, the gzip settings), so that layers made the old way are
/// not reused.
const LAYER_RECIPE: u32 = 1;

/// The layer cache of a layout: `<layout>.layer-cache/`, beside it (the
/// docker builder's export rewrites the layout; the cache is not part of
/// the image).
pub fn layer_cache_dir(layout_dir: &Path) -> PathBuf {
    let mut name = layout_dir.file_name().unwrap_or_default().to_owned();
    name.push(".layer-cache");
    layout_dir.with_file_name(name)
}

/// The cache key of the layer of `binary` stamped with `mtime`: the layer's
/// bytes depend on nothing else (labels and platform are in the config).
fn layer_key(binary: &Binary, mtime: u64) -> String {
    let key = format!("layer-recipe {LAYER_RECIPE}\nbinary {}\nmtime {mtime}\n", binary.digest);
    layout::sha256_digest(key.as_bytes()).trim_start_matches("sha256:").to_owned()
}

/// A cache entry: the layer blob (in the layout) and its uncompressed digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct CachedLayer {
    digest: String,
    size: i64,
    diff_id: String,
}

/// Whether a layer came from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerSource {
    Cached,
    Built,
}

/// The gzip layer of `binary` in the layout, and its diff ID (the tar's
/// digest): the cached one when its entry names a blob the layout holds
/// intact, else made and cached.
pub fn layer(binary: &Binary, mtime: u64, layout_dir: &Path) -> Result<(OciDescriptor, String, LayerSource)> {
    let entry = layer_cache_dir(layout_dir).join(layer_key(binary, mtime));
    let cached = std::fs::read(&entry).ok().and_then(|b| serde_json::from_slice::<CachedLayer>(&b).ok());
    if let Some(c) = cached.filter(|c| layout::blob_intact(layout_dir, &c.digest, c.size)) {
        let descriptor = OciDescriptor {
            media_type: IMAGE_LAYER_GZIP_MEDIA_TYPE.into(),
            digest: c.digest,
            size: c.size,
            ..Default::default()
        };
        return Ok((descriptor, c.diff_id, LayerSource::Cached));
    }
    let tar = layer_tar(&binary.bytes, mtime);
    let diff_id = layout::sha256_digest(&tar);
    let descriptor = layout::put_blob(layout_dir, IMAGE_LAYER_GZIP_MEDIA_TYPE, &layout::gzip(&tar))?;
    let record = CachedLayer { digest: descriptor.digest.clone(), size: descriptor.size, diff_id: diff_id.clone() };
    write_entry(&entry, &record).with_context(|| format!("writing the layer cache entry {}", entry.display()))?;
    Ok((descriptor, diff_id, LayerSource::Built))
}

/// Written whole, then renamed: a concurrent build reads the old entry or
/// the new one, never half of one.
fn write_entry(path: &Path, record: &CachedLayer) -> Result<()> {
    std::fs::create_dir_all(path.parent().expect("an entry is inside the cache directory"))?;
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, serde_json::to_vec(record)?)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// The uncompressed layer: one regular file at the root.
pub fn layer_tar(binary: &[u8], mtime: u64) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    tar_file(&mut tar, BINARY_PATH.trim_start_matches('/'), binary, BINARY_MODE, mtime);
    tar.into_inner().expect("writing to memory")
}

/// The image config, as the Dockerfile would make it on a daemon of that
/// platform: oci-spec's typed configuration, in canonical JSON (sorted
/// keys, so the labels' HashMap cannot change the bytes).
pub fn config(platform: Platform, diff_id: &str, labels: &Labels, created: &str) -> Vec<u8> {
    use oci_spec::image::{ConfigBuilder, HistoryBuilder, ImageConfigurationBuilder, Os, RootFsBuilder};
    let run = ConfigBuilder::default()
        .user(USER)
        .entrypoint(vec![BINARY_PATH.to_owned()])
        .labels(labels.map().into_iter().map(|(k, v)| (k.to_owned(), v)).collect::<std::collections::HashMap<_, _>>())
        .build()
        .expect("every field of the run config is set");
    let rootfs = RootFsBuilder::default()
        .typ("layers")
        .diff_ids(vec![diff_id.to_owned()])
        .build()
        .expect("the rootfs is complete");
    let history = HistoryBuilder::default()
        .created(created)
        .created_by("cargo xtask image --builder oci")
        .build()
        .expect("the history entry is complete");
    let config = ImageConfigurationBuilder::default()
        .architecture(platform.oci().architecture)
        .os(Os::Linux)
        .created(created)
        .config(run)
        .rootfs(rootfs)
        .history(vec![history])
        .build()
        .expect("every required field of the image config is set");
    layout::canonical_json(&config)
}

/// Builds the image, one manifest per (platform, binary), into the layout
/// and names it `ref_name` there.
pub fn build(
    binaries: &[(Platform, Binary)],
    labels: &Labels,
    mtime: u64,
    layout_dir: &Path,
    ref_name: &str,
    out: &Reporter,
) -> Result<Image> {
    let created = super::created(mtime)?;
    let annotations = labels.annotations();
    let mut manifests = Vec::new();
    for (platform, binary) in binaries {
        let (layer, diff_id, source) = layer(binary, mtime, layout_dir)?;
        if source == LayerSource::Cached {
            out.status(format!(
                "  {platform} layer: the binary is unchanged, its cached layer {} is reused",
                &layer.digest[..19]
            ));
        }
        let config = config(*platform, &diff_id, labels, &created);
        let config = layout::put_blob(layout_dir, IMAGE_CONFIG_MEDIA_TYPE, &config)?;
        manifests.push(Manifest::write(layout_dir, platform.oci(), config, vec![layer], &annotations)?);
    }
    layout::write_image(layout_dir, manifests, ref_name, &annotations)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::tests::tempdir;

    fn labels(revision: &str) -> Labels {
        Labels {
            version: "0.1.0".into(),
            revision: revision.into(),
            source: "https://example.com/job-test".into(),
            licenses: "MIT OR Apache-2.0".into(),
        }
    }

    /// Every file of a directory, by relative path.
    fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_owned()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    out.push((path.strip_prefix(dir).unwrap().to_owned(), std::fs::read(&path).unwrap()));
                }
            }
        }
        out.sort();
        out
    }

    fn build_into(dir: &Path, binaries: &[(Platform, Binary)], revision: &str, mtime: u64) -> Image {
        let out = Reporter::new(crate::choices::Output::Json);
        build(binaries, &labels(revision), mtime, dir, "job-test:1", &out).unwrap()
    }

    #[test]
    fn an_unchanged_binary_reuses_its_cached_layer_and_gives_the_same_bytes() {
        let root = tempdir("layer-cache-hit");
        let (cached, fresh) = (root.join("cached"), root.join("fresh"));
        let binaries = [
            (Platform::LinuxAmd64, Binary::new(b"\x7fELF amd64 worker".repeat(1000))),
            (Platform::LinuxArm64, Binary::new(b"\x7fELF arm64 worker".repeat(1000))),
        ];
        let first = build_into(&cached, &binaries, "abc", 1_700_000_000);
        for (_, binary) in &binaries {
            let (_, _, source) = layer(binary, 1_700_000_000, &cached).unwrap();
            assert_eq!(source, LayerSource::Cached);
        }
        let again = build_into(&cached, &binaries, "abc", 1_700_000_000);
        assert_eq!(again.digest, first.digest);
        // Built without any cache: the same layout, byte for byte.
        let from_scratch = build_into(&fresh, &binaries, "abc", 1_700_000_000);
        assert_eq!(from_scratch.digest, first.digest);
        assert_eq!(files(&cached), files(&fresh), "a cached build differs from a fresh one");
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_changed_binary_or_timestamp_misses_the_cache_and_labels_change_only_the_config() {
        let dir = tempdir("layer-cache-miss").join("layout");
        let old = Binary::new(b"\x7fELF version 1".repeat(1000));
        let first = build_into(&dir, &[(Platform::LinuxAmd64, old.clone())], "abc", 1_700_000_000);
        let new = Binary::new(b"\x7fELF version 2".repeat(1000));
        assert_eq!(layer(&new, 1_700_000_000, &dir).unwrap().2, LayerSource::Built, "a changed binary");
        assert_eq!(layer(&old, 1_700_000_001, &dir).unwrap().2, LayerSource::Built, "a changed timestamp");
        let rebuilt = build_into(&dir, &[(Platform::LinuxAmd64, new)], "abc", 1_700_000_000);
        assert_ne!(rebuilt.manifests[0].layers[0].digest, first.manifests[0].layers[0].digest);

        // Labels are in the config, not in the layer: the layer is reused,
        // the image is a new one.
        assert_eq!(layer(&old, 1_700_000_000, &dir).unwrap().2, LayerSource::Cached);
        let relabelled = build_into(&dir, &[(Platform::LinuxAmd64, old)], "def", 1_700_000_000);
        assert_eq!(relabelled.manifests[0].layers[0].digest, first.manifests[0].layers[0].digest);
        assert_ne!(relabelled.manifests[0].config.digest, first.manifests[0].config.digest);
        assert_ne!(relabelled.digest, first.digest);
        std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_cache_entry_whose_blob_is_gone_or_damaged_is_rebuilt() {
        let dir = tempdir("layer-cache-damaged").join("layout");
        let binary = Binary::new(b"\x7fELF worker".repeat(1000));
        let image = build_into(&dir, &[(Platform::LinuxAmd64, binary.clone())], "abc", 1_700_000_000);
        let blob = image.blob_path(&image.manifests[0].layers[0].digest);
        let good = std::fs::read(&blob).unwrap();
        std::fs::write(&blob, b"damaged").unwrap();
        assert_eq!(layer(&binary, 1_700_000_000, &dir).unwrap().2, LayerSource::Built);
        assert_eq!(std::fs::read(&blob).unwrap(), good, "the damaged blob is written again");
        std::fs::remove_file(&blob).unwrap();
        assert_eq!(layer(&binary, 1_700_000_000, &dir).unwrap().2, LayerSource::Built);
        assert_eq!(std::fs::read(&blob).unwrap(), good);
        std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
    }
}
