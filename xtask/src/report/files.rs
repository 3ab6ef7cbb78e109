//! Where a finished run's report is kept besides stdout: as JSON
//! (`--save-report`, read back by `alerts --report` and `report --from`)
//! and as a page (`--html`), for `watch`, `run-local` and `release` alike.

use std::path::PathBuf;

use super::Reporter;
use super::job::JobReport;

/// The files a run's report goes to; none by default.
#[derive(Debug, Clone, Default)]
pub struct ReportFiles {
    pub save_report: Option<PathBuf>,
    pub html: Option<PathBuf>,
}

impl ReportFiles {
    /// Writes the report to each file asked for.
    pub fn keep(&self, report: &JobReport, out: &Reporter) -> anyhow::Result<()> {
        report.save(self.save_report.as_deref(), out)?;
        super::html::write(report, self.html.as_deref(), out).map(drop)
    }
}
