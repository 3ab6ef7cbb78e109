//! The live pod table: the Job's pods as they change, while the Job runs,
//! redrawn in place on a terminal and a line per change in a log. The rows
//! are the report's (`job::PodRow`); the report itself is printed once, at
//! the end.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use super::Reporter;
use super::job::{PodPhase, PodRow};

/// What a log prints a pod's line again for: not the time, which changes
/// every second.
fn state_key(row: &PodRow) -> (PodPhase, Option<&str>, Option<i32>, Option<&str>, i32) {
    (row.phase, row.index.as_deref(), row.exit_code, row.reason.as_deref(), row.restarts)
}

/// Pods shown one by one in the live table; beyond this the table shows
/// counts by phase and the pods that failed.
pub const TABLE_ROWS: usize = 30;

/// How often a terminal table is redrawn at most: a Job of thousands of
/// pods sends events faster than anyone reads.
const REDRAW_EVERY: Duration = Duration::from_millis(250);

/// How often, beyond TABLE_ROWS pods, a log gets a line of counts: often
/// enough to see progress, rarely enough that ten thousand pods make a
/// readable log.
pub const SUMMARY_EVERY: Duration = Duration::from_secs(5);

/// The live view: a table redrawn in place on a terminal, a line per
/// change otherwise (logs and pipes); beyond TABLE_ROWS pods a log gets
/// the pods with failed runs and a periodic line of counts.
pub struct PodTable {
    tty: bool,
    drawn: usize,
    last_draw: Option<Instant>,
    last_summary: Option<Instant>,
    out: Reporter,
}

impl PodTable {
    pub fn new(out: &Reporter) -> PodTable {
        let tty = !out.quiet && std::io::stderr().is_terminal();
        PodTable { tty, drawn: 0, last_draw: None, last_summary: None, out: *out }
    }

    fn line(row: &PodRow) -> String {
        format!(
            "{:<28} {:<10} {:>5} {:>6} {:<18} {:>8} {:>8}",
            row.name,
            row.phase,
            row.index.as_deref().unwrap_or("-"),
            row.exit_code.map_or("-".into(), |c| c.to_string()),
            row.reason.as_deref().unwrap_or("-"),
            row.restarts,
            row.seconds.map_or("-".into(), |s| format!("{s:.0}s")),
        )
    }

    /// One pod changed (`before` is its previous row, if any); `rows` are
    /// all pods now.
    pub fn update(&mut self, before: Option<&PodRow>, changed: &PodRow, rows: &BTreeMap<String, PodRow>) {
        if self.tty {
            if self.last_draw.is_some_and(|t| t.elapsed() < REDRAW_EVERY) {
                return;
            }
            self.draw(rows);
            return;
        }
        for line in self.log_lines(before, changed, rows, Instant::now()) {
            self.out.status(line);
        }
    }

    /// What a log gets for a change at `now`: the pod's line while the pods
    /// fit the table, or when a run of it failed; beyond TABLE_ROWS pods a
    /// line of counts every SUMMARY_EVERY, the first saying what the log
    /// lists from then on.
    fn log_lines(
        &mut self,
        before: Option<&PodRow>,
        changed: &PodRow,
        rows: &BTreeMap<String, PodRow>,
        now: Instant,
    ) -> Vec<String> {
        let mut lines = Vec::new();
        let new_state = before.is_none_or(|b| state_key(b) != state_key(changed));
        if new_state && (rows.len() <= TABLE_ROWS || changed.has_failed_run()) {
            lines.push(format!("pod {}", Self::line(changed).trim_end()));
        }
        if rows.len() > TABLE_ROWS && self.last_summary.is_none_or(|t| now.duration_since(t) >= SUMMARY_EVERY) {
            let first = self.last_summary.is_none();
            self.last_summary = Some(now);
            lines.push(format!(
                "{}{}",
                Self::counts(rows),
                if first {
                    format!(
                        "; more than {TABLE_ROWS} pods: from now on only pods with failed runs are listed, \
                         and these counts every {}",
                        humantime::format_duration(SUMMARY_EVERY)
                    )
                } else {
                    String::new()
                }
            ));
        }
        lines
    }

    /// `10000 pods: 100 Failed, 9900 Succeeded`
    fn counts(rows: &BTreeMap<String, PodRow>) -> String {
        let mut phases: BTreeMap<&str, usize> = BTreeMap::new();
        for r in rows.values() {
            *phases.entry(r.phase.as_str()).or_default() += 1;
        }
        format!(
            "{} pods: {}",
            rows.len(),
            phases.iter().map(|(p, n)| format!("{n} {p}")).collect::<Vec<_>>().join(", ")
        )
    }

    /// The screen: every pod while they fit, else counts by phase and the
    /// most recent failures.
    pub fn screen(rows: &BTreeMap<String, PodRow>) -> Vec<String> {
        let mut lines = vec![format!(
            "{:<28} {:<10} {:>5} {:>6} {:<18} {:>8} {:>8}",
            "POD", "PHASE", "INDEX", "EXIT", "REASON", "RESTARTS", "TIME"
        )];
        if rows.len() <= TABLE_ROWS {
            lines.extend(rows.values().map(Self::line));
            return lines;
        }
        let failed: Vec<&PodRow> = rows.values().filter(|r| r.has_failed_run()).collect();
        lines.extend(failed.iter().rev().take(TABLE_ROWS - 2).rev().map(|r| Self::line(r)));
        lines.push(format!(
            "{}{}",
            Self::counts(rows),
            if failed.len() > TABLE_ROWS - 2 {
                format!(" (the last {} of {} with failed runs shown)", TABLE_ROWS - 2, failed.len())
            } else {
                String::new()
            }
        ));
        lines
    }

    fn draw(&mut self, rows: &BTreeMap<String, PodRow>) {
        let screen = Self::screen(rows);
        if self.drawn > 0 {
            eprint!("\x1b[{}A\x1b[J", self.drawn);
        }
        eprintln!("{}", screen.join("\n"));
        self.drawn = screen.len();
        self.last_draw = Some(Instant::now());
    }

    /// A line under the table; the table is drawn afresh below it.
    pub fn note(&mut self, message: &str) {
        self.drawn = 0;
        self.out.status(message);
    }

    /// The final state: on a terminal the table, left as it is; in a log
    /// that summarised, the last counts.
    pub fn close(&mut self, rows: &BTreeMap<String, PodRow>) {
        if self.tty && !rows.is_empty() {
            self.draw(rows);
        } else if !self.tty && self.last_summary.is_some() {
            self.out.status(Self::counts(rows));
        }
        self.drawn = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::job::tests::failed_pod;

    #[test]
    fn a_log_of_a_big_job_lists_failed_runs_and_counts() {
        let mut table = PodTable::new(&Reporter::new(crate::choices::Output::Text));
        let mut rows: BTreeMap<String, PodRow> = BTreeMap::new();
        let start = Instant::now();
        let mut log = Vec::new();
        // 10,000 pods, one event each, a millisecond apart: one in a
        // hundred fails.
        for n in 0..10_000 {
            let mut row = failed_pod(n, 1);
            if n % 100 != 50 {
                row.phase = PodPhase::Succeeded;
                row.exit_code = Some(0);
                row.reason = Some("Completed".into());
                row.message = None;
            }
            let before = rows.insert(row.name.clone(), row.clone());
            log.extend(table.log_lines(before.as_ref(), &row, &rows, start + Duration::from_millis(n as u64)));
        }
        let pods = log.iter().filter(|l| l.starts_with("pod ")).count();
        // The first 30 one by one, then the 100 failures after them.
        assert_eq!(pods, TABLE_ROWS + 100, "{log:#?}");
        assert!(log.iter().filter(|l| l.starts_with("pod ")).skip(TABLE_ROWS).all(|l| l.contains(" Failed ")));
        // Counts at the 31st pod, then every 5 s (5,000 events here).
        let counts: Vec<&String> = log.iter().filter(|l| l.contains(" pods: ")).collect();
        assert_eq!(counts.len(), 2, "{counts:#?}");
        assert_eq!(
            counts[0],
            "31 pods: 31 Succeeded; more than 30 pods: from now on only pods with failed runs are listed, \
             and these counts every 5s"
        );
        assert_eq!(counts[1], "5031 pods: 50 Failed, 4981 Succeeded");
        // A pod whose state did not change adds nothing but counts.
        let again = rows.values().next().unwrap().clone();
        assert!(table.log_lines(Some(&again), &again, &rows, start).is_empty());
    }

    #[test]
    fn a_big_job_is_summarised_on_screen() {
        let mut rows: BTreeMap<String, PodRow> = BTreeMap::new();
        for n in 0..10_000 {
            let mut row = failed_pod(n, 1);
            if n % 100 != 0 {
                row.phase = PodPhase::Succeeded;
                row.exit_code = Some(0);
                row.message = None;
            }
            rows.insert(row.name.clone(), row);
        }
        let screen = PodTable::screen(&rows);
        assert_eq!(screen.len(), TABLE_ROWS, "{screen:#?}");
        assert_eq!(
            screen.last().unwrap(),
            "10000 pods: 100 Failed, 9900 Succeeded (the last 28 of 100 with failed runs shown)"
        );
        assert!(screen[1].starts_with("job-test-07200 "), "{screen:#?}");

        let few: BTreeMap<String, PodRow> = rows.into_iter().take(3).collect();
        assert_eq!(PodTable::screen(&few).len(), 4);
    }
}
