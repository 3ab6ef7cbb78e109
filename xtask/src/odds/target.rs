//! `odds --target P`: the settings to pick, not only the odds of the
//! settings given. The smallest backoffLimit (or backoffLimitPerIndex) whose
//! exact chance to complete reaches the target, found by bisection over the
//! closed forms (the chance never falls as the limit grows); for Indexed
//! Jobs the maxFailedIndexes that the failed indexes stay within in that
//! share of runs; and the activeDeadlineSeconds that covers that share of
//! the completing runs' wall time, back-offs included, from the simulation.

use std::fmt;

use serde::Serialize;

use super::exact::{beta_reg, exact};
use super::simulate;
use super::{Model, percent};
use crate::Error;
use crate::report::human_seconds;

/// The largest value Kubernetes takes for a limit (int32).
const MAX_LIMIT: u32 = i32::MAX as u32;

/// Which limit the target tunes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Knob {
    BackoffLimit,
    BackoffLimitPerIndex,
}

impl Knob {
    pub fn flag(self) -> &'static str {
        match self {
            Knob::BackoffLimit => "--backoff-limit",
            Knob::BackoffLimitPerIndex => "--backoff-limit-per-index",
        }
    }
}

/// What `odds --target` answers.
#[derive(Debug, Clone, Serialize)]
pub struct Tuned {
    pub target: f64,
    pub knob: Knob,
    /// The smallest limit that reaches the target.
    pub limit: u32,
    /// The exact chance to complete with it, and with one less.
    pub p_complete: f64,
    pub p_complete_one_less: Option<f64>,
    /// Indexed with a per-index limit: the failed indexes stay at or below
    /// this in the target share of runs.
    pub max_failed_indexes: Option<u32>,
    /// Covers the target share of the completing runs' wall time.
    pub active_deadline_seconds: Option<u64>,
    /// Completing runs the deadline was read from, and how many of them
    /// lie beyond it (the quantile's footing).
    pub deadline_runs: u32,
    pub deadline_runs_beyond: u32,
    /// The flags to paste.
    pub flags: String,
}

/// Reads `99.9%` or `0.999`.
pub fn parse_target(s: &str) -> Result<f64, Error> {
    let t = s.trim();
    let value = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().ok().map(|p| p / 100.0),
        None => t.parse::<f64>().ok(),
    };
    match value {
        Some(v) if v > 0.0 && v < 1.0 => Ok(v),
        _ => Err(Error::usage(format!(
            "--target {s}: give a chance above 0 and below 100%, such as 99.9% or 0.999 (100% no finite limit reaches)"
        ))),
    }
}

pub(super) fn with_limit(m: &Model, knob: Knob, limit: u32) -> Model {
    let mut m = m.clone();
    match knob {
        Knob::BackoffLimit => m.backoff_limit = Some(limit),
        Knob::BackoffLimitPerIndex => {
            m.backoff_limit_per_index = Some(limit);
            // The target is about completing: no early end by failed indexes.
            m.max_failed_indexes = None;
        }
    }
    m
}

/// The exact chance to complete with `limit`, or why there is none.
pub(super) fn chance(m: &Model, knob: Knob, limit: u32) -> Result<f64, Error> {
    exact(&with_limit(m, knob, limit)).map(|e| e.p_complete).ok_or_else(|| {
        Error::usage(
            "--target: these settings have no closed form (OnFailure with pods in parallel, or indexes that fail \
             differently under one backoffLimit), and the target search runs on the closed forms only; `odds` \
             without --target simulates them",
        )
    })
}

/// Searches the smallest limit reaching `target`, then the deadline.
/// The limit a target tunes for this Job: the per-index one where it has one.
pub fn knob_of(m: &Model) -> Knob {
    if m.backoff_limit_per_index.is_some() { Knob::BackoffLimitPerIndex } else { Knob::BackoffLimit }
}

pub fn tune(m: &Model, target: f64, trials: u32, seed: u64) -> Result<Tuned, Error> {
    let knob = knob_of(m);
    let best = chance(m, knob, MAX_LIMIT)?;
    if best < target {
        let why = if m.hangs_on_failure() {
            "a failure hangs until the deadline, so no retry ever comes"
        } else if !m.work_fits_deadline() {
            "the work does not fit in activeDeadlineSeconds"
        } else {
            "some run always fails (FAIL_INDEXES, FAIL_ATTEMPTS or FAIL_PROBABILITY 1)"
        };
        return Err(Error::usage(format!(
            "--target {}: no {} reaches it: {why}; the most any limit gives is {}",
            percent(target),
            knob.flag(),
            percent(best)
        )));
    }
    // p(limit) never falls as the limit grows.
    let limit = first_reaching(MAX_LIMIT, |l| Ok::<_, Error>(chance(m, knob, l)? >= target))?;
    let p_complete = chance(m, knob, limit)?;
    let p_complete_one_less = limit.checked_sub(1).map(|l| chance(m, knob, l)).transpose()?;
    let tuned = with_limit(m, knob, limit);
    let max_failed_indexes = match knob {
        Knob::BackoffLimitPerIndex if m.index_classes().len() == 1 => failed_indexes_quantile(&tuned, target, limit),
        _ => None,
    };
    // The deadline: the target quantile of the completing runs' wall time,
    // simulated with no deadline in the way.
    let mut free = tuned.clone();
    free.deadline = std::time::Duration::from_secs(u64::from(u32::MAX));
    // Simulated only where the budget can hold the Jobs the quantile needs:
    // a Job of a million completions takes over a million container runs,
    // and three of them say nothing about a 99.9% quantile.
    let runs_per_job = exact(&free).and_then(|e| e.runs).map_or(f64::from(m.completions), |(mean, _)| mean);
    let fits = needed_runs(target) as f64 * runs_per_job <= simulate::WORK_BUDGET as f64;
    let mut seconds =
        if fits { simulate::completing_seconds(&free, trials, seed, simulate::WORK_BUDGET) } else { Vec::new() };
    seconds.sort_by(f64::total_cmp);
    let n = seconds.len();
    let at = ((n as f64 * target).ceil() as usize).clamp(1, n.max(1)) - 1;
    // A quantile needs runs beyond it to stand on.
    let deadline = seconds.get(at).filter(|_| n >= needed_runs(target)).map(|s| s.ceil().max(1.0) as u64);
    let beyond = deadline.map_or(0, |d| seconds.iter().filter(|s| **s > d as f64).count()) as u32;
    let mut flags = format!("{} {limit}", knob.flag());
    if let Some(x) = max_failed_indexes {
        flags += &format!(" --max-failed-indexes {x}");
    }
    if let Some(d) = deadline {
        flags += &format!(" --active-deadline-seconds {d}");
    }
    Ok(Tuned {
        target,
        knob,
        limit,
        p_complete,
        p_complete_one_less,
        max_failed_indexes,
        active_deadline_seconds: deadline,
        deadline_runs: n as u32,
        deadline_runs_beyond: beyond,
        flags,
    })
}

/// Completing runs the simulation needs for the `target` quantile of
/// their wall time to rest on ten runs beyond it.
fn needed_runs(target: f64) -> usize {
    (10.0 / (1.0 - target) - 1e-6).ceil() as usize
}

/// Two chances as percentages with enough decimals to tell them apart.
fn apart(a: f64, b: f64) -> (String, String) {
    for decimals in 2..=9 {
        let (x, y) = (format!("{:.*}%", decimals, a * 100.0), format!("{:.*}%", decimals, b * 100.0));
        if x != y {
            return (x, y);
        }
    }
    (percent(a), percent(b))
}

/// The smallest maxFailedIndexes that the failed indexes stay within with
/// chance `target`: each index fails on its own with the chance that one
/// index does not complete (a binomial over the completions).
fn failed_indexes_quantile(m: &Model, target: f64, limit: u32) -> Option<u32> {
    let mut one = with_limit(m, Knob::BackoffLimitPerIndex, limit);
    one.completions = 1;
    one.fail_indexes = None;
    let q = 1.0 - exact(&one)?.p_complete;
    let c = f64::from(m.completions);
    if q <= 0.0 {
        return Some(0);
    }
    // P(X <= k) = I_{1-q}(c - k, k + 1), which grows with k to 1 at c.
    let cdf = |k: u32| if f64::from(k) >= c { 1.0 } else { beta_reg(c - f64::from(k), f64::from(k) + 1.0, 1.0 - q) };
    first_reaching(m.completions, |k| Ok::<_, std::convert::Infallible>(cdf(k) >= target)).ok()
}

/// The smallest k in 0..=high for which `reaches(k)` holds, by bisection:
/// it holds at `high`, and once it holds it holds for every larger k.
fn first_reaching<E>(high: u32, mut reaches: impl FnMut(u32) -> Result<bool, E>) -> Result<u32, E> {
    if reaches(0)? {
        return Ok(0);
    }
    let (mut low, mut high) = (0u32, high);
    while high - low > 1 {
        let mid = low + (high - low) / 2;
        if reaches(mid)? {
            high = mid;
        } else {
            low = mid;
        }
    }
    Ok(high)
}

impl fmt::Display for Tuned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.flags)?;
        write!(
            f,
            "  {} {}: completes with probability {} (exact, without a deadline)",
            self.knob.flag(),
            self.limit,
            percent(self.p_complete)
        )?;
        if let Some(less) = self.p_complete_one_less {
            let (less, target) = apart(less, self.target);
            write!(f, "; {} gives {less}, short of {target}", self.limit - 1)?;
        }
        if let Some(x) = self.max_failed_indexes {
            write!(
                f,
                "\n  --max-failed-indexes {x}: the failed indexes stay at or below it in {} of runs (exact)",
                percent(self.target)
            )?;
        }
        match self.active_deadline_seconds {
            Some(d) => write!(
                f,
                "\n  --active-deadline-seconds {d} ({}): covers {} of the completing runs' wall time, back-offs \
                 included (simulated: {} completing runs, {} of them longer)",
                human_seconds(d as f64),
                percent(self.target),
                self.deadline_runs,
                self.deadline_runs_beyond
            ),
            None => write!(
                f,
                "\n  no --active-deadline-seconds suggested: the simulation held {} completing runs, too few to place \
                 the {} quantile of their wall time (it needs {} within its budget of {} container runs); ask for a \
                 lower --target, or a smaller Job",
                self.deadline_runs,
                percent(self.target),
                needed_runs(self.target),
                simulate::WORK_BUDGET
            ),
        }
    }
}
