//! Server → client. In order:
//!
//! 1. Framing and strict parsing: a server that prints logs or garbage on stdout must not corrupt
//!    the client's stream, so anything that is not one valid JSON-RPC message is dropped (and
//!    audited) rather than forwarded. A batch (2025-03-26 only) is judged element by element
//!    (`server_batch.rs`), each element through the steps below.
//! 2. Answers: routed by id to whoever asked. Answers to the proxy's own requests are consumed;
//!    answers to nothing pending are dropped — the client never sees an answer it did not ask
//!    for, and never two for one request.
//! 3. Server requests (sampling, elicitation, roots, ping): remembered so the client's answer can
//!    be matched; a reused id is refused back to the server.
//! 4. Later checks (pin drift on listings, result redaction) plug in here.

use std::sync::MutexGuard;
use std::time::Instant;

use super::client::allow;
use super::content_step::ContentVerdict;
use super::flood::{self, Flood};
use super::params::{self, VersionPeek};
use super::replies;
use super::server_requests;
use super::Routing;
use super::{deny, Outcome, Pipeline, Verdict};
use crate::audit::{Decision, Direction, Record};
use crate::codec::{self, Decoded, Envelope, Id, Kind};
use crate::errors::{Rejection, Source, INVALID_REQUEST};
use crate::session::{Era, Pending, Session, MAX_PENDING};
use crate::trust::Observation;

/// Messages up to this size may be parsed and judged on an async worker; larger ones go to the
/// blocking pool (strict parsing and scans are linear, but a few MiB still take milliseconds the
/// workers that accept connections must not spend: one large hostile body would stall everyone).
pub const INLINE_MAX: usize = 64 * 1024;

impl Pipeline {
    /// Decide what happens to one line the server printed.
    pub fn from_server(&self, line: &[u8]) -> Outcome {
        let session = self.session();
        self.server_outcome(session, codec::decode(line, &self.limits), line)
    }

    /// `from_server`, when judging `line` cannot block, so an async transport may run it on its
    /// worker and spare a hop to the blocking pool; `None` (nothing done) when it may: an
    /// answer to a listing (the pin store: flock, fsync, rename), to the proxy's own request
    /// (its listing), a server request in `[cluster]` mode (its rate counted in Redis), a batch,
    /// a line over [`INLINE_MAX`], or an audit trail synced at every record.
    /// Everything else a server sends is judged in memory: scans, ids, flood bound, trust
    /// counters, a buffered audit write; sampling is run later (`Verdict::Sample`).
    pub fn from_server_inline(&self, line: &[u8]) -> Option<Outcome> {
        if line.len() > INLINE_MAX || self.audit.syncs_every_record() {
            return None;
        }
        let session = self.session();
        let decoded = codec::decode(line, &self.limits);
        let may_block = match &decoded {
            Ok(Decoded::Single(env)) => {
                answers_a_listing(&session, env)
                    || (env.kind == Kind::Request && self.guards.limiter.is_shared())
            }
            // Its elements may be anything (a listing's answer among them).
            Ok(Decoded::Batch(items)) => !items.is_empty(),
            Err(_) => false,
        };
        if may_block {
            return None;
        }
        Some(self.server_outcome(session, decoded, line))
    }

    fn server_outcome<'a>(
        &self,
        mut session: MutexGuard<'_, Session>,
        decoded: Result<Decoded<'a>, Rejection>,
        line: &'a [u8],
    ) -> Outcome {
        let mut record = self.record(&session, Direction::ServerToClient, line.len());
        let env = match decoded {
            Ok(Decoded::Single(env)) => env,
            Ok(Decoded::Batch(items)) if session.batches_allowed() && !items.is_empty() => {
                // The one revision that has batches: each element is judged as if it came on
                // its own (ids, scans, pins, server-request rules), never waved through whole.
                let (verdict, routing) = self.server_batch(&mut session, &items, line, &mut record);
                return Outcome::new(verdict, record).routed(routing);
            }
            Ok(Decoded::Batch(_)) => {
                let r = Rejection::new(
                    INVALID_REQUEST,
                    "rpc.batch_refused",
                    "batch",
                    "the server sent a JSON-RPC batch outside 2025-03-26; dropped",
                )
                .from(Source::Upstream);
                deny(&mut record, &r);
                return Outcome::new(Verdict::Drop, record);
            }
            Err(mut r) => {
                r.source = Source::Upstream;
                r.event = if r.event.starts_with("parse.") {
                    "upstream.non_jsonrpc_output"
                } else {
                    r.event
                };
                r.reason = format!(
                    "server wrote something that is not a JSON-RPC message on stdout ({}); dropped",
                    r.reason
                );
                deny(&mut record, &r);
                return Outcome::new(Verdict::Drop, record);
            }
        };
        let (verdict, routing) = self.server_single(&mut session, &env, line, &mut record);
        Outcome::new(verdict, record).routed(routing)
    }

    /// One server message (alone, or an element of a batch): its verdict and routing.
    pub(super) fn server_single(
        &self,
        session: &mut Session,
        env: &Envelope,
        line: &[u8],
        record: &mut Record,
    ) -> (Verdict, Routing) {
        record.method = env.method.as_deref().map(str::to_owned);
        record.id = env.id.as_ref().map(Id::to_string);
        let held = session.flood.roll(Instant::now());
        self.release_held(session, held);
        // Sampling the proxy answers (backend) or refuses (deny) never reaches the client.
        if env.kind == Kind::Request {
            if let Some(verdict) = self.route_sampling(env, record) {
                return (verdict, Routing::Session);
            }
        }
        if env.kind == Kind::Notification
            && env.method() == "notifications/cancelled"
            && self.cancel_sampling(env.params)
        {
            record.decision = Decision::Allow;
            record.event = "inference.cancel_requested".into();
            record.reason =
                Some("cancels a sampling request at the backend; the client never saw it".into());
            return (Verdict::Drop, Routing::Session);
        }
        let mut routing = Routing::Session;
        let verdict = match env.kind {
            Kind::Response | Kind::ErrorResponse => {
                // Progress held back by the flood bound goes out before the answer it leads to.
                if session.flood.holding() {
                    let held = session.flood.end_window();
                    self.release_held(session, held);
                }
                self.server_answer(session, env, line, record, &mut routing)
            }
            Kind::Notification if flood::bounded(env.method()) => {
                match session.flood.admit(env.method(), env.params, line) {
                    Flood::Pass => allow(line, record),
                    Flood::Coalesced | Flood::Dropped => {
                        record.event = flood::SUPPRESSED.into();
                        record.decision = Decision::Deny;
                        Verdict::Drop
                    }
                }
            }
            Kind::Request | Kind::Notification => match self.check_server_request(session, env) {
                Ok(()) => self.server_message(session, env, line, record),
                Err(r) => {
                    deny(record, &r);
                    match env.kind {
                        Kind::Request => {
                            Verdict::Answer(r.to_response(env.id.as_ref(), &record.audit_id))
                        }
                        _ => Verdict::Drop,
                    }
                }
            },
        };
        if env.kind == Kind::Notification {
            routing = replies::about(session, env);
        }
        (verdict, routing)
    }

    /// A server request or unbounded notification that passed `check_server_request`.
    fn server_message(
        &self,
        session: &mut Session,
        env: &Envelope,
        line: &[u8],
        record: &mut Record,
    ) -> Verdict {
        match env.kind {
            Kind::Request if env.method() == "elicitation/create" && env.id.is_some() => {
                match self.check_elicitation(env.params.map(|p| p.get()), record) {
                    // Declined on the user's behalf: the client never sees it.
                    Some(result) => {
                        let id = env
                            .id
                            .as_ref()
                            .map_or_else(|| "null".to_owned(), Id::to_json);
                        Verdict::Answer(
                            format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{result}}}"#)
                                .into_bytes(),
                        )
                    }
                    None => match server_request(session, env) {
                        Ok(()) => allow(line, record),
                        Err(r) => {
                            let answer = r.to_response(env.id.as_ref(), &record.audit_id);
                            deny(record, &r);
                            Verdict::Answer(answer)
                        }
                    },
                }
            }
            Kind::Request => match server_request(session, env) {
                Ok(()) => allow(line, record),
                Err(r) => {
                    let answer = r.to_response(env.id.as_ref(), &record.audit_id);
                    deny(record, &r);
                    Verdict::Answer(answer)
                }
            },
            _ => allow(line, record),
        }
    }

    /// The answer to the proxy's own listing (a call came before any listing): pinned and
    /// checked like any listing, never forwarded; the next page is asked for, if any.
    fn own_listing_answer(
        &self,
        s: &mut Session,
        pending: &Pending,
        env: &Envelope,
        line: &[u8],
        record: &mut Record,
    ) -> Verdict {
        record.method = Some(pending.method.clone());
        if env.result.is_none() {
            record.reason = Some("the server refused the proxy's own tools/list".into());
            self.prefetch_failed();
            return Verdict::Drop;
        }
        let _ = self.observe_listing(s, pending, env, line, record);
        if record.event == "proxy.response_consumed" {
            record.event = "proxy.listing_prefetched".into();
        }
        let result: Option<serde_json::Value> =
            env.result.and_then(|r| serde_json::from_str(r.get()).ok());
        match self.prefetch_page_done(s, result.as_ref()) {
            Some(next) => Verdict::Answer(next),
            None => Verdict::Drop,
        }
    }

    fn server_answer(
        &self,
        s: &mut Session,
        env: &Envelope,
        line: &[u8],
        record: &mut Record,
        routing: &mut Routing,
    ) -> Verdict {
        let Some(id) = env.id.as_ref() else {
            let r = Rejection::new(
                INVALID_REQUEST,
                "rpc.unsolicited_response",
                "unsolicited_response",
                "the server sent an error with id null; dropped",
            )
            .from(Source::Upstream);
            deny(record, &r);
            return Verdict::Drop;
        };
        if let Some(p) = s.proxy_pending.remove(id) {
            record.direction = Direction::Proxy;
            record.decision = Decision::Allow;
            record.event = "proxy.response_consumed".into();
            if p.method == "tools/list" {
                return self.own_listing_answer(s, &p, env, line, record);
            }
            record.method = Some(p.method);
            return Verdict::Drop;
        }
        let Some(p) = s.client_pending.remove(id) else {
            let r = Rejection::new(
                INVALID_REQUEST,
                "rpc.unsolicited_response",
                "unsolicited_response",
                format!(
                    "the server answered id {id}, which no client request is waiting for; dropped"
                ),
            )
            .from(Source::Upstream)
            .alert();
            deny(record, &r);
            return Verdict::Drop;
        };
        *routing = replies::answers(s, id, &p);
        record.method = Some(p.method.clone());
        record.tool = p.tool.clone();
        if p.method == "initialize" && env.kind == Kind::Response {
            let peek: VersionPeek = params::parse(env.result).unwrap_or_default();
            if let Some(v) = peek
                .protocol_version
                .or_else(|| s.requested_version.take().map(Into::into))
            {
                s.era = Era::Legacy(v.into_owned());
                record.era = s.era.label();
            }
        }
        self.observe_outcome(&p, env);
        if env.kind == Kind::Response && contains(line, b"\"inputRequests\"") {
            // Sampling input requests the backend answers: the proxy retries the call itself.
            if let Some(v) = self.fulfil_input_requests(s, id, &p, env, record) {
                return v;
            }
            if let Some(r) =
                server_requests::undeclared_input_request(s.client_caps.as_ref(), env.result)
            {
                let answer = r.to_response(Some(id), &record.audit_id);
                deny(record, &r);
                return Verdict::Rewrite(answer);
            }
        }
        if env.kind == Kind::Response {
            // Content checks cover what the model reads as data (results, resources, prompts).
            // Listings are the pins' job: their scanner holds a poisoned definition back on its
            // own instead of replacing the whole listing, and drift is judged on the real bytes.
            if carries_content(&p.method) {
                if let ContentVerdict::Rewrite(bytes) = self.check_result(s, line, record) {
                    return Verdict::Rewrite(bytes);
                }
            }
            if let Some(bytes) = self.observe_listing(s, &p, env, line, record) {
                let bytes = codec::escape_line_separators(&bytes).unwrap_or(bytes);
                return Verdict::Rewrite(bytes);
            }
        }
        allow(line, record)
    }

    /// Feed the trust score with what this answer says about the server.
    fn observe_outcome(&self, p: &Pending, env: &Envelope) {
        let Some(trust) = &self.guards.trust else {
            return;
        };
        let ok = env.kind == Kind::Response;
        match p.method.as_str() {
            "initialize" | "server/discover" => trust.record(Observation::Handshake { ok }),
            "tools/call" if ok && !is_error_result(env) => trust.record(Observation::CallOk),
            "tools/call" => trust.record(Observation::CallError),
            _ => {}
        }
    }
}

/// An answer to a listing, the client's or the proxy's own: judging it updates the pin store.
fn answers_a_listing(s: &Session, env: &Envelope) -> bool {
    if !matches!(env.kind, Kind::Response | Kind::ErrorResponse) {
        return false;
    }
    env.id.as_ref().is_some_and(|id| {
        s.proxy_pending.contains_key(id)
            || s.client_pending
                .get(id)
                .is_some_and(|p| super::pins_step::listing_kind(&p.method).is_some())
    })
}

/// Answers whose results are content for the model: checked for secrets and injection.
pub(super) fn carries_content(method: &str) -> bool {
    matches!(
        method,
        "tools/call" | "resources/read" | "prompts/get" | "completion/complete"
    )
}

/// Whether `needle` occurs in `hay` (a cheap pre-check before a parse).
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A tool result with `isError: true` is a failed call even though it is not a JSON-RPC error.
fn is_error_result(env: &Envelope) -> bool {
    #[derive(serde::Deserialize)]
    struct Peek {
        #[serde(rename = "isError", default)]
        is_error: bool,
    }
    env.result
        .and_then(|r| serde_json::from_str::<Peek>(r.get()).ok())
        .is_some_and(|p| p.is_error)
}

fn server_request(s: &mut Session, env: &Envelope) -> Result<(), Rejection> {
    let Some(id) = env.id.clone() else {
        return Err(
            Rejection::invalid_envelope("a request needs an id", None).from(Source::Upstream)
        );
    };
    if s.server_pending.contains_key(&id) || s.server_pending.len() >= MAX_PENDING {
        return Err(Rejection::new(
            INVALID_REQUEST,
            "rpc.id_reuse",
            "id_reuse",
            format!("server request id {id} is still in flight (or too many are); a request id must not be reused"),
        )
        .from(Source::Upstream)
        .alert());
    }
    s.server_pending.insert(
        id,
        Pending {
            method: env.method().to_owned(),
            tool: None,
            started: Instant::now(),
            cancelled: false,
            paged: false,
            retry: None,
            reply: None,
            progress: None,
        },
    );
    Ok(())
}
