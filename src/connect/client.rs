//! Client → server half of `connect`: one stdin line at a time through `Pipeline::from_client`
//! (strict parse, ids, pins, policy, rate limit, approval), the verdict acted on (`settle.rs`),
//! and what passes POSTed as the bytes the pipeline let through (the client's own, unless it
//! had to change them). Requests run concurrently (each may stream for a long time);
//! `initialize`, notifications and responses are sent in order, waiting for their HTTP answer,
//! so the session id exists before anything needs it and the server sees what the client sent
//! in the order it sent it.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::task::{JoinHandle, JoinSet};

use super::http::Route;
use super::relay::Ctx;
use super::settle::Boxed;
use crate::audit::Direction;
use crate::codec::frame::is_blank;
use crate::codec::{Envelope, Frame, Id, Kind};
use crate::pipeline::{INLINE_MAX, PREFETCH_WAIT};

/// Whether the POST answer is worth waiting for before the next line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    Wait,
    Concurrent,
    /// `initialize`: wait, then open the server's event stream.
    Initialize,
}

/// What sending one message that passed the pipeline needs to know about it: the ids of the
/// requests in it (each is owed an answer when the exchange ends without one), the order, and
/// the modern era's `Mcp-Method` / `Mcp-Name` headers. Read from bytes that already passed
/// the strict parse; the id bookkeeping itself is the pipeline's.
struct Facts {
    ids: Vec<Id>,
    order: Order,
    route: Option<Route>,
}

/// The `params` members the modern headers mirror.
#[derive(Deserialize, Default)]
struct Target {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    uri: Option<String>,
}

impl Facts {
    fn of(body: &[u8], modern: bool) -> Facts {
        let text = std::str::from_utf8(body).unwrap_or("");
        let batch = text.trim_start().starts_with('[');
        let items: Vec<&RawValue> = if batch {
            serde_json::from_str(text).unwrap_or_default()
        } else {
            Vec::new()
        };
        let envs: Vec<Envelope> = if batch {
            items
                .iter()
                .filter_map(|i| Envelope::parse(i.get()).ok())
                .collect()
        } else {
            Envelope::parse(text).ok().into_iter().collect()
        };
        let ids: Vec<Id> = envs
            .iter()
            .filter(|e| e.kind == Kind::Request)
            .filter_map(|e| e.id.clone())
            .collect();
        let order = match envs.as_slice() {
            [one] if !batch && one.kind == Kind::Request && one.method() == "initialize" => {
                Order::Initialize
            }
            _ if !ids.is_empty() => Order::Concurrent,
            _ => Order::Wait,
        };
        let route = match envs.as_slice() {
            [env] if modern && !batch => {
                let target: Target = env
                    .params
                    .and_then(|p| serde_json::from_str(p.get()).ok())
                    .unwrap_or_default();
                Some(Route {
                    method: env.method.as_deref().map(str::to_owned),
                    name: match env.method() {
                        "tools/call" | "prompts/get" => target.name,
                        m if m.starts_with("resources/") => target.uri,
                        _ => None,
                    },
                })
            }
            _ => None,
        };
        Facts { ids, order, route }
    }
}

/// Handles one frame from stdin. After `initialize` returns the server's event-stream task,
/// which the caller owns (it does not end by itself, so it is kept out of `tasks`).
pub async fn handle(
    ctx: &Arc<Ctx>,
    frame: Frame,
    tasks: &mut JoinSet<()>,
) -> Option<JoinHandle<()>> {
    let started = Instant::now();
    let (outcome, line) = match frame {
        Frame::Oversize { seen } => (
            ctx.pipeline.oversize(Direction::ClientToServer, seen),
            Bytes::new(),
        ),
        Frame::Line(l) if is_blank(&l) => return None,
        Frame::Line(l) => {
            if let Some(request) = ctx.pipeline.prefetch_request(&l) {
                // A call before any listing: the proxy's own listing first (its answer is
                // consumed and pinned by `from_server`), then the call is judged against it.
                send(Arc::clone(ctx), Bytes::from(request)).await;
                let p = Arc::clone(&ctx.pipeline);
                let _ = tokio::task::spawn_blocking(move || p.await_prefetch(PREFETCH_WAIT)).await;
            }
            let line = Bytes::from(l);
            let outcome = if line.len() > INLINE_MAX {
                let (p, l) = (Arc::clone(&ctx.pipeline), line.clone());
                match tokio::task::spawn_blocking(move || p.from_client(&l)).await {
                    Ok(o) => o,
                    Err(e) => {
                        tracing::error!("judging a client message failed: {e}");
                        return None;
                    }
                }
            } else {
                ctx.pipeline.from_client(&line)
            };
            (outcome, line)
        }
    };
    let body = ctx
        .settle(outcome, line, Direction::ClientToServer, started)
        .await?;
    let facts = Facts::of(&body, ctx.sync_version());
    match facts.order {
        Order::Concurrent => {
            let ctx = Arc::clone(ctx);
            tasks.spawn(async move {
                post(ctx, body, facts).await;
            });
            None
        }
        Order::Wait => {
            post(Arc::clone(ctx), body, facts).await;
            None
        }
        Order::Initialize => {
            let reached = post(Arc::clone(ctx), body, facts).await;
            ctx.pipeline.upstream_started(reached);
            let modern = ctx.sync_version();
            (ctx.upstream.has_session() && !modern).then(|| {
                let ctx = Arc::clone(ctx);
                tokio::spawn(async move { super::server_stream(&ctx).await })
            })
        }
    }
}

/// Sends bytes the pipeline let through (or the proxy's own: an answer to the server, its
/// listing request) and relays the HTTP answer.
pub fn send(ctx: Arc<Ctx>, body: Bytes) -> Boxed {
    Box::pin(async move {
        let facts = Facts::of(&body, ctx.sync_version());
        post(ctx, body, facts).await;
    })
}

/// POSTs one body and relays the answer; a failed exchange answers every request in it.
/// Returns whether the server was reached.
fn post(
    ctx: Arc<Ctx>,
    body: Bytes,
    facts: Facts,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>> {
    Box::pin(async move {
        match ctx.upstream.post(body, facts.route.as_ref()).await {
            Ok(resp) => {
                ctx.upstream.learn_session(&resp);
                ctx.relay_response(resp, &facts.ids).await;
                true
            }
            Err(e) => {
                tracing::warn!("upstream request failed: {e}");
                for id in &facts.ids {
                    ctx.fail_request(id, format!("the server could not be reached: {e}"))
                        .await;
                }
                false
            }
        }
    })
}
