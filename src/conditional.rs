//! Conditional GETs for composed replies: a strong `ETag` of the body,
//! `304 Not Modified` without a body when `If-None-Match` names it (a
//! mobile app polling a screen pays a few header bytes, not the reply).
//!
//! The tag is computed on the identity body, below compression. A reply
//! the compression layer then encodes gets the weak form (`W/"..."`,
//! RFC 9110 §8.8.3): the encoded bytes are not the ones that were hashed.
//! `If-None-Match` uses the weak comparison (§13.1.2), so either form
//! matches. Only bodies of a known, bounded size are hashed (every
//! composed reply is one buffer); a streamed body passes untouched.

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use http_body::Body as _;

/// Replies larger than this are not hashed: a composed reply is far
/// smaller, and hashing must stay a small part of the request's cost.
const MAX_TAGGED_BYTES: u64 = 4 * 1024 * 1024;

/// What a request asks of its reply's validator: taken before the route
/// runs, applied to what it answers ([`Self::tag_and_match`]).
#[derive(Debug)]
pub struct Conditional {
    /// Only GETs are tagged.
    get: bool,
    if_none_match: Option<HeaderValue>,
}

impl Conditional {
    pub fn of(request: &Request) -> Self {
        let get = request.method() == Method::GET;
        Self {
            get,
            if_none_match: get
                .then(|| request.headers().get(IF_NONE_MATCH).cloned())
                .flatten(),
        }
    }

    /// Tags a `200` GET reply and answers `304` when the client already
    /// holds it.
    pub async fn tag_and_match(self, response: Response) -> Response {
        if !self.get {
            return response;
        }
        tag_and_match(self.if_none_match, response).await
    }
}

async fn tag_and_match(if_none_match: Option<HeaderValue>, response: Response) -> Response {
    let exact = response.body().size_hint().exact();
    if response.status() != StatusCode::OK
        || response.headers().contains_key(ETAG)
        || exact.is_none_or(|len| len > MAX_TAGGED_BYTES)
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        // A body that fails while being read fails the same way unread.
        parts.status = StatusCode::INTERNAL_SERVER_ERROR;
        return Response::from_parts(parts, Body::empty());
    };
    let tag = strong_tag(&bytes);
    if if_none_match.is_some_and(|header| matches(&header, &tag)) {
        parts.status = StatusCode::NOT_MODIFIED;
        parts.headers.remove(CONTENT_TYPE);
        parts.headers.remove(CONTENT_LENGTH);
        parts.headers.insert(ETAG, tag);
        return Response::from_parts(parts, Body::empty());
    }
    parts.headers.insert(ETAG, tag);
    Response::from_parts(parts, Body::from(bytes))
}

/// Outside the compression layer: an encoded reply's tag becomes weak.
pub async fn weaken_when_encoded(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    if response.headers().contains_key(CONTENT_ENCODING)
        && let Some(tag) = response.headers().get(ETAG)
        && !tag.as_bytes().starts_with(b"W/")
    {
        let mut weak = Vec::with_capacity(tag.len() + 2);
        weak.extend_from_slice(b"W/");
        weak.extend_from_slice(tag.as_bytes());
        if let Ok(weak) = HeaderValue::from_bytes(&weak) {
            response.headers_mut().insert(ETAG, weak);
        }
    }
    response
}

/// `"<32 hex digits>"`: the body's 128-bit XXH3 hash.
///
/// A validator only has to change when the body does and be the same on
/// every replica and after restarts; it guards the caller's own replies,
/// so nobody gains from forging a collision. XXH3 is that, at a small
/// fraction of SHA-256's cost on a CPU without SHA extensions (a tenth of
/// a dashboard's instructions there; with them, a few microseconds).
fn strong_tag(body: &[u8]) -> HeaderValue {
    let digest = xxhash_rust::xxh3::xxh3_128(body).to_be_bytes();
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut tag = [b'"'; 34];
    for (i, byte) in digest.iter().enumerate() {
        tag[1 + 2 * i] = HEX[usize::from(byte >> 4)];
        tag[2 + 2 * i] = HEX[usize::from(byte & 0x0f)];
    }
    HeaderValue::from_bytes(&tag).expect("quoted hex is a valid header value")
}

/// Whether an `If-None-Match` header names `tag`, by the weak comparison.
fn matches(header: &HeaderValue, tag: &HeaderValue) -> bool {
    let Ok(header) = header.to_str() else {
        return false;
    };
    let wanted = opaque(tag.to_str().unwrap_or_default());
    header.trim() == "*"
        || header
            .split(',')
            .any(|candidate| opaque(candidate) == wanted)
}

/// An entity tag without its weakness mark: `W/"x"` and `"x"` are one.
fn opaque(tag: &str) -> &str {
    let tag = tag.trim();
    tag.strip_prefix("W/").unwrap_or(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_compares_weakly_and_takes_lists_and_star() {
        let tag = strong_tag(b"{}");
        let text = tag.to_str().expect("ascii").to_owned();
        for header in [
            text.clone(),
            format!("W/{text}"),
            format!("\"other\", {text}"),
            "*".to_owned(),
        ] {
            assert!(
                matches(&HeaderValue::from_str(&header).expect("valid"), &tag),
                "{header}"
            );
        }
        assert!(!matches(&HeaderValue::from_static("\"other\""), &tag));
        assert_ne!(strong_tag(b"{}"), strong_tag(b"[]"));
        assert_eq!(text.len(), 34);
    }
}
