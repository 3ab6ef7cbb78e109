//! A Kubernetes minor version (`1.20`) as flags, the API server's
//! `/version` and the version table read it. A leaf, so that `flags` can
//! parse `--kube-version` without importing the manifests.

use std::fmt;
use std::str::FromStr;

/// A Kubernetes minor version, `1.20`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KubeVersion {
    pub major: u32,
    pub minor: u32,
}

impl KubeVersion {
    pub const fn new(major: u32, minor: u32) -> KubeVersion {
        KubeVersion { major, minor }
    }

    /// From the API server's `/version` (`major: "1"`, `minor: "20"`, or
    /// `"27+"` on some managed clusters; gitVersion as the fallback).
    pub fn from_info(info: &k8s_openapi::apimachinery::pkg::version::Info) -> Option<KubeVersion> {
        let digits = |s: &str| s.trim_end_matches(|c: char| !c.is_ascii_digit()).parse().ok();
        match (digits(&info.major), digits(&info.minor)) {
            (Some(major), Some(minor)) => Some(KubeVersion { major, minor }),
            _ => info.git_version.parse().ok(),
        }
    }
}

impl fmt::Display for KubeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl FromStr for KubeVersion {
    type Err = String;

    /// `1.20`, `v1.20.2`, `1.27.3-gke.100`.
    fn from_str(s: &str) -> Result<KubeVersion, String> {
        let bad = || format!("{s:?} is not a Kubernetes version; expected MAJOR.MINOR such as 1.20 or v1.29.3");
        let mut parts = s.trim().trim_start_matches('v').split(['.', '-', '+']);
        let major = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let minor = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        Ok(KubeVersion { major, minor })
    }
}

/// The newest version the vendored schema and k8s-openapi's types cover:
/// what `render` targets when no version is given.
pub const NEWEST: KubeVersion = KubeVersion::new(1, 33);
/// The oldest version the tests run against (a real 1.20.2 control plane).
pub const OLDEST_TESTED: KubeVersion = KubeVersion::new(1, 20);
