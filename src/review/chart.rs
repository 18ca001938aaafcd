//! Helm chart sources: `command:` in values files and templates.
//!
//! A chart that sets `command:` bypasses chalk in every release rendered
//! from it, and the engine can only fix the rendered objects. These findings
//! point at the source so the chart itself gets fixed; they carry no patch.
//! Whether a command bypasses the wrapper, and what the wrapped command is,
//! are the engine's answers ([`engine::may_bypass`], [`engine::prepend_unknown`]).

use std::path::Path;

use serde_json::Value;

use super::documents::{self, Chunk};
use super::locate::Locator;
use super::model::{Item, Problem};
use super::source::{is_chart, sorted_entries};
use crate::engine::{self, Finding, Policy, Rule};

/// Template files read for `command:` lines.
const TEMPLATE_EXTENSIONS: [&str; 4] = ["yaml", "yml", "tpl", "json"];

/// Scans the chart in `dir` (and its unpacked subcharts under `charts/`).
pub(crate) fn scan(dir: &Path, policy: &Policy, items: &mut Vec<Item>, problems: &mut Vec<Problem>) {
    let entries = match sorted_entries(dir) {
        Ok(entries) => entries,
        Err(e) => {
            problems.push(Problem::file(
                dir.display(),
                format!("cannot read chart directory: {e}"),
            ));
            return;
        }
    };
    if !is_chart(dir) {
        problems.push(Problem::file(dir.display(), "not a Helm chart: no Chart.yaml"));
        return;
    }
    for path in &entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let is_values = name.starts_with("values") && (name.ends_with(".yaml") || name.ends_with(".yml"));
        if is_values && path.is_file() {
            match std::fs::read_to_string(path) {
                Ok(text) => scan_values(&path.display().to_string(), &text, policy, items, problems),
                Err(e) => problems.push(Problem::file(path.display(), e)),
            }
        }
    }
    scan_templates(&dir.join("templates"), policy, items, problems);
    if let Ok(subcharts) = sorted_entries(&dir.join("charts")) {
        for sub in subcharts.iter().filter(|p| is_chart(p)) {
            scan(sub, policy, items, problems);
        }
    }
}

/// Every `command` key in a values file, by YAML structure. A `command`
/// under `exec` is a probe or lifecycle hook, which does not replace the
/// ENTRYPOINT, so it is not reported; nor is one that already starts with
/// the wrapper.
pub(crate) fn scan_values(file: &str, text: &str, policy: &Policy, items: &mut Vec<Item>, problems: &mut Vec<Problem>) {
    for chunk in documents::split(text) {
        let values = match documents::parse_yaml(&chunk) {
            Ok(values) => values,
            Err(e) => {
                problems.push(Problem {
                    file: file.to_string(),
                    document: None,
                    line: Some(e.line),
                    column: Some(e.column),
                    message: e.message,
                });
                continue;
            }
        };
        values_in(file, &chunk, &values, policy, items);
    }
}

fn values_in(file: &str, chunk: &Chunk<'_>, values: &Value, policy: &Policy, items: &mut Vec<Item>) {
    let locator = Locator::new(chunk.text);
    for (pointer, at) in locator.keys() {
        let mut tokens = pointer.rsplit('/');
        if tokens.next() != Some("command") || tokens.next() == Some("exec") {
            continue;
        }
        let key = engine::finding::field_path(pointer);
        let value = values.pointer(pointer).unwrap_or(&Value::Null);
        let command = strings(value);
        if command
            .as_deref()
            .is_some_and(|c| !c.is_empty() && !engine::may_bypass(c, policy))
        {
            continue; // already runs under the wrapper
        }
        let set = match value {
            Value::Null => "declares".to_string(),
            Value::Array(a) if a.is_empty() => "declares".to_string(),
            other => format!("sets {other} in"),
        };
        let message = format!(
            "{set} `{key}`: a container command replaces a chalk-wrapped ENTRYPOINT, so chalk never runs. {}",
            advice(command.as_deref(), policy)
        );
        items.push(chart_item(file, chunk.first_line + at.line - 1, at.column, message));
    }
}

/// `value` as a list of strings, if it is one.
fn strings(value: &Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_string))
        .collect()
}

/// What to change, with the wrapped command spelled out when it is known.
fn advice(command: Option<&[String]>, policy: &Policy) -> String {
    let args = "Pass it as `args` instead (render it into the container's `args:`)";
    match command {
        Some(command) if engine::may_bypass(command, policy) => format!(
            "{args}, or keep it as command with the wrapper prepended: {}.",
            serde_json::to_string(&engine::prepend_unknown(command, policy)).unwrap_or_default()
        ),
        _ => {
            let placeholder = ["<program>".to_string(), "<its arguments>".to_string()];
            format!(
                "{args}, or prepend the wrapper: {}.",
                engine::prepend_unknown(&placeholder, policy).join(" ")
            )
        }
    }
}

fn chart_item(file: &str, line: usize, column: usize, message: String) -> Item {
    Item {
        file: file.to_string(),
        document: None,
        line,
        column,
        kind: None,
        name: None,
        namespace: None,
        finding: Finding::report(Rule::HelmCommandOverride, "", None, message),
    }
}

fn scan_templates(dir: &Path, policy: &Policy, items: &mut Vec<Item>, problems: &mut Vec<Problem>) {
    let Ok(entries) = sorted_entries(dir) else { return };
    for path in entries {
        if path.is_dir() {
            // Not through symlinks, which could loop.
            if !path.is_symlink() {
                scan_templates(&path, policy, items, problems);
            }
            continue;
        }
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default();
        if !TEMPLATE_EXTENSIONS.contains(&ext) {
            continue; // NOTES.txt and friends render no objects
        }
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let file = path.display().to_string();
                for (line, column, text) in template_commands(&text) {
                    let inline = inline_command(&text);
                    if inline
                        .as_deref()
                        .is_some_and(|c| !c.is_empty() && !engine::may_bypass(c, policy))
                    {
                        continue; // already runs under the wrapper
                    }
                    let message = format!(
                        "renders `{text}`: a container command replaces a chalk-wrapped ENTRYPOINT, so chalk never \
                         runs. {}",
                        advice(inline.as_deref(), policy)
                    );
                    items.push(chart_item(&file, line, column, message));
                }
            }
            Err(e) => problems.push(Problem::file(path.display(), e)),
        }
    }
}

/// The `command:` keys of a template, found textually (templates are not
/// YAML until rendered): `(line, column, trimmed line)`. Skips YAML and
/// template comments, and `command:` under `exec:` (probes, hooks).
pub(crate) fn template_commands(text: &str) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let mut in_comment = false;
    // (column, key) of the keys seen, to find a `command:` key's parent.
    let mut keys: Vec<(usize, String)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let code = strip_template_comments(line, &mut in_comment);
        let trimmed = code.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("{{") {
            continue;
        }
        let indent = code.len() - trimmed.len();
        let (column, entry) = match trimmed.strip_prefix('-') {
            Some(rest) if rest.starts_with([' ', '\t']) => {
                let rest_trimmed = rest.trim_start();
                (indent + 1 + rest.len() - rest_trimmed.len(), rest_trimmed)
            }
            _ => (indent, trimmed),
        };
        let Some(key) = yaml_key(entry) else { continue };
        while keys.last().is_some_and(|(c, _)| *c >= column) {
            keys.pop();
        }
        if key == "command" && keys.last().is_none_or(|(_, parent)| parent != "exec") {
            out.push((i + 1, column + 1, line.trim().to_string()));
        }
        keys.push((column, key.to_string()));
    }
    out
}

/// The command written on a template's `command:` line itself, when it is a
/// plain flow sequence of strings (`command: ["run", "--fast"]`); `None`
/// when it is templated, on the following lines, or not a list.
fn inline_command(line: &str) -> Option<Vec<String>> {
    let entry = line.trim_start_matches(['-', ' ', '\t']);
    let (_, value) = entry.split_once(':')?;
    let value = value.trim();
    if !value.starts_with('[') || value.contains("{{") {
        return None;
    }
    let chunk = Chunk {
        index: 1,
        first_line: 1,
        offset: 0,
        text: value,
    };
    strings(&documents::parse_yaml(&chunk).ok()?)
}

/// The key of a `key:` or `key: value` line.
fn yaml_key(entry: &str) -> Option<&str> {
    let (key, rest) = entry.split_once(':')?;
    let key = key.trim_matches(['"', '\'']);
    let plain = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
    (plain && (rest.is_empty() || rest.starts_with([' ', '\t']))).then_some(key)
}

/// `line` without `{{/* ... */}}` comments, tracking comments that span lines.
fn strip_template_comments(line: &str, in_comment: &mut bool) -> String {
    let mut out = String::new();
    let mut rest = line;
    loop {
        if *in_comment {
            match rest.find("*/") {
                Some(end) => {
                    rest = &rest[end + 2..];
                    // The comment's closing `}}` (or `-}}`).
                    let after = rest.trim_start_matches([' ', '-']);
                    rest = after.strip_prefix("}}").unwrap_or(rest);
                    *in_comment = false;
                }
                None => return out,
            }
        } else {
            let open = [rest.find("{{/*"), rest.find("{{- /*")].into_iter().flatten().min();
            match open {
                Some(start) => {
                    out.push_str(&rest[..start]);
                    rest = &rest[start + 2..];
                    *in_comment = true;
                }
                None => {
                    out.push_str(rest);
                    return out;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_commands_skip_comments_and_probes() {
        let text = "\
{{/* command: in a comment
   command: still a comment */}}
apiVersion: apps/v1
spec:
  containers:
    - name: app
      # command: [commented]
      command:
      {{- toYaml .Values.command | nindent 8 }}
      livenessProbe:
        exec:
          command: [cat, /tmp/healthy]
    - command: [\"run\"] {{/* trailing */}}
      name: side
";
        let found = template_commands(text);
        assert_eq!(
            found,
            [
                (8, 7, "command:".to_string()),
                (13, 7, "- command: [\"run\"] {{/* trailing */}}".to_string())
            ]
        );
    }

    #[test]
    fn values_commands_are_found_by_structure() {
        let text = "app:\n  image: app:1\n  command: [sh, -c, 'run --fast']\n  probe:\n    exec:\n      command: [true]\nworker:\n  command: []\n";
        let mut items = Vec::new();
        let mut problems = Vec::new();
        scan_values("values.yaml", text, &Policy::default(), &mut items, &mut problems);
        assert!(problems.is_empty());
        let lines: Vec<_> = items.iter().map(|i| (i.line, i.column)).collect();
        assert_eq!(lines, [(3, 3), (8, 3)]);
        assert!(
            items[0].finding.message.contains("`app.command`"),
            "{}",
            items[0].finding.message
        );
        assert!(
            items[0]
                .finding
                .message
                .contains(r#"["/chalk","exec","--exec-command-name","sh","--","-c","run --fast"]"#),
            "{}",
            items[0].finding.message
        );
        assert!(items[1].finding.message.starts_with("declares `worker.command`"));
    }

    #[test]
    fn commands_already_under_the_wrapper_are_not_reported() {
        let text = "a:\n  command: [/chalk, exec, --, app]\nb:\n  command: [/chalk, exec]\nc:\n  command: [app]\n";
        let mut items = Vec::new();
        let mut problems = Vec::new();
        scan_values("values.yaml", text, &Policy::default(), &mut items, &mut problems);
        assert!(problems.is_empty());
        let lines: Vec<_> = items.iter().map(|i| i.line).collect();
        assert_eq!(lines, [6], "only c.command bypasses the wrapper");
        assert!(
            items[0]
                .finding
                .message
                .contains(r#"["/chalk","exec","--exec-command-name","app","--"]"#),
            "{}",
            items[0].finding.message
        );

        assert_eq!(
            inline_command(r#"- command: ["/chalk", "exec", "--", "app"]"#),
            Some(vec!["/chalk".into(), "exec".into(), "--".into(), "app".into()])
        );
        assert_eq!(inline_command("command:"), None);
        assert_eq!(inline_command("command: {{ .Values.command }}"), None);
        assert_eq!(inline_command("command: [{{ .Values.x }}]"), None);
    }
}
