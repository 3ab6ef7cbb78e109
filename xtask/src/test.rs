//! `cargo xtask test`: make sure what the tests need is here (installing it
//! where this machine allows), build the real worker, then run every test of
//! the workspace. Nothing is skipped: ignored tests are run too, and a test
//! whose prerequisite is missing fails with a message, it does not pass.
//! Then every fuzz target runs briefly on its corpus.
//! Afterwards it checks that the tests left what a user made as it was (the
//! daemon's images, target/release/, the embedded registry's storage).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result};
use xshell::{Shell, cmd};

use crate::choices::Target;
use crate::flags::TestFlags;
use crate::report::Reporter;
use crate::{Error, build, control_plane, project_root};

pub fn run(flags: &TestFlags, out: &Reporter) -> Result<()> {
    let sh = Shell::new()?;
    sh.change_dir(project_root());

    let install = !flags.no_install;
    for target in [Target::Musl, Target::Aarch64Musl] {
        build::ensure_target(&sh, target.triple(), install, out)?;
    }
    check_docker(&sh)?;
    crate::debian::REGISTRY.ensure(install, out)?;
    crate::debian::QEMU_AARCH64.ensure(install, out)?;
    crate::debian::ZSH.ensure(install, out)?;
    crate::debian::FISH.ensure(install, out)?;
    crate::debian::GNU_TIME.ensure(install, out)?;
    crate::debian::PROMTOOL.ensure(install, out)?;
    crate::debian::CHROMIUM.ensure(install, out)?;
    crate::debian::JDK.ensure(install, out)?;
    crate::debian::CXX.ensure(install, out)?;
    let kube_bin = control_plane::ensure(install, out)?;
    out.status(format!(
        "prerequisites: the musl targets (x86_64, aarch64), the Docker daemon, the registry binary, qemu-aarch64, \
         zsh, fish, GNU time, promtool, chromium, a JDK and a C++ compiler (libFuzzer), and the Kubernetes {} control plane are here",
        control_plane::KUBERNETES_VERSION
    ));

    // Both workers: the worker process tests and the multi-platform image
    // tests run the arm64 one under qemu.
    let worker = build::build(Target::Musl, out)?;
    let worker_aarch64 = build::build(Target::Aarch64Musl, out)?;
    let xtask = std::env::current_exe().context("finding the running xtask binary")?;
    let args = &flags.cargo_test_args;
    let before = UserState::read(&sh)?;
    out.status("running every test of the workspace");
    let tests = build::cargo_cmd(&sh)
        .args(["test", "--workspace", "--locked", "--no-fail-fast", "--", "--include-ignored"])
        .args(args)
        .env("JOB_WORKER_BIN", &worker.path)
        .env("JOB_WORKER_BIN_AARCH64", &worker_aarch64.path)
        .env("JOB_TEST_XTASK_BIN", &xtask)
        .env("JOB_TEST_KUBE_BIN", &kube_bin)
        .run()
        .context("some tests failed (their output is above)");
    // Every parser of outside input, fuzzed briefly on its corpus; after
    // the tests, so that their output comes first, and whatever they said.
    out.status(format!("fuzzing every parser of outside input, {} inputs each", crate::fuzz::SMOKE_RUNS));
    let fuzzed = crate::fuzz::smoke(out);
    // Checked whatever the tests' verdict: a failing test must not leave
    // the user's things changed either.
    let changed = before.changes(&UserState::read(&sh)?);
    tests?;
    out.status(fuzzed?.to_string());
    if !changed.is_empty() {
        anyhow::bail!("the tests changed what a user made, which they must never touch:\n  {}", changed.join("\n  "));
    }
    out.status("the tests left the Docker daemon's images, target/release/ and the local registry as they were");
    Ok(())
}

/// What a user made that the tests must leave as it was: the daemon's
/// images, the rendered release manifests and the embedded registry's
/// storage (both in the target directory).
#[derive(Debug, PartialEq)]
struct UserState {
    images: BTreeSet<String>,
    files: BTreeMap<PathBuf, (u64, Option<SystemTime>)>,
}

impl UserState {
    fn read(sh: &Shell) -> Result<UserState> {
        let format = "{{.Repository}}:{{.Tag}} {{.ID}}";
        let images = cmd!(sh, "docker images --format {format}")
            .quiet()
            .read()
            .context("listing the Docker daemon's images")?
            .lines()
            .map(str::to_owned)
            .collect();
        let mut files = BTreeMap::new();
        let target = crate::target_dir();
        for dir in [target.join("release"), crate::local_registry::dir().join("data")] {
            walk(&dir, &mut files);
        }
        Ok(UserState { images, files })
    }

    /// What differs, a line each.
    fn changes(&self, after: &UserState) -> Vec<String> {
        let mut changed = Vec::new();
        for image in after.images.difference(&self.images) {
            changed.push(format!("image left behind on the daemon: {image}"));
        }
        for image in self.images.difference(&after.images) {
            changed.push(format!("image removed from the daemon: {image}"));
        }
        for (path, meta) in &after.files {
            match self.files.get(path) {
                None => changed.push(format!("file written: {}", path.display())),
                Some(old) if old != meta => changed.push(format!("file changed: {}", path.display())),
                Some(_) => {}
            }
        }
        for path in self.files.keys().filter(|p| !after.files.contains_key(*p)) {
            changed.push(format!("file removed: {}", path.display()));
        }
        changed
    }
}

/// Every file below `dir` with its size and modification time.
fn walk(dir: &Path, files: &mut BTreeMap<PathBuf, (u64, Option<SystemTime>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.metadata() {
            Ok(m) if m.is_dir() => walk(&path, files),
            Ok(m) => {
                files.insert(path, (m.len(), m.modified().ok()));
            }
            Err(_) => {}
        }
    }
}

/// The tests run containers on the machine's Docker daemon.
pub fn check_docker(sh: &Shell) -> Result<String> {
    let format = "{{.Server.Version}}";
    let version = cmd!(sh, "docker version --format {format}").quiet().ignore_stderr().read();
    match version {
        Ok(v) if !v.trim().is_empty() => Ok(v.trim().to_owned()),
        _ => Err(Error::prerequisite(
            "the Docker daemon does not answer (`docker version` found no server): the tests run the worker \
             as PID 1 in a container; start the daemon (`systemctl start docker` or `dockerd &`) and make sure \
             this user can reach /var/run/docker.sock",
        )
        .into()),
    }
}
