//! The settings file (job-test.toml), checked against every flag.
//!
//! Checked: never panics; every refusal names the file.
#![no_main]

use std::sync::LazyLock;

use clap::CommandFactory;
use libfuzzer_sys::fuzz_target;
use xtask::config::{Chosen, Key};

/// Built once: building the command takes longer than reading a file.
static COMMAND: LazyLock<(clap::Command, Vec<Key>)> = LazyLock::new(|| {
    let mut cmd = xtask::flags::Xtask::command();
    cmd.build();
    let keys = xtask::config::keys(&cmd);
    (cmd, keys)
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (cmd, keys) = &*COMMAND;
    let path = std::path::PathBuf::from("/fuzz/job-test.toml");
    if let Err(e) = xtask::config::parse(cmd, keys, text, path, Chosen::Flag) {
        assert!(e.to_string().starts_with("/fuzz/job-test.toml: "), "{e}");
    }
});
