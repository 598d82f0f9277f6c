//! The sessions `serve` hands out. The id a client sees is ours — 128 random bits — and maps to
//! the session's pipeline and upstream: a stdio process of its own, or an HTTP upstream session
//! whose own id the client never learns. A session is bound to the route it was opened on and
//! to the key that proved its `initialize`, if one did (`admission.rs` holds the rule), and
//! holds its opener's slot of the per-client cap while it lives.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::slots::Slot;
use hyper::header::HeaderMap;

use super::upstream::{Exchange, SessionUpstream};
use super::{Route, Shared};
use crate::pipeline::Pipeline;

/// A new session id: 128 bits from the operating system's CSPRNG through `rand` (which fails
/// loudly rather than falling back to anything guessable: the id is the session's only
/// credential when signatures are off).
pub fn new_id() -> String {
    let mut buf = [0u8; 16];
    rand::fill(&mut buf);
    hex::encode(buf)
}

pub struct Session {
    pub id: String,
    pub route: Arc<Route>,
    pub pipeline: Arc<Pipeline>,
    pub upstream: SessionUpstream,
    /// The key whose signature opened the session (either scheme).
    pub kid: Option<String>,
    last_used: Mutex<Instant>,
    /// Requests in flight and streams open: a busy session is never evicted.
    busy: Arc<AtomicUsize>,
    /// Counted against the opener's cap until the session is dropped.
    slot: Slot<String>,
}

/// One use of a session (a request until its answer is complete, an open stream).
pub struct Busy(Arc<AtomicUsize>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Session {
    /// One client exchange on this session, as its upstream takes it.
    pub fn exchange<'a>(&'a self, shared: &'a Shared, headers: &'a HeaderMap) -> Exchange<'a> {
        Exchange {
            shared,
            route: &self.route,
            pipeline: &self.pipeline,
            headers,
        }
    }

    /// `id` comes from [`new_id`]: it is made before the session so the
    /// upstream's exit hook can name it.
    pub fn new(
        id: String,
        route: Arc<Route>,
        pipeline: Arc<Pipeline>,
        upstream: SessionUpstream,
        kid: Option<String>,
        slot: Slot<String>,
    ) -> Session {
        Session {
            id,
            route,
            pipeline,
            upstream,
            kid,
            last_used: Mutex::new(Instant::now()),
            busy: Arc::default(),
            slot,
        }
    }

    /// Mark the session in use until the guard is dropped.
    pub fn busy(&self) -> Busy {
        self.busy.fetch_add(1, Ordering::AcqRel);
        Busy(self.busy.clone())
    }

    /// Whose cap the session counts against (a key, or an address).
    fn client(&self) -> &str {
        self.slot.key()
    }

    pub fn touch(&self) {
        *self.last_used.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    fn idle_for(&self) -> Duration {
        self.last_used
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed()
    }

    /// Stop the upstream side now (the process; an HTTP upstream's session needs
    /// `upstream.end`, which is async).
    pub fn close(&self) {
        self.upstream.close();
    }
}

#[derive(Default)]
pub struct SessionTable {
    map: Mutex<HashMap<String, Arc<Session>>>,
}

impl SessionTable {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Session>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn insert(&self, s: Arc<Session>) {
        self.lock().insert(s.id.clone(), s);
    }

    /// The session `id` if it exists on `route` (an id from another route is unknown here).
    pub fn get(&self, id: &str, route: &str) -> Option<Arc<Session>> {
        let s = self.lock().get(id).cloned()?;
        (s.route.name == route).then(|| {
            s.touch();
            s
        })
    }

    pub fn remove(&self, id: &str) -> Option<Arc<Session>> {
        self.lock().remove(id)
    }

    /// A client at its cap opens a new session by giving up its least recently used one that
    /// is idle (nothing in flight, no stream open): clients that never DELETE are not locked
    /// out, and the cap on processes holds. Returns the session, removed; the caller ends it.
    pub fn evict_idle(&self, client: &str) -> Option<Arc<Session>> {
        let mut map = self.lock();
        let oldest = map
            .values()
            .filter(|s| s.client() == client && s.busy.load(Ordering::Acquire) == 0)
            .max_by_key(|s| s.idle_for())?
            .id
            .clone();
        map.remove(&oldest)
    }

    /// Sessions unused for longer than `max` are ended (clients that vanished without DELETE).
    pub fn reap(&self, max: Duration) -> Vec<Arc<Session>> {
        let mut map = self.lock();
        let stale: Vec<String> = map
            .iter()
            .filter(|(_, s)| s.idle_for() > max)
            .map(|(k, _)| k.clone())
            .collect();
        stale.iter().filter_map(|k| map.remove(k)).collect()
    }

    pub fn drain(&self) -> Vec<Arc<Session>> {
        self.lock().drain().map(|(_, s)| s).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_128_random_bits() {
        let (a, b) = (new_id(), new_id());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
