#!/usr/bin/env bash
# eureka sink `pods` against the fake Kubernetes API server (tests/fakes/k8s_api.py) and
# the fake Eureka server (tests/fakes/eureka_fake.py):
#   1. one pod watch shared by kubernetes_logs and eureka (one list and one watch of pods
#      at the fake API server);
#   2. a pod annotated eureka.mars.io/app is registered UP at its pod IP with the default
#      instance id <ip>:<app>:<port> and its metadata annotations (GET /eureka/apps shows
#      what a Spring client reads); one that is not annotated, or on another node, is not;
#      one whose annotated health check fails is DOWN though Ready;
#   3. not Ready -> DOWN, Ready again -> UP;
#   4. SIGHUP with the same instances (pods and a static one): no second register POST
#      (heartbeats go on); a static instance the new configuration drops is DELETEd;
#   5. deletion timestamp -> OUT_OF_SERVICE at once; pod deleted -> DELETE within seconds;
#   6. SIGTERM -> DELETE of what is left;
#   7. a eureka sink alone starts the watch with its own `pods` options; a reload that
#      removes the sink deregisters its instances.
# Every wait is on a condition with a generous deadline.
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
source "$(dirname "$0")/lib/fakes.bash"

command -v curl >/dev/null || fail "curl is missing"
API_PY=$MARS_SRC/tests/fakes/k8s_api.py

rm -f "$TMP/api.port"
"$PY" "$API_PY" --port 0 --bookmark 0.3 >"$TMP/api.port" 2>"$TMP/api.err" </dev/null &
_MARS_PIDS+=("$!")
wait_until 10 "fake API server port" test -s "$TMP/api.port"
API=http://127.0.0.1:$(head -1 "$TMP/api.port")
stat_api() { curl -sf "$API/control/stats" | "$PY" -c 'import json,sys; print(json.load(sys.stdin).get(sys.argv[1], 0))' "$1"; }

start_fake E eureka_fake
apps() { curl -sf "http://127.0.0.1:$E_PORT/eureka/apps"; }
inst_field() { # APP ID EXPR
    apps | "$PY" -c '
import json, sys
doc = json.load(sys.stdin)
for a in doc["applications"]["application"]:
    for i in a["instance"]:
        if a["name"] == sys.argv[1] and i["instanceId"] == sys.argv[2]:
            print(eval(sys.argv[3], {}, {"i": i, "a": a})); sys.exit(0)
print("ABSENT")' "$1" "$2" "$3"
}
reqs() { # METHOD PATH-SUBSTRING -> count
    curl -sf "http://127.0.0.1:$E_PORT/_fake/requests" | "$PY" -c '
import json, sys
print(sum(1 for r in json.load(sys.stdin) if r["method"] == sys.argv[1] and sys.argv[2] in r["path"]))' "$1" "$2"
}
status_is() { [[ $(inst_field "$1" "$2" 'i["status"]') == "$3" ]]; }
absent() { [[ $(inst_field "$1" "$2" 'i["status"]') == ABSENT ]]; }
at_least() { (($(reqs "$1" "$2") >= $3)); }

# pod NAME NODE IP READY [PHASE] [DELETING] [ANNOTATIONS-JSON]: added or modified
pod() {
    "$PY" - "$API" "$@" <<'PY'
import json, sys, urllib.request
api, name, node, ip, ready = sys.argv[1:6]
phase = sys.argv[6] if len(sys.argv) > 6 else "Running"
deleting = len(sys.argv) > 7 and sys.argv[7] == "deleting"
ann = json.loads(sys.argv[8]) if len(sys.argv) > 8 else {}
meta = {"name": name, "namespace": "default", "uid": "uid-" + name, "annotations": ann}
if deleting:
    meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
pod = {"kind": "Pod", "apiVersion": "v1", "metadata": meta,
       "spec": {"nodeName": node, "containers": [{"name": "app", "image": "app:1"}]},
       "status": {"phase": phase, "podIP": ip, "podIPs": [{"ip": ip}],
                  "conditions": [{"type": "Initialized", "status": "True"},
                                 {"type": "Ready", "status": "True" if ready == "ready" else "False"}]}}
urllib.request.urlopen(urllib.request.Request(api + "/control/pod", json.dumps(pod).encode(), method="POST"))
PY
}
BILLING='{"eureka.mars.io/app": "billing", "eureka.mars.io/port": "8080", "eureka.mars.io/metadata.zone": "a", "eureka.mars.io/metadata.version": "1.2"}'
WEB='{"eureka.mars.io/app": "web", "eureka.mars.io/port": "80", "eureka.mars.io/health-check": "dead", "eureka.mars.io/instance-id": "web-1"}'
curl -sf -X POST -d '{"metadata": {"name": "default"}}' "$API/control/namespace" >/dev/null
pod billing-1 node-a 10.1.0.5 ready Running live "$BILLING"
pod web-1 node-a 10.1.0.6 ready Running live "$WEB"
pod plain-1 node-a 10.1.0.7 ready
pod elsewhere-1 node-b 10.2.0.5 ready Running live "$BILLING"
closed_port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

conf() { # conf STATIC(yes|no)
    local static='instances: [{app: keep, ip: 10.0.0.9, port: 9000, instance_id: keep-1}]'
    [[ $1 == yes ]] && static='instances: [{app: keep, ip: 10.0.0.9, port: 9000, instance_id: keep-1}, {app: static-site, ip: 10.0.0.8, port: 9000, instance_id: site-1}]'
    cat >"$TMP/mars.yaml" <<YAML
data_dir: $TMP/data
sources:
  k:
    type: kubernetes_logs
    pods_root: $TMP/pods
    api_url: $API
    node_name: node-a
  hc:
    type: health_check
    checks:
      - {name: dead, type: tcp, address: "127.0.0.1:$closed_port", interval: 300ms, timeout: 1s,
         healthy_threshold: 1, unhealthy_threshold: 1}
sinks:
  logs: {type: blackhole, inputs: [k]}
  registry:
    type: eureka
    inputs: [hc]
    servers: ["http://127.0.0.1:$E_PORT/eureka"]
    renewal_interval: 300ms
    lease_duration: 60s
    pods: {api_url: "$API", node_name: node-a}
    $static
YAML
}
mkdir -p "$TMP/pods"
conf yes
run_mars 20 validate -c "$TMP/mars.yaml" >"$TMP/validate.out" 2>&1 || true
((MARS_RC == 0)) || fail "validate: $(cat "$TMP/validate.out")"
start_mars /dev/null "$TMP/mars.err" -c "$TMP/mars.yaml"

say "annotated pods registered at their IPs"
B_ID=10.1.0.5:billing:8080
wait_until 30 "billing registered UP" status_is BILLING "$B_ID" UP
wait_until 30 "web registered DOWN (its health check fails)" status_is WEB web-1 DOWN
wait_until 30 "static site-1 registered" status_is STATIC-SITE site-1 UP
wait_until 30 "static keep-1 registered" status_is KEEP keep-1 UP
apps | "$PY" -c '
import json, sys
doc = json.load(sys.stdin)["applications"]
apps = {a["name"]: a for a in doc["application"]}
assert set(apps) == {"BILLING", "WEB", "STATIC-SITE", "KEEP"}, apps.keys()
assert len(apps["BILLING"]["instance"]) == 1, "the pod of node-b is not ours"
i = apps["BILLING"]["instance"][0]
assert i["instanceId"] == "10.1.0.5:billing:8080" and i["ipAddr"] == "10.1.0.5", i
assert i["hostName"] == "10.1.0.5" and i["app"] == "BILLING" and i["vipAddress"] == "billing", i
assert i["port"] == {"$": 8080, "@enabled": "true"} and i["securePort"]["@enabled"] == "false", i
assert i["metadata"] == {"zone": "a", "version": "1.2"}, i["metadata"]
assert i["homePageUrl"] == "http://10.1.0.5:8080/", i["homePageUrl"]
assert i["healthCheckUrl"] == "http://10.1.0.5:8080/actuator/health", i["healthCheckUrl"]
assert i["dataCenterInfo"]["name"] == "MyOwn" and i["overriddenStatus"] == "UNKNOWN", i
w = apps["WEB"]["instance"][0]
assert w["instanceId"] == "web-1" and w["ipAddr"] == "10.1.0.6", w
' || fail "GET /eureka/apps is not what a Spring client expects: $(apps)"
pass "registered at pod IPs, not the unannotated or other node's pods"

say "one pod watch for kubernetes_logs and eureka"
[[ $(stat_api list_pods) == 1 ]] || fail "pods listed $(stat_api list_pods) times, want 1"
[[ $(stat_api watch_pods) == 1 ]] || fail "pods watched $(stat_api watch_pods) times, want 1"
grep -q 'watching pods of node node-a' "$TMP/mars.err" || fail "no watch start in the log"
(($(grep -c 'watching pods of node node-a' "$TMP/mars.err") == 1)) || fail "more than one watch started"
pass "one list and one watch of pods"

say "readiness"
pod billing-1 node-a 10.1.0.5 notready Running live "$BILLING"
wait_until 30 "billing DOWN" status_is BILLING "$B_ID" DOWN
pod billing-1 node-a 10.1.0.5 ready Running live "$BILLING"
wait_until 30 "billing UP again" status_is BILLING "$B_ID" UP
(($(reqs PUT /status) == 0)) || fail "mars set a status override"

say "SIGHUP with the same pods and without site-1"
posts_b=$(reqs POST /apps/BILLING)
posts_w=$(reqs POST /apps/WEB)
posts_k=$(reqs POST /apps/KEEP)
conf no
kill -HUP "$MARS_PID"
wait_until 30 "the reload" grep -q 'configuration reloaded from' "$TMP/mars.err"
wait_until 30 "site-1 deleted" at_least DELETE /apps/STATIC-SITE/site-1 1
absent STATIC-SITE site-1 || fail "site-1 still registered"
puts=$(reqs PUT "/apps/BILLING/$B_ID")
wait_until 30 "heartbeats after the reload" at_least PUT "/apps/BILLING/$B_ID" $((puts + 3))
wait_until 30 "the new watch" grep -q 'took over' "$TMP/mars.err"
expect_eq "$(reqs POST /apps/BILLING)" "$posts_b" "register POSTs of billing across the reload"
expect_eq "$(reqs POST /apps/WEB)" "$posts_w" "register POSTs of web across the reload"
expect_eq "$(reqs POST /apps/KEEP)" "$posts_k" "register POSTs of the static keep-1 across the reload"
(($(reqs DELETE /apps/KEEP) == 0)) || fail "keep-1 was deleted by the reload"
(($(reqs DELETE /apps/BILLING) == 0)) || fail "billing was deleted by the reload"
status_is BILLING "$B_ID" UP || fail "billing is not UP after the reload"
pass "reload kept the pods' registrations, deleted the dropped one"

say "terminating -> OUT_OF_SERVICE, deleted -> DELETE"
pod billing-1 node-a 10.1.0.5 ready Running deleting "$BILLING"
wait_until 30 "billing OUT_OF_SERVICE" status_is BILLING "$B_ID" OUT_OF_SERVICE
curl -sf -X DELETE "$API/control/pod/default/billing-1" >/dev/null
wait_until 10 "billing DELETEd" at_least DELETE "/apps/BILLING/$B_ID" 1
absent BILLING "$B_ID" || fail "billing still registered after its pod is gone"
pass "terminating and deleted pods"

say "SIGTERM -> DELETE"
kill -TERM "$MARS_PID"
wait_exit "$MARS_PID" 30 "$TMP/mars.err"
((EXIT_RC == 0)) || fail "mars exited $EXIT_RC: $(tail -5 "$TMP/mars.err")"
(($(reqs DELETE /apps/WEB/web-1) == 1)) || fail "no DELETE of web-1"
(($(reqs DELETE /apps/KEEP/keep-1) == 1)) || fail "no DELETE of keep-1"
absent WEB web-1 || fail "web-1 still registered"
pass "deregistered at SIGTERM"

say "eureka alone starts the pod watch"
lists=$(stat_api list_pods)
cat >"$TMP/alone.yaml" <<YAML
data_dir: $TMP/data-alone
sources:
  hc:
    type: health_check
    checks: [{name: dead, type: tcp, address: "127.0.0.1:$closed_port", interval: 1s}]
sinks:
  registry:
    type: eureka
    inputs: [hc]
    servers: ["http://127.0.0.1:$E_PORT/eureka"]
    renewal_interval: 300ms
    pods: {api_url: "$API", node_name: node-a, token_file: $TMP/no-token}
YAML
pod billing-2 node-a 10.1.0.9 ready Running live "$BILLING"
start_mars /dev/null "$TMP/alone.err" -c "$TMP/alone.yaml"
wait_until 30 "billing-2 registered UP" status_is BILLING 10.1.0.9:billing:8080 UP
expect_eq "$(stat_api list_pods)" "$((lists + 1))" "pod lists of the eureka-only mars"
pass "a eureka sink alone watches the pods with its own options"

say "a reload without the sink deregisters what it registered"
cat >"$TMP/alone.yaml" <<YAML
data_dir: $TMP/data-alone
sources:
  hc:
    type: health_check
    checks: [{name: dead, type: tcp, address: "127.0.0.1:$closed_port", interval: 1s}]
sinks:
  none: {type: blackhole, inputs: [hc]}
YAML
kill -HUP "$MARS_PID"
wait_until 30 "billing-2 DELETEd" at_least DELETE /apps/BILLING/10.1.0.9:billing:8080 1
absent BILLING 10.1.0.9:billing:8080 || fail "billing-2 still registered"
grep -q 'its sink is gone from the configuration' "$TMP/alone.err" || fail "no log of the leftover"
kill -TERM "$MARS_PID"
wait_exit "$MARS_PID" 30 "$TMP/alone.err"
((EXIT_RC == 0)) || fail "mars exited $EXIT_RC: $(tail -5 "$TMP/alone.err")"
pass "a removed sink's instances are deleted after the reload"
