//! The graphql-http audit suite (npm `graphql-http`, `auditServer`) against
//! live BFFs: zero MUST failures. Needs Node.js and `npm ci` in
//! `tests/graphql-http` (the test command does both).

use crate::support::{Bff, TestApp, node};
use serde_json::Value;

/// Runs the audit against `app` and returns (MUST failures, other warnings).
async fn audit(app: &TestApp) -> (Vec<String>, Vec<String>) {
    let url = format!("{}/graphql", app.base);
    let token = app.token("u1", "orders:write");
    let stdout = node::run(
        "graphql-http",
        "graphql-http",
        "audit.mjs",
        vec![url, token],
    )
    .await;
    let results: Vec<Value> = serde_json::from_slice(&stdout).expect("audit prints JSON");
    assert!(
        results.len() > 40,
        "the audit ran only {} checks",
        results.len()
    );
    let describe = |r: &Value| format!("{} {} ({})", r["id"], r["name"], r["reason"]);
    let must_failures = results
        .iter()
        .filter(|r| {
            r["status"] != "ok" && r["name"].as_str().is_some_and(|n| n.starts_with("MUST"))
        })
        .map(describe)
        .collect();
    let warnings = results
        .iter()
        .filter(|r| r["status"] != "ok")
        .map(describe)
        .collect();
    (must_failures, warnings)
}

/// The audit sends dozens of requests at once: a quota that lets them in.
const GENEROUS_QUOTA: &str = "[rate_limit]\nper_second = 1000\nburst = 1000";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_in_production_has_no_must_failures() {
    let app = TestApp::builder(Bff::Web)
        .config(GENEROUS_QUOTA)
        .spawn()
        .await;
    let (must_failures, warnings) = audit(&app).await;
    for warning in &warnings {
        eprintln!("bff-web audit warning: {warning}");
    }
    assert!(
        must_failures.is_empty(),
        "MUST failures:\n{}",
        must_failures.join("\n")
    );
}

/// Mobile in production runs only its trusted operations, and the audit
/// sends ad-hoc documents; the audit checks the HTTP layer, which is the
/// same in both profiles, so it runs against the development profile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mobile_has_no_must_failures() {
    let app = TestApp::builder(Bff::Mobile)
        .config(&format!("profile = \"development\"\n{GENEROUS_QUOTA}"))
        .spawn()
        .await;
    let (must_failures, warnings) = audit(&app).await;
    for warning in &warnings {
        eprintln!("bff-mobile audit warning: {warning}");
    }
    assert!(
        must_failures.is_empty(),
        "MUST failures:\n{}",
        must_failures.join("\n")
    );
}
