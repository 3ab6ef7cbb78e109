//! The API server's Job and Pod JSON as `watch` reads them: a Job, then its
//! pods, as JSON values one after the other; the verdict, the pod rows, the
//! report and its text, JSON and HTML.
//!
//! Checked: never panics; the report's JSON reads back as the same report.
#![no_main]

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use libfuzzer_sys::fuzz_target;
use xtask::cluster::status;
use xtask::report::job::JobReport;

fuzz_target!(|data: &[u8]| {
    let mut values = serde_json::Deserializer::from_slice(data).into_iter::<serde_json::Value>();
    let Some(Ok(job)) = values.next() else { return };
    let Ok(job) = serde_json::from_value::<Job>(job) else { return };
    let pods: Vec<Pod> = values.map_while(Result::ok).filter_map(|v| serde_json::from_value(v).ok()).collect();
    let _ = (status::early_verdict(&job), status::is_job_complete(&job), status::is_job_failed(&job));
    let since = status::created_second(&job);
    for pod in &pods {
        let _ = status::image_pull(pod);
    }
    let report = status::job_report(&job, pods.iter().map(|p| status::pod_row(p, since)));
    let _ = report.to_string();
    let _ = report.verdict();
    let _ = xtask::report::html::page(&report);
    let json = serde_json::to_string(&report).expect("a report is JSON");
    let back: JobReport = serde_json::from_str(&json).expect("a report's JSON reads back");
    assert_eq!(serde_json::to_string(&back).unwrap(), json);
});
