//! Docker's config.json and a credential helper's output, as `push` reads
//! them for a registry host.
//!
//! Checked: never panics; a refusal's words are the message's own and
//! serde_json's, never a word of the input (which holds passwords).
#![no_main]

use std::collections::BTreeSet;

use libfuzzer_sys::fuzz_target;
use xtask::push::credentials::{from_docker_config, from_helper_output};

/// The words of a text: its runs of letters and digits.
fn words(text: &str) -> BTreeSet<&str> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect()
}

/// Fails when `message` has a word that is neither in `allowed` nor in
/// serde_json's own refusal of the text.
fn check(message: &str, allowed: &str, text: &[u8]) {
    let serde = serde_json::from_slice::<serde_json::Value>(text).err().map(|e| e.to_string()).unwrap_or_default();
    let known: BTreeSet<&str> = words(allowed).union(&words(&serde)).copied().collect();
    let unknown: Vec<&str> = words(message).difference(&known).copied().collect();
    assert!(unknown.is_empty(), "{message:?} holds {unknown:?}, which may be from the input");
}

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("/fuzz/config.json");
    if let Ok(text) = std::str::from_utf8(data) {
        for host in ["docker.io", "registry.example:5000", "127.0.0.1:5000"] {
            if let Err(e) = from_docker_config(host, text, path) {
                let own = format!(
                    "parsing {0}: the auths entry for {host} in {0} is not base64 of user:password",
                    path.display()
                );
                check(&format!("{e:#}"), &own, data);
            }
        }
    }
    if let Err(e) = from_helper_output("fuzz", data) {
        check(&format!("{e:#}"), "docker-credential-fuzz printed something that is not JSON", data);
    }
});
