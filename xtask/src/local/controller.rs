//! The Job controller's rules, as a pure state machine: which pods to
//! start, when a failed container restarts or a failed pod is replaced, and
//! when the Job is done. Each rule follows the Kubernetes documentation
//! page "Jobs" (and "Handling retriable and non-retriable pod failures with
//! Pod failure policy"); the rule is named where it is applied. Time is
//! passed in, so the rules are tested without containers.
//!
//! The rules are those of one Kubernetes version ([`ControllerRules`],
//! from the one version table): which conditions the Job gets and in what
//! order, their reasons, the index strings, when a terminating pod is
//! replaced and whether an evicted pod counts.
//!
//! Pod conditions: a local pod is never preempted, drained or
//! garbage-collected. A failed local pod has what a kubelet of that
//! version gives a pod whose container failed ([`FAILED_POD_CONDITIONS`]);
//! a pod evicted with `run-local --evict` also gets `DisruptionTarget`
//! where the version sets it. `onPodConditions` rules are evaluated
//! against exactly those.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{Job, PodFailurePolicyRule, SuccessPolicyRule};

use crate::manifest::versions::{self, COMPLETIONS_REACHED_MESSAGE, ControllerRules};
use crate::report::job::{JobCondition, JobResult};

/// "Pod backoff failure policy": replacement pods are created after a
/// back-off of 10 s, doubled after each failure, capped at six minutes.
pub fn replacement_backoff(failures: u32) -> Duration {
    backoff(failures, Duration::from_secs(360))
}

/// The kubelet's CrashLoopBackOff for a container restarted in place
/// (restartPolicy OnFailure): 10 s doubling, capped at five minutes.
pub fn restart_backoff(restarts: u32) -> Duration {
    backoff(restarts, Duration::from_secs(300))
}

fn backoff(n: u32, cap: Duration) -> Duration {
    if n == 0 {
        return Duration::ZERO;
    }
    Duration::from_secs(10).saturating_mul(1 << (n - 1).min(16)).min(cap)
}

/// The Job spec fields the controller reads.
#[derive(Debug, Clone)]
pub struct Spec {
    pub completions: u32,
    pub parallelism: u32,
    pub backoff_limit: u32,
    pub on_failure: bool,
    pub indexed: bool,
    pub backoff_limit_per_index: Option<u32>,
    pub max_failed_indexes: Option<u32>,
    pub deadline: Option<Duration>,
    pub rules: Vec<PodFailurePolicyRule>,
    /// spec.successPolicy's rules (Indexed Jobs).
    pub success_rules: Vec<SuccessPolicyRule>,
    /// spec.podReplacementPolicy as written (None: the version's default).
    pub replacement_policy: Option<String>,
    /// The pod's container and namespace, as the policy's messages name them.
    pub container: String,
    pub namespace: String,
}

impl Spec {
    pub fn of(job: &Job) -> Spec {
        let spec = job.spec.clone().unwrap_or_default();
        let pod = spec.template.spec.clone().unwrap_or_default();
        let n = |v: Option<i32>, default: u32| v.map_or(default, |v| v.max(0) as u32);
        let completions = n(spec.completions, 1);
        Spec {
            completions,
            parallelism: n(spec.parallelism, 1),
            // Default 6 ("Pod backoff failure policy"), none with a per-index limit.
            backoff_limit: match (spec.backoff_limit, spec.backoff_limit_per_index) {
                (Some(v), _) => v.max(0) as u32,
                (None, Some(_)) => u32::MAX,
                (None, None) => 6,
            },
            on_failure: pod.restart_policy.as_deref() == Some("OnFailure"),
            indexed: spec.completion_mode.as_deref() == Some("Indexed"),
            backoff_limit_per_index: spec.backoff_limit_per_index.map(|v| v.max(0) as u32),
            max_failed_indexes: spec.max_failed_indexes.map(|v| v.max(0) as u32),
            deadline: spec.active_deadline_seconds.map(|s| Duration::from_secs(s.max(0) as u64)),
            rules: spec.pod_failure_policy.map(|p| p.rules).unwrap_or_default(),
            success_rules: spec.success_policy.map(|p| p.rules).unwrap_or_default(),
            replacement_policy: spec.pod_replacement_policy,
            container: pod.containers.first().map(|c| c.name.clone()).unwrap_or_default(),
            namespace: job.metadata.namespace.clone().unwrap_or_else(|| "default".into()),
        }
    }
}

/// The conditions a kubelet leaves on a pod whose container failed
/// (type, status): scheduled and initialized, no longer ready, and, from
/// kubelet 1.29 (the PodReadyToStartContainersCondition gate, beta and on
/// by default; "Pod Lifecycle", KEP-3085), PodReadyToStartContainers=False
/// once the failed pod's sandbox is torn down. Older kubelets do not set
/// that one (from 1.25 only behind the alpha gate, and named PodHasNetwork
/// before 1.28). Nothing on a local engine adds `DisruptionTarget`
/// (eviction, preemption, a taint, the pod garbage collector) or any other
/// condition.
pub const FAILED_POD_CONDITIONS: [(&str, &str); 5] = [
    ("PodScheduled", "True"),
    ("Initialized", "True"),
    ("Ready", "False"),
    ("ContainersReady", "False"),
    ("PodReadyToStartContainers", "False"),
];

/// Of [`FAILED_POD_CONDITIONS`], the one only kubelets from 1.29 set.
const SINCE_1_29: &str = "PodReadyToStartContainers";

/// The condition an evicted pod gets from the version with pod disruption
/// conditions ("Disruptions" documentation, "Pod disruption conditions":
/// reason EvictionByEvictionAPI for the Eviction API).
pub const DISRUPTION_TARGET: (&str, &str) = ("DisruptionTarget", "True");

/// The conditions of a failed pod under these rules; an evicted one also
/// has DisruptionTarget where the version sets it.
pub fn failed_pod_conditions(rules: &ControllerRules, evicted: bool) -> Vec<(&'static str, &'static str)> {
    let mut conditions: Vec<_> = FAILED_POD_CONDITIONS
        .into_iter()
        .filter(|(kind, _)| rules.pod_ready_to_start_containers || *kind != SINCE_1_29)
        .collect();
    if evicted && rules.disruption_conditions {
        conditions.push(DISRUPTION_TARGET);
    }
    conditions
}

/// What a pod failure policy sees of a failed pod.
#[derive(Debug, Clone, Copy)]
pub struct FailedPod<'a> {
    pub name: &'a str,
    pub container: &'a str,
    pub exit_code: i32,
    pub conditions: &'a [(&'a str, &'a str)],
}

/// "Pod failure policy": the rules are evaluated in order and the first
/// that matches decides; an onPodConditions pattern matches a condition of
/// the same type and status (status defaults to True).
fn condition_matches(rule: &PodFailurePolicyRule, conditions: &[(&str, &str)]) -> Option<String> {
    let patterns = rule.on_pod_conditions.as_ref()?;
    conditions.iter().find_map(|(kind, status)| {
        patterns
            .iter()
            .any(|p| p.type_ == *kind && (if p.status.is_empty() { "True" } else { p.status.as_str() }) == *status)
            .then(|| (*kind).to_owned())
    })
}

/// One thing a local run does not do as a cluster would.
#[derive(Debug)]
pub struct Caveat {
    pub text: String,
    /// About one of job-test's own rules, which every rendered Job carries
    /// (`objects::default_pod_failure_policy`): detail (`--verbose`), not
    /// news, so a run's first lines stay short.
    pub own_rule: bool,
}

/// What a local run cannot do as a cluster would, for the Job's
/// onPodConditions rules: which of them match every failed pod, which only
/// an evicted one (`--evict`) and which none, given the conditions a
/// failed pod has under these rules.
pub fn local_caveats(spec: &Spec, rules: &ControllerRules, evicts: bool) -> Vec<Caveat> {
    let own = crate::manifest::objects::default_pod_failure_policy().rules;
    let failed = failed_pod_conditions(rules, false);
    let have = format!(
        "{}{}",
        failed.iter().map(|(t, s)| format!("{t}={s}")).collect::<Vec<_>>().join(", "),
        if rules.pod_ready_to_start_containers {
            format!(" ({SINCE_1_29} as kubelets from 1.29 set it)")
        } else {
            String::new()
        }
    );
    let evicted = failed_pod_conditions(rules, true);
    spec.rules
        .iter()
        .enumerate()
        .filter(|(_, r)| r.on_pod_conditions.is_some())
        .map(|(i, rule)| {
            let patterns: Vec<String> = rule
                .on_pod_conditions
                .iter()
                .flatten()
                .map(|p| format!("{}={}", p.type_, if p.status.is_empty() { "True" } else { &p.status }))
                .collect();
            let matches = if condition_matches(rule, &failed).is_some() {
                "matches every failed pod, as on a cluster".to_owned()
            } else if condition_matches(rule, &evicted).is_some() {
                if evicts {
                    "matches a pod --evict evicts (DisruptionTarget), as on a cluster".to_owned()
                } else {
                    "matches only an evicted pod (DisruptionTarget): `--evict AFTER` evicts one".to_owned()
                }
            } else if rules.disruption_conditions {
                "never matches here: nothing preempts or drains a local pod".to_owned()
            } else {
                format!(
                    "never matches here: Kubernetes {} sets no DisruptionTarget (pod disruption conditions are on \
                     from 1.26)",
                    rules.version
                )
            };
            let text = format!(
                "podFailurePolicy rule {i} ({}, onPodConditions {}) {matches}; a failed local pod has only {have}",
                rule.action,
                patterns.join(", ")
            );
            Caveat { text, own_rule: own.contains(rule) }
        })
        .collect()
}

/// Whether an onExitCodes requirement matches: only a container that
/// exited non-zero, of the named container if one is named.
fn exit_code_matches(rule: &PodFailurePolicyRule, pod: &FailedPod<'_>) -> bool {
    let Some(on) = &rule.on_exit_codes else { return false };
    if pod.exit_code == 0 || on.container_name.as_deref().is_some_and(|c| c != pod.container) {
        return false;
    }
    let listed = on.values.contains(&pod.exit_code);
    match on.operator.as_str() {
        "In" => listed,
        "NotIn" => !listed,
        _ => false,
    }
}

/// What a pod failure policy rule decided for an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyAction {
    FailJob,
    Ignore,
    Count,
    FailIndex,
}

/// The first rule that matches the failed pod, with the index of the
/// rule and, for FailJob, the message the Job controller writes.
pub fn policy_action(rules: &[PodFailurePolicyRule], namespace: &str, pod: &FailedPod<'_>) -> (PolicyAction, String) {
    for (i, rule) in rules.iter().enumerate() {
        let what = if exit_code_matches(rule, pod) {
            format!(
                "Container {} for pod {namespace}/{} failed with exit code {}",
                pod.container, pod.name, pod.exit_code
            )
        } else if let Some(condition) = condition_matches(rule, pod.conditions) {
            format!("Pod {namespace}/{} has condition {condition}", pod.name)
        } else {
            continue;
        };
        let action = match rule.action.as_str() {
            "FailJob" => PolicyAction::FailJob,
            "Ignore" => PolicyAction::Ignore,
            "FailIndex" => PolicyAction::FailIndex,
            _ => PolicyAction::Count,
        };
        return (action, format!("{what} matching {} rule at index {i}", rule.action));
    }
    (PolicyAction::Count, String::new())
}

/// Completion indexes as the API writes them (`1,3-5,7`), those below
/// `completions` only; None when the text is not of that form.
pub fn parse_indexes(text: &str, completions: u32) -> Option<Vec<u32>> {
    let mut indexes = Vec::new();
    for part in text.split(',') {
        let (first, last) = match part.trim().split_once('-') {
            Some((a, b)) => (a.trim().parse::<u32>().ok()?, b.trim().parse::<u32>().ok()?),
            None => {
                let i = part.trim().parse::<u32>().ok()?;
                (i, i)
            }
        };
        if first > last {
            return None;
        }
        indexes.extend((first..=last.min(completions.saturating_sub(1))).filter(|i| *i < completions));
    }
    indexes.sort_unstable();
    indexes.dedup();
    Some(indexes)
}

/// "Success policy": the rules are evaluated in order; a rule is met when
/// every index it lists succeeded, or when succeededCount of them (of all
/// indexes, when it lists none) did. Returns the index of the rule met.
pub fn success_rule_met(rules: &[SuccessPolicyRule], completions: u32, succeeded: &[u32]) -> Option<usize> {
    if succeeded.is_empty() {
        return None;
    }
    rules.iter().position(|rule| {
        let count = rule.succeeded_count.map(|c| c.max(0) as usize);
        match &rule.succeeded_indexes {
            Some(text) => {
                // A rule whose indexes do not parse is skipped, as the controller does.
                let Some(listed) = parse_indexes(text, completions).filter(|l| !l.is_empty()) else { return false };
                let contained = listed.iter().filter(|i| succeeded.contains(i)).count();
                contained == listed.len() || count.is_some_and(|c| contained >= c)
            }
            None => count.is_some_and(|c| succeeded.len() >= c),
        }
    })
}

/// Indexes as the API writes completedIndexes and failedIndexes: sorted
/// intervals, `first-last` for three or more in a row, a pair as `a,b`
/// (pkg/controller/job/indexed_job_utils.go, `orderedIntervals.String`).
pub fn index_ranges(indexes: &[u32]) -> String {
    let mut sorted = indexes.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut intervals: Vec<(u32, u32)> = Vec::new();
    for i in sorted {
        match intervals.last_mut() {
            Some((_, last)) if *last + 1 == i => *last = i,
            _ => intervals.push((i, i)),
        }
    }
    intervals
        .iter()
        .map(|&(first, last)| match last - first {
            0 => first.to_string(),
            1 => format!("{first},{last}"),
            _ => format!("{first}-{last}"),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// How the Job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub result: JobResult,
    pub reason: String,
    pub message: String,
}

impl Finished {
    fn failed(reason: &str, message: &str) -> Finished {
        Finished { result: JobResult::Failed, reason: reason.into(), message: message.into() }
    }

    fn complete(reason: &str, message: &str) -> Finished {
        Finished { result: JobResult::Complete, reason: reason.into(), message: message.into() }
    }

    /// The report's reason: a Complete without one (before 1.31) reads
    /// `Complete`, as `watch` reports it.
    pub fn report_reason(&self) -> String {
        if self.reason.is_empty() { "Complete".into() } else { self.reason.clone() }
    }
}

/// The reason of FailureTarget and Failed for a FailJob rule.
pub const POD_FAILURE_POLICY: &str = "PodFailurePolicy";

/// The reason of SuccessCriteriaMet and of the Complete that follows it.
pub const SUCCESS_POLICY: &str = "SuccessPolicy";

/// What became of an evicted pod, for its row in the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eviction {
    pub counted: bool,
    pub note: String,
}

/// The controller's counts, as a Job's status has them.
#[derive(Debug, Clone)]
pub struct Controller {
    pub spec: Spec,
    pub rules: ControllerRules,
    /// Active pods: name -> (completion index, container restarts).
    pub active: BTreeMap<String, (Option<u32>, u32)>,
    /// Pods being terminated (evicted) and not yet ended: name -> index.
    pub terminating: BTreeMap<String, Option<u32>>,
    pub succeeded: u32,
    pub failed: u32,
    /// Indexes that succeeded; failures counted per index; failed indexes.
    pub succeeded_indexes: Vec<u32>,
    pub index_failures: BTreeMap<u32, u32>,
    pub failed_indexes: Vec<u32>,
    /// Failures since the last success, for the replacement back-off.
    pub recent_failures: u32,
    pub finished: Option<Finished>,
    /// Evicted pods that ended, and whether they counted.
    pub evictions: BTreeMap<String, Eviction>,
}

impl Controller {
    /// The controller of a Kubernetes version: `ControllerRules::of(version)`.
    pub fn with_rules(spec: Spec, rules: ControllerRules) -> Controller {
        Controller {
            spec,
            rules,
            active: BTreeMap::new(),
            terminating: BTreeMap::new(),
            succeeded: 0,
            failed: 0,
            succeeded_indexes: Vec::new(),
            index_failures: BTreeMap::new(),
            failed_indexes: Vec::new(),
            recent_failures: 0,
            finished: None,
            evictions: BTreeMap::new(),
        }
    }

    fn spec(&self) -> &Spec {
        &self.spec
    }

    /// The podReplacementPolicy in force: as written, else the default
    /// (batch/v1 defaults.go: `Failed` with a podFailurePolicy, otherwise
    /// `TerminatingOrFailed`); None where the version has no such field
    /// (a pod being deleted is no longer active and is replaced at once,
    /// as TerminatingOrFailed does).
    pub fn replacement_policy(&self) -> Option<&str> {
        if !self.rules.pod_replacement_policy {
            return None;
        }
        Some(match self.spec.replacement_policy.as_deref() {
            Some(p) => p,
            None if !self.spec.rules.is_empty() => "Failed",
            None => "TerminatingOrFailed",
        })
    }

    /// Whether terminating pods hold their place until they have ended
    /// (podReplacementPolicy Failed: job_controller.go's manageJob creates
    /// `wantActive - terminating - active` pods).
    fn terminating_blocks(&self) -> bool {
        self.replacement_policy() == Some("Failed")
    }

    /// The indexes (or, NonIndexed, `None`s) of the pods to create now:
    /// never more active than parallelism, never more than still needed
    /// ("Controlling parallelism").
    pub fn to_start(&self) -> Vec<Option<u32>> {
        if self.finished.is_some() {
            return Vec::new();
        }
        let spec = self.spec();
        let held = if self.terminating_blocks() { self.terminating.len() as u32 } else { 0 };
        let room = spec.parallelism.saturating_sub(self.active.len() as u32 + held);
        if spec.indexed {
            let mut busy: Vec<u32> = self.active.values().filter_map(|(i, _)| *i).collect();
            if self.terminating_blocks() {
                busy.extend(self.terminating.values().flatten());
            }
            (0..spec.completions)
                .filter(|i| {
                    !self.succeeded_indexes.contains(i) && !self.failed_indexes.contains(i) && !busy.contains(i)
                })
                .take(room as usize)
                .map(Some)
                .collect()
        } else {
            let needed = spec.completions.saturating_sub(self.succeeded + self.active.len() as u32 + held);
            vec![None; room.min(needed) as usize]
        }
    }

    /// The attempt number a new pod for this index sees
    /// (JOB_INDEX_FAILURE_COUNT, with backoffLimitPerIndex).
    pub fn index_failure_count(&self, index: Option<u32>) -> u32 {
        index.and_then(|i| self.index_failures.get(&i).copied()).unwrap_or(0)
    }

    pub fn started(&mut self, pod: &str, index: Option<u32>) {
        self.active.insert(pod.to_owned(), (index, 0));
    }

    /// The pod is evicted (the Eviction API: a graceful delete). It is no
    /// longer active. Where the controller counts a deleted pod as failed
    /// as soon as it has a deletion timestamp (`isPodFailed` with finalizer
    /// tracking, when neither a podFailurePolicy nor podReplacementPolicy
    /// Failed makes it wait for the Failed phase) it counts now; otherwise
    /// when it has ended (`exited`). Returns false when the pod is not active.
    pub fn evicted(&mut self, pod: &str) -> bool {
        if self.finished.is_some() {
            return false;
        }
        let Some((index, _)) = self.active.remove(pod) else { return false };
        self.terminating.insert(pod.to_owned(), index);
        if self.rules.counts_deleted_pods && self.spec.rules.is_empty() && !self.terminating_blocks() {
            self.evicted_pod_ended(pod, index, 143);
        }
        true
    }

    /// A container run ended with `exit_code`. Returns whether the
    /// container restarts in place (OnFailure) rather than its pod ending.
    /// A failed pod has the conditions of [`failed_pod_conditions`].
    pub fn exited(&mut self, pod: &str, exit_code: i32) -> bool {
        if let Some(index) = self.terminating.remove(pod) {
            if self.evictions.contains_key(pod) {
                // Counted (or not) when it was deleted.
                return false;
            }
            if exit_code == 0 {
                // It succeeded before the signal took effect: a success.
                self.active.insert(pod.to_owned(), (index, 0));
            } else {
                self.evicted_pod_ended(pod, index, exit_code);
                return false;
            }
        }
        let Some(&(index, _)) = self.active.get(pod) else { return false };
        if exit_code == 0 {
            self.active.remove(pod);
            self.succeeded += 1;
            self.recent_failures = 0;
            if let Some(i) = index
                && !self.succeeded_indexes.contains(&i)
            {
                self.succeeded_indexes.push(i);
            }
            self.check_done();
            return false;
        }
        if self.spec.on_failure {
            // The container restarts in its pod; the restart counts once it
            // happens (`restarted`).
            return true;
        }
        self.active.remove(pod);
        let conditions = failed_pod_conditions(&self.rules, false);
        self.pod_failed(pod, index, exit_code, &conditions);
        false
    }

    /// An evicted pod's container ended (SIGTERM, 143; or SIGKILL after the
    /// grace period). Before Job tracking with finalizers the controller
    /// counts only pods it sees Failed, and the evicted pod is deleted:
    /// not counted. From then on it is a failed pod with DisruptionTarget
    /// (from 1.26), and the pod failure policy decides as for any other.
    fn evicted_pod_ended(&mut self, pod: &str, index: Option<u32>, exit_code: i32) {
        if !self.rules.counts_deleted_pods {
            self.evictions.insert(
                pod.to_owned(),
                Eviction {
                    counted: false,
                    note: format!(
                        "not counted: Kubernetes {}'s Job controller counts only failed pods it still sees, and an \
                         evicted pod is deleted (deleted pods count from {}, Job tracking with finalizers)",
                        self.rules.version,
                        versions::JOB_TRACKING_WITH_FINALIZERS.on_by_default
                    ),
                },
            );
            self.check_done();
            return;
        }
        let conditions = failed_pod_conditions(&self.rules, true);
        let failed_before = self.failed;
        let (action, message) = self.pod_failed(pod, index, exit_code, &conditions);
        let condition =
            if self.rules.disruption_conditions { "DisruptionTarget (EvictionByEvictionAPI); " } else { "" };
        let note = match action {
            PolicyAction::Ignore => format!("{condition}not counted: {message}"),
            _ if self.failed == failed_before => format!("{condition}not counted"),
            PolicyAction::Count if message.is_empty() => format!("{condition}counted as a failed pod"),
            _ => format!("{condition}counted: {message}"),
        };
        self.evictions.insert(pod.to_owned(), Eviction { counted: self.failed > failed_before, note });
    }

    /// A pod failed with these conditions: the pod failure policy decides
    /// ("Pod failure policy"), else it counts against backoffLimit (and
    /// its index's backoffLimitPerIndex).
    fn pod_failed(
        &mut self,
        pod: &str,
        index: Option<u32>,
        exit_code: i32,
        conditions: &[(&str, &str)],
    ) -> (PolicyAction, String) {
        let spec = self.spec.clone();
        let failed_pod = FailedPod { name: pod, container: &spec.container, exit_code, conditions };
        let (action, message) = policy_action(&spec.rules, &spec.namespace, &failed_pod);
        match action {
            PolicyAction::FailJob => {
                self.failed += 1;
                if self.finished.is_none() {
                    self.finished = Some(Finished::failed(POD_FAILURE_POLICY, &message));
                }
                return (action, message);
            }
            PolicyAction::Ignore => {
                self.check_done();
                return (action, message);
            }
            PolicyAction::FailIndex => {
                self.failed += 1;
                if let Some(i) = index {
                    self.failed_indexes.push(i);
                }
            }
            PolicyAction::Count => {
                self.failed += 1;
                self.recent_failures += 1;
                if let (Some(i), Some(limit)) = (index, spec.backoff_limit_per_index) {
                    let failures = self.index_failures.entry(i).or_default();
                    *failures += 1;
                    if *failures > limit {
                        self.failed_indexes.push(i);
                    }
                }
            }
        }
        self.check_failed();
        self.check_done();
        (action, message)
    }

    /// A container restarted in place (OnFailure): "the Job fails when the
    /// restarts of its active pods reach backoffLimit".
    pub fn restarted(&mut self, pod: &str) {
        if let Some((_, restarts)) = self.active.get_mut(pod) {
            *restarts += 1;
        }
        let restarts: u32 = self.active.values().map(|(_, r)| r).sum();
        let limit = self.spec().backoff_limit;
        if self.finished.is_none() && (restarts >= limit && (limit > 0 || restarts > 0)) {
            self.finished =
                Some(Finished::failed("BackoffLimitExceeded", "Job has reached the specified backoff limit"));
        }
    }

    /// activeDeadlineSeconds passed: "all of its running Pods are
    /// terminated and the Job status will become type: Failed with reason:
    /// DeadlineExceeded".
    pub fn deadline_passed(&mut self) {
        if self.finished.is_none() {
            self.finished = Some(Finished::failed("DeadlineExceeded", "Job was active longer than specified deadline"));
        }
    }

    /// A finished Job's active pods are terminated: a failed Job's count
    /// as failed; those a success policy ends are removed, not counted
    /// ("Success policy": once SuccessCriteriaMet is added "the lingering
    /// pods are removed"). The Job controller's rule, in
    /// pkg/controller/job/job_controller.go, trackJobStatusAndRemoveFinalizers:
    /// a pod that has not succeeded is added to the failed count when
    /// `considerPodFailed || (finishedCondition != nil &&
    /// !isSuccessCriteriaMetCondition(finishedCondition))`. In the sync that
    /// finds the criteria met, the lingering pods are still running (not
    /// failed) and the condition is SuccessCriteriaMet, so they are not
    /// counted, and their tracking finalizers are removed in that same sync
    /// (canRemoveFinalizer: the Job has a finished condition), so no later
    /// sync counts them when they end. Any other finish (BackoffLimitExceeded,
    /// DeadlineExceeded, a FailJob rule) counts them as failed. So did the
    /// controller before finalizers (1.20's syncJob: on a failure it
    /// deletes the active pods and writes `failed += active`), so the count
    /// is the same on every version. Pods already terminating (evicted) are
    /// stopped too and counted by neither: 1.20's `active` leaves them out.
    pub fn terminated_active(&mut self) -> Vec<String> {
        let pods: Vec<String> = self.active.keys().cloned().collect();
        if self.finished.as_ref().is_none_or(|f| f.result == JobResult::Failed) {
            self.failed += pods.len() as u32;
        }
        self.active.clear();
        pods.into_iter().chain(std::mem::take(&mut self.terminating).into_keys()).collect()
    }

    /// The condition added when the Job's fate is decided, before the
    /// lingering pods are terminated: FailureTarget for a FailJob match
    /// from 1.26 and for every failure from 1.31; SuccessCriteriaMet for a
    /// success policy, and for every success from 1.31 (job_controller.go,
    /// `newFailureCondition` / `newSuccessCondition` with
    /// `delayTerminalCondition`).
    pub fn interim_condition(&self) -> Option<JobCondition> {
        let f = self.finished.as_ref()?;
        let kind = match f.result {
            JobResult::Failed
                if self.rules.delayed_terminal_condition
                    || (f.reason == POD_FAILURE_POLICY && self.rules.failure_target_for_pod_failure_policy) =>
            {
                "FailureTarget"
            }
            JobResult::Complete if self.rules.delayed_terminal_condition || f.reason == SUCCESS_POLICY => {
                "SuccessCriteriaMet"
            }
            _ => return None,
        };
        Some(JobCondition::new(kind, &f.reason, &f.message))
    }

    /// The Job's conditions in the order the controller adds them: the
    /// interim one, if any, then Complete or Failed with the same reason
    /// and message.
    pub fn conditions(&self) -> Vec<JobCondition> {
        let Some(f) = &self.finished else { return Vec::new() };
        let terminal = match f.result {
            JobResult::Complete => "Complete",
            JobResult::Failed => "Failed",
        };
        self.interim_condition().into_iter().chain([JobCondition::new(terminal, &f.reason, &f.message)]).collect()
    }

    /// status.completedIndexes of an Indexed Job (empty: omitted, as the
    /// API omits an empty string).
    pub fn completed_indexes(&self) -> Option<String> {
        Some(index_ranges(&self.succeeded_indexes)).filter(|s| self.spec.indexed && !s.is_empty())
    }

    /// status.failedIndexes, written (empty too) only with
    /// backoffLimitPerIndex on a version that has it.
    pub fn failed_indexes(&self) -> Option<String> {
        (self.spec.indexed && self.spec.backoff_limit_per_index.is_some() && self.rules.writes_failed_indexes)
            .then(|| index_ranges(&self.failed_indexes))
    }

    /// status.terminating when the terminal condition is written, where
    /// the version has the field: 0 from 1.31 (the terminal condition
    /// waits for them), else the pods still being terminated then.
    pub fn terminating_at_end(&self, lingering: usize) -> Option<i32> {
        self.rules.reports_terminating.then_some(if self.rules.delayed_terminal_condition {
            0
        } else {
            lingering as i32
        })
    }

    fn check_failed(&mut self) {
        let spec = self.spec().clone();
        if self.finished.is_some() {
            return;
        }
        // 1.20's trigger (previous requeues + 1 > backoffLimit) is not
        // confirmed; the failed count's (`failed > backoffLimit`, 1.21 on)
        // is used for every version.
        if let Some(max) = spec.max_failed_indexes
            && self.failed_indexes.len() as u32 > max
        {
            self.finished = Some(Finished::failed(
                "MaxFailedIndexesExceeded",
                "Job has exceeded the specified maximal number of failed indexes",
            ));
        } else if self.failed > spec.backoff_limit {
            self.finished =
                Some(Finished::failed("BackoffLimitExceeded", "Job has reached the specified backoff limit"));
        }
    }

    /// Complete's reason and message for a Job that reached its
    /// completions: CompletionsReached from 1.31, none before.
    fn completions_reached(&self) -> Finished {
        if self.rules.completions_reached_reason {
            Finished::complete("CompletionsReached", COMPLETIONS_REACHED_MESSAGE)
        } else {
            Finished::complete("", "")
        }
    }

    fn check_done(&mut self) {
        if self.finished.is_some() {
            return;
        }
        let spec = self.spec().clone();
        if spec.indexed {
            let settled = self.succeeded_indexes.len() + self.failed_indexes.len();
            let all_settled = settled as u32 >= spec.completions && self.active.is_empty();
            // The failure rules come before the success policy ("Success
            // policy": a Job meeting a terminating policy ignores it), and
            // the success policy before the completions.
            if all_settled && !self.failed_indexes.is_empty() {
                self.finished = Some(Finished::failed("FailedIndexes", "Job has failed indexes"));
            } else if let Some(rule) = success_rule_met(&spec.success_rules, spec.completions, &self.succeeded_indexes)
            {
                self.finished = Some(Finished::complete(SUCCESS_POLICY, &format!("Matched rules at index {rule}")));
            } else if all_settled {
                self.finished = Some(self.completions_reached());
            }
        } else if self.succeeded >= spec.completions {
            self.finished = Some(self.completions_reached());
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::batch::v1::{PodFailurePolicyOnExitCodesRequirement, PodFailurePolicyOnPodConditionsPattern};

    use super::*;

    fn spec(completions: u32, parallelism: u32, backoff_limit: u32) -> Spec {
        Spec {
            completions,
            parallelism,
            backoff_limit,
            on_failure: false,
            indexed: false,
            backoff_limit_per_index: None,
            max_failed_indexes: None,
            deadline: None,
            rules: Vec::new(),
            success_rules: Vec::new(),
            replacement_policy: None,
            container: "job-test".into(),
            namespace: "job-test".into(),
        }
    }

    fn indexed(completions: u32, parallelism: u32, success_rules: Vec<SuccessPolicyRule>) -> Spec {
        Spec { indexed: true, success_rules, ..spec(completions, parallelism, 6) }
    }

    fn success_rule(indexes: Option<&str>, count: Option<i32>) -> SuccessPolicyRule {
        SuccessPolicyRule { succeeded_indexes: indexes.map(Into::into), succeeded_count: count }
    }

    fn newest() -> ControllerRules {
        ControllerRules::of(versions::NEWEST)
    }

    fn rules_of(minor: u32) -> ControllerRules {
        ControllerRules::of(versions::KubeVersion::new(1, minor))
    }

    fn failed(exit_code: i32) -> FailedPod<'static> {
        FailedPod { name: "p", container: "job-test", exit_code, conditions: &FAILED_POD_CONDITIONS }
    }

    #[test]
    fn back_offs_double_from_ten_seconds_to_their_caps() {
        let secs = |d: Duration| d.as_secs();
        assert_eq!((1..=7).map(|n| secs(replacement_backoff(n))).collect::<Vec<_>>(), [10, 20, 40, 80, 160, 320, 360]);
        assert_eq!(secs(restart_backoff(6)), 300);
        assert_eq!(replacement_backoff(0), Duration::ZERO);
    }

    #[test]
    fn never_more_active_than_parallelism_nor_than_still_needed() {
        let mut c = Controller::with_rules(spec(5, 2, 3), newest());
        assert_eq!(c.to_start().len(), 2);
        c.started("a", None);
        c.started("b", None);
        assert!(c.to_start().is_empty());
        c.exited("a", 0);
        c.exited("b", 0);
        c.started("c", None);
        c.started("d", None);
        c.exited("c", 0);
        // 3 succeeded, 1 active: 1 more needed.
        assert_eq!(c.to_start().len(), 1);
        c.started("e", None);
        c.exited("d", 0);
        c.exited("e", 0);
        assert_eq!(c.finished.as_ref().unwrap().result, JobResult::Complete);
        assert!(c.to_start().is_empty());
    }

    #[test]
    fn never_fails_when_failed_pods_exceed_the_backoff_limit() {
        let mut c = Controller::with_rules(spec(1, 1, 2), newest());
        for (n, pod) in ["a", "b", "c"].iter().enumerate() {
            assert!(c.finished.is_none(), "after {n} failures");
            c.started(pod, None);
            assert!(!c.exited(pod, 1));
        }
        assert_eq!(c.failed, 3);
        assert_eq!(c.finished.unwrap().reason, "BackoffLimitExceeded");
    }

    #[test]
    fn on_failure_fails_when_restarts_of_active_pods_reach_the_limit() {
        let mut c = Controller::with_rules(Spec { on_failure: true, ..spec(1, 1, 2) }, newest());
        c.started("a", None);
        assert!(c.exited("a", 1), "restarts in place");
        c.restarted("a");
        assert!(c.finished.is_none());
        assert!(c.exited("a", 1));
        c.restarted("a");
        assert_eq!(c.finished.as_ref().unwrap().reason, "BackoffLimitExceeded");
        assert_eq!(c.terminated_active(), ["a"]);
        assert_eq!(c.failed, 1);
    }

    #[test]
    fn a_fail_job_rule_ends_the_job_at_once_and_ignore_does_not_count() {
        let rule = crate::manifest::objects::exit_code_rule;
        let rules = vec![rule("FailJob", vec![2]), rule("Ignore", vec![42])];
        let action = |code| policy_action(&rules, "job-test", &failed(code)).0;
        assert_eq!(action(2), PolicyAction::FailJob);
        assert_eq!(action(42), PolicyAction::Ignore);
        assert_eq!(action(1), PolicyAction::Count);

        let mut c = Controller::with_rules(Spec { rules, ..spec(1, 1, 6) }, newest());
        c.started("a", None);
        c.exited("a", 42);
        assert_eq!((c.failed, c.finished.is_none()), (0, true));
        c.started("b", None);
        c.exited("b", 2);
        let finished = c.finished.unwrap();
        assert_eq!(finished.reason, "PodFailurePolicy");
        // The Job controller's own message.
        assert_eq!(
            finished.message,
            "Container job-test for pod job-test/b failed with exit code 2 matching FailJob rule at index 0"
        );
    }

    fn condition_rule(action: &str, kind: &str, status: &str) -> PodFailurePolicyRule {
        PodFailurePolicyRule {
            action: action.into(),
            on_exit_codes: None,
            on_pod_conditions: Some(vec![PodFailurePolicyOnPodConditionsPattern {
                type_: kind.into(),
                status: status.into(),
            }]),
        }
    }

    #[test]
    fn on_pod_conditions_see_only_the_conditions_a_failed_local_pod_has() {
        // Nothing evicts a local pod: a DisruptionTarget rule never matches
        // and the failure counts.
        let rules = vec![condition_rule("Ignore", "DisruptionTarget", "True")];
        assert_eq!(policy_action(&rules, "ns", &failed(1)).0, PolicyAction::Count);
        // A failed pod is not Ready, locally as on a cluster: this rule
        // matches every failed pod. Status defaults to True when empty.
        let rules = vec![condition_rule("FailJob", "Ready", "True"), condition_rule("FailJob", "Ready", "False")];
        assert_eq!(
            policy_action(&rules, "ns", &failed(1)),
            (PolicyAction::FailJob, "Pod ns/p has condition Ready matching FailJob rule at index 1".into())
        );
        let rules = vec![condition_rule("Ignore", "PodScheduled", "")];
        assert_eq!(policy_action(&rules, "ns", &failed(1)).0, PolicyAction::Ignore);
        // A 1.29 kubelet marks a failed pod's torn-down sandbox.
        let rules = vec![condition_rule("Ignore", "PodReadyToStartContainers", "False")];
        assert_eq!(policy_action(&rules, "ns", &failed(1)).0, PolicyAction::Ignore);
        let rules = vec![condition_rule("Ignore", "PodReadyToStartContainers", "True")];
        assert_eq!(policy_action(&rules, "ns", &failed(1)).0, PolicyAction::Count);
        // Rules in order: an exit-code rule before a condition rule wins.
        let by_code = PodFailurePolicyRule {
            action: "Count".into(),
            on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                container_name: None,
                operator: "NotIn".into(),
                values: vec![42],
            }),
            on_pod_conditions: None,
        };
        let rules = vec![by_code, condition_rule("FailJob", "Initialized", "True")];
        assert_eq!(policy_action(&rules, "ns", &failed(1)).0, PolicyAction::Count);
        assert_eq!(policy_action(&rules, "ns", &failed(42)).0, PolicyAction::FailJob);
    }

    #[test]
    fn the_run_says_which_condition_rules_can_match_locally() {
        let rules =
            vec![condition_rule("Ignore", "DisruptionTarget", "True"), condition_rule("FailJob", "Ready", "False")];
        let job = Spec { rules, ..spec(1, 1, 6) };
        let texts = |c: Vec<Caveat>| c.into_iter().map(|c| c.text).collect::<Vec<_>>();
        let said = local_caveats(&job, &newest(), false);
        // The first is job-test's own DisruptionTarget rule, said with --verbose only.
        assert_eq!(said.iter().map(|c| c.own_rule).collect::<Vec<_>>(), [true, false]);
        let caveats = texts(said);
        assert_eq!(caveats.len(), 2);
        assert!(
            caveats[0].starts_with(
                "podFailurePolicy rule 0 (Ignore, onPodConditions DisruptionTarget=True) matches only an evicted pod \
                 (DisruptionTarget): `--evict AFTER` evicts one"
            ),
            "{}",
            caveats[0]
        );
        assert!(local_caveats(&job, &newest(), true)[0].text.contains("matches a pod --evict evicts"));
        // 1.25 sets no DisruptionTarget, nor does a 1.25 kubelet set PodReadyToStartContainers.
        let old = texts(local_caveats(&job, &rules_of(25), true));
        assert!(old[0].contains("never matches here: Kubernetes 1.25 sets no DisruptionTarget"), "{}", old[0]);
        assert!(old[1].ends_with("ContainersReady=False"), "{}", old[1]);
        assert!(
            caveats[1].contains("rule 1 (FailJob, onPodConditions Ready=False) matches every failed pod"),
            "{}",
            caveats[1]
        );
        assert!(
            caveats[1].ends_with(
                "a failed local pod has only PodScheduled=True, Initialized=True, Ready=False, ContainersReady=False, \
                 PodReadyToStartContainers=False (PodReadyToStartContainers as kubelets from 1.29 set it)"
            ),
            "{}",
            caveats[1]
        );
        assert!(local_caveats(&spec(1, 1, 6), &newest(), true).is_empty());
    }

    #[test]
    fn an_exit_code_rule_for_another_container_does_not_match() {
        let rule = PodFailurePolicyRule {
            action: "FailJob".into(),
            on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                container_name: Some("sidecar".into()),
                operator: "In".into(),
                values: vec![1],
            }),
            on_pod_conditions: None,
        };
        assert_eq!(policy_action(&[rule], "ns", &failed(1)).0, PolicyAction::Count);
    }

    #[test]
    fn succeeded_indexes_parse_as_the_api_writes_them() {
        assert_eq!(parse_indexes("1,3-5,7", 10), Some(vec![1, 3, 4, 5, 7]));
        assert_eq!(parse_indexes("0-20", 3), Some(vec![0, 1, 2]));
        assert_eq!(parse_indexes("5-3", 10), None);
        assert_eq!(parse_indexes("one", 10), None);
    }

    #[test]
    fn a_success_rule_is_met_by_its_indexes_or_by_its_count() {
        let met = |rules: &[SuccessPolicyRule], succeeded: &[u32]| success_rule_met(rules, 10, succeeded);
        // Only indexes: all of them.
        let rules = [success_rule(Some("0,2"), None)];
        assert_eq!(met(&rules, &[0, 1]), None);
        assert_eq!(met(&rules, &[2, 0]), Some(0));
        // Only a count: of any indexes.
        let rules = [success_rule(None, Some(2))];
        assert_eq!(met(&rules, &[7]), None);
        assert_eq!(met(&rules, &[7, 9]), Some(0));
        // Both: the API reference's example, "1-4" with count 3 and indexes
        // 1, 3, 5 succeeded, is not met; a third of 1-4 meets it.
        let rules = [success_rule(Some("1-4"), Some(3))];
        assert_eq!(met(&rules, &[1, 3, 5]), None);
        assert_eq!(met(&rules, &[1, 3, 5, 4]), Some(0));
        // In order; the first met is named.
        let rules = [success_rule(Some("9"), None), success_rule(None, Some(1))];
        assert_eq!(met(&rules, &[9]), Some(0));
        assert_eq!(met(&rules, &[3]), Some(1));
        assert_eq!(met(&rules, &[]), None);
    }

    #[test]
    fn a_met_success_policy_completes_the_job_and_ends_the_lingering_pods() {
        let mut c = Controller::with_rules(indexed(4, 4, vec![success_rule(Some("0"), None)]), newest());
        for (pod, i) in [("a", 0), ("b", 1), ("c", 2), ("d", 3)] {
            c.started(pod, Some(i));
        }
        c.exited("b", 0);
        assert!(c.finished.is_none(), "index 1 is not the leader");
        c.exited("c", 1);
        c.exited("a", 0);
        let finished = c.finished.clone().unwrap();
        assert_eq!(
            (finished.result, finished.reason.as_str(), finished.message.as_str()),
            (JobResult::Complete, "SuccessPolicy", "Matched rules at index 0")
        );
        assert_eq!(c.interim_condition().map(|c| c.kind), Some("SuccessCriteriaMet".into()));
        assert!(c.to_start().is_empty(), "index 2 failed but is not retried");
        assert_eq!(c.terminated_active(), ["d"]);
        // The lingering pod is removed, not a failure.
        assert_eq!((c.succeeded, c.failed), (2, 1));
    }

    #[test]
    fn failing_rules_come_before_the_success_policy() {
        // Index 1 exhausts its per-index limit; index 0 then succeeds and
        // settles the Job: FailedIndexes, although a count of 1 is met.
        let mut c = Controller::with_rules(
            Spec {
                backoff_limit_per_index: Some(0),
                backoff_limit: u32::MAX,
                ..indexed(2, 2, vec![success_rule(None, Some(1))])
            },
            newest(),
        );
        c.started("a", Some(0));
        c.started("b", Some(1));
        c.exited("b", 1);
        assert!(c.finished.is_none());
        c.exited("a", 0);
        assert_eq!(c.finished.unwrap().reason, "FailedIndexes");
        // Without a success policy an Indexed Job completes as before.
        let mut c = Controller::with_rules(indexed(1, 1, Vec::new()), newest());
        c.started("a", Some(0));
        c.exited("a", 0);
        assert_eq!(c.finished.as_ref().map(|f| f.reason.as_str()), Some("CompletionsReached"));
        assert_eq!(c.completed_indexes().as_deref(), Some("0"));
        assert_eq!(c.failed_indexes(), None, "no backoffLimitPerIndex, no failedIndexes");
    }

    #[test]
    fn indexed_jobs_need_every_index_and_per_index_limits_fail_indexes() {
        let mut c = Controller::with_rules(
            Spec { indexed: true, backoff_limit_per_index: Some(1), backoff_limit: u32::MAX, ..spec(3, 3, 0) },
            newest(),
        );
        assert_eq!(c.to_start(), [Some(0), Some(1), Some(2)]);
        c.started("a", Some(0));
        c.started("b", Some(1));
        c.started("c", Some(2));
        c.exited("a", 0);
        c.exited("b", 1);
        assert_eq!(c.to_start(), [Some(1)]);
        assert_eq!(c.index_failure_count(Some(1)), 1);
        c.started("d", Some(1));
        c.exited("d", 1);
        assert_eq!(c.failed_indexes, [1]);
        c.exited("c", 0);
        assert_eq!((c.completed_indexes().as_deref(), c.failed_indexes().as_deref()), (Some("0,2"), Some("1")));
        assert_eq!(sequence(&c), seq(&[("FailureTarget", "FailedIndexes"), ("Failed", "FailedIndexes")]));
    }

    /// (type, reason) of the Job's conditions, in order.
    fn sequence(c: &Controller) -> Vec<(String, String)> {
        c.conditions().into_iter().map(|c| (c.kind, c.reason)).collect()
    }

    fn seq(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, r)| ((*k).to_owned(), (*r).to_owned())).collect()
    }

    #[test]
    fn a_completed_job_gets_the_conditions_of_its_version() {
        let done = |r: ControllerRules| {
            let mut c = Controller::with_rules(spec(1, 1, 6), r);
            c.started("a", None);
            c.exited("a", 0);
            c
        };
        // Through 1.30: Complete alone, no reason, no message.
        for minor in [20, 26, 30] {
            let c = done(rules_of(minor));
            assert_eq!(sequence(&c), seq(&[("Complete", "")]), "1.{minor}");
            assert_eq!(c.conditions()[0].message, "");
        }
        // From 1.31: SuccessCriteriaMet, then Complete, CompletionsReached.
        for minor in [31, 33] {
            let c = done(rules_of(minor));
            assert_eq!(
                sequence(&c),
                seq(&[("SuccessCriteriaMet", "CompletionsReached"), ("Complete", "CompletionsReached")]),
                "1.{minor}"
            );
            assert_eq!(c.conditions()[1].message, "Reached expected number of succeeded pods");
        }
    }

    #[test]
    fn failure_target_comes_for_fail_job_from_1_26_and_for_every_failure_from_1_31() {
        let backoff = |r: ControllerRules| {
            let mut c = Controller::with_rules(spec(1, 1, 0), r);
            c.started("a", None);
            c.exited("a", 1);
            sequence(&c)
        };
        assert_eq!(backoff(rules_of(20)), seq(&[("Failed", "BackoffLimitExceeded")]));
        assert_eq!(backoff(rules_of(30)), seq(&[("Failed", "BackoffLimitExceeded")]));
        assert_eq!(
            backoff(rules_of(31)),
            seq(&[("FailureTarget", "BackoffLimitExceeded"), ("Failed", "BackoffLimitExceeded")])
        );
        let fail_job = |r: ControllerRules| {
            let rule = PodFailurePolicyRule {
                action: "FailJob".into(),
                on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                    container_name: None,
                    operator: "In".into(),
                    values: vec![2],
                }),
                on_pod_conditions: None,
            };
            let mut c = Controller::with_rules(Spec { rules: vec![rule], ..spec(1, 1, 6) }, r);
            c.started("a", None);
            c.exited("a", 2);
            sequence(&c)
        };
        let expected = seq(&[("FailureTarget", "PodFailurePolicy"), ("Failed", "PodFailurePolicy")]);
        assert_eq!(fail_job(rules_of(26)), expected);
        assert_eq!(fail_job(newest()), expected);
    }

    #[test]
    fn a_deadline_counts_the_active_pods_as_failed_on_1_20_as_later() {
        for (minor, expected) in [
            (20, seq(&[("Failed", "DeadlineExceeded")])),
            (33, seq(&[("FailureTarget", "DeadlineExceeded"), ("Failed", "DeadlineExceeded")])),
        ] {
            let mut c = Controller::with_rules(spec(2, 2, 6), rules_of(minor));
            c.started("a", None);
            c.started("b", None);
            c.deadline_passed();
            assert_eq!(c.terminated_active(), ["a", "b"]);
            // 1.20's syncJob: failed += active.
            assert_eq!((c.failed, c.active.len()), (2, 0), "1.{minor}");
            assert_eq!(sequence(&c), expected, "1.{minor}");
        }
    }

    #[test]
    fn indexes_are_written_as_the_api_writes_them() {
        assert_eq!(index_ranges(&[]), "");
        assert_eq!(index_ranges(&[3, 1]), "1,3");
        assert_eq!(index_ranges(&[0, 1]), "0,1");
        assert_eq!(index_ranges(&[4, 0, 1, 2]), "0-2,4");
        assert_eq!(index_ranges(&[0, 1, 2, 3, 5, 6, 9]), "0-3,5,6,9");
        assert_eq!(parse_indexes(&index_ranges(&[0, 1, 2, 4, 7, 8]), 10), Some(vec![0, 1, 2, 4, 7, 8]));
    }

    #[test]
    fn per_index_limits_report_failed_and_completed_indexes() {
        let run = |r: ControllerRules| {
            let mut c = Controller::with_rules(
                Spec { indexed: true, backoff_limit_per_index: Some(1), backoff_limit: u32::MAX, ..spec(4, 4, 0) },
                r,
            );
            for round in 0..2 {
                for i in 0..4 {
                    if c.to_start().contains(&Some(i)) {
                        let pod = format!("p{i}-{round}");
                        c.started(&pod, Some(i));
                        c.exited(&pod, if i % 2 == 1 { 1 } else { 0 });
                    }
                }
            }
            c
        };
        let c = run(newest());
        assert_eq!((c.completed_indexes().as_deref(), c.failed_indexes().as_deref()), (Some("0,2"), Some("1,3")));
        assert_eq!(c.failed, 4);
        assert_eq!(sequence(&c), seq(&[("FailureTarget", "FailedIndexes"), ("Failed", "FailedIndexes")]));
        let c = run(rules_of(29));
        assert_eq!(sequence(&c), seq(&[("Failed", "FailedIndexes")]));
        assert_eq!(c.failed_indexes().as_deref(), Some("1,3"));
    }

    fn disruption_ignored() -> PodFailurePolicyRule {
        condition_rule("Ignore", "DisruptionTarget", "True")
    }

    #[test]
    fn failed_replacement_policy_waits_for_the_evicted_pod_to_end() {
        // The default with a podFailurePolicy: Failed.
        let mut c = Controller::with_rules(Spec { rules: vec![disruption_ignored()], ..spec(1, 1, 6) }, newest());
        assert_eq!(c.replacement_policy(), Some("Failed"));
        c.started("a", None);
        assert!(c.evicted("a"));
        assert!(c.to_start().is_empty(), "a is still terminating");
        c.exited("a", 143);
        assert_eq!(c.to_start(), [None]);
        assert_eq!(c.failed, 0, "Ignored");
        // Without one: TerminatingOrFailed, replaced as soon as it terminates.
        let mut c = Controller::with_rules(spec(1, 1, 6), newest());
        assert_eq!(c.replacement_policy(), Some("TerminatingOrFailed"));
        c.started("a", None);
        c.evicted("a");
        assert_eq!(c.to_start(), [None]);
        // Written as Failed without a podFailurePolicy; Indexed: the index waits.
        let mut c = Controller::with_rules(
            Spec { replacement_policy: Some("Failed".into()), indexed: true, ..spec(2, 2, 6) },
            newest(),
        );
        c.started("a", Some(0));
        c.started("b", Some(1));
        c.evicted("a");
        assert!(c.to_start().is_empty());
        c.exited("a", 143);
        assert_eq!(c.to_start(), [Some(0)]);
        // Before 1.29 there is no such field: a deleted pod is not active and is replaced at once.
        let mut c = Controller::with_rules(Spec { rules: vec![disruption_ignored()], ..spec(1, 1, 6) }, rules_of(28));
        assert_eq!(c.replacement_policy(), None);
        c.started("a", None);
        c.evicted("a");
        assert_eq!(c.to_start(), [None]);
    }

    #[test]
    fn an_evicted_pod_counts_as_its_version_counts_it() {
        let evict = |job: Spec, r: ControllerRules| {
            let mut c = Controller::with_rules(job, r);
            c.started("a", None);
            c.evicted("a");
            c.exited("a", 143);
            let e = c.evictions["a"].clone();
            (c.failed, e)
        };
        // 1.20: a deleted pod is gone before it counts.
        let (failed, e) = evict(spec(1, 1, 6), rules_of(20));
        assert_eq!((failed, e.counted), (0, false));
        assert!(
            e.note.starts_with("not counted: Kubernetes 1.20's Job controller counts only failed pods"),
            "{}",
            e.note
        );
        // 1.25: finalizers count it, as soon as it is deleted (no policy
        // makes the controller wait); no DisruptionTarget yet.
        let (failed, e) = evict(spec(1, 1, 6), rules_of(25));
        assert_eq!((failed, e.counted, e.note.as_str()), (1, true, "counted as a failed pod"));
        let mut c = Controller::with_rules(spec(1, 1, 0), rules_of(25));
        c.started("a", None);
        c.evicted("a");
        assert_eq!(c.finished.as_ref().map(|f| f.reason.as_str()), Some("BackoffLimitExceeded"));
        assert!(c.to_start().is_empty(), "no replacement for a failed Job");
        // From 1.26 the pod has DisruptionTarget: the rendered Ignore rule matches.
        for r in [rules_of(26), newest()] {
            let (failed, e) = evict(Spec { rules: vec![disruption_ignored()], ..spec(1, 1, 6) }, r);
            assert_eq!((failed, e.counted), (0, false));
            assert_eq!(
                e.note,
                "DisruptionTarget (EvictionByEvictionAPI); not counted: Pod job-test/a has condition \
                 DisruptionTarget matching Ignore rule at index 0"
            );
        }
        // With no rule it counts, DisruptionTarget or not.
        let (failed, e) = evict(spec(1, 1, 6), newest());
        assert_eq!((failed, e.counted), (1, true));
        assert_eq!(e.note, "DisruptionTarget (EvictionByEvictionAPI); counted as a failed pod");
    }

    #[test]
    fn terminating_is_reported_where_the_version_has_it() {
        let c = Controller::with_rules(spec(1, 1, 6), rules_of(28));
        assert_eq!(c.terminating_at_end(2), None);
        let c = Controller::with_rules(spec(1, 1, 6), rules_of(30));
        assert_eq!(c.terminating_at_end(2), Some(2), "the terminal condition does not wait before 1.31");
        let c = Controller::with_rules(spec(1, 1, 6), newest());
        assert_eq!(c.terminating_at_end(2), Some(0));
    }

    #[test]
    fn a_1_28_kubelet_sets_no_pod_ready_to_start_containers() {
        assert!(!failed_pod_conditions(&rules_of(28), false).iter().any(|(k, _)| *k == "PodReadyToStartContainers"));
        assert!(failed_pod_conditions(&rules_of(29), false).iter().any(|(k, _)| *k == "PodReadyToStartContainers"));
        assert!(failed_pod_conditions(&rules_of(26), true).contains(&DISRUPTION_TARGET));
        assert!(!failed_pod_conditions(&rules_of(25), true).contains(&DISRUPTION_TARGET));
    }
}
