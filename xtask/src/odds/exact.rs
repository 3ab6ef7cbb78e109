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
//!
//! Every form answers for any size in well under a second: indexes that
//! behave alike are taken together (a power, not a loop over completions),
//! the negative binomial's tail is the regularized incomplete beta function,
//! and what would need a sum too long for the work bound is left to the
//! simulation (`None`).

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

/// Terms a sum may take before the closed form gives up on it.
const WORK: u64 = 10_000_000;

/// How the tries of one index (or pod) go: the first `certain` tries fail
/// by a rule, the later ones with chance `f`; `certain` None means every try
/// fails.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Tries {
    certain: Option<u64>,
    f: f64,
}

impl Tries {
    /// The tries of index `index`, with `attempt(k)` the attempt number the
    /// worker sees on its k-th try.
    fn of(m: &Model, index: u32, attempt: impl Fn(u32) -> u32) -> Tries {
        let chance = |k: u32| m.fail_chance(index, attempt(k));
        let f = m.fail_probability;
        let certain = if chance(0) < 1.0 {
            Some(0)
        } else if m.fail_attempts > 0 && chance(m.fail_attempts) < 1.0 {
            Some(u64::from(m.fail_attempts))
        } else {
            None
        };
        Tries { certain: certain.filter(|_| f < 1.0), f }
    }

    /// Chance that all of `n` tries fail.
    fn all_fail(&self, n: u64) -> f64 {
        match self.certain {
            None => 1.0,
            Some(c) if c >= n => 1.0,
            Some(c) => self.f.powf((n - c) as f64),
        }
    }

    /// Mean and variance of the tries made when at most `n` are allowed
    /// (the first success ends them); None when the sum would be too long.
    fn runs(&self, n: u64) -> Option<(f64, f64)> {
        let Some(certain) = self.certain.filter(|c| *c < n) else {
            return Some((n as f64, 0.0));
        };
        // E[X] and E[X^2] from P(X >= x): 1 for x <= certain + 1, then f per try.
        let c = certain as f64;
        let (mut s1, mut s2) = (c, c * c);
        let mut tail = 1.0;
        let mut x = c;
        for _ in 0..(n - certain).min(WORK) {
            x += 1.0;
            s1 += tail;
            s2 += (2.0 * x - 1.0) * tail;
            tail *= self.f;
            if tail < 1e-18 {
                return Some((s1, (s2 - s1 * s1).max(0.0)));
            }
        }
        (n - certain <= WORK).then(|| (s1, (s2 - s1 * s1).max(0.0)))
    }
}

pub fn exact(m: &Model) -> Option<Exact> {
    let classes = m.index_classes();
    if m.hangs_on_failure() {
        // Completion needs every first attempt to succeed (one hang blocks
        // the Job until the deadline), and no work may outlast the deadline.
        let p: f64 = classes.iter().map(|&(i, n)| (1.0 - m.fail_chance(i, 0)).powf(n as f64)).product();
        return Some(Exact { p_complete: if m.work_fits_deadline() { p } else { 0.0 }, runs: None });
    }
    if !m.work_fits_deadline() {
        return Some(Exact { p_complete: 0.0, runs: None });
    }
    match m.restart_policy {
        RestartPolicy::Never => match m.backoff_limit_per_index {
            Some(per_index) => per_index_never(m, &classes, per_index),
            None => global_never(m, &classes),
        },
        RestartPolicy::OnFailure => on_failure(m, &classes),
    }
}

/// Never, one global backoffLimit: a race between the C-th success and the
/// (B+1)-th failure. Exact when every pod fails with the same chance (the
/// completion order then does not matter); with some indexes failing always
/// and others not, only "never completes" is exact.
fn global_never(m: &Model, classes: &[(u32, u64)]) -> Option<Exact> {
    let chances: Vec<f64> = classes.iter().map(|&(i, _)| m.fail_chance(i, m.worker_attempt(0, 0))).collect();
    if chances.iter().any(|&f| f >= 1.0) {
        // Some index (or every attempt, via FAIL_ATTEMPTS without a
        // counter) always fails: it can never succeed.
        let same = chances.iter().all(|&f| f == chances[0]);
        let runs = m.backoff_limit.filter(|_| same).map(|b| (f64::from(b) + 1.0, 0.0));
        return Some(Exact { p_complete: 0.0, runs });
    }
    if chances.iter().any(|&f| f != chances[0]) {
        return None;
    }
    let f = chances[0];
    let q = 1.0 - f;
    let c = f64::from(m.completions);
    if f == 0.0 {
        return Some(Exact { p_complete: 1.0, runs: Some((c, 0.0)) });
    }
    let Some(b) = m.backoff_limit else {
        // No limit: K, the failures before the C-th success, is negative
        // binomial with mean C f/q and variance C f/q^2.
        return Some(Exact { p_complete: 1.0, runs: Some((c + c * f / q, (c * f).sqrt() / q)) });
    };
    let b = f64::from(b);
    // P(K <= B) = I_q(C, B + 1); failing, S (the successes before the
    // (B+1)-th failure) has P(S <= C - 1) = I_f(B + 1, C).
    let p_complete = beta_reg(c, b + 1.0, q);
    let p_fail = beta_reg(b + 1.0, c, f);
    // The runs: C + K when complete, B + 1 + S when failing; each branch's
    // moments by a sum around its bulk, and the branches mixed.
    let complete = (p_complete > 1e-16).then(|| truncated_moments(c, f, b));
    let failing = (p_fail > 1e-16).then(|| truncated_moments(b + 1.0, q, c - 1.0));
    let runs = match (complete, failing) {
        (Some(Some((m1, v1))), None) => Some((c + m1, v1.sqrt())),
        (None, Some(Some((m2, v2)))) => Some((b + 1.0 + m2, v2.sqrt())),
        (Some(Some((m1, v1))), Some(Some((m2, v2)))) => {
            let (m1, m2) = (c + m1, b + 1.0 + m2);
            let total = p_complete + p_fail;
            let (w1, w2) = (p_complete / total, p_fail / total);
            let mean = w1 * m1 + w2 * m2;
            let var = w1 * (v1 + (m1 - mean).powi(2)) + w2 * (v2 + (m2 - mean).powi(2));
            Some((mean, var.sqrt()))
        }
        _ => None,
    };
    Some(Exact { p_complete, runs })
}

/// Mean and variance of K given K <= `max`, where K counts the events of
/// chance `f` before the `r`-th event of chance 1 - f (negative binomial).
/// Summed outward from the mode until the terms vanish; None past the work
/// bound.
fn truncated_moments(r: f64, f: f64, max: f64) -> Option<(f64, f64)> {
    let q = 1.0 - f;
    let mode = ((r - 1.0) * f / q).floor().clamp(0.0, max);
    // Weights relative to the mode's: P(k+1)/P(k) = f (r + k) / (k + 1).
    let (mut w, mut s1, mut s2) = (1.0, 0.0, 0.0);
    let mut steps = 0u64;
    let mut add = |weight: f64, d: f64| {
        w += weight;
        s1 += weight * d;
        s2 += weight * d * d;
    };
    let mut weight = 1.0;
    let mut k = mode;
    while k < max {
        weight *= f * (r + k) / (k + 1.0);
        k += 1.0;
        add(weight, k - mode);
        steps += 1;
        if weight < 1e-18 || steps > WORK {
            break;
        }
    }
    let mut weight = 1.0;
    let mut k = mode;
    while k > 0.0 {
        weight *= k / (f * (r + k - 1.0));
        k -= 1.0;
        add(weight, k - mode);
        steps += 1;
        if weight < 1e-18 || steps > WORK {
            break;
        }
    }
    if steps > WORK {
        return None;
    }
    let mean = s1 / w;
    Some((mode + mean, (s2 / w - mean * mean).max(0.0)))
}

/// Never with backoffLimitPerIndex: indexes are independent. Exact also
/// with a global backoffLimit on top (the per-index failures convolved).
fn per_index_never(m: &Model, classes: &[(u32, u64)], per_index: u32) -> Option<Exact> {
    let n = u64::from(per_index) + 1;
    let tries: Vec<(Tries, u64)> =
        classes.iter().map(|&(i, count)| (Tries::of(m, i, |k| m.worker_attempt(0, k)), count)).collect();
    let p_all: f64 = tries.iter().map(|(t, count)| (1.0 - t.all_fail(n)).powf(*count as f64)).product();
    let p_complete = match m.backoff_limit {
        None => p_all,
        // Given that every index succeeds, at most `per_index` failures each:
        // a global limit at or above their sum never binds.
        Some(b) if u64::from(b) >= u64::from(m.completions).saturating_mul(u64::from(per_index)) => p_all,
        Some(b) => {
            // Total failures over all indexes, given each succeeds: the
            // product of their generating functions, cut at B + 1 terms.
            let len = u64::from(b) + 1;
            let cost: u64 = tries.iter().map(|(_, count)| len * len * 2 * (64 - count.leading_zeros()) as u64).sum();
            if cost > WORK * 10 {
                return None;
            }
            let len = len as usize;
            let mut total = vec![1.0];
            for (t, count) in &tries {
                // g[k]: the index succeeds after exactly k failures.
                let mut g = vec![0.0; len.min(n as usize)];
                if let Some(certain) = t.certain {
                    let mut tail = 1.0;
                    for (k, slot) in g.iter_mut().enumerate().skip(certain as usize) {
                        *slot = tail * (1.0 - t.f);
                        tail *= t.f;
                        if tail == 0.0 || k as u64 >= n {
                            break;
                        }
                    }
                }
                total = convolve(&total, &power(&g, *count, len), len);
            }
            total.iter().sum()
        }
    };
    // maxFailedIndexes ends a failing Job early, which changes the runs
    // but not whether it completes.
    let runs = if m.max_failed_indexes.is_none() && m.backoff_limit.is_none() {
        let mut mean = 0.0;
        let mut var = 0.0;
        for (t, count) in &tries {
            let (m1, v1) = t.runs(n)?;
            mean += m1 * *count as f64;
            var += v1 * *count as f64;
        }
        Some((mean, var.sqrt()))
    } else {
        None
    };
    Some(Exact { p_complete, runs })
}

/// OnFailure: exact when at most one pod is active at a time (parallelism 1
/// or a single completion): a pod then fails the Job alone, when its own
/// restarts reach the limit.
fn on_failure(m: &Model, classes: &[(u32, u64)]) -> Option<Exact> {
    if m.parallelism > 1 && m.completions > 1 {
        return None;
    }
    // Failed runs that fail the Job: B restarts, or any restart when B is 0.
    let fatal = m.backoff_limit.map_or(u64::MAX, |b| u64::from(b.max(1)));
    let tries: Vec<(Tries, u64)> =
        classes.iter().map(|&(i, count)| (Tries::of(m, i, |k| m.worker_attempt(k, 0)), count)).collect();
    let p_complete = tries.iter().map(|(t, count)| (1.0 - t.all_fail(fatal)).powf(*count as f64)).product();
    // With several pods in a row the runs of the pods after a failing one
    // never happen; the sum is exact only for a single pod.
    let runs = match tries.as_slice() {
        [(t, 1)] => t.runs(fatal).map(|(mean, var)| (mean, var.sqrt())),
        _ => None,
    };
    Some(Exact { p_complete, runs })
}

/// The product of two series, cut at `len` terms.
fn convolve(a: &[f64], b: &[f64], len: usize) -> Vec<f64> {
    let mut out = vec![0.0; (a.len() + b.len()).saturating_sub(1).min(len)];
    for (i, x) in a.iter().enumerate() {
        for (j, y) in b.iter().enumerate().take(len.saturating_sub(i)) {
            out[i + j] += x * y;
        }
    }
    out
}

/// A series to the power `n`, cut at `len` terms (by squaring).
fn power(g: &[f64], mut n: u64, len: usize) -> Vec<f64> {
    let mut result = vec![1.0];
    let mut base = g.to_vec();
    while n > 0 {
        if n & 1 == 1 {
            result = convolve(&result, &base, len);
        }
        n >>= 1;
        if n > 0 {
            base = convolve(&base, &base, len);
        }
    }
    result
}

/// ln Γ(x) for x > 0, by the Lanczos approximation (g = 7, nine terms),
/// good to about 15 significant digits.
pub fn ln_gamma(x: f64) -> f64 {
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1 - x) = π / sin(π x).
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + 7.5;
    let sum = C.iter().enumerate().skip(1).fold(C[0], |acc, (i, c)| acc + c / (x + i as f64));
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// The regularized incomplete beta function I_x(a, b): the chance that a
/// Beta(a, b) variable is below x. A continued fraction (modified Lentz) on
/// the side where it converges fast, in O(sqrt(max(a, b))) steps.
pub fn beta_reg(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (-x).ln_1p();
    if x < (a + 1.0) / (a + b + 2.0) {
        (ln_front.exp() * beta_fraction(a, b, x) / a).clamp(0.0, 1.0)
    } else {
        (1.0 - ln_front.exp() * beta_fraction(b, a, 1.0 - x) / b).clamp(0.0, 1.0)
    }
}

fn beta_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let max_steps = 1_000 + 20 * a.max(b).sqrt() as u64;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for step in 1..=max_steps {
        let m = step as f64;
        let m2 = 2.0 * m;
        // Even step.
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        h *= d * c;
        // Odd step.
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        let delta = d * c;
        h *= delta;
        if (delta - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// The exact (Clopper-Pearson) two-sided 1 - `alpha` interval for a
/// binomial proportion after `k` events in `n` trials: the bounds are
/// quantiles of Beta(k, n-k+1) and Beta(k+1, n-k), found by bisection on the
/// regularized incomplete beta function. Conservative: it covers at least
/// 1 - alpha for every p.
pub fn clopper_pearson(k: u64, n: u64, alpha: f64) -> (f64, f64) {
    let (k, n) = (k as f64, n as f64);
    let low = if k == 0.0 { 0.0 } else { beta_quantile(|x| beta_reg(k, n - k + 1.0, x), alpha / 2.0) };
    let high = if k == n { 1.0 } else { beta_quantile(|x| beta_reg(k + 1.0, n - k, x), 1.0 - alpha / 2.0) };
    (low, high)
}

/// The x in [0, 1] where the increasing `cdf` reaches `q`.
fn beta_quantile(cdf: impl Fn(f64) -> f64, q: f64) -> f64 {
    let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
    // 60 halvings take the bracket below 1e-18, beyond f64's resolution here.
    for _ in 0..60 {
        let mid = (lo + hi) / 2.0;
        if cdf(mid) < q { lo = mid } else { hi = mid }
    }
    (lo + hi) / 2.0
}
