//! `odds --html FILE`: the odds as a picture, one self-contained page like
//! the run's (`report::html`): the exact chance to complete for each
//! backoffLimit (or backoffLimitPerIndex) around the one given, and the
//! simulated distributions of the pods a Job takes and of its wall time,
//! with the deadline's line. Inline SVG, no script, nothing fetched.

use std::fmt::Write as _;

use super::simulate::{End, Trial};
use super::target::{self, Knob};
use super::{Model, Odds, percent};
use crate::report::html::{CLOSE_PAGE, open_page};
use crate::report::human_seconds;

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 60.0;
const BOTTOM: f64 = 40.0;
/// Bars in the chance chart at the most, and bins of a histogram.
const MAX_LIMITS: u32 = 31;
const BINS: usize = 30;

/// The page's own style, after the shared one (`report::html::open_page`).
const CSS: &str = "
svg.plot{max-width:1000px}text.tick{text-anchor:middle}
rect.limit{fill:#56B4E9;stroke:#000;stroke-width:.5}rect.limit.current{fill:#0072B2;stroke-width:2}
rect.bin{fill:#009E73;stroke:#000;stroke-width:.5}rect.bin.failed{fill:#D55E00}
";

/// The limits drawn and the one given.
struct Limits {
    knob: Knob,
    current: u32,
    /// Each limit with its exact chance to complete.
    chances: Vec<(u32, f64)>,
}

/// The limits drawn: a window around the one given (all from 0 when it
/// is small), with each one's exact chance; None without a closed form.
fn chances(m: &Model) -> Option<Limits> {
    let knob = target::knob_of(m);
    let current = match knob {
        Knob::BackoffLimit => m.backoff_limit?,
        Knob::BackoffLimitPerIndex => m.backoff_limit_per_index?,
    };
    let first = current.saturating_sub(MAX_LIMITS / 2);
    let limits: Option<Vec<(u32, f64)>> =
        (first..first + MAX_LIMITS).map(|l| target::chance(m, knob, l).ok().map(|p| (l, p))).collect();
    Some(Limits { knob, current, chances: limits? })
}

/// The whole page.
pub fn page(m: &Model, o: &Odds, trials: &[Trial]) -> String {
    let mut html = String::with_capacity(32 * 1024);
    open_page(&mut html, &format!("odds of job.batch/{}", m.name), CSS);
    let _ = writeln!(
        html,
        "<p>{} completions, parallelism {}, fails with probability {}; completes with probability {}</p>",
        m.completions,
        m.parallelism,
        m.fail_probability,
        match &o.exact {
            Some(e) => format!("{} (exact)", percent(e.p_complete)),
            None => format!("{} (simulated)", percent(o.simulated.p_complete)),
        },
    );
    match chances(m) {
        Some(l) => chance_chart(&mut html, l.knob, l.current, &l.chances),
        None => html.push_str("<p>No closed form for these settings: the chance by limit is not drawn.</p>\n"),
    }
    let pods: Vec<(f64, bool)> = trials.iter().map(|t| (f64::from(t.pods), t.end != End::Complete)).collect();
    histogram(&mut html, "Pods a Job takes", "pods", &pods, None);
    let seconds: Vec<(f64, bool)> = trials.iter().map(|t| (t.seconds, t.end != End::Complete)).collect();
    histogram(&mut html, "Wall time", "seconds", &seconds, Some(m.deadline.as_secs_f64()));
    let _ = writeln!(
        html,
        "<p>From {} simulated Jobs: green bars are Jobs that completed, vermilion ones Jobs that did not.</p>",
        trials.len()
    );
    html.push_str(CLOSE_PAGE);
    html
}

fn chance_chart(html: &mut String, knob: Knob, current: u32, limits: &[(u32, f64)]) {
    let _ = write!(
        html,
        "<h2>Chance to complete by {}</h2>\n<svg class=\"plot chance\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" \
         xmlns=\"http://www.w3.org/2000/svg\" role=\"img\">\n",
        knob.flag()
    );
    let plot = HEIGHT - BOTTOM - 20.0;
    let step = (WIDTH - LEFT - 10.0) / limits.len() as f64;
    for (i, (limit, p)) in limits.iter().enumerate() {
        let (x, h) = (LEFT + i as f64 * step, plot * p);
        let class = if *limit == current { "limit current" } else { "limit" };
        let _ = write!(
            html,
            "<rect class=\"{class}\" data-limit=\"{limit}\" data-chance=\"{p}\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" \
             height=\"{h:.1}\"><title>{} {limit}: completes with probability {}</title></rect>\n\
             <text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\">{limit}</text>\n",
            20.0 + plot - h,
            step * 0.8,
            knob.flag(),
            percent(*p),
            x + step * 0.4,
            HEIGHT - BOTTOM + 14.0,
        );
    }
    let _ = write!(
        html,
        "<text x=\"{:.1}\" y=\"24\">100%</text>\n<text x=\"{:.1}\" y=\"{:.1}\">0%</text>\n",
        LEFT - 40.0,
        LEFT - 30.0,
        20.0 + plot
    );
    axis(html, plot);
    html.push_str("</svg>\n");
}

/// A histogram of `values` (each with whether its Job failed), with a line
/// at `mark` (the deadline) when it falls in view.
fn histogram(html: &mut String, heading: &str, unit: &str, values: &[(f64, bool)], mark: Option<f64>) {
    let _ = write!(
        html,
        "<h2>{heading}</h2>\n<svg class=\"plot {unit}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" \
         xmlns=\"http://www.w3.org/2000/svg\" role=\"img\">\n"
    );
    // The deadline is drawn when it is near the values (within half as much again).
    let largest = values.iter().map(|v| v.0).fold(0.0, f64::max);
    let max = match mark {
        Some(d) if d <= largest * 1.5 => largest.max(d),
        _ => largest,
    };
    let width = (max / BINS as f64).max(1.0);
    // As many bins as the values need (pods are whole numbers: one per value).
    let count = ((max / width).floor() as usize + 1).min(BINS + 1);
    let mut bins = vec![(0usize, 0usize); count];
    for (v, failed) in values {
        let b = ((v / width) as usize).min(count - 1);
        if *failed { bins[b].1 += 1 } else { bins[b].0 += 1 }
    }
    let tallest = bins.iter().map(|(a, b)| a + b).max().unwrap_or(1).max(1) as f64;
    let plot = HEIGHT - BOTTOM - 20.0;
    let step = (WIDTH - LEFT - 10.0) / count as f64;
    let x_of = |v: f64| LEFT + v / width * step;
    for (i, (ok, failed)) in bins.iter().enumerate() {
        let x = LEFT + i as f64 * step;
        let from = i as f64 * width;
        let mut y = 20.0 + plot;
        for (n, class) in [(ok, "bin"), (failed, "bin failed")] {
            if *n == 0 {
                continue;
            }
            let h = plot * *n as f64 / tallest;
            y -= h;
            let _ = writeln!(
                html,
                "<rect class=\"{class}\" data-from=\"{from}\" data-count=\"{n}\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" \
                 height=\"{h:.1}\"><title>{} to {} {unit}: {n} Jobs</title></rect>",
                step * 0.9,
                fmt_unit(from, unit),
                fmt_unit(from + width, unit),
            );
        }
        if i % count.div_ceil(10) == 0 {
            let _ = writeln!(
                html,
                "<text class=\"tick\" x=\"{x:.1}\" y=\"{:.1}\">{}</text>",
                HEIGHT - BOTTOM + 14.0,
                fmt_unit(from, unit)
            );
        }
    }
    if let Some(d) = mark.filter(|d| *d <= max) {
        let x = x_of(d);
        let _ = write!(
            html,
            "<line class=\"deadline\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"10\" y2=\"{:.1}\"><title>activeDeadlineSeconds \
             {}</title></line>\n<text x=\"{:.1}\" y=\"10\">deadline {}</text>\n",
            20.0 + plot,
            d,
            x + 4.0,
            human_seconds(d)
        );
    }
    axis(html, plot);
    html.push_str("</svg>\n");
    if let Some(d) = mark.filter(|d| *d > max) {
        let _ = writeln!(
            html,
            "<p class=\"beyond\">activeDeadlineSeconds ({}) is beyond the longest simulated Job ({}): no Job met it.</p>",
            human_seconds(d),
            human_seconds(largest)
        );
    }
}

fn fmt_unit(v: f64, unit: &str) -> String {
    if unit == "seconds" { human_seconds(v) } else { format!("{v:.0}") }
}

fn axis(html: &mut String, plot: f64) {
    let _ = writeln!(
        html,
        "<line class=\"axis\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{:.1}\" y2=\"{:.1}\"/>",
        WIDTH - 10.0,
        20.0 + plot,
        20.0 + plot
    );
}
