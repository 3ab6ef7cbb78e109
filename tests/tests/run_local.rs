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
    containers(name, "-aq")
}

/// Containers of the Job `name` that are running.
fn running(name: &str) -> Vec<String> {
    containers(name, "-q")
}

/// `docker ps FLAGS` of the Job `name`'s containers.
fn containers(name: &str, flags: &str) -> Vec<String> {
    let out = std::process::Command::new("docker")
        .args(["ps", flags, "--filter", &format!("label=job-test.local/job={name}")])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
}

/// The tests' worker image, and a target dir and registry address of the
/// test's own (a run's folders, what `delete --local` removes).
fn image_and_own_defaults() -> (&'static str, tests::OwnDefaults) {
    tests::require_docker();
    (tests::worker_image(), tests::OwnDefaults::new())
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
    // job-test's own podFailurePolicy rules are no news: said with --verbose only.
    assert!(!r.stderr.contains("podFailurePolicy rule"), "{}", r.stderr);
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
        r.stdout.starts_with(
            "job.batch/rl-text Complete (Reached expected number of succeeded pods)\n  succeeded 1 of 1, failed pods 0, \
             took "
        ),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("observed failure rate 0 of 1 runs = 0% (configured FAIL_PROBABILITY 0)"),
        "{}",
        r.stdout
    );
    assert!(r.stderr.contains("would be deleted 1h after it finished (ttlSecondsAfterFinished)"), "{}", r.stderr);
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

/// A Job rendered with these flags, changed by `edit`, written to a file
/// of the test's own.
fn job_file(
    name: &str,
    flags: &[&str],
    edit: impl FnOnce(&mut k8s_openapi::api::batch::v1::Job),
) -> std::path::PathBuf {
    use xtask::manifest::{Object, from_yaml, to_yaml};
    let image = tests::worker_image();
    let mut args = vec!["render", "--name", name, "--image", image];
    args.extend_from_slice(flags);
    let r = run_xtask(&args, &[]);
    assert_eq!(r.code, Some(0), "{}", r.all());
    let mut objects = from_yaml(&r.stdout).expect("render writes manifests");
    let job = objects
        .iter_mut()
        .find_map(|o| match o {
            Object::Job(job) => Some(job),
            _ => None,
        })
        .expect("render writes a Job");
    edit(job);
    let file = tests::tempdir(name).join("job.yaml");
    std::fs::write(&file, to_yaml(&objects).unwrap()).unwrap();
    file
}

#[test]
fn a_met_success_policy_completes_the_job_and_removes_the_lingering_pods() {
    use k8s_openapi::api::batch::v1::{SuccessPolicy, SuccessPolicyRule};
    // The leader (index 0) succeeds; the others hang until they are ended.
    let file =
        job_file("rl-success", &["--completion-mode", "Indexed", "--completions", "3", "--parallelism", "3"], |job| {
            let spec = job.spec.as_mut().unwrap();
            spec.success_policy = Some(SuccessPolicy {
                rules: vec![SuccessPolicyRule { succeeded_indexes: Some("0".into()), succeeded_count: None }],
            });
            let env = spec.template.spec.as_mut().unwrap().containers[0].env.get_or_insert_default();
            for (k, v) in [("FAIL_PROBABILITY", "0"), ("FAIL_INDEXES", "1,2"), ("FAILURE_MODE", "hang")] {
                env.retain(|e| e.name != k);
                env.push(k8s_openapi::api::core::v1::EnvVar {
                    name: k.into(),
                    value: Some(v.into()),
                    value_from: None,
                });
            }
        });
    let r = spawn_xtask(&["--output", "json", "run-local", "-f", file.to_str().unwrap()], &[])
        .finish_within(Duration::from_secs(120));
    assert_eq!(leftovers("rl-success"), Vec::<String>::new(), "containers left behind:\n{}", r.stderr);
    assert_eq!(r.code, Some(0), "{}", r.all());
    let v = report(&r);
    assert_eq!(
        (v["result"].as_str(), v["reason"].as_str(), v["message"].as_str()),
        (Some("Complete"), Some("SuccessPolicy"), Some("Matched rules at index 0"))
    );
    // The two hanging pods were removed, as a cluster deletes them: not failures, not in the report.
    assert_eq!((v["succeeded"].as_i64(), v["failed_pods"].as_i64()), (Some(1), Some(0)));
    let pods = v["pods"].as_array().unwrap();
    assert_eq!((pods.len(), pods[0]["index"].as_str()), (1, Some("0")), "{pods:?}");
    assert!(
        r.stderr
            .contains("SuccessCriteriaMet (SuccessPolicy: Matched rules at index 0); terminating 2 lingering pods: "),
        "{}",
        r.stderr
    );
}

/// (type, reason) of the report's conditions, in order.
fn conditions(v: &Value) -> Vec<(String, String)> {
    v["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["type"].as_str().unwrap().to_owned(), c["reason"].as_str().unwrap().to_owned()))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
}

#[test]
fn per_index_limits_report_the_index_strings_and_1_20_refuses_them() {
    let flags = [
        "--completion-mode",
        "Indexed",
        "--backoff-limit-per-index",
        "1",
        "--fail-indexes",
        "1,3",
        "--fail-probability",
        "0",
        "--completions",
        "4",
        "--parallelism",
        "4",
    ];
    let r = run_local("rl-per-index", &flags);
    assert_eq!(r.code, Some(1), "{}", r.all());
    let v = report(&r);
    assert_eq!((v["failed_indexes"].as_str(), v["completed_indexes"].as_str()), (Some("1,3"), Some("0,2")));
    assert_eq!(conditions(&v), pairs(&[("FailureTarget", "FailedIndexes"), ("Failed", "FailedIndexes")]));
    // Two attempts for each failing index: failed 4, succeeded 2.
    assert_eq!((v["failed_pods"].as_i64(), v["succeeded"].as_i64()), (Some(4), Some(2)));
    assert!(r.stderr.contains("by the rules of the Kubernetes 1.33 Job controller"), "{}", r.stderr);

    let r = run_local("rl-per-index", &[&["--kube-version", "1.20"], &flags[..]].concat());
    assert_eq!(r.code, Some(2), "{}", r.all());
    assert!(r.stderr.contains("spec.backoffLimitPerIndex: Kubernetes 1.20 does not have it"), "{}", r.stderr);
}

#[test]
fn a_plain_job_gets_the_conditions_of_the_chosen_version() {
    let flags = ["--fail-probability", "0", "--completions", "1"];
    let r = run_local("rl-v133", &flags);
    assert_eq!(r.code, Some(0), "{}", r.all());
    let v = report(&r);
    assert_eq!(
        conditions(&v),
        pairs(&[("SuccessCriteriaMet", "CompletionsReached"), ("Complete", "CompletionsReached")])
    );
    assert_eq!(
        (v["reason"].as_str(), v["message"].as_str()),
        (Some("CompletionsReached"), Some("Reached expected number of succeeded pods"))
    );
    assert_eq!(v["terminating"], 0, "1.33 writes status.terminating");
    assert!(
        r.stderr.contains(
            "SuccessCriteriaMet (CompletionsReached: Reached expected number of succeeded pods); no pod left to \
             terminate"
        ),
        "{}",
        r.stderr
    );
    // The first line says whose rules.
    let first = r.stderr.lines().find(|l| l.starts_with("running job.batch/")).unwrap_or_default();
    assert!(first.contains("by the rules of the Kubernetes 1.33 Job controller"), "{}", r.stderr);

    let r = run_local("rl-v120", &[&["--kube-version", "1.20"], &flags[..]].concat());
    assert_eq!(r.code, Some(0), "{}", r.all());
    let v = report(&r);
    // 1.20: Complete alone, no reason, no message (the report reads it `Complete`, as watch does).
    assert_eq!(conditions(&v), pairs(&[("Complete", "")]));
    assert_eq!(v["conditions"][0]["message"], "");
    assert_eq!(v["reason"], "Complete");
    assert!(v.get("terminating").is_none(), "1.20 has no status.terminating: {v}");
    assert!(r.stderr.lines().any(|l| l.contains("by the rules of the Kubernetes 1.20 Job controller")), "{}", r.stderr);
}

#[test]
fn an_evicted_pod_is_ignored_by_the_rendered_rule_and_counted_where_nothing_ignores_it() {
    // A pod that works for 3 s is evicted after 1 s: SIGTERM, exit 143.
    let flags = ["--fail-probability", "0", "--work-duration", "3s", "--completions", "1", "--evict", "1s"];
    // --verbose: the caveat on job-test's own DisruptionTarget rule is detail.
    let r = run_local("rl-evict", &[&flags[..], &["--verbose"]].concat());
    assert_eq!(r.code, Some(0), "{}", r.all());
    let v = report(&r);
    assert_eq!((v["succeeded"].as_i64(), v["failed_pods"].as_i64()), (Some(1), Some(0)));
    let pods = v["pods"].as_array().unwrap();
    assert_eq!(pods.len(), 2, "the evicted pod and its replacement: {pods:?}");
    let evicted = pods.iter().find(|p| p["reason"] == "Evicted").unwrap_or_else(|| panic!("{pods:?}"));
    assert_eq!((evicted["phase"].as_str(), evicted["exit_code"].as_i64()), (Some("Failed"), Some(143)));
    let note = evicted["message"].as_str().unwrap();
    assert!(
        note.starts_with("DisruptionTarget (EvictionByEvictionAPI); not counted: Pod job-test/")
            && note.ends_with("has condition DisruptionTarget matching Ignore rule at index 1"),
        "{note}"
    );
    assert!(
        r.stderr.contains("its replacement waits until it has ended (podReplacementPolicy Failed)"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("matches a pod --evict evicts (DisruptionTarget), as on a cluster"), "{}", r.stderr);

    // 1.25: no podFailurePolicy (left out), no DisruptionTarget; Job
    // tracking with finalizers counts the deleted pod: backoffLimit 0 fails.
    let r = run_local("rl-evict", &[&["--kube-version", "1.25", "--backoff-limit", "0"], &flags[..]].concat());
    assert_eq!(r.code, Some(1), "{}", r.all());
    let v = report(&r);
    assert_eq!((v["reason"].as_str(), v["failed_pods"].as_i64()), (Some("BackoffLimitExceeded"), Some(1)));
    let evicted = &v["pods"][0];
    assert_eq!(
        (evicted["reason"].as_str(), evicted["message"].as_str()),
        (Some("Evicted"), Some("counted as a failed pod"))
    );
}

#[test]
fn a_job_another_controller_manages_is_not_run_locally() {
    let file = job_file("rl-managed", &["--fail-probability", "0"], |job| {
        job.spec.as_mut().unwrap().managed_by = Some("kueue.x-k8s.io/multikueue".into());
    });
    let r = run_xtask(&["run-local", "-f", file.to_str().unwrap()], &[]);
    assert_eq!(r.code, Some(2), "{}", r.all());
    assert!(
        r.stderr.contains(
            "spec.managedBy is \"kueue.x-k8s.io/multikueue\", not kubernetes.io/job-controller: the built-in Job \
             controller skips this Job and kueue.x-k8s.io/multikueue runs it"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(leftovers("rl-managed"), Vec::<String>::new());
}

#[test]
fn on_pod_conditions_rules_see_the_conditions_of_a_failed_local_pod() {
    use k8s_openapi::api::batch::v1::{PodFailurePolicyOnPodConditionsPattern, PodFailurePolicyRule};
    // The rendered policy ignores DisruptionTarget (index 1); a rule added
    // after it fails the Job on Ready=False, which every failed pod has.
    let file =
        job_file("rl-conditions", &["--fail-probability", "1", "--backoff-limit", "6", "--parallelism", "1"], |job| {
            let policy = job.spec.as_mut().unwrap().pod_failure_policy.as_mut().unwrap();
            policy.rules.push(PodFailurePolicyRule {
                action: "FailJob".into(),
                on_exit_codes: None,
                on_pod_conditions: Some(vec![PodFailurePolicyOnPodConditionsPattern {
                    type_: "Ready".into(),
                    status: "False".into(),
                }]),
            });
        });
    let args = ["--output", "json", "--verbose", "run-local", "-f", file.to_str().unwrap(), "--time-scale", "0"];
    let r = spawn_xtask(&args, &[]).finish_within(Duration::from_secs(120));
    assert_eq!(leftovers("rl-conditions"), Vec::<String>::new(), "containers left behind:\n{}", r.stderr);
    assert_eq!(r.code, Some(1), "{}", r.all());
    let v = report(&r);
    let pod = v["pods"][0]["name"].as_str().unwrap();
    assert_eq!((v["reason"].as_str(), v["failed_pods"].as_i64()), (Some("PodFailurePolicy"), Some(1)));
    assert_eq!(v["message"], format!("Pod job-test/{pod} has condition Ready matching FailJob rule at index 2"));
    // The run says which rules can match here and which cannot (job-test's
    // own, rule 1, with --verbose only).
    assert!(
        r.stderr.contains(
            "podFailurePolicy rule 1 (Ignore, onPodConditions DisruptionTarget=True) matches only an evicted pod \
             (DisruptionTarget): `--evict AFTER` evicts one"
        ),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("rule 2 (FailJob, onPodConditions Ready=False) matches every failed pod, as on a cluster"),
        "{}",
        r.stderr
    );
}

#[test]
fn kept_containers_stay_until_delete_local_removes_them() {
    let (image, own) = image_and_own_defaults();
    let env = own.env();
    let common = ["--image", image, "--fail-probability", "0", "--parallelism", "1"];
    for (name, completions) in [("rl-keep-a", "2"), ("rl-keep-b", "1")] {
        let mut args = vec!["run-local", "--keep", "--name", name, "--completions", completions];
        args.extend_from_slice(&common);
        let r = run_xtask(&args, &env);
        assert_eq!(r.code, Some(0), "{}", r.all());
        assert!(r.stderr.contains(&format!("`cargo xtask delete --local --name {name}` removes them")), "{}", r.stderr);
    }
    assert_eq!((leftovers("rl-keep-a").len(), leftovers("rl-keep-b").len()), (2, 1));
    let folders = || std::fs::read_dir(own.target.join("local")).map_or(0, |d| d.count());
    assert_eq!(folders(), 2, "a folder of termination logs per run");

    // --name selects one Job's containers; the other Job's stay.
    let r = run_xtask(&["--output", "json", "delete", "--local", "--name", "rl-keep-a"], &env);
    assert_eq!(r.code, Some(0), "{}", r.all());
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    let containers = v["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 2, "{v}");
    assert!(containers.iter().all(|c| c["job"] == "rl-keep-a" && c["pod"].as_str().unwrap().starts_with("rl-keep-a-")));
    assert_eq!(v["folders"].as_array().unwrap().len(), 1);
    assert_eq!((leftovers("rl-keep-a").len(), leftovers("rl-keep-b").len(), folders()), (0, 1, 1));

    let r = run_xtask(&["delete", "--local", "--name", "rl-keep-b"], &env);
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert!(
        r.stdout.starts_with(
            "removed 1 containers of job rl-keep-b kept by `run-local --keep`\n  job rl-keep-b: rl-keep-b-"
        ),
        "{}",
        r.stdout
    );
    assert_eq!((leftovers("rl-keep-b").len(), folders()), (0, 0));
    let r = run_xtask(&["delete", "--local", "--name", "rl-keep-b"], &env);
    assert_eq!(r.stdout.trim(), "no containers of job rl-keep-b kept by `run-local --keep`: nothing to remove");
}

#[test]
fn a_seed_gives_the_same_pods_and_the_same_draws() {
    let flags = [
        "--seed",
        "11",
        "--fail-probability",
        "0.5",
        "--completions",
        "3",
        "--parallelism",
        "1",
        "--backoff-limit",
        "20",
    ];
    let runs: Vec<Value> = (0..2).map(|_| report(&run_local("rl-seed", &flags))).collect();
    let pods = |v: &Value| -> Vec<(String, Option<i64>)> {
        v["pods"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["name"].as_str().unwrap().to_owned(), p["exit_code"].as_i64()))
            .collect()
    };
    assert_eq!(pods(&runs[0]), pods(&runs[1]));
    assert!(pods(&runs[0]).len() >= 3);
}

/// P(X = k) for X ~ Binomial(n, p), k = 0..=n.
fn binomial_pmf(n: u32, p: f64) -> Vec<f64> {
    let ln_choose = |k: u32| -> f64 { (1..=k).map(|i| f64::from(n - k + i).ln() - f64::from(i).ln()).sum() };
    (0..=n).map(|k| (ln_choose(k) + f64::from(k) * p.ln() + f64::from(n - k) * (1.0 - p).ln()).exp()).collect()
}

/// The narrowest [lo, hi] that cuts off at most `alpha / 2` of Binomial(n,
/// p) on each side: a count outside it has probability at most `alpha`.
fn binomial_bounds(n: u32, p: f64, alpha: f64) -> (u32, u32) {
    let pmf = binomial_pmf(n, p);
    let mut below = 0.0;
    let lo = (0..=n).find(|&k| {
        below += pmf[k as usize];
        below > alpha / 2.0
    });
    let mut above = 0.0;
    let hi = (0..=n).rev().find(|&k| {
        above += pmf[k as usize];
        above > alpha / 2.0
    });
    (lo.unwrap(), hi.unwrap())
}

#[test]
fn binomial_bounds_cut_off_what_they_say() {
    // Binomial(10, 0.5): P(X <= 0) = P(X >= 10) = 1/1024 is below 0.001 a side, P(X <= 1) = 11/1024 is not.
    assert_eq!(binomial_bounds(10, 0.5, 0.002), (1, 9));
    assert!((binomial_pmf(60, 0.75).iter().sum::<f64>() - 1.0).abs() < 1e-9);
}

/// Many seeded local runs of a small Job with FAIL_PROBABILITY 0.5 complete
/// as often as `cargo xtask odds` says. Each seed fixes the pod names and
/// so every draw: the count is the same on every run of this test. The
/// bound is what makes it evidence: had run-local followed other rules, or
/// the worker drawn otherwise, a count inside it would be luck of at most
/// one chance in a thousand.
#[test]
fn seeded_local_runs_complete_as_often_as_odds_says() {
    const RUNS: u32 = 60;
    const FALSE_FAILURE: f64 = 0.001;
    let job = ["--fail-probability", "0.5", "--completions", "1", "--parallelism", "1", "--backoff-limit", "1"];
    let mut args = vec!["--output", "json", "odds"];
    args.extend_from_slice(&job);
    let odds = run_xtask(&args, &[]);
    assert_eq!(odds.code, Some(0), "{}", odds.all());
    let p: f64 = serde_json::from_str::<Value>(odds.stdout.trim()).unwrap()["exact"]["p_complete"].as_f64().unwrap();
    // 1 - 0.5^2: one retry after the first failure.
    assert!((p - 0.75).abs() < 1e-9, "{p}");

    let started = std::time::Instant::now();
    let mut complete = 0;
    for seed in 1..=RUNS {
        let seed = seed.to_string();
        let mut flags = vec!["--seed", seed.as_str()];
        flags.extend_from_slice(&job);
        let r = run_local("rl-odds", &flags);
        let v = report(&r);
        match (r.code, v["result"].as_str()) {
            (Some(0), Some("Complete")) => complete += 1,
            (Some(1), Some("Failed")) => assert_eq!(v["reason"], "BackoffLimitExceeded", "{}", r.all()),
            _ => panic!("seed {seed}: {}", r.all()),
        }
    }
    let (lo, hi) = binomial_bounds(RUNS, p, FALSE_FAILURE);
    eprintln!(
        "{complete} of {RUNS} seeded local runs completed; odds says {p}, so Binomial({RUNS}, {p}) puts the count in \
         [{lo}, {hi}] with probability at least {}; took {:.0?}",
        1.0 - FALSE_FAILURE,
        started.elapsed()
    );
    assert!(
        (lo..=hi).contains(&complete),
        "{complete} of {RUNS} local runs completed; `odds` gives {p}: a count outside [{lo}, {hi}] has probability \
         below {FALSE_FAILURE} if run-local follows the rules odds models"
    );
}

/// The pod names of a JSON report.
fn pod_names(v: &Value) -> Vec<String> {
    v["pods"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_owned()).collect()
}

/// Waits until `ready` holds (a run's containers are up), or fails with the
/// runs' output.
fn wait_for(what: &str, ready: impl Fn() -> bool, runs: &[&tests::Background]) {
    let start = std::time::Instant::now();
    while !ready() {
        let stderr: Vec<String> = runs.iter().map(|r| r.stderr()).collect();
        assert!(start.elapsed() < Duration::from_secs(90), "{what} did not happen:\n{}", stderr.join("\n---\n"));
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A seeded run's pod names repeat; the containers carry the run, so a run
/// meets neither the containers a run of the same seed kept nor those of
/// one running beside it.
#[test]
fn a_seeded_run_meets_neither_the_kept_run_of_its_seed_nor_one_beside_it() {
    let (image, own) = image_and_own_defaults();
    let env = own.env();
    let args = |keep: bool| {
        let mut args = vec!["--output", "json", "run-local", "--name", "rl-again", "--image", image, "--seed", "7"];
        args.extend(["--fail-probability", "0", "--completions", "2", "--parallelism", "2", "--time-scale", "0.01"]);
        if keep {
            args.push("--keep");
        }
        args
    };
    let kept = run_xtask(&args(true), &env);
    assert_eq!(kept.code, Some(0), "{}", kept.all());
    let names = pod_names(&report(&kept));
    assert_eq!(leftovers("rl-again").len(), 2);

    // The same seed again, twice at once, with the kept containers still there.
    let runs = [spawn_xtask(&args(false), &env), spawn_xtask(&args(false), &env)];
    for r in runs.map(|r| r.finish_within(Duration::from_secs(120))) {
        assert_eq!(r.code, Some(0), "{}", r.all());
        assert_eq!(pod_names(&report(&r)), names, "the same seed, the same pods");
        assert!(r.stderr.contains("removed the 2 containers of this run"), "{}", r.stderr);
    }
    assert_eq!(leftovers("rl-again").len(), 2, "the kept run's containers, only");

    let r = run_xtask(&["--output", "json", "delete", "--local", "--name", "rl-again"], &env);
    assert_eq!(r.code, Some(0), "{}", r.all());
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    let removed: Vec<&str> = v["containers"].as_array().unwrap().iter().map(|c| c["pod"].as_str().unwrap()).collect();
    assert_eq!(removed, names, "{v}");
    assert_eq!(leftovers("rl-again"), Vec::<String>::new());
}

/// An error in the middle of a run (here the daemon refuses to create a
/// pod's container: its image was removed while the run went on) stops and
/// removes the containers the run had started.
#[test]
fn an_error_mid_run_stops_and_removes_the_containers_it_started() {
    tests::require_docker();
    let image = tests::worker_image();
    // A tag of the test's own, removed in the middle of the run; the image
    // itself stays (it has the tests' tag too).
    let tag = format!("job-test-rl-fault:{}", std::process::id());
    let docker = |args: &[&str]| std::process::Command::new("docker").args(args).output().unwrap();
    let tagged = docker(&["tag", image, &tag]);
    assert!(tagged.status.success(), "docker tag: {}", String::from_utf8_lossy(&tagged.stderr));
    struct Untag<'a>(&'a str);
    impl Drop for Untag<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("docker").args(["rmi", self.0]).output();
        }
    }
    let _untag = Untag(&tag);
    // Index 0 hangs; index 1 works 5 s and succeeds, and then index 2's
    // container cannot be created.
    let w = spawn_xtask(
        &[
            "run-local",
            "--name",
            "rl-fault",
            "--image",
            &tag,
            "--completion-mode",
            "Indexed",
            "--completions",
            "3",
            "--parallelism",
            "2",
            "--fail-indexes",
            "0",
            "--failure-mode",
            "hang",
            "--fail-probability",
            "0",
            "--work-duration",
            "5s",
            "--time-scale",
            "0.01",
        ],
        &[],
    );
    wait_for("two running pods", || running("rl-fault").len() == 2, &[&w]);
    let untagged = docker(&["rmi", &tag]);
    assert!(untagged.status.success(), "docker rmi: {}", String::from_utf8_lossy(&untagged.stderr));
    let r = w.finish_within(Duration::from_secs(120));
    assert_eq!(leftovers("rl-fault"), Vec::<String>::new(), "containers left behind:\n{}", r.stderr);
    // A refusal (exit 4), not a failed Job (exit 1).
    assert_eq!(r.code, Some(4), "{}", r.all());
    assert!(r.stderr.contains("creating the container for pod rl-fault-"), "{}", r.stderr);
    assert!(r.stderr.contains("the Docker daemon refused: "), "{}", r.stderr);
    assert!(r.stderr.contains("removed the 2 containers of this run"), "{}", r.stderr);
}

/// `delete --local` removes what `--keep` kept, and never a run still
/// going: not one without `--keep`, not one with it.
#[test]
fn delete_local_leaves_runs_in_progress_alone() {
    let (image, own) = image_and_own_defaults();
    let env = own.env();
    let job = ["--name", "rl-busy", "--image", image, "--completions", "1", "--parallelism", "1"];
    let mut args = vec!["run-local", "--keep", "--fail-probability", "0"];
    args.extend_from_slice(&job);
    let done = run_xtask(&args, &env);
    assert_eq!(done.code, Some(0), "{}", done.all());
    let hang = ["--failure-mode", "hang", "--fail-probability", "1", "--timeout", "5m"];
    let going: Vec<tests::Background> = [true, false]
        .iter()
        .map(|&keep| {
            let mut args = vec!["run-local"];
            if keep {
                args.push("--keep");
            }
            args.extend_from_slice(&hang);
            args.extend_from_slice(&job);
            spawn_xtask(&args, &env)
        })
        .collect();
    wait_for("two running pods", || running("rl-busy").len() == 2, &going.iter().collect::<Vec<_>>());

    let r = run_xtask(&["--output", "json", "delete", "--local", "--name", "rl-busy"], &env);
    assert_eq!(r.code, Some(0), "{}", r.all());
    // The kept run that ended is gone; both runs in progress are untouched.
    assert_eq!((running("rl-busy").len(), leftovers("rl-busy").len()), (2, 2), "{}", r.stdout);
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    let runs = |key: &str| -> Vec<String> {
        v[key].as_array().unwrap().iter().map(|c| c["run"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!((runs("containers").len(), runs("skipped").len()), (1, 1), "{v}");
    assert_ne!(runs("containers"), runs("skipped"));
    let r = run_xtask(&["delete", "--local", "--name", "rl-busy"], &env);
    assert!(
        r.stdout.starts_with(
            "no containers of job rl-busy kept by `run-local --keep`: nothing to remove\nleft 1 containers of runs \
             still going (a container of theirs is running); once they end, run `delete --local` again\n  job \
             rl-busy: rl-busy-"
        ),
        "{}",
        r.stdout
    );

    // Each run ends as it would have; the kept one's container stays.
    for w in going {
        w.signal(libc::SIGINT);
        let r = w.finish();
        assert_eq!(r.code, Some(130), "{}", r.all());
    }
    assert_eq!((running("rl-busy").len(), leftovers("rl-busy").len()), (0, 1));
    let r = run_xtask(&["--output", "json", "delete", "--local", "--name", "rl-busy"], &env);
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!((v["containers"].as_array().unwrap().len(), v["skipped"].as_array().unwrap().len()), (1, 0), "{v}");
    assert_eq!(leftovers("rl-busy"), Vec::<String>::new());
}

/// With parallelism 2 the pods of an Indexed Job exit in an order the run
/// does not fix; a seeded run still names each pod after its index and
/// attempt, so the pods, their draws and the verdict repeat.
#[test]
fn a_seeded_parallel_run_repeats_its_pods_and_verdict() {
    let flags = [
        "--seed",
        "5",
        "--completion-mode",
        "Indexed",
        "--fail-probability",
        "0.5",
        "--completions",
        "4",
        "--parallelism",
        "2",
        "--backoff-limit",
        "20",
    ];
    let runs: Vec<Value> = (0..2).map(|_| report(&run_local("rl-seed-par", &flags))).collect();
    let pods = |v: &Value| -> Vec<(String, Option<String>, Option<i64>)> {
        v["pods"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap().to_owned(),
                    p["index"].as_str().map(str::to_owned),
                    p["exit_code"].as_i64(),
                )
            })
            .collect()
    };
    assert_eq!(pods(&runs[0]), pods(&runs[1]));
    let verdict =
        |v: &Value| (v["result"].clone(), v["reason"].clone(), v["succeeded"].clone(), v["failed_pods"].clone());
    assert_eq!(verdict(&runs[0]), verdict(&runs[1]));
    // Some index was retried, so the order of exits had a say in the old naming.
    assert!(pods(&runs[0]).len() > 4, "{:?}", pods(&runs[0]));
}

/// The conformance catalogue on the local engine playing the newest
/// version: every scenario (podFailurePolicy, per-index limits,
/// successPolicy included) gives the outcome that version's controller
/// gives, with its FailureTarget / SuccessCriteriaMet sequence; nothing is
/// left on the daemon.
#[test]
fn the_conformance_catalogue_passes_on_the_local_engine_as_the_newest_version() {
    tests::require_docker();
    let image = tests::worker_image();
    let r = spawn_xtask(
        &["--output", "json", "conformance", "--local", "--image", image, "--time-scale", "0.01", "--parallel", "4"],
        &[],
    )
    .finish_within(Duration::from_secs(300));
    assert_eq!(r.code, Some(0), "{}", r.all());
    let v = report(&r);
    assert_eq!(v["version"], "1.33");
    let scenarios = v["scenarios"].as_array().unwrap();
    assert_eq!(scenarios.len(), 13, "{v}");
    assert!(scenarios.iter().all(|s| s["verdict"] == "passed"), "{}", r.all());
    let seen = |name: &str| scenarios.iter().find(|s| s["scenario"] == name).unwrap()["seen"].clone();
    assert_eq!(
        seen("per-index-limit"),
        "FailureTarget (FailedIndexes), Failed (FailedIndexes); succeeded 2, failed 4, completed indexes 0,2, \
         failed indexes 1,3"
    );
    assert_eq!(
        seen("complete"),
        "SuccessCriteriaMet (CompletionsReached), Complete (CompletionsReached); succeeded 3, failed 0"
    );
    assert!(r.stderr.contains("[13/13] "), "{}", r.stderr);
    for s in scenarios {
        let name = s["scenario"].as_str().unwrap();
        assert_eq!(leftovers(name), Vec::<String>::new(), "{name}: containers left behind");
    }
}

/// `--only` picks scenarios by name (none: exit 2 naming them all), a
/// version cannot be chosen for a cluster, and what a version lacks is
/// listed as not on it.
#[test]
fn conformance_refuses_what_it_cannot_do_and_filters_by_name() {
    let r = run_xtask(&["conformance", "--only", "no-such-scenario", "--local"], &[]);
    assert_eq!(r.code, Some(2), "{}", r.all());
    assert!(r.stderr.contains("--only no-such-scenario: no scenario's name contains it; the scenarios are complete,"));
    let r = run_xtask(&["conformance", "--kube-version", "1.20"], &[]);
    assert_eq!(r.code, Some(2), "{}", r.all());
    assert!(r.stderr.contains("--local"), "{}", r.stderr);
    tests::require_docker();
    let image = tests::worker_image();
    let r = spawn_xtask(
        &[
            "conformance",
            "--local",
            "--kube-version",
            "1.20",
            "--image",
            image,
            "--only",
            "index",
            "--time-scale",
            "0.01",
        ],
        &[],
    )
    .finish_within(Duration::from_secs(120));
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert!(
        r.stdout.contains("indexed                        not on 1.20          spec.completionMode: Indexed: 1.22"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("0 passed, 0 differed, 0 known, 4 not on 1.20, 0 errors"), "{}", r.stdout);
}

#[test]
fn a_saved_report_carries_the_timeline_that_alerts_replays() {
    let dir = tests::tempdir("rl-alerts");
    let saved = dir.join("run.json");
    let r = run_local(
        "rl-alerts",
        &[
            "--fail-probability",
            "1",
            "--backoff-limit",
            "1",
            "--completions",
            "1",
            "--save-report",
            saved.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, Some(1), "{}", r.all());
    // The file holds what stdout printed, with the times.
    let file: Value = serde_json::from_slice(&std::fs::read(&saved).unwrap()).unwrap();
    assert_eq!(file, report(&r));
    let times = &file["times"];
    let finished = times["finished"].as_f64().unwrap();
    assert_eq!((times["started"].as_f64(), times["ttl_seconds_after_finished"].as_i64()), (Some(0.0), Some(3600)));
    let pods = file["pods"].as_array().unwrap();
    assert_eq!(pods.len(), 2, "{file}");
    for p in pods {
        let (created, ended) = (p["created_at"].as_f64().unwrap(), p["finished_at"].as_f64().unwrap());
        assert!(0.0 <= created && created <= ended && ended <= finished, "{p}");
    }
    assert_eq!(file["conditions"][0]["at"].as_f64(), Some(finished), "{file}");

    let a = run_xtask(&["--output", "json", "alerts", "--report", saved.to_str().unwrap()], &[]);
    assert_eq!(a.code, Some(0), "{}", a.all());
    let drill: Value = serde_json::from_str(&a.stdout).unwrap();
    let run = &drill["runs"][0];
    assert_eq!((run["result"].as_str(), run["reason"].as_str()), (Some("Failed"), Some("BackoffLimitExceeded")));
    let failed = run["alerts"].as_array().unwrap().iter().find(|x| x["alert"] == "KubeJobFailed").unwrap();
    // Failed within the first minute: the 1m scrape sees it, and the hour's TTL lets it fire.
    assert_eq!((failed["pending"].as_f64(), failed["firing"].as_f64()), (Some(60.0), Some(960.0)), "{failed}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--html` beside `--output json`: the page a browser opens shows a bar
/// per pod of the report, each with the outcome of the pod's phase.
#[test]
fn html_of_a_local_run_shows_the_pods_of_its_report() {
    let dir = tests::tempdir("rl-html");
    let page = dir.join("run.html");
    let r = run_local(
        "rl-html",
        &[
            "--seed",
            "7",
            "--fail-probability",
            "0.5",
            "--completions",
            "3",
            "--parallelism",
            "2",
            "--backoff-limit",
            "6",
            "--html",
            page.to_str().unwrap(),
        ],
    );
    assert!(matches!(r.code, Some(0 | 1)), "{}", r.all());
    assert!(r.stderr.contains(&format!("wrote {} (", page.display())), "{}", r.stderr);
    let v = report(&r);
    let mut expected: Vec<tests::browser::Bar> = v["pods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| tests::browser::Bar {
            pod: p["name"].as_str().unwrap().to_owned(),
            // The worker fails by exiting 1 here (reason Error); a pod the
            // Job's end stopped is Failed with the Job's reason.
            outcome: match p["phase"].as_str().unwrap() {
                "Succeeded" => "succeeded",
                "Failed" => "failed",
                other => panic!("a pod of a finished local run is {other}: {p}"),
            }
            .to_owned(),
        })
        .collect();
    expected.sort();
    let mut shown = tests::browser::bars(&tests::browser::open(&page).dom);
    shown.sort();
    assert_eq!(shown, expected);
    // Seed 7 draws both: the page is not one colour by chance.
    assert!(["succeeded", "failed"].iter().all(|o| shown.iter().any(|b| b.outcome == *o)), "{shown:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// What a newcomer does first: `push` with no registry named (as `release`
/// does), then `run-local` with no --image. Both take the pipeline's one
/// default image, so the run finds what the push made; with the registry
/// stopped in between (a reboot), the run starts it again and pulls from it.
#[test]
fn run_local_with_no_image_runs_what_push_with_no_image_pushed() {
    tests::require_docker();
    let own = tests::OwnDefaults::new();
    let env = own.env();
    let layout = tests::tempdir("rl-default-layout");
    let pushed = run_xtask(
        &[
            "--output",
            "json",
            "push",
            "--builder",
            "oci",
            "--platform",
            "linux/amd64",
            "--layout",
            layout.to_str().unwrap(),
        ],
        &env,
    );
    assert_eq!(pushed.code, Some(0), "{}", pushed.all());
    let default = format!("{}/job-test:{}", own.registry, env!("CARGO_PKG_VERSION"));
    let pushed: Value = serde_json::from_str(pushed.stdout.trim()).unwrap();
    assert!(pushed["reference"].as_str().unwrap().starts_with(&format!("{default}@sha256:")), "{pushed}");
    // The pulled image is this test's (its registry's port is its own).
    tests::remove_pulled_at_exit(&default);
    assert!(own.target.join("registry/pid").exists(), "the push started the registry");
    own.stop_registry();
    wait_for("the registry to stop", || std::net::TcpStream::connect(&own.registry).is_err(), &[]);

    let name = "rl-default";
    let mut args = vec!["--output", "json", "run-local", "--name", name, "--time-scale", "0.01"];
    args.extend(["--fail-probability", "0", "--completions", "1"]);
    let r = spawn_xtask(&args, &env).finish_within(Duration::from_secs(180));
    assert_eq!(leftovers(name), Vec::<String>::new(), "containers left behind:\n{}", r.stderr);
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert_eq!(report(&r)["result"], "Complete", "{}", r.stdout);
    assert!(r.stderr.contains(&format!("started a local registry on {}", own.registry)), "{}", r.stderr);
    assert!(r.stderr.contains(&format!("pulling {default} into the local Docker engine")), "{}", r.stderr);
}

/// Under load: a Job of 500 completions, parallelism 20, FAIL_PROBABILITY
/// 0.2. The daemon's own record of the run (its event stream, filtered by
/// the Job's label) shows never more than 20 of its containers at once and
/// as many containers started as the report has pods, every one removed.
#[test]
fn a_job_of_500_completions_never_runs_more_containers_than_its_parallelism() {
    let name = "rl-load";
    // Streamed as they happen: the daemon keeps only its last 256 events
    // for `--since`, fewer than this run makes.
    let mut events = std::process::Command::new("docker")
        .args(["events", "--filter", "type=container", "--filter", &format!("label=job-test.local/job={name}")])
        .args(["--format", "{{.TimeNano}} {{.Action}}"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stream = events.stdout.take().unwrap();
    let lines = std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stream).lines().map_while(Result::ok).collect::<Vec<String>>()
    });
    // About 625 containers: minutes on 2 cores, so more time than run_local's.
    let mut args = vec!["--output", "json", "run-local", "--name", name, "--image", tests::worker_image()];
    args.extend(["--time-scale", "0.01", "--completions", "500", "--parallelism", "20"]);
    // Each pod works 15 s, so pods overlap and the limit is met: the daemon
    // starts a container in about half a second here, 20 within 15 s.
    args.extend(["--fail-probability", "0.2", "--backoff-limit", "100000", "--work-duration", "15s"]);
    let r = spawn_xtask(&args, &[]).finish_within(Duration::from_secs(900));
    assert_eq!(leftovers(name), Vec::<String>::new(), "containers left behind:\n{}", r.stderr);
    // The last removals' events are on their way: a moment, then the stream ends.
    std::thread::sleep(Duration::from_secs(2));
    let _ = events.kill();
    let _ = events.wait();
    assert_eq!(r.code, Some(0), "{}", r.all());
    let v = report(&r);
    assert_eq!(v["succeeded"], 500, "{}", r.stdout);
    let pods = v["pods"].as_array().unwrap().len() as i64;
    assert_eq!(pods, 500 + v["failed_pods"].as_i64().unwrap());

    let mut events: Vec<(u128, String)> = lines
        .join()
        .unwrap()
        .iter()
        .map(|l| {
            let (t, action) = l.split_once(' ').unwrap();
            (t.parse().unwrap(), action.to_owned())
        })
        .collect();
    events.sort();
    let count = |a: &str| events.iter().filter(|(_, e)| e == a).count() as i64;
    let (mut running, mut peak) = (0i64, 0i64);
    for (_, action) in &events {
        match action.as_str() {
            "start" => running += 1,
            "die" => running -= 1,
            _ => {}
        }
        peak = peak.max(running);
    }
    assert_eq!((count("start"), count("die"), count("destroy")), (pods, pods, pods), "the daemon's record");
    assert!((10..=20).contains(&peak), "at most 20 containers at once, and the run used its parallelism: {peak}");
}
