//! What a declared endpoint's reply looks like, for its OpenAPI
//! description: derived from its shape and the upstreams' schemas.
//!
//! The shape is run on examples built from each call's reply schema (every
//! documented field present), which gives the reply's structure; then once
//! with every nullable upstream field `null` and once per optional call
//! failed, and every place that came out `null` in one of those runs is
//! nullable. A place no example reaches (a call without a contract, an
//! empty list) is described as any value.

use std::collections::BTreeSet;

use jaq_json::{Map, Val};
use serde_json::{Value, json};

use super::execute::RequestValues;
use super::expr::{as_text, text};
use super::plan::{DeclaredEndpoint, IDS_VAR};

/// A declared endpoint as an OpenAPI operation: `GET` on its route, its
/// reply schema under `components.schemas.<schema_name>`.
#[derive(Debug)]
pub struct Described {
    pub path: String,
    pub schema_name: String,
    pub reply: Value,
    pub operation: Value,
}

/// Describes `endpoint`: parameters, security, the reply (with
/// `degraded`), its headers, and every error it may answer.
pub fn describe(endpoint: &DeclaredEndpoint) -> Described {
    let stem = endpoint.file.trim_end_matches(".toml");
    let words: Vec<String> = stem
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect();
    let pascal = words.concat();
    let schema_name = format!("{pascal}Reply");
    let mut reply = reply_schema(endpoint);
    if let Some(properties) = reply["properties"].as_object_mut() {
        properties.insert(
            "degraded".to_owned(),
            json!({"$ref": "#/components/schemas/Degraded"}),
        );
    }
    if let Some(required) = reply["required"].as_array_mut() {
        required.push(json!("degraded"));
    }
    let mut parameters: Vec<Value> = path_params(&endpoint.spec.route)
        .into_iter()
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    parameters.extend(endpoint.query_params.iter().map(
        |name| json!({"name": name, "in": "query", "required": false, "schema": {"type": "string"}}),
    ));
    parameters.extend(endpoint.headers.iter().map(
        |name| json!({"name": name.as_str(), "in": "header", "required": false, "schema": {"type": "string"}}),
    ));
    parameters.push(json!({"$ref": "#/components/parameters/IfNoneMatch"}));
    let mut headers = json!({
        "ETag": {"$ref": "#/components/headers/ETag"},
        "Server-Timing": {"$ref": "#/components/headers/Server-Timing"},
        "RateLimit-Limit": {"$ref": "#/components/headers/RateLimit-Limit"},
        "RateLimit-Remaining": {"$ref": "#/components/headers/RateLimit-Remaining"},
        "RateLimit-Reset": {"$ref": "#/components/headers/RateLimit-Reset"},
    });
    if endpoint.deprecation.is_some() {
        headers["Deprecation"] = json!({"$ref": "#/components/headers/Deprecation"});
        headers["Sunset"] = json!({"$ref": "#/components/headers/Sunset"});
        headers["Link"] = json!({"$ref": "#/components/headers/Link"});
    }
    let mut operation = json!({
        "operationId": lower_first(&pascal),
        "summary": endpoint.spec.summary.clone().unwrap_or_else(|| format!("GET {}", endpoint.route)),
        "description": format!("Declared in `endpoints/{}`.", endpoint.file),
        "security": [{"bearer": []}, {"apiKey": []}],
        "parameters": parameters,
        "responses": {
            "200": {
                "description": "The composed reply; a failed optional part is `null` and listed in `degraded`.",
                "headers": headers,
                "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema_name}")}}}
            },
            "304": {"$ref": "#/components/responses/NotModified"},
            "400": {"$ref": "#/components/responses/BadRequest"},
            "401": {"$ref": "#/components/responses/Unauthorized"},
            "404": {"$ref": "#/components/responses/NotFound"},
            "429": {"$ref": "#/components/responses/TooManyRequests"},
            "500": {"$ref": "#/components/responses/Internal"},
            "502": {"$ref": "#/components/responses/BadGateway"},
            "503": {"$ref": "#/components/responses/ServiceUnavailable"},
            "504": {"$ref": "#/components/responses/GatewayTimeout"}
        }
    });
    if !endpoint.scopes.is_empty() {
        operation["responses"]["403"] = json!({"$ref": "#/components/responses/Forbidden"});
        operation["x-scopes"] = json!(endpoint.scopes);
    }
    if endpoint.deprecation.is_some() {
        operation["deprecated"] = json!(true);
    }
    Described {
        path: endpoint.route.clone(),
        schema_name,
        reply,
        operation,
    }
}

fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_ascii_lowercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

/// The JSON Schema of the object the shape makes (without `degraded`).
pub fn reply_schema(endpoint: &DeclaredEndpoint) -> Value {
    let request = example_request(endpoint);
    let Some(full) = run_shape(
        endpoint,
        &request,
        &calls_example(endpoint, &request, false, None),
    ) else {
        return json!({"type": "object"});
    };
    let mut variants = Vec::new();
    let mut runs = vec![calls_example(endpoint, &request, true, None)];
    for (i, call) in endpoint.calls.iter().enumerate() {
        if !call.required {
            runs.push(calls_example(endpoint, &request, false, Some(i)));
        }
    }
    for values in &runs {
        // A run whose shape fails describes nothing (it would be a 500).
        if let Some(value) = run_shape(endpoint, &request, values) {
            variants.push(value);
        }
    }
    let variants: Vec<Option<&Val>> = variants.iter().map(Some).collect();
    schema_of(&full, &variants)
}

/// `$auth`, `$path`, `$query` and `$headers` as a request could fill them.
fn example_request(endpoint: &DeclaredEndpoint) -> RequestValues {
    let strings = |names: &mut dyn Iterator<Item = &str>| -> Val {
        Val::obj(names.map(|name| (text(name), text("string"))).collect())
    };
    let mut auth = Map::default();
    auth.insert(text("sub"), text("string"));
    auth.insert(text("scopes"), std::iter::once(text("string")).collect());
    RequestValues {
        auth: Val::obj(auth),
        path: strings(&mut path_params(&endpoint.spec.route).into_iter()),
        query: strings(&mut endpoint.query_params.iter().map(String::as_str)),
        headers: strings(&mut endpoint.headers.iter().map(|h| h.as_str())),
    }
}

/// The `{name}` parameters of a route.
pub fn path_params(route: &str) -> Vec<&str> {
    route
        .split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|s| s.trim_start_matches('*'))
        .collect()
}

/// Each call's example value; `failed` is `null`. Batched calls are
/// filled once the calls their ids come from are.
fn calls_example(
    endpoint: &DeclaredEndpoint,
    request: &RequestValues,
    nulls: bool,
    failed: Option<usize>,
) -> Vec<Val> {
    let calls = &endpoint.calls;
    let mut values: Vec<Option<Val>> = calls
        .iter()
        .map(|call| match (&call.batch, &call.reply_shape) {
            (Some(_), _) => None,
            (None, Some(shape)) => Some(shape.example(nulls)),
            (None, None) => Some(Val::Null),
        })
        .collect();
    if let Some(i) = failed {
        values[i] = Some(Val::Null);
    }
    // Batches may read batches: settle them in as many rounds as there are.
    for _ in 0..calls.len() {
        for (i, call) in calls.iter().enumerate() {
            let (Some(batch), None) = (&call.batch, &values[i]) else {
                continue;
            };
            if call.deps.iter().any(|&d| values[d].is_none()) {
                continue;
            }
            let lookup = |name: &str| {
                request.get(name).or_else(|| {
                    calls
                        .iter()
                        .position(|c| c.name.as_str() == name)
                        .and_then(|d| values[d].as_ref())
                })
            };
            let ids: BTreeSet<String> = batch
                .ids
                .run(Val::Null, lookup)
                .unwrap_or_default()
                .iter()
                .flat_map(|v| match v {
                    Val::Arr(items) => items.iter().filter_map(as_text).collect(),
                    other => as_text(other).into_iter().collect::<Vec<_>>(),
                })
                .collect();
            let reply = call
                .reply_shape
                .as_ref()
                .map_or(Val::Null, |s| s.example(nulls));
            let item = batch
                .items
                .run(reply, |name| (name == IDS_VAR).then_some(&Val::Null))
                .ok()
                .and_then(|items| items.into_iter().next())
                .map(|items| match items {
                    Val::Arr(list) => list.first().cloned().unwrap_or(Val::Null),
                    other => other,
                })
                .unwrap_or(Val::Null);
            values[i] = Some(Val::obj(
                ids.into_iter()
                    .map(|id| (text(&id), item.clone()))
                    .collect(),
            ));
        }
    }
    values.into_iter().map(Option::unwrap_or_default).collect()
}

fn run_shape(endpoint: &DeclaredEndpoint, request: &RequestValues, values: &[Val]) -> Option<Val> {
    endpoint
        .reply
        .run_one(Val::Null, |name| {
            request.get(name).or_else(|| {
                endpoint
                    .calls
                    .iter()
                    .position(|c| c.name.as_str() == name)
                    .map(|i| &values[i])
            })
        })
        .ok()
}

/// The schema of `full`, nullable wherever a variant has `null` (or
/// nothing) in its place.
fn schema_of(full: &Val, variants: &[Option<&Val>]) -> Value {
    let nullable = variants.iter().any(|v| matches!(v, None | Some(Val::Null)));
    let mut schema = match full {
        Val::Null => return json!({}),
        Val::Bool(_) => json!({"type": "boolean"}),
        Val::Num(jaq_json::Num::Int(_) | jaq_json::Num::BigInt(_)) => json!({"type": "integer"}),
        Val::Num(_) => json!({"type": "number"}),
        Val::TStr(_) | Val::BStr(_) => json!({"type": "string"}),
        Val::Arr(items) => {
            let items = match items.first() {
                Some(first) => {
                    let inner: Vec<Option<&Val>> = variants
                        .iter()
                        .map(|v| match v {
                            Some(Val::Arr(list)) => list.first(),
                            _ => Some(first),
                        })
                        .collect();
                    schema_of(first, &inner)
                }
                None => json!({}),
            };
            json!({"type": "array", "items": items})
        }
        Val::Obj(fields) => {
            let mut properties = serde_json::Map::new();
            let mut required = Vec::new();
            for (key, value) in fields.iter() {
                let Some(name) = as_text(key) else { continue };
                let inner: Vec<Option<&Val>> = variants
                    .iter()
                    .map(|v| match v {
                        Some(Val::Obj(other)) => other.get(key),
                        _ => Some(value),
                    })
                    .collect();
                properties.insert(name.clone(), schema_of(value, &inner));
                required.push(name);
            }
            json!({"type": "object", "properties": properties, "required": required})
        }
    };
    if nullable && let Some(kind) = schema.get("type").cloned() {
        schema["type"] = json!([kind, "null"]);
    }
    schema
}

#[cfg(test)]
mod tests {
    use super::*;

    fn val(json: &str) -> Val {
        jaq_json::read::parse_single(json.as_bytes()).expect("json")
    }

    #[test]
    fn a_place_null_in_a_variant_is_nullable() {
        let full = val(r#"{"a":"x","b":[{"n":1}],"c":{"d":true}}"#);
        let failed = val(r#"{"a":"x","b":[{"n":null}],"c":null}"#);
        let schema = schema_of(&full, &[Some(&failed)]);
        assert_eq!(schema["properties"]["a"], json!({"type": "string"}));
        assert_eq!(
            schema["properties"]["b"]["items"]["properties"]["n"],
            json!({"type": ["integer", "null"]})
        );
        assert_eq!(schema["properties"]["c"]["type"], json!(["object", "null"]));
        assert_eq!(schema["required"], json!(["a", "b", "c"]));
    }
}
