//! `cargo xtask conformance`: does this cluster's Job controller do what the
//! Kubernetes documentation and the controller's published behaviour say,
//! for the settings job-test renders? A catalogue of deterministic
//! scenarios (`catalogue`) runs on the cluster (each in a namespace of its
//! own, labelled so a crashed run can be cleaned up) or, with `--local`, on
//! the local Docker engine by the chosen version's rules, and each outcome
//! is compared field by field with what that version's controller gives.

pub mod catalogue;

use std::fmt;
use std::time::{Duration, Instant};

use anyhow::Result;
use futures_util::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use kube::api::{Api, DeleteParams, ListParams};
use serde::Serialize;

use crate::cluster::{self, Attempt, Cluster};
use crate::flags::{ConformanceFlags, JobFlags};
use crate::image_ref::ImageRef;
use crate::manifest::versions::{self, KubeVersion};
use crate::manifest::{self, Object, params};
use crate::report::job::{JobReport, condition_sequence};
use crate::report::{Reporter, human_seconds};
use crate::{Error, ErrorKind, local};
use catalogue::{Count, Expected, Scenario};

/// The label on every namespace a run makes: its value is the run's id.
pub const RUN_LABEL: &str = "job-test.conformance/run";

/// How a scenario went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Passed,
    Differed,
    /// Differed only where a documented upstream behaviour says it does.
    Known,
    /// The version does not have a feature the scenario needs.
    NotOnThisVersion,
    /// The scenario could not be run to its end (a timeout, a refusal).
    Error,
}

/// One scenario's result.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    pub scenario: String,
    pub checks: String,
    pub verdict: Verdict,
    /// The feature the version lacks: `podFailurePolicy: 1.26`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub needs: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<Expected>,
    /// What was seen, in the words of the expectation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seen: Option<String>,
    /// Each field that differed: `failed: expected 2, seen 3`.
    pub differences: Vec<String>,
    /// The upstream issue behind a known difference.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub known: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub seconds: f64,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct ConformanceReport {
    /// `cluster` or `local`.
    pub on: String,
    pub server: String,
    pub version: String,
    pub passed: usize,
    pub differed: usize,
    pub known: usize,
    pub not_on_this_version: usize,
    pub errors: usize,
    pub seconds: f64,
    pub scenarios: Vec<ScenarioResult>,
}

impl ConformanceReport {
    fn new(on: &str, server: String, version: KubeVersion, scenarios: Vec<ScenarioResult>, seconds: f64) -> Self {
        let count = |v: Verdict| scenarios.iter().filter(|s| s.verdict == v).count();
        ConformanceReport {
            on: on.into(),
            server,
            version: version.to_string(),
            passed: count(Verdict::Passed),
            differed: count(Verdict::Differed),
            known: count(Verdict::Known),
            not_on_this_version: count(Verdict::NotOnThisVersion),
            errors: count(Verdict::Error),
            seconds,
            scenarios,
        }
    }

    /// Ok when everything that ran agreed (passed or known).
    fn verdict(&self) -> Result<(), Error> {
        let bad = self.differed + self.errors;
        if bad == 0 {
            return Ok(());
        }
        let names: Vec<&str> = self
            .scenarios
            .iter()
            .filter(|s| matches!(s.verdict, Verdict::Differed | Verdict::Error))
            .map(|s| s.scenario.as_str())
            .collect();
        Err(Error::new(
            ErrorKind::Failed,
            format!(
                "{bad} scenario{} did not agree with Kubernetes {}'s Job controller: {}",
                if bad == 1 { "" } else { "s" },
                self.version,
                names.join(", ")
            ),
        ))
    }
}

impl fmt::Display for ConformanceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:<30} {:<20} SEEN / DIFFERENCES", "SCENARIO", "VERDICT")?;
        for s in &self.scenarios {
            let verdict = match s.verdict {
                Verdict::Passed => "passed".to_owned(),
                Verdict::Differed => "differed".to_owned(),
                Verdict::Known => "known".to_owned(),
                Verdict::NotOnThisVersion => format!("not on {}", self.version),
                Verdict::Error => "error".to_owned(),
            };
            let detail = match s.verdict {
                Verdict::NotOnThisVersion => s.needs.clone().unwrap_or_default(),
                Verdict::Error => s.error.clone().unwrap_or_default(),
                Verdict::Passed => s.seen.clone().unwrap_or_default(),
                Verdict::Differed | Verdict::Known => s.differences.join("; "),
            };
            writeln!(f, "{:<30} {:<20} {detail}", s.scenario, verdict)?;
            for k in &s.known {
                writeln!(f, "{:<30} {:<20} {k}", "", "")?;
            }
        }
        write!(
            f,
            "{} passed, {} differed, {} known, {} not on {}, {} errors; Kubernetes {} ({}), {}",
            self.passed,
            self.differed,
            self.known,
            self.not_on_this_version,
            self.version,
            self.errors,
            self.version,
            self.server,
            human_seconds(self.seconds)
        )
    }
}

pub fn run(flags: &ConformanceFlags, out: &Reporter) -> Result<()> {
    let scenarios: Vec<Scenario> = catalogue::catalogue()
        .into_iter()
        .filter(|s| flags.only.as_deref().is_none_or(|p| s.name.contains(p)))
        .collect();
    if scenarios.is_empty() {
        return Err(Error::usage(format!(
            "--only {}: no scenario's name contains it; the scenarios are {}",
            flags.only.as_deref().unwrap_or_default(),
            catalogue::catalogue().iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
        ))
        .into());
    }
    if flags.local && flags.clean {
        return Err(Error::usage("--clean removes a cluster run's namespaces; a local run leaves nothing").into());
    }
    crate::runtime()?.block_on(async {
        if flags.local {
            let report = run_local(flags, &scenarios, out).await?;
            out.result(&report);
            return Ok(report.verdict()?);
        }
        let cluster = cluster::connect(&cluster::Access::from(&flags.cluster), out).await?;
        if flags.clean {
            let removed = clean(&cluster, out).await?;
            out.status(format!("removed {removed} namespaces a conformance run left"));
            return Ok(());
        }
        let report = run_cluster(&cluster, flags, &scenarios, out).await?;
        out.result(&report);
        Ok(report.verdict()?)
    })
}

/// The scenario's Job, rendered from its flags as `render` would render
/// them, in `namespace` with `image`.
fn render(s: &Scenario, namespace: &str, image: &ImageRef) -> Result<Vec<Object>> {
    #[derive(clap::Parser)]
    struct ScenarioFlags {
        #[command(flatten)]
        job: JobFlags,
    }
    use clap::Parser;
    let mut args = vec!["scenario", "--name", s.name, "--namespace", namespace];
    args.extend(s.args.split_whitespace());
    let mut parsed = ScenarioFlags::try_parse_from(&args)
        .map_err(|e| anyhow::anyhow!("scenario {}: its flags do not parse: {e}", s.name))?;
    parsed.job.image = Some(image.clone());
    let (p, _warnings) = params::job_params(&parsed.job)?;
    Ok(manifest::job_objects(&p))
}

/// Compares what was seen with what was expected, field by field.
fn compare(expected: &Expected, seen: &JobReport) -> Vec<(String, &'static str)> {
    let mut differences = Vec::new();
    let conditions: Vec<(String, String)> =
        seen.conditions.iter().filter(|c| c.status == "True").map(|c| (c.kind.clone(), c.reason.clone())).collect();
    let want: Vec<(String, String)> = expected.conditions.iter().map(|(k, r)| ((*k).into(), (*r).into())).collect();
    if conditions != want {
        let show = |list: &[(String, String)]| {
            if list.is_empty() {
                return "none".to_owned();
            }
            list.iter()
                .map(|(k, r)| if r.is_empty() { k.clone() } else { format!("{k} ({r})") })
                .collect::<Vec<_>>()
                .join(", ")
        };
        differences.push((format!("conditions: expected {}, seen {}", show(&want), show(&conditions)), "conditions"));
    }
    let mut count = |field: &'static str, want: Count, seen: i32| {
        if !want.holds(seen) {
            differences.push((format!("{field}: expected {want}, seen {seen}"), field));
        }
    };
    count("succeeded", expected.succeeded, seen.succeeded);
    count("failed", expected.failed, seen.failed_pods);
    if let Some(pods) = expected.pods {
        count("pods", pods, seen.pods.len() as i32);
    }
    if let Some(restarts) = expected.restarts {
        count("restarts", restarts, seen.pods.iter().map(|p| p.restarts).sum());
    }
    let mut indexes = |field: &'static str, want: Option<&str>, seen: &Option<String>| {
        let seen = seen.as_deref().unwrap_or("");
        if let Some(want) = want
            && want != seen
        {
            let show = |s: &str| if s.is_empty() { "none".to_owned() } else { format!("{s:?}") };
            differences.push((format!("{field}: expected {}, seen {}", show(want), show(seen)), field));
        }
    };
    indexes("completedIndexes", expected.completed_indexes, &seen.completed_indexes);
    indexes("failedIndexes", expected.failed_indexes, &seen.failed_indexes);
    differences
}

/// What was seen, in a line: `Complete; succeeded 3, failed 0`.
fn seen_line(report: &JobReport) -> String {
    let mut line = format!(
        "{}; succeeded {}, failed {}",
        condition_sequence(&report.conditions),
        report.succeeded,
        report.failed_pods
    );
    if let Some(c) = report.completed_indexes.as_deref().filter(|c| !c.is_empty()) {
        line.push_str(&format!(", completed indexes {c}"));
    }
    if let Some(c) = report.failed_indexes.as_deref().filter(|c| !c.is_empty()) {
        line.push_str(&format!(", failed indexes {c}"));
    }
    line
}

/// The verdict of a finished scenario.
fn judge(s: &Scenario, version: KubeVersion, outcome: Result<JobReport>, seconds: f64) -> ScenarioResult {
    let expected = (s.expect)(version);
    let mut result = ScenarioResult {
        scenario: s.name.into(),
        checks: s.checks.into(),
        verdict: Verdict::Passed,
        needs: None,
        expected: Some(expected.clone()),
        seen: None,
        differences: Vec::new(),
        known: Vec::new(),
        error: None,
        seconds,
    };
    let report = match outcome {
        Ok(report) => report,
        Err(e) => {
            result.verdict = Verdict::Error;
            result.error = Some(format!("{e:#}"));
            return result;
        }
    };
    result.seen = Some(seen_line(&report));
    let differences = compare(&expected, &report);
    let known: Vec<&catalogue::Known> = s.known.iter().filter(|k| k.from <= version && version <= k.until).collect();
    let all_known = differences.iter().all(|(_, field)| known.iter().any(|k| k.field == *field));
    result.verdict = match (differences.is_empty(), all_known) {
        (true, _) => Verdict::Passed,
        (false, true) => Verdict::Known,
        (false, false) => Verdict::Differed,
    };
    if result.verdict == Verdict::Known {
        result.known = known
            .iter()
            .filter(|k| differences.iter().any(|(_, f)| *f == k.field))
            .map(|k| format!("{}: {} ({})", k.field, k.why, k.upstream))
            .collect();
    }
    result.differences = differences.into_iter().map(|(d, _)| d).collect();
    result
}

fn not_on(s: &Scenario, version: KubeVersion) -> Option<ScenarioResult> {
    let feature = s.missing(version)?;
    Some(ScenarioResult {
        scenario: s.name.into(),
        checks: s.checks.into(),
        verdict: Verdict::NotOnThisVersion,
        needs: Some(format!("{}: {}", feature.field, feature.on_by_default)),
        expected: None,
        seen: None,
        differences: Vec::new(),
        known: Vec::new(),
        error: None,
        seconds: 0.0,
    })
}

async fn run_cluster(
    cluster: &Cluster,
    flags: &ConformanceFlags,
    scenarios: &[Scenario],
    out: &Reporter,
) -> Result<ConformanceReport> {
    let image = flags.image.clone().ok_or_else(|| {
        Error::usage(
            "conformance on a cluster needs --image: the image the cluster's nodes can pull, pinned by digest \
             (`cargo xtask push` prints it); `--local` runs the catalogue on the local Docker engine instead",
        )
    })?;
    if flags.kube_version.is_some() {
        return Err(Error::usage(
            "--kube-version is for --local: on a cluster the server's own version decides what is expected",
        )
        .into());
    }
    let version = cluster::server_version(cluster).await?;
    // Five characters, as Kubernetes suffixes names.
    let run = local::random_suffix();
    let started = Instant::now();
    out.status(format!(
        "conformance run {run}: {} scenarios against Kubernetes {version} at {}, {} at a time, each in a namespace \
         labelled {RUN_LABEL}={run} (`cargo xtask conformance --clean` removes any left behind)",
        scenarios.len(),
        cluster.server,
        flags.parallel
    ));
    let quiet = out.quiet();
    let runs = scenarios.iter().enumerate().map(|(i, s)| {
        let (image, run) = (&image, &run);
        async move {
            if let Some(r) = not_on(s, version) {
                return (i, r);
            }
            let namespace = format!("jtc-{run}-{}", s.name);
            let t = Instant::now();
            let outcome = run_on_cluster(cluster, s, &namespace, image, run, version, flags.timeout, &quiet).await;
            let result = judge(s, version, outcome, t.elapsed().as_secs_f64());
            // Deleted whatever happened: the Job and its pods go with it.
            let namespaces: Api<Namespace> = Api::all(cluster.client.clone());
            if let Err(e) = namespaces.delete(&namespace, &DeleteParams::background()).await {
                out.warn(format!("namespace {namespace} was not deleted ({e}); `--clean` removes it"));
            }
            (i, result)
        }
    });
    let mut results = report_as_they_end(runs, usize::from(flags.parallel), scenarios.len(), out).await;
    results.sort_by_key(|(i, _)| *i);
    let results = results.into_iter().map(|(_, r)| r).collect();
    let server = format!("cluster at {}", cluster.server);
    Ok(ConformanceReport::new("cluster", server, version, results, started.elapsed().as_secs_f64()))
}

/// Runs up to `parallel` at once and says each verdict as it comes.
async fn report_as_they_end(
    runs: impl Iterator<Item = impl std::future::Future<Output = (usize, ScenarioResult)>>,
    parallel: usize,
    total: usize,
    out: &Reporter,
) -> Vec<(usize, ScenarioResult)> {
    let mut stream = futures_util::stream::iter(runs).buffer_unordered(parallel.max(1));
    let mut results = Vec::new();
    while let Some((i, r)) = stream.next().await {
        let how = match r.verdict {
            Verdict::Passed => "passed".to_owned(),
            Verdict::Known => format!("known ({})", r.differences.join("; ")),
            Verdict::Differed => format!("DIFFERED: {}", r.differences.join("; ")),
            Verdict::NotOnThisVersion => format!("not on this version ({})", r.needs.as_deref().unwrap_or_default()),
            Verdict::Error => format!("ERROR: {}", r.error.as_deref().unwrap_or_default()),
        };
        out.status(format!(
            "[{}/{total}] {} {how}{}",
            results.len() + 1,
            r.scenario,
            if r.seconds > 0.0 { format!(" ({})", human_seconds(r.seconds)) } else { String::new() }
        ));
        results.push((i, r));
    }
    results
}

#[allow(clippy::too_many_arguments)]
async fn run_on_cluster(
    cluster: &Cluster,
    s: &Scenario,
    namespace: &str,
    image: &ImageRef,
    run: &str,
    version: KubeVersion,
    timeout: Duration,
    out: &Reporter,
) -> Result<JobReport> {
    let mut objects = render(s, namespace, image)?;
    for o in &mut objects {
        if let Object::Namespace(ns) = o {
            ns.metadata.labels.get_or_insert_default().insert(RUN_LABEL.into(), run.into());
        }
    }
    versions::adapt(&mut objects, version).into_result(version, &format!("at {}", cluster.server))?;
    let (first, rest): (Vec<Object>, Vec<Object>) =
        objects.into_iter().partition(|o| matches!(o, Object::Namespace(_)));
    cluster::apply::apply_all(cluster, first, out).await?;
    default_service_account(cluster, namespace).await?;
    cluster::apply::apply_all(cluster, rest, out).await?;
    let watching = cluster::watch::watch(cluster, s.name, namespace, Some(timeout), out);
    let Some(after) = s.evict else { return watching.await };
    // The eviction goes on beside the watch: once a pod has run a while,
    // evict it and follow it until the Job controller has accounted for it.
    let evicting = async {
        let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), namespace);
        let started = Instant::now();
        let mut running_since: Option<Instant> = None;
        loop {
            let list = pods.list(&ListParams::default()).await?;
            let running =
                list.items.iter().any(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"));
            match (running, running_since) {
                (true, None) => running_since = Some(Instant::now()),
                (true, Some(t)) if t.elapsed() >= after => break,
                _ => {}
            }
            if started.elapsed() > timeout {
                anyhow::bail!(
                    "no pod of job.batch/{} ran to be evicted within {}",
                    s.name,
                    human_seconds(timeout.as_secs_f64())
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        cluster::evict::evict(cluster, s.name, namespace, None, timeout, out).await
    };
    let (report, evicted) = tokio::join!(watching, evicting);
    evicted?;
    report
}

/// Waits for a new namespace's `default` ServiceAccount: until the
/// service-account controller makes it, the admission plugin refuses every
/// pod and the Job controller backs off, and a scenario's deadline would
/// run out with no pod created.
async fn default_service_account(cluster: &Cluster, namespace: &str) -> Result<()> {
    let accounts: Api<ServiceAccount> = Api::namespaced(cluster.client.clone(), namespace);
    let started = Instant::now();
    loop {
        match accounts.get_opt("default").await {
            Ok(Some(_)) => return Ok(()),
            Ok(None) if started.elapsed() < Duration::from_secs(60) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Ok(None) => {
                return Err(Error::remote(format!(
                    "namespace {namespace} got no default ServiceAccount within a minute: is the cluster's \
                     service-account controller running?"
                ))
                .into());
            }
            Err(e) => {
                let what = Attempt { verb: "get", resource: "serviceaccounts", namespace: Some(namespace) };
                return Err(cluster::explain(cluster, &what, &e).into());
            }
        }
    }
}

/// Deletes every namespace a conformance run made; how many.
async fn clean(cluster: &Cluster, out: &Reporter) -> Result<usize> {
    let namespaces: Api<Namespace> = Api::all(cluster.client.clone());
    let list = namespaces.list(&ListParams::default().labels(RUN_LABEL)).await.map_err(|e| {
        cluster::explain(cluster, &Attempt { verb: "list", resource: "namespaces", namespace: None }, &e)
    })?;
    let mut removed = 0;
    for ns in list.items {
        let name = ns.metadata.name.unwrap_or_default();
        namespaces.delete(&name, &DeleteParams::background()).await.map_err(|e| {
            cluster::explain(cluster, &Attempt { verb: "delete", resource: "namespaces", namespace: None }, &e)
        })?;
        out.status(format!("namespace/{name} deleted"));
        removed += 1;
    }
    Ok(removed)
}

async fn run_local(flags: &ConformanceFlags, scenarios: &[Scenario], out: &Reporter) -> Result<ConformanceReport> {
    let version = flags.kube_version.unwrap_or(versions::NEWEST);
    let image = match &flags.image {
        Some(image) => image.clone(),
        None => crate::image::default_reference()?,
    };
    let started = Instant::now();
    // Pulled once here, not by every scenario at once.
    let docker = crate::image::docker::local_daemon().await?;
    local::ensure_image(&docker, &image.to_string(), out).await?;
    out.status(format!(
        "conformance: {} scenarios on the local Docker engine, playing the Job controller of Kubernetes {version}, \
         {} at a time{}",
        scenarios.len(),
        flags.parallel,
        if flags.time_scale == 1.0 { String::new() } else { format!("; back-offs × {}", flags.time_scale) }
    ));
    let quiet = out.quiet();
    let options = local::Options {
        time_scale: flags.time_scale,
        keep: false,
        timeout: Some(flags.timeout),
        version,
        evict: Vec::new(),
        summary: None,
    };
    let runs = scenarios.iter().enumerate().map(|(i, s)| {
        let (image, options) = (&image, &options);
        async move {
            if let Some(r) = not_on(s, version) {
                return (i, r);
            }
            let t = Instant::now();
            let options = local::Options { evict: s.evict.into_iter().collect(), ..options.clone() };
            let outcome = async {
                let job: Job = render(s, "conformance", image)?
                    .into_iter()
                    .find_map(|o| match o {
                        Object::Job(job) => Some(*job),
                        _ => None,
                    })
                    .expect("a rendering holds its Job");
                // run_job adapts it to the version, as for any local run.
                local::run_job(&job, &options, &quiet).await
            }
            .await;
            (i, judge(s, version, outcome, t.elapsed().as_secs_f64()))
        }
    });
    let mut results = report_as_they_end(runs, usize::from(flags.parallel), scenarios.len(), out).await;
    results.sort_by_key(|(i, _)| *i);
    let results = results.into_iter().map(|(_, r)| r).collect();
    Ok(ConformanceReport::new("local", "local Docker engine".into(), version, results, started.elapsed().as_secs_f64()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::job::{JobCondition, JobResult, PodRow};

    fn report(conditions: &[(&str, &str)], succeeded: i32, failed: i32) -> JobReport {
        JobReport {
            name: "x".into(),
            namespace: "x".into(),
            result: JobResult::Complete,
            reason: String::new(),
            message: String::new(),
            succeeded,
            completions: 1,
            failed_pods: failed,
            seconds: None,
            runs: 0,
            failed_runs: 0,
            configured_probability: None,
            pods: Vec::<PodRow>::new(),
            conditions: conditions.iter().map(|(k, r)| JobCondition::new(k, r, "")).collect(),
            completed_indexes: None,
            failed_indexes: None,
            managed_by: None,
            terminating: None,
            image_pull: None,
            times: None,
        }
    }

    fn scenario(name: &str) -> Scenario {
        catalogue::catalogue().into_iter().find(|s| s.name == name).unwrap()
    }

    #[test]
    fn differences_are_named_field_by_field() {
        let s = scenario("backoff-limit");
        let v20 = KubeVersion::new(1, 20);
        let seen = report(&[("Failed", "BackoffLimitExceeded")], 0, 3);
        let r = judge(&s, v20, Ok(seen), 1.0);
        assert_eq!(r.verdict, Verdict::Differed);
        assert_eq!(r.differences, ["failed: expected 2, seen 3", "pods: expected 2, seen 0"]);
        // The 1.31 sequence is expected on 1.33, not a lone Failed.
        let r = judge(&s, versions::NEWEST, Ok(report(&[("Failed", "BackoffLimitExceeded")], 0, 2)), 1.0);
        assert!(
            r.differences[0].starts_with(
                "conditions: expected FailureTarget (BackoffLimitExceeded), Failed (BackoffLimitExceeded), seen \
                 Failed (BackoffLimitExceeded)"
            ),
            "{:?}",
            r.differences
        );
    }

    #[test]
    fn a_scenario_passes_when_every_field_agrees_and_indexes_may_be_unwritten() {
        let s = scenario("max-failed-indexes");
        let mut seen =
            report(&[("FailureTarget", "MaxFailedIndexesExceeded"), ("Failed", "MaxFailedIndexesExceeded")], 0, 1);
        seen.failed_indexes = Some("0".into());
        let r = judge(&s, versions::NEWEST, Ok(seen), 1.0);
        assert_eq!((r.verdict, r.differences.len()), (Verdict::Passed, 0), "{:?}", r.differences);
        assert_eq!(
            not_on(&s, KubeVersion::new(1, 20)).unwrap().needs.as_deref(),
            Some("spec.backoffLimitPerIndex: 1.29")
        );
    }

    #[test]
    fn a_run_that_differs_exits_1_and_names_the_scenarios() {
        let s = scenario("complete");
        let bad = judge(&s, versions::NEWEST, Ok(report(&[("Complete", "")], 3, 0)), 1.0);
        let error = judge(&s, versions::NEWEST, Err(anyhow::anyhow!("gave up")), 1.0);
        assert_eq!(error.verdict, Verdict::Error);
        let all = ConformanceReport::new("local", "here".into(), versions::NEWEST, vec![bad, error], 2.0);
        let e = all.verdict().unwrap_err();
        assert_eq!(e.kind, ErrorKind::Failed);
        assert!(
            e.to_string()
                .contains("2 scenarios did not agree with Kubernetes 1.33's Job controller: complete, complete")
        );
        assert!(
            all.to_string()
                .ends_with("0 passed, 1 differed, 0 known, 0 not on 1.33, 1 errors; Kubernetes 1.33 (here), 2s")
        );
    }
}
