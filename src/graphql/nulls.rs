//! Null propagation as the GraphQL spec defines it ("Handling Field
//! Errors"), restored after execution.
//!
//! async-graphql 7 leaves a failed field out of its parent object instead
//! of setting it to null and, for a non-null field, nulling the nearest
//! nullable ancestor. A client generated from the schema would then find a
//! non-null field missing. [`Nullability::apply`] walks each error's path
//! through the executed document and the schema's types and writes the
//! null where the spec puts it (up to `data` itself).

use std::collections::HashMap;

use async_graphql::parser::types::{
    BaseType, DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
    TypeKind, TypeSystemDefinition,
};
use async_graphql::{Name, PathSegment, ServerError, Value};

/// One field's output type, as far as nulls are concerned.
#[derive(Debug, Clone)]
struct Shape {
    /// The named type inside any list.
    base: String,
    nullable: bool,
    /// For list fields: whether the items may be null.
    items_nullable: Option<bool>,
}

/// Field nullability of every object type of one schema. Built once.
#[derive(Debug, Default)]
pub struct Nullability {
    fields: HashMap<(String, String), Shape>,
    query: String,
    mutation: String,
}

impl Nullability {
    /// Reads the schema's SDL; a schema that does not parse (it always
    /// does: async-graphql wrote it) yields an empty map, which leaves
    /// responses as they are.
    pub fn from_sdl(sdl: &str) -> Self {
        let mut this = Self {
            query: "Query".to_owned(),
            mutation: "Mutation".to_owned(),
            ..Self::default()
        };
        let Ok(document) = async_graphql::parser::parse_schema(sdl) else {
            return this;
        };
        for definition in document.definitions {
            match definition {
                TypeSystemDefinition::Type(ty) => {
                    let ty = ty.node;
                    if let TypeKind::Object(object) = ty.kind {
                        for field in object.fields {
                            let field = field.node;
                            this.fields.insert(
                                (ty.name.node.to_string(), field.name.node.to_string()),
                                shape(&field.ty.node),
                            );
                        }
                    }
                }
                TypeSystemDefinition::Schema(schema) => {
                    if let Some(query) = &schema.node.query {
                        this.query = query.node.to_string();
                    }
                    if let Some(mutation) = &schema.node.mutation {
                        this.mutation = mutation.node.to_string();
                    }
                }
                TypeSystemDefinition::Directive(_) => {}
            }
        }
        this
    }

    /// Puts each field error's null where the spec says it goes.
    pub fn apply(
        &self,
        document: &ExecutableDocument,
        operation_name: Option<&str>,
        data: &mut Value,
        errors: &[ServerError],
    ) {
        let Some((ty, root)) = operation(document, operation_name) else {
            return;
        };
        let root_type = match ty {
            OperationType::Mutation => &self.mutation,
            _ => &self.query,
        };
        let mut cuts = Vec::new();
        for error in errors.iter().filter(|e| !e.path.is_empty()) {
            let Some(positions) = self.nullable_positions(document, root_type, root, &error.path)
            else {
                continue;
            };
            match positions.iter().rposition(|nullable| *nullable) {
                Some(cut) => cuts.push(&error.path[..=cut]),
                // A non-null field's null reaches `data` itself.
                None => {
                    *data = Value::Null;
                    return;
                }
            }
        }
        // When every root field failed, async-graphql leaves `data` null
        // even where each of them is nullable: the spec has an object there.
        if !cuts.is_empty() && *data == Value::Null {
            *data = Value::Object(Default::default());
        }
        for cut in cuts {
            set_null(data, cut);
        }
    }

    /// For each segment of `path`, whether the value there may be null.
    fn nullable_positions(
        &self,
        document: &ExecutableDocument,
        root_type: &str,
        root: &SelectionSet,
        path: &[PathSegment],
    ) -> Option<Vec<bool>> {
        let mut ty = root_type.to_owned();
        let mut sets = vec![root];
        let mut items_nullable = None;
        let mut positions = Vec::with_capacity(path.len());
        for segment in path {
            match segment {
                PathSegment::Field(key) => {
                    let (name, subsets) = find_field(document, &sets, key)?;
                    let shape = self.fields.get(&(ty.clone(), name))?;
                    positions.push(shape.nullable);
                    items_nullable = shape.items_nullable;
                    ty.clone_from(&shape.base);
                    sets = subsets;
                }
                PathSegment::Index(_) => positions.push(items_nullable?),
            }
        }
        Some(positions)
    }
}

fn shape(ty: &async_graphql::parser::types::Type) -> Shape {
    match &ty.base {
        BaseType::Named(name) => Shape {
            base: name.to_string(),
            nullable: ty.nullable,
            items_nullable: None,
        },
        BaseType::List(inner) => Shape {
            base: shape(inner).base,
            nullable: ty.nullable,
            items_nullable: Some(inner.nullable),
        },
    }
}

fn operation<'a>(
    document: &'a ExecutableDocument,
    name: Option<&str>,
) -> Option<(OperationType, &'a SelectionSet)> {
    let op = match (&document.operations, name) {
        (DocumentOperations::Single(op), _) => op,
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name)?,
        (DocumentOperations::Multiple(ops), None) => ops.values().next()?,
    };
    Some((op.node.ty, &op.node.selection_set.node))
}

/// The field answering to response `key` in `sets` (looking through
/// fragments), and every selection set merged under it.
fn find_field<'a>(
    document: &'a ExecutableDocument,
    sets: &[&'a SelectionSet],
    key: &str,
) -> Option<(String, Vec<&'a SelectionSet>)> {
    let mut stack: Vec<&SelectionSet> = sets.to_vec();
    let mut name = None;
    let mut subsets = Vec::new();
    let mut visited = 0;
    while let Some(set) = stack.pop() {
        visited += 1;
        if visited > 10_000 {
            break;
        }
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    let response_key = field.alias.as_ref().unwrap_or(&field.name).node.as_str();
                    if response_key == key {
                        name.get_or_insert_with(|| field.name.node.to_string());
                        subsets.push(&field.selection_set.node);
                    }
                }
                Selection::InlineFragment(fragment) => {
                    stack.push(&fragment.node.selection_set.node)
                }
                Selection::FragmentSpread(spread) => {
                    if let Some(fragment) = document.fragments.get(&spread.node.fragment_name.node)
                    {
                        stack.push(&fragment.node.selection_set.node);
                    }
                }
            }
        }
    }
    name.map(|name| (name, subsets))
}

/// Sets the value at `path` to null, if its parent is still there.
fn set_null(data: &mut Value, path: &[PathSegment]) {
    let Some((last, parents)) = path.split_last() else {
        *data = Value::Null;
        return;
    };
    let mut current = data;
    for segment in parents {
        current = match (segment, current) {
            (PathSegment::Field(key), Value::Object(map)) => match map.get_mut(key.as_str()) {
                Some(value) => value,
                None => return,
            },
            (PathSegment::Index(i), Value::List(items)) => match items.get_mut(*i) {
                Some(value) => value,
                None => return,
            },
            _ => return,
        };
    }
    match (last, current) {
        (PathSegment::Field(key), Value::Object(map)) => {
            map.insert(Name::new(key), Value::Null);
        }
        (PathSegment::Index(i), Value::List(items)) => {
            if let Some(item) = items.get_mut(*i) {
                *item = Value::Null;
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_query;

    use super::*;

    const SDL: &str = "type Query { me: User! post(id: ID!): Post }
        type User { name: String! posts: Conn! friend: User }
        type Conn { nodes: [Post!]! }
        type Post { id: ID! author: User! note: String }";

    fn run(query: &str, data: serde_json::Value, path: serde_json::Value) -> serde_json::Value {
        let nulls = Nullability::from_sdl(SDL);
        let document = parse_query(query).expect("query parses");
        let mut data = Value::from_json(data).expect("value");
        let mut error = ServerError::new("boom", None);
        error.path = serde_json::from_value(path).expect("path");
        nulls.apply(&document, None, &mut data, &[error]);
        data.into_json().expect("json")
    }

    #[test]
    fn a_failed_nullable_field_becomes_null() {
        let out = run(
            "{ me { name } post(id: 1) { id } }",
            serde_json::json!({"me": {"name": "Ada"}}),
            serde_json::json!(["post"]),
        );
        assert_eq!(
            out,
            serde_json::json!({"me": {"name": "Ada"}, "post": null})
        );
    }

    #[test]
    fn a_failed_non_null_field_nulls_the_nearest_nullable_ancestor() {
        let out = run(
            "{ me { name friend { name posts { nodes { id } } } } }",
            serde_json::json!({"me": {"name": "Ada", "friend": {"name": "Grace"}}}),
            serde_json::json!(["me", "friend", "posts"]),
        );
        assert_eq!(
            out,
            serde_json::json!({"me": {"name": "Ada", "friend": null}})
        );
    }

    #[test]
    fn a_failed_nullable_root_field_alone_nulls_only_itself() {
        let out = run(
            "{ post(id: 1) { id } }",
            serde_json::Value::Null,
            serde_json::json!(["post"]),
        );
        assert_eq!(out, serde_json::json!({"post": null}));
    }

    #[test]
    fn without_a_nullable_ancestor_data_is_null() {
        let out = run(
            "{ me { name o: posts { nodes { author { name } } } } }",
            serde_json::json!({"me": {"name": "Ada", "o": {"nodes": [{}]}}}),
            serde_json::json!(["me", "o", "nodes", 0, "author"]),
        );
        assert_eq!(out, serde_json::Value::Null);
    }
}
