//! `cargo xtask pods`: list pods with whatever credentials were given, and
//! print them as the tutorial's Java client does.

use anyhow::Result;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use serde_json::json;

use super::{Attempt, explain};
use crate::flags::PodsFlags;
use crate::report::Reporter;

pub fn run(flags: &PodsFlags, out: &Reporter) -> Result<()> {
    crate::runtime()?.block_on(async {
        let cluster = super::connect(&flags.cluster, out).await?;
        let namespace = flags.namespace.clone().unwrap_or_else(|| cluster.default_namespace.clone());
        let api: Api<Pod> = Api::namespaced(cluster.client.clone(), &namespace);
        let pods = api.list(&ListParams::default()).await.map_err(|e| {
            explain(&cluster, &Attempt { verb: "list", resource: "pods", namespace: Some(&namespace) }, &e)
        })?;
        let names: Vec<String> = pods.items.iter().map(|p| p.name_any()).collect();
        let mut text = format!("Number of pods = {}", names.len());
        for n in &names {
            text += &format!("\npod name = {n}");
        }
        out.result(text, &json!({ "namespace": namespace, "count": names.len(), "pods": names }));
        Ok(())
    })
}
