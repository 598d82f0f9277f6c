//! Trust score: per server, 0..1, from what the proxy observed in a sliding 30-day window
//! (SPEC §7), explained factor by factor (SPEC §14) and used as a gate on risky tools (-32017,
//! decided in `pipeline/policy_step.rs` with `[policy] risk_thresholds`).
//!
//! | file          | job                                                                       |
//! |---------------|---------------------------------------------------------------------------|
//! | `events.rs`   | `Observation`s the pipeline reports, with their unix timestamp            |
//! | `buckets.rs`  | `History`: counts per UTC day, window, merge, prune (the file's content)  |
//! | `store.rs`    | `trust/<server>.json`: flock'd read-merge-write, fsync + atomic rename    |
//! | `recorder.rs` | `TrustRecorder`: in-memory batching, flush, cached score                  |
//! | `flusher.rs`  | background thread flushing a recorder every second                        |
//! | `score.rs`    | the eight factors, their weights, renormalisation → `TrustReport`         |
//! | `report.rs`   | `TrustReport` (SPEC §14 JSON) and the human tables                        |
//! | `commands.rs` | CLI entry points: `trust [SERVER]`, `feedback SERVER +1\|-1`             |
//!
//! Invariants:
//! - A factor is computed only from counts in the window; with no counts it is `null` and its
//!   weight is shared out; with no data at all the score is 0.5. No constant stands in for data.
//! - The hot path (`TrustRecorder::record`, `score`) does no I/O beyond a re-read every few
//!   seconds; the file is written in batches.
//! - Every write is read-merge-write under an exclusive lock, through a temp file renamed into
//!   place: concurrent proxies lose no update and readers never see a torn file.
//! - The file is bounded: at most 30 day buckets plus `first_seen`/`last_seen`.
//! - Time is injected everywhere (`Clock`, `now` arguments): decay and the window are tested by
//!   moving a clock.

pub mod buckets;
pub mod commands;
pub mod events;
pub mod flusher;
pub mod recorder;
pub mod report;
pub mod score;
pub mod store;

#[cfg(test)]
mod concurrency_tests;
#[cfg(test)]
mod tests;

pub use commands::{feedback, report, reports_all};
pub use events::{Event, Observation, Severity, Vote};
pub use flusher::{spawn_flusher, Flusher};
pub use recorder::{system_clock, Clock, TrustRecorder};
pub use report::{render_summary, render_table, FactorReport, TrustReport};
pub use score::compute;
pub use store::{SharedTrust, TrustStore};
