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
    let out = xtask(&["odds", "--pod-startup", "soon"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("invalid value 'soon' for '--pod-startup <DURATION>'")
            && stderr.contains("give a duration such as 30s"),
        "{stderr}"
    );
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

/// No usable cluster configuration (no kubeconfig, or a KUBECONFIG that does
/// not exist) is one exit code, 4, as the table in docs/exit-codes.md says,
/// and the path is named as it was given, without doubled quotes.
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
    let exit_codes = std::fs::read_to_string(project_root().join("docs/exit-codes.md")).unwrap();
    assert!(exit_codes.contains(
        "| 4 | a registry, cluster or (for a local run) the Docker daemon refused or could not be reached, or no \
             usable cluster configuration"
    ));
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

/// A settings file of the test's own (never the project's job-test.toml),
/// in a folder removed when dropped.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn settings_file(name: &str, text: &str) -> (TempDir, String) {
    let dir = tempdir(name);
    let path = tests::write_file(&dir, "job-test.toml", text);
    (TempDir(dir), path.display().to_string())
}

/// The `config --output json` row of one key.
fn setting<'a>(config: &'a serde_json::Value, key: &str) -> &'a serde_json::Value {
    config["settings"].as_array().unwrap().iter().find(|s| s["key"] == key).unwrap_or_else(|| panic!("no {key}"))
}

/// Each level beats the ones below it, in `config` and in what a command
/// really renders: a flag, JOB_TEST_<FLAG>, the file, the default.
#[test]
fn settings_precedence_is_flag_then_environment_then_file_then_default() {
    let (_dir, file) = settings_file(
        "settings-precedence",
        "[job]\nname = \"file-name\"\nnamespace = \"file-ns\"\ncompletions = 7\n\n[worker]\nfail-probability = 0.5\n",
    );
    let env = [("JOB_TEST_NAME", "env-name"), ("JOB_TEST_COMPLETIONS", "8")];
    let out = xtask_with(&["--output", "json", "config", "--config", &file, "--completions", "9"], &env, None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let config: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(config["file"], file.as_str());
    assert_eq!(config["file_chosen_by"], "flag");
    let expect = |key: &str, value: &str, source: &str, from: serde_json::Value| {
        let row = setting(&config, key);
        assert_eq!((&row["value"], &row["source"], &row["from"]), (&value.into(), &source.into(), &from), "{row}");
    };
    expect("job.completions", "9", "flag", "--completions".into());
    expect("job.name", "env-name", "environment", "JOB_TEST_NAME".into());
    expect("job.namespace", "file-ns", "file", format!("{file}:job.namespace").into());
    expect("worker.fail-probability", "0.5", "file", format!("{file}:worker.fail-probability").into());
    expect("job.parallelism", "2", "default", serde_json::Value::Null);

    // The same levels reach the command itself; the file is named by
    // JOB_TEST_CONFIG this time.
    let env = [("JOB_TEST_NAME", "env-name"), ("JOB_TEST_COMPLETIONS", "8"), ("JOB_TEST_CONFIG", &file)];
    let out = xtask_with(&["render", "--completions", "9"], &env, None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let yaml = String::from_utf8_lossy(&out.stdout);
    for expected in ["  name: env-name\n", "  namespace: file-ns\n", "  completions: 9\n", "  parallelism: 2\n"] {
        assert!(yaml.contains(expected), "{expected:?} not in\n{yaml}");
    }
    assert!(yaml.contains("value: '0.5'") || yaml.contains("value: \"0.5\""), "FAIL_PROBABILITY 0.5:\n{yaml}");
    // The file's value is the default `watch` uses too (the same flag).
    let out = xtask_with(&["--output", "json", "config", "--config", &file], &[], None);
    let config: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(setting(&config, "job.completions")["value"], "7");
    assert_eq!(setting(&config, "job.name")["source"], "file");
}

/// "Flag > environment > file" holds for switches too: `[job] suspend =
/// true` is turned off by `--suspend=false` or the environment. Each level,
/// in what `render` really renders and in what `config` says.
#[test]
fn a_switch_is_set_at_every_level_and_a_flag_turns_it_off() {
    let (_dir, file) = settings_file("settings-switch", "[job]\nsuspend = true\n");
    let level = |args: &[&str], env: &[(&str, &str)]| -> (bool, String) {
        let out = xtask_with(&[&["render"], args].concat(), env, None);
        assert!(out.status.success(), "render {args:?} {env:?}: {}", String::from_utf8_lossy(&out.stderr));
        let suspended = String::from_utf8_lossy(&out.stdout).contains("\n  suspend: true\n");
        let out = xtask_with(&[&["--output", "json", "config"], args].concat(), env, None);
        assert!(out.status.success(), "config {args:?} {env:?}: {}", String::from_utf8_lossy(&out.stderr));
        let config: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let row = setting(&config, "job.suspend");
        assert_eq!(row["value"], suspended.to_string(), "config and render disagree: {row}");
        (suspended, row["source"].as_str().unwrap().to_owned())
    };
    let with_file = [("JOB_TEST_CONFIG", file.as_str())];
    assert_eq!(level(&[], &[]), (false, "default".into()));
    assert_eq!(level(&[], &with_file), (true, "file".into()));
    assert_eq!(level(&["--suspend=false"], &with_file), (false, "flag".into()));
    let env_off = [("JOB_TEST_CONFIG", file.as_str()), ("JOB_TEST_SUSPEND", "false")];
    assert_eq!(level(&[], &env_off), (false, "environment".into()));
    assert_eq!(level(&["--suspend"], &env_off), (true, "flag".into()));
    assert_eq!(level(&["--suspend=true"], &env_off), (true, "flag".into()));
    let env_on = [("JOB_TEST_CONFIG", file.as_str()), ("JOB_TEST_SUSPEND", "true")];
    assert_eq!(level(&["--suspend=false"], &env_on), (false, "flag".into()));
    // The same for a switch of another group, in the command that uses it.
    let (_dir, file) = settings_file("settings-switch-rbac", "[authorization]\ncluster-wide = true\n");
    let with_file = [("JOB_TEST_CONFIG", file.as_str())];
    let out = xtask_with(&["render", "--cluster-wide=false"], &with_file, None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("kind: ClusterRole"));
    let out = xtask_with(&["render"], &with_file, None);
    assert!(String::from_utf8_lossy(&out.stdout).contains("kind: ClusterRole"));
}

/// A settings file that cannot be read must not hide the help that says
/// how to fix it: --help, --version and `completions` work and warn,
/// naming the file; every other command refuses to run.
#[test]
fn a_broken_settings_file_leaves_help_version_and_completions_working() {
    let (_dir, file) = settings_file("settings-broken", "[job]\nnamspace = \"demo\"\n");
    for args in [&["--help"][..], &["render", "--help"], &["--version"], &["completions", "bash"]] {
        for by_flag in [true, false] {
            let (all, env) = if by_flag {
                ([&["--config", file.as_str()][..], args].concat(), vec![])
            } else {
                (args.to_vec(), vec![("JOB_TEST_CONFIG", file.as_str())])
            };
            let out = xtask_with(&all, &env, None);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(0), "{all:?} {env:?}: {stderr}");
            assert!(!out.stdout.is_empty(), "{all:?}: nothing printed");
            assert!(
                stderr.starts_with(&format!("warning: settings not read: {file}: unknown key job.namspace")),
                "{all:?}: {stderr}"
            );
        }
    }
    let out = xtask_with(&["--config", &file, "render"], &[], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).starts_with(&format!("error: {file}: unknown key job.namspace")));
}

/// `pods -n` is the namespace `kubectl get pods` would list (the context's),
/// not the Job's: the settings file's and JOB_TEST_NAMESPACE do not reach it.
/// `delete` deletes the settings' Job, as `apply` made it.
#[test]
fn settings_reach_the_job_commands_but_not_pods_namespace() {
    use tests::apiserver::{ADMIN_TOKEN, ApiServer};
    let api = ApiServer::start();
    let kubeconfig = api.kubeconfig(Some(ADMIN_TOKEN), true, "ctx-ns").display().to_string();
    let (_dir, file) = settings_file("settings-scope", "[job]\nname = \"file-job\"\nnamespace = \"file-ns\"\n");
    let env = [("JOB_TEST_CONFIG", file.as_str()), ("JOB_TEST_KUBECONFIG", kubeconfig.as_str())];
    let out = xtask_with(&["apply"], &env, None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(api.get("jobs", Some("file-ns"), "file-job").is_some(), "apply did not take the file's Job");
    let pods = |args: &[&str], env: &[(&str, &str)]| -> serde_json::Value {
        let out = xtask_with(&[&["--output", "json", "pods"], args].concat(), env, None);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["namespace"].clone()
    };
    assert_eq!(pods(&[], &env), "ctx-ns");
    let with_env = [env[0], env[1], ("JOB_TEST_NAMESPACE", "env-ns")];
    assert_eq!(pods(&[], &with_env), "ctx-ns");
    assert_eq!(pods(&["-n", "typed-ns"], &with_env), "typed-ns");
    let out = xtask_with(&["delete"], &env, None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(api.get("jobs", Some("file-ns"), "file-job").is_none(), "delete did not take the file's Job");
}

#[test]
fn config_snapshot() {
    let (_dir, file) = settings_file(
        "settings-snapshot",
        "[job]\nnamespace = \"retry-demo\"\nimage = \"registry.example.com/team/job-test:1.0.0\"\n\n\
         [cluster]\ncontext = \"prod\"\nca-cert = \"certs/ca.crt\"\n\n\
         [authorization]\npod-verbs = [\"get\", \"list\", \"watch\", \"delete\"]\n\n[image]\nbuilder = \"oci\"\n",
    );
    let env = [("JOB_TEST_FAIL_PROBABILITY", "0.3"), ("REGISTRY_PASSWORD", "hunter2-secret")];
    let out = xtask_with(&["config", "--config", &file, "--parallelism", "4"], &env, None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let dir = std::path::Path::new(&file).parent().unwrap().display().to_string();
    // A relative path in the file is relative to the file's folder.
    assert!(text.contains(&format!("{dir}/certs/ca.crt")), "{text}");
    insta::assert_snapshot!(text.replace(&dir, "[DIR]"));
}

/// A key the file may not hold, or a value its flag would refuse: exit 2,
/// naming the file, the key, the value and the fix; nothing runs.
#[test]
fn settings_file_errors_name_the_file_the_key_and_the_fix() {
    let refused = |name: &str, text: &str, args: &[&str]| {
        let (_dir, file) = settings_file(name, text);
        let mut all = vec!["--config", file.as_str()];
        all.extend_from_slice(args);
        let out = xtask_with(&all, &[], None);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(out.stdout.is_empty(), "something ran: {}", String::from_utf8_lossy(&out.stdout));
        assert!(stderr.contains(&file), "the file is not named: {stderr}");
        stderr.replace(&file, "[FILE]")
    };
    let unknown = refused("settings-unknown", "[job]\nnamspace = \"demo\"\n", &["render"]);
    let misplaced = refused("settings-misplaced", "[job]\ncontext = \"prod\"\n", &["config"]);
    let bad_number = refused("settings-bad-number", "[job]\ncompletions = \"five\"\n", &["render"]);
    let bad_choice = refused("settings-bad-choice", "[image]\nbuilder = \"podman\"\n", &["image"]);
    // Checked by the command's own rules, after parsing: the error names the
    // flag, the note names where its value came from.
    let later = refused("settings-later", "[job]\nrestart-policy = \"Always\"\n", &["render"]);
    // A list for a key that takes one value: the file's error, not clap's
    // "invalid value '1,2' for '--completions'".
    let list = refused("settings-list", "[job]\ncompletions = [1, 2]\n", &["render"]);
    // A committed file may not turn a certificate check off for everyone.
    let insecure = refused("settings-insecure", "[cluster]\ninsecure-skip-tls-verify = true\n", &["pods"]);
    let insecure_registry = refused("settings-insecure-registry", "[registry]\ninsecure-registry = true\n", &["push"]);
    insta::assert_snapshot!(
        [unknown, misplaced, bad_number, bad_choice, later, list, insecure, insecure_registry].join("---\n")
    );
    // Turning them off is allowed, and turning them on is one person's
    // choice in their own shell.
    let (_dir, file) = settings_file("settings-secure", "[cluster]\ninsecure-skip-tls-verify = false\n");
    let env = [("JOB_TEST_INSECURE_REGISTRY", "true")];
    let out = xtask_with(&["--output", "json", "config", "--config", &file], &env, None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let config: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(setting(&config, "cluster.insecure-skip-tls-verify")["source"], "file");
    assert_eq!(setting(&config, "registry.insecure-registry")["value"], "true");

    let out = xtask_with(&["render"], &[("JOB_TEST_PARALLELISM", "two")], None);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("environment variable JOB_TEST_PARALLELISM: invalid value \"two\""), "{stderr}");
    let out = xtask_with(&["render", "--config", "/nonexistent/job-test.toml"], &[], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--config /nonexistent/job-test.toml: cannot read"));
}

/// Passwords and tokens are shown masked, and a settings file cannot hold
/// one (nor is its value echoed when it tries).
#[test]
fn secrets_are_masked_and_never_read_from_the_file() {
    let env = [("REGISTRY_USERNAME", "robot"), ("REGISTRY_PASSWORD", "hunter2-secret"), ("KUBE_TOKEN", "tok-secret")];
    for output in ["text", "json"] {
        let out = xtask_with(&["--output", output, "config"], &env, None);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!all.contains("hunter2-secret") && !all.contains("tok-secret"), "a secret is shown: {all}");
        if output == "json" {
            let config: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let credential =
                |key: &str| config["credentials"].as_array().unwrap().iter().find(|c| c["key"] == key).unwrap().clone();
            assert_eq!(credential("registry.password")["value"], "***");
            assert_eq!(credential("registry.password")["from"], "REGISTRY_PASSWORD");
            assert_eq!(credential("cluster.token")["value"], "***");
            assert_eq!(credential("registry.username")["value"], "robot");
        }
    }
    for (name, text) in [
        ("settings-password", "[registry]\npassword = \"hunter2-secret\"\n"),
        ("settings-token", "[cluster]\ntoken = \"tok-secret\"\n"),
        ("settings-username", "[registry]\nusername = \"robot\"\n"),
    ] {
        let (_dir, file) = settings_file(name, text);
        let out = xtask_with(&["config", "--config", &file], &[], None);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("is not allowed"), "{stderr}");
        assert!(!stderr.contains("hunter2-secret") && !stderr.contains("tok-secret"), "{stderr}");
    }
}

/// The scripts are what each shell's own parser accepts, and they complete:
/// bash and fish are asked for the completions of a partial line.
#[test]
fn completion_scripts_parse_and_complete_the_subcommands() {
    let dir = tempdir("completions");
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = xtask(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", String::from_utf8_lossy(&out.stderr));
        let script = String::from_utf8_lossy(&out.stdout).into_owned();
        for sub in ["render", "release", "run-local", "config", "completions", "namespace"] {
            assert!(script.contains(sub), "the {shell} script lacks {sub}");
        }
        let path = tests::write_file(&dir, &format!("xtask.{shell}"), &script);
        let check = match shell {
            "bash" => Command::new("bash").arg("-n").arg(&path).output(),
            "zsh" => Command::new("zsh").arg("-n").arg(&path).output(),
            "fish" => Command::new("fish").arg("--no-execute").arg(&path).output(),
            // Debian packages no PowerShell: the script is only generated here.
            _ => continue,
        }
        .unwrap_or_else(|e| panic!("{shell} is needed to check its script ({e}); `cargo xtask test` installs it"));
        assert!(check.status.success(), "{shell} refuses its script: {}", String::from_utf8_lossy(&check.stderr));
    }
    let bash = format!(
        "source {0}/xtask.bash; COMP_WORDS=(xtask ren); COMP_CWORD=1; _xtask xtask ren xtask; echo \"${{COMPREPLY[@]}}\"; \
         COMP_WORDS=(xtask render --names); COMP_CWORD=2; _xtask xtask --names render; echo \"${{COMPREPLY[@]}}\"",
        dir.display()
    );
    let out = Command::new("bash").arg("-c").arg(&bash).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "render\n--namespace\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fish =
        format!("source {}/xtask.fish; complete -C 'xtask ren'; complete -C 'xtask config --cont'", dir.display());
    let out = Command::new("fish").arg("-c").arg(&fish).output().unwrap();
    let lines: Vec<String> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| l.split('\t').next().unwrap().to_owned()).collect();
    assert_eq!(lines, ["render", "--context"], "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The repeatable rule flags as settings: a file's list and a
/// JOB_TEST_<FLAG> with `;` between rules keep each rule whole (its values
/// hold commas) and reach the rendered Job; a bad rule from the file is
/// named with where it came from.
#[test]
fn rule_flags_work_from_the_settings_file_and_the_environment() {
    let (_dir, file) = settings_file(
        "settings-rules",
        "[job]\ncompletion-mode = \"Indexed\"\nbackoff-limit-per-index = 1\n\
         success-policy = [\"indexes=0,2-3,count=2\", \"count=4\"]\n",
    );
    let env = [("JOB_TEST_POD_FAILURE_RULE", "FailIndex:exit=1,42;Ignore:condition=DisruptionTarget=False")];
    let out = xtask_with(&["--output", "json", "render", "--config", &file], &env, None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rendered: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let job = rendered["items"].as_array().unwrap().iter().find(|o| o["kind"] == "Job").unwrap();
    assert_eq!(
        job["spec"]["successPolicy"]["rules"],
        serde_json::json!([{"succeededIndexes": "0,2-3", "succeededCount": 2}, {"succeededCount": 4}])
    );
    let rules = job["spec"]["podFailurePolicy"]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 4, "{rules:?}");
    assert_eq!(
        rules[0],
        serde_json::json!({"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [1, 42]}})
    );
    assert_eq!(rules[1]["onPodConditions"], serde_json::json!([{"type": "DisruptionTarget", "status": "False"}]));

    let (_dir, file) = settings_file("settings-bad-rule", "[job]\npod-failure-rule = [\"FailJob:exit=0\"]\n");
    let out = xtask_with(&["render", "--config", &file], &[], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--pod-failure-rule \"FailJob:exit=0\": exit=0: exit code 0 is success"), "{stderr}");
    assert!(stderr.contains(&format!("--pod-failure-rule came from {file}:job.pod-failure-rule")), "{stderr}");
}

/// The README is the door: every subcommand `cargo xtask --help` lists has
/// its line in the README's command table, every page in docs/ is linked
/// from docs/README.md, and every relative link in the README and docs/
/// reaches a file that exists and, for `#anchor`, a heading in it (by
/// GitHub's slugs).
#[test]
fn every_command_has_a_line_in_the_readme_and_the_docs_links_resolve() {
    let root = project_root();
    let read = |path: &std::path::Path| std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let readme = read(&root.join("README.md"));

    let out = xtask(&["--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.len() > 10, "{help}");
    let table: Vec<&str> = readme
        .lines()
        .skip_while(|l| *l != "## Commands")
        .skip(1)
        .take_while(|l| !l.starts_with("## "))
        .filter_map(|l| l.strip_prefix('|')?.split('|').next())
        .collect();
    let missing: Vec<_> =
        commands.iter().filter(|c| !table.iter().any(|cell| cell.contains(&format!("`{c}`")))).collect();
    assert!(missing.is_empty(), "not in the README's command table: {missing:?}");

    let docs = root.join("docs");
    let mut pages: Vec<_> = std::fs::read_dir(&docs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    let index = read(&docs.join("README.md"));
    let unlisted: Vec<_> = pages
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .filter(|name| name != "README.md" && !index.contains(&format!("]({name})")))
        .collect();
    assert!(unlisted.is_empty(), "docs pages not in docs/README.md: {unlisted:?}");

    pages.push(root.join("README.md"));
    let mut broken = Vec::new();
    for page in &pages {
        let shown = page.strip_prefix(&root).unwrap().display();
        for target in markdown_links(&read(page)) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
            let file = if path.is_empty() { page.clone() } else { page.parent().unwrap().join(path) };
            if !file.exists() {
                broken.push(format!("{shown}: {target}: no such file"));
            } else if !anchor.is_empty() && !heading_slugs(&read(&file)).iter().any(|s| s == anchor) {
                broken.push(format!("{shown}: {target}: no such heading"));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// The targets of a Markdown text's inline links, `[text](target)`.
fn markdown_links(text: &str) -> Vec<&str> {
    text.match_indices("](")
        .filter_map(|(at, _)| {
            let rest = &text[at + 2..];
            rest.find(')').map(|end| &rest[..end])
        })
        .collect()
}

/// The anchors GitHub gives a Markdown text's headings: lowercased, spaces
/// to '-', punctuation other than '-' and '_' dropped, a repeated one
/// numbered (`-1`, `-2`).
fn heading_slugs(text: &str) -> Vec<String> {
    let mut slugs = Vec::new();
    let mut seen = std::collections::HashMap::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        }
        let Some(title) = line.strip_prefix('#').filter(|_| !fenced) else { continue };
        let title = title.trim_start_matches('#').trim();
        let base: String = title
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let n: &mut usize = seen.entry(base.clone()).or_default();
        slugs.push(if *n == 0 { base } else { format!("{base}-{n}") });
        *n += 1;
    }
    slugs
}

/// A Job file with one bad field is named by object, field path, value
/// and rule; a file that is not YAML, by line and column: both exit 2, for
/// every command that reads `-f`.
#[test]
fn a_bad_job_file_names_the_field_and_a_file_that_is_not_yaml_the_line() {
    let dir = tempdir("bad-job-files");
    let job = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: x\nspec:\n  completions: 99999999999\n  \
               template:\n    spec:\n      containers: []\n";
    let bad_field = tests::write_file(&dir, "bad-field.yaml", job);
    let not_yaml = tests::write_file(&dir, "not-yaml.yaml", "kind: Job\nmetadata: {name: [x\n");
    for command in ["odds", "run-local"] {
        let out = xtask(&[command, "-f", bad_field.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        let expected = format!(
            "-f {}: Job x: spec.completions: invalid value: integer `99999999999`, expected i32",
            bad_field.display()
        );
        assert!(stderr.contains(&expected), "{command}: {stderr}");
        let out = xtask(&[command, "-f", not_yaml.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(&format!("-f {}: line 2 column 18:", not_yaml.display())), "{command}: {stderr}");
    }
}
