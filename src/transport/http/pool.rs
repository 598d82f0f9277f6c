//! Pre-started stdio servers: a new HTTP session takes a warm process instead of waiting for one
//! to start (a `node` server takes ~0.5 s), and the pool refills in the background. Each
//! process serves exactly one session (isolation) and is never returned.
//!
//! Every process is started on the process-starter thread (`child::on_starter`), refills and
//! on-demand starts alike: the callers here are tokio's blocking threads, and a child's
//! parent-death signal fires when the thread that started it exits.

use std::io;
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::transport::child;

pub struct Pool {
    argv: Vec<String>,
    size: usize,
    warm: Mutex<Vec<Child>>,
    stopped: AtomicBool,
    /// Whether the last attempt to start the server worked (`/readyz`); a pool of size 0 is
    /// assumed able to start one until a session proves otherwise.
    last_start_ok: AtomicBool,
}

impl Pool {
    pub fn new(argv: Vec<String>, size: usize) -> Arc<Pool> {
        let pool = Arc::new(Pool {
            argv,
            size,
            warm: Mutex::new(Vec::new()),
            stopped: AtomicBool::new(false),
            last_start_ok: AtomicBool::new(size == 0),
        });
        pool.refill();
        pool
    }

    pub fn argv(&self) -> &[String] {
        &self.argv
    }

    fn warm(&self) -> std::sync::MutexGuard<'_, Vec<Child>> {
        self.warm.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A started process for a new session: a warm one that is still alive, else a fresh one.
    pub fn take(self: &Arc<Self>) -> io::Result<Child> {
        let found = {
            let mut warm = self.warm();
            let mut found = None;
            while let Some(mut c) = warm.pop() {
                if matches!(c.try_wait(), Ok(None)) {
                    found = Some(c);
                    break;
                }
                // It died waiting (crash at start-up): reaped by try_wait, try the next.
            }
            found
        };
        self.refill();
        match found {
            Some(c) => Ok(c),
            None => {
                let started = child::spawn_lasting(&self.argv);
                self.last_start_ok.store(started.is_ok(), Ordering::Release);
                started
            }
        }
    }

    /// Ready to serve a session: the last start of the server succeeded (warm or refillable).
    pub fn healthy(&self) -> bool {
        self.last_start_ok.load(Ordering::Acquire)
    }

    /// Ask the process-starter thread to top up (process start-up must not stall a request).
    pub fn refill(self: &Arc<Self>) {
        if self.size == 0 || self.stopped.load(Ordering::Acquire) {
            return;
        }
        // Only a weak handle: a pool dropped before its turn is not kept alive by it.
        let weak = Arc::downgrade(self);
        let job = Box::new(move || {
            if let Some(pool) = weak.upgrade() {
                pool.fill();
            }
        });
        if child::on_starter(job).is_err() {
            tracing::warn!("no pre-started processes: there is no process-starting thread");
        }
    }

    /// Runs on the process-starter thread (`refill`), so it starts processes there directly.
    fn fill(&self) {
        while !self.stopped.load(Ordering::Acquire) && self.warm().len() < self.size {
            match child::spawn(&self.argv) {
                Ok(c) => {
                    self.last_start_ok.store(true, Ordering::Release);
                    self.warm().push(c)
                }
                Err(e) => {
                    self.last_start_ok.store(false, Ordering::Release);
                    tracing::warn!("cannot pre-start {:?}: {e}", self.argv.join(" "));
                    return;
                }
            }
        }
    }

    /// Stop the warm processes (shutdown).
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        for mut c in self.warm().drain(..) {
            child::signal_group(c.id(), libc::SIGTERM);
            let _ = c.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A session's server outlives the (short-lived) thread that asked for it: tokio's blocking
    /// threads exit when idle, and a child they had started themselves got SIGTERM then.
    #[test]
    fn a_server_started_on_demand_outlives_the_thread_that_asked() {
        let pool = Pool::new(vec!["sleep".into(), "30".into()], 0);
        let asker = {
            let pool = pool.clone();
            std::thread::spawn(move || pool.take().expect("start"))
        };
        let mut child = asker.join().unwrap();
        // The asking thread is gone, and so is the pool (its own thread ends with it); give a
        // parent-death signal time to land.
        pool.stop();
        drop(pool);
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            matches!(child.try_wait(), Ok(None)),
            "the server died with the thread that asked for it: {:?}",
            child.try_wait()
        );
        child::signal_group(child.id(), libc::SIGKILL);
        let _ = child.wait();
    }
}
