//! Scanning of tool / prompt / resource definitions and of free text (tool
//! results, sampling prompts, outgoing arguments) for tool poisoning, SPEC §5.
//!
//! Three families of signal, all lexical and I/O-free:
//! - hidden text: terminal escapes, controls, zero-width, bidi, Unicode tag
//!   characters, variation-selector smuggling, whitespace padding that pushes
//!   content off-screen;
//! - instructions aimed at the model: `<IMPORTANT>`-style tags, chat-template
//!   tokens, "ignore previous instructions", concealment from the user,
//!   "before using this tool…", requests to pass file contents along, and
//!   references to credential files;
//! - shadowing: mentions of tools that belong to *other* servers.
//!
//! Severity guides the caller: `Low` is informational, `Medium` and above
//! should hold a definition back for review (SPEC §5), `Critical` is an
//! unambiguous attack. Each kind is reported once per scanned string.

use std::sync::LazyLock;

use regex::{Regex, RegexSet};
use serde::Serialize;
use serde_json::Value;

use crate::checks::secrets::ascii_word_boundaries;
use crate::checks::unicode_hazards::{classify, escape_for_display, Hazard};

pub use crate::checks::unicode_hazards::strip_terminal_escapes;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub kind: &'static str,
    pub severity: Severity,
    /// Printable, escaped excerpt around the hit (safe to log and display).
    pub excerpt: String,
    /// JSON pointer of the scanned string inside a definition ("" for text).
    pub location: String,
}

/// Highest severity among `findings`.
pub fn max_severity(findings: &[Finding]) -> Option<Severity> {
    findings.iter().map(|f| f.severity).max()
}

// Horizontal whitespace or blank lines beyond these, followed by more text,
// push that text out of view in typical UIs (WhatsApp PoC, TPA-04).
const PAD_SPACES: usize = 64;
const PAD_NEWLINES: usize = 8;

const PHRASES: &[(&str, Severity, &str)] = &[
    (
        "hidden_instruction_tag",
        Severity::High,
        // The name ends the tag or is followed by whitespace and attributes: `<secret-name>`
        // and `<Context.Provider …>` are placeholders and code, see `markup_tag`.
        r"(?i)<\s*/?\s*(?:important|system|instructions?|secret|hidden|admin|priority|critical|override|assistant|context)(?:\s[^>]{0,80})?/?>",
    ),
    (
        "chat_template_token",
        Severity::High,
        r"(?i)<\|(?:im_start|im_end|system|user|assistant|endoftext)\|>|\[/?INST\]|<</?SYS>>",
    ),
    (
        "instruction_override",
        Severity::High,
        r"(?i)\b(?:ignore|disregard|forget|override|bypass)\s+(?:(?:all|any|the|your|of)\s+)*(?:previous|prior|above|earlier|preceding|other|system|original|existing)\s+(?:instructions?|rules|prompts?|directions|guidelines|directives|context)|\b(?:ignore|disregard|forget)\s+(?:all|your)\s+(?:instructions|guidelines|system\s+prompt)|\b(?:ignore|disregard|forget)\s+(?:everything|anything)\s+(?:above|before|previously|you\s+were\s+told)",
    ),
    (
        "role_override",
        Severity::Medium,
        r"(?i)\byou\s+are\s+(?:now|in)\s+(?:\w+\s+){0,2}(?:mode|persona)\b|\bnew\s+instructions\s*:|\b(?:maintenance|developer|god|debug|jailbreak)\s+mode\b|\bfrom\s+now\s+on,?\s+you\s+(?:are|will|must)\b",
    ),
    (
        "concealment",
        Severity::High,
        r"(?i)\b(?:do\s+not|don'?t|never|must\s+not|without)\s+(?:\w+\s+){0,2}?(?:tell|telling|mention|mentioning|inform|informing|reveal|revealing|notify|notifying|disclose|disclosing|alert|alerting)\b|\b(?:hide|conceal)\s+(?:this|it)\s+from\s+the\s+user|\b(?:could|would|might)\s+(?:even\s+)?(?:upset|scare|alarm|worry)\s+the\s+user|\bthe\s+user\s+(?:must|should)\s+not\s+(?:know|see|be\s+told)|\b(?:don'?t|do\s+not|never)\s+let\s+the\s+user\s+know|\bkeep\s+(?:this|it)\s+(?:a\s+)?secret\b|\buser\s+(?:does\s*n[o']?t|doesn't)\s+need\s+to\s+know",
    ),
    (
        "tool_precondition",
        Severity::Medium,
        r"(?i)\bbefore\s+(?:using|calling|invoking|running|executing)\s+(?:this|any|the|other)\s+tools?\b|\botherwise\s+the\s+tool\s+will\s+not\s+work|\b(?:has|have)\s+a\s+(?:very\s+)?important\s+side\s+effect",
    ),
    (
        "exfiltration_request",
        Severity::High,
        r"(?i)\b(?:pass|include|send|attach|append|put|paste|forward)\s+(?:its|the|their|all\s+the|the\s+full|the\s+entire|full)?\s*(?:contents?|text|data|output)\s+(?:of|as|in|into|to)\b|\bsend\s+all\s+(?:emails?|messages?|data|files?)\s+to\b|\bcall\s+this\s+tool\s+again\s+and\s+include\b",
    ),
    (
        "secret_file_reference",
        Severity::High,
        r"(?i)\.ssh\b|\bid_(?:rsa|dsa|ecdsa|ed25519)\b|\bmcp\.json\b|claude_desktop_config\.json|\.aws/(?:credentials|config)\b|/etc/(?:passwd|shadow|sudoers)\b|\.netrc\b|\.npmrc\b|\.pypirc\b|\.git-credentials\b|\.docker/config\.json|\.kube/config\b|\.gnupg\b|\.config/gcloud|application_default_credentials|\bauthorized_keys\b|\bwallet\.dat\b|\.pgpass\b|\.vault-token\b|\.bash_history\b|\.zsh_history\b|\bcredentials\.json\b|\.cursor/|/proc/self/environ\b|/var/run/secrets\b|\bserviceaccount/token\b",
    ),
    (
        "markdown_image_exfil",
        Severity::Medium,
        r"!\[[^\]]{0,200}\]\(\s*https?://[^)\s]*[?&][^)\s]*=",
    ),
    // Only the opening is a regex: `html_comment` finds the closing itself (a bounded
    // `[\s\S]{0,2000}?` compiles to ~2 MB of automaton, twice: most of the proxy's memory).
    ("html_comment", Severity::Low, r"<!--"),
    (
        "env_file_reference",
        Severity::Low,
        r"(?:^|[\s/`'\x22(~])\.env(?:\.[a-z]+)?\b",
    ),
];

static PHRASE_SET: LazyLock<(RegexSet, Vec<Regex>)> = LazyLock::new(|| {
    let pats: Vec<String> = PHRASES.iter().map(|p| ascii_word_boundaries(p.2)).collect();
    (
        RegexSet::new(&pats).expect("phrase set compiles"),
        pats.iter()
            .map(|p| Regex::new(p).expect("phrase compiles"))
            .collect(),
    )
});

/// Scan free text. `other_server_tools` are the tool names exposed by *other*
/// servers; a mention of one is shadowing.
pub fn scan_text<S: AsRef<str>>(text: &str, other_server_tools: &[S]) -> Vec<Finding> {
    let mut out = Vec::new();
    scan_chars(text, &mut out);
    let (set, each) = &*PHRASE_SET;
    for i in set.matches(text).iter() {
        let (kind, severity, _) = PHRASES[i];
        let hit = match kind {
            "hidden_instruction_tag" => each[i]
                .find_iter(text)
                .find(|m| markup_tag(text, m.start(), m.as_str())),
            "secret_file_reference" => each[i]
                .find_iter(text)
                .find(|m| secret_path_in_use(text, m.start(), m.as_str())),
            "html_comment" => {
                if let Some((start, end)) = html_comment(text) {
                    push_finding(&mut out, kind, severity, text, start, end);
                }
                continue;
            }
            _ => each[i].find(text),
        };
        if let Some(m) = hit {
            push_finding(&mut out, kind, severity, text, m.start(), m.end());
        }
    }
    scan_shadowing(text, other_server_tools, &mut out);
    out
}

/// Printable ASCII, tab, LF and CR only: no character `classify` flags, so only whitespace
/// padding is left to look for. Most results are this, and the per-character path cost about
/// 120 instructions a character on every answer.
fn plain_ascii(text: &str) -> bool {
    text.bytes()
        .all(|b| matches!(b, 0x20..=0x7E | b'\t' | b'\n' | b'\r'))
}

/// `scan_chars` for a `plain_ascii` text: the same padding rule (a run of whitespace before a
/// visible character, with `PAD_SPACES` spaces or `PAD_NEWLINES` line feeds; CR counts as
/// neither).
fn padding_only(bytes: &[u8], text: &str, out: &mut Vec<Finding>) {
    let (mut ws_start, mut spaces, mut newlines) = (None::<usize>, 0usize, 0usize);
    for (at, &b) in bytes.iter().enumerate() {
        if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            ws_start.get_or_insert(at);
            if b == b'\n' {
                newlines += 1;
            } else if b != b'\r' {
                spaces += 1;
            }
        } else if let Some(s) = ws_start.take() {
            if spaces >= PAD_SPACES || newlines >= PAD_NEWLINES {
                push_finding(out, "whitespace_padding", Severity::High, text, s, at);
            }
            (spaces, newlines) = (0, 0);
        }
    }
}

/// The characters an HTML comment may hold to count (`<!--` … `-->`): the bound the regex
/// `<!--[\s\S]{0,2000}?-->` had.
const COMMENT_MAX_CHARS: usize = 2000;

/// The first `<!--` closed by a `-->` at most `COMMENT_MAX_CHARS` characters later, as the
/// byte range of the whole comment: what `<!--[\s\S]{0,2000}?-->` finds, leftmost and shortest,
/// by two substring searches instead of a 2 MB automaton.
fn html_comment(text: &str) -> Option<(usize, usize)> {
    let mut from = 0;
    while let Some(open) = text[from..].find("<!--").map(|i| from + i) {
        let body = open + 4;
        // The first closing after the opening is the shortest match from it; none, or one too
        // far, means no comment opens here (a later closing is farther still).
        if let Some(close) = text[body..].find("-->").map(|i| body + i) {
            if text[body..close].chars().count() <= COMMENT_MAX_CHARS {
                return Some((open, close + 3));
            }
        } else {
            return None;
        }
        from = open + 1;
    }
    None
}

/// A secret file named as a place to go, not merely listed: under the home directory (`~/.ssh`,
/// `$HOME/.aws/credentials`, `%USERPROFILE%\.ssh`), a system path (`/etc/passwd`,
/// `/proc/self/environ`), or after an access verb ("read …", "cat …", "contents of …").
/// A directory listing (`[FILE] mcp.json`, `[DIR] .ssh`) or a project path
/// (`/src/app/.vscode/mcp.json`, `.cursor/rules`) in a result is ordinary.
fn secret_path_in_use(text: &str, start: usize, hit: &str) -> bool {
    static VERB: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(&ascii_word_boundaries(
            r"(?i)\b(?:read|reads|reading|open|cat|send|upload|include|pass|copy|attach|paste|forward|print|dump|load|steal|grab|exfiltrate|contents?\s+of)\b",
        ))
        .expect("verb regex compiles")
    });
    if hit.starts_with('/') {
        return true;
    }
    let token_start = text[..start]
        .rfind(|c: char| c.is_whitespace() || "`'\"([<=,".contains(c))
        .map_or(0, |i| i + 1);
    if text[token_start..start].starts_with(['~', '$', '%']) {
        return true;
    }
    let line_start = text[..token_start].rfind('\n').map_or(0, |i| i + 1);
    let window =
        &text[floor_char(text, token_start.saturating_sub(40).max(line_start))..token_start];
    VERB.is_match(window)
}

/// A tag match that reads as prompt markup (`<IMPORTANT>`, `</system>`, `< secret >`,
/// `<Important>`), not code a coding agent reads every day: a generic argument (`Arc<Context>`,
/// `Option<Secret>`: the `<` follows an identifier) or a JSX component (`<Hidden smDown>`,
/// `</Hidden>`: PascalCase with attributes, or closing). Injection tags come in one case, or as
/// a bare opening `<Important>`.
fn markup_tag(text: &str, start: usize, tag: &str) -> bool {
    let generic = text[..start]
        .chars()
        .next_back()
        .is_some_and(|c| c.is_alphanumeric() || c == '_');
    let after_lt = tag[1..].trim_start();
    let closing = after_lt.starts_with('/');
    let name: String = after_lt
        .trim_start_matches(|c: char| c == '/' || c.is_whitespace())
        .chars()
        .take_while(char::is_ascii_alphabetic)
        .collect();
    let one_case = name == name.to_ascii_lowercase() || name == name.to_ascii_uppercase();
    let bare = tag
        .trim_end_matches('>')
        .trim_end()
        .ends_with(name.as_str());
    !generic && (one_case || (!closing && bare))
}

/// Scan a tool, prompt or resource(-template) definition: every string in it
/// (description, title, nested schema descriptions, defaults, enums, examples)
/// and every object key (property names). Findings carry a JSON pointer.
pub fn scan_definition<S: AsRef<str>>(def: &Value, other_server_tools: &[S]) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some(name) = def.get("name").and_then(Value::as_str) {
        if other_server_tools.iter().any(|t| t.as_ref() == name) {
            out.push(Finding {
                kind: "duplicate_tool_name",
                severity: Severity::Medium,
                excerpt: escape_for_display(name, 80),
                location: "/name".into(),
            });
        }
    }
    let mut stack: Vec<(String, &Value)> = vec![(String::new(), def)];
    while let Some((ptr, v)) = stack.pop() {
        match v {
            Value::String(s) => {
                // A tool's own name equal to another server's is reported above.
                let others: &[S] = if ptr == "/name" {
                    &[]
                } else {
                    other_server_tools
                };
                for mut f in scan_text(s, others) {
                    f.location.clone_from(&ptr);
                    out.push(f);
                }
            }
            Value::Array(a) => {
                for (i, item) in a.iter().enumerate() {
                    stack.push((format!("{ptr}/{i}"), item));
                }
            }
            Value::Object(m) => {
                for (k, item) in m {
                    let child = format!("{ptr}/{}", k.replace('~', "~0").replace('/', "~1"));
                    for mut f in scan_text(k, other_server_tools) {
                        f.location.clone_from(&child);
                        out.push(f);
                    }
                    stack.push((child, item));
                }
            }
            _ => {}
        }
    }
    out
}

/// Add a finding unless one of this kind is already present; the excerpt
/// is the hit with some context, escaped for display.
pub(crate) fn push_finding(
    out: &mut Vec<Finding>,
    kind: &'static str,
    severity: Severity,
    text: &str,
    start: usize,
    end: usize,
) {
    if out.iter().any(|f| f.kind == kind) {
        return;
    }
    let from = floor_char(text, start.saturating_sub(40));
    let to = ceil_char(text, (end + 40).min(text.len()));
    out.push(Finding {
        kind,
        severity,
        excerpt: escape_for_display(&text[from..to], 200),
        location: String::new(),
    });
}

fn floor_char(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_char(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// One pass over the characters: hidden-text hazards and padding runs.
/// Streaming (no per-character buffer): results can be megabytes.
fn scan_chars(text: &str, out: &mut Vec<Finding>) {
    if plain_ascii(text) {
        return padding_only(text.as_bytes(), text, out);
    }
    let (mut ws_start, mut spaces, mut newlines) = (None::<usize>, 0usize, 0usize);
    let mut prev: Option<char> = None;
    let mut it = text.char_indices().peekable();
    while let Some((at, c)) = it.next() {
        let next = it.peek().map(|x| x.1);
        let end = at + c.len_utf8();
        match classify(c) {
            Some(Hazard::TerminalControl) => {
                push_finding(out, "terminal_escape", Severity::High, text, at, end)
            }
            Some(Hazard::Control) => {
                push_finding(out, "control_char", Severity::Medium, text, at, end)
            }
            Some(Hazard::Bidi) => push_finding(out, "bidi_control", Severity::High, text, at, end),
            Some(Hazard::Invisible) if !joins_visible(c, prev, next) => {
                push_finding(out, "invisible_char", Severity::High, text, at, end)
            }
            // Judge each run of tag characters once, at its first character.
            Some(Hazard::Tag) if prev.and_then(classify) != Some(Hazard::Tag) => {
                tag_run(&text[at..], prev, out)
            }
            Some(Hazard::VariationSelector) if smuggling_selector(c, prev) => push_finding(
                out,
                "variation_selector_smuggling",
                Severity::High,
                text,
                at,
                end,
            ),
            _ => {}
        }
        if c.is_whitespace() {
            ws_start.get_or_insert(at);
            if c == '\n' {
                newlines += 1;
            } else if c != '\r' {
                spaces += 1;
            }
        } else if let Some(s) = ws_start.take() {
            if spaces >= PAD_SPACES || newlines >= PAD_NEWLINES {
                push_finding(out, "whitespace_padding", Severity::High, text, s, at);
            }
            (spaces, newlines) = (0, 0);
        }
        prev = Some(c);
    }
}

/// A run of tag characters starting at `rest`. Emoji subdivision flags
/// (U+1F3F4, lowercase tag letters/digits, cancel tag) are legitimate; any
/// other run is hidden ASCII, decoded into the excerpt for the reviewer.
fn tag_run(rest: &str, base: Option<char>, out: &mut Vec<Finding>) {
    let run = || {
        rest.chars()
            .take_while(|&t| classify(t) == Some(Hazard::Tag))
    };
    let ascii = |t: char| char::from_u32(t as u32 - 0xE0000).unwrap_or('?');
    let len = run().take(9).count();
    let flag = base == Some('\u{1F3F4}')
        && len <= 8
        && run().last() == Some('\u{E007F}')
        && run()
            .take(len - 1)
            .all(|t| ascii(t).is_ascii_lowercase() || ascii(t).is_ascii_digit());
    if flag || out.iter().any(|f| f.kind == "tag_characters") {
        return;
    }
    let hidden: String = run().take(200).map(ascii).collect();
    out.push(Finding {
        kind: "tag_characters",
        severity: Severity::Critical,
        excerpt: format!("hidden text: {}", escape_for_display(&hidden, 200)),
        location: String::new(),
    });
}

/// ZWJ / ZWNJ are legitimate inside emoji sequences and Indic / Arabic words:
/// allowed when both neighbours are visible non-ASCII characters.
fn joins_visible(c: char, prev: Option<char>, next: Option<char>) -> bool {
    let visible = |x: Option<char>| {
        x.is_some_and(|x| !x.is_ascii() && !x.is_whitespace() && classify(x).is_none())
    };
    matches!(c, '\u{200c}' | '\u{200d}') && visible(prev) && visible(next)
}

/// One selector after a visible base is normal (emoji style, CJK variants);
/// a run of selectors, or a supplementary selector on a non-ideograph, is a
/// known way to encode hidden bytes.
fn smuggling_selector(c: char, prev: Option<char>) -> bool {
    let Some(p) = prev else { return true };
    if classify(p) == Some(Hazard::VariationSelector) {
        return true;
    }
    let cjk =
        matches!(p as u32, 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x3FFFF);
    (c as u32) >= 0xE0100 && !cjk
}

/// Mentions of other servers' tools. Distinctive names (`send_email`,
/// `createIssue`, `tool-2`) count on any word-bounded mention; plain words
/// (`add`, `search`) only when the text calls them a tool or quotes them, so
/// ordinary prose does not trip the scan.
fn scan_shadowing<S: AsRef<str>>(text: &str, tools: &[S], out: &mut Vec<Finding>) {
    if tools.is_empty() {
        return;
    }
    let lower = text.to_ascii_lowercase();
    let hay = lower.as_bytes();
    for tool in tools {
        let tool = tool.as_ref();
        if tool.len() < 3 || out.iter().any(|f| f.kind == "shadowing") {
            continue;
        }
        let distinctive = tool
            .bytes()
            .any(|b| matches!(b, b'_' | b'-' | b'.' | b'0'..=b'9'))
            || tool
                .as_bytes()
                .windows(2)
                .any(|w| w[0].is_ascii_lowercase() && w[1].is_ascii_uppercase());
        let needle = tool.to_ascii_lowercase();
        for (at, _) in lower.match_indices(needle.as_str()) {
            let end = at + needle.len();
            let bounded = (at == 0 || !hay[at - 1].is_ascii_alphanumeric())
                && hay.get(end).is_none_or(|b| !b.is_ascii_alphanumeric());
            if !bounded {
                continue;
            }
            let before = &lower[floor_char(&lower, at.saturating_sub(12))..at];
            let after = &lower[end..ceil_char(&lower, (end + 12).min(lower.len()))];
            let quoted = before.ends_with(['`', '\'', '"']) && after.starts_with(['`', '\'', '"']);
            if distinctive
                || quoted
                || after.trim_start().starts_with("tool")
                || before.contains("tool")
            {
                push_finding(out, "shadowing", Severity::High, text, at, end);
                break;
            }
        }
    }
}

#[cfg(test)]
#[path = "poison_scan_tests.rs"]
mod tests;
