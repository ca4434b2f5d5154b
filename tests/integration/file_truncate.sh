#!/usr/bin/env bash
# The file source when a file is truncated or its inode reused (issue 5, Tests). Lines are
# KEY:SEQ:PAYLOAD (tools/file_writer.c); the checks are exact (lib/file_source.bash).
#   1. copytruncate, in step: the writer keeps its O_APPEND descriptor and writes ~70k
#      lines/s; every 20000 lines (once they are delivered) the file is copied aside and
#      truncated, and the writer goes on at once: every line exactly once, in order
#   2. copytruncate, free running (no waiting for mars): no line twice, none out of order,
#      all lines written after the last truncation delivered; lines lost to the
#      copytruncate race itself (in the copy, truncated before they were read) reported
#   3. truncate to 0 then new content: shorter than before, then longer than before (the
#      file regrows past the old offset), then truncated and rewritten while mars is
#      stopped: each new content is read from its beginning, nothing twice. The last
#      content's lines have the same lengths and endings as the old ones, so the 32-byte
#      marker before the checkpointed offset matches: only the head fingerprint (the key
#      in the first bytes differs) tells the new content from the old
#   4. inode reuse across a restart: a file read to its end and deleted while mars is
#      stopped; a new file gets the same inode (different head, then the same 300-byte
#      head); the checkpoint of the old file must not apply: read from its beginning
#   5. inode reuse while mars runs, the old file closed (dormant: max_open_files 1 makes
#      mars close drained files): the new file is read from its beginning
#   6. rewritten a few bytes shorter (fewer than the 32 bytes a read takes again before its
#      offset), with the same 300-byte head: only the short read before the offset tells
#      the new content from the old; it is read from its beginning
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
source "$(dirname "$0")/lib/file_source.bash"

stop_mars() { # stop_mars ERR
    kill -TERM "$MARS_PID"
    wait_exit "$MARS_PID" 15 "$1"
    expect_eq "$EXIT_RC" 0 "exit code after SIGTERM; $(show_log "$1")"
}

copytruncate_in_step() {
    new_section ct
    local conf=$S/mars.yaml ncopies
    file_conf "$conf" "$S/out" "include: [$L/*.log]"
    start_mars /dev/null "$S/err" -c "$conf"
    say "200000 lines, copytruncate every 20000 (9 truncations), the writer goes on at once"
    "$FW" copytruncate "$L/app.log" app 200000 20000 200 2000 "$S/out" ||
        fail "the writer gave up waiting for mars to deliver the lines before a truncation"
    expect_key app 200000
    wait_seq "$S/out" app 199999 30
    stop_mars "$S/err"
    oracle strict "$S/out"
    ncopies=$(find "$L" -name '*.copy' | wc -l)
    expect_eq "$ncopies" 9 "copies made"
    grep -q 'copytruncate\|was truncated' "$S/err" || fail "no truncation in the log: $(show_log "$S/err")"
    pass "copytruncate x9 with the writer going on: $O_SUMMARY"
}

copytruncate_free() {
    new_section ctfree
    local conf=$S/mars.yaml
    file_conf "$conf" "$S/out" "include: [$L/*.log]"
    start_mars /dev/null "$S/err" -c "$conf"
    say "200000 lines, copytruncate every 20000 without waiting for mars"
    "$FW" copytruncate "$L/app.log" app 200000 20000 200 2000
    expect_key app 200000
    wait_seq "$S/out" app 199999 30
    stop_mars "$S/err"
    oracle lossy "$S/out"
    # everything written after the last truncation is in app.log and must be delivered
    grep -vxFf "$S/out" "$L/app.log" >"$S/undelivered" || true
    [[ ! -s $S/undelivered ]] ||
        fail "$(wc -l <"$S/undelivered") lines written after the last truncation were not delivered, e.g. $(head -n 1 "$S/undelivered")"
    pass "copytruncate x9, free running: $O_SUMMARY (lines lost to the copytruncate race: $O_MISSING)"
}

truncate_to_zero() {
    new_section trunc
    local conf=$S/mars.yaml
    file_conf "$conf" "$S/out1" "include: [$L/*.log], glob_interval: 100ms"
    "$FW" gen t1 0 3000 >"$L/t.log"
    expect_key t1 3000
    start_mars /dev/null "$S/err1" -c "$conf"
    wait_seq "$S/out1" t1 2999 10
    say "truncate to 0, then 1000 lines (shorter than before)"
    : >"$L/t.log"
    "$FW" append "$L/t.log" t2 0 1000 100 1000
    expect_key t2 1000
    wait_seq "$S/out1" t2 999 10
    say "truncate to 0 and at once 5000 lines (past the old offset)"
    : >"$L/t.log"
    "$FW" append "$L/t.log" t3 0 5000 5000 0
    expect_key t3 5000
    wait_seq "$S/out1" t3 4999 10
    stop_mars "$S/err1"
    say "while mars is stopped: truncate and write 8000 lines (past the checkpoint)"
    : >"$L/t.log"
    "$FW" append "$L/t.log" t4 0 8000 8000 0
    expect_key t4 8000
    file_conf "$conf" "$S/out2" "include: [$L/*.log], glob_interval: 100ms"
    run_mars $((20 * SLOW)) -c "$conf" --once 2>"$S/err2"
    expect_eq "$MARS_RC" 0 "--once exit code; $(show_log "$S/err2")"
    oracle strict "$S/out1" "$S/out2"
    pass "truncate to 0: shorter, longer, and while stopped: $O_SUMMARY"
}

# reuse_inode PATH CMD... : deletes PATH and creates it again with CMD's output, with the
# same inode (tools/file_writer.c, reuse); false when the file system does not oblige
reuse_inode() {
    local path=$1 ino
    shift
    ino=$(stat -c %i "$path")
    rm "$path"
    "$FW" reuse "$path" "$ino" 2000 || return 1
    "$@" >>"$path"
}

inode_reuse_restart() {
    new_section reuse
    local conf=$S/mars.yaml hdr
    hdr="# $(printf 'header %.0s' {1..50})" # 300+ bytes: more than the 256-byte fingerprint
    file_conf "$conf" "$S/out1" "include: [$L/*.log]"
    "$FW" gen i1 0 2000 >"$L/f.log"
    expect_key i1 2000
    run_mars $((20 * SLOW)) -c "$conf" --once 2>"$S/err1"
    expect_eq "$MARS_RC" 0 "--once exit code; $(show_log "$S/err1")"
    say "f.log (inode $(stat -c %i "$L/f.log")) read and checkpointed; a new f.log with a different head"
    if ! reuse_inode "$L/f.log" "$FW" gen i2 0 3000; then
        say "SKIP: the file system gave the new file another inode; inode reuse not tested"
        return 0
    fi
    expect_key i2 3000
    file_conf "$conf" "$S/out2" "include: [$L/*.log]"
    run_mars $((20 * SLOW)) -c "$conf" --once 2>"$S/err2"
    expect_eq "$MARS_RC" 0 "--once exit code; $(show_log "$S/err2")"
    oracle strict "$S/out1" "$S/out2"

    say "again with the same 300-byte first line: the fingerprint matches, the offset marker not"
    {
        echo "$hdr"
        "$FW" gen j1 0 2000
    } >"$L/g.log"
    expect_key j1 2000
    file_conf "$conf" "$S/out3" "include: [$L/*.log]"
    run_mars $((20 * SLOW)) -c "$conf" --once 2>"$S/err3"
    expect_eq "$MARS_RC" 0 "--once exit code; $(show_log "$S/err3")"
    # shellcheck disable=SC2317 # called through reuse_inode
    gen_j2() { # the same head; what follows is shifted by a line, so it differs
        echo "$hdr"
        echo "# the second g.log"
        "$FW" gen j2 0 3000
    }
    if ! reuse_inode "$L/g.log" gen_j2; then
        say "SKIP: the file system gave the new file another inode; inode reuse not tested"
        return 0
    fi
    expect_key j2 3000
    file_conf "$conf" "$S/out4" "include: [$L/*.log]"
    run_mars $((20 * SLOW)) -c "$conf" --once 2>"$S/err4"
    expect_eq "$MARS_RC" 0 "--once exit code; $(show_log "$S/err4")"
    expect_eq "$(cat "$S/out3" "$S/out4" | grep -c '^# ')" 3 "comment lines (2 in the new g.log)"
    cat "$S/out3" "$S/out4" | grep -v '^# ' >"$S/lines34" || true
    oracle strict "$S/out1" "$S/out2" "$S/lines34"
    pass "inode reuse across a restart (other head, same head): $O_SUMMARY"
}

inode_reuse_dormant() {
    new_section dormant
    local conf=$S/mars.yaml
    # one worker with one descriptor: a drained file is closed (dormant) when another
    # waits; the test then reuses the inode of the dormant file
    file_conf "$conf" "$S/out" "include: [$L/*.log], max_open_files: 1, glob_interval: 100ms" \
        "runtime: {workers: 1}"
    "$FW" gen a1 0 1000 >"$L/a.log"
    "$FW" gen b1 0 1000 >"$L/b.log"
    expect_key a1 1000
    expect_key b1 1000
    start_mars /dev/null "$S/err" -c "$conf"
    wait_lines "$S/out" 2000 15
    # shellcheck disable=SC2317 # called through wait_until
    one_closed() { not_open "$L/a.log" || not_open "$L/b.log"; }
    wait_until $((10 * SLOW)) "mars holds just one of a.log and b.log" one_closed
    local closed=a
    holds_open "$MARS_PID" "$L/a.log" && closed=b
    say "$closed.log (inode $(stat -c %i "$L/$closed.log")) is closed; a new $closed.log, larger, in its place"
    if ! reuse_inode "$L/$closed.log" "$FW" gen "${closed}2" 0 3000; then
        say "SKIP: the file system gave the new file another inode; inode reuse not tested"
        return 0
    fi
    expect_key "${closed}2" 3000
    wait_seq "$S/out" "${closed}2" 2999 15
    stop_mars "$S/err"
    oracle strict "$S/out"
    pass "inode reuse of a closed file while mars runs: $O_SUMMARY"
}

cut_short() {
    new_section short
    local conf=$S/mars.yaml hdr size need
    hdr="# $(printf 'header %.0s' {1..50})" # more than the 256-byte fingerprint
    file_conf "$conf" "$S/out" "include: [$L/*.log]"
    {
        echo "$hdr"
        "$FW" gen s1 0 1000
    } >"$L/s.log"
    expect_key s1 1000
    start_mars /dev/null "$S/err" -c "$conf"
    wait_seq "$S/out" s1 999 10
    size=$(stat -c %s "$L/s.log")
    {
        echo "$hdr"
        "$FW" gen s2 0 999
    } >"$S/new"
    need=$((size - 10 - $(stat -c %s "$S/new")))
    ((need >= 3)) || fail "the new content is too long ($need)"
    printf '# %s\n' "$(head -c $((need - 3)) /dev/zero | tr '\0' x)" >>"$S/new"
    say "s.log rewritten 10 bytes shorter, the same head"
    cat "$S/new" >"$L/s.log" # one write after the truncation
    expect_key s2 999
    wait_seq "$S/out" s2 998 10
    wait_until $((10 * SLOW)) "the last line of the new s.log" grep -q '^# xxx' "$S/out"
    stop_mars "$S/err"
    expect_eq "$(grep -c '^# ' "$S/out")" 3 "comment lines (the head twice, the last line once)"
    grep -q 'was truncated' "$S/err" || fail "no truncation in the log: $(show_log "$S/err")"
    grep -v '^# ' "$S/out" >"$S/lines" || true
    oracle strict "$S/lines"
    pass "rewritten 10 bytes shorter with the same head: $O_SUMMARY"
}

section "1. copytruncate in step" copytruncate_in_step
section "2. copytruncate free running" copytruncate_free
section "3. truncate to 0" truncate_to_zero
section "4. inode reuse across a restart" inode_reuse_restart
section "5. inode reuse while running (dormant file)" inode_reuse_dormant
section "6. rewritten a few bytes shorter" cut_short
finish "file source across truncation and inode reuse"
