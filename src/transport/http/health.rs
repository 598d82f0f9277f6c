//! `/readyz` for `serve` (SPEC §9): ready when every route's policy is loaded and its upstream
//! can serve — a stdio server whose last start succeeded (its pool is warm or can be refilled),
//! an HTTP upstream that accepted a TCP connection on the last probe — and, for a server whose
//! sampling goes to the inference backend, that backend's `/health` and `/v1/models` answered. The admin port runs on
//! its own thread and asks synchronously, so HTTP upstreams are probed in the background and
//! the answer is only read here.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::Route;
use crate::config::SamplingRoute;
use crate::inference::Backend;

/// How often HTTP upstreams are probed, and how long one probe may take.
const PROBE_EVERY: Duration = Duration::from_secs(5);
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

struct Entry {
    name: String,
    policy: bool,
    /// The route, for its upstream's readiness (`Upstream::ready`, `probe`).
    route: Arc<Route>,
    /// The last background probe's answer (HTTP upstreams).
    probed: AtomicBool,
    /// `sampling = "backend"`: the inference backend must answer `/health` and list a model.
    backend: Option<(Arc<Backend>, AtomicBool)>,
}

pub struct Health {
    entries: Vec<Entry>,
}

impl Health {
    /// One entry per configured server (a route reachable under several paths counts once).
    pub fn new<'a>(routes: impl IntoIterator<Item = &'a Arc<Route>>) -> Health {
        let mut entries: Vec<Entry> = Vec::new();
        for r in routes {
            if entries.iter().any(|e| e.name == r.name) {
                continue;
            }
            entries.push(Entry {
                name: r.name.clone(),
                // The guards refuse to build without a policy; a reload error keeps the old one.
                policy: r.guards.policy.is_some(),
                route: r.clone(),
                probed: AtomicBool::new(false),
                backend: r
                    .guards
                    .inference
                    .clone()
                    .filter(|_| r.guards.sampling == SamplingRoute::Backend)
                    .map(|b| (b, AtomicBool::new(false))),
            });
        }
        Health { entries }
    }

    /// Every server ready (see the module doc).
    pub fn ready(&self) -> bool {
        self.check().is_ok()
    }

    /// Ready, or which servers are not and why (what `/readyz` says).
    pub fn check(&self) -> Result<(), String> {
        let mut failing = Vec::new();
        for e in &self.entries {
            let ready = e.route.upstream.ready(e.probed.load(Ordering::Acquire));
            let up = ready.is_ok();
            if !e.policy {
                failing.push(format!("{}: no policy loaded", e.name));
            } else if let Err(why) = ready {
                failing.push(format!("{}: {why}", e.name));
            }
            let backend_down = e
                .backend
                .as_ref()
                .is_some_and(|(_, ok)| !ok.load(Ordering::Acquire));
            if backend_down && e.policy && up {
                failing.push(format!("{}: the inference backend is down", e.name));
            }
        }
        if failing.is_empty() {
            Ok(())
        } else {
            Err(failing.join("; "))
        }
    }

    /// Probe the HTTP upstreams now and every few seconds, on the serve runtime.
    pub fn spawn_probes(self: &Arc<Self>) {
        if !self
            .entries
            .iter()
            .any(|e| e.route.upstream.probed() || e.backend.is_some())
        {
            return;
        }
        let health = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PROBE_EVERY);
            loop {
                tick.tick().await;
                for e in &health.entries {
                    if e.route.upstream.probed() {
                        let ok = e.route.upstream.probe(PROBE_TIMEOUT).await;
                        e.probed.store(ok, Ordering::Release);
                    }
                    if let Some((backend, up)) = &e.backend {
                        // `/health` then `/v1/models`; the client blocks, so off the workers.
                        let b = backend.clone();
                        let ok = tokio::task::spawn_blocking(move || b.health())
                            .await
                            .map(|r| r.is_ok())
                            .unwrap_or(false);
                        up.store(ok, Ordering::Release);
                    }
                }
            }
        });
    }
}
