//! apply, watch, logs, delete, pods and auth against the API-server double
//! (HTTPS with its own CA, bearer tokens, RBAC from the stored roles, the
//! real wire protocol). The product code is configured exactly as for a
//! cluster: a kubeconfig, or --server / --token-file / --ca-cert.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use tests::apiserver::objects::{self, PodSpec};
use tests::apiserver::{ADMIN_TOKEN, ApiServer, Identity};
use tests::{Finished, run_xtask, spawn_xtask, tempdir};

const NS: &str = "job-test";

fn admin(api: &ApiServer) -> String {
    api.kubeconfig(Some(ADMIN_TOKEN), true, NS).display().to_string()
}

/// Every output is checked for the tokens it must never show.
fn assert_no_token(run: &Finished, tokens: &[&str]) {
    for t in tokens {
        assert!(!run.all().contains(t), "a token was printed:\n{}", run.all());
    }
}

fn apply(api: &ApiServer, extra: &[&str]) -> Finished {
    let k = admin(api);
    let mut args = vec!["apply", "--kubeconfig", &k];
    args.extend_from_slice(extra);
    let r = run_xtask(&args, &[]);
    assert_no_token(&r, &[ADMIN_TOKEN]);
    r
}

fn job(api: &ApiServer) -> Value {
    api.get("jobs", Some(NS), "job-test").expect("the Job was applied")
}

#[test]
fn apply_creates_in_order_and_a_second_apply_changes_nothing() {
    let api = ApiServer::start();
    let first = apply(&api, &[]);
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    // No --image: the placeholder goes in, and apply says so as render does.
    assert!(
        first.stderr.contains("warning: no --image: the Job names the placeholder registry.example.com/"),
        "{}",
        first.stderr
    );
    assert_eq!(
        first.stdout.trim(),
        "namespace/job-test created\nserviceaccount/job-test-pod-reader created\nsecret/job-test-pod-reader-token created\n\
         role.rbac.authorization.k8s.io/job-test-pod-reader created\nrolebinding.rbac.authorization.k8s.io/job-test-pod-reader created\n\
         networkpolicy.networking.k8s.io/job-test created\njob.batch/job-test created"
    );
    // Server-side apply, forced, with the tool as field manager.
    let patches: Vec<_> = api.requests().into_iter().filter(|r| r.method == "PATCH").collect();
    assert_eq!(patches.len(), 7);
    for p in &patches {
        assert_eq!(p.content_type.as_deref(), Some("application/apply-patch+yaml"), "{p:?}");
        assert!(p.query.contains("fieldManager=job-test") && p.query.contains("force=true"), "{p:?}");
    }
    let second = apply(&api, &[]);
    assert_eq!(second.code, Some(0), "{}", second.stderr);
    assert!(second.stdout.lines().all(|l| l.ends_with(" unchanged")), "{}", second.stdout);
    assert_eq!(job(&api)["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"], "0.2");
}

#[test]
fn a_namespace_someone_else_made_is_used_as_it_is_never_patched() {
    let api = ApiServer::start();
    let theirs = api.put(serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": { "name": "team-a", "labels": { "owner": "team-a" } },
    }));
    let r = apply(&api, &["--namespace", "team-a"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stdout.starts_with("namespace/team-a untouched (it exists and job-test did not create it)\n"),
        "{}",
        r.stdout
    );
    let after = api.get("namespaces", None, "team-a").unwrap();
    assert_eq!(after["metadata"], theirs["metadata"], "the namespace was changed");
    assert!(
        !api.requests().iter().any(|r| r.method == "PATCH" && r.path.ends_with("/namespaces/team-a")),
        "the namespace was patched"
    );
    assert!(api.get("jobs", Some("team-a"), "job-test").is_some());
    // `default` is the cluster's, whoever's labels it has.
    api.put(serde_json::json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": "default" } }));
    let r = apply(&api, &["--namespace", "default"]);
    assert!(r.stdout.starts_with("namespace/default untouched"), "{}", r.stdout);
    // One we created is ours to update.
    let r = apply(&api, &[]);
    assert!(r.stdout.starts_with("namespace/job-test created"), "{}", r.stdout);
    let r = apply(&api, &[]);
    assert!(r.stdout.starts_with("namespace/job-test unchanged"), "{}", r.stdout);
}

#[test]
fn a_changed_pod_template_replaces_the_job_and_says_so() {
    let api = ApiServer::start();
    assert_eq!(apply(&api, &[]).code, Some(0));
    let old_uid = job(&api)["metadata"]["uid"].clone();
    let r = apply(&api, &["--fail-probability", "0.5"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stdout.contains("job.batch/job-test replaced"), "{}", r.stdout);
    assert!(r.stderr.contains("the pod template changed, which Kubernetes does not allow in place"), "{}", r.stderr);
    let new = job(&api);
    assert_ne!(new["metadata"]["uid"], old_uid);
    assert_eq!(new["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"], "0.5");
    let delete = api.requests().into_iter().find(|r| r.method == "DELETE").expect("the old Job was deleted");
    assert!(delete.query.contains("observedPropagationPolicy=Background"), "{delete:?}");
    // A change outside the template is applied in place.
    let r = apply(&api, &["--fail-probability", "0.5", "--ttl-seconds-after-finished", "60"]);
    assert!(r.stdout.contains("job.batch/job-test configured"), "{}", r.stdout);
}

/// Starts `watch` on the applied Job and waits until both watches are open.
/// A server dry run goes through the same forced server-side apply with
/// `dryRun=All` on every PATCH, stores nothing, and names what would change.
#[test]
fn a_server_dry_run_sends_dry_run_all_stores_nothing_and_names_the_changes() {
    let api = ApiServer::start();
    assert_eq!(apply(&api, &[]).code, Some(0));
    // The token controller fills the token Secret after the apply.
    let start = std::time::Instant::now();
    while api.get("secrets", Some(NS), "job-test-pod-reader-token").unwrap().get("data").is_none() {
        assert!(start.elapsed() < Duration::from_secs(10), "the token controller did not fill the Secret");
        std::thread::sleep(Duration::from_millis(20));
    }
    let stored = api.state.lock().unwrap().objects.clone();
    let seen = api.requests().len();

    // A change outside the pod template: configured, with the field named.
    let r = apply(&api, &["--dry-run=server", "--ttl-seconds-after-finished", "60"]);
    assert_eq!(r.code, Some(0), "{}", r.all());
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "namespace/job-test unchanged (server dry run)", "{}", r.stdout);
    assert!(
        lines.contains(&"job.batch/job-test configured (server dry run): spec.ttlSecondsAfterFinished"),
        "{}",
        r.stdout
    );
    assert_eq!(lines.iter().filter(|l| l.ends_with(" unchanged (server dry run)")).count(), 6, "{}", r.stdout);
    assert!(lines.last().unwrap().starts_with("nothing was changed: the API server at https://"), "{}", r.stdout);

    // A changed template: replaced, and nothing deleted. Bare --dry-run is server.
    let r = apply(&api, &["--dry-run", "--output", "json", "--fail-probability", "0.5"]);
    assert_eq!(r.code, Some(0), "{}", r.all());
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["dry_run"], "server");
    let job_entry = v["objects"].as_array().unwrap().last().unwrap();
    assert_eq!(job_entry["object"], "job.batch/job-test");
    assert_eq!(job_entry["result"], "replaced");
    assert_eq!(job_entry["checked_by"], "server");

    let after = api.requests();
    let patches: Vec<_> = after[seen..].iter().filter(|r| r.method == "PATCH").collect();
    assert_eq!(patches.len(), 14, "7 objects, twice");
    for p in patches {
        assert!(p.query.contains("dryRun=All") && p.query.contains("fieldManager=job-test"), "{p:?}");
    }
    assert!(after[seen..].iter().all(|r| r.method == "GET" || r.method == "PATCH"), "{after:?}");
    assert_eq!(api.state.lock().unwrap().objects, stored, "a dry run changed what the server stores");
}

/// `--dry-run=client` checks here and sends nothing: the server named is a
/// listener that counts connections.
#[test]
fn a_client_dry_run_makes_no_request() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let dir = tempdir("dry-client");
    let token = tests::write_file(&dir, "token", "a-token-for-nobody-51d2");
    let t = token.to_str().unwrap();
    let image = format!("registry.example.com/team/job-test:1.0.0@sha256:{}", "ab".repeat(32));
    let r = run_xtask(&["apply", "--dry-run=client", "--server", &url, "--token-file", t, "--image", &image], &[]);
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert!(
        r.stdout.starts_with(
            "namespace/job-test checked (client dry run)
"
        ),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("\njob.batch/job-test checked (client dry run)\n"), "{}", r.stdout);
    assert!(r.stdout.trim_end().ends_with("(--dry-run=server asks the cluster)"), "{}", r.stdout);
    // Bad input is still refused, naming the flag.
    let bad =
        run_xtask(&["apply", "--dry-run=client", "--server", &url, "--token-file", t, "--fail-probability", "2"], &[]);
    assert_eq!(bad.code, Some(2), "{}", bad.all());
    assert!(bad.stderr.contains("--fail-probability"), "{}", bad.stderr);
    assert!(listener.accept().is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock), "a connection was made");
}

/// `release --dry-run=client` builds the image here but contacts neither
/// the registry nor the cluster, and starts no registry of its own.
#[test]
fn release_dry_run_client_builds_and_pushes_nothing() {
    let own = tests::OwnDefaults::new();
    let (registry, cluster) =
        (std::net::TcpListener::bind("127.0.0.1:0").unwrap(), std::net::TcpListener::bind("127.0.0.1:0").unwrap());
    registry.set_nonblocking(true).unwrap();
    cluster.set_nonblocking(true).unwrap();
    let target = format!("{}/team/job-test:1.0.0", registry.local_addr().unwrap());
    let url = format!("https://{}", cluster.local_addr().unwrap());
    let dir = tempdir("dry-release");
    let token = tests::write_file(&dir, "token", "a-token-for-nobody-51d2");
    let layout = tempdir("dry-release-layout");
    let password = "dry-run-password-7c1e";
    let mut env = own.env();
    env.extend([("REGISTRY_USERNAME", "dry"), ("REGISTRY_PASSWORD", password)]);
    let r = spawn_xtask(
        &[
            "release",
            "--dry-run=client",
            "--create-pull-secret",
            "--builder",
            "oci",
            "--layout",
            layout.to_str().unwrap(),
            "--image",
            &target,
            "--server",
            &url,
            "--token-file",
            token.to_str().unwrap(),
        ],
        &env,
    )
    .finish_within(Duration::from_secs(300));
    assert_eq!(r.code, Some(0), "{}", r.all());
    // The pull secret is part of what a dry run checks, by name only.
    assert!(r.stdout.contains("secret/job-test-pull-secret checked (client dry run)"), "{}", r.stdout);
    assert!(!r.all().contains(password), "the password was printed:\n{}", r.all());
    let pinned = r.stdout.lines().next().unwrap().strip_prefix("would push ").expect(&r.stdout);
    let pinned = pinned.strip_suffix(" (built here; nothing pushed)").expect(&r.stdout);
    assert!(pinned.starts_with(&format!("{target}@sha256:")), "{}", r.stdout);
    assert!(r.stdout.contains("job.batch/job-test checked (client dry run)"), "{}", r.stdout);
    assert!(!r.stderr.contains("started a local registry"), "{}", r.stderr);
    // The manifests name the image by the digest a push would give it, and
    // a real release's manifests are not overwritten.
    let file = own.target.join("release/job-test.dry-run.yaml");
    let rendered = std::fs::read_to_string(&file).unwrap();
    assert!(rendered.contains(&format!("image: {pinned}")), "{rendered}");
    assert!(rendered.contains("kubernetes.io/dockerconfigjson"), "{rendered}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600, "it holds the credential");
    assert!(!own.target.join("release/job-test.yaml").exists());
    for (what, l) in [("registry", &registry), ("cluster", &cluster)] {
        assert!(l.accept().is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock), "the {what} was contacted");
    }
}

/// `release --dry-run=client` pushes nothing, so without
/// `--create-pull-secret` it needs no registry credential and runs no
/// credential helper (a helper may ask a cloud for a token): the Docker
/// config names a helper that records each call. With
/// `--create-pull-secret`, which needs the credential, it is called.
#[test]
fn release_dry_run_client_runs_no_credential_helper() {
    let own = tests::OwnDefaults::new();
    let registry = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = registry.local_addr().unwrap().to_string();
    let bin = tempdir("spy-helper");
    let calls = bin.join("calls");
    let helper = bin.join("docker-credential-jobtestspy");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh
echo \"$1\" >> '{}'
read host
printf '{{\"Username\":\"spy\",\"Secret\":\"spy-Pa55-4b1e\"}}'
",
            calls.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = tempdir("spy-docker-config");
    std::fs::write(config.join("config.json"), format!(r#"{{"credHelpers":{{"{host}":"jobtestspy"}}}}"#)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let mut env = own.env();
    env.extend([("DOCKER_CONFIG", config.to_str().unwrap()), ("PATH", &path)]);
    let layout = tempdir("spy-layout");
    let target = format!("{host}/team/job-test:1.0.0");
    let args =
        ["release", "--dry-run=client", "--builder", "oci", "--layout", layout.to_str().unwrap(), "--image", &target];
    let r = spawn_xtask(&args, &env).finish_within(Duration::from_secs(300));
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert!(r.stdout.contains("job.batch/job-test checked (client dry run)"), "{}", r.stdout);
    assert!(!calls.exists(), "the credential helper ran: {:?}", std::fs::read_to_string(&calls));
    // The pull secret needs the credential: then the helper is asked, once.
    let r = spawn_xtask(&[&args[..], &["--create-pull-secret"]].concat(), &env).finish_within(Duration::from_secs(300));
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert!(r.stdout.contains("secret/job-test-pull-secret checked (client dry run)"), "{}", r.stdout);
    assert_eq!(std::fs::read_to_string(&calls).unwrap(), "get\n", "the helper was not asked once");
    assert!(!r.all().contains("spy-Pa55-4b1e"), "the credential was printed:\n{}", r.all());
    registry.set_nonblocking(true).unwrap();
    assert!(registry.accept().is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock), "the registry was contacted");
}

fn start_watch(api: &ApiServer, extra: &[&str]) -> tests::Background {
    let k = admin(api);
    let mut args = vec!["watch", "--kubeconfig", k.as_str()];
    args.extend_from_slice(extra);
    let w = spawn_xtask(&args, &[]);
    api.wait_for_watches(2);
    w
}

/// [`start_watch`], under GNU time: its peak memory goes to `peak_file`.
fn start_measured_watch(api: &ApiServer, peak_file: &Path) -> tests::Background {
    let k = admin(api);
    let w = tests::spawn_xtask_measured(&["watch", "--kubeconfig", k.as_str()], &[], peak_file);
    api.wait_for_watches(2);
    w
}

fn put_pod(api: &ApiServer, job: &Value, name: &str, phase: &str, terminated: Option<(i32, &str, &str)>) {
    api.put(objects::pod(&PodSpec { job, name, index: None, phase, terminated, restarts: 0, last_exit_code: None }));
}

#[test]
fn watch_follows_the_job_to_complete_and_reports_the_retries() {
    let api = ApiServer::start();
    assert_eq!(apply(&api, &[]).code, Some(0));
    let j = job(&api);
    let w = start_watch(&api, &[]);
    api.put(objects::running(&j, 2, 0, 0));
    let m1 = objects::worker_message("job-test-aaaaa", 0.03, 0.2, 1);
    let m2 = objects::worker_message("job-test-bbbbb", 0.11, 0.2, 1);
    put_pod(&api, &j, "job-test-aaaaa", "Running", None);
    put_pod(&api, &j, "job-test-aaaaa", "Failed", Some((1, "Error", &m1)));
    put_pod(&api, &j, "job-test-bbbbb", "Failed", Some((1, "Error", &m2)));
    for n in ["ccccc", "ddddd", "eeeee", "fffff", "ggggg"] {
        put_pod(&api, &j, &format!("job-test-{n}"), "Succeeded", Some((0, "Completed", "")));
    }
    w.wait_stderr("pod job-test-ggggg");
    api.put(objects::complete(&j, 5, 2));
    let r = w.finish();
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert!(
        r.stdout.starts_with("job.batch/job-test Complete (Reached expected number of succeeded pods)"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("succeeded 5 of 5, failed pods 2"), "{}", r.stdout);
    assert!(r.stdout.contains(&format!("job-test-aaaaa  exit 1  Error  {m1}")), "{}", r.stdout);
    assert!(
        r.stdout.contains("observed failure rate 2 of 7 runs = 29% (configured FAIL_PROBABILITY 0.2)"),
        "{}",
        r.stdout
    );
    // Live lines while it ran (stderr is not a terminal here).
    assert!(r.stderr.contains("pod job-test-aaaaa") && r.stderr.contains("Failed"), "{}", r.stderr);
    assert_no_token(&r, &[ADMIN_TOKEN]);
}

#[test]
fn watch_ends_with_exit_code_1_when_the_backoff_limit_is_exceeded() {
    let api = ApiServer::start();
    assert_eq!(apply(&api, &[]).code, Some(0));
    let j = job(&api);
    let w = start_watch(&api, &["--output", "json"]);
    for n in ["a1", "a2", "a3", "a4"] {
        put_pod(&api, &j, &format!("job-test-{n}"), "Failed", Some((1, "Error", "job-worker: simulated failure")));
    }
    put_pod(&api, &j, "job-test-s1", "Succeeded", Some((0, "Completed", "")));
    api.put(objects::failed(&j, "BackoffLimitExceeded", "Job has reached the specified backoff limit", 1, 4));
    let r = w.finish();
    assert_eq!(r.code, Some(1), "{}", r.all());
    let report: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(report["result"], "Failed");
    assert_eq!(report["reason"], "BackoffLimitExceeded");
    assert_eq!((report["failed_pods"].as_i64(), report["succeeded"].as_i64()), (Some(4), Some(1)));
    assert_eq!(report["pods"].as_array().unwrap().len(), 5);
    assert!(r.stderr.contains("error: job.batch/job-test failed: BackoffLimitExceeded"), "{}", r.stderr);
}

/// `watch --html`: the page a browser opens has a bar per pod of the
/// report, failed and succeeded as the report says.
#[test]
fn watch_html_draws_a_bar_per_pod_of_the_report() {
    let api = ApiServer::start();
    assert_eq!(apply(&api, &[]).code, Some(0));
    let j = job(&api);
    let dir = tempdir("watch-html");
    let page = dir.join("watch.html");
    let w = start_watch(&api, &["--output", "json", "--html", page.to_str().unwrap()]);
    for n in ["a1", "a2"] {
        put_pod(&api, &j, &format!("job-test-{n}"), "Failed", Some((1, "Error", "job-worker: simulated failure")));
    }
    put_pod(&api, &j, "job-test-s1", "Succeeded", Some((0, "Completed", "")));
    api.put(objects::failed(&j, "BackoffLimitExceeded", "Job has reached the specified backoff limit", 1, 2));
    let r = w.finish();
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert!(r.stderr.contains(&format!("wrote {} (", page.display())), "{}", r.stderr);
    let report: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    let mut expected: Vec<(String, String)> = report["pods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap().to_owned(), p["phase"].as_str().unwrap().to_lowercase()))
        .collect();
    expected.sort();
    let mut shown: Vec<(String, String)> =
        tests::browser::bars(&tests::browser::open(&page).dom).into_iter().map(|b| (b.pod, b.outcome)).collect();
    shown.sort();
    assert_eq!(shown, expected);
    assert_eq!(shown.len(), 3);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn watch_reports_deadline_exceeded() {
    let api = ApiServer::start();
    assert_eq!(apply(&api, &["--failure-mode", "hang"]).code, Some(0));
    let j = job(&api);
    let w = start_watch(&api, &[]);
    put_pod(
        &api,
        &j,
        "job-test-h1",
        "Failed",
        Some((143, "Error", "job-worker: terminated by SIGTERM after 10m while hanging")),
    );
    api.put(objects::failed(&j, "DeadlineExceeded", "Job was active longer than specified deadline", 0, 1));
    let r = w.finish();
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert!(
        r.stdout
            .starts_with("job.batch/job-test Failed: DeadlineExceeded (Job was active longer than specified deadline)"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("exit 143"), "{}", r.stdout);
}

#[test]
fn the_verdict_comes_as_soon_as_the_failure_target_is_set() {
    let api = ApiServer::start();
    assert_eq!(apply(&api, &[]).code, Some(0));
    let j = job(&api);
    let w = start_watch(&api, &[]);
    put_pod(&api, &j, "job-test-x1", "Running", None);
    api.put(objects::failure_target(
        &j,
        "BackoffLimitExceeded",
        "Job has reached the specified backoff limit",
        0,
        4,
        1,
    ));
    w.wait_stderr("verdict: the Job has failed (BackoffLimitExceeded); waiting for its pods to terminate");
    // Still watching: the Job is not Failed until its last pod has gone.
    put_pod(&api, &j, "job-test-x1", "Failed", Some((143, "Error", "job-worker: terminated by SIGTERM")));
    api.put(objects::failed(&j, "BackoffLimitExceeded", "Job has reached the specified backoff limit", 0, 5));
    let r = w.finish();
    assert_eq!(r.code, Some(1));
    assert!(r.stdout.contains("failed pods 5"), "{}", r.stdout);
}

/// The Job with a status of these conditions (type, reason, message),
/// in this order, and these index strings.
fn with_conditions(j: &Value, conditions: &[(&str, &str, &str)], indexes: Value) -> Value {
    let t = "2026-01-01T00:00:00Z";
    let conditions: Vec<Value> = conditions
        .iter()
        .map(|(kind, reason, message)| {
            serde_json::json!({ "type": kind, "status": "True", "reason": reason, "message": message,
                                "lastProbeTime": t, "lastTransitionTime": t })
        })
        .collect();
    let mut status = serde_json::json!({
        "startTime": t, "active": 0, "ready": 0, "succeeded": 2, "failed": 4, "terminating": 0,
        "uncountedTerminatedPods": {}, "conditions": conditions,
    });
    for (k, v) in indexes.as_object().unwrap() {
        status[k] = v.clone();
    }
    objects::with_status(j, status)
}

#[test]
fn watch_reports_the_conditions_in_the_order_they_came_and_the_index_strings() {
    let api = ApiServer::start();
    assert_eq!(
        apply(&api, &["--completion-mode", "Indexed", "--completions", "4", "--backoff-limit-per-index", "1"]).code,
        Some(0)
    );
    let j = job(&api);
    let w = start_watch(&api, &["--output", "json"]);
    let failed = "Job has failed indexes";
    api.put(with_conditions(
        &j,
        &[("FailureTarget", "FailedIndexes", failed), ("Failed", "FailedIndexes", failed)],
        serde_json::json!({ "completedIndexes": "0,2", "failedIndexes": "1,3" }),
    ));
    let r = w.finish();
    assert_eq!(r.code, Some(1), "{}", r.all());
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    let kinds: Vec<(&str, &str)> = v["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["type"].as_str().unwrap(), c["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(kinds, [("FailureTarget", "FailedIndexes"), ("Failed", "FailedIndexes")]);
    assert_eq!((v["completed_indexes"].as_str(), v["failed_indexes"].as_str()), (Some("0,2"), Some("1,3")));
    assert_eq!(v["terminating"], 0);
    assert!(r.stderr.contains("managed by the built-in Job controller"), "{}", r.stderr);

    // SuccessCriteriaMet, then Complete: in that order, in the text too.
    let api = ApiServer::start();
    assert_eq!(apply(&api, &["--completion-mode", "Indexed", "--completions", "3"]).code, Some(0));
    let j = job(&api);
    let w = start_watch(&api, &[]);
    let reached = "Reached expected number of succeeded pods";
    api.put(with_conditions(
        &j,
        &[("SuccessCriteriaMet", "CompletionsReached", reached), ("Complete", "CompletionsReached", reached)],
        serde_json::json!({ "completedIndexes": "0-2" }),
    ));
    let r = w.finish();
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert!(
        r.stdout.contains("conditions: SuccessCriteriaMet (CompletionsReached), Complete (CompletionsReached)"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("completed indexes 0-2; failed indexes none"), "{}", r.stdout);
}

#[test]
fn a_job_managed_by_another_controller_is_reported_as_such() {
    let api = ApiServer::start();
    assert_eq!(apply(&api, &[]).code, Some(0));
    let mut j = job(&api);
    j["spec"]["managedBy"] = "kueue.x-k8s.io/multikueue".into();
    api.put(j.clone());
    let w = start_watch(&api, &["--output", "json"]);
    api.put(objects::complete(&j, 1, 0));
    let r = w.finish();
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert!(
        r.stderr.contains(
            "managed by kueue.x-k8s.io/multikueue (spec.managedBy), not the built-in Job controller: its status is \
             what kueue.x-k8s.io/multikueue writes"
        ),
        "{}",
        r.stderr
    );
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["managed_by"], "kueue.x-k8s.io/multikueue");
}

#[test]
fn the_watch_resumes_after_the_stream_is_cut() {
    let api = ApiServer::start();
    assert_eq!(apply(&api, &[]).code, Some(0));
    let j = job(&api);
    let w = start_watch(&api, &[]);
    put_pod(&api, &j, "job-test-before", "Failed", Some((1, "Error", "before the cut")));
    w.wait_stderr("pod job-test-before");
    let watches_before = api.requests().iter().filter(|r| r.query.contains("watch=true")).count();
    api.cut_watches();
    // Both watches come back, from where they were.
    let start = std::time::Instant::now();
    while api.requests().iter().filter(|r| r.query.contains("watch=true")).count() < watches_before + 2 {
        assert!(start.elapsed() < std::time::Duration::from_secs(30), "the watches did not resume");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let resumed: Vec<_> =
        api.requests().into_iter().filter(|r| r.query.contains("watch=true")).skip(watches_before).collect();
    for r in &resumed {
        let rv = r.query.split('&').find_map(|kv| kv.strip_prefix("resourceVersion=")).unwrap_or("0");
        assert_ne!(rv, "0", "a resumed watch starts from its last resourceVersion: {r:?}");
    }
    put_pod(&api, &j, "job-test-after", "Succeeded", Some((0, "Completed", "")));
    w.wait_stderr("pod job-test-after");
    api.put(objects::complete(&j, 1, 1));
    let r = w.finish();
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert!(r.stdout.contains("job-test-before  exit 1  Error  before the cut"), "{}", r.stdout);
    assert!(r.stdout.contains("succeeded 1 of 5, failed pods 1"), "{}", r.stdout);
}

#[test]
fn watch_timeout_exits_5() {
    let api = ApiServer::start();
    assert_eq!(apply(&api, &[]).code, Some(0));
    let k = admin(&api);
    let r = run_xtask(&["watch", "--kubeconfig", &k, "--timeout", "1s"], &[]);
    assert_eq!(r.code, Some(5), "{}", r.all());
    assert!(r.stderr.contains("gave up after 1s"), "{}", r.stderr);
}

#[test]
fn pods_with_a_token_and_the_cluster_ca_prints_the_tutorials_lines() {
    let api = ApiServer::start();
    assert_eq!(apply(&api, &[]).code, Some(0));
    let j = job(&api);
    put_pod(&api, &j, "job-test-p1", "Running", None);
    put_pod(&api, &j, "job-test-p2", "Succeeded", Some((0, "Completed", "")));
    let dir = tempdir("pods");
    let token = tests::write_file(&dir, "token", ADMIN_TOKEN);
    let (t, ca) = (token.display().to_string(), api.ca_path.display().to_string());
    let r = run_xtask(&["pods", "--server", &api.url, "--token-file", &t, "--ca-cert", &ca, "-n", NS], &[]);
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert_eq!(r.stdout, "Number of pods = 2\npod name = job-test-p1\npod name = job-test-p2\n");
    assert_no_token(&r, &[ADMIN_TOKEN]);
    // The token may come from KUBE_TOKEN too.
    let r = run_xtask(
        &["--output", "json", "pods", "--server", &api.url, "--ca-cert", &ca, "-n", NS],
        &[("KUBE_TOKEN", ADMIN_TOKEN)],
    );
    assert_eq!(r.code, Some(0), "{}", r.all());
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["count"], 2);
}

#[test]
fn without_the_cluster_ca_the_trust_error_says_how_to_get_it() {
    let api = ApiServer::start();
    let dir = tempdir("no-ca");
    let token = tests::write_file(&dir, "token", ADMIN_TOKEN);
    let t = token.display().to_string();
    let r = run_xtask(&["pods", "--server", &api.url, "--token-file", &t, "-n", NS], &[]);
    assert_eq!(r.code, Some(4), "{}", r.all());
    assert!(r.stderr.contains("is not trusted"), "{}", r.stderr);
    assert!(r.stderr.contains("pass --ca-cert FILE with the cluster's CA"), "{}", r.stderr);
    assert!(r.stderr.contains(".data.ca\\.crt"), "{}", r.stderr);
    assert_no_token(&r, &[ADMIN_TOKEN]);
    // The same from a kubeconfig without the CA.
    let k = api.kubeconfig(Some(ADMIN_TOKEN), false, NS).display().to_string();
    let r = run_xtask(&["pods", "--kubeconfig", &k], &[]);
    assert_eq!(r.code, Some(4), "{}", r.all());
    assert!(r.stderr.contains("is not trusted"), "{}", r.stderr);
    // Skipping verification works, and warns.
    let r = run_xtask(&["pods", "--server", &api.url, "--token-file", &t, "--insecure-skip-tls-verify", "-n", NS], &[]);
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert!(r.stderr.contains("warning: --insecure-skip-tls-verify"), "{}", r.stderr);
}

#[test]
fn no_token_or_a_wrong_one_is_a_401_with_the_fix() {
    let api = ApiServer::start();
    let ca = api.ca_path.display().to_string();
    // No token at all, or an empty file: refused before anything is sent.
    let r = run_xtask(&["pods", "--server", &api.url, "--ca-cert", &ca, "-n", NS], &[]);
    assert_eq!(r.code, Some(2), "{}", r.all());
    assert!(r.stderr.contains("with no token: pass --token-file FILE or set KUBE_TOKEN"), "{}", r.stderr);
    let r = run_xtask(&["pods", "--server", &api.url, "--ca-cert", &ca, "--token-file", "/dev/null", "-n", NS], &[]);
    assert_eq!(r.code, Some(2), "{}", r.all());
    assert!(r.stderr.contains("--token-file /dev/null: the file is empty"), "{}", r.stderr);
    assert!(api.requests().is_empty(), "a request was sent: {:?}", api.requests());
    let dir = tempdir("wrong-token");
    let wrong = "eyJ-wrong-token-5e1d0a";
    let token = tests::write_file(&dir, "token", wrong);
    let r = run_xtask(
        &["pods", "--server", &api.url, "--ca-cert", &ca, "--token-file", &token.display().to_string(), "-n", NS],
        &[],
    );
    assert_eq!(r.code, Some(4));
    assert!(r.stderr.contains("401 Unauthorized"));
    assert!(r.stderr.contains("the token is missing, wrong or expired"), "{}", r.stderr);
    assert_no_token(&r, &[wrong]);
}

/// `auth` as the admin; returns the service account's kubeconfig and token.
fn auth(api: &ApiServer, extra: &[&str]) -> (PathBuf, String, Finished) {
    let k = admin(api);
    let out = tempdir("auth").join("reader.kubeconfig");
    let o = out.display().to_string();
    let mut args = vec!["auth", "--kubeconfig", k.as_str(), "--write-kubeconfig", o.as_str()];
    args.extend_from_slice(extra);
    let r = run_xtask(&args, &[]);
    assert_eq!(r.code, Some(0), "{}", r.all());
    let token = api
        .state
        .lock()
        .unwrap()
        .tokens
        .iter()
        .find(|(_, id)| matches!(id, Identity::ServiceAccount { name, .. } if name == "job-test-pod-reader"))
        .map(|(t, _)| t.clone())
        .expect("the token controller issued a token");
    (out, token, r)
}

#[test]
fn auth_writes_a_working_0600_kubeconfig_without_printing_the_token() {
    let api = ApiServer::start();
    let (kubeconfig, token, r) = auth(&api, &[]);
    assert_no_token(&r, &[&token, ADMIN_TOKEN]);
    assert!(r.stdout.contains("secret/job-test-pod-reader-token created"), "{}", r.stdout);
    assert!(
        r.stdout.contains(&format!("use it: cargo xtask pods --kubeconfig {} -n job-test", kubeconfig.display())),
        "{}",
        r.stdout
    );
    let mode = std::fs::metadata(&kubeconfig).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let text = std::fs::read_to_string(&kubeconfig).unwrap();
    assert!(text.contains(&api.url) && text.contains("certificate-authority-data"), "{text}");
    // The service account lists pods with it: TLS verified with the CA from the Secret.
    let k = kubeconfig.display().to_string();
    let pods = run_xtask(&["pods", "--kubeconfig", &k, "-n", NS], &[]);
    assert_eq!(pods.code, Some(0), "{}", pods.all());
    assert_eq!(pods.stdout, "Number of pods = 0\n");
    assert_no_token(&pods, &[&token]);
    // The token only when asked.
    let (_, _, shown) = auth(&api, &["--print-token"]);
    assert!(shown.stdout.contains("token: eyJ"), "{}", shown.stdout);
}

#[test]
fn a_token_that_rbac_refuses_gets_a_403_naming_verb_resource_and_namespace() {
    let api = ApiServer::start();
    assert_eq!(apply(&api, &[]).code, Some(0));
    let (kubeconfig, token, _) = auth(&api, &[]);
    let k = kubeconfig.display().to_string();
    // The reader may list pods and read logs, not delete Jobs...
    let r = run_xtask(&["delete", "--kubeconfig", &k], &[]);
    assert_eq!(r.code, Some(4), "{}", r.all());
    assert!(r.stderr.contains("RBAC refused it (403 Forbidden)"), "{}", r.stderr);
    assert!(
        r.stderr.contains("jobs.batch \"job-test\" is forbidden: User \"system:serviceaccount:job-test:job-test-pod-reader\" cannot get resource \"jobs\" in API group \"batch\" in the namespace \"job-test\""),
        "{}",
        r.stderr
    );
    assert_no_token(&r, &[&token]);
    // ...nor list pods in another namespace.
    let r = run_xtask(&["pods", "--kubeconfig", &k, "-n", "kube-system"], &[]);
    assert_eq!(r.code, Some(4));
    assert!(
        r.stderr.contains("cannot list resource \"pods\" in API group \"\" in the namespace \"kube-system\""),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("A Role in namespace kube-system allowing `list` on `pods`"), "{}", r.stderr);
    // With --cluster-wide it may.
    let (cluster_wide, _, _) = auth(&api, &["--cluster-wide"]);
    let r = run_xtask(&["pods", "--kubeconfig", &cluster_wide.display().to_string(), "-n", "kube-system"], &[]);
    assert_eq!(r.code, Some(0), "{}", r.all());
}

#[test]
fn logs_of_every_pod_failed_and_restarted_ones_included() {
    let api = ApiServer::start();
    assert_eq!(apply(&api, &["--restart-policy", "OnFailure"]).code, Some(0));
    let j = job(&api);
    api.put(objects::pod(&PodSpec {
        job: &j,
        name: "job-test-r1",
        index: None,
        phase: "Running",
        terminated: None,
        restarts: 1,
        last_exit_code: Some(1),
    }));
    put_pod(&api, &j, "job-test-f1", "Failed", Some((1, "Error", "failed")));
    api.set_log(NS, "job-test-r1", true, "start attempt=0\noutcome result=failure\n");
    api.set_log(NS, "job-test-r1", false, "start attempt=1\noutcome result=success\n");
    api.set_log(NS, "job-test-f1", false, "start attempt=0\noutcome result=failure\n");
    let k = admin(&api);
    let r = run_xtask(&["logs", "--kubeconfig", &k], &[]);
    assert_eq!(r.code, Some(0), "{}", r.all());
    let lines: Vec<&str> = r.stdout.lines().collect();
    // Oldest pod first; these two were created in the same second, so by name.
    assert_eq!(
        lines,
        [
            "job-test-f1: start attempt=0",
            "job-test-f1: outcome result=failure",
            "job-test-r1 (previous): start attempt=0",
            "job-test-r1 (previous): outcome result=failure",
            "job-test-r1: start attempt=1",
            "job-test-r1: outcome result=success",
        ]
    );
}

#[test]
fn delete_removes_the_job_and_its_pods() {
    let api = ApiServer::start();
    assert_eq!(apply(&api, &[]).code, Some(0));
    let j = job(&api);
    put_pod(&api, &j, "job-test-d1", "Failed", Some((1, "Error", "x")));
    put_pod(&api, &j, "job-test-d2", "Running", None);
    let k = admin(&api);
    let r = run_xtask(&["delete", "--kubeconfig", &k], &[]);
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert_eq!(r.stdout.trim(), "job.batch/job-test deleted, with its 2 pods");
    assert!(api.get("jobs", Some(NS), "job-test").is_none());
    assert!(api.list("pods", Some(NS)).is_empty());
    let r = run_xtask(&["delete", "--kubeconfig", &k], &[]);
    assert_eq!(r.stdout.trim(), "job.batch/job-test was not there: nothing to delete");
}

#[test]
fn release_runs_the_job_locally_without_a_cluster_and_on_the_cluster_with_one() {
    // The test's own target directory and registry address: the user's
    // target/release/ and registry on 127.0.0.1:5000 are never touched.
    let own = tests::OwnDefaults::new();
    let layout = tempdir("release-layout");
    let l = layout.display().to_string();

    // No cluster configured: build, push to the local default registry,
    // render with the pinned image, then run that Job on the local Docker
    // engine and report it; exit 0 (no pod fails: probability 0).
    let home = tempdir("release-home");
    let h = home.display().to_string();
    let mut env = own.env();
    env.push(("HOME", &h));
    let r = spawn_xtask(
        &["release", "--builder", "oci", "--layout", &l, "--fail-probability", "0", "--time-scale", "0.01"],
        &env,
    )
    .finish_within(Duration::from_secs(300));
    let pinned = r.stdout.lines().next().unwrap_or_default().to_owned();
    if pinned.contains('@') {
        // The local run pulled the pinned image into the daemon.
        tests::remove_pulled_at_exit(&pinned);
    }
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert!(r.stderr.contains("no cluster is configured"), "{}", r.stderr);
    assert!(r.stderr.contains("4/5 run on the local Docker engine"), "{}", r.stderr);
    assert!(!r.stderr.contains("4/5 apply"), "{}", r.stderr);
    assert!(r.stdout.contains("ran on the local Docker engine, not a cluster"), "{}", r.stdout);
    // Run by the newest version's rules: Complete says CompletionsReached.
    assert!(
        r.stdout.contains(
            "job.batch/job-test Complete (Reached expected number of succeeded pods)\n  succeeded 5 of 5, failed pods 0"
        ),
        "{}",
        r.stdout
    );
    // The release pins the image itself: no warning that it is not pinned.
    assert!(!r.stderr.contains("not pinned by digest"), "{}", r.stderr);
    assert!(pinned.starts_with(&format!("{}/job-test:0.1.0@sha256:", own.registry)), "{pinned}");
    assert!(r.stderr.contains(&format!("started a local registry on {}", own.registry)), "{}", r.stderr);
    let rendered = std::fs::read_to_string(own.target.join("release/job-test.yaml")).unwrap();
    assert!(
        rendered.contains(&format!("image: {pinned}")) && rendered.contains("imagePullPolicy: IfNotPresent"),
        "{rendered}"
    );

    // With a cluster: applied with the pinned image, watched to the end.
    let api = ApiServer::start();
    let k = admin(&api);
    let w = spawn_xtask(
        &["release", "--builder", "oci", "--layout", &l, "--kubeconfig", &k, "--completions", "2"],
        &own.env(),
    );
    // The build (both platforms' workers, in the test's own target
    // directory) comes first and takes minutes on a loaded machine.
    w.wait_stderr_within("5/5 watch", Duration::from_secs(300));
    api.wait_for_watches(2);
    let j = job(&api);
    assert_eq!(j["spec"]["template"]["spec"]["containers"][0]["image"], pinned.as_str());
    put_pod(&api, &j, "job-test-r1", "Failed", Some((1, "Error", "job-worker: simulated failure")));
    put_pod(&api, &j, "job-test-r2", "Succeeded", Some((0, "Completed", "")));
    put_pod(&api, &j, "job-test-r3", "Succeeded", Some((0, "Completed", "")));
    api.put(objects::complete(&j, 2, 1));
    let r = w.finish();
    assert_eq!(r.code, Some(0), "{}", r.all());
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], pinned);
    assert!(lines.contains(&"job.batch/job-test created"), "{}", r.stdout);
    assert!(r.stdout.contains("job.batch/job-test Complete"), "{}", r.stdout);
    assert!(
        r.stdout.contains("observed failure rate 1 of 3 runs = 33% (configured FAIL_PROBABILITY 0.2)"),
        "{}",
        r.stdout
    );
    for step in ["1/5 build", "2/5 push", "3/5 render", "4/5 apply", "5/5 watch"] {
        assert!(r.stderr.contains(step), "{step} missing:\n{}", r.stderr);
    }
    assert_no_token(&r, &[ADMIN_TOKEN]);
}

#[test]
fn an_unreachable_server_is_named_in_the_error() {
    let api = ApiServer::start();
    let ca = api.ca_path.display().to_string();
    // A port nothing listens on.
    let port = tests::free_port();
    let server = format!("https://127.0.0.1:{port}");
    let r = run_xtask(&["pods", "--server", &server, "--ca-cert", &ca, "-n", NS], &[("KUBE_TOKEN", ADMIN_TOKEN)]);
    assert_eq!(r.code, Some(4), "{}", r.all());
    assert!(r.stderr.contains(&format!("nothing answers at {server} (connection refused)")), "{}", r.stderr);
    let r = run_xtask(&["pods", "--server", "http://127.0.0.1:6443"], &[]);
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("the API server is reached over https"), "{}", r.stderr);
    assert_no_token(&r, &[ADMIN_TOKEN]);
}

#[test]
fn on_a_terminal_watch_keeps_a_live_table() {
    let api = ApiServer::start();
    assert_eq!(apply(&api, &[]).code, Some(0));
    let j = job(&api);
    put_pod(&api, &j, "job-test-t1", "Failed", Some((1, "Error", "job-worker: simulated failure")));
    put_pod(&api, &j, "job-test-t2", "Running", None);
    let k = admin(&api);
    let script = std::thread::spawn(move || tests::xtask_on_terminal(&["watch", "--kubeconfig", &k], &[]));
    api.wait_for_watches(2);
    put_pod(&api, &j, "job-test-t2", "Succeeded", Some((0, "Completed", "")));
    api.put(objects::failed(&j, "BackoffLimitExceeded", "Job has reached the specified backoff limit", 1, 1));
    let screen = script.join().unwrap();
    assert!(screen.contains("POD                          PHASE"), "{screen:?}");
    assert!(screen.contains("job-test-t1                  Failed"), "{screen:?}");
    // Redrawn in place: cursor up, clear to the end of the screen.
    assert!(screen.contains("\x1b[J"), "{screen:?}");
    assert!(screen.contains("job.batch/job-test Failed: BackoffLimitExceeded"), "{screen:?}");
}

/// A large Job: 10,000 completions at parallelism 500. Pods run in a
/// window of 500 (a pod ends when the 500th after it starts); one pod in
/// a hundred fails, exit 1 or OOMKilled 137, and another takes its place.
#[test]
fn watch_keeps_up_with_ten_thousand_pods_and_summarises() {
    const COMPLETIONS: usize = 10_000;
    const PARALLELISM: usize = 500;
    /// The live table lists pods one by one up to this many
    /// (`report::pod_table::TABLE_ROWS`).
    const TABLE_ROWS: usize = 30;
    let api = ApiServer::start();
    let flags = ["--completions", "10000", "--parallelism", "500", "--backoff-limit", "1000"];
    assert_eq!(apply(&api, &flags).code, Some(0));
    let j = job(&api);
    let peak_file = tempdir("watch-peak").join("peak-rss-kib");
    let w = start_measured_watch(&api, &peak_file);
    let started = std::time::Instant::now();
    api.put(objects::running(&j, PARALLELISM as i32, 0, 0));
    let name = |n: usize| format!("job-test-{n:05}");
    let fails = |n: usize| n % 100 == 50;
    let end = |n: usize| {
        let pod = name(n);
        match (fails(n), (n / 100) % 3) {
            (false, _) => put_pod(&api, &j, &pod, "Succeeded", Some((0, "Completed", ""))),
            (true, 0) => put_pod(&api, &j, &pod, "Failed", Some((137, "OOMKilled", ""))),
            (true, _) => {
                put_pod(&api, &j, &pod, "Failed", Some((1, "Error", &objects::worker_message(&pod, 0.001, 0.2, 1))))
            }
        }
    };
    let (mut pods, mut succeeded) = (0, 0);
    while succeeded < COMPLETIONS {
        if !fails(pods) {
            succeeded += 1;
        }
        put_pod(&api, &j, &name(pods), "Running", None);
        if pods >= PARALLELISM {
            end(pods - PARALLELISM);
        }
        pods += 1;
    }
    for n in pods.saturating_sub(PARALLELISM)..pods {
        end(n);
    }
    let put_all = started.elapsed();
    let failed: Vec<usize> = (0..pods).filter(|&n| fails(n)).collect();
    // The watch keeps up: it shows the last failure soon after it happened
    // (the Job's own watch would otherwise end it before the pods' caught up).
    w.wait_stderr_within(&format!("pod {} ", name(*failed.last().unwrap())), Duration::from_secs(120));
    let caught_up = started.elapsed();
    api.put(objects::complete(&j, COMPLETIONS as i32, failed.len() as i32));
    let r = w.finish_within(Duration::from_secs(120));
    let took = started.elapsed();
    let rss = tests::peak_rss_kib(&peak_file);
    eprintln!(
        "watch of {pods} pods ({} pod events): all put after {put_all:?}, the last failure shown after \
         {caught_up:?}, watch done after {took:?}; its peak RSS {rss} KiB, CPU {:?} s",
        2 * pods,
        r.cpu_seconds
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);

    // The report counts every pod and lists ten failed runs, then the rest
    // by exit code.
    assert!(r.stdout.starts_with("job.batch/job-test Complete"), "{}", r.stdout);
    assert!(r.stdout.contains(&format!("succeeded 10000 of 10000, failed pods {}", failed.len())), "{}", r.stdout);
    assert!(r.stdout.contains(&format!("\n    {}  exit 137  OOMKilled", name(failed[0]))), "{}", r.stdout);
    let oom = failed[10..].iter().filter(|&&n| (n / 100) % 3 == 0).count();
    let rest = failed.len() - 10;
    assert!(
        r.stdout.contains(&format!(
            "\n    and {rest} more (exit 1 ×{}, 137 ×{oom}); `--output json` lists every pod",
            rest - oom
        )),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains(&format!("observed failure rate {} of {pods} runs = 1%", failed.len())), "{}", r.stdout);
    assert!(r.stdout.lines().count() < 20, "{}", r.stdout);

    // The log (stderr is not a terminal): the first pods one by one, then
    // only the failed ones, and lines of counts.
    let pod_lines: Vec<&str> = r.stderr.lines().filter(|l| l.starts_with("pod ")).collect();
    assert!(pod_lines.len() <= TABLE_ROWS + failed.len(), "{} pod lines:\n{}", pod_lines.len(), r.stderr);
    assert!(!pod_lines.iter().any(|l| l.contains(" Succeeded ")), "{}", r.stderr);
    for n in &failed {
        assert!(pod_lines.iter().any(|l| l.starts_with(&format!("pod {} ", name(*n)))), "{}", r.stderr);
    }
    assert!(
        r.stderr.contains(&format!(
            "{} pods: {} Running; more than {TABLE_ROWS} pods: from now on only pods with failed runs are listed, \
             and these counts every 5s",
            TABLE_ROWS + 1,
            TABLE_ROWS + 1
        )),
        "{}",
        r.stderr
    );
    let last = r.stderr.lines().rev().find(|l| l.contains(" pods: ")).unwrap();
    assert!(last.starts_with(&format!("{pods} pods: ")), "{}", r.stderr);

    // Memory stays bounded: the watch keeps a row per pod (a few hundred
    // bytes) and reads the final list in pages of 500, never ten thousand
    // Pod objects at once. Measured here: 44 MB paged, 197 MB when the
    // list came in one piece; the bound leaves room for other allocators
    // and builds and still catches the one-piece list.
    assert!(rss < 100 * 1024, "peak RSS {rss} KiB");
}

#[test]
fn apply_takes_files_and_says_what_it_did_not_apply() {
    let api = ApiServer::start();
    let dir = tempdir("apply-files");
    let file = dir.join("all.yaml");
    let r = run_xtask(&["render", "--out", file.to_str().unwrap(), "--name", "from-file"], &[]);
    assert_eq!(r.code, Some(0), "{}", r.all());
    let k = admin(&api);
    let r = run_xtask(&["apply", "--kubeconfig", &k, "-f", file.to_str().unwrap()], &[]);
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert!(r.stdout.contains("job.batch/from-file created"), "{}", r.stdout);
    assert!(api.get("jobs", Some(NS), "from-file").is_some());

    // Not a manifest: refused before anything is sent.
    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\n").unwrap();
    let r = run_xtask(&["apply", "--kubeconfig", &k, "-f", bad.to_str().unwrap()], &[]);
    assert_eq!(r.code, Some(2), "{}", r.all());
    assert!(
        r.stderr.contains(&format!("-f {}: Deployment x: kind Deployment is not one this tool reads", bad.display())),
        "{}",
        r.stderr
    );

    // A reader may not apply: the first refusal stops it, and it says so.
    let (reader, _, _) = auth(&api, &[]);
    let r = run_xtask(&["apply", "--kubeconfig", reader.to_str().unwrap(), "-f", file.to_str().unwrap()], &[]);
    assert_eq!(r.code, Some(4), "{}", r.all());
    assert!(r.stderr.contains("apply stopped: 0 applied (nothing); not applied: namespace/job-test, "), "{}", r.stderr);
    assert!(r.stderr.contains("RBAC refused it (403 Forbidden)"), "{}", r.stderr);
}

/// One rule: what acts on job-test's own objects works in job-test whatever
/// the kubeconfig context names; `pods` lists the context's namespace, as
/// `kubectl get pods` does (else `default`).
#[test]
fn job_commands_default_to_job_test_and_pods_to_the_contexts_namespace() {
    let api = ApiServer::start();
    let k = api.kubeconfig(Some(ADMIN_TOKEN), true, "elsewhere").display().to_string();
    let r = run_xtask(&["apply", "--kubeconfig", &k], &[]);
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert!(api.get("jobs", Some(NS), "job-test").is_some(), "apply did not use job-test");
    assert!(api.get("jobs", Some("elsewhere"), "job-test").is_none());
    let r = run_xtask(&["--output", "json", "pods", "--kubeconfig", &k], &[]);
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert_eq!(serde_json::from_str::<Value>(&r.stdout).unwrap()["namespace"], "elsewhere", "{}", r.stdout);
    let r = run_xtask(&["--output", "json", "pods", "--kubeconfig", &k, "-n", NS], &[]);
    assert_eq!(serde_json::from_str::<Value>(&r.stdout).unwrap()["namespace"], NS, "{}", r.stdout);
    // --server has no context: `default`, as kubectl.
    let dir = tempdir("ns-rule");
    let t = tests::write_file(&dir, "token", ADMIN_TOKEN).display().to_string();
    let ca = api.ca_path.display().to_string();
    let r = run_xtask(&["--output", "json", "pods", "--server", &api.url, "--token-file", &t, "--ca-cert", &ca], &[]);
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert_eq!(serde_json::from_str::<Value>(&r.stdout).unwrap()["namespace"], "default", "{}", r.stdout);
    // delete finds the Job in job-test, not in the context's namespace.
    let r = run_xtask(&["delete", "--kubeconfig", &k], &[]);
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert!(api.get("jobs", Some(NS), "job-test").is_none(), "delete did not use job-test");
    // And the help says so.
    let help = run_xtask(&["pods", "--help"], &[]).stdout;
    assert!(help.contains("Default: the kubeconfig context's namespace, else \"default\""), "{help}");
    let help = run_xtask(&["watch", "--help"], &[]).stdout;
    assert!(
        help.contains("job-test, where `render` and `apply` put it, whatever the kubeconfig context names"),
        "{help}"
    );
}

const PULL_USER: &str = "puller";
/// Distinctive, so that every output can be searched for it.
const PULL_PASSWORD: &str = "pull-Pa55w0rd-7e2d41";
const PRIVATE_IMAGE: &str = "registry.example:5000/team/job-test:1.0.0";

/// Every form of the pull credential that an output must never show: the
/// password, `user:password` in base64, and the Secret's data as stored.
fn assert_no_pull_credential(run: &Finished, stored: &[String]) {
    use base64::Engine;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{PULL_USER}:{PULL_PASSWORD}"));
    for needle in [PULL_PASSWORD, auth.as_str()].into_iter().chain(stored.iter().map(String::as_str)) {
        assert!(!run.all().contains(needle), "the pull credential was printed ({needle}):\n{}", run.all());
    }
}

/// `cargo xtask ARGS --image PRIVATE_IMAGE --create-pull-secret`, with
/// `stdin` as standard input when given.
fn with_pull_secret(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Finished {
    let all = [args, &["--image", PRIVATE_IMAGE, "--create-pull-secret"]].concat();
    let out = tests::xtask_with(&all, env, stdin);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    Finished { code: out.status.code(), stdout: text(&out.stdout), stderr: text(&out.stderr), cpu_seconds: None }
}

#[test]
fn create_pull_secret_applies_the_credential_before_the_job_and_never_prints_it() {
    use base64::Engine;
    let api = ApiServer::start();
    let creds = [("REGISTRY_USERNAME", PULL_USER), ("REGISTRY_PASSWORD", PULL_PASSWORD)];
    let k = admin(&api);
    let r = with_pull_secret(&["apply", "--kubeconfig", &k], &creds, None);
    assert_eq!(r.code, Some(0), "{}", r.all());
    // Named only, before the NetworkPolicy and the Job.
    let lines: Vec<&str> = r.stdout.lines().collect();
    let at = lines.iter().position(|l| *l == "secret/job-test-pull-secret created").expect("the secret, by name");
    assert!(at < lines.iter().position(|l| l.starts_with("job.batch/")).unwrap(), "{}", r.stdout);
    assert!(
        r.stderr.contains(
            "secret/job-test-pull-secret: a pull secret for registry.example:5000 from REGISTRY_USERNAME and \
             REGISTRY_PASSWORD"
        ),
        "{}",
        r.stderr
    );
    let secret = api.get("secrets", Some(NS), "job-test-pull-secret").expect("the pull secret was applied");
    assert_eq!(secret["type"], "kubernetes.io/dockerconfigjson");
    let data = secret["data"][".dockerconfigjson"].as_str().unwrap().to_owned();
    let config: Value =
        serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(&data).unwrap()).unwrap();
    let entry = &config["auths"]["registry.example:5000"];
    assert_eq!((entry["username"].as_str(), entry["password"].as_str()), (Some(PULL_USER), Some(PULL_PASSWORD)));
    let stored = [data.clone(), entry["auth"].as_str().unwrap().to_owned()];
    assert_eq!(
        job(&api)["spec"]["template"]["spec"]["imagePullSecrets"],
        serde_json::json!([{ "name": "job-test-pull-secret" }])
    );
    assert_no_pull_credential(&r, &stored);
    // The pod reader's Role gains nothing: pods and their logs, read only.
    let role = api.get("roles", Some(NS), "job-test-pod-reader").unwrap();
    assert_eq!(
        role["rules"],
        serde_json::json!([
            { "apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"] },
            { "apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"] },
        ])
    );

    // JSON names it too, and only that; an existing name is used as given.
    let r = with_pull_secret(
        &["--output", "json", "apply", "--kubeconfig", &k, "--image-pull-secret", "team-registry"],
        &creds,
        None,
    );
    assert_eq!(r.code, Some(0), "{}", r.all());
    let applied: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    let secret = applied["applied"].as_array().unwrap().iter().find(|o| o["object"] == "secret/team-registry");
    assert_eq!(secret, Some(&serde_json::json!({ "object": "secret/team-registry", "result": "created" })));
    assert_no_pull_credential(&r, &stored);

    // --username with --password-stdin, as push takes them.
    let r = with_pull_secret(
        &["apply", "--kubeconfig", &k, "--username", PULL_USER, "--password-stdin"],
        &[],
        Some(&format!("{PULL_PASSWORD}\n")),
    );
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert!(
        r.stderr.contains("a pull secret for registry.example:5000 from --username and --password-stdin"),
        "{}",
        r.stderr
    );
    assert_no_pull_credential(&r, &stored);

    // render shows it without its data, in text and JSON.
    let shown = with_pull_secret(&["render"], &creds, None);
    assert_eq!(shown.code, Some(0), "{}", shown.all());
    assert!(shown.stdout.contains("type: kubernetes.io/dockerconfigjson"), "{}", shown.stdout);
    assert!(!shown.stdout.contains(".dockerconfigjson:"), "{}", shown.stdout);
    assert!(shown.stderr.contains("secret/job-test-pull-secret is shown without its data"), "{}", shown.stderr);
    assert_no_pull_credential(&shown, &stored);
    let r = with_pull_secret(&["--output", "json", "render"], &creds, None);
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert_no_pull_credential(&r, &stored);
    // What standard output showed cannot be applied half-way.
    let dir = tempdir("pull-secret");
    let shown = tests::write_file(&dir, "shown.yaml", &shown.stdout);
    let patches = || api.requests().iter().filter(|r| r.method == "PATCH").count();
    let before = patches();
    let r = run_xtask(&["apply", "--kubeconfig", &k, "-f", shown.to_str().unwrap()], &[]);
    assert_eq!(r.code, Some(2), "{}", r.all());
    assert!(r.stderr.contains("secret/job-test-pull-secret has no .dockerconfigjson"), "{}", r.stderr);
    assert_eq!(patches(), before, "something was applied");
    // --out writes it, with mode 0600, and apply -f takes that file.
    let file = dir.join("with-secret.yaml");
    let r = with_pull_secret(&["render", "--out", file.to_str().unwrap()], &creds, None);
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert_no_pull_credential(&r, &stored);
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(std::fs::read_to_string(&file).unwrap().contains(&data));
    let r = run_xtask(&["apply", "--kubeconfig", &k, "-f", file.to_str().unwrap()], &[]);
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert!(r.stdout.contains("secret/job-test-pull-secret unchanged"), "{}", r.stdout);
    assert_no_pull_credential(&r, &stored);
}

#[test]
fn create_pull_secret_refuses_an_anonymous_credential_before_anything_is_done() {
    let api = ApiServer::start();
    let k = admin(&api);
    let empty = tempdir("no-docker-config");
    let e = empty.to_str().unwrap();
    let r = run_xtask(
        &["apply", "--kubeconfig", &k, "--image", PRIVATE_IMAGE, "--create-pull-secret"],
        &[("DOCKER_CONFIG", e)],
    );
    assert_eq!(r.code, Some(2), "{}", r.all());
    assert!(
        r.stderr.contains(
            "--create-pull-secret: no credential for registry.example:5000 was found (not in --username and \
             --password-stdin, REGISTRY_USERNAME and REGISTRY_PASSWORD, or the Docker config), and a pull secret \
             without one would pull anonymously: give --username with --password-stdin, set REGISTRY_USERNAME and \
             REGISTRY_PASSWORD, or `docker login registry.example:5000`"
        ),
        "{}",
        r.stderr
    );
    assert!(api.requests().iter().all(|r| r.method != "PATCH"), "something was applied");
    // An empty password is no credential either.
    let r = run_xtask(
        &["render", "--image", PRIVATE_IMAGE, "--create-pull-secret"],
        &[("DOCKER_CONFIG", e), ("REGISTRY_USERNAME", PULL_USER), ("REGISTRY_PASSWORD", "")],
    );
    assert_eq!(r.code, Some(2), "{}", r.all());
    // release refuses before it builds or pushes anything: the local
    // default registry takes no credential.
    let own = tests::OwnDefaults::new();
    let mut env = own.env();
    env.push(("DOCKER_CONFIG", e));
    let r = run_xtask(&["release", "--kubeconfig", &k, "--create-pull-secret"], &env);
    assert_eq!(r.code, Some(2), "{}", r.all());
    assert!(r.stderr.contains(&format!("no credential for {} was found", own.registry)), "{}", r.stderr);
    assert!(!r.stderr.contains("1/5 build"), "{}", r.stderr);
    assert!(api.requests().iter().all(|r| r.method != "PATCH"), "something was applied");
}

/// A namespace's shared pull secret, made by someone else: logins for two
/// registries, as `kubectl create secret docker-registry` (twice, merged)
/// would leave them.
fn their_regcred(api: &ApiServer) -> Value {
    use base64::Engine;
    let config = serde_json::json!({ "auths": {
        "registry.example:5000": { "auth": base64::engine::general_purpose::STANDARD.encode("team:team-pw") },
        "quay.example": { "auth": base64::engine::general_purpose::STANDARD.encode("bot:bot-pw") },
    } });
    api.put(serde_json::json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": NS } }));
    api.put(serde_json::json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
        "metadata": { "name": "regcred", "namespace": NS, "labels": { "owner": "team-a" },
            "managedFields": [{ "manager": "kubectl-create", "operation": "Update", "apiVersion": "v1" }] },
        "data": { ".dockerconfigjson": base64::engine::general_purpose::STANDARD.encode(config.to_string()) },
    }))
}

/// A Secret is created, never taken over: `--create-pull-secret
/// --image-pull-secret regcred` onto a `regcred` someone else made would
/// replace its logins with one. apply, its server dry run and release all
/// refuse (exit 2) before anything is applied or built, name the secret and
/// the way out, and leave it byte for byte as it was. One job-test made is
/// updated.
#[test]
fn a_pull_secret_someone_else_made_is_never_taken_over() {
    let api = ApiServer::start();
    let theirs = their_regcred(&api);
    let k = admin(&api);
    let creds = [("REGISTRY_USERNAME", PULL_USER), ("REGISTRY_PASSWORD", PULL_PASSWORD)];
    let said = "secret/regcred in namespace job-test exists and job-test did not create it (no \
                app.kubernetes.io/managed-by=job-test label): applying would replace its data with one registry's \
                credential, and what else pulls with it could fail to pull; nothing was applied. drop \
                --image-pull-secret to create job-test-pull-secret, reference it without --create-pull-secret to \
                use it as it is, or delete it (`kubectl delete secret regcred -n job-test`) if nothing else uses it";
    let own = tests::OwnDefaults::new();
    let mut release_env = own.env();
    release_env.extend(creds);
    for (what, r) in [
        ("apply", with_pull_secret(&["apply", "--kubeconfig", &k, "--image-pull-secret", "regcred"], &creds, None)),
        (
            "apply --dry-run=server",
            with_pull_secret(
                &["apply", "--dry-run=server", "--kubeconfig", &k, "--image-pull-secret", "regcred"],
                &creds,
                None,
            ),
        ),
        (
            "release --dry-run=server",
            with_pull_secret(
                &["release", "--dry-run=server", "--kubeconfig", &k, "--image-pull-secret", "regcred"],
                &release_env,
                None,
            ),
        ),
    ] {
        assert_eq!(r.code, Some(2), "{what}: {}", r.all());
        assert!(r.stderr.contains(said), "{what}: {}", r.stderr);
        assert!(!r.stderr.contains("1/5 build"), "{what} built before it refused: {}", r.stderr);
        assert_no_pull_credential(&r, &[]);
        assert_eq!(api.get("secrets", Some(NS), "regcred").unwrap(), theirs, "{what} changed their secret");
        assert!(api.requests().iter().all(|r| r.method != "PATCH"), "{what} applied something");
        assert!(api.get("jobs", Some(NS), "job-test").is_none(), "{what} applied the Job");
    }
    // Under the default name too, with the other way out.
    let mut default_named = theirs.clone();
    default_named["metadata"]["name"] = "job-test-pull-secret".into();
    default_named["metadata"]["uid"] = Value::Null;
    let default_named = api.put(default_named);
    let r = with_pull_secret(&["apply", "--kubeconfig", &k], &creds, None);
    assert_eq!(r.code, Some(2), "{}", r.all());
    assert!(
        r.stderr.contains(
            "nothing was applied. name another with --image-pull-secret NAME, or delete it (`kubectl delete secret \
             job-test-pull-secret -n job-test`) if nothing else uses it"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(api.get("secrets", Some(NS), "job-test-pull-secret").unwrap(), default_named);

    // One job-test made is its own to update: a new password replaces the old.
    let r = with_pull_secret(&["apply", "--kubeconfig", &k, "--image-pull-secret", "ours"], &creds, None);
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert!(r.stdout.contains("secret/ours created"), "{}", r.stdout);
    let new_password = "a-new-Pa55w0rd-19f3";
    let r = with_pull_secret(
        &["apply", "--kubeconfig", &k, "--image-pull-secret", "ours"],
        &[("REGISTRY_USERNAME", PULL_USER), ("REGISTRY_PASSWORD", new_password)],
        None,
    );
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert!(r.stdout.contains("secret/ours configured"), "{}", r.stdout);
    let data = api.get("secrets", Some(NS), "ours").unwrap()["data"][".dockerconfigjson"].as_str().unwrap().to_owned();
    use base64::Engine;
    let config: Value =
        serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(&data).unwrap()).unwrap();
    assert_eq!(config["auths"]["registry.example:5000"]["password"], new_password);
    assert_eq!(api.get("secrets", Some(NS), "regcred").unwrap(), theirs, "their secret changed");
}

/// A pod of the Job whose container waits on a failing pull, as a kubelet
/// reports it.
fn put_pull_failure(api: &ApiServer, job: &Value, name: &str, reason: &str, message: &str) {
    let mut pod = objects::pod(&PodSpec {
        job,
        name,
        index: None,
        phase: "Pending",
        terminated: None,
        restarts: 0,
        last_exit_code: None,
    });
    pod["status"]["containerStatuses"][0]["state"] =
        serde_json::json!({ "waiting": { "reason": reason, "message": message } });
    api.put(pod);
}

#[test]
fn watch_says_why_a_pod_cannot_pull_and_what_to_do() {
    let api = ApiServer::start();
    assert_eq!(apply(&api, &["--image", PRIVATE_IMAGE]).code, Some(0));
    let j = job(&api);
    let w = start_watch(&api, &["--output", "json"]);
    let denied = "rpc error: code = Unknown desc = Error response from daemon: Head \
                  https://registry.example:5000/v2/team/job-test/manifests/1.0.0: no basic auth credentials";
    put_pull_failure(&api, &j, "job-test-p1", "ErrImagePull", denied);
    w.wait_stderr("what to do:");
    // The back-off repeats no cause: the one known stays, said once.
    put_pull_failure(
        &api,
        &j,
        "job-test-p1",
        "ImagePullBackOff",
        &format!("Back-off pulling image \"{PRIVATE_IMAGE}\""),
    );
    w.wait_stderr("ImagePullBackOff");
    api.put(objects::failed(&j, "DeadlineExceeded", "Job was active longer than specified deadline", 0, 0));
    let r = w.finish();
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert!(
        r.stderr.contains(&format!("pod job-test-p1 cannot pull {PRIVATE_IMAGE} (ErrImagePull: {denied})")),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(
            "what to do: the registry registry.example:5000 wants credentials and the pod has no pull secret: apply \
             (or release) again with --create-pull-secret"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.matches("what to do:").count(), 1, "{}", r.stderr);
    let report: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(report["image_pull"]["cause"], "unauthorized", "{report}");
    assert_eq!(report["image_pull"]["pod"], "job-test-p1", "{report}");
    assert!(report["image_pull"]["advice"].as_str().unwrap().contains("--create-pull-secret"), "{report}");

    // A reference that is not there: check it. The text report says so too.
    let api = ApiServer::start();
    assert_eq!(apply(&api, &["--image", PRIVATE_IMAGE]).code, Some(0));
    let j = job(&api);
    let w = start_watch(&api, &[]);
    put_pull_failure(
        &api,
        &j,
        "job-test-n1",
        "ErrImagePull",
        "Error response from daemon: manifest for registry.example:5000/team/job-test:1.0.0 not found: manifest unknown",
    );
    w.wait_stderr("what to do:");
    api.put(objects::failed(&j, "DeadlineExceeded", "Job was active longer than specified deadline", 0, 0));
    let r = w.finish();
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert!(r.stdout.contains("\n  image pull: pod job-test-n1 cannot pull"), "{}", r.stdout);
    assert!(
        r.stdout.contains(&format!(
            "what to do: {PRIVATE_IMAGE} is not in the registry registry.example:5000: check the reference"
        )),
        "{}",
        r.stdout
    );
}

#[test]
fn a_loopback_registry_is_named_when_watch_times_out() {
    let api = ApiServer::start();
    let image = "127.0.0.1:5000/job-test:0.1.0";
    assert_eq!(apply(&api, &["--image", image]).code, Some(0));
    let j = job(&api);
    let w = start_watch(&api, &["--timeout", "5s"]);
    put_pull_failure(
        &api,
        &j,
        "job-test-l1",
        "ErrImagePull",
        "rpc error: code = Unknown desc = Error response from daemon: Get https://127.0.0.1:5000/v2/: dial tcp \
         127.0.0.1:5000: connect: connection refused",
    );
    let r = w.finish();
    assert_eq!(r.code, Some(5), "{}", r.all());
    let error =
        r.stderr.lines().skip_while(|l| !l.starts_with("error: gave up after 5s")).collect::<Vec<_>>().join("\n");
    assert!(error.contains(&format!("; pod job-test-l1 cannot pull {image}")), "{}", r.stderr);
    assert!(
        error.contains(
            "what to do: 127.0.0.1:5000 is a loopback address: a cluster node cannot reach this machine's loopback"
        ),
        "{}",
        r.stderr
    );
}

/// `release --create-pull-secret`: the credential the push used becomes the
/// pull secret; nothing prints it, in JSON either, and the manifests file
/// that holds it is the owner's only.
#[test]
fn release_makes_the_pull_secret_from_the_push_credential_and_never_prints_it() {
    use tests::registry::{self, Registry};
    let registry = Registry::start_tls();
    let own = tests::OwnDefaults::new();
    let layout = tempdir("release-secret-layout");
    let ca = registry.ca_path.clone().unwrap();
    let target = format!("{}/job-test-e2e/release-secret:1.0.0", registry.host);
    let api = ApiServer::start();
    let k = admin(&api);
    let mut env = own.env();
    env.extend([("REGISTRY_USERNAME", registry::USER), ("REGISTRY_PASSWORD", registry::PASSWORD)]);
    // Paths of the test's own temporary directories: no spaces.
    let line = format!(
        "--output json release --builder oci --layout {} --image {target} --registry-ca-cert {} --kubeconfig {k} \
         --completions 1 --create-pull-secret",
        layout.display(),
        ca.display()
    );
    let w = spawn_xtask(&line.split(' ').collect::<Vec<_>>(), &env);
    w.wait_stderr_within("5/5 watch", Duration::from_secs(300));
    api.wait_for_watches(2);
    let j = job(&api);
    put_pod(&api, &j, "job-test-s1", "Succeeded", Some((0, "Completed", "")));
    api.put(objects::complete(&j, 1, 0));
    let r = w.finish_within(Duration::from_secs(300));
    assert_eq!(r.code, Some(0), "{}", r.all());
    let secret = api.get("secrets", Some(NS), "job-test-pull-secret").expect("the pull secret was applied");
    let data = secret["data"][".dockerconfigjson"].as_str().unwrap().to_owned();
    use base64::Engine;
    let config: Value =
        serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(&data).unwrap()).unwrap();
    let entry = &config["auths"][registry.host.as_str()];
    assert_eq!(
        (entry["username"].as_str(), entry["password"].as_str()),
        (Some(registry::USER), Some(registry::PASSWORD))
    );
    let auth = entry["auth"].as_str().unwrap();
    for needle in [registry::PASSWORD, data.as_str(), auth] {
        assert!(!r.all().contains(needle), "the pull credential was printed ({needle}):\n{}", r.all());
    }
    let released: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert!(
        released["applied"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!({ "object": "secret/job-test-pull-secret", "result": "created" })),
        "{released}"
    );
    assert_eq!(
        j["spec"]["template"]["spec"]["imagePullSecrets"],
        serde_json::json!([{ "name": "job-test-pull-secret" }])
    );
    let file = own.target.join("release/job-test.yaml");
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(std::fs::read_to_string(&file).unwrap().contains(&data));
}

#[test]
fn odds_name_estimates_the_failure_probability_and_the_chance_from_where_the_job_stands() {
    let api = ApiServer::start();
    assert_eq!(apply(&api, &[]).code, Some(0));
    let j = job(&api);
    // Two pods succeeded, one failed, one runs: 1 failed run of 3.
    api.put(objects::running(&j, 1, 2, 1));
    let m = objects::worker_message("job-test-aaaaa", 0.03, 0.2, 1);
    put_pod(&api, &j, "job-test-aaaaa", "Failed", Some((1, "Error", &m)));
    put_pod(&api, &j, "job-test-bbbbb", "Succeeded", Some((0, "Completed", "")));
    put_pod(&api, &j, "job-test-ccccc", "Succeeded", Some((0, "Completed", "")));
    put_pod(&api, &j, "job-test-ddddd", "Running", None);
    let k = admin(&api);
    let r = run_xtask(&["--output", "json", "odds", "--name", "job-test", "--kubeconfig", &k], &[]);
    assert_eq!(r.code, Some(0), "{}", r.all());
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!((v["runs"].as_i64(), v["failed_runs"].as_i64()), (Some(3), Some(1)), "{v}");
    assert!((v["estimated_probability"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-12, "{v}");
    // Clopper-Pearson for 1 of 3: the low end solves P(X >= 1) = 1 - (1-p)^3 =
    // 0.025; the high end P(X <= 1) = 0.025, i.e. Beta(2, 2)'s CDF
    // 3p^2 - 2p^3 = 0.975.
    let (low, high) = (v["interval"][0].as_f64().unwrap(), v["interval"][1].as_f64().unwrap());
    assert!((low - (1.0 - 0.975f64.powf(1.0 / 3.0))).abs() < 1e-9, "{low}");
    assert!((3.0 * high * high - 2.0 * high.powi(3) - 0.975).abs() < 1e-9, "{high}");
    // 3 completions missing; backoffLimit 3 with 1 failed allows 2 more
    // failures, so the Job completes if 3 successes come before a 3rd failure.
    let expected = tests::completes_before(3, 3, 1.0 / 3.0);
    assert!((v["p_complete"].as_f64().unwrap() - expected).abs() < 1e-9, "{v} vs {expected}");

    let text = run_xtask(&["odds", "--name", "job-test", "--kubeconfig", &k], &[]);
    assert!(text.stdout.contains("failure probability estimated from 1 failed of 3 runs: 33.33%"), "{}", text.stdout);
    // Job flags with --name describe another Job: refused.
    let r = run_xtask(&["odds", "--name", "job-test", "--completions", "3", "--kubeconfig", &k], &[]);
    assert_eq!(r.code, Some(2), "{}", r.all());
    assert!(r.stderr.contains("leave out --completions"), "{}", r.stderr);
}
