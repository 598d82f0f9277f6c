//! Per-session protocol state shared by both directions: the negotiated era and the ids in
//! flight. This is what lets the proxy guarantee "each request gets exactly one response" and
//! drop answers nobody asked for.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use crate::codec::Id;

/// Which protocol generation the session speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Era {
    Unknown,
    /// `initialize`-based sessions (2024-11-05 … 2025-11-25), with the negotiated version.
    Legacy(String),
    /// 2026-07-28 and later: stateless, `server/discover`, version in every request's `_meta`.
    Modern(String),
}

impl Era {
    pub fn label(&self) -> Option<&'static str> {
        match self {
            Era::Unknown => None,
            Era::Legacy(_) => Some("legacy"),
            Era::Modern(_) => Some("modern"),
        }
    }
}

/// A request waiting for its answer.
#[derive(Debug, Clone)]
pub struct Pending {
    pub method: String,
    pub tool: Option<String>,
    pub started: Instant,
    pub cancelled: bool,
    /// A listing request that carried a `cursor` (a continuation page).
    pub paged: bool,
    /// The request's params, kept only where the proxy may retry it itself: a modern-era
    /// request to a server whose sampling the inference backend answers (`input_required`).
    pub retry: Option<Box<str>>,
    /// Where its answer goes, for transports that answer each request on a stream of its own
    /// (`serve`'s stdio upstream): attached by `Pipeline::reply_to`, handed back with the answer.
    pub reply: Option<ReplyTo>,
    /// `params._meta.progressToken` (JSON text): progress about it follows its answer's stream.
    pub progress: Option<Box<str>>,
}

/// A transport's answer stream, opaque to the pipeline: it is kept with the request it belongs
/// to, so one table says both what was asked and where its answer goes.
#[derive(Clone)]
pub struct ReplyTo(Arc<dyn Any + Send + Sync>);

impl ReplyTo {
    pub fn new<T: Any + Send + Sync>(to: Arc<T>) -> ReplyTo {
        ReplyTo(to)
    }

    /// The transport's own stream type back (`None`: another transport's).
    pub fn get<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.0.clone().downcast().ok()
    }
}

impl std::fmt::Debug for ReplyTo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReplyTo")
    }
}

/// Upper bound on requests in flight per direction: a peer that never answers must not grow
/// our memory without bound.
pub const MAX_PENDING: usize = 10_000;

#[derive(Debug)]
pub struct Session {
    pub id: String,
    pub era: Era,
    /// Client → server requests awaiting the server's answer.
    pub client_pending: HashMap<Id, Pending>,
    /// Progress tokens of client requests with a reply stream attached, to their request ids.
    /// An entry may outlive its request; it counts only while that request holds the token.
    pub progress: HashMap<Box<str>, Id>,
    /// Server → client requests awaiting the client's answer.
    pub server_pending: HashMap<Id, Pending>,
    /// Requests the proxy itself sent to the server; their answers are never forwarded.
    pub proxy_pending: HashMap<Id, Pending>,
    /// The protocol version the client asked for in `initialize`, until the server answers.
    pub requested_version: Option<String>,
    /// `annotations` of each tool as the server listed it (and the pins let through): the hints
    /// policy defaults come from. Never taken from the call itself.
    pub tool_annotations: HashMap<String, serde_json::Value>,
    /// Set when a result looked like a prompt injection: from then on, high-risk calls in this
    /// session need approval (the private-read → public-write flow of RES-01).
    pub tainted: Option<String>,
    /// Resolved policies per tool, with the policy version they were resolved under: resolution
    /// walks every rule's globs, and a session calls the same few tools over and over.
    pub policy_cache: HashMap<String, (String, std::sync::Arc<crate::policy::ToolPolicy>)>,
    /// What the client declared it handles (`initialize` capabilities, or the modern era's
    /// per-request `_meta` client capabilities); `None` until it declared anything. Server
    /// requests for anything undeclared never reach the client.
    pub client_caps: Option<ClientCaps>,
    /// Server notifications counted in the current one-second window (flood bound).
    pub flood: crate::pipeline::FloodWindow,
    /// Call shapes (`approval::ask::shape`) a human approved "for this session".
    pub remembered: std::collections::HashSet<String>,
    /// Modern-era approval states already used (each approves one call).
    pub mrtr_spent: crate::approval::state::Spent,
    /// Modern-era calls (by `approval::state::call_digest`) a human approved, until when: the
    /// server's own `input_required` rounds of that call continue it without a new question.
    pub mrtr_approved: HashMap<String, u64>,
}

/// The client capabilities server-initiated requests depend on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientCaps {
    pub sampling: bool,
    /// `sampling.tools`: the client accepts `tools` in `sampling/createMessage`.
    pub sampling_tools: bool,
    /// Form-mode elicitation (`elicitation: {}` means form only).
    pub elicitation_form: bool,
    pub elicitation_url: bool,
    pub roots: bool,
}

impl ClientCaps {
    /// Read a `ClientCapabilities` object; anything unreadable declares nothing.
    pub fn from_json(caps: &serde_json::Value) -> ClientCaps {
        let has = |k: &str| caps.get(k).is_some_and(serde_json::Value::is_object);
        let elicitation = caps.get("elicitation").filter(|e| e.is_object());
        let (form, url) = match elicitation {
            // No mode named: form only, as the 2025-11-25 schema says.
            Some(e) if e.get("form").is_none() && e.get("url").is_none() => (true, false),
            Some(e) => (e.get("form").is_some(), e.get("url").is_some()),
            None => (false, false),
        };
        ClientCaps {
            sampling: has("sampling"),
            sampling_tools: caps.get("sampling").and_then(|s| s.get("tools")).is_some(),
            elicitation_form: form,
            elicitation_url: url,
            roots: has("roots"),
        }
    }
}

impl Session {
    pub fn new() -> Session {
        Session {
            id: random_id(),
            era: Era::Unknown,
            client_pending: HashMap::new(),
            progress: HashMap::new(),
            server_pending: HashMap::new(),
            proxy_pending: HashMap::new(),
            requested_version: None,
            tool_annotations: HashMap::new(),
            tainted: None,
            policy_cache: HashMap::new(),
            client_caps: None,
            flood: Default::default(),
            remembered: Default::default(),
            mrtr_spent: Default::default(),
            mrtr_approved: HashMap::new(),
        }
    }

    /// JSON-RPC batches exist only in the 2025-03-26 revision.
    pub fn batches_allowed(&self) -> bool {
        matches!(&self.era, Era::Legacy(v) if v == "2025-03-26")
    }
}

impl Default for Session {
    fn default() -> Self {
        Session::new()
    }
}

/// 128 random bits as hex, from the OS.
pub fn random_id() -> String {
    let mut buf = [0u8; 16];
    fill_random(&mut buf);
    hex::encode(buf)
}

/// Fill `buf` from the kernel's CSPRNG. Panics never: falls back to time-and-pid mixing only if
/// /dev/urandom cannot be read (ids stay unique, if not secret).
pub fn fill_random(buf: &mut [u8]) {
    use std::io::Read;
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        if f.read_exact(buf).is_ok() {
            return;
        }
    }
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
        ^ u128::from(std::process::id()) << 64;
    for (i, b) in buf.iter_mut().enumerate() {
        *b = (seed >> ((i % 16) * 8)) as u8;
    }
}
