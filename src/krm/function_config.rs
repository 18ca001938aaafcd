//! The function's configuration, from the ResourceList's `functionConfig`.
//!
//! Two shapes are accepted, both read with the configuration file's rules
//! (every key optional, an unknown key or bad value an error naming the
//! field and its line in the input):
//!
//! - an `EntrypointGuard` object (`entrypoint-guard.io/v1alpha1`) whose keys
//!   beside `apiVersion`, `kind` and `metadata` are the configuration file's
//!   (`mode`, `imageFacts`, …) — what a kustomization's `transformers` entry
//!   or `kpt fn eval --fn-config` names;
//! - a `ConfigMap` whose `data` maps configuration field paths, dotted for
//!   nested keys (`mode`, `pinning.enabled`), to their values written as YAML
//!   (`audit`, `false`, `{app:1: {entrypoint: [/chalk, exec, --]}}`; empty
//!   for the default) — what `kpt fn eval --exec … -- mode=audit` sends.

use serde_json::{Map, Value};

use super::{Failure, Place, escape};
use crate::config::{Config, Locate, Spot, Step};
use crate::review::locate::Locator;

/// The `apiVersion` of the function's own configuration object.
pub(crate) const API_VERSION: &str = "entrypoint-guard.io/v1alpha1";
/// The `kind` of the function's own configuration object.
pub(crate) const KIND: &str = "EntrypointGuard";

/// Where a configuration object sits: in a ResourceList's `functionConfig`,
/// or alone in a file (a kustomize exec plugin's configuration).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Origin<'a> {
    /// The name errors give the text, e.g. `<stdin>`.
    pub file: &'a str,
    /// Positions in that text.
    pub locator: &'a Locator,
    /// JSON pointer to the object in the text: `/functionConfig` or `""`.
    pub pointer: &'a str,
    /// How errors name the object: `functionConfig`, or the file.
    pub name: &'a str,
}

impl Origin<'_> {
    fn at(&self, pointer: &str) -> Place {
        Failure::at(self.file, self.locator, &format!("{}{pointer}", self.pointer))
    }

    fn field(&self, path: &str) -> String {
        if path.is_empty() {
            self.name.to_string()
        } else {
            format!("{}.{path}", self.name)
        }
    }

    fn position(&self, pointer: &str, spot: Spot) -> Option<(usize, usize)> {
        position(self.locator, &format!("{}{pointer}", self.pointer), spot)
    }
}

/// The configuration `function_config` gives, or `None` when there is none
/// (absent or `null`: the `--config` file or the defaults apply). `origin`
/// places errors in the text it came from.
pub(crate) fn read(function_config: Option<&Value>, origin: Origin<'_>) -> Result<Option<Config>, Failure> {
    let Some(fc) = function_config.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let Some(object) = fc.as_object() else {
        return Err(origin.at("").says(&origin.field(""), "must be a mapping"));
    };
    let text = |key: &str| object.get(key).and_then(Value::as_str).unwrap_or("");
    match (text("apiVersion"), text("kind")) {
        (API_VERSION, KIND) => {
            let keys: Map<String, Value> = object
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "apiVersion" | "kind" | "metadata"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let locate = |steps: &[Step], spot: Spot| origin.position(&pointer(steps), spot);
            parse(&Value::Object(keys), origin, &locate).map(Some)
        }
        ("v1", "ConfigMap") => from_config_map(object.get("data"), origin).map(Some),
        (api_version, kind) => Err(origin.at("").says(
            &origin.field(""),
            &format!(
                "{kind:?} ({api_version:?}) is not a configuration this function reads: give an {KIND} \
                 ({API_VERSION}) holding the configuration file's keys, or a v1 ConfigMap whose data maps \
                 field paths to values"
            ),
        )),
    }
}

/// A ConfigMap's `data`: each key a dotted field path, each value YAML.
fn from_config_map(data: Option<&Value>, origin: Origin<'_>) -> Result<Config, Failure> {
    let data = match data {
        None | Some(Value::Null) => return Ok(Config::default()),
        Some(Value::Object(data)) => data,
        Some(_) => {
            return Err(origin
                .at("/data")
                .says(&origin.field("data"), "must be a mapping of field paths to values"));
        }
    };
    let mut tree = Map::new();
    for (key, value) in data {
        let at = format!("/data/{}", escape(key));
        let fail = |message: &str| origin.at(&at).says(&origin.field(&format!("data.{key}")), message);
        let value = match value {
            // `key=` (an empty value) leaves the field at its default.
            Value::String(text) if text.trim().is_empty() => continue,
            // Data values are strings; a hand-written ConfigMap may hold a bare scalar.
            Value::String(text) => serde_saphyr::from_str::<Value>(text)
                .map_err(|e| fail(&format!("not a YAML value: {}", first_line(&e.to_string()))))?,
            other => other.clone(),
        };
        let path: Vec<&str> = key.split('.').collect();
        if path.iter().any(|p| p.is_empty()) {
            return Err(fail("not a field path: write keys joined by '.', e.g. pinning.enabled"));
        }
        insert(&mut tree, &path, value).map_err(|()| fail("sets a field another key also sets"))?;
    }
    // An error names the configuration field; place it at the data key that set it.
    let locate = |steps: &[Step], spot: Spot| {
        let keys: Vec<&str> = steps
            .iter()
            .map_while(|s| match s {
                Step::Key(k) => Some(k.as_str()),
                Step::Index(_) => None,
            })
            .collect();
        (1..=keys.len())
            .rev()
            .map(|n| keys[..n].join("."))
            .find(|key| data.contains_key(key))
            .and_then(|key| origin.position(&format!("/data/{}", escape(&key)), spot))
    };
    parse(&Value::Object(tree), origin, &locate)
}

/// Sets `path` in `tree` to `value`, making the maps on the way; `Err` when
/// a key on the way, or the field itself, was already set.
fn insert(tree: &mut Map<String, Value>, path: &[&str], value: Value) -> Result<(), ()> {
    let (last, parents) = path.split_last().ok_or(())?;
    let mut at = tree;
    for key in parents {
        let next = at.entry(key.to_string()).or_insert_with(|| Value::Object(Map::new()));
        at = next.as_object_mut().ok_or(())?;
    }
    if at.contains_key(*last) {
        return Err(());
    }
    at.insert(last.to_string(), value);
    Ok(())
}

fn parse(value: &Value, origin: Origin<'_>, locate: &Locate<'_>) -> Result<Config, Failure> {
    Config::from_value(value, origin.file, locate).map_err(|e| Failure::config(&e, origin.name))
}

/// The JSON pointer of a field path.
fn pointer(steps: &[Step]) -> String {
    steps
        .iter()
        .map(|s| match s {
            Step::Key(k) => format!("/{}", escape(k)),
            Step::Index(i) => format!("/{i}"),
        })
        .collect()
}

/// Where the key (or the value) of the entry at `pointer` is written, else
/// where its nearest ancestor is.
fn position(locator: &Locator, pointer: &str, spot: Spot) -> Option<(usize, usize)> {
    let key = || locator.keys().find(|(p, _)| *p == pointer).map(|(_, at)| at);
    match spot {
        Spot::Key => key().or_else(|| locator.find(pointer)),
        Spot::Value => locator.find(pointer),
    }
    .map(|at| (at.line, at.column))
}

/// The message line of a rendered serde-saphyr error.
fn first_line(rendered: &str) -> &str {
    let first = rendered.lines().next().unwrap_or_default();
    first.strip_prefix("error: ").unwrap_or(first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Mode, Scope};

    fn read_text(text: &str) -> Result<Option<Config>, Failure> {
        let value: Value = serde_saphyr::from_str(text).unwrap();
        let locator = Locator::new(text);
        let origin = Origin {
            file: "<stdin>",
            locator: &locator,
            pointer: "/functionConfig",
            name: "functionConfig",
        };
        read(value.get("functionConfig"), origin)
    }

    #[test]
    fn config_map_keys_are_dotted_paths_to_yaml_values() {
        let config = read_text(
            "functionConfig:\n  apiVersion: v1\n  kind: ConfigMap\n  data:\n    mode: audit\n    scope: pods\n    \
             pinning.keepTag: 'false'\n    pinning.enabled: 'true'\n    wrapper: '[/chalk, exec]'\n    unknownImages: ''\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!((config.mode, config.scope), (Mode::Audit, Scope::Pods));
        assert!(config.pinning.enabled && !config.pinning.keep_tag);
        assert_eq!(config.wrapper.0, ["/chalk", "exec"]);
        assert_eq!(
            config.unknown_images,
            Config::default().unknown_images,
            "empty is the default"
        );
        let none = read_text("functionConfig:\n  apiVersion: v1\n  kind: ConfigMap\n")
            .unwrap()
            .unwrap();
        assert_eq!(none, Config::default());
        assert_eq!(read_text("functionConfig: null\n").unwrap(), None);
        assert_eq!(read_text("items: []\n").unwrap(), None);
    }

    #[test]
    fn config_map_errors_name_the_data_key_and_its_line() {
        let error = |text: &str| read_text(text).unwrap_err().message;
        let head = "functionConfig:\n  apiVersion: v1\n  kind: ConfigMap\n  data:\n";
        assert_eq!(
            error(&format!("{head}    pinning: 'true'\n    pinning.enabled: 'false'\n")),
            "<stdin>:6:22: functionConfig.data.pinning.enabled: sets a field another key also sets"
        );
        assert_eq!(
            error(&format!("{head}    pinning..enabled: 'false'\n")),
            "<stdin>:5:23: functionConfig.data.pinning..enabled: not a field path: write keys joined by '.', e.g. pinning.enabled"
        );
        let e = error(&format!("{head}    wrapper: '[/chalk'\n"));
        assert!(
            e.starts_with("<stdin>:5:14: functionConfig.data.wrapper: not a YAML value"),
            "{e}"
        );
        let e = error(&format!("{head}    scope: pods\n    pinning.bogus: 'x'\n"));
        assert!(
            e.starts_with("<stdin>:6:5: pinning.bogus: unknown field `bogus`"),
            "{e}"
        );
    }

    #[test]
    fn an_entrypoint_guard_object_holds_the_config_file_keys() {
        let text = "functionConfig:\n  apiVersion: entrypoint-guard.io/v1alpha1\n  kind: EntrypointGuard\n  \
                    metadata: {name: g}\n  mode: audit\n  imageFacts:\n    app:1: {digest: sha256:abc}\n";
        let e = read_text(text).unwrap_err().message;
        assert!(e.starts_with("<stdin>:7:5: imageFacts.app:1: digest:"), "{e}");
        let ok = read_text(&text.replace("    app:1: {digest: sha256:abc}\n", "    app:1: {entrypoint: []}\n"))
            .unwrap()
            .unwrap();
        assert_eq!(ok.mode, Mode::Audit);
        assert!(ok.image_facts.contains_key("app:1"));
        let e = read_text("functionConfig: [a]\n").unwrap_err().message;
        assert_eq!(e, "<stdin>:1:17: functionConfig: must be a mapping");
    }
}
