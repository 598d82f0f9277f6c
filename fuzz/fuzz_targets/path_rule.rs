//! `path_under`: no panic, and an accepted path really is under a root — checked here by a
//! deliberately naive second opinion (split on `/`, no `..`, root components as a prefix, no
//! separators hidden in escapes or backslashes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_warden::checks::path_rule::{path_under, validate_root};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // First line: an extra root (operator config); the rest: the argument value.
    let (root, value) = text.split_once('\n').unwrap_or(("/srv/app", text));
    let mut roots = vec!["/data".to_owned(), "/home/u/projects".to_owned()];
    if validate_root(root).is_ok() {
        roots.push(root.to_owned());
    }
    if path_under(value, &roots).is_err() {
        return;
    }
    let path = naive_path(value);
    assert!(!path.contains('\0') && !path.contains('\\'), "{value:?}");
    let comps: Vec<&str> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    assert!(path.starts_with('/'), "relative path accepted: {value:?}");
    assert!(
        !comps.iter().any(|c| c.starts_with("..")),
        "'..' accepted: {value:?}"
    );
    let under = roots.iter().any(|r| {
        let rc: Vec<&str> = r.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
        comps.len() >= rc.len() && comps.iter().zip(&rc).all(|(a, b)| a == b)
    });
    assert!(under, "accepted a path outside {roots:?}: {value:?}");
});

/// The path a value names: a `file://[localhost]` URI's path percent-decoded once, else itself.
fn naive_path(value: &str) -> String {
    let lower = value.to_ascii_lowercase();
    let rest = if let Some(r) = lower.strip_prefix("file://localhost") {
        &value[value.len() - r.len()..]
    } else if let Some(r) = lower.strip_prefix("file://") {
        &value[value.len() - r.len()..]
    } else {
        return value.to_owned();
    };
    let b = rest.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let h = |c: u8| (c as char).to_digit(16);
            if let (Some(hi), Some(lo)) = (h(b[i + 1]), h(b[i + 2])) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
