//! Registry credentials, first match wins: `--username` with
//! `--password-stdin`; REGISTRY_USERNAME / REGISTRY_PASSWORD; the Docker
//! config (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`): its
//! `credHelpers` entry for the host, its `auths` entry, its `credsStore`,
//! the last two through the `docker-credential-<name> get` protocol;
//! otherwise anonymous.
//!
//! Where a credential came from is kept (a 401 names it); the secret itself
//! is never printed: `Secret`'s Debug and Display show nothing of it.

use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, Result};
use base64::Engine;
use serde_json::Value;

use crate::Error;

/// A password or token: shown as `***` by Debug and Display.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flags,
    Environment,
    DockerConfig(PathBuf),
    Helper(String),
    Anonymous,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flags => f.write_str("--username and --password-stdin"),
            Source::Environment => f.write_str("REGISTRY_USERNAME and REGISTRY_PASSWORD"),
            Source::DockerConfig(path) => write!(f, "the auths entry in {}", path.display()),
            Source::Helper(name) => write!(f, "the credential helper docker-credential-{name}"),
            Source::Anonymous => f.write_str("no credentials (anonymous)"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    Basic {
        username: String,
        password: Secret,
    },
    /// An identity token (OAuth2 refresh token) is sent as a bearer token.
    Token(Secret),
    Anonymous,
}

impl Credential {
    pub fn to_auth(&self) -> oci_client::secrets::RegistryAuth {
        use oci_client::secrets::RegistryAuth;
        match self {
            Credential::Basic { username, password } => {
                RegistryAuth::Basic(username.clone(), password.expose().to_owned())
            }
            Credential::Token(t) => RegistryAuth::Bearer(t.expose().to_owned()),
            Credential::Anonymous => RegistryAuth::Anonymous,
        }
    }
}

/// Reads an environment variable (unset and empty are the same).
pub type EnvLookup = Box<dyn Fn(&str) -> Option<String> + Send>;

/// Everything the lookup reads, so that tests can give it their own.
pub struct Inputs {
    pub username: Option<String>,
    /// The password read from stdin, when --password-stdin was given.
    pub password_stdin: Option<String>,
    pub env: EnvLookup,
}

impl Inputs {
    pub fn from_process(username: Option<String>, password_stdin: bool) -> Result<Inputs> {
        let password = if password_stdin {
            let mut s = String::new();
            std::io::stdin().read_line(&mut s).context("reading the registry password from standard input")?;
            let s = s.trim_end_matches(['\n', '\r']).to_owned();
            if s.is_empty() {
                return Err(Error::usage("--password-stdin: standard input held no password").into());
            }
            Some(s)
        } else {
            None
        };
        Ok(Inputs {
            username,
            password_stdin: password,
            env: Box::new(|name| std::env::var(name).ok().filter(|v| !v.is_empty())),
        })
    }
}

/// Finds the credential for `host`, first match wins.
pub fn lookup(host: &str, inputs: &Inputs) -> Result<(Credential, Source)> {
    if let (Some(username), Some(password)) = (&inputs.username, &inputs.password_stdin) {
        return Ok((
            Credential::Basic { username: username.clone(), password: Secret::new(password.clone()) },
            Source::Flags,
        ));
    }
    match ((inputs.env)("REGISTRY_USERNAME"), (inputs.env)("REGISTRY_PASSWORD")) {
        (Some(username), Some(password)) => {
            return Ok((Credential::Basic { username, password: Secret::new(password) }, Source::Environment));
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(
                Error::usage("REGISTRY_USERNAME and REGISTRY_PASSWORD go together: set both, or neither").into()
            );
        }
        (None, None) => {}
    }
    let dir = (inputs.env)("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| (inputs.env)("HOME").map(|h| PathBuf::from(h).join(".docker")));
    if let Some(dir) = dir {
        let path = dir.join("config.json");
        if path.exists() {
            let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            let config: Value = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
            if let Some(found) = from_docker_config(host, &config, &path)? {
                return Ok(found);
            }
        }
    }
    Ok((Credential::Anonymous, Source::Anonymous))
}

/// The keys a Docker config may use for a host. Docker Hub is stored under
/// its historical index URL.
fn keys_for(host: &str) -> Vec<String> {
    let mut keys = vec![
        host.to_owned(),
        format!("https://{host}"),
        format!("http://{host}"),
        format!("https://{host}/v1/"),
        format!("https://{host}/v2/"),
    ];
    if matches!(host, "docker.io" | "index.docker.io" | "registry-1.docker.io") {
        keys.insert(0, "https://index.docker.io/v1/".into());
    }
    keys
}

fn from_docker_config(host: &str, config: &Value, path: &std::path::Path) -> Result<Option<(Credential, Source)>> {
    let keys = keys_for(host);
    if let Some(helper) = keys.iter().find_map(|k| config["credHelpers"][k].as_str()) {
        return helper_get(helper, &keys[0]).map(Some);
    }
    if let Some(entry) =
        keys.iter().find_map(|k| config["auths"].get(k)).filter(|e| !e.as_object().is_none_or(|o| o.is_empty()))
    {
        if let Some(token) = entry["identitytoken"].as_str().filter(|t| !t.is_empty()) {
            return Ok(Some((Credential::Token(Secret::new(token)), Source::DockerConfig(path.into()))));
        }
        if let Some(auth) = entry["auth"].as_str().filter(|a| !a.is_empty()) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .with_context(|| {
                    format!("the auths entry for {host} in {} is not base64 of user:password", path.display())
                })?;
            let (username, password) = decoded
                .split_once(':')
                .with_context(|| format!("the auths entry for {host} in {} is not user:password", path.display()))?;
            return Ok(Some((
                Credential::Basic { username: username.into(), password: Secret::new(password) },
                Source::DockerConfig(path.into()),
            )));
        }
        if let (Some(u), Some(p)) = (entry["username"].as_str(), entry["password"].as_str()) {
            return Ok(Some((
                Credential::Basic { username: u.into(), password: Secret::new(p) },
                Source::DockerConfig(path.into()),
            )));
        }
    }
    if let Some(store) = config["credsStore"].as_str().filter(|s| !s.is_empty()) {
        return helper_get(store, &keys[0]).map(Some);
    }
    Ok(None)
}

/// The credential helper protocol: `docker-credential-NAME get`, the server
/// URL on stdin, `{"Username": ..., "Secret": ...}` on stdout. Blocking, so
/// callers run it off the async runtime.
fn helper_get(name: &str, server: &str) -> Result<(Credential, Source)> {
    let program = format!("docker-credential-{name}");
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {program} (named by the Docker config): is it installed and on PATH?"))?;
    child.stdin.take().unwrap().write_all(server.as_bytes()).context("writing to the credential helper")?;
    let out = child.wait_with_output().context("waiting for the credential helper")?;
    let source = Source::Helper(name.into());
    if !out.status.success() {
        // Helpers print their complaint on stdout or stderr; neither holds a secret on failure.
        let said =
            format!("{} {}", String::from_utf8_lossy(&out.stdout).trim(), String::from_utf8_lossy(&out.stderr).trim());
        // "credentials not found in native keychain": no entry, not an error.
        if said.contains("not found") {
            return Ok((Credential::Anonymous, source));
        }
        anyhow::bail!("{program} get failed ({}): {}", out.status, said.trim());
    }
    let v: Value =
        serde_json::from_slice(&out.stdout).with_context(|| format!("{program} printed something that is not JSON"))?;
    let username = v["Username"].as_str().unwrap_or_default();
    let secret = v["Secret"].as_str().unwrap_or_default();
    Ok(match username {
        "<token>" => (Credential::Token(Secret::new(secret)), source),
        "" if secret.is_empty() => (Credential::Anonymous, source),
        _ => (Credential::Basic { username: username.into(), password: Secret::new(secret) }, source),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(env: &'static [(&'static str, &'static str)]) -> Inputs {
        Inputs {
            username: None,
            password_stdin: None,
            env: Box::new(move |n| env.iter().find(|(k, _)| *k == n).map(|(_, v)| (*v).to_owned())),
        }
    }

    #[test]
    fn flags_then_environment_then_anonymous() {
        let mut i = inputs(&[
            ("REGISTRY_USERNAME", "env-user"),
            ("REGISTRY_PASSWORD", "env-pass"),
            ("DOCKER_CONFIG", "/nonexistent"),
        ]);
        assert_eq!(lookup("r.example", &i).unwrap().1, Source::Environment);
        i.username = Some("flag-user".into());
        i.password_stdin = Some("flag-pass".into());
        let (cred, source) = lookup("r.example", &i).unwrap();
        assert_eq!(source, Source::Flags);
        assert_eq!(cred, Credential::Basic { username: "flag-user".into(), password: Secret::new("flag-pass") });
        let none = inputs(&[("DOCKER_CONFIG", "/nonexistent")]);
        assert_eq!(lookup("r.example", &none).unwrap(), (Credential::Anonymous, Source::Anonymous));
        let half = inputs(&[("REGISTRY_USERNAME", "u")]);
        assert!(lookup("r.example", &half).unwrap_err().to_string().contains("go together"));
    }

    #[test]
    fn docker_config_auths_and_the_docker_hub_key() {
        let path = std::path::Path::new("/x/config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret:with:colons");
        let config: Value = serde_json::json!({ "auths": {
            "https://index.docker.io/v1/": { "auth": auth },
            "registry.example:5000": { "username": "bob", "password": "pw" },
        }});
        let (cred, source) = from_docker_config("docker.io", &config, path).unwrap().unwrap();
        assert_eq!(cred, Credential::Basic { username: "alice".into(), password: Secret::new("s3cret:with:colons") });
        assert_eq!(source, Source::DockerConfig(path.into()));
        let (cred, _) = from_docker_config("registry.example:5000", &config, path).unwrap().unwrap();
        assert_eq!(cred, Credential::Basic { username: "bob".into(), password: Secret::new("pw") });
        assert_eq!(from_docker_config("other.example", &config, path).unwrap(), None);
    }

    #[test]
    fn secrets_never_print() {
        let c = Credential::Basic { username: "u".into(), password: Secret::new("hunter2") };
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(Secret::new("hunter2").to_string(), "***");
    }
}
