//! Starting a BFF binary: flags, config, demo upstreams, serving until a signal.
//!
//! A BFF's `main.rs` is one call to [`main`] with its [`BffSpec`], so both
//! binaries start, fail and shut down the same way.

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::cli::{Args, usage};
use crate::config::{Config, ConfigError, ConfigSources, EndpointsConfig, LogFormat, Profile};
use crate::demo_token::TokenMint;
use crate::listener::{AppHandle, serve};
use crate::openapi::ApiDocument;
use crate::reload::{Cause, Triggers};
use crate::server::AppState;
use crate::telemetry::{self, otel};

/// What makes one BFF binary: its name, its defaults, its routes.
#[derive(Debug, Clone, Copy)]
pub struct BffSpec {
    /// Binary and service name, e.g. `bff-web`.
    pub name: &'static str,
    /// The crate's `bff-*.toml`, embedded: the lowest config layer.
    pub default_config: &'static str,
    /// Builds the full application router from the shared state; an
    /// error when the config lacks an upstream a route calls.
    pub app: fn(AppState) -> Result<Router, ConfigError>,
    /// The route the demo's ready-to-paste `curl` line calls.
    pub demo_path: &'static str,
    /// The REST API's OpenAPI document from these endpoint files, for
    /// `/openapi.json` and `--print-openapi`.
    pub openapi: fn(&EndpointsConfig) -> Result<ApiDocument, ConfigError>,
    /// The GraphQL schema as SDL, for `--print-schema`.
    pub schema_sdl: fn() -> String,
    /// Starts built-in upstreams for `--demo`; `None` in a build without
    /// them (production images), where `--demo` is refused.
    pub demo: Option<DemoStart>,
}

/// Built-in upstreams for `--demo`, supplied by a BFF crate's `demo`
/// feature, so the gateway itself ships no demo data.
pub trait Demo: Send {
    /// Points `config` at the demo's upstreams and trusts the demo's own
    /// fresh signing secret.
    fn configure(&self, config: &mut Config);
    /// Signs development tokens `config` accepts: the banner's, and
    /// `GET /demo/token`'s.
    fn token_mint(&self, config: &Config) -> Arc<dyn TokenMint>;
}

/// A [`Demo`] starting.
pub type DemoFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Box<dyn Demo>, String>> + Send>>;

/// Starts a [`Demo`].
pub type DemoStart = fn() -> DemoFuture;

/// Runs the binary; returns 1 on a start-up error, 2 on a usage error.
pub fn main(spec: BffSpec) -> ExitCode {
    let args = match Args::parse(std::env::args_os().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{}: {message}\n\n{}", spec.name, usage(spec.name));
            return ExitCode::from(2);
        }
    };
    if args.help {
        print!("{}", usage(spec.name));
        return ExitCode::SUCCESS;
    }
    if args.print_schema {
        print!("{}", (spec.schema_sdl)());
        return ExitCode::SUCCESS;
    }
    if args.print_openapi {
        return match (spec.openapi)(&EndpointsConfig::default()) {
            Ok(document) => {
                let _ = std::io::stdout().write_all(document.text());
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("{}: {error}", spec.name);
                ExitCode::FAILURE
            }
        };
    }
    let config = match Config::load_unvalidated(&ConfigSources {
        defaults_toml: spec.default_config,
        file: args.config.as_deref(),
        env: true,
        overrides_toml: None,
    }) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{}: {error}", spec.name);
            return ExitCode::FAILURE;
        }
    };
    let development = args.demo || config.profile == Profile::Development;
    let format = config.telemetry.log_format.unwrap_or(if development {
        LogFormat::Text
    } else {
        LogFormat::Json
    });
    if let Err(message) = telemetry::init_logging(&config.telemetry, format) {
        eprintln!("{}: {message}", spec.name);
        return ExitCode::FAILURE;
    }
    // Installed before the runtime starts and dropped after it has
    // stopped: the exporter's client is a blocking one.
    let _export = match &config.telemetry.otlp_endpoint {
        Some(endpoint) => {
            match otel::install(spec.name, endpoint, config.telemetry.sampling_ratio.get()) {
                Ok(guard) => Some(guard),
                Err(message) => {
                    eprintln!("{}: {message}", spec.name);
                    return ExitCode::FAILURE;
                }
            }
        }
        None => None,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("{}: cannot start the runtime: {error}", spec.name);
            return ExitCode::FAILURE;
        }
    };
    if args.check {
        let checked = runtime.block_on(async { assemble(spec, config, None).map(drop) });
        return match checked {
            Ok(()) => {
                println!("{}: configuration OK", spec.name);
                ExitCode::SUCCESS
            }
            Err(message) => {
                eprintln!("{}: {message}", spec.name);
                ExitCode::FAILURE
            }
        };
    }
    let result = runtime.block_on(run(spec, args, config));
    // Background tasks (the limiter's pruner, demo upstreams) stop here,
    // before the exporter flushes.
    drop(runtime);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{}: {message}", spec.name);
            ExitCode::FAILURE
        }
    }
}

async fn run(spec: BffSpec, args: Args, mut config: Config) -> Result<(), String> {
    let demo = if args.demo {
        let start = spec.demo.ok_or_else(|| {
            format!(
                "this build of {} has no --demo (it was built without the `demo` feature)",
                spec.name
            )
        })?;
        Some(start().await?)
    } else {
        None
    };
    let mint = match &demo {
        Some(demo) => Some(apply_demo(&mut config, demo.as_ref())?),
        None => None,
    };
    let listen = config.listen;
    let drain_timeout = config.http.drain_timeout;
    let drain_delay = config.http.drain_delay;
    let http = config.http.clone();
    let Assembled { state, app, tls } = assemble(spec, config, mint.clone())?;
    let app = AppHandle::new(app);
    let mut triggers = Triggers::start(
        args.config.as_deref(),
        state.config().endpoints.dir.as_deref(),
    )?;
    for name in state.upstreams().untaken() {
        tracing::warn!(upstream = %name, "upstreams.{name} is configured but no route calls it");
    }
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| format!("config key `listen`: cannot listen on {listen}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(bff = spec.name, %local, tls = tls.is_some(), "listening");
    if let Some(mint) = &mint {
        print_demo_banner(spec, local, mint.as_ref());
    }

    let (signalled_tx, signalled_rx) = oneshot::channel::<()>();
    let shutdown = {
        let state = state.clone();
        async move {
            shutdown_signal().await;
            // Readiness fails first; the listener keeps accepting while load
            // balancers notice, then closes and in-flight requests finish.
            state.start_draining();
            tracing::info!(?drain_delay, "shutting down: readiness now fails");
            tokio::time::sleep(drain_delay).await;
            tracing::info!("closing the listener: finishing in-flight requests");
            let _ = signalled_tx.send(());
        }
    };
    let drain_deadline = async move {
        if signalled_rx.await.is_ok() {
            tokio::time::sleep(drain_timeout).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    let reloads = async {
        let mut served = state.clone();
        while let Some(cause) = triggers.next().await {
            let source = ConfigSource {
                spec,
                file: args.config.as_deref(),
                demo: demo.as_deref(),
            };
            if let Some(next) = reload(&source, &served, &app, &cause) {
                served = next;
            }
        }
        std::future::pending::<()>().await;
    };
    tokio::select! {
        served = serve(listener, app.clone(), &http, tls, shutdown) => served.map_err(|e| format!("server error: {e}"))?,
        () = drain_deadline => tracing::warn!(?drain_timeout, "drain timeout: closing remaining connections"),
        () = reloads => {}
    }
    drop(demo);
    Ok(())
}

/// Where a reload reads the configuration from: what the start read.
struct ConfigSource<'a> {
    spec: BffSpec,
    file: Option<&'a std::path::Path>,
    demo: Option<&'a dyn Demo>,
}

/// Reloads the configuration and the endpoint files after `cause`: parses
/// and checks everything, builds the state and app that succeed `served`
/// and swaps the app in (requests in flight finish on the old one). A
/// reload that fails changes nothing: each error is logged and kept for
/// `/readyz`. Returns the new state when it is served.
fn reload(
    source: &ConfigSource<'_>,
    served: &AppState,
    app: &AppHandle,
    cause: &Cause,
) -> Option<AppState> {
    let metrics = served.metrics_shared();
    // Reading files and compiling endpoints takes milliseconds; keep them
    // off the runtime's other tasks.
    let built = tokio::task::block_in_place(|| succeed(source, served));
    match built {
        Ok((state, router)) => {
            for key in restart_only_changes(served.config(), state.config()) {
                tracing::warn!(key, "changed, but takes effect only after a restart");
            }
            app.swap(router);
            state.reloads().succeeded(state.generation());
            state.route_limiters().retain_since(state.generation());
            metrics.config_reloaded(true);
            tracing::info!(
                generation = state.generation(),
                ?cause,
                "configuration reloaded"
            );
            Some(state)
        }
        Err(error) => {
            for line in error.lines() {
                tracing::error!(
                    error = line,
                    ?cause,
                    "configuration reload refused: the served configuration stays"
                );
            }
            served.reloads().failed(error);
            metrics.config_reloaded(false);
            None
        }
    }
}

/// The state and app a reloaded configuration builds after `served`.
fn succeed(source: &ConfigSource<'_>, served: &AppState) -> Result<(AppState, Router), String> {
    let mut config = Config::load_unvalidated(&ConfigSources {
        defaults_toml: source.spec.default_config,
        file: source.file,
        env: true,
        overrides_toml: None,
    })
    .map_err(|e| e.to_string())?;
    if let Some(demo) = source.demo {
        // The demo's upstreams and signing key stay those it started with.
        apply_demo(&mut config, demo)?;
    }
    config.validate().map_err(|e| e.to_string())?;
    let state = served.succeeding(config).map_err(|e| e.to_string())?;
    let app = build_app(source.spec, &state)?;
    Ok((state, app))
}

/// The keys whose change a reload cannot apply: the listener, TLS and the
/// logs are set up once, at start.
fn restart_only_changes(before: &Config, after: &Config) -> Vec<&'static str> {
    let same = |a: serde_json::Result<serde_json::Value>,
                b: serde_json::Result<serde_json::Value>| {
        matches!((a, b), (Ok(a), Ok(b)) if a == b)
    };
    let (b, a) = (&before.http, &after.http);
    let mut changed = Vec::new();
    if before.listen != after.listen {
        changed.push("listen");
    }
    if !same(
        serde_json::to_value(&before.tls),
        serde_json::to_value(&after.tls),
    ) {
        changed.push("tls");
    }
    if !same(
        serde_json::to_value(&before.telemetry),
        serde_json::to_value(&after.telemetry),
    ) {
        changed.push("telemetry");
    }
    let listener = |h: &crate::config::HttpConfig| {
        serde_json::to_value((
            h.max_connections,
            h.max_connections_per_ip,
            h.header_read_timeout,
            h.keep_alive_timeout,
            h.max_headers,
            h.max_header_bytes,
            &h.trusted_proxies,
            h.drain_delay,
            h.drain_timeout,
        ))
    };
    if !same(listener(b), listener(a)) {
        changed.push("http (connection limits and timers)");
    }
    changed
}

/// What `--demo` does to the loaded config: refuses token keys it would
/// override, points the upstreams at the demo's, trusts its signing key,
/// switches to the development profile, and moves a default listen
/// address that would be reachable from other hosts to loopback (one the
/// file or environment chose, such as `0.0.0.0` in a container, is kept).
/// Returns the demo's token signer.
pub fn apply_demo(config: &mut Config, demo: &dyn Demo) -> Result<Arc<dyn TokenMint>, String> {
    refuse_own_token_keys(config)?;
    demo.configure(config);
    config.profile = Profile::Development;
    if config.listen.ip().is_unspecified() && !config.listen_is_chosen {
        config.listen.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    Ok(demo.token_mint(config))
}

/// A BFF built from its config, ready to serve.
pub struct Assembled {
    /// The shared state: clients, keys, limiters, metrics.
    pub state: AppState,
    /// Every route with the layer stack.
    pub app: Router,
    /// The TLS acceptor when `tls` is configured.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

impl std::fmt::Debug for Assembled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Assembled")
            .field("state", &self.state)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

/// Everything start-up checks before it listens, in the same order: the
/// config's rules across keys, the TLS files, keys and clients, then the
/// routes (an upstream a route calls must be configured). `--check` and
/// the deploy tests run exactly this, so a config they accept is one the
/// binary starts with. Must run inside a Tokio runtime.
pub fn assemble(
    spec: BffSpec,
    config: Config,
    mint: Option<Arc<dyn TokenMint>>,
) -> Result<Assembled, String> {
    config.validate().map_err(|e| e.to_string())?;
    let tls = crate::tls::acceptor(&config.tls).map_err(|e| e.to_string())?;
    // `GET /demo/token` hands out tokens to whoever asks: only on loopback.
    let serve_tokens = config.listen.ip().is_loopback();
    let mut state = AppState::new(spec.name, config).map_err(|e| e.to_string())?;
    if let Some(mint) = mint.filter(|_| serve_tokens) {
        state = state.with_token_mint(mint);
    }
    let app = build_app(spec, &state)?;
    Ok(Assembled { state, app, tls })
}

/// The BFF's app on `state`. Two routes on one path and method (an
/// endpoint file declaring a route a Rust handler serves) make the router
/// panic as it is built: that is an error here, so a reload that brings
/// one in is refused instead of ending the process.
fn build_app(spec: BffSpec, state: &AppState) -> Result<Router, String> {
    let built =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (spec.app)(state.clone())));
    match built {
        Ok(app) => app.map_err(|e| e.to_string()),
        Err(panic) => {
            let why = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("a route could not be added");
            Err(format!("the routes conflict: {why}"))
        }
    }
}

/// `--demo` signs its own tokens: a key source set by the file or the
/// environment would be overridden, so it is refused instead.
fn refuse_own_token_keys(config: &Config) -> Result<(), String> {
    let auth = &config.auth;
    for (set, key) in [
        (auth.hs256_secret.is_some(), "hs256_secret"),
        (auth.public_key_pem.is_some(), "public_key_pem"),
        (auth.jwks_url.is_some(), "jwks_url"),
    ] {
        if set {
            return Err(format!(
                "--demo signs its own development tokens, so it does not use auth.{key} \
                 (BFF_AUTH__{}): unset it, or run without --demo",
                key.to_uppercase()
            ));
        }
    }
    Ok(())
}

fn print_demo_banner(spec: BffSpec, local: SocketAddr, mint: &dyn TokenMint) {
    let (sub, scope) = mint.defaults();
    let (token, lifetime) = mint.mint(sub, scope);
    let hours = lifetime / 3600;
    let tokens = if local.ip().is_loopback() {
        format!("http://{local}/demo/token?sub=u2&scope= (any demo user, any scope)")
    } else {
        format!(
            "off: the demo listens on {}, beyond this machine, so it hands out no tokens",
            local.ip()
        )
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "\n{name} is running in demo mode on http://{local} with built-in upstreams.\n\
         Development token (user {sub}, scope {scope}, valid {hours} h):\n\n{token}\n\n\
         GraphQL:   http://{local}/graphql (GraphiQL when opened in a browser)\n\
         Orders:    POST http://{local}/orders (scope orders:write, an Idempotency-Key)\n\
         Tokens:    {tokens}\n\
         Status:    http://{local}/status (live: upstreams, routes, limits)\n\
         OpenAPI:   http://{local}/openapi.json (every REST route; its TypeScript is in openapi/)\n\
         Readiness: http://{local}/readyz\n\n\
         Try:\n\ncurl -s -H 'Authorization: Bearer {token}' http://{local}{path}\n",
        name = spec.name,
        path = spec.demo_path,
    );
    let _ = out.flush();
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
