#!/usr/bin/env bash
# The file source and short-lived files (issue 24, defect 1). Lines are KEY:SEQ:PAYLOAD and
# every check is exact (lib/file_source.bash, oracle); the writer is tools/file_churn.py.
#   1. discovery: app.log written for 200-500 ms, deleted, created again 0-500 ms later,
#      40 times, glob_interval 1s (watch: inotify): every line arrives (a file is opened when
#      inotify reports it, not at the next glob scan)
#   2. discovery: 10 files of 20000 lines, each renamed out of the include pattern as soon as
#      it is written: every line arrives
#   3. identity: 200 files a second for 5 s, each deleted 2 s after it was created, all of
#      one size, max_open_files 300: freed inodes are reused by later files, and every line
#      arrives (a reused inode is a new file, read from 0)
#   4. reporting: with the only descriptor held (max_open_files 1, a deleted file its
#      writer holds, rotate_wait 60s), 3 files are created and deleted before they can be
#      opened: each is logged once, mars_file_gave_up_total says 3, the exit summary too
#   5. foreign files: 200 files none of the patterns match created and deleted in the
#      watched directory of the logs and in the one above it cost no scan
#      (mars_file_scans_total stays), while deleting a file of ours does
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
source "$(dirname "$0")/lib/file_source.bash"

CHURN=$MARS_SRC/tests/integration/tools/file_churn.py

stop_mars() { # stop_mars ERR
    kill -TERM "$MARS_PID"
    wait_exit "$MARS_PID" 30 "$1"
    expect_eq "$EXIT_RC" 0 "exit code after SIGTERM; $(show_log "$1")"
}

total_expected() { awk '{n += $2} END {print n + 0}' "$EXPECT"; }

recreate() {
    new_section recreate
    local conf=$S/mars.yaml
    file_conf "$conf" "$S/out" "include: [$L/*.log]"
    start_mars /dev/null "$S/err" -c "$conf"
    wait_until $((10 * SLOW)) "mars running" grep -q 'running:' "$S/err"
    say "app.log: 30 generations of 100 lines, each living 200-500 ms"
    /usr/bin/python3 "$CHURN" recreate "$L/app.log" 30 100 $((200 * SLOW)) $((500 * SLOW)) 7 \
        >>"$EXPECT"
    wait_lines "$S/out" "$(total_expected)" 30
    stop_mars "$S/err"
    oracle strict "$S/out"
    pass "a file deleted and recreated every 0-500 ms: $O_SUMMARY"
}

renameout() {
    new_section renameout
    local conf=$S/mars.yaml
    file_conf "$conf" "$S/out" "include: [$L/*.log]"
    start_mars /dev/null "$S/err" -c "$conf"
    wait_until $((10 * SLOW)) "mars running" grep -q 'running:' "$S/err"
    say "10 files of 20000 lines, renamed out of the pattern as soon as written"
    /usr/bin/python3 "$CHURN" renameout "$L/app.log" 10 20000 50 3 >>"$EXPECT"
    wait_lines "$S/out" "$(total_expected)" 60
    stop_mars "$S/err"
    oracle strict "$S/out"
    pass "files renamed out of the pattern as soon as written: $O_SUMMARY"
}

inode_reuse() {
    new_section reuse
    local conf=$S/mars.yaml reused
    file_conf "$conf" "$S/out" "include: [$L/*.log], max_open_files: 300"
    start_mars /dev/null "$S/err" -c "$conf"
    wait_until $((10 * SLOW)) "mars running" grep -q 'running:' "$S/err"
    say "200 files/s for 5 s, each 20 lines, deleted 2 s after creation"
    # the inodes the files got, to show that some were reused
    (while sleep 0.05; do ls -i "$L" 2>/dev/null || true; done) >"$S/inodes" &
    local lister=$!
    _MARS_PIDS+=("$lister")
    /usr/bin/python3 "$CHURN" many "$L" 5 200 20 2 >>"$EXPECT"
    kill "$lister" 2>/dev/null || true
    wait "$lister" 2>/dev/null || true
    reused=$(awk '{print $1}' "$S/inodes" | sort -u | wc -l)
    say "$(wc -l <"$EXPECT") files got $reused distinct inodes"
    wait_lines "$S/out" "$(total_expected)" 60
    stop_mars "$S/err"
    oracle strict "$S/out"
    pass "1000 short-lived files with reused inodes: $O_SUMMARY"
}

reporting() {
    new_section report
    local conf=$S/mars.yaml port got i
    file_conf "$conf" "$S/out" "include: [$L/*.log], max_open_files: 1, rotate_wait: 60s" \
        "runtime: {workers: 1}"
    exec 3>>"$L/held.log"
    "$FW" gen held 0 10 >&3
    expect_key held 10
    start_mars /dev/null "$S/err" -c "$conf" 3>&- # only the writer holds held.log
    wait_lines "$S/out" 10 20
    rm "$L/held.log" # its writer holds it: it keeps the only descriptor
    sleep 1.5        # a sweep saw it leave its path
    for i in 0 1 2; do
        "$FW" gen "lost$i" 0 10 >"$L/lost$i.log"
        sleep 0.3
        rm "$L/lost$i.log"
    done
    port=$(api_port "$S/err")
    wait_until $((20 * SLOW)) "3 files given up in /metrics" \
        bash -c "curl -sf http://127.0.0.1:$port/metrics | grep -q '^mars_file_gave_up_total{component_id=\"in\"} 3\$'"
    exec 3>&-
    stop_mars "$S/err"
    oracle strict "$S/out"
    for i in 0 1 2; do
        got=$(grep -c "lost$i.log was deleted or renamed away before it could be opened: 315 bytes lost" "$S/err" || true)
        expect_eq "$got" 1 "ERROR lines for lost$i.log; $(show_log "$S/err")"
    done
    grep -q 'files: .*, 3 given up$' "$S/err" || fail "exit summary: $(show_log "$S/err")"
    pass "3 files gone before a descriptor was free: 3 logged, counted and summarised"
}

api_port() {
    grep -o "\[api\] listening on 127.0.0.1:[0-9]*" "$1" | head -n 1 | sed 's/.*://'
}

scans_of() { # scans_of PORT: mars_file_scans_total of source "in"
    curl -sf "http://127.0.0.1:$1/metrics" |
        sed -n 's/^mars_file_scans_total{component_id="in"} \([0-9]*\)$/\1/p'
}

scans_above() { # scans_above PORT N: mars_file_scans_total of "in" is above N
    local n
    n=$(scans_of "$1")
    [[ -n $n ]] && ((n > $2))
}

foreign() {
    new_section foreign
    local conf=$S/mars.yaml port s0 s1 i
    mkdir -p "$L/app"
    "$FW" gen a 0 10 >"$L/app/a.log"
    expect_key a 10
    # no periodic scan in the window: only inotify can cause one
    file_conf "$conf" "$S/out" "include: [$L/app/*.log], glob_interval: 60s" "runtime: {workers: 1}"
    start_mars /dev/null "$S/err" -c "$conf"
    wait_lines "$S/out" 10 20
    port=$(api_port "$S/err")
    s0=$(scans_of "$port")
    [[ -n $s0 ]] || fail "no mars_file_scans_total in /metrics"
    say "200 files of no pattern created and deleted in $L/app and in $L"
    for i in $(seq 200); do
        : >"$L/app/x$i.tmp"
        : >"$L/x$i.tmp"
        rm "$L/app/x$i.tmp" "$L/x$i.tmp"
    done
    # b.log's creation is heard after those events: once its lines are out, all were seen
    "$FW" gen b 0 10 >"$L/app/b.log"
    expect_key b 10
    wait_lines "$S/out" 20 20
    s1=$(scans_of "$port")
    expect_eq "$s1" "$s0" "scans after 400 foreign files came and went"
    rm "$L/app/a.log"
    wait_until $((20 * SLOW)) "a scan after a.log was deleted" scans_above "$port" "$s1"
    stop_mars "$S/err"
    oracle strict "$S/out"
    pass "400 foreign files cost no scan ($s0 before and after); deleting a.log did"
}

section 1.recreate recreate
section 2.renameout renameout
section 3.reuse inode_reuse
section 4.report reporting
section 5.foreign foreign
finish "short-lived files"
