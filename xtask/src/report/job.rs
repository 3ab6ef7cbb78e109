//! The Job report: what the retries did, whoever ran the Job. A watched
//! cluster Job fills it (`cluster::status`); so does anything else that
//! runs a Job's pods. It prints as text (`Display`) and JSON (`Serialize`),
//! and the live pod table shows the same rows while the Job runs.

use std::collections::BTreeMap;
use std::fmt;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

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
    pub phase: String,
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

impl PodRow {
    /// The exit code that failed it: this run's, else the previous run's
    /// (a restarted container now running); `-` when none is known.
    fn failed_exit_code(&self) -> String {
        self.exit_code.or(self.last_exit_code).map_or("-".into(), |c| c.to_string())
    }

    /// Whether any run of this pod failed.
    pub fn has_failed_run(&self) -> bool {
        self.phase == "Failed" || self.restarts > 0 || self.exit_code.is_some_and(|c| c != 0)
    }

    /// What the non-terminal view prints when it changes (not the time,
    /// which changes every second).
    fn state_key(&self) -> (&str, Option<&str>, Option<i32>, Option<&str>, i32) {
        (&self.phase, self.index.as_deref(), self.exit_code, self.reason.as_deref(), self.restarts)
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

    /// Writes the report where `--save-report` and `--html` ask.
    pub fn keep(&self, files: &crate::flags::ReportFilesFlags, out: &Reporter) -> anyhow::Result<()> {
        self.save(files.save_report.as_deref(), out)?;
        super::html::write(self, files.html.as_deref(), out).map(drop)
    }

    /// Writes the report as JSON to `file` when one is given (`--save-report`).
    fn save(&self, file: Option<&std::path::Path>, out: &Reporter) -> anyhow::Result<()> {
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

/// Pods shown one by one in the live table; beyond this the table shows
/// counts by phase and the pods that failed.
pub const TABLE_ROWS: usize = 30;

/// How often a terminal table is redrawn at most: a Job of thousands of
/// pods sends events faster than anyone reads.
const REDRAW_EVERY: Duration = Duration::from_millis(250);

/// How often, beyond TABLE_ROWS pods, a log gets a line of counts: often
/// enough to see progress, rarely enough that ten thousand pods make a
/// readable log.
pub const SUMMARY_EVERY: Duration = Duration::from_secs(5);

/// The live view: a table redrawn in place on a terminal, a line per
/// change otherwise (logs and pipes); beyond TABLE_ROWS pods a log gets
/// the pods with failed runs and a periodic line of counts.
pub struct PodTable {
    tty: bool,
    drawn: usize,
    last_draw: Option<Instant>,
    last_summary: Option<Instant>,
    out: Reporter,
}

impl PodTable {
    pub fn new(out: &Reporter) -> PodTable {
        let tty = !out.quiet && std::io::stderr().is_terminal();
        PodTable { tty, drawn: 0, last_draw: None, last_summary: None, out: *out }
    }

    fn line(row: &PodRow) -> String {
        format!(
            "{:<28} {:<10} {:>5} {:>6} {:<18} {:>8} {:>8}",
            row.name,
            row.phase,
            row.index.as_deref().unwrap_or("-"),
            row.exit_code.map_or("-".into(), |c| c.to_string()),
            row.reason.as_deref().unwrap_or("-"),
            row.restarts,
            row.seconds.map_or("-".into(), |s| format!("{s:.0}s")),
        )
    }

    /// One pod changed (`before` is its previous row, if any); `rows` are
    /// all pods now.
    pub fn update(&mut self, before: Option<&PodRow>, changed: &PodRow, rows: &BTreeMap<String, PodRow>) {
        if self.tty {
            if self.last_draw.is_some_and(|t| t.elapsed() < REDRAW_EVERY) {
                return;
            }
            self.draw(rows);
            return;
        }
        for line in self.log_lines(before, changed, rows, Instant::now()) {
            self.out.status(line);
        }
    }

    /// What a log gets for a change at `now`: the pod's line while the pods
    /// fit the table, or when a run of it failed; beyond TABLE_ROWS pods a
    /// line of counts every SUMMARY_EVERY, the first saying what the log
    /// lists from then on.
    fn log_lines(
        &mut self,
        before: Option<&PodRow>,
        changed: &PodRow,
        rows: &BTreeMap<String, PodRow>,
        now: Instant,
    ) -> Vec<String> {
        let mut lines = Vec::new();
        let new_state = before.is_none_or(|b| b.state_key() != changed.state_key());
        if new_state && (rows.len() <= TABLE_ROWS || changed.has_failed_run()) {
            lines.push(format!("pod {}", Self::line(changed).trim_end()));
        }
        if rows.len() > TABLE_ROWS && self.last_summary.is_none_or(|t| now.duration_since(t) >= SUMMARY_EVERY) {
            let first = self.last_summary.is_none();
            self.last_summary = Some(now);
            lines.push(format!(
                "{}{}",
                Self::counts(rows),
                if first {
                    format!(
                        "; more than {TABLE_ROWS} pods: from now on only pods with failed runs are listed, \
                         and these counts every {}",
                        humantime::format_duration(SUMMARY_EVERY)
                    )
                } else {
                    String::new()
                }
            ));
        }
        lines
    }

    /// `10000 pods: 100 Failed, 9900 Succeeded`
    fn counts(rows: &BTreeMap<String, PodRow>) -> String {
        let mut phases: BTreeMap<&str, usize> = BTreeMap::new();
        for r in rows.values() {
            *phases.entry(&r.phase).or_default() += 1;
        }
        format!(
            "{} pods: {}",
            rows.len(),
            phases.iter().map(|(p, n)| format!("{n} {p}")).collect::<Vec<_>>().join(", ")
        )
    }

    /// The screen: every pod while they fit, else counts by phase and the
    /// most recent failures.
    pub fn screen(rows: &BTreeMap<String, PodRow>) -> Vec<String> {
        let mut lines = vec![format!(
            "{:<28} {:<10} {:>5} {:>6} {:<18} {:>8} {:>8}",
            "POD", "PHASE", "INDEX", "EXIT", "REASON", "RESTARTS", "TIME"
        )];
        if rows.len() <= TABLE_ROWS {
            lines.extend(rows.values().map(Self::line));
            return lines;
        }
        let failed: Vec<&PodRow> = rows.values().filter(|r| r.has_failed_run()).collect();
        lines.extend(failed.iter().rev().take(TABLE_ROWS - 2).rev().map(|r| Self::line(r)));
        lines.push(format!(
            "{}{}",
            Self::counts(rows),
            if failed.len() > TABLE_ROWS - 2 {
                format!(" (the last {} of {} with failed runs shown)", TABLE_ROWS - 2, failed.len())
            } else {
                String::new()
            }
        ));
        lines
    }

    fn draw(&mut self, rows: &BTreeMap<String, PodRow>) {
        let screen = Self::screen(rows);
        if self.drawn > 0 {
            eprint!("\x1b[{}A\x1b[J", self.drawn);
        }
        eprintln!("{}", screen.join("\n"));
        self.drawn = screen.len();
        self.last_draw = Some(Instant::now());
    }

    /// A line under the table; the table is drawn afresh below it.
    pub fn note(&mut self, message: &str) {
        self.drawn = 0;
        self.out.status(message);
    }

    /// The final state: on a terminal the table, left as it is; in a log
    /// that summarised, the last counts.
    pub fn close(&mut self, rows: &BTreeMap<String, PodRow>) {
        if self.tty && !rows.is_empty() {
            self.draw(rows);
        } else if !self.tty && self.last_summary.is_some() {
            self.out.status(Self::counts(rows));
        }
        self.drawn = 0;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn failed_pod(n: usize, code: i32) -> PodRow {
        PodRow {
            name: format!("job-test-{n:05}"),
            phase: "Failed".into(),
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
    fn a_log_of_a_big_job_lists_failed_runs_and_counts() {
        let mut table = PodTable::new(&Reporter::new(crate::choices::Output::Text));
        let mut rows: BTreeMap<String, PodRow> = BTreeMap::new();
        let start = Instant::now();
        let mut log = Vec::new();
        // 10,000 pods, one event each, a millisecond apart: one in a
        // hundred fails.
        for n in 0..10_000 {
            let mut row = failed_pod(n, 1);
            if n % 100 != 50 {
                row.phase = "Succeeded".into();
                row.exit_code = Some(0);
                row.reason = Some("Completed".into());
                row.message = None;
            }
            let before = rows.insert(row.name.clone(), row.clone());
            log.extend(table.log_lines(before.as_ref(), &row, &rows, start + Duration::from_millis(n as u64)));
        }
        let pods = log.iter().filter(|l| l.starts_with("pod ")).count();
        // The first 30 one by one, then the 100 failures after them.
        assert_eq!(pods, TABLE_ROWS + 100, "{log:#?}");
        assert!(log.iter().filter(|l| l.starts_with("pod ")).skip(TABLE_ROWS).all(|l| l.contains(" Failed ")));
        // Counts at the 31st pod, then every 5 s (5,000 events here).
        let counts: Vec<&String> = log.iter().filter(|l| l.contains(" pods: ")).collect();
        assert_eq!(counts.len(), 2, "{counts:#?}");
        assert_eq!(
            counts[0],
            "31 pods: 31 Succeeded; more than 30 pods: from now on only pods with failed runs are listed, \
             and these counts every 5s"
        );
        assert_eq!(counts[1], "5031 pods: 50 Failed, 4981 Succeeded");
        // A pod whose state did not change adds nothing but counts.
        let again = rows.values().next().unwrap().clone();
        assert!(table.log_lines(Some(&again), &again, &rows, start).is_empty());
    }

    #[test]
    fn a_big_job_is_summarised_on_screen() {
        let mut rows: BTreeMap<String, PodRow> = BTreeMap::new();
        for n in 0..10_000 {
            let mut row = failed_pod(n, 1);
            if n % 100 != 0 {
                row.phase = "Succeeded".into();
                row.exit_code = Some(0);
                row.message = None;
            }
            rows.insert(row.name.clone(), row);
        }
        let screen = PodTable::screen(&rows);
        assert_eq!(screen.len(), TABLE_ROWS, "{screen:#?}");
        assert_eq!(
            screen.last().unwrap(),
            "10000 pods: 100 Failed, 9900 Succeeded (the last 28 of 100 with failed runs shown)"
        );
        assert!(screen[1].starts_with("job-test-07200 "), "{screen:#?}");

        let few: BTreeMap<String, PodRow> = rows.into_iter().take(3).collect();
        assert_eq!(PodTable::screen(&few).len(), 4);
    }
}
