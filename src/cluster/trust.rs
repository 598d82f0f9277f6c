//! Trust histories on Redis, so every replica scores a server from what all of them observed
//! (`trust` and `/api/v1/servers` agree). One hash per server, `<prefix>:trust:<server>`:
//! `d:<day>:<counter>` → count, `first_seen`, `last_seen`; the set `<prefix>:trust:servers`
//! names them. A batch is merged by one Lua script (increments, min/max, prune to the window),
//! so concurrent replicas lose no update, as the file store's lock guarantees on one host.

use std::io;
use std::sync::Arc;

use super::conn::Conn;
use crate::trust::buckets::{day_of, Counter, History, WINDOW_DAYS};
use crate::trust::SharedTrust;

/// KEYS[1] the hash, KEYS[2] the server set; ARGV: server, first_seen|"", last_seen|"",
/// min_day, max_day, then field/increment pairs. Returns the whole hash.
const MERGE: &str = r"
local h = KEYS[1]
redis.call('SADD', KEYS[2], ARGV[1])
if ARGV[2] ~= '' then
  local f = redis.call('HGET', h, 'first_seen')
  if not f or tonumber(ARGV[2]) < tonumber(f) then redis.call('HSET', h, 'first_seen', ARGV[2]) end
end
if ARGV[3] ~= '' then
  local l = redis.call('HGET', h, 'last_seen')
  if not l or tonumber(ARGV[3]) > tonumber(l) then redis.call('HSET', h, 'last_seen', ARGV[3]) end
end
for i = 6, #ARGV, 2 do
  redis.call('HINCRBY', h, ARGV[i], ARGV[i + 1])
end
local lo, hi = tonumber(ARGV[4]), tonumber(ARGV[5])
for _, k in ipairs(redis.call('HKEYS', h)) do
  local d = string.match(k, '^d:(%d+):')
  if d and (tonumber(d) < lo or tonumber(d) > hi) then redis.call('HDEL', h, k) end
end
return redis.call('HGETALL', h)
";

pub struct RedisTrust {
    conn: Arc<Conn>,
    prefix: String,
    script: redis::Script,
}

fn io_err(why: String) -> io::Error {
    io::Error::other(format!("cluster trust store: {why}"))
}

fn counter_name(c: Counter) -> String {
    match serde_json::to_value(c) {
        Ok(serde_json::Value::String(s)) => s,
        _ => format!("{c:?}"),
    }
}

/// The hash's fields back into a history (unknown counters, e.g. from a newer version, are
/// skipped rather than failing the score).
fn parse(server: &str, pairs: Vec<(String, String)>) -> History {
    let mut h = History::new(server);
    for (k, v) in pairs {
        match k.as_str() {
            "first_seen" => h.first_seen = v.parse().ok(),
            "last_seen" => h.last_seen = v.parse().ok(),
            _ => {
                let mut parts = k.splitn(3, ':');
                let (Some("d"), Some(day), Some(name)) = (parts.next(), parts.next(), parts.next())
                else {
                    continue;
                };
                let counter =
                    serde_json::from_value::<Counter>(serde_json::Value::String(name.into()));
                if let (Ok(day), Ok(counter), Ok(n)) = (day.parse(), counter, v.parse()) {
                    h.days.entry(day).or_default().insert(counter, n);
                }
            }
        }
    }
    h
}

impl RedisTrust {
    pub fn new(conn: Arc<Conn>, prefix: String) -> RedisTrust {
        RedisTrust {
            conn,
            prefix,
            script: redis::Script::new(MERGE),
        }
    }

    fn key(&self, server: &str) -> String {
        format!("{}:trust:{server}", self.prefix)
    }

    fn index(&self) -> String {
        format!("{}:trust:servers", self.prefix)
    }
}

impl SharedTrust for RedisTrust {
    fn load(&self, server: &str) -> io::Result<History> {
        let key = self.key(server);
        let pairs: Vec<(String, String)> = self
            .conn
            .run(|c| redis::cmd("HGETALL").arg(&key).query(c))
            .map_err(io_err)?;
        Ok(parse(server, pairs))
    }

    fn update(&self, server: &str, batch: &History, now: u64) -> io::Result<History> {
        let today = day_of(now);
        let mut inv = self.script.prepare_invoke();
        inv.key(self.key(server)).key(self.index()).arg(server);
        let opt = |v: Option<u64>| v.map_or(String::new(), |v| v.to_string());
        inv.arg(opt(batch.first_seen)).arg(opt(batch.last_seen));
        inv.arg((today + 1).saturating_sub(WINDOW_DAYS))
            .arg(today + 1);
        for (day, counts) in &batch.days {
            for (counter, n) in counts {
                inv.arg(format!("d:{day}:{}", counter_name(*counter)))
                    .arg(*n);
            }
        }
        let pairs: Vec<(String, String)> = self.conn.run(|c| inv.invoke(c)).map_err(io_err)?;
        Ok(parse(server, pairs))
    }

    fn servers(&self) -> io::Result<Vec<String>> {
        let index = self.index();
        let mut names: Vec<String> = self
            .conn
            .run(|c| redis::cmd("SMEMBERS").arg(&index).query(c))
            .map_err(io_err)?;
        names.sort();
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_and_unknown_ones_are_skipped() {
        let name = counter_name(Counter::CallsOk);
        assert_eq!(name, "calls_ok");
        let h = parse(
            "fs",
            vec![
                ("first_seen".into(), "100".into()),
                ("last_seen".into(), "200".into()),
                (format!("d:7:{name}"), "3".into()),
                ("d:7:from_the_future".into(), "1".into()),
                ("junk".into(), "x".into()),
            ],
        );
        assert_eq!((h.first_seen, h.last_seen), (Some(100), Some(200)));
        assert_eq!(h.days[&7][&Counter::CallsOk], 3);
        assert_eq!(h.days[&7].len(), 1);
    }
}
