//! `cargo xtask run-local`: the rendered Job run on the machine's real
//! Docker engine by the Job controller's rules, each pod a container of the
//! real worker image. Outcomes are made deterministic with the worker's own
//! rules (FAIL_PROBABILITY 0 and 1, hang with a deadline); every test checks
//! that the run left no container behind.

use std::time::Duration;

use serde_json::Value;
use tests::{Finished, run_xtask, spawn_xtask};

/// Containers a run of the Job `name` left on the daemon.
fn leftovers(name: &str) -> Vec<String> {
    let out = std::process::Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("label=job-test.local/job={name}")])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
}

/// `run-local` of the Job `name` with the tests' worker image and these flags.
fn run_local(name: &str, flags: &[&str]) -> Finished {
    tests::require_docker();
    let image = tests::worker_image();
    let mut args = vec!["--output", "json", "run-local", "--name", name, "--image", image, "--time-scale", "0.01"];
    args.extend_from_slice(flags);
    let r = spawn_xtask(&args, &[]).finish_within(Duration::from_secs(180));
    assert_eq!(leftovers(name), Vec::<String>::new(), "containers left behind:\n{}", r.stderr);
    r
}

fn report(r: &Finished) -> Value {
    serde_json::from_str(r.stdout.trim()).unwrap_or_else(|e| panic!("not one JSON object ({e}):\n{}", r.all()))
}

#[test]
fn a_job_that_always_succeeds_completes_every_pod() {
    let r = run_local("rl-ok", &["--fail-probability", "0", "--completions", "3", "--parallelism", "2"]);
    assert_eq!(r.code, Some(0), "{}", r.all());
    let v = report(&r);
    assert_eq!(
        (v["result"].as_str(), v["succeeded"].as_i64(), v["failed_pods"].as_i64()),
        (Some("Complete"), Some(3), Some(0))
    );
    assert_eq!(v["pods"].as_array().unwrap().len(), 3);
    assert!(r.stderr.contains("on the local Docker engine, not a cluster"), "{}", r.stderr);
    assert!(r.stderr.contains("back-offs × 0.01"), "{}", r.stderr);
    assert!(r.stderr.contains("removed the 3 containers of this run"), "{}", r.stderr);
    // Pod names as Kubernetes makes them: the Job's name and five characters.
    for pod in v["pods"].as_array().unwrap() {
        let name = pod["name"].as_str().unwrap();
        assert!(name.starts_with("rl-ok-") && name.len() == "rl-ok-".len() + 5, "{name}");
    }
}

#[test]
fn never_replaces_failed_pods_until_the_backoff_limit() {
    let r = run_local(
        "rl-never",
        &["--fail-probability", "1", "--backoff-limit", "2", "--completions", "1", "--parallelism", "1"],
    );
    assert_eq!(r.code, Some(1), "{}", r.all());
    let v = report(&r);
    assert_eq!(v["reason"], "BackoffLimitExceeded");
    // backoffLimit 2: the Job fails at the third failed pod.
    assert_eq!(v["failed_pods"], 3);
    let pods = v["pods"].as_array().unwrap();
    assert_eq!(pods.len(), 3);
    for pod in pods {
        assert_eq!((pod["phase"].as_str(), pod["exit_code"].as_i64()), (Some("Failed"), Some(1)), "{pod}");
        assert!(pod["message"].as_str().unwrap().starts_with("job-worker: simulated failure"), "{pod}");
    }
}

#[test]
fn on_failure_restarts_the_container_in_its_pod() {
    let r = run_local(
        "rl-onfailure",
        &[
            "--restart-policy",
            "OnFailure",
            "--fail-probability",
            "1",
            "--backoff-limit",
            "2",
            "--completions",
            "1",
            "--parallelism",
            "1",
        ],
    );
    assert_eq!(r.code, Some(1), "{}", r.all());
    let v = report(&r);
    assert_eq!(v["reason"], "BackoffLimitExceeded");
    let pods = v["pods"].as_array().unwrap();
    assert_eq!(pods.len(), 1, "one pod, restarted in place");
    assert_eq!(pods[0]["restarts"], 2);
    assert_eq!((v["runs"].as_i64(), v["failed_runs"].as_i64()), (Some(3), Some(3)));
}

#[test]
fn the_deadline_stops_a_hanging_job() {
    let r = run_local(
        "rl-deadline",
        &[
            "--failure-mode",
            "hang",
            "--fail-probability",
            "1",
            "--active-deadline-seconds",
            "2",
            "--completions",
            "1",
            "--parallelism",
            "1",
        ],
    );
    assert_eq!(r.code, Some(1), "{}", r.all());
    let v = report(&r);
    assert_eq!(v["reason"], "DeadlineExceeded");
    assert_eq!(v["pods"][0]["phase"], "Failed");
}

#[test]
fn the_text_report_is_the_watch_report() {
    tests::require_docker();
    let image = tests::worker_image();
    let r = run_xtask(
        &[
            "run-local",
            "--name",
            "rl-text",
            "--image",
            image,
            "--fail-probability",
            "0",
            "--completions",
            "1",
            "--parallelism",
            "1",
        ],
        &[],
    );
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert!(
        r.stdout.starts_with("job.batch/rl-text Complete\n  succeeded 1 of 1, failed pods 0, took "),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("observed failure rate 0 of 1 runs = 0% (configured FAIL_PROBABILITY 0)"),
        "{}",
        r.stdout
    );
    assert!(r.stderr.contains("would be deleted 10m after it finished (ttlSecondsAfterFinished)"), "{}", r.stderr);
    assert_eq!(leftovers("rl-text"), Vec::<String>::new());
}

#[test]
fn ctrl_c_removes_every_container_and_exits_130() {
    tests::require_docker();
    let image = tests::worker_image();
    for (signo, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        let name = format!("rl-signal-{code}");
        let w = spawn_xtask(
            &[
                "run-local",
                "--name",
                &name,
                "--image",
                image,
                "--failure-mode",
                "hang",
                "--fail-probability",
                "1",
                "--completions",
                "4",
                "--parallelism",
                "2",
            ],
            &[],
        );
        // Both pods are running when the signal comes.
        let start = std::time::Instant::now();
        while leftovers(&name).len() < 2 {
            assert!(start.elapsed() < Duration::from_secs(60), "the pods did not start:\n{}", w.stderr());
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_millis(500));
        w.signal(signo);
        let r = w.finish();
        assert_eq!(r.code, Some(code), "{}", r.all());
        assert!(r.stderr.contains("removed the 2 containers of this run"), "{}", r.stderr);
        assert_eq!(leftovers(&name), Vec::<String>::new());
    }
}

#[test]
fn a_job_file_runs_as_rendered() {
    tests::require_docker();
    let image = tests::worker_image();
    let dir = tests::tempdir("rl-file");
    let file = dir.join("job.yaml");
    let f = file.to_str().unwrap();
    let r = run_xtask(
        &["render", "--name", "rl-file", "--image", image, "--fail-probability", "0", "--completions", "2", "--out", f],
        &[],
    );
    assert_eq!(r.code, Some(0), "{}", r.all());
    let r = run_xtask(&["--output", "json", "run-local", "-f", f, "--time-scale", "0"], &[]);
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert_eq!(report(&r)["succeeded"], 2);
    let r = run_xtask(&["run-local", "-f", "/nonexistent.yaml"], &[]);
    assert_eq!(r.code, Some(2), "{}", r.all());
    assert!(r.stderr.contains("-f /nonexistent.yaml: cannot read it"), "{}", r.stderr);
    assert_eq!(leftovers("rl-file"), Vec::<String>::new());
}
