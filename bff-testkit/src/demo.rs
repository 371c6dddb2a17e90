//! The `--demo` hook: the demo services started in-process, the config
//! pointed at them, and a fresh signing secret for this run only.

use std::time::Duration;

use bff_core::config::{Config, Secret};
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
        config.auth.public_key_pem = None;
        config.auth.jwks_url = None;
    }

    fn token(&self, config: &Config) -> (String, String) {
        let mut claims = DevClaims::new("u1", "orders:write", Duration::from_secs(24 * 3600));
        claims.iss = config.auth.issuer.clone();
        claims.aud = config.auth.audience.clone();
        (
            token::hs256(&self.secret, &claims),
            "user u1, scope orders:write, valid 24 h".to_owned(),
        )
    }
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
