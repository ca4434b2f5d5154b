#!/usr/bin/env bash
# /metrics of a running mars that has every component type that makes metrics (demo,
# stdin, internal_metrics, health_check and file sources (its file counts after a rotation); stdout, file, blackhole and
# prometheus_exporter sinks) is clean under `promtool check metrics`, on the admin API and
# on the exporter's own listener; the admin API also answers on a unix socket, and with
# api.enabled: false nothing listens.
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
unset MARS_API_ADDRESS # this test configures api.address itself

command -v promtool >/dev/null || fail "promtool is missing (scripts/deps.sh test installs Debian's prometheus)"
command -v curl >/dev/null || fail "curl is missing"

# api_port ERRFILE NAME : the port NAME logged "listening on 127.0.0.1:PORT" with
api_port() {
    grep -o "\[$2\] listening on 127.0.0.1:[0-9]*" "$1" | head -n 1 | sed 's/.*://'
}
listening() { [[ -n $(api_port "$1" "$2") ]]; }

mkdir -p "$TMP/logs"
printf 'first\n' >"$TMP/logs/app.log"
cat >"$TMP/mars.yaml" <<YAML
data_dir: $TMP/data
api: {address: "127.0.0.1:0"}
sources:
  gen: {type: demo, rate: 2000}
  tail: {type: file, include: ["$TMP/logs/*.log"], glob_interval: 100ms}
  in: {type: stdin}
  im: {type: internal_metrics, interval: 100ms}
  hc:
    type: health_check
    checks:
      - {name: up, type: exec, command: ["true"], interval: 100ms}
      - {name: down, type: tcp, address: "127.0.0.1:1", interval: 100ms, timeout: 50ms}
sinks:
  prom: {type: prometheus_exporter, inputs: [im, hc], address: "127.0.0.1:0"}
  out: {type: stdout, inputs: [in], encoding: json}
  file: {type: file, inputs: [gen], path: "$TMP/out.log"}
  bh: {type: blackhole, inputs: [gen, hc, tail]}
YAML

say "start mars with every metric-making component"
err="$TMP/err.log"
start_mars "$TMP/stdout" "$err" -c "$TMP/mars.yaml"
pid=$MARS_PID
wait_until 10 "the admin API listens" listening "$err" api
wait_until 10 "the exporter listens" listening "$err" prom
api=127.0.0.1:$(api_port "$err" api)
exp=127.0.0.1:$(api_port "$err" prom)

has_series() { curl -sf "http://$exp/metrics" >"$TMP/poll.txt" && grep -q "$1" "$TMP/poll.txt"; }
wait_until 10 "health check series on the exporter" has_series '^mars_health_check_up{check="down",type="tcp"} 0'
wait_until 10 "internal metrics on the exporter" has_series '^mars_component_sent_events_total{component_id="file"'

say "file counts: a rotation, two files tracked"
api_has() { curl -sf "http://$api/metrics" >"$TMP/apipoll.txt" && grep -q "$1" "$TMP/apipoll.txt"; }
wait_until 10 "the file is open" api_has '^mars_file_open_files{component_id="tail"} 1$'
mv "$TMP/logs/app.log" "$TMP/logs/app.log.1"
printf 'second\n' >"$TMP/logs/app.log"
wait_until 10 "the rotation counted" api_has '^mars_file_rotations_total{component_id="tail"} 1$'
wait_until 10 "both files tracked" api_has '^mars_file_tracked_files{component_id="tail"} 2$'
grep -q '^mars_file_gave_up_total{component_id="tail"} 0$' "$TMP/apipoll.txt" ||
    fail "no mars_file_gave_up_total 0: $(grep mars_file "$TMP/apipoll.txt")"

for url in "http://$api/metrics" "http://$exp/metrics"; do
    say "promtool check metrics $url"
    curl -sf -D "$TMP/headers" "$url" >"$TMP/metrics.txt" || fail "GET $url failed"
    grep -qi '^content-type: text/plain; version=0.0.4' "$TMP/headers" || fail "wrong content type: $(cat "$TMP/headers")"
    if ! promtool check metrics <"$TMP/metrics.txt" 2>"$TMP/promtool.err"; then
        fail "promtool check metrics on $url:
$(cat "$TMP/promtool.err")
$(head -n 40 "$TMP/metrics.txt")"
    fi
    [[ -z $(tail -c 1 "$TMP/metrics.txt") ]] || fail "$url does not end with a newline"
done
curl -sf "http://$api/metrics" >"$TMP/api-metrics.txt" || fail "GET /metrics failed"
for want in mars_component_received_events_total mars_component_sent_bytes_total \
    mars_component_errors_total mars_component_discarded_events_total mars_buffer_events \
    mars_buffer_bytes mars_source_acked_events_total mars_batch_latency_seconds_bucket \
    'mars_build_info{' mars_workers mars_uptime_seconds; do
    grep -q "^$want" "$TMP/metrics.txt" || fail "no $want on the exporter (internal_metrics)"
    grep -q "^$want" "$TMP/api-metrics.txt" || fail "no $want on /metrics"
done
pass "/metrics is clean under promtool, on the API and on the exporter"

say "SIGTERM: mars drains and exits 0"
kill -TERM "$pid"
wait_exit "$pid" 20 "$err"
expect_eq "$EXIT_RC" 0 "exit code"
if curl -s -o /dev/null "http://$api/healthz"; then fail "the API still answers after exit"; fi

say "the admin API on a unix socket"
sockpath="$TMP/api.sock"
cat >"$TMP/unix.yaml" <<YAML
data_dir: $TMP/data
api: {address: "unix:$sockpath"}
sources: {gen: {type: demo, rate: 10}}
sinks: {bh: {type: blackhole, inputs: [gen]}}
YAML
start_mars /dev/null "$TMP/unix.err" -c "$TMP/unix.yaml"
pid=$MARS_PID
sock_ready() { curl -sf --unix-socket "$sockpath" http://mars/healthz >/dev/null; }
wait_until 10 "the API answers on $sockpath" sock_ready
curl -sf --unix-socket "$sockpath" http://mars/metrics | promtool check metrics || fail "promtool on the unix socket"
kill -TERM "$pid"
wait_exit "$pid" 20 "$TMP/unix.err"
expect_eq "$EXIT_RC" 0 "exit code (unix socket)"
[[ ! -e $sockpath ]] || fail "the socket file was left behind"
pass "unix socket API works and is removed at exit"

say "api.enabled: false: nothing listens"
cat >"$TMP/off.yaml" <<YAML
data_dir: $TMP/data
api: {enabled: false, address: "unix:$sockpath"}
sources: {gen: {type: demo, rate: 10}}
sinks: {bh: {type: blackhole, inputs: [gen]}}
YAML
start_mars /dev/null "$TMP/off.err" -c "$TMP/off.yaml"
pid=$MARS_PID
running() { grep -q "running:" "$TMP/off.err"; }
wait_until 10 "mars runs" running
sleep 0.3
[[ ! -e $sockpath ]] || fail "api.enabled: false still created $sockpath"
! grep -q "listening on" "$TMP/off.err" || fail "api.enabled: false still listens: $(show_log "$TMP/off.err")"
kill -TERM "$pid"
wait_exit "$pid" 20 "$TMP/off.err"
pass "nothing listens with api.enabled: false"
