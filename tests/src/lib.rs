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
pub mod browser;
pub mod control_plane;
pub mod fault_proxy;
pub mod node_agent;
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

/// The static aarch64 worker, as `cargo xtask build --target
/// aarch64-unknown-linux-musl` makes it (JOB_WORKER_BIN_AARCH64 under
/// `cargo xtask test`).
pub fn worker_bin_aarch64() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(path) = std::env::var_os("JOB_WORKER_BIN_AARCH64") {
            return PathBuf::from(path);
        }
        let out = xtask(&["--output", "json", "build", "--target", "aarch64-unknown-linux-musl"]);
        assert!(out.status.success(), "cargo xtask build failed:\n{}", String::from_utf8_lossy(&out.stderr));
        let built: serde_json::Value = serde_json::from_slice(&out.stdout).expect("xtask build --output json");
        PathBuf::from(built["path"].as_str().expect("path in xtask build output"))
    })
}

/// qemu's aarch64 user-mode emulator, which runs the arm64 worker here.
/// Fails with the fix when it is missing (`cargo xtask test` installs it).
pub fn qemu_aarch64() -> &'static str {
    const QEMU: &str = "qemu-aarch64-static";
    static CHECKED: OnceLock<()> = OnceLock::new();
    CHECKED.get_or_init(|| {
        let found = Command::new(QEMU).arg("--version").output().is_ok_and(|o| o.status.success());
        assert!(
            found,
            "this test runs the arm64 worker under {QEMU}, which is missing: `apt-get install qemu-user-static`, \
             or run the tests with `cargo xtask test`, which installs it"
        );
    });
    QEMU
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
/// credentials, cluster settings, JOB_TEST_ settings or NO_COLOR, and an
/// empty settings file instead of the project's job-test.toml (a user's),
/// and then `env`: a test sees only what it sets.
fn isolate(cmd: &mut Command, env: &[(&str, &str)]) {
    cmd.current_dir(project_root());
    for name in ["REGISTRY_USERNAME", "REGISTRY_PASSWORD", "KUBECONFIG", "KUBE_TOKEN", "NO_COLOR"] {
        cmd.env_remove(name);
    }
    xtask::config::without_settings(cmd);
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
        // Tagged by content (a name of the tests' own), and removed when the
        // test process exits.
        let sha = sha256_hex(&std::fs::read(worker_bin()).unwrap());
        let tag = format!("job-test-e2e/job-worker:{}", &sha[..16]);
        let out = docker(&["build", "--quiet", "--tag", &tag, context.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "docker build of the worker image failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::remove_dir_all(&context).unwrap();
        let image = tag.clone();
        at_exit(move || {
            let _ = Command::new("docker").args(["rmi", "--force", &image]).output();
        });
        tag
    })
}

/// The image a local run pulled for `reference` (`repo:tag`, or
/// `repo:tag@digest`, pulled as `repo@digest`): the test's, removed when
/// the test process exits.
pub fn remove_pulled_at_exit(reference: &str) {
    let pulled = xtask::image_ref::ImageRef::parse(reference).expect("an image reference").pull_reference().to_string();
    at_exit(move || {
        let _ = Command::new("docker").args(["rmi", "--force", &pulled]).output();
    });
}

/// A port on 127.0.0.1 that nothing listens on now (another process may
/// take it before it is used: callers that start a server retry).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding a free port on 127.0.0.1")
        .port()
}

/// `content` written to `dir/name`; its path.
pub fn write_file(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    path
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

/// The chance that `needed` successes come before `allowed` failures, each
/// run failing with chance `f` (the negative binomial, summed term by term):
/// a Job with restartPolicy Never and backoffLimit B completes with
/// `completes_before(completions, B + 1, f)`. Computed here, apart from the
/// closed forms `odds` uses, so that the tests hold them to it.
pub fn completes_before(needed: u32, allowed: u32, f: f64) -> f64 {
    let mut p = 0.0;
    let mut binom = 1.0; // C(needed - 1 + k, k)
    for k in 0..allowed {
        if k > 0 {
            binom *= f64::from(needed - 1 + k) / f64::from(k);
        }
        p += binom * (1.0 - f).powi(needed as i32) * f.powi(k as i32);
    }
    p
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
    /// CPU seconds the process spent (user + system).
    pub cpu_seconds: Option<f64>,
}

impl Finished {
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

pub fn spawn_xtask(args: &[&str], env: &[(&str, &str)]) -> Background {
    let mut cmd = Command::new(xtask_bin());
    cmd.args(args);
    spawn(cmd, env)
}

/// GNU time, which measures the peak memory of the program it runs.
pub const GNU_TIME: &str = "/usr/bin/time";

/// [`spawn_xtask`] under GNU time, which writes the peak resident set of
/// xtask alone, in KiB, to `peak_file` ([`peak_rss_kib`] reads it). The
/// child's own `ru_maxrss` cannot tell: a child spawned from this process
/// starts in this process's memory (posix_spawn's CLONE_VM), and its exec
/// records that memory's high-water mark, so it reports the test
/// process's peak (280 MB seen, while the watch itself held 48 MB). GNU
/// time's own child starts from time's few pages instead.
pub fn spawn_xtask_measured(args: &[&str], env: &[(&str, &str)], peak_file: &Path) -> Background {
    assert!(
        Path::new(GNU_TIME).exists(),
        "{GNU_TIME} is missing: memory bounds are measured with GNU time (`apt-get install time`; `cargo xtask \
         test` installs it)"
    );
    let mut cmd = Command::new(GNU_TIME);
    cmd.arg("--format=%M").arg("--output").arg(peak_file).arg(xtask_bin()).args(args);
    spawn(cmd, env)
}

/// The peak resident set, in KiB, that [`spawn_xtask_measured`]'s run wrote.
pub fn peak_rss_kib(peak_file: &Path) -> u64 {
    let text = std::fs::read_to_string(peak_file).unwrap_or_else(|e| panic!("{}: {e}", peak_file.display()));
    text.trim().parse().unwrap_or_else(|e| panic!("{}: {text:?}: {e}", peak_file.display()))
}

fn spawn(mut cmd: Command, env: &[(&str, &str)]) -> Background {
    use std::io::Read;
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
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
    /// Waits until stderr contains `needle` (at most a minute).
    pub fn wait_stderr(&self, needle: &str) {
        self.wait_stderr_within(needle, std::time::Duration::from_secs(60));
    }

    /// Waits until stderr contains `needle`, at most `limit`.
    pub fn wait_stderr_within(&self, needle: &str, limit: std::time::Duration) {
        let start = std::time::Instant::now();
        while !self.stderr.lock().unwrap().contains(needle) {
            assert!(start.elapsed() < limit, "no {needle:?} on stderr; so far:\n{}", self.stderr.lock().unwrap());
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// What it has printed on stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// Sends a signal, as Ctrl-C (SIGINT) or a supervisor (SIGTERM) would.
    pub fn signal(&self, signo: i32) {
        // SAFETY: kill(2) on our own child's pid, which has not been reaped.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, signo) }, 0, "kill({signo})");
    }

    /// Waits for the exit (at most a minute).
    pub fn finish(self) -> Finished {
        self.finish_within(std::time::Duration::from_secs(60))
    }

    /// Waits for the exit, at most `limit` (then kills it and fails).
    pub fn finish_within(mut self, limit: std::time::Duration) -> Finished {
        let start = std::time::Instant::now();
        // wait4 rather than Child::try_wait: it also gives the child's own
        // resource usage, its peak memory among them.
        let pid = self.child.id() as libc::pid_t;
        // Past the limit it is interrupted as Ctrl-C would, so that what it
        // started (a local run's containers) is removed, and killed only if
        // that takes longer than a minute.
        let mut interrupted: Option<std::time::Instant> = None;
        let (status, usage) = loop {
            let mut status = 0;
            // SAFETY: plain out-parameters; the child is ours and reaped once.
            let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
            match unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) } {
                0 => {}
                r if r == pid => break (status, usage),
                _ => panic!("waiting for cargo xtask: {}", std::io::Error::last_os_error()),
            }
            match interrupted {
                None if start.elapsed() > limit => {
                    self.signal(libc::SIGINT);
                    interrupted = Some(std::time::Instant::now());
                }
                Some(at) if at.elapsed() > std::time::Duration::from_secs(60) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break (status, usage);
                }
                _ => {}
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        if interrupted.is_some() {
            panic!("cargo xtask did not finish within {limit:?}; stderr:\n{}", self.stderr.lock().unwrap());
        }
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        let stdout = self.stdout.lock().unwrap().clone();
        let stderr = self.stderr.lock().unwrap().clone();
        let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
        let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        Finished { code, stdout, stderr, cpu_seconds: Some(seconds(usage.ru_utime) + seconds(usage.ru_stime)) }
    }

    /// The process id, to look at the running process (/proc/PID).
    pub fn id(&self) -> u32 {
        self.child.id()
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

/// Where `push` and `release` put what they make when no place is named:
/// a target directory (CARGO_TARGET_DIR) and an embedded-registry address
/// (JOB_TEST_LOCAL_REGISTRY) of the test's own, so a test never writes the
/// project's target/ or the user's registry on 127.0.0.1:5000. Dropping it
/// stops the registry the product started there and removes the directory.
pub struct OwnDefaults {
    pub target: PathBuf,
    /// `127.0.0.1:PORT`
    pub registry: String,
}

impl OwnDefaults {
    pub fn new() -> OwnDefaults {
        OwnDefaults { target: tempdir("own-target"), registry: format!("127.0.0.1:{}", free_port()) }
    }

    /// The environment that sends the product there.
    pub fn env(&self) -> Vec<(&'static str, &str)> {
        vec![("CARGO_TARGET_DIR", self.target.to_str().unwrap()), (xtask::local_registry::ADDRESS_ENV, &self.registry)]
    }
}

impl Default for OwnDefaults {
    fn default() -> OwnDefaults {
        OwnDefaults::new()
    }
}

impl OwnDefaults {
    /// Stops the registry the product started here, if it did (SIGTERM).
    pub fn stop_registry(&self) {
        if let Ok(pid) = std::fs::read_to_string(self.target.join("registry/pid"))
            && let Ok(pid) = pid.trim().parse::<i32>()
        {
            // SAFETY: a plain syscall on the registry the product started for this test.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
    }
}

impl Drop for OwnDefaults {
    fn drop(&mut self) {
        self.stop_registry();
        let _ = std::fs::remove_dir_all(&self.target);
    }
}

/// Runs `f` when the test process exits (the harness ends with `exit`,
/// which runs atexit handlers): for what lives as long as the process
/// (the shared control plane's registry, the images its node pulled), which
/// no Drop would clean up.
pub fn at_exit(f: impl FnOnce() + Send + 'static) {
    type Hooks = std::sync::Mutex<Vec<Box<dyn FnOnce() + Send>>>;
    static HOOKS: OnceLock<Hooks> = OnceLock::new();
    extern "C" fn run_hooks() {
        if let Some(hooks) = HOOKS.get() {
            let hooks = std::mem::take(&mut *hooks.lock().unwrap_or_else(|e| e.into_inner()));
            // Last registered, first run: what was made later goes first.
            for hook in hooks.into_iter().rev() {
                hook();
            }
        }
    }
    let hooks = HOOKS.get_or_init(|| {
        // SAFETY: registers a plain function with no arguments.
        unsafe { libc::atexit(run_hooks) };
        std::sync::Mutex::new(Vec::new())
    });
    hooks.lock().unwrap().push(Box::new(f));
}

/// A kubeconfig in `dir` for a test API server: its CA (or none, to see the
/// trust error) and a bearer token (or none).
pub fn write_kubeconfig(
    url: &str,
    ca_path: &Path,
    token: Option<&str>,
    with_ca: bool,
    namespace: &str,
    dir: &Path,
) -> PathBuf {
    use serde_json::json;
    let mut cluster = json!({ "server": url });
    if with_ca {
        cluster["certificate-authority"] = json!(ca_path);
    }
    let mut user = json!({});
    if let Some(t) = token {
        user["token"] = json!(t);
    }
    let config = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{ "name": "job-test", "cluster": cluster }],
        "users": [{ "name": "user", "user": user }],
        "contexts": [{ "name": "job-test", "context": { "cluster": "job-test", "user": "user", "namespace": namespace } }],
        "current-context": "job-test",
    });
    let path = dir.join("kubeconfig");
    std::fs::write(&path, serde_saphyr::to_string(&config).expect("a kubeconfig as YAML"))
        .expect("writing a kubeconfig");
    path
}
