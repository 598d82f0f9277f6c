//! `audit verify`: walk a file's hash chain and name the first line that breaks it.

use sha2::{Digest, Sha256};

use super::log::GENESIS;

/// The outcome of checking one file.
#[derive(Debug, PartialEq, Eq)]
pub enum ChainReport {
    Intact { lines: u64 },
    Broken { line: u64, reason: String },
}

/// What the checkpoints of an intact file say, when a key was given.
#[derive(Debug, PartialEq, Eq)]
pub struct CheckpointReport {
    pub checkpoints: u64,
    /// Records after the last valid checkpoint (not covered by a signature).
    pub unsigned_tail: u64,
}

/// Check the chain, then every checkpoint's signature with `key`. A checkpoint that does not
/// verify breaks the file at its line.
pub fn verify_with_key(
    bytes: &[u8],
    key: &ed25519_dalek::VerifyingKey,
) -> Result<CheckpointReport, ChainReport> {
    match verify_chain(bytes) {
        ChainReport::Intact { .. } => {}
        broken => return Err(broken),
    }
    let (mut checkpoints, mut tail) = (0, 0);
    for (i, line) in bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        let v: serde_json::Value = serde_json::from_slice(line).unwrap_or_default();
        if v.get("event").and_then(|e| e.as_str()) == Some("checkpoint") {
            super::checkpoint::verify(&v, key).map_err(|reason| ChainReport::Broken {
                line: i as u64 + 1,
                reason,
            })?;
            checkpoints += 1;
            tail = 0;
        } else {
            tail += 1;
        }
    }
    Ok(CheckpointReport {
        checkpoints,
        unsigned_tail: tail,
    })
}

/// Check every line's `prev` against the hash of the line before, and that `seq` counts up.
pub fn verify_chain(bytes: &[u8]) -> ChainReport {
    let mut prev = GENESIS.to_owned();
    let mut expected_seq: Option<u64> = None;
    let mut n = 0u64;
    for line in bytes.split(|&b| b == b'\n') {
        if line.is_empty() {
            continue;
        }
        n += 1;
        let v: serde_json::Value = match serde_json::from_slice(line) {
            Ok(v) => v,
            Err(e) => return broken(n, format!("not a JSON record: {e}")),
        };
        match v.get("prev").and_then(|p| p.as_str()) {
            Some(p) if p == prev => {}
            Some(p) => {
                return broken(
                    n,
                    format!("prev is {p} but the line before hashes to {prev}"),
                )
            }
            None => return broken(n, "record has no prev field".into()),
        }
        let seq = v.get("seq").and_then(|s| s.as_u64());
        match (seq, expected_seq) {
            (Some(s), Some(e)) if s != e => {
                return broken(
                    n,
                    format!("seq {s} follows seq {} (lines removed or reordered)", e - 1),
                )
            }
            (None, _) => return broken(n, "record has no seq".into()),
            _ => {}
        }
        expected_seq = seq.map(|s| s + 1);
        prev = hex::encode(Sha256::digest(line));
    }
    ChainReport::Intact { lines: n }
}

fn broken(line: u64, reason: String) -> ChainReport {
    ChainReport::Broken { line, reason }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{log::Fsync, AuditLog, Direction, Record};

    #[test]
    fn detects_edits_deletions_and_reordering() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        let log = AuditLog::open_file(&path, Fsync::Never).unwrap();
        for i in 0..4 {
            let mut r = Record::new("s", "srv", Direction::ClientToServer, i);
            r.method = Some(format!("m{i}"));
            log.write(r).unwrap();
        }
        log.flush().unwrap();
        let good = std::fs::read(&path).unwrap();
        assert_eq!(verify_chain(&good), ChainReport::Intact { lines: 4 });

        let text = String::from_utf8(good.clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let edited = text.replacen("\"m2\"", "\"mX\"", 1);
        assert!(matches!(
            verify_chain(edited.as_bytes()),
            ChainReport::Broken { line: 4, .. }
        ));
        let deleted = format!("{}\n{}\n{}\n", lines[0], lines[2], lines[3]);
        assert!(matches!(
            verify_chain(deleted.as_bytes()),
            ChainReport::Broken { line: 2, .. }
        ));

        // Reopening continues the chain.
        drop(log);
        let log = AuditLog::open_file(&path, Fsync::Never).unwrap();
        log.write(Record::new("s", "srv", Direction::Proxy, 0))
            .unwrap();
        log.flush().unwrap();
        assert_eq!(
            verify_chain(&std::fs::read(&path).unwrap()),
            ChainReport::Intact { lines: 5 }
        );
    }
}
