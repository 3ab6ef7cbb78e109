//! The closed sets of values that flags take and the domain works with:
//! where the worker is built for, by what, how it is uploaded, what a dry
//! run asks, how results are printed. A leaf: it imports nothing of the
//! crate, so `flags` declares these and every module uses them without
//! either importing the other (see ARCHITECTURE.md, "Layers").

use clap::ValueEnum;

/// The Rust target the worker is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// x86_64-unknown-linux-musl
    #[value(name = "x86_64-unknown-linux-musl")]
    Musl,
    /// x86_64-unknown-linux-gnu with -C target-feature=+crt-static (about 2.7x larger)
    #[value(name = "x86_64-unknown-linux-gnu")]
    GnuStatic,
    /// aarch64-unknown-linux-musl, linked by rust-lld (no cross C toolchain needed)
    #[value(name = "aarch64-unknown-linux-musl")]
    Aarch64Musl,
}

impl Target {
    pub fn triple(self) -> &'static str {
        match self {
            Target::Musl => "x86_64-unknown-linux-musl",
            Target::GnuStatic => "x86_64-unknown-linux-gnu",
            Target::Aarch64Musl => "aarch64-unknown-linux-musl",
        }
    }
}

/// What builds the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Builder {
    /// The Docker Engine API: the Dockerfile, built by the daemon.
    Docker,
    /// No daemon: the layer, config and manifest assembled here, reproducibly.
    Oci,
}

impl std::fmt::Display for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Builder::Docker => "docker",
            Builder::Oci => "oci",
        })
    }
}

/// What a dry run asks, as kubectl's `--dry-run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DryRun {
    /// The API server validates and admits each object (`dryRun=All`) and stores nothing.
    Server,
    /// Render and check here; no request to the cluster (or the registry).
    Client,
}

/// How a blob is uploaded to a registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UploadMode {
    Monolithic,
    Chunked,
}

/// How results are printed: text for people, one JSON object for scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

/// A platform an image is built for, as `--platform` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum Platform {
    /// x86-64 nodes: the worker built for x86_64-unknown-linux-musl.
    #[value(name = "linux/amd64")]
    LinuxAmd64,
    /// arm64 nodes: the worker built for aarch64-unknown-linux-musl.
    #[value(name = "linux/arm64")]
    LinuxArm64,
}

impl Platform {
    /// What the daemonless builder makes by default.
    pub const ALL: [Platform; 2] = [Platform::LinuxAmd64, Platform::LinuxArm64];

    /// The Rust target whose static binary runs there.
    pub fn target(self) -> Target {
        match self {
            Platform::LinuxAmd64 => Target::Musl,
            Platform::LinuxArm64 => Target::Aarch64Musl,
        }
    }

    /// The Go architecture name an image config and an index entry use.
    pub fn architecture(self) -> &'static str {
        match self {
            Platform::LinuxAmd64 => "amd64",
            Platform::LinuxArm64 => "arm64",
        }
    }

    pub fn oci(self) -> oci_client::manifest::Platform {
        oci_client::manifest::Platform {
            architecture: oci_spec::image::Arch::from(self.architecture()),
            os: oci_spec::image::Os::Linux,
            os_version: None,
            os_features: None,
            variant: None,
            features: None,
        }
    }

    /// The platform a Docker daemon reports (`docker version`'s Os/Arch),
    /// if it is one the worker is built for.
    pub fn of_daemon(os: &str, arch: &str) -> Option<Platform> {
        Platform::ALL.into_iter().find(|p| os == "linux" && arch == p.architecture())
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "linux/{}", self.architecture())
    }
}

/// A fuzz target in fuzz/fuzz_targets/: one parser of outside input each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum FuzzTarget {
    /// The worker's flags and environment (FAIL_PROBABILITY, FAIL_INDEXES, durations).
    WorkerSettings,
    /// An image reference (--image), and what oci-client makes of it.
    ImageReference,
    /// The settings file, job-test.toml.
    SettingsFile,
    /// A Job file (run-local -f, apply -f, odds -f), as each version's controller and odds take it.
    JobFile,
    /// A kubeconfig.
    Kubeconfig,
    /// Docker's config.json and a credential helper's output.
    DockerCredentials,
    /// A registry's manifests, indexes, tokens and error bodies.
    RegistryResponse,
    /// The API server's Job and Pod JSON, as watch reads it.
    ApiObjects,
}

impl FuzzTarget {
    /// Its binary's name, and the folder of its corpus: the name the flag takes.
    pub fn name(self) -> String {
        self.to_possible_value().expect("no fuzz target is skipped").get_name().to_owned()
    }
}
