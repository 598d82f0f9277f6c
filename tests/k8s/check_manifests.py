"""Offline checks of deploy/kubernetes/*.yaml, run by tests/k8s_manifests.rs.

1. Schema: every object validates, strictly (unknown fields refused), against the Kubernetes
   OpenAPI schemas bundled in the `kubernetes-validate` package (no network, no cluster).
   A deliberately broken copy must fail, so a validator that accepts anything is caught.
2. Structure: what the deployment promises (native sidecar running `serve`, probes on the
   admin port, state on an emptyDir, non-root, config from ConfigMaps, commented vLLM). The
   vLLM example (deploy/kubernetes/vllm/) has a `vllm` container instead: GPU requested,
   /health probes, a model volume, loopback only, and proxy.toml routing sampling to it.
3. Extraction: writes proxy.toml and each policy pack to OUT_DIR for the Rust side to parse
   with mcp-warden's own loaders.

usage: check_manifests.py MANIFEST_DIR OUT_DIR KUBERNETES_VERSION
       check_manifests.py --gateway GATEWAY_DIR OUT_DIR KUBERNETES_VERSION   (issue 14: 3 replicas,
       Redis, sticky sessions; writes proxy.toml and the policy packs to OUT_DIR the same way)
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

    def only(kind):
        found = [d for (k, _), d in docs.items() if k == kind]
        if len(found) != 1:
            fail(f"want exactly one {kind}, got {len(found)}")
        return found[0]

    dep = only("Deployment")
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
    if not any(ref.get("configMap", {}).get("name", "").endswith("-pins") for ref in sources):
        fail("pins do not come from a ConfigMap")
    vllm = next((c for c in pod["containers"] if c["name"] == "vllm"), None)
    if vllm is None and "# - name: vllm" not in texts["deployment.yaml"]:
        fail("the commented-out vLLM container is missing")
    if vllm is not None:
        check_vllm(docs, pod, vllm, paths["proxy.toml"])
    svc = only("Service")
    labels = dep["spec"]["template"]["metadata"]["labels"]
    if any(labels.get(k) != v for k, v in svc["spec"]["selector"].items()):
        fail("the Service selects no pod of the Deployment")

    check_server_isolation(manifest_dir, docs, pod)

    out = pathlib.Path(out_dir)
    for rel, text in paths.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text)
    print(f"ok: {len(docs)} objects valid against Kubernetes {version}; extracted {sorted(paths)}")


def check_server_isolation(manifest_dir, docs, pod):
    """The MCP server container is reachable through the sidecar only: a NetworkPolicy admits the
    sidecar's ports and nothing else, and the Node.js server is bound to loopback by a preload
    that really does bind server-everything to 127.0.0.1 (started here to prove it)."""
    policies = [d for (k, _), d in docs.items() if k == "NetworkPolicy"]
    if len(policies) != 1:
        fail(f"want exactly one NetworkPolicy, got {len(policies)}")
    policy = policies[0]
    if policy["spec"].get("policyTypes") != ["Ingress"]:
        fail("the NetworkPolicy must restrict Ingress")
    ports = sorted(p["port"] for rule in policy["spec"]["ingress"] for p in rule.get("ports", []))
    if ports != [8080, 9464]:
        fail(f"the NetworkPolicy must admit 8080 and 9464 only, got {ports}")
    server = next(c for c in pod["containers"] if c["name"] == "mcp-server")
    env = {e["name"]: e.get("value") for e in server.get("env", [])}
    preload = "/etc/mcp-loopback/loopback.cjs"
    if env.get("NODE_OPTIONS") != f"--require {preload}":
        fail(f"mcp-server NODE_OPTIONS must preload {preload}, got {env.get('NODE_OPTIONS')}")
    mounts = {m["mountPath"]: m["name"] for m in server.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in pod["volumes"]}
    vol = volumes.get(mounts.get("/etc/mcp-loopback")) or fail("the preload is not mounted")
    kust = yaml.safe_load((pathlib.Path(manifest_dir) / "kustomization.yaml").read_text())
    gens = {g["name"]: g for g in kust.get("configMapGenerator", [])}
    gen = gens.get(vol["configMap"]["name"]) or fail("no configMapGenerator for the preload")
    script = pathlib.Path(manifest_dir) / gen["files"][0]
    if script.name != "loopback.cjs" or not script.exists():
        fail(f"preload file {script} missing")
    # kustomize cannot load files from outside an overlay's directory, so an example pod keeps
    # its own copy of the preload; it must stay the proved one, byte for byte.
    shared = pathlib.Path(__file__).resolve().parents[2] / "deploy/kubernetes/files/loopback.cjs"
    if script.resolve() != shared and script.read_bytes() != shared.read_bytes():
        fail(f"{script} differs from {shared}: keep the copies identical")
    prove_loopback(script)


def check_vllm(docs, pod, vllm, proxy_toml):
    """The model-routing pod (SPEC §11): vLLM on a GPU, on loopback, probed on /health, with its
    model on a volume; the sidecar's proxy.toml sends the server's sampling to it."""
    import tomllib
    args = vllm.get("args", [])
    flag = lambda name: args[args.index(name) + 1] if name in args[:-1] else None
    if flag("--host") != "127.0.0.1" or flag("--port") != "8000":
        fail(f"vllm must listen on 127.0.0.1:8000 only, got args {args}")
    res = vllm.get("resources", {})
    gpus = [k for k in res.get("limits", {}) if k.endswith("/gpu")]
    if not gpus or int(res["limits"][gpus[0]]) < 1:
        fail(f"vllm must request a GPU (nvidia.com/gpu or amd.com/gpu limits), got {res}")
    if res.get("requests", {}).get(gpus[0]) not in (None, res["limits"][gpus[0]]):
        fail("a GPU request must equal its limit")
    ports = {p["name"]: p["containerPort"] for p in vllm.get("ports", [])}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = vllm.get(probe, {}).get("httpGet", {})
        port = ports.get(get.get("port"), get.get("port"))
        if get.get("path") != "/health" or port != 8000:
            fail(f"vllm {probe} must GET /health on 8000, got {get}")
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in vllm.get("volumeMounts", [])}
    env = {e["name"]: e.get("value") for e in vllm.get("env", [])}
    model_dir = flag("--download-dir") or env.get("HF_HOME")
    vol = volumes.get(mounts.get(model_dir)) if model_dir else None
    if vol is None:
        fail(f"the model directory {model_dir} is not on a volume")
    claim = vol.get("persistentVolumeClaim", {}).get("claimName")
    if claim is not None and ("PersistentVolumeClaim", claim) not in docs:
        fail(f"PersistentVolumeClaim {claim} is referenced but not defined")
    config = tomllib.loads(proxy_toml)
    if config.get("inference", {}).get("backend") != "http://127.0.0.1:8000":
        fail(f"proxy.toml [inference] backend must be the vllm container, got {config.get('inference')}")
    if not any(s.get("sampling") == "backend" for s in config.get("servers", [])):
        fail("no [[servers]] entry routes its sampling to the backend (sampling = \"backend\")")


def prove_loopback(script):
    import os, socket, subprocess, time
    repo = pathlib.Path(__file__).resolve().parents[2]
    entry = repo / "tests/peers/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
    if not entry.exists():
        fail(f"{entry} missing: run scripts/setup-peers.sh")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PORT=str(port), NODE_OPTIONS=f"--require {script}")
    proc = subprocess.Popen(["node", str(entry), "streamableHttp"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            found = listening(port)
            if found:
                if found != {"127.0.0.1"}:
                    fail(f"server-everything with the preload listens on {found}, not loopback only")
                return
            time.sleep(0.2)
        fail("server-everything did not start listening within 30 s")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def listening(port):
    """Local addresses in LISTEN state on `port`, from /proc/net/tcp and tcp6."""
    found = set()
    for table, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            addr, p = f[1].split(":")
            if int(p, 16) != port or f[3] != "0A":
                continue
            raw = bytes.fromhex(addr)
            if v6:
                words = [raw[i:i + 4][::-1] for i in range(0, 16, 4)]
                ip = socket_ntop6(b"".join(words))
            else:
                ip = ".".join(str(b) for b in raw[::-1])
            found.add(ip)
    return found


def socket_ntop6(raw):
    import socket
    ip = socket.inet_ntop(socket.AF_INET6, raw)
    return "127.0.0.1" if ip in ("::1", "::ffff:127.0.0.1") else ip


def load_valid(manifest_dir, version):
    """Every object of the directory, validated strictly; (kind, name) -> object, and the texts."""
    docs, texts = {}, {}
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
    kust = yaml.safe_load((pathlib.Path(manifest_dir) / "kustomization.yaml").read_text())
    missing = set(texts) - set(kust["resources"]) - {"kustomization.yaml"}
    if missing:
        fail(f"not listed in kustomization.yaml: {sorted(missing)}")
    return docs, texts


def selects(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def gateway(manifest_dir, out_dir, version):
    docs, _ = load_valid(manifest_dir, version)
    dep = docs.get(("Deployment", "mcp-warden-gateway")) or fail("no Deployment mcp-warden-gateway")
    if dep["spec"].get("replicas") != 3:
        fail(f"the gateway runs 3 replicas, not {dep['spec'].get('replicas')}")
    pod = dep["spec"]["template"]["spec"]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    sidecars = [c for c in pod.get("initContainers", []) if c.get("restartPolicy") == "Always"]
    if len(sidecars) != 1 or sidecars[0].get("args") != ["serve", "--config", "/etc/mcp-warden/proxy.toml"]:
        fail("want one native sidecar running serve")
    warden = sidecars[0]
    if warden.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/readyz":
        fail("readiness must be /readyz (it includes Redis)")
    if warden.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/healthz":
        fail("liveness must be /healthz: a Redis outage must not restart every replica")
    if not pod.get("securityContext", {}).get("runAsNonRoot"):
        fail("pod securityContext.runAsNonRoot must be true")

    # The config every replica mounts, and the Secrets it names.
    sources = next(v for v in pod["volumes"] if v["name"] == "config")["projected"]["sources"]
    paths, secrets = {}, set()
    for src in sources:
        if "secret" in src:
            for item in src["secret"]["items"]:
                secrets.add("/etc/mcp-warden/" + item["path"])
            continue
        ref = src["configMap"]
        cm = docs.get(("ConfigMap", ref["name"])) or fail(f"ConfigMap {ref['name']} not defined")
        for item in ref["items"]:
            paths[item["path"]] = cm["data"][item["key"]]
    toml_text = paths.get("proxy.toml") or fail("proxy.toml is not projected")
    import tomllib
    cfg = tomllib.loads(toml_text)
    cluster = cfg.get("cluster") or fail("proxy.toml has no [cluster]")
    for key in ("password_file",):
        if cluster.get(key) not in secrets:
            fail(f"cluster.{key} {cluster.get(key)!r} is not mounted from a Secret")
    if cfg.get("identity", {}).get("key") not in secrets:
        fail("every replica needs the same identity key (a Secret) to verify approval decisions")
    if cfg.get("signatures", {}).get("mode") != "enforce":
        fail("the gateway example enforces signatures (fail closed when Redis is down)")

    # Redis: reachable under the URL's host and port, only from the gateway pods.
    url = cluster["redis_url"]
    host, port = url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)
    svc = docs.get(("Service", host)) or fail(f"no Service {host} for cluster.redis_url")
    if int(port) not in [p["port"] for p in svc["spec"]["ports"]]:
        fail(f"Service {host} does not expose {port}")
    redis = next((d for (k, _), d in docs.items() if k == "Deployment"
                  and selects(svc["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"])), None)
    if redis is None:
        fail(f"Service {host} selects no Deployment")
    rcmd = " ".join(redis["spec"]["template"]["spec"]["containers"][0].get("command", []))
    if "--requirepass" not in rcmd:
        fail("Redis must require the password the gateway reads")
    np = [d for (k, _), d in docs.items() if k == "NetworkPolicy"
          and selects(d["spec"]["podSelector"]["matchLabels"], redis["spec"]["template"]["metadata"]["labels"])]
    if not np or not all(selects(f["podSelector"]["matchLabels"], labels)
                         for rule in np[0]["spec"]["ingress"] for f in rule.get("from", [])):
        fail("a NetworkPolicy must admit only the gateway pods to Redis")

    # Sticky sessions: the Ingress hashes on Mcp-Session-Id, the Service falls back to ClientIP.
    gsvc = next((d for (k, _), d in docs.items() if k == "Service" and selects(d["spec"]["selector"], labels)), None)
    if gsvc is None:
        fail("no Service selects the gateway pods")
    if gsvc["spec"].get("sessionAffinity") != "ClientIP":
        fail("the gateway Service must keep ClientIP affinity")
    ing = next((d for (k, _), d in docs.items() if k == "Ingress"), None) or fail("no Ingress")
    if ing["metadata"].get("annotations", {}).get("nginx.ingress.kubernetes.io/upstream-hash-by") != "$http_mcp_session_id":
        fail("the Ingress must hash on the Mcp-Session-Id header")
    backends = [p["backend"]["service"]["name"] for r in ing["spec"]["rules"] for p in r["http"]["paths"]]
    if backends != [gsvc["metadata"]["name"]]:
        fail(f"the Ingress must route to {gsvc['metadata']['name']}, not {backends}")

    out = pathlib.Path(out_dir)
    for rel, text in paths.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text)
    print(f"ok: gateway, {len(docs)} objects valid against Kubernetes {version}")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--gateway":
        gateway(*sys.argv[2:])
    elif len(sys.argv) == 4:
        main(*sys.argv[1:])
    else:
        sys.exit(__doc__)
