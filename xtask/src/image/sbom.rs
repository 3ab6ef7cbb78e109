//! The worker's SBOM: an SPDX 2.3 JSON document of the crates linked into
//! the static binary, attached to the image as an OCI 1.1 artifact (its
//! `subject` is the image), as ko attaches one to every image.
//!
//! Which crates: cargo's resolve graph (`cargo metadata --filter-platform`
//! for the image's targets) walked from job-worker along normal
//! dependencies only (not dev, not build), leaving out proc-macros (they
//! run in the compiler, nothing of them is linked); versions as Cargo.lock
//! pins them, with its checksum of each registry crate, and each crate's
//! declared licence and repository. `cargo tree -p job-worker -e
//! normal,no-proc-macro --target T` lists the same set (a test compares).
//!
//! Reproducible like the image: no time but SOURCE_DATE_EPOCH's, packages
//! and relationships sorted, no path of this machine, a namespace made of
//! the image's digest, canonical JSON. The same sources give the same
//! document, and so the same artifact digest.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use xshell::Shell;

use super::Labels;
use super::layout::{Annotations, Artifact, Image, canonical_json};
use crate::choices::Target;

/// The artifact type, and the media type of the document (as ko and the
/// distribution spec's examples use them).
pub const SPDX_MEDIA_TYPE: &str = "application/spdx+json";
/// The document's name in the artifact (its layer's title).
pub const FILE_NAME: &str = "job-worker.spdx.json";
const ROOT: &str = "job-worker";
const CRATES_IO: &str = "registry+https://github.com/rust-lang/crates.io-index";
const NOASSERTION: &str = "NOASSERTION";

/// A crate linked into the worker.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Crate {
    pub name: String,
    pub version: String,
    /// The `license` field, as an SPDX expression (the old `A/B` read as `A OR B`).
    pub license: Option<String>,
    pub repository: Option<String>,
    pub homepage: Option<String>,
    pub source: CrateSource,
    /// Cargo.lock's sha256 of the `.crate` file (registry crates).
    pub checksum: Option<String>,
    /// (name, version) of each crate it depends on, sorted.
    pub dependencies: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum CrateSource {
    CratesIo,
    /// Another registry, or git: cargo's source string.
    Other(String),
    /// A path in this workspace.
    Workspace,
}

/// `cargo metadata`'s JSON, the parts read here.
#[derive(Deserialize)]
struct Metadata {
    packages: Vec<Package>,
    resolve: Option<Resolve>,
}

#[derive(Deserialize)]
struct Package {
    id: String,
    name: String,
    version: String,
    license: Option<String>,
    repository: Option<String>,
    homepage: Option<String>,
    source: Option<String>,
    targets: Vec<TargetKinds>,
}

#[derive(Deserialize)]
struct TargetKinds {
    kind: Vec<String>,
}

#[derive(Deserialize)]
struct Resolve {
    nodes: Vec<Node>,
}

#[derive(Deserialize)]
struct Node {
    id: String,
    deps: Vec<NodeDep>,
}

#[derive(Deserialize)]
struct NodeDep {
    pkg: String,
    dep_kinds: Vec<DepKind>,
}

#[derive(Deserialize)]
struct DepKind {
    /// None: a normal dependency; "dev" or "build" otherwise.
    kind: Option<String>,
}

#[derive(Deserialize)]
struct Lock {
    #[serde(default)]
    package: Vec<Locked>,
}

#[derive(Deserialize)]
struct Locked {
    name: String,
    version: String,
    source: Option<String>,
    checksum: Option<String>,
}

/// The crates linked into the worker for these targets (several: the
/// union), from `cargo metadata` and Cargo.lock, sorted by name and version.
///
/// `cargo metadata` takes about 0.3 s, as long as the whole rest of a
/// no-op push, so its answer is kept in the target directory under the hash
/// of everything it reads (Cargo.lock, the workspace's manifests, the
/// targets and the cargo that answered): a push with none of them changed
/// reads the kept list instead.
pub fn read_crates(targets: &[Target]) -> Result<Vec<Crate>> {
    let root = crate::project_root();
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).context("reading Cargo.lock")?;
    let cargo = crate::build::cargo();
    let kept = crate::target_dir().join("sbom").join(format!("{}.json", inputs_hash(&root, &cargo, targets, &lock)?));
    if let Some(crates) = std::fs::read(&kept).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok()) {
        return Ok(crates);
    }
    let sh = Shell::new()?;
    sh.change_dir(&root);
    let filters = targets.iter().flat_map(|t| ["--filter-platform", t.triple()]);
    let metadata = crate::build::cargo_cmd(&sh)
        .args(["metadata", "--format-version", "1", "--locked"])
        .args(filters)
        .quiet()
        .output()
        .context("cargo metadata, for the SBOM")?
        .stdout;
    let crates = linked(&metadata, &lock)?;
    // Kept for the next push; a failure to keep it costs only time.
    if let Some(dir) = kept.parent()
        && std::fs::create_dir_all(dir).is_ok()
    {
        let _ = std::fs::write(&kept, serde_json::to_vec(&crates)?);
    }
    Ok(crates)
}

/// The hash of what `cargo metadata` reads for `read_crates`: Cargo.lock,
/// the workspace's Cargo.toml and each member's, the targets, and which
/// cargo (its path names the toolchain).
fn inputs_hash(root: &Path, cargo: &Path, targets: &[Target], lock: &str) -> Result<String> {
    use sha2::{Digest, Sha256};
    #[derive(Deserialize)]
    struct Manifest {
        workspace: Option<Workspace>,
    }
    #[derive(Deserialize)]
    struct Workspace {
        #[serde(default)]
        members: Vec<String>,
    }
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).context("reading Cargo.toml")?;
    let members = toml::from_str::<Manifest>(&manifest)
        .context("reading Cargo.toml's [workspace]")?
        .workspace
        .map_or_else(Vec::new, |w| w.members);
    let mut hash = Sha256::new();
    let mut part = |bytes: &[u8]| {
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
    };
    part(cargo.as_os_str().as_encoded_bytes());
    targets.iter().for_each(|t| part(t.triple().as_bytes()));
    part(lock.as_bytes());
    part(manifest.as_bytes());
    for member in members {
        let path = root.join(&member).join("Cargo.toml");
        part(member.as_bytes());
        part(&std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?);
    }
    Ok(crate::build::hex(&hash.finalize()))
}

/// The crates job-worker links, from `cargo metadata`'s JSON and Cargo.lock.
pub fn linked(metadata: &[u8], lock: &str) -> Result<Vec<Crate>> {
    let metadata: Metadata = serde_json::from_slice(metadata).context("reading cargo metadata's JSON")?;
    let lock: Lock = toml::from_str(lock).context("reading Cargo.lock")?;
    let checksums: BTreeMap<(&str, &str, Option<&str>), &str> = lock
        .package
        .iter()
        .filter_map(|p| Some(((p.name.as_str(), p.version.as_str(), p.source.as_deref()), p.checksum.as_deref()?)))
        .collect();
    let packages: BTreeMap<&str, &Package> = metadata.packages.iter().map(|p| (p.id.as_str(), p)).collect();
    let nodes: BTreeMap<&str, &Node> = metadata
        .resolve
        .as_ref()
        .context("cargo metadata gave no resolve graph")?
        .nodes
        .iter()
        .map(|n| (n.id.as_str(), n))
        .collect();
    let roots: Vec<&Package> = metadata.packages.iter().filter(|p| p.name == ROOT && p.source.is_none()).collect();
    let [root] = roots.as_slice() else { bail!("cargo metadata names {} workspace packages {ROOT}", roots.len()) };
    let is_proc_macro = |p: &Package| p.targets.iter().any(|t| t.kind.iter().any(|k| k == "proc-macro"));

    // Normal edges only; a proc-macro is neither linked nor followed.
    let linked_deps = |id: &str| -> Vec<&str> {
        nodes.get(id).map_or_else(Vec::new, |n| {
            n.deps
                .iter()
                .filter(|d| d.dep_kinds.iter().any(|k| k.kind.is_none()))
                .map(|d| d.pkg.as_str())
                .filter(|pkg| packages.get(pkg).is_some_and(|p| !is_proc_macro(p)))
                .collect()
        })
    };
    let mut seen = BTreeSet::new();
    let mut stack = vec![root.id.as_str()];
    while let Some(id) = stack.pop() {
        if seen.insert(id) {
            stack.extend(linked_deps(id));
        }
    }
    let mut crates = seen
        .iter()
        .map(|id| {
            let p = packages.get(id).with_context(|| format!("cargo metadata lists no package {id}"))?;
            let mut dependencies: Vec<(String, String)> = linked_deps(id)
                .iter()
                .filter_map(|d| packages.get(d).map(|d| (d.name.clone(), d.version.clone())))
                .collect();
            dependencies.sort();
            dependencies.dedup();
            let source = match p.source.as_deref() {
                None => CrateSource::Workspace,
                Some(CRATES_IO) => CrateSource::CratesIo,
                Some(other) => CrateSource::Other(other.to_owned()),
            };
            Ok(Crate {
                name: p.name.clone(),
                version: p.version.clone(),
                license: p.license.as_deref().map(spdx_expression),
                repository: p.repository.clone(),
                homepage: p.homepage.clone(),
                checksum: checksums
                    .get(&(p.name.as_str(), p.version.as_str(), p.source.as_deref()))
                    .map(|c| c.to_string()),
                source,
                dependencies,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    crates.sort();
    Ok(crates)
}

/// A crate's `license` as an SPDX expression: cargo still accepts the
/// old `MIT/Apache-2.0`, which means `MIT OR Apache-2.0`.
fn spdx_expression(license: &str) -> String {
    license.split('/').map(str::trim).collect::<Vec<_>>().join(" OR ")
}

/// An SPDX identifier for a crate: `SPDXRef-Package-<name>-<version>`
/// with what SPDX does not allow (`_`, `+`) as `-`.
fn spdx_id(name: &str, version: &str) -> String {
    let clean =
        |s: &str| s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '-' }).collect::<String>();
    format!("SPDXRef-Package-{}-{}", clean(name), clean(version))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    spdx_version: &'static str,
    data_license: &'static str,
    #[serde(rename = "SPDXID")]
    spdx_id: &'static str,
    name: String,
    document_namespace: String,
    creation_info: CreationInfo,
    packages: Vec<SpdxPackage>,
    relationships: Vec<Relationship>,
}

#[derive(Serialize)]
struct CreationInfo {
    created: String,
    creators: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SpdxPackage {
    name: String,
    #[serde(rename = "SPDXID")]
    spdx_id: String,
    version_info: String,
    download_location: String,
    files_analyzed: bool,
    license_concluded: &'static str,
    license_declared: String,
    copyright_text: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    homepage: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_info: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    checksums: Vec<Checksum>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    external_refs: Vec<ExternalRef>,
    primary_package_purpose: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Checksum {
    algorithm: &'static str,
    checksum_value: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExternalRef {
    reference_category: &'static str,
    reference_type: &'static str,
    reference_locator: String,
}

#[derive(Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
struct Relationship {
    spdx_element_id: String,
    relationship_type: &'static str,
    related_spdx_element: String,
}

/// The SPDX 2.3 document of the image `digest`, whose worker links
/// `crates`, made at `created` (RFC 3339, SOURCE_DATE_EPOCH's).
pub fn document(crates: &[Crate], digest: &str, labels: &Labels, created: &str) -> Vec<u8> {
    let hex = digest.trim_start_matches("sha256:");
    // The workspace's own crate is at this commit of the source, when the
    // tree was clean.
    let at_commit = (labels.revision.len() == 40 && labels.revision.chars().all(|c| c.is_ascii_hexdigit()))
        .then(|| format!("git+{}@{}", labels.source, labels.revision));
    let packages = crates
        .iter()
        .map(|c| {
            let (download_location, purl) = match &c.source {
                CrateSource::CratesIo => (
                    format!("https://crates.io/api/v1/crates/{}/{}/download", c.name, c.version),
                    Some(format!("pkg:cargo/{}@{}", c.name, c.version)),
                ),
                CrateSource::Other(source) => (source.clone(), None),
                CrateSource::Workspace => (at_commit.clone().unwrap_or_else(|| NOASSERTION.into()), None),
            };
            SpdxPackage {
                name: c.name.clone(),
                spdx_id: spdx_id(&c.name, &c.version),
                version_info: c.version.clone(),
                download_location,
                files_analyzed: false,
                license_concluded: NOASSERTION,
                license_declared: c.license.clone().unwrap_or_else(|| NOASSERTION.into()),
                copyright_text: NOASSERTION,
                homepage: c.homepage.clone().or_else(|| c.repository.clone()),
                source_info: c.repository.as_ref().map(|r| format!("repository {r}")),
                checksums: c
                    .checksum
                    .iter()
                    .map(|sum| Checksum { algorithm: "SHA256", checksum_value: sum.clone() })
                    .collect(),
                external_refs: purl
                    .into_iter()
                    .map(|purl| ExternalRef {
                        reference_category: "PACKAGE-MANAGER",
                        reference_type: "purl",
                        reference_locator: purl,
                    })
                    .collect(),
                primary_package_purpose: if c.name == ROOT && c.source == CrateSource::Workspace {
                    "APPLICATION"
                } else {
                    "LIBRARY"
                },
            }
        })
        .collect();
    let mut relationships: Vec<Relationship> = crates
        .iter()
        .flat_map(|c| {
            c.dependencies.iter().map(|(name, version)| Relationship {
                spdx_element_id: spdx_id(&c.name, &c.version),
                relationship_type: "DEPENDS_ON",
                related_spdx_element: spdx_id(name, version),
            })
        })
        .collect();
    relationships.sort();
    if let Some(root) = crates.iter().find(|c| c.name == ROOT && c.source == CrateSource::Workspace) {
        relationships.insert(
            0,
            Relationship {
                spdx_element_id: "SPDXRef-DOCUMENT".into(),
                relationship_type: "DESCRIBES",
                related_spdx_element: spdx_id(&root.name, &root.version),
            },
        );
    }
    canonical_json(&Document {
        spdx_version: "SPDX-2.3",
        data_license: "CC0-1.0",
        spdx_id: "SPDXRef-DOCUMENT",
        name: format!("{ROOT} image {digest}"),
        document_namespace: format!("{}/spdx/{ROOT}/sha256-{hex}", labels.source.trim_end_matches('/')),
        creation_info: CreationInfo {
            created: created.to_owned(),
            creators: vec![format!("Tool: job-test-xtask-{}", env!("CARGO_PKG_VERSION"))],
        },
        packages,
        relationships,
    })
}

/// Writes the SBOM of `image` into its layout and lists it there as the
/// image's referrer.
pub fn attach(image: &mut Image, crates: &[Crate], labels: &Labels, created: &str, ref_name: &str) -> Result<()> {
    let document = document(crates, &image.digest, labels, created);
    let annotations: Annotations = [("org.opencontainers.image.created".to_owned(), created.to_owned())].into();
    let artifact = Artifact::write(&image.layout, image, SPDX_MEDIA_TYPE, &document, FILE_NAME, &annotations)?;
    image.attach(artifact, ref_name)
}

/// The image's SBOM artifact, when it has one.
pub fn of(image: &Image) -> Option<&Artifact> {
    image.referrers.iter().find(|a| a.artifact_type == SPDX_MEDIA_TYPE)
}

/// What a result says of an SBOM.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The artifact's manifest digest.
    pub digest: String,
    pub format: &'static str,
    /// Crates (SPDX packages) it names.
    pub packages: usize,
    /// The document's size in bytes.
    pub size: u64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}, {} crates, {} bytes)", self.digest, self.format, self.packages, self.size)
    }
}

/// The image's SBOM, read back from its layout.
pub fn summary(image: &Image) -> Result<Option<Summary>> {
    let Some(artifact) = of(image) else { return Ok(None) };
    let layer = artifact.layers.first().context("the SBOM artifact has no document")?;
    let document: serde_json::Value =
        serde_json::from_slice(&image.read_blob(layer)?).context("the SBOM is not JSON")?;
    Ok(Some(Summary {
        digest: artifact.digest.clone(),
        format: "SPDX-2.3",
        packages: document["packages"].as_array().map_or(0, Vec::len),
        size: layer.size.max(0) as u64,
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    /// The kept crate list is read again only while nothing cargo metadata
    /// reads has changed: a member's manifest, the lock file, the targets
    /// or the cargo each make another key.
    #[test]
    fn the_kept_crate_list_is_keyed_by_everything_cargo_metadata_reads() {
        let root = std::env::temp_dir().join(format!("job-test-sbom-key-{}", std::process::id()));
        std::fs::create_dir_all(root.join("member")).unwrap();
        std::fs::write(root.join("Cargo.toml"), "[workspace]\nmembers = [\"member\"]\n").unwrap();
        std::fs::write(root.join("member/Cargo.toml"), "[package]\nname = \"member\"\n").unwrap();
        let cargo = Path::new("/toolchains/stable/bin/cargo");
        let key = |cargo: &Path, targets: &[Target], lock: &str| inputs_hash(&root, cargo, targets, lock).unwrap();
        let first = key(cargo, &[Target::Musl], "lock");
        assert_eq!(key(cargo, &[Target::Musl], "lock"), first, "the same inputs, the same key");
        assert_ne!(key(cargo, &[Target::Musl], "lock 2"), first, "Cargo.lock");
        assert_ne!(key(cargo, &[Target::Musl, Target::Aarch64Musl], "lock"), first, "the targets");
        assert_ne!(key(Path::new("cargo"), &[Target::Musl], "lock"), first, "the cargo");
        std::fs::write(root.join("member/Cargo.toml"), "[package]\nname = \"member\"\n[dependencies]\nx = \"1\"\n")
            .unwrap();
        assert_ne!(key(cargo, &[Target::Musl], "lock"), first, "a member's manifest");
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// A resolve graph shaped as `cargo metadata` gives it: job-worker with
    /// a normal, a dev, a build and a proc-macro dependency.
    fn metadata() -> Vec<u8> {
        let pkg = |name: &str, version: &str, source: Option<&str>, license: Option<&str>, kind: &str| {
            json!({
                "id": format!("{}#{name}@{version}", source.unwrap_or("path+file:///home/someone/job-test")),
                "name": name, "version": version, "source": source, "license": license,
                "repository": format!("https://example.com/{name}"), "homepage": null,
                "targets": [{ "kind": [kind] }],
            })
        };
        let id = |name: &str, version: &str| format!("{CRATES_IO}#{name}@{version}");
        let root = "path+file:///home/someone/job-test#job-worker@0.1.0";
        let dep =
            |pkg: String, kind: Option<&str>| json!({ "pkg": pkg, "dep_kinds": [{ "kind": kind, "target": null }] });
        serde_json::to_vec(&json!({
            "packages": [
                pkg("job-worker", "0.1.0", None, Some("MIT OR Apache-2.0"), "bin"),
                pkg("rand", "0.10.4", Some(CRATES_IO), Some("MIT/Apache-2.0"), "lib"),
                pkg("rand_core", "0.10.1", Some(CRATES_IO), Some("MIT OR Apache-2.0"), "lib"),
                pkg("serde_json", "1.0.0", Some(CRATES_IO), Some("MIT"), "lib"),
                pkg("cc", "1.0.0", Some(CRATES_IO), Some("MIT"), "lib"),
                pkg("derive_it", "1.0.0", Some(CRATES_IO), Some("MIT"), "proc-macro"),
                pkg("syn", "2.0.0", Some(CRATES_IO), Some("MIT"), "lib"),
            ],
            "resolve": { "nodes": [
                { "id": root, "deps": [
                    dep(id("rand", "0.10.4"), None),
                    dep(id("serde_json", "1.0.0"), Some("dev")),
                    dep(id("cc", "1.0.0"), Some("build")),
                    dep(id("derive_it", "1.0.0"), None),
                ] },
                { "id": id("rand", "0.10.4"), "deps": [dep(id("rand_core", "0.10.1"), None)] },
                { "id": id("rand_core", "0.10.1"), "deps": [] },
                { "id": id("derive_it", "1.0.0"), "deps": [dep(id("syn", "2.0.0"), None)] },
            ] },
        }))
        .unwrap()
    }

    const LOCK: &str = r#"
version = 4

[[package]]
name = "job-worker"
version = "0.1.0"

[[package]]
name = "rand"
version = "0.10.4"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "aaaa"

[[package]]
name = "rand_core"
version = "0.10.1"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "bbbb"
"#;

    fn labels() -> Labels {
        Labels {
            version: "0.1.0".into(),
            revision: "0123456789abcdef0123456789abcdef01234567".into(),
            source: "https://example.com/job-test".into(),
            licenses: "MIT OR Apache-2.0".into(),
        }
    }

    #[test]
    fn only_normal_dependencies_that_are_linked_are_named() {
        let crates = linked(&metadata(), LOCK).unwrap();
        let names: Vec<_> = crates.iter().map(|c| (c.name.as_str(), c.version.as_str())).collect();
        // Not the dev or build dependency, not the proc-macro nor what it uses.
        assert_eq!(names, [("job-worker", "0.1.0"), ("rand", "0.10.4"), ("rand_core", "0.10.1")]);
        assert_eq!(crates[1].license.as_deref(), Some("MIT OR Apache-2.0"), "the old slash form");
        assert_eq!(crates[1].checksum.as_deref(), Some("aaaa"));
        assert_eq!(crates[0].dependencies, [("rand".to_owned(), "0.10.4".to_owned())]);
        assert_eq!(crates[0].source, CrateSource::Workspace);
    }

    #[test]
    fn the_document_is_spdx_2_3_and_a_function_of_its_inputs() {
        let crates = linked(&metadata(), LOCK).unwrap();
        let digest = "sha256:0000000000000000000000000000000000000000000000000000000000000abc";
        let bytes = document(&crates, digest, &labels(), "2023-11-14T22:13:20Z");
        assert_eq!(bytes, document(&crates, digest, &labels(), "2023-11-14T22:13:20Z"));
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(!text.contains("/home/someone"), "a path of the machine: {text}");
        let doc: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(doc["spdxVersion"], "SPDX-2.3");
        assert_eq!(doc["dataLicense"], "CC0-1.0");
        assert_eq!(
            doc["documentNamespace"],
            format!("https://example.com/job-test/spdx/job-worker/sha256-{}", &digest[7..])
        );
        assert_eq!(doc["creationInfo"]["created"], "2023-11-14T22:13:20Z");
        let rand = &doc["packages"][1];
        assert_eq!(rand["SPDXID"], "SPDXRef-Package-rand-0.10.4");
        assert_eq!(rand["licenseDeclared"], "MIT OR Apache-2.0");
        assert_eq!(rand["downloadLocation"], "https://crates.io/api/v1/crates/rand/0.10.4/download");
        assert_eq!(rand["checksums"], json!([{ "algorithm": "SHA256", "checksumValue": "aaaa" }]));
        assert_eq!(rand["externalRefs"][0]["referenceLocator"], "pkg:cargo/rand@0.10.4");
        assert_eq!(doc["packages"][2]["SPDXID"], "SPDXRef-Package-rand-core-0.10.1");
        let root = &doc["packages"][0];
        assert_eq!(root["primaryPackagePurpose"], "APPLICATION");
        assert_eq!(
            root["downloadLocation"],
            "git+https://example.com/job-test@0123456789abcdef0123456789abcdef01234567"
        );
        let relations: Vec<String> = doc["relationships"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                format!("{} {} {}", r["spdxElementId"], r["relationshipType"], r["relatedSpdxElement"]).replace('"', "")
            })
            .collect();
        assert_eq!(
            relations,
            [
                "SPDXRef-DOCUMENT DESCRIBES SPDXRef-Package-job-worker-0.1.0",
                "SPDXRef-Package-job-worker-0.1.0 DEPENDS_ON SPDXRef-Package-rand-0.10.4",
                "SPDXRef-Package-rand-0.10.4 DEPENDS_ON SPDXRef-Package-rand-core-0.10.1",
            ]
        );
        // A dirty tree names no commit it is not.
        let dirty = Labels { revision: format!("{}-dirty", labels().revision), ..labels() };
        let doc: Value = serde_json::from_slice(&document(&crates, digest, &dirty, "x")).unwrap();
        assert_eq!(doc["packages"][0]["downloadLocation"], NOASSERTION);
    }

    #[test]
    fn this_workspace_s_worker_links_what_its_cargo_toml_asks_for() {
        let crates = read_crates(&[Target::Musl]).unwrap();
        let names: BTreeSet<&str> = crates.iter().map(|c| c.name.as_str()).collect();
        for name in ["job-worker", "rand", "libc", "lexopt", "humantime"] {
            assert!(names.contains(name), "{name} missing from {names:?}");
        }
        assert!(!names.contains("serde_json"), "a dev-dependency is not linked: {names:?}");
        assert!(crates.iter().all(|c| c.license.is_some()), "{crates:#?}");
    }
}
