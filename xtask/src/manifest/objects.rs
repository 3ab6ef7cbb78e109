//! The Kubernetes objects, built as k8s-openapi structs from checked
//! parameters: valid by construction, secure by default.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::batch::v1::{
    Job, JobSpec, PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement, PodFailurePolicyOnPodConditionsPattern,
    PodFailurePolicyRule, SuccessPolicy, SuccessPolicyRule,
};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, EmptyDirVolumeSource, EnvVar, EnvVarSource, LocalObjectReference, Namespace,
    ObjectFieldSelector, PodSecurityContext, PodSpec, PodTemplateSpec, ResourceRequirements, SeccompProfile, Secret,
    SecurityContext, ServiceAccount, Volume, VolumeMount,
};
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicySpec};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

pub use super::params::CONTAINER;
use super::params::{FailureMatch, FailureRule, JobParams, RbacParams, RestartPolicy, STATE_DIR};

/// A pull secret's type, as kubelets read it.
pub const PULL_SECRET_TYPE: &str = "kubernetes.io/dockerconfigjson";
/// The key of a pull secret's data.
pub const PULL_SECRET_KEY: &str = ".dockerconfigjson";
/// The tool's name: the managed-by label and the server-side apply field manager.
pub const MANAGER: &str = "job-test";
/// The numeric user and group of the image (see the Dockerfile).
pub const USER_ID: i64 = 65532;
/// The worker's exit code for a configuration error (see job-worker).
pub const EXIT_CONFIG: i32 = job_worker::EXIT_CONFIG as i32;

/// The downward-API path of the annotation Kubernetes sets on the pods of an
/// Indexed Job with backoffLimitPerIndex: how often this index has failed.
pub const INDEX_FAILURE_COUNT_PATH: &str = "metadata.annotations['batch.kubernetes.io/job-index-failure-count']";

fn labels(instance: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".into(), "job-worker".into()),
        ("app.kubernetes.io/instance".into(), instance.into()),
        ("app.kubernetes.io/version".into(), env!("CARGO_PKG_VERSION").into()),
        ("app.kubernetes.io/managed-by".into(), MANAGER.into()),
    ])
}

/// The labels that pick out the pods of one Job of ours: its instance, not
/// its version, so that a policy keeps holding across an upgrade.
fn pod_selector(instance: &str) -> BTreeMap<String, String> {
    let mut labels = labels(instance);
    labels.retain(|k, _| k == "app.kubernetes.io/name" || k == "app.kubernetes.io/instance");
    labels
}

fn meta(name: &str, namespace: Option<&str>, instance: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: namespace.map(Into::into),
        labels: Some(labels(instance)),
        ..ObjectMeta::default()
    }
}

pub fn namespace(name: &str) -> Namespace {
    Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(BTreeMap::from([("app.kubernetes.io/managed-by".into(), MANAGER.into())])),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    }
}

pub fn job(p: &JobParams) -> Job {
    let mut env: Vec<EnvVar> = p
        .env
        .iter()
        .map(|(name, value)| EnvVar { name: (*name).into(), value: Some(value.clone()), ..EnvVar::default() })
        .collect();
    let counts_attempts = p.mounts_state_dir();
    if p.passes_index_failure_count() {
        // Empty when the Job has no per-index limit; the worker reads an
        // empty variable as unset and falls back to STATE_DIR.
        env.push(EnvVar {
            name: job_worker::config::ENV_INDEX_FAILURE_COUNT.into(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: INDEX_FAILURE_COUNT_PATH.into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..EnvVar::default()
        });
    }
    let resources =
        BTreeMap::from([("cpu".into(), Quantity(p.cpu.clone())), ("memory".into(), Quantity(p.memory.clone()))]);

    let container = Container {
        name: CONTAINER.into(),
        image: Some(p.image.to_string()),
        image_pull_policy: Some(pull_policy(p).into()),
        env: Some(env),
        resources: Some(ResourceRequirements {
            requests: Some(resources.clone()),
            limits: Some(resources),
            ..Default::default()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), ..Default::default() }),
            ..Default::default()
        }),
        // A panic or an OOM kill may leave no message of the worker's own;
        // then the last log lines explain the failure in the pod status.
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        volume_mounts: counts_attempts
            .then(|| vec![VolumeMount { name: "state".into(), mount_path: STATE_DIR.into(), ..Default::default() }]),
        ..Container::default()
    };

    let pod = PodSpec {
        restart_policy: Some(p.restart_policy.as_str().into()),
        // The worker never calls the API: no token in the pod.
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        // The worker exits within 100 ms of SIGTERM.
        termination_grace_period_seconds: Some(10),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(USER_ID),
            run_as_group: Some(USER_ID),
            fs_group: counts_attempts.then_some(USER_ID),
            seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".into(), ..Default::default() }),
            ..Default::default()
        }),
        image_pull_secrets: p.image_pull_secret.as_ref().map(|s| vec![LocalObjectReference { name: s.clone() }]),
        containers: vec![container],
        volumes: counts_attempts.then(|| {
            vec![Volume {
                name: "state".into(),
                empty_dir: Some(EmptyDirVolumeSource {
                    size_limit: Some(Quantity("1Mi".into())),
                    ..Default::default()
                }),
                ..Default::default()
            }]
        }),
        ..PodSpec::default()
    };

    Job {
        metadata: meta(&p.name, Some(&p.namespace), &p.name),
        spec: Some(JobSpec {
            completions: Some(p.completions),
            parallelism: Some(p.parallelism),
            backoff_limit: p.backoff_limit,
            active_deadline_seconds: Some(p.active_deadline_seconds),
            ttl_seconds_after_finished: Some(p.ttl_seconds_after_finished),
            // NonIndexed is the default, and clusters before 1.21 do not
            // know the field at all: written only for Indexed.
            completion_mode: p.indexed().then(|| p.completion_mode.as_str().into()),
            backoff_limit_per_index: p.backoff_limit_per_index,
            max_failed_indexes: p.max_failed_indexes,
            suspend: p.suspend.then_some(true),
            pod_failure_policy: (p.restart_policy == RestartPolicy::Never).then(|| pod_failure_policy(p)),
            success_policy: (!p.success_rules.is_empty()).then(|| SuccessPolicy {
                rules: p
                    .success_rules
                    .iter()
                    .map(|r| SuccessPolicyRule { succeeded_indexes: r.indexes.clone(), succeeded_count: r.count })
                    .collect(),
            }),
            pod_replacement_policy: p.pod_replacement_policy.map(|r| r.as_str().into()),
            managed_by: p.managed_by.clone(),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(labels(&p.name)), ..Default::default() }),
                spec: Some(pod),
            },
            ..JobSpec::default()
        }),
        ..Job::default()
    }
}

/// The worker reaches nothing and serves nothing, so its pods get no traffic
/// at all: both policy types listed with no rule under either denies every
/// connection in and out ("Network Policies", default deny all ingress and
/// all egress), DNS included. Only a cluster whose network plugin enforces
/// NetworkPolicy (Calico, Cilium, ...) acts on it; elsewhere it is inert.
pub fn network_policy(p: &JobParams) -> NetworkPolicy {
    NetworkPolicy {
        metadata: meta(&p.name, Some(&p.namespace), &p.name),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector { match_labels: Some(pod_selector(&p.name)), ..Default::default() }),
            policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
            ingress: None,
            egress: None,
        }),
    }
}

/// A digest names immutable content, so a node that has it need not pull
/// again; a tag can move, so it is pulled every time (as Kubernetes does by
/// default only for `:latest`).
fn pull_policy(p: &JobParams) -> &'static str {
    if p.image.digest.is_some() { "IfNotPresent" } else { "Always" }
}

/// The Job's podFailurePolicy: the user's rules (`--pod-failure-rule`)
/// first, then job-test's own. The first rule that matches a failed pod
/// decides ("Pod failure policy"), so the user's word counts where both
/// match.
pub fn pod_failure_policy(p: &JobParams) -> PodFailurePolicy {
    let mut policy = default_pod_failure_policy();
    policy.rules.splice(0..0, p.pod_failure_rules.iter().map(failure_rule));
    policy
}

fn failure_rule(r: &FailureRule) -> PodFailurePolicyRule {
    let mut rule = PodFailurePolicyRule { action: r.action.as_str().into(), ..Default::default() };
    match &r.on {
        FailureMatch::ExitCodes { container, not_in, values } => {
            rule.on_exit_codes = Some(PodFailurePolicyOnExitCodesRequirement {
                container_name: container.clone(),
                operator: if *not_in { "NotIn" } else { "In" }.into(),
                values: values.clone(),
            });
        }
        FailureMatch::Conditions(patterns) => {
            rule.on_pod_conditions = Some(
                patterns
                    .iter()
                    .map(|(kind, status)| PodFailurePolicyOnPodConditionsPattern {
                        type_: kind.clone(),
                        status: status.clone(),
                    })
                    .collect(),
            );
        }
    }
    rule
}

/// Following "Handling retriable and non-retriable pod failures with Pod
/// failure policy": a configuration error (exit code 2) cannot be fixed by a
/// retry, so it fails the Job at once; a disruption (preemption, eviction,
/// node drain) is not the workload's failure, so it does not count against
/// backoffLimit. Kubernetes allows a podFailurePolicy only with
/// restartPolicy Never.
pub fn default_pod_failure_policy() -> PodFailurePolicy {
    PodFailurePolicy {
        rules: vec![
            PodFailurePolicyRule {
                action: "FailJob".into(),
                on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                    container_name: Some(CONTAINER.into()),
                    operator: "In".into(),
                    values: vec![EXIT_CONFIG],
                }),
                ..Default::default()
            },
            PodFailurePolicyRule {
                action: "Ignore".into(),
                on_pod_conditions: Some(vec![PodFailurePolicyOnPodConditionsPattern {
                    type_: "DisruptionTarget".into(),
                    status: "True".into(),
                }]),
                ..Default::default()
            },
        ],
    }
}

/// A podFailurePolicy rule on the exit codes of any container:
/// `action` when the code is one of `values`.
pub fn exit_code_rule(action: &str, values: Vec<i32>) -> PodFailurePolicyRule {
    PodFailurePolicyRule {
        action: action.into(),
        on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
            container_name: None,
            operator: "In".into(),
            values,
        }),
        on_pod_conditions: None,
    }
}

pub fn service_account(a: &RbacParams) -> ServiceAccount {
    ServiceAccount {
        metadata: meta(&a.service_account, Some(&a.namespace), &a.service_account),
        // The token is in the Secret below, for use outside the cluster; a
        // pod running as this account gets none it did not ask for.
        automount_service_account_token: Some(false),
        ..Default::default()
    }
}

/// A long-lived token Secret, which the token controller fills with `token`,
/// `ca.crt` and `namespace` (the tutorial's java-access-secret).
pub fn token_secret(a: &RbacParams) -> Secret {
    let mut metadata = meta(&a.token_secret, Some(&a.namespace), &a.service_account);
    metadata.annotations =
        Some(BTreeMap::from([("kubernetes.io/service-account.name".into(), a.service_account.clone())]));
    Secret { metadata, type_: Some("kubernetes.io/service-account-token".into()), ..Default::default() }
}

/// The pull secret (`pull_secret`): the Docker config JSON under its one
/// key, labelled as the Job's.
pub fn pull_secret(p: &JobParams, name: &str, docker_config: Vec<u8>) -> Secret {
    Secret {
        metadata: meta(name, Some(&p.namespace), &p.name),
        type_: Some(PULL_SECRET_TYPE.into()),
        data: Some(BTreeMap::from([(PULL_SECRET_KEY.into(), ByteString(docker_config))])),
        ..Default::default()
    }
}

fn rules(a: &RbacParams) -> Vec<PolicyRule> {
    vec![
        PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["pods".into()]),
            verbs: a.pod_verbs.clone(),
            ..Default::default()
        },
        PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["pods/log".into()]),
            verbs: vec!["get".into()],
            ..Default::default()
        },
    ]
}

fn subject(a: &RbacParams) -> Vec<Subject> {
    vec![Subject {
        kind: "ServiceAccount".into(),
        name: a.service_account.clone(),
        namespace: Some(a.namespace.clone()),
        ..Default::default()
    }]
}

fn role_ref(kind: &str, a: &RbacParams) -> RoleRef {
    RoleRef { api_group: "rbac.authorization.k8s.io".into(), kind: kind.into(), name: a.role.clone() }
}

pub fn role(a: &RbacParams) -> Role {
    Role { metadata: meta(&a.role, Some(&a.namespace), &a.service_account), rules: Some(rules(a)) }
}

pub fn role_binding(a: &RbacParams) -> RoleBinding {
    RoleBinding {
        metadata: meta(&a.role_binding, Some(&a.namespace), &a.service_account),
        role_ref: role_ref("Role", a),
        subjects: Some(subject(a)),
    }
}

pub fn cluster_role(a: &RbacParams) -> ClusterRole {
    ClusterRole { metadata: meta(&a.role, None, &a.service_account), rules: Some(rules(a)), ..Default::default() }
}

pub fn cluster_role_binding(a: &RbacParams) -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata: meta(&a.role_binding, None, &a.service_account),
        role_ref: role_ref("ClusterRole", a),
        subjects: Some(subject(a)),
    }
}

#[cfg(test)]
mod tests {
    /// `params` checks a user's rules against the API's limit before the
    /// objects exist, so it holds the count of job-test's own rules.
    #[test]
    fn params_counts_the_rules_job_test_adds() {
        assert_eq!(super::default_pod_failure_policy().rules.len(), super::super::params::OWN_RULES);
    }
}
