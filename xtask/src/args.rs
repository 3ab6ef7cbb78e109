//! From clap's flag groups to the plain options the domain takes (ripgrep's
//! low-level to high-level arguments): the one place, with the commands'
//! own `run`, that reads a flags struct. Domain modules never see clap, so
//! `flags` stays a leaf and a module can be used (and tested) without the
//! command line. The Job and RBAC groups have their own, checking, step in
//! `manifest::params`.

use crate::cluster::Access;
use clap::Args;

use crate::flags::{BuilderFlags, ClusterFlags, JobFlags, PullSecretFlags, RegistryFlags, ReportFilesFlags};
use crate::image::BuildOptions;
use crate::push::Transport;
use crate::push::credentials::Inputs;
use crate::report::files::ReportFiles;

impl From<&ClusterFlags> for Access {
    fn from(f: &ClusterFlags) -> Access {
        Access {
            kubeconfig: f.kubeconfig.clone(),
            context: f.context.clone(),
            server: f.server.clone(),
            token_file: f.token_file.clone(),
            ca_cert: f.ca_cert.clone(),
            insecure_skip_tls_verify: f.insecure_skip_tls_verify,
        }
    }
}

impl From<&BuilderFlags> for BuildOptions {
    fn from(f: &BuilderFlags) -> BuildOptions {
        BuildOptions {
            builder: f.builder,
            load: f.load,
            layout: f.layout.clone(),
            platform: f.platform.clone(),
            skip_sbom: !f.sbom,
        }
    }
}

impl From<&RegistryFlags> for Transport {
    fn from(f: &RegistryFlags) -> Transport {
        Transport { insecure_registry: f.insecure_registry, upload_mode: f.upload_mode, attempts: f.attempts }
    }
}

impl From<&ReportFilesFlags> for ReportFiles {
    fn from(f: &ReportFilesFlags) -> ReportFiles {
        ReportFiles { save_report: f.save_report.clone(), html: f.html.clone() }
    }
}

/// With `--create-pull-secret`, where the pull secret's credential comes
/// from (`--username` with the password on stdin, else the environment or
/// the Docker config); None without it.
pub fn pull_secret_inputs(f: &PullSecretFlags) -> anyhow::Result<Option<Inputs>> {
    f.create_pull_secret.then(|| Inputs::from_process(f.username.clone(), f.password_stdin)).transpose()
}

/// Which Job a command that reads an existing one (`alerts`, `odds`) is about.
pub enum JobSource<'a> {
    /// The file its `--report` or `-f` names.
    File(&'a std::path::Path),
    /// The Job on the cluster: `--name` on the command line.
    Cluster,
    /// The Job the Job flags describe.
    Flags,
}

/// Where the Job comes from: `file` (given with `file_flag`), else the Job
/// on the cluster when `--name` is on the command line (a settings file's
/// name is a default for rendering, not a request to ask the cluster), else
/// the Job flags. Job flags beside a file or beside `--name` would describe
/// another Job than the one read, and are refused (exit 2); `verb` says what
/// the command does with the cluster's Job ("drills", "reads").
pub fn job_source<'a>(
    matches: &clap::ArgMatches,
    file_flag: &str,
    file: Option<&'a std::path::Path>,
    name: &str,
    verb: &str,
) -> Result<JobSource<'a>, crate::Error> {
    use clap::parser::ValueSource;
    let given = |id: &str| matches!(matches.value_source(id), Some(ValueSource::CommandLine));
    let described: Vec<String> = JobFlags::augment_args(clap::Command::new("job"))
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .filter(|id| !["name", "namespace"].contains(&id.as_str()) && given(id))
        .map(|id| format!("--{}", id.replace('_', "-")))
        .collect();
    match (file, given("name")) {
        (Some(file), false) if described.is_empty() => Ok(JobSource::File(file)),
        (Some(file), name_given) => Err(crate::Error::usage(format!(
            "{file_flag} {}: the file describes the Job; leave out {}",
            file.display(),
            if name_given { vec!["--name".to_owned()] } else { described }.join(", ")
        ))),
        (None, true) if !described.is_empty() => Err(crate::Error::usage(format!(
            "--name {name} {verb} the Job on the cluster, whose settings are its own: leave out {} (or leave out \
             --name, for the Job those flags describe)",
            described.join(", ")
        ))),
        (None, true) => Ok(JobSource::Cluster),
        (None, false) => Ok(JobSource::Flags),
    }
}
