//! The tamper-evident audit trail (SPEC §8).
//!
//! | file        | job                                                        |
//! |-------------|------------------------------------------------------------|
//! | `record.rs` | the record's fields, direction and decision                |
//! | `log.rs`    | the hash-chained JSONL writer, fsync policy, flusher       |
//! | `checkpoint.rs` | signed checkpoints of the chain head                   |
//! | `sink.rs`   | a copy of each line for another destination (OTLP)         |
//! | `verify.rs` | chain and checkpoint verification for `audit verify`       |
//! | `tail.rs`   | `audit tail`: follow the newest files                      |
//! | `torn.rs`   | a torn last line quarantined and cut off when a file is reopened |
//! | `retention.rs` | start-up housekeeping: empty files, `retention_days`, `max_files` |

pub mod checkpoint;
pub mod log;
pub mod record;
pub mod retention;
pub mod sink;
pub mod tail;
pub mod torn;
pub mod verify;

pub use log::{AuditLog, Fsync, OnFailure};
pub use record::{Decision, Direction, Record};
pub use sink::RecordSink;

use sha2::{Digest, Sha256};

/// Digest of an argument value: what the audit keeps instead of the value itself.
pub fn args_digest(raw: &[u8]) -> String {
    hex::encode(Sha256::digest(raw))
}
