# tests/integration/lib/disk_buffer.bash - what the disk_buffer*.sh tests share: numbered runs
# of mars with the admin API, the API's port, and one series of its metrics.
#   start [CONF]           run RUN+1 of mars (-c CONF, default $TMP/mars.yaml), output in
#                          $TMP/outN and $TMP/errN; waits for the admin API, sets API
#   stop                   SIGTERM, and the run's exit code must be 0
#   metric NAME [ID]       the value of NAME for component_id ID ($METRIC_ID when left out;
#                          0 when absent)
RUN=0
METRIC_ID=${METRIC_ID:-es}

start() {
    RUN=$((RUN + 1))
    start_mars "$TMP/out$RUN" "$TMP/err$RUN" -c "${1:-$TMP/mars.yaml}"
    wait_until $((20 * SLOW)) "the admin API of run $RUN listens" grep -q "\[api\] listening on" "$TMP/err$RUN"
    API=$(api_port "$TMP/err$RUN")
}

stop() {
    kill -TERM "$MARS_PID"
    wait_exit "$MARS_PID" $((60 * SLOW)) "$TMP/err$RUN"
    expect_eq "$EXIT_RC" 0 "exit code of run $RUN"
}

metric() {
    curl -sf "http://127.0.0.1:$API/metrics" |
        awk -v n="$1" -v c="component_id=\"${2:-$METRIC_ID}\"" '$1 ~ "^"n"[{]" && index($1, c) { v = $2 } END { print v + 0 }'
}
