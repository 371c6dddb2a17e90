//! The token handler's two cookies, written and read.
//!
//! The session cookie: `__Host-` prefixed by default, `Secure`,
//! `HttpOnly`, `SameSite=Strict`, `Path=/`, no `Domain`. The login cookie
//! (the login in progress): the same but `SameSite=Lax`, because the
//! provider's redirect back to `/auth/callback` is a cross-site navigation,
//! on which a strict cookie is not sent; it lives ten minutes.

use axum::http::header::COOKIE;
use axum::http::{HeaderMap, HeaderValue};

/// `SameSite` of a cookie.
#[derive(Debug, Clone, Copy)]
pub enum SameSite {
    Strict,
    Lax,
}

/// A `Set-Cookie` value for `name=value` with the attributes above;
/// `max_age` `Some(0)` deletes it. Always `Secure`: browsers keep such
/// cookies on `https` and on `http://localhost`.
pub fn set(name: &str, value: &str, same_site: SameSite, max_age: Option<u64>) -> HeaderValue {
    let same_site = match same_site {
        SameSite::Strict => "Strict",
        SameSite::Lax => "Lax",
    };
    let mut text = format!("{name}={value}; Path=/; HttpOnly; SameSite={same_site}; Secure");
    if let Some(seconds) = max_age {
        text.push_str(&format!("; Max-Age={seconds}"));
    }
    // The name is checked at config load and the value is base64url.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn find<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"'))
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_cookie_among_others_and_across_headers() {
        let mut headers = HeaderMap::new();
        headers.append(
            COOKIE,
            HeaderValue::from_static("a=1; __Host-bff-session=abc"),
        );
        headers.append(COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(find(&headers, "__Host-bff-session"), Some("abc"));
        assert_eq!(find(&headers, "b"), Some("2"));
        assert_eq!(find(&headers, "bff-session"), None);
    }

    #[test]
    fn the_session_cookie_has_every_attribute() {
        let value = set("__Host-bff-session", "abc", SameSite::Strict, None);
        assert_eq!(
            value,
            "__Host-bff-session=abc; Path=/; HttpOnly; SameSite=Strict; Secure"
        );
        assert!(!value.to_str().expect("ascii").contains("Domain"));
    }
}
