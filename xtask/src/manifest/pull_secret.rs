//! The pull secret `--create-pull-secret` makes: a
//! `kubernetes.io/dockerconfigjson` Secret in the Job's namespace holding
//! the registry credential `push` uses, named in the Job's
//! `imagePullSecrets`, so that a node can pull from a private registry
//! ("Pull an Image from a Private Registry" in the Kubernetes documentation:
//! the Secret's one key, `.dockerconfigjson`, is a Docker config with an
//! `auths` entry for the registry).
//!
//! Its data is the credential itself, so it is never printed: `render`
//! leaves the data out of standard output (`without_data`), a file that
//! holds it is written with mode 0600 (`crate::write_private`), and `apply`
//! names the Secret only. A credential that a kubelet cannot pull with
//! (none, an empty one, an identity token) is refused before anything is
//! done.

use base64::Engine;
use k8s_openapi::api::core::v1::Secret;

use super::Object;
use super::objects;
use super::params::{JobParams, default_pull_secret_name};
use crate::Error;
use crate::push::credentials::{self, Credential, Inputs, Source};
use crate::push::target::registry_host;
use crate::report::Reporter;

pub use super::objects::{PULL_SECRET_KEY as KEY, PULL_SECRET_TYPE as TYPE};

/// The credential for the Job's image's registry, found as `push` finds it.
/// Blocking: a credential helper may run.
pub fn lookup(job: &JobParams, inputs: &Inputs) -> anyhow::Result<(Credential, Source)> {
    credentials::lookup(&registry_host(&job.image), inputs)
}

/// The key of the registry in the Docker config: its host, except Docker
/// Hub, whose historical key kubelets and `kubectl create secret
/// docker-registry` use.
fn server_key(host: &str) -> String {
    match host {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => "https://index.docker.io/v1/".into(),
        _ => host.into(),
    }
}

/// The `.dockerconfigjson` for a user name and password: the `auths` entry
/// a kubelet reads, as `kubectl create secret docker-registry` writes it.
fn docker_config(host: &str, username: &str, password: &str) -> Vec<u8> {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    let config = serde_json::json!({ "auths": { server_key(host): {
        "username": username, "password": password, "auth": auth,
    } } });
    config.to_string().into_bytes()
}

/// The user name and password a kubelet can pull with, or why there is none.
fn usable<'c>(host: &str, credential: &'c Credential, source: &Source) -> Result<(&'c str, &'c str), Error> {
    let fix = format!(
        "give --username with --password-stdin, set REGISTRY_USERNAME and REGISTRY_PASSWORD, or `docker login {host}`"
    );
    match credential {
        Credential::Basic { username, password } if !username.is_empty() && !password.expose().is_empty() => {
            Ok((username, password.expose()))
        }
        Credential::Basic { .. } => Err(Error::usage(format!(
            "--create-pull-secret: the credential for {host} from {source} has an empty user name or password: {fix}"
        ))),
        Credential::Token(_) => Err(Error::usage(format!(
            "--create-pull-secret: {source} holds an identity token for {host}, which a kubelet cannot pull with \
             (a pull secret holds a user name and password): {fix}"
        ))),
        Credential::Anonymous => {
            let looked = match source {
                Source::Helper(helper) => format!("docker-credential-{helper} has none"),
                _ => "not in --username and --password-stdin, REGISTRY_USERNAME and REGISTRY_PASSWORD, or the Docker \
                      config"
                    .into(),
            };
            Err(Error::usage(format!(
                "--create-pull-secret: no credential for {host} was found ({looked}), and a pull secret without \
                 one would pull anonymously: {fix}"
            )))
        }
    }
}

/// The Secret for the Job's image's registry, from the credential; the
/// name is the Job's `imagePullSecrets` entry (`params::rendering` names it).
pub fn secret(job: &JobParams, credential: &Credential, source: &Source) -> Result<Secret, Error> {
    let host = registry_host(&job.image);
    let (username, password) = usable(&host, credential, source)?;
    let name = job.image_pull_secret.clone().unwrap_or_else(|| default_pull_secret_name(&job.name));
    Ok(objects::pull_secret(job, &name, docker_config(&host, username, password)))
}

/// What `apply`, `render` and `release` do with `--create-pull-secret`:
/// the Secret, put in before the NetworkPolicy and the Job; a line on
/// stderr says where the credential came from (never what it is).
pub fn add(
    objects: &mut Vec<Object>,
    job: &JobParams,
    credential: &Credential,
    source: &Source,
    out: &Reporter,
) -> Result<(), Error> {
    let secret = secret(job, credential, source)?;
    let name = secret.metadata.name.clone().unwrap_or_default();
    out.status(format!("secret/{name}: a pull secret for {} from {source}", registry_host(&job.image)));
    if let Source::Helper(helper) = source {
        out.warn(format!(
            "secret/{name}: the credential from docker-credential-{helper} may be short-lived (ECR's last 12 hours): \
             apply again with --create-pull-secret when pulls start failing with ErrImagePull"
        ));
    }
    let at = objects.iter().position(|o| matches!(o, Object::NetworkPolicy(_) | Object::Job(_)));
    objects.insert(at.unwrap_or(objects.len()), Object::Secret(secret));
    Ok(())
}

/// `apply` and `render` with `--create-pull-secret`: the Secret from the
/// credential their flags, the environment or the Docker config give.
pub fn add_found(objects: &mut Vec<Object>, job: &JobParams, inputs: &Inputs, out: &Reporter) -> anyhow::Result<()> {
    let (credential, source) = lookup(job, inputs)?;
    Ok(add(objects, job, &credential, &source, out)?)
}

/// Whether a pull secret with its data is among the objects: a file that
/// holds them is written with mode 0600.
pub fn holds_credential(objects: &[Object]) -> bool {
    objects.iter().any(|o| matches!(o, Object::Secret(s) if is_pull_secret(s) && has_data(s)))
}

pub fn is_pull_secret(s: &Secret) -> bool {
    s.type_.as_deref() == Some(TYPE)
}

fn has_data(s: &Secret) -> bool {
    s.data.as_ref().is_some_and(|d| d.contains_key(KEY)) || s.string_data.as_ref().is_some_and(|d| d.contains_key(KEY))
}

/// The objects as standard output shows them: pull secrets without their
/// data. Returns the names of the secrets whose data was left out.
pub fn without_data(objects: &mut [Object]) -> Vec<String> {
    let mut left_out = Vec::new();
    for object in objects {
        if let Object::Secret(s) = object
            && is_pull_secret(s)
            && has_data(s)
        {
            s.data = None;
            s.string_data = None;
            left_out.push(s.metadata.name.clone().unwrap_or_default());
        }
    }
    left_out
}

/// A pull secret without its data (as `render` prints it to standard
/// output) is refused before anything is applied: the API server would
/// refuse it half-way, and the Job's pods could not pull.
pub fn refuse_without_data(objects: &[Object], file: &std::path::Path) -> Result<(), Error> {
    for object in objects {
        if let Object::Secret(s) = object
            && is_pull_secret(s)
            && !has_data(s)
        {
            return Err(Error::usage(format!(
                "-f {}: secret/{} has no {KEY} (`render` leaves the credential out of standard output): render \
                 with --create-pull-secret --out FILE, which writes it with mode 0600, or apply without -f and \
                 with --create-pull-secret",
                file.display(),
                s.metadata.name.as_deref().unwrap_or_default()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::params::UnpinnedImage;
    use crate::push::credentials::Secret as Password;

    fn render_flags(image: &str) -> crate::flags::RenderFlags {
        use clap::Parser;
        match crate::flags::Xtask::parse_from(["cargo xtask", "render", "--image", image]).command {
            crate::flags::Command::Render(flags) => flags,
            _ => unreachable!(),
        }
    }

    fn job(image: &str) -> JobParams {
        let flags = render_flags(image);
        let rendering = super::super::params::rendering(&flags.job, &flags.rbac, true, UnpinnedImage::Quiet);
        rendering.unwrap().0
    }

    fn data_of(secret: &Secret) -> Option<&[u8]> {
        secret.data.as_ref()?.get(KEY).map(|b| b.0.as_slice())
    }

    fn basic(u: &str, p: &str) -> Credential {
        Credential::Basic { username: u.into(), password: Password::new(p) }
    }

    #[test]
    fn the_secret_holds_an_auths_entry_for_the_registry() {
        let j = job("registry.example:5000/team/job-test:1.0");
        let s = secret(&j, &basic("alice", "s3cret:x"), &Source::Environment).unwrap();
        assert_eq!(s.type_.as_deref(), Some(TYPE));
        assert_eq!(s.metadata.name.as_deref(), Some("job-test-pull-secret"));
        assert_eq!(s.metadata.namespace.as_deref(), Some("job-test"));
        let config: serde_json::Value = serde_json::from_slice(data_of(&s).unwrap()).unwrap();
        let entry = &config["auths"]["registry.example:5000"];
        assert_eq!(entry["username"], "alice");
        assert_eq!(entry["password"], "s3cret:x");
        let auth = base64::engine::general_purpose::STANDARD.decode(entry["auth"].as_str().unwrap()).unwrap();
        assert_eq!(auth, b"alice:s3cret:x");
        // Docker Hub under the key kubelets look up.
        let hub = secret(&job("team/job-test:1.0"), &basic("a", "b"), &Source::Flags).unwrap();
        let config: serde_json::Value = serde_json::from_slice(data_of(&hub).unwrap()).unwrap();
        assert!(config["auths"]["https://index.docker.io/v1/"].is_object(), "{config}");
    }

    #[test]
    fn no_credential_an_empty_one_or_a_token_is_refused() {
        let j = job("registry.example/job-test:1.0");
        for (credential, source, says) in [
            (Credential::Anonymous, Source::Anonymous, "no credential for registry.example was found"),
            (basic("alice", ""), Source::Environment, "has an empty user name or password"),
            (basic("", "pw"), Source::Flags, "has an empty user name or password"),
            (Credential::Token(Password::new("tok")), Source::Helper("x".into()), "identity token"),
        ] {
            let e = secret(&j, &credential, &source).unwrap_err();
            assert_eq!(e.kind, crate::ErrorKind::Usage, "{e}");
            assert!(e.message.contains(says) && e.message.contains("--password-stdin"), "{e}");
        }
    }

    #[test]
    fn standard_output_gets_the_secret_without_its_data() {
        let j = job("registry.example/job-test:1.0");
        let mut objects = super::super::all_objects(&j, &default_auth());
        add(&mut objects, &j, &basic("alice", "pw"), &Source::Flags, &Reporter::new(crate::choices::Output::Text))
            .unwrap();
        let names: Vec<String> = objects.iter().map(Object::describe).collect();
        let secret = names.iter().position(|n| n == "Secret/job-test-pull-secret").unwrap();
        assert_eq!(names[secret + 1], "NetworkPolicy/job-test", "{names:?}");
        assert!(holds_credential(&objects));
        assert_eq!(without_data(&mut objects), ["job-test-pull-secret"]);
        assert!(!holds_credential(&objects));
        let e = refuse_without_data(&objects, std::path::Path::new("x.yaml")).unwrap_err();
        assert!(e.message.contains("secret/job-test-pull-secret has no .dockerconfigjson"), "{e}");
        // The service account's token Secret is not a pull secret.
        assert!(matches!(&objects[2], Object::Secret(s) if s.data.is_none()));
    }

    fn default_auth() -> super::super::params::RbacParams {
        super::super::params::rbac_params(&render_flags("x:1").rbac, "job-test").unwrap().0
    }
}
