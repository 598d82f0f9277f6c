//! Server → client half of `connect`: upstream HTTP answers (JSON bodies or SSE streams, event by
//! event) are split into messages, each checked against the pinned server key and then run
//! through `Pipeline::from_server` (pins, scans, redaction, server requests, id bookkeeping), and
//! the verdict acted on (`settle.rs`). Also where "each client request gets exactly one response"
//! is kept: a request whose HTTP exchange ends without an answer gets the proxy's error in its
//! place (`Pipeline::answer_instead`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::CONTENT_TYPE;
use hyper::{Response, StatusCode};
use serde_json::Value;
use tokio::sync::mpsc;

use super::http::{read_body, Upstream};
use super::pin::{Check, ServerPin};
use crate::audit::{Direction, Record};
use crate::codec::{self, Decoded, Envelope, Id, Kind};
use crate::config::SignatureMode;
use crate::errors::{Rejection, Source, INTERNAL_ERROR};
use crate::pipeline::Pipeline;
use crate::session::Era;
use crate::sig::message_scheme::META_KEY;
use crate::transport::http::sse::Parser as SseParser;

/// What the signature check established about one server message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signed {
    /// Not a result (requests, notifications, errors carry no signature), or signatures are off.
    NotChecked,
    /// A result signed by the pinned key.
    Verified,
    /// An unsigned result, and no key is pinned: nothing proves who wrote it.
    Unpinned,
}

pub struct Ctx {
    pub upstream: Upstream,
    pub pin: ServerPin,
    pub pipeline: Arc<Pipeline>,
    out: mpsc::Sender<Vec<u8>>,
    mode: SignatureMode,
    /// The unsigned-results warning was printed (once per process, loudly).
    warned: AtomicBool,
}

/// JSON allows raw CR/LF only as whitespace (inside strings they must be escaped), so dropping
/// them is an exact rewrite that turns a pretty-printed body into one stdout line.
fn one_line(bytes: &[u8]) -> Bytes {
    if bytes.iter().any(|&b| b == b'\n' || b == b'\r') {
        bytes
            .iter()
            .copied()
            .filter(|&b| b != b'\n' && b != b'\r')
            .collect::<Vec<u8>>()
            .into()
    } else {
        Bytes::copy_from_slice(bytes)
    }
}

impl Ctx {
    pub fn new(
        upstream: Upstream,
        pin: ServerPin,
        pipeline: Arc<Pipeline>,
        out: mpsc::Sender<Vec<u8>>,
        mode: SignatureMode,
    ) -> Ctx {
        Ctx {
            upstream,
            pin,
            pipeline,
            out,
            mode,
            warned: AtomicBool::new(false),
        }
    }

    pub fn max_bytes(&self) -> usize {
        self.pipeline.limits().max_message_bytes
    }

    /// One line to stdout (stdout carries MCP only).
    pub async fn emit(&self, line: Vec<u8>) {
        let line = codec::escape_line_separators(&line).unwrap_or(line);
        if self.out.send(line).await.is_err() {
            tracing::debug!("stdout writer is gone");
        }
    }

    /// The session's protocol version goes on every later request (`MCP-Protocol-Version`):
    /// whatever the pipeline learnt from `initialize` or a modern request's `_meta`.
    pub fn sync_version(&self) -> bool {
        match self.pipeline.era() {
            Era::Legacy(v) if !v.is_empty() => {
                self.upstream.set_version(&v);
                false
            }
            Era::Modern(v) => {
                if !v.is_empty() {
                    self.upstream.set_version(&v);
                }
                true
            }
            _ => false,
        }
    }

    /// Relays one upstream HTTP answer; then every id of `expect` the client still waits for
    /// gets the proxy's error in place of the answer that did not come.
    pub async fn relay_response(self: &Arc<Self>, resp: Response<Incoming>, expect: &[Id]) {
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
            match read_body(resp.into_body(), self.max_bytes()).await {
                Ok(body) if !body.iter().all(u8::is_ascii_whitespace) => self.deliver(&body).await,
                Ok(_) => {}
                Err(e) => tracing::warn!("{e}"),
            }
        }
        for id in expect {
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

    /// The request will get no answer from upstream: answer it ourselves, if the client still
    /// waits for one.
    pub async fn fail_request(self: &Arc<Self>, id: &Id, reason: String) {
        if !self.pipeline.awaits_answer(id) {
            return;
        }
        let rej = Rejection::new(
            INTERNAL_ERROR,
            "upstream.no_answer",
            "upstream_http",
            reason,
        )
        .from(Source::Upstream);
        eprintln!("mcp-warden connect: request {id}: {}", rej.reason);
        let outcome = self.pipeline.answer_instead(id, &rej);
        self.stand_in(outcome, Instant::now()).await;
    }

    /// The proxy's error in place of a server answer goes to the client (and its record out).
    async fn stand_in(self: &Arc<Self>, outcome: crate::pipeline::Outcome, started: Instant) {
        let passed = self
            .settle(outcome, Bytes::new(), Direction::ServerToClient, started)
            .await;
        if let Some(bytes) = passed {
            self.emit(bytes.to_vec()).await;
        }
    }

    /// Relays an SSE body event by event as it arrives. Returns the last event id seen.
    pub async fn relay_events(self: &Arc<Self>, mut body: Incoming) -> Option<String> {
        let mut parser = SseParser::new(self.max_bytes());
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

    /// One message from the server: the signature check first (a result that does not verify
    /// must not feed the pins or the scans), then the pipeline, then the verdict acted on.
    pub async fn deliver(self: &Arc<Self>, raw: &[u8]) {
        let line = one_line(raw);
        let started = Instant::now();
        let signed = match self.check_signatures(&line).await {
            Ok(s) => s,
            Err((ids, rej)) => {
                eprintln!("mcp-warden connect: refused a response: {}", rej.reason);
                for id in ids {
                    let outcome = self.pipeline.answer_instead(&id, &rej);
                    self.stand_in(outcome, started).await;
                }
                return;
            }
        };
        let mut outcome = self.pipeline.from_server(&line);
        self.sync_version();
        if signed == Signed::Unpinned {
            self.flag_unsigned(&mut outcome.record);
        }
        // Notifications the flood bound held back leave before this message.
        for (_, held) in self.pipeline.take_released() {
            self.emit(held).await;
        }
        if let Some(out) = self
            .settle(outcome, line, Direction::ServerToClient, started)
            .await
        {
            self.emit(out.to_vec()).await;
        }
    }

    /// An unsigned result from an unpinned server (audit mode) passes, said loudly once on
    /// stderr and flagged in its record.
    fn flag_unsigned(&self, record: &mut Record) {
        if !self.warned.swap(true, Ordering::Relaxed) {
            eprintln!(
                "mcp-warden connect: WARNING: server {:?} sends unsigned results and no key is \
                 pinned for it: nothing proves who wrote them. Pin its key ([[servers]] public_key) \
                 and set signatures.mode = \"enforce\" to refuse unsigned results.",
                self.pin.server()
            );
        }
        record.alert = true;
        // "message" is what a record says when no check had anything to say.
        if record.event.is_empty() || record.event == "message" {
            record.event = "auth.unsigned_response".into();
            record.reason = Some(
                "unsigned result from a server with no pinned key (signatures.mode = audit)".into(),
            );
        } else {
            let unsigned = "the result was unsigned (no server key pinned)";
            record.reason = Some(match record.reason.take() {
                Some(reason) => format!("{reason}; {unsigned}"),
                None => unsigned.to_owned(),
            });
        }
    }

    /// The pinned-key check of every result in `line` (one message or a batch). On refusal,
    /// the ids whose answers it replaces and why. Signatures off and nothing pinned: no parse.
    async fn check_signatures(&self, line: &[u8]) -> Result<Signed, (Vec<Id>, Rejection)> {
        let marker = META_KEY.as_bytes();
        let signed = line.windows(marker.len()).any(|w| w == marker);
        if self.mode == SignatureMode::Off && self.pin.key().is_none() && !signed {
            return Ok(Signed::NotChecked);
        }
        // Strict first, like everything else: what fails here is dropped by `from_server`.
        let limits = *self.pipeline.limits();
        let Ok(decoded) = codec::decode(line, &limits) else {
            return Ok(Signed::NotChecked);
        };
        let results: Vec<(Id, &[u8])> = match &decoded {
            Decoded::Single(env) => result_of(env, line).into_iter().collect(),
            Decoded::Batch(items) => items
                .iter()
                .filter_map(|i| {
                    let env = Envelope::parse(i.get()).ok()?;
                    result_of(&env, i.get().as_bytes())
                })
                .collect(),
        };
        let mut verdict = Signed::NotChecked;
        for (_, bytes) in &results {
            let one = match self.check_signature(bytes).await {
                Ok(Signed::Unpinned) if self.mode == SignatureMode::Enforce => {
                    Err(self.pin.unsigned_unpinned())
                }
                other => other,
            };
            match one {
                Ok(s) if verdict != Signed::Unpinned => verdict = s,
                Ok(_) => {}
                // One forged element refuses the whole message: every answer in it is replaced.
                Err(rej) => return Err((results.into_iter().map(|(id, _)| id).collect(), rej)),
            }
        }
        if self.mode == SignatureMode::Off && verdict == Signed::Unpinned {
            verdict = Signed::NotChecked;
        }
        Ok(verdict)
    }

    /// The pinned-key check of one result; on first contact with a signing server, pins its
    /// published key.
    async fn check_signature(&self, bytes: &[u8]) -> Result<Signed, Rejection> {
        let marker = META_KEY.as_bytes();
        if self.pin.key().is_none() && !bytes.windows(marker.len()).any(|w| w == marker) {
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

/// A result (a response with `result`: errors cannot carry a signature) and its id.
fn result_of<'a>(env: &Envelope<'_>, bytes: &'a [u8]) -> Option<(Id, &'a [u8])> {
    (env.kind == Kind::Response)
        .then(|| env.id.clone())
        .flatten()
        .map(|id| (id, bytes))
}
