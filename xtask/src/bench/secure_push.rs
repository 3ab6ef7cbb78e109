//! The fixed cost of a push as a user types it, where users push: a no-op
//! `cargo xtask push --builder oci` (cargo's own check of the build
//! included) against `docker build` + `docker push` of the same Dockerfile
//! and binary, both to one CNCF registry with TLS (a self-signed
//! certificate for 127.0.0.1) and basic auth (htpasswd, bcrypt), each after
//! a first push that is not timed. Beside them the xtask binary alone, so
//! that cargo's share is its own number.
//!
//! Docker trusts the certificate because 127.0.0.0/8 is among its default
//! insecure registries; it logs in with a config folder of the bench's
//! own (`docker --config`), so the user's `~/.docker` is left alone.

use std::fmt;
use std::io::Write as _;
use std::net::TcpListener;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;

use super::docker_context;
use super::stats::{Stats, median_seconds, run_checked};
use crate::report::Reporter;

const USER: &str = "bench";

#[derive(Debug, Serialize)]
pub(super) struct SecurePush {
    pub(super) runs: u32,
    /// `cargo xtask push --builder oci --platform linux/amd64`, no-op.
    #[serde(serialize_with = "median_seconds")]
    pub(super) cargo_xtask_noop: Stats,
    /// The same without `--platform`: both platforms, an index.
    #[serde(serialize_with = "median_seconds")]
    pub(super) cargo_xtask_noop_two_platforms: Stats,
    /// The xtask binary `cargo xtask` runs, started directly.
    #[serde(serialize_with = "median_seconds")]
    pub(super) xtask_binary_noop: Stats,
    /// `docker build` + `docker push`, the layer already there.
    #[serde(serialize_with = "median_seconds")]
    pub(super) docker_build_push: Stats,
    /// The goal: at least 1.
    pub(super) docker_over_cargo_xtask: f64,
    pub(super) docker_over_xtask_binary: f64,
}

impl fmt::Display for SecurePush {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let goal = |ratio: f64| if ratio >= 1.0 { "meets the goal" } else { "misses the goal of 1" };
        write!(
            f,
            "no-op push to a registry with TLS and basic auth, median of {} runs:\n  \
             docker build + docker push                              {:.2} s\n  \
             cargo xtask push --builder oci --platform linux/amd64   {:.2} s  {:.2}x (docker / cargo xtask): {}\n  \
             the same, both platforms (an index)                     {:.2} s\n  \
             the xtask binary alone, linux/amd64                     {:.2} s  {:.2}x (docker / binary); \
             cargo's own check is the rest",
            self.runs,
            self.docker_build_push.median_secs(),
            self.cargo_xtask_noop.median_secs(),
            self.docker_over_cargo_xtask,
            goal(self.docker_over_cargo_xtask),
            self.cargo_xtask_noop_two_platforms.median_secs(),
            self.xtask_binary_noop.median_secs(),
            self.docker_over_xtask_binary,
        )
    }
}

/// A registry with TLS and htpasswd auth in its own folder, stopped and
/// removed when dropped.
struct SecureRegistry {
    dir: PathBuf,
    address: String,
    password: String,
    child: Child,
}

impl SecureRegistry {
    fn start(out: &Reporter) -> Result<SecureRegistry> {
        for tool in [crate::debian::REGISTRY, crate::debian::OPENSSL, crate::debian::HTPASSWD] {
            tool.ensure(true, out)?;
        }
        let dir = std::env::temp_dir().join(format!("job-test-bench-tls-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("data")).with_context(|| format!("creating {}", dir.display()))?;
        let run = |cmd: &mut Command, what: &str| run_checked(cmd, b"").map(drop).with_context(|| what.to_owned());
        // A CA and a server certificate it signs: rustls refuses a
        // self-signed certificate that is its own CA (CaUsedAsEndEntity).
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
        run(
            Command::new("openssl")
                .args(["req", "-x509", "-days", "1", "-subj", "/CN=job-test bench CA"])
                .args(ec)
                .current_dir(&dir)
                .args(["-keyout", "ca-key.pem", "-out", "ca.pem"]),
            "openssl req (the bench's CA)",
        )?;
        run(
            Command::new("openssl").args(["req", "-subj", "/CN=127.0.0.1"]).args(ec).current_dir(&dir).args([
                "-keyout",
                "key.pem",
                "-out",
                "server.csr",
            ]),
            "openssl req (the registry's key)",
        )?;
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )?;
        run(
            Command::new("openssl")
                .args(["x509", "-req", "-days", "1", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem"])
                .args(["-CAcreateserial", "-extfile", "server.ext", "-out", "cert.pem"])
                .current_dir(&dir),
            "openssl x509 (the registry's certificate)",
        )?;
        let password = crate::cluster::truststore::generate_password()?;
        // The password goes in on stdin, never on a command line.
        let (_, hash) = run_checked(Command::new("htpasswd").args(["-niB", USER]), password.as_bytes())
            .context("htpasswd (the registry's users)")?;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dir.join("htpasswd"))
            .and_then(|mut f| f.write_all(&hash))
            .context("writing the registry's htpasswd")?;
        let address = {
            let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
            listener.local_addr()?.to_string()
        };
        let d = dir.display();
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {d}/data\n\
             http:\n  addr: {address}\n  tls:\n    certificate: {d}/cert.pem\n    key: {d}/key.pem\n\
             auth:\n  htpasswd:\n    realm: job-test-bench\n    path: {d}/htpasswd\n"
        );
        std::fs::write(dir.join("config.yml"), config)?;
        let child = crate::local_registry::serve(&dir)?.spawn().context("starting docker-registry")?;
        let registry = SecureRegistry { dir, address, password, child };
        crate::local_registry::wait_until_listening(
            &registry.address,
            &registry.dir,
            "the bench's registry with TLS and basic auth",
        )?;
        Ok(registry)
    }
}

impl Drop for SecureRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `cmd` with the registry password on stdin; the time it took.
fn timed_with_password(cmd: &mut Command, password: &str) -> Result<Duration> {
    run_checked(cmd, password.as_bytes()).map(|(took, _)| took)
}

/// Times the no-op pushes, interleaved, after one first push of each.
pub(super) fn measure(runs: u32, worker: &Path, out: &Reporter) -> Result<SecurePush> {
    let registry = SecureRegistry::start(out)?;
    let (address, password) = (&registry.address, &registry.password);
    out.status(format!("timing {runs} no-op pushes each to a registry with TLS and basic auth on {address}"));
    let context = docker_context(&format!("job-test-bench-tls-context-{}", std::process::id()), worker)?;
    let docker_config = registry.dir.join("docker-config");
    std::fs::create_dir_all(&docker_config)?;
    let xtask_binary = std::env::current_exe().context("finding the running xtask")?;
    let root = crate::project_root();
    let ca = registry.dir.join("ca.pem");
    let xtask_push = |via_cargo: bool, image: &str, layout: &str, amd64: bool| -> Result<Duration> {
        let mut cmd = if via_cargo {
            // As a user types it: the cargo on PATH, with the environment
            // of a shell, not the one `cargo run` gave the bench.
            let mut c = Command::new("cargo");
            for name in crate::vars_set_by_cargo_run() {
                c.env_remove(name);
            }
            c.arg("xtask");
            c
        } else {
            Command::new(&xtask_binary)
        };
        crate::config::without_settings(&mut cmd);
        cmd.current_dir(&root)
            .args(["push", "--builder", "oci", "--image", image, "--username", USER, "--password-stdin"])
            .arg("--registry-ca-cert")
            .arg(&ca)
            .arg("--layout")
            .arg(context.join(layout));
        if amd64 {
            cmd.args(["--platform", "linux/amd64"]);
        }
        timed_with_password(&mut cmd, password)
    };
    let amd64 = format!("{address}/bench/xtask:1");
    let two = format!("{address}/bench/xtask-two:1");
    let docker_tag = format!("{address}/bench/docker:1");
    let docker = |args: &[&str]| {
        let mut c = Command::new("docker");
        c.arg("--config").arg(&docker_config).args(args);
        c
    };
    timed_with_password(&mut docker(&["login", address, "--username", USER, "--password-stdin"]), password)?;
    let docker_build_push = || -> Result<Duration> {
        let start = Instant::now();
        run_checked(docker(&["build", "--quiet", "--tag", &docker_tag]).arg(&context), b"")?;
        run_checked(&mut docker(&["push", "--quiet", &docker_tag]), b"")?;
        Ok(start.elapsed())
    };
    let measured = (|| -> Result<SecurePush> {
        // The first pushes upload; only the no-op ones after them are timed.
        xtask_push(false, &amd64, "amd64", true)?;
        xtask_push(false, &two, "two", false)?;
        docker_build_push()?;
        let (mut cargo, mut cargo_two, mut binary, mut docker_times) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            docker_times.push(docker_build_push()?);
            cargo.push(xtask_push(true, &amd64, "amd64", true)?);
            cargo_two.push(xtask_push(true, &two, "two", false)?);
            binary.push(xtask_push(false, &amd64, "amd64", true)?);
        }
        let (cargo, cargo_two) = (Stats::of(&mut cargo), Stats::of(&mut cargo_two));
        let (binary, docker) = (Stats::of(&mut binary), Stats::of(&mut docker_times));
        Ok(SecurePush {
            runs,
            docker_over_cargo_xtask: docker.median_over(&cargo),
            docker_over_xtask_binary: docker.median_over(&binary),
            cargo_xtask_noop: cargo,
            cargo_xtask_noop_two_platforms: cargo_two,
            xtask_binary_noop: binary,
            docker_build_push: docker,
        })
    })();
    let _ = Command::new("docker").args(["rmi", "--force", &docker_tag]).output();
    let _ = std::fs::remove_dir_all(&context);
    measured
}

/// A report whose cargo xtask push misses the goal, for the tests.
#[cfg(test)]
pub(super) fn example() -> SecurePush {
    use super::stats::example as stats;
    SecurePush {
        runs: 5,
        cargo_xtask_noop: stats(560_000),
        cargo_xtask_noop_two_platforms: stats(600_000),
        xtask_binary_noop: stats(280_000),
        docker_build_push: stats(190_000),
        docker_over_cargo_xtask: 0.34,
        docker_over_xtask_binary: 0.68,
    }
}
