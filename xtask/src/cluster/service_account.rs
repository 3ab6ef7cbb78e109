//! `cargo xtask auth`: the service account chores. Apply authorization.yaml
//! (ServiceAccount, its token Secret, the Role and binding), wait until the
//! token controller has filled the Secret, and write a kubeconfig for the
//! account (the server, the cluster's ca.crt, the token; mode 0600), ready
//! for `cargo xtask pods --kubeconfig FILE`: no `kubectl describe secret`,
//! no `curl -k`, no CA imported into a trust store.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use base64::Engine;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::runtime::wait::await_condition;
use serde::Serialize;
use serde_json::json;

use super::Cluster;
use super::apply::{self, Applied};
use crate::Error;
use crate::flags::ServiceAccountFlags;
use crate::manifest::{self, params};
use crate::report::Reporter;

pub fn run(flags: &ServiceAccountFlags, out: &Reporter) -> Result<()> {
    let (rbac, warnings) = params::rbac_params(&flags.rbac, &flags.namespace)?;
    for w in &warnings {
        out.warn(w);
    }
    let timeout = flags.timeout;
    let path = flags.write_kubeconfig.clone().unwrap_or_else(|| default_path(&rbac.service_account));
    crate::runtime()?.block_on(async {
        let cluster = super::connect(&super::Access::from(&flags.cluster), out).await?;
        let applied = apply::apply_all(&cluster, manifest::rbac_objects(&rbac), out).await?;
        out.status(format!("waiting for the token controller to fill secret/{}", rbac.token_secret));
        let secret = wait_for_token(&cluster, &rbac.namespace, &rbac.token_secret, timeout).await?;
        let data = secret.data.unwrap_or_default();
        let token = String::from_utf8(data["token"].0.clone()).context("the token in the Secret is not text")?;
        let ca = &data["ca.crt"].0;
        write_kubeconfig(&path, &cluster, ca, &token, &rbac.service_account, &rbac.namespace)?;
        let usage = format!("cargo xtask pods --kubeconfig {} -n {}", path.display(), rbac.namespace);
        out.result(&ServiceAccountAccess {
            kubeconfig: path,
            service_account: rbac.service_account,
            namespace: rbac.namespace,
            secret: rbac.token_secret,
            usage,
            applied,
            token: flags.print_token.then_some(token),
        });
        Ok(())
    })
}

/// What `auth` made: the objects, and a kubeconfig for the service account.
#[derive(Serialize)]
struct ServiceAccountAccess {
    kubeconfig: PathBuf,
    service_account: String,
    namespace: String,
    secret: String,
    usage: String,
    applied: Applied,
    /// Only with `--print-token`: it is a credential.
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

impl std::fmt::Display for ServiceAccountAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}\nwrote {} (mode 0600): service account {}/{} with the cluster's CA from secret/{}\nuse it: {}",
            self.applied,
            self.kubeconfig.display(),
            self.namespace,
            self.service_account,
            self.secret,
            self.usage
        )?;
        if let Some(token) = &self.token {
            write!(f, "\ntoken: {token}")?;
        }
        Ok(())
    }
}

/// Waits (with a watch) until the Secret holds a token and the CA.
async fn wait_for_token(cluster: &Cluster, namespace: &str, name: &str, timeout: Duration) -> Result<Secret> {
    let api: Api<Secret> = Api::namespaced(cluster.client.clone(), namespace);
    let filled = |s: Option<&Secret>| {
        s.and_then(|s| s.data.as_ref()).is_some_and(|d| d.contains_key("token") && d.contains_key("ca.crt"))
    };
    let secret = tokio::time::timeout(timeout, await_condition(api, name, filled))
        .await
        .map_err(|_| {
            Error::remote(format!(
                "secret/{name} in {namespace} has no token after {}: is the token controller running (kube-controller-manager), \
                 and does the Secret name the service account in its kubernetes.io/service-account.name annotation?",
                humantime::format_duration(timeout)
            ))
        })?
        .context("watching the token Secret")?;
    secret.ok_or_else(|| {
        Error::remote(format!("secret/{name} in {namespace} was deleted while waiting for its token")).into()
    })
}

/// A kubeconfig with one cluster, one user (the token) and one context.
pub fn kubeconfig_yaml(server: &str, ca: &[u8], token: &str, account: &str, namespace: &str) -> Result<String> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(ca);
    let context = format!("{account}@job-test");
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{ "name": "job-test", "cluster": { "server": server, "certificate-authority-data": b64 } }],
        "users": [{ "name": account, "user": { "token": token } }],
        "contexts": [{ "name": context, "context": { "cluster": "job-test", "user": account, "namespace": namespace } }],
        "current-context": context,
    });
    Ok(serde_saphyr::to_string(&config)?)
}

/// Writes the kubeconfig readable by its owner only: it holds a token.
fn write_kubeconfig(
    path: &Path,
    cluster: &Cluster,
    ca: &[u8],
    token: &str,
    account: &str,
    namespace: &str,
) -> Result<()> {
    let yaml = kubeconfig_yaml(&cluster.server, ca, token, account, namespace)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    crate::write_private(path, yaml.as_bytes())?;
    Ok(())
}

/// Where `auth` writes by default.
pub fn default_path(account: &str) -> PathBuf {
    crate::target_dir().join(format!("{account}.kubeconfig"))
}
