//! `cargo xtask image` and `cargo xtask push` against real parts: the
//! machine's Docker daemon, a real CNCF registry with TLS from a test CA and
//! htpasswd auth, and a fault proxy in front of a plain-HTTP registry.

use std::path::Path;

use base64::Engine;
use serde_json::Value;
use tests::fault_proxy::{Fault, FaultProxy};
use tests::registry::{self, Registry};
use tests::{docker, tempdir, worker_bin, xtask, xtask_with};

/// A unique repository per test, so that tests sharing nothing can run at once.
fn repo(test: &str) -> String {
    format!("jerry-learn/job-test-{test}")
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
fn the_daemonless_image_is_byte_identical_across_builds() {
    let (a, b) = (tempdir("layout-a"), tempdir("layout-b"));
    let build = |dir: &Path| {
        let r = run(&["--output", "json", "image", "--builder", "oci", "--layout", dir.to_str().unwrap()], &[], None);
        r.assert_ok();
        r.json()
    };
    let (first, second) = (build(&a), build(&b));
    assert_eq!(first["digest"], second["digest"]);
    assert_eq!(files_of(&a), files_of(&b), "the layouts differ byte for byte");
    // Under 400 KiB compressed, and the layer holds exactly the binary.
    assert!(first["compressed_size"].as_u64().unwrap() < 400 * 1024, "{first}");
    let index: Value = serde_json::from_slice(&std::fs::read(a.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"][0]["digest"], first["digest"]);
}

#[test]
fn the_layer_holds_only_the_binary_owned_by_root_with_a_fixed_time() {
    let dir = tempdir("layout-layer");
    run(
        &["image", "--builder", "oci", "--layout", dir.to_str().unwrap()],
        &[("SOURCE_DATE_EPOCH", "1700000000")],
        None,
    )
    .assert_ok();
    let index: Value = serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let blob =
        |digest: &str| std::fs::read(dir.join("blobs/sha256").join(digest.trim_start_matches("sha256:"))).unwrap();
    let manifest: Value = serde_json::from_slice(&blob(index["manifests"][0]["digest"].as_str().unwrap())).unwrap();
    assert_eq!(manifest["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    let layer = blob(manifest["layers"][0]["digest"].as_str().unwrap());
    let mut tar = Vec::new();
    std::io::Read::read_to_end(&mut flate2_decoder(&layer), &mut tar).unwrap();
    let entries = list_tar(&tar);
    assert_eq!(entries.len(), 1, "{entries:?}");
    let (path, mode, uid, gid, mtime, data) = &entries[0];
    assert_eq!((path.as_str(), *mode, *uid, *gid, *mtime), ("job-worker", 0o555, 0, 0, 1_700_000_000));
    assert_eq!(data, &std::fs::read(worker_bin()).unwrap());
    let config: Value = serde_json::from_slice(&blob(manifest["config"]["digest"].as_str().unwrap())).unwrap();
    assert_eq!(config["config"]["User"], "65532:65532");
    assert_eq!(config["config"]["Entrypoint"], serde_json::json!(["/job-worker"]));
    assert_eq!(config["created"], "2023-11-14T22:13:20Z");
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
    run(
        &["image", "--builder", "docker", "--image", &docker_tag, "--layout", tempdir("l2").to_str().unwrap()],
        &[],
        None,
    )
    .assert_ok();
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
            .count()
    };
    assert_eq!(manifest_puts(), 1, "{}", registry.log());
    let second = run(&args, &CREDS, None);
    second.assert_ok();
    let v = second.json();
    assert_eq!(
        (v["bytes_uploaded"].as_u64(), v["blobs_uploaded"].as_u64(), v["blobs_skipped"].as_u64()),
        (Some(0), Some(0), Some(2))
    );
    assert_eq!(v["digest"], first.json()["digest"]);
    // The tag named this digest already: nothing is written, and it says so.
    assert_eq!(v["unchanged"], true);
    assert_eq!(manifest_puts(), 1, "the tag was written again: {}", registry.log());
    assert!(
        second.stderr.contains("already names sha256:") && second.stderr.contains("nothing to upload or write"),
        "{}",
        second.stderr
    );

    // A new tag for the same image: the blobs are there, only the tag is written.
    let third_image = format!("{}/{}:1.0.1", registry.host, repo("twice"));
    let third = run(
        &push_args(&third_image, layout.to_str().unwrap(), "oci", &["--registry-ca-cert", ca.to_str().unwrap()]),
        &CREDS,
        None,
    );
    third.assert_ok();
    assert_eq!(third.json()["unchanged"], false);
    assert!(third.stderr.contains("already in the registry, not uploaded"), "{}", third.stderr);
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
    let registry = Registry::start_tls();
    let repository = repo("chunked");
    let image = format!("{}/{repository}:1", registry.host);
    let ca = registry.ca_path.clone().unwrap();
    let r = run(
        &push_args(
            &image,
            tempdir("l-chunk").to_str().unwrap(),
            "oci",
            &["--registry-ca-cert", ca.to_str().unwrap(), "--upload-mode", "chunked"],
        ),
        &CREDS,
        None,
    );
    r.assert_ok();
    assert_eq!(registry.manifest_digest(&repository, "1"), r.json()["digest"].as_str().unwrap());
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
    assert_eq!(registry.tags(&repository), Some(vec!["1".to_owned()]));
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
    assert!(r.stderr.contains("writing the manifest and the tag 1 failed: the registry answered 503"), "{}", r.stderr);
    assert!(r.stderr.contains("Nothing was tagged"), "{}", r.stderr);
    assert_eq!(proxy.injected(), 3, "three attempts at the tag");
    assert_eq!(registry.tags(&repository), None);
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
    assert!(text.starts_with("image job-test:0.1.0 (built by oci)\n  digest           sha256:"), "{text}");
    assert!(text.contains("compressed size"), "{text}");
}

#[test]
fn push_without_a_registry_uses_the_local_default() {
    // The README's main command: no registry configured, so a local CNCF
    // registry is started and pushed to. Here at the test's own address and
    // under its own target directory: the user's 127.0.0.1:5000 and
    // target/ are never touched.
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
