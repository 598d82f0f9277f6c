//! Byte transparency: every message that passes unchanged reaches the other side as the exact
//! bytes that were sent, in both directions, including odd-but-valid JSON.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{Options, Wrapped};

/// Valid JSON-RPC requests a serde round trip would change: whitespace, key order, escapes,
/// escaped line separators, integers beyond 2^64, exponent floats, CRLF line ending.
fn odd_client_lines() -> Vec<&'static str> {
    vec![
        r#"  { "method" : "tools/call" , "params":{"arguments":{"text":"caf\u00e9 \/ \"q\" \u2028 \ud83d\ude00"},"name":"echo"},"id":101 ,"jsonrpc":"2.0"}  "#,
        r#"{"jsonrpc":"2.0","id":102,"method":"tools/call","params":{"name":"echo","arguments":{"text":"big","n":123456789012345678901234567890,"f":1.50E+2,"z":-0}}}"#,
        "{\"jsonrpc\":\"2.0\",\"id\":\"s\\u0074r\",\"method\":\"tools/call\",\"params\":{\"name\":\"echo\",\"arguments\":{\"text\":\"tab\\there\"}}}\r",
        r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"x","progress":1,"total":1.0,"_meta":{"a":[{},[],null,true,false]}}}"#,
    ]
}

#[test]
fn client_to_server_bytes_are_identical() {
    let mut w = Wrapped::start(Options::default());
    w.initialize();
    w.ping("before");
    let before = w.upstream().len();
    for line in odd_client_lines() {
        w.send_raw(format!("{line}\n").as_bytes());
    }
    w.ping("after");
    let seen = w.upstream();
    let forwarded: Vec<String> = seen[before..seen.len() - 1]
        .iter()
        .map(|l| String::from_utf8(l.clone()).expect("utf8"))
        .collect();
    let sent: Vec<String> = odd_client_lines().into_iter().map(String::from).collect();
    assert_eq!(
        forwarded, sent,
        "upstream did not receive the exact bytes the client sent"
    );
}

#[test]
fn server_to_client_bytes_are_identical() {
    let odd = vec![
        // A server request with odd spacing, key order and escapes.
        r#"{ "params" : {"messages":[{"role":"user","content":{"type":"text","text":"\u00e9\n\"x\""}}],"maxTokens":10} , "method":"sampling/createMessage","id":"srv-1","jsonrpc":"2.0" }"#.to_owned(),
        // A notification with a big integer and an exponent.
        r#"{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":{"n":98765432109876543210987,"e":2E-3}}}"#.to_owned(),
        // The answer to the call, with its id spliced in by the script.
        r#"{"result":{"content":[{"text":"done \/ \u2028","type":"text"}],"isError":false},"id":{{id}},"jsonrpc":"2.0"}"#.to_owned(),
    ];
    let mut w = Wrapped::start(Options {
        script: Some(json!({ "odd": odd })),
        ..Default::default()
    });
    // The client declares sampling: the server's sampling request is its to answer.
    w.initialize_with(json!({"sampling": {}}));
    w.send(&json!({"jsonrpc":"2.0","id":77,"method":"tools/call","params":{"name":"odd","arguments":{}}}));
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(
            String::from_utf8(w.recv_raw(Duration::from_secs(10)).expect("line")).expect("utf8"),
        );
    }
    let want: Vec<String> = odd.iter().map(|l| l.replace("{{id}}", "77")).collect();
    assert_eq!(
        got, want,
        "the client did not receive the exact bytes the server sent"
    );
    // The client answers the server's request: forwarded byte for byte too.
    let answer = r#"{"id":"srv-1","jsonrpc":"2.0","result":{"model":"m","role":"assistant","content":{"type":"text","text":"ok"}}}"#;
    w.send_raw(format!("{answer}\n").as_bytes());
    w.ping("after");
    let seen = w.upstream();
    assert!(
        seen.iter().any(|l| l == answer.as_bytes()),
        "the answer to the server request was not forwarded verbatim"
    );
    let audit = w.audit();
    let allowed = audit.iter().filter(|r| r["decision"] == "allow").count();
    assert!(
        allowed >= 8,
        "every passing message has an allow record: {audit:#?}"
    );
    let v: Vec<&Value> = audit
        .iter()
        .filter(|r| r["method"] == "sampling/createMessage")
        .collect();
    assert_eq!(
        v.len(),
        2,
        "the server request and the answer to it are both audited"
    );
}

/// Issue 9 (10): numbers that are valid JSON but do not fit an f64 or a 64-bit integer (`1e400`,
/// 30 digits), negative zero and upper-case exponents pass strict parsing and reach the server
/// as the bytes that were sent; the same in an answer from the server.
#[test]
fn numbers_beyond_f64_are_valid_and_forwarded_verbatim() {
    let result = r#"{"jsonrpc":"2.0","id":{{id}},"result":{"content":[{"type":"text","text":"n"}],"structuredContent":{"big":1e400,"neg":-1E+400,"tiny":1e-400,"z":-0,"i":123456789012345678901234567890}}}"#;
    let mut w = Wrapped::start(Options {
        script: Some(json!({ "numbers": [result] })),
        ..Default::default()
    });
    w.initialize();
    w.ping("before");
    let before = w.upstream().len();
    let call = r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"echo","arguments":{"text":"n","a":1e400,"b":-0,"c":1E+2,"d":-123456789012345678901234567890,"e":[0.5e-400,-0.0E-0]}}}"#;
    w.send_raw(format!("{call}\n").as_bytes());
    // The echo server itself cannot parse 1e400 (serde_json) and never answers call 9; what
    // matters is that the proxy did not refuse it and forwarded it as sent.
    w.send(&json!({"jsonrpc":"2.0","id":"after","method":"ping"}));
    loop {
        let r = w.recv();
        assert!(r["id"] != 9, "the proxy refused a valid call: {r}");
        if r["id"] == "after" {
            break;
        }
    }
    assert_eq!(
        w.upstream()[before],
        call.as_bytes(),
        "upstream did not receive the exact bytes"
    );
    w.send_raw(b"{\"jsonrpc\":\"2.0\",\"id\":10,\"method\":\"tools/call\",\"params\":{\"name\":\"numbers\",\"arguments\":{}}}\n");
    let got = w.recv_raw(Duration::from_secs(10)).expect("answer");
    assert_eq!(
        String::from_utf8(got).expect("utf8"),
        result.replace("{{id}}", "10"),
        "the client did not receive the exact bytes the server sent"
    );
}
