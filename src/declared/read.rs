//! A reply's JSON as jaq values, its strings not copied: each string
//! without escapes is a slice of the reply's own buffer (`Bytes`), which
//! the values then share. serde_json parses; this only builds the values.

use std::fmt;

use bytes::Bytes;
use jaq_json::{Map, Num, Val};
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// `body` as one JSON value.
pub fn parse(body: &Bytes) -> Result<Val, serde_json::Error> {
    let mut reader = serde_json::Deserializer::from_str(utf8(body)?);
    let value = Seed(body).deserialize(&mut reader)?;
    reader.end()?;
    Ok(value)
}

/// The body as text, checked as UTF-8 once: a reader over a `str` does
/// not check each string again (which, string by string, cost more).
pub(super) fn utf8(body: &[u8]) -> Result<&str, serde_json::Error> {
    std::str::from_utf8(body).map_err(serde::de::Error::custom)
}

/// Builds values whose unescaped strings borrow from the buffer.
#[derive(Clone, Copy)]
pub(super) struct Seed<'b>(pub(super) &'b Bytes);

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Val;

    fn deserialize<D: Deserializer<'de>>(self, reader: D) -> Result<Val, D::Error> {
        reader.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Val;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Val, E> {
        Ok(Val::Null)
    }

    fn visit_bool<E>(self, value: bool) -> Result<Val, E> {
        Ok(Val::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Val, E> {
        Ok(Val::Num(Num::from_integral(value)))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Val, E> {
        Ok(Val::Num(Num::from_integral(value)))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Val, E> {
        Ok(Val::Num(Num::Float(value)))
    }

    fn visit_borrowed_str<E>(self, value: &'de str) -> Result<Val, E> {
        // Borrowed from the reader's text: the string lies in the buffer.
        Ok(Val::TStr(Box::new(self.0.slice_ref(value.as_bytes()))))
    }

    fn visit_str<E>(self, value: &str) -> Result<Val, E> {
        // Had escapes: unescaped into a copy.
        Ok(Val::utf8_str(value.to_owned().into_bytes()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Val, A::Error> {
        let mut list = Vec::with_capacity(items.size_hint().unwrap_or(0));
        while let Some(item) = items.next_element_seed(self)? {
            list.push(item);
        }
        Ok(Val::Arr(list.into()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut fields: A) -> Result<Val, A::Error> {
        let mut map = Map::default();
        while let Some(key) = fields.next_key_seed(self)? {
            let value = fields.next_value_seed(self)?;
            map.insert(key, value);
        }
        Ok(Val::obj(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_jaq_reads() {
        let text =
            r#"{"a":[1,-2,3.5,true,null,"x"],"b":{"c":"esc\"aped\u00e9"},"":[],"n":12345678901}"#;
        let ours = parse(&Bytes::from_static(text.as_bytes())).expect("parses");
        let jaqs = jaq_json::read::parse_single(text.as_bytes()).expect("jaq parses");
        assert_eq!(ours.to_string(), jaqs.to_string());
        assert!(parse(&Bytes::from_static(b"{\"a\":")).is_err());
        assert!(parse(&Bytes::from_static(b"{} x")).is_err());
    }
}
