//! Helpers for engine tests: pods, facts and applying the engine's patch.

#![allow(dead_code)]

use entrypoint_guard::engine::{self, Inspection, Mode, Policy};
use entrypoint_guard::image::{Facts, ImageFacts};
use serde_json::{Value, json};

/// `["a", "b"]` as owned strings.
pub fn v(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// A Pod with one container named `app` running `image`.
pub fn pod(image: &str, command: Option<&[&str]>, args: Option<&[&str]>) -> Value {
    let mut container = json!({"name": "app", "image": image});
    if let Some(c) = command {
        container["command"] = json!(c);
    }
    if let Some(a) = args {
        container["args"] = json!(a);
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "demo"},
           "spec": {"containers": [container]}})
}

/// Facts saying `image` has Entrypoint `entrypoint`.
pub fn facts(image: &str, entrypoint: &[&str], digest: Option<&str>) -> Facts {
    let mut f = Facts::new();
    f.insert(image, ImageFacts::known(v(entrypoint), digest.map(str::to_string)));
    f
}

/// Runs the engine in fix mode and applies its patch; returns the result.
pub fn fixed(object: &Value, facts: &Facts, policy: &Policy) -> (Value, Inspection) {
    let inspection = engine::inspect(object, facts, policy, Mode::Fix);
    let mut out = object.clone();
    json_patch::patch(&mut out, &inspection.patch).expect("the engine's patch applies");
    (out, inspection)
}

/// A container's `command` and `args` after the fix (None when absent).
pub fn command_line(object: &Value, pointer: &str) -> (Option<Vec<String>>, Option<Vec<String>>) {
    let c = object.pointer(pointer).expect("container exists");
    let get = |f: &str| c.get(f).map(|v| serde_json::from_value(v.clone()).expect("strings"));
    (get("command"), get("args"))
}
