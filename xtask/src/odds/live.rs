//! `odds --name JOB`: the odds of a Job that is running (or has run), from
//! where it stands. The failure probability is estimated from the runs its
//! pods have made so far, with a 95% Clopper-Pearson interval; the chance
//! that it still completes is the closed form for what is left: the
//! completions still missing, against the failures the limit still allows,
//! at the estimate and at the interval's ends.

use std::fmt;

use serde::Serialize;

use super::exact::exact;
use super::{Model, percent};
use crate::manifest::params::RestartPolicy;
use crate::report::job::{JobReport, JobResult};

/// What `odds --name` answers.
#[derive(Debug, Clone, Serialize)]
pub struct Standing {
    pub job: String,
    pub namespace: String,
    /// None while it runs.
    pub result: Option<JobResult>,
    pub succeeded: i32,
    pub completions: i32,
    pub failed_pods: i32,
    pub runs: i32,
    pub failed_runs: i32,
    /// failed_runs / runs, with its 95% Clopper-Pearson interval.
    pub estimated_probability: Option<f64>,
    pub interval: Option<(f64, f64)>,
    pub configured_probability: Option<f64>,
    /// The chance to complete from here at the estimate, and at the
    /// interval's low and high failure probability (high chance first).
    pub p_complete: Option<f64>,
    pub p_complete_range: Option<(f64, f64)>,
    /// Why the chance is not given, where it is not.
    pub note: Option<String>,
}

/// Where the Job stands, from its report and its model.
pub fn standing(report: &JobReport, m: &Model, finished: bool) -> Standing {
    let observed = report.observed_failure_rate();
    let (estimate, interval) = (observed.map(|o| o.0), observed.map(|o| o.1));
    let mut s = Standing {
        job: report.name.clone(),
        namespace: report.namespace.clone(),
        result: finished.then_some(report.result),
        succeeded: report.succeeded,
        completions: report.completions,
        failed_pods: report.failed_pods,
        runs: report.runs,
        failed_runs: report.failed_runs,
        estimated_probability: estimate,
        interval,
        configured_probability: report.configured_probability,
        p_complete: None,
        p_complete_range: None,
        note: None,
    };
    if finished {
        s.note = Some("it has finished: nothing is left to chance".into());
        return s;
    }
    let (Some(estimate), Some((low, high))) = (estimate, interval) else {
        s.note = Some("no run has ended yet: nothing to estimate from".into());
        return s;
    };
    if m.restart_policy != RestartPolicy::Never || m.indexed {
        s.note = Some(
            "the chance from here is computed for restartPolicy Never, NonIndexed (where every failed pod counts \
             against one backoffLimit)"
                .into(),
        );
        return s;
    }
    // What is left: the completions still missing, the failures the limit
    // still allows, pods alike.
    let left = |f: f64| {
        let mut rest = m.clone();
        rest.completions = (report.completions - report.succeeded).max(0) as u32;
        rest.backoff_limit = m.backoff_limit.map(|b| b.saturating_sub(report.failed_pods.max(0) as u32));
        rest.fail_probability = f;
        rest.fail_indexes = None;
        rest.fail_attempts = 0;
        if rest.completions == 0 {
            return Some(1.0);
        }
        exact(&rest).map(|e| e.p_complete)
    };
    s.p_complete = left(estimate);
    s.p_complete_range = left(low).zip(left(high));
    s
}

impl fmt::Display for Standing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "job.batch/{} {}: succeeded {} of {}, failed pods {}",
            self.job,
            match self.result {
                Some(r) => format!("{r:?}"),
                None => "running".into(),
            },
            self.succeeded,
            self.completions,
            self.failed_pods
        )?;
        if let (Some(p), Some((low, high))) = (self.estimated_probability, self.interval) {
            write!(
                f,
                "\n  failure probability estimated from {} failed of {} runs: {} (95% interval {} to {})",
                self.failed_runs,
                self.runs,
                percent(p),
                percent(low),
                percent(high)
            )?;
            if let Some(c) = self.configured_probability {
                write!(f, "; configured FAIL_PROBABILITY {c}")?;
            }
        }
        if let Some(p) = self.p_complete {
            write!(f, "\n  completes from here with probability {} (exact, at the estimate", percent(p))?;
            if let Some((best, worst)) = self.p_complete_range {
                write!(f, "; {} to {} across the interval", percent(worst), percent(best))?;
            }
            f.write_str(")")?;
        }
        if let Some(note) = &self.note {
            write!(f, "\n  {note}")?;
        }
        Ok(())
    }
}
