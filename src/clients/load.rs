//! Reading one config file into text + span tree, shared by detect,
//! install and uninstall so all three agree on what "invalid" means.

use std::fs;
use std::io::ErrorKind;

use super::jsonc::{parse, Dialect, Node};
use super::locations::Location;

/// A config file as read from disk.
#[derive(Debug)]
pub struct Loaded {
    pub text: String,
    pub root: Node,
}

/// `Ok(None)` when the file does not exist; `Err` (a message for people)
/// when it exists but cannot be read or is not valid JSON/JSONC.
pub fn load(loc: &Location) -> Result<Option<Loaded>, String> {
    let bytes = match fs::read(&loc.path) {
        Ok(b) => b,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", loc.path.display())),
    };
    let text =
        String::from_utf8(bytes).map_err(|_| format!("{}: not UTF-8 text", loc.path.display()))?;
    let what = match loc.dialect {
        Dialect::Json => "JSON",
        Dialect::Jsonc => "JSON with comments",
    };
    let root = parse(&text, loc.dialect).map_err(|e| {
        format!(
            "{}: not valid {what} ({e}); left untouched",
            loc.path.display()
        )
    })?;
    if !matches!(root, Node::Object { .. }) {
        return Err(format!(
            "{}: top level is not an object; left untouched",
            loc.path.display()
        ));
    }
    Ok(Some(Loaded { text, root }))
}
