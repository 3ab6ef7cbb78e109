//! `odds --target` for a Job of a million completions against a plain
//! `odds` of the same Job (one manual try of one limit); and `odds` of that
//! Job with a backoffLimit of a million (no trial ends early, so the whole
//! simulation budget is spent) against `odds` of the default Job, whose
//! ratio says whether the size costs time, beside the goal of 1 s. All by
//! the xtask binary that runs the bench, interleaved.

use std::fmt;

use anyhow::{Context, Result};
use serde::Serialize;

use super::stats::{Stats, median_seconds, time_run};
use super::xtask_child;
use crate::report::Reporter;

/// The target search against a plain odds; seconds.
#[derive(Debug, Serialize)]
pub(super) struct OddsTarget {
    pub(super) runs: u32,
    pub(super) args: Vec<&'static str>,
    #[serde(serialize_with = "median_seconds")]
    pub(super) target_search: Stats,
    #[serde(serialize_with = "median_seconds")]
    pub(super) plain_odds: Stats,
    pub(super) plain_over_target_median: f64,
    /// `odds` of the same Job with `--backoff-limit 1000000`.
    #[serde(serialize_with = "median_seconds")]
    pub(super) budget_spent: Stats,
    /// `odds` of the default Job (5 completions).
    #[serde(serialize_with = "median_seconds")]
    pub(super) default_job: Stats,
    pub(super) budget_spent_over_default_job: f64,
}

impl fmt::Display for OddsTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "odds {}, median of {} runs:\n  odds --target 99.9%                  {:.3} s\n  \
             odds (one try, simulation included)  {:.3} s\n  ratio                                {:.1}x (plain / target)\n  \
             odds --backoff-limit 1000000         {:.3} s (the whole simulation budget; the goal is under 1 s)\n  \
             odds of the default Job              {:.3} s\n  ratio                                {:.1}x (a million / the default)",
            self.args.join(" "),
            self.runs,
            self.target_search.median_secs(),
            self.plain_odds.median_secs(),
            self.plain_over_target_median,
            self.budget_spent.median_secs(),
            self.default_job.median_secs(),
            self.budget_spent_over_default_job
        )
    }
}

/// Times the target search against a plain odds of the same Job.
pub(super) fn measure(runs: u32, out: &Reporter) -> Result<OddsTarget> {
    let xtask = std::env::current_exe().context("finding the xtask binary")?;
    let args = vec!["--completions", "1000000", "--parallelism", "100"];
    out.status(format!("timing odds --target 99.9% against odds, {} {runs} runs each, interleaved", args.join(" ")));
    let (mut search, mut plain, mut spent, mut default) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let mut cmd = xtask_child(&xtask);
        cmd.args(["odds", "--target", "99.9%"]).args(&args);
        search.push(time_run(&mut cmd)?);
        let mut cmd = xtask_child(&xtask);
        cmd.arg("odds").args(&args);
        plain.push(time_run(&mut cmd)?);
        let mut cmd = xtask_child(&xtask);
        cmd.arg("odds").args(&args).args(["--backoff-limit", "1000000"]);
        spent.push(time_run(&mut cmd)?);
        let mut cmd = xtask_child(&xtask);
        cmd.arg("odds");
        default.push(time_run(&mut cmd)?);
    }
    let (target_search, plain_odds) = (Stats::of(&mut search), Stats::of(&mut plain));
    let (budget_spent, default_job) = (Stats::of(&mut spent), Stats::of(&mut default));
    Ok(OddsTarget {
        runs,
        args,
        plain_over_target_median: plain_odds.median_over(&target_search),
        target_search,
        plain_odds,
        budget_spent_over_default_job: budget_spent.median_over(&default_job),
        budget_spent,
        default_job,
    })
}
