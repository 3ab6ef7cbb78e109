//! The cluster commands against a real Kubernetes 1.20.2 control plane
//! (kube-apiserver, kube-controller-manager with the Job, TTL-after-finished,
//! token and garbage-collector controllers, kube-scheduler, etcd), with the
//! node agent running the pods as Docker containers from an image pushed to
//! a real registry. What the double cannot show: the real Job controller's
//! labels, selectors, back-offs and conditions, the real schema of 1.20,
//! real RBAC and the real token controller.
//!
//! One control plane serves every test of this file; each test has its own
//! namespace and deletes it at the end.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;
use tests::control_plane::ControlPlane;
use tests::registry::{self, Registry};
use tests::{Finished, run_xtask, spawn_xtask, tempdir};

fn cp() -> &'static ControlPlane {
    ControlPlane::shared()
}

/// The worker image, pushed once to a real test registry with `cargo xtask
/// push`, pinned by digest: what the node agent pulls, as a node would.
fn image() -> &'static str {
    static IMAGE: OnceLock<(&'static Registry, String)> = OnceLock::new();
    &IMAGE
        .get_or_init(|| {
            let mut registry = Registry::start_tls();
            registry.trust_in_docker();
            let reference = push_to(&registry, "job-worker");
            cp().node_agent().set_registry_auth(&registry.host, registry::USER, registry::PASSWORD);
            (registry.until_exit(), reference)
        })
        .1
}

/// `cargo xtask push` of the worker image to `job-test-e2e-real/NAME:1.0.0`
/// in the registry, as its user; the pinned reference.
fn push_to(registry: &Registry, name: &str) -> String {
    let layout = tempdir("rc-layout");
    let ca = registry.ca_path.clone().unwrap();
    let target = format!("{}/job-test-e2e-real/{name}:1.0.0", registry.host);
    let r = run_xtask(
        &[
            "--output",
            "json",
            "push",
            "--builder",
            "oci",
            "--image",
            &target,
            "--layout",
            layout.to_str().unwrap(),
            "--registry-ca-cert",
            ca.to_str().unwrap(),
        ],
        &[("REGISTRY_USERNAME", registry::USER), ("REGISTRY_PASSWORD", registry::PASSWORD)],
    );
    assert_eq!(r.code, Some(0), "push to the test registry: {}", r.all());
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    v["reference"].as_str().unwrap().to_owned()
}

/// A namespace of the test's own, deleted (with everything in it) when the
/// test ends, passed or not.
struct Namespace(String);

impl Namespace {
    fn new(name: &str) -> Namespace {
        Namespace(name.to_owned())
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        cp().delete_namespace(&self.0);
    }
}

fn admin(ns: &str) -> String {
    cp().admin_kubeconfig(ns).display().to_string()
}

/// `cargo xtask ARGS --kubeconfig ADMIN`, to its end (bounded).
fn xtask(ns: &str, args: &[&str]) -> Finished {
    let k = admin(ns);
    let mut all = args.to_vec();
    all.extend_from_slice(&["--kubeconfig", &k]);
    let r = spawn_xtask(&all, &[]).finish_within(Duration::from_secs(240));
    assert!(!r.all().contains(&cp().admin_token), "the admin token was printed:\n{}", r.all());
    r
}

/// `apply` of a Job named `name` in `ns` with the pushed image and these flags.
fn apply(ns: &str, name: &str, extra: &[&str]) -> Finished {
    let mut args = vec!["apply", "--name", name, "--namespace", ns, "--image", image()];
    args.extend_from_slice(extra);
    xtask(ns, &args)
}

fn watch(ns: &str, name: &str, extra: &[&str]) -> Finished {
    let mut args = vec!["watch", "--name", name, "-n", ns, "--timeout", "3m"];
    args.extend_from_slice(extra);
    xtask(ns, &args)
}

fn job(ns: &str, name: &str) -> Option<Value> {
    cp().get(&format!("/apis/batch/v1/namespaces/{ns}/jobs/{name}"))
}

/// The Job's pods, found as the Job controller labels them on 1.20.
fn job_pods(ns: &str, name: &str) -> Vec<Value> {
    cp().list_pods(ns).into_iter().filter(|p| p["metadata"]["labels"]["job-name"] == name).collect()
}

/// The controller-manager's lines about one Job, for a failure message.
fn controller_log(ns: &str, name: &str) -> String {
    let log = std::fs::read_to_string(cp().dir.join("kube-controller-manager.log")).unwrap_or_default();
    let key = format!("{ns}/{name}");
    log.lines().filter(|l| l.contains(&key)).map(|l| &l[..l.len().min(300)]).collect::<Vec<_>>().join("\n")
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_control_plane_is_kubernetes_1_20() {
    assert!(cp().version.starts_with("v1.20."), "{}", cp().version);
}

#[test]
fn apply_renders_for_1_20_and_the_job_completes() {
    let ns = Namespace::new("rc-complete");
    let r = apply(&ns.0, "ok", &["--fail-probability", "0", "--completions", "2", "--parallelism", "2"]);
    assert_eq!(r.code, Some(0), "{}", r.all());
    // What 1.20 cannot take is left out, and the user is told what that loses.
    assert!(r.stderr.contains("spec.podFailurePolicy left out, Kubernetes 1.20 cannot take it"), "{}", r.stderr);
    assert!(r.stderr.contains("spec.ttlSecondsAfterFinished is alpha in Kubernetes 1.20"), "{}", r.stderr);
    assert!(r.stdout.contains(&format!("namespace/{} created", ns.0)), "{}", r.stdout);
    assert!(r.stdout.contains("job.batch/ok created"), "{}", r.stdout);
    // The NetworkPolicy goes in before the Job, and 1.20 takes it as it is.
    let applied: Vec<&str> = r.stdout.lines().collect();
    let policy = applied.iter().position(|l| *l == "networkpolicy.networking.k8s.io/ok created");
    assert!(policy.is_some_and(|i| applied[i + 1] == "job.batch/ok created"), "{}", r.stdout);
    let np = cp().get(&format!("/apis/networking.k8s.io/v1/namespaces/{}/networkpolicies/ok", ns.0)).unwrap();
    assert_eq!(np["spec"]["policyTypes"], serde_json::json!(["Ingress", "Egress"]), "{np}");
    assert_eq!(np["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/instance"], "ok", "{np}");
    let j = job(&ns.0, "ok").expect("the Job is there");
    assert!(j["spec"].get("podFailurePolicy").is_none() && j["spec"].get("completionMode").is_none(), "{j}");
    // The real apiserver's selector: controller-uid, not batch.kubernetes.io/*.
    assert!(j["spec"]["selector"]["matchLabels"]["controller-uid"].is_string(), "{j}");

    let w = watch(&ns.0, "ok", &["--output", "json"]);
    assert_eq!(w.code, Some(0), "{}", w.all());
    let report: Value = serde_json::from_str(w.stdout.trim()).unwrap();
    assert_eq!(report["result"], "Complete");
    assert_eq!(report["succeeded"], 2);
    let pods = report["pods"].as_array().unwrap();
    assert_eq!(pods.len(), 2, "the report finds the Job's pods by its selector: {report}");
    for p in pods {
        assert_eq!((p["phase"].as_str(), p["exit_code"].as_i64()), (Some("Succeeded"), Some(0)), "{p}");
    }
    assert_eq!((report["runs"].as_i64(), report["failed_runs"].as_i64()), (Some(2), Some(0)));

    // Applying the same again changes nothing; a changed template replaces the Job.
    let again = apply(&ns.0, "ok", &["--fail-probability", "0", "--completions", "2", "--parallelism", "2"]);
    assert_eq!(again.code, Some(0), "{}", again.all());
    assert!(again.stdout.lines().all(|l| l.ends_with(" unchanged")), "{}", again.stdout);
    let old_uid = j["metadata"]["uid"].clone();
    let changed = apply(&ns.0, "ok", &["--fail-probability", "0.5", "--completions", "2", "--parallelism", "2"]);
    assert_eq!(changed.code, Some(0), "{}", changed.all());
    assert!(changed.stdout.contains("job.batch/ok replaced"), "{}", changed.stdout);
    assert_ne!(job(&ns.0, "ok").unwrap()["metadata"]["uid"], old_uid);
}

/// `apply --dry-run=server` on the real 1.20 apiserver: a new namespace and
/// everything in it `created` with nothing stored; after a real apply,
/// `unchanged`, `configured` (naming the field) and `replaced`, and the
/// live objects stay as they were.
#[test]
fn server_dry_runs_say_what_would_change_and_store_nothing() {
    let ns = Namespace::new("rc-dry");
    // The worker's settings are in the pod template: changing them replaces the Job.
    let flags = ["--completions", "1", "--parallelism", "1"];
    let dry = |extra: &[&str]| {
        let mut args = vec!["--dry-run=server"];
        args.extend_from_slice(&flags);
        args.extend_from_slice(extra);
        apply(&ns.0, "dry", &args)
    };

    // A namespace that does not exist yet: the server cannot hold dry-run
    // objects in it, so they are created too, checked here only.
    let r = dry(&["--fail-probability", "0"]);
    assert_eq!(r.code, Some(0), "{}", r.all());
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "namespace/rc-dry created (server dry run)", "{}", r.stdout);
    assert!(
        lines.contains(
            &"job.batch/dry created (server dry run; its namespace does not exist yet, so the server could not check it)"
        ),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("(Kubernetes 1.20) checked what it could and stored nothing"), "{}", r.stdout);
    assert!(cp().get("/api/v1/namespaces/rc-dry").is_none(), "the dry run created the namespace");

    let r = apply(&ns.0, "dry", &[&flags[..], &["--fail-probability", "0"]].concat());
    assert_eq!(r.code, Some(0), "{}", r.all());
    let live = |path: &str| cp().get(&format!("/apis/{path}")).unwrap_or_else(|| panic!("{path} is gone"));
    let role_path = "rbac.authorization.k8s.io/v1/namespaces/rc-dry/roles/job-test-pod-reader";
    let (job_before, role_before) = (job(&ns.0, "dry").unwrap(), live(role_path));

    // The same again: every object unchanged, each checked by the server.
    let r = dry(&["--output", "json", "--fail-probability", "0"]);
    assert_eq!(r.code, Some(0), "{}", r.all());
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!((v["dry_run"].as_str(), v["kubernetes"].as_str()), (Some("server"), Some("1.20")), "{v}");
    for o in v["objects"].as_array().unwrap() {
        assert_eq!((o["result"].as_str(), o["checked_by"].as_str()), (Some("unchanged"), Some("server")), "{v}");
    }
    // A field that may change in place, and the pod template, which may not.
    let r = dry(&["--fail-probability", "0", "--active-deadline-seconds", "300"]);
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert!(
        r.stdout.contains("\njob.batch/dry configured (server dry run): spec.activeDeadlineSeconds\n"),
        "{}",
        r.stdout
    );
    let r = dry(&["--fail-probability", "0.5"]);
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert!(r.stdout.contains("\njob.batch/dry replaced (server dry run): the pod template changed"), "{}", r.stdout);

    // Nothing was stored: the same Job (not replaced, not reconfigured), the
    // same Role at the same resourceVersion.
    let job_after = job(&ns.0, "dry").unwrap();
    assert_eq!(job_after["metadata"]["uid"], job_before["metadata"]["uid"]);
    assert_eq!(job_after["spec"], job_before["spec"]);
    assert_eq!(job_after["spec"]["activeDeadlineSeconds"], 600);
    assert_eq!(live(role_path)["metadata"]["resourceVersion"], role_before["metadata"]["resourceVersion"]);
}

/// `logs -f` follows every pod as it appears, both runs of each container
/// (restartPolicy OnFailure), prefixed by pod, until the Job is Complete;
/// the node agent serves `follow=true` through the real apiserver.
#[test]
fn logs_follow_streams_every_pod_and_restart_until_the_job_ends() {
    let ns = Namespace::new("rc-follow");
    let k = admin(&ns.0);
    let r = apply(
        &ns.0,
        "follow",
        &[
            "--restart-policy",
            "OnFailure",
            "--fail-attempts",
            "1",
            "--fail-probability",
            "0",
            "--completions",
            "2",
            "--parallelism",
            "2",
            "--work-duration",
            "2s",
        ],
    );
    assert_eq!(r.code, Some(0), "{}", r.all());
    let f = spawn_xtask(&["logs", "-f", "--name", "follow", "-n", &ns.0, "--kubeconfig", &k], &[])
        .finish_within(Duration::from_secs(180));
    assert_eq!(f.code, Some(0), "{}", f.all());
    assert!(f.stderr.contains("job.batch/follow is Complete; every log stream has ended"), "{}", f.stderr);
    let pods: Vec<String> =
        job_pods(&ns.0, "follow").iter().map(|p| p["metadata"]["name"].as_str().unwrap().to_owned()).collect();
    assert_eq!(pods.len(), 2, "{pods:?}");
    for pod in &pods {
        // The first run failed, the restarted one succeeded: both followed.
        let first = format!("{pod} | ");
        let second = format!("{pod} #1 | ");
        let runs = |prefix: &str| f.stdout.lines().filter(|l| l.starts_with(prefix)).collect::<Vec<_>>();
        assert!(runs(&first).iter().any(|l| l.contains(" outcome ") && l.contains("result=failure")), "{}", f.stdout);
        assert!(runs(&second).iter().any(|l| l.contains(" outcome ") && l.contains("result=success")), "{}", f.stdout);
    }
    assert!(f.stdout.lines().all(|l| pods.iter().any(|p| l.starts_with(p.as_str()))), "{}", f.stdout);
    assert!(!f.stdout.contains('\x1b'), "colour when stdout is not a terminal: {}", f.stdout);

    // Once the Job has ended: every run read at once (the first as the
    // container's `previous`), the prefixes coloured on a terminal unless
    // NO_COLOR is set.
    let args = ["logs", "-f", "--name", "follow", "-n", &ns.0, "--kubeconfig", &k];
    let shown = tests::xtask_on_terminal(&args, &[]);
    // A prefix is padded to the longest label printed before it, and the
    // runs are read side by side, so its width depends on which came first.
    let coloured = |label: &str| {
        shown.lines().any(|l| l.split_once(label).is_some_and(|(_, rest)| rest.trim_start().starts_with("| \x1b[0m")))
    };
    for pod in &pods {
        assert!(coloured(pod), "{shown}");
        assert!(coloured(&format!("{pod} #1")), "{shown}");
    }
    let plain = tests::xtask_on_terminal(&args, &[("NO_COLOR", "1")]);
    assert!(plain.contains(&format!("{} #1 | ", pods[0])) && !plain.contains("\x1b[3"), "{plain}");

    // For scripts: one JSON object per line, each naming its pod, container
    // and run; both runs of every pod are there.
    let j = spawn_xtask(&[&args[..], &["--output", "json"]].concat(), &[]).finish_within(Duration::from_secs(60));
    assert_eq!(j.code, Some(0), "{}", j.all());
    let lines: Vec<Value> =
        j.stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}"))).collect();
    for pod in &pods {
        for restart in [0, 1] {
            let run: Vec<&Value> =
                lines.iter().filter(|l| l["pod"] == pod.as_str() && l["restart"] == restart).collect();
            assert!(!run.is_empty() && run.iter().all(|l| l["container"] == "worker"), "{pod} #{restart}: {lines:?}");
            assert!(run.iter().any(|l| l["line"].as_str().is_some_and(|t| t.contains(" outcome "))), "{run:?}");
        }
    }
    assert!(!j.stdout.contains(" | "), "no text prefixes in JSON: {}", j.stdout);
}

/// Ctrl-C ends `logs -f` at once and cleanly: exit 130, the Job untouched.
#[test]
fn logs_follow_ends_on_ctrl_c_with_exit_130() {
    let ns = Namespace::new("rc-follow-int");
    let k = admin(&ns.0);
    let hang = ["--failure-mode", "hang", "--fail-probability", "1", "--completions", "1"];
    let r = apply(&ns.0, "hang", &[&hang[..], &["--active-deadline-seconds", "120"]].concat());
    assert_eq!(r.code, Some(0), "{}", r.all());
    let f = spawn_xtask(&["logs", "--follow", "--name", "hang", "-n", &ns.0, "--kubeconfig", &k], &[]);
    // The worker's start line arrives while it hangs.
    let start = Instant::now();
    while !f.stdout().contains(" start ") {
        assert!(start.elapsed() < Duration::from_secs(90), "no start line followed:\n{}", f.stderr());
        std::thread::sleep(Duration::from_millis(100));
    }
    f.signal(libc::SIGINT);
    let r = f.finish_within(Duration::from_secs(10));
    assert_eq!(r.code, Some(130), "{}", r.all());
    assert!(r.stderr.contains("stopped following the logs of job.batch/hang"), "{}", r.stderr);
    assert!(job(&ns.0, "hang").is_some_and(|j| j["status"].get("failed").is_none()), "the Job was touched");
}

/// `release --dry-run=server`: built here, nothing pushed, the apply a dry
/// run against the real apiserver, the manifests pinned by the digest a
/// push would give.
#[test]
fn release_dry_run_server_pushes_nothing_and_stores_nothing() {
    let ns = Namespace::new("rc-release-dry");
    // The namespace exists (made by job-test): what goes in it is checked by the server.
    assert_eq!(apply(&ns.0, "other", &["--fail-probability", "0", "--completions", "1"]).code, Some(0));
    let registry = Registry::start_tls();
    let target = format!("{}/job-test-e2e-real/dry:1.0.0", registry.host);
    let ca = registry.ca_path.clone().unwrap();
    let k = admin(&ns.0);
    let own = tests::OwnDefaults::new();
    let args =
        release_args(&target, ca.to_str().unwrap(), &k, "dry", &ns.0, &["--dry-run=server", "--completions", "1"]);
    let r = spawn_xtask(&args, &own.env()).finish_within(Duration::from_secs(400));
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert!(r.stdout.starts_with(&format!("would push {target}@sha256:")), "{}", r.stdout);
    assert!(r.stdout.contains(&format!("namespace/{} unchanged (server dry run)\n", ns.0)), "{}", r.stdout);
    assert!(r.stdout.contains("\njob.batch/dry created (server dry run)\n"), "{}", r.stdout);
    assert!(registry.tags("job-test-e2e-real/dry").is_none(), "something was pushed");
    assert!(job(&ns.0, "dry").is_none(), "the Job was stored");
    let rendered = std::fs::read_to_string(own.target.join("release/dry.dry-run.yaml")).unwrap();
    assert!(rendered.contains(&format!("image: {target}@sha256:")), "{rendered}");
    assert!(!rendered.contains("podFailurePolicy"), "rendered for 1.20: {rendered}");
}

#[test]
fn a_failing_job_ends_backoff_limit_exceeded_with_its_failed_pods_listed() {
    let ns = Namespace::new("rc-fail");
    let r = apply(&ns.0, "fail1", &["--fail-probability", "1", "--backoff-limit", "1", "--completions", "1"]);
    assert_eq!(r.code, Some(0), "{}", r.all());
    let w = {
        let k = admin(&ns.0);
        let bg = spawn_xtask(&["watch", "--name", "fail1", "-n", &ns.0, "--timeout", "3m", "--kubeconfig", &k], &[]);
        // Progress while it runs, from the pods the Job's selector finds.
        bg.wait_stderr_within("pod fail1-", Duration::from_secs(60));
        bg.finish_within(Duration::from_secs(180))
    };
    assert_eq!(w.code, Some(1), "{}", w.all());
    assert!(w.stdout.starts_with("job.batch/fail1 Failed: BackoffLimitExceeded"), "{}", w.stdout);
    assert!(w.stdout.ends_with('\n'), "the report ends with a newline: {:?}", w.stdout);
    assert!(w.stdout.contains("failed pods 2"), "{}", w.stdout);
    // Each failed pod with its exit code and the worker's termination message.
    let failed: Vec<&str> =
        w.stdout.lines().filter(|l| l.contains("  exit 1  Error  job-worker: simulated failure")).collect();
    assert_eq!(failed.len(), 2, "{}", w.stdout);
    assert!(
        w.stdout.contains("observed failure rate 2 of 2 runs = 100% (configured FAIL_PROBABILITY 1)"),
        "{}",
        w.stdout
    );

    // logs finds the pods too, and shows what the worker printed.
    let logs = xtask(&ns.0, &["logs", "--name", "fail1", "-n", &ns.0]);
    assert_eq!(logs.code, Some(0), "{}", logs.all());
    assert_eq!(logs.stdout.lines().filter(|l| l.contains(" outcome ")).count(), 2, "{}", logs.stdout);

    // delete waits until the pods are gone, and counts them.
    assert_eq!(job_pods(&ns.0, "fail1").len(), 2);
    let d = xtask(&ns.0, &["delete", "--name", "fail1", "-n", &ns.0]);
    assert_eq!(d.code, Some(0), "{}", d.all());
    assert_eq!(d.stdout.trim(), "job.batch/fail1 deleted, with its 2 pods");
    assert!(job_pods(&ns.0, "fail1").is_empty(), "pods are left after delete");
    assert!(job(&ns.0, "fail1").is_none());
}

#[test]
fn a_hanging_job_ends_deadline_exceeded() {
    let ns = Namespace::new("rc-deadline");
    let r = apply(
        &ns.0,
        "hang",
        &["--fail-probability", "1", "--failure-mode", "hang", "--active-deadline-seconds", "5", "--completions", "1"],
    );
    assert_eq!(r.code, Some(0), "{}", r.all());
    let w = watch(&ns.0, "hang", &[]);
    assert_eq!(w.code, Some(1), "{}\nthe Job controller on it:\n{}", w.all(), controller_log(&ns.0, "hang"));
    assert!(w.stdout.starts_with("job.batch/hang Failed: DeadlineExceeded"), "{}", w.stdout);
    // The controller deleted the hanging pod; the agent stopped its container.
    wait_for("the hanging pod is gone", Duration::from_secs(60), || job_pods(&ns.0, "hang").is_empty());
}

#[test]
fn on_failure_restarts_are_counted_and_logs_show_the_previous_run() {
    let ns = Namespace::new("rc-onfailure");
    // Attempts 0 and 1 fail (counted in the emptyDir across restarts), the third succeeds.
    let r = apply(
        &ns.0,
        "restarts",
        &["--restart-policy", "OnFailure", "--fail-attempts", "2", "--fail-probability", "0", "--completions", "1"],
    );
    assert_eq!(r.code, Some(0), "{}", r.all());
    let j = job(&ns.0, "restarts").unwrap();
    assert!(j["spec"].get("completionMode").is_none(), "1.20 does not know completionMode: {j}");
    let w = watch(&ns.0, "restarts", &[]);
    assert_eq!(w.code, Some(0), "{}", w.all());
    assert!(w.stdout.contains("restarts 2"), "{}", w.stdout);
    assert!(w.stdout.contains("observed failure rate 2 of 3 runs"), "{}", w.stdout);
    let logs = xtask(&ns.0, &["logs", "--name", "restarts", "-n", &ns.0]);
    assert_eq!(logs.code, Some(0), "{}", logs.all());
    assert!(logs.stdout.contains(" (previous): "), "{}", logs.stdout);
    assert!(logs.stdout.lines().any(|l| !l.contains("(previous)") && l.contains("result=success")), "{}", logs.stdout);
}

#[test]
fn ttl_seconds_after_finished_removes_the_job() {
    let ns = Namespace::new("rc-ttl");
    let r =
        apply(&ns.0, "ttl", &["--fail-probability", "0", "--completions", "1", "--ttl-seconds-after-finished", "1"]);
    assert_eq!(r.code, Some(0), "{}", r.all());
    let w = watch(&ns.0, "ttl", &[]);
    assert_eq!(w.code, Some(0), "{}", w.all());
    // The control plane runs with the TTLAfterFinished gate on.
    wait_for("the TTL controller deletes the finished Job", Duration::from_secs(60), || job(&ns.0, "ttl").is_none());
    // Watching it afterwards says why it may be gone.
    let w = watch(&ns.0, "ttl", &[]);
    assert_eq!(w.code, Some(4), "{}", w.all());
    assert!(w.stderr.contains("a finished Job is deleted ttlSecondsAfterFinished after it ends"), "{}", w.stderr);
}

#[test]
fn what_1_20_cannot_take_is_refused_before_anything_is_applied() {
    let ns = Namespace::new("rc-refused");
    let r = apply(&ns.0, "indexed", &["--completion-mode", "Indexed", "--fail-probability", "0"]);
    assert_eq!(r.code, Some(2), "{}", r.all());
    assert!(r.stderr.contains("spec.completionMode: Indexed: Kubernetes 1.20 does not have it"), "{}", r.stderr);
    assert!(r.stderr.contains("on by default from 1.22"), "{}", r.stderr);
    assert!(cp().get(&format!("/api/v1/namespaces/{}", ns.0)).is_none(), "something was applied");
}

#[test]
fn the_default_namespace_is_never_patched() {
    let before = cp().get("/api/v1/namespaces/default").unwrap();
    let out = tempdir("rc-default").join("reader.kubeconfig");
    let r = xtask(
        "default",
        &[
            "auth",
            "--namespace",
            "default",
            "--service-account",
            "rc-default-reader",
            "--write-kubeconfig",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert!(r.stdout.contains("namespace/default untouched"), "{}", r.stdout);
    let after = cp().get("/api/v1/namespaces/default").unwrap();
    assert_eq!(after["metadata"]["labels"], before["metadata"]["labels"]);
    assert_eq!(after["metadata"]["resourceVersion"], before["metadata"]["resourceVersion"]);
}

#[test]
fn the_tutorials_flow_with_a_service_account_token_and_the_clusters_ca() {
    let ns = Namespace::new("flask-ns");
    // Three pods in flask-ns, as in the tutorial (a Job of three that completes).
    let r = apply(&ns.0, "flask", &["--fail-probability", "0", "--completions", "3", "--parallelism", "3"]);
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert_eq!(watch(&ns.0, "flask", &[]).code, Some(0));

    // The tutorial's names, cluster-wide as the tutorial has it.
    let dir = tempdir("rc-tutorial");
    let kubeconfig = dir.join("java-admin.kubeconfig");
    let truststore = dir.join("java-admin.p12");
    let (k, ts) = (kubeconfig.to_str().unwrap(), truststore.to_str().unwrap());
    let r = xtask(&ns.0, &[tutorial_auth(&ns.0, k, ts), vec!["--print-token"]].concat());
    assert_eq!(r.code, Some(0), "{}", r.all());
    let (jvm_flags, password) = java_truststore_lines(&r.stdout, &truststore);
    assert!(r.stdout.contains("clusterrole.rbac.authorization.k8s.io/pod-updater created"), "{}", r.stdout);
    let token = r.stdout.lines().find_map(|l| l.strip_prefix("token: ")).expect("--print-token").to_owned();
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&kubeconfig).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);

    let mut names: Vec<String> =
        cp().list_pods(&ns.0).iter().map(|p| p["metadata"]["name"].as_str().unwrap().to_owned()).collect();
    names.sort();
    let expected =
        format!("Number of pods = 3\n{}", names.iter().map(|n| format!("pod name = {n}\n")).collect::<String>());
    // With the written kubeconfig (the token controller's token and ca.crt).
    let r = run_xtask(&["pods", "--kubeconfig", kubeconfig.to_str().unwrap(), "-n", &ns.0], &[]);
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert_eq!(r.stdout, expected);
    assert!(!r.all().contains(&token));
    // With --server, --token-file and --ca-cert.
    let token_file = tests::write_file(&dir, "token", &token);
    let (t, ca) = (token_file.to_str().unwrap(), cp().ca_path.to_str().unwrap());
    let r = run_xtask(&["pods", "--server", &cp().url, "--token-file", t, "--ca-cert", ca, "-n", &ns.0], &[]);
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert_eq!(r.stdout, expected);
    assert!(!r.all().contains(&token));
    // Without the CA: the fix, not a disabled check.
    let r = run_xtask(&["pods", "--server", &cp().url, "--token-file", t, "-n", &ns.0], &[]);
    assert_eq!(r.code, Some(4), "{}", r.all());
    assert!(r.stderr.contains("pass --ca-cert FILE with the cluster's CA"), "{}", r.stderr);

    // The tutorial's Java client, as the JDK's own HTTPS client: without a
    // truststore the JDK's PKIX error (what `pods` just explained); with the
    // two flags `auth` printed, the pods.
    let java = JavaClient::compile(&dir);
    let r = java.list_pods(&[], &ns.0, t);
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert!(r.stderr.contains("PKIX path building failed"), "{}", r.stderr);
    let r = java.list_pods(&jvm_flags, &ns.0, t);
    assert_eq!((r.code, r.stdout.as_str()), (Some(0), expected.as_str()), "{}", r.all());
    // With the password too the JVM checks the file's MAC: keytool's own
    // HMAC-SHA256 over PKCS#12's KDF, computed right or the load fails.
    let with_password = [jvm_flags.clone(), vec![format!("-Djavax.net.ssl.trustStorePassword={password}")]].concat();
    let r = java.list_pods(&with_password, &ns.0, t);
    assert_eq!((r.code, r.stdout.as_str()), (Some(0), expected.as_str()), "{}", r.all());
    let wrong = [jvm_flags.clone(), vec!["-Djavax.net.ssl.trustStorePassword=not-it".to_owned()]].concat();
    let r = java.list_pods(&wrong, &ns.0, t);
    assert_eq!(r.code, Some(1), "{}", r.all());
    // (JSSE does not say why; the only change from the run before is the
    // password.)
    assert!(r.stderr.contains("problem accessing trust store"), "{}", r.stderr);
    // keytool sees one trusted certificate entry, the cluster's CA.
    let r = java.keytool_list(&truststore, &password);
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert!(r.stdout.contains("kubernetes-ca") && r.stdout.contains("trustedCertEntry"), "{}", r.stdout);
    assert!(r.stdout.contains("Your keystore contains 1 entry"), "{}", r.stdout);

    // The password from standard input: used, never printed; JSON names
    // the file and the flags.
    let piped = dir.join("piped.p12");
    let secret = "piped-Pa55word-4e1c";
    let admin_kubeconfig = admin(&ns.0);
    let args = [
        vec!["--output", "json"],
        tutorial_auth(&ns.0, k, piped.to_str().unwrap()),
        vec!["--java-truststore-password-stdin", "--kubeconfig", &admin_kubeconfig],
    ]
    .concat();
    let out = tests::xtask_with(&args, &[], Some(&format!("{secret}\n")));
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(!stdout.contains(secret) && !stderr.contains(secret), "{stdout}{stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    let ts = &v["java_truststore"];
    assert_eq!(ts["path"], piped.to_str().unwrap());
    assert_eq!(ts["aliases"], serde_json::json!(["kubernetes-ca"]));
    assert!(ts.get("password").is_none(), "{ts}");
    let flags: Vec<String> = serde_json::from_value(ts["jvm_flags"].clone()).unwrap();
    let flags = [flags, vec![format!("-Djavax.net.ssl.trustStorePassword={secret}")]].concat();
    let r = java.list_pods(&flags, &ns.0, t);
    assert_eq!((r.code, r.stdout.as_str()), (Some(0), expected.as_str()), "{}", r.all());

    // A truststore in a folder that does not exist: a usage error naming
    // the flag, the value and the fix, before anything is applied or written.
    let nowhere = dir.join("no-such-folder").join("ts.p12");
    let unwritten = dir.join("unwritten.kubeconfig");
    let r = xtask(
        &ns.0,
        &[
            "auth",
            "-n",
            &ns.0,
            "--service-account",
            "never-made",
            "--write-kubeconfig",
            unwritten.to_str().unwrap(),
            "--java-truststore",
            nowhere.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, Some(2), "{}", r.all());
    assert!(r.stderr.contains(&format!("--java-truststore {}: the folder", nowhere.display())), "{}", r.stderr);
    assert!(r.stderr.contains("mkdir -p"), "{}", r.stderr);
    assert!(!unwritten.exists() && !nowhere.parent().unwrap().exists());
    assert!(cp().get(&format!("/api/v1/namespaces/{}/serviceaccounts/never-made", ns.0)).is_none());
    // A wrong token: 401 from the real apiserver.
    let wrong = tests::write_file(&dir, "wrong", "eyJ-not-a-token-7c2e");
    let r = run_xtask(
        &["pods", "--server", &cp().url, "--token-file", wrong.to_str().unwrap(), "--ca-cert", ca, "-n", &ns.0],
        &[],
    );
    assert_eq!(r.code, Some(4), "{}", r.all());
    assert!(r.stderr.contains("401 Unauthorized"), "{}", r.stderr);
    // Cluster-scoped objects are not in the namespace: remove them.
    cp().delete_cluster_scoped("clusterroles", "pod-updater");
    cp().delete_cluster_scoped("clusterrolebindings", "simu-auth-binding");
}

/// `auth` with the tutorial's names, cluster-wide as the tutorial has it,
/// writing a kubeconfig and a Java truststore.
fn tutorial_auth<'a>(ns: &'a str, kubeconfig: &'a str, truststore: &'a str) -> Vec<&'a str> {
    vec![
        "auth",
        "--namespace",
        ns,
        "--service-account",
        "java-admin",
        "--token-secret",
        "java-access-secret",
        "--role",
        "pod-updater",
        "--role-binding",
        "simu-auth-binding",
        "--cluster-wide",
        "--write-kubeconfig",
        kubeconfig,
        "--java-truststore",
        truststore,
    ]
}

/// The truststore lines of `auth`'s text: the JVM flags, the generated
/// password; the file checked (0600, PKCS#12's outer SEQUENCE).
fn java_truststore_lines(stdout: &str, truststore: &std::path::Path) -> (Vec<String>, String) {
    let flags = stdout.lines().find_map(|l| l.strip_prefix("java flags: ")).expect("the JVM flags");
    let flags: Vec<String> = flags.split(' ').map(str::to_owned).collect();
    assert_eq!(
        flags,
        [
            format!("-Djavax.net.ssl.trustStore={}", truststore.display()),
            "-Djavax.net.ssl.trustStoreType=PKCS12".into()
        ]
    );
    let password = stdout
        .lines()
        .find_map(|l| l.strip_prefix("truststore password (generated, printed only this once): "))
        .expect("the generated password")
        .to_owned();
    assert_eq!(stdout.matches(&password).count(), 1, "{stdout}");
    let meta = std::fs::metadata(truststore).unwrap();
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777, 0o600);
    assert_eq!(std::fs::read(truststore).unwrap()[0], 0x30);
    eprintln!("truststore: {} bytes", meta.len());
    (flags, password)
}

/// tests/java/ListPods.java compiled with the machine's JDK: the JDK's own
/// HTTPS client and its default SSLContext, nothing else.
struct JavaClient {
    classes: std::path::PathBuf,
}

impl JavaClient {
    fn compile(dir: &std::path::Path) -> JavaClient {
        // keytool has no --version; -help exits 0.
        for (tool, arg) in [("javac", "--version"), ("java", "--version"), ("keytool", "-help")] {
            let ok = std::process::Command::new(tool).arg(arg).output().is_ok_and(|o| o.status.success());
            assert!(
                ok,
                "`{tool} {arg}` failed: these tests need a JDK 11 or newer (Debian's default-jdk-headless, which \
                 `cargo xtask test` and .ci/run install)"
            );
        }
        let classes = dir.join("java-classes");
        let source = tests::project_root().join("tests/java/ListPods.java");
        let out = std::process::Command::new("javac").arg("-d").arg(&classes).arg(&source).output().unwrap();
        assert!(out.status.success(), "javac: {}", String::from_utf8_lossy(&out.stderr));
        JavaClient { classes }
    }

    /// `java FLAGS ListPods SERVER NAMESPACE TOKEN_FILE`.
    fn list_pods(&self, flags: &[String], ns: &str, token_file: &str) -> Finished {
        let mut cmd = std::process::Command::new("java");
        cmd.args(flags).arg("-cp").arg(&self.classes).args(["ListPods", &cp().url, ns, token_file]);
        finished(cmd.output().unwrap())
    }

    fn keytool_list(&self, store: &std::path::Path, password: &str) -> Finished {
        let mut cmd = std::process::Command::new("keytool");
        cmd.args(["-list", "-storetype", "PKCS12", "-storepass", password, "-keystore"]).arg(store);
        finished(cmd.output().unwrap())
    }
}

fn finished(out: std::process::Output) -> Finished {
    Finished {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        cpu_seconds: None,
    }
}

#[test]
fn release_pushes_renders_for_the_cluster_applies_and_watches() {
    let ns = Namespace::new("rc-release");
    let mut registry = Registry::start_tls();
    registry.trust_in_docker();
    cp().node_agent().set_registry_auth(&registry.host, registry::USER, registry::PASSWORD);
    let target = format!("{}/job-test-e2e-real/release:1.0.0", registry.host);
    let ca = registry.ca_path.clone().unwrap();
    let k = admin(&ns.0);
    let name = "rc-release-job";
    let own = tests::OwnDefaults::new();
    let mut env = own.env();
    env.extend([("REGISTRY_USERNAME", registry::USER), ("REGISTRY_PASSWORD", registry::PASSWORD)]);
    let args = release_args(
        &target,
        ca.to_str().unwrap(),
        &k,
        name,
        &ns.0,
        &["--fail-probability", "0", "--completions", "2", "--timeout", "3m"],
    );
    let r = spawn_xtask(&args, &env).finish_within(Duration::from_secs(400));
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert!(!r.all().contains(registry::PASSWORD));
    assert!(r.stderr.contains("runs Kubernetes 1.20"), "{}", r.stderr);
    assert!(r.stdout.contains(&format!("job.batch/{name} Complete")), "{}", r.stdout);
    assert!(r.stdout.contains("succeeded 2 of 2"), "{}", r.stdout);
    // The Job runs what was pushed: the digest-pinned reference.
    let j = job(&ns.0, name).unwrap();
    let image = j["spec"]["template"]["spec"]["containers"][0]["image"].as_str().unwrap();
    assert!(image.starts_with(&format!("{target}@sha256:")), "{image}");
    // The manifests as applied, rendered for 1.20, in the test's own target directory.
    let rendered = std::fs::read_to_string(own.target.join(format!("release/{name}.yaml"))).unwrap();
    assert!(rendered.contains(image) && !rendered.contains("podFailurePolicy"), "{rendered}");
}

/// `release` of `image` to the test registry (its CA) and the control plane
/// (`kubeconfig`), as Job `name` in `ns`, with these flags after.
fn release_args<'a>(
    image: &'a str,
    ca: &'a str,
    kubeconfig: &'a str,
    name: &'a str,
    ns: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec!["release", "--builder", "oci", "--image", image, "--registry-ca-cert", ca];
    args.extend_from_slice(&["--kubeconfig", kubeconfig, "--name", name, "--namespace", ns]);
    args.extend_from_slice(extra);
    args
}

/// A private registry from the cluster's side. The node (the agent, pulling
/// as a kubelet does) has no credential of its own for this registry: it
/// pulls with the Job's pull secret or not at all. Without one the pod
/// waits in ErrImagePull with the registry's refusal and `watch` says to
/// create the secret; `apply --create-pull-secret` makes it from the push's
/// credential, and the Job runs.
#[test]
fn a_private_registry_is_pulled_from_with_the_pull_secret_only() {
    let ns = Namespace::new("rc-pull-secret");
    let mut registry = Registry::start_tls();
    registry.trust_in_docker();
    // The node agent is given no credential for this registry.
    let pinned = push_to(&registry, "private");
    let creds = [("REGISTRY_USERNAME", registry::USER), ("REGISTRY_PASSWORD", registry::PASSWORD)];
    let k = admin(&ns.0);
    let job_flags =
        ["--name", "private", "-n", &ns.0, "--image", &pinned, "--fail-probability", "0", "--completions", "1"];

    // No pull secret: the registry refuses the node, and watch says what to do.
    let r = xtask(&ns.0, &[&["apply"][..], &job_flags].concat());
    assert_eq!(r.code, Some(0), "{}", r.all());
    let w = spawn_xtask(&["watch", "--name", "private", "-n", &ns.0, "--timeout", "40s", "--kubeconfig", &k], &[])
        .finish_within(Duration::from_secs(90));
    assert_eq!(w.code, Some(5), "{}", w.all());
    assert!(w.stderr.contains(&format!("cannot pull {pinned} (ErrImagePull: ")), "{}", w.stderr);
    assert!(
        w.stderr.contains(&format!(
            "what to do: the registry {} wants credentials and the pod has no pull secret: apply (or release) again \
             with --create-pull-secret",
            registry.host
        )),
        "{}",
        w.stderr
    );
    let pod = job_pods(&ns.0, "private").pop().expect("the Job's pod");
    let waiting = &pod["status"]["containerStatuses"][0]["state"]["waiting"];
    assert!(matches!(waiting["reason"].as_str(), Some("ErrImagePull" | "ImagePullBackOff")), "{pod}");

    // With the pull secret: applied before the Job, which is replaced (its
    // pod template now names the secret) and runs.
    let r = spawn_xtask(&[&["apply", "--create-pull-secret", "--kubeconfig", &k][..], &job_flags].concat(), &creds)
        .finish_within(Duration::from_secs(240));
    assert_eq!(r.code, Some(0), "{}", r.all());
    let applied: Vec<&str> = r.stdout.lines().collect();
    let secret = applied.iter().position(|l| *l == "secret/private-pull-secret created");
    assert!(secret.is_some_and(|i| applied[i..].contains(&"job.batch/private replaced")), "{}", r.stdout);
    assert!(!r.all().contains(registry::PASSWORD), "the password was printed:\n{}", r.all());
    let stored = cp().get(&format!("/api/v1/namespaces/{}/secrets/private-pull-secret", ns.0)).unwrap();
    assert_eq!(stored["type"], "kubernetes.io/dockerconfigjson", "{stored}");
    let data = stored["data"][".dockerconfigjson"].as_str().unwrap();
    assert!(!r.all().contains(data), "the secret's data was printed:\n{}", r.all());
    let w = watch(&ns.0, "private", &["--output", "json"]);
    assert_eq!(w.code, Some(0), "{}", w.all());
    let report: Value = serde_json::from_str(w.stdout.trim()).unwrap();
    assert_eq!((report["result"].as_str(), report["succeeded"].as_i64()), (Some("Complete"), Some(1)), "{report}");
    assert!(report.get("image_pull").is_none(), "{report}");
}

/// A Secret is created, never taken over, on a real API server: a
/// namespace's `regcred` made with kubectl's field manager (logins for two
/// registries) is refused by `apply --create-pull-secret --image-pull-secret
/// regcred` (exit 2, nothing applied) and keeps its resourceVersion and
/// data; a pull secret job-test made is updated by the next apply.
#[test]
fn a_pull_secret_someone_else_made_is_never_taken_over() {
    use base64::Engine;
    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::Secret;
    use kube::api::{Api, PostParams};
    let ns = Namespace::new("rc-foreign-secret");
    cp().create_namespace(&ns.0);
    let config = serde_json::json!({ "auths": {
        "registry.example:5000": { "auth": base64::engine::general_purpose::STANDARD.encode("team:team-pw") },
        "quay.example": { "auth": base64::engine::general_purpose::STANDARD.encode("bot:bot-pw") },
    } });
    let theirs = Secret {
        metadata: kube::api::ObjectMeta { name: Some("regcred".into()), ..Default::default() },
        type_: Some("kubernetes.io/dockerconfigjson".into()),
        data: Some([(".dockerconfigjson".to_owned(), ByteString(config.to_string().into_bytes()))].into()),
        ..Default::default()
    };
    let api: Api<Secret> = Api::namespaced(cp().client(), &ns.0);
    let params = PostParams { field_manager: Some("kubectl-create".into()), ..Default::default() };
    cp().block_on(api.create(&params, &theirs)).expect("creating their secret");
    let path = format!("/api/v1/namespaces/{}/secrets/regcred", ns.0);
    let before = cp().get(&path).unwrap();
    let k = admin(&ns.0);
    let apply = |password: &str, extra: &[&str]| {
        let args = [
            &["apply", "--kubeconfig", &k, "--name", "foreign", "-n", &ns.0][..],
            &["--image", "registry.example:5000/team/job-test:1.0.0", "--create-pull-secret"],
            extra,
        ]
        .concat();
        spawn_xtask(&args, &[("REGISTRY_USERNAME", "puller"), ("REGISTRY_PASSWORD", password)])
            .finish_within(Duration::from_secs(240))
    };
    let r = apply("pull-Pa55-one", &["--image-pull-secret", "regcred"]);
    assert_eq!(r.code, Some(2), "{}", r.all());
    assert!(
        r.stderr.contains(&format!(
            "secret/regcred in namespace {} exists and job-test did not create it (no \
             app.kubernetes.io/managed-by=job-test label)",
            ns.0
        )),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("drop --image-pull-secret to create foreign-pull-secret"), "{}", r.stderr);
    assert_eq!(cp().get(&path).unwrap(), before, "their secret was changed");
    assert!(job(&ns.0, "foreign").is_none(), "the Job was applied");

    let r = apply("pull-Pa55-one", &[]);
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert!(r.stdout.contains("secret/foreign-pull-secret created"), "{}", r.stdout);
    let r = apply("pull-Pa55-two", &[]);
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert!(r.stdout.contains("secret/foreign-pull-secret configured"), "{}", r.stdout);
    let ours = cp().get(&format!("/api/v1/namespaces/{}/secrets/foreign-pull-secret", ns.0)).unwrap();
    let data = base64::engine::general_purpose::STANDARD.decode(ours["data"][".dockerconfigjson"].as_str().unwrap());
    let config: Value = serde_json::from_slice(&data.unwrap()).unwrap();
    assert_eq!(config["auths"]["registry.example:5000"]["password"], "pull-Pa55-two");
    assert_eq!(cp().get(&path).unwrap(), before, "their secret was changed");
}

/// The conformance catalogue on the real 1.20 Job controller: every
/// scenario 1.20 has gives its documented outcome, the newer ones are
/// listed as not on 1.20 with the feature and version they need, and the
/// local engine playing 1.20 sees exactly what the real controller did.
#[test]
fn the_conformance_catalogue_agrees_with_the_real_1_20_job_controller() {
    let k = admin("default");
    let started = Instant::now();
    let cluster = spawn_xtask(
        &["--output", "json", "conformance", "--image", image(), "--kubeconfig", &k, "--parallel", "5"],
        &[],
    )
    .finish_within(Duration::from_secs(420));
    let cluster_time = started.elapsed();
    assert!(!cluster.all().contains(&cp().admin_token), "the admin token was printed");
    // The pinned image, pulled into the daemon by the local runs.
    tests::remove_pulled_at_exit(image());
    let local = spawn_xtask(
        &[
            "--output",
            "json",
            "conformance",
            "--local",
            "--kube-version",
            "1.20",
            "--image",
            image(),
            "--time-scale",
            "0.01",
            "--parallel",
            "5",
        ],
        &[],
    )
    .finish_within(Duration::from_secs(300));
    let json = |r: &Finished| -> Value {
        serde_json::from_str(r.stdout.trim()).unwrap_or_else(|e| panic!("not one JSON object ({e}):\n{}", r.all()))
    };
    let (c, l) = (json(&cluster), json(&local));
    let log: String = c["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["verdict"] != "passed" && s["verdict"] != "not_on_this_version")
        .map(|s| {
            // Each scenario's namespace is jtc-<run>-<scenario>.
            let name = s["scenario"].as_str().unwrap();
            let log = std::fs::read_to_string(cp().dir.join("kube-controller-manager.log")).unwrap_or_default();
            let key = format!("-{name}/{name}");
            log.lines()
                .filter(|l| l.contains(&key))
                .map(|l| format!("{}\n", &l[..l.len().min(300)]))
                .collect::<String>()
        })
        .collect();
    assert_eq!(
        cluster.code,
        Some(0),
        "{}\nthe Job controller on the scenarios that did not pass:\n{log}",
        cluster.all()
    );
    assert_eq!(local.code, Some(0), "{}", local.all());
    assert_eq!(c["version"], "1.20");
    let verdicts = |v: &Value| -> Vec<(String, String)> {
        v["scenarios"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["scenario"].as_str().unwrap().to_owned(), s["verdict"].as_str().unwrap().to_owned()))
            .collect()
    };
    let ran: Vec<String> =
        verdicts(&c).into_iter().filter(|(_, v)| v != "not_on_this_version").map(|(s, _)| s).collect();
    assert_eq!(
        ran,
        ["complete", "backoff-limit", "restart-in-place", "restarts-reach-backoff-limit", "deadline", "eviction"]
    );
    assert!(verdicts(&c).iter().all(|(_, v)| v == "passed" || v == "known" || v == "not_on_this_version"));
    let not_on = c["scenarios"].as_array().unwrap().iter().find(|s| s["scenario"] == "fail-job-rule").unwrap();
    assert_eq!(not_on["needs"], "spec.podFailurePolicy: 1.26", "{not_on}");
    // The local engine, playing 1.20, is held to the same table and sees
    // what the real controller did, field by field.
    assert_eq!(verdicts(&c), verdicts(&l), "cluster:\n{}\nlocal:\n{}", cluster.stderr, local.stderr);
    for (cs, ls) in c["scenarios"].as_array().unwrap().iter().zip(l["scenarios"].as_array().unwrap()) {
        assert_eq!(cs["seen"], ls["seen"], "{}: the real controller and the local one differ", cs["scenario"]);
    }
    // Nothing is left: every scenario's namespace is being deleted.
    let left = cp().get("/api/v1/namespaces?labelSelector=job-test.conformance%2Frun").unwrap();
    let live: Vec<&Value> =
        left["items"].as_array().unwrap().iter().filter(|n| n["metadata"]["deletionTimestamp"].is_null()).collect();
    assert!(live.is_empty(), "namespaces left: {live:?}");
    eprintln!("the catalogue took {cluster_time:?} on the real 1.20 control plane");
}

/// `conformance --clean` deletes what a crashed run left: the namespaces
/// labelled with a run, and nothing else.
#[test]
fn conformance_clean_removes_only_a_runs_namespaces() {
    use k8s_openapi::api::core::v1::Namespace as Ns;
    let create = |name: &str, labelled: bool| {
        let mut ns = Ns::default();
        ns.metadata.name = Some(name.into());
        if labelled {
            ns.metadata.labels = Some([("job-test.conformance/run".to_owned(), "crash".to_owned())].into());
        }
        let api: kube::Api<Ns> = kube::Api::all(cp().client());
        cp().block_on(api.create(&Default::default(), &ns)).unwrap();
    };
    let (left, other) = (Namespace::new("jtc-crash-complete"), Namespace::new("rc-not-a-run"));
    create(&left.0, true);
    create(&other.0, false);
    let r = xtask("default", &["conformance", "--clean"]);
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert!(r.stderr.contains("namespace/jtc-crash-complete deleted"), "{}", r.stderr);
    assert!(r.stderr.contains("removed 1 namespaces a conformance run left"), "{}", r.stderr);
    let gone =
        cp().get("/api/v1/namespaces/jtc-crash-complete").is_none_or(|n| !n["metadata"]["deletionTimestamp"].is_null());
    assert!(gone, "the run's namespace is still there");
    assert!(cp().get("/api/v1/namespaces/rc-not-a-run").unwrap()["metadata"]["deletionTimestamp"].is_null());
}

/// `evict` on the real 1.20 control plane: the oldest running pod is
/// evicted through policy/v1beta1 (1.20 has no policy/v1 Eviction), the
/// node agent stops it as a kubelet does (SIGTERM, exit 143, Failed, then
/// the final delete), and the answer is what the real 1.20 Job controller
/// did with it. 1.20 counts only the Failed pods that still exist (no Job
/// tracking with finalizers): the evicted pod is deleted, so it does not
/// count, and a replacement runs.
#[test]
fn evict_uses_the_eviction_api_and_says_whether_the_failure_counted() {
    let ns = Namespace::new("rc-evict");
    let hang = [
        "--completions",
        "1",
        "--parallelism",
        "1",
        "--backoff-limit",
        "1",
        "--fail-probability",
        "1",
        "--failure-mode",
        "hang",
        "--active-deadline-seconds",
        "180",
    ];
    let r = apply(&ns.0, "evicted", &hang);
    assert_eq!(r.code, Some(0), "{}", r.all());
    wait_for("a running pod", Duration::from_secs(90), || {
        job_pods(&ns.0, "evicted").iter().any(|p| p["status"]["phase"] == "Running")
    });
    let first = job_pods(&ns.0, "evicted")[0]["metadata"]["name"].as_str().unwrap().to_owned();
    let r = xtask(&ns.0, &["--output", "json", "evict", "--name", "evicted", "-n", &ns.0]);
    assert_eq!(r.code, Some(0), "{}\nthe Job controller on it:\n{}", r.all(), controller_log(&ns.0, "evicted"));
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["pod"], first.as_str(), "{v}");
    assert_eq!(v["api"], "policy/v1beta1", "{v}");
    assert!(v["disruption_target"].is_null(), "1.20 has no pod disruption conditions: {v}");
    assert_eq!(
        (v["failed_before"].as_i64(), v["failed_after"].as_i64(), v["counted"].as_bool()),
        (Some(0), Some(0), Some(false)),
        "{v}"
    );
    assert!(v["why"].as_str().unwrap().contains("counts only the Failed pods that still exist"), "{v}");
    // The pod is gone and a replacement took its place.
    let pods = job_pods(&ns.0, "evicted");
    assert!(pods.iter().all(|p| p["metadata"]["name"] != first.as_str()), "{pods:?}");
    assert!(!pods.is_empty(), "no replacement pod");

    // A Job with no running pod: nothing to evict, said clearly.
    let r = apply(&ns.0, "done", &["--completions", "1", "--parallelism", "1", "--fail-probability", "0"]);
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert_eq!(watch(&ns.0, "done", &[]).code, Some(0));
    let r = xtask(&ns.0, &["evict", "--name", "done", "-n", &ns.0]);
    assert_eq!(r.code, Some(2), "{}", r.all());
    assert!(
        r.stderr.contains("job.batch/done in rc-evict has no running pod to evict (1 pods, none Running)"),
        "{}",
        r.stderr
    );
}

#[test]
fn the_series_alerts_replays_match_what_the_real_jobs_status_said_at_each_moment() {
    let ns = Namespace::new("rc-alerts");
    // Pods that work 5 s each, so that the status stands still long enough
    // to compare: one Job that completes, one that fails after retries.
    let work = ["--work-duration", "5s", "--parallelism", "1", "--ttl-seconds-after-finished", "3600"];
    let ok = [&work[..], &["--fail-probability", "0", "--completions", "3"]].concat();
    let fail = [&work[..], &["--fail-probability", "1", "--completions", "1", "--backoff-limit", "2"]].concat();
    let (ok_seen, ok_spells) = replayed_series_agree(&ns.0, "drill-ok", &ok, 0);
    assert!(ok_seen.iter().any(|(_, c)| c[1] == 2), "three pods succeed one after another: {ok_seen:?}");
    let (fail_seen, fail_spells) = replayed_series_agree(&ns.0, "drill-fail", &fail, 1);
    assert!(fail_seen.iter().any(|(_, c)| c[2] == 2), "pods fail one after another: {fail_seen:?}");

    // The drill of the Job on the cluster, read after the fact: the hour's
    // TTL lets KubeJobFailed fire, pending from the first minute's
    // evaluation after the Failed condition.
    let a = xtask(&ns.0, &["--output", "json", "alerts", "--name", "drill-fail", "-n", &ns.0]);
    assert_eq!(a.code, Some(0), "{}", a.all());
    let drill: Value = serde_json::from_str(&a.stdout).unwrap();
    let run = &drill["runs"][0];
    assert_eq!(
        (run["result"].as_str(), run["reason"].as_str()),
        (Some("Failed"), Some("BackoffLimitExceeded")),
        "{run}"
    );
    let failed_at = job(&ns.0, "drill-fail").unwrap()["status"]["conditions"][0]["lastTransitionTime"].clone();
    let finished = run["finished"].as_f64().unwrap();
    let kube_job_failed = run["alerts"].as_array().unwrap().iter().find(|x| x["alert"] == "KubeJobFailed").unwrap();
    let pending = (finished / 60.0).ceil() * 60.0;
    assert_eq!(
        (kube_job_failed["fires"].as_bool(), kube_job_failed["pending"].as_f64(), kube_job_failed["firing"].as_f64()),
        (Some(true), Some(pending), Some(pending + 900.0)),
        "failed at {failed_at}: {kube_job_failed}"
    );
    assert!(
        ok_spells + fail_spells >= 4,
        "at least four spells checked: {ok_spells} + {fail_spells}; {ok_seen:?} {fail_seen:?}"
    );
}

/// Applies the Job, records its status every 200 ms while `watch
/// --save-report` follows it to its end (exit `code`), and checks with
/// promtool that the series `alerts` replays from the saved report give,
/// at the middle of every spell of at least 4 s in which the status stood
/// still (the controller writes it a moment after the pods' own times
/// say), the counts the status gave. The status seen, relative to the
/// Job's creation, and the number of spells checked.
fn replayed_series_agree(ns: &str, name: &str, flags: &[&str], code: i32) -> (Vec<(f64, [i64; 3])>, usize) {
    let r = apply(ns, name, flags);
    assert_eq!(r.code, Some(0), "{}", r.all());
    let dir = tempdir("rc-alerts");
    let report = dir.join("report.json");
    let k = admin(ns);
    let bg = spawn_xtask(
        &[
            "watch",
            "--name",
            name,
            "-n",
            ns,
            "--timeout",
            "3m",
            "--kubeconfig",
            &k,
            "--save-report",
            report.to_str().unwrap(),
        ],
        &[],
    );
    let mut seen: Vec<(f64, [i64; 3])> = Vec::new();
    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let counts = |j: &Value| {
        let n = |f: &str| j["status"][f].as_i64().unwrap_or(0);
        [n("active"), n("succeeded"), n("failed")]
    };
    let finished = |j: &Value| {
        j["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter().any(|c| (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True")
        })
    };
    let mut created = None;
    let start = Instant::now();
    loop {
        if let Some(j) = job(ns, name) {
            created.get_or_insert_with(|| j["metadata"]["creationTimestamp"].as_str().unwrap().to_owned());
            seen.push((now(), counts(&j)));
            if finished(&j) {
                break;
            }
        }
        assert!(start.elapsed() < Duration::from_secs(180), "the Job did not finish: {seen:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let w = bg.finish_within(Duration::from_secs(60));
    assert_eq!(w.code, Some(code), "{}", w.all());
    let created: jiff::Timestamp = created.unwrap().parse().unwrap();
    let created = created.as_second() as f64;
    let seen: Vec<(f64, [i64; 3])> = seen.into_iter().map(|(t, c)| (t - created, c)).collect();

    // The series as alerts writes them, scraped every second.
    let series = dir.join("series.json");
    let a = run_xtask(
        &[
            "--output",
            "json",
            "alerts",
            "--report",
            report.to_str().unwrap(),
            "--scrape-interval",
            "1s",
            "--evaluation-interval",
            "1s",
            "--save-series",
            series.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(a.code, Some(0), "{}", a.all());
    let saved: Value = serde_json::from_slice(&std::fs::read(&series).unwrap()).unwrap();
    let labels =
        |metric: &str| format!("{metric}{{job=\"kube-state-metrics\",namespace=\"{ns}\",job_name=\"{name}\"}}");
    let mut checks = Vec::new();
    let mut i = 0;
    while i < seen.len() {
        let j = (i..seen.len()).find(|&j| seen[j].1 != seen[i].1).unwrap_or(seen.len());
        let (from, to) = (seen[i].0, seen.get(j).map_or(seen[j - 1].0, |s| s.0));
        if to - from >= 4.0 {
            let at = ((from + to) / 2.0).round();
            let metrics = ["kube_job_status_active", "kube_job_status_succeeded", "kube_job_status_failed"];
            for (metric, value) in metrics.iter().zip(seen[i].1) {
                checks.push(serde_json::json!({
                    "expr": metric, "eval_time": format!("{at}s"),
                    "exp_samples": [{"labels": labels(metric), "value": value}],
                }));
            }
        }
        i = j;
    }
    // Evaluated every second: promtool loads the samples up to each evaluation.
    let test = serde_json::json!({
        "evaluation_interval": "1s",
        "tests": [{"interval": "1s", "input_series": saved[0]["input_series"], "promql_expr_test": checks}],
    });
    let file = dir.join("check.json");
    std::fs::write(&file, test.to_string()).unwrap();
    let out = std::process::Command::new("promtool").args(["test", "rules"]).arg(&file).output().unwrap();
    assert!(
        out.status.success(),
        "{name}: the series disagree with the Job's status ({seen:?}):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
    (seen, checks.len() / 3)
}
