//! OTLP export through the real binary (issue 13): a receiver in this process speaks OTLP/HTTP
//! and decodes what arrives with the official protobuf definitions (`opentelemetry-proto`).

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::{json, Value};
use support::serve::ServeProc;
use support::{Options, Wrapped};

/// Bodies received, by path (`/v1/logs`, `/v1/traces`, `/v1/metrics`), in arrival order.
type Received = Arc<Mutex<Vec<(String, Bytes)>>>;

/// An OTLP/HTTP receiver on a port of its own, answering 200 to every export.
fn receiver() -> (SocketAddr, Received, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let got: Received = Arc::default();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let sink = got.clone();
    rt.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let sink = sink.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let sink = sink.clone();
                    async move {
                        let path = req.uri().path().to_owned();
                        assert_eq!(
                            req.headers()["content-type"],
                            "application/x-protobuf",
                            "OTLP/HTTP protobuf"
                        );
                        let body = req.into_body().collect().await?.to_bytes();
                        sink.lock().unwrap().push((path, body));
                        Ok::<_, hyper::Error>(
                            hyper::Response::builder()
                                .header("content-type", "application/x-protobuf")
                                .body(Full::new(Bytes::new()))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, got, rt)
}

fn bodies(got: &Received, path: &str) -> Vec<Bytes> {
    got.lock()
        .unwrap()
        .iter()
        .filter(|(p, _)| p == path)
        .map(|(_, b)| b.clone())
        .collect()
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v: &AnyValue| v.value.as_ref())
}

fn attr_str(attrs: &[KeyValue], key: &str) -> Option<String> {
    match attr(attrs, key)? {
        any_value::Value::StringValue(s) => Some(s.clone()),
        any_value::Value::IntValue(i) => Some(i.to_string()),
        other => Some(format!("{other:?}")),
    }
}

fn config(endpoint: &str, extra: &str) -> String {
    format!("[telemetry]\notlp_endpoint = \"{endpoint}\"\n{extra}")
}

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

/// `wrap` exporting to a collector at `addr` with the `[telemetry]` lines `extra`, initialized.
fn wrap_exporting_to(addr: SocketAddr, extra: &str) -> Wrapped {
    let mut w = Wrapped::start(Options {
        config: Some(config(&format!("http://{addr}"), extra)),
        ..Options::default()
    });
    w.initialize();
    w
}

#[test]
fn otlp_logs_match_the_audit_file_and_spans_join_the_client_trace() {
    let (addr, got, _rt) = receiver();
    let mut w = Wrapped::start(Options {
        // An interval longer than the test: everything leaves in the exit's final drain.
        config: Some(config(
            &format!("http://{addr}"),
            "export_interval_ms = 600000\n",
        )),
        extra_env: vec![("OTEL_SERVICE_NAME".into(), "warden-under-test".into())],
        ..Options::default()
    });
    w.initialize();
    let traceparent = format!("00-{TRACE_ID}-{PARENT_ID}-01");
    w.send(&json!({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"text":"secret-ish"},"_meta":{"traceparent":traceparent}}}));
    assert_eq!(w.recv()["id"], 7);
    // Refused by the proxy (never listed): the span ends with the error it answered.
    w.send(&json!({"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"nope","arguments":{}}}));
    let refused = w.recv();
    let code = refused["error"]["code"].as_i64().expect("refused");
    w.ping("p");
    assert_eq!(w.finish(), 0);

    // Logs: one OTLP record per audit line, same order, same fields.
    let audit: Vec<Value> = std::fs::read_to_string(w.dir.path().join("audit.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut logs = Vec::new();
    let mut service = None;
    for b in bodies(&got, "/v1/logs") {
        let req = ExportLogsServiceRequest::decode(b).expect("OTLP logs protobuf");
        for rl in req.resource_logs {
            service = attr_str(&rl.resource.as_ref().unwrap().attributes, "service.name");
            for sl in rl.scope_logs {
                logs.extend(sl.log_records);
            }
        }
    }
    assert_eq!(service.as_deref(), Some("warden-under-test"));
    assert_eq!(logs.len(), audit.len(), "one log record per audit line");
    for (line, log) in audit.iter().zip(&logs) {
        for field in ["seq", "event", "audit_id", "decision", "direction"] {
            let want = match &line[field] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            assert_eq!(
                attr_str(&log.attributes, &format!("audit.{field}")).as_deref(),
                Some(want.as_str()),
                "{field} of {line}"
            );
        }
        for kv in &log.attributes {
            let text = format!("{:?}", kv.value);
            assert!(
                !text.contains("secret-ish"),
                "never argument values: {text}"
            );
        }
    }
    assert!(
        audit.iter().any(|l| l["event"] == "checkpoint"),
        "the signed tail too"
    );
    let call_log = logs
        .iter()
        .zip(&audit)
        .find(|(_, l)| l["id"] == "7" && l["direction"] == "client_to_server")
        .expect("the call's record")
        .0;
    assert_eq!(
        hex(&call_log.trace_id),
        TRACE_ID,
        "log joins the span's trace"
    );
    assert_eq!(call_log.severity_text, "INFO");
    assert!(attr_str(&call_log.attributes, "audit.args_sha256").is_some());

    // Spans: MCP conventions, the call a child of the client's span.
    let mut spans: Vec<Span> = Vec::new();
    for b in bodies(&got, "/v1/traces") {
        let req = ExportTraceServiceRequest::decode(b).expect("OTLP traces protobuf");
        for rs in req.resource_spans {
            for ss in rs.scope_spans {
                spans.extend(ss.spans);
            }
        }
    }
    let call = spans
        .iter()
        .find(|s| s.name == "tools/call echo")
        .unwrap_or_else(|| panic!("span tools/call echo in {:?}", names(&spans)));
    assert_eq!(hex(&call.trace_id), TRACE_ID);
    assert_eq!(hex(&call.parent_span_id), PARENT_ID);
    assert_eq!(call.kind, 2, "SPAN_KIND_SERVER");
    let a = &call.attributes;
    assert_eq!(
        attr_str(a, "mcp.method.name").as_deref(),
        Some("tools/call")
    );
    assert_eq!(attr_str(a, "gen_ai.tool.name").as_deref(), Some("echo"));
    assert_eq!(
        attr_str(a, "gen_ai.operation.name").as_deref(),
        Some("execute_tool")
    );
    assert_eq!(attr_str(a, "jsonrpc.request.id").as_deref(), Some("7"));
    assert_eq!(attr_str(a, "network.transport").as_deref(), Some("pipe"));
    assert!(attr_str(a, "mcp.session.id").is_some());
    assert_eq!(
        attr_str(a, "mcp.protocol.version").as_deref(),
        Some("2025-11-25"),
        "the negotiated version"
    );
    assert!(attr_str(a, "error.type").is_none());
    assert!(call.end_time_unix_nano >= call.start_time_unix_nano);
    let children: Vec<&str> = spans
        .iter()
        .filter(|s| s.parent_span_id == call.span_id)
        .map(|s| s.name.as_str())
        .collect();
    assert!(children.contains(&"mcp_warden.decision"), "{children:?}");
    let denied = spans
        .iter()
        .find(|s| s.name == "tools/call nope")
        .expect("the refused call's span");
    assert_eq!(
        attr_str(&denied.attributes, "error.type"),
        Some(code.to_string())
    );
    assert!(
        denied.parent_span_id.is_empty(),
        "no traceparent: a root span"
    );
    assert!(spans.iter().any(|s| s.name == "initialize"));
    assert!(spans.iter().any(|s| s.name == "ping"));

    // Metrics: the message counter and the conventions' duration histogram.
    let mut metrics = HashMap::new();
    for b in bodies(&got, "/v1/metrics") {
        let req = ExportMetricsServiceRequest::decode(b).expect("OTLP metrics protobuf");
        for rm in req.resource_metrics {
            for sm in rm.scope_metrics {
                for m in sm.metrics {
                    metrics.insert(m.name.clone(), m);
                }
            }
        }
    }
    for name in [
        "mcp_warden.messages",
        "mcp_warden.decision.duration",
        "mcp.server.operation.duration",
    ] {
        assert!(metrics.contains_key(name), "{name} in {:?}", metrics.keys());
    }
    assert_eq!(metrics["mcp.server.operation.duration"].unit, "s");
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn names(spans: &[Span]) -> Vec<&str> {
    spans.iter().map(|s| s.name.as_str()).collect()
}

#[test]
fn a_collector_that_never_answers_slows_nothing_and_drops_are_counted() {
    // Accepts connections and never reads or answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming() {
            held.push(s);
        }
    });
    let mut w = wrap_exporting_to(
        addr,
        "export_interval_ms = 200\ntimeout_ms = 3000\nqueue = 16\n",
    );
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    for i in 0..300 {
        let t = Instant::now();
        w.ping(&format!("p{i}"));
        slowest = slowest.max(t.elapsed());
    }
    let total = started.elapsed();
    eprintln!("300 pings through wrap with a stalled collector: {total:?}, slowest {slowest:?}");
    assert!(
        slowest < Duration::from_millis(500),
        "slowest ping {slowest:?}"
    );
    assert!(total < Duration::from_secs(10), "{total:?}");
    // One audit record per interval says how many were not exported.
    let deadline = Instant::now() + Duration::from_secs(10);
    let dropped = loop {
        let found: Vec<Value> = w
            .audit()
            .into_iter()
            .filter(|r| r["event"] == "telemetry.dropped")
            .collect();
        if !found.is_empty() || Instant::now() > deadline {
            break found;
        }
    };
    assert!(!dropped.is_empty(), "a telemetry.dropped record");
    let n = dropped[0]["detail"]["queue_full"].as_u64().unwrap();
    assert!(n > 0, "{}", dropped[0]);
    assert_eq!(dropped[0]["rule"], "telemetry.dropped");
    // The exit waits for the collector at most the bounded shutdown.
    let t = Instant::now();
    assert_eq!(w.finish(), 0);
    assert!(
        t.elapsed() < Duration::from_secs(8),
        "exit took {:?}",
        t.elapsed()
    );
}

#[test]
fn a_collector_that_is_down_slows_nothing_and_drops_are_counted() {
    // A port nothing listens on: every export is refused at once.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut w = wrap_exporting_to(addr, "export_interval_ms = 100\ntimeout_ms = 1000\n");
    let mut slowest = Duration::ZERO;
    for i in 0..300 {
        let t = Instant::now();
        w.ping(&format!("p{i}"));
        slowest = slowest.max(t.elapsed());
        if i % 100 == 0 {
            // Spread over more than one export interval, so some exports are tried.
            std::thread::sleep(Duration::from_millis(150));
        }
    }
    assert!(
        slowest < Duration::from_millis(500),
        "slowest ping {slowest:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let failed: u64 = loop {
        let n = w
            .audit()
            .into_iter()
            .filter(|r| r["event"] == "telemetry.dropped")
            .map(|r| r["detail"]["export_failed"].as_u64().unwrap())
            .sum();
        if n >= 300 || Instant::now() > deadline {
            break n;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // Every line written while the collector was down is accounted for: exported lines
    // are none, so the failures are at least the pings' request records.
    assert!(failed >= 300, "export_failed {failed}");
    assert_eq!(w.finish(), 0);
}

/// One HTTP/1.1 POST on a fresh connection; returns (head, body).
fn post(addr: &str, session: Option<&str>, body: &Value) -> (String, String) {
    post_with(addr, session, body, &[])
}

fn post_with(
    addr: &str,
    session: Option<&str>,
    body: &Value,
    headers: &[(&str, &str)],
) -> (String, String) {
    use std::io::{Read, Write};
    let body = body.to_string();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2025-06-18\r\n\
         Connection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(id) = session {
        req.push_str(&format!("Mcp-Session-Id: {id}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let (head, rest) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    (head.to_owned(), rest.to_owned())
}

/// `serve` in front of the echo server, exporting to the receiver at `addr`; returns the
/// process, its listen address and a session past `tools/list`.
fn serve_echo(addr: SocketAddr, dir: &std::path::Path) -> (ServeProc, String, String) {
    let cfg = dir.join("proxy.toml");
    let echo = support::echo_server_bin();
    std::fs::write(
        &cfg,
        format!(
            "{}[admin]\nlisten = \"127.0.0.1:0\"\n[[servers]]\nname = \"echo\"\ncommand = [{:?}]\n",
            config(&format!("http://{addr}"), "export_interval_ms = 200\n"),
            echo.display().to_string()
        ),
    )
    .unwrap();
    let serve = ServeProc::start(&cfg, &dir.join("state"), None, &[]);
    let listen = serve.addr.to_string();
    let (head, _) = post(
        &listen,
        None,
        &json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}),
    );
    let session = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("mcp-session-id")
                .then(|| v.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("a session id in {head}"));
    post(
        &listen,
        Some(&session),
        &json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
    );
    post(
        &listen,
        Some(&session),
        &json!({"jsonrpc":"2.0","id":2,"method":"tools/list"}),
    );
    (serve, listen, session)
}

/// Every span the receiver got.
fn exported_spans(got: &Received) -> Vec<Span> {
    let mut spans: Vec<Span> = Vec::new();
    for b in bodies(got, "/v1/traces") {
        let req = ExportTraceServiceRequest::decode(b).unwrap();
        for rs in req.resource_spans {
            for ss in rs.scope_spans {
                spans.extend(ss.spans);
            }
        }
    }
    spans
}

#[test]
fn serve_spans_name_tcp_and_join_the_client_trace() {
    let (addr, got, _rt) = receiver();
    let dir = tempfile::tempdir().unwrap();
    let (serve, listen, session) = serve_echo(addr, dir.path());
    let traceparent = format!("00-{TRACE_ID}-{PARENT_ID}-01");
    let (_, body) = post(
        &listen,
        Some(&session),
        &json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"},"_meta":{"traceparent":traceparent}}}),
    );
    assert!(body.contains("\"hi\""), "{body}");
    assert!(serve.stop().success());
    let spans = exported_spans(&got);
    let call = spans
        .iter()
        .find(|s| s.name == "tools/call echo")
        .unwrap_or_else(|| panic!("span tools/call echo in {:?}", names(&spans)));
    assert_eq!(hex(&call.trace_id), TRACE_ID);
    assert_eq!(hex(&call.parent_span_id), PARENT_ID);
    assert_eq!(
        attr_str(&call.attributes, "network.transport").as_deref(),
        Some("tcp")
    );
    // The proxy's own session id (the audit's), never the `Mcp-Session-Id` the client holds:
    // that one is a bearer credential for the session and must not leave for a collector.
    let traced = attr_str(&call.attributes, "mcp.session.id").expect("mcp.session.id");
    assert_ne!(traced, session);
}

/// Issue 13: a `serve` client that propagates its trace context in HTTP headers (as OTel HTTP
/// instrumentation does) rather than in `params._meta`: the proxy's span and its children join
/// that trace, parent and trace state included.
#[test]
fn serve_reads_trace_context_from_http_headers() {
    let (addr, got, _rt) = receiver();
    let dir = tempfile::tempdir().unwrap();
    let (serve, listen, session) = serve_echo(addr, dir.path());
    let traceparent = format!("00-{TRACE_ID}-{PARENT_ID}-01");
    let (_, body) = post_with(
        &listen,
        Some(&session),
        &json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}),
        &[
            ("traceparent", &traceparent),
            ("tracestate", "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"),
        ],
    );
    assert!(body.contains("\"hi\""), "{body}");
    assert!(serve.stop().success());
    let spans = exported_spans(&got);
    let call = spans
        .iter()
        .find(|s| s.name == "tools/call echo")
        .unwrap_or_else(|| panic!("span tools/call echo in {:?}", names(&spans)));
    assert_eq!(hex(&call.trace_id), TRACE_ID);
    assert_eq!(hex(&call.parent_span_id), PARENT_ID);
    assert_eq!(call.trace_state, "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
    // The children (decision, upstream) are in the same trace, under the call's span.
    let children: Vec<&Span> = spans
        .iter()
        .filter(|s| s.parent_span_id == call.span_id)
        .collect();
    assert!(!children.is_empty(), "{:?}", names(&spans));
    for c in children {
        assert_eq!(hex(&c.trace_id), TRACE_ID);
        assert_eq!(c.trace_state, call.trace_state);
    }
}
