//! The embedded default registry: where no `--image` names one, `push`
//! pushes to a CNCF registry on 127.0.0.1:5000 (or JOB_TEST_LOCAL_REGISTRY),
//! and starts one there (Debian's `docker-registry`, storage under the
//! target directory's registry/) when nothing
//! answers. It keeps running in the background for later pushes and pulls;
//! `kill $(cat target/registry/pid)` stops it.

use std::net::TcpStream;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::Error;
use crate::image_ref::ImageRef;
use crate::report::Reporter;

/// Where the embedded registry listens unless JOB_TEST_LOCAL_REGISTRY
/// says otherwise.
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:5000";
/// The variable that moves it (port 5000 is taken on some machines).
pub const ADDRESS_ENV: &str = "JOB_TEST_LOCAL_REGISTRY";

/// The embedded registry's address: `127.0.0.1:PORT`, loopback only.
pub fn address() -> Result<String> {
    let Some(value) = std::env::var(ADDRESS_ENV).ok().filter(|v| !v.is_empty()) else {
        return Ok(DEFAULT_ADDRESS.to_owned());
    };
    match value.parse::<std::net::SocketAddr>() {
        Ok(a) if a.ip().is_loopback() && a.port() != 0 => Ok(value),
        _ => Err(crate::Error::usage(format!(
            "{ADDRESS_ENV}={value}: the embedded registry listens on this machine only; expected 127.0.0.1:PORT, \
             e.g. 127.0.0.1:5001"
        ))
        .into()),
    }
}

/// The default push target: this version in the local registry.
pub fn default_push_target() -> Result<ImageRef> {
    let text = format!("{}/job-test:{}", address()?, env!("CARGO_PKG_VERSION"));
    ImageRef::parse(&text).map_err(|why| {
        Error::usage(format!("{ADDRESS_ENV}: {text} is not an image reference ({why}); give HOST:PORT")).into()
    })
}

pub fn dir() -> PathBuf {
    crate::target_dir().join("registry")
}

/// Starts the local registry unless something already listens there.
pub fn ensure_running(out: &Reporter) -> Result<()> {
    let address = address()?;
    if TcpStream::connect(&address).is_ok() {
        return Ok(());
    }
    crate::debian::REGISTRY.ensure(true, out)?;
    let dir = dir();
    std::fs::create_dir_all(dir.join("data")).with_context(|| format!("creating {}", dir.display()))?;
    let config = format!(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {address}\n",
        dir.join("data").display()
    );
    std::fs::write(dir.join("config.yml"), config)?;
    let child = serve(&dir)?
        // Its own process group: it outlives this command, as a daemon would.
        .process_group(0)
        .spawn()
        .map_err(|e| {
            Error::prerequisite(format!(
                "no registry was named (--image) and the local default cannot start: `docker-registry` ({e}); \
                 install it with `apt-get install docker-registry`, or pass --image with your registry"
            ))
        })?;
    std::fs::write(dir.join("pid"), child.id().to_string())?;
    wait_until_listening(&address, &dir, "the local registry")?;
    out.status(format!(
        "started a local registry on {address} (storage {}, stop it with `kill $(cat {})`)",
        dir.join("data").display(),
        dir.join("pid").display()
    ));
    Ok(())
}

/// `docker-registry serve DIR/config.yml`, its output to DIR/registry.log.
pub fn serve(dir: &Path) -> Result<Command> {
    let log = std::fs::File::create(dir.join("registry.log"))
        .with_context(|| format!("creating {}", dir.join("registry.log").display()))?;
    let mut cmd = Command::new("docker-registry");
    cmd.arg("serve").arg(dir.join("config.yml")).stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
    Ok(cmd)
}

/// Waits up to 15 s for the registry `serve(dir)` started to listen on
/// `address`; else fails with its log.
pub fn wait_until_listening(address: &str, dir: &Path, what: &str) -> Result<()> {
    let start = Instant::now();
    while TcpStream::connect(address).is_err() {
        if start.elapsed() > Duration::from_secs(15) {
            let log = std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default();
            anyhow::bail!("{what} did not start on {address}; its log:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}
