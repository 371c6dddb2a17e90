//! An upstream's OpenAPI contract, read for what the gateway needs of it:
//! the `200` reply schema of each GET operation. A declared call's reply
//! is judged against it (a reply of the wrong shape counts against the
//! service, as a typed client's does), a call to a path the contract does
//! not have is refused at load, and composed replies' schemas are built
//! from it.
//!
//! The file is parsed with `yaml-rust2` into JSON, then into `openapiv3`'s
//! model; schemas become a [`Shape`] with every `$ref` resolved. Formats,
//! enums and bounds are kept for documentation only: a reply is judged by
//! its structure (types, required fields, items), as serde judges a typed
//! client's, so a service adding an enum value breaks nothing.

use std::collections::BTreeMap;

use jaq_json::Val;
use openapiv3::{OpenAPI, ReferenceOr, Schema, SchemaKind, Type};
use serde_json::{Value, json};

/// What a JSON value must look like.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// Anything.
    Any,
    Bool,
    Integer,
    Number,
    /// A string, with the values it documents (not enforced).
    String {
        values: Vec<String>,
    },
    Array(Box<Shape>),
    /// An object's documented fields; others may be present.
    Object(Vec<Field>),
    /// `null` or the inner shape.
    Nullable(Box<Shape>),
    /// Any one of these.
    OneOf(Vec<Shape>),
}

/// One documented field of an object.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    /// The name as a JSON string, built once: looked up per reply.
    key: Val,
    pub shape: Shape,
    pub required: bool,
}

impl Field {
    pub fn new(name: &str, shape: Shape, required: bool) -> Self {
        Self {
            name: name.to_owned(),
            key: Val::utf8_str(name.as_bytes().to_vec()),
            shape,
            required,
        }
    }
}

/// Where a value broke its shape: `orders[3].items: expected an array`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeError(pub String);

impl std::fmt::Display for ShapeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ShapeError {}

impl Shape {
    /// Checks `value`, naming the first place it differs. Nothing is
    /// allocated unless it differs: the place is put together on the way
    /// out of the error.
    pub fn check(&self, value: &Val) -> Result<(), ShapeError> {
        self.check_in(value).map_err(|(mut place, expected)| {
            place.reverse();
            let place = if place.is_empty() {
                "the reply".to_owned()
            } else {
                place.concat().trim_start_matches('.').to_owned()
            };
            ShapeError(format!("{place}: expected {expected}"))
        })
    }

    /// `Err((place, innermost first; what was expected))`.
    fn check_in(&self, value: &Val) -> Result<(), (Vec<String>, String)> {
        let wrong = |expected: &str| Err((Vec::new(), expected.to_owned()));
        match (self, value) {
            (Self::Any, _) | (Self::Nullable(_), Val::Null) | (Self::Bool, Val::Bool(_)) => Ok(()),
            (Self::Nullable(inner), _) => inner.check_in(value),
            (Self::Integer, Val::Num(n)) if is_integer(n) => Ok(()),
            (Self::Number, Val::Num(_)) => Ok(()),
            (Self::String { .. }, Val::TStr(_)) => Ok(()),
            (Self::Array(items), Val::Arr(values)) => {
                for (i, item) in values.iter().enumerate() {
                    items.check_in(item).map_err(|(mut place, expected)| {
                        place.push(format!("[{i}]"));
                        (place, expected)
                    })?;
                }
                Ok(())
            }
            (Self::Object(documented), Val::Obj(fields)) => {
                for field in documented {
                    match fields.get(&field.key) {
                        Some(value) => {
                            field
                                .shape
                                .check_in(value)
                                .map_err(|(mut place, expected)| {
                                    place.push(format!(".{}", field.name));
                                    (place, expected)
                                })?
                        }
                        None if field.required => {
                            return wrong(&format!("a field `{}`", field.name));
                        }
                        None => {}
                    }
                }
                Ok(())
            }
            (Self::OneOf(shapes), _) => {
                if shapes.iter().any(|s| s.check_in(value).is_ok()) {
                    Ok(())
                } else {
                    wrong("one of the documented shapes")
                }
            }
            (Self::Integer, _) => wrong("an integer"),
            (Self::Number, _) => wrong("a number"),
            (Self::Bool, _) => wrong("a boolean"),
            (Self::String { .. }, _) => wrong("a string"),
            (Self::Array(_), _) => wrong("an array"),
            (Self::Object { .. }, _) => wrong("an object"),
        }
    }

    /// A value of this shape, every documented field present: for
    /// describing what an expression makes of it. With `nulls`, every
    /// nullable place is `null` instead.
    pub fn example(&self, nulls: bool) -> Val {
        match self {
            Self::Any => Val::Null,
            Self::Bool => Val::Bool(true),
            Self::Integer => Val::Num(jaq_json::Num::Int(1)),
            Self::Number => Val::Num(jaq_json::Num::Float(1.5)),
            Self::String { values } => {
                let text = values.first().map_or("string", String::as_str);
                Val::utf8_str(text.as_bytes().to_vec())
            }
            Self::Array(items) => std::iter::once(items.example(nulls)).collect(),
            Self::Object(fields) => Val::obj(
                fields
                    .iter()
                    .map(|field| (field.key.clone(), field.shape.example(nulls)))
                    .collect(),
            ),
            Self::Nullable(_) if nulls => Val::Null,
            Self::Nullable(inner) => inner.example(nulls),
            Self::OneOf(shapes) => shapes.first().map_or(Val::Null, |s| s.example(nulls)),
        }
    }

    /// The shape as a JSON Schema (2020-12, as OpenAPI 3.1 has it).
    pub fn to_json_schema(&self) -> Value {
        match self {
            Self::Any => json!({}),
            Self::Bool => json!({"type": "boolean"}),
            Self::Integer => json!({"type": "integer"}),
            Self::Number => json!({"type": "number"}),
            Self::String { values } if values.is_empty() => json!({"type": "string"}),
            Self::String { values } => json!({"type": "string", "enum": values}),
            Self::Array(items) => json!({"type": "array", "items": items.to_json_schema()}),
            Self::Object(fields) => {
                let properties: serde_json::Map<String, Value> = fields
                    .iter()
                    .map(|field| (field.name.clone(), field.shape.to_json_schema()))
                    .collect();
                let required: Vec<&str> = fields
                    .iter()
                    .filter(|field| field.required)
                    .map(|field| field.name.as_str())
                    .collect();
                let mut schema = json!({"type": "object", "properties": properties});
                if !required.is_empty() {
                    schema["required"] = json!(required);
                }
                schema
            }
            Self::Nullable(inner) => json!({"oneOf": [inner.to_json_schema(), {"type": "null"}]}),
            Self::OneOf(shapes) => {
                json!({"oneOf": shapes.iter().map(Shape::to_json_schema).collect::<Vec<_>>()})
            }
        }
    }
}

fn is_integer(n: &jaq_json::Num) -> bool {
    match n {
        jaq_json::Num::Int(_) | jaq_json::Num::BigInt(_) => true,
        jaq_json::Num::Float(f) => f.fract() == 0.0,
        jaq_json::Num::Dec(text) => !text.contains(['.', 'e', 'E']),
    }
}

/// One GET operation: its path, parameters as `None`.
#[derive(Debug, Clone)]
struct Operation {
    segments: Vec<Option<String>>,
    reply: Shape,
}

/// The GET operations of one upstream's OpenAPI file.
#[derive(Debug, Clone, Default)]
pub struct Contract {
    operations: Vec<Operation>,
}

impl Contract {
    /// Reads an OpenAPI 3.0 file (YAML or JSON).
    pub fn parse(text: &str) -> Result<Self, String> {
        let documents =
            yaml_rust2::YamlLoader::load_from_str(text).map_err(|e| format!("is not YAML: {e}"))?;
        let document = documents.first().ok_or("is empty")?;
        let api: OpenAPI = serde_json::from_value(yaml_to_json(document))
            .map_err(|e| format!("is not an OpenAPI 3.0 document: {e}"))?;
        let schemas: BTreeMap<String, ReferenceOr<Schema>> = api
            .components
            .as_ref()
            .map(|c| c.schemas.clone().into_iter().collect())
            .unwrap_or_default();
        let mut operations = Vec::new();
        for (path, item) in &api.paths.paths {
            let ReferenceOr::Item(item) = item else {
                continue;
            };
            let Some(get) = &item.get else {
                continue;
            };
            let Some(ReferenceOr::Item(ok)) = get
                .responses
                .responses
                .get(&openapiv3::StatusCode::Code(200))
            else {
                continue;
            };
            let reply = ok
                .content
                .get("application/json")
                .and_then(|media| media.schema.as_ref())
                .map(|schema| shape_of(schema, &schemas, 0))
                .transpose()
                .map_err(|e| format!("GET {path}: {e}"))?
                .unwrap_or(Shape::Any);
            let segments = path
                .trim_start_matches('/')
                .split('/')
                .map(|s| (!(s.starts_with('{') && s.ends_with('}'))).then(|| s.to_owned()))
                .collect();
            operations.push(Operation { segments, reply });
        }
        Ok(Self { operations })
    }

    /// The reply shape of `GET` on a path whose segments are literal
    /// (`Some`) or filled per request (`None`); `None` when the contract
    /// has no such operation. A literal segment matches only itself.
    pub fn get_reply(&self, segments: &[Option<&str>]) -> Option<&Shape> {
        self.operations
            .iter()
            .filter(|op| op.segments.len() == segments.len())
            .find(|op| {
                op.segments
                    .iter()
                    .zip(segments)
                    .all(|(theirs, ours)| match (theirs, ours) {
                        (Some(a), Some(b)) => a == b,
                        (None, _) => true,
                        (Some(_), None) => false,
                    })
            })
            .map(|op| &op.reply)
    }
}

/// Refs deeper than this are a loop.
const MAX_DEPTH: usize = 32;

fn shape_of(
    schema: &ReferenceOr<Schema>,
    schemas: &BTreeMap<String, ReferenceOr<Schema>>,
    depth: usize,
) -> Result<Shape, String> {
    if depth > MAX_DEPTH {
        return Err("schemas refer to each other without end".to_owned());
    }
    let schema = match schema {
        ReferenceOr::Reference { reference } => {
            let name = reference
                .strip_prefix("#/components/schemas/")
                .ok_or_else(|| format!("`{reference}` is not a local schema"))?;
            let target = schemas
                .get(name)
                .ok_or_else(|| format!("`{reference}` names no schema"))?;
            return shape_of(target, schemas, depth + 1);
        }
        ReferenceOr::Item(schema) => schema,
    };
    let boxed = |s: &ReferenceOr<Box<Schema>>| match s {
        ReferenceOr::Reference { reference } => ReferenceOr::Reference {
            reference: reference.clone(),
        },
        ReferenceOr::Item(item) => ReferenceOr::Item((**item).clone()),
    };
    let shape = match &schema.schema_kind {
        SchemaKind::Type(Type::Boolean(_)) => Shape::Bool,
        SchemaKind::Type(Type::Integer(_)) => Shape::Integer,
        SchemaKind::Type(Type::Number(_)) => Shape::Number,
        SchemaKind::Type(Type::String(s)) => Shape::String {
            values: s.enumeration.iter().flatten().cloned().collect(),
        },
        SchemaKind::Type(Type::Array(a)) => Shape::Array(Box::new(match &a.items {
            Some(items) => shape_of(&boxed(items), schemas, depth + 1)?,
            None => Shape::Any,
        })),
        SchemaKind::Type(Type::Object(o)) => {
            let mut fields = o
                .properties
                .iter()
                .map(|(name, s)| {
                    let shape = shape_of(&boxed(s), schemas, depth + 1)?;
                    Ok(Field::new(name, shape, o.required.contains(name)))
                })
                .collect::<Result<Vec<_>, String>>()?;
            for name in &o.required {
                if !o.properties.contains_key(name) {
                    fields.push(Field::new(name, Shape::Any, true));
                }
            }
            Shape::Object(fields)
        }
        SchemaKind::OneOf { one_of: all } | SchemaKind::AnyOf { any_of: all } => Shape::OneOf(
            all.iter()
                .map(|s| shape_of(s, schemas, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        SchemaKind::AllOf { .. } | SchemaKind::Not { .. } | SchemaKind::Any(_) => Shape::Any,
    };
    Ok(if schema.schema_data.nullable {
        Shape::Nullable(Box::new(shape))
    } else {
        shape
    })
}

/// YAML as JSON: keys as strings, numbers as numbers.
fn yaml_to_json(yaml: &yaml_rust2::Yaml) -> Value {
    use yaml_rust2::Yaml;
    match yaml {
        Yaml::Real(text) => text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Array(items) => Value::Array(items.iter().map(yaml_to_json).collect()),
        Yaml::Hash(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let key = match k {
                        Yaml::String(s) => s.clone(),
                        Yaml::Integer(i) => i.to_string(),
                        Yaml::Real(r) => r.clone(),
                        Yaml::Boolean(b) => b.to_string(),
                        _ => String::new(),
                    };
                    (key, yaml_to_json(v))
                })
                .collect(),
        ),
        Yaml::Alias(_) | Yaml::Null | Yaml::BadValue => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTRACT: &str = r##"
openapi: 3.0.3
info: { title: accounts, version: "1" }
paths:
  /accounts/{id}:
    get:
      responses:
        "200": { description: one, content: { application/json: { schema: { $ref: "#/components/schemas/Account" } } } }
  /accounts/{id}/items:
    get:
      responses:
        "200":
          description: items
          content:
            application/json:
              schema:
                type: object
                required: [items]
                properties:
                  items: { type: array, items: { type: object, required: [n], properties: { n: { type: integer } } } }
                  next: { type: string, nullable: true }
components:
  schemas:
    Account:
      type: object
      required: [id]
      properties:
        id: { type: string }
"##;

    fn val(json: &str) -> Val {
        jaq_json::read::parse_single(json.as_bytes()).expect("json")
    }

    #[test]
    fn finds_get_operations_by_path_with_parameters() {
        let contract = Contract::parse(CONTRACT).expect("parses");
        assert!(contract.get_reply(&[Some("accounts"), None]).is_some());
        assert!(
            contract
                .get_reply(&[Some("accounts"), Some("a1")])
                .is_some()
        );
        assert!(
            contract
                .get_reply(&[Some("accounts"), None, Some("items")])
                .is_some()
        );
        assert!(contract.get_reply(&[Some("acounts"), None]).is_none());
        assert!(contract.get_reply(&[Some("accounts")]).is_none());
    }

    #[test]
    fn judges_structure_and_names_the_place() {
        let contract = Contract::parse(CONTRACT).expect("parses");
        let items = contract
            .get_reply(&[Some("accounts"), None, Some("items")])
            .expect("operation");
        assert!(
            items
                .check(&val(r#"{"items":[{"n":1}],"next":null}"#))
                .is_ok()
        );
        assert!(items.check(&val(r#"{"items":[],"extra":true}"#)).is_ok());
        let error = items
            .check(&val(r#"{"items":[{"n":1},{"n":"two"}]}"#))
            .expect_err("wrong type");
        assert_eq!(error.0, "items[1].n: expected an integer");
        let error = items
            .check(&val(r#"{"unexpected":[1]}"#))
            .expect_err("missing");
        assert_eq!(error.0, "the reply: expected a field `items`");
    }
}
