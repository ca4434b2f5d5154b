#!/usr/bin/env bash
# The file source with awkward input (issue 5, Tests):
#   1. a 10 MiB line with max_line_bytes 1MiB. oversize: split, the file written in parts
#      while mars tails it (cuts inside the long line): the pieces join back to the line
#      and the lines after it are intact and still tailed; oversize: truncate (--once):
#      one 1 MiB piece, then the following lines intact; both counted
#   2. binary garbage (random bytes, a run of NULs, CRs): with charset: binary the output
#      is byte-identical to the input plus the final newline it lacks; with utf-8 the same
#      bytes come out and invalid sequences are counted; valid multibyte UTF-8 counts none
#   3. what cannot be read: with mars running as an unprivileged user (setpriv), a file
#      it may not read is reported and skipped and read once it is made readable; a
#      directory it may not search is skipped. Whoever runs mars: a FIFO and a directory
#      matching the glob are skipped, and mars keeps tailing the other files
#   4. two mars on one data_dir: the second exits 3 with "in use by another mars"
#   5. patterns sharing a directory part (listed once for all of them): N.log,
#      N.log.<time> and a literal name under */c/, with an exclude; names only one pattern,
#      none (other.txt, .hidden.log, a *.gz) or a directory match; a pod directory made
#      while mars runs is found, and so is a file in it
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
source "$(dirname "$0")/lib/file_source.bash"

stop_mars() { # stop_mars ERR
    kill -TERM "$MARS_PID"
    wait_exit "$MARS_PID" 15 "$1"
    expect_eq "$EXIT_RC" 0 "exit code after SIGTERM; $(show_log "$1")"
}

MIB=$((1024 * 1024))
LONG=$((10 * MIB + 100)) # the last piece is short, so no piece ends at the newline

long_line() {
    new_section long
    local conf=$S/mars.yaml pieces=$((LONG / MIB + 1)) n errors
    # varied content (base64 of random bytes), so a misplaced piece cannot go unnoticed
    head -c $((LONG * 3 / 4 + 3)) /dev/urandom | base64 -w 0 >"$S/long"
    truncate -s "$LONG" "$S/long"
    {
        printf 'first\nsecond\n'
        cat "$S/long"
        printf '\nafter1\nafter2\n'
    } >"$S/input"
    say "oversize: split, the file written in 3 parts while mars runs"
    file_conf "$conf" "$S/out1" "include: [$L/*.log], max_line_bytes: 1MiB"
    : >"$L/long.log"
    start_mars /dev/null "$S/err1" -c "$conf"
    wait_until $((10 * SLOW)) "mars opens long.log" holds_open "$MARS_PID" "$L/long.log"
    part() { dd if="$S/input" iflag=skip_bytes,count_bytes skip="$1" count="$2" status=none >>"$L/long.log"; }
    part 0 3000000
    wait_lines "$S/out1" 4 20 # first, second and two pieces
    part 3000000 5000000
    wait_lines "$S/out1" 9 20
    part 8000000 $((LONG + 100))
    wait_lines "$S/out1" $((2 + pieces + 2)) 20
    say "the line after the long one arrived; one more line: the file is still tailed"
    printf 'later\n' >>"$L/long.log"
    wait_lines "$S/out1" $((2 + pieces + 3)) 20
    stop_mars "$S/err1"
    expect_eq "$(lines_of "$S/out1")" $((2 + pieces + 3)) "split: output lines"
    expect_eq "$(sed -n '1,2p' "$S/out1")" $'first\nsecond' "split: lines before the long one"
    n=$(sed -n "3,$((1 + pieces))p" "$S/out1" | awk -v m=$MIB 'length($0) != m' | wc -l)
    expect_eq "$n" 0 "split: pieces that are not 1 MiB"
    sed -n "3,$((2 + pieces))p" "$S/out1" | tr -d '\n' | cmp -s - "$S/long" ||
        fail "split: the pieces joined do not reproduce the 10 MiB line"
    expect_eq "$(tail -n 3 "$S/out1")" $'after1\nafter2\nlater' "split: lines after the long one"
    errors=$(stat_of "$S/err1" in errors)
    ((errors > 0)) || fail "split: the oversize line is not counted"

    say "oversize: truncate (--once): the first 1 MiB, then the following lines"
    cp "$S/input" "$L/long2.log"
    rm "$L/long.log"
    DATA=$S/data2
    file_conf "$conf" "$S/out2" "include: [$L/*.log], max_line_bytes: 1MiB, oversize: truncate"
    run_mars $((30 * SLOW)) -c "$conf" --once 2>"$S/err2"
    expect_eq "$MARS_RC" 0 "truncate: --once exit code; $(show_log "$S/err2")"
    {
        printf 'first\nsecond\n'
        head -c $MIB "$S/long"
        printf '\nafter1\nafter2\n'
    } >"$S/want2"
    cmp -s "$S/want2" "$S/out2" || fail "truncate: the output is not first, second, 1 MiB of the long line, after1, after2"
    expect_eq "$(stat_of "$S/err2" in errors)" 1 "truncate: oversize lines counted"
    pass "a 10 MiB line: split into $pieces pieces that join back, or truncated to 1 MiB; the file goes on"
}

binary() {
    new_section binary
    local conf=$S/mars.yaml errors
    {
        head -c 1000000 /dev/urandom
        head -c 100000 /dev/zero
        printf '\r\n\r\r\nafter the zeros\n'
        head -c 200000 /dev/urandom | tr -d '\n\0' # a last NUL reads as empty below
    } >"$S/garbage"
    [[ -n $(tail -c 1 "$S/garbage") ]] || fail "generator: the garbage must not end with a newline"
    cp "$S/garbage" "$L/garbage.log"
    say "charset: binary (--once): output == input + a final newline"
    file_conf "$conf" "$S/out1" "include: [$L/*.log], charset: binary"
    run_mars $((30 * SLOW)) -c "$conf" --once 2>"$S/err1"
    expect_eq "$MARS_RC" 0 "binary: --once exit code; $(show_log "$S/err1")"
    cat "$S/garbage" <(printf '\n') | cmp -s - "$S/out1" ||
        fail "binary: the output is not the input plus a newline: $(cat "$S/garbage" <(printf '\n') | cmp - "$S/out1" 2>&1 | head -n 2)"
    expect_eq "$(stat_of "$S/err1" in errors)" 0 "binary: source errors"

    say "charset: utf-8 (--once): the same bytes, invalid sequences counted"
    DATA=$S/data2
    file_conf "$conf" "$S/out2" "include: [$L/*.log], charset: utf-8"
    run_mars $((30 * SLOW)) -c "$conf" --once 2>"$S/err2"
    expect_eq "$MARS_RC" 0 "utf-8: --once exit code; $(show_log "$S/err2")"
    cat "$S/garbage" <(printf '\n') | cmp -s - "$S/out2" || fail "utf-8: the output is not the input plus a newline"
    errors=$(stat_of "$S/err2" in errors)
    ((errors > 1000)) || fail "utf-8: only $errors invalid sequences counted in 1.2 MB of random bytes"
    grep -q 'invalid UTF-8' "$S/err2" || fail "utf-8: no count of invalid UTF-8 in the log: $(show_log "$S/err2")"

    say "valid multibyte UTF-8 counts nothing"
    rm "$L/garbage.log"
    for _ in $(seq 200); do printf 'héllo wörld ✓ 日本語 🙂 Ωmega\n'; done >"$L/utf8.log"
    DATA=$S/data3
    file_conf "$conf" "$S/out3" "include: [$L/*.log]"
    run_mars $((30 * SLOW)) -c "$conf" --once 2>"$S/err3"
    expect_eq "$MARS_RC" 0 "valid utf-8: --once exit code; $(show_log "$S/err3")"
    cmp -s "$L/utf8.log" "$S/out3" || fail "valid utf-8: output differs"
    expect_eq "$(stat_of "$S/err3" in errors)" 0 "valid utf-8: source errors"
    pass "binary garbage passes byte for byte; $errors invalid UTF-8 sequences counted"
}

unreadable_as_user() {
    new_section unreadable
    local conf=$S/mars.yaml
    if ((EUID != 0)) || ! command -v setpriv >/dev/null ||
        ! setpriv --reuid=65534 --regid=65534 --clear-groups true 2>/dev/null; then
        say "SKIP: cannot run mars as another user (not root, or no setpriv)"
        return 0
    fi
    # mars runs as nobody (65534): it can reach the test directory, own its section
    chmod 711 "$TMP"
    chown -R 65534:65534 "$S"
    "$FW" gen ok 0 100 >"$L/ok.log"
    "$FW" gen secret 0 100 >"$L/secret.log"
    chown 0:0 "$L/secret.log"
    chmod 600 "$L/secret.log"
    mkdir -p "$L/private"
    "$FW" gen hidden 0 100 >"$L/private/hidden.log"
    chmod 700 "$L/private"
    chown 65534:65534 "$L/ok.log"
    file_conf "$conf" "$S/out" "include: [\"$L/**/*.log\"], glob_interval: 100ms"
    chown 65534:65534 "$conf"
    say "as nobody: ok.log readable, secret.log not (0600 root), private/ not searchable"
    MARS_PID=
    setpriv --reuid=65534 --regid=65534 --clear-groups \
        env --default-signal=INT "$MARS_BIN" -c "$conf" >/dev/null 2>"$S/err" </dev/null &
    MARS_PID=$!
    _MARS_PIDS+=("$MARS_PID")
    expect_key ok 100
    wait_lines "$S/out" 100 15
    wait_until $((10 * SLOW)) "an error about secret.log" grep -q 'secret.log' "$S/err"
    alive "$MARS_PID" || fail "mars exited: $(show_log "$S/err")"
    say "secret.log made readable: it is read"
    chmod 644 "$L/secret.log"
    expect_key secret 100
    wait_seq "$S/out" secret 99 15
    "$FW" append "$L/ok.log" ok 100 10 10 0
    expect_key ok 110
    wait_seq "$S/out" ok 109 15
    stop_mars "$S/err"
    oracle strict "$S/out"
    grep -q 'Permission denied' "$S/err" || fail "no 'Permission denied' in the log: $(show_log "$S/err")"
    pass "an unreadable file is reported and read when it becomes readable; an unsearchable directory is skipped"
}

not_regular() {
    new_section special
    local conf=$S/mars.yaml
    mkfifo "$L/fifo.log"
    mkdir "$L/dir.log"
    "$FW" gen dirfile 0 5 >"$L/dir.log/inner.txt"
    "$FW" gen plain 0 1000 >"$L/plain.log"
    file_conf "$conf" "$S/out" "include: [$L/*.log], glob_interval: 100ms"
    say "a FIFO and a directory named *.log next to a regular file"
    start_mars /dev/null "$S/err" -c "$conf"
    expect_key plain 1000
    wait_lines "$S/out" 1000 15
    "$FW" append "$L/plain.log" plain 1000 1000 100 1000
    expect_key plain 2000
    wait_seq "$S/out" plain 1999 15
    # nothing may have opened the FIFO: a writer would find a reader
    if timeout 1 bash -c "exec 3>'$L/fifo.log'" 2>/dev/null; then
        fail "mars opened the FIFO for reading"
    fi
    stop_mars "$S/err"
    oracle strict "$S/out"
    pass "a FIFO and a directory matching the glob are skipped; tailing goes on"
}

two_on_one_data_dir() {
    new_section lock
    local conf=$S/mars.yaml
    "$FW" gen x 0 10 >"$L/x.log"
    file_conf "$conf" "$S/out" "include: [$L/*.log]"
    start_mars /dev/null "$S/err1" -c "$conf"
    local first=$MARS_PID
    wait_lines "$S/out" 10 15
    say "a second mars on the same data_dir"
    file_conf "$S/mars2.yaml" "$S/out2" "include: [$L/*.log]"
    run_mars $((15 * SLOW)) -c "$S/mars2.yaml" 2>"$S/err2"
    expect_eq "$MARS_RC" 3 "second mars: exit code; $(show_log "$S/err2")"
    grep -q 'in use by another mars' "$S/err2" || fail "second mars: no 'in use by another mars': $(show_log "$S/err2")"
    grep -q "pid $first" "$S/err2" || say "note: the message does not name pid $first: $(grep 'in use' "$S/err2")"
    [[ ! -s $S/out2 ]] || fail "the second mars delivered lines"
    alive "$first" || fail "the first mars died"
    MARS_PID=$first
    stop_mars "$S/err1"
    say "after the first one stopped, a mars on that data_dir starts (and reads nothing twice)"
    run_mars $((15 * SLOW)) -c "$S/mars2.yaml" --once 2>"$S/err3"
    expect_eq "$MARS_RC" 0 "third mars: exit code; $(show_log "$S/err3")"
    [[ ! -s $S/out2 ]] || fail "the third mars read x.log again"
    pass "two mars on one data_dir: the second exits 3 with a clear message"
}

shared_dirs() {
    new_section shared
    local conf=$S/mars.yaml p
    for p in p1 p2; do
        mkdir -p "$L/$p/c" "$L/$p/c/dir.log"
        "$FW" gen "$p-log" 0 100 >"$L/$p/c/0.log"
        "$FW" gen "$p-rot" 0 50 >"$L/$p/c/0.log.20261206-101500"
        "$FW" gen "$p-app" 0 20 >"$L/$p/c/app.txt"
        "$FW" gen "$p-gz" 0 5 >"$L/$p/c/0.log.20261206-101400.gz"
        "$FW" gen "$p-other" 0 5 >"$L/$p/c/other.txt"
        "$FW" gen "$p-hidden" 0 5 >"$L/$p/c/.hidden.log"
    done
    file_conf "$conf" "$S/out" "include: [\"$L/*/c/*.log\", \"$L/*/c/*.log.*\", \"$L/*/c/app.txt\"], exclude: [\"$L/*/c/*.gz\"], glob_interval: 200ms"
    start_mars /dev/null "$S/err" -c "$conf"
    for p in p1 p2; do
        expect_key "$p-log" 100
        expect_key "$p-rot" 50
        expect_key "$p-app" 20
    done
    wait_lines "$S/out" 340 15
    say "a pod directory made while mars runs, then a file in it"
    mkdir -p "$L/p3/c"
    "$FW" gen p3-log 0 30 >"$L/p3/c/0.log"
    expect_key p3-log 30
    wait_lines "$S/out" 370 15
    stop_mars "$S/err"
    if grep -Eq '^p[0-9]-(gz|other|hidden):' "$S/out"; then
        fail "a file no pattern takes was read: $(grep -Eo '^p[0-9]-(gz|other|hidden)' "$S/out" | sort -u | tr '\n' ' ')"
    fi
    oracle strict "$S/out"
    pass "patterns sharing a directory: each file once, what none takes left alone"
}

section "1. a 10 MiB line" long_line
section "2. binary garbage" binary
section "3. unreadable (as an unprivileged user)" unreadable_as_user
section "3b. a FIFO and a directory matching the glob" not_regular
section "4. two mars on one data_dir" two_on_one_data_dir
section "5. patterns sharing a directory" shared_dirs
finish "file source edge cases"
