//! One span per JSON-RPC request, built from the audit lines (OpenTelemetry MCP semantic
//! conventions): opened by the request's record, ended by its answer's record (or at once when
//! the proxy answered it), with child spans for the proxy's decision and the upstream call.
//! Working from the audit lines keeps every transport's data path free of telemetry code: a
//! span is exactly what the audit trail says happened.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceState};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, SpanData, SpanEvents, SpanLinks};
use serde_json::{Map, Value};

use super::settings::Transport;

/// Requests waiting for their answer; the oldest is forgotten beyond this (its span is lost,
/// never the data path's memory).
const MAX_OPEN: usize = 4096;

/// (session, opened by the server, JSON-RPC id): the two directions number their own requests.
type Key = (String, bool, String);

struct Open {
    ctx: SpanContext,
    parent: Option<SpanId>,
    /// When the request reached the proxy (its record's time less the decision time).
    start: SystemTime,
    /// When the decision was taken and the request forwarded.
    decided: SystemTime,
    attrs: Vec<KeyValue>,
    name: String,
    method: String,
    by_server: bool,
    /// Children ended before the request (the approval wait).
    children: Vec<SpanData>,
}

/// A request's span ended: the spans to export and the duration for the histogram.
pub struct Ended {
    pub spans: Vec<SpanData>,
    pub seconds: f64,
    /// The proxy received the request from the client: `mcp.server.operation.duration`
    /// (else the server asked, and the client histogram applies).
    pub receiver: bool,
    pub attrs: Vec<KeyValue>,
}

pub struct Spans {
    open: HashMap<Key, Open>,
    order: VecDeque<Key>,
    ids: RandomIdGenerator,
    transport: Transport,
    scope: InstrumentationScope,
}

fn str_of<'a>(m: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    m.get(k).and_then(Value::as_str)
}

impl Spans {
    pub fn new(transport: Transport, scope: InstrumentationScope) -> Spans {
        Spans {
            open: HashMap::new(),
            order: VecDeque::new(),
            ids: RandomIdGenerator::default(),
            transport,
            scope,
        }
    }

    /// Feed one audit line. Returns the span context the line's log record belongs to, and
    /// the spans it ended.
    pub fn observe(
        &mut self,
        rec: &Map<String, Value>,
        ts: SystemTime,
    ) -> (Option<SpanContext>, Option<Ended>) {
        let (Some(id), Some(method)) = (str_of(rec, "id"), str_of(rec, "method")) else {
            return (None, None);
        };
        let session = str_of(rec, "session").unwrap_or_default();
        let from_client = str_of(rec, "direction") == Some("client_to_server");
        if str_of(rec, "direction") == Some("proxy") {
            return (None, None);
        }
        // An answer closes the request the other side opened (its record names the request's
        // method); anything else with an id and a method is a request.
        let answered: Key = (session.to_owned(), from_client, id.to_owned());
        if self.open.get(&answered).is_some_and(|o| o.method == method) {
            let open = self.open.remove(&answered).expect("just seen");
            self.order.retain(|k| k != &answered);
            let ctx = open.ctx.clone();
            return (Some(ctx), Some(self.end(open, rec, ts)));
        }
        let decision = str_of(rec, "decision").unwrap_or_default();
        // A held call's second record (`approval.granted` or refused): the wait becomes a
        // child span; a refusal ends the request, a grant sends it upstream from now.
        let held: Key = (session.to_owned(), false, id.to_owned());
        let resolves = from_client
            && decision != "hold"
            && str_of(rec, "event").is_some_and(|e| e.starts_with("approval."));
        if resolves && self.open.get(&held).is_some_and(|o| o.method == method) {
            let mut open = self.open.remove(&held).expect("just seen");
            let wait = self.child(&open.ctx, "mcp_warden.approval", open.decided, ts);
            open.children.push(wait);
            let ctx = open.ctx.clone();
            open.decided = ts;
            if matches!(decision, "deny" | "error") {
                self.order.retain(|k| k != &held);
                return (Some(ctx), Some(self.end(open, rec, ts)));
            }
            self.open.insert(held, open);
            return (Some(ctx), None);
        }
        let latency =
            Duration::from_micros(rec.get("latency_us").and_then(Value::as_u64).unwrap_or(0));
        let start = ts.checked_sub(latency).unwrap_or(ts);
        let remote = str_of(rec, "traceparent").and_then(super::traceparent::parse);
        let trace_id = remote.map_or_else(|| self.ids.new_trace_id(), |r| r.0);
        let flags = remote.map_or(TraceFlags::SAMPLED, |r| r.2);
        // The client's trace state travels with its trace (only beside its traceparent).
        let state = match remote {
            Some(_) => super::traceparent::trace_state(str_of(rec, "tracestate")),
            None => TraceState::default(),
        };
        let ctx = SpanContext::new(trace_id, self.ids.new_span_id(), flags, false, state);
        let tool = str_of(rec, "tool");
        let name = match tool {
            Some(t) => format!("{method} {t}"),
            None => method.to_owned(),
        };
        let mut attrs = vec![
            KeyValue::new("mcp.method.name", method.to_owned()),
            KeyValue::new("jsonrpc.request.id", id.to_owned()),
            KeyValue::new("network.transport", self.transport.label()),
        ];
        if !session.is_empty() {
            attrs.push(KeyValue::new("mcp.session.id", session.to_owned()));
        }
        if let Some(t) = tool {
            attrs.push(KeyValue::new("gen_ai.tool.name", t.to_owned()));
            attrs.push(KeyValue::new("gen_ai.operation.name", "execute_tool"));
        }
        if let Some(server) = str_of(rec, "server").filter(|s| !s.is_empty()) {
            attrs.push(KeyValue::new("mcp_warden.server", server.to_owned()));
        }
        if let Some(era) = str_of(rec, "era") {
            attrs.push(KeyValue::new("mcp_warden.era", era.to_owned()));
        }
        if let Some(v) = str_of(rec, "protocol_version") {
            attrs.push(KeyValue::new("mcp.protocol.version", v.to_owned()));
        }
        let open = Open {
            ctx: ctx.clone(),
            parent: remote.map(|r| r.1),
            start,
            decided: ts,
            attrs,
            name,
            method: method.to_owned(),
            by_server: !from_client,
            children: Vec::new(),
        };
        // Refused (or failed) by the proxy: the error it answered with ends the request here.
        if from_client && matches!(decision, "deny" | "error") {
            return (Some(ctx), Some(self.end(open, rec, ts)));
        }
        let key: Key = (session.to_owned(), !from_client, id.to_owned());
        if self.open.len() >= MAX_OPEN {
            if let Some(old) = self.order.pop_front() {
                self.open.remove(&old);
            }
        }
        if self.open.insert(key.clone(), open).is_none() {
            self.order.push_back(key);
        }
        (Some(ctx), None)
    }

    /// The request's span, a child for the proxy's decision and one for the upstream wait.
    fn end(&mut self, open: Open, rec: &Map<String, Value>, end: SystemTime) -> Ended {
        let mut attrs = open.attrs;
        let code = rec.get("code").and_then(Value::as_i64);
        let mut status = Status::Unset;
        if let Some(code) = code {
            attrs.push(KeyValue::new("error.type", code.to_string()));
            attrs.push(KeyValue::new("rpc.response.status_code", code.to_string()));
            status = Status::Error {
                description: Cow::Owned(str_of(rec, "reason").unwrap_or_default().to_owned()),
            };
        }
        let metric_attrs: Vec<KeyValue> = attrs
            .iter()
            .filter(|kv| {
                matches!(
                    kv.key.as_str(),
                    "mcp.method.name"
                        | "gen_ai.tool.name"
                        | "error.type"
                        | "network.transport"
                        | "gen_ai.operation.name"
                )
            })
            .cloned()
            .collect();
        for key in ["decision", "rule", "audit_id"] {
            if let Some(v) = str_of(rec, key) {
                attrs.push(KeyValue::new(format!("mcp_warden.{key}"), v.to_owned()));
            }
        }
        let kind = if open.by_server {
            SpanKind::Client
        } else {
            SpanKind::Server
        };
        let mut spans = Vec::with_capacity(4);
        let decided = open.decided.min(end);
        let checked = open.children.first().map_or(decided, |c| c.start_time);
        spans.push(self.child(&open.ctx, "mcp_warden.decision", open.start, checked));
        spans.extend(open.children);
        // The answer's own record time is the proxy's work on it; the rest is the upstream.
        let answer_us = rec.get("latency_us").and_then(Value::as_u64).unwrap_or(0);
        let answered = end
            .checked_sub(Duration::from_micros(answer_us))
            .unwrap_or(end);
        if answered > decided {
            spans.push(self.child(&open.ctx, "mcp_warden.upstream", decided, answered));
        }
        let seconds = end
            .duration_since(open.start)
            .unwrap_or_default()
            .as_secs_f64();
        spans.push(SpanData {
            span_context: open.ctx,
            parent_span_id: open.parent.unwrap_or(SpanId::INVALID),
            parent_span_is_remote: open.parent.is_some(),
            span_kind: kind,
            name: Cow::Owned(open.name),
            start_time: open.start,
            end_time: end.max(open.start),
            attributes: attrs,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status,
            instrumentation_scope: self.scope.clone(),
        });
        Ended {
            spans,
            seconds,
            receiver: !open.by_server,
            attrs: metric_attrs,
        }
    }

    fn child(
        &self,
        parent: &SpanContext,
        name: &'static str,
        start: SystemTime,
        end: SystemTime,
    ) -> SpanData {
        SpanData {
            span_context: SpanContext::new(
                parent.trace_id(),
                self.ids.new_span_id(),
                parent.trace_flags(),
                false,
                parent.trace_state().clone(),
            ),
            parent_span_id: parent.span_id(),
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: Cow::Borrowed(name),
            start_time: start,
            end_time: end.max(start),
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: self.scope.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spans() -> Spans {
        Spans::new(Transport::Pipe, InstrumentationScope::builder("t").build())
    }

    fn rec(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn at(ms: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_000 + ms)
    }

    #[test]
    fn a_request_and_its_answer_make_one_span_with_children() {
        let mut s = spans();
        let req = rec(
            json!({"session":"s","direction":"client_to_server","method":"tools/call",
            "id":"1","tool":"read","decision":"allow","latency_us":2000,
            "traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}),
        );
        let (ctx, ended) = s.observe(&req, at(10));
        assert!(ended.is_none());
        let ctx = ctx.unwrap();
        // A server request with the same id is another request, not the answer.
        let sampling = rec(json!({"session":"s","direction":"server_to_client",
            "method":"sampling/createMessage","id":"1","decision":"allow"}));
        assert!(s.observe(&sampling, at(20)).1.is_none());
        let answer = rec(
            json!({"session":"s","direction":"server_to_client","method":"tools/call",
            "id":"1","decision":"allow","latency_us":1000}),
        );
        // The client answers the server's request first: a CLIENT span, client histogram.
        let client_answer = rec(json!({"session":"s","direction":"client_to_server",
            "method":"sampling/createMessage","id":"1","decision":"allow"}));
        let e = s.observe(&client_answer, at(30)).1.unwrap();
        assert!(!e.receiver);
        assert_eq!(e.spans.last().unwrap().span_kind, SpanKind::Client);
        let (answer_ctx, e) = s.observe(&answer, at(110));
        let e = e.unwrap();
        assert_eq!(answer_ctx.unwrap().span_id(), ctx.span_id());
        assert!(e.receiver);
        let main = e.spans.last().unwrap();
        assert_eq!(main.name, "tools/call read");
        assert_eq!(main.span_kind, SpanKind::Server);
        assert_eq!(main.parent_span_id.to_string(), "00f067aa0ba902b7");
        assert_eq!(main.start_time, at(8));
        assert_eq!(main.end_time, at(110));
        assert!((e.seconds - 0.102).abs() < 1e-9);
        let names: Vec<&str> = e.spans.iter().map(|s| s.name.as_ref()).collect();
        assert_eq!(
            names,
            [
                "mcp_warden.decision",
                "mcp_warden.upstream",
                "tools/call read"
            ]
        );
        assert!(e.spans[..2]
            .iter()
            .all(|c| c.parent_span_id == main.span_context.span_id()));
    }

    #[test]
    fn a_refused_request_ends_at_once_with_its_code() {
        let mut s = spans();
        let req = rec(
            json!({"session":"s","direction":"client_to_server","method":"tools/call",
            "id":2,"tool":"rm","decision":"deny","code":-32011,"latency_us":50}),
        );
        // A numeric id in the line is not a string: no span (ids are written as strings).
        assert!(s.observe(&req, at(0)).1.is_none());
        let req = rec(
            json!({"session":"s","direction":"client_to_server","method":"tools/call",
            "id":"2","tool":"rm","decision":"deny","code":-32011,"latency_us":50}),
        );
        let e = s.observe(&req, at(0)).1.unwrap();
        let main = e.spans.last().unwrap();
        assert!(main.parent_span_id == SpanId::INVALID);
        assert!(main
            .attributes
            .iter()
            .any(|kv| kv.key.as_str() == "error.type" && kv.value.as_str() == "-32011"));
        assert!(matches!(main.status, Status::Error { .. }));
        assert!(s.open.is_empty());
    }

    #[test]
    fn an_approval_wait_is_a_child_of_the_call() {
        let mut s = spans();
        let held = rec(
            json!({"session":"s","direction":"client_to_server","method":"tools/call",
            "id":"9","tool":"rm","decision":"hold","event":"approval.requested","latency_us":1000}),
        );
        assert!(s.observe(&held, at(1)).1.is_none());
        let granted = rec(
            json!({"session":"s","direction":"client_to_server","method":"tools/call",
            "id":"9","tool":"rm","decision":"allow","event":"approval.granted"}),
        );
        assert!(s.observe(&granted, at(500)).1.is_none());
        let answer = rec(
            json!({"session":"s","direction":"server_to_client","method":"tools/call",
            "id":"9","decision":"allow"}),
        );
        let e = s.observe(&answer, at(600)).1.unwrap();
        let names: Vec<&str> = e.spans.iter().map(|s| s.name.as_ref()).collect();
        assert_eq!(
            names,
            [
                "mcp_warden.decision",
                "mcp_warden.approval",
                "mcp_warden.upstream",
                "tools/call rm"
            ]
        );
        assert_eq!(
            (e.spans[1].start_time, e.spans[1].end_time),
            (at(1), at(500))
        );
        assert_eq!(
            (e.spans[2].start_time, e.spans[2].end_time),
            (at(500), at(600))
        );
        // Denied after the wait: the span ends with the refusal.
        let held = rec(
            json!({"session":"s","direction":"client_to_server","method":"tools/call",
            "id":"10","tool":"rm","decision":"hold","event":"approval.requested"}),
        );
        s.observe(&held, at(700));
        let denied = rec(
            json!({"session":"s","direction":"client_to_server","method":"tools/call",
            "id":"10","tool":"rm","decision":"deny","event":"approval.not_granted","code":-32014}),
        );
        let e = s.observe(&denied, at(900)).1.unwrap();
        assert_eq!(e.spans.len(), 3);
        assert!(s.open.is_empty() && s.order.is_empty());
    }

    #[test]
    fn open_requests_are_bounded() {
        let mut s = spans();
        for i in 0..(MAX_OPEN + 10) {
            let req = rec(json!({"session":"s","direction":"client_to_server",
                "method":"ping","id":i.to_string(),"decision":"allow"}));
            s.observe(&req, at(0));
        }
        assert_eq!(s.open.len(), MAX_OPEN);
        assert_eq!(s.order.len(), MAX_OPEN);
    }
}
