//! A small recording streamable-HTTP server for the `connect` tests: it keeps every request it
//! got (method, headers, exact body) and answers each JSON-RPC request with a result whose
//! signature the test chooses through the tool name:
//! `signed` (by the good key), `tampered` (signed, then changed), `evil` (signed by another
//! key), `sse` (signed, sent as an SSE event), anything else unsigned. `leak` answers with a
//! cloud key in its text, `env` with an environment dump. `tools/list` answers with the
//! listing in `Script` (it and `initialize` signed by the good key when `sign_listing`), which a test may change
//! between runs (a rug pull, a poisoned description).
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
    pub script: Arc<Mutex<Script>>,
    _runtime: tokio::runtime::Runtime,
}

/// What the fake lists.
pub struct Script {
    pub tools: Vec<Value>,
    pub sign_listing: bool,
}

/// A tool definition as a server lists it.
pub fn tool(name: &str, description: &str) -> Value {
    json!({"name": name, "description": description, "inputSchema": {"type": "object", "properties": {}}})
}

/// The tools every test may call.
pub fn default_tools() -> Vec<Value> {
    [
        ("plain", "Answers with plain text."),
        ("signed", "Answers with a signed result."),
        ("sse", "Answers over an event stream."),
        ("tampered", "Answers with a result changed in transit."),
        ("evil", "Answers signed by another key."),
        ("leak", "Reads the deployment settings."),
        ("env", "Shows the server's environment."),
        ("wipe", "Deletes every file."),
    ]
    .iter()
    .map(|(n, d)| tool(n, d))
    .collect()
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
        let script = Arc::new(Mutex::new(Script {
            tools: default_tools(),
            sign_listing: false,
        }));
        let keys = Arc::new(Keys {
            good: good_key(),
            evil: evil_key(),
            aud: aud.to_owned(),
        });
        let recorded = Arc::clone(&seen);
        let scripted = Arc::clone(&script);
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
                let scripted = Arc::clone(&scripted);
                let keys = Arc::clone(&keys);
                let tls = tls.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let recorded = Arc::clone(&recorded);
                        let scripted = Arc::clone(&scripted);
                        let keys = Arc::clone(&keys);
                        async move {
                            Ok::<_, Infallible>(answer(req, &recorded, &scripted, &keys).await)
                        }
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
            script,
            _runtime: runtime,
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }

    /// The tool calls the server received, by tool name.
    pub fn calls(&self) -> Vec<String> {
        self.seen()
            .iter()
            .filter_map(|s| serde_json::from_slice::<Value>(&s.body).ok())
            .filter(|m| m["method"] == "tools/call")
            .filter_map(|m| m.pointer("/params/name")?.as_str().map(str::to_owned))
            .collect()
    }

    pub fn set_tools(&self, tools: Vec<Value>) {
        self.script.lock().expect("lock").tools = tools;
    }

    /// Sign the `initialize` and `tools/list` answers too (a server that signs everything).
    pub fn sign_listing(&self) {
        self.script.lock().expect("lock").sign_listing = true;
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
    script: &Mutex<Script>,
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
    let tool = msg
        .pointer("/params/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let (tools, sign_listing) = {
        let s = script.lock().expect("lock");
        (s.tools.clone(), s.sign_listing)
    };
    let text = match tool {
        "leak" => "region = eu-west-1\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".to_owned(),
        "env" => "PATH=/usr/local/bin:/usr/bin\nHOME=/home/app\nGITHUB_TOKEN=ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8\nLANG=C.UTF-8".to_owned(),
        _ => format!("answer to {rpc_method}"),
    };
    let result = match rpc_method {
        "initialize" => {
            json!({"protocolVersion": "2025-06-18", "capabilities": {"tools": {}}, "serverInfo": {"name": "fake", "version": "1"}})
        }
        "tools/list" => json!({ "tools": tools }),
        _ => json!({"content": [{"type": "text", "text": text}]}),
    };
    let plain = json!({"jsonrpc": "2.0", "id": id, "result": result});
    let sign =
        |k: &SigningKey| sign_value(&plain, k, &keys.aud, now(), &new_nonce()).expect("sign");
    let tool = if matches!(rpc_method, "tools/list" | "initialize") && sign_listing {
        "signed"
    } else {
        tool
    };
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
