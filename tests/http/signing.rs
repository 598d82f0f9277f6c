//! Signing requests with the HTTP header scheme, with the vector key of `fixtures/vectors`.

use serde_json::Value;

use super::{audit_events, echo_config, request, Resp, Serve, INIT, JSON_ONLY};
use crate::support;

pub fn vector_key() -> (ed25519_dalek::SigningKey, String) {
    let v: Value = serde_json::from_slice(
        &std::fs::read(support::fixture("vectors/signatures.json")).unwrap(),
    )
    .unwrap();
    let pem = v["keys"]["client"]["private_pem"].as_str().unwrap();
    let public = v["keys"]["client"]["public_key"]
        .as_str()
        .unwrap()
        .to_owned();
    (
        mcp_warden::sig::keys::signing_key_from_pem(pem).unwrap(),
        public,
    )
}

pub fn signed(
    key: &ed25519_dalek::SigningKey,
    body: &[u8],
    ts: i64,
    n: u8,
) -> Vec<(String, String)> {
    use base64::Engine as _;
    let nonce = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([n; 16]);
    mcp_warden::sig::http_scheme::sign(key, "echo", body, ts, &nonce)
        .pairs()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[test]
fn header_signatures_are_enforced() {
    let (key, public) = vector_key();
    let cfg = echo_config(&format!(
        "[signatures]\nmode = \"enforce\"\n[[identity.trusted_keys]]\nname = \"agent\"\npublic_key = {public:?}\nrole = \"client\"\n"
    ));
    let serve = Serve::start(&cfg, &[]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let send = |sid: Option<&str>, body: &[u8], sig: &[(String, String)]| {
        let mut h: Vec<(&str, &str)> = vec![JSON_ONLY];
        if let Some(s) = sid {
            h.push(("Mcp-Session-Id", s));
        }
        h.extend(sig.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        request(serve.addr, "POST", "/mcp", &h, body)
    };
    // Unsigned initialize: refused.
    assert_eq!(send(None, INIT.as_bytes(), &[]).status, 401);
    let init = send(
        None,
        INIT.as_bytes(),
        &signed(&key, INIT.as_bytes(), now, 1),
    );
    assert_eq!(init.status, 200, "{}", String::from_utf8_lossy(&init.body));
    let sid = init.header("mcp-session-id").unwrap().to_owned();
    let sid = Some(sid.as_str());
    let note = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    assert_eq!(send(sid, note, &signed(&key, note, now, 2)).status, 202);
    let list = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    assert_eq!(send(sid, list, &signed(&key, list, now, 3)).status, 200);
    let call = br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"signed"}}}"#;
    let good_sig = signed(&key, call, now, 4);
    let ok = send(sid, call, &good_sig);
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["result"]["content"][0]["text"], "signed");
    let expect = |r: Resp, code: i64| {
        assert_eq!(r.status, 401, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json()["error"]["code"], code, "{:?}", r.json());
    };
    let tampered = br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":"evil"}}}"#;
    expect(send(sid, tampered, &signed(&key, call, now, 5)), -32010);
    let late = br#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"echo","arguments":{"text":"late"}}}"#;
    expect(send(sid, late, &signed(&key, late, now - 3600, 6)), -32011);
    expect(send(sid, call, &good_sig), -32012);
    let events = audit_events(&serve);
    for e in [
        "auth.signature_invalid",
        "auth.timestamp_out_of_window",
        "auth.replay",
    ] {
        assert!(events.contains(&e.into()), "{e} not audited: {events:?}");
    }
}
