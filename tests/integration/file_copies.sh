#!/usr/bin/env bash
# The file source with copytruncate copies inside the include pattern (issue 24, the
# copytruncate surprise). app.log is copied to app.log.<n>.copy and truncated every 20000
# lines (9 times, the writer going on through its O_APPEND descriptor, each copy made once
# mars delivered what app.log held), and the pattern app.log* matches the copies too: a copy
# is recognised as holding what was already read of app.log (head fingerprint and the bytes
# before the offset read) and is not read again. Strict oracle: every line exactly once.
# One worker: a copy is recognised only by the worker that read the original (a copy whose
# inode falls on another worker is read again; docs/architecture.md says so).
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
source "$(dirname "$0")/lib/file_source.bash"

new_section copies
conf=$S/mars.yaml
file_conf "$conf" "$S/out" "include: [\"$L/app.log*\"]" "runtime: {workers: 1}"
start_mars /dev/null "$S/err" -c "$conf"
wait_until $((10 * SLOW)) "mars running" grep -q 'running:' "$S/err"
say "200000 lines, copytruncate every 20000, the copies matched by the include pattern"
"$FW" copytruncate "$L/app.log" app 200000 20000 200 2000 "$S/out" ||
    fail "the writer gave up waiting for mars (exit $?)"
expect_key app 200000
wait_lines "$S/out" 200000 30
sleep 1 # a copy read again would show now: give it the time of a few reads
kill -TERM "$MARS_PID"
wait_exit "$MARS_PID" 30 "$S/err"
expect_eq "$EXIT_RC" 0 "exit code after SIGTERM; $(show_log "$S/err")"
oracle strict "$S/out"
n=$(grep -c 'a copy, e.g. by copytruncate' "$S/err" || true)
((n == 9)) || fail "$n copies recognised, 9 expected: $(show_log "$S/err")"
pass "9 copytruncate copies inside the pattern, none read again: $O_SUMMARY"

# A slow copier on a starved node: each copy is written in 8 KiB chunks 300 ms apart (about
# 1.5 s per copy) while mars is stopped for 1.3 s out of every 1.6 s, so the copy's growth
# is first seen long after mars last looked. The copy waits while it keeps growing and is
# recognised once it holds what app.log held (before, a copy seen growing after such a
# stall was read again from the start: 2 runs out of 3 without the fix).
new_section slowcopy
conf=$S/mars.yaml
file_conf "$conf" "$S/out" "include: [\"$L/app.log*\"]" "runtime: {workers: 1}"
start_mars /dev/null "$S/err" -c "$conf"
wait_until $((10 * SLOW)) "mars running" grep -q 'running:' "$S/err"
say "6000 lines, copytruncate every 2000 by a slow copier, mars stopped 1.3 s of every 1.6 s"
(while kill -STOP "$MARS_PID" 2>/dev/null; do
    sleep 1.3
    kill -CONT "$MARS_PID" 2>/dev/null || exit 0
    sleep 0.3
done) &
starver=$!
_MARS_PIDS+=("$starver") # killed on any exit
rc=0
FW_COPY_CHUNK=8192 FW_COPY_PAUSE_US=300000 "$FW" copytruncate "$L/app.log" slow 6000 2000 200 2000 "$S/out" || rc=$?
kill "$starver" 2>/dev/null || true
wait "$starver" || true
kill -CONT "$MARS_PID"
((rc == 0)) || fail "the writer gave up waiting for mars (exit $rc)"
expect_key slow 6000
wait_lines "$S/out" 6000 30
sleep 1 # a copy read again would show now
kill -TERM "$MARS_PID"
wait_exit "$MARS_PID" 30 "$S/err"
expect_eq "$EXIT_RC" 0 "exit code after SIGTERM; $(show_log "$S/err")"
oracle strict "$S/out"
n=$(grep -c 'a copy, e.g. by copytruncate' "$S/err" || true)
((n == 2)) || fail "$n slow copies recognised, 2 expected: $(show_log "$S/err")"
pass "2 slow copies on a starved node, none read again: $O_SUMMARY"
