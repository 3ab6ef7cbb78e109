//! What `cargo xtask odds` prints: the settings the odds are for and the
//! odds, as one value whose text (`Display`) and JSON (`Serialize`) are
//! read from the same fields.

use std::fmt;
use std::time::Duration;

use job_worker::config::FailureMode;
use serde::{Serialize, Serializer};

use super::simulate::End;
use super::{Model, Odds, percent};
use crate::manifest::params::RestartPolicy;
use crate::report::human_seconds;

/// The result of `odds`.
#[derive(Debug, Clone, Serialize)]
pub struct OddsReport {
    pub job: JobSettings,
    pub worker: WorkerSettings,
    /// Null when there is no closed form for these settings.
    pub exact: Option<ExactOdds>,
    /// Null when not one whole Job fitted in the work budget.
    pub simulated: Option<SimulatedOdds>,
    /// The text says what a simulation that ran no Job was held to.
    #[serde(skip)]
    pub work_budget: u64,
    /// The text states the model's assumptions even without a simulation.
    #[serde(skip)]
    pub pod_startup: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct JobSettings {
    pub name: String,
    pub completions: u32,
    pub parallelism: u32,
    pub backoff_limit: Option<u32>,
    pub backoff_limit_per_index: Option<u32>,
    pub max_failed_indexes: Option<u32>,
    #[serde(serialize_with = "restart_policy_name")]
    pub restart_policy: RestartPolicy,
    pub indexed: bool,
    pub active_deadline_seconds: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct WorkerSettings {
    pub fail_probability: f64,
    #[serde(serialize_with = "failure_mode_name")]
    pub failure_mode: FailureMode,
    /// Shown in the text with the exit mode; the JSON has never carried it.
    #[serde(skip)]
    pub fail_exit_code: u8,
    pub fail_attempts: u32,
    pub fail_indexes: Option<String>,
    pub seed: Option<u64>,
    pub state_dir: bool,
    pub work_seconds: f64,
}

/// The closed forms.
#[derive(Debug, Clone, Serialize)]
pub struct ExactOdds {
    pub p_complete: f64,
    pub runs_mean: Option<f64>,
    pub runs_standard_deviation: Option<f64>,
}

/// The simulation: `±` after a chance is its standard error, after a count
/// the spread from Job to Job; the field names say which.
#[derive(Debug, Clone, Serialize)]
pub struct SimulatedOdds {
    pub trials: u32,
    pub trials_requested: u32,
    pub container_runs: u64,
    pub work_budget: u64,
    pub seed: u64,
    pub p_complete: f64,
    pub p_complete_standard_error: f64,
    /// How the simulated Jobs ended: reason -> Jobs.
    #[serde(serialize_with = "ends_by_reason")]
    pub ends: Vec<(End, u32)>,
    pub p_deadline: f64,
    pub runs_mean: f64,
    pub runs_standard_deviation: f64,
    pub pods_mean: f64,
    pub pods_standard_deviation: f64,
    pub seconds_mean: f64,
    pub seconds_mean_standard_error: f64,
    pub seconds_median: f64,
    pub seconds_p90: f64,
    pub pod_startup_seconds: f64,
}

impl SimulatedOdds {
    fn share(&self, end: End) -> f64 {
        self.ends.iter().find(|(e, _)| *e == end).map_or(0.0, |(_, n)| f64::from(*n) / f64::from(self.trials))
    }
}

impl OddsReport {
    pub fn new(m: &Model, o: &Odds, trial_seed: u64) -> OddsReport {
        let s = &o.simulated;
        OddsReport {
            job: JobSettings {
                name: m.name.clone(),
                completions: m.completions,
                parallelism: m.parallelism,
                backoff_limit: m.backoff_limit,
                backoff_limit_per_index: m.backoff_limit_per_index,
                max_failed_indexes: m.max_failed_indexes,
                restart_policy: m.restart_policy,
                indexed: m.indexed,
                active_deadline_seconds: m.deadline.as_secs(),
            },
            worker: WorkerSettings {
                fail_probability: m.fail_probability,
                failure_mode: m.failure_mode,
                fail_exit_code: m.fail_exit_code,
                fail_attempts: m.fail_attempts,
                fail_indexes: m.fail_indexes.as_ref().map(|f| f.to_string()),
                seed: m.seed,
                state_dir: m.state_dir,
                work_seconds: m.work.as_secs_f64(),
            },
            exact: o.exact.as_ref().map(|e| ExactOdds {
                p_complete: e.p_complete,
                runs_mean: e.runs.map(|r| r.0),
                runs_standard_deviation: e.runs.map(|r| r.1),
            }),
            simulated: (s.trials > 0).then(|| SimulatedOdds {
                trials: s.trials,
                trials_requested: s.requested,
                container_runs: s.work,
                work_budget: s.budget,
                seed: trial_seed,
                p_complete: s.p_complete,
                p_complete_standard_error: s.p_complete_se(),
                ends: s.ends.clone(),
                p_deadline: s.share(End::DeadlineExceeded),
                runs_mean: s.runs_mean,
                runs_standard_deviation: s.runs_sd,
                pods_mean: s.pods_mean,
                pods_standard_deviation: s.pods_sd,
                seconds_mean: s.seconds_mean,
                seconds_mean_standard_error: s.seconds_mean_se(),
                seconds_median: s.seconds_median,
                seconds_p90: s.seconds_p90,
                pod_startup_seconds: m.pod_startup.as_secs_f64(),
            }),
            work_budget: s.budget,
            pod_startup: m.pod_startup,
        }
    }

    /// The exact mean and standard deviation of the runs, when known.
    fn exact_runs(&self) -> Option<(f64, f64)> {
        let e = self.exact.as_ref()?;
        e.runs_mean.zip(e.runs_standard_deviation)
    }
}

/// What `±` stands for after a percentage: the simulation's own
/// uncertainty about it.
const SE: &str = "(standard error)";
/// What `±` stands for after a count: how much it varies from Job to Job.
const SD: &str = "(standard deviation)";

impl fmt::Display for OddsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (j, w) = (&self.job, &self.worker);
        let limit = match (j.backoff_limit, j.backoff_limit_per_index) {
            (Some(b), Some(i)) => format!("backoffLimit {b}, backoffLimitPerIndex {i}"),
            (Some(b), None) => format!("backoffLimit {b}"),
            (None, Some(i)) => format!("backoffLimitPerIndex {i}"),
            (None, None) => "no backoffLimit".into(),
        };
        writeln!(
            f,
            "Job {}: {} completions, parallelism {}, {limit}, restartPolicy {}, {}, activeDeadlineSeconds {}",
            j.name,
            j.completions,
            j.parallelism,
            j.restart_policy.as_str(),
            if j.indexed { "Indexed" } else { "NonIndexed" },
            j.active_deadline_seconds
        )?;
        writeln!(
            f,
            "Worker: fails with probability {} ({}), work {}{}{}{}\n",
            w.fail_probability,
            match w.failure_mode {
                FailureMode::Exit => format!("exit code {}", w.fail_exit_code),
                other => other.as_str().to_owned(),
            },
            human_seconds(w.work_seconds),
            w.fail_indexes.as_ref().map_or(String::new(), |i| format!(", indexes {i} always fail")),
            if w.fail_attempts > 0 { format!(", the first {} attempts fail", w.fail_attempts) } else { String::new() },
            match w.seed {
                Some(seed) if w.state_dir => format!(", seed {seed} (drawn per pod and attempt)"),
                Some(seed) => format!(", seed {seed} (drawn per pod)"),
                None => String::new(),
            },
        )?;
        match &self.exact {
            Some(e) => writeln!(f, "Completes (backoff limits alone):  {}  exact", percent(e.p_complete))?,
            None => {
                writeln!(f, "Completes (backoff limits alone):  no closed form for these settings; see the simulation")?
            }
        }
        let runs_label =
            format!("{}:", if j.restart_policy == RestartPolicy::Never { "Pods that end" } else { "Container runs" });
        match &self.simulated {
            None => {
                writeln!(
                    f,
                    "Simulation:                         none: one Job takes more than {} container runs (the work budget)",
                    self.work_budget
                )?;
                if let Some((mean, sd)) = self.exact_runs() {
                    writeln!(f, "{runs_label:<36}{mean:.2} ± {sd:.2} {SD}  exact")?;
                }
            }
            Some(s) => {
                let trials = if s.trials < s.trials_requested {
                    format!(
                        "{} of {} Jobs (work budget of {} container runs)",
                        s.trials, s.trials_requested, s.work_budget
                    )
                } else {
                    format!("{} Jobs", s.trials)
                };
                // One Job has no spread to estimate an error from.
                let error = |se: String| {
                    if s.trials > 1 { format!(" ± {se} {SE}") } else { " (one Job: no error estimate)".into() }
                };
                writeln!(
                    f,
                    "Completes (with time and deadline): {}{}  simulated, {trials}",
                    percent(s.p_complete),
                    if s.trials > 1 && (s.p_complete == 0.0 || s.p_complete == 1.0) {
                        // Every Job ended alike, so the standard error is 0;
                        // what the trials say is a bound (the rule of three).
                        format!(
                            " (all {} Jobs alike: the other outcome is below {} at 95% confidence)",
                            s.trials,
                            percent((3.0 / f64::from(s.trials)).min(1.0))
                        )
                    } else {
                        error(percent(s.p_complete_standard_error))
                    },
                )?;
                let failures: Vec<String> = s
                    .ends
                    .iter()
                    .filter(|(e, _)| *e != End::Complete)
                    .map(|(e, _)| format!("{} {}", e.reason(), percent(s.share(*e))))
                    .collect();
                writeln!(
                    f,
                    "Fails:                              {}",
                    if failures.is_empty() { "never in the simulation".into() } else { failures.join(", ") }
                )?;
                writeln!(f, "Deadline first:                     {}", percent(s.p_deadline))?;
                match self.exact_runs() {
                    Some((mean, sd)) => writeln!(f, "{runs_label:<36}{mean:.2} ± {sd:.2} {SD}  exact")?,
                    None => writeln!(
                        f,
                        "{runs_label:<36}{:.2} ± {:.2} {SD}  simulated",
                        s.runs_mean, s.runs_standard_deviation
                    )?,
                }
                writeln!(
                    f,
                    "Pods created:                       {:.2} ± {:.2} {SD}  simulated",
                    s.pods_mean, s.pods_standard_deviation
                )?;
                writeln!(
                    f,
                    "Wall time:                          mean {}{}, median {}, 90% within {}  simulated",
                    human_seconds(s.seconds_mean),
                    error(error_seconds(s.seconds_mean_standard_error)),
                    human_seconds(s.seconds_median),
                    human_seconds(s.seconds_p90)
                )?;
            }
        }
        if j.restart_policy == RestartPolicy::Never {
            writeln!(
                f,
                "Exit code 2 (configuration error):  fails the Job at once (podFailurePolicy); the rendered settings are valid"
            )?;
        }
        write!(
            f,
            "\nModel: pods start {} after creation; failed pods are replaced after 10 s doubling to 6 min (Never), \
             containers restart after 10 s doubling to 5 min (OnFailure); a hanging failure lasts until the deadline.",
            human_seconds(self.pod_startup.as_secs_f64())
        )
    }
}

/// A standard error in seconds: tenths below a minute, where whole seconds
/// would round a small error to nothing.
fn error_seconds(s: f64) -> String {
    if s < 60.0 { format!("{s:.1}s") } else { human_seconds(s) }
}

fn restart_policy_name<S: Serializer>(p: &RestartPolicy, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(p.as_str())
}

fn failure_mode_name<S: Serializer>(m: &FailureMode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(m.as_str())
}

/// `{"BackoffLimitExceeded": 1207, "Complete": 18793}`: reason -> Jobs.
fn ends_by_reason<S: Serializer>(ends: &[(End, u32)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(ends.iter().map(|(e, n)| (e.reason(), n)))
}
