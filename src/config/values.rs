//! Configuration value types that validate themselves while they are read,
//! so a bad value is reported with its field path and line like any other.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// A duration that is not written as `250ms`, `5s`, `2m`, `1h` or a combination.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {0:?}: expected e.g. 250ms, 5s, 2m, 1h or 1m30s")]
pub struct SpanError(pub String);

/// A duration written as `250ms`, `5s`, `2m` or `1h` (or a combination, `1m30s`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span(pub Duration);

impl Span {
    /// The duration.
    pub fn get(self) -> Duration {
        self.0
    }

    /// Parses `250ms`, `5s`, `2m`, `1h` or a combination such as `1m30s`.
    pub fn parse(s: &str) -> Result<Self, SpanError> {
        let bad = || SpanError(s.to_string());
        let mut rest = s.trim();
        if rest.is_empty() {
            return Err(bad());
        }
        let mut total = Duration::ZERO;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(bad());
            }
            let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
            rest = &rest[digits..];
            let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            let unit = match &rest[..unit_len] {
                "ms" => Duration::from_millis(n),
                "s" => Duration::from_secs(n),
                "m" => Duration::from_secs(n.saturating_mul(60)),
                "h" => Duration::from_secs(n.saturating_mul(3600)),
                _ => return Err(bad()),
            };
            total = total.saturating_add(unit);
            rest = &rest[unit_len..];
        }
        Ok(Span(total))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if !ms.is_multiple_of(1000) {
            write!(f, "{ms}ms")
        } else if !ms.is_multiple_of(60_000) || ms == 0 {
            write!(f, "{}s", ms / 1000)
        } else {
            write!(f, "{}m", ms / 60_000)
        }
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Span::parse(&s).map_err(de::Error::custom)
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Checks that `span` lies within `MIN_MS..=MAX_MS` milliseconds: the one
/// range check behind both the configuration keys ([`span_within`]) and the
/// command-line flags ([`span_arg`]), so both say the same thing.
pub(crate) fn span_in(span: Span, min_ms: u64, max_ms: u64) -> Result<Span, String> {
    let (min, max) = (Duration::from_millis(min_ms), Duration::from_millis(max_ms));
    if span.0 < min || span.0 > max {
        return Err(format!(
            "{span} is out of range: must be between {} and {}",
            Span(min),
            Span(max)
        ));
    }
    Ok(span)
}

/// Checks that a count or size lies within `MIN..=MAX` (see [`span_in`]).
pub(crate) fn count_in<T: Copy + TryInto<u64> + fmt::Display>(n: T, min: u64, max: u64) -> Result<T, String> {
    match n.try_into() {
        Ok(v) if (min..=max).contains(&v) => Ok(n),
        _ => Err(format!("{n} is out of range: must be between {min} and {max}")),
    }
}

/// Reads a [`Span`] and checks that it lies within `MIN_MS..=MAX_MS`
/// milliseconds, so that zero, absurd and overflowing durations are refused
/// where they are written (with the file, field and line), not found later
/// as a panic (`tokio::time::interval(0)`) or a timer that never fires.
pub(crate) fn span_within<'de, const MIN_MS: u64, const MAX_MS: u64, D: Deserializer<'de>>(
    d: D,
) -> Result<Span, D::Error> {
    span_in(Span::deserialize(d)?, MIN_MS, MAX_MS).map_err(de::Error::custom)
}

/// Reads a count or size and checks that it lies within `MIN..=MAX`
/// (a negative number is already refused by the integer type).
pub(crate) fn count_within<'de, const MIN: u64, const MAX: u64, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Copy + TryInto<u64> + fmt::Display,
{
    let n =
        T::deserialize(d).map_err(|_| de::Error::custom(format!("expected a whole number between {MIN} and {MAX}")))?;
    count_in(n, MIN, MAX).map_err(de::Error::custom)
}

/// A command-line duration (clap `value_parser`), checked like a
/// configuration key by [`span_in`].
pub(crate) fn span_arg<const MIN_MS: u64, const MAX_MS: u64>(s: &str) -> Result<Span, String> {
    span_in(Span::parse(s).map_err(|e| e.to_string())?, MIN_MS, MAX_MS)
}

/// A command-line count (clap `value_parser`), checked like a configuration
/// key by [`count_in`].
pub(crate) fn count_arg<const MIN: u64, const MAX: u64>(s: &str) -> Result<u32, String> {
    let n: u32 = s
        .parse()
        .map_err(|_| format!("{s:?}: expected a whole number between {MIN} and {MAX}"))?;
    count_in(n, MIN, MAX)
}

/// A glob pattern over image references, checked when read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Pattern(pub String);

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        globset::Glob::new(&s).map_err(|e| de::Error::custom(format!("invalid glob {s:?}: {e}")))?;
        Ok(Pattern(s))
    }
}

/// An annotation key prefix: a DNS subdomain such as `entrypoint-guard.io`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Prefix(pub String);

impl<'de> Deserialize<'de> for Prefix {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if s.len() > 253 || !s.split('.').all(label_ok) {
            return Err(de::Error::custom(format!(
                "invalid annotation prefix {s:?}: must be a DNS subdomain (lowercase letters, digits, '-', '.')"
            )));
        }
        Ok(Prefix(s))
    }
}

/// The wrapper prefix: a non-empty list of non-empty strings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct WrapperPrefix(pub Vec<String>);

impl<'de> Deserialize<'de> for WrapperPrefix {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Vec::<String>::deserialize(d)?;
        if v.is_empty() || v.iter().any(String::is_empty) {
            return Err(de::Error::custom(
                "the wrapper must be a non-empty list of non-empty strings, e.g. [\"/chalk\", \"exec\"]",
            ));
        }
        Ok(WrapperPrefix(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_parse_and_print() {
        assert_eq!(Span::parse("250ms").unwrap().get(), Duration::from_millis(250));
        assert_eq!(Span::parse("1m30s").unwrap().get(), Duration::from_secs(90));
        assert_eq!(Span::parse("2h").unwrap().get(), Duration::from_secs(7200));
        for bad in ["", "5", "s", "5 s", "-1s", "1d"] {
            assert!(Span::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Span(Duration::from_secs(300)).to_string(), "5m");
        assert_eq!(Span(Duration::from_millis(1500)).to_string(), "1500ms");
        assert_eq!(Span(Duration::from_secs(5)).to_string(), "5s");
    }

    #[test]
    fn flags_are_checked_by_the_same_ranges_as_keys() {
        assert_eq!(span_arg::<1_000, 86_400_000>("10m"), Ok(Span(Duration::from_secs(600))));
        for bad in ["0s", "999ms", "25h"] {
            let e = span_arg::<1_000, 86_400_000>(bad).unwrap_err();
            assert!(
                e.ends_with("is out of range: must be between 1s and 1440m"),
                "{bad}: {e}"
            );
        }
        assert!(
            span_arg::<1_000, 86_400_000>("-1s")
                .unwrap_err()
                .contains("invalid duration")
        );
        assert_eq!(count_arg::<1, 10_000>("500"), Ok(500));
        assert_eq!(
            count_arg::<1, 10_000>("0").unwrap_err(),
            "0 is out of range: must be between 1 and 10000"
        );
        for bad in ["-1", "10001", "1.5", "99999999999"] {
            assert!(count_arg::<1, 10_000>(bad).is_err(), "{bad}");
        }
    }
}
