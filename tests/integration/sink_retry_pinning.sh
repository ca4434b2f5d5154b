#!/usr/bin/env bash
# A sink whose peer fails must not stall the other paths of its worker through the chunk
# pool. Sources that emit a line or two per batch used to pin a whole 256 KiB chunk per
# batch held by the failing sink (buffered or waiting for its retry), so after ~64 lines the
# 16 MiB pool was dry and the healthy blackhole beside it stopped too. With one worker:
#   1 demo at 400 lines/s (a line per tick) -> blackhole + http answering 500: the blackhole
#     gets well past the old stall; then the peer recovers and the http sink delivers every
#     line it held, each a JSON object with its message
#   2 file source over 8 files appended a line at a time -> blackhole + http answering 500:
#     the blackhole gets every line; then the peer recovers and the http sink delivers
#     every line exactly as written (the bytes of batches given back to the pool were
#     copied, not lost)
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
source "$(dirname "$0")/lib/fakes.bash"
unset MARS_API_ADDRESS # the config sets api.address itself

api_port() {
    grep -o "\[api\] listening on 127.0.0.1:[0-9]*" "$1" | head -n 1 | sed 's/.*://'
}
listening() { [[ -n $(api_port "$1") ]]; }
# metric NAME ID: the value of NAME{component_id="ID"} on /metrics (0 when absent)
metric() {
    curl -sf "http://$API/metrics" |
        awk -v m="$1{component_id=\"$2\"," 'index($1, m) == 1 {print $2; f=1} END {if (!f) print 0}'
}
at_least() { (($(metric "$1" "$2") >= $3)); }

# conf SOURCE_YAML: workers 1, SOURCE -> blackhole bh + http h into the fake
conf() {
    cat >"$TMP/mars.yaml" <<YAML
runtime: {workers: 1}
data_dir: $TMP/data
api: {address: "127.0.0.1:0"}
sources:
  in: $1
sinks:
  bh: {type: blackhole, inputs: [in]}
  h:
    type: http
    inputs: [in]
    url: "http://127.0.0.1:$H_PORT/x"
    encoding: ndjson
    retry: {initial_backoff: 50ms, max_backoff: 200ms}
YAML
}

# run_case N SOURCE_YAML: starts mars against a fake answering 500; API is its admin address,
# ERR its log
run_case() {
    ERR=$TMP/err$1
    shift
    : >"$TMP/bodies"
    start_fake H http_recv --bodies "$TMP/bodies"
    fake_script "$H_PORT" '{"requests": [{"status": 500, "times": -1}]}'
    conf "$1"
    mkdir -p "$TMP/data"
    start_mars "$TMP/out" "$ERR" -c "$TMP/mars.yaml"
    wait_until 20 "the admin API listens" listening "$ERR"
    API=127.0.0.1:$(api_port "$ERR")
}

finish_case() {
    kill -TERM "$MARS_PID"
    wait_exit "$MARS_PID" 30 "$ERR"
    expect_eq "$EXIT_RC" 0 "mars exit status"
    stop_fake H
}

# ---- 1: demo, a line per batch ----
say "1: demo -> blackhole + failing http"
run_case 1 "{type: demo, rate: 400, format: json}"
wait_until 60 "the blackhole gets 2000 lines while http fails" \
    at_least mars_component_sent_events_total bh 2000
(($(fake_stat "$H_PORT" scripted_500) > 0)) || fail "the http sink never tried"
(($(metric mars_component_sent_events_total h) == 0)) || fail "http sent while its peer failed"
fake_script "$H_PORT" '{"requests": []}'
wait_until 60 "the http sink delivers what it held" at_least mars_component_sent_events_total h 2000
finish_case
"$PY" - "$TMP/bodies" <<'PY' || fail "http bodies are not the demo's lines"
import json, sys
got = [json.loads(l)["message"] for l in open(sys.argv[1])]
assert len(got) >= 2000, len(got)
for m in got:
    json.loads(m)  # format json: every message is the generated JSON line, intact
PY
pass "1: the blackhole went on while http failed; http delivered $(lines_of "$TMP/bodies") lines"

# ---- 2: file source, 8 files appended a line at a time ----
say "2: file (8 slow files) -> blackhole + failing http"
rm -rf "$TMP/logs" "$TMP/data"
mkdir -p "$TMP/logs"
NF=8
PER=1500
run_case 2 "{type: file, include: [\"$TMP/logs/*.log\"], glob_interval: 100ms}"
"$PY" - "$TMP/logs" "$NF" "$PER" <<'PY' &
import sys, time
d, nf, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
fs = [open("%s/%d.log" % (d, i), "a", buffering=1) for i in range(nf)]
for n in range(per):
    for i, f in enumerate(fs):
        f.write("file %d line %06d padding padding padding\n" % (i, n))
    time.sleep(0.002)
PY
WRITER=$!
_MARS_PIDS+=("$WRITER")
wait "$WRITER"
TOTAL=$((NF * PER))
wait_until 60 "the blackhole gets all $TOTAL lines while http fails" \
    at_least mars_component_sent_events_total bh "$TOTAL"
(($(metric mars_component_sent_events_total h) == 0)) || fail "http sent while its peer failed"
fake_script "$H_PORT" '{"requests": []}'
wait_until 60 "the http sink delivers all $TOTAL lines" at_least mars_component_sent_events_total h "$TOTAL"
finish_case
cat "$TMP"/logs/*.log >"$TMP/want"
"$PY" - "$TMP/bodies" "$TMP/want" <<'PY' || fail "http bodies differ from the files' lines"
import json, sys
got = sorted(json.loads(l)["message"] for l in open(sys.argv[1]))
want = sorted(l.rstrip("\n") for l in open(sys.argv[2]))
if got != want:
    sys.exit("got %d lines, want %d; first difference: %s" % (
        len(got), len(want), next(((g, w) for g, w in zip(got, want) if g != w), None)))
PY
pass "2: the blackhole got every line while http failed; http then delivered all $TOTAL"
