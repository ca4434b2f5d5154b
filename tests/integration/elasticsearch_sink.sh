#!/usr/bin/env bash
# stdin -> parse json -> elasticsearch against tests/fakes/es_fake.py. Every section
# compares what the fake stored with what was sent, per sequence number:
#   1 exact delivery, create + generated ids, gzip, index template, pipeline, headers
#   2 partial bulk failures: item 429/500 resent alone, 400 dropped and counted, 409 on
#     create (id_key, document stored beforehand) counted as delivered
#   3 413: the bulk request is halved until it fits; a single oversized document is
#     dropped and counted
#   4 whole-request 429 with Retry-After: the resend waits at least that long
#   5 peer down at start, then up
#   6 peer killed mid-stream and restarted: nothing lost, nothing stored twice
#   7 slow peer: memory stays bounded while requests wait
#   8 partial failures with request.concurrency 4 (several bulk requests in flight)
#   9 https with a private CA and basic auth; a certificate mars does not trust is refused
#  10 endpoints: a dead node is passed over
#  11 dead_letter: documents refused for good go to a file sink instead of being lost
#  12 dedot: kubernetes label and annotation keys sent with _ for .
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
source "$(dirname "$0")/lib/fakes.bash"

# es_conf PORT EXTRA_YAML : a config reading stdin, parsing JSON, writing to the fake.
es_conf() {
    cat >"$TMP/mars.yaml" <<EOF
sources:
  in: {type: stdin}
transforms:
  p: {type: parse, inputs: [in], format: json}
sinks:
  es:
    type: elasticsearch
    inputs: [p]
    endpoint: http://127.0.0.1:$1
    retry: {initial_backoff: 50ms, max_backoff: 500ms}
$2
EOF
}

# check_docs DOCS N [MISSING_SEQ...] : every seq 1..N except MISSING stored exactly once.
check_docs() {
    "$PY" - "$@" <<'EOF' || fail "stored documents differ from what was sent"
import json, sys
docs, n, missing = sys.argv[1], int(sys.argv[2]), {int(x) for x in sys.argv[3:]}
created = {}
for line in open(docs):
    d = json.loads(line)
    if d["result"] == "created":
        s = d["source"]["seq"]
        created[s] = created.get(s, 0) + 1
want = set(range(1, n + 1)) - missing
lost = sorted(want - set(created))
extra = sorted(set(created) - want)
dups = sorted(s for s, c in created.items() if c > 1)
if lost or extra or dups:
    print("lost %d %s, unexpected %s, stored twice %d %s" % (len(lost), lost[:10], extra[:10], len(dups), dups[:10]))
    sys.exit(1)
EOF
}

# request_items LOG : items sent in all bulk requests answered 200
request_items() {
    "$PY" -c 'import json,sys; print(sum(json.loads(l)["items"] for l in open(sys.argv[1]) if json.loads(l)["status"] == 200))' "$1"
}

say "1: exact delivery with gzip, create and generated ids"
N=20000
gen_json_lines "$N" "$TMP/in1"
start_fake ES es_fake --docs "$TMP/docs1" --requests-log "$TMP/req1"
es_conf "$ES_PORT" '    action: create
    generate_id: true
    compression: gzip
    index: "logs-{{ ns }}-%Y.%m"
    pipeline: mypipe
    headers: {X-Test: yes}
    batch: {max_events: 3000}'
run_mars 60 -c "$TMP/mars.yaml" <"$TMP/in1" 2>"$TMP/err1"
expect_eq "$MARS_RC" 0 "mars exit code"
check_docs "$TMP/docs1" "$N"
expect_eq "$(stat_of "$TMP/err1" es sent)" "$N" "sent events"
"$PY" - "$TMP/req1" "$TMP/docs1" <<'EOF' || fail "request shape"
import json, sys, time
reqs = [json.loads(l) for l in open(sys.argv[1])]
assert all(r["encoding"] == "gzip" and r["pipeline"] == "mypipe" and r["headers"].get("X-Test") == "yes"
           for r in reqs), reqs[0]
assert all(r["wire_bytes"] < r["bytes"] / 3 for r in reqs), "gzip did not compress"
month = time.strftime("%Y.%m", time.gmtime())
for l in open(sys.argv[2]):
    d = json.loads(l)
    assert d["index"] == "logs-ns%d-%s" % (d["source"]["seq"] % 3, month), d
    assert d["source"]["@timestamp"].endswith("Z") and len(d["id"]) == 22, d
EOF
stop_fake ES
pass "1: $N documents stored once each, gzip, templated index"

say "2: partial failures resend only the failed documents"
N=5000
gen_json_lines "$N" "$TMP/in2"
start_fake ES es_fake --docs "$TMP/docs2" --requests-log "$TMP/req2"
fake_script "$ES_PORT" '{"items": [
  {"match": "seq=000100 ", "status": 429, "times": 2},
  {"match": "seq=000200 ", "status": 500, "times": 1},
  {"match": "seq=000300 ", "status": 400, "times": -1},
  {"match": "seq=004000 ", "status": 503, "times": 3}]}'
# a document already there: create answers 409, which counts as delivered
printf '{"create":{"_index":"logs","_id":"id-000050"}}\n{"seq":50,"msg":"stored before"}\n' |
    curl -sf -H 'Content-Type: application/x-ndjson' --data-binary @- "http://127.0.0.1:$ES_PORT/_bulk" >/dev/null
es_conf "$ES_PORT" '    action: create
    id_key: id
    index: logs
    batch: {max_events: 1000}'
run_mars 60 -c "$TMP/mars.yaml" <"$TMP/in2" 2>"$TMP/err2"
expect_eq "$MARS_RC" 0 "mars exit code"
check_docs "$TMP/docs2" "$N" 300
# every document once, plus the resends of the 2 + 1 + 3 retryable failures
expect_eq "$(request_items "$TMP/req2")" $((N + 1 + 6)) "bulk items sent (only failed ones resent)"
expect_eq "$(stat_of "$TMP/err2" es discarded_unintentional)" 1 "documents dropped for good"
expect_eq "$(stat_of "$TMP/err2" es sent)" $((N - 1)) "events delivered (409 included)"
grep -q 'document rejected with status 400 (mapper_parsing_exception)' "$TMP/err2" ||
    fail "no log line for the rejected document: $(show_log "$TMP/err2")"
stop_fake ES
pass "2: only failed items resent, 409 delivered, 400 dropped and counted"

say "3: 413 halves the request; one document too large alone is dropped"
N=4000
gen_json_lines "$N" "$TMP/in3" 100
big=$("$PY" -c 'print("x" * 70000)')
sed -i "2000s/\"msg\":\"/&$big/" "$TMP/in3"
start_fake ES es_fake --docs "$TMP/docs3" --requests-log "$TMP/req3" --max-body 65536
es_conf "$ES_PORT" '    generate_id: true
    action: create
    batch: {max_events: 2000}'
run_mars 60 -c "$TMP/mars.yaml" <"$TMP/in3" 2>"$TMP/err3"
expect_eq "$MARS_RC" 0 "mars exit code"
check_docs "$TMP/docs3" "$N" 2000
n413=$(grep -c '"status":413' "$TMP/req3" || true)
((n413 >= 3)) || fail "expected several 413 answers, got $n413"
expect_eq "$(stat_of "$TMP/err3" es discarded_unintentional)" 1 "oversized document dropped"
stop_fake ES
pass "3: $n413 requests too large were split; the oversized document was dropped"

say "4: 429 with Retry-After is honoured"
N=100
gen_json_lines "$N" "$TMP/in4"
start_fake ES es_fake --docs "$TMP/docs4" --requests-log "$TMP/req4"
fake_script "$ES_PORT" '{"requests": [{"path": "_bulk", "status": 429, "retry_after": "2", "times": 1}]}'
es_conf "$ES_PORT" '    generate_id: true'
run_mars 60 -c "$TMP/mars.yaml" <"$TMP/in4" 2>"$TMP/err4"
check_docs "$TMP/docs4" "$N"
"$PY" - "$TMP/req4" <<'EOF' || fail "Retry-After not honoured"
import json, sys
reqs = [json.loads(l) for l in open(sys.argv[1])]
assert reqs[0]["status"] == 429 and reqs[1]["status"] == 200, reqs
gap = reqs[1]["t"] - reqs[0]["t"]
assert gap >= 1.95, "resent %.3f s after a 429 with Retry-After: 2" % gap
EOF
stop_fake ES
pass "4: resent after Retry-After"

say "5: peer down at start, then up"
N=3000
gen_json_lines "$N" "$TMP/in5"
start_fake ES es_fake --docs "$TMP/docs5"
port=$ES_PORT
stop_fake ES
es_conf "$port" '    generate_id: true
    action: create'
start_mars_in "$TMP/in5" "$TMP/out5" "$TMP/err5" -c "$TMP/mars.yaml"
wait_until 20 "connection failures logged" grep -q 'bulk request to .* failed' "$TMP/err5"
start_fake ES es_fake --docs "$TMP/docs5" --port "$port"
wait_exit "$MARS_PID" 60 "$TMP/err5"
expect_eq "$EXIT_RC" 0 "mars exit code"
check_docs "$TMP/docs5" "$N"
stop_fake ES
pass "5: delivered once the peer came up"

say "6: peer killed mid-stream and restarted"
N=30000
gen_json_lines "$N" "$TMP/in6"
start_fake ES es_fake --docs "$TMP/docs6" --delay 0.05
port=$ES_PORT
es_conf "$port" '    generate_id: true
    action: create
    batch: {max_events: 500}'
start_mars_in "$TMP/in6" "$TMP/out6" "$TMP/err6" -c "$TMP/mars.yaml"
at_least() { (($(lines_of "$1") >= $2)); }
wait_until 30 "a quarter stored" at_least "$TMP/docs6" $((N / 4))
stop_fake ES KILL
sleep 0.3 # mars meets a dead port for a while
start_fake ES es_fake --docs "$TMP/docs6" --port "$port"
wait_exit "$MARS_PID" 90 "$TMP/err6"
expect_eq "$EXIT_RC" 0 "mars exit code"
check_docs "$TMP/docs6" "$N"
grep -q 'bulk request to .* failed' "$TMP/err6" || fail "mars never saw the peer die: $(show_log "$TMP/err6")"
stop_fake ES
pass "6: every document stored once across the peer's crash"

say "7: slow peer, bounded memory"
N=200000
gen_json_lines "$N" "$TMP/in7" 200
start_fake ES es_fake --delay 0.02
es_conf "$ES_PORT" '    buffer: {max_events: 4000}
    batch: {max_events: 2000}'
start_mars_in "$TMP/in7" "$TMP/out7" "$TMP/err7" -c "$TMP/mars.yaml"
max_kb=0
while alive "$MARS_PID"; do
    kb=$(awk '/^VmRSS/ {print $2}' "/proc/$MARS_PID/status" 2>/dev/null || echo 0)
    ((kb > max_kb)) && max_kb=$kb
    sleep 0.1
done
wait_exit "$MARS_PID" 120 "$TMP/err7"
expect_eq "$EXIT_RC" 0 "mars exit code"
expect_eq "$(stat_of "$TMP/err7" es sent)" "$N" "sent events"
input_kb=$(($(stat -c %s "$TMP/in7") / 1024))
# under the input size, so the input cannot have been held whole
if [[ ${MARS_SANITIZED:-} == 1 ]]; then limit_kb=$((256 * 1024)); else limit_kb=$((40 * 1024)); fi
((max_kb < limit_kb)) || fail "RSS peaked at ${max_kb} KiB for ${input_kb} KiB of input"
stop_fake ES
pass "7: RSS peaked at ${max_kb} KiB while ${input_kb} KiB went through a slow peer"

say "8: partial failures with 4 requests in flight"
N=20000
gen_json_lines "$N" "$TMP/in8"
start_fake ES es_fake --docs "$TMP/docs8" --requests-log "$TMP/req8" --delay 0.02
fake_script "$ES_PORT" '{"items": [
  {"match": "seq=001000 ", "status": 429, "times": 3},
  {"match": "seq=012345 ", "status": 503, "times": 2},
  {"match": "seq=015000 ", "status": 400, "times": -1}]}'
es_conf "$ES_PORT" '    action: create
    generate_id: true
    request: {concurrency: 4}
    batch: {max_events: 500}'
run_mars 60 -c "$TMP/mars.yaml" <"$TMP/in8" 2>"$TMP/err8"
expect_eq "$MARS_RC" 0 "mars exit code"
check_docs "$TMP/docs8" "$N" 15000
expect_eq "$(request_items "$TMP/req8")" $((N + 5)) "bulk items sent (only failed ones resent)"
expect_eq "$(stat_of "$TMP/err8" es discarded_unintentional)" 1 "documents dropped for good"
stop_fake ES
pass "8: concurrency 4, only failed items resent"

say "9: https with a private CA and basic auth"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TMP/key.pem" -out "$TMP/cert.pem" -days 1 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null
N=1000
gen_json_lines "$N" "$TMP/in9"
start_fake ES es_fake --docs "$TMP/docs9" --requests-log "$TMP/req9" \
    --tls-cert "$TMP/cert.pem" --tls-key "$TMP/key.pem"
cat >"$TMP/mars.yaml" <<EOF
sources:
  in: {type: stdin}
transforms:
  p: {type: parse, inputs: [in], format: json}
sinks:
  es:
    type: elasticsearch
    inputs: [p]
    endpoint: https://127.0.0.1:$ES_PORT
    generate_id: true
    tls: {ca_file: $TMP/cert.pem}
    auth: {strategy: basic, user: elastic, password: s3cret}
EOF
run_mars 60 -c "$TMP/mars.yaml" <"$TMP/in9" 2>"$TMP/err9"
expect_eq "$MARS_RC" 0 "mars exit code"
check_docs "$TMP/docs9" "$N"
grep -q '"Authorization":"Basic ZWxhc3RpYzpzM2NyZXQ="' "$TMP/req9" || fail "no basic auth header"
# the system store does not know the private CA: refused (and retried), nothing stored
sed -i '/tls:/d' "$TMP/mars.yaml"
printf 'runtime:\n  shutdown_timeout: 1s\n' >>"$TMP/mars.yaml"
: >"$TMP/docs9"
start_mars_in "$TMP/in9" "$TMP/out9" "$TMP/err9b" -c "$TMP/mars.yaml"
wait_until 20 "TLS failure logged" grep -qi 'bulk request to .* failed.*\(certificate\|SSL\)' "$TMP/err9b"
kill -TERM "$MARS_PID"
wait_exit "$MARS_PID" 30 "$TMP/err9b"
expect_eq "$(lines_of "$TMP/docs9")" 0 "documents stored over an untrusted connection"
stop_fake ES
pass "9: https with the private CA and basic auth; untrusted certificate refused"

say "10: several endpoints: a dead one is passed over"
N=2000
gen_json_lines "$N" "$TMP/in10"
start_fake ES es_fake --docs "$TMP/docs10"
dead=$ES_PORT
stop_fake ES
start_fake ES es_fake --docs "$TMP/docs10" --requests-log "$TMP/req10"
es_conf "$ES_PORT" '    generate_id: true
    batch: {max_events: 200}'
sed -i "s|endpoint: http://127.0.0.1:$ES_PORT|endpoints: [http://127.0.0.1:$dead, http://127.0.0.1:$ES_PORT]|" "$TMP/mars.yaml"
run_mars 60 -c "$TMP/mars.yaml" <"$TMP/in10" 2>"$TMP/err10"
expect_eq "$MARS_RC" 0 "mars exit code"
check_docs "$TMP/docs10" "$N"
grep -q "bulk request to http://127.0.0.1:$dead/_bulk.* failed" "$TMP/err10" ||
    fail "the dead endpoint was never tried: $(show_log "$TMP/err10")"
stop_fake ES
pass "10: delivered through the live endpoint"

say "11: documents refused for good go to the dead_letter sink"
N=3000
gen_json_lines "$N" "$TMP/in11"
start_fake ES es_fake --docs "$TMP/docs11"
fake_script "$ES_PORT" '{"items": [
  {"match": "seq=000700 ", "status": 400, "times": -1},
  {"match": "seq=002100 ", "status": 400, "times": -1}]}'
es_conf "$ES_PORT" "    id_key: id
    batch: {max_events: 500}
    dead_letter: dlq
  dlq: {type: file, inputs: [], path: $TMP/dead11, encoding: ndjson}"
run_mars 60 -c "$TMP/mars.yaml" <"$TMP/in11" 2>"$TMP/err11"
expect_eq "$MARS_RC" 0 "mars exit code"
check_docs "$TMP/docs11" "$N" 700 2100
expect_eq "$(lines_of "$TMP/dead11")" 2 "dead letters"
grep -q '"seq":700,' "$TMP/dead11" && grep -q '"seq":2100,' "$TMP/dead11" ||
    fail "the dead letters are not the refused documents: $(cat "$TMP/dead11")"
expect_eq "$(stat_of "$TMP/err11" es discarded_unintentional)" 0 "documents lost"
expect_eq "$(stat_of "$TMP/err11" dlq sent)" 2 "dead letters written"
stop_fake ES
pass "11: the two refused documents are in the dead_letter file, nothing lost"

say "12: dotted label keys are sent dedotted; other dotted keys as they are"
start_fake ES es_fake --docs "$TMP/docs12"
es_conf "$ES_PORT" '    generate_id: true'
printf '%s\n' \
    '{"seq":1,"kubernetes":{"labels":{"app":"web","app.kubernetes.io/name":"web","x":{"a.b":1}},"annotations":{"prometheus.io/port":"9"}},"http.code":200}' \
    '{"seq":2,"kubernetes":{"labels":"not an object"}}' >"$TMP/in12"
run_mars 60 -c "$TMP/mars.yaml" <"$TMP/in12" 2>"$TMP/err12"
expect_eq "$MARS_RC" 0 "mars exit code"
lines_at_least() { test "$(lines_of "$1")" -ge "$2"; }
wait_until 30 "the stored documents" lines_at_least "$TMP/docs12" 2
"$PY" - "$TMP/docs12" "${NODE_NAME:-$(hostname)}" <<'PYEOF' || fail "dedotted documents differ: $(cat "$TMP/docs12")"
import json, sys
got = {}
for line in open(sys.argv[1]):
    s = json.loads(line)["source"]
    s.pop("@timestamp")
    if s.pop("host") != sys.argv[2]:
        sys.exit("host differs")
    got[s["seq"]] = s
want = {
    1: {"seq": 1, "kubernetes": {"labels": {"app": "web", "app_kubernetes_io/name": "web",
                                            "x": {"a_b": 1}},
                                 "annotations": {"prometheus_io/port": "9"}}, "http.code": 200},
    2: {"seq": 2, "kubernetes": {"labels": "not an object"}},
}
if got != want:
    print("got", got)
    sys.exit(1)
PYEOF
es_conf "$ES_PORT" '    generate_id: true
    dedot: []'
run_mars 60 -c "$TMP/mars.yaml" <"$TMP/in12" 2>"$TMP/err12b"
expect_eq "$MARS_RC" 0 "mars exit code (dedot: [])"
wait_until 30 "the second run's documents" lines_at_least "$TMP/docs12" 4
grep -q '"app.kubernetes.io/name":"web","x":{"a.b":1}' "$TMP/docs12" ||
    fail "dedot: [] did not send the keys as they are: $(cat "$TMP/docs12")"
stop_fake ES
pass "12: kubernetes.labels and annotations dedotted at any depth, dedot: [] turns it off"
