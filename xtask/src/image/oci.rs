//! The daemonless builder: the same image the Dockerfile describes (one file,
//! user 65532, the entrypoint, the labels), assembled without any daemon and
//! reproducibly: sorted entries, owner 0:0, fixed mode and mtime, a gzip
//! header without name or time, a config whose only time is the source's.
//! One manifest per platform, each with its own binary and a config naming
//! its architecture; several are joined under an image index.

use std::path::Path;

use anyhow::Result;
use oci_client::manifest::{IMAGE_CONFIG_MEDIA_TYPE, IMAGE_LAYER_GZIP_MEDIA_TYPE};
use serde_json::json;

use super::layout::{self, Image, Manifest};
use super::{BINARY_MODE, BINARY_PATH, Labels, Platform, USER, tar_file};

/// The uncompressed layer: one regular file at the root.
pub fn layer_tar(binary: &[u8], mtime: u64) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    tar_file(&mut tar, BINARY_PATH.trim_start_matches('/'), binary, BINARY_MODE, mtime);
    tar.into_inner().expect("writing to memory")
}

/// The image config, as the Dockerfile would make it on a daemon of that platform.
pub fn config(platform: Platform, diff_id: &str, labels: &Labels, created: &str) -> Vec<u8> {
    let config = json!({
        "architecture": platform.architecture(),
        "os": "linux",
        "created": created,
        "config": {
            "User": USER,
            "Entrypoint": [BINARY_PATH],
            "Labels": labels.map(),
        },
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
        "history": [{ "created": created, "created_by": "cargo xtask image --builder oci" }],
    });
    layout::canonical_json(&config)
}

/// Builds the image, one manifest per (platform, binary), into the layout
/// and names it `ref_name` there.
pub fn build(
    binaries: &[(Platform, Vec<u8>)],
    labels: &Labels,
    mtime: u64,
    layout_dir: &Path,
    ref_name: &str,
) -> Result<Image> {
    // RFC 3339 with second precision, as `docker inspect` shows it.
    let created = jiff::Timestamp::from_second(mtime as i64)
        .map_err(|e| crate::Error::usage(format!("SOURCE_DATE_EPOCH {mtime}: not a time ({e})")))?
        .to_string();
    let mut manifests = Vec::new();
    for (platform, binary) in binaries {
        let tar = layer_tar(binary, mtime);
        let layer = layout::put_blob(layout_dir, IMAGE_LAYER_GZIP_MEDIA_TYPE, &layout::gzip(&tar))?;
        let config = config(*platform, &layout::sha256_digest(&tar), labels, &created);
        let config = layout::put_blob(layout_dir, IMAGE_CONFIG_MEDIA_TYPE, &config)?;
        manifests.push(Manifest::write(layout_dir, platform.oci(), config, vec![layer])?);
    }
    layout::write_image(layout_dir, manifests, ref_name)
}
