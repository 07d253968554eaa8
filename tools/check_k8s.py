#!/usr/bin/env python3
"""Static checks of the Kubernetes manifests in deploy/k8s/ (no cluster runs here).

What is checked, and why:
- every *.yaml parses, and each document has apiVersion, kind and
  metadata.name, with a kind/apiVersion pair from KNOWN (a typo such as
  policy/v1beta1 is caught here, not by the API server);
- kustomization.yaml lists exactly the resource files of the folder, so
  `kubectl apply -k` applies all of them;
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
- the HPA scales this Deployment on a Pods metric that a rule of the adapter
  ConfigMap serves and pagoda exports (quoted in server/metrics_text.cpp).
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
MEMORY_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
                "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def load(manifest_dir, errors):
    """[(file name, document)] of every *.yaml in the folder."""
    docs = []
    for path in sorted(glob.glob(os.path.join(manifest_dir, "*.yaml"))):
        name = os.path.basename(path)
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
    present = {os.path.basename(p) for p in glob.glob(os.path.join(manifest_dir, "*.yaml"))} - {fname}
    for f in sorted(present - listed):
        errors.append(f"{fname}: {f} is in the folder but not listed under resources")
    for f in sorted(listed - present):
        errors.append(f"{fname}: lists {f}, which is not in the folder")


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


def check_hpa(root, docs, errors):
    rules = []
    for _, d in of_kind(docs, "ConfigMap"):
        text = (d.get("data") or {}).get("config.yaml")
        if text:
            rules += (yaml.safe_load(text) or {}).get("rules", [])
    with open(os.path.join(root, "server", "metrics_text.cpp"), encoding="utf-8") as m:
        exported = m.read()
    deployments = {d["metadata"]["name"] for _, d in of_kind(docs, "Deployment")}
    for f, d in of_kind(docs, "HorizontalPodAutoscaler"):
        target = (d.get("spec") or {}).get("scaleTargetRef") or {}
        if target.get("kind") != "Deployment" or target.get("name") not in deployments:
            errors.append(f"{f}: HPA scaleTargetRef {target} is not a Deployment of this folder")
        pods = [m for m in (d.get("spec") or {}).get("metrics", []) if m.get("type") == "Pods"]
        if not pods:
            errors.append(f"{f}: HPA has no Pods metric (it should scale on the queue, pagoda_requests_waiting)")
        for metric in pods:
            name = metric["pods"]["metric"]["name"]
            if not any(name in str(r.get("seriesQuery", "")) + str((r.get("name") or {}).get("as", "")) for r in rules):
                errors.append(f"{f}: HPA metric {name} is not served by any rule of the adapter ConfigMap")
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
    try:
        check_hpa(root, docs, errors)
    except (OSError, KeyError, TypeError, yaml.YAMLError) as e:
        errors.append(f"HPA/adapter check failed: {type(e).__name__}: {e}")
    for e in errors:
        print("FAIL", e)
    if errors:
        print(f"k8s manifests: {len(errors)} problem(s) in {manifest_dir}")
        return 1
    print(f"k8s manifests: {len(docs)} documents in {len(files)} files, all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
