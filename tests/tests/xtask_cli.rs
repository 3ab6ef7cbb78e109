//! `cargo xtask` as a user runs it: the build result, the exit codes, and the
//! help texts (snapshots, so a change to the CLI is a reviewed change).

use std::process::Command;

use tests::{project_root, sha256_hex, tempdir, worker_bin, xtask, xtask_with};

#[test]
fn build_prints_a_static_binary_with_its_size_and_sha256() {
    let out = xtask(&["--output", "json", "build"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let built: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let path = built["path"].as_str().unwrap();
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(built["size"], bytes.len() as u64);
    assert_eq!(built["sha256"], sha256_hex(&bytes));
    assert_eq!(built["target"], "x86_64-unknown-linux-musl");
    assert_eq!(built["linkage"], "static-pie");
    // The same verdict from an independent tool.
    let file = Command::new("file").arg(path).output().expect("the file(1) command");
    let file = String::from_utf8_lossy(&file.stdout);
    assert!(file.contains("static-pie linked") || file.contains("statically linked"), "{file}");
    assert!(file.contains("x86-64"), "{file}");
}

#[test]
fn build_for_arm64_nodes_prints_a_static_aarch64_binary() {
    let out = xtask(&["--output", "json", "build", "--target", "aarch64-unknown-linux-musl"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let built: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let path = built["path"].as_str().unwrap();
    assert!(path.ends_with("aarch64-unknown-linux-musl/release/job-worker"), "{path}");
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(
        (built["size"].as_u64(), built["sha256"].as_str()),
        (Some(bytes.len() as u64), Some(&*sha256_hex(&bytes)))
    );
    assert_eq!(built["target"], "aarch64-unknown-linux-musl");
    assert_eq!(built["linkage"], "static");
    let file = Command::new("file").arg(path).output().expect("the file(1) command");
    let file = String::from_utf8_lossy(&file.stdout);
    assert!(file.contains("ARM aarch64") && file.contains("statically linked"), "{file}");
}

#[test]
fn build_text_output_names_path_size_and_sha256() {
    let out = xtask(&["build"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let bytes = std::fs::read(worker_bin()).unwrap();
    assert!(
        text.starts_with("built job-worker for x86_64-unknown-linux-musl (static-pie, runs with no libc)"),
        "{text}"
    );
    assert!(text.contains(&format!("size    {} bytes", bytes.len())), "{text}");
    assert!(text.contains(&sha256_hex(&bytes)), "{text}");
}

#[test]
fn bad_usage_exits_2_and_says_what_is_wrong() {
    let out = xtask(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unrecognized subcommand 'frobnicate'"));
    let out = xtask(&["build", "--target", "aarch64-apple-darwin"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("invalid value 'aarch64-apple-darwin' for '--target <TARGET>'"), "{stderr}");
    let out = xtask(&["bench", "--runs", "3"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--runs 3 is too few"));
}

#[test]
fn xtask_help_snapshot() {
    let out = xtask(&["--help"]);
    assert!(out.status.success());
    insta::assert_snapshot!(String::from_utf8_lossy(&out.stdout));
}

/// `render --help` once listed `--out` and `--write` under "Authorization:"
/// (a flattened group's heading carried over to the flags after it).
#[test]
fn render_help_snapshot() {
    let out = xtask(&["render", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    let authorization = help.split("Authorization:").nth(1).expect("an Authorization heading");
    let authorization = authorization.split("Examples:").next().unwrap();
    for own in ["--out", "--write", "--kube-version"] {
        assert!(!authorization.contains(own), "{own} is listed under Authorization:\n{help}");
    }
    assert!(help.contains("Examples:\n  cargo xtask render"), "{help}");
    insta::assert_snapshot!(help);
}

/// `odds --help` lists only what changes the odds; the other render flags
/// are taken (so the same line can be asked) but not shown.
#[test]
fn odds_help_snapshot() {
    let out = xtask(&["odds", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for hidden in ["--image", "--cpu", "--memory", "--ttl-seconds-after-finished", "--image-pull-secret", "--namespace"]
    {
        assert!(!help.contains(hidden), "odds --help lists {hidden}:\n{help}");
    }
    for shown in ["--fail-probability", "--backoff-limit", "--restart-policy", "--trials", "--seed"] {
        assert!(help.contains(shown), "odds --help lacks {shown}:\n{help}");
    }
    let same = xtask(&["odds", "--image", "registry.example.com/x:1", "--cpu", "1", "--trials", "100"]);
    assert!(same.status.success(), "{}", String::from_utf8_lossy(&same.stderr));
    insta::assert_snapshot!(help);
}

#[test]
fn release_help_lists_timeout_outside_the_groups() {
    let out = xtask(&["release", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    let options = help.split("Image:").next().unwrap();
    assert!(options.contains("--timeout <DURATION>"), "{help}");
}

/// The issue: no kubeconfig gave exit 4, `KUBECONFIG=/tmp/none` exit 2 and
/// `'"/tmp/none"'`. No usable cluster configuration is one exit code, 4, as
/// the README's table says, and the path is quoted once (not at all).
#[test]
fn no_usable_cluster_configuration_exits_4_naming_the_path_once() {
    let home = tempdir("no-kubeconfig-home");
    let h = home.display().to_string();
    let none = home.join("none").display().to_string();
    let not_yaml = tests::write_file(&home, "not-a-kubeconfig", "{ this is not: [a kubeconfig").display().to_string();
    let exits_4 = |args: &[&str], env: &[(&str, &str)], expected: &str| {
        let out = xtask_with(args, env, None);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{args:?} {env:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?} {env:?}: {stderr}");
        assert!(!stderr.contains("'\"") && !stderr.contains("\"'"), "quoted twice: {stderr}");
        if let Some((_, path)) = env.iter().find(|(k, _)| *k == "KUBECONFIG") {
            assert_eq!(stderr.matches(path).count(), 1, "{stderr}");
        }
    };
    exits_4(&["pods"], &[("HOME", &h)], "no cluster is configured");
    exits_4(&["pods"], &[("HOME", &h), ("KUBECONFIG", &none)], &format!("KUBECONFIG={none}: no such file"));
    exits_4(&["pods", "--kubeconfig", "/nonexistent"], &[("HOME", &h)], "--kubeconfig /nonexistent: cannot read it");
    exits_4(
        &["pods", "--kubeconfig", &not_yaml],
        &[("HOME", &h)],
        &format!("--kubeconfig {not_yaml}: not a usable kubeconfig"),
    );
    let readme = std::fs::read_to_string(project_root().join("README.md")).unwrap();
    assert!(
        readme.contains(
            "| 4 | a registry or cluster refused or could not be reached, or no usable cluster configuration"
        )
    );
}

#[test]
fn worker_help_snapshot() {
    let out = Command::new(worker_bin()).arg("--help").output().unwrap();
    assert!(out.status.success());
    insta::assert_snapshot!(String::from_utf8_lossy(&out.stdout));
}

#[test]
fn warnings_are_coloured_on_a_terminal_unless_no_color_is_set() {
    let coloured = tests::xtask_on_terminal(&["render", "--parallelism", "9"], &[]);
    assert!(coloured.contains("\x1b[33mwarning:\x1b[0m --parallelism 9 is more than --completions 5"), "{coloured:?}");
    let plain = tests::xtask_on_terminal(&["render", "--parallelism", "9"], &[("NO_COLOR", "1")]);
    assert!(plain.contains("warning: --parallelism 9"), "{plain:?}");
    assert!(!plain.contains("\x1b[33m"), "NO_COLOR was not respected: {plain:?}");
    // Piped, there is no colour either.
    let piped = tests::xtask(&["render", "--parallelism", "9"]);
    assert!(!String::from_utf8_lossy(&piped.stderr).contains('\x1b'));
}

#[test]
fn the_binary_carries_no_path_of_this_machine() {
    // What makes the image digest the same on every machine: no absolute
    // path of the checkout or of the cargo home in the binary (dependency
    // sources are remapped to /cargo).
    // Both platforms' binaries: each is in the image.
    for binary in [worker_bin(), tests::worker_bin_aarch64()] {
        let bytes = std::fs::read(binary).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        let root = tests::project_root().display().to_string();
        let home = std::env::var("CARGO_HOME").unwrap_or_else(|_| format!("{}/.cargo", std::env::var("HOME").unwrap()));
        let b = binary.display();
        assert!(!text.contains(&root), "{b} holds the checkout's path {root}");
        assert!(!text.contains(&home), "{b} holds the cargo home {home}");
        assert!(text.contains("/cargo/registry/src/"), "{b}: dependency paths are remapped to /cargo");
    }
}
