//! `cargo xtask apply`: server-side apply, forced, with the tool as field
//! manager; Namespace first, then RBAC, then the Job.
//!
//! A Job's pod template is immutable: applying a changed one is refused
//! with 422 "field is immutable". Then the old Job is deleted (background
//! propagation: its pods go too), its deletion awaited, and the Job created
//! again, and the output says so.

use std::fmt::Debug;
use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::{Attempt, Cluster, explain};
use crate::flags::ApplyFlags;
use crate::manifest::objects::MANAGER;
use crate::manifest::{self, Object, params};
use crate::report::Reporter;
use crate::{InvalidInput, Remote};

/// What applying one object did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Configured,
    Unchanged,
    /// The Job's pod template changed: deleted and created again.
    Replaced,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Configured => "configured",
            Outcome::Unchanged => "unchanged",
            Outcome::Replaced => "replaced",
        }
    }
}

/// kubectl's name for an object: `job.batch/job-test`.
pub fn kubectl_name(o: &Object) -> String {
    let (kind, name) = match o {
        Object::Namespace(x) => ("namespace", x.name_any()),
        Object::ServiceAccount(x) => ("serviceaccount", x.name_any()),
        Object::Secret(x) => ("secret", x.name_any()),
        Object::Role(x) => ("role.rbac.authorization.k8s.io", x.name_any()),
        Object::RoleBinding(x) => ("rolebinding.rbac.authorization.k8s.io", x.name_any()),
        Object::ClusterRole(x) => ("clusterrole.rbac.authorization.k8s.io", x.name_any()),
        Object::ClusterRoleBinding(x) => ("clusterrolebinding.rbac.authorization.k8s.io", x.name_any()),
        Object::Job(x) => ("job.batch", x.name_any()),
    };
    format!("{kind}/{name}")
}

/// Namespace first, then what RBAC needs, then the Job.
fn order(o: &Object) -> u8 {
    match o {
        Object::Namespace(_) => 0,
        Object::ServiceAccount(_) => 1,
        Object::Secret(_) => 2,
        Object::Role(_) | Object::ClusterRole(_) => 3,
        Object::RoleBinding(_) | Object::ClusterRoleBinding(_) => 4,
        Object::Job(_) => 5,
    }
}

pub fn run(flags: &ApplyFlags, out: &Reporter) -> Result<()> {
    let objects = objects(flags, out)?;
    crate::runtime()?.block_on(async {
        let cluster = super::connect(&flags.cluster, out).await?;
        let applied = apply_all(&cluster, objects, out).await?;
        report(&applied, out);
        Ok(())
    })
}

pub fn report(applied: &[(String, Outcome)], out: &Reporter) {
    out.result(
        applied.iter().map(|(n, o)| format!("{n} {}", o.as_str())).collect::<Vec<_>>().join("\n"),
        &json!({ "applied": applied.iter().map(|(n, o)| json!({"object": n, "result": o.as_str()})).collect::<Vec<_>>() }),
    );
}

/// The objects to apply: from the files, or a fresh rendering.
fn objects(flags: &ApplyFlags, out: &Reporter) -> Result<Vec<Object>> {
    if flags.files.is_empty() {
        let (job, mut warnings) = params::job_params(&flags.job)?;
        let (auth, more) = params::auth_params(&flags.auth, &job.namespace)?;
        warnings.extend(more);
        for w in &warnings {
            out.warn(w);
        }
        return Ok(manifest::all_objects(&job, &auth));
    }
    let mut objects = Vec::new();
    for path in &flags.files {
        let text = std::fs::read_to_string(path)
            .map_err(|e| InvalidInput(format!("-f {}: cannot read it ({e})", path.display())))?;
        let parsed = manifest::from_yaml(&text).map_err(|e| {
            InvalidInput(format!(
                "-f {}: not a manifest this tool applies ({e}); it applies Namespace, ServiceAccount, Secret, Role, RoleBinding, ClusterRole, ClusterRoleBinding and Job",
                path.display()
            ))
        })?;
        objects.extend(parsed);
    }
    Ok(objects)
}

/// Applies the objects in order. On a failure it says what was applied
/// before it and what was not.
pub async fn apply_all(cluster: &Cluster, mut objects: Vec<Object>, out: &Reporter) -> Result<Vec<(String, Outcome)>> {
    objects.sort_by_key(order);
    // One Namespace object is enough, even when two files carry it.
    objects.dedup_by(
        |a, b| matches!((&*a, &*b), (Object::Namespace(x), Object::Namespace(y)) if x.name_any() == y.name_any()),
    );
    let mut applied = Vec::new();
    for (i, object) in objects.iter().enumerate() {
        let name = kubectl_name(object);
        match apply_one_object(cluster, object, out).await {
            Ok(outcome) => {
                out.status(format!("{name} {}", outcome.as_str()));
                applied.push((name, outcome));
            }
            Err(e) => {
                let done = applied.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>();
                let rest = objects[i..].iter().map(kubectl_name).collect::<Vec<_>>();
                return Err(e.context(format!(
                    "apply stopped: {} applied ({}); not applied: {}",
                    done.len(),
                    if done.is_empty() { "nothing".to_owned() } else { done.join(", ") },
                    rest.join(", ")
                )));
            }
        }
    }
    Ok(applied)
}

async fn apply_one_object(cluster: &Cluster, object: &Object, out: &Reporter) -> Result<Outcome> {
    let c = cluster.client.clone();
    let ns = |meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| -> Result<String> {
        meta.namespace.clone().ok_or_else(|| {
            InvalidInput(format!("{} has no namespace: set metadata.namespace", kubectl_name(object))).into()
        })
    };
    match object {
        Object::Namespace(o) => apply_one(cluster, Api::all(c), o, None).await,
        Object::ServiceAccount(o) => {
            let n = ns(&o.metadata)?;
            apply_one(cluster, Api::namespaced(c, &n), o, Some(&n)).await
        }
        Object::Secret(o) => {
            let n = ns(&o.metadata)?;
            apply_one(cluster, Api::namespaced(c, &n), o, Some(&n)).await
        }
        Object::Role(o) => {
            let n = ns(&o.metadata)?;
            apply_one(cluster, Api::namespaced(c, &n), o, Some(&n)).await
        }
        Object::RoleBinding(o) => {
            let n = ns(&o.metadata)?;
            apply_one(cluster, Api::namespaced(c, &n), o, Some(&n)).await
        }
        Object::ClusterRole(o) => apply_one(cluster, Api::all(c), o, None).await,
        Object::ClusterRoleBinding(o) => apply_one(cluster, Api::all(c), o, None).await,
        Object::Job(o) => {
            let n = ns(&o.metadata)?;
            apply_job(cluster, Api::namespaced(c, &n), o, &n, out).await
        }
    }
}

fn plural<K: Resource<DynamicType = ()>>() -> String {
    K::plural(&()).into_owned()
}

/// One forced server-side apply; the outcome from the resourceVersion
/// before and after.
async fn apply_one<K>(cluster: &Cluster, api: Api<K>, object: &K, namespace: Option<&str>) -> Result<Outcome>
where
    K: Resource<DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned,
{
    let name = object.meta().name.clone().context("an object without a name")?;
    let resource = plural::<K>();
    let before = api
        .get_opt(&name)
        .await
        .map_err(|e| explain(cluster, &Attempt { verb: "get", resource: &resource, namespace }, &e))?;
    let after = api
        .patch(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(object))
        .await
        .map_err(|e| explain(cluster, &Attempt { verb: "patch", resource: &resource, namespace }, &e))?;
    Ok(match before {
        None => Outcome::Created,
        Some(b) if b.resource_version() == after.resource_version() => Outcome::Unchanged,
        Some(_) => Outcome::Configured,
    })
}

fn is_immutable(err: &anyhow::Error) -> bool {
    err.chain().any(|e| e.downcast_ref::<Remote>().is_some_and(|r| r.0.contains("field is immutable")))
}

/// Applies the Job, replacing it when its pod template changed.
async fn apply_job(cluster: &Cluster, api: Api<Job>, job: &Job, namespace: &str, out: &Reporter) -> Result<Outcome> {
    match apply_one(cluster, api.clone(), job, Some(namespace)).await {
        Err(e) if is_immutable(&e) => {
            let name = job.name_any();
            out.status(format!(
                "job.batch/{name}: the pod template changed, which Kubernetes does not allow in place: \
                 deleting the old Job and its pods, then creating it again"
            ));
            let old = api.get(&name).await.map_err(|e| {
                explain(cluster, &Attempt { verb: "get", resource: "jobs", namespace: Some(namespace) }, &e)
            })?;
            let uid = old.uid().unwrap_or_default();
            api.delete(&name, &DeleteParams::background()).await.map_err(|e| {
                explain(cluster, &Attempt { verb: "delete", resource: "jobs", namespace: Some(namespace) }, &e)
            })?;
            tokio::time::timeout(
                Duration::from_secs(120),
                await_condition(api.clone(), &name, conditions::is_deleted(&uid)),
            )
            .await
            .map_err(|_| {
                Remote(format!("job.batch/{name} was deleted but is still there after 2 minutes (a finalizer?)"))
            })?
            .context("waiting for the old Job to be gone")?;
            api.patch(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(job)).await.map_err(|e| {
                explain(cluster, &Attempt { verb: "patch", resource: "jobs", namespace: Some(namespace) }, &e)
            })?;
            Ok(Outcome::Replaced)
        }
        other => other,
    }
}
