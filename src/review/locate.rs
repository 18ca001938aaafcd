//! Where a JSON pointer's node sits in a YAML document's text.
//!
//! Findings name containers by JSON pointer; reports (text, SARIF) need the
//! line. The parse into `serde_json::Value` drops positions, so this walks
//! the parser's events once more, only for documents that have findings.

use std::collections::HashMap;

use serde_saphyr::granit_parser::{Event, Parser, Span};

/// A 1-based line and column in a document's text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

/// The position of every node of one YAML document, by JSON pointer.
#[derive(Clone, Debug, Default)]
pub struct Locator {
    nodes: HashMap<String, Position>,
    /// Where the key of each mapping entry is written, by the entry's pointer.
    keys: Vec<(String, Position)>,
}

enum Frame {
    /// A mapping, waiting for a key (`None`) or holding the key whose value
    /// comes next (`Some(None)` for a non-scalar key JSON cannot address).
    Map { key: Option<Option<String>> },
    /// A sequence: the index of the next item.
    Seq { next: usize },
}

impl Locator {
    /// Maps the first document of `text`. A syntax error ends the walk: the
    /// nodes seen before it stay located.
    pub fn new(text: &str) -> Locator {
        let mut nodes = HashMap::new();
        let mut keys = Vec::new();
        // The pointer of each open collection; `None` inside a complex key.
        let mut paths: Vec<Option<String>> = Vec::new();
        let mut frames: Vec<Frame> = Vec::new();
        for item in Parser::new_from_str(text) {
            let Ok((event, span)) = item else { break };
            let opens = match event {
                Event::DocumentEnd => break,
                Event::MappingEnd | Event::SequenceEnd => {
                    frames.pop();
                    paths.pop();
                    continue;
                }
                Event::MappingStart(..) | Event::SequenceStart(..) => true,
                Event::Scalar(..) | Event::Alias(..) => false,
                _ => continue,
            };
            let parent = paths.last().cloned().unwrap_or(Some(String::new()));
            let pointer = match frames.last_mut() {
                // A key: remember it and wait for its value.
                Some(Frame::Map { key: key @ None }) => {
                    *key = Some(event.scalar().map(|(s, _)| escape(s)));
                    if let (Some(parent), Some(Some(key))) = (parent, key.as_ref()) {
                        keys.push((format!("{parent}/{key}"), position(&span)));
                    }
                    if opens {
                        paths.push(None);
                        frames.push(frame_for(&event));
                    }
                    continue;
                }
                Some(Frame::Map { key }) => match (parent, key.take().flatten()) {
                    (Some(parent), Some(key)) => Some(format!("{parent}/{key}")),
                    _ => None,
                },
                Some(Frame::Seq { next }) => {
                    *next += 1;
                    parent.map(|parent| format!("{parent}/{}", *next - 1))
                }
                None => Some(String::new()),
            };
            if let Some(pointer) = &pointer {
                nodes.entry(pointer.clone()).or_insert(position(&span));
            }
            if opens {
                paths.push(pointer);
                frames.push(frame_for(&event));
            }
        }
        Locator { nodes, keys }
    }

    /// Every mapping entry with a scalar key, in document order: the entry's
    /// pointer and where its key is written.
    pub fn keys(&self) -> impl Iterator<Item = (&str, Position)> {
        self.keys.iter().map(|(p, at)| (p.as_str(), *at))
    }

    /// The position of the node at `pointer`, or of its nearest located
    /// ancestor (a node reached through an alias or merge key has none).
    pub fn find(&self, pointer: &str) -> Option<Position> {
        let mut pointer = pointer;
        loop {
            if let Some(p) = self.nodes.get(pointer) {
                return Some(*p);
            }
            pointer = &pointer[..pointer.rfind('/')?];
        }
    }
}

fn position(span: &Span) -> Position {
    Position {
        line: span.start.line(),
        column: span.start.col() + 1,
    }
}

fn frame_for(event: &Event<'_>) -> Frame {
    if matches!(event, Event::MappingStart(..)) {
        Frame::Map { key: None }
    } else {
        Frame::Seq { next: 0 }
    }
}

/// JSON-pointer escaping of one key.
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEPLOYMENT: &str = "\
# Source: chart/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  annotations: {a/b: x, c~d: y}
spec:
  template:
    spec:
      initContainers: [{name: init, image: busybox}]
      containers:
        - name: web
          image: app:1
          command: [run]
        -   name: side
            image: side:1
";

    #[test]
    fn locates_containers_in_block_and_flow_style() {
        let at = Locator::new(DEPLOYMENT);
        let pos = |p: &str| at.find(p).map(|p| (p.line, p.column));
        assert_eq!(pos(""), Some((2, 1)));
        assert_eq!(pos("/spec/template/spec/containers/0"), Some((12, 11)));
        assert_eq!(pos("/spec/template/spec/containers/1"), Some((15, 13)));
        assert_eq!(pos("/spec/template/spec/containers/0/command"), Some((14, 20)));
        assert_eq!(pos("/spec/template/spec/initContainers/0"), Some((10, 24)));
        assert_eq!(pos("/metadata/annotations/a~1b"), Some((6, 22)));
        assert_eq!(pos("/metadata/annotations/c~0d"), Some((6, 30)));
        // Unknown nodes fall back to their nearest ancestor.
        assert_eq!(pos("/spec/template/spec/containers/0/args/3"), Some((12, 11)));
    }

    #[test]
    fn complex_keys_and_broken_text_do_not_confuse_it() {
        let at = Locator::new("? [a, b]\n: 1\nc:\n  - x\n");
        assert_eq!(at.find("/c/0").map(|p| p.line), Some(4));
        let keys: Vec<_> = at.keys().map(|(p, at)| (p.to_string(), at.line)).collect();
        assert_eq!(keys, [("/c".to_string(), 3)]);
        let at = Locator::new("a:\n  b: 1\nc: [\n");
        assert_eq!(at.find("/a/b").map(|p| p.line), Some(2));
    }
}
