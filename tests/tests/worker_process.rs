//! The built static worker, run as a process: what a user of a Job sees of
//! it (exit codes, signals, logs, the termination message), on both
//! platforms the image ships. Each test is written once, taking the
//! architecture, and `on_both_architectures!` makes two tests of it:
//! `x86_64::NAME` runs the x86_64 binary, `aarch64::NAME` the arm64 one
//! under `qemu-aarch64-static`. Every test holds under qemu; none is
//! x86_64-only.

use std::time::Duration;

use tests::tempdir;
use tests::worker::{Arch, worker};

/// A module per architecture with one `#[test]` per named function. A
/// function written for it but left out of the list is never called, which
/// the dead-code lint (an error under `clippy -D warnings`) reports.
macro_rules! on_both_architectures {
    ($($name:ident),* $(,)?) => {
        mod x86_64 {
            $(#[test] fn $name() { super::$name(tests::worker::Arch::X86_64) })*
        }
        mod aarch64 {
            $(#[test] fn $name() { super::$name(tests::worker::Arch::Aarch64) })*
        }
    };
}

on_both_architectures!(
    success_exits_zero_and_logs_the_draw_and_threshold,
    exit_mode_uses_the_configured_exit_code,
    panic_mode_panics_like_a_rust_program,
    abort_mode_dies_by_sigabrt,
    hang_mode_hangs_until_sigterm_then_exits_143,
    sigterm_during_work_exits_143_before_the_work_is_done,
    sigint_exits_130,
    long_work_logs_ticks_and_then_decides,
    the_termination_message_says_why_the_run_failed,
    an_unwritable_termination_log_does_not_change_the_outcome,
    every_json_line_has_a_timestamp_and_an_event,
    plain_lines_are_one_per_event,
    a_seeded_run_of_the_same_pod_is_reproducible_and_a_new_pod_draws_anew,
    listed_indexes_fail_with_their_exit_codes_before_any_draw,
    odd_indexes_fail_and_even_succeed,
    fail_attempts_counted_in_state_dir_across_restarts,
    fail_attempts_counted_by_job_index_failure_count,
    fail_attempts_without_a_counter_warns_in_the_start_line,
    rules_come_before_the_draw,
    invalid_configuration_exits_2_with_the_name_the_value_and_the_fix,
    every_invalid_setting_is_reported_at_once,
    a_configuration_error_writes_its_reason_to_the_termination_log,
    a_seeded_container_restarted_in_its_pod_draws_anew_per_attempt,
    help_and_version,
);

/// How long a signalled worker may take to exit before the test calls it
/// hung. The contract is 100 ms; `cargo xtask bench` measures the real
/// latency. This bound only tells "handled" from "ignored" on a loaded CI
/// machine.
const SIGNAL_LIMIT: Duration = Duration::from_secs(5);

fn success_exits_zero_and_logs_the_draw_and_threshold(arch: Arch) {
    let run = worker(arch).json().env("FAIL_PROBABILITY", "0").run();
    assert_eq!(run.code(), Some(0), "{run:?}");
    let outcome = run.event("outcome");
    assert_eq!(outcome["result"], "success");
    assert_eq!(outcome["threshold"], 0.0);
    let draw = outcome["draw"].as_f64().unwrap();
    assert!((0.0..1.0).contains(&draw));
}

fn exit_mode_uses_the_configured_exit_code(arch: Arch) {
    let run = worker(arch).args(["--fail-probability", "1"]).run();
    assert_eq!(run.code(), Some(1), "{run:?}");
    let run = worker(arch).args(["--fail-probability", "1", "--fail-exit-code", "7"]).run();
    assert_eq!(run.code(), Some(7), "{run:?}");
    let run = worker(arch).env("FAIL_PROBABILITY", "1").env("FAIL_EXIT_CODE", "255").run();
    assert_eq!(run.code(), Some(255), "{run:?}");
}

fn panic_mode_panics_like_a_rust_program(arch: Arch) {
    let run = worker(arch).args(["--fail-probability", "1", "--failure-mode", "panic"]).run();
    assert_eq!(run.code(), Some(101), "{run:?}");
    assert!(run.stderr.contains("panicked") && run.stderr.contains("simulated failure"), "{}", run.stderr);
}

fn abort_mode_dies_by_sigabrt(arch: Arch) {
    let run = worker(arch).args(["--fail-probability", "1", "--failure-mode", "abort"]).run();
    assert_eq!(run.signal(), Some(libc::SIGABRT), "{run:?}");
    assert_eq!(run.code(), None);
}

fn hang_mode_hangs_until_sigterm_then_exits_143(arch: Arch) {
    let mut running = worker(arch).json().args(["--fail-probability", "1", "--failure-mode", "hang"]).spawn();
    running.wait_for_line("\"outcome\"");
    // Still there a while later: it does not end on its own.
    std::thread::sleep(Duration::from_millis(300));
    running.signal(libc::SIGTERM);
    let run = running.wait(SIGNAL_LIMIT);
    assert_eq!(run.code(), Some(143), "{run:?}");
    let signal = run.event("signal");
    assert_eq!(signal["signal"], "SIGTERM");
    assert_eq!(signal["during"], "while hanging");
    assert!(signal["elapsed_ms"].as_u64().unwrap() >= 300);
}

fn sigterm_during_work_exits_143_before_the_work_is_done(arch: Arch) {
    let termination_log = tempdir("term-work").join("termination-log");
    let mut running = worker(arch)
        .json()
        .env("TERMINATION_LOG", &termination_log)
        .args(["--work-duration", "1h", "--fail-probability", "0"])
        .spawn();
    running.wait_for_line("\"start\"");
    running.signal(libc::SIGTERM);
    let run = running.wait(SIGNAL_LIMIT);
    assert_eq!(run.code(), Some(143), "{run:?}");
    assert_eq!(run.event("signal")["during"], "while working");
    // No decision was made: it was interrupted first.
    assert!(!run.stdout.contains("\"outcome\""), "{}", run.stdout);
    let message = std::fs::read_to_string(&termination_log).unwrap();
    assert!(message.starts_with("job-worker: terminated by SIGTERM after"), "{message}");
    assert_eq!(message.lines().count(), 1);
}

fn sigint_exits_130(arch: Arch) {
    let mut running = worker(arch).args(["--work-duration", "1h"]).spawn();
    running.wait_for_line(" start ");
    running.signal(libc::SIGINT);
    let run = running.wait(SIGNAL_LIMIT);
    assert_eq!(run.code(), Some(130), "{run:?}");
    assert!(run.stdout.contains(" signal signal=SIGINT"), "{}", run.stdout);
}

fn long_work_logs_ticks_and_then_decides(arch: Arch) {
    let run = worker(arch).json().args(["--work-duration", "2500ms", "--fail-probability", "0"]).run();
    assert_eq!(run.code(), Some(0), "{run:?}");
    let events: Vec<String> = run.json_lines().iter().map(|v| v["event"].as_str().unwrap().to_owned()).collect();
    assert_eq!(events, ["start", "work", "work", "outcome"]);
    assert!(run.event("outcome")["elapsed_ms"].as_u64().unwrap() >= 2500);
}

fn the_termination_message_says_why_the_run_failed(arch: Arch) {
    let dir = tempdir("term");
    let path = dir.join("termination-log");
    let run = worker(arch)
        .env("TERMINATION_LOG", &path)
        .env("WORKER_SEED", "1")
        .env("JOB_COMPLETION_INDEX", "4")
        .args(["--fail-probability", "1", "--fail-exit-code", "3"])
        .run();
    assert_eq!(run.code(), Some(3), "{run:?}");
    let message = std::fs::read_to_string(&path).unwrap();
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(message.starts_with("job-worker: simulated failure: draw "), "{message}");
    assert!(
        message.contains("< fail probability 1; exit code 3 (pod job-test-e2e00, index 4, attempt 0)"),
        "{message}"
    );
    assert!(run.stdout.contains(&format!("termination_log=\"written to {}\"", path.display())), "{}", run.stdout);
}

fn an_unwritable_termination_log_does_not_change_the_outcome(arch: Arch) {
    let run = worker(arch).json().args(["--fail-probability", "1", "--termination-log", "/proc/no/such/file"]).run();
    assert_eq!(run.code(), Some(1), "{run:?}");
    let outcome = run.event("outcome");
    assert!(outcome["termination_log"].as_str().unwrap().starts_with("not written to /proc/no/such/file"));
    // The default path is not created where the kubelet did not mount it.
    let run = worker(arch).json().args(["--fail-probability", "1"]).run();
    assert_eq!(run.code(), Some(1));
    assert!(
        run.event("outcome")["termination_log"].as_str().unwrap().starts_with("not written to /dev/termination-log")
    );
}

fn every_json_line_has_a_timestamp_and_an_event(arch: Arch) {
    let run = worker(arch).json().args(["--fail-probability", "1", "--work-duration", "1100ms"]).run();
    let lines = run.json_lines();
    assert_eq!(lines.len(), 3, "{}", run.stdout);
    for line in &lines {
        let ts = line["ts"].as_str().unwrap();
        assert!(ts.len() == 24 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T', "{ts}");
        assert!(line["event"].is_string());
    }
    let start = &lines[0];
    assert_eq!(start["event"], "start");
    assert_eq!(start["fail_probability"], 1.0);
    assert_eq!(start["sources"]["fail_probability"], "--fail-probability");
    assert_eq!(start["sources"]["log_format"], "LOG_FORMAT");
    assert_eq!(start["pod"], "job-test-e2e00");
    assert_eq!(start["attempt_source"], "none");
}

fn plain_lines_are_one_per_event(arch: Arch) {
    let run = worker(arch).args(["--fail-probability", "0"]).run();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", run.stdout);
    assert!(lines[0].contains(" start ") && lines[0].contains("fail_probability=0 "), "{}", lines[0]);
    assert!(lines[0].contains("sources.fail_probability=--fail-probability"), "{}", lines[0]);
    assert!(lines[1].contains(" outcome result=success decided_by=draw draw=0."), "{}", lines[1]);
}

fn a_seeded_run_of_the_same_pod_is_reproducible_and_a_new_pod_draws_anew(arch: Arch) {
    let draw = |pod: &str| {
        let run = worker(arch).json().env("HOSTNAME", pod).env("WORKER_SEED", "2024").run();
        run.event("outcome")["draw"].as_f64().unwrap()
    };
    assert_eq!(draw("job-test-aaaaa"), draw("job-test-aaaaa"));
    assert_ne!(draw("job-test-aaaaa"), draw("job-test-bbbbb"));
}

/// The exit codes of completion indexes 0 to 3 with FAIL_INDEXES=`list`
/// and probability 0.
fn index_exit_codes(arch: Arch, list: &str) -> Vec<Option<i32>> {
    (0..4)
        .map(|i| {
            worker(arch)
                .env("JOB_COMPLETION_INDEX", i.to_string())
                .env("FAIL_INDEXES", list)
                .env("FAIL_PROBABILITY", "0")
                .run()
                .code()
        })
        .collect()
}

fn listed_indexes_fail_with_their_exit_codes_before_any_draw(arch: Arch) {
    // The documentation's per-index example: index 0 exits 1, index 1
    // exits 42, the others succeed.
    assert_eq!(index_exit_codes(arch, "0,1:42"), [Some(1), Some(42), Some(0), Some(0)]);
    let run = worker(arch).json().env("JOB_COMPLETION_INDEX", "1").env("FAIL_INDEXES", "0,1:42").run();
    let outcome = run.event("outcome");
    assert_eq!(outcome["decided_by"], "fail-indexes");
    assert_eq!(outcome["draw"], serde_json::Value::Null);
}

fn odd_indexes_fail_and_even_succeed(arch: Arch) {
    let codes = index_exit_codes(arch, "odd");
    assert_eq!(codes, [Some(0), Some(1), Some(0), Some(1)]);
}

fn fail_attempts_counted_in_state_dir_across_restarts(arch: Arch) {
    // restartPolicy OnFailure restarts the container in the same pod; the
    // emptyDir survives and so does the count.
    let state = tempdir("state");
    let run =
        || worker(arch).json().env("STATE_DIR", &state).env("FAIL_ATTEMPTS", "2").env("FAIL_PROBABILITY", "0").run();
    let runs: Vec<_> = (0..4).map(|_| run()).collect();
    let codes: Vec<_> = runs.iter().map(|r| r.code()).collect();
    assert_eq!(codes, [Some(1), Some(1), Some(0), Some(0)]);
    let attempts: Vec<_> = runs.iter().map(|r| r.event("start")["attempt"].as_u64().unwrap()).collect();
    assert_eq!(attempts, [0, 1, 2, 3]);
    assert_eq!(runs[0].event("start")["attempt_source"], "STATE_DIR");
    assert_eq!(runs[1].event("outcome")["decided_by"], "fail-attempts");
}

fn fail_attempts_counted_by_job_index_failure_count(arch: Arch) {
    let code = |count: &str| {
        worker(arch)
            .env("JOB_COMPLETION_INDEX", "0")
            .env("JOB_INDEX_FAILURE_COUNT", count)
            .env("FAIL_ATTEMPTS", "1")
            .env("FAIL_PROBABILITY", "0")
            .run()
            .code()
    };
    assert_eq!((code("0"), code("1"), code("2")), (Some(1), Some(0), Some(0)));
}

fn fail_attempts_without_a_counter_warns_in_the_start_line(arch: Arch) {
    let run = worker(arch).json().env("FAIL_ATTEMPTS", "1").env("FAIL_PROBABILITY", "0").run();
    assert_eq!(run.code(), Some(1), "every run is attempt 0, so every run fails: {run:?}");
    let warning = run.event("start")["warning"].as_str().unwrap().to_owned();
    assert!(warning.contains("nothing counts attempts"), "{warning}");
}

fn rules_come_before_the_draw(arch: Arch) {
    // Probability 0 never fails by the draw, so this failure is the rule's.
    let run = worker(arch)
        .json()
        .env("JOB_COMPLETION_INDEX", "2")
        .env("FAIL_INDEXES", "2")
        .env("FAIL_PROBABILITY", "0")
        .run();
    assert_eq!(run.code(), Some(1));
    assert_eq!(run.event("outcome")["decided_by"], "fail-indexes");
}

/// Environment, flags, and what stderr must say.
type BadConfig<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str], &'a str);

fn invalid_configuration_exits_2_with_the_name_the_value_and_the_fix(arch: Arch) {
    let cases: &[BadConfig] = &[
        (
            &[("FAIL_PROBABILITY", "1.2")],
            &[],
            "invalid value \"1.2\" for FAIL_PROBABILITY: expected a number from 0 to 1",
        ),
        (
            &[],
            &["--failure-mode", "explode"],
            "invalid value \"explode\" for --failure-mode: expected one of exit, panic",
        ),
        (&[("FAIL_EXIT_CODE", "2")], &[], "invalid value \"2\" for FAIL_EXIT_CODE"),
        (&[("WORK_DURATION", "ten")], &[], "invalid value \"ten\" for WORK_DURATION"),
        (&[("WORKER_SEED", "abc")], &[], "invalid value \"abc\" for WORKER_SEED"),
        (&[("FAIL_INDEXES", "1;2")], &[], "invalid value \"1;2\" for FAIL_INDEXES"),
        (&[("STATE_DIR", "/no/such/dir")], &[], "invalid value \"/no/such/dir\" for STATE_DIR"),
        (&[], &["--bogus", "1"], "unknown flag --bogus: expected one of the flags listed by --help"),
        (&[], &["--seed"], "missing value for --seed"),
    ];
    for (env, args, expected) in cases {
        let mut w = worker(arch).args(*args);
        for (k, v) in *env {
            w = w.env(k, v);
        }
        let run = w.run();
        assert_eq!(run.code(), Some(2), "{env:?} {args:?}: {run:?}");
        assert!(run.stderr.contains(expected), "{env:?} {args:?}: {:?} should contain {expected:?}", run.stderr);
        assert!(run.stdout.is_empty(), "nothing runs on a bad configuration: {}", run.stdout);
    }
}

fn every_invalid_setting_is_reported_at_once(arch: Arch) {
    let run = worker(arch).env("FAIL_PROBABILITY", "1.5").env("FAILURE_MODE", "nope").args(["--bogus"]).run();
    assert_eq!(run.code(), Some(2), "{run:?}");
    for expected in [
        "job-worker: unknown flag --bogus: expected one of the flags listed by --help\n",
        "job-worker: invalid value \"1.5\" for FAIL_PROBABILITY: expected a number from 0 to 1",
        "job-worker: invalid value \"nope\" for FAILURE_MODE: expected one of exit, panic, abort, hang, oom\n",
    ] {
        assert!(run.stderr.contains(expected), "{:?} should contain {expected:?}", run.stderr);
    }
}

fn a_configuration_error_writes_its_reason_to_the_termination_log(arch: Arch) {
    let dir = tempdir("term-config");
    let path = dir.join("termination-log");
    let run = worker(arch)
        .env("TERMINATION_LOG", &path)
        .env("FAIL_PROBABILITY", "1.5")
        .args(["--failure-mode", "nope"])
        .run();
    assert_eq!(run.code(), Some(2), "{run:?}");
    let message = std::fs::read_to_string(&path).unwrap();
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(
        message.starts_with("job-worker: invalid configuration: invalid value \"1.5\" for FAIL_PROBABILITY"),
        "{message}"
    );
    assert!(message.contains("; invalid value \"nope\" for --failure-mode"), "{message}");
    // The flag names the file as well, even beside an unknown flag.
    let other = dir.join("by-flag");
    let run = worker(arch).args(["--termination-log", other.to_str().unwrap(), "--bogus=1"]).run();
    assert_eq!(run.code(), Some(2), "{run:?}");
    let message = std::fs::read_to_string(&other).unwrap();
    assert_eq!(
        message,
        "job-worker: invalid configuration: unknown flag --bogus: expected one of the flags listed by --help\n"
    );
    // A counter that cannot be read is a configuration error too.
    let state = tempdir("term-state");
    std::fs::write(state.join("attempts"), "many").unwrap();
    let run = worker(arch).env("TERMINATION_LOG", &path).env("STATE_DIR", &state).run();
    assert_eq!(run.code(), Some(2), "{run:?}");
    let message = std::fs::read_to_string(&path).unwrap();
    assert!(message.contains("not an attempt count"), "{message}");
}

fn a_seeded_container_restarted_in_its_pod_draws_anew_per_attempt(arch: Arch) {
    // restartPolicy OnFailure: same HOSTNAME, the emptyDir keeps the count.
    // Each attempt draws what `xtask odds` models: the seeded draw of
    // (seed, pod name, index, attempt).
    let state = tempdir("seeded-restarts");
    let runs: Vec<_> = (0..4)
        .map(|_| {
            worker(arch)
                .json()
                .env("HOSTNAME", "job-test-aaaaa")
                .env("WORKER_SEED", "2024")
                .env("STATE_DIR", &state)
                .run()
        })
        .collect();
    let draws: Vec<f64> = runs.iter().map(|r| r.event("outcome")["draw"].as_f64().unwrap()).collect();
    let expected: Vec<f64> =
        (0..4).map(|a| job_worker::decision::seeded_draw(2024, "job-test-aaaaa", None, a)).collect();
    assert_eq!(draws, expected);
    assert!(draws.windows(2).all(|w| w[0] != w[1]), "{draws:?}");
}

fn help_and_version(arch: Arch) {
    let run = worker(arch).args(["--help"]).run();
    assert_eq!(run.code(), Some(0));
    assert!(run.stdout.contains("FAIL_PROBABILITY") && run.stdout.contains("--failure-mode"), "{}", run.stdout);
    let run = worker(arch).args(["--version"]).run();
    assert_eq!(run.code(), Some(0));
    assert_eq!(run.stdout.trim(), format!("job-worker {}", env!("CARGO_PKG_VERSION")));
}

/// One contract for both binaries: a Job's pods may land on amd64 and arm64
/// nodes alike, so the two must print the same help and settings table,
/// refuse a bad configuration in the same words, and draw the same seeded
/// numbers (what `xtask odds` models), bit for bit.
#[test]
fn both_platforms_print_the_same_help_errors_and_seeded_runs() {
    let both = |make: &dyn Fn(Arch) -> tests::worker::Worker| [make(Arch::X86_64).run(), make(Arch::Aarch64).run()];

    let [x86, arm] = both(&|arch| worker(arch).args(["--help"]));
    assert_eq!(x86.code(), Some(0), "{x86:?}");
    assert_eq!(arm.code(), Some(0), "{arm:?}");
    assert_eq!(arm.stdout, x86.stdout, "the aarch64 worker's --help differs");
    let [x86, arm] = both(&|arch| worker(arch).args(["--version"]));
    assert_eq!((arm.code(), &arm.stdout), (Some(0), &x86.stdout));

    let [x86, arm] =
        both(&|arch| worker(arch).env("FAIL_PROBABILITY", "1.5").args(["--failure-mode", "nope", "--bogus"]));
    assert_eq!((x86.code(), arm.code()), (Some(2), Some(2)), "{x86:?}\n{arm:?}");
    assert_eq!(arm.stderr, x86.stderr, "the aarch64 worker refuses a bad configuration in other words");

    // Seeded, of one pod and index: the same settings table in the start
    // line and the same draw, outcome and exit code; only the time and the
    // pid differ.
    let [x86, arm] = both(&|arch| {
        worker(arch)
            .json()
            .env("HOSTNAME", "job-test-aaaaa")
            .env("JOB_COMPLETION_INDEX", "3")
            .env("WORKER_SEED", "2024")
            .args(["--fail-probability", "0.5", "--fail-exit-code", "9"])
    });
    assert_eq!(arm.code(), x86.code(), "{x86:?}\n{arm:?}");
    let comparable = |run: &tests::worker::Finished| -> Vec<serde_json::Value> {
        run.json_lines()
            .into_iter()
            .map(|mut line| {
                let object = line.as_object_mut().unwrap();
                for varying in ["ts", "pid", "elapsed_ms"] {
                    object.remove(varying);
                }
                line
            })
            .collect()
    };
    assert_eq!(comparable(&arm), comparable(&x86));
    assert!(x86.event("outcome")["draw"].is_f64(), "{}", x86.stdout);
}
