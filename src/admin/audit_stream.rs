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

/// Records from before the connection that are sent first: the newest, across the most recently
/// named files (every process writes its own file, so the newest file alone may hold only a
/// few lines of one process), read from each file's last `BACKLOG_BYTES`.
const BACKLOG: usize = 100;
const BACKLOG_FILES: usize = 8;
const BACKLOG_BYTES: u64 = 256 * 1024;
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

/// The last whole lines (up to each file's length at connection, `offsets`) of the newest
/// files, oldest first by their `ts` (RFC 3339 UTC of one format: string order is time order).
async fn backlog(files: &[PathBuf], offsets: &HashMap<PathBuf, u64>) -> Vec<Vec<u8>> {
    let mut lines: Vec<(String, Vec<u8>)> = Vec::new();
    for f in files.iter().rev().take(BACKLOG_FILES) {
        let len = offsets.get(f).copied().unwrap_or(0);
        let start = len.saturating_sub(BACKLOG_BYTES);
        let Ok(mut file) = tokio::fs::File::open(f).await else {
            continue;
        };
        let mut buf = Vec::new();
        if file.seek(SeekFrom::Start(start)).await.is_err()
            || (&mut file)
                .take(len - start)
                .read_to_end(&mut buf)
                .await
                .is_err()
        {
            continue;
        }
        let mut whole: &[u8] = &buf;
        if start > 0 {
            // The first line may be cut: start after it.
            let cut = whole
                .iter()
                .position(|&b| b == b'\n')
                .map_or(whole.len(), |i| i + 1);
            whole = &whole[cut..];
        }
        let end = whole.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let mut mine: Vec<&[u8]> = whole[..end]
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        mine.drain(..mine.len().saturating_sub(BACKLOG));
        for l in mine {
            let ts = serde_json::from_slice::<serde_json::Value>(l)
                .ok()
                .and_then(|v| v.get("ts").and_then(|t| t.as_str()).map(str::to_owned))
                .unwrap_or_default();
            lines.push((ts, l.to_vec()));
        }
    }
    // Stable: lines of one file with equal timestamps keep their order.
    lines.sort_by(|a, b| a.0.cmp(&b.0));
    lines.drain(..lines.len().saturating_sub(BACKLOG));
    lines.into_iter().map(|(_, l)| l).collect()
}

async fn follow(dir: PathBuf, tx: mpsc::Sender<Bytes>) {
    let mut offsets: HashMap<PathBuf, u64> = HashMap::new();
    let files = list(&dir).await;
    for f in &files {
        let len = tokio::fs::metadata(f).await.map_or(0, |m| m.len());
        offsets.insert(f.clone(), len);
    }
    for l in backlog(&files, &offsets).await {
        if tx.send(event(&l)).await.is_err() {
            return;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backlog_merges_the_newest_files_by_time() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("20260101T000000Z-serve-1.jsonl");
        let b = dir.path().join("20260101T000001Z-admin-2.jsonl");
        std::fs::write(
            &a,
            "{\"ts\":\"2026-01-01T00:00:01Z\",\"n\":1}\n{\"ts\":\"2026-01-01T00:00:03Z\",\"n\":3}\n",
        )
        .unwrap();
        // The unfinished last line is not sent (it is not a whole record yet).
        std::fs::write(&b, "{\"ts\":\"2026-01-01T00:00:02Z\",\"n\":2}\n{\"ts\":").unwrap();
        let files = vec![a.clone(), b.clone()];
        let offsets: HashMap<PathBuf, u64> = files
            .iter()
            .map(|f| (f.clone(), std::fs::metadata(f).unwrap().len()))
            .collect();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let lines = rt.block_on(backlog(&files, &offsets));
        let n: Vec<u64> = lines
            .iter()
            .map(|l| {
                serde_json::from_slice::<serde_json::Value>(l).unwrap()["n"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(n, [1, 2, 3]);
    }
}
