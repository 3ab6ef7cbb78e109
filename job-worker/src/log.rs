//! Event lines on stdout: one line per event, as `key=value` text or as a JSON
//! object, each with a UTC timestamp and the event name.
//!
//! Written by hand rather than with serde: the worker ships as one small
//! static file, and these few shapes are all it prints.

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::LogFormat;

/// A field value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
    /// A nested object: flattened as `key.sub=value` in plain text.
    Object(Vec<(&'static str, Value)>),
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_owned())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}
impl From<u32> for Value {
    fn from(n: u32) -> Self {
        Value::Int(n.into())
    }
}
impl From<u8> for Value {
    fn from(n: u8) -> Self {
        Value::Int(n.into())
    }
}
impl From<i32> for Value {
    fn from(n: i32) -> Self {
        Value::Int(n.into())
    }
}
impl From<u64> for Value {
    fn from(n: u64) -> Self {
        i64::try_from(n).map_or_else(|_| Value::Str(n.to_string()), Value::Int)
    }
}
impl From<f64> for Value {
    fn from(n: f64) -> Self {
        Value::Float(n)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

pub type Fields = Vec<(&'static str, Value)>;

#[derive(Clone, Copy, Debug)]
pub struct Logger {
    pub format: LogFormat,
}

impl Logger {
    /// Prints one event line. A closed stdout is not a reason to change the
    /// outcome of the run, so write errors are ignored.
    pub fn event(&self, event: &str, fields: Fields) {
        let line = self.render(&timestamp(SystemTime::now()), event, &fields);
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(line.as_bytes());
        let _ = out.flush();
    }

    pub fn render(&self, ts: &str, event: &str, fields: &[(&'static str, Value)]) -> String {
        let mut line = String::new();
        match self.format {
            LogFormat::Plain => {
                let _ = write!(line, "{ts} {event}");
                plain_fields(&mut line, "", fields);
            }
            LogFormat::Json => {
                line.push_str("{\"ts\":");
                json_str(&mut line, ts);
                line.push_str(",\"event\":");
                json_str(&mut line, event);
                for (k, v) in fields {
                    line.push(',');
                    json_str(&mut line, k);
                    line.push(':');
                    json_value(&mut line, v);
                }
                line.push('}');
            }
        }
        line.push('\n');
        line
    }
}

fn plain_fields(line: &mut String, prefix: &str, fields: &[(&'static str, Value)]) {
    for (k, v) in fields {
        match v {
            Value::Object(inner) => plain_fields(line, &format!("{prefix}{k}."), inner),
            _ => {
                let _ = write!(line, " {prefix}{k}=");
                plain_value(line, v);
            }
        }
    }
}

fn plain_value(line: &mut String, v: &Value) {
    match v {
        Value::Str(s) if s.is_empty() || s.contains([' ', '"', '=', '\n', '\\']) => {
            // Quoted like a JSON string, so the line stays one line.
            json_str(line, s)
        }
        Value::Str(s) => line.push_str(s),
        Value::Null => line.push_str("none"),
        other => json_value(line, other),
    }
}

fn json_value(line: &mut String, v: &Value) {
    match v {
        Value::Str(s) => json_str(line, s),
        Value::Int(n) => {
            let _ = write!(line, "{n}");
        }
        // Finite by construction (probabilities and draws); Rust's shortest
        // round-trip formatting is valid JSON for finite values.
        Value::Float(x) if x.is_finite() => {
            let _ = write!(line, "{x}");
        }
        Value::Float(_) | Value::Null => line.push_str("null"),
        Value::Bool(b) => {
            let _ = write!(line, "{b}");
        }
        Value::Object(fields) => {
            line.push('{');
            for (i, (k, v)) in fields.iter().enumerate() {
                if i > 0 {
                    line.push(',');
                }
                json_str(line, k);
                line.push(':');
                json_value(line, v);
            }
            line.push('}');
        }
    }
}

fn json_str(line: &mut String, s: &str) {
    line.push('"');
    for c in s.chars() {
        match c {
            '"' => line.push_str("\\\""),
            '\\' => line.push_str("\\\\"),
            '\n' => line.push_str("\\n"),
            '\r' => line.push_str("\\r"),
            '\t' => line.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(line, "\\u{:04x}", c as u32);
            }
            c => line.push(c),
        }
    }
    line.push('"');
}

/// RFC 3339 in UTC with milliseconds, e.g. `2026-11-26T22:30:00.123Z`.
pub fn timestamp(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        // 2024-02-29 (a leap day) 12:34:56.789
        let t = UNIX_EPOCH + Duration::from_millis(1_709_210_096_789);
        assert_eq!(timestamp(t), "2024-02-29T12:34:56.789Z");
        let t = UNIX_EPOCH + Duration::from_secs(4_102_444_799);
        assert_eq!(timestamp(t), "2099-12-31T23:59:59.000Z");
    }

    #[test]
    fn plain_lines_quote_what_needs_quoting() {
        let log = Logger { format: LogFormat::Plain };
        let line = log.render(
            "T",
            "outcome",
            &[
                ("result", "failure".into()),
                ("message", "two words".into()),
                ("draw", 0.125.into()),
                ("index", Value::Null),
                ("sources", Value::Object(vec![("seed", "WORKER_SEED".into())])),
            ],
        );
        assert_eq!(
            line,
            "T outcome result=failure message=\"two words\" draw=0.125 index=none sources.seed=WORKER_SEED\n"
        );
    }

    #[test]
    fn json_lines_parse_and_escape() {
        let log = Logger { format: LogFormat::Json };
        let line = log.render(
            "T",
            "start",
            &[
                ("pod", "a\"b\\c\nd\u{1}".into()),
                ("p", 1.0.into()),
                ("big", u64::MAX.into()),
                ("ok", true.into()),
                ("nested", Value::Object(vec![("x", 3u32.into())])),
            ],
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["ts"], "T");
        assert_eq!(v["event"], "start");
        assert_eq!(v["pod"], "a\"b\\c\nd\u{1}");
        assert_eq!(v["p"], 1.0);
        assert_eq!(v["big"], "18446744073709551615");
        assert_eq!(v["ok"], true);
        assert_eq!(v["nested"]["x"], 3);
    }
}
