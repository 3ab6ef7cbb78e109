//! `odds --target` and `odds -f`: tuning settings to a target, held to the
//! closed forms computed here independently, and the odds of a Job file
//! equal to the odds of the flags it was rendered from.

use serde_json::Value;
use tests::{tempdir, xtask};

fn json(args: &[&str]) -> Value {
    let mut all = vec!["--output", "json", "odds"];
    all.extend_from_slice(args);
    let out = xtask(&all);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Never, NonIndexed, backoffLimit `b`: completes when `c` successes come
/// before the (b+1)-th failure.
fn never_complete(c: u32, b: u32, f: f64) -> f64 {
    tests::completes_before(c, b + 1, f)
}

#[test]
fn target_is_the_smallest_backoff_limit_whose_exact_chance_reaches_it() {
    for (c, f, target) in [(5u32, 0.2, "99.9%"), (20, 0.5, "0.99"), (1, 0.3, "99.99%"), (3, 0.05, "90%")] {
        let t: f64 =
            target.strip_suffix('%').map_or_else(|| target.parse().unwrap(), |p| p.parse::<f64>().unwrap() / 100.0);
        let v = json(&["--target", target, "--completions", &c.to_string(), "--fail-probability", &f.to_string()]);
        let b = v["limit"].as_u64().unwrap() as u32;
        assert!(never_complete(c, b, f) >= t, "{c} {f} {target}: {v}");
        if b > 0 {
            assert!(never_complete(c, b - 1, f) < t, "{c} {f} {target}: one less reaches it too: {v}");
        }
        assert!((v["p_complete"].as_f64().unwrap() - never_complete(c, b, f)).abs() < 1e-9, "{v}");
        assert!(v["flags"].as_str().unwrap().starts_with(&format!("--backoff-limit {b}")), "{v}");
    }
}

#[test]
fn target_for_an_indexed_job_tunes_the_per_index_limit() {
    // Each index completes unless its L+1 tries all fail: (1 - f^(L+1))^C.
    let (c, f, t) = (10u32, 0.3, 0.999);
    let v = json(&[
        "--target",
        "99.9%",
        "--completion-mode",
        "Indexed",
        "--completions",
        "10",
        "--backoff-limit-per-index",
        "1",
        "--fail-probability",
        "0.3",
    ]);
    let l = v["limit"].as_u64().unwrap() as i32;
    let chance = |l: i32| (1.0 - f64::powi(f, l + 1)).powi(c as i32);
    assert!(chance(l) >= t && chance(l - 1) < t, "{v}");
    assert_eq!(v["knob"], "backoff_limit_per_index");
    assert!(v["flags"].as_str().unwrap().starts_with(&format!("--backoff-limit-per-index {l} --max-failed-indexes ")));
}

#[test]
fn an_unreachable_target_says_why_with_exit_2() {
    let out = xtask(&["odds", "--target", "99%", "--fail-probability", "1"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--target 99.00%: no --backoff-limit reaches it"), "{err}");
    let out = xtask(&["odds", "--target", "100%"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("give a chance above 0 and below 100%"));
}

/// The rendering examples of docs/manifests.md that a Job's odds can be
/// computed for (the test below holds the page to them).
const DOC_JOBS: [&[&str]; 4] = [
    &[],
    &[
        "--completion-mode",
        "Indexed",
        "--backoff-limit-per-index",
        "1",
        "--fail-indexes",
        "0,1:42",
        "--fail-probability",
        "0",
    ],
    &["--restart-policy", "OnFailure", "--parallelism", "1", "--seed", "7"],
    &["--fail-probability", "0.5", "--backoff-limit", "6"],
];

#[test]
fn the_doc_jobs_are_rendering_examples_in_docs_manifests() {
    let page = std::fs::read_to_string(tests::project_root().join("docs/manifests.md")).unwrap();
    // A command continued on the next line (`\`) is one command; what
    // follows `>` or `#` is not a flag.
    let page = page.replace("\\\n", " ");
    let examples: Vec<String> = page
        .lines()
        .filter_map(|l| l.trim().strip_prefix("cargo xtask render"))
        .map(|rest| rest.split(['#', '>']).next().unwrap().split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    for flags in DOC_JOBS {
        assert!(
            examples.contains(&flags.join(" ")),
            "docs/manifests.md has no `cargo xtask render {}`",
            flags.join(" ")
        );
    }
}

#[test]
fn odds_of_a_job_file_are_the_odds_of_the_flags_it_was_rendered_from() {
    let dir = tempdir("odds-f");
    for (i, flags) in DOC_JOBS.iter().enumerate() {
        let file = dir.join(format!("job-{i}.yaml"));
        let mut render = vec!["render", "--out", file.to_str().unwrap()];
        render.extend_from_slice(flags);
        assert!(xtask(&render).status.success(), "{flags:?}");
        let from_file = json(&["-f", file.to_str().unwrap()]);
        let from_flags = json(flags);
        assert_eq!(from_file, from_flags, "{flags:?}");
    }
    // A rule of the user's own is refused with the field named.
    let file = dir.join("rule.yaml");
    let rendered = xtask(&["render", "--out", file.to_str().unwrap(), "--pod-failure-rule", "Ignore:exit=1"]);
    assert!(rendered.status.success());
    let out = xtask(&["odds", "-f", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("job.batch/job-test: spec.podFailurePolicy.rules[0]: odds cannot model"), "{err}");
    let out = xtask(&["odds", "-f", file.to_str().unwrap(), "--completions", "3"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the file describes the Job; leave out --completions"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_target_text_is_a_reviewed_snapshot() {
    let out = xtask(&["odds", "--target", "99.9%"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    insta::assert_snapshot!(String::from_utf8_lossy(&out.stdout));
}
