//! URL and private-address rules: no panic, and what `deny_private_addresses` lets through is
//! not an internal address by std's own reading of the host, nor by the `inet_aton` reading
//! (`127.1`, `0x7f000001`); what `url_hosts` lets through has an allowed host.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use mcp_warden::checks::net_rule::{
    deny_private_addresses, internal_reason, parse_http_url, parse_ipv4_loose, url_hosts,
};

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    let _ = internal_reason(value);
    let _ = parse_ipv4_loose(value);
    let parsed = parse_http_url(value);
    if let Ok(url) = &parsed {
        assert!(
            url.scheme.eq_ignore_ascii_case("http") || url.scheme.eq_ignore_ascii_case("https"),
            "{value:?}"
        );
    }
    if url_hosts(value, &["example.com".to_owned(), "*.example.org".to_owned()]).is_ok() {
        let host = parsed.as_ref().expect("an allowed URL parses").host.clone();
        assert!(
            host == "example.com" || host.ends_with(".example.org"),
            "url_hosts let {host:?} through: {value:?}"
        );
    }
    if deny_private_addresses(value).is_ok() {
        if let Ok(url) = &parsed {
            assert_public(&url.host, value);
        }
    }
});

fn assert_public(host: &str, value: &str) {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        let internal = match ip {
            IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local() || v4.is_unspecified(),
            IpAddr::V6(v6) => {
                v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback() || v4.is_private())
            }
        };
        assert!(!internal, "internal address {ip} let through: {value:?}");
    }
    if let Some(v4) = parse_ipv4_loose(bare) {
        assert!(
            !(v4.is_loopback() || v4.is_private() || v4.is_link_local() || v4.is_unspecified()),
            "internal address {v4} (loose reading) let through: {value:?}"
        );
    }
    assert!(
        !host.eq_ignore_ascii_case("localhost"),
        "localhost let through: {value:?}"
    );
}
