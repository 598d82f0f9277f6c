//! Where `connect` acts on what `pipeline::deliver` settled, as `transport/stdio.rs` does for
//! `wrap`: `deliver` seals the record (durable ones synced first, off the runtime's workers,
//! refused when they cannot be) and says what goes on and what goes back; this file only knows
//! where those go in `connect`. Holds and sampling run on tasks of their own (other messages keep
//! flowing), their outcome settled again here. What passes goes back to the caller, which knows
//! how to send it on (a POST for the client's messages, a stdout line for the server's).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::relay::Ctx;
use crate::audit::Direction;
use crate::pipeline::deliver::{self, Onward, Settled};
use crate::pipeline::Outcome;

/// A boxed future: the POST path relays answers, which settle verdicts, which may POST again.
pub type Boxed = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

impl Ctx {
    /// Acts on `outcome` for a message that came from `direction`'s sender. Returns the bytes
    /// to pass on to its peer (the original `line` when the verdict is `Forward`); the record is
    /// written when this returns (or was on disk before, when durable).
    pub async fn settle(
        self: &Arc<Self>,
        outcome: Outcome,
        line: Bytes,
        direction: Direction,
        started: Instant,
    ) -> Option<Bytes> {
        match deliver::settle_async(&self.pipeline, outcome, started).await {
            Settled::Act(d) => {
                if let Some(back) = d.back {
                    self.answer_sender(back, direction).await;
                }
                match d.onward? {
                    Onward::Original => Some(line),
                    Onward::Bytes(b) => Some(Bytes::from(b)),
                }
            }
            Settled::Hold(held) => {
                // Asked through the client: the proxy's own `elicitation/create` goes out now
                // (its answer is consumed by `from_client`, never forwarded).
                if let Some(ask) = &held.ask {
                    self.emit(ask.clone()).await;
                }
                let ctx = Arc::clone(self);
                tokio::spawn(async move {
                    let waited = deliver::wait_hold_async(&ctx.pipeline, *held).await;
                    if let Some(withdraw) = waited.withdraw {
                        ctx.emit(withdraw).await;
                    }
                    ctx.settle_later(waited.outcome, direction, Instant::now())
                        .await;
                });
                None
            }
            Settled::Sample(job, record) => {
                // The backend takes seconds: a task of its own; the answer goes to the server.
                let ctx = Arc::clone(self);
                tokio::spawn(async move {
                    let ran = deliver::run_sample_async(&ctx.pipeline, *job, record).await;
                    if let Some((outcome, started)) = ran {
                        ctx.settle_later(outcome, direction, started).await;
                    }
                });
                None
            }
        }
    }

    /// The outcome of a wait (a hold's decision, the backend's answer), settled and passed on.
    fn settle_later(
        self: Arc<Self>,
        outcome: Outcome,
        direction: Direction,
        started: Instant,
    ) -> Boxed {
        Box::pin(async move {
            if let Some(bytes) = self.settle(outcome, Bytes::new(), direction, started).await {
                self.pass_on(bytes, direction).await;
            }
        })
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
