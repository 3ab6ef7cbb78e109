//! The manifests: Namespace, NetworkPolicy, Job and RBAC objects built from typed
//! k8s-openapi structs (`objects`) out of checked parameters (`params`), and
//! their YAML.
//!
//! manifests/job-deploy.yaml and manifests/authorization.yaml hold the
//! rendering with the default flags; a test fails when they drift.

pub mod objects;
pub mod params;
pub mod pull_secret;
pub mod versions;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use serde::{Deserialize, Serialize};

use params::{JobParams, RbacParams};

/// One object of a manifest. k8s-openapi checks `apiVersion` and `kind` when
/// deserializing, so the untagged enum reads each document as what it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Object {
    Namespace(Namespace),
    ServiceAccount(ServiceAccount),
    Secret(Secret),
    Role(Role),
    RoleBinding(RoleBinding),
    ClusterRole(ClusterRole),
    ClusterRoleBinding(ClusterRoleBinding),
    NetworkPolicy(NetworkPolicy),
    Job(Box<Job>),
}

impl Object {
    /// `Kind/name`, as kubectl prints it.
    pub fn describe(&self) -> String {
        let (kind, meta) = match self {
            Object::Namespace(o) => ("Namespace", &o.metadata),
            Object::ServiceAccount(o) => ("ServiceAccount", &o.metadata),
            Object::Secret(o) => ("Secret", &o.metadata),
            Object::Role(o) => ("Role", &o.metadata),
            Object::RoleBinding(o) => ("RoleBinding", &o.metadata),
            Object::ClusterRole(o) => ("ClusterRole", &o.metadata),
            Object::ClusterRoleBinding(o) => ("ClusterRoleBinding", &o.metadata),
            Object::NetworkPolicy(o) => ("NetworkPolicy", &o.metadata),
            Object::Job(o) => ("Job", &o.metadata),
        };
        format!("{kind}/{}", meta.name.as_deref().unwrap_or(""))
    }

    /// The namespace the object lives in; None for cluster-scoped ones
    /// (Namespace, ClusterRole, ClusterRoleBinding).
    pub fn namespace(&self) -> Option<&str> {
        match self {
            Object::Namespace(_) | Object::ClusterRole(_) | Object::ClusterRoleBinding(_) => None,
            Object::ServiceAccount(o) => o.metadata.namespace.as_deref(),
            Object::Secret(o) => o.metadata.namespace.as_deref(),
            Object::Role(o) => o.metadata.namespace.as_deref(),
            Object::RoleBinding(o) => o.metadata.namespace.as_deref(),
            Object::NetworkPolicy(o) => o.metadata.namespace.as_deref(),
            Object::Job(o) => o.metadata.namespace.as_deref(),
        }
    }
}

/// The Job's file: its Namespace, the NetworkPolicy (unless left out),
/// then the Job.
pub fn job_objects(p: &JobParams) -> Vec<Object> {
    let mut docs = vec![Object::Namespace(objects::namespace(&p.namespace))];
    docs.extend(workload(p));
    docs
}

/// The NetworkPolicy before the Job, so that no pod runs unfenced for a
/// moment.
fn workload(p: &JobParams) -> Vec<Object> {
    let mut docs = Vec::new();
    if p.network_policy {
        docs.push(Object::NetworkPolicy(objects::network_policy(p)));
    }
    docs.push(Object::Job(Box::new(objects::job(p))));
    docs
}

/// The authorization file: the Namespace (so the file applies on its own),
/// the ServiceAccount, its token Secret, the role and the binding.
pub fn rbac_objects(a: &RbacParams) -> Vec<Object> {
    let mut docs = vec![
        Object::Namespace(objects::namespace(&a.namespace)),
        Object::ServiceAccount(objects::service_account(a)),
        Object::Secret(objects::token_secret(a)),
    ];
    if a.cluster_wide {
        docs.push(Object::ClusterRole(objects::cluster_role(a)));
        docs.push(Object::ClusterRoleBinding(objects::cluster_role_binding(a)));
    } else {
        docs.push(Object::Role(objects::role(a)));
        docs.push(Object::RoleBinding(objects::role_binding(a)));
    }
    docs
}

/// Everything, in the order it must be applied: Namespace, RBAC,
/// NetworkPolicy, Job.
pub fn all_objects(p: &JobParams, a: &RbacParams) -> Vec<Object> {
    let mut docs = rbac_objects(a);
    docs.extend(workload(p));
    docs
}

/// The header every rendered file starts with.
pub const HEADER: &str = concat!(
    "# Rendered by `cargo xtask render` (job-test ",
    env!("CARGO_PKG_VERSION"),
    ") from typed Kubernetes objects.\n",
    "# Change the flags and render again rather than editing this file.\n",
);

/// Whether a Job in `objects` names the placeholder image (no `--image`).
fn names_placeholder(objects: &[Object]) -> bool {
    let placeholder = params::placeholder_image().to_string();
    objects.iter().any(|o| match o {
        Object::Job(job) => job
            .spec
            .iter()
            .filter_map(|s| s.template.spec.as_ref())
            .flat_map(|pod| &pod.containers)
            .any(|c| c.image.as_deref() == Some(placeholder.as_str())),
        _ => false,
    })
}

/// A multi-document YAML stream. One that names the placeholder image says
/// so at the top, where a reader of the file (the golden one included) sees
/// it before the reference itself.
pub fn to_yaml(objects: &[Object]) -> Result<String, serde_saphyr::SerializeError> {
    // Plain scalars, as kubectl writes them: no folded `>-` blocks for
    // long values such as a digest-pinned image reference.
    let mut options = serde_saphyr::SerializerOptions::default();
    options.prefer_block_scalars = false;
    let mut out = String::from(HEADER);
    if names_placeholder(objects) {
        out.push_str(&format!(
            "# The image {} is a placeholder: render again with\n\
             # --image REPO:TAG@sha256:... (the reference `cargo xtask push` prints) before applying.\n",
            params::placeholder_image()
        ));
    }
    for object in objects {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string_with_options(object, options.clone())?);
    }
    Ok(out)
}

/// Reads a multi-document YAML stream back into objects.
/// The objects of a YAML stream. A document that is not YAML is named by
/// its line and column; one that is, by its kind, its name, the field's
/// path and the rule it breaks (`Job x: spec.completions: invalid value:
/// integer `99999999999`, expected i32`), since an untagged enum's own
/// error says only that no variant matched.
pub fn from_yaml(yaml: &str) -> Result<Vec<Object>, String> {
    let documents: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(yaml).map_err(|e| e.to_string().trim_start_matches("error: ").to_owned())?;
    documents.into_iter().filter(|d| !d.is_null()).enumerate().map(|(i, d)| object(i + 1, d)).collect()
}

/// One document, read as the type its `kind` names.
fn object(n: usize, document: serde_json::Value) -> Result<Object, String> {
    fn typed<T: serde::de::DeserializeOwned>(document: serde_json::Value) -> Result<T, String> {
        serde_path_to_error::deserialize(document).map_err(|e| match e.path().to_string() {
            path if path == "." => e.inner().to_string(),
            path => format!("{path}: {}", e.inner()),
        })
    }
    let text = |field: &str| document.get(field).and_then(serde_json::Value::as_str).map(str::to_owned);
    let kind = text("kind").ok_or_else(|| format!("document {n} has no kind"))?;
    let name = document.pointer("/metadata/name").and_then(serde_json::Value::as_str).unwrap_or("(no name)");
    let what = format!("{kind} {name}");
    let object = match kind.as_str() {
        "Namespace" => typed(document).map(Object::Namespace),
        "ServiceAccount" => typed(document).map(Object::ServiceAccount),
        "Secret" => typed(document).map(Object::Secret),
        "Role" => typed(document).map(Object::Role),
        "RoleBinding" => typed(document).map(Object::RoleBinding),
        "ClusterRole" => typed(document).map(Object::ClusterRole),
        "ClusterRoleBinding" => typed(document).map(Object::ClusterRoleBinding),
        "NetworkPolicy" => typed(document).map(Object::NetworkPolicy),
        "Job" => typed(document).map(|j| Object::Job(Box::new(j))),
        _ => Err(format!(
            "kind {kind} is not one this tool reads (Namespace, ServiceAccount, Secret, Role, RoleBinding, \
             ClusterRole, ClusterRoleBinding, NetworkPolicy, Job)"
        )),
    };
    object.map_err(|why| format!("{what}: {why}"))
}

/// The first Job in the manifest file `-f PATH` names (`run-local -f`,
/// `odds -f`), or a usage error naming the file.
pub fn job_from_file(path: &std::path::Path) -> Result<Job, crate::Error> {
    use crate::Error;
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::usage(format!("-f {}: cannot read it ({e})", path.display())))?;
    let objects = from_yaml(&text).map_err(|e| Error::usage(format!("-f {}: {e}", path.display())))?;
    objects
        .into_iter()
        .find_map(|o| match o {
            Object::Job(job) => Some(*job),
            _ => None,
        })
        .ok_or_else(|| {
            Error::usage(format!("-f {}: holds no Job; render one with `cargo xtask render`", path.display()))
        })
}

#[cfg(test)]
mod tests {
    use super::from_yaml;

    const JOB: &str = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: x\nspec:\n  completions: 99999999999\n  \
                       template:\n    spec:\n      containers: []\n";

    #[test]
    fn a_bad_field_is_named_by_object_path_value_and_rule() {
        let e = from_yaml(JOB).unwrap_err();
        assert_eq!(e, "Job x: spec.completions: invalid value: integer `99999999999`, expected i32");
        let e = from_yaml(&JOB.replace("99999999999", "five")).unwrap_err();
        assert!(e.starts_with("Job x: spec.completions: invalid type: string \"five\""), "{e}");
        let e = from_yaml("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n").unwrap_err();
        assert!(e.starts_with("Pod p: kind Pod is not one this tool reads (Namespace, "), "{e}");
        assert_eq!(from_yaml("metadata: {}\n").unwrap_err(), "document 1 has no kind");
    }

    #[test]
    fn text_that_is_not_yaml_is_named_by_line_and_column() {
        let e = from_yaml("apiVersion: v1\nkind: Namespace\nmetadata: {name: [x\n").unwrap_err();
        assert!(e.starts_with("line 3 column 18: unclosed bracket"), "{e}");
    }
}
