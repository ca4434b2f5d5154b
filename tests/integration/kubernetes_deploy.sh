#!/usr/bin/env bash
# deploy/kubernetes/ (issue 9): every manifest parses (python3-yaml) and has what the
# DaemonSet needs (read-only /var/log, writable data_dir, NODE_NAME from the downward API,
# probes on /healthz and /readyz, non-root with DAC_READ_SEARCH only, RBAC get/list/watch
# of pods and namespaces only); the ConfigMap embeds conf/kubernetes.yaml unchanged, and
# that config passes `mars validate`.
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"

/usr/bin/python3 - "$MARS_SRC" "$TMP/embedded.yaml" <<'PY' || fail "manifest checks"
import glob, sys, yaml
src, out = sys.argv[1], sys.argv[2]
docs = {}
for f in sorted(glob.glob(src + "/deploy/kubernetes/*.yaml")):
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
cm = docs[("ConfigMap", "mars-config")]["data"]["mars.yaml"]
need(cm == open(src + "/conf/kubernetes.yaml").read(), "ConfigMap embeds conf/kubernetes.yaml unchanged")
open(out, "w").write(cm)
PY
for f in "$MARS_SRC/conf/kubernetes.yaml" "$TMP/embedded.yaml"; do
    MARS_DATA_DIR=$TMP/data run_mars 10 validate -c "$f" >"$TMP/v.out" 2>&1
    expect_eq "$MARS_RC" 0 "mars validate $f: $(cat "$TMP/v.out")"
done
pass "manifests parse and check out; conf/kubernetes.yaml validates"
