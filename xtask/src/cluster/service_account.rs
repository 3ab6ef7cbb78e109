//! `cargo xtask auth`: the service account chores. Apply authorization.yaml
//! (ServiceAccount, its token Secret, the Role and binding), wait until the
//! token controller has filled the Secret, and write a kubeconfig for the
//! account (the server, the cluster's ca.crt, the token; mode 0600), ready
//! for `cargo xtask pods --kubeconfig FILE`: no `kubectl describe secret`,
//! no `curl -k`. A Java client gets the same CA as a PKCS#12 truststore
//! (`--java-truststore FILE`) and the two JVM flags that use it, instead of
//! a page of keytool commands.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use base64::Engine;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::runtime::wait::await_condition;
use serde::Serialize;
use serde_json::json;

use super::apply::{self, Applied};
use super::{Cluster, truststore};
use crate::Error;
use crate::flags::ServiceAccountFlags;
use crate::manifest::{self, params};
use crate::push::credentials::Secret as Password;
use crate::report::Reporter;

pub fn run(flags: &ServiceAccountFlags, out: &Reporter) -> Result<()> {
    let (rbac, warnings) = params::rbac_params(&flags.rbac, &flags.namespace)?;
    for w in &warnings {
        out.warn(w);
    }
    let timeout = flags.timeout;
    let path = flags.write_kubeconfig.clone().unwrap_or_else(|| default_path(&rbac.service_account));
    // Checked before anything is applied or written.
    let java = match &flags.java_truststore {
        Some(file) => {
            check_truststore_path(file, &path)?;
            Some(TruststoreRequest::new(file.clone(), flags.java_truststore_password_stdin)?)
        }
        None => None,
    };
    crate::runtime()?.block_on(async {
        let cluster = super::connect(&super::Access::from(&flags.cluster), out).await?;
        let applied = apply::apply_all(&cluster, manifest::rbac_objects(&rbac), out).await?;
        out.status(format!("waiting for the token controller to fill secret/{}", rbac.token_secret));
        let secret = wait_for_token(&cluster, &rbac.namespace, &rbac.token_secret, timeout).await?;
        let data = secret.data.unwrap_or_default();
        let token = String::from_utf8(data["token"].0.clone()).context("the token in the Secret is not text")?;
        let ca = &data["ca.crt"].0;
        let java_truststore = java.map(|j| j.write(ca, &rbac.token_secret)).transpose()?;
        write_kubeconfig(&path, &cluster, ca, &token, &rbac.service_account, &rbac.namespace)?;
        let usage = format!("cargo xtask pods --kubeconfig {} -n {}", path.display(), rbac.namespace);
        out.result(&ServiceAccountAccess {
            kubeconfig: path,
            service_account: rbac.service_account,
            namespace: rbac.namespace,
            secret: rbac.token_secret,
            usage,
            applied,
            java_truststore,
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
    /// Only with `--java-truststore`.
    #[serde(skip_serializing_if = "Option::is_none")]
    java_truststore: Option<JavaTruststore>,
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
        if let Some(java) = &self.java_truststore {
            write!(f, "\n{java}")?;
        }
        if let Some(token) = &self.token {
            write!(f, "\ntoken: {token}")?;
        }
        Ok(())
    }
}

/// The Java truststore `auth` wrote.
#[derive(Serialize)]
struct JavaTruststore {
    path: PathBuf,
    /// Where its certificates came from.
    secret: String,
    /// One trusted certificate entry per certificate in ca.crt.
    aliases: Vec<String>,
    bytes: usize,
    /// What to pass to `java`: the JVM's default SSLContext then trusts the
    /// cluster's CA (and only it).
    jvm_flags: Vec<String>,
    /// The generated password, shown this once; absent when it came from
    /// standard input.
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<String>,
}

impl std::fmt::Display for JavaTruststore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "wrote {} (PKCS#12, mode 0600, {} bytes): the cluster's CA from secret/{} as trusted certificate {}\n\
             java flags: {}",
            self.path.display(),
            self.bytes,
            self.secret,
            self.aliases.join(", "),
            self.jvm_flags.join(" ")
        )?;
        if let Some(password) = &self.password {
            write!(f, "\ntruststore password (generated, printed only this once): {password}")?;
        }
        write!(
            f,
            "\n(the certificates are not encrypted, a CA is public: the two flags are enough; with \
             -Djavax.net.ssl.trustStorePassword=... the JVM also checks the file's integrity)"
        )
    }
}

/// `--java-truststore FILE` and its password, read before anything is
/// applied.
struct TruststoreRequest {
    path: PathBuf,
    password: Password,
    generated: bool,
}

impl TruststoreRequest {
    fn new(path: PathBuf, password_stdin: bool) -> Result<TruststoreRequest> {
        if !password_stdin {
            return Ok(TruststoreRequest {
                path,
                password: Password::new(truststore::generate_password()?),
                generated: true,
            });
        }
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).context("reading the truststore password from standard input")?;
        let password = line.trim_end_matches(['\n', '\r']);
        if password.is_empty() {
            return Err(Error::usage(
                "--java-truststore-password-stdin: standard input held no password; pipe one in, or leave the flag \
                 out to have one generated",
            )
            .into());
        }
        Ok(TruststoreRequest { path, password: Password::new(password), generated: false })
    }

    /// Writes the truststore of the certificates in `ca` (PEM, from the
    /// token Secret `secret`).
    fn write(self, ca: &[u8], secret: &str) -> Result<JavaTruststore> {
        let certificates = super::pem_certificates(ca);
        if certificates.is_empty() {
            return Err(Error::remote(format!("secret/{secret} has no PEM certificate in its ca.crt")).into());
        }
        let bytes = truststore::pkcs12(&certificates, self.password.expose())?;
        crate::write_private(&self.path, &bytes)?;
        Ok(JavaTruststore {
            jvm_flags: truststore::jvm_flags(&self.path),
            path: self.path,
            secret: secret.to_owned(),
            aliases: truststore::aliases(certificates.len()),
            bytes: bytes.len(),
            password: self.generated.then(|| self.password.expose().to_owned()),
        })
    }
}

/// A truststore path `auth` can write: in a folder that exists (it is not
/// made, unlike the kubeconfig's: a mistyped path is more likely than a
/// new folder), not a folder itself, not the kubeconfig.
fn check_truststore_path(file: &Path, kubeconfig: &Path) -> Result<(), Error> {
    let value = file.display();
    if file.is_dir() {
        return Err(Error::usage(format!(
            "--java-truststore {value}: that is a folder; give a file in it, e.g. --java-truststore {}",
            file.join("cluster-truststore.p12").display()
        )));
    }
    let dir = file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return Err(Error::usage(format!(
            "--java-truststore {value}: the folder {} does not exist; create it (mkdir -p {}) or give a path in \
             an existing folder",
            dir.display(),
            dir.display()
        )));
    }
    if std::path::absolute(file).ok() == std::path::absolute(kubeconfig).ok() {
        return Err(Error::usage(format!(
            "--java-truststore {value}: that is where the kubeconfig goes; give the truststore another name"
        )));
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_truststore_path_in_a_missing_folder_is_refused_with_the_fix() {
        let dir = std::env::temp_dir().join(format!("job-test-truststore-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let kubeconfig = dir.join("sa.kubeconfig");
        let missing = dir.join("no-such-folder/ts.p12");
        let e = check_truststore_path(&missing, &kubeconfig).unwrap_err();
        assert_eq!(e.kind, crate::ErrorKind::Usage);
        let folder = dir.join("no-such-folder");
        assert!(e.message.starts_with(&format!("--java-truststore {}: ", missing.display())), "{e}");
        assert!(e.message.contains(&format!("mkdir -p {}", folder.display())), "{e}");
        assert!(!folder.exists());

        let e = check_truststore_path(&dir, &kubeconfig).unwrap_err();
        assert!(e.message.contains("that is a folder"), "{e}");
        let e = check_truststore_path(&kubeconfig, &kubeconfig).unwrap_err();
        assert!(e.message.contains("where the kubeconfig goes"), "{e}");
        check_truststore_path(&dir.join("ts.p12"), &kubeconfig).unwrap();
        check_truststore_path(Path::new("ts.p12"), &kubeconfig).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_password_is_shown_only_when_generated() {
        let shown = JavaTruststore {
            path: "/t/ts.p12".into(),
            secret: "s".into(),
            aliases: vec![truststore::ALIAS.into()],
            bytes: 640,
            jvm_flags: truststore::jvm_flags(Path::new("/t/ts.p12")),
            password: Some("Gen3rated".into()),
        };
        let text = shown.to_string();
        assert!(
            text.contains("java flags: -Djavax.net.ssl.trustStore=/t/ts.p12 -Djavax.net.ssl.trustStoreType=PKCS12")
        );
        assert!(text.contains("truststore password (generated, printed only this once): Gen3rated"), "{text}");
        assert_eq!(serde_json::to_value(&shown).unwrap()["password"], "Gen3rated");
        let hidden = JavaTruststore { password: None, ..shown };
        assert!(!hidden.to_string().contains("password ("), "{hidden}");
        assert!(serde_json::to_value(&hidden).unwrap().get("password").is_none());
    }
}
