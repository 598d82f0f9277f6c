//! The Redis connections: a few blocking connections (the checks run synchronously inside the
//! pipeline), each command bounded by `timeout_ms`, reconnected with exponential backoff.
//! While a backoff window is open every command fails at once: a dead store never makes a
//! request wait longer than one timeout.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::health::Health;

/// Connections kept open; requests beyond that wait for one (each command is short).
const POOL: usize = 4;
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

struct Backoff {
    delay: Duration,
    retry_at: Option<Instant>,
}

pub struct Conn {
    client: redis::Client,
    timeout: Duration,
    slots: Vec<Mutex<Option<redis::Connection>>>,
    next: AtomicUsize,
    backoff: Mutex<Backoff>,
    pub(super) health: Arc<Health>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a slot leaves at worst a connection we drop on its next error.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Conn {
    pub fn new(client: redis::Client, timeout: Duration, health: Arc<Health>) -> Conn {
        Conn {
            client,
            timeout,
            slots: (0..POOL).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
            backoff: Mutex::new(Backoff {
                delay: BACKOFF_MIN,
                retry_at: None,
            }),
            health,
        }
    }

    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    /// Run one command (or script, or pipeline). `Err` names why the store could not answer.
    pub fn run<T>(
        &self,
        f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T, String> {
        // A free connection if there is one; else wait for the next in turn.
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let free = (0..POOL).find_map(|k| self.slots[(start + k) % POOL].try_lock().ok());
        let mut slot = free.unwrap_or_else(|| lock(&self.slots[start % POOL]));
        if slot.is_none() {
            *slot = Some(self.connect()?);
        }
        let Some(conn) = slot.as_mut() else {
            return Err("no connection".into());
        };
        match f(conn) {
            Ok(v) => {
                self.health.mark_up();
                Ok(v)
            }
            Err(e) => {
                let why = e.to_string();
                if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() {
                    // The connection is in an unknown state: never reuse it.
                    *slot = None;
                    self.failed(&why);
                }
                Err(why)
            }
        }
    }

    /// A new connection with both timeouts set, unless a backoff window is open.
    pub fn connect(&self) -> Result<redis::Connection, String> {
        {
            let b = lock(&self.backoff);
            if let Some(at) = b.retry_at {
                let now = Instant::now();
                if now < at {
                    return Err(format!(
                        "{}; next reconnect attempt in {} ms",
                        self.health.last_error(),
                        (at - now).as_millis().max(1)
                    ));
                }
            }
        }
        let conn = self
            .client
            .get_connection_with_timeout(self.timeout)
            .and_then(|c| {
                c.set_read_timeout(Some(self.timeout))?;
                c.set_write_timeout(Some(self.timeout))?;
                Ok(c)
            });
        match conn {
            Ok(c) => {
                let mut b = lock(&self.backoff);
                b.delay = BACKOFF_MIN;
                b.retry_at = None;
                Ok(c)
            }
            Err(e) => {
                let why = e.to_string();
                self.failed(&why);
                Err(why)
            }
        }
    }

    /// Milliseconds until the next reconnect attempt (a client's Retry-After).
    pub fn retry_after_ms(&self) -> u64 {
        let b = lock(&self.backoff);
        b.retry_at
            .map(|at| at.saturating_duration_since(Instant::now()).as_millis() as u64)
            .unwrap_or(0)
            .max(BACKOFF_MIN.as_millis() as u64)
    }

    fn failed(&self, why: &str) {
        {
            let mut b = lock(&self.backoff);
            b.retry_at = Some(Instant::now() + b.delay);
            b.delay = (b.delay * 2).min(BACKOFF_MAX);
        }
        self.health.mark_down(why);
    }
}
