//! The Job report: what the retries did, whoever ran the Job. A watched
//! cluster Job fills it (`cluster::status`); so does anything else that
//! runs a Job's pods. It prints as text (`Display`) and JSON (`Serialize`);
//! the JSON is what `--save-report` writes and `alerts --report` and
//! `report --from` read back, so its field names are kept. The live view of
//! the same rows while the Job runs is `pod_table`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Reporter, human_seconds};
use crate::{Error, ErrorKind};

/// How a Job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobResult {
    Complete,
    Failed,
}

/// What one pod did, for the table and the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodRow {
    pub name: String,
    pub phase: PodPhase,
    pub index: Option<String>,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub restarts: i32,
    #[serde(skip)]
    pub seconds: Option<f64>,
    /// The exit code of the container's previous run (OnFailure restarts).
    #[serde(skip)]
    pub last_exit_code: Option<i32>,
    /// When the pod was created and when it ended (Succeeded or Failed), in
    /// seconds after the Job was created: the timeline `alerts` replays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<f64>,
}

/// Where a pod is in its life: a Pod's status.phase, and the two states a
/// pod is in that no phase names. The JSON and the text are the phase's
/// own word, as a report written before this type held it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PodPhase {
    Pending,
    Running,
    Succeeded,
    Failed,
    /// Being stopped (a local run's eviction): kubectl's word for a pod with
    /// a deletionTimestamp.
    Terminating,
    /// Deleted by the Job controller before it ended (a simulated complete
    /// Job's pods still running, `alerts`' typical runs).
    Deleted,
    /// The kubelet lost touch with the pod's node; also what a report reads
    /// back for a word it does not know, so any saved report still loads.
    #[serde(other)]
    Unknown,
}

impl PodPhase {
    /// A phase as the API server writes it; a word from a newer server
    /// reads as Unknown, which no rule here treats as ended.
    pub fn from_api(phase: &str) -> PodPhase {
        match phase {
            "Pending" => PodPhase::Pending,
            "Running" => PodPhase::Running,
            "Succeeded" => PodPhase::Succeeded,
            "Failed" => PodPhase::Failed,
            _ => PodPhase::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PodPhase::Pending => "Pending",
            PodPhase::Running => "Running",
            PodPhase::Succeeded => "Succeeded",
            PodPhase::Failed => "Failed",
            PodPhase::Unknown => "Unknown",
            PodPhase::Terminating => "Terminating",
            PodPhase::Deleted => "Deleted",
        }
    }
}

impl fmt::Display for PodPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, not `write_str`: the live table aligns the phase column.
        f.pad(self.as_str())
    }
}

impl PodRow {
    /// The exit code that failed it: this run's, else the previous run's
    /// (a restarted container now running); `-` when none is known.
    fn failed_exit_code(&self) -> String {
        self.exit_code.or(self.last_exit_code).map_or("-".into(), |c| c.to_string())
    }

    /// Whether any run of this pod failed.
    pub fn has_failed_run(&self) -> bool {
        self.phase == PodPhase::Failed || self.restarts > 0 || self.exit_code.is_some_and(|c| c != 0)
    }
}

/// Why a pod's image cannot be pulled, as far as the kubelet's message
/// tells (`cluster::status::classify_pull`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PullCause {
    /// The registry refused the node's credential, or its lack of one.
    Unauthorized,
    /// "Does not exist or may require authorization": the registry will not say which.
    DeniedOrMissing,
    /// The registry answered: no such repository, tag or digest.
    NotFound,
    /// The image is on a loopback registry (127.0.0.1, localhost, ::1), which
    /// a node resolves to itself.
    Loopback,
    /// The node could not reach the registry (connection, DNS, TLS).
    Unreachable,
    /// The kubelet's message names no cause (a back-off repeats no reason).
    Unknown,
}

/// A pod that cannot pull its image: what the kubelet said, and what to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImagePull {
    pub pod: String,
    pub image: String,
    /// The container's waiting reason: ErrImagePull or ImagePullBackOff.
    pub reason: String,
    /// The waiting message (the container runtime's words).
    pub message: String,
    pub cause: PullCause,
    pub advice: String,
}

/// `pod P cannot pull IMAGE (ErrImagePull: message)`, then what to do.
impl fmt::Display for ImagePull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pod {} cannot pull {} ({}", self.pod, self.image, self.reason)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        write!(f, ")\n    what to do: {}", self.advice)
    }
}

/// One of the Job's status conditions, in the order the Job has them
/// (a cluster from 1.31 writes FailureTarget before Failed and
/// SuccessCriteriaMet before Complete; "Jobs" documentation, "Job
/// termination and cleanup").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobCondition {
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    pub reason: String,
    pub message: String,
    /// lastTransitionTime, in seconds after the Job was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<f64>,
}

impl JobCondition {
    pub fn new(kind: &str, reason: &str, message: &str) -> JobCondition {
        JobCondition {
            kind: kind.into(),
            status: "True".into(),
            reason: reason.into(),
            message: message.into(),
            at: None,
        }
    }
}

/// When the Job started and finished, and the spec fields
/// kube-state-metrics exposes besides completions: with the pods' and the
/// conditions' times, the Job's status at any moment of its life, which
/// `alerts` turns into the series Prometheus would have scraped. Times are
/// seconds after the Job was created.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobTimes {
    /// metadata.creationTimestamp (RFC 3339) where a cluster gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// status.startTime.
    pub started: Option<f64>,
    /// status.completionTime, or when the Failed condition was added.
    pub finished: Option<f64>,
    pub ttl_seconds_after_finished: Option<i64>,
    pub active_deadline_seconds: Option<i64>,
    pub parallelism: Option<i32>,
    /// The Job's status counts each time `watch` saw them change, by the
    /// watch's clock. kube-state-metrics reads these, not the pods, and a
    /// Job controller may write them late (1.20's waits out the back-off
    /// before it counts a failed pod); without them the counts are
    /// reconstructed from the pods' times.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status: Vec<StatusAt>,
}

/// status.active, .succeeded and .failed from a moment on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StatusAt {
    pub at: f64,
    pub active: i32,
    pub succeeded: i32,
    pub failed: i32,
}

/// `FailureTarget (BackoffLimitExceeded), Failed (BackoffLimitExceeded)`:
/// the true conditions in order, each with its reason.
pub fn condition_sequence(conditions: &[JobCondition]) -> String {
    conditions
        .iter()
        .filter(|c| c.status == "True")
        .map(|c| if c.reason.is_empty() { c.kind.clone() } else { format!("{} ({})", c.kind, c.reason) })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Failed runs listed one by one in the text report; the rest are
/// summarised by exit code.
pub const FAILED_LISTED: usize = 10;

/// The final report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobReport {
    #[serde(rename = "job")]
    pub name: String,
    pub namespace: String,
    pub result: JobResult,
    pub reason: String,
    pub message: String,
    pub succeeded: i32,
    pub completions: i32,
    pub failed_pods: i32,
    pub seconds: Option<f64>,
    /// Runs that ended, and how many of them failed: failed pods (Never)
    /// and container restarts (OnFailure) are failed runs.
    pub runs: i32,
    pub failed_runs: i32,
    pub configured_probability: Option<f64>,
    pub pods: Vec<PodRow>,
    /// The Job's status conditions in the order the controller added them.
    pub conditions: Vec<JobCondition>,
    /// status.completedIndexes and status.failedIndexes of an Indexed Job
    /// (`0-2,4`), as the controller writes them; None when it wrote none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_indexes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_indexes: Option<String>,
    /// status.terminating when the Job finished (from 1.29, where the
    /// version writes it): pods still being terminated then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminating: Option<i32>,
    /// The controller that manages the Job (spec.managedBy), when it is not
    /// the built-in Job controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_by: Option<String>,
    /// A pod that could not pull its image, when the Job did not complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull: Option<ImagePull>,
    /// The Job's timeline (None where nothing gave one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<JobTimes>,
}

impl JobReport {
    /// The observed failure rate (failed runs of runs ended) with its 95%
    /// Clopper-Pearson interval; None before any run ended.
    pub fn observed_failure_rate(&self) -> Option<(f64, (f64, f64))> {
        let (k, n) = (self.failed_runs.max(0) as u64, self.runs.max(0) as u64);
        (n > 0).then(|| (k as f64 / n as f64, crate::odds::exact::clopper_pearson(k, n, 0.05)))
    }

    /// Writes the report as JSON to `file` when one is given (`--save-report`).
    pub fn save(&self, file: Option<&std::path::Path>, out: &Reporter) -> anyhow::Result<()> {
        use anyhow::Context;
        let Some(file) = file else { return Ok(()) };
        let json = serde_json::to_vec_pretty(self)?;
        std::fs::write(file, json).with_context(|| format!("--save-report {}: writing the report", file.display()))?;
        out.status(format!(
            "saved the report to {} (`cargo xtask alerts --report {}` drills it)",
            file.display(),
            file.display()
        ));
        Ok(())
    }

    /// A report file given to `flag`: the JSON `watch`, `run-local` or
    /// `--save-report` write, or `release`'s, which holds it under `report`.
    /// A file that cannot be read or is no report is a usage error.
    pub fn read(file: &std::path::Path, flag: &str) -> Result<JobReport, Error> {
        let text = std::fs::read_to_string(file).map_err(|e| {
            Error::usage(format!(
                "{flag} {}: cannot read it ({e}); give a file --save-report wrote, or what `watch`, `run-local` \
                     or `release` printed with --output json",
                file.display()
            ))
        })?;
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            Error::usage(format!(
                "{flag} {}: not JSON ({e}); give the output of `watch`, `run-local` or `release` with --output json, \
                 or a file --save-report wrote",
                file.display()
            ))
        })?;
        let value = match value.get("report") {
            Some(inner) if inner.is_object() => inner.clone(),
            _ => value,
        };
        serde_json::from_value(value).map_err(|e| {
            Error::usage(format!(
                "{flag} {}: not a Job report ({e}); give what --save-report or --output json wrote",
                file.display()
            ))
        })
    }

    /// Ok when the Job completed; a failed Job is an error (exit code 1).
    pub fn verdict(&self) -> Result<(), Error> {
        match self.result {
            JobResult::Complete => Ok(()),
            JobResult::Failed => {
                Err(Error::new(ErrorKind::Failed, format!("job.batch/{} failed: {}", self.name, self.reason)))
            }
        }
    }
}

impl fmt::Display for JobReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "job.batch/{} {:?}", self.name, self.result)?;
        if self.result == JobResult::Failed {
            write!(f, ": {}", self.reason)?;
        }
        if !self.message.is_empty() {
            write!(f, " ({})", self.message)?;
        }
        write!(f, "\n  succeeded {} of {}, failed pods {}", self.succeeded, self.completions, self.failed_pods)?;
        if let Some(s) = self.seconds {
            write!(f, ", took {}", human_seconds(s))?;
        }
        if self.conditions.len() > 1 {
            write!(f, "\n  conditions: {}", condition_sequence(&self.conditions))?;
        }
        match (&self.completed_indexes, &self.failed_indexes) {
            (None, None) => {}
            (completed, failed) => write!(
                f,
                "\n  completed indexes {}; failed indexes {}",
                completed.as_deref().filter(|s| !s.is_empty()).unwrap_or("none"),
                failed.as_deref().filter(|s| !s.is_empty()).unwrap_or("none")
            )?,
        }
        if let Some(n) = self.terminating.filter(|n| *n > 0) {
            write!(f, "\n  {n} pods still terminating when it finished")?;
        }
        if let Some(m) = &self.managed_by {
            write!(f, "\n  managed by {m}, not the built-in Job controller")?;
        }
        let failed: Vec<&PodRow> = self.pods.iter().filter(|p| p.has_failed_run()).collect();
        if !failed.is_empty() {
            f.write_str("\n  failed runs:")?;
            for p in failed.iter().take(FAILED_LISTED) {
                write!(f, "\n    {}  exit {}  {}", p.name, p.failed_exit_code(), p.reason.as_deref().unwrap_or("-"))?;
                if p.restarts > 0 {
                    write!(f, "  restarts {}", p.restarts)?;
                }
                if let Some(m) = &p.message {
                    write!(f, "  {m}")?;
                }
            }
            if failed.len() > FAILED_LISTED {
                // The rest by exit code, most common first.
                let mut codes: BTreeMap<String, usize> = BTreeMap::new();
                for p in &failed[FAILED_LISTED..] {
                    *codes.entry(p.failed_exit_code()).or_default() += 1;
                }
                let mut codes: Vec<_> = codes.into_iter().collect();
                codes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                write!(
                    f,
                    "\n    and {} more (exit {}); `--output json` lists every pod",
                    failed.len() - FAILED_LISTED,
                    codes.iter().map(|(c, n)| format!("{c} ×{n}")).collect::<Vec<_>>().join(", ")
                )?;
            }
        }
        if let Some(pull) = &self.image_pull {
            write!(f, "\n  image pull: {pull}")?;
        }
        if self.runs > 0 {
            write!(
                f,
                "\n  observed failure rate {} of {} runs = {:.0}%",
                self.failed_runs,
                self.runs,
                100.0 * f64::from(self.failed_runs) / f64::from(self.runs)
            )?;
            if let Some(p) = self.configured_probability {
                write!(f, " (configured FAIL_PROBABILITY {p})")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn failed_pod(n: usize, code: i32) -> PodRow {
        PodRow {
            name: format!("job-test-{n:05}"),
            phase: PodPhase::Failed,
            index: None,
            exit_code: Some(code),
            reason: Some("Error".into()),
            message: Some(format!("job-worker: simulated failure ({n})")),
            restarts: 0,
            seconds: Some(1.0),
            last_exit_code: None,
            created_at: None,
            finished_at: None,
        }
    }

    /// A Job that failed with BackoffLimitExceeded after `pods`, each a
    /// failed run; other tests change what they need.
    pub(crate) fn report(pods: Vec<PodRow>) -> JobReport {
        JobReport {
            name: "job-test".into(),
            namespace: "job-test".into(),
            result: JobResult::Failed,
            reason: "BackoffLimitExceeded".into(),
            message: String::new(),
            succeeded: 0,
            completions: 1,
            failed_pods: pods.len() as i32,
            seconds: None,
            configured_probability: None,
            runs: pods.len() as i32,
            failed_runs: pods.len() as i32,
            pods,
            conditions: vec![JobCondition::new("Failed", "BackoffLimitExceeded", "")],
            completed_indexes: None,
            failed_indexes: None,
            terminating: None,
            managed_by: None,
            image_pull: None,
            times: None,
        }
    }

    #[test]
    fn failed_pods_are_listed_with_exit_code_and_message_then_summarised() {
        let few = report((0..3).map(|n| failed_pod(n, 1)).collect()).to_string();
        assert!(few.contains("job-test-00002  exit 1  Error  job-worker: simulated failure (2)"), "{few}");
        assert!(!few.contains("more"), "{few}");

        let mut pods: Vec<PodRow> = (0..FAILED_LISTED + 2).map(|n| failed_pod(n, 1)).collect();
        pods.push(failed_pod(99, 137));
        pods.push(failed_pod(98, 1));
        let many = report(pods).to_string();
        assert_eq!(many.lines().filter(|l| l.contains("  exit ")).count(), FAILED_LISTED, "{many}");
        assert!(many.contains("\n    and 4 more (exit 1 ×3, 137 ×1); `--output json` lists every pod"), "{many}");
    }

    #[test]
    fn the_json_keeps_the_documented_field_names() {
        let json = serde_json::to_value(report(vec![failed_pod(0, 3)])).unwrap();
        assert_eq!(json["job"], "job-test");
        assert_eq!(json["result"], "Failed");
        assert_eq!(json["pods"][0]["exit_code"], 3);
        assert_eq!(json["pods"][0]["message"], "job-worker: simulated failure (0)");
        assert!(json["pods"][0].get("seconds").is_none(), "{json}");
        assert_eq!(report(vec![]).verdict().unwrap_err().kind, ErrorKind::Failed);
    }

    #[test]
    fn a_saved_report_reads_back_with_the_same_numbers() {
        // Found by the api_objects fuzz target: without serde_json's
        // float_roundtrip, FAIL_PROBABILITY 0.00000000000000000000002 was
        // saved as 2.0000000000000002e-23 and read back as 2e-23.
        let mut r = report(vec![failed_pod(0, 3)]);
        r.configured_probability = job_worker::config::parse_probability("0.00000000000000000000002");
        r.seconds = Some(0.1 + 0.2);
        let json = serde_json::to_string(&r).unwrap();
        let back: JobReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back.configured_probability.map(f64::to_bits), r.configured_probability.map(f64::to_bits));
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
    }

    #[test]
    fn a_phase_is_written_and_read_as_its_word() {
        for phase in [
            PodPhase::Pending,
            PodPhase::Running,
            PodPhase::Succeeded,
            PodPhase::Failed,
            PodPhase::Unknown,
            PodPhase::Terminating,
            PodPhase::Deleted,
        ] {
            let json = serde_json::to_value(phase).unwrap();
            assert_eq!(json, phase.as_str());
            assert_eq!(format!("{phase}"), phase.as_str());
            assert_eq!(serde_json::from_value::<PodPhase>(json).unwrap(), phase);
        }
        assert_eq!(serde_json::from_str::<PodPhase>("\"Evicting\"").unwrap(), PodPhase::Unknown);
        assert_eq!(PodPhase::from_api("Failed"), PodPhase::Failed);
        assert_eq!(PodPhase::from_api("Terminating"), PodPhase::Unknown);
        assert_eq!(format!("{:<10}|", PodPhase::Running), "Running   |");
    }
}
