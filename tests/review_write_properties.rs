//! `review --write` over generated manifests: whatever the presentation
//! (flow or block sequences, indentless ones, quoting styles, comments
//! between keys, key order, indentation, CRLF), the written text parses to
//! exactly the engine's fixed object, every line outside the fixed
//! containers' `command`, `args` and `image` entries is kept byte for byte
//! and in order, and a second run changes nothing.

#[path = "support/write.rs"]
mod support;

use proptest::prelude::*;
use serde_json::Value;

const IMAGES: [&str; 3] = ["reg.example/bare:1", "reg.example/named:1", "reg.example/plain:1"];
const WORDS: [&str; 16] = [
    "run",
    "--flag",
    "a b",
    "no",
    "1",
    "#x",
    "it's",
    "x: y",
    "--",
    "~",
    "",
    "sh",
    "-c",
    "echo \"hi\"",
    "ünï",
    "[x]",
];

#[derive(Clone, Copy, Debug)]
enum Quote {
    Plain,
    Single,
    Double,
}

#[derive(Clone, Debug)]
struct Words {
    words: Vec<(usize, Quote)>,
    flow: bool,
    indentless: bool,
}

#[derive(Clone, Debug)]
struct Container {
    image: usize,
    image_quote: Quote,
    command: Option<Words>,
    args: Option<Words>,
    /// Key order: 0 name, 1 image, 2 command, 3 args, 4 workingDir.
    order: Vec<usize>,
    comments: Vec<bool>,
}

#[derive(Clone, Debug)]
struct Doc {
    containers: Vec<Container>,
    indent: usize,
    crlf: bool,
    /// None: no annotations; Some(true): flow; Some(false): block.
    annotations: Option<bool>,
    annotate: bool,
}

fn quote() -> impl Strategy<Value = Quote> {
    prop_oneof![Just(Quote::Plain), Just(Quote::Single), Just(Quote::Double)]
}

fn words() -> impl Strategy<Value = Words> {
    (
        prop::collection::vec((0..WORDS.len(), quote()), 1..4),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(words, flow, indentless)| Words {
            words,
            flow,
            indentless,
        })
}

fn container() -> impl Strategy<Value = Container> {
    (
        0..IMAGES.len(),
        quote(),
        prop::option::of(words()),
        prop::option::of(words()),
        Just(vec![0usize, 1, 2, 3, 4]).prop_shuffle(),
        prop::collection::vec(any::<bool>(), 5),
    )
        .prop_map(|(image, image_quote, command, args, order, comments)| Container {
            image,
            image_quote,
            command,
            args,
            order,
            comments,
        })
}

fn doc() -> impl Strategy<Value = Doc> {
    (
        prop::collection::vec(container(), 1..4),
        prop_oneof![Just(2usize), Just(4)],
        any::<bool>(),
        prop::option::of(any::<bool>()),
        any::<bool>(),
    )
        .prop_map(|(containers, indent, crlf, annotations, annotate)| Doc {
            containers,
            indent,
            crlf,
            annotations,
            annotate,
        })
}

/// Whether `text` as a sequence item (block or flow) reads back as `word`.
fn reads_back(text: &str, word: &str, flow: bool) -> bool {
    let doc = if flow {
        format!("[{text}]")
    } else {
        format!("- {text}\n")
    };
    serde_saphyr::from_str::<Value>(&doc).is_ok_and(|v| v == serde_json::json!([word]))
}

/// `word` written in `quote`, or double-quoted where that style cannot hold it.
fn scalar(word: &str, quote: Quote, flow: bool) -> String {
    let text = match quote {
        Quote::Plain => word.to_string(),
        Quote::Single => format!("'{}'", word.replace('\'', "''")),
        Quote::Double => serde_json::to_string(word).unwrap(),
    };
    if reads_back(&text, word, flow) {
        text
    } else {
        serde_json::to_string(word).unwrap()
    }
}

/// Who a generated line belongs to: `None` for lines that must survive
/// whatever happens, `Some(container)` for a container's `command`, `args`
/// and `image` lines, `Some(usize::MAX)` for the annotations line.
type Owner = Option<usize>;

fn render(doc: &Doc) -> Vec<(String, Owner)> {
    let i = " ".repeat(doc.indent);
    let mut lines: Vec<(String, Owner)> = vec![
        ("# generated".into(), None),
        ("apiVersion: v1".into(), None),
        ("kind: Pod".into(), None),
        ("metadata:".into(), None),
        (format!("{i}name: p"), None),
    ];
    match doc.annotations {
        Some(true) => lines.push((format!("{i}annotations: {{team: shop}}"), Some(usize::MAX))),
        Some(false) => {
            lines.push((format!("{i}annotations:"), None));
            lines.push((format!("{i}{i}team: shop   # owner"), None));
        }
        None => {}
    }
    lines.push(("spec:".into(), None));
    lines.push((format!("{i}containers:"), None));
    let pad = " ".repeat(doc.indent + 2);
    for (c, container) in doc.containers.iter().enumerate() {
        let present = |key: usize| match key {
            2 => container.command.is_some(),
            3 => container.args.is_some(),
            _ => true,
        };
        let keys: Vec<usize> = container.order.iter().copied().filter(|&k| present(k)).collect();
        for (k, &key) in keys.iter().enumerate() {
            let prefix = if k == 0 { format!("{i}- ") } else { pad.clone() };
            if k > 0 && container.comments[k] {
                lines.push((format!("{pad}# note {c}.{k}"), None));
            }
            match key {
                0 => lines.push((format!("{prefix}name: c{c}"), None)),
                1 => lines.push((
                    format!(
                        "{prefix}image: {}",
                        scalar(IMAGES[container.image], container.image_quote, false)
                    ),
                    Some(c),
                )),
                4 => lines.push((format!("{prefix}workingDir: /w"), None)),
                _ => {
                    let (name, field) = if key == 2 {
                        ("command", &container.command)
                    } else {
                        ("args", &container.args)
                    };
                    let field = field.as_ref().expect("only present keys");
                    let items: Vec<String> = field
                        .words
                        .iter()
                        .map(|&(w, q)| scalar(WORDS[w], q, field.flow))
                        .collect();
                    if field.flow {
                        lines.push((format!("{prefix}{name}: [{}]", items.join(", ")), Some(c)));
                    } else {
                        lines.push((format!("{prefix}{name}:"), Some(c)));
                        let item_pad = if field.indentless {
                            pad.clone()
                        } else {
                            format!("{pad}{i}")
                        };
                        for item in items {
                            lines.push((format!("{item_pad}- {item}"), Some(c)));
                        }
                    }
                }
            }
        }
    }
    lines
}

/// A line kept as written, or moved up onto the item's dash when the
/// entry before it (`- command: ...`) was removed.
fn kept_as(after: &str, line: &str) -> bool {
    if after == line {
        return true;
    }
    let rest = line.trim_start();
    after.ends_with(rest) && {
        let head = &after[..after.len() - rest.len()];
        head.len() == line.len() - rest.len() && head.trim() == "-"
    }
}

/// A line a fix may write: a command, args, image or annotation entry, a
/// sequence item, or a dash left alone by a removed first entry.
fn written_by_a_fix(line: &str) -> bool {
    let t = line.trim();
    t == "-"
        || t.starts_with("- ")
        || [
            "command:",
            "args:",
            "image:",
            "annotations:",
            "entrypoint-guard.io/resolved-images:",
        ]
        .iter()
        .any(|k| t.starts_with(k))
}

fn check(doc: &Doc) -> Result<(), TestCaseError> {
    let newline = if doc.crlf { "\r\n" } else { "\n" };
    let lines = render(doc);
    let text: String = lines.iter().map(|(l, _)| format!("{l}{newline}")).collect();
    let (file, edit) = support::plan("generated.yaml", &text, doc.annotate);
    prop_assert!(edit.unwritten.is_empty(), "{:?}", edit.unwritten);
    let review = &file.documents[0];

    // 1. The written text parses to the engine's fixed object (the trace annotation only with --annotate).
    let original = review.original.clone().unwrap();
    let expected = if doc.annotate {
        review.fixed.clone().unwrap_or(original.clone())
    } else {
        let mut fixed = original.clone();
        let ops: Vec<_> = review
            .findings
            .iter()
            .filter(|i| i.finding.applied)
            .flat_map(|i| i.finding.ops.iter().cloned())
            .collect();
        json_patch::patch(&mut fixed, &ops).unwrap();
        fixed
    };
    let written: Value =
        serde_saphyr::from_str(&edit.after).map_err(|e| TestCaseError::fail(format!("{e}\n{}", edit.after)))?;
    prop_assert_eq!(&written, &expected, "\n{}", edit.after);

    // 2. Line endings stay.
    if doc.crlf {
        prop_assert!(!edit.after.replace("\r\n", "").contains('\n'), "{:?}", edit.after);
    } else {
        prop_assert!(!edit.after.contains('\r'));
    }

    // 3. Every line outside the fixed containers' fields is kept, in order; the rest was written by a fix.
    let touched: Vec<usize> = review
        .findings
        .iter()
        .filter(|i| i.finding.applied)
        .filter_map(|i| i.finding.container.as_ref())
        .filter_map(|c| c.pointer.rsplit('/').next()?.parse().ok())
        .collect();
    let may_change = |owner: Owner| match owner {
        Some(usize::MAX) => doc.annotate,
        Some(c) => touched.contains(&c),
        None => false,
    };
    let after: Vec<&str> = edit.after.split(newline).collect();
    let mut matched = vec![false; after.len()];
    let mut at = 0;
    for (line, owner) in &lines {
        if may_change(*owner) {
            continue;
        }
        let found = after[at..].iter().position(|a| kept_as(a, line));
        prop_assert!(found.is_some(), "line {:?} not kept in order:\n{}", line, edit.after);
        at += found.unwrap();
        matched[at] = true;
        at += 1;
    }
    for (line, matched) in after.iter().zip(&matched) {
        prop_assert!(
            *matched || line.is_empty() || written_by_a_fix(line),
            "unexpected line {:?}:\n{}",
            line,
            edit.after
        );
    }

    // 4. A second run changes nothing.
    let (_, again) = support::plan("generated.yaml", &edit.after, doc.annotate);
    prop_assert_eq!(&again.after, &edit.after);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn written_files_are_the_fixed_objects_and_nothing_else_changes(doc in doc()) {
        check(&doc)?;
    }
}
