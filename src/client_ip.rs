//! Who the client is: the socket's peer, or, when that peer is a trusted
//! proxy, the address the proxies say they forwarded for.
//!
//! `Forwarded` (RFC 7239) and `X-Forwarded-For` are read only from proxies
//! listed in `http.trusted_proxies`; from anyone else they are ignored, so
//! a client cannot pick its own rate-limit key.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, Request};
use axum::http::HeaderMap;
use ipnet::IpNet;

/// The proxies whose `Forwarded` / `X-Forwarded-For` are believed
/// (`http.trusted_proxies`), shared.
#[derive(Debug, Clone)]
pub struct TrustedProxies(pub std::sync::Arc<[IpNet]>);

/// The client's address, as the rate limiter and logs see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// Attaches the request's [`ClientIp`].
pub fn attach(TrustedProxies(trusted): &TrustedProxies, request: &mut Request) {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ConnectInfo(addr)| {
            addr.ip()
        });
    let ip = client_ip(peer, request.headers(), trusted);
    request.extensions_mut().insert(ClientIp(ip));
}

/// The client address for a request from `peer`.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops = forwarded_for(headers).or_else(|| x_forwarded_for(headers));
    let Some(hops) = hops else {
        return peer;
    };
    // Hops are listed client first; each proxy appends the address it saw.
    // Walking back from the nearest, the first untrusted one is the client.
    for hop in hops.iter().rev() {
        match hop {
            Some(ip) if is_trusted(ip) => continue,
            Some(ip) => return *ip,
            // An unknown or obfuscated hop: the client cannot be named.
            None => return peer,
        }
    }
    hops.first().copied().flatten().unwrap_or(peer)
}

/// `X-Forwarded-For: client, proxy1, proxy2` (all such headers, in order).
fn x_forwarded_for(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let mut hops = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let value = value.to_str().ok()?;
        hops.extend(value.split(',').map(|hop| parse_node(hop.trim())));
    }
    (!hops.is_empty()).then_some(hops)
}

/// `Forwarded: for=192.0.2.60;proto=http, for="[2001:db8::1]:4711"`.
fn forwarded_for(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let mut hops = Vec::new();
    for value in headers.get_all("forwarded") {
        let value = value.to_str().ok()?;
        for element in value.split(',') {
            let node = element.split(';').find_map(|pair| {
                let (key, value) = pair.trim().split_once('=')?;
                key.eq_ignore_ascii_case("for")
                    .then(|| value.trim().trim_matches('"'))
            });
            if let Some(node) = node {
                hops.push(parse_node(node));
            }
        }
    }
    (!hops.is_empty()).then_some(hops)
}

/// An address, with or without port or IPv6 brackets.
fn parse_node(node: &str) -> Option<IpAddr> {
    node.parse::<IpAddr>()
        .ok()
        .or_else(|| node.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| node.strip_prefix('[')?.strip_suffix(']')?.parse().ok())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, HeaderValue::from_str(v).expect("header"));
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn headers_from_an_untrusted_peer_are_ignored() {
        let h = headers(&[("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(client_ip(ip("203.0.113.9"), &h, &[]), ip("203.0.113.9"));
    }

    #[test]
    fn the_first_untrusted_hop_from_the_right_is_the_client() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().expect("net")];
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.0.0.2")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &trusted), ip("198.51.100.7"));
        let h = headers(&[(
            "forwarded",
            r#"for=6.6.6.6, for="[2001:db8::1]:4711";proto=https"#,
        )]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &trusted), ip("2001:db8::1"));
        let h = headers(&[("x-forwarded-for", "unknown")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &trusted), ip("10.0.0.1"));
    }
}
