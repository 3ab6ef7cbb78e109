//! A real CNCF registry (Debian's `docker-registry`, the distribution
//! project's binary), started per test on 127.0.0.1 at a free port: either
//! with TLS from a test CA and htpasswd (bcrypt) basic auth, or plain HTTP
//! without auth (behind the fault proxy). Stopped when dropped.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::tempdir;
use crate::tls::TestCa;

pub const USER: &str = "pusher";
/// Distinctive, so that a test can look for it in every output.
pub const PASSWORD: &str = "reg-Pa55w0rd-1f3c9a";

pub struct Registry {
    /// `127.0.0.1:PORT`
    pub host: String,
    pub dir: PathBuf,
    /// The CA that signed the registry's certificate (TLS registries only).
    pub ca_path: Option<PathBuf>,
    child: Child,
    docker_certs: Option<PathBuf>,
}

/// The registry binary, with a clear message when it is missing.
pub fn binary() -> &'static str {
    let bin = "docker-registry";
    if Command::new(bin).arg("--version").output().is_err() {
        panic!(
            "this test needs the CNCF registry binary `{bin}`: install it with `apt-get install docker-registry` \
             (`cargo xtask test` installs it)"
        );
    }
    bin
}

/// A directory with a server certificate from a fresh test CA: the
/// directory, the CA, its certificate's path, and the config's `tls:` lines.
fn tls_setup(name: &str) -> (PathBuf, TestCa, PathBuf, String) {
    let dir = tempdir(name);
    let ca = TestCa::new("registry");
    let cert = ca.server_cert();
    std::fs::write(dir.join("cert.pem"), &cert.cert_pem).unwrap();
    std::fs::write(dir.join("key.pem"), &cert.key_pem).unwrap();
    let ca_path = ca.write(&dir);
    let tls = format!("  tls:\n    certificate: {d}/cert.pem\n    key: {d}/key.pem\n", d = dir.display());
    (dir, ca, ca_path, tls)
}

impl Registry {
    /// TLS from a fresh test CA, and basic auth for USER / PASSWORD.
    pub fn start_tls() -> Registry {
        let (dir, _, ca_path, tls) = tls_setup("registry");
        let hash = bcrypt::hash_with_result(PASSWORD, 5).unwrap().format_for_version(bcrypt::Version::TwoY);
        std::fs::write(dir.join("htpasswd"), format!("{USER}:{hash}\n")).unwrap();
        let auth = format!("auth:\n  htpasswd:\n    realm: job-test-registry\n    path: {}/htpasswd\n", dir.display());
        Registry::start(dir, &format!("{tls}{auth}"), Some(ca_path))
    }

    /// TLS, and bearer-token auth through a token service (the protocol of
    /// Docker Hub, ACR and Harbor): the registry sends clients to the
    /// service, which gives USER / PASSWORD a signed token.
    pub fn start_token() -> (Registry, crate::token_server::TokenServer) {
        use crate::token_server::{ISSUER, SERVICE, TokenServer};
        let (dir, ca, ca_path, tls) = tls_setup("registry-token");
        let tokens = TokenServer::start(&ca, USER, PASSWORD);
        let auth = format!(
            "auth:\n  token:\n    realm: {}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
            tokens.realm,
            ca_path.display()
        );
        (Registry::start(dir, &format!("{tls}{auth}"), Some(ca_path)), tokens)
    }

    /// Plain HTTP, no auth.
    pub fn start_plain() -> Registry {
        Registry::start(tempdir("registry-plain"), "", None)
    }

    fn start(dir: PathBuf, extra: &str, ca_path: Option<PathBuf>) -> Registry {
        // The free port is found by binding and releasing it, so another
        // test may take it first: then the registry exits, and it is
        // started again on another port.
        for _ in 0..5 {
            if let Some(registry) = Registry::try_start(&dir, extra, ca_path.clone()) {
                return registry;
            }
        }
        panic!(
            "the registry did not start in 5 tries; its last log:\n{}",
            std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default()
        );
    }

    fn try_start(dir: &std::path::Path, extra: &str, ca_path: Option<PathBuf>) -> Option<Registry> {
        let bin = binary();
        let port = crate::free_port();
        let host = format!("127.0.0.1:{port}");
        let config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {d}/data\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n  secret: job-test-registry-secret\n{extra}",
            d = dir.display()
        );
        std::fs::write(dir.join("config.yml"), config).unwrap();
        let log = std::fs::File::create(dir.join("registry.log")).unwrap();
        let child = Command::new(bin)
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let mut registry = Registry { host, dir: dir.to_owned(), ca_path, child, docker_certs: None };
        let start = Instant::now();
        while TcpStream::connect(&registry.host).is_err() {
            if registry.child.try_wait().unwrap().is_some() {
                return None;
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "the registry did not start listening on {}; its log:\n{}",
                registry.host,
                registry.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // Something answers: make sure it is this registry, not another
        // test's that took the port (this one would have exited).
        std::thread::sleep(Duration::from_millis(100));
        if registry.child.try_wait().unwrap().is_some() {
            return None;
        }
        Some(registry)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
    }

    /// Makes the machine's Docker daemon trust this registry's CA
    /// (/etc/docker/certs.d/HOST/ca.crt, read on every pull).
    pub fn trust_in_docker(&mut self) {
        let dir = PathBuf::from("/etc/docker/certs.d").join(&self.host);
        std::fs::create_dir_all(&dir).expect("writing /etc/docker/certs.d (the tests run as root)");
        std::fs::copy(self.ca_path.as_ref().expect("a TLS registry"), dir.join("ca.crt")).unwrap();
        self.docker_certs = Some(dir);
    }

    /// GET (or as `args` say) `/v2/PATH` with curl, as the registry's
    /// user over TLS with the test CA, or over plain HTTP.
    fn curl(&self, args: &[&str], path: &str) -> String {
        String::from_utf8_lossy(&self.curl_bytes(args, path)).into_owned()
    }

    fn curl_bytes(&self, args: &[&str], path: &str) -> Vec<u8> {
        let mut cmd = Command::new("curl");
        cmd.args(["--silent", "--show-error"]).args(args);
        let scheme = match &self.ca_path {
            Some(ca) => {
                cmd.arg("--cacert").arg(ca).args(["--user", &format!("{USER}:{PASSWORD}")]);
                "https"
            }
            None => "http",
        };
        cmd.arg(format!("{scheme}://{}/v2/{path}", self.host));
        let out = cmd.output().expect("running curl");
        assert!(out.status.success(), "curl /v2/{path}: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    }

    /// The manifest or index a tag or digest names, as the registry serves
    /// it to a client that accepts OCI manifests and indexes.
    pub fn manifest(&self, repository: &str, reference: &str) -> serde_json::Value {
        let body = self.curl_bytes(
            &[
                "--fail",
                "--header",
                "Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json",
            ],
            &format!("{repository}/manifests/{reference}"),
        );
        serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("{repository}:{reference}: not JSON ({e}): {}", String::from_utf8_lossy(&body)))
    }

    /// A blob's bytes (the registry redirects nowhere: local storage).
    pub fn blob(&self, repository: &str, digest: &str) -> Vec<u8> {
        self.curl_bytes(&["--fail", "--location"], &format!("{repository}/blobs/{digest}"))
    }

    /// The tags of a repository, read with curl (None when the repository
    /// has none: the registry answers 404 NAME_UNKNOWN).
    pub fn tags(&self, repository: &str) -> Option<Vec<String>> {
        let text = self.curl(&["--write-out", "\n%{http_code}"], &format!("{repository}/tags/list"));
        let (body, code) = text.rsplit_once('\n').unwrap_or((&text, ""));
        match code {
            "200" => {
                let v: serde_json::Value = serde_json::from_str(body).unwrap();
                Some(
                    v["tags"]
                        .as_array()
                        .map(|t| t.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
                        .unwrap_or_default(),
                )
            }
            "404" => None,
            other => panic!("the registry answered {other} to the tag list: {body}"),
        }
    }

    /// The digest the registry serves for a tag (Docker-Content-Digest):
    /// a manifest's, or a multi-platform image's index's.
    pub fn manifest_digest(&self, repository: &str, tag: &str) -> String {
        let headers = self.curl(
            &[
                "--head",
                "--header",
                "Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json",
            ],
            &format!("{repository}/manifests/{tag}"),
        );
        headers
            .lines()
            .find_map(|l| {
                l.to_lowercase()
                    .starts_with("docker-content-digest:")
                    .then(|| l.split_once(':').unwrap().1.trim().to_owned())
            })
            .unwrap_or_else(|| panic!("no Docker-Content-Digest for {repository}:{tag}:\n{headers}"))
    }
}

impl Registry {
    /// Keeps the registry for the rest of the test process (shared by its
    /// tests) and stops it, as dropping it would, when the process exits.
    pub fn until_exit(self) -> &'static Registry {
        let registry: &'static Registry = Box::leak(Box::new(self));
        let pid = registry.child.id() as i32;
        let certs = registry.docker_certs.clone();
        crate::at_exit(move || {
            // SAFETY: a plain syscall on the registry this process started.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            if let Some(dir) = certs {
                let _ = std::fs::remove_dir_all(dir);
            }
        });
        registry
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = &self.docker_certs {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
