//! Every `framing`, `parsing` and `jsonrpc` case of the attack corpus, through the real binary in
//! front of the echo server. Each case is interpreted from its data (input kind, direction,
//! expected code, audit event, alert, forwarded_upstream); nothing is keyed on a case id except
//! the transport filter (HTTP cases run with the HTTP transport).

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{Options, Wrapped};

fn corpus() -> Vec<Value> {
    let text =
        std::fs::read_to_string(support::fixture("attacks/corpus.json")).expect("corpus fixture");
    serde_json::from_str(&text).expect("corpus JSON")
}

fn stdio_cases(categories: &[&str]) -> Vec<Value> {
    corpus()
        .into_iter()
        .filter(|c| categories.contains(&c["category"].as_str().unwrap_or("")))
        .filter(|c| matches!(c["transport"].as_str(), Some("stdio") | Some("both")))
        .collect()
}

/// The byte strings a case's `input` describes (one per variant).
fn inputs(case: &Value) -> Vec<Vec<u8>> {
    let input = &case["input"];
    match input["kind"].as_str().unwrap_or("") {
        "raw" => {
            let data = input["data"].as_str().expect("raw data");
            let bytes = match input["encoding"].as_str() {
                Some("hex") => hex::decode(data).expect("hex"),
                _ => data.as_bytes().to_vec(),
            };
            vec![bytes]
        }
        "jsonrpc" => {
            let msgs: Vec<Value> = match input.get("variants") {
                Some(v) => v.as_array().expect("variants").clone(),
                None => vec![input["message"].clone()],
            };
            msgs.iter()
                .map(|m| {
                    let mut b = serde_json::to_vec(m).expect("json");
                    b.push(b'\n');
                    b
                })
                .collect()
        }
        "generated" => vec![generate(input)],
        other => panic!("{}: input kind {other} is not a single message", case["id"]),
    }
}

fn generate(input: &Value) -> Vec<u8> {
    match input["generator"].as_str() {
        Some("repeat") => {
            let prefix = input["prefix"].as_str().unwrap_or("").as_bytes();
            let fill = input["fill_byte"].as_str().unwrap_or("A").as_bytes()[0];
            let total = input["total_bytes"].as_u64().expect("total_bytes") as usize;
            let mut b = Vec::with_capacity(total + 1);
            b.extend_from_slice(prefix);
            b.resize(total, fill);
            if let Some(t) = input["terminator"].as_str() {
                b.extend_from_slice(t.as_bytes());
            }
            b
        }
        Some("nest") => {
            let depth = input["depth"].as_u64().expect("depth") as usize;
            let inner = format!(
                "{}{}",
                input["open"].as_str().unwrap_or("[").repeat(depth),
                input["close"].as_str().unwrap_or("]").repeat(depth)
            );
            let mut b = input["template"]
                .as_str()
                .expect("template")
                .replacen("%s", &inner, 1)
                .into_bytes();
            b.push(b'\n');
            b
        }
        other => panic!("unknown generator {other:?}"),
    }
}

fn assert_audited(w: &Wrapped, case: &Value) {
    let expected = &case["expected"];
    let Some(event) = expected["audit_event"].as_str() else {
        return;
    };
    let audit = w.audit();
    let hit = audit.iter().find(|r| r["event"] == event);
    let id = &case["id"];
    match event {
        // A message that passes: the routing is recorded as allowed decisions.
        "rpc.routed" => assert!(
            audit.iter().any(|r| r["decision"] == "allow"),
            "{id}: no allow record"
        ),
        _ => {
            let rec = hit
                .unwrap_or_else(|| panic!("{id}: no audit record with event {event}: {audit:#?}"));
            if expected["alert"].as_bool() == Some(true) {
                assert_eq!(rec["alert"], true, "{id}: record is not an alert: {rec}");
            }
        }
    }
}

fn assert_blocked_reply(reply: &Value, case: &Value) {
    let expected = &case["expected"];
    let id = &case["id"];
    if let Some(code) = expected["jsonrpc_error_code"].as_i64() {
        assert_eq!(reply["error"]["code"], code, "{id}: {reply}");
        assert!(
            reply["error"]["data"]["reason"]
                .as_str()
                .is_some_and(|r| !r.is_empty()),
            "{id}: no reason"
        );
        assert!(
            reply["error"]["data"]["audit_id"].is_string(),
            "{id}: no audit_id"
        );
    }
    if expected.get("id_in_error").is_some() {
        assert_eq!(reply["id"], expected["id_in_error"], "{id}: error id");
    }
}

/// Client → proxy cases made of standalone messages: each variant is refused with the expected
/// code, the session survives (a ping after it works), the upstream never sees it.
fn run_client_case(case: &Value) {
    for bytes in inputs(case) {
        let mut w = Wrapped::start(Options::default());
        w.initialize();
        // A round trip first, so everything before it is in the upstream's record.
        w.ping("before");
        let pid = w.pid();
        // What the proxy holds before the frame: code, compiled detectors, buffers.
        let baseline = support::peak_rss_kib(pid);
        let before = w.upstream().len();
        // Large inputs are written from a thread: the proxy answers while we are still writing.
        let big = bytes.len() > 1 << 20;
        let mut bytes = bytes;
        if !bytes.ends_with(b"\n") {
            bytes.push(b'\n');
        }
        w.send_raw(&bytes);
        let reply = w.recv();
        assert_blocked_reply(&reply, case);
        w.ping("after");
        if big {
            // Bounded buffering: the frame may cost about one message-size buffer (4 MiB by
            // default) and some slack, never a size proportional to the frame itself.
            let peak = support::peak_rss_kib(pid);
            let grew = peak.saturating_sub(baseline);
            assert!(
                grew < 12 * 1024 && (grew as usize) * 1024 < bytes.len() / 4,
                "{}: proxy peak RSS grew by {grew} KiB (from {baseline} KiB) for a {} byte frame",
                case["id"],
                bytes.len()
            );
        }
        if case["expected"]["forwarded_upstream"] == false {
            let seen = w.upstream();
            // Only the ping after it reached the server.
            assert_eq!(
                seen.len(),
                before + 1,
                "{}: upstream saw {:?}",
                case["id"],
                seen.last().map(|l| String::from_utf8_lossy(l).into_owned())
            );
        }
        assert_audited(&w, case);
        assert_eq!(w.finish(), 0);
    }
}

/// Server → proxy raw output: the server's script emits it in answer to a call.
fn run_server_raw_case(case: &Value) {
    let data = inputs(case).remove(0);
    let line = String::from_utf8(data)
        .expect("utf8")
        .trim_end_matches('\n')
        .to_owned();
    let msg: Value = serde_json::from_str(&line).expect("server line is JSON");
    let mut w = Wrapped::start(Options {
        script: Some(json!({"emit": [line]})),
        ..Default::default()
    });
    w.initialize();
    w.send(&json!({"jsonrpc":"2.0","id": msg["id"],"method":"tools/call","params":{"name":"emit","arguments":{}}}));
    let got = w.recv_raw(Duration::from_secs(10)).expect("reply");
    let got_value: Value = serde_json::from_slice(&got).expect("JSON");
    assert_eq!(got_value, msg, "{}: meaning must be preserved", case["id"]);
    if case["expected"]["action"] == "pass_modified" {
        assert_ne!(
            got,
            line.as_bytes(),
            "{}: expected a normalised rewrite",
            case["id"]
        );
        assert!(
            !got.windows(3)
                .any(|w| w == [0xE2, 0x80, 0xA8] || w == [0xE2, 0x80, 0xA9]),
            "raw separators left"
        );
    }
    assert_audited(&w, case);
}

/// A sequence: client steps are sent; server steps following a client request are what the
/// scripted server emits for it; proxy steps are the proxy's own business.
fn run_sequence_case(case: &Value) {
    let steps = case["input"]["steps"].as_array().expect("steps");
    // Build the server script: server steps attach to the preceding client request's tool.
    let mut script = serde_json::Map::new();
    let mut current_tool: Option<String> = None;
    for step in steps {
        match step["from"].as_str() {
            Some("client") => {
                current_tool = step["message"]["params"]["name"]
                    .as_str()
                    .map(str::to_owned);
                if let Some(t) = &current_tool {
                    script.entry(t.clone()).or_insert(json!([]));
                }
            }
            Some("server") => {
                let t = current_tool
                    .clone()
                    .expect("server step after a client request");
                let line = serde_json::to_string(&step["message"]).expect("json");
                script
                    .get_mut(&t)
                    .and_then(Value::as_array_mut)
                    .expect("script entry")
                    .push(Value::String(line));
            }
            _ => {}
        }
    }
    let mut w = Wrapped::start(Options {
        script: Some(Value::Object(script)),
        ..Default::default()
    });
    // Sequences include server requests (sampling) the client answers: it declares them.
    w.initialize_with(json!({"sampling": {}, "elicitation": {}, "roots": {}}));
    let mut sent_ids = std::collections::HashSet::new();
    let expected = &case["expected"];
    let mut refused = Vec::new();
    for step in steps {
        match step["from"].as_str() {
            Some("client") => {
                let m = &step["message"];
                let dup = !sent_ids.insert(m["id"].to_string());
                w.send(m);
                if dup {
                    refused.push(m.clone());
                    let reply = w.recv();
                    assert_blocked_reply(&reply, case);
                }
            }
            Some("server") => {
                let m = &step["message"];
                let is_request = m.get("method").is_some();
                let answers_client =
                    m.get("method").is_none() && sent_ids.contains(&m["id"].to_string());
                if is_request {
                    // Server requests reach the client byte-identical, even when the id collides.
                    let got = w.recv();
                    assert_eq!(&got, m, "{}: server request not relayed", case["id"]);
                    // The client answers it; the answer must be routed to the server.
                    w.send(&json!({"jsonrpc":"2.0","id": m["id"], "result": {"role":"assistant","content":{"type":"text","text":"ok"},"model":"test"}}));
                } else if !answers_client {
                    // An answer to nothing the client asked: never reaches the client.
                }
            }
            _ => {}
        }
    }
    w.ping("after");
    // Nothing the proxy refused reached the server; answers nobody asked for never reached the client.
    let upstream: Vec<Value> = w
        .upstream()
        .iter()
        .map(|l| serde_json::from_slice(l).expect("json"))
        .collect();
    for m in &refused {
        let n = upstream.iter().filter(|u| *u == m).count();
        assert_eq!(n, 0, "{}: refused message reached upstream", case["id"]);
    }
    if expected["action"] == "pass" {
        let answered_sampling = upstream.iter().any(|u| u.get("result").is_some());
        assert!(
            answered_sampling,
            "{}: the client's answer to the server request was not routed upstream",
            case["id"]
        );
        assert!(
            w.audit()
                .iter()
                .any(|r| r["event"] == "rpc.unsolicited_response"),
            "{}: stray answer not audited",
            case["id"]
        );
    }
    assert_audited(&w, case);
}

fn run(case: &Value) {
    let kind = case["input"]["kind"].as_str().unwrap_or("");
    let from_server = case["direction"]
        .as_str()
        .is_some_and(|d| d.starts_with("server"));
    match (kind, from_server) {
        ("sequence", _) => run_sequence_case(case),
        (_, true) => run_server_raw_case(case),
        _ => run_client_case(case),
    }
}

#[test]
fn framing_parsing_and_jsonrpc_cases() {
    let cases = stdio_cases(&["framing", "parsing", "jsonrpc"]);
    assert!(cases.len() >= 9, "corpus fixture has too few wire cases");
    for case in &cases {
        eprintln!("corpus case {}", case["id"]);
        run(case);
    }
}

/// Method names a lenient server dispatcher could read as `tools/call` (case, trailing space,
/// NUL) never reach the server and never skip policy: -32600, the rule named, one record each.
#[test]
fn look_alike_method_names_are_refused_before_policy() {
    let mut w = Wrapped::start(Options::default());
    w.initialize();
    let before = w.upstream().len();
    let cases = [
        ("case", "Tools/Call", "jsonrpc.method_confusable"),
        ("space", "tools/call ", "jsonrpc.method_malformed"),
        ("nul", "tools/call\u{0}", "jsonrpc.method_malformed"),
        ("lead", " tools/list", "jsonrpc.method_malformed"),
        ("upper", "TOOLS/LIST", "jsonrpc.method_confusable"),
    ];
    for (id, method, rule) in cases {
        w.send(&json!({"jsonrpc":"2.0","id":id,"method":method,"params":{"name":"echo","arguments":{"text":"x"}}}));
        let r = w.recv();
        assert_eq!(r["id"], id, "{r}");
        assert_eq!(r["error"]["code"], -32600, "{method:?}: {r}");
        assert_eq!(r["error"]["data"]["rule"], rule, "{method:?}: {r}");
    }
    // A notification with a look-alike name is dropped, not forwarded.
    w.send(&json!({"jsonrpc":"2.0","method":"Notifications/Initialized"}));
    // The exact names still work.
    w.send(&json!({"jsonrpc":"2.0","id":"ok","method":"tools/call","params":{"name":"echo","arguments":{"text":"fine"}}}));
    let ok = w.recv();
    assert_eq!(ok["result"]["content"][0]["text"], "fine", "{ok}");
    let seen = w.upstream();
    assert_eq!(
        seen.len() - before,
        1,
        "only the well-formed call reached the server: {:?}",
        seen[before..]
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect::<Vec<_>>()
    );
    let audit = w.audit();
    for (id, _, rule) in cases {
        let recs: Vec<&Value> = audit.iter().filter(|r| r["id"] == id).collect();
        assert_eq!(recs.len(), 1, "{id}: one record: {recs:?}");
        assert_eq!(recs[0]["rule"], rule, "{id}");
        assert_eq!(recs[0]["decision"], "deny", "{id}");
    }
}

/// An object with `n` distinct keys, as the `arguments` of a `tools/call` with id `id`.
fn call_with_keys(id: u64, n: usize) -> Vec<u8> {
    let mut args = String::with_capacity(n * 12);
    for i in 0..n {
        if i > 0 {
            args.push(',');
        }
        args.push_str(&format!("\"k{i}\":{i}"));
    }
    format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"tools/call\",\"params\":{{\"name\":\"echo\",\"arguments\":{{\"text\":\"t\",{args}}}}}}}\n"
    )
    .into_bytes()
}

/// Issue 9 (1): an unauthenticated body of tens of thousands of keys in one object cost seconds
/// of CPU in the quadratic duplicate check. Now: over `proxy.max_keys_per_object` (4096) it is
/// refused with -32600 naming the cap and its config key, and the session goes on at once.
#[test]
fn objects_over_the_key_cap_are_refused_quickly() {
    let mut w = Wrapped::start(Options::default());
    w.initialize();
    w.ping("before");
    let before = w.upstream().len();
    let started = std::time::Instant::now();
    w.send_raw(&call_with_keys(7, 48_000));
    let reply = w.recv();
    assert_eq!(reply["id"], json!(null), "{reply}");
    assert_eq!(reply["error"]["code"], -32600, "{reply}");
    assert_eq!(reply["error"]["data"]["rule"], "max_keys_per_object");
    let reason = reply["error"]["data"]["reason"].as_str().unwrap_or("");
    assert!(
        reason.contains("4096") && reason.contains("proxy.max_keys_per_object"),
        "{reason}"
    );
    w.ping("after");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "48k keys took {:?}",
        started.elapsed()
    );
    assert_eq!(
        w.upstream().len(),
        before + 1,
        "the refused call reached the server"
    );
    let audit = w.audit();
    let rec = audit
        .iter()
        .find(|r| r["event"] == "parse.too_many_keys")
        .unwrap_or_else(|| panic!("no parse.too_many_keys record: {audit:#?}"));
    assert_eq!(rec["decision"], "deny");
    assert_eq!(rec["alert"], true);
    assert_eq!(w.finish(), 0);
}

/// With the cap raised, a big object is really parsed, in linear time, and forwarded as sent
/// (no false positive on a large but legitimate argument object).
#[test]
fn a_raised_key_cap_lets_large_objects_through_in_linear_time() {
    let mut w = Wrapped::start(Options {
        config: Some("[proxy]\nmax_keys_per_object = 100000\n".into()),
        ..Default::default()
    });
    w.initialize();
    let msg = call_with_keys(8, 48_000);
    let started = std::time::Instant::now();
    w.send_raw(&msg);
    let reply = w.recv();
    assert_eq!(reply["id"], 8, "{reply}");
    assert!(reply.get("error").is_none(), "{reply}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "48k keys took {:?}",
        started.elapsed()
    );
    assert!(
        w.upstream().iter().any(|l| l[..] == msg[..msg.len() - 1]),
        "the call was not forwarded byte for byte"
    );
}
