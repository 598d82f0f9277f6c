//! MCP `sampling/createMessage` params ↔ OpenAI `/v1/chat/completions`.
//!
//! Request: `systemPrompt` → a system message; each MCP message → an OpenAI message (text,
//! image as a `data:` URL, audio as `input_audio`; an assistant's `tool_use` blocks →
//! `tool_calls`; a user message of `tool_result` blocks → one `tool` message each);
//! `maxTokens` capped; `temperature`; `stopSequences` → `stop`; `tools` / `toolChoice`.
//! `includeContext` is never honoured (forced to `none`: the proxy adds no other server's
//! context), and `metadata` is not passed on (provider-specific, and unchecked).
//!
//! Answer: the first choice → an MCP result (`role`, `content`, `model`, `stopReason`); a
//! malformed answer is an error, never a half-built result.

use serde_json::{json, Map, Value};

use super::stop::stop_reason;

/// A request ready for the backend, and what the answer mapping needs from it.
#[derive(Debug)]
pub struct Mapped {
    pub body: Value,
    pub stop_sequences: Vec<String>,
    /// `maxTokens` as asked, when the cap lowered it (for the audit record).
    pub capped_from: Option<u64>,
    /// `includeContext` when it asked for more than `none` (ignored; for the audit record).
    pub context_ignored: Option<String>,
}

/// Tokens and model as the backend reported them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Usage {
    pub model: String,
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
}

/// Map the params of a sampling request. `Err`: the request is malformed (the server's fault).
pub fn to_openai(params: &Value, model: &str, cap: u64) -> Result<Mapped, String> {
    let max_tokens = params
        .get("maxTokens")
        .and_then(Value::as_u64)
        .filter(|n| *n > 0)
        .ok_or("maxTokens (a positive integer) is required")?;
    let mut messages = Vec::new();
    match params.get("systemPrompt") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => messages.push(json!({"role": "system", "content": s})),
        Some(_) => return Err("systemPrompt must be a string".into()),
    }
    let list = params
        .get("messages")
        .and_then(Value::as_array)
        .ok_or("messages (an array) is required")?;
    if list.is_empty() {
        return Err("messages must not be empty".into());
    }
    for (i, m) in list.iter().enumerate() {
        map_message(m, &mut messages).map_err(|e| format!("messages[{i}]: {e}"))?;
    }
    let mut body = Map::new();
    body.insert("model".into(), model.into());
    body.insert("messages".into(), Value::Array(messages));
    body.insert("max_tokens".into(), max_tokens.min(cap).into());
    body.insert("stream".into(), false.into());
    if let Some(t) = params.get("temperature").filter(|t| !t.is_null()) {
        if !t.is_number() {
            return Err("temperature must be a number".into());
        }
        body.insert("temperature".into(), t.clone());
    }
    let stop_sequences: Vec<String> = match params.get("stopSequences") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|s| s.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or("stopSequences must be strings")?,
        Some(_) => return Err("stopSequences must be an array of strings".into()),
    };
    if !stop_sequences.is_empty() {
        body.insert("stop".into(), json!(stop_sequences));
    }
    if let Some(tools) = params.get("tools").filter(|t| !t.is_null()) {
        let tools = tools.as_array().ok_or("tools must be an array")?;
        let mapped: Vec<Value> = tools.iter().map(map_tool).collect::<Result<_, String>>()?;
        if !mapped.is_empty() {
            body.insert("tools".into(), Value::Array(mapped));
        }
    }
    if let Some(mode) = params.pointer("/toolChoice/mode") {
        match mode.as_str() {
            Some(m @ ("auto" | "required" | "none")) => {
                body.insert("tool_choice".into(), m.into());
            }
            _ => return Err("toolChoice.mode must be auto, required or none".into()),
        }
    }
    let context_ignored = params
        .get("includeContext")
        .and_then(Value::as_str)
        .filter(|c| *c != "none")
        .map(str::to_owned);
    Ok(Mapped {
        body: Value::Object(body),
        stop_sequences,
        capped_from: (max_tokens > cap).then_some(max_tokens),
        context_ignored,
    })
}

/// A content field is one block or an array of blocks.
fn blocks(content: &Value) -> Result<Vec<&Value>, String> {
    match content {
        Value::Array(a) if !a.is_empty() => Ok(a.iter().collect()),
        Value::Object(_) => Ok(vec![content]),
        _ => Err("content must be a content block or a non-empty array of them".into()),
    }
}

fn kind(block: &Value) -> &str {
    block.get("type").and_then(Value::as_str).unwrap_or("")
}

fn str_field<'a>(block: &'a Value, key: &str) -> Result<&'a str, String> {
    block
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{} content needs {key} (a string)", kind(block)))
}

fn map_message(m: &Value, out: &mut Vec<Value>) -> Result<(), String> {
    let role = m.get("role").and_then(Value::as_str).unwrap_or("");
    let blocks = blocks(m.get("content").unwrap_or(&Value::Null))?;
    match role {
        "user" if blocks.iter().any(|b| kind(b) == "tool_result") => {
            if !blocks.iter().all(|b| kind(b) == "tool_result") {
                return Err("a message with tool results must hold only tool results".into());
            }
            for b in blocks {
                out.push(json!({
                    "role": "tool",
                    "tool_call_id": str_field(b, "toolUseId")?,
                    "content": tool_result_text(b),
                }));
            }
            Ok(())
        }
        "user" => {
            if let [b] = blocks[..] {
                if kind(b) == "text" {
                    out.push(json!({"role": "user", "content": str_field(b, "text")?}));
                    return Ok(());
                }
            }
            let parts: Vec<Value> = blocks
                .into_iter()
                .map(user_part)
                .collect::<Result<_, _>>()?;
            out.push(json!({"role": "user", "content": parts}));
            Ok(())
        }
        "assistant" => {
            let mut text = Vec::new();
            let mut calls = Vec::new();
            for b in blocks {
                match kind(b) {
                    "text" => text.push(str_field(b, "text")?),
                    "tool_use" => calls.push(json!({
                        "id": str_field(b, "id")?,
                        "type": "function",
                        "function": {
                            "name": str_field(b, "name")?,
                            "arguments": b.get("input").unwrap_or(&json!({})).to_string(),
                        },
                    })),
                    k => {
                        return Err(format!(
                            "{k:?} content is not supported in an assistant message"
                        ))
                    }
                }
            }
            let mut msg = json!({"role": "assistant", "content": if text.is_empty() { Value::Null } else { text.concat().into() }});
            if !calls.is_empty() {
                msg["tool_calls"] = Value::Array(calls);
            }
            out.push(msg);
            Ok(())
        }
        _ => Err("role must be user or assistant".into()),
    }
}

fn user_part(b: &Value) -> Result<Value, String> {
    match kind(b) {
        "text" => Ok(json!({"type": "text", "text": str_field(b, "text")?})),
        "image" => {
            let mime = str_field(b, "mimeType")?;
            let data = str_field(b, "data")?;
            Ok(
                json!({"type": "image_url", "image_url": {"url": format!("data:{mime};base64,{data}")}}),
            )
        }
        "audio" => {
            let format = match str_field(b, "mimeType")? {
                "audio/wav" | "audio/x-wav" | "audio/wave" => "wav",
                "audio/mpeg" | "audio/mp3" => "mp3",
                other => return Err(format!("audio of type {other} is not supported (wav, mp3)")),
            };
            Ok(
                json!({"type": "input_audio", "input_audio": {"data": str_field(b, "data")?, "format": format}}),
            )
        }
        "tool_use" => Err("tool_use content belongs in an assistant message".into()),
        k => Err(format!("{k:?} content is not supported")),
    }
}

/// A tool result's content as the text a `tool` message carries.
fn tool_result_text(b: &Value) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(content) = b.get("content").and_then(Value::as_array) {
        for c in content {
            match c.get("text").and_then(Value::as_str) {
                Some(t) if kind(c) == "text" => parts.push(t.to_owned()),
                _ => parts.push(c.to_string()),
            }
        }
    }
    if parts.is_empty() {
        if let Some(s) = b.get("structuredContent") {
            parts.push(s.to_string());
        }
    }
    let text = parts.join("\n");
    if b.get("isError").and_then(Value::as_bool) == Some(true) {
        format!("Error: {text}")
    } else {
        text
    }
}

fn map_tool(t: &Value) -> Result<Value, String> {
    let name = t
        .get("name")
        .and_then(Value::as_str)
        .ok_or("tools[]: name (a string) is required")?;
    let mut function = json!({
        "name": name,
        "parameters": t.get("inputSchema").cloned().unwrap_or(json!({"type": "object"})),
    });
    if let Some(d) = t.get("description").and_then(Value::as_str) {
        function["description"] = d.into();
    }
    Ok(json!({"type": "function", "function": function}))
}

/// Map a chat completion to an MCP sampling result. `Err`: the answer is not a completion.
pub fn from_openai(
    answer: &Value,
    stop_sequences: &[String],
    asked_model: &str,
) -> Result<(Value, Usage), String> {
    let choice = answer
        .pointer("/choices/0")
        .filter(|c| c.is_object())
        .ok_or("no choices[0] in the answer")?;
    let message = choice
        .get("message")
        .filter(|m| m.is_object())
        .ok_or("choices[0] has no message")?;
    let text = match message.get("content") {
        None | Some(Value::Null) => "",
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err("choices[0].message.content is not a string".into()),
    };
    let calls = match message.get("tool_calls") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(a)) => &a[..],
        Some(_) => return Err("choices[0].message.tool_calls is not an array".into()),
    };
    let content = if calls.is_empty() {
        json!({"type": "text", "text": text})
    } else {
        let mut out = Vec::new();
        if !text.is_empty() {
            out.push(json!({"type": "text", "text": text}));
        }
        for (i, c) in calls.iter().enumerate() {
            let f = c
                .get("function")
                .ok_or(format!("tool_calls[{i}] has no function"))?;
            let name = f
                .get("name")
                .and_then(Value::as_str)
                .ok_or(format!("tool_calls[{i}] has no function name"))?;
            let args = f.get("arguments").and_then(Value::as_str).unwrap_or("{}");
            let input: Value =
                serde_json::from_str(if args.trim().is_empty() { "{}" } else { args })
                    .ok()
                    .filter(Value::is_object)
                    .ok_or(format!("tool_calls[{i}] arguments are not a JSON object"))?;
            let id = c
                .get("id")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| format!("call_{i}"));
            out.push(json!({"type": "tool_use", "id": id, "name": name, "input": input}));
        }
        Value::Array(out)
    };
    let model = answer
        .get("model")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .unwrap_or(asked_model)
        .to_owned();
    let mut stop = stop_reason(choice, stop_sequences);
    if !calls.is_empty() && stop == "endTurn" {
        // Some backends say `stop` although the message is all tool calls.
        stop = "toolUse".into();
    }
    let usage = Usage {
        model: model.clone(),
        prompt_tokens: answer
            .pointer("/usage/prompt_tokens")
            .and_then(Value::as_u64),
        completion_tokens: answer
            .pointer("/usage/completion_tokens")
            .and_then(Value::as_u64),
    };
    let result = json!({
        "role": "assistant",
        "content": content,
        "model": model,
        "stopReason": stop,
    });
    Ok((result, usage))
}

#[cfg(test)]
#[path = "mapping_tests.rs"]
mod tests;
