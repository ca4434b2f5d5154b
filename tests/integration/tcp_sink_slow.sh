#!/usr/bin/env bash
# Backpressure through the tcp sink: an unlimited demo source feeds a peer that reads
# 2 MB/s. The socket buffers fill, the request in flight waits for its send, the sink's
# buffer fills, and the source is paused: RSS stays small and flat, what the peer got is
# whole lines in order, and SIGTERM still ends mars within the shutdown timeout (the send
# in flight is aborted, its events are not acknowledged).
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
source "$(dirname "$0")/lib/tcp.bash"

if [[ ${MARS_SANITIZED:-} == 1 ]]; then RSS_LIMIT_KB=$((256 * 1024)); else RSS_LIMIT_KB=$((64 * 1024)); fi

start_recv slow --rate 2000000
cat >"$TMP/mars.yaml" <<EOF
data_dir: $TMP/data
runtime: {workers: 1, shutdown_timeout: 2s, chunk_memory: 256MiB}
sources:
  gen: {type: demo, rate: 0, count: 0, format: json}
sinks:
  out:
    type: tcp
    inputs: [gen]
    address: "127.0.0.1:$RECV_PORT"
    batch: {max_events: 5000}
    buffer: {max_events: 20000, max_bytes: 8MiB, when_full: block}
EOF

say "start mars and sample its RSS every 200 ms for 6 s"
start_mars /dev/null "$TMP/err" -c "$TMP/mars.yaml"
pid=$MARS_PID
wait_until 10 "the connection" grep -qF "[out] connected to" "$TMP/err"
t0=$(date +%s%N)
rss_stays_flat "$pid" "$TMP/err" "$RSS_LIMIT_KB"
got=$(wc -c <"$TMP/slow.out")
ms=$((($(date +%s%N) - t0) / 1000000 + 1000)) # +1 s: the connection was up before t0
say "the peer read $got bytes in $ms ms"
# the peer is slow (so backpressure is what this tests): at most its 2 MB/s over the time
# that really passed (a loaded machine stretches the 6 s of sampling), twice over, plus
# what the socket buffers held
((got < 4000 * ms + 16000000)) || fail "the peer read $got bytes in $ms ms: not a slow peer"

say "SIGTERM: exits 0 within 5 s; only delivered events are acknowledged"
kill -TERM "$pid"
wait_exit "$pid" 5 "$TMP/err"
expect_eq "$EXIT_RC" 0 "exit code after SIGTERM; $(show_log "$TMP/err")"
recv_idle slow
demo_sent=$(stat_of "$TMP/err" gen sent)
sink_sent=$(stat_of "$TMP/err" out sent)
expect_eq "$(stat_of "$TMP/err" gen acknowledged)" "$sink_sent" "demo acknowledged vs. tcp sent"
((demo_sent < 2000000)) || fail "demo sent $demo_sent events: the source was not paused"
# every line the peer recorded is a whole JSON object
/usr/bin/python3 - "$TMP/slow.out" <<'EOF' || fail "the peer got something that is not whole JSON lines"
import json, sys
n = 0
for line in open(sys.argv[1], "rb"):
    json.loads(line)
    n += 1
print("== tcp_sink_slow: %d whole JSON lines at the peer" % n)
EOF
pass "slow peer: RSS max ${RSS_MAX_KB} kB and flat, demo paused at $demo_sent events"
