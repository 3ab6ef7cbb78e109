//! The double's HTTP side: routing, authentication, RBAC, the verbs.

use std::convert::Infallible;
use std::ops::Bound;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request as HttpRequest, Response};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::{Change, Identity, Request, State};
use crate::tls::ServerCert;

type Body = BoxBody<Bytes, std::io::Error>;

#[derive(Clone)]
pub struct Shared {
    pub state: Arc<Mutex<State>>,
    pub events: broadcast::Sender<Change>,
    pub cut: broadcast::Sender<()>,
    pub ca_pem: String,
}

/// A kind the double serves.
pub struct Kind {
    pub plural: &'static str,
    pub kind: &'static str,
    pub group: &'static str,
    pub version: &'static str,
    pub namespaced: bool,
}

impl Kind {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.to_owned() } else { format!("{}/{}", self.group, self.version) }
    }
    /// `jobs.batch`, as API messages name a resource.
    fn qualified(&self) -> String {
        if self.group.is_empty() { self.plural.to_owned() } else { format!("{}.{}", self.plural, self.group) }
    }
}

pub const KINDS: &[Kind] = &[
    Kind { plural: "namespaces", kind: "Namespace", group: "", version: "v1", namespaced: false },
    Kind { plural: "pods", kind: "Pod", group: "", version: "v1", namespaced: true },
    Kind { plural: "secrets", kind: "Secret", group: "", version: "v1", namespaced: true },
    Kind { plural: "serviceaccounts", kind: "ServiceAccount", group: "", version: "v1", namespaced: true },
    Kind { plural: "jobs", kind: "Job", group: "batch", version: "v1", namespaced: true },
    Kind {
        plural: "networkpolicies",
        kind: "NetworkPolicy",
        group: "networking.k8s.io",
        version: "v1",
        namespaced: true,
    },
    Kind { plural: "roles", kind: "Role", group: "rbac.authorization.k8s.io", version: "v1", namespaced: true },
    Kind {
        plural: "rolebindings",
        kind: "RoleBinding",
        group: "rbac.authorization.k8s.io",
        version: "v1",
        namespaced: true,
    },
    Kind {
        plural: "clusterroles",
        kind: "ClusterRole",
        group: "rbac.authorization.k8s.io",
        version: "v1",
        namespaced: false,
    },
    Kind {
        plural: "clusterrolebindings",
        kind: "ClusterRoleBinding",
        group: "rbac.authorization.k8s.io",
        version: "v1",
        namespaced: false,
    },
];

fn kind_by_plural(group: &str, plural: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.plural == plural && k.group == group)
}

pub fn kind_by_name(kind: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.kind == kind)
}

/// What a path addresses.
struct Target {
    kind: &'static Kind,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

fn parse_path(path: &str) -> Option<Target> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, rest) = match parts.as_slice() {
        ["api", "v1", rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => return None,
    };
    let t = |plural: &str, namespace: Option<&str>, name: Option<&str>, sub: Option<&str>| {
        // A namespaced kind only under a namespace, a cluster-wide one never.
        kind_by_plural(group, plural).filter(|k| k.namespaced == namespace.is_some()).map(|kind| Target {
            kind,
            namespace: namespace.map(str::to_owned),
            name: name.map(str::to_owned),
            subresource: sub.map(str::to_owned),
        })
    };
    match rest {
        ["namespaces"] if group.is_empty() => t("namespaces", None, None, None),
        ["namespaces", name] if group.is_empty() => t("namespaces", None, Some(name), None),
        ["namespaces", ns, plural] => t(plural, Some(ns), None, None),
        ["namespaces", ns, plural, name] => t(plural, Some(ns), Some(name), None),
        ["namespaces", ns, plural, name, sub] => t(plural, Some(ns), Some(name), Some(sub)),
        [plural] => t(plural, None, None, None),
        [plural, name] => t(plural, None, Some(name), None),
        _ => None,
    }
}

fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == key).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A `Status` object, as the apiserver returns for failures.
pub fn status(code: u16, reason: &str, message: &str, details: Value) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "details": details, "code": code,
    })
}

fn json_response(code: u16, body: &Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(
            Full::new(Bytes::from(serde_json::to_vec(body).unwrap()))
                .map_err(|never: Infallible| match never {})
                .boxed(),
        )
        .unwrap()
}

fn text_response(code: u16, text: String) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from(text)).map_err(|never: Infallible| match never {}).boxed())
        .unwrap()
}

/// Now, to the second, as the API server writes times.
pub fn now() -> String {
    jiff::Timestamp::from_second(jiff::Timestamp::now().as_second()).unwrap().to_string()
}

fn new_uid(state: &mut State) -> String {
    state.token_counter += 1;
    let n = state.token_counter;
    format!("6b1c{n:04x}-3f2a-4c1d-9e8f-{:012x}", n * 7919)
}

pub async fn serve(listener: tokio::net::TcpListener, cert: ServerCert, shared: Shared) {
    crate::tls::serve_https(listener, cert, move |req| handle(req, shared.clone())).await;
}

async fn handle(req: HttpRequest<Incoming>, shared: Shared) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let content_type = header("content-type");
    let authorization = header("authorization");
    shared.state.lock().unwrap().requests.push(Request {
        method: method.to_string(),
        path: path.clone(),
        query: query.clone(),
        content_type: content_type.clone(),
        authorization: authorization.clone(),
    });
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();

    // Authentication: a known bearer token, or 401.
    let identity = authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Bearer "))
        .and_then(|t| shared.state.lock().unwrap().tokens.get(t.trim()).cloned());
    let Some(identity) = identity else {
        return json_response(401, &status(401, "Unauthorized", "Unauthorized", json!({})));
    };

    // A cluster as new as the schema the manifests are written against:
    // the double stands for what 1.20 lacks.
    if path == "/version" {
        return json_response(
            200,
            &json!({ "major": "1", "minor": "33", "gitVersion": "v1.33.0", "gitCommit": "", "gitTreeState": "clean",
                     "buildDate": "2025-04-23T13:00:00Z", "goVersion": "go1.24.2", "compiler": "gc",
                     "platform": "linux/amd64" }),
        );
    }
    let Some(target) = parse_path(&path) else {
        return json_response(
            404,
            &status(404, "NotFound", "the server could not find the requested resource", json!({})),
        );
    };
    let watch = matches!(query_param(&query, "watch").as_deref(), Some("true" | "1"));
    let verb = match (&method, target.name.is_some(), watch) {
        (&Method::GET, _, true) => "watch",
        (&Method::GET, true, _) => "get",
        (&Method::GET, false, _) => "list",
        (&Method::PATCH, ..) => "patch",
        (&Method::DELETE, ..) => "delete",
        (&Method::POST, ..) => "create",
        (&Method::PUT, ..) => "update",
        _ => {
            return json_response(
                405,
                &status(405, "MethodNotAllowed", "the server does not allow this method", json!({})),
            );
        }
    };
    let resource = match &target.subresource {
        Some(sub) => format!("{}/{sub}", target.kind.plural),
        None => target.kind.plural.to_owned(),
    };
    if !authorized(
        &shared.state.lock().unwrap(),
        &identity,
        verb,
        target.kind.group,
        &resource,
        target.namespace.as_deref(),
    ) {
        let scope = match &target.namespace {
            Some(ns) => format!("in the namespace \"{ns}\""),
            None => "at the cluster scope".to_owned(),
        };
        let named = target.name.as_ref().map_or(String::new(), |n| format!(" \"{n}\""));
        let message = format!(
            "{}{named} is forbidden: User \"{}\" cannot {verb} resource \"{resource}\" in API group \"{}\" {scope}",
            target.kind.qualified(),
            identity.user(),
            target.kind.group
        );
        let mut details = json!({ "kind": target.kind.plural });
        if let Some(n) = &target.name {
            details["name"] = json!(n);
        }
        if !target.kind.group.is_empty() {
            details["group"] = json!(target.kind.group);
        }
        return json_response(403, &status(403, "Forbidden", &message, details));
    }

    match (verb, target.subresource.as_deref()) {
        ("get", Some("log")) => log(&shared, &target, &query),
        ("get", None) => get(&shared, &target),
        ("list", None) => list(&shared, &target, &query),
        ("watch", None) => watch_stream(&shared, &target, &query),
        ("patch", None) => apply(&shared, &target, &query, content_type.as_deref(), &body),
        ("delete", None) => delete(&shared, &target, &query, &body),
        _ => json_response(405, &status(405, "MethodNotAllowed", "not supported by the double", json!({}))),
    }
}

/// RBAC: is `identity` allowed `verb` on `resource` (e.g. "pods/log") of
/// `group` in `namespace`?
fn authorized(
    state: &State,
    identity: &Identity,
    verb: &str,
    group: &str,
    resource: &str,
    namespace: Option<&str>,
) -> bool {
    let Identity::ServiceAccount { namespace: sa_ns, name: sa } = identity else { return true };
    let rule_allows = |rule: &Value| {
        let has = |field: &str, want: &str| {
            rule[field]
                .as_array()
                .is_some_and(|a| a.iter().any(|v| v.as_str() == Some(want) || v.as_str() == Some("*")))
        };
        has("apiGroups", group) && has("resources", resource) && has("verbs", verb)
    };
    let role_allows = |role: Option<&Value>| {
        role.and_then(|r| r["rules"].as_array()).is_some_and(|rules| rules.iter().any(rule_allows))
    };
    let binds_me = |binding: &Value| {
        binding["subjects"].as_array().is_some_and(|s| {
            s.iter()
                .any(|s| s["kind"] == "ServiceAccount" && s["name"] == sa.as_str() && s["namespace"] == sa_ns.as_str())
        })
    };
    let get = |plural: &str, ns: Option<&str>, name: &str| {
        state.objects.get(&(plural.to_owned(), ns.map(str::to_owned), name.to_owned()))
    };
    // RoleBindings in the request's namespace, to a Role there or a ClusterRole.
    if let Some(ns) = namespace {
        for ((plural, bns, _), binding) in &state.objects {
            if plural == "rolebindings" && bns.as_deref() == Some(ns) && binds_me(binding) {
                let role_name = binding["roleRef"]["name"].as_str().unwrap_or_default();
                let role = match binding["roleRef"]["kind"].as_str() {
                    Some("ClusterRole") => get("clusterroles", None, role_name),
                    _ => get("roles", Some(ns), role_name),
                };
                if role_allows(role) {
                    return true;
                }
            }
        }
    }
    state.objects.iter().any(|((plural, _, _), binding)| {
        plural == "clusterrolebindings"
            && binds_me(binding)
            && role_allows(get("clusterroles", None, binding["roleRef"]["name"].as_str().unwrap_or_default()))
    })
}

fn key(target: &Target, name: &str) -> (String, Option<String>, String) {
    (target.kind.plural.to_owned(), target.namespace.clone(), name.to_owned())
}

fn not_found(target: &Target, name: &str) -> Response<Body> {
    let message = format!("{} \"{name}\" not found", target.kind.qualified());
    json_response(
        404,
        &status(
            404,
            "NotFound",
            &message,
            json!({"name": name, "group": target.kind.group, "kind": target.kind.plural}),
        ),
    )
}

fn get(shared: &Shared, target: &Target) -> Response<Body> {
    let name = target.name.as_deref().unwrap();
    match shared.state.lock().unwrap().objects.get(&key(target, name)) {
        Some(o) => json_response(200, o),
        None => not_found(target, name),
    }
}

/// `k=v,k2!=v2,k3` against the labels.
fn labels_match(selector: Option<&str>, object: &Value) -> bool {
    let Some(selector) = selector.filter(|s| !s.is_empty()) else { return true };
    let labels = &object["metadata"]["labels"];
    selector.split(',').all(|term| {
        if let Some((k, v)) = term.split_once("!=") {
            labels[k.trim()].as_str() != Some(v.trim())
        } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
            labels[k.trim()].as_str() == Some(v.trim())
        } else {
            labels.get(term.trim()).is_some()
        }
    })
}

fn fields_match(selector: Option<&str>, object: &Value) -> bool {
    let Some(selector) = selector.filter(|s| !s.is_empty()) else { return true };
    selector.split(',').all(|term| match term.split_once('=') {
        Some(("metadata.name", v)) => object["metadata"]["name"] == v,
        Some(("metadata.namespace", v)) => object["metadata"]["namespace"] == v,
        _ => true,
    })
}

fn matches(target: &Target, query: &str, plural: &str, namespace: Option<&str>, object: &Value) -> bool {
    plural == target.kind.plural
        && (target.namespace.is_none() || target.namespace.as_deref() == namespace)
        && labels_match(query_param(query, "labelSelector").as_deref(), object)
        && fields_match(query_param(query, "fieldSelector").as_deref(), object)
}

/// LIST, in pages when asked (`limit`, then `continue`), as a real
/// apiserver serves them: clients list big collections page by page.
fn list(shared: &Shared, target: &Target, query: &str) -> Response<Body> {
    let state = shared.state.lock().unwrap();
    let limit = query_param(query, "limit").and_then(|l| l.parse::<usize>().ok()).filter(|&l| l > 0);
    // The token names the last object of the previous page: "namespace/name".
    // The next page starts right after it, without walking the pages before.
    let after = query_param(query, "continue").filter(|c| !c.is_empty()).map(|c| {
        let (ns, name) = c.split_once('/').unwrap_or(("", &c));
        (target.kind.plural.to_owned(), Some(ns.to_owned()).filter(|n| !n.is_empty()), name.to_owned())
    });
    let start = match after {
        Some(key) => Bound::Excluded(key),
        None => Bound::Unbounded,
    };
    let mut matching = state
        .objects
        .range((start, Bound::Unbounded))
        .filter(|((plural, ns, _), o)| matches(target, query, plural, ns.as_deref(), o))
        .peekable();
    let mut page = Vec::new();
    while let Some(item) = matching.next_if(|_| limit.is_none_or(|l| page.len() < l)) {
        page.push(item);
    }
    let next = match (matching.peek(), page.last()) {
        (Some(_), Some(((_, ns, name), _))) => Some(format!("{}/{name}", ns.as_deref().unwrap_or(""))),
        _ => None,
    };
    let items: Vec<Value> = page
        .into_iter()
        .map(|(_, o)| {
            // Items of a list carry no kind and apiVersion, as from a real apiserver.
            let mut o = o.clone();
            if let Some(m) = o.as_object_mut() {
                m.remove("kind");
                m.remove("apiVersion");
            }
            o
        })
        .collect();
    let mut body = json!({
        "kind": format!("{}List", target.kind.kind),
        "apiVersion": target.kind.api_version(),
        "metadata": match next {
            Some(token) => json!({ "resourceVersion": state.resource_version.to_string(), "continue": token }),
            None => json!({ "resourceVersion": state.resource_version.to_string() }),
        },
    });
    // Moved in, not through json!, which would copy every item again.
    body["items"] = Value::Array(items);
    json_response(200, &body)
}

fn event_line(kind: &str, object: &Value) -> Bytes {
    // Written around the serialized object rather than through json!,
    // which would copy the object first; `kind` is one of the event words.
    let mut line = format!("{{\"type\":\"{kind}\",\"object\":").into_bytes();
    serde_json::to_writer(&mut line, object).unwrap();
    line.extend_from_slice(b"}\n");
    Bytes::from(line)
}

struct WatchGuard(Arc<Mutex<State>>);

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.0.lock().unwrap().active_watches -= 1;
    }
}

fn watch_stream(shared: &Shared, target: &Target, query: &str) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(256);
    let mut events = shared.events.subscribe();
    let mut cut = shared.cut.subscribe();
    let from: u64 = query_param(query, "resourceVersion").and_then(|v| v.parse().ok()).unwrap_or(0);
    let bookmarks = query_param(query, "allowWatchBookmarks").as_deref() == Some("true");
    let timeout =
        Duration::from_secs(query_param(query, "timeoutSeconds").and_then(|v| v.parse().ok()).unwrap_or(1800));
    let target = Target { kind: target.kind, namespace: target.namespace.clone(), name: None, subresource: None };
    let query = query.to_owned();
    // What happened before the watch began: the history after `from`, or
    // (for `from` 0) every current object as ADDED.
    let (initial, mut last, gone) = {
        let mut state = shared.state.lock().unwrap();
        state.active_watches += 1;
        let gone = from != 0 && from < state.compacted_below;
        let initial: Vec<Bytes> = if gone {
            vec![]
        } else if from == 0 {
            state
                .objects
                .iter()
                .filter(|((p, ns, _), o)| matches(&target, &query, p, ns.as_deref(), o))
                .map(|(_, o)| event_line("ADDED", o))
                .collect()
        } else {
            state
                .changes
                .iter()
                .filter(|c| {
                    c.resource_version > from && matches(&target, &query, &c.plural, c.namespace.as_deref(), &c.object)
                })
                .map(|c| c.line.clone())
                .collect()
        };
        (initial, state.resource_version.max(from), gone)
    };
    let guard = WatchGuard(shared.state.clone());
    let kind = target.kind;
    tokio::spawn(async move {
        let _guard = guard;
        if gone {
            let err = status(410, "Expired", &format!("too old resource version: {from} ({last})"), json!({}));
            let _ = tx.send(Ok(Frame::data(event_line("ERROR", &err)))).await;
            return;
        }
        for line in initial {
            if tx.send(Ok(Frame::data(line))).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = cut.recv() => {
                    // A broken connection: the chunked body ends in an error.
                    let _ = tx.send(Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "cut by the test"))).await;
                    return;
                }
                change = events.recv() => match change {
                    Ok(c) if c.resource_version > last => {
                        last = c.resource_version;
                        if matches(&target, &query, &c.plural, c.namespace.as_deref(), &c.object)
                            && tx.send(Ok(Frame::data(c.line.clone()))).await.is_err()
                        {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => return,
                },
                _ = tick.tick(), if bookmarks => {
                    let bookmark = json!({ "kind": kind.kind, "apiVersion": kind.api_version(), "metadata": { "resourceVersion": last.to_string() } });
                    if tx.send(Ok(Frame::data(event_line("BOOKMARK", &bookmark)))).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(BodyExt::boxed(StreamBody::new(stream)))
        .unwrap()
}

/// Stores an object with a new resourceVersion and tells the watchers.
pub fn store(
    state: &Mutex<State>,
    events: &broadcast::Sender<Change>,
    mut object: Value,
    kind_override: Option<&'static str>,
) -> Value {
    let kind = kind_by_name(object["kind"].as_str().expect("an object with a kind")).expect("a kind the double serves");
    let change = {
        let mut s = state.lock().unwrap();
        s.resource_version += 1;
        let rv = s.resource_version;
        let name = object["metadata"]["name"].as_str().expect("an object with a name").to_owned();
        let namespace = object["metadata"]["namespace"].as_str().map(str::to_owned);
        let k = (kind.plural.to_owned(), namespace.clone(), name);
        let existed = s.objects.contains_key(&k);
        if object["metadata"]["uid"].is_null() {
            object["metadata"]["uid"] = json!(new_uid(&mut s));
        }
        if object["metadata"]["creationTimestamp"].is_null() {
            object["metadata"]["creationTimestamp"] = json!(now());
        }
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        s.objects.insert(k, object.clone());
        let event = kind_override.unwrap_or(if existed { "MODIFIED" } else { "ADDED" });
        let change = Change {
            resource_version: rv,
            kind: event,
            plural: kind.plural.to_owned(),
            namespace,
            line: event_line(event, &object),
            object: Arc::new(object.clone()),
        };
        s.changes.push(change.clone());
        change
    };
    let _ = events.send(change);
    object
}

fn remove(
    state: &Mutex<State>,
    events: &broadcast::Sender<Change>,
    plural: &str,
    namespace: Option<&str>,
    name: &str,
) -> Option<Value> {
    let change = {
        let mut s = state.lock().unwrap();
        let mut object = s.objects.remove(&(plural.to_owned(), namespace.map(str::to_owned), name.to_owned()))?;
        s.resource_version += 1;
        let rv = s.resource_version;
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        object["metadata"]["deletionTimestamp"] = json!(now());
        let change = Change {
            resource_version: rv,
            kind: "DELETED",
            plural: plural.to_owned(),
            namespace: namespace.map(str::to_owned),
            line: event_line("DELETED", &object),
            object: Arc::new(object),
        };
        s.changes.push(change.clone());
        change
    };
    let object = Value::clone(&change.object);
    let _ = events.send(change);
    Some(object)
}

/// Server-side apply: maps merge, lists are replaced, the applied
/// configuration wins (the requests are forced).
fn merge(base: &mut Value, applied: &Value) {
    match (base, applied) {
        (Value::Object(b), Value::Object(a)) => {
            for (k, v) in a {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, a) => *b = a.clone(),
    }
}

fn apply(shared: &Shared, target: &Target, query: &str, content_type: Option<&str>, body: &[u8]) -> Response<Body> {
    let name = target.name.clone().unwrap();
    if content_type != Some("application/apply-patch+yaml") {
        return json_response(
            415,
            &status(
                415,
                "UnsupportedMediaType",
                &format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {content_type:?})"
                ),
                json!({}),
            ),
        );
    }
    let Some(manager) = query_param(query, "fieldManager").filter(|m| !m.is_empty()) else {
        return json_response(
            400,
            &status(
                400,
                "BadRequest",
                "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                json!({}),
            ),
        );
    };
    let text = String::from_utf8_lossy(body);
    let applied: Value =
        match serde_json::from_str(&text).or_else(|_| serde_saphyr::from_str(&text).map_err(|e| e.to_string())) {
            Ok(v) => v,
            Err(e) => {
                return json_response(400, &status(400, "BadRequest", &format!("error decoding YAML: {e}"), json!({})));
            }
        };
    if applied["kind"] != target.kind.kind
        || applied["apiVersion"] != target.kind.api_version().as_str()
        || applied["metadata"]["name"] != name.as_str()
    {
        return json_response(
            400,
            &status(
                400,
                "BadRequest",
                "the kind, apiVersion or name of the body does not match the request URL",
                json!({}),
            ),
        );
    }
    // dryRun=All: everything a real apply does, nothing stored, no event.
    let dry_run = query_param(query, "dryRun").as_deref() == Some("All");
    let existing = shared.state.lock().unwrap().objects.get(&key(target, &name)).cloned();
    let managed = json!([{ "manager": manager, "operation": "Apply", "apiVersion": target.kind.api_version(), "time": now(), "fieldsType": "FieldsV1", "fieldsV1": {} }]);
    match existing {
        None => {
            let mut object = applied.clone();
            if let Some(ns) = &target.namespace {
                object["metadata"]["namespace"] = json!(ns);
            }
            object["metadata"]["managedFields"] = managed;
            if target.kind.kind == "Job" {
                // What the apiserver adds to a new Job: the selector and the
                // controller-uid labels on its template.
                let uid = new_uid(&mut shared.state.lock().unwrap());
                object["metadata"]["uid"] = json!(uid);
                object["spec"]["selector"] = json!({ "matchLabels": { "batch.kubernetes.io/controller-uid": uid } });
                for (k, v) in [
                    ("batch.kubernetes.io/controller-uid", uid.as_str()),
                    ("batch.kubernetes.io/job-name", name.as_str()),
                    ("controller-uid", uid.as_str()),
                    ("job-name", name.as_str()),
                ] {
                    object["spec"]["template"]["metadata"]["labels"][k] = json!(v);
                }
                object["status"] = json!({});
            }
            if dry_run {
                return json_response(201, &object);
            }
            let stored = store(&shared.state, &shared.events, object, None);
            if stored["kind"] == "Secret" && stored["type"] == "kubernetes.io/service-account-token" {
                token_controller(shared.clone(), stored.clone());
            }
            json_response(201, &stored)
        }
        Some(existing) => {
            let mut merged = existing.clone();
            let mut body = applied.clone();
            if let Some(m) = body.as_object_mut() {
                m.remove("status");
            }
            merge(&mut merged, &body);
            if target.kind.kind == "Job" && merged["spec"]["template"] != existing["spec"]["template"] {
                let message = format!(
                    "Job.batch \"{name}\" is invalid: spec.template: Invalid value: core.PodTemplateSpec{{...}}: field is immutable"
                );
                let details = json!({ "name": name, "group": "batch", "kind": "Job", "causes": [{
                    "reason": "FieldValueInvalid", "message": "Invalid value: core.PodTemplateSpec{...}: field is immutable", "field": "spec.template" }] });
                return json_response(422, &status(422, "Invalid", &message, details));
            }
            if merged == existing {
                return json_response(200, &existing);
            }
            if dry_run {
                return json_response(200, &merged);
            }
            json_response(200, &store(&shared.state, &shared.events, merged, None))
        }
    }
}

/// The token controller: fills a service-account token Secret with a new
/// token, the cluster CA and the namespace, and makes the token valid.
fn token_controller(shared: Shared, secret: Value) {
    use base64::Engine;
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let ns = secret["metadata"]["namespace"].as_str().unwrap_or_default().to_owned();
        let Some(sa) =
            secret["metadata"]["annotations"]["kubernetes.io/service-account.name"].as_str().map(str::to_owned)
        else {
            return;
        };
        let token = {
            let mut s = shared.state.lock().unwrap();
            s.token_counter += 1;
            let token =
                format!("eyJhbGciOiJSUzI1NiJ9.sa-{ns}-{sa}-{:08x}.c2lnbmF0dXJl", s.token_counter * 2_654_435_761);
            s.tokens.insert(token.clone(), Identity::ServiceAccount { namespace: ns.clone(), name: sa.clone() });
            token
        };
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let mut filled = secret.clone();
        filled["data"] = json!({ "token": b64(token.as_bytes()), "ca.crt": b64(shared.ca_pem.as_bytes()), "namespace": b64(ns.as_bytes()) });
        filled["metadata"]["annotations"]["kubernetes.io/service-account.uid"] =
            json!("2b7c1e5d-0000-4000-8000-000000000001");
        store(&shared.state, &shared.events, filled, None);
    });
}

fn delete(shared: &Shared, target: &Target, query: &str, body: &[u8]) -> Response<Body> {
    let name = target.name.clone().unwrap();
    let policy = query_param(query, "propagationPolicy").or_else(|| {
        serde_json::from_slice::<Value>(body).ok().and_then(|v| v["propagationPolicy"].as_str().map(str::to_owned))
    });
    shared
        .state
        .lock()
        .unwrap()
        .requests
        .last_mut()
        .unwrap()
        .query
        .push_str(&format!("&observedPropagationPolicy={}", policy.clone().unwrap_or_default()));
    let Some(object) = remove(&shared.state, &shared.events, target.kind.plural, target.namespace.as_deref(), &name)
    else {
        return not_found(target, &name);
    };
    if target.kind.kind == "Job" && policy.as_deref() != Some("Orphan") {
        // The garbage collector: the Job's pods follow it.
        let shared = shared.clone();
        let ns = target.namespace.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let pods: Vec<String> = {
                let s = shared.state.lock().unwrap();
                s.objects
                    .iter()
                    .filter(|((p, n, _), o)| {
                        p == "pods"
                            && *n == ns
                            && o["metadata"]["labels"]["batch.kubernetes.io/job-name"] == name.as_str()
                    })
                    .map(|((_, _, pod), _)| pod.clone())
                    .collect()
            };
            for pod in pods {
                remove(&shared.state, &shared.events, "pods", ns.as_deref(), &pod);
            }
        });
    }
    json_response(
        200,
        &json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                 "details": { "name": object["metadata"]["name"], "group": target.kind.group, "kind": target.kind.plural, "uid": object["metadata"]["uid"] } }),
    )
}

fn log(shared: &Shared, target: &Target, query: &str) -> Response<Body> {
    let pod = target.name.clone().unwrap();
    let ns = target.namespace.clone().unwrap_or_default();
    let previous = query_param(query, "previous").as_deref() == Some("true");
    let state = shared.state.lock().unwrap();
    if !state.objects.contains_key(&("pods".to_owned(), Some(ns.clone()), pod.clone())) {
        return not_found(target, &pod);
    }
    match state.logs.get(&(ns, pod.clone(), previous)) {
        Some(text) => text_response(200, text.clone()),
        None if previous => json_response(
            400,
            &status(
                400,
                "BadRequest",
                &format!("previous terminated container \"worker\" in pod \"{pod}\" not found"),
                json!({}),
            ),
        ),
        None => text_response(200, String::new()),
    }
}
