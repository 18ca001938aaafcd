//! A YAML document as a tree of byte spans, for editing its text in place.
//!
//! The parse into `serde_json::Value` keeps no positions and no
//! presentation, so the writer walks the parser's events once more and keeps
//! what splicing needs: where each node's text starts and ends, its style
//! (block or flow, plain or quoted), its anchor, and whether it is an alias.
//! Values still come from the `Value` the engine saw; this tree only says
//! where they are written.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use serde_saphyr::granit_parser::{Event, Options, Parser, ScalarStyle, Span, StructureStyle};

/// An index into [`Tree::nodes`].
pub(crate) type NodeId = usize;

/// How a scalar is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Style {
    /// `word`
    Plain,
    /// `'word'`
    Single,
    /// `"word"`
    Double,
    /// `|` or `>` block scalars.
    Block,
}

/// What a node is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A scalar and how it is written.
    Scalar {
        /// Its value after escapes.
        value: String,
        /// Its notation.
        style: Style,
    },
    /// A sequence: flow (`[a, b]`) or block (`- a`).
    Seq {
        /// Whether written `[...]`.
        flow: bool,
        /// Its items in order.
        items: Vec<NodeId>,
    },
    /// A mapping: flow (`{a: b}`) or block.
    Map {
        /// Whether written `{...}`.
        flow: bool,
        /// Key and value of each entry, in order.
        entries: Vec<(NodeId, NodeId)>,
    },
    /// `*name`: the node is written elsewhere.
    Alias {
        /// The anchor it refers to.
        anchor: usize,
    },
}

/// One node and where its text is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Node {
    /// What it is.
    pub kind: Kind,
    /// The node's text: a scalar with its quotes, a flow collection from
    /// its bracket to the closing one, a block collection from its first
    /// item (the parser puts the start at the first dash, or at the first
    /// content of an indentless sequence) to the end of its last one. Block
    /// scalars end at their last non-blank character.
    pub span: Range<usize>,
    /// Where its properties (`&anchor`, `!tag`) start, or `span.start`.
    pub props_start: usize,
    /// The anchor id defined on it (`0`: none).
    pub anchor: usize,
    /// Whether it sits inside a flow collection (`[...]`, `{...}`).
    pub in_flow: bool,
}

/// Why a document has no tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TreeError(pub String);

/// Every node of one YAML document.
#[derive(Clone, Debug)]
pub(crate) struct Tree {
    /// The nodes; children come after their parents.
    pub nodes: Vec<Node>,
    /// The document's root node.
    pub root: NodeId,
    /// Anchor ids some alias refers to.
    aliased: HashSet<usize>,
    /// Anchor names by id.
    names: HashMap<usize, String>,
}

struct Open {
    id: NodeId,
    /// A mapping's key waiting for its value.
    key: Option<NodeId>,
}

impl Tree {
    /// Parses the first document of `text`.
    pub(super) fn parse(text: &str) -> Result<Tree, TreeError> {
        let mut options = Options::default();
        options.emit_anchor_events = true;
        let mut nodes: Vec<Node> = Vec::new();
        let mut stack: Vec<Open> = Vec::new();
        let mut root = None;
        let mut aliased = HashSet::new();
        let mut names = HashMap::new();
        for item in Parser::new_from_str_with_options(text, options) {
            let (event, span) = item.map_err(|e| TreeError(format!("{e:?}")))?;
            let range = byte_range(&span)?;
            let (kind, anchor) = match event {
                Event::DocumentEnd => break,
                Event::Anchor(id, name) => {
                    names.insert(id, name.to_string());
                    // The anchor token comes before the node it names.
                    if let Some(node) = nodes.iter_mut().rev().find(|n| n.anchor == id) {
                        node.props_start = node.props_start.min(range.start);
                    }
                    continue;
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    let open = stack.pop().ok_or_else(|| TreeError("unbalanced collection".into()))?;
                    let node = &nodes[open.id];
                    let end = match &node.kind {
                        Kind::Seq { flow: true, .. } | Kind::Map { flow: true, .. } => range.end,
                        Kind::Seq { items, .. } => items.last().map_or(node.span.start, |&i| nodes[i].span.end),
                        Kind::Map { entries, .. } => {
                            entries.last().map_or(node.span.start, |&(_, v)| nodes[v].span.end)
                        }
                        _ => node.span.end,
                    };
                    nodes[open.id].span.end = end.max(nodes[open.id].span.start);
                    continue;
                }
                Event::Scalar(value, style, anchor, _) => {
                    let style = match style {
                        ScalarStyle::Plain => Style::Plain,
                        ScalarStyle::SingleQuoted => Style::Single,
                        ScalarStyle::DoubleQuoted => Style::Double,
                        _ => Style::Block,
                    };
                    (
                        Kind::Scalar {
                            value: value.into_owned(),
                            style,
                        },
                        anchor,
                    )
                }
                Event::SequenceStart(style, anchor, _) => (
                    Kind::Seq {
                        flow: style == StructureStyle::Flow,
                        items: Vec::new(),
                    },
                    anchor,
                ),
                Event::MappingStart(style, anchor, _) => (
                    Kind::Map {
                        flow: style == StructureStyle::Flow,
                        entries: Vec::new(),
                    },
                    anchor,
                ),
                Event::Alias(id) => {
                    aliased.insert(id);
                    (Kind::Alias { anchor: id }, 0)
                }
                _ => continue,
            };
            let mut span_range = range;
            if let Kind::Scalar {
                style: Style::Block, ..
            } = kind
            {
                // The parser's span of a block scalar starts at its content and
                // runs into the next line's indentation; the node starts at its
                // `|` or `>` header and ends at its last non-blank character.
                let trimmed = text[span_range.clone()].trim_end().len();
                span_range.end = span_range.start + trimmed;
                span_range.start = block_header(text, span_range.start);
            }
            let props_start = span
                .tag_start
                .and_then(|m| m.byte_offset())
                .map_or(span_range.start, |t| t.min(span_range.start));
            let id = nodes.len();
            let opens = matches!(kind, Kind::Seq { .. } | Kind::Map { .. });
            let in_flow = stack.last().is_some_and(|open| {
                let parent = &nodes[open.id];
                parent.in_flow || matches!(parent.kind, Kind::Seq { flow: true, .. } | Kind::Map { flow: true, .. })
            });
            nodes.push(Node {
                kind,
                span: span_range,
                props_start,
                anchor,
                in_flow,
            });
            match stack.last_mut() {
                None => root = Some(id),
                Some(open) => match &mut nodes[open.id].kind {
                    Kind::Seq { items, .. } => items.push(id),
                    Kind::Map { entries, .. } => match open.key.take() {
                        None => open.key = Some(id),
                        Some(key) => entries.push((key, id)),
                    },
                    _ => return Err(TreeError("a scalar holds children".into())),
                },
            }
            if opens {
                stack.push(Open { id, key: None });
            }
        }
        let root = root.ok_or_else(|| TreeError("the document is empty".into()))?;
        Ok(Tree {
            nodes,
            root,
            aliased,
            names,
        })
    }

    /// The node `id`.
    pub(super) fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id]
    }

    /// The scalar text of `id`, when it is a scalar.
    pub(super) fn scalar(&self, id: NodeId) -> Option<&str> {
        match &self.nodes[id].kind {
            Kind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    /// The value of the mapping entry `key` in `map`, and the entry's index.
    pub(super) fn entry(&self, map: NodeId, key: &str) -> Option<(usize, NodeId, NodeId)> {
        let Kind::Map { entries, .. } = &self.nodes[map].kind else {
            return None;
        };
        entries
            .iter()
            .enumerate()
            .find(|(_, (k, _))| self.scalar(*k) == Some(key))
            .map(|(i, &(k, v))| (i, k, v))
    }

    /// Whether an alias elsewhere in the document repeats node `id`.
    pub(super) fn is_aliased(&self, id: NodeId) -> bool {
        let anchor = self.nodes[id].anchor;
        anchor != 0 && self.aliased.contains(&anchor)
    }

    /// The name of anchor `id`.
    pub(super) fn anchor_name(&self, id: usize) -> &str {
        self.names.get(&id).map_or("?", String::as_str)
    }

    /// Follows the JSON pointer `pointer` from the root. Every node on the
    /// way must be written where it is: an alias, a node repeated by an
    /// alias, or a key that only a merge (`<<`) provides make the path
    /// [`Reach::Blocked`].
    pub(super) fn reach(&self, pointer: &str) -> Reach {
        let mut at = self.root;
        let mut walked = String::new();
        let tokens: Vec<&str> = pointer.split('/').skip(1).collect();
        for (i, token) in tokens.iter().enumerate() {
            if let Some(blocked) = self.blocked(at, &walked) {
                return blocked;
            }
            let key = token.replace("~1", "/").replace("~0", "~");
            walked.push('/');
            walked.push_str(token);
            let next = match &self.nodes[at].kind {
                Kind::Map { .. } => match self.entry(at, &key) {
                    Some((_, _, value)) => Some(value),
                    None if self.entry(at, "<<").is_some() => {
                        return Reach::Blocked(format!(
                            "{} comes from a merge key (<<): the fix would belong in the merged mapping, which other \
                             objects may share",
                            field(&walked)
                        ));
                    }
                    None => None,
                },
                Kind::Seq { items, .. } => key.parse::<usize>().ok().and_then(|i| items.get(i).copied()),
                _ => None,
            };
            match next {
                Some(next) => at = next,
                None if i + 1 == tokens.len() => return Reach::Missing { parent: at, key },
                None => return Reach::Blocked(format!("{} is not written in this document", field(&walked))),
            }
        }
        if let Some(blocked) = self.blocked(at, &walked) {
            return blocked;
        }
        Reach::Found(at)
    }

    fn blocked(&self, id: NodeId, walked: &str) -> Option<Reach> {
        let node = &self.nodes[id];
        if let Kind::Alias { anchor } = node.kind {
            return Some(Reach::Blocked(format!(
                "{} is written as the alias *{}: rewriting the anchored value would also change every other place \
                 that uses it",
                field(walked),
                self.anchor_name(anchor)
            )));
        }
        if self.is_aliased(id) {
            return Some(Reach::Blocked(format!(
                "{} is anchored as &{} and repeated by an alias elsewhere: rewriting it would change those places too",
                field(walked),
                self.anchor_name(node.anchor)
            )));
        }
        None
    }
}

/// Where a JSON pointer leads in a [`Tree`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Reach {
    /// The node written at the pointer.
    Found(NodeId),
    /// The last token names no member of `parent` (an `add` creates it).
    Missing {
        /// The collection that would hold it.
        parent: NodeId,
        /// The member's name (unescaped).
        key: String,
    },
    /// Written somewhere that cannot be edited alone; why.
    Blocked(String),
}

/// Where the `|` or `>` header of the block scalar whose content starts at
/// `content` is: the last word of the last non-blank line before the
/// content, comment left out.
fn block_header(text: &str, content: usize) -> usize {
    let mut end = text[..content].rfind('\n').unwrap_or(0);
    while end > 0 {
        let start = text[..end].rfind('\n').map_or(0, |i| i + 1);
        let line = &text[start..end];
        let code = line
            .char_indices()
            .find(|&(i, c)| c == '#' && (i == 0 || line[..i].ends_with([' ', '\t'])))
            .map_or(line, |(i, _)| &line[..i])
            .trim_end();
        if !code.is_empty() {
            let word = code.rfind([' ', '\t']).map_or(0, |i| i + 1);
            return if code[word..].starts_with(['|', '>']) {
                start + word
            } else {
                content
            };
        }
        end = start.saturating_sub(1);
    }
    content
}

fn field(pointer: &str) -> String {
    let path = crate::engine::finding::field_path(pointer);
    if path.is_empty() { "the document".into() } else { path }
}

fn byte_range(span: &Span) -> Result<Range<usize>, TreeError> {
    span.byte_range()
        .ok_or_else(|| TreeError("the parser gave no byte offsets".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
a:
  command: [\"x\", 'y' ,z]   # c
  args:
    - one
    - |
      two
    # comment
  image: &img app:1
  other: *img
b: {k: v}
";

    fn text_of<'a>(tree: &Tree, text: &'a str, pointer: &str) -> &'a str {
        match tree.reach(pointer) {
            Reach::Found(id) => &text[tree.node(id).span.clone()],
            other => panic!("{pointer}: {other:?}"),
        }
    }

    #[test]
    fn spans_cover_the_written_text() {
        let tree = Tree::parse(TEXT).unwrap();
        assert_eq!(text_of(&tree, TEXT, "/a/command"), "[\"x\", 'y' ,z]");
        assert_eq!(text_of(&tree, TEXT, "/a/command/1"), "'y'");
        assert_eq!(text_of(&tree, TEXT, "/a/args"), "- one\n    - |\n      two");
        assert_eq!(text_of(&tree, TEXT, "/a/args/1"), "|\n      two");
        assert_eq!(text_of(&tree, TEXT, "/b"), "{k: v}");
        // Anchored: the span is the value, the properties start at the anchor.
        let image = tree.nodes.iter().find(|n| tree_value(n) == Some("app:1")).unwrap();
        assert_eq!(&TEXT[image.span.clone()], "app:1");
        assert_eq!(image.props_start, TEXT.find("&img").unwrap());
        let header = Tree::parse("- |-  # c\n  a\n- >\n\n  b\n").unwrap();
        let starts: Vec<usize> = header.nodes.iter().skip(1).map(|n| n.span.start).collect();
        assert_eq!(starts, [2, 16]);
    }

    fn tree_value(node: &Node) -> Option<&str> {
        match &node.kind {
            Kind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    #[test]
    fn aliases_anchors_and_merges_block_the_path() {
        let tree = Tree::parse(TEXT).unwrap();
        let Reach::Blocked(why) = tree.reach("/a/other") else {
            panic!()
        };
        assert!(why.contains("alias *img"), "{why}");
        let Reach::Blocked(why) = tree.reach("/a/image") else {
            panic!()
        };
        assert!(why.contains("&img"), "{why}");
        let merged = "base: &b {image: x}\nc:\n  <<: *b\n  name: y\n";
        let tree = Tree::parse(merged).unwrap();
        let Reach::Blocked(why) = tree.reach("/c/image") else {
            panic!()
        };
        assert!(why.contains("merge key"), "{why}");
        assert!(
            matches!(tree.reach("/c/args"), Reach::Blocked(_)),
            "unknown keys of a merged mapping are unsure too"
        );
        let plain = Tree::parse("c:\n  name: y\n").unwrap();
        assert!(matches!(plain.reach("/c/args"), Reach::Missing { ref key, .. } if key == "args"));
    }
}
