//! The policy the engine applies: what configuration means to the decision.

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

use super::kinds::Kinds;
use crate::image::Reference;

/// A word that is not one of the values a setting takes (`--mode`,
/// `--strategy`, `--scope`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not one of {choices}")]
pub struct UnknownValue {
    /// What was written.
    pub value: String,
    /// The values it may take, e.g. `off, audit, fix`.
    pub choices: &'static str,
}

/// What a front end does with the findings for an object.
///
/// Ordered from least to most intrusive, so a ceiling is a `min`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Leave the object alone and report nothing.
    Off,
    /// Report the findings; never change the object.
    Audit,
    /// Change the object and report what changed.
    #[default]
    Fix,
}

impl Mode {
    /// The lowercase name used in configuration, annotations and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Audit => "audit",
            Mode::Fix => "fix",
        }
    }

    /// Parses `off`, `audit` or `fix`.
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "off" => Some(Mode::Off),
            "audit" => Some(Mode::Audit),
            "fix" => Some(Mode::Fix),
            _ => None,
        }
    }
}

impl std::str::FromStr for Mode {
    type Err = UnknownValue;

    fn from_str(s: &str) -> Result<Self, UnknownValue> {
        Mode::parse(s).ok_or_else(|| UnknownValue {
            value: s.to_string(),
            choices: "off, audit, fix",
        })
    }
}

/// Which fix to prefer for a wrapped image.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// The fix the image config shows to be right.
    #[default]
    Auto,
    /// Prefer moving `command` into `args` where that is right.
    Args,
    /// Prefer prepending the wrapper.
    Prepend,
}

impl std::str::FromStr for Strategy {
    type Err = UnknownValue;

    fn from_str(s: &str) -> Result<Self, UnknownValue> {
        match s {
            "auto" => Ok(Strategy::Auto),
            "args" => Ok(Strategy::Args),
            "prepend" => Ok(Strategy::Prepend),
            _ => Err(UnknownValue {
                value: s.to_string(),
                choices: "auto, args, prepend",
            }),
        }
    }
}

/// What to do with a `command` on an image whose config is unknown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownImages {
    /// Report it, change nothing.
    #[default]
    Report,
    /// Assume the bare wrapper: move `command` into `args`.
    Args,
    /// Assume a wrapper: prepend the bare wrapper with `--exec-command-name`.
    Prepend,
    /// Say nothing.
    Ignore,
}

/// Which objects may be patched.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Top-level workloads and Pods are fixed (controller-owned objects never are).
    #[default]
    Workloads,
    /// Only Pods are ever patched; every other kind is reported. For GitOps
    /// tools that compare the live workload with git.
    Pods,
}

impl Scope {
    /// The lowercase name used in configuration and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Workloads => "workloads",
            Scope::Pods => "pods",
        }
    }

    /// Parses `workloads` or `pods`.
    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "workloads" => Some(Scope::Workloads),
            "pods" => Some(Scope::Pods),
            _ => None,
        }
    }
}

impl std::str::FromStr for Scope {
    type Err = UnknownValue;

    fn from_str(s: &str) -> Result<Self, UnknownValue> {
        Scope::parse(s).ok_or_else(|| UnknownValue {
            value: s.to_string(),
            choices: "workloads, pods",
        })
    }
}

/// Which images the policy applies to, by glob over the reference.
#[derive(Clone, Debug)]
pub struct ImageFilter {
    include: Option<GlobSet>,
    exclude: GlobSet,
}

impl Default for ImageFilter {
    fn default() -> Self {
        ImageFilter {
            include: None,
            exclude: GlobSet::empty(),
        }
    }
}

impl ImageFilter {
    /// Builds a filter; an empty `include` list includes every image.
    /// Patterns match the reference as written or its canonical form
    /// (`docker.io/library/nginx:1.25`), so `docker.io/library/*` works for `nginx`.
    pub fn new(include: &[String], exclude: &[String]) -> Result<Self, globset::Error> {
        let build = |patterns: &[String]| -> Result<GlobSet, globset::Error> {
            let mut b = GlobSetBuilder::new();
            for p in patterns {
                b.add(Glob::new(p)?);
            }
            b.build()
        };
        Ok(ImageFilter {
            include: if include.is_empty() {
                None
            } else {
                Some(build(include)?)
            },
            exclude: build(exclude)?,
        })
    }

    /// Whether the policy applies to `image`.
    pub fn applies_to(&self, image: &str) -> bool {
        // The default filter (no include, no exclude) takes every image;
        // say so without parsing the reference twice per container.
        if self.include.is_none() && self.exclude.is_empty() {
            return true;
        }
        let canonical = Reference::parse(image).map(|r| r.canonical()).ok();
        let matches = |set: &GlobSet| set.is_match(image) || canonical.as_deref().is_some_and(|c| set.is_match(c));
        let included = self.include.as_ref().is_none_or(matches);
        included && !matches(&self.exclude)
    }
}

/// Everything the engine needs to decide; built from configuration.
#[derive(Clone, Debug)]
pub struct Policy {
    /// The mode for objects that do not override it.
    pub mode: Mode,
    /// Which objects may be patched: workloads and Pods, or Pods only.
    pub scope: Scope,
    /// The preferred fix.
    pub strategy: Strategy,
    /// The wrapper prefix chalk writes, `["/chalk", "exec"]`.
    pub wrapper: Vec<String>,
    /// What to do when the image config is unknown.
    pub unknown_images: UnknownImages,
    /// Which images the policy applies to.
    pub images: ImageFilter,
    /// Whether to pin tags to digests when the digest is known.
    pub pin_digests: bool,
    /// Keep the tag next to the digest (`repo:tag@sha256:…`).
    pub keep_tag: bool,
    /// Prefix of the annotations the engine reads and writes.
    pub annotation_prefix: String,
    /// The kinds inspected: the built-in ones and the configured custom kinds.
    pub kinds: Kinds,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            mode: Mode::Fix,
            scope: Scope::Workloads,
            strategy: Strategy::Auto,
            wrapper: vec!["/chalk".to_string(), "exec".to_string()],
            unknown_images: UnknownImages::Report,
            images: ImageFilter::default(),
            pin_digests: true,
            keep_tag: true,
            annotation_prefix: "entrypoint-guard.io".to_string(),
            kinds: Kinds::builtin(),
        }
    }
}

impl Policy {
    /// The annotation that overrides the mode for one object: `<prefix>/mode`.
    pub fn mode_annotation(&self) -> String {
        format!("{}/mode", self.annotation_prefix)
    }

    /// The annotation recording resolved digests: `<prefix>/resolved-images`.
    pub fn resolved_annotation(&self) -> String {
        format!("{}/resolved-images", self.annotation_prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_matches_written_and_canonical_forms() {
        let f = ImageFilter::new(&[], &["docker.io/library/*".into()]).unwrap();
        assert!(!f.applies_to("nginx:1.25"));
        assert!(f.applies_to("registry.example/app:1"));
        let f = ImageFilter::new(&["registry.example/**".into()], &[]).unwrap();
        assert!(f.applies_to("registry.example/team/app:1"));
        assert!(!f.applies_to("nginx"));
    }

    #[test]
    fn modes_order_from_off_to_fix() {
        assert_eq!(Mode::Fix.min(Mode::Audit), Mode::Audit);
        assert_eq!(Mode::parse("audit"), Some(Mode::Audit));
        assert_eq!(Mode::parse("Audit"), None);
    }
}
