//! Model routing (SPEC §11): MCP sampling requests answered by a co-located OpenAI-compatible
//! backend (vLLM, SGLang, llama.cpp) instead of the client.
//!
//! | file | job |
//! |---|---|
//! | `config.rs` | `[inference]` → validated backend settings |
//! | `budget.rs` | `sampling_tokens_per_day`: a server's daily token ceiling |
//! | `client.rs` | one HTTP/1.1 exchange with the backend, answer size capped |
//! | `mapping.rs` | MCP sampling params ↔ OpenAI chat completions |
//! | `model.rs` | model choice: `modelPreferences.hints` against `/v1/models` |
//! | `stop.rs` | `finish_reason` (+ vLLM `stop_reason` / SGLang `matched_stop`) → `stopReason` |
//!
//! `Backend::sample` blocks its caller (a thread of its own, never a reader thread) for at most
//! `timeout_secs`, model listing included; every failure is an error for the server, never a
//! silent fall-back to the client.

mod budget;
mod client;
mod config;
mod mapping;
mod model;
mod stop;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use hyper::Method;
use serde_json::Value;

pub use budget::TokenBudget;
pub use config::BackendConfig;
pub use mapping::Usage;

/// How long a `/v1/models` listing is reused: models change only when the backend restarts.
const MODELS_TTL: Duration = Duration::from_secs(30);

/// Why a routed request got no result.
#[derive(Debug, PartialEq, Eq)]
pub enum Failure {
    /// The sampling request itself is malformed (the server's fault).
    BadRequest(String),
    /// The backend is down, refused, or answered something that is not a completion.
    Backend(String),
    /// No answer within `timeout_secs`.
    Timeout(Duration),
    /// The server cancelled the request (or went away).
    Cancelled,
}

/// A completed request: the MCP result and what the audit record says about it.
#[derive(Debug)]
pub struct Sampled {
    pub result: Value,
    pub usage: Usage,
    /// The backend's time (listing and completion).
    pub latency: Duration,
    pub capped_from: Option<u64>,
    pub context_ignored: Option<String>,
}

/// Cancels one routed request from another thread (`notifications/cancelled`, client gone).
#[derive(Clone, Default)]
pub struct Cancel(Arc<CancelInner>);

#[derive(Default)]
struct CancelInner {
    flag: AtomicBool,
    notify: tokio::sync::Notify,
}

impl std::fmt::Debug for Cancel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cancel({})", self.is_cancelled())
    }
}

/// The same request's handle.
impl PartialEq for Cancel {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
impl Eq for Cancel {}

impl Cancel {
    pub fn cancel(&self) {
        self.0.flag.store(true, Ordering::Release);
        // `notify_one` keeps a permit: a request that starts waiting later still sees it.
        self.0.notify.notify_one();
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.flag.load(Ordering::Acquire)
    }

    async fn cancelled(&self) {
        if !self.is_cancelled() {
            self.0.notify.notified().await;
        }
    }
}

/// The configured backend, shared by the sessions of one server.
pub struct Backend {
    cfg: BackendConfig,
    models: Mutex<Option<(Instant, Arc<Vec<String>>)>>,
    in_flight: Mutex<usize>,
    freed: Condvar,
}

impl Backend {
    pub fn new(cfg: BackendConfig) -> Backend {
        Backend {
            cfg,
            models: Mutex::new(None),
            in_flight: Mutex::new(0),
            freed: Condvar::new(),
        }
    }

    pub fn config(&self) -> &BackendConfig {
        &self.cfg
    }

    /// Answer one `sampling/createMessage` (its `params`) from the backend.
    pub fn sample(&self, params: &Value, cancel: &Cancel) -> Result<Sampled, Failure> {
        let started = Instant::now();
        let deadline = started + self.cfg.timeout;
        // Validate before anything reaches the backend; the model is filled in below.
        let mapped =
            mapping::to_openai(params, "", self.cfg.max_tokens_cap).map_err(Failure::BadRequest)?;
        let _slot = self.slot(deadline, cancel)?;
        let rt = runtime().map_err(Failure::Backend)?;
        let work = async {
            let served = self.served_models().await?;
            let hints = model::hints(params);
            let model = model::choose(&hints, &served)
                .ok_or_else(|| {
                    Failure::Backend("the backend serves no model (/v1/models is empty)".into())
                })?
                .to_owned();
            let mut body = mapped.body;
            body["model"] = Value::from(model.as_str());
            let bytes = serde_json::to_vec(&body).map_err(|e| Failure::Backend(e.to_string()))?;
            let reply =
                client::exchange(&self.cfg, Method::POST, "/v1/chat/completions", Some(bytes))
                    .await
                    .map_err(Failure::Backend)?;
            if reply.status != 200 {
                if reply.status == 404 {
                    // The listing may be stale (backend restarted with another model).
                    *lock(&self.models) = None;
                }
                return Err(Failure::Backend(format!(
                    "the backend answered HTTP {} to /v1/chat/completions (model {model:?}): {}",
                    reply.status,
                    snippet(&reply.body)
                )));
            }
            let answer: Value = serde_json::from_slice(&reply.body).map_err(|e| {
                Failure::Backend(format!(
                    "the backend's answer is not JSON ({e}): {}",
                    snippet(&reply.body)
                ))
            })?;
            mapping::from_openai(&answer, &mapped.stop_sequences, &model).map_err(|e| {
                Failure::Backend(format!(
                    "the backend's answer is not a chat completion: {e}"
                ))
            })
        };
        let left = deadline.saturating_duration_since(Instant::now());
        let timeout = self.cfg.timeout;
        let outcome = rt.block_on(async {
            tokio::select! {
                r = tokio::time::timeout(left, work) => r.unwrap_or(Err(Failure::Timeout(timeout))),
                _ = cancel.cancelled() => Err(Failure::Cancelled),
            }
        });
        let (result, usage) = outcome?;
        Ok(Sampled {
            result,
            usage,
            latency: started.elapsed(),
            capped_from: mapped.capped_from,
            context_ignored: mapped.context_ignored,
        })
    }

    /// Backend health for `/readyz`: `/health` answers 200 and `/v1/models` lists a model.
    pub fn health(&self) -> Result<(), String> {
        let rt = runtime()?;
        let probe = async {
            let h = client::exchange(&self.cfg, Method::GET, "/health", None).await?;
            if h.status != 200 {
                return Err(format!("/health answered HTTP {}", h.status));
            }
            *lock(&self.models) = None;
            self.served_models().await.map_err(|e| match e {
                Failure::Backend(e) => e,
                other => format!("{other:?}"),
            })?;
            Ok(())
        };
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(5), probe)
                .await
                .unwrap_or_else(|_| Err("the backend did not answer within 5 s".into()))
        })
    }

    /// The served model ids, from cache or `/v1/models`.
    async fn served_models(&self) -> Result<Arc<Vec<String>>, Failure> {
        if let Some((at, models)) = lock(&self.models).as_ref() {
            if at.elapsed() < MODELS_TTL {
                return Ok(models.clone());
            }
        }
        let reply = client::exchange(&self.cfg, Method::GET, "/v1/models", None)
            .await
            .map_err(Failure::Backend)?;
        if reply.status != 200 {
            return Err(Failure::Backend(format!(
                "the backend answered HTTP {} to /v1/models: {}",
                reply.status,
                snippet(&reply.body)
            )));
        }
        let listing: Value = serde_json::from_slice(&reply.body).map_err(|e| {
            Failure::Backend(format!(
                "/v1/models is not JSON ({e}): {}",
                snippet(&reply.body)
            ))
        })?;
        let models = Arc::new(model::served_models(&listing));
        if models.is_empty() {
            return Err(Failure::Backend(
                "the backend serves no model (/v1/models is empty)".into(),
            ));
        }
        *lock(&self.models) = Some((Instant::now(), models.clone()));
        Ok(models)
    }

    /// One of `max_concurrent` slots, waited for until the deadline.
    fn slot(&self, deadline: Instant, cancel: &Cancel) -> Result<Slot<'_>, Failure> {
        let mut n = lock(&self.in_flight);
        while *n >= self.cfg.max_concurrent {
            if cancel.is_cancelled() {
                return Err(Failure::Cancelled);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Failure::Timeout(self.cfg.timeout));
            }
            // Woken when a slot frees; re-checked at least every 100 ms for a cancel.
            n = self
                .freed
                .wait_timeout(n, left.min(Duration::from_millis(100)))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        *n += 1;
        Ok(Slot(self))
    }
}

struct Slot<'a>(&'a Backend);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        *lock(&self.0.in_flight) -= 1;
        self.0.freed.notify_one();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A small runtime for one request on the calling thread (no thread of its own).
fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| format!("cannot start the backend client: {e}"))
}

/// The start of a body, for an error message a person can read.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    let text: String = text.chars().filter(|c| !c.is_control()).collect();
    if body.len() > 200 {
        format!("{text}…")
    } else {
        text
    }
}
