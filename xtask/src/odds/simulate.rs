//! A seeded Monte Carlo simulation of the Job controller and the kubelet,
//! with each run decided by the worker's own decision function
//! (`job_worker::decision`), for what has no closed form: wall time, the
//! deadline, and OnFailure with pods in parallel.
//!
//! The timing model (from the Kubernetes documentation page "Jobs" and the
//! kubelet's container restart back-off):
//! - a pod starts `pod_startup` after it is created and decides after the
//!   work duration; a hanging failure never ends;
//! - restartPolicy Never: a failed pod is replaced after a back-off of 10 s,
//!   doubling per consecutive failure, capped at 6 minutes; with
//!   backoffLimitPerIndex the back-off is per index;
//! - restartPolicy OnFailure: the kubelet restarts the container after 10 s,
//!   doubling per restart of that pod, capped at 5 minutes;
//! - the controller keeps at most `parallelism` pods active and never more
//!   than the completions still missing;
//! - activeDeadlineSeconds ends the Job from its start.

use job_worker::decision::{self, Verdict};

use super::Model;
use crate::manifest::params::RestartPolicy;

/// How a simulated Job ended, with the reasons the Job controller gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum End {
    Complete,
    BackoffLimitExceeded,
    DeadlineExceeded,
    FailedIndexes,
    MaxFailedIndexesExceeded,
}

impl End {
    pub fn reason(self) -> &'static str {
        match self {
            End::Complete => "Complete",
            End::BackoffLimitExceeded => "BackoffLimitExceeded",
            End::DeadlineExceeded => "DeadlineExceeded",
            End::FailedIndexes => "FailedIndexes",
            End::MaxFailedIndexesExceeded => "MaxFailedIndexesExceeded",
        }
    }
}

/// One simulated Job.
#[derive(Debug, Clone, PartialEq)]
pub struct Trial {
    pub end: End,
    /// Seconds from the Job's start to its end.
    pub seconds: f64,
    /// Pods created (including those deleted when the Job ended).
    pub pods: u32,
    /// Runs that ended: pods that reached Succeeded or Failed (Never), or
    /// container runs that exited (OnFailure).
    pub runs: u32,
}

const NEVER_BACKOFF: (f64, f64) = (10.0, 360.0);
const KUBELET_BACKOFF: (f64, f64) = (10.0, 300.0);

fn backoff((base, cap): (f64, f64), failures: u32) -> f64 {
    if failures == 0 {
        return 0.0;
    }
    (base * 2f64.powi(failures.min(30) as i32 - 1)).min(cap)
}

struct Pod {
    index: u32,
    name: String,
    /// When the current container run decides (infinite for a hang).
    ends_at: f64,
    verdict_failed: bool,
    /// Container restarts of this pod (OnFailure).
    restarts: u32,
}

/// Simulates one Job. `trial` makes the pod names, and so the draws, of
/// this trial its own.
pub fn simulate(m: &Model, trial: u64) -> Trial {
    let startup = m.pod_startup.as_secs_f64();
    let work = m.work.as_secs_f64();
    let deadline = m.deadline.as_secs_f64();
    let worker_seed = m.seed.unwrap_or(trial);
    let rules = m.rules();
    let c = m.completions;

    let mut t = 0.0;
    let mut pods_created = 0u32;
    let mut runs = 0u32;
    let mut succeeded = 0u32;
    let mut failed_pods = 0u32;
    // Per index: state and failure count (NonIndexed: any pending slot).
    let mut index_done = vec![false; c as usize];
    let mut index_failed = vec![false; c as usize];
    let mut index_failures = vec![0u32; c as usize];
    let mut index_active = vec![false; c as usize];
    let mut index_ready_at = vec![0.0f64; c as usize];
    let mut consecutive_failures = 0u32;
    let mut next_creation = 0.0f64;
    let mut active: Vec<Pod> = Vec::new();

    let decide = |pod: &str, index: u32, attempt: u32| -> bool {
        let idx = m.indexed.then_some(index);
        let verdict = decision::decide(&rules, idx, attempt, || decision::seeded_draw(worker_seed, pod, idx));
        matches!(verdict, Verdict::Fail { .. })
    };
    let run_end = |start: f64, failed: bool| if failed && m.hangs() { f64::INFINITY } else { start + work };

    loop {
        // Create pods while the controller would.
        loop {
            let missing = if m.indexed {
                index_done.iter().zip(&index_failed).filter(|(d, f)| !**d && !**f).count() as u32
            } else {
                c - succeeded
            };
            if active.len() as u32 >= m.parallelism.min(missing) || t < next_creation {
                break;
            }
            // The next index to run: not done, not failed, not active, past its back-off.
            let candidate = (0..c).find(|&i| {
                let i = i as usize;
                !index_done[i] && !index_failed[i] && !index_active[i] && (!m.indexed || index_ready_at[i] <= t)
            });
            let Some(index) = candidate else { break };
            let name = format!("{}-{trial:x}-{pods_created:x}", m.name);
            pods_created += 1;
            index_active[index as usize] = true;
            let attempt = if m.attempts_counted() && m.restart_policy == RestartPolicy::Never {
                index_failures[index as usize]
            } else {
                0
            };
            let failed = decide(&name, index, attempt);
            active.push(Pod {
                index,
                name,
                ends_at: run_end(t + startup, failed),
                verdict_failed: failed,
                restarts: 0,
            });
        }

        // The next event: a run ends, a back-off expires, or the deadline.
        let next_end = active.iter().map(|p| p.ends_at).fold(f64::INFINITY, f64::min);
        // When an idle index (or slot) may next get a pod: after the Job's
        // back-off and, per index, after the index's own back-off.
        let next_ready = (0..c as usize)
            .filter(|&i| !index_done[i] && !index_failed[i] && !index_active[i])
            .map(|i| if m.indexed { index_ready_at[i].max(next_creation) } else { next_creation })
            .filter(|&at| at > t)
            .fold(f64::INFINITY, f64::min);
        let next = next_end.min(next_ready);
        if next >= deadline {
            return Trial { end: End::DeadlineExceeded, seconds: deadline, pods: pods_created, runs };
        }
        if next.is_infinite() {
            // Nothing can happen any more: only the deadline would end it.
            return Trial { end: End::DeadlineExceeded, seconds: deadline, pods: pods_created, runs };
        }
        t = next;
        let Some(pos) = active.iter().position(|p| p.ends_at <= t) else { continue };
        runs += 1;
        let mut pod = active.swap_remove(pos);
        let i = pod.index as usize;
        if !pod.verdict_failed {
            index_active[i] = false;
            index_done[i] = true;
            succeeded += 1;
            consecutive_failures = 0;
            if index_done.iter().zip(&index_failed).all(|(d, f)| *d || *f) {
                let end = if index_failed.iter().any(|f| *f) { End::FailedIndexes } else { End::Complete };
                return Trial { end, seconds: t, pods: pods_created, runs };
            }
            continue;
        }
        match m.restart_policy {
            RestartPolicy::OnFailure => {
                pod.restarts += 1;
                let restarts: u32 = active.iter().map(|p| p.restarts).sum::<u32>() + pod.restarts;
                let limit = m.backoff_limit.unwrap_or(u32::MAX);
                if (limit == 0 && restarts > 0) || (limit > 0 && restarts >= limit) {
                    return Trial { end: End::BackoffLimitExceeded, seconds: t, pods: pods_created, runs };
                }
                let start = t + backoff(KUBELET_BACKOFF, pod.restarts);
                let attempt = if m.attempts_counted() { pod.restarts } else { 0 };
                let failed = decide(&pod.name, pod.index, attempt);
                pod.verdict_failed = failed;
                pod.ends_at = run_end(start, failed);
                active.push(pod);
            }
            RestartPolicy::Never => {
                index_active[i] = false;
                failed_pods += 1;
                index_failures[i] += 1;
                consecutive_failures += 1;
                if m.backoff_limit.is_some_and(|b| failed_pods > b) {
                    return Trial { end: End::BackoffLimitExceeded, seconds: t, pods: pods_created, runs };
                }
                match m.backoff_limit_per_index {
                    Some(per_index) => {
                        if index_failures[i] > per_index {
                            index_failed[i] = true;
                            let failed_indexes = index_failed.iter().filter(|f| **f).count() as u32;
                            if m.max_failed_indexes.is_some_and(|max| failed_indexes > max) {
                                return Trial {
                                    end: End::MaxFailedIndexesExceeded,
                                    seconds: t,
                                    pods: pods_created,
                                    runs,
                                };
                            }
                            if index_done.iter().zip(&index_failed).all(|(d, f)| *d || *f) {
                                return Trial { end: End::FailedIndexes, seconds: t, pods: pods_created, runs };
                            }
                        } else {
                            index_ready_at[i] = t + backoff(NEVER_BACKOFF, index_failures[i]);
                        }
                    }
                    None => next_creation = t + backoff(NEVER_BACKOFF, consecutive_failures),
                }
            }
        }
    }
}

/// Aggregates of many trials.
#[derive(Debug, Clone)]
pub struct Simulated {
    pub trials: u32,
    pub ends: Vec<(End, u32)>,
    pub p_complete: f64,
    pub seconds_mean: f64,
    pub seconds_median: f64,
    pub seconds_p90: f64,
    pub pods_mean: f64,
    pub pods_sd: f64,
    pub runs_mean: f64,
    pub runs_sd: f64,
}

impl Simulated {
    pub fn share(&self, end: End) -> f64 {
        self.ends.iter().find(|(e, _)| *e == end).map_or(0.0, |(_, n)| f64::from(*n) / f64::from(self.trials))
    }
}

pub fn run_trials(m: &Model, trials: u32, seed: u64) -> Simulated {
    let mut all: Vec<Trial> =
        (0..trials).map(|i| simulate(m, seed.wrapping_mul(1_000_003).wrapping_add(u64::from(i)))).collect();
    let mut ends: Vec<(End, u32)> = Vec::new();
    for t in &all {
        match ends.iter_mut().find(|(e, _)| *e == t.end) {
            Some((_, n)) => *n += 1,
            None => ends.push((t.end, 1)),
        }
    }
    ends.sort();
    let n = f64::from(trials.max(1));
    let mean_sd = |xs: &mut dyn Iterator<Item = f64>| {
        let (mut s1, mut s2) = (0.0, 0.0);
        for x in xs {
            s1 += x;
            s2 += x * x;
        }
        let mean = s1 / n;
        (mean, (s2 / n - mean * mean).max(0.0).sqrt())
    };
    let (pods_mean, pods_sd) = mean_sd(&mut all.iter().map(|t| f64::from(t.pods)));
    let (runs_mean, runs_sd) = mean_sd(&mut all.iter().map(|t| f64::from(t.runs)));
    let (seconds_mean, _) = mean_sd(&mut all.iter().map(|t| t.seconds));
    all.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
    let at = |q: f64| all.get(((all.len().max(1) - 1) as f64 * q).round() as usize).map_or(0.0, |t| t.seconds);
    let complete = all.iter().filter(|t| t.end == End::Complete).count();
    Simulated {
        trials,
        p_complete: complete as f64 / n,
        seconds_mean,
        seconds_median: at(0.5),
        seconds_p90: at(0.9),
        pods_mean,
        pods_sd,
        runs_mean,
        runs_sd,
        ends,
    }
}
