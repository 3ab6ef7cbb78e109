//! One Job run on the local engine ([`LocalRun`]): the event loop's state,
//! and one method per event: pods due, an eviction due, a pod exited, a
//! restart due, and the end (the lingering pods stopped, the one clean-up,
//! the report).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bollard::Docker;
use bollard::query_parameters::{
    CreateContainerOptions, ListContainersOptions, RemoveContainerOptions, StopContainerOptions,
};
use futures_util::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::PodSpec;
use kube::ResourceExt;
use tokio::sync::mpsc;

use super::controller::{self, Controller, Spec};
use super::naming::{PodNames, container_name, random_suffix, worker_seed};
use super::{Options, Signals, adapt, ensure_image, pod};
use crate::image::docker;
use crate::manifest::versions::{self, ControllerRules};
use crate::report::Reporter;
use crate::report::job::{JobCondition, JobReport, JobResult, JobTimes, PodPhase, PodRow};
use crate::report::pod_table::PodTable;
use crate::{Error, ErrorKind};

/// A Job being run locally, from its first pod to its report.
pub struct LocalRun {
    out: Reporter,
    options: Options,
    /// The Job as the chosen version takes it.
    job: Job,
    name: String,
    namespace: String,
    template: PodSpec,
    /// The image as the local daemon has it.
    image: String,
    docker: Docker,
    /// terminationGracePeriodSeconds: how long a stopped pod has.
    grace: i64,
    /// The run's id, in its containers' names and labels and its folder's.
    run: String,
    names: PodNames,
    /// Pods made so far per completion index (NonIndexed: all under None),
    /// the attempt a new pod's name is drawn for.
    attempts: BTreeMap<Option<u32>, u32>,
    /// The termination logs and emptyDir volumes of the run's pods.
    dir: PathBuf,
    started: Instant,
    deadline: Option<Instant>,
    controller: Controller,
    /// Evictions still to come, soonest last.
    evictions: Vec<Duration>,
    /// Pods evicted so far.
    evicted: BTreeSet<String>,
    pods: BTreeMap<String, LocalPod>,
    /// The table's rows, kept as the table and the report take them.
    rows: BTreeMap<String, PodRow>,
    table: PodTable,
    /// When the controller may create pods again (the replacement back-off).
    next_create: Instant,
    exits: mpsc::UnboundedSender<Exit>,
    exited: mpsc::UnboundedReceiver<Exit>,
    signals: Signals,
}

/// One pod of the run: its container (what the table shows is its row).
struct LocalPod {
    container: String,
    message_file: PathBuf,
    started: Instant,
    /// When its container restarts in place (OnFailure).
    restart_at: Option<Instant>,
}

/// A container run that ended.
struct Exit {
    pod: String,
    exit_code: i32,
    oom_killed: bool,
}

impl Exit {
    /// The container's termination reason, as a kubelet gives it.
    fn reason(&self) -> &'static str {
        if self.oom_killed {
            "OOMKilled"
        } else if self.exit_code == 0 {
            "Completed"
        } else {
            "Error"
        }
    }
}

impl LocalRun {
    /// Everything before the first pod: the Job adapted and checked, what
    /// the run follows said, the image in the daemon, the run's folder.
    pub async fn new(job: &Job, options: &Options, out: &Reporter) -> Result<LocalRun> {
        let job = adapt(job, options.version, out)?;
        let rules = ControllerRules::of(options.version);
        let name = job.name_any();
        let namespace = job.namespace().unwrap_or_else(|| "default".into());
        let template =
            job.spec.as_ref().and_then(|s| s.template.spec.clone()).context("the Job has no pod template")?;
        let image = pod::container(&template)
            .and_then(|c| c.image.clone())
            .ok_or_else(|| Error::usage("the Job's container names no image"))?;
        let seed = pod::container(&template).and_then(worker_seed);
        out.status(first_line(&name, options, seed));
        if let Some(summary) = &options.summary {
            out.status(summary);
        }
        let docker = docker::local_daemon().await?;
        let image = ensure_image(&docker, &image, out).await?;
        let spec = Spec::of(&job);
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
            if caveat.own_rule {
                out.detail(caveat.text);
            } else {
                out.status(caveat.text);
            }
        }
        let grace = template.termination_grace_period_seconds.unwrap_or(30).max(0);
        let run = random_suffix();
        let names = PodNames::new(&name, seed);
        let dir = crate::target_dir().join("local").join(format!("{name}-{run}"));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;

        let started = Instant::now();
        let deadline = spec.deadline.map(|d| started + d);
        let mut evictions = options.evict.clone();
        evictions.sort_unstable_by(|a, b| b.cmp(a));
        let (exits, exited) = mpsc::unbounded_channel::<Exit>();
        Ok(LocalRun {
            out: *out,
            options: options.clone(),
            job,
            name,
            namespace,
            template,
            image,
            docker,
            grace,
            run,
            names,
            attempts: BTreeMap::new(),
            dir,
            started,
            deadline,
            controller: Controller::with_rules(spec, rules),
            evictions,
            evicted: BTreeSet::new(),
            pods: BTreeMap::new(),
            rows: BTreeMap::new(),
            table: PodTable::new(out),
            next_create: started,
            exits,
            exited,
            signals: Signals::new()?,
        })
    }

    /// Runs the Job to its end.
    pub async fn run(mut self) -> Result<JobReport> {
        // Every error of the loop (a container the daemon will not create
        // or start, a file that cannot be written) still goes through
        // `end`, which stops and removes what the run started.
        let outcome = self.events().await;
        self.end(outcome).await
    }

    /// The event loop: what is due now, then a wait for the next event.
    async fn events(&mut self) -> Result<()> {
        loop {
            let now = Instant::now();
            if self.deadline.is_some_and(|d| now >= d) {
                self.controller.deadline_passed();
            }
            if self.controller.finished.is_some() {
                return Ok(());
            }
            self.evictions_due(now);
            if now >= self.next_create {
                self.pods_due().await?;
            }
            self.check_timeout(now)?;
            let sleep = tokio::time::sleep_until(self.next_wake(now).into());
            tokio::select! {
                Some(exit) = self.exited.recv() => self.pod_exited(exit),
                _ = sleep => self.restarts_due().await?,
                signal = self.signals.next() => return Err(self.signalled(signal)),
            }
        }
    }

    /// `--evict` times that have come: the running pod that started first
    /// (not one waiting to restart in place) is evicted.
    fn evictions_due(&mut self, now: Instant) {
        while let Some(after) = self.evictions.last().copied().filter(|after| now >= self.started + *after) {
            self.evictions.pop();
            let victim = self
                .controller
                .active
                .keys()
                .filter_map(|n| self.pods.get(n).filter(|p| p.restart_at.is_none()).map(|p| (p.started, n.clone())))
                .min()
                .map(|(_, n)| n);
            match victim {
                Some(pod_name) => self.evict(&pod_name, after),
                None => self.out.status(format!(
                    "--evict {}: no pod is running, nothing evicted",
                    humantime::format_duration(after)
                )),
            }
        }
    }

    /// Evicts a pod as the Eviction API does: the controller told, the pod
    /// shown terminating, its container stopped in the background.
    fn evict(&mut self, pod_name: &str, after: Duration) {
        self.controller.evicted(pod_name);
        self.evicted.insert(pod_name.to_owned());
        let replacement = match self.controller.replacement_policy() {
            Some("Failed") => "its replacement waits until it has ended (podReplacementPolicy Failed)".to_owned(),
            Some(policy) => format!("replaced at once (podReplacementPolicy {policy})"),
            None => format!(
                "replaced at once (Kubernetes {} has no podReplacementPolicy: a pod being deleted is not active)",
                self.options.version
            ),
        };
        let grace = self.grace;
        self.out.status(format!(
            "--evict {}: evicting pod {pod_name} as the Eviction API does: {}SIGTERM, then SIGKILL after {grace}s \
             (terminationGracePeriodSeconds); {replacement}",
            humantime::format_duration(after),
            if self.controller.rules.disruption_conditions {
                "condition DisruptionTarget (EvictionByEvictionAPI), "
            } else {
                ""
            },
        ));
        let row = self.rows.get_mut(pod_name).expect("a row per pod");
        let before = row.clone();
        row.phase = PodPhase::Terminating;
        row.reason = Some("Evicted".into());
        let changed = row.clone();
        self.table.update(Some(&before), &changed, &self.rows);
        let (docker, id) = (self.docker.clone(), self.pods[pod_name].container.clone());
        tokio::spawn(async move {
            let options = StopContainerOptions { t: Some(grace as i32), ..Default::default() };
            let _ = docker.stop_container(&id, Some(options)).await;
        });
    }

    /// The pods the controller wants now, each created and started.
    async fn pods_due(&mut self) -> Result<()> {
        for index in self.controller.to_start() {
            self.create_pod(index).await?;
        }
        Ok(())
    }

    /// A pod for `index`: its name, folder and container, its row; started.
    async fn create_pod(&mut self, index: Option<u32>) -> Result<()> {
        let attempt = self.attempts.entry(index).or_default();
        let pod_name = self.names.name(index, *attempt, |n| self.pods.contains_key(n));
        *attempt += 1;
        let who = pod::Identity {
            name: &pod_name,
            namespace: &self.namespace,
            job: &self.name,
            run: &self.run,
            index,
            index_failures: self.controller.index_failure_count(index),
            kept: self.options.keep,
        };
        let pod_dir = self.dir.join(&pod_name);
        std::fs::create_dir_all(&pod_dir).with_context(|| format!("creating {}", pod_dir.display()))?;
        let message_file = pod_dir.join("termination-log");
        write_world_writable(&message_file)?;
        let body = pod::container_body(&self.template, &self.image, &who, &message_file, &pod_dir.join("volumes"))
            .map_err(Error::usage)?;
        // A pod's age counts from its creation, as on a cluster.
        let created_at = Instant::now();
        let options = CreateContainerOptions { name: Some(container_name(&self.run, &pod_name)), ..Default::default() };
        let created = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(|e| daemon_refused(format!("creating the container for pod {pod_name}"), e))?;
        self.controller.started(&pod_name, index);
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
            created_at: Some(created_at.duration_since(self.started).as_secs_f64()),
            finished_at: None,
        };
        let pod = LocalPod { container: created.id.clone(), message_file, started: created_at, restart_at: None };
        self.pods.insert(pod_name.clone(), pod);
        self.rows.insert(pod_name.clone(), row.clone());
        start(&self.docker, &created.id, &pod_name, &self.exits).await?;
        self.table.update(None, &row, &self.rows);
        Ok(())
    }

    /// `--timeout`: the run gives up once it has passed.
    fn check_timeout(&self, now: Instant) -> Result<()> {
        match self.options.timeout {
            Some(t) if now >= self.started + t => Err(Error::new(
                ErrorKind::Timeout,
                format!("gave up after {}: the Job had not finished", humantime::format_duration(t)),
            )
            .into()),
            _ => Ok(()),
        }
    }

    /// The next time something is due: a replacement pod, a restart, an
    /// eviction, the deadline, the timeout.
    fn next_wake(&self, now: Instant) -> Instant {
        let mut wake: Vec<Instant> = self.pods.values().filter_map(|p| p.restart_at).collect();
        wake.extend(self.deadline);
        wake.extend(self.evictions.last().map(|after| self.started + *after));
        if !self.controller.to_start().is_empty() {
            wake.push(self.next_create);
        }
        wake.extend(self.options.timeout.map(|t| self.started + t));
        wake.into_iter().min().unwrap_or(now + Duration::from_secs(3600))
    }

    /// A container exited: its pod restarts in place after the kubelet's
    /// back-off, or has ended (and may be replaced after the controller's).
    fn pod_exited(&mut self, exit: Exit) {
        let (Some(p), Some(row)) = (self.pods.get_mut(&exit.pod), self.rows.get_mut(&exit.pod)) else { return };
        let mut message = std::fs::read_to_string(&p.message_file).unwrap_or_default();
        message.truncate(4096);
        let before = row.clone();
        row.exit_code = Some(exit.exit_code);
        row.reason = Some(exit.reason().into());
        row.message = Some(message.trim().to_owned()).filter(|m| !m.is_empty());
        row.seconds = Some(p.started.elapsed().as_secs_f64());
        // Back-offs shrink with --time-scale; the deadline does not.
        let scale = self.options.time_scale.max(0.0);
        if self.controller.exited(&exit.pod, exit.exit_code) {
            let restarts = row.restarts as u32 + 1;
            p.restart_at = Some(Instant::now() + controller::restart_backoff(restarts).mul_f64(scale));
            row.last_exit_code = Some(exit.exit_code);
        } else {
            row.phase = if exit.exit_code == 0 { PodPhase::Succeeded } else { PodPhase::Failed };
            row.finished_at = Some(self.started.elapsed().as_secs_f64());
            let eviction = self.controller.evictions.get(&exit.pod).filter(|_| exit.exit_code != 0);
            if let Some(e) = eviction {
                // Marked, with whether the controller counted it.
                row.reason = Some("Evicted".into());
                row.message = Some(e.note.clone());
            }
            if exit.exit_code != 0 && eviction.is_none_or(|e| e.counted) {
                let backoff = controller::replacement_backoff(self.controller.recent_failures);
                self.next_create = Instant::now() + backoff.mul_f64(scale);
            }
        }
        let changed = row.clone();
        self.table.update(Some(&before), &changed, &self.rows);
    }

    /// Containers whose restart back-off has passed start again (unless
    /// the Job has finished meanwhile).
    async fn restarts_due(&mut self) -> Result<()> {
        let due: Vec<String> = self
            .pods
            .iter()
            .filter(|(_, p)| p.restart_at.is_some_and(|t| t <= Instant::now()))
            .map(|(n, _)| n.clone())
            .collect();
        for pod_name in due {
            let p = self.pods.get_mut(&pod_name).expect("listed above");
            p.restart_at = None;
            write_world_writable(&p.message_file)?;
            let container = p.container.clone();
            let row = self.rows.get_mut(&pod_name).expect("a row per pod");
            let before = row.clone();
            row.restarts += 1;
            row.exit_code = None;
            row.reason = None;
            let changed = row.clone();
            self.controller.restarted(&pod_name);
            if self.controller.finished.is_none() {
                start(&self.docker, &container, &pod_name, &self.exits).await?;
            }
            self.table.update(Some(&before), &changed, &self.rows);
        }
        Ok(())
    }

    /// Ctrl-C or SIGTERM: the run ends with its exit code.
    fn signalled(&self, signal: ErrorKind) -> anyhow::Error {
        let what = match signal {
            ErrorKind::Terminated => "terminated by SIGTERM",
            _ => "interrupted by Ctrl-C",
        };
        Error::new(signal, format!("{what} (job.batch/{} was running locally)", self.name)).into()
    }

    /// However the loop ended: the lingering pods stopped, the containers
    /// removed (or kept), then the error or the report.
    async fn end(mut self, outcome: Result<()>) -> Result<JobReport> {
        // A finished (or interrupted) Job's running pods are stopped: SIGTERM,
        // then SIGKILL after terminationGracePeriodSeconds.
        let active: Vec<String> =
            self.controller.active.keys().chain(self.controller.terminating.keys()).cloned().collect();
        // The interim condition, when it happens: the verdict, before the
        // lingering pods are terminated (as `watch` announces it on a cluster).
        if let Some(condition) = self.controller.interim_condition() {
            self.out.status(format!(
                "job.batch/{}: {} ({}{}); {}",
                self.name,
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
        let ended = self.started.elapsed().as_secs_f64();
        let lingering = active.iter().filter_map(|n| self.pods.get(n)).map(|p| p.container.as_str());
        stop_all(&self.docker, lingering, self.grace).await;
        self.mark_terminated(ended);
        self.table.close(&self.rows);
        self.clean_up().await;
        outcome?;
        Ok(self.report(ended, active.len()))
    }

    /// The pods the finished Job's end terminated, as the Job's status
    /// leaves them: evicted ones failed, others failed with the Job's
    /// reason, or (a complete Job's) gone.
    fn mark_terminated(&mut self, ended: f64) {
        let Some(finished) = self.controller.finished.clone() else { return };
        for pod_name in self.controller.terminated_active() {
            let Some(row) = self.rows.get_mut(&pod_name) else { continue };
            row.finished_at = Some(ended);
            if self.evicted.contains(&pod_name) {
                row.phase = PodPhase::Failed;
                row.reason = Some("Evicted".into());
                row.message = Some(self.controller.evictions.get(&pod_name).map_or_else(
                    || "still terminating when the Job finished; not counted".to_owned(),
                    |e| e.note.clone(),
                ));
            } else if finished.result == JobResult::Complete {
                // Removed, as a cluster deletes them: not part of the report.
                self.rows.remove(&pod_name);
            } else {
                row.phase = PodPhase::Failed;
                row.reason = Some(finished.reason.clone());
            }
        }
    }

    /// The one clean-up for every ending: the run's containers and folder
    /// removed, or (`--keep`) said where they are.
    async fn clean_up(&self) {
        let removed = if self.options.keep { 0 } else { remove_run(&self.docker, &self.run).await };
        if self.options.keep {
            self.out.status(format!(
                "kept {} containers (label {}={}) and {}; `cargo xtask delete --local --name {}` removes them",
                self.pods.len(),
                pod::RUN_LABEL,
                self.run,
                self.dir.display(),
                self.name,
            ));
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
            self.out.status(format!("removed the {removed} containers of this run"));
        }
    }

    /// The finished Job's report; `lingering` pods were still running at
    /// its end.
    fn report(self, ended: f64, lingering: usize) -> JobReport {
        let LocalRun { out, job, name, namespace, controller, rows, started, .. } = self;
        let finished = controller.finished.clone().expect("the loop ends finished or with an error");
        let restarts: i32 = rows.values().map(|r| r.restarts).sum();
        let (succeeded, failed) = (controller.succeeded as i32, controller.failed as i32);
        let ttl = job.spec.as_ref().and_then(|s| s.ttl_seconds_after_finished);
        if let Some(ttl) = ttl {
            out.status(format!(
                "on a cluster, job.batch/{name} and its pods would be deleted {} after it finished \
                 (ttlSecondsAfterFinished)",
                crate::report::human_seconds(ttl as f64)
            ));
        }
        JobReport {
            name,
            namespace,
            result: finished.result,
            // An empty Complete reason (through 1.30) reads as `watch` reads it.
            reason: finished.report_reason(),
            message: finished.message.clone(),
            succeeded,
            completions: controller.spec.completions as i32,
            failed_pods: failed,
            seconds: Some(started.elapsed().as_secs_f64()),
            runs: succeeded + failed + restarts,
            failed_runs: failed + restarts,
            configured_probability: crate::cluster::status::configured_probability(&job),
            pods: rows.into_values().collect(),
            // The local controller adds its conditions as it decides the end.
            conditions: controller.conditions().into_iter().map(|c| JobCondition { at: Some(ended), ..c }).collect(),
            completed_indexes: controller.completed_indexes(),
            failed_indexes: controller.failed_indexes(),
            terminating: controller.terminating_at_end(lingering),
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
        }
    }
}

/// The run's first line: the local engine and whose rules, the time
/// scale, and how pods are named.
fn first_line(name: &str, options: &Options, seed: Option<u64>) -> String {
    format!(
        "running job.batch/{name} on the local Docker engine, not a cluster, by the rules of the Kubernetes {} Job \
         controller{}{}{}",
        options.version,
        if options.version == versions::NEWEST { " (the newest; --kube-version X.Y for another)" } else { "" },
        if options.time_scale == 1.0 {
            String::new()
        } else {
            format!("; back-offs × {} (--time-scale)", options.time_scale)
        },
        match seed {
            Some(seed) => format!(
                "; pod names drawn from WORKER_SEED {seed} and each pod's index and attempt, so the same seed \
                 gives each pod the same name and draw (a cluster names pods at random)"
            ),
            None => String::new(),
        }
    )
}

/// A file the container's user (whoever it is) can write.
fn write_world_writable(path: &Path) -> Result<()> {
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
