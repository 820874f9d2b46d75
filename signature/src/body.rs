//! Fields read from a JSON body, only ever after its signature held.
//!
//! A body that is not JSON, or lacks a field, yields `None`: that is the provider's
//! business, not a rejection. `serde_json`'s recursion limit keeps deeply nested
//! hostile input from exhausting the stack.

use serde_json::Value;

/// Parses the body once, if it is JSON.
pub(crate) fn parse(body: &[u8]) -> Option<Value> {
    serde_json::from_slice(body).ok()
}

/// A configured dot-separated field path such as `event.event_type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JsonPath(Vec<String>);

impl JsonPath {
    /// `None` when the path is empty or has an empty segment (`a..b`, `.a`).
    pub(crate) fn parse(path: &str) -> Option<Self> {
        let segments: Vec<String> = path.split('.').map(str::to_owned).collect();
        if segments.iter().any(String::is_empty) {
            return None;
        }
        Some(Self(segments))
    }

    /// The path's segments.
    pub(crate) fn segments(&self) -> &[String] {
        &self.0
    }

    /// The value at this path.
    pub(crate) fn lookup<'v>(&self, root: &'v Value) -> Option<&'v Value> {
        lookup(root, &self.0)
    }

    /// The field as text (see [`text`]).
    pub(crate) fn text(&self, root: Option<&Value>) -> Option<String> {
        text(root, &self.0)
    }
}

/// The field at `path` as text: strings as they are, integers in decimal; anything
/// else (objects, floats, booleans, empty strings) is `None`.
pub(crate) fn text<S: AsRef<str>>(root: Option<&Value>, path: &[S]) -> Option<String> {
    match lookup(root?, path)? {
        Value::String(text) if !text.is_empty() => Some(text.clone()),
        Value::Number(number) if number.is_u64() || number.is_i64() => Some(number.to_string()),
        _ => None,
    }
}

/// The value at `path`; a segment that is a number also indexes arrays.
pub(crate) fn lookup<'v, S: AsRef<str>>(root: &'v Value, path: &[S]) -> Option<&'v Value> {
    path.iter().try_fold(root, |value, segment| match value {
        Value::Object(map) => map.get(segment.as_ref()),
        Value::Array(items) => items.get(segment.as_ref().parse::<usize>().ok()?),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let body = parse(br#"{"a":{"b":"x","n":42,"f":1.5,"l":["p","q"]},"e":""}"#);
        let text = |path: &str| JsonPath::parse(path).unwrap().text(body.as_ref());
        assert_eq!(text("a.b").as_deref(), Some("x"));
        assert_eq!(text("a.n").as_deref(), Some("42"));
        assert_eq!(text("a.l.1").as_deref(), Some("q"));
        assert_eq!(text("a.f"), None);
        assert_eq!(text("a"), None);
        assert_eq!(text("e"), None);
        assert_eq!(text("a.b.c"), None);
        assert_eq!(text("missing"), None);
        for bad in ["", ".", "a.", ".a", "a..b"] {
            assert_eq!(JsonPath::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn hostile_bodies_yield_none() {
        assert_eq!(parse(b"token=abc&x=1"), None);
        assert_eq!(parse(&[0xff, 0xfe]), None);
        let deep = "[".repeat(100_000);
        assert_eq!(parse(deep.as_bytes()), None);
    }
}
