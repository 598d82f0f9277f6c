//! Bodies: reading a request body under the size cap, CPU work over a large one off the async
//! workers (`cpu`), and the one response body type — a whole buffer, or a stream fed through a
//! channel (SSE) that emits keep-alive comments while idle and runs a hook when it is dropped
//! (the client went away, or the stream ended).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};

use crate::pipeline::INLINE_MAX;

/// Idle SSE streams get a comment this often, so that intermediaries and clients with read
/// timeouts do not cut a stream that is merely quiet.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
const KEEP_ALIVE_COMMENT: &[u8] = b": keep-alive\n\n";

type Hook = Box<dyn FnOnce() + Send>;

/// Run CPU work over a body of `len` bytes: inline when small, on the blocking pool when large.
pub async fn cpu<T: Send + 'static>(len: usize, f: impl FnOnce() -> T + Send + 'static) -> T {
    if len <= INLINE_MAX {
        return f();
    }
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        // The work panicked: the same as if it had panicked here.
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// The response body of every answer `serve` gives.
pub struct OutBody {
    inner: Inner,
    on_drop: Vec<Hook>,
}

enum Inner {
    Full(Option<Bytes>),
    Channel {
        rx: mpsc::Receiver<Bytes>,
        keep_alive: Option<Pin<Box<Sleep>>>,
    },
}

impl OutBody {
    pub fn full(bytes: impl Into<Bytes>) -> OutBody {
        let b: Bytes = bytes.into();
        OutBody {
            inner: Inner::Full((!b.is_empty()).then_some(b)),
            on_drop: Vec::new(),
        }
    }

    pub fn empty() -> OutBody {
        OutBody::full(Bytes::new())
    }

    /// A stream of chunks as the sender produces them; with `keep_alive`, an idle stream gets
    /// an SSE comment every [`KEEP_ALIVE`].
    pub fn channel(rx: mpsc::Receiver<Bytes>, keep_alive: bool) -> OutBody {
        OutBody {
            inner: Inner::Channel {
                rx,
                keep_alive: keep_alive.then(|| Box::pin(tokio::time::sleep(KEEP_ALIVE))),
            },
            on_drop: Vec::new(),
        }
    }

    /// Run `f` when the body is dropped: after the last chunk was sent, or when the client
    /// disconnected before that.
    pub fn on_drop(mut self, f: impl FnOnce() + Send + 'static) -> OutBody {
        self.on_drop.push(Box::new(f));
        self
    }
}

impl Drop for OutBody {
    fn drop(&mut self) {
        for hook in self.on_drop.drain(..) {
            hook();
        }
    }
}

impl Body for OutBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        match &mut this.inner {
            Inner::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Inner::Channel { rx, keep_alive } => match rx.poll_recv(cx) {
                Poll::Ready(Some(chunk)) => {
                    if let Some(sleep) = keep_alive {
                        sleep.as_mut().reset(Instant::now() + KEEP_ALIVE);
                    }
                    Poll::Ready(Some(Ok(Frame::data(chunk))))
                }
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => {
                    if let Some(sleep) = keep_alive {
                        if sleep.as_mut().poll(cx).is_ready() {
                            sleep.as_mut().reset(Instant::now() + KEEP_ALIVE);
                            let comment = Bytes::from_static(KEEP_ALIVE_COMMENT);
                            return Poll::Ready(Some(Ok(Frame::data(comment))));
                        }
                    }
                    Poll::Pending
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.inner, Inner::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Inner::Channel { .. } => SizeHint::default(),
        }
    }
}

/// Why a request body could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// More than the cap arrived; `seen` bytes were read before giving up.
    TooLarge { seen: u64 },
    /// The connection failed.
    Broken(String),
    /// The whole body did not arrive within the time allowed (slow-body denial of service).
    TimedOut,
}

/// Read a whole body within `timeout`, giving up as soon as it exceeds `max` bytes (chunked
/// bodies have no length up front, so the cap is enforced while reading).
pub async fn read_capped(
    body: Incoming,
    max: usize,
    timeout: Duration,
) -> Result<Bytes, ReadError> {
    match tokio::time::timeout(timeout, read_inner(body, max)).await {
        Ok(r) => r,
        Err(_) => Err(ReadError::TimedOut),
    }
}

async fn read_inner(mut body: Incoming, max: usize) -> Result<Bytes, ReadError> {
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ReadError::Broken(e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > max {
                return Err(ReadError::TooLarge {
                    seen: (buf.len() + data.len()) as u64,
                });
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A large body's parse runs on the blocking pool, not on the worker that accepts
    /// connections; a small one stays inline (a thread hop would cost more than the parse).
    #[tokio::test(flavor = "current_thread")]
    async fn large_bodies_are_judged_off_the_async_worker() {
        let worker = std::thread::current().id();
        let small = cpu(INLINE_MAX, || std::thread::current().id()).await;
        let large = cpu(INLINE_MAX + 1, || std::thread::current().id()).await;
        assert_eq!(small, worker);
        assert_ne!(large, worker);
    }
}
