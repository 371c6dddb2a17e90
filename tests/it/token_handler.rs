//! The web BFF as a token handler, against a real OpenID provider: the
//! npm `oidc-provider` on loopback (`tests/oidc-provider/`), its login and
//! consent pages driven over HTTP like a browser would, cookies kept per
//! origin. Login with PKCE and state, the callback, `/auth/user`, API
//! calls with the session cookie and `X-CSRF`, refresh, logout, and the
//! refusals: no `X-CSRF`, a tampered or replayed state, a `returnTo` off
//! the site. (The attack suite's cases are in `attacks.rs`, on these
//! helpers.)

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bff_testkit::Service;
use bff_testkit::processes::{OidcClient, OidcProvider, free_port};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, HeaderMap, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

use crate::support::{Bff, TestApp, assert_error_body};

pub const CLIENT_SECRET: &str = "token-handler-test-client-secret";
pub const SESSION_COOKIE: &str = "__Host-bff-session";

/// A BFF with the token handler on, and its provider.
#[derive(Debug)]
pub struct Flow {
    pub app: TestApp,
    pub provider: OidcProvider,
    /// `http://127.0.0.1:<port>`, the BFF's origin.
    pub base: String,
}

impl Flow {
    /// Access tokens living `access_ttl`.
    pub async fn start(access_ttl: Duration) -> Self {
        Self::start_with(access_ttl, "").await
    }

    /// The session config of a BFF of this flow (its redirect URL is the
    /// first BFF's), with `extra` TOML.
    fn config(&self, extra: &str) -> String {
        session_config(&self.provider, &self.base, extra)
    }

    /// With `extra` TOML for the BFF.
    pub async fn start_with(access_ttl: Duration, extra: &str) -> Self {
        Self::start_on("127.0.0.1", access_ttl, extra).await
    }

    /// With the app's origin on `host` (Chromium keeps `Secure` cookies
    /// on `http://localhost`, not on `http://127.0.0.1`).
    pub async fn start_on(host: &str, access_ttl: Duration, extra: &str) -> Self {
        let port = free_port().expect("a free port");
        let base = format!("http://{host}:{port}");
        let provider = OidcProvider::start(&OidcClient {
            client_id: "bff-web",
            client_secret: CLIENT_SECRET,
            redirect_uri: &format!("{base}/auth/callback"),
            post_logout_redirect_uri: &format!("{base}/"),
            access_token_ttl: access_ttl,
        })
        .expect("oidc-provider starts (bash scripts/setup installs it)");
        let app = TestApp::builder(Bff::Web)
            .port(port)
            .config(&session_config(&provider, &base, extra))
            .spawn()
            .await;
        Self {
            app,
            provider,
            base,
        }
    }
}

/// `[session]` for a BFF whose app is at `base`.
fn session_config(provider: &OidcProvider, base: &str, extra: &str) -> String {
    format!(
        "{extra}\n[session.oidc]\nissuer = \"{}\"\nclient_id = \"bff-web\"\n\
         client_secret = \"{CLIENT_SECRET}\"\nredirect_url = \"{base}/auth/callback\"\n\
         post_logout_redirect_url = \"{base}/\"\n\
         scopes = [\"openid\", \"profile\", \"offline_access\", \"orders:write\"]",
        provider.issuer()
    )
}

/// A browser enough for these tests: no redirects followed, cookies kept
/// per origin (host and port), as `Set-Cookie` sets and deletes them.
#[derive(Debug, Clone, Default)]
pub struct Browser {
    jar: Arc<Mutex<HashMap<String, BTreeMap<String, String>>>>,
    http: reqwest::Client,
}

/// A reply: status, headers, body.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.body))
    }

    pub fn location(&self) -> String {
        self.headers
            .get(LOCATION)
            .and_then(|l| l.to_str().ok())
            .unwrap_or_else(|| panic!("no Location ({}): {}", self.status, self.body))
            .to_owned()
    }

    /// The `Set-Cookie` line for cookie `name`.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|line| line.starts_with(&format!("{name}=")))
            .map(str::to_owned)
    }
}

fn origin(url: &str) -> String {
    let url = url::Url::parse(url).expect("an absolute URL");
    url.origin().ascii_serialization()
}

impl Browser {
    pub fn new() -> Self {
        Self {
            jar: Arc::default(),
            http: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
        }
    }

    /// The cookie `name` of `origin`'s jar.
    pub fn cookie(&self, origin_url: &str, name: &str) -> Option<String> {
        self.jar
            .lock()
            .expect("jar")
            .get(&origin(origin_url))
            .and_then(|cookies| cookies.get(name).cloned())
    }

    /// Puts a cookie in `origin`'s jar (what an attacker might plant).
    pub fn plant(&self, origin_url: &str, name: &str, value: &str) {
        self.jar
            .lock()
            .expect("jar")
            .entry(origin(origin_url))
            .or_default()
            .insert(name.to_owned(), value.to_owned());
    }

    pub async fn get(&self, url: &str, headers: &[(&str, &str)]) -> Page {
        self.send(self.http.get(url), url, headers).await
    }

    pub async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> Page {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let request = self
            .http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(request, url, &[]).await
    }

    pub async fn post_json(&self, url: &str, body: &Value, headers: &[(&str, &str)]) -> Page {
        let request = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_string());
        self.send(request, url, headers).await
    }

    async fn send(
        &self,
        mut request: reqwest::RequestBuilder,
        url: &str,
        headers: &[(&str, &str)],
    ) -> Page {
        let key = origin(url);
        let cookies: Option<String> = self.jar.lock().expect("jar").get(&key).map(|cookies| {
            cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        });
        if let Some(cookies) = cookies.filter(|c| !c.is_empty()) {
            request = request.header(COOKIE, cookies);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("an answer");
        let status = response.status();
        let headers = response.headers().clone();
        {
            let mut jar = self.jar.lock().expect("jar");
            let cookies = jar.entry(key).or_default();
            for line in headers
                .get_all(SET_COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
            {
                let Some((name, rest)) = line.split_once('=') else {
                    continue;
                };
                let value = rest.split(';').next().unwrap_or_default();
                if value.is_empty() || line.contains("Max-Age=0") {
                    cookies.remove(name);
                } else {
                    cookies.insert(name.to_owned(), value.to_owned());
                }
            }
        }
        let body = response.text().await.expect("a body");
        Page {
            status,
            headers,
            body,
        }
    }

    /// From the provider's authorization URL to the BFF's callback URL:
    /// follows the provider's redirects and fills in its login (as
    /// `user`) and consent pages. Returns the callback URL, not yet
    /// visited.
    pub async fn through_the_provider(&self, authorize: &str, user: &str) -> String {
        let mut url = authorize.to_owned();
        for _ in 0..12 {
            if url.contains("/auth/callback") {
                return url;
            }
            let page = self.get(&url, &[]).await;
            if page.status.is_redirection() {
                url = absolute(&url, &page.location());
                continue;
            }
            assert_eq!(page.status, StatusCode::OK, "{url}: {}", page.body);
            let action = between(&page.body, "action=\"", "\"")
                .unwrap_or_else(|| panic!("no form at {url}: {}", page.body));
            let prompt = between(&page.body, "name=\"prompt\" value=\"", "\"")
                .unwrap_or_else(|| panic!("no prompt at {url}: {}", page.body));
            let target = absolute(&url, &action);
            let submitted = match prompt.as_str() {
                "login" => {
                    self.post_form(
                        &target,
                        &[("prompt", "login"), ("login", user), ("password", "any")],
                    )
                    .await
                }
                _ => self.post_form(&target, &[("prompt", &prompt)]).await,
            };
            assert!(
                submitted.status.is_redirection(),
                "{target}: {} {}",
                submitted.status,
                submitted.body
            );
            url = absolute(&target, &submitted.location());
        }
        panic!("the provider never sent the browser back");
    }

    /// The whole login: `/auth/login?returnTo=`, the provider, the
    /// callback. Returns the callback's reply.
    pub async fn log_in(&self, flow: &Flow, user: &str, return_to: &str) -> Page {
        let start = self
            .get(
                &format!("{}/auth/login?returnTo={return_to}", flow.base),
                &[],
            )
            .await;
        assert_eq!(start.status, StatusCode::FOUND, "{}", start.body);
        let callback = self.through_the_provider(&start.location(), user).await;
        self.get(&callback, &[]).await
    }

    /// Logs in as `user` (back to `/`) and returns the session cookie's id.
    pub async fn session(&self, flow: &Flow, user: &str) -> String {
        let landed = self.log_in(flow, user, "/").await;
        assert_eq!(landed.status, StatusCode::OK, "{}", landed.body);
        self.cookie(&flow.base, SESSION_COOKIE)
            .expect("a session cookie")
    }
}

fn absolute(base: &str, reference: &str) -> String {
    url::Url::parse(base)
        .and_then(|base| base.join(reference))
        .expect("a URL")
        .to_string()
}

fn between(text: &str, start: &str, end: &str) -> Option<String> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(text[from..to].replace("&amp;", "&"))
}

/// The API's CSRF header, and the app's origin for unsafe methods.
pub fn csrf(flow: &Flow) -> [(&'static str, String); 2] {
    [("x-csrf", "1".to_owned()), ("origin", flow.base.clone())]
}

pub fn headers<'a>(pairs: &'a [(&'static str, String)]) -> Vec<(&'a str, &'a str)> {
    pairs.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test]
async fn a_browser_logs_in_with_pkce_and_calls_the_api_with_its_cookie_alone() {
    let flow = Flow::start(Duration::from_secs(3600)).await;
    let browser = Browser::new();
    let start = browser
        .get(&format!("{}/auth/login?returnTo=/orders", flow.base), &[])
        .await;
    assert_eq!(start.status, StatusCode::FOUND);
    let authorize = url::Url::parse(&start.location()).expect("a URL");
    assert_eq!(origin(authorize.as_str()), flow.provider.issuer());
    let query: HashMap<String, String> = authorize.query_pairs().into_owned().collect();
    assert_eq!(query["code_challenge_method"], "S256");
    assert!(query["code_challenge"].len() >= 43);
    assert!(query["state"].len() >= 16 && query["nonce"].len() >= 16);
    assert_eq!(query["response_type"], "code");
    assert!(query["scope"].split(' ').any(|s| s == "openid"));
    let login_cookie = start
        .set_cookie("__Host-bff-login")
        .expect("a login cookie");
    assert!(login_cookie.contains("HttpOnly") && login_cookie.contains("SameSite=Lax"));

    let callback = browser.through_the_provider(authorize.as_str(), "u1").await;
    let landed = browser.get(&callback, &[]).await;
    assert_eq!(landed.status, StatusCode::OK, "{}", landed.body);
    // A same-site page continues to returnTo, so the strict cookie goes along.
    assert!(landed.body.contains("url=/orders"), "{}", landed.body);
    let session = landed.set_cookie(SESSION_COOKIE).expect("a session cookie");
    for attribute in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(session.contains(attribute), "{attribute}: {session}");
    }
    assert!(!session.contains("Domain"), "{session}");
    // Nothing in what the browser got is a token.
    let id = browser.cookie(&flow.base, SESSION_COOKIE).expect("kept");
    assert!(!landed.body.contains("eyJ") && id.len() >= 43);

    let csrf = csrf(&flow);
    let user = browser
        .get(&format!("{}/auth/user", flow.base), &headers(&csrf))
        .await;
    assert_eq!(user.status, StatusCode::OK, "{}", user.body);
    let user = user.json();
    assert_eq!(user["sub"], "u1");
    assert_eq!(user["claims"]["name"], "Test user u1");
    assert!(user["sessionExpiresAt"].as_u64() > Some(0));

    let calls = flow.app.calls(Service::Users);
    let dashboard = browser
        .get(&format!("{}/user-dashboard", flow.base), &headers(&csrf))
        .await;
    assert_eq!(dashboard.status, StatusCode::OK, "{}", dashboard.body);
    assert_eq!(dashboard.json()["profile"]["id"], "u1");
    let sent = flow.app.upstreams.control().requests(Service::Users);
    let to_users = &sent[calls];
    assert_eq!(to_users.headers["x-user-id"], "u1");
    let authorization = to_users.headers["authorization"].to_str().expect("ascii");
    assert!(authorization.starts_with("Bearer ") && authorization.len() > 20);
    assert!(
        to_users.headers.get("cookie").is_none(),
        "the cookie went upstream"
    );

    // Without X-CSRF: refused, and nothing is called.
    let total = flow.app.total_calls();
    let refused = browser
        .get(&format!("{}/user-dashboard", flow.base), &[])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_error_body(&refused.json(), "forbidden");
    assert_eq!(flow.app.total_calls(), total);

    // GraphQL takes the same session.
    let graphql = browser
        .post_json(
            &format!("{}/graphql", flow.base),
            &json!({"query": "{ me { id } }"}),
            &headers(&csrf),
        )
        .await;
    assert_eq!(graphql.json()["data"]["me"]["id"], "u1", "{}", graphql.body);
}

#[tokio::test]
async fn concurrent_requests_share_one_refresh_of_an_expiring_token() {
    // Tokens of 32 s are refreshed 30 s before they expire: 2 s from now.
    let flow = Flow::start(Duration::from_secs(32)).await;
    let browser = Browser::new();
    browser.session(&flow, "u2").await;
    let csrf = csrf(&flow);
    let first = browser
        .get(&format!("{}/user-dashboard", flow.base), &headers(&csrf))
        .await;
    assert_eq!(first.status, StatusCode::OK);
    let before = flow.app.calls(Service::Users);
    let token_of = |i: usize| {
        flow.app.upstreams.control().requests(Service::Users)[i].headers["authorization"]
            .to_str()
            .expect("ascii")
            .to_owned()
    };
    let original = token_of(before - 1);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let url = format!("{}/user-dashboard", flow.base);
    let replies = {
        let sent = headers(&csrf);
        futures_util::future::join_all((0..5).map(|_| browser.get(&url, &sent))).await
    };
    for reply in &replies {
        // A second refresh with the same (rotated) refresh token would
        // have been refused by the provider, and this a 401.
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
    let after: Vec<String> = (before..flow.app.calls(Service::Users))
        .map(token_of)
        .collect();
    // Concurrent identical GETs share upstream calls: at least one went.
    assert!(!after.is_empty());
    assert!(after.iter().all(|t| *t == after[0]), "{after:?}");
    assert_ne!(after[0], original, "the token was not refreshed");
}

#[tokio::test]
async fn logout_ends_the_session_and_names_the_providers_end_session_url() {
    let flow = Flow::start(Duration::from_secs(3600)).await;
    let browser = Browser::new();
    let old = browser.session(&flow, "u3").await;
    let csrf = csrf(&flow);
    // Logout is a mutation: X-CSRF and the app's origin.
    let forged = browser
        .post_json(
            &format!("{}/auth/logout", flow.base),
            &json!({}),
            &[("x-csrf", "1"), ("origin", "https://evil.example")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let out = browser
        .post_json(
            &format!("{}/auth/logout", flow.base),
            &json!({}),
            &headers(&csrf),
        )
        .await;
    assert_eq!(out.status, StatusCode::OK, "{}", out.body);
    let logout_url = out.json()["logoutUrl"].as_str().expect("a URL").to_owned();
    assert!(logout_url.starts_with(&format!("{}/session/end?", flow.provider.issuer())));
    assert!(
        logout_url.contains("id_token_hint=") && logout_url.contains("post_logout_redirect_uri=")
    );
    assert!(
        browser.cookie(&flow.base, SESSION_COOKIE).is_none(),
        "cookie not cleared"
    );
    // The old cookie, kept by someone, no longer works.
    browser.plant(&flow.base, SESSION_COOKIE, &old);
    let after = browser
        .get(&format!("{}/user-dashboard", flow.base), &headers(&csrf))
        .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    let user = browser
        .get(&format!("{}/auth/user", flow.base), &headers(&csrf))
        .await;
    assert_eq!(user.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_tampered_or_replayed_state_is_a_bad_request() {
    let flow = Flow::start(Duration::from_secs(3600)).await;
    let browser = Browser::new();
    let start = browser.get(&format!("{}/auth/login", flow.base), &[]).await;
    let login_cookie = browser
        .cookie(&flow.base, "__Host-bff-login")
        .expect("a login");
    let callback = browser.through_the_provider(&start.location(), "u4").await;
    let tampered = callback.replace("state=", "state=x");
    let refused = browser.get(&tampered, &[]).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_error_body(&refused.json(), "bad_request");
    assert!(refused.set_cookie(SESSION_COOKIE).is_none());

    // A login that worked, then its callback replayed with its login cookie.
    let browser = Browser::new();
    let start = browser.get(&format!("{}/auth/login", flow.base), &[]).await;
    let login_cookie_2 = browser
        .cookie(&flow.base, "__Host-bff-login")
        .expect("a login");
    assert_ne!(login_cookie, login_cookie_2);
    let callback = browser.through_the_provider(&start.location(), "u4").await;
    assert_eq!(browser.get(&callback, &[]).await.status, StatusCode::OK);
    let replayer = Browser::new();
    replayer.plant(&flow.base, "__Host-bff-login", &login_cookie_2);
    let replayed = replayer.get(&callback, &[]).await;
    assert_eq!(replayed.status, StatusCode::BAD_REQUEST);
    assert!(replayed.set_cookie(SESSION_COOKIE).is_none());
}

#[tokio::test]
async fn without_a_session_the_auth_user_route_is_unauthorized_and_bearer_tokens_still_work() {
    let flow = Flow::start(Duration::from_secs(3600)).await;
    let browser = Browser::new();
    let csrf = csrf(&flow);
    let user = browser
        .get(&format!("{}/auth/user", flow.base), &headers(&csrf))
        .await;
    assert_eq!(user.status, StatusCode::UNAUTHORIZED);
    assert_error_body(&user.json(), "unauthorized");
    let with_token = flow.app.dashboard(&flow.app.token("u1", "")).await;
    assert_eq!(with_token.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_refresh_that_fails_ends_the_session() {
    // Tokens of 31 s are refreshed 30 s before they expire: 1 s from now.
    let flow = Flow::start(Duration::from_secs(31)).await;
    let browser = Browser::new();
    browser.session(&flow, "u6").await;
    let csrf = csrf(&flow);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let Flow {
        app,
        provider,
        base,
    } = flow;
    // The provider is gone: the refresh cannot happen.
    drop(provider);
    let total = app.total_calls();
    let reply = browser
        .get(&format!("{base}/user-dashboard"), &headers(&csrf))
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    assert_error_body(&reply.json(), "unauthorized");
    assert_eq!(app.total_calls(), total, "an upstream was called");
    let user = browser
        .get(&format!("{base}/auth/user"), &headers(&csrf))
        .await;
    assert_eq!(user.status, StatusCode::UNAUTHORIZED);
}

/// 32 bytes in base64: the sessions' key in Redis, for these tests only.
const ENCRYPTION_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

#[tokio::test]
async fn sessions_in_redis_serve_every_replica_sealed_and_refresh_once_across_them() {
    let redis = bff_testkit::processes::RedisServer::start().expect("redis-server starts");
    let shared = format!(
        "[shared_state]\nredis_url = \"{}\"\ncommand_timeout = \"500ms\"\n\
         [session]\nencryption_key = \"{ENCRYPTION_KEY}\"",
        redis.url()
    );
    // Tokens of 32 s are refreshed 30 s before they expire: 2 s from now.
    let a = Flow::start_with(Duration::from_secs(32), &shared).await;
    let b = TestApp::builder(Bff::Web)
        .config(&a.config(&shared))
        .spawn()
        .await;
    let b_base = format!("http://{}", b.addr());
    let browser = Browser::new();
    let id = browser.session(&a, "u7").await;
    // The same browser reaching another replica (behind one load balancer).
    browser.plant(&b_base, SESSION_COOKIE, &id);
    let csrf = csrf(&a);
    let me = browser
        .get(&format!("{b_base}/auth/user"), &headers(&csrf))
        .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.json()["sub"], "u7");

    // In Redis: one record, under the hash of the id, sealed.
    let mut connection = redis::Client::open(redis.url())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connects");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("bff-web:session:*")
        .query_async(&mut connection)
        .await
        .expect("KEYS");
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(!keys[0].contains(&id));
    let sealed: Vec<u8> = redis::cmd("GET")
        .arg(&keys[0])
        .query_async(&mut connection)
        .await
        .expect("GET");
    let dashboard = browser
        .get(&format!("{b_base}/user-dashboard"), &headers(&csrf))
        .await;
    assert_eq!(dashboard.status, StatusCode::OK, "{}", dashboard.body);
    let sent = b.upstreams.control().requests(Service::Users);
    let bearer = sent.last().expect("a call").headers["authorization"]
        .to_str()
        .expect("ascii")
        .trim_start_matches("Bearer ")
        .to_owned();
    let window = |needle: &[u8]| sealed.windows(needle.len()).any(|w| w == needle);
    assert!(!window(bearer.as_bytes()), "the access token is in clear");
    assert!(
        !window(b"u7") && !window(b"refresh"),
        "the record is in clear"
    );

    // Past the refresh time, requests on both replicas at once: one
    // refresh (a second use of the rotated refresh token would fail).
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let sent_headers = headers(&csrf);
    let urls: Vec<String> = (0..6)
        .map(|i| {
            let base = if i % 2 == 0 { &a.base } else { &b_base };
            format!("{base}/user-dashboard")
        })
        .collect();
    let replies =
        futures_util::future::join_all(urls.iter().map(|url| browser.get(url, &sent_headers)))
            .await;
    for reply in &replies {
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
    let after = |app: &TestApp| {
        let calls = app.upstreams.control().requests(Service::Users);
        calls.last().expect("a call").headers["authorization"]
            .to_str()
            .expect("ascii")
            .to_owned()
    };
    assert_eq!(after(&a.app), after(&b));
    assert_ne!(after(&b), format!("Bearer {bearer}"), "not refreshed");

    // Logout on one replica ends the session on all.
    let out = browser
        .post_json(
            &format!("{b_base}/auth/logout"),
            &json!({}),
            &headers(&csrf),
        )
        .await;
    assert_eq!(out.status, StatusCode::OK, "{}", out.body);
    let gone = browser
        .get(&format!("{}/auth/user", a.base), &headers(&csrf))
        .await;
    assert_eq!(gone.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_mobile_bff_refuses_browser_sessions_and_the_web_one_checks_their_config() {
    let load = |spec: bff_core::run::BffSpec, toml: &str| {
        let config = bff_core::config::Config::load_unvalidated(&bff_core::config::ConfigSources {
            defaults_toml: spec.default_config,
            file: None,
            env: false,
            overrides_toml: Some(toml),
        })
        .expect("loads");
        bff_core::run::assemble(spec, config, None).err()
    };
    let upstreams = "[upstreams.users]\nurl = \"http://127.0.0.1:9\"\n\
         [upstreams.orders]\nurl = \"http://127.0.0.1:9\"\n\
         [upstreams.notifications]\nurl = \"http://127.0.0.1:9\"\n\
         [auth]\nhs256_secret = \"token-handler-test-secret-32-bytes-long\"\n";
    let oidc = "[session.oidc]\nissuer = \"https://id.example.com\"\nclient_id = \"app\"\n\
         client_secret = \"s\"\nredirect_url = \"https://app.example.com/auth/callback\"\n";
    let refused = load(bff_mobile::SPEC, &format!("{upstreams}{oidc}")).expect("refused");
    assert!(refused.contains("session.oidc"), "{refused}");
    assert!(load(bff_web::SPEC, &format!("{upstreams}{oidc}")).is_none());
    // Without the openid scope there is no ID token to check.
    let no_openid = format!("{upstreams}{oidc}scopes = [\"profile\"]\n");
    let refused = load(bff_web::SPEC, &no_openid).expect("refused");
    assert!(refused.contains("session.oidc.scopes"), "{refused}");
    // Sessions in Redis need their sealing key.
    let in_redis =
        format!("{upstreams}{oidc}[shared_state]\nredis_url = \"redis://127.0.0.1:9\"\n");
    let refused = load(bff_web::SPEC, &in_redis).expect("refused");
    assert!(refused.contains("session.encryption_key"), "{refused}");
}

#[tokio::test]
async fn a_provider_that_rotated_its_signing_key_is_read_again() {
    let mut flow = Flow::start(Duration::from_secs(3600)).await;
    let browser = Browser::new();
    browser.session(&flow, "u8").await;
    // A new key (and nothing of its old state): the BFF's copy of the key
    // set no longer has the key the next ID token is signed with.
    flow.provider.restart().expect("oidc-provider restarts");
    let again = Browser::new();
    let landed = again.log_in(&flow, "u8", "/").await;
    assert_eq!(landed.status, StatusCode::OK, "{}", landed.body);
    let me = again
        .get(&format!("{}/auth/user", flow.base), &headers(&csrf(&flow)))
        .await;
    assert_eq!(me.json()["sub"], "u8");
}
