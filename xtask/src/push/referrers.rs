//! Referrers: how a client that has an image finds the artifacts that
//! refer to it (its SBOM), by the OCI distribution spec 1.1.
//!
//! A registry with the referrers API lists an artifact under
//! `GET /v2/<name>/referrers/<digest>` as soon as its manifest (whose
//! `subject` is the image) is pushed. One without it (Debian's
//! docker-registry 2.8 answers that path with `404 page not found`) needs
//! the client to keep the list itself, in the "referrers tag schema": the
//! tag `sha256-<hex>` of the subject's digest names an image index whose
//! entries are the referrers, each with its `artifactType` and annotations.
//!
//! The spec has the client read the `OCI-Subject` header of the manifest's
//! PUT to tell the two apart; oci-client does not hand response headers
//! back, so after the PUT the list is read instead: through oci-client's
//! `pull_referrers`, which asks the API and falls back to the tag as the
//! spec says. Listed there, nothing is written; otherwise the tag's index
//! is read, the artifact added to what it lists (other tools' referrers
//! are kept), and written back.

use oci_client::manifest::{ImageIndexEntry, OCI_IMAGE_INDEX_MEDIA_TYPE, OciImageIndex};
use serde::Serialize;

/// Where a registry lists an artifact among its subject's referrers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Listing {
    /// The registry's referrers API (`GET /v2/<name>/referrers/<digest>`).
    ReferrersApi,
    /// The referrers tag schema: the tag `sha256-<hex>` of the subject.
    FallbackTag,
}

impl std::fmt::Display for Listing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Listing::ReferrersApi => "the referrers API",
            Listing::FallbackTag => "the referrers tag",
        })
    }
}

/// The tag that lists the referrers of `subject` on a registry without the
/// referrers API: `sha256:<hex>` gives `sha256-<hex>`.
pub fn fallback_tag(subject: &str) -> String {
    subject.replacen(':', "-", 1)
}

/// Whether a referrers list names `digest`.
pub fn lists(index: &OciImageIndex, digest: &str) -> bool {
    index.manifests.iter().any(|m| m.digest == digest)
}

/// The fallback tag's index with `entry` in it: what it listed before
/// (another tool's referrers too), this artifact's old entry replaced,
/// sorted by digest so that the same referrers give the same bytes.
pub fn with_entry(existing: Option<OciImageIndex>, entry: ImageIndexEntry) -> OciImageIndex {
    let mut manifests = existing.map(|i| i.manifests).unwrap_or_default();
    manifests.retain(|m| m.digest != entry.digest);
    manifests.push(entry);
    manifests.sort_by(|a, b| a.digest.cmp(&b.digest));
    OciImageIndex {
        schema_version: 2,
        media_type: Some(OCI_IMAGE_INDEX_MEDIA_TYPE.into()),
        manifests,
        artifact_type: None,
        annotations: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(digest: &str, artifact_type: &str) -> ImageIndexEntry {
        ImageIndexEntry {
            media_type: oci_client::manifest::OCI_IMAGE_MEDIA_TYPE.into(),
            digest: digest.into(),
            size: 10,
            platform: None,
            annotations: None,
            artifact_type: Some(artifact_type.into()),
        }
    }

    #[test]
    fn the_fallback_tag_is_the_digest_with_a_dash() {
        assert_eq!(fallback_tag("sha256:0123abcd"), "sha256-0123abcd");
    }

    #[test]
    fn the_fallback_index_keeps_other_referrers_and_replaces_its_own_entry() {
        let first = with_entry(None, entry("sha256:bb", "application/spdx+json"));
        assert_eq!(first.media_type.as_deref(), Some(OCI_IMAGE_INDEX_MEDIA_TYPE));
        assert!(lists(&first, "sha256:bb") && !lists(&first, "sha256:aa"));
        let signed = with_entry(Some(first), entry("sha256:aa", "application/vnd.dev.sigstore.bundle+json"));
        let again = with_entry(Some(signed.clone()), entry("sha256:bb", "application/spdx+json"));
        let digests: Vec<_> = again.manifests.iter().map(|m| m.digest.as_str()).collect();
        assert_eq!(digests, ["sha256:aa", "sha256:bb"], "another tool's referrer is kept, once each");
        assert_eq!(
            crate::image::layout::canonical_json(&again),
            crate::image::layout::canonical_json(&signed),
            "the same referrers give the same bytes"
        );
    }
}
