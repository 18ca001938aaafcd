//! Splitting a manifest stream into documents and parsing each one.
//!
//! The stream is split on `---` lines before any parsing, the way kubectl's
//! YAML reader does, so a syntax error in one document cannot swallow the
//! documents after it, and each document keeps its own text (emitted
//! verbatim when nothing changes) and its first line in the file (so errors
//! and findings name the file's line, not the document's).

use serde_json::Value;

/// One document of a manifest stream, before parsing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Chunk<'a> {
    /// 1-based position among the stream's non-empty documents.
    pub index: usize,
    /// 1-based line in the file where the document's text starts.
    pub first_line: usize,
    /// Byte offset in the file where the document's text starts.
    pub offset: usize,
    /// The document's text, exactly as in the source (comments included).
    pub text: &'a str,
}

/// A YAML or JSON syntax error, located in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ParseError {
    /// 1-based line in the file.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// Splits `text` into its non-empty documents.
///
/// A line that starts with `---` followed by nothing, blanks or a comment
/// separates documents; a `---` line followed by content (`--- {a: 1}`)
/// starts a document that includes it; a `...` line ends one. Documents
/// holding only blanks and comments are dropped, as kubectl drops them.
pub(crate) fn split(text: &str) -> Vec<Chunk<'_>> {
    let mut chunks = Vec::new();
    let mut start = 0; // byte offset of the current document's text
    let mut start_line = 1;
    let mut offset = 0;
    for (line_no, line) in (1..).zip(text.split_inclusive('\n')) {
        let bare = line.trim_end_matches(['\n', '\r']);
        let marker = if let Some(rest) = bare.strip_prefix("---") {
            separator_rest(rest)
        } else if let Some(rest) = bare.strip_prefix("...") {
            separator_rest(rest).map(|_| false)
        } else {
            None
        };
        match marker {
            // A bare separator (or end marker): the line belongs to no document.
            Some(false) => {
                push(&mut chunks, text, start..offset, start_line);
                start = offset + line.len();
                start_line = line_no + 1;
            }
            // `--- content`: the document starts on this line.
            Some(true) => {
                push(&mut chunks, text, start..offset, start_line);
                start = offset;
                start_line = line_no;
            }
            None => {}
        }
        offset += line.len();
    }
    push(&mut chunks, text, start..text.len(), start_line);
    chunks
}

/// For the text after `---` or `...`: `Some(false)` when the line is a bare
/// marker (nothing, blanks or a comment follow), `Some(true)` when content
/// follows after a blank, `None` when it is not a marker (`---x`).
fn separator_rest(rest: &str) -> Option<bool> {
    let trimmed = rest.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        Some(false)
    } else if rest.starts_with([' ', '\t']) {
        Some(true)
    } else {
        None
    }
}

fn push<'a>(chunks: &mut Vec<Chunk<'a>>, stream: &'a str, range: std::ops::Range<usize>, first_line: usize) {
    let text = &stream[range.clone()];
    if is_blank(text) {
        return;
    }
    chunks.push(Chunk {
        index: chunks.len() + 1,
        first_line,
        offset: range.start,
        text,
    });
}

/// Whether `text` holds only blank lines and comments.
pub(crate) fn is_blank(text: &str) -> bool {
    text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#')
    })
}

/// Parses one YAML document into JSON. Scalars follow the YAML 1.1 habits
/// kubectl also has (`no` is `false`); errors are located in the file by
/// adding the document's first line.
pub(crate) fn parse_yaml(chunk: &Chunk<'_>) -> Result<Value, ParseError> {
    serde_saphyr::from_str::<Value>(chunk.text).map_err(|e| {
        let (line, column) = e
            .location()
            .map_or((1, 1), |l| (l.line() as usize, l.column() as usize));
        ParseError {
            line: chunk.first_line + line.max(1) - 1,
            column: column.max(1),
            message: first_line_of(&e.to_string()),
        }
    })
}

/// Parses a whole `.json` file as one document.
pub(crate) fn parse_json(text: &str) -> Result<Value, ParseError> {
    serde_json::from_str(text).map_err(|e| ParseError {
        line: e.line().max(1),
        column: e.column().max(1),
        message: e.to_string().split(" at line ").next().unwrap_or_default().to_string(),
    })
}

/// The message line of a rendered serde-saphyr error, without the
/// `error: line L column C:` prefix (the location is reported separately,
/// relative to the file) or the source snippet that follows.
fn first_line_of(rendered: &str) -> String {
    let first = rendered.lines().next().unwrap_or_default();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    match first.split_once(": ") {
        Some((head, rest)) if head.starts_with("line ") && head.contains(" column ") => rest.to_string(),
        _ => first.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(text: &str) -> Vec<(usize, usize, &str)> {
        split(text)
            .into_iter()
            .map(|c| (c.index, c.first_line, c.text))
            .collect()
    }

    #[test]
    fn splits_on_separator_lines_only() {
        let text = "---\n# Source: a.yaml\na: 1\n---\nb: ---x\n--- # comment\n\n---\nc: |\n  ---\n";
        assert_eq!(
            spans(text),
            [
                (1, 2, "# Source: a.yaml\na: 1\n"),
                (2, 5, "b: ---x\n"),
                (3, 9, "c: |\n  ---\n")
            ]
        );
    }

    #[test]
    fn chunks_know_their_byte_offset() {
        let text = "a: 1\r\n---\r\nb: 2\r\n";
        for chunk in split(text) {
            assert_eq!(&text[chunk.offset..chunk.offset + chunk.text.len()], chunk.text);
        }
        assert_eq!(split(text)[1].offset, 11);
    }

    #[test]
    fn inline_documents_and_end_markers() {
        let text = "--- {a: 1}\n...\nb: 2\r\n---\r\nc: 3";
        assert_eq!(
            spans(text),
            [(1, 1, "--- {a: 1}\n"), (2, 3, "b: 2\r\n"), (3, 5, "c: 3")]
        );
        assert!(split("# only\n---\n\n").is_empty());
    }

    #[test]
    fn errors_are_located_in_the_file() {
        let text = "a: 1\n---\nkind: Pod\nmetadata:\n  name: [x\n";
        let chunks = split(text);
        let err = parse_yaml(&chunks[1]).unwrap_err();
        assert!(err.line >= 5, "{err:?}");
        assert!(!err.message.is_empty() && !err.message.starts_with("error:"), "{err:?}");
        assert_eq!(parse_yaml(&chunks[0]).unwrap(), serde_json::json!({"a": 1}));
        let err = parse_json("{\n  \"a\": ,\n}").unwrap_err();
        assert_eq!((err.line, err.column), (2, 8));
    }

    #[test]
    fn yaml_one_one_booleans_like_kubectl() {
        let chunk = &split("enabled: no\nname: 'no'\n")[0];
        assert_eq!(
            parse_yaml(chunk).unwrap(),
            serde_json::json!({"enabled": false, "name": "no"})
        );
    }
}
