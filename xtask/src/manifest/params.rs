//! From flags to checked parameters. Every rule the API server or the Job
//! controller would enforce is checked here first, so that a bad value is
//! refused before anything is written or applied, with the flag, the value
//! and the rule in the message. All errors are reported at once.

use std::ffi::OsString;
use std::time::Duration;

use job_worker::config::{self as worker_config, Config as WorkerConfig, Setting, Source};

use crate::Error;
use crate::flags::{JobFlags, RbacFlags};
use crate::image_ref::ImageRef;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    Never,
    OnFailure,
}

impl RestartPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            RestartPolicy::Never => "Never",
            RestartPolicy::OnFailure => "OnFailure",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompletionMode {
    NonIndexed,
    Indexed,
}

impl CompletionMode {
    pub fn as_str(self) -> &'static str {
        match self {
            CompletionMode::NonIndexed => "NonIndexed",
            CompletionMode::Indexed => "Indexed",
        }
    }
}

/// The checked Job parameters.
#[derive(Debug, Clone)]
pub struct JobParams {
    pub name: String,
    pub namespace: String,
    pub image: ImageRef,
    pub completions: i32,
    pub parallelism: i32,
    /// None when only the per-index limit applies.
    pub backoff_limit: Option<i32>,
    pub active_deadline_seconds: i64,
    pub ttl_seconds_after_finished: i32,
    pub restart_policy: RestartPolicy,
    pub completion_mode: CompletionMode,
    pub backoff_limit_per_index: Option<i32>,
    pub max_failed_indexes: Option<i32>,
    pub suspend: bool,
    pub image_pull_secret: Option<String>,
    pub cpu: String,
    pub memory: String,
    /// Whether a NetworkPolicy fences the Job's pods in (`--no-network-policy` leaves it out).
    pub network_policy: bool,
    /// The worker's environment, as the container gets it.
    pub env: Vec<(&'static str, String)>,
    /// The worker's configuration, as the worker itself parses `env`.
    pub worker: WorkerConfig,
}

impl JobParams {
    pub fn indexed(&self) -> bool {
        self.completion_mode == CompletionMode::Indexed
    }

    /// Whether the pod gets an emptyDir at STATE_DIR, where the worker
    /// counts its attempts across container restarts.
    pub fn mounts_state_dir(&self) -> bool {
        self.worker.state_dir.value.is_some()
    }

    /// Whether the worker is given JOB_INDEX_FAILURE_COUNT (only FAIL_ATTEMPTS
    /// needs it: under restartPolicy Never a retry is a new pod, with a new
    /// name and so a new draw anyway).
    pub fn passes_index_failure_count(&self) -> bool {
        self.worker.fail_attempts.value > 0 && self.indexed()
    }
}

/// The checked authorization parameters.
#[derive(Debug, Clone)]
pub struct RbacParams {
    pub namespace: String,
    pub service_account: String,
    pub token_secret: String,
    pub role: String,
    pub role_binding: String,
    pub cluster_wide: bool,
    pub pod_verbs: Vec<String>,
}

/// Where the worker counts attempts, an emptyDir mounted in the pod.
pub const STATE_DIR: &str = "/state";

/// The verbs listing pods needs.
pub const LISTING_VERBS: [&str; 3] = ["get", "list", "watch"];
const KNOWN_VERBS: [&str; 9] = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", "*"];

/// Collects every error and warning of one validation.
#[derive(Default)]
struct Findings {
    errors: Vec<String>,
    warnings: Vec<String>,
}

impl Findings {
    fn error(&mut self, flag: &str, value: impl std::fmt::Display, rule: impl std::fmt::Display) {
        self.errors.push(format!("{flag} {value}: {rule}"));
    }
    fn finish(self) -> Result<Vec<String>, Error> {
        if self.errors.is_empty() {
            Ok(self.warnings)
        } else {
            let n = self.errors.len();
            Err(Error::usage(format!(
                "{} invalid setting{}, nothing was rendered:\n  {}",
                n,
                if n == 1 { "" } else { "s" },
                self.errors.join("\n  ")
            )))
        }
    }
}

/// The image a rendering names when no `--image` is given: a valid
/// reference, so the manifests validate, in a registry that is obviously
/// not the reader's (example.com is reserved for examples), so that nobody
/// mistakes it for something a cluster can pull. The local name
/// ([`crate::image::default_reference`]) would look pullable and resolve to
/// Docker Hub.
pub fn placeholder_image() -> ImageRef {
    format!("registry.example.com/your-namespace/job-test:{}", env!("CARGO_PKG_VERSION"))
        .parse()
        .expect("the placeholder is a valid reference")
}

/// The warning for an image not pinned by digest, the placeholder included.
/// Apart from [`job_params`] because only the commands that take the
/// reference from the user (`render`, `apply`) call it: `release` pins the
/// image itself, and `odds` runs nothing.
pub fn unpinned_image_warning(f: &JobFlags, p: &JobParams) -> Option<String> {
    if p.image.digest.is_some() {
        return None;
    }
    Some(match &f.image {
        Some(_) => format!(
            "--image {} is not pinned by digest: a node pulls whatever the tag points to then; `cargo xtask push` \
             prints a pinned reference",
            p.image
        ),
        None => format!(
            "no --image: the Job names the placeholder {}, which is not pinned by digest and which no cluster can \
             pull; pass --image with the pinned reference `cargo xtask push` prints (or use `cargo xtask release`)",
            p.image
        ),
    })
}

impl JobParams {
    /// Names `image`, the reference a push returned pinned by digest, in
    /// place of the tag the parameters were checked with.
    pub fn pin(&mut self, image: ImageRef) {
        debug_assert!(image.digest.is_some(), "pin takes a digest-pinned reference");
        self.image = image;
    }
}

/// Checks the Job flags; returns the parameters and the warnings.
pub fn job_params(f: &JobFlags) -> Result<(JobParams, Vec<String>), Error> {
    let mut v = Findings::default();

    dns_label(&mut v, "--name", &f.name);
    dns_label(&mut v, "--namespace", &f.namespace);
    let image = Some(f.image.clone().unwrap_or_else(placeholder_image));

    let restart_policy = match f.restart_policy.as_str() {
        "Never" => Some(RestartPolicy::Never),
        "OnFailure" => Some(RestartPolicy::OnFailure),
        "Always" => {
            v.error("--restart-policy", "Always", "a Job's pods must end: Kubernetes accepts only Never or OnFailure for a Job (Always is for Deployments)");
            None
        }
        other => {
            v.error("--restart-policy", other, "expected Never or OnFailure");
            None
        }
    };
    let completion_mode = match f.completion_mode.as_str() {
        "NonIndexed" => Some(CompletionMode::NonIndexed),
        "Indexed" => Some(CompletionMode::Indexed),
        other => {
            v.error("--completion-mode", other, "expected NonIndexed or Indexed");
            None
        }
    };
    let indexed = completion_mode == Some(CompletionMode::Indexed);

    let completions = int32(&mut v, "--completions", f.completions, 1, "at least 1 successful pod must be asked for");
    let parallelism = if f.parallelism == 0 && f.suspend {
        Some(0)
    } else if f.parallelism == 0 {
        v.error(
            "--parallelism",
            0,
            "0 runs no pod at all; to create the Job paused, pass --suspend (with or without --parallelism 0)",
        );
        None
    } else {
        int32(&mut v, "--parallelism", f.parallelism, 1, "at least 1 pod must run at a time")
    };
    let backoff_limit = match (f.backoff_limit, f.backoff_limit_per_index) {
        (Some(n), _) => {
            int32(&mut v, "--backoff-limit", n, 0, "cannot be negative (0 means the first failure fails the Job)")
        }
        // With a per-index limit the global one is left unset, as Kubernetes does.
        (None, Some(_)) => None,
        (None, None) => Some(3),
    };
    if f.active_deadline_seconds < 1 {
        v.error(
            "--active-deadline-seconds",
            f.active_deadline_seconds,
            "must be at least 1 (Kubernetes refuses 0 and negative deadlines)",
        );
    }
    let ttl = int32(
        &mut v,
        "--ttl-seconds-after-finished",
        f.ttl_seconds_after_finished,
        0,
        "cannot be negative (0 deletes the Job as soon as it finishes)",
    );

    let mut backoff_limit_per_index = None;
    if let Some(n) = f.backoff_limit_per_index {
        if !indexed {
            v.error(
                "--backoff-limit-per-index",
                n,
                "needs --completion-mode Indexed (per-index limits exist only for Indexed Jobs)",
            );
        } else if restart_policy == Some(RestartPolicy::OnFailure) {
            v.error(
                "--backoff-limit-per-index",
                n,
                "needs --restart-policy Never (Kubernetes counts per-index failures by failed pods)",
            );
        }
        backoff_limit_per_index = int32(&mut v, "--backoff-limit-per-index", n, 0, "cannot be negative");
        if completions.is_some_and(|c| c > 100_000) {
            v.error(
                "--completions",
                f.completions,
                "at most 100000 with --backoff-limit-per-index (a Kubernetes limit)",
            );
        }
    }
    let mut max_failed_indexes = None;
    if let Some(n) = f.max_failed_indexes {
        if !indexed {
            v.error("--max-failed-indexes", n, "needs --completion-mode Indexed");
        } else if f.backoff_limit_per_index.is_none() {
            v.error(
                "--max-failed-indexes",
                n,
                "needs --backoff-limit-per-index (Kubernetes only counts failed indexes with a per-index limit)",
            );
        }
        max_failed_indexes = int32(&mut v, "--max-failed-indexes", n, 0, "cannot be negative");
        if let (Some(m), Some(c)) = (max_failed_indexes, completions)
            && m > c
        {
            v.error("--max-failed-indexes", n, format!("cannot be more than --completions ({c})"));
        }
    }
    if let Some(secret) = &f.image_pull_secret {
        dns_subdomain(&mut v, "--image-pull-secret", secret);
    }
    quantity(&mut v, "--cpu", &f.cpu, &["m", ""]);
    quantity(&mut v, "--memory", &f.memory, &["", "k", "M", "G", "T", "Ki", "Mi", "Gi", "Ti"]);

    // The worker's own settings, checked by the worker's own parser: what is
    // accepted here is exactly what the container will accept.
    let mut env: Vec<(&'static str, String)> = vec![
        (worker_config::FAIL_PROBABILITY.env, f.fail_probability.clone()),
        (worker_config::FAILURE_MODE.env, f.failure_mode.clone()),
        (worker_config::FAIL_EXIT_CODE.env, f.fail_exit_code.clone()),
        (worker_config::WORK_DURATION.env, f.work_duration.clone()),
    ];
    if let Some(seed) = &f.seed {
        env.push((worker_config::SEED.env, seed.clone()));
    }
    if let Some(list) = &f.fail_indexes {
        if !indexed {
            v.error(
                "--fail-indexes",
                list,
                "needs --completion-mode Indexed (only Indexed Jobs give pods a completion index)",
            );
        }
        env.push((worker_config::FAIL_INDEXES.env, list.clone()));
    }
    let fail_attempts = f.fail_attempts.trim() != "0";
    if fail_attempts {
        env.push((worker_config::FAIL_ATTEMPTS.env, f.fail_attempts.clone()));
    }
    // Attempts are counted where they change what the worker does: for
    // FAIL_ATTEMPTS, and for a seeded draw under OnFailure, where a restarted
    // container keeps its pod name and would otherwise draw the same forever.
    let counts_attempts = fail_attempts || (f.seed.is_some() && restart_policy == Some(RestartPolicy::OnFailure));
    let worker = match worker_config::parse(Vec::<OsString>::new(), |name| {
        env.iter().find(|(k, _)| *k == name).map(|(_, value)| value.into())
    }) {
        Ok(worker_config::Command::Run(config)) => {
            let mut config = *config;
            if counts_attempts {
                // Not parsed: the worker checks that the directory exists,
                // and it exists only in the pod.
                config.state_dir =
                    Setting { value: Some(STATE_DIR.into()), source: Source::Env(worker_config::STATE_DIR.env) };
                env.push((worker_config::STATE_DIR.env, STATE_DIR.into()));
            }
            Some(config)
        }
        Ok(_) => None,
        Err(errors) => {
            // Every refused worker setting, named by its render flag.
            for e in &errors.errors {
                let flag = worker_config::SPECS.iter().find(|s| s.env == e.name).map_or(e.name.as_str(), |s| s.flag);
                v.error(flag, &e.value, format!("expected {}", e.accepted));
            }
            None
        }
    };

    let (
        Some(image),
        Some(restart_policy),
        Some(completion_mode),
        Some(completions),
        Some(parallelism),
        Some(ttl),
        Some(worker),
    ) = (image, restart_policy, completion_mode, completions, parallelism, ttl, worker)
    else {
        return Err(v.finish().expect_err("a missing value has an error"));
    };
    if v.errors.is_empty() {
        job_warnings(&mut v, f, restart_policy, completion_mode, completions, parallelism, &worker);
    }
    let warnings = v.finish()?;
    Ok((
        JobParams {
            name: f.name.clone(),
            namespace: f.namespace.clone(),
            image,
            completions,
            parallelism,
            backoff_limit,
            active_deadline_seconds: f.active_deadline_seconds,
            ttl_seconds_after_finished: ttl,
            restart_policy,
            completion_mode,
            backoff_limit_per_index,
            max_failed_indexes,
            suspend: f.suspend,
            image_pull_secret: f.image_pull_secret.clone(),
            cpu: f.cpu.clone(),
            memory: f.memory.clone(),
            network_policy: !f.no_network_policy,
            env,
            worker,
        },
        warnings,
    ))
}

/// Legal but questionable settings.
#[allow(clippy::too_many_arguments)]
fn job_warnings(
    v: &mut Findings,
    f: &JobFlags,
    restart_policy: RestartPolicy,
    completion_mode: CompletionMode,
    completions: i32,
    parallelism: i32,
    worker: &WorkerConfig,
) {
    let w = &mut v.warnings;
    if parallelism > completions {
        w.push(format!(
            "--parallelism {parallelism} is more than --completions {completions}: at most {completions} pods run at once"
        ));
    }
    let work = worker.work_duration.value;
    if work >= Duration::from_secs(f.active_deadline_seconds.max(0) as u64) {
        w.push(format!(
            "--active-deadline-seconds {} is not longer than --work-duration {}: the deadline ends the Job before any pod finishes its work",
            f.active_deadline_seconds, f.work_duration
        ));
    }
    let p = worker.fail_probability.value;
    let counted = restart_policy == RestartPolicy::OnFailure || f.backoff_limit_per_index.is_some();
    if worker.fail_attempts.value > 0 && !counted {
        w.push(format!(
            "--fail-attempts {}: with restartPolicy Never every retry is a new pod with a new emptyDir and, without \
             --backoff-limit-per-index, no JOB_INDEX_FAILURE_COUNT, so every pod is attempt 0 and fails; use \
             --restart-policy OnFailure or an Indexed Job with --backoff-limit-per-index",
            worker.fail_attempts.value
        ));
    }
    if p > 0.0 || worker.fail_attempts.value > 0 || worker.fail_indexes.value.is_some() {
        match worker.failure_mode.value {
            worker_config::FailureMode::Hang => w.push(format!(
                "--failure-mode hang: a failing pod never ends on its own, so the Job ends DeadlineExceeded after {} s unless no pod fails",
                f.active_deadline_seconds
            )),
            worker_config::FailureMode::Oom => w.push(format!(
                "--failure-mode oom: a failing pod allocates until its memory limit ({}) and is OOMKilled (exit code 137)",
                f.memory
            )),
            _ => {}
        }
    }
    if completion_mode == CompletionMode::Indexed
        && worker.fail_indexes.value.is_some()
        && f.backoff_limit_per_index.is_none()
    {
        w.push("--fail-indexes without --backoff-limit-per-index: a failing index is retried until the global --backoff-limit fails the whole Job".into());
    }
}

/// Whether a rendering warns about an image not pinned by digest: `render`
/// and `apply` take the reference from the user; `release` pins it itself,
/// and `config` only checks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum UnpinnedImage {
    Warn,
    Quiet,
}

/// Checks the flags of a whole rendering, the Job's and its RBAC's, and
/// returns both parameters with every warning (the Job's, the unpinned
/// image's, the RBAC's, in that order). With `create_pull_secret` the Job
/// names the Secret that will be created (`pull_secret::name_it`). What
/// `render`, `apply` and `release` share.
pub fn rendering(
    job: &JobFlags,
    rbac: &RbacFlags,
    create_pull_secret: bool,
    unpinned: UnpinnedImage,
) -> Result<(JobParams, RbacParams, Vec<String>), Error> {
    let mut job_flags = job.clone();
    if create_pull_secret {
        super::pull_secret::name_it(&mut job_flags);
    }
    let (job, mut warnings) = job_params(&job_flags)?;
    if unpinned == UnpinnedImage::Warn {
        warnings.extend(unpinned_image_warning(&job_flags, &job));
    }
    let (rbac, more) = rbac_params(rbac, &job.namespace)?;
    warnings.extend(more);
    Ok((job, rbac, warnings))
}

/// Checks the authorization flags; returns the parameters and the warnings.
pub fn rbac_params(f: &RbacFlags, namespace: &str) -> Result<(RbacParams, Vec<String>), Error> {
    let mut v = Findings::default();
    dns_subdomain(&mut v, "--service-account", &f.service_account);
    dns_subdomain(&mut v, "--token-secret", &f.token_secret);
    dns_subdomain(&mut v, "--role", &f.role);
    dns_subdomain(&mut v, "--role-binding", &f.role_binding);
    let verbs: Vec<String> = f.pod_verbs.iter().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect();
    if verbs.is_empty() {
        v.error("--pod-verbs", "\"\"", "name at least one verb; listing pods needs get,list,watch");
    }
    for verb in &verbs {
        if !KNOWN_VERBS.contains(&verb.as_str()) {
            v.error("--pod-verbs", verb, format!("not a Kubernetes verb; expected some of {}", KNOWN_VERBS.join(",")));
        }
    }
    let extra: Vec<&str> = verbs.iter().map(String::as_str).filter(|v| !LISTING_VERBS.contains(v)).collect();
    if !extra.is_empty() {
        v.warnings.push(format!(
            "--pod-verbs grants {} on pods{}: more than listing pods needs (get,list,watch)",
            extra.join(","),
            if f.cluster_wide { " in every namespace" } else { "" }
        ));
    }
    let missing: Vec<&str> =
        LISTING_VERBS.iter().copied().filter(|l| !verbs.iter().any(|v| v == l || v == "*")).collect();
    if !missing.is_empty() && !verbs.is_empty() {
        v.warnings.push(format!("--pod-verbs lacks {}: `cargo xtask pods` needs get,list,watch", missing.join(",")));
    }
    let mut unique = Vec::new();
    for verb in verbs {
        if !unique.contains(&verb) {
            unique.push(verb);
        }
    }
    let warnings = v.finish()?;
    Ok((
        RbacParams {
            namespace: namespace.to_owned(),
            service_account: f.service_account.clone(),
            token_secret: f.token_secret.clone(),
            role: f.role.clone(),
            role_binding: f.role_binding.clone(),
            cluster_wide: f.cluster_wide,
            pod_verbs: unique,
        },
        warnings,
    ))
}

fn int32(v: &mut Findings, flag: &str, n: i64, min: i64, rule: &str) -> Option<i32> {
    if n < min {
        v.error(flag, n, rule);
        return None;
    }
    match i32::try_from(n) {
        Ok(n) => Some(n),
        Err(_) => {
            v.error(flag, n, format!("at most {} (a Kubernetes int32)", i32::MAX));
            None
        }
    }
}

/// RFC 1123 label: what Kubernetes requires of Job and Namespace names
/// (a Job's name becomes a label value, so at most 63 characters).
fn dns_label(v: &mut Findings, flag: &str, s: &str) {
    if let Err(why) = check_dns_label(s) {
        v.error(flag, format!("{s:?}"), format!("not a DNS-1123 label: {why}"));
    }
}

pub fn check_dns_label(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 63 {
        return Err("1 to 63 characters".into());
    }
    if !s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return Err("only lowercase letters, digits and '-'".into());
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err("must start and end with a letter or digit".into());
    }
    Ok(())
}

/// RFC 1123 subdomain: what Kubernetes requires of most object names.
fn dns_subdomain(v: &mut Findings, flag: &str, s: &str) {
    let ok = !s.is_empty() && s.len() <= 253 && s.split('.').all(|label| check_dns_label(label).is_ok());
    if !ok {
        v.error(
            flag,
            format!("{s:?}"),
            "not a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253",
        );
    }
}

/// A resource quantity (a decimal number and one of the allowed suffixes).
fn quantity(v: &mut Findings, flag: &str, s: &str, suffixes: &[&str]) {
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    let number_ok = !number.is_empty() && number.parse::<f64>().is_ok_and(|n| n > 0.0) && !number.ends_with('.');
    if !number_ok || !suffixes.contains(&suffix) {
        v.error(
            flag,
            format!("{s:?}"),
            format!(
                "not a positive quantity: a number with one of the suffixes {}",
                suffixes.iter().map(|x| if x.is_empty() { "(none)" } else { x }).collect::<Vec<_>>().join(", ")
            ),
        );
    }
}
