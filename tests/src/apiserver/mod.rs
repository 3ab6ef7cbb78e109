//! A Kubernetes API server double that speaks the real wire protocol: the
//! one part of the tests that is not the real thing, because no apiserver
//! can run on these machines.
//!
//! It serves HTTPS with its own test CA, authenticates bearer tokens (401
//! Status objects) and authorizes them with RBAC evaluated from the Roles,
//! ClusterRoles and bindings it stores (403 Status objects with the real
//! message), implements server-side apply PATCH (content type
//! application/apply-patch+yaml, fieldManager required, merged; a changed Job
//! pod template is a 422 "field is immutable"; `dryRun=All` stores nothing), GET, LIST (paged by limit and continue) with label and
//! field selectors, WATCH (chunked JSON events from a resourceVersion,
//! bookmarks, 410 for a compacted version, streams the test can cut),
//! pods/log, and DELETE with propagation. It plays the token controller
//! (fills service-account token Secrets) and the garbage collector (a
//! deleted Job's pods go). The Job controller it does not play: tests script
//! Job and Pod status with objects shaped like a real apiserver's
//! (`objects`).

pub mod objects;
mod server;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::broadcast;

use crate::tempdir;
use crate::tls::TestCa;

/// Who a bearer token belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    /// system:masters: everything is allowed.
    Admin,
    /// A service account, authorized by RBAC.
    ServiceAccount { namespace: String, name: String },
}

impl Identity {
    pub fn user(&self) -> String {
        match self {
            Identity::Admin => "kubernetes-admin".into(),
            Identity::ServiceAccount { namespace, name } => format!("system:serviceaccount:{namespace}:{name}"),
        }
    }
}

/// One request as the double received it.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: Option<String>,
    pub authorization: Option<String>,
}

/// A stored change, as watches replay it.
#[derive(Clone, Debug)]
pub struct Change {
    pub resource_version: u64,
    pub kind: &'static str,
    pub plural: String,
    pub namespace: Option<String>,
    /// Shared by the history and every watcher's queue: a test of
    /// thousands of pods keeps one copy of each version.
    pub object: Arc<Value>,
    /// The watch event line, serialized once for every watcher.
    pub line: bytes::Bytes,
}

#[derive(Default)]
pub struct State {
    pub objects: BTreeMap<(String, Option<String>, String), Value>,
    pub resource_version: u64,
    pub changes: Vec<Change>,
    /// Changes at or below this version are "compacted": watching from
    /// them gets 410 Gone.
    pub compacted_below: u64,
    pub tokens: HashMap<String, Identity>,
    pub logs: HashMap<(String, String, bool), String>,
    pub requests: Vec<Request>,
    pub active_watches: usize,
    pub token_counter: u64,
}

pub struct ApiServer {
    /// `https://127.0.0.1:PORT`
    pub url: String,
    pub ca_path: PathBuf,
    pub ca_pem: String,
    pub dir: PathBuf,
    pub state: Arc<Mutex<State>>,
    events: broadcast::Sender<Change>,
    cut: broadcast::Sender<()>,
    runtime: Option<tokio::runtime::Runtime>,
}

pub const ADMIN_TOKEN: &str = "admin-token-3f9c1e7a5b";

impl ApiServer {
    pub fn start() -> ApiServer {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempdir("apiserver");
        let ca = TestCa::new("apiserver");
        let cert = ca.server_cert();
        let ca_path = ca.write(&dir);
        let state = Arc::new(Mutex::new(State::default()));
        state.lock().unwrap().tokens.insert(ADMIN_TOKEN.into(), Identity::Admin);
        let (events, _) = broadcast::channel(4096);
        let (cut, _) = broadcast::channel(16);
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let shared =
            server::Shared { state: state.clone(), events: events.clone(), cut: cut.clone(), ca_pem: ca.pem() };
        runtime.spawn(server::serve(listener, cert, shared));
        ApiServer { url, ca_path, ca_pem: ca.pem(), dir, state, events, cut, runtime: Some(runtime) }
    }

    /// Registers a bearer token.
    pub fn add_token(&self, token: &str, identity: Identity) {
        self.state.lock().unwrap().tokens.insert(token.into(), identity);
    }

    /// A kubeconfig for this server: with the CA (or without, to see the
    /// trust error) and a token (or none).
    pub fn kubeconfig(&self, token: Option<&str>, with_ca: bool, namespace: &str) -> PathBuf {
        crate::write_kubeconfig(&self.url, &self.ca_path, token, with_ca, namespace, &tempdir("kubeconfig"))
    }

    /// Creates or replaces an object as a controller would (a status
    /// update), with a new resourceVersion and a watch event.
    pub fn put(&self, object: Value) -> Value {
        server::store(&self.state, &self.events, object, None)
    }

    /// The stored object.
    pub fn get(&self, plural: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        self.state
            .lock()
            .unwrap()
            .objects
            .get(&(plural.to_owned(), namespace.map(str::to_owned), name.to_owned()))
            .cloned()
    }

    /// Every stored object of a kind (in a namespace).
    pub fn list(&self, plural: &str, namespace: Option<&str>) -> Vec<Value> {
        let state = self.state.lock().unwrap();
        state
            .objects
            .iter()
            .filter(|((p, ns, _), _)| p == plural && ns.as_deref() == namespace)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// What `pods/log` answers for a container run.
    pub fn set_log(&self, namespace: &str, pod: &str, previous: bool, text: &str) {
        self.state.lock().unwrap().logs.insert((namespace.into(), pod.into(), previous), text.into());
    }

    /// Cuts every open watch stream, as a dropped connection would.
    pub fn cut_watches(&self) {
        let _ = self.cut.send(());
    }

    /// Forgets the history up to now: a watch from an older version gets 410.
    pub fn compact(&self) {
        let mut s = self.state.lock().unwrap();
        s.compacted_below = s.resource_version;
    }

    pub fn active_watches(&self) -> usize {
        self.state.lock().unwrap().active_watches
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Waits until at least `n` watches are open.
    pub fn wait_for_watches(&self, n: usize) {
        let start = std::time::Instant::now();
        while self.active_watches() < n {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(30),
                "only {} watches opened",
                self.active_watches()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Sends a change to every watcher (used by `put`).
    pub fn events(&self) -> &broadcast::Sender<Change> {
        &self.events
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}
