//! `cargo xtask alerts` with the real Prometheus rule engine (Debian's
//! promtool, which `cargo xtask test` installs): which alerts fire for a
//! Job's timeline, when, and why not.
//!
//! The expected times follow from how Prometheus works, not from job-test:
//! a scrape every interval from the Job's creation, an evaluation every
//! interval; an alert goes pending at the first evaluation that sees its
//! expression true, fires `for` later, and resolves at the first
//! evaluation after the scrape that no longer finds the series.

use std::path::Path;

use serde_json::{Value, json};
use tests::{tempdir, write_file, xtask};

const MINUTE: f64 = 60.0;
/// The shipped KubeJobFailed's `for`.
const HOLD: f64 = 15.0 * MINUTE;

/// The report of a Job that failed `fails_at` seconds after its creation
/// (BackoffLimitExceeded, 4 failed pods), deleted `ttl` seconds later.
fn failed_report(fails_at: f64, ttl: i64) -> Value {
    let pods: Vec<Value> = (0..4)
        .map(|i| {
            let created = f64::from(i) * 12.0;
            pod(&format!("retry-{i}"), "Failed", 1, created, (created + 5.0).min(fails_at))
        })
        .collect();
    report("Failed", "BackoffLimitExceeded", 0, 4, pods, fails_at, ttl)
}

fn pod(name: &str, phase: &str, exit: i32, created: f64, finished: f64) -> Value {
    json!({
        "name": name, "phase": phase, "index": null, "exit_code": exit, "reason": "Error", "message": null,
        "restarts": 0, "created_at": created, "finished_at": finished,
    })
}

fn report(result: &str, reason: &str, succeeded: i32, failed: i32, pods: Vec<Value>, ends_at: f64, ttl: i64) -> Value {
    json!({
        "job": "retry-demo", "namespace": "demo", "result": result, "reason": reason, "message": "",
        "succeeded": succeeded, "completions": 1, "failed_pods": failed, "seconds": ends_at,
        "runs": succeeded + failed, "failed_runs": failed, "configured_probability": 0.2,
        "pods": pods,
        "conditions": [{"type": result, "status": "True", "reason": if result == "Complete" { "" } else { reason },
                        "message": "", "at": ends_at}],
        "times": {"started": 0.0, "finished": ends_at, "ttl_seconds_after_finished": ttl,
                  "active_deadline_seconds": 600, "parallelism": 1},
    })
}

/// `alerts --output json` on `args`; the drill.
fn drill(args: &[&str]) -> Value {
    let mut all = vec!["--output", "json", "alerts"];
    all.extend_from_slice(args);
    let out = xtask(&all);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn drill_report(report: &Value, extra: &[&str]) -> Value {
    let dir = tempdir("alerts");
    let file = write_file(&dir, "report.json", &report.to_string());
    let mut args = vec!["--report", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    let drilled = drill(&args);
    std::fs::remove_dir_all(&dir).unwrap();
    drilled
}

fn alert<'a>(run: &'a Value, name: &str) -> &'a Value {
    run["alerts"].as_array().unwrap().iter().find(|a| a["alert"] == name).unwrap_or_else(|| panic!("{name} in {run}"))
}

/// The first multiple of `step` at or after `t`.
fn next(t: f64, step: f64) -> f64 {
    (t / step).ceil() * step
}

#[test]
fn a_failed_job_deleted_after_ten_minutes_never_fires_kube_job_failed() {
    let drilled = drill_report(&failed_report(65.0, 600), &[]);
    let run = &drilled["runs"][0];
    let failed = alert(run, "KubeJobFailed");
    assert_eq!(failed["fires"], false, "{failed}");
    // It went pending with the first evaluation after the failure and
    // lapsed when the Job was deleted.
    assert_eq!(failed["pending"], next(65.0, MINUTE), "{failed}");
    let why = failed["why"].as_str().unwrap();
    assert!(why.starts_with("never fires: pending from 2m to 12m (10m)"), "{why}");
    assert!(why.contains("ttlSecondsAfterFinished deleted the Job 10m after it finished"), "{why}");
    assert!(why.contains("the rule needs 15m plus a scrape and an evaluation"), "{why}");
    assert_eq!(alert(run, "KubeJobNotCompleted")["fires"], false);
    assert_eq!(run["deleted"], 665.0);
}

#[test]
fn with_an_hour_ttl_kube_job_failed_fires_after_its_for_and_resolves_when_the_job_is_deleted() {
    let (fails_at, ttl) = (65.0, 3600);
    let drilled = drill_report(&failed_report(fails_at, ttl), &[]);
    let failed = alert(&drilled["runs"][0], "KubeJobFailed");
    let pending = next(fails_at, MINUTE);
    let deleted = fails_at + ttl as f64;
    assert_eq!(failed["fires"], true, "{failed}");
    assert_eq!(failed["pending"], pending, "{failed}");
    assert_eq!(failed["firing"], pending + HOLD, "{failed}");
    // The scrape after the deletion finds no series; the evaluation then
    // resolves the alert.
    assert_eq!(failed["resolved"], next(deleted, MINUTE), "{failed}");
    let why = failed["why"].as_str().unwrap();
    assert!(why.contains("when ttlSecondsAfterFinished deleted the Job 1h after it finished"), "{why}");

    // Faster scrapes and evaluations see it sooner, by the engine's own clock.
    let drilled =
        drill_report(&failed_report(fails_at, ttl), &["--scrape-interval", "30s", "--evaluation-interval", "30s"]);
    let failed = alert(&drilled["runs"][0], "KubeJobFailed");
    assert_eq!(failed["pending"], next(fails_at, 30.0), "{failed}");
    assert_eq!(failed["firing"], next(fails_at, 30.0) + HOLD, "{failed}");
}

#[test]
fn a_job_that_completed_after_retries_fires_nothing_but_kube_job_status_failed_counts_the_retries() {
    let pods = vec![
        pod("retry-0", "Failed", 1, 0.0, 5.0),
        pod("retry-1", "Failed", 1, 15.0, 20.0),
        pod("retry-2", "Succeeded", 0, 40.0, 45.0),
    ];
    let completed = report("Complete", "Complete", 1, 2, pods, 45.0, 3600);
    let drilled = drill_report(&completed, &[]);
    let run = &drilled["runs"][0];
    for a in run["alerts"].as_array().unwrap() {
        assert_eq!(a["fires"], false, "{a}");
        assert!(a["pending"].is_null(), "{a}");
    }
    let notes = run["notes"].to_string();
    assert!(notes.contains("kube_job_status_failed is 2 although the Job completed"), "{notes}");

    // A rule on kube_job_status_failed, as many clusters write it, does fire.
    let dir = tempdir("alerts-rules");
    let rules = write_file(
        &dir,
        "retried.yaml",
        "groups:\n- name: own\n  rules:\n  - alert: JobHasFailedPods\n    expr: kube_job_status_failed > 0\n    for: 5m\n",
    );
    let drilled = drill_report(&completed, &["--rules", rules.to_str().unwrap()]);
    let own = alert(&drilled["runs"][0], "JobHasFailedPods");
    assert_eq!(own["fires"], true, "{own}");
    // The first failure (5 s) is scraped at 1m.
    assert_eq!(own["pending"], MINUTE, "{own}");
    assert_eq!(own["firing"], MINUTE + 5.0 * MINUTE, "{own}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_rules_file_with_a_syntax_error_gets_promtools_message_with_file_and_line_and_exit_2() {
    let dir = tempdir("alerts-bad");
    let bad = write_file(
        &dir,
        "bad.yaml",
        "groups:\n- name: own\n  rules:\n  - alert: Broken\n    expr: sum(kube_job_failed\n",
    );
    let out = xtask(&["alerts", "--rules", bad.to_str().unwrap(), "--fail-probability", "1"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("--rules {}: promtool refused the rules", bad.display())), "{err}");
    // promtool's own words: the file, line and column, the parser's complaint.
    assert!(err.contains(&format!("{}: 5:11:", bad.display())), "{err}");
    assert!(err.contains("unclosed left parenthesis"), "{err}");
    assert!(out.stdout.is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn typical_runs_are_drawn_from_the_job_flags() {
    // Every run fails: there is no typical completing run.
    let drilled = drill(&["--fail-probability", "1", "--backoff-limit", "2", "--ttl-seconds-after-finished", "3600"]);
    let runs = drilled["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{drilled}");
    let run = &runs[0];
    assert!(run["run"].as_str().unwrap().starts_with("a typical run that fails (401 of 401"), "{run}");
    assert_eq!(run["result"], "Failed");
    assert_eq!(run["reason"], "BackoffLimitExceeded");
    let failed = alert(run, "KubeJobFailed");
    assert_eq!(failed["fires"], true, "{failed}");
    let finished = run["finished"].as_f64().unwrap();
    assert_eq!(failed["pending"], next(finished, MINUTE), "{failed}");

    // The defaults: one of each, and the default TTL lets the failure alert fire.
    let drilled = drill(&[]);
    let runs = drilled["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{drilled}");
    assert_eq!((runs[0]["result"].as_str(), runs[1]["result"].as_str()), (Some("Complete"), Some("Failed")));
    assert_eq!(runs[1]["ttl_seconds_after_finished"], 3600);
    assert_eq!(alert(&runs[1], "KubeJobFailed")["fires"], true);
    assert_eq!(alert(&runs[0], "KubeJobFailed")["fires"], false);
}

#[test]
fn the_text_says_why_in_words_and_render_warns_of_a_short_ttl() {
    let out = xtask(&["alerts", "--fail-probability", "1", "--ttl-seconds-after-finished", "600"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("KubeJobFailed        never fires: pending from"), "{text}");
    assert!(text.contains("(--ttl-seconds-after-finished 1020 or more)"), "{text}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--ttl-seconds-after-finished 600: a failed Job is deleted 10m after it fails"), "{err}");

    let render = xtask(&["render", "--ttl-seconds-after-finished", "600"]);
    assert!(render.status.success());
    let err = String::from_utf8_lossy(&render.stderr);
    assert!(err.contains("before KubeJobFailed (kubernetes-mixin, `for: 15m`) can fire"), "{err}");
    let render = xtask(&["render"]);
    let err = String::from_utf8_lossy(&render.stderr);
    assert!(!err.contains("KubeJobFailed"), "the default TTL is long enough: {err}");
}

#[test]
fn name_with_job_flags_or_a_report_is_refused_with_exit_2() {
    let out = xtask(&["alerts", "--name", "retry-demo", "--fail-probability", "1"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--name retry-demo drills the Job on the cluster") && err.contains("--fail-probability"),
        "{err}"
    );
    let out = xtask(&["alerts", "--report", "x.json", "--name", "retry-demo"]);
    assert_eq!(out.status.code(), Some(2));
    let missing = Path::new("/nonexistent/report.json");
    let out = xtask(&["alerts", "--report", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_drills_text_is_a_reviewed_snapshot() {
    // A failed Job kept 10 minutes, and one that completed after retries.
    let dir = tempdir("alerts-snapshot");
    let mut texts = Vec::new();
    let completed = report(
        "Complete",
        "Complete",
        1,
        2,
        vec![
            pod("retry-0", "Failed", 1, 0.0, 5.0),
            pod("retry-1", "Failed", 1, 15.0, 20.0),
            pod("retry-2", "Succeeded", 0, 40.0, 45.0),
        ],
        45.0,
        3600,
    );
    for (name, r) in [("failed.json", failed_report(65.0, 600)), ("completed.json", completed)] {
        let file = write_file(&dir, name, &r.to_string());
        let out = xtask(&["alerts", "--report", file.to_str().unwrap()]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        texts.push(String::from_utf8_lossy(&out.stdout).replace(dir.to_str().unwrap(), "DIR"));
    }
    insta::assert_snapshot!(texts.join("\n"));
    std::fs::remove_dir_all(&dir).unwrap();
}
