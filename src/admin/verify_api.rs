//! `GET /api/v1/audit/files`: `audit verify` of each file of the trail (the chain, and the
//! checkpoints against the identity key, which signs them), with its last checkpoint. The same
//! functions as the CLI (`audit::verify`); bounded to the newest files and a size per file.

use hyper::StatusCode;
use serde_json::{json, Value};

use super::api::Reply;
use super::dashboard::Dashboard;
use crate::audit::verify::{self, ChainReport};

/// Files verified per request (the newest).
const MAX_FILES: usize = 50;
/// Larger files are reported, not read here (`mcp-warden audit verify FILE` does them).
const MAX_BYTES: u64 = 64 * 1024 * 1024;

pub fn files(d: &Dashboard) -> Reply {
    let mut paths: Vec<std::path::PathBuf> = match std::fs::read_dir(&d.audit_dir) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({ "error": format!("audit directory unreadable: {e}") }),
            )
        }
    };
    paths.sort();
    paths.reverse();
    let total = paths.len();
    paths.truncate(MAX_FILES);
    let key = d.key.as_ref().map(|k| k.verifying_key());
    let list: Vec<Value> = paths
        .iter()
        .map(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            let size = std::fs::metadata(p).map_or(0, |m| m.len());
            if size > MAX_BYTES {
                return json!({ "file": name, "bytes": size, "status": "not checked here (too large)" });
            }
            let bytes = match std::fs::read(p) {
                Ok(b) => b,
                Err(e) => return json!({ "file": name, "status": "unreadable", "reason": e.to_string() }),
            };
            let mut row = json!({
                "file": name,
                "bytes": size,
                "lines": bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count(),
                "last_checkpoint": last_checkpoint(&bytes),
            });
            let outcome = match &key {
                Some(k) => verify::verify_with_key(&bytes, k).map(|c| Some((c.checkpoints, c.unsigned_tail))),
                None => match verify::verify_chain(&bytes) {
                    ChainReport::Intact { .. } => Ok(None),
                    broken => Err(broken),
                },
            };
            match outcome {
                Ok(cp) => {
                    row["status"] = json!("intact");
                    if let Some((checkpoints, tail)) = cp {
                        row["checkpoints"] = json!(checkpoints);
                        row["unsigned_tail"] = json!(tail);
                    }
                }
                Err(ChainReport::Broken { line, reason }) => {
                    row["status"] = json!("broken");
                    row["line"] = json!(line);
                    row["reason"] = json!(reason);
                }
                Err(ChainReport::Intact { .. }) => row["status"] = json!("intact"),
            }
            row
        })
        .collect();
    (
        StatusCode::OK,
        json!({ "files": list, "total_files": total, "key_checked": key.is_some() }),
    )
}

/// `{seq, ts}` of the file's last checkpoint record.
fn last_checkpoint(bytes: &[u8]) -> Value {
    bytes
        .split(|&b| b == b'\n')
        .rev()
        .filter(|l| !l.is_empty())
        .filter_map(|l| serde_json::from_slice::<Value>(l).ok())
        .find(|v| v["event"] == "checkpoint")
        .map_or(Value::Null, |v| json!({ "seq": v["seq"], "ts": v["ts"] }))
}
