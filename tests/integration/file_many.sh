#!/usr/bin/env bash
# The file source with many files (issue 5, Tests). Lines are KEY:SEQ:PAYLOAD, one key per
# file (tools/file_writer.c); the oracle is exact (lib/file_source.bash).
#   1. 5,000 files at once in 50 directories (5 x 10), 20 lines each, found with a `**`
#      include: every line once, in order per file; then 3 more lines in every file while
#      mars runs; mars's peak RSS stays under 64 MiB (256 MiB under a sanitizer) and is
#      reported, with the time it took
#   2. max_open_files: 100 with 500 files, all growing: everything delivered, nothing
#      given up or counted as an error, and never more than 100 files open at once
#   3. files waiting for a descriptor (max_open_files: 1, the one descriptor held by a
#      deleted file its writer still holds, rotate_wait 60s) that move before mars gets to
#      them: one deleted is reported as lost with its size in bytes; one renamed to a
#      matched name is read in full with no error once the writer closes the deleted file
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
source "$(dirname "$0")/lib/file_source.bash"

if [[ ${MARS_SANITIZED:-} == 1 ]]; then RSS_LIMIT_KB=$((256 * 1024)); else RSS_LIMIT_KB=$((64 * 1024)); fi

stop_mars() { # stop_mars ERR
    kill -TERM "$MARS_PID"
    wait_exit "$MARS_PID" 30 "$1"
    expect_eq "$EXIT_RC" 0 "exit code after SIGTERM; $(show_log "$1")"
}

expect_tree() { # expect_tree NDIRS NSUBS NFILES LINES: the keys of `fw tree`
    awk -v nd="$1" -v ns="$2" -v nf="$3" -v n="$4" 'BEGIN {
        for (i = 0; i < nd; i++) for (j = 0; j < ns; j++) for (k = 0; k < nf; k++)
            printf "d%ds%df%d %d\n", i, j, k, n }' >"$EXPECT"
}

# log_fds: how many log files mars holds open, from one listing of its descriptors (only
# log files count: the scan's directory handles are not open files). A listing is not a
# snapshot: ls reads the directory, then each link, so a number freed by a file and taken
# by another after the listing began can be counted twice.
log_fds() {
    { ls -l "/proc/$MARS_PID/fd" 2>/dev/null || true; } | grep -c " -> $L/.*\.log$" || true
}

# wait_lines_fds OUT N SECS: wait_lines, also sampling mars's open descriptors (MAX_FDS).
# A sample is the smaller of two listings in a row: a file really open stays open across
# both, a double count from descriptors reused during one listing does not repeat.
MAX_FDS=0
wait_lines_fds() {
    local out=$1 n=$2 deadline=$((SECONDS + $3 * SLOW)) fds again
    while (($(lines_of "$out") < n)); do
        fds=$(log_fds)
        again=$(log_fds)
        if ((again < fds)); then fds=$again; fi
        if ((fds > MAX_FDS)); then MAX_FDS=$fds; fi
        alive "$MARS_PID" || fail "mars exited with $(lines_of "$out") of $n lines"
        ((SECONDS < deadline)) || fail "timed out waiting for $n lines in $out (it has $(lines_of "$out"))"
        sleep 0.05
    done
}

five_thousand() {
    new_section many
    local conf=$S/mars.yaml t0 t_first rss
    "$FW" tree "$L" 5 10 100 20
    expect_tree 5 10 100 20
    expect_eq "$(find "$L" -name '*.log' | wc -l)" 5000 "files made"
    file_conf "$conf" "$S/out" "include: [\"$L/**/*.log\"]"
    t0=$(date +%s%N)
    start_mars /dev/null "$S/err" -c "$conf"
    wait_lines_fds "$S/out" 100000 60
    t_first=$((($(date +%s%N) - t0) / 1000000))
    say "5000 files x 20 lines delivered in $t_first ms (at most $MAX_FDS of them open at once)"
    "$FW" tree "$L" 5 10 100 3 20
    expect_tree 5 10 100 23
    wait_lines_fds "$S/out" 115000 60
    rss=$(peak_rss_kb "$MARS_PID")
    stop_mars "$S/err"
    oracle strict "$S/out"
    expect_eq "$(stat_of "$S/err" in errors)" 0 "source errors"
    ((rss < RSS_LIMIT_KB)) || fail "peak RSS $rss KiB with 5000 files (limit $RSS_LIMIT_KB KiB)"
    pass "5000 files: $O_SUMMARY; first pass $t_first ms; peak RSS $((rss / 1024)) MiB; at most $MAX_FDS open"
}

max_open() {
    new_section maxopen
    local conf=$S/mars.yaml
    "$FW" tree "$L" 5 1 100 200
    expect_tree 5 1 100 200
    file_conf "$conf" "$S/out" "include: [\"$L/**/*.log\"], max_open_files: 100, glob_interval: 200ms"
    MAX_FDS=0
    start_mars /dev/null "$S/err" -c "$conf"
    wait_lines_fds "$S/out" 100000 60
    say "500 files x 200 lines delivered (at most $MAX_FDS open); 100 more lines in each"
    "$FW" tree "$L" 5 1 100 100 200
    expect_tree 5 1 100 300
    wait_lines_fds "$S/out" 150000 60
    stop_mars "$S/err"
    oracle strict "$S/out"
    expect_eq "$(stat_of "$S/err" in errors)" 0 "source errors"
    if grep -qiE 'give up|gave up|giving up' "$S/err" || grep -q ' ERROR ' "$S/err"; then
        fail "a give-up or an error in the log: $(show_log "$S/err")"
    fi
    ((MAX_FDS <= 100)) || fail "$MAX_FDS files open at once with max_open_files: 100"
    pass "max_open_files 100, 500 growing files: $O_SUMMARY; at most $MAX_FDS open"
}

waiting() {
    new_section waiting
    local conf=$S/mars.yaml size
    file_conf "$conf" "$S/out" "include: [\"$L/*.log*\"], max_open_files: 1, rotate_wait: 60s" $'log: {level: debug}\nruntime: {workers: 1}'
    # the one descriptor is held by a deleted file its writer still holds (rotate_wait 60s):
    # a busy file at its path would give it up between writes
    exec 3>>"$L/a.log"
    "$FW" gen a 0 1 >&3
    start_mars /dev/null "$S/err" -c "$conf" 3>&- # mars must not hold the writer's descriptor
    wait_until $((10 * SLOW)) "mars opens a.log" holds_open "$MARS_PID" "$L/a.log"
    rm "$L/a.log"
    wait_until $((10 * SLOW)) "mars sees a.log leave" grep -q "a.log left its path" "$S/err"
    "$FW" append "$L/b.log" b 0 100 100 0
    "$FW" append "$L/c.log" c 0 100 100 0
    size=$(stat -c %s "$L/c.log")
    found_both() { grep -q "found $L/b.log\$" "$S/err" && grep -q "found $L/c.log\$" "$S/err"; }
    wait_until $((10 * SLOW)) "mars finds b.log and c.log" found_both
    say "b.log and c.log wait for a descriptor; b.log is renamed to b.log.1, c.log deleted"
    mv "$L/b.log" "$L/b.log.1"
    rm "$L/c.log"
    lost() { grep -q "ERROR .*$L/c.log was deleted or renamed away before it could be opened: $size bytes lost" "$S/err"; }
    local deadline=$((SECONDS + 10 * SLOW))
    until lost; do
        ((SECONDS < deadline)) || fail "c.log was not reported lost: $(show_log "$S/err")"
        sleep 0.05
    done
    "$FW" gen a 1 5 >&3
    exec 3>&- # a.log's writer is done: its descriptor goes, b.log.1 gets it
    expect_key a 6
    expect_key b 100
    wait_lines "$S/out" 106 30
    stop_mars "$S/err"
    oracle strict "$S/out"
    if grep ' ERROR ' "$S/err" | grep -qv "$L/c.log was deleted or renamed away"; then
        fail "an error other than c.log's loss: $(show_log "$S/err")"
    fi
    pass "a renamed waiting file read in full ($O_SUMMARY); a deleted one reported lost ($size bytes)"
}

section "1. 5,000 files at once" five_thousand
section "2. max_open_files: 100 with 500 files" max_open
section "3. waiting files renamed or deleted" waiting
finish "file source with many files"
