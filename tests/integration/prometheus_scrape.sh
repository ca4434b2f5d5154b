#!/usr/bin/env bash
# A real Prometheus server (Debian's prometheus, on a loopback port with a temporary config
# and storage dir) scrapes mars's admin /metrics and a prometheus_exporter sink; its HTTP
# API then returns mars's series: build info, component counters, the batch latency
# histogram and the health checks served by the exporter.
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
unset MARS_API_ADDRESS # this test configures api.address itself

command -v prometheus >/dev/null || fail "prometheus is missing (scripts/deps.sh test installs it)"
command -v curl >/dev/null || fail "curl is missing"

api_port() { grep -o "\[$2\] listening on 127.0.0.1:[0-9]*" "$1" | head -n 1 | sed 's/.*://'; }
listening() { [[ -n $(api_port "$1" "$2") ]]; }
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

cat >"$TMP/mars.yaml" <<YAML
data_dir: $TMP/data
api: {address: "127.0.0.1:0"}
sources:
  gen: {type: demo, rate: 500}
  im: {type: internal_metrics, interval: 500ms}
  hc: {type: health_check, checks: [{name: self, type: exec, command: ["true"], interval: 500ms}]}
sinks:
  bh: {type: blackhole, inputs: [gen]}
  prom: {type: prometheus_exporter, inputs: [im, hc], address: "127.0.0.1:0"}
YAML
err="$TMP/mars.err"
start_mars /dev/null "$err" -c "$TMP/mars.yaml"
wait_until 60 "the admin API listens" listening "$err" api
wait_until 60 "the exporter listens" listening "$err" prom
api=127.0.0.1:$(api_port "$err" api)
exp=127.0.0.1:$(api_port "$err" prom)

pport=$(free_port)
mkdir -p "$TMP/tsdb"
cat >"$TMP/prometheus.yml" <<YAML
global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: mars
    static_configs: [{targets: ["$api"]}]
  - job_name: mars_exporter
    static_configs: [{targets: ["$exp"]}]
YAML
say "start prometheus on 127.0.0.1:$pport scraping $api and $exp"
prometheus --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/tsdb" \
    --web.listen-address="127.0.0.1:$pport" --log.level=warn \
    >"$TMP/prometheus.log" 2>&1 </dev/null &
_MARS_PIDS+=("$!")
prom_pid=$!
prom_ready() {
    alive "$prom_pid" || fail "prometheus exited: $(show_log "$TMP/prometheus.log")"
    curl -sf "http://127.0.0.1:$pport/-/ready" >/dev/null
}
wait_until 60 "prometheus is ready" prom_ready

# query EXPR : the JSON answer of an instant query
query() { curl -sf --get "http://127.0.0.1:$pport/api/v1/query" --data-urlencode "query=$1"; }
has_result() { query "$1" >"$TMP/q.json" && grep -q "$2" "$TMP/q.json"; }

for q in 'up{job="mars"} == 1|"job":"mars"' \
    'up{job="mars_exporter"} == 1|"job":"mars_exporter"' \
    'mars_build_info{job="mars"}|"__name__":"mars_build_info"' \
    'mars_component_sent_events_total{job="mars",component_id="gen"} > 0|"component_id":"gen"' \
    'mars_batch_latency_seconds_count{job="mars",component_id="bh"} > 0|"component_id":"bh"' \
    'mars_health_check_up{job="mars_exporter",check="self"} == 1|"check":"self"' \
    'mars_component_sent_events_total{job="mars_exporter",component_id="gen"}|"component_id":"gen"'; do
    expr=${q%|*}
    want=${q##*|}
    say "query: $expr"
    wait_until 45 "prometheus returns $expr ($(cat "$TMP/q.json" 2>/dev/null | head -c 300))" has_result "$expr" "$want"
done
pass "Prometheus scraped mars and its exporter and returns mars's series"

kill -TERM "$prom_pid"
wait_exit "$prom_pid" 30 "$TMP/prometheus.log"
kill -TERM "$MARS_PID"
wait_exit "$MARS_PID" 20 "$err"
expect_eq "$EXIT_RC" 0 "mars exit code"
