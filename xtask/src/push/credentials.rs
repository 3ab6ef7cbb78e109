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
            match from_docker_config(host, &text, &path)? {
                Some(Stored::Credential(credential, source)) => return Ok((credential, source)),
                Some(Stored::Helper { name, server }) => return helper_get(&name, &server),
                None => {}
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

/// What a Docker config holds for a host: the credential itself, or the
/// helper to ask for it (run by the caller: reading the file runs nothing).
#[derive(Debug, PartialEq, Eq)]
pub enum Stored {
    Credential(Credential, Source),
    Helper { name: String, server: String },
}

/// Reads a Docker config's text (`path` only names it in messages). A
/// message never quotes the file: its entries hold passwords.
pub fn from_docker_config(host: &str, text: &str, path: &std::path::Path) -> Result<Option<Stored>> {
    let config: Value = serde_json::from_str(text).with_context(|| format!("parsing {}", path.display()))?;
    let keys = keys_for(host);
    let helper = |name: &str| Ok(Some(Stored::Helper { name: name.to_owned(), server: keys[0].clone() }));
    if let Some(name) = keys.iter().find_map(|k| config["credHelpers"][k].as_str()) {
        return helper(name);
    }
    if let Some(entry) =
        keys.iter().find_map(|k| config["auths"].get(k)).filter(|e| !e.as_object().is_none_or(|o| o.is_empty()))
    {
        let found = |credential| Ok(Some(Stored::Credential(credential, Source::DockerConfig(path.into()))));
        if let Some(token) = entry["identitytoken"].as_str().filter(|t| !t.is_empty()) {
            return found(Credential::Token(Secret::new(token)));
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
            return found(Credential::Basic { username: username.into(), password: Secret::new(password) });
        }
        if let (Some(u), Some(p)) = (entry["username"].as_str(), entry["password"].as_str()) {
            return found(Credential::Basic { username: u.into(), password: Secret::new(p) });
        }
    }
    if let Some(store) = config["credsStore"].as_str().filter(|s| !s.is_empty()) {
        return helper(store);
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
    from_helper_output(name, &out.stdout)
}

/// What `docker-credential-NAME get` printed on success. A message never
/// quotes it: it holds the secret.
pub fn from_helper_output(name: &str, stdout: &[u8]) -> Result<(Credential, Source)> {
    let source = Source::Helper(name.into());
    let v: Value = serde_json::from_slice(stdout)
        .with_context(|| format!("docker-credential-{name} printed something that is not JSON"))?;
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
        let config = serde_json::json!({
            "auths": {
                "https://index.docker.io/v1/": { "auth": auth },
                "registry.example:5000": { "username": "bob", "password": "pw" },
            },
            "credHelpers": { "gcr.example": "gcloud" },
        })
        .to_string();
        let stored = |host| from_docker_config(host, &config, path).unwrap();
        let alice = Credential::Basic { username: "alice".into(), password: Secret::new("s3cret:with:colons") };
        assert_eq!(stored("docker.io"), Some(Stored::Credential(alice, Source::DockerConfig(path.into()))));
        let bob = Credential::Basic { username: "bob".into(), password: Secret::new("pw") };
        assert_eq!(stored("registry.example:5000"), Some(Stored::Credential(bob, Source::DockerConfig(path.into()))));
        assert_eq!(stored("gcr.example"), Some(Stored::Helper { name: "gcloud".into(), server: "gcr.example".into() }));
        assert_eq!(stored("other.example"), None);
        let e = from_docker_config("docker.io", "{\"auths\": {\"docker.io\": {\"auth\": \"hunter2!\"", path);
        assert!(!format!("{:#}", e.unwrap_err()).contains("hunter2"));
    }

    #[test]
    fn a_helper_prints_a_token_a_password_or_nothing() {
        let read = |out: &str| from_helper_output("pass", out.as_bytes()).map(|(c, _)| c);
        assert_eq!(read(r#"{"Username": "<token>", "Secret": "t0k"}"#).unwrap(), Credential::Token(Secret::new("t0k")));
        let basic = Credential::Basic { username: "u".into(), password: Secret::new("p") };
        assert_eq!(read(r#"{"Username": "u", "Secret": "p"}"#).unwrap(), basic);
        assert_eq!(read(r#"{"Username": "", "Secret": ""}"#).unwrap(), Credential::Anonymous);
        let e = read(r#"{"Username": "u", "Secret": "hunter2""#).unwrap_err();
        assert_eq!(e.to_string(), "docker-credential-pass printed something that is not JSON");
        assert!(!format!("{e:#}").contains("hunter2"));
    }

    #[test]
    fn secrets_never_print() {
        let c = Credential::Basic { username: "u".into(), password: Secret::new("hunter2") };
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(Secret::new("hunter2").to_string(), "***");
    }
}
