//! `krm`: the fix as a KRM function, for kustomize and kpt pipelines.
//!
//! Reads a `ResourceList` (`config.kubernetes.io/v1`) on standard input,
//! puts every item through the engine exactly as `review` does (the same
//! [`Reviewer`]), and writes the `ResourceList` back with the fixes applied
//! and a `results` entry per finding. Items are read and patched as raw
//! values: every field, annotation and key order the engine does not change
//! comes back as it went in (comments, which no host passes on, excepted).
//!
//! Configuration comes from the `functionConfig` ([`function_config`]), or,
//! when there is none, from `--config` or the defaults. Image facts come
//! from its `imageFacts` (and `--images` files); the function makes no
//! network call unless `--resolve` asks for the registries, as in `review`:
//! a containerized function runs without a network (kpt's default, and
//! kustomize's unless `network: true`), so pinned digests and entrypoints
//! belong in `imageFacts` there.
//!
//! The function either succeeds — every item fixed, exit 0, whatever it
//! found — or fails: input that is not a `ResourceList`, a bad
//! `functionConfig`, an item that is not an object. A failure writes the
//! items exactly as they came (or none, when the input could not be read)
//! with one `results` entry of severity `error` saying what and where, and
//! exits 1: never a half-fixed list.

pub(crate) mod function_config;
mod results;

use std::io::{Read, Write};
use std::path::PathBuf;

use clap::Args;
use std::cell::OnceCell;

use serde_json::{Value, json};

use crate::config::{Config, ConfigError};
use crate::review::documents;
use crate::review::locate::Locator;
use crate::review::report::to_yaml;
use crate::review::{FactArgs, Reviewer, reviewer_with};
use function_config::Origin;

/// How errors name standard input.
pub(crate) const INPUT_NAME: &str = "<stdin>";

/// The `apiVersion` written when the input gave none that can be echoed.
pub(crate) const RESOURCE_LIST_API_VERSION: &str = "config.kubernetes.io/v1";

/// `entrypoint-guard krm`: the KRM function.
#[derive(Clone, Debug, Args)]
#[command(
    after_help = "Reads a ResourceList on standard input and writes it back fixed, with results.\n\
    With CONFIG (a kustomize exec plugin: kustomize passes its configuration file), reads and writes a YAML stream \
    of resources instead, and writes the results to standard error.\n\
    Exit status: 0 success (findings or not), 1 the input or its configuration is invalid (the items are written unchanged)."
)]
pub struct KrmArgs {
    /// Run as a kustomize exec plugin: the plugin's configuration file (an EntrypointGuard object);
    /// standard input and output are then YAML streams of resources.
    #[arg(value_name = "CONFIG")]
    pub plugin_config: Option<PathBuf>,
    /// Where image facts come from (besides the functionConfig's imageFacts).
    #[command(flatten)]
    pub facts: FactArgs,
}

/// What the function writes, and whether it succeeded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// The `ResourceList` to write on standard output.
    pub output: String,
    /// Why the function failed (exit 1), also written to standard error;
    /// `None` when it succeeded.
    pub error: Option<String>,
    /// Lines for standard error: the results, when the output has no place
    /// for them (a kustomize exec plugin's YAML stream).
    pub messages: Vec<String>,
}

/// Something that stops the function: one `results` entry of severity
/// `error`; the items go out unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Failure {
    /// What is wrong, with its place: `<stdin>:4:3: functionConfig.mode: …`.
    message: String,
    /// The field of the input it is about, e.g. `items[2]`.
    field: Option<String>,
    /// The index of the item it is about.
    item: Option<usize>,
}

/// A place in the input, waiting for what is wrong there.
pub(crate) struct Place {
    prefix: String,
}

impl Place {
    /// The failure at this place: `field` is the path shown, `message` what is wrong.
    pub(crate) fn says(self, field: &str, message: &str) -> Failure {
        Failure {
            message: format!("{}: {field}: {message}", self.prefix),
            field: Some(field.to_string()),
            item: None,
        }
    }
}

impl Failure {
    /// The place of the node at `pointer` of the input `file`.
    pub(crate) fn at(file: &str, locator: &Locator, pointer: &str) -> Place {
        let prefix = match locator.find(pointer) {
            Some(at) => format!("{file}:{}:{}", at.line, at.column),
            None => file.to_string(),
        };
        Place { prefix }
    }

    /// A configuration error (already located) in the object named `name`.
    pub(crate) fn config(error: &ConfigError, name: &str) -> Failure {
        Failure {
            message: error.to_string(),
            field: Some(name.to_string()),
            item: None,
        }
    }

    fn plain(message: String) -> Failure {
        Failure {
            message,
            field: None,
            item: None,
        }
    }

    fn about_item(mut self, item: usize) -> Failure {
        self.item = Some(item);
        self
    }
}

/// JSON-pointer escaping of one key.
pub(crate) fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Why the function failed (exit 1: `crate::cli` decides).
#[derive(Debug, thiserror::Error)]
pub(crate) enum KrmError {
    /// The input or its configuration is invalid: the output says so in an
    /// `error` result, and carries the items unchanged.
    #[error("{0}")]
    Invalid(String),
    /// The output could not be written.
    #[error("cannot write the output: {0}")]
    Write(#[source] std::io::Error),
}

/// Runs the function: the input from standard input, the output to standard
/// output, the results of a kustomize exec plugin to standard error.
/// `config` applies when the input has no `functionConfig`.
pub(crate) fn run(args: &KrmArgs, config: &Config) -> Result<(), KrmError> {
    let mut input = String::new();
    let outcome = match std::io::stdin().read_to_string(&mut input) {
        Err(e) => {
            let failure = Failure::plain(format!("{INPUT_NAME}: cannot read: {e}"));
            match &args.plugin_config {
                Some(_) => Outcome::failed(String::new(), &failure),
                None => failed(None, &failure, false),
            }
        }
        Ok(_) => match &args.plugin_config {
            None => process(&input, config, &args.facts),
            Some(path) => match std::fs::read_to_string(path) {
                Ok(plugin_config) => process_stream(&input, &plugin_config, &path.display().to_string(), &args.facts),
                Err(e) => Outcome::failed(
                    String::new(),
                    &Failure::plain(format!("{}: cannot read: {e}", path.display())),
                ),
            },
        },
    };
    for line in &outcome.messages {
        eprintln!("entrypoint-guard: {line}");
    }
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(outcome.output.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(KrmError::Write)?;
    match outcome.error {
        None => Ok(()),
        Some(error) => Err(KrmError::Invalid(error)),
    }
}

impl Outcome {
    fn failed(output: String, failure: &Failure) -> Outcome {
        Outcome {
            output,
            error: Some(failure.message.clone()),
            messages: Vec::new(),
        }
    }
}

/// The function over the text of a `ResourceList` (YAML, or JSON — answered
/// in kind). `config` applies when the input has no `functionConfig`;
/// `facts` adds `--images` files and `--resolve`.
pub(crate) fn process(input: &str, config: &Config, facts: &FactArgs) -> Outcome {
    let input = input.strip_prefix('\u{feff}').unwrap_or(input);
    let json = input.trim_start().starts_with('{');
    let list = match parse(input, json) {
        Ok(list) => list,
        Err(failure) => return failed(None, &failure, json),
    };
    let locator = OnceCell::new();
    let locator = || locator.get_or_init(|| Locator::new(input));
    let run = || -> Result<(Vec<Value>, Vec<Value>), Failure> {
        let items: &[Value] = match list.get("items") {
            None | Some(Value::Null) => &[],
            Some(Value::Array(items)) => items,
            Some(_) => return Err(Failure::at(INPUT_NAME, locator(), "/items").says("items", "must be a list")),
        };
        if let Some(i) = items.iter().position(|item| !item.is_object()) {
            let at = Failure::at(INPUT_NAME, locator(), &format!("/items/{i}"));
            return Err(at
                .says(&format!("items[{i}]"), "not a Kubernetes object: expected a mapping")
                .about_item(i));
        }
        let origin = Origin {
            file: INPUT_NAME,
            locator: locator(),
            pointer: "/functionConfig",
            name: "functionConfig",
        };
        let from_function = function_config::read(list.get("functionConfig"), origin)?;
        fix(items, from_function.as_ref().unwrap_or(config), facts)
    };
    match run() {
        Ok((items, results)) => {
            let mut out = list;
            let map = out.as_object_mut().expect("a ResourceList is a mapping");
            map.insert("items".into(), Value::Array(items));
            map.remove("results");
            if !results.is_empty() {
                map.insert("results".into(), Value::Array(results));
            }
            Outcome {
                output: render(&out, json),
                error: None,
                messages: Vec::new(),
            }
        }
        Err(failure) => failed(Some(list), &failure, json),
    }
}

/// The function as a kustomize exec plugin: `input` a YAML stream of
/// resources, `plugin_config` the text of the plugin's configuration file
/// (named `config_name`). The fixed stream is the output and each result a
/// line for standard error; on failure nothing is written.
pub(crate) fn process_stream(input: &str, plugin_config: &str, config_name: &str, facts: &FactArgs) -> Outcome {
    let run = || -> Result<(Vec<Value>, Vec<Value>), Failure> {
        let value: Value = parse_yaml_text(plugin_config, config_name)?;
        let locator = Locator::new(plugin_config);
        let origin = Origin {
            file: config_name,
            locator: &locator,
            pointer: "",
            name: config_name,
        };
        let config = function_config::read(Some(&value), origin)?.unwrap_or_default();
        let mut items = Vec::new();
        for chunk in documents::split(input) {
            let item = documents::parse_yaml(&chunk)
                .map_err(|e| Failure::plain(format!("{INPUT_NAME}:{}:{}: {}", e.line, e.column, e.message)))?;
            match item {
                Value::Object(_) => items.push(item),
                Value::Null => {}
                _ => {
                    return Err(Failure::plain(format!(
                        "{INPUT_NAME}:{}: document {}: not a Kubernetes object: expected a mapping",
                        chunk.first_line, chunk.index
                    )));
                }
            }
        }
        fix(&items, &config, facts)
    };
    match run() {
        Ok((items, results)) => Outcome {
            output: items.iter().map(|item| format!("---\n{}", to_yaml(item))).collect(),
            error: None,
            messages: results.iter().map(results::line).collect(),
        },
        Err(failure) => Outcome::failed(String::new(), &failure),
    }
}

/// A whole YAML text as one value, errors located in `name`.
fn parse_yaml_text(text: &str, name: &str) -> Result<Value, Failure> {
    serde_saphyr::from_str(text).map_err(|e| {
        let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
        let rendered = e.to_string();
        let first = rendered.lines().next().unwrap_or_default();
        let first = first.strip_prefix("error: ").unwrap_or(first);
        let message = first
            .split_once(": ")
            .filter(|(head, _)| head.starts_with("line "))
            .map_or(first, |(_, rest)| rest);
        Failure::plain(format!("{name}:{line}:{column}: {message}"))
    })
}

/// The input parsed and checked to be a `ResourceList`.
fn parse(input: &str, json: bool) -> Result<Value, Failure> {
    if input.trim().is_empty() {
        return Err(Failure::plain(format!(
            "{INPUT_NAME}: no input: expected a ResourceList ({RESOURCE_LIST_API_VERSION})"
        )));
    }
    let list: Value = if json {
        serde_json::from_str(input).map_err(|e| {
            let message = e.to_string();
            let message = message.split(" at line ").next().unwrap_or_default();
            Failure::plain(format!("{INPUT_NAME}:{}:{}: {message}", e.line(), e.column()))
        })?
    } else {
        parse_yaml_text(input, INPUT_NAME)?
    };
    let text = |key: &str| list.get(key).and_then(Value::as_str).unwrap_or("");
    let is_list =
        list.is_object() && text("kind") == "ResourceList" && text("apiVersion").starts_with("config.kubernetes.io/");
    if !is_list {
        return Err(Failure::plain(format!(
            "{INPUT_NAME}: expected a ResourceList (apiVersion {RESOURCE_LIST_API_VERSION}), got kind {:?} apiVersion {:?}",
            text("kind"),
            text("apiVersion")
        )));
    }
    Ok(list)
}

/// Every item through the engine under `config`: the fixed items and the
/// results; or the first failure, and then nothing is fixed.
fn fix(items: &[Value], config: &Config, facts: &FactArgs) -> Result<(Vec<Value>, Vec<Value>), Failure> {
    let reviewer: Reviewer =
        reviewer_with(config.policy(), config, facts).map_err(|e| Failure::plain(e.to_string()))?;
    let objects: Vec<&Value> = items.iter().collect();
    let inspections = reviewer.inspect(&objects);
    let mut fixed = Vec::with_capacity(items.len());
    let mut results = Vec::new();
    for (i, (item, inspection)) in items.iter().zip(inspections).enumerate() {
        let mut out = item.clone();
        json_patch::patch(&mut out, &inspection.patch).map_err(|e| {
            Failure::plain(format!(
                "items[{i}]: the engine's patch does not apply (a bug; please report it): {e}"
            ))
            .about_item(i)
        })?;
        results.extend(inspection.findings.iter().map(|f| results::of_finding(item, f)));
        fixed.push(out);
    }
    Ok((fixed, results))
}

/// The output of a failed run: `list` as it came (or an empty
/// `ResourceList` when the input could not be read as one) with the
/// failure as its only result.
fn failed(list: Option<Value>, failure: &Failure, json: bool) -> Outcome {
    let mut out = match list {
        Some(list @ Value::Object(_)) => list,
        _ => json!({"apiVersion": RESOURCE_LIST_API_VERSION, "kind": "ResourceList", "items": []}),
    };
    let items = out.get("items").and_then(Value::as_array).cloned().unwrap_or_default();
    let result = results::of_failure(&items, failure);
    let map = out.as_object_mut().expect("a mapping");
    map.insert("results".into(), Value::Array(vec![result]));
    Outcome::failed(render(&out, json), failure)
}

fn render(list: &Value, json: bool) -> String {
    if json {
        serde_json::to_string_pretty(list).unwrap_or_default() + "\n"
    } else {
        to_yaml(list)
    }
}
