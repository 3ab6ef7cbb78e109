//! `odds --target` for a Job of a million completions against a plain
//! `odds` of the same Job (one manual try of one limit), both the xtask
//! binary that runs the bench, interleaved.

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
}

impl fmt::Display for OddsTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "odds {}, median of {} runs:\n  odds --target 99.9%                  {:.3} s\n  \
             odds (one try, simulation included)  {:.3} s\n  ratio                                {:.1}x (plain / target)",
            self.args.join(" "),
            self.runs,
            self.target_search.median_secs(),
            self.plain_odds.median_secs(),
            self.plain_over_target_median
        )
    }
}

/// Times the target search against a plain odds of the same Job.
pub(super) fn measure(runs: u32, out: &Reporter) -> Result<OddsTarget> {
    let xtask = std::env::current_exe().context("finding the xtask binary")?;
    let args = vec!["--completions", "1000000", "--parallelism", "100"];
    out.status(format!("timing odds --target 99.9% against odds, {} {runs} runs each, interleaved", args.join(" ")));
    let (mut search, mut plain) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let mut cmd = xtask_child(&xtask);
        cmd.args(["odds", "--target", "99.9%"]).args(&args);
        search.push(time_run(&mut cmd)?);
        let mut cmd = xtask_child(&xtask);
        cmd.arg("odds").args(&args);
        plain.push(time_run(&mut cmd)?);
    }
    let (target_search, plain_odds) = (Stats::of(&mut search), Stats::of(&mut plain));
    Ok(OddsTarget {
        runs,
        args,
        plain_over_target_median: plain_odds.median_over(&target_search),
        target_search,
        plain_odds,
    })
}
