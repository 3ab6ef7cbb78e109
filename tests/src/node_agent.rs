//! The kubelet's part for the real control plane (`crate::control_plane`):
//! test support, not product. It registers one Node, and runs each pod the
//! scheduler binds to it as a Docker container on the machine's daemon,
//! reporting status the way a 1.20 kubelet does.
//!
//! It owns the Node object, the pods' containers (labelled so that all it
//! made can be found and cleaned up), their emptyDir volumes and
//! termination-message files on the host, the pods' status, the final
//! deletion of pod objects, and the HTTPS endpoint the apiserver proxies
//! `pods/log` to. What a pod may ask for beyond that (init containers, more
//! than one container, volumes other than emptyDir, probes) it does not do.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::models::{ContainerCreateBody, HostConfig, ImageInspect};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, ListContainersOptions, LogsOptions, RemoveContainerOptions,
    StopContainerOptions,
};
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use k8s_openapi::api::core::v1::{Node, Pod, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};
use tokio::sync::watch;
use xtask::local::pod::parse_quantity;

use xtask::image_ref::ImageRef;

use crate::tls::ServerCert;

/// The one node's name.
pub const NODE_NAME: &str = "node-agent-1";
/// The Docker label on every container the agent makes; its value is
/// `PID-STARTTIME` of the agent's process.
pub const LABEL: &str = "job-test.node-agent";
/// What the agent reports as its kubelet version.
const KUBELET_VERSION: &str = "v1.20.2";
/// The kubelet's restart back-off cap.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

type Body = UnsyncBoxBody<Bytes, std::io::Error>;

pub struct NodeAgent {
    pub node_name: String,
    /// The value of LABEL on this agent's containers.
    pub id: String,
    /// The HTTPS port of `/containerLogs` (the node's kubelet port).
    pub port: u16,
    pub dir: PathBuf,
    shared: Arc<Shared>,
    handle: tokio::runtime::Handle,
}

struct Shared {
    client: kube::Client,
    docker: Docker,
    id: String,
    dir: PathBuf,
    /// The pods being run or kept, by UID.
    pods: Mutex<HashMap<String, PodHandle>>,
    /// UIDs whose pods are finished with: a late watch event must not run
    /// them again.
    done: Mutex<HashSet<String>>,
    /// Registry host -> (username, password), for pulls.
    auths: Mutex<HashMap<String, (String, String)>>,
    /// The first restart back-off (the kubelet's is 10 s).
    backoff: Mutex<Duration>,
}

struct PodHandle {
    namespace: String,
    name: String,
    container: String,
    /// The Docker containers of the pod's runs, oldest first.
    runs: Arc<Mutex<Vec<String>>>,
    signal: watch::Sender<Signal>,
}

/// What the API says of a pod the agent runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Signal {
    Live,
    /// It has a deletionTimestamp: stop it within the grace period, then
    /// delete the object.
    Deleting {
        grace: i64,
    },
    /// The object is gone (deleted with grace 0, or its namespace went):
    /// stop and remove what is left.
    Gone {
        grace: i64,
    },
}

impl NodeAgent {
    /// Registers the node and starts serving it; runs on the control
    /// plane's runtime, which it keeps using for its tasks.
    pub(crate) async fn start(client: kube::Client, cert: ServerCert, dir: PathBuf) -> NodeAgent {
        std::fs::create_dir_all(dir.join("pods")).expect("creating the node agent's directory");
        let docker = Docker::connect_with_local_defaults().expect("connecting to the Docker daemon");
        // The daemon here speaks an older API than bollard's default.
        let docker = docker.negotiate_version().await.expect("negotiating the Docker API version");
        // Waits and followed logs last as long as a container runs.
        let docker = docker.with_timeout(Duration::from_secs(600));
        remove_orphans(&docker).await;

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binding the node agent's port");
        let port = listener.local_addr().expect("the node agent's address").port();
        let id = format!("{}-{}", std::process::id(), jiff::Timestamp::now().as_second());
        let shared = Arc::new(Shared {
            client,
            docker,
            id: id.clone(),
            dir: dir.clone(),
            pods: Mutex::new(HashMap::new()),
            done: Mutex::new(HashSet::new()),
            auths: Mutex::new(HashMap::new()),
            backoff: Mutex::new(Duration::from_secs(10)),
        });
        register_node(&shared.client, port).await;
        let label = format!("{LABEL}={id}");
        crate::at_exit(move || remove_at_exit(&label));
        tokio::spawn(serve(listener, cert, shared.clone()));
        tokio::spawn(watch_pods(shared.clone()));
        NodeAgent { node_name: NODE_NAME.to_owned(), id, port, dir, shared, handle: tokio::runtime::Handle::current() }
    }

    /// Credentials for pulls from `server` (a registry host such as
    /// `127.0.0.1:5000`), used in addition to the pods' imagePullSecrets.
    pub fn set_registry_auth(&self, server: &str, username: &str, password: &str) {
        self.shared.auths.lock().unwrap().insert(server.to_owned(), (username.to_owned(), password.to_owned()));
    }

    /// The first restart back-off (then doubling, capped at 5 minutes).
    pub fn set_restart_backoff(&self, backoff: Duration) {
        *self.shared.backoff.lock().unwrap() = backoff;
    }

    /// The names of the Docker containers this agent has now.
    pub fn containers(&self) -> Vec<String> {
        let filters = HashMap::from([("label".to_owned(), vec![format!("{LABEL}={}", self.id)])]);
        let options = ListContainersOptions { all: true, filters: Some(filters), ..Default::default() };
        let list = self.handle.block_on(self.shared.docker.list_containers(Some(options))).expect("listing containers");
        list.into_iter()
            .flat_map(|c| c.names.unwrap_or_default())
            .map(|n| n.trim_start_matches('/').to_owned())
            .collect()
    }
}

/// Whether a process exists (EPERM: it does, but is not ours).
/// The images the agent pulled in this process: removed when it exits,
/// as tests remove what they create.
static PULLED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// What `docker rmi` takes for a pulled reference: a digest-pinned one
/// pulls as `repo@digest` (no tag), so its tag is dropped. Never an image
/// ID, which the user's own tags of the same content share.
fn removable_reference(image: &str) -> String {
    ImageRef::parse(image).map_or_else(|_| image.to_owned(), |r| r.pull_reference().to_string())
}

/// At the test process's exit (no runtime left to use): the containers
/// with this `LABEL=id` and the pulled images go, through the Docker CLI.
fn remove_at_exit(label: &str) {
    let docker = |args: &[&str]| std::process::Command::new("docker").args(args).output().ok();
    if let Some(out) = docker(&["ps", "--all", "--quiet", "--filter", &format!("label={label}")]) {
        let ids = String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        if !ids.is_empty() {
            let mut args = vec!["rm", "--force"];
            args.extend(ids.iter().map(String::as_str));
            docker(&args);
        }
    }
    let images = std::mem::take(&mut *PULLED.lock().unwrap_or_else(|e| e.into_inner()));
    if !images.is_empty() {
        let mut args = vec!["rmi", "--force"];
        args.extend(images.iter().map(String::as_str));
        docker(&args);
    }
}

pub fn process_alive(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 checks existence and sends nothing.
    unsafe { libc::kill(pid, 0) == 0 || *libc::__errno_location() == libc::EPERM }
}

/// Containers left by agents whose test process died (killed, so nothing
/// cleaned up after it).
async fn remove_orphans(docker: &Docker) {
    let filters = HashMap::from([("label".to_owned(), vec![LABEL.to_owned()])]);
    let options = ListContainersOptions { all: true, filters: Some(filters), ..Default::default() };
    let Ok(list) = docker.list_containers(Some(options)).await else { return };
    for c in list {
        let owner = c.labels.as_ref().and_then(|l| l.get(LABEL)).and_then(|v| v.split('-').next()?.parse().ok());
        if owner.is_some_and(|pid| !process_alive(pid)) {
            if let Some(id) = c.id {
                let _ = docker
                    .remove_container(&id, Some(RemoveContainerOptions { force: true, ..Default::default() }))
                    .await;
            }
        }
    }
}

async fn register_node(client: &kube::Client, port: u16) {
    let nodes: Api<Node> = Api::all(client.clone());
    let node = json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": { "name": NODE_NAME, "labels": {
            "kubernetes.io/hostname": NODE_NAME, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64" } },
    });
    let node: Node = serde_json::from_value(node).expect("a Node object");
    nodes.create(&PostParams::default(), &node).await.expect("registering the node");
    // The TaintNodesByCondition admission plugin gives a new node the
    // not-ready taint; the node lifecycle controller (not run here) would
    // lift it once the node reports Ready.
    nodes
        .patch(NODE_NAME, &PatchParams::default(), &Patch::Merge(json!({ "spec": { "taints": null } })))
        .await
        .expect("removing the new node's taints");
    let now = now();
    let condition = |type_: &str, status: &str, reason: &str, message: &str| {
        json!({ "type": type_, "status": status, "reason": reason, "message": message,
                "lastHeartbeatTime": now, "lastTransitionTime": now })
    };
    let resources = json!({ "cpu": "4", "memory": "16Gi", "pods": "110", "ephemeral-storage": "100Gi" });
    let status = json!({ "status": {
        "capacity": resources, "allocatable": resources,
        "conditions": [
            condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
        ],
        "addresses": [{ "type": "InternalIP", "address": "127.0.0.1" }, { "type": "Hostname", "address": NODE_NAME }],
        "daemonEndpoints": { "kubeletEndpoint": { "Port": port } },
        "nodeInfo": {
            "machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": "", "osImage": "job-test node agent",
            "containerRuntimeVersion": "docker://20.10", "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": KUBELET_VERSION, "operatingSystem": "linux", "architecture": "amd64",
        },
    }});
    nodes
        .patch_status(NODE_NAME, &PatchParams::default(), &Patch::Merge(status))
        .await
        .expect("setting the node's status");
}

/// Follows the pods bound to the node: starts new ones, passes deletions on.
async fn watch_pods(shared: Arc<Shared>) {
    let api: Api<Pod> = Api::all(shared.client.clone());
    let config = watcher::Config::default().fields(&format!("spec.nodeName={NODE_NAME}"));
    let mut events = watcher(api, config).default_backoff().boxed();
    // The UIDs of a relist: pods missing from it were deleted meanwhile.
    let mut listed: Option<HashSet<String>> = None;
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Init) => listed = Some(HashSet::new()),
            Ok(watcher::Event::InitApply(pod)) => {
                if let (Some(listed), Some(uid)) = (&mut listed, &pod.metadata.uid) {
                    listed.insert(uid.clone());
                }
                shared.observe(pod);
            }
            Ok(watcher::Event::InitDone) => {
                if let Some(listed) = listed.take() {
                    let known: Vec<String> = shared.pods.lock().unwrap().keys().cloned().collect();
                    for uid in known.into_iter().filter(|u| !listed.contains(u)) {
                        shared.gone(&uid, 0);
                    }
                }
            }
            Ok(watcher::Event::Apply(pod)) => shared.observe(pod),
            Ok(watcher::Event::Delete(pod)) => {
                let grace = pod.metadata.deletion_grace_period_seconds.unwrap_or(0);
                shared.gone(pod.metadata.uid.as_deref().unwrap_or_default(), grace);
            }
            // The watcher retries with back-off by itself.
            Err(_) => {}
        }
    }
}

impl Shared {
    fn observe(self: &Arc<Self>, pod: Pod) {
        let Some(uid) = pod.metadata.uid.clone() else { return };
        let deleting = pod.metadata.deletion_timestamp.is_some();
        let grace = pod
            .metadata
            .deletion_grace_period_seconds
            .or_else(|| pod.spec.as_ref()?.termination_grace_period_seconds)
            .unwrap_or(30);
        let mut pods = self.pods.lock().unwrap();
        if let Some(handle) = pods.get(&uid) {
            if deleting {
                handle.signal.send_if_modified(|s| {
                    let live = *s == Signal::Live;
                    if live {
                        *s = Signal::Deleting { grace };
                    }
                    live
                });
            }
            return;
        }
        if self.done.lock().unwrap().contains(&uid) {
            return;
        }
        let value = serde_json::to_value(&pod).expect("a Pod as JSON");
        let phase = value["status"]["phase"].as_str().unwrap_or_default();
        if phase == "Succeeded" || phase == "Failed" {
            // Finished before this agent saw it: nothing to run.
            return;
        }
        let (signal, receiver) = watch::channel(if deleting { Signal::Deleting { grace } } else { Signal::Live });
        let runs = Arc::new(Mutex::new(Vec::new()));
        let namespace = value["metadata"]["namespace"].as_str().unwrap_or_default().to_owned();
        let name = value["metadata"]["name"].as_str().unwrap_or_default().to_owned();
        let container = value["spec"]["containers"][0]["name"].as_str().unwrap_or_default().to_owned();
        pods.insert(uid.clone(), PodHandle { namespace, name, container, runs: runs.clone(), signal });
        let run = PodRun::new(self.clone(), value, runs);
        tokio::spawn(run.run(receiver));
    }

    fn gone(&self, uid: &str, grace: i64) {
        if let Some(handle) = self.pods.lock().unwrap().get(uid) {
            handle.signal.send_if_modified(|s| {
                let first = !matches!(s, Signal::Gone { .. });
                if first {
                    *s = Signal::Gone { grace };
                }
                first
            });
        }
    }

    fn backoff(&self) -> Duration {
        *self.backoff.lock().unwrap()
    }
}

/// Waits until the pod is no longer just live.
async fn until_signalled(receiver: &mut watch::Receiver<Signal>) -> Signal {
    loop {
        let signal = *receiver.borrow_and_update();
        if signal != Signal::Live {
            return signal;
        }
        if receiver.changed().await.is_err() {
            return Signal::Gone { grace: 0 };
        }
    }
}

/// One pod on the node, from its first status to its deletion.
struct PodRun {
    shared: Arc<Shared>,
    pod: Value,
    namespace: String,
    name: String,
    uid: String,
    /// The container spec (the pod's first).
    container: Value,
    image: String,
    dir: PathBuf,
    runs: Arc<Mutex<Vec<String>>>,
    // The status as last reported.
    start_time: String,
    phase: &'static str,
    state: Value,
    last_state: Value,
    restart_count: u32,
    container_id: Option<String>,
    image_id: String,
    transitions: HashMap<&'static str, (bool, String)>,
}

impl PodRun {
    fn new(shared: Arc<Shared>, pod: Value, runs: Arc<Mutex<Vec<String>>>) -> PodRun {
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        let uid = text(&pod["metadata"]["uid"]);
        let container = pod["spec"]["containers"][0].clone();
        let dir = shared.dir.join("pods").join(&uid);
        PodRun {
            namespace: text(&pod["metadata"]["namespace"]),
            name: text(&pod["metadata"]["name"]),
            image: with_tag(container["image"].as_str().unwrap_or_default()),
            uid,
            container,
            dir,
            runs,
            start_time: now(),
            phase: "Pending",
            state: json!({ "waiting": { "reason": "ContainerCreating" } }),
            last_state: json!({}),
            restart_count: 0,
            container_id: None,
            image_id: String::new(),
            transitions: HashMap::new(),
            shared,
            pod,
        }
    }

    async fn run(mut self, mut receiver: watch::Receiver<Signal>) {
        let (signal, running) = self.run_until_signalled(&mut receiver).await;
        self.end(signal, running).await;
        self.shared.done.lock().unwrap().insert(self.uid.clone());
        self.shared.pods.lock().unwrap().remove(&self.uid);
    }

    /// Runs the pod's container (again, as the restart policy says) until
    /// the API deletes the pod; returns how, and the container still
    /// running then.
    async fn run_until_signalled(&mut self, receiver: &mut watch::Receiver<Signal>) -> (Signal, Option<String>) {
        self.report().await;
        if let Err(message) = self.prepare_volumes() {
            self.waiting("CreateContainerConfigError", &message);
            self.report().await;
            return (until_signalled(receiver).await, None);
        }
        let mut pull_backoff = self.shared.backoff();
        let image = loop {
            let pulled = tokio::select! {
                pulled = self.ensure_image() => pulled,
                signal = until_signalled(receiver) => return (signal, None),
            };
            match pulled {
                Ok(image) => break image,
                Err((reason, message)) => {
                    self.waiting(reason, &message);
                    self.report().await;
                    if reason == "ErrImageNeverPull" {
                        return (until_signalled(receiver).await, None);
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(pull_backoff) => {}
                        signal = until_signalled(receiver) => return (signal, None),
                    }
                    self.waiting("ImagePullBackOff", &format!("Back-off pulling image \"{}\"", self.image));
                    self.report().await;
                    pull_backoff = (pull_backoff * 2).min(MAX_BACKOFF);
                }
            }
        };
        self.image_id = match image.repo_digests.as_ref().and_then(|d| d.first()) {
            Some(digest) => format!("docker-pullable://{digest}"),
            None => format!("docker://{}", image.id.clone().unwrap_or_default()),
        };

        // The kubelet restarts a failed container at once the first time,
        // then waits 10 s, 20 s, 40 s... (at most 5 minutes) after each exit.
        let mut backoff: Option<Duration> = None;
        loop {
            let body = match self.container_body(&image).await {
                Ok(body) => body,
                Err(message) => {
                    self.waiting("CreateContainerConfigError", &message);
                    self.report().await;
                    return (until_signalled(receiver).await, None);
                }
            };
            let id = match self.create_and_start(body).await {
                Ok(id) => id,
                Err(terminated) => {
                    self.state = json!({ "terminated": terminated });
                    if self.runs.lock().unwrap().is_empty() {
                        self.report().await;
                        return (until_signalled(receiver).await, None);
                    }
                    String::new()
                }
            };
            if !id.is_empty() {
                tokio::select! {
                    _ = self.wait_for_exit(&id) => {}
                    signal = until_signalled(receiver) => return (signal, Some(id)),
                }
                self.state = json!({ "terminated": self.terminated(&id).await });
            }
            let exit_code = self.state["terminated"]["exitCode"].as_i64().unwrap_or(1);
            let restart = match self.pod["spec"]["restartPolicy"].as_str().unwrap_or("Always") {
                "Never" => false,
                "OnFailure" => exit_code != 0,
                _ => true,
            };
            if !restart {
                self.phase = if exit_code == 0 { "Succeeded" } else { "Failed" };
                self.report().await;
                return (until_signalled(receiver).await, None);
            }
            // The exit is reported before the restart, with the pod still Running.
            self.phase = "Running";
            self.report().await;
            if let Some(delay) = backoff {
                let terminated = self.state.clone();
                let message = format!(
                    "back-off {} restarting failed container={} pod={}_{}({})",
                    go_duration(delay),
                    self.container["name"].as_str().unwrap_or_default(),
                    self.name,
                    self.namespace,
                    self.uid
                );
                self.waiting("CrashLoopBackOff", &message);
                self.last_state = terminated;
                self.report().await;
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    signal = until_signalled(receiver) => return (signal, None),
                }
                self.state = json!({ "terminated": self.last_state["terminated"].clone() });
            }
            backoff = Some(match backoff {
                None => self.shared.backoff(),
                Some(delay) => (delay * 2).min(MAX_BACKOFF),
            });
            self.last_state = self.state.clone();
            self.restart_count += 1;
        }
    }

    /// The pod is being deleted (or is gone): stop its container within the
    /// grace period, report the end, remove what the pod had on the node,
    /// and, if the object is still there, delete it for good.
    async fn end(&mut self, signal: Signal, running: Option<String>) {
        let docker = self.shared.docker.clone();
        let grace = match signal {
            Signal::Deleting { grace } | Signal::Gone { grace } => grace,
            Signal::Live => 0,
        };
        if let Some(id) = running {
            let t = i32::try_from(grace.max(0)).unwrap_or(i32::MAX);
            let _ = docker.stop_container(&id, Some(StopContainerOptions { t: Some(t), signal: None })).await;
            if matches!(signal, Signal::Deleting { .. }) {
                self.state = json!({ "terminated": self.terminated(&id).await });
                let exit_code = self.state["terminated"]["exitCode"].as_i64().unwrap_or(1);
                if self.pod["spec"]["restartPolicy"] == "Never" {
                    self.phase = if exit_code == 0 { "Succeeded" } else { "Failed" };
                }
                self.report().await;
            }
        }
        let runs = self.runs.lock().unwrap().clone();
        for id in runs {
            let options = RemoveContainerOptions { force: true, v: true, ..Default::default() };
            let _ = docker.remove_container(&id, Some(options)).await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        if matches!(signal, Signal::Deleting { .. }) {
            let pods: Api<Pod> = Api::namespaced(self.shared.client.clone(), &self.namespace);
            let params = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(Preconditions { uid: Some(self.uid.clone()), resource_version: None }),
                ..Default::default()
            };
            // 404 or a UID conflict: it is gone already.
            let _ = pods.delete(&self.name, &params).await;
        }
    }

    fn waiting(&mut self, reason: &str, message: &str) {
        self.state = json!({ "waiting": { "reason": reason, "message": message } });
    }

    /// The pod's status through pods/status, shaped as a kubelet writes it.
    async fn report(&mut self) {
        let running = self.state.get("running").is_some();
        let terminal = self.phase == "Succeeded" || self.phase == "Failed";
        let container_name = self.container["name"].as_str().unwrap_or_default().to_owned();
        let not_ready = |this: &mut Self, type_: &'static str| {
            let mut c = this.condition(type_, running);
            if !running {
                c["reason"] = json!(if terminal { "PodCompleted" } else { "ContainersNotReady" });
                if !terminal {
                    c["message"] = json!(format!("containers with unready status: [{container_name}]"));
                }
            }
            c
        };
        let mut conditions = vec![self.condition("Initialized", true)];
        conditions.push(not_ready(self, "Ready"));
        conditions.push(not_ready(self, "ContainersReady"));
        if let Some(scheduled) =
            self.pod["status"]["conditions"].as_array().and_then(|c| c.iter().find(|c| c["type"] == "PodScheduled"))
        {
            conditions.push(scheduled.clone());
        }
        let mut container_status = json!({
            "name": container_name,
            "state": self.state,
            "lastState": self.last_state,
            "ready": running,
            "started": running,
            "restartCount": self.restart_count,
            "image": self.image,
            "imageID": self.image_id,
        });
        if let Some(id) = &self.container_id {
            container_status["containerID"] = json!(format!("docker://{id}"));
        }
        let patch = json!({
            // A precondition: a pod recreated under the same name is not this one.
            "metadata": { "uid": self.uid },
            "status": {
                "phase": self.phase,
                "conditions": conditions,
                "hostIP": "127.0.0.1",
                "podIP": "127.0.0.1",
                "podIPs": [{ "ip": "127.0.0.1" }],
                "startTime": self.start_time,
                "containerStatuses": [container_status],
            },
        });
        let pods: Api<Pod> = Api::namespaced(self.shared.client.clone(), &self.namespace);
        if let Err(e) = pods.patch_status(&self.name, &PatchParams::default(), &Patch::Merge(patch)).await {
            let gone = matches!(&e, kube::Error::Api(s) if s.code == 404 || s.code == 409);
            if !gone {
                eprintln!("node agent: status of pod {}/{}: {e}", self.namespace, self.name);
            }
        }
    }

    /// A condition, with its lastTransitionTime kept while it holds.
    fn condition(&mut self, type_: &'static str, status: bool) -> Value {
        let entry = self.transitions.entry(type_).or_insert_with(|| (status, now()));
        if entry.0 != status {
            *entry = (status, now());
        }
        json!({ "type": type_, "status": if status { "True" } else { "False" },
                "lastProbeTime": null, "lastTransitionTime": entry.1 })
    }

    /// emptyDir volumes: a host directory each, for the pod's lifetime,
    /// writable by the pod's user (fsGroup as its group, setgid, as the
    /// kubelet does).
    fn prepare_volumes(&self) -> Result<(), String> {
        let security = &self.pod["spec"]["securityContext"];
        let fs_group = security["fsGroup"].as_u64().map(|g| g as u32);
        let user = self.container["securityContext"]["runAsUser"]
            .as_u64()
            .or_else(|| security["runAsUser"].as_u64())
            .map(|u| u as u32);
        for volume in self.pod["spec"]["volumes"].as_array().into_iter().flatten() {
            if volume.get("emptyDir").is_none() {
                continue;
            }
            let dir = self.dir.join("volumes").join(volume["name"].as_str().unwrap_or_default());
            std::fs::create_dir_all(&dir).map_err(|e| format!("creating emptyDir {}: {e}", dir.display()))?;
            // Not root (a developer's machine): the mode alone lets the pod write.
            let _ = std::os::unix::fs::chown(&dir, user, fs_group);
            let mode = if fs_group.is_some() { 0o2777 } else { 0o777 };
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode))
                .map_err(|e| format!("chmod emptyDir {}: {e}", dir.display()))?;
        }
        Ok(())
    }

    /// The image on the daemon, pulled when the pull policy asks.
    async fn ensure_image(&self) -> Result<ImageInspect, (&'static str, String)> {
        let docker = &self.shared.docker;
        let local = docker.inspect_image(&self.image).await.ok();
        let policy = self.container["imagePullPolicy"].as_str().unwrap_or("IfNotPresent");
        let pull = match policy {
            "Never" => false,
            // An image named without a registry host (Docker Hub) that is on
            // the daemon was built there for the test: pulling it would
            // fail. Images from a registry are pulled, as a kubelet does.
            "Always" => local.is_none() || registry_host(&self.image).is_some(),
            _ => local.is_none(),
        };
        if !pull {
            return local.ok_or_else(|| {
                (
                    "ErrImageNeverPull",
                    format!("Container image \"{}\" is not present with pull policy of Never", self.image),
                )
            });
        }
        let credentials = self.credentials().await;
        let options = CreateImageOptions { from_image: Some(self.image.clone()), ..Default::default() };
        let mut progress = docker.create_image(Some(options), None, credentials);
        while let Some(step) = progress.next().await {
            if let Err(e) = step {
                return Err(("ErrImagePull", format!("rpc error: code = Unknown desc = {}", daemon_error(&e))));
            }
        }
        PULLED.lock().unwrap().insert(removable_reference(&self.image));
        docker
            .inspect_image(&self.image)
            .await
            .map_err(|e| ("ErrImagePull", format!("the pulled image is not on the daemon: {}", daemon_error(&e))))
    }

    /// Credentials for the image's registry: the agent's own, else the
    /// pod's imagePullSecrets (kubernetes.io/dockerconfigjson).
    async fn credentials(&self) -> Option<DockerCredentials> {
        let host = registry_host(&self.image).unwrap_or_else(|| "docker.io".to_owned());
        let credentials = |username: String, password: String| DockerCredentials {
            username: Some(username),
            password: Some(password),
            serveraddress: Some(host.clone()),
            ..Default::default()
        };
        let known = self.shared.auths.lock().unwrap().get(&host).cloned();
        if let Some((username, password)) = known {
            return Some(credentials(username, password));
        }
        let secrets: Api<Secret> = Api::namespaced(self.shared.client.clone(), &self.namespace);
        for reference in self.pod["spec"]["imagePullSecrets"].as_array().into_iter().flatten() {
            let Ok(secret) = secrets.get(reference["name"].as_str().unwrap_or_default()).await else { continue };
            let Some(config) = secret.data.as_ref().and_then(|d| d.get(".dockerconfigjson")) else { continue };
            let Ok(config) = serde_json::from_slice::<Value>(&config.0) else { continue };
            let Some(auths) = config["auths"].as_object() else { continue };
            let entry = auths.iter().find(|(server, _)| {
                server.trim_start_matches("https://").trim_start_matches("http://").trim_end_matches('/') == host
            });
            let Some((_, entry)) = entry else { continue };
            let (mut username, mut password) =
                (entry["username"].as_str().map(str::to_owned), entry["password"].as_str().map(str::to_owned));
            if let Some(auth) = entry["auth"].as_str() {
                use base64::Engine;
                let decoded = base64::engine::general_purpose::STANDARD.decode(auth).unwrap_or_default();
                if let Some((u, p)) = String::from_utf8_lossy(&decoded).split_once(':') {
                    (username, password) = (Some(u.to_owned()), Some(p.to_owned()));
                }
            }
            if let (Some(u), Some(p)) = (username, password) {
                return Some(credentials(u, p));
            }
        }
        None
    }

    /// The Docker container for the next run of the pod's container.
    async fn container_body(&self, image: &ImageInspect) -> Result<ContainerCreateBody, String> {
        let c = &self.container;
        let pod_security = &self.pod["spec"]["securityContext"];
        let security = &c["securityContext"];
        let setting = |key: &str| security.get(key).filter(|v| !v.is_null()).or_else(|| pod_security.get(key));
        let uid = setting("runAsUser").and_then(Value::as_i64);
        let gid = setting("runAsGroup").and_then(Value::as_i64);
        let image_user = image.config.as_ref().and_then(|c| c.user.clone()).unwrap_or_default();
        if setting("runAsNonRoot").and_then(Value::as_bool) == Some(true) {
            let effective = match uid {
                Some(uid) => Some(uid),
                None => match image_user.split(':').next().unwrap_or_default() {
                    "" | "root" => Some(0),
                    user => Some(user.parse::<i64>().map_err(|_| {
                        format!("container has runAsNonRoot and image has non-numeric user ({user}), cannot verify user is non-root")
                    })?),
                },
            };
            if effective == Some(0) {
                return Err(format!(
                    "container has runAsNonRoot and image will run as root (pod: \"{}_{}({})\", container: {})",
                    self.name,
                    self.namespace,
                    self.uid,
                    c["name"].as_str().unwrap_or_default()
                ));
            }
        }
        let user = match (uid, gid) {
            (Some(u), Some(g)) => Some(format!("{u}:{g}")),
            (Some(u), None) => Some(u.to_string()),
            (None, Some(g)) => {
                Some(format!("{}:{g}", image_user.split(':').next().filter(|u| !u.is_empty()).unwrap_or("0")))
            }
            (None, None) => None,
        };
        let mut groups: Vec<String> = Vec::new();
        if let Some(g) = pod_security["fsGroup"].as_i64() {
            groups.push(g.to_string());
        }
        for g in pod_security["supplementalGroups"].as_array().into_iter().flatten() {
            groups.push(g.to_string());
        }

        let env = self.environment().await?;
        let expand_all = |list: &Value| -> Option<Vec<String>> {
            list.as_array().map(|items| items.iter().map(|a| expand(a.as_str().unwrap_or_default(), &env)).collect())
        };
        let command = expand_all(&c["command"]);
        let args = expand_all(&c["args"]);
        let (entrypoint, cmd) = match (command, args) {
            (Some(command), args) => (Some(command), Some(args.unwrap_or_default())),
            (None, args) => (None, args),
        };

        let attempt = self.restart_count;
        let message_path = c["terminationMessagePath"].as_str().unwrap_or("/dev/termination-log");
        let message_file = self.termination_file(attempt);
        std::fs::create_dir_all(&self.dir).map_err(|e| format!("creating {}: {e}", self.dir.display()))?;
        std::fs::write(&message_file, "").map_err(|e| format!("creating the termination message file: {e}"))?;
        std::fs::set_permissions(&message_file, std::fs::Permissions::from_mode(0o666))
            .map_err(|e| format!("chmod the termination message file: {e}"))?;
        let mut binds = vec![format!("{}:{message_path}", message_file.display())];
        let empty_dirs: HashSet<&str> = self.pod["spec"]["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|v| v.get("emptyDir").is_some())
            .filter_map(|v| v["name"].as_str())
            .collect();
        for mount in c["volumeMounts"].as_array().into_iter().flatten() {
            let name = mount["name"].as_str().unwrap_or_default();
            if !empty_dirs.contains(name) {
                continue;
            }
            let mut host = self.dir.join("volumes").join(name);
            if let Some(sub) = mount["subPath"].as_str().filter(|s| !s.is_empty()) {
                host = host.join(sub);
                std::fs::create_dir_all(&host).map_err(|e| format!("creating subPath {}: {e}", host.display()))?;
            }
            let ro = if mount["readOnly"] == true { ":ro" } else { "" };
            binds.push(format!("{}:{}{ro}", host.display(), mount["mountPath"].as_str().unwrap_or_default()));
        }

        let memory = c["resources"]["limits"]["memory"].as_str().and_then(parse_quantity).map(|m| m.ceil() as i64);
        let capabilities = &security["capabilities"];
        let strings = |v: &Value| -> Option<Vec<String>> {
            v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
        };
        let mut security_opt = Vec::new();
        if security["allowPrivilegeEscalation"] == false {
            security_opt.push("no-new-privileges".to_owned());
        }
        // Before SeccompDefault, a pod without a profile ran unconfined.
        match setting("seccompProfile").and_then(|p| p["type"].as_str()) {
            Some("RuntimeDefault" | "Localhost") => {}
            _ => security_opt.push("seccomp=unconfined".to_owned()),
        }
        let labels = HashMap::from([
            (LABEL.to_owned(), self.shared.id.clone()),
            ("io.kubernetes.pod.name".to_owned(), self.name.clone()),
            ("io.kubernetes.pod.namespace".to_owned(), self.namespace.clone()),
            ("io.kubernetes.pod.uid".to_owned(), self.uid.clone()),
            ("io.kubernetes.container.name".to_owned(), c["name"].as_str().unwrap_or_default().to_owned()),
        ]);
        let hostname = self.pod["spec"]["hostname"].as_str().unwrap_or(&self.name);
        Ok(ContainerCreateBody {
            image: Some(self.image.clone()),
            hostname: Some(hostname.chars().take(63).collect()),
            user,
            env: Some(env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            entrypoint,
            cmd,
            working_dir: c["workingDir"].as_str().map(str::to_owned),
            labels: Some(labels),
            host_config: Some(HostConfig {
                binds: Some(binds),
                network_mode: Some("none".to_owned()),
                memory,
                // Swap as large as the memory: no swap, so the limit is real.
                memory_swap: memory,
                readonly_rootfs: security["readOnlyRootFilesystem"].as_bool(),
                cap_drop: strings(&capabilities["drop"]),
                cap_add: strings(&capabilities["add"]),
                security_opt: Some(security_opt),
                group_add: (!groups.is_empty()).then_some(groups),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    /// The container's environment, in the order Kubernetes builds it
    /// (envFrom, then env), with `$(VAR)` references expanded.
    async fn environment(&self) -> Result<Vec<(String, String)>, String> {
        let mut env: Vec<(String, String)> = Vec::new();
        let set = |env: &mut Vec<(String, String)>, name: String, value: String| {
            env.retain(|(k, _)| *k != name);
            env.push((name, value));
        };
        for source in self.container["envFrom"].as_array().into_iter().flatten() {
            let prefix = source["prefix"].as_str().unwrap_or_default();
            let (kind, reference) = if source.get("secretRef").is_some() {
                ("secrets", &source["secretRef"])
            } else {
                ("configmaps", &source["configMapRef"])
            };
            let name = reference["name"].as_str().unwrap_or_default();
            match self.lookup(kind, name).await {
                Some(data) => {
                    for (k, v) in data {
                        set(&mut env, format!("{prefix}{k}"), v);
                    }
                }
                None if reference["optional"] == true => {}
                None => return Err(format!("{kind} \"{name}\" not found")),
            }
        }
        for var in self.container["env"].as_array().into_iter().flatten() {
            let name = var["name"].as_str().unwrap_or_default().to_owned();
            let from = &var["valueFrom"];
            let value = if let Some(value) = var["value"].as_str() {
                expand(value, &env)
            } else if let Some(path) = from["fieldRef"]["fieldPath"].as_str() {
                self.field(path)
            } else if from.get("secretKeyRef").is_some() || from.get("configMapKeyRef").is_some() {
                let (kind, reference) = if from.get("secretKeyRef").is_some() {
                    ("secrets", &from["secretKeyRef"])
                } else {
                    ("configmaps", &from["configMapKeyRef"])
                };
                let (object, key) =
                    (reference["name"].as_str().unwrap_or_default(), reference["key"].as_str().unwrap_or_default());
                match self.lookup(kind, object).await.and_then(|mut data| data.remove(key)) {
                    Some(v) => v,
                    None if reference["optional"] == true => continue,
                    None => return Err(format!("couldn't find key {key} in {kind} {}/{object}", self.namespace)),
                }
            } else {
                String::new()
            };
            set(&mut env, name, value);
        }
        Ok(env)
    }

    /// A Secret's or ConfigMap's data, as text.
    async fn lookup(&self, kind: &str, name: &str) -> Option<BTreeMap<String, String>> {
        let request = Request::get(format!("/api/v1/namespaces/{}/{kind}/{name}", self.namespace))
            .body(Vec::new())
            .expect("a GET request");
        let object: Value = self.shared.client.request(request).await.ok()?;
        let data = object["data"].as_object()?;
        let decode = |v: &Value| -> String {
            let text = v.as_str().unwrap_or_default();
            if kind == "secrets" {
                use base64::Engine;
                let bytes = base64::engine::general_purpose::STANDARD.decode(text).unwrap_or_default();
                String::from_utf8_lossy(&bytes).into_owned()
            } else {
                text.to_owned()
            }
        };
        Some(data.iter().map(|(k, v)| (k.clone(), decode(v))).collect())
    }

    /// A downward-API field; a missing label or annotation is empty.
    fn field(&self, path: &str) -> String {
        let meta = &self.pod["metadata"];
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        let keyed = |prefix: &str, map: &Value| -> Option<String> {
            let key = path.strip_prefix(prefix)?.strip_suffix("']")?;
            Some(text(&map[key]))
        };
        if let Some(v) = keyed("metadata.labels['", &meta["labels"]) {
            return v;
        }
        if let Some(v) = keyed("metadata.annotations['", &meta["annotations"]) {
            return v;
        }
        match path {
            "metadata.name" => text(&meta["name"]),
            "metadata.namespace" => text(&meta["namespace"]),
            "metadata.uid" => text(&meta["uid"]),
            "spec.nodeName" => text(&self.pod["spec"]["nodeName"]),
            "spec.serviceAccountName" => text(&self.pod["spec"]["serviceAccountName"]),
            "status.hostIP" | "status.podIP" => "127.0.0.1".to_owned(),
            _ => String::new(),
        }
    }

    fn termination_file(&self, attempt: u32) -> PathBuf {
        let name = self.container["name"].as_str().unwrap_or_default();
        self.dir.join(format!("termination-{name}-{attempt}"))
    }

    /// Creates and starts the next run's container. A container that
    /// cannot start ends as the kubelet reports it: terminated, exit code
    /// 128, ContainerCannotRun.
    async fn create_and_start(&mut self, body: ContainerCreateBody) -> Result<String, Value> {
        let docker = &self.shared.docker;
        let uid8: String = self.uid.chars().take(8).collect();
        let name = format!(
            "k8s_{}_{}_{}_{uid8}_{}",
            self.container["name"].as_str().unwrap_or_default(),
            self.name,
            self.namespace,
            self.restart_count
        );
        let options = CreateContainerOptions { name: Some(name), ..Default::default() };
        let cannot_run = |message: String| {
            let now = now();
            json!({ "exitCode": 128, "reason": "ContainerCannotRun", "message": message,
                    "startedAt": now, "finishedAt": now })
        };
        let created = docker.create_container(Some(options), body).await.map_err(|e| cannot_run(daemon_error(&e)))?;
        self.runs.lock().unwrap().push(created.id.clone());
        self.container_id = Some(created.id.clone());
        if let Err(e) = docker.start_container(&created.id, None).await {
            let mut terminated = cannot_run(daemon_error(&e));
            terminated["containerID"] = json!(format!("docker://{}", created.id));
            return Err(terminated);
        }
        let inspect = docker.inspect_container(&created.id, None).await.ok();
        let started = docker_time(inspect.as_ref().and_then(|i| i.state.as_ref()?.started_at.as_deref()));
        self.phase = "Running";
        self.state = json!({ "running": { "startedAt": started } });
        self.report().await;
        Ok(created.id)
    }

    async fn wait_for_exit(&self, id: &str) {
        let docker = &self.shared.docker;
        loop {
            // Ends with the exit (an error for a non-zero code), or when the
            // request times out; then the container is looked at.
            let _ = docker.wait_container(id, None).next().await;
            let running = docker
                .inspect_container(id, None)
                .await
                .map(|i| i.state.and_then(|s| s.running).unwrap_or(false))
                .unwrap_or(false);
            if !running {
                return;
            }
        }
    }

    /// The terminated state of an exited container, as the kubelet words it.
    async fn terminated(&self, id: &str) -> Value {
        let docker = &self.shared.docker;
        let state = docker.inspect_container(id, None).await.ok().and_then(|i| i.state).unwrap_or_default();
        let exit_code = state.exit_code.unwrap_or(-1);
        let reason = if state.oom_killed == Some(true) {
            "OOMKilled"
        } else if exit_code == 0 {
            "Completed"
        } else {
            "Error"
        };
        // Always the current run's: restart_count grows only after this.
        let mut message = std::fs::read(self.termination_file(self.restart_count)).unwrap_or_default();
        message.truncate(4096);
        let mut message = String::from_utf8_lossy(&message).into_owned();
        if message.is_empty() && exit_code != 0 && self.container["terminationMessagePolicy"] == "FallbackToLogsOnError"
        {
            let logs = container_logs(docker, id, "80", false).await.unwrap_or_default();
            let start = logs.len().saturating_sub(2048);
            message = String::from_utf8_lossy(&logs[start..]).into_owned();
        }
        let mut terminated = json!({
            "exitCode": exit_code,
            "reason": reason,
            "startedAt": docker_time(state.started_at.as_deref()),
            "finishedAt": docker_time(state.finished_at.as_deref()),
            "containerID": format!("docker://{id}"),
        });
        if !message.is_empty() {
            terminated["message"] = json!(message);
        }
        terminated
    }
}

/// A container run's log (stdout and stderr, interleaved as written).
async fn container_logs(
    docker: &Docker,
    id: &str,
    tail: &str,
    timestamps: bool,
) -> Result<Vec<u8>, bollard::errors::Error> {
    let options = LogsOptions { stdout: true, stderr: true, tail: tail.to_owned(), timestamps, ..Default::default() };
    let chunks: Vec<_> = docker.logs(id, Some(options)).try_collect().await?;
    Ok(chunks.into_iter().flat_map(|c| c.into_bytes()).collect())
}

/// Serves `/containerLogs/{namespace}/{pod}/{container}` over HTTPS, as the
/// kubelet does for the apiserver's `pods/log`.
async fn serve(listener: tokio::net::TcpListener, cert: ServerCert, shared: Arc<Shared>) {
    crate::tls::serve_https(listener, cert, move |req| {
        let shared = shared.clone();
        async move { handle_logs(req, &shared).await }
    })
    .await;
}

fn text_response(code: u16, text: String) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(text)).map_err(|never| match never {}).boxed_unsync())
        .expect("a response")
}

async fn handle_logs(req: Request<Incoming>, shared: &Shared) -> Response<Body> {
    let path: Vec<&str> = req.uri().path().trim_matches('/').split('/').collect();
    let ["containerLogs", namespace, pod, container] = path[..] else {
        return text_response(404, "404 page not found\n".to_owned());
    };
    let query: HashMap<&str, &str> =
        req.uri().query().unwrap_or_default().split('&').filter_map(|kv| kv.split_once('=')).collect();
    let flag = |name: &str| query.get(name).is_some_and(|v| *v == "true" || *v == "1");
    let found = {
        let pods = shared.pods.lock().unwrap();
        let mut matching: Vec<&PodHandle> =
            pods.values().filter(|p| p.namespace == namespace && p.name == pod).collect();
        // A pod recreated under the same name: the live one.
        matching.sort_by_key(|p| *p.signal.borrow() != Signal::Live);
        matching.first().map(|p| (p.container.clone(), p.runs.lock().unwrap().clone()))
    };
    let Some((name, runs)) = found else {
        return text_response(404, format!("pod {namespace}/{pod} not found\n"));
    };
    if name != container {
        return text_response(404, format!("container \"{container}\" in pod \"{pod}\" is not available\n"));
    }
    let id = if flag("previous") {
        match runs.len() {
            n if n >= 2 => runs[n - 2].clone(),
            _ => {
                return text_response(
                    400,
                    format!("previous terminated container \"{container}\" in pod \"{pod}\" not found\n"),
                );
            }
        }
    } else {
        match runs.last() {
            Some(id) => id.clone(),
            None => {
                return text_response(
                    400,
                    format!("container \"{container}\" in pod \"{pod}\" is waiting to start: ContainerCreating\n"),
                );
            }
        }
    };
    let tail = query.get("tailLines").map(|t| t.to_string()).unwrap_or_else(|| "all".to_owned());
    let timestamps = flag("timestamps");
    if flag("follow") {
        let options = LogsOptions { stdout: true, stderr: true, follow: true, tail, timestamps, ..Default::default() };
        let stream = shared
            .docker
            .logs(&id, Some(options))
            .map(|chunk| chunk.map(|c| Frame::data(c.into_bytes())).map_err(std::io::Error::other));
        return Response::builder()
            .status(200)
            .header("content-type", "text/plain; charset=utf-8")
            .body(StreamBody::new(stream).boxed_unsync())
            .expect("a response");
    }
    match container_logs(&shared.docker, &id, &tail, timestamps).await {
        Ok(mut logs) => {
            if let Some(limit) = query.get("limitBytes").and_then(|l| l.parse::<usize>().ok()) {
                logs.truncate(limit);
            }
            Response::builder()
                .status(200)
                .header("content-type", "text/plain; charset=utf-8")
                .body(Full::new(Bytes::from(logs)).map_err(|never| match never {}).boxed_unsync())
                .expect("a response")
        }
        Err(e) => text_response(500, format!("reading the logs of {id}: {}\n", daemon_error(&e))),
    }
}

/// `repo` -> `repo:latest`, as Docker and the kubelet name an untagged image.
fn with_tag(image: &str) -> String {
    match ImageRef::parse(image) {
        Ok(r) if r.tag.is_none() && r.digest.is_none() => ImageRef { tag: Some("latest".into()), ..r }.to_string(),
        _ => image.to_owned(),
    }
}

/// The registry host of an image reference, when it names one.
fn registry_host(image: &str) -> Option<String> {
    ImageRef::parse(image).ok()?.registry
}

/// The daemon's own words for an error, as the kubelet passes them on.
fn daemon_error(e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => {
            format!("Error response from daemon: {message}")
        }
        bollard::errors::Error::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    }
}

/// Kubernetes' `$(VAR)` expansion: a defined variable is replaced, an
/// undefined reference is kept as written, `$$` is a literal `$`.
fn expand(text: &str, env: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        if let Some(after) = rest.strip_prefix("$$") {
            out.push('$');
            rest = after;
        } else if let Some(end) = rest.strip_prefix("$(").and_then(|r| r.find(')')) {
            let name = &rest[2..2 + end];
            match env.iter().rev().find(|(k, _)| k == name) {
                Some((_, v)) => out.push_str(v),
                None => out.push_str(&rest[..3 + end]),
            }
            rest = &rest[3 + end..];
        } else {
            out.push('$');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    out
}

/// A duration as Go prints it in the kubelet's messages (`10s`, `1m20s`, `5m0s`).
fn go_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 60 {
        format!("{}m{}s", secs / 60, secs % 60)
    } else if d.subsec_millis() == 0 {
        format!("{secs}s")
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Now, as Kubernetes writes times (RFC 3339, whole seconds, UTC).
fn now() -> String {
    rfc3339(jiff::Timestamp::now())
}

fn rfc3339(time: jiff::Timestamp) -> String {
    jiff::Timestamp::from_second(time.as_second()).expect("a time in range").to_string()
}

/// A time Docker reported (nanoseconds; the zero time when unset).
fn docker_time(time: Option<&str>) -> String {
    time.and_then(|t| t.parse::<jiff::Timestamp>().ok()).filter(|t| t.as_second() > 0).map(rfc3339).unwrap_or_else(now)
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn expansion() {
        let env = vec![("A".to_owned(), "1".to_owned())];
        assert_eq!(expand("x$(A)y", &env), "x1y");
        assert_eq!(expand("$(B)", &env), "$(B)");
        assert_eq!(expand("$$(A)", &env), "$(A)");
        assert_eq!(expand("cost $5", &env), "cost $5");
    }

    #[test]
    fn image_names() {
        assert_eq!(with_tag("busybox"), "busybox:latest");
        assert_eq!(with_tag("127.0.0.1:5000/job-test"), "127.0.0.1:5000/job-test:latest");
        let digest = "sha256:abababababababababababababababababababababababababababababababab";
        assert_eq!(
            removable_reference(&format!("127.0.0.1:5000/a/b:1.0@{digest}")),
            format!("127.0.0.1:5000/a/b@{digest}")
        );
        assert_eq!(
            removable_reference(&format!("127.0.0.1:5000/a/b@{digest}")),
            format!("127.0.0.1:5000/a/b@{digest}")
        );
        assert_eq!(removable_reference("127.0.0.1:5000/a/b:1.0"), "127.0.0.1:5000/a/b:1.0");
        assert_eq!(with_tag("127.0.0.1:5000/job-test:1"), "127.0.0.1:5000/job-test:1");
        assert_eq!(registry_host("127.0.0.1:5000/job-test:1").as_deref(), Some("127.0.0.1:5000"));
        assert_eq!(registry_host("job-test-e2e/job-worker:abc"), None);
        assert_eq!(go_duration(Duration::from_secs(80)), "1m20s");
    }
}
