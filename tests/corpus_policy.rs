//! Every stdio-capable case of the attack corpus in the policy-side categories (policy, path,
//! arguments, ssrf, baseline, poisoning, shadowing, secrets, result_injection, rate_limit,
//! approval, trust, elicitation), through the real `mcp-warden wrap`.
//!
//! Each case is interpreted from its data — input kind, direction, variants, steps, expected
//! code / audit event / alert / forwarded_upstream — never from its id. What a case needs around
//! it (the precondition a real deployment would have) is set up per category:
//!
//! - client → proxy calls go to the echo server, whose `ECHO_SCRIPT` lists every tool the case
//!   names (so the pins know them) unless the case is about a never-listed tool;
//! - tool listings, rug pulls and shadowing come from `tests/hostile/server.py`, which lists what
//!   the case's server steps list;
//! - results and server requests are the scripted answer of a tool call;
//! - policies: a shipped pack (`policies/*.toml`) whose tool rules name the case's tools, copied
//!   into a temp policy dir with this server's name added to its `match` (and `$SERVER_ARGS`
//!   replaced by the root the case names), or a small policy written for the category;
//! - approvals are driven through the `mcp-warden approvals` / `deny` CLI, a 1 s timeout, or an
//!   approval queue that cannot be written.
//!
//! Where the proxy's audit event name legitimately differs from the corpus, `EVENT_ALIASES` says
//! so, and the test asserts the proxy's name.

mod support;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{Options, Wrapped};

const CATEGORIES: &[&str] = &[
    "policy",
    "path",
    "arguments",
    "ssrf",
    "baseline",
    "poisoning",
    "shadowing",
    "secrets",
    "result_injection",
    "rate_limit",
    "approval",
    "trust",
    "elicitation",
];

/// Corpus event → the event the proxy records instead, a rule the record must carry (empty:
/// any), and why the difference is legitimate.
const EVENT_ALIASES: &[(&str, &str, &str, &str)] = &[
    (
        "poisoning.padding",
        "approval.not_granted",
        "poisoning.whitespace_padding",
        "a padded argument is held for a human (rule poisoning.whitespace_padding); the refusal \
         is recorded as the approval outcome",
    ),
    (
        "flow.private_to_public",
        "approval.not_granted",
        "flow.tainted_session",
        "the public write in a tainted session is held (rule flow.tainted_session) and refused \
         as an approval outcome",
    ),
    (
        "poisoning.control_chars",
        "poisoning.hidden_instructions",
        "",
        "the pin scanner files every description finding (ANSI escapes included) under \
         poisoning.hidden_instructions; the finding kind is in the detail",
    ),
];

fn corpus() -> Vec<Value> {
    let text =
        std::fs::read_to_string(support::fixture("attacks/corpus.json")).expect("corpus fixture");
    serde_json::from_str(&text).expect("corpus JSON")
}

fn stdio_cases(categories: &[&str]) -> Vec<Value> {
    corpus()
        .into_iter()
        .filter(|c| categories.contains(&c["category"].as_str().unwrap_or("")))
        .filter(|c| matches!(c["transport"].as_str(), Some("stdio") | Some("both")))
        .collect()
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn id_of(case: &Value) -> &str {
    case["id"].as_str().unwrap_or("?")
}

/// The audit events a case expects (`"a; b"` lists several).
fn expected_events(case: &Value) -> Vec<String> {
    case["expected"]["audit_event"]
        .as_str()
        .unwrap_or("")
        .split(';')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The event name the proxy uses for a corpus event.
fn proxy_event(corpus_event: &str) -> &str {
    EVENT_ALIASES
        .iter()
        .find(|(c, ..)| *c == corpus_event)
        .map_or(corpus_event, |(_, p, ..)| p)
}

fn expected_code(case: &Value) -> Option<i64> {
    case["expected"]["jsonrpc_error_code"].as_i64()
}

fn expected_alert(case: &Value) -> bool {
    case["expected"]["alert"].as_bool().unwrap_or(false)
}

/// The client messages of a jsonrpc input (one per variant).
fn messages(case: &Value) -> Vec<Value> {
    let input = &case["input"];
    match input.get("variants") {
        Some(v) => v.as_array().expect("variants").clone(),
        None => vec![input["message"].clone()],
    }
}

fn tool_of(msg: &Value) -> &str {
    msg["params"]["name"].as_str().unwrap_or("")
}

/// A scripted answer line for the echo server: `message` with its id replaced by `{{id}}`.
fn scripted_line(message: &Value) -> String {
    let mut m = message.clone();
    if m.get("id").is_some() && m.get("method").is_none() {
        m["id"] = json!("__ID__");
    }
    serde_json::to_string(&m)
        .expect("json")
        .replace("\"__ID__\"", "{{id}}")
}

fn ok_line(text: &str) -> String {
    scripted_line(
        &json!({"jsonrpc": "2.0", "id": 0, "result": {"content": [{"type": "text", "text": text}]}}),
    )
}

// ------------------------------------------------------------------ policies

/// `[[tool]] name` globs of a policy pack.
fn pack_tool_globs(text: &str) -> Vec<String> {
    let v: toml::Value = toml::from_str(text).expect("pack TOML");
    v.get("tool")
        .and_then(toml::Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|t| t.get("name").and_then(toml::Value::as_str))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn glob_match(glob: &str, name: &str) -> bool {
    match glob.split_once('*') {
        None => glob == name,
        Some((head, rest)) => {
            if !name.starts_with(head) {
                return false;
            }
            let tail = &name[head.len()..];
            (0..=tail.len()).any(|i| tail.is_char_boundary(i) && glob_match(rest, &tail[i..]))
        }
    }
}

/// The shipped pack whose specific tool rules (not the catch-all `*`) name `tool`.
fn pack_for(tool: &str) -> Option<(String, String)> {
    let mut entries: Vec<_> = std::fs::read_dir(repo().join("policies"))
        .expect("policies/")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    entries.sort();
    entries.into_iter().find_map(|p| {
        let text = std::fs::read_to_string(&p).ok()?;
        let name = p.file_name()?.to_string_lossy().into_owned();
        pack_tool_globs(&text)
            .iter()
            .any(|g| g != "*" && glob_match(g, tool))
            .then_some((name, text))
    })
}

/// A shipped pack made to apply to `server` (its name added to `match`), with `$SERVER_ARGS`
/// replaced by `root` when given.
fn adopt_pack(text: &str, server: &str, root: Option<&str>) -> String {
    let mut t = text.replacen("match = [", &format!("match = [\"{server}\", "), 1);
    if let Some(root) = root {
        t = t.replace("$SERVER_ARGS", root);
    }
    t
}

/// The allowed root the path cases name in their preconditions ("allowed root /x/y").
fn path_root(cases: &[Value]) -> String {
    cases
        .iter()
        .filter_map(|c| c["input"]["preconditions_note"].as_str())
        .find_map(|n| {
            n.split("allowed root ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .map(str::to_owned)
        })
        .expect("a path case names its allowed root")
}

// ------------------------------------------------------------------ sessions

#[derive(Default)]
struct Setup {
    /// Policy files for a temp policy dir; none: the embedded packs.
    policies: Vec<(String, String)>,
    approval_timeout_secs: Option<u64>,
    /// The echo server's script (`{tool: [lines]}`), or the hostile server's when `hostile`.
    script: Value,
    hostile: bool,
    server: String,
    /// Shared state dir (shadowing: pins of another server).
    state: Option<PathBuf>,
    /// Made before start (e.g. an approval queue that cannot be written).
    prepare: Option<fn(&Path)>,
    /// `risk_thresholds` all 0: the trust gate stays out of the way of what the case tests.
    /// A fresh server scores about 0.70 after one handshake (availability 0.75, age 0.01, …),
    /// just under the default `high = 0.7`, so a high-risk call on a new server would be
    /// refused with -32017 before it could ever reach the approval queue.
    no_trust_gate: bool,
}

struct Session {
    w: Wrapped,
    state: PathBuf,
    _dirs: Vec<tempfile::TempDir>,
}

fn python() -> OsString {
    std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into())
}

fn start(setup: &Setup) -> Session {
    let mut dirs = Vec::new();
    let state = match &setup.state {
        Some(s) => s.clone(),
        None => {
            let d = tempfile::tempdir().expect("state dir");
            let p = d.path().to_owned();
            dirs.push(d);
            p
        }
    };
    if let Some(prepare) = setup.prepare {
        prepare(&state);
    }
    let mut config = String::new();
    if !setup.policies.is_empty() || setup.approval_timeout_secs.is_some() || setup.no_trust_gate {
        config.push_str("[policy]\n");
    }
    if setup.no_trust_gate {
        config.push_str("risk_thresholds = { low = 0.0, medium = 0.0, high = 0.0 }\n");
    }
    if !setup.policies.is_empty() {
        let d = tempfile::tempdir().expect("policy dir");
        for (name, text) in &setup.policies {
            std::fs::write(d.path().join(name), text).expect("write policy");
        }
        config.push_str(&format!("dir = {:?}\n", d.path().to_string_lossy()));
        dirs.push(d);
    }
    if let Some(t) = setup.approval_timeout_secs {
        config.push_str(&format!("approval_timeout_secs = {t}\n"));
    }
    let opts = Options {
        script: Some(setup.script.clone()),
        config: (!config.is_empty()).then_some(config),
        extra_env: vec![(
            "MCP_WARDEN_STATE".into(),
            state.to_string_lossy().into_owned(),
        )],
    };
    let server = if setup.server.is_empty() {
        "echo"
    } else {
        &setup.server
    };
    let argv: Vec<OsString> = if setup.hostile {
        vec![
            python(),
            repo().join("tests/hostile/server.py").into_os_string(),
        ]
    } else {
        vec![support::echo_server_bin().into_os_string()]
    };
    Session {
        w: support::start_upstream(opts, server, &argv),
        state,
        _dirs: dirs,
    }
}

fn cli(state: &Path, args: &[&str]) -> Output {
    Command::new(support::warden_bin())
        .args(args)
        .env("MCP_WARDEN_STATE", state)
        .output()
        .expect("run mcp-warden")
}

impl Session {
    fn handshake(&mut self) {
        // A full client: server requests are judged on their content, not refused as undeclared.
        self.handshake_with(json!({"sampling":{},"elicitation":{},"roots":{}}));
    }

    /// A client without elicitation: approvals wait in the signed queue (driven by the CLI).
    fn handshake_queue(&mut self) {
        self.handshake_with(json!({"sampling":{},"roots":{}}));
    }

    fn handshake_with(&mut self, capabilities: Value) {
        self.w.send(&json!({"jsonrpc":"2.0","id":"init","method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":capabilities,"clientInfo":{"name":"t","version":"1"}}}));
        assert_eq!(self.reply("init")["id"], "init");
        self.w
            .send(&json!({"jsonrpc":"2.0","method":"notifications/initialized"}));
    }

    /// The answer to request `id` (notifications and server requests in between are skipped).
    fn reply(&self, id: impl Into<Value>) -> Value {
        let id = id.into();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            let Some(line) = self.w.recv_raw(Duration::from_millis(200)) else {
                continue;
            };
            let v: Value = serde_json::from_slice(&line).expect("client got JSON");
            if v["id"] == id && v.get("method").is_none() {
                return v;
            }
        }
        panic!("no answer to {id} within 15 s");
    }

    /// Every line the client got within `wait` (for "never shown" checks).
    fn drain(&self, wait: Duration) -> Vec<Value> {
        let mut out = Vec::new();
        while let Some(line) = self.w.recv_raw(wait) {
            out.push(serde_json::from_slice(&line).expect("client got JSON"));
        }
        out
    }

    fn list_tools(&mut self, id: &str) -> Vec<String> {
        self.w
            .send(&json!({"jsonrpc":"2.0","id":id,"method":"tools/list"}));
        let r = self.reply(id);
        r["result"]["tools"]
            .as_array()
            .unwrap_or_else(|| panic!("tools/list answer: {r}"))
            .iter()
            .filter_map(|t| t["name"].as_str().map(str::to_owned))
            .collect()
    }

    fn upstream(&self) -> Vec<Value> {
        self.w
            .upstream()
            .iter()
            .filter_map(|l| serde_json::from_slice(l).ok())
            .collect()
    }

    /// Whether the upstream ever received a `tools/call` of `tool`.
    fn upstream_called(&self, tool: &str) -> usize {
        self.upstream()
            .iter()
            .filter(|m| m["method"] == "tools/call" && m["params"]["name"] == tool)
            .count()
    }

    /// The id of the pending approval for `tool`, once it shows in `mcp-warden approvals`.
    fn pending_approval(&self, tool: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let out = cli(&self.state, &["approvals"]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            if let Some(line) = text
                .lines()
                .find(|l| l.split_whitespace().nth(2) == Some(tool))
            {
                return line.split_whitespace().next().expect("id").to_owned();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let events: Vec<String> = self
            .w
            .audit()
            .iter()
            .map(|r| {
                format!(
                    "{} {} {} {}",
                    r["event"], r["tool"], r["decision"], r["reason"]
                )
            })
            .collect();
        panic!("no pending approval for {tool}; audit: {events:#?}");
    }
}

/// How a call that needs a human is resolved.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Outcome {
    /// `mcp-warden deny ID`.
    Deny,
    /// Nobody answers within `approval_timeout_secs`.
    Timeout,
    /// The approval queue cannot be written.
    Unreachable,
}

fn outcome_of(name: &str) -> Option<Outcome> {
    match name {
        n if n.starts_with("deny") => Some(Outcome::Deny),
        n if n.starts_with("timeout") => Some(Outcome::Timeout),
        n if n.contains("unreachable") => Some(Outcome::Unreachable),
        _ => None,
    }
}

fn unwritable_queue(state: &Path) {
    std::fs::create_dir_all(state).expect("state dir");
    // A regular file where the queue directory should be: every submit fails.
    std::fs::write(state.join("approvals"), b"not a directory").expect("block queue");
}

/// Assert one refused call: code, message, data, and that it did not reach the upstream.
fn assert_refused(case: &Value, msg: &Value, reply: &Value) {
    let id = id_of(case);
    let want = expected_code(case).expect("an expected code");
    assert_eq!(
        reply["error"]["code"].as_i64(),
        Some(want),
        "{id}: {msg}\n→ {reply}"
    );
    assert_eq!(reply["id"], msg["id"], "{id}: error carries the id");
    if let Some(text) = case["expected"]["error_message"].as_str() {
        assert_eq!(reply["error"]["message"], text, "{id}: error message");
    }
    let data = &reply["error"]["data"];
    for k in ["rule", "reason", "audit_id"] {
        assert!(data[k].is_string(), "{id}: error data.{k}: {reply}");
    }
}

/// The audit records of the session that carry one of the expected events, checked for the
/// alert flag (and the code, when the case has one).
fn assert_audit(case: &Value, s: &Session, tool: Option<&str>) -> Vec<Value> {
    let id = id_of(case);
    let records = s.w.audit();
    let mut found = Vec::new();
    for ev in expected_events(case) {
        let want = proxy_event(&ev);
        let hits: Vec<&Value> = records
            .iter()
            .filter(|r| r["event"] == want || detail_events(r).iter().any(|e| e == want))
            .filter(|r| tool.is_none_or(|t| r["tool"].is_null() || r["tool"] == t))
            .collect();
        assert!(
            !hits.is_empty(),
            "{id}: no audit record with event {want} (corpus: {ev}); events: {:?}",
            records.iter().map(|r| &r["event"]).collect::<Vec<_>>()
        );
        if let Some((.., rule, _)) = EVENT_ALIASES.iter().find(|(c, ..)| *c == ev) {
            // The why of a hold is on the call's `approval.requested` record; the refusal that
            // ends the wait names rule "approval".
            let tools: Vec<&Value> = hits.iter().map(|r| &r["tool"]).collect();
            assert!(
                records
                    .iter()
                    .filter(|r| tools.contains(&&r["tool"]))
                    .any(|r| r["rule"].as_str().unwrap_or("").contains(rule)),
                "{id}: {want} for {ev}: no record of the call with rule {rule}"
            );
        }
        if expected_alert(case) {
            assert!(
                hits.iter().any(|r| r["alert"] == true),
                "{id}: {want} recorded without alert: {:?}",
                hits
            );
        }
        found.extend(hits.into_iter().cloned());
    }
    found
}

/// Events inside a listing record's `detail.pins` (one record may carry several findings).
fn detail_events(r: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for p in r["detail"]["pins"].as_array().into_iter().flatten() {
        if let Some(flags) = p["flags"].as_array() {
            out.extend(
                flags
                    .iter()
                    .filter_map(|f| f["event"].as_str().map(str::to_owned)),
            );
        }
        match p["type"].as_str() {
            Some("drift") if p["schema_only"] == true => out.push("capability.schema_drift".into()),
            Some("drift") => out.push("capability.drift".into()),
            Some("new") => out.push("capability.new_item".into()),
            _ => {}
        }
    }
    out
}

// ------------------------------------------------------------------ client → proxy calls

/// The echo script listing every tool the messages name, answering each with a plain result.
fn listing_script(msgs: &[Value]) -> Value {
    let mut script = serde_json::Map::new();
    for m in msgs {
        let t = tool_of(m);
        if !t.is_empty() {
            script.insert(t.to_owned(), json!([ok_line(&format!("{t} done"))]));
        }
    }
    Value::Object(script)
}

/// Send each message, drive approvals, and check the refusal; returns the session for more
/// checks. `outcome`: how held calls are resolved.
fn run_calls(case: &Value, setup: Setup, msgs: &[Value], outcome: Outcome) -> Session {
    let mut s = start(&setup);
    if expected_code(case) == Some(-32014) {
        s.handshake_queue();
    } else {
        s.handshake();
    }
    let listed = s.list_tools("list");
    for m in msgs {
        let tool = tool_of(m);
        if case["expected"]["audit_event"] == "policy.denied_tool" {
            assert!(
                !listed.iter().any(|t| t == tool),
                "{}: a tool the policy denies is hidden from tools/list: {listed:?}",
                id_of(case)
            );
        }
        s.w.send(m);
        if expected_code(case) == Some(-32014) && outcome == Outcome::Deny {
            let ticket = s.pending_approval(tool);
            let out = cli(&s.state, &["deny", &ticket]);
            assert!(out.status.success(), "deny {ticket}: {out:?}");
        }
        let reply = s.reply(m["id"].clone());
        assert_refused(case, m, &reply);
    }
    s
}

fn check_not_forwarded(case: &Value, s: &Session, msgs: &[Value]) {
    if case["expected"]["forwarded_upstream"] == false {
        for m in msgs {
            assert_eq!(
                s.upstream_called(tool_of(m)),
                0,
                "{}: the upstream saw a refused call of {}",
                id_of(case),
                tool_of(m)
            );
        }
    }
}

/// A policy file for `server` with one `[[tool]]` table per entry.
fn policy_file(server: &str, tools: &[String]) -> String {
    let mut t = format!("[server]\nmatch = [\"{server}\"]\n");
    for tool in tools {
        t.push_str("\n[[tool]]\n");
        t.push_str(tool);
        t.push('\n');
    }
    t
}

fn client_case(case: &Value) {
    let id = id_of(case);
    let msgs = messages(case);
    let tools: Vec<&str> = msgs.iter().map(tool_of).collect();
    let mut setup = Setup {
        script: listing_script(&msgs),
        ..Setup::default()
    };
    let category = case["category"].as_str().unwrap_or("");
    let event = case["expected"]["audit_event"].as_str().unwrap_or("");
    match category {
        // Never listed: the upstream offers nothing but its own tools.
        "policy" if event == "policy.unknown_tool" => setup.script = json!({}),
        // Listed upstream, denied by policy.
        "policy" => {
            let rules: Vec<String> = tools
                .iter()
                .map(|t| format!("name = {t:?}\naction = \"deny\""))
                .collect();
            setup.policies = vec![("deny.toml".into(), policy_file("echo", &rules))];
        }
        "path" => {
            let root = path_root(&stdio_cases(&["path"]));
            let (name, text) = pack_for(tools[0]).expect("a pack for the path tool");
            setup.policies = vec![(name, adopt_pack(&text, "echo", Some(&root)))];
        }
        "ssrf" => {
            let (name, text) = pack_for(tools[0]).expect("a pack for the fetch tool");
            setup.policies = vec![(name, adopt_pack(&text, "echo", None))];
        }
        "arguments" => setup.policies = vec![("args.toml".into(), argument_policy(case))],
        "secrets" | "poisoning" => {} // the embedded packs: secrets and padding need no rule
        other => panic!("{id}: no client-call setup for category {other}"),
    }
    let s = run_calls(case, setup, &msgs, Outcome::Deny);
    // The rule the corpus names, for the first variant.
    if let Some(rule) = case["expected"]["error_data"]["rule"].as_str() {
        let records = s.w.audit();
        let first = records
            .iter()
            .find(|r| r["method"] == "tools/call" && r["decision"] == "deny")
            .expect("a denied call");
        assert_eq!(first["rule"], rule, "{id}: rule of the first refusal");
    }
    let hits = assert_audit(case, &s, None);
    let refused = hits
        .iter()
        .filter(|r| r["direction"] == "client_to_server" && r["decision"] == "deny")
        .count();
    assert!(
        refused >= msgs.len(),
        "{id}: {} variants, {refused} refusals with the expected event",
        msgs.len()
    );
    if let Some(code) = expected_code(case) {
        assert!(
            hits.iter().all(|r| r["code"].as_i64() == Some(code)),
            "{id}: audit codes {hits:?}"
        );
    }
    check_not_forwarded(case, &s, &msgs);
}

/// The argument rules of POL-07's `policy_example`, written as a policy: the branch pattern
/// and no leading dash, the recipient domain, no undeclared arguments (additionalProperties:
/// false); the SQL tool gets the shipped postgres pack's single-statement rule.
fn argument_policy(case: &Value) -> String {
    let example = &case["input"]["policy_example"];
    assert!(example.is_object(), "{}: policy_example", id_of(case));
    let branch = example["git_checkout.branch"]
        .as_str()
        .and_then(|s| s.strip_prefix('^'))
        .and_then(|s| s.split('$').next())
        .expect("branch pattern");
    let domain = example["send_email.to"]
        .as_str()
        .and_then(|s| s.split('[').nth(1))
        .and_then(|s| s.split(']').next())
        .expect("recipient domain");
    let strict = example["additionalProperties"] == false;
    let postgres = std::fs::read_to_string(repo().join("policies/postgres.toml")).expect("pack");
    let pg: toml::Value = toml::from_str(&postgres).expect("postgres pack");
    let sql = pg["tool"][0]["args"]["sql"]["pattern"]
        .as_str()
        .expect("postgres sql pattern");
    policy_file(
        "echo",
        &[
            format!(
                "name = \"git_checkout\"\ndeny_other_args = {strict}\n[tool.args.branch]\npattern = '{branch}'\nno_leading_dash = true"
            ),
            format!(
                "name = \"send_email\"\ndeny_other_args = {strict}\n[tool.args.to]\npattern = '[^@\\s]+@{}'\n[tool.args.body]\nmax_len = 100000",
                domain.replace('.', "\\.")
            ),
            format!("name = \"run_query\"\n[tool.args.sql]\npattern = '{sql}'"),
        ],
    )
}

// ------------------------------------------------------------------ approvals

fn approval_case(case: &Value) {
    let id = id_of(case);
    let msgs = messages(case);
    let tool = tool_of(&msgs[0]);
    let (name, text) = pack_for(tool).expect("a pack for the approval tool");
    let outcomes: Vec<Outcome> = case["input"]["approval_outcomes"]
        .as_array()
        .expect("approval_outcomes")
        .iter()
        .map(|o| outcome_of(o.as_str().unwrap_or("")).expect("known outcome"))
        .collect();
    for outcome in outcomes {
        let setup = Setup {
            script: listing_script(&msgs),
            policies: vec![(name.clone(), adopt_pack(&text, "echo", None))],
            approval_timeout_secs: Some(if outcome == Outcome::Timeout { 1 } else { 30 }),
            prepare: (outcome == Outcome::Unreachable).then_some(unwritable_queue as fn(&Path)),
            no_trust_gate: true,
            ..Setup::default()
        };
        let t0 = Instant::now();
        let s = run_calls(case, setup, &msgs, outcome);
        if outcome == Outcome::Timeout {
            assert!(
                t0.elapsed() >= Duration::from_secs(1),
                "{id}: refused before the timeout"
            );
        }
        let hits = assert_audit(case, &s, Some(tool));
        let reason = hits
            .iter()
            .filter_map(|r| r["reason"].as_str())
            .collect::<Vec<_>>()
            .join(" | ");
        let why = match outcome {
            Outcome::Deny => "denied",
            Outcome::Timeout => "timeout",
            Outcome::Unreachable => "cannot be written",
        };
        assert!(reason.contains(why), "{id} {outcome:?}: reason {reason}");
        check_not_forwarded(case, &s, &msgs);
    }
}

// ------------------------------------------------------------------ rate limits

fn rate_case(case: &Value) {
    let id = id_of(case);
    let input = &case["input"];
    let template = &input["message"];
    let tool = tool_of(template);
    const LIMIT: usize = 5;
    let setup = Setup {
        script: listing_script(std::slice::from_ref(template)),
        policies: vec![(
            "rate.toml".into(),
            policy_file(
                "echo",
                &[format!("name = {tool:?}\nrate = \"{LIMIT}/min\"")],
            ),
        )],
        ..Setup::default()
    };
    let mut s = start(&setup);
    s.handshake();
    s.list_tools("list");
    // A burst well above the limit (the corpus floods at rate_per_s; a few times the limit is
    // enough to cross it without a 10 s run).
    let flood = (input["rate_per_s"].as_u64().unwrap_or(20) as usize).min(4 * LIMIT);
    let mut limited = 0;
    for n in 0..flood {
        let text = serde_json::to_string(template)
            .expect("json")
            .replace("\"{{n}}\"", &n.to_string());
        let msg: Value = serde_json::from_str(&text).expect("flood message");
        s.w.send(&msg);
        let r = s.reply(n);
        if r.get("error").is_some() {
            assert_refused(case, &msg, &r);
            if case["expected"]["retry_after"] == true {
                assert!(
                    r["error"]["data"]["retry_after_ms"]
                        .as_u64()
                        .is_some_and(|ms| ms > 0),
                    "{id}: retry_after_ms: {r}"
                );
            }
            limited += 1;
        } else {
            assert_eq!(limited, 0, "{id}: a call passed after the limit hit: {r}");
        }
    }
    assert_eq!(limited, flood - LIMIT, "{id}: calls over the limit");
    assert_eq!(
        s.upstream_called(tool),
        LIMIT,
        "{id}: only the allowed calls reach the upstream"
    );
    let hits = assert_audit(case, &s, Some(tool));
    assert!(!hits.is_empty());
}

// ------------------------------------------------------------------ trust

fn trust_case(case: &Value) {
    let id = id_of(case);
    let msgs = messages(case);
    let tool = tool_of(&msgs[0]);
    let note = case["input"]["preconditions_note"].as_str().unwrap_or("");
    // "tool risk=high requires >= 0.7": the risk the case names, the configured threshold.
    let risk = note
        .split("risk=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or("high");
    let state = tempfile::tempdir().expect("state");
    // Drive the server's trust down the way an operator and a failing server would: negative
    // feedback, and a session of failed calls.
    for _ in 0..5 {
        let out = cli(state.path(), &["feedback", "echo", "-1"]);
        assert!(out.status.success(), "feedback: {out:?}");
    }
    let failing = "failing_tool";
    let fail_line = scripted_line(
        &json!({"jsonrpc":"2.0","id":0,"result":{"content":[{"type":"text","text":"boom"}],"isError":true}}),
    );
    let mut script = listing_script(&msgs);
    script[failing] = json!([fail_line]);
    let policy = policy_file(
        "echo",
        &[
            format!("name = {tool:?}\nrisk = {risk:?}"),
            format!("name = {failing:?}\nrisk = \"low\"\nmin_trust = 0.0"),
        ],
    );
    let setup = Setup {
        script,
        policies: vec![("trust.toml".into(), policy)],
        state: Some(state.path().to_owned()),
        ..Setup::default()
    };
    {
        let mut s = start(&setup);
        s.handshake();
        s.list_tools("list");
        for n in 0..5 {
            s.w.send(&json!({"jsonrpc":"2.0","id":format!("f{n}"),"method":"tools/call","params":{"name":failing,"arguments":{}}}));
            s.reply(format!("f{n}"));
        }
        s.w.finish();
    }
    let report = cli(state.path(), &["trust", "echo", "--json"]);
    let report: Value = serde_json::from_slice(&report.stdout).expect("trust --json");
    let score = report["score"].as_f64().expect("score");
    assert!(score < 0.7, "{id}: trust was driven down: {report}");
    let compliance = |r: &Value| {
        r["factors"]
            .as_array()
            .and_then(|f| f.iter().find(|f| f["name"] == "compliance").cloned())
            .unwrap_or(Value::Null)
    };
    let before = compliance(&report);
    let s = run_calls(case, setup, &msgs, Outcome::Deny);
    // Issue 19: refusals by the trust gate itself are not the server's non-compliance.
    let after = cli(state.path(), &["trust", "echo", "--json"]);
    let after: Value = serde_json::from_slice(&after.stdout).expect("trust --json");
    assert_eq!(compliance(&after), before, "{id}: the gate fed on itself");
    let hits = assert_audit(case, &s, Some(tool));
    assert!(
        hits.iter()
            .any(|r| r["code"] == expected_code(case).unwrap()),
        "{id}: {hits:?}"
    );
    check_not_forwarded(case, &s, &msgs);
}

// ------------------------------------------------------------------ server → proxy

/// Tool listings a case's server sends (single message or steps), in order, and whether a
/// list_changed notification follows each.
fn server_listings(case: &Value) -> (Vec<Value>, Vec<usize>) {
    let input = &case["input"];
    let steps: Vec<Value> = match input.get("steps") {
        Some(s) => s.as_array().expect("steps").clone(),
        None => vec![json!({"from": "server", "message": input["message"]})],
    };
    let mut listings = Vec::new();
    let mut notify = Vec::new();
    for step in steps.iter().filter(|s| s["from"] == "server") {
        let m = &step["message"];
        if let Some(tools) = m["result"]["tools"].as_array() {
            listings.push(Value::Array(tools.clone()));
        } else if m["method"] == "notifications/tools/list_changed" {
            notify.push(listings.len());
        }
    }
    (listings, notify)
}

fn tool_names(listing: &Value) -> Vec<String> {
    listing
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect()
}

/// Rug pulls and schema drift: the hostile server lists what the case's server steps list; the
/// client re-lists after each (list_changed or not) and then calls the drifted tool.
fn baseline_case(case: &Value) {
    let id = id_of(case);
    let (listings, notify) = server_listings(case);
    assert!(listings.len() >= 2, "{id}: a drift case lists twice");
    let setup = Setup {
        script: json!({"listings": listings, "list_changed_after": notify}),
        hostile: true,
        server: "hostile".into(),
        ..Setup::default()
    };
    let mut s = start(&setup);
    s.handshake();
    let first = s.list_tools("list-0");
    assert_eq!(
        first,
        tool_names(&listings[0]),
        "{id}: first listing pinned as is"
    );
    let mut last = first;
    for i in 1..listings.len() {
        if notify.contains(&i) {
            let seen = s.drain(Duration::from_millis(300));
            assert!(
                seen.iter()
                    .any(|m| m["method"] == "notifications/tools/list_changed"),
                "{id}: list_changed passes to the client: {seen:?}"
            );
        }
        last = s.list_tools(&format!("list-{i}"));
    }
    // Which tools drifted: listed first and last with another definition.
    let before = listings[0].as_array().expect("tools");
    let after = listings.last().and_then(Value::as_array).expect("tools");
    let drifted: Vec<&str> = after
        .iter()
        .filter(|t| before.iter().any(|b| b["name"] == t["name"] && b != *t))
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(!drifted.is_empty(), "{id}: the case changes a definition");
    for tool in &drifted {
        assert!(
            !last.iter().any(|t| t == tool),
            "{id}: drifted {tool} withheld from the listing: {last:?}"
        );
    }
    // The call: the case's own client step, or a call of each drifted tool.
    let mut calls: Vec<Value> = case["input"]["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["from"] == "client" && s["message"]["method"] == "tools/call")
        .map(|s| s["message"].clone())
        .collect();
    if calls.is_empty() {
        calls = drifted
            .iter()
            .enumerate()
            .map(|(n, t)| json!({"jsonrpc":"2.0","id":900 + n,"method":"tools/call","params":{"name":t,"arguments":{}}}))
            .collect();
    }
    for m in &calls {
        s.w.send(m);
        let r = s.reply(m["id"].clone());
        assert_refused(case, m, &r);
    }
    assert_audit(case, &s, None);
    check_not_forwarded(case, &s, &calls);
}

/// A poisoned listing from the start: the flagged tools never reach the client, and calling
/// one reads as an unknown tool.
fn poisoned_listing_case(case: &Value) {
    let id = id_of(case);
    let (listings, _) = server_listings(case);
    let setup = Setup {
        script: json!({"listings": listings}),
        hostile: true,
        server: "hostile".into(),
        ..Setup::default()
    };
    let mut s = start(&setup);
    s.handshake();
    let shown = s.list_tools("list");
    let poisoned = tool_names(&listings[0]);
    for t in &poisoned {
        assert!(!shown.contains(t), "{id}: poisoned {t} withheld: {shown:?}");
        let m = json!({"jsonrpc":"2.0","id":format!("call-{t}"),"method":"tools/call","params":{"name":t,"arguments":{}}});
        s.w.send(&m);
        let r = s.reply(m["id"].clone());
        assert_eq!(r["error"]["code"], -32602, "{id}: {r}");
        assert_eq!(r["error"]["message"], format!("Unknown tool: {t}"), "{id}");
    }
    let hits = assert_audit(case, &s, None);
    assert!(
        hits.iter().any(|r| r["method"] == "tools/list"),
        "{id}: the finding is on the listing"
    );
    if case["expected"]["forwarded_upstream"] == false {
        for t in &poisoned {
            assert_eq!(s.upstream_called(t), 0, "{id}: {t} called upstream");
        }
    }
}

/// Two upstreams: the trusted one is pinned first; the untrusted one's duplicate and its
/// description that redirects the trusted tool are held back.
fn shadowing_case(case: &Value) {
    let id = id_of(case);
    let servers = case["input"]["servers"]
        .as_object()
        .expect("servers")
        .clone();
    let state = tempfile::tempdir().expect("shared state");
    // "mail (trusted)" → server "mail"; trusted ones first so their pins exist.
    let mut order: Vec<(&String, &Value)> = servers.iter().collect();
    order.sort_by_key(|(k, _)| k.contains("untrusted"));
    let trusted_tools: Vec<String> = order
        .iter()
        .filter(|(k, _)| !k.contains("untrusted"))
        .flat_map(|(_, v)| tool_names(&v["tools"]))
        .collect();
    for (label, spec) in order {
        let name = label.split_whitespace().next().expect("server name");
        let untrusted = label.contains("untrusted");
        let setup = Setup {
            script: json!({"listings": [spec["tools"]]}),
            hostile: true,
            server: name.into(),
            state: Some(state.path().to_owned()),
            ..Setup::default()
        };
        let mut s = start(&setup);
        s.handshake();
        let shown = s.list_tools("list");
        let listed = tool_names(&spec["tools"]);
        if !untrusted {
            assert_eq!(shown, listed, "{id}: trusted {name} passes whole");
            s.w.finish();
            continue;
        }
        // Held back: descriptions naming a trusted tool. A tool that merely has the same name
        // as a trusted one stays listed with an alert (issue 10, newer than the corpus note:
        // hosts keep separately proxied servers apart).
        for t in &spec["tools"].as_array().cloned().unwrap_or_default() {
            let tname = t["name"].as_str().unwrap_or("");
            let description = t["description"].as_str().unwrap_or("");
            let names_other = trusted_tools
                .iter()
                .any(|tt| tt != tname && description.contains(tt.as_str()));
            let same_name = trusted_tools.iter().any(|tt| tt == tname);
            if names_other {
                assert!(
                    !shown.iter().any(|x| x == tname),
                    "{id}: {tname} of {name} shadows a trusted tool and is withheld: {shown:?}"
                );
            } else if same_name {
                assert!(
                    shown.iter().any(|x| x == tname),
                    "{id}: {tname} of {name} only shares a name and stays listed: {shown:?}"
                );
            }
        }
        let collision =
            s.w.audit()
                .into_iter()
                .any(|r| r["event"] == "capability.name_collision" && r["alert"] == true);
        assert!(collision, "{id}: the shared name is an alert");
        let hits = assert_audit(case, &s, None);
        assert!(hits.iter().any(|r| r["server"] == name), "{id}: {hits:?}");
        s.w.finish();
    }
}

/// A scripted answer (result or server request) to a call of a scripted tool.
fn server_message_case(case: &Value) {
    let id = id_of(case);
    let msg = &case["input"]["message"];
    let tool = "scripted_tool";
    let is_request = msg.get("method").is_some();
    let lines = if is_request {
        // The server asks the user something in the middle of a call, then answers the call.
        vec![scripted_line(msg), ok_line("after the question")]
    } else {
        vec![scripted_line(msg)]
    };
    let setup = Setup {
        script: json!({ tool: lines }),
        ..Setup::default()
    };
    let mut s = start(&setup);
    s.handshake();
    s.list_tools("list");
    s.w.send(&json!({"jsonrpc":"2.0","id":"c1","method":"tools/call","params":{"name":tool,"arguments":{}}}));
    if is_request {
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && !seen.iter().any(|m: &Value| m["id"] == "c1") {
            if let Some(l) = s.w.recv_raw(Duration::from_millis(100)) {
                seen.push(serde_json::from_slice(&l).expect("JSON"));
            }
        }
        if case["expected"]["forwarded_upstream"] == false {
            assert!(
                !seen.iter().any(|m| m["method"] == msg["method"]),
                "{id}: the client never sees the request: {seen:?}"
            );
        }
        // The server got the answer the case expects, on the user's behalf.
        if let Some(want) = case["expected"]["response_to_server"].as_object() {
            std::thread::sleep(Duration::from_millis(200));
            let up = s.upstream();
            let answer = up
                .iter()
                .find(|m| m["id"] == msg["id"] && m.get("method").is_none())
                .unwrap_or_else(|| panic!("{id}: the server got an answer: {up:?}"));
            for (k, v) in want {
                assert_eq!(&answer["result"][k], v, "{id}: answer {answer}");
            }
        }
    } else {
        let r = s.reply("c1");
        let original = serde_json::to_string(&msg["result"]).expect("json");
        let got = serde_json::to_string(&r["result"]).expect("json");
        let action = case["expected"]["action"].as_str().unwrap_or("");
        match action {
            // Replaced by a neutral error; nothing of the original reaches the model.
            "quarantine" | "block" => {
                assert_eq!(r["result"]["isError"], true, "{id}: {r}");
                for t in texts(&msg["result"]) {
                    assert!(!got.contains(&t), "{id}: quarantined text leaked: {got}");
                }
            }
            // Redacted: the secrets are gone, the rest stays.
            "modify" => {
                assert_ne!(got, original, "{id}: result rewritten");
                assert!(got.contains("[REDACTED:"), "{id}: {got}");
                let audit_text =
                    std::fs::read_to_string(s.w.dir.path().join("audit.jsonl")).unwrap_or_default();
                for secret in secretish_tokens(&original) {
                    assert!(!got.contains(&secret), "{id}: {secret} reached the client");
                    assert!(
                        !audit_text.contains(&secret),
                        "{id}: {secret} written to the audit trail"
                    );
                }
            }
            other => panic!("{id}: no check for action {other}"),
        }
    }
    assert_audit(case, &s, None);
}

/// The text items of a result.
fn texts(result: &Value) -> Vec<String> {
    result["content"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["text"].as_str().map(str::to_owned))
        .collect()
}

/// Long tokens with a digit in them: the key material of a secrets fixture (variable names
/// and PEM armour lines have none).
fn secretish_tokens(text: &str) -> Vec<String> {
    let text: String = serde_json::from_str::<Value>(text)
        .map(|v| texts(&v).join("\n"))
        .unwrap_or_default();
    text.split(|c: char| c.is_whitespace() || c == '=')
        .filter(|t| t.len() >= 16 && t.chars().any(|c| c.is_ascii_digit()))
        .map(|t| t.trim_end_matches('.').to_owned())
        .collect()
}

/// RES-01 style: a result that looks like an injection passes (audited, session tainted); the
/// case's client calls follow; the last one (the public write) must not go out unapproved.
fn tainted_flow_case(case: &Value, high_risk_write: bool) -> Session {
    let id = id_of(case);
    let steps = case["input"]["steps"].as_array().expect("steps");
    let result = steps
        .iter()
        .find(|s| s["from"] == "server")
        .map(|s| s["message"].clone())
        .expect("a server result");
    let calls: Vec<Value> = steps
        .iter()
        .filter(|s| s["from"] == "client")
        .map(|s| s["message"].clone())
        .collect();
    let reader = "scripted_tool";
    let mut script = listing_script(&calls);
    script[reader] = json!([scripted_line(&result)]);
    // The pack the client's tools belong to (the GitHub one for this flow).
    let (name, text) = pack_for(tool_of(&calls[0])).expect("a pack for the flow's tools");
    let mut policies = vec![(name, adopt_pack(&text, "echo", None))];
    let write = tool_of(calls.last().expect("calls"));
    if high_risk_write {
        // An operator who rates the public write high (the mechanism under test).
        policies.push((
            "zz-local.toml".into(),
            policy_file("echo", &[format!("name = {write:?}\nrisk = \"high\"")]),
        ));
    }
    let setup = Setup {
        script,
        policies,
        approval_timeout_secs: Some(30),
        no_trust_gate: true,
        ..Setup::default()
    };
    let mut s = start(&setup);
    s.handshake_queue();
    s.list_tools("list");
    s.w.send(&json!({"jsonrpc":"2.0","id":"r1","method":"tools/call","params":{"name":reader,"arguments":{}}}));
    let r = s.reply("r1");
    if case["expected"]["forwarded_upstream"] == true {
        assert_eq!(
            texts(&r["result"]),
            texts(&result["result"]),
            "{id}: the result passes unchanged"
        );
    }
    let (last, before) = calls.split_last().expect("calls");
    for m in before {
        s.w.send(m);
        let r = s.reply(m["id"].clone());
        assert!(r.get("result").is_some(), "{id}: {m} passes: {r}");
    }
    s.w.send(last);
    if expected_code(case) == Some(-32014) {
        let ticket = s.pending_approval(write);
        let out = cli(&s.state, &["deny", &ticket]);
        assert!(out.status.success(), "deny: {out:?}");
    }
    let r = s.reply(last["id"].clone());
    assert_refused(case, last, &r);
    assert_audit(case, &s, None);
    assert_eq!(
        s.upstream_called(write),
        0,
        "{id}: the write never went out"
    );
    s
}

// ------------------------------------------------------------------ dispatch

fn run_case(case: &Value) {
    let input_kind = case["input"]["kind"].as_str().unwrap_or("");
    let direction = case["direction"].as_str().unwrap_or("");
    let category = case["category"].as_str().unwrap_or("");
    match (category, input_kind, direction) {
        ("approval", _, _) => approval_case(case),
        ("trust", _, _) => trust_case(case),
        ("rate_limit", "generated", _) => rate_case(case),
        ("shadowing", _, _) => shadowing_case(case),
        ("baseline", "server_behaviour", _) => baseline_case(case),
        ("result_injection", "server_behaviour", _) => {
            tainted_flow_case(case, true);
        }
        (_, "jsonrpc", "client->proxy") => client_case(case),
        (_, "jsonrpc", "server->proxy")
            if case["input"]["message"]["result"]["tools"].is_array() =>
        {
            poisoned_listing_case(case)
        }
        (_, "jsonrpc", "server->proxy") => server_message_case(case),
        other => panic!("{}: no interpretation for {other:?}", id_of(case)),
    }
}

fn run_categories(categories: &[&str]) {
    let cases = stdio_cases(categories);
    assert!(!cases.is_empty(), "no cases in {categories:?}");
    for case in &cases {
        let t0 = Instant::now();
        run_case(case);
        eprintln!("{} ok in {:?}", id_of(case), t0.elapsed());
    }
}

#[test]
fn every_policy_side_case_is_interpreted() {
    // The stdio filter is the only thing that leaves a case out; list what it leaves out.
    for c in corpus()
        .iter()
        .filter(|c| CATEGORIES.contains(&c["category"].as_str().unwrap_or("")))
        .filter(|c| !matches!(c["transport"].as_str(), Some("stdio") | Some("both")))
    {
        eprintln!(
            "skipped {}: transport {} cannot run on stdio",
            id_of(c),
            c["transport"]
        );
    }
    let n: usize = CATEGORIES.iter().map(|c| stdio_cases(&[c]).len()).sum();
    assert!(n >= 20, "expected the policy-side corpus, found {n} cases");
    for (corpus_event, proxy, _, why) in EVENT_ALIASES {
        eprintln!("event {corpus_event} is recorded as {proxy}: {why}");
    }
}

#[test]
fn policy_and_unknown_tools() {
    run_categories(&["policy"]);
}

#[test]
fn path_rules() {
    run_categories(&["path"]);
}

#[test]
fn argument_rules() {
    run_categories(&["arguments"]);
}

#[test]
fn ssrf_rules() {
    run_categories(&["ssrf"]);
}

#[test]
fn baselines_and_rug_pulls() {
    run_categories(&["baseline"]);
}

#[test]
fn poisoned_definitions() {
    run_categories(&["poisoning"]);
}

#[test]
fn cross_server_shadowing() {
    run_categories(&["shadowing"]);
}

#[test]
fn secrets_both_ways() {
    run_categories(&["secrets"]);
}

#[test]
fn result_injection() {
    run_categories(&["result_injection"]);
}

#[test]
fn rate_limits() {
    run_categories(&["rate_limit"]);
}

#[test]
fn approvals_fail_closed() {
    run_categories(&["approval"]);
}

#[test]
fn trust_gate() {
    run_categories(&["trust"]);
}

#[test]
fn elicitation_phishing() {
    run_categories(&["elicitation"]);
}

/// RES-01 with the shipped GitHub pack as it is: the public write after an injected result.
#[test]
fn result_injection_with_shipped_github_pack() {
    for case in stdio_cases(&["result_injection"])
        .iter()
        .filter(|c| c["input"]["kind"] == "server_behaviour")
    {
        tainted_flow_case(case, false);
    }
}

/// The other side of POL-10: an explicit `mcp-warden approve ID` forwards the held call, once,
/// with the exact bytes the client sent.
#[test]
fn approved_call_is_forwarded_once() {
    for case in stdio_cases(&["approval"]) {
        let id = id_of(&case);
        let msgs = messages(&case);
        let tool = tool_of(&msgs[0]);
        let (name, text) = pack_for(tool).expect("a pack for the approval tool");
        let setup = Setup {
            script: listing_script(&msgs),
            policies: vec![(name, adopt_pack(&text, "echo", None))],
            approval_timeout_secs: Some(30),
            no_trust_gate: true,
            ..Setup::default()
        };
        let mut s = start(&setup);
        s.handshake_queue();
        s.list_tools("list");
        let line = serde_json::to_vec(&msgs[0]).expect("json");
        let mut framed = line.clone();
        framed.push(b'\n');
        s.w.send_raw(&framed);
        let ticket = s.pending_approval(tool);
        assert_eq!(
            s.upstream_called(tool),
            0,
            "{id}: nothing goes out before approval"
        );
        let out = cli(&s.state, &["approve", &ticket]);
        assert!(out.status.success(), "approve {ticket}: {out:?}");
        let r = s.reply(msgs[0]["id"].clone());
        assert!(
            r.get("result").is_some(),
            "{id}: approved call answered: {r}"
        );
        let sent: Vec<Vec<u8>> =
            s.w.upstream()
                .into_iter()
                .filter(|l| {
                    serde_json::from_slice::<Value>(l)
                        .is_ok_and(|m| m["method"] == "tools/call" && m["params"]["name"] == tool)
                })
                .collect();
        assert_eq!(sent, vec![line], "{id}: forwarded once, byte for byte");
        assert!(
            s.w.audit().iter().any(|r| r["event"] == "approval.granted"),
            "{id}: approval.granted audited"
        );
        assert!(
            !cli(&s.state, &["approvals"])
                .stdout
                .windows(ticket.len())
                .any(|w| w == ticket.as_bytes()),
            "{id}: the ticket is no longer pending"
        );
    }
}

// ------------------------------------------------------------------ the proxy's own state

fn allow_all() -> (String, String) {
    let text = std::fs::read_to_string(support::fixture("policies/allow-all/allow-all.toml"))
        .expect("allow-all pack");
    ("allow-all.toml".into(), text)
}

/// Issue 9.2 d: an argument naming the state dir (any spelling) is refused with -32013 by
/// `builtin.proxy_state` even under an allow-everything policy; a path that merely shares the
/// prefix passes.
#[test]
fn arguments_naming_the_proxy_state_are_refused_whatever_the_policy() {
    let setup = Setup {
        script: json!({}),
        policies: vec![allow_all()],
        no_trust_gate: true,
        ..Setup::default()
    };
    let mut s = start(&setup);
    s.handshake();
    s.list_tools("list");
    let st = s.state.display().to_string();
    let name = s.state.file_name().unwrap().to_string_lossy().into_owned();
    let refused = [
        format!("{st}/approvals/0123abcd.json"),
        format!("{st}/pins/../pins/echo.json"),
        format!("file://{st}/identity.pem"),
        format!("{st}/../{name}/proxy.toml"),
        format!("rm -f {st}/pins/echo.json"),
    ];
    for (i, text) in refused.iter().enumerate() {
        let id = format!("bad{i}");
        s.w.send(&json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":"echo","arguments":{"text":text}}}));
        let r = s.reply(id.as_str());
        assert_eq!(r["error"]["code"], -32013, "{text}: {r}");
        assert_eq!(
            r["error"]["data"]["rule"], "builtin.proxy_state",
            "{text}: {r}"
        );
    }
    let benign = format!("{st}-notes/todo.md");
    s.w.send(&json!({"jsonrpc":"2.0","id":"ok","method":"tools/call","params":{"name":"echo","arguments":{"text":benign}}}));
    let r = s.reply("ok");
    assert_eq!(r["result"]["content"][0]["text"], benign.as_str(), "{r}");
    assert_eq!(
        s.upstream_called("echo"),
        1,
        "only the benign call went out"
    );
    let audit = s.w.audit();
    let hits = audit
        .iter()
        .filter(|r| r["rule"] == "builtin.proxy_state")
        .count();
    assert_eq!(hits, refused.len(), "one audit record per refusal");
}

// ------------------------------------------------------------------ approvals a tool cannot forge

fn approve_echo_setup() -> Setup {
    let pack = "[server]\nmatch = [\"*\"]\ndefault_risk = \"low\"\n\n[[tool]]\nname = \"echo\"\nrisk = \"high\"\naction = \"approve\"\n";
    Setup {
        script: json!({}),
        policies: vec![("approve-echo.toml".into(), pack.into())],
        approval_timeout_secs: Some(30),
        no_trust_gate: true,
        ..Setup::default()
    }
}

fn call_echo(s: &mut Session, id: &str, text: &str) {
    s.w.send(&json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":"echo","arguments":{"text":text}}}));
}

/// Issue 9.2 b: a tool that writes `"status":"approved"` into its own ticket (as the wrapped
/// server could, running as the same user) does not get its call executed: -32014 and an
/// `approval.forged` alert. The operator's `mcp-warden approve ID` (signed) still works.
#[test]
fn an_edited_ticket_file_does_not_approve() {
    let mut s = start(&approve_echo_setup());
    s.handshake_queue();
    s.list_tools("list");
    call_echo(&mut s, "forged", "rm -rf /srv/data");
    let ticket = s.pending_approval("echo");
    let path = s.state.join("approvals").join(format!("{ticket}.json"));
    let mut t: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    t["status"] = json!("approved");
    std::fs::write(&path, serde_json::to_vec(&t).unwrap()).unwrap();
    let r = s.reply("forged");
    assert_eq!(r["error"]["code"], -32014, "{r}");
    assert_eq!(
        s.upstream_called("echo"),
        0,
        "the forged approval executed the call"
    );
    let audit = s.w.audit();
    let forged = audit
        .iter()
        .find(|r| r["event"] == "approval.forged")
        .unwrap_or_else(|| panic!("no approval.forged record: {audit:#?}"));
    assert_eq!(forged["alert"], true, "{forged}");

    call_echo(&mut s, "real", "hello");
    let ticket = s.pending_approval("echo");
    let out = cli(&s.state, &["approve", &ticket]);
    assert!(out.status.success(), "approve {ticket}: {out:?}");
    let r = s.reply("real");
    assert_eq!(r["result"]["content"][0]["text"], "hello", "{r}");
    assert_eq!(s.upstream_called("echo"), 1);
}

/// Issue 19.4: a held call the client cancels is withdrawn (audited, ticket gone) and a later
/// `approve` releases nothing; the approver saw a safe view of the arguments, not a digest.
#[test]
fn a_cancelled_call_is_withdrawn_and_never_executed() {
    let mut s = start(&approve_echo_setup());
    s.handshake_queue();
    s.list_tools("list");
    let text = "first line\nsecond\nthird\nfourth\u{202e}";
    s.w.send(&json!({"jsonrpc":"2.0","id":"c1","method":"tools/call","params":{"name":"echo","arguments":{"text":text,"password":"hunter2"}}}));
    let ticket = s.pending_approval("echo");
    let listing = String::from_utf8_lossy(&cli(&s.state, &["approvals"]).stdout).into_owned();
    assert!(
        listing.contains("text: \"first line\\nsecond\\nthird "),
        "{listing}"
    );
    assert!(listing.contains("⟨+1 lines⟩"), "{listing}");
    assert!(listing.contains("password: [REDACTED"), "{listing}");
    assert!(
        !listing.contains("hunter2") && !listing.contains('\u{202e}'),
        "{listing}"
    );

    s.w.send(&json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"c1","reason":"user gave up"}}));
    let deadline = Instant::now() + Duration::from_secs(10);
    while s
        .state
        .join("approvals")
        .join(format!("{ticket}.json"))
        .exists()
    {
        assert!(Instant::now() < deadline, "the ticket was never withdrawn");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = cli(&s.state, &["approve", &ticket]);
    assert!(!out.status.success(), "approve after cancel: {out:?}");
    s.w.ping("after");
    assert_eq!(
        s.upstream_called("echo"),
        0,
        "a cancelled call was executed"
    );
    let audit = s.w.audit();
    assert!(
        audit.iter().any(|r| r["event"] == "approval.withdrawn"),
        "withdrawal audited: {audit:#?}"
    );
    // The client that cancelled gets no answer for c1 (MCP: cancelled requests are not answered).
    assert!(s
        .drain(Duration::from_millis(300))
        .iter()
        .all(|m| m["id"] != "c1"));
}

/// Issue 19.4: a client that goes away withdraws its held calls before the proxy exits.
#[test]
fn a_client_disconnect_withdraws_held_calls() {
    let mut s = start(&approve_echo_setup());
    s.handshake_queue();
    s.list_tools("list");
    call_echo(&mut s, "d1", "bye");
    let ticket = s.pending_approval("echo");
    assert_eq!(s.w.finish(), 0);
    assert!(!s
        .state
        .join("approvals")
        .join(format!("{ticket}.json"))
        .exists());
    assert!(!cli(&s.state, &["approve", &ticket]).status.success());
    let audit = s.w.audit();
    assert!(
        audit.iter().any(|r| r["event"] == "approval.withdrawn"),
        "withdrawal audited: {audit:#?}"
    );
    assert_eq!(s.upstream_called("echo"), 0);
}

// ------------------------------------------------------------------ approval through the client

/// A policy asking for approval of `write_note` (echo server), `remember` as given.
fn approve_note_setup(remember: &str, timeout: u64) -> Setup {
    Setup {
        script: json!({"write_note": [ok_line("note written")]}),
        policies: vec![(
            "notes.toml".into(),
            policy_file(
                "echo",
                &[format!(
                    "name = \"write_note\"\nrisk = \"high\"\naction = \"approve\"\nremember = {remember:?}"
                )],
            ),
        )],
        approval_timeout_secs: Some(timeout),
        no_trust_gate: true,
        ..Setup::default()
    }
}

impl Session {
    /// The next request the proxy sends the client on its own (skipping anything else).
    fn proxy_ask(&self) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let Some(line) = self.w.recv_raw(Duration::from_millis(200)) else {
                continue;
            };
            let v: Value = serde_json::from_slice(&line).expect("client got JSON");
            if v["method"] == "elicitation/create" {
                return v;
            }
        }
        panic!("the proxy asked nothing through the client within 10 s");
    }

    /// Call `write_note` with `args`, receive the proxy's approval request, answer it with
    /// `answer` (a JSON-RPC `result` object, or a whole message when it has `error`), and
    /// return (the request, the call's reply).
    fn call_and_answer(&mut self, id: &str, args: Value, answer: Value) -> (Value, Value) {
        self.w.send(&json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":"write_note","arguments":args}}));
        let ask = self.proxy_ask();
        let reply = if answer.get("error").is_some() {
            json!({"jsonrpc":"2.0","id":ask["id"],"error":answer["error"]})
        } else {
            json!({"jsonrpc":"2.0","id":ask["id"],"result":answer})
        };
        self.w.send(&reply);
        (ask, self.reply(id))
    }

    fn upstream_saw_our_round(&self) -> bool {
        self.w
            .upstream()
            .iter()
            .any(|l| String::from_utf8_lossy(l).contains("mcp-warden/approval"))
    }
}

/// Issue 11: a client that declared elicitation is asked by the proxy itself; only accept +
/// approve = true runs the call; decline, cancel, accept without approve, a malformed answer
/// and an error answer are -32014 saying which; the server never sees the proxy's round.
#[test]
fn approval_is_asked_through_the_clients_elicitation() {
    let mut s = start(&approve_note_setup("never", 30));
    s.handshake();
    s.list_tools("list");
    let args = json!({"path": "/tmp/notes/today.md", "content": "buy milk\u{202e}"});

    let (ask, r) = s.call_and_answer(
        "c1",
        args.clone(),
        json!({"action":"accept","content":{"approve":true}}),
    );
    let ask_id = ask["id"].as_str().expect("a string id of the proxy's own");
    assert!(ask_id.starts_with("mcp-warden/approval/"), "{ask}");
    let msg = ask["params"]["message"].as_str().expect("message");
    // The bidi control in the content makes a detector the rule that asked (it outranks the
    // policy's own `approve`), and the human sees it as an escape, not as reordered text.
    for needle in [
        "write_note",
        "echo",
        "high",
        "poisoning.bidi_control",
        "/tmp/notes/today.md",
    ] {
        assert!(msg.contains(needle), "{needle} missing from {msg}");
    }
    assert!(!msg.contains('\u{202e}'), "bidi control shown raw: {msg}");
    let schema = &ask["params"]["requestedSchema"];
    assert_eq!(
        schema["properties"]["approve"]["type"], "boolean",
        "{schema}"
    );
    assert!(
        schema["properties"].get("remember").is_none(),
        "remember offered under never: {schema}"
    );
    assert!(
        r.get("result").is_some(),
        "accepted call answered by the server: {r}"
    );
    assert_eq!(s.upstream_called("write_note"), 1);

    let refusals = [
        (json!({"action":"decline"}), "declined"),
        (json!({"action":"cancel"}), "cancelled"),
        (
            json!({"action":"accept","content":{"approve":false}}),
            "did not tick",
        ),
        (
            json!({"action":"accept","content":{"approve":"true"}}),
            "malformed",
        ),
        (
            json!({"error":{"code":-32601,"message":"no elicitation here"}}),
            "error",
        ),
    ];
    for (i, (answer, why)) in refusals.iter().enumerate() {
        let id = format!("c{}", i + 2);
        let (_, r) = s.call_and_answer(&id, args.clone(), answer.clone());
        assert_eq!(r["error"]["code"], -32014, "{answer}: {r}");
        let reason = r["error"]["data"]["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains(why),
            "{answer}: reason {reason:?} should say {why}"
        );
        assert!(
            r["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains(why),
            "the short reason is in message too: {r}"
        );
    }
    assert_eq!(
        s.upstream_called("write_note"),
        1,
        "nothing refused reached the server"
    );
    assert!(
        !s.upstream_saw_our_round(),
        "the proxy's elicitation reached the server"
    );

    let audit = s.w.audit();
    let granted: Vec<&Value> = audit
        .iter()
        .filter(|r| r["event"] == "approval.granted")
        .collect();
    assert_eq!(granted.len(), 1, "{granted:#?}");
    assert_eq!(
        granted[0]["detail"]["approval"]["decided_by"],
        "client elicitation"
    );
    assert!(granted[0]["detail"]["approval"]["wait_ms"].is_u64());
    let outcomes: Vec<&Value> = audit
        .iter()
        .filter(|r| r["event"] == "approval.not_granted")
        .map(|r| &r["detail"]["approval"]["outcome"])
        .collect();
    assert_eq!(
        outcomes,
        [
            "declined",
            "cancelled",
            "not_approved",
            "malformed",
            "client_error"
        ],
        "one record per refused approval, saying which"
    );
    let consumed = audit
        .iter()
        .filter(|r| r["event"] == "approval.client_answered")
        .count();
    assert_eq!(
        consumed, 6,
        "each answer of the client is audited once as consumed"
    );
}

/// Issue 11: nobody answers → -32014 after `approval_timeout_secs`, and the client is told to
/// close the dialog (`notifications/cancelled` for the proxy's request).
#[test]
fn an_unanswered_client_approval_times_out() {
    let mut s = start(&approve_note_setup("never", 1));
    s.handshake();
    s.list_tools("list");
    s.w.send(&json!({"jsonrpc":"2.0","id":"t1","method":"tools/call","params":{"name":"write_note","arguments":{"path":"/tmp/x"}}}));
    let ask = s.proxy_ask();
    let mut cancelled = false;
    let reply = loop {
        let line =
            s.w.recv_raw(Duration::from_secs(5))
                .expect("an answer after the timeout");
        let v: Value = serde_json::from_slice(&line).expect("json");
        if v["method"] == "notifications/cancelled" {
            assert_eq!(v["params"]["requestId"], ask["id"]);
            cancelled = true;
        } else if v["id"] == "t1" {
            break v;
        }
    };
    assert!(cancelled, "the client was told to drop the dialog");
    assert_eq!(reply["error"]["code"], -32014, "{reply}");
    assert!(
        reply["error"]["data"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("did not answer"),
        "{reply}"
    );
    // An approval that arrives too late approves nothing and is no protocol violation.
    s.w.send(&json!({"jsonrpc":"2.0","id":ask["id"],"result":{"action":"accept","content":{"approve":true}}}));
    s.w.ping("after-late");
    assert_eq!(s.upstream_called("write_note"), 0);
    let audit = s.w.audit();
    assert!(
        audit.iter().any(|r| r["event"] == "approval.late_answer"),
        "late answer audited"
    );
    assert!(!audit
        .iter()
        .any(|r| r["event"] == "rpc.unsolicited_response"));
}

/// Issue 11: the client cancels the call while its human is being asked: nothing runs, the
/// call is not answered (MCP), and the client is told to close the dialog.
#[test]
fn a_call_cancelled_while_asked_is_withdrawn() {
    let mut s = start(&approve_note_setup("never", 30));
    s.handshake();
    s.list_tools("list");
    s.w.send(&json!({"jsonrpc":"2.0","id":"x1","method":"tools/call","params":{"name":"write_note","arguments":{"path":"/tmp/x"}}}));
    let ask = s.proxy_ask();
    s.w.send(&json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"x1","reason":"user stopped"}}));
    let line =
        s.w.recv_raw(Duration::from_secs(5))
            .expect("the dialog is withdrawn");
    let v: Value = serde_json::from_slice(&line).expect("json");
    assert_eq!(v["method"], "notifications/cancelled", "{v}");
    assert_eq!(v["params"]["requestId"], ask["id"]);
    s.w.ping("after-cancel");
    assert_eq!(s.upstream_called("write_note"), 0);
    assert!(s
        .w
        .audit()
        .iter()
        .any(|r| r["event"] == "approval.withdrawn" && r["id"] == "x1"));
}

/// Issue 11: a client that goes away while asked → the call ends in -32014 ("disconnected"),
/// nothing runs.
#[test]
fn a_client_gone_while_asked_is_not_an_approval() {
    let mut s = start(&approve_note_setup("never", 30));
    s.handshake();
    s.list_tools("list");
    s.w.send(&json!({"jsonrpc":"2.0","id":"g1","method":"tools/call","params":{"name":"write_note","arguments":{"path":"/tmp/x"}}}));
    s.proxy_ask();
    let t0 = Instant::now();
    s.w.finish();
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "the proxy waited for a client that is gone"
    );
    assert_eq!(s.upstream_called("write_note"), 0);
    let audit = s.w.audit();
    assert!(
        audit.iter().any(|r| r["event"] == "approval.not_granted"
            && r["reason"]
                .as_str()
                .unwrap_or_default()
                .contains("disconnected")),
        "the disconnect is the recorded outcome"
    );
}

/// Issue 11: `remember = "session"` offers "remember"; once ticked, the same tool with the same
/// argument names runs without asking for the rest of the session (audited as remembered);
/// other argument names are asked again. Under `remember = "never"` a ticked box changes nothing.
#[test]
fn remember_for_this_session_covers_the_same_call_shape_only() {
    let mut s = start(&approve_note_setup("session", 30));
    s.handshake();
    s.list_tools("list");
    let (ask, r) = s.call_and_answer(
        "m1",
        json!({"path":"/tmp/a"}),
        json!({"action":"accept","content":{"approve":true,"remember":true}}),
    );
    assert_eq!(
        ask["params"]["requestedSchema"]["properties"]["remember"]["type"],
        "boolean"
    );
    assert!(r.get("result").is_some(), "{r}");
    s.w.send(&json!({"jsonrpc":"2.0","id":"m2","method":"tools/call","params":{"name":"write_note","arguments":{"path":"/tmp/b"}}}));
    let r = s.reply("m2");
    assert!(
        r.get("result").is_some(),
        "same shape runs without a new question: {r}"
    );
    let (_, r) = s.call_and_answer(
        "m3",
        json!({"path":"/tmp/c","mode":"append"}),
        json!({"action":"decline"}),
    );
    assert_eq!(
        r["error"]["code"], -32014,
        "a new argument name is asked again: {r}"
    );
    assert_eq!(s.upstream_called("write_note"), 2);
    let audit = s.w.audit();
    assert!(audit.iter().any(|r| r["event"] == "approval.granted"
        && r["detail"]["approval"]["remembered"] == "write_note(path)"));
    assert!(audit
        .iter()
        .any(|r| r["event"] == "approval.remembered" && r["id"] == "m2"));

    let mut s = start(&approve_note_setup("never", 30));
    s.handshake();
    s.list_tools("list");
    s.call_and_answer(
        "n1",
        json!({"path":"/tmp/a"}),
        json!({"action":"accept","content":{"approve":true,"remember":true}}),
    );
    let (_, r) = s.call_and_answer("n2", json!({"path":"/tmp/b"}), json!({"action":"cancel"}));
    assert_eq!(
        r["error"]["code"], -32014,
        "never remembered under remember = never: {r}"
    );
}
