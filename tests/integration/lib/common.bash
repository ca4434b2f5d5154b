# shellcheck shell=bash disable=SC2034  # sets variables for the scripts that source it
# Shared helpers for tests/integration/*.sh (sourced; this folder is not globbed by
# tests/tests.cmake, so it is never run as a test of its own).
#
# Every test script starts with:
#     set -euo pipefail
#     source "$(dirname "$0")/lib/common.bash"
# and then gets:
#   $MARS_BIN, $MARS_SRC  from ctest (defaults for running a script by hand: the repo this
#                         file lives in, and its build/mars)
#   $TMP                  a private temp dir, removed on exit (KEEP_TMP=1 keeps it on failure)
#   $MARS_API_ADDRESS     127.0.0.1:0 (the admin API on a free port; see below)
#   say / fail / pass     progress and failure messages (fail exits 1)
#   run_mars SECS ARGS..  runs mars in the foreground under `timeout`; sets MARS_RC
#   start_mars OUT ERR ARGS..  runs mars in the background; sets MARS_PID; killed on exit
#   wait_until SECS WHAT CMD..  polls CMD until it succeeds, fails the test after SECS
#   wait_exit PID SECS [LOG]  waits for a background process to exit; sets EXIT_RC
#   stat_of ERR ID FIELD  a number from the exit summary line of component ID
#   lines_of FILE         number of newline characters in FILE (0 if it is missing)
# Every process a test starts through these helpers is SIGKILLed by the exit trap.

: "${MARS_SRC:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}"
: "${MARS_BIN:=$MARS_SRC/build/mars}"
export LC_ALL=C
# Every mars a test starts serves its admin API on a free loopback port instead of the
# default 127.0.0.1:8686, so tests running in parallel (and a mars running on the machine)
# do not collide. Tests of the API unset it and configure api.address themselves.
export MARS_API_ADDRESS=${MARS_API_ADDRESS:-127.0.0.1:0}

TEST_NAME=$(basename "$0" .sh)

# listen_port ERR ID [last]: the loopback port component ID (api, metrics, a source) logged
# in ERR as "[ID] listening on 127.0.0.1:PORT", from its first such line (or its last);
# fails while there is none. api_port ERR: the admin API's.
listen_port() {
    local p
    p=$(grep -o "\[$2\] listening on 127\.0\.0\.1:[0-9]*" "$1" 2>/dev/null |
        if [[ ${3:-} == last ]]; then tail -n 1; else head -n 1; fi | sed 's/.*://')
    [[ -n $p ]] && echo "$p"
}
api_port() { listen_port "$1" api; }
_MARS_PIDS=()

say() { printf '== %s: %s\n' "$TEST_NAME" "$*"; }
pass() { printf 'ok %s: %s\n' "$TEST_NAME" "$*"; }
fail() {
    printf 'FAIL %s: %s\n' "$TEST_NAME" "$*" >&2
    exit 1
}

if [[ ! -x $MARS_BIN ]]; then
    fail "MARS_BIN=$MARS_BIN is not an executable (build mars first)"
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/mars-it-$TEST_NAME.XXXXXX")

_mars_cleanup() {
    local rc=$?
    local p
    for p in "${_MARS_PIDS[@]}"; do
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    if ((rc != 0)) && [[ -n ${KEEP_TMP:-} ]]; then
        echo "$TEST_NAME: kept $TMP" >&2
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap _mars_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# run_mars SECS ARGS... : foreground run bounded by SECS; redirect as needed at the call
# site. Sets MARS_RC (never trips set -e); a timeout fails the test.
run_mars() {
    local secs=$1
    shift
    MARS_RC=0
    timeout -k 5 "$secs" "$MARS_BIN" "$@" || MARS_RC=$?
    if ((MARS_RC == 124 || MARS_RC == 137)); then
        fail "mars $* did not finish within ${secs}s (timeout exit $MARS_RC)"
    fi
}

# start_mars OUT ERR ARGS... : background run with stdout to OUT and stderr to ERR.
# SIGINT is reset to its default first: bash starts background jobs with SIGINT ignored,
# and a test of SIGINT should not depend on how mars treats an inherited SIG_IGN.
start_mars() {
    local out=$1 err=$2
    shift 2
    env --default-signal=INT "$MARS_BIN" "$@" >"$out" 2>"$err" </dev/null &
    MARS_PID=$!
    _MARS_PIDS+=("$MARS_PID")
}

# True while PID exists and has not exited (a zombie counts as exited).
alive() {
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $state && $state != Z && $state != X ]]
}

# wait_until SECS WHAT CMD... : polls CMD every 50 ms; fails the test after SECS, or 30 s
# when SECS is less: the deadline is how long to wait for a condition, and on a machine
# busy with other builds a few seconds is not enough (a passing test never waits it out).
# A test that means to bound how long something takes measures that itself.
wait_until() {
    local secs=$1 what=$2
    shift 2
    ((secs >= 30)) || secs=30
    local deadline=$((SECONDS + secs))
    until "$@"; do
        if ((SECONDS >= deadline)); then
            fail "timed out after ${secs}s waiting for: $what"
        fi
        sleep 0.05
    done
}

# wait_exit PID SECS [LOG] : waits for a background child to exit and sets EXIT_RC; fails
# the test (showing LOG) if it is still running after SECS. Sets EXIT_MS to how long the
# wait took.
wait_exit() {
    local pid=$1 secs=$2 log=${3:-}
    local start now
    start=$(date +%s%N)
    while alive "$pid"; do
        now=$(date +%s%N)
        if (((now - start) / 1000000 >= secs * 1000)); then
            fail "process $pid did not exit within ${secs}s${log:+
$(show_log "$log")}"
        fi
        sleep 0.05
    done
    now=$(date +%s%N)
    EXIT_MS=$(((now - start) / 1000000))
    EXIT_RC=0
    wait "$pid" || EXIT_RC=$?
}

# stat_of ERRFILE ID FIELD : FIELD of the exit summary of component ID, one of received,
# sent, sent_bytes, acknowledged (sources only), discarded_intentional,
# discarded_unintentional, errors. The line is
#   ... INFO  [ID] TYPE KIND: received N events, sent N events (N bytes),[ N acknowledged,]
#   discarded N intentionally and N not, N errors
stat_of() {
    local file=$1 id=$2 field=$3 v
    v=$(awk -v id="[$id]" -v field="$field" '
        function num(re,   t) {
            if (!match(s, re)) return ""
            t = substr(s, RSTART, RLENGTH); gsub(/[^0-9]/, "", t); return t
        }
        index($0, " " id " ") && /: received [0-9]+ events, sent [0-9]+ events \([0-9]+ bytes\), ([0-9]+ acknowledged, )?discarded [0-9]+ intentionally and [0-9]+ not, [0-9]+ errors$/ {
            s = $0; sub(/.*: received /, "received ", s)
            m["received"] = num("^received [0-9]+ ")
            m["sent"] = num(" sent [0-9]+ events")
            m["sent_bytes"] = num("[(][0-9]+ bytes[)]")
            m["acknowledged"] = num(" [0-9]+ acknowledged,")
            m["discarded_intentional"] = num("discarded [0-9]+ intentionally")
            m["discarded_unintentional"] = num(" [0-9]+ not,")
            m["errors"] = num(" [0-9]+ errors$")
            n++; out = m[field]
        }
        END { if (n == 1 && out != "") print out; else if (n > 1) print "DUP" }' "$file")
    if [[ -z $v ]]; then
        fail "no exit summary with '$field' for component '$id' in $file:
$(cat "$file")"
    fi
    if [[ $v == DUP ]]; then
        fail "more than one exit summary for component '$id' in $file"
    fi
    echo "$v"
}

lines_of() {
    if [[ -e $1 ]]; then
        wc -l <"$1" | tr -d ' '
    else
        echo 0
    fi
}

# expect_eq ACTUAL EXPECTED WHAT
expect_eq() {
    if [[ $1 != "$2" ]]; then
        fail "$3: expected '$2', got '$1'"
    fi
}

# show_log FILE : the log, for failure messages.
show_log() {
    echo "--- $1:"
    sed 's/^/    /' "$1" | head -n 60
}

# rss_stays_flat PID ERRFILE LIMIT_KB: samples the RSS of PID every 200 ms for 6 s (the
# sampling is the measurement itself, so a fixed period is right here), then fails the test
# when it reached LIMIT_KB or grew by more than 20% from 2 s to 6 s. Samples: $TMP/rss;
# the peak is left in RSS_MAX_KB.
rss_stays_flat() {
    local pid=$1 err=$2 limit=$3 t0 kb max_kb at2_kb last_kb
    t0=$(date +%s%N)
    : >"$TMP/rss"
    for _ in $(seq 30); do
        sleep 0.2
        alive "$pid" || fail "mars exited while being measured: $(show_log "$err")"
        kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
        echo "$((($(date +%s%N) - t0) / 1000000)) $kb" >>"$TMP/rss"
    done
    max_kb=$(awk '$2 > m {m = $2} END {print m}' "$TMP/rss")
    # the sample nearest to 2 s, and the last one
    at2_kb=$(awk '{d = $1 - 2000; if (d < 0) d = -d} NR == 1 || d < best {best = d; v = $2} END {print v}' "$TMP/rss")
    last_kb=$(tail -n 1 "$TMP/rss" | awk '{print $2}')
    RSS_MAX_KB=$max_kb
    say "RSS: max ${max_kb} kB, at 2 s ${at2_kb} kB, at 6 s ${last_kb} kB (limit ${limit} kB)"
    ((max_kb < limit)) || fail "RSS reached ${max_kb} kB, limit ${limit} kB; samples (ms kB):
$(cat "$TMP/rss")"
    ((last_kb * 100 <= at2_kb * 120)) || fail "RSS grew from ${at2_kb} kB at 2 s to ${last_kb} kB at 6 s (> 20%); samples:
$(cat "$TMP/rss")"
}
