//! `serve` under attack (issue 9), a module of `http_serve.rs` only: sessions belong to the key that opened them, whichever
//! signature scheme proved it; every way of opening a session is admitted like `initialize`
//! and capped per client; upstream error bodies never pass uninspected; slow bodies and slow
//! headers get 408 and a record; the connection cap counts per client; large hostile bodies do
//! not stall a signed client.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::FromRawFd;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ed25519_dalek::SigningKey;
use serde_json::{json, Value};

use crate::http::signing::vector_key;
use crate::http::{
    audit_events, echo_config, echo_http, initialize, read_response, request, Resp, Serve, INIT,
    JSON_ONLY,
};
use mcp_warden::sig::{http_scheme, keys, message_scheme, new_nonce};

const SECRET: &str = "AKIAIOSFODNN7EXAMPLE";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// `[signatures]` in `mode` trusting each public key as a client.
fn trusting(mode: &str, publics: &[&str]) -> String {
    let mut c = format!("[signatures]\nmode = \"{mode}\"\n");
    for (i, p) in publics.iter().enumerate() {
        c.push_str(&format!(
            "[[identity.trusted_keys]]\nname = \"agent-{i}\"\npublic_key = {p:?}\nrole = \"client\"\n"
        ));
    }
    c
}

fn second_key() -> (SigningKey, String) {
    let k = keys::generate_signing_key();
    let public = keys::public_key_to_string(&k.verifying_key());
    (k, public)
}

/// Header-scheme signature headers over `body` (audience: the echo server).
fn header_sig(key: &SigningKey, body: &[u8]) -> Vec<(String, String)> {
    http_scheme::sign(key, "echo", body, now(), &new_nonce())
        .pairs()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The message signed in `params._meta` (message scheme).
fn meta_signed(key: &SigningKey, msg: &str) -> String {
    message_scheme::sign(msg.as_bytes(), key, "echo", now(), &new_nonce()).unwrap()
}

fn post(
    serve: &Serve,
    sid: Option<&str>,
    body: &[u8],
    sig: &[(String, String)],
    extra: &[(&str, &str)],
) -> Resp {
    let mut h: Vec<(&str, &str)> = vec![JSON_ONLY];
    if let Some(s) = sid {
        h.push(("Mcp-Session-Id", s));
    }
    h.extend(sig.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    h.extend_from_slice(extra);
    request(serve.addr, "POST", "/mcp", &h, body)
}

fn text(r: &Resp) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

fn call(id: i64, args: Value) -> String {
    json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":"echo","arguments":args}})
        .to_string()
}

const LIST: &str = r#"{"jsonrpc":"2.0","id":"list","method":"tools/list"}"#;

/// Issue 9 item 3: a request proved by another trusted key — in `_meta` or in the headers —
/// does not get onto a session it does not own, in enforce mode and in audit mode.
#[test]
fn a_session_belongs_to_the_key_that_opened_it_by_either_scheme() {
    let (a, a_pub) = vector_key();
    let (b, b_pub) = second_key();
    for mode in ["enforce", "audit"] {
        let serve = Serve::start(&echo_config(&trusting(mode, &[&a_pub, &b_pub])), &[]);
        // Opened with the header scheme.
        let init = post(
            &serve,
            None,
            INIT.as_bytes(),
            &header_sig(&a, INIT.as_bytes()),
            &[],
        );
        assert_eq!(init.status, 200, "{mode}: {}", text(&init));
        let sid = init.header("mcp-session-id").unwrap().to_owned();
        let list = post(
            &serve,
            Some(&sid),
            LIST.as_bytes(),
            &header_sig(&a, LIST.as_bytes()),
            &[],
        );
        assert_eq!(list.status, 200, "{mode}: {}", text(&list));
        // Another trusted client signs in `_meta`: refused, never forwarded.
        let hijack = meta_signed(&b, &call(7, json!({"text": "hijacked"})));
        let r = post(&serve, Some(&sid), hijack.as_bytes(), &[], &[]);
        assert_eq!(
            r.status,
            404,
            "{mode}: another key got on the session: {}",
            text(&r)
        );
        assert_eq!(r.json()["error"]["code"], -32001, "{mode}");
        assert!(!text(&r).contains("hijacked"), "{mode}: {}", text(&r));
        // The owner's key in `_meta` is the same identity: accepted.
        let mine = meta_signed(&a, &call(8, json!({"text": "mine"})));
        let r = post(&serve, Some(&sid), mine.as_bytes(), &[], &[]);
        assert_eq!(r.status, 200, "{mode}: {}", text(&r));
        assert_eq!(r.json()["result"]["content"][0]["text"], "mine", "{mode}");

        // Opened with the message scheme: bound just the same.
        let init = meta_signed(&a, INIT);
        let r = post(&serve, None, init.as_bytes(), &[], &[]);
        assert_eq!(r.status, 200, "{mode}: {}", text(&r));
        let sid2 = r.header("mcp-session-id").unwrap().to_owned();
        let list = meta_signed(&a, LIST);
        assert_eq!(
            post(&serve, Some(&sid2), list.as_bytes(), &[], &[]).status,
            200
        );
        let body = call(9, json!({"text": "hijacked"}));
        let r = post(
            &serve,
            Some(&sid2),
            body.as_bytes(),
            &header_sig(&b, body.as_bytes()),
            &[],
        );
        assert_eq!(r.status, 404, "{mode}: {}", text(&r));
        // The session's GET stream and DELETE are the owner's too.
        let del = header_sig(&b, b"");
        let mut h: Vec<(&str, &str)> = vec![("Mcp-Session-Id", &sid2)];
        h.extend(del.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        assert_eq!(
            request(serve.addr, "DELETE", "/mcp", &h, b"").status,
            404,
            "{mode}"
        );

        let records = serve.audit();
        let mismatches: Vec<&Value> = records
            .iter()
            .filter(|r| r["event"] == "session.identity_mismatch")
            .collect();
        assert_eq!(mismatches.len(), 3, "{mode}: {records:?}");
        assert!(mismatches.iter().all(|r| r["alert"] == true), "{mode}");
        let kid_b = keys::kid_of(&b.verifying_key());
        assert!(
            mismatches.iter().all(|r| r["kid"] == kid_b.as_str()),
            "{mode}: who tried is recorded"
        );
    }
}

/// An SSE stream's response head, the connection kept open (the stream is the session).
fn open_sse(addr: SocketAddr, headers: &[(String, String)]) -> (u16, TcpStream) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head =
        format!("GET /mcp/sse HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut b = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(1) => got.push(b[0]),
            _ => break,
        }
    }
    let status = String::from_utf8_lossy(&got[9..12]).parse().unwrap();
    (status, s)
}

fn assert_429(r: &Resp, what: &str) {
    assert_eq!(r.status, 429, "{what}: {}", text(r));
    let v = r.json();
    assert_eq!(v["error"]["code"], -32016, "{what}: {v}");
    assert!(
        v["error"]["data"]["retry_after_ms"]
            .as_u64()
            .is_some_and(|ms| ms > 0),
        "{what}: {v}"
    );
    assert!(r.header("retry-after").is_some(), "{what}: no Retry-After");
}

/// Issue 9 item 4 / issue 18 item 4: the legacy SSE endpoint opens a session only for a
/// client that could have sent `initialize`, and sessions (with their processes) are capped
/// per client identity — its key, or its address when unsigned. At the cap the client's least
/// recently used idle session makes room (clients that never DELETE are not locked out); when
/// every one is busy, 429 with -32016.
#[test]
fn every_session_opening_is_admitted_like_initialize_and_capped_per_client() {
    let (a, a_pub) = vector_key();
    let cfg = format!(
        "[serve]\nmax_sessions_per_client = 2\n{}",
        trusting("enforce", &[&a_pub])
    );
    let serve = Serve::start(&echo_config(&cfg), &[]);
    let ping = |sid: &str| {
        let body = br#"{"jsonrpc":"2.0","id":"p","method":"ping"}"#;
        post(&serve, Some(sid), body, &header_sig(&a, body), &[])
    };
    let init = || {
        post(
            &serve,
            None,
            INIT.as_bytes(),
            &header_sig(&a, INIT.as_bytes()),
            &[],
        )
    };
    // Unsigned: no session, no process.
    let (status, _s) = open_sse(serve.addr, &[]);
    assert_eq!(status, 401, "an unsigned legacy SSE stream was opened");
    let (status, _stream) = open_sse(serve.addr, &header_sig(&a, b""));
    assert_eq!(status, 200);
    let first = init();
    assert_eq!(first.status, 200, "{}", text(&first));
    let sid1 = first.header("mcp-session-id").unwrap().to_owned();
    // At the cap: the idle session makes room (the SSE one is busy: its stream is open).
    let second = init();
    assert_eq!(second.status, 200, "{}", text(&second));
    let sid2 = second.header("mcp-session-id").unwrap().to_owned();
    assert_eq!(
        ping(&sid1).status,
        404,
        "the idle session was not the one ended"
    );
    assert_eq!(ping(&sid2).status, 200);
    // Both busy (sid2's GET stream open): a third, by either path, is 429 with -32016.
    let mut get = header_sig(&a, b"");
    get.push(("Mcp-Session-Id".into(), sid2.clone()));
    let mut s = TcpStream::connect(serve.addr).unwrap();
    let mut head = format!(
        "GET /mcp HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n",
        serve.addr
    );
    for (k, v) in &get {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    s.write_all(format!("{head}\r\n").as_bytes()).unwrap();
    let mut b = [0u8; 12];
    s.read_exact(&mut b).unwrap();
    assert_eq!(&b[9..12], b"200", "GET stream on sid2");
    assert_429(&init(), "third initialize");
    let (status, _s) = open_sse(serve.addr, &header_sig(&a, b""));
    assert_eq!(status, 429, "third session by legacy SSE");
    // Ending one frees its slot.
    let sig = header_sig(&a, b"");
    let mut h: Vec<(&str, &str)> = vec![("Mcp-Session-Id", &sid2)];
    h.extend(sig.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    assert_eq!(request(serve.addr, "DELETE", "/mcp", &h, b"").status, 200);
    let again = init();
    assert_eq!(again.status, 200, "{}", text(&again));
    let events = audit_events(&serve);
    assert!(
        events.contains(&"auth.signature_missing".into()),
        "{events:?}"
    );
    assert!(events.contains(&"http.session_limit".into()), "{events:?}");

    // Unsigned clients are counted by address.
    let open = Serve::start(&echo_config("[serve]\nmax_sessions_per_client = 2\n"), &[]);
    let (s1, _k1) = open_sse(open.addr, &[]);
    let (s2, _k2) = open_sse(open.addr, &[]);
    assert_eq!((s1, s2), (200, 200));
    let r = request(open.addr, "POST", "/mcp", &[JSON_ONLY], INIT.as_bytes());
    assert_429(&r, "third unsigned session from one address");
}

/// Issue 9 item 5: whatever the status, a secret in an upstream's answer does not reach the
/// client: a JSON-RPC body is inspected like a 200, anything else is replaced by -32603.
#[test]
fn upstream_error_bodies_are_inspected_or_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let (_up, url) = echo_http(&dir.path().join("record.jsonl"));
    let serve = Serve::start(
        &format!("[[servers]]\nname = \"echo\"\nurl = {url:?}\n"),
        &[],
    );
    let sid = initialize(&serve, "/mcp", &[]);
    assert_eq!(
        post(&serve, Some(&sid), LIST.as_bytes(), &[], &[]).status,
        200
    );
    let leak = "the key is {aws_key}";
    let cases = [
        (500, "result", 500, None),
        (400, "error_null", 400, Some(-32603)),
        (403, "html", 403, Some(-32603)),
        (502, "text", 502, Some(-32603)),
        (200, "html", 502, Some(-32603)),
    ];
    for (i, (status, kind, want, code)) in cases.into_iter().enumerate() {
        let body = call(
            10 + i as i64,
            json!({"reply_status": status, "reply_kind": kind, "reply_text": leak}),
        );
        let r = post(&serve, Some(&sid), body.as_bytes(), &[], &[]);
        let what = format!("HTTP {status} {kind}");
        assert_eq!(r.status, want, "{what}: {}", text(&r));
        assert!(
            !text(&r).contains(SECRET),
            "{what}: the secret reached the client: {}",
            text(&r)
        );
        let v = r.json();
        match code {
            Some(c) => {
                assert_eq!(v["error"]["code"], c, "{what}: {v}");
                assert!(
                    v["error"]["data"]["reason"].as_str().is_some(),
                    "{what}: {v}"
                );
            }
            None => assert!(text(&r).contains("[REDACTED"), "{what}: not redacted: {v}"),
        }
    }
}

/// A TCP connection to `to` from the loopback address `from` (127.0.0.0/8 is all ours).
fn connect_from(from: [u8; 4], to: SocketAddr) -> TcpStream {
    let SocketAddr::V4(to) = to else {
        panic!("IPv4 loopback expected")
    };
    // SAFETY: plain socket syscalls on a descriptor we own until it is handed to TcpStream.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0);
        let mut src: libc::sockaddr_in = std::mem::zeroed();
        src.sin_family = libc::AF_INET as libc::sa_family_t;
        src.sin_addr.s_addr = u32::from_ne_bytes(from);
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        assert_eq!(
            libc::bind(fd, &src as *const _ as *const libc::sockaddr, len),
            0
        );
        let mut dst: libc::sockaddr_in = std::mem::zeroed();
        dst.sin_family = libc::AF_INET as libc::sa_family_t;
        dst.sin_port = to.port().to_be();
        dst.sin_addr.s_addr = u32::from_ne_bytes(to.ip().octets());
        assert_eq!(
            libc::connect(fd, &dst as *const _ as *const libc::sockaddr, len),
            0
        );
        TcpStream::from_raw_fd(fd)
    }
}

fn exchange(mut s: TcpStream, addr: SocketAddr, body: &[u8]) -> Resp {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    read_response(&mut s)
}

/// Issue 9 item 7: slow bodies are cut off with 408 and a record; while they hold a client's
/// connections, that client (and only that one) gets 429 with -32016 and `retry_after_ms`.
#[test]
fn slow_bodies_get_408_and_the_connection_cap_counts_per_client() {
    let cfg = "[serve]\nbody_timeout_secs = 2\nmax_connections_per_client = 3\n";
    let serve = Serve::start(&echo_config(cfg), &[]);
    let started = Instant::now();
    let slow: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut s = connect_from([127, 0, 0, 1], serve.addr);
            let head = format!(
                "POST /mcp HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{",
                serve.addr
            );
            s.write_all(head.as_bytes()).unwrap();
            s
        })
        .collect();
    // The same address is over its cap (polled: the accept loop counts them as it takes them).
    let over = loop {
        let r = exchange(
            connect_from([127, 0, 0, 1], serve.addr),
            serve.addr,
            INIT.as_bytes(),
        );
        if r.status == 429 || started.elapsed() > Duration::from_millis(1500) {
            break r;
        }
    };
    assert_429(&over, "a fourth connection from 127.0.0.1");
    // Another client is not locked out.
    let other = exchange(
        connect_from([127, 0, 0, 2], serve.addr),
        serve.addr,
        INIT.as_bytes(),
    );
    assert_eq!(
        other.status,
        200,
        "127.0.0.2 was locked out: {}",
        text(&other)
    );
    for mut s in slow {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let r = read_response(&mut s);
        assert_eq!(r.status, 408, "{}", text(&r));
        assert_eq!(r.json()["error"]["data"]["rule"], "serve.body_timeout_secs");
    }
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(6),
        "slow bodies held for {waited:?}"
    );
    assert!(audit_events(&serve).contains(&"http.timeout".into()));
    // Their connections are given back: the first client is served again.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let r = exchange(
            connect_from([127, 0, 0, 1], serve.addr),
            serve.addr,
            INIT.as_bytes(),
        );
        if r.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "still refused: {}", text(&r));
    }
}

/// Issue 9 item 1 (the part in `serve`): large hostile bodies are refused or parsed off the
/// async workers, so a signed `initialize` sent while they are in is answered promptly.
#[test]
fn a_signed_initialize_is_not_stalled_behind_large_hostile_bodies() {
    let (a, a_pub) = vector_key();
    let serve = Serve::start(&echo_config(&trusting("enforce", &[&a_pub])), &[]);
    // ~0.5 MB of distinct keys in one object: the shape that made strict parsing quadratic.
    let mut hostile = String::from(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"#);
    for i in 0..48_000 {
        if i > 0 {
            hostile.push(',');
        }
        hostile.push_str(&format!("\"k{i}\":0"));
    }
    hostile.push_str("}}");
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()) + 2;
    let (tx, rx) = std::sync::mpsc::channel();
    let addr = serve.addr;
    let senders: Vec<_> = (0..workers)
        .map(|_| {
            let (body, tx) = (hostile.clone(), tx.clone());
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                let head = format!(
                    "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: application/json\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                s.write_all(head.as_bytes()).unwrap();
                s.write_all(body.as_bytes()).unwrap();
                tx.send(()).unwrap();
                read_response(&mut s).status
            })
        })
        .collect();
    for _ in 0..workers {
        rx.recv_timeout(Duration::from_secs(20))
            .expect("hostile body sent");
    }
    let started = Instant::now();
    let init = post(
        &serve,
        None,
        INIT.as_bytes(),
        &header_sig(&a, INIT.as_bytes()),
        &[],
    );
    let took = started.elapsed();
    eprintln!(
        "signed initialize behind {workers} hostile bodies of {} bytes: {took:?}",
        hostile.len()
    );
    assert_eq!(init.status, 200, "{}", text(&init));
    assert!(
        took < Duration::from_secs(2),
        "signed initialize stalled for {took:?}"
    );
    for s in senders {
        assert_eq!(s.join().unwrap(), 401, "an unsigned body was not refused");
    }
}
