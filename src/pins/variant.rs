//! Baseline variants: servers legitimately offer different definitions to different clients —
//! another tool set to a 2026-07-28 client than to a 2025 one, sampling tools only to clients
//! that can sample. Judging one of those sets against a baseline pinned from another would read
//! as drift (new, never-approved tools), so each variant has a baseline of its own: the pin file
//! `<server>@<label>.json` (the base variant, no label, keeps `<server>.json`).
//!
//! The label is derived from what the client declared, never from what the server sent: a
//! server cannot move itself into a fresh, unpinned variant. It is bounded (one era tag and
//! three capability names), so a client cannot make the proxy write files without limit.

use crate::session::{ClientCaps, Era};

/// The modern era's revision, the only era tag a label carries (older revisions share the
/// `initialize` handshake and the base variant).
const MODERN: &str = "2026-07-28";

/// Separator between the server name and the label in the variant's pin file name.
pub const SEPARATOR: char = '@';

/// `""` for the base variant (a 2025-era client declaring none of the capabilities servers vary
/// their offer on), otherwise e.g. `2026-07-28`, `sampling`, `2026-07-28+elicitation+sampling`.
pub fn label(era: &Era, caps: Option<&ClientCaps>) -> String {
    let mut parts: Vec<&str> = Vec::new();
    if let Era::Modern(v) = era {
        parts.push(if v == MODERN { MODERN } else { "modern" });
    }
    if let Some(c) = caps {
        if c.elicitation_form || c.elicitation_url {
            parts.push("elicitation");
        }
        if c.roots {
            parts.push("roots");
        }
        if c.sampling {
            parts.push("sampling");
        }
    }
    parts.join("+")
}

/// The pin store name of `server`'s variant `label`.
pub fn store_name(server: &str, label: &str) -> String {
    if label.is_empty() {
        server.to_owned()
    } else {
        format!("{server}{SEPARATOR}{label}")
    }
}

/// Whether `name` (from the pin store) is `server` itself or one of its variants.
pub fn is_family(name: &str, server: &str) -> bool {
    name == server
        || name
            .strip_prefix(server)
            .is_some_and(|rest| rest.starts_with(SEPARATOR))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(sampling: bool, elicitation: bool, roots: bool) -> ClientCaps {
        ClientCaps {
            sampling,
            elicitation_form: elicitation,
            roots,
            ..ClientCaps::default()
        }
    }

    #[test]
    fn labels_name_the_era_and_the_capabilities_servers_vary_on() {
        let legacy = Era::Legacy("2025-11-25".into());
        let modern = Era::Modern("2026-07-28".into());
        assert_eq!(label(&legacy, None), "");
        assert_eq!(label(&Era::Unknown, Some(&caps(false, false, false))), "");
        assert_eq!(label(&legacy, Some(&caps(true, false, false))), "sampling");
        assert_eq!(label(&modern, None), "2026-07-28");
        assert_eq!(
            label(&modern, Some(&caps(true, true, true))),
            "2026-07-28+elicitation+roots+sampling"
        );
        // A version the client made up does not make a new file per string.
        assert_eq!(label(&Era::Modern("2099-01-01".into()), None), "modern");
        // Every label is a valid store name.
        let name = store_name("fs", &label(&modern, Some(&caps(true, true, true))));
        assert!(
            crate::pins::store::check_server_name(&name).is_ok(),
            "{name}"
        );
    }

    #[test]
    fn family_is_the_server_and_its_variants_only() {
        assert!(is_family("fs", "fs"));
        assert!(is_family("fs@2026-07-28", "fs"));
        assert!(!is_family("fs2", "fs"));
        assert!(!is_family("f", "fs"));
        assert_eq!(store_name("fs", ""), "fs");
        assert_eq!(store_name("fs", "sampling"), "fs@sampling");
    }
}
