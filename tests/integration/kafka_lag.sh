#!/usr/bin/env bash
# The kafka source under a blocked downstream, against librdkafka's mock cluster
# (tests/tools/mock_kafka.c): 5,000 messages wait in one partition; the tcp sink's peer
# refuses connections, so the sink's buffer (200 events, when_full: block) fills.
# 1. the source pauses: its sent count stops well below the backlog and stays put past the
#    group's session timeout, without losing the partition (no rebalance);
# 2. mars_kafka_consumer_lag_messages{partition="0"} is exactly the backlog minus what the
#    source emitted, and stays there while paused;
# 3. the peer starts listening: the source resumes, every message arrives exactly once,
#    and the lag falls to 0.
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
source "$(dirname "$0")/lib/kafka.bash"
source "$(dirname "$0")/lib/tcp.bash"
unset MARS_API_ADDRESS # the admin API on a unix socket of its own, set below

N=5000
start_mock_kafka lag:1
awk -v n=$N 'BEGIN { for (i = 1; i <= n; i++) printf "k%d:line %d\n", i, i }' |
    timeout 60 kcat -P -b "$BROKERS" -t lag -K: 2>>"$TMP/kcat.err" ||
    fail "kcat -P failed: $(tail -3 "$TMP/kcat.err")"
expect_eq "$(kcat_count lag)" $N "messages in the topic"

start_recv peer --listen-when "$TMP/open"
cat >"$TMP/mars.yaml" <<YAML
data_dir: $TMP/data
api: { address: $TMP/api.sock }
runtime: { workers: 1, shutdown_timeout: 5s }
sources:
  in:
    type: kafka
    brokers: [$BROKERS]
    topics: [lag]
    group_id: g-lag
    start_from: earliest
    batch_events: 100
    librdkafka: { session.timeout.ms: "6000", heartbeat.interval.ms: "500" }
sinks:
  out:
    type: tcp
    inputs: [in]
    address: 127.0.0.1:$RECV_PORT
    encoding: text
    buffer: { max_events: 200, when_full: block }
    batch: { max_events: 100 }
    request: { concurrency: 1 }
    retry: { initial_backoff: 50ms, max_backoff: 500ms }
YAML
mkdir -p "$TMP/data"
start_mars "$TMP/out" "$TMP/err" -c "$TMP/mars.yaml"

scrape() { curl -sf --unix-socket "$TMP/api.sock" http://mars/metrics >"$TMP/metrics" 2>/dev/null; }
value() { # value NAME SELECTOR : from the last scrape (empty when absent)
    awk -v name="$1" -v sel="$2" 'index($0, name "{") == 1 && index($0, sel) { v = $NF } END { print v }' "$TMP/metrics"
}
lag() { value mars_kafka_consumer_lag_messages 'partition="0"'; }
sent() { value mars_component_sent_events_total 'component_id="in"'; }
stable() { # true once two scrapes 1 s apart show the same sent > 0 and a lag
    scrape || return 1
    local s1 l1
    s1=$(sent) l1=$(lag)
    [[ -n $s1 && -n $l1 ]] && ((s1 > 0)) || return 1
    sleep 1
    scrape || return 1
    [[ $(sent) == "$s1" && $(lag) == "$l1" ]]
}

say "1-2. blocked downstream: the source pauses, the lag is the backlog"
wait_until 90 "the source to stop at a full buffer" stable
s1=$(sent) l1=$(lag)
# at most the buffer (200), the request in flight (100) and the batch that filled it (100)
((s1 <= 400)) || fail "the source kept reading while its sink was blocked: sent $s1 of $N"
expect_eq "$l1" $((N - s1)) "consumer lag (backlog $N minus $s1 emitted)"
sleep 8 # past session.timeout.ms: a paused consumer still heartbeats and keeps its partition
scrape || fail "no metrics"
expect_eq "$(sent)" "$s1" "events emitted while paused"
expect_eq "$(lag)" "$l1" "consumer lag while paused"
if grep -q "revoked\|lost" "$TMP/err"; then fail "the paused consumer lost its partition: $(show_log "$TMP/err")"; fi
pass "1-2. paused at $s1 of $N events; lag $l1 = $N - $s1, unchanged after 8 s; no rebalance"

say "3. the peer listens: the source resumes, everything arrives once, the lag falls to 0"
touch "$TMP/open"
has_all() { (($(lines_of "$TMP/peer.out") >= N)); }
wait_until 120 "$N lines at the peer" has_all
lag_zero() { scrape && [[ $(lag) == 0 && $(sent) == "$N" ]]; }
wait_until 30 "the lag to reach 0" lag_zero
kill -TERM "$MARS_PID"
wait_exit "$MARS_PID" 60 "$TMP/err"
expect_eq "$EXIT_RC" 0 "exit code; $(show_log "$TMP/err")"
recv_idle peer
expect_eq "$(lines_of "$TMP/peer.out")" $N "lines at the peer"
expect_eq "$(sort -u "$TMP/peer.out" | grep -c '^line [0-9]*$')" $N "distinct lines at the peer"
expect_eq "$(stat_of "$TMP/err" in acknowledged)" $N "acknowledged events"
pass "3. resumed: $N lines exactly once, lag 0"
