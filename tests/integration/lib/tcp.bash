# shellcheck shell=bash disable=SC2034  # sets variables for the scripts that source it
# Helpers of the tcp sink tests (tests/integration/tcp_*.sh), sourced after common.bash.
#
#   start_recv NAME ARGS..   starts tests/fakes/tcp_recv.py recording into $TMP/NAME.out
#                            (torn tails in $TMP/NAME.out.torn, its log in $TMP/NAME.log);
#                            waits for its port; sets RECV_PID and RECV_PORT. ARGS go to the
#                            fake (--port P to rebind a port, --tls CERT KEY, faults...)
#   stop_recv PID            SIGKILLs a receiver and reaps it
#   recv_idle NAME           waits until receiver NAME has ended (and so recorded) every
#                            connection it accepted: mars exiting only means its bytes were
#                            in the kernel, not that the receiver has read them yet
#   seq_lines FILE N         writes N lines "seq NNNNNNN <padding of 20..160 bytes>"
#   seq_check OUT N          counts the seq lines in OUT: sets S_UNIQUE S_DUPS S_MISSING
#                            S_MAXREP (most copies of one line) and fails on a line that is
#                            not one of the N written (corrupt or merged)
#   mars_api                 the admin API address of the mars in $TMP/err (from its log)
#   metric NAME SELECTOR     a value from /metrics of that mars (0 if absent)
#   make_certs               test CA, server and client certificates in $CERTS
#   start_mars_in IN ERR ARGS..  start_mars with stdin from the file IN; sets MARS_PID

CERTS=$TMP/certs
RECV=$MARS_SRC/tests/fakes/tcp_recv.py

start_recv() {
    local name=$1
    shift
    rm -f "$TMP/$name.port"
    /usr/bin/python3 "$RECV" --port-file "$TMP/$name.port" --out "$TMP/$name.out" "$@" \
        2>>"$TMP/$name.log" &
    RECV_PID=$!
    _MARS_PIDS+=("$RECV_PID")
    wait_until 10 "receiver $name to bind" test -s "$TMP/$name.port"
    RECV_PORT=$(cat "$TMP/$name.port")
}

stop_recv() {
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

_recv_all_closed() {
    [[ $(grep -c "open from" "$1") -eq $(grep -c " closed: " "$1") ]]
}

recv_idle() {
    wait_until 20 "receiver $1 to finish its connections" _recv_all_closed "$TMP/$1.log"
}

# tcp_config ADDRESS [SINK OPTION LINE] [RUNTIME ENTRIES] [MAX_BACKOFF]: $TMP/mars.yaml with
# stdin -> a tcp sink `out` at ADDRESS (one worker, retries from 50 ms up to MAX_BACKOFF,
# 500ms by default)
tcp_config() {
    cat >"$TMP/mars.yaml" <<EOF
data_dir: $TMP/data
runtime: {workers: 1${3:+, $3}}
sources:
  in: {type: stdin}
sinks:
  out:
    type: tcp
    inputs: [in]
    address: "$1"
    retry: {initial_backoff: 50ms, max_backoff: ${4:-500ms}}
    ${2:-}
EOF
}

seq_lines() {
    awk -v n="$2" 'BEGIN {
        pad = "abcdefghijklmnopqrstuvwxyz0123456789"
        while (length(pad) < 200) pad = pad pad
        for (i = 1; i <= n; i++) printf "seq %07d %s\n", i, substr(pad, 1, 20 + (i * 7919) % 141)
    }' >"$1"
}

seq_check() {
    local out=$1 n=$2 r
    r=$(awk -v n="$n" '
        {
            if ($0 !~ /^seq [0-9][0-9][0-9][0-9][0-9][0-9][0-9] [a-z0-9]+$/) { bad++; next }
            s = $2 + 0
            want = 20 + (s * 7919) % 141
            if (s < 1 || s > n || length($3) != want) { bad++; next }
            c[s]++
        }
        END {
            u = 0; d = 0; m = 0
            for (k in c) { u++; d += c[k] - 1; if (c[k] > m) m = c[k] }
            printf "%d %d %d %d %d\n", u, d, n - u, m, bad
        }' "$out")
    read -r S_UNIQUE S_DUPS S_MISSING S_MAXREP S_BAD <<<"$r"
    ((S_BAD == 0)) || fail "$out has $S_BAD lines that are not whole seq lines"
}

mars_api() { echo "127.0.0.1:$(api_port "$TMP/err")"; }

metric() {
    curl -sf "http://$(mars_api)/metrics" | awk -v name="$1" -v sel="$2" '
        index($0, name "{") == 1 && index($0, sel) { v = $NF } END { print v + 0 }'
}

make_certs() {
    sh "$MARS_SRC/tests/support/gen_certs.sh" "$CERTS" || fail "cannot make test certificates"
}

start_mars_in() {
    local in=$1 err=$2
    shift 2
    env --default-signal=INT "$MARS_BIN" "$@" >/dev/null 2>"$err" <"$in" &
    MARS_PID=$!
    _MARS_PIDS+=("$MARS_PID")
}
