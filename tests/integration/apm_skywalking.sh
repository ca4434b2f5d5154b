#!/usr/bin/env bash
# apm_socket -> skywalking (+ prometheus_exporter) against tests/fakes/oap_fake.py, with a
# client replaying the SkyAPM extension's bytes (tests/fakes/apm_client.py):
#   1 v8: an app the sink does not know gets an empty reply, is registered in the
#     background (reportInstanceProperties, keepAlive) and then gets its names; an app
#     beyond max_services gets empty replies and is counted; SkyAPM v8 segments arrive at
#     the OAP exactly once each with their trace ids, spans, refs, tags and logs; their
#     HTTP entry spans feed http_server_requests_seconds
#     a summary keeps its last summary_window (3) observations for its quantiles
#   2 v6: the app gets the OAP's ids (service 18, instance 43; mars's own are 17 and 42);
#     v6 segments arrive as UpstreamSegment with UniqueId parts and numeric ids; a record
#     whose ids are not dotted numbers is dropped and counted
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
source "$(dirname "$0")/lib/fakes.bash"
"$PY" -c 'import grpc, google.protobuf' 2>/dev/null || { echo "skip: python3-grpcio missing (scripts/deps.sh test)"; exit 0; }
command -v protoc >/dev/null || { echo "skip: protoc missing (scripts/deps.sh test)"; exit 0; }
command -v curl >/dev/null || fail "curl is missing"
CLIENT="$FAKES_DIR/apm_client.py"
SOCK=$TMP/apm.sock
client() { "$PY" "$CLIENT" "$SOCK" "$@"; }
port_of() { grep -o "\[$2\] listening on 127.0.0.1:[0-9]*" "$1" | head -n 1 | sed 's/.*://'; }
listening() { [[ -n $(port_of "$1" prom) && -S $SOCK ]]; }
uuid='[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}'

conf() { # conf OAP-PORT PROTOCOL
    cat >"$TMP/mars.yaml" <<EOF
data_dir: $TMP/data
api: {address: "127.0.0.1:0"}
sources:
  apm: {type: apm_socket, path: "$SOCK", skywalking: sw}
sinks:
  sw:
    type: skywalking
    inputs: [apm]
    address: 127.0.0.1:$1
    service: mars
    instance: pod-1
    protocol: $2
    max_services: 2
    keepalive_interval: 1s
    batch: {timeout: 50ms}
    retry: {initial_backoff: 50ms, max_backoff: 300ms}
  prom: {type: prometheus_exporter, inputs: [apm], address: "127.0.0.1:0", summary_window: 3}
EOF
}
# oap_count CALLS METHOD-SUFFIX [JSON-KEY=VALUE of the first message] : OK calls
oap_count() {
    "$PY" - "$@" <<'PYEOF'
import json, sys
path, suffix = sys.argv[1], sys.argv[2]
want = dict(a.split("=", 1) for a in sys.argv[3:])
n = 0
for l in open(path):
    c = json.loads(l)
    if c["method"].endswith(suffix) and c["code"] == "OK":
        m = c["messages"][0] if c["messages"] else {}
        n += all(str(m.get(k)) == v for k, v in want.items())
print(n)
PYEOF
}
at_least() { # at_least N CALLS METHOD-SUFFIX [KEY=VALUE..]
    local want=$1
    shift
    (($(oap_count "$@" 2>/dev/null || echo 0) >= want))
}
reply_matches() { [[ $(client register "$1" 4242 "$2") =~ $3 ]]; }

# segments FILE VERSION N : N SkyAPM records of that version, segment i with trace t-i
segments() {
    "$PY" - "$@" <<'PYEOF'
import json, sys
path, version, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, "w") as f:
    for i in range(1, n + 1):
        entry = {"tags": {"url": "http://shop/orders/%d?x=1" % i, "status_code": "200"},
                 "spanId": 0, "parentSpanId": -1, "startTime": 1000, "endTime": 1250,
                 "operationName": "/orders/%d" % i, "peer": "", "spanType": 0, "spanLayer": 3,
                 "componentId": 8001, "component": "PHP", "isError": 0,
                 "logs": [{"time": 1010, "data": {"event": "error", "message": "m%d" % i}}]}
        exit_ = {"tags": {"db.statement": "select %d" % i}, "spanId": 1, "parentSpanId": 0,
                 "startTime": 1005, "endTime": 1010, "operationName": "PDO->query",
                 "peer": "db:3306", "spanType": 1, "spanLayer": 1, "componentId": 8003,
                 "component": "PDO", "isError": 1}
        if version == 8:
            entry["refs"] = [{"type": 0, "traceId": "t-%d" % i, "parentTraceSegmentId": "p-%d" % i,
                              "parentSpanId": 3, "parentService": "gw", "parentServiceInstance": "gw-1",
                              "parentEndpoint": "/api", "networkAddress": "10.0.0.1:80"}]
            rec = {"application_instance": 0, "pid": 4242, "application_id": 0, "uuid": "u",
                   "version": 8, "traceId": "t-%d" % i, "service": "shop", "serviceInstance": "pod-1",
                   "segment": {"traceSegmentId": "s-%d" % i, "isSizeLimited": 0,
                               "spans": [entry, exit_]}, "globalTraceIds": []}
        else:
            entry["refs"] = [{"type": 0, "parentTraceSegmentId": "7.8.%d" % i, "parentSpanId": 2,
                              "parentApplicationInstanceId": 5, "networkAddress": "#10.0.0.2:80",
                              "entryApplicationInstanceId": 6, "entryServiceName": "#/entry",
                              "parentServiceName": "33"}]
            rec = {"application_instance": 43, "pid": 4242, "application_id": 18, "uuid": "u",
                   "version": 6, "segment": {"traceSegmentId": "1.2.%d" % i, "isSizeLimited": 1,
                                             "spans": [entry, exit_]},
                   "globalTraceIds": ["4.5.%d" % i]}
        f.write("1" + json.dumps(rec, separators=(",", ":")) + "\n")
PYEOF
}

start_all() { # start_all PROTOCOL
    rm -f "$SOCK"
    start_fake OAP oap_fake --calls "$TMP/calls-$1"
    conf "$OAP_PORT" "$1"
    err="$TMP/mars-$1.err"
    start_mars /dev/null "$err" -c "$TMP/mars.yaml"
    wait_until 20 "mars listens" listening "$err"
    api=127.0.0.1:$(port_of "$err" api)
    exp=127.0.0.1:$(port_of "$err" prom)
}
stop_all() {
    kill -INT "$MARS_PID"
    wait_exit "$MARS_PID" 30 "$err"
    expect_eq "$EXIT_RC" 0 "mars exit code"
    stop_fake OAP
}

say "1: v8: background registration, max_services, segments forwarded"
start_all v8
first=$(client register shop 4242 8)
[[ $first == "<empty>" ]] || fail "an unknown app got '$first', want an empty reply at once"
wait_until 20 "shop's names" reply_matches shop 8 "^shop,pod-1,$uuid$"
wait_until 20 "shop's keepAlive" at_least 1 "$TMP/calls-v8" keepAlive service=shop serviceInstance=pod-1
expect_eq "$(oap_count "$TMP/calls-v8" reportInstanceProperties service=shop serviceInstance=pod-1)" 1 \
    "reports of shop"
# max_services 2: shop and a are registered, b is one too many
client register a 1 8 >/dev/null
wait_until 20 "a's names" reply_matches a 8 "^a,pod-1,$uuid$"
for _ in 1 2 3; do
    [[ $(client register b 1 8) == "<empty>" ]] || fail "app b beyond max_services got a reply"
done
overflow() { curl -sf "http://$api/metrics" | grep -qxF 'mars_skywalking_services_overflow_total{component_id="sw"} 3'; }
wait_until 10 "overflow counted" overflow
expect_eq "$(oap_count "$TMP/calls-v8" reportInstanceProperties service=b)" 0 "reports of b"
pass "1: v8 background registration: empty reply, then 'shop,pod-1,uuid'; b over max_services counted"

N=5
segments "$TMP/seg8.txt" 8 "$N"
client fresh "$TMP/seg8.txt" >/dev/null
segs() {
    "$PY" - "$TMP/calls-v8" <<'PYEOF'
import json, sys
print(sum(len(c["messages"]) for c in map(json.loads, open(sys.argv[1]))
          if c["method"] == "/skywalking.v3.TraceSegmentReportService/collect" and c["code"] == "OK"))
PYEOF
}
enough() { (($(segs) >= N)); }
wait_until 20 "$N segments at the OAP" enough
sleep 1 # nothing more may come
"$PY" - "$TMP/calls-v8" "$N" <<'PYEOF' || fail "v8 segments differ from what was sent"
import json, sys
n = int(sys.argv[2])
got = [m for c in map(json.loads, open(sys.argv[1]))
       if c["method"] == "/skywalking.v3.TraceSegmentReportService/collect" and c["code"] == "OK"
       for m in c["messages"]]
assert sorted(g["traceSegmentId"] for g in got) == sorted("s-%d" % i for i in range(1, n + 1)), got
for g in got:
    i = g["traceSegmentId"][2:]
    assert g["traceId"] == "t-" + i and g["service"] == "shop" and g["serviceInstance"] == "pod-1", g
    e, x = g["spans"]
    assert e.get("spanId", 0) == 0 and e["parentSpanId"] == -1 and e["startTime"] == "1000", e
    assert e["endTime"] == "1250" and e["operationName"] == "/orders/" + i, e
    assert e.get("spanType", "Entry") == "Entry" and e["spanLayer"] == "Http", e
    assert e["componentId"] == 8001 and not e.get("isError"), e
    assert e["refs"] == [{"traceId": "t-" + i, "parentTraceSegmentId": "p-" + i, "parentSpanId": 3,
                          "parentService": "gw", "parentServiceInstance": "gw-1",
                          "parentEndpoint": "/api", "networkAddressUsedAtPeer": "10.0.0.1:80"}], e
    assert {t["key"]: t["value"] for t in e["tags"]} == {"url": "http://shop/orders/%s?x=1" % i,
                                                          "status_code": "200"}, e
    assert e["logs"] == [{"time": "1010", "data": [{"key": "event", "value": "error"},
                                                   {"key": "message", "value": "m" + i}]}], e
    assert x["spanId"] == 1 and x.get("parentSpanId", 0) == 0 and x["spanType"] == "Exit", x
    assert x["spanLayer"] == "Database" and x["peer"] == "db:3306" and x["isError"] is True, x
    assert x["tags"] == [{"key": "db.statement", "value": "select " + i}], x
PYEOF
scrape_has() { curl -sf "http://$exp/metrics" | grep -qxF "$1"; }
S='exception="None",method="UNKNOWN",outcome="SUCCESS",status="200",uri="/orders/{id}"'
wait_until 10 "SkyAPM entry spans in the histogram" scrape_has "http_server_requests_seconds_count{$S} $N"
scrape_has "http_server_requests_seconds_sum{$S} 1.25" || fail "entry span durations: $(curl -sf "http://$exp/metrics" | grep http_server)"
# summary_window 3: the quantiles see 30, 40, 50; _sum and _count see all five
for v in 10 20 30 40 50; do
    echo "2[RIG:BIZ]={\"name\":\"wait_seconds\",\"type\":\"summary\",\"val\":$v,\"tag\":{\"q\":\"a\"},\"config\":{\"percentile\":[0,0.5,0.99]}}"
done >"$TMP/sum.txt"
client one "$TMP/sum.txt" >/dev/null
wait_until 10 "the summary" scrape_has 'wait_seconds_count{q="a"} 5'
curl -sf "http://$exp/metrics" >"$TMP/m.txt"
for want in 'wait_seconds{q="a",quantile="0"} 30' 'wait_seconds{q="a",quantile="0.5"} 40' \
    'wait_seconds{q="a",quantile="0.99"} 50' 'wait_seconds_sum{q="a"} 150'; do
    grep -qxF "$want" "$TMP/m.txt" || fail "missing '$want' in: $(grep wait_seconds "$TMP/m.txt")"
done
stop_all
expect_eq "$(segs)" "$N" "segments at the OAP"
pass "1: summary quantiles over the last 3 observations"
pass "1: $N v8 segments forwarded once each, with spans, refs, tags and logs; entry spans in the histogram"

say "2: v6: the OAP's ids for the app, UpstreamSegment"
start_all v6
wait_until 30 "mars's own v6 registration" grep -q 'registered with the OAP (v6): service id 17, instance id 42' "$err"
first=$(client register shop 4242 6)
[[ $first == "<empty>" ]] || fail "an unknown app got '$first', want an empty reply at once"
wait_until 30 "shop's ids" reply_matches shop 6 "^18,43,$uuid$"
wait_until 20 "shop's ping" at_least 1 "$TMP/calls-v6" doPing serviceInstanceId=43
expect_eq "$(oap_count "$TMP/calls-v6" doServiceRegister)" 4 "service registrations (mars, shop: each after one empty answer)"
N=3
segments "$TMP/seg6.txt" 6 "$N"
sed 's/"traceSegmentId":"1.2.1"/"traceSegmentId":"not.an.id"/' "$TMP/seg6.txt" | head -n 1 >"$TMP/bad6.txt"
client fresh "$TMP/bad6.txt" >/dev/null
client fresh "$TMP/seg6.txt" >/dev/null
segs6() {
    "$PY" - "$TMP/calls-v6" <<'PYEOF'
import json, sys
print(sum(len(c["messages"]) for c in map(json.loads, open(sys.argv[1]))
          if c["method"] == "/TraceSegmentReportService/collect" and c["code"] == "OK"))
PYEOF
}
enough6() { (($(segs6) >= N)); }
wait_until 20 "$N v6 segments at the OAP" enough6
stop_all
expect_eq "$(segs6)" "$N" "v6 segments at the OAP"
expect_eq "$(stat_of "$err" sw discarded_unintentional)" 1 "v6 records with ids that are no numbers"
"$PY" - "$TMP/calls-v6" "$N" <<'PYEOF' || fail "v6 segments differ from what was sent"
import json, sys
n = int(sys.argv[2])
got = [m for c in map(json.loads, open(sys.argv[1]))
       if c["method"] == "/TraceSegmentReportService/collect" and c["code"] == "OK"
       for m in c["messages"]]
ids = sorted(g["segmentObject"]["traceSegmentId"]["idParts"] for g in got)
assert ids == sorted([["1", "2", str(i)] for i in range(1, n + 1)]), ids
for g in got:
    s = g["segmentObject"]
    i = s["traceSegmentId"]["idParts"][2]
    assert g["globalTraceIds"] == [{"idParts": ["4", "5", i]}], g
    assert s["serviceId"] == 18 and s["serviceInstanceId"] == 43 and s["isSizeLimited"] is True, s
    e, x = s["spans"]
    assert e["refs"] == [{"parentTraceSegmentId": {"idParts": ["7", "8", i]}, "parentSpanId": 2,
                          "parentServiceInstanceId": 5, "networkAddress": "10.0.0.2:80",
                          "entryServiceInstanceId": 6, "entryEndpoint": "/entry",
                          "parentEndpointId": 33}], e
    assert e["spanLayer"] == 3 and e["component"] == "PHP" and e["componentId"] == 8001, e
    assert x["spanType"] == 1 and x["peer"] == "db:3306" and x["isError"] is True, x
PYEOF
pass "2: v6 app ids 18,43; $N UpstreamSegments with UniqueId parts and numeric ids; a bad one counted"
