//! Capability baselines ("pins", SPEC §5): what each server was approved to offer, and what
//! happens when it starts offering something else.
//!
//! | file          | job                                                                       |
//! |---------------|---------------------------------------------------------------------------|
//! | `file.rs`     | the pin file `<server>.json`: definitions + SHA-256 of their JCS, origin |
//! | `held.rs`     | the held file `<server>.held.json`: what a proxy kept back, for review    |
//! | `store.rs`    | where the files live; flock + atomic rename for concurrent proxies        |
//! | `drift.rs`    | live listing vs pin: Unchanged / Changed / New / removed; readable diffs  |
//! | `scan.rs`     | the scanner seam, adapting `checks::poison_scan`                          |
//! | `decision.rs` | `ListingDecision`, `CallDecision` (→ -32015 / -32602), `PinEvent`s         |
//! | `plan.rs`     | one listing's decision, made under the store lock (first use, holds)      |
//! | `baseline.rs` | the runtime object the pipeline calls for listings and calls              |
//! | `commands.rs` | `pins list / diff / approve / sign / verify`                               |
//! | `variant.rs`  | which baseline variant a client gets (era + declared capabilities)        |
//!
//! Invariants:
//! - A running proxy writes the pin file only to pin on first use (never a signed file); all
//!   drift goes to the held file, so an operator's attestation stays valid until they approve.
//! - Nothing is exposed that is not pinned, except under `on_drift = "alert"` (drift only:
//!   scanner hits are always held). First-use pinning never pins a definition the scanner flags.
//! - A held new item is indistinguishable from one that never existed (-32602 "Unknown tool").
//! - Any doubt about the store (unreadable, hash mismatch, bad signature under `require_signed`)
//!   fails closed: nothing listed, every call -32015 with the reason.
//! - Each variant (`variant.rs`) is a baseline of its own, pinned on first use; a definition
//!   identical to one pinned in a sibling variant of the same server passes (and is pinned).
//! - Every read-modify-write of a server's files holds its exclusive lock; every write is a
//!   whole-file atomic rename.

pub mod baseline;
pub mod commands;
pub mod decision;
pub mod drift;
pub mod error;
pub mod file;
pub mod held;
mod plan;
pub mod scan;
pub mod store;
pub mod variant;

#[cfg(test)]
mod concurrency_tests;
#[cfg(test)]
mod corpus_tests;

pub use baseline::{Baseline, BaselineConfig, OnDrift, Page};
pub use decision::{CallDecision, ListingDecision, PinEvent};
pub use error::PinError;
pub use file::{Kind, Origin, PinFile};
pub use scan::{no_scanner, poison_scanner, Flag, Scanner};
pub use store::PinStore;
