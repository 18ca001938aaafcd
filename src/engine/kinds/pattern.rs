//! Pod-spec path patterns: JSON pointers whose `*` tokens stand for every
//! element of a list (or every member of a map).

use std::fmt;

use serde_json::Value;

/// One token of a pattern.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Token {
    /// A map key (unescaped: `a/b` for the pointer token `a~1b`), or a list index.
    Key(String),
    /// `*`: every element of a list, every member of a map.
    Any,
}

/// A pod-spec path that is no pattern.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{pattern:?} {problem}")]
pub(crate) struct PatternError {
    /// The text given.
    pub pattern: String,
    /// What is wrong with it.
    pub problem: Problem,
}

/// What is wrong with a pattern.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Problem {
    /// It does not start with `/`.
    #[error("is not a JSON pointer: it must start with '/', e.g. /spec/template/spec")]
    NoLeadingSlash,
    /// `//`, or a trailing `/`.
    #[error("has an empty token (\"//\" or a trailing '/')")]
    EmptyToken,
    /// A `~` not followed by `0` or `1`.
    #[error("has a '~' not followed by 0 or 1 in {0:?}")]
    BadEscape(String),
}

/// A JSON pointer to a pod spec, where `*` stands for every list index (or
/// map key): `/spec/template/spec`, `/spec/tasks/*/template/spec`. Tokens
/// are escaped as in any JSON pointer (`~0` for `~`, `~1` for `/`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Pattern {
    tokens: Vec<Token>,
}

impl Pattern {
    /// Parses a pattern; the error says what is wrong with it.
    pub(crate) fn parse(text: &str) -> Result<Pattern, PatternError> {
        let error = |problem| PatternError {
            pattern: text.to_string(),
            problem,
        };
        let Some(rest) = text.strip_prefix('/') else {
            return Err(error(Problem::NoLeadingSlash));
        };
        let tokens = rest
            .split('/')
            .map(|token| match token {
                "*" => Ok(Token::Any),
                "" => Err(error(Problem::EmptyToken)),
                _ => unescape(token)
                    .map(Token::Key)
                    .ok_or_else(|| error(Problem::BadEscape(token.to_string()))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Pattern { tokens })
    }

    /// The tokens, in order.
    pub(crate) fn tokens(&self) -> &[Token] {
        &self.tokens
    }

    /// The pointer of every pod spec (an object) the pattern finds in
    /// `object`, relative to it, in document order.
    pub(crate) fn find(&self, object: &Value) -> Vec<String> {
        let mut out = Vec::new();
        expand(object, &self.tokens, String::new(), &mut out);
        out
    }

    /// The pointer, relative to the pod spec at `spec`, of what holds the pod
    /// template's `metadata`: the parent when the last token is `spec` (a
    /// PodTemplateSpec), else the object itself (`""`).
    pub fn template_of(&self, spec: &str) -> String {
        match self.tokens.last() {
            Some(Token::Key(last)) if last == "spec" => spec[..spec.len() - "/spec".len()].to_string(),
            _ => String::new(),
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for token in &self.tokens {
            match token {
                Token::Any => f.write_str("/*")?,
                Token::Key(key) => write!(f, "/{}", escape(key))?,
            }
        }
        Ok(())
    }
}

fn expand(value: &Value, tokens: &[Token], at: String, out: &mut Vec<String>) {
    let Some((token, rest)) = tokens.split_first() else {
        if value.is_object() {
            out.push(at);
        }
        return;
    };
    match (token, value) {
        (Token::Key(key), Value::Object(map)) => {
            if let Some(next) = map.get(key) {
                expand(next, rest, format!("{at}/{}", escape(key)), out);
            }
        }
        (Token::Key(key), Value::Array(items)) => {
            // As in a JSON pointer: a list index in canonical form.
            let index = key.parse::<usize>().ok().filter(|i| i.to_string() == *key);
            if let Some(next) = index.and_then(|i| items.get(i)) {
                expand(next, rest, format!("{at}/{key}"), out);
            }
        }
        (Token::Any, Value::Array(items)) => {
            for (i, next) in items.iter().enumerate() {
                expand(next, rest, format!("{at}/{i}"), out);
            }
        }
        (Token::Any, Value::Object(map)) => {
            for (key, next) in map {
                expand(next, rest, format!("{at}/{}", escape(key)), out);
            }
        }
        _ => {}
    }
}

/// JSON-pointer escaping of one key.
pub(crate) fn escape(key: &str) -> String {
    if key.contains(['~', '/']) {
        key.replace('~', "~0").replace('/', "~1")
    } else {
        key.to_string()
    }
}

/// The key a pointer token names, or `None` for a bad escape.
fn unescape(token: &str) -> Option<String> {
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        match c {
            '~' => match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return None,
            },
            c => out.push(c),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_star_walks_every_task_and_every_replica_type() {
        let job = json!({"spec": {"tasks": [
            {"name": "ps", "template": {"spec": {"containers": []}}},
            {"name": "no-template"},
            {"name": "worker", "template": {"spec": {"containers": []}}},
        ]}});
        let tasks = Pattern::parse("/spec/tasks/*/template/spec").unwrap();
        assert_eq!(
            tasks.find(&job),
            ["/spec/tasks/0/template/spec", "/spec/tasks/2/template/spec"]
        );
        assert_eq!(
            tasks.template_of("/spec/tasks/2/template/spec"),
            "/spec/tasks/2/template"
        );
        let tf = json!({"spec": {"tfReplicaSpecs": {"Chief": {"template": {"spec": {}}},
            "Worker": {"template": {"spec": {}}}}}});
        let replicas = Pattern::parse("/spec/tfReplicaSpecs/*/template/spec").unwrap();
        assert_eq!(
            replicas.find(&tf),
            [
                "/spec/tfReplicaSpecs/Chief/template/spec",
                "/spec/tfReplicaSpecs/Worker/template/spec"
            ]
        );
        // A spec that is not an object is no pod spec; an index must be canonical.
        assert!(Pattern::parse("/spec").unwrap().find(&json!({"spec": "x"})).is_empty());
        let indexed = Pattern::parse("/spec/tasks/1/template/spec").unwrap();
        assert!(indexed.find(&job).is_empty(), "task 1 has no template");
        assert!(
            Pattern::parse("/spec/tasks/02/template/spec")
                .unwrap()
                .find(&job)
                .is_empty()
        );
        assert_eq!(
            Pattern::parse("/spec/tasks/2/template/spec").unwrap().find(&job),
            ["/spec/tasks/2/template/spec"]
        );
    }

    #[test]
    fn tokens_are_escaped_as_in_any_json_pointer() {
        let object = json!({"spec": {"a/b": {"c~d": {"spec": {"containers": []}}}}});
        let pattern = Pattern::parse("/spec/a~1b/c~0d/spec").unwrap();
        assert_eq!(pattern.tokens()[1], Token::Key("a/b".into()));
        assert_eq!(pattern.find(&object), ["/spec/a~1b/c~0d/spec"]);
        assert_eq!(pattern.to_string(), "/spec/a~1b/c~0d/spec");
        // A map walked by `*` gives escaped pointers too.
        let any = Pattern::parse("/spec/*/*/spec").unwrap();
        assert_eq!(any.find(&object), ["/spec/a~1b/c~0d/spec"]);
        assert_eq!(pattern.template_of("/spec/a~1b/c~0d/spec"), "/spec/a~1b/c~0d");
        assert_eq!(Pattern::parse("/spec").unwrap().template_of("/spec"), "");
        assert_eq!(
            Pattern::parse("/spec/podSpec").unwrap().template_of("/spec/podSpec"),
            ""
        );
    }

    #[test]
    fn bad_patterns_say_why() {
        for (bad, why) in [
            ("spec/template", "must start with '/'"),
            ("/spec//template", "empty token"),
            ("/spec/", "empty token"),
            ("/spec/a~2b", "'~' not followed by 0 or 1"),
            ("/spec/a~", "'~' not followed by 0 or 1"),
        ] {
            let e = Pattern::parse(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
