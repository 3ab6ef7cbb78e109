//! A TCP proxy on 127.0.0.1 that forwards to a plain-HTTP registry and
//! injects the faults real networks and registries have: a connection reset
//! in the middle of a blob upload, and 503 answers. It counts what it did,
//! so that a test can check the fault really happened.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread;

#[derive(Clone, Copy, Debug)]
pub enum Fault {
    /// Reset the connection the first `times` times a request starts with
    /// `pattern` (e.g. "PUT /v2/"), before the registry sees it.
    Reset { pattern: &'static str, times: u32 },
    /// Answer 503 the first `times` times a request starts with `pattern`.
    Unavailable { pattern: &'static str, times: u32 },
}

pub struct FaultProxy {
    /// `127.0.0.1:PORT`
    pub host: String,
    injected: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    pub fn start(upstream: &str, fault: Fault) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let injected = Arc::new(AtomicU32::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (upstream, inj, stop2) = (upstream.to_owned(), injected.clone(), stop.clone());
        thread::spawn(move || {
            for client in listener.incoming() {
                if stop2.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(&upstream) else { continue };
                let inj = inj.clone();
                thread::spawn(move || serve(client, server, fault, inj));
            }
        });
        FaultProxy { host, injected, stop }
    }

    /// How many faults were injected so far.
    pub fn injected(&self) -> u32 {
        self.injected.load(Ordering::Relaxed)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(&self.host);
    }
}

fn serve(mut client: TcpStream, server: TcpStream, fault: Fault, injected: Arc<AtomicU32>) {
    let mut server_read = server.try_clone().unwrap();
    let mut client_write = client.try_clone().unwrap();
    // When resetting, the client socket must be closed without a FIN first.
    let resetting = Arc::new(AtomicBool::new(false));
    let resetting2 = resetting.clone();
    let back = thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n) = server_read.read(&mut buf) {
            if n == 0 || client_write.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        if !resetting2.load(Ordering::SeqCst) {
            let _ = client_write.shutdown(Shutdown::Both);
        }
    });
    let mut server_write = server;
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match client.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let chunk = &buf[..n];
        let (pattern, times) = match fault {
            Fault::Reset { pattern, times } | Fault::Unavailable { pattern, times } => (pattern, times),
        };
        if chunk.starts_with(pattern.as_bytes()) && claim(&injected, times) {
            match fault {
                Fault::Reset { .. } => {
                    resetting.store(true, Ordering::SeqCst);
                    reset(&client);
                }
                Fault::Unavailable { .. } => {
                    let _ = client.write_all(
                        b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 20\r\nConnection: close\r\n\r\ninjected by the test",
                    );
                    let _ = client.shutdown(Shutdown::Both);
                }
            }
            let _ = server_write.shutdown(Shutdown::Both);
            break;
        }
        if server_write.write_all(chunk).is_err() {
            break;
        }
    }
    let _ = server_write.shutdown(Shutdown::Both);
    let _ = back.join();
    // Dropping `client`, the last handle, closes the socket: with SO_LINGER 0 that is an RST.
    drop(client);
}

/// Takes one of the `times` faults, if any is left.
fn claim(injected: &AtomicU32, times: u32) -> bool {
    injected.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < times).then_some(n + 1)).is_ok()
}

/// Closes with RST rather than FIN (SO_LINGER 0): what the client sees when
/// a load balancer or a crashing registry drops it.
fn reset(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: a valid socket and a correctly sized option value.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}
