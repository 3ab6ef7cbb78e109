//! The closed forms against hand-computed values, and against the seeded
//! simulation, which decides every run with the worker's own function.

use clap::Parser;

use super::*;
use crate::flags::{Command, Xtask};

fn model(args: &[&str]) -> Model {
    let mut argv = vec!["cargo xtask", "odds"];
    argv.extend_from_slice(args);
    let Command::Odds(flags) = Xtask::try_parse_from(argv).unwrap().command else { unreachable!() };
    let (params, _) = params::job_params(&flags.job).unwrap();
    Model::new(&params, DEFAULT_POD_STARTUP)
}

/// OnFailure, one pod at a time, 3 completions, backoffLimit 2, p = 0.3,
/// and the first attempt of every pod fails (counted in STATE_DIR).
const ON_FAILURE_FIRST_ATTEMPT_FAILS: &[&str] = &[
    "--restart-policy",
    "OnFailure",
    "--parallelism",
    "1",
    "--completions",
    "3",
    "--backoff-limit",
    "2",
    "--fail-probability",
    "0.3",
    "--fail-attempts",
    "1",
];

fn exact_p(args: &[&str]) -> f64 {
    exact::exact(&model(args)).expect("a closed form").p_complete
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[test]
fn never_matches_the_hand_computed_negative_binomial() {
    // p = 0.2, 5 completions, backoffLimit 3: at most 3 failures before the
    // 5th success: 0.8^5 (1 + 5(0.2) + 15(0.04) + 35(0.008)) = 0.32768 * 2.88.
    assert!(close(exact_p(&[]), 0.943_718_4), "{}", exact_p(&[]));
    // backoffLimit 0: no failure at all.
    assert!(close(exact_p(&["--backoff-limit", "0"]), 0.8f64.powi(5)));
    // p = 0 always, p = 1 never.
    assert_eq!(exact_p(&["--fail-probability", "0"]), 1.0);
    assert_eq!(exact_p(&["--fail-probability", "1"]), 0.0);
    // A single completion with backoffLimit 1: fails only when both tries fail.
    assert!(close(exact_p(&["--completions", "1", "--backoff-limit", "1", "--fail-probability", "0.5"]), 0.75));
}

#[test]
fn never_runs_follow_the_negative_binomial() {
    // 1 completion, backoffLimit 2, p = 0.5: 1 run (1/2), 2 runs (1/4), 3 runs (1/4).
    let e = exact::exact(&model(&["--completions", "1", "--backoff-limit", "2", "--fail-probability", "0.5"])).unwrap();
    let (mean, sd) = e.runs.unwrap();
    assert!(close(mean, 1.75));
    assert!(close(sd, (0.5 + 4.0 * 0.25 + 9.0 * 0.25 - 1.75f64 * 1.75).sqrt()));
}

#[test]
fn on_failure_with_one_pod_at_a_time() {
    // Each pod fails the Job when its own restarts reach 3: (1 - 0.2^3)^5.
    let p = exact_p(&["--restart-policy", "OnFailure", "--parallelism", "1"]);
    assert!(close(p, (1.0 - 0.008f64).powi(5)), "{p}");
    // backoffLimit 0: any restart fails the Job.
    let p = exact_p(&["--restart-policy", "OnFailure", "--parallelism", "1", "--backoff-limit", "0"]);
    assert!(close(p, 0.8f64.powi(5)), "{p}");
    // The first attempt of each pod fails (counted in STATE_DIR); then 0.3.
    let p = exact_p(ON_FAILURE_FIRST_ATTEMPT_FAILS);
    assert!(close(p, 0.7f64.powi(3)), "{p}");
    // Pods in parallel share the limit: no closed form.
    assert!(exact::exact(&model(&["--restart-policy", "OnFailure"])).is_none());
}

#[test]
fn per_index_limits_make_indexes_independent() {
    let base = [
        "--completion-mode",
        "Indexed",
        "--completions",
        "4",
        "--backoff-limit-per-index",
        "1",
        "--fail-probability",
        "0.5",
    ];
    assert!(close(exact_p(&base), 0.75f64.powi(4)));
    // Index 0 always fails: the Job cannot complete.
    let mut with_index = base.to_vec();
    with_index.extend(["--fail-indexes", "0"]);
    assert_eq!(exact_p(&with_index), 0.0);
    // The first attempt of every index fails (JOB_INDEX_FAILURE_COUNT), so
    // each index must succeed on its second and last try.
    let mut first_fails = base.to_vec();
    first_fails.extend(["--fail-attempts", "1"]);
    assert!(close(exact_p(&first_fails), 0.5f64.powi(4)));
    // A global backoffLimit on top: at most 1 failure in all.
    let mut global = base.to_vec();
    global.extend(["--backoff-limit", "1"]);
    // all succeed first (1/16 * ... ) : P(total failures <= 1, all succeed)
    // = (1/2)^4 + 4 * (1/4) * (1/2)^3.
    assert!(close(exact_p(&global), 0.0625 + 4.0 * 0.25 * 0.125));
}

#[test]
fn fail_attempts_without_a_counter_never_completes() {
    // Never and no per-index limit: every pod is attempt 0 and fails.
    assert_eq!(exact_p(&["--fail-attempts", "1", "--fail-probability", "0"]), 0.0);
}

#[test]
fn hang_needs_every_first_attempt_to_succeed() {
    assert!(close(exact_p(&["--failure-mode", "hang"]), 0.8f64.powi(5)));
    let s = simulate::run_trials(&model(&["--failure-mode", "hang", "--fail-probability", "1"]), 200, 1);
    assert_eq!(s.share(End::DeadlineExceeded), 1.0);
}

/// The simulation agrees with the closed form within 4.5 standard errors
/// of a binomial proportion (fixed seeds: deterministic).
fn agrees(args: &[&str]) {
    let m = model(args);
    let e = exact::exact(&m).expect("a closed form");
    let n = 20_000;
    let s = simulate::run_trials(&m, n, 7);
    let se = (e.p_complete * (1.0 - e.p_complete) / f64::from(n)).sqrt();
    let bound = 4.5 * se + 1e-9;
    assert!(
        (s.p_complete - e.p_complete).abs() <= bound,
        "{args:?}: simulated {} vs exact {} (bound {bound})",
        s.p_complete,
        e.p_complete
    );
}

#[test]
fn the_simulation_agrees_with_the_closed_forms() {
    agrees(&[]);
    agrees(&["--fail-probability", "0.5", "--completions", "3", "--backoff-limit", "2", "--parallelism", "3"]);
    agrees(&[
        "--completion-mode",
        "Indexed",
        "--completions",
        "4",
        "--backoff-limit-per-index",
        "1",
        "--fail-probability",
        "0.5",
    ]);
    agrees(&[
        "--completion-mode",
        "Indexed",
        "--completions",
        "4",
        "--backoff-limit-per-index",
        "2",
        "--fail-probability",
        "0.3",
        "--fail-attempts",
        "1",
    ]);
    agrees(ON_FAILURE_FIRST_ATTEMPT_FAILS);
    agrees(&["--failure-mode", "hang", "--fail-probability", "0.1"]);
    agrees(&["--completion-mode", "Indexed", "--fail-probability", "0.3", "--parallelism", "5"]);
}

#[test]
fn the_simulated_runs_agree_with_the_exact_mean() {
    // One pod at a time: no pod is deleted in flight, so the pods that end
    // are all the pods, and the means must agree (4.5 standard errors).
    let m = model(&["--parallelism", "1"]);
    let (mean, sd) = exact::exact(&m).unwrap().runs.unwrap();
    let n = 20_000;
    let s = simulate::run_trials(&m, n, 3);
    assert!((s.runs_mean - mean).abs() <= 4.5 * sd / f64::from(n).sqrt(), "{} vs {mean}", s.runs_mean);
    assert_eq!(s.pods_mean, s.runs_mean);
}

#[test]
fn time_and_the_deadline() {
    // 10 s of work, one pod at a time, five pods, no failures: 5 x (2 s + 10 s).
    let s = simulate::run_trials(
        &model(&["--fail-probability", "0", "--parallelism", "1", "--work-duration", "10s"]),
        100,
        1,
    );
    assert_eq!((s.p_complete, s.seconds_median), (1.0, 60.0));
    // A 30 s deadline cuts that short every time.
    let m = model(&[
        "--fail-probability",
        "0",
        "--parallelism",
        "1",
        "--work-duration",
        "10s",
        "--active-deadline-seconds",
        "30",
    ]);
    let s = simulate::run_trials(&m, 100, 1);
    assert_eq!(s.share(End::DeadlineExceeded), 1.0);
    // Back-off after failures: with every pod failing, pods are replaced
    // after 10, 20, 40 s: the 4th failure ends it at 2+10+2+20+2+40+2 s.
    let s = simulate::run_trials(&model(&["--fail-probability", "1", "--parallelism", "1"]), 10, 1);
    assert_eq!((s.share(End::BackoffLimitExceeded), s.seconds_median), (1.0, 78.0));
}

#[test]
fn the_simulation_is_reproducible() {
    let m = model(&["--restart-policy", "OnFailure", "--fail-probability", "0.4"]);
    let a = simulate::run_trials(&m, 2_000, 5);
    let b = simulate::run_trials(&m, 2_000, 5);
    assert_eq!((a.p_complete, a.seconds_mean, a.pods_mean), (b.p_complete, b.seconds_mean, b.pods_mean));
}
