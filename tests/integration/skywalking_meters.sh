#!/usr/bin/env bash
# The skywalking sink against tests/fakes/oap_fake.py, beyond skywalking_sink.sh:
#   1 the OAP dies mid-call (the fake's "reset" fault: the connection is reset after the
#     whole LogData stream was read, before any status): mars retries once it is back on
#     the same port, and every line is recorded exactly once, in order, over OK calls
#   2 meters: true with log_to_metric's counter, gauge and histogram: MeterReportService/
#     collectBatch carries every series with its name, labels, single values and the
#     histogram's buckets in SkyWalking's form (lower bounds, counts per bucket, the first
#     from negative infinity)
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
source "$(dirname "$0")/lib/fakes.bash"
"$PY" -c 'import grpc, google.protobuf' 2>/dev/null || { echo "skip: python3-grpcio missing (scripts/deps.sh test)"; exit 0; }
command -v protoc >/dev/null || { echo "skip: protoc missing (scripts/deps.sh test)"; exit 0; }

say "1: the OAP resets the connection mid-call: retried, nothing lost, nothing twice"
N=500
gen_json_lines "$N" "$TMP/in1"
echo '[{"method": "LogReportService", "reset": true, "times": 1}]' >"$TMP/faults1"
start_fake OAP oap_fake --calls "$TMP/calls1" --faults "$TMP/faults1"
port=$OAP_PORT
cat >"$TMP/mars1.yaml" <<YAML
sources:
  in: {type: stdin}
transforms:
  p: {type: parse, inputs: [in], format: json}
sinks:
  sw:
    type: skywalking
    inputs: [p]
    address: 127.0.0.1:$port
    service: shop
    instance: pod-1
    batch: {max_events: 100}
    request: {concurrency: 1, timeout: 5s}
    retry: {initial_backoff: 50ms, max_backoff: 300ms}
YAML
start_mars_in "$TMP/in1" "$TMP/out1" "$TMP/err1" --workers 1 -c "$TMP/mars1.yaml"
dead() { ! kill -0 "$OAP_PID" 2>/dev/null; }
wait_until 30 "the fake OAP to die on its reset fault" dead
wait "$OAP_PID" 2>/dev/null || true
grep -q '"code": "RESET"' "$TMP/calls1" || fail "no call was reset: $(cat "$TMP/calls1")"
start_fake OAP oap_fake --calls "$TMP/calls1" --port "$port"
wait_exit "$MARS_PID" 60 "$TMP/err1"
expect_eq "$EXIT_RC" 0 "mars exit code"
"$PY" - "$TMP/calls1" "$N" <<'PYEOF' || fail "logs after the reset"
import json, sys
calls = [json.loads(l) for l in open(sys.argv[1])]
n = int(sys.argv[2])
logs = [c for c in calls if c["method"].endswith("LogReportService/collect")]
codes = [c["code"] for c in logs]
assert codes.count("RESET") == 1 and set(codes) <= {"OK", "RESET"}, codes
reset = next(c for c in logs if c["code"] == "RESET")
first = [json.loads(m["body"]["text"]["text"])["seq"] for m in reset["messages"]]
assert first and first == list(range(1, len(first) + 1)), "the reset call carried %s" % first[:5]
print("the reset call carried lines 1-%d" % len(first))
seqs = [json.loads(m["body"]["text"]["text"])["seq"]
        for c in logs if c["code"] == "OK" for m in c["messages"]]
assert seqs == list(range(1, n + 1)), "got %d logs over OK calls, %d distinct" % (len(seqs), len(set(seqs)))
PYEOF
grep -q 'will retry' "$TMP/err1" || fail "the failed call was not said: $(show_log "$TMP/err1")"
expect_eq "$(stat_of "$TMP/err1" sw sent)" "$N" "sent events"
expect_eq "$(stat_of "$TMP/err1" sw discarded_unintentional)" 0 "dropped events"
stop_fake OAP
pass "1: the reset call's lines were sent again; $N lines exactly once, in order"

say "2: meters: counter, gauge and histogram from log_to_metric"
# ten requests: status 500 on the 3rd, 6th and 9th; latencies in ms
ms=(1 3 7 12 30 2 8 50 100 4)
for i in "${!ms[@]}"; do
    st=200
    if (((i + 1) % 3 == 0)); then st=500; fi
    printf '{"status":"%s","ms":%s}\n' "$st" "${ms[$i]}"
done >"$TMP/in2"
start_fake OAP oap_fake --calls "$TMP/calls2" --token t0k
cat >"$TMP/mars2.yaml" <<YAML
sources:
  in: {type: stdin}
transforms:
  p: {type: parse, inputs: [in], format: json}
  m:
    type: log_to_metric
    inputs: [p]
    metrics:
      - {type: counter, name: http_requests_total, labels: {status: "{{ status }}"}}
      - {type: gauge, name: last_latency_ms, field: ms}
      - {type: histogram, name: latency_ms, field: ms, buckets: [5, 10, 50]}
sinks:
  sw:
    type: skywalking
    inputs: [m]
    address: 127.0.0.1:$OAP_PORT
    service: shop
    instance: pod-1
    token: t0k
    meters: true
YAML
run_mars 60 --workers 1 -c "$TMP/mars2.yaml" <"$TMP/in2" 2>"$TMP/err2"
expect_eq "$MARS_RC" 0 "mars exit code; $(show_log "$TMP/err2")"
"$PY" - "$TMP/calls2" <<'PYEOF' || fail "meters"
import json, sys, time
calls = [json.loads(l) for l in open(sys.argv[1])]
batches = [c for c in calls if c["method"] == "/skywalking.v3.MeterReportService/collectBatch"]
assert batches and all(c["code"] == "OK" for c in batches), [c["code"] for c in batches]
assert all(c["metadata"].get("authentication") == "t0k" for c in batches)
assert not any("LogReportService" in c["method"] for c in calls), "metric events sent as logs"
data = [d for c in batches for col in c["messages"] for d in col["meterData"]]
assert data[0]["service"] == "shop" and data[0]["serviceInstance"] == "pod-1", data[0]
now_ms = time.time() * 1000
assert all(abs(int(d["timestamp"]) - now_ms) < 120000 for d in data), data
counts, gauges, hist = {}, [], {}
for d in data:
    if "singleValue" in d:
        s = d["singleValue"]
        labels = tuple((l["name"], l["value"]) for l in s.get("labels", []))
        if s["name"] == "http_requests_total":
            counts[labels] = counts.get(labels, 0) + s["value"]
        else:
            assert s["name"] == "last_latency_ms" and labels == (), s
            gauges.append(s["value"])
    else:
        h = d["histogram"]
        assert h["name"] == "latency_ms" and not h.get("labels"), h
        for v in h["values"]:
            key = "-inf" if v.get("isNegativeInfinity") else v.get("bucket", 0)
            hist[key] = hist.get(key, 0) + int(v.get("count", "0"))
assert counts == {(("status", "200"),): 7, (("status", "500"),): 3}, counts
assert gauges and gauges[-1] == 4, gauges
# 1 3 2 4 <= 5; 7 8 in (5, 10]; 12 30 50 in (10, 50]; 100 above 50
assert hist == {"-inf": 4, 5: 2, 10: 3, 50: 1}, hist
print("meter data: %d over %d call(s)" % (len(data), len(batches)))
PYEOF
expect_eq "$(stat_of "$TMP/err2" sw errors)" 0 "sink errors"
stop_fake OAP
pass "2: counter {status=200: 7, 500: 3}, gauge 4, histogram buckets -inf:4 5:2 10:3 50:1"
