//! The registry session: HTTPS with the given CA (or none verified, with
//! `--insecure-registry`), or plain HTTP where it is allowed (a registry on
//! this machine, or `--insecure-registry`) and the registry speaks only
//! that.

use std::time::Duration;

use anyhow::Result;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::{Client, Reference, RegistryOperation};

use super::failure::{Failure, retry};
use super::target::is_loopback;
use crate::Error;
use crate::choices::UploadMode;
use crate::net::NetFailure;
use crate::report::Reporter;

fn client(protocol: ClientProtocol, ca: Option<&[u8]>, insecure: bool, mode: UploadMode) -> Result<Client> {
    let config = ClientConfig {
        protocol,
        extra_root_certificates: ca
            .map(|pem| vec![Certificate { encoding: CertificateEncoding::Pem, data: pem.to_vec() }])
            .unwrap_or_default(),
        accept_invalid_certificates: insecure,
        use_monolithic_push: mode == UploadMode::Monolithic,
        // Registries that give no token lifetime are assumed to keep it a
        // minute; refresh sooner so a multi-layer push never sends an
        // expired one.
        default_token_expiration_secs: 30,
        connect_timeout: Some(Duration::from_secs(10)),
        read_timeout: Some(Duration::from_secs(60)),
        ..ClientConfig::default()
    };
    // try_from, not new: `new` falls back to a default client (dropping the
    // CA) when the configuration is bad.
    Client::try_from(config)
        .map_err(|e| Error::usage(format!("--registry-ca-cert: not a usable PEM certificate ({e})")).into())
}

/// How a registry is reached, besides its credential and CA.
#[derive(Debug, Clone, Copy)]
pub struct Transport {
    /// Plain HTTP and unverified TLS allowed for a registry not on this machine (warned).
    pub insecure_registry: bool,
    pub upload_mode: UploadMode,
    /// Tries per request before a transient failure is given up.
    pub attempts: u32,
}

/// Chooses the scheme: HTTPS, or plain HTTP where it is allowed (a registry
/// on this machine, or `--insecure-registry`) and the registry speaks only
/// that.
///
/// On this machine both are asked at once, so a plain-HTTP registry costs
/// no failed TLS handshake first; the choice is the same as asking in turn
/// (HTTPS when it answers, plain HTTP only when the answer to HTTPS was not
/// TLS at all). Elsewhere, nothing goes out in plain HTTP before HTTPS has
/// been refused that way.
pub async fn open(
    reference: &Reference,
    auth: &oci_client::secrets::RegistryAuth,
    ca: Option<&[u8]>,
    flags: &Transport,
    out: &Reporter,
    host: &str,
) -> Result<Client, Failure> {
    let mode = flags.upload_mode;
    let https =
        client(ClientProtocol::Https, ca, flags.insecure_registry, mode).map_err(|e| Failure::Other(e.to_string()))?;
    let http = || client(ClientProtocol::Http, None, false, mode).map_err(|e| Failure::Other(e.to_string()));
    let try_https = retry("connecting", flags.attempts, out, || https.auth(reference, auth, RegistryOperation::Push));
    let (tried, plain) = if is_loopback(host) {
        let http = http()?;
        let (tried, plain) = tokio::join!(try_https, http.auth(reference, auth, RegistryOperation::Push));
        (tried, Some((http, plain.is_ok())))
    } else {
        (try_https.await, None)
    };
    match tried {
        Ok(_) => Ok(https),
        // Only when the answer was not TLS at all: a registry that speaks TLS
        // with an untrusted certificate must be trusted, not downgraded.
        Err(https_failure @ Failure::Net(NetFailure::NotTls, _)) if is_loopback(host) || flags.insecure_registry => {
            let (http, answered) = match plain {
                Some(asked) => asked,
                None => {
                    let http = http()?;
                    let answered = http.auth(reference, auth, RegistryOperation::Push).await.is_ok();
                    (http, answered)
                }
            };
            if !answered {
                return Err(https_failure);
            }
            if is_loopback(host) {
                out.status(format!("{host} speaks plain HTTP (allowed for a registry on this machine)"));
            } else {
                out.warn(format!(
                    "{host} speaks plain HTTP: credentials and the image cross the network unencrypted \
                     (--insecure-registry)"
                ));
            }
            Ok(http)
        }
        Err(failure) => Err(failure),
    }
}
