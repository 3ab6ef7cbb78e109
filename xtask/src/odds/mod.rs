//! `cargo xtask odds`: what the retry settings will do with this failure
//! probability, before anything runs. `exact` holds the closed forms,
//! `simulate` the Monte Carlo for time, the deadline and what has no closed
//! form; both decide runs with the worker's own rules and draw as the
//! worker draws (afresh on every run, or seeded per pod and attempt).

pub mod exact;
pub mod from_job;
pub mod html;
pub mod live;
pub mod report;
pub mod simulate;
pub mod target;

use std::time::Duration;

use anyhow::{Context, Result};
use job_worker::config::{FailIndexes, FailureMode};
use job_worker::decision::{self, Rules};

use crate::Error;
use crate::args::JobSource;
use crate::flags::OddsFlags;
use crate::manifest::params::{self, JobParams, RestartPolicy};
use crate::report::Reporter;
use crate::report::human_seconds;
use exact::Exact;
use report::OddsReport;
use simulate::{End, Simulated};

/// What the odds depend on, taken from the checked Job parameters.
#[derive(Debug, Clone)]
pub struct Model {
    pub name: String,
    pub completions: u32,
    pub parallelism: u32,
    pub backoff_limit: Option<u32>,
    pub backoff_limit_per_index: Option<u32>,
    pub max_failed_indexes: Option<u32>,
    pub restart_policy: RestartPolicy,
    pub indexed: bool,
    pub fail_probability: f64,
    pub failure_mode: FailureMode,
    pub fail_exit_code: u8,
    pub fail_attempts: u32,
    pub fail_indexes: Option<FailIndexes>,
    pub seed: Option<u64>,
    /// The pod mounts an emptyDir at STATE_DIR: the worker counts the
    /// attempts of its container across restarts.
    pub state_dir: bool,
    /// The worker is given JOB_INDEX_FAILURE_COUNT.
    pub index_failure_count: bool,
    pub work: Duration,
    pub deadline: Duration,
    pub pod_startup: Duration,
}

impl Model {
    pub fn new(p: &JobParams, pod_startup: Duration) -> Model {
        let n = |x: i32| x.max(0) as u32;
        Model {
            name: p.name.clone(),
            completions: n(p.completions),
            parallelism: n(p.parallelism),
            backoff_limit: p.backoff_limit.map(n),
            backoff_limit_per_index: p.backoff_limit_per_index.map(n),
            max_failed_indexes: p.max_failed_indexes.map(n),
            restart_policy: p.restart_policy,
            indexed: p.indexed(),
            fail_probability: p.worker.fail_probability.value,
            failure_mode: p.worker.failure_mode.value,
            fail_exit_code: p.worker.fail_exit_code.value,
            fail_attempts: p.worker.fail_attempts.value,
            fail_indexes: p.worker.fail_indexes.value.clone(),
            seed: p.worker.seed.value,
            state_dir: p.mounts_state_dir(),
            index_failure_count: p.passes_index_failure_count(),
            work: p.worker.work_duration.value,
            deadline: Duration::from_secs(p.active_deadline_seconds.max(0) as u64),
            pod_startup,
        }
    }

    pub fn rules(&self) -> Rules<'_> {
        Rules {
            fail_probability: self.fail_probability,
            fail_indexes: self.fail_indexes.as_ref(),
            fail_attempts: self.fail_attempts,
            failure_mode: self.failure_mode,
            fail_exit_code: self.fail_exit_code,
        }
    }

    /// The attempt number the worker sees, as the rendered pod lets it
    /// count (`outcome::attempt`): JOB_INDEX_FAILURE_COUNT, which Kubernetes
    /// sets only with backoffLimitPerIndex, is the index's failed pods; else
    /// STATE_DIR counts the runs of this pod's container (a new pod, under
    /// Never, starts with an empty one); else 0.
    pub fn worker_attempt(&self, restarts_in_pod: u32, index_failures: u32) -> u32 {
        if self.index_failure_count && self.backoff_limit_per_index.is_some() {
            index_failures
        } else if self.state_dir {
            restarts_in_pod
        } else {
            0
        }
    }

    /// The chance that a run of index `index` fails when the worker sees
    /// attempt `attempt`, from the worker's own rules: 1 when a rule
    /// decides, the probability when the draw does.
    pub fn fail_chance(&self, index: u32, attempt: u32) -> f64 {
        let mut drew = false;
        let verdict = decision::decide(&self.rules(), self.indexed.then_some(index), attempt, || {
            drew = true;
            1.0
        });
        if drew {
            self.fail_probability
        } else {
            debug_assert!(verdict.is_failure());
            1.0
        }
    }

    /// The completion indexes grouped by how their runs decide: a
    /// representative index and how many behave as it does. Only
    /// FAIL_INDEXES sets indexes apart, so there are at most two groups,
    /// whatever the number of completions.
    pub fn index_classes(&self) -> Vec<(u32, u64)> {
        let c = self.completions;
        let Some(list) = self.fail_indexes.as_ref().filter(|_| self.indexed) else {
            return vec![(0, u64::from(c))];
        };
        let listed: u64 = match list {
            FailIndexes::Odd => u64::from(c / 2),
            FailIndexes::Even => u64::from(c.div_ceil(2)),
            FailIndexes::List(rules) => {
                rules.iter().filter(|r| r.first < c).map(|r| u64::from(r.last.min(c - 1) - r.first) + 1).sum()
            }
        };
        let first = |want: bool| -> Option<u32> {
            match list {
                FailIndexes::Odd | FailIndexes::Even => (0..c.min(2)).find(|&i| list.matches(i).is_some() == want),
                FailIndexes::List(rules) => {
                    if want {
                        rules.iter().map(|r| r.first).filter(|&f| f < c).min()
                    } else {
                        // The lowest index no rule covers: 0, or just past a rule.
                        std::iter::once(0)
                            .chain(rules.iter().filter_map(|r| r.last.checked_add(1)))
                            .filter(|&i| i < c && list.matches(i).is_none())
                            .min()
                    }
                }
            }
        };
        let mut classes = Vec::new();
        if let Some(i) = first(true) {
            classes.push((i, listed));
        }
        if let Some(i) = first(false) {
            classes.push((i, u64::from(c) - listed));
        }
        classes
    }

    /// A failure hangs, and some attempt may fail.
    pub fn hangs(&self) -> bool {
        self.failure_mode == FailureMode::Hang
    }

    pub fn hangs_on_failure(&self) -> bool {
        self.hangs() && self.index_classes().iter().any(|&(i, _)| self.fail_chance(i, 0) > 0.0)
    }

    /// A pod can finish its work before the deadline.
    pub fn work_fits_deadline(&self) -> bool {
        self.pod_startup + self.work < self.deadline
    }
}

/// The odds: exact where there is a closed form, and the simulation.
#[derive(Debug, Clone)]
pub struct Odds {
    pub exact: Option<Exact>,
    pub simulated: Simulated,
}

/// The closed forms, and up to `trials` simulated Jobs within `budget`
/// container runs.
pub fn odds(m: &Model, trials: u32, seed: u64, budget: u64) -> Odds {
    Odds { exact: exact::exact(m), simulated: simulate::run_trials(m, trials, seed, budget) }
}

/// Trials for the one-line summary `render` prints, and their work budget.
pub const SUMMARY_TRIALS: u32 = 2_000;
pub const SUMMARY_BUDGET: u64 = 2_000_000;
/// The pod start-up time assumed where the user gives none.
pub const DEFAULT_POD_STARTUP: Duration = Duration::from_secs(2);

/// The flags among `p`'s whose effect the odds cannot model yet: a success
/// policy ends an Indexed Job early and a pod failure rule acts on exit
/// codes, neither of which the closed forms or the simulation follow.
/// `run-local` runs both (its controller follows them).
pub fn unmodelled(p: &JobParams) -> Vec<&'static str> {
    let mut flags = Vec::new();
    if !p.success_rules.is_empty() {
        flags.push("--success-policy");
    }
    if !p.pod_failure_rules.is_empty() {
        flags.push("--pod-failure-rule");
    }
    flags
}

/// The one line `render` prints on stderr.
pub fn summary(p: &JobParams) -> String {
    let unmodelled = unmodelled(p);
    if !unmodelled.is_empty() {
        return format!("odds: not computed, odds cannot model {} yet; run-local runs it", unmodelled.join(" or "));
    }
    if p.parallelism == 0 {
        return "odds: parallelism 0 runs no pod until it is raised".into();
    }
    let m = Model::new(p, DEFAULT_POD_STARTUP);
    let o = odds(&m, SUMMARY_TRIALS, 1, SUMMARY_BUDGET);
    let s = &o.simulated;
    let completes = match &o.exact {
        Some(e) => format!("completes with probability {} (exact)", percent(e.p_complete)),
        None if s.trials == 0 => "no closed form for these settings".into(),
        None => format!(
            "completes with probability {} ± {} (simulated, standard error)",
            percent(s.p_complete),
            percent(s.p_complete_se())
        ),
    };
    if s.trials == 0 {
        return format!("odds: {completes}; one Job is too large to simulate here; `cargo xtask odds` for more");
    }
    format!(
        "odds: {completes}, ends by the deadline in {}, takes {:.1} pods and {} on average; `cargo xtask odds` for more",
        percent(s.share(End::DeadlineExceeded)),
        s.pods_mean,
        human_seconds(s.seconds_mean)
    )
}

pub fn percent(p: f64) -> String {
    let x = p * 100.0;
    if x > 0.0 && x < 0.01 {
        "<0.01%".into()
    } else if x < 100.0 && x > 99.99 {
        ">99.99%".into()
    } else {
        format!("{x:.2}%")
    }
}

pub fn run(flags: &OddsFlags, matches: &clap::ArgMatches, out: &Reporter) -> Result<()> {
    let source = crate::args::job_source(matches, "-f", flags.file.as_deref(), &flags.job.name, "reads")?;
    if flags.trials < 100 {
        return Err(
            Error::usage(format!("--trials {}: at least 100 are needed for a useful estimate", flags.trials)).into()
        );
    }
    let m = match source {
        JobSource::File(file) => {
            let job = crate::manifest::job_from_file(file)?;
            let m = from_job::model_of(&job, Some(file), flags.pod_startup)?;
            out.status(format!("the odds of job.batch/{} as {} describes it", m.name, file.display()));
            m
        }
        JobSource::Cluster => {
            if flags.target.is_some() {
                return Err(Error::usage(
                    "--target with --name: a running Job's limits are set; ask `odds --target` with its flags or -f",
                )
                .into());
            }
            let standing = crate::runtime()?.block_on(live_standing(flags, out))?;
            out.result(&standing);
            return Ok(());
        }
        JobSource::Flags => {
            let (params, warnings) = params::job_params(&flags.job)?;
            for w in &warnings {
                out.warn(w);
            }
            // Refused, not ignored: odds that leave them out would be another Job's.
            let refused: Vec<String> = unmodelled(&params)
                .into_iter()
                .map(|flag| {
                    let given = if flag == "--success-policy" {
                        &flags.job.success_policy
                    } else {
                        &flags.job.pod_failure_rule
                    };
                    format!(
                        "{flag} {:?}: odds cannot model {flag} yet; run-local runs it (`cargo xtask run-local` with \
                         the same flags)",
                        given.join(";")
                    )
                })
                .collect();
            if !refused.is_empty() {
                return Err(Error::usage(refused.join("\n")).into());
            }
            if params.parallelism == 0 {
                return Err(Error::usage("--parallelism 0: no pod would ever run; the odds need at least 1").into());
            }
            Model::new(&params, flags.pod_startup)
        }
    };
    if let Some(target) = &flags.target {
        let target = target::parse_target(target)?;
        out.status(format!("searching the smallest limit that completes with probability {}", percent(target)));
        out.result(&target::tune(&m, target, flags.trials, flags.trial_seed)?);
        return Ok(());
    }
    out.status(format!(
        "simulating up to {} Jobs (seed {}, at most {} container runs in all)",
        flags.trials,
        flags.trial_seed,
        simulate::WORK_BUDGET
    ));
    let (trials, work) = simulate::whole_trials(&m, flags.trials, flags.trial_seed, simulate::WORK_BUDGET);
    let o = Odds {
        exact: exact::exact(&m),
        simulated: simulate::summarize(trials.clone(), work, flags.trials, simulate::WORK_BUDGET),
    };
    if let Some(file) = &flags.html {
        let page = html::page(&m, &o, &trials);
        std::fs::write(file, &page).with_context(|| format!("--html {}: writing the page", file.display()))?;
        out.status(format!("wrote {} ({} KB)", file.display(), page.len().div_ceil(1024)));
    }
    out.result(&OddsReport::new(&m, &o, flags.trial_seed));
    Ok(())
}

/// Where the Job on the cluster stands.
async fn live_standing(flags: &OddsFlags, out: &Reporter) -> Result<live::Standing> {
    let (name, namespace) = (&flags.job.name, &flags.job.namespace);
    let (job, report) =
        crate::cluster::watch::read_now(&crate::cluster::Access::from(&flags.cluster), name, namespace, out).await?;
    let finished = crate::cluster::status::is_job_complete(&job).is_some()
        || crate::cluster::status::is_job_failed(&job).is_some();
    let m = from_job::model_of(&job, None, flags.pod_startup)?;
    Ok(live::standing(&report, &m, finished))
}

#[cfg(test)]
mod tests;
