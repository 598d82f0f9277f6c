//! HTTP benchmark: a minimal Streamable HTTP echo server (`examples/echo_http_server.rs`)
//! measured directly and through `mcp-warden serve` (`[[servers]] url`), in the same run,
//! alternating which goes first round by round.
//!
//! Each round, for each target (direct; proxied through a freshly started `serve`):
//!
//! - concurrency 1: one connection, one session (`initialize`, `notifications/initialized`,
//!   `tools/list`), `--warmup` calls, then `--calls` measured `tools/call` round trips;
//! - concurrency N (`--conc`, default 8): N connections, each its own session and sequential,
//!   `--warmup` calls each, then `--calls` measured calls in all (split evenly), timed from a
//!   barrier that starts them together until the last one is done;
//! - calls/s, p50/p90/p99 latency, and the CPU time (utime + stime from /proc) per call of the
//!   proxy (proxied) and of the echo server (both), over the measured calls only; the proxy's
//!   peak RSS (VmHWM) at the end of the round.
//!
//! Then, on one more fresh `serve`: its RSS at rest, and with `--streams` (default 1,000)
//! sessions each holding a GET `text/event-stream` stream open and idle (RSS, peak, threads,
//! descriptors). The `[serve]` caps are raised for it through the environment.
//!
//! Reported: medians over the rounds, the throughput ratio proxied/direct, the added latency
//! (proxied − direct), the targets from the issue. A table goes to stdout and, with
//! `--json FILE`, a JSON summary to FILE. `serve` runs with the allow-all policy
//! (`fixtures/policies/allow-all`) and `MCP_WARDEN_STATE` in a fresh temporary directory; the
//! rest of the configuration is the default (signatures in audit mode, pins, trust, audit with
//! fsync "batch") unless `--config` names a base config.
//!
//! Usage: see `--help`, or `scripts/bench_http.sh`. This is a tool, not a test: timings depend
//! on the machine and its load, which is printed next to the figures.

#[path = "../bench_common/mod.rs"]
mod bench_common;

mod args;
mod client;
mod procs;
mod report;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

pub use args::Opts;
pub use bench_common::Res;
use bench_common::{cpu_us, ctx_switches, status_field, AuditStats, TempDir};
use client::{Conn, Session};
use procs::Server;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    Direct,
    Proxied,
}

/// One phase of one round.
#[derive(Clone, Debug, Default)]
pub struct Phase {
    pub calls_per_s: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    /// CPU µs per measured call: the proxy (0 when direct) and the echo server.
    pub proxy_cpu_us: f64,
    pub echo_cpu_us: f64,
    /// Context switches (all threads) per measured call: the proxy, the echo server.
    pub proxy_ctxsw: f64,
    pub echo_ctxsw: f64,
}

/// One (round, mode).
#[derive(Clone, Debug)]
pub struct RoundResult {
    pub mode: Mode,
    pub c1: Phase,
    pub cn: Phase,
    /// VmHWM of serve at the end of the round, KiB (0 when direct).
    pub peak_rss_kib: u64,
}

/// The idle-streams measurement.
#[derive(Clone, Debug, Default)]
pub struct Streams {
    pub n: usize,
    pub rss_rest_kib: u64,
    pub rss_kib: u64,
    pub hwm_kib: u64,
    pub threads: u64,
    pub fds: u64,
    pub echo_threads: u64,
    pub open_s: f64,
}

fn main() {
    if let Err(e) = run() {
        eprintln!("bench_http: {e}");
        std::process::exit(1);
    }
}

fn run() -> Res<()> {
    let opts = args::parse_args()?;
    let nofile = bench_common::raise_nofile();
    let state = TempDir::new("mcp-warden-bench-http")?;
    let load_before = bench_common::loadavg();
    let mut echo_cmd = Command::new(&opts.server);
    echo_cmd.args(["--listen", "127.0.0.1:0"]);
    let echo = Server::start(echo_cmd, "echo_http_server")?;
    eprintln!(
        "warden: {}\nserver: {} (http://{})\nstate:  {}\nload:   {load_before}\nnofile: {nofile}",
        opts.warden.display(),
        opts.server.display(),
        echo.addr,
        state.0.display()
    );
    let config = write_config(&opts, &state.0, &echo)?;

    let mut results = Vec::new();
    for round in 0..opts.rounds {
        let order = if round % 2 == 0 {
            [Mode::Direct, Mode::Proxied]
        } else {
            [Mode::Proxied, Mode::Direct]
        };
        for mode in order {
            let r = run_one(&opts, mode, &echo, &config, &state.0)
                .map_err(|e| format!("round {} ({mode:?}): {e}", round + 1))?;
            eprintln!(
                "round {} {:<8} c1 {:>7.0} calls/s p50 {:>7.1} µs p99 {:>7.1} µs cpu {:>6.1}/{:>5.1} µs | c{} {:>7.0} calls/s p50 {:>7.1} µs p99 {:>7.1} µs cpu {:>6.1}/{:>5.1} µs | hwm {} KiB",
                round + 1, format!("{mode:?}"), r.c1.calls_per_s, r.c1.p50_us, r.c1.p99_us,
                r.c1.proxy_cpu_us, r.c1.echo_cpu_us, opts.conc, r.cn.calls_per_s, r.cn.p50_us,
                r.cn.p99_us, r.cn.proxy_cpu_us, r.cn.echo_cpu_us, r.peak_rss_kib
            );
            results.push(r);
        }
    }
    // Before the streams' sessions add their handshakes to it.
    let audit = AuditStats::of(&state.0);
    let streams = if opts.streams > 0 {
        let s = idle_streams(&opts, &echo, &config, &state.0)
            .map_err(|e| format!("idle streams: {e}"))?;
        eprintln!(
            "idle streams: {} open in {:.2} s; serve RSS {} KiB at rest, {} KiB with them (peak {} KiB), {} threads, {} fds; echo server: {} threads",
            s.n, s.open_s, s.rss_rest_kib, s.rss_kib, s.hwm_kib, s.threads, s.fds, s.echo_threads
        );
        Some(s)
    } else {
        None
    };
    let load_after = bench_common::loadavg();
    drop(echo);
    report::print(
        &opts,
        &results,
        streams.as_ref(),
        audit,
        [&load_before, &load_after],
    )
}

/// The bench's config: the base (`--config`) with the echo server appended as `[[servers]]`.
fn write_config(opts: &Opts, state: &Path, echo: &Server) -> Res<PathBuf> {
    let mut text = match &opts.config {
        Some(c) => fs::read_to_string(c).map_err(|e| format!("{}: {e}", c.display()))?,
        None => String::new(),
    };
    text += &match &opts.stdio_upstream {
        // TOML basic strings take the same escapes as JSON strings.
        Some(cmd) => format!(
            "\n[[servers]]\nname = \"bench\"\ncommand = [{}]\n",
            serde_json::Value::from(cmd.display().to_string())
        ),
        None => format!(
            "\n[[servers]]\nname = \"bench\"\nurl = \"http://{}/mcp\"\n",
            echo.addr
        ),
    };
    let path = state.join("bench-proxy.toml");
    fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

fn start_serve(opts: &Opts, config: &Path, state: &Path) -> Res<Server> {
    let cap = (opts.streams + 2 * opts.conc + 64).to_string();
    let mut cmd = Command::new(&opts.warden);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(config)
        .env("MCP_WARDEN_STATE", state)
        .env(
            "MCP_WARDEN_POLICY_DIR",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/policies/allow-all"),
        )
        .env("MCP_WARDEN_SERVE_MAX_CONNECTIONS_PER_CLIENT", &cap)
        .env("MCP_WARDEN_SERVE_MAX_STREAMS", &cap)
        .env("MCP_WARDEN_SERVE_MAX_SESSIONS", &cap)
        // All of the benchmark's sessions are one client's (loopback, unsigned), all busy.
        .env("MCP_WARDEN_SERVE_MAX_SESSIONS_PER_CLIENT", &cap)
        // The admin port runs, as by default, but on a free port: 9464 may be taken.
        .env("MCP_WARDEN_ADMIN_LISTEN", "127.0.0.1:0")
        .envs(opts.serve_env.iter().map(|(k, v)| (k, v)));
    Server::start(cmd, "serve")
}

fn run_one(
    opts: &Opts,
    mode: Mode,
    echo: &Server,
    config: &Path,
    state: &Path,
) -> Res<RoundResult> {
    let serve = match mode {
        Mode::Direct => None,
        Mode::Proxied => Some(start_serve(opts, config, state)?),
    };
    let target = serve.as_ref().unwrap_or(echo);
    let pids = (serve.as_ref().map(Server::pid), echo.pid());
    let c1 = phase(opts, target, 1, opts.calls, pids)?;
    let per = opts.calls.div_ceil(opts.conc);
    let cn = phase(opts, target, opts.conc, per, pids)?;
    let peak_rss_kib = serve.as_ref().map_or(0, |s| status_field(s.pid(), "VmHWM"));
    Ok(RoundResult {
        mode,
        c1,
        cn,
        peak_rss_kib,
    })
}

/// `conc` connections, a session each, `per` measured calls each after the warm-up.
fn phase(
    opts: &Opts,
    target: &Server,
    conc: usize,
    per: usize,
    (proxy, echo): (Option<u32>, u32),
) -> Res<Phase> {
    let barrier = Arc::new(Barrier::new(conc + 1));
    let workers: Vec<_> = (0..conc)
        .map(|_| {
            let (barrier, addr) = (barrier.clone(), target.addr);
            let (text, warmup) = (opts.text.clone(), opts.warmup);
            thread::spawn(move || -> Res<Vec<u32>> {
                let ready = Conn::connect(addr, "/mcp")
                    .and_then(|c| Session::open(c, &text, true))
                    .and_then(|mut s| (0..warmup).try_for_each(|_| s.call()).map(|()| s));
                barrier.wait();
                let mut lat = Vec::with_capacity(per);
                let done = ready.and_then(|mut s| {
                    for _ in 0..per {
                        let t = Instant::now();
                        s.call()?;
                        lat.push(t.elapsed().as_nanos().min(u32::MAX as u128) as u32);
                    }
                    Ok(s)
                });
                barrier.wait();
                done.map(|_session| lat)
            })
        })
        .collect();
    let sample = || {
        let p = proxy.map_or((0, 0), |p| (cpu_us(p), ctx_switches(p)));
        [p.0, cpu_us(echo), p.1, ctx_switches(echo)]
    };
    barrier.wait();
    let before = sample();
    let t0 = Instant::now();
    barrier.wait();
    let elapsed = t0.elapsed();
    let after = sample();
    let calls = (conc * per).max(1) as f64;
    let per_call = |i: usize| after[i].saturating_sub(before[i]) as f64 / calls;
    let mut lat = Vec::with_capacity(conc * per);
    for w in workers {
        lat.extend(w.join().map_err(|_| "a client thread panicked")??);
    }
    lat.sort_unstable();
    let pct = |p: usize| lat[(lat.len() * p / 100).min(lat.len() - 1)] as f64 / 1e3;
    Ok(Phase {
        calls_per_s: lat.len() as f64 / elapsed.as_secs_f64(),
        p50_us: pct(50),
        p90_us: pct(90),
        p99_us: pct(99),
        max_us: *lat.last().unwrap_or(&0) as f64 / 1e3,
        proxy_cpu_us: per_call(0),
        echo_cpu_us: per_call(1),
        proxy_ctxsw: per_call(2),
        echo_ctxsw: per_call(3),
    })
}

/// A fresh serve: its RSS at rest, then with `--streams` sessions each holding its GET stream.
fn idle_streams(opts: &Opts, echo: &Server, config: &Path, state: &Path) -> Res<Streams> {
    let serve = start_serve(opts, config, state)?;
    thread::sleep(Duration::from_millis(300));
    let pid = serve.pid();
    let mut s = Streams {
        n: opts.streams,
        rss_rest_kib: status_field(pid, "VmRSS"),
        ..Streams::default()
    };
    let t0 = Instant::now();
    let mut held = Vec::with_capacity(opts.streams);
    // The sessions are opened over one keep-alive connection; each stream has its own.
    let mut conn = Conn::connect(serve.addr, "/mcp")?;
    for i in 0..opts.streams {
        let session = Session::open(conn, &opts.text, false)
            .map_err(|e| format!("session {}: {e}", i + 1))?;
        held.push(
            session
                .open_stream(serve.addr, "/mcp")
                .map_err(|e| format!("stream {}: {e}", i + 1))?,
        );
        conn = session.into_conn();
    }
    s.open_s = t0.elapsed().as_secs_f64();
    thread::sleep(Duration::from_secs(1));
    s.rss_kib = status_field(pid, "VmRSS");
    s.hwm_kib = status_field(pid, "VmHWM");
    s.threads = status_field(pid, "Threads");
    s.fds = bench_common::fds(pid);
    s.echo_threads = status_field(echo.pid(), "Threads");
    drop(held);
    Ok(s)
}
