#!/usr/bin/env bash
# The file source when a file is truncated and written past its old size while mars is in
# the middle of reading it (issue 24, defect 7a). app.log holds 300k lines of key a; mars
# reads it at 200k lines/s (a slow sink) in reads of 4 KiB; then the file is truncated and
# at once 400k lines of key b are written: the next read at the old offset lands in b's
# lines. Oracle: no line garbled, b's lines exactly once and in order, a's lines in order
# without duplicates (those not read before the truncation are gone with it). The a line
# cut by the last read before the truncation is emitted as far as it was read (its end is
# gone): at most one line, a prefix of the line written, is allowed for that.
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
source "$(dirname "$0")/lib/file_source.bash"

new_section rewrite
conf=$S/mars.yaml
file_conf "$conf" "$S/out" "include: [$L/*.log], read_size: 4KiB" "" "" "$SLOW_SINK"
"$FW" gen a 0 300000 >"$L/app.log"
start_mars /dev/null "$S/err" -c "$conf"
wait_lines "$S/out" 20000 20
say "truncated and written past its old size while mars reads it"
"$FW" gen b 0 400000 >"$L/app.log"
expect_key a 300000
expect_key b 400000
wait_seq "$S/out" b 399999 60
kill -TERM "$MARS_PID"
wait_exit "$MARS_PID" 30 "$S/err"
expect_eq "$EXIT_RC" 0 "exit code after SIGTERM; $(show_log "$S/err")"
# the partial a line: KEY:SEQ: and a payload shorter than the one written
awk -F: -v A=abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 '
    $1 == "a" && length($3) < 10 + ($2 + 0) % 40 && $3 == substr(A, 1, length($3)) { next }
    { print }' "$S/out" >"$S/whole"
cut=$(($(lines_of "$S/out") - $(lines_of "$S/whole")))
((cut <= 1)) || fail "$cut cut lines of a, at most 1 expected"
oracle lossy "$S/whole"
got=$(grep -c '^b:' "$S/out" || true)
expect_eq "$got" 400000 "lines of b (the new content)"
pass "truncated and rewritten mid-read: $O_SUMMARY"
