//! The pages a person opens, in a real browser: the system Chromium,
//! headless, driven over WebDriver by `fantoccini` through `chromedriver`
//! (both installed by `scripts/setup`). GraphiQL renders from the binary's
//! own assets, runs `{ me { name } }` with the demo token it starts with,
//! and its docs pane lists `Query`; the status page lists every upstream
//! and shows a circuit turning open when the test breaks that upstream; a
//! person logs in through the OpenID provider's own pages and the app
//! reads the dashboard with the session cookie it cannot see.
//! A screenshot of each page is kept in `target/browser-screenshots/`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::{Bff, TestApp};
use bff_testkit::{Fault, Service};
use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Bounded waits: a page renders in well under this on a slow CI machine.
const PATIENCE: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(100);

/// A chromedriver process and a headless Chromium session on it; both end
/// with the test.
struct Browser {
    client: Option<Client>,
    driver: Child,
    profile: PathBuf,
}

impl Browser {
    async fn start(name: &str) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver runs (bash scripts/setup installs it)");
        let profile =
            std::env::temp_dir().join(format!("bff-browser-{}-{name}-{port}", std::process::id()));
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium(),
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1400,900",
                    format!("--user-data-dir={}", profile.display()),
                ],
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let mut builder = ClientBuilder::rustls().expect("TLS roots");
        builder.capabilities(capabilities);
        let mut waited = Duration::ZERO;
        let client = loop {
            match builder.connect(&url).await {
                Ok(client) => break client,
                // chromedriver is still starting.
                Err(_) if waited < PATIENCE => {
                    tokio::time::sleep(POLL).await;
                    waited += POLL;
                }
                Err(error) => panic!("no WebDriver session on {url}: {error}"),
            }
        };
        Self {
            client: Some(client),
            driver,
            profile,
        }
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("session open")
    }

    /// Waits until `script` (a function body returning a value) returns
    /// something truthy; returns it.
    async fn wait_for(&self, what: &str, script: &str) -> Value {
        let mut waited = Duration::ZERO;
        loop {
            let value = self
                .client()
                .execute(script, Vec::new())
                .await
                .unwrap_or(Value::Null);
            let truthy = match &value {
                Value::Null | Value::Bool(false) => false,
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return value;
            }
            assert!(waited < PATIENCE, "waited {PATIENCE:?} for {what}");
            tokio::time::sleep(POLL).await;
            waited += POLL;
        }
    }

    /// Saves a screenshot as `target/browser-screenshots/<name>.png`.
    async fn screenshot(&self, name: &str) {
        let png = self.client().screenshot().await.expect("screenshot");
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/browser-screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot directory");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("screenshot written");
    }

    async fn close(mut self) {
        if let Some(client) = self.client.take() {
            let _ = client.close().await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Debian's Chromium binary.
fn chromium() -> &'static str {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|path| std::path::Path::new(path).exists())
        .expect("Chromium is installed (bash scripts/setup installs it)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphiql_renders_runs_a_query_with_the_demo_token_and_lists_query_in_its_docs() {
    let app = TestApp::builder(Bff::Web)
        .config("profile = \"development\"")
        .demo_tokens()
        .spawn()
        .await;
    let browser = Browser::start("graphiql").await;
    browser
        .client()
        .goto(&format!("{}/graphql", app.base))
        .await
        .expect("page opens");
    browser
        .wait_for(
            "the query editor",
            "return document.querySelector('.graphiql-query-editor .CodeMirror') !== null",
        )
        .await;
    // The headers start with a working token: the schema loads (no 401),
    // which the docs pane needs.
    let headers = browser
        .wait_for(
            "the demo token in the headers",
            "return [...document.querySelectorAll('.graphiql-editor-tool .CodeMirror')] \
               .map(e => e.CodeMirror.getValue()).find(v => v.includes('Bearer ey')) ?? null",
        )
        .await;
    assert!(
        headers
            .as_str()
            .is_some_and(|h| h.contains("Authorization"))
    );
    browser
        .client()
        .find(Locator::Css(".graphiql-execute-button"))
        .await
        .expect("the run button")
        .click()
        .await
        .expect("clicked");
    let result = browser
        .wait_for(
            "the result",
            "const r = document.querySelector('.result-window .CodeMirror'); \
             return r && r.CodeMirror.getValue().includes('Ada Lovelace') ? r.CodeMirror.getValue() : null",
        )
        .await;
    let result: Value =
        serde_json::from_str(result.as_str().expect("text")).expect("the result is JSON");
    assert_eq!(
        result["data"],
        json!({"me": {"name": "Ada Lovelace"}}),
        "{result}"
    );
    assert!(result["errors"].is_null(), "{result}");
    browser.screenshot("graphiql-result").await;

    browser
        .client()
        .find(Locator::Css(
            ".graphiql-sidebar button[aria-label='Show Documentation Explorer']",
        ))
        .await
        .expect("the docs button")
        .click()
        .await
        .expect("clicked");
    browser
        .wait_for(
            "Query in the docs pane",
            "const d = document.querySelector('.graphiql-doc-explorer'); \
             return d && d.innerText.includes('Query') ? d.innerText : null",
        )
        .await;
    browser.screenshot("graphiql-docs").await;
    // The page's assets and its GraphQL requests (the schema, the query)
    // all came from this BFF.
    let (_, _, status) = crate::support::json_body(app.get("/status.json", None).await).await;
    assert!(
        status["routes"]["/graphql"]["count"].as_u64() >= Some(2),
        "{status}"
    );
    assert!(
        status["routes"]["/graphiql/{file}"]["count"].as_u64() >= Some(5),
        "{status}"
    );
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_shows_every_upstream_and_a_circuit_turning_open() {
    let app = TestApp::builder(Bff::Web)
        .config(
            "[upstreams.orders.retry]\nmax_retries = 0\n\
             [upstreams.orders.breaker]\nconsecutive_failures = 3\nopen_for = \"1m\"",
        )
        .spawn()
        .await;
    let token = app.token("u1", "");
    assert_eq!(app.dashboard(&token).await.status(), StatusCode::OK);
    let browser = Browser::start("status").await;
    browser
        .client()
        .goto(&format!("{}/status", app.base))
        .await
        .expect("page opens");
    let circuits = "const rows = [...document.querySelectorAll('#upstreams tr[data-upstream]')]; \
         return rows.length ? Object.fromEntries(rows.map(r => [r.dataset.upstream, r.dataset.circuit])) : null";
    let before = browser.wait_for("the upstreams table", circuits).await;
    assert_eq!(
        before,
        json!({"notifications": "closed", "orders": "closed", "users": "closed"})
    );
    browser.screenshot("status-healthy").await;

    app.fault(
        Service::Orders,
        Fault {
            status: Some(StatusCode::SERVICE_UNAVAILABLE),
            ..Fault::default()
        },
    );
    for _ in 0..3 {
        app.dashboard(&token).await;
    }
    let open = "const r = document.querySelector('#upstreams tr[data-upstream=\"orders\"]'); \
         return r && r.dataset.circuit === 'open' ? r.innerText : null";
    let row = browser
        .wait_for("orders' circuit open on the page", open)
        .await;
    assert!(row.as_str().is_some_and(|r| r.contains("open")), "{row}");
    let degraded = browser
        .wait_for(
            "the degraded count",
            "const t = document.querySelector('#counts').innerText; \
             return t.includes('degraded: orders') ? t : null",
        )
        .await;
    assert!(degraded.as_str().is_some_and(|t| t.contains("orders")));
    browser.screenshot("status-orders-open").await;
    browser.close().await;
}

#[tokio::test]
async fn a_person_logs_in_through_the_providers_pages_and_the_app_reads_the_dashboard() {
    let flow =
        crate::token_handler::Flow::start_on("localhost", Duration::from_secs(3600), "").await;
    let browser = Browser::start("login").await;
    // The app sends the person to log in, to come back to one of its pages.
    browser
        .client()
        .goto(&format!("{}/auth/login?returnTo=/status", flow.base))
        .await
        .expect("page opens");
    browser
        .wait_for(
            "the provider's login form",
            "return document.querySelector('input[name=login]') ? true : null",
        )
        .await;
    browser.screenshot("login-provider").await;
    let client = browser.client();
    let login = client
        .find(Locator::Css("input[name=login]"))
        .await
        .expect("login field");
    login.send_keys("u1").await.expect("typed");
    client
        .find(Locator::Css("input[name=password]"))
        .await
        .expect("password field")
        .send_keys("any password")
        .await
        .expect("typed");
    client
        .find(Locator::Css("button[type=submit]"))
        .await
        .expect("sign-in button")
        .click()
        .await
        .expect("signed in");
    browser
        .wait_for(
            "the provider's consent page",
            "return document.querySelector('input[name=prompt][value=consent]') ? true : null",
        )
        .await;
    client
        .find(Locator::Css("button[type=submit]"))
        .await
        .expect("continue button")
        .click()
        .await
        .expect("consented");
    browser
        .wait_for(
            "back on the app's page",
            "return location.pathname === '/status' && document.querySelector('#upstreams tr') ? location.href : null",
        )
        .await;
    // The session cookie is HttpOnly: the page's scripts cannot read it.
    let cookies = client
        .execute("return document.cookie", Vec::new())
        .await
        .expect("cookies");
    assert!(
        !cookies.as_str().unwrap_or_default().contains("bff-session"),
        "{cookies}"
    );
    // The app's code calls the API as the README shows.
    let dashboard = client
        .execute_async(
            "const done = arguments[arguments.length - 1]; \
             fetch('/user-dashboard', {credentials: 'include', headers: {'X-CSRF': '1'}}) \
               .then(r => r.json().then(body => done({status: r.status, body}))) \
               .catch(e => done({error: String(e)}));",
            Vec::new(),
        )
        .await
        .expect("the fetch ran");
    assert_eq!(dashboard["status"], 200, "{dashboard}");
    assert_eq!(dashboard["body"]["profile"]["id"], "u1", "{dashboard}");
    let user = client
        .execute_async(
            "const done = arguments[arguments.length - 1]; \
             fetch('/auth/user', {headers: {'X-CSRF': '1'}}).then(r => r.json()).then(done);",
            Vec::new(),
        )
        .await
        .expect("the fetch ran");
    assert_eq!(user["claims"]["name"], "Test user u1", "{user}");
    browser.screenshot("login-back-in-the-app").await;
    browser.close().await;
}
