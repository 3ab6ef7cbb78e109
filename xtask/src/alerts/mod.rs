//! `cargo xtask alerts`: will my alert fire for this Job? A Job's timeline
//! (a finished run's report, the Job on the cluster, or typical runs the
//! odds simulation draws) becomes the series kube-state-metrics exposes
//! (`series`), the real Prometheus rule engine evaluates the rules on them
//! (`promtool`), and the drill says per alert when it goes pending, fires
//! and resolves, or why it never fires.

pub mod promtool;
pub mod rules;
pub mod series;
pub mod typical;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::Error;
use crate::args::JobSource;
use crate::flags::AlertsFlags;
use crate::manifest::params;
use crate::report::job::{JobReport, JobResult};
use crate::report::{Reporter, human_seconds};
use promtool::State;
use rules::Alert;

/// The longest a drill replays: a Job that never ends is followed this
/// far past its last known moment, which covers the 12 hours of
/// KubeJobNotCompleted.
const UNFINISHED_HORIZON: f64 = 13.0 * 3600.0;

/// Drills the Job `source` names: a report file (`--report`), the Job on
/// the cluster (`--name`), or typical runs of the Job the flags describe.
pub fn run(flags: &AlertsFlags, source: JobSource<'_>, out: &Reporter) -> Result<()> {
    let scrape = whole_seconds("--scrape-interval", flags.scrape_interval)?;
    let evaluation = whole_seconds("--evaluation-interval", flags.evaluation_interval)?;
    crate::debian::PROMTOOL.ensure(true, out)?;
    promtool::check_rules(&flags.rules)?;
    let runs: Vec<(String, JobReport)> = match source {
        JobSource::File(file) => vec![(format!("the run in {}", file.display()), read_report(file)?)],
        JobSource::Cluster => {
            let report = crate::runtime()?.block_on(cluster_report(flags, out))?;
            vec![(format!("job.batch/{} on the cluster", report.name), report)]
        }
        JobSource::Flags => {
            let (params, warnings) = params::job_params(&flags.job)?;
            for w in warnings {
                out.warn(w);
            }
            let refused = crate::odds::unmodelled(&params);
            if !refused.is_empty() {
                return Err(Error::usage(format!(
                    "{}: the odds simulation that draws typical runs cannot model it yet; run the Job \
                     (`cargo xtask run-local ... --save-report run.json`) and drill its report with --report run.json",
                    refused.join(", ")
                ))
                .into());
            }
            let (typical, simulated) = typical::typical_runs(&params, flags.trial_seed);
            out.status(format!("drew typical runs from {simulated} simulated Jobs (seed {})", flags.trial_seed));
            typical.into_iter().map(|t| (t.label, t.report)).collect()
        }
    };
    let dir =
        std::env::temp_dir().join(format!("job-test-alerts-{}-{}", std::process::id(), crate::local::random_suffix()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let drill = (|| {
        let (files, alerts) = rules::load(&flags.rules, &dir)?;
        let mut drilled = Vec::new();
        let mut saved = Vec::new();
        for (label, report) in runs {
            out.status(format!("replaying {label} through promtool"));
            let (run, series) = drill_run(&dir, &files, &alerts, label, &report, scrape, evaluation)?;
            saved.push(serde_json::json!({
                "run": run.run,
                "interval": format!("{scrape}s"),
                "input_series": series.iter().map(|(s, v)| serde_json::json!({"series": s, "values": v})).collect::<Vec<_>>(),
            }));
            drilled.push(run);
        }
        if let Some(file) = &flags.save_series {
            std::fs::write(file, serde_json::to_vec_pretty(&saved)?)
                .with_context(|| format!("--save-series {}: writing the series", file.display()))?;
            out.status(format!("saved the series to {}", file.display()));
        }
        anyhow::Ok(Drill {
            rules: if flags.rules.is_empty() {
                vec![PathBuf::from(rules::DEFAULT_RULES_PATH)]
            } else {
                flags.rules.clone()
            },
            scrape_interval_seconds: scrape,
            evaluation_interval_seconds: evaluation,
            runs: drilled,
        })
    })();
    let _ = std::fs::remove_dir_all(&dir);
    out.result(&drill?);
    Ok(())
}

fn whole_seconds(flag: &str, d: Duration) -> Result<u64> {
    if d.as_secs() == 0 || d.subsec_nanos() != 0 {
        return Err(Error::usage(format!(
            "{flag} {}: give a whole number of seconds, at least 1s (Prometheus' default is 1m)",
            humantime::format_duration(d)
        ))
        .into());
    }
    Ok(d.as_secs())
}

/// A report file (see `JobReport::read`) with the times a drill replays.
fn read_report(file: &Path) -> Result<JobReport> {
    let report = JobReport::read(file, "--report")?;
    if report.times.as_ref().and_then(|t| t.started).is_none() {
        return Err(Error::usage(format!(
            "--report {}: the report has no times (status.startTime and the pods' times): it was written before \
             job-test kept them, or the Job never started; watch the Job again, or run it with --save-report",
            file.display()
        ))
        .into());
    }
    Ok(report)
}

/// The Job on the cluster, read now: its status and its pods' times.
async fn cluster_report(flags: &AlertsFlags, out: &Reporter) -> Result<JobReport> {
    let (name, namespace) = (&flags.job.name, &flags.job.namespace);
    let (_, report) =
        crate::cluster::watch::read_now(&crate::cluster::Access::from(&flags.cluster), name, namespace, out).await?;
    if series::finished_at(&report).is_none() {
        out.warn(format!(
            "job.batch/{name} has not finished: the drill holds it as it is now, with its active pods running on"
        ));
    }
    Ok(report)
}

/// What the drill found, for every run.
#[derive(Debug, Serialize)]
pub struct Drill {
    pub rules: Vec<PathBuf>,
    pub scrape_interval_seconds: u64,
    pub evaluation_interval_seconds: u64,
    pub runs: Vec<RunDrill>,
}

/// One run: how it ended, and each alert.
#[derive(Debug, Serialize)]
pub struct RunDrill {
    pub run: String,
    pub job: String,
    pub namespace: String,
    /// None while the Job has not finished.
    pub result: Option<JobResult>,
    pub reason: String,
    /// Seconds after the Job's creation.
    pub finished: Option<f64>,
    pub deleted: Option<f64>,
    pub ttl_seconds_after_finished: Option<i64>,
    /// How far the drill replayed.
    pub until: f64,
    pub alerts: Vec<AlertOutcome>,
    /// What the series show that users trip over.
    pub notes: Vec<String>,
}

/// One alert's course in one run; times in seconds after the Job's creation.
#[derive(Debug, Serialize)]
pub struct AlertOutcome {
    pub alert: String,
    pub for_seconds: f64,
    pub fires: bool,
    pub pending: Option<f64>,
    pub firing: Option<f64>,
    pub resolved: Option<f64>,
    pub why: String,
}

fn drill_run(
    dir: &Path,
    files: &[PathBuf],
    alerts: &[Alert],
    label: String,
    report: &JobReport,
    scrape: u64,
    evaluation: u64,
) -> Result<(RunDrill, Vec<(String, String)>)> {
    let finished = series::finished_at(report);
    let deleted = series::deleted_at(report);
    let hold = alerts.iter().map(|a| a.hold.as_secs_f64()).fold(0.0, f64::max);
    let last_known = report.pods.iter().filter_map(|p| p.finished_at.or(p.created_at)).fold(0.0, f64::max);
    let until = match (deleted, finished) {
        (Some(d), _) => d + hold + 3.0 * evaluation as f64,
        (None, Some(f)) => f + hold + 3.0 * evaluation as f64,
        (None, None) => last_known + UNFINISHED_HORIZON.max(hold + 3.0 * evaluation as f64),
    };
    let scraped = series::scraped(report, scrape as f64, until);
    let evaluations = (until / evaluation as f64).floor() as u64 + 1;
    let timeline = promtool::replay(dir, files, &scraped, scrape, evaluation, evaluations)?;
    let at = |step: u64| (step * evaluation) as f64;
    let mut outcomes = Vec::new();
    for alert in alerts {
        let states = timeline.get(&alert.name);
        let state = |step: u64| states.and_then(|s| s.get(&step)).copied();
        let first = (0..evaluations).find(|s| state(*s).is_some());
        let firing = (0..evaluations).find(|s| state(*s) == Some(State::Firing));
        let pending = first.filter(|s| state(*s) == Some(State::Pending));
        let resolved = firing.and_then(|f| (f..evaluations).find(|s| state(*s).is_none()));
        // The end of the first pending spell that never fired.
        let lapsed = match (first, firing) {
            (Some(p), None) => (p..evaluations).find(|s| state(*s).is_none()),
            _ => None,
        };
        let why = explain(
            alert,
            report,
            deleted,
            Spell {
                pending: pending.map(at),
                firing: firing.map(at),
                resolved: resolved.map(at),
                lapsed: lapsed.map(at),
                until,
                window: (scrape + evaluation) as f64,
            },
        );
        outcomes.push(AlertOutcome {
            alert: alert.name.clone(),
            for_seconds: alert.hold.as_secs_f64(),
            fires: firing.is_some(),
            pending: pending.map(at),
            firing: firing.map(at),
            resolved: resolved.map(at),
            why,
        });
    }
    let run = RunDrill {
        run: label,
        job: report.name.clone(),
        namespace: report.namespace.clone(),
        result: finished.map(|_| report.result),
        reason: report.reason.clone(),
        finished,
        deleted,
        ttl_seconds_after_finished: report.times.as_ref().and_then(|t| t.ttl_seconds_after_finished),
        until,
        alerts: outcomes,
        notes: notes(report),
    };
    Ok((run, scraped))
}

/// When an alert's states changed.
struct Spell {
    pending: Option<f64>,
    firing: Option<f64>,
    resolved: Option<f64>,
    /// When a pending alert went back to inactive without firing.
    lapsed: Option<f64>,
    until: f64,
    /// A scrape and an evaluation: how late the rules can see a change.
    window: f64,
}

fn t(s: f64) -> String {
    human_seconds(s)
}

/// Why the alert did what it did, in words.
fn explain(alert: &Alert, report: &JobReport, deleted: Option<f64>, s: Spell) -> String {
    let hold = alert.hold.as_secs_f64();
    let ttl = report.times.as_ref().and_then(|x| x.ttl_seconds_after_finished);
    let by_deletion = |at: f64| deleted.is_some_and(|d| at >= d && at <= d + s.window);
    let deletion = || match ttl {
        Some(ttl) => format!("ttlSecondsAfterFinished deleted the Job {} after it finished", t(ttl as f64)),
        None => "the Job was deleted".into(),
    };
    match (s.firing, s.pending) {
        (Some(firing), _) => {
            let mut why = match s.pending {
                Some(p) => format!("pending at {}, fires at {} ({} later, its `for`)", t(p), t(firing), t(firing - p)),
                None => format!("fires at {} (no `for`)", t(firing)),
            };
            why += &match s.resolved {
                Some(r) if by_deletion(r) => format!("; resolves at {} when {}", t(r), deletion()),
                Some(r) => format!("; resolves at {} when its expression stops being true", t(r)),
                None if ttl.is_none() || deleted.is_none() => format!(
                    "; still firing when the drill ends at {}: nothing deletes the Job, so it fires until someone does",
                    t(s.until)
                ),
                None => format!("; still firing when the drill ends at {}", t(s.until)),
            };
            why
        }
        (None, Some(from)) => {
            let to = s.lapsed.unwrap_or(s.until);
            let mut why = format!(
                "never fires: pending from {} to {} ({}), shorter than its `for: {}`",
                t(from),
                t(to),
                t(to - from),
                t(hold)
            );
            if by_deletion(to) {
                why += &format!(
                    "; {}, and the rule needs {} plus a scrape and an evaluation: keep a failed Job at least {} \
                     (--ttl-seconds-after-finished {} or more)",
                    deletion(),
                    t(hold),
                    t(hold + s.window),
                    rules::needed_lifetime(alert.hold, Duration::from_secs_f64(s.window)).as_secs_f64().ceil()
                );
            }
            why
        }
        (None, None) => match report.result {
            _ if report.times.as_ref().and_then(|x| x.finished).is_none() => {
                "never fires: its expression is not true for this Job so far".into()
            }
            JobResult::Complete => "never fires: its expression is never true for this Job, which completed".into(),
            JobResult::Failed => {
                if deleted.is_some_and(|d| d <= series::finished_at(report).unwrap_or(0.0) + s.window) {
                    format!("never fires: {} before a scrape saw it fail", deletion())
                } else {
                    "never fires: its expression is never true for this Job".into()
                }
            }
        },
    }
}

/// What the series show that users trip over.
fn notes(r: &JobReport) -> Vec<String> {
    let mut notes = Vec::new();
    if r.result == JobResult::Complete && r.failed_pods > 0 && series::finished_at(r).is_some() {
        notes.push(format!(
            "kube_job_status_failed is {} although the Job completed: a rule on kube_job_status_failed > 0 alerts \
             on a Job that succeeded on a retry (kube-state-metrics#2642); kube_job_failed, which KubeJobFailed \
             reads, never exists for it",
            r.failed_pods
        ));
    }
    let failed_reason = r.conditions.iter().find(|c| c.kind == "Failed").map(|c| c.reason.as_str());
    if let Some(reason) =
        failed_reason.filter(|reason| ["BackoffLimitExceeded", "DeadlineExceeded", "Evicted"].contains(reason))
        && r.failed_pods > 0
    {
        notes.push(format!(
            "once the Job failed, kube_job_status_failed{{reason=\"{reason}\"}} is 1, a flag and not the {} failed \
             pods, and the series without a reason (the count) ends: a rule summing kube_job_status_failed counts \
             the Job, not its pods",
            r.failed_pods
        ));
    }
    match (r.result, r.times.as_ref().and_then(|t| t.ttl_seconds_after_finished)) {
        (JobResult::Failed, None) if series::finished_at(r).is_some() => notes.push(
            "the Job has no ttlSecondsAfterFinished: a failed Job stays, and KubeJobFailed fires until someone deletes \
             it (kubernetes-mixin#295)"
                .into(),
        ),
        _ => {}
    }
    notes
}

impl fmt::Display for Drill {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rules: Vec<String> = self.rules.iter().map(|r| r.display().to_string()).collect();
        write!(
            f,
            "alert drill: rules {}; kube-state-metrics scraped every {}, rules evaluated every {}; times from the \
             Job's creation",
            rules.join(", "),
            t(self.scrape_interval_seconds as f64),
            t(self.evaluation_interval_seconds as f64)
        )?;
        for run in &self.runs {
            write!(f, "\n\n{}", run.run)?;
            write!(f, "\n  job.batch/{} ", run.job)?;
            match (run.result, run.finished) {
                (Some(JobResult::Complete), Some(at)) => write!(f, "Complete at {}", t(at))?,
                (Some(JobResult::Failed), Some(at)) => write!(f, "Failed ({}) at {}", run.reason, t(at))?,
                _ => write!(f, "still running")?,
            }
            match (run.deleted, run.ttl_seconds_after_finished) {
                (Some(d), Some(ttl)) => write!(f, "; deleted at {} (ttlSecondsAfterFinished {})", t(d), t(ttl as f64))?,
                _ if run.finished.is_some() => write!(f, "; never deleted (no ttlSecondsAfterFinished)")?,
                _ => {}
            }
            let width = run.alerts.iter().map(|a| a.alert.len()).max().unwrap_or(0);
            for a in &run.alerts {
                write!(f, "\n  {:width$}  {}", a.alert, a.why)?;
            }
            for note in &run.notes {
                write!(f, "\n  note: {note}")?;
            }
        }
        Ok(())
    }
}
