//! Server → client half of `connect`: upstream HTTP answers (JSON bodies or SSE streams, event by
//! event) become stdout lines, after strict parsing, the pending-id check and the response
//! signature check. Also where "each client request gets exactly one response" is kept: a
//! request whose HTTP exchange ends without an answer gets an error from here.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::CONTENT_TYPE;
use hyper::{Response, StatusCode};
use serde_json::Value;
use tokio::sync::mpsc;

use super::audit::{Auditor, Fate};
use super::http::{read_body, Upstream};
use super::pin::{Check, ServerPin};
use crate::audit::{Decision, Direction};
use crate::codec::{self, Decoded, Envelope, Id, Kind, Limits};
use crate::config::SignatureMode;
use crate::errors::{Rejection, Source, INTERNAL_ERROR};
use crate::pipeline::screen_result;
use crate::sig::message_scheme::META_KEY;
use crate::transport::http::sse::Parser as SseParser;
use std::sync::atomic::{AtomicBool, Ordering};

/// What the signature check established about a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signed {
    /// Signed by the pinned key.
    Verified,
    /// Unsigned, and no key is pinned: nothing proves who wrote it.
    Unpinned,
}

/// Protocol facts learnt along the way.
#[derive(Debug, Default)]
pub struct EraState {
    pub modern: bool,
    pub version: Option<String>,
}

pub struct Ctx {
    pub upstream: Upstream,
    pub pin: ServerPin,
    pub audit: Auditor,
    pub limits: Limits,
    out: mpsc::Sender<Vec<u8>>,
    /// Client requests in flight: id → method.
    pending: Mutex<HashMap<Id, String>>,
    pub era: Mutex<EraState>,
    mode: SignatureMode,
    /// The unsigned-results warning was printed (once per process, loudly).
    warned: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// JSON allows raw CR/LF only as whitespace (inside strings they must be escaped), so dropping
/// them is an exact rewrite that turns a pretty-printed body into one stdout line.
fn one_line(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if bytes.iter().any(|&b| b == b'\n' || b == b'\r') {
        bytes
            .iter()
            .copied()
            .filter(|&b| b != b'\n' && b != b'\r')
            .collect::<Vec<u8>>()
            .into()
    } else {
        bytes.into()
    }
}

impl Ctx {
    pub fn new(
        upstream: Upstream,
        pin: ServerPin,
        audit: Auditor,
        limits: Limits,
        out: mpsc::Sender<Vec<u8>>,
        mode: SignatureMode,
    ) -> Ctx {
        Ctx {
            upstream,
            pin,
            audit,
            limits,
            out,
            pending: Mutex::new(HashMap::new()),
            era: Mutex::new(EraState::default()),
            mode,
            warned: AtomicBool::new(false),
        }
    }

    /// Registers a client request; false when the id is already in flight.
    pub fn start_request(&self, id: &Id, method: &str) -> bool {
        let mut pending = lock(&self.pending);
        if pending.contains_key(id) {
            return false;
        }
        pending.insert(id.clone(), method.to_owned());
        true
    }

    /// The client gave up on a request (`notifications/cancelled`): its answer is no longer due.
    pub fn cancel(&self, id: &Id) {
        lock(&self.pending).remove(id);
    }

    pub fn batches_allowed(&self) -> bool {
        lock(&self.era).version.as_deref() == Some("2025-03-26")
    }

    /// One line to stdout (stdout carries MCP only).
    pub async fn emit(&self, line: Vec<u8>) {
        let line = codec::escape_line_separators(&line).unwrap_or(line);
        if self.out.send(line).await.is_err() {
            tracing::debug!("stdout writer is gone");
        }
    }

    /// Answers the client with `rej`, audits it, and says why on stderr.
    pub async fn refuse(
        &self,
        rej: &Rejection,
        env: Option<&Envelope<'_>>,
        direction: Direction,
        bytes: usize,
    ) {
        let audit_id = self.audit.next_id();
        let id = env.and_then(|e| e.id.as_ref());
        eprintln!("mcp-warden connect: refused ({}): {}", rej.rule, rej.reason);
        self.audit.write(
            direction,
            env,
            bytes,
            Fate::Refused(rej),
            Some(audit_id.clone()),
        );
        // Only requests (or an answer standing in for one) get a response; a refused
        // notification from the client still gets the parse/invalid error JSON-RPC requires.
        self.emit(rej.to_response(id, &audit_id)).await;
    }

    /// Relays one upstream HTTP answer; then answers every id of `expect` still pending.
    pub async fn relay_response(&self, resp: Response<Incoming>, expect: &[Id]) {
        let status = resp.status();
        let sse = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("text/event-stream"));
        if status == StatusCode::ACCEPTED || status == StatusCode::NO_CONTENT {
            // Nothing to print (an accepted notification or response).
        } else if sse {
            self.relay_events(resp.into_body()).await;
        } else {
            match read_body(resp.into_body(), self.limits.max_message_bytes).await {
                Ok(body) if !body.iter().all(u8::is_ascii_whitespace) => self.deliver(&body).await,
                Ok(_) => {}
                Err(e) => tracing::warn!("{e}"),
            }
        }
        for id in expect {
            if lock(&self.pending).remove(id).is_none() {
                continue;
            }
            let reason = if status.is_success() {
                "the server ended the HTTP response without answering this request".to_owned()
            } else {
                format!(
                    "the server answered HTTP {status} without a JSON-RPC answer to this request"
                )
            };
            self.fail_request(id, reason).await;
        }
    }

    /// The request will get no answer from upstream: answer it ourselves.
    pub async fn fail_request(&self, id: &Id, reason: String) {
        lock(&self.pending).remove(id);
        let rej = Rejection::new(
            INTERNAL_ERROR,
            "upstream.no_answer",
            "upstream_http",
            reason,
        )
        .from(Source::Upstream);
        let audit_id = self.audit.next_id();
        eprintln!("mcp-warden connect: request {id}: {}", rej.reason);
        self.audit.write(
            Direction::Proxy,
            None,
            0,
            Fate::Refused(&rej),
            Some(audit_id.clone()),
        );
        self.emit(rej.to_response(Some(id), &audit_id)).await;
    }

    /// Relays an SSE body event by event as it arrives. Returns the last event id seen.
    pub async fn relay_events(&self, mut body: Incoming) -> Option<String> {
        let mut parser = SseParser::new(self.limits.max_message_bytes);
        let mut last_id = None;
        while let Some(frame) = body.frame().await {
            let frame = match frame {
                Ok(f) => f,
                Err(e) => {
                    tracing::warn!("upstream event stream broke: {e}");
                    break;
                }
            };
            let Some(chunk) = frame.data_ref() else {
                continue;
            };
            let events = match parser.push(chunk) {
                Ok(ev) => ev,
                Err(e) => {
                    tracing::warn!("upstream event stream refused: {e:?}");
                    break;
                }
            };
            for ev in events {
                last_id = ev.id.clone().or(last_id);
                // Priming events (an id, no data) and blank data carry no message.
                match ev.data {
                    Some(data) if !data.iter().all(u8::is_ascii_whitespace) => {
                        self.deliver(&data).await
                    }
                    _ => {}
                }
            }
        }
        last_id
    }

    /// One message from the server: strict parse, then each message (or batch element) on its
    /// own; the line goes out unchanged unless a refusal replaced part of it.
    pub async fn deliver(&self, raw: &[u8]) {
        let line = one_line(raw);
        let decoded = match codec::decode(&line, &self.limits) {
            Ok(d) => d,
            Err(rej) => {
                tracing::warn!(
                    "dropped a malformed message from the server: {}",
                    rej.reason
                );
                self.audit.write(
                    Direction::ServerToClient,
                    None,
                    line.len(),
                    Fate::Dropped(rej.event, rej.reason.clone()),
                    None,
                );
                return;
            }
        };
        match decoded {
            Decoded::Single(env) => {
                if let Some(out) = self.check(&env, &line).await {
                    self.emit(out).await;
                }
            }
            Decoded::Batch(items) => {
                let mut parts = Vec::new();
                let mut changed = false;
                for item in items {
                    let bytes = item.get().as_bytes();
                    let Ok(env) = Envelope::parse(item.get()) else {
                        changed = true;
                        continue;
                    };
                    match self.check(&env, bytes).await {
                        Some(out) => {
                            changed |= out.as_slice() != bytes;
                            parts.push(out);
                        }
                        None => changed = true,
                    }
                }
                if !changed {
                    self.emit(line.into_owned()).await;
                } else if !parts.is_empty() {
                    let mut out = b"[".to_vec();
                    out.extend(parts.join(&b","[..]));
                    out.push(b']');
                    self.emit(out).await;
                }
            }
        }
    }

    /// What to send the client for one server message: itself, an error in its place, or
    /// nothing (an answer to nothing pending is dropped, SPEC §2).
    async fn check(&self, env: &Envelope<'_>, bytes: &[u8]) -> Option<Vec<u8>> {
        if matches!(env.kind, Kind::Response | Kind::ErrorResponse) {
            let method = env
                .id
                .as_ref()
                .and_then(|id| lock(&self.pending).remove(id));
            let Some(method) = method else {
                self.audit.write(
                    Direction::ServerToClient,
                    Some(env),
                    bytes.len(),
                    Fate::Dropped(
                        "rpc.unsolicited_response",
                        "answer to no pending request".into(),
                    ),
                    None,
                );
                return None;
            };
            if env.kind == Kind::Response {
                let verdict = match self.check_signature(bytes).await {
                    Ok(Signed::Unpinned) if self.mode == SignatureMode::Enforce => {
                        Err(self.pin.unsigned_unpinned())
                    }
                    other => other,
                };
                let signed = match verdict {
                    Ok(s) => s,
                    Err(rej) => {
                        let audit_id = self.audit.next_id();
                        eprintln!("mcp-warden connect: refused a response: {}", rej.reason);
                        self.audit.write(
                            Direction::ServerToClient,
                            Some(env),
                            bytes.len(),
                            Fate::Refused(&rej),
                            Some(audit_id.clone()),
                        );
                        return Some(rej.to_response(env.id.as_ref(), &audit_id));
                    }
                };
                if method == "initialize" {
                    self.learn_version(env);
                }
                return Some(self.screen(env, &method, bytes, signed));
            }
        }
        self.audit.write(
            Direction::ServerToClient,
            Some(env),
            bytes.len(),
            Fate::Forwarded,
            None,
        );
        Some(bytes.to_vec())
    }

    fn learn_version(&self, env: &Envelope<'_>) {
        let version = env
            .result
            .and_then(|r| serde_json::from_str::<Value>(r.get()).ok())
            .and_then(|v| {
                v.get("protocolVersion")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            });
        if let Some(v) = version {
            self.upstream.set_version(&v);
            lock(&self.era).version = Some(v);
        }
    }

    /// A result that passed the signature check: the content checks `wrap` applies (redaction,
    /// quarantine), then its one audit record. An unsigned result from an unpinned server (audit
    /// mode) is said loudly once on stderr and flagged in each record.
    fn screen(&self, env: &Envelope<'_>, method: &str, bytes: &[u8], signed: Signed) -> Vec<u8> {
        let unsigned = signed == Signed::Unpinned && self.mode != SignatureMode::Off;
        if unsigned && !self.warned.swap(true, Ordering::Relaxed) {
            eprintln!(
                "mcp-warden connect: WARNING: server {:?} sends unsigned results and no key is \
                 pinned for it: nothing proves who wrote them. Pin its key ([[servers]] public_key) \
                 and set signatures.mode = \"enforce\" to refuse unsigned results.",
                self.pin.server()
            );
        }
        let audit_id = self.audit.next_id();
        let screened = screen_result(method, bytes, &audit_id);
        let (out, fate) = match screened {
            Some(s) => {
                eprintln!("mcp-warden connect: {}", s.reason);
                let decision = if s.event == "dlp.secret_redacted" {
                    Decision::Redact
                } else {
                    Decision::Deny
                };
                let reason = if unsigned {
                    format!(
                        "{}; the result was unsigned (no server key pinned)",
                        s.reason
                    )
                } else {
                    s.reason
                };
                (s.bytes, Fate::Flagged(decision, s.event, reason))
            }
            None if unsigned => (
                bytes.to_vec(),
                Fate::Flagged(
                    Decision::Allow,
                    "auth.unsigned_response",
                    "unsigned result from a server with no pinned key (signatures.mode = audit)"
                        .into(),
                ),
            ),
            None => (bytes.to_vec(), Fate::Forwarded),
        };
        self.audit.write(
            Direction::ServerToClient,
            Some(env),
            bytes.len(),
            fate,
            Some(audit_id),
        );
        out
    }

    /// The pinned-key check; on first contact with a signing server, pins its published key.
    async fn check_signature(&self, bytes: &[u8]) -> Result<Signed, Rejection> {
        let marker = META_KEY.as_bytes();
        let signed = bytes.windows(marker.len()).any(|w| w == marker);
        if self.pin.key().is_none() && !signed {
            return Ok(Signed::Unpinned);
        }
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| self.pin.cannot_pin(&format!("unreadable response: {e}")))?;
        match self.pin.check(&value) {
            Check::Pass => Ok(Signed::Verified),
            Check::Refuse(rej) => Err(rej),
            Check::NeedKey { kid } => {
                let published = self.upstream.published_key().await;
                let adopted = published.and_then(|key| self.pin.adopt(&key, &kid));
                if let Err(why) = adopted {
                    return Err(self.pin.cannot_pin(&why));
                }
                match self.pin.check(&value) {
                    Check::Pass => Ok(Signed::Verified),
                    Check::Refuse(rej) => Err(rej),
                    Check::NeedKey { .. } => Err(self.pin.cannot_pin("no key was pinned")),
                }
            }
        }
    }
}
