//! Support for the end-to-end tests: the real built binaries and the real
//! Docker daemon, found or built once per test process.
//!
//! `cargo xtask test` builds the static worker first and passes its path in
//! JOB_WORKER_BIN (and its own path in JOB_TEST_XTASK_BIN). Under a plain
//! `cargo test` the support builds them itself through `cargo xtask build`,
//! so the binaries under test are always the ones the pipeline ships.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

pub mod apiserver;
pub mod fault_proxy;
pub mod registry;
pub mod tls;
pub mod token_server;
pub mod worker;

/// The workspace root.
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The `cargo xtask` binary.
pub fn xtask_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(path) = std::env::var_os("JOB_TEST_XTASK_BIN") {
            return PathBuf::from(path);
        }
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--locked", "--package", "xtask"])
            .current_dir(project_root())
            .status()
            .expect("running cargo to build xtask");
        assert!(status.success(), "cargo could not build xtask");
        project_root().join("target/debug/xtask")
    })
}

/// The static job-worker binary, as `cargo xtask build` makes it.
pub fn worker_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(path) = std::env::var_os("JOB_WORKER_BIN") {
            return PathBuf::from(path);
        }
        let out = xtask(&["--output", "json", "build"]);
        assert!(out.status.success(), "cargo xtask build failed:\n{}", String::from_utf8_lossy(&out.stderr));
        let built: serde_json::Value = serde_json::from_slice(&out.stdout).expect("xtask build --output json");
        PathBuf::from(built["path"].as_str().expect("path in xtask build output"))
    })
}

/// Runs `cargo xtask ARGS` and returns what it printed.
pub fn xtask(args: &[&str]) -> Output {
    xtask_with(args, &[], None)
}

/// Runs `cargo xtask ARGS` with extra environment variables and, when
/// given, `stdin` as its standard input.
pub fn xtask_with(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut cmd = Command::new(xtask_bin());
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    isolate(&mut cmd, env);
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    let mut child = cmd.spawn().expect("running cargo xtask");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    child.wait_with_output().expect("waiting for cargo xtask")
}

/// Runs from the project root, with none of the machine's registry
/// credentials, cluster settings or NO_COLOR, and then `env`: a test sees
/// only what it sets.
fn isolate(cmd: &mut Command, env: &[(&str, &str)]) {
    cmd.current_dir(project_root());
    for name in ["REGISTRY_USERNAME", "REGISTRY_PASSWORD", "KUBECONFIG", "KUBE_TOKEN", "NO_COLOR"] {
        cmd.env_remove(name);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
}

/// Runs the Docker CLI against the machine's daemon. Panics with a clear
/// message when there is no daemon: these tests need one and must not pass
/// without it.
pub fn docker(args: &[&str]) -> Output {
    require_docker();
    Command::new("docker").args(args).stdin(Stdio::null()).output().expect("running the docker CLI")
}

pub fn require_docker() {
    static CHECKED: OnceLock<()> = OnceLock::new();
    CHECKED.get_or_init(|| {
        let out = Command::new("docker").args(["version", "--format", "{{.Server.Version}}"]).output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => panic!(
                "this test needs the Docker daemon, which does not answer: {}\nstart it, or run the tests with `cargo xtask test`, which checks for it",
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Err(e) => panic!("this test needs the docker CLI and daemon: {e}; `cargo xtask test` checks for them"),
        }
    });
}

/// An image of the top-level Dockerfile with the built worker, on the local
/// daemon, built once per test process.
pub fn worker_image() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let context = tempdir("image-context");
        std::fs::copy(project_root().join("Dockerfile"), context.join("Dockerfile")).unwrap();
        std::fs::copy(worker_bin(), context.join("job-worker")).unwrap();
        // Tagged by content, so a rerun with the same binary reuses the image
        // instead of piling up new ones.
        let sha = sha256_hex(&std::fs::read(worker_bin()).unwrap());
        let tag = format!("job-test-e2e/job-worker:{}", &sha[..16]);
        let out = docker(&["build", "--quiet", "--tag", &tag, context.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "docker build of the worker image failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::remove_dir_all(&context).unwrap();
        tag
    })
}

/// A fresh, empty temporary directory unique to this process and name.
pub fn tempdir(name: &str) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("job-test-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The sha256 of some bytes, in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// `cargo xtask` running in the background, its output collected as it
/// comes, so that a test can act when it reaches a point.
pub struct Background {
    child: std::process::Child,
    stdout: std::sync::Arc<std::sync::Mutex<String>>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

/// What a finished background run printed.
#[derive(Debug)]
pub struct Finished {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

pub fn spawn_xtask(args: &[&str], env: &[(&str, &str)]) -> Background {
    use std::io::Read;
    let mut cmd = Command::new(xtask_bin());
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    isolate(&mut cmd, env);
    let mut child = cmd.spawn().expect("running cargo xtask");
    let collect = |mut pipe: Box<dyn Read + Send>, into: std::sync::Arc<std::sync::Mutex<String>>| {
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                into.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    let stdout = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let readers = vec![
        collect(Box::new(child.stdout.take().unwrap()), stdout.clone()),
        collect(Box::new(child.stderr.take().unwrap()), stderr.clone()),
    ];
    Background { child, stdout, stderr, readers }
}

impl Background {
    /// Waits until stderr contains `needle`.
    pub fn wait_stderr(&self, needle: &str) {
        let start = std::time::Instant::now();
        while !self.stderr.lock().unwrap().contains(needle) {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(60),
                "no {needle:?} on stderr; so far:\n{}",
                self.stderr.lock().unwrap()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits for the exit (at most a minute).
    pub fn finish(mut self) -> Finished {
        let start = std::time::Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if start.elapsed() > std::time::Duration::from_secs(60) {
                let _ = self.child.kill();
                panic!("cargo xtask did not finish within a minute; stderr:\n{}", self.stderr.lock().unwrap());
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        let stdout = self.stdout.lock().unwrap().clone();
        let stderr = self.stderr.lock().unwrap().clone();
        Finished { code: status.code(), stdout, stderr }
    }
}

/// Runs `cargo xtask` to its end.
pub fn run_xtask(args: &[&str], env: &[(&str, &str)]) -> Finished {
    spawn_xtask(args, env).finish()
}

/// Runs `cargo xtask ARGS` on a pseudo-terminal (util-linux `script`), as a
/// person at a terminal runs it, and returns what the terminal showed
/// (stdout and stderr together, escape sequences included).
pub fn xtask_on_terminal(args: &[&str], env: &[(&str, &str)]) -> String {
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let line = std::iter::once(xtask_bin().display().to_string())
        .chain(args.iter().map(|a| (*a).to_owned()))
        .map(|a| quote(&a))
        .collect::<Vec<_>>()
        .join(" ");
    let mut cmd = Command::new("script");
    cmd.args(["--quiet", "--return", "--command", &line, "/dev/null"]).stdin(Stdio::null());
    isolate(&mut cmd, env);
    let out = cmd.output().expect("running script(1) from util-linux");
    String::from_utf8_lossy(&out.stdout).into_owned()
}
