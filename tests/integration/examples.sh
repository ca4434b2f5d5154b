#!/usr/bin/env bash
# The three everyday pipelines of conf/examples/, unchanged, validated and run end to end
# against the fakes (only their ${VAR}s point them at this machine); each output checked
# exactly:
#   1 kubernetes-elasticsearch: a pod annotated mars.io/parser: json with dotted label
#     keys -> the documents in the fake Elasticsearch, parsed and dedotted, plain line kept
#   2 nginx-loki: access log lines -> Loki streams with status_class labels, route and
#     hashed client computed by template functions
#   3 app-json-http: JSON app log with msg/time keys, plain lines and debug lines -> ndjson
#     bodies at the collector; the parse counters (a plain line passed on, a time missing,
#     one unreadable) in /metrics
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
source "$(dirname "$0")/lib/fakes.bash"

EX=$MARS_SRC/conf/examples
API_PY=$MARS_SRC/tests/fakes/k8s_api.py

say "every example validates"
for f in "$EX"/*.yaml; do
    MARS_DATA_DIR=$TMP/v "$MARS_BIN" validate -c "$f" >/dev/null ||
        fail "$f does not validate: $(MARS_DATA_DIR=$TMP/v "$MARS_BIN" validate -c "$f" 2>&1)"
done
pass "$(ls "$EX"/*.yaml | wc -l) examples validate"

count_at_least() { (($(lines_of "$1") >= $2)); }

say "1: kubernetes-elasticsearch"
d=$TMP/k8s
mkdir -p "$d/pods/default_shop-1_uid-shop-1/app"
rm -f "$d/api.port"
"$PY" "$API_PY" --port 0 --bookmark 0.3 >"$d/api.port" 2>"$d/api.err" &
_MARS_PIDS+=("$!")
wait_until 10 "fake API server port" test -s "$d/api.port"
API=http://127.0.0.1:$(head -1 "$d/api.port")
"$PY" - "$API" <<'PY'
import json, sys, urllib.request
def post(path, obj):
    urllib.request.urlopen(urllib.request.Request(sys.argv[1] + path, json.dumps(obj).encode(), method="POST"))
post("/control/namespace", {"kind": "Namespace", "metadata": {"name": "default", "uid": "ns-1"}})
post("/control/pod", {"kind": "Pod", "metadata": {"name": "shop-1", "namespace": "default", "uid": "uid-shop-1",
     "labels": {"app": "shop", "app.kubernetes.io/name": "shop"},
     "annotations": {"mars.io/parser": "json"}},
     "spec": {"nodeName": "node-a", "containers": [{"name": "app", "image": "shop:1"}]},
     "status": {"podIP": "10.0.0.7"}})
PY
start_fake ES es_fake --docs "$d/docs"
{
    echo '2024-03-01T10:00:00.000000000Z stdout F {"level":"info","message":"order placed","order":17}'
    echo '2024-03-01T10:00:01.000000000Z stderr F panic: boom'
} >"$d/pods/default_shop-1_uid-shop-1/app/0.log"
MARS_DATA_DIR=$d/data MARS_PODS_ROOT=$d/pods NODE_NAME=node-a MARS_KUBERNETES_API=$API \
    ELASTICSEARCH_URL=http://127.0.0.1:$ES_PORT start_mars /dev/null "$d/err" \
    -c "$EX/kubernetes-elasticsearch.yaml"
wait_until 60 "2 documents" count_at_least "$d/docs" 2
kill -TERM "$MARS_PID"
wait_exit "$MARS_PID" 20 "$d/err"
expect_eq "$EXIT_RC" 0 "exit code; $(show_log "$d/err")"
"$PY" - "$d/docs" <<'PY' || fail "documents differ: $(cat "$d/docs")"
import json, sys
docs = [json.loads(l) for l in open(sys.argv[1])]
got = []
for d in docs:
    s = d["source"]
    k = s.pop("kubernetes")
    s.pop("file")
    if s.pop("host") != "node-a":  # NODE_NAME
        sys.exit("host is not the node's name")
    got.append((d["index"], k["labels"], k["namespace"], k["container"], s))
want_labels = {"app": "shop", "app_kubernetes_io/name": "shop"}
want = [
    ("logs-default-2024.03.01", want_labels, "default", "app",
     {"@timestamp": "2024-03-01T10:00:00.000000000Z", "message": "order placed", "stream": "stdout",
      "level": "info", "order": 17}),
    ("logs-default-2024.03.01", want_labels, "default", "app",
     {"@timestamp": "2024-03-01T10:00:01.000000000Z", "message": "panic: boom", "stream": "stderr"}),
]
got.sort(key=lambda g: g[4]["@timestamp"])
if got != want:
    for g in got:
        print("got", g)
    sys.exit(1)
PY
stop_fake ES
pass "1: parsed by annotation, dedotted labels, the panic line kept, index per namespace and day"

say "2: nginx-loki"
d=$TMP/nginx
mkdir -p "$d/log"
start_fake LOKI loki_fake --entries "$d/entries"
{
    echo '10.0.0.1 - - [01/Mar/2024:10:00:00 +0000] "GET /users/42/orders/7 HTTP/1.1" 200 512 "-" "curl/8"'
    echo '10.0.0.2 - bob [01/Mar/2024:10:00:01 +0000] "POST /users/9 HTTP/1.1" 503 0 "-" "app/1"'
    echo '10.0.0.1 - - [01/Mar/2024:10:00:02 +0000] "GET /health HTTP/1.1" 200 2 "-" "kube-probe/1.29"'
} >"$d/log/access.log"
MARS_DATA_DIR=$d/data NGINX_LOG_DIR=$d/log LOKI_URL=http://127.0.0.1:$LOKI_PORT \
    run_mars 60 -c "$EX/nginx-loki.yaml" --once 2>"$d/err"
expect_eq "$MARS_RC" 0 "exit code; $(show_log "$d/err")"
wait_until 30 "3 Loki entries" count_at_least "$d/entries" 3
"$PY" - "$d/entries" "${NODE_NAME:-$(hostname)}" <<'PY' || fail "Loki entries differ: $(cat "$d/entries")"
import hashlib, json, sys
host = sys.argv[2]
got = []
for l in open(sys.argv[1]):
    e = json.loads(l)
    line = json.loads(e["line"])
    line.pop("file")
    if line.pop("host") != host:
        sys.exit("host differs in the line")
    got.append((e["stream"], line))
got.sort(key=lambda g: g[1]["timestamp"])
def labels(c):
    return {"job": "nginx", "host": host, "status_class": c}
want = [
    (labels("2xx"), {"timestamp": "2024-03-01T10:00:00.000000000Z", "client": None, "request": "GET /users/42/orders/7 HTTP/1.1",
                     "method": "GET", "path": "/users/42/orders/7", "protocol": "HTTP/1.1", "status": 200, "size": 512,
                     "agent": "curl/8", "status_class": "2xx", "route": "/users/:id/orders/:id"}),
    (labels("5xx"), {"timestamp": "2024-03-01T10:00:01.000000000Z", "client": None, "user": "bob", "request": "POST /users/9 HTTP/1.1",
                     "method": "POST", "path": "/users/9", "protocol": "HTTP/1.1", "status": 503, "size": 0,
                     "agent": "app/1", "status_class": "5xx", "route": "/users/:id"}),
    (labels("2xx"), {"timestamp": "2024-03-01T10:00:02.000000000Z", "client": None, "request": "GET /health HTTP/1.1",
                     "method": "GET", "path": "/health", "protocol": "HTTP/1.1", "status": 200, "size": 2,
                     "agent": "kube-probe/1.29", "status_class": "2xx", "route": "/health"}),
]
clients = [g[1]["client"] for g in got]
for g in got:
    g[1]["client"] = None
ok = got == want and len(clients[0]) == 16 and clients[0] == clients[2] and clients[0] != clients[1]
ok = ok and "10.0.0" not in open(sys.argv[1]).read()
if not ok:
    for g in got:
        print("got", g)
    print("clients", clients)
    sys.exit(1)
PY
stop_fake LOKI
pass "2: nginx fields, status_class labels, routes without ids, clients hashed"

say "3: app-json-http"
d=$TMP/app
mkdir -p "$d/log"
start_fake HTTP http_recv --bodies "$d/bodies"
{
    echo 'Starting app v1.2'
    echo '{"time":"2024-03-01T10:00:00Z","level":"INFO","msg":"ready","service":"cart"}'
    echo '{"time":"2024-03-01T10:00:01Z","level":"debug","msg":"cache miss"}'
    echo '{"level":"error","message":"no time here","service":"cart"}'
    echo '{"time":"yesterday","log":"bad time","level":"warn"}'
} >"$d/log/app.log"
# a second -c file adds the admin API, to read the parse counters while it runs
echo 'api: {address: "127.0.0.1:0"}' >"$d/api.yaml"
MARS_DATA_DIR=$d/data APP_LOG_DIR=$d/log COLLECTOR_URL=http://127.0.0.1:$HTTP_PORT/logs \
    start_mars /dev/null "$d/err" -c "$EX/app-json-http.yaml" -c "$d/api.yaml"
wait_until 30 "4 lines at the collector" count_at_least "$d/bodies" 4
wait_until 10 "the admin API" grep -q "\[api\] listening on 127.0.0.1:" "$d/err"
mport=$(grep -o "\[api\] listening on 127.0.0.1:[0-9]*" "$d/err" | head -n 1 | sed 's/.*://')
curl -sf "http://127.0.0.1:$mport/metrics" >"$d/metrics"
for want in 'mars_parse_unparsed_events_total{component_id="json"} 1' \
    'mars_parse_timestamp_misses_total{component_id="json",reason="missing"} 1' \
    'mars_parse_timestamp_misses_total{component_id="json",reason="invalid"} 1'; do
    grep -qxF "$want" "$d/metrics" || fail "no '$want' in /metrics: $(grep mars_parse "$d/metrics")"
done
expect_eq "$(grep -c 'mars_component_errors_total{component_id="json",.*error_type="parse",[^}]*} [1-9]' "$d/metrics")" 0 \
    "parse errors counted for lines that were passed on"
kill -TERM "$MARS_PID"
wait_exit "$MARS_PID" 20 "$d/err"
expect_eq "$EXIT_RC" 0 "exit code; $(show_log "$d/err")"
"$PY" - "$d/bodies" "${NODE_NAME:-$(hostname)}" <<'PY' || fail "collector bodies differ: $(cat "$d/bodies")"
import json, sys
got = [json.loads(l) for l in open(sys.argv[1])]
read_time = [g.pop("timestamp") for g in got]
for g in got:
    g.pop("file")
    if g.pop("host") != sys.argv[2]:
        sys.exit("host differs")
want = [
    {"message": "Starting app v1.2", "service": "unknown", "level": "info"},
    {"message": "ready", "level": "info", "service": "cart"},
    {"message": "no time here", "level": "error", "service": "cart"},
    {"message": "bad time", "level": "warn", "service": "unknown"},
]
if got != want or read_time[1] != "2024-03-01T10:00:00.000000000Z" or read_time[2][:4] == "2024":
    print("got", got, read_time)
    sys.exit(1)
PY
stop_fake HTTP
pass "3: plain line kept, debug dropped, message from msg/log, time from the app or the read time"
