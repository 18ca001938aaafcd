//! `review --write` and `--diff`: the fixes written back into the manifest
//! files. Golden diffs over tricky YAML show that only the fixed values'
//! bytes change; a second run changes nothing; what cannot be written alone
//! (aliases, shared anchors) is reported and left; files are replaced
//! atomically, keep their permissions, and an unwritable one stays intact.

#[path = "support/review.rs"]
mod cli;
#[path = "support/write.rs"]
mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use entrypoint_guard::review::write::{self, FileEdit};
use serde_json::Value;
use support::{fixture, fixture_path, plan};

/// The diff of a fixture's edit, then the fixes left out: the golden text.
fn golden(name: &str, annotate: bool) -> (String, FileEdit) {
    let text = fixture(name);
    let (_, edit) = plan(name, &text, annotate);
    let mut out = write::file::diff(&edit);
    for unwritten in &edit.unwritten {
        out.push_str(&format!("# not written: {unwritten}\n"));
    }
    assert_comments_survive(&edit);
    assert_rerun_changes_nothing(name, &edit, annotate);
    (out, edit)
}

/// Every comment line of the original is still there, in order.
fn assert_comments_survive(edit: &FileEdit) {
    let after: Vec<&str> = edit.after.lines().collect();
    let mut at = 0;
    for line in edit.before.lines().filter(|l| l.trim_start().starts_with('#')) {
        match after[at..].iter().position(|l| *l == line) {
            Some(i) => at += i + 1,
            None => panic!("comment line {line:?} lost or moved:\n{}", edit.after),
        }
    }
}

/// Reviewing the written text again finds nothing more to write.
fn assert_rerun_changes_nothing(name: &str, edit: &FileEdit, annotate: bool) {
    let (_, again) = plan(name, &edit.after, annotate);
    assert_eq!(again.after, edit.after, "{name}: a second run changed the file again");
    assert_eq!(
        again.unwritten.len(),
        edit.unwritten.len(),
        "{name}: what could not be written stays the same"
    );
}

#[test]
fn comments_quoting_and_flow_or_block_style_are_kept() {
    let (diff, edit) = golden("comments-and-quoting.yaml", false);
    assert!(edit.unwritten.is_empty(), "{:?}", edit.unwritten);
    insta::assert_snapshot!("comments_and_quoting", diff);
}

#[test]
fn args_fix_moves_command_words_and_removes_only_the_command_lines() {
    let (diff, edit) = golden("args-merge.yaml", false);
    assert!(edit.unwritten.is_empty(), "{:?}", edit.unwritten);
    insta::assert_snapshot!("args_merge", diff);
}

#[test]
fn multi_document_streams_change_only_the_fixed_documents() {
    let (diff, _) = golden("multi-doc.yaml", false);
    insta::assert_snapshot!("multi_doc", diff);
}

#[test]
fn crlf_line_endings_are_kept() {
    let text = fixture("multi-doc.yaml").replace('\n', "\r\n");
    let (_, edit) = plan("multi-doc.yaml", &text, true);
    assert!(edit.changes());
    assert!(
        !edit.after.replace("\r\n", "").contains('\n'),
        "every line still ends in CRLF:\n{:?}",
        edit.after
    );
    // The same change as with LF endings.
    let (_, lf) = plan("multi-doc.yaml", &fixture("multi-doc.yaml"), true);
    assert_eq!(edit.after.replace("\r\n", "\n"), lf.after);
    assert_rerun_changes_nothing("multi-doc.yaml", &edit, true);
}

#[test]
fn aliased_values_are_reported_not_rewritten() {
    let (diff, edit) = golden("anchors.yaml", false);
    insta::assert_snapshot!("anchors", diff);
    let reasons: Vec<String> = edit.unwritten.iter().map(ToString::to_string).collect();
    assert_eq!(reasons.len(), 4, "{reasons:#?}");
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("containers[0].command is anchored as &cmd")),
        "{reasons:#?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("containers[1].image is written as the alias *image")),
        "{reasons:#?}"
    );
    // The anchored values are left exactly as written.
    assert!(edit.after.contains("image: &image reg.example/named:1\n"));
    assert!(edit.after.contains("command: &cmd [app, --one]\n"));
}

#[test]
fn json_files_stay_json_in_their_own_layout() {
    let (diff, edit) = golden("pod.json", true);
    insta::assert_snapshot!("json", diff);
    let parsed: Value = serde_json::from_str(&edit.after).expect("still JSON");
    assert_eq!(
        parsed["spec"]["containers"][0]["args"],
        serde_json::json!(["run", "--fast", "x"])
    );
}

#[test]
fn the_trace_annotation_is_added_only_when_asked() {
    let (with, _) = golden("annotate.yaml", true);
    insta::assert_snapshot!("annotate", with);
    let (without, edit) = golden("annotate.yaml", false);
    assert!(!without.contains("resolved-images"), "{without}");
    assert!(!edit.after.contains("resolved-images"));
}

/// The written file parses to exactly the engine's fixed document (with
/// `--annotate`), document by document.
#[test]
fn written_documents_are_the_engines_fixed_documents() {
    for name in [
        "comments-and-quoting.yaml",
        "args-merge.yaml",
        "multi-doc.yaml",
        "annotate.yaml",
        "pod.json",
    ] {
        let text = fixture(name);
        let (file, edit) = plan(name, &text, true);
        let rewritten = support::review(name, &edit.after);
        assert_eq!(rewritten.documents.len(), file.documents.len(), "{name}");
        for (before, after) in file.documents.iter().zip(&rewritten.documents) {
            let expected = before.fixed.as_ref().or(before.original.as_ref());
            assert_eq!(after.original.as_ref(), expected, "{name}: document {}", before.index);
        }
    }
}

// ---- the command line ------------------------------------------------------

fn copy_fixtures(dir: &Path, names: &[&str]) {
    for name in names {
        std::fs::copy(fixture_path(name), dir.join(name)).unwrap();
    }
}

#[test]
fn write_replaces_files_atomically_and_keeps_their_permissions() {
    let dir = tempfile::tempdir().unwrap();
    copy_fixtures(dir.path(), &["args-merge.yaml", "images.yaml", "multi-doc.yaml"]);
    let path = dir.path().join("args-merge.yaml");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    // A symlink stays a symlink: the file it points to is rewritten.
    std::os::unix::fs::symlink("multi-doc.yaml", dir.path().join("link.yml")).unwrap();
    let args = [
        "review",
        "-f",
        "args-merge.yaml",
        "-f",
        "link.yml",
        "--images",
        "images.yaml",
    ];

    let dry = cli::run_in(dir.path(), &[&args[..], &["--diff"]].concat(), None);
    assert_eq!(dry.code, 1, "findings exit 1 as without --diff: {dry:?}");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        fixture("args-merge.yaml"),
        "--diff writes nothing"
    );
    assert!(
        dry.stdout.starts_with("--- args-merge.yaml\n+++ args-merge.yaml\n"),
        "{}",
        dry.stdout
    );

    let out = cli::run_in(dir.path(), &[&args[..], &["--write"]].concat(), None);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("args-merge.yaml: wrote 8 fixes"), "{}", out.stderr);
    assert!(out.stderr.contains("link.yml: wrote 4 fixes"), "{}", out.stderr);
    let written = std::fs::read_to_string(&path).unwrap();
    let (_, expected) = plan("args-merge.yaml", &fixture("args-merge.yaml"), false);
    assert_eq!(written, expected.after);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "the original's permissions are kept");
    assert!(
        std::fs::symlink_metadata(dir.path().join("link.yml"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_ne!(
        std::fs::read_to_string(dir.path().join("multi-doc.yaml")).unwrap(),
        fixture("multi-doc.yaml")
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "no temporary files left: {leftovers:?}");

    // The --diff printed before matches what --write wrote, and applies with git.
    let again = cli::run_in(dir.path(), &[&args[..], &["--write", "--diff"]].concat(), None);
    assert_eq!(again.stdout, "", "a second run has nothing to write: {again:?}");
    assert!(!again.stderr.contains("wrote"), "{}", again.stderr);
    let fresh = tempfile::tempdir().unwrap();
    copy_fixtures(fresh.path(), &["args-merge.yaml"]);
    std::fs::write(
        fresh.path().join("fix.diff"),
        dry.stdout.split("--- link.yml").next().unwrap(),
    )
    .unwrap();
    let git = cli::require_tool("git");
    let applied = std::process::Command::new(git)
        .args(["apply", "-p0", "fix.diff"])
        .current_dir(fresh.path())
        .output()
        .unwrap();
    assert!(applied.status.success(), "{}", String::from_utf8_lossy(&applied.stderr));
    assert_eq!(
        std::fs::read_to_string(fresh.path().join("args-merge.yaml")).unwrap(),
        written
    );
}

#[test]
fn an_unwritable_file_is_left_intact_and_named() {
    let dir = tempfile::tempdir().unwrap();
    copy_fixtures(dir.path(), &["args-merge.yaml", "multi-doc.yaml", "images.yaml"]);
    let locked = dir.path().join("args-merge.yaml");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o444)).unwrap();
    let out = cli::run_in(
        dir.path(),
        &[
            "review",
            "-f",
            "args-merge.yaml",
            "-f",
            "multi-doc.yaml",
            "--images",
            "images.yaml",
            "--write",
        ],
        None,
    );
    assert_eq!(out.code, 2, "a file that could not be written exits 2: {out:?}");
    assert!(
        out.stderr
            .contains("args-merge.yaml: the file is read-only; not written"),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read_to_string(&locked).unwrap(), fixture("args-merge.yaml"));
    assert!(
        out.stderr.contains("multi-doc.yaml: wrote"),
        "the other files are still fixed: {}",
        out.stderr
    );
}

#[test]
fn a_file_changed_after_reading_is_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pod.yaml");
    let text = fixture("multi-doc.yaml");
    std::fs::write(&path, &text).unwrap();
    let (mut file, _) = plan("pod.yaml", &text, false);
    file.path = Some(path.clone());
    let edit = write::plan(&file, false);
    std::fs::write(&path, "edited meanwhile\n").unwrap();
    let err = write::file::write(&edit).unwrap_err().to_string();
    assert!(err.contains("pod.yaml: changed since it was read"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "edited meanwhile\n");
}

#[test]
fn byte_order_marks_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bom.yaml");
    std::fs::write(&path, format!("\u{feff}{}", fixture("multi-doc.yaml"))).unwrap();
    std::fs::copy(fixture_path("images.yaml"), dir.path().join("images.yaml")).unwrap();
    let out = cli::run_in(
        dir.path(),
        &["review", "-f", "bom.yaml", "--images", "images.yaml", "--write"],
        None,
    );
    assert_eq!(out.code, 1, "{out:?}");
    let written = std::fs::read_to_string(&path).unwrap();
    assert!(written.starts_with('\u{feff}'), "the BOM stays");
    assert!(written.contains("image: reg.example/bare:1@sha256:"), "{written}");
}

#[test]
fn usage_errors_and_what_is_never_written() {
    let stdin = cli::run(&["review", "-f", "-", "--write"], Some(&fixture("multi-doc.yaml")));
    assert_eq!(stdin.code, 2, "{stdin:?}");
    assert!(
        stdin.stderr.contains("--write cannot write standard input"),
        "{}",
        stdin.stderr
    );

    let images = fixture_path("images.yaml");
    let images = images.to_str().unwrap();
    let diff = cli::run(
        &["review", "-f", "-", "--diff", "--images", images],
        Some(&fixture("multi-doc.yaml")),
    );
    assert_eq!(diff.code, 1, "{diff:?}");
    assert!(diff.stdout.starts_with("--- <stdin>\n+++ <stdin>\n"), "{}", diff.stdout);

    let annotate = cli::run(&["review", "-f", "-", "--annotate"], Some(""));
    assert_eq!(annotate.code, 2, "--annotate needs --write or --diff: {annotate:?}");
    let both = cli::run(&["review", "-f", "-", "--diff", "-o", "json"], Some(""));
    assert_eq!(both.code, 2, "--diff replaces the report: {both:?}");

    // Helm charts are reported as before and never rewritten.
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path().join("chart");
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    std::fs::write(chart.join("Chart.yaml"), "apiVersion: v2\nname: c\nversion: 0.1.0\n").unwrap();
    let template = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n  containers:\n    - name: a\n      image: reg.example/bare:1\n      command: [run]\n";
    std::fs::write(chart.join("templates/pod.yaml"), template).unwrap();
    std::fs::write(chart.join("values.yaml"), "command: [run]\n").unwrap();
    let out = cli::run_in(
        dir.path(),
        &["review", "-f", "chart", "--write", "--images", images],
        None,
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.contains("helm-command-override"), "{}", out.stdout);
    assert_eq!(
        std::fs::read_to_string(chart.join("templates/pod.yaml")).unwrap(),
        template
    );
    assert_eq!(
        std::fs::read_to_string(chart.join("values.yaml")).unwrap(),
        "command: [run]\n"
    );
}

/// The hooks in `.pre-commit-hooks.yaml`, run the way pre-commit runs them:
/// the entry, the user's `args`, then the names of the files committed.
#[test]
fn pre_commit_hooks_check_and_fix() {
    let hooks: Vec<Value> =
        serde_saphyr::from_str(&std::fs::read_to_string(cli::root().join(".pre-commit-hooks.yaml")).unwrap()).unwrap();
    let hook = |id: &str| -> Vec<String> {
        let hook = hooks
            .iter()
            .find(|h| h["id"] == id)
            .unwrap_or_else(|| panic!("hook {id}"));
        for key in ["name", "entry", "language", "files"] {
            assert!(hook[key].is_string(), "{id}: {key}");
        }
        let entry: Vec<String> = hook["entry"]
            .as_str()
            .unwrap()
            .split_whitespace()
            .map(String::from)
            .collect();
        assert_eq!(entry[0], "entrypoint-guard", "the binary `cargo install` puts on PATH");
        entry[1..].to_vec()
    };
    let dir = tempfile::tempdir().unwrap();
    copy_fixtures(dir.path(), &["args-merge.yaml", "multi-doc.yaml", "images.yaml"]);
    let run_hook = |id: &str| {
        let mut args = hook(id);
        args.extend(["--images", "images.yaml", "args-merge.yaml", "multi-doc.yaml"].map(String::from));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cli::run_in(dir.path(), &args, None)
    };
    let check = run_hook("entrypoint-guard");
    assert_eq!(check.code, 1, "the check fails on bypasses: {check:?}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("args-merge.yaml")).unwrap(),
        fixture("args-merge.yaml")
    );
    let fix = run_hook("entrypoint-guard-fix");
    assert_eq!(
        fix.code, 1,
        "a fixer that changed files fails, so the commit is looked at again: {fix:?}"
    );
    assert!(fix.stderr.contains("args-merge.yaml: wrote"), "{}", fix.stderr);
    let check = run_hook("entrypoint-guard");
    // What is left: multi-doc.yaml's unwrapped image has no digest to pin, so nothing.
    assert_eq!(check.code, 0, "after the fix the check passes: {check:?}");
}
