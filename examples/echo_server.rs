//! A minimal, fast MCP server over stdio for tests and the benchmark: `initialize`, `ping`,
//! `tools/list` (one tool, `echo`) and `tools/call echo` answering with its `text` argument.
//! It is deliberately tiny so that a benchmark measures the proxy, not the server.
//!
//! Test hooks (environment):
//! - `ECHO_RECORD=FILE`: append every line received, byte for byte, to FILE (what the upstream
//!   really saw).
//! - `ECHO_SCRIPT=FILE`: a JSON object `{tool: [line, …]}`; a `tools/call` of such a tool is
//!   answered by writing those lines verbatim (`{{id}}` replaced by the call's id) — the way tests
//!   make a server misbehave or send odd-but-valid bytes. An empty list never answers.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::{self, BufRead, Write};

use serde_json::{json, Value};

fn main() -> io::Result<()> {
    let mut record = match std::env::var_os("ECHO_RECORD") {
        Some(p) => Some(OpenOptions::new().create(true).append(true).open(p)?),
        None => None,
    };
    let script: HashMap<String, Vec<String>> = match std::env::var_os("ECHO_SCRIPT") {
        Some(p) => serde_json::from_slice(&std::fs::read(p)?).map_err(io::Error::other)?,
        None => HashMap::new(),
    };
    let stdin = io::stdin();
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut line = Vec::new();
    let mut input = stdin.lock();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        if let Some(f) = record.as_mut() {
            f.write_all(&line)?;
            f.flush()?;
        }
        let Ok(msg) = serde_json::from_slice::<Value>(&line) else {
            continue;
        };
        let (Some(id), Some(method)) = (msg.get("id"), msg.get("method").and_then(Value::as_str))
        else {
            continue;
        };
        let result = match method {
            "initialize" => json!({
                "protocolVersion": msg["params"]["protocolVersion"].as_str().unwrap_or("2025-11-25"),
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "echo", "version": "1.0.0"}
            }),
            "ping" => json!({}),
            "tools/list" => {
                let mut tools = vec![json!({
                    "name": "echo",
                    "description": "Echo the text back",
                    "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
                })];
                // Scripted tools are listed too, so a pinning proxy knows them.
                let mut names: Vec<&String> = script.keys().collect();
                names.sort();
                tools.extend(names.into_iter().map(|n| {
                    json!({"name": n, "description": "Scripted test tool", "inputSchema": {"type": "object"}})
                }));
                json!({ "tools": tools })
            }
            "tools/call" => {
                let name = msg["params"]["name"].as_str().unwrap_or("");
                if let Some(lines) = script.get(name) {
                    for l in lines {
                        writeln!(out, "{}", l.replace("{{id}}", &id.to_string()))?;
                    }
                    out.flush()?;
                    continue;
                }
                let text = msg["params"]["arguments"]["text"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned();
                json!({"content": [{"type": "text", "text": text}]})
            }
            _ => {
                let err = json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "Method not found"}});
                writeln!(out, "{err}")?;
                out.flush()?;
                continue;
            }
        };
        writeln!(
            out,
            "{}",
            json!({"jsonrpc": "2.0", "id": id, "result": result})
        )?;
        out.flush()?;
    }
}
