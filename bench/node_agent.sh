#!/usr/bin/env bash
# bench/node_agent.sh - `node-agent`: conf/node-agent.yaml, the whole node agent, under a
# steady load, next to the sum of its parts. In a private network namespace (root or
# `unshare -Urn`; the host's rules are never touched), against the fakes of
# tests/integration/node_agent.sh (the setup is tests/integration/lib/node_agent.bash):
#   - 1,000 CRI log lines/s into a pod's log file (2/3 JSON, 1/3 plain)
#   - 50 seed HTTP spans/s on the APM socket, one connection each (as SkyAPM does)
#   - the `shop` health check probing its service (interval 5 s in the config)
#   - 100 pods of this node at the API server: 200 pod rules (+ the 2 managed ones)
#   - the Apollo fake holding its long polls
# For BENCH_SECS (60) it samples mars's CPU time (/proc/PID/stat utime+stime) and RSS
# (/proc/PID/status VmRSS) every second, and prints CPU % of one core, average and peak RSS.
# Then the same loads, each against a mars running only that job's components (taken from
# the same file: logs, apm, iptables, health+eureka, apollo), and their sum.
# Usage: bench/node_agent.sh [BUILD_DIR]   (env: BENCH_SECS, LOG_RATE, APM_RATE, PODS, and
# RUNS: which runs, of "whole logs apm iptables health apollo"; all by default; and
# BENCH_PERF=DIR: `perf record -g` of each run's mars into DIR/perf-NAME.data)
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
export MARS_SRC=$src
export MARS_BIN=${MARS_BIN:-$(cd "${1:-$src/build}" && pwd)/mars}
# shellcheck source=/dev/null
source "$src/tests/integration/lib/netns.bash"
# shellcheck source=/dev/null
source "$src/tests/integration/lib/common.bash"
# shellcheck source=/dev/null
source "$src/tests/integration/lib/fakes.bash"
# shellcheck source=/dev/null
source "$src/tests/integration/lib/node_agent.bash"
# shellcheck disable=SC2034  # the name common.bash prints in messages
TEST_NAME=node-agent-bench
SECS=${BENCH_SECS:-60}
LOG_RATE=${LOG_RATE:-1000}
APM_RATE=${APM_RATE:-50}
PODS=${PODS:-100}
command -v nft >/dev/null || fail "nft is missing (scripts/deps.sh test)"
"$PY" -c 'import grpc, yaml' || fail "python3-grpcio and python3-yaml are needed"

na_start_fakes
na_env
WEB='{"eureka.mars.io/app": "web", "eureka.mars.io/port": "8080"}'
na_pod web-0 10.99.0.1 "$WEB"
for ((i = 1; i < PODS; i++)); do
    na_pod "web-$i" "10.99.$((i / 250)).$((i % 250 + 1))"
done

# part OUT COMPONENT..: conf/node-agent.yaml with only those components (sinks' inputs
# cut to the ones kept); the ${VAR}s stay for mars to expand
part() {
    "$PY" - "$NA_CONF" "$@" <<'PY'
import sys, yaml
conf, out, keep = sys.argv[1], sys.argv[2], set(sys.argv[3:])
doc = yaml.safe_load(open(conf))
for kind in ("sources", "transforms", "sinks"):
    doc[kind] = {k: v for k, v in (doc.get(kind) or {}).items() if k in keep}
    if not doc[kind]:
        del doc[kind]
    for v in (doc.get(kind) or {}).values():
        if "inputs" in v:
            v["inputs"] = [i for i in v["inputs"] if i in keep]
yaml.safe_dump(doc, open(out, "w"), sort_keys=False)
PY
}
part "$TMP/logs.yaml" pods app_json logs
part "$TMP/apm.yaml" php_apm oap metrics
part "$TMP/iptables.yaml" net metrics
part "$TMP/health.yaml" health registry metrics
part "$TMP/apollo.yaml" apollo app_config

# measure PID SECS NAME: one line "NAME cpu% avgKiB peakKiB"
measure() {
    local pid=$1 secs=$2 name=$3 hz t0 t1 c0 c1
    hz=$(getconf CLK_TCK)
    : >"$TMP/rss-$name"
    c0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    t0=$(date +%s%N)
    for ((s = 0; s < secs; s++)); do
        sleep 1 # the sampling period is the measurement itself
        awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" >>"$TMP/rss-$name"
    done
    c1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    t1=$(date +%s%N)
    awk -v c="$((c1 - c0))" -v hz="$hz" -v ns="$((t1 - t0))" -v name="$name" '
        {sum += $1; if ($1 > peak) peak = $1; n++}
        END {printf "%s %.2f %d %d\n", name, c / hz / (ns / 1e9) * 100, sum / n, peak}' "$TMP/rss-$name"
}

# run NAME CONF LOADS: mars on CONF, the loads of LOADS (words: logs apm) for SECS
run() {
    local name=$1 conf=$2 loads=$3 err="$TMP/$1.err"
    rm -rf "$TMP/data" "$TMP/stop-writers"
    rm -f "$(na_log_dir web-0)/0.log" # no backlog from the run before (nor a checkpoint)
    mkdir -p "$TMP/data"
    start_mars /dev/null "$err" -c "$conf"
    # shellcheck disable=SC2153  # set by start_mars
    local pid=$MARS_PID
    started() { alive "$pid" || fail "mars ($name) exited: $(show_log "$err")"; grep -q 'running:' "$err"; }
    wait_until 60 "mars ($name) runs" started
    if [[ $conf == "$NA_CONF" || $name == iptables ]]; then
        rules_in() { grep -q "pods: $((PODS * 2)) pod rules" "$err"; }
        wait_until 60 "the pod rules ($name)" rules_in
    fi
    if [[ $loads == *logs* ]]; then
        na_writer "$(na_log_dir web-0)/0.log" "$LOG_RATE" 0 "$name"
    fi
    if [[ $loads == *apm* ]]; then
        sock() { [[ -S $MARS_APM_SOCKET ]]; }
        wait_until 30 "the APM socket" sock
        "$PY" "$FAKES_DIR/apm_client.py" "$MARS_APM_SOCKET" register shop 4242 8 >/dev/null
        na_apm_load "$MARS_APM_SOCKET" "$APM_RATE" "$SECS"
    fi
    local perf=
    if [[ -n ${BENCH_PERF:-} ]]; then
        mkdir -p "$BENCH_PERF"
        perf record -q -g -p "$pid" -o "$BENCH_PERF/perf-$name.data" -- sleep "$SECS" 2>/dev/null &
        perf=$!
    fi
    measure "$pid" "$SECS" "$name" >>"$TMP/results"
    [[ -z $perf ]] || wait "$perf" || true
    touch "$TMP/stop-writers"
    kill -TERM "$pid"
    wait_exit "$pid" 60 "$err"
    ((EXIT_RC == 0)) || fail "mars ($name) exited $EXIT_RC: $(show_log "$err")"
}

: >"$TMP/results"
mkdir -p "$(na_log_dir web-0)"
echo "node-agent bench: ${SECS} s each; $LOG_RATE log lines/s, $APM_RATE APM spans/s, $PODS pods ($((PODS * 2)) pod rules + 2 managed), health check every 5 s" >&2
RUNS=" ${RUNS:-whole logs apm iptables health apollo} "
want() { [[ $RUNS == *" $1 "* ]]; }
want whole && run whole "$NA_CONF" "logs apm"
want logs && run logs "$TMP/logs.yaml" logs
want apm && run apm "$TMP/apm.yaml" apm
want iptables && run iptables "$TMP/iptables.yaml" ""
want health && run health "$TMP/health.yaml" ""
want apollo && run apollo "$TMP/apollo.yaml" ""
lines=$(curl -sf "http://127.0.0.1:$ES_PORT/_fake/stats" | "$PY" -c 'import json,sys; print(json.load(sys.stdin).get("docs", 0))')
awk -v secs="$SECS" -v lines="$lines" '
    BEGIN {printf "%-22s %8s %10s %10s\n", "node-agent (" secs " s)", "CPU %", "RSS avg", "RSS peak"}
    {printf "%-22s %7.2f%% %7.1f MiB %7.1f MiB\n", $1, $2, $3 / 1024, $4 / 1024}
    $1 != "whole" {c += $2; a += $3; p += $4}
    END {printf "%-22s %7.2f%% %7.1f MiB %7.1f MiB\n", "sum of the parts", c, a / 1024, p / 1024
         printf "(documents in the Elasticsearch fake over all runs: %d)\n", lines}' "$TMP/results"
