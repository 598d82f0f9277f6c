//! Pure, allocation-light detectors and validators used by the policy and pin checks. No I/O
//! (except `proxy_state`, which resolves symlinks of paths that exist).
//!
//! | file                  | job                                                          |
//! |-----------------------|--------------------------------------------------------------|
//! | `glob.rs`             | tool/server name globs, specificity for "most specific wins" |
//! | `path_rule.rs`        | `path_under`: component-wise, refusing traversal tricks      |
//! | `net_rule.rs`         | `url_hosts`, `deny_private_addresses` (all spellings)        |
//! | `arg_rules.rs`        | the per-argument rule set of a policy and its check          |
//! | `secrets.rs`          | secret detection and `[REDACTED:<kind>]` redaction           |
//! | `poison_scan.rs`      | tool-poisoning findings in definitions and text              |
//! | `elicitation_scan.rs` | credential phishing in elicitation requests                  |
//! | `proxy_state.rs`      | `builtin.proxy_state`: arguments naming the proxy's own state |
//! | `unicode_hazards.rs`  | hidden characters, terminal escapes, look-alikes             |

pub mod arg_rules;
#[cfg(test)]
mod corpus_cases;
pub mod elicitation_scan;
pub mod glob;
pub mod net_rule;
pub mod path_rule;
pub mod poison_scan;
pub mod proxy_state;
pub mod secrets;
pub mod unicode_hazards;
