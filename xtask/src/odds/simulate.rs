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
//!
//! The draws are the worker's: with a seed, `seeded_draw` of the pod's name,
//! index and the attempt the worker sees; without one, a fresh draw for
//! every container run (the worker asks the operating system each time).
//!
//! The work is bounded: every container run counts against a budget, and
//! the simulation stops after the last whole Job that fits, so a huge Job
//! gets fewer trials (and a larger stated error) instead of running for
//! hours. Running pods and per-index back-offs wait in one queue per delay
//! (`ByDelay`), so one run costs the same whatever the number of
//! completions.

use std::collections::{BTreeSet, VecDeque};

use job_worker::decision::{self, Verdict};

use super::Model;
use crate::manifest::params::RestartPolicy;

/// Container runs all trials together may simulate by default: under 0.7 s
/// on one core of the 2-core machine `docs/bench.md` names, in the
/// unoptimized build `cargo xtask` runs (0.4 µs a run, 0.6 µs for an
/// Indexed Job with backoffLimitPerIndex), so that `odds` answers within a
/// second whatever the Job's size; a Job too large for many trials says how
/// many it got, with the standard errors that follow. Work, not time, so
/// that the same flags give the same numbers on every machine.
pub const WORK_BUDGET: u64 = 1_000_000;

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
    /// Container runs started: the work this trial took.
    pub work: u64,
}

const NEVER_BACKOFF: (f64, f64) = (10.0, 360.0);
const KUBELET_BACKOFF: (f64, f64) = (10.0, 300.0);

fn backoff((base, cap): (f64, f64), failures: u32) -> f64 {
    if failures == 0 {
        return 0.0;
    }
    (base * 2f64.powi(failures.min(30) as i32 - 1)).min(cap)
}

/// A pod whose container is running.
struct Pod {
    ends_at: f64,
    seq: u32,
    index: u32,
    verdict_failed: bool,
    /// Container restarts of this pod (OnFailure).
    restarts: u32,
}

impl Pod {
    /// Runs end in order of time, ties in order of creation. The times
    /// compared are finite: a run that hangs is never queued.
    #[inline(always)]
    fn ends_before(&self, other: &Pod) -> bool {
        self.ends_at < other.ends_at || (self.ends_at == other.ends_at && self.seq < other.seq)
    }
}

/// Items scheduled to end a fixed delay after the moment they were
/// scheduled, one queue per delay: moments come in time order, so each
/// queue is in the order its items end, and the next to end is the
/// earliest of the fronts. There are few delays (the back-off's doublings
/// to its cap), so this costs less than a heap, above all in the
/// unoptimized build `cargo xtask` runs, where std's heap was most of a
/// large Job's time. Loops by hand: there every iterator adapter is a call,
/// and this runs once per container run.
struct ByDelay<K, T> {
    queues: Vec<(K, VecDeque<T>)>,
}

impl<K, T> Default for ByDelay<K, T> {
    fn default() -> Self {
        ByDelay { queues: Vec::new() }
    }
}

impl<K: PartialEq, T> ByDelay<K, T> {
    /// Queues `item` behind the others of `delay`; the number of its queue.
    fn push(&mut self, delay: K, item: T) -> usize {
        let mut at = 0;
        while at < self.queues.len() && self.queues[at].0 != delay {
            at += 1;
        }
        if at == self.queues.len() {
            self.queues.push((delay, VecDeque::new()));
        }
        self.queues[at].1.push_back(item);
        at
    }
}

/// The pods whose container runs, in the order their runs end.
///
/// A run ends a fixed delay after the moment it is scheduled: the work
/// after the start-up for a new pod, after the kubelet's back-off for a
/// restart (OnFailure). Moments come in time order, new pods in order of
/// creation and the restarts of one moment in the order their pods' runs
/// ended, so the runs scheduled with one delay end in the order they were
/// scheduled: one queue per kind and delay (`ByDelay`; one under Never). A
/// run that hangs never ends: it holds its slot and is only counted.
#[derive(Default)]
struct Active {
    /// How the runs were scheduled, and the runs, earliest end first.
    queues: ByDelay<Delay, Pod>,
    /// The queue whose front ends first.
    first: Option<usize>,
    running: usize,
    hung: usize,
}

/// How a run was scheduled: a new pod's start-up, or a restart's back-off
/// (its bits), each followed by the work.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Delay {
    StartUp,
    Restart(u64),
}

impl Active {
    fn len(&self) -> usize {
        self.running + self.hung
    }

    fn push(&mut self, pod: Pod, delay: Delay) {
        if pod.ends_at.is_infinite() {
            self.hung += 1;
            return;
        }
        let ends_first = self.peek().is_none_or(|first| pod.ends_before(first));
        let at = self.queues.push(delay, pod);
        self.running += 1;
        if ends_first {
            self.first = Some(at);
        }
    }

    /// The run that ends next, if any does.
    fn peek(&self) -> Option<&Pod> {
        self.first.and_then(|at| self.queues.queues[at].1.front())
    }

    fn pop(&mut self) -> Option<Pod> {
        let queues = &mut self.queues.queues;
        let pod = queues[self.first?].1.pop_front()?;
        self.running -= 1;
        let mut first: Option<(usize, &Pod)> = None;
        let mut at = 0;
        while at < queues.len() {
            if let Some(front) = queues[at].1.front()
                && first.is_none_or(|(_, best)| front.ends_before(best))
            {
                first = Some((at, front));
            }
            at += 1;
        }
        self.first = first.map(|(at, _)| at);
        Some(pod)
    }
}

/// Per-index state of an Indexed Job, kept only for indexes that have run:
/// every index at or above `fresh` is untouched and ready.
#[derive(Default)]
struct Indexes {
    /// Failed pods by index, grown to the highest index that failed: a
    /// lookup per container run, which a hash map made a fifth of the time.
    failures: Vec<u32>,
    /// Indexes that ran, are idle and may get a pod now.
    ready: BTreeSet<u32>,
    /// Indexes that ran and wait out their back-off.
    waiting: Waiting,
    fresh: u32,
    done: u32,
    failed: u32,
}

/// Indexes waiting out their back-off (backoffLimitPerIndex), by the
/// back-off's length (its bits): when each index's ends.
#[derive(Default)]
struct Waiting(ByDelay<u64, (f64, u32)>);

impl Waiting {
    fn push(&mut self, ends_at: f64, delay: f64, index: u32) {
        self.0.push(delay.to_bits(), (ends_at, index));
    }

    /// When the next back-off ends.
    fn next_due(&self) -> f64 {
        let mut next = f64::INFINITY;
        for (_, queue) in &self.0.queues {
            if let Some(&(ends_at, _)) = queue.front() {
                next = next.min(ends_at);
            }
        }
        next
    }

    /// An index whose back-off has ended by `t`.
    fn pop_due(&mut self, t: f64) -> Option<u32> {
        for (_, queue) in &mut self.0.queues {
            if queue.front().is_some_and(|&(ends_at, _)| ends_at <= t) {
                return queue.pop_front().map(|(_, index)| index);
            }
        }
        None
    }
}

/// What happened to one pod of a traced trial (`simulate_traced`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PodEvent {
    /// Pod `seq` was created (for completion index `index`).
    Created { seq: u32, index: u32, at: f64 },
    /// Its container failed and restarts in place (OnFailure).
    Restarted { seq: u32 },
    /// It ended: Succeeded, or Failed (restartPolicy Never).
    Ended { seq: u32, at: f64, failed: bool },
}

/// Simulates one Job, or gives up (None) once it has started `budget`
/// container runs. `trial` makes the pod names, and so the draws, of this
/// trial its own.
pub fn simulate(m: &Model, trial: u64, budget: u64) -> Option<Trial> {
    simulate_with(m, trial, budget, |_| {})
}

/// The same trial as `simulate` gives, with what happened to each pod in
/// order; pods still active at the end are not ended by an event.
pub fn simulate_traced(m: &Model, trial: u64, budget: u64) -> Option<(Trial, Vec<PodEvent>)> {
    let mut events = Vec::new();
    let t = simulate_with(m, trial, budget, |e| events.push(e))?;
    Some((t, events))
}

fn simulate_with(m: &Model, trial: u64, budget: u64, mut trace: impl FnMut(PodEvent)) -> Option<Trial> {
    let startup = m.pod_startup.as_secs_f64();
    let work = m.work.as_secs_f64();
    let deadline = m.deadline.as_secs_f64();
    let rules = m.rules();
    let c = m.completions;

    let mut t = 0.0;
    let mut pods_created = 0u32;
    let mut runs = 0u32;
    let started = std::cell::Cell::new(0u64);
    let mut succeeded = 0u32;
    let mut failed_pods = 0u32;
    let mut consecutive_failures = 0u32;
    let mut next_creation = 0.0f64;
    let mut active = Active::default();
    let mut active_restarts = 0u64;
    let mut idx = Indexes::default();

    // One container run's verdict, drawn as the worker draws it.
    let decide = |seq: u32, index: u32, restarts: u32, index_failures: u32| -> Option<bool> {
        started.set(started.get() + 1);
        if started.get() > budget {
            return None;
        }
        let index = m.indexed.then_some(index);
        let attempt = m.worker_attempt(restarts, index_failures);
        let verdict = decision::decide(&rules, index, attempt, || match m.seed {
            Some(seed) => decision::seeded_draw(seed, &format!("{}-{trial:x}-{seq:x}", m.name), index, attempt),
            // The unseeded worker draws afresh on every run: stand in for the
            // operating system with a draw unique to this run of this trial.
            None => decision::seeded_draw(trial, "", None, u32::try_from(started.get()).unwrap_or(u32::MAX)),
        });
        Some(matches!(verdict, Verdict::Fail { .. }))
    };
    let run_end = |start: f64, failed: bool| if failed && m.hangs() { f64::INFINITY } else { start + work };
    let trial_end =
        |end: End, seconds: f64, pods: u32, runs: u32| Some(Trial { end, seconds, pods, runs, work: started.get() });

    loop {
        let missing = if m.indexed { c - idx.done - idx.failed } else { c - succeeded };
        let slots = m.parallelism.min(missing) as usize;
        // Create pods while the controller would.
        while active.len() < slots && t >= next_creation {
            let index = if m.indexed {
                while let Some(i) = idx.waiting.pop_due(t) {
                    idx.ready.insert(i);
                }
                // The lowest index that may run.
                let retried = idx.ready.first().copied();
                match (retried, (idx.fresh < c).then_some(idx.fresh)) {
                    (Some(r), Some(f)) if f < r => {
                        idx.fresh += 1;
                        f
                    }
                    (Some(r), _) => {
                        idx.ready.remove(&r);
                        r
                    }
                    (None, Some(f)) => {
                        idx.fresh += 1;
                        f
                    }
                    (None, None) => break,
                }
            } else {
                0
            };
            let seq = pods_created;
            pods_created += 1;
            let index_failures = idx.failures.get(index as usize).copied().unwrap_or(0);
            let failed = decide(seq, index, 0, index_failures)?;
            trace(PodEvent::Created { seq, index, at: t });
            active.push(
                Pod { ends_at: run_end(t + startup, failed), seq, index, verdict_failed: failed, restarts: 0 },
                Delay::StartUp,
            );
        }

        // The next event: a run ends, a back-off expires, or the deadline.
        let next_end = active.peek().map_or(f64::INFINITY, |p| p.ends_at);
        let next_ready = if active.len() < slots {
            let idle_ready =
                if !m.indexed || !idx.ready.is_empty() || idx.fresh < c { 0.0 } else { idx.waiting.next_due() };
            Some(idle_ready.max(next_creation)).filter(|&at| at > t).unwrap_or(f64::INFINITY)
        } else {
            f64::INFINITY
        };
        let next = next_end.min(next_ready);
        if next >= deadline || next.is_infinite() {
            // Past the deadline, or nothing can happen any more: only the
            // deadline ends it.
            return trial_end(End::DeadlineExceeded, deadline, pods_created, runs);
        }
        t = next;
        if next_end > t {
            continue;
        }
        let Some(mut pod) = active.pop() else { continue };
        runs += 1;
        let i = pod.index;
        if !pod.verdict_failed {
            trace(PodEvent::Ended { seq: pod.seq, at: t, failed: false });
            // A pod that succeeded is no longer active: its restarts stop
            // counting against backoffLimit.
            active_restarts -= u64::from(pod.restarts);
            succeeded += 1;
            consecutive_failures = 0;
            if m.indexed {
                idx.done += 1;
            }
            let finished = if m.indexed { idx.done + idx.failed == c } else { succeeded == c };
            if finished {
                let end = if idx.failed > 0 { End::FailedIndexes } else { End::Complete };
                return trial_end(end, t, pods_created, runs);
            }
            continue;
        }
        match m.restart_policy {
            RestartPolicy::OnFailure => {
                // "Jobs", Pod backoff failure policy: under OnFailure the
                // count is the restarts of the pods still Pending or Running,
                // and backoffLimit 0 fails on the first one.
                trace(PodEvent::Restarted { seq: pod.seq });
                pod.restarts += 1;
                active_restarts += 1;
                let limit = m.backoff_limit.map_or(u64::MAX, u64::from);
                if (limit == 0 && active_restarts > 0) || (limit > 0 && active_restarts >= limit) {
                    return trial_end(End::BackoffLimitExceeded, t, pods_created, runs);
                }
                let delay = backoff(KUBELET_BACKOFF, pod.restarts);
                let failed = decide(pod.seq, pod.index, pod.restarts, 0)?;
                pod.verdict_failed = failed;
                pod.ends_at = run_end(t + delay, failed);
                active.push(pod, Delay::Restart(delay.to_bits()));
            }
            RestartPolicy::Never => {
                trace(PodEvent::Ended { seq: pod.seq, at: t, failed: true });
                failed_pods += 1;
                consecutive_failures += 1;
                let failures = {
                    if idx.failures.len() <= i as usize {
                        idx.failures.resize(i as usize + 1, 0);
                    }
                    idx.failures[i as usize] += 1;
                    idx.failures[i as usize]
                };
                if m.backoff_limit.is_some_and(|b| failed_pods > b) {
                    return trial_end(End::BackoffLimitExceeded, t, pods_created, runs);
                }
                match m.backoff_limit_per_index {
                    Some(per_index) => {
                        if failures > per_index {
                            idx.failed += 1;
                            if m.max_failed_indexes.is_some_and(|max| idx.failed > max) {
                                return trial_end(End::MaxFailedIndexesExceeded, t, pods_created, runs);
                            }
                            if idx.done + idx.failed == c {
                                return trial_end(End::FailedIndexes, t, pods_created, runs);
                            }
                        } else {
                            let delay = backoff(NEVER_BACKOFF, failures);
                            idx.waiting.push(t + delay, delay, i);
                        }
                    }
                    None => {
                        if m.indexed {
                            idx.ready.insert(i);
                        }
                        next_creation = t + backoff(NEVER_BACKOFF, consecutive_failures);
                    }
                }
            }
        }
    }
}

/// The `trial` argument of `simulate` for the i-th trial of a run seeded
/// `seed`: `whole_trials`' i-th Job is `simulate(m, trial_seed(seed, i), ..)`.
pub fn trial_seed(seed: u64, i: u32) -> u64 {
    seed.wrapping_mul(1_000_003).wrapping_add(u64::from(i))
}

/// Up to `trials` whole Jobs within `budget` container runs (see
/// `run_trials`), and the container runs they took.
pub fn whole_trials(m: &Model, trials: u32, seed: u64, budget: u64) -> (Vec<Trial>, u64) {
    let mut all: Vec<Trial> = Vec::new();
    let mut work = 0u64;
    for i in 0..trials {
        let left = budget - work;
        if i > 0 && work / u64::from(i) > left {
            break;
        }
        match simulate(m, trial_seed(seed, i), left) {
            Some(t) => {
                work += t.work;
                all.push(t);
            }
            None => {
                work = budget;
                break;
            }
        }
    }
    (all, work)
}

/// The wall time of every completing Job among the trials `run_trials`
/// would simulate.
pub fn completing_seconds(m: &Model, trials: u32, seed: u64, budget: u64) -> Vec<f64> {
    whole_trials(m, trials, seed, budget).0.into_iter().filter(|t| t.end == End::Complete).map(|t| t.seconds).collect()
}

/// Aggregates of many trials.
#[derive(Debug, Clone)]
pub struct Simulated {
    /// Trials simulated: fewer than asked for when the budget ran out.
    pub trials: u32,
    pub requested: u32,
    /// Container runs simulated in all, and the budget they were held to.
    pub work: u64,
    pub budget: u64,
    pub ends: Vec<(End, u32)>,
    pub p_complete: f64,
    pub seconds_mean: f64,
    /// How far the wall time varies from Job to Job.
    pub seconds_sd: f64,
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

    /// One standard error of the simulated chance to complete.
    pub fn p_complete_se(&self) -> f64 {
        (self.p_complete * (1.0 - self.p_complete) / f64::from(self.trials.max(1))).sqrt()
    }

    /// One standard error of the simulated mean wall time.
    pub fn seconds_mean_se(&self) -> f64 {
        self.seconds_sd / f64::from(self.trials.max(1)).sqrt()
    }

    /// Whether the budget cut the trials short.
    pub fn cut_short(&self) -> bool {
        self.trials < self.requested
    }
}

/// Runs up to `trials` Jobs within `budget` container runs in all. Trials
/// run in order; the simulation stops before a trial that the rest of the
/// budget would likely not hold (judged by the trials so far), and a trial
/// that runs out of budget anyway is dropped, so every trial counted is a
/// whole Job.
pub fn run_trials(m: &Model, trials: u32, seed: u64, budget: u64) -> Simulated {
    let (all, work) = whole_trials(m, trials, seed, budget);
    summarize(all, work, trials, budget)
}

/// The aggregates of whole trials (`whole_trials`) that took `work`
/// container runs of `budget`, `trials` having been asked for.
pub fn summarize(mut all: Vec<Trial>, work: u64, trials: u32, budget: u64) -> Simulated {
    let done = all.len() as u32;
    let mut ends: Vec<(End, u32)> = Vec::new();
    for t in &all {
        match ends.iter_mut().find(|(e, _)| *e == t.end) {
            Some((_, n)) => *n += 1,
            None => ends.push((t.end, 1)),
        }
    }
    ends.sort();
    let n = f64::from(done.max(1));
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
    let (seconds_mean, seconds_sd) = mean_sd(&mut all.iter().map(|t| t.seconds));
    all.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
    let at = |q: f64| all.get(((all.len().max(1) - 1) as f64 * q).round() as usize).map_or(0.0, |t| t.seconds);
    let complete = all.iter().filter(|t| t.end == End::Complete).count();
    Simulated {
        trials: done,
        requested: trials,
        work,
        budget,
        p_complete: complete as f64 / n,
        seconds_mean,
        seconds_sd,
        seconds_median: at(0.5),
        seconds_p90: at(0.9),
        pods_mean,
        pods_sd,
        runs_mean,
        runs_sd,
        ends,
    }
}

#[cfg(test)]
mod active_tests {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    use super::{Active, Delay, KUBELET_BACKOFF, Pod, backoff};

    /// Driven as the simulation drives it (time only moves forward, new
    /// pods at the current time, a failed run restarted at the moment it
    /// ended with its back-off), `Active` gives the runs back in the order a
    /// heap by end and creation gives: ties included, as every run lasts
    /// the same and many end together; hanging runs counted, never given.
    #[test]
    fn runs_leave_in_the_order_of_their_end_then_creation() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let (startup, work) = (2.0, 5.0);
        let mut active = Active::default();
        let mut reference: BinaryHeap<Reverse<(u64, u32)>> = BinaryHeap::new();
        let (mut t, mut seq, mut hung, mut popped) = (0.0f64, 0u32, 0usize, 0u32);
        for _ in 0..20_000 {
            if next() % 2 == 0 && reference.len() < 60 {
                let hangs = next() % 200 == 0;
                let ends_at = if hangs { f64::INFINITY } else { t + startup + work };
                active.push(Pod { ends_at, seq, index: 0, verdict_failed: false, restarts: 0 }, Delay::StartUp);
                if hangs {
                    hung += 1;
                } else {
                    reference.push(Reverse((ends_at.to_bits(), seq)));
                }
                seq += 1;
                continue;
            }
            let Some(Reverse((end, want_seq))) = reference.pop() else { continue };
            t = f64::from_bits(end);
            let mut pod = active.pop().expect("the reference holds a run");
            assert_eq!((pod.ends_at, pod.seq), (t, want_seq), "after {popped} runs");
            popped += 1;
            if next() % 3 == 0 {
                pod.restarts += 1;
                let delay = backoff(KUBELET_BACKOFF, pod.restarts.min(7));
                pod.ends_at = t + delay + work;
                reference.push(Reverse((pod.ends_at.to_bits(), pod.seq)));
                active.push(pod, Delay::Restart(delay.to_bits()));
            }
            assert_eq!(active.len(), reference.len() + hung);
        }
        assert!(popped > 5_000 && hung > 20, "both paths were exercised: {popped} runs ended, {hung} hung");
        let queues = active.queues.queues.len();
        assert!(queues > 4, "restarts of several back-offs: {queues} queues");
    }
}
