//! Stdio benchmark: the echo server (`examples/echo_server.rs`) measured directly and through
//! `mcp-warden wrap`, in the same run, interleaved round by round.
//!
//! For each target (direct, proxied) and each round, a fresh process is started and, after the
//! `initialize` handshake:
//!
//! - sequential: `--warmup` calls, then `--calls` measured `tools/call` round trips (send one,
//!   wait for its answer): calls/s, p50 and p99 latency;
//! - pipelined: a writer thread sends `--pipe-calls` calls while a reader thread collects the
//!   answers, never more than `--window` in flight: calls/s;
//! - the CPU time (user + system) the measured process used per call in each phase (the echo
//!   server when direct, the proxy alone when proxied) and, for the proxy, its peak RSS (VmHWM,
//!   read from /proc just before its stdin is closed).
//!
//! Each answer is checked (its id, and that it is a result, not an error). Reported: medians
//! over the rounds, the throughput ratio proxied/direct, the added p50/p99 (proxied − direct),
//! the largest peak RSS, and the targets from the issue. A table goes to stdout and, with
//! `--json FILE`, a JSON summary to FILE.
//!
//! The proxy runs with `MCP_WARDEN_STATE` set to a fresh temporary directory, so its audit
//! trail (default fsync "batch") goes there; the directory is removed at the end. `--config`
//! is passed through to `wrap`, to benchmark with policies or signatures enabled.
//!
//! With `--sign-key PEM`, every message sent (handshake included) carries a message-scheme
//! signature for audience `bench` (the name passed to `wrap --server`), with a fresh nonce and
//! the current time. The calls of a round are signed before it starts, so the client's signing
//! cost is not measured; the direct server ignores the signature. Pair it with a `--config`
//! that sets `[signatures] mode = "enforce"` and trusts the key's public half as a client.
//!
//! Usage: see `--help`, or `scripts/bench.sh`. This is a tool, not a test: timings depend on the
//! machine and its load, which is printed next to the figures.

#[path = "bench_common/mod.rs"]
mod bench_common;

use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bench_common::{
    binaries, build_profile, canonical_config, cpu_us, loadavg, median, status_field, Args,
    AuditStats, Res, Table, Target, TempDir,
};
use mcp_warden::sig::{keys::signing_key_from_pem, message_scheme, new_nonce, SigningKey};
use serde_json::{json, Value};

const USAGE: &str = "\
bench_stdio: the echo server measured directly and through `mcp-warden wrap`

Options:
  --warden PATH      mcp-warden binary (default: target/release/mcp-warden if present,
                     else target/debug/mcp-warden)
  --server PATH      echo server binary (default: examples/echo_server next to the warden)
  --calls N          measured sequential calls per round (default 20000)
  --warmup N         sequential warm-up calls per round (default 1000)
  --pipe-calls N     pipelined calls per round (default 50000)
  --window N         pipelined calls in flight at most (default 8, as in issue 16)
  --payload BYTES    length of the echoed text argument (default 13: \"hello, warden\")
  --rounds N         rounds; each runs direct and proxied, alternating which goes first
                     (default 3)
  --config FILE      passed to `mcp-warden wrap --config`
  --sign-key PEM     sign every message with this Ed25519 key (message scheme, audience
                     \"bench\"), pre-signed before each round
  --json FILE        also write a JSON summary to FILE
  -h, --help         this text";

struct Opts {
    warden: PathBuf,
    server: PathBuf,
    calls: usize,
    warmup: usize,
    pipe_calls: usize,
    window: usize,
    rounds: usize,
    /// The `text` argument of every call (echoed back).
    text: String,
    config: Option<PathBuf>,
    json: Option<PathBuf>,
    sign_key: Option<(PathBuf, SigningKey)>,
}

/// The server name the benchmark gives `wrap --server`: the audience of signed messages.
const SERVER_NAME: &str = "bench";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Direct,
    Proxied,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::Direct => "direct",
            Mode::Proxied => "proxied",
        }
    }
}

/// What one (round, mode) measured.
#[derive(Clone, Debug)]
struct RoundResult {
    seq_calls_per_s: f64,
    p50_us: f64,
    p90_us: f64,
    p99_us: f64,
    max_us: f64,
    pipe_calls_per_s: f64,
    /// CPU µs per call of the measured process (echo server / proxy) in each phase.
    seq_cpu_us_per_call: f64,
    pipe_cpu_us_per_call: f64,
    /// VmHWM of the measured process, KiB.
    peak_rss_kib: u64,
}

fn main() {
    match run() {
        Ok(()) => {}
        Err(e) => {
            eprintln!("bench_stdio: {e}");
            std::process::exit(1);
        }
    }
}

fn run() -> Res<()> {
    let opts = parse_args()?;
    let state = TempDir::new("mcp-warden-bench")?;
    let load_before = loadavg();
    eprintln!(
        "warden: {}\nserver: {}\nstate:  {}\nload:   {load_before}",
        opts.warden.display(),
        opts.server.display(),
        state.0.display()
    );

    let mut results: Vec<(Mode, RoundResult)> = Vec::new();
    for round in 0..opts.rounds {
        let order = if round % 2 == 0 {
            [Mode::Direct, Mode::Proxied]
        } else {
            [Mode::Proxied, Mode::Direct]
        };
        let requests = Arc::new(Requests::for_round(&opts)?);
        for mode in order {
            let r = run_one(&opts, &requests, mode, &state.0)
                .map_err(|e| format!("round {} ({}): {e}", round + 1, mode.label()))?;
            eprintln!(
                "round {} {:<7}  seq {:>8.0} calls/s  p50 {:>7.1} µs  p99 {:>7.1} µs  pipe {:>8.0} calls/s  cpu {:.1}/{:.1} µs/call  hwm {} KiB",
                round + 1,
                mode.label(),
                r.seq_calls_per_s,
                r.p50_us,
                r.p99_us,
                r.pipe_calls_per_s,
                r.seq_cpu_us_per_call,
                r.pipe_cpu_us_per_call,
                r.peak_rss_kib
            );
            results.push((mode, r));
        }
    }
    let load_after = loadavg();
    let audit = AuditStats::of(&state.0);
    // Every tools/call the proxy saw, over all proxied rounds.
    let proxied_calls = ((opts.warmup + opts.calls + opts.pipe_calls) * opts.rounds) as u64;

    let direct: Vec<RoundResult> = pick(&results, Mode::Direct);
    let proxied: Vec<RoundResult> = pick(&results, Mode::Proxied);
    let d = Summary::of(&direct);
    let p = Summary::of(&proxied);
    let seq_ratio = p.seq_calls_per_s / d.seq_calls_per_s;
    let pipe_ratio = p.pipe_calls_per_s / d.pipe_calls_per_s;
    let added_p50 = p.p50_us - d.p50_us;
    let added_p99 = p.p99_us - d.p99_us;
    let peak_rss_kib = proxied.iter().map(|r| r.peak_rss_kib).max().unwrap_or(0);
    let peak_rss_mib = peak_rss_kib as f64 / 1024.0;
    let profile = build_profile(&opts.warden);

    // ---- table ----
    let mut title = format!(
        "mcp-warden stdio benchmark  ({} build, {} round(s), medians)\n\
         sequential: {} calls after {} warm-up; pipelined: {} calls, window {}",
        profile, opts.rounds, opts.calls, opts.warmup, opts.pipe_calls, opts.window
    );
    if let Some(c) = &opts.config {
        title += &format!("\nconfig: {}", c.display());
    }
    if let Some((k, _)) = &opts.sign_key {
        title += &format!(
            "\nrequests signed (message scheme, aud {SERVER_NAME:?}) with {}",
            k.display()
        );
    }
    let mut t = Table::new(&title, &load_before, &load_after);
    t.ratio("sequential calls/s", d.seq_calls_per_s, p.seq_calls_per_s);
    t.ratio(
        &format!("pipelined calls/s ({} in flight)", opts.window),
        d.pipe_calls_per_s,
        p.pipe_calls_per_s,
    );
    t.added_head();
    for (name, dv, pv) in [
        ("latency p50 µs", d.p50_us, p.p50_us),
        ("latency p90 µs", d.p90_us, p.p90_us),
        ("latency p99 µs", d.p99_us, p.p99_us),
        ("latency max µs", d.max_us, p.max_us),
    ] {
        t.added(name, dv, pv);
    }
    t.value(
        "CPU µs/call, sequential (*)",
        Some(d.seq_cpu_us_per_call),
        p.seq_cpu_us_per_call,
    );
    t.value(
        "CPU µs/call, pipelined (*)",
        Some(d.pipe_cpu_us_per_call),
        p.pipe_cpu_us_per_call,
    );
    t.value("proxy peak RSS MiB (max)", None, peak_rss_mib);
    t.text(
        "audit records / bytes per call",
        &audit.per_call(proxied_calls),
    );
    t.end("(*) CPU of the measured process only: the echo server when direct, the proxy alone\n    (without its child) when proxied.\n");
    let checks = [
        Target::ratio_at_least("sequential throughput", seq_ratio, 0.9),
        Target::ratio_at_least("pipelined throughput", pipe_ratio, 0.9),
        Target::at_most("added p50", added_p50, 30.0, "µs"),
        Target::at_most("proxy peak RSS", peak_rss_mib, 20.0, "MiB"),
    ];
    t.targets(&checks);
    print!("{}", t.0);

    // ---- json ----
    if let Some(path) = &opts.json {
        let rounds_json = |rs: &[RoundResult]| -> Value {
            Value::Array(rs.iter().map(RoundResult::to_json).collect())
        };
        let summary = json!({
            "tool": "bench_stdio",
            "profile": profile,
            "warden": opts.warden.display().to_string(),
            "server": opts.server.display().to_string(),
            "config": opts.config.as_ref().map(|c| c.display().to_string()),
            "sign_key": opts.sign_key.as_ref().map(|(k, _)| k.display().to_string()),
            "params": {
                "calls": opts.calls, "warmup": opts.warmup, "pipe_calls": opts.pipe_calls,
                "window": opts.window, "rounds": opts.rounds,
            },
            "loadavg_before": load_before,
            "loadavg_after": load_after,
            "cpus": thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            "unix_time": bench_common::unix_time(),
            "direct": d.to_json(),
            "proxied": p.to_json(),
            "ratio": { "sequential": seq_ratio, "pipelined": pipe_ratio },
            "added_latency_us": { "p50": added_p50, "p90": p.p90_us - d.p90_us, "p99": added_p99 },
            "proxy_peak_rss_kib": peak_rss_kib,
            "proxy_peak_rss_mib": peak_rss_mib,
            "audit": audit.to_json(),
            "targets": Target::json(&checks),
            "rounds": { "direct": rounds_json(&direct), "proxied": rounds_json(&proxied) },
        });
        bench_common::write_json(path, &summary)?;
    }
    Ok(())
}

fn pick(results: &[(Mode, RoundResult)], mode: Mode) -> Vec<RoundResult> {
    results
        .iter()
        .filter(|(m, _)| *m == mode)
        .map(|(_, r)| r.clone())
        .collect()
}

impl RoundResult {
    fn to_json(&self) -> Value {
        json!({
            "seq_calls_per_s": self.seq_calls_per_s,
            "p50_us": self.p50_us, "p90_us": self.p90_us, "p99_us": self.p99_us, "max_us": self.max_us,
            "pipe_calls_per_s": self.pipe_calls_per_s,
            "seq_cpu_us_per_call": self.seq_cpu_us_per_call,
            "pipe_cpu_us_per_call": self.pipe_cpu_us_per_call,
            "peak_rss_kib": self.peak_rss_kib,
        })
    }
}

/// Medians over rounds.
struct Summary {
    seq_calls_per_s: f64,
    p50_us: f64,
    p90_us: f64,
    p99_us: f64,
    max_us: f64,
    pipe_calls_per_s: f64,
    seq_cpu_us_per_call: f64,
    pipe_cpu_us_per_call: f64,
}

impl Summary {
    fn of(rs: &[RoundResult]) -> Summary {
        let m = |f: fn(&RoundResult) -> f64| median(rs.iter().map(f).collect());
        Summary {
            seq_calls_per_s: m(|r| r.seq_calls_per_s),
            p50_us: m(|r| r.p50_us),
            p90_us: m(|r| r.p90_us),
            p99_us: m(|r| r.p99_us),
            max_us: m(|r| r.max_us),
            pipe_calls_per_s: m(|r| r.pipe_calls_per_s),
            seq_cpu_us_per_call: m(|r| r.seq_cpu_us_per_call),
            pipe_cpu_us_per_call: m(|r| r.pipe_cpu_us_per_call),
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "seq_calls_per_s": self.seq_calls_per_s,
            "p50_us": self.p50_us, "p90_us": self.p90_us, "p99_us": self.p99_us, "max_us": self.max_us,
            "pipe_calls_per_s": self.pipe_calls_per_s,
            "seq_cpu_us_per_call": self.seq_cpu_us_per_call,
            "pipe_cpu_us_per_call": self.pipe_cpu_us_per_call,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// One run against one fresh process

fn run_one(opts: &Opts, reqs: &Arc<Requests>, mode: Mode, state: &Path) -> Res<RoundResult> {
    let mut cmd = match mode {
        Mode::Direct => Command::new(&opts.server),
        Mode::Proxied => {
            let mut c = Command::new(&opts.warden);
            c.arg("wrap").arg("--server").arg(SERVER_NAME);
            if let Some(cfg) = &opts.config {
                c.arg("--config").arg(cfg);
            }
            c.arg("--").arg(&opts.server);
            c.env("MCP_WARDEN_STATE", state);
            c
        }
    };
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    let pid = child.id();
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let mut reader = BufReader::with_capacity(64 * 1024, child.stdout.take().ok_or("no stdout")?);

    let result = (|| -> Res<RoundResult> {
        handshake(&mut stdin, &mut reader, reqs)?;
        let mut next_id: u64 = 1;

        // Sequential.
        let mut buf = Vec::with_capacity(256);
        let mut line = Vec::with_capacity(256);
        for _ in 0..opts.warmup {
            call(&mut stdin, &mut reader, next_id, reqs, &mut buf, &mut line)?;
            next_id += 1;
        }
        let mut lat_ns: Vec<u64> = Vec::with_capacity(opts.calls);
        let cpu0 = cpu_us(pid);
        let t0 = Instant::now();
        for _ in 0..opts.calls {
            let s = Instant::now();
            call(&mut stdin, &mut reader, next_id, reqs, &mut buf, &mut line)?;
            lat_ns.push(s.elapsed().as_nanos() as u64);
            next_id += 1;
        }
        let seq_elapsed = t0.elapsed();
        let cpu1 = cpu_us(pid);
        lat_ns.sort_unstable();
        let pct = |p: usize| lat_ns[(lat_ns.len() * p / 100).min(lat_ns.len() - 1)] as f64 / 1e3;

        // Pipelined.
        let pipe_start_id = next_id;
        let (pipe_elapsed, s, r) = pipelined(
            stdin,
            reader,
            pipe_start_id,
            opts.pipe_calls,
            opts.window,
            Arc::clone(reqs),
        )?;
        stdin = s;
        reader = r;
        let cpu2 = cpu_us(pid);
        let peak_rss_kib = status_field(pid, "VmHWM");

        // Close: EOF on stdin, and the process must exit cleanly.
        drop(stdin);
        let mut rest = Vec::new();
        let _ = io::Read::read_to_end(&mut reader, &mut rest);
        let status = wait_timeout(&mut child, Duration::from_secs(20))?;
        if !status.success() {
            return Err(format!("exited with {status}"));
        }
        if !rest.is_empty() {
            return Err(format!(
                "unexpected output after the last answer: {:?}",
                String::from_utf8_lossy(&rest[..rest.len().min(300)])
            ));
        }

        let calls = opts.calls.max(1) as f64;
        Ok(RoundResult {
            seq_calls_per_s: opts.calls as f64 / seq_elapsed.as_secs_f64(),
            p50_us: pct(50),
            p90_us: pct(90),
            p99_us: pct(99),
            max_us: *lat_ns.last().unwrap_or(&0) as f64 / 1e3,
            pipe_calls_per_s: opts.pipe_calls as f64 / pipe_elapsed.as_secs_f64(),
            seq_cpu_us_per_call: cpu1.saturating_sub(cpu0) as f64 / calls,
            pipe_cpu_us_per_call: cpu2.saturating_sub(cpu1) as f64 / opts.pipe_calls.max(1) as f64,
            peak_rss_kib,
        })
    })();
    if result.is_err() {
        let _ = child.kill();
        let _ = child.wait();
    }
    result
}

fn handshake(
    stdin: &mut ChildStdin,
    reader: &mut BufReader<ChildStdout>,
    reqs: &Requests,
) -> Res<()> {
    let init = json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "bench_stdio", "version": "1.0.0"}
        }
    });
    stdin
        .write_all(&reqs.control(init)?)
        .map_err(|e| format!("write initialize: {e}"))?;
    let mut line = Vec::new();
    read_line(reader, &mut line)?;
    check_answer(&line, 0)?;
    stdin
        .write_all(&reqs.control(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))?)
        .map_err(|e| format!("write initialized: {e}"))?;
    // List the tools first, as a client does: the proxy pins them on first sight and refuses
    // calls to tools it has never seen listed.
    stdin
        .write_all(&reqs.control(json!({"jsonrpc": "2.0", "id": 0, "method": "tools/list"}))?)
        .map_err(|e| format!("write tools/list: {e}"))?;
    read_line(reader, &mut line)?;
    check_answer(&line, 0)
}

/// The lines a round sends: calls built on the fly, or all signed before the round.
struct Requests {
    text: String,
    key: Option<SigningKey>,
    /// With `--sign-key`: the signed line (with its newline) of call id `i + 1`.
    signed: Vec<Vec<u8>>,
}

impl Requests {
    fn for_round(opts: &Opts) -> Res<Requests> {
        let mut r = Requests {
            text: opts.text.clone(),
            key: opts.sign_key.as_ref().map(|(_, k)| k.clone()),
            signed: Vec::new(),
        };
        if r.key.is_some() {
            let n = opts.warmup + opts.calls + opts.pipe_calls;
            let mut buf = Vec::new();
            r.signed = (1..=n as u64)
                .map(|id| {
                    request(&mut buf, id, &r.text);
                    let call: Value = serde_json::from_slice(&buf).map_err(|e| e.to_string())?;
                    r.control(call)
                })
                .collect::<Res<_>>()?;
        }
        Ok(r)
    }

    /// `message` as one line, signed now (fresh nonce, current time) when there is a key.
    fn control(&self, message: Value) -> Res<Vec<u8>> {
        let line = match &self.key {
            Some(key) => {
                let ts = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_err(|e| e.to_string())?
                    .as_secs() as i64;
                message_scheme::sign_value(&message, key, SERVER_NAME, ts, &new_nonce())
                    .map_err(|e| format!("signing: {e}"))?
            }
            None => message,
        };
        let mut bytes = serde_json::to_vec(&line).map_err(|e| e.to_string())?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// The line of call `id`: pre-signed, or built into `buf`.
    fn line<'a>(&'a self, id: u64, buf: &'a mut Vec<u8>) -> Res<&'a [u8]> {
        if self.key.is_none() {
            request(buf, id, &self.text);
            return Ok(buf);
        }
        usize::try_from(id)
            .ok()
            .and_then(|id| self.signed.get(id.checked_sub(1)?))
            .map(Vec::as_slice)
            .ok_or_else(|| format!("no pre-signed request for id {id}"))
    }
}

/// The unsigned request line for call `id` (with its newline), into `buf`.
fn request(buf: &mut Vec<u8>, id: u64, text: &str) {
    buf.clear();
    let _ = writeln!(
        buf,
        "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"tools/call\",\"params\":{{\"name\":\"echo\",\"arguments\":{{\"text\":\"{text}\"}}}}}}"
    );
}

fn call(
    stdin: &mut ChildStdin,
    reader: &mut BufReader<ChildStdout>,
    id: u64,
    reqs: &Requests,
    buf: &mut Vec<u8>,
    line: &mut Vec<u8>,
) -> Res<()> {
    stdin
        .write_all(reqs.line(id, buf)?)
        .map_err(|e| format!("write: {e}"))?;
    read_line(reader, line)?;
    check_answer(line, id)
}

fn read_line(reader: &mut BufReader<ChildStdout>, line: &mut Vec<u8>) -> Res<()> {
    line.clear();
    match reader.read_until(b'\n', line) {
        Ok(0) => Err("the process closed its stdout".into()),
        Ok(_) => Ok(()),
        Err(e) => Err(format!("read: {e}")),
    }
}

/// The numeric top-level id of an answer, found without a full parse (the echo server's and the
/// proxy's answers carry exactly one `"id":`). Errors for an error answer.
fn answer_id(line: &[u8]) -> Res<u64> {
    let text = std::str::from_utf8(line).map_err(|_| "answer is not UTF-8".to_string())?;
    if text.contains("\"error\"") || !text.contains("\"result\"") {
        return Err(format!("not a result: {}", text.trim_end()));
    }
    let at = text
        .find("\"id\":")
        .ok_or_else(|| format!("answer without id: {}", text.trim_end()))?;
    let digits: String = text[at + 5..]
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .map_err(|_| format!("answer with a non-numeric id: {}", text.trim_end()))
}

fn check_answer(line: &[u8], want: u64) -> Res<()> {
    let got = answer_id(line)?;
    if got != want {
        return Err(format!("expected the answer to id {want}, got id {got}"));
    }
    Ok(())
}

/// Send `n` calls from a writer thread while this thread reads the answers, with at most
/// `window` unanswered. Returns the elapsed time and the pipes, for the next phase.
fn pipelined(
    mut stdin: ChildStdin,
    mut reader: BufReader<ChildStdout>,
    first_id: u64,
    n: usize,
    window: usize,
    reqs: Arc<Requests>,
) -> Res<(Duration, ChildStdin, BufReader<ChildStdout>)> {
    // A bounded channel as a semaphore: the writer puts one token per call sent (blocking when
    // `window` are unanswered), the reader takes one per answer.
    let (tokens, slots) = mpsc::sync_channel::<()>(window.max(1));
    let start = Instant::now();
    let writer = thread::spawn(move || -> Res<ChildStdin> {
        let mut buf = Vec::with_capacity(256);
        for i in 0..n as u64 {
            tokens.send(()).map_err(|_| "reader stopped".to_string())?;
            stdin
                .write_all(reqs.line(first_id + i, &mut buf)?)
                .map_err(|e| format!("write: {e}"))?;
        }
        Ok(stdin)
    });
    let mut seen = vec![false; n];
    let mut line = Vec::with_capacity(256);
    let read = (|| -> Res<()> {
        for _ in 0..n {
            read_line(&mut reader, &mut line)?;
            let id = answer_id(&line)?;
            let k = id
                .checked_sub(first_id)
                .filter(|k| (*k as usize) < n)
                .ok_or_else(|| format!("answer to unexpected id {id}"))?
                as usize;
            if std::mem::replace(&mut seen[k], true) {
                return Err(format!("two answers to id {id}"));
            }
            slots.recv().map_err(|_| "writer stopped".to_string())?;
        }
        Ok(())
    })();
    let elapsed = start.elapsed();
    drop(slots); // unblocks the writer if reading failed
    let stdin = writer.join().map_err(|_| "writer panicked".to_string())??;
    read?;
    Ok((elapsed, stdin, reader))
}

fn wait_timeout(child: &mut Child, limit: Duration) -> Res<std::process::ExitStatus> {
    let until = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
            return Ok(s);
        }
        if Instant::now() > until {
            let _ = child.kill();
            return Err(format!("did not exit within {limit:?} after stdin closed"));
        }
        thread::sleep(Duration::from_millis(5));
    }
}

fn parse_args() -> Res<Opts> {
    let (mut warden, mut server) = (None, None);
    let mut o = Opts {
        warden: PathBuf::new(),
        server: PathBuf::new(),
        calls: 20_000,
        warmup: 1_000,
        pipe_calls: 50_000,
        window: 8,
        rounds: 3,
        text: "hello, warden".into(),
        config: None,
        json: None,
        sign_key: None,
    };
    let mut args = Args::new();
    while let Some(a) = args.flag() {
        match a.as_str() {
            "--warden" => warden = Some(args.path("--warden")?),
            "--server" => server = Some(args.path("--server")?),
            "--calls" => o.calls = args.num("--calls")?,
            "--warmup" => o.warmup = args.num("--warmup")?,
            "--pipe-calls" => o.pipe_calls = args.num("--pipe-calls")?,
            "--window" => o.window = args.num("--window")?,
            "--rounds" => o.rounds = args.num("--rounds")?,
            "--payload" => o.text = "x".repeat(args.num("--payload")?),
            "--config" => o.config = Some(args.path("--config")?),
            "--json" => o.json = Some(args.path("--json")?),
            "--sign-key" => {
                let path = args.path("--sign-key")?;
                let pem = fs::read_to_string(&path)
                    .map_err(|e| format!("--sign-key {}: {e}", path.display()))?;
                let key = signing_key_from_pem(&pem)
                    .map_err(|e| format!("--sign-key {}: {e}", path.display()))?;
                o.sign_key = Some((path, key));
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if o.calls == 0 || o.rounds == 0 || o.window == 0 {
        return Err("--calls, --rounds and --window must be at least 1".into());
    }
    (o.warden, o.server) = binaries(
        warden,
        server,
        "echo_server",
        "cargo build --release --bin mcp-warden --example echo_server",
    )?;
    o.config = canonical_config(o.config.take())?;
    Ok(o)
}
