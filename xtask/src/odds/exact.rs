//! Closed forms: the exact probability that the Job completes, and the
//! distribution of the pods (or container runs) it takes, where the Job
//! controller's rules make them exact. `None` where they do not (the
//! simulation answers then).
//!
//! The rules followed, from the Kubernetes documentation page "Jobs"
//! (section "Pod backoff failure policy" and "Backoff limit per index"):
//! - restartPolicy Never: every failed pod counts; the Job fails when the
//!   failed pods exceed backoffLimit (backoffLimit 3 allows 3 retries, the
//!   fourth failure ends it).
//! - restartPolicy OnFailure: the container restarts in its pod; what counts
//!   is the sum of restarts of the pods still Pending or Running, and the Job
//!   fails when it reaches backoffLimit (any restart, with backoffLimit 0).
//!   Restarts of a pod that has succeeded stop counting.
//! - backoffLimitPerIndex: each index fails on its own when its failed pods
//!   exceed the limit; the Job fails if any index failed (early when the
//!   failed indexes exceed maxFailedIndexes).
//! - A failing pod in hang mode never ends: the Job cannot complete and ends
//!   at activeDeadlineSeconds.

use super::Model;
use crate::manifest::params::RestartPolicy;

/// Exact results.
#[derive(Debug, Clone, PartialEq)]
pub struct Exact {
    /// Probability that the Job completes.
    pub p_complete: f64,
    /// Mean and standard deviation of the runs that end (pods that reach
    /// Succeeded or Failed under Never; container runs under OnFailure),
    /// when known in closed form.
    pub runs: Option<(f64, f64)>,
}

pub fn exact(m: &Model) -> Option<Exact> {
    if m.hangs_on_failure() {
        // Completion needs every first attempt to succeed (one hang blocks
        // the Job until the deadline), and no work may outlast the deadline.
        let p: f64 = (0..m.completions).map(|i| 1.0 - m.fail_chance(i, 0)).product();
        return Some(Exact { p_complete: if m.work_fits_deadline() { p } else { 0.0 }, runs: None });
    }
    if !m.work_fits_deadline() {
        return Some(Exact { p_complete: 0.0, runs: None });
    }
    match m.restart_policy {
        RestartPolicy::Never => match m.backoff_limit_per_index {
            Some(per_index) => Some(per_index_never(m, per_index)),
            None => global_never(m),
        },
        RestartPolicy::OnFailure => on_failure(m),
    }
}

/// Never, one global backoffLimit: a race between the C-th success and the
/// (B+1)-th failure. Exact when every pod fails with the same chance (the
/// completion order then does not matter); with some indexes failing always
/// and others not, only "never completes" is exact.
fn global_never(m: &Model) -> Option<Exact> {
    let b = m.backoff_limit.unwrap_or(u32::MAX);
    let chances: Vec<f64> = (0..m.completions).map(|i| m.fail_chance(i, 0)).collect();
    if chances.iter().any(|&f| f >= 1.0) {
        // Some index (or every attempt, via FAIL_ATTEMPTS without a
        // counter) always fails: it can never succeed.
        let same = chances.iter().all(|&f| f == chances[0]);
        let runs = same.then(|| (f64::from(b) + 1.0, 0.0));
        return Some(Exact { p_complete: 0.0, runs });
    }
    if chances.iter().any(|&f| f != chances[0]) {
        return None;
    }
    let f = chances[0];
    let q = 1.0 - f;
    let c = m.completions as usize;
    // P(k failures before the C-th success) is negative binomial:
    // C(C-1+k, k) q^C f^k. The Job completes when k <= B.
    let mut p_complete = 0.0;
    let mut moments = Moments::default();
    let mut term = q.powi(c as i32); // k = 0
    let max_k = b.min(100_000) as usize;
    for k in 0..=max_k {
        p_complete += term;
        moments.add((c + k) as f64, term);
        // C(C+k, k+1)/C(C-1+k, k) = (C+k)/(k+1)
        term *= f * (c + k) as f64 / (k + 1) as f64;
        if term < 1e-18 && k > c {
            break;
        }
    }
    // Failing: the (B+1)-th failure comes with s < C successes: s + B + 1 runs.
    if b != u32::MAX {
        let bf = b as usize + 1;
        let mut t = f.powi(bf as i32); // s = 0: C(B+s, s) f^(B+1) q^s
        for s in 0..c {
            moments.add((s + bf) as f64, t);
            t *= q * (bf + s) as f64 / (s + 1) as f64;
        }
    }
    Some(Exact { p_complete, runs: Some(moments.mean_sd()) })
}

/// Never with backoffLimitPerIndex: indexes are independent. Exact also
/// with a global backoffLimit on top (a convolution of per-index failures).
fn per_index_never(m: &Model, per_index: u32) -> Exact {
    let mut p_all = 1.0;
    let mut runs_mean = 0.0;
    let mut runs_var = 0.0;
    // Distribution of total failures over the indexes, given all succeed.
    let mut total = vec![1.0];
    for i in 0..m.completions {
        // g[k]: the index succeeds after exactly k failures.
        let mut g = Vec::new();
        let mut all_failed = 1.0;
        let mut index_moments = Moments::default();
        for a in 0..=per_index {
            let f = m.fail_chance(i, a);
            g.push(all_failed * (1.0 - f));
            index_moments.add(f64::from(a) + 1.0, all_failed * (1.0 - f));
            all_failed *= f;
        }
        index_moments.add(f64::from(per_index) + 1.0, all_failed);
        p_all *= 1.0 - all_failed;
        let (mean, sd) = index_moments.mean_sd();
        runs_mean += mean;
        runs_var += sd * sd;
        total = convolve(&total, &g);
    }
    let p_complete = match m.backoff_limit {
        Some(b) => total.iter().take(b as usize + 1).sum(),
        None => p_all,
    };
    // maxFailedIndexes ends a failing Job early, which changes the runs
    // but not whether it completes.
    let runs = (m.max_failed_indexes.is_none() && m.backoff_limit.is_none()).then(|| (runs_mean, runs_var.sqrt()));
    Exact { p_complete, runs }
}

/// OnFailure: exact when at most one pod is active at a time (parallelism 1
/// or a single completion): a pod then fails the Job alone, when its own
/// restarts reach the limit.
fn on_failure(m: &Model) -> Option<Exact> {
    if m.parallelism > 1 && m.completions > 1 {
        return None;
    }
    let b = m.backoff_limit.unwrap_or(u32::MAX);
    // Restarts that fail the Job: B, or any restart when B is 0.
    let fatal = b.max(1);
    let mut p_complete = 1.0;
    let mut moments_mean = 0.0;
    let mut moments_var = 0.0;
    for i in 0..m.completions {
        let mut all_failed = 1.0;
        let mut pod = Moments::default();
        for a in 0..fatal.min(100_000) {
            let f = m.fail_chance(i, a);
            pod.add(f64::from(a) + 1.0, all_failed * (1.0 - f));
            all_failed *= f;
        }
        pod.add(f64::from(fatal.min(100_000)), all_failed);
        p_complete *= 1.0 - all_failed;
        let (mean, sd) = pod.mean_sd();
        moments_mean += mean;
        moments_var += sd * sd;
    }
    // With several pods in a row the runs of the pods after a failing one
    // never happen; the sum is exact only for a single pod.
    let runs = (m.completions == 1).then(|| (moments_mean, moments_var.sqrt()));
    Some(Exact { p_complete, runs })
}

fn convolve(a: &[f64], b: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; a.len() + b.len() - 1];
    for (i, x) in a.iter().enumerate() {
        for (j, y) in b.iter().enumerate() {
            out[i + j] += x * y;
        }
    }
    out
}

/// Weighted first and second moments of a discrete distribution.
#[derive(Default)]
struct Moments {
    w: f64,
    s1: f64,
    s2: f64,
}

impl Moments {
    fn add(&mut self, x: f64, p: f64) {
        self.w += p;
        self.s1 += p * x;
        self.s2 += p * x * x;
    }
    fn mean_sd(&self) -> (f64, f64) {
        if self.w == 0.0 {
            return (0.0, 0.0);
        }
        let mean = self.s1 / self.w;
        (mean, (self.s2 / self.w - mean * mean).max(0.0).sqrt())
    }
}
