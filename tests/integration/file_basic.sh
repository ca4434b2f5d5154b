#!/usr/bin/env bash
# The file source, basic reliability (issue 5, Tests): every line is KEY:SEQ:PAYLOAD
# (tools/file_writer.c) and each check is exact: every line written is delivered once, in
# order per file, byte for byte (lib/file_source.bash, oracle).
#   1. append while reading: two writers append 200k lines in bursts while mars tails
#      (with inotify, then again with watch: poll, and with runtime.fixed_buffers, where
#      io_uring reads into registered blocks)
#   2. restart resumes where it stopped: SIGTERM in the middle of the writes, more lines
#      while mars is down, start again: nothing missing and no duplicates after a clean stop
#   3. read_from: end on the first start skips what exists; later lines (and files found
#      later) are read; also for existing files that wait for a descriptor
#      (max_open_files) and are opened later
#   4. a partial last line is emitted after line_timeout (200ms) as a line of its own, and
#      the rest of it, once its newline arrives, as the next line; not emitted at a stop
#      (the next start reads it whole)
#   5. --once reads everything (empty files, a missing last newline) and exits 0, leaving
#      the files' access times alone (O_NOATIME); a second --once reads only what was added
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
source "$(dirname "$0")/lib/file_source.bash"


append_while_reading() { # [WATCH] [fixed]
    new_section "append${1:-}${2:-}"
    local conf=$S/mars.yaml top=""
    if [[ ${2:-} == fixed ]]; then top=$'runtime: {fixed_buffers: true}\nlog: {level: debug}'; fi
    file_conf "$conf" "$S/out" "include: [$L/*.log]${1:+, watch: $1}" "$top"
    start_mars /dev/null "$S/err" -c "$conf"
    say "2 writers x 100000 lines in bursts of 1000 while mars runs"
    bg "$FW" append "$L/a.log" a 0 100000 1000 10000
    local wa=$BG_PID
    bg "$FW" append "$L/b.log" b 0 100000 1000 10000
    wait "$wa" "$BG_PID" || fail "a writer failed"
    expect_key a 100000
    expect_key b 100000
    wait_lines "$S/out" 200000 30
    kill -TERM "$MARS_PID"
    wait_exit "$MARS_PID" 15 "$S/err"
    expect_eq "$EXIT_RC" 0 "exit code after SIGTERM; $(show_log "$S/err")"
    oracle strict "$S/out"
    expect_eq "$(stat_of "$S/err" in sent)" 200000 "source sent"
    expect_eq "$(stat_of "$S/err" in acknowledged)" 200000 "source acknowledged"
    expect_eq "$(stat_of "$S/err" in errors)" 0 "source errors"
    if [[ ${2:-} == fixed ]] && grep -q "io backend io_uring" "$S/err"; then
        grep -q "chunks registered for fixed reads" "$S/err" ||
            fail "fixed_buffers: true on io_uring registered nothing: $(show_log "$S/err")"
    fi
    pass "append while reading${1:+ (watch: $1)}${2:+ (runtime.fixed_buffers)}: $O_SUMMARY"
}

restart_resumes() {
    new_section restart
    local conf=$S/mars.yaml stopped_at
    "$FW" gen a 0 10000 >"$L/a.log"
    "$FW" gen b 0 10000 >"$L/b.log"
    file_conf "$conf" "$S/out1" "include: [$L/*.log]"
    start_mars /dev/null "$S/err1" -c "$conf"
    wait_lines "$S/out1" 20000 20
    say "2 writers append 60000 lines each while mars runs; SIGTERM half way"
    bg "$FW" append "$L/a.log" a 10000 60000 500 5000
    local wa=$BG_PID
    bg "$FW" append "$L/b.log" b 10000 60000 500 5000
    wait_lines "$S/out1" 80000 30
    kill -TERM "$MARS_PID"
    wait_exit "$MARS_PID" 15 "$S/err1"
    expect_eq "$EXIT_RC" 0 "exit code after SIGTERM; $(show_log "$S/err1")"
    stopped_at=$(lines_of "$S/out1")
    wait "$wa" "$BG_PID" || fail "a writer failed"
    say "stopped after $stopped_at lines; the writers finish; a new file c.log while mars is down"
    "$FW" append "$L/c.log" c 0 5000 5000 0
    expect_key a 70000
    expect_key b 70000
    expect_key c 5000
    file_conf "$conf" "$S/out2" "include: [$L/*.log]"
    start_mars /dev/null "$S/err2" -c "$conf"
    wait_lines "$S/out2" $((145000 - stopped_at)) 30
    say "the rest arrived; 20000 more lines while it runs"
    "$FW" append "$L/a.log" a 70000 20000 2000 2000
    expect_key a 90000
    wait_lines "$S/out2" $((165000 - stopped_at)) 30
    kill -TERM "$MARS_PID"
    wait_exit "$MARS_PID" 15 "$S/err2"
    expect_eq "$EXIT_RC" 0 "exit code after SIGTERM; $(show_log "$S/err2")"
    # strict: a key may continue in a later run only right after its last delivered line
    oracle strict "$S/out1" "$S/out2"
    pass "restart resumes where it stopped (SIGTERM after $stopped_at lines): $O_SUMMARY"
}

read_from_end() {
    new_section read_from
    local conf=$S/mars.yaml
    say "old.log has 1000 lines before the first start"
    "$FW" gen old 0 1000 >"$L/old.log"
    file_conf "$conf" "$S/out" "include: [$L/*.log], read_from: end, glob_interval: 100ms"
    start_mars /dev/null "$S/err" -c "$conf"
    wait_until $((10 * SLOW)) "mars opens old.log" holds_open "$MARS_PID" "$L/old.log"
    "$FW" append "$L/old.log" old 1000 500 100 1000
    "$FW" append "$L/new.log" new 0 300 100 1000
    wait_lines "$S/out" 800 20
    kill -TERM "$MARS_PID"
    wait_exit "$MARS_PID" 15 "$S/err"
    expect_eq "$EXIT_RC" 0 "exit code; $(show_log "$S/err")"
    if grep -q '^old:000000000:' "$S/out"; then
        fail "read_from: end delivered the lines old.log had before the first start ($(grep -c '^old:' "$S/out") old.log lines in all, 500 expected)"
    fi
    grep '^old:' "$S/out" >"$S/old" || true
    "$FW" gen old 1000 500 >"$S/old.want"
    cmp -s "$S/old" "$S/old.want" || fail "old.log: expected exactly its lines 1000..1499"
    expect_key new 300
    grep -v '^old:' "$S/out" >"$S/new" || true
    oracle strict "$S/new"
    pass "read_from: end skips what exists at the first start; appended lines and new files are read"
}

read_from_end_waiting() {
    new_section read_from_wait
    local conf=$S/mars.yaml f
    say "read_from: end, 3 existing files, max_open_files 1 (one worker): two wait for a descriptor"
    for f in a b c; do "$FW" gen "old$f" 0 100 >"$L/$f.log"; done
    file_conf "$conf" "$S/out" "include: [$L/*.log], read_from: end, max_open_files: 1" \
        "runtime: {workers: 1}"
    start_mars /dev/null "$S/err" -c "$conf" --log-level debug
    # a drained file is closed at once when another waits: the log says when each opened
    # shellcheck disable=SC2317 # called through wait_until
    all_opened() {
        for f in a b c; do
            grep -q "opened $L/$f.log at offset" "$S/err" || return 1
        done
    }
    wait_until $((15 * SLOW)) "mars opens a.log, b.log and c.log (one at a time)" all_opened
    for f in a b c; do
        "$FW" append "$L/$f.log" "old$f" 100 10 10 0
        expect_key "old$f" 110
    done
    for f in a b c; do wait_seq "$S/out" "old$f" 109 15; done
    kill -TERM "$MARS_PID"
    wait_exit "$MARS_PID" 15 "$S/err"
    expect_eq "$EXIT_RC" 0 "exit code; $(show_log "$S/err")"
    for f in a b c; do
        if grep -q "^old$f:000000000:" "$S/out"; then
            fail "read_from: end: $f.log, opened when a descriptor was free, was read from its beginning ($(grep -c "^old$f:" "$S/out") lines; 10 expected)"
        fi
        grep "^old$f:" "$S/out" >"$S/got"
        "$FW" gen "old$f" 100 10 >"$S/want"
        cmp -s "$S/got" "$S/want" || fail "$f.log: expected exactly its lines 100..109"
    done
    pass "read_from: end holds for files that waited for a descriptor"
}

partial_last_line() {
    new_section partial
    local conf=$S/mars.yaml t0 t_lines t_partial
    file_conf "$conf" "$S/out1" "include: [$L/*.log], line_timeout: 200ms"
    say "a partial last line with line_timeout: 200ms"
    : >"$L/p.log"
    start_mars /dev/null "$S/err1" -c "$conf"
    wait_until $((10 * SLOW)) "mars opens p.log" holds_open "$MARS_PID" "$L/p.log"
    printf 'one\ntwo\nthe-head' >>"$L/p.log"
    t0=$(date +%s%N)
    wait_lines "$S/out1" 2 10
    t_lines=$((($(date +%s%N) - t0) / 1000000))
    wait_lines "$S/out1" 3 10
    t_partial=$((($(date +%s%N) - t0) / 1000000))
    printf 'one\ntwo\nthe-head\n' >"$S/want1"
    cmp -s "$S/out1" "$S/want1" || fail "after line_timeout: expected one, two, the-head; got: $(head -c 200 "$S/out1" | tr '\n' '|')"
    ((t_partial >= 200)) || fail "the partial line came ${t_partial} ms after it was written, before line_timeout (200 ms)"
    # the sweep that emits it runs every second (inotify), and the first sweep after the
    # write may only notice the change: line_timeout + 2 ticks, plus slack
    ((t_partial <= 3000 * SLOW)) || fail "the partial line came ${t_partial} ms after it was written (line_timeout 200 ms)"
    say "the partial line came ${t_partial} ms after it was written (whole lines: ${t_lines} ms); now its rest"
    printf -- '-the-rest\nthree\n' >>"$L/p.log"
    wait_lines "$S/out1" 5 10
    printf 'one\ntwo\nthe-head\n-the-rest\nthree\n' >"$S/want1"
    cmp -s "$S/out1" "$S/want1" || fail "after the newline: expected the rest as its own line; got: $(head -c 200 "$S/out1" | tr '\n' '|')"
    kill -TERM "$MARS_PID"
    wait_exit "$MARS_PID" 15 "$S/err1"
    expect_eq "$EXIT_RC" 0 "exit code; $(show_log "$S/err1")"

    say "a partial line pending at SIGTERM (line_timeout 1h) is read whole at the next start"
    file_conf "$conf" "$S/out2" "include: [$L/*.log], line_timeout: 1h"
    start_mars /dev/null "$S/err2" -c "$conf"
    wait_until $((10 * SLOW)) "mars opens p.log" holds_open "$MARS_PID" "$L/p.log"
    printf 'four\nstopped-mid' >>"$L/p.log"
    wait_lines "$S/out2" 1 10
    kill -TERM "$MARS_PID"
    wait_exit "$MARS_PID" 15 "$S/err2"
    expect_eq "$EXIT_RC" 0 "exit code; $(show_log "$S/err2")"
    printf 'four\n' >"$S/want2"
    cmp -s "$S/out2" "$S/want2" || fail "the stop emitted the unfinished line: $(head -c 200 "$S/out2" | tr '\n' '|')"
    printf -- '-line\nfive\n' >>"$L/p.log"
    file_conf "$conf" "$S/out3" "include: [$L/*.log], line_timeout: 1h"
    run_mars $((20 * SLOW)) -c "$conf" --once 2>"$S/err3"
    expect_eq "$MARS_RC" 0 "--once exit code; $(show_log "$S/err3")"
    printf 'stopped-mid-line\nfive\n' >"$S/want3"
    cmp -s "$S/out3" "$S/want3" || fail "after the restart: expected stopped-mid-line, five; got: $(head -c 200 "$S/out3" | tr '\n' '|')"
    pass "partial last line: emitted ${t_partial} ms after it was written (line_timeout 200ms), its rest as the next line; kept back at a stop"
}

once() {
    new_section once
    local conf=$S/mars.yaml i
    say "--once: 5 files (one empty, one without its last newline)"
    for i in 1 2 3; do
        "$FW" gen "o$i" 0 $((i * 20000)) >"$L/o$i.log"
        expect_key "o$i" $((i * 20000))
    done
    : >"$L/empty.log"
    printf 'no-newline-1\nno-newline-2' >"$L/nonl.log"
    # an access time older than the last write: relatime would move it at the next read
    touch -a -d @978307200 "$L/o1.log"
    file_conf "$conf" "$S/out1" "include: [$L/*.log]"
    run_mars $((30 * SLOW)) -c "$conf" --once 2>"$S/err1"
    expect_eq "$MARS_RC" 0 "--once exit code; $(show_log "$S/err1")"
    expect_eq "$(stat -c %X "$L/o1.log")" 978307200 "o1.log's atime after mars read it (O_NOATIME)"
    grep '^no-newline' "$S/out1" >"$S/nonl" || true
    printf 'no-newline-1\nno-newline-2\n' >"$S/want"
    cmp -s "$S/nonl" "$S/want" || fail "the file without a last newline: $(tr '\n' '|' <"$S/nonl")"
    grep -v '^no-newline' "$S/out1" >"$S/rest1" || true
    oracle strict "$S/rest1"
    expect_eq "$(stat_of "$S/err1" in acknowledged)" 120002 "acknowledged"
    say "a second --once with 1000 more lines in o1.log reads only those"
    "$FW" append "$L/o1.log" o1 20000 1000 1000 0
    file_conf "$conf" "$S/out2" "include: [$L/*.log]"
    run_mars $((30 * SLOW)) -c "$conf" --once 2>"$S/err2"
    expect_eq "$MARS_RC" 0 "second --once exit code; $(show_log "$S/err2")"
    expect_key o1 21000
    oracle strict "$S/rest1" "$S/out2"
    pass "--once reads everything and exits 0; the next --once only the new lines"
}

section "1. append while reading" append_while_reading
section "1b. append while reading, watch: poll" append_while_reading poll
section "1c. append while reading, runtime.fixed_buffers" append_while_reading "" fixed
section "2. restart resumes where it stopped" restart_resumes
section "3. read_from: end" read_from_end
section "3b. read_from: end beyond max_open_files" read_from_end_waiting
section "4. partial last line" partial_last_line
section "5. --once" once
finish "file source basics"
