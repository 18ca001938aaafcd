//! The decision rule (README.md, "Why"), as a table: every chalk wrap shape
//! (and the old forms) × strategy × container command line, with the exact
//! command and args that result.

#[path = "support/engine.rs"]
mod support;

use entrypoint_guard::engine::{Fix, Mode, Policy, Rule, Strategy, UnknownImages, inspect};
use entrypoint_guard::image::{Entrypoint, Facts, ImageFacts, PlatformEntrypoint};
use support::{command_line, facts, fixed, pod, v};

const IMAGE: &str = "registry.example/app:1.0";
const C0: &str = "/spec/containers/0";

/// The bare wrapper. Older chalk releases also wrote this for a shell-form
/// ENTRYPOINT (losing its command), so that case is this one.
const BARE: &[&str] = &["/chalk", "exec", "--"];
const ONE: &[&str] = &["/chalk", "exec", "--exec-command-name", "echo", "--"];
const TWO: &[&str] = &["/chalk", "exec", "--exec-command-name", "one", "--", "entrypoint"];
const SHELL: &[&str] = &[
    "/chalk",
    "exec",
    "--exec-command-name",
    "/bin/sh",
    "--",
    "-c",
    "echo hello",
];
const FLAGS: &[&str] = &["/chalk", "exec", "--heartbeat", "--exec-command-name", "python", "--"];
const BARE_FLAGS: &[&str] = &["/chalk", "exec", "--heartbeat", "--"];
const OLD_BARE: &[&str] = &["/chalk", "exec"];
const OLD_ONE: &[&str] = &["/chalk", "exec", "--exec-command-name", "echo"];
const NOT_WRAPPED: &[&str] = &["python"];
const NO_ENTRYPOINT: &[&str] = &[];

/// What the table expects for one case.
#[derive(Debug)]
enum Want {
    /// The fix applies: exact command and args after it.
    Fixed(Fix, Option<&'static [&'static str]>, Option<&'static [&'static str]>),
    /// Reported with this rule, container unchanged.
    Reported(Rule),
    /// Nothing found, container unchanged.
    Untouched,
}

fn policy(strategy: Strategy) -> Policy {
    Policy {
        strategy,
        pin_digests: false,
        ..Policy::default()
    }
}

fn check(entrypoint: &[&str], strategy: Strategy, command: Option<&[&str]>, args: Option<&[&str]>, want: Want) {
    let object = pod(IMAGE, command, args);
    let (after, inspection) = fixed(&object, &facts(IMAGE, entrypoint, None), &policy(strategy));
    let case = format!("entrypoint {entrypoint:?}, strategy {strategy:?}, command {command:?}, args {args:?}");
    let before = command_line(&object, C0);
    match want {
        Want::Fixed(fix, want_command, want_args) => {
            assert_eq!(inspection.findings.len(), 1, "{case}: {:#?}", inspection.findings);
            let f = &inspection.findings[0];
            assert_eq!(
                (f.rule, f.fix, f.applied),
                (Rule::CommandBypassesWrapper, Some(fix), true),
                "{case}"
            );
            let expected = (want_command.map(v), want_args.map(v));
            assert_eq!(command_line(&after, C0), expected, "{case}");
        }
        Want::Reported(rule) => {
            let rules: Vec<Rule> = inspection.findings.iter().map(|f| f.rule).collect();
            assert_eq!(rules, [rule], "{case}");
            assert!(inspection.patch.is_empty(), "{case}: reported findings change nothing");
            assert_eq!(command_line(&after, C0), before, "{case}");
        }
        Want::Untouched => {
            assert!(inspection.findings.is_empty(), "{case}: {:#?}", inspection.findings);
            assert_eq!(after, object, "{case}");
        }
    }
}

const C: &[&str] = &["sh", "-c"];
const A: &[&str] = &["echo hi"];

#[test]
fn auto_strategy_picks_the_right_fix_for_every_shape() {
    use Want::*;
    let prepended: &[&str] = &["/chalk", "exec", "--exec-command-name", "sh", "--", "-c"];
    type Row = (&'static [&'static str], Option<&'static [&'static str]>, Want);
    let rows: &[Row] = &[
        (BARE, Some(A), Fixed(Fix::Args, None, Some(&["sh", "-c", "echo hi"]))),
        (BARE, None, Fixed(Fix::Args, None, Some(&["sh", "-c"]))),
        (
            BARE_FLAGS,
            Some(A),
            Fixed(Fix::Args, None, Some(&["sh", "-c", "echo hi"])),
        ),
        (ONE, Some(A), Fixed(Fix::Prepend, Some(prepended), Some(A))),
        (ONE, None, Fixed(Fix::Prepend, Some(prepended), None)),
        (TWO, Some(A), Fixed(Fix::Prepend, Some(prepended), Some(A))),
        (SHELL, Some(A), Fixed(Fix::Prepend, Some(prepended), Some(A))),
        (
            FLAGS,
            Some(A),
            Fixed(
                Fix::Prepend,
                Some(&["/chalk", "exec", "--heartbeat", "--exec-command-name", "sh", "--", "-c"]),
                Some(A),
            ),
        ),
        (OLD_BARE, Some(A), Fixed(Fix::Prepend, Some(prepended), Some(A))),
        (OLD_ONE, Some(A), Fixed(Fix::Prepend, Some(prepended), Some(A))),
        (NOT_WRAPPED, Some(A), Untouched),
        (NO_ENTRYPOINT, Some(A), Untouched),
    ];
    for (entrypoint, args, want) in rows.iter().map(|(e, a, w)| (*e, *a, w)) {
        let want = match want {
            Fixed(f, c, a) => Fixed(*f, *c, *a),
            Reported(r) => Reported(*r),
            Untouched => Untouched,
        };
        check(entrypoint, Strategy::Auto, Some(C), args, want);
    }
}

#[test]
fn args_strategy_applies_only_where_args_is_right() {
    check(
        BARE,
        Strategy::Args,
        Some(C),
        Some(A),
        Want::Fixed(Fix::Args, None, Some(&["sh", "-c", "echo hi"])),
    );
    for shape in [ONE, TWO, SHELL, FLAGS, OLD_BARE, OLD_ONE] {
        check(
            shape,
            Strategy::Args,
            Some(C),
            Some(A),
            Want::Reported(Rule::PreferredFixWrong),
        );
    }
    check(NOT_WRAPPED, Strategy::Args, Some(C), Some(A), Want::Untouched);
}

#[test]
fn prepend_strategy_prepends_for_every_wrapped_shape() {
    let prepended: &[&str] = &["/chalk", "exec", "--exec-command-name", "sh", "--", "-c"];
    for shape in [BARE, ONE, TWO, SHELL, OLD_BARE, OLD_ONE] {
        check(
            shape,
            Strategy::Prepend,
            Some(C),
            Some(A),
            Want::Fixed(Fix::Prepend, Some(prepended), Some(A)),
        );
    }
    check(NOT_WRAPPED, Strategy::Prepend, Some(C), None, Want::Untouched);
}

#[test]
fn never_touches_absent_empty_or_already_wrapped_commands() {
    let wrapped: &[&str] = &["/chalk", "exec", "--exec-command-name", "sh", "--", "-c"];
    for shape in [BARE, ONE, TWO, SHELL, FLAGS, OLD_BARE, OLD_ONE, NOT_WRAPPED] {
        for strategy in [Strategy::Auto, Strategy::Args, Strategy::Prepend] {
            check(shape, strategy, None, Some(A), Want::Untouched);
            check(shape, strategy, None, None, Want::Untouched);
            check(shape, strategy, Some(&[]), Some(A), Want::Untouched);
            check(shape, strategy, Some(wrapped), Some(A), Want::Untouched);
            check(
                shape,
                strategy,
                Some(&["/chalk", "exec", "--", "sh"]),
                None,
                Want::Untouched,
            );
        }
    }
}

#[test]
fn unknown_images_follow_the_configured_behaviour() {
    let object = pod(IMAGE, Some(C), Some(A));
    let unknown = Facts::new();
    let run = |unknown_images| {
        let p = Policy {
            unknown_images,
            ..policy(Strategy::Auto)
        };
        fixed(&object, &unknown, &p)
    };
    let (after, i) = run(UnknownImages::Report);
    assert_eq!(
        i.findings.iter().map(|f| f.rule).collect::<Vec<_>>(),
        [Rule::ImageConfigUnknown]
    );
    assert_eq!(after, object);
    let (after, i) = run(UnknownImages::Ignore);
    assert!(i.findings.is_empty());
    assert_eq!(after, object);
    let (after, _) = run(UnknownImages::Args);
    assert_eq!(command_line(&after, C0), (None, Some(v(&["sh", "-c", "echo hi"]))));
    let (after, _) = run(UnknownImages::Prepend);
    assert_eq!(
        command_line(&after, C0),
        (
            Some(v(&["/chalk", "exec", "--exec-command-name", "sh", "--", "-c"])),
            Some(v(A))
        )
    );
}

#[test]
fn disagreeing_platforms_are_reported_not_fixed() {
    let mut f = Facts::new();
    f.insert(
        IMAGE,
        ImageFacts {
            digest: None,
            entrypoint: Entrypoint::PlatformsDisagree {
                platforms: vec![
                    PlatformEntrypoint {
                        platform: "linux/amd64".into(),
                        entrypoint: v(BARE),
                    },
                    PlatformEntrypoint {
                        platform: "linux/arm64".into(),
                        entrypoint: v(ONE),
                    },
                ],
            },
            source: None,
        },
    );
    let object = pod(IMAGE, Some(C), None);
    let (after, i) = fixed(&object, &f, &policy(Strategy::Auto));
    assert_eq!(i.findings[0].rule, Rule::PlatformsDisagree);
    assert!(i.findings[0].message.contains("linux/arm64"));
    assert_eq!(after, object);
}

#[test]
fn audit_mode_reports_the_same_findings_without_a_patch() {
    let object = pod(IMAGE, Some(C), Some(A));
    let f = facts(IMAGE, BARE, None);
    let fix = inspect(&object, &f, &policy(Strategy::Auto), Mode::Fix);
    let audit = inspect(&object, &f, &policy(Strategy::Auto), Mode::Audit);
    assert!(audit.patch.is_empty());
    assert_eq!(audit.proposed, fix.patch);
    assert_eq!(audit.findings.len(), fix.findings.len());
    assert!(!audit.findings[0].applied && fix.findings[0].applied);
    assert!(audit.findings[0].summary().contains("move it into args"));
    assert!(fix.findings[0].summary().contains("moved command into args"));
    let off = Policy {
        mode: Mode::Off,
        ..policy(Strategy::Auto)
    };
    assert_eq!(inspect(&object, &f, &off, Mode::Fix), Default::default());
}

#[test]
fn custom_wrapper_prefix() {
    let p = Policy {
        wrapper: v(&["/usr/local/bin/chalk", "exec"]),
        ..policy(Strategy::Auto)
    };
    let object = pod(IMAGE, Some(C), None);
    let (after, _) = fixed(
        &object,
        &facts(IMAGE, &["/usr/local/bin/chalk", "exec", "--"], None),
        &p,
    );
    assert_eq!(command_line(&after, C0), (None, Some(v(C))));
    // The default prefix does not match a custom-path wrapper.
    let (after, i) = fixed(
        &object,
        &facts(IMAGE, &["/usr/local/bin/chalk", "exec", "--"], None),
        &policy(Strategy::Auto),
    );
    assert!(i.findings.is_empty());
    assert_eq!(after, object);
}
