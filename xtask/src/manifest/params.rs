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

/// One rule of spec.successPolicy (`--success-policy`): the listed indexes
/// (the API's format, `0,2-3`, checked), how many of them (or of all) must
/// succeed, or both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuccessRule {
    pub indexes: Option<String>,
    pub count: Option<i32>,
}

/// What a pod failure rule does (`PodFailurePolicyRule.action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureAction {
    FailJob,
    Ignore,
    Count,
    FailIndex,
}

impl FailureAction {
    pub const ALL: [FailureAction; 4] =
        [FailureAction::FailJob, FailureAction::Ignore, FailureAction::Count, FailureAction::FailIndex];

    pub fn as_str(self) -> &'static str {
        match self {
            FailureAction::FailJob => "FailJob",
            FailureAction::Ignore => "Ignore",
            FailureAction::Count => "Count",
            FailureAction::FailIndex => "FailIndex",
        }
    }
}

/// What a pod failure rule matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureMatch {
    /// onExitCodes: `In` (or `NotIn` when `not_in`) the values, ascending
    /// and unique as the API requires, of the named container or of any.
    ExitCodes { container: Option<String>, not_in: bool, values: Vec<i32> },
    /// onPodConditions: (type, status) patterns.
    Conditions(Vec<(String, String)>),
}

/// One rule of spec.podFailurePolicy (`--pod-failure-rule`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureRule {
    pub action: FailureAction,
    pub on: FailureMatch,
}

/// spec.podReplacementPolicy (`--pod-replacement-policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodReplacementPolicy {
    TerminatingOrFailed,
    Failed,
}

impl PodReplacementPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            PodReplacementPolicy::TerminatingOrFailed => "TerminatingOrFailed",
            PodReplacementPolicy::Failed => "Failed",
        }
    }
}

/// The built-in Job controller's name for spec.managedBy: the default, so
/// never written.
pub const JOB_CONTROLLER: &str = "kubernetes.io/job-controller";

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
    /// spec.successPolicy's rules (Indexed only); empty: none written.
    pub success_rules: Vec<SuccessRule>,
    /// The user's pod failure rules, written before job-test's own
    /// (`objects::default_pod_failure_policy`); restartPolicy Never only.
    pub pod_failure_rules: Vec<FailureRule>,
    pub pod_replacement_policy: Option<PodReplacementPolicy>,
    /// spec.managedBy; None for the built-in controller.
    pub managed_by: Option<String>,
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
    let success_rules = success_policy(&mut v, &f.success_policy, indexed, completions);
    let pod_failure_rules =
        pod_failure_rules(&mut v, &f.pod_failure_rule, restart_policy, f.backoff_limit_per_index.is_some());
    let pod_replacement_policy = f.pod_replacement_policy.as_deref().and_then(|p| match p {
        "Failed" => Some(PodReplacementPolicy::Failed),
        "TerminatingOrFailed" => {
            if restart_policy == Some(RestartPolicy::Never) {
                // Written with restartPolicy Never: the API server allows only Failed then.
                v.error(
                    "--pod-replacement-policy",
                    p,
                    "Kubernetes allows only Failed when a Job has a podFailurePolicy, and job-test writes one \
                     whenever restartPolicy is Never (exit code 2 fails the Job, disruptions are ignored); pass \
                     --pod-replacement-policy Failed (the default with a podFailurePolicy), or --restart-policy \
                     OnFailure",
                );
                None
            } else {
                Some(PodReplacementPolicy::TerminatingOrFailed)
            }
        }
        other => {
            v.error("--pod-replacement-policy", other, "expected TerminatingOrFailed or Failed");
            None
        }
    });
    let managed_by = f.managed_by.as_deref().and_then(|m| match check_managed_by(m) {
        Err(why) => {
            v.error("--managed-by", format!("{m:?}"), why);
            None
        }
        Ok(()) if m == JOB_CONTROLLER => {
            v.warnings.push(format!(
                "--managed-by {JOB_CONTROLLER} is the built-in Job controller, the default: spec.managedBy is left out"
            ));
            None
        }
        Ok(()) => Some(m.to_owned()),
    });
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
            success_rules,
            pod_failure_rules,
            pod_replacement_policy,
            managed_by,
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

/// The pull secret's name when `--image-pull-secret` names none.
pub fn default_pull_secret_name(job: &str) -> String {
    format!("{job}-pull-secret")
}

/// Legal but questionable settings.
#[allow(clippy::too_many_arguments)]
/// A ttlSecondsAfterFinished too short for the failed-Job alert most
/// clusters run: KubeJobFailed holds for 15 minutes on a Job that exists,
/// and ttlSecondsAfterFinished deletes it (and so the series the alert reads).
pub fn ttl_warning(ttl: i64) -> Option<String> {
    use crate::alerts::rules::{PROMETHEUS_INTERVAL, failed_job_hold, needed_lifetime};
    let hold = failed_job_hold();
    // At Prometheus' default intervals, as `alerts` assumes by default.
    let needed = needed_lifetime(hold, 2 * PROMETHEUS_INTERVAL);
    (ttl >= 0 && (ttl as u64) < needed.as_secs()).then(|| {
        format!(
            "--ttl-seconds-after-finished {ttl}: a failed Job is deleted {} after it fails, before KubeJobFailed \
             (kubernetes-mixin, `for: {}`) can fire: it needs the Job for {} plus a scrape and an evaluation ({} at \
             Prometheus' default 1m); use {} or more (the default is 3600), and `cargo xtask alerts` to check",
            humantime::format_duration(Duration::from_secs(ttl as u64)),
            humantime::format_duration(hold),
            humantime::format_duration(hold),
            humantime::format_duration(needed),
            needed.as_secs(),
        )
    })
}

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
    w.extend(ttl_warning(f.ttl_seconds_after_finished));
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
/// names the Secret that will be created (`default_pull_secret_name`). What
/// `render`, `apply` and `release` share.
pub fn rendering(
    job: &JobFlags,
    rbac: &RbacFlags,
    create_pull_secret: bool,
    unpinned: UnpinnedImage,
) -> Result<(JobParams, RbacParams, Vec<String>), Error> {
    let mut job_flags = job.clone();
    if create_pull_secret {
        // The Secret is created under --image-pull-secret when given.
        job_flags.image_pull_secret.get_or_insert_with(|| default_pull_secret_name(&job_flags.name));
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

/// Splits `KEY=VALUE,KEY=VALUE` where a value may itself hold commas (an
/// index list `0,2-3`, exit codes `1,3-5`): a comma-separated token that
/// does not begin with a key (lower-case letters, then `=` or `!=`)
/// continues the previous key's value. Returns (key, operator, value), the
/// operator `=` or `!=`; Err names the token no key comes before.
fn key_values(text: &str) -> Result<Vec<(String, &'static str, String)>, String> {
    let mut out: Vec<(String, &'static str, String)> = Vec::new();
    for token in text.split(',') {
        let token = token.trim();
        let key = token.find('=').map(|i| (&token[..i], &token[i + 1..])).and_then(|(k, value)| {
            let (k, op) = match k.strip_suffix('!') {
                Some(k) => (k, "!="),
                None => (k, "="),
            };
            (!k.is_empty() && k.bytes().all(|b| b.is_ascii_lowercase())).then(|| (k.to_owned(), op, value.to_owned()))
        });
        match (key, out.last_mut()) {
            (Some(kv), _) => out.push(kv),
            (None, Some(last)) => {
                last.2.push(',');
                last.2.push_str(token);
            }
            (None, None) => return Err(format!("{token:?} comes before any KEY=")),
        }
    }
    Ok(out)
}

/// An index list in the API's format (`1,3-5,7`), as the API server checks
/// it: ascending, not overlapping, each range `X-Y` with X < Y, every
/// index below `completions`. Returns how many indexes it lists.
pub fn check_index_list(text: &str, completions: i32) -> Result<i64, String> {
    if text.trim().is_empty() {
        return Err("lists no index".into());
    }
    let mut last: Option<i64> = None;
    let mut total = 0i64;
    for part in text.split(',') {
        let bounds: Vec<&str> = part.split('-').collect();
        if bounds.len() > 2 {
            return Err(format!("{part:?}: a range is FIRST-LAST"));
        }
        let mut numbers = Vec::new();
        for b in &bounds {
            let n: i64 = b.trim().parse().map_err(|_| format!("{part:?} is not an index or a range FIRST-LAST"))?;
            if n >= i64::from(completions) {
                return Err(format!("index {n} is not below --completions {completions}"));
            }
            if let Some(prev) = last
                && prev >= n
            {
                return Err(format!("indexes must be ascending and not overlap ({prev} then {n})"));
            }
            last = Some(n);
            numbers.push(n);
        }
        total += match numbers[..] {
            [a, b] => b - a + 1,
            _ => 1,
        };
    }
    Ok(total)
}

/// The most rules a successPolicy and a podFailurePolicy may have (the API's limit).
pub const MAX_RULES: usize = 20;
/// How many rules job-test's own podFailurePolicy adds after the user's
/// (`objects::default_pod_failure_policy`, whose test keeps the two equal).
pub const OWN_RULES: usize = 2;
/// The name of the worker container (podFailurePolicy rules name it).
pub const CONTAINER: &str = "worker";

fn success_policy(v: &mut Findings, rules: &[String], indexed: bool, completions: Option<i32>) -> Vec<SuccessRule> {
    const FLAG: &str = "--success-policy";
    let rules: Vec<&str> = rules.iter().map(|r| r.trim()).filter(|r| !r.is_empty()).collect();
    if rules.is_empty() {
        return Vec::new();
    }
    if !indexed {
        v.error(
            FLAG,
            format!("{:?}", rules[0]),
            "needs --completion-mode Indexed (a success policy names completion indexes; the API server refuses it \
             for NonIndexed Jobs)",
        );
    }
    if rules.len() > MAX_RULES {
        v.error(
            FLAG,
            format!("(given {} times)", rules.len()),
            format!("at most {MAX_RULES} rules (a Kubernetes limit)"),
        );
    }
    let mut checked = Vec::new();
    for text in rules {
        let shown = format!("{text:?}");
        let fix = "expected indexes=LIST (such as 0,2-3) and/or count=N, such as 'indexes=0,count=1'";
        let pairs = match key_values(text) {
            Ok(p) => p,
            Err(why) => {
                v.error(FLAG, &shown, format!("{why}; {fix}"));
                continue;
            }
        };
        let mut rule = SuccessRule { indexes: None, count: None };
        let mut listed = None;
        let mut ok = true;
        for (key, op, value) in pairs {
            match (key.as_str(), op) {
                ("indexes", "=") if rule.indexes.is_none() => {
                    match completions.map(|c| check_index_list(&value, c)) {
                        Some(Ok(n)) => listed = Some(n),
                        Some(Err(why)) => {
                            v.error(FLAG, &shown, format!("indexes={value}: {why}"));
                            ok = false;
                        }
                        None => ok = false,
                    }
                    rule.indexes = Some(value);
                }
                ("count", "=") if rule.count.is_none() => match value.trim().parse::<i32>() {
                    Ok(n) if n >= 1 => rule.count = Some(n),
                    _ => {
                        v.error(FLAG, &shown, format!("count={value}: expected a whole number of at least 1"));
                        ok = false;
                    }
                },
                ("indexes" | "count", "=") => {
                    v.error(FLAG, &shown, format!("{key} is given twice; {fix}"));
                    ok = false;
                }
                _ => {
                    v.error(FLAG, &shown, format!("unknown key {key}{op}; {fix}"));
                    ok = false;
                }
            }
        }
        if !ok {
            continue;
        }
        if rule.indexes.is_none() && rule.count.is_none() {
            v.error(FLAG, &shown, format!("names neither indexes nor count; {fix}"));
            continue;
        }
        if let (Some(count), Some(n)) = (rule.count, listed)
            && i64::from(count) > n
        {
            v.error(
                FLAG,
                &shown,
                format!("count={count} is more than the {n} index(es) listed, so the rule could never be met"),
            );
            continue;
        }
        if let (Some(count), Some(c)) = (rule.count, completions)
            && count > c
        {
            v.error(
                FLAG,
                &shown,
                format!("count={count} is more than --completions {c}, so the rule could never be met"),
            );
            continue;
        }
        checked.push(rule);
    }
    checked
}

/// The most exit codes one rule may list (the API's limit).
pub const MAX_EXIT_CODES: usize = 255;

fn pod_failure_rules(
    v: &mut Findings,
    rules: &[String],
    restart_policy: Option<RestartPolicy>,
    per_index_limit: bool,
) -> Vec<FailureRule> {
    const FLAG: &str = "--pod-failure-rule";
    let rules: Vec<&str> = rules.iter().map(|r| r.trim()).filter(|r| !r.is_empty()).collect();
    if rules.is_empty() {
        return Vec::new();
    }
    if restart_policy == Some(RestartPolicy::OnFailure) {
        v.error(
            FLAG,
            format!("{:?}", rules[0]),
            "needs --restart-policy Never (Kubernetes allows a podFailurePolicy only then: under OnFailure a failed \
             container restarts in its pod, which never fails)",
        );
    }
    // job-test's own two rules follow the user's, and the API counts them all.
    let room = MAX_RULES - OWN_RULES;
    if rules.len() > room {
        v.error(
            FLAG,
            format!("(given {} times)", rules.len()),
            format!("at most {room}: Kubernetes allows {MAX_RULES} rules and job-test adds its own 2"),
        );
    }
    let mut checked = Vec::new();
    for text in rules {
        let shown = format!("{text:?}");
        match failure_rule(text, per_index_limit) {
            Ok(rule) => checked.push(rule),
            Err(why) => v.error(FLAG, &shown, why),
        }
    }
    checked
}

/// One `--pod-failure-rule`: `ACTION:exit=CODES[,container=NAME]`,
/// `ACTION:exit!=CODES[,container=NAME]` or
/// `ACTION:condition=TYPE[=STATUS][,TYPE[=STATUS]...]`, checked as the API
/// server checks a PodFailurePolicyRule.
pub fn failure_rule(text: &str, per_index_limit: bool) -> Result<FailureRule, String> {
    let syntax = "expected ACTION:exit=1,3-5 (In), ACTION:exit!=0,42 (NotIn), optionally ,container=worker, or \
                  ACTION:condition=DisruptionTarget[=True|False|Unknown]";
    let Some((action, rest)) = text.split_once(':') else {
        return Err(format!("no ACTION: before the match; {syntax}"));
    };
    let action = FailureAction::ALL
        .into_iter()
        .find(|a| a.as_str() == action.trim())
        .ok_or_else(|| format!("unknown action {:?}: expected FailJob, Ignore, Count or FailIndex", action.trim()))?;
    if action == FailureAction::FailIndex && !per_index_limit {
        return Err("FailIndex needs --backoff-limit-per-index (Kubernetes marks an index failed only in a Job with \
                    per-index limits); add --backoff-limit-per-index N, or use FailJob"
            .into());
    }
    let pairs = key_values(rest).map_err(|why| format!("{why}; {syntax}"))?;
    let mut exit: Option<(bool, String)> = None;
    let mut container = None;
    let mut conditions = None;
    for (key, op, value) in pairs {
        match (key.as_str(), op) {
            ("exit", _) if exit.is_none() => exit = Some((op == "!=", value)),
            ("container", "=") if container.is_none() => container = Some(value.trim().to_owned()),
            ("condition", "=") if conditions.is_none() => conditions = Some(value),
            ("exit" | "container" | "condition", "=") => return Err(format!("{key} is given twice; {syntax}")),
            _ => return Err(format!("unknown key {key}{op}; {syntax}")),
        }
    }
    let on = match (exit, conditions) {
        (Some(_), Some(_)) => {
            return Err("a rule matches exit codes or pod conditions, not both (Kubernetes allows one of them); \
                        give two rules"
                .into());
        }
        (None, None) => return Err(format!("matches nothing; {syntax}")),
        (None, Some(_)) if container.is_some() => {
            return Err(
                "container= goes with exit= or exit!= only (conditions are the pod's, not a container's)".into()
            );
        }
        (Some((not_in, codes)), None) => {
            if let Some(name) = &container
                && name != CONTAINER
            {
                return Err(format!(
                    "container={name}: the pod has one container, {}; name it or leave container= out",
                    CONTAINER
                ));
            }
            let values = exit_codes(&codes)?;
            if !not_in && values.contains(&0) {
                return Err(format!(
                    "exit={codes}: exit code 0 is success, which no rule sees (Kubernetes refuses 0 with In); \
                     to match every failure write {}:exit!=0",
                    action.as_str()
                ));
            }
            FailureMatch::ExitCodes { container, not_in, values }
        }
        (None, Some(list)) => {
            let mut patterns: Vec<(String, String)> = Vec::new();
            for item in list.split(',') {
                let (kind, status) = match item.trim().split_once('=') {
                    Some((k, s)) => (k.trim(), s.trim()),
                    None => (item.trim(), "True"),
                };
                if kind.is_empty()
                    || kind.len() > 316
                    || !kind.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b))
                {
                    return Err(format!(
                        "condition={list}: {kind:?} is not a condition type (such as DisruptionTarget)"
                    ));
                }
                if !["True", "False", "Unknown"].contains(&status) {
                    return Err(format!("condition={list}: status {status:?}: expected True, False or Unknown"));
                }
                if patterns.iter().any(|(k, s)| k == kind && s == status) {
                    return Err(format!("condition={list}: {kind}={status} is listed twice"));
                }
                patterns.push((kind.to_owned(), status.to_owned()));
            }
            if patterns.len() > MAX_RULES {
                return Err(format!("condition={list}: at most {MAX_RULES} patterns (a Kubernetes limit)"));
            }
            FailureMatch::Conditions(patterns)
        }
    };
    Ok(FailureRule { action, on })
}

/// Exit codes `1,3-5,42`: each 0 to 255 (what a Linux container exits
/// with), unique, at most 255 of them; returned ascending, as the API wants.
fn exit_codes(text: &str) -> Result<Vec<i32>, String> {
    let mut values: Vec<i32> = Vec::new();
    for part in text.split(',') {
        let bad = || format!("exit={text}: {part:?} is not an exit code (0 to 255) or a range FIRST-LAST");
        let (first, last) = match part.trim().split_once('-') {
            Some((a, b)) => (a.trim().parse::<i32>().map_err(|_| bad())?, b.trim().parse::<i32>().map_err(|_| bad())?),
            None => {
                let n = part.trim().parse::<i32>().map_err(|_| bad())?;
                (n, n)
            }
        };
        if !(0..=255).contains(&first) || !(0..=255).contains(&last) || first > last {
            return Err(bad());
        }
        for code in first..=last {
            if values.contains(&code) {
                return Err(format!("exit={text}: {code} is listed twice (Kubernetes wants each value once)"));
            }
            values.push(code);
        }
    }
    if values.len() > MAX_EXIT_CODES {
        return Err(format!("exit={text}: {} values, at most {MAX_EXIT_CODES} (a Kubernetes limit)", values.len()));
    }
    values.sort_unstable();
    Ok(values)
}

/// spec.managedBy as the API server checks it: a domain-prefixed path
/// (`DOMAIN/PATH`, the domain a DNS-1123 subdomain), at most 63 characters.
pub fn check_managed_by(m: &str) -> Result<(), String> {
    let fix = "expected a domain-prefixed path such as kueue.x-k8s.io/multikueue";
    if m.len() > 63 {
        return Err(format!("{} characters, at most 63 (a Kubernetes limit); {fix}", m.len()));
    }
    let Some((domain, path)) = m.split_once('/').filter(|(d, p)| !d.is_empty() && !p.is_empty()) else {
        return Err(format!("not DOMAIN/PATH; {fix}"));
    };
    if domain.len() > 253 || !domain.split('.').all(|label| check_dns_label(label).is_ok()) {
        return Err(format!("{domain:?} is not a DNS-1123 subdomain (lowercase letters, digits, '-' and '.'); {fix}"));
    }
    if !path.bytes().all(|b| b.is_ascii_alphanumeric() || b"/-._~%!$&'()*+,;=:".contains(&b)) {
        return Err(format!("the path {path:?} holds a character a URL path may not; {fix}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_with_commas_continue_the_previous_key() {
        let kv = key_values("indexes=0,2-3,count=1").unwrap();
        assert_eq!(kv, [("indexes".into(), "=", "0,2-3".into()), ("count".into(), "=", "1".into())]);
        let kv = key_values("exit!=0,42,container=worker").unwrap();
        assert_eq!(kv, [("exit".into(), "!=", "0,42".into()), ("container".into(), "=", "worker".into())]);
        // A condition's status is part of its value (the key is lower-case only).
        let kv = key_values("condition=DisruptionTarget=False,ConfigIssue").unwrap();
        assert_eq!(kv, [("condition".into(), "=", "DisruptionTarget=False,ConfigIssue".into())]);
        assert!(key_values("0,count=1").unwrap_err().contains("\"0\" comes before any KEY="));
    }

    #[test]
    fn index_lists_are_checked_as_the_api_server_does() {
        assert_eq!(check_index_list("0,2-3", 5), Ok(3));
        assert_eq!(check_index_list("4", 5), Ok(1));
        assert!(check_index_list("5", 5).unwrap_err().contains("not below --completions 5"));
        assert!(check_index_list("3,1", 5).unwrap_err().contains("ascending"));
        assert!(check_index_list("1-3,3", 5).unwrap_err().contains("ascending"));
        assert!(check_index_list("3-3", 5).unwrap_err().contains("ascending"));
        assert!(check_index_list("1-2-3", 5).unwrap_err().contains("FIRST-LAST"));
        assert!(check_index_list("a", 5).is_err() && check_index_list("", 5).is_err());
    }

    fn success(rules: &[&str], indexed: bool, completions: i32) -> Result<Vec<SuccessRule>, Vec<String>> {
        let mut v = Findings::default();
        let rules: Vec<String> = rules.iter().map(|r| r.to_string()).collect();
        let checked = success_policy(&mut v, &rules, indexed, Some(completions));
        if v.errors.is_empty() { Ok(checked) } else { Err(v.errors) }
    }

    #[test]
    fn success_rules_parse_and_every_bad_one_is_named() {
        assert_eq!(
            success(&["indexes=0,count=1", "count=3", "indexes=1-2"], true, 5).unwrap(),
            [
                SuccessRule { indexes: Some("0".into()), count: Some(1) },
                SuccessRule { indexes: None, count: Some(3) },
                SuccessRule { indexes: Some("1-2".into()), count: None },
            ]
        );
        let errors =
            success(&["indexes=0,2,count=3", "count=6", "count=0", "size=1", "indexes=9"], true, 5).unwrap_err();
        assert_eq!(errors.len(), 5, "{errors:?}");
        assert!(errors[0].starts_with("--success-policy \"indexes=0,2,count=3\": count=3 is more than the 2"));
        assert!(errors[1].contains("count=6 is more than --completions 5"));
        assert!(errors[2].contains("count=0: expected a whole number of at least 1"));
        assert!(errors[3].contains("unknown key size="));
        assert!(errors[4].contains("index 9 is not below --completions 5"));
        let errors = success(&["count=1"], false, 5).unwrap_err();
        assert!(errors[0].contains("needs --completion-mode Indexed"), "{errors:?}");
        let many: Vec<String> = (0..21).map(|_| "count=1".to_owned()).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(success(&many, true, 5).unwrap_err()[0].contains("at most 20 rules"));
    }

    #[test]
    fn failure_rules_parse_in_every_form() {
        let exit = |container: Option<&str>, not_in, values: &[i32]| FailureMatch::ExitCodes {
            container: container.map(Into::into),
            not_in,
            values: values.to_vec(),
        };
        assert_eq!(
            failure_rule("FailJob:exit=42", false),
            Ok(FailureRule { action: FailureAction::FailJob, on: exit(None, false, &[42]) })
        );
        assert_eq!(
            failure_rule("Ignore:exit=7,3-5,container=worker", false).unwrap().on,
            exit(Some("worker"), false, &[3, 4, 5, 7])
        );
        assert_eq!(failure_rule("Count:exit!=0,42", false).unwrap().on, exit(None, true, &[0, 42]));
        assert_eq!(
            failure_rule("Ignore:condition=DisruptionTarget", false).unwrap().on,
            FailureMatch::Conditions(vec![("DisruptionTarget".into(), "True".into())])
        );
        assert_eq!(
            failure_rule("Count:condition=DisruptionTarget=False,ConfigIssue", false).unwrap().on,
            FailureMatch::Conditions(vec![
                ("DisruptionTarget".into(), "False".into()),
                ("ConfigIssue".into(), "True".into())
            ])
        );
        assert_eq!(failure_rule("FailIndex:exit=42", true).unwrap().action, FailureAction::FailIndex);
    }

    #[test]
    fn failure_rules_are_refused_as_the_api_server_refuses_them() {
        let refused = |text: &str, why: &str| {
            let err = failure_rule(text, false).unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
        };
        refused("FailJob:exit=0", "Kubernetes refuses 0 with In");
        refused("FailJob:exit=5,0-3", "Kubernetes refuses 0 with In");
        refused("FailJob:exit=1,1", "1 is listed twice");
        refused("FailJob:exit=3-5,4", "4 is listed twice");
        refused("FailJob:exit=256", "not an exit code");
        refused("FailJob:exit=5-3", "not an exit code");
        refused("FailIndex:exit=42", "FailIndex needs --backoff-limit-per-index");
        refused("Fail:exit=42", "unknown action \"Fail\"");
        refused("exit=42", "no ACTION:");
        refused("FailJob:exit=1,condition=DisruptionTarget", "not both");
        refused("FailJob:container=worker", "matches nothing");
        refused("FailJob:exit=1,container=sidecar", "the pod has one container, worker");
        refused("Ignore:condition=DisruptionTarget,container=worker", "container= goes with exit=");
        refused("Ignore:condition=DisruptionTarget=Maybe", "expected True, False or Unknown");
        refused("Ignore:reason=Evicted", "unknown key reason=");
        let mut v = Findings::default();
        pod_failure_rules(&mut v, &["FailJob:exit=1".into()], Some(RestartPolicy::OnFailure), false);
        assert!(v.errors[0].contains("needs --restart-policy Never"), "{:?}", v.errors);
        let mut v = Findings::default();
        pod_failure_rules(&mut v, &vec!["FailJob:exit=1".to_owned(); 19], Some(RestartPolicy::Never), false);
        assert!(v.errors[0].contains("at most 18"), "{:?}", v.errors);
        let all: Vec<String> = (1..=255).map(|c| c.to_string()).collect();
        assert!(failure_rule(&format!("Count:exit!=0,{}", all.join(",")), false).unwrap_err().contains("at most 255"));
        assert!(failure_rule("Count:exit=1-255", false).is_ok());
    }

    #[test]
    fn managed_by_is_a_domain_prefixed_path() {
        assert_eq!(check_managed_by("kueue.x-k8s.io/multikueue"), Ok(()));
        assert_eq!(check_managed_by(JOB_CONTROLLER), Ok(()));
        assert!(check_managed_by("kueue").unwrap_err().contains("not DOMAIN/PATH"));
        assert!(check_managed_by("/x").unwrap_err().contains("not DOMAIN/PATH"));
        assert!(check_managed_by("Kueue.io/x").unwrap_err().contains("not a DNS-1123 subdomain"));
        assert!(check_managed_by("kueue.io/a b").unwrap_err().contains("may not"));
        let long = format!("example.com/{}", "x".repeat(52));
        assert!(check_managed_by(&long).unwrap_err().contains("64 characters, at most 63"));
    }
}
