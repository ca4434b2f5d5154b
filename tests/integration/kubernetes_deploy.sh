#!/usr/bin/env bash
# deploy/kubernetes/ (issues 9 and 21): the base's manifests parse (python3-yaml) and have
# what the DaemonSet needs (read-only /var/log, writable data_dir, NODE_NAME from the
# downward API, probes on /healthz and /readyz, non-root with DAC_READ_SEARCH only, RBAC
# get/list/watch of pods and namespaces only, prometheus.io annotations, a headless
# Service); the ConfigMap embeds conf/kubernetes.yaml unchanged. Then the base and every
# overlay render with `kubectl kustomize`, every object validates against the Kubernetes
# schemas offline (npm's kubernetes-models, tests/integration/tools/k8s_validate.mjs), and
# every mars.yaml in a rendered ConfigMap passes `mars validate`. The rendering part skips
# (exit 77) without kubectl, node or the npm packages.
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
base=$MARS_SRC/deploy/kubernetes/base

/usr/bin/python3 - "$MARS_SRC" "$TMP/embedded.yaml" <<'PY' || fail "manifest checks"
import glob, sys, yaml
src, out = sys.argv[1], sys.argv[2]
docs = {}
for f in sorted(glob.glob(src + "/deploy/kubernetes/base/*.yaml")):
    if f.endswith("/kustomization.yaml"):
        continue
    for d in yaml.safe_load_all(open(f)):
        if d:
            docs[(d["kind"], d["metadata"]["name"])] = d
def need(cond, what):
    if not cond:
        sys.exit("manifest: " + what)
role = docs[("ClusterRole", "mars")]
need([(r["apiGroups"], sorted(r["resources"]), sorted(r["verbs"])) for r in role["rules"]] ==
     [([""], ["namespaces", "pods"], ["get", "list", "watch"])], "ClusterRole: get/list/watch pods, namespaces only")
need(docs[("ClusterRoleBinding", "mars")]["subjects"][0]["name"] == "mars", "binding to the mars ServiceAccount")
need(("ServiceAccount", "mars") in docs, "ServiceAccount")
ds = docs[("DaemonSet", "mars")]["spec"]["template"]["spec"]
c = ds["containers"][0]
mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
need(mounts["/var/log"].get("readOnly") is True, "/var/log read-only")
need(not mounts["/var/lib/mars"].get("readOnly"), "data_dir writable")
vols = {v["name"]: v for v in ds["volumes"]}
need(vols["varlog"]["hostPath"]["path"] == "/var/log" and "hostPath" in vols["data"], "hostPath volumes")
env = {e["name"]: e for e in c["env"]}
need(env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName", "NODE_NAME from the downward API")
need(c["livenessProbe"]["httpGet"]["path"] == "/healthz" and c["readinessProbe"]["httpGet"]["path"] == "/readyz", "probes")
sc = c["securityContext"]
need(sc["runAsNonRoot"] is True and sc["runAsUser"] != 0, "non-root")
need(sc["capabilities"] == {"drop": ["ALL"], "add": ["DAC_READ_SEARCH"]}, "least capabilities")
need(ds["tolerations"] and "resources" in c and "limits" in c["resources"], "tolerations and resources")
need(ds["serviceAccountName"] == "mars", "service account")
ann = docs[("DaemonSet", "mars")]["spec"]["template"]["metadata"]["annotations"]
need(ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/port") == "8686", "prometheus.io annotations")
svc = docs[("Service", "mars-metrics")]["spec"]
need(svc["clusterIP"] == "None" and svc["ports"][0]["port"] == 8686, "headless metrics Service on 8686")
need(("PodMonitor", "mars") in docs, "PodMonitor")
cm = docs[("ConfigMap", "mars-config")]["data"]["mars.yaml"]
need(cm == open(src + "/conf/kubernetes.yaml").read(), "ConfigMap embeds conf/kubernetes.yaml unchanged")
open(out, "w").write(cm)
PY
for f in "$MARS_SRC/conf/kubernetes.yaml" "$TMP/embedded.yaml"; do
    MARS_DATA_DIR=$TMP/data run_mars 10 validate -c "$f" >"$TMP/v.out" 2>&1
    expect_eq "$MARS_RC" 0 "mars validate $f: $(cat "$TMP/v.out")"
done

say "kubectl kustomize: the base and every overlay render; every object validates"
mods=$MARS_SRC/tests/.npm/node_modules
why=""
command -v kubectl >/dev/null || why="kubectl is not installed"
command -v node >/dev/null || why="node is not installed"
[[ -f $mods/kubernetes-models/package.json && -f $mods/@kubernetes-models/prometheus-operator/package.json ]] ||
    why="kubernetes-models is not installed (run scripts/npm-test-deps.sh, part of make deps-test)"
if [[ -n $why ]]; then
    echo "SKIP kubernetes_deploy (rendering half): $why"
    exit 77
fi
validate_objects() { # JSON_FILE WHAT
    timeout 60 node "$MARS_SRC/tests/integration/tools/k8s_validate.mjs" "$mods" <"$1" >"$TMP/valid.out" 2>&1 ||
        fail "$2: objects do not validate: $(grep -v '^ok ' "$TMP/valid.out" | head -5)"
}
dirs=("$base")
for o in "$MARS_SRC"/deploy/kubernetes/overlays/*/; do dirs+=("${o%/}"); done
((${#dirs[@]} >= 3)) || fail "expected the base and the node-agent and aggregator overlays"
for d in "${dirs[@]}"; do
    name=$(basename "$d")
    timeout 60 kubectl kustomize "$d" >"$TMP/$name.yaml" 2>"$TMP/$name.err" ||
        fail "kubectl kustomize $d: $(cat "$TMP/$name.err")"
    /usr/bin/python3 - "$TMP/$name.yaml" "$TMP/$name.json" "$TMP/$name-conf" <<'PY' || fail "$name: rendered objects"
import json, os, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
json.dump(docs, open(sys.argv[2], "w"))
os.makedirs(sys.argv[3])
for d in docs:
    if d["kind"] == "ConfigMap" and "mars.yaml" in d.get("data", {}):
        open(os.path.join(sys.argv[3], d["metadata"]["name"] + ".yaml"), "w").write(d["data"]["mars.yaml"])
PY
    validate_objects "$TMP/$name.json" "$name"
    n=$(grep -c '^ok ' "$TMP/valid.out")
    for conf in "$TMP/$name-conf"/*.yaml; do
        MARS_DATA_DIR=$TMP/data run_mars 10 validate -c "$conf" >"$TMP/v.out" 2>&1
        expect_eq "$MARS_RC" 0 "$name: mars validate $(basename "$conf"): $(cat "$TMP/v.out")"
    done
    say "$name: $n objects valid, $(ls "$TMP/$name-conf" | wc -l) mars configs valid"
done

say "what each overlay is for"
/usr/bin/python3 - "$TMP" "$MARS_SRC" <<'PY' || fail "overlay contents"
import json, sys
t = sys.argv[1]
def objs(name):
    return {(d["kind"], d["metadata"]["name"]): d for d in json.load(open(f"{t}/{name}.json"))}
def need(cond, what):
    if not cond:
        sys.exit("overlay: " + what)
na = objs("node-agent")
spec = na[("DaemonSet", "mars")]["spec"]["template"]["spec"]
need(spec.get("hostNetwork") is True, "node-agent: hostNetwork")
caps = spec["containers"][0]["securityContext"]["capabilities"]
need("NET_ADMIN" in caps["add"] and caps["drop"] == ["ALL"], "node-agent: NET_ADMIN, everything else dropped")
need("type: iptables" in na[("ConfigMap", "mars-config")]["data"]["mars.yaml"], "node-agent: iptables source")
need(na[("ConfigMap", "mars-config")]["data"]["mars.yaml"] == open(sys.argv[2] + "/conf/node-agent.yaml").read(),
     "node-agent: the ConfigMap embeds conf/node-agent.yaml unchanged")
need({"name": "apm", "hostPath": {"path": "/run/mars", "type": "DirectoryOrCreate"}} in spec["volumes"],
     "node-agent: the APM socket's hostPath")
need(any(e["name"] == "HOST_IP" for e in spec["containers"][0]["env"]), "node-agent: HOST_IP for Eureka")
ag = objs("aggregator")
dep = ag[("Deployment", "mars-aggregator")]["spec"]
need(dep["replicas"] >= 2 and ("Service", "mars-aggregator") in ag, "aggregator: Deployment and Service")
need("type: mars" in ag[("ConfigMap", "mars-aggregator-config")]["data"]["mars.yaml"], "aggregator: mars source")
need("mars-aggregator.mars.svc:6277" in ag[("ConfigMap", "mars-config")]["data"]["mars.yaml"], "aggregator: agents ship to it")
need(("DaemonSet", "mars") in ag and ("PodMonitor", "mars") in ag, "aggregator: keeps the base")
# the validator must catch a broken object, or the checks above prove nothing
bad = [d for d in json.load(open(f"{t}/base.json")) if d["kind"] == "DaemonSet"]
bad[0]["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "admin"
json.dump(bad, open(f"{t}/broken.json", "w"))
PY
if timeout 60 node "$MARS_SRC/tests/integration/tools/k8s_validate.mjs" "$mods" <"$TMP/broken.json" >"$TMP/broken.out" 2>&1; then
    fail "the schema check accepted a DaemonSet with containerPort: \"admin\""
fi
grep -q '^invalid DaemonSet mars' "$TMP/broken.out" || fail "broken DaemonSet: $(cat "$TMP/broken.out")"
pass "manifests check out; base and overlays render and validate; their configs validate"
