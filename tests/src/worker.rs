//! Running the built worker as a process, with a clean environment (only
//! what the test sets), and reading what it printed: the x86_64 binary as
//! it is, the aarch64 one under qemu's user-mode emulator, so that the same
//! tests hold both platforms' binaries to one contract.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::{qemu_aarch64, worker_bin, worker_bin_aarch64};

/// A worker run about to start.
pub struct Worker {
    cmd: Command,
}

/// A finished worker run.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
    pub fn signal(&self) -> Option<i32> {
        self.status.signal()
    }
    /// Stdout lines parsed as JSON objects (for LOG_FORMAT=json runs).
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l:?}")))
            .collect()
    }
    /// The JSON event with this name.
    pub fn event(&self, name: &str) -> serde_json::Value {
        self.json_lines()
            .into_iter()
            .find(|v| v["event"] == name)
            .unwrap_or_else(|| panic!("no {name:?} event in:\n{}", self.stdout))
    }
}

/// The platform of the worker binary a test runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// The x86_64 binary (JOB_WORKER_BIN), run directly.
    X86_64,
    /// The aarch64 binary (JOB_WORKER_BIN_AARCH64), run by
    /// `qemu-aarch64-static`. qemu-user is the worker's process itself (it
    /// translates the binary in place, no child), so its pid takes the
    /// signals, and its exit status is the worker's: a code, or the guest's
    /// fatal signal, which qemu re-raises on itself.
    Aarch64,
}

/// A run of the worker of `arch`.
pub fn worker(arch: Arch) -> Worker {
    let mut cmd = match arch {
        Arch::X86_64 => Command::new(worker_bin()),
        Arch::Aarch64 => {
            let mut cmd = Command::new(qemu_aarch64());
            cmd.arg(worker_bin_aarch64());
            cmd
        }
    };
    // Cleared for qemu too, which would otherwise read QEMU_* settings.
    cmd.env_clear().env("HOSTNAME", "job-test-e2e00").stdin(Stdio::null());
    Worker { cmd }
}

impl Worker {
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(mut self, args: I) -> Worker {
        self.cmd.args(args);
        self
    }
    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Worker {
        self.cmd.env(key, value);
        self
    }
    pub fn json(self) -> Worker {
        self.env("LOG_FORMAT", "json")
    }

    /// Runs to the end (the worker must end within a minute).
    pub fn run(self) -> Finished {
        self.spawn().wait(Duration::from_secs(60))
    }

    pub fn spawn(mut self) -> Running {
        let mut child =
            self.cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("starting the built job-worker");
        let reader = BufReader::new(child.stdout.take().unwrap());
        Running { child, reader, lines: Vec::new() }
    }
}

/// A worker still running.
pub struct Running {
    child: Child,
    reader: BufReader<ChildStdout>,
    lines: Vec<String>,
}

impl Running {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Reads stdout until a line contains `needle` (the worker has reached
    /// that point), keeping what was read.
    pub fn wait_for_line(&mut self, needle: &str) -> String {
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).unwrap();
            assert!(n > 0, "the worker closed stdout before printing {needle:?}; it printed:\n{}", self.lines.join(""));
            self.lines.push(line.clone());
            if line.contains(needle) {
                return line;
            }
        }
    }

    pub fn signal(&self, signo: i32) {
        // SAFETY: a plain syscall on our own unreaped child.
        assert_eq!(unsafe { libc::kill(self.pid(), signo) }, 0, "kill failed");
    }

    /// Waits for the exit, failing the test if it takes longer than `limit`
    /// (a worker that ignored a signal would otherwise hang the test run).
    pub fn wait(mut self, limit: Duration) -> Finished {
        let start = Instant::now();
        loop {
            if self.child.try_wait().unwrap().is_some() {
                break;
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("the worker did not exit within {limit:?}; it printed:\n{}", self.lines.join(""));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut stdout = self.lines.concat();
        self.reader.read_to_string(&mut stdout).unwrap();
        let mut stderr = String::new();
        self.child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
        Finished { status: self.child.wait().unwrap(), stdout, stderr }
    }
}
