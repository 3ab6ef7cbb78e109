//! The one decision a run makes: succeed or fail, and why.
//!
//! Deterministic rules come first (a listed completion index fails; an attempt
//! below FAIL_ATTEMPTS fails), then the random draw. The draw is uniform in
//! [0, 1) and the run fails when it is below the probability, so p = 0 never
//! fails and p = 1 always does. With a seed the draw is a pure function of
//! (seed, pod name, completion index, attempt): a retried pod has a new name
//! and so a new draw; a container restarted in its pod (restartPolicy
//! OnFailure) keeps its name, so only the attempt number counted in
//! STATE_DIR gives it a new draw; rerunning the same pod at the same attempt
//! reproduces it. `xtask odds` drives this same function in its Monte Carlo
//! simulation.

use rand::rngs::{SysRng, Xoshiro256PlusPlus};
use rand::{RngExt, SeedableRng};

use crate::config::{FailIndexes, FailureMode};

/// What the decision depends on besides the draw.
#[derive(Clone, Debug)]
pub struct Rules<'a> {
    pub fail_probability: f64,
    pub fail_indexes: Option<&'a FailIndexes>,
    pub fail_attempts: u32,
    pub failure_mode: FailureMode,
    pub fail_exit_code: u8,
}

/// Why a run fails.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Reason {
    /// The completion index is listed in FAIL_INDEXES.
    FailIndex { index: u32 },
    /// The attempt number is below FAIL_ATTEMPTS.
    FailAttempts { attempt: u32, fail_attempts: u32 },
    /// The draw came out below the probability.
    Draw { draw: f64, threshold: f64 },
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Verdict {
    /// The draw (if one was made) was at or above the probability.
    Succeed { draw: Option<f64>, threshold: f64 },
    /// Fail in this mode; `exit_code` is the code for [`FailureMode::Exit`].
    Fail { mode: FailureMode, exit_code: u8, reason: Reason },
}

impl Verdict {
    pub fn is_failure(&self) -> bool {
        matches!(self, Verdict::Fail { .. })
    }
}

/// Decides one run. `draw` is called only when no rule decided first.
pub fn decide(rules: &Rules<'_>, index: Option<u32>, attempt: u32, draw: impl FnOnce() -> f64) -> Verdict {
    if let (Some(indexes), Some(index)) = (rules.fail_indexes, index)
        && let Some(code) = indexes.matches(index)
    {
        // An index with its own exit code exits with it, whatever the mode:
        // that is what a podFailurePolicy rule on that code needs to see.
        let (mode, exit_code) = match code {
            Some(code) => (FailureMode::Exit, code),
            None => (rules.failure_mode, rules.fail_exit_code),
        };
        return Verdict::Fail { mode, exit_code, reason: Reason::FailIndex { index } };
    }
    if attempt < rules.fail_attempts {
        return Verdict::Fail {
            mode: rules.failure_mode,
            exit_code: rules.fail_exit_code,
            reason: Reason::FailAttempts { attempt, fail_attempts: rules.fail_attempts },
        };
    }
    let threshold = rules.fail_probability;
    let draw = draw();
    if draw < threshold {
        Verdict::Fail {
            mode: rules.failure_mode,
            exit_code: rules.fail_exit_code,
            reason: Reason::Draw { draw, threshold },
        }
    } else {
        Verdict::Succeed { draw: Some(draw), threshold }
    }
}

/// The draw for a seeded run: uniform in [0, 1), a pure function of its inputs.
pub fn seeded_draw(seed: u64, pod_name: &str, index: Option<u32>, attempt: u32) -> f64 {
    // FNV-1a over the inputs, with the absence of an index distinct from any
    // index; the generator's own seeding then spreads the bits.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    feed(&seed.to_le_bytes());
    feed(pod_name.as_bytes());
    match index {
        Some(i) => {
            feed(&[1]);
            feed(&i.to_le_bytes());
        }
        None => feed(&[0]),
    }
    // Attempt 0 feeds nothing, so that first attempts draw what they drew
    // before the attempt was an input; a marker byte keeps later attempts
    // apart from any other input.
    if attempt > 0 {
        feed(&[2]);
        feed(&attempt.to_le_bytes());
    }
    // Xoshiro256++ is one of rand's portable generators: the same seed gives
    // the same stream in every release, so a seed means the same thing in
    // every image built from this source.
    Xoshiro256PlusPlus::seed_from_u64(hash).random::<f64>()
}

/// The draw for an unseeded run, from the operating system's randomness.
pub fn os_draw() -> Result<f64, rand::rngs::SysError> {
    Ok(Xoshiro256PlusPlus::try_from_rng(&mut SysRng)?.random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_fail_indexes;

    fn rules(p: f64) -> Rules<'static> {
        Rules {
            fail_probability: p,
            fail_indexes: None,
            fail_attempts: 0,
            failure_mode: FailureMode::Exit,
            fail_exit_code: 1,
        }
    }

    /// Counts failures of `n` seeded runs with pod names as a Job controller
    /// makes them (job name, dash, five random-looking characters).
    fn failures(p: f64, seed: u64, n: u32) -> u32 {
        let r = rules(p);
        (0..n)
            .filter(|i| {
                let pod = format!("job-test-{:05x}", i.wrapping_mul(2_654_435_761));
                decide(&r, None, 0, || seeded_draw(seed, &pod, None, 0)).is_failure()
            })
            .count() as u32
    }

    /// The observed rate lies within 4.5 standard deviations of the binomial
    /// mean. The seeds are fixed, so this is deterministic; 4.5 sigma means a
    /// correct generator would miss with probability about 7e-6 per case, so
    /// a failure here is a broken draw, not bad luck.
    #[test]
    fn seeded_failure_rate_follows_the_binomial_distribution() {
        const N: u32 = 20_000;
        for p in [0.0, 0.05, 0.2, 0.5, 0.95, 1.0] {
            for seed in [0, 1, 42, u64::MAX] {
                let k = f64::from(failures(p, seed, N));
                let mean = f64::from(N) * p;
                let sigma = (f64::from(N) * p * (1.0 - p)).sqrt();
                assert!(
                    (k - mean).abs() <= 4.5 * sigma,
                    "p={p} seed={seed}: {k} failures of {N}, expected {mean} ± {}",
                    4.5 * sigma
                );
            }
        }
    }

    #[test]
    fn p_zero_never_fails_and_p_one_always_fails_even_at_the_edges() {
        // The draw is in [0, 1): the smallest and the largest draws.
        let largest = 1.0 - f64::EPSILON / 2.0;
        for draw in [0.0, largest] {
            assert!(!decide(&rules(0.0), None, 0, || draw).is_failure());
            assert!(decide(&rules(1.0), None, 0, || draw).is_failure());
        }
        assert_eq!(failures(0.0, 9, 5_000), 0);
        assert_eq!(failures(1.0, 9, 5_000), 5_000);
    }

    #[test]
    fn seeded_draws_are_pure_and_depend_on_every_input() {
        let d = seeded_draw(7, "job-test-abcde", Some(3), 0);
        assert_eq!(d, seeded_draw(7, "job-test-abcde", Some(3), 0));
        assert!((0.0..1.0).contains(&d));
        assert_ne!(d, seeded_draw(8, "job-test-abcde", Some(3), 0), "seed");
        assert_ne!(d, seeded_draw(7, "job-test-fghij", Some(3), 0), "pod name");
        assert_ne!(d, seeded_draw(7, "job-test-abcde", Some(4), 0), "index");
        assert_ne!(d, seeded_draw(7, "job-test-abcde", Some(3), 1), "attempt");
        assert_ne!(seeded_draw(7, "p", Some(0), 0), seeded_draw(7, "p", None, 0), "no index is not index 0");
        // The seeds users already have keep their first-attempt draws.
        assert_eq!(seeded_draw(2024, "job-test-aaaaa", None, 0), 0.31487604096004196);
    }

    /// A container restarted in its pod (same name) draws anew at every
    /// attempt, and the draws of one pod's attempts follow the binomial
    /// distribution like those of distinct pods (4.5 sigma, fixed inputs).
    #[test]
    fn seeded_attempts_of_one_pod_fail_at_the_configured_rate() {
        const N: u32 = 20_000;
        for p in [0.2, 0.5] {
            let r = rules(p);
            let k =
                (0..N).filter(|a| decide(&r, None, *a, || seeded_draw(11, "job-test-zzzzz", None, *a)).is_failure());
            let k = f64::from(k.count() as u32);
            let (mean, sigma) = (f64::from(N) * p, (f64::from(N) * p * (1.0 - p)).sqrt());
            assert!((k - mean).abs() <= 4.5 * sigma, "p={p}: {k} failures of {N}");
        }
    }

    #[test]
    fn os_draws_are_in_range_and_vary() {
        let draws: Vec<f64> = (0..64).map(|_| os_draw().unwrap()).collect();
        assert!(draws.iter().all(|d| (0.0..1.0).contains(d)));
        // 64 equal 53-bit draws would mean the randomness is not random.
        assert!(draws.iter().any(|d| *d != draws[0]));
    }

    #[test]
    fn listed_indexes_fail_with_their_own_exit_code_and_without_a_draw() {
        let list = parse_fail_indexes("0,3:42").unwrap();
        let r = Rules { fail_indexes: Some(&list), failure_mode: FailureMode::Panic, ..rules(0.0) };
        let no_draw = || panic!("a rule decided, the draw must not be made");
        assert_eq!(
            decide(&r, Some(0), 0, no_draw),
            Verdict::Fail { mode: FailureMode::Panic, exit_code: 1, reason: Reason::FailIndex { index: 0 } }
        );
        // An index's own exit code means exiting with it, whatever the mode.
        assert_eq!(
            decide(&r, Some(3), 0, no_draw),
            Verdict::Fail { mode: FailureMode::Exit, exit_code: 42, reason: Reason::FailIndex { index: 3 } }
        );
        assert_eq!(decide(&r, Some(1), 0, || 0.5), Verdict::Succeed { draw: Some(0.5), threshold: 0.0 });
        // Not an Indexed Job: the list cannot match.
        assert!(!decide(&r, None, 0, || 0.5).is_failure());
    }

    #[test]
    fn odd_and_even_reproduce_the_e2e_fixture() {
        // Kubernetes' failOddSucceedEven: odd indexes fail, even succeed.
        let odd = parse_fail_indexes("odd").unwrap();
        let r = Rules { fail_indexes: Some(&odd), ..rules(0.0) };
        let failed: Vec<u32> = (0..6).filter(|i| decide(&r, Some(*i), 0, || 0.99).is_failure()).collect();
        assert_eq!(failed, [1, 3, 5]);
        let even = parse_fail_indexes("even").unwrap();
        let r = Rules { fail_indexes: Some(&even), ..rules(0.0) };
        let failed: Vec<u32> = (0..6).filter(|i| decide(&r, Some(*i), 0, || 0.99).is_failure()).collect();
        assert_eq!(failed, [0, 2, 4]);
    }

    #[test]
    fn first_attempts_fail_then_the_draw_decides() {
        // failOnce: FAIL_ATTEMPTS=1 with probability 0.
        let r = Rules { fail_attempts: 1, ..rules(0.0) };
        assert_eq!(
            decide(&r, None, 0, || panic!("no draw")),
            Verdict::Fail {
                mode: FailureMode::Exit,
                exit_code: 1,
                reason: Reason::FailAttempts { attempt: 0, fail_attempts: 1 }
            }
        );
        assert!(!decide(&r, None, 1, || 0.0).is_failure());
        // Past the failing attempts, probability 1 still fails, by the draw.
        let r = Rules { fail_attempts: 2, ..rules(1.0) };
        assert!(matches!(decide(&r, None, 2, || 0.3), Verdict::Fail { reason: Reason::Draw { .. }, .. }));
    }

    #[test]
    fn an_index_rule_comes_before_the_attempt_rule() {
        let list = parse_fail_indexes("2:9").unwrap();
        let r = Rules { fail_indexes: Some(&list), fail_attempts: 5, ..rules(0.0) };
        assert!(matches!(
            decide(&r, Some(2), 0, || 0.5),
            Verdict::Fail { reason: Reason::FailIndex { .. }, exit_code: 9, .. }
        ));
        assert!(matches!(decide(&r, Some(1), 0, || 0.5), Verdict::Fail { reason: Reason::FailAttempts { .. }, .. }));
    }
}
