//! The backend's HTTP: one short HTTP/1.1 exchange per call over a fresh loopback/pod-local
//! connection (hyper's connection API; no pool: a co-located backend costs ~0.1 ms to connect,
//! and a fresh connection leaves nothing half-read behind a cancelled request). The answer body
//! is read under a cap, so a backend that streams forever cannot grow our memory.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::config::BackendConfig;

/// An answer body larger than this is garbage for our purposes (a completion capped at
/// `max_tokens_cap` tokens is far smaller).
pub const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// What came back: status and body.
pub struct Reply {
    pub status: u16,
    pub body: Bytes,
}

/// GET (no body) or POST a JSON body to `path` (below the configured base path).
pub async fn exchange(
    cfg: &BackendConfig,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> Result<Reply, String> {
    let stream = TcpStream::connect(&cfg.authority)
        .await
        .map_err(|e| format!("cannot connect to the backend at {}: {e}", cfg.authority))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("backend handshake: {e}"))?;
    // The connection task ends with the exchange (or when this future is dropped: the
    // connection closes, which is how a cancelled request reaches the backend).
    let conn = tokio::spawn(async move {
        let _ = conn.await;
    });
    let uri = format!("{}{path}", cfg.base_path);
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header(HOST, cfg.authority.as_str())
        .header(ACCEPT, "application/json");
    if body.is_some() {
        req = req.header(CONTENT_TYPE, "application/json");
    }
    if let Some(key) = &cfg.api_key {
        let v = HeaderValue::from_str(&format!("Bearer {key}"))
            .map_err(|_| "inference.api_key_file: not a valid header value".to_owned())?;
        req = req.header(AUTHORIZATION, v);
    }
    let req = req
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|e| format!("backend request: {e}"))?;
    let result = async {
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("backend request failed: {e}"))?;
        let status = resp.status().as_u16();
        let body = Limited::new(resp.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|e| format!("reading the backend's answer: {e}"))?
            .to_bytes();
        Ok(Reply { status, body })
    }
    .await;
    conn.abort();
    result
}
