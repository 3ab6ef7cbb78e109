//! A picture of a run: one self-contained HTML page drawn from a
//! [`JobReport`] (`--html FILE` on `watch`, `run-local` and `release`, and
//! `cargo xtask report --html` for a saved report). It owns the timeline
//! (a lane per completion index or parallel slot, a bar per pod coloured by
//! how it ended, the deadline and TTL lines), the verdict with its
//! conditions and counts, and the observed failure rate against the
//! configured one with its Clopper-Pearson interval.
//!
//! The page is hand-written HTML with inline CSS and inline SVG: nothing is
//! fetched, no script runs, so it opens offline in any browser and prints.
//! Hovering a bar shows the pod through SVG `<title>`. Every bar carries
//! `data-outcome` and `data-pod`, which is what the tests read back.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};

use super::Reporter;
use super::job::{JobReport, JobResult, PodPhase, PodRow, condition_sequence};

/// Above this many pods the lanes fold: every pod that did not succeed
/// keeps its bar, the successes of a row become one bar with their count.
pub const FOLD_ABOVE: usize = 200;

/// Rows of the timeline at the most once folded: lanes beyond this share a
/// row (consecutive indexes or slots), so a 10,000-index Job stays a page.
const MAX_ROWS: usize = 100;

/// A termination message in a hover is cut here: the kubelet allows 4096
/// bytes, and ten thousand of them would make the page heavy.
const MESSAGE_CHARS: usize = 160;

// The plot's geometry, in SVG user units (the SVG scales to the page).
const WIDTH: f64 = 1000.0;
const GUTTER: f64 = 80.0;
const PLOT: f64 = WIDTH - GUTTER - 20.0;
const LANE: f64 = 14.0;
const LANE_GAP: f64 = 4.0;
// Room above the lanes for the deadline's and the TTL's labels, one row each.
const TOP: f64 = 38.0;

/// How a pod ended, as the timeline colours it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    /// A non-zero exit (reason Error, or a Job-level reason such as
    /// BackoffLimitExceeded for a pod ended with the Job).
    Failed,
    Oom,
    /// Ended because the Job's activeDeadlineSeconds passed.
    Deadline,
    Evicted,
    /// Not ended when the report was made.
    Unfinished,
}

impl Outcome {
    pub fn of(pod: &PodRow) -> Outcome {
        match (pod.phase, pod.reason.as_deref()) {
            (_, Some("Evicted")) => Outcome::Evicted,
            (PodPhase::Succeeded, _) => Outcome::Succeeded,
            (_, Some("OOMKilled")) => Outcome::Oom,
            (_, Some("DeadlineExceeded")) => Outcome::Deadline,
            (PodPhase::Failed, _) => Outcome::Failed,
            _ => Outcome::Unfinished,
        }
    }

    /// The `data-outcome` value and CSS class.
    pub fn key(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Oom => "oom",
            Outcome::Deadline => "deadline",
            Outcome::Evicted => "evicted",
            Outcome::Unfinished => "unfinished",
        }
    }

    fn legend(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded (exit 0)",
            Outcome::Failed => "failed (non-zero exit: Error)",
            Outcome::Oom => "OOMKilled",
            Outcome::Deadline => "stopped by activeDeadlineSeconds",
            Outcome::Evicted => "evicted",
            Outcome::Unfinished => "not ended when the report was made",
        }
    }

    const ALL: [Outcome; 6] =
        [Outcome::Succeeded, Outcome::Failed, Outcome::Oom, Outcome::Deadline, Outcome::Evicted, Outcome::Unfinished];
}

/// Writes the page for `report` to `file` when one is given (`--html`);
/// its size in bytes.
pub fn write(report: &JobReport, file: Option<&Path>, out: &Reporter) -> Result<usize> {
    let Some(file) = file else { return Ok(0) };
    let page = page(report);
    std::fs::write(file, &page).with_context(|| format!("--html {}: writing the page", file.display()))?;
    out.status(format!("wrote {} ({} KB)", file.display(), page.len().div_ceil(1024)));
    Ok(page.len())
}

/// The whole page.
pub fn page(report: &JobReport) -> String {
    let mut html = String::with_capacity(64 * 1024);
    open_page(&mut html, &format!("job.batch/{} in {}", report.name, report.namespace), CSS);
    verdict(&mut html, report);
    failure_rate(&mut html, report);
    timeline(&mut html, report);
    html.push_str(CLOSE_PAGE);
    html
}

/// What every page job-test draws shares: the type, colours kept in print,
/// the axes and the deadline's line (Okabe-Ito orange).
const BASE_CSS: &str = "
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#000;background:#fff;-webkit-print-color-adjust:exact;print-color-adjust:exact}
h1{font-size:1.3em}h2{font-size:1.1em}
svg.plot{display:block}text{font:11px system-ui,sans-serif}line.axis{stroke:#000}
line.deadline{stroke:#E69F00;stroke-width:2;stroke-dasharray:6 3}
";

/// Starts a page titled `title` in `html`, with the shared style and the
/// page's own `css` after it; `CLOSE_PAGE` ends it.
pub(crate) fn open_page(html: &mut String, title: &str, css: &str) {
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{t}</title>\n\
         <style>{BASE_CSS}{css}</style>\n</head>\n<body>\n<h1>{t}</h1>\n",
        t = esc(title)
    );
}

pub(crate) const CLOSE_PAGE: &str = "</body>\n</html>\n";

fn verdict(html: &mut String, r: &JobReport) {
    let result = match r.result {
        JobResult::Complete => "Complete",
        JobResult::Failed => "Failed",
    };
    let _ = write!(
        html,
        "<section class=\"verdict\">\n<p class=\"result {}\">{result}{}{}</p>\n<ul class=\"counts\">\n\
         <li>succeeded {} of {} completions</li>\n<li>failed pods {}</li>\n<li>pods {}</li>\n",
        result.to_lowercase(),
        if r.reason.is_empty() { String::new() } else { format!(": {}", esc(&r.reason)) },
        if r.message.is_empty() {
            String::new()
        } else {
            format!(" <span class=\"message\">({})</span>", esc(&r.message))
        },
        r.succeeded,
        r.completions,
        r.failed_pods,
        r.pods.len(),
    );
    if let Some(s) = r.seconds {
        let _ = writeln!(html, "<li>took {}</li>", super::human_seconds(s));
    }
    if let (Some(c), Some(f)) = (&r.completed_indexes, &r.failed_indexes) {
        let _ = writeln!(html, "<li>completed indexes {}; failed indexes {}</li>", or_none(c), or_none(f));
    }
    html.push_str("</ul>\n");
    if !r.conditions.is_empty() {
        html.push_str("<table class=\"conditions\">\n<tr><th>condition</th><th>status</th><th>reason</th><th>at</th><th>message</th></tr>\n");
        for c in &r.conditions {
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&c.kind),
                esc(&c.status),
                esc(&c.reason),
                c.at.map_or("-".into(), seconds),
                esc(&c.message)
            );
        }
        html.push_str("</table>\n");
        let _ = writeln!(html, "<p class=\"sequence\">in order: {}</p>", esc(&condition_sequence(&r.conditions)));
    }
    html.push_str("</section>\n");
}

fn or_none(s: &str) -> String {
    if s.is_empty() { "none".into() } else { esc(s) }
}

fn failure_rate(html: &mut String, r: &JobReport) {
    html.push_str("<section class=\"rate\">\n");
    let Some((rate, (low, high))) = r.observed_failure_rate() else {
        html.push_str("<p>No run ended, so there is no observed failure rate.</p>\n</section>\n");
        return;
    };
    let _ = write!(
        html,
        "<p>observed failure rate <b>{} of {} runs = {}</b> (failed pods and container restarts are failed runs); \
         95% interval {}–{} (Clopper-Pearson, exact binomial)",
        r.failed_runs,
        r.runs,
        percent(rate),
        percent(low),
        percent(high)
    );
    match r.configured_probability {
        Some(p) => {
            let (class, says) = if p < low {
                (
                    "outside",
                    "below the interval: more runs failed than that chance explains (failures other than the draw?)",
                )
            } else if p > high {
                ("outside", "above the interval: fewer runs failed than that chance explains")
            } else {
                ("inside", "inside the interval: the runs agree with it")
            };
            let _ = write!(html, "; configured FAIL_PROBABILITY {p}: <span class=\"{class}\">{says}</span>");
        }
        None => html.push_str("; the configured FAIL_PROBABILITY is not known for this Job"),
    }
    html.push_str(".</p>\n</section>\n");
}

fn percent(p: f64) -> String {
    let pct = 100.0 * p;
    if pct > 0.0 && pct < 1.0 { format!("{pct:.1}%") } else { format!("{pct:.0}%") }
}

/// A row of the timeline: its label and the pods drawn in it.
struct Row<'a> {
    label: String,
    pods: Vec<&'a PodRow>,
}

/// What the lanes are: completion indexes or parallel slots.
#[derive(Debug, PartialEq)]
enum LaneKind {
    Index,
    Slot,
}

/// One lane per completion index (Indexed), else per parallel slot: each
/// pod goes to the first lane free at its creation, so a lane shows a slot's
/// pods one after the other and the gaps between them are the back-offs.
/// Each lane is labelled with its index or slot number.
fn lanes(pods: &[&PodRow]) -> (LaneKind, Vec<(String, Vec<usize>)>) {
    let indexed = !pods.is_empty() && pods.iter().all(|p| p.index.is_some());
    let mut order: Vec<usize> = (0..pods.len()).collect();
    order.sort_by(|&a, &b| pods[a].created_at.unwrap_or(0.0).total_cmp(&pods[b].created_at.unwrap_or(0.0)));
    if indexed {
        let mut by_index: std::collections::BTreeMap<(u64, String), Vec<usize>> = Default::default();
        for i in order {
            let index = pods[i].index.clone().unwrap_or_default();
            by_index.entry((index.parse().unwrap_or(u64::MAX), index)).or_default().push(i);
        }
        return (LaneKind::Index, by_index.into_iter().map(|((_, index), members)| (index, members)).collect());
    }
    let mut lanes: Vec<(f64, Vec<usize>)> = Vec::new();
    for i in order {
        let created = pods[i].created_at.unwrap_or(0.0);
        let end = pods[i].finished_at.unwrap_or(f64::INFINITY);
        match lanes.iter_mut().find(|(free_at, _)| *free_at <= created) {
            Some(lane) => {
                lane.0 = end;
                lane.1.push(i);
            }
            None => lanes.push((end, vec![i])),
        }
    }
    (LaneKind::Slot, lanes.into_iter().enumerate().map(|(n, (_, members))| ((n + 1).to_string(), members)).collect())
}

fn timeline(html: &mut String, r: &JobReport) {
    html.push_str("<section class=\"timeline\">\n<h2>Timeline</h2>\n");
    let timed: Vec<&PodRow> = r.pods.iter().filter(|p| p.created_at.is_some()).collect();
    let untimed = r.pods.len() - timed.len();
    let times = r.times.clone().unwrap_or_default();
    let last_pod = timed.iter().filter_map(|p| p.finished_at.or(p.created_at)).fold(0.0, f64::max);
    // The Job's end: its finish time, else the last thing a pod did.
    let job_end = times.finished.unwrap_or(last_pod).max(last_pod);
    let deadline = times.started.zip(times.active_deadline_seconds).map(|(s, d)| s + d as f64);
    let ttl = times.finished.zip(times.ttl_seconds_after_finished).map(|(f, t)| f + t as f64);
    // The view is the run; a line just past it (a quarter of the run at the
    // most) widens it rather than being left out.
    let within = |t: f64| t <= job_end * 1.25 + 1.0;
    let view_end = [Some(job_end), deadline.filter(|d| within(*d)), ttl.filter(|t| within(*t))]
        .into_iter()
        .flatten()
        .fold(1.0, f64::max);
    let x = |t: f64| GUTTER + PLOT * (t / view_end).clamp(0.0, 1.0);

    let (kind, lanes) = lanes(&timed);
    let folded = timed.len() > FOLD_ABOVE;
    let shared_rows = folded && lanes.len() > MAX_ROWS;
    let rows: Vec<Row> = if folded {
        let per_row = lanes.len().div_ceil(MAX_ROWS).max(1);
        lanes
            .chunks(per_row)
            .map(|chunk| Row {
                label: if chunk.len() == 1 {
                    chunk[0].0.clone()
                } else {
                    format!("{}–{}", chunk[0].0, chunk[chunk.len() - 1].0)
                },
                pods: chunk.iter().flat_map(|(_, m)| m.iter().map(|&i| timed[i])).collect(),
            })
            .collect()
    } else {
        lanes.into_iter().map(|(label, m)| Row { label, pods: m.into_iter().map(|i| timed[i]).collect() }).collect()
    };

    let plot_height = rows.len() as f64 * (LANE + LANE_GAP);
    let height = TOP + plot_height + 30.0;
    let _ = write!(
        html,
        "<svg class=\"plot\" viewBox=\"0 0 {WIDTH} {height}\" width=\"100%\" role=\"img\" aria-label=\"pods over time\">\n{DEFS}"
    );
    axis(html, view_end, TOP + plot_height, &x);
    let _ = writeln!(
        html,
        "<text class=\"lane\" x=\"{:.0}\" y=\"{:.0}\">{}</text>",
        GUTTER - 6.0,
        TOP - 8.0,
        if kind == LaneKind::Index { "index" } else { "slot" }
    );
    for (n, row) in rows.iter().enumerate() {
        let y = TOP + n as f64 * (LANE + LANE_GAP);
        let _ = writeln!(
            html,
            "<text class=\"lane\" x=\"{:.0}\" y=\"{:.1}\">{}</text>",
            GUTTER - 6.0,
            y + LANE - 3.0,
            esc(&row.label)
        );
        if folded {
            let ok: Vec<&&PodRow> = row.pods.iter().filter(|p| folds(p)).collect();
            if !ok.is_empty() {
                let from = ok.iter().filter_map(|p| p.created_at).fold(f64::INFINITY, f64::min);
                let to = ok.iter().map(|p| p.finished_at.unwrap_or(job_end)).fold(0.0, f64::max);
                let _ = writeln!(
                    html,
                    "<rect class=\"fold\" data-count=\"{}\" x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{LANE}\"><title>{} succeeded pods, {}–{}</title></rect>",
                    ok.len(),
                    x(from),
                    (x(to) - x(from)).max(1.0),
                    ok.len(),
                    seconds(from),
                    seconds(to)
                );
            }
        }
        for pod in row.pods.iter().filter(|p| !folded || !folds(p)) {
            bar(html, pod, y, job_end, &x);
        }
    }
    let bottom = TOP + plot_height;
    let mut notes = Vec::new();
    for (class, at, what, label_y) in [
        ("deadline", deadline, "activeDeadlineSeconds", TOP - 24.0),
        ("ttl", ttl, "ttlSecondsAfterFinished deletes the Job", TOP - 10.0),
    ] {
        let Some(at) = at else { continue };
        if within(at) {
            let _ = writeln!(
                html,
                "<line class=\"{class}\" data-at=\"{at}\" x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{1}\" y2=\"{bottom:.1}\"><title>{what}: {2}</title></line>\n\
                 <text class=\"{class}-label\" x=\"{0:.1}\" y=\"{3}\" text-anchor=\"{4}\">{what} at {2}</text>",
                x(at),
                TOP - 6.0,
                seconds(at),
                label_y,
                // A label right of the middle ends at its line, so it stays on the page.
                if x(at) > GUTTER + PLOT / 2.0 { "end" } else { "start" },
            );
        } else {
            notes.push(format!("{what} at {}: beyond this view (the run ended at {})", seconds(at), seconds(job_end)));
        }
    }
    html.push_str("</svg>\n");
    legend(html, r);
    if folded {
        notes.push(format!(
            "{} pods: more than {FOLD_ABOVE}, so each row's successes are one pale green bar (hover for the count) \
             and every pod with a failed run keeps its own bar{}",
            timed.len(),
            if shared_rows { "; consecutive lanes share a row" } else { "" }
        ));
    }
    if untimed > 0 {
        notes.push(format!("{untimed} pods have no times in the report and are not drawn"));
    }
    if !notes.is_empty() {
        html.push_str("<ul class=\"notes\">\n");
        for n in notes {
            let _ = writeln!(html, "<li>{}</li>", esc(&n));
        }
        html.push_str("</ul>\n");
    }
    html.push_str("</section>\n");
}

/// Whether a folded timeline draws this pod only as part of its row's
/// successes: it succeeded at the first run. A pod with a failed run (a
/// restart) keeps its own bar, as a failed pod does.
fn folds(pod: &PodRow) -> bool {
    Outcome::of(pod) == Outcome::Succeeded && !pod.has_failed_run()
}

/// One pod: a bar from its creation to its end (the Job's end when its end
/// is unknown), restarts as marks inside it, the pod in its hover.
fn bar(html: &mut String, pod: &PodRow, y: f64, job_end: f64, x: &impl Fn(f64) -> f64) {
    let outcome = Outcome::of(pod);
    let from = pod.created_at.unwrap_or(0.0);
    let to = pod.finished_at.unwrap_or(job_end).max(from);
    let (x0, width) = (x(from), (x(to) - x(from)).max(1.5));
    let mut hover = pod.name.clone();
    if let Some(code) = pod.exit_code.or(pod.last_exit_code) {
        let _ = write!(hover, " · exit {code}");
    }
    if let Some(reason) = &pod.reason {
        let _ = write!(hover, " · {reason}");
    }
    if pod.restarts > 0 {
        let _ = write!(hover, " · restarts {}", pod.restarts);
    }
    let _ = write!(hover, " · {}–{}", seconds(from), pod.finished_at.map_or("still running".into(), seconds));
    if let Some(m) = &pod.message {
        let cut: String = m.chars().take(MESSAGE_CHARS).collect();
        let _ = write!(hover, "\n{cut}{}", if cut.len() < m.len() { "…" } else { "" });
    }
    let _ = writeln!(
        html,
        "<rect class=\"pod {0}\" data-outcome=\"{0}\" data-pod=\"{1}\" x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{width:.1}\" \
         height=\"{LANE}\"><title>{2}</title></rect>",
        outcome.key(),
        esc(&pod.name),
        esc(&hover)
    );
    // The report keeps how many times the container restarted, not when:
    // the marks are spread evenly over the bar (the legend says so).
    for n in 1..=pod.restarts.max(0) {
        let mx = x0 + width * f64::from(n) / f64::from(pod.restarts + 1);
        let _ = writeln!(
            html,
            "<line class=\"restart\" data-pod=\"{}\" x1=\"{mx:.1}\" x2=\"{mx:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/>",
            esc(&pod.name),
            y + 1.0,
            y + LANE - 1.0
        );
    }
}

/// The time axis: about eight ticks at round seconds.
fn axis(html: &mut String, view_end: f64, bottom: f64, x: &impl Fn(f64) -> f64) {
    let raw = view_end / 8.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * magnitude).find(|s| *s >= raw).unwrap_or(raw);
    let _ = writeln!(
        html,
        "<line class=\"axis\" x1=\"{GUTTER}\" x2=\"{:.1}\" y1=\"{bottom:.1}\" y2=\"{bottom:.1}\"/>",
        GUTTER + PLOT
    );
    let mut t = 0.0;
    while t <= view_end + step * 1e-9 {
        let _ = writeln!(
            html,
            "<line class=\"tick\" x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{TOP}\" y2=\"{bottom:.1}\"/><text class=\"tick\" x=\"{0:.1}\" y=\"{1:.1}\">{2}</text>",
            x(t),
            bottom + 14.0,
            seconds(t)
        );
        t += step;
    }
    let _ = writeln!(
        html,
        "<text class=\"axis-label\" x=\"{:.1}\" y=\"{:.1}\">seconds after the Job was created</text>",
        GUTTER + PLOT / 2.0,
        bottom + 28.0
    );
}

fn legend(html: &mut String, r: &JobReport) {
    html.push_str("<ul class=\"legend\">\n");
    for outcome in Outcome::ALL {
        let n = r.pods.iter().filter(|p| Outcome::of(p) == outcome).count();
        if n == 0 && matches!(outcome, Outcome::Unfinished) {
            continue;
        }
        let _ = writeln!(
            html,
            "<li><svg width=\"28\" height=\"14\" viewBox=\"0 0 28 14\"><rect class=\"pod {}\" x=\"1\" y=\"1\" width=\"26\" height=\"12\"/></svg> {} ({n})</li>",
            outcome.key(),
            outcome.legend()
        );
    }
    html.push_str(
        "<li><svg width=\"28\" height=\"14\" viewBox=\"0 0 28 14\"><rect class=\"pod succeeded\" x=\"1\" y=\"1\" width=\"26\" height=\"12\"/>\
         <line class=\"restart\" x1=\"14\" x2=\"14\" y1=\"2\" y2=\"12\"/></svg> a container restart (OnFailure): the report \
         counts restarts but keeps no times for them, so the marks are spaced evenly</li>\n\
         <li>gaps in a lane: the wait before a failed pod's replacement (the Job controller's back-off)</li>\n\
         <li><svg width=\"28\" height=\"14\" viewBox=\"0 0 28 14\"><line class=\"deadline\" x1=\"14\" x2=\"14\" y1=\"0\" y2=\"14\"/></svg> \
         activeDeadlineSeconds after the Job started; \
         <svg width=\"28\" height=\"14\" viewBox=\"0 0 28 14\"><line class=\"ttl\" x1=\"14\" x2=\"14\" y1=\"0\" y2=\"14\"/></svg> \
         when ttlSecondsAfterFinished deletes the Job</li>\n</ul>\n",
    );
}

/// `12.3 s`, `42 s`, `3630 s`.
fn seconds(s: f64) -> String {
    if s < 100.0 && s.fract() != 0.0 { format!("{s:.1} s") } else { format!("{s:.0} s") }
}

/// Text for HTML: element content and quoted attribute values alike.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

// Okabe and Ito's palette, told apart with the common colour-vision
// deficiencies; every failure also has a pattern and a dark outline, so
// succeeded and failed differ in greyscale print too.
const CSS: &str = "
.result{font-size:1.2em;font-weight:bold}.result.failed{color:#D55E00}.result.complete{color:#009E73}
table.conditions{border-collapse:collapse}table.conditions td,table.conditions th{border:1px solid #999;padding:2px 6px;text-align:left}
.outside{font-weight:bold}
svg.plot{max-width:1200px}
text.lane{text-anchor:end}text.tick,text.axis-label{text-anchor:middle}
line.tick{stroke:#ddd}
rect.pod{stroke:#000;stroke-width:1}
rect.succeeded{fill:#009E73;stroke:none}
rect.failed{fill:url(#p-failed)}rect.oom{fill:url(#p-oom)}rect.deadline{fill:url(#p-deadline)}
rect.evicted{fill:url(#p-evicted)}rect.unfinished{fill:#fff;stroke-dasharray:3 2}
rect.fold{fill:#009E73;fill-opacity:.45}
line.restart{stroke:#000;stroke-width:2}
line.ttl{stroke:#0072B2;stroke-width:2;stroke-dasharray:2 2}
ul.legend{list-style:none;padding:0}ul.legend li{margin:2px 0}ul.legend svg{vertical-align:middle}
";

// The patterns behind the failures' fills: a colour and a texture each.
const DEFS: &str = "<defs>
<pattern id=\"p-failed\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"#D55E00\"/><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#000\" stroke-width=\"2\"/></pattern>
<pattern id=\"p-oom\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\"><rect width=\"6\" height=\"6\" fill=\"#CC79A7\"/><path d=\"M0 0L6 6M6 0L0 6\" stroke=\"#000\" stroke-width=\"1\"/></pattern>
<pattern id=\"p-deadline\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\"><rect width=\"6\" height=\"6\" fill=\"#E69F00\"/><circle cx=\"3\" cy=\"3\" r=\"1.2\" fill=\"#000\"/></pattern>
<pattern id=\"p-evicted\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\"><rect width=\"6\" height=\"6\" fill=\"#56B4E9\"/><line x1=\"0\" y1=\"3\" x2=\"6\" y2=\"3\" stroke=\"#000\" stroke-width=\"1.5\"/></pattern>
</defs>
";

#[cfg(test)]
mod tests {
    use super::*;

    fn succeeded(name: &str, from: f64, to: f64) -> PodRow {
        PodRow {
            name: name.into(),
            phase: PodPhase::Succeeded,
            index: None,
            exit_code: Some(0),
            reason: None,
            message: None,
            restarts: 0,
            seconds: None,
            last_exit_code: None,
            created_at: Some(from),
            finished_at: Some(to),
        }
    }

    #[test]
    fn nonindexed_pods_take_the_first_free_slot() {
        let pod = succeeded;
        let pods = [pod("a", 0.0, 5.0), pod("b", 0.0, 2.0), pod("c", 3.0, 4.0), pod("d", 4.5, 6.0)];
        let refs: Vec<&PodRow> = pods.iter().collect();
        let (kind, lanes) = lanes(&refs);
        assert_eq!(kind, LaneKind::Slot);
        let lanes: Vec<Vec<&str>> =
            lanes.into_iter().map(|(_, m)| m.into_iter().map(|i| pods[i].name.as_str()).collect()).collect();
        // c goes where b ended; d waits for neither (c ended at 4).
        assert_eq!(lanes, [vec!["a"], vec!["b", "c", "d"]]);
    }

    #[test]
    fn indexed_pods_take_their_index_in_numeric_order() {
        let mut pods = [succeeded("x", 0.0, 1.0), succeeded("y", 0.0, 1.0), succeeded("z", 2.0, 3.0)];
        for (pod, index) in pods.iter_mut().zip(["10", "2", "2"]) {
            pod.index = Some(index.into());
        }
        let refs: Vec<&PodRow> = pods.iter().collect();
        let (kind, lanes) = lanes(&refs);
        assert_eq!(kind, LaneKind::Index);
        assert_eq!(lanes, [("2".to_owned(), vec![1, 2]), ("10".to_owned(), vec![0])]);
    }

    #[test]
    fn a_folded_timeline_keeps_the_bar_of_a_pod_that_restarted() {
        let mut pods: Vec<PodRow> =
            (0..=FOLD_ABOVE).map(|n| succeeded(&format!("ok-{n}"), n as f64, n as f64 + 1.0)).collect();
        pods[7].restarts = 1;
        let n = pods.len() as i32;
        let report = JobReport {
            name: "big".into(),
            result: JobResult::Complete,
            reason: String::new(),
            succeeded: n,
            completions: n,
            failed_pods: 0,
            runs: n + 1,
            failed_runs: 1,
            conditions: vec![],
            ..crate::report::job::tests::report(pods)
        };
        let page = page(&report);
        assert_eq!(page.matches("data-pod=\"").count(), 2, "the restarted pod's bar and its one restart mark");
        assert!(page.contains("data-pod=\"ok-7\""));
        assert!(page.contains(&format!("<rect class=\"fold\" data-count=\"{FOLD_ABOVE}\"")));
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(esc("<b a=\"x\">&'"), "&lt;b a=&quot;x&quot;&gt;&amp;&#39;");
    }
}
