//! Every flag of every subcommand, declared in one place with a doc line
//! each: `--help` is made from these, and the README's command table and
//! the docs pages' synopses follow them. Only declarations: the values
//! they take are leaves (`choices`, `kube_version`, `image_ref`), and
//! `args` turns a group into the plain options the domain takes.
//!
//! Headings: a flattened group (`JobFlags`, `RbacFlags`, ...) sets
//! `next_help_heading`, and clap keeps that heading for every flag declared
//! after it, so a command's own flags come before its groups (a unit test
//! checks that every flag under a group's heading belongs to that group).
//!
//! Namespaces: every command that acts on job-test's own objects (`render`,
//! `odds`, `apply`, `watch`, `logs`, `delete`, `auth`, `release`) defaults to
//! `job-test`, whatever the kubeconfig context names, so that `apply` and
//! then `watch` with no flags meet the same Job; `-n` changes it everywhere.
//! `pods` is the tutorial's check of a credential, and lists what
//! `kubectl get pods` would: the context's namespace, else `default` (the
//! kubeconfig `auth` writes names the service account's namespace).
//!
//! Switches that are settings (a `bool` in a group `ConfigFlags` flattens)
//! take `=false` as well as nothing (`--suspend`, `--suspend=false`), so
//! that a flag can turn off what the settings file or JOB_TEST_<FLAG>
//! turned on; a unit test in `config` checks each one.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand};

use crate::choices::{Builder, DryRun, FuzzTarget, Output, Platform, Target, UploadMode};
use crate::image_ref::ImageRef;
use crate::kube_version::KubeVersion;

/// The environment variable naming the settings file, as `--config` does.
pub const CONFIG_ENV: &str = "JOB_TEST_CONFIG";

/// job-test's release pipeline: build the flaky worker, package it, ship it,
/// run it as a Kubernetes Job and report what the retries did.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", version, max_term_width = 100)]
#[command(
    after_help = "Settings: every flag under the Job, Worker, Authorization, Cluster, Registry and Image headings \
can also be set as JOB_TEST_<FLAG> (JOB_TEST_NAMESPACE=demo) or in the settings file (job-test.toml in the \
project root, or --config FILE): a flag wins over the environment, the environment over the file, the file over \
the default; a switch takes =false to turn off what they turned on (--suspend=false). `cargo xtask config` shows \
each value and where it came from."
)]
pub struct Xtask {
    /// How to print results: text for people, json for scripts (one object on stdout).
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Settings file (TOML; default: job-test.toml in the project root, when it exists). Read before the flags.
    #[arg(long, global = true, value_name = "FILE", env = CONFIG_ENV, hide_env_values = true)]
    pub config: Option<PathBuf>,
    /// Show more on stderr: the image builder's own lines (each `docker build` step) and the like.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build the static job-worker binary and print its path, size and sha256.
    #[command(after_help = "Examples:
  cargo xtask build
  cargo xtask build --target x86_64-unknown-linux-gnu    # static with crt-static where musl is missing
  cargo xtask build --target aarch64-unknown-linux-musl  # for arm64 nodes, linked by rust-lld
  cargo xtask --output json build")]
    Build(BuildFlags),
    /// Install or check what the tests need, then run the whole test suite.
    #[command(after_help = "Examples:
  cargo xtask test
  cargo xtask test --no-install -- odds                  # only check the prerequisites; tests named *odds*")]
    Test(TestFlags),
    /// Measure the worker's size, start-up time and SIGTERM latency against baselines.
    #[command(after_help = "Examples:
  cargo xtask bench
  cargo xtask bench --runs 100 --pipeline-runs 0 --save target/bench.json")]
    Bench(BenchFlags),
    /// Fuzz the parsers of outside input (libFuzzer) on their checked-in corpus.
    #[command(after_help = "Examples:
  cargo xtask fuzz job_file                              # five minutes on one target
  cargo xtask fuzz --time 30s                            # every target, 30 seconds each")]
    Fuzz(FuzzFlags),
    /// Build the worker and its image (Docker Engine or daemonless OCI); print reference, digest, size.
    #[command(after_help = "Examples:
  cargo xtask image                                      # docker when the daemon answers, else oci
  cargo xtask image --builder oci --load                 # daemonless and reproducible, then into the daemon
  cargo xtask image --builder oci --platform linux/arm64 # one platform only")]
    Image(ImageFlags),
    /// Build the image if anything changed, then push it to a registry with oci-client.
    #[command(after_help = "Examples:
  cargo xtask push                                       # to a local registry on 127.0.0.1:5000
  cargo xtask push --image crpi-xxxx.cn-shenzhen.personal.cr.aliyuncs.com/NAMESPACE/job-test:1.0.0 \\
      --username you@example.com --password-stdin < acr-password.txt")]
    Push(PushFlags),
    /// Render the Namespace, RBAC, NetworkPolicy and Job manifests from typed Kubernetes objects.
    #[command(after_help = "Examples:
  cargo xtask render --image REPO/job-test:0.1.0@sha256:... > job-test.yaml
  cargo xtask render --completion-mode Indexed --backoff-limit-per-index 1 --fail-indexes 0,1:42
  cargo xtask render --completion-mode Indexed --backoff-limit-per-index 1 --fail-indexes 1:42 \\
      --pod-failure-rule FailIndex:exit=42 --success-policy 'indexes=0,count=1'
  cargo xtask render --kube-version 1.20 --out job-test.yaml
  cargo xtask render --write                             # refresh manifests/ (the golden files)")]
    Render(RenderFlags),
    /// Tell what the retry settings will do with this failure probability, before anything runs.
    #[command(after_help = "Examples:
  cargo xtask odds
  cargo xtask odds --fail-probability 0.5 --backoff-limit 6
  cargo xtask odds --restart-policy OnFailure --parallelism 1 --seed 7
  cargo xtask odds --target 99.9%                        # the smallest limits and deadline that reach it
  cargo xtask odds -f job.yaml                           # a Job you wrote
  cargo xtask odds --name job-test -n job-test           # a running Job, from where it stands")]
    #[command(mut_args(hide_for_odds))]
    Odds(OddsFlags),
    /// Apply the manifests (a fresh rendering, or -f files) with server-side apply.
    #[command(after_help = "Examples:
  cargo xtask apply --image REPO/job-test:0.1.0@sha256:...
  cargo xtask apply --dry-run --image REPO/job-test:0.1.0@sha256:...   # what would change; nothing stored
  cargo xtask apply -f target/release/job-test.yaml
  cargo xtask apply --image REPO/job-test:0.1.0@sha256:... --create-pull-secret   # a private registry
  cargo xtask apply --context prod --image REPO/job-test:0.1.0@sha256:... -n retry-demo")]
    Apply(ApplyFlags),
    /// Follow the Job and its pods to the end and report what the retries did.
    #[command(after_help = "Examples:
  cargo xtask watch --timeout 15m
  cargo xtask watch --name retry-demo -n demo")]
    Watch(WatchFlags),
    /// Print the logs of every pod of the Job, failed and restarted ones included; -f follows them.
    #[command(after_help = "Examples:
  cargo xtask logs
  cargo xtask logs -f                                    # every pod as it appears, until the Job ends
  cargo xtask logs --name retry-demo -n demo")]
    Logs(LogsFlags),
    /// Delete the Job and its pods (or, with --local, the containers `run-local --keep` kept).
    #[command(after_help = "Examples:
  cargo xtask delete
  cargo xtask delete --name retry-demo -n demo --kubeconfig ~/.kube/prod
  cargo xtask delete --local                             # every container run-local --keep kept")]
    Delete(DeleteFlags),
    /// List pods with whatever credentials are given (as the tutorial's Java client does).
    #[command(after_help = "Examples:
  cargo xtask pods --kubeconfig target/job-test-pod-reader.kubeconfig
  cargo xtask pods --server https://10.0.0.1:6443 --token-file token --ca-cert ca.crt -n job-test")]
    Pods(PodsFlags),
    /// Apply the service account and its RBAC, wait for its token, write a kubeconfig for it.
    #[command(
        name = "auth",
        after_help = "Examples:
  cargo xtask auth                                       # writes target/job-test-pod-reader.kubeconfig
  cargo xtask auth --cluster-wide --service-account java-admin --token-secret java-access-secret \\
      --role pod-updater --role-binding simu-auth-binding"
    )]
    ServiceAccount(ServiceAccountFlags),
    /// Run the Job on the local Docker engine, no cluster needed: the Job controller's rules, the same table and report.
    #[command(after_help = "Examples:
  cargo xtask run-local --fail-probability 0.5 --time-scale 0.01   # the image `cargo xtask image` built
  cargo xtask run-local -f target/release/job-test.yaml --keep        # the Job a release rendered
  cargo xtask run-local --kube-version 1.20 --time-scale 0.01         # by the rules of a 1.20 Job controller
  cargo xtask run-local --fail-probability 0 --work-duration 5s --evict 2s   # evict a pod 2 s in")]
    RunLocal(RunLocalFlags),
    /// Check that a cluster's Job controller (or the local engine's) gives each scenario its documented outcome.
    #[command(after_help = "Examples:
  cargo xtask conformance --image REPO/job-test:0.1.0@sha256:...   # on the kubeconfig's cluster
  cargo xtask conformance --local --time-scale 0.01              # the local engine, as the newest version
  cargo xtask conformance --local --kube-version 1.20 --only deadline
  cargo xtask conformance --clean                                # namespaces a crashed run left")]
    Conformance(ConformanceFlags),
    /// Evict a running pod of the Job through the Eviction API (as kubectl drain does); say whether it counted.
    #[command(after_help = "Examples:
  cargo xtask evict                                      # the oldest running pod of job-test in job-test
  cargo xtask evict --name retry-demo -n demo --pod retry-demo-x7k2p
  cargo xtask --output json evict --timeout 5m")]
    Evict(EvictFlags),
    /// Will my alerts fire for this Job? Replay its timeline through Prometheus' rule engine (promtool).
    #[command(after_help = "Examples:
  cargo xtask alerts                                     # typical runs of the default Job, the mixin's alerts
  cargo xtask alerts --fail-probability 1 --ttl-seconds-after-finished 600
  cargo xtask run-local --save-report run.json; cargo xtask alerts --report run.json
  cargo xtask alerts --name job-test -n job-test         # the Job on the cluster, after `release`
  cargo xtask alerts --rules my-alerts.yaml --evaluation-interval 30s --scrape-interval 30s")]
    Alerts(AlertsFlags),
    /// Everything: build, image, push, render with the pinned image, apply and watch (or run locally), report.
    #[command(after_help = "Examples:
  cargo xtask release                                    # local registry; kubeconfig as kubectl, else the local engine
  cargo xtask release --local --time-scale 0.01          # run the Job locally, back-offs a hundred times shorter
  cargo xtask release --dry-run=server                   # build, push nothing, what the apply would change
  cargo xtask release --image crpi-xxxx.cn-shenzhen.personal.cr.aliyuncs.com/NAMESPACE/job-test:1.0.0 \\
      --username you@example.com --password-stdin --create-pull-secret --timeout 15m < acr-password.txt")]
    Release(ReleaseFlags),
    /// Draw a saved run (--save-report, or --output json) again as one self-contained HTML page.
    #[command(after_help = "Examples:
  cargo xtask report --html run.html --from run.json     # run.json from `run-local --save-report run.json`
  cargo xtask --output json release > release.json; cargo xtask report --html run.html --from release.json")]
    Report(ReportFlags),
    /// Print the effective settings and where each came from: a flag, the environment, the settings file, the default.
    #[command(after_help = "Examples:
  cargo xtask config                                     # job-test.toml in the project root, if there
  cargo xtask config --config ~/acr.toml --output json
  JOB_TEST_NAMESPACE=demo cargo xtask config --context prod")]
    Config(ConfigFlags),
    /// Print a shell completion script for `xtask`, a shell function that runs `cargo xtask` (see docs/settings.md).
    #[command(after_help = "Examples:
  cargo xtask completions bash > ~/.local/share/bash-completion/completions/xtask
  cargo xtask completions zsh > ~/.zfunc/_xtask
  cargo xtask completions fish > ~/.config/fish/completions/xtask.fish")]
    Completions(CompletionsFlags),
}

/// The Job flags `odds` takes but hides: they change what is rendered, not
/// what the retries do (the chance, pods, wall time). `--name` stays: a
/// seeded draw depends on the pod names.
pub const ODDS_IGNORES: [&str; 10] = [
    "namespace",
    "image",
    "ttl_seconds_after_finished",
    "image_pull_secret",
    "cpu",
    "memory",
    "no_network_policy",
    "pod_replacement_policy",
    "managed_by",
    "fail_exit_code",
];

fn hide_for_odds(arg: clap::Arg) -> clap::Arg {
    let hide = ODDS_IGNORES.contains(&arg.get_id().as_str());
    arg.hide(hide)
}

#[derive(Debug, Clone, Args)]
pub struct BuildFlags {
    /// Target triple. The musl targets give the smallest static binaries; the
    /// gnu target is built with crt-static where musl cannot be installed.
    #[arg(long, value_enum, default_value_t = Target::Musl)]
    pub target: Target,
}

#[derive(Debug, Clone, Args)]
pub struct TestFlags {
    /// Only check the prerequisites; install nothing (fails when one is missing).
    #[arg(long)]
    pub no_install: bool,
    /// Arguments passed to `cargo test` after `--` (a test name filter, say).
    #[arg(last = true)]
    pub cargo_test_args: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct FuzzFlags {
    /// The target to fuzz; every target, one after the other, when left out.
    #[arg(value_enum)]
    pub target: Option<FuzzTarget>,
    /// How long to fuzz each target. New inputs that reach new code join fuzz/corpus/TARGET/.
    #[arg(long, value_parser = duration, default_value = "5m")]
    pub time: Duration,
}

#[derive(Debug, Clone, Args)]
pub struct BenchFlags {
    /// Runs of each program, interleaved so that both see the same machine.
    #[arg(long, default_value_t = 300)]
    pub runs: u32,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub save: Option<PathBuf>,
    /// Runs of each build-and-push pipeline (xtask image + push against docker build + docker push, and no-op
    /// pushes by both builders); 0 skips it.
    #[arg(long, default_value_t = 5)]
    pub pipeline_runs: u32,
    /// Runs of a local Job (run-local: 5 completions, parallelism 2, p 0.2, time scale 0.01) against as many
    /// `docker run`s of the same image one after the other; 0 skips it.
    #[arg(long, default_value_t = 3)]
    pub local_runs: u32,
    /// Runs of `odds --target 99.9%` for a million completions against a plain `odds` of the same Job; 0 skips it.
    #[arg(long, default_value_t = 3)]
    pub odds_runs: u32,
    /// Also time the first build: `cargo build -p xtask` from an empty target directory against the worker's
    /// release build from another (some minutes on 2 cores); cargo's --timings page is kept in target/bench/.
    #[arg(long)]
    pub first_build: bool,
    /// A local Job of 500 completions at parallelism 20: its wall time against its floor and its peak memory
    /// against a one-pod Job's (three minutes on 2 cores); --load=false skips it.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value_t = true, value_name = "BOOL", hide_possible_values = true)]
    pub load: bool,
}

#[derive(Debug, Clone, Args)]
pub struct RenderFlags {
    /// Write the YAML to this file instead of stdout.
    #[arg(long, value_name = "FILE", conflicts_with = "write")]
    pub out: Option<PathBuf>,
    /// Refresh manifests/job-deploy.yaml and manifests/authorization.yaml (the golden files).
    #[arg(long, conflicts_with = "create_pull_secret")]
    pub write: bool,
    /// Render for this Kubernetes version (e.g. 1.20): what it cannot take is left out or refused, as `apply` does
    /// after asking the cluster (default: the newest the schema covers).
    #[arg(long, value_name = "X.Y", value_parser = parse_kube_version)]
    pub kube_version: Option<KubeVersion>,
    #[command(flatten)]
    pub pull_secret: PullSecretFlags,
    #[command(flatten)]
    pub job: JobFlags,
    #[command(flatten)]
    pub rbac: RbacFlags,
}

/// A duration as people write it (humantime: 90s, 10m, 1h 30m); clap
/// names the flag and the value, this says what would do.
fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| format!("{e}: give a duration such as 30s, 10m or 1h 30m"))
}

fn parse_kube_version(s: &str) -> Result<KubeVersion, String> {
    s.parse()
}

#[derive(Debug, Clone, Args)]
pub struct OddsFlags {
    /// Read the Job from this manifest file (its spec and the worker's environment) instead of the Job flags;
    /// what odds cannot model (podFailurePolicy, successPolicy) is refused with the field named.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Answer the other way round: the smallest --backoff-limit (or --backoff-limit-per-index, with
    /// --max-failed-indexes) that completes with at least this chance, e.g. 99.9%, and the
    /// --active-deadline-seconds that covers that share of the runs' wall time; printed as flags.
    #[arg(long, value_name = "CHANCE")]
    pub target: Option<String>,
    /// Also draw the odds as one self-contained HTML page: the chance to complete by limit around the one given,
    /// and the simulated pods and wall time with the deadline.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Simulated Jobs at most, for the time and deadline estimates; fewer when the work budget of 1,000,000
    /// container runs runs out (the output says how many ran).
    #[arg(long, default_value_t = 20_000, value_name = "N")]
    pub trials: u32,
    /// Seed of the simulation, so that the same flags give the same numbers.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub trial_seed: u64,
    /// Assumed time from a pod's creation to its container starting (scheduling, image present).
    #[arg(long, default_value = "2s", value_name = "DURATION", allow_hyphen_values = true, value_parser = duration)]
    pub pod_startup: Duration,
    /// With --name (on the command line): the Job on this cluster, during or after its run; the failure
    /// probability estimated from its pods and the chance it still completes.
    #[command(flatten)]
    pub cluster: ClusterFlags,
    /// Every render flag is taken, so that the same line can be asked; those that do not change the odds are
    /// hidden from `odds --help` (see `ODDS_IGNORES`).
    #[command(flatten)]
    pub job: JobFlags,
}

/// The Job and what its worker is told. Numbers are read as signed so that
/// a negative value gets the rule it breaks, not a parse error.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Job")]
pub struct JobFlags {
    /// Job name (a DNS-1123 label, at most 63 characters).
    #[arg(long, default_value = "job-test")]
    pub name: String,
    /// Namespace of every object (a Namespace object is rendered too); job-test whatever the kubeconfig context names.
    #[arg(short = 'n', long, default_value = "job-test")]
    pub namespace: String,
    /// Image reference; `repo:tag@sha256:...` pins what runs (`cargo xtask push` prints it).
    /// Default: the placeholder registry.example.com/your-namespace/job-test:<crate version>, with a warning;
    /// for run-local, 127.0.0.1:5000/job-test:<version>, what `push` and `release` make by default.
    #[arg(long, value_name = "REF")]
    pub image: Option<ImageRef>,
    /// Successful pods needed (spec.completions).
    #[arg(long, default_value_t = 5, allow_negative_numbers = true)]
    pub completions: i64,
    /// Pods running at once (spec.parallelism); 0 only with --suspend.
    #[arg(long, default_value_t = 2, allow_negative_numbers = true)]
    pub parallelism: i64,
    /// Failures allowed before the Job fails (spec.backoffLimit). Default 3, or unset with --backoff-limit-per-index.
    #[arg(long, allow_negative_numbers = true, value_name = "N")]
    pub backoff_limit: Option<i64>,
    /// Deadline of the whole Job in seconds (spec.activeDeadlineSeconds).
    #[arg(long, default_value_t = 600, allow_negative_numbers = true)]
    pub active_deadline_seconds: i64,
    /// Seconds before a finished Job and its pods are deleted (spec.ttlSecondsAfterFinished). The default hour
    /// lets a failed Job's alert (KubeJobFailed, 15m) fire; below 1020 a warning says it cannot.
    #[arg(long, default_value_t = 3600, allow_negative_numbers = true)]
    pub ttl_seconds_after_finished: i64,
    /// Never (a failure means a new pod) or OnFailure (the container restarts in its pod).
    #[arg(long, default_value = "Never")]
    pub restart_policy: String,
    /// NonIndexed, or Indexed (each pod gets JOB_COMPLETION_INDEX).
    #[arg(long, default_value = "NonIndexed")]
    pub completion_mode: String,
    /// Failures allowed per index (Indexed, restartPolicy Never).
    #[arg(long, allow_negative_numbers = true, value_name = "N")]
    pub backoff_limit_per_index: Option<i64>,
    /// Failed indexes tolerated before the Job fails early (needs --backoff-limit-per-index).
    #[arg(long, allow_negative_numbers = true, value_name = "N")]
    pub max_failed_indexes: Option<i64>,
    /// Create the Job suspended (spec.suspend); allows --parallelism 0.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value_t = false, value_name = "BOOL", hide_possible_values = true)]
    pub suspend: bool,
    /// Image pull secret for a private registry (a docker-registry Secret in the namespace; --create-pull-secret
    /// creates it).
    #[arg(long, value_name = "NAME")]
    pub image_pull_secret: Option<String>,
    /// CPU request and limit of the worker container.
    #[arg(long, default_value = "50m", allow_hyphen_values = true)]
    pub cpu: String,
    /// Memory request and limit of the worker container (what oom mode runs into).
    #[arg(long, default_value = "32Mi", allow_hyphen_values = true)]
    pub memory: String,
    /// Leave out the NetworkPolicy that denies the Job's pods all traffic in and out (the worker needs none).
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value_t = false, value_name = "BOOL", hide_possible_values = true)]
    pub no_network_policy: bool,
    /// Success rule of an Indexed Job (spec.successPolicy; repeatable, at most 20, `;` also separates):
    /// indexes=0,2-3 and/or count=N; the Job completes once any rule is met.
    #[arg(long, value_name = "RULE", value_delimiter = ';')]
    pub success_policy: Vec<String>,
    /// Pod failure rule (spec.podFailurePolicy; repeatable, `;` also separates): ACTION:exit=1,3-5 (In),
    /// ACTION:exit!=0,42 (NotIn), optional ,container=worker, or ACTION:condition=TYPE[=True|False|Unknown];
    /// ACTION is FailJob, Ignore, Count or FailIndex. Placed before job-test's own rules (exit 2 FailJob,
    /// DisruptionTarget Ignore): the first rule that matches wins. restartPolicy Never only.
    #[arg(long, value_name = "RULE", value_delimiter = ';')]
    pub pod_failure_rule: Vec<String>,
    /// When a failed pod is replaced (spec.podReplacementPolicy): TerminatingOrFailed or Failed (the only one a
    /// podFailurePolicy allows, so with restartPolicy Never).
    #[arg(long, value_name = "POLICY")]
    pub pod_replacement_policy: Option<String>,
    /// Hand the Job to another controller (spec.managedBy), e.g. kueue.x-k8s.io/multikueue: a domain-prefixed
    /// path, at most 63 characters; the built-in Job controller then leaves it alone.
    #[arg(long, value_name = "NAME")]
    pub managed_by: Option<String>,

    /// Worker: chance in [0, 1] that a run fails (FAIL_PROBABILITY).
    #[arg(long, default_value = "0.2", allow_negative_numbers = true, help_heading = "Worker")]
    pub fail_probability: String,
    /// Worker: how a run fails (FAILURE_MODE).
    #[arg(long, default_value = "exit", help_heading = "Worker",
          long_help = format!("Worker: how a run fails: {} (FAILURE_MODE).", job_worker::config::FAILURE_MODE.accepted))]
    pub failure_mode: String,
    /// Worker: simulated work before deciding, e.g. 500ms or 2s (WORK_DURATION).
    #[arg(long, default_value = "0s", allow_hyphen_values = true, help_heading = "Worker")]
    pub work_duration: String,
    /// Worker: exit code of a simulated failure, 1..=255 but not 2 (FAIL_EXIT_CODE).
    #[arg(long, default_value = "1", allow_negative_numbers = true, help_heading = "Worker")]
    pub fail_exit_code: String,
    /// Worker: seed making each pod's decision reproducible (WORKER_SEED).
    #[arg(long, allow_negative_numbers = true, help_heading = "Worker")]
    pub seed: Option<String>,
    /// Worker: completion indexes that always fail: odd, even or 0,3-5,7:42 (FAIL_INDEXES; Indexed only).
    #[arg(long, help_heading = "Worker")]
    pub fail_indexes: Option<String>,
    /// Worker: the first N attempts fail (FAIL_ATTEMPTS; adds an emptyDir for STATE_DIR).
    #[arg(long, default_value = "0", allow_negative_numbers = true, help_heading = "Worker")]
    pub fail_attempts: String,
}

/// The service account that lists pods, and what it may do.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Authorization")]
pub struct RbacFlags {
    /// ServiceAccount name (the tutorial's: java-admin).
    #[arg(long, default_value = "job-test-pod-reader")]
    pub service_account: String,
    /// Name of its kubernetes.io/service-account-token Secret (the tutorial's: java-access-secret).
    #[arg(long, default_value = "job-test-pod-reader-token")]
    pub token_secret: String,
    /// Role or ClusterRole name (the tutorial's: pod-updater).
    #[arg(long, default_value = "job-test-pod-reader")]
    pub role: String,
    /// RoleBinding or ClusterRoleBinding name (the tutorial's: simu-auth-binding).
    #[arg(long, default_value = "job-test-pod-reader")]
    pub role_binding: String,
    /// Grant across the cluster (ClusterRole + ClusterRoleBinding) instead of in the namespace.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value_t = false, value_name = "BOOL", hide_possible_values = true)]
    pub cluster_wide: bool,
    /// Verbs on pods, comma-separated; listing pods needs get,list,watch (pods/log get is always granted).
    #[arg(long, default_value = "get,list,watch", value_delimiter = ',')]
    pub pod_verbs: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ImageFlags {
    /// Image reference, e.g. crpi-xxxx.cn-shenzhen.personal.cr.aliyuncs.com/NAMESPACE/job-test:1.0.0.
    /// Default: 127.0.0.1:5000/job-test:<version>, the pipeline's one default image (JOB_TEST_LOCAL_REGISTRY
    /// moves it), in a local registry `push` starts on demand.
    #[arg(long, value_name = "REF")]
    pub image: Option<ImageRef>,
    #[command(flatten)]
    pub build: BuilderFlags,
}

/// How the image is built.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Image")]
pub struct BuilderFlags {
    /// docker (the Docker Engine API, through bollard) or oci (daemonless). Default: docker when the daemon answers, else oci.
    #[arg(long, value_enum)]
    pub builder: Option<Builder>,
    /// Load the daemonless image into the local Docker daemon too.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value_t = false, value_name = "BOOL", hide_possible_values = true)]
    pub load: bool,
    /// Directory of the OCI image layout that is built (and pushed from).
    #[arg(long, value_name = "DIR")]
    pub layout: Option<PathBuf>,
    /// Platforms of the image, comma-separated: one manifest each, under one index when several.
    /// Default: linux/amd64,linux/arm64 for oci; the docker builder builds only its daemon's platform.
    #[arg(long, value_enum, value_delimiter = ',', value_name = "OS/ARCH")]
    pub platform: Vec<Platform>,
    /// Attach an SBOM of the worker (SPDX 2.3: the crates linked in, with their licences), pushed with the image
    /// as an OCI 1.1 artifact; --sbom=false for a registry that refuses artifacts.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value_t = true, value_name = "BOOL", hide_possible_values = true)]
    pub sbom: bool,
}

#[derive(Debug, Clone, Args)]
pub struct PushFlags {
    #[command(flatten)]
    pub image: ImageFlags,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

/// How to reach the registry.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Registry")]
pub struct RegistryFlags {
    /// Registry user name; the password is read from standard input (needs --password-stdin).
    #[arg(long, requires = "password_stdin")]
    pub username: Option<String>,
    /// Read the registry password from standard input (needs --username).
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
    /// PEM file with the CA certificate that signed the registry's certificate.
    #[arg(long, value_name = "FILE")]
    pub registry_ca_cert: Option<PathBuf>,
    /// Allow plain HTTP and unverified TLS for a registry that is not on this machine (warns).
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value_t = false, value_name = "BOOL", hide_possible_values = true)]
    pub insecure_registry: bool,
    /// monolithic: one PUT per blob (works everywhere, GCP Artifact Registry needs it); chunked: PATCH per chunk.
    #[arg(long, value_enum, default_value_t = UploadMode::Monolithic)]
    pub upload_mode: UploadMode,
    /// Tries per request before a transient failure (reset, 5xx, 429) is given up.
    #[arg(long, default_value_t = 6, value_name = "N")]
    pub attempts: u32,
}

/// How to reach the cluster. Default: kubeconfig, as kubectl.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Cluster")]
pub struct ClusterFlags {
    /// kubeconfig file (default: KUBECONFIG, then ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// kubeconfig context (default: its current context).
    #[arg(long)]
    pub context: Option<String>,
    /// API server URL, e.g. https://10.0.0.1:6443, instead of a kubeconfig (with --token-file and --ca-cert).
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// File holding the bearer token for --server (or set KUBE_TOKEN); a token is never a flag value.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// PEM file with the cluster's CA certificate, trusted for this connection only.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Do not verify the API server's certificate (warns every time; prefer --ca-cert).
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value_t = false, value_name = "BOOL", hide_possible_values = true)]
    pub insecure_skip_tls_verify: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ApplyFlags {
    /// Manifest files to apply instead of a fresh rendering (repeatable).
    #[arg(short = 'f', long = "filename", value_name = "FILE", conflicts_with = "create_pull_secret")]
    pub files: Vec<PathBuf>,
    /// Change nothing: server (the API server validates and admits, stores nothing; prints what would be
    /// created, configured, unchanged or replaced) or client (render and check here, no request). Bare: server.
    #[arg(long, value_enum, value_name = "MODE", num_args = 0..=1, require_equals = true, default_missing_value = "server")]
    pub dry_run: Option<DryRun>,
    #[command(flatten)]
    pub pull_secret: PullSecretFlags,
    #[command(flatten)]
    pub cluster: ClusterFlags,
    #[command(flatten)]
    pub job: JobFlags,
    #[command(flatten)]
    pub rbac: RbacFlags,
}

/// Where a finished run's report is kept besides stdout (`watch`,
/// `run-local`, `release`).
#[derive(Debug, Clone, Args)]
pub struct ReportFilesFlags {
    /// Also write the Job report as JSON to FILE (mode 0644), for `alerts --report FILE`.
    #[arg(long, value_name = "FILE")]
    pub save_report: Option<PathBuf>,
    /// Also draw the run as one self-contained HTML page (timeline, verdict, failure rate) to FILE; opens offline.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct WatchFlags {
    #[command(flatten)]
    pub files: ReportFilesFlags,
    /// Give up after this long (e.g. 10m); exit code 5.
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true, value_parser = duration)]
    pub timeout: Option<Duration>,
    #[command(flatten)]
    pub job: JobRefFlags,
}

#[derive(Debug, Clone, Args)]
pub struct LogsFlags {
    /// Follow: every pod of the Job as it appears, each container's restarts included, until the Job ends.
    #[arg(short = 'f', long)]
    pub follow: bool,
    #[command(flatten)]
    pub job: JobRefFlags,
}

/// A pull secret for a private registry, from the credential `push` uses
/// (`--username` with `--password-stdin`, REGISTRY_USERNAME and
/// REGISTRY_PASSWORD, or the Docker config's entry for the image's registry).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Pull secret")]
pub struct PullSecretFlags {
    /// Create a kubernetes.io/dockerconfigjson Secret from the registry credential, named by --image-pull-secret
    /// (default: <name>-pull-secret), applied before the Job and named in its imagePullSecrets.
    #[arg(long)]
    pub create_pull_secret: bool,
    /// Registry user name for the pull secret; the password is read from standard input (needs --password-stdin).
    #[arg(long, requires_all = ["password_stdin", "create_pull_secret"])]
    pub username: Option<String>,
    /// Read the registry password for the pull secret from standard input (needs --username).
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
}

/// Which Job.
#[derive(Debug, Clone, Args)]
pub struct JobRefFlags {
    /// The Job's name.
    #[arg(long, default_value = "job-test")]
    pub name: String,
    /// The Job's namespace: job-test, where `render` and `apply` put it, whatever the kubeconfig context names.
    #[arg(short = 'n', long, default_value = "job-test")]
    pub namespace: String,
    #[command(flatten)]
    pub cluster: ClusterFlags,
}

/// Which Job to delete, from the cluster or from the local engine.
#[derive(Debug, Clone, Args)]
pub struct DeleteFlags {
    /// Remove the containers (and their termination logs) `run-local --keep` kept, instead of a cluster's Job.
    #[arg(long)]
    pub local: bool,
    /// The Job's name [default: job-test]; with --local, only that Job's containers (default: every Job's, whatever
    /// name the settings file or JOB_TEST_NAME gives).
    #[arg(long)]
    pub name: Option<String>,
    /// The Job's namespace: job-test, where `render` and `apply` put it, whatever the kubeconfig context names.
    #[arg(short = 'n', long, default_value = "job-test")]
    pub namespace: String,
    #[command(flatten)]
    pub cluster: ClusterFlags,
}

/// Flags that share a settings key's name but mean something else in their
/// command, so that neither the settings file nor JOB_TEST_<FLAG> reaches
/// them (`config::Settings::apply` skips them): `pods -n` lists what
/// `kubectl get pods` would, not the Job's namespace, so the credential
/// `auth` wrote is checked where its kubeconfig points. (`delete --local
/// --name` is the other such flag, but only with --local: see
/// `config::typed_only`.)
pub const NOT_SETTINGS_IN: [(&str, &str); 1] = [("pods", "namespace")];

#[derive(Debug, Clone, Args)]
pub struct PodsFlags {
    /// Namespace to list. Default: the kubeconfig context's namespace, else "default", as `kubectl get pods`
    /// (the kubeconfig `auth` writes names the service account's namespace); not taken from the settings.
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    #[command(flatten)]
    pub cluster: ClusterFlags,
}

#[derive(Debug, Clone, Args)]
pub struct ServiceAccountFlags {
    /// Namespace of the service account; job-test whatever the kubeconfig context names.
    #[arg(short = 'n', long, default_value = "job-test")]
    pub namespace: String,
    /// Where to write the service account's kubeconfig (mode 0600). Default: target/<service account>.kubeconfig.
    #[arg(long, value_name = "FILE")]
    pub write_kubeconfig: Option<PathBuf>,
    /// Also print the token (it is a credential: only when asked).
    #[arg(long)]
    pub print_token: bool,
    /// Also write the cluster's CA (the token Secret's ca.crt) as a PKCS#12 truststore for Java clients (mode
    /// 0600), and print the JVM flags that use it. Its password: generated and printed once, or
    /// --java-truststore-password-stdin.
    #[arg(long, value_name = "FILE")]
    pub java_truststore: Option<PathBuf>,
    /// Read the Java truststore's password from standard input instead of generating one.
    #[arg(long, requires = "java_truststore")]
    pub java_truststore_password_stdin: bool,
    /// How long to wait for the token controller to fill the Secret.
    #[arg(long, default_value = "60s", value_name = "DURATION", allow_hyphen_values = true, value_parser = duration)]
    pub timeout: Duration,
    #[command(flatten)]
    pub cluster: ClusterFlags,
    #[command(flatten)]
    pub rbac: RbacFlags,
}

#[derive(Debug, Clone, Args)]
pub struct RunLocalFlags {
    #[command(flatten)]
    pub files: ReportFilesFlags,
    /// Run the Job in this manifest file instead of a fresh rendering.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Multiply every back-off (10 s doubling) by this, for demos; the deadline is kept.
    #[arg(long, default_value_t = 1.0, value_name = "F", value_parser = time_scale)]
    pub time_scale: f64,
    /// Keep the containers and their logs after the run, until `cargo xtask delete --local`.
    #[arg(long)]
    pub keep: bool,
    /// Give up after this long (e.g. 10m); exit code 5. The containers are removed.
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true, value_parser = duration)]
    pub timeout: Option<Duration>,
    /// Play the Job controller of this Kubernetes version (e.g. 1.20): its conditions, reasons and counts; what
    /// it cannot take is refused (default: the newest the schema covers).
    #[arg(long, value_name = "X.Y", value_parser = parse_kube_version)]
    pub kube_version: Option<KubeVersion>,
    /// Evict one running pod this long after the start (repeatable), as the Eviction API does: DisruptionTarget
    /// (from 1.26), SIGTERM and the pod's grace period; the podFailurePolicy decides whether it counts.
    #[arg(long, value_name = "AFTER", value_parser = duration)]
    pub evict: Vec<Duration>,
    #[command(flatten)]
    pub job: JobFlags,
}

#[derive(Debug, Clone, Args)]
pub struct EvictFlags {
    /// The pod to evict (default: the Job's oldest running pod).
    #[arg(long, value_name = "POD")]
    pub pod: Option<String>,
    /// Give up following the pod and the Job after this long; exit code 5.
    #[arg(long, default_value = "2m", value_name = "DURATION", allow_hyphen_values = true, value_parser = duration)]
    pub timeout: Duration,
    #[command(flatten)]
    pub job: JobRefFlags,
}

#[derive(Debug, Clone, Args)]
pub struct ConformanceFlags {
    /// Run the catalogue on the local Docker engine, by the Job controller rules of --kube-version.
    #[arg(long)]
    pub local: bool,
    /// With --local: the Kubernetes version whose controller is played (default: the newest the schema covers).
    #[arg(long, value_name = "X.Y", value_parser = parse_kube_version, requires = "local")]
    pub kube_version: Option<KubeVersion>,
    /// The worker image, pinned by digest, that the cluster's nodes can pull (`cargo xtask push` prints it);
    /// with --local, default: 127.0.0.1:5000/job-test:<version>, what `push` and `release` make by default.
    #[arg(long, value_name = "REF")]
    pub image: Option<ImageRef>,
    /// Only the scenarios whose name contains this.
    #[arg(long, value_name = "PATTERN")]
    pub only: Option<String>,
    /// Scenarios run side by side, each in its own namespace (locally: its own containers).
    #[arg(long, default_value_t = 4, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,
    /// Give up on a scenario after this long; it is then an error.
    #[arg(long, default_value = "4m", value_name = "DURATION", allow_hyphen_values = true, value_parser = duration)]
    pub timeout: Duration,
    /// With --local: multiply every back-off (10 s doubling) by this; deadlines are kept.
    #[arg(long, default_value_t = 1.0, value_name = "F", value_parser = time_scale, requires = "local")]
    pub time_scale: f64,
    /// Delete the namespaces a conformance run left on the cluster (labelled job-test.conformance/run) and stop.
    #[arg(long)]
    pub clean: bool,
    #[command(flatten)]
    pub cluster: ClusterFlags,
}

fn time_scale(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if f.is_finite() && f >= 0.0 => Ok(f),
        _ => Err("expected a factor of 0 or more, such as 0.01 (a hundred times faster) or 1".into()),
    }
}

#[derive(Debug, Clone, Args)]
pub struct AlertsFlags {
    /// Prometheus rules file to evaluate (repeatable). Default: alerts/job-alerts.yaml, the kubernetes-mixin's
    /// KubeJobFailed and KubeJobNotCompleted.
    #[arg(long = "rules", value_name = "FILE")]
    pub rules: Vec<PathBuf>,
    /// Drill a finished run: the JSON `watch`, `run-local` or `release` print with --output json, or write with
    /// --save-report. Without it: the Job on the cluster when --name is given, else typical runs of the Job flags.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// How often Prometheus scrapes kube-state-metrics (Prometheus' default: 1m).
    #[arg(long, default_value = "1m", value_name = "DURATION", value_parser = duration)]
    pub scrape_interval: Duration,
    /// How often Prometheus evaluates the rules (Prometheus' default: 1m).
    #[arg(long, default_value = "1m", value_name = "DURATION", value_parser = duration)]
    pub evaluation_interval: Duration,
    /// Seed of the simulation that draws the typical runs.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub trial_seed: u64,
    /// Also write the series replayed for each run to FILE (JSON: promtool's `input_series`, with the scrape
    /// interval), to load into a promtool test of your own.
    #[arg(long, value_name = "FILE")]
    pub save_series: Option<PathBuf>,
    #[command(flatten)]
    pub cluster: ClusterFlags,
    /// --name (with -n) names a Job on the cluster to drill; the other Job flags describe a Job to simulate.
    #[command(flatten)]
    pub job: JobFlags,
}

#[derive(Debug, Clone, Args)]
pub struct ReleaseFlags {
    #[command(flatten)]
    pub files: ReportFilesFlags,
    /// Give up watching after this long (e.g. 15m); exit code 5.
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true, value_parser = duration)]
    pub timeout: Option<Duration>,
    /// Run the Job on the local Docker engine even when a cluster is configured (the default when none is).
    #[arg(long)]
    pub local: bool,
    /// Build, but push nothing and change nothing: server (the apply as a server-side dry run, the image pinned
    /// by the digest it would be pushed with) or client (render and check here, no cluster or registry). Bare: server.
    #[arg(long, value_enum, value_name = "MODE", num_args = 0..=1, require_equals = true,
          default_missing_value = "server", conflicts_with = "local")]
    pub dry_run: Option<DryRun>,
    /// Locally: multiply every back-off (10 s doubling) by this, for demos.
    #[arg(long, default_value_t = 1.0, value_name = "F", value_parser = time_scale)]
    pub time_scale: f64,
    /// Locally: keep the containers and their logs after the run.
    #[arg(long)]
    pub keep: bool,
    /// Create a kubernetes.io/dockerconfigjson Secret from the credential the push uses, named by
    /// --image-pull-secret (default: <name>-pull-secret), applied before the Job and named in its imagePullSecrets.
    #[arg(long)]
    pub create_pull_secret: bool,
    #[command(flatten)]
    pub build: BuilderFlags,
    #[command(flatten)]
    pub registry: RegistryFlags,
    #[command(flatten)]
    pub cluster: ClusterFlags,
    /// The Job; its --image is where the image is pushed (default: the local registry).
    #[command(flatten)]
    pub job: JobFlags,
    #[command(flatten)]
    pub rbac: RbacFlags,
}

#[derive(Debug, Clone, Args)]
pub struct ReportFlags {
    /// Where to write the page (HTML with inline CSS and SVG; nothing fetched, no script).
    #[arg(long, value_name = "FILE")]
    pub html: PathBuf,
    /// The run to draw: what `watch`, `run-local` or `release` print with --output json, or --save-report writes.
    #[arg(long, value_name = "REPORT.json")]
    pub from: PathBuf,
}

/// Every group whose flags are settings (see `config`): a flag added to one
/// of these groups is a settings-file key and a JOB_TEST_ variable at once.
#[derive(Debug, Clone, Args)]
pub struct ConfigFlags {
    #[command(flatten)]
    pub job: JobFlags,
    #[command(flatten)]
    pub rbac: RbacFlags,
    #[command(flatten)]
    pub cluster: ClusterFlags,
    #[command(flatten)]
    pub registry: RegistryFlags,
    #[command(flatten)]
    pub build: BuilderFlags,
}

#[derive(Debug, Clone, Args)]
pub struct CompletionsFlags {
    /// The shell the script is for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[cfg(test)]
mod tests {
    use clap::{Args, CommandFactory};

    use super::*;

    /// A flattened group's `next_help_heading` carries over to the flags
    /// declared after it (a command's own flag declared after a group would
    /// be listed under that group's heading, `render --out` under
    /// "Authorization:"): every flag under a group's heading must belong to
    /// that group.
    #[test]
    fn every_flag_under_a_group_heading_belongs_to_the_group() {
        let group = |cmd: clap::Command| cmd.get_arguments().map(|a| a.get_id().to_string()).collect::<Vec<_>>();
        let groups = [
            ("Job", group(JobFlags::augment_args(clap::Command::new("g")))),
            ("Worker", group(JobFlags::augment_args(clap::Command::new("g")))),
            ("Authorization", group(RbacFlags::augment_args(clap::Command::new("g")))),
            ("Cluster", group(ClusterFlags::augment_args(clap::Command::new("g")))),
            ("Registry", group(RegistryFlags::augment_args(clap::Command::new("g")))),
            ("Image", group(BuilderFlags::augment_args(clap::Command::new("g")))),
            ("Pull secret", group(PullSecretFlags::augment_args(clap::Command::new("g")))),
        ];
        for sub in Xtask::command().get_subcommands() {
            for arg in sub.get_arguments() {
                let Some(heading) = arg.get_help_heading() else { continue };
                let (_, members) = groups.iter().find(|(g, _)| *g == heading).expect("a known heading");
                assert!(
                    members.iter().any(|m| m == arg.get_id()),
                    "`{} --{}` is listed under {heading}:",
                    sub.get_name(),
                    arg.get_long().unwrap_or(arg.get_id().as_str())
                );
            }
        }
    }

    #[test]
    fn every_subcommand_has_an_example() {
        for sub in Xtask::command().get_subcommands() {
            let help = sub.get_after_help().map(|h| h.to_string()).unwrap_or_default();
            assert!(
                help.starts_with(&format!("Examples:\n  cargo xtask {}", sub.get_name())),
                "{} --help has no example: {help:?}",
                sub.get_name()
            );
        }
    }

    #[test]
    fn odds_hides_exactly_the_flags_that_do_not_change_the_odds() {
        let cmd = Xtask::command();
        let odds = cmd.find_subcommand("odds").unwrap();
        let hidden: Vec<String> =
            odds.get_arguments().filter(|a| a.is_hide_set()).map(|a| a.get_id().to_string()).collect();
        assert_eq!(hidden, ODDS_IGNORES);
        // Hidden, not refused: the same flags as `render` are taken.
        Xtask::try_parse_from(["cargo xtask", "odds", "--image", "x:1", "--cpu", "1", "-n", "demo"]).unwrap();
    }
}
