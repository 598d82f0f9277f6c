//! The approval queue: calls that need a human (`action = "approve"`, every `critical` tool)
//! wait here until an operator runs `mcp-warden approve ID` / `deny ID` (from any process: the
//! queue is files in the state dir), decides through the admin API, or until the timeout. Every
//! path that is not an explicit, authenticated approval fails closed.
//!
//! The ticket files are readable and writable by anything running as the proxy's user — the
//! wrapped server included — so a file never decides anything by itself: a decision counts only
//! with an Ed25519 signature, by a key the waiting proxy trusts (its own identity key, which the
//! CLI and the admin API sign with, or an `[[identity.trusted_keys]]` operator key), over
//! [`canonical`] — ticket id, the digest of the arguments *the proxy holds in memory*, decision
//! and time. An unsigned or wrongly signed decision ends the wait as forged (an alert).

pub mod ask;
pub mod state;
mod view;

pub use view::safe_view;

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::sig::keys::kid_of;

/// One waiting call, as stored in `<state>/approvals/<id>.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Ticket {
    pub id: String,
    pub server: String,
    pub tool: String,
    pub risk: String,
    pub rule: String,
    pub args_sha256: Option<String>,
    /// What the approver sees of the arguments ([`safe_view`]).
    #[serde(default)]
    pub arguments: Vec<String>,
    pub created: u64,
    pub expires: u64,
    pub status: Status,
    /// The signed decision, once there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<SignedDecision>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Approved,
    Denied,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Denied => "denied",
        }
    }
}

/// An operator's decision: who (key id and name), what, when, and the signature over
/// [`canonical`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SignedDecision {
    pub status: Status,
    pub at: u64,
    pub kid: String,
    pub signer: String,
    /// Standard base64 of the 64-byte Ed25519 signature.
    pub sig: String,
}

/// The signed text: binds the decision to this ticket and these arguments, at this time.
pub fn canonical(id: &str, args_sha256: Option<&str>, status: Status, at: u64) -> String {
    format!(
        "mcp-warden-approval-v1\n{id}\n{}\n{}\n{at}",
        args_sha256.unwrap_or("-"),
        status.as_str()
    )
}

/// A key that may decide, with a name for the audit.
pub struct Signer {
    pub name: String,
    pub key: SigningKey,
}

/// How a wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    Approved,
    Denied,
    TimedOut,
    /// The client cancelled the call or went away: nothing is executed, the ticket is gone.
    Withdrawn,
    /// The ticket file claims a decision nobody trusted signed (a tool edited it).
    Forged(String),
    /// The queue could not be read or written: fail closed.
    Failed(String),
    /// Asked through the client (`ask.rs`): what the client answered.
    Client(ask::ClientAnswer),
    /// Asked through the client, which went away before answering.
    ClientGone,
}

/// Where tickets live: files in the state dir (one host), or Redis (`[cluster]`: every replica
/// sees every ticket, and a decision on one wakes the call waiting on another).
pub trait TicketStore: Send + Sync {
    /// Write a ticket (new, or decided); it is gone by itself after `ttl`.
    fn put(&self, t: &Ticket, ttl: Duration) -> io::Result<()>;
    /// `NotFound` when there is no such ticket (decided and consumed, withdrawn, expired).
    fn get(&self, id: &str) -> io::Result<Ticket>;
    fn remove(&self, id: &str);
    /// Every ticket, in any state.
    fn all(&self) -> io::Result<Vec<Ticket>>;
    /// A counter that moves whenever a decision may have been written.
    fn generation(&self) -> u64 {
        0
    }
    /// Whether `generation` moves on every decision (then a waiter reads its ticket only when it
    /// does); `false`: it never moves, poll.
    fn notifies(&self) -> bool {
        false
    }
    /// Sleep until the generation moves past `seen`, or `max`. Files: a short poll.
    fn wait_change(&self, _seen: u64, max: Duration) {
        std::thread::sleep(max.min(Duration::from_millis(100)));
    }
    /// Tell waiters a ticket was decided (Redis: pub/sub).
    fn announce(&self, _id: &str) {}
}

/// Tickets as `<dir>/<id>.json` (the single-host queue).
#[derive(Debug, Clone)]
pub struct FileTickets {
    pub dir: PathBuf,
}

impl TicketStore for FileTickets {
    fn put(&self, t: &Ticket, _ttl: Duration) -> io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        write_ticket(&self.dir, t)
    }

    fn get(&self, id: &str) -> io::Result<Ticket> {
        read_ticket(&self.dir, id)
    }

    fn remove(&self, id: &str) {
        let _ = fs::remove_file(ticket_path(&self.dir, id));
    }

    fn all(&self) -> io::Result<Vec<Ticket>> {
        let mut out = Vec::new();
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e),
        };
        for entry in entries.flatten() {
            let p = entry.path();
            if p.extension().is_some_and(|x| x == "json") {
                if let Ok(t) = fs::read(&p)
                    .and_then(|b| serde_json::from_slice::<Ticket>(&b).map_err(io::Error::other))
                {
                    out.push(t);
                }
            }
        }
        Ok(out)
    }
}

#[derive(Clone)]
pub struct ApprovalQueue {
    store: Arc<dyn TicketStore>,
    timeout: Duration,
    /// kid → (name, key) of the keys whose decisions count.
    deciders: Arc<HashMap<String, (String, VerifyingKey)>>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A notifying store's ticket is re-read at least this often while a call waits.
const RECHECK: Duration = Duration::from_secs(2);

/// Slack for clocks of processes on one machine (seconds).
const CLOCK_SLACK: u64 = 5;

impl ApprovalQueue {
    /// A queue nobody can decide yet: add the trusted keys with [`ApprovalQueue::with_deciders`].
    pub fn new(dir: PathBuf, timeout: Duration) -> ApprovalQueue {
        ApprovalQueue {
            store: Arc::new(FileTickets { dir }),
            timeout,
            deciders: Arc::new(HashMap::new()),
        }
    }

    /// Keep the tickets in `store` instead of the state dir (`[cluster]`).
    pub fn with_store(mut self, store: Arc<dyn TicketStore>) -> ApprovalQueue {
        self.store = store;
        self
    }

    /// The keys whose signed decisions this proxy accepts.
    pub fn with_deciders(mut self, keys: Vec<(String, VerifyingKey)>) -> ApprovalQueue {
        self.deciders = Arc::new(
            keys.into_iter()
                .map(|(name, key)| (kid_of(&key), (name, key)))
                .collect(),
        );
        self
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Put a call in the queue; returns its ticket.
    pub fn submit(
        &self,
        server: &str,
        tool: &str,
        risk: &str,
        rule: &str,
        args_sha256: Option<String>,
        arguments: Vec<String>,
    ) -> io::Result<Ticket> {
        let created = now();
        let ticket = Ticket {
            id: crate::session::random_id()[..12].to_owned(),
            server: server.to_owned(),
            tool: tool.to_owned(),
            risk: risk.to_owned(),
            rule: rule.to_owned(),
            args_sha256,
            arguments,
            created,
            expires: created + self.timeout.as_secs(),
            status: Status::Pending,
            decision: None,
        };
        // A little past the timeout: the waiter removes it itself; this only bounds leftovers of
        // a replica that died while a call waited.
        self.store
            .put(&ticket, self.timeout + Duration::from_secs(60))?;
        Ok(ticket)
    }

    /// Block until the ticket is decided, withdrawn (`withdrawn()` turns true) or the timeout
    /// passes. `args_sha256` is the digest of the call the proxy holds, not the file's. The
    /// ticket file is removed afterwards whatever happened, so a late `approve` cannot release
    /// anything.
    pub fn wait(
        &self,
        id: &str,
        args_sha256: Option<&str>,
        withdrawn: &dyn Fn() -> bool,
    ) -> Resolution {
        self.wait_decided(id, args_sha256, withdrawn).0
    }

    /// As [`ApprovalQueue::wait`], also naming who decided (kid, signer name) when a trusted
    /// key signed the decision: the audit says who approved or denied.
    pub fn wait_decided(
        &self,
        id: &str,
        args_sha256: Option<&str>,
        withdrawn: &dyn Fn() -> bool,
    ) -> (Resolution, Option<(String, String)>) {
        let mut decider = None;
        let started = now();
        let deadline = Instant::now() + self.timeout;
        let mut read: Option<(u64, Instant)> = None;
        let outcome = loop {
            if withdrawn() {
                break Resolution::Withdrawn;
            }
            // Read before the ticket: a decision announced after this read is not missed.
            let seen = self.store.generation();
            // A notifying store is read when a decision was announced, and every few seconds
            // in case an announcement was lost with a connection; a file store every time.
            let stale = match read {
                Some((g, at)) => g != seen || at.elapsed() >= RECHECK || !self.store.notifies(),
                None => true,
            };
            if !stale {
                let now = Instant::now();
                if now >= deadline {
                    break Resolution::TimedOut;
                }
                self.store
                    .wait_change(seen, (deadline - now).min(Duration::from_millis(100)));
                continue;
            }
            read = Some((seen, Instant::now()));
            match self.store.get(id) {
                Ok(t) if t.status != Status::Pending => {
                    let verdict = self.verify(&t, id, args_sha256, started);
                    if verdict.is_ok() {
                        decider = t
                            .decision
                            .as_ref()
                            .map(|d| (d.kid.clone(), d.signer.clone()));
                    }
                    break match verdict {
                        Ok(Status::Approved) => Resolution::Approved,
                        Ok(_) => Resolution::Denied,
                        Err(why) => Resolution::Forged(why),
                    };
                }
                Ok(_) => {}
                Err(e) => break Resolution::Failed(format!("approval queue unreadable: {e}")),
            }
            let now = Instant::now();
            if now >= deadline {
                break Resolution::TimedOut;
            }
            // Withdrawal is only seen by looking: wake at least every 100 ms for it.
            self.store
                .wait_change(seen, (deadline - now).min(Duration::from_millis(100)));
        };
        self.store.remove(id);
        (outcome, decider)
    }

    /// The decision of a decided ticket, if a trusted key signed exactly it.
    fn verify(
        &self,
        t: &Ticket,
        id: &str,
        args_sha256: Option<&str>,
        started: u64,
    ) -> Result<Status, String> {
        let d = t.decision.as_ref().ok_or_else(|| {
            format!(
                "the ticket file says {:?} without a signed decision",
                t.status
            )
        })?;
        if d.status != t.status {
            return Err("the ticket's status differs from its signed decision".into());
        }
        let (_, key) = self.deciders.get(&d.kid).ok_or_else(|| {
            format!(
                "decision signed by key {:?}, which this proxy does not trust",
                d.kid
            )
        })?;
        let sig = STANDARD
            .decode(&d.sig)
            .ok()
            .and_then(|b| Signature::from_slice(&b).ok())
            .ok_or("the decision's signature is malformed")?;
        key.verify_strict(canonical(id, args_sha256, d.status, d.at).as_bytes(), &sig)
            .map_err(|_| "the decision's signature does not match this call".to_owned())?;
        if d.at + CLOCK_SLACK < started || d.at > now() + CLOCK_SLACK {
            return Err("the signed decision was not made while this call waited".into());
        }
        Ok(d.status)
    }

    /// Decide a pending ticket (`approve ID` / `deny ID`, admin API), signed by `signer`.
    pub fn decide(dir: &Path, id: &str, approve: bool, signer: &Signer) -> Result<Ticket, String> {
        Self::decide_in(
            &FileTickets {
                dir: dir.to_owned(),
            },
            id,
            approve,
            signer,
        )
    }

    /// As [`ApprovalQueue::decide`], in any store.
    pub fn decide_in(
        store: &dyn TicketStore,
        id: &str,
        approve: bool,
        signer: &Signer,
    ) -> Result<Ticket, String> {
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!("{id:?} is not an approval id"));
        }
        let mut t = store.get(id).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => {
                format!("no pending approval {id} (already decided, withdrawn, timed out, or never asked)")
            }
            _ => format!("cannot read approval {id}: {e}"),
        })?;
        if t.status != Status::Pending {
            return Err(format!("approval {id} was already decided"));
        }
        if t.expires < now() {
            return Err(format!("approval {id} has expired"));
        }
        let status = if approve {
            Status::Approved
        } else {
            Status::Denied
        };
        let at = now();
        let sig = signer
            .key
            .sign(canonical(&t.id, t.args_sha256.as_deref(), status, at).as_bytes());
        t.status = status;
        t.decision = Some(SignedDecision {
            status,
            at,
            kid: kid_of(&signer.key.verifying_key()),
            signer: signer.name.clone(),
            sig: STANDARD.encode(sig.to_bytes()),
        });
        let ttl = Duration::from_secs(t.expires.saturating_sub(now()) + 60);
        store
            .put(&t, ttl)
            .map_err(|e| format!("cannot record the decision: {e}"))?;
        store.announce(id);
        Ok(t)
    }

    /// Pending tickets, oldest first.
    pub fn list(dir: &Path) -> io::Result<Vec<Ticket>> {
        Self::list_in(&FileTickets {
            dir: dir.to_owned(),
        })
    }

    /// As [`ApprovalQueue::list`], in any store.
    pub fn list_in(store: &dyn TicketStore) -> io::Result<Vec<Ticket>> {
        let now = now();
        let mut out: Vec<Ticket> = store
            .all()?
            .into_iter()
            .filter(|t| t.status == Status::Pending && t.expires >= now)
            .collect();
        out.sort_by_key(|t| t.created);
        Ok(out)
    }
}

fn ticket_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.json"))
}

fn read_ticket(dir: &Path, id: &str) -> io::Result<Ticket> {
    let bytes = fs::read(ticket_path(dir, id))?;
    serde_json::from_slice(&bytes).map_err(io::Error::other)
}

/// Replaced atomically and durably: a reader never sees half a ticket, and a decision written
/// survives a crash (`fsutil::write_atomic`).
fn write_ticket(dir: &Path, t: &Ticket) -> io::Result<()> {
    let bytes = serde_json::to_vec_pretty(t).map_err(io::Error::other)?;
    crate::fsutil::write_atomic(&ticket_path(dir, &t.id), &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operator() -> Signer {
        Signer {
            name: "op".into(),
            key: crate::sig::keys::generate_signing_key(),
        }
    }

    fn queue(dir: &Path, timeout: Duration, op: &Signer) -> ApprovalQueue {
        ApprovalQueue::new(dir.to_owned(), timeout)
            .with_deciders(vec![(op.name.clone(), op.key.verifying_key())])
    }

    const NO: &dyn Fn() -> bool = &|| false;

    #[test]
    fn approve_deny_and_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let op = operator();
        let q = queue(dir.path(), Duration::from_secs(5), &op);
        let t = q
            .submit(
                "fs",
                "write_file",
                "high",
                "fs.toml:tool[write_file]",
                None,
                vec![],
            )
            .unwrap();
        assert_eq!(ApprovalQueue::list(dir.path()).unwrap(), vec![t.clone()]);
        let id = t.id.clone();
        let d = dir.path().to_owned();
        let key = op.key.clone();
        let h = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            let op = Signer {
                name: "op".into(),
                key,
            };
            ApprovalQueue::decide(&d, &id, true, &op).unwrap();
        });
        assert_eq!(q.wait(&t.id, None, NO), Resolution::Approved);
        h.join().unwrap();
        // A decided and consumed ticket cannot be decided again.
        assert!(ApprovalQueue::decide(dir.path(), &t.id, true, &op).is_err());

        let t = q
            .submit("fs", "write_file", "high", "r", None, vec![])
            .unwrap();
        ApprovalQueue::decide(dir.path(), &t.id, false, &op).unwrap();
        assert_eq!(q.wait(&t.id, None, NO), Resolution::Denied);

        let quick = queue(dir.path(), Duration::from_millis(200), &op);
        let t = quick
            .submit("fs", "write_file", "high", "r", None, vec![])
            .unwrap();
        assert_eq!(quick.wait(&t.id, None, NO), Resolution::TimedOut);
        assert!(ApprovalQueue::list(dir.path()).unwrap().is_empty());
        assert!(ApprovalQueue::decide(dir.path(), "../etc", true, &op).is_err());
    }

    /// Issue 9.2 b: what a tool running as the same user can write never approves.
    #[test]
    fn edited_or_foreign_decisions_are_forged() {
        let dir = tempfile::tempdir().unwrap();
        let op = operator();
        let q = queue(dir.path(), Duration::from_secs(5), &op);
        let digest = Some("ab".repeat(32));

        // The bare edit: status flipped by hand.
        let t = q
            .submit("fs", "rm", "high", "r", digest.clone(), vec![])
            .unwrap();
        let path = dir.path().join(format!("{}.json", t.id));
        let text = fs::read_to_string(&path).unwrap();
        fs::write(&path, text.replace("\"pending\"", "\"approved\"")).unwrap();
        assert!(matches!(
            q.wait(&t.id, digest.as_deref(), NO),
            Resolution::Forged(_)
        ));

        // Signed by a key this proxy does not trust (e.g. one the tool made itself).
        let t = q
            .submit("fs", "rm", "high", "r", digest.clone(), vec![])
            .unwrap();
        ApprovalQueue::decide(dir.path(), &t.id, true, &operator()).unwrap();
        assert!(matches!(
            q.wait(&t.id, digest.as_deref(), NO),
            Resolution::Forged(_)
        ));

        // A trusted signature over other arguments (the file's digest was swapped first).
        let t = q
            .submit("fs", "rm", "high", "r", digest.clone(), vec![])
            .unwrap();
        let path = dir.path().join(format!("{}.json", t.id));
        let text = fs::read_to_string(&path).unwrap();
        fs::write(&path, text.replace(&"ab".repeat(32), &"cd".repeat(32))).unwrap();
        ApprovalQueue::decide(dir.path(), &t.id, true, &op).unwrap();
        assert!(matches!(
            q.wait(&t.id, digest.as_deref(), NO),
            Resolution::Forged(_)
        ));

        // Denied → approved by editing a signed denial.
        let t = q
            .submit("fs", "rm", "high", "r", digest.clone(), vec![])
            .unwrap();
        ApprovalQueue::decide(dir.path(), &t.id, false, &op).unwrap();
        let path = dir.path().join(format!("{}.json", t.id));
        let mut v: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        v["status"] = "approved".into();
        v["decision"]["status"] = "approved".into();
        fs::write(&path, v.to_string()).unwrap();
        assert!(matches!(
            q.wait(&t.id, digest.as_deref(), NO),
            Resolution::Forged(_)
        ));
    }

    #[test]
    fn withdrawn_ends_the_wait_and_removes_the_ticket() {
        let dir = tempfile::tempdir().unwrap();
        let op = operator();
        let q = queue(dir.path(), Duration::from_secs(30), &op);
        let t = q.submit("fs", "rm", "high", "r", None, vec![]).unwrap();
        let t0 = Instant::now();
        assert_eq!(q.wait(&t.id, None, &|| true), Resolution::Withdrawn);
        assert!(t0.elapsed() < Duration::from_secs(1));
        assert!(ApprovalQueue::decide(dir.path(), &t.id, true, &op).is_err());
    }
}
