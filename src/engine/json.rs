//! Findings as JSON, written straight into a buffer, byte for byte what
//! serde_json makes of their `Serialize` derive.
//!
//! Every admission answer carries its findings as JSON (the audit
//! annotations), and serde_json escapes strings a byte at a time: with the
//! allocation of one string per finding, that was a sixth of an admission's
//! review. [`write_str`] escapes eight bytes at a step and is the one JSON
//! string writer of the answer (the response encoder uses it too). The
//! tests here and `tests/perf_equivalence.rs` hold the output to serde_json's.

use super::finding::{Change, CommandLine, ContainerRef, Finding, Held};

/// What each byte becomes in a JSON string: 0 for itself, else the letter
/// after the backslash (`u` for `\u00XX`) — serde_json's table, so the
/// output is the same.
static ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b'u';
        b += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

/// The bytes of `word` that must be escaped (a control character < 0x20,
/// `"` or `\`): each such byte's high bit set, every other bit clear. Exact
/// (no carry crosses a byte), so each set bit names one byte to escape.
#[inline]
fn escape_mask(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // (b & 0x7f) + 0x60 reaches 0x80 iff b & 0x7f >= 0x20; a high b is never below.
    let below_space = !(((word & LOW7) + ONES * 0x60) | word) & HIGH;
    let equal = |c: u8| {
        let x = word ^ (ONES * u64::from(c));
        !(((x & LOW7) + LOW7) | x) & HIGH
    };
    below_space | equal(b'"') | equal(b'\\')
}

/// Appends the escape of byte `b` (one that needs it).
#[inline]
fn write_escape(out: &mut Vec<u8>, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let escape = ESCAPE[usize::from(b)];
    if escape == b'u' {
        out.extend_from_slice(&[
            b'\\',
            b'u',
            b'0',
            b'0',
            HEX[usize::from(b >> 4)],
            HEX[usize::from(b & 0xf)],
        ]);
    } else {
        out.extend_from_slice(&[b'\\', escape]);
    }
}

/// Appends `s` as a JSON string literal, exactly as serde_json writes it.
///
/// Eight bytes at a step: a clean step is skipped whole, and in one that is
/// not, only the bytes to escape are visited (JSON text, full of quotes,
/// has one every few bytes).
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    let mut chunks = bytes.chunks_exact(8);
    let mut at = 0;
    for chunk in chunks.by_ref() {
        let word = u64::from_le_bytes(chunk.try_into().expect("chunks of eight"));
        let mut mask = escape_mask(word);
        while mask != 0 {
            let i = at + (mask.trailing_zeros() / 8) as usize;
            out.extend_from_slice(&bytes[start..i]);
            write_escape(out, bytes[i]);
            start = i + 1;
            mask &= mask - 1;
        }
        at += 8;
    }
    for &b in chunks.remainder() {
        if ESCAPE[usize::from(b)] != 0 {
            out.extend_from_slice(&bytes[start..at]);
            write_escape(out, b);
            start = at + 1;
        }
        at += 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Appends `"key":` (`key` needs no escaping).
#[inline]
fn key(out: &mut Vec<u8>, key: &str) {
    out.push(b'"');
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
}

fn write_bool(out: &mut Vec<u8>, value: bool) {
    out.extend_from_slice(if value { b"true" } else { b"false" });
}

/// Appends `items` as a JSON array, each written by `each`.
pub(crate) fn write_array<T>(out: &mut Vec<u8>, items: &[T], mut each: impl FnMut(&mut Vec<u8>, &T)) {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        each(out, item);
    }
    out.push(b']');
}

fn write_strings(out: &mut Vec<u8>, items: &[String]) {
    write_array(out, items, |out, item| write_str(out, item));
}

/// Appends `items` as a JSON list of strings to the text `out` (how
/// messages show a command line): `serde_json::to_string(items)`, written
/// in place.
pub(crate) fn push_strings(out: &mut String, items: &[String]) {
    let mut bytes = std::mem::take(out).into_bytes();
    write_strings(&mut bytes, items);
    *out = String::from_utf8(bytes).expect("JSON written from strings is UTF-8");
}

impl Finding {
    /// Appends the finding as JSON: `serde_json::to_writer(out, self)`,
    /// without serde_json's byte-at-a-time escaping.
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"rule\":");
        write_str(out, self.rule.id());
        out.extend_from_slice(b",\"object\":");
        write_str(out, &self.object);
        if let Some(container) = &self.container {
            out.extend_from_slice(b",\"container\":");
            write_container(out, container);
        }
        out.extend_from_slice(b",\"message\":");
        write_str(out, &self.message);
        if let Some(fix) = self.fix {
            out.extend_from_slice(b",\"fix\":");
            write_str(out, fix.as_str());
        }
        out.extend_from_slice(b",\"applied\":");
        write_bool(out, self.applied);
        if let Some(change) = &self.change {
            out.extend_from_slice(b",\"change\":");
            write_change(out, change);
        }
        if let Some(held) = &self.held {
            out.extend_from_slice(b",\"held\":");
            write_held(out, held);
        }
        if self.unchanged {
            out.extend_from_slice(b",\"unchanged\":true");
        }
        out.push(b'}');
    }
}

fn write_container(out: &mut Vec<u8>, c: &ContainerRef) {
    out.extend_from_slice(b"{\"pointer\":");
    write_str(out, &c.pointer);
    out.extend_from_slice(b",\"field\":");
    write_str(out, &c.field);
    out.extend_from_slice(b",\"name\":");
    write_str(out, &c.name);
    out.extend_from_slice(b",\"image\":");
    write_str(out, &c.image);
    out.extend_from_slice(b",\"init\":");
    write_bool(out, c.init);
    out.push(b'}');
}

fn write_command_line(out: &mut Vec<u8>, line: &CommandLine) {
    out.push(b'{');
    if let Some(command) = &line.command {
        key(out, "command");
        write_strings(out, command);
    }
    if let Some(args) = &line.args {
        if line.command.is_some() {
            out.push(b',');
        }
        key(out, "args");
        write_strings(out, args);
    }
    out.push(b'}');
}

fn write_change(out: &mut Vec<u8>, change: &Change) {
    match change {
        Change::Command { before, after } => {
            out.extend_from_slice(b"{\"field\":\"command\",\"before\":");
            write_command_line(out, before);
            out.extend_from_slice(b",\"after\":");
            write_command_line(out, after);
        }
        Change::Image { before, after } => {
            out.extend_from_slice(b"{\"field\":\"image\",\"before\":");
            write_str(out, before);
            out.extend_from_slice(b",\"after\":");
            write_str(out, after);
        }
    }
    out.push(b'}');
}

fn write_held(out: &mut Vec<u8>, held: &Held) {
    out.extend_from_slice(b"{\"kind\":");
    write_str(out, &held.kind);
    out.extend_from_slice(b",\"name\":");
    write_str(out, &held.name);
    if let Some(owner) = &held.owner {
        out.extend_from_slice(b",\"owner\":{\"kind\":");
        write_str(out, &owner.kind);
        out.extend_from_slice(b",\"name\":");
        write_str(out, &owner.name);
        out.push(b'}');
    }
    out.push(b'}');
}

/// Appends a map of strings as a JSON object (as serde_json writes it).
pub(crate) fn write_string_map<'a>(out: &mut Vec<u8>, map: impl IntoIterator<Item = (&'a String, &'a String)>) {
    out.push(b'{');
    for (i, (key, value)) in map.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, key);
        out.push(b':');
        write_str(out, value);
    }
    out.push(b'}');
}

/// A map of strings as JSON text: `serde_json::to_string(map)`.
pub(crate) fn string_map<'a>(map: impl IntoIterator<Item = (&'a String, &'a String)>) -> String {
    let mut out = Vec::with_capacity(256);
    write_string_map(&mut out, map);
    String::from_utf8(out).expect("JSON written from strings is UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::finding::{Fix, Owner};
    use crate::engine::rule::Rule;

    proptest::proptest! {
        #[test]
        fn strings_are_escaped_like_serde_json(s in "(?s).{0,40}", raw in proptest::collection::vec(0u8..0x80, 0..40)) {
            for s in [s, String::from_utf8(raw).unwrap()] {
                let mut out = Vec::new();
                write_str(&mut out, &s);
                proptest::prop_assert_eq!(out, serde_json::to_vec(&s).unwrap());
            }
        }
    }

    #[test]
    fn every_byte_escapes_like_serde_json() {
        for b in 0u8..0x80 {
            for at in 0..17 {
                let s = format!("{}{}{}", "a".repeat(at), char::from(b), "\"é\\".repeat(at % 3));
                let mut out = Vec::new();
                write_str(&mut out, &s);
                assert_eq!(out, serde_json::to_vec(&s).unwrap(), "{b:#x} at {at}");
            }
        }
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn findings_are_written_like_serde_json() {
        let container = ContainerRef {
            pointer: "/spec/containers/0".into(),
            field: "spec.containers[0]".into(),
            name: "a \"quoted\"\n\u{1}é name".into(),
            image: "r.io/x:1".into(),
            init: true,
        };
        let lines = [
            CommandLine::default(),
            CommandLine {
                command: Some(strings(&["sh", "-c"])),
                args: None,
            },
            CommandLine {
                command: None,
                args: Some(strings(&["x \\ y"])),
            },
            CommandLine {
                command: Some(Vec::new()),
                args: Some(strings(&["a", "b"])),
            },
        ];
        let mut changes = vec![
            None,
            Some(Change::Image {
                before: "a".into(),
                after: "a@sha256:1".into(),
            }),
        ];
        for before in &lines {
            for after in &lines {
                changes.push(Some(Change::Command {
                    before: before.clone(),
                    after: after.clone(),
                }));
            }
        }
        let owners = [
            None,
            Some(Owner {
                kind: "Deployment".into(),
                name: "web\t".into(),
                uid: "u".into(),
            }),
        ];
        let mut helds = vec![None];
        helds.extend(owners.iter().map(|owner| {
            Some(Held {
                kind: "ReplicaSet".into(),
                name: "web-1*".into(),
                owner: owner.clone(),
            })
        }));
        let mut compared = 0;
        for (r, rule) in Rule::ALL.into_iter().enumerate() {
            for (c, change) in changes.iter().enumerate() {
                for held in &helds {
                    let flag = (r + c) % 2 == 0;
                    let finding = Finding {
                        rule,
                        object: "/items/0".into(),
                        container: flag.then(|| container.clone()),
                        message: "why \"so\"".into(),
                        fix: [None, Some(Fix::Args), Some(Fix::Prepend), Some(Fix::Pin)][c % 4],
                        applied: !flag,
                        change: change.clone(),
                        held: held.clone(),
                        unchanged: c % 3 == 0,
                        ops: Vec::new(),
                    };
                    let mut out = Vec::new();
                    finding.write_json(&mut out);
                    assert_eq!(
                        String::from_utf8(out).unwrap(),
                        serde_json::to_string(&finding).unwrap()
                    );
                    compared += 1;
                }
            }
        }
        assert!(compared > 500);
    }

    #[test]
    fn string_maps_are_written_like_serde_json() {
        let map: std::collections::BTreeMap<String, String> =
            [("b\"".into(), "x\ty".into()), ("a/é".into(), String::new())].into();
        assert_eq!(string_map(&map), serde_json::to_string(&map).unwrap());
        assert_eq!(string_map(&std::collections::BTreeMap::new()), "{}");
    }
}
