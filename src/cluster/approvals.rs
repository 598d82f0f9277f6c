//! The approval queue on Redis: `<prefix>:approval:<id>` holds the ticket (JSON, with the same
//! signed decision the file queue has: Redis is as untrusted as a ticket file), the set
//! `<prefix>:approvals` indexes them for listing. A decision is announced on the channel
//! `<prefix>:approvals:decided`; one subscriber thread per process turns those messages into a
//! condition-variable wake-up, so a call waiting on replica 1 is released as soon as replica 3
//! records the decision, without polling Redis.

use std::io;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::Duration;

use super::conn::Conn;
use crate::approval::{Ticket, TicketStore};

pub struct RedisTickets {
    conn: Arc<Conn>,
    prefix: String,
    /// Decisions announced so far (any ticket): waiters re-read theirs when it moves.
    generation: Mutex<u64>,
    changed: Condvar,
}

fn io_err(why: String) -> io::Error {
    io::Error::other(format!("cluster approval store: {why}"))
}

impl RedisTickets {
    pub fn new(conn: Arc<Conn>, prefix: String) -> Arc<RedisTickets> {
        Arc::new(RedisTickets {
            conn,
            prefix,
            generation: Mutex::new(0),
            changed: Condvar::new(),
        })
    }

    fn key(&self, id: &str) -> String {
        format!("{}:approval:{id}", self.prefix)
    }

    fn index(&self) -> String {
        format!("{}:approvals", self.prefix)
    }

    fn channel(&self) -> String {
        format!("{}:approvals:decided", self.prefix)
    }

    fn bump(&self) {
        let mut g = self.generation.lock().unwrap_or_else(|e| e.into_inner());
        *g += 1;
        self.changed.notify_all();
    }

    /// The subscriber: reconnects with backoff for as long as the store lives. After a
    /// (re)subscription it bumps the generation once, so a decision announced while it was
    /// away is read by the waiters then.
    pub fn spawn_subscriber(self: &Arc<Self>) -> io::Result<()> {
        let weak: Weak<RedisTickets> = Arc::downgrade(self);
        let client = self.conn.client().clone();
        let channel = self.channel();
        std::thread::Builder::new()
            .name("cluster-approvals".into())
            .spawn(move || {
                let mut delay = Duration::from_millis(100);
                loop {
                    if weak.strong_count() == 0 {
                        return;
                    }
                    match subscribe(&client, &channel, &weak) {
                        Ok(()) => return,
                        Err(e) => tracing::debug!("approval subscriber: {e}"),
                    }
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            })?;
        Ok(())
    }
}

/// One subscription, until the connection fails (`Err`) or the store is gone (`Ok`).
fn subscribe(
    client: &redis::Client,
    channel: &str,
    weak: &Weak<RedisTickets>,
) -> redis::RedisResult<()> {
    let mut conn = client.get_connection_with_timeout(Duration::from_secs(1))?;
    let mut ps = conn.as_pubsub();
    ps.subscribe(channel)?;
    // Wake up now and then to notice the store was dropped.
    ps.set_read_timeout(Some(Duration::from_secs(1)))?;
    match weak.upgrade() {
        Some(t) => t.bump(),
        None => return Ok(()),
    }
    loop {
        match ps.get_message() {
            Ok(_) => match weak.upgrade() {
                Some(t) => t.bump(),
                None => return Ok(()),
            },
            Err(e) if e.is_timeout() => {
                if weak.strong_count() == 0 {
                    return Ok(());
                }
            }
            Err(e) => return Err(e),
        }
    }
}

impl TicketStore for RedisTickets {
    fn put(&self, t: &Ticket, ttl: Duration) -> io::Result<()> {
        let json = serde_json::to_string(t).map_err(io::Error::other)?;
        let ttl_ms = ttl.as_millis().max(1) as u64;
        let (key, index) = (self.key(&t.id), self.index());
        self.conn
            .run(|c| {
                redis::pipe()
                    .atomic()
                    .cmd("SET")
                    .arg(&key)
                    .arg(&json)
                    .arg("PX")
                    .arg(ttl_ms)
                    .ignore()
                    .cmd("SADD")
                    .arg(&index)
                    .arg(&t.id)
                    .ignore()
                    .query::<()>(c)
            })
            .map_err(io_err)
    }

    fn get(&self, id: &str) -> io::Result<Ticket> {
        let key = self.key(id);
        let raw: Option<String> = self
            .conn
            .run(|c| redis::cmd("GET").arg(&key).query(c))
            .map_err(io_err)?;
        match raw {
            Some(j) => serde_json::from_str(&j).map_err(io::Error::other),
            None => Err(io::Error::new(io::ErrorKind::NotFound, "no such ticket")),
        }
    }

    fn remove(&self, id: &str) {
        let (key, index) = (self.key(id), self.index());
        let _ = self.conn.run(|c| {
            redis::pipe()
                .cmd("DEL")
                .arg(&key)
                .ignore()
                .cmd("SREM")
                .arg(&index)
                .arg(id)
                .ignore()
                .query::<()>(c)
        });
    }

    fn all(&self) -> io::Result<Vec<Ticket>> {
        let index = self.index();
        let ids: Vec<String> = self
            .conn
            .run(|c| redis::cmd("SMEMBERS").arg(&index).query(c))
            .map_err(io_err)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(|id| self.key(id)).collect();
        let raw: Vec<Option<String>> = self
            .conn
            .run(|c| redis::cmd("MGET").arg(&keys).query(c))
            .map_err(io_err)?;
        let mut out = Vec::new();
        let mut gone = Vec::new();
        for (id, j) in ids.iter().zip(raw) {
            match j.and_then(|j| serde_json::from_str::<Ticket>(&j).ok()) {
                Some(t) => out.push(t),
                None => gone.push(id.clone()),
            }
        }
        if !gone.is_empty() {
            // Expired tickets leave their index entry behind; tidy it here.
            let _ = self
                .conn
                .run(|c| redis::cmd("SREM").arg(&index).arg(&gone).query::<()>(c));
        }
        Ok(out)
    }

    fn notifies(&self) -> bool {
        true
    }

    fn generation(&self) -> u64 {
        *self.generation.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait_change(&self, seen: u64, max: Duration) {
        let g = self.generation.lock().unwrap_or_else(|e| e.into_inner());
        let _ = self
            .changed
            .wait_timeout_while(g, max, |g| *g == seen)
            .map(|_| ());
    }

    fn announce(&self, id: &str) {
        let channel = self.channel();
        let _ = self
            .conn
            .run(|c| redis::cmd("PUBLISH").arg(&channel).arg(id).query::<()>(c));
        // Waiters in this process need no round trip.
        self.bump();
    }
}
