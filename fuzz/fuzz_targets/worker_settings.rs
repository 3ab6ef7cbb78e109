//! The worker's settings as a container gets them: flags and environment
//! variables (FAILURE_PROBABILITY, FAIL_INDEXES lists, durations, ...).
//! Input: one argument per line; after a line `--env`, the environment as
//! `KEY=VALUE` lines.
//!
//! Checked: parsing never panics; every refusal names what it refused.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let lines: Vec<&str> = text.lines().collect();
    let (args, env) = lines.split_at(lines.iter().position(|l| *l == "--env").unwrap_or(lines.len()));
    let env: Vec<(&str, &str)> = env.iter().skip(1).filter_map(|l| l.split_once('=')).collect();
    let lookup = |name: &str| env.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).into());
    if let Err(errors) = job_worker::config::parse(args.iter().copied(), lookup) {
        assert!(!errors.to_string().trim().is_empty(), "a refusal that says nothing");
    }
});
