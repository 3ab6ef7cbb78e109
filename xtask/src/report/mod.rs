//! How results reach the user: progress and warnings on stderr, the result on
//! stdout as text or as one JSON object (`--output json`). Colour only on a
//! terminal and never when NO_COLOR is set (https://no-color.org).
//!
//! A result is one value that is both `Display` (the text) and `Serialize`
//! (the JSON), so the two cannot drift apart. `job` holds the Job report
//! model that a watched cluster Job fills; `pod_table` shows its rows live
//! while the Job runs; `html` draws it as a page.

pub mod files;
pub mod html;
pub mod job;
pub mod pod_table;

use std::fmt::Display;
use std::io::{IsTerminal, Write};

use serde::Serialize;

use crate::choices::Output;

/// Whether to colour what goes to `stream`: a terminal, and NO_COLOR unset
/// or empty (no-color.org).
pub fn color_on(stream: &impl IsTerminal) -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color && stream.is_terminal()
}

#[derive(Debug, Clone, Copy)]
pub struct Reporter {
    pub output: Output,
    color: bool,
    /// Says nothing on stderr: for work that runs many Jobs side by side
    /// (`conformance`) and reports each by its result instead.
    pub quiet: bool,
    /// Says the detail (`--verbose`): what a tool under us printed, which
    /// progress leaves out by default, as cargo and ko do.
    pub verbose: bool,
}

impl Reporter {
    pub fn new(output: Output) -> Reporter {
        Reporter { output, color: color_on(&std::io::stderr()), quiet: false, verbose: false }
    }

    /// The same reporter, saying the detail too when `on`.
    pub fn verbose(self, on: bool) -> Reporter {
        Reporter { verbose: on, ..self }
    }

    /// A progress line shown only with `--verbose`.
    pub fn detail(&self, message: impl Display) {
        if self.verbose {
            self.status(message);
        }
    }

    /// The same reporter, with nothing said on stderr.
    pub fn quiet(self) -> Reporter {
        Reporter { quiet: true, ..self }
    }

    /// A progress line on stderr, for people; scripts read stdout.
    pub fn status(&self, message: impl Display) {
        if !self.quiet {
            eprintln!("{}", self.paint("1", &message.to_string()));
        }
    }

    /// A warning on stderr: shown in both output modes.
    pub fn warn(&self, message: impl Display) {
        if !self.quiet {
            eprintln!("{} {message}", self.paint("33", "warning:"));
        }
    }

    /// The result: its text for people, its JSON (one object, one line) for
    /// scripts.
    pub fn result<T: Display + Serialize>(&self, value: &T) {
        let mut stdout = std::io::stdout().lock();
        let _ = match self.output {
            Output::Text => writeln!(stdout, "{value}"),
            Output::Json => match serde_json::to_string(value) {
                Ok(json) => writeln!(stdout, "{json}"),
                Err(e) => writeln!(stdout, "{}", serde_json::json!({ "error": e.to_string() })),
            },
        };
    }

    /// A progress line: redrawn in place on a terminal; elsewhere only the
    /// finished line is printed, so logs get one line per item.
    pub fn progress(&self, line: &str, finished: bool) {
        if self.quiet {
        } else if std::io::stderr().is_terminal() {
            eprint!("\r\x1b[2K{line}{}", if finished { "\n" } else { "" });
        } else if finished {
            eprintln!("{line}");
        }
    }

    fn paint(&self, sgr: &str, text: &str) -> String {
        if self.color { format!("\x1b[{sgr}m{text}\x1b[0m") } else { text.to_owned() }
    }
}

/// Seconds as people read them: `42s`, `3m 5s`.
pub fn human_seconds(s: f64) -> String {
    humantime::format_duration(std::time::Duration::from_secs(s.round() as u64)).to_string()
}
