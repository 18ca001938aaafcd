//! Turning the engine's patch operations into splices of a document's text.
//!
//! Each operation becomes the smallest change of bytes that has the same
//! effect: a scalar's text replaced, items inserted into a sequence in its
//! own notation, a mapping entry's lines removed, a key renamed, an entry
//! added after the mapping's last line. Everything else in the document —
//! comments, key order, quoting, anchors, indentation — is left as written.

use std::collections::HashMap;
use std::ops::Range;

use json_patch::PatchOperation;
use serde_json::Value;

use super::render::{self, Context};
use super::tree::{Kind, NodeId, Reach, Style, Tree};

mod sequence;

/// Replace `range` of the document's text with `text`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Splice {
    /// Bytes replaced (empty: an insertion).
    pub range: Range<usize>,
    /// What goes there.
    pub text: String,
}

/// Edits one document's text.
pub(crate) struct Editor<'a> {
    text: &'a str,
    tree: &'a Tree,
    original: &'a Value,
    newline: &'static str,
    json: bool,
    step: usize,
}

/// Why an operation cannot be written into the text.
pub(crate) type Refusal = String;

impl<'a> Editor<'a> {
    /// An editor for `text`, whose tree is `tree` and whose parsed value is
    /// `original`; `json` for a `.json` file (every new string double-quoted).
    pub(super) fn new(text: &'a str, tree: &'a Tree, original: &'a Value, json: bool) -> Self {
        let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
        let step = indent_step(text, tree);
        Editor {
            text,
            tree,
            original,
            newline,
            json,
            step,
        }
    }

    /// The splices that write `ops` (the operations of one fix) into the
    /// text, or why they cannot be written.
    pub(super) fn splices(&self, ops: &[PatchOperation]) -> Result<Vec<Splice>, Refusal> {
        let mut out = Vec::new();
        // Styles of the strings this fix removes, for where they reappear (args = command + args).
        let mut moved: HashMap<String, Style> = HashMap::new();
        let mut i = 0;
        while i < ops.len() {
            match &ops[i] {
                PatchOperation::Remove(remove) => {
                    let path = remove.path.to_string();
                    if let Some(PatchOperation::Add(add)) = ops.get(i + 1)
                        && let Some(splice) = self.rename(&path, &add.path.to_string(), &add.value)?
                    {
                        out.push(splice);
                        i += 2;
                        continue;
                    }
                    out.extend(self.remove(&path, &mut moved)?);
                }
                PatchOperation::Add(add) => out.extend(self.set(&add.path.to_string(), &add.value, &moved)?),
                PatchOperation::Replace(replace) => {
                    out.extend(self.set(&replace.path.to_string(), &replace.value, &moved)?);
                }
                other => {
                    let op = serde_json::to_string(other).unwrap_or_default();
                    return Err(format!("the operation {op} is not one a fix makes"));
                }
            }
            i += 1;
        }
        Ok(out)
    }

    fn context(&self, flow: bool) -> Context {
        if self.json {
            Context::Json
        } else if flow {
            Context::Flow
        } else {
            Context::Block
        }
    }

    fn found(&self, pointer: &str) -> Result<Option<NodeId>, Refusal> {
        match self.tree.reach(pointer) {
            Reach::Found(id) => Ok(Some(id)),
            Reach::Missing { .. } => Ok(None),
            Reach::Blocked(why) => Err(why),
        }
    }

    /// The mapping holding `pointer`'s last member, and that member's name.
    fn parent_map(&self, pointer: &str) -> Result<(NodeId, String), Refusal> {
        let (parent, token) = pointer.rsplit_once('/').ok_or("the document itself is not a member")?;
        let key = token.replace("~1", "/").replace("~0", "~");
        match self.found(parent)? {
            Some(id) if matches!(self.tree.node(id).kind, Kind::Map { .. }) => Ok((id, key)),
            _ => Err(format!("{parent} is not a mapping written in this document")),
        }
    }

    /// `remove from` followed by `add to` the same mapping with the value
    /// removed, where `to` did not exist: the key is renamed in place, so the
    /// value keeps every byte (how `args` replaces `command`).
    fn rename(&self, from: &str, to: &str, value: &Value) -> Result<Option<Splice>, Refusal> {
        let (Some((from_parent, _)), Some((to_parent, new_key))) = (from.rsplit_once('/'), to.rsplit_once('/')) else {
            return Ok(None);
        };
        if from_parent != to_parent || self.original.pointer(to).is_some() || self.original.pointer(from) != Some(value)
        {
            return Ok(None);
        }
        let (map, key) = self.parent_map(from)?;
        self.found(from)?;
        let (_, key_id, _) = self
            .tree
            .entry(map, &key)
            .ok_or("the member is not written in this document")?;
        let node = self.tree.node(key_id);
        let style = match &node.kind {
            Kind::Scalar { style, .. } => *style,
            _ => return Ok(None),
        };
        let new_key = new_key.replace("~1", "/").replace("~0", "~");
        let text = render::string(&new_key, style, self.context(node.in_flow));
        Ok(Some(Splice {
            range: node.span.clone(),
            text,
        }))
    }

    /// Removes a mapping entry: its whole lines in block notation, the entry
    /// and one comma in flow notation.
    fn remove(&self, pointer: &str, moved: &mut HashMap<String, Style>) -> Result<Vec<Splice>, Refusal> {
        let (map, key) = self.parent_map(pointer)?;
        let value = self
            .found(pointer)?
            .ok_or_else(|| format!("{pointer} is not written in this document"))?;
        self.collect_styles(value, moved);
        let Kind::Map { flow, entries } = &self.tree.node(map).kind else {
            unreachable!("parent_map returns mappings")
        };
        let (index, key_id, value_id) = self.tree.entry(map, &key).ok_or("the member is not written here")?;
        let key_start = self.tree.node(key_id).props_start;
        let value_end = self.tree.node(value_id).span.end.max(self.tree.node(key_id).span.end);
        let start_of = |i: usize| self.tree.node(entries[i].0).props_start;
        let end_of = |i: usize| self.tree.node(entries[i].1).span.end;
        let range = if *flow || self.tree.node(map).in_flow {
            if index + 1 < entries.len() {
                key_start..start_of(index + 1)
            } else if index > 0 {
                end_of(index - 1)..value_end
            } else {
                key_start..value_end
            }
        } else {
            let line = line_start(self.text, key_start);
            let before = &self.text[line..key_start];
            if before.trim().is_empty() {
                line..line_end(self.text, value_end)
            } else {
                // `- command: ...`: the entry shares its line with the item's dash.
                let end = line_end_before_newline(self.text, value_end);
                match entries.get(index + 1) {
                    Some(&(next, _)) if self.text[end..self.tree.node(next).props_start].trim().is_empty() => {
                        key_start..self.tree.node(next).props_start
                    }
                    _ => key_start - (before.len() - before.trim_end().len())..end,
                }
            }
        };
        Ok(vec![Splice {
            range,
            text: String::new(),
        }])
    }

    fn collect_styles(&self, id: NodeId, into: &mut HashMap<String, Style>) {
        match &self.tree.node(id).kind {
            Kind::Scalar { value, style } => {
                into.entry(value.clone()).or_insert(*style);
            }
            Kind::Seq { items, .. } => items.iter().for_each(|&i| self.collect_styles(i, into)),
            Kind::Map { entries, .. } => entries.iter().for_each(|&(_, v)| self.collect_styles(v, into)),
            Kind::Alias { .. } => {}
        }
    }

    /// `add` or `replace`: the member at `pointer` becomes `value`.
    fn set(&self, pointer: &str, value: &Value, moved: &HashMap<String, Style>) -> Result<Vec<Splice>, Refusal> {
        match self.tree.reach(pointer) {
            Reach::Blocked(why) => Err(why),
            Reach::Found(id) => {
                let old = self
                    .original
                    .pointer(pointer)
                    .ok_or_else(|| format!("{pointer} is written but was not read"))?;
                self.replace(id, old, value, moved)
            }
            Reach::Missing { parent, key } => self.insert_entry(parent, &key, value),
        }
    }

    fn replace(
        &self,
        id: NodeId,
        old: &Value,
        new: &Value,
        moved: &HashMap<String, Style>,
    ) -> Result<Vec<Splice>, Refusal> {
        if old == new {
            return Ok(Vec::new());
        }
        let node = self.tree.node(id);
        match (&node.kind, old, new) {
            (Kind::Scalar { style, .. }, _, Value::String(s)) if !node.span.is_empty() => Ok(vec![Splice {
                range: node.span.clone(),
                text: render::string(s, *style, self.context(node.in_flow)),
            }]),
            (Kind::Seq { flow, items }, Value::Array(old), Value::Array(new)) => {
                self.edit_sequence(id, *flow || node.in_flow, items, old, new, moved)
            }
            (Kind::Scalar { .. }, _, _) if node.span.is_empty() && node.props_start < node.span.start => {
                // A tagged empty value (`!!null`): the tag is all there is of it.
                Ok(vec![Splice {
                    range: node.props_start..node.span.start,
                    text: render::inline(new, Style::Plain, self.context(node.in_flow)),
                }])
            }
            (Kind::Scalar { .. }, _, _) if node.span.is_empty() => {
                // An implicit null (`key:` and nothing): the value goes after the colon.
                let colon = self.text[node.span.start..]
                    .find(':')
                    .map(|i| node.span.start + i + 1)
                    .ok_or("no colon after the empty value")?;
                let text = format!(" {}", render::inline(new, Style::Plain, self.context(node.in_flow)));
                Ok(vec![Splice {
                    range: colon..colon,
                    text,
                }])
            }
            _ => Ok(vec![Splice {
                range: node.span.clone(),
                text: render::inline(new, Style::Plain, self.context(node.in_flow)),
            }]),
        }
    }

    /// The text between two neighbours of a flow collection (`,` and its
    /// blanks or line break), reused between new items so a one-per-line
    /// layout stays one per line; `, ` when something else sits there.
    fn separator(&self, before: NodeId, after: NodeId) -> String {
        let between = &self.text[self.tree.node(before).span.end..self.tree.node(after).props_start];
        if between.trim() == "," {
            between.to_string()
        } else {
            ", ".into()
        }
    }

    /// A new entry `key: value` at the end of mapping `map`.
    fn insert_entry(&self, map: NodeId, key: &str, value: &Value) -> Result<Vec<Splice>, Refusal> {
        let node = self.tree.node(map);
        let Kind::Map { flow, entries } = &node.kind else {
            return Err("a member added to something that is not a mapping".into());
        };
        if *flow || node.in_flow {
            let context = self.context(true);
            let key_style = entries
                .first()
                .and_then(|&(k, _)| match &self.tree.node(k).kind {
                    Kind::Scalar { style, .. } => Some(*style),
                    _ => None,
                })
                .unwrap_or(Style::Plain);
            let entry = format!(
                "{}: {}",
                render::string(key, key_style, context),
                render::inline(value, Style::Single, context)
            );
            return Ok(vec![match entries.last() {
                None => {
                    let open = self.text[node.span.clone()]
                        .find('{')
                        .map_or(node.span.start, |i| node.span.start + i + 1);
                    Splice {
                        range: open..open,
                        text: entry,
                    }
                }
                Some(&(_, last)) => {
                    let sep = match entries.as_slice() {
                        [(_, a), (b, _), ..] => self.separator(*a, *b),
                        _ => ", ".into(),
                    };
                    let end = self.tree.node(last).span.end;
                    Splice {
                        range: end..end,
                        text: format!("{sep}{entry}"),
                    }
                }
            }]);
        }
        let &(first_key, _) = entries.first().ok_or("an empty block mapping")?;
        let key_at = self.tree.node(first_key).props_start;
        let indent = self.text[line_start(self.text, key_at)..key_at].chars().count();
        let end = line_end(self.text, node.span.end);
        let mut text = render::block_entry(key, value, indent, self.step, self.newline);
        if !self.text[..end].ends_with('\n') {
            text = format!("{}{}", self.newline, text.strip_suffix(self.newline).unwrap_or(&text));
        }
        Ok(vec![Splice { range: end..end, text }])
    }
}

/// How many columns a nested block mapping is indented past its key in this
/// document (2 when nothing shows it).
fn indent_step(text: &str, tree: &Tree) -> usize {
    let column = |at: usize| text[line_start(text, at)..at].chars().count();
    for node in &tree.nodes {
        let Kind::Map { flow: false, entries } = &node.kind else {
            continue;
        };
        for &(key, value) in entries {
            if let Kind::Map {
                flow: false,
                entries: inner,
            } = &tree.node(value).kind
                && let Some(&(inner_key, _)) = inner.first()
            {
                let (outer, inner) = (tree.node(key).props_start, tree.node(inner_key).props_start);
                if line_start(text, outer) != line_start(text, inner) && column(inner) > column(outer) {
                    return column(inner) - column(outer);
                }
            }
        }
    }
    2
}

/// The start of the line holding byte `at`.
fn line_start(text: &str, at: usize) -> usize {
    text[..at].rfind('\n').map_or(0, |i| i + 1)
}

/// Just past the line break ending the line that holds byte `at` (or the end of the text).
fn line_end(text: &str, at: usize) -> usize {
    text[at..].find('\n').map_or(text.len(), |i| at + i + 1)
}

/// Where the line holding byte `at` ends, before its line break.
fn line_end_before_newline(text: &str, at: usize) -> usize {
    match text[at..].find('\n') {
        Some(i) if text[..at + i].ends_with('\r') => at + i - 1,
        Some(i) => at + i,
        None => text.len(),
    }
}

/// `text` with `splices` applied. Splices must not overlap; insertions at
/// one position keep their order.
pub(crate) fn apply(text: &str, splices: &[Splice]) -> Result<String, Refusal> {
    let mut sorted: Vec<&Splice> = splices.iter().collect();
    sorted.sort_by_key(|s| (s.range.start, s.range.end));
    let mut out = String::with_capacity(text.len() + 256);
    let mut at = 0;
    for splice in sorted {
        if splice.range.start < at {
            return Err("two fixes overlap in the text".into());
        }
        out.push_str(&text[at..splice.range.start]);
        out.push_str(&splice.text);
        at = splice.range.end;
    }
    out.push_str(&text[at..]);
    Ok(out)
}
