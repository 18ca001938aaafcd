//! The one table of kinds the engine inspects: Pods, the built-in kinds that
//! hold pod templates ([`BUILTIN`]), and the custom kinds configuration adds
//! (`customKinds`: entries and [`presets`]).
//!
//! Everything that depends on which kinds exist derives from the [`Kinds`]
//! table the policy carries ([`super::Policy::kinds`]): the pod-spec walk
//! ([`super::workload`]), which admission requests are inspected, the lean
//! decode schema, the kinds `audit` lists, the metric labels, and the
//! chart's webhook rules and RBAC (through `entrypoint-guard kinds`). Each
//! has a test that fails if it does not follow the table, custom kinds
//! included.

pub(crate) mod pattern;
pub(crate) mod presets;

use std::sync::{Arc, LazyLock};

pub use pattern::Pattern;
pub(crate) use pattern::Token;
pub(crate) use presets::PRESETS;

/// One row of a table of kinds, as written in the source: the built-in
/// kinds ([`BUILTIN`]) and the kinds of each preset ([`PRESETS`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct KindRow {
    /// The kind, e.g. `Deployment`.
    pub kind: &'static str,
    /// The API group; empty for the core group.
    pub group: &'static str,
    /// Older groups that served the same kind with the same layout
    /// (`extensions` Deployments): still recognised in manifests.
    pub legacy_groups: &'static [&'static str],
    /// The versions it is served under, preferred first.
    pub versions: &'static [&'static str],
    /// The resource (lowercase plural), e.g. `deployments`.
    pub plural: &'static str,
    /// Pod-spec path patterns (see [`Pattern`]).
    pub pod_spec_paths: &'static [&'static str],
}

impl KindRow {
    /// A row with no legacy groups.
    pub(crate) const fn new(
        kind: &'static str,
        group: &'static str,
        versions: &'static [&'static str],
        plural: &'static str,
        pod_spec_paths: &'static [&'static str],
    ) -> KindRow {
        KindRow {
            kind,
            group,
            legacy_groups: &[],
            versions,
            plural,
            pod_spec_paths,
        }
    }

    const fn legacy(self, legacy_groups: &'static [&'static str]) -> KindRow {
        KindRow { legacy_groups, ..self }
    }
}

/// Every built-in kind, in the order reports show them: the rows every
/// table starts with.
pub(crate) const BUILTIN: [KindRow; 9] = [
    KindRow::new("Pod", "", &["v1"], "pods", &["/spec"]),
    KindRow::new("PodTemplate", "", &["v1"], "podtemplates", &["/template/spec"]),
    KindRow::new(
        "ReplicationController",
        "",
        &["v1"],
        "replicationcontrollers",
        &["/spec/template/spec"],
    ),
    KindRow::new("Deployment", "apps", &["v1"], "deployments", &["/spec/template/spec"]).legacy(&["extensions"]),
    KindRow::new("StatefulSet", "apps", &["v1"], "statefulsets", &["/spec/template/spec"]),
    KindRow::new("DaemonSet", "apps", &["v1"], "daemonsets", &["/spec/template/spec"]).legacy(&["extensions"]),
    KindRow::new("ReplicaSet", "apps", &["v1"], "replicasets", &["/spec/template/spec"]).legacy(&["extensions"]),
    KindRow::new("Job", "batch", &["v1"], "jobs", &["/spec/template/spec"]),
    KindRow::new(
        "CronJob",
        "batch",
        &["v1"],
        "cronjobs",
        &["/spec/jobTemplate/spec/template/spec"],
    ),
];

/// A kind the engine inspects: a Pod, or a kind holding pod templates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kind {
    /// The kind, e.g. `Deployment`.
    pub kind: String,
    /// The API group; empty for the core group.
    pub group: String,
    /// Older groups that served the same kind with the same layout
    /// (`extensions` Deployments): still recognised in manifests.
    pub legacy_groups: Vec<String>,
    /// The versions it is served under, preferred first (webhook rules name
    /// them all; `audit` lists the first one the API server serves).
    pub versions: Vec<String>,
    /// The resource (lowercase plural), e.g. `deployments`.
    pub plural: String,
    /// Where its pod specs are (a Pod: `/spec`).
    pub pod_specs: Vec<Pattern>,
    /// Whether configuration added it: an API server serves it only where
    /// its CRD is installed.
    pub custom: bool,
}

impl Kind {
    /// The kind of a row of [`BUILTIN`] (`custom: false`) or of a preset
    /// (`custom: true`).
    pub(crate) fn from_row(row: &KindRow, custom: bool) -> Kind {
        let strings = |list: &[&str]| list.iter().map(|s| s.to_string()).collect();
        Kind {
            kind: row.kind.to_string(),
            group: row.group.to_string(),
            legacy_groups: strings(row.legacy_groups),
            versions: strings(row.versions),
            plural: row.plural.to_string(),
            pod_specs: row
                .pod_spec_paths
                .iter()
                .map(|p| Pattern::parse(p).expect("the patterns of the source's rows parse (tested)"))
                .collect(),
            custom,
        }
    }

    /// `v1` or `apps/v1`: its preferred `apiVersion`.
    pub fn api_version(&self) -> String {
        self.api_version_of(&self.versions[0])
    }

    /// Its `apiVersion` in `version`.
    pub(crate) fn api_version_of(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{version}", self.group)
        }
    }

    /// The same kind served only in `version` (what `audit` lists: the
    /// version discovery found).
    pub(crate) fn in_version(&self, version: &str) -> Kind {
        Kind {
            versions: vec![version.to_string()],
            ..self.clone()
        }
    }

    /// The collection's API path in its preferred version: all namespaces
    /// when `namespace` is `None`.
    pub fn list_path(&self, namespace: Option<&str>) -> String {
        let version = &self.versions[0];
        let base = if self.group.is_empty() {
            format!("/api/{version}")
        } else {
            format!("/apis/{}/{version}", self.group)
        };
        match namespace {
            // Namespace names are DNS labels, but a typo must not build a different path.
            Some(ns) => format!("{base}/namespaces/{}/{}", percent_encode(ns), self.plural),
            None => format!("{base}/{}", self.plural),
        }
    }

    /// `deployments.apps` (or `pods`): the resource as RBAC and kubectl name it.
    pub fn resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// The kind as one YAML list item (`- kind: …`), each line after `indent`:
    /// what `entrypoint-guard kinds` prints and the chart's preset file holds.
    pub(crate) fn to_yaml(&self, indent: &str) -> String {
        let paths: Vec<String> = self.pod_specs.iter().map(ToString::to_string).collect();
        let group = if self.group.is_empty() { "\"\"" } else { &self.group };
        format!(
            "{indent}- kind: {}\n{indent}  group: {group}\n{indent}  plural: {}\n{indent}  versions: [{}]\n{indent}  podSpecPaths: [{}]\n",
            self.kind,
            self.plural,
            self.versions.join(", "),
            paths.join(", ")
        )
    }

    /// Whether it is the Pod kind: Pods are leaves, always fixable (nothing
    /// compares a Pod back to a template).
    pub(crate) fn is_pod(&self) -> bool {
        self.kind == "Pod" && self.group.is_empty()
    }

    /// Whether an object of `api_version` (any version; `None`: unknown)
    /// is in its group.
    fn in_group(&self, api_version: Option<&str>) -> bool {
        let Some(api_version) = api_version else {
            return true;
        };
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        group == self.group || self.legacy_groups.iter().any(|g| g == group)
    }
}

/// Escapes everything but unreserved characters, so a path segment stays one segment.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A kind given twice in one table.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind} ({resource}) is given twice: {other} is already {}", if *.other_custom { "a custom kind" } else { "built in" })]
pub(crate) struct DuplicateKind {
    /// The kind given again.
    pub kind: String,
    /// Its resource.
    pub resource: String,
    /// The resource of the kind already in the table.
    pub other: String,
    /// Whether that one is a custom kind too.
    pub other_custom: bool,
}

/// A table of kinds: the built-in ones, then the custom ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kinds(Arc<[Kind]>);

impl Default for Kinds {
    fn default() -> Self {
        Kinds::builtin()
    }
}

static BUILTIN_KINDS: LazyLock<Kinds> =
    LazyLock::new(|| Kinds(BUILTIN.iter().map(|row| Kind::from_row(row, false)).collect()));

impl Kinds {
    /// The table of [`BUILTIN`] alone: Pod, PodTemplate,
    /// ReplicationController, Deployment, StatefulSet, DaemonSet,
    /// ReplicaSet, Job, CronJob.
    pub fn builtin() -> Kinds {
        BUILTIN_KINDS.clone()
    }

    /// The built-in kinds and `custom` after them. Two kinds of the same
    /// group with the same name (or the same resource) are an error naming them.
    pub(crate) fn with_custom(custom: Vec<Kind>) -> Result<Kinds, DuplicateKind> {
        let mut all: Vec<Kind> = BUILTIN_KINDS.0.to_vec();
        for kind in custom {
            if let Some(other) = all
                .iter()
                .find(|k| k.group == kind.group && (k.kind == kind.kind || k.plural == kind.plural))
            {
                return Err(DuplicateKind {
                    resource: kind.resource(),
                    kind: kind.kind,
                    other: other.resource(),
                    other_custom: other.custom,
                });
            }
            all.push(kind);
        }
        Ok(Kinds(Arc::from(all)))
    }

    /// The kind named `kind` in the group of `api_version` (`None`: any
    /// group), or `None` if the engine does not inspect it.
    pub fn find(&self, api_version: Option<&str>, kind: &str) -> Option<&Kind> {
        self.0.iter().find(|k| k.kind == kind && k.in_group(api_version))
    }

    /// Every kind, built-in ones first.
    pub fn iter(&self) -> std::slice::Iter<'_, Kind> {
        self.0.iter()
    }

    /// The kinds configuration added.
    pub fn custom(&self) -> impl Iterator<Item = &Kind> {
        self.0.iter().filter(|k| k.custom)
    }

    /// Where the kind named `kind` first is in the table (by name alone:
    /// the order reports show kinds in), or the table's length if it is not.
    pub(crate) fn rank(&self, kind: &str) -> usize {
        self.0.iter().position(|k| k.kind == kind).unwrap_or(self.0.len())
    }

    /// The built-in kinds and every preset's: a table for tests.
    #[cfg(test)]
    pub(crate) fn with_every_preset() -> Kinds {
        Kinds::with_custom(
            PRESETS
                .iter()
                .flat_map(|p| p.kinds)
                .map(|k| Kind::from_row(k, true))
                .collect(),
        )
        .expect("no preset repeats a kind")
    }

    /// How many kinds there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none (never: the built-in kinds are always there).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The file the Helm chart reads (`charts/entrypoint-guard/files/kinds.yaml`):
/// the built-in kinds, which the webhook rules and the background audit's
/// RBAC always cover, then for each preset `customKinds` may name the kinds
/// it adds. `entrypoint-guard kinds --chart` prints it; a test keeps the
/// chart's copy in step, so the chart's rules follow this table.
pub fn chart_file() -> String {
    let mut out = String::from(
        "# Generated from src/engine/kinds/ by `entrypoint-guard kinds --chart`; do not edit.\n\
         # The built-in kinds (always in the webhook rules and the background audit's RBAC),\n\
         # then for each preset config.customKinds may name, the kinds it adds.\n\
         builtin:\n",
    );
    for kind in BUILTIN_KINDS.iter() {
        out.push_str(&kind.to_yaml("  "));
    }
    out.push_str("presets:\n");
    for preset in PRESETS {
        out.push_str(&format!("  # {}\n  {}:\n", preset.source, preset.name));
        for row in preset.kinds {
            out.push_str(&Kind::from_row(row, true).to_yaml("    "));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_found_by_group_and_name() {
        let kinds = Kinds::with_every_preset();
        let found = |api_version: &str, kind: &str| kinds.find(Some(api_version), kind).map(Kind::resource);
        assert_eq!(found("apps/v1", "StatefulSet").as_deref(), Some("statefulsets.apps"));
        assert_eq!(
            found("apps.kruise.io/v1beta1", "StatefulSet").as_deref(),
            Some("statefulsets.apps.kruise.io")
        );
        assert_eq!(found("batch/v1", "Job").as_deref(), Some("jobs.batch"));
        assert_eq!(
            found("batch.volcano.sh/v1alpha1", "Job").as_deref(),
            Some("jobs.batch.volcano.sh")
        );
        assert_eq!(
            found("extensions/v1beta1", "Deployment").as_deref(),
            Some("deployments.apps")
        );
        assert_eq!(found("example.com/v1", "Deployment"), None);
        assert_eq!(found("v1", "ConfigMap"), None);
        assert!(Kinds::builtin().find(Some("argoproj.io/v1alpha1"), "Rollout").is_none());
        assert_eq!(kinds.rank("Rollout"), BUILTIN.len());
        assert_eq!(kinds.rank("ConfigMap"), kinds.len());
    }

    #[test]
    fn the_built_in_rows_start_every_table() {
        let builtin = Kinds::builtin();
        assert_eq!(builtin.len(), BUILTIN.len());
        assert_eq!(builtin.custom().count(), 0);
        let all = Kinds::with_every_preset();
        for (row, kind) in BUILTIN.iter().zip(all.iter()) {
            assert_eq!(Kind::from_row(row, false), *kind);
        }
        assert!(all.iter().skip(BUILTIN.len()).all(|k| k.custom));
    }

    #[test]
    fn paths_follow_the_api_layout() {
        let kinds = Kinds::with_every_preset();
        let deploy = kinds.find(Some("apps/v1"), "Deployment").unwrap();
        assert_eq!(deploy.list_path(None), "/apis/apps/v1/deployments");
        assert_eq!(
            deploy.list_path(Some("demo")),
            "/apis/apps/v1/namespaces/demo/deployments"
        );
        let pods = kinds.find(Some("v1"), "Pod").unwrap();
        assert_eq!(pods.list_path(Some("a/b")), "/api/v1/namespaces/a%2Fb/pods");
        assert_eq!(pods.resource(), "pods");
        assert_eq!(deploy.resource(), "deployments.apps");
        let sts = kinds.find(Some("apps.kruise.io/v1alpha1"), "StatefulSet").unwrap();
        assert_eq!(sts.api_version(), "apps.kruise.io/v1beta1");
        let served = sts.in_version("v1alpha1");
        assert_eq!(served.api_version(), "apps.kruise.io/v1alpha1");
        assert_eq!(
            served.list_path(Some("ns")),
            "/apis/apps.kruise.io/v1alpha1/namespaces/ns/statefulsets"
        );
    }

    #[test]
    fn a_kind_given_twice_is_an_error() {
        let rollout = Kind::from_row(&PRESETS[0].kinds[0], true);
        let e = Kinds::with_custom(vec![rollout.clone(), rollout])
            .unwrap_err()
            .to_string();
        assert!(e.contains("Rollout (rollouts.argoproj.io) is given twice"), "{e}");
        let mut shadow = Kind::from_row(&PRESETS[0].kinds[0], true);
        shadow.group = "apps".into();
        shadow.kind = "Deployment".into();
        let e = Kinds::with_custom(vec![shadow]).unwrap_err().to_string();
        assert!(e.contains("already built in"), "{e}");
    }

    #[test]
    fn every_row_parses_and_every_preset_name_is_unique() {
        let mut names: Vec<&str> = PRESETS.iter().map(|p| p.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), PRESETS.len());
        for row in &BUILTIN {
            for path in row.pod_spec_paths {
                Pattern::parse(path).unwrap_or_else(|e| panic!("{}: {e}", row.kind));
            }
        }
        for preset in PRESETS {
            assert!(preset.source.starts_with("https://"), "{}", preset.name);
            for row in preset.kinds {
                assert!(
                    !row.versions.is_empty() && !row.pod_spec_paths.is_empty(),
                    "{}",
                    row.kind
                );
                for path in row.pod_spec_paths {
                    Pattern::parse(path).unwrap_or_else(|e| panic!("{}: {e}", row.kind));
                }
            }
        }
    }
}
