//! A call before any listing (issue 10): scripts and agents that know their tools, or cached the
//! listing, call without listing first. With no baseline for the server yet, such a call would
//! read as "Unknown tool". Instead the proxy asks the server for its listing itself (its own
//! request id, never forwarded: SPEC §2), pins it on first use like any listing, and only then
//! judges the call.
//!
//! The transport asks [`Pipeline::prefetch_request`] before handing a client line to
//! `from_client`; when it gets bytes, it writes them to the server and waits (bounded) with
//! [`Pipeline::await_prefetch`] while its other reader consumes the answer in `from_server`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use super::Pipeline;
use crate::codec::Id;
use crate::pins::{variant, Kind};
use crate::session::{ClientCaps, Era, Pending};

/// How long a call waits for the proxy's own listing before it is judged anyway (and refused as
/// unknown if the listing never came).
pub const PREFETCH_WAIT: Duration = Duration::from_secs(10);

/// The id prefix of the proxy's own listing requests (string ids; a client's numeric or other
/// string ids cannot be mistaken for them, and the proxy never forwards their answers).
const ID_PREFIX: &str = "mcp-warden/prefetch/";

#[derive(Default)]
pub struct Prefetch {
    /// Set once no prefetch can be needed any more in this process (a baseline exists, or one
    /// was fetched or tried): the per-line check is then one atomic load.
    settled: AtomicBool,
    /// True while the proxy's own listing (all its pages) is in flight.
    in_flight: Mutex<bool>,
    done: Condvar,
}

impl Prefetch {
    pub fn settled(&self) -> bool {
        self.settled.load(Ordering::Acquire)
    }

    fn finish(&self) {
        self.settled.store(true, Ordering::Release);
        *self.in_flight.lock().unwrap_or_else(|p| p.into_inner()) = false;
        self.done.notify_all();
    }
}

/// The `_meta` a modern-era listing request carries: the call's protocol version and client
/// capabilities (servers vary their tools with them), nothing else (no progress token, no
/// signature of the client's).
fn modern_meta(call: &Value) -> Map<String, Value> {
    let mut meta = Map::new();
    if let Some(m) = call.pointer("/params/_meta").and_then(Value::as_object) {
        for key in [
            "io.modelcontextprotocol/protocolVersion",
            "io.modelcontextprotocol/clientCapabilities",
            "io.modelcontextprotocol/clientInfo",
        ] {
            if let Some(v) = m.get(key) {
                meta.insert(key.to_owned(), v.clone());
            }
        }
    }
    meta
}

impl Pipeline {
    /// The proxy's own `tools/list` to send to the server before `line`, when `line` is a
    /// `tools/call` and this server has no tool baseline yet. Cheap for every other line.
    pub fn prefetch_request(&self, line: &[u8]) -> Option<Vec<u8>> {
        if self.prefetch.settled() || !contains(line, b"tools/call") {
            return None;
        }
        let Some(pins) = self.guards.pins.as_ref() else {
            self.prefetch.settled.store(true, Ordering::Release);
            return None;
        };
        let call: Value = serde_json::from_slice(line).ok()?;
        if call.get("method").and_then(Value::as_str) != Some("tools/call") {
            return None;
        }
        let mut session = self.session();
        // The variant the call will be judged in: a modern call names its era and declares its
        // capabilities itself (it may be the session's first message).
        let meta = call.pointer("/params/_meta");
        let label = match meta.and_then(|m| m.get("io.modelcontextprotocol/protocolVersion")) {
            Some(Value::String(v)) => {
                let caps = meta
                    .and_then(|m| m.get("io.modelcontextprotocol/clientCapabilities"))
                    .map(ClientCaps::from_json);
                // The listing's answer is observed before the call itself is judged: judge it
                // in the call's variant (what `from_client` will set from the same `_meta`).
                if session.era == Era::Unknown {
                    session.era = Era::Modern(v.clone());
                }
                if caps.is_some() {
                    session.client_caps = caps.clone();
                }
                variant::label(&Era::Modern(v.clone()), caps.as_ref())
            }
            _ => variant::label(&session.era, session.client_caps.as_ref()),
        };
        if pins.variant(&label).has_baseline(Kind::Tool) {
            self.prefetch.settled.store(true, Ordering::Release);
            return None;
        }
        // A modern call already set the era above (it may be the session's first message).
        let params = match &session.era {
            // The server must have answered `initialize` before it takes other requests.
            Era::Legacy(_) => json!({}),
            Era::Modern(_) => json!({ "_meta": modern_meta(&call) }),
            Era::Unknown => return None,
        };
        {
            let mut in_flight = self
                .prefetch
                .in_flight
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if *in_flight {
                return None;
            }
            *in_flight = true;
        }
        let request = self.own_listing_request(&mut session, params, false);
        Some(request)
    }

    /// One listing request with a fresh proxy id, remembered as the proxy's own.
    fn own_listing_request(
        &self,
        session: &mut crate::session::Session,
        params: Value,
        paged: bool,
    ) -> Vec<u8> {
        let id = format!("{ID_PREFIX}{}", crate::session::random_id());
        session.proxy_pending.insert(
            Id::Str(id.clone()),
            Pending {
                method: "tools/list".into(),
                tool: None,
                started: Instant::now(),
                cancelled: false,
                paged,
                retry: None,
                reply: None,
                progress: None,
            },
        );
        // One message without its newline: transports add their own framing.
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": "tools/list", "params": params});
        serde_json::to_vec(&msg).unwrap_or_default()
    }

    /// Wait until the proxy's own listing was observed (or `timeout`).
    pub fn await_prefetch(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut in_flight = self
            .prefetch
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        while *in_flight {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                // Never try again in this process: a server that does not answer a listing
                // must not delay every call.
                self.prefetch.settled.store(true, Ordering::Release);
                return;
            }
            in_flight = self
                .prefetch
                .done
                .wait_timeout(in_flight, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// The server answered one page of the proxy's own listing (already observed by the pins).
    /// Returns the request for the next page, if there is one; otherwise wakes the waiter.
    pub(super) fn prefetch_page_done(
        &self,
        session: &mut crate::session::Session,
        result: Option<&Value>,
    ) -> Option<Vec<u8>> {
        let cursor = result
            .and_then(|r| r.get("nextCursor"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        match cursor {
            Some(cursor) => {
                let mut params = json!({ "cursor": cursor });
                if let Era::Modern(v) = &session.era {
                    params["_meta"] = json!({ "io.modelcontextprotocol/protocolVersion": v });
                }
                Some(self.own_listing_request(session, params, true))
            }
            None => {
                self.prefetch.finish();
                None
            }
        }
    }

    /// The proxy's own listing failed (error answer): calls are judged without it.
    pub(super) fn prefetch_failed(&self) {
        self.prefetch.finish();
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
