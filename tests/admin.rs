//! The admin port: probes, Prometheus metrics, the operator API against a real approval queue,
//! the audit SSE tail, and the gates (browser Origin, loopback Host, bearer token).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mcp_warden::admin::{self, AdminHandle, Metrics, Readiness};
use mcp_warden::approval::{ApprovalQueue, Resolution};
use mcp_warden::audit::{AuditLog, Decision, Direction, Fsync, Record};
use mcp_warden::config::Config;
use serde_json::Value;

#[path = "support/raw_http.rs"]
mod raw_http;

use raw_http::Exchange as Reply;

/// One HTTP/1.1 exchange over a fresh connection (`Connection: close`, read to EOF); a Host
/// header of the test's own replaces the default one.
fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    raw_http::exchange(addr, method, path, &headers, b"", Duration::from_secs(10))
}

fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, "GET", path, &[])
}

fn json(r: &Reply) -> Value {
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.body))
}

fn start(config: &str, state: &Path, ready: Readiness) -> (SocketAddr, AdminHandle, Arc<Metrics>) {
    let config = Config::from_text(config, &std::collections::BTreeMap::new()).expect("config");
    let metrics = Arc::new(Metrics::new());
    let (addr, handle) =
        admin::spawn(&config, state, Arc::clone(&metrics), ready).expect("admin starts");
    (addr, handle, metrics)
}

const LOCAL: &str =
    "[admin]\nlisten = \"127.0.0.1:0\"\n[[servers]]\nname = \"fs\"\ncommand = [\"x\"]\n";

#[test]
fn probes_metrics_servers_and_alerts() {
    let dir = tempfile::tempdir().expect("tmp");
    let ready = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&ready);
    let (addr, handle, metrics) = start(
        LOCAL,
        dir.path(),
        Arc::new(move || {
            if flag.load(Ordering::SeqCst) {
                Ok(())
            } else {
                Err("upstream echo cannot be reached".to_owned())
            }
        }),
    );

    let h = get(addr, "/healthz");
    assert_eq!((h.status, h.body.as_str()), (200, "ok\n"));
    let not_ready = get(addr, "/readyz");
    assert_eq!(not_ready.status, 503);
    // Issue 19: the body names what is failing.
    assert_eq!(
        not_ready.body,
        "not ready: upstream echo cannot be reached\n"
    );
    ready.store(true, Ordering::SeqCst);
    assert_eq!(get(addr, "/readyz").status, 200);

    let mut rec = Record::new("s1", "fs", Direction::ClientToServer, 42);
    rec.method = Some("tools/call".into());
    rec.decision = Decision::Deny;
    rec.latency_us = Some(80);
    rec.alert = true;
    rec.event = "policy.denied".into();
    rec.audit_id = "s1-1".into();
    metrics.record(&rec);
    metrics.observe_upstream(Duration::from_millis(30));

    let m = get(addr, "/metrics");
    assert_eq!(m.status, 200);
    assert!(
        m.head
            .to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{}",
        m.head
    );
    for line in [
        "mcp_warden_messages_total{direction=\"client_to_server\",method=\"tools/call\",decision=\"deny\"} 1",
        "mcp_warden_decision_latency_seconds_bucket{le=\"0.0001\"} 1",
        "mcp_warden_decision_latency_seconds_count 1",
        "mcp_warden_upstream_latency_seconds_bucket{le=\"0.05\"} 1",
        "mcp_warden_upstream_latency_seconds_bucket{le=\"0.025\"} 0",
        "mcp_warden_alerts_total 1",
        "mcp_warden_trust_score{server=\"fs\"} 0.5",
        "# TYPE mcp_warden_trust_score gauge",
    ] {
        assert!(m.body.lines().any(|l| l == line), "missing {line:?} in\n{}", m.body);
    }

    let servers = json(&get(addr, "/api/v1/servers"));
    assert_eq!(
        servers,
        serde_json::json!([{"name": "fs", "trust_score": 0.5}])
    );
    let alerts = json(&get(addr, "/api/v1/alerts"));
    assert_eq!(alerts[0]["event"], "policy.denied");
    assert_eq!(alerts[0]["audit_id"], "s1-1");

    assert_eq!(get(addr, "/nope").status, 404);
    // Any verb but GET needs the token first, even on loopback (issue 19.3).
    assert_eq!(request(addr, "DELETE", "/metrics", &[]).status, 401);
    handle.stop();
    assert!(TcpStream::connect(addr).is_err(), "stopped");
}

/// Issue 19.3: reading the queue stays open on loopback, deciding needs the bearer token
/// always (a wrapped server on the same machine must not approve its own call). The token file
/// is created 0600 in the state dir on first use; the decision is signed with the proxy's
/// identity key, which the waiting queue trusts.
#[test]
fn approvals_are_listed_and_decided_through_the_api() {
    let dir = tempfile::tempdir().expect("tmp");
    let (addr, _handle, _) = start(LOCAL, dir.path(), Arc::new(|| Ok(())));
    let token_file = dir.path().join("admin.token");
    let token = std::fs::read_to_string(&token_file).expect("token created on first use");
    assert!(token.trim().len() >= 32, "{token:?}");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let bearer = format!("Bearer {}", token.trim());
    let auth: &[(&str, &str)] = &[("Authorization", bearer.as_str())];
    let identity = mcp_warden::identity::load_or_create(&dir.path().join("identity.pem"))
        .expect("identity key");
    let queue = ApprovalQueue::new(dir.path().join("approvals"), Duration::from_secs(20))
        .with_deciders(vec![("identity".into(), identity.verifying_key())]);
    let t1 = queue
        .submit(
            "fs",
            "write_file",
            "high",
            "fs.toml:tool[write_file]",
            None,
            vec![],
        )
        .expect("submit");
    let t2 = queue
        .submit("fs", "delete", "critical", "critical", None, vec![])
        .expect("submit");

    let pending = json(&get(addr, "/api/v1/approvals"));
    let ids: Vec<&str> = pending
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|t| t["id"].as_str())
        .collect();
    assert!(
        ids.contains(&t1.id.as_str()) && ids.contains(&t2.id.as_str()),
        "{pending}"
    );

    // A browser page cannot approve, whatever origin it claims.
    let path = format!("/api/v1/approvals/{}/approve", t1.id);
    for origin in ["http://evil.example", "null", "http://127.0.0.1:9464"] {
        assert_eq!(
            request(addr, "POST", &path, &[("Origin", origin), auth[0]]).status,
            403
        );
    }
    // Nor through DNS rebinding (its own name as Host).
    assert_eq!(
        request(
            addr,
            "POST",
            &path,
            &[("Host", "evil.example:9464"), auth[0]]
        )
        .status,
        403
    );
    // Nor anyone on loopback without the token, or with a wrong one.
    assert_eq!(request(addr, "POST", &path, &[]).status, 401);
    assert_eq!(
        request(addr, "POST", &path, &[("Authorization", "Bearer wrong")]).status,
        401
    );
    assert_eq!(
        json(&get(addr, "/api/v1/approvals"))
            .as_array()
            .map(Vec::len),
        Some(2)
    );

    // The waiting call is released by the API's approve.
    let waiter = {
        let queue = queue.clone();
        let id = t1.id.clone();
        std::thread::spawn(move || queue.wait(&id, None, &|| false))
    };
    let r = request(addr, "POST", &path, auth);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(json(&r)["status"], "approved");
    assert_eq!(waiter.join().expect("waiter"), Resolution::Approved);

    let r = request(
        addr,
        "POST",
        &format!("/api/v1/approvals/{}/deny", t2.id),
        auth,
    );
    assert_eq!(
        (r.status, json(&r)["status"].as_str()),
        (200, Some("denied"))
    );
    assert_eq!(queue.wait(&t2.id, None, &|| false), Resolution::Denied);
    assert_eq!(json(&get(addr, "/api/v1/approvals")), serde_json::json!([]));

    assert_eq!(request(addr, "POST", &path, auth).status, 404, "consumed");
    assert_eq!(
        request(addr, "POST", "/api/v1/approvals/..%2fx/approve", auth).status,
        400
    );
    assert_eq!(
        request(
            addr,
            "POST",
            &format!("/api/v1/approvals/{}/maybe", t1.id),
            auth
        )
        .status,
        404
    );
    assert_eq!(request(addr, "GET", &path, &[]).status, 405);
}

#[test]
fn a_token_is_required_off_loopback() {
    let dir = tempfile::tempdir().expect("tmp");
    let open = "[admin]\nlisten = \"0.0.0.0:0\"\n";
    let config = Config::from_text(open, &std::collections::BTreeMap::new()).expect("config");
    let err = admin::spawn(
        &config,
        dir.path(),
        Arc::new(Metrics::new()),
        Arc::new(|| Ok(())),
    )
    .err()
    .expect("refuses to start without a token");
    assert!(err.to_string().contains("token_file"), "{err}");

    std::fs::write(dir.path().join("admin.token"), "s3cret-token-0123456789\n").expect("token");
    let (addr, _handle, _) = start(
        "[admin]\nlisten = \"0.0.0.0:0\"\ntoken_file = \"admin.token\"\n",
        dir.path(),
        Arc::new(|| Ok(())),
    );
    let local: SocketAddr = format!("127.0.0.1:{}", addr.port()).parse().expect("addr");
    // Probes stay open for the kubelet; everything else needs the token.
    assert_eq!(get(local, "/healthz").status, 200);
    assert_eq!(get(local, "/readyz").status, 200);
    let denied = get(local, "/metrics");
    assert_eq!(denied.status, 401);
    assert!(denied
        .head
        .to_ascii_lowercase()
        .contains("www-authenticate: bearer"));
    assert_eq!(
        request(
            local,
            "GET",
            "/api/v1/approvals",
            &[("Authorization", "Bearer wrong")]
        )
        .status,
        401
    );
    let ok = request(
        local,
        "GET",
        "/metrics",
        &[("Authorization", "Bearer s3cret-token-0123456789")],
    );
    assert_eq!(ok.status, 200);
    // Off loopback the Host is not pinned (the pod IP or a service name is normal).
    let svc = [
        ("Authorization", "Bearer s3cret-token-0123456789"),
        ("Host", "warden.default.svc:9464"),
    ];
    assert_eq!(request(local, "GET", "/api/v1/servers", &svc).status, 200);
}

#[test]
fn audit_records_stream_as_server_sent_events() {
    let dir = tempfile::tempdir().expect("tmp");
    let log = AuditLog::open(&dir.path().join("audit"), "fs", Fsync::Always).expect("audit");
    let mut before = Record::new("s", "fs", Direction::ClientToServer, 1);
    before.audit_id = "before-1".into();
    log.write(before).expect("write");
    let (addr, _handle, _) = start(LOCAL, dir.path(), Arc::new(|| Ok(())));

    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(b"GET /api/v1/audit/stream HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .expect("send");
    let mut seen = String::new();
    let read_until = |s: &mut TcpStream, seen: &mut String, needle: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 4096];
        while !seen.contains(needle) {
            assert!(Instant::now() < deadline, "no {needle:?} in {seen}");
            let n = s.read(&mut buf).expect("read");
            assert!(n > 0, "stream closed: {seen}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    };
    read_until(&mut s, &mut seen, "\"audit_id\":\"before-1\"");
    assert!(seen
        .to_ascii_lowercase()
        .contains("content-type: text/event-stream"));
    assert!(seen.contains("data: {"));

    let mut after = Record::new("s", "fs", Direction::ServerToClient, 1);
    after.audit_id = "after-2".into();
    log.write(after).expect("write");
    read_until(&mut s, &mut seen, "\"audit_id\":\"after-2\"");
}
