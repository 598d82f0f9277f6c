//! `/readyz` for `serve` (SPEC §9): ready when every route's policy is loaded and its upstream
//! can serve — a stdio server whose last start succeeded (its pool is warm or can be refilled),
//! an HTTP upstream that accepted a TCP connection on the last probe — and, for a server whose
//! sampling goes to the inference backend, that backend's `/health` and `/v1/models` answered. The admin port runs on
//! its own thread and asks synchronously, so HTTP upstreams are probed in the background and
//! the answer is only read here.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{HttpUpstream, Pool, Route, Upstream};
use crate::config::SamplingRoute;
use crate::inference::Backend;

/// How often HTTP upstreams are probed, and how long one probe may take.
const PROBE_EVERY: Duration = Duration::from_secs(5);
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

enum Probe {
    Pool(Arc<Pool>),
    Http {
        upstream: Arc<HttpUpstream>,
        up: AtomicBool,
    },
}

struct Entry {
    name: String,
    policy: bool,
    probe: Probe,
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
            let probe = match &r.upstream {
                Upstream::Stdio(pool) => Probe::Pool(pool.clone()),
                Upstream::Http(up) => Probe::Http {
                    upstream: up.clone(),
                    up: AtomicBool::new(false),
                },
            };
            entries.push(Entry {
                name: r.name.clone(),
                // The guards refuse to build without a policy; a reload error keeps the old one.
                policy: r.guards.policy.is_some(),
                probe,
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
            let up = match &e.probe {
                Probe::Pool(pool) => pool.healthy(),
                Probe::Http { up, .. } => up.load(Ordering::Acquire),
            };
            if !e.policy {
                failing.push(format!("{}: no policy loaded", e.name));
            } else if !up {
                failing.push(match &e.probe {
                    Probe::Pool(_) => format!("{}: the server process did not start", e.name),
                    Probe::Http { .. } => format!("{}: the upstream cannot be reached", e.name),
                });
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
            .any(|e| matches!(e.probe, Probe::Http { .. }) || e.backend.is_some())
        {
            return;
        }
        let health = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PROBE_EVERY);
            loop {
                tick.tick().await;
                for e in &health.entries {
                    if let Probe::Http { upstream, up } = &e.probe {
                        let ok = upstream.reachable(PROBE_TIMEOUT).await;
                        up.store(ok, Ordering::Release);
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
