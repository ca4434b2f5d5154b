# shellcheck shell=bash disable=SC2034  # sets variables for the scripts that source it
# The setup of conf/node-agent.yaml against local fakes of every peer, shared by
# tests/integration/node_agent.sh and bench/node_agent.sh (source after netns.bash,
# common.bash and fakes.bash; everything runs on loopback in the script's own namespace):
#   na_start_fakes          Elasticsearch, Apollo, Eureka, OAP, the Kubernetes API server and
#                           the `shop` service's health endpoint; sets ES_PORT, AF_PORT,
#                           E_PORT, OAP_PORT, API, SHOP_PORT
#   na_env                  exports the ${VAR}s of conf/node-agent.yaml pointing at them
#                           (NA_NODE is the node name, pods under $TMP/pods, data in $TMP/data)
#   na_pod NAME IP [ANNOTATIONS-JSON]  a Ready pod of namespace shop on NA_NODE, at IP
#   na_log_dir NAME         the pod's container `app` log directory (kubelet layout)
#   na_writer FILE RATE SECS PREFIX  writes CRI lines into FILE at RATE lines/s for SECS
#                           seconds (0: until $TMP/stop-writers exists); every 3rd is plain
#                           text, the others JSON; each line carries PREFIX-<n>; prints the
#                           count written into FILE.count at the end
#   na_apm_load SOCK RATE SECS  RATE seed HTTP entry spans per second for SECS seconds
#   na_exporter ERR         the exporter's port from mars's log (fails while not listening)
#   na_api ERR              the admin API's port
NA_NODE=node-a
NA_CONF=$MARS_SRC/conf/node-agent.yaml

na_start_fakes() {
    start_fake ES es_fake --docs "$TMP/es-docs.json"
    cat >"$TMP/apollo-state.json" <<'JSON'
{"apps": {"shop": {"clusters": {"default": {
    "application": {"db.url": "jdbc:mysql://db/shop", "pool": "8"},
    "datasources.json": "{\"primary\": \"db1\"}"}}}}}
JSON
    start_fake AF apollo_fake --state "$TMP/apollo-state.json" --hold 30
    start_fake E eureka_fake
    start_fake OAP oap_fake --calls "$TMP/oap-calls.json"
    rm -f "$TMP/api.port"
    "$PY" "$FAKES_DIR/k8s_api.py" --port 0 --bookmark 0.3 >"$TMP/api.port" 2>"$TMP/api.err" </dev/null &
    _MARS_PIDS+=("$!")
    wait_until 10 "fake API server port" test -s "$TMP/api.port"
    API=http://127.0.0.1:$(head -1 "$TMP/api.port")
    curl -sf -X POST -d '{"metadata": {"name": "shop"}}' "$API/control/namespace" >/dev/null ||
        fail "cannot create namespace shop at the fake API server"
    # the shop service: GET /health answers 200 (a file served by http.server)
    mkdir -p "$TMP/shop"
    echo UP >"$TMP/shop/health"
    SHOP_PORT=$(closed_port_na)
    "$PY" -m http.server --bind 127.0.0.1 --directory "$TMP/shop" "$SHOP_PORT" >"$TMP/shop.log" 2>&1 </dev/null &
    _MARS_PIDS+=("$!")
    shop_up() { curl -sf "http://127.0.0.1:$SHOP_PORT/health" >/dev/null; }
    wait_until 10 "the shop service" shop_up
}

closed_port_na() {
    "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

na_env() {
    mkdir -p "$TMP/pods" "$TMP/data" "$TMP/apollo"
    export MARS_DATA_DIR=$TMP/data
    export MARS_PODS_ROOT=$TMP/pods
    export KUBERNETES_API_URL=$API
    export NODE_NAME=$NA_NODE
    export SHOP_HEALTH_URL=http://127.0.0.1:$SHOP_PORT/health
    export APOLLO_CONFIG_SERVICE=http://127.0.0.1:$AF_PORT
    export MARS_APM_SOCKET=$TMP/apm.sock
    export ELASTICSEARCH_URL=http://127.0.0.1:$ES_PORT
    export EUREKA_URL=http://127.0.0.1:$E_PORT/eureka
    export HOST_IP=127.0.0.1
    export MARS_APOLLO_DIR=$TMP/apollo
    export SKYWALKING_OAP=127.0.0.1:$OAP_PORT
    export MARS_SERVICE=mars-node
    export MARS_METRICS_ADDRESS=127.0.0.1:0
    export MARS_API_ADDRESS=127.0.0.1:0
}

na_pod() { # na_pod NAME IP [ANNOTATIONS-JSON]
    "$PY" - "$API" "$NA_NODE" "$@" <<'PY'
import json, sys, urllib.request
api, node, name, ip = sys.argv[1:5]
ann = json.loads(sys.argv[5]) if len(sys.argv) > 5 else {}
pod = {"kind": "Pod", "apiVersion": "v1",
       "metadata": {"name": name, "namespace": "shop", "uid": "uid-" + name, "annotations": ann},
       "spec": {"nodeName": node, "containers": [{"name": "app", "image": "app:1"}]},
       "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                  "conditions": [{"type": "Ready", "status": "True"}]}}
urllib.request.urlopen(urllib.request.Request(api + "/control/pod", json.dumps(pod).encode(), method="POST"))
PY
}

na_log_dir() { echo "$TMP/pods/shop_$1_uid-$1/app"; }

na_writer() { # na_writer FILE RATE SECS PREFIX
    "$PY" - "$@" "$TMP/stop-writers" <<'PY' &
import json, os, sys, time
path, rate, secs, prefix, stop = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]
os.makedirs(os.path.dirname(path), exist_ok=True)
n = 0
t0 = time.monotonic()
with open(path, "a", buffering=1) as f:
    while True:
        now = time.monotonic()
        if (secs > 0 and now - t0 >= secs) or (secs <= 0 and os.path.exists(stop)):
            break
        due = int((now - t0) * rate) + 1
        chunk = []
        while n < due:
            n += 1
            ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".000000000Z"
            if n % 3 == 0:
                body = "plain line %s-%d of the shop app" % (prefix, n)
            else:
                body = json.dumps({"level": "info", "seq": n, "msg": "%s-%d" % (prefix, n)})
            chunk.append("%s stdout F %s\n" % (ts, body))
        f.write("".join(chunk))
        time.sleep(min(0.1, 1.0 / rate if rate > 0 else 0.1))
with open(path + ".count", "w") as c:
    c.write("%d\n" % n)
PY
    _MARS_PIDS+=("$!")
}

na_apm_load() { # na_apm_load SOCK RATE SECS
    "$PY" - "$@" <<'PY' &
import socket, sys, time
path, rate, secs = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
rec = ('1{"application_instance":1,"pid":4242,"application_id":1,"version":1,"isEntry":true,'
       '"body":{"url":"http://shop/orders/%d?x=1","startTime":1000,"endTime":1040,"peer":"",'
       '"responseCode":200,"responseSize":1500,"method":"GET","exception":"","component":""}}\n')
t0 = time.monotonic()
n = 0
while time.monotonic() - t0 < secs:
    due = int((time.monotonic() - t0) * rate) + 1
    while n < due:
        n += 1
        try:  # as the SkyAPM extension does: one connection per record
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(2)
            s.connect(path)
            s.sendall((rec % n).encode())
            s.close()
        except OSError:
            pass
    time.sleep(0.02)
PY
    _MARS_PIDS+=("$!")
}

na_exporter() { listen_port "$1" metrics last; }
na_api() { listen_port "$1" api last; }
