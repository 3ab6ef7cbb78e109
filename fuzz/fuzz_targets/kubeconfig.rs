//! A kubeconfig, as kube reads it and `connect` looks into it (the
//! clusters' CAs, the chosen context).
//!
//! Checked: never panics. Only the parse: turning it into a client config
//! reads the files it names and may run its exec plugin.
#![no_main]

use kube::config::Kubeconfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(config) = Kubeconfig::from_yaml(text) else { return };
    let _ = xtask::cluster::kubeconfig_names_a_ca(&config);
    let _ = config.clone().merge(config);
});
