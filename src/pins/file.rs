//! The pin file `pins/<server>.json` (SPEC §5): what an operator approved for one server.
//!
//! ```json
//! {"server": "fs", "origin": {"command": ["npx", "fs"]} | {"url": "https://…"},
//!  "created": "…Z", "updated": "…Z",
//!  "tools": {"read_file": {"sha256": "<hex>", "definition": {…}}},
//!  "resource_templates": {…}, "prompts": {…},
//!  "attestation": null | {"kid", "ts", "sig"}}
//! ```
//! `sha256` is hex SHA-256 of JCS (RFC 8785) of the full definition, so key order, whitespace and
//! number spelling never count as drift. A section that is absent was never listed (first use of
//! that kind may still pin); `{}` means the server listed none. Held-back definitions live in a
//! separate file (`held.rs`) so that a running proxy never rewrites, and so never un-signs, this one.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::pins::error::PinError;
use crate::sig::jcs;

/// The three kinds of definition a server lists and we pin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Tool,
    ResourceTemplate,
    Prompt,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Tool, Kind::ResourceTemplate, Kind::Prompt];

    /// The member that identifies an item: a resource template is addressed by its URI template
    /// (that is what `resources/read` URIs match), tools and prompts by name.
    pub fn key_field(self) -> &'static str {
        match self {
            Kind::ResourceTemplate => "uriTemplate",
            Kind::Tool | Kind::Prompt => "name",
        }
    }

    /// The array in the MCP list result (`tools/list` → `tools`, …).
    pub fn listing_field(self) -> &'static str {
        match self {
            Kind::Tool => "tools",
            Kind::ResourceTemplate => "resourceTemplates",
            Kind::Prompt => "prompts",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Kind::Tool => "tool",
            Kind::ResourceTemplate => "resource template",
            Kind::Prompt => "prompt",
        }
    }

    /// The identifying key of one listed item, if it has a usable one.
    pub fn key_of(self, definition: &Value) -> Option<&str> {
        definition
            .get(self.key_field())
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty())
    }
}

/// Where the server came from: a pin approved for one command must not silently cover another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum Origin {
    Command { command: Vec<String> },
    Url { url: String },
}

/// One pinned definition and its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pinned {
    pub sha256: String,
    pub definition: Value,
}

impl Pinned {
    pub fn new(definition: Value) -> Result<Self, PinError> {
        Ok(Pinned {
            sha256: digest(&definition)?,
            definition,
        })
    }
}

/// Hex SHA-256 of the JCS bytes of a definition.
pub fn digest(definition: &Value) -> Result<String, PinError> {
    Ok(hex::encode(Sha256::digest(jcs::to_vec(definition)?)))
}

pub type Section = BTreeMap<String, Pinned>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinFile {
    pub server: String,
    pub origin: Origin,
    pub created: String,
    pub updated: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Section>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_templates: Option<Section>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompts: Option<Section>,
    /// Kept as raw JSON: `sig::attestation::verify` reads it from the file's `Value`.
    #[serde(default)]
    pub attestation: Option<Value>,
}

impl PinFile {
    pub fn new(server: &str, origin: Origin, now: SystemTime) -> Self {
        let stamp = crate::timefmt::rfc3339_micros(now);
        PinFile {
            server: server.to_string(),
            origin,
            created: stamp.clone(),
            updated: stamp,
            tools: None,
            resource_templates: None,
            prompts: None,
            attestation: None,
        }
    }

    pub fn section(&self, kind: Kind) -> Option<&Section> {
        match kind {
            Kind::Tool => self.tools.as_ref(),
            Kind::ResourceTemplate => self.resource_templates.as_ref(),
            Kind::Prompt => self.prompts.as_ref(),
        }
    }

    /// The section for `kind`, created empty if it was never recorded.
    pub fn section_mut(&mut self, kind: Kind) -> &mut Section {
        let slot = match kind {
            Kind::Tool => &mut self.tools,
            Kind::ResourceTemplate => &mut self.resource_templates,
            Kind::Prompt => &mut self.prompts,
        };
        slot.get_or_insert_with(BTreeMap::new)
    }

    pub fn get(&self, kind: Kind, key: &str) -> Option<&Pinned> {
        self.section(kind).and_then(|s| s.get(key))
    }

    pub fn is_signed(&self) -> bool {
        !matches!(self.attestation, None | Some(Value::Null))
    }

    /// Records a content change: bumps `updated` and drops any attestation, which no longer
    /// covers the content. Returns whether an attestation was dropped, so callers can say so.
    pub fn touch(&mut self, now: SystemTime) -> bool {
        self.updated = crate::timefmt::rfc3339_micros(now);
        let was_signed = self.is_signed();
        self.attestation = None;
        was_signed
    }

    /// Parses and checks a pin file read from `path`: every digest must match its definition and
    /// every key the definition's own name, so a hand edit cannot slip a definition past its hash.
    pub fn from_value(value: &Value, path: &Path) -> Result<Self, PinError> {
        let file: PinFile =
            serde_json::from_value(value.clone()).map_err(|e| PinError::Format {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        for kind in Kind::ALL {
            for (key, pinned) in file.section(kind).into_iter().flatten() {
                if kind.key_of(&pinned.definition) != Some(key.as_str()) {
                    return Err(PinError::Format {
                        path: path.to_path_buf(),
                        reason: format!(
                            "{} {key:?}: definition has a different \"{}\"",
                            kind.label(),
                            kind.key_field()
                        ),
                    });
                }
                if digest(&pinned.definition)? != pinned.sha256 {
                    return Err(PinError::HashMismatch {
                        path: path.to_path_buf(),
                        what: kind.label(),
                        name: key.clone(),
                    });
                }
            }
        }
        Ok(file)
    }

    pub fn to_value(&self) -> Result<Value, PinError> {
        // Serializing plain maps, strings and Values cannot fail; map the error anyway.
        serde_json::to_value(self).map_err(|e| PinError::Format {
            path: Default::default(),
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::{Duration, UNIX_EPOCH};

    fn t(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn sample() -> PinFile {
        let mut file = PinFile::new(
            "fs",
            Origin::Command {
                command: vec!["npx".into(), "fs".into()],
            },
            t(1_767_225_600),
        );
        file.section_mut(Kind::Tool).insert(
            "read".into(),
            Pinned::new(json!({"name": "read", "description": "Read a file"})).unwrap(),
        );
        file
    }

    #[test]
    fn digest_ignores_key_order_and_number_spelling() {
        let a = json!({"name": "x", "inputSchema": {"type": "object", "maximum": 10}});
        let b: Value =
            serde_json::from_str(r#"{"inputSchema":{"maximum":1e1,"type":"object"},"name":"x"}"#)
                .unwrap();
        assert_eq!(digest(&a).unwrap(), digest(&b).unwrap());
        assert_ne!(digest(&a).unwrap(), digest(&json!({"name": "x"})).unwrap());
        assert_eq!(digest(&a).unwrap().len(), 64);
    }

    #[test]
    fn round_trips_and_shape() {
        let file = sample();
        let value = file.to_value().unwrap();
        assert_eq!(value["attestation"], Value::Null);
        assert_eq!(value["origin"], json!({"command": ["npx", "fs"]}));
        assert_eq!(value["created"], "2026-01-01T00:00:00.000000Z");
        assert!(value.get("prompts").is_none(), "unlisted kinds stay absent");
        let back = PinFile::from_value(&value, Path::new("p")).unwrap();
        assert_eq!(back, file);
        let url: Value = json!({"server": "r", "origin": {"url": "https://x/mcp"},
            "created": "a", "updated": "a", "tools": {}, "attestation": null});
        let parsed = PinFile::from_value(&url, Path::new("p")).unwrap();
        assert_eq!(
            parsed.origin,
            Origin::Url {
                url: "https://x/mcp".into()
            }
        );
        assert_eq!(parsed.section(Kind::Tool).map(|s| s.len()), Some(0));
    }

    #[test]
    fn hand_edits_are_caught() {
        let mut value = sample().to_value().unwrap();
        value["tools"]["read"]["definition"]["description"] = json!("Read. <IMPORTANT>…");
        assert!(matches!(
            PinFile::from_value(&value, Path::new("p")),
            Err(PinError::HashMismatch { .. })
        ));
        let mut renamed = sample().to_value().unwrap();
        renamed["tools"]["read"]["definition"]["name"] = json!("write");
        assert!(matches!(
            PinFile::from_value(&renamed, Path::new("p")),
            Err(PinError::Format { .. })
        ));
        let mut extra = sample().to_value().unwrap();
        extra["surprise"] = json!(1);
        assert!(PinFile::from_value(&extra, Path::new("p")).is_err());
        let mut both = sample().to_value().unwrap();
        both["origin"]["url"] = json!("https://elsewhere");
        assert!(PinFile::from_value(&both, Path::new("p")).is_err());
    }

    #[test]
    fn touch_drops_attestation() {
        let mut file = sample();
        file.attestation = Some(json!({"kid": "k", "ts": 1, "sig": "s"}));
        assert!(file.is_signed());
        assert!(file.touch(t(1_767_225_601)));
        assert!(!file.is_signed());
        assert_eq!(file.updated, "2026-01-01T00:00:01.000000Z");
        assert!(!file.touch(t(1_767_225_602)));
    }

    #[test]
    fn keys_per_kind() {
        let template = json!({"uriTemplate": "file:///{path}", "name": "files"});
        assert_eq!(
            Kind::ResourceTemplate.key_of(&template),
            Some("file:///{path}")
        );
        assert_eq!(Kind::Tool.key_of(&json!({"name": ""})), None);
        assert_eq!(Kind::Prompt.key_of(&json!({"name": 3})), None);
    }
}
