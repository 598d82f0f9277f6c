//! Pipeline behaviour without processes: verdicts and audit records for message sequences.

use std::sync::Arc;

use super::{Pipeline, Verdict};
use crate::audit::{AuditLog, Decision, Fsync};
use crate::codec::Limits;

fn pipeline() -> (Pipeline, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open_file(&dir.path().join("a.jsonl"), Fsync::Never).unwrap();
    (
        Pipeline::new(
            "test",
            Limits::default(),
            log,
            Arc::new(super::Guards::default()),
        ),
        dir,
    )
}

fn answer_code(v: &Verdict) -> i64 {
    match v {
        Verdict::Answer(b) => serde_json::from_slice::<serde_json::Value>(b).unwrap()["error"]
            ["code"]
            .as_i64()
            .unwrap(),
        other => panic!("expected an answer, got {other:?}"),
    }
}

#[test]
fn request_ids_are_tracked_in_both_directions() {
    let (p, _d) = pipeline();
    // The client declares sampling, so the server may ask for it.
    p.from_client(br#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"sampling":{}},"clientInfo":{"name":"c","version":"1"}}}"#);
    p.from_server(br#"{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-11-25","capabilities":{},"serverInfo":{"name":"s","version":"1"}}}"#);
    let call = br#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"summarize","arguments":{}}}"#;
    assert_eq!(p.from_client(call).verdict, Verdict::Forward);
    // Reusing a pending id is refused; the first request is unaffected.
    assert_eq!(answer_code(&p.from_client(call).verdict), -32600);
    // The server may use the same id for its own request: a separate id space.
    let sampling = br#"{"jsonrpc":"2.0","id":5,"method":"sampling/createMessage","params":{"messages":[],"maxTokens":10}}"#;
    assert_eq!(p.from_server(sampling).verdict, Verdict::Forward);
    // The client's answer to it is routed; a second answer is unsolicited and dropped.
    let reply = br#"{"jsonrpc":"2.0","id":5,"result":{"role":"assistant","content":{"type":"text","text":"x"},"model":"m"}}"#;
    assert_eq!(p.from_client(reply).verdict, Verdict::Forward);
    assert_eq!(p.from_client(reply).verdict, Verdict::Drop);
    // The server's answer to the call goes through once; a duplicate is dropped.
    let result = br#"{"jsonrpc":"2.0","id":5,"result":{"content":[]}}"#;
    assert_eq!(p.from_server(result).verdict, Verdict::Forward);
    let again = p.from_server(result);
    assert_eq!(
        (again.verdict, again.record.event.as_str()),
        (Verdict::Drop, "rpc.unsolicited_response")
    );
}

#[test]
fn pending_requests_are_answered_when_the_server_dies() {
    let (p, _d) = pipeline();
    p.from_client(br#"{"jsonrpc":"2.0","id":"a","method":"tools/list"}"#);
    let outcomes = p.abandon_pending("gone");
    assert_eq!(outcomes.len(), 1);
    assert_eq!(answer_code(&outcomes[0].verdict), -32603);
    assert!(p.abandon_pending("gone").is_empty());
}

#[test]
fn batches_only_in_2025_03_26() {
    let (p, _d) = pipeline();
    let batch =
        br#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"ping"}]"#;
    assert_eq!(answer_code(&p.from_client(batch).verdict), -32600);

    let (p, _d) = pipeline();
    p.from_client(br#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}"#);
    p.from_server(br#"{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-03-26","capabilities":{},"serverInfo":{"name":"s","version":"1"}}}"#);
    assert_eq!(p.from_client(batch).verdict, Verdict::Forward);
    // One bad element: it is answered, the rest goes on.
    let mixed =
        br#"[{"jsonrpc":"2.0","id":3,"method":"ping"},{"jsonrpc":"2.0","id":1,"method":"ping"}]"#;
    match p.from_client(mixed).verdict {
        Verdict::Split { forward, answer } => {
            assert_eq!(
                forward,
                br#"[{"jsonrpc":"2.0","id":3,"method":"ping"}]"#.to_vec()
            );
            let a: serde_json::Value = serde_json::from_slice(&answer).unwrap();
            assert_eq!(a[0]["id"], 1);
            assert_eq!(a[0]["error"]["code"], -32600);
        }
        other => panic!("expected a split, got {other:?}"),
    }
}

#[test]
fn era_follows_the_handshake_or_the_request_meta() {
    let (p, _d) = pipeline();
    let out = p.from_client(br#"{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#);
    assert_eq!(out.record.era, Some("modern"));
    assert_eq!(out.record.decision, Decision::Allow);
}

#[test]
fn server_garbage_is_dropped_not_forwarded() {
    let (p, _d) = pipeline();
    let out = p.from_server(b"Server listening on port 3000");
    assert_eq!(out.verdict, Verdict::Drop);
    assert_eq!(out.record.event, "upstream.non_jsonrpc_output");
}

#[test]
fn server_requests_need_the_capability_the_client_declared() {
    let (p, _d) = pipeline();
    p.from_client(br#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"elicitation":{}},"clientInfo":{"name":"c","version":"1"}}}"#);
    let sampling = br#"{"jsonrpc":"2.0","id":5,"method":"sampling/createMessage","params":{"messages":[],"maxTokens":10}}"#;
    let out = p.from_server(sampling);
    assert_eq!(answer_code(&out.verdict), -32601);
    assert_eq!(out.record.rule.as_deref(), Some("capability.undeclared"));
    let roots = br#"{"jsonrpc":"2.0","id":6,"method":"roots/list"}"#;
    assert_eq!(answer_code(&p.from_server(roots).verdict), -32601);
    // Declared: a flat form passes; a nested schema is refused to the server.
    let form = br#"{"jsonrpc":"2.0","id":7,"method":"elicitation/create","params":{"message":"Your name?","requestedSchema":{"type":"object","properties":{"name":{"type":"string"}}}}}"#;
    assert_eq!(p.from_server(form).verdict, Verdict::Forward);
    let nested = br#"{"jsonrpc":"2.0","id":8,"method":"elicitation/create","params":{"message":"Address?","requestedSchema":{"type":"object","properties":{"addr":{"type":"object","properties":{"street":{"type":"string"}}}}}}}"#;
    assert_eq!(answer_code(&p.from_server(nested).verdict), -32602);
    // A look-alike method from the server is refused too.
    let odd = br#"{"jsonrpc":"2.0","id":9,"method":"Sampling/CreateMessage","params":{}}"#;
    assert_eq!(answer_code(&p.from_server(odd).verdict), -32600);
}

#[test]
fn an_oversized_answer_is_answered_to_its_request() {
    let (p, _d) = pipeline();
    p.from_client(br#"{"jsonrpc":"2.0","id":"big","method":"tools/list"}"#);
    let out = p.oversize_answer(10_000_000, Some("\"big\""));
    match &out.verdict {
        Verdict::Rewrite(bytes) => {
            let v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
            assert_eq!(v["id"], "big");
            assert_eq!(v["error"]["code"], -32603);
            assert!(v["error"]["data"]["reason"]
                .as_str()
                .unwrap()
                .contains("max_message_bytes"));
        }
        other => panic!("{other:?}"),
    }
    // The id is free again; an unknown id is only dropped.
    assert!(p.abandon_pending("gone").is_empty());
    assert_eq!(p.oversize_answer(10, Some("7")).verdict, Verdict::Drop);
}

#[test]
fn modern_input_requests_need_declared_capabilities_too() {
    let (p, _d) = pipeline();
    let call = |id: &str, caps: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":"{id}","method":"tools/call","params":{{"name":"book","arguments":{{}},"_meta":{{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{caps}}}}}}}"#
        )
    };
    let answer = |id: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":"{id}","result":{{"resultType":"input_required","requestState":"s","inputRequests":{{"where":{{"method":"roots/list"}}}}}}}}"#
        )
    };
    p.from_client(call("a", r#"{"elicitation":{}}"#).as_bytes());
    match p.from_server(answer("a").as_bytes()).verdict {
        Verdict::Rewrite(bytes) => {
            let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(v["id"], "a");
            assert_eq!(v["error"]["data"]["rule"], "capability.undeclared", "{v}");
        }
        other => panic!("{other:?}"),
    }
    p.from_client(call("b", r#"{"roots":{}}"#).as_bytes());
    assert_eq!(
        p.from_server(answer("b").as_bytes()).verdict,
        Verdict::Forward
    );
}

#[test]
fn server_requests_are_rate_limited_per_server() {
    let (p, _d) = pipeline();
    p.from_client(br#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"roots":{}},"clientInfo":{"name":"c","version":"1"}}}"#);
    let limit = super::server_requests::SERVER_REQUESTS_PER_MINUTE;
    for i in 0..limit {
        let req = format!(r#"{{"jsonrpc":"2.0","id":{i},"method":"roots/list"}}"#);
        assert_eq!(
            p.from_server(req.as_bytes()).verdict,
            Verdict::Forward,
            "{i}"
        );
    }
    let req = format!(r#"{{"jsonrpc":"2.0","id":{limit},"method":"roots/list"}}"#);
    let out = p.from_server(req.as_bytes());
    assert_eq!(answer_code(&out.verdict), -32016);
    assert_eq!(out.record.rule.as_deref(), Some("server_requests.rate"));
    // Pings are not limited.
    let ping = br#"{"jsonrpc":"2.0","id":"p","method":"ping"}"#;
    assert_eq!(p.from_server(ping).verdict, Verdict::Forward);
}

/// What an async transport may judge on its worker (`from_server_inline`) and what it must
/// leave to the blocking pool: an answer to a listing (the pin store), the proxy's own, a line
/// over the inline bound, and anything while every record is synced. Left means untouched: the
/// answer is still expected when `from_server` judges it later.
#[test]
fn server_messages_that_may_block_are_left_to_the_blocking_pool() {
    let (p, _d) = pipeline();
    p.from_client(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#);
    p.from_client(br#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#);
    let listing = br#"{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}"#;
    assert!(p.from_server_inline(listing).is_none());
    assert_eq!(p.from_server(listing).verdict, Verdict::Forward);
    let pong = br#"{"jsonrpc":"2.0","id":2,"result":{}}"#;
    assert_eq!(
        p.from_server_inline(pong).unwrap().verdict,
        Verdict::Forward
    );
    let note = br#"{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"x"}}"#;
    assert!(p.from_server_inline(note).is_some());
    let long = format!(
        r#"{{"jsonrpc":"2.0","method":"notifications/message","params":{{"level":"info","data":"{}"}}}}"#,
        "x".repeat(super::INLINE_MAX)
    );
    assert!(p.from_server_inline(long.as_bytes()).is_none());

    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open_file(&dir.path().join("a.jsonl"), Fsync::Always).unwrap();
    let synced = Pipeline::new("test", Limits::default(), log, Arc::default());
    assert!(synced.from_server_inline(note).is_none());

    // `[cluster]`: a server request's rate is counted in Redis; a notification stays inline.
    struct Shared;
    impl crate::policy::SharedRates for Shared {
        fn check(
            &self,
            _: &str,
            _: &str,
            _: &str,
            _: crate::policy::Rate,
        ) -> crate::policy::RateDecision {
            crate::policy::RateDecision::Ok
        }
    }
    let mut guards = super::Guards::default();
    guards.limiter = crate::policy::RateLimiter::new().with_shared(Arc::new(Shared));
    let log = AuditLog::open_file(&dir.path().join("b.jsonl"), Fsync::Never).unwrap();
    let clustered = Pipeline::new("test", Limits::default(), log, Arc::new(guards));
    let roots = br#"{"jsonrpc":"2.0","id":"r","method":"roots/list"}"#;
    assert!(clustered.from_server_inline(roots).is_none());
    assert!(clustered.from_server_inline(note).is_some());
}

/// A server batch (2025-03-26) is judged element by element, never waved through whole: an
/// answer nobody asked for is dropped from it, a server request the client did not declare is
/// refused back to the server, the rest goes on; a batch that passes whole keeps its bytes.
#[test]
fn a_server_batch_is_judged_element_by_element() {
    let (p, _d) = pipeline();
    p.from_client(br#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}"#);
    p.from_server(br#"{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-03-26","capabilities":{},"serverInfo":{"name":"s","version":"1"}}}"#);
    let pings =
        br#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"ping"}]"#;
    assert_eq!(p.from_client(pings).verdict, Verdict::Forward);
    let whole = br#"[{"jsonrpc":"2.0","id":1,"result":{}},{"jsonrpc":"2.0","id":2,"result":{}}]"#;
    assert_eq!(p.from_server(whole).verdict, Verdict::Forward);
    // Answered once: the same answers again are nobody's.
    assert_eq!(p.from_server(whole).verdict, Verdict::Drop);

    p.from_client(br#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#);
    let mixed = br#"[{"jsonrpc":"2.0","id":3,"result":{}},{"jsonrpc":"2.0","id":99,"result":{"x":1}},{"jsonrpc":"2.0","id":7,"method":"sampling/createMessage","params":{"messages":[],"maxTokens":5}}]"#;
    let outcome = p.from_server(mixed);
    match outcome.verdict {
        Verdict::Split { forward, answer } => {
            assert_eq!(
                forward,
                br#"[{"jsonrpc":"2.0","id":3,"result":{}}]"#.to_vec()
            );
            let a: serde_json::Value = serde_json::from_slice(&answer).unwrap();
            assert_eq!(a[0]["id"], 7, "{a}");
            assert!(a[0]["error"]["code"].is_i64(), "{a}");
        }
        other => panic!("expected a split, got {other:?}"),
    }
    assert!(matches!(outcome.routing, super::Routing::Batch(ref r) if r.len() == 1));
}
