//! The HTTP edge checks that run before a request is routed (SPEC §10): `Origin` and `Host`
//! against DNS rebinding, the declared body size, duplicated signature headers.

use std::net::{IpAddr, SocketAddr};

use hyper::header::{HeaderMap, CONTENT_LENGTH, HOST, ORIGIN};
use hyper::StatusCode;

use super::status::EdgeRefusal;

/// What the edge allows, fixed at start from `[serve]`.
pub struct Edge {
    bound: SocketAddr,
    /// Origins as `scheme://host[:port]`, lowercase, no trailing slash.
    allowed_origins: Vec<String>,
    /// `host[:port]` of each allowed origin: a browser on an allowed origin names it in `Host`
    /// when the proxy is reached under that name.
    allowed_hosts: Vec<String>,
}

const LOOPBACK_NAMES: &[&str] = &["localhost", "127.0.0.1", "[::1]"];

impl Edge {
    pub fn new(bound: SocketAddr, allowed_origins: &[String]) -> Edge {
        let allowed_origins: Vec<String> = allowed_origins
            .iter()
            .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
            .collect();
        let allowed_hosts = allowed_origins
            .iter()
            .filter_map(|o| o.split_once("://").map(|(_, h)| h.to_owned()))
            .collect();
        Edge {
            bound,
            allowed_origins,
            allowed_hosts,
        }
    }

    fn loopback(&self) -> bool {
        self.bound.ip().is_loopback()
    }

    /// `Origin` (absent: not a browser, fine) and `Host`. A page on an evil origin, or one that
    /// rebound an evil name to our loopback address, is refused before anything else happens.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), EdgeRefusal> {
        let refuse = |event, rule, reason: String| {
            Err(EdgeRefusal::new(StatusCode::FORBIDDEN, event, rule, reason).alert())
        };
        let mut origins = headers.get_all(ORIGIN).iter();
        if let Some(origin) = origins.next() {
            let text = origin.to_str().unwrap_or("").trim_end_matches('/');
            let o = text.to_ascii_lowercase();
            if origins.next().is_some() || !self.origin_allowed(&o) {
                return refuse(
                    "http.origin_rejected",
                    "serve.allowed_origins",
                    format!("Origin {text:?} is not allowed; add it to [serve] allowed_origins if this browser origin may call the proxy"),
                );
            }
        }
        let mut hosts = headers.get_all(HOST).iter();
        let host = hosts.next().and_then(|h| h.to_str().ok()).unwrap_or("");
        if hosts.next().is_some() || !self.host_allowed(&host.to_ascii_lowercase()) {
            return refuse(
                "http.host_rejected",
                "serve.host",
                format!("Host {host:?} is not a name this proxy is served under (DNS rebinding defence); use the address it is bound to or list the origin in [serve] allowed_origins"),
            );
        }
        Ok(())
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        if self.allowed_origins.iter().any(|o| o == origin) {
            return true;
        }
        // A loopback-bound proxy serves local tools: any loopback origin is the same machine.
        match origin.split_once("://") {
            Some(("http" | "https", hostport)) if self.loopback() => {
                LOOPBACK_NAMES.contains(&split_port(hostport).0)
            }
            _ => false,
        }
    }

    fn host_allowed(&self, host: &str) -> bool {
        if host.is_empty() {
            return false;
        }
        if self.allowed_hosts.iter().any(|h| h == host) {
            return true;
        }
        let (name, port) = split_port(host);
        let port_ok = port.is_none_or(|p| p == self.bound.port().to_string());
        if self.loopback() {
            return port_ok && LOOPBACK_NAMES.contains(&name);
        }
        let ip = name.trim_start_matches('[').trim_end_matches(']');
        if ip.parse::<IpAddr>().ok() == Some(self.bound.ip()) {
            return port_ok;
        }
        // Bound to all interfaces with no origins configured (a sidecar reached by a service
        // name the proxy cannot know): any name. Rebinding targets loopback-bound services,
        // and a sidecar that is exposed should list its origins.
        self.bound.ip().is_unspecified() && self.allowed_origins.is_empty()
    }
}

/// `host:port` → (`host`, `Some(port)`); IPv6 literals keep their brackets.
fn split_port(hostport: &str) -> (&str, Option<&str>) {
    if let Some(end) = hostport.rfind(']') {
        let (h, rest) = hostport.split_at(end + 1);
        return (h, rest.strip_prefix(':'));
    }
    match hostport.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (hostport, None),
    }
}

/// The declared `Content-Length` when it exceeds `max`: refuse before reading a byte.
pub fn declared_too_large(headers: &HeaderMap, max: usize) -> Option<u64> {
    let len: u64 = headers
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    (len > max as u64).then_some(len)
}

/// A request that repeats one of the `X-MCP-*` signature headers is ambiguous (which one was
/// verified?) and is refused rather than guessed at.
pub fn duplicate_signature_header(headers: &HeaderMap) -> Option<&'static str> {
    use crate::sig::http_scheme::{
        HEADER_KEY_ID, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP,
    };
    [
        HEADER_KEY_ID,
        HEADER_TIMESTAMP,
        HEADER_NONCE,
        HEADER_SIGNATURE,
    ]
    .into_iter()
    .find(|h| headers.get_all(*h).iter().count() > 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(pairs: &[(hyper::header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn loopback_bind() {
        let e = Edge::new("127.0.0.1:8080".parse().unwrap(), &[]);
        assert!(e.check(&headers(&[(HOST, "127.0.0.1:8080")])).is_ok());
        assert!(e.check(&headers(&[(HOST, "localhost:8080")])).is_ok());
        assert!(e.check(&headers(&[(HOST, "localhost")])).is_ok());
        assert!(e.check(&headers(&[(HOST, "evil.example:8080")])).is_err());
        assert!(e.check(&headers(&[(HOST, "localhost:9999")])).is_err());
        assert!(e.check(&headers(&[])).is_err());
        let ok_origin = [(HOST, "localhost:8080"), (ORIGIN, "http://localhost:3000")];
        assert!(e.check(&headers(&ok_origin)).is_ok());
        let evil = [(HOST, "localhost:8080"), (ORIGIN, "https://evil.example")];
        assert!(e.check(&headers(&evil)).is_err());
        let null = [(HOST, "localhost:8080"), (ORIGIN, "null")];
        assert!(e.check(&headers(&null)).is_err());
    }

    #[test]
    fn listed_origins_and_public_bind() {
        let e = Edge::new(
            "0.0.0.0:8080".parse().unwrap(),
            &["https://app.example.com/".into()],
        );
        let ok = [
            (HOST, "app.example.com"),
            (ORIGIN, "https://App.example.com"),
        ];
        assert!(e.check(&headers(&ok)).is_ok());
        assert!(e.check(&headers(&[(HOST, "other.example")])).is_err());
        let open = Edge::new("0.0.0.0:8080".parse().unwrap(), &[]);
        assert!(open.check(&headers(&[(HOST, "warden.svc:8080")])).is_ok());
        let local = [(HOST, "warden.svc"), (ORIGIN, "http://localhost")];
        assert!(open.check(&headers(&local)).is_err(), "not loopback-bound");
    }

    #[test]
    fn content_length_cap() {
        let h = headers(&[(CONTENT_LENGTH, "104857600")]);
        assert_eq!(declared_too_large(&h, 4 << 20), Some(104857600));
        assert_eq!(
            declared_too_large(&headers(&[(CONTENT_LENGTH, "10")]), 100),
            None
        );
    }
}
