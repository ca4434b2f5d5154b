#!/usr/bin/env bash
# Listening ports that are taken, and a peer that refuses connections:
#   1 a busy api.address stops mars from starting (exit 3) with the address and "Address
#     already in use", as a busy prometheus_exporter address does
#   2 a busy prometheus_exporter address: the same words (not "Cannot assign requested address")
#   3 http, elasticsearch and loki sinks whose peer refuses the connection count it as
#     error_type="connect" (and the retries as "retry"), not as "write"
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
PY=/usr/bin/python3

# hold_port VAR : a loopback port held open by a listener until the test ends; sets VAR.
hold_port() {
    local pf="$TMP/hold.$1"
    "$PY" -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1]))
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(120)' "$pf" </dev/null &
    _MARS_PIDS+=("$!")
    wait_until 10 "the port holder" test -s "$pf"
    printf -v "$1" '%s' "$(cat "$pf")"
}
# refused_port : a loopback port nobody listens on (bound, then closed).
refused_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
mkdir -p "$TMP/data"

say "1 a busy admin API port is fatal at start"
hold_port API_PORT
cat >"$TMP/api.yaml" <<YAML
data_dir: $TMP/data
api: {address: "127.0.0.1:$API_PORT"}
sources: {m: {type: internal_metrics}}
sinks: {b: {type: blackhole, inputs: [m]}}
YAML
MARS_API_ADDRESS= run_mars 30 -c "$TMP/api.yaml" 2>"$TMP/api.err" </dev/null
expect_eq "$MARS_RC" 3 "exit code with a busy api.address ($(show_log "$TMP/api.err"))"
grep -qF "ERROR [api] cannot listen on 127.0.0.1:$API_PORT: Address already in use" "$TMP/api.err" ||
    fail "no 'Address already in use' for the API: $(show_log "$TMP/api.err")"
grep -qF "mars could not start" "$TMP/api.err" || fail "no 'could not start': $(show_log "$TMP/api.err")"
if grep -q "shutdown timeout" "$TMP/api.err"; then
    fail "a start failure talks about the shutdown timeout: $(show_log "$TMP/api.err")"
fi
# MARS_API_ADDRESS (which every test sets; empty above) overrides api.address the same way
MARS_API_ADDRESS="127.0.0.1:$API_PORT" run_mars 30 -c "$TMP/api.yaml" 2>"$TMP/api2.err" </dev/null
expect_eq "$MARS_RC" 3 "exit code with a busy MARS_API_ADDRESS"

say "2 a busy prometheus_exporter port says 'Address already in use'"
hold_port EXP_PORT
cat >"$TMP/exp.yaml" <<YAML
data_dir: $TMP/data
sources: {m: {type: internal_metrics}}
sinks: {p: {type: prometheus_exporter, inputs: [m], address: "127.0.0.1:$EXP_PORT"}}
YAML
run_mars 30 -c "$TMP/exp.yaml" 2>"$TMP/exp.err" </dev/null
expect_eq "$MARS_RC" 3 "exit code with a busy exporter address ($(show_log "$TMP/exp.err"))"
grep -qF "ERROR [p] cannot listen on 127.0.0.1:$EXP_PORT: Address already in use" "$TMP/exp.err" ||
    fail "no 'Address already in use' for the exporter: $(show_log "$TMP/exp.err")"
grep -qF "ERROR [p] cannot start sink 'p': Address already in use" "$TMP/exp.err" ||
    fail "the start failure does not say why: $(show_log "$TMP/exp.err")"
if grep -q "Cannot assign requested address" "$TMP/exp.err"; then
    fail "wrong errno text: $(show_log "$TMP/exp.err")"
fi

say "3 a refused connection counts as error_type=connect"
P1=$(refused_port)
cat >"$TMP/refused.yaml" <<YAML
data_dir: $TMP/data
runtime: {shutdown_timeout: 1s}
sources: {d: {type: demo, rate: 100}}
sinks:
  h: {type: http, inputs: [d], url: "http://127.0.0.1:$P1/", retry: {initial_backoff: 20ms, max_backoff: 200ms}}
  es: {type: elasticsearch, inputs: [d], endpoints: ["http://127.0.0.1:$P1"], index: x, retry: {initial_backoff: 20ms, max_backoff: 200ms}}
  lk: {type: loki, inputs: [d], endpoint: "http://127.0.0.1:$P1", retry: {initial_backoff: 20ms, max_backoff: 200ms}}
YAML
start_mars "$TMP/refused.out" "$TMP/refused.err" -c "$TMP/refused.yaml"
wait_until 20 "the admin API" grep -q "\[api\] listening on" "$TMP/refused.err"
addr=$(sed -n 's/.*\[api\] listening on \([0-9.:]*\).*/\1/p' "$TMP/refused.err" | head -n 1)
# errors{component_id, error_type} of the three sinks, from /metrics
errors_of() { # errors_of ID TYPE
    curl -sf "http://$addr/metrics" |
        awk -v id="$1" -v t="$2" 'index($0, "mars_component_errors_total{") == 1 &&
            index($0, "component_id=\"" id "\"") && index($0, "error_type=\"" t "\"") {print $NF}'
}
connect_seen() {
    local id n
    for id in h es lk; do
        n=$(errors_of "$id" connect)
        [[ -n $n && $n -ge 2 ]] || return 1
    done
}
wait_until 60 "connect errors on h, es and lk" connect_seen
for id in h es lk; do
    w=$(errors_of "$id" write)
    [[ -z $w || $w == 0 ]] || fail "sink $id counts refused connections as write errors ($w)"
    r=$(errors_of "$id" retry)
    [[ -n $r && $r -ge 2 ]] || fail "sink $id: retries not counted ($r)"
done
kill -TERM "$MARS_PID"
wait_exit "$MARS_PID" 60 "$TMP/refused.err"
pass "busy ports are fatal with the right words; refused connections count as connect"
