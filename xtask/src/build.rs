//! `cargo xtask build`: the static job-worker binary.
//!
//! Static because the image is `FROM scratch`: no libc, no loader. The result
//! is checked, not assumed: the ELF must be for the target's machine
//! (x86-64 or AArch64) and have no program interpreter and no needed shared
//! libraries.
//!
//! aarch64 is cross-compiled with no cross C toolchain: Rust's musl targets
//! bring their own C runtime objects and libc, so only a linker is missing,
//! and rustup ships one (`rust-lld`) with every toolchain.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use sha2::{Digest, Sha256};
use xshell::{Shell, cmd};

use crate::choices::Target;
use crate::flags::BuildFlags;
use crate::report::Reporter;
use crate::{Error, project_root};

/// A built worker binary.
#[derive(Debug, Clone, Serialize)]
pub struct Binary {
    pub path: PathBuf,
    #[serde(serialize_with = "triple")]
    pub target: Target,
    pub size: u64,
    pub sha256: String,
    pub linkage: Linkage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Linkage {
    /// No interpreter and no dynamic section.
    Static,
    /// Position-independent and static: a dynamic section for self-relocation
    /// but no interpreter and no needed libraries (what `file` calls static-pie).
    StaticPie,
}

impl Linkage {
    pub fn as_str(self) -> &'static str {
        match self {
            Linkage::Static => "static",
            Linkage::StaticPie => "static-pie",
        }
    }
}

fn triple<S: serde::Serializer>(target: &Target, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(target.triple())
}

impl std::fmt::Display for Binary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "built job-worker for {} ({}, runs with no libc)\n  path    {}\n  size    {} bytes ({:.1} KiB)\n  sha256  {}",
            self.target.triple(),
            self.linkage.as_str(),
            self.path.display(),
            self.size,
            self.size as f64 / 1024.0,
            self.sha256
        )
    }
}

pub fn run(flags: &BuildFlags, out: &Reporter) -> Result<Binary> {
    let built = build(flags.target, out)?;
    out.result(&built);
    Ok(built)
}

/// Builds the worker for `target` and checks that the result is static.
pub fn build(target: Target, out: &Reporter) -> Result<Binary> {
    Ok(build_all(&[target], out)?.remove(0))
}

/// Builds the worker for several targets in one cargo invocation (one
/// start, one lock, one freshness check: most of what an unchanged build
/// costs), then checks each binary.
pub fn build_all(targets: &[Target], out: &Reporter) -> Result<Vec<Binary>> {
    let sh = Shell::new()?;
    sh.change_dir(project_root());
    for target in targets {
        ensure_target(&sh, target.triple(), true, out)?;
    }
    let triples = targets.iter().map(|t| t.triple()).collect::<Vec<_>>();
    out.status(format!("building job-worker for {} (release)", triples.join(", ")));
    // Paths of dependencies' sources end up in panic messages; mapping the
    // machine's cargo home to a fixed prefix makes the binary, and so the
    // image digest, the same on every machine. Set per target, so other
    // builds in the tree are untouched.
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cargo")))
        .unwrap_or_default();
    let mut build = cargo_cmd(&sh).args(["build", "--release", "--locked", "--package", "job-worker"]);
    for target in targets {
        let mut rustflags = format!("--remap-path-prefix={}=/cargo", cargo_home.display());
        match target {
            Target::GnuStatic => rustflags.push_str(" -C target-feature=+crt-static"),
            Target::Aarch64Musl => rustflags.push_str(" -C linker=rust-lld"),
            Target::Musl => {}
        }
        let triple = target.triple();
        let flags_var = format!("CARGO_TARGET_{}_RUSTFLAGS", triple.to_uppercase().replace('-', "_"));
        build = build.args(["--target", triple]).env(flags_var, rustflags);
    }
    build.run().with_context(|| format!("cargo could not build job-worker for {}", triples.join(" and ")))?;

    let mut binaries = Vec::new();
    for &target in targets {
        let path = crate::target_dir().join(target.triple()).join("release").join("job-worker");
        let bytes = std::fs::read(&path).with_context(|| format!("reading the built binary {}", path.display()))?;
        check_machine(&bytes, target).with_context(|| format!("checking the machine of {}", path.display()))?;
        let linkage = linkage(&bytes).with_context(|| format!("checking that {} is static", path.display()))?;
        binaries.push(Binary { size: bytes.len() as u64, sha256: hex(&Sha256::digest(&bytes)), path, target, linkage });
    }
    Ok(binaries)
}

/// The cargo that runs this xtask (`CARGO`, set by `cargo run`): the
/// toolchain's own binary, without a rustup proxy starting in front of it.
/// Else `cargo` from PATH.
pub fn cargo() -> PathBuf {
    std::env::var_os("CARGO").filter(|c| !c.is_empty()).map_or_else(|| "cargo".into(), PathBuf::from)
}

/// A cargo started from `cargo xtask` (`cargo()`), with the environment of
/// the user's own cargo: without the variables `cargo run` set for xtask
/// (`crate::vars_set_by_cargo_run`), which would make it rebuild what the
/// user's next `cargo xtask` then rebuilds back.
pub fn cargo_cmd(sh: &Shell) -> xshell::Cmd<'_> {
    let cargo = cargo();
    crate::vars_set_by_cargo_run().into_iter().fold(cmd!(sh, "{cargo}"), |cmd, name| cmd.env_remove(name))
}

/// Whether the standard library for `triple` is in the sysroot of `cargo`
/// (`<sysroot>/bin/cargo`): then the target is installed, and rustup need
/// not be asked.
fn std_present(cargo: &Path, triple: &str) -> bool {
    let Some(sysroot) = cargo.parent().and_then(Path::parent) else { return false };
    std::fs::read_dir(sysroot.join("lib").join("rustlib").join(triple).join("lib"))
        .is_ok_and(|entries| entries.flatten().any(|e| e.file_name().to_string_lossy().starts_with("libstd-")))
}

/// Makes sure the Rust target is installed, adding it with rustup when it
/// is missing and `install` allows.
pub fn ensure_target(sh: &Shell, triple: &str, install: bool, out: &Reporter) -> Result<()> {
    // Asking rustup costs a process start and a read of its settings, on
    // every build; the sysroot answers for free when cargo's path is known.
    if std_present(&cargo(), triple) {
        return Ok(());
    }
    let installed = cmd!(sh, "rustup target list --installed").quiet().ignore_stderr().read().map_err(|e| {
        Error::prerequisite(format!(
            "cannot ask rustup which targets are installed ({e}); install rustup (https://rustup.rs), or {}",
            without(triple)
        ))
    })?;
    if installed.lines().any(|l| l.trim() == triple) {
        return Ok(());
    }
    if !install {
        return Err(Error::prerequisite(format!(
            "the Rust target {triple} is missing; run `rustup target add {triple}`"
        ))
        .into());
    }
    out.status(format!("installing the Rust target {triple} with rustup"));
    cmd!(sh, "rustup target add {triple}").run().map_err(|e| missing_target(triple, &e))?;
    Ok(())
}

/// The error when `rustup target add` failed: what else the user can do.
fn missing_target(triple: &str, e: &dyn std::fmt::Display) -> Error {
    Error::prerequisite(format!(
        "the Rust target {triple} is missing and `rustup target add {triple}` failed ({e}); install it by hand, or {}",
        without(triple)
    ))
}

/// How to go on without `triple`'s standard library. The arm64 worker is
/// wanted by `image`, `push` and `release`, which take `--platform` (not
/// `--target`); the x86_64 one has the glibc target to fall back on.
fn without(triple: &str) -> &'static str {
    if triple == Target::Aarch64Musl.triple() {
        "give `--platform linux/amd64` to build the amd64 image only"
    } else {
        "build with `--target x86_64-unknown-linux-gnu` (static glibc, larger)"
    }
}

/// The ELF machine (`e_machine`) of a binary for `target`, and its name.
pub fn machine_of(target: Target) -> (u16, &'static str) {
    const EM_X86_64: u16 = 62;
    const EM_AARCH64: u16 = 183;
    match target {
        Target::Musl | Target::GnuStatic => (EM_X86_64, "x86-64"),
        Target::Aarch64Musl => (EM_AARCH64, "AArch64"),
    }
}

/// Checks that the ELF file is for `target`'s machine: a binary for the
/// wrong one fails on a node with `exec format error`.
pub fn check_machine(elf: &[u8], target: Target) -> Result<()> {
    let (expected, name) = machine_of(target);
    let found = u16::from_le_bytes(elf.get(0x12..0x14).context("truncated ELF file")?.try_into()?);
    if found != expected {
        bail!("it is for ELF machine {found}, not {name} ({expected}) as {} needs", target.triple());
    }
    Ok(())
}

/// Reads the ELF program headers: static means no PT_INTERP, and no
/// DT_NEEDED entry if there is a dynamic section.
pub fn linkage(elf: &[u8]) -> Result<Linkage> {
    const PT_DYNAMIC: u32 = 2;
    const PT_INTERP: u32 = 3;
    const DT_NULL: u64 = 0;
    const DT_NEEDED: u64 = 1;
    let u16_at = |o: usize| -> Result<u16> {
        Ok(u16::from_le_bytes(elf.get(o..o + 2).context("truncated ELF file")?.try_into()?))
    };
    let u32_at = |o: usize| -> Result<u32> {
        Ok(u32::from_le_bytes(elf.get(o..o + 4).context("truncated ELF file")?.try_into()?))
    };
    let u64_at = |o: usize| -> Result<u64> {
        Ok(u64::from_le_bytes(elf.get(o..o + 8).context("truncated ELF file")?.try_into()?))
    };
    if elf.get(..4) != Some(b"\x7fELF") || elf.get(4) != Some(&2) || elf.get(5) != Some(&1) {
        bail!("not a 64-bit little-endian ELF file");
    }
    let phoff = u64_at(0x20)? as usize;
    let phentsize = usize::from(u16_at(0x36)?);
    let phnum = usize::from(u16_at(0x38)?);
    let mut dynamic = None;
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        match u32_at(ph)? {
            PT_INTERP => bail!("it has a program interpreter (dynamically linked): it would need a libc in the image"),
            PT_DYNAMIC => dynamic = Some((u64_at(ph + 8)? as usize, u64_at(ph + 32)? as usize)),
            _ => {}
        }
    }
    let Some((offset, size)) = dynamic else { return Ok(Linkage::Static) };
    for entry in (offset..offset + size).step_by(16) {
        match u64_at(entry)? {
            DT_NULL => break,
            DT_NEEDED => bail!("it needs shared libraries (DT_NEEDED): it would need them in the image"),
            _ => {}
        }
    }
    Ok(Linkage::StaticPie)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The file's sha256, in hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(hex(&Sha256::digest(&bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_target_names_a_fix_the_commands_that_need_it_take() {
        let e = missing_target("aarch64-unknown-linux-musl", &"exit status: 1");
        assert_eq!(e.kind, crate::ErrorKind::Prerequisite);
        assert_eq!(
            e.message,
            "the Rust target aarch64-unknown-linux-musl is missing and `rustup target add aarch64-unknown-linux-musl` \
             failed (exit status: 1); install it by hand, or give `--platform linux/amd64` to build the amd64 image \
             only"
        );
        assert!(!e.message.contains("--target"), "image, push and release take no --target: {e}");
        let e = missing_target("x86_64-unknown-linux-musl", &"exit status: 1");
        assert!(e.message.ends_with("or build with `--target x86_64-unknown-linux-gnu` (static glibc, larger)"), "{e}");
    }

    #[test]
    fn a_dynamically_linked_program_is_refused() {
        // The test binary itself is a normal glibc-linked program.
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let err = linkage(&me).unwrap_err().to_string();
        assert!(err.contains("program interpreter"), "{err}");
    }

    #[test]
    fn a_binary_for_another_machine_is_refused() {
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        check_machine(&me, Target::Musl).unwrap();
        let err = check_machine(&me, Target::Aarch64Musl).unwrap_err().to_string();
        assert!(err.contains("not AArch64 (183)"), "{err}");
    }

    #[test]
    fn a_target_is_installed_when_its_std_is_in_the_sysroot() {
        let sysroot = crate::image::tests::tempdir("sysroot");
        let cargo = sysroot.join("bin").join("cargo");
        let lib = sysroot.join("lib/rustlib/aarch64-unknown-linux-musl/lib");
        std::fs::create_dir_all(&lib).unwrap();
        assert!(!std_present(&cargo, "aarch64-unknown-linux-musl"), "an empty lib directory is no std");
        std::fs::write(lib.join("libstd-0123abcd.rlib"), b"").unwrap();
        assert!(std_present(&cargo, "aarch64-unknown-linux-musl"));
        assert!(!std_present(&cargo, "x86_64-unknown-linux-musl"));
        assert!(!std_present(Path::new("cargo"), "aarch64-unknown-linux-musl"), "a bare name has no sysroot");
        std::fs::remove_dir_all(sysroot).unwrap();
    }

    #[test]
    fn garbage_is_not_an_elf_file() {
        assert!(linkage(b"#!/bin/sh\n").unwrap_err().to_string().contains("not a 64-bit"));
        assert!(linkage(b"\x7fELF\x02\x01").unwrap_err().to_string().contains("truncated"));
    }
}
