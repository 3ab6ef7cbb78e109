//! A real Kubernetes 1.20.2 control plane on 127.0.0.1: etcd, kube-apiserver,
//! kube-controller-manager and kube-scheduler, the upstream binaries, started
//! once per test process and shared by its tests (each test works in its own
//! namespaces). The kubelet's part is played by the node agent
//! (`crate::node_agent`), which runs the scheduled pods as Docker containers.
//!
//! This module owns the processes (their flags, ports, logs and lifetime),
//! the cluster's PKI (a test CA, the apiserver's serving certificate, the
//! client certificate it presents to the node agent, the service-account
//! signing key), the admin token, and blocking helpers for tests.
//!
//! The binaries come from JOB_TEST_KUBE_BIN, else the cache directory that
//! `cargo xtask test` fills (`kubernetes-v1.20.2` under the user's cache).

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use rcgen::KeyPair;
use serde_json::{Value, json};

use crate::node_agent::NodeAgent;
use crate::tempdir;
use crate::tls::{ExtendedKeyUsagePurpose, ServerCert, TestCa};

/// The Service network; the apiserver's own Service takes its first address.
const SERVICE_CIDR: &str = "10.0.0.0/24";

pub struct ControlPlane {
    /// `https://127.0.0.1:PORT`
    pub url: String,
    /// The cluster CA: it signed the apiserver's and the node agent's
    /// serving certificates.
    pub ca_path: PathBuf,
    pub ca_pem: String,
    /// A bearer token in system:masters.
    pub admin_token: String,
    /// Certificates, configuration, the processes' logs, etcd's data.
    pub dir: PathBuf,
    /// The apiserver's `gitVersion` (v1.20.2).
    pub version: String,
    runtime: tokio::runtime::Runtime,
    client: kube::Client,
    node_agent: NodeAgent,
    /// Kept so that the processes can be found by PID; they end with the
    /// test process (see `spawn`).
    processes: Mutex<Vec<Process>>,
}

/// A started component and where its output goes.
struct Process {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

/// The directory with kube-apiserver, kube-controller-manager,
/// kube-scheduler and etcd: JOB_TEST_KUBE_BIN, which `cargo xtask test`
/// sets after making sure of it, else xtask's own cache, checked the same
/// way; panics with what to do when they are missing.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("JOB_TEST_KUBE_BIN") {
        return PathBuf::from(dir);
    }
    let out = xtask::report::Reporter::new(xtask::choices::Output::Text);
    xtask::control_plane::ensure(false, &out)
        .unwrap_or_else(|e| panic!("the real control plane is not here: {e:#}; or set JOB_TEST_KUBE_BIN"))
}

impl ControlPlane {
    /// The control plane of this test process, started on first use. A
    /// failed start is not retried by later tests: they fail with the same
    /// message.
    pub fn shared() -> &'static ControlPlane {
        static SHARED: OnceLock<Result<ControlPlane, String>> = OnceLock::new();
        let started = SHARED.get_or_init(|| {
            std::panic::catch_unwind(ControlPlane::start).map_err(|panic| {
                panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "(no message)".to_owned())
            })
        });
        match started {
            Ok(control_plane) => control_plane,
            Err(message) => panic!("the control plane failed to start earlier in this test process:\n{message}"),
        }
    }

    fn start() -> ControlPlane {
        let begun = Instant::now();
        let _ = rustls::crypto::ring::default_provider().install_default();
        let bin = bin_dir();
        remove_stale_dirs();
        let dir = tempdir("control-plane");
        let pki = Pki::write(&dir);
        let admin_token = random_hex(16);
        // token,user,uid,"groups": the apiserver's static token file.
        std::fs::write(dir.join("tokens.csv"), format!("{admin_token},kubernetes-admin,admin,\"system:masters\"\n"))
            .expect("writing the apiserver's token file");

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .thread_name("control-plane")
            .enable_all()
            .build()
            .expect("building the control plane's tokio runtime");
        let mut started = Started(Vec::new());

        let etcd_url = start_etcd(&bin, &dir, &mut started);
        let (url, client) = start_apiserver(&bin, &dir, &etcd_url, &pki, &admin_token, &runtime, &mut started);

        let kubeconfig = crate::write_kubeconfig(&url, &pki.ca_path, Some(&admin_token), true, "default", &dir);
        let kubeconfig = kubeconfig.to_str().expect("a UTF-8 temp path").to_owned();
        started.spawn(
            "kube-controller-manager",
            Command::new(bin.join("kube-controller-manager")).args([
                &format!("--kubeconfig={kubeconfig}"),
                // Only what Jobs need: no node lifecycle controller, so the
                // node agent need not send heartbeats.
                "--controllers=job,ttl-after-finished,serviceaccount-token,serviceaccount,garbagecollector,namespace",
                "--feature-gates=TTLAfterFinished=true",
                // The token controller fills service-account token Secrets
                // only when it has both the key and the CA.
                &format!("--service-account-private-key-file={}", pki.sa_key_path.display()),
                &format!("--root-ca-file={}", pki.ca_path.display()),
                "--use-service-account-credentials=false",
                "--leader-elect=false",
                // The 1.20 Job controller enforces activeDeadlineSeconds by a
                // timer set at the Job's first sync; when that timer is lost
                // (seen here: a hanging Job not failed after 3 minutes, as in
                // kubernetes/kubernetes#105572 on 1.20.4), only the next
                // informer resync looks again, and that comes every 12 to 24
                // hours by default (#32149). A cluster then fails the Job
                // late but with the same verdict; a resync of 30 to 60 s
                // lets a test see that verdict.
                "--min-resync-period=30s",
                // No listening ports: nothing to race for, nothing to serve.
                "--port=0",
                "--secure-port=0",
                // The Job controller's decisions (syncs, deadlines,
                // expectations) are logged from level 4: what a failing
                // test needs to say why a Job did not end.
                "--v=4",
            ]),
            &dir,
        );
        started.spawn(
            "kube-scheduler",
            Command::new(bin.join("kube-scheduler")).args([
                &format!("--kubeconfig={kubeconfig}"),
                "--leader-elect=false",
                "--port=0",
                "--secure-port=0",
                "--v=1",
            ]),
            &dir,
        );

        let version = runtime
            .block_on(client.apiserver_version())
            .unwrap_or_else(|e| panic!("GET /version: {e}\n{}", started.logs()))
            .git_version;

        // The serviceaccount controller makes `default` in every namespace:
        // its existence proves the controller manager runs.
        let deadline = Instant::now() + Duration::from_secs(60);
        while runtime.block_on(get_json(&client, "/api/v1/namespaces/default/serviceaccounts/default")).is_none() {
            started.check_alive();
            assert!(
                Instant::now() < deadline,
                "the controller manager made no `default` ServiceAccount within 60 s\n{}",
                started.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }

        let agent_cert = pki.node_agent_cert();
        let node_agent = runtime.block_on(NodeAgent::start(client.clone(), agent_cert, dir.join("node-agent")));
        started.check_alive();

        eprintln!(
            "control plane {version} at {url} ready in {:.1} s (dir {})",
            begun.elapsed().as_secs_f64(),
            dir.display()
        );
        ControlPlane {
            url,
            ca_path: pki.ca_path.clone(),
            ca_pem: pki.ca.pem(),
            admin_token,
            dir,
            version,
            runtime,
            client,
            node_agent,
            processes: Mutex::new(std::mem::take(&mut started.0)),
        }
    }

    /// A kubeconfig for this cluster: with the CA (or without, to see the
    /// trust error) and a token (or none). Each call writes a new file.
    pub fn kubeconfig(&self, token: Option<&str>, with_ca: bool, namespace: &str) -> PathBuf {
        crate::write_kubeconfig(&self.url, &self.ca_path, token, with_ca, namespace, &tempdir("kubeconfig"))
    }

    /// A kubeconfig with the admin token and the CA.
    pub fn admin_kubeconfig(&self, namespace: &str) -> PathBuf {
        self.kubeconfig(Some(&self.admin_token), true, namespace)
    }

    /// A client with the admin token; it runs on the control plane's runtime.
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// Runs a future on the control plane's runtime, from a test thread.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// GET an API path (`/api/v1/namespaces/NS/pods`) as admin; None on 404.
    pub fn get(&self, path: &str) -> Option<Value> {
        self.block_on(get_json(&self.client, path))
    }

    /// The pods of a namespace, as the API lists them.
    pub fn list_pods(&self, namespace: &str) -> Vec<Value> {
        let list = self.get(&format!("/api/v1/namespaces/{namespace}/pods")).unwrap_or_else(|| json!({}));
        list["items"].as_array().cloned().unwrap_or_default()
    }

    /// Creates a namespace and waits until its `default` ServiceAccount has
    /// its token: before that, the ServiceAccount admission plugin rejects
    /// pods that mount it, and the Job controller backs off for 10 s.
    pub fn create_namespace(&self, namespace: &str) {
        let body = json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": namespace } });
        let request = hyper::Request::post("/api/v1/namespaces")
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&body).expect("a namespace as JSON"))
            .expect("a namespace creation request");
        if let Err(e) = self.block_on(self.client.request_text(request)) {
            panic!("creating namespace {namespace}: {e}");
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let sa = self.get(&format!("/api/v1/namespaces/{namespace}/serviceaccounts/default"));
            if sa.is_some_and(|sa| sa["secrets"].as_array().is_some_and(|s| !s.is_empty())) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the default ServiceAccount of {namespace} got no token within 30 s\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Deletes a namespace and waits until it is gone (the namespace
    /// controller deletes its objects, the node agent stops its pods).
    pub fn delete_namespace(&self, namespace: &str) {
        let request = hyper::Request::delete(format!("/api/v1/namespaces/{namespace}"))
            .body(Vec::new())
            .expect("a namespace deletion request");
        match self.block_on(self.client.request_text(request)) {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => return,
            Err(e) => panic!("deleting namespace {namespace}: {e}"),
        }
        // The namespace controller waits for the longest grace period of
        // the pods it deleted before it looks again.
        let deadline = Instant::now() + Duration::from_secs(180);
        while let Some(ns) = self.get(&format!("/api/v1/namespaces/{namespace}")) {
            assert!(
                Instant::now() < deadline,
                "namespace {namespace} was not gone within 180 s; its status: {}\nits pods: {:#}",
                ns["status"],
                Value::Array(self.list_pods(namespace))
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Deletes a cluster-scoped object (`clusterroles`, `clusterrolebindings`,
    /// `namespaces`...), which no namespace deletion takes with it; one that
    /// is not there is fine.
    pub fn delete_cluster_scoped(&self, plural: &str, name: &str) {
        let group = match plural {
            "clusterroles" | "clusterrolebindings" => "/apis/rbac.authorization.k8s.io/v1",
            "priorityclasses" => "/apis/scheduling.k8s.io/v1",
            "storageclasses" => "/apis/storage.k8s.io/v1",
            "customresourcedefinitions" => "/apis/apiextensions.k8s.io/v1",
            _ => "/api/v1",
        };
        let request =
            hyper::Request::delete(format!("{group}/{plural}/{name}")).body(Vec::new()).expect("a deletion request");
        match self.block_on(self.client.request_text(request)) {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(e) => panic!("deleting {plural}/{name}: {e}"),
        }
    }

    pub fn node_agent(&self) -> &NodeAgent {
        &self.node_agent
    }

    /// The PIDs of the control plane's processes, by component.
    pub fn pids(&self) -> Vec<(&'static str, u32)> {
        self.processes.lock().unwrap().iter().map(|p| (p.name, p.child.id())).collect()
    }

    /// The last lines of every component's log, for failure messages.
    pub fn logs(&self) -> String {
        self.processes.lock().unwrap().iter().map(Process::tail).collect()
    }
}

impl Process {
    fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<_> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        format!("--- {} (pid {}), last lines of {}:\n{tail}\n", self.name, self.child.id(), self.log.display())
    }
}

/// The processes started so far: if the start-up fails half-way, they are
/// stopped by PID when this is dropped (the panic unwinds through it).
struct Started(Vec<Process>);

impl Started {
    fn spawn(&mut self, name: &'static str, command: &mut Command, dir: &Path) {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("creating a component's log file");
        command.stdin(Stdio::null()).stdout(file.try_clone().expect("duplicating a log file handle")).stderr(file);
        let child = spawn(command).unwrap_or_else(|e| panic!("starting {name}: {e}"));
        self.0.push(Process { name, child, log });
    }

    /// Removes the last process if it exited (a lost port race): true then.
    fn reap_if_exited(&mut self) -> bool {
        let last = self.0.last_mut().expect("a started process");
        if last.child.try_wait().expect("waiting for a component").is_some() {
            self.0.pop();
            return true;
        }
        false
    }

    fn check_alive(&mut self) {
        for p in &mut self.0 {
            if let Some(status) = p.child.try_wait().expect("waiting for a component") {
                panic!("{} exited ({status}) during start-up\n{}", p.name, p.tail());
            }
        }
    }

    fn logs(&self) -> String {
        self.0.iter().map(Process::tail).collect()
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        for p in &mut self.0 {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }
}

/// Starts a process from a thread that lives as long as the test process,
/// with PR_SET_PDEATHSIG: the kernel sends it SIGTERM when the spawning
/// thread ends, which for this thread is when the test process exits. The
/// control plane is a static whose Drop never runs; this is what stops it.
fn spawn(command: &mut Command) -> std::io::Result<Child> {
    type Request = (Command, mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Request>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("control-plane-spawner".into())
            .spawn(move || {
                // Never ends: the sender is in a static.
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("starting the control plane's spawner thread");
        Mutex::new(tx)
    });
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: prctl, getppid and raise are async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before the prctl.
            if libc::getppid() != parent {
                libc::raise(libc::SIGTERM);
            }
            Ok(())
        });
    }
    let taken = std::mem::replace(command, Command::new("true"));
    let (reply, result) = mpsc::channel();
    spawner.lock().unwrap().send((taken, reply)).expect("the spawner thread is alive");
    result.recv().expect("the spawner thread answers")
}

/// etcd on two free ports (client and peer), plain HTTP on loopback; returns
/// its client URL.
fn start_etcd(bin: &Path, dir: &Path, started: &mut Started) -> String {
    for _ in 0..5 {
        let (client, peer) = (crate::free_port(), crate::free_port());
        let client_url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        started.spawn(
            "etcd",
            Command::new(bin.join("etcd")).args([
                "--name=job-test",
                &format!("--data-dir={}", dir.join("etcd").display()),
                &format!("--listen-client-urls={client_url}"),
                &format!("--advertise-client-urls={client_url}"),
                &format!("--listen-peer-urls={peer_url}"),
                &format!("--initial-advertise-peer-urls={peer_url}"),
                &format!("--initial-cluster=job-test={peer_url}"),
                "--logger=zap",
                "--log-level=warn",
            ]),
            dir,
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if http_get_plain(client, "/health").is_some_and(|body| body.contains("\"health\":\"true\"")) {
                return client_url;
            }
            if started.reap_if_exited() {
                // Another process took a port between our probe and etcd's bind.
                let _ = std::fs::remove_dir_all(dir.join("etcd"));
                break;
            }
            assert!(Instant::now() < deadline, "etcd was not healthy within 30 s\n{}", started.logs());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("etcd did not start in 5 tries\n{}", started.logs());
}

/// kube-apiserver on a free port; returns its URL and an admin client once
/// `/readyz` answers 200.
fn start_apiserver(
    bin: &Path,
    dir: &Path,
    etcd_url: &str,
    pki: &Pki,
    admin_token: &str,
    runtime: &tokio::runtime::Runtime,
    started: &mut Started,
) -> (String, kube::Client) {
    let path = |p: &Path| p.display().to_string();
    for _ in 0..5 {
        let port = crate::free_port();
        let url = format!("https://127.0.0.1:{port}");
        started.spawn(
            "kube-apiserver",
            Command::new(bin.join("kube-apiserver")).args([
                &format!("--etcd-servers={etcd_url}"),
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                &format!("--secure-port={port}"),
                "--insecure-port=0",
                &format!("--cert-dir={}", dir.join("apiserver-certs").display()),
                &format!("--tls-cert-file={}", path(&pki.apiserver_cert_path)),
                &format!("--tls-private-key-file={}", path(&pki.apiserver_key_path)),
                &format!("--client-ca-file={}", path(&pki.ca_path)),
                &format!("--token-auth-file={}", dir.join("tokens.csv").display()),
                "--authorization-mode=Node,RBAC",
                // 1.20 refuses to start without all three.
                &format!("--service-account-key-file={}", path(&pki.sa_pub_path)),
                &format!("--service-account-signing-key-file={}", path(&pki.sa_key_path)),
                "--service-account-issuer=https://kubernetes.default.svc",
                &format!("--service-cluster-ip-range={SERVICE_CIDR}"),
                "--feature-gates=TTLAfterFinished=true",
                // pods/log: the apiserver calls the node agent at the node's
                // InternalIP over HTTPS, verifying it against the cluster CA.
                "--kubelet-preferred-address-types=InternalIP",
                &format!("--kubelet-certificate-authority={}", path(&pki.ca_path)),
                &format!("--kubelet-client-certificate={}", path(&pki.kubelet_client_cert_path)),
                &format!("--kubelet-client-key={}", path(&pki.kubelet_client_key_path)),
                "--v=1",
            ]),
            dir,
        );
        let mut config = kube::Config::new(url.parse().expect("the apiserver URL"));
        config.root_cert = Some(vec![pki.ca.der()]);
        config.auth_info.token = Some(admin_token.to_owned().into());
        let client = runtime.block_on(async { kube::Client::try_from(config) }).expect("an admin client");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let readyz = hyper::Request::get("/readyz").body(Vec::new()).expect("a /readyz request");
            if runtime.block_on(client.request_text(readyz)).is_ok_and(|body| body.trim() == "ok") {
                return (url, client);
            }
            if started.reap_if_exited() {
                let log = std::fs::read_to_string(dir.join("kube-apiserver.log")).unwrap_or_default();
                assert!(
                    log.contains("address already in use"),
                    "kube-apiserver exited during start-up\n{}",
                    tail_of(&log)
                );
                break;
            }
            assert!(Instant::now() < deadline, "kube-apiserver was not ready within 60 s\n{}", started.logs());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    panic!("kube-apiserver did not start in 5 tries\n{}", started.logs());
}

fn tail_of(text: &str) -> String {
    let lines: Vec<_> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

async fn get_json(client: &kube::Client, path: &str) -> Option<Value> {
    let request = hyper::Request::get(path).body(Vec::new()).expect("a GET request");
    match client.request_text(request).await {
        Ok(body) => Some(serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}"))),
        Err(kube::Error::Api(status)) if status.code == 404 => None,
        Err(e) => panic!("GET {path}: {e}"),
    }
}

/// A GET over plain HTTP/1.0 on loopback: etcd's health check, without a
/// client library for one request.
fn http_get_plain(port: u16, path: &str) -> Option<String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.starts_with("HTTP/1.0 200").then_some(response)
}

/// A port that was free a moment ago; the caller retries when it loses it.
fn random_hex(bytes: usize) -> String {
    use ring::rand::SecureRandom;
    let mut buf = vec![0u8; bytes];
    ring::rand::SystemRandom::new().fill(&mut buf).expect("random bytes from the system");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Temp dirs of control planes whose test process is gone (killed before
/// it could clean up): etcd preallocates 64 MB of WAL in each.
fn remove_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix("job-test-control-plane-") else { continue };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<libc::pid_t>().ok()) else { continue };
        if !crate::node_agent::process_alive(pid) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The cluster's PKI, written to files the components read.
struct Pki {
    ca: TestCa,
    ca_path: PathBuf,
    apiserver_cert_path: PathBuf,
    apiserver_key_path: PathBuf,
    kubelet_client_cert_path: PathBuf,
    kubelet_client_key_path: PathBuf,
    /// The service-account signing key (ECDSA P-256, PKCS#8), and its public
    /// half: `--service-account-key-file` takes public keys or SEC1 private
    /// keys, not PKCS#8.
    sa_key_path: PathBuf,
    sa_pub_path: PathBuf,
}

impl Pki {
    fn write(dir: &Path) -> Pki {
        let write = |name: &str, contents: &str| crate::write_file(dir, name, contents);
        let ca = TestCa::new("control plane");
        let ca_path = ca.write(dir);
        // The names clients inside the cluster would use, too.
        let apiserver = ca.sign(
            "kube-apiserver",
            &[
                "127.0.0.1",
                "localhost",
                "10.0.0.1",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ],
            None,
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let kubelet_client =
            ca.sign("kube-apiserver-kubelet-client", &[], Some("system:masters"), ExtendedKeyUsagePurpose::ClientAuth);
        let sa_key = KeyPair::generate().expect("a service-account signing key");
        Pki {
            apiserver_cert_path: write("apiserver.pem", &apiserver.cert_pem),
            apiserver_key_path: write("apiserver-key.pem", &apiserver.key_pem),
            kubelet_client_cert_path: write("apiserver-kubelet-client.pem", &kubelet_client.cert_pem),
            kubelet_client_key_path: write("apiserver-kubelet-client-key.pem", &kubelet_client.key_pem),
            sa_key_path: write("sa-key.pem", &sa_key.serialize_pem()),
            sa_pub_path: write("sa-pub.pem", &sa_key.public_key_pem()),
            ca,
            ca_path,
        }
    }

    /// The node agent's serving certificate: the apiserver reaches it at
    /// the node's InternalIP, 127.0.0.1.
    fn node_agent_cert(&self) -> ServerCert {
        self.ca.sign(
            crate::node_agent::NODE_NAME,
            &["127.0.0.1", "localhost"],
            None,
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }
}
