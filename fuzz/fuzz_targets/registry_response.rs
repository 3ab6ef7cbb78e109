//! What a registry answers, as the push reads it: a manifest or an index
//! (oci-client's types), the referrers tag's index that the push extends,
//! a token, and an error body that the push classifies and explains.
//!
//! Checked: never panics; the extended index lists the new referrer once,
//! keeps the others, and is sorted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_client::errors::{OciDistributionError, OciEnvelope};
use oci_client::manifest::{ImageIndexEntry, OciImageIndex, OciManifest};
use oci_client::token_cache::RegistryToken;
use xtask::push::credentials::Source;
use xtask::push::{failure, referrers};

const OURS: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

fuzz_target!(|data: &[u8]| {
    if let Ok(manifest) = serde_json::from_slice::<OciManifest>(data) {
        let _ = manifest.to_string();
    }
    if let Ok(index) = serde_json::from_slice::<OciImageIndex>(data) {
        let others: Vec<String> = index.manifests.iter().map(|m| m.digest.clone()).filter(|d| d != OURS).collect();
        let entry = ImageIndexEntry {
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            digest: OURS.into(),
            size: 1,
            platform: None,
            annotations: None,
            artifact_type: Some("application/spdx+json".into()),
        };
        let extended = referrers::with_entry(Some(index), entry);
        let digests: Vec<&str> = extended.manifests.iter().map(|m| m.digest.as_str()).collect();
        assert_eq!(digests.iter().filter(|d| **d == OURS).count(), 1, "{digests:?}");
        assert!(others.iter().all(|d| digests.contains(&d.as_str())), "{others:?} -> {digests:?}");
        assert!(digests.is_sorted(), "{digests:?}");
        assert!(referrers::lists(&extended, OURS));
    }
    if let Ok(token) = serde_json::from_slice::<RegistryToken>(data) {
        let _ = token.bearer_token();
    }
    if let Ok(envelope) = serde_json::from_slice::<OciEnvelope>(data) {
        let url = "https://registry.example/v2/job-test/manifests/0.1.0".to_owned();
        let failure = failure::classify(&OciDistributionError::RegistryError { envelope, url });
        let e = failure::explain("pushing", "registry.example", "job-test", &failure, &Source::Anonymous, false);
        assert!(!e.to_string().is_empty());
    }
});
