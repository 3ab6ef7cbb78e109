//! Where a push goes: the target reference (`--image`, or the embedded
//! local registry), its registry host, and the CA that registry is trusted
//! with.

use std::net::IpAddr;

use anyhow::Result;

use crate::Error;
use crate::image_ref::ImageRef;
use crate::report::Reporter;

/// The push target: `--image`, or with none the embedded default, a local
/// registry, started when nothing answers there.
pub fn resolve_target(image: Option<&ImageRef>, out: &Reporter) -> Result<ImageRef> {
    let target = target_reference(image)?;
    if image.is_none() {
        crate::local_registry::ensure_running(out)?;
    }
    Ok(target)
}

/// The reference to push to: it must name a registry, and for Alibaba Cloud
/// ACR personal edition exactly one namespace level.
pub fn target_reference(image: Option<&ImageRef>) -> Result<ImageRef> {
    let reference = match image {
        Some(image) => image.clone(),
        None => crate::image::default_reference()?,
    };
    let text = reference.to_string();
    let Some(registry) = &reference.registry else {
        return Err(Error::usage(format!(
            "--image {text} names no registry: give the registry host, e.g. localhost:5000/job-test:0.1.0, \
             docker.io/USER/job-test:0.1.0 or crpi-xxxx.cn-shenzhen.personal.cr.aliyuncs.com/NAMESPACE/job-test:1.0.0"
        ))
        .into());
    };
    if registry.ends_with(".aliyuncs.com") && reference.repository.split('/').count() != 2 {
        return Err(Error::usage(format!(
            "--image {text}: Alibaba Cloud ACR personal edition takes exactly NAMESPACE/REPOSITORY after the host \
             (it answers \"denied\" to {} levels); use e.g. {registry}/jerry-learn/job-test:1.0.0",
            reference.repository.split('/').count()
        ))
        .into());
    }
    Ok(reference)
}

/// The reference oci-client requests with, built from its parts as
/// oci-client's own parser would normalise them (Docker Hub's host and its
/// `library/` namespace), without that parser: its regular expression is
/// compiled on first use, which cost a tenth of a no-op push.
pub fn oci_reference(target: &ImageRef, tag: &str) -> oci_client::Reference {
    let registry = if target.on_docker_hub() { "docker.io".to_owned() } else { registry_host(target) };
    oci_client::Reference::with_tag(registry, target.registry_repository(), tag.to_owned())
}

pub fn registry_host(r: &ImageRef) -> String {
    r.registry.clone().unwrap_or_else(|| "docker.io".into())
}

pub fn is_loopback(host: &str) -> bool {
    let name =
        host.rsplit_once(':').map_or(host, |(h, port)| if port.chars().all(|c| c.is_ascii_digit()) { h } else { host });
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name == "localhost" || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The registry CA from --registry-ca-cert.
pub fn read_ca(file: Option<&std::path::Path>) -> Result<Option<Vec<u8>>> {
    match file {
        Some(path) => Ok(Some(std::fs::read(path).map_err(|e| {
            Error::usage(format!(
                "--registry-ca-cert {}: cannot read it ({e}); give a PEM file with the registry's CA",
                path.display()
            ))
        })?)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_with_and_without_ports() {
        for host in ["localhost", "localhost:5000", "127.0.0.1:5000", "[::1]:5000", "127.8.9.1"] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["registry.example.com", "10.0.0.1:5000", "localhost.example.com"] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn a_target_must_name_a_registry_and_acr_takes_one_namespace() {
        let r = |s: &str| target_reference(Some(&s.parse().unwrap())).map_err(|e| e.to_string());
        assert!(r("job-test:1").unwrap_err().contains("names no registry"));
        assert!(
            r("crpi-x.cn-shenzhen.personal.cr.aliyuncs.com/a/b/c:1")
                .unwrap_err()
                .contains("exactly NAMESPACE/REPOSITORY")
        );
        assert_eq!(r("localhost:5000/job-test:1").unwrap().registry.as_deref(), Some("localhost:5000"));
    }

    #[test]
    fn the_oci_reference_is_the_one_oci_client_would_parse() {
        for text in [
            "127.0.0.1:5000/job-test:0.1.0",
            "localhost:5000/a/b/c:1",
            "docker.io/busybox:1",
            "index.docker.io/busybox:1",
            "docker.io/jerry/job-test:1",
            "crpi-x.cn-shenzhen.personal.cr.aliyuncs.com/jerry-learn/job-test:1.0.0",
        ] {
            let target = ImageRef::parse(text).unwrap();
            let tag = target.tag.clone().unwrap();
            let parsed: oci_client::Reference = format!("{}:{tag}", target.name()).parse().unwrap();
            let built = oci_reference(&target, &tag);
            assert_eq!(
                (built.registry(), built.repository(), built.tag(), built.whole()),
                (parsed.registry(), parsed.repository(), parsed.tag(), parsed.whole()),
                "{text}"
            );
        }
    }
}
