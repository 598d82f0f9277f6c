//! `[inference]` → what the backend client needs: where the backend is (a plain `http://` base
//! URL: the backend is co-located, on loopback or in the pod), its bearer token, the limits.

use std::path::Path;
use std::time::Duration;

use crate::config::InferenceSection;

/// The validated `[inference]` section.
#[derive(Debug, Clone)]
pub struct BackendConfig {
    /// `host:port` to connect to.
    pub authority: String,
    /// Path prefix under which `/v1/...` and `/health` live (usually empty).
    pub base_path: String,
    /// `Authorization: Bearer …` for the backend (vLLM `--api-key`), if configured.
    pub api_key: Option<String>,
    pub max_tokens_cap: u64,
    pub timeout: Duration,
    pub max_concurrent: usize,
}

impl BackendConfig {
    /// `Ok(None)`: routing is off (no backend configured). Errors name the key.
    pub fn from_section(s: &InferenceSection, state: &Path) -> Result<Option<Self>, String> {
        let url = s.backend.trim();
        if url.is_empty() {
            return Ok(None);
        }
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            format!("inference.backend {url:?}: must be an http:// URL (a co-located backend)")
        })?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(format!(
                "inference.backend {url:?}: needs a host (and no user info)"
            ));
        }
        let authority = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        // A base URL ending in /v1 (as OpenAI clients write it) means the same backend.
        let base_path = path.strip_suffix("/v1").unwrap_or(path).to_owned();
        let api_key = if s.api_key_file.trim().is_empty() {
            None
        } else {
            let file = crate::config::resolve(state, s.api_key_file.trim());
            let key = std::fs::read_to_string(&file)
                .map_err(|e| format!("inference.api_key_file {}: {e}", file.display()))?;
            let key = key.trim().to_owned();
            if key.is_empty() || key.bytes().any(|b| !(0x21..0x7f).contains(&b)) {
                return Err(format!(
                    "inference.api_key_file {}: must hold one token of visible ASCII",
                    file.display()
                ));
            }
            Some(key)
        };
        Ok(Some(BackendConfig {
            authority,
            base_path,
            api_key,
            max_tokens_cap: s.max_tokens_cap,
            timeout: Duration::from_secs(s.timeout_secs),
            max_concurrent: s.max_concurrent,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(url: &str) -> InferenceSection {
        InferenceSection {
            backend: url.into(),
            ..InferenceSection::default()
        }
    }

    #[test]
    fn urls_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        assert!(BackendConfig::from_section(&section(""), dir.path())
            .unwrap()
            .is_none());
        let c = BackendConfig::from_section(&section("http://127.0.0.1:8000/v1/"), dir.path())
            .unwrap()
            .unwrap();
        assert_eq!(
            (c.authority.as_str(), c.base_path.as_str()),
            ("127.0.0.1:8000", "")
        );
        let c = BackendConfig::from_section(&section("http://vllm/api"), dir.path())
            .unwrap()
            .unwrap();
        assert_eq!(
            (c.authority.as_str(), c.base_path.as_str()),
            ("vllm:80", "/api")
        );
        for bad in ["https://x", "127.0.0.1:8000", "http://", "http://u@h:1"] {
            assert!(
                BackendConfig::from_section(&section(bad), dir.path()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_api_key_comes_from_its_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("key"), "sk-local\n").unwrap();
        let mut s = section("http://127.0.0.1:8000");
        s.api_key_file = "key".into();
        let c = BackendConfig::from_section(&s, dir.path())
            .unwrap()
            .unwrap();
        assert_eq!(c.api_key.as_deref(), Some("sk-local"));
        s.api_key_file = "missing".into();
        let e = BackendConfig::from_section(&s, dir.path()).unwrap_err();
        assert!(e.starts_with("inference.api_key_file"), "{e}");
    }
}
