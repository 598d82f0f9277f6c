//! Where a stdio upstream's messages go. A stdio server has one output; HTTP has one stream per
//! POSTed request plus the session's GET stream. A response goes to the stream of the request it
//! answers (and ends it); a notification tied to a request by its progress token goes there too;
//! everything else — server requests (sampling, elicitation, roots), log and list-changed
//! notifications — goes to the GET stream, and waits in a bounded backlog until one is open.
//! Which request a message belongs to is the pipeline's `Routing`, read from its one table of
//! requests in flight: this module keeps streams, not ids.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::sse;
use crate::codec::Id;
use crate::pipeline::{Pipeline, Routing};
use crate::session::ReplyTo;

/// Messages waiting for a GET stream; beyond this the oldest are dropped (bounded memory).
const BACKLOG: usize = 256;
/// Chunks buffered per stream before the upstream reader waits for the client (backpressure
/// onto this session's own child only).
pub const STREAM_BUFFER: usize = 64;

/// One POST's answer stream. The pipeline keeps it with each request it answers
/// (`Pipeline::reply_to`) and hands it back in the answer's `Routing`: no id table here.
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

/// An opened answer stream: its receiving end, and whether everything owed was answered.
pub type Opened = (mpsc::Receiver<Bytes>, Arc<AtomicBool>);

impl Routes {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Open the answer stream for `asked` (the requests the pipeline let through), before they
    /// are written to the server, so no answer can arrive first. `first` goes out before
    /// anything else (the proxy's own answers to refused elements of a batch). `None`: none of
    /// them awaits an answer any more.
    pub fn open_request(
        &self,
        p: &Pipeline,
        asked: &[Id],
        sse: bool,
        first: Option<&[u8]>,
    ) -> Option<Opened> {
        let (rx, target) = open(p, asked, sse, first)?;
        let answered = target.answered.clone();
        Some((rx, answered))
    }

    /// `open_request` for the one request a process serves (the modern era's process per
    /// request): notifications and anything else not answering it go on its stream too (SSE
    /// only; a JSON answer carries the response alone), until its response ends the stream.
    pub fn open_sole(&self, p: &Pipeline, asked: &[Id], sse: bool) -> Option<Opened> {
        let (rx, target) = open(p, asked, sse, None)?;
        let answered = target.answered.clone();
        self.lock().sole = Some(target);
        Some((rx, answered))
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

    /// Hand one server message to its stream (`routing`: the pipeline's, from judging it).
    /// Waits while that stream's buffer is full (the session's reader waits, never a worker:
    /// backpressure onto this session's own child only). Returns, for a response, how long its
    /// request waited for it (upstream latency).
    pub async fn deliver(&self, routing: &Routing, bytes: &[u8]) -> Option<Duration> {
        match self.try_deliver(routing, bytes) {
            Ok(took) => took,
            Err(pending) => pending.wait(self).await,
        }
    }

    /// `deliver` without the wait, callable from any thread (the blocking pool, where the
    /// message was judged: the client's stream is woken from there, no hop through a worker).
    /// `Err`: that stream's buffer is full; `Pending::wait` finishes the delivery.
    pub fn try_deliver(
        &self,
        routing: &Routing,
        bytes: &[u8],
    ) -> Result<Option<Duration>, Pending> {
        let Some((tx, chunk, took)) = self.route(routing, bytes) else {
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
    fn route(
        &self,
        routing: &Routing,
        bytes: &[u8],
    ) -> Option<(mpsc::Sender<Bytes>, Bytes, Option<Duration>)> {
        let mut inner = self.lock();
        let pick = self.pick(&mut inner, routing);
        tracing::debug!("route {routing:?} → {}", pick.label());
        match pick {
            Pick::Target(t, response) => {
                let took = response.then(|| t.opened.elapsed());
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

    fn pick(&self, inner: &mut Inner, routing: &Routing) -> Pick {
        let related = match routing {
            Routing::Answers(to) => {
                let Some(t) = to.as_ref().and_then(ReplyTo::get::<Target>) else {
                    // Its stream is gone (cancelled, client left), or it never had one: a
                    // response never goes on the GET stream.
                    return Pick::Nowhere;
                };
                owed_one(inner, &t);
                return Pick::Target(t, true);
            }
            // A JSON answer carries only the response: related notifications take the GET stream.
            Routing::About(to) => to.get::<Target>().filter(|t| t.sse),
            // A server's batch answers a client's batch (one stream): it goes whole to the
            // stream of its first answer, each answer counted; without answers, as its first
            // progress would.
            Routing::Batch(parts) => {
                let mut first = None;
                for to in parts.iter().filter_map(|p| match p {
                    Routing::Answers(Some(to)) => to.get::<Target>(),
                    _ => None,
                }) {
                    owed_one(inner, &to);
                    first.get_or_insert(to);
                }
                if let Some(t) = first {
                    return Pick::Target(t, true);
                }
                parts
                    .iter()
                    .find_map(|p| match p {
                        Routing::About(to) => to.get::<Target>(),
                        _ => None,
                    })
                    .filter(|t| t.sse)
            }
            Routing::Session | Routing::Asked(_) => None,
        };
        if let Some(t) = related.filter(|t| !t.tx.is_closed()) {
            return Pick::Target(t, false);
        }
        if let Some(t) = &inner.sole {
            return if t.sse && !t.tx.is_closed() {
                Pick::Target(t.clone(), false)
            } else {
                Pick::Nowhere
            };
        }
        match &inner.get {
            Some(g) if !g.is_closed() => Pick::Get(g.clone()),
            _ => Pick::Backlog,
        }
    }

    /// The upstream is gone: end every stream not tied to a request (those end as their
    /// requests are answered, `Pipeline::abandon_pending`).
    pub fn close_all(&self) {
        let mut inner = self.lock();
        inner.get = None;
        inner.backlog.clear();
        inner.sole = None;
    }
}

/// One of the answers `t` is owed was handed to it: the last one ends the stream.
fn owed_one(inner: &mut Inner, t: &Arc<Target>) {
    if t.remaining.fetch_sub(1, Ordering::AcqRel) <= 1 {
        t.answered.store(true, Ordering::Release);
        // Answered: the stream ends once this last chunk is sent.
        if inner.sole.as_ref().is_some_and(|s| Arc::ptr_eq(s, t)) {
            inner.sole = None;
        }
    }
}

/// A new answer stream, attached to the requests among `asked` that still await an answer.
fn open(
    p: &Pipeline,
    asked: &[Id],
    sse: bool,
    first: Option<&[u8]>,
) -> Option<(mpsc::Receiver<Bytes>, Arc<Target>)> {
    let (tx, rx) = mpsc::channel(STREAM_BUFFER);
    let target = Arc::new(Target {
        tx,
        sse,
        remaining: AtomicUsize::new(0),
        answered: Arc::new(AtomicBool::new(false)),
        opened: Instant::now(),
    });
    // Not yet written to the server: no answer can use the stream before `remaining` is set.
    let owed = p.reply_to(asked, &ReplyTo::new(target.clone()));
    if owed == 0 {
        return None;
    }
    target.remaining.store(owed, Ordering::Release);
    if let Some(f) = first {
        let chunk = if sse {
            sse::message(f)
        } else {
            Bytes::copy_from_slice(f)
        };
        // The channel is new and empty: this cannot be full.
        let _ = target.tx.try_send(chunk);
    }
    Some((rx, target))
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
    /// A request's stream; `true` for the response it is owed.
    Target(Arc<Target>, bool),
    Get(mpsc::Sender<Bytes>),
    Backlog,
    Nowhere,
}

impl Pick {
    fn label(&self) -> &'static str {
        match self {
            Pick::Target(..) => "request stream",
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
    use crate::audit::{AuditLog, Fsync};
    use crate::pipeline::Verdict;

    /// A session's pipeline (the one id table) and its streams.
    fn session() -> (Arc<Pipeline>, Routes, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open_file(&dir.path().join("a.jsonl"), Fsync::Never).unwrap();
        let p = Pipeline::new("t", crate::codec::Limits::default(), log, Arc::default());
        (Arc::new(p), Routes::default(), dir)
    }

    /// The client's message judged: the ids it asked (what a POST hands `open_request`).
    fn ask(p: &Pipeline, line: &[u8]) -> Vec<Id> {
        match p.from_client(line).routing {
            Routing::Asked(ids) => ids,
            other => panic!("{other:?}"),
        }
    }

    /// The server's message judged and delivered as `serve`'s stdio reader does.
    async fn from_server(p: &Pipeline, r: &Routes, line: &[u8]) {
        let o = p.from_server(line);
        assert!(matches!(o.verdict, Verdict::Forward), "{:?}", o.verdict);
        r.deliver(&o.routing, line).await;
    }

    fn has(chunk: &Bytes, needle: &str) -> bool {
        String::from_utf8_lossy(chunk).contains(needle)
    }

    #[tokio::test(flavor = "current_thread")]
    async fn responses_and_progress_follow_their_request() {
        let (p, r, _dir) = session();
        let asked = ask(
            &p,
            br#"{"jsonrpc":"2.0","id":1,"method":"resources/list","params":{"_meta":{"progressToken":5}}}"#,
        );
        assert_eq!(asked, vec![Id::Num("1".into())]);
        let (mut rx, answered) = r.open_request(&p, &asked, true, None).unwrap();
        from_server(&p, &r, br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":5,"progress":1}}"#).await;
        from_server(&p, &r, br#"{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"x"}}"#).await;
        let answer = br#"{"jsonrpc":"2.0","id":1,"result":{"resources":[]}}"#;
        from_server(&p, &r, answer).await;
        assert!(answered.load(Ordering::Acquire));
        let first = rx.try_recv().unwrap();
        assert!(first.starts_with(
            b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\""
        ));
        assert!(has(&rx.try_recv().unwrap(), "resources"));
        // Answered: the request left the table, and with it the last sender of its stream.
        assert!(matches!(
            rx.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
        // Progress under the same token now belongs to no request: the session's stream.
        from_server(&p, &r, br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":5,"progress":2}}"#).await;
        // The log message waited for a GET stream, then the late progress.
        let mut get = r.open_get().unwrap();
        assert!(has(&get.try_recv().unwrap(), "notifications/message"));
        assert!(has(&get.try_recv().unwrap(), "\"progress\":2"));
        assert!(r.open_get().is_err());
        drop(get);
        assert!(r.open_get().is_ok());
    }

    /// A batch owes one stream several answers; the stream ends after the last.
    #[tokio::test(flavor = "current_thread")]
    async fn a_batch_stream_ends_after_its_last_answer() {
        let (p, r, _dir) = session();
        let a = ask(
            &p,
            br#"{"jsonrpc":"2.0","id":"a","method":"resources/list"}"#,
        );
        let b = ask(&p, br#"{"jsonrpc":"2.0","id":"b","method":"prompts/list"}"#);
        let both = [a, b].concat();
        let (mut rx, answered) = r.open_request(&p, &both, false, None).unwrap();
        from_server(
            &p,
            &r,
            br#"{"jsonrpc":"2.0","id":"b","result":{"prompts":[]}}"#,
        )
        .await;
        assert!(!answered.load(Ordering::Acquire));
        from_server(
            &p,
            &r,
            br#"{"jsonrpc":"2.0","id":"a","result":{"resources":[]}}"#,
        )
        .await;
        assert!(answered.load(Ordering::Acquire));
        assert!(has(&rx.try_recv().unwrap(), "prompts"));
        assert!(has(&rx.try_recv().unwrap(), "resources"));
        // Attached once: the same ids cannot be given a second stream.
        assert!(r.open_request(&p, &both, false, None).is_none());
    }

    /// The client cancelled: its stream ends at once, and the server's late answer goes
    /// nowhere (never on the session's stream).
    #[tokio::test(flavor = "current_thread")]
    async fn a_cancelled_request_ends_its_stream_and_its_answer_goes_nowhere() {
        let (p, r, _dir) = session();
        let asked = ask(&p, br#"{"jsonrpc":"2.0","id":3,"method":"resources/list"}"#);
        let (mut rx, answered) = r.open_request(&p, &asked, true, None).unwrap();
        let cancel = p.from_client(
            br#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":3}}"#,
        );
        assert!(matches!(cancel.verdict, Verdict::Forward));
        assert!(matches!(
            rx.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
        let late = p.from_server(br#"{"jsonrpc":"2.0","id":3,"result":{"resources":[]}}"#);
        assert!(matches!(late.routing, Routing::Answers(None)));
        r.deliver(&late.routing, b"{}").await;
        assert!(!answered.load(Ordering::Acquire));
        let mut get = r.open_get().unwrap();
        assert!(
            get.try_recv().is_err(),
            "a response never takes the GET stream"
        );
    }

    /// Requests the server's input never took leave the table: an answer to them later is one
    /// nobody asked for.
    #[test]
    fn unsent_requests_leave_the_table() {
        let (p, _r, _dir) = session();
        let asked = ask(&p, br#"{"jsonrpc":"2.0","id":4,"method":"resources/list"}"#);
        p.unsent(&asked);
        let late = p.from_server(br#"{"jsonrpc":"2.0","id":4,"result":{"resources":[]}}"#);
        assert!(matches!(late.verdict, Verdict::Drop));
        assert_eq!(late.record.event, "rpc.unsolicited_response");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_sole_request_takes_every_notification_until_its_response() {
        let (p, r, _dir) = session();
        let asked = ask(
            &p,
            br#"{"jsonrpc":"2.0","id":7,"method":"resources/list","params":{}}"#,
        );
        let (mut rx, answered) = r.open_sole(&p, &asked, true).unwrap();
        r.deliver(
            &Routing::Session,
            br#"{"jsonrpc":"2.0","method":"notifications/subscriptions/acknowledged","params":{}}"#,
        )
        .await;
        r.deliver(
            &Routing::Session,
            br#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed","params":{}}"#,
        )
        .await;
        assert!(has(&rx.try_recv().unwrap(), "acknowledged"));
        assert!(has(&rx.try_recv().unwrap(), "list_changed"));
        let answer = br#"{"jsonrpc":"2.0","id":7,"result":{"resources":[]}}"#;
        from_server(&p, &r, answer).await;
        assert!(answered.load(Ordering::Acquire));
        assert!(has(&rx.try_recv().unwrap(), "result"));
        // Answered: nothing else reaches the ended stream, which is closed.
        r.deliver(
            &Routing::Session,
            br#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed","params":{}}"#,
        )
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
            assert!(r.try_deliver(&Routing::Session, note(i).as_bytes()).is_ok());
        }
        let Err(pending) = r.try_deliver(&Routing::Session, note(room).as_bytes()) else {
            panic!("the stream is full");
        };
        assert!(has(&get.recv().await.unwrap(), "\"n\":0"));
        pending.wait(&r).await;
        let mut last = None;
        while let Ok(chunk) = get.try_recv() {
            last = Some(chunk);
        }
        let last = String::from_utf8_lossy(&last.unwrap()).into_owned();
        assert!(last.contains(&format!(r#""n":{room}"#)), "{last}");
    }
}
