#!/usr/bin/env bash
# A disk buffer on a full file system: data_dir is a 2 MiB tmpfs in a private mount
# namespace, Elasticsearch (tests/fakes/es_fake.py) is down, numbered lines come on stdin.
#   1 the buffer fills the tmpfs (a filler leaves it about 400 KiB): one clear ERROR naming the
#     buffer directory, the source is blocked (stdin stops being read), nothing is lost
#   2 the filler is deleted: the writes resume by themselves, every line reaches the disk
#   3 full again; Elasticsearch comes back: delivering frees segments, the buffer recovers
#     on its own, and every line is stored exactly once
set -euo pipefail
if [[ -z ${MARS_IT_IN_MNTNS:-} ]]; then
    if [[ $(id -u) != 0 ]] || ! unshare -m --propagation private true 2>/dev/null; then
        echo "disk_buffer_full: skipped: needs root and unshare -m" >&2
        exit 77
    fi
    MARS_IT_IN_MNTNS=1 exec unshare -m --propagation private bash "$0" "$@"
fi
source "$(dirname "$0")/lib/common.bash"
source "$(dirname "$0")/lib/fakes.bash"
source "$(dirname "$0")/lib/disk_buffer.bash"
if [[ ${MARS_SANITIZED:-} == 1 ]]; then SLOW=3; else SLOW=1; fi

DATA=$TMP/data
mkdir -p "$DATA"
mount -t tmpfs -o size=2m tmpfs "$DATA"
# unmount (lazily: mars may still be running) before common.bash removes $TMP
trap 'rc=$?; umount -l "$DATA" 2>/dev/null; set +e; (exit $rc); _mars_cleanup' EXIT
dd if=/dev/zero of="$DATA/filler" bs=4096 count=416 2>/dev/null # 1.6 MiB of 2

start_fake ES es_fake --docs "$TMP/docs"
PORT=$ES_PORT
stop_fake ES
rm -f "$TMP/docs"

cat >"$TMP/mars.yaml" <<EOF
data_dir: $DATA
runtime: {workers: 1}
sources:
  in: {type: stdin}
sinks:
  es:
    type: elasticsearch
    inputs: [in]
    endpoint: http://127.0.0.1:$PORT
    retry: {initial_backoff: 50ms, max_backoff: 300ms}
    batch: {max_events: 1000}
    buffer: {type: disk, max_size: 64MiB}
EOF
mkfifo "$TMP/in"
err=$TMP/mars.err
env --default-signal=INT "$MARS_BIN" -c "$TMP/mars.yaml" <"$TMP/in" >/dev/null 2>"$err" &
MARS_PID=$!
_MARS_PIDS+=("$MARS_PID")
exec 3>"$TMP/in"
wait_until $((20 * SLOW)) "the admin API listens" grep -q "\[api\] listening on" "$err"
API=$(api_port "$err")
# lines FROM TO: numbered lines into mars's stdin, in the background (they block when mars
# stops reading); sets WRITER
lines() {
    "$PY" -c '
import sys
out = open(sys.argv[3], "w")
for i in range(int(sys.argv[1]), int(sys.argv[2]) + 1):
    out.write("line %06d %s\n" % (i, "y" * 60))
out.flush()' "$1" "$2" "$TMP/in" &
    WRITER=$!
    _MARS_PIDS+=("$WRITER")
}
full_error() { grep -c "cannot write to the disk buffer $DATA/buffers/es/0: No space left on device" "$err" || true; }
full_errors_at_least() { (($(full_error) >= $1)); }

say "1: the buffer fills the file system"
N1=15000
lines 1 "$N1"
wait_until $((30 * SLOW)) "the ENOSPC error" full_errors_at_least 1
sleep 2 # blocked stays blocked
received=$(metric mars_component_received_events_total in)
((received < N1)) || fail "the source read all $N1 lines although the disk is full"
alive "$WRITER" || fail "the writer finished: stdin was not blocked"
expect_eq "$(full_error)" 1 "ENOSPC errors logged (once until it recovers)"
pass "1: full at $received of $N1 lines: one ERROR, stdin blocked"

say "2: space comes back"
rm -f "$DATA/filler"
wait_exit "$WRITER" $((60 * SLOW))
on_disk() { [[ $(metric mars_buffer_disk_events) == "$1" ]]; }
wait_until $((30 * SLOW)) "all $N1 lines on disk" on_disk "$N1"
grep -q "is writable again" "$err" || fail "no log line for the recovery: $(show_log "$err")"
pass "2: recovered after the filler went: $N1 events on disk"

say "3: full again, then the sink comes back and delivery frees the disk"
N=60000
lines $((N1 + 1)) "$N"
wait_until $((30 * SLOW)) "the second ENOSPC error" full_errors_at_least 2
start_fake ES es_fake --port "$PORT" --docs "$TMP/docs" 3>&- # not holding the FIFO open
delivered() { [[ -s $TMP/docs ]] && (($(lines_of "$TMP/docs") >= N)); }
wait_until $((180 * SLOW)) "all $N lines stored" delivered
wait_exit "$WRITER" $((30 * SLOW))
"$PY" - "$TMP/docs" "$N" <<'EOF' || fail "stored lines differ from what was sent"
import json, sys
n = int(sys.argv[2])
count = {}
for line in open(sys.argv[1]):
    k = int(json.loads(line)["source"]["message"].split()[1])
    count[k] = count.get(k, 0) + 1
lost = [i for i in range(1, n + 1) if i not in count]
dups = [k for k, c in count.items() if c > 1]
if lost or dups:
    print("lost %d %s, twice %d %s" % (len(lost), lost[:5], len(dups), dups[:5]))
    sys.exit(1)
EOF
exec 3>&- # end of input: mars stops
wait_exit "$MARS_PID" $((60 * SLOW)) "$err"
expect_eq "$EXIT_RC" 0 "mars exit code"
expect_eq "$(stat_of "$err" es sent)" "$N" "events sent"
pass "3: all $N lines stored exactly once"
