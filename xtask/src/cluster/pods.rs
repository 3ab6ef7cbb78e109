//! `cargo xtask pods`: list pods with whatever credentials were given, and
//! print them as the tutorial's Java client does.

use anyhow::Result;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use serde::Serialize;

use super::{Attempt, explain};
use crate::flags::PodsFlags;
use crate::report::Reporter;

pub fn run(flags: &PodsFlags, out: &Reporter) -> Result<()> {
    crate::runtime()?.block_on(async {
        let cluster = super::connect(&super::Access::from(&flags.cluster), out).await?;
        let namespace = flags.namespace.clone().unwrap_or_else(|| cluster.default_namespace.clone());
        let api: Api<Pod> = Api::namespaced(cluster.client.clone(), &namespace);
        let pods = api.list(&ListParams::default()).await.map_err(|e| {
            explain(&cluster, &Attempt { verb: "list", resource: "pods", namespace: Some(&namespace) }, &e)
        })?;
        let pods: Vec<String> = pods.items.iter().map(|p| p.name_any()).collect();
        out.result(&PodList { namespace, count: pods.len(), pods });
        Ok(())
    })
}

/// The pods of a namespace, printed as the tutorial's Java client does.
#[derive(Serialize)]
struct PodList {
    namespace: String,
    count: usize,
    pods: Vec<String>,
}

impl std::fmt::Display for PodList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Number of pods = {}", self.count)?;
        for name in &self.pods {
            write!(f, "\npod name = {name}")?;
        }
        Ok(())
    }
}
