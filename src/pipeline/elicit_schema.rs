//! The shape the spec allows for an elicitation's `requestedSchema`: an object whose properties
//! are primitives (string, number, integer, boolean) or enums (single select: a string with
//! `enum` or `oneOf` consts; multi select: an array of such strings). Anything richer (nested
//! objects, `$ref`, free arrays) is what a client's form renderer was never built for, and a
//! way to smuggle structure past the user; it is refused back to the server.

use serde_json::{Map, Value};

/// Most properties one form may ask for.
const MAX_PROPERTIES: usize = 64;

/// `Ok` when `schema` is a flat object of primitives; `Err` says what is not.
pub fn check_requested_schema(schema: Option<&Value>) -> Result<(), String> {
    let schema = schema
        .and_then(Value::as_object)
        .ok_or("requestedSchema is missing or not an object")?;
    if schema.get("type").and_then(Value::as_str) != Some("object") {
        return Err("requestedSchema.type must be \"object\"".into());
    }
    for key in schema.keys() {
        if !matches!(
            key.as_str(),
            "type" | "properties" | "required" | "$schema" | "title" | "description"
        ) {
            return Err(format!("requestedSchema has unsupported keyword {key:?}"));
        }
    }
    let props = match schema.get("properties") {
        Some(Value::Object(p)) => p,
        None => return Ok(()),
        Some(_) => return Err("requestedSchema.properties must be an object".into()),
    };
    if props.len() > MAX_PROPERTIES {
        return Err(format!("more than {MAX_PROPERTIES} properties"));
    }
    for (name, prop) in props {
        let prop = prop
            .as_object()
            .ok_or_else(|| format!("property {name:?} is not a schema object"))?;
        primitive(prop).map_err(|why| format!("property {name:?} {why}"))?;
    }
    Ok(())
}

fn primitive(prop: &Map<String, Value>) -> Result<(), String> {
    if prop.contains_key("$ref") || prop.contains_key("properties") {
        return Err("is not a primitive (nested object or $ref)".into());
    }
    match prop.get("type").and_then(Value::as_str) {
        Some("string" | "number" | "integer" | "boolean") => no_nesting(
            prop,
            &["items", "anyOf", "allOf", "not", "additionalProperties"],
        ),
        Some("array") => match prop.get("items").and_then(Value::as_object) {
            Some(items) if string_enum(items) => Ok(()),
            _ => Err("is an array whose items are not a string enum".into()),
        },
        Some(other) => Err(format!("has type {other:?}, which is not a primitive")),
        None => Err("has no type".into()),
    }
}

/// Multi-select items: `{type: "string", enum: [...]}` or `{anyOf: [{const, title}, ...]}`.
fn string_enum(items: &Map<String, Value>) -> bool {
    let consts = |v: Option<&Value>| {
        v.and_then(Value::as_array).is_some_and(|a| {
            a.iter()
                .all(|c| c.get("const").is_some_and(Value::is_string))
        })
    };
    (items.get("type").and_then(Value::as_str) == Some("string")
        && items.get("enum").and_then(Value::as_array).is_some())
        || consts(items.get("anyOf"))
}

fn no_nesting(prop: &Map<String, Value>, keys: &[&str]) -> Result<(), String> {
    match keys.iter().find(|k| prop.contains_key(**k)) {
        Some(k) => Err(format!("uses {k:?}, which a flat primitive may not")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn spec_shapes_pass() {
        let ok = json!({
            "type": "object",
            "properties": {
                "name": {"type": "string", "title": "Name", "minLength": 1, "format": "email"},
                "age": {"type": "integer", "minimum": 0},
                "score": {"type": "number"},
                "agree": {"type": "boolean", "default": false},
                "color": {"type": "string", "enum": ["red", "green"], "enumNames": ["Red", "Green"]},
                "size": {"type": "string", "oneOf": [{"const": "s", "title": "Small"}]},
                "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}},
                "picks": {"type": "array", "items": {"anyOf": [{"const": "x", "title": "X"}]}}
            },
            "required": ["name"]
        });
        assert_eq!(check_requested_schema(Some(&ok)), Ok(()));
        assert_eq!(
            check_requested_schema(Some(&json!({"type": "object"}))),
            Ok(())
        );
    }

    #[test]
    fn nested_and_odd_shapes_are_refused() {
        for bad in [
            json!(null),
            json!({"type": "array"}),
            json!({"type": "object", "properties": {"a": {"type": "object", "properties": {}}}}),
            json!({"type": "object", "properties": {"a": {"$ref": "#/x"}}}),
            json!({"type": "object", "properties": {"a": {"type": "array", "items": {"type": "object"}}}}),
            json!({"type": "object", "properties": {"a": {}}}),
            json!({"type": "object", "properties": {"a": "string"}}),
            json!({"type": "object", "properties": [], "required": []}),
            json!({"type": "object", "additionalProperties": {"type": "object"}}),
            json!({"type": "object", "properties": {"a": {"type": "string", "anyOf": [{"type": "object"}]}}}),
        ] {
            assert!(check_requested_schema(Some(&bad)).is_err(), "{bad}");
        }
    }
}
