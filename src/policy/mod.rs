//! The policy engine (SPEC §6): TOML policy files → per-tool policy → a
//! decision for each `tools/call`, plus rate limiting and live reload.
//!
//! | file           | job                                                              |
//! |----------------|------------------------------------------------------------------|
//! | `file.rs`      | the policy file format; parse errors with path, line and key     |
//! | `builtin.rs`   | the shipped packs compiled in; in force unless `builtin = false`  |
//! | `set.rs`       | built-in packs + a directory; which rule applies to (server, tool) |
//! | `decide.rs`    | `evaluate`: policy + arguments → allow / deny / approve          |
//! | `ratelimit.rs` | GCRA per (client, server, tool), injectable clock, bounded keys  |
//! | `reload.rs`    | `PolicyHandle`: atomic swap, polling watcher, SIGHUP flag        |
//!
//! Per `tools/call`: `handle.current()` (keep the `Arc` for the request) →
//! `set.resolve(&server, tool, annotations)` → `evaluate(&policy, args)` →
//! on Allow/Approve with `policy.rate`, `limiter.check(client, server, tool, rate)`.
//! Shipped packs live in `policies/` at the repository root; `pack_tests.rs`
//! and `pack_tests_servers.rs` hold them to what their comments promise.

pub mod builtin;
pub mod decide;
pub mod file;
pub mod ratelimit;
pub mod reload;
pub mod set;

#[cfg(test)]
mod pack_tests;
#[cfg(test)]
mod pack_tests_servers;

pub use decide::{evaluate, Decision, DenyKind};
pub use file::{Action, PolicyError, Rate, Risk, SERVER_ARGS};
pub use ratelimit::{Clock, ManualClock, MonotonicClock, RateDecision, RateLimiter, SharedRates};
pub use reload::{register_sighup, PolicyHandle, ReloadOutcome, Watcher};
pub use set::{PolicySet, ServerRef, ToolPolicy};
