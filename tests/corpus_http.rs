//! Every HTTP-shaped case of the attack corpus (transport `http` or `both`; input kind `http`, a
//! `sequence` of `http` steps, or a `behaviour` / `server_behaviour` of the HTTP edge) in the
//! edge categories, through the real `mcp-warden serve` in front of the recording HTTP upstream
//! (`tests/http/echo_upstream.py`) and, for the control plane, its admin port.
//!
//! Each case is interpreted from its data: method, path, headers with their placeholders
//! (`{{now}}`, `{{now-301}}`, `{{nonce}}`, `{{session_id}}` from a real initialize, `{{kid}}`,
//! `{{ed25519_sign(...)}}` with the test-vector client key for the route's server name), body or
//! body generator, and every `variants_*`. Corpus addresses are mapped onto the real ones by port
//! (8808: the proxy, 8809: its admin port); a `Host` that names loopback or 0.0.0.0 is rewritten
//! to the bound address, any other `Host` (DNS rebinding) is sent as written.
//!
//! Asserted per request: `expected.http_status`, the JSON-RPC `error.code`, that the upstream's
//! record did not grow when `forwarded_upstream` is false, and the audit record (event, alert)
//! in the serve audit trail under `MCP_WARDEN_STATE/audit/`. Where the proxy knowingly differs
//! from the corpus, [`GAPS`] says how; such an aspect accepts the corpus value or the documented
//! actual one, and the run prints `KNOWN GAP` for it.

mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::raw_http::dechunk;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ed25519_dalek::SigningKey;
use mcp_warden::approval::ApprovalQueue;
use mcp_warden::sig::{http_scheme, keys, new_nonce, parse_nonce};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The route's `[[servers]]` name: also the audience of every signature.
const SERVER: &str = "echo";
const CATEGORIES: &[&str] = &[
    "framing",
    "transport",
    "session",
    "availability",
    "control_plane",
    "auth",
    "oauth_ssrf",
    "signature",
    "replay",
];
/// The corpus's admin port (its proxy is 8808: every other port means the proxy).
const CORPUS_ADMIN_PORT: u16 = 8809;

// ------------------------------------------------------------------ known gaps

/// Where the proxy differs from the corpus today (reported to the lead; not keyed on for
/// dispatch). `actual` lists what the proxy does instead, `|`-separated; "" = nothing (no audit
/// record written, no header). An aspect listed here accepts the corpus value or one of these.
struct Gap {
    case: &'static str,
    aspect: &'static str,
    actual: &'static str,
    why: &'static str,
}

const GAPS: &[Gap] = &[
    Gap {
        case: "HTTP-02",
        aspect: "audit_event",
        actual: "http.origin_rejected",
        why: "with a foreign Origin as well as a foreign Host, the Origin check fires first",
    },
    Gap {
        case: "HTTP-03",
        aspect: "audit_event",
        actual: "session.malformed",
        why: "a non-ASCII id is refused as malformed (400), not looked up",
    },
    Gap {
        case: "HTTP-03",
        aspect: "rate_limit",
        actual: "",
        why: "bursts of unknown session ids from one source are never answered 429",
    },
    Gap {
        case: "HTTP-05",
        aspect: "http_status",
        actual: "503",
        why: "past the stream cap: 503 with Retry-After (the timeouts answer 408)",
    },
    Gap {
        case: "HTTP-07",
        aspect: "audit_event",
        actual: "",
        why: "admin-port refusals are not audited",
    },
    Gap {
        case: "AUTH-01",
        aspect: "http_status",
        actual: "200",
        why: "no client token validation: the token is stripped and the request forwarded",
    },
    Gap {
        case: "AUTH-01",
        aspect: "forwarded_upstream",
        actual: "true",
        why: "forwarded, without the client's Authorization",
    },
    Gap {
        case: "AUTH-01",
        aspect: "audit_event",
        actual: "",
        why: "no token audience check, so no record of one",
    },
    Gap {
        case: "AUTH-01",
        aspect: "www_authenticate",
        actual: "",
        why: "no WWW-Authenticate challenge",
    },
    Gap {
        case: "AUTH-02",
        aspect: "audit_event",
        actual: "upstream.http_status",
        why: "recorded as a plain upstream HTTP status",
    },
];

fn gap(case: &Value, aspect: &str) -> Option<&'static Gap> {
    let id = case["id"].as_str().unwrap_or("");
    let g = GAPS.iter().find(|g| g.case == id && g.aspect == aspect)?;
    eprintln!(
        "  KNOWN GAP {id} {aspect}: proxy does {:?} ({})",
        g.actual, g.why
    );
    Some(g)
}

// ------------------------------------------------------------------ corpus

fn corpus() -> Vec<Value> {
    let text = std::fs::read_to_string(support::fixture("attacks/corpus.json")).expect("corpus");
    serde_json::from_str(&text).expect("corpus JSON")
}

fn http_shaped(case: &Value) -> bool {
    let input = &case["input"];
    match input["kind"].as_str().unwrap_or("") {
        "http" => true,
        "sequence" => input["steps"]
            .as_array()
            .is_some_and(|s| s.iter().all(|step| step.get("http").is_some())),
        "behaviour" | "server_behaviour" => case["transport"] == "http",
        _ => false,
    }
}

fn cases(kinds: &[&str]) -> Vec<Value> {
    corpus()
        .into_iter()
        .filter(|c| CATEGORIES.contains(&c["category"].as_str().unwrap_or("")))
        .filter(|c| matches!(c["transport"].as_str(), Some("http") | Some("both")))
        .filter(http_shaped)
        .filter(|c| kinds.contains(&c["input"]["kind"].as_str().unwrap_or("")))
        .collect()
}

// ------------------------------------------------------------------ processes

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The recording HTTP upstream, killed on drop.
struct Upstream {
    child: Child,
    url: String,
    record: PathBuf,
}

impl Upstream {
    fn start(dir: &Path, args: &[String]) -> Upstream {
        let record = dir.join(format!("upstream-{}.jsonl", rand_hex(4)));
        let mut child = Command::new("python3")
            .arg(repo().join("tests/http/echo_upstream.py"))
            .arg(&record)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start echo upstream");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("port");
        let port: u16 = line.trim().parse().expect("port number");
        Upstream {
            child,
            url: format!("http://127.0.0.1:{port}/mcp"),
            record,
        }
    }

    /// Every request the upstream received, in order.
    fn seen(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `mcp-warden serve` (`support::serve`) with its admin port, state in a temp dir.
struct Serve {
    _proc: support::serve::ServeProc,
    addr: SocketAddr,
    admin: Option<SocketAddr>,
    dir: tempfile::TempDir,
}

impl Serve {
    fn start(config: &str) -> Serve {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = dir.path().join("proxy.toml");
        std::fs::write(&cfg, config).expect("config");
        let proc = support::serve::ServeProc::start(&cfg, &dir.path().join("state"), None, &[]);
        Serve {
            addr: proc.addr,
            admin: proc.admin,
            _proc: proc,
            dir,
        }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Every record of the serve audit trail (`state/audit/*.jsonl`) so far.
    fn audit(&self) -> Vec<Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.state().join("audit"))
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "jsonl"));
        files.sort();
        files
            .iter()
            .flat_map(|f| {
                std::fs::read_to_string(f)
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn audit_text(&self) -> String {
        self.audit()
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The first record after `from` with one of `events`, waiting for the flusher (≤100 ms).
    fn wait_audit(&self, from: usize, events: &[&str]) -> Option<Value> {
        let deadline = Instant::now() + Duration::from_secs(4);
        loop {
            let found = self
                .audit()
                .into_iter()
                .skip(from)
                .find(|r| events.iter().any(|e| r["event"] == *e));
            if found.is_some() || Instant::now() > deadline {
                return found;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn rand_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    rand::fill(&mut b[..]);
    hex::encode(b)
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

// ------------------------------------------------------------------ keys

fn vectors() -> Value {
    serde_json::from_slice(&std::fs::read(support::fixture("vectors/signatures.json")).unwrap())
        .unwrap()
}

fn client_key() -> SigningKey {
    let v = vectors();
    keys::signing_key_from_pem(v["keys"]["client"]["private_pem"].as_str().unwrap()).unwrap()
}

fn kid_of(key: &SigningKey) -> String {
    keys::kid_of(&key.verifying_key())
}

/// The `X-MCP-Signature` value of `body` for our route.
fn sign_value(key: &SigningKey, body: &[u8], ts: i64, nonce: &str) -> String {
    http_scheme::sign(key, SERVER, body, ts, nonce)
        .signature
        .expect("signature")
}

/// The same signature with `s + L`: equal modulo the group order, rejected by strict checks.
fn non_canonical(sig_b64: &str) -> String {
    // L = 2^252 + 27742317777372353535851937790883648493, little-endian.
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut sig = STANDARD.decode(sig_b64).expect("b64");
    let mut carry = 0u16;
    for (i, l) in L.iter().enumerate() {
        let sum = u16::from(sig[32 + i]) + u16::from(*l) + carry;
        sig[32 + i] = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0, "s + L fits in 256 bits");
    STANDARD.encode(sig)
}

fn jwt(claims: &str) -> String {
    let mut payload = serde_json::Map::new();
    for kv in claims.split_whitespace() {
        if let Some((k, v)) = kv.split_once('=') {
            payload.insert(k.into(), json!(v));
        }
    }
    payload.insert("sub".into(), json!("user-1"));
    payload.insert("exp".into(), json!(now() + 3600));
    let enc = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.{}",
        enc(&json!({"alg": "RS256", "typ": "JWT", "kid": "gh"})),
        enc(&Value::Object(payload)),
        URL_SAFE_NO_PAD.encode(b"not-a-real-signature-but-opaque-to-the-proxy")
    )
}

// ------------------------------------------------------------------ raw HTTP

#[derive(Debug, Default)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

type Headers = Vec<(String, Vec<u8>)>;

fn has(headers: &Headers, name: &str) -> bool {
    headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name))
}

fn get<'a>(headers: &'a Headers, name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}

fn set(headers: &mut Headers, name: &str, value: &[u8]) {
    match headers
        .iter_mut()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
    {
        Some(h) => h.1 = value.to_vec(),
        None => headers.push((name.to_owned(), value.to_vec())),
    }
}

fn head_bytes(method: &str, path: &str, headers: &Headers, close: bool) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\n").into_bytes();
    for (k, v) in headers {
        head.extend_from_slice(k.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(v);
        head.extend_from_slice(b"\r\n");
    }
    if close {
        head.extend_from_slice(b"Connection: close\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// Read one response: the head, then the body by Content-Length, chunked to its end, only the
/// head of an event stream, or to EOF. `None`: the connection closed before a response head.
fn read_response(s: &mut TcpStream) -> Option<Resp> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let split = loop {
        if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next()?.get(9..12)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut resp = Resp {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    };
    let chunked = resp
        .header("transfer-encoding")
        .is_some_and(|v| v.contains("chunked"));
    let length = resp
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok());
    if resp
        .header("content-type")
        .is_some_and(|v| v.starts_with("text/event-stream"))
    {
        return Some(resp);
    }
    loop {
        let done = match length {
            Some(n) => resp.body.len() >= n,
            None if chunked => resp.body.windows(5).any(|w| w == b"0\r\n\r\n"),
            None => false,
        };
        if done {
            break;
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => resp.body.extend_from_slice(&buf[..n]),
        }
    }
    if chunked {
        resp.body = dechunk(&resp.body);
    }
    Some(resp)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// One request on a fresh connection (`Connection: close`); Content-Length added when absent.
fn exchange(addr: SocketAddr, method: &str, path: &str, headers: &Headers, body: &[u8]) -> Resp {
    let mut h = headers.clone();
    if !has(&h, "content-length") && !has(&h, "transfer-encoding") {
        h.push(("Content-Length".into(), body.len().to_string().into_bytes()));
    }
    let mut s = connect(addr);
    s.write_all(&head_bytes(method, path, &h, true)).unwrap();
    let _ = s.write_all(body);
    read_response(&mut s).unwrap_or_else(|| panic!("no answer to {method} {path}"))
}

fn plain_headers(addr: SocketAddr, extra: &[(&str, &str)]) -> Headers {
    let mut h: Headers = vec![
        ("Host".into(), addr.to_string().into_bytes()),
        ("Content-Type".into(), b"application/json".to_vec()),
        ("Accept".into(), b"application/json".to_vec()),
    ];
    for (k, v) in extra {
        set(&mut h, k, v.as_bytes());
    }
    h
}

// ------------------------------------------------------------------ an environment per case

/// One serve in front of one recording upstream, with an open session.
struct Env {
    serve: Serve,
    upstream: Upstream,
    /// Signed requests (`signatures.mode = "enforce"`).
    signing: bool,
    key: SigningKey,
    session: String,
    _tmp: tempfile::TempDir,
}

fn config(upstream_url: &str, sig_mode: Option<&str>, serve_extra: &str) -> String {
    let mut c = String::from("[admin]\nlisten = \"127.0.0.1:0\"\n\n");
    if !serve_extra.is_empty() {
        c.push_str(&format!("[serve]\n{serve_extra}\n\n"));
    }
    if let Some(mode) = sig_mode {
        let public = vectors()["keys"]["client"]["public_key"]
            .as_str()
            .unwrap()
            .to_owned();
        c.push_str(&format!(
            "[signatures]\nmode = \"{mode}\"\n\n[[identity.trusted_keys]]\nname = \"client-1\"\npublic_key = {public:?}\nrole = \"client\"\n\n"
        ));
    }
    c.push_str(&format!(
        "[[servers]]\nname = \"{SERVER}\"\nurl = {upstream_url:?}\n"
    ));
    c
}

/// Tools the upstream offers: whatever the corpus calls, so only the checks in question refuse.
fn tools_called(case: &Value) -> String {
    let mut names = vec!["echo".to_owned()];
    let text = case["input"].to_string();
    for m in regex::Regex::new(r#""name":"([A-Za-z0-9_./-]+)""#)
        .unwrap()
        .captures_iter(&text)
    {
        if !names.contains(&m[1].to_owned()) && m[1].chars().all(|c| c != '.') {
            names.push(m[1].to_owned());
        }
    }
    names.join(",")
}

impl Env {
    fn start(sig_mode: Option<&str>, tools: &str, serve_extra: &str, up_args: &[String]) -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let mut args = vec!["--tools".to_owned(), tools.to_owned()];
        args.extend_from_slice(up_args);
        let upstream = Upstream::start(tmp.path(), &args);
        let serve = Serve::start(&config(&upstream.url, sig_mode, serve_extra));
        let mut env = Env {
            serve,
            upstream,
            signing: sig_mode == Some("enforce"),
            key: client_key(),
            session: String::new(),
            _tmp: tmp,
        };
        env.session = env.open_session();
        env
    }

    fn post(&self, session: Option<&str>, body: &Value) -> Resp {
        let bytes = serde_json::to_vec(body).unwrap();
        let mut h = plain_headers(self.serve.addr, &[("MCP-Protocol-Version", "2025-06-18")]);
        if let Some(s) = session {
            set(&mut h, "Mcp-Session-Id", s.as_bytes());
        }
        if self.signing {
            let sig = http_scheme::sign(&self.key, SERVER, &bytes, now(), &new_nonce());
            for (k, v) in sig.pairs() {
                set(&mut h, k, v.as_bytes());
            }
        }
        exchange(self.serve.addr, "POST", "/mcp", &h, &bytes)
    }

    /// initialize, notifications/initialized, tools/list (so the baseline knows the tools).
    fn open_session(&self) -> String {
        let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
            "protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"corpus","version":"1"}}});
        let r = self.post(None, &init);
        assert_eq!(r.status, 200, "initialize: {}", r.text());
        let sid = r.header("mcp-session-id").expect("session id").to_owned();
        let note = json!({"jsonrpc":"2.0","method":"notifications/initialized"});
        assert_eq!(self.post(Some(&sid), &note).status, 202);
        let list = self.post(
            Some(&sid),
            &json!({"jsonrpc":"2.0","id":"setup-list","method":"tools/list"}),
        );
        assert_eq!(list.status, 200, "tools/list: {}", list.text());
        sid
    }

    fn seen(&self) -> usize {
        self.upstream.seen().len()
    }
}

// ------------------------------------------------------------------ materialising requests

/// What one request of a case resolves to.
struct Request {
    label: String,
    method: String,
    path: String,
    headers: Headers,
    body: Body,
    target: SocketAddr,
}

#[derive(Clone)]
enum Body {
    Bytes(Vec<u8>),
    /// `fill` repeated `len` times; sent after the head, or chunked when so declared.
    Generated {
        fill: u8,
        len: usize,
    },
}

/// Per-case placeholder state: `{{now}}` is fixed for the case, so a re-sent step is
/// byte-identical; corpus nonce literals map to one valid nonce each.
struct Ctx<'a> {
    env: &'a Env,
    now: i64,
    nonces: HashMap<String, String>,
}

impl Ctx<'_> {
    fn target(&self, headers: &Headers) -> SocketAddr {
        let host = get(headers, "host")
            .map(|h| String::from_utf8_lossy(h).into_owned())
            .unwrap_or_default();
        let port = host
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse::<u16>().ok());
        match port {
            Some(CORPUS_ADMIN_PORT) => self.env.serve.admin.expect("admin port started"),
            _ => self.env.serve.addr,
        }
    }

    /// The Host as a local client would send it: loopback and 0.0.0.0 names become the bound
    /// address; any other name (the point of a rebinding case) is kept.
    fn host(&self, value: &str, target: SocketAddr) -> String {
        let name = value.rsplit_once(':').map_or(value, |(h, _)| h);
        match name {
            "127.0.0.1" | "localhost" | "[::1]" | "0.0.0.0" => target.to_string(),
            _ => value.to_owned(),
        }
    }

    fn nonce(&mut self, literal: &str) -> String {
        if literal == "{{nonce}}" {
            return new_nonce();
        }
        if parse_nonce(literal).is_ok() {
            return literal.to_owned();
        }
        // Too short for SPEC §4 (16..64 bytes): the same literal stands for the same nonce.
        self.nonces
            .entry(literal.to_owned())
            .or_insert_with(|| {
                let d = Sha256::digest(format!("{}:{literal}", rand_hex(8)));
                URL_SAFE_NO_PAD.encode(&d[..16])
            })
            .clone()
    }

    fn scalar(&self, value: &str) -> String {
        let re = regex::Regex::new(r"\{\{([^{}]*)\}\}").unwrap();
        re.replace_all(value, |c: &regex::Captures| {
            let p = c[1].trim();
            if let Some(off) = p.strip_prefix("now") {
                let off: i64 = off.parse().unwrap_or(0);
                (self.now + off).to_string()
            } else if p == "session_id" {
                self.env.session.clone()
            } else if p == "kid" {
                kid_of(&self.env.key)
            } else if let Some(claims) = p.strip_prefix("JWT ") {
                jwt(claims)
            } else {
                c[0].to_owned()
            }
        })
        .into_owned()
    }

    /// Headers with every placeholder filled; the signature last, over the final body.
    fn headers(
        &mut self,
        spec: &serde_json::Map<String, Value>,
        body: &Body,
    ) -> (Headers, SocketAddr) {
        let mut out: Headers = Vec::new();
        let mut sig_spec = None;
        let mut target = self.env.serve.addr;
        if let Some(h) = spec.iter().find(|(k, _)| k.eq_ignore_ascii_case("host")) {
            let mut tmp = Headers::new();
            set(&mut tmp, "Host", h.1.as_str().unwrap_or("").as_bytes());
            target = self.target(&tmp);
        }
        for (k, v) in spec {
            let v = v.as_str().unwrap_or("");
            let value = if k.eq_ignore_ascii_case("host") {
                self.host(v, target)
            } else if k.eq_ignore_ascii_case("x-mcp-nonce") {
                self.nonce(v)
            } else if k.eq_ignore_ascii_case("x-mcp-signature") {
                sig_spec = Some(v.to_owned());
                continue;
            } else {
                self.scalar(v)
            };
            out.push((k.clone(), value.into_bytes()));
        }
        if let Some(s) = sig_spec {
            let value = self.signature(&s, &mut out, body);
            out.push(("X-MCP-Signature".into(), value.into_bytes()));
        }
        (out, target)
    }

    fn signature(&self, spec: &str, headers: &mut Headers, body: &Body) -> String {
        let Body::Bytes(bytes) = body else {
            panic!("a signature over a generated body")
        };
        let text =
            |name: &str| String::from_utf8_lossy(get(headers, name).unwrap_or(b"")).into_owned();
        let ts: i64 = text("X-MCP-Timestamp").parse().unwrap_or(self.now);
        let nonce = text("X-MCP-Nonce");
        let key = &self.env.key;
        match spec {
            s if s.starts_with("{{ed25519_sign(") && s.contains("ORIGINAL") => {
                sign_value(key, &original(bytes), ts, &nonce)
            }
            s if s.starts_with("{{ed25519_sign(") => sign_value(key, bytes, ts, &nonce),
            "{{64 zero bytes b64}}" => STANDARD.encode([0u8; 64]),
            s if s.contains("non-canonical") => non_canonical(&sign_value(key, bytes, ts, &nonce)),
            s if s.contains("unknown key") => {
                let mut seed = [0u8; 32];
                rand::fill(&mut seed);
                let stranger = SigningKey::from_bytes(&seed);
                set(headers, "X-MCP-Key-Id", kid_of(&stranger).as_bytes());
                sign_value(&stranger, bytes, ts, &nonce)
            }
            s if s.starts_with("{{") => panic!("signature placeholder {s} not understood"),
            literal => literal.to_owned(),
        }
    }
}

/// The body as it was before it was tampered with: the same call with other arguments.
fn original(tampered: &[u8]) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(tampered).expect("JSON body");
    if let Some(args) = v["params"]["arguments"].as_object_mut() {
        for (k, a) in args.iter_mut() {
            *a = json!(if k == "path" {
                "/workspace/notes.txt"
            } else {
                "hello"
            });
        }
    } else {
        v["id"] = json!(v["id"].as_i64().unwrap_or(0) + 1);
    }
    serde_json::to_vec(&v).unwrap()
}

fn body_of(spec: &Value) -> Body {
    if let Some(g) = spec.get("body_generator") {
        return Body::Generated {
            fill: g["fill_byte"].as_str().unwrap_or("A").as_bytes()[0],
            len: g["bytes"].as_u64().expect("bytes") as usize,
        };
    }
    match spec.get("body") {
        Some(Value::String(s)) => Body::Bytes(s.clone().into_bytes()),
        Some(v) => Body::Bytes(serde_json::to_vec(v).unwrap()),
        None => Body::Bytes(Vec::new()),
    }
}

/// Header sets of a request spec: `variants_headers`, else `headers` with each `variants_NAME`
/// value in turn (the base value first), plus any `'Name: value'` the notes say to reject too.
fn header_variants(spec: &Value, case: &Value) -> Vec<(String, serde_json::Map<String, Value>)> {
    if let Some(vs) = spec["variants_headers"].as_array() {
        return vs
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("headers[{i}]"), v.as_object().unwrap().clone()))
            .collect();
    }
    let base = spec["headers"].as_object().cloned().unwrap_or_default();
    let mut out = vec![("base".to_owned(), base.clone())];
    if let Some(obj) = spec.as_object() {
        for (k, vs) in obj {
            let Some(name) = k.strip_prefix("variants_") else {
                continue;
            };
            for (i, v) in vs.as_array().into_iter().flatten().enumerate() {
                let mut h = base.clone();
                h.insert(name.to_owned(), v.clone());
                out.push((
                    format!("{name}[{i}]={}", short(v.as_str().unwrap_or(""))),
                    h,
                ));
            }
        }
    }
    let notes = case["expected"]["notes"].as_str().unwrap_or("");
    for c in regex::Regex::new(r"reject '([A-Za-z-]+): ([^']*)'")
        .unwrap()
        .captures_iter(notes)
    {
        let mut h = base.clone();
        h.insert(c[1].to_owned(), json!(c[2].to_owned()));
        out.push((format!("notes: {}: {}", &c[1], &c[2]), h));
    }
    out
}

fn short(s: &str) -> String {
    if s.len() > 40 {
        format!("{}…({} bytes)", &s[..40], s.len())
    } else {
        s.to_owned()
    }
}

fn materialise(ctx: &mut Ctx, spec: &Value, case: &Value) -> Vec<Request> {
    let body = body_of(spec);
    let method = spec["method"].as_str().unwrap_or("POST").to_owned();
    let path = spec["path"].as_str().unwrap_or("/mcp").to_owned();
    let mut out = Vec::new();
    for (label, h) in header_variants(spec, case) {
        let (headers, target) = ctx.headers(&h, &body);
        out.push(Request {
            label,
            method: method.clone(),
            path: path.clone(),
            headers,
            body: body.clone(),
            target,
        });
    }
    // A generated body declared by Content-Length; the description also names a chunked one.
    let chunked_too = case["description"]
        .as_str()
        .is_some_and(|d| d.contains("chunked"));
    if matches!(body, Body::Generated { .. }) && chunked_too {
        let mut r = materialise_one_chunked(&out[0]);
        r.label = "chunked".into();
        out.push(r);
    }
    out
}

fn materialise_one_chunked(r: &Request) -> Request {
    let mut headers: Headers = r
        .headers
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("content-length"))
        .cloned()
        .collect();
    headers.push(("Transfer-Encoding".into(), b"chunked".to_vec()));
    Request {
        label: String::new(),
        method: r.method.clone(),
        path: r.path.clone(),
        headers,
        body: r.body.clone(),
        target: r.target,
    }
}

/// Send a materialised request. A generated body declared by Content-Length must be refused
/// on the head alone: the answer is read before one body byte is written.
fn send(r: &Request) -> Resp {
    match &r.body {
        Body::Bytes(b) => exchange(r.target, &r.method, &r.path, &r.headers, b),
        Body::Generated { fill, len } => {
            let mut s = connect(r.target);
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
            s.write_all(&head_bytes(&r.method, &r.path, &r.headers, true))
                .unwrap();
            let chunked = get(&r.headers, "transfer-encoding").is_some();
            if !chunked {
                let resp = read_response(&mut s).expect("answer before the body was sent");
                // What a client would go on to send; the proxy has answered and may be gone.
                let chunk = vec![*fill; 1 << 20];
                let _ = s.write_all(&chunk);
                return resp;
            }
            let mut w = s.try_clone().unwrap();
            let (fill, len) = (*fill, *len);
            let writer = std::thread::spawn(move || {
                let chunk = vec![fill; 64 * 1024];
                let mut sent = 0;
                while sent < len {
                    let n = chunk.len().min(len - sent);
                    let mut frame = format!("{n:x}\r\n").into_bytes();
                    frame.extend_from_slice(&chunk[..n]);
                    frame.extend_from_slice(b"\r\n");
                    if w.write_all(&frame).is_err() {
                        return sent;
                    }
                    sent += n;
                }
                let _ = w.write_all(b"0\r\n\r\n");
                sent
            });
            let resp = read_response(&mut s).expect("answer to a chunked body over the cap");
            let _ = s.shutdown(Shutdown::Both);
            let sent = writer.join().unwrap();
            assert!(
                sent < len,
                "the proxy read the whole {len} byte chunked body instead of stopping at its cap"
            );
            resp
        }
    }
}

// ------------------------------------------------------------------ expectations

fn accepted_events(case: &Value, expected: &str) -> Vec<String> {
    let mut ev = vec![expected.to_owned()];
    if let Some(g) = gap(case, "audit_event") {
        ev.extend(
            g.actual
                .split('|')
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        );
        if g.actual.is_empty() {
            ev.clear();
        }
    }
    ev
}

fn status_ok(case: &Value, want: u16, got: u16) -> bool {
    got == want
        || gap(case, "http_status")
            .is_some_and(|g| g.actual.split('|').any(|a| a == got.to_string()))
}

/// The assertions every refused request of a case shares. `before` = upstream record count,
/// `audit_from` = audit records before the request.
fn assert_refused(
    env: &Env,
    case: &Value,
    r: &Request,
    resp: &Resp,
    before: usize,
    audit_from: usize,
) {
    let id = case["id"].as_str().unwrap();
    let expected = &case["expected"];
    let what = format!("{id} [{}]", r.label);
    if let Some(want) = expected["http_status"].as_u64() {
        let mut ok = status_ok(case, want as u16, resp.status);
        // The notes of a session case: malformed (non-visible-ASCII) or oversize ids => 400.
        let notes = expected["notes"].as_str().unwrap_or("");
        if !ok && resp.status == 400 && notes.contains("oversize => 400") {
            let sid = get(&r.headers, "mcp-session-id").unwrap_or(b"");
            ok = sid.len() > 128 || sid.iter().any(|b| !(0x21..=0x7e).contains(b));
        }
        assert!(
            ok,
            "{what}: status {} (want {want}): {}",
            resp.status,
            resp.text()
        );
    }
    if let Some(code) = expected["jsonrpc_error_code"].as_i64() {
        let got = resp.json().map(|v| v["error"]["code"].clone());
        let ok = got.as_ref() == Some(&json!(code))
            || gap(case, "jsonrpc_error_code").is_some_and(|_| got.is_none());
        assert!(
            ok,
            "{what}: JSON-RPC code {got:?} (want {code}): {}",
            resp.text()
        );
    }
    if let Some(www) = expected["www_authenticate"].as_str() {
        let got = resp.header("www-authenticate");
        assert!(
            got.is_some_and(|g| g.starts_with(www)) || gap(case, "www_authenticate").is_some(),
            "{what}: WWW-Authenticate {got:?} (want {www})"
        );
    }
    if expected["forwarded_upstream"] == false {
        let seen = env.upstream.seen();
        let forwarded = seen.len() > before;
        assert!(
            !forwarded || gap(case, "forwarded_upstream").is_some(),
            "{what}: the upstream saw it: {:?}",
            seen.last()
        );
    }
    if let Some(event) = expected["audit_event"].as_str() {
        assert_audit(env, case, &what, event, audit_from);
    }
}

fn assert_audit(env: &Env, case: &Value, what: &str, event: &str, audit_from: usize) {
    let events = accepted_events(case, event);
    if events.is_empty() {
        return;
    }
    let names: Vec<&str> = events.iter().map(String::as_str).collect();
    let rec = env.serve.wait_audit(audit_from, &names).unwrap_or_else(|| {
        let got: Vec<Value> = env
            .serve
            .audit()
            .into_iter()
            .skip(audit_from)
            .map(|r| r["event"].clone())
            .collect();
        panic!("{what}: no audit record with event {names:?}; got {got:?}")
    });
    if let Some(alert) = case["expected"]["alert"].as_bool() {
        // `alert` is left out of a record when false.
        let got = rec["alert"].as_bool().unwrap_or(false);
        let ok = got == alert || gap(case, "alert").is_some_and(|g| got.to_string() == g.actual);
        assert!(ok, "{what}: alert flag {got} (want {alert}): {rec}");
    }
}

/// Client credentials never reach the upstream, nor the audit trail.
fn assert_credentials_kept(env: &Env, case: &Value, r: &Request) {
    let Some(auth) = get(&r.headers, "authorization") else {
        return;
    };
    let secret = String::from_utf8_lossy(auth);
    let token = secret.trim_start_matches("Bearer ").to_owned();
    for seen in env.upstream.seen() {
        assert!(
            seen["headers"].get("authorization").is_none() && !seen.to_string().contains(&token),
            "{}: the client's Authorization reached the upstream: {seen}",
            case["id"]
        );
    }
    assert!(
        !env.serve.audit_text().contains(&token),
        "{}: the client's token was written to the audit trail",
        case["id"]
    );
}

// ------------------------------------------------------------------ request cases

fn env_for(case: &Value, sig_mode: Option<&str>) -> Env {
    Env::start(sig_mode, &tools_called(case), "", &[])
}

fn sig_mode_of(case: &Value) -> Option<&'static str> {
    matches!(case["category"].as_str(), Some("signature" | "replay")).then_some("enforce")
}

fn run_request_case(case: &Value) {
    let env = env_for(case, sig_mode_of(case));
    let mut ctx = Ctx {
        env: &env,
        now: now(),
        nonces: HashMap::new(),
    };
    let input = &case["input"];
    if input["kind"] == "sequence" {
        run_sequence(&env, &mut ctx, case);
    } else if input["path"]
        .as_str()
        .is_some_and(|p| !p.starts_with("/mcp"))
    {
        run_control_plane(&env, &mut ctx, case);
    } else {
        for r in materialise(&mut ctx, input, case) {
            let (before, audit_from) = (env.seen(), env.serve.audit().len());
            let resp = send(&r);
            eprintln!("  {} [{}] -> {}", case["id"], r.label, resp.status);
            assert_refused(&env, case, &r, &resp, before, audit_from);
            assert_credentials_kept(&env, case, &r);
        }
        if let Some(rate) = input["rate"].as_str() {
            run_burst(&env, &mut ctx, case, rate);
        }
    }
    // The session survives every refusal.
    let ping = env.post(
        Some(&env.session),
        &json!({"jsonrpc":"2.0","id":"after","method":"ping"}),
    );
    assert_eq!(
        ping.status,
        200,
        "{}: session after the case: {}",
        case["id"],
        ping.text()
    );
    drop(ctx);
    if let Some(audit_mode) = case["expected"].get("audit_mode_expected") {
        run_audit_mode(case, audit_mode);
    }
}

/// `sequence`: steps in order, each after its `delay_s`; `expect: allowed` steps must pass and
/// reach the upstream, the others are refused as the case expects.
fn run_sequence(env: &Env, ctx: &mut Ctx, case: &Value) {
    for (i, step) in case["input"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        if let Some(d) = step["delay_s"].as_f64() {
            std::thread::sleep(Duration::from_secs_f64(d));
        }
        for mut r in materialise(ctx, &step["http"], case) {
            r.label = format!("step {i} from {}", step["from"].as_str().unwrap_or("?"));
            let (before, audit_from) = (env.seen(), env.serve.audit().len());
            let resp = send(&r);
            eprintln!("  {} [{}] -> {}", case["id"], r.label, resp.status);
            if step["expect"] == "allowed" {
                assert_eq!(
                    resp.status,
                    200,
                    "{} [{}]: {}",
                    case["id"],
                    r.label,
                    resp.text()
                );
                assert!(resp.json().is_some_and(|v| v.get("result").is_some()));
                assert_eq!(
                    env.seen(),
                    before + 1,
                    "{} [{}]: not forwarded",
                    case["id"],
                    r.label
                );
            } else {
                assert_refused(env, case, &r, &resp, before, audit_from);
            }
        }
    }
}

/// The same unsigned request with `signatures.mode = "audit"`: it passes, and says so.
fn run_audit_mode(case: &Value, expected: &Value) {
    let env = env_for(case, Some("audit"));
    let mut ctx = Ctx {
        env: &env,
        now: now(),
        nonces: HashMap::new(),
    };
    for r in materialise(&mut ctx, &case["input"], case) {
        let (before, audit_from) = (env.seen(), env.serve.audit().len());
        let resp = send(&r);
        eprintln!(
            "  {} [audit mode, {}] -> {}",
            case["id"], r.label, resp.status
        );
        if expected["action"] == "pass" {
            assert_eq!(
                resp.status,
                200,
                "{} audit mode: {}",
                case["id"],
                resp.text()
            );
        }
        if expected["forwarded_upstream"] == true {
            assert_eq!(
                env.seen(),
                before + 1,
                "{} audit mode: not forwarded",
                case["id"]
            );
        }
        if let Some(event) = expected["audit_event"].as_str() {
            assert!(
                env.serve.wait_audit(audit_from, &[event]).is_some(),
                "{} audit mode: no {event} record",
                case["id"]
            );
        }
    }
}

/// `rate: "N distinct ids/s from one source"`: N fresh ids in a second; never forwarded, each
/// refused, and (notes) bursts answered 429.
fn run_burst(env: &Env, ctx: &mut Ctx, case: &Value, rate: &str) {
    let n: usize = rate
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("rate count");
    let template = materialise(ctx, &case["input"], case).remove(0);
    let before = env.seen();
    let started = Instant::now();
    let mut statuses: HashMap<u16, usize> = HashMap::new();
    for i in 0..n {
        let mut r = Request {
            label: format!("burst {i}"),
            headers: template.headers.clone(),
            body: template.body.clone(),
            method: template.method.clone(),
            path: template.path.clone(),
            target: template.target,
        };
        set(&mut r.headers, "Mcp-Session-Id", rand_hex(16).as_bytes());
        *statuses.entry(send(&r).status).or_default() += 1;
        // No faster than the corpus rate.
        let due = started + Duration::from_secs_f64((i + 1) as f64 / n as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    eprintln!(
        "  {} burst of {n} ids in {:?}: {statuses:?}",
        case["id"],
        started.elapsed()
    );
    assert_eq!(
        env.seen(),
        before,
        "{}: a burst request reached the upstream",
        case["id"]
    );
    assert!(
        statuses.keys().all(|s| *s == 404 || *s == 429),
        "{}: burst answers {statuses:?}",
        case["id"]
    );
    if case["expected"]["notes"]
        .as_str()
        .is_some_and(|n| n.contains("(429)"))
    {
        assert!(
            statuses.contains_key(&429) || gap(case, "rate_limit").is_some(),
            "{}: a burst of unknown ids was never rate-limited: {statuses:?}",
            case["id"]
        );
    }
}

/// A request to the admin port (control plane): the corpus path as written, and the approval
/// API it stands for (`request=ID&decision=allow` → `POST /api/v1/approvals/ID/approve`) against
/// a real pending approval, which must stay pending.
fn run_control_plane(env: &Env, ctx: &mut Ctx, case: &Value) {
    let id = case["id"].as_str().unwrap();
    let queue = ApprovalQueue::new(env.serve.state().join("approvals"), Duration::from_secs(60));
    let ticket = queue
        .submit(SERVER, "write_file", "high", "corpus", None, vec![])
        .expect("pending approval");
    let input = &case["input"];
    let mut requests = materialise(ctx, input, case);
    let corpus_path = input["path"].as_str().unwrap();
    let query: HashMap<&str, &str> = corpus_path
        .split_once('?')
        .map(|(_, q)| q.split('&').filter_map(|kv| kv.split_once('=')).collect())
        .unwrap_or_default();
    let verb = match query.get("decision") {
        Some(&"allow") | Some(&"approve") => "approve",
        _ => "deny",
    };
    let base = requests[0].headers.clone();
    let target = requests[0].target;
    let api = format!("/api/v1/approvals/{}/{verb}", ticket.id);
    requests.push(Request {
        label: format!("POST {api} (for {:?})", query.get("request")),
        method: "POST".into(),
        path: api.clone(),
        headers: base.clone(),
        body: Body::Bytes(Vec::new()),
        target,
    });
    // A browser names the address it was told: Host 0.0.0.0:PORT, as in the corpus.
    let mut literal = base.clone();
    set(
        &mut literal,
        "Host",
        format!("0.0.0.0:{}", target.port()).as_bytes(),
    );
    requests.push(Request {
        label: "POST with the corpus's 0.0.0.0 Host".into(),
        method: "POST".into(),
        path: api.clone(),
        headers: literal.clone(),
        body: Body::Bytes(Vec::new()),
        target,
    });
    // `also`: fetch(url, {mode: 'no-cors'}) — a GET a browser may send without Origin.
    if let Some(also) = input["also"].as_str() {
        if let Some(host) = regex::Regex::new(r"https?://([^/']+)/")
            .unwrap()
            .captures(also)
        {
            let port = host[1].rsplit_once(':').map_or("", |(_, p)| p);
            let name = host[1].rsplit_once(':').map_or(&host[1], |(h, _)| h);
            let mut h: Headers = vec![
                (
                    "Host".into(),
                    format!("{name}:{}", target.port()).into_bytes(),
                ),
                ("Sec-Fetch-Mode".into(), b"no-cors".to_vec()),
                ("Sec-Fetch-Site".into(), b"cross-site".to_vec()),
            ];
            assert_eq!(port.parse::<u16>().ok(), Some(CORPUS_ADMIN_PORT));
            set(&mut h, "Accept", b"*/*");
            requests.push(Request {
                label: format!("also: no-cors GET via {name}"),
                method: "GET".into(),
                path: "/api/v1/approvals".into(),
                headers: h,
                body: Body::Bytes(Vec::new()),
                target,
            });
        }
    }
    for r in &requests {
        let (before, audit_from) = (env.seen(), env.serve.audit().len());
        let resp = send(r);
        eprintln!(
            "  {id} [{}] -> {} {}",
            r.label,
            resp.status,
            resp.text().trim()
        );
        assert_refused(env, case, r, &resp, before, audit_from);
    }
    let pending = ApprovalQueue::list(&env.serve.state().join("approvals")).unwrap();
    let t = pending
        .iter()
        .find(|t| t.id == ticket.id)
        .unwrap_or_else(|| panic!("{id}: the approval was decided or removed: {pending:?}"));
    assert_eq!(
        serde_json::to_value(t).unwrap()["status"],
        "pending",
        "{id}: approval changed"
    );
    // The gate is the browser signal, not the API being down: without Origin it answers.
    let mut plain = base;
    plain.retain(|(k, _)| !k.eq_ignore_ascii_case("origin"));
    let ok = exchange(target, "GET", "/api/v1/approvals", &plain, b"");
    assert_eq!(ok.status, 200, "{id}: control request: {}", ok.text());
}

// ------------------------------------------------------------------ behaviour (HTTP-05)

fn number_before(text: &str, unit: &str) -> Option<f64> {
    let re = regex::Regex::new(&format!(r"(\d+(?:\.\d+)?)\s*{unit}")).unwrap();
    re.captures(text).and_then(|c| c[1].parse().ok())
}

/// Headers trickled one byte at a time: cut off at the configured header timeout.
fn slow_headers(case: &Value, step: &str) {
    let timeout_ms = 1000u64;
    let corpus_every = number_before(step, "s").unwrap_or(10.0);
    let env = Env::start(
        None,
        "echo",
        &format!("header_read_timeout_ms = {timeout_ms}"),
        &[],
    );
    let mut s = connect(env.serve.addr);
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(format!("POST /mcp HTTP/1.1\r\nHost: {}\r\n", env.serve.addr).as_bytes())
        .unwrap();
    // Scaled: the corpus trickles 1 byte / {corpus_every} s against a ~10 s timeout.
    let every = Duration::from_millis(timeout_ms / 5);
    let mut w = s.try_clone().unwrap();
    let trickle = std::thread::spawn(move || {
        for b in b"X-Slow: ".iter().chain([b'a'; 200].iter()) {
            if w.write_all(&[*b]).is_err() {
                return;
            }
            std::thread::sleep(every);
        }
    });
    let (before, started) = (env.seen(), Instant::now());
    let audit_from = env.serve.audit().len();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    let waited = started.elapsed();
    eprintln!(
        "  {} [headers 1 byte / {corpus_every} s, scaled to {every:?}] closed after {waited:?}, answer {:?}",
        case["id"],
        String::from_utf8_lossy(&rest[..rest.len().min(40)])
    );
    assert!(
        waited >= Duration::from_millis(timeout_ms * 8 / 10),
        "closed too early: {waited:?}"
    );
    assert!(
        waited < Duration::from_millis(timeout_ms * 5),
        "not cut off: {waited:?}"
    );
    check_timeout_answer(case, &rest);
    let _ = s.shutdown(Shutdown::Both);
    trickle.join().unwrap();
    assert_eq!(env.seen(), before, "slow headers reached the upstream");
    if let Some(event) = case["expected"]["audit_event"].as_str() {
        assert_audit(&env, case, "slow headers", event, audit_from);
    }
}

fn check_timeout_answer(case: &Value, raw: &[u8]) {
    let want = case["expected"]["http_status"].as_u64().unwrap_or(408);
    let got = (raw.len() >= 12)
        .then(|| String::from_utf8_lossy(&raw[9..12]).parse::<u64>().ok())
        .flatten();
    let ok = got == Some(want)
        || gap(case, "http_status").is_some_and(|g| {
            g.actual.split('|').any(|a| {
                (a == "closed" && got.is_none()) || Some(a.to_owned()) == got.map(|g| g.to_string())
            })
        });
    assert!(ok, "{}: answer {got:?} (want {want})", case["id"]);
}

/// `Content-Length: N, body 1 byte / T s`: the proxy gives up on the body.
fn slow_body(case: &Value, step: &str) {
    let declared = number_before(step, "").unwrap_or(1000.0) as usize;
    let every = Duration::from_secs_f64(number_before(step, "s").unwrap_or(5.0));
    let env = Env::start(None, "echo", "", &[]);
    let mut s = connect(env.serve.addr);
    s.set_read_timeout(Some(Duration::from_secs(50))).unwrap();
    let mut h = plain_headers(env.serve.addr, &[("Mcp-Session-Id", &env.session)]);
    set(&mut h, "Content-Length", declared.to_string().as_bytes());
    s.write_all(&head_bytes("POST", "/mcp", &h, true)).unwrap();
    let mut w = s.try_clone().unwrap();
    let stop = Arc::new(AtomicUsize::new(0));
    let stopped = stop.clone();
    let trickle = std::thread::spawn(move || {
        for _ in 0..declared {
            if w.write_all(b"{").is_err() {
                return;
            }
            let until = Instant::now() + every;
            while Instant::now() < until {
                if stopped.load(Ordering::SeqCst) == 1 {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    });
    let (before, started) = (env.seen(), Instant::now());
    let audit_from = env.serve.audit().len();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    let waited = started.elapsed();
    stop.store(1, Ordering::SeqCst);
    let _ = s.shutdown(Shutdown::Both);
    trickle.join().unwrap();
    eprintln!(
        "  {} [body {declared} bytes at 1 byte / {every:?}] answered after {waited:?}: {:?}",
        case["id"],
        String::from_utf8_lossy(&rest[..rest.len().min(60)])
    );
    assert!(
        waited < Duration::from_secs(45),
        "a slow body was never cut off ({waited:?})"
    );
    check_timeout_answer(case, &rest);
    assert_eq!(env.seen(), before, "a slow body reached the upstream");
    if let Some(event) = case["expected"]["audit_event"].as_str() {
        assert_audit(&env, case, "slow body", event, audit_from);
    }
}

/// `N x 'GET /mcp Accept: text/event-stream' held open`, scaled to a small stream cap: the
/// stream past the cap is refused, others are still served, and past the per-client
/// connection cap a connection is refused too.
fn held_streams(case: &Value, step: &str) {
    let (max_streams, max_conns) = (3usize, 6usize);
    let corpus_n = number_before(step, "x").unwrap_or(10000.0);
    let env = Env::start(
        None,
        "echo",
        &format!("max_streams = {max_streams}\nmax_connections_per_client = {max_conns}"),
        &["--sse-get".to_owned()],
    );
    let addr = env.serve.addr;
    let sse = plain_headers(
        addr,
        &[
            ("Accept", "text/event-stream"),
            ("Mcp-Session-Id", &env.session),
            ("MCP-Protocol-Version", "2025-06-18"),
        ],
    );
    let mut held = Vec::new();
    let mut refused = None;
    for i in 0..=max_streams {
        let mut s = connect(addr);
        s.write_all(&head_bytes("GET", "/mcp", &sse, false))
            .unwrap();
        let r = read_response(&mut s).expect("answer to GET");
        eprintln!(
            "  {} [GET stream {i} of {corpus_n} scaled to {}] -> {}",
            case["id"],
            max_streams + 1,
            r.status
        );
        if r.status == 200 {
            assert_eq!(r.header("content-type"), Some("text/event-stream"));
            held.push(s);
        } else {
            refused = Some(r);
            break;
        }
    }
    let refused = refused
        .unwrap_or_else(|| panic!("{}: {} streams held, none refused", case["id"], held.len()));
    assert_eq!(held.len(), max_streams, "refused before the cap");
    let want = case["expected"]["http_status"].as_u64().unwrap_or(408) as u16;
    assert!(
        status_ok(case, want, refused.status) || refused.status == 429,
        "{}: stream past the cap answered {}",
        case["id"],
        refused.status
    );
    // Other clients' requests are still answered, promptly.
    let t = Instant::now();
    let ok = env.post(
        Some(&env.session),
        &json!({"jsonrpc":"2.0","id":"other","method":"tools/list"}),
    );
    assert_eq!(
        ok.status,
        200,
        "{}: with the streams held: {}",
        case["id"],
        ok.text()
    );
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "slow under held streams: {:?}",
        t.elapsed()
    );
    // Connections: keep-alive requests held open up to the per-client cap, then one more.
    let audit_from = env.serve.audit().len();
    let mut answers = Vec::new();
    for _ in held.len()..=max_conns {
        let body = br#"{"jsonrpc":"2.0","id":"c","method":"ping"}"#;
        let mut h = plain_headers(addr, &[("Mcp-Session-Id", &env.session)]);
        set(&mut h, "Content-Length", body.len().to_string().as_bytes());
        let mut s = connect(addr);
        s.write_all(&head_bytes("POST", "/mcp", &h, false)).unwrap();
        s.write_all(body).unwrap();
        let r = read_response(&mut s).expect("answer");
        answers.push(r.status);
        held.push(s);
    }
    eprintln!(
        "  {} [connections up to the cap of {max_conns}, then one more] -> {answers:?}",
        case["id"]
    );
    assert_eq!(
        answers.last(),
        Some(&429),
        "{}: connection past the cap: {answers:?}",
        case["id"]
    );
    assert!(
        answers[..answers.len() - 1].iter().all(|s| *s == 200),
        "{answers:?}"
    );
    assert!(env
        .serve
        .wait_audit(audit_from, &["http.connection_limit"])
        .is_some());
    drop(held);
}

fn run_behaviour_case(case: &Value) {
    let steps: Vec<String> = case["input"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap_or("").to_owned())
        .collect();
    std::thread::scope(|scope| {
        let mut runs = Vec::new();
        for step in &steps {
            let lower = step.to_ascii_lowercase();
            if lower.contains("byte every") && !lower.starts_with("variant") {
                runs.push(scope.spawn(move || slow_headers(case, step)));
            } else if lower.contains("content-length") && lower.contains("byte /") {
                runs.push(scope.spawn(move || slow_body(case, step)));
            } else if lower.contains("event-stream") && lower.contains("held open") {
                runs.push(scope.spawn(move || held_streams(case, step)));
            } else {
                eprintln!(
                    "  {} step {step:?}: setup, part of the variants",
                    case["id"]
                );
            }
        }
        assert!(
            runs.len() >= 3,
            "{}: behaviour steps not understood",
            case["id"]
        );
        for r in runs {
            if let Err(e) = r.join() {
                std::panic::resume_unwind(e);
            }
        }
    });
}

// ------------------------------------------------------------------ server behaviour (AUTH-02)

/// Counts every connection made to it (a stand-in for an address nobody may fetch) and answers
/// with `doc` as JSON, so that a discovery that did follow would find more to follow.
fn metadata_trap(doc: Value) -> (SocketAddr, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            counter.fetch_add(1, Ordering::SeqCst);
            let body = doc.to_string();
            let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
            let _ = s.read(&mut [0u8; 4096]);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (addr, hits)
}

fn run_server_behaviour_case(case: &Value) {
    let id = case["id"].as_str().unwrap();
    let answer = &case["input"]["upstream_response"];
    let status = answer["status"].as_u64().expect("status");
    let (trap, hits) = metadata_trap(case["input"]["also_metadata"].clone());
    let url_re = regex::Regex::new(r"https?://[^/\x22]+").unwrap();
    // As written (nothing we can observe), and aimed at the trap (where a fetch would show).
    for aimed in [false, true] {
        let mut args = vec!["--reply-status".to_owned(), status.to_string()];
        for (k, v) in answer["headers"].as_object().into_iter().flatten() {
            let v = v.as_str().unwrap_or("");
            let v = if aimed {
                url_re
                    .replace_all(v, format!("http://{trap}").as_str())
                    .into_owned()
            } else {
                v.to_owned()
            };
            args.push("--reply-header".into());
            args.push(format!("{k}: {v}"));
        }
        let tmp = tempfile::tempdir().unwrap();
        let mut up_args = vec!["--tools".to_owned(), "echo".to_owned()];
        up_args.extend(args.clone());
        let upstream = Upstream::start(tmp.path(), &up_args);
        let serve = Serve::start(&config(&upstream.url, None, ""));
        let body = br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}"#;
        let h = plain_headers(
            serve.addr,
            &[("Accept", "application/json, text/event-stream")],
        );
        let audit_from = serve.audit().len();
        let t = Instant::now();
        let resp = exchange(serve.addr, "POST", "/mcp", &h, body);
        let label = if aimed {
            "aimed at a local trap"
        } else {
            "as written"
        };
        eprintln!(
            "  {id} [{label}] -> {} {:?} in {:?}",
            resp.status,
            resp.text(),
            t.elapsed()
        );
        // A clear error, promptly: never a success, never a hang on a discovery.
        assert!(t.elapsed() < Duration::from_secs(5), "{id}: slow answer");
        assert!(
            !(200..300).contains(&resp.status),
            "{id}: a success: {}",
            resp.status
        );
        let all = format!("{:?}{}", resp.headers, resp.text());
        assert!(
            !all.contains("169.254.169.254") && !all.contains(&trap.to_string()),
            "{id}: the discovery URL was handed on to the client: {all}"
        );
        let expected = &case["expected"];
        if let Some(code) = expected["jsonrpc_error_code"].as_i64() {
            let got = resp.json().map(|v| v["error"]["code"].clone());
            assert!(
                got == Some(json!(code))
                    || gap(case, "jsonrpc_error_code").is_some_and(|_| got.is_none()),
                "{id}: JSON-RPC code {got:?} (want {code})"
            );
        }
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(
            hits.load(Ordering::SeqCst),
            0,
            "{id}: the proxy fetched the metadata URL"
        );
        // No retry, no extra request: the upstream saw the client's one request.
        assert_eq!(upstream.seen().len(), 1, "{id}: {:?}", upstream.seen());
        if let Some(event) = expected["audit_event"].as_str() {
            let events = accepted_events(case, event);
            let names: Vec<&str> = events.iter().map(String::as_str).collect();
            if !names.is_empty() {
                let rec = serve.wait_audit(audit_from, &names);
                assert!(rec.is_some(), "{id}: no audit record {names:?}");
            }
        }
    }
}

// ------------------------------------------------------------------ tests

#[test]
fn http_request_cases() {
    let cases = cases(&["http", "sequence"]);
    let ids: Vec<&str> = cases.iter().filter_map(|c| c["id"].as_str()).collect();
    eprintln!("corpus HTTP request cases: {ids:?}");
    assert!(cases.len() >= 10, "too few HTTP request cases: {ids:?}");
    for case in &cases {
        eprintln!("corpus case {}", case["id"]);
        run_request_case(case);
    }
}

#[test]
fn http_behaviour_cases() {
    let cases = cases(&["behaviour"]);
    assert!(!cases.is_empty(), "no HTTP behaviour case");
    for case in &cases {
        eprintln!("corpus case {}", case["id"]);
        run_behaviour_case(case);
    }
}

#[test]
fn http_upstream_behaviour_cases() {
    let cases = cases(&["server_behaviour"]);
    assert!(!cases.is_empty(), "no HTTP server behaviour case");
    for case in &cases {
        eprintln!("corpus case {}", case["id"]);
        run_server_behaviour_case(case);
    }
}
