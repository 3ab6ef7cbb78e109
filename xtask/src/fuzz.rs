//! `cargo xtask fuzz`: builds the fuzz targets in fuzz/ and runs them on
//! their checked-in corpus (fuzz/corpus/TARGET/). The targets are cargo-fuzz
//! targets (libfuzzer-sys); they are built here as cargo-fuzz builds them
//! with `--sanitizer none` (LLVM's SanitizerCoverage, `--cfg fuzzing`, for
//! the host triple only so that build scripts and proc macros stay plain),
//! which the stable toolchain can do: nothing to install but the crates.
//! `cargo xtask test` runs every target briefly (`smoke`: a fixed number of
//! inputs from a fixed seed), new inputs kept apart, so the checked-in
//! corpus only grows when someone fuzzes on purpose.

use std::fmt;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::ValueEnum;
use serde::Serialize;
use xshell::{Shell, cmd};

use crate::choices::FuzzTarget;
use crate::flags::FuzzFlags;
use crate::report::Reporter;
use crate::{Error, ErrorKind, project_root};

/// How many inputs `cargo xtask test` tries on each target, with a fixed
/// seed: the same corpus and code give the same run, so a finding there is
/// reproducible, never luck. About a minute for all the targets here.
pub const SMOKE_RUNS: u64 = 100_000;
const SMOKE_SEED: u64 = 1;

/// The instrumentation cargo-fuzz gives a libFuzzer target.
const RUSTFLAGS: &str = "-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
                         -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
                         -Cllvm-args=-sanitizer-coverage-pc-table -Cllvm-args=-sanitizer-coverage-trace-compares \
                         --cfg fuzzing";

pub fn run(flags: &FuzzFlags, out: &Reporter) -> Result<()> {
    let targets = match flags.target {
        Some(target) => vec![target],
        None => FuzzTarget::value_variants().to_vec(),
    };
    let bin = build(out)?;
    let mut report = FuzzReport { runs: Vec::new() };
    for target in targets {
        let corpus = corpus_dir(target);
        std::fs::create_dir_all(&corpus).with_context(|| format!("creating {}", corpus.display()))?;
        let limit = format!("-max_total_time={}", flags.time.as_secs().max(1));
        let run = fuzz(&bin, target, std::slice::from_ref(&corpus), &[limit], out)?;
        out.status(run.to_string());
        let (before, after) = minimize(&bin.join(target.name()), &corpus)?;
        out.status(format!("fuzz {}: corpus minimized from {before} to {after} inputs", target.name()));
        report.runs.push(run);
    }
    out.result(&report);
    Ok(())
}

/// Every target for `SMOKE_RUNS` inputs, new inputs kept apart from the corpus.
pub fn smoke(out: &Reporter) -> Result<FuzzReport> {
    let bin = build(out)?;
    let mut report = FuzzReport { runs: Vec::new() };
    for &target in FuzzTarget::value_variants() {
        let scratch = crate::target_dir().join("fuzz/scratch").join(target.name());
        let _ = std::fs::remove_dir_all(&scratch);
        std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
        let limits = [format!("-runs={SMOKE_RUNS}"), format!("-seed={SMOKE_SEED}")];
        let run = fuzz(&bin, target, &[scratch.clone(), corpus_dir(target)], &limits, out)?;
        let _ = std::fs::remove_dir_all(&scratch);
        out.status(run.to_string());
        report.runs.push(run);
    }
    Ok(report)
}

/// Keeps the fewest inputs of a corpus that reach all it reaches
/// (libFuzzer's `-merge=1`, as `cargo fuzz cmin` does), so that the
/// checked-in corpus stays small; inputs with names of their own (the
/// seeds, the regressions) always stay. Returns the counts before and after.
fn minimize(program: &Path, corpus: &Path) -> Result<(usize, usize)> {
    let merged = crate::target_dir().join("fuzz/merged").join(corpus.file_name().expect("a corpus folder"));
    let _ = std::fs::remove_dir_all(&merged);
    std::fs::create_dir_all(&merged).with_context(|| format!("creating {}", merged.display()))?;
    let status = Command::new(program)
        .arg("-merge=1")
        .args([&merged, corpus])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .with_context(|| format!("running {} -merge=1", program.display()))?;
    anyhow::ensure!(status.success(), "{} -merge=1 failed ({status})", program.display());
    let before = inputs(corpus);
    // libFuzzer names what it keeps by the content's SHA-1; the seeds and
    // regressions, named by people, always stay.
    let kept: std::collections::HashSet<Vec<u8>> =
        std::fs::read_dir(&merged)?.flatten().filter_map(|e| std::fs::read(e.path()).ok()).collect();
    for entry in std::fs::read_dir(corpus)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let found = name.len() == 40 && name.bytes().all(|b| b.is_ascii_hexdigit());
        if found && !std::fs::read(entry.path()).is_ok_and(|c| kept.contains(&c)) {
            std::fs::remove_file(entry.path()).with_context(|| format!("removing {}", entry.path().display()))?;
        }
    }
    let _ = std::fs::remove_dir_all(&merged);
    Ok((before, inputs(corpus)))
}

/// How many inputs a corpus folder holds (none when it is missing).
fn inputs(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

/// The checked-in corpus of a target.
pub fn corpus_dir(target: FuzzTarget) -> PathBuf {
    project_root().join("fuzz/corpus").join(target.name())
}

/// Builds every target; returns the folder holding their binaries.
fn build(out: &Reporter) -> Result<PathBuf> {
    crate::debian::CXX.ensure(false, out)?;
    let sh = Shell::new()?;
    let host = host_triple(&sh)?;
    let target_dir = crate::target_dir().join("fuzz");
    let manifest = project_root().join("fuzz/Cargo.toml");
    out.status("building the fuzz targets (instrumented; the first build takes some minutes)");
    crate::build::cargo_cmd(&sh)
        .args(["build", "--quiet", "--manifest-path"])
        .arg(&manifest)
        .args(["--profile", "fuzz", "--locked", "--target", &host, "--bins"])
        .env("RUSTFLAGS", RUSTFLAGS)
        .env("CARGO_TARGET_DIR", &target_dir)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .run()
        .context("building the fuzz targets in fuzz/")?;
    Ok(target_dir.join(host).join("fuzz"))
}

fn host_triple(sh: &Shell) -> Result<String> {
    let version = cmd!(sh, "rustc -vV").quiet().read().context("asking rustc for the host triple")?;
    version.lines().find_map(|l| l.strip_prefix("host: ")).map(str::to_owned).context("rustc -vV printed no host line")
}

/// What one target's run did.
#[derive(Debug, Serialize)]
pub struct TargetRun {
    pub target: String,
    /// Inputs tried, the corpus's replay included.
    pub executions: u64,
    pub seconds: f64,
    /// Inputs in the corpus folders when the run began.
    pub corpus: usize,
    /// Inputs that reached new code, added to the first corpus folder.
    pub new_inputs: usize,
}

impl fmt::Display for TargetRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "fuzz {}: {} executions in {:.0} s ({:.0} per second) from a corpus of {}, {} new inputs, no crash",
            self.target,
            self.executions,
            self.seconds,
            self.executions as f64 / self.seconds.max(0.001),
            self.corpus,
            self.new_inputs
        )
    }
}

#[derive(Debug, Serialize)]
pub struct FuzzReport {
    pub runs: Vec<TargetRun>,
}

impl fmt::Display for FuzzReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let executions: u64 = self.runs.iter().map(|r| r.executions).sum();
        write!(f, "{} fuzz targets, {executions} executions, no crash", self.runs.len())
    }
}

/// Runs one target on `corpora` (new inputs go to the first) until
/// `limits` (libFuzzer's `-runs=`, `-max_total_time=`, `-seed=`) end it. A
/// crash, a timeout or running out of memory is an error naming the input
/// libFuzzer saved and the panic's message.
fn fuzz(bin: &Path, target: FuzzTarget, corpora: &[PathBuf], limits: &[String], out: &Reporter) -> Result<TargetRun> {
    let corpus: usize = corpora.iter().map(|d| inputs(d)).sum();
    let before_first = inputs(&corpora[0]);
    let artifacts = crate::target_dir().join("fuzz/artifacts").join(target.name());
    std::fs::create_dir_all(&artifacts).with_context(|| format!("creating {}", artifacts.display()))?;
    let program = bin.join(target.name());
    let started = Instant::now();
    let mut child = Command::new(&program)
        .args(corpora)
        .args(limits)
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        // An input that takes seconds is a finding, as is one that needs gigabytes.
        .arg("-timeout=20")
        .arg("-rss_limit_mb=4096")
        .arg("-print_final_stats=1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {}", program.display()))?;
    let mut executions = None;
    let mut said = Vec::new();
    for line in BufReader::new(child.stderr.take().expect("piped")).lines() {
        let line = line.context("reading the fuzzer's output")?;
        if let Some(n) = line.strip_prefix("stat::number_of_executed_units:") {
            executions = n.trim().parse().ok();
        }
        if line.starts_with('#') && line.contains("exec/s") {
            out.progress(&format!("fuzz {}: {line}", target.name()), false);
        } else {
            out.detail(&line);
        }
        said.push(line);
    }
    let status = child.wait().context("waiting for the fuzzer")?;
    out.progress("", false);
    if !status.success() {
        return Err(finding(target, &program, &said).into());
    }
    Ok(TargetRun {
        target: target.name(),
        executions: executions.context("the fuzzer printed no number_of_executed_units")?,
        seconds: started.elapsed().as_secs_f64(),
        corpus,
        new_inputs: inputs(&corpora[0]).saturating_sub(before_first),
    })
}

/// The error for a run that found something: what, the saved input, and
/// how to replay it.
fn finding(target: FuzzTarget, program: &Path, said: &[String]) -> Error {
    let input = said.iter().find_map(|l| l.split_once("Test unit written to ").map(|(_, p)| p.trim().to_owned()));
    let what = said
        .iter()
        .position(|l| l.contains("panicked at"))
        .map(|i| said[i..].iter().take(3).map(|l| l.trim()).collect::<Vec<_>>().join(" "))
        .or_else(|| said.iter().find(|l| l.contains("==ERROR: libFuzzer")).map(|l| l.trim().to_owned()))
        .unwrap_or_else(|| said.iter().rev().take(5).rev().cloned().collect::<Vec<_>>().join(" / "));
    let input = input.unwrap_or_else(|| "(libFuzzer saved no input)".into());
    Error::new(
        ErrorKind::Failed,
        format!(
            "fuzz target {} found an input it fails on: {what}. The input is {input}; replay it with `{} {input}`, \
             fix the cause, add the input to fuzz/corpus/{}/ and a test of the parser",
            target.name(),
            program.display(),
            target.name()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_the_flag_takes_has_its_source_its_binary_and_its_corpus() {
        let manifest = std::fs::read_to_string(project_root().join("fuzz/Cargo.toml")).unwrap();
        for &target in FuzzTarget::value_variants() {
            let name = target.name();
            assert!(project_root().join(format!("fuzz/fuzz_targets/{name}.rs")).is_file(), "{name}");
            assert!(manifest.contains(&format!("name = \"{name}\"")), "{name} is not a [[bin]] of fuzz/Cargo.toml");
            assert!(inputs(&corpus_dir(target)) > 0, "{name} has no corpus");
        }
        assert_eq!(FuzzTarget::JobFile.name(), "job_file");
    }

    #[test]
    fn a_finding_names_the_panic_the_input_and_how_to_replay_it() {
        // What libFuzzer and Rust's panic hook printed for the first
        // image_reference finding.
        let said: Vec<String> = [
            "#2847\tNEW    cov: 1021 ft: 2316 corp: 250/6211b lim: 48 exec/s: 0 rss: 48Mb",
            "thread '<unnamed>' (3108) panicked at fuzz_targets/image_reference.rs:18:5:",
            "\"1:+5615/1.0\" pushes as \"1:+5615/1.0:latest\", which oci-client refuses",
            "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace",
            "==3108== ERROR: libFuzzer: deadly signal",
            "artifact_prefix='target/fuzz/artifacts/image_reference/'; Test unit written to \
             target/fuzz/artifacts/image_reference/crash-fb15bd6f",
        ]
        .map(str::to_owned)
        .to_vec();
        let e = finding(FuzzTarget::ImageReference, Path::new("/bin/image_reference"), &said);
        assert_eq!(e.kind, ErrorKind::Failed);
        let text = e.to_string();
        assert!(text.starts_with("fuzz target image_reference found an input it fails on: thread '<unnamed>' (3108) panicked at fuzz_targets/image_reference.rs:18:5: \"1:+5615/1.0\" pushes as"), "{text}");
        assert!(text.contains("The input is target/fuzz/artifacts/image_reference/crash-fb15bd6f; replay it with `/bin/image_reference target/fuzz/artifacts/image_reference/crash-fb15bd6f`"), "{text}");
        // A timeout has no panic: libFuzzer's own line says what happened.
        let timeout = ["==7== ERROR: libFuzzer: timeout after 20 seconds".to_owned()];
        let text = finding(FuzzTarget::JobFile, Path::new("/bin/job_file"), &timeout).to_string();
        assert!(
            text.contains(
                "fails on: ==7== ERROR: libFuzzer: timeout after 20 seconds. The input is (libFuzzer saved no input)"
            ),
            "{text}"
        );
    }
}
