//! Kubelet credential provider plugins (`credentialprovider.kubelet.k8s.io/v1`),
//! run as the kubelet runs them, from the same `CredentialProviderConfig`.
//!
//! A plugin is named only by the operator's configuration: its executable
//! is `binDir/<name>`, run with the provider's `args` and `env` added to the
//! webhook's environment, the `CredentialProviderRequest` on stdin, and a
//! timeout. Its answer is cached by `cacheKeyType` (`Image`, `Registry` or
//! `Global`) for `cacheDuration` (else the provider's `defaultCacheDuration`;
//! zero: not cached), and only the `auth` entries matching the image are used,
//! bound to the image's registry host.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use serde::Deserialize;
use tokio::io::AsyncWriteExt as _;

use super::cache::Clock;
use super::env::Environment;
use super::matcher::{ImageMatcher, image_name};
use super::{Keychain, KeychainError, SourceError, report_failure};
use crate::config::credentials::KubeletPluginsConfig;
use crate::config::{Span, SpanError};
use crate::image::reference::Reference;
use crate::registry::docker_config::RegistryCredential;

const CONFIG_VERSIONS: &[&str] = &["kubelet.config.k8s.io/v1", "kubelet.config.k8s.io/v1beta1"];
const PLUGIN_VERSIONS: &[&str] = &[
    "credentialprovider.kubelet.k8s.io/v1",
    "credentialprovider.kubelet.k8s.io/v1beta1",
];
/// Most cached answers per plugin.
const MAX_CACHED: usize = 4096;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ConfigFile {
    api_version: String,
    kind: String,
    #[serde(default)]
    providers: Vec<ProviderEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ProviderEntry {
    name: String,
    match_images: Vec<String>,
    default_cache_duration: Span,
    api_version: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: Vec<EnvVar>,
    #[serde(default)]
    token_attributes: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvVar {
    name: String,
    value: String,
}

/// Reads the `CredentialProviderConfig` at `path` and checks each plugin's
/// executable; errors name the file, line and field.
pub fn load(
    path: &Path,
    config: &KubeletPluginsConfig,
    env: &Environment,
    clock: Arc<dyn Clock>,
    retry: Duration,
) -> Result<Vec<Plugin>, KeychainError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| KeychainError::Plugins(format!("{file}: {e}")))?;
    let parsed: ConfigFile =
        crate::config::parse_yaml(&text, &file).map_err(|e| KeychainError::Plugins(e.to_string()))?;
    let at = |needle: &str, field: String, message: String| {
        let line = text.lines().position(|l| l.contains(needle)).map_or(1, |i| i + 1);
        KeychainError::Plugins(format!("{file}:{line}: {field}: {message}"))
    };
    if !CONFIG_VERSIONS.contains(&parsed.api_version.as_str()) || parsed.kind != "CredentialProviderConfig" {
        return Err(at(
            "apiVersion",
            "apiVersion".into(),
            format!(
                "expected kind CredentialProviderConfig of {}, got {} {}",
                CONFIG_VERSIONS.join(" or "),
                parsed.kind,
                parsed.api_version
            ),
        ));
    }
    let mut plugins = Vec::new();
    for (i, p) in parsed.providers.into_iter().enumerate() {
        let field = |f: &str| format!("providers[{i}].{f}");
        if p.name.is_empty() || p.name.contains('/') || p.name == "." || p.name == ".." {
            return Err(at(
                &p.name,
                field("name"),
                format!("{:?} is not a plain executable name", p.name),
            ));
        }
        if !PLUGIN_VERSIONS.contains(&p.api_version.as_str()) {
            return Err(at(
                &p.api_version,
                field("apiVersion"),
                format!("expected {}", PLUGIN_VERSIONS.join(" or ")),
            ));
        }
        if p.match_images.is_empty() {
            return Err(at(
                &p.name,
                field("matchImages"),
                "at least one pattern is required".into(),
            ));
        }
        let matcher =
            ImageMatcher::new(&p.match_images).map_err(|e| at(&p.name, field("matchImages"), e.to_string()))?;
        if p.token_attributes.is_some() {
            tracing::warn!(plugin = %p.name, "tokenAttributes (a pod's service account token) cannot be given by the webhook; plugin skipped");
            continue;
        }
        let executable = config.bin_dir.join(&p.name);
        let meta = std::fs::metadata(&executable)
            .map_err(|e| at(&p.name, field("name"), format!("{}: {e}", executable.display())))?;
        if !meta.is_file() {
            return Err(at(
                &p.name,
                field("name"),
                format!("{} is not a file", executable.display()),
            ));
        }
        plugins.push(Plugin {
            label: format!("plugin/{}", p.name),
            executable,
            args: p.args,
            env: env.vars().clone(),
            extra_env: p.env.into_iter().map(|v| (v.name, v.value)).collect(),
            api_version: p.api_version,
            matcher,
            default_cache: p.default_cache_duration.get(),
            timeout: config.timeout.get(),
            clock: clock.clone(),
            retry,
            state: tokio::sync::Mutex::new(State::default()),
        });
    }
    Ok(plugins)
}

/// One configured plugin.
pub struct Plugin {
    label: String,
    executable: PathBuf,
    args: Vec<String>,
    env: BTreeMap<String, String>,
    extra_env: Vec<(String, String)>,
    api_version: String,
    matcher: ImageMatcher,
    default_cache: Duration,
    timeout: Duration,
    clock: Arc<dyn Clock>,
    retry: Duration,
    // One run at a time per plugin; answers and failures kept here.
    state: tokio::sync::Mutex<State>,
}

#[derive(Default)]
struct State {
    answers: HashMap<String, Answer>,
    failures: HashMap<String, (SourceError, SystemTime)>,
}

#[derive(Clone)]
struct Answer {
    auth: Vec<(String, String, String)>,
    until: SystemTime,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Response {
    kind: String,
    api_version: String,
    cache_key_type: String,
    #[serde(default)]
    cache_duration: Option<String>,
    #[serde(default)]
    auth: Option<BTreeMap<String, Option<AuthConfig>>>,
}

#[derive(Deserialize)]
struct AuthConfig {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

impl Plugin {
    /// The cache keys an image's answer may be stored under, most specific first.
    fn keys(image: &str, registry: &str) -> [String; 3] {
        [
            format!("image:{image}"),
            format!("registry:{registry}"),
            "global".to_string(),
        ]
    }

    async fn answer(&self, image: &str, registry: &str) -> Result<Answer, SourceError> {
        let mut state = self.state.lock().await;
        let now = self.clock.now();
        let keys = Self::keys(image, registry);
        for key in &keys {
            if let Some(answer) = state.answers.get(key).filter(|a| now < a.until) {
                return Ok(answer.clone());
            }
        }
        if let Some((error, until)) = state.failures.get(image)
            && now < *until
        {
            return Err(error.clone());
        }
        match self.run(image).await {
            Ok((key_type, answer)) => {
                state.failures.remove(image);
                if answer.until > now {
                    if state.answers.len() >= MAX_CACHED {
                        state.answers.retain(|_, a| a.until > now);
                    }
                    let key = match key_type {
                        KeyType::Image => &keys[0],
                        KeyType::Registry => &keys[1],
                        KeyType::Global => &keys[2],
                    };
                    state.answers.insert(key.clone(), answer.clone());
                }
                Ok(answer)
            }
            Err(error) => {
                report_failure(&self.label, image, &error, self.retry);
                if state.failures.len() >= MAX_CACHED {
                    state.failures.retain(|_, (_, until)| *until > now);
                }
                state
                    .failures
                    .insert(image.to_string(), (error.clone(), now + self.retry));
                Err(error)
            }
        }
    }

    /// Runs the plugin for `image` and reads its answer.
    async fn run(&self, image: &str) -> Result<(KeyType, Answer), SourceError> {
        let what = format!("credential plugin {}", self.executable.display());
        let request = serde_json::json!({
            "apiVersion": self.api_version,
            "kind": "CredentialProviderRequest",
            "image": image,
        });
        let mut child = tokio::process::Command::new(&self.executable)
            .args(&self.args)
            .env_clear()
            .envs(&self.env)
            .envs(self.extra_env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| SourceError::new(&what, e))?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let output = tokio::time::timeout(self.timeout, async {
            // A plugin that does not read its input must still be waited for.
            let _ = stdin.write_all(request.to_string().as_bytes()).await;
            drop(stdin);
            child.wait_with_output().await
        })
        .await
        .map_err(|_| SourceError::new(&what, format!("no answer within {:?} (killed)", self.timeout)))?
        .map_err(|e| SourceError::new(&what, e))?;
        if !output.status.success() {
            let stderr: String = String::from_utf8_lossy(&output.stderr)
                .trim()
                .chars()
                .take(300)
                .collect();
            return Err(SourceError::new(&what, format!("{}: {stderr}", output.status)));
        }
        let response: Response = serde_json::from_slice(&output.stdout)
            .map_err(|e| SourceError::new(&what, format!("the answer is not a CredentialProviderResponse: {e}")))?;
        if response.kind != "CredentialProviderResponse" || response.api_version != self.api_version {
            return Err(SourceError::new(
                &what,
                format!(
                    "answered {} {}, expected CredentialProviderResponse {}",
                    response.kind, response.api_version, self.api_version
                ),
            ));
        }
        let key_type = match response.cache_key_type.as_str() {
            "Image" => KeyType::Image,
            "Registry" => KeyType::Registry,
            "Global" => KeyType::Global,
            other => {
                return Err(SourceError::new(
                    &what,
                    format!("cacheKeyType {other:?} is not Image, Registry or Global"),
                ));
            }
        };
        let duration = match response.cache_duration.as_deref() {
            Some(d) => go_duration(d).map_err(|e| SourceError::new(&what, format!("cacheDuration: {e}")))?,
            None => self.default_cache,
        };
        let auth = response
            .auth
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(key, auth)| auth.map(|a| (key, a.username, a.password)))
            .collect();
        Ok((
            key_type,
            Answer {
                auth,
                until: self.clock.now() + duration,
            },
        ))
    }
}

enum KeyType {
    Image,
    Registry,
    Global,
}

/// A Go duration as plugins write it (`12h`, `5m0s`, `0s`, `0`).
fn go_duration(s: &str) -> Result<Duration, SpanError> {
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    Span::parse(s).map(Span::get)
}

impl Keychain for Plugin {
    fn name(&self) -> &str {
        &self.label
    }

    fn serves(&self, reference: &Reference) -> bool {
        self.matcher.matches_reference(reference)
    }

    fn credentials<'a>(
        &'a self,
        reference: &'a Reference,
    ) -> BoxFuture<'a, Result<Vec<RegistryCredential>, SourceError>> {
        Box::pin(async move {
            let image = image_name(reference);
            let answer = self.answer(&image, reference.registry()).await?;
            let creds = answer
                .auth
                .iter()
                .filter(|(key, _, _)| ImageMatcher::new(&[key]).is_ok_and(|m| m.matches(&image)))
                .map(|(_, user, password)| RegistryCredential::new(reference.registry(), user, password, &self.label))
                .collect();
            Ok(creds)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_go_durations() {
        assert_eq!(go_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(go_duration("12h0m0s").unwrap(), Duration::from_secs(43200));
        assert!(go_duration("forever").is_err());
    }
}
