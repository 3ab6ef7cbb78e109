//! Why a registry call failed, by the types oci-client and the network
//! give, what is retried (connection trouble, 429, 5xx, with a doubling
//! back-off), and what the user reads: the step, the answer, the fix, and
//! that nothing was tagged. Never the secret.

use std::future::Future;
use std::time::Duration;

use oci_client::errors::{OciDistributionError, OciEnvelope, OciErrorCode};

use super::credentials::Source;
use crate::Error;
use crate::net::NetFailure;
use crate::report::Reporter;

/// Why a registry call failed, as far as the user needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Unauthorized(String),
    Denied(String),
    NotFound(String),
    /// On the way to the registry: DNS, TLS, the connection.
    Net(NetFailure, String),
    /// 429 or 5xx: may work on a retry.
    Busy(u16, String),
    Other(String),
}

impl Failure {
    fn transient(&self) -> bool {
        match self {
            Failure::Net(net, _) => net.transient(),
            Failure::Busy(..) => true,
            _ => false,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Unauthorized(m) => write!(f, "401 Unauthorized ({m})"),
            Failure::Denied(m) => write!(f, "denied ({m})"),
            Failure::NotFound(m) => write!(f, "not found ({m})"),
            Failure::Net(NetFailure::Dns, m) => write!(f, "DNS lookup failed ({m})"),
            Failure::Net(NetFailure::Untrusted | NetFailure::NotTls | NetFailure::Tls, m) => {
                write!(f, "TLS failed ({m})")
            }
            Failure::Net(NetFailure::Refused | NetFailure::Reset | NetFailure::TimedOut, m) => {
                write!(f, "connection failed ({m})")
            }
            Failure::Busy(code, m) => write!(f, "the registry answered {code} ({m})"),
            Failure::Other(m) => f.write_str(m),
        }
    }
}

fn by_status(code: u16, message: &str) -> Failure {
    let m = crate::one_line(message);
    match code {
        401 => Failure::Unauthorized(m),
        403 => Failure::Denied(m),
        404 => Failure::NotFound(m),
        // 501 and 505 say the server will never do it: not worth a retry.
        429 | 500 | 502..=504 | 506..=599 => Failure::Busy(code, m),
        _ => Failure::Other(format!("the registry answered {code}: {m}")),
    }
}

pub fn classify(e: &OciDistributionError) -> Failure {
    match e {
        OciDistributionError::ServerError { code, message, .. } => by_status(*code, message),
        OciDistributionError::UnauthorizedError { url } => Failure::Unauthorized(url.clone()),
        OciDistributionError::AuthenticationFailure(reason) => Failure::Unauthorized(crate::one_line(reason)),
        OciDistributionError::RegistryError { envelope, .. } => by_code(envelope),
        OciDistributionError::RequestError(re) => {
            if let Some(status) = re.status() {
                return by_status(status.as_u16(), &re.to_string());
            }
            let text = crate::one_line(&crate::error_text(re));
            match crate::net::classify(re) {
                Some(failure) => Failure::Net(failure, text),
                // Unclassified transport trouble is worth another try.
                None => Failure::Net(NetFailure::Reset, text),
            }
        }
        other => Failure::Other(crate::one_line(&crate::error_text(other))),
    }
}

/// The registry's own error codes (distribution spec, "Error Codes").
fn by_code(envelope: &OciEnvelope) -> Failure {
    let text = crate::one_line(&envelope.to_string());
    let has = |code: OciErrorCode| envelope.errors.iter().any(|e| e.code == code);
    if has(OciErrorCode::Unauthorized) {
        Failure::Unauthorized(text)
    } else if has(OciErrorCode::Denied) {
        Failure::Denied(text)
    } else if has(OciErrorCode::NameUnknown) || has(OciErrorCode::ManifestUnknown) {
        Failure::NotFound(text)
    } else if has(OciErrorCode::Toomanyrequests) {
        Failure::Busy(429, text)
    } else {
        Failure::Other(text)
    }
}

/// Runs a registry call, retrying transient failures with a doubling
/// back-off (250 ms up to 8 s).
pub async fn retry<T, F, Fut>(what: &str, attempts: u32, out: &Reporter, mut call: F) -> Result<T, Failure>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, OciDistributionError>>,
{
    let mut delay = Duration::from_millis(250);
    let attempts = attempts.max(1);
    for attempt in 1..=attempts {
        match call().await {
            Ok(v) => return Ok(v),
            Err(e) => {
                let failure = classify(&e);
                if failure.transient() && attempt < attempts {
                    out.status(format!("  {what}: {failure}; trying again in {delay:?} ({attempt}/{attempts})"));
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(8));
                    continue;
                }
                return Err(failure);
            }
        }
    }
    unreachable!("the loop returns on its last attempt")
}

/// What the user reads when a step fails: the step, the registry's answer,
/// and the fix. Never the secret.
pub fn explain(step: &str, host: &str, repository: &str, failure: &Failure, source: &Source, tls_hint: bool) -> Error {
    let fix = fix(host, repository, failure, source, tls_hint);
    let end = if fix.ends_with(['.', '?']) { "" } else { "." };
    Error::remote(format!(
        "{step} failed: {failure}.\n  {fix}{end}\n  Nothing was tagged: the tag is written only after every blob is in the registry."
    ))
}

/// The same for a step after the tag (attaching the SBOM): the image is
/// there, and the next push attaches what is missing.
pub fn explain_after_tag(
    step: &str,
    host: &str,
    repository: &str,
    failure: &Failure,
    source: &Source,
    tls_hint: bool,
) -> Error {
    let fix = fix(host, repository, failure, source, tls_hint);
    let end = if fix.ends_with(['.', '?']) { "" } else { "." };
    Error::remote(format!(
        "{step} failed: {failure}.\n  {fix}{end}\n  The image is pushed and tagged, without its SBOM: push again to \
         attach it (or --sbom=false, for a registry that refuses OCI 1.1 artifacts)."
    ))
}

fn fix(host: &str, repository: &str, failure: &Failure, source: &Source, tls_hint: bool) -> String {
    let acr = host.ends_with(".aliyuncs.com");
    match failure {
        Failure::Unauthorized(_) => {
            let mut fix = format!(
                "the registry {host} refused the credentials from {source}. Log in with `docker login {host}`, or pass \
                 --username with --password-stdin, or set REGISTRY_USERNAME and REGISTRY_PASSWORD"
            );
            if acr {
                fix.push_str(
                    ". For Alibaba Cloud ACR the password is the registry password set in the ACR console \
                     (Access Credentials), not the Alibaba Cloud account password",
                );
            }
            fix
        }
        Failure::Denied(_) => {
            let mut fix = format!(
                "the registry {host} denied this for {repository}: the namespace or repository may not exist, or \
                 these credentials ({source}) may not write to it"
            );
            if acr {
                fix.push_str(
                    ". In ACR personal edition, create the namespace in the console first; only NAMESPACE/REPOSITORY is accepted",
                );
            }
            fix
        }
        Failure::NotFound(_) => {
            format!("the registry {host} does not know {repository}: check the namespace and repository")
        }
        Failure::Net(NetFailure::Untrusted | NetFailure::Tls, _) if tls_hint => format!(
            "the certificate of {host} is not trusted: pass --registry-ca-cert FILE with the CA that signed it \
             (or, not recommended, --insecure-registry to skip verification)"
        ),
        Failure::Net(NetFailure::NotTls, _) => format!(
            "{host} answered in plain HTTP, not TLS: plain HTTP is used only for a registry on this machine or with \
             --insecure-registry"
        ),
        Failure::Net(NetFailure::Untrusted | NetFailure::Tls, _) => format!("the TLS connection to {host} failed"),
        Failure::Net(NetFailure::Dns, _) => {
            format!("the host name of {host} does not resolve: check the registry in --image")
        }
        Failure::Net(NetFailure::Refused | NetFailure::Reset | NetFailure::TimedOut, _) => {
            format!("cannot reach {host}: is the registry running, and is the port right?")
        }
        Failure::Busy(..) => format!("the registry {host} kept failing; try again later"),
        Failure::Other(_) => format!("the registry {host} refused it"),
    }
}

#[cfg(test)]
mod tests {
    use oci_client::errors::OciError;

    use super::*;

    fn envelope(code: OciErrorCode) -> OciDistributionError {
        OciDistributionError::RegistryError {
            envelope: OciEnvelope {
                errors: vec![OciError { code, message: "m".into(), detail: serde_json::Value::Null }],
            },
            url: "https://r.example/v2/".into(),
        }
    }

    #[test]
    fn registry_codes_and_statuses_are_classified_by_type() {
        assert!(matches!(classify(&envelope(OciErrorCode::Denied)), Failure::Denied(_)));
        assert!(matches!(classify(&envelope(OciErrorCode::Unauthorized)), Failure::Unauthorized(_)));
        assert!(matches!(classify(&envelope(OciErrorCode::NameUnknown)), Failure::NotFound(_)));
        assert!(matches!(classify(&envelope(OciErrorCode::ManifestUnknown)), Failure::NotFound(_)));
        assert!(matches!(classify(&envelope(OciErrorCode::Toomanyrequests)), Failure::Busy(429, _)));
        assert!(matches!(classify(&envelope(OciErrorCode::ManifestInvalid)), Failure::Other(_)));
        let server = |code| OciDistributionError::ServerError { code, url: String::new(), message: "x".into() };
        assert!(classify(&server(503)).transient());
        assert!(!classify(&server(401)).transient());
        assert!(matches!(classify(&server(404)), Failure::NotFound(_)));
    }

    #[test]
    fn the_explanation_says_nothing_was_tagged_and_gives_the_acr_hint() {
        let e = explain(
            "writing the tag",
            "crpi-x.cn-shenzhen.personal.cr.aliyuncs.com",
            "ns/job-test",
            &Failure::Unauthorized("u".into()),
            &Source::Anonymous,
            true,
        )
        .to_string();
        assert!(e.contains("not the Alibaba Cloud account password"), "{e}");
        assert!(e.ends_with("Nothing was tagged: the tag is written only after every blob is in the registry."), "{e}");
    }
}
