//! The approval queue: calls that need a human (`action = "approve"`, every `critical` tool)
//! wait here until an operator runs `mcp-warden approve ID` / `deny ID` (from any process: the
//! queue is files in the state dir), or until the timeout. Every path that is not an explicit
//! approval fails closed.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// One waiting call, as stored in `<state>/approvals/<id>.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Ticket {
    pub id: String,
    pub server: String,
    pub tool: String,
    pub risk: String,
    pub rule: String,
    pub args_sha256: Option<String>,
    pub created: u64,
    pub expires: u64,
    pub status: Status,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Approved,
    Denied,
}

/// How a wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    Approved,
    Denied,
    TimedOut,
    /// The queue could not be read or written: fail closed.
    Failed(String),
}

#[derive(Debug, Clone)]
pub struct ApprovalQueue {
    dir: PathBuf,
    timeout: Duration,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl ApprovalQueue {
    pub fn new(dir: PathBuf, timeout: Duration) -> ApprovalQueue {
        ApprovalQueue { dir, timeout }
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
    ) -> io::Result<Ticket> {
        fs::create_dir_all(&self.dir)?;
        let created = now();
        let ticket = Ticket {
            id: crate::session::random_id()[..12].to_owned(),
            server: server.to_owned(),
            tool: tool.to_owned(),
            risk: risk.to_owned(),
            rule: rule.to_owned(),
            args_sha256,
            created,
            expires: created + self.timeout.as_secs(),
            status: Status::Pending,
        };
        write_ticket(&self.dir, &ticket)?;
        Ok(ticket)
    }

    /// Block until the ticket is decided or the timeout passes. The ticket file is removed
    /// afterwards whatever happened, so a late `approve` cannot release anything.
    pub fn wait(&self, id: &str) -> Resolution {
        let deadline = Instant::now() + self.timeout;
        let outcome = loop {
            match read_ticket(&self.dir, id) {
                Ok(t) if t.status == Status::Approved => break Resolution::Approved,
                Ok(t) if t.status == Status::Denied => break Resolution::Denied,
                Ok(_) => {}
                Err(e) => break Resolution::Failed(format!("approval queue unreadable: {e}")),
            }
            if Instant::now() >= deadline {
                break Resolution::TimedOut;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let _ = fs::remove_file(ticket_path(&self.dir, id));
        outcome
    }

    /// Decide a pending ticket (`approve ID` / `deny ID`).
    pub fn decide(dir: &Path, id: &str, approve: bool) -> Result<Ticket, String> {
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!("{id:?} is not an approval id"));
        }
        let mut t = read_ticket(dir, id).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => {
                format!("no pending approval {id} (already decided, timed out, or never asked)")
            }
            _ => format!("cannot read approval {id}: {e}"),
        })?;
        if t.status != Status::Pending {
            return Err(format!("approval {id} was already decided"));
        }
        if t.expires < now() {
            return Err(format!("approval {id} has expired"));
        }
        t.status = if approve {
            Status::Approved
        } else {
            Status::Denied
        };
        write_ticket(dir, &t).map_err(|e| format!("cannot record the decision: {e}"))?;
        Ok(t)
    }

    /// Pending tickets, oldest first.
    pub fn list(dir: &Path) -> io::Result<Vec<Ticket>> {
        let mut out = Vec::new();
        let entries = match fs::read_dir(dir) {
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
                    if t.status == Status::Pending && t.expires >= now() {
                        out.push(t);
                    }
                }
            }
        }
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

/// Temp file + rename: a reader never sees half a ticket.
fn write_ticket(dir: &Path, t: &Ticket) -> io::Result<()> {
    let tmp = dir.join(format!(".{}.{}.tmp", t.id, std::process::id()));
    fs::write(
        &tmp,
        serde_json::to_vec_pretty(t).map_err(io::Error::other)?,
    )?;
    fs::rename(&tmp, ticket_path(dir, &t.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approve_deny_and_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let q = ApprovalQueue::new(dir.path().to_owned(), Duration::from_secs(5));
        let t = q
            .submit("fs", "write_file", "high", "fs.toml:tool[write_file]", None)
            .unwrap();
        assert_eq!(ApprovalQueue::list(dir.path()).unwrap(), vec![t.clone()]);
        let id = t.id.clone();
        let d = dir.path().to_owned();
        let h = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            ApprovalQueue::decide(&d, &id, true).unwrap();
        });
        assert_eq!(q.wait(&t.id), Resolution::Approved);
        h.join().unwrap();
        // A decided and consumed ticket cannot be decided again.
        assert!(ApprovalQueue::decide(dir.path(), &t.id, true).is_err());

        let t = q.submit("fs", "write_file", "high", "r", None).unwrap();
        ApprovalQueue::decide(dir.path(), &t.id, false).unwrap();
        assert_eq!(q.wait(&t.id), Resolution::Denied);

        let quick = ApprovalQueue::new(dir.path().to_owned(), Duration::from_millis(200));
        let t = quick.submit("fs", "write_file", "high", "r", None).unwrap();
        assert_eq!(quick.wait(&t.id), Resolution::TimedOut);
        assert!(ApprovalQueue::list(dir.path()).unwrap().is_empty());
        assert!(ApprovalQueue::decide(dir.path(), "../etc", true).is_err());
    }
}
