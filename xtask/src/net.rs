//! Why a connection failed, read off the error's types: one classifier for
//! the registry (reqwest) and the cluster (kube's hyper client), which both
//! sit on hyper-util, rustls and std's sockets.

use std::error::Error as StdError;
use std::io;

/// What went wrong on the way to a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetFailure {
    /// The host name does not resolve.
    Dns,
    /// Nothing listens there.
    Refused,
    /// The connection was cut (reset, aborted, closed early).
    Reset,
    TimedOut,
    /// The server's certificate is not trusted (or not valid for the name).
    Untrusted,
    /// The server answered in plain text where TLS was expected.
    NotTls,
    /// Another TLS failure.
    Tls,
}

impl NetFailure {
    /// May work on a retry.
    pub fn transient(self) -> bool {
        matches!(self, NetFailure::Refused | NetFailure::Reset | NetFailure::TimedOut)
    }
}

/// The failure found in the error's source chain, if it is a network one.
pub fn classify(err: &(dyn StdError + 'static)) -> Option<NetFailure> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls_failure(tls));
        }
        if let Some(io) = e.downcast_ref::<io::Error>()
            && let Some(failure) = io_failure(io)
        {
            return Some(failure);
        }
        // These have no public type: hyper-util's resolver error ("dns
        // error"), getaddrinfo's message (no ErrorKind) and reqwest's
        // timeout. Their texts are fixed in those crates.
        let text = e.to_string();
        if text == "dns error" || text.starts_with("failed to lookup address") {
            return Some(NetFailure::Dns);
        }
        if text == "operation timed out" {
            return Some(NetFailure::TimedOut);
        }
        next = e.source();
    }
    None
}

/// An io::Error's own failure. What it wraps comes first, and is reached
/// through `get_ref`: `source()` of a wrapping io::Error skips the error it
/// wraps (tokio-rustls wraps rustls's error in one, hyper-util that in
/// another).
fn io_failure(io: &io::Error) -> Option<NetFailure> {
    if let Some(inner) = io.get_ref() {
        if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
            return Some(tls_failure(tls));
        }
        if let Some(failure) = inner.downcast_ref::<io::Error>().and_then(io_failure) {
            return Some(failure);
        }
    }
    match io.kind() {
        io::ErrorKind::ConnectionRefused => Some(NetFailure::Refused),
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof => Some(NetFailure::Reset),
        io::ErrorKind::TimedOut => Some(NetFailure::TimedOut),
        _ => None,
    }
}

fn tls_failure(e: &rustls::Error) -> NetFailure {
    match e {
        rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => NetFailure::Untrusted,
        // A plain-HTTP answer read as a TLS record.
        rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType) => NetFailure::NotTls,
        _ => NetFailure::Tls,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct Wrapped(&'static str, #[source] io::Error);

    #[test]
    fn failures_are_found_by_type_through_the_chain() {
        let refused = Wrapped("client error (Connect)", io::Error::from(io::ErrorKind::ConnectionRefused));
        assert_eq!(classify(&refused), Some(NetFailure::Refused));
        let untrusted = io::Error::other(rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer));
        assert_eq!(classify(&Wrapped("tls", untrusted)), Some(NetFailure::Untrusted));
        // As reqwest reports a plain-HTTP answer: io::Error in io::Error.
        let plain = io::Error::other(io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType),
        ));
        assert_eq!(classify(&Wrapped("client error (Connect)", plain)), Some(NetFailure::NotTls));
        assert_eq!(classify(&io::Error::other("failed to lookup address information: nope")), Some(NetFailure::Dns));
        assert_eq!(classify(&io::Error::other("something else")), None);
        assert!(NetFailure::Reset.transient() && !NetFailure::Untrusted.transient());
    }
}
