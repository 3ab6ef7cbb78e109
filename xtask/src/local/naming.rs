//! Names in a local run: the pods' (`<job>-<5 characters>`, as a cluster's
//! generateName makes them, or drawn from the worker's seed) and their
//! containers' (the run's id in each).

use std::time::Instant;

use k8s_openapi::api::core::v1::Container;

/// The seed in the pod template's WORKER_SEED, when it is a plain value.
pub(super) fn worker_seed(c: &Container) -> Option<u64> {
    let var = c.env.iter().flatten().find(|v| v.name == job_worker::config::SEED.env)?;
    var.value.as_deref()?.trim().parse().ok()
}

/// Pod names as Kubernetes makes them, `<job>-<5 characters>`: at random,
/// or, when the worker is seeded, drawn from that seed, the pod's
/// completion index and its attempt (how many pods its index had before
/// it; NonIndexed, how many pods the Job had). Not from the order pods
/// happen to be made in: with parallelism above 1 that order follows which
/// pod exits first, and a name is an input of the worker's draw.
pub(super) struct PodNames {
    job: String,
    seed: Option<u64>,
}

impl PodNames {
    pub(super) fn new(job: &str, seed: Option<u64>) -> PodNames {
        PodNames { job: job.to_owned(), seed }
    }

    /// The name of the pod for `index` at `attempt`; another draw (still
    /// from the same inputs) when `taken` by a pod of this run.
    pub(super) fn name(&self, index: Option<u32>, attempt: u32, taken: impl Fn(&str) -> bool) -> String {
        (0u32..)
            .map(|clash| {
                let suffix = match self.seed {
                    // The worker's own pure draw; the `/` keeps these inputs
                    // apart from any pod name the worker draws for.
                    Some(seed) => {
                        let inputs = match clash {
                            0 => format!("{}/pod-names", self.job),
                            n => format!("{}/pod-names/{n}", self.job),
                        };
                        // NonIndexed attempts count from 1, as the names of
                        // earlier versions did.
                        let attempt = if index.is_some() { attempt } else { attempt + 1 };
                        let draw = job_worker::decision::seeded_draw(seed, &inputs, index, attempt);
                        suffix_of((draw * SUFFIXES as f64) as u64)
                    }
                    None => random_suffix(),
                };
                format!("{}-{suffix}", self.job)
            })
            .find(|name| !taken(name))
            .expect("an endless supply of names")
    }
}

/// The container of a pod: the run's id in it, so that a run never meets
/// the containers of another (a seeded run's pod names repeat, and a run
/// kept with `--keep` stays on the daemon).
pub(super) fn container_name(run: &str, pod: &str) -> String {
    format!("job-test-local_{run}_{pod}")
}

/// `utilrand.String`'s alphabet: no vowels, no look-alikes.
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
/// How many five-character suffixes there are.
const SUFFIXES: u64 = 27u64.pow(5);

/// Five characters of ALPHABET from a number's digits in base 27.
fn suffix_of(mut bits: u64) -> String {
    (0..5)
        .map(|_| {
            let c = ALPHABET[(bits % ALPHABET.len() as u64) as usize] as char;
            bits /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

/// Five characters as Kubernetes names pods (`utilrand.String`'s alphabet:
/// no vowels, no look-alikes). Names need to be unique, not secret: std's
/// randomly keyed hasher is enough.
pub(crate) fn random_suffix() -> String {
    use std::hash::BuildHasher;
    suffix_of(std::collections::hash_map::RandomState::new().hash_one(Instant::now()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_pod_names_follow_index_and_attempt_not_the_order_pods_are_made_in() {
        let names = PodNames::new("job-test", Some(7));
        let none = |_: &str| false;
        // Index 1's second pod has its name whether index 0's second pod
        // was made before it or after: the order exits happen in.
        let one_first = [names.name(Some(1), 1, none), names.name(Some(0), 1, none)];
        let zero_first = [names.name(Some(0), 1, none), names.name(Some(1), 1, none)];
        assert_eq!(one_first[0], zero_first[1]);
        assert_eq!(one_first[1], zero_first[0]);
        // Every input counts: index, attempt, seed, Job.
        let all: std::collections::BTreeSet<String> = [
            names.name(Some(0), 0, none),
            names.name(Some(0), 1, none),
            names.name(Some(1), 0, none),
            names.name(None, 0, none),
            names.name(None, 1, none),
            PodNames::new("job-test", Some(8)).name(Some(0), 0, none),
            PodNames::new("other", Some(7)).name(Some(0), 0, none),
        ]
        .into();
        assert_eq!(all.len(), 7, "{all:?}");
        let name = names.name(None, 0, none);
        assert!(name.starts_with("job-test-") && name.len() == "job-test-".len() + 5, "{name}");
        assert!(name["job-test-".len()..].bytes().all(|b| ALPHABET.contains(&b)), "{name}");
        // A name this run already has is drawn again, from the same inputs.
        let taken = name.clone();
        let again = names.name(None, 0, |n| n == taken);
        assert_ne!(again, name);
        assert_eq!(again, names.name(None, 0, |n| n == taken));
    }

    #[test]
    fn unseeded_pod_names_are_random_and_containers_carry_the_run() {
        let names = PodNames::new("job-test", None);
        let drawn: std::collections::BTreeSet<String> = (0..20).map(|_| names.name(None, 0, |_| false)).collect();
        assert!(drawn.len() > 1, "{drawn:?}");
        // Two runs of the same seed have the same pod names, and so need
        // the run in the container's name.
        assert_ne!(container_name("r1aaa", "job-test-x7k2p"), container_name("r2bbb", "job-test-x7k2p"));
        assert_eq!(container_name("r1aaa", "job-test-x7k2p"), "job-test-local_r1aaa_job-test-x7k2p");
    }
}
