"""Offline checks of deploy/kubernetes/*.yaml, run by tests/k8s_manifests.rs.

1. Schema: every object validates, strictly (unknown fields refused), against the Kubernetes
   OpenAPI schemas bundled in the `kubernetes-validate` package (no network, no cluster).
   A deliberately broken copy must fail, so a validator that accepts anything is caught.
2. Structure: what the deployment promises (native sidecar running `serve`, probes on the
   admin port, state on an emptyDir, non-root, config from ConfigMaps, commented vLLM).
3. Extraction: writes proxy.toml and each policy pack to OUT_DIR for the Rust side to parse
   with mcp-warden's own loaders.

usage: check_manifests.py MANIFEST_DIR OUT_DIR KUBERNETES_VERSION
"""

import copy
import pathlib
import sys

try:
    import kubernetes_validate
    import yaml
except ImportError as e:  # pragma: no cover - environment problem, not a test failure
    sys.exit(f"check_manifests: {e}: run scripts/setup-peers.sh (tests/peers/requirements.txt)")


def fail(msg):
    sys.exit(f"check_manifests: {msg}")


def main(manifest_dir, out_dir, version):
    docs = {}
    texts = {}
    for path in sorted(pathlib.Path(manifest_dir).glob("*.yaml")):
        texts[path.name] = path.read_text()
        for doc in yaml.safe_load_all(texts[path.name]):
            if doc is None or doc.get("kind") == "Kustomization":
                continue
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except Exception as e:  # ValidationError / SchemaNotFoundError
                fail(f"{path.name}: {doc['kind']}/{doc['metadata']['name']}: {e}")
            docs[(doc["kind"], doc["metadata"]["name"])] = doc

    dep = docs.get(("Deployment", "mcp-warden")) or fail("no Deployment mcp-warden")
    broken = copy.deepcopy(dep)
    broken["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    try:
        kubernetes_validate.validate(broken, version, strict=True)
        fail("the schema check accepted an unknown field: it checks nothing")
    except kubernetes_validate.ValidationError:
        pass

    pod = dep["spec"]["template"]["spec"]
    sidecars = [c for c in pod.get("initContainers", []) if c.get("restartPolicy") == "Always"]
    if len(sidecars) != 1:
        fail(f"want one native sidecar (init container with restartPolicy: Always), got {len(sidecars)}")
    warden = sidecars[0]
    if warden.get("args") != ["serve", "--config", "/etc/mcp-warden/proxy.toml"]:
        fail(f"sidecar args: {warden.get('args')}")
    ports = {p["name"]: p["containerPort"] for p in warden.get("ports", [])}
    if ports.get("admin") != 9464:
        fail(f"admin port: {ports}")
    for probe, path in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz"), ("startupProbe", "/healthz")]:
        get = warden.get(probe, {}).get("httpGet", {})
        if get.get("path") != path or get.get("port") not in ("admin", 9464):
            fail(f"{probe} must GET {path} on the admin port, got {get}")
    if not pod.get("securityContext", {}).get("runAsNonRoot"):
        fail("pod securityContext.runAsNonRoot must be true")
    for c in pod.get("initContainers", []) + pod["containers"]:
        sc = c.get("securityContext", {})
        if sc.get("allowPrivilegeEscalation") is not False or sc.get("capabilities", {}).get("drop") != ["ALL"]:
            fail(f"container {c['name']}: privilege escalation allowed or capabilities kept")
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in warden["volumeMounts"]}
    state = mounts.get("/var/lib/mcp-warden")
    if state is None or "emptyDir" not in volumes[state]:
        fail("the state dir /var/lib/mcp-warden must be an emptyDir")
    config = volumes[mounts.get("/etc/mcp-warden")]
    sources = config["projected"]["sources"]
    paths = {}
    for src in sources:
        ref = src.get("configMap")
        if ref is None:
            continue
        cm = docs.get(("ConfigMap", ref["name"])) or fail(f"ConfigMap {ref['name']} is referenced but not defined")
        for item in ref.get("items", []):
            if item["key"] not in (cm.get("data") or {}):
                fail(f"ConfigMap {ref['name']} has no key {item['key']}")
            paths[item["path"]] = cm["data"][item["key"]]
    if "proxy.toml" not in paths:
        fail("proxy.toml is not projected into /etc/mcp-warden")
    if not any(p.startswith("policies/") for p in paths):
        fail("no policy pack is projected into /etc/mcp-warden/policies")
    if not any(ref.get("configMap", {}).get("name") == "mcp-warden-pins" for ref in sources):
        fail("pins do not come from a ConfigMap")
    if "# - name: vllm" not in texts["deployment.yaml"]:
        fail("the commented-out vLLM container is missing")
    svc = docs.get(("Service", "mcp-warden")) or fail("no Service")
    labels = dep["spec"]["template"]["metadata"]["labels"]
    if any(labels.get(k) != v for k, v in svc["spec"]["selector"].items()):
        fail("the Service selects no pod of the Deployment")

    out = pathlib.Path(out_dir)
    for rel, text in paths.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text)
    print(f"ok: {len(docs)} objects valid against Kubernetes {version}; extracted {sorted(paths)}")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
