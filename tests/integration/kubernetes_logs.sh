#!/usr/bin/env bash
# The kubernetes_logs source against a fake node (tests/fakes/k8s_node.py writes
# /var/log/pods as kubelet, containerd and dockerd do) and a fake API server
# (tests/fakes/k8s_api.py). Every event is checked exactly (every field but `file`):
#   1. enrichment: CRI and Docker files, a 40 KiB line split in 16 KiB partial records,
#      a pod created after the start, rotation to 0.log.<stamp> with the older rotated
#      file gzipped (never read), a container restart (1.log), a pod deleted from the API
#      before its last lines are read (still enriched: delete_grace), excluded namespace
#      and mars.io/exclude; 410 Gone after a compaction re-lists; one list+watch per
#      resource, whatever the pods
#   2. API server down at start: lines flow without metadata, then metadata arrives
#   3. 500 pods on one node
#   4. annotations: mars.io/parser (json) with a plain line among the JSON ones,
#      mars.io/parser-<container> (logfmt) and mars.io/exclude-<container>
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"

PY=/usr/bin/python3
NODE_PY=$MARS_SRC/tests/fakes/k8s_node.py
API_PY=$MARS_SRC/tests/fakes/k8s_api.py

start_api() { # start_api DIR [PORT]: sets API_PID, API
    rm -f "$1/api.port"
    "$PY" "$API_PY" --port "${2:-0}" --bookmark 0.3 >"$1/api.port" 2>"$1/api.err" &
    API_PID=$!
    _MARS_PIDS+=("$API_PID")
    wait_until 10 "fake API server port" test -s "$1/api.port"
    API=http://127.0.0.1:$(head -1 "$1/api.port")
}

stat_api() { # stat_api KEY
    "$PY" -c 'import json,sys,urllib.request; print(json.load(urllib.request.urlopen(sys.argv[1]+"/control/stats"))[sys.argv[2]])' "$API" "$1"
}

conf() { # conf DIR API [EXTRA]
    cat >"$1/mars.yaml" <<YAML
data_dir: $1/data
host: {name: node-a}
sources:
  k:
    type: kubernetes_logs
    pods_root: $1/pods
    api_url: $2
    node_name: node-a
    line_timeout: 500ms
    delete_grace: 1m
    exclude_namespaces: [skipme]
    ${3:-}
sinks:
  out: {type: file, inputs: [k], path: $1/out.json, encoding: json}
YAML
}

node() { "$PY" "$NODE_PY" "$@"; }

api_at_least() { # api_at_least KEY N (evaluated at each poll of wait_until)
    (($(stat_api "$1") >= $2))
}

# Every pod change the API server has made so far is in mars's metadata cache, so the log
# lines written next are enriched with it. Running at --log-level debug, mars logs each pod
# list and each pod watch event once it has applied it, with its resourceVersion:
#   listed N /api/v1/pods at resourceVersion RV
#   watch of /api/v1/pods: ADDED|MODIFIED|DELETED at resourceVersion RV
# (the server's rv is the last pod change's wherever this is used: no namespace changes
# after the start).
pods_applied() { # pods_applied DIR
    awk -v want="$(stat_api rv)" '
        / (listed [0-9]+ \/api\/v1\/pods|watch of \/api\/v1\/pods: [A-Z]+) at resourceVersion [0-9]+$/ &&
        $NF + 0 >= want + 0 { ok = 1 }
        END { exit !ok }' "$1/err"
}

out_has() { # out_has DIR N
    (($(lines_of "$1/out.json") >= $2))
}

enrichment() {
    local d=$TMP/enrich
    mkdir -p "$d/pods"
    start_api "$d"
    node namespace "$API" default
    node namespace "$API" skipme
    local m1 m2 m3 mx
    m1=$(node pod "$API" default web-1 uid-web-1 node-a)
    m2=$(node pod "$API" default db-1 uid-db-1 node-a)
    mx=$(node pod "$API" default hidden-1 uid-hidden-1 node-a)
    node pod "$API" default other-1 uid-other-1 node-b >/dev/null # another node's: not listed
    "$PY" - "$API" <<'PY'
import json, sys, urllib.request
pod = {"kind": "Pod", "metadata": {"name": "hidden-1", "namespace": "default", "uid": "uid-hidden-1",
       "annotations": {"mars.io/exclude": "true"}}, "spec": {"nodeName": "node-a", "containers": []},
       "status": {}}
urllib.request.urlopen(urllib.request.Request(sys.argv[1] + "/control/pod", json.dumps(pod).encode(), method="POST"))
PY
    node write "$d/pods" default web-1 uid-web-1 app 0 cri 20 web 40000 "$d/expect" "$m1"
    node write "$d/pods" default db-1 uid-db-1 app 0 docker 20 db 40000 "$d/expect" "$m2"
    node write "$d/pods" skipme x-1 uid-x-1 app 0 cri 5 skipped
    node write "$d/pods" default hidden-1 uid-hidden-1 app 0 cri 5 hidden
    conf "$d" "$API"
    start_mars /dev/null "$d/err" -c "$d/mars.yaml" --log-level debug
    wait_until 20 "first 40 events" out_has "$d" 40
    say "a pod created after the start, rotation with gzip, a restart"
    m3=$(node pod "$API" default late-1 uid-late-1 node-a)
    wait_until 30 "the new pod in mars's cache" pods_applied "$d"
    node write "$d/pods" default late-1 uid-late-1 app 0 cri 10 late 0 "$d/expect" "$m3"
    node rotate "$d/pods" default web-1 uid-web-1 app 0
    node write "$d/pods" default web-1 uid-web-1 app 0 cri 10 web-rot1 0 "$d/expect" "$m1"
    node rotate "$d/pods" default web-1 uid-web-1 app 0
    node write "$d/pods" default web-1 uid-web-1 app 0 cri 10 web-rot2 0 "$d/expect" "$m1"
    node write "$d/pods" default db-1 uid-db-1 app 1 docker 10 db-restart 0 "$d/expect" "$m2"
    wait_until 20 "80 events" out_has "$d" 80
    say "410 Gone: compaction; the pod added after it is known through a new list"
    curl -sf -XPOST "$API/control/compact" >/dev/null
    local m4
    m4=$(node pod "$API" default after-1 uid-after-1 node-a)
    wait_until 10 "a second pod list" api_at_least list_pods 2
    wait_until 10 "the watch after the list" api_at_least watch_pods 2
    wait_until 30 "the new pod, listed or watched, in mars's cache" pods_applied "$d"
    node write "$d/pods" default after-1 uid-after-1 app 0 cri 5 after 0 "$d/expect" "$m4"
    say "a pod deleted before its last lines are read"
    node delete "$API" default late-1
    wait_until 30 "the deletion in mars's cache" pods_applied "$d"
    node write "$d/pods" default late-1 uid-late-1 app 0 cri 5 late-last 0 "$d/expect" "$m3"
    # Nothing more may come (the excluded pods, the .gz file). Instead of a pause for it: one
    # more line, in a new file that only a scan made after every other file exists can find;
    # once it is out, mars has scanned and read past where a wrongly taken file shows up.
    node write "$d/pods" default db-1 uid-db-1 app 2 docker 1 barrier 0 "$d/expect" "$m2"
    local want
    want=$(lines_of "$d/expect")
    wait_until 30 "$want events" out_has "$d" "$want"
    kill -TERM "$MARS_PID"
    wait_exit "$MARS_PID" 15 "$d/err"
    expect_eq "$EXIT_RC" 0 "exit code; $(show_log "$d/err")"
    node check "$d/out.json" "$d/expect" node-a || fail "enriched output differs"
    expect_eq "$(stat_of "$d/err" k errors)" 0 "source errors"
    expect_eq "$(stat_api watch_namespaces)" "$(( $(stat_api list_namespaces) ))" "a namespace watch per list"
    (( $(stat_api list_pods) == 2 )) || fail "pod lists: $(stat_api list_pods) (want 2: start, 410)"
    kill "$API_PID"
    pass "enrichment, rotation, restart, late and deleted pods, exclusion, 410"
}

api_down_at_start() {
    local d=$TMP/down
    mkdir -p "$d/pods"
    start_api "$d"
    local port=${API##*:}
    kill "$API_PID"
    wait "$API_PID" 2>/dev/null || true
    conf "$d" "http://127.0.0.1:$port"
    node write "$d/pods" default web-1 uid-web-1 app 0 cri 10 early 0 "$d/expect" -
    start_mars /dev/null "$d/err" -c "$d/mars.yaml"
    wait_until 20 "lines without metadata" out_has "$d" 10
    local mport
    mport=$(grep -o "\[api\] listening on 127.0.0.1:[0-9]*" "$d/err" | head -n 1 | sed 's/.*://')
    no_meta_counted() {
        curl -sf "http://127.0.0.1:$mport/metrics" |
            grep -q '^mars_kubernetes_events_without_metadata_total{component_id="k"} 10$'
    }
    wait_until 10 "the 10 lines without metadata in /metrics" no_meta_counted
    start_api "$d" "$port"
    node namespace "$API" default
    local m1
    m1=$(node pod "$API" default web-1 uid-web-1 node-a)
    wait_until 40 "the pod list after backoff" api_at_least watch_pods 1
    node write "$d/pods" default web-1 uid-web-1 app 0 cri 10 later 0 "$d/expect" "$m1"
    wait_until 20 "20 events" out_has "$d" 20
    kill -TERM "$MARS_PID"
    wait_exit "$MARS_PID" 15 "$d/err"
    expect_eq "$EXIT_RC" 0 "exit code; $(show_log "$d/err")"
    node check "$d/out.json" "$d/expect" node-a || fail "output differs"
    grep -q "10 lines were shipped without metadata" "$d/err" || fail "unknown lines not counted; $(show_log "$d/err")"
    kill "$API_PID"
    pass "API server down at start: lines flow, metadata later"
}

many_pods() {
    local d=$TMP/many
    mkdir -p "$d/pods"
    start_api "$d"
    node namespace "$API" default
    node many "$API" "$d/pods" node-a 500 4 "$d/expect"
    conf "$d" "$API" "notify_delay: 0s" # reads at once (the default waits 100 ms)
    start_mars /dev/null "$d/err" -c "$d/mars.yaml"
    wait_until 60 "2000 events" out_has "$d" 2000
    kill -TERM "$MARS_PID"
    wait_exit "$MARS_PID" 15 "$d/err"
    expect_eq "$EXIT_RC" 0 "exit code; $(show_log "$d/err")"
    node check "$d/out.json" "$d/expect" node-a || fail "output differs"
    expect_eq "$(stat_api list_pods)" 1 "one pod list for 500 pods"
    kill "$API_PID"
    pass "500 pods on one node"
}

annotations() {
    local d=$TMP/annot
    mkdir -p "$d/pods"
    start_api "$d"
    node namespace "$API" default
    "$PY" - "$API" <<'PY'
import json, sys, urllib.request
pod = {"kind": "Pod", "metadata": {"name": "shop-1", "namespace": "default", "uid": "uid-shop-1",
       "annotations": {"mars.io/parser": "json", "mars.io/parser-side": "logfmt",
                       "mars.io/exclude-noisy": "true"}},
       "spec": {"nodeName": "node-a", "containers": [{"name": "app", "image": "shop:1"},
                {"name": "side", "image": "side:1"}, {"name": "noisy", "image": "n:1"}]},
       "status": {"podIP": "10.0.0.9"}}
urllib.request.urlopen(urllib.request.Request(sys.argv[1] + "/control/pod", json.dumps(pod).encode(), method="POST"))
PY
    local base=$d/pods/default_shop-1_uid-shop-1
    mkdir -p "$base/app" "$base/side" "$base/noisy"
    conf "$d" "$API"
    start_mars /dev/null "$d/err" -c "$d/mars.yaml" --log-level debug
    wait_until 30 "the pod in mars's cache" pods_applied "$d"
    {
        echo '2024-01-01T00:00:01.000000000Z stdout F {"level":"info","message":"hello","n":1}'
        echo '2024-01-01T00:00:02.000000000Z stderr F Starting shop v1.2'
        echo '2024-01-01T00:00:03.000000000Z stdout F {"level":"warn","msg":"no message key"}'
    } >"$base/app/0.log"
    echo '2024-01-01T00:00:04.000000000Z stdout F level=debug msg="side car" took=5ms' >"$base/side/0.log"
    echo '2024-01-01T00:00:05.000000000Z stdout F excluded line' >"$base/noisy/0.log"
    echo '2024-01-01T00:00:06.000000000Z stdout F {"barrier":true}' >>"$base/app/0.log"
    wait_until 30 "5 events" out_has "$d" 5
    local mport
    mport=$(grep -o "\[api\] listening on 127.0.0.1:[0-9]*" "$d/err" | head -n 1 | sed 's/.*://')
    unparsed_counted() {
        curl -sf "http://127.0.0.1:$mport/metrics" |
            grep -q '^mars_parse_unparsed_events_total{component_id="k"} 1$'
    }
    wait_until 10 "the plain line in mars_parse_unparsed_events_total" unparsed_counted
    kill -TERM "$MARS_PID"
    wait_exit "$MARS_PID" 15 "$d/err"
    expect_eq "$EXIT_RC" 0 "exit code; $(show_log "$d/err")"
    "$PY" - "$d/out.json" <<'PY' || fail "annotated pod's events differ: $(cat "$d/out.json")"
import json, sys
got = []
for line in open(sys.argv[1]):
    e = json.loads(line)
    k = e.pop("kubernetes")
    e.pop("file")
    if e.pop("host") != "node-a":
        sys.exit("host is not node-a")
    got.append((k["container"], k.get("parser"), e))
want = [
    ("app", "json", {"timestamp": "2024-01-01T00:00:01.000000000Z", "message": "hello",
                     "stream": "stdout", "level": "info", "n": 1}),
    ("app", "json", {"timestamp": "2024-01-01T00:00:02.000000000Z", "message": "Starting shop v1.2",
                     "stream": "stderr"}),
    ("app", "json", {"timestamp": "2024-01-01T00:00:03.000000000Z", "stream": "stdout",
                     "level": "warn", "msg": "no message key"}),
    ("app", "json", {"timestamp": "2024-01-01T00:00:06.000000000Z", "stream": "stdout",
                     "barrier": True}),
    ("side", "logfmt", {"timestamp": "2024-01-01T00:00:04.000000000Z", "stream": "stdout",
                        "level": "debug", "msg": "side car", "took": "5ms"}),
]
key = lambda t: t[2]["timestamp"]
if sorted(got, key=key) != sorted(want, key=key):
    for g in sorted(got, key=key):
        print("got ", g)
    sys.exit(1)
PY
    kill "$API_PID"
    pass "annotations: pod parser, per-container parser and exclusion"
}

enrichment
api_down_at_start
many_pods
annotations
