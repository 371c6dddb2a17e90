//! The BFF's own OpenAPI 3.1 document, served at `GET /openapi.json`: every
//! REST route, declared ones described from their files and the
//! upstreams' schemas, Rust ones from what their crate says of them, with
//! the contract's error bodies, auth and rate-limit headers.
//!
//! The document is built once at start and committed per BFF
//! (`openapi/<bff>.json`, with TypeScript generated from it), so a change
//! to a screen shows in review as a change to its type.

use std::sync::Arc;

use axum::http::HeaderValue;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::declared::{Declared, describe};
use crate::error::ErrorCode;

/// A Rust route's operation, as its crate describes it.
#[derive(Debug, Clone)]
pub struct RouteDoc {
    /// `get`, `post`, ... (lower case, as OpenAPI has it).
    pub method: &'static str,
    /// The path, with `{param}`s.
    pub path: &'static str,
    /// The OpenAPI Operation object; it may refer to this document's
    /// `components` (`Error`, `Degraded`, the `RateLimit-*` headers, the
    /// error responses by name: `BadRequest`, `Unauthorized`, ...).
    pub operation: Value,
    /// Schemas the operation refers to, by name, for `components.schemas`.
    pub schemas: Vec<(&'static str, Value)>,
}

/// The document, serialized once.
#[derive(Debug, Clone)]
pub struct ApiDocument {
    value: Arc<Value>,
    body: Bytes,
}

impl ApiDocument {
    /// The document of BFF `name` (version `version`): its `declared`
    /// endpoints, its Rust `routes`, and the operations endpoints.
    pub fn new(name: &str, version: &str, declared: &Declared, routes: &[RouteDoc]) -> Self {
        let mut paths = Map::new();
        let mut schemas = base_schemas();
        let mut add = |path: &str, method: &str, operation: Value| {
            let item = paths.entry(path.to_owned()).or_insert_with(|| json!({}));
            item[method] = operation;
        };
        for plan in declared.plans() {
            let described = describe(plan);
            schemas.insert(described.schema_name, described.reply);
            add(&described.path, "get", described.operation);
        }
        for route in routes {
            add(route.path, route.method, route.operation.clone());
            for (name, schema) in &route.schemas {
                schemas.insert((*name).to_owned(), schema.clone());
            }
        }
        for (path, operation) in operations_endpoints() {
            add(path, "get", operation);
        }
        let value = json!({
            "openapi": "3.1.0",
            "info": {
                "title": name,
                "version": version,
                "description": format!(
                    "The REST API of {name}, a Backend-for-Frontend. Every error is \
                     `{{\"error\": {{\"code\", \"message\", \"requestId\"}}}}` with a stable code; \
                     composed replies list failed optional parts in `degraded`."
                )
            },
            "paths": paths,
            "components": components(schemas),
        });
        let mut body = serde_json::to_vec_pretty(&value).unwrap_or_default();
        body.push(b'\n');
        Self {
            value: Arc::new(value),
            body: Bytes::from(body),
        }
    }

    /// The document as a JSON value.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// The document as committed: pretty JSON with a final newline.
    pub fn text(&self) -> &[u8] {
        &self.body
    }

    /// `GET /openapi.json`.
    pub fn response(&self) -> axum::response::Response {
        (
            [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            self.body.clone(),
        )
            .into_response()
    }
}

fn base_schemas() -> Map<String, Value> {
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    let mut schemas = Map::new();
    schemas.insert(
        "Error".to_owned(),
        json!({
            "type": "object",
            "required": ["error"],
            "properties": {"error": {
                "type": "object",
                "required": ["code", "message", "requestId"],
                "properties": {
                    "code": {"type": "string", "enum": codes},
                    "message": {"type": "string"},
                    "requestId": {"type": "string"}
                }
            }}
        }),
    );
    schemas.insert(
        "Degraded".to_owned(),
        json!({
            "type": "array",
            "description": "The optional parts that failed (or were served stale), by the name of their part.",
            "items": {
                "type": "object",
                "required": ["source", "code"],
                "properties": {
                    "source": {"type": "string"},
                    "code": {"type": "string", "enum": codes}
                }
            }
        }),
    );
    schemas
}

fn components(schemas: Map<String, Value>) -> Value {
    let error = |description: &str| {
        json!({
            "description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        })
    };
    let header = |description: &str, kind: &str| json!({"description": description, "schema": {"type": kind}});
    let mut too_many = error("Over a quota (`rate_limited`).");
    too_many["headers"] = json!({
        "Retry-After": {"$ref": "#/components/headers/Retry-After"},
        "RateLimit-Limit": {"$ref": "#/components/headers/RateLimit-Limit"},
        "RateLimit-Remaining": {"$ref": "#/components/headers/RateLimit-Remaining"},
        "RateLimit-Reset": {"$ref": "#/components/headers/RateLimit-Reset"}
    });
    json!({
        "schemas": schemas,
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"}
        },
        "parameters": {
            "IfNoneMatch": {
                "name": "If-None-Match", "in": "header", "required": false,
                "description": "An `ETag` the client holds: `304` when the reply is the same.",
                "schema": {"type": "string"}
            }
        },
        "headers": {
            "ETag": header("The body's tag (weak, `W/\"...\"`, when compressed).", "string"),
            "Server-Timing": header("Each upstream part's duration and outcome.", "string"),
            "RateLimit-Limit": header("The quota's burst.", "integer"),
            "RateLimit-Remaining": header("Requests left in the burst.", "integer"),
            "RateLimit-Reset": header("Seconds until the burst is whole again.", "integer"),
            "Retry-After": header("Seconds to wait.", "integer"),
            "Deprecation": header("RFC 9745: when the route was deprecated (`@<epoch seconds>`).", "string"),
            "Sunset": header("RFC 8594: when the route stops answering (an HTTP-date).", "string"),
            "Link": header("The successor route (`rel=\"successor-version\"`).", "string")
        },
        "responses": {
            "NotModified": {"description": "The client's `If-None-Match` names this reply."},
            "BadRequest": error("A malformed request or identifier (`bad_request`)."),
            "Unauthorized": error("No valid token (`unauthorized`)."),
            "Forbidden": error("The token lacks a scope (`forbidden`)."),
            "NotFound": error("No such object, or not the caller's (`not_found`)."),
            "Conflict": error("An idempotency key reused for another request (`conflict`)."),
            "UnsupportedMediaType": error("The body is not JSON (`unsupported_media_type`)."),
            "PayloadTooLarge": error("The body is over the limit (`payload_too_large`)."),
            "TooManyRequests": too_many,
            "Internal": error("A gateway fault (`internal`)."),
            "BadGateway": error("An upstream sent an unusable reply (`upstream_bad_response`)."),
            "ServiceUnavailable": error("A required upstream failed (`upstream_unavailable`), the BFF is draining (`not_ready`), or a route that fails closed cannot count its shared quota (`shared_state_unavailable`)."),
            "GatewayTimeout": error("A required upstream did not answer in time (`upstream_timeout`).")
        }
    })
}

/// The operations endpoints every BFF serves without a token.
fn operations_endpoints() -> Vec<(&'static str, Value)> {
    let ops = |summary: &str, content: Value| {
        json!({
            "summary": summary,
            "tags": ["operations"],
            "security": [],
            "responses": {"200": {"description": "OK", "content": content}}
        })
    };
    let json_any = json!({"application/json": {"schema": {"type": "object"}}});
    let mut readyz = ops(
        "Ready to serve: each upstream's circuit and calls in flight.",
        json_any.clone(),
    );
    readyz["responses"]["503"] = json!({"$ref": "#/components/responses/ServiceUnavailable"});
    vec![
        ("/healthz", ops("The process is alive.", json_any.clone())),
        ("/readyz", readyz),
        (
            "/metrics",
            ops(
                "Prometheus text format.",
                json!({"text/plain": {"schema": {"type": "string"}}}),
            ),
        ),
        (
            "/status",
            ops(
                "The live status page (`http.status_page`).",
                json!({"text/html": {"schema": {"type": "string"}}}),
            ),
        ),
        (
            "/status.json",
            ops(
                "The status page's document (`http.status_page`).",
                json_any.clone(),
            ),
        ),
        (
            "/openapi.json",
            ops("This document (`http.openapi`).", json_any),
        ),
    ]
}

/// `POST /graphql` and `GET /graphql`: GraphQL over HTTP.
pub fn graphql_routes(path: &'static str) -> Vec<RouteDoc> {
    let reply = json!({
        "application/graphql-response+json": {"schema": {"$ref": "#/components/schemas/GraphQlResponse"}},
        "application/json": {"schema": {"$ref": "#/components/schemas/GraphQlResponse"}}
    });
    let responses = json!({
        "200": {"description": "The result (partial data with `errors` when a nullable field failed).", "content": reply},
        "400": {"description": "A request error (`graphql-response+json`).", "content": reply},
        "401": {"$ref": "#/components/responses/Unauthorized"},
        "429": {"$ref": "#/components/responses/TooManyRequests"}
    });
    let schemas = vec![
        (
            "GraphQlRequest",
            json!({
                "type": "object",
                "properties": {
                    "query": {"type": "string"},
                    "operationName": {"type": ["string", "null"]},
                    "variables": {"type": ["object", "null"]},
                    "extensions": {"type": ["object", "null"]}
                }
            }),
        ),
        (
            "GraphQlResponse",
            json!({
                "type": "object",
                "properties": {
                    "data": {"type": ["object", "null"]},
                    "errors": {"type": "array", "items": {
                        "type": "object",
                        "required": ["message"],
                        "properties": {
                            "message": {"type": "string"},
                            "path": {"type": "array", "items": {"type": ["string", "integer"]}},
                            "extensions": {"type": "object", "properties": {"code": {"type": "string"}}}
                        }
                    }}
                }
            }),
        ),
    ];
    let security = json!([{"bearer": []}, {"apiKey": []}]);
    vec![
        RouteDoc {
            method: "post",
            path,
            operation: json!({
                "operationId": "graphqlPost",
                "summary": "GraphQL over HTTP; the schema is committed under schema/",
                "tags": ["graphql"],
                "security": security,
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/GraphQlRequest"}}}},
                "responses": responses
            }),
            schemas,
        },
        RouteDoc {
            method: "get",
            path,
            operation: json!({
                "operationId": "graphqlGet",
                "summary": "GraphQL queries over GET (no mutations)",
                "tags": ["graphql"],
                "security": security,
                "parameters": [
                    {"name": "query", "in": "query", "required": false, "schema": {"type": "string"}},
                    {"name": "operationName", "in": "query", "required": false, "schema": {"type": "string"}},
                    {"name": "variables", "in": "query", "required": false, "schema": {"type": "string"}},
                    {"name": "extensions", "in": "query", "required": false, "schema": {"type": "string"}}
                ],
                "responses": responses
            }),
            schemas: Vec::new(),
        },
    ]
}
