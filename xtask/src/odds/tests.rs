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

const BUDGET: u64 = simulate::WORK_BUDGET;

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
    // A global limit no succeeding Job can reach (4 indexes x 1 failure)
    // changes nothing, whatever the size: 100000 indexes, limit 10^9
    // (the convolution alone would be far too long).
    let mut loose = base.to_vec();
    loose.extend(["--backoff-limit", "4"]);
    assert!(close(exact_p(&loose), 0.75f64.powi(4)));
    let mut huge = base.to_vec();
    (huge[3], huge[7]) = ("100000", "0.001");
    huge.extend(["--backoff-limit", "1000000000"]);
    assert!(close(exact_p(&huge), (1.0 - 0.001f64.powi(2)).powi(100_000)));
}

#[test]
fn fail_attempts_without_a_counter_never_completes() {
    // Never and no per-index limit: every pod is attempt 0 and fails.
    assert_eq!(exact_p(&["--fail-attempts", "1", "--fail-probability", "0"]), 0.0);
}

#[test]
fn hang_needs_every_first_attempt_to_succeed() {
    assert!(close(exact_p(&["--failure-mode", "hang"]), 0.8f64.powi(5)));
    let s = simulate::run_trials(&model(&["--failure-mode", "hang", "--fail-probability", "1"]), 200, 1, BUDGET);
    assert_eq!(s.share(End::DeadlineExceeded), 1.0);
}

/// The simulation agrees with the closed form within 4.5 standard errors
/// of a binomial proportion (fixed seeds: deterministic).
fn agrees(args: &[&str]) {
    let m = model(args);
    let e = exact::exact(&m).expect("a closed form");
    let n = 20_000;
    let s = simulate::run_trials(&m, n, 7, BUDGET);
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
    // OnFailure, one pod at a time: (1 - 0.2^3)^5 = 96.06%; a simulation
    // that replayed one draw per pod would give 0.8^5 = 33%.
    agrees(&["--restart-policy", "OnFailure", "--parallelism", "1"]);
    agrees(&["--restart-policy", "OnFailure", "--parallelism", "1", "--backoff-limit", "6"]);
    agrees(&["--restart-policy", "OnFailure", "--parallelism", "1", "--backoff-limit", "0"]);
    // Seeded, the attempt counted in STATE_DIR gives each restart its draw.
    agrees(&["--restart-policy", "OnFailure", "--parallelism", "1", "--seed", "7"]);
    agrees(&["--restart-policy", "OnFailure", "--completions", "1", "--seed", "7", "--fail-probability", "0.6"]);
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
    let s = simulate::run_trials(&m, n, 3, BUDGET);
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
        BUDGET,
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
    let s = simulate::run_trials(&m, 100, 1, BUDGET);
    assert_eq!(s.share(End::DeadlineExceeded), 1.0);
    // Back-off after failures: with every pod failing, pods are replaced
    // after 10, 20, 40 s: the 4th failure ends it at 2+10+2+20+2+40+2 s.
    let s = simulate::run_trials(&model(&["--fail-probability", "1", "--parallelism", "1"]), 10, 1, BUDGET);
    assert_eq!((s.share(End::BackoffLimitExceeded), s.seconds_median), (1.0, 78.0));
}

#[test]
fn the_simulation_is_reproducible() {
    let m = model(&["--restart-policy", "OnFailure", "--fail-probability", "0.4"]);
    let a = simulate::run_trials(&m, 2_000, 5, BUDGET);
    let b = simulate::run_trials(&m, 2_000, 5, BUDGET);
    assert_eq!((a.p_complete, a.seconds_mean, a.pods_mean), (b.p_complete, b.seconds_mean, b.pods_mean));
}

#[test]
fn seeded_on_failure_counts_attempts_and_the_model_knows() {
    // render mounts STATE_DIR when a seed meets OnFailure, so the worker
    // counts its restarts; the model follows the rendered pod.
    let seeded = model(&["--restart-policy", "OnFailure", "--seed", "7"]);
    assert!(seeded.state_dir);
    assert_eq!(seeded.worker_attempt(3, 0), 3);
    // Never: a new pod, a new emptyDir: attempt 0, and no volume without need.
    let never = model(&["--seed", "7"]);
    assert!(!never.state_dir);
    assert_eq!(never.worker_attempt(3, 2), 0);
    // Unseeded OnFailure without FAIL_ATTEMPTS needs no counter.
    assert!(!model(&["--restart-policy", "OnFailure"]).state_dir);
}

/// Pods in parallel under OnFailure have no closed form; unseeded (a fresh
/// draw per run) and seeded (a draw per pod and attempt) simulations model
/// the same chances and must agree within 4.5 standard errors of their
/// difference. A simulation that replayed one draw per pod would not.
#[test]
fn on_failure_in_parallel_draws_afresh_on_every_restart() {
    let n = 20_000;
    let unseeded = simulate::run_trials(&model(&["--restart-policy", "OnFailure"]), n, 3, BUDGET);
    let seeded = simulate::run_trials(&model(&["--restart-policy", "OnFailure", "--seed", "9"]), n, 4, BUDGET);
    let p = (unseeded.p_complete + seeded.p_complete) / 2.0;
    let se = (2.0 * p * (1.0 - p) / f64::from(n)).sqrt();
    assert!(
        (unseeded.p_complete - seeded.p_complete).abs() <= 4.5 * se,
        "unseeded {} vs seeded {}",
        unseeded.p_complete,
        seeded.p_complete
    );
    // Two pods in parallel can only do worse than one at a time (they
    // share the limit), and no worse than failing on any restart at all.
    let one_at_a_time = exact_p(&["--restart-policy", "OnFailure", "--parallelism", "1"]);
    assert!(unseeded.p_complete <= one_at_a_time + 4.5 * se, "{}", unseeded.p_complete);
    assert!(unseeded.p_complete >= 0.8f64.powi(5) - 4.5 * se, "{}", unseeded.p_complete);
}

/// The negative binomial tail summed term by term, for sizes where that is
/// still possible; the closed form must match it.
fn summed_tail(c: u32, f: f64, b: u32) -> f64 {
    let q = 1.0 - f;
    let mut log_term = f64::from(c) * q.ln();
    let mut p = 0.0;
    for k in 0..=b {
        p += log_term.exp();
        log_term += f.ln() + (f64::from(c) + f64::from(k)).ln() - (f64::from(k) + 1.0).ln();
    }
    p
}

#[test]
fn the_incomplete_beta_matches_the_summed_tail() {
    for (c, f, b) in [(5, 0.2, 3), (1000, 0.3, 430), (1000, 0.3, 380), (40, 0.9, 300), (1, 0.5, 0), (300, 0.01, 2)] {
        let args: Vec<String> = ["--completions", &c.to_string(), "--fail-probability", &f.to_string()]
            .into_iter()
            .chain(["--backoff-limit", &b.to_string()])
            .map(str::to_owned)
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (exact, summed) = (exact_p(&args), summed_tail(c, f, b));
        assert!((exact - summed).abs() < 1e-10, "{c} {f} {b}: {exact} vs {summed}");
    }
}

/// A huge Job: 1,000,000 completions, parallelism 1000,
/// backoffLimit 1000. The closed forms answer without a loop over the
/// completions; the 1001st failure comes after about 5005 pods.
#[test]
fn huge_jobs_have_exact_answers() {
    let m = model(&["--completions", "1000000", "--parallelism", "1000", "--backoff-limit", "1000"]);
    let e = exact::exact(&m).unwrap();
    assert!(e.p_complete < 1e-100, "{}", e.p_complete);
    // Failing: B + 1 failures and S successes, S negative binomial with
    // mean (B+1) q/f = 4004 and standard deviation sqrt((B+1) q)/f.
    let (mean, sd) = e.runs.unwrap();
    assert!((mean - 5005.0).abs() < 1e-6, "{mean}");
    assert!((sd - (1001.0f64 * 0.8).sqrt() / 0.2).abs() < 1e-6, "{sd}");
    // Rare failures: about 1001 expected failures (sd 31.7) before the
    // millionth success. 1500 allowed: certain; as many as expected: a
    // coin toss a little in favour (the distribution leans right).
    let rare = |b: &str| exact_p(&["--completions", "1000000", "--fail-probability", "0.001", "--backoff-limit", b]);
    assert!(rare("1500") > 1.0 - 1e-12, "{}", rare("1500"));
    assert!((0.5..0.56).contains(&rare("1001")), "{}", rare("1001"));
    assert!(rare("500") < 1e-12, "{}", rare("500"));
    // OnFailure one pod at a time, ten thousand pods: (1 - 0.2^3)^10000.
    let p = exact_p(&["--restart-policy", "OnFailure", "--parallelism", "1", "--completions", "10000"]);
    assert!((p / 0.992f64.powi(10_000) - 1.0).abs() < 1e-9, "{p}");
    // Per-index limits over 100000 indexes (the Kubernetes maximum).
    let p = exact_p(&[
        "--completion-mode",
        "Indexed",
        "--completions",
        "100000",
        "--backoff-limit-per-index",
        "5",
        "--fail-probability",
        "0.1",
    ]);
    assert!((p - (1.0 - 0.1f64.powi(6)).powi(100_000)).abs() < 1e-12, "{p}");
}

/// The simulation holds to its work budget: fewer Jobs, each one whole,
/// and an error stated for the Jobs it did simulate.
#[test]
fn the_simulation_of_a_huge_job_is_bounded_by_its_budget() {
    let m = model(&[
        "--completions",
        "100000",
        "--parallelism",
        "100",
        "--backoff-limit",
        "100",
        "--fail-probability",
        "0.001",
        "--active-deadline-seconds",
        "100000000",
    ]);
    let budget = 1_000_000;
    let s = simulate::run_trials(&m, 20_000, 1, budget);
    assert!(s.work <= budget, "{}", s.work);
    // A Job takes about 100000 runs, completing or failing (about 100
    // failures are expected, 101 fail it): at most 10 fit.
    assert!((1..=10).contains(&s.trials), "{}", s.trials);
    assert!(s.cut_short());
    let expected_se = (s.p_complete * (1.0 - s.p_complete) / f64::from(s.trials)).sqrt();
    assert_eq!(s.p_complete_se(), expected_se);
    // One Job larger than the whole budget: no trial, and nothing claimed.
    let s = simulate::run_trials(&m, 20_000, 1, 50_000);
    assert_eq!((s.trials, s.requested), (0, 20_000));
    assert!(s.work <= 50_000);
    // The small default Job is not cut.
    let s = simulate::run_trials(&model(&[]), 20_000, 1, BUDGET);
    assert!(!s.cut_short() && s.trials == 20_000);
}

#[test]
fn index_classes_count_every_index_once() {
    let m = model(&["--completion-mode", "Indexed", "--completions", "10", "--fail-indexes", "0,3-5,8:42,12-20"]);
    assert_eq!(m.index_classes(), [(0, 5), (1, 5)]);
    let m = model(&["--completion-mode", "Indexed", "--completions", "7", "--fail-indexes", "odd"]);
    assert_eq!(m.index_classes(), [(1, 3), (0, 4)]);
    let m = model(&["--completion-mode", "Indexed", "--completions", "3", "--fail-indexes", "0-2"]);
    assert_eq!(m.index_classes(), [(0, 3)]);
    assert_eq!(model(&[]).index_classes(), [(0, 5)]);
}

#[test]
fn clopper_pearson_matches_published_values() {
    // R: binom.test(3, 10)$conf.int = 0.06673951 0.65245285
    let (low, high) = exact::clopper_pearson(3, 10, 0.05);
    assert!((low - 0.066_739_51).abs() < 1e-6 && (high - 0.652_452_85).abs() < 1e-6, "{low} {high}");
    // binom.test(0, 20)$conf.int = 0 0.1684335
    let (low, high) = exact::clopper_pearson(0, 20, 0.05);
    assert!(low == 0.0 && (high - 0.168_433_5).abs() < 1e-6, "{high}");
    assert_eq!(exact::clopper_pearson(5, 5, 0.05).1, 1.0);
}

#[test]
fn clopper_pearson_matches_known_intervals() {
    // 0 of 10: the upper end is 1 - 0.025^(1/10).
    let (low, high) = exact::clopper_pearson(0, 10, 0.05);
    assert_eq!(low, 0.0);
    assert!((high - (1.0 - 0.025f64.powf(0.1))).abs() < 1e-9, "{high}");
    // 5 of 10: 0.187086 to 0.812914 (symmetric), as published tables give.
    let (low, high) = exact::clopper_pearson(5, 10, 0.05);
    assert!((low - 0.187086).abs() < 1e-5 && (high - 0.812914).abs() < 1e-5, "{low} {high}");
}
