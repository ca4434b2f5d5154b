# shellcheck shell=bash disable=SC2034,SC2153  # sets variables for the scripts that source it; MARS_BIN comes from common.bash
# Helpers for tests that run mars against the HTTP fakes of tests/fakes/ (source after
# common.bash):
#   start_fake VAR NAME ARGS..  starts tests/fakes/NAME.py on a free loopback port (or
#                               --port P among ARGS); sets VAR_PID and VAR_PORT; the
#                               process is killed by common.bash's exit trap
#   stop_fake VAR [SIG]         kills it (TERM by default) and waits for it
#   fake_script PORT JSON       replaces the fake's script (see tests/fakes/fakelib.py)
#   fake_stat PORT KEY          one counter of GET /_fake/stats (0 when absent)
#   start_mars_in IN OUT ERR ARGS..  start_mars with stdin read from the file IN
#   gen_json_lines N FILE [PAD] N lines {"id":"id-000001","seq":1,"ns":"ns1","msg":"seq=000001 ..."}
#                               (PAD extra bytes of message, default 40)
FAKES_DIR="$MARS_SRC/tests/fakes"
PY=/usr/bin/python3

start_fake() {
    local var=$1 name=$2
    shift 2
    local pf="$TMP/$var.port"
    rm -f "$pf"
    "$PY" "$FAKES_DIR/$name.py" --port-file "$pf" "$@" >"$TMP/$var.out" 2>"$TMP/$var.err" </dev/null &
    local pid=$!
    _MARS_PIDS+=("$pid")
    printf -v "${var}_PID" '%s' "$pid"
    local deadline=$((SECONDS + 10))
    until [[ -s $pf ]]; do
        if ! kill -0 "$pid" 2>/dev/null || ((SECONDS >= deadline)); then
            fail "fake $name did not start: $(cat "$TMP/$var.err")"
        fi
        sleep 0.02
    done
    printf -v "${var}_PORT" '%s' "$(cat "$pf")"
}

stop_fake() {
    local var=$1 sig=${2:-TERM} pidvar="${1}_PID"
    kill "-$sig" "${!pidvar}" 2>/dev/null || true
    wait "${!pidvar}" 2>/dev/null || true
}

start_mars_in() {
    local in=$1 out=$2 err=$3
    shift 3
    env --default-signal=INT "$MARS_BIN" "$@" >"$out" 2>"$err" <"$in" &
    MARS_PID=$!
    _MARS_PIDS+=("$MARS_PID")
}

fake_script() {
    curl -sf -X POST "http://127.0.0.1:$1/_fake/script" --data-binary "$2" >/dev/null ||
        fail "cannot script the fake on port $1"
}

fake_stat() {
    curl -sf "http://127.0.0.1:$1/_fake/stats" |
        "$PY" -c 'import json,sys; print(json.load(sys.stdin).get(sys.argv[1], 0))' "$2"
}

gen_json_lines() {
    local n=$1 file=$2 pad=${3:-40}
    "$PY" - "$n" "$file" "$pad" <<'EOF'
import sys
n, path, pad = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
fill = ("abcdefghijklmnopqrstuvwxyz0123456789" * (pad // 36 + 1))[:pad]
with open(path, "w") as f:
    for i in range(1, n + 1):
        f.write('{"id":"id-%06d","seq":%d,"ns":"ns%d","msg":"seq=%06d %s"}\n' % (i, i, i % 3, i, fill))
EOF
}
