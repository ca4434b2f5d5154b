#!/usr/bin/env bash
# deploy/monitoring/ (issue 21): the alert rules pass `promtool check rules` and their unit
# tests (`promtool test rules` on synthetic series); every PromQL query of the Grafana
# dashboard parses (checked as recording rules by promtool); and every mars_* metric the
# rules and the dashboard name exists in the /metrics of a running mars whose config
# exercises most components (file, demo, kafka, internal_metrics and health_check
# sources; parse, filter, modify, route, sample, throttle, multiline and log_to_metric;
# file, blackhole, kafka, http, stdout and prometheus_exporter sinks).
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
source "$(dirname "$0")/lib/kafka.bash"
unset MARS_API_ADDRESS # this test configures api.address itself

command -v promtool >/dev/null || fail "promtool is missing (scripts/deps.sh test installs Debian's prometheus)"
mon=$MARS_SRC/deploy/monitoring

say "promtool check rules and test rules"
promtool check rules "$mon/mars-alerts.yaml" >"$TMP/check.out" 2>&1 || fail "$(cat "$TMP/check.out")"
grep -q "SUCCESS: 7 rules found" "$TMP/check.out" || fail "expected 7 rules: $(cat "$TMP/check.out")"
(cd "$mon" && timeout 60 promtool test rules mars-alerts.test.yaml) >"$TMP/test.out" 2>&1 ||
    fail "promtool test rules: $(cat "$TMP/test.out")"

say "the dashboard's queries parse"
/usr/bin/python3 - "$mon/mars-dashboard.json" "$TMP/dash-rules.yaml" "$TMP/dash-metrics" <<'PY' || fail "dashboard"
import json, re, sys
d = json.load(open(sys.argv[1]))
exprs = []
def walk(panels):
    for p in panels:
        walk(p.get("panels", []))
        for t in p.get("targets", []):
            exprs.append((p["title"], t["expr"]))
walk(d["panels"])
if len(exprs) < 15:
    sys.exit("only %d queries" % len(exprs))
with open(sys.argv[2], "w") as f:
    f.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, (title, e) in enumerate(exprs):
        e = e.replace("$__rate_interval", "5m").replace("$__range", "1h").replace("$instance", ".*")
        f.write("      - record: dashboard_q%d\n        expr: %s\n" % (i, json.dumps(e)))
names = set()
for _, e in exprs:
    names.update(re.findall(r"\bmars_[a-z0-9_]+", e))
open(sys.argv[3], "w").write("\n".join(sorted(names)) + "\n")
PY
promtool check rules "$TMP/dash-rules.yaml" >"$TMP/dcheck.out" 2>&1 ||
    fail "a dashboard query does not parse: $(cat "$TMP/dcheck.out")"
/usr/bin/python3 - "$mon/mars-alerts.yaml" >"$TMP/rule-metrics" <<'PY'
import re, sys, yaml
names = set()
for g in yaml.safe_load(open(sys.argv[1]))["groups"]:
    for r in g["rules"]:
        names.update(re.findall(r"\bmars_[a-z0-9_]+", r["expr"]))
print("\n".join(sorted(names)))
PY
sort -u "$TMP/dash-metrics" "$TMP/rule-metrics" >"$TMP/all-metrics"
say "$(wc -l <"$TMP/all-metrics") metric names used by the dashboard and the rules"

say "start mars with most components"
start_mock_kafka logs:2
mkdir -p "$TMP/logs"
printf 'first line\n' >"$TMP/logs/app.log"
cat >"$TMP/mars.yaml" <<YAML
data_dir: $TMP/data
api: {address: "127.0.0.1:0"}
sources:
  tail: {type: file, include: ["$TMP/logs/*.log"], glob_interval: 100ms}
  gen: {type: demo, format: json, rate: 200}
  im: {type: internal_metrics, interval: 200ms}
  hc:
    type: health_check
    checks:
      - {name: up, type: exec, command: ["true"], interval: 200ms}
  from_kafka: {type: kafka, brokers: [$BROKERS], topics: [logs], group_id: mon}
transforms:
  joined: {type: multiline, inputs: [tail], start_pattern: '^\\S'}
  parsed: {type: parse, inputs: [gen], format: json}
  edited: {type: modify, inputs: [parsed], set: {env: test}}
  kept: {type: filter, inputs: [edited], condition: 'exists(message)'}
  some: {type: sample, inputs: [kept], rate: 2}
  few: {type: throttle, inputs: [some], threshold: 1000, window: 1s}
  split: {type: route, inputs: [few], route: {all: 'exists(message)'}}
  counted: {type: log_to_metric, inputs: [parsed], metrics: [{type: counter, name: demo_lines}]}
sinks:
  archive: {type: file, inputs: [joined, split.all], path: "$TMP/out.log"}
  to_kafka: {type: kafka, inputs: [edited], brokers: [$BROKERS], topic: logs}
  nowhere:
    type: http
    inputs: [gen]
    url: "http://127.0.0.1:1/"
    retry: {initial_backoff: 50ms, max_backoff: 200ms}
    buffer: {max_events: 100, when_full: drop_newest}
  drain: {type: blackhole, inputs: [from_kafka, hc]}
  out: {type: stdout, inputs: [counted]}
  prom: {type: prometheus_exporter, inputs: [im], address: "127.0.0.1:0"}
YAML
run_mars 10 validate -c "$TMP/mars.yaml" >"$TMP/val" 2>&1
expect_eq "$MARS_RC" 0 "the test config validates: $(cat "$TMP/val")"
err=$TMP/err.log
start_mars /dev/null "$err" -c "$TMP/mars.yaml"
api_port() { grep -o "\[api\] listening on 127.0.0.1:[0-9]*" "$err" | head -n 1 | sed 's/.*://'; }
listening() { [[ -n $(api_port) ]]; }
wait_until 20 "the admin API listens" listening
api=127.0.0.1:$(api_port)

# every name, as a sample (histograms: the _bucket series) in one scrape
missing() {
    curl -sf "http://$api/metrics" >"$TMP/metrics.txt" || return 0
    local n
    : >"$TMP/missing"
    while read -r n; do
        grep -qE "^$n(\{| )" "$TMP/metrics.txt" || echo "$n" >>"$TMP/missing"
    done <"$TMP/all-metrics"
    [[ -s $TMP/missing ]]
}
deadline=$((SECONDS + 60))
while missing; do
    ((SECONDS < deadline)) ||
        fail "metrics the dashboard or the rules use are not in /metrics after 60 s: $(tr '\n' ' ' <"$TMP/missing")"
    sleep 0.2
done
say "all $(wc -l <"$TMP/all-metrics") names present; the http sink fails as it should"
grep -qE '^mars_sink_consecutive_failures\{component_id="nowhere",[^}]*\} [1-9]' "$TMP/metrics.txt" ||
    fail "the unreachable http sink shows no consecutive failures"
grep -qE '^mars_buffer_fill_ratio\{component_id="nowhere",' "$TMP/metrics.txt" || fail "no fill ratio for nowhere"
grep -qE '^mars_checkpoint_write_errors_total\{component_id="tail"\} 0$' "$TMP/metrics.txt" ||
    fail "no checkpoint error counter for the file source"
grep -qE '^mars_config_reloads_total\{result="rejected"\} 0$' "$TMP/metrics.txt" ||
    fail "the reload counter does not start at 0"
promtool check metrics <"$TMP/metrics.txt" >"$TMP/pc.out" 2>&1 || fail "promtool check metrics: $(cat "$TMP/pc.out")"
pass "rules and dashboard check out against a running mars"
