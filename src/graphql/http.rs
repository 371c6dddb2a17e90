//! GraphQL over HTTP: `POST /graphql` with JSON, `GET /graphql` for
//! queries, media types and status codes as the GraphQL-over-HTTP spec says.
//!
//! Order of work for one request, cheapest refusal first: the HTTP form
//! (content type, JSON, parameter types, no batches), the document (trusted
//! or persisted), its size and tokens, parsing, aliases and repeated
//! mutations, mutation-over-GET, then the schema's own validation (depth,
//! complexity, directives), and only then any resolver or upstream call.

use std::sync::Arc;

use async_graphql::parser::types::OperationType;
use async_graphql::{ObjectType, ServerError, Variables};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::header::{ACCEPT, ALLOW, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use serde::Serialize;
use serde_json::{Map, Value};

use super::documents::{DocumentError, DocumentRequest, Documents, normalize_hash};
use super::errors::{ensure_codes, metric_label, persisted_query_not_found, request_error};
use super::limits;
use super::nulls::Nullability;
use super::parsed::ParsedDocuments;
use super::schema::{BffSchema, introspection_schema};
use crate::auth::Authenticated;
use crate::config::{Config, Profile};
use crate::error::{ApiError, ErrorCode, FinalBody};
use crate::server::AppState;
use crate::upstream::{CallTiming, Caller};

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json; charset=utf-8";
const JSON: &str = "application/json; charset=utf-8";

/// A BFF's GraphQL endpoint: its schema, the documents it accepts, its
/// limits and its nullability map. Built once at start.
pub struct GraphQlEndpoint<Q, M> {
    schema: BffSchema<Q, M>,
    documents: Documents,
    /// Documents already parsed and checked against the limits.
    parsed: ParsedDocuments,
    config: crate::config::GraphQlConfig,
    nullability: Nullability,
    /// Off in production, where `__schema` and `__type` are refused.
    introspection: bool,
    /// In development: runs introspection-only queries without the data
    /// queries' depth and complexity limits (see [`introspection_schema`]).
    introspection_schema: Option<BffSchema<Q, M>>,
    /// What each request gets in its data besides the state, the caller
    /// and its credentials (the domain's per-request loaders).
    request_data: Option<RequestData>,
}

/// Adds a request's own data (loaders built for its caller) before it runs.
pub type RequestData =
    Arc<dyn Fn(async_graphql::Request, &Caller) -> async_graphql::Request + Send + Sync>;

impl<Q, M> std::fmt::Debug for GraphQlEndpoint<Q, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphQlEndpoint")
            .field("documents", &self.documents)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<Q, M> GraphQlEndpoint<Q, M>
where
    Q: ObjectType + Default + 'static,
    M: ObjectType + Default + 'static,
{
    /// `trusted` are the BFF's own operations (see [`Documents`]).
    pub fn new(schema: BffSchema<Q, M>, trusted: &[&str], config: &Config) -> Self {
        let introspection = config.profile == Profile::Development;
        Self {
            nullability: Nullability::from_sdl(&schema.sdl()),
            schema,
            documents: Documents::new(trusted, &config.graphql, config.profile),
            parsed: ParsedDocuments::default(),
            config: config.graphql.clone(),
            introspection,
            introspection_schema: introspection.then(|| introspection_schema(&config.graphql)),
            request_data: None,
        }
    }

    /// Gives every request data of its own, built for its caller: the
    /// place for per-request DataLoaders, so nothing loaded for one caller
    /// reaches another.
    pub fn with_request_data(
        mut self,
        add: impl Fn(async_graphql::Request, &Caller) -> async_graphql::Request + Send + Sync + 'static,
    ) -> Self {
        self.request_data = Some(Arc::new(add));
        self
    }

    /// The `GET` and `POST` handlers for the BFF's `/graphql` route.
    pub fn into_route(self) -> MethodRouter<AppState> {
        let endpoint = Arc::new(self);
        let for_post = endpoint.clone();
        get(
            move |State(state): State<AppState>,
                  auth: Authenticated,
                  caller: Caller,
                  headers: HeaderMap,
                  RawQuery(raw): RawQuery| {
                let endpoint = endpoint.clone();
                async move {
                    let media = negotiate(headers.get(ACCEPT));
                    match WireRequest::from_query_string(raw.as_deref().unwrap_or_default()) {
                        Ok(wire) => {
                            endpoint
                                .serve(state, auth, caller, media, Method::Get, wire)
                                .await
                        }
                        Err(error) => error.into_response(),
                    }
                }
            },
        )
        .post(
            move |State(state): State<AppState>,
                  auth: Authenticated,
                  caller: Caller,
                  headers: HeaderMap,
                  body: Bytes| {
                let endpoint = for_post.clone();
                async move {
                    let media = negotiate(headers.get(ACCEPT));
                    match WireRequest::from_post(&headers, &body) {
                        Ok(wire) => {
                            endpoint
                                .serve(state, auth, caller, media, Method::Post, wire)
                                .await
                        }
                        Err(error) => error.into_response(),
                    }
                }
            },
        )
    }

    /// Answers one GraphQL request and counts it in the metrics by
    /// operation name and error codes.
    async fn serve(
        &self,
        state: AppState,
        auth: Authenticated,
        caller: Caller,
        media: Media,
        method: Method,
        wire: WireRequest,
    ) -> Response {
        let mut operation = wire.operation_name.clone();
        let mut reply = self
            .execute(
                state.clone(),
                auth,
                caller,
                media,
                method,
                wire,
                &mut operation,
            )
            .await;
        let codes: Vec<&'static str> = match reply.extensions_mut().remove::<ErrorCodes>() {
            Some(ErrorCodes(codes)) => codes,
            None if reply.status().is_client_error() || reply.status().is_server_error() => {
                vec![ErrorCode::for_status(reply.status()).as_str()]
            }
            None => Vec::new(),
        };
        state
            .metrics()
            .observe_graphql(operation.as_deref(), &codes);
        reply
    }

    /// With shared state, automatic persisted queries are shared by the
    /// replicas: a local miss is looked up in Redis (and kept locally when
    /// found), a registration (`registers`: the request sent the document
    /// with its hash) is stored there too.
    async fn share_automatic(
        &self,
        state: &AppState,
        hash: Option<&str>,
        registers: bool,
        resolved: Result<Arc<str>, DocumentError>,
    ) -> Result<Arc<str>, DocumentError> {
        let (Some(redis), Some(hash)) = (state.shared_state().redis(), hash) else {
            return resolved;
        };
        let hash = normalize_hash(hash);
        match resolved {
            Err(DocumentError::PersistedQueryNotFound) => {
                let document: Arc<str> = Arc::from(
                    redis
                        .find_document(&hash)
                        .await
                        .ok_or(DocumentError::PersistedQueryNotFound)?,
                );
                self.documents.remember(hash, document.clone());
                Ok(document)
            }
            Ok(document)
                if registers
                    && self.documents.keeps_automatic(&hash)
                    && document.len() <= self.config.max_document_bytes.get() =>
            {
                redis.register_document(&hash, &document).await;
                Ok(document)
            }
            other => other,
        }
    }

    /// `operation` is set to the executed operation's name once known.
    #[allow(clippy::too_many_arguments)]
    async fn execute(
        &self,
        state: AppState,
        auth: Authenticated,
        caller: Caller,
        media: Media,
        method: Method,
        wire: WireRequest,
        operation: &mut Option<String>,
    ) -> Response {
        let hash = wire.persisted_hash();
        let resolved = self.documents.resolve(&DocumentRequest {
            query: wire.query.as_deref(),
            hash: hash.as_deref(),
        });
        let registers = wire.query.is_some();
        let document = match self
            .share_automatic(&state, hash.as_deref(), registers, resolved)
            .await
        {
            Ok(document) => document,
            Err(DocumentError::Missing) => {
                return ApiError::BadRequest(
                    "the request needs a `query` or a persisted document id".into(),
                )
                .into_response();
            }
            Err(DocumentError::PersistedQueryNotFound) => {
                return request_failure(media, persisted_query_not_found());
            }
            Err(error) => {
                let code = match error {
                    DocumentError::NotTrusted => ErrorCode::Forbidden,
                    _ => ErrorCode::BadRequest,
                };
                return request_failure(media, request_error(code, error.to_string()));
            }
        };
        if let Err(message) = limits::check_size(&document, &self.config) {
            return request_failure(media, request_error(ErrorCode::BadRequest, message));
        }
        let checked = match self.parsed.get_or_parse(&document, |parsed| {
            limits::check_document(parsed, &self.config, self.introspection)
        }) {
            Ok(checked) => checked,
            Err(error) => {
                return request_failure(
                    media,
                    request_error(ErrorCode::BadRequest, error.to_string()),
                );
            }
        };
        let parsed = &checked.document;
        if operation.is_none() {
            *operation = single_operation_name(parsed);
        }
        if let Err(message) = &checked.verdict {
            return request_failure(media, request_error(ErrorCode::BadRequest, message.clone()));
        }
        if let Err(message) = limits::check_variables(
            parsed,
            wire.operation_name.as_deref(),
            wire.variables.as_ref(),
        ) {
            return request_failure(media, request_error(ErrorCode::BadRequest, message));
        }
        if method == Method::Get
            && limits::selected_operation_type(parsed, wire.operation_name.as_deref())
                == Some(OperationType::Mutation)
        {
            let mut response =
                ApiError::MethodNotAllowed("mutations must be sent with POST").into_response();
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("POST"));
            return response;
        }

        let schema = match &self.introspection_schema {
            Some(twin) if limits::is_introspection_only(parsed, wire.operation_name.as_deref()) => {
                twin
            }
            _ => &self.schema,
        };
        let mut request = async_graphql::Request::new(&*document);
        if let Some(name) = &wire.operation_name {
            request = request.operation_name(name);
        }
        if let Some(variables) = wire.variables {
            request = request.variables(Variables::from_json(Value::Object(variables)));
        }
        request.set_parsed_query(parsed.clone());
        // Every upstream call of this request is timed, the loader's too.
        let caller = caller.recording_timings();
        let mut request = request.data(state).data(caller.clone()).data(auth);
        if let Some(add) = &self.request_data {
            request = add(request, &caller);
        }
        let mut response = schema.execute(request).await;
        if response.errors.iter().any(|e| !e.path.is_empty()) {
            self.nullability.apply(
                parsed,
                wire.operation_name.as_deref(),
                &mut response.data,
                &response.errors,
            );
        }
        let timings = caller.timings();
        let mut reply = render(media, response, &timings);
        if let Some(timing) = crate::server_timing::header_value(&timings) {
            reply
                .headers_mut()
                .insert(HeaderName::from_static("server-timing"), timing);
        }
        reply
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Post,
}

/// The two media types a GraphQL response is sent as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Media {
    GraphQlResponseJson,
    Json,
}

/// Picks the response media type from `Accept`: the acceptable one with the
/// highest weight, ties going to `application/graphql-response+json`;
/// `application/json` when there is no `Accept` or nothing in it fits.
fn negotiate(accept: Option<&HeaderValue>) -> Media {
    let Some(accept) = accept.and_then(|v| v.to_str().ok()) else {
        return Media::Json;
    };
    let mut best: Option<(f32, Media)> = None;
    for range in accept.split(',') {
        let mut params = range.split(';');
        let media_type = params
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let weight = params
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let media = match media_type.as_str() {
            "application/graphql-response+json" => Media::GraphQlResponseJson,
            "application/json" | "application/*" | "*/*" => Media::Json,
            _ => continue,
        };
        if weight <= 0.0 {
            continue;
        }
        let better = match best {
            None => true,
            Some((w, m)) => {
                weight > w || (weight == w && media == Media::GraphQlResponseJson && m != media)
            }
        };
        if better {
            best = Some((weight, media));
        }
    }
    best.map_or(Media::Json, |(_, media)| media)
}

/// The GraphQL-over-HTTP request parameters.
#[derive(Debug, Default)]
struct WireRequest {
    query: Option<String>,
    operation_name: Option<String>,
    variables: Option<Map<String, Value>>,
    extensions: Option<Map<String, Value>>,
    document_id: Option<String>,
}

impl WireRequest {
    /// A POST body: `application/json` only (which also keeps browsers'
    /// form and text posts, the CSRF vectors, out), one JSON object.
    fn from_post(headers: &HeaderMap, body: &[u8]) -> Result<Self, ApiError> {
        let content_type = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let mut parts = content_type.split(';').map(str::trim);
        let is_json = parts.next() == Some("application/json")
            && parts.all(|p| !p.starts_with("charset=") || p == "charset=utf-8");
        if !is_json {
            return Err(ApiError::UnsupportedMediaType(
                "GraphQL requests must be sent as `Content-Type: application/json`",
            ));
        }
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}").into()))?;
        match value {
            Value::Object(map) => Self::from_map(map),
            Value::Array(_) => Err(ApiError::BadRequest(
                "batched requests are not supported; send one operation per request".into(),
            )),
            _ => Err(ApiError::BadRequest(
                "the body must be a JSON object".into(),
            )),
        }
    }

    fn from_map(mut map: Map<String, Value>) -> Result<Self, ApiError> {
        Ok(Self {
            query: optional_string(&mut map, "query")?,
            operation_name: optional_string(&mut map, "operationName")?,
            variables: optional_object(&mut map, "variables")?,
            extensions: optional_object(&mut map, "extensions")?,
            document_id: match optional_string(&mut map, "documentId")? {
                Some(id) => Some(id),
                None => optional_string(&mut map, "id")?,
            },
        })
    }

    /// A GET query string; `variables` and `extensions` are JSON text.
    fn from_query_string(raw: &str) -> Result<Self, ApiError> {
        let mut map = Map::new();
        for (key, value) in url::form_urlencoded::parse(raw.as_bytes()) {
            let value = match key.as_ref() {
                "variables" | "extensions" => serde_json::from_str(&value).map_err(|_| {
                    ApiError::BadRequest(format!("`{key}` must be a JSON object").into())
                })?,
                _ => Value::String(value.into_owned()),
            };
            map.insert(key.into_owned(), value);
        }
        Self::from_map(map)
    }

    /// `extensions.persistedQuery.sha256Hash` (version 1), else the
    /// document id.
    fn persisted_hash(&self) -> Option<String> {
        self.extensions
            .as_ref()
            .and_then(|e| e.get("persistedQuery"))
            .and_then(|pq| pq.get("sha256Hash"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| self.document_id.clone())
    }
}

fn optional_string(map: &mut Map<String, Value>, key: &str) -> Result<Option<String>, ApiError> {
    match map.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::BadRequest(
            format!("`{key}` must be a string").into(),
        )),
    }
}

fn optional_object(
    map: &mut Map<String, Value>,
    key: &str,
) -> Result<Option<Map<String, Value>>, ApiError> {
    match map.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(_) => Err(ApiError::BadRequest(
            format!("`{key}` must be a JSON object").into(),
        )),
    }
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a async_graphql::Value>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [ServerError],
    #[serde(skip_serializing_if = "Option::is_none")]
    extensions: Option<Value>,
}

/// A request that failed before execution: no `data` entry; `400` for
/// `application/graphql-response+json`, `200` for legacy `application/json`.
fn request_failure(media: Media, error: ServerError) -> Response {
    write(media, true, None, vec![error], None)
}

/// An executed (or validation-failed) response, with the upstream calls it
/// made in `extensions.serverTiming`.
fn render(media: Media, response: async_graphql::Response, timings: &[CallTiming]) -> Response {
    let before_execution = response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty());
    let data = (!before_execution).then_some(&response.data);
    let extensions = (!timings.is_empty()).then(|| {
        let entries: Vec<Value> = timings
            .iter()
            .map(|t| {
                serde_json::json!({
                    "source": t.source,
                    "dur": (t.duration.as_secs_f64() * 10_000.0).round() / 10.0,
                    "desc": t.outcome,
                })
            })
            .collect();
        serde_json::json!({ "serverTiming": entries })
    });
    write(media, before_execution, data, response.errors, extensions)
}

/// Serializes the body, giving every error a code, with the status the
/// media type calls for.
fn write(
    media: Media,
    request_error: bool,
    data: Option<&async_graphql::Value>,
    mut errors: Vec<ServerError>,
    extensions: Option<Value>,
) -> Response {
    ensure_codes(&mut errors, request_error);
    let codes = ErrorCodes(
        errors
            .iter()
            .map(|error| {
                error
                    .extensions
                    .as_ref()
                    .and_then(|e| match e.get("code") {
                        Some(async_graphql::Value::String(code)) => Some(code.as_str()),
                        _ => None,
                    })
                    .map_or(ErrorCode::Internal.as_str(), metric_label)
            })
            .collect(),
    );
    let body = serde_json::to_vec(&Body {
        data,
        errors: &errors,
        extensions,
    })
    .expect("a GraphQL response is JSON values with string keys");
    let (status, content_type) = match media {
        Media::GraphQlResponseJson if request_error => {
            (StatusCode::BAD_REQUEST, GRAPHQL_RESPONSE_JSON)
        }
        Media::GraphQlResponseJson => (StatusCode::OK, GRAPHQL_RESPONSE_JSON),
        Media::Json => (StatusCode::OK, JSON),
    };
    let mut response = (
        status,
        [(CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response();
    response.extensions_mut().insert(FinalBody);
    response.extensions_mut().insert(codes);
    response
}

/// The codes of a GraphQL reply's errors, for the metrics.
#[derive(Debug, Clone)]
struct ErrorCodes(Vec<&'static str>);

/// The name of the document's only operation, when it has exactly one.
fn single_operation_name(
    document: &async_graphql::parser::types::ExecutableDocument,
) -> Option<String> {
    use async_graphql::parser::types::DocumentOperations;
    match &document.operations {
        DocumentOperations::Single(_) => None,
        DocumentOperations::Multiple(operations) if operations.len() == 1 => {
            operations.keys().next().map(|name| name.to_string())
        }
        DocumentOperations::Multiple(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> Media {
        negotiate(Some(&HeaderValue::from_str(value).expect("header")))
    }

    #[test]
    fn media_type_is_negotiated_from_accept() {
        assert_eq!(negotiate(None), Media::Json);
        assert_eq!(
            accept("application/graphql-response+json"),
            Media::GraphQlResponseJson
        );
        assert_eq!(accept("application/json"), Media::Json);
        assert_eq!(accept("*/*"), Media::Json);
        assert_eq!(
            accept("application/json;q=0.9, application/graphql-response+json"),
            Media::GraphQlResponseJson
        );
        assert_eq!(
            accept("application/graphql-response+json;q=0.5, application/json"),
            Media::Json
        );
        assert_eq!(accept("text/html"), Media::Json);
    }

    #[test]
    fn get_parameters_parse_and_bad_ones_are_refused() {
        let wire = WireRequest::from_query_string(
            "query=%7B+me+%7D&variables=%7B%22a%22%3A1%7D&operationName=Q",
        )
        .expect("valid");
        assert_eq!(wire.query.as_deref(), Some("{ me }"));
        assert_eq!(wire.operation_name.as_deref(), Some("Q"));
        assert_eq!(wire.variables.map(|v| v.len()), Some(1));
        assert!(WireRequest::from_query_string("query=x&variables=%5B1%5D").is_err());
    }
}
