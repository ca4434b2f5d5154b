#!/usr/bin/env bash
# Backpressure with when_full: block. An unlimited demo source feeds a blackhole that
# takes 2000 events/s through a buffer of 20000 events: the buffer fills, the source is
# paused (not buffering without bound), memory stays small and flat, and SIGTERM still
# ends mars (exit 0) within the shutdown timeout.
#
# runtime.chunk_memory is raised far above what the buffer needs, so only the sink buffer
# can be what bounds memory (the default 16 MiB chunk pool would hide a buffer that does
# not pause its sources).
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"

MAX_EVENTS=20000
BATCH_MAX_EVENTS=10000   # sink batch.max_events (the default): one request in flight
DEMO_BATCH=1024          # demo batch_events (the default): a source overshoots by one batch
if [[ ${MARS_SANITIZED:-} == 1 ]]; then RSS_LIMIT_KB=$((256 * 1024)); else RSS_LIMIT_KB=$((64 * 1024)); fi

cat >"$TMP/mars.yaml" <<EOF
data_dir: $TMP/data
runtime:
  shutdown_timeout: 2s
  chunk_memory: 256MiB
sources:
  gen: {type: demo, rate: 0, count: 0, batch_events: $DEMO_BATCH}
sinks:
  slow:
    type: blackhole
    inputs: [gen]
    rate: 2000
    batch: {max_events: $BATCH_MAX_EVENTS}
    buffer: {max_events: $MAX_EVENTS, max_bytes: 4MiB, when_full: block}
EOF

say "start mars and sample its RSS every 200 ms for 6 s"
err="$TMP/err.log"
start_mars /dev/null "$err" -c "$TMP/mars.yaml"
pid=$MARS_PID
running() { grep -qF 'running:' "$err" || { alive "$pid" || fail "mars exited early: $(show_log "$err")"; return 1; }; }
wait_until 10 "mars to start" running
rss_stays_flat "$pid" "$err" "$RSS_LIMIT_KB"

say "SIGTERM: mars exits 0 within 5 s (drain or shutdown timeout)"
kill -TERM "$pid"
wait_exit "$pid" 5 "$err"
expect_eq "$EXIT_RC" 0 "exit code after SIGTERM; $(show_log "$err")"
grep -qF 'SIGTERM: stopping' "$err" || fail "no 'SIGTERM: stopping' in the log: $(show_log "$err")"

say "the source was paused, not buffered: demo sent far less than an unblocked demo makes"
demo_sent=$(stat_of "$err" gen sent)
bh_sent=$(stat_of "$err" slow sent)
bh_received=$(stat_of "$err" slow received)
expect_eq "$bh_received" "$demo_sent" "blackhole received vs. demo sent"
# only what the blackhole delivered is acknowledged to the source
expect_eq "$(stat_of "$err" gen acknowledged)" "$bh_sent" "demo acknowledged vs. blackhole sent"
((demo_sent < 100000)) || fail "demo sent $demo_sent events in ~6 s; a paused source makes far fewer"
# What may be in mars at the end: a full buffer, the request the sink holds, and the one
# batch a source may overshoot by.
bound=$((MAX_EVENTS + BATCH_MAX_EVENTS + DEMO_BATCH))
undelivered=$((demo_sent - bh_sent))
((undelivered <= bound)) || fail "$undelivered events were queued for the blackhole (demo sent $demo_sent, blackhole sent $bh_sent); the buffer (max_events $MAX_EVENTS) plus one request and one batch allow $bound.
$(show_log "$err")"
if grep -qF 'shutdown timeout:' "$err"; then
    n=$(sed -n 's/.*\[slow\] shutdown timeout: \([0-9]*\) events not delivered.*/\1/p' "$err")
    expect_eq "$n" "$undelivered" "events reported as not delivered at the shutdown timeout"
fi
expect_eq "$(stat_of "$err" slow discarded_intentional)" 0 "blackhole discarded events (when_full: block)"
expect_eq "$(stat_of "$err" slow errors)" 0 "blackhole errors"

pass "blocked sink: RSS max ${RSS_MAX_KB} kB and flat, demo paused at $demo_sent events"
