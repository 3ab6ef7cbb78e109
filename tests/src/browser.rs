//! Headless Chromium (Debian's `chromium`, which `cargo xtask test`
//! installs) opening a page from a file, offline: the DOM it built, the
//! requests the page made, a screenshot. Each run has a profile of its own,
//! so tests run side by side.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// What the browser made of a page.
pub struct Page {
    /// The DOM after loading, serialized (`--dump-dom`).
    pub dom: String,
    /// Network URLs (http, https, ws, wss) the page asked for.
    pub requests: Vec<String>,
}

/// Opens `file` and returns its DOM and the network requests it made.
pub fn open(file: &Path) -> Page {
    let dir = crate::tempdir("chromium");
    let netlog = dir.join("netlog.json");
    let out = chromium(&dir, &[&format!("--log-net-log={}", netlog.display()), "--dump-dom"], file);
    let log: Value = serde_json::from_slice(&std::fs::read(&netlog).expect("chromium wrote no net log"))
        .unwrap_or_else(|e| panic!("the net log is not JSON ({e})"));
    let page = Page { dom: String::from_utf8_lossy(&out.stdout).into_owned(), requests: page_requests(&log) };
    let _ = std::fs::remove_dir_all(&dir);
    page
}

/// A `width`x`height` screenshot of `file` as PNG bytes.
pub fn screenshot(file: &Path, width: u32, height: u32) -> Vec<u8> {
    let dir = crate::tempdir("chromium");
    let png = dir.join("page.png");
    chromium(&dir, &[&format!("--screenshot={}", png.display()), &format!("--window-size={width},{height}")], file);
    let bytes = std::fs::read(&png).unwrap_or_else(|e| panic!("chromium wrote no screenshot ({e})"));
    let _ = std::fs::remove_dir_all(&dir);
    bytes
}

fn chromium(profile: &Path, args: &[&str], file: &Path) -> Output {
    let url = format!("file://{}", std::fs::canonicalize(file).unwrap().display());
    let out = Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"])
        // The browser's own traffic (updates, sign-in) is not the page's;
        // fewer of those make the net log shorter.
        .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
        .arg(format!("--user-data-dir={}", PathBuf::from(profile).join("profile").display()))
        .args(args)
        .arg(&url)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!("this test needs Debian's chromium ({e}); `cargo xtask test` installs it (apt-get install chromium)")
        });
    assert!(out.status.success(), "chromium {args:?} {url}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// The network URLs requests started for in a Chromium net log that a page
/// initiated. The browser starts requests of its own (component updates,
/// sign-in) whose initiator is "not an origin"; a request a page made has
/// the page's origin, which for a file:// page is "null".
fn page_requests(log: &Value) -> Vec<String> {
    let start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
        .as_u64()
        .expect("a Chromium net log names its event types");
    log["events"]
        .as_array()
        .expect("a Chromium net log has events")
        .iter()
        .filter(|e| e["type"].as_u64() == Some(start_job))
        .filter(|e| e["params"]["initiator"].as_str().is_some_and(|i| i != "not an origin"))
        .filter_map(|e| e["params"]["url"].as_str())
        .filter(|url| ["http:", "https:", "ws:", "wss:"].iter().any(|s| url.starts_with(s)))
        .map(str::to_owned)
        .collect()
}

/// A bar of the timeline in a DOM: its pod and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bar {
    pub pod: String,
    pub outcome: String,
}

/// Every pod bar (`<rect class="pod ..." data-pod=...>`) in `dom`, in order;
/// the legend's swatches name no pod and are not bars.
pub fn bars(dom: &str) -> Vec<Bar> {
    elements(dom, "<rect ")
        .filter(|tag| attribute(tag, "class").is_some_and(|c| c.split(' ').any(|c| c == "pod")))
        .filter_map(|tag| Some(Bar { pod: attribute(tag, "data-pod")?, outcome: attribute(tag, "data-outcome")? }))
        .collect()
}

/// The start tags in `dom` that begin with `open` (`<rect `), each up to its `>`.
pub fn elements<'a>(dom: &'a str, open: &'a str) -> impl Iterator<Item = &'a str> {
    dom.match_indices(open).map(|(at, _)| &dom[at..at + dom[at..].find('>').unwrap_or(dom.len() - at)])
}

/// An attribute's value in a start tag, as a browser serializes it (double quotes).
pub fn attribute(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let end = tag[start..].find('"')?;
    Some(tag[start..start + end].replace("&amp;", "&").replace("&quot;", "\""))
}
