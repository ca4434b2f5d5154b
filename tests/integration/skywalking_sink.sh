#!/usr/bin/env bash
# stdin -> parse json -> skywalking against tests/fakes/oap_fake.py (python3-grpcio, stubs
# built from proto/skywalking/ at start). Every section reads the calls the fake recorded:
#   1 every field of LogData, InstanceProperties and InstancePingPkg; token metadata;
#     registration once per sink with 2 workers; keepAlive repeated
#   2 1000 lines over many batches: each exactly once, in order; many calls in a row, all
#     on one connection (mars's own h2c), and libcurl never mapped into mars
#   3 OAP down at start, then UNAVAILABLE twice, then a hang past the timeout: nothing lost
#   4 wrong token: UNAUTHENTICATED is permanent, dropped, counted, and said clearly
#   5 protocol v6: service, then instance registration (after empty answers), then pings
#     with the instance's own id; logs discarded
#   6 TLS (h2 by ALPN) with the test CA
#   7 transport http against the fake's JSON API
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
source "$(dirname "$0")/lib/fakes.bash"
"$PY" -c 'import grpc, google.protobuf' 2>/dev/null || { echo "skip: python3-grpcio missing (scripts/deps.sh test)"; exit 0; }
command -v protoc >/dev/null || { echo "skip: protoc missing (scripts/deps.sh test)"; exit 0; }

sw_conf() { # sw_conf PORT EXTRA
    cat >"$TMP/mars.yaml" <<EOF
sources:
  in: {type: stdin}
transforms:
  p: {type: parse, inputs: [in], format: json}
sinks:
  sw:
    type: skywalking
    inputs: [p]
    address: 127.0.0.1:$1
    service: shop
    instance: pod-1
    retry: {initial_backoff: 50ms, max_backoff: 300ms}
$2
EOF
}

# check_logs CALLS N : seq 1..N arrived exactly once over OK collect calls, in input order
check_logs() {
    "$PY" - "$@" <<'PYEOF' || fail "recorded logs differ from what was sent"
import json, sys
calls = [json.loads(l) for l in open(sys.argv[1])]
n = int(sys.argv[2])
seqs = []
for c in calls:
    if c["method"].endswith("LogReportService/collect") and c["code"] == "OK":
        for m in c["messages"]:
            seqs.append(json.loads(m["body"]["text"]["text"])["seq"])
if sorted(seqs) != list(range(1, n + 1)):
    dup = len(seqs) - len(set(seqs))
    sys.exit("got %d logs (%d duplicates), want %d" % (len(seqs), dup, n))
if seqs != sorted(seqs):
    sys.exit("logs out of order")
PYEOF
}
oap_calls() { # oap_calls FILE METHOD-SUBSTRING [CODE]
    "$PY" -c 'import json,sys; print(sum(1 for l in open(sys.argv[1]) if sys.argv[2] in json.loads(l)["method"] and (len(sys.argv) < 4 or json.loads(l)["code"] == sys.argv[3])))' "$@"
}
at_least_calls() { (($(oap_calls "$1" "$2" "$3" 2>/dev/null || echo 0) >= ${4:-1})); }

say "1: every field, token, one registration per sink, keepAlive"
start_fake OAP oap_fake --calls "$TMP/calls1" --token s3cret
sw_conf "$OAP_PORT" '    token: s3cret
    layer: GENERAL
    endpoint_field: route
    tags: [level, logger]
    keepalive_interval: 1s'
mkfifo "$TMP/fifo1"
start_mars_in "$TMP/fifo1" "$TMP/out1" "$TMP/err1" --workers 2 -c "$TMP/mars.yaml"
exec 3>"$TMP/fifo1"
echo '{"seq":1,"level":"WARN","logger":"app.db","route":"/orders","trace_id":"t-1","segment_id":"s-1","span_id":4}' >&3
echo '{"seq":2}' >&3
wait_until 20 "two keepAlive calls" at_least_calls "$TMP/calls1" keepAlive OK 2
exec 3>&-
wait_exit "$MARS_PID" 30 "$TMP/err1"
expect_eq "$EXIT_RC" 0 "mars exit code"
"$PY" - "$TMP/calls1" <<'PYEOF' || fail "fields"
import json, sys, time
calls = [json.loads(l) for l in open(sys.argv[1])]
assert all(c["metadata"].get("authentication") == "s3cret" for c in calls), calls
logs = [m for c in calls if c["method"] == "/skywalking.v3.LogReportService/collect" for m in c["messages"]]
assert len(logs) == 2, logs
a, b = logs if json.loads(logs[0]["body"]["text"]["text"])["seq"] == 1 else logs[::-1]
now_ms = time.time() * 1000
assert abs(int(a["timestamp"]) - now_ms) < 120000, a
assert a["service"] == "shop" and a["serviceInstance"] == "pod-1" and a["layer"] == "GENERAL", a
assert a["endpoint"] == "/orders", a
assert a["traceContext"] == {"traceId": "t-1", "traceSegmentId": "s-1", "spanId": 4}, a
assert a["tags"] == {"data": [{"key": "level", "value": "WARN"}, {"key": "logger", "value": "app.db"}]}, a
assert "traceContext" not in b and "tags" not in b and "endpoint" not in b and b["service"] == "shop", b
reports = [c for c in calls if c["method"].endswith("reportInstanceProperties")]
pings = [c for c in calls if c["method"].endswith("keepAlive")]
assert len(reports) == 1, "registered %d times (2 workers, one sink)" % len(reports)
r = reports[0]["messages"][0]
assert r["service"] == "shop" and r["serviceInstance"] == "pod-1" and r["layer"] == "GENERAL", r
props = {}
for kv in r["properties"]:
    props.setdefault(kv["key"], []).append(kv["value"])
for k in ("OS Name", "hostname", "Process No.", "language", "agent_version"):
    assert k in props, (k, props)
assert props["OS Name"] == ["Linux"] and props["language"] == ["c"], props
assert props["agent_version"][0].startswith("mars/"), props
assert reports[0]["t"] <= pings[0]["t"], "keepAlive before the report"
p = pings[0]["messages"][0]
assert p == {"service": "shop", "serviceInstance": "pod-1", "layer": "GENERAL"}, p
assert pings[1]["t"] - pings[0]["t"] >= 0.8, "keepAlive interval"
PYEOF
stop_fake OAP
pass "1: LogData, InstanceProperties, InstancePingPkg fields; one registration; keepAlive every 1s"

say "2: 1000 lines over many batches, exactly once, in order; calls in a row"
N=1000
gen_json_lines "$N" "$TMP/in2"
start_fake OAP oap_fake --calls "$TMP/calls2"
sw_conf "$OAP_PORT" '    batch: {max_events: 50, timeout: 10ms}
    request: {concurrency: 1}'
mkfifo "$TMP/fifo2"
start_mars_in "$TMP/fifo2" "$TMP/out2" "$TMP/err2" --workers 1 -c "$TMP/mars.yaml"
exec 3>"$TMP/fifo2"
# 20 pieces of 50 lines, each once the previous one was collected: 20 calls in a row
for k in $(seq 1 20); do
    sed -n "$(((k - 1) * 50 + 1)),$((k * 50))p" "$TMP/in2" >&3
    wait_until 20 "collect call $k" at_least_calls "$TMP/calls2" LogReportService OK "$k"
done
# h2c to a plain OAP goes without libcurl (core/http2_direct.c): it is never loaded
if grep -q libcurl "/proc/$MARS_PID/maps"; then
    fail "libcurl is mapped into mars for a plain OAP"
fi
exec 3>&-
wait_exit "$MARS_PID" 30 "$TMP/err2"
expect_eq "$EXIT_RC" 0 "mars exit code"
check_logs "$TMP/calls2" "$N"
ncalls=$(oap_calls "$TMP/calls2" LogReportService OK)
((ncalls >= 20)) || fail "only $ncalls collect calls"
npeers=$("$PY" -c 'import json,sys; print(len({json.loads(l)["peer"] for l in open(sys.argv[1]) if "LogReportService" in json.loads(l)["method"]}))' "$TMP/calls2")
expect_eq "$npeers" 1 "connections the collect calls came over"
expect_eq "$(stat_of "$TMP/err2" sw sent)" "$N" "sent events"
stop_fake OAP
pass "2: $N logs in $ncalls calls on one connection, each once, in order; no libcurl"

say "3: OAP down, then UNAVAILABLE, then a hang: nothing lost"
N=300
gen_json_lines "$N" "$TMP/in3"
start_fake OAP oap_fake --calls "$TMP/calls3"
port=$OAP_PORT
stop_fake OAP
echo '[{"method": "LogReportService", "code": "UNAVAILABLE", "times": 2},
       {"method": "LogReportService", "hang": 3, "times": 1}]' >"$TMP/faults3"
sw_conf "$port" '    batch: {max_events: 100}
    request: {timeout: 1s, concurrency: 1}'
start_mars_in "$TMP/in3" "$TMP/out3" "$TMP/err3" -c "$TMP/mars.yaml"
wait_until 20 "failures logged" grep -q 'will retry' "$TMP/err3"
start_fake OAP oap_fake --calls "$TMP/calls3" --port "$port" --faults "$TMP/faults3"
wait_exit "$MARS_PID" 90 "$TMP/err3"
expect_eq "$EXIT_RC" 0 "mars exit code"
# a call that hung past the timeout may have been recorded as OK by the fake after mars
# gave up on it: count the distinct lines
"$PY" - "$TMP/calls3" "$N" <<'PYEOF' || fail "lost logs"
import json, sys
seen = set()
for l in open(sys.argv[1]):
    c = json.loads(l)
    if c["method"].endswith("LogReportService/collect") and c["code"] == "OK":
        seen |= {json.loads(m["body"]["text"]["text"])["seq"] for m in c["messages"]}
want = set(range(1, int(sys.argv[2]) + 1))
assert seen == want, "lost %s" % sorted(want - seen)[:10]
PYEOF
grep -q 'UNAVAILABLE' "$TMP/err3" || fail "UNAVAILABLE not logged: $(show_log "$TMP/err3")"
expect_eq "$(stat_of "$TMP/err3" sw sent)" "$N" "sent events"
stop_fake OAP
pass "3: delivered across the OAP's absence, UNAVAILABLE and a hung call"

say "4: a wrong token is a clear permanent error"
gen_json_lines 20 "$TMP/in4"
start_fake OAP oap_fake --calls "$TMP/calls4" --token right
sw_conf "$OAP_PORT" '    token: wrong'
run_mars 60 -c "$TMP/mars.yaml" <"$TMP/in4" 2>"$TMP/err4"
expect_eq "$MARS_RC" 0 "mars exit code"
grep -q 'does not accept the token (UNAUTHENTICATED' "$TMP/err4" ||
    fail "no clear token error: $(show_log "$TMP/err4")"
expect_eq "$(stat_of "$TMP/err4" sw sent)" 0 "sent events"
expect_eq "$(stat_of "$TMP/err4" sw discarded_unintentional)" 20 "dropped events"
expect_eq "$(oap_calls "$TMP/calls4" LogReportService)" 1 "collect calls (no retry)"
stop_fake OAP
pass "4: UNAUTHENTICATED dropped the batch once, said so, no retry loop"

say "5: protocol v6: register service, instance, then ping with the instance id"
start_fake OAP oap_fake --calls "$TMP/calls5" --v6-pending 1
sw_conf "$OAP_PORT" '    protocol: v6
    keepalive_interval: 1s'
mkfifo "$TMP/fifo5"
start_mars_in "$TMP/fifo5" "$TMP/out5" "$TMP/err5" -c "$TMP/mars.yaml"
exec 3>"$TMP/fifo5"
echo '{"seq":1}' >&3
wait_until 30 "two pings" at_least_calls "$TMP/calls5" doPing OK 2
exec 3>&-
wait_exit "$MARS_PID" 30 "$TMP/err5"
expect_eq "$EXIT_RC" 0 "mars exit code"
"$PY" - "$TMP/calls5" <<'PYEOF' || fail "v6 sequence"
import json, sys
calls = [json.loads(l) for l in open(sys.argv[1])]
seq = [c["method"] for c in calls]
svc = [i for i, m in enumerate(seq) if m == "/Register/doServiceRegister"]
ins = [i for i, m in enumerate(seq) if m == "/Register/doServiceInstanceRegister"]
png = [i for i, m in enumerate(seq) if m == "/ServiceInstancePing/doPing"]
assert len(svc) == 2 and len(ins) == 2 and len(png) >= 2, seq  # one empty answer each
assert svc[-1] < ins[0] and ins[-1] < png[0], seq
assert calls[svc[0]]["messages"][0]["services"][0]["serviceName"] == "shop"
i = calls[ins[-1]]["messages"][0]["instances"][0]
assert i["serviceId"] == 17 and i["instanceUUID"] == "pod-1" and int(i["time"]) > 0, i
keys = {p["key"] for p in i["properties"]}
assert {"os_name", "host_name", "process_no", "language"} <= keys, keys
p = calls[png[0]]["messages"][0]
assert p["serviceInstanceId"] == 42 and p["serviceInstanceUUID"] == "pod-1", p
assert not any("LogReportService" in m for m in seq), seq
PYEOF
expect_eq "$(stat_of "$TMP/err5" sw discarded_intentional)" 1 "logs discarded on v6"
stop_fake OAP
pass "5: v6 service and instance registered after pending answers; pings carry instance id 42"

say "6: TLS (h2 by ALPN)"
sh "$MARS_SRC/tests/support/gen_certs.sh" "$TMP/certs"
gen_json_lines 100 "$TMP/in6"
start_fake OAP oap_fake --calls "$TMP/calls6" --tls-cert "$TMP/certs/server.pem" --tls-key "$TMP/certs/server.key"
sw_conf "$OAP_PORT" "    tls: {enabled: true, ca_file: $TMP/certs/ca.pem, server_name: localhost}"
run_mars 60 -c "$TMP/mars.yaml" <"$TMP/in6" 2>"$TMP/err6"
expect_eq "$MARS_RC" 0 "mars exit code"
check_logs "$TMP/calls6" 100
stop_fake OAP
pass "6: 100 logs over TLS"

say "7: transport http (the OAP's JSON API)"
gen_json_lines 200 "$TMP/in7"
start_fake OAP oap_fake --calls "$TMP/calls7" --http-port-file "$TMP/http7" --token tk
sw_conf "$(cat "$TMP/http7")" '    transport: http
    token: tk
    tags: [ns]
    batch: {max_events: 50}'
run_mars 60 -c "$TMP/mars.yaml" <"$TMP/in7" 2>"$TMP/err7"
expect_eq "$MARS_RC" 0 "mars exit code"
"$PY" - "$TMP/calls7" <<'PYEOF' || fail "http transport"
import json, sys
calls = [json.loads(l) for l in open(sys.argv[1])]
logs = [m for c in calls if c["method"] == "/v3/logs" and c["code"] == "OK" for m in c["messages"]]
seqs = sorted(json.loads(m["body"]["text"]["text"])["seq"] for m in logs)
assert seqs == list(range(1, 201)), "got %d logs" % len(seqs)
m = logs[0]
assert m["service"] == "shop" and m["serviceInstance"] == "pod-1" and m["tags"]["data"][0]["key"] == "ns", m
assert all(c["metadata"].get("authentication") == "tk" for c in calls), calls[0]["metadata"]
PYEOF
stop_fake OAP
pass "7: 200 logs over the JSON API"
