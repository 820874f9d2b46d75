//! Fields read from a JSON body, only ever after its signature held.
//!
//! A body that is not JSON, or lacks a field, yields `None`: that is the provider's
//! business, not a rejection.
//!
//! [`fields`] reads only the paths a scheme needs and skips everything else
//! without building it, so a body nested deeper than `serde_json`'s recursion
//! limit (128) elsewhere still yields its id and event, and a large body costs
//! no tree of values. Skipping is iterative in `serde_json` (no recursion, any
//! depth); the recursion of [`fields`] is bounded by the length of its paths.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// The scalar arms shared by [`Pruned`] and [`Leaf`]: kept as they are.
macro_rules! scalars {
    () => {
        fn visit_bool<E: de::Error>(self, value: bool) -> Result<Value, E> {
            Ok(Value::Bool(value))
        }
        fn visit_i64<E: de::Error>(self, value: i64) -> Result<Value, E> {
            Ok(Value::from(value))
        }
        fn visit_u64<E: de::Error>(self, value: u64) -> Result<Value, E> {
            Ok(Value::from(value))
        }
        fn visit_f64<E: de::Error>(self, value: f64) -> Result<Value, E> {
            Ok(Value::from(value))
        }
        fn visit_str<E: de::Error>(self, value: &str) -> Result<Value, E> {
            Ok(Value::String(value.to_owned()))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
    };
}

/// Values nested deeper than this are skipped by [`parse`] (as `null`).
pub(crate) const MAX_KEPT_DEPTH: usize = 64;

/// Parses the body once, if it is JSON. Parts nested deeper than
/// [`MAX_KEPT_DEPTH`] are skipped without being built (`serde_json` skips
/// iteratively), so a body nested deeper than its recursion limit (128)
/// somewhere still yields its id and event. [`fields`] reads only given paths.
pub(crate) fn parse(body: &[u8]) -> Option<Value> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = Shallow(MAX_KEPT_DEPTH)
        .deserialize(&mut deserializer)
        .ok()?;
    deserializer.end().ok()?;
    Some(value)
}

/// A value kept down to the given depth; deeper values become `null`.
struct Shallow(usize);

impl<'de> DeserializeSeed<'de> for Shallow {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        if self.0 == 0 {
            return deserializer.deserialize_any(Leaf);
        }
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Shallow {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(Shallow(self.0 - 1))?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(value) = seq.next_element_seed(Shallow(self.0 - 1))? {
            out.push(value);
        }
        Ok(Value::Array(out))
    }

    scalars!();
}

/// The body reduced to the values along `paths` (each a list of object keys
/// or array indices), if it is JSON: [`text`] and [`lookup`] find them there
/// as in the whole body. Scalars at the end of a path are kept; objects and
/// arrays there are skipped (they are never an id, event or timestamp).
pub(crate) fn fields<S: AsRef<str>>(body: &[u8], paths: &[&[S]]) -> Option<Value> {
    let paths: Vec<Vec<&str>> = paths
        .iter()
        .map(|path| path.iter().map(AsRef::as_ref).collect())
        .collect();
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = Pruned {
        paths: paths.iter().map(Vec::as_slice).collect(),
    }
    .deserialize(&mut deserializer)
    .ok()?;
    deserializer.end().ok()?;
    Some(value)
}

/// A node some paths go through: the remaining segments of each (none empty).
struct Pruned<'p> {
    paths: Vec<&'p [&'p str]>,
}

impl<'p> Pruned<'p> {
    /// The paths through child `segment`; `None` when none goes there,
    /// `Some(None)` when every one ends there.
    fn child(&self, segment: &str) -> Option<Option<Pruned<'p>>> {
        let through: Vec<&'p [&'p str]> = self
            .paths
            .iter()
            .filter(|path| path.first() == Some(&segment))
            .map(|path| &path[1..])
            .collect();
        if through.is_empty() {
            return None;
        }
        let deeper: Vec<&'p [&'p str]> = through.into_iter().filter(|p| !p.is_empty()).collect();
        Some((!deeper.is_empty()).then_some(Pruned { paths: deeper }))
    }

    /// The largest array index any path takes here.
    fn max_index(&self) -> Option<usize> {
        self.paths
            .iter()
            .filter_map(|path| path.first()?.parse::<usize>().ok())
            .max()
    }
}

impl<'de> DeserializeSeed<'de> for Pruned<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Pruned<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            match self.child(&key) {
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
                Some(None) => {
                    let value = map.next_value_seed(Leaf)?;
                    out.insert(key, value);
                }
                Some(Some(deeper)) => {
                    let value = map.next_value_seed(deeper)?;
                    out.insert(key, value);
                }
            }
        }
        Ok(Value::Object(out))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let last = self.max_index();
        let mut out = Vec::new();
        let mut index = 0usize;
        loop {
            let wanted = last.is_some_and(|last| index <= last);
            let next = if wanted {
                match self.child(&index.to_string()) {
                    None => seq.next_element::<IgnoredAny>()?.map(|_| Value::Null),
                    Some(None) => seq.next_element_seed(Leaf)?,
                    Some(Some(deeper)) => seq.next_element_seed(deeper)?,
                }
            } else {
                seq.next_element::<IgnoredAny>()?.map(|_| Value::Null)
            };
            let Some(value) = next else { break };
            if wanted {
                out.push(value);
            }
            index += 1;
        }
        Ok(Value::Array(out))
    }

    scalars!();
}

/// A value at the end of a path: kept when a scalar, skipped otherwise.
struct Leaf;

impl<'de> DeserializeSeed<'de> for Leaf {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Leaf {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Value::Null)
    }

    scalars!();
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
    fn parse_keeps_shallow_fields_of_a_deep_body() {
        let deep = format!(
            r#"{{"id":"evt_1","data":{}1{},"type":"a.b"}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let json = parse(deep.as_bytes());
        assert_eq!(text(json.as_ref(), &["id"]).as_deref(), Some("evt_1"));
        assert_eq!(text(json.as_ref(), &["type"]).as_deref(), Some("a.b"));
        let shallow = br#"{"a":[1,{"b":"x"}],"n":null,"t":true}"#;
        assert_eq!(
            parse(shallow),
            serde_json::from_slice::<Value>(shallow).ok()
        );
    }

    #[test]
    fn fields_reads_only_its_paths_at_any_depth_elsewhere() {
        let deep = format!(
            r#"{{"id":"evt_1","data":{}1{},"event":{{"type":"a.b","x":{{"y":[1,2]}}}},"l":["p","q",{{"r":"s"}}],"n":-4,"f":1.5}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        // The whole body is beyond serde_json's recursion limit…
        assert!(serde_json::from_slice::<Value>(deep.as_bytes()).is_err());
        // …its fields are not.
        let paths: [&[&str]; 7] = [
            &["id"],
            &["event", "type"],
            &["l", "1"],
            &["l", "2", "r"],
            &["n"],
            &["f"],
            &["event", "x"],
        ];
        let json = fields(deep.as_bytes(), &paths);
        let text = |path: &[&str]| text(json.as_ref(), path);
        assert_eq!(text(&["id"]).as_deref(), Some("evt_1"));
        assert_eq!(text(&["event", "type"]).as_deref(), Some("a.b"));
        assert_eq!(text(&["l", "1"]).as_deref(), Some("q"));
        assert_eq!(text(&["l", "2", "r"]).as_deref(), Some("s"));
        assert_eq!(text(&["n"]).as_deref(), Some("-4"));
        assert_eq!(text(&["event", "x"]), None);
        assert_eq!(text(&["data"]), None);
        let root = json.unwrap();
        assert_eq!(lookup(&root, &["f"]), Some(&Value::from(1.5)));
        assert_eq!(lookup(&root, &["data"]), None, "unasked parts are not kept");
    }

    #[test]
    fn fields_agrees_with_the_whole_parse() {
        let bodies: [&[u8]; 6] = [
            br#"{"a":{"b":"x","n":42,"f":1.5,"l":["p","q"]},"e":""}"#,
            br#"[{"a":"first"},{"a":"second"}]"#,
            br#""just a string""#,
            br#"{"a":null,"a2":true}"#,
            b"{\"a\":1} trailing",
            b"token=abc",
        ];
        let paths: [&[&str]; 8] = [
            &["a", "b"],
            &["a", "n"],
            &["a", "l", "1"],
            &["a", "f"],
            &["e"],
            &["1", "a"],
            &["a"],
            &["a2"],
        ];
        for body in bodies {
            let whole = parse(body);
            let pruned = fields(body, &paths);
            assert_eq!(whole.is_some(), pruned.is_some(), "{body:?}");
            for path in paths {
                assert_eq!(
                    text(whole.as_ref(), path),
                    text(pruned.as_ref(), path),
                    "{body:?} {path:?}"
                );
            }
        }
    }

    #[test]
    fn hostile_bodies_yield_none() {
        assert_eq!(parse(b"token=abc&x=1"), None);
        assert_eq!(parse(&[0xff, 0xfe]), None);
        let deep = "[".repeat(100_000);
        assert_eq!(parse(deep.as_bytes()), None, "unterminated");
        assert_eq!(fields(deep.as_bytes(), &[&["a"]]), None);
        assert_eq!(fields(b"token=abc&x=1", &[&["a"]]), None);
    }
}
