//! The worker as PID 1 in a container from the `FROM scratch` image, on the
//! machine's real Docker daemon: as the kubelet runs it.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use tests::{docker, tempdir, worker_image};

/// A container removed when the test ends, whatever happened.
struct Container {
    name: String,
}

impl Container {
    fn start(test: &str, docker_args: &[&str], worker_args: &[&str]) -> Container {
        let name = format!("job-test-e2e-{}-{test}", std::process::id());
        let _ = docker(&["rm", "--force", &name]);
        let mut args = vec!["run", "--detach", "--name", &name];
        args.extend_from_slice(docker_args);
        let image = worker_image();
        args.push(image);
        args.extend_from_slice(worker_args);
        let out = docker(&args);
        assert!(out.status.success(), "docker run failed: {}", String::from_utf8_lossy(&out.stderr));
        Container { name }
    }

    fn logs(&self) -> String {
        let out = docker(&["logs", &self.name]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the container has printed a line containing `needle`.
    fn wait_for_log(&self, needle: &str) {
        let start = Instant::now();
        while !self.logs().contains(needle) {
            assert!(start.elapsed() < Duration::from_secs(30), "no {needle:?} in the logs:\n{}", self.logs());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the container to stop and returns its exit code.
    fn wait(&self) -> i32 {
        let out = docker(&["wait", &self.name]);
        assert!(out.status.success(), "docker wait failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }

    fn inspect(&self, format: &str) -> String {
        let out = docker(&["inspect", "--format", format, &self.name]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// `docker stop` as the kubelet stops a pod: SIGTERM, then SIGKILL after
    /// the grace period. Returns the exit code.
    fn stop(&self, grace_seconds: u32) -> i32 {
        let out = docker(&["stop", "--time", &grace_seconds.to_string(), &self.name]);
        assert!(out.status.success(), "docker stop failed: {}", String::from_utf8_lossy(&out.stderr));
        self.inspect("{{.State.ExitCode}}").parse().unwrap()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = docker(&["rm", "--force", &self.name]);
    }
}

/// The grace period in these tests. A worker that ignored SIGTERM as PID 1
/// would be SIGKILLed after it and exit 137, so the exit code alone tells
/// whether the signal was handled; the period is long so that a slow CI
/// machine cannot blur the two.
const GRACE: u32 = 30;

#[test]
fn as_pid_1_sigterm_during_hang_exits_143() {
    let c = Container::start("hang", &[], &["--fail-probability", "1", "--failure-mode", "hang"]);
    c.wait_for_log(" outcome ");
    let logs = c.logs();
    assert!(logs.contains(" pid=1 "), "the worker is not PID 1:\n{logs}");
    let start = Instant::now();
    assert_eq!(c.stop(GRACE), 143, "SIGTERM as PID 1 was not handled:\n{}", c.logs());
    assert!(start.elapsed() < Duration::from_secs(GRACE.into()));
    assert!(c.logs().contains(" signal signal=SIGTERM during=\"while hanging\""), "{}", c.logs());
}

#[test]
fn as_pid_1_sigterm_during_work_exits_143() {
    let c = Container::start("work", &[], &["--work-duration", "10m", "--fail-probability", "0"]);
    c.wait_for_log(" start ");
    assert_eq!(c.stop(GRACE), 143, "SIGTERM as PID 1 was not handled:\n{}", c.logs());
    assert!(c.logs().contains(" signal signal=SIGTERM during=\"while working\""), "{}", c.logs());
}

#[test]
fn the_scratch_image_runs_the_static_binary_as_a_non_root_user() {
    let ok = Container::start("ok", &[], &["--fail-probability", "0"]);
    assert_eq!(ok.wait(), 0, "{}", ok.logs());
    assert_eq!(ok.inspect("{{.Config.User}}"), "65532:65532");
    let fail = Container::start("fail", &[], &["--fail-probability", "1", "--fail-exit-code", "42"]);
    assert_eq!(fail.wait(), 42, "{}", fail.logs());
}

#[test]
fn the_termination_message_reaches_the_file_the_kubelet_mounts() {
    // The kubelet bind-mounts a file at /dev/termination-log; so does this.
    let dir = tempdir("container-term");
    let file = dir.join("termination-log");
    std::fs::write(&file, "").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
    let mount = format!("{}:/dev/termination-log", file.display());
    let c = Container::start("term", &["--volume", &mount], &["--fail-probability", "1"]);
    assert_eq!(c.wait(), 1, "{}", c.logs());
    let message = std::fs::read_to_string(&file).unwrap();
    assert!(message.starts_with("job-worker: simulated failure: draw "), "{message:?}");
}

#[test]
fn oom_mode_is_killed_by_the_kernel_at_the_memory_limit() {
    let c = Container::start(
        "oom",
        &["--memory", "48m", "--memory-swap", "48m"],
        &["--fail-probability", "1", "--failure-mode", "oom"],
    );
    assert_eq!(c.wait(), 137, "{}", c.logs());
    assert_eq!(c.inspect("{{.State.OOMKilled}}"), "true", "{}", c.logs());
}
