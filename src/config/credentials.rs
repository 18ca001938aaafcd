//! Settings of the registry credential sources (`registry.credentials`) and
//! mirrors (`registry.mirrors`): the values are checked while they are read,
//! so a bad glob, region or mirror is reported with its field path and line.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

use super::values::{Span, span_within};

/// `auto`, `true` or `false`: whether a credential source is used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Toggle {
    /// Used when the webhook's environment shows the identity it needs.
    #[default]
    Auto,
    /// Always used (a failure is reported and the lookup goes on without it).
    On,
    /// Never used.
    Off,
}

impl<'de> Deserialize<'de> for Toggle {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Toggle;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true, false or \"auto\"")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Toggle, E> {
                Ok(if v { Toggle::On } else { Toggle::Off })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Toggle, E> {
                match v {
                    "auto" => Ok(Toggle::Auto),
                    "true" => Ok(Toggle::On),
                    "false" => Ok(Toggle::Off),
                    _ => Err(E::custom(format!("expected true, false or \"auto\", got {v:?}"))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for Toggle {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Toggle::Auto => s.serialize_str("auto"),
            Toggle::On => s.serialize_bool(true),
            Toggle::Off => s.serialize_bool(false),
        }
    }
}

/// A registry pattern, region or mirror that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    /// Not `host[:port][/path]` (empty, a scheme, whitespace).
    #[error("invalid registry pattern {0:?}: expected host[:port][/path], e.g. *.azurecr.io or registry.io:5000/team")]
    PatternShape(String),
    /// A label of the pattern's host is empty.
    #[error("invalid registry pattern {0:?}: empty DNS label")]
    EmptyLabel(String),
    /// A label of the pattern's host is no glob.
    #[error("invalid registry pattern {pattern:?}: {source}")]
    Glob {
        /// The pattern.
        pattern: String,
        /// Why its label is no glob.
        source: globset::Error,
    },
    /// Not an AWS region name.
    #[error("invalid AWS region {0:?}: expected e.g. eu-west-1")]
    Region(String),
    /// A mirror written with a scheme.
    #[error(
        "invalid mirror {0:?}: no scheme is written (registry.insecure makes a host plain HTTP); expected host[:port][/path]"
    )]
    MirrorScheme(String),
    /// A mirror whose first part is no registry host.
    #[error("invalid mirror {0:?}: the first part must be a registry host; expected host[:port][/path]")]
    MirrorHost(String),
    /// A mirror that makes no valid image reference.
    #[error("invalid mirror {mirror:?}: {source}; expected host[:port][/path]")]
    MirrorReference {
        /// The mirror.
        mirror: String,
        /// Why `host/prefix/x` is no image reference.
        source: crate::image::ReferenceError,
    },
}

/// A registry pattern matched the way the kubelet matches `matchImages`:
/// `host[:port][/path]`, one glob per DNS label (`*.azurecr.io`,
/// `*-docker.pkg.dev`), the port exact, the path a prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPattern(pub String);

impl HostPattern {
    /// Checks `s`: a host part with at least one label, globs that compile, no scheme.
    pub fn parse(s: &str) -> Result<Self, SettingError> {
        if s.is_empty() || s.contains("://") || s.chars().any(char::is_whitespace) {
            return Err(SettingError::PatternShape(s.to_string()));
        }
        let host = s.split('/').next().unwrap_or_default();
        let host = host
            .rsplit_once(':')
            .map_or(host, |(h, port)| if port.parse::<u16>().is_ok() { h } else { host });
        for label in host.split('.') {
            if label.is_empty() {
                return Err(SettingError::EmptyLabel(s.to_string()));
            }
            globset::Glob::new(label).map_err(|source| SettingError::Glob {
                pattern: s.to_string(),
                source,
            })?;
        }
        Ok(HostPattern(s.to_string()))
    }
}

impl<'de> Deserialize<'de> for HostPattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        HostPattern::parse(&s).map_err(de::Error::custom)
    }
}

impl Serialize for HostPattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

fn patterns(list: &[&str]) -> Vec<HostPattern> {
    list.iter().map(|p| HostPattern(p.to_string())).collect()
}

/// The `registry.credentials` section: where registry credentials come from
/// besides pull secrets and the Docker config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct CredentialsConfig {
    /// How long a credential source that failed is left alone before it is
    /// asked again; each failure is logged and counted once per interval.
    #[serde(deserialize_with = "span_within::<1_000, 86_400_000, _>")]
    pub retry_interval: Span,
    /// AWS ECR with the webhook's AWS identity.
    pub ecr: EcrConfig,
    /// Google Artifact Registry and GCR with the webhook's Google identity.
    pub google: GoogleConfig,
    /// Azure Container Registry with the webhook's Entra identity.
    pub azure: AzureConfig,
    /// Kubelet credential provider plugins (`CredentialProviderConfig`).
    pub kubelet_plugins: KubeletPluginsConfig,
}

impl Default for CredentialsConfig {
    fn default() -> Self {
        CredentialsConfig {
            retry_interval: Span(Duration::from_secs(60)),
            ecr: EcrConfig::default(),
            google: GoogleConfig::default(),
            azure: AzureConfig::default(),
            kubelet_plugins: KubeletPluginsConfig::default(),
        }
    }
}

/// `registry.credentials.ecr`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct EcrConfig {
    /// `auto`: on when IRSA, EKS Pod Identity, container or environment
    /// credentials are present, or the node is an EC2 instance.
    pub enabled: Toggle,
    /// The registries it serves.
    pub registries: Vec<HostPattern>,
    /// The region for a registry whose host does not name one (otherwise
    /// `AWS_REGION`/`AWS_DEFAULT_REGION`).
    pub region: Option<Region>,
}

impl Default for EcrConfig {
    fn default() -> Self {
        EcrConfig {
            enabled: Toggle::Auto,
            registries: patterns(&[
                "*.dkr.ecr.*.amazonaws.com",
                "*.dkr.ecr-fips.*.amazonaws.com",
                "*.dkr.ecr.*.amazonaws.com.cn",
                "*.dkr-ecr.*.on.aws",
                "*.dkr-ecr-fips.*.on.aws",
            ]),
            region: None,
        }
    }
}

/// An AWS region name such as `eu-west-1`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Region(pub String);

impl Region {
    /// Checks `s`: lowercase letters, digits and dashes, as region names are
    /// (it becomes part of an endpoint host name).
    pub fn parse(s: &str) -> Result<Self, SettingError> {
        let ok = !s.is_empty()
            && s.len() <= 32
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-');
        if ok {
            Ok(Region(s.to_string()))
        } else {
            Err(SettingError::Region(s.to_string()))
        }
    }
}

impl<'de> Deserialize<'de> for Region {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Region::parse(&s).map_err(de::Error::custom)
    }
}

/// `registry.credentials.google`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct GoogleConfig {
    /// `auto`: on when `GOOGLE_APPLICATION_CREDENTIALS` or `GCE_METADATA_HOST`
    /// is set, or the node is a Google Compute Engine machine (GKE).
    pub enabled: Toggle,
    /// The registries it serves.
    pub registries: Vec<HostPattern>,
}

impl Default for GoogleConfig {
    fn default() -> Self {
        GoogleConfig {
            enabled: Toggle::Auto,
            registries: patterns(&["gcr.io", "*.gcr.io", "*-docker.pkg.dev"]),
        }
    }
}

/// `registry.credentials.azure`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct AzureConfig {
    /// `auto`: on when AKS Workload Identity's variables are set
    /// (`AZURE_FEDERATED_TOKEN_FILE`, `AZURE_CLIENT_ID`, `AZURE_TENANT_ID`),
    /// or the node is an Azure machine (managed identity).
    pub enabled: Toggle,
    /// The registries it serves.
    pub registries: Vec<HostPattern>,
    /// The Entra scope of the token exchanged at the registry.
    pub scope: String,
}

impl Default for AzureConfig {
    fn default() -> Self {
        AzureConfig {
            enabled: Toggle::Auto,
            registries: patterns(&["*.azurecr.io", "*.azurecr.cn", "*.azurecr.us", "*.azurecr.de"]),
            scope: "https://management.azure.com/.default".into(),
        }
    }
}

/// `registry.credentials.kubeletPlugins`: the kubelet's own credential
/// provider plugins, named only by this configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct KubeletPluginsConfig {
    /// The `CredentialProviderConfig` file (`kubelet.config.k8s.io/v1`), as
    /// given to the kubelet's `--image-credential-provider-config`; unset: off.
    pub config: Option<PathBuf>,
    /// The directory holding the plugin executables
    /// (the kubelet's `--image-credential-provider-bin-dir`).
    pub bin_dir: PathBuf,
    /// The most one plugin run may take.
    #[serde(deserialize_with = "span_within::<100, 300_000, _>")]
    pub timeout: Span,
}

impl Default for KubeletPluginsConfig {
    fn default() -> Self {
        KubeletPluginsConfig {
            config: None,
            bin_dir: PathBuf::from("/etc/entrypoint-guard/credential-plugins"),
            timeout: Span(Duration::from_secs(10)),
        }
    }
}

/// A mirror: `host[:port]`, optionally with a repository prefix
/// (`harbor.corp/dockerhub-proxy`), tried in place of a registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mirror {
    /// `host[:port]`.
    pub host: String,
    /// Prepended to the repository (`dockerhub-proxy` + `library/nginx`); may be empty.
    pub prefix: String,
}

impl Mirror {
    /// Parses `host[:port][/prefix]`.
    pub fn parse(s: &str) -> Result<Self, SettingError> {
        if s.contains("://") {
            return Err(SettingError::MirrorScheme(s.to_string()));
        }
        let (host, prefix) = match s.split_once('/') {
            Some((h, p)) => (h, p.trim_matches('/')),
            None => (s, ""),
        };
        if host.is_empty() || !(host.contains('.') || host.contains(':') || host == "localhost") {
            return Err(SettingError::MirrorHost(s.to_string()));
        }
        // The same rules as an image: `host/prefix/x` must be a valid reference.
        crate::image::Reference::parse(&format!(
            "{host}/{}x",
            if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            }
        ))
        .map_err(|source| SettingError::MirrorReference {
            mirror: s.to_string(),
            source,
        })?;
        Ok(Mirror {
            host: host.to_ascii_lowercase(),
            prefix: prefix.to_string(),
        })
    }
}

impl fmt::Display for Mirror {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix.is_empty() {
            f.write_str(&self.host)
        } else {
            write!(f, "{}/{}", self.host, self.prefix)
        }
    }
}

impl<'de> Deserialize<'de> for Mirror {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Mirror::parse(&s).map_err(de::Error::custom)
    }
}

impl Serialize for Mirror {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A registry host (`host[:port]`) as images name it; `docker.io` for Docker Hub.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct RegistryHost(pub String);

impl<'de> Deserialize<'de> for RegistryHost {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let m =
            Mirror::parse(&s).map_err(|_| de::Error::custom(format!("{s:?} is not a registry host (host[:port])")))?;
        if !m.prefix.is_empty() {
            return Err(de::Error::custom(format!(
                "{s:?}: a mirrored registry is a host, without a path"
            )));
        }
        let host = match m.host.as_str() {
            "index.docker.io" | "registry-1.docker.io" => crate::image::reference::DOCKER_HUB.to_string(),
            _ => m.host,
        };
        Ok(RegistryHost(host))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toggles_read_bools_and_auto() {
        let t: Toggle = serde_json::from_str("true").unwrap();
        assert_eq!(t, Toggle::On);
        let t: Toggle = serde_json::from_str("\"auto\"").unwrap();
        assert_eq!(t, Toggle::Auto);
        assert!(serde_json::from_str::<Toggle>("\"yes\"").is_err());
    }

    #[test]
    fn patterns_regions_and_mirrors_are_checked() {
        assert!(HostPattern::parse("*.azurecr.io").is_ok());
        assert!(HostPattern::parse("registry.io:8080/path").is_ok());
        assert!(HostPattern::parse("https://x.io").is_err());
        assert!(HostPattern::parse("a..b").is_err());
        assert!(HostPattern::parse("[.io").is_err());
        assert!(Region::parse("eu-west-1").is_ok());
        assert!(Region::parse("evil.com/x").is_err());
        let m = Mirror::parse("harbor.corp/dockerhub-proxy/").unwrap();
        assert_eq!((m.host.as_str(), m.prefix.as_str()), ("harbor.corp", "dockerhub-proxy"));
        assert_eq!(m.to_string(), "harbor.corp/dockerhub-proxy");
        assert!(Mirror::parse("mirror.corp:5000").is_ok());
        assert!(Mirror::parse("http://mirror.corp").is_err());
        assert!(Mirror::parse("mirror").is_err());
    }
}
