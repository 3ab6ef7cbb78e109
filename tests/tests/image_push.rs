//! `cargo xtask image` and `cargo xtask push` against real parts: the
//! machine's Docker daemon, a real CNCF registry with TLS from a test CA and
//! htpasswd auth, and a fault proxy in front of a plain-HTTP registry.

use std::path::Path;

use base64::Engine;
use serde_json::Value;
use tests::fault_proxy::{Fault, FaultProxy};
use tests::registry::{self, Registry};
use tests::{docker, qemu_aarch64, tempdir, worker_bin, worker_bin_aarch64, xtask, xtask_with};

/// A unique repository per test, so that tests sharing nothing can run at once.
fn repo(test: &str) -> String {
    format!("jerry-learn/job-test-{test}")
}

/// The Docker daemon's own platform (`linux/amd64` or `linux/arm64`), which
/// the docker builder makes and a pull from an index takes, and the other
/// one of the two the worker is built for.
fn daemon_platforms() -> (String, String) {
    let out = docker(&["version", "--format", "{{.Server.Os}}/{{.Server.Arch}}"]);
    assert!(out.status.success(), "docker version: {}", String::from_utf8_lossy(&out.stderr));
    let own = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let other = match own.as_str() {
        "linux/amd64" => "linux/arm64",
        "linux/arm64" => "linux/amd64",
        _ => panic!("the Docker daemon runs on {own}; these tests need linux/amd64 or linux/arm64"),
    };
    (own, other.to_owned())
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.stdout, self.stderr))
    }
    fn assert_ok(&self) {
        assert_eq!(self.code, Some(0), "stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
    }
    fn assert_no_secret(&self) {
        assert!(
            !self.stdout.contains(registry::PASSWORD) && !self.stderr.contains(registry::PASSWORD),
            "the password was printed"
        );
    }
}

/// Runs xtask with an empty Docker config, so the machine's logins never count.
fn run(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Run {
    let docker_config = tempdir("docker-config");
    let dc = docker_config.to_str().unwrap().to_owned();
    let mut all_env = vec![("DOCKER_CONFIG", dc.as_str())];
    all_env.extend_from_slice(env);
    let out = xtask_with(args, &all_env, stdin);
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

fn push_args<'a>(image: &'a str, layout: &'a str, builder: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--output", "json", "push", "--builder", builder, "--image", image, "--layout", layout];
    args.extend_from_slice(extra);
    args
}

const CREDS: [(&str, &str); 2] = [("REGISTRY_USERNAME", registry::USER), ("REGISTRY_PASSWORD", registry::PASSWORD)];

fn files_of(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in walk(dir) {
        out.push((entry.strip_prefix(dir).unwrap().display().to_string(), std::fs::read(&entry).unwrap()));
    }
    out.sort();
    out
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() { files.extend(walk(&path)) } else { files.push(path) }
    }
    files
}

#[test]
fn the_daemonless_two_platform_image_is_byte_identical_across_builds() {
    let (a, b) = (tempdir("layout-a"), tempdir("layout-b"));
    let build = |dir: &Path| {
        let r = run(&["--output", "json", "image", "--builder", "oci", "--layout", dir.to_str().unwrap()], &[], None);
        r.assert_ok();
        r.json()
    };
    let (first, second) = (build(&a), build(&b));
    assert_eq!(first["digest"], second["digest"], "the index digest differs");
    assert_eq!(files_of(&a), files_of(&b), "the layouts differ byte for byte");
    assert_eq!(first["platforms"], serde_json::json!(["linux/amd64", "linux/arm64"]), "{first}");
    // Under 400 KiB compressed per platform.
    assert!(first["compressed_size"].as_u64().unwrap() < 2 * 400 * 1024, "{first}");
    let index: Value = serde_json::from_slice(&std::fs::read(a.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"][0]["digest"], first["digest"]);
    assert_eq!(index["manifests"][0]["mediaType"], "application/vnd.oci.image.index.v1+json");
}

#[test]
fn an_unchanged_binary_reuses_its_cached_layer_and_a_new_timestamp_does_not() {
    let root = tempdir("layer-cache");
    let (cached, fresh) = (root.join("cached"), root.join("fresh"));
    let build = |dir: &Path, epoch: &str| {
        let args = ["--output", "json", "image", "--builder", "oci", "--layout", dir.to_str().unwrap()];
        let r = run(&args, &[("SOURCE_DATE_EPOCH", epoch)], None);
        r.assert_ok();
        r
    };
    let reused = |r: &Run| {
        ["linux/amd64", "linux/arm64"]
            .map(|p| r.stderr.contains(&format!("{p} layer: the binary is unchanged, its cached layer sha256:")))
    };
    let first = build(&cached, "1700000000");
    assert_eq!(reused(&first), [false, false], "{}", first.stderr);
    let built = files_of(&cached);
    let second = build(&cached, "1700000000");
    assert_eq!(reused(&second), [true, true], "{}", second.stderr);
    assert_eq!(second.json()["digest"], first.json()["digest"]);
    assert_eq!(files_of(&cached), built, "a cached build changed the layout");
    // Built again where no cache is: the same bytes as the cached build.
    let scratch = build(&fresh, "1700000000");
    assert_eq!(reused(&scratch), [false, false], "{}", scratch.stderr);
    assert_eq!(files_of(&fresh), built, "the cached layout differs from one built from scratch");
    // The cache is beside the layout, not part of it: one entry per binary.
    assert_eq!(std::fs::read_dir(root.join("cached.layer-cache")).unwrap().count(), 2);

    // Another timestamp is another layer (the tar's mtime): the cache misses.
    let later = build(&cached, "1700000001");
    assert_eq!(reused(&later), [false, false], "{}", later.stderr);
    assert_ne!(later.json()["digest"], first.json()["digest"]);
    assert_eq!(std::fs::read_dir(root.join("cached.layer-cache")).unwrap().count(), 4);
}

/// A blob of the layout.
fn blob_of(dir: &Path, digest: &str) -> Vec<u8> {
    std::fs::read(dir.join("blobs/sha256").join(digest.trim_start_matches("sha256:"))).unwrap()
}

/// The one file of a gzip layer: (path, mode, uid, gid, mtime, contents).
fn only_file(layer: &[u8]) -> (String, u32, u32, u32, u64, Vec<u8>) {
    let mut tar = Vec::new();
    std::io::Read::read_to_end(&mut flate2_decoder(layer), &mut tar).unwrap();
    let mut entries = list_tar(&tar);
    assert_eq!(entries.len(), 1, "{:?}", entries.iter().map(|e| &e.0).collect::<Vec<_>>());
    entries.remove(0)
}

#[test]
fn each_platform_s_layer_holds_only_its_binary_and_its_config_names_the_platform() {
    let dir = tempdir("layout-layer");
    run(
        &["image", "--builder", "oci", "--layout", dir.to_str().unwrap()],
        &[("SOURCE_DATE_EPOCH", "1700000000")],
        None,
    )
    .assert_ok();
    let layout_index: Value = serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let index: Value =
        serde_json::from_slice(&blob_of(&dir, layout_index["manifests"][0]["digest"].as_str().unwrap())).unwrap();
    assert_eq!(index["mediaType"], "application/vnd.oci.image.index.v1+json");
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{index}");
    for (entry, (arch, binary)) in entries.iter().zip([("amd64", worker_bin()), ("arm64", worker_bin_aarch64())]) {
        assert_eq!(
            (entry["platform"]["os"].as_str(), entry["platform"]["architecture"].as_str()),
            (Some("linux"), Some(arch))
        );
        let manifest: Value = serde_json::from_slice(&blob_of(&dir, entry["digest"].as_str().unwrap())).unwrap();
        assert_eq!(manifest["mediaType"], "application/vnd.oci.image.manifest.v1+json");
        let (path, mode, uid, gid, mtime, data) =
            only_file(&blob_of(&dir, manifest["layers"][0]["digest"].as_str().unwrap()));
        assert_eq!((path.as_str(), mode, uid, gid, mtime), ("job-worker", 0o555, 0, 0, 1_700_000_000));
        assert!(data == std::fs::read(binary).unwrap(), "the {arch} layer does not hold {}", binary.display());
        let config: Value =
            serde_json::from_slice(&blob_of(&dir, manifest["config"]["digest"].as_str().unwrap())).unwrap();
        assert_eq!((config["architecture"].as_str(), config["os"].as_str()), (Some(arch), Some("linux")));
        assert_eq!(config["config"]["User"], "65532:65532");
        assert_eq!(config["config"]["Entrypoint"], serde_json::json!(["/job-worker"]));
        assert_eq!(config["created"], "2023-11-14T22:13:20Z");
    }
}

#[test]
fn one_platform_makes_a_plain_manifest_and_the_docker_builder_refuses_another_platform() {
    // With no --builder, asking for the platform the daemon is not builds
    // without the daemon.
    let (own, other) = daemon_platforms();
    let dir = tempdir("layout-other");
    let r = run(&["--output", "json", "image", "--platform", &other, "--layout", dir.to_str().unwrap()], &[], None);
    r.assert_ok();
    assert_eq!((r.json()["builder"].as_str(), &r.json()["platforms"]), (Some("oci"), &serde_json::json!([other])));
    assert!(r.stderr.contains(&format!("the docker builder makes only its daemon's platform ({own})")), "{}", r.stderr);
    let layout_index: Value = serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    assert_eq!(layout_index["manifests"][0]["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(layout_index["manifests"][0]["digest"], r.json()["digest"]);

    // The docker builder names its platform, and refuses another before building anything.
    let r = run(&["image", "--builder", "docker", "--platform", "linux/amd64,linux/arm64"], &[], None);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "--platform linux/amd64,linux/arm64: the docker builder makes only its daemon's platform, {own}; use \
             --builder oci"
        )),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("Compiling") && !r.stderr.contains("cargo build"), "{}", r.stderr);
    let r = run(&["image", "--platform", "linux/s390x"], &[], None);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("invalid value 'linux/s390x' for '--platform <OS/ARCH>'"), "{}", r.stderr);
    assert!(r.stderr.contains("[possible values: linux/amd64, linux/arm64]"), "{}", r.stderr);
}

fn flate2_decoder(bytes: &[u8]) -> impl std::io::Read + '_ {
    // The gzip stream, read with the system's own gzip to stay independent
    // of the code under test.
    let mut child = std::process::Command::new("gzip")
        .args(["-d", "-c"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = bytes.to_vec();
    std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &data).unwrap());
    let out = child.wait_with_output().unwrap();
    std::io::Cursor::new(out.stdout)
}

/// (path, mode, uid, gid, mtime, contents) of each entry, parsed by hand
/// from the 512-byte ustar headers.
fn list_tar(tar: &[u8]) -> Vec<(String, u32, u32, u32, u64, Vec<u8>)> {
    let octal = |b: &[u8]| {
        let s = String::from_utf8_lossy(b);
        u64::from_str_radix(s.trim_matches(|c: char| c == '\0' || c == ' '), 8).unwrap_or(0)
    };
    let mut out = Vec::new();
    let mut at = 0;
    while at + 512 <= tar.len() && tar[at..at + 512].iter().any(|b| *b != 0) {
        let h = &tar[at..at + 512];
        let name = String::from_utf8_lossy(&h[..100]).trim_end_matches('\0').to_owned();
        let size = octal(&h[124..136]) as usize;
        let data = tar[at + 512..at + 512 + size].to_vec();
        out.push((
            name,
            octal(&h[100..108]) as u32,
            octal(&h[108..116]) as u32,
            octal(&h[116..124]) as u32,
            octal(&h[136..148]),
            data,
        ));
        at += 512 + size.div_ceil(512) * 512;
    }
    out
}

#[test]
fn both_builders_make_the_same_image_config() {
    let tag = format!("job-test-e2e/builders:{}", std::process::id());
    let oci_tag = format!("{tag}-oci");
    let docker_tag = format!("{tag}-docker");
    run(
        &["image", "--builder", "oci", "--load", "--image", &oci_tag, "--layout", tempdir("l1").to_str().unwrap()],
        &[],
        None,
    )
    .assert_ok();
    let layout = tempdir("l2");
    let args = ["image", "--builder", "docker", "--image", &docker_tag, "--layout", layout.to_str().unwrap()];
    let built = run(&args, &[], None);
    built.assert_ok();
    // The daemon's own build lines are detail: shown with --verbose only,
    // as cargo and ko keep a builder's lines out of their progress.
    assert!(!built.stderr.contains("docker: Step"), "{}", built.stderr);
    assert!(built.stderr.contains(&format!("building {docker_tag} with the Docker daemon")), "{}", built.stderr);
    let verbose = run(&[&["--verbose"][..], &args[..]].concat(), &[], None);
    verbose.assert_ok();
    assert!(verbose.stderr.contains("  docker: Step 1/"), "{}", verbose.stderr);
    let inspect = |t: &str| {
        let out = docker(&[
            "image",
            "inspect",
            "--format",
            "{{json .Config.User}} {{json .Config.Entrypoint}} {{json .Config.Labels}}",
            t,
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let (a, b) = (inspect(&oci_tag), inspect(&docker_tag));
    assert_eq!(a, b);
    assert!(a.contains("\"65532:65532\"") && a.contains("org.opencontainers.image.revision"), "{a}");
    // The loaded daemonless image runs.
    let out = docker(&["run", "--rm", &oci_tag, "--fail-probability", "0"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let _ = docker(&["rmi", "--force", &oci_tag, &docker_tag]);
}

/// Pushes with `builder`, pulls back with the Docker daemon and runs it.
fn push_pull_run(builder: &str) {
    let (own, _) = daemon_platforms();
    let mut registry = Registry::start_tls();
    registry.trust_in_docker();
    let layout = tempdir("layout-push");
    let repository = repo(builder);
    let image = format!("{}/{repository}:1.0.0", registry.host);
    let ca = registry.ca_path.clone().unwrap();
    let pushed = run(
        &push_args(&image, layout.to_str().unwrap(), builder, &["--registry-ca-cert", ca.to_str().unwrap()]),
        &CREDS,
        None,
    );
    pushed.assert_ok();
    pushed.assert_no_secret();
    let v = pushed.json();
    let digest = v["digest"].as_str().unwrap().to_owned();
    assert_eq!(v["reference"], format!("{image}@{digest}"));
    // The digest printed is the one the registry serves for the tag.
    assert_eq!(registry.manifest_digest(&repository, "1.0.0"), digest);
    // What a client asking the registry API sees: the daemonless builder's
    // tag is an index of both platforms, the docker builder's one manifest.
    let served = registry.manifest(&repository, "1.0.0");
    let platforms: Vec<String> = served["manifests"]
        .as_array()
        .map(|m| m.iter().map(|e| format!("{}/{}", e["platform"]["os"], e["platform"]["architecture"])).collect())
        .unwrap_or_default();
    // The labels of the config are the annotations of the manifest (and of
    // the index), from either builder.
    let manifest = match served["manifests"][0]["digest"].as_str() {
        Some(first) => registry.manifest(&repository, first),
        None => served.clone(),
    };
    let config: Value =
        serde_json::from_slice(&registry.blob(&repository, manifest["config"]["digest"].as_str().unwrap())).unwrap();
    let labels = &config["config"]["Labels"];
    assert_eq!(labels["org.opencontainers.image.licenses"], "MIT OR Apache-2.0", "{config}");
    assert_eq!(labels["org.opencontainers.image.source"], "https://github.com/job-test/job-test");
    assert!(labels["org.opencontainers.image.revision"].as_str().is_some_and(|r| r.len() >= 40), "{labels}");
    assert_eq!(&manifest["annotations"], labels, "{manifest}");
    assert_eq!(&served["annotations"], labels, "{served}");
    // The SBOM went with it, and refers to it.
    assert_eq!(v["sbom"]["subject"], digest.as_str(), "{v}");
    match builder {
        "oci" => {
            assert_eq!(served["mediaType"], "application/vnd.oci.image.index.v1+json", "{served}");
            assert_eq!(platforms, [r#""linux"/"amd64""#, r#""linux"/"arm64""#]);
            assert_eq!(v["platforms"], serde_json::json!(["linux/amd64", "linux/arm64"]));
        }
        _ => {
            assert_eq!(served["mediaType"], "application/vnd.oci.image.manifest.v1+json", "{served}");
            assert_eq!(v["platforms"], serde_json::json!([own]));
            assert!(pushed.stderr.contains(&format!("the docker builder makes {own} only")), "{}", pushed.stderr);
        }
    }

    // Pull back with the daemon (logged in with a throwaway Docker config) and run.
    let config = tempdir("docker-login");
    let config = config.to_str().unwrap();
    let login = std::process::Command::new("docker")
        .args(["--config", config, "login", &registry.host, "--username", registry::USER, "--password-stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            std::io::Write::write_all(c.stdin.as_mut().unwrap(), registry::PASSWORD.as_bytes())?;
            drop(c.stdin.take());
            c.wait_with_output()
        })
        .unwrap();
    assert!(login.status.success(), "docker login: {}", String::from_utf8_lossy(&login.stderr));
    let pinned = format!("{}/{repository}@{digest}", registry.host);
    let pull = std::process::Command::new("docker").args(["--config", config, "pull", &pinned]).output().unwrap();
    assert!(pull.status.success(), "docker pull: {}\n{}", String::from_utf8_lossy(&pull.stderr), registry.log());
    // From a two-platform index the daemon takes its own platform's image.
    let arch = docker(&["image", "inspect", "--format", "{{.Os}}/{{.Architecture}}", &pinned]);
    assert_eq!(String::from_utf8_lossy(&arch.stdout).trim(), own);
    for (p, code) in [("0", 0), ("1", 1)] {
        let out = docker(&["run", "--rm", &pinned, "--fail-probability", p]);
        assert_eq!(out.status.code(), Some(code), "{}", String::from_utf8_lossy(&out.stdout));
    }
    // The pulled image, and the tag the Docker builder gave the image it built.
    let _ = docker(&["rmi", "--force", &pinned]);
    let _ = docker(&["rmi", "--force", &image]);
}

#[test]
fn push_from_the_daemonless_builder_then_pull_and_run() {
    push_pull_run("oci");
}

#[test]
fn push_from_the_docker_builder_then_pull_and_run() {
    push_pull_run("docker");
}

#[test]
fn the_arm64_worker_pulled_back_from_the_registry_is_static_aarch64_and_runs_under_qemu() {
    let (registry, repository, pushed) = push_oci_to_tls("arm64", &[]);
    pushed.assert_ok();
    // Index -> the arm64 manifest -> its config and its layer, all from the registry.
    let index = registry.manifest(&repository, "1");
    let entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["platform"]["architecture"] == "arm64" && e["platform"]["os"] == "linux")
        .unwrap_or_else(|| panic!("no linux/arm64 in {index}"));
    let manifest = registry.manifest(&repository, entry["digest"].as_str().unwrap());
    let config: Value =
        serde_json::from_slice(&registry.blob(&repository, manifest["config"]["digest"].as_str().unwrap())).unwrap();
    assert_eq!((config["architecture"].as_str(), config["os"].as_str()), (Some("arm64"), Some("linux")));
    let (path, mode, .., binary) =
        only_file(&registry.blob(&repository, manifest["layers"][0]["digest"].as_str().unwrap()));
    assert_eq!((path.as_str(), mode), ("job-worker", 0o555));
    let dir = tempdir("arm64-worker");
    let worker = dir.join("job-worker");
    std::fs::write(&worker, &binary).unwrap();
    std::fs::set_permissions(&worker, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    // The same check the build makes, and file(1)'s independent verdict.
    xtask::build::check_machine(&binary, xtask::choices::Target::Aarch64Musl).unwrap();
    assert_eq!(xtask::build::linkage(&binary).unwrap(), xtask::build::Linkage::Static);
    let file = std::process::Command::new("file").arg(&worker).output().expect("the file(1) command");
    let file = String::from_utf8_lossy(&file.stdout);
    assert!(file.contains("ARM aarch64") && file.contains("statically linked"), "{file}");

    for (p, code) in [("0", 0), ("1", 1)] {
        let out = std::process::Command::new(qemu_aarch64())
            .arg(&worker)
            .env("FAIL_PROBABILITY", p)
            .env("TERMINATION_LOG", dir.join("termination-log"))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(code),
            "FAIL_PROBABILITY={p}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains(&format!("fail_probability={p} ")), "{stdout}");
    }
}

#[test]
fn a_second_push_uploads_no_layer_bytes() {
    let registry = Registry::start_tls();
    let layout = tempdir("layout-twice");
    let image = format!("{}/{}:1.0.0", registry.host, repo("twice"));
    let ca = registry.ca_path.clone().unwrap();
    let args = push_args(&image, layout.to_str().unwrap(), "oci", &["--registry-ca-cert", ca.to_str().unwrap()]);
    let first = run(&args, &CREDS, None);
    first.assert_ok();
    assert!(first.json()["bytes_uploaded"].as_u64().unwrap() > 100_000);
    let manifest_puts = || {
        let log = registry.log();
        log.lines()
            .filter(|l| l.contains("response completed") && l.contains("method=PUT") && l.contains("/manifests/"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    // Two platforms: each one's manifest by digest, then the index with the
    // tag; then the SBOM's manifest by digest and the referrers tag that
    // lists it (this registry has no referrers API).
    let puts = manifest_puts();
    assert_eq!(puts.len(), 5, "{}", registry.log());
    let digest = first.json()["digest"].as_str().unwrap().to_owned();
    let referrers_tag = format!("/manifests/sha256-{}", &digest["sha256:".len()..]);
    assert!(
        puts[0].contains("/manifests/sha256:")
            && puts[1].contains("/manifests/sha256:")
            && puts[2].contains("/manifests/1.0.0")
            && puts[3].contains("/manifests/sha256:")
            && puts[4].contains(&referrers_tag),
        "the tag is not written after the image's manifests, or the SBOM before it: {puts:#?}"
    );
    let sbom = first.json()["sbom"].clone();
    assert_eq!((sbom["written"].as_bool(), sbom["subject"].as_str()), (Some(true), Some(digest.as_str())), "{sbom}");

    let second = run(&args, &CREDS, None);
    second.assert_ok();
    let v = second.json();
    // Four blobs of the image, the SBOM and its empty config: all there.
    assert_eq!(
        (v["bytes_uploaded"].as_u64(), v["blobs_uploaded"].as_u64(), v["blobs_skipped"].as_u64()),
        (Some(0), Some(0), Some(6))
    );
    assert_eq!(v["digest"], first.json()["digest"]);
    // The tag named this digest already, and the SBOM is listed: nothing is
    // written, and it says so.
    assert_eq!(v["unchanged"], true);
    assert_eq!((v["sbom"]["written"].as_bool(), &v["sbom"]["digest"]), (Some(false), &sbom["digest"]));
    assert_eq!(manifest_puts().len(), 5, "something was written again: {}", registry.log());
    assert!(
        second.stderr.contains("already names sha256:") && second.stderr.contains("nothing to upload or write"),
        "{}",
        second.stderr
    );
    assert!(second.stderr.contains("SBOM sha256:") && second.stderr.contains("already in the registry"));

    // A new tag for the same image: the blobs are there, only the tag is written.
    let third_image = format!("{}/{}:1.0.1", registry.host, repo("twice"));
    let third = run(
        &push_args(&third_image, layout.to_str().unwrap(), "oci", &["--registry-ca-cert", ca.to_str().unwrap()]),
        &CREDS,
        None,
    );
    third.assert_ok();
    assert_eq!((third.json()["unchanged"].as_bool(), third.json()["bytes_uploaded"].as_u64()), (Some(false), Some(0)));
    assert!(third.stderr.contains("linux/arm64 layer sha256:"), "{}", third.stderr);
    assert!(third.stderr.contains("linux/arm64 manifest: already in the registry, not uploaded"), "{}", third.stderr);
    assert_eq!(third.json()["sbom"]["written"], false);
    assert_eq!(manifest_puts().len(), 6, "only the new tag is written: {}", registry.log());
}

/// The referrers of `digest` in `repository`, as a client finds them: the
/// referrers API where the registry answers it, else the referrers tag
/// `sha256-<hex>` (distribution spec 1.1). Also what the API answered.
fn referrers(registry: &Registry, repository: &str, digest: &str) -> (Value, String) {
    let ca = registry.ca_path.as_ref().expect("a TLS registry");
    let out = std::process::Command::new("curl")
        .args(["--silent", "--show-error", "--write-out", "\n%{http_code}", "--cacert"])
        .arg(ca)
        .args(["--user", &format!("{}:{}", registry::USER, registry::PASSWORD)])
        .arg(format!("https://{}/v2/{repository}/referrers/{digest}", registry.host))
        .output()
        .expect("running curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or((&text, ""));
    let answer = format!("{code} {}", body.trim());
    match code {
        "200" => (serde_json::from_str(body).unwrap(), answer),
        "404" => (registry.manifest(repository, &digest.replacen(':', "-", 1)), answer),
        other => panic!("the registry answered {other} to the referrers API: {body}"),
    }
}

/// The crates (name, version) `cargo tree` says the worker links for these
/// targets: normal dependencies, no proc-macro (none is linked).
fn cargo_tree(targets: &[&str]) -> std::collections::BTreeSet<(String, String)> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.current_dir(tests::project_root()).args([
        "tree",
        "--locked",
        "-p",
        "job-worker",
        "-e",
        "normal,no-proc-macro",
        "--prefix",
        "none",
    ]);
    for target in targets {
        cmd.args(["--target", target]);
    }
    let out = cmd.output().expect("running cargo tree");
    assert!(out.status.success(), "cargo tree: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let (name, version) = (words.next()?, words.next()?.strip_prefix('v')?);
            Some((name.to_owned(), version.to_owned()))
        })
        .collect()
}

#[test]
fn the_sbom_pulled_back_from_the_registry_names_every_crate_cargo_tree_says_the_worker_links() {
    let (registry, repository, pushed) = push_oci_to_tls("sbom", &[]);
    pushed.assert_ok();
    let v = pushed.json();
    let digest = v["digest"].as_str().unwrap();

    // From the image's digest to its SBOM, as any client goes: the
    // referrers list (Debian's docker-registry 2.8 has no referrers API,
    // so the tag sha256-<hex> holds it), the artifact, its document.
    let (list, api) = referrers(&registry, &repository, digest);
    eprintln!("the registry's referrers API answered: {api}");
    let sboms: Vec<&Value> = list["manifests"]
        .as_array()
        .unwrap_or_else(|| panic!("not a referrers list: {list}"))
        .iter()
        .filter(|m| m["artifactType"] == "application/spdx+json")
        .collect();
    assert_eq!(sboms.len(), 1, "{list}");
    let artifact_digest = sboms[0]["digest"].as_str().unwrap();
    let expected_listing = if api.starts_with("200") { "referrers-api" } else { "fallback-tag" };
    assert_eq!(v["sbom"]["listed_by"], expected_listing, "{v}");
    assert_eq!(v["sbom"]["reference"], format!("{}/{repository}@{artifact_digest}", registry.host));
    let artifact = registry.manifest(&repository, artifact_digest);
    assert_eq!(artifact["artifactType"], "application/spdx+json", "{artifact}");
    assert_eq!(artifact["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(artifact["subject"]["digest"], digest, "the SBOM refers to another image");
    assert_eq!(artifact["subject"]["mediaType"], "application/vnd.oci.image.index.v1+json");
    assert_eq!(artifact["config"]["mediaType"], "application/vnd.oci.empty.v1+json");
    assert_eq!(registry.blob(&repository, artifact["config"]["digest"].as_str().unwrap()), b"{}");
    // The referrers list repeats the artifact's annotations (its time).
    assert_eq!(sboms[0]["annotations"], artifact["annotations"]);
    let layer = &artifact["layers"][0];
    assert_eq!(layer["mediaType"], "application/spdx+json");
    let document: Value =
        serde_json::from_slice(&registry.blob(&repository, layer["digest"].as_str().unwrap())).unwrap();
    eprintln!("the SBOM: {} bytes, {} packages", layer["size"], document["packages"].as_array().map_or(0, Vec::len));

    assert_eq!(document["spdxVersion"], "SPDX-2.3");
    assert_eq!(document["dataLicense"], "CC0-1.0");
    assert!(document["documentNamespace"].as_str().unwrap().ends_with(&digest.replacen(':', "-", 1)), "{document}");
    let packages = document["packages"].as_array().unwrap();
    let named: std::collections::BTreeSet<(String, String)> = packages
        .iter()
        .map(|p| (p["name"].as_str().unwrap().to_owned(), p["versionInfo"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(named.len(), packages.len(), "a crate is named twice: {document}");
    let linked = cargo_tree(&["x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl"]);
    assert_eq!(named, linked, "the SBOM's crates differ from cargo tree's");
    assert_eq!(linked, cargo_tree(&["x86_64-unknown-linux-musl"]), "the two platforms link different crates");
    assert_eq!(v["sbom"]["packages"].as_u64(), Some(packages.len() as u64));
    for p in packages {
        let licence = p["licenseDeclared"].as_str().unwrap_or_default();
        assert!(!licence.is_empty() && licence != "NOASSERTION", "{} has no licence: {p}", p["name"]);
        if p["name"] != "job-worker" {
            let purl = format!("pkg:cargo/{}@{}", p["name"].as_str().unwrap(), p["versionInfo"].as_str().unwrap());
            assert_eq!(p["externalRefs"][0]["referenceLocator"], purl.as_str(), "{p}");
            assert_eq!(p["checksums"][0]["algorithm"], "SHA256", "{p}");
        }
    }
    // The worker DEPENDS_ON each of its own dependencies.
    let describes: Vec<&Value> =
        document["relationships"].as_array().unwrap().iter().filter(|r| r["relationshipType"] == "DESCRIBES").collect();
    assert_eq!(describes.len(), 1);
    assert_eq!(describes[0]["relatedSpdxElement"], "SPDXRef-Package-job-worker-0.1.0");

    // Reproducible like the image: built again elsewhere, the same SBOM.
    let layout = tempdir("l-sbom-again");
    let again =
        run(&["--output", "json", "image", "--builder", "oci", "--layout", layout.to_str().unwrap()], &[], None);
    again.assert_ok();
    assert_eq!(again.json()["digest"], digest);
    assert_eq!(again.json()["sbom"]["digest"], artifact_digest);
}

/// A push that stopped after the tag (the referrers tag refused) says the
/// image is there without its SBOM; the next push attaches it and
/// uploads nothing else.
#[test]
fn a_push_that_stopped_after_the_tag_attaches_the_sbom_the_next_time() {
    let registry = Registry::start_plain();
    let repository = repo("sbom-late");
    let proxy = FaultProxy::start(
        &registry.host,
        Fault::Unavailable { pattern: "PUT /v2/jerry-learn/job-test-sbom-late/manifests/sha256-", times: u32::MAX },
    );
    let layout = tempdir("l-sbom-late");
    let image = format!("{}/{repository}:1", proxy.host);
    let r = run(&push_args(&image, layout.to_str().unwrap(), "oci", &["--attempts", "2"]), &[], None);
    assert_eq!(r.code, Some(4), "{}", r.stderr);
    assert!(r.stderr.contains("writing the referrers tag sha256-"), "{}", r.stderr);
    assert!(r.stderr.contains("The image is pushed and tagged, without its SBOM: push again to attach it"));
    assert!(!r.stderr.contains("Nothing was tagged"), "{}", r.stderr);
    assert_eq!(registry.tags(&repository), Some(vec!["1".to_owned()]));

    let image = format!("{}/{repository}:1", registry.host);
    let again = run(&push_args(&image, layout.to_str().unwrap(), "oci", &[]), &[], None);
    again.assert_ok();
    let v = again.json();
    assert_eq!((v["unchanged"].as_bool(), v["bytes_uploaded"].as_u64()), (Some(true), Some(0)), "{v}");
    assert_eq!((v["sbom"]["written"].as_bool(), v["sbom"]["listed_by"].as_str()), (Some(true), Some("fallback-tag")));
    let mut tags = registry.tags(&repository).unwrap();
    tags.sort();
    let digest = v["digest"].as_str().unwrap();
    assert_eq!(tags, ["1".to_owned(), digest.replacen(':', "-", 1)]);
}

#[test]
fn a_wrong_password_is_a_401_that_names_its_source_and_tags_nothing() {
    let registry = Registry::start_tls();
    let layout = tempdir("layout-401");
    let repository = repo("wrong");
    let image = format!("{}/{repository}:1.0.0", registry.host);
    let ca = registry.ca_path.clone().unwrap();
    let wrong = "Wr0ng-pa55-7e2b4d";
    let r = run(
        &push_args(&image, layout.to_str().unwrap(), "oci", &["--registry-ca-cert", ca.to_str().unwrap()]),
        &[("REGISTRY_USERNAME", registry::USER), ("REGISTRY_PASSWORD", wrong)],
        None,
    );
    assert_eq!(r.code, Some(4), "{}", r.stderr);
    assert!(r.stderr.contains("401 Unauthorized"), "{}", r.stderr);
    assert!(r.stderr.contains("refused the credentials from REGISTRY_USERNAME and REGISTRY_PASSWORD"), "{}", r.stderr);
    assert!(r.stderr.contains("docker login"), "{}", r.stderr);
    assert!(r.stderr.contains("Nothing was tagged"), "{}", r.stderr);
    assert!(!r.stdout.contains(wrong) && !r.stderr.contains(wrong), "the password was printed");
    assert_eq!(registry.tags(&repository), None);

    // The same through --password-stdin: the source named is the flags.
    let r = run(
        &push_args(
            &image,
            layout.to_str().unwrap(),
            "oci",
            &["--registry-ca-cert", ca.to_str().unwrap(), "--username", "pusher", "--password-stdin"],
        ),
        &[],
        Some(&format!("{wrong}\n")),
    );
    assert_eq!(r.code, Some(4), "{}", r.stderr);
    assert!(r.stderr.contains("refused the credentials from --username and --password-stdin"), "{}", r.stderr);
    assert!(!r.stderr.contains(wrong));
}

#[test]
fn password_stdin_and_docker_config_credentials_work() {
    let registry = Registry::start_tls();
    let ca = registry.ca_path.clone().unwrap();
    let ca = ca.to_str().unwrap();
    let image = format!("{}/{}:stdin", registry.host, repo("stdin"));
    let r = run(
        &push_args(
            &image,
            tempdir("l-stdin").to_str().unwrap(),
            "oci",
            &["--registry-ca-cert", ca, "--username", registry::USER, "--password-stdin"],
        ),
        &[],
        Some(&format!("{}\n", registry::PASSWORD)),
    );
    r.assert_ok();
    r.assert_no_secret();

    // A Docker config with an auths entry, as `docker login` writes it.
    let config_dir = tempdir("docker-config-auths");
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", registry::USER, registry::PASSWORD));
    std::fs::write(
        config_dir.join("config.json"),
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, registry.host),
    )
    .unwrap();
    let image = format!("{}/{}:config", registry.host, repo("config"));
    let out = xtask_with(
        &push_args(&image, tempdir("l-config").to_str().unwrap(), "oci", &["--registry-ca-cert", ca]),
        &[("DOCKER_CONFIG", config_dir.to_str().unwrap())],
        None,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("as the user from the auths entry in"));

    // A credential helper, through the docker-credential-<name> protocol.
    let bin = tempdir("cred-helper");
    let helper = bin.join("docker-credential-jobtest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread host\n[ \"$1\" = get ] && printf '{{\"Username\":\"%s\",\"Secret\":\"%s\"}}' {} {}\n",
            registry::USER,
            registry::PASSWORD
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let helper_config = tempdir("docker-config-helper");
    std::fs::write(
        helper_config.join("config.json"),
        format!(r#"{{"credHelpers":{{"{}":"jobtest"}}}}"#, registry.host),
    )
    .unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let image = format!("{}/{}:helper", registry.host, repo("helper"));
    let out = xtask_with(
        &push_args(&image, tempdir("l-helper").to_str().unwrap(), "oci", &["--registry-ca-cert", ca]),
        &[("DOCKER_CONFIG", helper_config.to_str().unwrap()), ("PATH", &path)],
        None,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("docker-credential-jobtest"));
    assert!(!String::from_utf8_lossy(&out.stderr).contains(registry::PASSWORD));
}

#[test]
fn an_untrusted_certificate_says_how_to_trust_it() {
    let registry = Registry::start_tls();
    let image = format!("{}/{}:1", registry.host, repo("untrusted"));
    let r = run(&push_args(&image, tempdir("l-tls").to_str().unwrap(), "oci", &[]), &CREDS, None);
    assert_eq!(r.code, Some(4), "{}", r.stderr);
    assert!(r.stderr.contains("TLS failed"), "{}", r.stderr);
    assert!(r.stderr.contains("--registry-ca-cert FILE"), "{}", r.stderr);
    r.assert_no_secret();
}

#[test]
fn chunked_uploads_work_too() {
    let (registry, repository, r) = push_oci_to_tls("chunked", &["--upload-mode", "chunked"]);
    r.assert_ok();
    assert_eq!(registry.manifest_digest(&repository, "1"), r.json()["digest"].as_str().unwrap());
}

/// A TLS registry of the test's own, and a push of `NAME:1` to it with the
/// daemonless builder and the right credentials: (registry, repository, run).
fn push_oci_to_tls(name: &str, extra: &[&str]) -> (Registry, String, Run) {
    let registry = Registry::start_tls();
    let repository = repo(name);
    let image = format!("{}/{repository}:1", registry.host);
    let ca = registry.ca_path.clone().unwrap();
    let layout = tempdir(&format!("l-{name}"));
    let mut flags = vec!["--registry-ca-cert", ca.to_str().unwrap()];
    flags.extend_from_slice(extra);
    let r = run(&push_args(&image, layout.to_str().unwrap(), "oci", &flags), &CREDS, None);
    (registry, repository, r)
}

#[test]
fn a_connection_reset_during_a_blob_upload_is_retried() {
    let registry = Registry::start_plain();
    // The monolithic upload's PUT carries the blob: reset it twice.
    let proxy = FaultProxy::start(&registry.host, Fault::Reset { pattern: "PUT /v2/", times: 2 });
    let repository = repo("reset");
    let image = format!("{}/{repository}:1", proxy.host);
    let r = run(&push_args(&image, tempdir("l-reset").to_str().unwrap(), "oci", &[]), &[], None);
    r.assert_ok();
    assert_eq!(proxy.injected(), 2, "the faults were not injected");
    assert!(r.stderr.contains("trying again"), "{}", r.stderr);
    assert_eq!(registry.manifest_digest(&repository, "1"), r.json()["digest"].as_str().unwrap());
}

#[test]
fn a_registry_answering_503_for_a_while_is_waited_out() {
    let registry = Registry::start_plain();
    let proxy = FaultProxy::start(&registry.host, Fault::Unavailable { pattern: "POST /v2/", times: 3 });
    let repository = repo("busy");
    let image = format!("{}/{repository}:1", proxy.host);
    let r = run(&push_args(&image, tempdir("l-503").to_str().unwrap(), "oci", &[]), &[], None);
    r.assert_ok();
    assert_eq!(proxy.injected(), 3);
    assert!(r.stderr.contains("the registry answered 503"), "{}", r.stderr);
    // The tag, and the referrers tag that lists the image's SBOM.
    let mut tags = registry.tags(&repository).unwrap_or_default();
    tags.sort();
    assert_eq!(tags, ["1".to_owned(), r.json()["digest"].as_str().unwrap().replacen(':', "-", 1)]);
}

#[test]
fn a_registry_that_keeps_failing_leaves_no_tag() {
    let registry = Registry::start_plain();
    // Every upload of the manifest (which writes the tag) fails; the blobs go up.
    let proxy = FaultProxy::start(
        &registry.host,
        Fault::Unavailable { pattern: "PUT /v2/jerry-learn/job-test-down/manifests/", times: u32::MAX },
    );
    let repository = repo("down");
    let image = format!("{}/{repository}:1", proxy.host);
    let r = run(&push_args(&image, tempdir("l-down").to_str().unwrap(), "oci", &["--attempts", "3"]), &[], None);
    assert_eq!(r.code, Some(4), "{}", r.stderr);
    // The first manifest of the two-platform image is the first to fail.
    assert!(r.stderr.contains("uploading the linux/amd64 manifest failed: the registry answered 503"), "{}", r.stderr);
    assert!(r.stderr.contains("Nothing was tagged"), "{}", r.stderr);
    assert_eq!(proxy.injected(), 3, "three attempts at the manifest");
    assert_eq!(registry.tags(&repository), None);
}

/// The index (the tag) goes up last: when only the tag's PUT fails, both
/// platforms' manifests are in the registry by digest, and there is no tag.
#[test]
fn a_registry_that_refuses_only_the_tag_has_both_manifests_by_digest_and_no_tag() {
    let registry = Registry::start_plain();
    // Only the PUT of the tag itself (`manifests/1`, not `manifests/sha256:...`).
    let proxy = FaultProxy::start(
        &registry.host,
        Fault::Unavailable { pattern: "PUT /v2/jerry-learn/job-test-tag-last/manifests/1 ", times: u32::MAX },
    );
    let repository = repo("tag-last");
    let image = format!("{}/{repository}:1", proxy.host);
    let layout = tempdir("l-tag-last");
    let r = run(&push_args(&image, layout.to_str().unwrap(), "oci", &["--attempts", "3"]), &[], None);
    assert_eq!(r.code, Some(4), "{}", r.stderr);
    assert!(r.stderr.contains("writing the index and the tag 1 failed: the registry answered 503"), "{}", r.stderr);
    assert!(r.stderr.contains("Nothing was tagged"), "{}", r.stderr);
    assert_eq!(proxy.injected(), 3, "three attempts at the tag, and only at the tag");
    // Each platform's manifest, as the layout has it, is served by digest.
    let layout_index: Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let index: Value =
        serde_json::from_slice(&blob_of(&layout, layout_index["manifests"][0]["digest"].as_str().unwrap())).unwrap();
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{index}");
    for entry in entries {
        let digest = entry["digest"].as_str().unwrap();
        let served = registry.manifest(&repository, digest);
        assert_eq!(served, serde_json::from_slice::<Value>(&blob_of(&layout, digest)).unwrap());
        assert_eq!(registry.manifest_digest(&repository, digest), digest);
    }
    assert_eq!(registry.tags(&repository).unwrap_or_default(), Vec::<String>::new(), "a tag was written");
}

#[test]
fn bad_references_are_refused_before_anything_is_built() {
    let r = run(&["push", "--image", "crpi-xxxx.cn-shenzhen.personal.cr.aliyuncs.com/a/b/job-test:1"], &[], None);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("ACR personal edition takes exactly NAMESPACE/REPOSITORY"), "{}", r.stderr);
    let r = run(&["push", "--image", "job-test:1.0.0"], &[], None);
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("names no registry"), "{}", r.stderr);
    let r = run(&["image", "--image", "Job-Test"], &[], None);
    assert_eq!(r.code, Some(2));
    // Parsed where the flags are: clap names the flag and the value, the
    // reference grammar says why and what would do.
    assert!(r.stderr.contains("invalid value 'Job-Test' for '--image <REF>': not an image reference"), "{}", r.stderr);
    assert!(r.stderr.contains("e.g. registry.example.com/team/job-test:1.0.0"), "{}", r.stderr);
    assert!(!r.stderr.contains("Compiling"), "nothing is built for a bad reference");
}

#[test]
fn image_text_output() {
    let out = xtask(&["image", "--builder", "oci", "--layout", tempdir("l-text").to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    // The pipeline's one default image, whichever command builds it.
    let default = format!("127.0.0.1:5000/job-test:{}", env!("CARGO_PKG_VERSION"));
    assert!(text.starts_with(&format!("image {default} (built by oci)\n  digest           sha256:")), "{text}");
    assert!(text.contains("compressed size"), "{text}");
}

#[test]
fn push_without_a_registry_uses_the_local_default() {
    // The README's main command (docs/release.md): no registry configured,
    // so a local CNCF registry is started and pushed to. Here at the test's
    // own address and under its own target directory: the user's
    // 127.0.0.1:5000 and target/ are never touched.
    let own = tests::OwnDefaults::new();
    let r = run(
        &["--output", "json", "push", "--builder", "oci", "--layout", tempdir("l-local").to_str().unwrap()],
        &own.env(),
        None,
    );
    r.assert_ok();
    let reference = r.json()["reference"].as_str().unwrap().to_owned();
    assert!(
        reference.starts_with(&format!("{}/job-test:{}@sha256:", own.registry, env!("CARGO_PKG_VERSION"))),
        "{reference}"
    );
    assert!(r.stderr.contains(&format!("started a local registry on {}", own.registry)), "{}", r.stderr);
    assert!(own.target.join("registry/pid").exists());
    // A bad address is refused with the variable, the value and the fix.
    let r = run(&["push", "--builder", "oci"], &[("JOB_TEST_LOCAL_REGISTRY", "10.0.0.1:5000")], None);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(
        r.stderr.contains("JOB_TEST_LOCAL_REGISTRY=10.0.0.1:5000: the embedded registry listens on this machine only")
    );
}

#[test]
fn bearer_token_registries_work_and_refuse_a_wrong_password() {
    // The registry sends the client to a token service (as Docker Hub, ACR
    // and Harbor do); the client gets a signed token with its credentials.
    let (registry, tokens) = Registry::start_token();
    let ca = registry.ca_path.clone().unwrap();
    let ca = ca.to_str().unwrap();
    let layout = tempdir("l-token");
    let image = format!("{}/{}:1", registry.host, repo("token"));
    let args = push_args(&image, layout.to_str().unwrap(), "oci", &["--registry-ca-cert", ca]);
    let first = run(&args, &CREDS, None);
    first.assert_ok();
    first.assert_no_secret();
    assert!(tokens.issued() > 0, "no token was asked for: {}", registry.log());
    let second = run(&args, &CREDS, None);
    second.assert_ok();
    assert_eq!(second.json()["bytes_uploaded"], 0);
    assert_eq!(second.json()["digest"], first.json()["digest"]);

    let wrong = "T0ken-wr0ng-9d2f";
    let r = run(&args, &[("REGISTRY_USERNAME", registry::USER), ("REGISTRY_PASSWORD", wrong)], None);
    assert_eq!(r.code, Some(4), "{}", r.stderr);
    assert!(r.stderr.contains("401 Unauthorized"), "{}", r.stderr);
    assert!(r.stderr.contains("refused the credentials from REGISTRY_USERNAME and REGISTRY_PASSWORD"), "{}", r.stderr);
    assert!(!r.stderr.contains(wrong) && !r.stdout.contains(wrong));
}

/// The referrers API (distribution spec 1.1), which Debian's
/// docker-registry 2.8 lacks, put in front of it: a proxy that answers
/// `GET /v2/<name>/referrers/<digest>` from the registry's own storage
/// (every manifest of the repository whose `subject` is that digest) and
/// forwards everything else, as a registry with the API would behave.
struct ReferrersApi {
    host: String,
    answered: std::sync::Arc<std::sync::atomic::AtomicU32>,
}

impl ReferrersApi {
    fn start(registry: &Registry) -> ReferrersApi {
        use std::io::{Read, Write};
        use std::net::{Shutdown, TcpListener, TcpStream};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let answered = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let (upstream, storage, count) = (registry.host.clone(), registry.dir.join("data"), answered.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let (Ok(mut client), Ok(server)) = (client, TcpStream::connect(&upstream)) else { continue };
                let (storage, count) = (storage.clone(), count.clone());
                std::thread::spawn(move || {
                    let (mut from_server, mut to_client) = (server.try_clone().unwrap(), client.try_clone().unwrap());
                    let back = std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from_server, &mut to_client);
                        let _ = to_client.shutdown(Shutdown::Both);
                    });
                    let mut to_server = server;
                    let mut buf = [0u8; 16 * 1024];
                    // HTTP/1.1 clients do not pipeline: a request starts a read.
                    while let Ok(n @ 1..) = client.read(&mut buf) {
                        let line = String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or_default().to_owned();
                        if let Some(rest) = line.strip_prefix("GET /v2/")
                            && let Some((name, digest)) = rest.split_once("/referrers/")
                        {
                            let digest = digest.split(['?', ' ']).next().unwrap_or_default();
                            let body = serde_json::to_vec(&referrers_in_storage(&storage, name, digest)).unwrap();
                            let head = format!(
                                "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.index.v1+json\r\n\
                                 Content-Length: {}\r\nConnection: close\r\n\r\n",
                                body.len()
                            );
                            let _ = client.write_all(&[head.as_bytes(), &body].concat());
                            count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            break;
                        }
                        if to_server.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = to_server.shutdown(Shutdown::Both);
                    let _ = client.shutdown(Shutdown::Both);
                    let _ = back.join();
                });
            }
        });
        ReferrersApi { host, answered }
    }
}

/// The referrers index of `digest` in the repository `name`, read from a
/// CNCF registry's filesystem storage.
fn referrers_in_storage(storage: &Path, name: &str, digest: &str) -> Value {
    let v2 = storage.join("docker/registry/v2");
    let revisions = v2.join("repositories").join(name).join("_manifests/revisions/sha256");
    let mut manifests = Vec::new();
    for entry in std::fs::read_dir(revisions).into_iter().flatten() {
        let hex = entry.unwrap().file_name().to_string_lossy().into_owned();
        let bytes = std::fs::read(v2.join("blobs/sha256").join(&hex[..2]).join(&hex).join("data")).unwrap();
        let manifest: Value = serde_json::from_slice(&bytes).unwrap();
        if manifest["subject"]["digest"] == digest {
            let artifact_type = manifest.get("artifactType").unwrap_or(&manifest["config"]["mediaType"]);
            manifests.push(serde_json::json!({
                "mediaType": manifest["mediaType"], "digest": format!("sha256:{hex}"), "size": bytes.len(),
                "artifactType": artifact_type, "annotations": manifest["annotations"],
            }));
        }
    }
    serde_json::json!({ "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests })
}

/// On a registry with the referrers API the SBOM is found there as soon as
/// it is pushed: no referrers tag is written, and a second push finds it
/// listed and writes nothing.
#[test]
fn a_registry_with_the_referrers_api_lists_the_sbom_without_a_referrers_tag() {
    let registry = Registry::start_plain();
    let api = ReferrersApi::start(&registry);
    let repository = repo("referrers-api");
    let image = format!("{}/{repository}:1", api.host);
    let layout = tempdir("l-referrers-api");
    let args = push_args(&image, layout.to_str().unwrap(), "oci", &[]);
    let first = run(&args, &[], None);
    first.assert_ok();
    let v = first.json();
    assert_eq!(
        (v["sbom"]["listed_by"].as_str(), v["sbom"]["written"].as_bool()),
        (Some("referrers-api"), Some(true)),
        "{v}"
    );
    assert!(v["sbom"].get("referrers_tag").is_none(), "{v}");
    assert!(first.stderr.contains("listed by the referrers API"), "{}", first.stderr);
    assert_eq!(registry.tags(&repository), Some(vec!["1".to_owned()]), "a referrers tag was written");
    let digest = v["digest"].as_str().unwrap();
    let listed = referrers_in_storage(&registry.dir.join("data"), &repository, digest);
    assert_eq!(listed["manifests"][0]["digest"], v["sbom"]["digest"], "{listed}");

    let second = run(&args, &[], None);
    second.assert_ok();
    let v = second.json();
    assert_eq!((v["unchanged"].as_bool(), v["bytes_uploaded"].as_u64()), (Some(true), Some(0)), "{v}");
    assert_eq!((v["sbom"]["listed_by"].as_str(), v["sbom"]["written"].as_bool()), (Some("referrers-api"), Some(false)));
    assert!(api.answered.load(std::sync::atomic::Ordering::Relaxed) >= 3, "the API was not asked");
}

/// `--sbom=false`, for a registry that refuses OCI 1.1 artifacts: the
/// layout lists the image alone and the push writes only its tag.
#[test]
fn without_an_sbom_only_the_image_is_built_and_pushed() {
    let registry = Registry::start_plain();
    let repository = repo("no-sbom");
    let image = format!("{}/{repository}:1", registry.host);
    let layout = tempdir("l-no-sbom");
    let r = run(&push_args(&image, layout.to_str().unwrap(), "oci", &["--sbom=false"]), &[], None);
    r.assert_ok();
    assert!(r.json()["sbom"].is_null(), "{}", r.stdout);
    assert!(!r.stderr.contains("SBOM"), "{}", r.stderr);
    assert_eq!(registry.tags(&repository), Some(vec!["1".to_owned()]));
    let layout_index: Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(layout_index["manifests"].as_array().unwrap().len(), 1, "{layout_index}");
}
