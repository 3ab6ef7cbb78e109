//! `cargo xtask report`: draw a saved run again, as the page `--html`
//! writes, from the JSON `--save-report` or `--output json` wrote.

use anyhow::Result;

use crate::flags::ReportFlags;
use crate::report::job::JobReport;
use crate::report::{Reporter, html};

pub fn run(flags: &ReportFlags, out: &Reporter) -> Result<()> {
    let report = JobReport::read(&flags.from, "--from")?;
    html::write(&report, Some(&flags.html), out)
}
