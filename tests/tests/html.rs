//! `cargo xtask report --html`: a saved run drawn as one self-contained
//! page, opened by a real browser (headless Chromium) from the file,
//! offline: the bars it shows, the lines, the numbers, and no request to
//! anywhere.

use std::path::Path;

use serde_json::{Value, json};
use tests::browser::{self, Bar};
use tests::{tempdir, write_file, xtask};

fn pod(name: &str, phase: &str, exit: Option<i32>, reason: &str, message: Option<&str>, from: f64, to: f64) -> Value {
    json!({
        "name": name, "phase": phase, "index": null, "exit_code": exit, "reason": reason,
        "message": message, "restarts": 0, "created_at": from, "finished_at": to,
    })
}

/// A Job of two slots that ran out of its 30 s deadline: one pod of each
/// ending, the last restarted twice before the deadline stopped it.
fn deadline_report() -> Value {
    let mut stopped = pod("html-e", "Failed", None, "DeadlineExceeded", None, 16.5, 30.0);
    stopped["restarts"] = json!(2);
    json!({
        "job": "html", "namespace": "job-test", "result": "Failed", "reason": "DeadlineExceeded",
        "message": "Job was active longer than specified deadline",
        "succeeded": 1, "completions": 3, "failed_pods": 4, "seconds": 30.0,
        "runs": 5, "failed_runs": 4, "configured_probability": 0.5,
        "pods": [
            pod("html-a", "Succeeded", Some(0), "Completed", None, 0.5, 4.0),
            pod("html-b", "Failed", Some(1), "Error", Some("job-worker: simulated failure (draw 0.31 < 0.5)"), 0.5, 3.0),
            pod("html-c", "Failed", Some(137), "OOMKilled", None, 13.0, 16.0),
            pod("html-d", "Failed", Some(143), "Evicted", Some("evicted through the Eviction API; counted"), 4.5, 12.0),
            stopped,
        ],
        "conditions": [
            {"type": "FailureTarget", "status": "True", "reason": "DeadlineExceeded", "message": "", "at": 30.0},
            {"type": "Failed", "status": "True", "reason": "DeadlineExceeded",
             "message": "Job was active longer than specified deadline", "at": 30.0},
        ],
        "times": {"started": 0.2, "finished": 30.0, "ttl_seconds_after_finished": 3600,
                  "active_deadline_seconds": 30, "parallelism": 2},
    })
}

/// `report --html` of `report`, which must succeed; the page's path and text.
fn draw(dir: &Path, report: &Value) -> (std::path::PathBuf, String) {
    let from = write_file(dir, "report.json", &report.to_string());
    let page = dir.join("run.html");
    let out =
        xtask(&["--output", "json", "report", "--html", page.to_str().unwrap(), "--from", from.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(stderr.contains(&format!("wrote {} ({} KB)", page.display(), html.len().div_ceil(1024))), "{stderr}");
    let drawn: Value = serde_json::from_slice(&out.stdout).expect("one JSON object on stdout");
    assert_eq!(drawn["html"].as_str(), page.to_str());
    assert_eq!(drawn["bytes"].as_u64(), Some(html.len() as u64));
    (page, html)
}

#[test]
fn html_a_browser_shows_each_pod_as_it_ended_offline() {
    let dir = tempdir("html-page");
    let (page, html) = draw(&dir, &deadline_report());
    let opened = browser::open(&page);

    let mut bars = browser::bars(&opened.dom);
    bars.sort();
    let expected: Vec<Bar> = [
        ("html-a", "succeeded"),
        ("html-b", "failed"),
        ("html-c", "oom"),
        ("html-d", "evicted"),
        ("html-e", "deadline"),
    ]
    .iter()
    .map(|(pod, outcome)| Bar { pod: (*pod).into(), outcome: (*outcome).into() })
    .collect();
    assert_eq!(bars, expected);
    // The deadline 30 s after the start (0.2 s): a line in the plot; the TTL
    // (an hour after the end) is beyond the view and said in a note.
    let lines: Vec<&str> = browser::elements(&opened.dom, "<line ").collect();
    let at = |class: &str| -> Vec<String> {
        lines
            .iter()
            .filter(|l| browser::attribute(l, "class").as_deref() == Some(class))
            .filter_map(|l| browser::attribute(l, "data-at"))
            .collect()
    };
    assert_eq!(at("deadline"), ["30.2"]);
    assert_eq!(at("ttl"), Vec::<String>::new());
    assert!(opened.dom.contains("ttlSecondsAfterFinished deletes the Job at 3630 s: beyond this view"));
    // Two restarts, two marks in that pod's bar.
    let restarts = lines.iter().filter(|l| browser::attribute(l, "data-pod").as_deref() == Some("html-e")).count();
    assert_eq!(restarts, 2);
    // The hover: pod, exit code, reason, termination message.
    assert!(
        opened.dom.contains(
            "<title>html-b · exit 1 · Error · 0.5 s–3 s\njob-worker: simulated failure (draw 0.31 &lt; 0.5)</title>"
        ),
        "{}",
        opened.dom
    );
    // The verdict and the failure rate: 4 of 5 runs, whose exact 95%
    // interval (R: binom.test(4, 5)) is 0.284–0.995.
    assert!(opened.dom.contains("Failed: DeadlineExceeded"));
    assert!(opened.dom.contains("FailureTarget (DeadlineExceeded), Failed (DeadlineExceeded)"));
    assert!(opened.dom.contains("<b>4 of 5 runs = 80%</b>"));
    assert!(opened.dom.contains("95% interval 28%–99% (Clopper-Pearson, exact binomial)"));
    assert!(opened.dom.contains("configured FAIL_PROBABILITY 0.5: <span class=\"inside\">"));

    // Offline: the page asked the network for nothing, and names no address
    // it could ask.
    assert_eq!(opened.requests, Vec::<String>::new());
    for scheme in ["http://", "https://", "<script", "@import", "url(http"] {
        assert!(!html.contains(scheme), "the page holds {scheme}");
    }
    // The check sees a request when a page makes one.
    let port = tests::free_port();
    let fetching = write_file(&dir, "fetching.html", &format!("<img src=\"http://127.0.0.1:{port}/x.png\">"));
    assert_eq!(browser::open(&fetching).requests, [format!("http://127.0.0.1:{port}/x.png")]);

    // `release --output json` holds the report under "report": the same page.
    let (_, from_release) = draw(&dir, &json!({"image": "job-test:1@sha256:0", "report": deadline_report()}));
    assert_eq!(from_release, html);

    let png = browser::screenshot(&page, 1200, 800);
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    // IHDR: width and height, big-endian, after the signature and the chunk header.
    assert_eq!(
        (u32::from_be_bytes(png[16..20].try_into().unwrap()), u32::from_be_bytes(png[20..24].try_into().unwrap())),
        (1200, 800)
    );
    assert!(png.len() > 10_000, "a near-empty screenshot: {} bytes", png.len());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A Job of 10,000 pods on 100 slots, every `fail_every`th pod failed.
fn big_report(fail_every: usize) -> Value {
    let pods: Vec<Value> = (0..10_000)
        .map(|n| {
            let (slot_turn, from) = (n / 100, (n / 100) as f64 * 3.0);
            let failed = n % fail_every == 0;
            let name = format!("big-{slot_turn:03}-{:02}x7k2p", n % 100);
            if failed {
                pod(
                    &name,
                    "Failed",
                    Some(1),
                    "Error",
                    Some("job-worker: simulated failure (draw 0.04 < 0.1)"),
                    from,
                    from + 2.5,
                )
            } else {
                pod(&name, "Succeeded", Some(0), "Completed", None, from, from + 2.5)
            }
        })
        .collect();
    let failed = 10_000_usize.div_ceil(fail_every) as i32;
    json!({
        "job": "big", "namespace": "job-test", "result": "Complete", "reason": "", "message": "",
        "succeeded": 10_000 - failed, "completions": 10_000 - failed, "failed_pods": failed, "seconds": 300.0,
        "runs": 10_000, "failed_runs": failed, "configured_probability": 0.1, "pods": pods,
        "conditions": [{"type": "Complete", "status": "True", "reason": "", "message": "", "at": 300.0}],
        "times": {"started": 0.0, "finished": 300.0, "ttl_seconds_after_finished": 3600,
                  "active_deadline_seconds": null, "parallelism": 100},
    })
}

/// docs/reports.md states these sizes.
#[test]
fn html_of_ten_thousand_pods_stays_small_and_keeps_every_failed_pod() {
    let dir = tempdir("html-big");
    for (fail_every, limit_kb) in [(10, 400), (1, 3_000)] {
        let (_, html) = draw(&dir, &big_report(fail_every));
        let failed = 10_000_usize.div_ceil(fail_every);
        eprintln!("10,000 pods, {failed} failed: {} KB", html.len() / 1024);
        assert!(html.len() < limit_kb * 1024, "{failed} failed: {} KB, more than {limit_kb} KB", html.len() / 1024);
        let bars = browser::bars(&html);
        assert_eq!(bars.iter().filter(|b| b.outcome == "failed").count(), failed);
        // The successes are folded: none has a bar of its own, each slot's
        // are counted once.
        assert_eq!(bars.iter().filter(|b| b.outcome == "succeeded").count(), 0);
        let folded: usize = browser::elements(&html, "<rect class=\"fold\"")
            .map(|r| browser::attribute(r, "data-count").unwrap().parse::<usize>().unwrap())
            .sum();
        assert_eq!(folded, 10_000 - failed);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn html_from_a_missing_or_foreign_file_is_a_usage_error() {
    let dir = tempdir("html-bad");
    let page = dir.join("run.html");
    let missing = dir.join("none.json");
    let not_json = write_file(&dir, "notes.txt", "not json");
    let not_report = write_file(&dir, "other.json", "{\"kind\": \"Job\"}");
    for (from, says) in [
        (&missing, "cannot read it (No such file or directory"),
        (&not_json, "not JSON"),
        (&not_report, "not a Job report"),
    ] {
        let out = xtask(&["report", "--html", page.to_str().unwrap(), "--from", from.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(&format!("--from {}: {says}", from.display())), "{stderr}");
        assert!(stderr.contains("--save-report"), "the fix is named: {stderr}");
        assert!(!page.exists(), "no page is written from {}", from.display());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn odds_html_draws_the_chance_by_limit_and_the_runs_against_the_deadline() {
    let dir = tempdir("odds-html");
    let page = dir.join("odds.html");
    let flags =
        ["--fail-probability", "0.5", "--completions", "3", "--backoff-limit", "4", "--active-deadline-seconds", "40"];
    let mut args = vec!["--output", "json", "odds", "--html", page.to_str().unwrap()];
    args.extend_from_slice(&flags);
    let out = xtask(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let odds: Value = serde_json::from_slice(&out.stdout).unwrap();
    let opened = browser::open(&page);
    assert_eq!(opened.requests, Vec::<String>::new());
    // A bar per limit from 0, the one given marked, each with its exact chance:
    // for Never the chance that 3 successes come before the (b+1)-th failure.
    let limits: Vec<(u32, f64, bool)> = browser::elements(&opened.dom, "<rect ")
        .filter(|t| browser::attribute(t, "class").is_some_and(|c| c.starts_with("limit")))
        .map(|t| {
            (
                browser::attribute(t, "data-limit").unwrap().parse().unwrap(),
                browser::attribute(t, "data-chance").unwrap().parse().unwrap(),
                browser::attribute(t, "class").unwrap().contains("current"),
            )
        })
        .collect();
    assert_eq!(limits.len(), 31, "{limits:?}");
    let complete = |b: u32| tests::completes_before(3, b + 1, 0.5);
    for (limit, chance, current) in &limits {
        assert!((chance - complete(*limit)).abs() < 1e-12, "limit {limit}: {chance}");
        assert_eq!(*current, *limit == 4);
    }
    assert_eq!(odds["exact"]["p_complete"].as_f64(), Some(limits[4].1));
    // The histograms count every simulated Job, and the deadline is drawn.
    let count = |unit_class: &str| -> u64 {
        let svg = &opened.dom[opened.dom.find(&format!("class=\"plot {unit_class}\"")).unwrap()..];
        let svg = &svg[..svg.find("</svg>").unwrap()];
        browser::elements(svg, "<rect ")
            .map(|t| browser::attribute(t, "data-count").unwrap().parse::<u64>().unwrap())
            .sum()
    };
    let trials = odds["simulated"]["trials"].as_u64().unwrap();
    assert_eq!((count("pods"), count("seconds")), (trials, trials));
    assert_eq!(browser::elements(&opened.dom, "<line ").filter(|t| t.contains("class=\"deadline\"")).count(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}
