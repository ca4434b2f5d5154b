# shellcheck shell=bash disable=SC2034  # sets variables for the scripts that source it
# Helpers of the file source tests (tests/integration/file_*.sh), sourced after common.bash.
#
#   $FW                    the writer (tools/file_writer.c, built here into $TMP): every
#                          line is KEY:SEQ:PAYLOAD, PAYLOAD a function of SEQ
#   $SLOW                  1, or 3 under a sanitizer build (MARS_SANITIZED=1): multiply
#                          deadlines by it
#   file_conf CONF OUT OPTS [TOP] [SINKOPTS] [MORE_SINKS]  a config: file source `in`
#                          with the flow-mapping OPTS (e.g. "include: [$D/*.log]"), file sink
#                          `out` (text) to OUT with SINKOPTS, data_dir $DATA; TOP is extra
#                          top-level YAML, MORE_SINKS more lines under sinks:
#   SLOW_SINK              a MORE_SINKS: a blackhole taking 200k lines/s fed by `in`, so
#                          that mars reads at that pace (backpressure)
#   wait_lines OUT N SECS  waits until OUT has at least N lines (fails after SECS*SLOW,
#                          or when the mars of $MARS_PID has exited)
#   expect_key KEY COUNT   sets a key's expectation (in $EXPECT): lines 0..COUNT-1
#   oracle MODE OUT...     checks the outputs (in the order they were written, one per mars
#                          run) against $EXPECT and sets O_DELIVERED O_MISSING O_DUPS
#                          O_DISORDER O_BAD O_FOREIGN O_TORN O_SUMMARY, and O_MAXRUNDUPS (the
#                          most duplicates one run delivered). MODE strict fails
#                          the test unless every expected line is there exactly once, in
#                          order per key, byte for byte (also checked with cmp against the
#                          lines fw gen makes); MODE replay allows what a restart after a
#                          crash may legitimately produce: a run may begin a key again at
#                          or before the last seq already delivered (duplicates, counted),
#                          and a run's output may end in a torn line (counted, ignored).
#                          Everything else (a gap, a line out of order within a run, a
#                          corrupt or foreign line, a missing line) fails the test.
#                          MODE lossy (one run) allows missing lines (counted in
#                          O_MISSING), nothing else: lines of a key in increasing order,
#                          no duplicates.
#   peak_rss_kb PID        VmHWM of a running process, in KiB

FW=$TMP/fw
cc -O2 -std=c11 -Wall -Wextra -Werror -o "$FW" "$MARS_SRC/tests/integration/tools/file_writer.c" ||
    fail "cannot build tests/integration/tools/file_writer.c"

if [[ ${MARS_SANITIZED:-} == 1 ]]; then SLOW=3; else SLOW=1; fi
DATA=$TMP/data
EXPECT=$TMP/expect
: >"$EXPECT"

file_conf() { # file_conf CONF OUT OPTS [TOP] [SINKOPTS] [MORE_SINKS]
    cat >"$1" <<EOF
data_dir: $DATA
${4:-}
sources:
  in: {type: file, $3}
sinks:
  out: {type: file, inputs: [in], path: $2${5:+, $5}}
${6:-}
EOF
}

SLOW_SINK="  slow: {type: blackhole, inputs: [in], rate: 200000, buffer: {max_events: 10000}}"

wait_lines() { # wait_lines OUT N SECS
    local out=$1 n=$2 secs=$(($3 * SLOW)) have
    local deadline=$((SECONDS + secs))
    while :; do
        have=$(lines_of "$out")
        ((have >= n)) && return 0
        if [[ -n ${MARS_PID:-} ]] && ! alive "$MARS_PID"; then
            fail "mars exited with $have of $n lines in $out"
        fi
        if ((SECONDS >= deadline)); then
            fail "timed out after ${secs}s waiting for $n lines in $out (it has $have)"
        fi
        sleep 0.05
    done
}

expect_key() { # expect_key KEY COUNT (again: replaces the count)
    awk -v k="$1" '$1 != k' "$EXPECT" >"$EXPECT.new"
    printf '%s %s\n' "$1" "$2" >>"$EXPECT.new"
    mv "$EXPECT.new" "$EXPECT"
}

oracle() { # oracle strict|replay OUT...
    local mode=$1 f size n=0 torn=0
    shift
    local list=()
    for f in "$@"; do
        n=$((n + 1))
        [[ -e $f ]] || continue
        size=$(stat -c %s "$f")
        if ((size > 0)) && [[ -n $(tail -c 1 "$f") ]]; then
            # a kill -9 in the middle of the sink's write: drop the torn last line (it was
            # not acknowledged, so it is read again)
            torn=$((torn + 1))
            head -n -1 "$f" >"$TMP/oracle-run$n"
            list+=("$TMP/oracle-run$n")
        else
            list+=("$f")
        fi
    done
    local res
    res=$(awk -v mode="$mode" -v torn="$torn" '
        BEGIN { A = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"; shown = 0 }
        function problem(msg) { if (shown++ < 10) print "oracle: " msg > "/dev/stderr" }
        FILENAME == ARGV[1] { want[$1] = $2; nexp += $2; next }
        FNR == 1 { run++; delete inrun }
        {
            k = index($0, ":")
            if (k == 0 || !match($0, /:[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]:/) || RSTART != k) {
                bad++; problem("run " run ": malformed line " FNR ": " substr($0, 1, 80)); next
            }
            key = substr($0, 1, k - 1); seq = substr($0, k + 1, 9) + 0
            if ($0 != key ":" substr($0, k + 1, 9) ":" substr(A, 1, 10 + seq % 40)) {
                bad++; problem("run " run ": corrupt line " FNR ": " substr($0, 1, 80)); next
            }
            if (!(key in want) || seq >= want[key]) {
                foreign++; problem("run " run ": unexpected line " $0); next
            }
            if (key in inrun) {
                if (mode == "lossy" ? seq <= inrun[key] : seq != inrun[key] + 1) {
                    disorder++
                    problem("run " run ": " key ":" seq " follows " key ":" inrun[key])
                }
            } else if (mode != "lossy" && seq > (key in maxs ? maxs[key] : -1) + 1) {
                disorder++
                problem("run " run ": " key " resumes at " seq " after " (key in maxs ? maxs[key] : "nothing") " (a gap)")
            } else if (mode == "strict" && (key in maxs) && seq <= maxs[key]) {
                disorder++; problem("run " run ": " key " starts again at " seq)
            }
            inrun[key] = seq
            if (!(key in maxs) || seq > maxs[key]) maxs[key] = seq
            if ((key, seq) in got) { dups++; if (++rundups[run] > maxrun) maxrun = rundups[run] }
            else { got[key, seq] = 1; delivered++ }
        }
        END {
            for (key in want) for (s = 0; s < want[key]; s++) if (!((key, s) in got)) {
                missing++
                if (missing <= 5 && mode != "lossy") problem("missing " key ":" s)
            }
            printf "O_DELIVERED=%d O_EXPECTED=%d O_MISSING=%d O_DUPS=%d O_DISORDER=%d O_BAD=%d O_FOREIGN=%d O_TORN=%d O_MAXRUNDUPS=%d\n", \
                delivered, nexp, missing, dups, disorder, bad, foreign, torn, maxrun
        }' "$EXPECT" "${list[@]}") || fail "oracle: awk failed"
    eval "$res"
    O_SUMMARY="$O_DELIVERED of $O_EXPECTED lines delivered; missing $O_MISSING, duplicates $O_DUPS, out of order $O_DISORDER, malformed $O_BAD, unexpected $O_FOREIGN, torn $O_TORN"
    local missing=$O_MISSING
    [[ $mode != lossy ]] || missing=0
    if ((missing || O_DISORDER || O_BAD || O_FOREIGN)); then
        fail "oracle ($mode): $O_SUMMARY"
    fi
    if [[ $mode == lossy ]]; then
        ((O_DUPS == 0 && O_TORN == 0)) || fail "oracle (lossy): $O_SUMMARY"
    fi
    if [[ $mode == strict ]]; then
        ((O_DUPS == 0 && O_TORN == 0)) || fail "oracle (strict): $O_SUMMARY"
        # the same, by cmp: outputs stably sorted by key == the lines the writer made
        local key count
        sort -k1,1 "$EXPECT" | while read -r key count; do "$FW" gen "$key" 0 "$count"; done \
            >"$TMP/oracle-expected"
        cat "$@" | sort -s -t: -k1,1 >"$TMP/oracle-actual"
        cmp -s "$TMP/oracle-expected" "$TMP/oracle-actual" ||
            fail "oracle (strict): the outputs sorted by key differ from the lines written: $(cmp "$TMP/oracle-expected" "$TMP/oracle-actual" 2>&1 | head -n 3)"
    fi
}

peak_rss_kb() {
    awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0
}

# ms since the script started (run times in the pass messages)
_T0=$(date +%s%N)
elapsed_ms() { echo $((($(date +%s%N) - _T0) / 1000000)); }

# not_open PATH... : true when the mars of $MARS_PID holds none of PATHs open
not_open() {
    local p
    for p in "$@"; do
        ! holds_open "$MARS_PID" "$p" || return 1
    done
}

# holds_open PID PATH : true while process PID has PATH open (the file source opened it)
holds_open() {
    local l
    for l in /proc/"$1"/fd/*; do
        [[ $(readlink "$l" 2>/dev/null) == "$2" ]] && return 0
    done
    return 1
}

# bg CMD... : runs CMD in the background; it is SIGKILLed on exit like mars. Sets BG_PID.
bg() {
    "$@" &
    BG_PID=$!
    _MARS_PIDS+=("$BG_PID")
}

# section NAME FUNCTION [ARGS]: runs one independent check in a subshell, so that a failure
# is reported and the next section still runs; `finish` fails the script if any failed.
# A section uses its own data_dir, expectation and outputs (new_section does that).
FAILED_SECTIONS=()
_section_exit() {
    local rc=$? p
    for p in "${_MARS_PIDS[@]}"; do
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    exit "$rc"
}
section() {
    local name=$1 rc
    shift
    if [[ -n ${ONLY:-} && " $ONLY " != *" ${name%%.*} "* ]]; then
        return 0 # ONLY="2 5": run just those sections (by hand)
    fi
    say "---- $name"
    set +e
    (
        set -e
        trap _section_exit EXIT
        "$@"
    )
    rc=$?
    set -e
    if ((rc != 0)); then
        FAILED_SECTIONS+=("$name")
    fi
}
finish() {
    if ((${#FAILED_SECTIONS[@]})); then
        fail "${#FAILED_SECTIONS[@]} section(s) failed: ${FAILED_SECTIONS[*]} ($(elapsed_ms) ms)"
    fi
    pass "$1 ($(elapsed_ms) ms)"
}

# new_section NAME: a fresh data_dir, expectation and log directory $L for a section
new_section() {
    DATA=$TMP/$1/data
    EXPECT=$TMP/$1/expect
    L=$TMP/$1/logs
    S=$TMP/$1
    mkdir -p "$L"
    : >"$EXPECT"
}

# wait_seq OUT KEY SEQ SECS : waits until OUT has line SEQ of KEY (the oracle then finds
# any duplicates: lines re-read from a file come in order, before it)
wait_seq() {
    local pat
    pat=$(printf '^%s:%09d:' "$2" "$3")
    wait_until $(($4 * SLOW)) "line $2:$3 in $1" grep -q "$pat" "$1"
}
