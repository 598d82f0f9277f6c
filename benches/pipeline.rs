//! Per-stage micro-benchmark of the message path, so that a regression shows which stage grew:
//! decode, auth verify, policy, pins check, content scan, audit record, and the whole pipeline
//! (one `tools/call` and its answer through `from_client` / `from_server` / `finish`).
//!
//! `cargo bench --bench pipeline [-- FILTER]` measures: each stage runs in rounds of a fixed
//! number of operations; the median ns per operation over the rounds is printed, with the
//! load average (a busy machine's figures mean little; callgrind's instruction counts are the
//! stable measure). Without `--bench` (that is, under `cargo test --all-targets`) every stage
//! runs a few times as a smoke test and nothing is timed.
//!
//! No benchmark framework: this file builds with the crate's own dependencies, so
//! `--all-targets` builds stay as fast as they were.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use mcp_warden::audit::{AuditLog, Direction, Fsync, Record};
use mcp_warden::codec::{self, Limits};
use mcp_warden::config::Config;
use mcp_warden::pins::scan::no_scanner;
use mcp_warden::pins::store::PinStore;
use mcp_warden::pins::{Baseline, BaselineConfig, CallDecision, Origin};
use mcp_warden::pipeline::{Guards, Pipeline, Verdict};
use mcp_warden::policy::{evaluate, PolicySet, ServerRef};
use mcp_warden::sig::message_scheme;
use mcp_warden::sig::{
    Expect, KeyRole, Mode, Outcome, SigningKey, SystemClock, TrustedKeys, Verifier, VerifierConfig,
};
use serde_json::{json, Value};

const AUD: &str = "bench";

/// A file write with a short body: the kind of call the policy packs have rules for.
fn call(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
        "name": "write_file",
        "arguments": {"path": "/tmp/bench/notes.txt", "content": "hello, warden: a short note"}}})
}

/// A plain-text result of a few hundred bytes, with nothing to find.
fn result_line(id: u64) -> Vec<u8> {
    let text = "The build finished in 41 s. 3 warnings in src/lib.rs (unused imports), \
                no errors. Tests: 212 passed, 0 failed. The report is in target/report.html; \
                open it in a browser to see the coverage per module.";
    serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": id,
        "result": {"content": [{"type": "text", "text": text}], "isError": false}}))
    .unwrap()
}

fn listing() -> Vec<Value> {
    vec![
        json!({"name": "write_file", "description": "Write a file under the allowed roots",
        "inputSchema": {"type": "object", "properties": {
            "path": {"type": "string"}, "content": {"type": "string"}},
            "required": ["path", "content"]}}),
    ]
}

struct Bench {
    measure: bool,
    filter: Option<String>,
    rows: Vec<(String, f64)>,
}

impl Bench {
    /// Run `op(i)` `ops` times per round; record the median ns per op over the rounds.
    fn run(&mut self, name: &str, ops: usize, mut op: impl FnMut(usize)) {
        if self
            .filter
            .as_ref()
            .is_some_and(|f| !name.contains(f.as_str()))
        {
            return;
        }
        if !self.measure {
            for i in 0..3 {
                op(i);
            }
            println!("{name}: ok");
            return;
        }
        for i in 0..ops.min(200) {
            op(i); // warm-up
        }
        let mut per_op: Vec<f64> = (0..7)
            .map(|_| {
                let t = Instant::now();
                for i in 0..ops {
                    op(i);
                }
                t.elapsed().as_nanos() as f64 / ops as f64
            })
            .collect();
        per_op.sort_by(f64::total_cmp);
        let median = per_op[per_op.len() / 2];
        println!("{name:<40} {median:>12.0} ns/op");
        self.rows.push((name.to_owned(), median));
    }
}

fn temp_dir() -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let p = std::env::temp_dir().join(format!(
        "mcp-warden-bench-pipeline-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&p).expect("temp dir");
    p
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut b = Bench {
        measure: args.iter().any(|a| a == "--bench"),
        filter: args.iter().find(|a| !a.starts_with('-')).cloned(),
        rows: Vec::new(),
    };
    let dir = temp_dir();
    if b.measure {
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        println!(
            "load average: {}",
            load.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    stages(&mut b, &dir);
    let _ = std::fs::remove_dir_all(&dir);
}

fn stages(b: &mut Bench, dir: &Path) {
    let limits = Limits::default();
    let line = serde_json::to_vec(&call(7)).unwrap();
    b.run("decode (tools/call)", 20_000, |_| {
        black_box(codec::decode(black_box(&line), &limits).is_ok());
    });
    let answer = result_line(7);
    b.run("decode (result)", 20_000, |_| {
        black_box(codec::decode(black_box(&answer), &limits).is_ok());
    });

    // Auth: message-scheme signatures, each with its own nonce (the replay cache would refuse
    // a repeat); signed beforehand, so only verification is measured.
    let key = SigningKey::from_bytes(&[42u8; 32]);
    let mut keys = TrustedKeys::new();
    keys.insert("bench-client", KeyRole::Client, key.verifying_key())
        .unwrap();
    let keys = Arc::new(keys);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let n_signed = if b.measure { 2_000 } else { 3 };
    let signed: Vec<Value> = (0..n_signed)
        .map(|i| {
            message_scheme::sign_value(
                &call(i as u64),
                &key,
                AUD,
                now,
                &format!("benchnonce{i:014}"),
            )
            .unwrap()
        })
        .collect();
    let expect = Expect {
        role: KeyRole::Client,
        audience: AUD,
    };
    let fresh = || {
        // A fresh replay cache per round: the nonces repeat across rounds.
        let config = VerifierConfig {
            mode: Mode::Enforce,
            window_secs: 300,
            replay_capacity: 2 * n_signed,
        };
        Verifier::new(config, keys.clone(), Arc::new(SystemClock))
    };
    let first = fresh().check_message(&signed[0], expect);
    assert!(matches!(first, Outcome::Valid { .. }), "{first:?}");
    let mut verifier = None;
    b.run("auth verify (message scheme)", n_signed, |i| {
        if i == 0 {
            verifier = Some(fresh());
        }
        let v = verifier.as_ref().unwrap();
        black_box(v.check_message(&signed[i], expect));
    });

    // Policy: the built-in packs, the filesystem server's write_file with its path rules.
    let set = PolicySet::load_layered(&dir.join("no-policies"), true).expect("built-in packs");
    let argv = vec![
        "npx".to_owned(),
        "@modelcontextprotocol/server-filesystem".to_owned(),
        "/tmp/bench".to_owned(),
    ];
    let server = ServerRef {
        name: "filesystem",
        argv: &argv,
    };
    let params = call(7)["params"]["arguments"].clone();
    // Resolved once per tool and policy version (the pipeline caches it), evaluated per call.
    b.run("policy resolve (once per tool)", 5_000, |_| {
        black_box(set.resolve(&server, "write_file", None));
    });
    let policy = set.resolve(&server, "write_file", None);
    b.run("policy evaluate (per call)", 5_000, |_| {
        black_box(evaluate(&policy, Some(&params)));
    });

    // Pins: a baseline pinned from one listing, then the per-call check.
    let pins = Baseline::new(
        "bench",
        Origin::Command {
            command: vec!["echo".into()],
        },
        PinStore::new(dir.join("pins")),
        BaselineConfig::default(),
        no_scanner(),
    );
    pins.observe_tools(&listing(), SystemTime::now());
    assert!(matches!(
        pins.check_call("write_file"),
        CallDecision::Allowed
    ));
    b.run("pins check (call)", 20_000, |_| {
        black_box(pins.check_call(black_box("write_file")));
    });

    // Content: the result screen (secrets, injected instructions) on a clean answer.
    b.run("content scan (result)", 5_000, |_| {
        black_box(mcp_warden::pipeline::screen_result("tools/call", &answer, "a-1").is_none());
    });

    // Audit: one record serialised, chained and queued (the file is written in groups).
    let log = AuditLog::open_file(&dir.join("audit.jsonl"), Fsync::Never).expect("audit log");
    b.run("audit record", 20_000, |i| {
        let mut r = Record::new("session", "bench", Direction::ClientToServer, 120);
        r.method = Some("tools/call".into());
        r.tool = Some("write_file".into());
        r.audit_id = format!("session-{i}");
        log.write(r).unwrap();
    });

    // Everything: a default-config pipeline (built-in packs, pins, trust, audit), one call
    // and its answer per operation, as `wrap` runs them.
    let state = dir.join("state");
    let guards = Guards::from_config(
        &Config::default(),
        "bench",
        Origin::Command {
            command: vec!["echo_server".into()],
        },
        &state,
        Arc::new(SystemClock),
    )
    .expect("guards");
    let audit = AuditLog::open(&state.join("audit"), "bench", Fsync::Batch).expect("audit");
    let p = Pipeline::new("bench", limits, audit, Arc::new(guards));
    let send = |p: &Pipeline, client: bool, v: &Value| -> Verdict {
        let bytes = serde_json::to_vec(v).unwrap();
        let started = Instant::now();
        let o = if client {
            p.from_client(&bytes)
        } else {
            p.from_server(&bytes)
        };
        p.finish(o.record, started);
        o.verdict
    };
    send(
        &p,
        true,
        &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "b", "version": "1"}}}),
    );
    send(
        &p,
        false,
        &json!({"jsonrpc": "2.0", "id": 1, "result": {
        "protocolVersion": "2025-06-18", "capabilities": {"tools": {}}, "serverInfo": {"name": "echo", "version": "1"}}}),
    );
    send(
        &p,
        true,
        &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    );
    send(
        &p,
        true,
        &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    );
    send(
        &p,
        false,
        &json!({"jsonrpc": "2.0", "id": 2, "result": {"tools": listing()}}),
    );
    let first = send(&p, true, &call(3));
    assert!(
        matches!(first, Verdict::Forward),
        "the call is forwarded: {first:?}"
    );
    let calls: Vec<Vec<u8>> = (0..5_000u64)
        .map(|i| serde_json::to_vec(&call(i + 10)).unwrap())
        .collect();
    let answers: Vec<Vec<u8>> = (0..5_000u64).map(|i| result_line(i + 10)).collect();
    // Each answer settles its call, so the ids may repeat from one round to the next.
    b.run("pipeline (call + answer, finished)", calls.len(), |i| {
        let started = Instant::now();
        let o = p.from_client(&calls[i]);
        p.finish(o.record, started);
        let started = Instant::now();
        let o = p.from_server(&answers[i]);
        p.finish(o.record, started);
    });
}
