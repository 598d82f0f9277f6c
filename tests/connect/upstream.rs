//! A small recording streamable-HTTP server for the `connect` tests: it keeps every request it
//! got (method, headers, exact body) and answers each JSON-RPC request with a result whose
//! signature the test chooses through the tool name:
//! `signed` (by the good key), `tampered` (signed, then changed), `evil` (signed by another
//! key), `sse` (signed, sent as an SSE event), anything else unsigned.
//! It publishes the good key at `/.well-known/mcp/capabilities` like `serve` does.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use mcp_warden::sig::keys::{kid_of, public_key_to_string};
use mcp_warden::sig::message_scheme::sign_value;
use mcp_warden::sig::{new_nonce, SigningKey};
use serde_json::{json, Value};

#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub struct Fake {
    pub url: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    _runtime: tokio::runtime::Runtime,
}

pub const SESSION: &str = "fake-session-1";

struct Keys {
    good: SigningKey,
    evil: SigningKey,
    aud: String,
}

pub fn good_key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

pub fn evil_key() -> SigningKey {
    SigningKey::from_bytes(&[9; 32])
}

impl Fake {
    pub fn start(aud: &str) -> Fake {
        Fake::start_with(aud, None)
    }

    /// The same server behind TLS with this certificate chain and key (PEM); the URL is
    /// `https://localhost:PORT/mcp`.
    pub fn start_tls(aud: &str, cert_pem: &str, key_pem: &str) -> Fake {
        use tokio_rustls::rustls::pki_types::pem::PemObject;
        use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("cert");
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("key");
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server config");
        Fake::start_with(aud, Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))))
    }

    fn start_with(aud: &str, tls: Option<tokio_rustls::TlsAcceptor>) -> Fake {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let keys = Arc::new(Keys {
            good: good_key(),
            evil: evil_key(),
            aud: aud.to_owned(),
        });
        let recorded = Arc::clone(&seen);
        let url = match &tls {
            Some(_) => format!("https://localhost:{}/mcp", addr.port()),
            None => format!("http://{addr}/mcp"),
        };
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let recorded = Arc::clone(&recorded);
                let keys = Arc::clone(&keys);
                let tls = tls.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let recorded = Arc::clone(&recorded);
                        let keys = Arc::clone(&keys);
                        async move { Ok::<_, Infallible>(answer(req, &recorded, &keys).await) }
                    });
                    match tls {
                        Some(acceptor) => {
                            let Ok(stream) = acceptor.accept(stream).await else {
                                return;
                            };
                            let _ = http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), svc)
                                .await;
                        }
                        None => {
                            let _ = http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), svc)
                                .await;
                        }
                    }
                });
            }
        });
        Fake {
            url,
            seen,
            _runtime: runtime,
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

fn reply(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert("content-type", content_type.parse().expect("ct"));
    r
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

async fn answer(
    req: Request<Incoming>,
    seen: &Mutex<Vec<Seen>>,
    keys: &Keys,
) -> Response<Full<Bytes>> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let headers = req
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let body = req
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    seen.lock().expect("lock").push(Seen {
        method: method.to_string(),
        path: path.clone(),
        headers,
        body: body.clone(),
    });
    if path == "/.well-known/mcp/capabilities" {
        let pk = keys.good.verifying_key();
        let doc = json!({"server": {"name": keys.aud, "version": "1", "public_key": public_key_to_string(&pk), "kid": kid_of(&pk)}, "capabilities": [], "attestation": null});
        return reply(
            StatusCode::OK,
            "application/json",
            doc.to_string().into_bytes(),
        );
    }
    match method {
        Method::GET => return reply(StatusCode::METHOD_NOT_ALLOWED, "text/plain", vec![]),
        Method::DELETE => return reply(StatusCode::OK, "text/plain", vec![]),
        _ => {}
    }
    let msg: Value = serde_json::from_slice(&body).expect("connect forwards valid JSON");
    let Some(id) = msg.get("id").cloned() else {
        return reply(StatusCode::ACCEPTED, "text/plain", vec![]);
    };
    let rpc_method = msg["method"].as_str().unwrap_or("");
    let result = if rpc_method == "initialize" {
        json!({"protocolVersion": "2025-06-18", "capabilities": {"tools": {}}, "serverInfo": {"name": "fake", "version": "1"}})
    } else {
        json!({"content": [{"type": "text", "text": format!("answer to {rpc_method}")}]})
    };
    let plain = json!({"jsonrpc": "2.0", "id": id, "result": result});
    let tool = msg
        .pointer("/params/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let sign =
        |k: &SigningKey| sign_value(&plain, k, &keys.aud, now(), &new_nonce()).expect("sign");
    let out = match tool {
        "signed" | "sse" => sign(&keys.good),
        "evil" => sign(&keys.evil),
        "tampered" => {
            let mut v = sign(&keys.good);
            v["result"]["content"][0]["text"] = json!("tampered in transit");
            v
        }
        _ => plain,
    };
    let mut resp = if tool == "sse" {
        let event = format!("event: message\ndata: {out}\n\n");
        reply(StatusCode::OK, "text/event-stream", event.into_bytes())
    } else {
        reply(
            StatusCode::OK,
            "application/json",
            out.to_string().into_bytes(),
        )
    };
    if rpc_method == "initialize" {
        resp.headers_mut()
            .insert("mcp-session-id", SESSION.parse().expect("sid"));
    }
    resp
}
