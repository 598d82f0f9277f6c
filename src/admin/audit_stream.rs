//! `/api/v1/audit/stream`: the audit trail as Server-Sent Events, one record per event, followed
//! live across every proxy process writing to the audit directory.
//!
//! Same idea as `audit::tail` (offsets per `.jsonl` file, whole lines only), but async and ending
//! as soon as the client is gone: `tail`'s blocking loop only notices a closed output on its next
//! write, which may never come on a quiet trail.

use std::collections::HashMap;
use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::mpsc;

/// Records from before the connection that are sent first (the newest file's last lines).
const BACKLOG: usize = 20;
/// At most this much of one file is read per poll, so a burst cannot balloon memory.
const READ_CAP: u64 = 1024 * 1024;
const POLL: Duration = Duration::from_millis(200);
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// A response body fed from a channel: each message is one SSE chunk.
pub struct ChannelBody(mpsc::Receiver<Bytes>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

/// Starts following `dir` on the current runtime; the body ends when the follower stops.
pub fn stream(dir: PathBuf) -> ChannelBody {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(follow(dir, tx));
    ChannelBody(rx)
}

fn event(line: &[u8]) -> Bytes {
    let mut b = Vec::with_capacity(line.len() + 8);
    b.extend_from_slice(b"data: ");
    b.extend_from_slice(line);
    b.extend_from_slice(b"\n\n");
    Bytes::from(b)
}

async fn list(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Ok(mut rd) = tokio::fs::read_dir(dir).await {
        while let Ok(Some(e)) = rd.next_entry().await {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "jsonl") {
                files.push(p);
            }
        }
    }
    // Names start with a UTC timestamp, so name order is age order.
    files.sort();
    files
}

async fn follow(dir: PathBuf, tx: mpsc::Sender<Bytes>) {
    let mut offsets: HashMap<PathBuf, u64> = HashMap::new();
    let files = list(&dir).await;
    for f in &files {
        let len = tokio::fs::metadata(f).await.map_or(0, |m| m.len());
        offsets.insert(f.clone(), len);
    }
    if let Some(newest) = files.last() {
        if let Ok(text) = tokio::fs::read(newest).await {
            let lines: Vec<&[u8]> = text
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .collect();
            for l in &lines[lines.len().saturating_sub(BACKLOG)..] {
                if tx.send(event(l)).await.is_err() {
                    return;
                }
            }
        }
    }
    // Opens the stream at once even when the trail is empty (clients wait for the first bytes).
    if tx
        .send(Bytes::from_static(b": audit stream\n\n"))
        .await
        .is_err()
    {
        return;
    }
    let mut idle = Duration::ZERO;
    loop {
        tokio::time::sleep(POLL).await;
        if tx.is_closed() {
            return;
        }
        let mut sent = false;
        for f in list(&dir).await {
            let start = offsets.get(&f).copied().unwrap_or(0);
            let Ok(mut file) = tokio::fs::File::open(&f).await else {
                continue;
            };
            let len = file.metadata().await.map_or(0, |m| m.len());
            if len <= start || file.seek(SeekFrom::Start(start)).await.is_err() {
                continue;
            }
            let mut buf = Vec::new();
            if file
                .take((len - start).min(READ_CAP))
                .read_to_end(&mut buf)
                .await
                .is_err()
            {
                continue;
            }
            // Only whole lines; a partial one goes out once it is complete.
            let end = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            for l in buf[..end].split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                if tx.send(event(l)).await.is_err() {
                    return;
                }
                sent = true;
            }
            offsets.insert(f, start + end as u64);
        }
        idle = if sent { Duration::ZERO } else { idle + POLL };
        if idle >= KEEP_ALIVE {
            idle = Duration::ZERO;
            if tx
                .send(Bytes::from_static(b": keep-alive\n\n"))
                .await
                .is_err()
            {
                return;
            }
        }
    }
}
