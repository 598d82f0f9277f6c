//! Issue 14: several `serve` replicas sharing one security state on a real `redis-server`
//! (Debian package; `.ci/run` installs it). Each test starts its own Redis on a free port and
//! three (or two) `serve` processes with separate state dirs — nothing is shared through the
//! file system, only through Redis — and one identity key (the admin API signs approval
//! decisions with it, as a Kubernetes Secret would give every pod the same key).
//!
//! - a nonce accepted by replica 1 is refused (-32012) by replicas 2 and 3;
//! - a 10/min limit holds across the replicas (10 calls in all, not 30);
//! - an approval decided through replica 3's admin API releases the call waiting on replica 1;
//! - Redis killed: enforce refuses with a clear reason and `/readyz` is 503, audit mode goes on
//!   with one alert; both recover after Redis restarts.
//!
//! `cargo test --test cluster -- --ignored --nocapture cluster_benchmark` prints the added
//! latency of the Redis round trips on the signed-request path and 3 replicas vs 1 throughput.

mod support;

use support::serve::ServeProc;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mcp_warden::sig::keys::{public_key_to_string, signing_key_to_pem};
use mcp_warden::sig::{http_scheme, SigningKey};
use serde_json::Value;

const INIT: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

fn client_key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

fn proxy_key() -> SigningKey {
    SigningKey::from_bytes(&[9; 32])
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// A nonce no other request of this test binary uses.
fn fresh_nonce() -> [u8; 16] {
    static N: AtomicU64 = AtomicU64::new(1);
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&N.fetch_add(1, Ordering::SeqCst).to_be_bytes());
    b[8..12].copy_from_slice(&std::process::id().to_be_bytes());
    b
}

/// The `X-MCP-*` headers of the client key over `body` (audience `echo`).
fn signed(body: &[u8], nonce: [u8; 16]) -> Vec<(String, String)> {
    use base64::Engine as _;
    let nonce = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(nonce);
    http_scheme::sign(&client_key(), "echo", body, now(), &nonce)
        .pairs()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A private `redis-server` (no persistence), killed on drop.
struct Redis {
    port: u16,
    child: Option<Child>,
}

impl Redis {
    fn start() -> Redis {
        let mut r = Redis {
            port: free_port(),
            child: None,
        };
        r.restart();
        r
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// (Re)start on the same port; returns once it answers PING.
    fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (apt-get install redis-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.ping() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not start on {}", self.port);
    }

    fn ping(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One `serve` replica with its own state dir.
struct Replica {
    /// The process (stopped in order on drop).
    proc: ServeProc,
    admin: SocketAddr,
    state: tempfile::TempDir,
}

/// The policy every replica loads: `echo` with `rule` (e.g. `rate = "10/min"`).
fn policy_dir(rule: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("echo.toml"),
        format!(
            "[server]\nmatch = [\"echo\"]\ndefault_risk = \"low\"\n\n[[tool]]\nname = \"echo\"\nrisk = \"low\"\n{rule}\n"
        ),
    )
    .expect("policy");
    dir
}

impl Replica {
    fn start(name: &str, redis: &str, mode: &str, policies: &Path) -> Replica {
        let state = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            state.path().join("identity.pem"),
            signing_key_to_pem(&proxy_key()).expect("pem"),
        )
        .expect("identity");
        let client = public_key_to_string(&client_key().verifying_key());
        // An empty URL: the same replica without `[cluster]` (the benchmark's baseline).
        let cluster = if redis.is_empty() {
            String::new()
        } else {
            format!("[cluster]\nredis_url = {redis:?}\ntimeout_ms = 300\nreplica = {name:?}\n\n")
        };
        let cfg = format!(
            "[signatures]\nmode = {mode:?}\n\n[[identity.trusted_keys]]\nname = \"agent\"\n\
             public_key = {client:?}\nrole = \"client\"\n\n[admin]\nlisten = \"127.0.0.1:0\"\n\n\
             [policy]\napproval_timeout_secs = 30\nbuiltin = false\n\n\
             {cluster}[[servers]]\nname = \"echo\"\ncommand = [{:?}]\n",
            support::echo_server_bin().to_string_lossy()
        );
        let path = state.path().join("proxy.toml");
        std::fs::write(&path, cfg).expect("config");
        let proc = ServeProc::start(
            &path,
            state.path(),
            None,
            &[(
                "MCP_WARDEN_POLICY_DIR",
                policies.to_str().expect("utf-8 path"),
            )],
        );
        Replica {
            admin: proc.admin.expect("serve announced its admin port"),
            proc,
            state,
        }
    }

    fn post(&self, sid: Option<&str>, body: &str, nonce: [u8; 16]) -> Resp {
        let mut h = vec![("Accept".to_owned(), "application/json".to_owned())];
        if let Some(s) = sid {
            h.push(("Mcp-Session-Id".into(), s.into()));
        }
        h.extend(signed(body.as_bytes(), nonce));
        request(self.proc.addr, "POST", "/mcp", &h, body.as_bytes())
    }

    /// A signed legacy session: its id.
    fn session(&self) -> String {
        let r = self.post(None, INIT, fresh_nonce());
        assert_eq!(r.status, 200, "{}", r.body);
        let sid = r.header("mcp-session-id").expect("session id").to_owned();
        assert_eq!(
            self.post(Some(&sid), INITIALIZED, fresh_nonce()).status,
            202
        );
        sid
    }

    fn call(&self, sid: &str, id: u64, text: &str) -> Resp {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"{text}"}}}}}}"#
        );
        self.post(Some(sid), &body, fresh_nonce())
    }

    fn admin(&self, method: &str, path: &str) -> Resp {
        let token = std::fs::read_to_string(self.state.path().join("admin.token")).unwrap();
        let h = vec![(
            "Authorization".to_owned(),
            format!("Bearer {}", token.trim()),
        )];
        request(self.admin, method, path, &h, b"")
    }

    fn audit_events(&self) -> Vec<String> {
        let mut out = Vec::new();
        let dir = self.state.path().join("audit");
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            for line in text.lines() {
                if let Ok(v) = serde_json::from_str::<Value>(line) {
                    out.push(v["event"].as_str().unwrap_or("").to_owned());
                }
            }
        }
        out
    }
}

struct Resp {
    status: u16,
    head: String,
    body: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// One HTTP/1.1 request on a fresh connection.
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Resp {
    let mut all = vec![("Content-Type".to_owned(), "application/json".to_owned())];
    all.extend_from_slice(headers);
    let r = support::raw_http::exchange(addr, method, path, &all, body, Duration::from_secs(60));
    Resp {
        status: r.status,
        head: r.head,
        body: r.body,
    }
}

fn poll<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn three(redis: &Redis, mode: &str, policies: &Path) -> Vec<Replica> {
    ["r1", "r2", "r3"]
        .iter()
        .map(|n| Replica::start(n, &redis.url(), mode, policies))
        .collect()
}

#[test]
fn a_nonce_accepted_by_one_replica_is_refused_by_the_others() {
    let redis = Redis::start();
    let policies = policy_dir("action = \"allow\"");
    let r = three(&redis, "enforce", policies.path());
    let nonce = fresh_nonce();
    let headers = signed(INIT.as_bytes(), nonce);
    let send = |rep: &Replica| {
        let mut h = vec![("Accept".to_owned(), "application/json".to_owned())];
        h.extend(headers.clone());
        request(rep.proc.addr, "POST", "/mcp", &h, INIT.as_bytes())
    };
    let first = send(&r[0]);
    assert_eq!(first.status, 200, "{}", first.body);
    for rep in &r[1..] {
        let again = send(rep);
        assert_eq!(again.status, 401, "{}", again.body);
        let err = &again.json()["error"];
        assert_eq!(err["code"], -32012, "{err}");
        // The trail is flushed in batches: wait for the record.
        poll("auth.replay audited", Duration::from_secs(10), || {
            rep.audit_events()
                .contains(&"auth.replay".to_owned())
                .then_some(())
        });
    }
    // A fresh nonce is fine anywhere: the refusals were about the replay, not the replica.
    let sid = r[1].session();
    r[2].session();

    // A legacy session lives on the replica that opened it; another one says so.
    let list = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    let wrong = r[0].post(Some(&sid), list, fresh_nonce());
    assert_eq!(wrong.status, 404, "{}", wrong.body);
    let reason = wrong.json()["error"]["data"]["reason"].to_string();
    assert!(reason.contains("another replica"), "{reason}");

    // The modern era is stateless: a call works on any replica, and its nonce once in all.
    let call = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"modern"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#;
    let modern = |rep: &Replica, nonce: [u8; 16]| {
        let mut h: Vec<(String, String)> = [
            ("Accept", "application/json"),
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "echo"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        h.extend(signed(call.as_bytes(), nonce));
        request(rep.proc.addr, "POST", "/mcp", &h, call.as_bytes())
    };
    for rep in &r {
        let ok = modern(rep, fresh_nonce());
        assert_eq!(
            ok.json()["result"]["content"][0]["text"],
            "modern",
            "{}",
            ok.body
        );
    }
    let once = fresh_nonce();
    assert_eq!(modern(&r[2], once).status, 200);
    let replayed = modern(&r[0], once);
    assert_eq!(
        replayed.json()["error"]["code"],
        -32012,
        "{}",
        replayed.body
    );
}

#[test]
fn a_rate_limit_holds_across_replicas() {
    let redis = Redis::start();
    let policies = policy_dir("action = \"allow\"\nrate = \"10/min\"");
    let r = three(&redis, "enforce", policies.path());
    let sessions: Vec<String> = r.iter().map(Replica::session).collect();
    let (mut ok, mut limited) = (0, 0);
    for i in 0..15u64 {
        let k = (i % 3) as usize;
        let resp = r[k].call(&sessions[k], 10 + i, "hi");
        let v = resp.json();
        if v["result"]["content"][0]["text"] == "hi" {
            ok += 1;
        } else {
            assert_eq!(v["error"]["code"], -32016, "{v}");
            assert!(v["error"]["data"]["retry_after_ms"].as_u64().unwrap() > 0);
            limited += 1;
        }
    }
    // Each replica alone would have allowed 10 (15 in all).
    assert_eq!((ok, limited), (10, 5));
}

#[test]
fn an_approval_decided_on_one_replica_releases_the_call_waiting_on_another() {
    let redis = Redis::start();
    let policies = policy_dir("action = \"approve\"");
    let r = three(&redis, "enforce", policies.path());
    let sid = r[0].session();
    let (addr, sid2) = (r[0].proc.addr, sid.clone());
    let waiting = std::thread::spawn(move || {
        let body = r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo","arguments":{"text":"approved!"}}}"#;
        let mut h = vec![
            ("Accept".to_owned(), "application/json".to_owned()),
            ("Mcp-Session-Id".to_owned(), sid2),
        ];
        h.extend(signed(body.as_bytes(), fresh_nonce()));
        let t0 = Instant::now();
        (request(addr, "POST", "/mcp", &h, body.as_bytes()), t0)
    });
    // The ticket replica 1 wrote is listed by replica 3, which shares no files with it.
    let id = poll("the ticket on replica 3", Duration::from_secs(20), || {
        let list = r[2].admin("GET", "/api/v1/approvals").json();
        list.as_array()
            .and_then(|a| a.first())
            .and_then(|t| t["id"].as_str().map(str::to_owned))
    });
    let decided = Instant::now();
    let d = r[2].admin("POST", &format!("/api/v1/approvals/{id}/approve"));
    assert_eq!(d.status, 200, "{}", d.body);
    let (resp, _) = waiting.join().expect("caller");
    let released_after = decided.elapsed();
    assert_eq!(
        resp.json()["result"]["content"][0]["text"],
        "approved!",
        "{}",
        resp.body
    );
    // Woken by the pub/sub message, not by a timeout (30 s) or a slow re-read (2 s).
    assert!(
        released_after < Duration::from_millis(1500),
        "{released_after:?}"
    );
    // Consumed: neither replica lists it any more.
    for rep in &r {
        assert_eq!(
            rep.admin("GET", "/api/v1/approvals").json(),
            Value::Array(vec![])
        );
    }

    // The CLI with a replica's config decides through Redis too: a denial ends the wait.
    let (addr, sid2) = (r[0].proc.addr, sid.clone());
    let waiting = std::thread::spawn(move || {
        let body = r#"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"echo","arguments":{"text":"no"}}}"#;
        let mut h = vec![
            ("Accept".to_owned(), "application/json".to_owned()),
            ("Mcp-Session-Id".to_owned(), sid2),
        ];
        h.extend(signed(body.as_bytes(), fresh_nonce()));
        request(addr, "POST", "/mcp", &h, body.as_bytes())
    });
    let id = poll("the second ticket", Duration::from_secs(20), || {
        let list = r[1].admin("GET", "/api/v1/approvals").json();
        list.as_array()
            .and_then(|a| a.first())
            .and_then(|t| t["id"].as_str().map(str::to_owned))
    });
    let cli = Command::new(support::warden_bin())
        .args(["deny", &id, "--config"])
        .arg(r[1].state.path().join("proxy.toml"))
        .env("MCP_WARDEN_STATE", r[1].state.path())
        .output()
        .expect("deny");
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    let denied = waiting.join().expect("caller");
    assert_eq!(denied.json()["error"]["code"], -32014, "{}", denied.body);

    // Trust: only replica 1 saw traffic, yet every replica scores the server from the same
    // aggregated history (flushed once a second).
    let score = |rep: &Replica| {
        rep.admin("GET", "/api/v1/servers").json()[0]["trust_score"]
            .as_f64()
            .unwrap_or(-1.0)
    };
    let (s1, s2, s3) = poll(
        "one trust score everywhere",
        Duration::from_secs(15),
        || {
            let s = (score(&r[0]), score(&r[1]), score(&r[2]));
            (s.0 != 0.5 && s.0 == s.1 && s.1 == s.2).then_some(s)
        },
    );
    assert!((0.0..=1.0).contains(&s1), "{s1} {s2} {s3}");
}

#[test]
fn redis_down_enforce_fails_closed_audit_degrades_and_both_recover() {
    let mut redis = Redis::start();
    let policies = policy_dir("action = \"allow\"");
    let enforce = Replica::start("enforcing", &redis.url(), "enforce", policies.path());
    let audit = Replica::start("auditing", &redis.url(), "audit", policies.path());
    let (se, sa) = (enforce.session(), audit.session());
    assert_eq!(enforce.admin("GET", "/readyz").status, 200);

    redis.kill();
    let refused = enforce.call(&se, 1, "x");
    assert_eq!(refused.status, 401, "{}", refused.body);
    let err = &refused.json()["error"];
    assert_eq!(err["code"], -32012, "{err}");
    let reason = err["data"]["reason"].as_str().unwrap();
    assert!(reason.contains("unreachable"), "{reason}");
    poll("/readyz not ready", Duration::from_secs(10), || {
        let r = enforce.admin("GET", "/readyz");
        (r.status == 503 && r.body.contains("Redis")).then_some(())
    });

    // Audit mode: served from local state, the outage raised as one alert.
    let served = audit.call(&sa, 1, "still here");
    assert_eq!(
        served.json()["result"]["content"][0]["text"],
        "still here",
        "{}",
        served.body
    );
    assert_eq!(audit.admin("GET", "/readyz").status, 200);
    let _ = audit.call(&sa, 2, "again");
    let alerts = audit.admin("GET", "/api/v1/alerts").json();
    let degraded: Vec<&Value> = alerts
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["event"] == "cluster.degraded")
        .collect();
    assert_eq!(degraded.len(), 1, "{alerts}");
    assert!(degraded[0]["reason"].as_str().unwrap().contains("auditing"));

    redis.restart();
    // Backoff is at most 5 s; the health thread pings every second.
    poll("enforce replica recovered", Duration::from_secs(20), || {
        (enforce.admin("GET", "/readyz").status == 200).then_some(())
    });
    let after = enforce.call(&se, 3, "back");
    assert_eq!(
        after.json()["result"]["content"][0]["text"],
        "back",
        "{}",
        after.body
    );
    poll("recovery recorded", Duration::from_secs(10), || {
        audit
            .audit_events()
            .contains(&"cluster.recovered".to_owned())
            .then_some(())
    });
    drop(enforce);
}

/// Percentile of sorted durations.
fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Signed calls on one session: latencies.
fn latencies(rep: &Replica, n: u64) -> Vec<Duration> {
    let sid = rep.session();
    let mut out = Vec::new();
    for i in 0..n {
        let t = Instant::now();
        let r = rep.call(&sid, 100 + i, "b");
        assert_eq!(r.status, 200);
        out.push(t.elapsed());
    }
    out.sort();
    out
}

/// Calls per second from `clients` threads spread over `replicas`.
fn throughput(replicas: &[&Replica], clients: usize, per_client: u64) -> f64 {
    // One session per client: request ids are per session.
    let targets: Vec<(SocketAddr, String)> = (0..clients)
        .map(|c| {
            let r = replicas[c % replicas.len()];
            (r.proc.addr, r.session())
        })
        .collect();
    let t0 = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            let (addr, sid) = targets[c].clone();
            std::thread::spawn(move || {
                for i in 0..per_client {
                    let body = format!(
                        r#"{{"jsonrpc":"2.0","id":{},"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"t"}}}}}}"#,
                        1000 + i
                    );
                    let mut h = vec![
                        ("Accept".to_owned(), "application/json".to_owned()),
                        ("Mcp-Session-Id".to_owned(), sid.clone()),
                    ];
                    h.extend(signed(body.as_bytes(), fresh_nonce()));
                    let r = request(addr, "POST", "/mcp", &h, body.as_bytes());
                    assert_eq!(r.status, 200, "{}", r.body);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("client");
    }
    (clients as u64 * per_client) as f64 / t0.elapsed().as_secs_f64()
}

/// Not a pass/fail test: figures for the README. Debug build unless run with `--release`;
/// every process shares this machine's cores (the replicas, Redis and the clients).
#[test]
#[ignore]
fn cluster_benchmark() {
    let redis = Redis::start();
    let policies = policy_dir("action = \"allow\"\nrate = \"100000/s\"");
    let n = 400;
    let solo = Replica::start("solo", "", "enforce", policies.path());
    let without = latencies(&solo, n);
    let r = three(&redis, "enforce", policies.path());
    let with = latencies(&r[0], n);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "signed tools/call through serve, {n} sequential calls: without [cluster] p50 {:.2} ms p99 {:.2} ms; \
         with [cluster] (SET NX + GCRA script) p50 {:.2} ms p99 {:.2} ms; added p50 {:.2} ms p99 {:.2} ms",
        ms(pct(&without, 0.5)),
        ms(pct(&without, 0.99)),
        ms(pct(&with, 0.5)),
        ms(pct(&with, 0.99)),
        ms(pct(&with, 0.5)) - ms(pct(&without, 0.5)),
        ms(pct(&with, 0.99)) - ms(pct(&without, 0.99)),
    );
    let one = throughput(&[&r[0]], 6, 100);
    let all = throughput(&[&r[0], &r[1], &r[2]], 6, 100);
    println!("throughput, 6 clients: 1 replica {one:.0} calls/s, 3 replicas {all:.0} calls/s");
}
