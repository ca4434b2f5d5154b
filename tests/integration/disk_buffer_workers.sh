#!/usr/bin/env bash
# Disk buffers across configuration changes:
#   1 spooled by 2 workers (Elasticsearch down), delivered by 1: the remaining worker adopts
#     the other's directory, delivers every line and removes the directory
#   1b adopted directories holding nothing (empty, or an empty segment) are removed at start
#   2 a buffer whose sink left the configuration: a WARN with its size, kept; with
#     orphan_buffers: delete it is removed
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
source "$(dirname "$0")/lib/fakes.bash"
source "$(dirname "$0")/lib/disk_buffer.bash"
if [[ ${MARS_SANITIZED:-} == 1 ]]; then SLOW=3; else SLOW=1; fi

D=$TMP/logs
DATA=$TMP/data
mkdir -p "$D" "$DATA"
start_fake ES es_fake --docs "$TMP/docs"
PORT=$ES_PORT
stop_fake ES
rm -f "$TMP/docs"

conf() { # conf WORKERS SINK_ID [TOP]
    cat >"$TMP/mars.yaml" <<EOF
data_dir: $DATA
runtime: {workers: $1}
${3:-}
sources:
  in: {type: file, include: ["$D/*.log"]}
sinks:
  $2:
    type: elasticsearch
    inputs: [in]
    endpoint: http://127.0.0.1:$PORT
    retry: {initial_backoff: 50ms, max_backoff: 300ms}
    buffer: {type: disk}
EOF
}

say "1: spooled by 2 workers, delivered by 1"
N=20000
# 4 files of N/4 numbered lines each
i=0
for f in a b c d; do
    "$PY" -c 'import sys
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2]), int(sys.argv[3])):
        f.write("L%d %s\n" % (i, "z" * 50))' "$D/$f.log" $((i * N / 4 + 1)) $(((i + 1) * N / 4 + 1))
    i=$((i + 1))
done
conf 2 es
start
spooled() { [[ $(metric mars_buffer_disk_events es) -ge $N ]]; }
wait_until $((60 * SLOW)) "all lines on disk" spooled
stop
[[ -d $DATA/buffers/es/1 ]] || fail "worker 1 has no buffer directory: $(find "$DATA" -type f)"
lanes_used=$(find "$DATA/buffers/es" -name '*.seg' -size +1k | sed 's|/[^/]*$||' | sort -u | wc -l)
conf 1 es
start_fake ES es_fake --port "$PORT" --docs "$TMP/docs"
start
grep -q "worker 0 adopts the disk buffer $DATA/buffers/es/1" "$TMP/err$RUN" ||
    fail "worker 1's buffer was not adopted: $(show_log "$TMP/err$RUN")"
all_there() {
    "$PY" - "$TMP/docs" "$N" <<'EOF'
import json, sys
n = int(sys.argv[2])
seen = set()
for line in open(sys.argv[1]):
    seen.add(int(json.loads(line)["source"]["message"].split()[0][1:]))
sys.exit(0 if seen == set(range(1, n + 1)) else 1)
EOF
}
wait_until $((120 * SLOW)) "every line delivered" all_there
gone() { [[ ! -d $DATA/buffers/es/1 ]]; }
wait_until $((30 * SLOW)) "the adopted directory removed" gone
stop
pass "1: $N lines spooled in $lanes_used worker directories, all delivered by one worker"

say "1b: adopted directories with nothing to deliver"
# a worker that never wrote leaves an empty directory (in 1, when every file hashed to
# worker 0: one run in eight); one that wrote a segment header only leaves that
mkdir -p "$DATA/buffers/es/1" "$DATA/buffers/es/2"
printf 'MBDS\0\0\0\1' >"$DATA/buffers/es/2/00000000000000000001.seg"
conf 1 es
start
wait_until $((30 * SLOW)) "the empty adopted directories removed" \
    eval '[[ ! -d $DATA/buffers/es/1 && ! -d $DATA/buffers/es/2 ]]'
grep -q "adopted disk buffer $DATA/buffers/es/1 held nothing to deliver: removed" "$TMP/err$RUN" ||
    fail "no INFO for the empty adopted directory: $(show_log "$TMP/err$RUN")"
stop
pass "1b: empty adopted directories are removed at start"

say "2: the buffer of a removed sink"
stop_fake ES
conf 1 es
start
echo "late line" >>"$D/a.log"
late() { [[ $(metric mars_buffer_disk_events es) -ge 1 ]]; }
wait_until $((30 * SLOW)) "the late line on disk" late
stop
conf 1 es2
start
grep -q "disk buffer $DATA/buffers/es ([0-9]* bytes) belongs to no configured sink with a disk buffer: kept" "$TMP/err$RUN" ||
    fail "no WARN for the orphaned buffer: $(show_log "$TMP/err$RUN")"
stop
[[ -d $DATA/buffers/es ]] || fail "the orphaned buffer was not kept"
conf 1 es2 "orphan_buffers: delete"
start
grep -q "disk buffer $DATA/buffers/es ([0-9]* bytes) belongs to no configured sink with a disk buffer: deleted" "$TMP/err$RUN" ||
    fail "no WARN for the deleted buffer: $(show_log "$TMP/err$RUN")"
stop
[[ ! -d $DATA/buffers/es ]] || fail "the orphaned buffer was not deleted: $(find "$DATA/buffers" -ls)"
pass "2: an orphaned buffer is reported and kept, then deleted with orphan_buffers: delete"
