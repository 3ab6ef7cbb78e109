//! `cargo xtask completions SHELL`: the shell completion script, made by
//! clap_complete from the same clap `Command` that parses the flags, so it
//! cannot fall behind them.
//!
//! The script completes a command named `xtask`. A completion script
//! cannot name `cargo xtask` (two words; cargo's own completion owns
//! `cargo`), so docs/settings.md (Shell completions) has the user define
//! `xtask` as a shell function that runs `cargo xtask`, which each shell
//! then completes.

use std::fmt;

use anyhow::Result;
use clap::CommandFactory;
use serde::Serialize;

use crate::flags::{CompletionsFlags, Xtask};
use crate::report::Reporter;

/// The command name the scripts complete.
pub const COMMAND: &str = "xtask";

/// A completion script: the script itself as text, with its shell in JSON.
#[derive(Debug, Serialize)]
pub struct Script {
    pub shell: String,
    pub command: &'static str,
    pub script: String,
}

impl fmt::Display for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.script.trim_end())
    }
}

/// The script for `shell`.
pub fn script(shell: clap_complete::Shell) -> Script {
    let mut bytes = Vec::new();
    clap_complete::generate(shell, &mut Xtask::command(), COMMAND, &mut bytes);
    Script { shell: shell.to_string(), command: COMMAND, script: String::from_utf8_lossy(&bytes).into_owned() }
}

pub fn run(flags: &CompletionsFlags, out: &Reporter) -> Result<()> {
    out.result(&script(flags.shell));
    Ok(())
}
