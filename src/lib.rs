//! mcp-warden: a transparent security proxy for the Model Context Protocol.
//!
//! A message's path: a transport (`transport::stdio`) reads a frame → the `pipeline` decodes it
//! with the `codec` (the only code that knows wire bytes), runs the ordered checks against the
//! per-session state (`session`), and returns a `Verdict` → the transport forwards the original
//! bytes, forwards rewritten bytes, answers the sender, or drops → the `audit` writer records
//! exactly one decision for it. See ARCHITECTURE.md for the codemap and the invariants.

// A `Rejection` is large (it carries the reason a person reads), but it only travels on the
// refusal path, never on the forwarding path, so boxing it would buy nothing.
#![allow(clippy::result_large_err)]

pub mod admin;
pub mod approval;
pub mod audit;
pub mod checks;
pub mod cli;
pub mod clients;
pub mod cluster;
pub mod codec;
pub mod config;
pub mod connect;
pub mod errors;
pub mod fsutil;
pub mod identity;
pub mod inference;
pub mod pins;
pub mod pipeline;
pub mod policy;
pub mod session;
pub mod sig;
pub mod telemetry;
pub mod timefmt;
pub mod transport;
pub mod trust;
