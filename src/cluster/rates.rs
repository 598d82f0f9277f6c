//! Cluster-wide rate limits: the same GCRA as the local limiter (`policy/ratelimit.rs`), run
//! atomically inside Redis by a Lua script, timed by the Redis server's clock so the replicas'
//! clocks never disagree about it. One key per (client identity, server, tool); it expires when
//! fully recovered.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::conn::Conn;
use crate::policy::{Rate, RateDecision, SharedRates};

/// KEYS[1] = the key's tat (µs, Redis time); ARGV = interval, tau (µs).
/// Returns 0 when allowed, else the wait in µs before a call would be.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local cap = now + tau + interval
if tat > cap then tat = cap end
if tat - now > tau then
  return math.max(1, tat - now - tau)
end
local nxt = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', nxt), 'PX', math.ceil((nxt - now) / 1000) + 1)
return 0
";

pub struct RedisRates {
    pub(super) conn: Arc<Conn>,
    pub(super) prefix: String,
    pub(super) script: redis::Script,
}

impl RedisRates {
    pub fn new(conn: Arc<Conn>, prefix: String) -> RedisRates {
        RedisRates {
            conn,
            prefix,
            script: redis::Script::new(GCRA),
        }
    }
}

impl SharedRates for RedisRates {
    fn check(&self, client: &str, server: &str, tool: &str, rate: Rate) -> RateDecision {
        // Hashed: identities and tool names are the clients' choice, keys stay short and safe.
        let mut h = Sha256::new();
        for part in [client, server, tool] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        let key = format!("{}:rate:{}", self.prefix, hex::encode(&h.finalize()[..16]));
        let count = u64::from(rate.count.max(1));
        let interval = (rate.per.as_micros() as u64 / count).max(1);
        let tau = interval.saturating_mul(count - 1);
        let run = self.conn.run(|c| {
            self.script
                .key(&key)
                .arg(interval)
                .arg(tau)
                .invoke::<u64>(c)
        });
        match run {
            Ok(0) => RateDecision::Ok,
            Ok(wait_us) => RateDecision::Limited {
                retry_after_ms: wait_us.div_ceil(1000).max(1),
            },
            Err(why) if self.conn.health.fail_closed() => RateDecision::Unavailable {
                retry_after_ms: self.conn.retry_after_ms(),
                reason: format!(
                    "the cluster-wide rate limit of {tool} cannot be counted: the shared store \
                     (Redis) is unreachable ({why}); retry later"
                ),
            },
            // Audit mode: the local limiter (already passed) is all there is for now.
            Err(_) => RateDecision::Ok,
        }
    }
}
