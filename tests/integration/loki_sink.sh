#!/usr/bin/env bash
# stdin -> parse json -> loki against tests/fakes/loki_fake.py (which enforces per-stream
# time order like Loki before 2.4). Every section compares the entries the fake recorded
# with what was sent, per sequence number:
#   1 exact delivery: streams by label templates, lines in input order within each
#     stream with strictly increasing times, gzip, tenant header, json lines without the
#     label fields
#   2 400 is permanent: the push is dropped and counted; later pushes go on
#   3 500 then 429 with Retry-After: retried, the resend waits at least Retry-After
#   4 peer down at start, then up; killed mid-stream and restarted
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
source "$(dirname "$0")/lib/fakes.bash"

loki_conf() {
    cat >"$TMP/mars.yaml" <<EOF
sources:
  in: {type: stdin}
transforms:
  p: {type: parse, inputs: [in], format: json}
sinks:
  lk:
    type: loki
    inputs: [p]
    endpoint: http://127.0.0.1:$1
    retry: {initial_backoff: 50ms, max_backoff: 500ms}
    labels: {namespace: "{{ ns }}", job: app}
$2
EOF
}

# check_entries ENTRIES N MODE [MISSING...] : every seq 1..N except MISSING arrived once,
# in its stream {namespace="ns<seq%3>", job="app"}, in input order within the stream.
# MODE json: the line is the event as JSON without the ns field; text: the message.
check_entries() {
    "$PY" - "$@" <<'EOF' || fail "recorded entries differ from what was sent"
import json, sys
path, n, mode, missing = sys.argv[1], int(sys.argv[2]), sys.argv[3], {int(x) for x in sys.argv[4:]}
seen, last = {}, {}
for line in open(path):
    e = json.loads(line)
    if mode == "json":
        ev = json.loads(e["line"])
        assert "ns" not in ev and "id" in ev, ev
        seq = ev["seq"]
    else:
        seq = int(e["line"].split("seq=")[1][:6])
    assert e["labels"] == '{job="app", namespace="ns%d"}' % (seq % 3), e
    if seq in seen:
        sys.exit("seq %d arrived twice" % seq)
    seen[seq] = True
    assert seq > last.get(e["labels"], 0) or mode == "any", "seq %d after %d in %s" % (seq, last[e["labels"]], e["labels"])
    last[e["labels"]] = seq
want = set(range(1, n + 1)) - missing
lost = sorted(want - set(seen))
if lost or set(seen) - want:
    sys.exit("lost %d %s, unexpected %s" % (len(lost), lost[:10], sorted(set(seen) - want)[:10]))
EOF
}

say "1: exact delivery, streams by labels, time order, gzip, tenant"
N=20000
gen_json_lines "$N" "$TMP/in1"
start_fake LK loki_fake --entries "$TMP/ent1" --requests-log "$TMP/req1"
loki_conf "$LK_PORT" '    tenant_id: team-a
    encoding: json
    remove_label_fields: true
    batch: {max_events: 3000}'
run_mars 60 -c "$TMP/mars.yaml" <"$TMP/in1" 2>"$TMP/err1"
expect_eq "$MARS_RC" 0 "mars exit code"
check_entries "$TMP/ent1" "$N" json
expect_eq "$(stat_of "$TMP/err1" lk sent)" "$N" "sent events"
"$PY" - "$TMP/req1" "$TMP/ent1" <<'EOF' || fail "push shape"
import json, sys
reqs = [json.loads(l) for l in open(sys.argv[1])]
assert all(r["status"] == 204 and r["encoding"] == "gzip" and r["tenant"] == "team-a" and r["streams"] == 3
           for r in reqs), reqs[0]
assert all(r["wire_bytes"] < r["bytes"] / 3 for r in reqs), "gzip did not compress"
last = {}
for l in open(sys.argv[2]):
    e = json.loads(l)
    assert e["tenant"] == "team-a"
    # strictly increasing per stream: Loki would keep one of two equal (time, line) entries
    assert int(e["ts"]) > last.get(e["labels"], 0), (e, last.get(e["labels"]))
    last[e["labels"]] = int(e["ts"])
EOF
stop_fake LK
pass "1: $N entries in 3 streams, in order, gzip, tenant header"

say "2: 400 is permanent: dropped and counted"
N=3000
gen_json_lines "$N" "$TMP/in2"
start_fake LK loki_fake --entries "$TMP/ent2" --requests-log "$TMP/req2"
fake_script "$LK_PORT" '{"requests": [{"path": "push", "status": 400, "times": 1,
  "body": "entry too far behind"}]}'
loki_conf "$LK_PORT" '    batch: {max_events: 1000}'
run_mars 60 -c "$TMP/mars.yaml" <"$TMP/in2" 2>"$TMP/err2"
expect_eq "$MARS_RC" 0 "mars exit code"
dropped=$(stat_of "$TMP/err2" lk discarded_unintentional)
sent=$(stat_of "$TMP/err2" lk sent)
((dropped > 0)) || fail "nothing counted as dropped"
expect_eq $((dropped + sent)) "$N" "sent + dropped"
expect_eq "$(lines_of "$TMP/ent2")" "$sent" "entries recorded"
grep -q 'HTTP 400 (permanent.*entry too far behind' "$TMP/err2" ||
    fail "Loki's reason not logged: $(show_log "$TMP/err2")"
stop_fake LK
pass "2: one push of $dropped entries dropped and counted, $sent delivered"

say "3: 500 retried, 429 Retry-After honoured"
N=500
gen_json_lines "$N" "$TMP/in3"
start_fake LK loki_fake --entries "$TMP/ent3" --requests-log "$TMP/req3"
fake_script "$LK_PORT" '{"requests": [{"path": "push", "status": 500, "times": 1},
  {"path": "push", "status": 429, "retry_after": "2", "times": 1}]}'
loki_conf "$LK_PORT" ''
run_mars 60 -c "$TMP/mars.yaml" <"$TMP/in3" 2>"$TMP/err3"
expect_eq "$MARS_RC" 0 "mars exit code"
check_entries "$TMP/ent3" "$N" text
"$PY" - "$TMP/req3" <<'EOF' || fail "retries"
import json, sys
reqs = [json.loads(l) for l in open(sys.argv[1])]
assert [r["status"] for r in reqs[:3]] == [500, 429, 204], reqs
gap = reqs[2]["t"] - reqs[1]["t"]
assert gap >= 1.95, "resent %.3f s after a 429 with Retry-After: 2" % gap
EOF
stop_fake LK
pass "3: retried after 500, and after the Retry-After of a 429"

say "4: peer down at start, then up; killed mid-stream, then back"
N=30000
gen_json_lines "$N" "$TMP/in4"
start_fake LK loki_fake --entries "$TMP/ent4"
port=$LK_PORT
stop_fake LK
loki_conf "$port" '    batch: {max_events: 500}'
start_mars_in "$TMP/in4" "$TMP/out4" "$TMP/err4" -c "$TMP/mars.yaml"
wait_until 20 "connection failures logged" grep -q 'request failed' "$TMP/err4"
start_fake LK loki_fake --entries "$TMP/ent4" --port "$port" --delay 0.05
at_least() { (($(lines_of "$1") >= $2)); }
wait_until 30 "a quarter recorded" at_least "$TMP/ent4" $((N / 4))
stop_fake LK KILL
start_fake LK loki_fake --entries "$TMP/ent4" --port "$port"
wait_exit "$MARS_PID" 90 "$TMP/err4"
expect_eq "$EXIT_RC" 0 "mars exit code"
# a push the fake recorded but could not answer before it died is sent again: Loki
# dedupes identical entries; the fake does not, so count distinct entries
sort -u "$TMP/ent4" >"$TMP/ent4.u"
check_entries "$TMP/ent4.u" "$N" any
stop_fake LK
pass "4: delivered across the peer's absence and crash"
