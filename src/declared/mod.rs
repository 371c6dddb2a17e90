//! Declared endpoints: composed REST replies written as files a frontend
//! team reads and reviews (`endpoints/*.toml` in a BFF crate), compiled
//! once at load and served behind the same layers as Rust handlers.
//!
//! A file names its route, the upstream calls (each `required` or not,
//! templated from the request and from other calls' replies, batched when
//! it looks up ids), and the reply's shape as a jq expression. See the
//! README's "Declared endpoints" for every key.

mod describe;
mod execute;
mod expr;
mod fast;
mod handler;
mod need;
mod plan;
mod project;
mod read;
pub mod spec;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use serde::{Deserialize, Serialize};

use crate::config::ConfigError;
use crate::server::AppState;
use crate::upstream::contract::Contract;

pub use describe::{Described, describe};
pub use execute::RequestValues;
pub use plan::{DeclaredEndpoint, ServedEndpoint};

/// `[endpoints]`: where the declared endpoint files come from.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EndpointsConfig {
    /// A directory of `*.toml` endpoint files read at start instead of
    /// the ones built into the binary.
    pub dir: Option<PathBuf>,
}

/// An endpoint file: its name and text.
#[derive(Debug, Clone)]
pub struct EndpointFile {
    pub name: String,
    pub text: String,
}

/// The endpoint files to serve: `endpoints.dir` when set, else the ones
/// the BFF embedded at build time (`embedded`: name and text).
pub fn files(
    config: &EndpointsConfig,
    embedded: &[(&str, &str)],
) -> Result<Vec<EndpointFile>, ConfigError> {
    match &config.dir {
        Some(dir) => read_dir(dir),
        None => Ok(embedded
            .iter()
            .map(|(name, text)| EndpointFile {
                name: (*name).to_owned(),
                text: (*text).to_owned(),
            })
            .collect()),
    }
}

/// Every `*.toml` file in `dir`, by name.
fn read_dir(dir: &Path) -> Result<Vec<EndpointFile>, ConfigError> {
    let unreadable = |e: std::io::Error| ConfigError::Invalid {
        key: "endpoints.dir".to_owned(),
        message: format!("cannot read {}: {e}", dir.display()),
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(unreadable)? {
        let path = entry.map_err(unreadable)?.path();
        if path.extension().is_none_or(|e| e != "toml") || !path.is_file() {
            continue;
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = std::fs::read_to_string(&path).map_err(|e| ConfigError::File {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        files.push(EndpointFile { name, text });
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

/// The upstreams' contracts, by upstream name, from `(name, OpenAPI text)`.
pub fn contracts(sources: &[(&str, &str)]) -> Result<BTreeMap<String, Contract>, ConfigError> {
    sources
        .iter()
        .map(|(name, text)| {
            Contract::parse(text)
                .map(|contract| ((*name).to_owned(), contract))
                .map_err(|message| ConfigError::Invalid {
                    key: format!("the OpenAPI contract of upstream `{name}`"),
                    message,
                })
        })
        .collect()
}

/// The declared endpoints of a BFF, compiled: what `/openapi.json`
/// describes and what the routes serve.
#[derive(Debug, Clone)]
pub struct Declared {
    plans: Vec<Arc<DeclaredEndpoint>>,
}

impl Declared {
    /// Reads and compiles the endpoint files: `embedded` (name, text)
    /// unless `config.dir` is set, each call checked against its
    /// upstream's OpenAPI file in `contracts` (upstream name, text).
    /// Every problem in every file at once; two files on one route are
    /// refused.
    pub fn load(
        config: &EndpointsConfig,
        embedded: &[(&str, &str)],
        contracts: &[(&str, &str)],
    ) -> Result<Self, ConfigError> {
        let files = files(config, embedded)?;
        let contracts = self::contracts(contracts)?;
        let mut plans = Vec::new();
        let mut errors = Vec::new();
        let mut routes: BTreeMap<String, String> = BTreeMap::new();
        for file in &files {
            match plan::compile(&file.name, &file.text, &contracts) {
                Ok(plan) => {
                    if let Some(other) = routes.insert(plan.route.clone(), file.name.clone()) {
                        errors.push(ConfigError::Endpoint {
                            file: file.name.clone(),
                            key: "route".to_owned(),
                            message: format!("`{}` is also declared by {other}", plan.route),
                        });
                    }
                    plans.push(Arc::new(plan));
                }
                Err(error) => errors.push(error),
            }
        }
        ConfigError::all(errors)?;
        Ok(Self { plans })
    }

    /// Every endpoint, in file name order.
    pub fn plans(&self) -> &[Arc<DeclaredEndpoint>] {
        &self.plans
    }

    /// The routes serving them, bound to the state's upstreams, to merge
    /// among a BFF's authenticated routes (auth, limits and every shared
    /// layer apply as to any route). An upstream a call names but the
    /// config lacks is an error naming the file and the call.
    pub fn routes(&self, state: &AppState) -> Result<Router<AppState>, ConfigError> {
        let metrics = state.metrics_shared();
        let mut router = Router::new();
        let mut errors = Vec::new();
        for plan in &self.plans {
            match plan::bind(plan.clone(), state) {
                Ok(served) => {
                    if plan.spec.deprecated.is_some() {
                        metrics.prime_deprecated(&plan.route);
                    }
                    router = router.route(
                        &plan.route,
                        handler::method_router(Arc::new(served), metrics.clone()),
                    );
                }
                Err(error) => errors.push(error),
            }
        }
        ConfigError::all(errors)?;
        Ok(router)
    }
}
