use super::*;

fn denied(u: &str) -> bool {
    deny_private_addresses(u).is_err()
}

#[test]
fn ipv4_spellings_decode() {
    let ip = |s| parse_ipv4_loose(s).map(|a| a.to_string());
    assert_eq!(ip("2130706433").as_deref(), Some("127.0.0.1"));
    assert_eq!(ip("0x7f000001").as_deref(), Some("127.0.0.1"));
    assert_eq!(ip("0177.0.0.1").as_deref(), Some("127.0.0.1"));
    assert_eq!(ip("127.1").as_deref(), Some("127.0.0.1"));
    assert_eq!(ip("10.1.65535").as_deref(), Some("10.1.255.255"));
    assert_eq!(ip("0xa9fea9fe").as_deref(), Some("169.254.169.254"));
    assert_eq!(ip("256.0.0.1"), None);
    assert_eq!(ip("1.2.3.4.5"), None);
    assert_eq!(ip("08.0.0.1"), None);
}

#[test]
fn internal_targets_denied() {
    for u in [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://0xA9FEA9FE/",
        "http://2852039166/",
        "http://127.1:6379/",
        "http://0177.0.0.1/",
        "http://0x7f.1/",
        "http://0/",
        "http://0.0.0.0:80/",
        "http://10.0.0.1/admin",
        "http://172.31.255.1/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",
        "http://100.100.100.200/",
        "http://168.63.129.16/",
        "http://224.0.0.1/",
        "http://255.255.255.255/",
        "http://198.18.0.1/",
        "http://[::1]/",
        "http://[::]/",
        "http://[fe80::1]/",
        "http://[fd00:ec2::254]/",
        "http://[fc00::1]/",
        "http://[64:ff9b::a00:1]/",
        "http://[2002:7f00:1::]/",
        "http://[::127.0.0.1]/",
        "http://[ff02::1]/",
        "http://[2001:db8::1]/",
        "http://localhost:6277/sse",
        "http://LOCALHOST./",
        "http://api.localhost/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://metadata/",
        "http://redis:6379/",
        "http://printer.local/",
        "http://127.0.0.1.nip.io/",
        "http://1.2.3.4.5/",
        "http://999.1.1.1/",
        "file:///etc/passwd",
        "gopher://127.0.0.1:6379/_FLUSHALL",
        "dict://x.example:11211/",
        "ftp://example.com/",
        "http://evil.example@127.0.0.1/",
        "http://127.0.0.1%2f@x.com/",
        "http://127.0.0.%31/",
        "http://１２７.0.0.1/",
        "http://a.com\\@127.0.0.1/",
        "http:127.0.0.1/",
        "http:///127.0.0.1/",
        "http://[fe80::1%25eth0]/",
        "https://rebind.attacker.example/ (resolves public)",
        "127.0.0.1",
        "localhost:8080",
        "[::1]:80",
    ] {
        assert!(denied(u), "{u} should be denied");
    }
}

#[test]
fn public_targets_pass() {
    for u in [
        "https://example.com/",
        "http://93.184.216.34/",
        "https://api.github.com:443/x?y=1#z",
        "https://[2606:4700:4700::1111]/",
        "http://[::ffff:8.8.8.8]/",
        "http://[2002:808:808::]/",
        "http://8.8.8.8:53",
        "example.com",
        "example.com:8443",
        "HTTPS://Example.COM./p",
        "https://sub.domain-with-dash.co.uk/path/../x",
    ] {
        assert!(deny_private_addresses(u).is_ok(), "{u} should pass");
    }
}

#[test]
fn host_allow_list() {
    let allowed = vec!["api.github.com".to_string(), "*.example.com".to_string()];
    assert!(url_hosts("https://api.github.com/repos", &allowed).is_ok());
    assert!(url_hosts("https://API.GitHub.com./repos", &allowed).is_ok());
    assert!(url_hosts("https://cdn.example.com/", &allowed).is_ok());
    for u in [
        "https://example.com/",
        "https://api.github.com.evil.io/",
        "http://api.github.com@evil.io/",
        "https://evil.io/?u=https://api.github.com",
        "ftp://api.github.com/",
        "javascript:alert(1)",
        "api.github.com/x",
        "https://evil.io\\@api.github.com/",
        "https://api.github.com:99999/",
        "https://api.github.com:80x/",
    ] {
        let e = url_hosts(u, &allowed).unwrap_err();
        assert_eq!(e.rule, "url_hosts", "{u}");
    }
}

#[test]
fn parses_authority() {
    let u = parse_http_url("https://Host.Example:8443/x").unwrap();
    assert_eq!(
        (u.scheme, u.host.as_str(), u.port),
        ("https", "host.example", Some(8443))
    );
    let u = parse_http_url("http://[::1]:80").unwrap();
    assert_eq!(u.host, "[::1]");
}
