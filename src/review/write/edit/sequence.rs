//! Sequence edits: items inserted in the sequence's own notation (a block
//! item per line at the items' indentation, flow items with the separator
//! already used), items deleted with their lines or their comma.

use std::collections::HashMap;

use serde_json::Value;
use similar::{Algorithm, DiffOp, capture_diff_slices};

use super::super::render;
use super::super::tree::{Kind, NodeId, Style};
use super::{Editor, Refusal, Splice, line_end, line_start};

impl Editor<'_> {
    /// The sequence `id` goes from `old` to `new` items: the items both
    /// share keep their text; new ones are written in the sequence's
    /// notation, styled like the string they came from or their neighbour.
    pub(super) fn edit_sequence(
        &self,
        id: NodeId,
        flow: bool,
        items: &[NodeId],
        old: &[Value],
        new: &[Value],
        moved: &HashMap<String, Style>,
    ) -> Result<Vec<Splice>, Refusal> {
        if items.len() != old.len() {
            return Err("the sequence holds items written elsewhere".into());
        }
        let keys = |values: &[Value]| values.iter().map(Value::to_string).collect::<Vec<_>>();
        let (old_keys, new_keys) = (keys(old), keys(new));
        let mut out = Vec::new();
        for op in capture_diff_slices(Algorithm::Myers, &old_keys, &new_keys) {
            let (deleted, inserted, at) = match op {
                DiffOp::Equal { .. } => continue,
                DiffOp::Delete { old_index, old_len, .. } => {
                    (old_index..old_index + old_len, 0..0, old_index + old_len)
                }
                DiffOp::Insert {
                    old_index,
                    new_index,
                    new_len,
                } => (old_index..old_index, new_index..new_index + new_len, old_index),
                DiffOp::Replace {
                    old_index,
                    old_len,
                    new_index,
                    new_len,
                } => (
                    old_index..old_index + old_len,
                    new_index..new_index + new_len,
                    old_index + old_len,
                ),
            };
            for k in deleted {
                out.push(self.delete_item(flow, items, k)?);
            }
            if !inserted.is_empty() {
                out.push(self.insert_items(id, flow, items, at, &new[inserted], moved)?);
            }
        }
        Ok(out)
    }

    fn item_style(&self, items: &[NodeId], near: usize) -> Style {
        let neighbour = items
            .get(near)
            .or_else(|| near.checked_sub(1).and_then(|i| items.get(i)));
        match neighbour.map(|&i| &self.tree.node(i).kind) {
            // A `|` or `>` neighbour says nothing about how a word is quoted.
            Some(Kind::Scalar { style, .. }) if *style != Style::Block => *style,
            _ => Style::Plain,
        }
    }

    fn render_item(&self, value: &Value, fallback: Style, flow: bool, moved: &HashMap<String, Style>) -> String {
        let context = self.context(flow);
        match value {
            Value::String(s) => render::string(s, moved.get(s).copied().unwrap_or(fallback), context),
            other => render::inline(other, fallback, context),
        }
    }

    /// New `values` before item `at` of the sequence (or after its last).
    fn insert_items(
        &self,
        id: NodeId,
        flow: bool,
        items: &[NodeId],
        at: usize,
        values: &[Value],
        moved: &HashMap<String, Style>,
    ) -> Result<Splice, Refusal> {
        let style = self.item_style(items, at);
        let rendered: Vec<String> = values.iter().map(|v| self.render_item(v, style, flow, moved)).collect();
        if flow {
            let node = self.tree.node(id);
            let sep = match items {
                [a, b, ..] => self.separator(*a, *b),
                _ => ", ".into(),
            };
            return Ok(match items.get(at) {
                None if items.is_empty() => {
                    let open = self.text[node.span.clone()]
                        .find('[')
                        .map_or(node.span.start, |i| node.span.start + i + 1);
                    Splice {
                        range: open..open,
                        text: rendered.join(&sep),
                    }
                }
                None => {
                    let end = self.tree.node(items[items.len() - 1]).span.end;
                    Splice {
                        range: end..end,
                        text: rendered.iter().map(|r| format!("{sep}{r}")).collect(),
                    }
                }
                Some(&item) => {
                    let start = self.tree.node(item).props_start;
                    Splice {
                        range: start..start,
                        text: rendered.iter().map(|r| format!("{r}{sep}")).collect(),
                    }
                }
            });
        }
        let reference = items.get(at).or(items.last()).ok_or("an empty block sequence")?;
        let (dash, indent, gap) = self.dash(*reference)?;
        Ok(match items.get(at) {
            Some(_) => Splice {
                range: dash..dash,
                text: rendered
                    .iter()
                    .map(|r| format!("-{gap}{r}{}{indent}", self.newline))
                    .collect(),
            },
            None => {
                let end = line_end(self.text, self.tree.node(*reference).span.end);
                let lines: Vec<String> = rendered.iter().map(|r| format!("{indent}-{gap}{r}")).collect();
                let text = if self.text[..end].ends_with('\n') {
                    lines.iter().map(|l| format!("{l}{}", self.newline)).collect()
                } else {
                    lines.iter().map(|l| format!("{}{l}", self.newline)).collect()
                };
                Splice { range: end..end, text }
            }
        })
    }

    fn delete_item(&self, flow: bool, items: &[NodeId], k: usize) -> Result<Splice, Refusal> {
        let start = |i: usize| self.tree.node(items[i]).props_start;
        let end = |i: usize| self.tree.node(items[i]).span.end;
        let range = if flow {
            if k + 1 < items.len() {
                start(k)..start(k + 1)
            } else if k > 0 {
                end(k - 1)..end(k)
            } else {
                start(k)..end(k)
            }
        } else {
            let (dash, _, _) = self.dash(items[k])?;
            let line = line_start(self.text, dash);
            if !self.text[line..dash].trim().is_empty() {
                return Err("a sequence item shares its line with other content".into());
            }
            line..line_end(self.text, end(k))
        };
        Ok(Splice {
            range,
            text: String::new(),
        })
    }

    /// For a block sequence item: where its `-` is, the indentation before
    /// the dash (as spaces), and the blanks between the dash and the content.
    fn dash(&self, item: NodeId) -> Result<(usize, String, String), Refusal> {
        let content = self.tree.node(item).props_start;
        let before = &self.text[..content];
        let dash = before
            .trim_end_matches([' ', '\t', '\r', '\n'])
            .strip_suffix('-')
            .map(str::len)
            .ok_or("a block sequence item without its dash")?;
        let line = line_start(self.text, dash);
        let indent = " ".repeat(self.text[line..dash].chars().count());
        let gap = &self.text[dash + 1..content];
        let gap = if !gap.is_empty() && gap.chars().all(|c| c == ' ') {
            gap.to_string()
        } else {
            " ".into()
        };
        Ok((dash, indent, gap))
    }
}
