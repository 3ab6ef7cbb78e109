//! `cargo xtask test`: make sure what the tests need is here (installing it
//! where this machine allows), build the real worker, then run every test of
//! the workspace. Nothing is skipped: ignored tests are run too, and a test
//! whose prerequisite is missing fails with a message, it does not pass.

use anyhow::{Context, Result};
use xshell::{Shell, cmd};

use crate::flags::{Target, TestFlags};
use crate::report::Reporter;
use crate::{Prerequisite, build, control_plane, project_root};

pub fn run(flags: &TestFlags, out: &Reporter) -> Result<()> {
    let sh = Shell::new()?;
    sh.change_dir(project_root());

    build::ensure_target(&sh, Target::Musl.triple(), !flags.no_install, out)?;
    check_docker(&sh)?;
    crate::local_registry::ensure_binary(!flags.no_install, out)?;
    let kube_bin = control_plane::ensure(!flags.no_install, out)?;
    out.status(format!(
        "prerequisites: the musl target, the Docker daemon, the registry binary and the Kubernetes {} control \
         plane are here",
        control_plane::KUBERNETES_VERSION
    ));

    let worker = build::build(Target::Musl, out)?;
    let xtask = std::env::current_exe().context("finding the running xtask binary")?;
    let args = &flags.cargo_test_args;
    out.status("running every test of the workspace");
    cmd!(sh, "cargo test --workspace --locked -- --include-ignored {args...}")
        .env("JOB_WORKER_BIN", &worker.path)
        .env("JOB_TEST_XTASK_BIN", &xtask)
        .env("JOB_TEST_KUBE_BIN", &kube_bin)
        .run()
        .context("some tests failed (their output is above)")?;
    Ok(())
}

/// The tests run containers on the machine's Docker daemon.
pub fn check_docker(sh: &Shell) -> Result<String> {
    let format = "{{.Server.Version}}";
    let version = cmd!(sh, "docker version --format {format}").quiet().ignore_stderr().read();
    match version {
        Ok(v) if !v.trim().is_empty() => Ok(v.trim().to_owned()),
        _ => Err(Prerequisite(
            "the Docker daemon does not answer (`docker version` found no server): the tests run the worker \
             as PID 1 in a container; start the daemon (`systemctl start docker` or `dockerd &`) and make sure \
             this user can reach /var/run/docker.sock"
                .into(),
        )
        .into()),
    }
}
