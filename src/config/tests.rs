use super::*;
use crate::audit::Fsync;

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn empty_config_is_all_defaults() {
    let c = Config::from_text("", &env(&[])).unwrap();
    assert_eq!(c.proxy.max_message_bytes, 4 * 1024 * 1024);
    assert_eq!(c.signatures.mode, SignatureMode::Audit);
    assert_eq!(c.audit.fsync, Fsync::Batch);
}

#[test]
fn errors_name_key_and_line() {
    let text = "[proxy]\nmax_message_bytes = 4096\n\n[signatures]\nmode = \"strict\"\n";
    let e = Config::from_text(text, &env(&[])).unwrap_err();
    assert_eq!(e.key, "signatures.mode");
    assert_eq!(e.line, Some(5));
    let e = Config::from_text("[audit]\nfsink = \"always\"\n", &env(&[])).unwrap_err();
    assert!(e.reason.contains("fsink"), "{e}");
    let e = Config::from_text("[signatures]\nwindow_secs = 0\n", &env(&[])).unwrap_err();
    assert_eq!(
        (e.key.as_str(), e.line),
        ("signatures.window_secs", Some(2))
    );
    let e = Config::from_text("[proxy\n", &env(&[])).unwrap_err();
    assert_eq!(e.line, Some(1));
}

#[test]
fn environment_overrides_file_and_is_named_in_errors() {
    let c = Config::from_text(
        "[signatures]\nmode = \"off\"\n",
        &env(&[
            ("MCP_WARDEN_SIGNATURES_MODE", "enforce"),
            ("MCP_WARDEN_STATE", "/x"),
        ]),
    )
    .unwrap();
    assert_eq!(c.signatures.mode, SignatureMode::Enforce);
    let e = Config::from_text("", &env(&[("MCP_WARDEN_AUDIT_FSYNC", "sometimes")])).unwrap_err();
    assert_eq!(e.key, "MCP_WARDEN_AUDIT_FSYNC");
}

#[test]
fn state_dir_precedence() {
    assert_eq!(
        state_dir(&env(&[("MCP_WARDEN_STATE", "/s"), ("HOME", "/h")])),
        PathBuf::from("/s")
    );
    assert_eq!(
        state_dir(&env(&[("XDG_STATE_HOME", "/x"), ("HOME", "/h")])),
        PathBuf::from("/x/mcp-warden")
    );
    assert_eq!(
        state_dir(&env(&[("HOME", "/h")])),
        PathBuf::from("/h/.local/state/mcp-warden")
    );
}

#[test]
fn key_cap_defaults_to_4096_and_is_configurable() {
    let c = Config::from_text("", &env(&[])).unwrap();
    assert_eq!(c.proxy.max_keys_per_object, 4096);
    let c = Config::from_text(
        "[proxy]\nmax_keys_per_object = 100\n",
        &env(&[("MCP_WARDEN_PROXY_MAX_KEYS_PER_OBJECT", "200")]),
    )
    .unwrap();
    assert_eq!(c.proxy.max_keys_per_object, 200);
    let e = Config::from_text("[proxy]\nmax_keys_per_object = 0\n", &env(&[])).unwrap_err();
    assert_eq!(
        (e.key.as_str(), e.line),
        ("proxy.max_keys_per_object", Some(2))
    );
}
