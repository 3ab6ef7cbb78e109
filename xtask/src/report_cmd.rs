//! `cargo xtask report`: draw a saved run again, as the page `--html`
//! writes, from the JSON `--save-report` or `--output json` wrote.

use std::fmt;
use std::path::PathBuf;

use anyhow::Result;
use serde::Serialize;

use crate::flags::ReportFlags;
use crate::report::job::JobReport;
use crate::report::{Reporter, html};

pub fn run(flags: &ReportFlags, out: &Reporter) -> Result<()> {
    let report = JobReport::read(&flags.from, "--from")?;
    let bytes = html::write(&report, Some(&flags.html), out)?;
    out.result(&Drawn { job: report.name, pods: report.pods.len(), html: flags.html.clone(), bytes });
    Ok(())
}

/// What was drawn where.
#[derive(Serialize)]
struct Drawn {
    job: String,
    pods: usize,
    html: PathBuf,
    bytes: usize,
}

/// `job.batch/demo: 5 pods drawn in run.html`
impl fmt::Display for Drawn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "job.batch/{}: {} pods drawn in {}", self.job, self.pods, self.html.display())
    }
}
