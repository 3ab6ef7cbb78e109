//! Typical runs of a Job that has not run yet, drawn by the odds
//! simulation: the run of median length among those that complete and
//! among those that fail, each with its pods' times, as a Job report.

use crate::manifest::params::JobParams;
use crate::odds::simulate::{self, End, PodEvent, Trial};
use crate::odds::{DEFAULT_POD_STARTUP, Model};
use crate::report::job::{JobCondition, JobReport, JobResult, JobTimes, PodPhase, PodRow};

/// Jobs simulated to find the typical ones, and their work budget.
const TRIALS: u32 = 401;
const BUDGET: u64 = simulate::WORK_BUDGET / 4;

/// A typical run, and what it stands for ("a run that fails").
pub struct Typical {
    pub label: String,
    pub report: JobReport,
}

/// A typical completing run and a typical failing one (where the
/// simulation met one), and how many Jobs were simulated.
pub fn typical_runs(p: &JobParams, seed: u64) -> (Vec<Typical>, u32) {
    let m = Model::new(p, DEFAULT_POD_STARTUP);
    // The Jobs `odds` would simulate first; the i-th is replayed with its pods' times.
    let (trials, _) = simulate::whole_trials(&m, TRIALS, seed, BUDGET);
    let seen: Vec<(u32, &Trial)> = (0..).zip(&trials).collect();
    let mut typical = Vec::new();
    for complete in [true, false] {
        let mut runs: Vec<&(u32, &Trial)> = seen.iter().filter(|(_, t)| (t.end == End::Complete) == complete).collect();
        runs.sort_by(|a, b| a.1.seconds.total_cmp(&b.1.seconds).then(a.0.cmp(&b.0)));
        let Some((i, _)) = runs.get(runs.len() / 2) else { continue };
        let Some((trial, events)) = simulate::simulate_traced(&m, simulate::trial_seed(seed, *i), u64::MAX) else {
            continue;
        };
        let label = format!(
            "a typical run that {} ({} of {} simulated runs {}; this one is their median in length)",
            if complete { "completes" } else { "fails" },
            runs.len(),
            seen.len(),
            if complete { "complete" } else { "fail" },
        );
        typical.push(Typical { label, report: report_of(p, &trial, &events) });
    }
    (typical, seen.len() as u32)
}

/// The report a cluster would have given for the simulated run.
fn report_of(p: &JobParams, trial: &Trial, events: &[PodEvent]) -> JobReport {
    let failed_job = trial.end != End::Complete;
    let mut pods: Vec<PodRow> = Vec::new();
    for e in events {
        match *e {
            PodEvent::Created { seq, index, at } => pods.push(PodRow {
                name: format!("{}-{seq}", p.name),
                phase: PodPhase::Running,
                index: p.indexed().then(|| index.to_string()),
                exit_code: None,
                reason: None,
                message: None,
                restarts: 0,
                seconds: None,
                last_exit_code: None,
                created_at: Some(at),
                finished_at: None,
            }),
            PodEvent::Restarted { seq } => pods[seq as usize].restarts += 1,
            PodEvent::Ended { seq, at, failed } => {
                let pod = &mut pods[seq as usize];
                pod.phase = if failed { PodPhase::Failed } else { PodPhase::Succeeded };
                pod.exit_code = Some(if failed { i32::from(p.worker.fail_exit_code.value) } else { 0 });
                pod.finished_at = Some(at);
            }
        }
    }
    // The pods still active at the end: a failed Job's count as failed, a
    // complete Job's are deleted.
    for pod in pods.iter_mut().filter(|pod| pod.finished_at.is_none()) {
        pod.finished_at = Some(trial.seconds);
        pod.phase = if failed_job { PodPhase::Failed } else { PodPhase::Deleted };
    }
    let count = |phase| pods.iter().filter(|pod| pod.phase == phase).count() as i32;
    let (succeeded, failed) = (count(PodPhase::Succeeded), count(PodPhase::Failed));
    let restarts: i32 = pods.iter().map(|pod| pod.restarts).sum();
    let (kind, reason) = match trial.end {
        End::Complete => ("Complete", ""),
        end => ("Failed", end.reason()),
    };
    JobReport {
        name: p.name.clone(),
        namespace: p.namespace.clone(),
        result: if failed_job { JobResult::Failed } else { JobResult::Complete },
        reason: if failed_job { reason.into() } else { "Complete".into() },
        message: String::new(),
        succeeded,
        completions: p.completions,
        failed_pods: failed,
        seconds: Some(trial.seconds),
        runs: succeeded + failed + restarts,
        failed_runs: failed + restarts,
        configured_probability: Some(p.worker.fail_probability.value),
        pods,
        conditions: vec![JobCondition { at: Some(trial.seconds), ..JobCondition::new(kind, reason, "") }],
        completed_indexes: None,
        failed_indexes: None,
        terminating: None,
        managed_by: None,
        image_pull: None,
        times: Some(JobTimes {
            created: None,
            started: Some(0.0),
            finished: Some(trial.seconds),
            ttl_seconds_after_finished: Some(i64::from(p.ttl_seconds_after_finished)),
            active_deadline_seconds: Some(p.active_deadline_seconds),
            parallelism: Some(p.parallelism),
            status: Vec::new(),
        }),
    }
}
