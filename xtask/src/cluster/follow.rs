//! `cargo xtask logs -f`: every pod of the Job as it appears, each
//! container's log streamed as it is written (`follow=true`), each line
//! prefixed by its pod, until the Job is Complete or Failed and every
//! stream has ended.
//!
//! Pods come from a watch on the Job's own selector; the Job's end from a
//! watch on the Job. A container restarted in its pod (restartPolicy
//! OnFailure) is a new run, followed when it starts; a run that ended
//! before it was seen is read as the `previous` one (the kubelet keeps only
//! that one). When the Job ends, a fresh list of its pods catches up on any
//! the pod watch had not shown yet. Ctrl-C ends it cleanly (exit 130).

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context, Result};
use futures_util::{AsyncBufReadExt, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, ListParams, LogParams};
use kube::runtime::watcher;
use serde::Serialize;
use tokio::sync::{Semaphore, mpsc};

use super::job_events::{JobEvents, Update, job_events};
use super::status::{is_job_complete, is_job_failed};
use super::{Attempt, Cluster, explain};
use crate::Error;
use crate::choices::Output;
use crate::local::Signals;
use crate::report::Reporter;

/// Log streams open at once: a Job's running pods, and the finished ones
/// read when following starts, without flooding the API server (kubectl's
/// `--max-log-requests` is 5 for a selector; each of ours ends with its
/// container).
const MAX_STREAMS: usize = 32;

/// One line of a container's log, as it arrives.
#[derive(Serialize)]
pub struct FollowedLine {
    pub pod: String,
    pub container: String,
    /// The container's run in its pod: 0, then 1 after its first restart.
    pub restart: i32,
    pub line: String,
    /// The aligned (and, on a terminal, coloured) prefix.
    #[serde(skip)]
    prefix: String,
}

impl std::fmt::Display for FollowedLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.prefix, self.line)
    }
}

/// What a stream task sends.
enum Piece {
    Line { pod: String, container: String, restart: i32, line: String, several: bool },
    Ended { pod: String, error: Option<String> },
}

/// Follows the Job's pods to its end.
pub async fn follow(cluster: &Cluster, name: &str, namespace: &str, out: &Reporter) -> Result<()> {
    let JobEvents { selector, pods, mut events, .. } = job_events(cluster, name, namespace).await?;
    let attempt = |verb, resource| Attempt { verb, resource, namespace: Some(namespace) };
    // A followed log is quiet as long as its container is: no read timeout
    // on the streams (the watches have their own server-side timeout).
    let mut config = cluster.config.clone();
    config.read_timeout = None;
    let log_api: Api<Pod> =
        Api::namespaced(kube::Client::try_from(config).context("setting up the client for log streams")?, namespace);

    let mut signals = Signals::new()?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut followed =
        Followed { runs: HashMap::new(), open: 0, api: log_api, tx, limit: Arc::new(Semaphore::new(MAX_STREAMS)) };
    let mut printer = Printer::new(out);
    let mut ended: Option<String> = None;
    out.status(format!(
        "following the logs of job.batch/{name} in {namespace}: every pod as it appears, until the Job ends"
    ));
    loop {
        if let Some(how) = &ended
            && followed.open == 0
        {
            out.status(format!("job.batch/{name} {how}; every log stream has ended"));
            return Ok(());
        }
        tokio::select! {
            kind = signals.next() => {
                return Err(Error::new(kind, format!("stopped following the logs of job.batch/{name}")).into());
            }
            Some(piece) = rx.recv() => match piece {
                Piece::Line { pod, container, restart, line, several } => {
                    out.result(&printer.line(pod, container, restart, line, several));
                }
                Piece::Ended { pod, error } => {
                    followed.open -= 1;
                    if let Some(error) = error {
                        out.warn(format!("pod {pod}: its log stream ended early: {error}"));
                    }
                }
            },
            next = events.next(), if ended.is_none() => match next {
                None => anyhow::bail!("the watch streams ended"),
                Some(Ok(Update::Job(e))) => match *e {
                    watcher::Event::Apply(j) | watcher::Event::InitApply(j) => {
                        let how = is_job_complete(&j).map(|_| "is Complete".to_owned())
                            .or_else(|| is_job_failed(&j).map(|(reason, _)| format!("has Failed ({reason})")));
                        if let Some(how) = how {
                            // The pod watch may lag the Job's: a fresh list
                            // catches up on pods not seen yet.
                            let list = pods.list(&ListParams::default().labels(&selector))
                                .await
                                .map_err(|e| explain(cluster, &attempt("list", "pods"), &e))?;
                            for pod in &list.items {
                                followed.start(pod);
                            }
                            ended = Some(how);
                        }
                    }
                    watcher::Event::Delete(_) => {
                        return Err(Error::remote(format!("job.batch/{name} was deleted while its logs were followed")).into());
                    }
                    watcher::Event::Init | watcher::Event::InitDone => {}
                },
                Some(Ok(Update::Pod(e))) => match *e {
                    watcher::Event::Apply(p) | watcher::Event::InitApply(p) => followed.start(&p),
                    watcher::Event::Delete(_) | watcher::Event::Init | watcher::Event::InitDone => {}
                },
                Some(Err((_, e))) => {
                    if let watcher::Error::InitialListFailed(kube::Error::Api(s))
                    | watcher::Error::WatchStartFailed(kube::Error::Api(s))
                    | watcher::Error::WatchFailed(kube::Error::Api(s)) = &e
                        && matches!(s.code, 401 | 403)
                    {
                        let err = kube::Error::Api(s.clone());
                        return Err(explain(cluster, &attempt("watch", "pods or jobs"), &err).into());
                    }
                    out.warn(format!("a watch was interrupted ({e}); resuming"));
                }
            },
        }
    }
}

/// The log streams started, per container.
struct Followed {
    /// (pod, container) -> the last run whose log was asked for.
    runs: HashMap<(String, String), i32>,
    /// Streams not ended yet.
    open: usize,
    api: Api<Pod>,
    tx: mpsc::UnboundedSender<Piece>,
    limit: Arc<Semaphore>,
}

impl Followed {
    /// Starts what this pod's containers have that is not followed yet. A
    /// container's run `restartCount` exists once it is running or has
    /// terminated; while it waits (ContainerCreating, a back-off), the run
    /// before it is the newest there is.
    fn start(&mut self, pod: &Pod) {
        let name = pod.name_any();
        let statuses = pod.status.as_ref().and_then(|s| s.container_statuses.clone()).unwrap_or_default();
        let several = statuses.len() > 1;
        for c in statuses {
            let started = c.state.as_ref().is_some_and(|s| s.running.is_some() || s.terminated.is_some());
            let newest = if started { c.restart_count } else { c.restart_count - 1 };
            let key = (name.clone(), c.name.clone());
            let done = self.runs.get(&key).copied().unwrap_or(-1);
            if newest <= done {
                continue;
            }
            // (run, previous): the run before the newest when it was never
            // read (the kubelet keeps that one), then the newest.
            let mut steps = Vec::new();
            if started && c.restart_count > 0 && done < c.restart_count - 1 {
                steps.push((c.restart_count - 1, true));
            }
            steps.push((newest, !started));
            self.runs.insert(key, newest);
            self.open += 1;
            let (api, tx, limit) = (self.api.clone(), self.tx.clone(), self.limit.clone());
            let (pod, container) = (name.clone(), c.name.clone());
            tokio::spawn(async move {
                let _permit = limit.acquire_owned().await;
                let mut error = None;
                for (restart, previous) in steps {
                    let params = LogParams {
                        container: Some(container.clone()),
                        follow: !previous,
                        previous,
                        ..LogParams::default()
                    };
                    let streamed = async {
                        let mut lines = api.log_stream(&pod, &params).await?.lines();
                        while let Some(line) = lines.try_next().await? {
                            let piece =
                                Piece::Line { pod: pod.clone(), container: container.clone(), restart, line, several };
                            if tx.send(piece).is_err() {
                                break;
                            }
                        }
                        Ok::<_, anyhow::Error>(())
                    };
                    if let Err(e) = streamed.await {
                        error = Some(crate::one_line(&crate::error_text(e.as_ref())));
                    }
                }
                let _ = tx.send(Piece::Ended { pod, error });
            });
        }
    }
}

/// The prefixes: pod names padded to the longest seen, coloured by pod
/// when stdout is a terminal and NO_COLOR is unset.
struct Printer {
    width: usize,
    color: bool,
}

impl Printer {
    fn new(out: &Reporter) -> Printer {
        Printer { width: 0, color: out.output == Output::Text && crate::report::color_on(&std::io::stdout()) }
    }

    fn line(&mut self, pod: String, container: String, restart: i32, line: String, several: bool) -> FollowedLine {
        let mut label = if several { format!("{pod}/{container}") } else { pod.clone() };
        if restart > 0 {
            label.push_str(&format!(" #{restart}"));
        }
        self.width = self.width.max(label.chars().count());
        let padded = format!("{label:<width$} | ", width = self.width);
        let prefix = if self.color {
            // Six colours that read on dark and light terminals, by pod.
            const COLORS: [u8; 6] = [31, 32, 33, 34, 35, 36];
            let sum = pod.bytes().fold(0usize, |a, b| a.wrapping_mul(31).wrapping_add(b as usize));
            format!("\x1b[{}m{padded}\x1b[0m", COLORS[sum % COLORS.len()])
        } else {
            padded
        };
        FollowedLine { pod, container, restart, line, prefix }
    }
}
