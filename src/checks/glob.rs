//! Glob matching for tool and server names (`*`, `?`, `[abc]`, `[a-z]`, `[!abc]`).
//!
//! Policies name tools with globs (`read_*`) and servers with command globs
//! (`*server-filesystem*`). Matching runs on every call, so it is a plain
//! iterative matcher: no regex, no allocation, linear backtracking on the last
//! `*` only (the classic two-pointer algorithm), which bounds the work to
//! O(pattern × name) even for hostile names.
//!
//! `\` escapes the next pattern character. An unclosed `[` is a literal `[`.

/// `true` when `name` matches `pattern` exactly (case-sensitive).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    matches(pattern.as_bytes(), name.as_bytes(), false)
}

/// Like [`glob_match`] but ASCII case-insensitive: host names are compared this
/// way because DNS is case-insensitive.
pub fn glob_match_ascii_ci(pattern: &str, name: &str) -> bool {
    matches(pattern.as_bytes(), name.as_bytes(), true)
}

/// `true` when any of `patterns` matches `name`.
pub fn glob_match_any<S: AsRef<str>>(patterns: &[S], name: &str) -> bool {
    patterns.iter().any(|p| glob_match(p.as_ref(), name))
}

/// How specific a pattern is: the number of literal characters it pins down.
/// "Most specific tool rule wins" compares this (ties: the caller's order).
/// `write_file` (10) beats `write_*` (6) beats `*` (0).
pub fn specificity(pattern: &str) -> usize {
    let b = pattern.as_bytes();
    let (mut i, mut n) = (0, 0);
    while i < b.len() {
        match b[i] {
            b'*' | b'?' => i += 1,
            b'[' => match class_end(b, i) {
                Some(end) => i = end,
                None => {
                    n += 1;
                    i += 1;
                }
            },
            b'\\' if i + 1 < b.len() => {
                n += 1;
                i += 2;
            }
            _ => {
                n += 1;
                i += 1;
            }
        }
    }
    n
}

/// `true` when the pattern contains no wildcard (an exact name).
pub fn is_literal(pattern: &str) -> bool {
    !pattern
        .bytes()
        .any(|c| matches!(c, b'*' | b'?' | b'[' | b'\\'))
}

// Works on bytes: multi-byte UTF-8 characters match literally byte by byte,
// and `?` / classes consume one whole UTF-8 character.
fn matches(p: &[u8], n: &[u8], ci: bool) -> bool {
    let (mut pi, mut ni) = (0usize, 0usize);
    // Position after the last `*` and the name position it was tried at.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() {
            match p[pi] {
                b'*' => {
                    // Collapse runs of `*`.
                    while pi < p.len() && p[pi] == b'*' {
                        pi += 1;
                    }
                    star = Some((pi, ni));
                    continue;
                }
                b'?' => {
                    pi += 1;
                    ni += char_len(n, ni);
                    continue;
                }
                b'[' => {
                    if let Some(end) = class_end(p, pi) {
                        let (c, len) = decode(n, ni);
                        if class_matches(&p[pi + 1..end - 1], c, ci) {
                            pi = end;
                            ni += len;
                            continue;
                        }
                    } else if eq(b'[', n[ni], ci) {
                        pi += 1;
                        ni += 1;
                        continue;
                    }
                }
                b'\\' if pi + 1 < p.len() => {
                    if eq(p[pi + 1], n[ni], ci) {
                        pi += 2;
                        ni += 1;
                        continue;
                    }
                }
                c => {
                    if eq(c, n[ni], ci) {
                        pi += 1;
                        ni += 1;
                        continue;
                    }
                }
            }
        }
        // Mismatch: let the last `*` swallow one more character, or fail.
        match star {
            Some((sp, sn)) => {
                let next = sn + char_len(n, sn);
                star = Some((sp, next));
                pi = sp;
                ni = next;
            }
            None => return false,
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

fn eq(a: u8, b: u8, ci: bool) -> bool {
    if ci {
        a.eq_ignore_ascii_case(&b)
    } else {
        a == b
    }
}

/// Index one past the closing `]` of a class starting at `start`, if closed.
/// A `]` right after `[` or `[!` is a member, as in POSIX.
fn class_end(p: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    if i < p.len() && (p[i] == b'!' || p[i] == b'^') {
        i += 1;
    }
    if i < p.len() && p[i] == b']' {
        i += 1;
    }
    while i < p.len() {
        if p[i] == b']' {
            return Some(i + 1);
        }
        i += 1;
    }
    None
}

fn class_matches(body: &[u8], c: char, ci: bool) -> bool {
    let (negate, body) = match body.first() {
        Some(b'!') | Some(b'^') => (true, &body[1..]),
        _ => (false, body),
    };
    let Ok(body) = std::str::from_utf8(body) else {
        return false;
    };
    let fold = |x: char| if ci { x.to_ascii_lowercase() } else { x };
    let c = fold(c);
    let mut chars = body.chars().peekable();
    let mut hit = false;
    while let Some(lo) = chars.next() {
        let mut probe = chars.clone();
        if probe.next() == Some('-') {
            if let Some(hi) = probe.next() {
                chars = probe;
                if fold(lo) <= c && c <= fold(hi) {
                    hit = true;
                }
                continue;
            }
        }
        if fold(lo) == c {
            hit = true;
        }
    }
    hit != negate
}

/// The length of the UTF-8 character at `i`, from its lead byte alone: `*` backtracking calls
/// this once per character of the name, and decoding the character there (as `decode` does)
/// was most of the policy lookup's time on every call.
fn char_len(n: &[u8], i: usize) -> usize {
    lead_len(n[i]).min(n.len() - i)
}

fn lead_len(b: u8) -> usize {
    match b {
        b if b < 0x80 => 1,
        b if b >= 0xF0 => 4,
        b if b >= 0xE0 => 3,
        _ => 2,
    }
}

/// Decode the UTF-8 character at `i` (inputs come from `&str`, so valid).
fn decode(n: &[u8], i: usize) -> (char, usize) {
    let end = (i + lead_len(n[i])).min(n.len());
    let c = std::str::from_utf8(&n[i..end])
        .ok()
        .and_then(|s| s.chars().next())
        .unwrap_or('\u{FFFD}');
    (c, end - i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_stars() {
        assert!(glob_match("read_file", "read_file"));
        assert!(!glob_match("read_file", "read_files"));
        assert!(glob_match("read_*", "read_file"));
        assert!(glob_match("read_*", "read_"));
        assert!(!glob_match("read_*", "xread_file"));
        assert!(glob_match(
            "*server-filesystem*",
            "npx -y @mcp/server-filesystem /data"
        ));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "aXXbYYbZZc"));
        assert!(!glob_match("a*b*c", "aXXbYYbZZ"));
        assert!(glob_match("**x", "abcx"));
        assert!(!glob_match("", "a"));
        assert!(glob_match("", ""));
    }

    #[test]
    fn question_and_classes() {
        assert!(glob_match("file?", "file1"));
        assert!(!glob_match("file?", "file"));
        assert!(glob_match("f?le", "fçle"), "? consumes a whole UTF-8 char");
        assert!(glob_match("log[0-9]", "log7"));
        assert!(!glob_match("log[0-9]", "logx"));
        assert!(glob_match("[abc]x", "bx"));
        assert!(glob_match("[!abc]x", "dx"));
        assert!(!glob_match("[!abc]x", "ax"));
        assert!(glob_match("[]]", "]"));
        assert!(glob_match("a[", "a["), "unclosed class is literal");
        assert!(glob_match("a\\*", "a*"));
        assert!(!glob_match("a\\*", "ab"));
    }

    #[test]
    fn case_handling() {
        assert!(!glob_match("API.example.com", "api.example.com"));
        assert!(glob_match_ascii_ci("*.Example.COM", "api.example.com"));
        assert!(glob_match_ascii_ci("[A-C]x", "bX"));
    }

    #[test]
    fn hostile_name_is_bounded() {
        let name = "a".repeat(10_000);
        assert!(!glob_match("*a*a*a*a*a*a*b", &name));
    }

    #[test]
    fn specificity_orders_rules() {
        assert!(specificity("write_file") > specificity("write_*"));
        assert!(specificity("write_*") > specificity("*"));
        assert_eq!(specificity("[ab]?x"), 1);
        assert!(is_literal("write_file"));
        assert!(!is_literal("write_*"));
        assert!(glob_match_any(&["a", "b*"], "bc"));
    }
}
