#!/usr/bin/env bash
# A disk buffer's backlog from an earlier run, drained by `mars --once` (docs/sinks.md):
#   1 N lines spool to the disk buffer of a tcp sink whose peer never listens; SIGTERM
#     leaves them on disk (exit 0)
#   2 `mars --once` on the same data_dir, the sink `out` now a file sink with the same disk
#     buffer: it reads the backlog at once (not a tick later), delivers every line exactly
#     once and exits 0 only then (before, it exited at once with nothing sent)
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
source "$(dirname "$0")/lib/disk_buffer.bash"
PY=/usr/bin/python3
if [[ ${MARS_SANITIZED:-} == 1 ]]; then SLOW=3; else SLOW=1; fi

D=$TMP/logs
DATA=$TMP/data
mkdir -p "$D" "$DATA"
N=20000
"$PY" -c 'import sys
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        f.write("line %06d of the backlog\n" % i)' "$D/app.log" "$N"
# a port nothing listens on: bound, then closed
PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

cat >"$TMP/spool.yaml" <<CONF
data_dir: $DATA
sources:
  in: {type: file, include: ["$D/*.log"]}
sinks:
  out:
    type: tcp
    inputs: [in]
    address: 127.0.0.1:$PORT
    retry: {initial_backoff: 100ms, max_backoff: 500ms}
    buffer: {type: disk}
CONF
say "1: $N lines spool while the tcp peer is down"
start "$TMP/spool.yaml"
on_disk() { (($(metric mars_buffer_disk_events out) == N)); }
wait_until $((60 * SLOW)) "all $N lines on disk" on_disk
kill -TERM "$MARS_PID"
wait_exit "$MARS_PID" $((30 * SLOW)) "$TMP/err$RUN"
expect_eq "$EXIT_RC" 0 "exit code of the spooling run"
pass "1: $N lines on disk"

cat >"$TMP/drain.yaml" <<CONF
data_dir: $DATA
sources:
  in: {type: file, include: ["$D/*.log"]}
sinks:
  out:
    type: file
    inputs: [in]
    path: $TMP/delivered
    buffer: {type: disk}
CONF
say "2: mars --once drains the backlog into a file sink"
run_mars $((60 * SLOW)) -c "$TMP/drain.yaml" --once >"$TMP/out2" 2>"$TMP/err2"
expect_eq "$MARS_RC" 0 "exit code of mars --once; $(show_log "$TMP/err2")"
[[ -f $TMP/delivered ]] || fail "nothing delivered: $(show_log "$TMP/err2")"
got=$(wc -l <"$TMP/delivered")
uniq_n=$(sort -u "$TMP/delivered" | wc -l)
expect_eq "$got" "$N" "lines delivered by --once"
expect_eq "$uniq_n" "$N" "distinct lines delivered"
cmp -s "$TMP/delivered" "$D/app.log" || fail "the delivered lines differ from the file's (order or bytes)"
left=$(find "$DATA/buffers/out" -name '*.seg' -size +100c | wc -l)
((left <= 1)) || fail "$left segments with records left after --once"
pass "2: --once delivered the $N lines of the backlog, in order, and exited"
