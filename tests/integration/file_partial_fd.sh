#!/usr/bin/env bash
# The file source with few descriptors and an unfinished last line (issue 24, defect 7c).
# max_open_files 1, one worker, line_timeout 60s: a.log ends in half a line its writer has
# not finished; b.log and c.log, found after it, are read at once (a.log gives its
# descriptor up and keeps the half line in memory), and when a.log's writer finishes the
# line and adds more, a.log is reopened and the line arrives whole. Exact oracle.
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
source "$(dirname "$0")/lib/file_source.bash"

new_section partial
conf=$S/mars.yaml
file_conf "$conf" "$S/out" "include: [$L/*.log], max_open_files: 1, line_timeout: 60s" \
    "runtime: {workers: 1}"
"$FW" gen a 0 5 >"$L/a.log"
"$FW" gen a 5 1 | head -c 12 >>"$L/a.log"
start_mars /dev/null "$S/err" -c "$conf"
wait_lines "$S/out" 5 20
say "a.log holds half a line; b.log and c.log wait for the one descriptor"
"$FW" gen b 0 10 >"$L/b.log"
"$FW" gen c 0 10 >"$L/c.log"
expect_key b 10
expect_key c 10
wait_lines "$S/out" 25 20
say "a.log's writer finishes the line and adds 4 more"
"$FW" gen a 5 1 | tail -c +13 >>"$L/a.log"
"$FW" gen a 6 4 >>"$L/a.log"
expect_key a 10
wait_lines "$S/out" 30 20
kill -TERM "$MARS_PID"
wait_exit "$MARS_PID" 30 "$S/err"
expect_eq "$EXIT_RC" 0 "exit code after SIGTERM; $(show_log "$S/err")"
oracle strict "$S/out"
pass "an unfinished last line does not hold the only descriptor: $O_SUMMARY"
