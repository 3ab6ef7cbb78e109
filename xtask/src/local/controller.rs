//! The Job controller's rules, as a pure state machine: which pods to
//! start, when a failed container restarts or a failed pod is replaced, and
//! when the Job is done. Each rule follows the Kubernetes documentation
//! page "Jobs" (and "Handling retriable and non-retriable pod failures with
//! Pod failure policy"); the rule is named where it is applied. Time is
//! passed in, so the rules are tested without containers.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{Job, PodFailurePolicyRule};

use crate::report::job::JobResult;

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
        }
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

/// The first rule whose onExitCodes matches ("Pod failure policy": rules
/// are evaluated in order; no match counts the failure).
pub fn policy_action(rules: &[PodFailurePolicyRule], exit_code: i32) -> PolicyAction {
    for rule in rules {
        let Some(on) = &rule.on_exit_codes else { continue };
        let listed = on.values.contains(&exit_code);
        let matches = match on.operator.as_str() {
            "In" => listed,
            "NotIn" => !listed && exit_code != 0,
            _ => false,
        };
        if matches {
            return match rule.action.as_str() {
                "FailJob" => PolicyAction::FailJob,
                "Ignore" => PolicyAction::Ignore,
                "FailIndex" => PolicyAction::FailIndex,
                _ => PolicyAction::Count,
            };
        }
    }
    PolicyAction::Count
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
}

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
}

impl Controller {
    pub fn new(spec: Spec) -> Controller {
        Controller { spec: Some(spec), ..Controller::default() }
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
        match policy_action(&spec.rules, exit_code) {
            PolicyAction::FailJob => {
                self.failed += 1;
                self.finished = Some(Finished::failed(
                    "PodFailurePolicy",
                    &format!("Container exited with code {exit_code}, matching a FailJob rule"),
                ));
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

    /// A failed Job's active pods are terminated and counted as failed.
    pub fn terminated_active(&mut self) -> Vec<String> {
        let pods: Vec<String> = self.active.keys().cloned().collect();
        self.failed += pods.len() as u32;
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
            if settled as u32 >= spec.completions && self.active.is_empty() {
                self.finished = Some(if self.failed_indexes.is_empty() {
                    Finished { result: JobResult::Complete, reason: "Complete".into(), message: String::new() }
                } else {
                    Finished::failed("FailedIndexes", "Job has failed indexes")
                });
            }
        } else if self.succeeded >= spec.completions {
            self.finished =
                Some(Finished { result: JobResult::Complete, reason: "Complete".into(), message: String::new() });
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::batch::v1::PodFailurePolicyOnExitCodesRequirement;

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
        }
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
        let rule = |action: &str, values: Vec<i32>| PodFailurePolicyRule {
            action: action.into(),
            on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                container_name: None,
                operator: "In".into(),
                values,
            }),
            on_pod_conditions: None,
        };
        let rules = vec![rule("FailJob", vec![2]), rule("Ignore", vec![42])];
        assert_eq!(policy_action(&rules, 2), PolicyAction::FailJob);
        assert_eq!(policy_action(&rules, 42), PolicyAction::Ignore);
        assert_eq!(policy_action(&rules, 1), PolicyAction::Count);

        let mut c = Controller::new(Spec { rules, ..spec(1, 1, 6) });
        c.started("a", None);
        c.exited("a", 42);
        assert_eq!((c.failed, c.finished.is_none()), (0, true));
        c.started("b", None);
        c.exited("b", 2);
        assert_eq!(c.finished.unwrap().reason, "PodFailurePolicy");
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
        assert_eq!(c.finished.unwrap().reason, "FailedIndexes");
    }
}
