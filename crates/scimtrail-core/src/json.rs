//! Request bodies parsed strictly: an object may not hold two keys that differ only in case.
//!
//! SCIM attribute names, schema URNs and the members of a PATCH operation are all
//! case-insensitive (RFC 7643 §2.1), so `{"userName":"a","USERNAME":"b"}` names one attribute
//! twice. A plain JSON parser keeps the last value without a word; this one answers
//! `invalidSyntax` instead, at any depth, and also refuses exact duplicates.

use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::error::{ScimError, ScimResult};
use crate::path::short;

/// Parse a request body; duplicate keys (ignoring ASCII case) are `invalidSyntax`.
pub fn parse_strict(bytes: &[u8]) -> ScimResult<Value> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v = StrictValue
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v));
    v.map_err(|e| {
        let msg = e.to_string();
        match msg.strip_prefix(DUPLICATE) {
            Some(rest) => ScimError::invalid_syntax(format!(
                "the attribute '{}' is given twice (attribute names are case-insensitive)",
                rest.split(" at line").next().unwrap_or(rest)
            )),
            None => ScimError::invalid_syntax(format!("malformed JSON: {msg}")),
        }
    })
}

const DUPLICATE: &str = "duplicate key: ";

struct StrictValue;

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(v) = seq.next_element_seed(StrictValue)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        // Most objects have a handful of keys: compare those directly, hash beyond.
        let mut folded: Option<HashSet<String>> = None;
        while let Some(key) = map.next_key::<String>()? {
            let dup = match &mut folded {
                Some(set) => !set.insert(key.to_ascii_lowercase()),
                None => {
                    let dup = out.keys().any(|k| k.eq_ignore_ascii_case(&key));
                    if out.len() >= 16 {
                        folded = Some(out.keys().map(|k| k.to_ascii_lowercase()).collect());
                        if let Some(set) = &mut folded {
                            set.insert(key.to_ascii_lowercase());
                        }
                    }
                    dup
                }
            };
            if dup {
                return Err(serde::de::Error::custom(format!(
                    "{DUPLICATE}{}",
                    short(&key)
                )));
            }
            let v = map.next_value_seed(StrictValue)?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ScimType;

    #[test]
    fn same_as_serde_json_without_duplicates() {
        for s in [
            r#"{"a":1,"b":[true,null,"x",1.5,-3,18446744073709551615],"c":{"d":{}}}"#,
            "[]",
            "\"s\"",
            "12",
        ] {
            let want: Value = serde_json::from_str(s).unwrap();
            assert_eq!(parse_strict(s.as_bytes()).unwrap(), want, "{s}");
        }
    }

    #[test]
    fn keys_differing_only_in_case_are_refused_at_any_depth() {
        let many: String = (0..40).map(|i| format!("\"k{i}\":1,")).collect();
        for s in [
            r#"{"userName":"a","USERNAME":"b"}"#.to_string(),
            r#"{"userName":"a","userName":"b"}"#.to_string(),
            r#"{"Operations":[{"op":"add","OP":"remove"}]}"#.to_string(),
            r#"{"x":{"y":{"Value":1,"value":2}}}"#.to_string(),
            format!("{{{many}\"K7\":2}}"),
        ] {
            let e = parse_strict(s.as_bytes()).unwrap_err();
            assert_eq!(e.scim_type, Some(ScimType::InvalidSyntax), "{s}");
            assert!(e.detail.contains("twice"), "{}", e.detail);
        }
        let e = parse_strict(b"{\"a\":").unwrap_err();
        assert!(e.detail.starts_with("malformed JSON"), "{}", e.detail);
        assert!(parse_strict(b"{} x").is_err());
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse_strict(deep.as_bytes()).is_err());
    }
}
