#!/usr/bin/env python3
"""Static checks of the Kubernetes manifests in deploy/k8s/ (no cluster runs here).

What is checked, and why:
- every *.yaml parses, and each document has apiVersion, kind and
  metadata.name, with a kind/apiVersion pair from KNOWN (a typo such as
  policy/v1beta1 is caught here, not by the API server);
- kustomization.yaml lists exactly the resource files of the folder, so
  `kubectl apply -k` applies all of them, and not prometheus-adapter-rules.yaml
  (ADAPTER_RULES), a snippet to merge into the adapter's own config: applied
  as a ConfigMap it would replace the adapter's whole rule set;
- no resource sets metadata.namespace (`kubectl apply -k deploy/k8s -n NS`
  rejects an object whose namespace differs from -n);
- no spec.replicas on a Deployment an HPA scales (every apply would reset the
  count and drain the replicas the HPA added);
- the Deployment's selector matches its pod labels, and so do the Services'
  and the PDB's selectors (a mismatch routes to nothing, silently); the
  Services' targetPort, PAGODA_SERVER_PORT and the prometheus.io/port
  annotation name the container's port;
- the startup, readiness and liveness probes GET /health on the container's
  port, and liveness tolerates a whole drain (/health is 503 while draining);
- terminationGracePeriodSeconds > preStop sleep + PAGODA_SERVER_SHUTDOWN_GRACE_S,
  so in-flight requests finish before the kubelet's SIGKILL;
- requests == limits for cpu and memory with a whole cpu count (Guaranteed QoS:
  exclusive cores under the static CPU manager), and PAGODA_ENGINE_THREADS
  equals that count;
- the HPA scales this Deployment on a Pods metric that a rule of
  ADAPTER_RULES serves and pagoda exports (quoted in server/metrics_text.cpp).
Usage: python3 tools/check_k8s.py [REPO_ROOT [MANIFEST_DIR]]
(MANIFEST_DIR defaults to REPO_ROOT/deploy/k8s; ctest runs it as
deploy.k8s_manifests). Exit status 0 = all checks passed, 1 = a problem.
"""
import glob
import os
import re
import sys

try:
    import yaml
except ImportError:
    print("check_k8s: PyYAML missing (apt-get install python3-yaml)")
    sys.exit(1)

KNOWN = {
    ("apps/v1", "Deployment"),
    ("v1", "Service"),
    ("v1", "ConfigMap"),
    ("policy/v1", "PodDisruptionBudget"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("kustomize.config.k8s.io/v1beta1", "Kustomization"),
}
# Not a resource: a document {rules: [...]} in the adapter's config format.
ADAPTER_RULES = "prometheus-adapter-rules.yaml"
MEMORY_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
                "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def load(manifest_dir, errors):
    """[(file name, document)] of every *.yaml in the folder but ADAPTER_RULES."""
    docs = []
    for path in sorted(glob.glob(os.path.join(manifest_dir, "*.yaml"))):
        name = os.path.basename(path)
        if name == ADAPTER_RULES:
            continue
        try:
            with open(path, encoding="utf-8") as f:
                found = [d for d in yaml.safe_load_all(f) if d is not None]
        except yaml.YAMLError as e:
            errors.append(f"{name}: does not parse: {e}")
            continue
        for d in found:
            if not isinstance(d, dict):
                errors.append(f"{name}: a document is not a mapping")
                continue
            kind, api = d.get("kind"), d.get("apiVersion")
            if not kind or not api:
                errors.append(f"{name}: a document lacks apiVersion or kind")
                continue
            if (api, kind) not in KNOWN:
                errors.append(f"{name}: unknown kind/apiVersion {kind} {api}")
            if kind != "Kustomization" and not (d.get("metadata") or {}).get("name"):
                errors.append(f"{name}: {kind} has no metadata.name")
                continue
            docs.append((name, d))
    return docs


def load_rules(manifest_dir, errors):
    """The rules list of ADAPTER_RULES (a plain {rules: [...]} document, no kind)."""
    path = os.path.join(manifest_dir, ADAPTER_RULES)
    if not os.path.exists(path):
        errors.append(f"{ADAPTER_RULES} is missing (the adapter rule that serves the HPA's metric)")
        return []
    try:
        with open(path, encoding="utf-8") as f:
            found = [d for d in yaml.safe_load_all(f) if d is not None]
    except yaml.YAMLError as e:
        errors.append(f"{ADAPTER_RULES}: does not parse: {e}")
        return []
    if len(found) != 1 or not isinstance(found[0], dict) or not isinstance(found[0].get("rules"), list):
        errors.append(f"{ADAPTER_RULES}: must be one document with a \"rules:\" list (the adapter's config format)")
        return []
    if "kind" in found[0] or "apiVersion" in found[0]:
        errors.append(f"{ADAPTER_RULES}: must not be a Kubernetes object (applied, it would replace "
                      f"the adapter's config); keep just the rules")
    return found[0]["rules"]


def of_kind(docs, kind):
    return [(f, d) for f, d in docs if d.get("kind") == kind]


def cpu_count(q):
    """Whole CPUs of a quantity ("2", 2, "2000m"), or None when not whole."""
    s = str(q)
    milli = int(s[:-1]) if s.endswith("m") and s[:-1].isdigit() else int(s) * 1000 if s.isdigit() else None
    return milli // 1000 if milli is not None and milli % 1000 == 0 else None


def memory_bytes(q):
    m = re.fullmatch(r"(\d+)([kMGT]i?|)", str(q))
    return int(m.group(1)) * MEMORY_UNITS[m.group(2)] if m else None


def prestop_sleep(container):
    """Seconds the preStop hook sleeps (exec `sleep N`, or the native sleep action), else None."""
    hook = ((container.get("lifecycle") or {}).get("preStop")) or {}
    if "sleep" in hook:
        return int(hook["sleep"].get("seconds", 0))
    m = re.search(r"\bsleep\s+(\d+)", " ".join((hook.get("exec") or {}).get("command", [])))
    return int(m.group(1)) if m else None


def check_kustomization(manifest_dir, docs, errors):
    kust = of_kind(docs, "Kustomization")
    if len(kust) != 1:
        errors.append(f"need one Kustomization, found {len(kust)}")
        return
    fname, k = kust[0]
    listed = set(k.get("resources") or [])
    present = {os.path.basename(p) for p in glob.glob(os.path.join(manifest_dir, "*.yaml"))} - {fname, ADAPTER_RULES}
    if ADAPTER_RULES in listed:
        errors.append(f"{fname}: lists {ADAPTER_RULES}, a snippet for the adapter's own config, not a resource")
        listed.discard(ADAPTER_RULES)
    for f in sorted(present - listed):
        errors.append(f"{fname}: {f} is in the folder but not listed under resources")
    for f in sorted(listed - present):
        errors.append(f"{fname}: lists {f}, which is not in the folder")
    if k.get("namespace"):
        errors.append(f"{fname}: sets namespace {k['namespace']}; leave it to kubectl -n")
    for f, d in docs:
        ns = (d.get("metadata") or {}).get("namespace")
        if ns:
            errors.append(f"{f}: {d['kind']} {d['metadata']['name']} sets namespace {ns}; "
                          f"`kubectl apply -k deploy/k8s -n NS` rejects it, leave it to -n")


def check_selectors(docs, labels, port_ids, errors):
    def matches(selector):
        return bool(selector) and all(labels.get(k) == v for k, v in selector.items())

    for f, d in of_kind(docs, "Service"):
        sel = (d.get("spec") or {}).get("selector")
        if not matches(sel):
            errors.append(f"{f}: Service {d['metadata']['name']} selector {sel} does not match pod labels {labels}")
        for p in (d.get("spec") or {}).get("ports", []):
            if p.get("targetPort", p.get("port")) not in port_ids:
                errors.append(f"{f}: Service {d['metadata']['name']} targetPort {p.get('targetPort')} "
                              f"is not the container's port {sorted(map(str, port_ids))}")
    for f, d in of_kind(docs, "PodDisruptionBudget"):
        sel = ((d.get("spec") or {}).get("selector") or {}).get("matchLabels")
        if not matches(sel):
            errors.append(f"{f}: PodDisruptionBudget selector {sel} does not match pod labels {labels}")


def check_container(f, spec, c, errors):
    env = {e["name"]: str(e["value"]) for e in c.get("env", []) if "value" in e}
    ports = c.get("ports") or [{}]
    port_ids = {ports[0].get("name"), ports[0].get("containerPort")} - {None}
    if env.get("PAGODA_SERVER_PORT", "8000") != str(ports[0].get("containerPort")):
        errors.append(f"{f}: PAGODA_SERVER_PORT {env.get('PAGODA_SERVER_PORT', '8000')} "
                      f"is not the containerPort {ports[0].get('containerPort')}")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = (c.get(probe) or {}).get("httpGet")
        if not get:
            errors.append(f"{f}: container {c['name']} has no {probe} with httpGet")
        elif get.get("path") != "/health" or get.get("port") not in port_ids:
            errors.append(f"{f}: {probe} gets {get.get('path')} on port {get.get('port')}, "
                          f"not /health on the container's port {sorted(map(str, port_ids))}")
    if "PAGODA_SERVER_SHUTDOWN_GRACE_S" not in env:
        errors.append(f"{f}: PAGODA_SERVER_SHUTDOWN_GRACE_S is not set (the grace arithmetic needs it)")
        return
    grace = float(env["PAGODA_SERVER_SHUTDOWN_GRACE_S"])
    sleep = prestop_sleep(c)
    if sleep is None:
        errors.append(f"{f}: container {c['name']} has no preStop hook running `sleep N`")
        sleep = 0
    term = spec.get("terminationGracePeriodSeconds", 30)
    if not term > sleep + grace:
        errors.append(f"{f}: terminationGracePeriodSeconds {term} is not more than preStop sleep {sleep} "
                      f"+ PAGODA_SERVER_SHUTDOWN_GRACE_S {grace:g} = {sleep + grace:g}; "
                      f"the kubelet would SIGKILL in-flight requests")
    live = c.get("livenessProbe") or {}
    if live.get("periodSeconds", 10) * live.get("failureThreshold", 3) <= grace:
        errors.append(f"{f}: livenessProbe periodSeconds x failureThreshold is not more than the "
                      f"{grace:g} s drain (/health is 503 while draining), it would restart a draining pod")
    res = c.get("resources") or {}
    req, lim = res.get("requests") or {}, res.get("limits") or {}
    for key, parse in (("cpu", cpu_count), ("memory", memory_bytes)):
        if key not in req or key not in lim:
            errors.append(f"{f}: resources need requests and limits for {key}")
        elif parse(req[key]) is None or parse(lim[key]) is None:
            what = "a whole number of CPUs (exclusive cores need integer cpu)" if key == "cpu" else "a quantity"
            errors.append(f"{f}: {key} request {req[key]} / limit {lim[key]} is not {what}")
        elif parse(req[key]) != parse(lim[key]):
            errors.append(f"{f}: {key} request {req[key]} != limit {lim[key]} "
                          f"(Guaranteed QoS, and so exclusive cores, needs requests == limits)")
    cpus = cpu_count(req.get("cpu", ""))
    if cpus is not None and env.get("PAGODA_ENGINE_THREADS") != str(cpus):
        errors.append(f"{f}: PAGODA_ENGINE_THREADS {env.get('PAGODA_ENGINE_THREADS')} is not the cpu count {cpus}")


def check_hpa(root, docs, rules, errors):
    with open(os.path.join(root, "server", "metrics_text.cpp"), encoding="utf-8") as m:
        exported = m.read()
    deployments = {d["metadata"]["name"] for _, d in of_kind(docs, "Deployment")}
    for f, d in of_kind(docs, "HorizontalPodAutoscaler"):
        target = (d.get("spec") or {}).get("scaleTargetRef") or {}
        if target.get("kind") != "Deployment" or target.get("name") not in deployments:
            errors.append(f"{f}: HPA scaleTargetRef {target} is not a Deployment of this folder")
        for df, dep in of_kind(docs, "Deployment"):
            if dep["metadata"]["name"] == target.get("name") and "replicas" in (dep.get("spec") or {}):
                errors.append(f"{df}: Deployment {target.get('name')} sets spec.replicas "
                              f"{dep['spec']['replicas']} but HPA {d['metadata']['name']} ({f}) scales it: "
                              f"every apply would reset the count; leave the floor to minReplicas")
        pods = [m for m in (d.get("spec") or {}).get("metrics", []) if m.get("type") == "Pods"]
        if not pods:
            errors.append(f"{f}: HPA has no Pods metric (it should scale on the queue, pagoda_requests_waiting)")
        for metric in pods:
            name = metric["pods"]["metric"]["name"]
            if not any(name in str(r.get("seriesQuery", "")) + str((r.get("name") or {}).get("as", "")) for r in rules):
                errors.append(f"{f}: HPA metric {name} is not served by any rule of {ADAPTER_RULES}")
            if f'"{name}"' not in exported:
                errors.append(f"{f}: HPA metric {name} is not exported by pagoda (not in server/metrics_text.cpp)")


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))
    manifest_dir = sys.argv[2] if len(sys.argv) > 2 else os.path.join(root, "deploy", "k8s")
    files = glob.glob(os.path.join(manifest_dir, "*.yaml"))
    if not files:
        print(f"check_k8s: no *.yaml in {manifest_dir}")
        return 1
    errors = []
    docs = load(manifest_dir, errors)
    check_kustomization(manifest_dir, docs, errors)
    deployments = of_kind(docs, "Deployment")
    if len(deployments) != 1:
        errors.append(f"need one Deployment, found {len(deployments)}")
    for f, d in deployments:
        spec = d.get("spec") or {}
        pod = spec.get("template") or {}
        labels = (pod.get("metadata") or {}).get("labels") or {}
        sel = (spec.get("selector") or {}).get("matchLabels") or {}
        if not sel or any(labels.get(k) != v for k, v in sel.items()):
            errors.append(f"{f}: Deployment selector {sel} does not match its template labels {labels}")
        first = ((pod.get("spec") or {}).get("containers") or [{}])[0]
        cport = (first.get("ports") or [{}])[0]
        check_selectors(docs, labels, {cport.get("name"), cport.get("containerPort")} - {None}, errors)
        notes = (pod.get("metadata") or {}).get("annotations") or {}
        port = str(cport.get("containerPort"))
        if notes.get("prometheus.io/scrape") != "true" or notes.get("prometheus.io/port") != port \
                or notes.get("prometheus.io/path") != "/metrics":
            errors.append(f"{f}: pod annotations must be prometheus.io/scrape \"true\", port {port}, path /metrics")
        for c in (pod.get("spec") or {}).get("containers", []):
            try:
                check_container(f, pod.get("spec") or {}, c, errors)
            except (KeyError, TypeError, AttributeError, ValueError) as e:
                errors.append(f"{f}: container {c.get('name')} has an unexpected shape: {type(e).__name__}: {e}")
    rules = load_rules(manifest_dir, errors)
    try:
        check_hpa(root, docs, rules, errors)
    except (OSError, KeyError, TypeError, AttributeError, yaml.YAMLError) as e:
        errors.append(f"HPA/adapter check failed: {type(e).__name__}: {e}")
    for e in errors:
        print("FAIL", e)
    if errors:
        print(f"k8s manifests: {len(errors)} problem(s) in {manifest_dir}")
        return 1
    print(f"k8s manifests: {len(docs)} documents in {len(files) - 1} files, {len(rules)} adapter rule(s) "
          f"in {ADAPTER_RULES}, all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
