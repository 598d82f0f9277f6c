//! Client → server half of `connect`: one stdin line at a time, strictly parsed, then POSTed as
//! the exact bytes received. Requests run concurrently (each may stream for a long time);
//! `initialize`, notifications and responses are sent in order, waiting for their HTTP answer,
//! so the session id exists before anything needs it and the server sees what the client sent
//! in the order it sent it.

use std::sync::Arc;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::task::{JoinHandle, JoinSet};

use super::http::Route;
use super::relay::Ctx;
use crate::audit::Direction;
use crate::codec::{self, Decoded, Envelope, Frame, Id, Kind};
use crate::errors::{Rejection, INVALID_REQUEST};

/// Where the modern era carries the protocol version (every request's `_meta`).
const VERSION_META: &str = "io.modelcontextprotocol/protocolVersion";

/// The few `params` members connect reads.
#[derive(Deserialize, Default)]
struct Peek<'a> {
    #[serde(rename = "_meta", default)]
    meta: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    uri: Option<String>,
    #[serde(rename = "requestId", borrow, default)]
    request_id: Option<&'a RawValue>,
}

/// A JSON-RPC id as the envelope would read it (string or integer).
fn id_of(raw: &RawValue) -> Option<Id> {
    let text = raw.get();
    if text.starts_with('"') {
        serde_json::from_str(text).ok().map(Id::Str)
    } else if text.parse::<i64>().is_ok() || text.parse::<u64>().is_ok() {
        Some(Id::Num(text.to_owned()))
    } else {
        None
    }
}

/// Whether the POST answer is worth waiting for before the next line.
enum Order {
    Wait,
    Concurrent,
    /// `initialize`: wait, then open the server's event stream.
    Initialize,
}

/// Handles one frame from stdin. After `initialize` returns the server's event-stream task,
/// which the caller owns (it does not end by itself, so it is kept out of `tasks`).
pub async fn handle(
    ctx: &Arc<Ctx>,
    frame: Frame,
    tasks: &mut JoinSet<()>,
) -> Option<JoinHandle<()>> {
    let line = match frame {
        Frame::Oversize { seen } => {
            let rej = Rejection::oversize(seen, ctx.limits.max_message_bytes);
            ctx.refuse(&rej, None, Direction::ClientToServer, 0).await;
            return None;
        }
        Frame::Line(l) if codec::frame::is_blank(&l) => return None,
        Frame::Line(l) => l,
    };
    let (expect, route, order) = match codec::decode(&line, &ctx.limits) {
        Err(rej) => {
            ctx.refuse(&rej, None, Direction::ClientToServer, line.len())
                .await;
            return None;
        }
        Ok(Decoded::Batch(items)) => match admit_batch(ctx, &items) {
            Ok(ids) => {
                let fate = super::audit::Fate::Forwarded;
                ctx.audit
                    .write(Direction::ClientToServer, None, line.len(), fate, None);
                (ids, None, Order::Concurrent)
            }
            Err(rej) => {
                ctx.refuse(&rej, None, Direction::ClientToServer, line.len())
                    .await;
                return None;
            }
        },
        Ok(Decoded::Single(env)) => match admit(ctx, &env) {
            Ok(admitted) => {
                ctx.audit.write(
                    Direction::ClientToServer,
                    Some(&env),
                    line.len(),
                    super::audit::Fate::Forwarded,
                    None,
                );
                admitted
            }
            Err(rej) => {
                ctx.refuse(&rej, Some(&env), Direction::ClientToServer, line.len())
                    .await;
                return None;
            }
        },
    };
    let body = Bytes::from(line);
    match order {
        Order::Concurrent => {
            let ctx = Arc::clone(ctx);
            tasks.spawn(async move { post(&ctx, body, route, expect).await });
            None
        }
        Order::Wait => {
            post(ctx, body, route, expect).await;
            None
        }
        Order::Initialize => {
            post(ctx, body, route, expect).await;
            let modern = ctx.era.lock().map(|e| e.modern).unwrap_or(false);
            (ctx.upstream.has_session() && !modern).then(|| {
                let ctx = Arc::clone(ctx);
                tokio::spawn(async move { super::server_stream(&ctx).await })
            })
        }
    }
}

/// Bookkeeping for one message: pending ids, era, cancellation. Returns what the POST needs.
fn admit(ctx: &Ctx, env: &Envelope<'_>) -> Result<(Vec<Id>, Option<Route>, Order), Rejection> {
    let peek: Peek = env
        .params
        .and_then(|p| serde_json::from_str(p.get()).ok())
        .unwrap_or_default();
    let modern_version = peek
        .meta
        .as_ref()
        .and_then(|m| m.get(VERSION_META))
        .and_then(|v| v.as_str());
    let modern = {
        let mut era = ctx.era.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = modern_version {
            era.modern = true;
            if era.version.as_deref() != Some(v) {
                era.version = Some(v.to_owned());
                ctx.upstream.set_version(v);
            }
        } else if env.method() == "server/discover" {
            era.modern = true;
        }
        era.modern
    };
    let route = modern.then(|| Route {
        method: env.method.as_deref().map(str::to_owned),
        name: match env.method() {
            "tools/call" | "prompts/get" => peek.name.clone(),
            m if m.starts_with("resources/") => peek.uri.clone(),
            _ => None,
        },
    });
    match env.kind {
        Kind::Request => {
            let id = env
                .id
                .clone()
                .ok_or_else(|| Rejection::invalid_envelope("a request needs an id", None))?;
            if !ctx.start_request(&id, env.method()) {
                let reason = format!(
                    "request id {id} is still in flight in this session; a request id must not be reused"
                );
                return Err(
                    Rejection::new(INVALID_REQUEST, "rpc.id_reuse", "id_reuse", reason).alert(),
                );
            }
            let order = if env.method() == "initialize" {
                Order::Initialize
            } else {
                Order::Concurrent
            };
            Ok((vec![id], route, order))
        }
        Kind::Notification => {
            if env.method() == "notifications/cancelled" {
                if let Some(id) = peek.request_id.and_then(id_of) {
                    ctx.cancel(&id);
                }
            }
            Ok((vec![], route, Order::Wait))
        }
        Kind::Response | Kind::ErrorResponse => Ok((vec![], route, Order::Wait)),
    }
}

/// A batch (2025-03-26 only): every element must be a valid message; its request ids go pending.
fn admit_batch(ctx: &Ctx, items: &[&RawValue]) -> Result<Vec<Id>, Rejection> {
    if !ctx.batches_allowed() {
        return Err(Rejection::new(
            INVALID_REQUEST,
            "rpc.batch_refused",
            "batch",
            "JSON-RPC batches are only allowed when protocol 2025-03-26 was negotiated; send messages one per line",
        ));
    }
    if items.is_empty() {
        return Err(Rejection::invalid_envelope(
            "an empty batch is not a request",
            None,
        ));
    }
    let mut envs = Vec::with_capacity(items.len());
    for item in items {
        envs.push(
            Envelope::parse(item.get()).map_err(|e| Rejection::invalid_envelope(e.reason, e.id))?,
        );
    }
    let mut ids = Vec::new();
    for env in envs.iter().filter(|e| e.kind == Kind::Request) {
        let Some(id) = env.id.clone() else { continue };
        if !ctx.start_request(&id, env.method()) {
            for started in &ids {
                ctx.cancel(started);
            }
            return Err(Rejection::new(
                INVALID_REQUEST,
                "rpc.id_reuse",
                "id_reuse",
                format!("request id {id} is already in flight; a request id must not be reused"),
            ));
        }
        ids.push(id);
    }
    Ok(ids)
}

/// POSTs one body and relays the answer; a failed exchange answers every expected id.
async fn post(ctx: &Ctx, body: Bytes, route: Option<Route>, expect: Vec<Id>) {
    match ctx.upstream.post(body, route.as_ref()).await {
        Ok(resp) => {
            ctx.upstream.learn_session(&resp);
            ctx.relay_response(resp, &expect).await;
        }
        Err(e) => {
            tracing::warn!("upstream request failed: {e}");
            for id in &expect {
                ctx.fail_request(id, format!("the server could not be reached: {e}"))
                    .await;
            }
        }
    }
}
