//! The rules: every kind of finding, and all that is said about each (its
//! stable id, SARIF name, severity, PolicyReport outcome and category, and
//! meaning), in one table.

use serde::Serialize;

/// The kind of a finding. The kebab-case name is stable: reports, metrics
/// and SARIF rule ids use it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// A `command` replaces a chalk-wrapped Entrypoint; the fix puts chalk back.
    CommandBypassesWrapper,
    /// The configured strategy's fix would be wrong for this image; the right
    /// one is named and nothing is changed.
    PreferredFixWrong,
    /// A `command` is set but the image config is unknown, so the right fix is too.
    ImageConfigUnknown,
    /// The platforms of a multi-arch image have different Entrypoints.
    PlatformsDisagree,
    /// A tag was pinned to the digest the registry serves for it.
    ImagePinned,
    /// The container's `image` is not a valid reference.
    InvalidImageReference,
    /// The container's `command`, `args` or `image` has the wrong type.
    InvalidContainer,
    /// The object's mode annotation has a value other than off, audit or fix.
    InvalidModeAnnotation,
    /// A Helm chart sets `command:` (values or templates): fix it at the source.
    HelmCommandOverride,
    /// A controller owns the object, so it is never patched: fix the owner.
    ControllerOwned,
    /// `scope: pods`: the object is not a Pod, so it is only reported.
    OutOfScope,
}

/// How serious a finding of a rule is. Every report uses it: SARIF's
/// `level` is [`Severity::as_str`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Chalk is bypassed.
    Error,
    /// Something the engine cannot decide or had to ignore.
    Warning,
    /// Information: what was done, or why something was not patched.
    Note,
}

impl Severity {
    /// `error`, `warning` or `note` (SARIF's level names).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        }
    }
}

/// What a finding of a rule is as a PolicyReport result (`result:`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The object breaks the policy and the fix is known (a bypass that
    /// would be fixed, a chart that sets `command:`).
    Fail,
    /// The policy may be broken but nothing is changed: the engine cannot
    /// decide, or the fix is not the configured one, or a tag is unpinned.
    Warn,
    /// The object could not be evaluated (a malformed container or annotation).
    Error,
    /// The object is not patched whatever it holds (owned, out of scope).
    Skip,
}

impl Outcome {
    /// `fail`, `warn`, `error` or `skip` (the PolicyReport result names).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Fail => "fail",
            Outcome::Warn => "warn",
            Outcome::Error => "error",
            Outcome::Skip => "skip",
        }
    }
}

/// Everything said about one rule, in one row.
struct RuleInfo {
    id: &'static str,
    name: &'static str,
    severity: Severity,
    outcome: Outcome,
    category: &'static str,
    description: &'static str,
}

impl Rule {
    /// Every rule, for documentation and SARIF rule tables.
    pub const ALL: [Rule; 11] = [
        Rule::CommandBypassesWrapper,
        Rule::PreferredFixWrong,
        Rule::ImageConfigUnknown,
        Rule::PlatformsDisagree,
        Rule::ImagePinned,
        Rule::InvalidImageReference,
        Rule::InvalidContainer,
        Rule::InvalidModeAnnotation,
        Rule::HelmCommandOverride,
        Rule::ControllerOwned,
        Rule::OutOfScope,
    ];

    fn info(self) -> RuleInfo {
        let (id, name, severity, outcome, category, description) = match self {
            Rule::CommandBypassesWrapper => (
                "command-bypasses-wrapper",
                "CommandBypassesWrapper",
                Severity::Error,
                Outcome::Fail,
                "Chalk wrapper",
                "A container command replaces the image's chalk-wrapped ENTRYPOINT, so chalk never runs.",
            ),
            Rule::PreferredFixWrong => (
                "preferred-fix-wrong",
                "PreferredFixWrong",
                Severity::Error,
                Outcome::Warn,
                "Chalk wrapper",
                "The configured fix strategy would change what the container runs for this image; the right fix is named.",
            ),
            Rule::ImageConfigUnknown => (
                "image-config-unknown",
                "ImageConfigUnknown",
                Severity::Warning,
                Outcome::Warn,
                "Chalk wrapper",
                "A container sets command, but the image config is unknown, so whether chalk is bypassed is unknown.",
            ),
            Rule::PlatformsDisagree => (
                "platforms-disagree",
                "PlatformsDisagree",
                Severity::Warning,
                Outcome::Warn,
                "Chalk wrapper",
                "The platforms of a multi-arch image have different ENTRYPOINTs, so no single fix is right.",
            ),
            Rule::ImagePinned => (
                "image-pinned",
                "ImagePinned",
                Severity::Note,
                Outcome::Warn,
                "Image pinning",
                "An image tag was pinned to the digest the registry serves for it.",
            ),
            Rule::InvalidImageReference => (
                "invalid-image-reference",
                "InvalidImageReference",
                Severity::Warning,
                Outcome::Error,
                "Invalid object",
                "The container image is not a valid image reference.",
            ),
            Rule::InvalidContainer => (
                "invalid-container",
                "InvalidContainer",
                Severity::Warning,
                Outcome::Error,
                "Invalid object",
                "The container's command, args or image has the wrong type.",
            ),
            Rule::InvalidModeAnnotation => (
                "invalid-mode-annotation",
                "InvalidModeAnnotation",
                Severity::Warning,
                Outcome::Error,
                "Invalid object",
                "The mode annotation is not one of off, audit or fix.",
            ),
            Rule::HelmCommandOverride => (
                "helm-command-override",
                "HelmCommandOverride",
                Severity::Warning,
                Outcome::Fail,
                "Chalk wrapper",
                "A Helm chart sets command:, which replaces a chalk-wrapped ENTRYPOINT; use args: instead.",
            ),
            Rule::ControllerOwned => (
                "controller-owned",
                "ControllerOwned",
                Severity::Note,
                Outcome::Skip,
                "Ownership",
                "A controller owns the object and would replace a patched copy, so it is never patched: fix its owner.",
            ),
            Rule::OutOfScope => (
                "out-of-scope",
                "OutOfScope",
                Severity::Note,
                Outcome::Skip,
                "Ownership",
                "The scope is pods, so this object is reported, not patched; its Pods are fixed.",
            ),
        };
        RuleInfo {
            id,
            name,
            severity,
            outcome,
            category,
            description,
        }
    }

    /// The stable kebab-case id (reports, metrics, SARIF `ruleId`, audit
    /// annotation keys).
    pub fn id(self) -> &'static str {
        self.info().id
    }

    /// The id in PascalCase: SARIF's `name` for a rule.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// How serious a finding of this rule is (SARIF's `level`).
    pub fn severity(self) -> Severity {
        self.info().severity
    }

    /// What a finding of this rule is as a PolicyReport result.
    pub fn outcome(self) -> Outcome {
        self.info().outcome
    }

    /// The group a rule belongs to (PolicyReport `category`).
    pub fn category(self) -> &'static str {
        self.info().category
    }

    /// One sentence on what the rule means, for reports.
    pub fn description(self) -> &'static str {
        self.info().description
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_names_spell_them() {
        let mut ids: Vec<_> = Rule::ALL.iter().map(|r| r.id()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), Rule::ALL.len());
        for rule in Rule::ALL {
            let pascal: String = rule
                .id()
                .split('-')
                .map(|w| w[..1].to_ascii_uppercase() + &w[1..])
                .collect();
            assert_eq!(rule.name(), pascal);
            // The serde name (JSON reports, audit annotations) is the id.
            assert_eq!(serde_json::to_value(rule).unwrap(), rule.id());
        }
    }
}
