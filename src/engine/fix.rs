//! The fixes for one container: which command fix is right for the image
//! (README.md, "Why": the args fix only under the bare wrapper, else the
//! prepend fix) and digest pinning. Each returns a finding carrying its
//! patch operations; [`super::inspect()`] decides whether they are applied.
//! Every fix a front end shows is built here, so none is written twice.

use serde_json::Value;

use super::chalk::{self, Wrapping};
use super::finding::{Change, CommandLine, ContainerRef, Finding, Fix};
use super::json;
use super::patch;
use super::policy::{Policy, Strategy, UnknownImages};
use super::rule::Rule;
use crate::image::{Entrypoint, ImageFacts, Reference};

/// Whether a `command` can bypass the wrapper: an empty one, or one that
/// already starts with the wrapper, is left alone. Every front end asks
/// this (the chart scan too), so none reports what the engine would not.
pub fn may_bypass(command: &[String], policy: &Policy) -> bool {
    !command.is_empty() && !command.starts_with(&policy.wrapper)
}

/// The prepend fix when nothing is known of the image's chalk flags (what
/// `unknownImages: prepend` applies, and what a chart's `command:` is told
/// to become): the bare wrapper with `--exec-command-name command[0]`.
/// `command` must be non-empty.
pub fn prepend_unknown(command: &[String], policy: &Policy) -> Vec<String> {
    chalk::prepend_bare(&policy.wrapper, command)
}

/// The command decision: which fix puts chalk back for this image, or why
/// none is made.
pub(super) fn decide(
    doc: &Value,
    at: &ContainerRef,
    object_at: &str,
    command: Vec<String>,
    args: Option<Vec<String>>,
    facts: &ImageFacts,
    policy: &Policy,
) -> Option<Finding> {
    let report = |rule: Rule, message: String| Finding::report(rule, object_at, Some(at.clone()), message);
    // The message is written into one buffer as the decision is made: every
    // fixed container of every admission has one.
    let mut message = String::with_capacity(256);
    message.push_str("command replaces the chalk-wrapped entrypoint: ");
    let (fix, prepended) = match &facts.entrypoint {
        Entrypoint::Known { entrypoint } => {
            let Wrapping::Wrapped(wrapper) = chalk::parse(entrypoint, &policy.wrapper) else {
                return None; // not wrapped: `command` bypasses nothing
            };
            let shown = |message: &mut String| {
                message.push_str("image entrypoint ");
                json::push_strings(message, entrypoint);
            };
            if wrapper.is_bare() {
                shown(&mut message);
                message.push_str(" is the bare chalk wrapper");
                match policy.strategy {
                    Strategy::Auto | Strategy::Args => (Fix::Args, None),
                    Strategy::Prepend => {
                        message.push_str("; strategy prepend");
                        (Fix::Prepend, Some(wrapper.prepend(&policy.wrapper, &command)))
                    }
                }
            } else if policy.strategy == Strategy::Args {
                let shown = format!("image entrypoint {}", show(entrypoint));
                return Some(report(
                    Rule::PreferredFixWrong,
                    format!(
                        "command {} bypasses chalk; the configured args fix would also run what {shown} \
                         adds after the wrapper, so it is not applied: the prepend fix is right for this image",
                        show(&command)
                    ),
                ));
            } else {
                shown(&mut message);
                message.push_str(" names its own program, so the wrapper is prepended with the image's chalk flags");
                (Fix::Prepend, Some(wrapper.prepend(&policy.wrapper, &command)))
            }
        }
        Entrypoint::PlatformsDisagree { platforms } => {
            let list: Vec<String> = platforms
                .iter()
                .map(|p| format!("{} {}", p.platform, show(&p.entrypoint)))
                .collect();
            return Some(report(
                Rule::PlatformsDisagree,
                format!(
                    "command {} left unchanged: the image's platforms disagree ({})",
                    show(&command),
                    list.join("; ")
                ),
            ));
        }
        Entrypoint::Unknown { reason } => match policy.unknown_images {
            UnknownImages::Ignore => return None,
            UnknownImages::Report => {
                return Some(report(
                    Rule::ImageConfigUnknown,
                    format!(
                        "command {} may bypass a chalk wrapper, but the image config is unknown ({reason}); left unchanged",
                        show(&command)
                    ),
                ));
            }
            UnknownImages::Args => {
                message.push_str(&format!("image config unknown ({reason}); unknownImages is args"));
                (Fix::Args, None)
            }
            UnknownImages::Prepend => {
                message.push_str(&format!("image config unknown ({reason}); unknownImages is prepend"));
                (Fix::Prepend, Some(prepend_unknown(&command, policy)))
            }
        },
    };

    let before = CommandLine {
        command: Some(command.clone()),
        args: args.clone(),
    };
    let (after, ops) = match prepended {
        None => {
            let mut moved = command;
            moved.extend(args.unwrap_or_default());
            let ops = vec![
                patch::remove(patch::join(&at.pointer, "/command")),
                patch::set_strings(doc, patch::join(&at.pointer, "/args"), &moved),
            ];
            (
                CommandLine {
                    command: None,
                    args: Some(moved),
                },
                ops,
            )
        }
        Some(new_command) => {
            let ops = vec![patch::replace(
                patch::join(&at.pointer, "/command"),
                Value::from(new_command.clone()),
            )];
            (
                CommandLine {
                    command: Some(new_command),
                    args,
                },
                ops,
            )
        }
    };
    message.push_str(match fix {
        Fix::Args => "; fix: move command into args",
        _ => "; fix: prepend the chalk wrapper to command",
    });
    Some(Finding {
        rule: Rule::CommandBypassesWrapper,
        object: object_at.to_string(),
        container: Some(at.clone()),
        message,
        fix: Some(fix),
        applied: false,
        change: Some(Change::Command { before, after }),
        held: None,
        unchanged: false,
        ops,
    })
}

pub(super) fn pin(at: ContainerRef, object_at: &str, facts: &ImageFacts, policy: &Policy) -> Option<Finding> {
    let reference = match Reference::parse(&at.image) {
        Ok(r) => r,
        Err(e) => {
            let message = format!("image {:?}: {e}; not pinned", at.image);
            return Some(Finding::report(
                Rule::InvalidImageReference,
                object_at,
                Some(at),
                message,
            ));
        }
    };
    if reference.digest().is_some() {
        return None; // already pinned: never re-resolved
    }
    let digest = facts.digest.as_deref()?;
    let pinned = reference.pinned(digest, policy.keep_tag);
    // One buffer, sized once: every pinned container of every admission has this message.
    let mirror = facts.source.as_deref();
    let mut message =
        String::with_capacity(48 + at.image.len() + digest.len() + pinned.len() + mirror.map_or(0, str::len));
    message.push_str("image ");
    message.push_str(&at.image);
    message.push_str(" resolved to ");
    message.push_str(digest);
    if let Some(mirror) = mirror {
        message.push_str(" by mirror ");
        message.push_str(mirror);
    }
    message.push_str("; pinned as ");
    message.push_str(&pinned);
    Some(pin_to(at, object_at, pinned, message))
}

/// On UPDATE, puts back the pin an earlier admission made (`kept`, the old
/// image) over the same tag re-applied without it: the tag is not resolved
/// again, so a tag that moved upstream does not roll the workload.
pub(super) fn keep_pin(at: ContainerRef, object_at: &str, kept: String) -> Finding {
    let message = format!(
        "image {} keeps the pin {kept} made at an earlier admission; an update does not resolve the tag again",
        at.image
    );
    pin_to(at, object_at, kept, message)
}

/// The [`Rule::ImagePinned`] finding that rewrites the container's image to
/// `pinned` (the finding takes the container's reference: it is the last one).
fn pin_to(at: ContainerRef, object_at: &str, pinned: String, message: String) -> Finding {
    let ops = vec![patch::replace(
        patch::join(&at.pointer, "/image"),
        Value::String(pinned.clone()),
    )];
    Finding {
        rule: Rule::ImagePinned,
        object: object_at.to_string(),
        change: Some(Change::Image {
            before: at.image.clone(),
            after: pinned,
        }),
        container: Some(at),
        message,
        fix: Some(Fix::Pin),
        applied: false,
        held: None,
        unchanged: false,
        ops,
    }
}

fn show(items: &[String]) -> String {
    serde_json::to_string(items).expect("strings serialize")
}
