//! Limits checked before a document is executed: size and tokens before it
//! is even parsed, aliases and repeated mutations once it is. Depth,
//! complexity, directives and recursion are the schema's own validation.

use std::collections::HashSet;

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Field, OperationDefinition, OperationType, Selection,
    SelectionSet,
};

use super::config::GraphQlConfig;

/// Refuses documents over the byte or token limit, without parsing them.
pub fn check_size(document: &str, config: &GraphQlConfig) -> Result<(), String> {
    if document.len() > config.max_document_bytes.get() {
        return Err(format!(
            "the document is larger than {} bytes",
            config.max_document_bytes
        ));
    }
    let max_tokens = config.max_tokens.get();
    if count_tokens(document, max_tokens + 1) > max_tokens {
        return Err(format!(
            "the document has more than {} tokens",
            config.max_tokens
        ));
    }
    Ok(())
}

/// Counts GraphQL lexical tokens, stopping once `stop_at` is reached.
/// Punctuators, names, numbers and strings count one each; white space,
/// commas and comments do not.
pub fn count_tokens(source: &str, stop_at: usize) -> usize {
    let bytes = source.as_bytes();
    let mut i = 0;
    let mut count = 0;
    while i < bytes.len() && count < stop_at {
        match bytes[i] {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => i += 1,
            0xEF if bytes[i..].starts_with("\u{feff}".as_bytes()) => i += 3,
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' => {
                count += 1;
                i = skip_string(bytes, i);
            }
            b'.' if bytes[i..].starts_with(b"...") => {
                count += 1;
                i += 3;
            }
            b if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' => {
                count += 1;
                i += 1;
                while i < bytes.len()
                    && matches!(bytes[i], b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'+' | b'-')
                {
                    i += 1;
                }
            }
            _ => {
                count += 1;
                i += 1;
            }
        }
    }
    count
}

/// Index just past the string (or block string) starting at `start`.
fn skip_string(bytes: &[u8], start: usize) -> usize {
    if bytes[start..].starts_with(b"\"\"\"") {
        let mut i = start + 3;
        while i < bytes.len() {
            if bytes[i..].starts_with(b"\\\"\"\"") {
                i += 4;
            } else if bytes[i..].starts_with(b"\"\"\"") {
                return i + 3;
            } else {
                i += 1;
            }
        }
        return bytes.len();
    }
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' | b'\n' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// Refuses documents with too many aliases, `__schema` where introspection is off,
/// or a mutation that names the same mutation field twice (one side effect
/// per field per request).
pub fn check_document(
    document: &ExecutableDocument,
    config: &GraphQlConfig,
    introspection: bool,
) -> Result<(), String> {
    let mut aliases = 0;
    let mut introspects = false;
    for_each_field(document, |field| {
        aliases += usize::from(field.alias.is_some());
        introspects |= field.name.node.as_str() == "__schema";
    });
    // A schema dump is refused outright; `__type` lookups are left to the
    // schema, which answers null when introspection is off.
    if introspects && !introspection {
        return Err("introspection is disabled".to_owned());
    }
    if aliases > config.max_aliases {
        return Err(format!(
            "the document has {aliases} aliases; at most {} are allowed",
            config.max_aliases
        ));
    }
    for (ty, selection_set) in operations(document) {
        if ty == OperationType::Mutation
            && let Some(name) = repeated_root_field(document, selection_set)
        {
            return Err(format!(
                "the mutation `{name}` appears more than once; send one per request"
            ));
        }
    }
    Ok(())
}

fn operations(document: &ExecutableDocument) -> Vec<(OperationType, &SelectionSet)> {
    match &document.operations {
        DocumentOperations::Single(op) => vec![(op.node.ty, &op.node.selection_set.node)],
        DocumentOperations::Multiple(ops) => ops
            .values()
            .map(|op| (op.node.ty, &op.node.selection_set.node))
            .collect(),
    }
}

/// The type of the operation a request selects, if it names one that exists.
pub fn selected_operation_type(
    document: &ExecutableDocument,
    operation_name: Option<&str>,
) -> Option<OperationType> {
    selected_operation(document, operation_name).map(|op| op.ty)
}

/// Whether the selected operation is a query that asks only for the
/// schema (`__schema`, `__type`, `__typename` at its root): such a query
/// runs no resolver and calls no upstream, so in development it is not
/// held to `graphql.max_depth` (graphql-js's standard introspection query
/// nests deeper than any sane data query).
pub fn is_introspection_only(document: &ExecutableDocument, operation_name: Option<&str>) -> bool {
    let Some(operation) = selected_operation(document, operation_name) else {
        return false;
    };
    let root = &operation.selection_set.node.items;
    operation.ty == OperationType::Query
        && !root.is_empty()
        && root.iter().all(|selection| match &selection.node {
            Selection::Field(field) => matches!(
                field.node.name.node.as_str(),
                "__schema" | "__type" | "__typename"
            ),
            Selection::FragmentSpread(_) | Selection::InlineFragment(_) => false,
        })
}

fn selected_operation<'a>(
    document: &'a ExecutableDocument,
    operation_name: Option<&str>,
) -> Option<&'a OperationDefinition> {
    match (&document.operations, operation_name) {
        (DocumentOperations::Single(op), _) => Some(&op.node),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| &op.node),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().map(|op| &op.node)
        }
        (DocumentOperations::Multiple(_), None) => None,
    }
}

/// The spec's variable coercion, the part async-graphql leaves to the
/// resolvers: a non-null variable without a default must be given, and not
/// as `null`. (Values of the wrong type are refused by validation.) Run
/// before execution, so a missing variable is a request error, not a
/// field error.
pub fn check_variables(
    document: &ExecutableDocument,
    operation_name: Option<&str>,
    variables: Option<&serde_json::Map<String, serde_json::Value>>,
) -> Result<(), String> {
    let Some(operation) = selected_operation(document, operation_name) else {
        return Ok(());
    };
    for definition in &operation.variable_definitions {
        let definition = &definition.node;
        if definition.var_type.node.nullable || definition.default_value.is_some() {
            continue;
        }
        let name = definition.name.node.as_str();
        let given = variables.and_then(|v| v.get(name));
        if given.is_none_or(serde_json::Value::is_null) {
            return Err(format!(
                "variable `${name}` of type `{}` must be given a value",
                definition.var_type.node
            ));
        }
    }
    Ok(())
}

/// Visits every field of every operation and fragment definition once,
/// with an explicit stack so a deeply nested document cannot exhaust ours.
fn for_each_field(document: &ExecutableDocument, mut visit: impl FnMut(&Field)) {
    let mut stack: Vec<&SelectionSet> = operations(document)
        .into_iter()
        .map(|(_, set)| set)
        .collect();
    stack.extend(
        document
            .fragments
            .values()
            .map(|f| &f.node.selection_set.node),
    );
    while let Some(set) = stack.pop() {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    visit(&field.node);
                    stack.push(&field.node.selection_set.node);
                }
                Selection::InlineFragment(fragment) => {
                    stack.push(&fragment.node.selection_set.node)
                }
                Selection::FragmentSpread(_) => {}
            }
        }
    }
}

/// A root field name that occurs twice in a mutation, looking through
/// fragments at the root.
fn repeated_root_field(document: &ExecutableDocument, root: &SelectionSet) -> Option<String> {
    let mut seen = HashSet::new();
    let mut visited_fragments = HashSet::new();
    let mut stack = vec![root];
    while let Some(set) = stack.pop() {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    let name = field.node.name.node.as_str();
                    if name != "__typename" && !seen.insert(name) {
                        return Some(name.to_owned());
                    }
                }
                Selection::InlineFragment(fragment) => {
                    stack.push(&fragment.node.selection_set.node)
                }
                Selection::FragmentSpread(spread) => {
                    let name = &spread.node.fragment_name.node;
                    if visited_fragments.insert(name.clone())
                        && let Some(fragment) = document.fragments.get(name)
                    {
                        stack.push(&fragment.node.selection_set.node);
                    }
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_query;

    use super::*;

    #[test]
    fn tokens_are_counted_like_the_lexer_sees_them() {
        assert_eq!(count_tokens("{ me { name } }", 100), 6);
        assert_eq!(
            count_tokens("query Q($a: Int = -1.5e3) { f(a: $a) }", 100),
            19,
            "`$a` is two tokens: the `$` punctuator and a name"
        );
        assert_eq!(
            count_tokens(r#"{ f(s: "a, b { c }") ...F } # { ignored }"#, 100),
            10,
            "a string and `...` count once each; the comment not at all"
        );
        assert_eq!(count_tokens(r#"{ f(s: """x "" y""") }"#, 100), 8);
        assert_eq!(count_tokens(&"{ a }".repeat(1000), 10), 10);
    }

    #[test]
    fn aliases_are_counted_in_operations_and_fragments() {
        let doc = parse_query("{ a: me { b: name } ...F } fragment F on Query { c: me { id } }")
            .expect("parses");
        let mut aliases = 0;
        for_each_field(&doc, |f| aliases += usize::from(f.alias.is_some()));
        assert_eq!(aliases, 3);
        let config = GraphQlConfig {
            max_aliases: 2,
            ..GraphQlConfig::default()
        };
        assert!(check_document(&doc, &config, true).is_err());
    }

    #[test]
    fn a_mutation_field_repeated_through_aliases_or_fragments_is_found() {
        let twice =
            parse_query("mutation { a: createPost(x: 1) { id } b: createPost(x: 2) { id } }")
                .expect("parses");
        let ops = operations(&twice);
        assert_eq!(
            repeated_root_field(&twice, ops[0].1),
            Some("createPost".to_owned())
        );
        let via_fragment =
            parse_query("mutation { createPost(x: 1) { id } ...M } fragment M on Mutation { createPost(x: 2) { id } }")
                .expect("parses");
        let ops = operations(&via_fragment);
        assert_eq!(
            repeated_root_field(&via_fragment, ops[0].1),
            Some("createPost".to_owned())
        );
        let distinct =
            parse_query("mutation { createPost(x: 1) { id } archivePost(id: 1) { id } }")
                .expect("parses");
        let ops = operations(&distinct);
        assert_eq!(repeated_root_field(&distinct, ops[0].1), None);
    }
}
