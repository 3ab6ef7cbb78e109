//! A Job's pod template as a Docker container: the command, the
//! environment (with the downward API's fields resolved), the user, the
//! read-only root filesystem, the memory limit, emptyDir volumes and the
//! termination message file, as a kubelet would set them up.

use std::collections::HashMap;
use std::path::Path;

use bollard::models::{ContainerCreateBody, HostConfig};
use k8s_openapi::api::core::v1::{Container, PodSpec};

/// Labels on every container a local run makes, so all can be found.
pub const RUN_LABEL: &str = "job-test.local/run";
pub const JOB_LABEL: &str = "job-test.local/job";
pub const POD_LABEL: &str = "job-test.local/pod";
/// On the containers of a run made with `--keep` (value `true`): the only
/// ones `delete --local` may remove; a run without it removes its own.
pub const KEPT_LABEL: &str = "job-test.local/kept";

/// What a pod is, beyond its template.
pub struct Identity<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub job: &'a str,
    pub run: &'a str,
    pub index: Option<u32>,
    /// JOB_INDEX_FAILURE_COUNT's source, with backoffLimitPerIndex.
    pub index_failures: u32,
    /// The run keeps its containers (`--keep`).
    pub kept: bool,
}

/// A Kubernetes quantity (`32Mi`, `1G`, `500m`, `1e3`) as a number.
pub fn parse_quantity(quantity: &str) -> Option<f64> {
    let quantity = quantity.trim();
    let split =
        quantity.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-')).unwrap_or(quantity.len());
    let (number, suffix) = quantity.split_at(split);
    let number: f64 = number.parse().ok()?;
    let binary = |power: i32| 1024f64.powi(power);
    let multiplier = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => binary(1),
        "Mi" => binary(2),
        "Gi" => binary(3),
        "Ti" => binary(4),
        "Pi" => binary(5),
        "Ei" => binary(6),
        exponent => 10f64.powi(exponent.strip_prefix(['e', 'E'])?.parse().ok()?),
    };
    Some(number * multiplier)
}

/// The pod's one container (the worker's template has one).
pub fn container(spec: &PodSpec) -> Option<&Container> {
    spec.containers.first()
}

/// The environment as the kubelet builds it: the template's values, the
/// downward API's fields, and JOB_COMPLETION_INDEX for Indexed Jobs.
pub fn environment(c: &Container, who: &Identity<'_>) -> Vec<String> {
    let index = who.index.map(|i| i.to_string()).unwrap_or_default();
    let mut env = Vec::new();
    if who.index.is_some() {
        env.push(format!("JOB_COMPLETION_INDEX={index}"));
    }
    for var in c.env.iter().flatten() {
        let value = match (&var.value, var.value_from.as_ref().and_then(|f| f.field_ref.as_ref())) {
            (Some(v), _) => v.clone(),
            (None, Some(field)) => match field.field_path.as_str() {
                "metadata.name" => who.name.to_owned(),
                "metadata.namespace" => who.namespace.to_owned(),
                "metadata.annotations['batch.kubernetes.io/job-completion-index']" => index.clone(),
                "metadata.annotations['batch.kubernetes.io/job-index-failure-count']" => who.index_failures.to_string(),
                _ => String::new(),
            },
            (None, None) => String::new(),
        };
        env.push(format!("{}={value}", var.name));
    }
    env
}

/// The container for one pod. `message_file` is bind-mounted at the
/// terminationMessagePath; each emptyDir volume is a folder under `volumes`.
pub fn container_body(
    spec: &PodSpec,
    image: &str,
    who: &Identity<'_>,
    message_file: &Path,
    volumes: &Path,
) -> Result<ContainerCreateBody, String> {
    let c = container(spec).ok_or("the pod template has no container")?;
    let pod_security = spec.security_context.clone().unwrap_or_default();
    let security = c.security_context.clone().unwrap_or_default();
    let uid = security.run_as_user.or(pod_security.run_as_user);
    let gid = security.run_as_group.or(pod_security.run_as_group);
    let user = match (uid, gid) {
        (Some(u), Some(g)) => Some(format!("{u}:{g}")),
        (Some(u), None) => Some(u.to_string()),
        (None, Some(g)) => Some(format!("0:{g}")),
        (None, None) => None,
    };
    let message_path = c.termination_message_path.as_deref().unwrap_or("/dev/termination-log");
    let mut binds = vec![format!("{}:{message_path}", message_file.display())];
    let empty_dirs: Vec<&str> =
        spec.volumes.iter().flatten().filter(|v| v.empty_dir.is_some()).map(|v| v.name.as_str()).collect();
    for mount in c.volume_mounts.iter().flatten() {
        if !empty_dirs.contains(&mount.name.as_str()) {
            continue;
        }
        let host = volumes.join(&mount.name);
        std::fs::create_dir_all(&host).map_err(|e| format!("creating {}: {e}", host.display()))?;
        // An emptyDir is writable by the pod's user, whoever that is.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o777))
            .map_err(|e| format!("chmod {}: {e}", host.display()))?;
        let ro = if mount.read_only == Some(true) { ":ro" } else { "" };
        binds.push(format!("{}:{}{ro}", host.display(), mount.mount_path));
    }
    let memory = c
        .resources
        .as_ref()
        .and_then(|r| r.limits.as_ref())
        .and_then(|l| l.get("memory"))
        .and_then(|q| parse_quantity(&q.0))
        .map(|m| m.ceil() as i64);
    let mut security_opt = Vec::new();
    if security.allow_privilege_escalation == Some(false) {
        security_opt.push("no-new-privileges".to_owned());
    }
    let mut labels = HashMap::from([
        (RUN_LABEL.to_owned(), who.run.to_owned()),
        (JOB_LABEL.to_owned(), who.job.to_owned()),
        (POD_LABEL.to_owned(), who.name.to_owned()),
    ]);
    if who.kept {
        labels.insert(KEPT_LABEL.to_owned(), "true".to_owned());
    }
    Ok(ContainerCreateBody {
        image: Some(image.to_owned()),
        hostname: Some(who.name.chars().take(63).collect()),
        user,
        env: Some(environment(c, who)),
        entrypoint: c.command.clone(),
        cmd: c.args.clone(),
        working_dir: c.working_dir.clone(),
        labels: Some(labels),
        host_config: Some(HostConfig {
            binds: Some(binds),
            // The worker needs no network; the rendered NetworkPolicy (when
            // there is one) would deny it anyway.
            network_mode: Some("none".to_owned()),
            memory,
            // Swap as large as the memory: no swap, so the limit is real.
            memory_swap: memory,
            readonly_rootfs: security.read_only_root_filesystem,
            cap_drop: security.capabilities.as_ref().and_then(|c| c.drop.clone()),
            security_opt: Some(security_opt),
            ..Default::default()
        }),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{objects, params};

    #[test]
    fn quantities_in_bytes() {
        assert_eq!(parse_quantity("32Mi"), Some(32.0 * 1024.0 * 1024.0));
        assert_eq!(parse_quantity("1G"), Some(1e9));
        assert_eq!(parse_quantity("500m"), Some(0.5));
        assert_eq!(parse_quantity("1e3"), Some(1000.0));
        assert_eq!(parse_quantity("128974848"), Some(128974848.0));
        assert_eq!(parse_quantity("12x"), None);
        assert_eq!(parse_quantity("lots"), None);
    }

    #[test]
    fn the_rendered_template_becomes_a_locked_down_container() {
        use clap::Parser;
        let flags = crate::flags::Xtask::parse_from([
            "xtask",
            "render",
            "--completion-mode",
            "Indexed",
            "--fail-attempts",
            "1",
            "--image",
            "job-test:0.1.0",
        ]);
        let crate::flags::Command::Render(render) = flags.command else { unreachable!() };
        let (p, _) = params::job_params(&render.job).unwrap();
        let job = objects::job(&p);
        let spec = job.spec.unwrap().template.spec.unwrap();
        let dir = std::env::temp_dir().join(format!("job-test-pod-{}", std::process::id()));
        let who = Identity {
            name: "job-test-x7k2p",
            namespace: "job-test",
            job: "job-test",
            run: "r",
            index: Some(3),
            index_failures: 0,
            kept: true,
        };
        let body = container_body(&spec, "job-test:0.1.0", &who, &dir.join("msg"), &dir.join("volumes")).unwrap();
        let env = body.env.unwrap();
        assert!(env.contains(&"JOB_COMPLETION_INDEX=3".to_owned()), "{env:?}");
        assert!(env.contains(&"FAIL_ATTEMPTS=1".to_owned()), "{env:?}");
        let host = body.host_config.unwrap();
        assert_eq!(host.readonly_rootfs, Some(true));
        assert_eq!(host.memory, Some(32 * 1024 * 1024));
        assert_eq!(host.network_mode.as_deref(), Some("none"));
        assert!(host.binds.unwrap().iter().any(|b| b.ends_with(":/dev/termination-log")));
        assert_eq!(body.user.as_deref(), Some("65532:65532"));
        assert_eq!(body.hostname.as_deref(), Some("job-test-x7k2p"));
        let labels = body.labels.unwrap();
        assert_eq!(labels.get(KEPT_LABEL).map(String::as_str), Some("true"), "{labels:?}");
        assert_eq!(labels.get(POD_LABEL).map(String::as_str), Some("job-test-x7k2p"), "{labels:?}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
