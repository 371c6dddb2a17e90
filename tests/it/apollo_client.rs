//! Apollo Client's persisted-queries link (versions 3 and 4, hashes over
//! POST and over GET) against a live bff-web: a new hash is answered
//! `PersistedQueryNotFound`, the link re-sends the query once, the hash
//! alone works from then on, and the link never turns persisted queries
//! off. Needs Node.js and `npm ci` in `tests/apollo-client` (the test
//! command's `scripts/setup` does both).

use crate::support::{Bff, TestApp, node};
use serde_json::Value;

/// What one request of the link looked like: method, whether it carried
/// the query text, and the reply's status.
fn requests(operation: &Value) -> Vec<(String, bool, u64)> {
    operation["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .map(|r| {
            (
                r["method"].as_str().expect("method").to_owned(),
                r["hasQuery"].as_bool().expect("hasQuery"),
                r["status"].as_u64().expect("status"),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apollo_clients_persisted_queries_link_works_over_post_and_get() {
    let app = TestApp::spawn(Bff::Web).await;
    let url = format!("{}/graphql", app.base);
    let token = app.token("u1", "");
    let stdout = node::run(
        "apollo-client",
        "@apollo/client",
        "apq.mjs",
        vec![url, token],
    )
    .await;
    let runs: Vec<Value> = serde_json::from_slice(&stdout).expect("apq.mjs prints JSON");
    let seen: Vec<(String, String)> = runs
        .iter()
        .map(|r| (r["client"].to_string(), r["method"].to_string()))
        .collect();
    assert_eq!(seen.len(), 4, "{seen:?}");
    for run in &runs {
        let context = format!("Apollo Client {} over {}", run["client"], run["method"]);
        let hashed = run["method"].as_str().expect("method").to_owned();
        let operations = run["operations"].as_array().expect("operations");
        assert_eq!(operations.len(), 3, "{context}");
        for operation in operations {
            assert!(operation["error"].is_null(), "{context}: {operation}");
            assert_eq!(
                operation["data"]["me"]["id"], "u1",
                "{context}: {operation}"
            );
        }
        assert_eq!(operations[0]["data"]["me"]["name"], "Ada Lovelace");
        // A new hash: the miss (400 for graphql-response+json, 200 for
        // application/json), then the query text once, by POST.
        for new in [&operations[0], &operations[2]] {
            let sent = requests(new);
            assert_eq!(sent.len(), 2, "{context}: {sent:?}");
            assert_eq!((sent[0].0.as_str(), sent[0].1), (hashed.as_str(), false));
            assert!(matches!(sent[0].2, 200 | 400), "{context}: {sent:?}");
            assert_eq!(sent[1], ("POST".to_owned(), true, 200), "{context}");
        }
        // A known hash: one request, the hash alone.
        assert_eq!(
            requests(&operations[1]),
            [(hashed.clone(), false, 200)],
            "{context}"
        );
    }
}
