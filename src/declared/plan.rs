//! Compiling an endpoint file into what a request runs: templates parsed,
//! expressions compiled, paths checked against the upstreams' contracts,
//! the call graph ordered and checked for cycles; then bound to the
//! configured upstreams by name. Everything that can be wrong with a file
//! is found here, at load, with the file and key named. The plan itself
//! needs no running gateway, so `--print-openapi` describes it too.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::http::{HeaderName, HeaderValue};
use bytes::Bytes;
use jaq_json::Val;

use super::expr::{Expr, REQUEST_VARS, text};
use super::need::Need;
use super::spec::{BatchSpec, CachePolicy, CallSpec, DeprecationSpec, EndpointSpec};
use crate::config::ConfigError;
use crate::rate_limit::RateLimiter;
use crate::server::AppState;
use crate::upstream::contract::{Contract, Shape};
use crate::upstream::{BadReply, BodyCheck, Endpoint, Parsed, UpstreamName, shape_of};

/// Variables of the request that come from the client: a call reading
/// one states who may see its reply (`visible_if`).
const CLIENT_VARS: [&str; 3] = ["path", "query", "headers"];

/// Request headers an endpoint file may not read: the caller's credentials
/// (a bearer token, the token handler's session cookie, an API key in the
/// default header). The gateway authenticates the caller and sends its own.
const CREDENTIAL_HEADERS: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
];

/// The variable a batched call's templates read its chunk of ids from.
pub const IDS_VAR: &str = "ids";

/// One declared endpoint, compiled.
#[derive(Debug)]
pub struct DeclaredEndpoint {
    /// The file it came from (`user-dashboard.toml`).
    pub file: Arc<str>,
    /// Where it is mounted: its route, under `/v<n>` when versioned.
    pub route: String,
    /// The file as written, for documentation.
    pub spec: EndpointSpec,
    pub(super) scopes: Vec<String>,
    pub(super) cache_control: Option<HeaderValue>,
    pub(super) deprecation: Option<Deprecation>,
    pub(super) query_params: Vec<String>,
    pub(super) headers: Vec<HeaderName>,
    pub(super) calls: Vec<Call>,
    pub(super) reply: Expr,
}

impl DeclaredEndpoint {
    /// The expressions the direct evaluator does not take (jaq runs
    /// them, at several times the cost), by key: a screen on the request
    /// path should have none.
    pub fn run_by_jaq(&self) -> Vec<String> {
        let mut slow = Vec::new();
        let mut note = |key: String, expr: &Expr| {
            if !expr.is_direct() {
                slow.push(key);
            }
        };
        note("reply.shape".to_owned(), &self.reply);
        for call in &self.calls {
            let name = &call.name;
            for (i, piece) in call.path.iter().enumerate() {
                if let Piece::Expr(expr) = piece {
                    note(format!("calls.{name}.path[{i}]"), expr);
                }
            }
            for (param, piece) in &call.query {
                if let Piece::Expr(expr) = piece {
                    note(format!("calls.{name}.query.{param}"), expr);
                }
            }
            if let Some(check) = &call.visible_if {
                note(format!("calls.{name}.visible_if"), check);
            }
            if let Some(batch) = &call.batch {
                note(format!("calls.{name}.batch.ids"), &batch.ids);
                note(format!("calls.{name}.batch.items"), &batch.items);
            }
        }
        slow
    }
}

/// The headers a deprecated route's replies carry.
#[derive(Debug, Clone)]
pub(super) struct Deprecation {
    pub deprecation: HeaderValue,
    pub sunset: HeaderValue,
    pub link: Option<HeaderValue>,
}

/// One upstream call of an endpoint.
#[derive(Debug)]
pub(super) struct Call {
    /// Its name: the `$name` others read it by, its `degraded` source.
    pub name: UpstreamName,
    /// The upstream it calls, by its configured name.
    pub upstream: String,
    pub required: bool,
    /// The calls it waits for, by index.
    pub deps: Vec<usize>,
    pub path: Vec<Piece>,
    pub query: Vec<(String, Piece)>,
    pub visible_if: Option<Expr>,
    pub batch: Option<Batch>,
    /// The reply's schema from the upstream's contract, when it has one.
    pub reply_shape: Option<Shape>,
    /// How a reply is judged before the call counts as a success.
    pub check: BodyCheck,
    /// What the endpoint's expressions read of the reply: what is built
    /// of it (the rest is checked, not built).
    pub need: Arc<Need>,
    /// Every variable its expressions read besides the request's: what a
    /// started call carries along.
    pub reads: Vec<String>,
}

/// A piece of a template: as written, or computed.
#[derive(Debug)]
pub(super) enum Piece {
    Literal(String),
    Expr(Expr),
}

/// A batched lookup.
#[derive(Debug)]
pub(super) struct Batch {
    pub ids: Expr,
    pub max: usize,
    pub items: Expr,
    /// The item field holding the id, as a jq string.
    pub key: Val,
}

/// Reports problems in one file.
struct Problems<'a> {
    file: &'a str,
}

impl Problems<'_> {
    fn at(&self, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError::Endpoint {
            file: self.file.to_owned(),
            key: key.into(),
            message: message.into(),
        }
    }
}

/// A declared endpoint bound to the running gateway: its calls'
/// upstreams, its quota's state, its deadline.
#[derive(Debug)]
pub struct ServedEndpoint {
    pub plan: Arc<DeclaredEndpoint>,
    /// Each call's upstream, in call order.
    pub(super) endpoints: Vec<Endpoint>,
    pub(super) limiter: Option<Arc<RateLimiter>>,
    /// Every call of one request finishes within this.
    pub(super) timeout: Duration,
}

/// Binds `plan` to the configured `upstreams`; `upstream_deadline` is its
/// deadline unless the file sets one. Starts the route quota's pruning
/// task: call inside the runtime.
pub fn bind(plan: Arc<DeclaredEndpoint>, state: &AppState) -> Result<ServedEndpoint, ConfigError> {
    let upstreams = state.upstreams();
    let problems = Problems { file: &plan.file };
    let endpoints = plan
        .calls
        .iter()
        .map(|call| {
            upstreams.endpoint(&call.upstream).map_err(|_| {
                problems.at(
                    format!("calls.{}.upstream", call.name),
                    format!(
                        "names upstream `{}`, which is not configured (`upstreams.{}.url`)",
                        call.upstream, call.upstream
                    ),
                )
            })
        })
        .collect::<Result<_, _>>()?;
    let limiter = plan.spec.rate_limit.map(|quota| {
        state.route_limiters().get(
            &plan.route,
            quota,
            state.shared_state(),
            state.generation(),
            state.config().rate_limit.prune_interval,
        )
    });
    Ok(ServedEndpoint {
        timeout: plan
            .spec
            .timeout
            .unwrap_or(state.config().http.upstream_deadline),
        endpoints,
        limiter,
        plan,
    })
}

/// Parses and compiles the endpoint file `file` (its name, for errors)
/// holding `text`, checking each call's path against its upstream's
/// contract where `contracts` has one.
pub fn compile(
    file: &str,
    text_of_file: &str,
    contracts: &BTreeMap<String, Contract>,
) -> Result<DeclaredEndpoint, ConfigError> {
    let problems = Problems { file };
    let spec: EndpointSpec =
        toml::from_str(text_of_file).map_err(|e| problems.at("", e.to_string()))?;
    if !spec.method.eq_ignore_ascii_case("GET") {
        return Err(problems.at(
            "method",
            "only GET can be declared: a mutation is a Rust handler",
        ));
    }
    let route = mounted_route(&spec, &problems)?;
    let names: BTreeSet<String> = spec.calls.keys().cloned().collect();
    if spec.calls.is_empty() {
        return Err(problems.at("calls", "an endpoint makes at least one call"));
    }
    let mut calls = Vec::with_capacity(spec.calls.len());
    for (name, call) in &spec.calls {
        let contract = contracts.get(&call.upstream);
        calls.push(compile_call(name, call, &names, contract, &problems)?);
    }
    let index = |name: &str| spec.calls.get_index_of(name);
    for (call, (name, spec_call)) in calls.iter_mut().zip(&spec.calls) {
        let mut deps: Vec<usize> = call_sources(spec_call)
            .into_iter()
            .flat_map(|code| Expr::calls_read(code, &names))
            .filter_map(|dep| index(&dep))
            .collect();
        deps.sort_unstable();
        deps.dedup();
        if deps.contains(&index(name).unwrap_or(usize::MAX)) {
            return Err(problems.at(format!("calls.{name}"), "reads its own reply"));
        }
        call.reads = deps
            .iter()
            .filter_map(|&i| spec.calls.get_index(i).map(|(n, _)| n.clone()))
            .collect();
        call.deps = deps;
    }
    if let Some(cycle) = find_cycle(&calls) {
        let path: Vec<&str> = cycle.iter().map(|&i| calls[i].name.as_str()).collect();
        return Err(problems.at(
            format!("calls.{}", path[0]),
            format!(
                "the calls wait for each other in a cycle: {}",
                path.join(" → ")
            ),
        ));
    }
    let reply = Expr::compile(&spec.reply.shape, &names)
        .map_err(|e| problems.at("reply.shape", format!("is not a valid expression: {e}")))?;
    let needs = reply_needs(&calls, &reply);
    for (call, need) in calls.iter_mut().zip(needs) {
        let need = Arc::new(need);
        call.check = reply_check(call.reply_shape.clone(), need.clone());
        call.need = need;
    }
    let deprecation = spec
        .deprecated
        .as_ref()
        .map(|d| deprecation_headers(d, &problems))
        .transpose()?;
    let headers = spec
        .request
        .headers
        .iter()
        .map(|name| {
            let header = HeaderName::try_from(name.to_ascii_lowercase()).map_err(|_| {
                problems.at("request.headers", format!("`{name}` is not a header name"))
            })?;
            if CREDENTIAL_HEADERS.contains(&header.as_str()) {
                return Err(problems.at(
                    "request.headers",
                    format!(
                        "`{name}` carries the caller's credentials, which a screen never reads \
                         nor passes on (the gateway authenticates and sends its own)"
                    ),
                ));
            }
            Ok(header)
        })
        .collect::<Result<_, _>>()?;
    if spec.timeout.is_some_and(|t| t.is_zero()) {
        return Err(problems.at("timeout", "must be longer than zero"));
    }
    Ok(DeclaredEndpoint {
        file: file.into(),
        route,
        scopes: spec.auth.scopes.clone(),
        cache_control: match spec.cache {
            CachePolicy::NoStore => None,
            CachePolicy::PrivateNoCache => Some(HeaderValue::from_static("private, no-cache")),
        },
        deprecation,
        query_params: spec.request.query.clone(),
        headers,
        calls,
        reply,
        spec,
    })
}

/// The route as mounted: `/v2/user-dashboard` for version 2.
fn mounted_route(spec: &EndpointSpec, problems: &Problems<'_>) -> Result<String, ConfigError> {
    let route = &spec.route;
    if !route.starts_with('/') || route.contains("//") || route.contains(['?', '#', '*']) {
        return Err(problems.at(
            "route",
            "must be a path such as `/user-dashboard` or `/orders/{id}`",
        ));
    }
    Ok(match spec.version {
        Some(version) => format!("/v{version}{route}"),
        None => route.clone(),
    })
}

/// The jq sources of a call that may read other calls.
fn call_sources(call: &CallSpec) -> Vec<&str> {
    let mut sources: Vec<&str> = call.path.split('/').filter_map(placeholder).collect();
    sources.extend(call.query.values().filter_map(|v| placeholder(v)));
    sources.extend(call.visible_if.as_deref());
    if let Some(batch) = &call.batch {
        sources.push(&batch.ids);
    }
    sources
}

/// The jq source of a `{...}` placeholder filling a whole piece.
fn placeholder(piece: &str) -> Option<&str> {
    piece
        .strip_prefix('{')
        .and_then(|rest| rest.strip_suffix('}'))
}

fn compile_call(
    name: &str,
    call: &CallSpec,
    names: &BTreeSet<String>,
    contract: Option<&Contract>,
    problems: &Problems<'_>,
) -> Result<Call, ConfigError> {
    let key = |k: &str| format!("calls.{name}.{k}");
    if !is_identifier(name) {
        return Err(problems.at(
            format!("calls.{name}"),
            "a call's name is a jq variable: letters, digits and `_`, not starting with a digit",
        ));
    }
    if REQUEST_VARS.contains(&name) || name == IDS_VAR {
        return Err(problems.at(
            format!("calls.{name}"),
            format!("`{name}` is reserved for the request's own values"),
        ));
    }
    let mut vars = names.clone();
    if call.batch.is_some() {
        vars.insert(IDS_VAR.to_owned());
    }
    let compile = |k: String, code: &str| {
        Expr::compile(code, &vars).map_err(|e| problems.at(k, format!("`{code}`: {e}")))
    };
    if !call.path.starts_with('/') {
        return Err(problems.at(key("path"), "must start with `/`"));
    }
    let mut path = Vec::new();
    for segment in call.path.split('/').skip(1) {
        path.push(piece(segment, &key("path"), &compile, problems)?);
    }
    let reply_shape = match contract {
        Some(contract) => {
            let pattern: Vec<Option<&str>> = path
                .iter()
                .map(|piece| match piece {
                    Piece::Literal(text) => Some(text.as_str()),
                    Piece::Expr(_) => None,
                })
                .collect();
            let shape = contract.get_reply(&pattern).ok_or_else(|| {
                problems.at(
                    key("path"),
                    format!(
                        "GET {} is not an operation of upstream `{}` (its OpenAPI contract)",
                        call.path, call.upstream
                    ),
                )
            })?;
            Some(shape.clone())
        }
        None => None,
    };
    let mut query = Vec::new();
    for (param, value) in &call.query {
        query.push((
            param.clone(),
            piece(value, &key(&format!("query.{param}")), &compile, problems)?,
        ));
    }
    let reads_client = call_sources(call)
        .into_iter()
        .any(|code| !Expr::calls_read(code, &client_vars()).is_empty());
    if reads_client && call.visible_if.is_none() {
        return Err(problems.at(
            key("visible_if"),
            "is required: this call takes a value from the client, so say who may see its reply \
             (e.g. `.userId == $auth.sub`, or `true` for public data)",
        ));
    }
    let visible_if = call
        .visible_if
        .as_deref()
        .map(|code| compile(key("visible_if"), code))
        .transpose()?;
    let batch = call
        .batch
        .as_ref()
        .map(|b| compile_batch(b, name, &compile))
        .transpose()?;
    Ok(Call {
        name: UpstreamName::new(name),
        check: BodyCheck::Decodes(shape_of::<serde::de::IgnoredAny>),
        need: Arc::new(Need::whole()),
        reply_shape,
        upstream: call.upstream.clone(),
        required: call.required,
        deps: Vec::new(),
        path,
        query,
        visible_if,
        batch,
        reads: Vec::new(),
    })
}

fn client_vars() -> BTreeSet<String> {
    CLIENT_VARS.iter().map(|v| (*v).to_owned()).collect()
}

fn compile_batch(
    batch: &BatchSpec,
    name: &str,
    compile: &impl Fn(String, &str) -> Result<Expr, ConfigError>,
) -> Result<Batch, ConfigError> {
    let key = |k: &str| format!("calls.{name}.batch.{k}");
    Ok(Batch {
        ids: compile(key("ids"), &batch.ids)?,
        max: batch.max.get(),
        items: compile(key("items"), &batch.items)?,
        key: text(&batch.key),
    })
}

/// A template piece: `{expr}` filling it whole, or a literal without braces.
fn piece(
    template: &str,
    key: &str,
    compile: &impl Fn(String, &str) -> Result<Expr, ConfigError>,
    problems: &Problems<'_>,
) -> Result<Piece, ConfigError> {
    if let Some(code) = placeholder(template) {
        return Ok(Piece::Expr(compile(key.to_owned(), code)?));
    }
    if template.contains(['{', '}']) {
        return Err(problems.at(
            key,
            format!("`{template}`: a `{{...}}` placeholder fills a whole path segment or value"),
        ));
    }
    Ok(Piece::Literal(template.to_owned()))
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A cycle in the calls' waits, as indexes from its first call back to it.
fn find_cycle(calls: &[Call]) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(
        i: usize,
        calls: &[Call],
        marks: &mut [Mark],
        stack: &mut Vec<usize>,
    ) -> Option<Vec<usize>> {
        marks[i] = Mark::Open;
        stack.push(i);
        for &dep in &calls[i].deps {
            match marks[dep] {
                Mark::Open => {
                    let from = stack.iter().position(|&s| s == dep).unwrap_or(0);
                    let mut cycle = stack[from..].to_vec();
                    cycle.push(dep);
                    return Some(cycle);
                }
                Mark::New => {
                    if let Some(cycle) = visit(dep, calls, marks, stack) {
                        return Some(cycle);
                    }
                }
                Mark::Done => {}
            }
        }
        stack.pop();
        marks[i] = Mark::Done;
        None
    }
    let mut marks = vec![Mark::New; calls.len()];
    let mut stack = Vec::new();
    (0..calls.len()).find_map(|i| {
        if marks[i] == Mark::New {
            visit(i, calls, &mut marks, &mut stack)
        } else {
            None
        }
    })
}

/// What the endpoint reads of each call's reply, by call: followed
/// through every expression the direct evaluator runs. A batch call's
/// reply is read whole (its items are matched by key), and so is every
/// reply when an expression only jaq runs, which may read anything.
fn reply_needs(calls: &[Call], reply: &Expr) -> Vec<Need> {
    let mut needs: Vec<Need> = calls.iter().map(|_| Need::default()).collect();
    let mut exprs: Vec<(&Expr, Option<&str>)> = vec![(reply, None)];
    for call in calls {
        let pieces = call.path.iter().chain(call.query.iter().map(|(_, p)| p));
        exprs.extend(pieces.filter_map(|piece| match piece {
            Piece::Expr(expr) => Some((expr, None)),
            Piece::Literal(_) => None,
        }));
        if let Some(check) = &call.visible_if {
            exprs.push((check, Some(call.name.as_str())));
        }
        if let Some(batch) = &call.batch {
            exprs.push((&batch.ids, None));
            exprs.push((&batch.items, None));
        }
    }
    for (expr, input) in exprs {
        let Some(read) = expr.needs(input) else {
            return calls.iter().map(|_| Need::whole()).collect();
        };
        for (name, need) in read {
            if let Some(i) = calls.iter().position(|c| c.name.as_str() == name) {
                needs[i].merge(need);
            }
        }
    }
    for (need, call) in needs.iter_mut().zip(calls) {
        if call.batch.is_some() {
            *need = Need::whole();
        }
    }
    needs
}

/// A reply is judged by its contract's schema: one of the wrong shape
/// counts against the service (breaker, outliers, readiness) like a 5xx.
/// Without a contract, any JSON passes. What the check parsed travels on
/// with the reply, built as far as `need` says ([`Projected`]).
fn reply_check(shape: Option<Shape>, need: Arc<Need>) -> BodyCheck {
    match shape {
        None => BodyCheck::Decodes(shape_of::<serde::de::IgnoredAny>),
        Some(shape) => BodyCheck::Rule(Arc::new(move |body: &Bytes| {
            let value = match super::project::parse(body, &shape, &need) {
                Ok(value) => value,
                // Refused: the whole-reply check gives the verdict and
                // its words (and takes the rare reply only it accepts).
                Err(_) => {
                    let value = super::read::parse(body).map_err(|e| BadReply {
                        what: "not JSON",
                        cause: Arc::new(e),
                    })?;
                    shape.check(&value).map_err(|e| BadReply {
                        what: "wrong shape",
                        cause: Arc::new(e),
                    })?;
                    return Ok(Some(Arc::new(Projected {
                        need: Arc::new(Need::whole()),
                        value,
                    }) as Parsed));
                }
            };
            Ok(Some(Arc::new(Projected {
                need: need.clone(),
                value,
            }) as Parsed))
        })),
    }
}

/// A reply as a call's check built it: only as far as `need` reads it, so
/// only a call reading no more may use it (a reply shared by coalescing
/// may have been checked for another endpoint).
#[derive(Debug)]
pub(super) struct Projected {
    pub need: Arc<Need>,
    pub value: Val,
}

/// `Deprecation: @<seconds>` (RFC 9745), `Sunset: <HTTP-date>` (RFC 8594),
/// `Link: <successor>; rel="successor-version"`.
fn deprecation_headers(
    spec: &DeprecationSpec,
    problems: &Problems<'_>,
) -> Result<Deprecation, ConfigError> {
    let since = date(&spec.since).map_err(|e| problems.at("deprecated.since", e))?;
    let sunset = date(&spec.sunset).map_err(|e| problems.at("deprecated.sunset", e))?;
    let seconds = since
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_err(|_| problems.at("deprecated.since", "is before 1970"))?
        .as_secs();
    let link = spec
        .successor
        .as_deref()
        .map(|successor| {
            if !successor.starts_with('/') || successor.contains(['<', '>', '"', ' ']) {
                return Err(problems.at(
                    "deprecated.successor",
                    "must be a path such as `/v2/user-dashboard`",
                ));
            }
            HeaderValue::try_from(format!("<{successor}>; rel=\"successor-version\""))
                .map_err(|_| problems.at("deprecated.successor", "is not a valid header value"))
        })
        .transpose()?;
    Ok(Deprecation {
        deprecation: HeaderValue::try_from(format!("@{seconds}"))
            .map_err(|_| problems.at("deprecated.since", "is not a date"))?,
        sunset: HeaderValue::try_from(httpdate::fmt_http_date(sunset))
            .map_err(|_| problems.at("deprecated.sunset", "is not a date"))?,
        link,
    })
}

/// `2027-06-30` (midnight UTC) or an RFC 3339 time.
fn date(text: &str) -> Result<SystemTime, String> {
    let full = if text.contains('T') {
        text.to_owned()
    } else {
        format!("{text}T00:00:00Z")
    };
    humantime::parse_rfc3339(&full)
        .map_err(|e| format!("`{text}` is not a date such as `2027-06-30`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape's output from every reply built only as far as the
    /// endpoint reads it is the output from the whole replies: for each
    /// endpoint file of both BFFs, on replies with every documented field
    /// set and on replies with every nullable field null.
    #[test]
    fn replies_built_as_far_as_read_give_the_same_reply() {
        let contracts = super::super::contracts(bff_shop::CONTRACTS).expect("contracts");
        let files = bff_web::ENDPOINTS.iter().chain(bff_mobile::ENDPOINTS);
        let mut compared = 0;
        for (file, text) in files {
            let endpoint = compile(file, text, &contracts).expect("compiles");
            for nulls in [false, true] {
                let mut whole = BTreeMap::new();
                let mut built = BTreeMap::new();
                for call in &endpoint.calls {
                    let Some(shape) = &call.reply_shape else {
                        continue;
                    };
                    let body = Bytes::from(shape.example(nulls).to_string());
                    let full = super::super::read::parse(&body).expect("parses");
                    let part = super::super::project::parse(&body, shape, &call.need)
                        .expect("an example has the contract's shape");
                    whole.insert(call.name.as_str().to_owned(), full);
                    built.insert(call.name.as_str().to_owned(), part);
                }
                let from_whole = endpoint.reply.run(Val::Null, |name| whole.get(name));
                let from_built = endpoint.reply.run(Val::Null, |name| built.get(name));
                let show = |out: Result<Vec<Val>, _>| {
                    out.map(|values| values.iter().map(Val::to_string).collect::<Vec<_>>())
                        .map_err(|e: super::super::expr::RunError| e.0)
                };
                assert_eq!(show(from_built), show(from_whole), "{file}, nulls: {nulls}");
                compared += 1;
            }
            let read_part = endpoint.calls.iter().any(|c| !c.need.is_whole());
            assert!(read_part, "{file}: some reply is read only in part");
        }
        assert!(compared >= 6, "every endpoint file was compared");
    }
}
