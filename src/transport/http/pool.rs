//! Pre-started stdio servers: a new HTTP session takes a warm process instead of waiting for one
//! to start (a `node` server takes ~0.5 s), and the pool refills in the background. Each
//! process serves exactly one session (isolation) and is never returned.

use std::io;
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::transport::child;

pub struct Pool {
    argv: Vec<String>,
    size: usize,
    warm: Mutex<Vec<Child>>,
    refilling: AtomicBool,
    stopped: AtomicBool,
}

impl Pool {
    pub fn new(argv: Vec<String>, size: usize) -> Arc<Pool> {
        let pool = Arc::new(Pool {
            argv,
            size,
            warm: Mutex::new(Vec::new()),
            refilling: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
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
            None => child::spawn(&self.argv),
        }
    }

    /// Top the pool up on a background thread (process start-up must not stall a request).
    pub fn refill(self: &Arc<Self>) {
        if self.size == 0 || self.refilling.swap(true, Ordering::AcqRel) {
            return;
        }
        let pool = self.clone();
        let spawned = std::thread::Builder::new()
            .name("pool-refill".into())
            .spawn(move || {
                while !pool.stopped.load(Ordering::Acquire) && pool.warm().len() < pool.size {
                    match child::spawn(&pool.argv) {
                        Ok(c) => pool.warm().push(c),
                        Err(e) => {
                            tracing::warn!("cannot pre-start {:?}: {e}", pool.argv.join(" "));
                            break;
                        }
                    }
                }
                pool.refilling.store(false, Ordering::Release);
            });
        if spawned.is_err() {
            self.refilling.store(false, Ordering::Release);
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
