//! New YAML text for the values a fix writes, in the style of their place.
//!
//! A string keeps the style it is asked for (its neighbours', or its own
//! when it moves) when that style reads back as the same string; otherwise
//! it is single-quoted, and double-quoted (JSON escapes, always exact) when
//! nothing else fits. "Reads back" is decided by the parser the reviewer
//! uses, on the string set in its context, so YAML 1.1 surprises (`no`,
//! `0x1`, `~`, a ` #` that starts a comment) are caught without a table of
//! rules.

use serde_json::Value;

use super::tree::Style;

/// Where a value is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Context {
    /// Block notation (`- x`, `key: x`).
    Block,
    /// Inside `[...]` or `{...}`.
    Flow,
    /// A JSON file: everything double-quoted.
    Json,
}

/// `value` as a YAML scalar in `context`, in the `preferred` style when it
/// reads back unchanged there.
pub(crate) fn string(value: &str, preferred: Style, context: Context) -> String {
    if context == Context::Json {
        return double(value);
    }
    let candidates: &[Style] = match preferred {
        Style::Plain => &[Style::Plain, Style::Single],
        Style::Single => &[Style::Single],
        Style::Double | Style::Block => &[],
    };
    for style in candidates {
        let text = match style {
            Style::Plain => value.to_string(),
            _ => format!("'{}'", value.replace('\'', "''")),
        };
        if reads_back(&text, value, context) {
            return text;
        }
    }
    double(value)
}

/// A double-quoted scalar: JSON's string escapes are valid YAML ones.
fn double(value: &str) -> String {
    serde_json::to_string(value).expect("a string serializes")
}

/// Whether `text`, written as an item in `context`, parses as `value`.
fn reads_back(text: &str, value: &str, context: Context) -> bool {
    if text.is_empty() || text.contains(['\n', '\r']) {
        return false;
    }
    let doc = match context {
        Context::Block => format!("- {text}\n- {text}: 0\n"),
        _ => format!("[{text}, {{{text}: 0}}]"),
    };
    // The second item checks the text also works as a key.
    let expected = serde_json::json!([value, { value: 0 }]);
    serde_saphyr::from_str::<Value>(&doc).is_ok_and(|parsed| parsed == expected)
}

/// `value` written inline (a scalar, or a flow collection), strings in
/// `preferred` style where they fit.
pub(crate) fn inline(value: &Value, preferred: Style, context: Context) -> String {
    let inner = if context == Context::Json {
        Context::Json
    } else {
        Context::Flow
    };
    match value {
        Value::String(s) => string(s, preferred, context),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(|v| inline(v, preferred, inner)).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(map) => {
            let entries: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", string(k, Style::Plain, inner), inline(v, preferred, inner)))
                .collect();
            format!("{{{}}}", entries.join(", "))
        }
        // Numbers, booleans and null are written the way JSON writes them, which YAML reads alike.
        other => other.to_string(),
    }
}

/// A mapping entry `key: value` in block notation at `indent` columns,
/// nested mappings one `step` deeper, each line ended by `newline`.
pub(crate) fn block_entry(key: &str, value: &Value, indent: usize, step: usize, newline: &str) -> String {
    let pad = " ".repeat(indent);
    let key = string(key, Style::Plain, Context::Block);
    match value {
        Value::Object(map) if !map.is_empty() => {
            let mut out = format!("{pad}{key}:{newline}");
            for (k, v) in map {
                out.push_str(&block_entry(k, v, indent + step, step, newline));
            }
            out
        }
        // Single-quoted first: annotation values are JSON, full of double quotes.
        _ => format!("{pad}{key}: {}{newline}", inline(value, Style::Single, Context::Block)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_the_style_asked_for_when_it_reads_back() {
        assert_eq!(string("/chalk", Style::Plain, Context::Block), "/chalk");
        assert_eq!(string("--", Style::Plain, Context::Block), "--");
        assert_eq!(string("--", Style::Plain, Context::Flow), "--");
        assert_eq!(string("exec", Style::Double, Context::Flow), "\"exec\"");
        assert_eq!(string("exec", Style::Single, Context::Block), "'exec'");
        assert_eq!(
            string("app:1@sha256:ab", Style::Plain, Context::Flow),
            "app:1@sha256:ab"
        );
    }

    #[test]
    fn quotes_when_the_string_needs_it() {
        for tricky in [
            "no", "yes", "~", "null", "1", "0x1f", "a #b", "key: v", "- x", "", " pad", "[x]", "*a", "&a", "!t",
        ] {
            for context in [Context::Block, Context::Flow] {
                let text = string(tricky, Style::Plain, context);
                assert_ne!(text, tricky, "{tricky:?} must be quoted in {context:?}");
                assert!(reads_back(&text, tricky, context), "{tricky:?} -> {text}");
            }
        }
        assert_eq!(string("a,b", Style::Plain, Context::Block), "a,b");
        assert_eq!(string("a,b", Style::Plain, Context::Flow), "'a,b'");
        assert_eq!(string("it's\nmulti", Style::Single, Context::Block), "\"it's\\nmulti\"");
        assert_eq!(string("x", Style::Plain, Context::Json), "\"x\"");
    }

    #[test]
    fn entries_and_inline_values() {
        let value = json!({"a.io/resolved": "{\"x:1\":\"sha256:ab\"}"});
        assert_eq!(
            block_entry("annotations", &value, 2, 2, "\r\n"),
            "  annotations:\r\n    a.io/resolved: '{\"x:1\":\"sha256:ab\"}'\r\n"
        );
        assert_eq!(inline(&json!(["a", "b c"]), Style::Plain, Context::Block), "[a, b c]");
        assert_eq!(
            inline(&json!({"k": "v"}), Style::Plain, Context::Json),
            "{\"k\": \"v\"}"
        );
    }
}
