//! The BFFs' OpenAPI documents: the committed `openapi/<bff>.json` is what
//! the code describes, `/openapi.json` serves it without a token, the
//! documents are valid OpenAPI 3.1, and the TypeScript generated from them
//! and from the GraphQL SDL is current and compiles (`tests/openapi/`).

use std::path::{Path, PathBuf};
use std::process::Command;

use bff_core::config::EndpointsConfig;
use bff_core::run::BffSpec;
use bff_testkit::harness::endpoint_dir;
use reqwest::StatusCode;

use crate::support::{Bff, TestApp};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn committed(bff: &str) -> String {
    let path = Path::new(ROOT).join("openapi").join(format!("{bff}.json"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The document `spec` describes for `endpoints`, as text.
fn described(spec: BffSpec, endpoints: &EndpointsConfig) -> String {
    let document = (spec.openapi)(endpoints).expect("the endpoints compile");
    String::from_utf8(document.text().to_vec()).expect("UTF-8")
}

/// Compares a described document with the committed one, naming the fix.
fn check(bff: &str, actual: &str, committed: &str) -> Result<(), String> {
    bff_core::drift::check(
        &format!("openapi/{bff}.json"),
        actual,
        committed,
        &format!(
            "cargo run -q -p {bff} -- --print-openapi > openapi/{bff}.json \
             && npm --prefix tests/openapi run generate"
        ),
    )
}

#[test]
fn the_committed_documents_are_what_the_bffs_describe() {
    for (bff, spec) in [("bff-web", bff_web::SPEC), ("bff-mobile", bff_mobile::SPEC)] {
        let actual = described(spec, &EndpointsConfig::default());
        if let Err(message) = check(bff, &actual, &committed(bff)) {
            panic!("{message}");
        }
    }
}

#[test]
fn a_reply_field_added_without_regenerating_is_reported_with_the_fix() {
    let dashboard = bff_web::ENDPOINTS
        .iter()
        .find(|(name, _)| *name == "user-dashboard.toml")
        .map(|(_, text)| *text)
        .expect("the web dashboard's file");
    let with_field = dashboard.replacen(
        "profile: $users |",
        "nickname: $users.name,\n  profile: $users |",
        1,
    );
    assert_ne!(with_field, dashboard);
    let dir = endpoint_dir(&[("user-dashboard.toml", &with_field)]);
    let config = EndpointsConfig {
        dir: Some(dir.clone()),
    };
    let actual = described(bff_web::SPEC, &config);
    let message = check("bff-web", &actual, &committed("bff-web")).expect_err("drift");
    assert!(
        message.contains("--print-openapi > openapi/bff-web.json"),
        "{message}"
    );
    assert!(
        actual.contains("\"nickname\""),
        "the new field is described"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn openapi_json_is_served_without_a_token_and_can_be_turned_off() {
    let app = TestApp::spawn(Bff::Web).await;
    let reply = app.get("/openapi.json", None).await;
    assert_eq!(reply.status(), StatusCode::OK);
    assert_eq!(reply.headers()["content-type"], "application/json");
    assert_eq!(reply.text().await.expect("body"), committed("bff-web"));

    let app = TestApp::builder(Bff::Mobile)
        .config("[http]\nopenapi = false")
        .spawn()
        .await;
    assert_eq!(
        app.get("/openapi.json", None).await.status(),
        StatusCode::NOT_FOUND
    );
}

/// `node check.mjs <args>` in `tests/openapi`: (success, what it printed).
fn run_checks(args: &[&str]) -> (bool, String) {
    let dir = PathBuf::from(ROOT).join("tests/openapi");
    assert!(
        dir.join("node_modules/openapi-typescript").exists(),
        "run `npm ci --prefix tests/openapi` first (bash scripts/setup does)"
    );
    let output = Command::new("node")
        .arg("check.mjs")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("node runs");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), printed)
}

#[test]
fn the_documents_are_openapi_3_1_and_their_typescript_is_current_and_compiles() {
    let (ok, printed) = run_checks(&[]);
    assert!(ok, "{printed}");
    assert!(printed.contains("openapi checks: ok"), "{printed}");
}

#[test]
fn typescript_not_regenerated_after_a_change_is_reported() {
    // A document with a field its committed TypeScript lacks.
    let web = committed("bff-web").replacen(
        "\"UserDashboardReply\": {\n        \"properties\": {\n",
        "\"UserDashboardReply\": {\n        \"properties\": {\n          \"nickname\": {\"type\": \"string\"},\n",
        1,
    );
    assert_ne!(
        web,
        committed("bff-web"),
        "the web document has a UserDashboardReply"
    );
    let dir = endpoint_dir(&[
        ("bff-web.json", &web),
        ("bff-mobile.json", &committed("bff-mobile")),
    ]);
    let (ok, printed) = run_checks(&["--documents", &dir.display().to_string()]);
    assert!(!ok, "{printed}");
    assert!(
        printed.contains("openapi/bff-web.ts: differs")
            && printed.contains("npm --prefix tests/openapi run generate"),
        "{printed}"
    );
    assert!(!printed.contains("bff-mobile.ts"), "{printed}");
    let _ = std::fs::remove_dir_all(dir);
}
