//! `cargo xtask push`: build the image (a no-op when nothing changed), then
//! upload it with oci-client, blob by blob, and write the tag last.
//!
//! oci-client's one-call `Client::push` uploads every blob without asking
//! whether the registry has it; here each blob is checked first
//! (`blob_exists`) and only missing ones are sent, so a second push of an
//! unchanged image uploads no layer bytes. Transient failures (connection
//! reset, timeouts, 5xx, 429) are retried with a doubling back-off; the
//! manifest, which writes the tag, goes up only once every blob is there,
//! so a failed push leaves no tag behind.

pub mod credentials;

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::{Client, Reference, RegistryOperation};
use serde_json::json;

use crate::flags::{PushFlags, RegistryFlags, UploadMode};
use crate::image::layout::{Descriptor, MANIFEST_MEDIA_TYPE};
use crate::image::{self, Built};
use crate::image_ref::ImageRef;
use crate::report::Reporter;
use crate::{InvalidInput, Remote};
use credentials::{Credential, Source};

/// A pushed image.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// `registry/repository:tag@sha256:...`: what to deploy.
    pub pinned: String,
    pub digest: String,
    pub bytes_uploaded: u64,
    pub blobs_uploaded: usize,
    pub blobs_skipped: usize,
    pub seconds: f64,
}

pub fn run(flags: &PushFlags, out: &Reporter) -> Result<()> {
    let target = resolve_target(flags.image.image.as_deref(), out)?;
    let image_flags = crate::flags::ImageFlags { image: Some(target.to_string()), build: flags.image.build.clone() };
    let inputs = credentials::Inputs::from_process(flags.registry.username.clone(), flags.registry.password_stdin)?;
    let ca = read_ca(&flags.registry)?;
    crate::runtime()?.block_on(async {
        let built = image::build_image(&image_flags, out).await?;
        out.status(format!(
            "built {} ({} bytes compressed, digest {})",
            built.reference,
            built.image.compressed_size(),
            built.image.digest
        ));
        let (credential, source) = credential_for(&target, inputs).await?;
        let pushed = push(&built, &target, &credential, &source, ca, &flags.registry, out).await?;
        out.result(
            format!(
                "{}\n  uploaded {} bytes in {} blobs, {} already there, in {:.1} s",
                pushed.pinned, pushed.bytes_uploaded, pushed.blobs_uploaded, pushed.blobs_skipped, pushed.seconds
            ),
            &json!({
                "reference": pushed.pinned,
                "digest": pushed.digest,
                "bytes_uploaded": pushed.bytes_uploaded,
                "blobs_uploaded": pushed.blobs_uploaded,
                "blobs_skipped": pushed.blobs_skipped,
                "seconds": pushed.seconds,
                "builder": format!("{:?}", built.builder).to_lowercase(),
            }),
        );
        Ok(())
    })
}

/// The registry CA from --registry-ca-cert.
pub fn read_ca(flags: &RegistryFlags) -> Result<Option<Vec<u8>>> {
    match &flags.registry_ca_cert {
        Some(path) => Ok(Some(std::fs::read(path).map_err(|e| {
            InvalidInput(format!(
                "--registry-ca-cert {}: cannot read it ({e}); give a PEM file with the registry's CA",
                path.display()
            ))
        })?)),
        None => Ok(None),
    }
}

/// Finds the credential for the target's registry, off the async runtime
/// (credential helpers are processes).
pub async fn credential_for(target: &ImageRef, inputs: credentials::Inputs) -> Result<(Credential, Source)> {
    let host = registry_host(target);
    tokio::task::spawn_blocking(move || credentials::lookup(&host, &inputs)).await?
}

/// The push target: `--image`, or with none the embedded default, a local
/// registry, started when nothing answers there.
pub fn resolve_target(image: Option<&str>, out: &Reporter) -> Result<ImageRef> {
    let target = target_reference(image)?;
    if image.is_none() {
        crate::local_registry::ensure_running(out)?;
    }
    Ok(target)
}

/// The reference to push to: it must name a registry, and for Alibaba Cloud
/// ACR personal edition exactly one namespace level.
pub fn target_reference(image: Option<&str>) -> Result<ImageRef> {
    let text = match image {
        Some(image) => image.to_owned(),
        None => crate::local_registry::default_image()?,
    };
    let reference =
        ImageRef::parse(&text).map_err(|why| InvalidInput(format!("--image {text}: not an image reference: {why}")))?;
    let Some(registry) = &reference.registry else {
        return Err(InvalidInput(format!(
            "--image {text} names no registry: give the registry host, e.g. localhost:5000/job-test:0.1.0, \
             docker.io/USER/job-test:0.1.0 or crpi-xxxx.cn-shenzhen.personal.cr.aliyuncs.com/NAMESPACE/job-test:1.0.0"
        ))
        .into());
    };
    if registry.ends_with(".aliyuncs.com") && reference.repository.split('/').count() != 2 {
        return Err(InvalidInput(format!(
            "--image {text}: Alibaba Cloud ACR personal edition takes exactly NAMESPACE/REPOSITORY after the host \
             (it answers \"denied\" to {} levels); use e.g. {registry}/jerry-learn/job-test:1.0.0",
            reference.repository.split('/').count()
        ))
        .into());
    }
    Ok(reference)
}

fn registry_host(r: &ImageRef) -> String {
    r.registry.clone().unwrap_or_else(|| "docker.io".into())
}

fn is_loopback(host: &str) -> bool {
    let name =
        host.rsplit_once(':').map_or(host, |(h, port)| if port.chars().all(|c| c.is_ascii_digit()) { h } else { host });
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name == "localhost" || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

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
        .map_err(|e| InvalidInput(format!("--registry-ca-cert: not a usable PEM certificate ({e})")).into())
}

/// Why a registry call failed, as far as the user needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Unauthorized(String),
    Denied(String),
    NotFound(String),
    Tls(String),
    Dns(String),
    /// Refused, reset, closed, timed out: may work on a retry.
    Connection(String),
    /// 429 or 5xx: may work on a retry.
    Busy(u16, String),
    Other(String),
}

impl Failure {
    fn transient(&self) -> bool {
        matches!(self, Failure::Connection(_) | Failure::Busy(..))
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Unauthorized(m) => write!(f, "401 Unauthorized ({m})"),
            Failure::Denied(m) => write!(f, "denied ({m})"),
            Failure::NotFound(m) => write!(f, "not found ({m})"),
            Failure::Tls(m) => write!(f, "TLS failed ({m})"),
            Failure::Dns(m) => write!(f, "DNS lookup failed ({m})"),
            Failure::Connection(m) => write!(f, "connection failed ({m})"),
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
        429 | 500..=599 => Failure::Busy(code, m),
        _ => Failure::Other(format!("the registry answered {code}: {m}")),
    }
}

pub fn classify(e: &OciDistributionError) -> Failure {
    match e {
        OciDistributionError::ServerError { code, message, .. } => by_status(*code, message),
        OciDistributionError::UnauthorizedError { url } => Failure::Unauthorized(url.clone()),
        OciDistributionError::AuthenticationFailure(reason) => Failure::Unauthorized(crate::one_line(reason)),
        OciDistributionError::RegistryError { envelope, .. } => {
            let text = crate::one_line(&format!("{envelope:?}"));
            let codes = format!("{envelope:?}").to_uppercase();
            if codes.contains("UNAUTHORIZED") {
                Failure::Unauthorized(text)
            } else if codes.contains("DENIED") {
                Failure::Denied(text)
            } else if codes.contains("NAME_UNKNOWN") || codes.contains("NAMEUNKNOWN") {
                Failure::NotFound(text)
            } else if codes.contains("TOOMANYREQUESTS") {
                Failure::Busy(429, text)
            } else {
                Failure::Other(text)
            }
        }
        OciDistributionError::RequestError(re) => {
            if let Some(status) = re.status() {
                return by_status(status.as_u16(), &re.to_string());
            }
            let text = crate::error_text(re);
            let lower = text.to_lowercase();
            if lower.contains("dns error")
                || lower.contains("failed to lookup address")
                || lower.contains("name or service not known")
            {
                Failure::Dns(crate::one_line(&text))
            } else if lower.contains("certificate")
                || lower.contains("unknownissuer")
                || lower.contains("tls")
                || lower.contains("handshake")
                || lower.contains("corrupt message")
                || lower.contains("invalidcontenttype")
            {
                Failure::Tls(crate::one_line(&text))
            } else {
                Failure::Connection(crate::one_line(&text))
            }
        }
        other => Failure::Other(crate::one_line(&crate::error_text(other))),
    }
}

/// Runs a registry call, retrying transient failures with a doubling
/// back-off (250 ms up to 8 s).
async fn retry<T, F, Fut>(what: &str, attempts: u32, out: &Reporter, mut call: F) -> Result<T, Failure>
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
fn explain(step: &str, host: &str, repository: &str, failure: &Failure, source: &Source, tls_hint: bool) -> Remote {
    let acr = host.ends_with(".aliyuncs.com");
    let fix = match failure {
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
        Failure::Tls(_) if tls_hint => format!(
            "the certificate of {host} is not trusted: pass --registry-ca-cert FILE with the CA that signed it \
             (or, not recommended, --insecure-registry to skip verification)"
        ),
        Failure::Tls(_) => format!("the TLS connection to {host} failed"),
        Failure::Dns(_) => format!("the host name of {host} does not resolve: check the registry in --image"),
        Failure::Connection(_) => format!("cannot reach {host}: is the registry running, and is the port right?"),
        Failure::Busy(..) => format!("the registry {host} kept failing; try again later"),
        Failure::Other(_) => format!("the registry {host} refused it"),
    };
    let end = if fix.ends_with(['.', '?']) { "" } else { "." };
    Remote(format!(
        "{step} failed: {failure}.\n  {fix}{end}\n  Nothing was tagged: the tag is written only after every blob is in the registry."
    ))
}

/// Chooses the scheme: HTTPS, or plain HTTP where it is allowed (a registry
/// on this machine, or `--insecure-registry`) and the registry speaks only
/// that.
async fn connect(
    reference: &Reference,
    auth: &oci_client::secrets::RegistryAuth,
    ca: Option<&[u8]>,
    flags: &RegistryFlags,
    out: &Reporter,
    host: &str,
) -> Result<Client, Failure> {
    let mode = flags.upload_mode;
    let https =
        client(ClientProtocol::Https, ca, flags.insecure_registry, mode).map_err(|e| Failure::Other(e.to_string()))?;
    let tried = retry("connecting", flags.attempts, out, || https.auth(reference, auth, RegistryOperation::Push)).await;
    match tried {
        Ok(_) => Ok(https),
        // Only when the answer was not TLS at all: a registry that speaks TLS
        // with an untrusted certificate must be trusted, not downgraded.
        Err(https_failure @ Failure::Tls(_))
            if (is_loopback(host) || flags.insecure_registry) && not_tls(&https_failure) =>
        {
            let http = client(ClientProtocol::Http, None, false, mode).map_err(|e| Failure::Other(e.to_string()))?;
            match http.auth(reference, auth, RegistryOperation::Push).await {
                Ok(_) => {
                    if is_loopback(host) {
                        out.status(format!("{host} speaks plain HTTP (allowed for a registry on this machine)"));
                    } else {
                        out.warn(format!("{host} speaks plain HTTP: credentials and the image cross the network unencrypted (--insecure-registry)"));
                    }
                    Ok(http)
                }
                Err(_) => Err(https_failure),
            }
        }
        Err(failure) => Err(failure),
    }
}

/// rustls's words for a server that answered in plain text.
fn not_tls(failure: &Failure) -> bool {
    let text = failure.to_string().to_lowercase();
    text.contains("corrupt message") || text.contains("invalidcontenttype")
}

/// Pushes the built image to `target`.
pub async fn push(
    built: &Built,
    target: &ImageRef,
    credential: &Credential,
    source: &Source,
    ca: Option<Vec<u8>>,
    flags: &RegistryFlags,
    out: &Reporter,
) -> Result<Pushed> {
    let started = Instant::now();
    let host = registry_host(target);
    let tag = target.tag.clone().unwrap_or_else(|| "latest".into());
    let reference: Reference = format!("{}:{tag}", target.name()).parse().context("the reference for oci-client")?;
    let auth = credential.to_auth();
    if flags.insecure_registry && !is_loopback(&host) {
        out.warn(format!("--insecure-registry: the certificate of {host} is not verified, and plain HTTP is allowed"));
    }
    let fail = |step: &str, f: Failure| {
        explain(step, &host, &target.repository, &f, source, ca.is_none() && !flags.insecure_registry)
    };

    out.status(format!(
        "pushing {target} to {host} as {}",
        match source {
            Source::Anonymous => "anonymous".to_owned(),
            other => format!("the user from {other}"),
        }
    ));
    let client = connect(&reference, &auth, ca.as_deref(), flags, out, &host)
        .await
        .map_err(|f| fail("connecting to the registry", f))?;
    let attempts = flags.attempts;
    let image = &built.image;

    let mut bytes_uploaded = 0;
    let (mut uploaded, mut skipped) = (0, 0);
    for blob in image.blobs() {
        let label = blob_label(blob, image);
        let exists = retry("checking a blob", attempts, out, || client.blob_exists(&reference, &blob.digest))
            .await
            .map_err(|f| fail(&format!("checking whether the registry has {label}"), f))?;
        if exists {
            out.status(format!("  {label}: already in the registry, not uploaded"));
            skipped += 1;
            continue;
        }
        let data = Bytes::from(image.read_blob(blob)?);
        let sent = Arc::new(AtomicU64::new(0));
        retry(&format!("uploading {label}"), attempts, out, || {
            sent.store(0, Ordering::Relaxed);
            let stream = progress_stream(data.clone(), label.clone(), sent.clone(), *out);
            client.push_blob_stream(&reference, stream, &blob.digest, Some(data.len() as u64))
        })
        .await
        .map_err(|f| fail(&format!("uploading {label}"), f))?;
        bytes_uploaded += data.len() as u64;
        uploaded += 1;
    }
    // The tag goes last, and only when the registry has every blob.
    for blob in image.blobs() {
        let there = retry("checking a blob", attempts, out, || client.blob_exists(&reference, &blob.digest))
            .await
            .map_err(|f| fail("checking the uploaded blobs", f))?;
        if !there {
            return Err(Remote(format!(
                "the registry {host} does not have {} after its upload; nothing was tagged",
                blob_label(blob, image)
            ))
            .into());
        }
    }
    let content_type = http::HeaderValue::from_static(MANIFEST_MEDIA_TYPE);
    retry("writing the tag", attempts, out, || {
        client.push_manifest_raw(&reference, image.manifest.clone(), content_type.clone())
    })
    .await
    .map_err(|f| fail(&format!("writing the manifest and the tag {tag}"), f))?;
    let served = retry("reading the tag back", attempts, out, || client.fetch_manifest_digest(&reference, &auth))
        .await
        .map_err(|f| fail("reading the tag back", f))?;
    if served != image.digest {
        return Err(Remote(format!(
            "the registry {host} serves {served} for {tag}, not the pushed {}: another push may have raced this one",
            image.digest
        ))
        .into());
    }
    Ok(Pushed {
        pinned: format!("{}:{tag}@{}", target.name(), image.digest),
        digest: image.digest.clone(),
        bytes_uploaded,
        blobs_uploaded: uploaded,
        blobs_skipped: skipped,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn blob_label(blob: &Descriptor, image: &crate::image::layout::Image) -> String {
    let kind = if blob.digest == image.config.digest { "config" } else { "layer" };
    format!("{kind} {} ({} bytes)", &blob.digest[..19], blob.size)
}

/// The blob as a stream of 64 KiB chunks, counting what the upload has
/// consumed and showing it.
fn progress_stream(
    data: Bytes,
    label: String,
    sent: Arc<AtomicU64>,
    out: Reporter,
) -> impl futures_util::Stream<Item = Result<Bytes, OciDistributionError>> + Send + 'static {
    const CHUNK: usize = 64 * 1024;
    let total = data.len() as u64;
    let chunks: Vec<Bytes> =
        (0..data.len()).step_by(CHUNK).map(|i| data.slice(i..(i + CHUNK).min(data.len()))).collect();
    futures_util::stream::iter(chunks.into_iter().map(move |chunk| {
        let done = sent.fetch_add(chunk.len() as u64, Ordering::Relaxed) + chunk.len() as u64;
        out.progress(&format!("  {label}: {done} / {total} bytes"), done == total);
        Ok(chunk)
    }))
}
