#!/usr/bin/env bash
# when_full: drop_newest. An unlimited demo source feeds a blackhole that takes 2000
# events/s through a small buffer: batches that do not fit are dropped and counted as
# discarded intentionally; every event the source sent is accounted for exactly once
# (delivered or dropped), and SIGTERM drains the small rest and exits 0.
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"

cat >"$TMP/mars.yaml" <<EOF
data_dir: $TMP/data
runtime:
  shutdown_timeout: 3s
sources:
  gen: {type: demo, rate: 0, count: 0}
sinks:
  slow:
    type: blackhole
    inputs: [gen]
    rate: 2000
    batch: {max_events: 1000}
    buffer: {max_events: 2000, max_bytes: 1MiB, when_full: drop_newest}
EOF

err="$TMP/err.log"
say "start mars; wait until the buffer overflows"
start_mars /dev/null "$err" -c "$TMP/mars.yaml"
pid=$MARS_PID
dropping() {
    grep -qF 'buffer full (when_full: drop_newest): dropped' "$err" && return 0
    alive "$pid" || fail "mars exited early: $(show_log "$err")"
    return 1
}
wait_until 10 "a 'buffer full (when_full: drop_newest)' warning" dropping

say "SIGTERM: mars exits 0 within 5 s"
kill -TERM "$pid"
wait_exit "$pid" 5 "$err"
expect_eq "$EXIT_RC" 0 "exit code after SIGTERM; $(show_log "$err")"

say "every event is delivered or counted as dropped on purpose"
demo_sent=$(stat_of "$err" gen sent)
received=$(stat_of "$err" slow received)
sent=$(stat_of "$err" slow sent)
dropped=$(stat_of "$err" slow discarded_intentional)
expect_eq "$received" "$demo_sent" "blackhole received vs. demo sent"
# dropping on purpose finishes an event as much as delivering it
expect_eq "$(stat_of "$err" gen acknowledged)" "$demo_sent" "demo acknowledged vs. sent"
((dropped > 0)) || fail "nothing was discarded intentionally: $(show_log "$err")"
((sent > 0)) || fail "the blackhole delivered nothing: $(show_log "$err")"
expect_eq "$((sent + dropped))" "$received" "blackhole sent + discarded intentionally vs. received"
expect_eq "$(stat_of "$err" slow discarded_unintentional)" 0 "blackhole events lost unintentionally"
expect_eq "$(stat_of "$err" slow errors)" 0 "blackhole errors"
# what is left when the source stops is at most the 2000-event buffer and a 1000-event
# request: 1.5 s at 2000/s, well inside the 3 s shutdown timeout
if grep -qF '[slow] shutdown timeout' "$err"; then
    fail "the blackhole did not drain its small buffer within the shutdown timeout: $(show_log "$err")"
fi

pass "drop_newest: demo sent $demo_sent = blackhole delivered $sent + dropped $dropped"
