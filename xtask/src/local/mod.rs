//! `cargo xtask run-local`: run a Job on the local Docker engine, with no
//! cluster. The very Job object `render` produces (or a Job file) is run
//! by the Job controller's documented rules (`controller`), each pod a
//! container made from the pod template (`pod`). The live table, the
//! report, its JSON and the exit codes are those of `cargo xtask watch`.
//!
//! A real cluster remains the source of truth: the first line says that
//! this is the local engine, and whose rules: those of one Kubernetes
//! version (`--kube-version`, the newest by default), adapted to as `apply`
//! adapts to a cluster. `--evict` evicts a running pod as the Eviction API
//! would. Back-offs can be shrunk for demos
//! (`--time-scale`); the deadline is not. Every container is removed when
//! the run ends, on success, failure, Ctrl-C or an error (one clean-up for
//! all), unless `--keep`. Container names carry the run's id, so no run
//! meets another's containers.

pub mod controller;
pub mod kept;
pub mod pod;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bollard::Docker;
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, ListContainersOptions, RemoveContainerOptions, StopContainerOptions,
};
use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt;
use tokio::sync::mpsc;

use crate::flags::RunLocalFlags;
use crate::image::docker;
use crate::image_ref::ImageRef;
use crate::manifest::versions::{self, ControllerRules, KubeVersion};
use crate::manifest::{self, objects, params};
use crate::report::Reporter;
use crate::report::job::{JobCondition, JobReport, JobTimes, PodPhase, PodRow};
use crate::report::pod_table::PodTable;
use crate::{Error, ErrorKind};
use controller::{Controller, Spec};

/// How a local run is shaped beyond the Job.
#[derive(Debug, Clone)]
pub struct Options {
    /// Every back-off is multiplied by this (1 = as a cluster waits).
    pub time_scale: f64,
    /// Keep the containers (and their logs) after the run.
    pub keep: bool,
    pub timeout: Option<Duration>,
    /// Whose Job controller's rules the run follows.
    pub version: KubeVersion,
    /// When a running pod is evicted, from the run's start.
    pub evict: Vec<Duration>,
    /// A line said right after the first (the odds of the rendered Job).
    pub summary: Option<String>,
}

pub fn run(flags: &RunLocalFlags, out: &Reporter) -> Result<()> {
    let mut summary = None;
    let job = match &flags.file {
        Some(path) => manifest::job_from_file(path)?,
        None => {
            // With no --image, the image `cargo xtask image` builds into the
            // local daemon, not the manifests' placeholder.
            let mut job_flags = flags.job.clone();
            job_flags.image.get_or_insert_with(crate::image::default_reference);
            let (p, warnings) = params::job_params(&job_flags)?;
            for w in &warnings {
                out.warn(w);
            }
            summary = Some(crate::odds::summary(&p));
            objects::job(&p)
        }
    };
    let options = Options {
        time_scale: flags.time_scale,
        keep: flags.keep,
        timeout: flags.timeout,
        version: flags.kube_version.unwrap_or(versions::NEWEST),
        evict: flags.evict.clone(),
        summary,
    };
    crate::runtime()?.block_on(async {
        let report = run_job(&job, &options, out).await?;
        report.keep(&flags.files, out)?;
        out.result(&report);
        Ok(report.verdict()?)
    })
}

/// One pod of the run: its container (what the table shows is its row).
struct LocalPod {
    container: String,
    message_file: PathBuf,
    started: Instant,
    /// When its container restarts in place (OnFailure).
    restart_at: Option<Instant>,
}

/// The Job as the chosen version takes it (`versions::adapt_job`, as
/// `apply` adapts to a cluster): what it cannot take is refused (exit 2).
/// A Job the built-in controller would skip (spec.managedBy names another
/// controller) is refused too.
fn adapt(job: &Job, version: KubeVersion, out: &Reporter) -> Result<Job> {
    let mut job = job.clone();
    let warnings =
        versions::adapt_job(&mut job, version).into_result(version, "--kube-version, the local run's rules")?;
    for w in &warnings {
        out.warn(w);
    }
    if let Some(manager) = crate::cluster::status::managed_by(&job) {
        // "Jobs" documentation, "Delegation of managing a Job object to
        // external controller"; job_controller.go's syncJob returns early
        // ("Skip syncing the job as it is managed by an external controller").
        return Err(Error::usage(format!(
            "job.batch/{}: spec.managedBy is {manager:?}, not {}: the built-in Job controller skips this Job and \
             {manager} runs it, so it is not run locally either; leave spec.managedBy out to run it here",
            job.name_any(),
            crate::manifest::params::JOB_CONTROLLER
        ))
        .into());
    }
    Ok(job)
}

/// A container run that ended.
struct Exit {
    pod: String,
    exit_code: i32,
    oom_killed: bool,
}

/// Runs the Job to its end on the local engine.
pub async fn run_job(job: &Job, options: &Options, out: &Reporter) -> Result<JobReport> {
    let job = &adapt(job, options.version, out)?;
    let rules = ControllerRules::of(options.version);
    let name = job.name_any();
    let namespace = job.namespace().unwrap_or_else(|| "default".into());
    let template = job.spec.as_ref().and_then(|s| s.template.spec.clone()).context("the Job has no pod template")?;
    let image = pod::container(&template)
        .and_then(|c| c.image.clone())
        .ok_or_else(|| Error::usage("the Job's container names no image"))?;
    out.status(format!(
        "running job.batch/{name} on the local Docker engine, not a cluster, by the rules of the Kubernetes {} Job \
         controller{}{}{}",
        options.version,
        if options.version == versions::NEWEST { " (the newest; --kube-version X.Y for another)" } else { "" },
        if options.time_scale == 1.0 {
            String::new()
        } else {
            format!("; back-offs × {} (--time-scale)", options.time_scale)
        },
        match pod::container(&template).and_then(worker_seed) {
            Some(seed) => format!(
                "; pod names drawn from WORKER_SEED {seed} and each pod's index and attempt, so the same seed \
                 gives each pod the same name and draw (a cluster names pods at random)"
            ),
            None => String::new(),
        }
    ));
    if let Some(summary) = &options.summary {
        out.status(summary);
    }
    let docker = docker::local_daemon().await?;
    let image = ensure_image(&docker, &image, out).await?;
    let spec = Spec::of(job);
    if !spec.success_rules.is_empty() && !spec.indexed {
        return Err(Error::usage(format!(
            "job.batch/{name}: spec.successPolicy is for Indexed Jobs only (the API server refuses it otherwise); \
             set spec.completionMode: Indexed or remove it"
        ))
        .into());
    }
    // Said, not warned: a rule that cannot match here changes nothing
    // unless a cluster would have disrupted the pod.
    for caveat in controller::local_caveats(&spec, &rules, !options.evict.is_empty()) {
        out.status(caveat);
    }
    let grace = template.termination_grace_period_seconds.unwrap_or(30).max(0);
    let run = random_suffix();
    let names = PodNames::new(&name, pod::container(&template).and_then(worker_seed));
    // Pods made so far per completion index (NonIndexed: all under None),
    // the attempt a new pod's name is drawn for.
    let mut attempts: BTreeMap<Option<u32>, u32> = BTreeMap::new();
    let dir = crate::target_dir().join("local").join(format!("{name}-{run}"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;

    let scaled = |d: Duration| d.mul_f64(options.time_scale.max(0.0));
    let started = Instant::now();
    let deadline = spec.deadline.map(|d| started + d);
    let mut controller = Controller::with_rules(spec.clone(), rules);
    // Evictions still to come, soonest last.
    let mut evictions: Vec<Duration> = options.evict.clone();
    evictions.sort_unstable_by(|a, b| b.cmp(a));
    // Pods evicted so far.
    let mut evicted: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    let mut pods: BTreeMap<String, LocalPod> = BTreeMap::new();
    // The table's rows, kept as the table and the report take them.
    let mut rows: BTreeMap<String, PodRow> = BTreeMap::new();
    let mut table = PodTable::new(out);
    let mut next_create = started;
    let (exits, mut exited) = mpsc::unbounded_channel::<Exit>();
    let mut signals = Signals::new()?;

    // The loop is an async block so that every error in it (a container the
    // daemon will not create or start, a file that cannot be written) ends
    // here, and the clean-up below stops and removes what it started.
    let outcome: Result<()> = async {
        loop {
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                controller.deadline_passed();
            }
            if controller.finished.is_some() {
                return Ok(());
            }
            while let Some(after) = evictions.last().copied().filter(|after| now >= started + *after) {
                evictions.pop();
                // The running pod that started first (not one waiting to restart in place).
                let victim = controller
                    .active
                    .keys()
                    .filter_map(|n| pods.get(n).filter(|p| p.restart_at.is_none()).map(|p| (p.started, n.clone())))
                    .min()
                    .map(|(_, n)| n);
                let Some(pod_name) = victim else {
                    out.status(format!(
                        "--evict {}: no pod is running, nothing evicted",
                        humantime::format_duration(after)
                    ));
                    continue;
                };
                controller.evicted(&pod_name);
                evicted.insert(pod_name.clone());
                let replacement = match controller.replacement_policy() {
                    Some("Failed") => "its replacement waits until it has ended (podReplacementPolicy Failed)".to_owned(),
                    Some(policy) => format!("replaced at once (podReplacementPolicy {policy})"),
                    None => format!(
                        "replaced at once (Kubernetes {} has no podReplacementPolicy: a pod being deleted is not active)",
                        options.version
                    ),
                };
                out.status(format!(
                    "--evict {}: evicting pod {pod_name} as the Eviction API does: {}SIGTERM, then SIGKILL after {grace}s \
                     (terminationGracePeriodSeconds); {replacement}",
                    humantime::format_duration(after),
                    if rules.disruption_conditions { "condition DisruptionTarget (EvictionByEvictionAPI), " } else { "" },
                ));
                let row = rows.get_mut(&pod_name).expect("a row per pod");
                let before = row.clone();
                row.phase = PodPhase::Terminating;
                row.reason = Some("Evicted".into());
                let changed = row.clone();
                table.update(Some(&before), &changed, &rows);
                let (docker, id) = (docker.clone(), pods[&pod_name].container.clone());
                tokio::spawn(async move {
                    let options = StopContainerOptions { t: Some(grace as i32), ..Default::default() };
                    let _ = docker.stop_container(&id, Some(options)).await;
                });
            }
            if now >= next_create {
                for index in controller.to_start() {
                    let attempt = attempts.entry(index).or_default();
                    let pod_name = names.name(index, *attempt, |n| pods.contains_key(n));
                    *attempt += 1;
                    let who = pod::Identity {
                        name: &pod_name,
                        namespace: &namespace,
                        job: &name,
                        run: &run,
                        index,
                        index_failures: controller.index_failure_count(index),
                        kept: options.keep,
                    };
                    let pod_dir = dir.join(&pod_name);
                    std::fs::create_dir_all(&pod_dir).with_context(|| format!("creating {}", pod_dir.display()))?;
                    let message_file = pod_dir.join("termination-log");
                    write_world_writable(&message_file)?;
                    let body = pod::container_body(&template, &image, &who, &message_file, &pod_dir.join("volumes"))
                        .map_err(Error::usage)?;
                    // A pod's age counts from its creation, as on a cluster.
                    let created_at = Instant::now();
                    let created = docker
                        .create_container(
                            Some(CreateContainerOptions {
                                name: Some(container_name(&run, &pod_name)),
                                ..Default::default()
                            }),
                            body,
                        )
                        .await
                        .map_err(|e| daemon_refused(format!("creating the container for pod {pod_name}"), e))?;
                    controller.started(&pod_name, index);
                    let row = PodRow {
                        name: pod_name.clone(),
                        phase: PodPhase::Running,
                        index: index.map(|i| i.to_string()),
                        exit_code: None,
                        reason: None,
                        message: None,
                        restarts: 0,
                        seconds: Some(0.0),
                        last_exit_code: None,
                        created_at: Some(created_at.duration_since(started).as_secs_f64()),
                        finished_at: None,
                    };
                    pods.insert(
                        pod_name.clone(),
                        LocalPod {
                            container: created.id.clone(),
                            message_file,
                            started: created_at,
                            restart_at: None,
                        },
                    );
                    rows.insert(pod_name.clone(), row.clone());
                    start(&docker, &created.id, &pod_name, &exits).await?;
                    table.update(None, &row, &rows);
                }
            }
            // The next time something is due: a replacement pod, a restart, the deadline.
            let mut wake: Vec<Instant> = pods.values().filter_map(|p| p.restart_at).collect();
            wake.extend(deadline);
            wake.extend(evictions.last().map(|after| started + *after));
            if !controller.to_start().is_empty() {
                wake.push(next_create);
            }
            if let Some(t) = options.timeout {
                wake.push(started + t);
                if now >= started + t {
                    return Err(Error::new(
                        ErrorKind::Timeout,
                        format!("gave up after {}: the Job had not finished", humantime::format_duration(t)),
                    )
                    .into());
                }
            }
            let sleep =
                tokio::time::sleep_until(wake.into_iter().min().unwrap_or(now + Duration::from_secs(3600)).into());
            tokio::select! {
                Some(exit) = exited.recv() => {
                    let (Some(p), Some(row)) = (pods.get_mut(&exit.pod), rows.get_mut(&exit.pod)) else { continue };
                    let mut message = std::fs::read_to_string(&p.message_file).unwrap_or_default();
                    message.truncate(4096);
                    let before = row.clone();
                    row.exit_code = Some(exit.exit_code);
                    row.reason = Some(if exit.oom_killed { "OOMKilled" } else if exit.exit_code == 0 { "Completed" } else { "Error" }.into());
                    row.message = Some(message.trim().to_owned()).filter(|m| !m.is_empty());
                    row.seconds = Some(p.started.elapsed().as_secs_f64());
                    if controller.exited(&exit.pod, exit.exit_code) {
                        // Restarted in place after the kubelet's back-off.
                        let restarts = row.restarts as u32 + 1;
                        p.restart_at = Some(Instant::now() + scaled(controller::restart_backoff(restarts)));
                        row.last_exit_code = Some(exit.exit_code);
                    } else {
                        row.phase = if exit.exit_code == 0 { PodPhase::Succeeded } else { PodPhase::Failed };
                        row.finished_at = Some(started.elapsed().as_secs_f64());
                        let eviction = controller.evictions.get(&exit.pod).filter(|_| exit.exit_code != 0);
                        if let Some(e) = eviction {
                            // Marked, with whether the controller counted it.
                            row.reason = Some("Evicted".into());
                            row.message = Some(e.note.clone());
                        }
                        if exit.exit_code != 0 && eviction.is_none_or(|e| e.counted) {
                            next_create = Instant::now() + scaled(controller::replacement_backoff(controller.recent_failures));
                        }
                    }
                    let changed = row.clone();
                    table.update(Some(&before), &changed, &rows);
                }
                _ = sleep => {
                    let due: Vec<String> = pods.iter().filter(|(_, p)| p.restart_at.is_some_and(|t| t <= Instant::now())).map(|(n, _)| n.clone()).collect();
                    for pod_name in due {
                        let p = pods.get_mut(&pod_name).expect("listed above");
                        p.restart_at = None;
                        write_world_writable(&p.message_file)?;
                        let row = rows.get_mut(&pod_name).expect("a row per pod");
                        let before = row.clone();
                        row.restarts += 1;
                        row.exit_code = None;
                        row.reason = None;
                        let changed = row.clone();
                        let container = p.container.clone();
                        controller.restarted(&pod_name);
                        if controller.finished.is_none() {
                            start(&docker, &container, &pod_name, &exits).await?;
                        }
                        table.update(Some(&before), &changed, &rows);
                    }
                }
                signal = signals.next() => {
                    return Err(Error::new(signal, format!("{} (job.batch/{name} was running locally)", match signal {
                        ErrorKind::Terminated => "terminated by SIGTERM",
                        _ => "interrupted by Ctrl-C",
                    })).into());
                }
            }
        }
    }
    .await;

    // A finished (or interrupted) Job's running pods are stopped: SIGTERM,
    // then SIGKILL after terminationGracePeriodSeconds.
    let active: Vec<String> = controller.active.keys().chain(controller.terminating.keys()).cloned().collect();
    let reason = controller.finished.as_ref().map(|f| f.reason.clone());
    // The interim condition, when it happens: the verdict, before the
    // lingering pods are terminated (as `watch` announces it on a cluster).
    if let Some(condition) = controller.interim_condition() {
        out.status(format!(
            "job.batch/{name}: {} ({}{}); {}",
            condition.kind,
            condition.reason,
            if condition.message.is_empty() { String::new() } else { format!(": {}", condition.message) },
            if active.is_empty() {
                "no pod left to terminate".to_owned()
            } else {
                format!("terminating {} lingering pods: {}", active.len(), active.join(", "))
            }
        ));
    }
    // When the controller decided: the Job's end, as its status says it.
    let ended = started.elapsed().as_secs_f64();
    stop_all(&docker, active.iter().filter_map(|n| pods.get(n)).map(|p| p.container.as_str()), grace).await;
    if let Some(f) = controller.finished.clone() {
        for pod_name in controller.terminated_active() {
            let Some(row) = rows.get_mut(&pod_name) else { continue };
            row.finished_at = Some(ended);
            if evicted.contains(&pod_name) {
                row.phase = PodPhase::Failed;
                row.reason = Some("Evicted".into());
                row.message = Some(controller.evictions.get(&pod_name).map_or_else(
                    || "still terminating when the Job finished; not counted".to_owned(),
                    |e| e.note.clone(),
                ));
            } else if f.result == crate::report::job::JobResult::Complete {
                // Removed, as a cluster deletes them: not part of the report.
                rows.remove(&pod_name);
            } else {
                row.phase = PodPhase::Failed;
                row.reason = reason.clone();
            }
        }
    }
    table.close(&rows);
    let removed = if options.keep { 0 } else { remove_run(&docker, &run).await };
    if options.keep {
        out.status(format!(
            "kept {} containers (label {}={run}) and {}; `cargo xtask delete --local --name {name}` removes them",
            pods.len(),
            pod::RUN_LABEL,
            dir.display(),
        ));
    } else {
        let _ = std::fs::remove_dir_all(&dir);
        out.status(format!("removed the {removed} containers of this run"));
    }
    outcome?;

    let finished = controller.finished.clone().expect("the loop ends finished or with an error");
    let restarts: i32 = rows.values().map(|r| r.restarts).sum();
    let (succeeded, failed) = (controller.succeeded as i32, controller.failed as i32);
    let ttl = job.spec.as_ref().and_then(|s| s.ttl_seconds_after_finished);
    if let Some(ttl) = ttl {
        out.status(format!(
            "on a cluster, job.batch/{name} and its pods would be deleted {} after it finished (ttlSecondsAfterFinished)",
            crate::report::human_seconds(ttl as f64)
        ));
    }
    Ok(JobReport {
        name,
        namespace,
        result: finished.result,
        // An empty Complete reason (through 1.30) reads as `watch` reads it.
        reason: finished.report_reason(),
        message: finished.message.clone(),
        succeeded,
        completions: spec.completions as i32,
        failed_pods: failed,
        seconds: Some(started.elapsed().as_secs_f64()),
        runs: succeeded + failed + restarts,
        failed_runs: failed + restarts,
        configured_probability: crate::cluster::status::configured_probability(job),
        pods: rows.into_values().collect(),
        // The local controller adds its conditions as it decides the end.
        conditions: controller.conditions().into_iter().map(|c| JobCondition { at: Some(ended), ..c }).collect(),
        completed_indexes: controller.completed_indexes(),
        failed_indexes: controller.failed_indexes(),
        terminating: controller.terminating_at_end(active.len()),
        managed_by: None,
        image_pull: None,
        times: Some(JobTimes {
            created: None,
            started: Some(0.0),
            finished: Some(ended),
            ttl_seconds_after_finished: ttl.map(i64::from),
            active_deadline_seconds: job.spec.as_ref().and_then(|s| s.active_deadline_seconds),
            parallelism: job.spec.as_ref().and_then(|s| s.parallelism),
            status: Vec::new(),
        }),
    })
}

/// A file the container's user (whoever it is) can write.
fn write_world_writable(path: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, "").with_context(|| format!("creating {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))
        .with_context(|| format!("chmod {}", path.display()))
}

/// The daemon refused a step of the run: exit 4 like any other refusal,
/// not 1, which says the Job failed.
fn daemon_refused(step: String, e: bollard::errors::Error) -> Error {
    Error::remote(format!("{step}: the Docker daemon refused: {e}"))
}

/// Starts a container and reports its exit on `exits`.
async fn start(docker: &Docker, id: &str, pod: &str, exits: &mpsc::UnboundedSender<Exit>) -> Result<()> {
    docker
        .start_container(id, None)
        .await
        .map_err(|e| daemon_refused(format!("starting the container of pod {pod}"), e))?;
    let (docker, id, pod, exits) = (docker.clone(), id.to_owned(), pod.to_owned(), exits.clone());
    tokio::spawn(async move {
        // Ends with the exit (an error for a non-zero code); then the
        // container is looked at for the code and an OOM kill.
        let _ = docker.wait_container(&id, None).next().await;
        let state = docker.inspect_container(&id, None).await.ok().and_then(|i| i.state).unwrap_or_default();
        let _ = exits.send(Exit {
            pod,
            exit_code: state.exit_code.unwrap_or(-1) as i32,
            oom_killed: state.oom_killed == Some(true),
        });
    });
    Ok(())
}

async fn stop_all<'a>(docker: &Docker, containers: impl Iterator<Item = &'a str>, grace: i64) {
    let stops = containers.map(|id| {
        docker.stop_container(id, Some(StopContainerOptions { t: Some(grace as i32), ..Default::default() }))
    });
    futures_util::future::join_all(stops).await;
}

/// Removes every container of the run; returns how many.
async fn remove_run(docker: &Docker, run: &str) -> usize {
    let filters = std::collections::HashMap::from([("label".to_owned(), vec![format!("{}={run}", pod::RUN_LABEL)])]);
    let options = ListContainersOptions { all: true, filters: Some(filters), ..Default::default() };
    let containers = docker.list_containers(Some(options)).await.unwrap_or_default();
    let mut removed = 0;
    for c in containers {
        if let Some(id) = c.id {
            let options = RemoveContainerOptions { force: true, ..Default::default() };
            if docker.remove_container(&id, Some(options)).await.is_ok() {
                removed += 1;
            }
        }
    }
    removed
}

/// The image in the local daemon: there already, or pulled (a registry on
/// this machine is reached over plain HTTP by the daemon's own rule).
pub(crate) async fn ensure_image(docker: &Docker, reference: &str, out: &Reporter) -> Result<String> {
    let reference = ImageRef::parse(reference)
        .map_err(|why| Error::usage(format!("the Job's image {reference}: not an image reference ({why})")))?
        .pull_reference()
        .to_string();
    if docker.inspect_image(&reference).await.is_ok() {
        return Ok(reference);
    }
    out.status(format!("pulling {reference} into the local Docker engine"));
    let options = CreateImageOptions { from_image: Some(reference.clone()), ..Default::default() };
    docker.create_image(Some(options), None, None).try_collect::<Vec<_>>().await.map_err(|e| {
        Error::prerequisite(format!(
            "{reference} is not in the local Docker engine and cannot be pulled ({e}). Build it there with \
             `cargo xtask image` (the docker builder, or --builder oci --load), or push it with `cargo xtask push` \
             and pass the pushed reference"
        ))
    })?;
    Ok(reference)
}

/// The seed in the pod template's WORKER_SEED, when it is a plain value.
fn worker_seed(c: &k8s_openapi::api::core::v1::Container) -> Option<u64> {
    let var = c.env.iter().flatten().find(|v| v.name == job_worker::config::SEED.env)?;
    var.value.as_deref()?.trim().parse().ok()
}

/// Pod names as Kubernetes makes them, `<job>-<5 characters>`: at random,
/// or, when the worker is seeded, drawn from that seed, the pod's
/// completion index and its attempt (how many pods its index had before
/// it; NonIndexed, how many pods the Job had). Not from the order pods
/// happen to be made in: with parallelism above 1 that order follows which
/// pod exits first, and a name is an input of the worker's draw.
struct PodNames {
    job: String,
    seed: Option<u64>,
}

impl PodNames {
    fn new(job: &str, seed: Option<u64>) -> PodNames {
        PodNames { job: job.to_owned(), seed }
    }

    /// The name of the pod for `index` at `attempt`; another draw (still
    /// from the same inputs) when `taken` by a pod of this run.
    fn name(&self, index: Option<u32>, attempt: u32, taken: impl Fn(&str) -> bool) -> String {
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
fn container_name(run: &str, pod: &str) -> String {
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

/// SIGINT and SIGTERM, as error kinds (exit 130 and 143); `logs -f` uses
/// them too.
pub(crate) struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    pub(crate) fn new() -> Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt()).context("listening for Ctrl-C")?,
            terminate: signal(SignalKind::terminate()).context("listening for SIGTERM")?,
        })
    }

    pub(crate) async fn next(&mut self) -> ErrorKind {
        tokio::select! {
            _ = self.interrupt.recv() => ErrorKind::Interrupted,
            _ = self.terminate.recv() => ErrorKind::Terminated,
        }
    }
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
