//! URL argument rules: `url_hosts` (allowed host globs) and
//! `deny_private_addresses` (SSRF: no loopback, private, link-local,
//! metadata or otherwise internal targets).
//!
//! The URL is parsed strictly by hand rather than leniently: anything a
//! WHATWG-style or curl-style parser could read differently from us (spaces,
//! backslashes, userinfo, percent-escapes or non-ASCII in the host, missing
//! `//`) is refused, so the host we judge is the host that gets connected to.
//! Numeric hosts are decoded the way `inet_aton` and browsers do (`127.1`,
//! `2130706433`, `0x7f000001`, `0177.0.0.1`) before classification.
//!
//! Out of scope here, by design: DNS. A public-looking hostname passes even if
//! it resolves (now or after a rebind) to a private address, and redirects are
//! not followed. Those need resolution with address pinning at egress (the
//! upstream server or an egress proxy); this rule catches every literal and
//! well-known internal name without any I/O.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::checks::arg_rules::ArgViolation;
use crate::checks::glob::glob_match_ascii_ci;

/// A parsed URL authority: only what the rules need.
#[derive(Debug, PartialEq, Eq)]
pub struct ParsedUrl<'a> {
    pub scheme: &'a str,
    /// Lower-case host without brackets or trailing dot.
    pub host: String,
    pub port: Option<u16>,
}

/// `Ok(())` when `value` is an http(s) URL whose host matches one of `allowed`
/// (ASCII case-insensitive globs such as `api.github.com`, `*.example.com`).
pub fn url_hosts(value: &str, allowed: &[String]) -> Result<(), ArgViolation> {
    let url = parse_http_url(value).map_err(|r| v("url_hosts", r))?;
    if allowed
        .iter()
        .any(|p| glob_match_ascii_ci(p.trim_end_matches('.'), &url.host))
    {
        return Ok(());
    }
    Err(v(
        "url_hosts",
        format!(
            "URL host is not in the allowed hosts [{}]",
            allowed.join(", ")
        ),
    ))
}

/// `Ok(())` unless `value` (an http(s) URL, or a bare `host[:port]`) targets a
/// private, loopback, link-local, metadata or otherwise internal address.
/// Non-http(s) schemes (`file:`, `gopher:`, `dict:` …) are refused too: they
/// are the classic SSRF amplifiers.
pub fn deny_private_addresses(value: &str) -> Result<(), ArgViolation> {
    const RULE: &str = "deny_private_addresses";
    let host = if value.contains("://") || has_scheme(value) {
        parse_http_url(value).map_err(|r| v(RULE, r))?.host
    } else {
        parse_authority(value).map_err(|r| v(RULE, r))?.0
    };
    match internal_reason(&host) {
        Some(why) => Err(v(
            RULE,
            format!("target is {why}; only public hosts may be reached"),
        )),
        None => Ok(()),
    }
}

fn v(rule: &'static str, reason: String) -> ArgViolation {
    ArgViolation { rule, reason }
}

fn has_scheme(s: &str) -> bool {
    // `mailto:x`, `file:/etc`, `javascript:…` — but not `host:8080`.
    match s.split_once(':') {
        Some((scheme, rest)) => {
            scheme
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                && !rest.chars().all(|c| c.is_ascii_digit() || c == '/')
        }
        None => false,
    }
}

/// Parse an absolute `http`/`https` URL strictly.
pub fn parse_http_url(value: &str) -> Result<ParsedUrl<'_>, String> {
    if let Some(c) = value
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || *c == '\\')
    {
        let what = if c == '\\' {
            "a backslash"
        } else {
            "whitespace or a control character"
        };
        return Err(format!(
            "URL contains {what}; send a single, properly encoded URL"
        ));
    }
    let Some((scheme, rest)) = value.split_once("://") else {
        return Err("not an absolute URL; send http:// or https:// URLs".into());
    };
    let scheme_lc = scheme.to_ascii_lowercase();
    if scheme_lc != "http" && scheme_lc != "https" {
        return Err("URL scheme is not http or https".into());
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (host, port) = parse_authority(&rest[..end])?;
    Ok(ParsedUrl { scheme, host, port })
}

/// Parse `host[:port]` (IPv6 in brackets). Host comes back lower-cased, with a
/// single trailing dot removed.
fn parse_authority(auth: &str) -> Result<(String, Option<u16>), String> {
    if auth.contains('@') {
        return Err(
            "URL carries userinfo ('user@host'); credentials and '@' tricks are not allowed".into(),
        );
    }
    if !auth.is_ascii() || auth.contains('%') {
        return Err(
            "URL host has non-ASCII or percent-encoded characters; use the punycode (xn--) form"
                .into(),
        );
    }
    let (host, port) = if let Some(inner) = auth.strip_prefix('[') {
        let Some((h, after)) = inner.split_once(']') else {
            return Err("URL has an unterminated IPv6 literal".into());
        };
        h.parse::<Ipv6Addr>()
            .map_err(|_| "URL has a malformed IPv6 literal".to_string())?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or("URL has junk after the IPv6 literal")?,
            ),
        };
        (format!("[{h}]"), port)
    } else {
        match auth.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (auth.to_string(), None),
        }
    };
    let port = match port {
        None | Some("") => None,
        Some(p) if p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => Some(
            p.parse::<u16>()
                .map_err(|_| "URL port is out of range".to_string())?,
        ),
        Some(_) => return Err("URL port is not a number".into()),
    };
    let mut host = host.to_ascii_lowercase();
    if host.ends_with('.') {
        host.pop();
    }
    if host.is_empty() {
        return Err("URL has no host".into());
    }
    if !host.starts_with('[')
        && !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    {
        return Err("URL host has characters not allowed in a host name".into());
    }
    if host.split('.').any(str::is_empty) && !host.starts_with('[') {
        return Err("URL host has an empty label".into());
    }
    Ok((host, port))
}

/// Why `host` (lower-case, as from [`parse_authority`]) is internal, if it is.
pub fn internal_reason(host: &str) -> Option<&'static str> {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return match inner.parse::<Ipv6Addr>() {
            Ok(ip) => ipv6_reason(ip),
            Err(_) => Some("a malformed IPv6 address"),
        };
    }
    // WHATWG: a host whose last label is numeric is an IPv4 address (or invalid).
    let last = host.rsplit('.').next().unwrap_or(host);
    if last.bytes().all(|b| b.is_ascii_digit()) || last.starts_with("0x") {
        return match parse_ipv4_loose(host) {
            Some(ip) => ipv4_reason(ip),
            None => Some("a malformed numeric address"),
        };
    }
    internal_name_reason(host)
}

/// `inet_aton` semantics: 1–4 parts, each decimal, octal (leading 0) or hex
/// (0x); the last part fills the remaining bytes.
pub fn parse_ipv4_loose(host: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = host.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut nums = Vec::with_capacity(4);
    for p in &parts {
        let n = if let Some(hex) = p.strip_prefix("0x") {
            if hex.is_empty() {
                0
            } else {
                u64::from_str_radix(hex, 16).ok()?
            }
        } else if p.len() > 1 && p.starts_with('0') {
            u64::from_str_radix(&p[1..], 8).ok()?
        } else {
            p.parse::<u64>().ok()?
        };
        nums.push(n);
    }
    let (init, last) = nums.split_at(nums.len() - 1);
    if init.iter().any(|&n| n > 255) || last[0] >= 1u64 << (8 * (5 - nums.len())) {
        return None;
    }
    let mut addr: u64 = last[0];
    for (i, &n) in init.iter().enumerate() {
        addr |= n << (8 * (3 - i));
    }
    Some(Ipv4Addr::from(addr as u32))
}

fn ipv4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    let n = u32::from(ip);
    let in_net = |base: u32, bits: u32| n >> (32 - bits) == base >> (32 - bits);
    Some(match () {
        _ if o == [169, 254, 169, 254] || o == [168, 63, 129, 16] || o == [100, 100, 100, 200] => {
            "a cloud metadata address"
        }
        _ if o[0] == 127 => "a loopback address",
        _ if o[0] == 0 => "an unspecified ('this network') address",
        _ if o[0] == 10 || in_net(0xAC10_0000, 12) || in_net(0xC0A8_0000, 16) => {
            "a private (RFC 1918) address"
        }
        _ if in_net(0xA9FE_0000, 16) => "a link-local address",
        _ if in_net(0x6440_0000, 10) => "a carrier-grade NAT (shared) address",
        _ if in_net(0xC000_0000, 24) || in_net(0xC058_6300, 24) => {
            "an IETF special-purpose address"
        }
        _ if in_net(0xC000_0200, 24) || in_net(0xC633_6400, 24) || in_net(0xCB00_7100, 24) => {
            "a documentation (TEST-NET) address"
        }
        _ if in_net(0xC612_0000, 15) => "a benchmarking address",
        _ if o[0] >= 224 => "a multicast, reserved or broadcast address",
        _ => return None,
    })
}

fn ipv6_reason(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from(((hi as u32) << 16) | lo as u32);
    // Forms that carry an IPv4 address: judge the IPv4 address.
    if s[..5] == [0, 0, 0, 0, 0] && (s[5] == 0xffff || s[5] == 0) && !(s[5] == 0 && s[6] == 0) {
        // IPv4-mapped ::ffff:a.b.c.d and (deprecated) IPv4-compatible ::a.b.c.d
        return ipv4_reason(embedded(s[6], s[7]));
    }
    if s[..4] == [0, 0, 0, 0] && s[4] == 0xffff && s[5] == 0 {
        return ipv4_reason(embedded(s[6], s[7]));
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return ipv4_reason(embedded(s[6], s[7])).map(|_| "NAT64 of an internal IPv4 address");
    }
    if s[0] == 0x2002 {
        return ipv4_reason(embedded(s[1], s[2])).map(|_| "6to4 of an internal IPv4 address");
    }
    Some(match () {
        _ if ip.is_unspecified() => "the unspecified address",
        _ if ip.is_loopback() => "a loopback address",
        _ if s[..3] == [0xfd00, 0x0ec2, 0] && s[7] == 0x254 => "a cloud metadata address",
        _ if s[0] & 0xfe00 == 0xfc00 => "a unique-local (private) address",
        _ if s[0] & 0xffc0 == 0xfe80 || s[0] & 0xffc0 == 0xfec0 => {
            "a link-local or site-local address"
        }
        _ if s[0] & 0xff00 == 0xff00 => "a multicast address",
        _ if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 => "a local-use NAT64 address",
        _ if s[0] == 0x2001 && s[1] == 0 => "a Teredo tunnel address",
        _ if s[0] == 0x2001 && s[1] == 0x0db8 => "a documentation address",
        _ if s[..4] == [0x100, 0, 0, 0] => "a discard-only address",
        _ if s[0] == 0x2001 && ((s[1] == 2 && s[2] == 0) || s[1] & 0xfff0 == 0x10) => {
            "a benchmarking or ORCHID address"
        }
        _ if s[..5] == [0, 0, 0, 0, 0] => "a reserved IPv4-embedding address",
        _ => return None,
    })
}

/// Names that resolve to the local machine or only inside a private network.
fn internal_name_reason(host: &str) -> Option<&'static str> {
    const EXACT: &[&str] = &[
        "localhost",
        "localhost.localdomain",
        "ip6-localhost",
        "ip6-loopback",
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "kubernetes.default",
        "host.docker.internal",
        "gateway.docker.internal",
    ];
    // Special-use / never-delegated TLDs (RFC 6761, 6762, 8375, ICANN 2024
    // `.internal`) and public wildcard-DNS services that map names to
    // loopback or embedded IPs (e.g. 127.0.0.1.nip.io).
    const SUFFIXES: &[&str] = &[
        ".localhost",
        ".local",
        ".localdomain",
        ".internal",
        ".home.arpa",
        ".lan",
        ".intranet",
        ".corp",
        ".home",
        ".private",
        ".test",
        ".invalid",
        ".svc",
        ".nip.io",
        ".sslip.io",
        ".xip.io",
        ".localtest.me",
        ".lvh.me",
    ];
    if EXACT.contains(&host) || host == "localtest.me" || host == "lvh.me" {
        return Some("a local or cloud-internal host name");
    }
    if SUFFIXES.iter().any(|s| host.ends_with(s)) {
        return Some("a host name under an internal or loopback-mapping domain");
    }
    if !host.contains('.') {
        // Single-label names only resolve through local search domains/hosts.
        return Some("a single-label (intranet) host name");
    }
    None
}

#[cfg(test)]
#[path = "net_rule_tests.rs"]
mod tests;
