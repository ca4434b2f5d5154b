#!/usr/bin/env bash
# The file source under kill -9 (issue 5, Tests): three writers append ~10k lines/s each
# (KEY:SEQ:PAYLOAD, tools/file_writer.c; one of them rotates its file by rename + create
# every 0.3 s, rotated names matched) while mars is started, left running for a random
# 50-500 ms and killed with SIGKILL, again and again (CRASH_ITERATIONS, default 20, and on
# until the writers are done); then `mars --once` drains what is left. Each run writes its
# own output file. The oracle (lib/file_source.bash, replay): no line missing, none
# corrupt, lines of a file in order within a run, and a run resumes a file at or before
# the line after the last one delivered (never after a gap). Duplicates are what a
# restart re-reads from the last checkpoint: they are counted and must stay within the
# un-checkpointed window, checkpoint_interval (100ms) of reading per crash.
# tests/integration/tools/file_crash_soak.sh runs this with many more iterations.
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
source "$(dirname "$0")/lib/file_source.bash"

ITER=${CRASH_ITERATIONS:-20}
SEED=${CRASH_SEED:-$$}
RANDOM=$SEED
RATE_PER_WRITER=10000 # lines/s: bursts of 100 every 10 ms
PER_WRITER=$((ITER * 3000))
MAX_ITER=$((ITER * 3))

new_section crash
CONF=$S/mars.yaml
OPTS="include: [\"$L/*.log*\"], checkpoint_interval: 100ms"
say "seed $SEED: $ITER+ kill -9 runs while 3 writers append $PER_WRITER lines each (one rotating)"
WRITERS=()
for k in a b; do
    bg "$FW" append "$L/$k.log" "$k" 0 "$PER_WRITER" 100 10000
    WRITERS+=("$BG_PID")
    expect_key "$k" "$PER_WRITER"
done
# the third rotates (rename + create, 100 lines after each rename) every 3000 lines, ~0.3 s;
# rotated names match (r.log.<n>): a file rotated while mars is down is found again
GENS=$((PER_WRITER / 3000))
bg "$FW" rotate "$L/r.log" r "$GENS" 3000 100 100 10000
WRITERS+=("$BG_PID")
for ((g = 0; g < GENS; g++)); do
    if ((g + 1 < GENS)); then expect_key "r.g$g" 3100; else expect_key "r.g$g" 3000; fi
done
writers_alive() {
    local p
    for p in "${WRITERS[@]}"; do alive "$p" && return 0; done
    return 1
}

outs=()
i=0
ran_ms=0
while ((i < ITER)) || writers_alive; do
    ((i < MAX_ITER)) || fail "the writers did not finish within $MAX_ITER runs"
    i=$((i + 1))
    out=$S/out.$i
    outs+=("$out")
    file_conf "$CONF" "$out" "$OPTS"
    ms=$((50 + RANDOM % 451))
    start_mars /dev/null "$S/err.$i" -c "$CONF"
    # the random moment of the kill: this sleep is the test, not a synchronisation
    sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
    alive "$MARS_PID" || fail "run $i: mars exited on its own: $(show_log "$S/err.$i")"
    kill -KILL "$MARS_PID"
    wait "$MARS_PID" 2>/dev/null || true
    ran_ms=$((ran_ms + ms))
done
for p in "${WRITERS[@]}"; do
    wait "$p" || fail "a writer failed"
done
say "$i runs killed (${ran_ms} ms of running in all); the writers are done; --once drains"
file_conf "$CONF" "$S/out.final" "$OPTS"
run_mars $((60 * SLOW)) -c "$CONF" --once 2>"$S/err.final"
expect_eq "$MARS_RC" 0 "--once exit code; $(show_log "$S/err.final")"

for f in "$S"/err.*; do
    if grep -q 'cannot use checkpoint journal\|ERROR' "$f"; then
        fail "errors in $f: $(show_log "$f")"
    fi
done
torn_journal=$(cat "$S"/err.* | grep -c 'dropped a torn' || true)

oracle replay "${outs[@]}" "$S/out.final"
# The bound: each crash re-reads at most what was delivered after the last checkpoint
# was written, ~checkpoint_interval of reading: at the writers' pace 3 x 10000 x 0.1 s
# = 3000 lines, more just after a restart, when mars catches up with the lines written
# while it was down. Allow 4x that per crash.
per_interval=$((3 * RATE_PER_WRITER / 10))
bound=$((i * per_interval * 4))
say "duplicates: $O_DUPS in $i crashes ($((O_DUPS / i)) per crash, at most $O_MAXRUNDUPS in one run; one checkpoint_interval of writes is $per_interval lines; bound $bound); torn journal tails recovered: $torn_journal; torn output lines: $O_TORN"
((O_DUPS <= bound)) || fail "$O_DUPS duplicates after $i crashes exceed the bound $bound ($O_SUMMARY)"
pass "kill -9 x$i (seed $SEED): $O_SUMMARY ($(elapsed_ms) ms)"
