//! What a PromQL expression reads: the metric names, the labels each is
//! matched on (with the values), and the labels results are grouped by —
//! enough to check a dashboard or an alert against a real `/metrics`
//! scrape. A small lexer, not a full parser: strings, comments, ranges
//! (`[5m]`), durations, Grafana variables (`$job`, `$__rate_interval`) and
//! keywords are told apart from metric names, so nothing is mistaken for one.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

/// A label matcher: `label op value`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Matcher {
    /// The label.
    pub label: String,
    /// `=`, `!=`, `=~` or `!~`.
    pub op: String,
    /// The value, unquoted.
    pub value: String,
}

/// A metric read by an expression, with its matchers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    /// The metric name.
    pub metric: String,
    /// Its label matchers.
    pub matchers: Vec<Matcher>,
}

/// Everything an expression reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reads {
    /// The metrics, in order.
    pub selectors: Vec<Selector>,
    /// Labels in `by (...)`, `without (...)`, `on (...)`, `ignoring (...)`,
    /// `group_left/right (...)` and Grafana's `label_values(metric, label)`.
    pub grouping: BTreeSet<String>,
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Number,
    Var,
    Punct(String),
}

const KEYWORDS: [&str; 15] = [
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
    "atan2",
    "start",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];
const GROUPING: [&str; 6] = ["by", "without", "on", "ignoring", "group_left", "group_right"];
/// Aggregations, which may take `by (...)` before their argument: `sum by (x) (m)`.
const AGGREGATIONS: [&str; 14] = [
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];

fn lex(expr: &str) -> Vec<Token> {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '"' || c == '\'' || c == '`' {
            let mut s = String::new();
            i += 1;
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' && c != '`' && i + 1 < chars.len() {
                    i += 1;
                }
                s.push(chars[i]);
                i += 1;
            }
            assert!(i < chars.len(), "unterminated string in {expr}");
            i += 1;
            out.push(Token::Str(s));
        } else if c == '[' {
            // A range or subquery: durations and variables, never a metric.
            let mut depth = 0;
            while i < chars.len() {
                match chars[i] {
                    '[' => depth += 1,
                    ']' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            assert!(i < chars.len(), "unterminated [ in {expr}");
            i += 1;
        } else if c == '$' {
            i += 1;
            if i < chars.len() && chars[i] == '{' {
                while i < chars.len() && chars[i] != '}' {
                    i += 1;
                }
                i += 1;
            } else {
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
            }
            out.push(Token::Var);
        } else if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            // Numbers and durations (5m, 1h30m, 1e3, 0x1f).
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            out.push(Token::Number);
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':') {
                i += 1;
            }
            out.push(Token::Ident(chars[start..i].iter().collect()));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            if ["=~", "!~", "!=", "==", ">=", "<="].contains(&two.as_str()) {
                out.push(Token::Punct(two));
                i += 2;
            } else {
                out.push(Token::Punct(c.to_string()));
                i += 1;
            }
        }
    }
    out
}

fn punct(t: Option<&Token>, p: &str) -> bool {
    matches!(t, Some(Token::Punct(x)) if x == p)
}

/// Reads `label op "value", ...}` from `tokens[at..]` (just after the `{`);
/// returns the matchers and the index after the `}`.
fn matchers(tokens: &[Token], mut at: usize, expr: &str) -> (Vec<Matcher>, usize) {
    let mut out = Vec::new();
    loop {
        match tokens.get(at) {
            Some(Token::Punct(p)) if p == "}" => return (out, at + 1),
            Some(Token::Punct(p)) if p == "," => at += 1,
            Some(Token::Ident(label)) => {
                let op = match tokens.get(at + 1) {
                    Some(Token::Punct(op)) if ["=", "!=", "=~", "!~"].contains(&op.as_str()) => op.clone(),
                    other => panic!("matcher {label} without an operator ({other:?}) in {expr}"),
                };
                let value = match tokens.get(at + 2) {
                    Some(Token::Str(v)) => v.clone(),
                    other => panic!("matcher {label}{op} without a string ({other:?}) in {expr}"),
                };
                out.push(Matcher {
                    label: label.clone(),
                    op,
                    value,
                });
                at += 3;
            }
            other => panic!("unexpected {other:?} in a selector of {expr}"),
        }
    }
}

/// What `expr` reads.
pub fn reads(expr: &str) -> Reads {
    let tokens = lex(expr);
    let mut out = Reads::default();
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            Token::Ident(word) if punct(tokens.get(i + 1), "(") && GROUPING.contains(&word.as_str()) => {
                i += 2;
                while !punct(tokens.get(i), ")") {
                    match tokens.get(i) {
                        Some(Token::Ident(label)) => {
                            out.grouping.insert(label.clone());
                        }
                        Some(Token::Punct(p)) if p == "," => {}
                        other => panic!("unexpected {other:?} in a label list of {expr}"),
                    }
                    i += 1;
                }
                i += 1;
            }
            Token::Ident(word) if word == "label_values" && punct(tokens.get(i + 1), "(") => {
                // Grafana: label_values(metric{...}, label)
                let Some(Token::Ident(metric)) = tokens.get(i + 2) else {
                    panic!("label_values without a metric in {expr}")
                };
                let (found, next) = if punct(tokens.get(i + 3), "{") {
                    matchers(&tokens, i + 4, expr)
                } else {
                    (Vec::new(), i + 3)
                };
                out.selectors.push(Selector {
                    metric: metric.clone(),
                    matchers: found,
                });
                let Some(Token::Ident(label)) = tokens.get(next + 1) else {
                    panic!("label_values without a label in {expr}")
                };
                out.grouping.insert(label.clone());
                i = next + 3;
            }
            Token::Ident(_) if punct(tokens.get(i + 1), "(") => i += 1, // a function or aggregation
            Token::Ident(word)
                if AGGREGATIONS.contains(&word.as_str())
                    && matches!(tokens.get(i + 1), Some(Token::Ident(m)) if m == "by" || m == "without") =>
            {
                i += 1
            }
            Token::Ident(word) if KEYWORDS.contains(&word.as_str()) => i += 1,
            Token::Ident(metric) => {
                let (found, next) = if punct(tokens.get(i + 1), "{") {
                    matchers(&tokens, i + 2, expr)
                } else {
                    (Vec::new(), i + 1)
                };
                out.selectors.push(Selector {
                    metric: metric.clone(),
                    matchers: found,
                });
                i = next;
            }
            Token::Punct(p) if p == "{" => {
                let (found, next) = matchers(&tokens, i + 1, expr);
                let name = found
                    .iter()
                    .find(|m| m.label == "__name__" && m.op == "=")
                    .unwrap_or_else(|| panic!("a selector without a metric name in {expr}"));
                out.selectors.push(Selector {
                    metric: name.value.clone(),
                    matchers: found.iter().filter(|m| m.label != "__name__").cloned().collect(),
                });
                i = next;
            }
            _ => i += 1,
        }
    }
    out
}

/// The series of a Prometheus text exposition: sample name → label sets.
pub fn scrape(text: &str) -> BTreeMap<String, Vec<BTreeMap<String, String>>> {
    let mut out: BTreeMap<String, Vec<BTreeMap<String, String>>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let (name, rest) = match line.find(['{', ' ']) {
            Some(i) => (&line[..i], &line[i..]),
            None => panic!("not a sample line: {line}"),
        };
        let mut labels = BTreeMap::new();
        if let Some(body) = rest.strip_prefix('{') {
            let chars: Vec<char> = body.chars().collect();
            let mut i = 0;
            while chars[i] != '}' {
                let start = i;
                while chars[i] != '=' {
                    i += 1;
                }
                let label: String = chars[start..i].iter().collect();
                assert_eq!(chars[i + 1], '"', "{line}");
                i += 2;
                let mut value = String::new();
                while chars[i] != '"' {
                    if chars[i] == '\\' {
                        i += 1;
                        value.push(match chars[i] {
                            'n' => '\n',
                            c => c,
                        });
                    } else {
                        value.push(chars[i]);
                    }
                    i += 1;
                }
                i += 1;
                if chars[i] == ',' {
                    i += 1;
                }
                labels.insert(label.trim().to_string(), value);
            }
        }
        out.entry(name.to_string()).or_default().push(labels);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_metrics_from_functions_keywords_ranges_and_variables() {
        let r = reads(
            r#"histogram_quantile(0.99, sum by (le, route) (rate(a_bucket{job=~"$job", x!="y,}"}[$__rate_interval])))
               / on (job) group_left sum without (instance) (b_total offset 5m) > bool 1e3 and c # d_not_a_metric"#,
        );
        let names: Vec<&str> = r.selectors.iter().map(|s| s.metric.as_str()).collect();
        assert_eq!(names, ["a_bucket", "b_total", "c"]);
        assert_eq!(r.selectors[0].matchers[1].value, "y,}");
        assert_eq!(
            r.grouping.iter().map(String::as_str).collect::<Vec<_>>(),
            ["instance", "job", "le", "route"]
        );
        let r = reads("label_values(m{a=\"b\"}, job)");
        assert_eq!(r.selectors[0].metric, "m");
        assert!(r.grouping.contains("job"));
        let r = reads("{__name__=\"m\", k='v'} - time()");
        assert_eq!(r.selectors[0].metric, "m");
        assert_eq!(r.selectors[0].matchers[0].label, "k");
    }

    #[test]
    fn reads_an_exposition() {
        let s = scrape("# TYPE a counter\na_total{x=\"1\",y=\"q\\\"\"} 3\nb 1\n");
        assert_eq!(s["a_total"][0]["y"], "q\"");
        assert!(s["b"][0].is_empty());
    }
}
