//! Findings: what the engine found, where, why, and what it changes.

use std::borrow::Cow;

use json_patch::PatchOperation;
use serde::Serialize;

use super::rule::Rule;

/// An object's controller: its owner reference with `controller: true`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Owner {
    /// The owner's kind, e.g. `Deployment`.
    pub kind: String,
    /// The owner's name.
    pub name: String,
    /// The owner's uid (empty if the reference has none).
    #[serde(skip)]
    pub uid: String,
}

/// An object reported but not patched, whatever its mode: the object and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Held {
    /// The object's kind, e.g. `ReplicaSet`.
    pub kind: String,
    /// The object's name (its `generateName` followed by `*` when it has none yet).
    pub name: String,
    /// The controller that owns it; `None` when `scope: pods` holds it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
}

impl Held {
    /// Why it is held, as a metric label: `owned` or `scope`.
    pub fn reason(&self) -> &'static str {
        if self.owner.is_some() { "owned" } else { "scope" }
    }
}

/// The fix a finding proposes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fix {
    /// Remove `command`, set `args = command + args`.
    Args,
    /// Prepend the chalk wrapper (with `--exec-command-name`) to `command`.
    Prepend,
    /// Rewrite `image` to name its digest.
    Pin,
}

impl Fix {
    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Fix::Args => "args",
            Fix::Prepend => "prepend",
            Fix::Pin => "pin",
        }
    }
}

/// The container a finding is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ContainerRef {
    /// JSON pointer to the container, e.g. `/spec/template/spec/containers/0`.
    pub pointer: String,
    /// The same as a field path, e.g. `spec.template.spec.containers[0]`.
    pub field: String,
    /// The container's `name`.
    pub name: String,
    /// The container's `image` as written.
    pub image: String,
    /// Whether it is an init container.
    pub init: bool,
}

/// A container's `command` and `args` (absent is `None`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CommandLine {
    /// `command`, if set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// `args`, if set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
}

/// What a finding changes (or would change, when not applied).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "field", rename_all = "camelCase")]
pub enum Change {
    /// The container's command line.
    Command {
        /// Before the fix.
        before: CommandLine,
        /// After the fix.
        after: CommandLine,
    },
    /// The container's image.
    Image {
        /// Before pinning.
        before: String,
        /// After pinning.
        after: String,
    },
}

/// One thing the engine found.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// What kind of finding.
    pub rule: Rule,
    /// JSON pointer to the top-level object (`""`, or a `List` item).
    pub object: String,
    /// The container, when the finding is about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerRef>,
    /// Why, in a sentence.
    pub message: String,
    /// The fix proposed, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<Fix>,
    /// Whether the fix is in the patch (mode `fix`); `false` in audit mode.
    pub applied: bool,
    /// Before and after, when there is a fix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<Change>,
    /// For [`Rule::ControllerOwned`] and [`Rule::OutOfScope`]: the object
    /// held back from patching, and its owner.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held: Option<Held>,
    /// On UPDATE: the container's image, command and args are those of the
    /// old object, so the finding is reported and never applied.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unchanged: bool,
    /// The patch operations of the fix, relative to the whole document.
    #[serde(skip)]
    pub ops: Vec<PatchOperation>,
}

impl Finding {
    /// A finding of `rule` about the object at `object` (and `container`)
    /// that proposes no fix: a report only.
    pub fn report(rule: Rule, object: &str, container: Option<ContainerRef>, message: String) -> Finding {
        Finding {
            rule,
            object: object.to_string(),
            container,
            message,
            fix: None,
            applied: false,
            change: None,
            held: None,
            unchanged: false,
            ops: Vec::new(),
        }
    }

    /// A one-line summary under 120 characters, for admission warnings.
    pub fn summary(&self) -> String {
        const MAX: usize = 119;
        // Built once into one buffer: every admission answer warns with it.
        let done = |applied: &'static str, proposed: &'static str| {
            Cow::Borrowed(if self.applied { applied } else { proposed })
        };
        let what: Cow<'static, str> = match (self.rule, self.fix) {
            (Rule::CommandBypassesWrapper, Some(Fix::Args)) => done(
                "moved command into args so chalk runs it",
                "command bypasses chalk: move it into args",
            ),
            (Rule::CommandBypassesWrapper, Some(Fix::Prepend)) => done(
                "prepended the chalk wrapper to command",
                "command bypasses chalk: prepend the wrapper",
            ),
            (Rule::ImagePinned, _) => match &self.change {
                Some(Change::Image { after, .. }) => {
                    let digest = after.rsplit_once('@').map_or("", |(_, d)| d);
                    let mut what = String::with_capacity(48);
                    what.push_str(if self.applied {
                        "image pinned to "
                    } else {
                        "image would pin to "
                    });
                    what.push_str(&clip(digest, 19));
                    Cow::Owned(what)
                }
                _ => "image pinned".into(),
            },
            (Rule::PreferredFixWrong, _) => {
                "command bypasses chalk; configured args fix is wrong here, use prepend".into()
            }
            (Rule::ImageConfigUnknown, _) => "sets command but the image config is unknown; not changed".into(),
            (Rule::PlatformsDisagree, _) => "image platforms have different entrypoints; not changed".into(),
            (Rule::InvalidImageReference, _) => "image is not a valid reference; not pinned".into(),
            (Rule::InvalidContainer, _) => "command, args or image has the wrong type; not changed".into(),
            (Rule::InvalidModeAnnotation, _) => "mode annotation is not off, audit or fix; ignored".into(),
            (Rule::HelmCommandOverride, _) => "chart sets command:; use args:".into(),
            (Rule::CommandBypassesWrapper, _) => "command bypasses chalk".into(),
            (Rule::ControllerOwned | Rule::OutOfScope, _) => match &self.held {
                Some(held) => return held_summary(held, MAX),
                None => "not patched".into(),
            },
        };
        const UNCHANGED: &str = " (unchanged by this update)";
        let what_chars = what.chars().count() + if self.unchanged { UNCHANGED.len() } else { 0 };
        let mut line = String::with_capacity(MAX + 8);
        // The container name gets whatever room the message leaves.
        match &self.container {
            Some(c) => {
                const HEAD: &str = "entrypoint-guard: container \"";
                let fixed = HEAD.len() + "\": ".len() + what_chars;
                let room = MAX.saturating_sub(fixed).max(8);
                line.push_str(HEAD);
                if c.name.chars().count() <= room {
                    line.push_str(&c.name);
                } else {
                    line.push_str(&clip(&c.name, room));
                }
                line.push_str("\": ");
            }
            None => line.push_str("entrypoint-guard: object: "),
        }
        line.push_str(&what);
        if self.unchanged {
            line.push_str(UNCHANGED);
        }
        if line.chars().count() <= MAX {
            line
        } else {
            clip(&line, MAX)
        }
    }
}

/// The warning for a held object: the object, its owner and what to fix,
/// within `max` characters. The explanation's tail is shortened first, then
/// the object's name, then the owner's (what to fix matters most).
fn held_summary(held: &Held, max: usize) -> String {
    let line = |name: &str, owner_name: &str, tail: &str| match &held.owner {
        Some(owner) => format!(
            "entrypoint-guard: {} {name} is owned by {} {owner_name}: fix the {}{tail}",
            held.kind, owner.kind, owner.kind
        ),
        None => format!(
            "entrypoint-guard: {} {name} is not patched (scope: pods){tail}",
            held.kind
        ),
    };
    let owner_name = held.owner.as_ref().map_or("", |o| o.name.as_str());
    for tail in ["; its Pods are fixed when created", "; its Pods are fixed", ""] {
        let full = line(&held.name, owner_name, tail);
        if full.chars().count() <= max {
            return full;
        }
    }
    // Without the tail it is still too long: clip the object's name (to 12
    // characters at least), then the owner's.
    let over = line(&held.name, owner_name, "").chars().count() - max;
    let name = clip(&held.name, held.name.chars().count().saturating_sub(over).max(12));
    let over = line(&name, owner_name, "").chars().count().saturating_sub(max);
    let owner_name = clip(owner_name, owner_name.chars().count().saturating_sub(over).max(12));
    clip(&line(&name, &owner_name, ""), max)
}

/// `s` cut to at most `max` characters (ending in `...` when cut). ASCII,
/// not `…`: the text goes into HTTP `Warning` headers and terminals that may
/// not take UTF-8 well.
pub(crate) fn clip(s: &str, max: usize) -> String {
    const ELLIPSIS: &str = "...";
    // Cut at a character boundary found by index: one copy, not one push per character.
    let head = |n: usize| s.char_indices().nth(n).map_or(s, |(at, _)| &s[..at]);
    if s.chars().count() <= max {
        s.to_string()
    } else if max < ELLIPSIS.len() {
        head(max).to_string()
    } else {
        let head = head(max - ELLIPSIS.len());
        let mut out = String::with_capacity(head.len() + ELLIPSIS.len());
        out.push_str(head);
        out.push_str(ELLIPSIS);
        out
    }
}

/// A JSON pointer as a field path: `/spec/containers/0` → `spec.containers[0]`.
pub(crate) fn field_path(pointer: &str) -> String {
    // Never longer than the pointer but for a `[`/`]` per index; tokens are
    // unescaped only when they hold a `~` (most never do).
    let mut out = String::with_capacity(pointer.len() + 8);
    for token in pointer.split('/').skip(1) {
        let token = if token.contains('~') {
            std::borrow::Cow::Owned(token.replace("~1", "/").replace("~0", "~"))
        } else {
            std::borrow::Cow::Borrowed(token)
        };
        if !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()) {
            out.push('[');
            out.push_str(&token);
            out.push(']');
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&token);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_paths_read_like_kubectl_explain() {
        assert_eq!(
            field_path("/spec/template/spec/containers/0"),
            "spec.template.spec.containers[0]"
        );
        assert_eq!(
            field_path("/items/2/spec/initContainers/1"),
            "items[2].spec.initContainers[1]"
        );
        assert_eq!(field_path(""), "");
    }

    #[test]
    fn clip_cuts_at_characters() {
        let old = |s: &str, max: usize| -> String {
            if s.chars().count() <= max {
                s.to_string()
            } else if max < 3 {
                s.chars().take(max).collect()
            } else {
                s.chars().take(max - 3).collect::<String>() + "..."
            }
        };
        for s in ["", "a", "abcdef", "éé€€𝄞x", "ab𝄞cdé"] {
            for max in 0..8 {
                assert_eq!(clip(s, max), old(s, max), "{s:?} {max}");
            }
        }
    }

    #[test]
    fn summaries_stay_under_120_characters() {
        let long_name = "n".repeat(300);
        for rule in Rule::ALL {
            for applied in [true, false] {
                let f = Finding {
                    rule,
                    object: String::new(),
                    container: Some(ContainerRef {
                        pointer: "/spec/containers/0".into(),
                        field: "spec.containers[0]".into(),
                        name: long_name.clone(),
                        image: "x".into(),
                        init: false,
                    }),
                    message: String::new(),
                    fix: Some(Fix::Prepend),
                    applied,
                    change: None,
                    held: None,
                    unchanged: false,
                    ops: Vec::new(),
                };
                let s = f.summary();
                assert!(s.chars().count() < 120, "{} chars: {s}", s.chars().count());
                assert!(s.contains("nnnnnnnn"), "the name keeps what room there is: {s}");
            }
        }
    }

    #[test]
    fn held_summaries_name_the_owner_within_120_characters() {
        let note = |kind: &str, name: &str, owner: Option<(&str, &str)>| {
            let finding = Finding {
                rule: if owner.is_some() {
                    Rule::ControllerOwned
                } else {
                    Rule::OutOfScope
                },
                object: String::new(),
                container: None,
                message: String::new(),
                fix: None,
                applied: false,
                change: None,
                held: Some(Held {
                    kind: kind.into(),
                    name: name.into(),
                    owner: owner.map(|(kind, name)| Owner {
                        kind: kind.into(),
                        name: name.into(),
                        uid: String::new(),
                    }),
                }),
                unchanged: false,
                ops: Vec::new(),
            };
            finding.summary()
        };
        assert_eq!(
            note("ReplicaSet", "web-5d8f", Some(("Deployment", "web"))),
            "entrypoint-guard: ReplicaSet web-5d8f is owned by Deployment web: fix the Deployment; its Pods are fixed when created"
        );
        assert_eq!(
            note(
                "ReplicaSet",
                "app-deploy-7455cfb69d",
                Some(("Deployment", "app-deploy"))
            ),
            "entrypoint-guard: ReplicaSet app-deploy-7455cfb69d is owned by Deployment app-deploy: fix the Deployment"
        );
        assert_eq!(
            note("Deployment", "web", None),
            "entrypoint-guard: Deployment web is not patched (scope: pods); its Pods are fixed when created"
        );
        let long = "n".repeat(250);
        for owner in [Some(("Deployment", "web")), Some(("Deployment", long.as_str())), None] {
            for name in ["short", long.as_str()] {
                let s = note("ReplicationController", name, owner);
                assert!(s.chars().count() < 120, "{} chars: {s}", s.chars().count());
                if let Some((kind, owner_name)) = owner {
                    assert!(s.contains(&format!("fix the {kind}")), "{s}");
                    assert!(s.contains(&owner_name[..owner_name.len().min(10)]), "{s}");
                }
            }
        }
    }
}
