//! Medians over the rounds, the table on stdout, the targets, and the `--json` summary.

use std::fs;
use std::thread;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::{build_profile, Mode, Opts, Phase, Res, RoundResult, Streams};

/// The targets, and what agentgateway reaches on the same kind of run.
const MIN_RATIO_C1: f64 = 0.8;
const MAX_ADDED_P50_US: f64 = 150.0;
const REFERENCE: &str =
    "reference (agentgateway): 0.40x at concurrency 1, +430 µs p50, ~360 µs CPU/call, 28 MiB idle";

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The median of every field of the phases `pick` selects from the rounds of `mode`.
fn summary(rs: &[RoundResult], mode: Mode, pick: fn(&RoundResult) -> &Phase) -> Phase {
    let ps: Vec<&Phase> = rs.iter().filter(|r| r.mode == mode).map(pick).collect();
    let m = |f: fn(&Phase) -> f64| median(ps.iter().map(|p| f(p)).collect());
    Phase {
        calls_per_s: m(|p| p.calls_per_s),
        p50_us: m(|p| p.p50_us),
        p90_us: m(|p| p.p90_us),
        p99_us: m(|p| p.p99_us),
        max_us: m(|p| p.max_us),
        proxy_cpu_us: m(|p| p.proxy_cpu_us),
        echo_cpu_us: m(|p| p.echo_cpu_us),
        proxy_ctxsw: m(|p| p.proxy_ctxsw),
        echo_ctxsw: m(|p| p.echo_ctxsw),
    }
}

fn phase_json(p: &Phase) -> Value {
    json!({
        "calls_per_s": p.calls_per_s, "p50_us": p.p50_us, "p90_us": p.p90_us,
        "p99_us": p.p99_us, "max_us": p.max_us,
        "proxy_cpu_us_per_call": p.proxy_cpu_us, "echo_cpu_us_per_call": p.echo_cpu_us,
        "proxy_ctx_switches_per_call": p.proxy_ctxsw, "echo_ctx_switches_per_call": p.echo_ctxsw,
    })
}

const MIB: f64 = 1024.0;

pub fn print(
    o: &Opts,
    results: &[RoundResult],
    streams: Option<&Streams>,
    (audit_lines, audit_bytes): (u64, u64),
    [load_before, load_after]: [&str; 2],
) -> Res<()> {
    let (d1, p1) = (
        summary(results, Mode::Direct, |r| &r.c1),
        summary(results, Mode::Proxied, |r| &r.c1),
    );
    let (dn, pn) = (
        summary(results, Mode::Direct, |r| &r.cn),
        summary(results, Mode::Proxied, |r| &r.cn),
    );
    let ratio1 = p1.calls_per_s / d1.calls_per_s;
    let ration = pn.calls_per_s / dn.calls_per_s;
    let added_p50 = p1.p50_us - d1.p50_us;
    let peak_rss_kib = results.iter().map(|r| r.peak_rss_kib).max().unwrap_or(0);
    let profile = build_profile(&o.warden);
    let per = o.calls.div_ceil(o.conc);
    // Every tools/call the proxy saw (and its sessions' handshakes, which are few).
    let proxied_calls = (o.rounds * (o.calls + o.warmup + o.conc * (per + o.warmup))).max(1);
    let c = o.conc;

    let mut t = String::new();
    let line = "-".repeat(80);
    t += &format!(
        "mcp-warden HTTP benchmark  ({profile} build, {} round(s), medians)\n",
        o.rounds
    );
    t += &format!(
        "tools/call round trips: concurrency 1: {} calls; concurrency {c}: {c} connections x {per} calls\n(a session each, sequential); {} warm-up calls per connection\n",
        o.calls, o.warmup
    );
    if let Some(cfg) = &o.config {
        t += &format!("base config: {}\n", cfg.display());
    }
    for (k, v) in &o.serve_env {
        t += &format!("serve env: {k}={v}\n");
    }
    t += &format!("load average before: {load_before}\nload average after:  {load_after}\n");
    t += &format!("{line}\n");
    t += &format!(
        "{:<34} {:>12} {:>12} {:>16}\n",
        "", "direct", "proxied", "proxied/direct"
    );
    for (name, d, p) in [
        ("calls/s, concurrency 1".to_owned(), &d1, &p1),
        (format!("calls/s, concurrency {c}"), &dn, &pn),
    ] {
        t += &format!(
            "{name:<34} {:>12.0} {:>12.0} {:>15.3}x\n",
            d.calls_per_s,
            p.calls_per_s,
            p.calls_per_s / d.calls_per_s
        );
    }
    t += &format!("{:<34} {:>12} {:>12} {:>16}\n", "", "", "", "added (p − d)");
    for (label, d, p) in [("c1", &d1, &p1), (&*format!("c{c}"), &dn, &pn)] {
        for (q, dv, pv) in [
            ("p50", d.p50_us, p.p50_us),
            ("p90", d.p90_us, p.p90_us),
            ("p99", d.p99_us, p.p99_us),
        ] {
            let name = format!("latency {q} µs, {label}");
            t += &format!("{name:<34} {dv:>12.1} {pv:>12.1} {:>16.1}\n", pv - dv);
        }
    }
    t += &format!(
        "{:<34} {:>12} {:>12.1}\n",
        "serve CPU µs/call, c1 (*)", "", p1.proxy_cpu_us
    );
    t += &format!(
        "{:<34} {:>12} {:>12.1}\n",
        format!("serve CPU µs/call, c{c} (*)"),
        "",
        pn.proxy_cpu_us
    );
    t += &format!(
        "{:<34} {:>12.1} {:>12.1}\n",
        "echo server CPU µs/call, c1", d1.echo_cpu_us, p1.echo_cpu_us
    );
    t += &format!(
        "{:<34} {:>12} {:>12.1}\n",
        "serve context switches/call, c1", "", p1.proxy_ctxsw
    );
    t += &format!(
        "{:<34} {:>12} {:>12.1}\n",
        "serve peak RSS MiB (calls)",
        "",
        peak_rss_kib as f64 / MIB
    );
    if let Some(s) = streams {
        t += &format!(
            "{:<34} {:>12} {:>12.1}\n",
            "serve RSS MiB at rest (fresh)",
            "",
            s.rss_rest_kib as f64 / MIB
        );
        t += &format!(
            "{:<34} {:>12} {:>12}\n",
            format!("serve RSS / peak MiB, {} SSE", s.n),
            "",
            format!(
                "{:.1} / {:.1}",
                s.rss_kib as f64 / MIB,
                s.hwm_kib as f64 / MIB
            )
        );
        t += &format!(
            "{:<34} {:>12} {:>12.1}\n",
            "  KiB per idle stream",
            "",
            s.rss_kib.saturating_sub(s.rss_rest_kib) as f64 / s.n.max(1) as f64
        );
        t += &format!(
            "{:<34} {:>12} {:>12}\n",
            "  serve threads / fds",
            "",
            format!("{} / {}", s.threads, s.fds)
        );
    }
    t += &format!(
        "{:<34} {:>12} {:>12}\n",
        "audit records / bytes per call",
        "",
        format!(
            "{:.2} / {:.0}",
            audit_lines as f64 / proxied_calls as f64,
            audit_bytes as f64 / proxied_calls as f64
        )
    );
    t += &format!("{line}\n");
    t += "(*) utime + stime of the serve process over the measured calls, / calls (the client\n    and the echo server run on the same machine and compete for its cores).\n";
    let checks = [
        (
            format!("throughput >= {MIN_RATIO_C1}x direct (concurrency 1)"),
            ratio1 >= MIN_RATIO_C1,
            format!("{ratio1:.3}x"),
        ),
        (
            format!("added p50 <= {MAX_ADDED_P50_US} µs (concurrency 1)"),
            added_p50 <= MAX_ADDED_P50_US,
            format!("{added_p50:.1} µs"),
        ),
    ];
    t += "targets:\n";
    for (name, ok, got) in &checks {
        let mark = if *ok { "pass" } else { "FAIL" };
        t += &format!("  [{mark}] {name:<44} {got}\n");
    }
    t += &format!("  {REFERENCE}\n");
    print!("{t}");

    let Some(path) = &o.json else {
        return Ok(());
    };
    let rounds = |mode: Mode| -> Value {
        results
            .iter()
            .filter(|r| r.mode == mode)
            .map(|r| json!({"c1": phase_json(&r.c1), "cn": phase_json(&r.cn), "peak_rss_kib": r.peak_rss_kib}))
            .collect()
    };
    let summary = json!({
        "tool": "bench_http",
        "profile": profile,
        "warden": o.warden.display().to_string(),
        "server": o.server.display().to_string(),
        "config": o.config.as_ref().map(|c| c.display().to_string()),
        "params": {"calls": o.calls, "warmup": o.warmup, "conc": o.conc, "rounds": o.rounds,
                   "streams": o.streams, "payload": o.text.len(),
                   "serve_env": o.serve_env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>()},
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "cpus": thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "unix_time": SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        "direct": {"c1": phase_json(&d1), "cn": phase_json(&dn)},
        "proxied": {"c1": phase_json(&p1), "cn": phase_json(&pn)},
        "ratio": {"c1": ratio1, "cn": ration},
        "added_latency_us": {
            "c1": {"p50": added_p50, "p90": p1.p90_us - d1.p90_us, "p99": p1.p99_us - d1.p99_us},
            "cn": {"p50": pn.p50_us - dn.p50_us, "p90": pn.p90_us - dn.p90_us, "p99": pn.p99_us - dn.p99_us},
        },
        "serve_peak_rss_kib": peak_rss_kib,
        "idle_streams": streams.map(|s| json!({
            "streams": s.n, "rss_rest_kib": s.rss_rest_kib, "rss_kib": s.rss_kib,
            "hwm_kib": s.hwm_kib, "threads": s.threads, "fds": s.fds,
            "echo_threads": s.echo_threads, "open_s": s.open_s,
        })),
        "audit": {"lines": audit_lines, "bytes": audit_bytes},
        "targets": checks.iter().map(|(n, ok, got)| json!({"target": n, "pass": ok, "value": got})).collect::<Vec<_>>(),
        "rounds": {"direct": rounds(Mode::Direct), "proxied": rounds(Mode::Proxied)},
    });
    let text = serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?;
    fs::write(path, text + "\n").map_err(|e| format!("writing {}: {e}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}
