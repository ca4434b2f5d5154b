#!/usr/bin/env bash
# mars -> mars with the receiver killed (SIGKILL) and restarted twice mid-stream while the
# sender keeps reading: the sender's requests fail, are retried, and at the end every line
# the sender acknowledged (all of them: it exits 0 only when everything is acknowledged) is
# in the receiver's output. Lines carry sequence numbers; duplicates are allowed (frames
# the killed receiver had written but not acknowledged are sent again), losses are not.
# Run once per io backend by the suite (MARS_IO_BACKEND).
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
source "$(dirname "$0")/lib/mars_pair.bash"

N=150000

write_recv_yaml() {
    cat >"$TMP/recv.yaml" <<YAML
data_dir: $TMP/recv-data
sources:
  in: {type: mars, address: "127.0.0.1:$1"}
sinks:
  out: {type: file, inputs: [in], path: $TMP/out.txt}
YAML
}

write_recv_yaml 0
start_receiver "$TMP/recv.yaml" "$TMP/recv-1.err"
port=$RECV_PORT
write_recv_yaml "$port" # restarts listen on the same port

cat >"$TMP/send.yaml" <<YAML
data_dir: $TMP/send-data
runtime: {shutdown_timeout: 60s}
sources:
  in: {type: stdin}
sinks:
  ship:
    type: mars
    inputs: [in]
    address: "127.0.0.1:$port"
    frame_bytes: 32KiB
    batch: {max_events: 2000}
    retry: {initial_backoff: 20ms, max_backoff: 200ms}
YAML
mkfifo "$TMP/fifo"
# the writer paces N numbered lines over ~3 s, so the kills land mid-stream
/usr/bin/python3 - "$N" >"$TMP/fifo" <<'PY' &
import sys, time
n = int(sys.argv[1])
step = 1000
for start in range(1, n + 1, step):
    sys.stdout.write("".join("line %08d payload-payload-payload\n" % i for i in range(start, min(start + step, n + 1))))
    sys.stdout.flush()
    time.sleep(0.02)
PY
_MARS_PIDS+=("$!")
env --default-signal=INT "$MARS_BIN" -c "$TMP/send.yaml" <"$TMP/fifo" 2>"$TMP/send.err" >/dev/null &
send_pid=$!
_MARS_PIDS+=("$send_pid")

for round in 1 2; do
    delivered() { (($(lines_of "$TMP/out.txt") >= round * N / 4)); }
    wait_until 30 "$((round * N / 4)) lines delivered before kill $round" delivered
    say "kill -9 the receiver ($(lines_of "$TMP/out.txt") lines written so far)"
    kill -KILL "$RECV_PID"
    wait_exit "$RECV_PID" 5
    failing() { grep -q 'request of .* failed' "$TMP/send.err"; }
    wait_until 10 "the sender to notice" failing
    start_receiver "$TMP/recv.yaml" "$TMP/recv-$((round + 1)).err"
    expect_eq "$RECV_PORT" "$port" "restarted receiver's port"
done

say "the sender reads to the end of its input and exits once everything is acknowledged"
wait_exit "$send_pid" 60 "$TMP/send.err"
expect_eq "$EXIT_RC" 0 "sender exit code; $(show_log "$TMP/send.err")"
expect_eq "$(stat_of "$TMP/send.err" in received)" "$N" "sender: lines read"
expect_eq "$(stat_of "$TMP/send.err" in acknowledged)" "$N" "sender: lines acknowledged"
kill -TERM "$RECV_PID"
wait_exit "$RECV_PID" 10 "$TMP/recv-3.err"
expect_eq "$EXIT_RC" 0 "last receiver exit code"

say "every acknowledged line is in the output (duplicates allowed, no losses, no torn lines)"
total=$(lines_of "$TMP/out.txt")
bad=$(grep -cvE '^line [0-9]{8} payload-payload-payload$' "$TMP/out.txt" || true)
expect_eq "$bad" 0 "malformed lines in the output"
sort -u "$TMP/out.txt" >"$TMP/unique.txt"
unique=$(lines_of "$TMP/unique.txt")
expect_eq "$unique" "$N" "distinct lines in the output"
first=$(sed -n 1p "$TMP/unique.txt")
last=$(sed -n '$p' "$TMP/unique.txt")
expect_eq "$first" "line 00000001 payload-payload-payload" "first line"
expect_eq "$last" "$(printf 'line %08d payload-payload-payload' "$N")" "last line"
pass "$N lines, none lost across two receiver kills; $((total - unique)) duplicates"
