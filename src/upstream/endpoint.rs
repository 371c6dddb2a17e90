//! One upstream as the typed clients see it: its targets, its calls, and
//! the call path every call runs through ([`Endpoint::call`]).

use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use futures_util::FutureExt as _;
use hyper::StatusCode;
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use super::balance::{Balanced, Tried};
use super::cache::{Cached, Fetched};
use super::client::UpstreamClient;
use super::coalesce::Coalescer;
use super::config::UpstreamSettings;
use super::instance::{CallLimits, Instance, bad_body};
use super::observe::Observation;
use super::request::{BodyCheck, Outcome, Parsed, Reply, Target, UpstreamRequest, shape_of};
use super::retry::{Hedged, Retried, RetryBudget};
use super::{Caller, UpstreamError, UpstreamErrorKind, UpstreamHealth, UpstreamName};
use crate::metrics::Metrics;

/// Where one service lives and how each call to it is bounded. Cheap to
/// clone: every clone shares the layers and their state.
#[derive(Debug, Clone)]
pub struct Endpoint {
    layers: Arc<Layers>,
}

/// The layers of the call path, in the order [`Endpoint::call`] runs
/// them, with the state each keeps for this upstream.
#[derive(Debug)]
struct Layers {
    name: UpstreamName,
    observe: Observation,
    cache: Cached,
    coalesce: Coalescer,
    hedge: Hedged,
    retry: Retried,
    /// Shared by hedges and retries.
    budget: RetryBudget,
    balance: Balanced,
}

/// Builds targets: a base that only lends its path and query.
static TARGET_BASE: LazyLock<Url> =
    LazyLock::new(|| Url::parse("http://upstream/").expect("a valid URL"));

impl Endpoint {
    /// An upstream at `bases` (one per instance, at most
    /// [`MAX_INSTANCES`](super::config::MAX_INSTANCES), as config
    /// validation ensures), calls made with `http` and observed in
    /// `metrics`.
    pub fn new(
        name: UpstreamName,
        http: UpstreamClient,
        bases: &[Url],
        metrics: Arc<Metrics>,
        settings: UpstreamSettings,
    ) -> Self {
        let cache = Cached::new(settings.cache_max_bytes.get(), settings.stale_if_error);
        let limits = CallLimits {
            name: name.clone(),
            http,
            timeout: settings.timeout,
            max_response_bytes: settings.max_response_bytes.get(),
            keep_caching: cache.is_on(),
        };
        assert!(
            (1..=super::config::MAX_INSTANCES).contains(&bases.len()),
            "an upstream has 1 to MAX_INSTANCES instances"
        );
        let created = std::time::Instant::now();
        let instances = bases
            .iter()
            .map(|base| Instance::new(&name, base, settings.breaker.clone(), created))
            .collect();
        let retry = &settings.retry;
        Self {
            layers: Arc::new(Layers {
                observe: Observation::new(name.clone(), metrics),
                cache,
                coalesce: Coalescer::default(),
                hedge: Hedged::new(settings.hedge_after),
                budget: RetryBudget::new(
                    retry.budget_ratio.get(),
                    retry.budget_floor,
                    retry.budget_window,
                ),
                retry: Retried::new(settings.retry),
                balance: Balanced::new(
                    limits,
                    instances,
                    settings.max_in_flight.get(),
                    settings.outlier,
                ),
                name,
            }),
        }
    }

    /// Every call to this upstream, any method, runs through these layers,
    /// outermost first. The GET-only layers (cache, coalescing, hedging)
    /// pass other methods straight through; `read` turns the reply into
    /// the caller's result inside observation, so an unusable reply is
    /// reported as what it is.
    async fn call<R: Outcome>(
        &self,
        caller: &Caller,
        request: &UpstreamRequest,
        read: impl FnOnce(Reply<Bytes>) -> Result<R, UpstreamError>,
    ) -> Result<R, UpstreamError> {
        let layers = &self.layers;
        // Observation: a span, the metrics, the caller's `Server-Timing`.
        layers
            .observe
            .around(caller, request.method(), async |caller| {
                // Cache: a fresh GET reply from memory; a stale one when the service fails.
                let reply = layers
                    .cache
                    .around(caller, request, async || {
                        // Coalescing: identical GETs in flight for one identity share one call.
                        layers
                            .coalesce
                            .around(caller, request, |caller, request| {
                                let layers = self.layers.clone();
                                async move {
                                    let (caller, request) = (&caller, &request);
                                    // The instances this call was sent to, shared by its hedges and retries.
                                    let tried = &Tried::default();
                                    // Hedging: a slow GET gets a second request, to another instance.
                                    layers
                                        .hedge
                                        .around(request, &layers.budget, || {
                                            // Retries: what is safe to send again is, to another
                                            // instance, within the budget and the deadline.
                                            layers.retry.around(
                                                caller,
                                                request,
                                                &layers.budget,
                                                || {
                                                    // Bulkhead, then balancing: the less loaded of two
                                                    // instances; per instance its breaker, the deadline,
                                                    // HTTP and the body check (`instance.rs`).
                                                    layers.balance.attempt(caller, request, tried)
                                                },
                                            )
                                        })
                                        .await
                                }
                                .boxed()
                            })
                            .await
                    })
                    .await?;
                read(reply)
            })
            .await
    }

    /// The upstream's configured name.
    pub fn name(&self) -> &UpstreamName {
        &self.layers.name
    }

    /// The circuit states and calls in flight, for `/readyz`.
    pub fn health(&self) -> UpstreamHealth {
        let health = self.layers.balance.health();
        UpstreamHealth {
            circuit: health.circuit,
            in_flight: health.in_flight,
            last_success: health.last_success,
            instances: health.instances,
        }
    }

    /// The path of `segments`, each percent-encoded, so an id like `a/b`
    /// stays one path segment, with `query`. A segment that could be
    /// normalised into another path (`..`, `%2e%2e`, ...) is refused and
    /// nothing is sent.
    pub fn target(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
    ) -> Result<Target, UpstreamError> {
        for segment in segments {
            super::segment::check(segment)
                .map_err(|e| self.error(UpstreamErrorKind::UnsafeIdentifier(e)))?;
        }
        let mut url = TARGET_BASE.clone();
        url.path_segments_mut()
            .map_err(|()| self.error(UpstreamErrorKind::Transport))?
            .pop_if_empty()
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(Target::new(&url[url::Position::BeforePath..]))
    }

    /// GET, expecting 200 with a JSON body of type `T`. A 404 is `NotFound`.
    /// Served from the cache while fresh; coalesced with an identical call
    /// in flight; when the service fails, a stale cached reply if one is
    /// within the stale-if-error window.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        caller: &Caller,
        target: Target,
    ) -> Result<Fetched<T>, UpstreamError> {
        self.get_json_if(caller, target, |_| true).await
    }

    /// [`Self::get_json`], where a reply that fails `visible` (another
    /// user's object) is `NotFound`: reported as such everywhere, metrics
    /// and `Server-Timing` included, so it reads exactly like an id that
    /// does not exist.
    pub async fn get_json_if<T: DeserializeOwned>(
        &self,
        caller: &Caller,
        target: Target,
        visible: impl FnOnce(&T) -> bool,
    ) -> Result<Fetched<T>, UpstreamError> {
        let request = UpstreamRequest::get(target).expecting(shape_of::<T>);
        self.get_with(caller, &request, |body, _| {
            let value = self.decode(body)?;
            if visible(&value) {
                Ok(value)
            } else {
                Err(self.error(UpstreamErrorKind::NotFound))
            }
        })
        .await
    }

    /// GET `target`, expecting 200 with a body that passes `check` (the
    /// breaker hears of one that does not), which `decode`
    /// turns into the caller's value inside the observed call: an error
    /// it returns (another user's object as `NotFound`, a reply the
    /// caller cannot use) is reported as what it is, in metrics and
    /// `Server-Timing` alike. Statuses mean what they mean for
    /// [`Self::get_json`]; cached, coalesced and retried the same way.
    pub async fn get_decoded<T>(
        &self,
        caller: &Caller,
        target: Target,
        check: BodyCheck,
        decode: impl FnOnce(&Bytes, Option<&Parsed>) -> Result<T, UpstreamError>,
    ) -> Result<Fetched<T>, UpstreamError> {
        let request = UpstreamRequest::get(target).judged_by(check);
        self.get_with(caller, &request, decode).await
    }

    /// A GET whose 200 body `decode` reads; other statuses keep their
    /// meaning (404 `NotFound`, 400 `Rejected`: an answer about the
    /// client's request, a bad cursor), inside the observed call.
    async fn get_with<T>(
        &self,
        caller: &Caller,
        request: &UpstreamRequest,
        decode: impl FnOnce(&Bytes, Option<&Parsed>) -> Result<T, UpstreamError>,
    ) -> Result<Fetched<T>, UpstreamError> {
        self.call(caller, request, |reply| {
            let value = match reply.status {
                StatusCode::OK => decode(&reply.body, reply.parsed.as_ref())?,
                StatusCode::NOT_FOUND => return Err(self.error(UpstreamErrorKind::NotFound)),
                StatusCode::BAD_REQUEST => return Err(self.error(UpstreamErrorKind::Rejected)),
                other => return Err(self.error(UpstreamErrorKind::Status(other))),
            };
            Ok(Fetched {
                value,
                freshness: reply.freshness,
            })
        })
        .await
    }

    /// Sends `request` and reads its whole (bounded) body, whatever the
    /// status: the typed client decides what each status means. Retried
    /// only as the retry layer allows (a POST only when its connection was
    /// never established, so it cannot have been handled).
    pub async fn send(
        &self,
        caller: &Caller,
        request: UpstreamRequest,
    ) -> Result<Reply<Bytes>, UpstreamError> {
        self.call(caller, &request, Ok).await
    }

    /// Decodes a JSON body into the service's typed reply.
    pub fn decode<T: DeserializeOwned>(&self, body: &[u8]) -> Result<T, UpstreamError> {
        serde_json::from_slice(body).map_err(|e| bad_body(self.layers.balance.limits(), e))
    }

    /// Serializes a request body.
    pub fn encode<T: Serialize>(&self, body: &T) -> Bytes {
        Bytes::from(
            serde_json::to_vec(body)
                .expect("request bodies are plain structs of strings and numbers"),
        )
    }

    pub fn error(&self, kind: UpstreamErrorKind) -> UpstreamError {
        UpstreamError::new(self.layers.name.clone(), kind)
    }
}
