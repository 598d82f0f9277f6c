//! Micro-benchmark of signature verification (SPEC §4), in-process, no I/O:
//!
//! - `verify_strict`: one raw Ed25519 strict verification (ed25519-dalek), over the message
//!   scheme's signing input of the realistic call below;
//! - `verify_batch(64)`: ed25519-dalek's batch verification of 64 such signatures (one client
//!   key), per batch and per signature;
//! - the message scheme's parts: `serde_json` parse of the signed line, and the signing input
//!   (domain + JCS of the message minus `sig`); `message_scheme::sign` is the client's cost;
//! - `Verifier::check_message` on the parsed message (extract, key lookup, JCS, verify, audience,
//!   clock, replay cache), and parse + `check_message` from the line's bytes: what the proxy runs
//!   per signed stdio request (`pipeline/auth.rs`);
//! - `Verifier::check_http`: the `X-MCP-*` header scheme over the same body (no JCS).
//!
//! Every timed operation is checked to succeed (a failing check would measure an early return).
//! Each run times `--iters` operations; reported are the medians over `--runs` runs, after one
//! discarded warm-up run. Each run gets a fresh verifier, so the replay cache starts empty and
//! ends with `--iters` nonces, as a proxy does `--iters` signed calls after it starts.
//!
//! Usage: `cargo run --release --example bench_verify -- [--iters N] [--runs N] [--json FILE]`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use ed25519_dalek::{Signature, Signer as _};
use mcp_warden::sig::http_scheme::{self, HttpSigHeaders};
use mcp_warden::sig::message_scheme::{self, MessageSignature};
use mcp_warden::sig::{
    Expect, KeyRole, Mode, SigningKey, SystemClock, TrustedKeys, Verifier, VerifierConfig,
    VerifyingKey,
};
use serde_json::{json, Value};

type Res<T> = Result<T, String>;

const AUD: &str = "bench";
const BATCH: usize = 64;
const EXPECT: Expect<'static> = Expect {
    role: KeyRole::Client,
    audience: AUD,
};

struct Opts {
    iters: usize,
    runs: usize,
    json: Option<String>,
}

/// A realistic tools/call: a file write with a short text body (~330 bytes signed).
fn call(id: usize) -> Value {
    json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{
        "name":"write_file",
        "arguments":{"path":"/workspace/notes/todo.md",
            "content":"- review the proxy configuration\n- rotate the client key\n- check the audit trail"}}})
}

fn nonce(i: usize) -> String {
    use base64::Engine as _;
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&(i as u64).to_le_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// One benchmark row: a name, how many signatures one operation covers, and ns per operation of
/// every run.
struct Row {
    name: &'static str,
    sigs_per_op: usize,
    ns_per_op: Vec<f64>,
}

impl Row {
    fn median(&self) -> f64 {
        let mut v = self.ns_per_op.clone();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        }
    }
}

/// Times `ops` calls of `f(i)` for `runs` runs (plus a discarded warm-up); ns per call.
fn measure(runs: usize, ops: usize, mut f: impl FnMut(usize, usize) -> Res<()>) -> Res<Vec<f64>> {
    let mut out = Vec::with_capacity(runs);
    for run in 0..=runs {
        let t0 = Instant::now();
        for i in 0..ops {
            f(run, i)?;
        }
        let ns = t0.elapsed().as_nanos() as f64 / ops as f64;
        if run > 0 {
            out.push(ns);
        }
    }
    Ok(out)
}

fn verifier(public: VerifyingKey, capacity: usize) -> Res<Verifier> {
    let mut keys = TrustedKeys::new();
    keys.insert("bench-client", KeyRole::Client, public)
        .map_err(|e| e.to_string())?;
    let config = VerifierConfig {
        mode: Mode::Enforce,
        window_secs: 300,
        replay_capacity: capacity,
    };
    Ok(Verifier::new(config, Arc::new(keys), Arc::new(SystemClock)))
}

fn run() -> Res<()> {
    let opts = parse_args()?;
    let (iters, runs) = (opts.iters, opts.runs);
    let load_before = loadavg();
    let key = SigningKey::from_bytes(&[42u8; 32]);
    let public = key.verifying_key();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs() as i64;

    // Pre-signed inputs, one per iteration: distinct ids and nonces.
    let mut lines: Vec<Vec<u8>> = Vec::with_capacity(iters);
    let mut values: Vec<Value> = Vec::with_capacity(iters);
    let mut inputs: Vec<Vec<u8>> = Vec::with_capacity(iters);
    let mut sigs: Vec<Signature> = Vec::with_capacity(iters);
    let mut http: Vec<HttpSigHeaders> = Vec::with_capacity(iters);
    let body = serde_json::to_vec(&call(1)).map_err(|e| e.to_string())?;
    for i in 0..iters {
        let signed = message_scheme::sign_value(&call(i + 1), &key, AUD, now, &nonce(i))
            .map_err(|e| e.to_string())?;
        let parsed: MessageSignature = message_scheme::extract(&signed)
            .map_err(|e| e.to_string())?
            .ok_or("no signature")?;
        inputs.push(message_scheme::signing_input(&signed).map_err(|e| e.to_string())?);
        sigs.push(parsed.signature);
        lines.push(serde_json::to_vec(&signed).map_err(|e| e.to_string())?);
        values.push(signed);
        http.push(http_scheme::sign(&key, AUD, &body, now, &nonce(i)));
    }
    let line_bytes = lines[0].len();
    let input_bytes = inputs[0].len();
    let unsigned = call(1);

    let mut rows = Vec::new();
    let mut row = |name, sigs_per_op, ns_per_op| {
        rows.push(Row {
            name,
            sigs_per_op,
            ns_per_op,
        })
    };
    row(
        "ed25519 verify_strict",
        1,
        measure(runs, iters, |_, i| {
            public
                .verify_strict(black_box(&inputs[i]), &sigs[i])
                .map_err(|e| e.to_string())
        })?,
    );
    let batches: Vec<(Vec<&[u8]>, Vec<Signature>)> = (0..iters.div_ceil(BATCH).max(1))
        .map(|b| {
            let at = |k: usize| (b * BATCH + k) % iters;
            (
                (0..BATCH).map(|k| inputs[at(k)].as_slice()).collect(),
                (0..BATCH).map(|k| sigs[at(k)]).collect(),
            )
        })
        .collect();
    let batch_keys = vec![public; BATCH];
    row(
        "ed25519 verify_batch (64)",
        BATCH,
        measure(runs, batches.len(), |_, b| {
            let (m, s) = &batches[b];
            ed25519_dalek::verify_batch(black_box(m), s, &batch_keys).map_err(|e| e.to_string())
        })?,
    );
    row(
        "ed25519 sign (client side)",
        1,
        measure(runs, iters, |_, i| {
            black_box(key.sign(black_box(&inputs[i])));
            Ok(())
        })?,
    );
    row(
        "message_scheme::sign_value",
        1,
        measure(runs, iters, |_, i| {
            message_scheme::sign_value(black_box(&unsigned), &key, AUD, now, &nonce(i))
                .map(|v| drop(black_box(v)))
                .map_err(|e| e.to_string())
        })?,
    );
    row(
        "parse signed line (serde_json)",
        0,
        measure(runs, iters, |_, i| {
            serde_json::from_slice::<Value>(black_box(&lines[i]))
                .map(|v| drop(black_box(v)))
                .map_err(|e| e.to_string())
        })?,
    );
    row(
        "signing input (JCS)",
        0,
        measure(runs, iters, |_, i| {
            message_scheme::signing_input(black_box(&values[i]))
                .map(|v| drop(black_box(v)))
                .map_err(|e| e.to_string())
        })?,
    );
    // A fresh verifier per run: its replay cache has not seen these nonces.
    let fresh = |capacity| verifier(public, capacity);
    let mut v = fresh(iters)?;
    let mut current_run = usize::MAX;
    row(
        "Verifier::check_message",
        1,
        measure(runs, iters, |run, i| {
            if run != current_run {
                (v, current_run) = (fresh(iters)?, run);
            }
            let out = v.check_message(black_box(&values[i]), EXPECT);
            out.is_valid().then_some(()).ok_or(out.reason())
        })?,
    );
    current_run = usize::MAX;
    row(
        "parse + check_message (proxy)",
        1,
        measure(runs, iters, |run, i| {
            if run != current_run {
                (v, current_run) = (fresh(iters)?, run);
            }
            let message: Value =
                serde_json::from_slice(black_box(&lines[i])).map_err(|e| e.to_string())?;
            let out = v.check_message(&message, EXPECT);
            out.is_valid().then_some(()).ok_or(out.reason())
        })?,
    );
    current_run = usize::MAX;
    row(
        "Verifier::check_http",
        1,
        measure(runs, iters, |run, i| {
            if run != current_run {
                (v, current_run) = (fresh(iters)?, run);
            }
            let out = v.check_http(black_box(&http[i]), &body, EXPECT);
            out.is_valid().then_some(()).ok_or(out.reason())
        })?,
    );
    let load_after = loadavg();

    // ---- table ----
    let mut t = String::new();
    t +=
        &format!(
        "mcp-warden signature micro-benchmark  ({} build, median of {runs} runs x {iters} ops)\n",
        if cfg!(debug_assertions) { "debug" } else { "release" }
    );
    t += &format!(
        "message: tools/call, {line_bytes} bytes signed line, {input_bytes} bytes signing input; http body {} bytes\n",
        body.len()
    );
    t += &format!("load average before: {load_before}\nload average after:  {load_after}\n");
    let rule = "-".repeat(80);
    t += &format!(
        "{rule}\n{:<32} {:>12} {:>12} {:>10} {:>10}\n",
        "operation", "ns/op", "ops/s", "ns/sig", "sigs/s"
    );
    for r in &rows {
        let ns = r.median();
        let (per_sig, sigs_s) = match r.sigs_per_op {
            0 => ("-".to_string(), "-".to_string()),
            n => {
                let s = ns / n as f64;
                (format!("{s:.0}"), format!("{:.0}", 1e9 / s))
            }
        };
        t += &format!(
            "{:<32} {:>12.0} {:>12.0} {:>10} {:>10}\n",
            r.name,
            ns,
            1e9 / ns,
            per_sig,
            sigs_s
        );
    }
    t += &format!("{rule}\n");
    print!("{t}");

    if let Some(path) = &opts.json {
        let summary = json!({
            "tool": "bench_verify",
            "profile": if cfg!(debug_assertions) { "debug" } else { "release" },
            "iters": iters, "runs": runs,
            "line_bytes": line_bytes, "signing_input_bytes": input_bytes, "http_body_bytes": body.len(),
            "loadavg_before": load_before, "loadavg_after": load_after,
            "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            "rows": rows.iter().map(|r| json!({
                "operation": r.name,
                "sigs_per_op": r.sigs_per_op,
                "ns_per_op": r.median(),
                "ops_per_s": 1e9 / r.median(),
                "ns_per_op_runs": r.ns_per_op,
            })).collect::<Vec<_>>(),
        });
        let text = serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?;
        std::fs::write(path, text + "\n").map_err(|e| format!("writing {path}: {e}"))?;
        eprintln!("wrote {path}");
    }
    Ok(())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn parse_args() -> Res<Opts> {
    let mut o = Opts {
        iters: 5_000,
        runs: 7,
        json: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        let num = |s: String, name: &str| -> Res<usize> {
            s.replace('_', "")
                .parse()
                .map_err(|_| format!("{name}: not a number: {s}"))
        };
        match a.as_str() {
            "--iters" => o.iters = num(val("--iters")?, "--iters")?,
            "--runs" => o.runs = num(val("--runs")?, "--runs")?,
            "--json" => o.json = Some(val("--json")?),
            "-h" | "--help" => {
                println!(
                    "bench_verify [--iters N (default 5000)] [--runs N (default 7)] [--json FILE]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if o.iters == 0 || o.runs == 0 {
        return Err("--iters and --runs must be at least 1".into());
    }
    Ok(o)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("bench_verify: {e}");
        std::process::exit(1);
    }
}
