//! Debian packages a step needs and this machine may lack (the CNCF
//! registry, qemu's user-mode emulators, the shells whose parsers check
//! the completion scripts), installed with apt-get when the
//! caller allows it.

use anyhow::Result;
use xshell::{Shell, cmd};

use crate::Error;
use crate::report::Reporter;

/// A program from a Debian package.
pub struct Tool {
    /// The program, started with `--version` to see whether it is there
    /// (whatever it answers: not every program knows the flag).
    pub program: &'static str,
    pub package: &'static str,
    /// What it is, for the messages: "the CNCF registry binary".
    pub what: &'static str,
    /// What else the user can do when it cannot be installed.
    pub otherwise: &'static str,
}

impl Tool {
    /// Makes sure the program runs, installing its package with apt-get
    /// when `install` allows and the machine lets it.
    pub fn ensure(&self, install: bool, out: &Reporter) -> Result<()> {
        let Tool { program, package, what, otherwise } = self;
        let sh = Shell::new()?;
        let starts = std::process::Command::new(program)
            .arg("--version")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok();
        if starts {
            return Ok(());
        }
        let missing = format!("{what} `{program}` is missing");
        if !install {
            return Err(Error::prerequisite(format!("{missing}; install it with `apt-get install {package}`")).into());
        }
        out.status(format!("installing {package} ({what}) with apt-get"));
        // stdout is for the result (`--output json` included): apt's chatter
        // is dropped, its errors still reach stderr.
        cmd!(sh, "apt-get update -qq")
            .ignore_stdout()
            .run()
            .and_then(|()| {
                cmd!(sh, "apt-get install -y -qq {package}")
                    .env("DEBIAN_FRONTEND", "noninteractive")
                    .ignore_stdout()
                    .run()
            })
            .map_err(|e| {
                Error::prerequisite(format!(
                    "{missing}, and `apt-get install {package}` failed ({e}); install it by hand, or {otherwise}"
                ))
            })?;
        Ok(())
    }
}

/// Debian's package of the CNCF distribution registry.
pub const REGISTRY: Tool = Tool {
    program: "docker-registry",
    package: "docker-registry",
    what: "the CNCF registry binary",
    otherwise: "pass --image to push to your own registry",
};

/// Runs aarch64 binaries on an x86-64 machine: the tests run the arm64
/// worker through every worker process test and pulled back from a
/// registry.
pub const QEMU_AARCH64: Tool = Tool {
    program: "qemu-aarch64-static",
    package: "qemu-user-static",
    what: "qemu's aarch64 user-mode emulator",
    otherwise: "put a qemu-aarch64-static in PATH",
};

/// libFuzzer is C++: libfuzzer-sys compiles it when the fuzz targets build.
pub const CXX: Tool =
    Tool { program: "c++", package: "g++", what: "a C++ compiler", otherwise: "put a C++ compiler in PATH as c++" };

/// The completion tests check the zsh script with zsh's own parser.
pub const ZSH: Tool =
    Tool { program: "zsh", package: "zsh", what: "the zsh shell", otherwise: "run the tests with a zsh in PATH" };

/// The completion tests check and run the fish script with fish itself.
pub const FISH: Tool =
    Tool { program: "fish", package: "fish", what: "the fish shell", otherwise: "run the tests with a fish in PATH" };

/// GNU time: the memory-bound tests read a command's own peak resident set
/// from it.
pub const GNU_TIME: Tool = Tool {
    program: "/usr/bin/time",
    package: "time",
    what: "GNU time",
    otherwise: "run the tests where /usr/bin/time is GNU time",
};

/// The Prometheus rule engine's command line tool: `alerts` evaluates
/// alerting rules with `promtool test rules`.
pub const PROMTOOL: Tool = Tool {
    program: "promtool",
    package: "prometheus",
    what: "Prometheus' promtool",
    otherwise: "put a promtool (from a Prometheus release) in PATH",
};

/// A browser for the HTML report tests: headless Chromium opens the page
/// offline, reads back its DOM and takes a screenshot.
pub const CHROMIUM: Tool = Tool {
    program: "chromium",
    package: "chromium",
    what: "the Chromium browser",
    otherwise: "put a chromium in PATH",
};

/// A JDK for the Java client test: javac compiles tests/java/ListPods.java
/// (the JDK's own HTTPS client), java runs it against the real control
/// plane with the truststore `auth --java-truststore` wrote, keytool lists
/// it. `javac --version` needs JDK 9 or newer; the client needs 11.
pub const JDK: Tool = Tool {
    program: "javac",
    package: "default-jdk-headless",
    what: "the Java compiler (a JDK)",
    otherwise: "put a JDK 11 or newer (javac, java, keytool) in PATH",
};

/// The bench's TLS registry: a self-signed certificate for 127.0.0.1.
pub const OPENSSL: Tool = Tool {
    program: "openssl",
    package: "openssl",
    what: "the OpenSSL command line tool",
    otherwise: "put an openssl in PATH",
};

/// The bench's registry with basic auth: the CNCF registry reads bcrypt
/// hashes from an htpasswd file, as its documentation makes them.
pub const HTPASSWD: Tool = Tool {
    program: "htpasswd",
    package: "apache2-utils",
    what: "Apache's htpasswd",
    otherwise: "put an htpasswd (bcrypt, -B) in PATH",
};
