#!/usr/bin/env bash
# eureka sink against tests/fakes/eureka_fake.py (two of them, for failover), with a
# health_check on a local HTTP server that starts failing: register (204) and heartbeats;
# GET /eureka/apps shows what a Spring client reads; DOWN within one probe interval and
# back UP, sent by re-registering (never a status override); a forgotten instance is
# registered again on its next heartbeat; the first server down -> the second one used;
# SIGTERM -> DELETE of every instance; percent-encoded user:password@ in a server URL. Short lease (2 s) and renewal (300 ms); every wait
# is on a condition with a generous deadline.
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
source "$(dirname "$0")/lib/fakes.bash"

command -v curl >/dev/null || fail "curl is missing"
free_port() {
    "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# the service mars watches: /health answers 200 while $TMP/www/health exists
mkdir -p "$TMP/www"
echo ok >"$TMP/www/health"
web_port=$(free_port)
"$PY" -m http.server --bind 127.0.0.1 --directory "$TMP/www" "$web_port" >"$TMP/web.log" 2>&1 </dev/null &
_MARS_PIDS+=("$!")
web_up() { curl -sf "http://127.0.0.1:$web_port/health" >/dev/null; }
wait_until 20 "the HTTP server on $web_port" web_up

start_fake EA eureka_fake
start_fake EB eureka_fake
apps() { curl -sf "http://127.0.0.1:$1/eureka/apps"; }
# jq-like reads of the fake with python: instance field of app/id on fake port
inst_field() { # PORT APP ID EXPR
    apps "$1" | "$PY" -c '
import json, sys
doc = json.load(sys.stdin)
for a in doc["applications"]["application"]:
    for i in a["instance"]:
        if a["name"] == sys.argv[1] and i["instanceId"] == sys.argv[2]:
            print(eval(sys.argv[3], {}, {"i": i, "a": a})); sys.exit(0)
print("ABSENT")' "$2" "$3" "$4"
}
reqs() { # PORT METHOD PATH-SUBSTRING -> count
    curl -sf "http://127.0.0.1:$1/_fake/requests" | "$PY" -c '
import json, sys
print(sum(1 for r in json.load(sys.stdin) if r["method"] == sys.argv[1] and sys.argv[2] in r["path"]))' "$2" "$3"
}
status_is() { [[ $(inst_field "$1" "$2" "$3" 'i["status"]') == "$4" ]]; }
absent() { [[ $(inst_field "$1" "$2" "$3" 'i["status"]') == ABSENT ]]; }
at_least() { (($(reqs "$1" "$2" "$3") >= $4)); }

cat >"$TMP/mars.yaml" <<YAML
data_dir: $TMP/data
sources:
  hc:
    type: health_check
    checks:
      - {name: web, type: http, url: "http://127.0.0.1:$web_port/health", interval: 300ms,
         timeout: 1s, healthy_threshold: 1, unhealthy_threshold: 1}
sinks:
  registry:
    type: eureka
    inputs: [hc]
    servers: ["http://127.0.0.1:$EA_PORT/eureka/", "http://127.0.0.1:$EB_PORT/eureka"]
    renewal_interval: 300ms
    lease_duration: 2s
    failback_after: 1h
    instances:
      - {app: billing, ip: 10.0.0.7, port: 8080, host_name: node1, health_check: web,
         metadata: {zone: primary, management.port: "8080"}}
      - {app: static-site, ip: 10.0.0.8, port: 9000, secure_port: 9443, instance_id: site-1}
YAML
run_mars 20 validate -c "$TMP/mars.yaml" >"$TMP/validate.out" 2>&1 || true
((MARS_RC == 0)) || fail "validate: $(cat "$TMP/validate.out")"

start_mars /dev/null "$TMP/mars.err" -c "$TMP/mars.yaml"
say "register and heartbeat"
wait_until 30 "billing registered UP" status_is "$EA_PORT" BILLING node1:billing:8080 UP
wait_until 30 "site-1 registered UP" status_is "$EA_PORT" STATIC-SITE site-1 UP
wait_until 30 "heartbeats" at_least "$EA_PORT" PUT /apps/BILLING/node1:billing:8080 3
# the first registration of billing said STARTING (no health result yet)
first=$(curl -sf "http://127.0.0.1:$EA_PORT/_fake/requests" | "$PY" -c '
import json, sys
print([r["body"]["instance"]["status"] for r in json.load(sys.stdin)
       if r["method"] == "POST" and r["path"].endswith("/BILLING")][0])')
[[ $first == STARTING || $first == UP ]] || fail "first billing registration said $first"

say "what a Spring client sees in GET /eureka/apps"
apps "$EA_PORT" | "$PY" -c '
import json, sys
doc = json.load(sys.stdin)["applications"]
apps = {a["name"]: a for a in doc["application"]}
assert set(apps) == {"BILLING", "STATIC-SITE"}, apps.keys()
i = apps["BILLING"]["instance"][0]
assert i["app"] == "BILLING" and i["hostName"] == "node1" and i["ipAddr"] == "10.0.0.7", i
assert i["port"] == {"$": 8080, "@enabled": "true"}, i["port"]
assert i["securePort"]["@enabled"] == "false", i["securePort"]
assert i["dataCenterInfo"] == {"@class": "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo",
                               "name": "MyOwn"}, i["dataCenterInfo"]
assert i["leaseInfo"]["renewalIntervalInSecs"] == 1 and i["leaseInfo"]["durationInSecs"] == 2, i["leaseInfo"]
assert i["metadata"] == {"zone": "primary", "management.port": "8080"}, i["metadata"]
assert i["vipAddress"] == "billing" and i["homePageUrl"] == "http://10.0.0.7:8080/", i
assert i["healthCheckUrl"].endswith("/health/web"), i["healthCheckUrl"]
assert i["overriddenStatus"] == "UNKNOWN", i
s = apps["STATIC-SITE"]["instance"][0]
assert s["securePort"] == {"$": 9443, "@enabled": "true"}, s["securePort"]
' || fail "GET /eureka/apps is not what a Spring client expects: $(apps "$EA_PORT")"

say "status follows the health check"
rm "$TMP/www/health"
wait_until 30 "billing DOWN" status_is "$EA_PORT" BILLING node1:billing:8080 DOWN
status_is "$EA_PORT" STATIC-SITE site-1 UP || fail "site-1 has no health check and must stay UP"
echo ok >"$TMP/www/health"
wait_until 30 "billing UP again" status_is "$EA_PORT" BILLING node1:billing:8080 UP
(($(reqs "$EA_PORT" PUT /status) == 0)) || fail "mars set a status override"

say "forgotten instance is registered again"
posts=$(reqs "$EA_PORT" POST /apps/STATIC-SITE)
curl -sf -X POST "http://127.0.0.1:$EA_PORT/_fake/forget?app=STATIC-SITE&id=site-1" >/dev/null
wait_until 30 "site-1 registered again" at_least "$EA_PORT" POST /apps/STATIC-SITE $((posts + 1))
wait_until 30 "site-1 back" status_is "$EA_PORT" STATIC-SITE site-1 UP

say "first server down -> second server"
stop_fake EA KILL
wait_until 30 "billing on the second server" status_is "$EB_PORT" BILLING node1:billing:8080 UP
wait_until 30 "site-1 on the second server" status_is "$EB_PORT" STATIC-SITE site-1 UP
wait_until 30 "heartbeats to the second server" at_least "$EB_PORT" PUT /apps/BILLING/ 2
grep -q "failing over to Eureka server http://127.0.0.1:$EB_PORT/eureka" "$TMP/mars.err" ||
    fail "no failover line in the log: $(tail -5 "$TMP/mars.err")"

say "SIGTERM -> DELETE"
kill -TERM "$MARS_PID"
wait_exit "$MARS_PID" 30 "$TMP/mars.err"
((EXIT_RC == 0)) || fail "mars exited $EXIT_RC: $(tail -5 "$TMP/mars.err")"
(($(reqs "$EB_PORT" DELETE /apps/BILLING/node1:billing:8080) == 1)) || fail "no DELETE of billing"
(($(reqs "$EB_PORT" DELETE /apps/STATIC-SITE/site-1) == 1)) || fail "no DELETE of site-1"
absent "$EB_PORT" BILLING node1:billing:8080 || fail "billing still registered"
absent "$EB_PORT" STATIC-SITE site-1 || fail "site-1 still registered"
pass "register, heartbeat, status, re-register, failover, deregister"

say "user:password@ in a server URL is percent-decoded for basic auth"
start_fake EC eureka_fake --user "ops@corp" --password "p:w/d%"
cat >"$TMP/auth.yaml" <<YAML
data_dir: $TMP/data-auth
sources:
  hc:
    type: health_check
    checks:
      - {name: web, type: http, url: "http://127.0.0.1:$web_port/health", interval: 300ms}
sinks:
  registry:
    type: eureka
    inputs: [hc]
    servers: ["http://ops%40corp:p%3Aw%2Fd%25@127.0.0.1:$EC_PORT/eureka"]
    renewal_interval: 300ms
    instances:
      - {app: billing, ip: 10.0.0.7, port: 8080, instance_id: b-1}
YAML
start_mars /dev/null "$TMP/auth.err" -c "$TMP/auth.yaml"
registered_with_auth() {
    curl -sf -u 'ops@corp:p:w/d%' "http://127.0.0.1:$EC_PORT/eureka/apps" | grep -q '"instanceId": *"b-1"'
}
wait_until 30 "billing registered through basic auth" registered_with_auth
kill -TERM "$MARS_PID"
wait_exit "$MARS_PID" 30 "$TMP/auth.err"
((EXIT_RC == 0)) || fail "mars exited $EXIT_RC: $(tail -5 "$TMP/auth.err")"
pass "percent-encoded userinfo authenticates"
