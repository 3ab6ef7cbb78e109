//! The Job controller's rules, as a pure state machine: which pods to
//! start, when a failed container restarts or a failed pod is replaced, and
//! when the Job is done. Each rule follows the Kubernetes documentation
//! page "Jobs" (and "Handling retriable and non-retriable pod failures with
//! Pod failure policy"); the rule is named where it is applied. Time is
//! passed in, so the rules are tested without containers.
//!
//! Pod conditions: a local pod is never evicted, preempted, drained or
//! garbage-collected, so it never gets `DisruptionTarget`. A failed local
//! pod has what a kubelet gives a pod whose container failed and nothing
//! more ([`FAILED_POD_CONDITIONS`]); `onPodConditions` rules are evaluated
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

/// What a local run cannot do as a cluster would, for the Job's
/// onPodConditions rules: which of them match every failed pod and which
/// none, given [`FAILED_POD_CONDITIONS`].
pub fn local_caveats(spec: &Spec) -> Vec<String> {
    let have = format!(
        "{} ({SINCE_1_29} as kubelets from 1.29 set it)",
        FAILED_POD_CONDITIONS.map(|(t, s)| format!("{t}={s}")).join(", ")
    );
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
            let matches = if condition_matches(rule, &FAILED_POD_CONDITIONS).is_some() {
                "matches every failed pod, as on a cluster"
            } else {
                "never matches here: nothing evicts, preempts or drains a local pod, so no DisruptionTarget"
            };
            format!(
                "podFailurePolicy rule {i} ({}, onPodConditions {}) {matches}; a failed local pod has only {have}",
                rule.action,
                patterns.join(", ")
            )
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

/// Indexes as the Job controller writes status.completedIndexes and
/// failedIndexes (orderedIntervals.String in pkg/controller/job/indexed_job_utils.go):
/// sorted, a run of three or more as `first-last`, a run of two as two
/// numbers: `0-2,4,6,7`.
pub fn index_ranges(indexes: &[u32]) -> String {
    let mut sorted = indexes.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j + 1 < sorted.len() && sorted[j + 1] == sorted[j] + 1 {
            j += 1;
        }
        parts.push(match j - i {
            0 => sorted[i].to_string(),
            1 => format!("{},{}", sorted[i], sorted[j]),
            _ => format!("{}-{}", sorted[i], sorted[j]),
        });
        i = j + 1;
    }
    parts.join(",")
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

    /// The condition the controller of these rules adds before the
    /// terminal one, while it terminates the remaining pods: for a success
    /// policy SuccessCriteriaMet (the policy's own rule), for a FailJob
    /// match FailureTarget (from 1.26, the podFailurePolicy's rule), and
    /// from 1.31 one of them for every ending (`delayed_terminal_condition`).
    pub fn interim_condition(&self, rules: &ControllerRules) -> Option<&'static str> {
        match self.result {
            JobResult::Complete if self.reason == SUCCESS_POLICY || rules.delayed_terminal_condition => {
                Some("SuccessCriteriaMet")
            }
            JobResult::Failed
                if rules.delayed_terminal_condition
                    || (self.reason == POD_FAILURE_POLICY && rules.failure_target_for_pod_failure_policy) =>
            {
                Some("FailureTarget")
            }
            _ => None,
        }
    }

    /// The Job's conditions in the order the controller of these rules
    /// adds them: the interim one (it copies its reason and message to the
    /// terminal one), then Complete or Failed.
    pub fn conditions(&self, rules: &ControllerRules) -> Vec<JobCondition> {
        let terminal = match self.result {
            JobResult::Complete => "Complete",
            JobResult::Failed => "Failed",
        };
        self.interim_condition(rules)
            .into_iter()
            .chain([terminal])
            .map(|kind| JobCondition::new(kind, &self.reason, &self.message))
            .collect()
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

/// The controller's counts, as a Job's status has them.
#[derive(Debug, Clone, Default)]
pub struct Controller {
    pub spec: Option<Spec>,
    /// Active pods: name -> (completion index, container restarts).
    pub active: BTreeMap<String, (Option<u32>, u32)>,
    pub succeeded: u32,
    pub failed: u32,
    /// Indexes that succeeded; failures counted per index; failed indexes.
    pub succeeded_indexes: Vec<u32>,
    pub index_failures: BTreeMap<u32, u32>,
    pub failed_indexes: Vec<u32>,
    /// Failures since the last success, for the replacement back-off.
    pub recent_failures: u32,
    pub finished: Option<Finished>,
    /// The rules of the Kubernetes version whose controller this plays.
    pub rules: Option<ControllerRules>,
}

impl Controller {
    /// The controller of the newest version the table knows.
    pub fn new(spec: Spec) -> Controller {
        Controller::of_version(spec, versions::NEWEST)
    }

    /// The controller of a Kubernetes version.
    pub fn of_version(spec: Spec, version: versions::KubeVersion) -> Controller {
        Controller { spec: Some(spec), rules: Some(ControllerRules::of(version)), ..Controller::default() }
    }

    pub fn rules(&self) -> ControllerRules {
        self.rules.unwrap_or_else(|| ControllerRules::of(versions::NEWEST))
    }

    /// The Job's conditions once it has finished, in order.
    pub fn conditions(&self) -> Vec<JobCondition> {
        self.finished.as_ref().map(|f| f.conditions(&self.rules())).unwrap_or_default()
    }

    /// status.completedIndexes of an Indexed Job ("0-2,4"; empty when none).
    pub fn completed_indexes(&self) -> Option<String> {
        self.spec().indexed.then(|| index_ranges(&self.succeeded_indexes))
    }

    /// status.failedIndexes, written with backoffLimitPerIndex only.
    pub fn failed_indexes(&self) -> Option<String> {
        let spec = self.spec();
        (spec.indexed && spec.backoff_limit_per_index.is_some()).then(|| index_ranges(&self.failed_indexes))
    }

    fn spec(&self) -> &Spec {
        self.spec.as_ref().expect("made by new")
    }

    /// The indexes (or, NonIndexed, `None`s) of the pods to create now:
    /// never more active than parallelism, never more than still needed
    /// ("Controlling parallelism").
    pub fn to_start(&self) -> Vec<Option<u32>> {
        if self.finished.is_some() {
            return Vec::new();
        }
        let spec = self.spec();
        let room = spec.parallelism.saturating_sub(self.active.len() as u32);
        if spec.indexed {
            let busy: Vec<u32> = self.active.values().filter_map(|(i, _)| *i).collect();
            (0..spec.completions)
                .filter(|i| {
                    !self.succeeded_indexes.contains(i) && !self.failed_indexes.contains(i) && !busy.contains(i)
                })
                .take(room as usize)
                .map(Some)
                .collect()
        } else {
            let needed = spec.completions.saturating_sub(self.succeeded + self.active.len() as u32);
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

    /// A container run ended with `exit_code`. Returns whether the
    /// container restarts in place (OnFailure) rather than its pod ending.
    /// A failed pod has [`FAILED_POD_CONDITIONS`].
    pub fn exited(&mut self, pod: &str, exit_code: i32) -> bool {
        let Some(&(index, _)) = self.active.get(pod) else { return false };
        let spec = self.spec().clone();
        if exit_code == 0 {
            self.active.remove(pod);
            self.succeeded += 1;
            self.recent_failures = 0;
            if let Some(i) = index {
                self.succeeded_indexes.push(i);
            }
            self.check_done();
            return false;
        }
        if spec.on_failure {
            // The container restarts in its pod; the restart counts once it
            // happens (`restarted`).
            return true;
        }
        self.active.remove(pod);
        let failed_pod =
            FailedPod { name: pod, container: &spec.container, exit_code, conditions: &FAILED_POD_CONDITIONS };
        let (action, message) = policy_action(&spec.rules, &spec.namespace, &failed_pod);
        match action {
            PolicyAction::FailJob => {
                self.failed += 1;
                self.finished = Some(Finished::failed(POD_FAILURE_POLICY, &message));
                return false;
            }
            PolicyAction::Ignore => return false,
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
        false
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
    /// DeadlineExceeded, a FailJob rule) counts them as failed.
    pub fn terminated_active(&mut self) -> Vec<String> {
        let pods: Vec<String> = self.active.keys().cloned().collect();
        if self.finished.as_ref().is_none_or(|f| f.result == JobResult::Failed) {
            self.failed += pods.len() as u32;
        }
        self.active.clear();
        pods
    }

    fn check_failed(&mut self) {
        let spec = self.spec().clone();
        if self.finished.is_some() {
            return;
        }
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

    /// Complete by completions: `CompletionsReached` from 1.31, no reason
    /// and no message before (newCondition(JobComplete, "", "")).
    fn completions_reached(&self) -> Finished {
        if self.rules().completions_reached_reason {
            Finished::complete("CompletionsReached", COMPLETIONS_REACHED_MESSAGE)
        } else {
            Finished::complete("", "")
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
        let mut c = Controller::new(spec(5, 2, 3));
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
        let mut c = Controller::new(spec(1, 1, 2));
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
        let mut c = Controller::new(Spec { on_failure: true, ..spec(1, 1, 2) });
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

        let mut c = Controller::new(Spec { rules, ..spec(1, 1, 6) });
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
        let caveats = local_caveats(&Spec { rules, ..spec(1, 1, 6) });
        assert_eq!(caveats.len(), 2);
        assert!(
            caveats[0].starts_with(
                "podFailurePolicy rule 0 (Ignore, onPodConditions DisruptionTarget=True) never matches here"
            ),
            "{}",
            caveats[0]
        );
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
        assert!(local_caveats(&spec(1, 1, 6)).is_empty());
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
        let mut c = Controller::new(indexed(4, 4, vec![success_rule(Some("0"), None)]));
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
        assert_eq!(finished.interim_condition(&ControllerRules::of(versions::NEWEST)), Some("SuccessCriteriaMet"));
        assert!(c.to_start().is_empty(), "index 2 failed but is not retried");
        assert_eq!(c.terminated_active(), ["d"]);
        // The lingering pod is removed, not a failure.
        assert_eq!((c.succeeded, c.failed), (2, 1));
    }

    #[test]
    fn failing_rules_come_before_the_success_policy() {
        // Index 1 exhausts its per-index limit; index 0 then succeeds and
        // settles the Job: FailedIndexes, although a count of 1 is met.
        let mut c = Controller::new(Spec {
            backoff_limit_per_index: Some(0),
            backoff_limit: u32::MAX,
            ..indexed(2, 2, vec![success_rule(None, Some(1))])
        });
        c.started("a", Some(0));
        c.started("b", Some(1));
        c.exited("b", 1);
        assert!(c.finished.is_none());
        c.exited("a", 0);
        assert_eq!(c.finished.unwrap().reason, "FailedIndexes");
        // Without a success policy an Indexed Job completes as before.
        let mut c = Controller::new(indexed(1, 1, Vec::new()));
        c.started("a", Some(0));
        c.exited("a", 0);
        assert_eq!(c.finished.as_ref().map(|f| f.reason.as_str()), Some("CompletionsReached"));
        assert_eq!(c.completed_indexes().as_deref(), Some("0"));
        assert_eq!(c.failed_indexes(), None, "failedIndexes only with backoffLimitPerIndex");
    }

    fn v(minor: u32) -> versions::KubeVersion {
        versions::KubeVersion::new(1, minor)
    }

    /// The conditions of a run as `(type, reason)`.
    fn sequence(c: &Controller) -> Vec<(String, String)> {
        c.conditions().into_iter().map(|c| (c.kind, c.reason)).collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
    }

    #[test]
    fn completions_reached_says_so_from_1_31_with_success_criteria_met_first() {
        let run = |version| {
            let mut c = Controller::of_version(spec(1, 1, 0), version);
            c.started("a", None);
            c.exited("a", 0);
            c
        };
        // 1.20 to 1.30: newCondition(JobComplete, "", "").
        let old = run(v(20));
        assert_eq!(sequence(&old), pairs(&[("Complete", "")]));
        assert_eq!(old.finished.as_ref().unwrap().report_reason(), "Complete");
        assert_eq!(sequence(&run(v(30))), pairs(&[("Complete", "")]));
        let new = run(v(31));
        assert_eq!(
            sequence(&new),
            pairs(&[("SuccessCriteriaMet", "CompletionsReached"), ("Complete", "CompletionsReached")])
        );
        assert_eq!(new.conditions()[1].message, "Reached expected number of succeeded pods");
    }

    #[test]
    fn failure_target_comes_first_for_fail_job_from_1_26_and_for_every_reason_from_1_31() {
        let backoff = |version| {
            let mut c = Controller::of_version(spec(1, 1, 0), version);
            c.started("a", None);
            c.exited("a", 1);
            sequence(&c)
        };
        assert_eq!(backoff(v(20)), pairs(&[("Failed", "BackoffLimitExceeded")]));
        assert_eq!(backoff(v(30)), pairs(&[("Failed", "BackoffLimitExceeded")]));
        assert_eq!(
            backoff(v(31)),
            pairs(&[("FailureTarget", "BackoffLimitExceeded"), ("Failed", "BackoffLimitExceeded")])
        );
        let fail_job = |version| {
            let rule = crate::manifest::objects::exit_code_rule("FailJob", vec![42]);
            let mut c = Controller::of_version(Spec { rules: vec![rule], ..spec(1, 1, 6) }, version);
            c.started("a", None);
            c.exited("a", 42);
            sequence(&c)
        };
        assert_eq!(fail_job(v(26)), pairs(&[("FailureTarget", "PodFailurePolicy"), ("Failed", "PodFailurePolicy")]));
        let mut c = Controller::of_version(spec(1, 1, 0), v(20));
        c.started("a", None);
        c.deadline_passed();
        assert_eq!(sequence(&c), pairs(&[("Failed", "DeadlineExceeded")]));
        assert_eq!(c.conditions()[0].message, "Job was active longer than specified deadline");
    }

    #[test]
    fn indexes_are_written_as_the_controller_writes_them() {
        assert_eq!(index_ranges(&[]), "");
        assert_eq!(index_ranges(&[3]), "3");
        assert_eq!(index_ranges(&[1, 0]), "0,1");
        assert_eq!(index_ranges(&[0, 1, 2, 4, 6, 7, 9, 10, 11, 12]), "0-2,4,6,7,9-12");
        assert_eq!(index_ranges(&[5, 5, 4, 3]), "3-5");
    }

    #[test]
    fn indexed_jobs_need_every_index_and_per_index_limits_fail_indexes() {
        let mut c = Controller::new(Spec {
            indexed: true,
            backoff_limit_per_index: Some(1),
            backoff_limit: u32::MAX,
            ..spec(3, 3, 0)
        });
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
        assert_eq!(sequence(&c), pairs(&[("FailureTarget", "FailedIndexes"), ("Failed", "FailedIndexes")]));
    }
}
