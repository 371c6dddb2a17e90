//! A reply read once: checked against its contract's schema in full,
//! built as jq values only as far as the endpoint reads it ([`Need`]).
//!
//! The parts no expression reads are still parsed and checked (a reply of
//! the wrong shape counts against the service, whatever is read of it)
//! but not built: no value, no hashed key, nothing to drop afterwards.
//! This reader is stricter than building everything and checking after
//! (it refuses a wrong-typed field even when a later duplicate key would
//! have replaced it), so when it refuses, the caller reads the reply the
//! whole way to get the verdict, and its words, of [`Shape::check`].

use std::fmt;

use bytes::Bytes;
use jaq_json::{Map, Num, Val};
use serde::de::{
    DeserializeSeed, Deserializer, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor,
};

use super::need::Need;
use super::read::Seed;
use crate::upstream::contract::{Field, Shape};

/// `body` as one JSON value of `shape`, built as far as `need` reads it.
/// `Err` when it is not JSON or not of the shape.
pub fn parse(body: &Bytes, shape: &Shape, need: &Need) -> Result<Val, serde_json::Error> {
    let mut reader = serde_json::Deserializer::from_str(super::read::utf8(body)?);
    let value = Keep { body, shape, need }.deserialize(&mut reader)?;
    reader.end()?;
    Ok(value)
}

const WRONG: &str = "not of the contract's shape";

/// `shape` without its `null` allowance, and whether `null` is allowed.
fn unwrap(shape: &Shape) -> (&Shape, bool) {
    match shape {
        Shape::Nullable(inner) => (unwrap(inner).0, true),
        other => (other, false),
    }
}

/// Builds the value as far as `need` reads it, checking all of it.
#[derive(Clone, Copy)]
struct Keep<'a> {
    body: &'a Bytes,
    shape: &'a Shape,
    need: &'a Need,
}

impl<'de> DeserializeSeed<'de> for Keep<'_> {
    type Value = Val;

    fn deserialize<D: Deserializer<'de>>(self, reader: D) -> Result<Val, D::Error> {
        if self.need.is_whole() || matches!(unwrap(self.shape).0, Shape::OneOf(_)) {
            // Built whole, then checked as the whole-reply path does.
            let value = Seed(self.body).deserialize(reader)?;
            self.shape
                .check(&value)
                .map_err(|_| D::Error::custom(WRONG))?;
            return Ok(value);
        }
        reader.deserialize_any(self)
    }
}

/// Checks the value against `shape`, building nothing.
#[derive(Clone, Copy)]
struct Check<'a> {
    body: &'a Bytes,
    shape: &'a Shape,
}

impl<'de> DeserializeSeed<'de> for Check<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, reader: D) -> Result<(), D::Error> {
        match unwrap(self.shape).0 {
            Shape::Any => reader.deserialize_ignored_any(IgnoredAny).map(drop),
            Shape::OneOf(_) => {
                let value = Seed(self.body).deserialize(reader)?;
                self.shape
                    .check(&value)
                    .map_err(|_| D::Error::custom(WRONG))
            }
            _ => reader.deserialize_any(self),
        }
    }
}

/// What a scalar must be under `shape`: `Ok` when it may be.
fn scalar<E: serde::de::Error>(shape: &Shape, fits: impl Fn(&Shape) -> bool) -> Result<(), E> {
    let (inner, _) = unwrap(shape);
    if matches!(inner, Shape::Any) || fits(inner) {
        Ok(())
    } else {
        Err(E::custom(WRONG))
    }
}

fn integral(n: &Num) -> bool {
    match n {
        Num::Float(f) => f.fract() == 0.0,
        _ => true,
    }
}

fn num_fits(shape: &Shape, n: &Num) -> bool {
    matches!(shape, Shape::Number) || (matches!(shape, Shape::Integer) && integral(n))
}

/// Whether a required field was not among those `seen`.
fn missing_required(documented: &[Field], seen: &[bool]) -> bool {
    documented
        .iter()
        .zip(seen)
        .any(|(field, seen)| field.required && !seen)
}

/// The text of a key as read by [`Seed`].
fn key_text(key: &Val) -> &[u8] {
    match key {
        Val::TStr(bytes) | Val::BStr(bytes) => bytes,
        _ => b"",
    }
}

macro_rules! scalars {
    ($build:expr) => {
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            if unwrap(self.shape).1 || matches!(unwrap(self.shape).0, Shape::Any) {
                Ok($build(Val::Null))
            } else {
                Err(E::custom(WRONG))
            }
        }

        fn visit_bool<E: serde::de::Error>(self, value: bool) -> Result<Self::Value, E> {
            scalar(self.shape, |s| matches!(s, Shape::Bool))?;
            Ok($build(Val::Bool(value)))
        }

        fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<Self::Value, E> {
            let n = Num::from_integral(value);
            scalar(self.shape, |s| num_fits(s, &n))?;
            Ok($build(Val::Num(n)))
        }

        fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<Self::Value, E> {
            let n = Num::from_integral(value);
            scalar(self.shape, |s| num_fits(s, &n))?;
            Ok($build(Val::Num(n)))
        }

        fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<Self::Value, E> {
            let n = Num::Float(value);
            scalar(self.shape, |s| num_fits(s, &n))?;
            Ok($build(Val::Num(n)))
        }

        fn visit_borrowed_str<E: serde::de::Error>(
            self,
            value: &'de str,
        ) -> Result<Self::Value, E> {
            scalar(self.shape, |s| matches!(s, Shape::String { .. }))?;
            Ok($build(Val::TStr(Box::new(
                self.body.slice_ref(value.as_bytes()),
            ))))
        }

        fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Self::Value, E> {
            scalar(self.shape, |s| matches!(s, Shape::String { .. }))?;
            Ok($build(Val::utf8_str(value.to_owned().into_bytes())))
        }
    };
}

impl<'de> Visitor<'de> for Keep<'_> {
    type Value = Val;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    scalars!(|v| v);

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Val, A::Error> {
        let shape = match unwrap(self.shape).0 {
            Shape::Array(items) => items,
            Shape::Any => &Shape::Any,
            _ => return Err(A::Error::custom(WRONG)),
        };
        let mut list = Vec::new();
        match &self.need.items {
            Some(need) => {
                let each = Keep {
                    body: self.body,
                    shape,
                    need,
                };
                while let Some(item) = items.next_element_seed(each)? {
                    list.push(item);
                }
            }
            None => {
                let each = Check {
                    body: self.body,
                    shape,
                };
                while items.next_element_seed(each)?.is_some() {}
            }
        }
        Ok(Val::Arr(list.into()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut fields: A) -> Result<Val, A::Error> {
        let documented: &[Field] = match unwrap(self.shape).0 {
            Shape::Object(fields) => fields,
            Shape::Any => &[],
            _ => return Err(A::Error::custom(WRONG)),
        };
        let mut seen = vec![false; documented.len()];
        let mut map = Map::default();
        while let Some(key) = fields.next_key_seed(Seed(self.body))? {
            let name = key_text(&key);
            let field = documented.iter().position(|f| f.name.as_bytes() == name);
            let shape = match field {
                Some(i) => {
                    seen[i] = true;
                    &documented[i].shape
                }
                None => &Shape::Any,
            };
            let need = std::str::from_utf8(name)
                .ok()
                .and_then(|name| self.need.fields.get(name))
                .or(self.need.items.as_deref());
            match need {
                Some(need) => {
                    let value = fields.next_value_seed(Keep {
                        body: self.body,
                        shape,
                        need,
                    })?;
                    map.insert(key, value);
                }
                None if field.is_some() => fields.next_value_seed(Check {
                    body: self.body,
                    shape,
                })?,
                None => {
                    fields.next_value::<IgnoredAny>()?;
                }
            }
        }
        if missing_required(documented, &seen) {
            return Err(A::Error::custom(WRONG));
        }
        Ok(Val::obj(map))
    }
}

impl<'de> Visitor<'de> for Check<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    scalars!(drop);

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<(), A::Error> {
        let Shape::Array(shape) = unwrap(self.shape).0 else {
            return Err(A::Error::custom(WRONG));
        };
        let each = Check {
            body: self.body,
            shape,
        };
        while items.next_element_seed(each)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut fields: A) -> Result<(), A::Error> {
        let Shape::Object(documented) = unwrap(self.shape).0 else {
            return Err(A::Error::custom(WRONG));
        };
        let mut seen = vec![false; documented.len()];
        while let Some(key) = fields.next_key::<std::borrow::Cow<'de, str>>()? {
            match documented.iter().position(|f| f.name == *key) {
                Some(i) => {
                    seen[i] = true;
                    fields.next_value_seed(Check {
                        body: self.body,
                        shape: &documented[i].shape,
                    })?;
                }
                None => {
                    fields.next_value::<IgnoredAny>()?;
                }
            }
        }
        if missing_required(documented, &seen) {
            return Err(A::Error::custom(WRONG));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order_shape() -> Shape {
        let item = Shape::Object(vec![
            Field::new("sku", Shape::String { values: Vec::new() }, true),
            Field::new("quantity", Shape::Integer, true),
        ]);
        let order = Shape::Object(vec![
            Field::new("id", Shape::String { values: Vec::new() }, true),
            Field::new(
                "note",
                Shape::Nullable(Box::new(Shape::String { values: Vec::new() })),
                false,
            ),
            Field::new("items", Shape::Array(Box::new(item)), true),
        ]);
        Shape::Object(vec![Field::new(
            "orders",
            Shape::Array(Box::new(order)),
            true,
        )])
    }

    fn need_ids_and_quantities() -> Need {
        let mut quantity = Need::default();
        quantity.fields.insert("quantity".into(), Need::whole());
        let mut order = Need::default();
        order.fields.insert("id".into(), Need::whole());
        order.fields.insert(
            "items".into(),
            Need {
                items: Some(Box::new(quantity)),
                ..Need::default()
            },
        );
        let mut root = Need::default();
        root.fields.insert(
            "orders".into(),
            Need {
                items: Some(Box::new(order)),
                ..Need::default()
            },
        );
        root
    }

    fn body(text: &str) -> Bytes {
        Bytes::copy_from_slice(text.as_bytes())
    }

    #[test]
    fn only_what_is_read_is_built() {
        let reply = body(
            r#"{"orders":[{"id":"o1","note":"x","extra":{"deep":[1,2]},"items":[{"sku":"a","quantity":2},{"sku":"b","quantity":3}]}],"more":true}"#,
        );
        let value = parse(&reply, &order_shape(), &need_ids_and_quantities()).expect("valid");
        assert_eq!(
            value.to_string(),
            r#"{"orders":[{"id":"o1","items":[{"quantity":2},{"quantity":3}]}]}"#
        );
    }

    #[test]
    fn parts_not_read_are_still_checked() {
        let shape = order_shape();
        let need = need_ids_and_quantities();
        for bad in [
            // a documented field not read, of the wrong type
            r#"{"orders":[{"id":"o1","note":5,"items":[]}]}"#,
            // a required field not read, missing
            r#"{"orders":[{"id":"o1","items":[{"quantity":2}]}]}"#,
            // an item's quantity not an integer
            r#"{"orders":[{"id":"o1","items":[{"sku":"a","quantity":2.5}]}]}"#,
            r#"{"orders":{}}"#,
            r#"{"orders":[{"id":"o1","items":[]}]"#,
        ] {
            assert!(parse(&body(bad), &shape, &need).is_err(), "{bad}");
            let whole = super::super::read::parse(&body(bad));
            assert!(
                whole.is_err() || shape.check(&whole.expect("parsed")).is_err(),
                "the whole-reply check refuses it too: {bad}"
            );
        }
        let good = body(r#"{"orders":[{"id":"o1","note":null,"items":[]}]}"#);
        assert!(parse(&good, &shape, &need).is_ok());
    }
}
