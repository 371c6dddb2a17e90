//! The `--demo` hook: the demo services started in-process, the config
//! pointed at them, and a fresh signing secret for this run only.

use std::sync::Arc;
use std::time::Duration;

use bff_core::config::{Config, Secret};
use bff_core::demo_token::TokenMint;
use bff_core::run::{Demo, DemoFuture};

use crate::DemoUpstreams;
use crate::token::{self, DevClaims};

/// The demo upstreams of one `--demo` run, and the secret its tokens use.
#[derive(Debug)]
struct Running {
    upstreams: DemoUpstreams,
    secret: String,
}

impl Demo for Running {
    fn configure(&self, config: &mut Config) {
        self.upstreams.point_config_at_self(config);
        config.auth.hs256_secret = Some(Secret::new(self.secret.clone()));
    }

    fn token_mint(&self, config: &Config) -> Arc<dyn TokenMint> {
        Arc::new(DemoMint {
            secret: self.secret.clone(),
            issuer: config.auth.issuer.clone(),
            audience: config.auth.audience.clone(),
        })
    }
}

/// Signs this run's development tokens, with the `iss` and `aud` the
/// config requires.
#[derive(Debug)]
struct DemoMint {
    secret: String,
    issuer: Option<String>,
    audience: Option<String>,
}

/// How long a development token is valid.
const TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

impl TokenMint for DemoMint {
    fn mint(&self, sub: &str, scope: &str) -> (String, u64) {
        let mut claims = DevClaims::new(sub, scope, TOKEN_LIFETIME);
        claims.iss = self.issuer.clone();
        claims.aud = self.audience.clone();
        (
            token::hs256(&self.secret, &claims),
            TOKEN_LIFETIME.as_secs(),
        )
    }

    fn defaults(&self) -> (&str, &str) {
        ("u1", "orders:write")
    }
}

/// A signer of development tokens with `secret`, as `--demo` attaches to
/// serve `GET /demo/token` (for tests that need that route).
pub fn token_mint(secret: &str) -> Arc<dyn TokenMint> {
    Arc::new(DemoMint {
        secret: secret.to_owned(),
        issuer: None,
        audience: None,
    })
}

/// Starts the demo services: the BFF crates' `BffSpec::demo`.
pub fn start() -> DemoFuture {
    Box::pin(async {
        let upstreams = DemoUpstreams::start()
            .await
            .map_err(|e| format!("cannot start the demo upstreams: {e}"))?;
        Ok(Box::new(Running {
            upstreams,
            secret: token::random_secret(),
        }) as Box<dyn Demo>)
    })
}
