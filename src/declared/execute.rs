//! Running a declared endpoint for one request: every call starts as soon
//! as the calls it reads have answered (independent ones at once), batched
//! lookups go out one call per chunk of ids, a failed required call ends
//! the request at once, and the reply is shaped from what came back.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::future::join_all;
use futures_util::stream::FuturesUnordered;
use jaq_json::{Map, Val};

use super::expr::{Expr, as_text, text};
use super::fast::{write_json, write_str};
use super::plan::{Batch, Call, DeclaredEndpoint, IDS_VAR, Piece, Projected, ServedEndpoint};
use crate::compose::{Degraded, PartTiming, timed};
use crate::error::{ApiError, ErrorCode};
use crate::upstream::{
    Caller, Endpoint, Fetched, Freshness, Parsed, Target, UpstreamError, UpstreamErrorKind,
};

/// The request's own values, as the endpoint's expressions read them.
#[derive(Debug, Default)]
pub struct RequestValues {
    /// `{sub, scopes}`.
    pub auth: Val,
    /// The route's path parameters.
    pub path: Val,
    /// The declared query parameters the client sent.
    pub query: Val,
    /// The declared headers the client sent, by lower-case name.
    pub headers: Val,
}

impl RequestValues {
    pub(super) fn get(&self, name: &str) -> Option<&Val> {
        match name {
            "auth" => Some(&self.auth),
            "path" => Some(&self.path),
            "query" => Some(&self.query),
            "headers" => Some(&self.headers),
            _ => None,
        }
    }
}

/// One request's run: the reply body or its error, each call's timing (in
/// declaration order), and the optional parts that degraded.
#[derive(Debug)]
pub struct Run {
    pub result: Result<Bytes, ApiError>,
    pub timings: Vec<PartTiming>,
    pub degraded: Vec<Degraded>,
}

/// Where a call stands.
#[derive(Debug)]
enum Slot {
    Pending,
    Done {
        value: Val,
        stale: bool,
        /// A batched lookup that did not find every id.
        missing: bool,
    },
    Failed {
        error: UpstreamError,
        /// Not made: a call it reads failed (that one is reported).
        skipped: bool,
    },
}

impl Slot {
    fn is_settled(&self) -> bool {
        !matches!(self, Self::Pending)
    }

    fn value(&self) -> Option<&Val> {
        match self {
            Self::Done { value, .. } => Some(value),
            _ => None,
        }
    }
}

/// A call ready to go: its targets (one per chunk of a batch), and the
/// values of the calls it reads, carried for `visible_if`.
struct Prepared {
    targets: Vec<Target>,
    /// Every id of a batch, to tell which ones the replies lacked.
    ids: Vec<String>,
    carried: Vec<(String, Val)>,
}

/// A call with the upstream it goes to.
#[derive(Clone, Copy)]
struct Bound<'a> {
    call: &'a Call,
    endpoint: &'a Endpoint,
}

impl std::ops::Deref for Bound<'_> {
    type Target = Call;

    fn deref(&self) -> &Call {
        self.call
    }
}

/// Runs `served` for `caller`.
pub async fn run(served: &ServedEndpoint, caller: &Caller, request: &RequestValues) -> Run {
    let endpoint = &*served.plan;
    let calls = &endpoint.calls;
    let bound = |i: usize| Bound {
        call: &calls[i],
        endpoint: &served.endpoints[i],
    };
    let mut slots: Vec<Slot> = calls.iter().map(|_| Slot::Pending).collect();
    let mut started = vec![false; calls.len()];
    let mut timings: Vec<Vec<PartTiming>> = vec![Vec::new(); calls.len()];
    let mut running = FuturesUnordered::new();
    let failed = |error: UpstreamError, timings: Vec<Vec<PartTiming>>| Run {
        result: Err(ApiError::from(error)),
        timings: timings.into_iter().flatten().collect(),
        degraded: Vec::new(),
    };
    loop {
        // Start every call whose inputs are all settled, until none is left.
        let mut progressed = true;
        while progressed {
            progressed = false;
            for i in 0..calls.len() {
                let call = bound(i);
                if started[i] || !call.deps.iter().all(|&d| slots[d].is_settled()) {
                    continue;
                }
                started[i] = true;
                progressed = true;
                let cause = call.deps.iter().find_map(|&d| match &slots[d] {
                    Slot::Failed { error, .. } => Some(error.clone()),
                    _ => None,
                });
                let prepared = match cause {
                    Some(error) => Err((error, true)),
                    None => prepare(call, request, &slots, calls).map_err(|e| (e, false)),
                };
                match prepared {
                    Ok(prepared) if prepared.targets.is_empty() => {
                        // A batch with no ids: nothing to ask, nothing missing.
                        slots[i] = Slot::Done {
                            value: Val::obj(Map::default()),
                            stale: false,
                            missing: false,
                        };
                    }
                    Ok(prepared) => running.push(fetch(i, call, caller, request, prepared)),
                    Err((error, _)) if call.required => return failed(error, timings),
                    Err((error, skipped)) => slots[i] = Slot::Failed { error, skipped },
                }
            }
        }
        let Some((i, result, call_timings)) = running.next().await else {
            break;
        };
        timings[i] = call_timings;
        slots[i] = match result {
            Ok(slot) => slot,
            Err(error) if calls[i].required => return failed(error, timings),
            Err(error) => Slot::Failed {
                error,
                skipped: false,
            },
        };
    }
    let degraded = degraded(calls, &slots);
    let result = shape(endpoint, request, &slots, &degraded);
    Run {
        result,
        timings: timings.into_iter().flatten().collect(),
        degraded,
    }
}

/// The value of variable `name`: the request's, or a settled call's
/// (`null` when it failed).
fn lookup<'a>(
    name: &str,
    request: &'a RequestValues,
    slots: &'a [Slot],
    calls: &[Call],
) -> Option<&'a Val> {
    request.get(name).or_else(|| {
        calls
            .iter()
            .position(|c| c.name.as_str() == name)
            .and_then(|i| slots[i].value())
    })
}

/// Renders a call's targets from the values it reads.
fn prepare(
    call: Bound<'_>,
    request: &RequestValues,
    slots: &[Slot],
    calls: &[Call],
) -> Result<Prepared, UpstreamError> {
    let carried: Vec<(String, Val)> = call
        .reads
        .iter()
        .filter_map(|name| lookup(name, request, slots, calls).map(|v| (name.clone(), v.clone())))
        .collect();
    let value_of = |name: &str| {
        request
            .get(name)
            .or_else(|| carried.iter().find(|(n, _)| n == name).map(|(_, v)| v))
    };
    let Some(batch) = &call.batch else {
        let target = target(call, &value_of)?;
        return Ok(Prepared {
            targets: vec![target],
            ids: Vec::new(),
            carried,
        });
    };
    let ids = batch_ids(call, batch, &value_of)?;
    let mut targets = Vec::with_capacity(ids.len().div_ceil(batch.max));
    for chunk in ids.chunks(batch.max) {
        let chunk_val: Val = chunk.iter().map(|id| text(id)).collect();
        let with_ids = |name: &str| {
            if name == IDS_VAR {
                Some(&chunk_val)
            } else {
                value_of(name)
            }
        };
        targets.push(target(call, &with_ids)?);
    }
    Ok(Prepared {
        targets,
        ids,
        carried,
    })
}

/// The ids a batch looks up: every value its expression gives (arrays
/// flattened, `null`s skipped), de-duplicated, in order of appearance.
fn batch_ids<'a>(
    call: Bound<'_>,
    batch: &Batch,
    value_of: &impl Fn(&str) -> Option<&'a Val>,
) -> Result<Vec<String>, UpstreamError> {
    let outputs = batch
        .ids
        .run(Val::Null, value_of)
        .map_err(|e| unusable(call, "its ids could not be read", e))?;
    let mut seen = HashSet::new();
    let mut ids = Vec::new();
    let mut add = |value: &Val| {
        if let Some(id) = as_text(value)
            && seen.insert(id.clone())
        {
            ids.push(id);
        }
    };
    for output in &outputs {
        match output {
            Val::Arr(items) => items.iter().for_each(&mut add),
            other => add(other),
        }
    }
    Ok(ids)
}

/// The path and query of one call, each `{...}` evaluated.
fn target<'a>(
    call: Bound<'_>,
    value_of: &impl Fn(&str) -> Option<&'a Val>,
) -> Result<Target, UpstreamError> {
    let mut segments = Vec::with_capacity(call.path.len());
    for piece in &call.path {
        match render(call, piece, value_of)? {
            Some(segment) => segments.push(segment),
            None => {
                return Err(call.endpoint.error(UpstreamErrorKind::BadBody(
                    "a value its path needs is missing",
                )));
            }
        }
    }
    let mut query = Vec::with_capacity(call.query.len());
    for (name, piece) in &call.query {
        if let Some(value) = render(call, piece, value_of)? {
            query.push((name.as_str(), value));
        }
    }
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let query: Vec<(&str, &str)> = query.iter().map(|(n, v)| (*n, v.as_str())).collect();
    call.endpoint.target(&segments, &query)
}

fn render<'a>(
    call: Bound<'_>,
    piece: &Piece,
    value_of: &impl Fn(&str) -> Option<&'a Val>,
) -> Result<Option<String>, UpstreamError> {
    match piece {
        Piece::Literal(text) => Ok(Some(text.clone())),
        Piece::Expr(expr) => expr
            .run_one(Val::Null, value_of)
            .map(|value| as_text(&value))
            .map_err(|e| unusable(call, "a value its request needs could not be computed", e)),
    }
}

/// An error of `call` for a value computed from other replies.
fn unusable(call: Bound<'_>, what: &'static str, cause: super::expr::RunError) -> UpstreamError {
    call.endpoint
        .error(UpstreamErrorKind::BadBody(what))
        .caused_by(cause)
}

/// Makes the call (one request per chunk of a batch, all at once).
async fn fetch<'a>(
    index: usize,
    call: Bound<'a>,
    caller: &'a Caller,
    request: &'a RequestValues,
    prepared: Prepared,
) -> (usize, Result<Slot, UpstreamError>, Vec<PartTiming>) {
    let Prepared {
        targets,
        ids,
        carried,
    } = prepared;
    let value_of = |name: &str| {
        request
            .get(name)
            .or_else(|| carried.iter().find(|(n, _)| n == name).map(|(_, v)| v))
    };
    let Some(batch) = &call.batch else {
        let target = targets
            .into_iter()
            .next()
            .expect("one target for a single call");
        let decode = |body: &Bytes, parsed: Option<&Parsed>| {
            let value = parse(call, body, parsed)?;
            if let Some(check) = &call.visible_if {
                visible(call, check, &value, &value_of)?;
            }
            Ok(value)
        };
        let (result, timing) = timed(
            &call.name,
            call.endpoint
                .get_decoded(caller, target, call.check.clone(), decode),
        )
        .await;
        let slot = result.map(|fetched| Slot::Done {
            value: fetched.value,
            stale: fetched.freshness == Freshness::Stale,
            missing: false,
        });
        return (index, slot, vec![timing]);
    };
    let chunks = targets.into_iter().map(|target| {
        let decode = |body: &Bytes, parsed: Option<&Parsed>| {
            let reply = parse(call, body, parsed)?;
            let items = batch
                .items
                .run(reply, value_of)
                .map_err(|e| unusable(call, "its items could not be found", e))?;
            let mut found = Vec::new();
            for output in items {
                match output {
                    Val::Arr(list) => found.extend(list.iter().cloned()),
                    other => found.push(other),
                }
            }
            Ok(found)
        };
        timed(
            &call.name,
            call.endpoint
                .get_decoded(caller, target, call.check.clone(), decode),
        )
    });
    let replies = join_all(chunks).await;
    let mut timings = Vec::with_capacity(replies.len());
    let mut items = Map::default();
    let mut stale = false;
    let mut failure = None;
    for (result, timing) in replies {
        timings.push(timing);
        match result {
            Ok(Fetched { value, freshness }) => {
                stale |= freshness == Freshness::Stale;
                for item in value {
                    if let Some(key) = item_key(&item, &batch.key) {
                        items.insert(text(&key), item);
                    }
                }
            }
            Err(error) => {
                failure.get_or_insert(error);
            }
        }
    }
    if let Some(error) = failure {
        return (index, Err(error), timings);
    }
    let missing = ids.iter().any(|id| !items.contains_key(&text(id)));
    let slot = Slot::Done {
        value: Val::obj(items),
        stale,
        missing,
    };
    (index, Ok(slot), timings)
}

/// The id an item carries in its `key` field, as text.
fn item_key(item: &Val, key: &Val) -> Option<String> {
    match item {
        Val::Obj(fields) => fields.get(key).and_then(as_text),
        _ => None,
    }
}

/// The reply as its check built it when that reads as far as this call
/// does, or parsed now, whole (a cached reply, a call without a
/// contract, a reply coalesced with another endpoint's call).
fn parse(call: Bound<'_>, body: &Bytes, parsed: Option<&Parsed>) -> Result<Val, UpstreamError> {
    if let Some(built) = parsed.and_then(|p| p.downcast_ref::<Projected>())
        && (built.need.is_whole() || Arc::ptr_eq(&built.need, &call.need))
    {
        return Ok(built.value.clone());
    }
    super::read::parse(body).map_err(|e| {
        call.endpoint
            .error(UpstreamErrorKind::BadBody("not JSON"))
            .caused_by(e)
    })
}

/// `visible_if` on a reply: false (or `null`) reads as no such entity.
fn visible<'a>(
    call: Bound<'_>,
    check: &Expr,
    reply: &Val,
    value_of: &impl Fn(&str) -> Option<&'a Val>,
) -> Result<(), UpstreamError> {
    let seen = check
        .run_one(reply.clone(), value_of)
        .map_err(|e| unusable(call, "its reply could not be checked", e))?;
    if matches!(seen, Val::Null | Val::Bool(false)) {
        return Err(call.endpoint.error(UpstreamErrorKind::NotFound));
    }
    Ok(())
}

/// The optional parts that degraded, in declaration order: a failed call
/// (not one skipped because a call it reads failed: that one is named), a
/// stale reply, a batch that lacked some ids.
fn degraded(calls: &[Call], slots: &[Slot]) -> Vec<Degraded> {
    let mut degraded = Vec::new();
    for (call, slot) in calls.iter().zip(slots) {
        let code = match slot {
            Slot::Done { stale: true, .. } => ErrorCode::Stale,
            Slot::Done { missing: true, .. } => ErrorCode::NotFound,
            Slot::Failed {
                error,
                skipped: false,
            } => {
                tracing::debug!(call = %call.name, error = %error.chain(), "optional call degraded");
                ErrorCode::from(error)
            }
            _ => continue,
        };
        degraded.push(Degraded {
            source: call.name.clone(),
            code,
        });
    }
    degraded
}

/// The reply body: the endpoint's `reply` expression over every call's
/// value, with `degraded` added. Written straight from the replies when
/// the direct evaluator takes the expression; built as a value otherwise.
fn shape(
    endpoint: &DeclaredEndpoint,
    request: &RequestValues,
    slots: &[Slot],
    degraded: &[Degraded],
) -> Result<Bytes, ApiError> {
    let lookup = |name: &str| lookup(name, request, slots, &endpoint.calls);
    let mut body = Vec::with_capacity(2048);
    if endpoint.reply.render_object(&Val::Null, lookup, &mut body) {
        // `{...}`: `degraded` goes before the closing brace.
        body.pop();
        if body.len() > 1 {
            body.push(b',');
        }
        body.extend_from_slice(b"\"degraded\":[");
        for (i, d) in degraded.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(b"{\"source\":");
            write_str(d.source.as_str().as_bytes(), &mut body);
            body.extend_from_slice(b",\"code\":");
            write_str(d.code.as_str().as_bytes(), &mut body);
            body.push(b'}');
        }
        body.extend_from_slice(b"]}");
        return Ok(Bytes::from(body));
    }
    let reply = endpoint
        .reply
        .run_one(Val::Null, lookup)
        .map_err(|e| shape_failed(endpoint, &e.to_string()))?;
    let Val::Obj(mut fields) = reply else {
        return Err(shape_failed(endpoint, "the reply is not an object"));
    };
    let entries: Val = degraded
        .iter()
        .map(|d| {
            let mut entry = Map::default();
            entry.insert(text("source"), text(d.source.as_str()));
            entry.insert(text("code"), text(d.code.as_str()));
            Val::obj(entry)
        })
        .collect();
    jaq_json::Rc::make_mut(&mut fields).insert(text("degraded"), entries);
    write_json(&Val::Obj(fields), &mut body);
    Ok(Bytes::from(body))
}

fn shape_failed(endpoint: &DeclaredEndpoint, why: &str) -> ApiError {
    tracing::error!(file = %endpoint.file, error = why, "a declared reply could not be shaped");
    ApiError::Internal(format!("the reply of {} could not be shaped", endpoint.route).into())
}
