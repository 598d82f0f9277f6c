//! Medians over the rounds, the table on stdout, the targets, and the `--json` summary.

use std::thread;

use serde_json::{json, Value};

use super::bench_common::{
    build_profile, median, unix_time, write_json, AuditStats, Table, Target,
};
use super::{Mode, Opts, Phase, Res, RoundResult, Streams};

/// The targets (issue 16), and what agentgateway reaches on the same kind of run.
const MIN_RATIO_C1: f64 = 0.8;
const MIN_RATIO_CN: f64 = 0.7;
const MAX_ADDED_P50_US: f64 = 60.0;
const REFERENCE: &str =
    "reference (agentgateway): 0.40x at concurrency 1, 0.36x at 8, +430 µs p50, ~360 µs CPU/call, 28 MiB idle";

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
    audit: AuditStats,
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
    let proxied_calls = (o.rounds * (o.calls + o.warmup + o.conc * (per + o.warmup))) as u64;
    let c = o.conc;

    let mut title = format!(
        "mcp-warden HTTP benchmark  ({profile} build, {} round(s), medians)\n\
         tools/call round trips: concurrency 1: {} calls; concurrency {c}: {c} connections x {per} calls\n\
         (a session each, sequential); {} warm-up calls per connection",
        o.rounds, o.calls, o.warmup
    );
    if let Some(cfg) = &o.config {
        title += &format!("\nbase config: {}", cfg.display());
    }
    for (k, v) in &o.serve_env {
        title += &format!("\nserve env: {k}={v}");
    }
    let mut t = Table::new(&title, load_before, load_after);
    t.ratio("calls/s, concurrency 1", d1.calls_per_s, p1.calls_per_s);
    t.ratio(
        &format!("calls/s, concurrency {c}"),
        dn.calls_per_s,
        pn.calls_per_s,
    );
    t.added_head();
    for (label, d, p) in [("c1", &d1, &p1), (&*format!("c{c}"), &dn, &pn)] {
        for (q, dv, pv) in [
            ("p50", d.p50_us, p.p50_us),
            ("p90", d.p90_us, p.p90_us),
            ("p99", d.p99_us, p.p99_us),
        ] {
            t.added(&format!("latency {q} µs, {label}"), dv, pv);
        }
    }
    t.value("serve CPU µs/call, c1 (*)", None, p1.proxy_cpu_us);
    t.value(
        &format!("serve CPU µs/call, c{c} (*)"),
        None,
        pn.proxy_cpu_us,
    );
    t.value(
        "echo server CPU µs/call, c1",
        Some(d1.echo_cpu_us),
        p1.echo_cpu_us,
    );
    t.value("serve context switches/call, c1", None, p1.proxy_ctxsw);
    t.value(
        "serve peak RSS MiB (calls)",
        None,
        peak_rss_kib as f64 / MIB,
    );
    if let Some(s) = streams {
        t.value(
            "serve RSS MiB at rest (fresh)",
            None,
            s.rss_rest_kib as f64 / MIB,
        );
        t.text(
            &format!("serve RSS / peak MiB, {} SSE", s.n),
            &format!(
                "{:.1} / {:.1}",
                s.rss_kib as f64 / MIB,
                s.hwm_kib as f64 / MIB
            ),
        );
        t.value(
            "  KiB per idle stream",
            None,
            s.rss_kib.saturating_sub(s.rss_rest_kib) as f64 / s.n.max(1) as f64,
        );
        t.text(
            "  serve threads / fds",
            &format!("{} / {}", s.threads, s.fds),
        );
    }
    t.text(
        "audit records / bytes per call",
        &audit.per_call(proxied_calls),
    );
    t.end("(*) utime + stime of the serve process over the measured calls, / calls (the client\n    and the echo server run on the same machine and compete for its cores).\n");
    let checks = [
        Target::ratio_at_least("throughput, concurrency 1", ratio1, MIN_RATIO_C1),
        Target::ratio_at_least(
            &format!("throughput, concurrency {c}"),
            ration,
            MIN_RATIO_CN,
        ),
        Target::at_most(
            "added p50, concurrency 1",
            added_p50,
            MAX_ADDED_P50_US,
            "µs",
        ),
    ];
    t.targets(&checks);
    t.0 += &format!("  {REFERENCE}\n");
    print!("{}", t.0);

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
        "unix_time": unix_time(),
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
        "audit": audit.to_json(),
        "targets": Target::json(&checks),
        "rounds": {"direct": rounds(Mode::Direct), "proxied": rounds(Mode::Proxied)},
    });
    write_json(path, &summary)
}
