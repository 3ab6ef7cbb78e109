//! Server-side apply, forced, with the tool as field manager, for `apply`,
//! `release`, `auth` and `conformance`; Namespace first, then RBAC, then the NetworkPolicy, then the
//! Job.
//!
//! A Job's pod template is immutable: applying a changed one is refused
//! with 422 "field is immutable". Then the old Job is deleted as `delete`
//! does it (background propagation, waiting until it and its pods are gone),
//! the Job created again, and the output says so.

use std::fmt::Debug;

use anyhow::{Context, Result};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Attempt, Cluster, explain};
use crate::Error;
use crate::manifest::objects::MANAGER;
use crate::manifest::versions::{self, KubeVersion};
use crate::manifest::{Object, pull_secret};
use crate::report::Reporter;

/// What applying one object did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Created,
    Configured,
    Unchanged,
    /// The Job's pod template changed: deleted and created again.
    Replaced,
    /// A Namespace that exists and is not ours (or is the cluster's own):
    /// taken as it is, never patched.
    Untouched,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Configured => "configured",
            Outcome::Unchanged => "unchanged",
            Outcome::Replaced => "replaced",
            Outcome::Untouched => "untouched",
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
        Object::NetworkPolicy(x) => ("networkpolicy.networking.k8s.io", x.name_any()),
        Object::Job(x) => ("job.batch", x.name_any()),
    };
    format!("{kind}/{name}")
}

/// Namespace first, then what RBAC needs, then the NetworkPolicy, then the
/// Job: its pods start fenced in.
fn order(o: &Object) -> u8 {
    match o {
        Object::Namespace(_) => 0,
        Object::ServiceAccount(_) => 1,
        Object::Secret(_) => 2,
        Object::Role(_) | Object::ClusterRole(_) => 3,
        Object::RoleBinding(_) | Object::ClusterRoleBinding(_) => 4,
        Object::NetworkPolicy(_) => 5,
        Object::Job(_) => 6,
    }
}

/// What an apply did, object by object (kubectl's names), in order.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(transparent)]
pub struct Applied(pub Vec<AppliedObject>);

#[derive(Debug, Clone, Serialize)]
pub struct AppliedObject {
    /// kubectl's name: `job.batch/job-test`.
    pub object: String,
    pub result: Outcome,
}

/// `job.batch/job-test created`, a line each.
impl std::fmt::Display for Applied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, o) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            match o.result {
                Outcome::Untouched => write!(f, "{} untouched (it exists and job-test did not create it)", o.object)?,
                result => write!(f, "{} {}", o.object, result.as_str())?,
            }
        }
        Ok(())
    }
}

/// Asks the cluster its version and adapts the objects to it (see
/// `manifest::versions`): warnings printed, refusals an error before
/// anything is applied.
pub async fn for_server(cluster: &Cluster, objects: &mut [Object], out: &Reporter) -> Result<KubeVersion> {
    let version = super::server_version(cluster).await?;
    let warnings = versions::adapt(objects, version).into_result(version, &format!("at {}", cluster.server))?;
    for w in &warnings {
        out.warn(w);
    }
    Ok(version)
}

/// Applies the objects in order. On a failure it says what was applied
/// before it and what was not.
pub async fn apply_all(cluster: &Cluster, mut objects: Vec<Object>, out: &Reporter) -> Result<Applied> {
    in_order(&mut objects);
    let stopped = |e: anyhow::Error, applied: &Applied, rest: &[Object]| {
        let done = applied.0.iter().map(|o| o.object.as_str()).collect::<Vec<_>>();
        let rest = rest.iter().map(kubectl_name).collect::<Vec<_>>();
        e.context(format!(
            "apply stopped: {} applied ({}); not applied: {}",
            done.len(),
            if done.is_empty() { "nothing".to_owned() } else { done.join(", ") },
            rest.join(", ")
        ))
    };
    let mut applied = Applied::default();
    if let Err(e) = refuse_foreign_secrets(cluster, &objects).await {
        return Err(stopped(e, &applied, &objects));
    }
    for (i, object) in objects.iter().enumerate() {
        let name = kubectl_name(object);
        match apply_one_object(cluster, object, Mode::Apply, out).await {
            Ok((outcome, _)) => {
                out.status(format!("{name} {}", outcome.as_str()));
                applied.0.push(AppliedObject { object: name, result: outcome });
            }
            Err(e) => return Err(stopped(e, &applied, &objects[i..])),
        }
    }
    Ok(applied)
}

/// Sorts the objects into the order they are applied in; one Namespace
/// object is enough, even when two files carry it.
pub(super) fn in_order(objects: &mut Vec<Object>) {
    objects.sort_by_key(order);
    objects.dedup_by(
        |a, b| matches!((&*a, &*b), (Object::Namespace(x), Object::Namespace(y)) if x.name_any() == y.name_any()),
    );
}

/// How an object is applied: for real, or as a server-side dry run
/// (`dryRun=All`: decoded, defaulted, validated and admitted, nothing
/// stored; see `dry_run`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Apply,
    DryRun,
}

/// What applying an object did (or would do), and for a dry run's
/// `configured` the fields that would change (paths, never values).
pub type Change = (Outcome, Vec<String>);

pub(super) async fn apply_one_object(cluster: &Cluster, object: &Object, mode: Mode, out: &Reporter) -> Result<Change> {
    let all = || cluster.client.clone();
    match object {
        Object::Namespace(o) => apply_namespace(cluster, o, mode).await,
        Object::ServiceAccount(o) => apply_namespaced(cluster, o, object, mode).await,
        Object::Secret(o) => apply_namespaced(cluster, o, object, mode).await,
        Object::Role(o) => apply_namespaced(cluster, o, object, mode).await,
        Object::RoleBinding(o) => apply_namespaced(cluster, o, object, mode).await,
        Object::NetworkPolicy(o) => apply_namespaced(cluster, o, object, mode).await,
        Object::ClusterRole(o) => apply_one(cluster, Api::all(all()), o, None, mode).await,
        Object::ClusterRoleBinding(o) => apply_one(cluster, Api::all(all()), o, None, mode).await,
        Object::Job(o) => apply_job(cluster, o, &namespace_of(o.as_ref(), object)?, mode, out).await,
    }
}

/// Namespaces the cluster owns: never created, never patched.
fn is_reserved_namespace(name: &str) -> bool {
    name == "default" || name.starts_with("kube-")
}

/// Whether this tool made the object (its label, or an apply of ours in
/// the managed fields).
fn is_ours<K: Resource>(o: &K) -> bool {
    o.labels().get("app.kubernetes.io/managed-by").is_some_and(|m| m == MANAGER)
        || o.managed_fields().iter().any(|f| f.manager.as_deref() == Some(MANAGER))
}

/// A Secret is created, never taken over, as a Namespace is: a forced
/// apply onto someone's Secret would replace its data (a namespace's shared
/// `regcred` holding logins for several registries would be left with one,
/// and other workloads would fail to pull). Each Secret among the objects
/// is read first; one that exists and that job-test did not make is
/// refused before anything is applied, naming it and the way out.
pub async fn refuse_foreign_secrets(cluster: &Cluster, objects: &[Object]) -> Result<()> {
    for object in objects {
        let Object::Secret(secret) = object else { continue };
        let namespace = namespace_of(secret, object)?;
        let name = secret.name_any();
        let api: Api<Secret> = Api::namespaced(cluster.client.clone(), &namespace);
        let existing = api.get_opt(&name).await.map_err(|e| {
            explain(cluster, &Attempt { verb: "get", resource: "secrets", namespace: Some(&namespace) }, &e)
        })?;
        if let Some(existing) = existing
            && !is_ours(&existing)
        {
            return Err(Error::usage(foreign_secret(secret, &namespace)).into());
        }
    }
    Ok(())
}

/// Why a Secret someone else made is not applied, and what to do instead.
fn foreign_secret(secret: &Secret, namespace: &str) -> String {
    let name = secret.name_any();
    let fix = match (pull_secret::is_pull_secret(secret), secret.labels().get("app.kubernetes.io/instance")) {
        (true, Some(job)) if name == format!("{job}-pull-secret") => format!(
            "name another with --image-pull-secret NAME, or delete it (`kubectl delete secret {name} -n \
             {namespace}`) if nothing else uses it"
        ),
        (true, Some(job)) => format!(
            "drop --image-pull-secret to create {job}-pull-secret, reference it without --create-pull-secret to \
             use it as it is, or delete it (`kubectl delete secret {name} -n {namespace}`) if nothing else uses it"
        ),
        _ => format!(
            "rename the Secret in what you apply, or delete it (`kubectl delete secret {name} -n {namespace}`) if \
             nothing else uses it"
        ),
    };
    let harm = match pull_secret::is_pull_secret(secret) {
        true => "replace its data with one registry's credential, and what else pulls with it could fail to pull",
        false => "replace its data",
    };
    format!(
        "secret/{name} in namespace {namespace} exists and job-test did not create it (no \
         app.kubernetes.io/managed-by=job-test label): applying would {harm}; nothing was applied. {fix}"
    )
}

/// A Namespace is shared with everything else in it: one that exists and
/// that we did not create is taken as it is (our labels on the cluster's
/// `default` would be a change nobody asked for); only a missing one is
/// created.
async fn apply_namespace(cluster: &Cluster, ns: &Namespace, mode: Mode) -> Result<Change> {
    let name = ns.name_any();
    let api: Api<Namespace> = Api::all(cluster.client.clone());
    let existing = api
        .get_opt(&name)
        .await
        .map_err(|e| explain(cluster, &Attempt { verb: "get", resource: "namespaces", namespace: None }, &e))?;
    match existing {
        Some(existing) if is_reserved_namespace(&name) || !is_ours(&existing) => Ok((Outcome::Untouched, vec![])),
        None if is_reserved_namespace(&name) => Err(crate::Error::remote(format!(
            "namespace/{name} does not exist, and names `default` and `kube-*` belong to the cluster: pick another \
             --namespace"
        ))
        .into()),
        _ => apply_one(cluster, api, ns, None, mode).await,
    }
}

fn namespace_of<K: Resource>(o: &K, object: &Object) -> Result<String> {
    o.meta().namespace.clone().ok_or_else(|| {
        Error::usage(format!("{} has no namespace: set metadata.namespace", kubectl_name(object))).into()
    })
}

async fn apply_namespaced<K>(cluster: &Cluster, o: &K, object: &Object, mode: Mode) -> Result<Change>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + Debug + Serialize + DeserializeOwned,
{
    let ns = namespace_of(o, object)?;
    apply_one(cluster, Api::namespaced(cluster.client.clone(), &ns), o, Some(&ns), mode).await
}

fn plural<K: Resource<DynamicType = ()>>() -> String {
    K::plural(&()).into_owned()
}

/// One forced server-side apply (`dryRun=All` for a dry run). The outer
/// error is the GET before it (explained); the inner one the API server's
/// refusal of the patch itself, as it came, for the caller to recognise.
async fn try_apply<K>(
    cluster: &Cluster,
    api: &Api<K>,
    object: &K,
    namespace: Option<&str>,
    mode: Mode,
) -> Result<Result<Change, kube::Error>>
where
    K: Resource<DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned,
{
    let name = object.meta().name.clone().context("an object without a name")?;
    let before = api
        .get_opt(&name)
        .await
        .map_err(|e| explain(cluster, &Attempt { verb: "get", resource: &plural::<K>(), namespace }, &e))?;
    let mut params = PatchParams::apply(MANAGER).force();
    params.dry_run = mode == Mode::DryRun;
    let after = match api.patch(&name, &params, &Patch::Apply(object)).await {
        Ok(after) => after,
        Err(e) => return Ok(Err(e)),
    };
    Ok(Ok(match (before, mode) {
        (None, _) => (Outcome::Created, vec![]),
        // Applied: the resourceVersion moves exactly when something changed.
        (Some(b), Mode::Apply) if b.resource_version() == after.resource_version() => (Outcome::Unchanged, vec![]),
        (Some(_), Mode::Apply) => (Outcome::Configured, vec![]),
        // A dry run never writes, so it keeps the live resourceVersion:
        // the objects themselves are compared.
        (Some(b), Mode::DryRun) => match super::json_diff::changed_paths(&b, &after)? {
            changes if changes.is_empty() => (Outcome::Unchanged, changes),
            changes => (Outcome::Configured, changes),
        },
    }))
}

async fn apply_one<K>(cluster: &Cluster, api: Api<K>, object: &K, namespace: Option<&str>, mode: Mode) -> Result<Change>
where
    K: Resource<DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned,
{
    try_apply(cluster, &api, object, namespace, mode)
        .await?
        .map_err(|e| explain(cluster, &Attempt { verb: "patch", resource: &plural::<K>(), namespace }, &e).into())
}

/// The 422 a Job gets when its pod template changed.
fn is_immutable(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == 422 && s.message.contains("field is immutable"))
}

/// A 422 whose every cause is an immutable field: the API server's
/// validation of the rest of the Job found no fault, so a replacement
/// would be taken.
fn only_immutable(err: &kube::Error) -> bool {
    is_immutable(err)
        && matches!(err, kube::Error::Api(s)
            if s.details.as_ref().is_none_or(|d| d.causes.iter().all(|c| c.message.contains("field is immutable"))))
}

/// Applies the Job, replacing it when its pod template changed. A dry run
/// reports `replaced` and deletes nothing, when the refusal names nothing
/// but immutable fields (any other is the error a real apply would meet).
async fn apply_job(cluster: &Cluster, job: &Job, namespace: &str, mode: Mode, out: &Reporter) -> Result<Change> {
    let api: Api<Job> = Api::namespaced(cluster.client.clone(), namespace);
    let patch =
        |e: &kube::Error| explain(cluster, &Attempt { verb: "patch", resource: "jobs", namespace: Some(namespace) }, e);
    match try_apply(cluster, &api, job, Some(namespace), mode).await? {
        Ok(change) => Ok(change),
        Err(e) if mode == Mode::DryRun && only_immutable(&e) => Ok((Outcome::Replaced, vec!["spec.template".into()])),
        Err(e) if mode == Mode::Apply && is_immutable(&e) => {
            let name = job.name_any();
            out.status(format!(
                "job.batch/{name}: the pod template changed, which Kubernetes does not allow in place: \
                 deleting the old Job and its pods, then creating it again"
            ));
            super::delete::delete(cluster, &name, namespace, out).await?;
            api.patch(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(job)).await.map_err(|e| patch(&e))?;
            Ok((Outcome::Replaced, vec![]))
        }
        Err(e) => Err(patch(&e).into()),
    }
}
