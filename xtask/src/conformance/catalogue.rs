//! The scenarios: each a Job rendered from `render` flags whose pods end as
//! the worker's deterministic rules decide, and the outcome the Job
//! controller of a given Kubernetes version gives it.
//!
//! The expected outcomes are written from the controller's own source and
//! tests, not from this tool's local controller: pkg/controller/job/
//! job_controller.go (the conditions and counts it writes),
//! test/e2e/apps/job.go and test/integration/job/job_test.go in
//! kubernetes/kubernetes (whole runs: conditions, reasons, counters), and
//! CHANGELOG-1.31 (the delayed terminal condition, CompletionsReached).
//! Each scenario names the upstream test it follows, in its own words.

use serde::Serialize;

use crate::manifest::versions::{self, Feature, KubeVersion};

/// A count the controller writes: exact, or within bounds where a run
/// legitimately varies (which pods a sync sees first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Count {
    Exactly(i32),
    Between(i32, i32),
    AtLeast(i32),
}

impl Count {
    pub fn holds(self, seen: i32) -> bool {
        match self {
            Count::Exactly(n) => seen == n,
            Count::Between(lo, hi) => (lo..=hi).contains(&seen),
            Count::AtLeast(n) => seen >= n,
        }
    }
}

impl std::fmt::Display for Count {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Count::Exactly(n) => write!(f, "{n}"),
            Count::Between(lo, hi) => write!(f, "{lo} to {hi}"),
            Count::AtLeast(n) => write!(f, "at least {n}"),
        }
    }
}

/// What the controller of a version gives a scenario's Job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Expected {
    /// The true conditions in order, as (type, reason); a reason of ""
    /// means the condition has none.
    pub conditions: Vec<(&'static str, &'static str)>,
    pub succeeded: Count,
    /// status.failed.
    pub failed: Count,
    /// status.completedIndexes / failedIndexes ("" = written empty or not at all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_indexes: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_indexes: Option<&'static str>,
    /// The Job's pods listed at the end (pods a finished Job deletes are gone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pods: Option<Count>,
    /// Container restarts summed over the pods (restartPolicy OnFailure).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restarts: Option<Count>,
}

impl Expected {
    fn new(conditions: Vec<(&'static str, &'static str)>, succeeded: i32, failed: Count) -> Expected {
        Expected {
            conditions,
            succeeded: Count::Exactly(succeeded),
            failed,
            completed_indexes: None,
            failed_indexes: None,
            pods: None,
            restarts: None,
        }
    }
}

/// A documented upstream behaviour that differs from the documentation on
/// some versions: a difference in `field` there is `known`, not passed and
/// not failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Known {
    pub field: &'static str,
    /// The versions it applies to, first and last.
    pub from: KubeVersion,
    pub until: KubeVersion,
    pub upstream: &'static str,
    pub why: &'static str,
}

/// One scenario of the catalogue.
pub struct Scenario {
    pub name: &'static str,
    /// What it checks, in a line.
    pub checks: &'static str,
    /// The `render` flags of its Job, as typed on the command line (split at
    /// spaces; name, namespace and image are the run's).
    pub args: &'static str,
    /// The features it needs, beyond what every version has.
    pub needs: &'static [Feature],
    /// Evict the Job's first running pod through the Eviction API (on a
    /// cluster; locally, the local engine's eviction at this time).
    pub evict: Option<std::time::Duration>,
    /// The outcome the controller of a version gives it.
    pub expect: fn(KubeVersion) -> Expected,
    pub known: &'static [Known],
}

impl Scenario {
    /// The first feature the version does not have on by default.
    pub fn missing(&self, version: KubeVersion) -> Option<&'static Feature> {
        self.needs.iter().find(|f| !f.on(version))
    }
}

const fn v(minor: u32) -> KubeVersion {
    KubeVersion::new(1, minor)
}

/// From 1.31 the controller delays the terminal condition until no pod
/// terminates and adds the verdict first (job_controller.go's
/// delayTerminalCondition, on with JobPodReplacementPolicy since 1.29;
/// integration test TestDelayTerminalPhaseCondition).
fn delays_terminal_condition(version: KubeVersion) -> bool {
    version >= v(31)
}

/// A failure for `reason`: FailureTarget first from 1.31, and for a
/// podFailurePolicy FailJob match from the policy's first version on by
/// default (1.26).
fn failed(version: KubeVersion, reason: &'static str) -> Vec<(&'static str, &'static str)> {
    let target = delays_terminal_condition(version) || reason == "PodFailurePolicy";
    let mut list = if target { vec![("FailureTarget", reason)] } else { Vec::new() };
    list.push(("Failed", reason));
    list
}

/// Completions reached: `Complete` with no reason up to 1.30
/// (newCondition(JobComplete, "", "")); from 1.31 SuccessCriteriaMet then
/// Complete, both `CompletionsReached` (e2e "should run a job to
/// completion": WaitForJobComplete with JobReasonCompletionsReached).
fn completed(version: KubeVersion) -> Vec<(&'static str, &'static str)> {
    if delays_terminal_condition(version) {
        vec![("SuccessCriteriaMet", "CompletionsReached"), ("Complete", "CompletionsReached")]
    } else {
        vec![("Complete", "")]
    }
}

/// Every scenario, in the order they are reported.
pub fn catalogue() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "complete",
            checks: "every pod succeeds: Complete, no failure",
            args: "--completions 3 --parallelism 2 --fail-probability 0",
            needs: &[],
            evict: None,
            // e2e "should run a job to completion when tasks succeed".
            expect: |version| Expected::new(completed(version), 3, Count::Exactly(0)),
            known: &[],
        },
        Scenario {
            name: "backoff-limit",
            checks: "a pod that always fails is retried backoffLimit times, then BackoffLimitExceeded",
            args: "--completions 1 --parallelism 1 --backoff-limit 1 --fail-probability 1",
            needs: &[],
            evict: None,
            // e2e "should fail to exceed backoffLimit": backoffLimit 1 makes
            // exactly 2 pods, both Failed.
            expect: |version| Expected {
                pods: Some(Count::Exactly(2)),
                ..Expected::new(failed(version, "BackoffLimitExceeded"), 0, Count::Exactly(2))
            },
            known: &[],
        },
        Scenario {
            name: "restart-in-place",
            checks: "restartPolicy OnFailure: the first run fails, the container restarts in its pod and succeeds",
            args: "--completions 1 --parallelism 1 --restart-policy OnFailure --fail-probability 0 --fail-attempts 1",
            needs: &[],
            evict: None,
            // e2e "should run a job to completion when tasks sometimes fail
            // and are locally restarted": a restart is not a failed pod.
            expect: |version| Expected {
                restarts: Some(Count::Exactly(1)),
                ..Expected::new(completed(version), 1, Count::Exactly(0))
            },
            known: &[],
        },
        Scenario {
            name: "restarts-reach-backoff-limit",
            checks: "restartPolicy OnFailure: restarts of the running pod reach backoffLimit, the pod is counted failed",
            args: "--completions 1 --parallelism 1 --restart-policy OnFailure --backoff-limit 2 --fail-probability 1",
            needs: &[],
            evict: None,
            // job_controller.go pastBackoffLimitOnFailure: the sum of the
            // restartCounts of running pods reaching backoffLimit fails the
            // Job; the active pod is deleted and counted failed. Another
            // restart may land before the deletion.
            expect: |version| Expected {
                restarts: Some(Count::Between(2, 3)),
                ..Expected::new(failed(version, "BackoffLimitExceeded"), 0, Count::Exactly(1))
            },
            known: &[],
        },
        Scenario {
            name: "deadline",
            checks: "a pod that hangs is stopped at activeDeadlineSeconds: DeadlineExceeded, the running pod failed",
            args: "--completions 1 --parallelism 1 --fail-probability 1 --failure-mode hang \
                   --active-deadline-seconds 5",
            needs: &[],
            evict: None,
            // e2e "should fail when exceeds active deadline"; the active pod
            // is deleted and counted (failed += active).
            expect: |version| Expected::new(failed(version, "DeadlineExceeded"), 0, Count::Exactly(1)),
            known: &[],
        },
        Scenario {
            name: "indexed",
            checks: "Indexed: every index succeeds once, completedIndexes names them",
            args: "--completion-mode Indexed --completions 3 --parallelism 3 --fail-probability 0",
            needs: &[versions::INDEXED_JOB],
            evict: None,
            // e2e "should create pods for an Indexed job with completion indexes".
            expect: |version| Expected {
                completed_indexes: Some("0-2"),
                ..Expected::new(completed(version), 3, Count::Exactly(0))
            },
            known: &[],
        },
        Scenario {
            name: "per-index-limit",
            checks: "backoffLimitPerIndex 1: odd indexes fail twice and are failed indexes, even ones complete",
            args: "--completion-mode Indexed --completions 4 --parallelism 4 --backoff-limit-per-index 1 \
                   --fail-probability 0 --fail-indexes odd",
            needs: &[versions::BACKOFF_LIMIT_PER_INDEX],
            evict: None,
            // e2e "should fail the job when one index fails with backoffLimitPerIndex":
            // failedIndexes "1,3", completedIndexes "0,2", failed 4, succeeded 2.
            expect: |version| Expected {
                completed_indexes: Some("0,2"),
                failed_indexes: Some("1,3"),
                ..Expected::new(failed(version, "FailedIndexes"), 2, Count::Exactly(4))
            },
            known: &[],
        },
        Scenario {
            name: "max-failed-indexes",
            checks: "maxFailedIndexes 0: the first failed index fails the Job at once",
            args: "--completion-mode Indexed --completions 4 --parallelism 1 --backoff-limit-per-index 0 \
                   --max-failed-indexes 0 --fail-probability 1",
            needs: &[versions::BACKOFF_LIMIT_PER_INDEX],
            evict: None,
            // e2e "should mark indexes as failed when the FailIndex action is
            // matched" 's neighbour: maxFailedIndexes exceeded with one index.
            expect: |version| Expected {
                completed_indexes: Some(""),
                failed_indexes: Some("0"),
                ..Expected::new(failed(version, "MaxFailedIndexesExceeded"), 0, Count::Exactly(1))
            },
            known: &[],
        },
        Scenario {
            name: "fail-index-rule",
            checks: "podFailurePolicy FailIndex on exit 1: index 1 fails at its first failure, index 0 completes",
            args: "--completion-mode Indexed --completions 2 --parallelism 2 --backoff-limit-per-index 1 \
                   --fail-probability 0 --fail-indexes odd --pod-failure-rule FailIndex:exit=1",
            needs: &[versions::BACKOFF_LIMIT_PER_INDEX, versions::POD_FAILURE_POLICY],
            evict: None,
            // e2e "should mark indexes as failed when the FailIndex action is matched".
            expect: |version| Expected {
                completed_indexes: Some("0"),
                failed_indexes: Some("1"),
                ..Expected::new(failed(version, "FailedIndexes"), 1, Count::Exactly(1))
            },
            known: &[],
        },
        Scenario {
            name: "fail-job-rule",
            checks: "podFailurePolicy FailJob on exit 42 fails the Job at the first such failure, retries left",
            args: "--completions 1 --parallelism 1 --backoff-limit 6 --fail-probability 1 \
                   --fail-exit-code 42 --pod-failure-rule FailJob:exit=42",
            needs: &[versions::POD_FAILURE_POLICY],
            evict: None,
            // e2e "should allow to use the pod failure policy on exit code to fail the job early".
            expect: |version| Expected {
                pods: Some(Count::Exactly(1)),
                ..Expected::new(failed(version, "PodFailurePolicy"), 0, Count::Exactly(1))
            },
            known: &[],
        },
        Scenario {
            name: "ignore-rule",
            checks: "podFailurePolicy Ignore on exit 42: failures beyond backoffLimit 0 are not counted, the deadline ends it",
            args: "--completions 1 --parallelism 1 --backoff-limit 0 --fail-probability 1 \
                   --fail-exit-code 42 --active-deadline-seconds 15 --pod-failure-rule Ignore:exit=42",
            needs: &[versions::POD_FAILURE_POLICY],
            evict: None,
            // e2e "should allow to use the pod failure policy to not count the
            // failure towards the backoffLimit": with backoffLimit 0 any counted
            // failure would end it BackoffLimitExceeded; only the pod running at
            // the deadline may be counted.
            expect: |version| Expected {
                pods: Some(Count::AtLeast(2)),
                ..Expected::new(failed(version, "DeadlineExceeded"), 0, Count::Between(0, 1))
            },
            known: &[],
        },
        Scenario {
            name: "success-policy",
            checks: "successPolicy on index 0: the Job succeeds when index 0 does, the other pods are stopped",
            args: "--completion-mode Indexed --completions 5 --parallelism 2 --fail-probability 0 \
                   --fail-indexes odd --success-policy indexes=0",
            needs: &[versions::SUCCESS_POLICY],
            evict: None,
            // e2e "with successPolicy succeededIndexes, should succeed when the
            // indexes are succeeded": SuccessCriteriaMet then Complete, both
            // SuccessPolicy; completedIndexes "0". Index 1 may fail once
            // before index 0 succeeds.
            expect: |_| Expected {
                completed_indexes: Some("0"),
                ..Expected::new(
                    vec![("SuccessCriteriaMet", "SuccessPolicy"), ("Complete", "SuccessPolicy")],
                    1,
                    Count::Between(0, 1),
                )
            },
            known: &[],
        },
        Scenario {
            name: "eviction",
            checks: "a running pod evicted through the Eviction API: counted (BackoffLimitExceeded) or not (deadline)",
            args: "--completions 1 --parallelism 1 --backoff-limit 0 --fail-probability 1 \
                   --failure-mode hang --active-deadline-seconds 25",
            needs: &[],
            evict: Some(std::time::Duration::from_secs(3)),
            // With backoffLimit 0 a counted eviction fails the Job at once;
            // one not counted is replaced, and the deadline ends the Job with
            // the replacement counted (failed += active). Before Job tracking
            // with finalizers (on by default from 1.25) the controller counts
            // only Failed pods that still exist and the evicted pod is
            // deleted; in 1.25 a deleted pod counts and nothing tells an
            // eviction apart; from 1.26 the pod gets DisruptionTarget and
            // render's Ignore rule matches it (e2e "should allow to use a
            // pod failure policy to ignore failure for an evicted pod").
            expect: |version| {
                let reason = if version == v(25) { "BackoffLimitExceeded" } else { "DeadlineExceeded" };
                Expected::new(failed(version, reason), 0, Count::Exactly(1))
            },
            known: &[],
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_dns_labels_short_enough_for_a_namespace() {
        let all = catalogue();
        let mut names: Vec<&str> = all.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
        for s in &all {
            crate::manifest::params::check_dns_label(s.name).unwrap();
            assert!(s.name.len() <= 40, "{}", s.name);
        }
    }

    #[test]
    fn the_expected_conditions_follow_the_version() {
        assert_eq!(completed(v(20)), [("Complete", "")]);
        assert_eq!(completed(v(30)), [("Complete", "")]);
        assert_eq!(
            completed(v(31)),
            [("SuccessCriteriaMet", "CompletionsReached"), ("Complete", "CompletionsReached")]
        );
        assert_eq!(failed(v(20), "DeadlineExceeded"), [("Failed", "DeadlineExceeded")]);
        assert_eq!(
            failed(v(26), "PodFailurePolicy"),
            [("FailureTarget", "PodFailurePolicy"), ("Failed", "PodFailurePolicy")]
        );
        assert_eq!(failed(v(30), "FailedIndexes"), [("Failed", "FailedIndexes")]);
        assert_eq!(failed(v(33), "FailedIndexes"), [("FailureTarget", "FailedIndexes"), ("Failed", "FailedIndexes")]);
    }

    #[test]
    fn every_scenario_renders_and_says_what_a_version_lacks() {
        let old: Vec<&str> = catalogue().iter().filter(|s| s.missing(v(20)).is_none()).map(|s| s.name).collect();
        assert_eq!(
            old,
            ["complete", "backoff-limit", "restart-in-place", "restarts-reach-backoff-limit", "deadline", "eviction"]
        );
        assert!(catalogue().iter().all(|s| s.missing(versions::NEWEST).is_none()));
        let per_index = catalogue().into_iter().find(|s| s.name == "fail-index-rule").unwrap();
        assert_eq!(per_index.missing(v(28)).map(|f| f.gate), Some("JobBackoffLimitPerIndex"));
    }

    #[test]
    fn counts_hold_within_their_bounds() {
        assert!(Count::Exactly(2).holds(2) && !Count::Exactly(2).holds(3));
        assert!(Count::Between(0, 1).holds(1) && !Count::Between(0, 1).holds(2));
        assert!(Count::AtLeast(2).holds(9) && !Count::AtLeast(2).holds(1));
        assert_eq!(Count::Between(2, 3).to_string(), "2 to 3");
    }
}
