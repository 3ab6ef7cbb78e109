//! Job and Pod status as a real apiserver shows them, for the tests to
//! script what the Job controller and the kubelet would do. Shapes follow
//! the API reference for Job and Pod status: conditions with reasons,
//! containerStatuses with terminated exit codes, reasons and messages,
//! uncountedTerminatedPods, startTime / completionTime.

use serde_json::{Value, json};

use super::server::now;

/// A pod of a Job, as the Job controller creates it and the kubelet reports it.
pub struct PodSpec<'a> {
    pub job: &'a Value,
    pub name: &'a str,
    pub index: Option<u32>,
    /// Pending, Running, Succeeded, Failed.
    pub phase: &'a str,
    /// The container's terminated state: exit code, reason, message.
    pub terminated: Option<(i32, &'a str, &'a str)>,
    pub restarts: i32,
    /// The previous run's exit code (restartPolicy OnFailure).
    pub last_exit_code: Option<i32>,
}

pub fn pod(p: &PodSpec<'_>) -> Value {
    let job = p.job;
    let ns = job["metadata"]["namespace"].as_str().unwrap();
    let job_name = job["metadata"]["name"].as_str().unwrap();
    let uid = job["metadata"]["uid"].as_str().unwrap_or("00000000-0000-0000-0000-000000000000");
    let template = &job["spec"]["template"];
    let container = &template["spec"]["containers"][0];
    let mut labels = template["metadata"]["labels"].clone();
    labels["batch.kubernetes.io/job-name"] = json!(job_name);
    labels["job-name"] = json!(job_name);
    let mut annotations = json!({});
    if let Some(i) = p.index {
        labels["batch.kubernetes.io/job-completion-index"] = json!(i.to_string());
        annotations["batch.kubernetes.io/job-completion-index"] = json!(i.to_string());
    }
    let t = now();
    let state = match (p.phase, p.terminated) {
        (_, Some((code, reason, message))) => json!({ "terminated": {
            "exitCode": code, "reason": reason, "message": message,
            "startedAt": t, "finishedAt": t, "containerID": format!("containerd://{:064x}", p.name.len() * 977) } }),
        ("Running", None) => json!({ "running": { "startedAt": t } }),
        _ => json!({ "waiting": { "reason": "ContainerCreating" } }),
    };
    let last_state = match p.last_exit_code {
        Some(code) => json!({ "terminated": { "exitCode": code, "reason": "Error", "startedAt": t, "finishedAt": t } }),
        None => json!({}),
    };
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": p.name, "namespace": ns, "labels": labels, "annotations": annotations,
            "generateName": format!("{job_name}-"),
            "ownerReferences": [{ "apiVersion": "batch/v1", "kind": "Job", "name": job_name, "uid": uid,
                                  "controller": true, "blockOwnerDeletion": true }],
            "finalizers": if matches!(p.phase, "Succeeded" | "Failed") { json!([]) } else { json!(["batch.kubernetes.io/job-tracking"]) },
        },
        "spec": {
            "restartPolicy": template["spec"]["restartPolicy"],
            "containers": [container],
            "nodeName": "worker-1",
            "serviceAccountName": "default",
        },
        "status": {
            "phase": p.phase,
            "hostIP": "10.0.0.11",
            "podIP": "10.244.1.17",
            "qosClass": "Guaranteed",
            "startTime": t,
            "conditions": [
                { "type": "PodScheduled", "status": "True", "lastTransitionTime": t },
                { "type": "Ready", "status": if p.phase == "Running" { "True" } else { "False" }, "lastTransitionTime": t },
            ],
            "containerStatuses": [{
                "name": "worker",
                "image": container["image"],
                "imageID": "127.0.0.1:5000/job-test@sha256:0000000000000000000000000000000000000000000000000000000000000000",
                "ready": p.phase == "Running",
                "started": p.phase == "Running",
                "restartCount": p.restarts,
                "state": state,
                "lastState": last_state,
            }],
        },
    })
}

/// The Job with this status.
pub fn with_status(job: &Value, status: Value) -> Value {
    let mut j = job.clone();
    j["status"] = status;
    j
}

/// A running Job: active pods, counts so far.
pub fn running(job: &Value, active: i32, succeeded: i32, failed: i32) -> Value {
    with_status(
        job,
        json!({
            "startTime": now(), "active": active, "ready": active, "succeeded": succeeded, "failed": failed,
            "terminating": 0, "uncountedTerminatedPods": {},
        }),
    )
}

/// The Job controller's verdict before the last pods are gone
/// (FailureTarget), then the final Failed condition.
pub fn failure_target(job: &Value, reason: &str, message: &str, succeeded: i32, failed: i32, active: i32) -> Value {
    let t = now();
    with_status(
        job,
        json!({
            "startTime": t, "active": active, "ready": 0, "succeeded": succeeded, "failed": failed, "terminating": active,
            "uncountedTerminatedPods": {},
            "conditions": [{ "type": "FailureTarget", "status": "True", "reason": reason, "message": message,
                             "lastProbeTime": t, "lastTransitionTime": t }],
        }),
    )
}

pub fn failed(job: &Value, reason: &str, message: &str, succeeded: i32, failed: i32) -> Value {
    let t = now();
    with_status(
        job,
        json!({
            "startTime": t, "active": 0, "ready": 0, "succeeded": succeeded, "failed": failed, "terminating": 0,
            "uncountedTerminatedPods": {},
            "conditions": [
                { "type": "FailureTarget", "status": "True", "reason": reason, "message": message, "lastProbeTime": t, "lastTransitionTime": t },
                { "type": "Failed", "status": "True", "reason": reason, "message": message, "lastProbeTime": t, "lastTransitionTime": t },
            ],
        }),
    )
}

pub fn complete(job: &Value, succeeded: i32, failed: i32) -> Value {
    let t = now();
    with_status(
        job,
        json!({
            "startTime": t, "completionTime": t, "active": 0, "ready": 0, "succeeded": succeeded, "failed": failed,
            "terminating": 0, "uncountedTerminatedPods": {},
            "conditions": [
                { "type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods", "lastProbeTime": t, "lastTransitionTime": t },
                { "type": "Complete", "status": "True", "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods", "lastProbeTime": t, "lastTransitionTime": t },
            ],
        }),
    )
}

/// The termination message the worker writes for a simulated failure.
pub fn worker_message(pod: &str, draw: f64, p: f64, code: i32) -> String {
    format!(
        "job-worker: simulated failure: draw {draw} < fail probability {p}; exit code {code} (pod {pod}, index none, attempt 0)"
    )
}
