//! The rendered manifests: the golden files, the official Kubernetes schema
//! (strict: no unknown field), the round trip through YAML, what the
//! security and retry settings are, and every refused input.

use std::path::Path;

use clap::Parser;
use k8s_openapi::api::batch::v1::Job;
use serde_json::Value;
use tests::{project_root, tempdir, xtask};
use xtask::flags::{Command, RenderFlags, Xtask};
use xtask::manifest::{self, Object, params};

/// Flag combinations that exercise every branch of the rendering.
const COMBINATIONS: &[&[&str]] = &[
    &[],
    &[
        "--completion-mode",
        "Indexed",
        "--backoff-limit-per-index",
        "1",
        "--max-failed-indexes",
        "2",
        "--fail-indexes",
        "0,1:42",
        "--fail-attempts",
        "1",
        "--seed",
        "7",
    ],
    &["--restart-policy", "OnFailure", "--fail-attempts", "2", "--work-duration", "2s", "--failure-mode", "oom"],
    &[
        "--cluster-wide",
        "--service-account",
        "java-admin",
        "--token-secret",
        "java-access-secret",
        "--role",
        "pod-updater",
        "--role-binding",
        "simu-auth-binding",
        "--pod-verbs",
        "get,watch,list,patch,update,delete,create",
    ],
    &[
        "--image",
        "crpi-xxxx.cn-shenzhen.personal.cr.aliyuncs.com/jerry-learn/job-test:1.0.0@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "--image-pull-secret",
        "acr-pull",
        "--cpu",
        "0.5",
        "--memory",
        "1Gi",
        "--name",
        "retry-demo",
        "--namespace",
        "demo",
    ],
    &["--suspend", "--parallelism", "0"],
    &["--restart-policy", "OnFailure", "--seed", "7"],
    MODERN,
];

/// The modern Job fields (issue 21), every one of the four flags.
const MODERN: &[&str] = &[
    "--completion-mode",
    "Indexed",
    "--backoff-limit-per-index",
    "1",
    "--fail-indexes",
    "1:42",
    "--success-policy",
    "indexes=0,2-3,count=2",
    "--success-policy",
    "count=4",
    "--pod-failure-rule",
    "FailIndex:exit=42",
    "--pod-failure-rule",
    "Ignore:exit!=0,2,container=worker",
    "--pod-failure-rule",
    "Count:condition=DisruptionTarget=False,ConfigIssue",
    "--pod-replacement-policy",
    "Failed",
    "--managed-by",
    "kueue.x-k8s.io/multikueue",
];

fn render_flags(args: &[&str]) -> RenderFlags {
    let mut argv = vec!["cargo xtask", "render"];
    argv.extend_from_slice(args);
    match Xtask::try_parse_from(argv).unwrap().command {
        Command::Render(f) => f,
        _ => unreachable!(),
    }
}

fn objects(args: &[&str]) -> Vec<Object> {
    let f = render_flags(args);
    let (job, _) = params::job_params(&f.job).unwrap_or_else(|e| panic!("{args:?}: {e}"));
    let (rbac, _) = params::rbac_params(&f.rbac, &job.namespace).unwrap();
    manifest::all_objects(&job, &rbac)
}

fn job_of(objects: &[Object]) -> &Job {
    objects.iter().find_map(|o| if let Object::Job(j) = o { Some(j.as_ref()) } else { None }).unwrap()
}

#[test]
fn the_golden_files_match_a_fresh_rendering() {
    let f = render_flags(&[]);
    let (job, _) = params::job_params(&f.job).unwrap();
    let (rbac, _) = params::rbac_params(&f.rbac, &job.namespace).unwrap();
    for (file, objects) in [
        ("manifests/job-deploy.yaml", manifest::job_objects(&job)),
        ("manifests/authorization.yaml", manifest::rbac_objects(&rbac)),
    ] {
        let committed = std::fs::read_to_string(project_root().join(file)).unwrap();
        let fresh = manifest::to_yaml(&objects).unwrap();
        assert!(
            committed == fresh,
            "{file} differs from a fresh rendering: run `cargo xtask render --write` and review the diff"
        );
    }
}

/// Loads a vendored schema file by the name its `$ref`s use.
struct VendoredSchemas;

impl jsonschema::Retrieve for VendoredSchemas {
    fn retrieve(&self, uri: &jsonschema::Uri<String>) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let name = uri.path().as_str().rsplit('/').next().unwrap_or_default().to_owned();
        Ok(serde_json::from_str(&std::fs::read_to_string(schema_dir().join(name))?)?)
    }
}

fn schema_dir() -> std::path::PathBuf {
    project_root().join("tests/schemas/kubernetes-v1.33.0-local-strict")
}

fn validate(doc: &Value) -> Vec<String> {
    let api_version = doc["apiVersion"].as_str().unwrap();
    let group = api_version.split('/').rev().nth(1).map(|g| g.split('.').next().unwrap());
    let version = api_version.rsplit('/').next().unwrap();
    let kind = doc["kind"].as_str().unwrap().to_lowercase();
    let file = match group {
        Some(g) => format!("{kind}-{g}-{version}.json"),
        None => format!("{kind}-{version}.json"),
    };
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(schema_dir().join(&file)).unwrap()).unwrap();
    let validator = jsonschema::options()
        .with_base_uri(format!("file:///api/{file}"))
        .with_retriever(VendoredSchemas)
        .build(&schema)
        .unwrap_or_else(|e| panic!("loading {file}: {e}"));
    validator.iter_errors(doc).map(|e| format!("{} at {}", e, e.instance_path())).collect()
}

#[test]
fn every_rendered_document_is_valid_for_kubernetes_1_33_strictly() {
    for args in COMBINATIONS {
        let yaml = manifest::to_yaml(&objects(args)).unwrap();
        // Validate what is written, parsed back from the YAML text.
        let docs: Vec<Value> = serde_saphyr::from_multiple(&yaml).unwrap();
        assert!(docs.len() >= 6, "{args:?}");
        for doc in &docs {
            let errors = validate(doc);
            assert!(
                errors.is_empty(),
                "{args:?}: {} {} is invalid:\n{}",
                doc["kind"],
                doc["metadata"]["name"],
                errors.join("\n")
            );
        }
    }
}

#[test]
fn the_schema_check_catches_an_unknown_field() {
    // The check is strict: a misspelled field is an error, not ignored.
    let yaml = manifest::to_yaml(&objects(&[])).unwrap();
    let mut docs: Vec<Value> = serde_saphyr::from_multiple(&yaml).unwrap();
    let job = docs.iter_mut().find(|d| d["kind"] == "Job").unwrap();
    job["spec"]["backofLimit"] = 3.into();
    assert!(!validate(job).is_empty());
}

#[test]
fn yaml_round_trips_into_the_typed_objects_with_no_field_lost() {
    for args in COMBINATIONS {
        let objects = objects(args);
        let yaml = manifest::to_yaml(&objects).unwrap();
        let back = manifest::from_yaml(&yaml).unwrap();
        assert_eq!(back, objects, "{args:?}");
        assert_eq!(manifest::to_yaml(&back).unwrap(), yaml, "{args:?}");
    }
}

#[test]
fn the_jobs_pods_get_a_network_policy_denying_all_traffic_unless_left_out() {
    for (args, name, namespace) in
        [(&[][..], "job-test", "job-test"), (&["--name", "retry-demo", "-n", "demo"], "retry-demo", "demo")]
    {
        let objects = objects(args);
        let kinds: Vec<String> = objects.iter().map(Object::describe).collect();
        // Applied in this order: no pod of the Job runs before its policy.
        let at = kinds.iter().position(|k| *k == format!("NetworkPolicy/{name}")).expect("a NetworkPolicy");
        assert_eq!(kinds[at + 1], format!("Job/{name}"), "{kinds:?}");
        let policy =
            objects.iter().find_map(|o| if let Object::NetworkPolicy(p) = o { Some(p) } else { None }).unwrap();
        let policy = serde_json::to_value(policy).unwrap();
        assert_eq!(policy["metadata"]["namespace"], namespace);
        // Both directions listed with no rule: nothing in, nothing out.
        assert_eq!(policy["spec"]["policyTypes"], serde_json::json!(["Ingress", "Egress"]));
        assert!(policy["spec"].get("ingress").is_none() && policy["spec"].get("egress").is_none(), "{policy}");
        // It selects the Job's pods: every label it asks for is on the pod template.
        let job = serde_json::to_value(job_of(&objects)).unwrap();
        let pod_labels = &job["spec"]["template"]["metadata"]["labels"];
        let selector = policy["spec"]["podSelector"]["matchLabels"].as_object().unwrap();
        assert!(!selector.is_empty());
        for (k, v) in selector {
            assert_eq!(&pod_labels[k], v, "{k}: the policy does not select the Job's pods");
        }
        assert_eq!(selector["app.kubernetes.io/instance"], name);
    }
    let without = objects(&["--no-network-policy"]);
    assert!(!without.iter().any(|o| matches!(o, Object::NetworkPolicy(_))));
    assert!(without.iter().any(|o| matches!(o, Object::Job(_))));
    let golden = std::fs::read_to_string(project_root().join("manifests/job-deploy.yaml")).unwrap();
    assert!(golden.contains("kind: NetworkPolicy"));
}

#[test]
fn the_default_image_is_a_placeholder_that_warns_and_says_so_in_the_file() {
    let placeholder = "registry.example.com/your-namespace/job-test:0.1.0";
    let (code, stdout, stderr) = render(&[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "warning: no --image: the Job names the placeholder {placeholder}, which is not pinned by digest"
        )),
        "{stderr}"
    );
    assert!(stdout.contains(&format!("image: {placeholder}\n")), "{stdout}");
    assert!(stdout.contains(&format!("# The image {placeholder} is a placeholder")), "{stdout}");
    let golden = std::fs::read_to_string(project_root().join("manifests/job-deploy.yaml")).unwrap();
    assert!(golden.contains(&format!("# The image {placeholder} is a placeholder")), "{golden}");
    // A pinned image: no warning, no note.
    let pinned = format!("{placeholder}@sha256:{}", "0123456789abcdef".repeat(4));
    let (code, stdout, stderr) = render(&["--image", &pinned]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("not pinned") && !stderr.contains("placeholder"), "{stderr}");
    assert!(!stdout.contains("is a placeholder"), "{stdout}");
}

#[test]
fn the_pod_is_locked_down() {
    let objects = objects(&[]);
    let job = serde_json::to_value(job_of(&objects)).unwrap();
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["runAsUser"], 65532);
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    let c = &pod["containers"][0];
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert_eq!(c["resources"]["limits"]["memory"], "32Mi");
    assert_eq!(c["resources"]["requests"]["cpu"], "50m");
    // A tag can move: pulled every time. A digest cannot: pulled if absent.
    assert_eq!(c["imagePullPolicy"], "Always");
    let pinned = serde_json::to_value(job_of(&objects_with_image())).unwrap();
    assert_eq!(pinned["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"], "IfNotPresent");
    let labels = &job["metadata"]["labels"];
    for key in [
        "app.kubernetes.io/name",
        "app.kubernetes.io/instance",
        "app.kubernetes.io/version",
        "app.kubernetes.io/managed-by",
    ] {
        assert!(labels[key].is_string(), "label {key} missing");
    }
}

fn objects_with_image() -> Vec<Object> {
    objects(COMBINATIONS[4])
}

#[test]
fn configuration_errors_fail_the_job_at_once_and_disruptions_are_ignored() {
    let job = serde_json::to_value(job_of(&objects(&[]))).unwrap();
    let rules = &job["spec"]["podFailurePolicy"]["rules"];
    assert_eq!(rules[0]["action"], "FailJob");
    assert_eq!(rules[0]["onExitCodes"]["values"], serde_json::json!([2]));
    assert_eq!(rules[0]["onExitCodes"]["containerName"], "worker");
    assert_eq!(rules[1]["action"], "Ignore");
    assert_eq!(rules[1]["onPodConditions"][0]["type"], "DisruptionTarget");
    // Kubernetes allows a podFailurePolicy only with restartPolicy Never.
    let on_failure = serde_json::to_value(job_of(&objects(COMBINATIONS[2]))).unwrap();
    assert!(on_failure["spec"]["podFailurePolicy"].is_null());
}

#[test]
fn attempts_are_counted_where_the_worker_can_see_them() {
    let indexed = serde_json::to_value(job_of(&objects(COMBINATIONS[1]))).unwrap();
    let pod = &indexed["spec"]["template"]["spec"];
    let env = pod["containers"][0]["env"].as_array().unwrap();
    let get = |name: &str| env.iter().find(|e| e["name"] == name).cloned().unwrap_or(Value::Null);
    assert_eq!(get("FAIL_ATTEMPTS")["value"], "1");
    assert_eq!(get("STATE_DIR")["value"], "/state");
    assert_eq!(get("FAIL_INDEXES")["value"], "0,1:42");
    assert_eq!(get("WORKER_SEED")["value"], "7");
    assert_eq!(
        get("JOB_INDEX_FAILURE_COUNT")["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.annotations['batch.kubernetes.io/job-index-failure-count']"
    );
    assert_eq!(pod["volumes"][0]["name"], "state");
    assert!(pod["volumes"][0]["emptyDir"].is_object());
    assert_eq!(pod["containers"][0]["volumeMounts"][0]["mountPath"], "/state");
    assert_eq!(indexed["spec"]["backoffLimitPerIndex"], 1);
    assert_eq!(indexed["spec"]["maxFailedIndexes"], 2);
    // With a per-index limit the global one is left to Kubernetes.
    assert!(indexed["spec"]["backoffLimit"].is_null());
    // No attempts to count: no volume.
    let plain = serde_json::to_value(job_of(&objects(&[]))).unwrap();
    assert!(plain["spec"]["template"]["spec"]["volumes"].is_null());
    // A seed under Never: every retry is a new pod with a new draw.
    let seeded_never = serde_json::to_value(job_of(&objects(&["--seed", "7"]))).unwrap();
    assert!(seeded_never["spec"]["template"]["spec"]["volumes"].is_null());
}

#[test]
fn a_seed_under_on_failure_gets_the_attempt_counter() {
    // A restarted container keeps its pod name; without the attempt
    // counted in STATE_DIR a seeded pod that failed would fail forever.
    let job = serde_json::to_value(job_of(&objects(&["--restart-policy", "OnFailure", "--seed", "7"]))).unwrap();
    let pod = &job["spec"]["template"]["spec"];
    let env = pod["containers"][0]["env"].as_array().unwrap();
    let get = |name: &str| env.iter().find(|e| e["name"] == name).cloned().unwrap_or(Value::Null);
    assert_eq!(get("WORKER_SEED")["value"], "7");
    assert_eq!(get("STATE_DIR")["value"], "/state");
    assert!(get("FAIL_ATTEMPTS").is_null() && get("JOB_INDEX_FAILURE_COUNT").is_null(), "{env:?}");
    assert_eq!(pod["volumes"][0]["name"], "state");
    assert_eq!(pod["containers"][0]["volumeMounts"][0]["mountPath"], "/state");
    assert_eq!(pod["securityContext"]["fsGroup"], 65532);
}

#[test]
fn least_privilege_by_default_and_the_tutorials_names_when_asked() {
    let docs = objects(&[]);
    let role = docs.iter().find_map(|o| if let Object::Role(r) = o { Some(r) } else { None }).unwrap();
    let rules = serde_json::to_value(&role.rules).unwrap();
    assert_eq!(rules[0]["resources"], serde_json::json!(["pods"]));
    assert_eq!(rules[0]["verbs"], serde_json::json!(["get", "list", "watch"]));
    assert_eq!(rules[1]["resources"], serde_json::json!(["pods/log"]));
    assert_eq!(rules[1]["verbs"], serde_json::json!(["get"]));
    assert!(!docs.iter().any(|o| matches!(o, Object::ClusterRole(_) | Object::ClusterRoleBinding(_))));

    let tutorial = objects(COMBINATIONS[3]);
    let names: Vec<String> = tutorial.iter().map(Object::describe).collect();
    assert_eq!(
        names,
        [
            "Namespace/job-test",
            "ServiceAccount/java-admin",
            "Secret/java-access-secret",
            "ClusterRole/pod-updater",
            "ClusterRoleBinding/simu-auth-binding",
            "NetworkPolicy/job-test",
            "Job/job-test"
        ]
    );
    let secret = serde_json::to_value(&tutorial[2]).unwrap();
    assert_eq!(secret["type"], "kubernetes.io/service-account-token");
    assert_eq!(secret["metadata"]["annotations"]["kubernetes.io/service-account.name"], "java-admin");
}

/// The four modern flags land in the Job's spec as the API names them;
/// the user's failure rules come before job-test's own two. (The strict
/// 1.33 schema check is `every_rendered_document_is_valid_...`, MODERN
/// among its combinations.)
#[test]
fn the_modern_fields_are_written_where_the_api_reads_them() {
    let (code, stdout, stderr) = render(MODERN);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("odds: not computed, odds cannot model --success-policy or --pod-failure-rule yet"),
        "{stderr}"
    );
    let docs: Vec<Value> = serde_saphyr::from_multiple(&stdout).unwrap();
    let job = docs.iter().find(|d| d["kind"] == "Job").unwrap();
    let errors = validate(job);
    assert!(errors.is_empty(), "the strict 1.33 schema refuses it: {errors:#?}");
    let spec = &job["spec"];
    assert_eq!(
        spec["successPolicy"],
        serde_json::json!({"rules": [{"succeededIndexes": "0,2-3", "succeededCount": 2}, {"succeededCount": 4}]})
    );
    assert_eq!(spec["podReplacementPolicy"], "Failed");
    assert_eq!(spec["managedBy"], "kueue.x-k8s.io/multikueue");
    assert_eq!(
        spec["podFailurePolicy"]["rules"],
        serde_json::json!([
            {"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [42]}},
            {"action": "Ignore", "onExitCodes": {"containerName": "worker", "operator": "NotIn", "values": [0, 2]}},
            {"action": "Count", "onPodConditions": [
                {"type": "DisruptionTarget", "status": "False"}, {"type": "ConfigIssue", "status": "True"}]},
            // job-test's own, after the user's.
            {"action": "FailJob", "onExitCodes": {"containerName": "worker", "operator": "In", "values": [2]}},
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
        ])
    );
    // The built-in controller named explicitly: allowed, nothing written, said so.
    let (code, stdout, stderr) = render(&["--managed-by", "kubernetes.io/job-controller"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stdout.contains("managedBy"), "{stdout}");
    assert!(stderr.contains("is the built-in Job controller, the default: spec.managedBy is left out"), "{stderr}");
    // TerminatingOrFailed where there is no podFailurePolicy (OnFailure).
    let (code, stdout, stderr) =
        render(&["--restart-policy", "OnFailure", "--pod-replacement-policy", "TerminatingOrFailed"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("podReplacementPolicy: TerminatingOrFailed"), "{stdout}");
}

#[test]
fn the_modern_fields_are_refused_where_the_version_lacks_them() {
    let (code, stdout, stderr) = render(&[
        "--kube-version",
        "1.20",
        "--completion-mode",
        "Indexed",
        "--success-policy",
        "indexes=0,count=1",
        "--pod-failure-rule",
        "FailJob:exit=42",
        "--pod-replacement-policy",
        "Failed",
        "--managed-by",
        "kueue.x-k8s.io/multikueue",
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("5 settings that Kubernetes 1.20 (--kube-version) cannot take"), "{stderr}");
    for expected in [
        "spec.successPolicy: Kubernetes 1.20 does not have it; it is on by default from 1.31. Drop --success-policy.",
        "spec.podReplacementPolicy: Kubernetes 1.20 does not have it; it is on by default from 1.29. Drop \
         --pod-replacement-policy.",
        "spec.managedBy: Kubernetes 1.20 does not have it; it is on by default from 1.32. Drop --managed-by.",
        "spec.podFailurePolicy: Kubernetes 1.20 does not have it; it is on by default from 1.26. Drop \
         --pod-failure-rule",
    ] {
        assert!(stderr.contains(expected), "{stderr:?} should contain {expected:?}");
    }
    // Where the gate is alpha, it is named.
    let (code, _, stderr) =
        render(&["--kube-version", "1.31", "--managed-by", "kueue.x-k8s.io/multikueue", "--fail-probability", "0"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("Kubernetes 1.31 has it as alpha, off by default (feature gate JobManagedBy)"), "{stderr}");
    let (code, _, stderr) = render(&["--kube-version", "1.32", "--managed-by", "kueue.x-k8s.io/multikueue"]);
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn odds_refuses_what_it_cannot_model_naming_the_flag() {
    let out = xtask(&["odds", "--pod-failure-rule", "FailJob:exit=42"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(
        stderr.contains(
            "--pod-failure-rule \"FailJob:exit=42\": odds cannot model --pod-failure-rule yet; run-local runs it"
        ),
        "{stderr}"
    );
    let out = xtask(&["odds", "--completion-mode", "Indexed", "--success-policy", "count=2"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("odds cannot model --success-policy yet; run-local runs it"), "{stderr}");
    // The two that do not change the odds are taken, and hidden from its help.
    let out = xtask(&["odds", "--trials", "100", "--pod-replacement-policy", "Failed", "--managed-by", "a.io/b"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn render(args: &[&str]) -> (Option<i32>, String, String) {
    let mut argv = vec!["render"];
    argv.extend_from_slice(args);
    let out = xtask(&argv);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn render_for_1_20_leaves_out_what_1_20_lacks_and_says_what_is_lost() {
    let (code, stdout, stderr) = render(&["--kube-version", "1.20"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stdout.contains("podFailurePolicy") && !stdout.contains("completionMode"), "{stdout}");
    assert!(
        stderr.contains("spec.podFailurePolicy left out, Kubernetes 1.20 cannot take it (on by default from 1.26)"),
        "{stderr}"
    );
    assert!(stderr.contains("a configuration error (exit code 2) is now retried"), "{stderr}");
    assert!(stderr.contains("spec.ttlSecondsAfterFinished is alpha in Kubernetes 1.20"), "{stderr}");
    assert!(stderr.contains("--feature-gates=TTLAfterFinished=true"), "{stderr}");
    // From 1.26 the policy is kept; NonIndexed, the default, is never written.
    let (code, stdout, stderr) = render(&["--kube-version", "1.26"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("podFailurePolicy:") && !stdout.contains("completionMode"), "{stdout}");
    assert!(!stderr.contains("left out") && !stderr.contains("is alpha"), "{stderr}");
    // With OnFailure there is no policy to leave out.
    let (_, _, stderr) = render(&["--kube-version", "1.20", "--restart-policy", "OnFailure"]);
    assert!(!stderr.contains("podFailurePolicy"), "{stderr}");
}

#[test]
fn render_refuses_what_the_version_cannot_take_naming_the_field_and_the_versions() {
    let (code, stdout, stderr) = render(&[
        "--kube-version",
        "1.20",
        "--completion-mode",
        "Indexed",
        "--backoff-limit-per-index",
        "1",
        "--suspend",
        "--fail-probability",
        "0",
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("3 settings that Kubernetes 1.20 (--kube-version) cannot take"), "{stderr}");
    assert!(
        stderr
            .contains("spec.completionMode: Indexed: Kubernetes 1.20 does not have it; it is on by default from 1.22"),
        "{stderr}"
    );
    assert!(
        stderr.contains("spec.suspend: Kubernetes 1.20 does not have it; it is on by default from 1.22"),
        "{stderr}"
    );
    assert!(
        stderr.contains("spec.backoffLimitPerIndex: Kubernetes 1.20 does not have it; it is on by default from 1.29")
    );
    // Where the field is alpha, the gate is named.
    let (code, _, stderr) =
        render(&["--kube-version", "1.28", "--completion-mode", "Indexed", "--backoff-limit-per-index", "1"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("Kubernetes 1.28 has it as alpha, off by default (feature gate JobBackoffLimitPerIndex)"),
        "{stderr}"
    );
    let (code, _, stderr) =
        render(&["--kube-version", "1.29", "--completion-mode", "Indexed", "--backoff-limit-per-index", "1"]);
    assert_eq!(code, Some(0), "{stderr}");
    let (code, _, stderr) = render(&["--kube-version", "twenty"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--kube-version") && stderr.contains("expected MAJOR.MINOR such as 1.20"), "{stderr}");
}

#[test]
fn every_invalid_input_is_refused_with_the_flag_the_value_and_the_rule() {
    let cases: &[(&[&str], &str)] = &[
        (&["--restart-policy", "Always"], "--restart-policy Always: a Job's pods must end"),
        (&["--restart-policy", "Sometimes"], "--restart-policy Sometimes: expected Never or OnFailure"),
        (&["--completion-mode", "Random"], "--completion-mode Random: expected NonIndexed or Indexed"),
        (&["--completions", "0"], "--completions 0: at least 1"),
        (&["--parallelism", "0"], "--parallelism 0: 0 runs no pod at all; to create the Job paused, pass --suspend"),
        (&["--parallelism", "-2"], "--parallelism -2: at least 1"),
        (&["--backoff-limit", "-1"], "--backoff-limit -1: cannot be negative"),
        (&["--active-deadline-seconds", "0"], "--active-deadline-seconds 0: must be at least 1"),
        (&["--ttl-seconds-after-finished", "-5"], "--ttl-seconds-after-finished -5: cannot be negative"),
        (&["--fail-probability", "1.5"], "--fail-probability 1.5: expected a number from 0 to 1"),
        (&["--fail-probability", "often"], "--fail-probability often: expected a number from 0 to 1"),
        (&["--failure-mode", "explode"], "--failure-mode explode: expected one of exit, panic, abort, hang, oom"),
        (&["--fail-exit-code", "2"], "--fail-exit-code 2: expected a whole number from 1 to 255 other than 2"),
        (&["--work-duration", "soon"], "--work-duration soon: expected a duration"),
        // A negative value is the value, not a flag: the rule it breaks, not clap's "unexpected argument".
        (&["--work-duration", "-1s"], "--work-duration -1s: expected a duration"),
        (&["--memory", "-32Mi"], "--memory \"-32Mi\": not a positive quantity"),
        (&["--seed", "-1"], "--seed -1: expected a whole number"),
        (&["--backoff-limit-per-index", "1"], "--backoff-limit-per-index 1: needs --completion-mode Indexed"),
        (&["--max-failed-indexes", "1"], "--max-failed-indexes 1: needs --completion-mode Indexed"),
        (
            &["--completion-mode", "Indexed", "--max-failed-indexes", "1"],
            "--max-failed-indexes 1: needs --backoff-limit-per-index",
        ),
        (
            &["--completion-mode", "Indexed", "--restart-policy", "OnFailure", "--backoff-limit-per-index", "1"],
            "--backoff-limit-per-index 1: needs --restart-policy Never",
        ),
        (&["--fail-indexes", "odd"], "--fail-indexes odd: needs --completion-mode Indexed"),
        (&["--completion-mode", "Indexed", "--fail-indexes", "1,,2"], "--fail-indexes 1,,2: expected odd, even"),
        (&["--name", "Job_Test"], "--name \"Job_Test\": not a DNS-1123 label"),
        (&["--namespace=-x"], "--namespace \"-x\": not a DNS-1123 label"),
        (&["--service-account", "Java Admin"], "--service-account \"Java Admin\": not a DNS-1123 subdomain"),
        (&["--memory", "lots"], "--memory \"lots\": not a positive quantity"),
        (&["--cpu", "2Gi"], "--cpu \"2Gi\": not a positive quantity"),
        (&["--pod-verbs", "get,steal"], "--pod-verbs steal: not a Kubernetes verb"),
        (
            &["--pod-failure-rule", "FailJob:exit=0"],
            "--pod-failure-rule \"FailJob:exit=0\": exit=0: exit code 0 is success, which no rule sees (Kubernetes \
             refuses 0 with In); to match every failure write FailJob:exit!=0",
        ),
        (
            &["--completion-mode", "Indexed", "--pod-failure-rule", "FailIndex:exit=42"],
            "--pod-failure-rule \"FailIndex:exit=42\": FailIndex needs --backoff-limit-per-index",
        ),
        (
            &["--pod-failure-rule", "FailJob:exit=1,1"],
            "--pod-failure-rule \"FailJob:exit=1,1\": exit=1,1: 1 is listed twice",
        ),
        (
            &["--restart-policy", "OnFailure", "--pod-failure-rule", "Ignore:exit=42"],
            "--pod-failure-rule \"Ignore:exit=42\": needs --restart-policy Never",
        ),
        (
            &["--pod-replacement-policy", "TerminatingOrFailed"],
            "--pod-replacement-policy TerminatingOrFailed: Kubernetes allows only Failed when a Job has a \
             podFailurePolicy, and job-test writes one whenever restartPolicy is Never",
        ),
        (
            &["--pod-replacement-policy", "Always"],
            "--pod-replacement-policy Always: expected TerminatingOrFailed or Failed",
        ),
        (
            &["--success-policy", "indexes=0,count=1"],
            "--success-policy \"indexes=0,count=1\": needs --completion-mode Indexed",
        ),
        (
            &["--completion-mode", "Indexed", "--success-policy", "indexes=0,2,count=3"],
            "--success-policy \"indexes=0,2,count=3\": count=3 is more than the 2 index(es) listed",
        ),
        (
            &["--completion-mode", "Indexed", "--success-policy", "count=6"],
            "--success-policy \"count=6\": count=6 is more than --completions 5",
        ),
        (
            &["--completion-mode", "Indexed", "--success-policy", "indexes=5"],
            "--success-policy \"indexes=5\": indexes=5: index 5 is not below --completions 5",
        ),
        (&["--managed-by", "kueue"], "--managed-by \"kueue\": not DOMAIN/PATH; expected a domain-prefixed path"),
        (
            &["--managed-by", "example.com/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"],
            "characters, at most 63",
        ),
    ];
    let dir = tempdir("render-invalid");
    for (args, expected) in cases {
        let out_file = dir.join("out.yaml");
        let mut argv = args.to_vec();
        let out_arg = out_file.to_str().unwrap().to_owned();
        argv.extend(["--out", &out_arg]);
        let (code, stdout, stderr) = render(&argv);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr:?} should contain {expected:?}");
        assert!(stderr.contains("nothing was rendered"), "{stderr}");
        assert!(stdout.is_empty(), "{args:?}: {stdout}");
        assert!(!out_file.exists(), "{args:?}: a file was written despite the error");
    }
}

#[test]
fn an_invalid_image_reference_is_refused_by_the_flag_parser() {
    // Parsed once, at the flag, as for `image` and `push`.
    let cases: &[(&str, &str)] = &[
        ("Job-Test:1.0", "invalid value 'Job-Test:1.0' for '--image <REF>': not an image reference"),
        (
            "job-test@sha256:abc",
            "invalid value 'job-test@sha256:abc' for '--image <REF>': not an image reference: the digest",
        ),
    ];
    for (image, expected) in cases {
        let (code, stdout, stderr) = render(&["--image", image]);
        assert_eq!(code, Some(2), "{image}: {stderr}");
        assert!(stderr.contains(expected), "{stderr:?} should contain {expected:?}");
        assert!(stdout.is_empty(), "{image}: {stdout}");
    }
}

#[test]
fn all_errors_are_reported_at_once() {
    let (code, _, stderr) = render(&["--completions", "0", "--restart-policy", "Always", "--fail-probability", "2"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("3 invalid settings"), "{stderr}");
    let (code, _, stderr) = render(&[
        "--pod-failure-rule",
        "FailJob:exit=0",
        "--pod-failure-rule",
        "FailIndex:exit=42",
        "--pod-replacement-policy",
        "TerminatingOrFailed",
        "--success-policy",
        "count=1",
        "--managed-by",
        "kueue",
    ]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("5 invalid settings"), "{stderr}");
}

#[test]
fn every_invalid_worker_setting_is_reported_at_once() {
    // The worker's own parser checks them, and it no longer stops at the first.
    let (code, stdout, stderr) = render(&[
        "--fail-probability",
        "1.5",
        "--failure-mode",
        "nope",
        "--work-duration=-1s",
        "--fail-exit-code",
        "2",
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("4 invalid settings, nothing was rendered"), "{stderr}");
    for expected in [
        "--fail-probability 1.5: expected a number from 0 to 1",
        "--failure-mode nope: expected one of exit, panic, abort, hang, oom",
        "--work-duration -1s: expected a duration",
        "--fail-exit-code 2: expected a whole number from 1 to 255 other than 2",
    ] {
        assert!(stderr.contains(expected), "{stderr:?} should contain {expected:?}");
    }
}

#[test]
fn questionable_settings_are_warnings_and_the_rendering_goes_on() {
    let cases: &[(&[&str], &str)] = &[
        (&["--parallelism", "9"], "--parallelism 9 is more than --completions 5"),
        (&["--work-duration", "15m"], "--active-deadline-seconds 600 is not longer than --work-duration 15m"),
        (
            &["--pod-verbs", "get,watch,list,patch,update,delete,create"],
            "--pod-verbs grants patch,update,delete,create on pods",
        ),
        (&["--fail-attempts", "1"], "every pod is attempt 0 and fails"),
        (&["--image", "registry.example.com/job-test:1"], "is not pinned by digest"),
        (&["--failure-mode", "hang"], "the Job ends DeadlineExceeded"),
    ];
    for (args, expected) in cases {
        let (code, stdout, stderr) = render(args);
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        assert!(stderr.contains(&format!("warning: {expected}")) || stderr.contains(expected), "{args:?}: {stderr}");
        assert!(stdout.contains("kind: Job"), "{args:?}");
    }
}

#[test]
fn dash_n_names_the_namespace_as_in_every_cluster_command() {
    let (code, stdout, stderr) = render(&["-n", "demo"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains(
            "kind: Namespace\nmetadata:\n  labels:\n    app.kubernetes.io/managed-by: job-test\n  name: demo"
        ),
        "{stdout}"
    );
    assert!(!stdout.contains("namespace: job-test"), "{stdout}");
}

#[test]
fn render_prints_the_odds_and_writes_where_asked() {
    let dir = tempdir("render-out");
    let file = dir.join("all.yaml");
    let (code, stdout, stderr) = render(&["--out", file.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("odds: completes with probability 94.37% (exact)"), "{stderr}");
    // What the summary says agrees with `odds` (a replayed draw per pod would say 34.10%).
    let (code, _, stderr) = render(&["--restart-policy", "OnFailure", "--parallelism", "1"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("odds: completes with probability 96.06% (exact)"), "{stderr}");
    assert!(stdout.starts_with(&format!("wrote {}", file.display())), "{stdout}");
    let written = std::fs::read_to_string(&file).unwrap();
    let kinds: Vec<String> = manifest::from_yaml(&written).unwrap().iter().map(Object::describe).collect();
    assert_eq!(kinds.first().map(String::as_str), Some("Namespace/job-test"));
    assert_eq!(kinds.last().map(String::as_str), Some("Job/job-test"));
    assert!(Path::new(&file).exists());
}

#[test]
fn render_json_output_is_one_object_listing_the_objects() {
    // docs/exit-codes.md promises one JSON object from every command, and
    // docs/manifests.md says render's is a v1 List, which kubectl also
    // applies as it is.
    let out = xtask(&["--output", "json", "render"]);
    assert!(out.status.success());
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((list["apiVersion"].as_str(), list["kind"].as_str()), (Some("v1"), Some("List")));
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 7);
    assert_eq!(items[6]["kind"], "Job");
}

#[test]
fn odds_snapshot() {
    let out = xtask(&["odds"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    insta::assert_snapshot!(String::from_utf8_lossy(&out.stdout));
}

fn odds_json(args: &[&str]) -> Value {
    let mut argv = vec!["--output", "json", "odds"];
    argv.extend_from_slice(args);
    let out = xtask(&argv);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The simulated chance agrees with `exact` within 4.5 of its standard
/// errors (a fixed trial seed: deterministic).
fn simulation_agrees(v: &Value, exact: f64) {
    let s = &v["simulated"];
    let p = s["p_complete"].as_f64().unwrap();
    let se = (exact * (1.0 - exact) / s["trials"].as_f64().unwrap()).sqrt();
    assert!((p - exact).abs() <= 4.5 * se, "simulated {p} vs exact {exact}");
}

#[test]
fn odds_json_agrees_with_the_closed_form() {
    let v = odds_json(&["--trials", "5000"]);
    assert!((v["exact"]["p_complete"].as_f64().unwrap() - 0.9437184).abs() < 1e-12);
    assert_eq!(v["simulated"]["trials"], 5000);
    simulation_agrees(&v, 0.9437184);
    // What `±` means is in the field names: an error of the estimate for
    // the chance, a spread from Job to Job for the counts.
    assert!(v["simulated"]["p_complete_standard_error"].as_f64().unwrap() > 0.0);
    assert!(v["simulated"]["pods_standard_deviation"].as_f64().unwrap() > 0.0);
    assert!((v["exact"]["runs_standard_deviation"].as_f64().unwrap() - 1.0).abs() < 0.01);
}

#[test]
fn odds_for_on_failure_draws_afresh_on_every_restart() {
    // The exact (1 - 0.2^3)^5 = 96.06%, and a simulation that draws afresh agrees.
    let exact = (1.0 - 0.2f64.powi(3)).powi(5);
    for seed in [&[][..], &["--seed", "42"]] {
        let mut args = vec!["--restart-policy", "OnFailure", "--parallelism", "1"];
        args.extend_from_slice(seed);
        let v = odds_json(&args);
        assert!((v["exact"]["p_complete"].as_f64().unwrap() - exact).abs() < 1e-12, "{seed:?}");
        simulation_agrees(&v, exact);
    }
    // In parallel there is no closed form: the summary `render` prints
    // agrees with `odds` within their errors.
    let v = odds_json(&["--restart-policy", "OnFailure"]);
    assert!(v["exact"].is_null());
    let (code, _, stderr) = render(&["--restart-policy", "OnFailure"]);
    assert_eq!(code, Some(0), "{stderr}");
    let summary = stderr.lines().find(|l| l.starts_with("odds: completes with probability ")).unwrap();
    let numbers: Vec<f64> = summary["odds: completes with probability ".len()..]
        .split(['%', '±', ' '])
        .filter_map(|x| x.parse().ok())
        .take(2)
        .collect();
    let (p, se) = (numbers[0] / 100.0, numbers[1] / 100.0);
    let s = &v["simulated"];
    let (q, se_q) = (s["p_complete"].as_f64().unwrap(), s["p_complete_standard_error"].as_f64().unwrap());
    assert!(summary.contains("(simulated, standard error)"), "{summary}");
    assert!((p - q).abs() <= 4.5 * (se * se + se_q * se_q).sqrt(), "render {p} ± {se} vs odds {q} ± {se_q}");
}

#[test]
fn odds_on_a_huge_job_answers_exactly_and_bounds_the_simulation() {
    // Held to its work budget: an unbounded simulation of this Job would run for minutes.
    let v = odds_json(&["--completions", "1000000", "--parallelism", "1000", "--backoff-limit", "1000"]);
    assert_eq!(v["exact"]["p_complete"], 0.0);
    assert!((v["exact"]["runs_mean"].as_f64().unwrap() - 5005.0).abs() < 1e-6);
    let s = &v["simulated"];
    let (trials, runs, budget) =
        (s["trials"].as_u64().unwrap(), s["container_runs"].as_u64().unwrap(), s["work_budget"].as_u64().unwrap());
    assert_eq!(s["trials_requested"], 20_000);
    // Every simulated Job fails after about 5000 pods: the budget holds
    // a few hundred of them, and no more work than the budget was done.
    assert!(runs <= budget, "{runs} > {budget}");
    assert!((100..20_000).contains(&trials), "{trials}");
    assert_eq!(s["p_complete"], 0.0);
    // The text says how many of the asked-for Jobs were simulated, and why.
    let out = xtask(&["odds", "--completions", "1000000", "--parallelism", "1000", "--backoff-limit", "1000"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("simulated, {trials} of 20000 Jobs (work budget of {budget} container runs)")),
        "{text}"
    );
}

/// `--create-pull-secret`: the Secret and the Job that names it are valid
/// for Kubernetes strictly, the data is a Docker config with the registry's
/// entry, and the Secret comes before the Job.
#[test]
fn the_pull_secret_is_valid_and_named_by_the_job() {
    use xtask::manifest::pull_secret;
    use xtask::push::credentials::{Credential, Secret, Source};
    let f = render_flags(&["--image", "registry.example:5000/team/job-test:1.0.0"]);
    let (job, rbac, _) = params::rendering(&f.job, &f.rbac, true, params::UnpinnedImage::Quiet).unwrap();
    let mut objects = manifest::all_objects(&job, &rbac);
    let credential = Credential::Basic { username: "alice".into(), password: Secret::new("pw") };
    let out = xtask::report::Reporter::new(xtask::choices::Output::Text);
    pull_secret::add(&mut objects, &job, &credential, &Source::Environment, &out).unwrap();
    let yaml = manifest::to_yaml(&objects).unwrap();
    let docs: Vec<Value> = serde_saphyr::from_multiple(&yaml).unwrap();
    for doc in &docs {
        let errors = validate(doc);
        assert!(errors.is_empty(), "{} {} is invalid:\n{}", doc["kind"], doc["metadata"]["name"], errors.join("\n"));
    }
    let secret = docs.iter().position(|d| d["metadata"]["name"] == "job-test-pull-secret").unwrap();
    let job_at = docs.iter().position(|d| d["kind"] == "Job").unwrap();
    assert!(secret < job_at);
    assert_eq!(docs[secret]["type"], "kubernetes.io/dockerconfigjson");
    assert_eq!(
        docs[job_at]["spec"]["template"]["spec"]["imagePullSecrets"],
        serde_json::json!([{ "name": "job-test-pull-secret" }])
    );
    use base64::Engine;
    let data = base64::engine::general_purpose::STANDARD
        .decode(docs[secret]["data"][".dockerconfigjson"].as_str().unwrap())
        .unwrap();
    let config: Value = serde_json::from_slice(&data).unwrap();
    assert_eq!(config["auths"]["registry.example:5000"]["username"], "alice", "{config}");
}

/// Generated flags, from a fixed seed (the same cases on every run): what
/// `render` accepts is valid for Kubernetes 1.33 strictly and survives
/// YAML and back unchanged; what it refuses is a usage error naming a
/// flag, never a panic. Values run past every limit on purpose.
#[test]
fn every_rendering_render_accepts_is_valid_and_round_trips() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    // Mostly within the API's limits, sometimes past them, so that both
    // sides are reached in every run.
    let number = || prop_oneof![12 => 1i64..1000, 1 => -2i64..1, 1 => Just(i64::from(i32::MAX) + 1)];
    let flags = (
        (number(), number(), number(), number(), number()),
        (
            prop_oneof![6 => Just("Never"), 3 => Just("OnFailure"), 1 => Just("Always")],
            prop_oneof![Just("NonIndexed"), Just("Indexed")],
        ),
        (proptest::option::weighted(0.2, number()), proptest::option::weighted(0.2, number())),
        (
            prop_oneof![12 => "[a-z][a-z0-9-]{0,20}[a-z0-9]", 1 => "[a-z]{64}", 1 => "[A-Z_.]{1,5}"],
            prop_oneof![12 => 0.0f64..=1.0, 1 => -0.5f64..0.0, 1 => 1.01f64..2.0],
            prop_oneof![12 => Just("50m"), 1 => Just("2"), 1 => Just("-1"), 1 => Just("1x")],
        ),
    );
    let config = Config { cases: 300, failure_persistence: None, ..Config::default() };
    let mut runner = TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let (accepted, refused) = (std::cell::Cell::new(0), std::cell::Cell::new(0));
    let result = runner.run(
        &flags,
        |(
            (completions, parallelism, limit, deadline, ttl),
            (restart, mode),
            (per_index, max_failed),
            (name, p, cpu),
        )| {
            let mut argv: Vec<String> = [
                ("--completions", completions.to_string()),
                ("--parallelism", parallelism.to_string()),
                ("--backoff-limit", limit.to_string()),
                ("--active-deadline-seconds", deadline.to_string()),
                ("--ttl-seconds-after-finished", ttl.to_string()),
                ("--restart-policy", restart.to_owned()),
                ("--completion-mode", mode.to_owned()),
                ("--name", name.clone()),
                ("--fail-probability", p.to_string()),
                ("--cpu", cpu.to_owned()),
            ]
            .into_iter()
            .flat_map(|(flag, value)| [flag.to_owned(), value])
            .collect();
            for (flag, value) in [("--backoff-limit-per-index", per_index), ("--max-failed-indexes", max_failed)] {
                if let Some(v) = value {
                    argv.extend([flag.to_owned(), v.to_string()]);
                }
            }
            let args: Vec<&str> = argv.iter().map(String::as_str).collect();
            let f = render_flags(&args);
            match params::rendering(&f.job, &f.rbac, false, params::UnpinnedImage::Quiet) {
                Ok((job, rbac, _)) => {
                    accepted.set(accepted.get() + 1);
                    let objects = manifest::all_objects(&job, &rbac);
                    let yaml = manifest::to_yaml(&objects).unwrap();
                    for doc in serde_saphyr::from_multiple::<Value>(&yaml).unwrap() {
                        let errors = validate(&doc);
                        prop_assert!(errors.is_empty(), "{args:?}: {} is invalid: {errors:?}", doc["kind"]);
                    }
                    let back = manifest::from_yaml(&yaml).unwrap();
                    prop_assert_eq!(&back, &objects, "{:?}", args);
                    prop_assert_eq!(manifest::to_yaml(&back).unwrap(), yaml, "{:?}", args);
                }
                Err(e) => {
                    refused.set(refused.get() + 1);
                    prop_assert_eq!(e.kind, xtask::ErrorKind::Usage, "{:?}: {}", args, e);
                    prop_assert!(e.to_string().contains("--"), "{args:?}: the error names no flag: {e}");
                }
            }
            Ok(())
        },
    );
    result.unwrap_or_else(|e| panic!("{e}"));
    // The generator reaches both sides, so neither property holds vacuously.
    let (accepted, refused) = (accepted.get(), refused.get());
    assert!(accepted >= 20 && refused >= 20, "accepted {accepted}, refused {refused}");
}

/// Generated worker settings, from a fixed seed: what `render` accepts, the
/// worker accepts from the rendered container's environment, with the same
/// configuration render reported; what the worker refuses, render refuses,
/// naming the render flag. Values are drawn from near-misses of each
/// setting's grammar so that both sides are reached; never empty, which
/// the flags refuse before either parser sees it.
#[test]
fn render_and_the_worker_agree_on_every_worker_setting() {
    use job_worker::config::{self as worker, Command as WorkerCommand};
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let settings = (
        prop_oneof![8 => "0(\\.[0-9]{1,3})?", 2 => "1(\\.0)?", 1 => "[0-9]{1,3}%", 1 => "[-+]?[0-9.e]{1,5}", 1 => "[a-zA-Z]{1,4}"],
        prop_oneof![
            Just("exit".to_owned()),
            Just("panic".to_owned()),
            Just("abort".to_owned()),
            Just("hang".to_owned()),
            Just("oom".to_owned()),
            "[a-zA-Z-]{1,6}"
        ],
        prop_oneof![8 => "1?[0-9]{1,2}", 1 => "-?[0-9]{1,5}", 1 => "[0-9a-z]{1,3}"],
        prop_oneof![8 => "[0-9]{1,2}(ms|s|m)", 1 => "[0-9]{1,4}", 1 => "[0-9a-z][0-9a-z ]{0,4}"],
        proptest::option::weighted(0.3, prop_oneof!["[0-9]{1,20}", "[0-9a-z-]{1,6}"]),
        proptest::option::weighted(
            0.5,
            prop_oneof![
                6 => "[0-3](-[0-3])?(:[0-9]{1,3})?(,[0-3](:[0-9]{1,3})?){0,2}",
                1 => "[0-9,:a-]{1,8}"
            ],
        ),
        prop_oneof![6 => Just("0".to_owned()), 2 => "[0-9]{1,2}", 1 => "-?[0-9a-z]{1,3}"],
    );
    let config = Config { cases: 400, failure_persistence: None, ..Config::default() };
    let mut runner = TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let (accepted, refused) = (std::cell::Cell::new(0), std::cell::Cell::new(0));
    let result = runner.run(&settings, |(p, mode, code, duration, seed, indexes, attempts)| {
        let mut env = vec![
            (worker::FAIL_PROBABILITY, p),
            (worker::FAILURE_MODE, mode),
            (worker::FAIL_EXIT_CODE, code),
            (worker::WORK_DURATION, duration),
            (worker::FAIL_ATTEMPTS, attempts),
        ];
        env.extend(seed.map(|s| (worker::SEED, s)));
        env.extend(indexes.map(|i| (worker::FAIL_INDEXES, i)));
        let mut argv: Vec<String> =
            ["--completion-mode", "Indexed", "--completions", "4", "--active-deadline-seconds", "600"]
                .map(str::to_owned)
                .to_vec();
        for (spec, value) in &env {
            // `--flag=VALUE`: a value may begin with a dash.
            argv.push(format!("{}={value}", spec.flag));
        }
        let args: Vec<&str> = argv.iter().map(String::as_str).collect();
        // The worker alone, given the same values as its environment.
        let alone =
            worker::parse(Vec::<String>::new(), |name| env.iter().find(|(s, _)| s.env == name).map(|(_, v)| v.into()));
        let f = render_flags(&args);
        match (params::rendering(&f.job, &f.rbac, false, params::UnpinnedImage::Quiet), alone) {
            (Ok((job, _, _)), Ok(WorkerCommand::Run(_))) => {
                accepted.set(accepted.get() + 1);
                // The rendered container's environment, as the pod gets it
                // (the attempts folder exists only in the pod: not parsed).
                let rendered = manifest::job_objects(&job);
                let Some(Object::Job(rendered)) = rendered.iter().find(|o| matches!(o, Object::Job(_))) else {
                    panic!("no Job rendered")
                };
                let pod = rendered.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
                let vars = pod.containers[0].env.clone().unwrap_or_default();
                let in_pod = worker::parse(Vec::<String>::new(), |name| {
                    (name != worker::STATE_DIR.env)
                        .then(|| vars.iter().find(|v| v.name == name).and_then(|v| v.value.clone()))
                        .flatten()
                        .map(Into::into)
                });
                let Ok(WorkerCommand::Run(mut in_pod)) = in_pod else {
                    return Err(TestCaseError::fail(format!("{args:?}: the worker refuses the rendered env {vars:?}")));
                };
                in_pod.state_dir = job.worker.state_dir.clone();
                prop_assert_eq!(&*in_pod, &job.worker, "{:?}", args);
            }
            (Err(e), Err(errors)) => {
                refused.set(refused.get() + 1);
                for refusal in &errors.errors {
                    let flag = worker::SPECS.iter().find(|s| s.env == refusal.name).unwrap().flag;
                    prop_assert!(
                        e.to_string().contains(&format!("{flag} {}", refusal.value)),
                        "{args:?}: the worker refuses {} {:?}; render says: {e}",
                        flag,
                        refusal.value
                    );
                }
            }
            (Ok(_), Err(errors)) => {
                return Err(TestCaseError::fail(format!("{args:?}: render accepts what the worker refuses: {errors}")));
            }
            (Err(e), Ok(WorkerCommand::Run(_))) => {
                // Render's own rules on top of the worker's: a list of
                // failing indexes past --completions, say.
                refused.set(refused.get() + 1);
                prop_assert!(
                    !e.to_string().contains("expected "),
                    "{args:?}: the worker accepts these, render refuses a worker value: {e}"
                );
            }
            (_, Ok(other)) => {
                return Err(TestCaseError::fail(format!("{args:?}: settings alone made the worker ask {other:?}")));
            }
        }
        Ok(())
    });
    result.unwrap_or_else(|e| panic!("{e}"));
    let (accepted, refused) = (accepted.get(), refused.get());
    assert!(accepted >= 40 && refused >= 40, "accepted {accepted}, refused {refused}");
}
