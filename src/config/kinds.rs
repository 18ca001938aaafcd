//! `customKinds`: the custom resources whose pod templates the engine
//! inspects like a Deployment's. Each entry is a preset's name or a kind:
//!
//! ```yaml
//! customKinds:
//!   - argo-rollouts                 # a preset (engine::kinds::PRESETS)
//!   - group: example.com            # a kind of your own
//!     kind: Widget
//!     plural: widgets
//!     versions: [v1]
//!     podSpecPaths: [/spec/template/spec, /spec/tasks/*/template/spec]
//! ```

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::engine::kinds::{self, DuplicateKind, Kind, Kinds, PRESETS, Pattern};

/// One entry of `customKinds`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum CustomKind {
    /// A preset, by name (`argo-rollouts`, `knative-serving`, ...).
    Preset(String),
    /// A kind given in full.
    Kind(CustomKindEntry),
}

/// A custom kind given in full.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CustomKindEntry {
    /// The API group, e.g. `argoproj.io`.
    pub group: Name,
    /// The kind, e.g. `Rollout`.
    pub kind: Name,
    /// The resource (lowercase plural), e.g. `rollouts`: webhook rules,
    /// RBAC and `audit` name it.
    pub plural: Name,
    /// The versions it is served under, preferred first.
    pub versions: Versions,
    /// JSON pointers to its pod specs; `*` stands for every list element or map member.
    pub pod_spec_paths: Paths,
}

impl CustomKind {
    /// The kinds it stands for.
    pub(crate) fn kinds(&self) -> Vec<Kind> {
        match self {
            CustomKind::Preset(name) => kinds::presets::preset(name)
                .map(|p| p.kinds.iter().map(|row| Kind::from_row(row, true)).collect())
                .unwrap_or_default(),
            CustomKind::Kind(entry) => vec![Kind {
                kind: entry.kind.0.clone(),
                group: entry.group.0.clone(),
                legacy_groups: Vec::new(),
                versions: entry.versions.0.clone(),
                plural: entry.plural.0.clone(),
                pod_specs: entry.pod_spec_paths.0.clone(),
                custom: true,
            }],
        }
    }
}

/// The table of kinds `entries` make: the built-in kinds and theirs.
pub(crate) fn table(entries: &[CustomKind]) -> Result<Kinds, DuplicateKind> {
    Kinds::with_custom(entries.iter().flat_map(CustomKind::kinds).collect())
}

impl<'de> Deserialize<'de> for CustomKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(EntryVisitor)
    }
}

struct EntryVisitor;

impl<'de> Visitor<'de> for EntryVisitor {
    type Value = CustomKind;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a preset name or a map of group, kind, plural, versions and podSpecPaths")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<CustomKind, E> {
        match kinds::presets::preset(name) {
            Some(preset) => Ok(CustomKind::Preset(preset.name.to_string())),
            None => {
                let names: Vec<&str> = PRESETS.iter().map(|p| p.name).collect();
                Err(E::custom(format!(
                    "unknown preset `{name}`, expected one of {}, or a map of group, kind, plural, versions and podSpecPaths",
                    names.join(", ")
                )))
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<CustomKind, A::Error> {
        CustomKindEntry::deserialize(de::value::MapAccessDeserializer::new(map)).map(CustomKind::Kind)
    }
}

/// A non-empty name without blanks or slashes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Name(pub String);

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.is_empty() || s.contains(|c: char| c.is_whitespace() || c == '/') {
            return Err(de::Error::custom(format!(
                "{s:?} is not a name: it must be non-empty, without blanks or '/'"
            )));
        }
        Ok(Name(s))
    }
}

/// A non-empty list of versions, preferred first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Versions(pub Vec<String>);

impl<'de> Deserialize<'de> for Versions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let versions: Vec<Name> = Vec::deserialize(d)?;
        if versions.is_empty() {
            return Err(de::Error::custom("give at least one version, e.g. [v1]"));
        }
        Ok(Versions(versions.into_iter().map(|v| v.0).collect()))
    }
}

/// A non-empty list of pod-spec path patterns, checked when read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paths(pub Vec<Pattern>);

impl Serialize for Paths {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(ToString::to_string))
    }
}

impl<'de> Deserialize<'de> for Paths {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let texts: Vec<String> = Vec::deserialize(d)?;
        if texts.is_empty() {
            return Err(de::Error::custom("give at least one path, e.g. [/spec/template/spec]"));
        }
        texts
            .iter()
            .map(|t| Pattern::parse(t).map_err(de::Error::custom))
            .collect::<Result<_, _>>()
            .map(Paths)
    }
}
