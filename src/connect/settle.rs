//! Acting on one pipeline verdict in `connect`, the way `transport/stdio.rs` does for `wrap`:
//! the record written once per message (durable first for high-risk calls, refused when it
//! cannot be), holds waited out off the runtime's workers and then forwarded or answered,
//! sampling answered by the backend, the proxy's answers sent back to whoever sent the message.
//! What passes goes back to the caller, which knows how to send it on (a POST for the client's
//! messages, a stdout line for the server's).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::relay::Ctx;
use crate::audit::Direction;
use crate::pipeline::{Outcome, Verdict};

/// A boxed future: the POST path relays answers, which settle verdicts, which may POST again.
pub type Boxed = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

impl Ctx {
    /// Acts on `outcome` for a message that came from `direction`'s sender. Returns the bytes
    /// to pass on to its peer (the original `line` when the verdict is `Forward`).
    pub async fn settle(
        self: &Arc<Self>,
        outcome: Outcome,
        line: Bytes,
        direction: Direction,
        started: Instant,
    ) -> Option<Bytes> {
        let Outcome { verdict, record } = outcome;
        match verdict {
            Verdict::Hold(held) => {
                self.pipeline.finish(record, started);
                // Asked through the client: the proxy's own `elicitation/create` goes out now
                // (its answer is consumed by `from_client`, never forwarded).
                if let Some(ask) = &held.ask {
                    self.emit(ask.clone()).await;
                }
                // The wait blocks: its own blocking thread, other messages keep flowing.
                let ctx = Arc::clone(self);
                tokio::spawn(async move {
                    let p = Arc::clone(&ctx.pipeline);
                    let resolved = tokio::task::spawn_blocking(move || {
                        let resolution = p.wait_for(&held);
                        let cancel = p.ask_abandoned(&held, &resolution);
                        (cancel, p.resolve_hold(*held, resolution))
                    })
                    .await;
                    let Ok((cancel, outcome)) = resolved else {
                        return;
                    };
                    if let Some(cancel) = cancel {
                        ctx.emit(cancel).await;
                    }
                    let passed = ctx
                        .settle_now(outcome, Bytes::new(), direction, Instant::now())
                        .await;
                    if let Some(bytes) = passed {
                        ctx.pass_on(bytes, direction).await;
                    }
                });
                None
            }
            Verdict::Sample(job) => {
                // The backend takes seconds: a task of its own; the answer goes to the server.
                let ctx = Arc::clone(self);
                tokio::spawn(async move {
                    let p = Arc::clone(&ctx.pipeline);
                    let started = job.started;
                    let resolved =
                        tokio::task::spawn_blocking(move || p.run_sampling(*job, record)).await;
                    if let Ok(outcome) = resolved {
                        let passed = ctx
                            .settle_now(outcome, Bytes::new(), direction, started)
                            .await;
                        if let Some(bytes) = passed {
                            ctx.pass_on(bytes, direction).await;
                        }
                    }
                });
                None
            }
            verdict => {
                self.settle_now(Outcome { verdict, record }, line, direction, started)
                    .await
            }
        }
    }

    /// A verdict that needs no waiting. A record marked durable (high-risk calls, or any call
    /// while the audit sink fails) is on disk before the message is passed on; when it cannot
    /// be written the message is refused (fail closed).
    async fn settle_now(
        self: &Arc<Self>,
        outcome: Outcome,
        line: Bytes,
        direction: Direction,
        started: Instant,
    ) -> Option<Bytes> {
        let Outcome { verdict, record } = outcome;
        let forwards = matches!(
            verdict,
            Verdict::Forward | Verdict::Rewrite(_) | Verdict::Split { .. }
        );
        if record.durable && forwards {
            let id = record.id.clone();
            let p = Arc::clone(&self.pipeline);
            // fsync: off the runtime's workers.
            let written =
                tokio::task::spawn_blocking(move || p.finish_durable(record, started)).await;
            let failed = match written {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(e) => Some(e.to_string()),
            };
            if let Some(e) = failed {
                eprintln!("mcp-warden connect: audit write failed, refusing the call: {e}");
                if let Some(answer) = self.pipeline.audit_failure_answer(id.as_deref()) {
                    self.answer_sender(answer, direction).await;
                }
                return None;
            }
            return self.act(verdict, line, direction).await;
        }
        let passed = self.act(verdict, line, direction).await;
        self.pipeline.finish(record, started);
        passed
    }

    async fn act(
        self: &Arc<Self>,
        verdict: Verdict,
        line: Bytes,
        direction: Direction,
    ) -> Option<Bytes> {
        match verdict {
            Verdict::Forward => Some(line),
            Verdict::Rewrite(bytes) => Some(Bytes::from(bytes)),
            Verdict::Answer(bytes) => {
                self.answer_sender(bytes, direction).await;
                None
            }
            Verdict::Split { forward, answer } => {
                self.answer_sender(answer, direction).await;
                Some(Bytes::from(forward))
            }
            Verdict::Drop | Verdict::Hold(_) | Verdict::Sample(_) => None,
        }
    }

    /// The proxy's answer goes back to the message's sender: the client on stdout; the server
    /// in a POST of its own (a refused server request, the next page of the proxy's listing),
    /// whose HTTP answer is relayed like any other.
    async fn answer_sender(self: &Arc<Self>, bytes: Vec<u8>, direction: Direction) {
        match direction {
            Direction::ClientToServer => self.emit(bytes).await,
            _ => {
                tokio::spawn(super::client::send(Arc::clone(self), Bytes::from(bytes)));
            }
        }
    }

    /// What passed goes on to the peer: the server (POST) or the client (stdout).
    async fn pass_on(self: &Arc<Self>, bytes: Bytes, direction: Direction) {
        match direction {
            Direction::ClientToServer => super::client::send(Arc::clone(self), bytes).await,
            _ => self.emit(bytes.to_vec()).await,
        }
    }
}
