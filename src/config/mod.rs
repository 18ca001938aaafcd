//! Configuration: policy, server and registry settings, with defaults and
//! validation. Every field has a default, so no file is needed; an unknown
//! key or a bad value is an error naming the field path and the line.

pub(crate) mod credentials;
pub mod kinds;
pub(crate) mod registry;
pub mod server;
pub(crate) mod values;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::engine::{ImageFilter, Mode, Policy, Scope, Strategy, UnknownImages};
use crate::image::{Entrypoint, Facts, ImageFacts, PlatformEntrypoint, Reference, ReferenceError};
pub use credentials::{CredentialsConfig, HostPattern, Mirror, Region, RegistryHost, Toggle};
pub use kinds::CustomKind;
pub use registry::RegistryConfig;
pub use server::ServerConfig;
pub use values::{Pattern, Prefix, Span, SpanError, WrapperPrefix};

/// The whole configuration file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Config {
    /// `fix`, `audit` or `off`.
    pub mode: Mode,
    /// `workloads` (top-level workloads and Pods are fixed) or `pods` (only Pods).
    pub scope: Scope,
    /// `auto`, `args` or `prepend`.
    pub strategy: Strategy,
    /// The chalk wrapper prefix, `["/chalk", "exec"]`.
    pub wrapper: WrapperPrefix,
    /// What to do for images whose config is unknown.
    pub unknown_images: UnknownImages,
    /// Which images the policy applies to.
    pub images: ImagesConfig,
    /// Digest pinning.
    pub pinning: PinningConfig,
    /// Prefix of the annotations read and written.
    pub annotation_prefix: Prefix,
    /// Offline image facts: image reference as written → facts.
    pub image_facts: BTreeMap<String, ImageFactsEntry>,
    /// Custom resources with pod templates, inspected like built-in kinds:
    /// preset names or `{group, kind, plural, versions, podSpecPaths}`.
    pub custom_kinds: Vec<CustomKind>,
    /// The webhook server.
    pub server: ServerConfig,
    /// Registry access.
    pub registry: RegistryConfig,
}

/// Image include/exclude globs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct ImagesConfig {
    /// Globs an image must match (empty: every image).
    pub include: Vec<Pattern>,
    /// Globs that exclude an image.
    pub exclude: Vec<Pattern>,
}

/// Digest pinning settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct PinningConfig {
    /// Pin tags to digests when the digest is known.
    pub enabled: bool,
    /// Keep the tag next to the digest (`repo:tag@sha256:…`).
    pub keep_tag: bool,
}

impl Default for PinningConfig {
    fn default() -> Self {
        PinningConfig {
            enabled: true,
            keep_tag: true,
        }
    }
}

/// Facts about one image, given by hand (config `imageFacts` or `--images FILE`).
///
/// Either `entrypoint` (every platform) or `platforms` (per platform), not both.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImageFactsEntry {
    /// The image config's Entrypoint (`[]` for none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// Per-platform Entrypoints of a multi-arch image, `os/arch` → Entrypoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platforms: Option<BTreeMap<String, Vec<String>>>,
    /// The digest the tag resolves to, `sha256:…`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        let policy = Policy::default();
        Config {
            mode: policy.mode,
            scope: policy.scope,
            strategy: policy.strategy,
            wrapper: WrapperPrefix(policy.wrapper),
            unknown_images: policy.unknown_images,
            images: ImagesConfig::default(),
            pinning: PinningConfig::default(),
            annotation_prefix: Prefix(policy.annotation_prefix),
            image_facts: BTreeMap::new(),
            custom_kinds: Vec::new(),
            server: ServerConfig::default(),
            registry: RegistryConfig::default(),
        }
    }
}

/// One step of a field path: a map key or a list index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// A map key.
    Key(String),
    /// A list index.
    Index(usize),
}

/// Finds the line and column of a field (its key or its value) in the text a
/// value was read from.
pub(crate) type Locate<'a> = dyn Fn(&[Step], Spot) -> Option<(usize, usize)> + 'a;

/// Which part of a map entry an error points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Spot {
    /// The key (an unknown field).
    Key,
    /// The value (a bad value).
    Value,
}

/// A configuration or image-facts file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A key or value is wrong.
    #[error("{file}:{line}:{column}: {field}: {message}")]
    Invalid {
        /// The file (or `<config>` for a string).
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The field path, e.g. `pinning.keepTag`.
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// Parses YAML into `T`, reporting the field path and line of any error.
pub fn parse_yaml<T: for<'de> Deserialize<'de> + Default>(text: &str, file: &str) -> Result<T, ConfigError> {
    // A file of only comments and blank lines holds no document: defaults.
    if text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#') || l.trim() == "---")
    {
        return Ok(T::default());
    }
    let path = RefCell::new(String::new());
    serde_saphyr::with_deserializer_from_str(text, |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            *path.borrow_mut() = e.path().to_string();
            e.into_inner()
        })
    })
    .map_err(|e| {
        let (line, column) = e
            .location()
            .map_or((1, 1), |l| (l.line() as usize, l.column() as usize));
        // The rendered error repeats the location and a snippet; keep the message line.
        let rendered = e.to_string();
        let first = rendered.lines().next().unwrap_or_default();
        let message = strip_location(first.strip_prefix("error: ").unwrap_or(first)).to_string();
        let field = path.borrow().clone();
        ConfigError::Invalid {
            file: file.to_string(),
            line,
            column,
            field: if field.is_empty() { ".".into() } else { field },
            message,
        }
    })
}

impl Config {
    /// Reads a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        Config::from_yaml(&text, &path.display().to_string())
    }

    /// Parses configuration text; `file` names it in errors.
    pub fn from_yaml(text: &str, file: &str) -> Result<Config, ConfigError> {
        let config: Config = parse_yaml(text, file)?;
        config.check(file)?;
        Ok(config)
    }

    /// Reads a configuration given as an already-parsed value (a KRM
    /// function's `functionConfig`), checked as a file is. `file` names the
    /// text it came from; `locate` finds the line and column there of a
    /// field (its key, or its value), given its path.
    pub(crate) fn from_value(
        value: &serde_json::Value,
        file: &str,
        locate: &Locate<'_>,
    ) -> Result<Config, ConfigError> {
        let invalid = |steps: &[Step], field: String, message: String| {
            // As when reading a file: an unknown field is shown at its key, a bad value at the value.
            let spot = if message.starts_with("unknown field") || steps.first() == Some(&Step::Key("imageFacts".into()))
            {
                Spot::Key
            } else {
                Spot::Value
            };
            let (line, column) = locate(steps, spot).unwrap_or((1, 1));
            ConfigError::Invalid {
                file: file.to_string(),
                line,
                column,
                field,
                message,
            }
        };
        let config: Config = serde_path_to_error::deserialize(value).map_err(|e| {
            let steps: Vec<Step> = e
                .path()
                .iter()
                .filter_map(|segment| match segment {
                    serde_path_to_error::Segment::Map { key } => Some(Step::Key(key.clone())),
                    serde_path_to_error::Segment::Seq { index } => Some(Step::Index(*index)),
                    _ => None,
                })
                .collect();
            invalid(&steps, e.path().to_string(), e.into_inner().to_string())
        })?;
        if let Some((image, message)) = config.bad_image_facts() {
            let steps = [Step::Key("imageFacts".into()), Step::Key(image.clone())];
            return Err(invalid(&steps, format!("imageFacts.{image}"), message));
        }
        if let Err((key, message)) = config.server.check() {
            let steps = [Step::Key("server".into()), Step::Key(key.into())];
            return Err(invalid(&steps, format!("server.{key}"), message));
        }
        if let Err(e) = kinds::table(&config.custom_kinds) {
            return Err(invalid(
                &[Step::Key("customKinds".into())],
                "customKinds".into(),
                e.to_string(),
            ));
        }
        Ok(config)
    }

    fn check(&self, file: &str) -> Result<(), ConfigError> {
        if let Some((image, message)) = self.bad_image_facts() {
            return Err(ConfigError::Invalid {
                file: file.to_string(),
                line: line_of(file, &image),
                column: 1,
                field: format!("imageFacts.{image}"),
                message,
            });
        }
        if let Err((key, message)) = self.server.check() {
            return Err(ConfigError::Invalid {
                file: file.to_string(),
                line: line_of(file, key),
                column: 1,
                field: format!("server.{key}"),
                message,
            });
        }
        if let Err(e) = kinds::table(&self.custom_kinds) {
            return Err(ConfigError::Invalid {
                file: file.to_string(),
                line: line_of(file, "customKinds"),
                column: 1,
                field: "customKinds".into(),
                message: e.to_string(),
            });
        }
        Ok(())
    }

    /// The kinds inspected: the built-in ones and `customKinds`.
    pub(crate) fn kinds(&self) -> Result<crate::engine::Kinds, crate::engine::kinds::DuplicateKind> {
        kinds::table(&self.custom_kinds)
    }

    /// The first `imageFacts` entry that is wrong, and why.
    fn bad_image_facts(&self) -> Option<(String, String)> {
        self.image_facts
            .iter()
            .find_map(|(image, entry)| entry.check(image).err().map(|e| (image.clone(), e.to_string())))
    }

    /// The engine's policy.
    pub fn policy(&self) -> Policy {
        let globs = |p: &[Pattern]| p.iter().map(|p| p.0.clone()).collect::<Vec<_>>();
        Policy {
            mode: self.mode,
            scope: self.scope,
            strategy: self.strategy,
            wrapper: self.wrapper.0.clone(),
            unknown_images: self.unknown_images,
            // Each pattern was compiled when read, so the set builds.
            images: ImageFilter::new(&globs(&self.images.include), &globs(&self.images.exclude))
                .expect("patterns were validated when read"),
            pin_digests: self.pinning.enabled,
            keep_tag: self.pinning.keep_tag,
            annotation_prefix: self.annotation_prefix.0.clone(),
            // Checked when read (Config::from_yaml, Config::from_value).
            kinds: self
                .kinds()
                .unwrap_or_else(|e| panic!("customKinds were not checked: {e}")),
        }
    }

    /// The offline facts from `imageFacts`.
    pub fn facts(&self) -> Facts {
        facts_from(&self.image_facts)
    }
}

/// Facts from hand-written entries.
pub fn facts_from(entries: &BTreeMap<String, ImageFactsEntry>) -> Facts {
    entries
        .iter()
        .map(|(image, entry)| (image.clone(), entry.to_facts()))
        .collect()
}

/// Reads an image-facts file (`--images FILE`): a YAML or JSON map of image
/// reference → `{entrypoint, platforms, digest}`.
pub fn load_image_facts(path: &Path) -> Result<BTreeMap<String, ImageFactsEntry>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.into(),
        source,
    })?;
    let file = path.display().to_string();
    let entries: BTreeMap<String, ImageFactsEntry> = parse_yaml(&text, &file)?;
    for (image, entry) in &entries {
        entry.check(image).map_err(|e| ConfigError::Invalid {
            line: text
                .lines()
                .position(|l| l.contains(image.as_str()))
                .map_or(1, |i| i + 1),
            file: file.clone(),
            column: 1,
            field: image.clone(),
            message: e.to_string(),
        })?;
    }
    Ok(entries)
}

/// `line 4 column 3: msg` → `msg` (the location is reported separately).
fn strip_location(s: &str) -> &str {
    match s.split_once(": ") {
        Some((head, rest)) if head.starts_with("line ") && head.contains(" column ") => rest,
        _ => s,
    }
}

/// Best effort: the line of `needle` in a file already read once (for errors
/// found after parsing). Falls back to 1.
fn line_of(file: &str, needle: &str) -> usize {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|t| t.lines().position(|l| l.contains(needle)))
        .map_or(1, |i| i + 1)
}

/// Why an image-facts entry cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ImageFactsError {
    /// The key is not an image reference.
    #[error("not an image reference: {0}")]
    Reference(#[source] ReferenceError),
    /// Both `entrypoint` and `platforms` are given.
    #[error("give entrypoint or platforms, not both")]
    Both,
    /// `platforms` names no platform.
    #[error("platforms is empty")]
    NoPlatforms,
    /// `digest` is not `algorithm:hex`.
    #[error("digest: {0}")]
    Digest(#[source] ReferenceError),
}

impl ImageFactsEntry {
    fn check(&self, image: &str) -> Result<(), ImageFactsError> {
        Reference::parse(image).map_err(ImageFactsError::Reference)?;
        match (&self.entrypoint, &self.platforms) {
            (Some(_), Some(_)) => return Err(ImageFactsError::Both),
            (None, Some(p)) if p.is_empty() => return Err(ImageFactsError::NoPlatforms),
            _ => {}
        }
        if let Some(digest) = &self.digest {
            Reference::parse(&format!("x@{digest}")).map_err(ImageFactsError::Digest)?;
        }
        Ok(())
    }

    /// The engine's facts for this entry.
    pub fn to_facts(&self) -> ImageFacts {
        let entrypoint = match (&self.entrypoint, &self.platforms) {
            (Some(e), _) => Entrypoint::Known { entrypoint: e.clone() },
            (None, Some(platforms)) => {
                let mut distinct: Vec<&Vec<String>> = platforms.values().collect();
                distinct.dedup();
                if distinct.len() == 1 {
                    Entrypoint::Known {
                        entrypoint: distinct[0].clone(),
                    }
                } else {
                    Entrypoint::PlatformsDisagree {
                        platforms: platforms
                            .iter()
                            .map(|(p, e)| PlatformEntrypoint {
                                platform: p.clone(),
                                entrypoint: e.clone(),
                            })
                            .collect(),
                    }
                }
            }
            (None, None) => Entrypoint::Unknown {
                reason: "no entrypoint given in image facts".into(),
            },
        };
        ImageFacts {
            digest: self.digest.clone(),
            entrypoint,
            source: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_all_defaults() {
        let c = Config::from_yaml("# nothing\n\n", "c.yaml").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.wrapper.0, ["/chalk", "exec"]);
    }

    #[test]
    fn errors_name_field_and_line() {
        let e = Config::from_yaml("mode: audit\npinning:\n  keepTag: true\n  bogus: 1\n", "c.yaml").unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("c.yaml:4:3: pinning.bogus: unknown field `bogus`"), "{s}");
        let e = Config::from_yaml("mode: fixx\n", "c.yaml").unwrap_err().to_string();
        assert!(e.starts_with("c.yaml:1:7: mode: unknown variant `fixx`"), "{e}");
        let e = Config::from_yaml("mode: fix\nscope: pod\n", "c.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("c.yaml:2:8: scope: unknown variant `pod`"), "{e}");
        let pods = Config::from_yaml("scope: pods\n", "c.yaml").unwrap();
        assert_eq!(pods.policy().scope, Scope::Pods);
        let e = Config::from_yaml("images:\n  exclude: ['a[']\n", "c.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("images.exclude[0]") && e.contains("invalid glob"), "{e}");
        let e = Config::from_yaml("wrapper: []\n", "c.yaml").unwrap_err().to_string();
        assert!(e.starts_with("c.yaml:1:") && e.contains("wrapper"), "{e}");
        let e = Config::from_yaml("annotationPrefix: Bad_Prefix\n", "c.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("annotationPrefix") && e.contains("DNS subdomain"), "{e}");
    }

    #[test]
    fn fan_out_limits_refuse_zero_negative_and_absurd_values_with_file_and_line() {
        let c = Config::from_yaml(
            "registry:\n  maxConcurrentLookups: 4\n  maxImagesPerAdmission: 10\n  maxPullSecretsPerAdmission: 2\n",
            "c.yaml",
        )
        .unwrap();
        assert_eq!(c.registry.max_concurrent_lookups, 4);
        assert_eq!(c.registry.max_images_per_admission, 10);
        assert_eq!(c.registry.max_pull_secrets_per_admission, 2);
        for (key, bad, range) in [
            ("maxConcurrentLookups", "0", "1 and 1024"),
            ("maxConcurrentLookups", "-3", "1 and 1024"),
            ("maxConcurrentLookups", "5000", "1 and 1024"),
            ("maxImagesPerAdmission", "0", "1 and 10000"),
            ("maxImagesPerAdmission", "10001", "1 and 10000"),
            ("maxPullSecretsPerAdmission", "0", "1 and 1000"),
            ("maxPullSecretsPerAdmission", "-1", "1 and 1000"),
            ("maxPullSecretsPerAdmission", "100000", "1 and 1000"),
        ] {
            let e = Config::from_yaml(&format!("mode: fix\nregistry:\n  {key}: {bad}\n"), "c.yaml")
                .unwrap_err()
                .to_string();
            // A negative number is not a whole number to the integer type.
            let why = if bad.starts_with('-') {
                format!("expected a whole number between {range}")
            } else {
                format!("{bad} is out of range: must be between {range}")
            };
            assert!(
                e.starts_with("c.yaml:3:") && e.contains(&format!("registry.{key}: {why}")),
                "{key}: {bad}: {e}"
            );
        }
        let e = Config::from_yaml("registry:\n  maxImagesPerAdmission: many\n", "c.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("c.yaml:2:") && e.contains("registry.maxImagesPerAdmission"),
            "{e}"
        );
    }

    #[test]
    fn image_facts_become_engine_facts() {
        let c = Config::from_yaml(
            "imageFacts:\n  app:1:\n    entrypoint: [/chalk, exec, --]\n  multi:1:\n    platforms:\n      linux/amd64: [a]\n      linux/arm64: [b]\n",
            "c.yaml",
        )
        .unwrap();
        let facts = c.facts();
        assert!(matches!(
            facts.get("app:1").unwrap().entrypoint,
            Entrypoint::Known { .. }
        ));
        assert!(matches!(
            facts.get("multi:1").unwrap().entrypoint,
            Entrypoint::PlatformsDisagree { .. }
        ));
        let e = Config::from_yaml("imageFacts:\n  app:1:\n    digest: sha256:abc\n", "c.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("imageFacts.app:1") && e.contains("digest"), "{e}");
    }
}
