//! What a server-side dry run would change in a live object: the two as
//! JSON, compared path by path. A leaf, used by `apply`'s dry-run mode.

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::Value;

/// Where the live object and the dry run's answer differ, without the
/// noise; none means `unchanged`.
pub fn changed_paths<K: Serialize>(before: &K, after: &K) -> Result<Vec<String>> {
    Ok(differences(&comparable(before)?, &comparable(after)?))
}

/// The object as JSON, without what changes when nobody changes anything:
/// managedFields (timestamps), resourceVersion, generation, status.
fn comparable<K: Serialize>(object: &K) -> Result<Value> {
    let mut v = serde_json::to_value(object).context("an object as JSON")?;
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for noise in ["managedFields", "resourceVersion", "generation"] {
            meta.remove(noise);
        }
    }
    if let Some(map) = v.as_object_mut() {
        map.remove("status");
    }
    Ok(v)
}

/// The paths (`spec.activeDeadlineSeconds`, `metadata.labels.x`) where two
/// values differ; lists are compared whole.
fn differences(before: &Value, after: &Value) -> Vec<String> {
    fn walk(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
                keys.sort();
                keys.dedup();
                for k in keys {
                    let sub = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                    walk(&sub, x.get(k).unwrap_or(&Value::Null), y.get(k).unwrap_or(&Value::Null), out);
                }
            }
            (x, y) if x != y => out.push(path.to_owned()),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk("", before, after, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn noise_is_not_a_change_and_changes_are_named_by_path() {
        let live = json!({"metadata": {"name": "j", "resourceVersion": "7", "generation": 1,
            "managedFields": [{"time": "a"}], "labels": {"a": "1"}},
            "spec": {"activeDeadlineSeconds": 600, "template": {"x": [1, 2]}}, "status": {"active": 1}});
        let same = json!({"metadata": {"name": "j", "resourceVersion": "7", "generation": 2,
            "managedFields": [{"time": "b"}], "labels": {"a": "1"}},
            "spec": {"activeDeadlineSeconds": 600, "template": {"x": [1, 2]}}, "status": {}});
        let changed = json!({"metadata": {"name": "j", "labels": {"a": "1", "b": "2"}},
            "spec": {"activeDeadlineSeconds": 300, "template": {"x": [2, 1]}}});
        let c = |v: &Value| comparable(v).unwrap();
        assert!(differences(&c(&live), &c(&same)).is_empty());
        assert_eq!(
            differences(&c(&live), &c(&changed)),
            ["metadata.labels.b", "spec.activeDeadlineSeconds", "spec.template.x"]
        );
    }
}
