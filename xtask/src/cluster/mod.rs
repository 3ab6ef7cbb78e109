//! Talking to a cluster with kube-rs: one way to connect for every
//! subcommand, and the explanations of what goes wrong.
//!
//! Connecting is kubectl's way by default (KUBECONFIG or ~/.kube/config,
//! `--kubeconfig`, `--context`, the context's namespace), or explicit:
//! `--server` with `--token-file` (or KUBE_TOKEN) and `--ca-cert`. The CA
//! is trusted for this connection only. TLS is verified unless
//! `--insecure-skip-tls-verify`, which warns every time. Tokens are never
//! printed.

pub mod apply;
pub mod apply_cmd;
pub mod delete;
pub mod dry_run;
pub mod evict;
pub mod follow;
mod job_events;
pub mod json_diff;
pub mod logs;
pub mod pods;
pub mod service_account;
pub mod status;
pub mod truststore;
pub mod watch;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::batch::v1::Job;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, ResourceExt};

use crate::manifest::versions::KubeVersion;
use crate::report::Reporter;
use crate::{Error, ErrorKind};

/// What `release` and every cluster command say when no cluster is
/// configured at all (no flags, no KUBECONFIG, no ~/.kube/config); the
/// error's kind is `NoCluster`, and `release` stops before applying on it.
pub const NO_CLUSTER: &str = "no cluster is configured: pass --server URL with --token-file FILE and --ca-cert FILE, \
     or --kubeconfig FILE, or set KUBECONFIG (~/.kube/config does not exist)";

/// A connection to a cluster.
#[derive(Clone)]
pub struct Cluster {
    pub client: Client,
    /// The API server URL, for messages.
    pub server: String,
    /// The namespace of the kubeconfig context (or "default").
    pub default_namespace: String,
    /// Where the cluster's CA came from, for the "not trusted" advice.
    pub ca_source: Option<String>,
    /// The config the client was built from (auth writes kubeconfigs from it).
    pub config: Config,
}

/// The environment variable a bearer token may come from with `--server`.
pub const TOKEN_ENV: &str = "KUBE_TOKEN";

/// How to reach a cluster: a kubeconfig (and a context in it), or an API
/// server URL with a token file; plus a CA to trust for this connection.
/// The flags' words are kept in messages (`--server`, `--ca-cert`), since
/// they are how a user names these.
#[derive(Debug, Clone, Default)]
pub struct Access {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub server: Option<String>,
    pub token_file: Option<PathBuf>,
    pub ca_cert: Option<PathBuf>,
    pub insecure_skip_tls_verify: bool,
}

pub async fn connect(access: &Access, out: &Reporter) -> Result<Cluster> {
    let flags = access;
    let mut ca_source = None;
    let mut config = match &flags.server {
        Some(server) => {
            let uri: http::Uri = server.parse().map_err(|e| {
                Error::usage(format!("--server {server}: not a URL ({e}); expected e.g. https://10.0.0.1:6443"))
            })?;
            if uri.scheme_str() != Some("https") {
                return Err(Error::usage(format!(
                    "--server {server}: the API server is reached over https (with the cluster's CA), e.g. https://10.0.0.1:6443"
                ))
                .into());
            }
            let mut config = Config::new(uri);
            config.default_namespace = "default".into();
            let token = bearer_token(flags.token_file.as_deref(), server)?;
            config.auth_info.token = Some(token.into());
            config
        }
        None => {
            let kubeconfig = match &flags.kubeconfig {
                Some(path) => read_kubeconfig(path, "--kubeconfig")?,
                None => {
                    let env = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty());
                    let default = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".kube/config"));
                    match env {
                        // kubectl's rule: files in the list that do not exist are skipped.
                        Some(list) => {
                            let paths: Vec<PathBuf> = std::env::split_paths(&list).collect();
                            let mut existing = paths.iter().filter(|p| p.exists());
                            let Some(first) = existing.next() else {
                                return Err(Error::new(
                                    ErrorKind::ClusterConfig,
                                    format!(
                                        "KUBECONFIG={}: no such file. Point KUBECONFIG at a kubeconfig, unset it to \
                                         use ~/.kube/config, or pass --server with --token-file and --ca-cert",
                                        list.to_string_lossy()
                                    ),
                                )
                                .into());
                            };
                            let mut merged = read_kubeconfig(first, "KUBECONFIG")?;
                            for path in existing {
                                merged = merged.merge(read_kubeconfig(path, "KUBECONFIG")?).map_err(|e| {
                                    Error::new(
                                        ErrorKind::ClusterConfig,
                                        format!("KUBECONFIG: cannot merge {}: {e}", path.display()),
                                    )
                                })?;
                            }
                            merged
                        }
                        None => match default.filter(|p| p.exists()) {
                            Some(path) => read_kubeconfig(&path, "the kubeconfig")?,
                            None => return Err(Error::new(ErrorKind::NoCluster, NO_CLUSTER).into()),
                        },
                    }
                }
            };
            let options = KubeConfigOptions { context: flags.context.clone(), ..Default::default() };
            if kubeconfig_names_a_ca(&kubeconfig) {
                ca_source = Some("the kubeconfig".to_owned());
            }
            Config::from_custom_kubeconfig(kubeconfig, &options).await.map_err(|e| {
                Error::new(
                    ErrorKind::ClusterConfig,
                    format!(
                        "the kubeconfig{}: {e}",
                        flags.context.as_deref().map_or(String::new(), |c| format!(" context {c}"))
                    ),
                )
            })?
        }
    };
    if let Some(path) = &flags.ca_cert {
        let pem = std::fs::read(path)
            .map_err(|e| Error::usage(format!("--ca-cert {}: cannot read it ({e})", path.display())))?;
        let ders = pem_certificates(&pem);
        if ders.is_empty() {
            return Err(Error::usage(format!("--ca-cert {}: no PEM certificate in it", path.display())).into());
        }
        config.root_cert = Some(ders);
        ca_source = Some(format!("--ca-cert {}", path.display()));
    }
    if flags.insecure_skip_tls_verify {
        out.warn(format!(
            "--insecure-skip-tls-verify: the certificate of {} is not checked; anyone on the way can read the token. \
             Pass --ca-cert with the cluster's CA instead",
            config.cluster_url
        ));
        config.accept_invalid_certs = true;
    }
    config.connect_timeout = Some(Duration::from_secs(10));
    config.write_timeout = Some(Duration::from_secs(30));
    let server = config.cluster_url.to_string().trim_end_matches('/').to_owned();
    let default_namespace = config.default_namespace.clone();
    let client = Client::try_from(config.clone()).context("setting up the Kubernetes client")?;
    Ok(Cluster { client, server, default_namespace, ca_source, config })
}

/// Whether a cluster of the kubeconfig has a CA of its own (data or a file).
pub fn kubeconfig_names_a_ca(kubeconfig: &Kubeconfig) -> bool {
    kubeconfig.clusters.iter().any(|c| {
        c.cluster.as_ref().is_some_and(|c| c.certificate_authority_data.is_some() || c.certificate_authority.is_some())
    })
}

/// One kubeconfig file, read with an error that names where it came from
/// (kube's own quotes the path twice).
fn read_kubeconfig(path: &std::path::Path, source: &str) -> Result<Kubeconfig, Error> {
    let unusable = |why: String| {
        Error::new(
            ErrorKind::ClusterConfig,
            format!(
                "{source} {}: {why}; give a kubeconfig file, or --server with --token-file and --ca-cert",
                path.display()
            ),
        )
    };
    // Opened first so that a missing file reads as such; read_from then
    // resolves the paths inside relative to the file, as kubectl does.
    std::fs::File::open(path).map_err(|e| unusable(format!("cannot read it ({e})")))?;
    Kubeconfig::read_from(path).map_err(|e| unusable(format!("not a usable kubeconfig ({})", crate::error_text(&e))))
}

/// The token for `--server`: from `--token-file`, else KUBE_TOKEN. With
/// `--server` it is the only credential, so none (or an empty file) is
/// refused before anything is sent: it could only earn a 401.
fn bearer_token(file: Option<&std::path::Path>, server: &str) -> Result<String, Error> {
    let Some(path) = file else {
        return std::env::var(TOKEN_ENV).ok().map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).ok_or_else(|| {
            Error::usage(format!(
                "--server {server} with no token: pass --token-file FILE or set {TOKEN_ENV} (or use --kubeconfig)"
            ))
        });
    };
    let token = std::fs::read_to_string(path)
        .map_err(|e| Error::usage(format!("--token-file {}: cannot read it ({e})", path.display())))?
        .trim()
        .to_owned();
    if token.is_empty() {
        return Err(Error::usage(format!(
            "--token-file {}: the file is empty; put the service account's token in it \
             (`cargo xtask auth --print-token`, or the `token` of its token Secret)",
            path.display()
        )));
    }
    Ok(token)
}

/// The DER certificates in a PEM file (what is not a certificate is skipped).
pub fn pem_certificates(pem: &[u8]) -> Vec<Vec<u8>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem).filter_map(Result::ok).map(|c| c.to_vec()).collect()
}

/// What was being done, for the error message.
pub struct Attempt<'a> {
    pub verb: &'a str,
    pub resource: &'a str,
    pub namespace: Option<&'a str>,
}

/// Explains a failed API call: what failed, the API server's words, and
/// the fix. Never includes the token.
pub fn explain(cluster: &Cluster, what: &Attempt<'_>, err: &kube::Error) -> Error {
    let server = &cluster.server;
    let ns = what.namespace.map_or(String::new(), |n| format!(" in namespace {n}"));
    let step = format!("{} {}{ns}", what.verb, what.resource);
    if let kube::Error::Api(status) = err {
        let message = &status.message;
        let fix = match status.code {
            401 => format!(
                "the API server {server} did not accept the credentials (401 Unauthorized): the token is missing, wrong \
                 or expired. Pass --token-file with a valid token (or set KUBE_TOKEN), or use a kubeconfig; \
                 `cargo xtask auth` writes one for a service account"
            ),
            403 => format!(
                "RBAC refused it (403 Forbidden): {message}. A Role{} allowing `{}` on `{}`, bound to this identity, \
                 would allow it; `cargo xtask render` shows such a Role, `cargo xtask apply` applies it",
                what.namespace
                    .map_or(" (a ClusterRole across namespaces)".to_owned(), |n| format!(" in namespace {n}")),
                what.verb,
                what.resource
            ),
            404 => format!("not found (404): {message}"),
            // What a server-side apply of a field the server's version does
            // not have gets (seen on 1.20 for spec.podFailurePolicy).
            500 if message.contains("field not declared in schema") => format!(
                "the API server does not know a field of the object ({message}): it runs an older Kubernetes than \
                 the manifest was written for. `cargo xtask apply` renders for the server's version; for a file, \
                 render it with `cargo xtask render --kube-version X.Y`"
            ),
            _ => format!("the API server answered {} {}: {message}", status.code, status.reason),
        };
        return Error::remote(format!("{step} failed: {fix}"));
    }
    let text = crate::error_text(err);
    let lower = text.to_lowercase();
    let fix = if lower.contains("certificate") || lower.contains("unknownissuer") || lower.contains("invalid peer") {
        let have = cluster.ca_source.as_deref().map_or(String::new(), |s| format!(" (the CA used came from {s})"));
        format!(
            "the certificate of {server} is not trusted{have}: pass --ca-cert FILE with the cluster's CA. The CA is in \
             every service-account token Secret: `kubectl get secret SECRET -n NAMESPACE -o jsonpath='{{.data.ca\\.crt}}' \
             | base64 -d > ca.crt`, and `cargo xtask auth` writes a kubeconfig that carries it. Do not work around \
             it with curl -k or --insecure-skip-tls-verify"
        )
    } else if lower.contains("connection refused") {
        format!("nothing answers at {server} (connection refused): check the address and port (usually 6443)")
    } else if lower.contains("dns error")
        || lower.contains("failed to lookup")
        || lower.contains("name or service not known")
    {
        format!("the host of {server} does not resolve: check --server or the kubeconfig's cluster address")
    } else if lower.contains("timed out") || lower.contains("timeout") {
        format!("{server} did not answer in time: check the network path and the address")
    } else {
        format!("the request to {server} failed")
    };
    Error::remote(format!("{step} failed: {fix} ({})", crate::one_line(&text)))
}

/// The Job, if it is there; refused credentials and the like explained.
pub async fn get_job(cluster: &Cluster, name: &str, namespace: &str) -> Result<Option<Job>> {
    let jobs: kube::Api<Job> = kube::Api::namespaced(cluster.client.clone(), namespace);
    Ok(jobs
        .get_opt(name)
        .await
        .map_err(|e| explain(cluster, &Attempt { verb: "get", resource: "jobs", namespace: Some(namespace) }, &e))?)
}

/// What `watch` and `logs` say of a Job that is not there.
pub fn missing_job(name: &str, namespace: &str) -> Error {
    Error::remote(format!(
        "job.batch/{name} is not in namespace {namespace}: it was never applied (`cargo xtask apply`), or it was \
         deleted; a finished Job is deleted ttlSecondsAfterFinished after it ends (--ttl-seconds-after-finished), \
         its pods with it"
    ))
}

/// The label selector of a Job's pods: the Job's own `spec.selector`,
/// which the API server sets on every version (`controller-uid=UID` before
/// 1.27, `batch.kubernetes.io/controller-uid=UID` from then on; the
/// `batch.kubernetes.io/job-name` label exists only from 1.27).
pub fn job_pods_selector(job: &Job) -> Result<String, Error> {
    let name = job.name_any();
    let selector = job.spec.as_ref().and_then(|s| s.selector.clone()).ok_or_else(|| {
        Error::remote(format!("job.batch/{name} has no spec.selector: the API server sets one on every Job it admits"))
    })?;
    let selector = kube::core::Selector::try_from(selector)
        .map_err(|e| Error::remote(format!("job.batch/{name}: its spec.selector cannot be used to list pods ({e})")))?;
    Ok(selector.to_string())
}

/// The API server's Kubernetes version, for rendering what it can take.
pub async fn server_version(cluster: &Cluster) -> Result<KubeVersion> {
    let info = cluster.client.apiserver_version().await.map_err(|e| {
        explain(cluster, &Attempt { verb: "get", resource: "the server version (/version)", namespace: None }, &e)
    })?;
    KubeVersion::from_info(&info).ok_or_else(|| {
        Error::remote(format!(
            "{} gave a version this tool cannot read (major {:?}, minor {:?}, gitVersion {:?})",
            cluster.server, info.major, info.minor, info.git_version
        ))
        .into()
    })
}
