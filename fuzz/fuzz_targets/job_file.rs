//! A Job file as `run-local -f`, `apply -f` and `odds -f` read it: the YAML
//! stream, each Job as every version's controller takes it (the oldest tested to the newest), and its odds.
//!
//! Checked: never panics; a refusal is a message, never empty.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use xtask::kube_version::{KubeVersion, NEWEST, OLDEST_TESTED};
use xtask::local::controller::{Controller, Spec, local_caveats};
use xtask::manifest::Object;
use xtask::manifest::versions::{ControllerRules, adapt_job};
use xtask::odds::{exact, from_job};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let objects = match xtask::manifest::from_yaml(text) {
        Ok(objects) => objects,
        Err(e) => return assert!(!e.trim().is_empty(), "an empty refusal"),
    };
    for job in objects.iter().filter_map(|o| if let Object::Job(job) = o { Some(job) } else { None }) {
        for minor in OLDEST_TESTED.minor..=NEWEST.minor {
            let version = KubeVersion::new(1, minor);
            let mut adapted = (**job).clone();
            if adapt_job(&mut adapted, version).into_result(version, "fuzz").is_err() {
                continue;
            }
            let spec = Spec::of(&adapted);
            let rules = ControllerRules::of(version);
            let _ = local_caveats(&spec, &rules, true);
            let _ = Controller::with_rules(spec, rules).to_start();
        }
        if let Ok(model) = from_job::model_of(job, None, Duration::from_secs(1)) {
            let _ = exact::exact(&model);
            let _ = xtask::odds::odds(&model, 100, 1, 10_000);
        }
    }
});
