//! Where a stdio upstream's messages go. A stdio server has one output; HTTP has one stream per
//! POSTed request plus the session's GET stream. A response goes to the stream of the request it
//! answers (and ends it); a notification tied to a request by its progress token goes there too;
//! everything else — server requests (sampling, elicitation, roots), log and list-changed
//! notifications — goes to the GET stream, and waits in a bounded backlog until one is open.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::sse;
use crate::codec::{self, Facts, Id, Kind};

/// Messages waiting for a GET stream; beyond this the oldest are dropped (bounded memory).
const BACKLOG: usize = 256;
/// Chunks buffered per stream before the upstream reader waits for the client (backpressure
/// onto this session's own child only).
pub const STREAM_BUFFER: usize = 64;

/// One POST's answer stream.
pub struct Target {
    tx: mpsc::Sender<Bytes>,
    /// SSE events, or the bare JSON of the one response (the client accepts only JSON).
    sse: bool,
    /// Responses still owed on this stream (a batch owes several).
    remaining: AtomicUsize,
    /// Set once every response owed was handed to the stream.
    pub answered: Arc<AtomicBool>,
    /// When the request went to the server: a response's upstream latency counts from here.
    opened: Instant,
}

#[derive(Default)]
struct Inner {
    by_id: HashMap<Id, Arc<Target>>,
    tokens: HashMap<String, Id>,
    get: Option<mpsc::Sender<Bytes>>,
    backlog: VecDeque<Bytes>,
    /// A modern (2026-07-28) request's own process (`open_sole`): every message of the process
    /// that is not a response belongs to that request's stream — there is no GET stream in
    /// that era, and `subscriptions/listen` is answered by a stream of notifications only.
    sole: Option<Arc<Target>>,
}

#[derive(Default)]
pub struct Routes {
    inner: Mutex<Inner>,
}

/// A second GET stream for the same session is refused (one listener per session).
#[derive(Debug)]
pub struct Busy;

impl Routes {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Open the answer stream for the requests among `sent` (what was forwarded), before they
    /// are written to the server, so no answer can arrive first. `first` goes out before
    /// anything else (the proxy's own answers to refused elements of a batch).
    pub fn open_request(
        &self,
        sent: &[Facts],
        sse: bool,
        first: Option<&[u8]>,
    ) -> (mpsc::Receiver<Bytes>, Arc<AtomicBool>) {
        let (rx, target) = self.open(sent, sse, first);
        let answered = target.answered.clone();
        (rx, answered)
    }

    /// `open_request` for the one request a process serves (the modern era's process per
    /// request): notifications and anything else not answering it go on its stream too (SSE
    /// only; a JSON answer carries the response alone), until its response ends the stream.
    pub fn open_sole(&self, sent: &[Facts], sse: bool) -> (mpsc::Receiver<Bytes>, Arc<AtomicBool>) {
        let (rx, target) = self.open(sent, sse, None);
        let answered = target.answered.clone();
        self.lock().sole = Some(target);
        (rx, answered)
    }

    fn open(
        &self,
        sent: &[Facts],
        sse: bool,
        first: Option<&[u8]>,
    ) -> (mpsc::Receiver<Bytes>, Arc<Target>) {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        if let Some(f) = first {
            let chunk = if sse {
                sse::message(f)
            } else {
                Bytes::copy_from_slice(f)
            };
            // The channel is new and empty: this cannot be full.
            let _ = tx.try_send(chunk);
        }
        let requests: Vec<&Facts> = sent.iter().filter(|p| p.is_request()).collect();
        let target = Arc::new(Target {
            tx,
            sse,
            remaining: AtomicUsize::new(requests.len()),
            answered: Arc::new(AtomicBool::new(false)),
            opened: Instant::now(),
        });
        let mut inner = self.lock();
        for p in requests {
            if let Some(id) = &p.id {
                inner.by_id.insert(id.clone(), target.clone());
                if let Some(tok) = &p.progress_token {
                    inner.tokens.insert(tok.clone(), id.clone());
                }
            }
        }
        (rx, target)
    }

    /// The client cancelled `id` (or went away): no answer will come, end its stream.
    pub fn forget(&self, id: &Id) {
        let mut inner = self.lock();
        inner.by_id.remove(id);
        inner.tokens.retain(|_, v| v != id);
    }

    /// The session's GET stream. Messages that waited for it are sent first.
    pub fn open_get(&self) -> Result<mpsc::Receiver<Bytes>, Busy> {
        let mut inner = self.lock();
        if inner.get.as_ref().is_some_and(|g| !g.is_closed()) {
            return Err(Busy);
        }
        // Room for the whole backlog, so flushing it here never blocks.
        let (tx, rx) = mpsc::channel(STREAM_BUFFER + BACKLOG);
        while let Some(b) = inner.backlog.pop_front() {
            let _ = tx.try_send(b);
        }
        inner.get = Some(tx);
        Ok(rx)
    }

    /// Hand one server message to its stream. Waits while that stream's buffer is full (the
    /// session's reader waits, never a worker: backpressure onto this session's own child only).
    /// Returns, for a response, how long its request waited for it (upstream latency).
    pub async fn deliver(&self, bytes: &[u8]) -> Option<Duration> {
        match self.try_deliver(bytes) {
            Ok(took) => took,
            Err(pending) => pending.wait(self).await,
        }
    }

    /// `deliver` without the wait, callable from any thread (the blocking pool, where the
    /// message was judged: the client's stream is woken from there, no hop through a worker).
    /// `Err`: that stream's buffer is full; `Pending::wait` finishes the delivery.
    pub fn try_deliver(&self, bytes: &[u8]) -> Result<Option<Duration>, Pending> {
        let Some((tx, chunk, took)) = self.route(bytes) else {
            return Ok(None);
        };
        match tx.try_send(chunk) {
            Ok(()) => Ok(took),
            Err(mpsc::error::TrySendError::Full(chunk)) => Err(Pending { tx, chunk, took }),
            Err(mpsc::error::TrySendError::Closed(chunk)) => {
                self.stream_gone(&tx, chunk);
                Ok(took)
            }
        }
    }

    /// A stream went away before its chunk was taken: the GET stream's messages are kept for
    /// the next one; a request's stream needs nothing more.
    fn stream_gone(&self, tx: &mpsc::Sender<Bytes>, chunk: Bytes) {
        let mut inner = self.lock();
        if inner.get.as_ref().is_some_and(|g| g.same_channel(tx)) {
            inner.get = None;
            push_backlog(&mut inner, chunk);
        }
    }

    /// Where one server message goes, decided under the lock (which is never held across the
    /// wait for the stream): its stream, the chunk for it, and a response's upstream latency.
    /// `None`: it went to the backlog, or nowhere.
    fn route(&self, bytes: &[u8]) -> Option<(mpsc::Sender<Bytes>, Bytes, Option<Duration>)> {
        let peek = codec::facts(bytes);
        let mut inner = self.lock();
        let pick = self.pick(&mut inner, peek.as_ref());
        tracing::debug!(
            "route {:?} {:?} → {}",
            peek.as_ref().and_then(|p| p.method.as_deref()),
            peek.as_ref().and_then(|p| p.id.as_ref()),
            pick.label()
        );
        match pick {
            Pick::Target(t) => {
                let took = peek
                    .as_ref()
                    .is_some_and(Facts::is_response)
                    .then(|| t.opened.elapsed());
                let chunk = if t.sse {
                    sse::message(bytes)
                } else {
                    Bytes::copy_from_slice(bytes)
                };
                Some((t.tx.clone(), chunk, took))
            }
            Pick::Get(tx) => Some((tx, sse::message(bytes), None)),
            Pick::Backlog => {
                push_backlog(&mut inner, sse::message(bytes));
                None
            }
            Pick::Nowhere => None,
        }
    }

    fn pick(&self, inner: &mut Inner, peek: Option<&Facts>) -> Pick {
        let Some(p) = peek else {
            return Pick::Nowhere;
        };
        let related = match (p.kind, &p.id, &p.progress_token) {
            (Kind::Response | Kind::ErrorResponse, Some(id), _) => {
                let Some(t) = inner.by_id.remove(id) else {
                    // Its stream is gone (cancelled, client left): a response never goes on
                    // the GET stream.
                    return Pick::Nowhere;
                };
                inner.tokens.retain(|_, v| v != id);
                if t.remaining.fetch_sub(1, Ordering::AcqRel) <= 1 {
                    t.answered.store(true, Ordering::Release);
                    // Answered: the stream ends once this last chunk is sent.
                    if inner.sole.as_ref().is_some_and(|s| Arc::ptr_eq(s, &t)) {
                        inner.sole = None;
                    }
                }
                return Pick::Target(t);
            }
            // A JSON answer carries only the response: related notifications take the GET stream.
            (Kind::Notification, _, Some(tok)) => inner
                .tokens
                .get(tok)
                .and_then(|id| inner.by_id.get(id))
                .filter(|t| t.sse)
                .cloned(),
            _ => None,
        };
        if let Some(t) = related.filter(|t| !t.tx.is_closed()) {
            return Pick::Target(t);
        }
        if let Some(t) = &inner.sole {
            return if t.sse && !t.tx.is_closed() {
                Pick::Target(t.clone())
            } else {
                Pick::Nowhere
            };
        }
        match &inner.get {
            Some(g) if !g.is_closed() => Pick::Get(g.clone()),
            _ => Pick::Backlog,
        }
    }

    /// The upstream is gone: end every stream.
    pub fn close_all(&self) {
        let mut inner = self.lock();
        inner.by_id.clear();
        inner.tokens.clear();
        inner.get = None;
        inner.backlog.clear();
        inner.sole = None;
    }
}

/// A message routed to a stream whose buffer was full.
pub struct Pending {
    tx: mpsc::Sender<Bytes>,
    chunk: Bytes,
    took: Option<Duration>,
}

impl Pending {
    /// Wait for room on the stream (the client reads), then hand the message over.
    pub async fn wait(self, routes: &Routes) -> Option<Duration> {
        if let Err(mpsc::error::SendError(chunk)) = self.tx.send(self.chunk).await {
            routes.stream_gone(&self.tx, chunk);
        }
        self.took
    }
}

enum Pick {
    Target(Arc<Target>),
    Get(mpsc::Sender<Bytes>),
    Backlog,
    Nowhere,
}

impl Pick {
    fn label(&self) -> &'static str {
        match self {
            Pick::Target(_) => "request stream",
            Pick::Get(_) => "GET stream",
            Pick::Backlog => "backlog",
            Pick::Nowhere => "nowhere",
        }
    }
}

fn push_backlog(inner: &mut Inner, chunk: Bytes) {
    if inner.backlog.len() >= BACKLOG {
        inner.backlog.pop_front();
        tracing::warn!("no GET stream is reading this session's server messages: oldest dropped");
    }
    inner.backlog.push_back(chunk);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(bytes: &[u8]) -> Facts {
        codec::facts(bytes).unwrap()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn responses_and_progress_follow_their_request() {
        let r = Routes::default();
        let req = p(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"_meta":{"progressToken":5}}}"#);
        let (mut rx, answered) = r.open_request(&[req], true, None);
        r.deliver(br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":5,"progress":1}}"#).await;
        r.deliver(br#"{"jsonrpc":"2.0","id":9,"method":"sampling/createMessage","params":{}}"#)
            .await;
        r.deliver(br#"{"jsonrpc":"2.0","id":1,"result":{}}"#).await;
        assert!(answered.load(Ordering::Acquire));
        let first = rx.try_recv().unwrap();
        assert!(first.starts_with(
            b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\""
        ));
        assert!(rx.try_recv().unwrap().windows(6).any(|w| w == b"result"));
        assert!(rx.try_recv().is_err(), "stream ended after the response");
        // The server request waited for a GET stream.
        let mut get = r.open_get().unwrap();
        assert!(get.try_recv().unwrap().windows(8).any(|w| w == b"sampling"));
        assert!(r.open_get().is_err());
        drop(get);
        assert!(r.open_get().is_ok());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_sole_request_takes_every_notification_until_its_response() {
        let r = Routes::default();
        let listen = p(br#"{"jsonrpc":"2.0","id":7,"method":"subscriptions/listen","params":{}}"#);
        let (mut rx, answered) = r.open_sole(&[listen], true);
        r.deliver(
            br#"{"jsonrpc":"2.0","method":"notifications/subscriptions/acknowledged","params":{}}"#,
        )
        .await;
        r.deliver(br#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed","params":{}}"#)
            .await;
        assert!(rx
            .try_recv()
            .unwrap()
            .windows(12)
            .any(|w| w == b"acknowledged"));
        assert!(rx
            .try_recv()
            .unwrap()
            .windows(12)
            .any(|w| w == b"list_changed"));
        r.deliver(br#"{"jsonrpc":"2.0","id":7,"result":{}}"#).await;
        assert!(answered.load(Ordering::Acquire));
        assert!(rx.try_recv().unwrap().windows(6).any(|w| w == b"result"));
        // Answered: nothing else reaches the ended stream, which is closed.
        r.deliver(br#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed","params":{}}"#)
            .await;
        assert!(matches!(
            rx.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
    }

    /// A full stream is not waited for by `try_deliver` (it runs on the blocking pool): the
    /// message comes back as `Pending` and is handed over, in order, once the client reads.
    #[tokio::test(flavor = "current_thread")]
    async fn a_full_stream_leaves_the_message_pending() {
        let r = Routes::default();
        let mut get = r.open_get().unwrap();
        let note = |i: usize| {
            format!(r#"{{"jsonrpc":"2.0","method":"notifications/message","params":{{"n":{i}}}}}"#)
        };
        let room = STREAM_BUFFER + BACKLOG;
        for i in 0..room {
            assert!(r.try_deliver(note(i).as_bytes()).is_ok());
        }
        let Err(pending) = r.try_deliver(note(room).as_bytes()) else {
            panic!("the stream is full");
        };
        assert!(get
            .recv()
            .await
            .unwrap()
            .windows(5)
            .any(|w| w == b"\"n\":0"));
        pending.wait(&r).await;
        let mut last = None;
        while let Ok(chunk) = get.try_recv() {
            last = Some(chunk);
        }
        let last = String::from_utf8_lossy(&last.unwrap()).into_owned();
        assert!(last.contains(&format!(r#""n":{room}"#)), "{last}");
    }
}
