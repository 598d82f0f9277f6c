//! What the audit trail says about the last 24 hours, for the dashboard: per server the calls
//! and denials per hour (the sparklines), the era and time it was last seen, and the alert
//! records. Read from the audit directory, so every proxy process sharing the state dir (each
//! `wrap`, each `serve`) is reflected, not only the one serving the admin port.
//!
//! Bounded: only files written to in the window are read, newest first, and at most
//! `READ_BUDGET` bytes in all (the newest part of a file larger than what is left); a busy
//! trail shows its most recent part rather than making the page slow.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::Value;

use crate::timefmt::rfc3339_micros;

pub const HOURS: usize = 24;
const READ_BUDGET: u64 = 32 * 1024 * 1024;
/// Alert records kept for the alerts page (the newest).
const MAX_ALERTS: usize = 500;

#[derive(Debug, Clone, Serialize)]
pub struct ServerActivity {
    /// `tools/call` requests from clients, per hour, oldest hour first.
    pub calls: Vec<u64>,
    /// Records with `decision = "deny"`, per hour.
    pub denials: Vec<u64>,
    pub last_seen: Option<String>,
    pub era: Option<String>,
    /// When `era` was seen (files are read newest first, not in time order).
    #[serde(skip)]
    era_ts: String,
}

#[derive(Debug, Default)]
pub struct Activity {
    pub servers: BTreeMap<String, ServerActivity>,
    /// Alert records (`alert: true`), oldest first.
    pub alerts: Vec<Value>,
    /// Audit ids of alerts acknowledged on the dashboard (`alert.acknowledged` records).
    pub acked: std::collections::HashSet<String>,
    /// True when the read budget cut the window short.
    pub truncated: bool,
}

impl Default for ServerActivity {
    /// No traffic in the window: 24 empty hours.
    fn default() -> Self {
        ServerActivity {
            calls: vec![0; HOURS],
            denials: vec![0; HOURS],
            last_seen: None,
            era: None,
            era_ts: String::new(),
        }
    }
}

/// `starts[i]` is the first timestamp of hour `i` (hour 23 ends now). RFC 3339 UTC strings of
/// one fixed format sort as time does, so records are bucketed without parsing dates.
fn hour_starts(now: SystemTime) -> Vec<String> {
    (0..HOURS)
        .map(|i| rfc3339_micros(now - Duration::from_secs(3600 * (HOURS - i) as u64)))
        .collect()
}

fn bucket(starts: &[String], ts: &str) -> Option<usize> {
    if starts.first().is_none_or(|first| ts < first.as_str()) {
        return None;
    }
    Some(starts.partition_point(|s| s.as_str() <= ts) - 1)
}

/// The audit files modified in the window, newest first.
fn recent_files(dir: &Path, since: SystemTime) -> Vec<(PathBuf, u64)> {
    let mut files: Vec<(PathBuf, u64)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| {
                    let p = e.path();
                    let m = e.metadata().ok()?;
                    (p.extension().is_some_and(|x| x == "jsonl")
                        && m.is_file()
                        && m.modified().is_ok_and(|t| t >= since))
                    .then_some((p, m.len()))
                })
                .collect()
        })
        .unwrap_or_default();
    // Names start with a UTC timestamp: name order is age order.
    files.sort();
    files.reverse();
    files
}

/// The last `max` bytes of `path`, from the first whole line.
fn tail(path: &Path, len: u64, max: u64) -> Option<Vec<u8>> {
    let mut f = std::fs::File::open(path).ok()?;
    let start = len.saturating_sub(max);
    f.seek(SeekFrom::Start(start)).ok()?;
    let mut buf = Vec::new();
    f.take(max).read_to_end(&mut buf).ok()?;
    if start > 0 {
        let cut = buf
            .iter()
            .position(|&b| b == b'\n')
            .map_or(buf.len(), |i| i + 1);
        buf.drain(..cut);
    }
    Some(buf)
}

pub fn scan(dir: &Path, now: SystemTime) -> Activity {
    let starts = hour_starts(now);
    let since = now - Duration::from_secs(3600 * HOURS as u64);
    let mut out = Activity::default();
    let mut budget = READ_BUDGET;
    for (path, len) in recent_files(dir, since) {
        if budget == 0 {
            out.truncated = true;
            break;
        }
        if len > budget {
            out.truncated = true;
        }
        let Some(bytes) = tail(&path, len, budget) else {
            continue;
        };
        budget = budget.saturating_sub(len);
        for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            if let Ok(rec) = serde_json::from_slice::<Value>(line) {
                out.add(&starts, rec);
            }
        }
    }
    out.alerts
        .sort_by(|a, b| a["ts"].as_str().cmp(&b["ts"].as_str()));
    let extra = out.alerts.len().saturating_sub(MAX_ALERTS);
    out.alerts.drain(..extra);
    out
}

impl Activity {
    fn add(&mut self, starts: &[String], rec: Value) {
        let ts = rec["ts"].as_str().unwrap_or_default();
        let Some(hour) = bucket(starts, ts) else {
            return;
        };
        let server = rec["server"].as_str().unwrap_or_default();
        if !server.is_empty() {
            let s = self.servers.entry(server.to_owned()).or_default();
            if rec["method"] == "tools/call" && rec["direction"] == "client_to_server" {
                s.calls[hour] += 1;
            }
            if rec["decision"] == "deny" {
                s.denials[hour] += 1;
            }
            // Seen means the server's own traffic, not an operator acting on its pins.
            let operator = rec["session"] == "admin";
            if !operator && s.last_seen.as_deref().is_none_or(|seen| seen < ts) {
                s.last_seen = Some(ts.to_owned());
            }
            if let Some(era) = rec["era"].as_str() {
                if s.era_ts.as_str() < ts {
                    s.era = Some(era.to_owned());
                    s.era_ts = ts.to_owned();
                }
            }
        }
        if rec["event"] == "alert.acknowledged" {
            if let Some(id) = rec["detail"]["alert"].as_str() {
                self.acked.insert(id.to_owned());
            }
        }
        if rec["alert"] == true {
            self.alerts.push(rec);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn buckets_by_hour_and_counts_calls_denials_and_alerts() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let ts = |ago: u64| rfc3339_micros(now - Duration::from_secs(ago));
        let lines = [
            serde_json::json!({"ts": ts(60), "server": "fs", "method": "tools/call",
                "direction": "client_to_server", "decision": "allow", "era": "legacy"}),
            serde_json::json!({"ts": ts(120), "server": "fs", "method": "tools/call",
                "direction": "client_to_server", "decision": "deny", "alert": true}),
            serde_json::json!({"ts": ts(3 * 3600 + 5), "server": "fs", "method": "tools/list",
                "direction": "client_to_server", "decision": "allow"}),
            // An operator's action is not the server being seen.
            serde_json::json!({"ts": ts(30), "server": "fs", "session": "admin",
                "direction": "proxy", "decision": "allow", "event": "pins.approved"}),
            serde_json::json!({"ts": ts(20), "server": "", "session": "admin",
                "event": "alert.acknowledged", "detail": {"alert": "a-1"}}),
            // Outside the window: ignored.
            serde_json::json!({"ts": ts(30 * 3600), "server": "old", "method": "tools/call",
                "direction": "client_to_server", "decision": "deny"}),
        ];
        let mut f = std::fs::File::create(dir.path().join("20260101T000000Z-fs-1.jsonl")).unwrap();
        for l in &lines {
            writeln!(f, "{l}").unwrap();
        }
        writeln!(f, "not json").unwrap();
        drop(f);
        let a = scan(dir.path(), now);
        let fs = &a.servers["fs"];
        assert_eq!(fs.calls[HOURS - 1], 2);
        assert_eq!(fs.denials[HOURS - 1], 1);
        assert_eq!(fs.calls.iter().sum::<u64>(), 2, "a listing is not a call");
        assert_eq!(fs.era.as_deref(), Some("legacy"));
        assert_eq!(fs.last_seen.as_deref(), Some(ts(60).as_str()));
        assert!(!a.servers.contains_key("old"));
        assert_eq!(a.alerts.len(), 1);
        assert!(a.acked.contains("a-1"));
        assert!(!a.truncated);
    }

    #[test]
    fn tail_starts_at_a_whole_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.jsonl");
        std::fs::write(&p, b"aaaa\nbb\ncc\n").unwrap();
        assert_eq!(tail(&p, 11, 5).unwrap(), b"cc\n");
        assert_eq!(tail(&p, 11, 100).unwrap(), b"aaaa\nbb\ncc\n");
    }
}
