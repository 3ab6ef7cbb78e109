//! `odds -f job.yaml`: the odds of a Job the user wrote rather than one the
//! flags describe. The Job's spec gives the retry settings; its first
//! container's environment, read by the worker's own parser, gives the
//! worker's. What the odds cannot model is refused with its field named,
//! never left out.

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;

use super::Model;
use crate::Error;
use crate::manifest::params::RestartPolicy;

/// The model of the Job (read from `file`, else from the cluster), or
/// what in it the odds cannot model.
pub fn model_of(job: &Job, file: Option<&Path>, pod_startup: Duration) -> Result<Model, Error> {
    let name = job.metadata.name.clone().unwrap_or_else(|| "job".into());
    let refuse = |field: &str, why: &str| {
        Error::usage(match file {
            Some(file) => format!(
                "-f {}: job.batch/{name}: {field}: {why}; `cargo xtask run-local -f {}` runs it",
                file.display(),
                file.display()
            ),
            None => format!("job.batch/{name}: {field}: {why}"),
        })
    };
    let spec = job.spec.clone().unwrap_or_default();
    // job-test's own rules (exit code 2 fails the Job, a disruption is
    // ignored) cannot match a run the odds draw; any other rule can.
    let own = crate::manifest::objects::default_pod_failure_policy().rules;
    let rules = spec.pod_failure_policy.as_ref().map(|p| p.rules.as_slice()).unwrap_or_default();
    if let Some(i) = rules.iter().position(|r| !own.contains(r)) {
        return Err(refuse(
            &format!("spec.podFailurePolicy.rules[{i}]"),
            "odds cannot model pod failure rules yet (job-test's own two rules aside)",
        ));
    }
    if spec.success_policy.is_some() {
        return Err(refuse("spec.successPolicy", "odds cannot model a success policy yet"));
    }
    let pod = spec.template.spec.clone().unwrap_or_default();
    let restart_policy = match pod.restart_policy.as_deref() {
        Some("Never") => RestartPolicy::Never,
        Some("OnFailure") => RestartPolicy::OnFailure,
        other => {
            return Err(refuse(
                "spec.template.spec.restartPolicy",
                &format!("{other:?}: a Job's pods restart Never or OnFailure"),
            ));
        }
    };
    let indexed = spec.completion_mode.as_deref() == Some("Indexed");
    let container = pod.containers.first().ok_or_else(|| refuse("spec.template.spec.containers", "no container"))?;
    // The worker's settings, read as the worker reads them: plain values
    // only (a value from a Secret or the downward API is not known here,
    // but JOB_INDEX_FAILURE_COUNT, which Kubernetes sets).
    let mut env: Vec<(String, String)> = Vec::new();
    let mut index_failure_count = false;
    for var in container.env.iter().flatten() {
        match (&var.value, &var.value_from) {
            (_, Some(_)) if var.name == job_worker::config::ENV_INDEX_FAILURE_COUNT => index_failure_count = true,
            (_, Some(_)) => {
                return Err(refuse(
                    &format!("env {}", var.name),
                    "its value comes from elsewhere (valueFrom), which odds cannot read; give it a value",
                ));
            }
            (Some(value), None) => env.push((var.name.clone(), value.clone())),
            (None, None) => env.push((var.name.clone(), String::new())),
        }
    }
    // STATE_DIR names a directory in the pod, not here: the parser would
    // look for it on this machine, so it is only noted.
    let state_dir = env.iter().any(|(n, v)| n == job_worker::config::STATE_DIR.env && !v.is_empty());
    let lookup = |k: &str| {
        (k != job_worker::config::STATE_DIR.env)
            .then(|| env.iter().find(|(n, _)| n == k).map(|(_, v)| OsString::from(v)))
            .flatten()
    };
    let config = match job_worker::config::parse(Vec::<OsString>::new(), lookup) {
        Ok(job_worker::config::Command::Run(config)) => config,
        Ok(_) => return Err(refuse("the worker's environment", "does not configure a run")),
        Err(e) => return Err(refuse("the worker's environment", &e.one_line())),
    };
    let n = |field: &str, v: Option<i32>| -> Result<Option<u32>, Error> {
        v.map(|x| u32::try_from(x).map_err(|_| refuse(field, &format!("{x} is negative")))).transpose()
    };
    let completions = n("spec.completions", spec.completions)?.unwrap_or(1);
    let parallelism = n("spec.parallelism", spec.parallelism)?.unwrap_or(1);
    if parallelism == 0 {
        return Err(refuse("spec.parallelism", "0 runs no pod until it is raised"));
    }
    if completions == 0 {
        // As `--completions 0` is refused; the closed forms and the
        // simulation both start from at least one success to wait for.
        return Err(refuse("spec.completions", "0 asks for no successful pod, so there is nothing to draw"));
    }
    let backoff_limit_per_index = n("spec.backoffLimitPerIndex", spec.backoff_limit_per_index)?;
    // The API's default: 6, or unset beside a per-index limit.
    let backoff_limit = match spec.backoff_limit {
        Some(b) => Some(u32::try_from(b).map_err(|_| refuse("spec.backoffLimit", &format!("{b} is negative")))?),
        None if backoff_limit_per_index.is_some() => None,
        None => Some(6),
    };
    let deadline = spec
        .active_deadline_seconds
        .map_or(Duration::from_secs(u64::from(u32::MAX)), |d| Duration::from_secs(d.max(0) as u64));
    Ok(Model {
        name: name.clone(),
        completions,
        parallelism,
        backoff_limit,
        backoff_limit_per_index,
        max_failed_indexes: n("spec.maxFailedIndexes", spec.max_failed_indexes)?,
        restart_policy,
        indexed,
        fail_probability: config.fail_probability.value,
        failure_mode: config.failure_mode.value,
        fail_exit_code: config.fail_exit_code.value,
        fail_attempts: config.fail_attempts.value,
        fail_indexes: config.fail_indexes.value.clone(),
        seed: config.seed.value,
        state_dir,
        index_failure_count,
        work: config.work_duration.value,
        deadline,
        pod_startup,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Job of a file, with `spec` lines of its own.
    fn job(spec: &str) -> Job {
        let yaml = format!(
            "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: x\nspec:\n{spec}  template:\n    spec:\n      \
             restartPolicy: Never\n      containers:\n      - name: worker\n        image: w\n"
        );
        match crate::manifest::from_yaml(&yaml).unwrap().remove(0) {
            crate::manifest::Object::Job(job) => *job,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_job_with_nothing_to_draw_is_refused_by_its_field() {
        // Found by the job_file fuzz target: completions 0 reached the
        // closed forms, which indexed an empty list of chances.
        let file = Path::new("job.yaml");
        let e =
            model_of(&job("  completionMode: Indexed\n  completions: 0\n"), Some(file), Duration::ZERO).unwrap_err();
        assert_eq!(
            e.to_string(),
            "-f job.yaml: job.batch/x: spec.completions: 0 asks for no successful pod, so there is nothing to draw; \
             `cargo xtask run-local -f job.yaml` runs it"
        );
        let e = model_of(&job("  parallelism: 0\n"), None, Duration::ZERO).unwrap_err();
        assert_eq!(e.to_string(), "job.batch/x: spec.parallelism: 0 runs no pod until it is raised");
        assert!(model_of(&job("  completions: 3\n"), None, Duration::ZERO).is_ok());
    }
}
