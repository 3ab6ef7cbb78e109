//! The real Kubernetes control plane the cluster tests can run against:
//! kube-apiserver, kube-controller-manager and kube-scheduler 1.20.2, and
//! etcd. This module owns finding them, and building them once per machine
//! when they are missing.
//!
//! Everything comes from Debian's archive, which ships this Kubernetes as
//! source only (bookworm's `kubernetes` source package is the whole upstream
//! 1.20.2 tree, vendor/ included). It is built with bullseye's Go 1.15,
//! because newer Go breaks the vendored reflect2 at run time; etcd is
//! bookworm's `etcd-server` binary. apt-get runs with a private
//! configuration under the work folder: the machine's sources, lists and
//! package cache are not used and nothing of its apt state changes (the
//! downloads are still checked against its Debian archive keys).
//!
//! The result lives outside the clone, in
//! `$XDG_CACHE_HOME/job-test/kubernetes-v1.20.2` (or `~/.cache/...`), so a
//! fresh clone or `cargo clean` does not pay for the build again. A `VERSION`
//! stamp holding the source package version is written last: a folder
//! without it (an interrupted build) is built again.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::fd::AsRawFd as _;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure as check};
use xshell::{Shell, cmd};

use crate::Error;
use crate::report::{Reporter, human_seconds};

/// The Debian source package everything is built from; the cache is keyed
/// by it (the `VERSION` stamp). Despite the name it is upstream 1.20.2.
pub const SOURCE_VERSION: &str = "1.20.5+really1.20.2-1.1+deb12u1";
/// The version the built binaries report and the cache folder is named after.
pub const KUBERNETES_VERSION: &str = "v1.20.2";
/// The executables of the cache folder.
pub const BINARIES: [&str; 4] = ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"];
/// The stamp file: the source package version, written after the binaries.
pub const STAMP: &str = "VERSION";

/// The folder the source tarball unpacks to.
const TREE: &str = "kubernetes-1.20.2";
/// Source for Kubernetes (bookworm, with its security updates), binaries for
/// Go 1.15 (bullseye) and etcd (bookworm).
const SOURCES_LIST: &str = "\
deb-src http://deb.debian.org/debian bookworm main
deb-src http://deb.debian.org/debian-security bookworm-security main
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bullseye main
";
/// The binary packages unpacked (never installed) into the work folder.
const DEBS: [&str; 3] = ["golang-1.15-go/bullseye", "golang-1.15-src/bullseye", "etcd-server/bookworm"];
/// The commands built from the tree, in `go build` form.
const COMMANDS: [&str; 3] = ["./cmd/kube-apiserver", "./cmd/kube-controller-manager", "./cmd/kube-scheduler"];
/// Upstream's link flags: `-s -w` (no symbol tables, as its release builds)
/// and the version `hack/lib/version.sh` stamps in. Without the version,
/// `/version` has no major or minor, and `apply` reads the cluster's version
/// there.
const LDFLAGS: &str = "-s -w \
-X k8s.io/component-base/version.gitVersion=v1.20.2 \
-X k8s.io/component-base/version.gitMajor=1 \
-X k8s.io/component-base/version.gitMinor=20 \
-X k8s.io/component-base/version.gitTreeState=clean \
-X k8s.io/client-go/pkg/version.gitVersion=v1.20.2";

/// The cache folder: `$XDG_CACHE_HOME/job-test/kubernetes-v1.20.2`, else
/// `$HOME/.cache/job-test/kubernetes-v1.20.2`.
pub fn dir() -> Result<PathBuf> {
    // The XDG spec: a relative or empty value is to be ignored.
    let base = match std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from) {
        Some(xdg) if xdg.is_absolute() => xdg,
        _ => std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(|h| PathBuf::from(h).join(".cache"))
            .context("neither XDG_CACHE_HOME nor HOME is set: there is nowhere to cache the control plane")?,
    };
    Ok(base.join("job-test").join(format!("kubernetes-{KUBERNETES_VERSION}")))
}

/// Makes sure the control plane's binaries are in the cache folder, building
/// them when they are missing and `install` allows, and returns the folder.
pub fn ensure(install: bool, out: &Reporter) -> Result<PathBuf> {
    let dir = dir()?;
    if let Some(ready) = cached(&dir, out) {
        return Ok(ready);
    }
    if !install {
        return Err(Error::prerequisite(format!(
            "the Kubernetes {KUBERNETES_VERSION} control plane is not built in {} (missing: {}); `cargo xtask \
             test` (without --no-install) builds it from Debian's archive, once per machine (10 to 15 minutes \
             on 2 cores)",
            dir.display(),
            missing(&dir).join(", ")
        ))
        .into());
    }
    fs::create_dir_all(&dir).with_context(|| format!("creating the cache folder {}", dir.display()))?;
    let _lock = lock(&dir, out)?;
    // Another run may have finished the build while this one waited.
    if let Some(ready) = cached(&dir, out) {
        return Ok(ready);
    }

    let progress = Progress { start: Instant::now(), out };
    let work = dir.join("build");
    build(&dir, &work, &progress).with_context(|| {
        format!(
            "building the Kubernetes {KUBERNETES_VERSION} control plane failed; its work folder {} is kept for a \
             look, and the next run starts it over",
            work.display()
        )
    })?;
    // Gigabytes of source, Go toolchain and build cache: only the binaries are kept.
    progress.step(format!("removing the work folder {}", work.display()));
    fs::remove_dir_all(&work).with_context(|| format!("removing the work folder {}", work.display()))?;
    out.status(format!(
        "control plane: built Kubernetes {KUBERNETES_VERSION} and etcd in {}, cached in {}",
        human_seconds(progress.start.elapsed().as_secs_f64()),
        dir.display()
    ));
    Ok(dir)
}

/// The folder, if every binary is there and the stamp names this source version.
fn cached(dir: &Path, out: &Reporter) -> Option<PathBuf> {
    if !missing(dir).is_empty() {
        return None;
    }
    out.status(format!("control plane: Kubernetes {KUBERNETES_VERSION} and etcd are cached in {}", dir.display()));
    Some(dir.to_path_buf())
}

/// What is missing or stale in the folder, for people; empty when complete.
fn missing(dir: &Path) -> Vec<String> {
    let mut missing: Vec<String> = BINARIES.iter().filter(|b| !dir.join(b).is_file()).map(|b| b.to_string()).collect();
    match fs::read_to_string(dir.join(STAMP)) {
        Ok(stamp) if stamp.trim() == SOURCE_VERSION => {}
        Ok(stamp) => missing.push(format!("a {STAMP} stamp for {SOURCE_VERSION} (it names {})", stamp.trim())),
        // No build has finished there.
        Err(_) => missing.push(format!("the {STAMP} stamp")),
    }
    missing
}

/// An exclusive lock on the cache folder, held while building: two test runs
/// on one machine build once, the second one waits and finds the result.
fn lock(dir: &Path, out: &Reporter) -> Result<fs::File> {
    let folder = fs::File::open(dir).with_context(|| format!("opening {} to lock it", dir.display()))?;
    let fd = folder.as_raw_fd();
    // SAFETY: `fd` is open, owned by `folder`, which outlives both calls; the
    // lock goes with the descriptor when the returned file is dropped.
    if unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        out.status(format!("control plane: waiting for another build in {} to finish", dir.display()));
        if unsafe { libc::flock(fd, libc::LOCK_EX) } != 0 {
            return Err(io::Error::last_os_error()).with_context(|| format!("locking {}", dir.display()));
        }
    }
    Ok(folder)
}

/// Status lines with the seconds since the build started.
struct Progress<'a> {
    start: Instant,
    out: &'a Reporter,
}

impl Progress<'_> {
    fn step(&self, what: impl std::fmt::Display) {
        self.out.status(format!("control plane [{:>4}s]: {what}", self.start.elapsed().as_secs()));
    }
}

/// The recipe: sources and packages through a private apt, the generated
/// OpenAPI definitions the tarball lacks, `go build`, a check, then the
/// binaries and the stamp moved into `dir`.
fn build(dir: &Path, work: &Path, progress: &Progress) -> Result<()> {
    let sh = Shell::new()?;
    for tool in ["apt-get", "dpkg", "tar"] {
        cmd!(sh, "{tool} --version").quiet().ignore_stdout().ignore_stderr().run().map_err(|e| {
            Error::prerequisite(format!(
                "building the Kubernetes {KUBERNETES_VERSION} control plane needs `{tool}` (a Debian or Ubuntu \
                 machine), and it does not run ({e})"
            ))
        })?;
    }
    clear_work(work)?;

    // apt-get with every path under the work folder: the system's sources,
    // lists and package cache are neither used nor changed.
    let apt = work.join("apt");
    for sub in ["lists/partial", "cache/archives/partial"] {
        let path = apt.join(sub);
        fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
    }
    let sources = apt.join("sources.list");
    fs::write(&sources, SOURCES_LIST).with_context(|| format!("writing {}", sources.display()))?;
    let apt_options: Vec<String> = [
        format!("Dir::Etc::SourceList={}", sources.display()),
        "Dir::Etc::SourceParts=/nonexistent".to_owned(),
        format!("Dir::State::Lists={}", apt.join("lists").display()),
        format!("Dir::Cache={}", apt.join("cache").display()),
        "APT::Architecture=amd64".to_owned(),
    ]
    .into_iter()
    .flat_map(|o| ["-o".to_owned(), o])
    .collect();
    let apt_opts = &apt_options;

    progress.step(format!("reading Debian's package lists (a private apt state in {})", apt.display()));
    cmd!(sh, "apt-get -qq {apt_opts...} update")
        .run()
        .context("apt-get update (private configuration) failed; is deb.debian.org reachable?")?;

    progress.step(format!("downloading the Kubernetes source package {SOURCE_VERSION}"));
    let src = mkdir(work, "src")?;
    sh.change_dir(&src);
    let package = format!("kubernetes={SOURCE_VERSION}");
    cmd!(sh, "apt-get -qq {apt_opts...} source --download-only {package}")
        .run()
        .with_context(|| format!("apt-get could not download the source package {package}"))?;
    let tarball = only_file(&src, ".orig.tar.gz")?;

    progress.step(format!("unpacking {}", tarball.display()));
    cmd!(sh, "tar xzf {tarball} -C {work}").run().with_context(|| format!("unpacking {}", tarball.display()))?;
    let unpacked = work.join(TREE);
    check!(unpacked.join("go.mod").is_file(), "{} did not unpack to {}", tarball.display(), unpacked.display());
    // openapi-gen (below) finds the packages through a GOPATH, so the tree
    // is moved there as k8s.io/kubernetes. Moved, not linked: Go takes its
    // working directory from $PWD, which a child started here lacks, so
    // from a link it sees the target's path, outside GOPATH, and every type
    // it reads comes out as "invalid type".
    let gopath = work.join("gopath");
    let tree = gopath.join("src/k8s.io/kubernetes");
    fs::create_dir_all(gopath.join("src/k8s.io")).with_context(|| format!("creating {}", gopath.display()))?;
    fs::rename(&unpacked, &tree).with_context(|| format!("moving {} into GOPATH", unpacked.display()))?;

    progress.step(format!("downloading and unpacking {}", DEBS.join(", ")));
    let debs = mkdir(work, "debs")?;
    sh.change_dir(&debs);
    cmd!(sh, "apt-get -qq {apt_opts...} download {DEBS...}")
        .run()
        .with_context(|| format!("apt-get could not download {}", DEBS.join(", ")))?;
    let root = work.join("root");
    for deb in files_ending(&debs, ".deb")? {
        cmd!(sh, "dpkg -x {deb} {root}").run().with_context(|| format!("unpacking {}", deb.display()))?;
    }
    let goroot = root.join("usr/lib/go-1.15");
    let go = goroot.join("bin/go");
    check!(go.is_file(), "the golang-1.15-go package did not hold {}", go.display());

    // The same Go environment for every call; the user's own (GOFLAGS,
    // GOPATH, a `go env -w` file) must not leak in, and nothing may be
    // fetched: the tree is vendored.
    let path = std::env::join_paths(
        std::iter::once(goroot.join("bin")).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .context("putting Go 1.15 first in PATH")?;
    let vars: [(&str, OsString); 8] = [
        ("GOROOT", goroot.into()),
        ("PATH", path),
        ("GOCACHE", work.join("gocache").into()),
        ("GOPATH", gopath.clone().into()),
        ("GOPROXY", "off".into()),
        ("CGO_ENABLED", "0".into()),
        ("GOENV", "off".into()),
        ("GOFLAGS", "".into()),
    ];
    for (key, value) in vars {
        sh.set_var(key, value);
    }

    // The tarball lacks pkg/generated/openapi/zz_generated.openapi.go, which
    // upstream's Makefile generates.
    progress.step("building openapi-gen from the vendored kube-openapi");
    sh.change_dir(&tree);
    let openapi_gen = work.join("openapi-gen");
    cmd!(sh, "{go} build -o {openapi_gen} ./vendor/k8s.io/kube-openapi/cmd/openapi-gen")
        .env("GO111MODULE", "on")
        .env("GOFLAGS", "-mod=vendor")
        .run()
        .context("building openapi-gen")?;

    let packages = openapi_packages(&tree)?;
    progress.step(format!("generating the OpenAPI definitions of {} packages", packages.len()));
    let inputs = packages.iter().map(|p| format!("k8s.io/kubernetes/{p}")).collect::<Vec<_>>().join(",");
    let report = work.join("violations.report");
    let generate = cmd!(
        sh,
        "{openapi_gen} --logtostderr -i {inputs} -p k8s.io/kubernetes/pkg/generated/openapi -O zz_generated.openapi
         -h vendor/k8s.io/code-generator/hack/boilerplate.go.txt -r {report}"
    )
    .env("GO111MODULE", "off");
    // Run by std, not xshell: xshell echoes the command line and quotes it in
    // its error, and here it holds the 5 KB package list.
    let status = std::process::Command::from(generate).status().context("starting openapi-gen")?;
    check!(
        status.success(),
        "openapi-gen failed to generate the OpenAPI definitions ({status}); its messages are above"
    );
    let generated = tree.join("pkg/generated/openapi/zz_generated.openapi.go");
    let size = fs::metadata(&generated).map(|m| m.len()).unwrap_or(0);
    check!(size > 0, "openapi-gen ran but wrote no {}", generated.display());

    progress.step("building kube-apiserver, kube-controller-manager and kube-scheduler with Go 1.15 (minutes)");
    let bin = mkdir(work, "bin")?;
    // A trailing slash: `go build -o` then writes one executable per command.
    let into = format!("{}/", bin.display());
    cmd!(sh, "{go} build -ldflags {LDFLAGS} -o {into} {COMMANDS...}")
        .env("GO111MODULE", "on")
        .env("GOFLAGS", "-mod=vendor")
        .run()
        .context("go build of the control plane failed (its output is above)")?;
    let etcd = root.join("usr/bin/etcd");
    fs::copy(&etcd, bin.join("etcd")).with_context(|| format!("copying {}", etcd.display()))?;

    progress.step("checking the binaries");
    let apiserver = bin.join("kube-apiserver");
    let version = cmd!(sh, "{apiserver} --version").read().context("running kube-apiserver --version")?;
    check!(
        version.contains(&format!("Kubernetes {KUBERNETES_VERSION}")),
        "kube-apiserver --version says {version:?}, not Kubernetes {KUBERNETES_VERSION}"
    );
    let etcd = bin.join("etcd");
    let etcd_version = cmd!(sh, "{etcd} --version").read().context("running etcd --version")?;
    let etcd_version = etcd_version.lines().next().unwrap_or_default().trim_start_matches("etcd Version:").trim();
    progress.step(format!("{} and etcd {etcd_version} run", version.trim()));

    // Binaries first, the stamp last: a folder with a matching stamp is
    // complete, whenever this was interrupted. Renames within one file
    // system, so each file appears whole.
    match fs::remove_file(dir.join(STAMP)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("removing the old stamp in {}", dir.display()));
        }
        _ => {}
    }
    for name in BINARIES {
        fs::rename(bin.join(name), dir.join(name)).with_context(|| format!("moving {name} into {}", dir.display()))?;
    }
    let stamp = work.join(STAMP);
    fs::write(&stamp, format!("{SOURCE_VERSION}\n")).with_context(|| format!("writing {}", stamp.display()))?;
    fs::rename(&stamp, dir.join(STAMP)).with_context(|| format!("writing the stamp in {}", dir.display()))?;
    Ok(())
}

/// Empties the work folder of an earlier, failed attempt, keeping only Go's
/// build cache: it is content-addressed and safe to reuse, and it makes a
/// retry minutes faster.
fn clear_work(work: &Path) -> Result<()> {
    fs::create_dir_all(work).with_context(|| format!("creating the work folder {}", work.display()))?;
    for entry in fs::read_dir(work).with_context(|| format!("reading {}", work.display()))? {
        let entry = entry?;
        if entry.file_name() == "gocache" {
            continue;
        }
        let path = entry.path();
        let removed = if entry.file_type()?.is_dir() { fs::remove_dir_all(&path) } else { fs::remove_file(&path) };
        removed.with_context(|| format!("removing {} (left by an earlier attempt)", path.display()))?;
    }
    Ok(())
}

fn mkdir(parent: &Path, name: &str) -> Result<PathBuf> {
    let path = parent.join(name);
    fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
    Ok(path)
}

/// The regular files in `dir` whose names end with `suffix`, sorted.
fn files_ending(dir: &Path, suffix: &str) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        if entry.file_type()?.is_file() && entry.file_name().as_bytes().ends_with(suffix.as_bytes()) {
            found.push(entry.path());
        }
    }
    found.sort();
    Ok(found)
}

/// The one file in `dir` whose name ends with `suffix`.
fn only_file(dir: &Path, suffix: &str) -> Result<PathBuf> {
    match files_ending(dir, suffix)?.as_slice() {
        [one] => Ok(one.clone()),
        found => bail!("expected one *{suffix} in {}, found {}", dir.display(), found.len()),
    }
}

/// The packages openapi-gen reads, relative to the tree (`pkg/apis/...`,
/// `vendor/k8s.io/api/...`), sorted by bytes: the folders holding a `.go`
/// file with a `// +k8s:openapi-gen=` line, found as upstream's
/// build/root/Makefile.generated_files finds them with `find -H .`:
/// top-level entries named `_*` or `.*` and `./vendor` are pruned,
/// symbolic links below the top are not followed (so the k8s.io packages
/// are found under staging/src/, then named as vendor/), and
/// code-generator and sample-apiserver are left out.
pub fn openapi_packages(tree: &Path) -> Result<Vec<String>> {
    let mut packages = BTreeSet::new();
    let mut pending = vec![String::new()];
    while let Some(rel) = pending.pop() {
        let folder = tree.join(&rel);
        for entry in fs::read_dir(&folder).with_context(|| format!("reading {}", folder.display()))? {
            let entry = entry.with_context(|| format!("reading {}", folder.display()))?;
            let name = entry.file_name();
            let name = name.to_str().with_context(|| format!("a name that is not UTF-8 in {}", folder.display()))?;
            if rel.is_empty() && (name.starts_with('_') || name.starts_with('.') || name == "vendor") {
                continue;
            }
            let path = if rel.is_empty() { name.to_owned() } else { format!("{rel}/{name}") };
            // The entry's own type: a symbolic link is neither a folder nor a file here.
            let kind = entry.file_type().with_context(|| format!("reading the type of {path}"))?;
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() && name.ends_with(".go") && has_openapi_tag(&entry.path())? {
                let path = match path.strip_prefix("staging/src") {
                    Some(rest) => format!("vendor{rest}"),
                    None => path,
                };
                if path.starts_with("vendor/k8s.io/code-generator/")
                    || path.starts_with("vendor/k8s.io/sample-apiserver/")
                {
                    continue;
                }
                packages.insert(path.rsplit_once('/').map_or(".", |(dir, _)| dir).to_owned());
            }
        }
    }
    Ok(packages.into_iter().collect())
}

/// Whether a line of the file matches `^// *+k8s:openapi-gen=` (` *`: spaces
/// only, a tab does not count).
fn has_openapi_tag(file: &Path) -> Result<bool> {
    let bytes = fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    Ok(bytes.split(|&b| b == b'\n').any(|line| {
        let Some(rest) = line.strip_prefix(b"//") else { return false };
        let spaces = rest.iter().take_while(|&&b| b == b' ').count();
        rest[spaces..].starts_with(b"+k8s:openapi-gen=")
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tree with one case per rule of the upstream `find`.
    #[test]
    fn openapi_packages_follow_upstreams_find() {
        let tree = std::env::temp_dir().join(format!("job-test-openapi-packages-{}", std::process::id()));
        let _ = fs::remove_dir_all(&tree);
        let tagged = "package v1\n\n// +k8s:openapi-gen=true\ntype T struct{}\n";
        let write = |path: &str, text: &str| {
            let path = tree.join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        };
        write("pkg/apis/abac/v0/types.go", tagged);
        write("pkg/apis/spaced/doc.go", "//    +k8s:openapi-gen=false\npackage spaced\n");
        write("pkg/apis/tabbed/doc.go", "//\t+k8s:openapi-gen=true\npackage tabbed\n");
        write("pkg/apis/indented/doc.go", " // +k8s:openapi-gen=true\npackage indented\n");
        write("pkg/apis/untagged/types.go", "package untagged\n");
        write("pkg/apis/notgo/types.txt", tagged);
        write("pkg/.hidden/v1/types.go", tagged);
        write("staging/src/k8s.io/api/core/v1/types.go", tagged);
        write("staging/src/k8s.io/code-generator/x/types.go", tagged);
        write("staging/src/k8s.io/sample-apiserver/x/types.go", tagged);
        write("vendor/github.com/x/types.go", tagged);
        write("_output/local/types.go", tagged);
        write(".git/types.go", tagged);
        std::os::unix::fs::symlink(tree.join("pkg/apis/abac"), tree.join("pkg/linked")).unwrap();

        let found = openapi_packages(&tree).unwrap();
        fs::remove_dir_all(&tree).unwrap();
        assert_eq!(found, ["pkg/.hidden/v1", "pkg/apis/abac/v0", "pkg/apis/spaced", "vendor/k8s.io/api/core/v1"]);
    }

    #[test]
    fn the_cache_folder_is_named_after_the_version() {
        assert!(dir().unwrap().ends_with("job-test/kubernetes-v1.20.2"));
    }

    #[test]
    fn an_unfinished_folder_is_not_cached() {
        let dir = std::env::temp_dir().join(format!("job-test-control-plane-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        for name in BINARIES {
            fs::write(dir.join(name), "").unwrap();
        }
        assert_eq!(missing(&dir), ["the VERSION stamp"]);
        fs::write(dir.join(STAMP), "1.19.0-1\n").unwrap();
        assert_eq!(missing(&dir), [format!("a VERSION stamp for {SOURCE_VERSION} (it names 1.19.0-1)")]);
        fs::write(dir.join(STAMP), format!("{SOURCE_VERSION}\n")).unwrap();
        fs::remove_file(dir.join("etcd")).unwrap();
        assert_eq!(missing(&dir), ["etcd"]);
        fs::write(dir.join("etcd"), "").unwrap();
        assert!(missing(&dir).is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }
}
