//! Which compression a reply gets when the client weighs several equally.
//!
//! tower-http's `CompressionLayer` breaks ties in `Accept-Encoding` towards
//! `zstd`. Some Node fetch clients offer `zstd` beside `br` and `gzip` but
//! cannot decode it, so on a tie this BFF prefers `br` or `gzip`: the
//! request's `zstd` entry is dropped before the compression layer reads
//! the header. A client that ranks `zstd` strictly higher still gets it.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::http::header::ACCEPT_ENCODING;

/// `map_request` function: rewrites `Accept-Encoding` only on a tie that
/// would otherwise pick `zstd`; every other request passes untouched.
pub fn prefer_br_or_gzip_on_ties(mut request: Request) -> Request {
    let Some(value) = request.headers().get(ACCEPT_ENCODING) else {
        return request;
    };
    let Ok(text) = value.to_str() else {
        return request;
    };
    if let Some(rewritten) = without_tied_zstd(text) {
        match HeaderValue::from_str(&rewritten) {
            Ok(value) => {
                request.headers_mut().insert(ACCEPT_ENCODING, value);
            }
            Err(_) => return request,
        }
    }
    request
}

/// Whether the request's `Accept-Encoding` accepts `coding` (by name or
/// `*`) with a weight above zero.
pub fn accepts(headers: &axum::http::HeaderMap, coding: &str) -> bool {
    headers
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(entry)
        .any(|(name, q)| q > 0 && (name.eq_ignore_ascii_case(coding) || name == "*"))
}

/// The header without its `zstd` entry when `br` or `gzip` is accepted
/// with at least `zstd`'s weight; `None` when nothing needs to change.
fn without_tied_zstd(header: &str) -> Option<String> {
    if !header.contains("zstd") && !header.contains("ZSTD") {
        return None;
    }
    let entries: Vec<(&str, u16)> = header.split(',').filter_map(entry).collect();
    let weight = |name: &str| {
        entries
            .iter()
            .filter(|(coding, _)| coding.eq_ignore_ascii_case(name))
            .map(|&(_, q)| q)
            .max()
    };
    let zstd = weight("zstd").filter(|&q| q > 0)?;
    let rival = weight("br").into_iter().chain(weight("gzip")).max()?;
    (rival >= zstd).then(|| {
        header
            .split(',')
            .filter(|item| {
                entry(item).is_none_or(|(coding, _)| !coding.eq_ignore_ascii_case("zstd"))
            })
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(", ")
    })
}

/// One `coding;q=x` entry as its name and weight in thousandths (RFC 9110
/// §12.4.2); `None` for an empty or unreadable entry.
fn entry(item: &str) -> Option<(&str, u16)> {
    let mut parts = item.split(';');
    let coding = parts.next()?.trim();
    if coding.is_empty() {
        return None;
    }
    let mut q = 1000;
    for parameter in parts {
        let (name, value) = parameter.split_once('=')?;
        if name.trim().eq_ignore_ascii_case("q") {
            let value: f32 = value.trim().parse().ok()?;
            if !(0.0..=1.0).contains(&value) {
                return None;
            }
            // Three decimals at most: the product fits in u16.
            q = (value * 1000.0).round() as u16;
        }
    }
    Some((coding, q))
}

#[cfg(test)]
mod tests {
    use super::{accepts, without_tied_zstd};
    use axum::http::{HeaderMap, HeaderValue, header::ACCEPT_ENCODING};

    #[test]
    fn accepts_reads_names_wildcards_and_zero_weights() {
        let headers = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(ACCEPT_ENCODING, HeaderValue::from_static(value));
            headers
        };
        assert!(accepts(&headers("br, GZIP;q=0.5"), "gzip"));
        assert!(accepts(&headers("*"), "gzip"));
        assert!(!accepts(&headers("gzip;q=0, br"), "gzip"));
        assert!(!accepts(&HeaderMap::new(), "gzip"));
    }

    #[test]
    fn a_tie_drops_zstd() {
        assert_eq!(
            without_tied_zstd("gzip, deflate, br, zstd").as_deref(),
            Some("gzip, deflate, br")
        );
        assert_eq!(
            without_tied_zstd("zstd;q=0.8, gzip;q=0.8").as_deref(),
            Some("gzip;q=0.8")
        );
    }

    #[test]
    fn zstd_ranked_higher_or_alone_is_kept() {
        assert_eq!(without_tied_zstd("zstd, gzip;q=0.5"), None);
        assert_eq!(without_tied_zstd("zstd"), None);
        assert_eq!(without_tied_zstd("gzip, br"), None);
        assert_eq!(without_tied_zstd("zstd;q=0, gzip"), None);
    }
}
