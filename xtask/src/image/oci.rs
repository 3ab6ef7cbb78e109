//! The daemonless builder: the same image the Dockerfile describes (one file,
//! user 65532, the entrypoint, the labels), assembled without any daemon and
//! reproducibly: sorted entries, owner 0:0, fixed mode and mtime, a gzip
//! header without name or time, a config whose only time is the source's.

use std::path::Path;

use anyhow::Result;
use serde_json::json;

use super::layout::{self, CONFIG_MEDIA_TYPE, Image, LAYER_GZIP_MEDIA_TYPE};
use super::{BINARY_MODE, BINARY_PATH, Labels, USER, tar_file};

/// The uncompressed layer: one regular file at the root.
pub fn layer_tar(binary: &[u8], mtime: u64) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    tar_file(&mut tar, BINARY_PATH.trim_start_matches('/'), binary, BINARY_MODE, mtime);
    tar.into_inner().expect("writing to memory")
}

/// The image config, as the Dockerfile would make it.
pub fn config(diff_id: &str, labels: &Labels, created: &str) -> Vec<u8> {
    let config = json!({
        "architecture": "amd64",
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
    // serde_json's map is sorted: the same config gives the same bytes.
    serde_json::to_vec(&config).expect("a JSON value serializes")
}

/// Builds the image into the layout and names it `ref_name` there.
pub fn build(binary: &[u8], labels: &Labels, mtime: u64, layout_dir: &Path, ref_name: &str) -> Result<Image> {
    let tar = layer_tar(binary, mtime);
    let gz = layout::gzip(&tar);
    let layer = layout::put_blob(layout_dir, LAYER_GZIP_MEDIA_TYPE, &gz)?;
    // RFC 3339 with second precision, as `docker inspect` shows it.
    let created = jiff::Timestamp::from_second(mtime as i64)
        .map_err(|e| crate::Error::usage(format!("SOURCE_DATE_EPOCH {mtime}: not a time ({e})")))?
        .to_string();
    let config = config(&layout::sha256_digest(&tar), labels, &created);
    let config = layout::put_blob(layout_dir, CONFIG_MEDIA_TYPE, &config)?;
    layout::write_image(layout_dir, config, vec![layer], ref_name)
}
