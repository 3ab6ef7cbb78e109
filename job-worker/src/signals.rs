//! SIGTERM and SIGINT, taken synchronously.
//!
//! The signals are blocked in the whole process and collected with
//! `sigtimedwait` wherever the worker waits (work, hang, between memory
//! chunks). That makes the worker behave as PID 1 in a container: the kernel
//! drops a signal sent to a namespace's init only when its action is the
//! default one and it is not blocked, and a blocked signal is never dropped
//! (kernel/signal.c, `sig_ignored`). Without this, `docker stop` and the
//! kubelet would wait out the whole grace period and then SIGKILL (exit 137).
//! It needs no handler, no thread and no async-signal-safety reasoning.

use std::io;
use std::mem::MaybeUninit;
use std::time::Duration;

/// The signals the worker answers by exiting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Term,
    Int,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Term => "SIGTERM",
            Signal::Int => "SIGINT",
        }
    }

    /// 128 + the signal number, as a shell reports a death by that signal.
    pub fn exit_code(self) -> i32 {
        128 + match self {
            Signal::Term => libc::SIGTERM,
            Signal::Int => libc::SIGINT,
        }
    }
}

pub struct Signals {
    set: libc::sigset_t,
}

impl Signals {
    /// Blocks SIGTERM and SIGINT. Call first in `main`, before any thread
    /// exists, so that every thread inherits the mask.
    pub fn block() -> io::Result<Signals> {
        // SAFETY: sigemptyset initialises the set; the pointers are valid.
        unsafe {
            let mut set = MaybeUninit::<libc::sigset_t>::uninit();
            libc::sigemptyset(set.as_mut_ptr());
            let mut set = set.assume_init();
            libc::sigaddset(&mut set, libc::SIGTERM);
            libc::sigaddset(&mut set, libc::SIGINT);
            let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            if rc != 0 {
                return Err(io::Error::from_raw_os_error(rc));
            }
            Ok(Signals { set })
        }
    }

    /// Waits up to `timeout` (forever when None) for one of the signals.
    pub fn wait(&self, timeout: Option<Duration>) -> Option<Signal> {
        loop {
            // SAFETY: the set was initialised in `block`; a null siginfo is allowed.
            let signo = unsafe {
                match timeout {
                    Some(t) => {
                        let ts = libc::timespec {
                            // Capped at i32::MAX: time_t is 32 bits on some targets, and 68 years
                            // is as good as forever here.
                            tv_sec: t.as_secs().min(i32::MAX as u64) as _,
                            tv_nsec: t.subsec_nanos().into(),
                        };
                        libc::sigtimedwait(&self.set, std::ptr::null_mut(), &ts)
                    }
                    None => libc::sigwaitinfo(&self.set, std::ptr::null_mut()),
                }
            };
            match signo {
                libc::SIGTERM => return Some(Signal::Term),
                libc::SIGINT => return Some(Signal::Int),
                // EINTR: another signal (say SIGCHLD) woke us; wait again,
                // which restarts the timeout, but the callers keep their own
                // deadlines and pass what is left.
                -1 if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {
                    if timeout.is_some() {
                        return None;
                    }
                }
                _ => return None,
            }
        }
    }

    /// A signal that is already pending, without waiting.
    pub fn poll(&self) -> Option<Signal> {
        self.wait(Some(Duration::ZERO))
    }
}
