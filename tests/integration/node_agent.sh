#!/usr/bin/env bash
# conf/node-agent.yaml, THE SHIPPED FILE, against local fakes of every peer at once, in a
# network namespace of its own (the setup is tests/integration/lib/node_agent.bash, shared
# with bench/node_agent.sh). For 60 s and more, with traffic on every input (CRI lines of a
# pod, JSON and plain; APM registrations, seed HTTP spans, a SkyAPM segment and a business
# metric; the shop check's probes; an Apollo release mid-run; the API server's pods):
#   1. Elasticsearch gets the log lines with their pod's metadata and parsed JSON fields;
#   2. Eureka has the static `shop` instance UP and the annotated pod's instance; the logs,
#      eureka and iptables share one list+watch of pods at the API server;
#   3. the exporter serves mars_health_check_up, http_server_requests histograms, the
#      iptables series of the managed rules and of the pod (namespace, pod labels), the
#      business metric and mars's own metrics;
#   4. the Apollo files hold the release's content, and the mid-run release's after it;
#   5. the OAP got mars's registration and the segment;
#   (and, all peers being plain, libcurl is never loaded);
#   6. SIGHUP with a second -c file the test changes: the reload is taken, no second
#      register POST for the kept instances, the managed rules keep their handles;
#   7. every line written reaches Elasticsearch; then SIGTERM: exit 0, nothing lost in the
#      drain, the Eureka instances are DELETEd, table inet mars is gone, the Apollo files
#      are intact.
set -euo pipefail
source "$(dirname "$0")/lib/netns.bash"
source "$(dirname "$0")/lib/common.bash"
source "$(dirname "$0")/lib/fakes.bash"
source "$(dirname "$0")/lib/apollo.bash"
source "$(dirname "$0")/lib/node_agent.bash"
need_netfilter_tools
command -v curl >/dev/null || fail "curl is missing"
"$PY" -c 'import grpc, google.protobuf' 2>/dev/null || { echo "skip: python3-grpcio missing (scripts/deps.sh test)"; exit 77; }
RUN_SECS=${NODE_AGENT_SECS:-60}
RATE=40 # log lines per second; modest, so the ASan build keeps up
[[ -n ${MARS_SANITIZED:-} ]] && RATE=10

na_start_fakes
na_env
WEB='{"eureka.mars.io/app": "web", "eureka.mars.io/port": "8080"}'
na_pod web-1 10.99.0.5 "$WEB"
LOG=$(na_log_dir web-1)/0.log
mkdir -p "$(dirname "$LOG")"

# the second -c file: what the test changes before SIGHUP
cat >"$TMP/extra.yaml" <<YAML
sinks:
  app_config_json: {type: apollo_files, inputs: [apollo], dir: "$TMP/apollo-json", format: json}
YAML
"$MARS_BIN" validate -c "$NA_CONF" -c "$TMP/extra.yaml" >"$TMP/validate.out" 2>&1 ||
    fail "the shipped config does not validate: $(cat "$TMP/validate.out")"

ERR=$TMP/mars.err
start_mars /dev/null "$ERR" -c "$NA_CONF" -c "$TMP/extra.yaml"
T_START=$SECONDS
up() { alive "$MARS_PID" || fail "mars exited: $(show_log "$ERR")"; na_exporter "$ERR" >/dev/null && na_api "$ERR" >/dev/null; }
wait_until 60 "mars's exporter and admin API listen" up
EXP=127.0.0.1:$(na_exporter "$ERR")
ADMIN=127.0.0.1:$(na_api "$ERR")
na_writer "$LOG" "$RATE" 0 line
say "mars runs conf/node-agent.yaml; $RATE log lines/s into $LOG"

# ---- helpers ----
scrape() { curl -sf "http://$EXP/metrics" >"$TMP/m.txt"; }
scrape_has() { scrape && grep -qE "$1" "$TMP/m.txt"; }
apps() { curl -sf "http://127.0.0.1:$E_PORT/eureka/apps"; }
status_is() { # APP ID STATUS
    [[ $(apps | "$PY" -c '
import json, sys
for a in json.load(sys.stdin)["applications"]["application"]:
    for i in a["instance"]:
        if a["name"] == sys.argv[1] and i["instanceId"] == sys.argv[2]:
            print(i["status"]); sys.exit(0)
print("ABSENT")' "$1" "$2") == "$3" ]]
}
reqs() { # METHOD PATH-SUBSTRING -> count
    curl -sf "http://127.0.0.1:$E_PORT/_fake/requests" | "$PY" -c '
import json, sys
print(sum(1 for r in json.load(sys.stdin) if r["method"] == sys.argv[1] and sys.argv[2] in r["path"]))' "$1" "$2"
}
rules() { nft -a list table inet mars 2>/dev/null || true; }
has_rule() { rules | grep -qF "comment \"$1\""; }
handle_of() { rules | grep -F "comment \"$1\"" | sed 's/.*# handle //'; }
es_has() { # es_has TEXT: a document whose source holds TEXT
    grep -qF -- "$1" "$TMP/es-docs.json" 2>/dev/null
}
oap_count() { # METHOD-SUFFIX [KEY=VALUE of a message]
    "$PY" - "$TMP/oap-calls.json" "$@" <<'PY'
import json, sys
path, suffix = sys.argv[1], sys.argv[2]
want = dict(a.split("=", 1) for a in sys.argv[3:])
n = 0
try:
    for l in open(path):
        c = json.loads(l)
        if c["method"].endswith(suffix) and c["code"] == "OK":
            n += sum(all(str(m.get(k)) == v for k, v in want.items()) for m in c["messages"] or [{}])
except FileNotFoundError:
    pass
print(n)
PY
}
oap_has() { (($(oap_count "$@") >= 1)); }
client() { "$PY" "$FAKES_DIR/apm_client.py" "$MARS_APM_SOCKET" "$@"; }
reply_matches() { [[ $(client register "$1" 4242 8) =~ $2 ]]; }
A=$MARS_APOLLO_DIR/shop/default
SHOP_ID=$(hostname):shop:8080 # the default instance id: host name, app, port

# ---- 1. logs ----
say "1: the log lines reach Elasticsearch with their pod's metadata and parsed JSON fields"
wait_until 60 "a JSON line in Elasticsearch" es_has '"msg":"line-1"'
wait_until 60 "a plain line in Elasticsearch" es_has 'plain line line-3 of the shop app'
"$PY" - "$TMP/es-docs.json" <<'PY' || fail "documents in Elasticsearch: $(head -n 3 "$TMP/es-docs.json")"
import json, sys
docs = [json.loads(l) for l in open(sys.argv[1])]
j = [d for d in docs if d["source"].get("msg") == "line-1"]
assert j, "no parsed document for line-1"
s = j[0]["source"]
assert s["level"] == "info" and s["seq"] == 1, s
k = s["kubernetes"]
flat = json.dumps(k)
assert "web-1" in flat and "shop" in flat and "uid-web-1" in flat and '"app"' in flat, k
assert j[0]["index"].startswith("logs-"), j[0]["index"]
p = [d for d in docs if "plain line line-3 " in json.dumps(d["source"])]
assert p and "kubernetes" in p[0]["source"], p
PY
pass "1: JSON lines parsed, plain lines passed, every one with kubernetes metadata"

# ---- 2. eureka ----
say "2: Eureka has the static shop instance UP and the annotated pod's"
wait_until 60 "shop UP in Eureka" status_is SHOP "$SHOP_ID" UP
wait_until 60 "the pod web-1 in Eureka" status_is WEB 10.99.0.5:web:8080 UP
stat_api() { curl -sf "$API/control/stats" | "$PY" -c 'import json,sys; print(json.load(sys.stdin).get(sys.argv[1], 0))' "$1"; }
expect_eq "$(stat_api list_pods)" 1 "pod lists at the API server (one watch for logs, eureka, iptables)"
expect_eq "$(stat_api watch_pods)" 1 "pod watches at the API server"
pass "2: shop (health check) and web-1 (pod annotation) registered UP; one pod watch for the three"

# ---- 3. APM and 5. the OAP ----
say "3: APM records: registration, seed HTTP spans, a SkyAPM segment, a business metric"
uuid='[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}'
wait_until 60 "mars's own registration at the OAP" oap_has reportInstanceProperties service=mars-node
client register shop 4242 8 >/dev/null
wait_until 60 "shop's names from the OAP" reply_matches shop "^shop,[^,]+,$uuid$"
cat >"$TMP/apm.txt" <<'EOF'
1{"application_instance":1,"pid":4242,"application_id":1,"version":1,"isEntry":true,"body":{"url":"http://shop/orders/123?x=1","startTime":1000,"endTime":1040,"peer":"","responseCode":200,"responseSize":1500,"method":"GET","exception":"","component":""}}
2[RIG:BIZ]={"name":"orders","type":"count","val":2,"tag":{"shop":"a"}}
EOF
"$PY" - "$TMP/seg.txt" <<'PY'
import json, sys
entry = {"tags": {"url": "http://shop/pay/1", "status_code": "200"}, "spanId": 0, "parentSpanId": -1,
         "startTime": 1000, "endTime": 1100, "operationName": "/pay/1", "peer": "", "spanType": 0,
         "spanLayer": 3, "componentId": 8001, "component": "PHP", "isError": 0}
rec = {"application_instance": 0, "pid": 4242, "application_id": 0, "uuid": "u", "version": 8,
       "traceId": "t-node-agent", "service": "shop", "serviceInstance": "pod-1",
       "segment": {"traceSegmentId": "s-node-agent", "isSizeLimited": 0, "spans": [entry]},
       "globalTraceIds": []}
open(sys.argv[1], "w").write("1" + json.dumps(rec, separators=(",", ":")) + "\n")
PY
client fresh "$TMP/apm.txt" >/dev/null
client fresh "$TMP/seg.txt" >/dev/null
wait_until 60 "the segment at the OAP" oap_has TraceSegmentReportService/collect traceSegmentId=s-node-agent
pass "5: the OAP got mars's registration (mars-node) and the segment"

say "3: the exporter serves every input's series"
S='exception="None",method="GET",outcome="SUCCESS",status="200",uri="/orders/\{id\}"'
wait_until 60 "the seed span's histogram" scrape_has "^http_server_requests_seconds_bucket\{$S,le=\"0.05\"\} 1$"
wait_until 60 "the segment's entry span in the histogram" scrape_has '^http_server_requests_seconds_count\{.*uri="/pay/'
wait_until 60 "the business metric" scrape_has '^orders_total\{shop="a"\} 2$'
wait_until 60 "mars_health_check_up of shop" scrape_has '^mars_health_check_up\{.*check="shop".*\} 1$'
wait_until 60 "the managed rules' series" scrape_has '^mars_iptables_packets_total\{.*rule="dns-out"'
scrape_has '^mars_iptables_packets_total\{.*rule="apiserver-out"' || fail "no apiserver-out series: $(grep iptables "$TMP/m.txt")"
pod_series() { scrape_has "^mars_iptables_bytes_total\{.*namespace=\"shop\".*pod=\"web-1\".*rule=\"pod:shop/web-1:$1\"" ||
    scrape_has "^mars_iptables_bytes_total\{.*rule=\"pod:shop/web-1:$1\".*namespace=\"shop\".*pod=\"web-1\""; }
wait_until 60 "the pod's in series" pod_series in
pod_series out || fail "no out series of the pod: $(grep iptables "$TMP/m.txt")"
wait_until 60 "mars's own metrics (internal_metrics)" scrape_has '^mars_[a-z_]+\{.*component_id="app_json"'
has_rule "pod:shop/web-1:in" || fail "no pod rule in table inet mars: $(rules)"
pass "3: health, HTTP histograms, business metric, iptables (managed and pod) and mars's own metrics"

# ---- 4. apollo ----
say "4: Apollo files, then a release published mid-run"
wait_until 60 "the apollo files" test -f "$A/datasources.json" -a -f "$A/application.properties"
file_is "$A/application.properties" $'db.url=jdbc\\:mysql\\://db/shop\npool=8' ||
    fail "application.properties: $(cat "$A/application.properties")"
file_is "$A/datasources.json" '{"primary": "db1"}' || fail "datasources.json: $(cat "$A/datasources.json")"
[[ $(stat -c %a "$A/application.properties") == 640 ]] || fail "mode $(stat -c %a "$A/application.properties"), want 640"
held() { (($(fake_stat "$AF_PORT" polls_held) >= 1)); }
wait_until 60 "a held long poll" held
curl -sf -X POST "http://127.0.0.1:$AF_PORT/_fake/publish" \
    --data-binary '{"app":"shop","ns":"application","configs":{"db.url":"jdbc:mysql://db2/shop","pool":"16"}}' >/dev/null ||
    fail "cannot publish at the Apollo fake"
published() { file_is "$A/application.properties" $'db.url=jdbc\\:mysql\\://db2/shop\npool=16'; }
wait_until 60 "the mid-run release in the file" published
pass "4: apollo files written (mode 0640) and updated by the mid-run release"

# ---- 60 s with traffic on every input ----
apm_traffic() { client fresh "$TMP/apm.txt" >/dev/null; }
ran_long_enough() {
    apm_traffic
    ((SECONDS - T_START >= RUN_SECS))
}
wait_until $((RUN_SECS + 120)) "${RUN_SECS} s of traffic" ran_long_enough
alive "$MARS_PID" || fail "mars exited: $(show_log "$ERR")"
scrape
n_orders=$(awk '/^orders_total\{shop="a"\}/ {print $2}' "$TMP/m.txt")
((n_orders >= 4)) || fail "orders_total is $n_orders after the traffic"
# every peer here is plain http:// or h2c: nothing needs libcurl (core/http_direct.c,
# core/http2_direct.c), which would map OpenSSL's init and ~25 libraries
! grep -q libcurl "/proc/$MARS_PID/maps" || fail "libcurl is mapped though every peer is plain"
pass "ran $((SECONDS - T_START)) s with traffic on every input; libcurl never loaded"

# ---- 6. SIGHUP ----
say "6: SIGHUP with a changed second config file"
posts_shop=$(reqs POST /apps/SHOP)
posts_web=$(reqs POST /apps/WEB)
((posts_shop >= 1 && posts_web >= 1)) || fail "register POSTs: shop $posts_shop, web $posts_web"
h_dns=$(handle_of dns-out)
h_api=$(handle_of apiserver-out)
h_pod=$(handle_of "pod:shop/web-1:in")
[[ -n $h_dns && -n $h_api && -n $h_pod ]] || fail "handles missing: $(rules)"
cat >>"$TMP/extra.yaml" <<YAML
  void: {type: blackhole, inputs: [demo]}
sources:
  demo: {type: demo, rate: 5}
YAML
"$MARS_BIN" validate -c "$NA_CONF" -c "$TMP/extra.yaml" >"$TMP/validate.out" 2>&1 ||
    fail "the changed config does not validate: $(cat "$TMP/validate.out")"
kill -HUP "$MARS_PID"
wait_until 60 "the reload" grep -q 'configuration reloaded from' "$ERR"
# the listeners of the new configuration bind new free ports (127.0.0.1:0)
relistened() { (($(grep -c '\[api\] listening on' "$ERR") >= 2)); }
wait_until 60 "the new admin API" relistened
ADMIN=127.0.0.1:$(na_api "$ERR")
EXP=127.0.0.1:$(na_exporter "$ERR")
demo_runs() { curl -sf "http://$ADMIN/metrics" | grep -q 'component_id="void"'; }
wait_until 60 "the added demo -> blackhole pair runs" demo_runs
wait_until 60 "the registrations taken over" grep -q 'reload: took over 2 registered instances' "$ERR"
puts=$(reqs PUT /apps/SHOP/)
# a renewal after the reload shows the new sink took the instances over
renewed() { (($(reqs PUT /apps/SHOP/) > puts)); }
wait_until 90 "a shop heartbeat after the reload" renewed
expect_eq "$(reqs POST /apps/SHOP)" "$posts_shop" "register POSTs of shop across the reload"
expect_eq "$(reqs POST /apps/WEB)" "$posts_web" "register POSTs of web-1 across the reload"
expect_eq "$(reqs DELETE /apps/)" 0 "DELETEs across the reload"
expect_eq "$(handle_of dns-out)" "$h_dns" "handle of dns-out after SIGHUP"
expect_eq "$(handle_of apiserver-out)" "$h_api" "handle of apiserver-out after SIGHUP"
expect_eq "$(handle_of "pod:shop/web-1:in")" "$h_pod" "handle of the pod's rule after SIGHUP"
es_has '"msg":"line-' || fail "no lines in Elasticsearch"
pass "6: reload taken, no second register, managed and pod rules kept their handles"

# ---- 7. SIGTERM ----
say "7: SIGTERM"
touch "$TMP/stop-writers"
wait_until 30 "the writer's count" test -s "$LOG.count"
written=$(cat "$LOG.count")
app_before=$(cat "$A/application.properties")
ds_before=$(cat "$A/datasources.json")
# every line written reaches Elasticsearch; SIGTERM stops reading (the design: lines not read
# yet stay in their files behind the checkpoint), so the lines are waited for before it
all_delivered() {
    "$PY" - "$TMP/es-docs.json" "$written" >"$TMP/delivered.txt" 2>&1 <<'PY'
import json, re, sys
want = int(sys.argv[2])
seen = set()
for l in open(sys.argv[1]):
    s = json.loads(l)["source"]
    m = re.search(r"line-(\d+)", s.get("msg", "") or s.get("message", ""))
    if m:
        seen.add(int(m.group(1)))
missing = [n for n in range(1, want + 1) if n not in seen]
if missing:
    sys.exit("%d of %d lines missing, first %s" % (len(missing), want, missing[:10]))
print("all %d lines delivered" % want)
PY
}
wait_until 60 "all $written lines in Elasticsearch" all_delivered
kill -TERM "$MARS_PID"
wait_exit "$MARS_PID" 60 "$ERR"
expect_eq "$EXIT_RC" 0 "exit code; $(show_log "$ERR")"
all_delivered || fail "lines missing in Elasticsearch after SIGTERM: $(cat "$TMP/delivered.txt")"
(($(reqs DELETE "/apps/SHOP/$SHOP_ID") >= 1)) || fail "no DELETE of the shop instance"
(($(reqs DELETE /apps/WEB/10.99.0.5:web:8080) >= 1)) || fail "no DELETE of the pod's instance"
status_is SHOP "$SHOP_ID" ABSENT || fail "shop still registered"
nft list tables | grep -qx 'table inet mars' && fail "table inet mars is still there after SIGTERM"
expect_eq "$(cat "$A/application.properties")" "$app_before" "application.properties after exit"
expect_eq "$(cat "$A/datasources.json")" "$ds_before" "datasources.json after exit"
file_is "$TMP/apollo-json/shop/default/application.json" '{"db.url":"jdbc:mysql://db2/shop","pool":"16"}' ||
    fail "the second file's apollo_files: $(cat "$TMP/apollo-json/shop/default/application.json")"
pass "7: exit 0; all $written lines in Elasticsearch; instances deleted; table inet mars gone; apollo files intact"
say "total $((SECONDS - T_START)) s"
