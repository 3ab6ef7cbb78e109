//! Rendering for the cluster's Kubernetes version: which Job fields each
//! version takes, in one table, and the rendered objects adapted to it.
//!
//! A field whose feature is not on by default is either unknown to the API
//! server ("field not declared in schema", a 500 on server-side apply) or
//! silently dropped by it (an alpha gate that is off). So what the user asked
//! for is refused before anything is applied, naming the field, the
//! cluster's version and the first version that has it on by default; our
//! own hardening (podFailurePolicy) is dropped with a warning saying what is
//! lost.

use k8s_openapi::api::batch::v1::Job;

use super::Object;
use super::objects;
pub use crate::kube_version::{KubeVersion, NEWEST, OLDEST_TESTED};

/// One Job feature and the versions where its gate is alpha (off by
/// default) and then on by default.
#[derive(Debug, Clone, Copy)]
pub struct Feature {
    /// The field, as the API names it.
    pub field: &'static str,
    /// The feature gate.
    pub gate: &'static str,
    pub alpha: KubeVersion,
    pub on_by_default: KubeVersion,
}

impl Feature {
    /// Whether a cluster of this version has it without a feature gate.
    pub fn on(&self, v: KubeVersion) -> bool {
        v >= self.on_by_default
    }
}

const fn v(minor: u32) -> KubeVersion {
    KubeVersion::new(1, minor)
}

// The stages come from the Kubernetes feature-gate documentation
// ("Feature Gates" and "Feature Gates (removed)" reference pages): the
// release where each gate turned alpha, and where it turned beta and so on
// by default.
pub const TTL_AFTER_FINISHED: Feature =
    Feature { field: "spec.ttlSecondsAfterFinished", gate: "TTLAfterFinished", alpha: v(12), on_by_default: v(21) };
pub const INDEXED_JOB: Feature =
    Feature { field: "spec.completionMode: Indexed", gate: "IndexedJob", alpha: v(21), on_by_default: v(22) };
pub const SUSPEND_JOB: Feature =
    Feature { field: "spec.suspend", gate: "SuspendJob", alpha: v(21), on_by_default: v(22) };
pub const POD_FAILURE_POLICY: Feature =
    Feature { field: "spec.podFailurePolicy", gate: "JobPodFailurePolicy", alpha: v(25), on_by_default: v(26) };
pub const BACKOFF_LIMIT_PER_INDEX: Feature =
    Feature { field: "spec.backoffLimitPerIndex", gate: "JobBackoffLimitPerIndex", alpha: v(28), on_by_default: v(29) };
pub const MAX_FAILED_INDEXES: Feature = Feature { field: "spec.maxFailedIndexes", ..BACKOFF_LIMIT_PER_INDEX };
pub const POD_REPLACEMENT_POLICY: Feature =
    Feature { field: "spec.podReplacementPolicy", gate: "JobPodReplacementPolicy", alpha: v(28), on_by_default: v(29) };
pub const SUCCESS_POLICY: Feature =
    Feature { field: "spec.successPolicy", gate: "JobSuccessPolicy", alpha: v(30), on_by_default: v(31) };
pub const MANAGED_BY: Feature =
    Feature { field: "spec.managedBy", gate: "JobManagedBy", alpha: v(30), on_by_default: v(32) };

/// Every Job feature this tool can write, oldest first.
pub const FEATURES: [Feature; 9] = [
    TTL_AFTER_FINISHED,
    INDEXED_JOB,
    SUSPEND_JOB,
    POD_FAILURE_POLICY,
    BACKOFF_LIMIT_PER_INDEX,
    MAX_FAILED_INDEXES,
    POD_REPLACEMENT_POLICY,
    SUCCESS_POLICY,
    MANAGED_BY,
];

/// Pod disruption conditions: a pod the Eviction API (or preemption, a
/// taint, the pod garbage collector) ends gets `DisruptionTarget` first,
/// which a podFailurePolicy rule can match.
pub const POD_DISRUPTION_CONDITIONS: Feature = Feature {
    field: "pod condition DisruptionTarget",
    gate: "PodDisruptionConditions",
    alpha: v(25),
    on_by_default: v(26),
};
/// Job tracking with finalizers: a pod deleted before it finished (an
/// eviction) is counted as failed. v1.23.0 had it on, its patch releases and
/// 1.24 off again, on by default from 1.25 and GA in 1.26.
pub const JOB_TRACKING_WITH_FINALIZERS: Feature = Feature {
    field: "counting deleted pods as failed",
    gate: "JobTrackingWithFinalizers",
    alpha: v(22),
    on_by_default: v(25),
};

/// The first version whose Eviction API takes policy/v1 (before it,
/// policy/v1beta1; "API-initiated Eviction").
pub const EVICTION_POLICY_V1: KubeVersion = v(22);

/// How the Job controller of a Kubernetes version writes a Job's status at
/// the end of a run, as its source and tests state it
/// (pkg/controller/job/job_controller.go and test/integration/job/job_test.go
/// in kubernetes/kubernetes; CHANGELOG-1.31). The local run follows the
/// rules of the version it is given, so that its answer is that version's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControllerRules {
    pub version: KubeVersion,
    /// A podFailurePolicy FailJob match adds FailureTarget (reason
    /// PodFailurePolicy) and Failed only once the remaining pods are gone;
    /// with the policy itself from 1.26.
    pub failure_target_for_pod_failure_policy: bool,
    /// From 1.31 (with JobPodReplacementPolicy, on since 1.29, or
    /// JobManagedBy) the controller delays the terminal condition until no
    /// pod is still terminating, and says the verdict first: FailureTarget
    /// before Failed for every reason, SuccessCriteriaMet before Complete
    /// (the "delayTerminalCondition" rule; PR 125510).
    pub delayed_terminal_condition: bool,
    /// Complete and SuccessCriteriaMet say `CompletionsReached` when the
    /// completions are reached (from 1.31, PR 126067); before that Complete
    /// has no reason and no message.
    pub completions_reached_reason: bool,
    /// An evicted pod gets DisruptionTarget (reason EvictionByEvictionAPI).
    pub disruption_conditions: bool,
    /// A pod deleted while running (evicted) counts as failed. Before Job
    /// tracking with finalizers the controller counts only the Failed pods
    /// that still exist, and an evicted pod disappears.
    pub counts_deleted_pods: bool,
    /// status.terminating is written (JobPodReplacementPolicy).
    pub reports_terminating: bool,
    /// spec.podReplacementPolicy is honoured: `Failed` holds a terminating
    /// pod's place until it has ended (JobPodReplacementPolicy, on from 1.29).
    pub pod_replacement_policy: bool,
    /// status.failedIndexes is written with backoffLimitPerIndex
    /// (JobBackoffLimitPerIndex, on from 1.29).
    pub writes_failed_indexes: bool,
    /// A failed pod's kubelet sets PodReadyToStartContainers=False
    /// (PodReadyToStartContainersCondition, beta and on from 1.29).
    pub pod_ready_to_start_containers: bool,
}

// Where the versions were read (kubernetes/kubernetes unless named):
// - pkg/controller/job/job_controller.go: `newFailureCondition` makes a
//   FailureTarget instead of Failed while `delayTerminalCondition()`, and
//   `enactJobFinished` waits while pods are still terminating (PR #125510,
//   CHANGELOG-1.31); before 1.31 only a FailJob match goes through
//   FailureTarget. CHANGELOG-1.31 (PR #126067): CompletionsReached; through
//   1.30 Complete is `newCondition(JobComplete, "", "")`.
// - Job tracking with finalizers: `isPodFailed` counts a pod with a deletion
//   timestamp that has not succeeded; 1.20's `getStatus` counts only the
//   pods that still exist with phase Failed, so an evicted (deleted) pod is
//   gone before it counts.
// - The feature-gate pages (kubernetes/website): the gates' stages.

/// The message of SuccessCriteriaMet and Complete with CompletionsReached.
pub const COMPLETIONS_REACHED_MESSAGE: &str = "Reached expected number of succeeded pods";

impl ControllerRules {
    pub fn of(version: KubeVersion) -> ControllerRules {
        ControllerRules {
            version,
            failure_target_for_pod_failure_policy: POD_FAILURE_POLICY.on(version),
            delayed_terminal_condition: version >= v(31),
            completions_reached_reason: version >= v(31),
            disruption_conditions: POD_DISRUPTION_CONDITIONS.on(version),
            counts_deleted_pods: JOB_TRACKING_WITH_FINALIZERS.on(version),
            reports_terminating: POD_REPLACEMENT_POLICY.on(version),
            pod_replacement_policy: POD_REPLACEMENT_POLICY.on(version),
            writes_failed_indexes: BACKOFF_LIMIT_PER_INDEX.on(version),
            pod_ready_to_start_containers: version >= v(29),
        }
    }
}

/// What adapting to a version found: fields refused (the user asked for
/// them) and warnings (what was dropped or may not work).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Adapted {
    pub refused: Vec<String>,
    pub warnings: Vec<String>,
}

impl Adapted {
    /// The refusals as one error, naming the version.
    pub fn into_result(self, version: KubeVersion, source: &str) -> Result<Vec<String>, crate::Error> {
        if self.refused.is_empty() {
            return Ok(self.warnings);
        }
        let n = self.refused.len();
        Err(crate::Error::usage(format!(
            "{n} setting{} that Kubernetes {version} ({source}) cannot take, nothing was rendered or applied:\n  {}",
            if n == 1 { "" } else { "s" },
            self.refused.join("\n  ")
        )))
    }
}

fn refusal(f: &Feature, version: KubeVersion, fix: &str) -> String {
    let stage = if version >= f.alpha {
        format!("has it as alpha, off by default (feature gate {})", f.gate)
    } else {
        "does not have it".to_owned()
    };
    format!("{}: Kubernetes {version} {stage}; it is on by default from {}. {fix}", f.field, f.on_by_default)
}

/// Adapts one Job to a version: fields at their default are not written,
/// our hardening the version cannot take is dropped (with a warning), what
/// the user asked for and the version cannot take is refused.
pub fn adapt_job(job: &mut Job, version: KubeVersion) -> Adapted {
    let mut found = Adapted::default();
    let name = job.metadata.name.clone().unwrap_or_default();
    let Some(spec) = job.spec.as_mut() else { return found };
    if spec.completion_mode.as_deref() == Some("NonIndexed") {
        spec.completion_mode = None;
    }
    if spec.completion_mode.is_some() && !INDEXED_JOB.on(version) {
        found.refused.push(refusal(&INDEXED_JOB, version, "Drop --completion-mode Indexed (and --fail-indexes)."));
    }
    if spec.suspend == Some(true) && !SUSPEND_JOB.on(version) {
        found.refused.push(refusal(&SUSPEND_JOB, version, "Drop --suspend."));
    }
    if spec.backoff_limit_per_index.is_some() && !BACKOFF_LIMIT_PER_INDEX.on(version) {
        found.refused.push(refusal(
            &BACKOFF_LIMIT_PER_INDEX,
            version,
            "Drop --backoff-limit-per-index and use --backoff-limit.",
        ));
    }
    if spec.max_failed_indexes.is_some() && !MAX_FAILED_INDEXES.on(version) {
        found.refused.push(refusal(&MAX_FAILED_INDEXES, version, "Drop --max-failed-indexes."));
    }
    if spec.pod_replacement_policy.is_some() && !POD_REPLACEMENT_POLICY.on(version) {
        found.refused.push(refusal(&POD_REPLACEMENT_POLICY, version, "Drop --pod-replacement-policy."));
    }
    if spec.success_policy.is_some() && !SUCCESS_POLICY.on(version) {
        found.refused.push(refusal(&SUCCESS_POLICY, version, "Drop --success-policy."));
    }
    if spec.managed_by.is_some() && !MANAGED_BY.on(version) {
        found.refused.push(refusal(&MANAGED_BY, version, "Drop --managed-by."));
    }
    if let Some(policy) = &spec.pod_failure_policy
        && !POD_FAILURE_POLICY.on(version)
    {
        let restart_policy = spec.template.spec.as_ref().and_then(|p| p.restart_policy.as_deref());
        let ours = objects::default_pod_failure_policy().rules;
        // The user's --pod-failure-rule rules come before job-test's own.
        let users = policy.rules.len() > ours.len() && policy.rules.ends_with(&ours);
        if users {
            found.refused.push(refusal(
                &POD_FAILURE_POLICY,
                version,
                "Drop --pod-failure-rule (job-test's own policy is then left out with a warning).",
            ));
        } else if restart_policy == Some("Never") && policy.rules == ours {
            spec.pod_failure_policy = None;
            found.warnings.push(format!(
                "job.batch/{name}: spec.podFailurePolicy left out, Kubernetes {version} cannot take it (on by default \
                 from {}): a configuration error (exit code 2) is now retried like any failure until backoffLimit, \
                 and disruptions (eviction, preemption, node drain) count against backoffLimit",
                POD_FAILURE_POLICY.on_by_default
            ));
        } else {
            found.refused.push(refusal(&POD_FAILURE_POLICY, version, "Remove spec.podFailurePolicy from the file."));
        }
    }
    if spec.ttl_seconds_after_finished.is_some() && !TTL_AFTER_FINISHED.on(version) {
        found.warnings.push(format!(
            "job.batch/{name}: spec.ttlSecondsAfterFinished is alpha in Kubernetes {version} (on by default from {}): \
             the finished Job is not deleted unless the cluster runs with --feature-gates={}=true; \
             `cargo xtask delete` removes it",
            TTL_AFTER_FINISHED.on_by_default, TTL_AFTER_FINISHED.gate
        ));
    }
    found
}

/// Adapts every Job among the objects to a version; the rest pass as they
/// are. A version older than the oldest tested gets a warning.
pub fn adapt(objects: &mut [Object], version: KubeVersion) -> Adapted {
    let mut found = Adapted::default();
    if version < OLDEST_TESTED {
        found.warnings.push(format!(
            "Kubernetes {version} is older than {OLDEST_TESTED}, the oldest version job-test is tested against"
        ));
    }
    for object in objects {
        if let Object::Job(job) = object {
            let more = adapt_job(job, version);
            found.refused.extend(more.refused);
            found.warnings.extend(more.warnings);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_from_flags_and_servers() {
        assert_eq!("1.20".parse(), Ok(v(20)));
        assert_eq!("v1.20.2".parse(), Ok(v(20)));
        assert_eq!("1.27.3-gke.100".parse(), Ok(v(27)));
        assert!("twenty".parse::<KubeVersion>().unwrap_err().contains("expected MAJOR.MINOR"));
        let info = |major: &str, minor: &str, git: &str| k8s_openapi::apimachinery::pkg::version::Info {
            major: major.into(),
            minor: minor.into(),
            git_version: git.into(),
            ..Default::default()
        };
        assert_eq!(KubeVersion::from_info(&info("1", "20", "v1.20.2")), Some(v(20)));
        assert_eq!(KubeVersion::from_info(&info("1", "27+", "v1.27.3-eks")), Some(v(27)));
        assert_eq!(KubeVersion::from_info(&info("", "", "v1.29.1")), Some(v(29)));
    }

    #[test]
    fn the_table_is_ordered_and_alpha_comes_before_default() {
        for f in FEATURES {
            assert!(f.alpha < f.on_by_default, "{f:?}");
            assert!(f.on(NEWEST), "{f:?} is not on in the newest version");
        }
        assert!(!TTL_AFTER_FINISHED.on(v(20)) && TTL_AFTER_FINISHED.on(v(21)));
        assert!(!POD_FAILURE_POLICY.on(v(25)) && POD_FAILURE_POLICY.on(v(26)));
    }

    #[test]
    fn controller_rules_change_where_the_controller_changed() {
        let old = ControllerRules::of(v(20));
        assert!(!old.failure_target_for_pod_failure_policy && !old.delayed_terminal_condition);
        assert!(!old.completions_reached_reason && !old.disruption_conditions && !old.counts_deleted_pods);
        let pfp = ControllerRules::of(v(26));
        assert!(pfp.failure_target_for_pod_failure_policy && pfp.disruption_conditions && pfp.counts_deleted_pods);
        assert!(!pfp.delayed_terminal_condition);
        let new = ControllerRules::of(v(31));
        assert!(new.delayed_terminal_condition && new.completions_reached_reason && new.reports_terminating);
        assert!(!ControllerRules::of(v(30)).completions_reached_reason);
        let r = ControllerRules::of(v(28));
        assert!(!r.pod_replacement_policy && !r.writes_failed_indexes && !r.pod_ready_to_start_containers);
        let r = ControllerRules::of(v(29));
        assert!(r.pod_replacement_policy && r.writes_failed_indexes && r.pod_ready_to_start_containers);
        assert!(!ControllerRules::of(v(25)).disruption_conditions && ControllerRules::of(v(25)).counts_deleted_pods);
    }
}
