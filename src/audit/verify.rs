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
///
/// Which line is named when a link breaks between line `n-1` and line `n`:
/// - `seq` of line `n` does not follow (lines deleted, reordered or inserted): line `n`, where
///   the gap shows;
/// - `seq` follows but line `n`'s `prev` is not the hash of line `n-1`: a line's own `prev`
///   still links after its content was edited, so the edit shows one line later. Line `n-1` is
///   named — unless line `n` is itself not what line `n+1` recorded (its `prev` or content was
///   edited too), then line `n`: it is the one proven changed, and line `n-1` cannot be vouched
///   for. (An edit of the very last line leaves no later `prev` to betray it; the signed
///   checkpoints cover that.)
/// - line 1 whose `prev` is not the genesis hash: line 1 (or lines removed before it, when its
///   `seq` is not 1).
pub fn verify_chain(bytes: &[u8]) -> ChainReport {
    let lines: Vec<&[u8]> = bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let mut prev = GENESIS.to_owned();
    let mut expected_seq: Option<u64> = None;
    for (i, line) in lines.iter().enumerate() {
        let n = i as u64 + 1;
        let v: serde_json::Value = match serde_json::from_slice(line) {
            Ok(v) => v,
            Err(e) => return broken(n, format!("not a JSON record: {e}")),
        };
        let seq = v.get("seq").and_then(|s| s.as_u64());
        match (seq, expected_seq) {
            (None, _) => return broken(n, "record has no seq".into()),
            (Some(s), Some(e)) if s != e => {
                return broken(
                    n,
                    format!(
                        "seq {s} follows seq {}: lines were removed, reordered or inserted before this line",
                        e - 1
                    ),
                )
            }
            _ => {}
        }
        match v.get("prev").and_then(|p| p.as_str()) {
            Some(p) if p == prev => {}
            Some(p) if n == 1 => {
                let why = if seq == Some(1) {
                    "line 1 was changed: its prev is not the genesis hash"
                } else {
                    "lines were removed from the start of the file"
                };
                return broken(1, format!("{why} (prev is {p})"));
            }
            Some(p) => {
                let this = hex::encode(Sha256::digest(line));
                let next_links = lines
                    .get(i + 1)
                    .and_then(|l| serde_json::from_slice::<serde_json::Value>(l).ok())
                    .map(|next| next.get("prev").and_then(|p| p.as_str()) == Some(&this));
                if next_links == Some(false) {
                    return broken(
                        n,
                        format!(
                            "line {n} was changed: its hash is not the prev that line {} recorded, \
                             and its own prev {p} is not the hash of line {} either (that line \
                             may have been changed too)",
                            n + 1,
                            n - 1
                        ),
                    );
                }
                return broken(
                    n - 1,
                    format!(
                        "line {} was changed after it was written: it hashes to {prev}, but line {n} \
                         recorded prev {p}",
                        n - 1
                    ),
                );
            }
            None => return broken(n, "record has no prev field".into()),
        }
        expected_seq = seq.map(|s| s + 1);
        prev = hex::encode(Sha256::digest(line));
    }
    ChainReport::Intact {
        lines: lines.len() as u64,
    }
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
        // m2 is on line 3: the edited line is named, not the next one.
        let edited = text.replacen("\"m2\"", "\"mX\"", 1);
        assert!(matches!(
            verify_chain(edited.as_bytes()),
            ChainReport::Broken { line: 3, .. }
        ));
        let first = text.replacen("\"m0\"", "\"mX\"", 1);
        assert!(matches!(
            verify_chain(first.as_bytes()),
            ChainReport::Broken { line: 1, .. }
        ));
        // A deleted line: named where the gap shows (the line after it).
        let deleted = format!("{}\n{}\n{}\n", lines[0], lines[2], lines[3]);
        assert!(matches!(
            verify_chain(deleted.as_bytes()),
            ChainReport::Broken { line: 2, .. }
        ));
        // Reordered lines: named where the order breaks.
        let swapped = format!("{}\n{}\n{}\n{}\n", lines[0], lines[2], lines[1], lines[3]);
        assert!(matches!(
            verify_chain(swapped.as_bytes()),
            ChainReport::Broken { line: 2, .. }
        ));
        // Line 3's prev rewritten: line 3 is proven changed (line 4 does not link to it).
        let v3: serde_json::Value = serde_json::from_str(lines[2]).unwrap();
        let p3 = v3["prev"].as_str().unwrap();
        let reprev = text.replacen(p3, &"f".repeat(64), 1);
        assert!(matches!(
            verify_chain(reprev.as_bytes()),
            ChainReport::Broken { line: 3, .. }
        ));
        // The edited line is the one before the last: the last line still names it.
        let penultimate = text.replacen("\"m2\"", "\"mX\"", 1);
        let only3 = penultimate.lines().take(4).collect::<Vec<_>>().join("\n");
        assert!(matches!(
            verify_chain(only3.as_bytes()),
            ChainReport::Broken { line: 3, .. }
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

    #[test]
    fn torn_tail_is_recovered_on_reopen_and_the_chain_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        let log = AuditLog::open_file(&path, Fsync::Never).unwrap();
        log.write(Record::new("s", "srv", Direction::ClientToServer, 1))
            .unwrap();
        log.flush().unwrap();
        drop(log);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(b"{\"v\":1,\"seq\":3,\"ts\":\"2026");
        std::fs::write(&path, &bytes).unwrap();

        let log = AuditLog::open_file(&path, Fsync::Never).unwrap();
        log.write(Record::new("s", "srv", Direction::ClientToServer, 2))
            .unwrap();
        log.flush().unwrap();
        drop(log);
        let after = std::fs::read(&path).unwrap();
        assert!(matches!(verify_chain(&after), ChainReport::Intact { .. }));
        let text = String::from_utf8(after).unwrap();
        let rec: serde_json::Value = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|v| v["event"] == "audit.recovered")
            .expect("recovery record");
        assert_eq!(rec["detail"]["torn_bytes"], 25);
        let q = rec["detail"]["quarantine"].as_str().unwrap();
        assert_eq!(
            std::fs::read(q).unwrap(),
            b"{\"v\":1,\"seq\":3,\"ts\":\"2026"
        );
    }
}
