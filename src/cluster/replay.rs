//! Cluster-wide replay claims: `SET <prefix>:replay:<kid>:<nonce hex> 1 NX PX <window>`. The
//! first replica to claim a nonce wins; every other one (and a second claim on the same one)
//! finds it taken. The key expires when no message carrying the nonce could pass the clock
//! check anyway, so Redis memory is bounded by the signed traffic of one window.

use std::sync::Arc;

use super::conn::Conn;
use crate::sig::{Claim, SharedReplay};

pub struct RedisReplay {
    pub(super) conn: Arc<Conn>,
    pub(super) prefix: String,
}

impl SharedReplay for RedisReplay {
    fn claim(&self, kid: &str, nonce: &[u8], ttl_secs: u64) -> Claim {
        let key = format!("{}:replay:{}:{}", self.prefix, kid, hex::encode(nonce));
        let ttl_ms = ttl_secs.saturating_mul(1000).max(1);
        let set = self.conn.run(|c| {
            redis::cmd("SET")
                .arg(&key)
                .arg(1)
                .arg("NX")
                .arg("PX")
                .arg(ttl_ms)
                .query::<Option<String>>(c)
        });
        match set {
            Ok(Some(_)) => Claim::Fresh,
            Ok(None) => Claim::Seen,
            Err(why) if self.conn.health.fail_closed() => Claim::Unavailable(why),
            // Audit mode: the local cache already passed it; the outage was alerted once.
            Err(_) => Claim::Fresh,
        }
    }
}
