#!/usr/bin/env bash
# The file source and files that left their path while a writer still holds them (issue 24,
# defect 2 and the descriptor hold). Lines are KEY:SEQ:PAYLOAD and every check is exact
# (lib/file_source.bash, oracle).
#   1. three files idle 6 s (longer than rotate_wait, 5 s) then one renamed out of the
#      include pattern, one deleted, one left behind by a symlink retarget; 2 s later their
#      writers append through the descriptors they still hold: every line arrives (the grace
#      runs from when a file left its path, not from its last growth)
#   2. rotate_wait 60s, max_open_files 4, one worker: 8 drained files that nobody holds are
#      deleted and their descriptors are released at once (not after rotate_wait), so the
#      files waiting for a descriptor are read; a deleted file a writer still holds stays
#      open, and what that writer appends later arrives
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
source "$(dirname "$0")/lib/file_source.bash"

stop_mars() { # stop_mars ERR
    kill -TERM "$MARS_PID"
    wait_exit "$MARS_PID" 30 "$1"
    expect_eq "$EXIT_RC" 0 "exit code after SIGTERM; $(show_log "$1")"
}

idle_then_leave() {
    new_section idle
    local conf=$S/mars.yaml T=$S/targets
    mkdir -p "$T"
    file_conf "$conf" "$S/out" "include: [$L/*.log]"
    ln -s "$T/lnk0.txt" "$L/lnk.log"
    # the writers: descriptors held open for the whole test, as an app that reopens late
    exec 3>>"$L/ren.log" 4>>"$L/del.log" 5>>"$T/lnk0.txt"
    "$FW" gen ren 0 100 >&3
    "$FW" gen del 0 100 >&4
    "$FW" gen lnk0 0 100 >&5
    "$FW" gen lnk1 0 100 >"$T/lnk1.txt"
    start_mars /dev/null "$S/err" -c "$conf" --log-level debug 3>&- 4>&- 5>&-
    wait_lines "$S/out" 300 20
    say "idle 6.5 s, then renamed out, deleted, link retargeted; appends 2 s later"
    sleep 6.5
    mv "$L/ren.log" "$L/ren.old"
    rm "$L/del.log"
    ln -sfn "$T/lnk1.txt" "$L/.next"
    mv -T "$L/.next" "$L/lnk.log"
    sleep 2
    "$FW" gen ren 100 100 >&3
    "$FW" gen del 100 100 >&4
    "$FW" gen lnk0 100 100 >&5
    expect_key ren 200
    expect_key del 200
    expect_key lnk0 200
    expect_key lnk1 100
    wait_lines "$S/out" 700 20
    exec 3>&- 4>&- 5>&-
    stop_mars "$S/err"
    oracle strict "$S/out"
    pass "appends after a file left its path, 6.5 s idle before: $O_SUMMARY"
}

release_deleted() {
    new_section release
    local conf=$S/mars.yaml i
    file_conf "$conf" "$S/out" "include: [$L/*.log], max_open_files: 4, rotate_wait: 60s" \
        "runtime: {workers: 1}"
    exec 6>>"$L/held.log"
    "$FW" gen held 0 10 >&6
    for i in 0 1 2; do "$FW" gen "a$i" 0 50 >"$L/a$i.log"; done
    start_mars /dev/null "$S/err" -c "$conf" 6>&- # only the writer holds held.log
    wait_lines "$S/out" 160 20
    rm "$L/held.log" "$L"/a*.log
    say "4 descriptors: 3 drained deleted files nobody holds, 1 a writer holds"
    wait_until $((20 * SLOW)) "mars releases the deleted files nobody holds" \
        not_open "$L/a0.log (deleted)" "$L/a1.log (deleted)" "$L/a2.log (deleted)"
    holds_open "$MARS_PID" "$L/held.log (deleted)" ||
        fail "mars closed a deleted file its writer still holds, before rotate_wait"
    say "8 more files, 2 at a time, each deleted once read: each waits for a descriptor"
    for i in 0 1 2 3 4 5 6 7; do
        "$FW" gen "b$i" 0 50 >"$L/b$i.log"
        expect_key "b$i" 50
        if ((i % 2 == 1)); then
            wait_lines "$S/out" $((160 + (i + 1) * 50)) 20
            rm "$L/b$((i - 1)).log" "$L/b$i.log"
        fi
    done
    "$FW" gen held 10 10 >&6
    exec 6>&-
    wait_until $((20 * SLOW)) "mars releases held.log once its writer closed it" \
        not_open "$L/held.log (deleted)"
    for i in 0 1 2; do expect_key "a$i" 50; done
    expect_key held 20
    wait_lines "$S/out" 570 20
    stop_mars "$S/err"
    oracle strict "$S/out"
    if grep -q 'bytes lost' "$S/err"; then fail "a file was given up: $(show_log "$S/err")"; fi
    pass "deleted files nobody holds released at once, a held one kept: $O_SUMMARY"
}

section 1.idle idle_then_leave
section 2.release release_deleted
finish "files that left their path"
