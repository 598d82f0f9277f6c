//! What a valid config file can still get wrong at run time: `check-config` and the start-up
//! line report these, all of them at once, instead of "config ok" followed by a failure or a
//! silent downgrade later.

use std::net::SocketAddr;
use std::path::Path;

use super::{split_env_name, Config, EnvSource, ENV_PREFIX};

/// Environment variables of ours that are not config keys.
const OTHER_VARS: &[&str] = &["MCP_WARDEN_STATE", "MCP_WARDEN_LOG"];

/// One finding: an error makes `check-config` fail; a warning does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub error: bool,
    pub text: String,
}

fn error(text: String) -> Finding {
    Finding { error: true, text }
}

fn warning(text: String) -> Finding {
    Finding { error: false, text }
}

/// Every run-time problem of `config` that can be seen without starting anything.
pub fn check(config: &Config, env: &dyn EnvSource, state: &Path) -> Vec<Finding> {
    let mut out = Vec::new();
    for (name, _) in env.vars_with_prefix(ENV_PREFIX) {
        if split_env_name(&name).is_none() && !OTHER_VARS.contains(&name.as_str()) {
            out.push(warning(format!(
                "{name}: not a configuration variable (variables are MCP_WARDEN_<SECTION>_<KEY>, \
                 plus MCP_WARDEN_STATE and MCP_WARDEN_LOG); it is ignored"
            )));
        }
    }
    match config.admin.listen.parse::<SocketAddr>() {
        Ok(addr) if !addr.ip().is_loopback() && config.admin.token_file.trim().is_empty() => out
            .push(error(format!(
                "admin.listen {addr} is not loopback and admin.token_file is empty: the admin \
                 port would refuse to start (set a token file)"
            ))),
        _ => {}
    }
    let policy_dir = super::resolve(state, &config.policy.dir);
    let configured = config.policy.dir != super::PolicySection::default().dir;
    if configured && !policy_dir.is_dir() {
        out.push(error(format!(
            "policy.dir {}: no such directory",
            policy_dir.display()
        )));
    } else if let Err(e) =
        crate::policy::PolicySet::load_layered(&policy_dir, config.policy.builtin)
    {
        out.push(error(format!("policy: {e}")));
    }
    if !config.policy.builtin && !policy_dir.is_dir() {
        out.push(warning(
            "policy.builtin = false and no policy directory: no policy is in force".into(),
        ));
    }
    if let Err(e) = crate::telemetry::Settings::resolve(
        &config.telemetry,
        env,
        crate::telemetry::Transport::Pipe,
    ) {
        out.push(error(e));
    }
    if let Err(e) = crate::inference::BackendConfig::from_section(&config.inference, state) {
        out.push(error(e));
    }
    cluster(config, state, &mut out);
    out
}

/// `[cluster]`: what would fail or leak once replicas start.
fn cluster(config: &Config, state: &Path, out: &mut Vec<Finding>) {
    let c = &config.cluster;
    if !c.enabled() {
        return;
    }
    let url = c.redis_url.trim();
    let rest = url.split_once("://").map_or("", |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or("");
    if let Some((userinfo, host)) = authority.rsplit_once('@') {
        if userinfo.contains(':') {
            out.push(warning(
                "cluster.redis_url carries a password: put it in cluster.password_file (or set                  MCP_WARDEN_CLUSTER_REDIS_URL from a Secret) so config files and listings do not                  show it"
                    .into(),
            ));
        }
        plain_off_loopback(url, host, out);
    } else {
        plain_off_loopback(url, authority, out);
    }
    if !c.password_file.trim().is_empty() {
        let path = super::resolve(state, c.password_file.trim());
        if !path.is_file() {
            out.push(error(format!(
                "cluster.password_file {}: no such file",
                path.display()
            )));
        }
    }
}

fn plain_off_loopback(url: &str, host: &str, out: &mut Vec<Finding>) {
    let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
    let loopback = name == "localhost"
        || name
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if url.starts_with("redis://") && !loopback {
        out.push(warning(format!(
            "cluster.redis_url: {name} is reached without TLS: nonces, rate state and approval              tickets cross the network in clear; use rediss:// unless that network is private"
        )));
    }
}

/// The policy sources in force, for the start-up line and `check-config`.
pub fn policy_sources(config: &Config, state: &Path) -> Vec<String> {
    let dir = super::resolve(state, &config.policy.dir);
    crate::policy::PolicySet::load_layered(&dir, config.policy.builtin)
        .map(|s| s.sources())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Env(HashMap<String, String>);
    impl EnvSource for Env {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).cloned()
        }
        fn vars_with_prefix(&self, prefix: &str) -> Vec<(String, String)> {
            self.0
                .iter()
                .filter(|(k, _)| k.starts_with(prefix))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        }
    }

    #[test]
    fn cluster_findings() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env(HashMap::new());
        let lint = |toml: &str| {
            let config = Config::from_text(toml, &env).unwrap();
            check(&config, &env, dir.path())
                .into_iter()
                .filter(|f| f.text.starts_with("cluster."))
                .collect::<Vec<_>>()
        };
        assert!(lint("").is_empty());
        assert!(lint("[cluster]\nredis_url = \"redis://127.0.0.1:6379\"\n").is_empty());
        assert!(lint("[cluster]\nredis_url = \"rediss://redis.internal:6380\"\n").is_empty());
        let found = lint(
            "[cluster]\nredis_url = \"redis://:hunter2@redis:6379/0\"\npassword_file = \"pw\"\n",
        );
        let text: Vec<&str> = found.iter().map(|f| f.text.as_str()).collect();
        assert_eq!(found.len(), 3, "{text:?}");
        assert!(text[0].contains("carries a password"), "{text:?}");
        assert!(text[1].contains("without TLS"), "{text:?}");
        assert!(
            found[2].error && text[2].contains("no such file"),
            "{text:?}"
        );
        // The shape is checked when loading.
        let bad = Config::from_text("[cluster]\nredis_url = \"http://redis\"\n", &env);
        assert_eq!(bad.unwrap_err().key, "cluster.redis_url");
    }

    #[test]
    fn reports_every_problem_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let toml = "[admin]\nlisten = \"0.0.0.0:9464\"\n[policy]\ndir = \"nope\"\n\
                    [telemetry]\notlp_endpoint = \"grpc://collector:4317\"\n";
        let file = dir.path().join("proxy.toml");
        std::fs::write(&file, toml).unwrap();
        let env = Env(HashMap::from([(
            "MCP_WARDEN_POLICYDIR".to_owned(),
            "x".to_owned(),
        )]));
        let config = Config::load(Some(&file), &env).unwrap();
        let found = check(&config, &env, dir.path());
        let text: Vec<&str> = found.iter().map(|f| f.text.as_str()).collect();
        assert!(
            text.iter().any(|t| t.starts_with("MCP_WARDEN_POLICYDIR")),
            "{text:?}"
        );
        assert!(
            text.iter().any(|t| t.starts_with("admin.listen")),
            "{text:?}"
        );
        assert!(text.iter().any(|t| t.starts_with("policy.dir")), "{text:?}");
        assert!(
            text.iter()
                .any(|t| t.starts_with("telemetry.otlp_endpoint")),
            "{text:?}"
        );
        assert_eq!(found.iter().filter(|f| f.error).count(), 3, "{found:?}");
    }

    #[test]
    fn a_plain_config_is_clean_and_lists_the_built_in_packs() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env(HashMap::new());
        let config = Config::load(None, &env).unwrap();
        assert!(check(&config, &env, dir.path()).is_empty());
        let sources = policy_sources(&config, dir.path());
        assert!(
            sources.contains(&"built-in filesystem.toml".to_owned()),
            "{sources:?}"
        );
    }

    #[test]
    fn a_local_file_adds_to_the_packs_and_one_with_a_pack_name_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let policies = dir.path().join("policies");
        std::fs::create_dir(&policies).unwrap();
        std::fs::write(
            policies.join("local.toml"),
            "[server]\nmatch = [\"mine\"]\ndefault_risk = \"low\"\n",
        )
        .unwrap();
        let fs_pack = crate::policy::builtin::BUILTIN_PACKS
            .iter()
            .find(|(n, _)| *n == "filesystem.toml")
            .unwrap()
            .1;
        std::fs::write(policies.join("filesystem.toml"), fs_pack).unwrap();
        let env = Env(HashMap::new());
        let config = Config::load(None, &env).unwrap();
        let sources = policy_sources(&config, dir.path());
        assert!(
            sources.contains(&"built-in github.toml".to_owned()),
            "{sources:?}"
        );
        assert!(!sources.contains(&"built-in filesystem.toml".to_owned()));
        assert!(sources
            .iter()
            .any(|s| s.ends_with("policies/filesystem.toml")));
        assert!(sources.iter().any(|s| s.ends_with("policies/local.toml")));
    }
}
