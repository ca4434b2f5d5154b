#!/usr/bin/env bash
# The kafka source against librdkafka's mock cluster (tests/tools/mock_kafka.c, 3 brokers),
# fed with Debian's kcat:
# 1. bad configs fail `mars validate` at FILE:LINE:COL: topics missing, a bad regex, an
#    unknown librdkafka property, a property mars owns;
# 2. kafka -> file: every message arrives with topic, partition, offset, key and headers;
# 3. a blocked sink (tcp to a closed port): messages are consumed but never acknowledged,
#    so no offset is committed past them: after a stop and a restart into a file sink,
#    every message is there;
# 4. kill -9 mid-stream, restart: nothing missing;
# 5. two mars in one group share the partitions; stopping one moves its partitions to the
#    other, nothing lost.
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
source "$(dirname "$0")/lib/kafka.bash"

# ---- 1. bad configs (no broker needed)
check() {
    local name=$1 want=$2
    cat >"$TMP/$name.yaml" <<YAML
sources:
  in:
    type: kafka
$3
sinks:
  out: { type: blackhole, inputs: [in] }
YAML
    run_mars 30 validate -c "$TMP/$name.yaml" >"$TMP/$name.out" 2>&1
    ((MARS_RC != 0)) || fail "$name: validate accepted it: $(cat "$TMP/$name.out")"
    grep -Eq "^$TMP/$name.yaml:[0-9]+:[0-9]+: .*$want" "$TMP/$name.out" ||
        fail "$name: no FILE:LINE:COL error matching '$want': $(cat "$TMP/$name.out")"
}
say "1. bad configs"
check notopics "topics" '    brokers: [127.0.0.1:9092]
    group_id: g'
check emptytopics "at least one topic" '    brokers: [127.0.0.1:9092]
    group_id: g
    topics: []'
check badregex "bad regex" '    brokers: [127.0.0.1:9092]
    group_id: g
    topics: ["^logs-(unclosed"]'
check unknownprop "No such configuration property" '    brokers: [127.0.0.1:9092]
    group_id: g
    topics: [logs]
    librdkafka: { no.such.property: "1" }'
check ownedprop "set by mars" '    brokers: [127.0.0.1:9092]
    group_id: g
    topics: [logs]
    librdkafka: { enable.auto.commit: "false" }'
pass "1. topics missing, bad regex, unknown and owned properties are refused"

start_mock_kafka fields:2 blocked:4 crash:4 shared:4

# config FILE GROUP TOPIC SINK_LINES
config() {
    cat >"$1" <<YAML
runtime: { workers: 2, shutdown_timeout: 3s }
sources:
  in:
    type: kafka
    brokers: [$BROKERS]
    topics: [$3]
    group_id: $2
    start_from: earliest
    librdkafka: { session.timeout.ms: "6000", heartbeat.interval.ms: "500" }
sinks:
$4
YAML
}
file_sink() { printf '  out: { type: file, inputs: [in], path: %s, encoding: %s }\n' "$1" "${2:-text}"; }
produce() { # TOPIC FIRST LAST: lines "line N" keyed kN
    awk -v a="$2" -v b="$3" 'BEGIN { for (i = a; i <= b; i++) printf "k%d:line %d\n", i, i }' |
        timeout 60 kcat -P -b "$BROKERS" -t "$1" -K: 2>>"$TMP/kcat.err" ||
        fail "kcat -P failed: $(tail -3 "$TMP/kcat.err")"
}
distinct() { sort -u "$1" 2>/dev/null | grep -c '^line' || true; }
has_distinct() { (($(distinct "$1") >= $2)); }

# ---- 2. fields
say "2. kafka -> file with topic, partition, offset, key and headers"
printf 'k1:hello one\nk2:hello two\n' |
    timeout 60 kcat -P -b "$BROKERS" -t fields -K: -H origin=test 2>>"$TMP/kcat.err"
config "$TMP/f.yaml" g-fields fields "$(file_sink "$TMP/f.out" json)"
start_mars "$TMP/o2" "$TMP/e2" -c "$TMP/f.yaml"
has_lines() { (($(lines_of "$1") >= $2)); }
wait_until 90 "2 events in the file" has_lines "$TMP/f.out" 2
kill -TERM "$MARS_PID"
wait_exit "$MARS_PID" 60 "$TMP/e2"
expect_eq "$EXIT_RC" 0 "exit code; $(show_log "$TMP/e2")"
for want in '"message":"hello one"' '"topic":"fields"' '"partition":[01]' '"offset":[0-9]' \
    '"key":"k1"' '"headers":{"origin":"test"}' '"timestamp":"20'; do
    grep -q "$want" "$TMP/f.out" || fail "no $want in $(head -1 "$TMP/f.out")"
done
pass "2. $(head -1 "$TMP/f.out")"

# ---- 3. blocked sink: nothing committed past unacknowledged events
say "3. blocked downstream: offsets are not committed past unacknowledged events"
produce blocked 1 2000
config "$TMP/b.yaml" g-blocked blocked "  out: { type: tcp, inputs: [in], address: 127.0.0.1:9, encoding: text }"
start_mars "$TMP/o3" "$TMP/e3" -c "$TMP/b.yaml"
wait_until 90 "the consumer read messages" grep -q "assigned" "$TMP/e3"
sleep 8 # several auto-commit intervals (5 s) with everything read and nothing acknowledged
kill -TERM "$MARS_PID"
wait_exit "$MARS_PID" 60 "$TMP/e3"
config "$TMP/b2.yaml" g-blocked blocked "$(file_sink "$TMP/b.out")"
start_mars "$TMP/o3b" "$TMP/e3b" -c "$TMP/b2.yaml"
wait_until 120 "2000 messages after the restart" has_distinct "$TMP/b.out" 2000
kill -TERM "$MARS_PID"
wait_exit "$MARS_PID" 60 "$TMP/e3b"
pass "3. all 2000 messages read again after a blocked run ($(lines_of "$TMP/b.out") lines)"

# ---- 4. kill -9
say "4. kill -9 mid-stream, restart: nothing missing"
produce crash 1 20000
config "$TMP/c.yaml" g-crash crash "$(file_sink "$TMP/c.out")"
start_mars "$TMP/o4" "$TMP/e4" -c "$TMP/c.yaml"
wait_until 90 "first lines" has_distinct "$TMP/c.out" 1
produce crash 20001 30000
kill -KILL "$MARS_PID"
wait_exit "$MARS_PID" 10
before=$(distinct "$TMP/c.out")
start_mars "$TMP/o4b" "$TMP/e4b" -c "$TMP/c.yaml"
wait_until 180 "30000 distinct lines" has_distinct "$TMP/c.out" 30000
kill -TERM "$MARS_PID"
wait_exit "$MARS_PID" 60 "$TMP/e4b"
expect_eq "$EXIT_RC" 0 "exit code; $(show_log "$TMP/e4b")"
total=$(grep -c '^line' "$TMP/c.out")
pass "4. 30000 distinct after kill -9 ($before before the kill, $((total - 30000)) duplicates)"

# ---- 5. two consumers in one group
say "5. two mars in one group share partitions; stopping one moves them"
config "$TMP/s1.yaml" g-shared shared "$(file_sink "$TMP/s1.out")"
config "$TMP/s2.yaml" g-shared shared "$(file_sink "$TMP/s2.out")"
start_mars "$TMP/o5a" "$TMP/e5a" -c "$TMP/s1.yaml"
pid1=$MARS_PID
start_mars "$TMP/o5b" "$TMP/e5b" -c "$TMP/s2.yaml"
pid2=$MARS_PID
produce shared 1 4000
both() { cat "$TMP/s1.out" "$TMP/s2.out" 2>/dev/null >"$TMP/s.all"; has_distinct "$TMP/s.all" "$1"; }
wait_until 120 "4000 messages over both" both 4000
n1=$(distinct "$TMP/s1.out")
n2=$(distinct "$TMP/s2.out")
((n1 > 0 && n2 > 0)) || fail "one consumer got nothing ($n1 / $n2)"
kill -TERM "$pid2"
wait_exit "$pid2" 60 "$TMP/e5b"
produce shared 4001 8000
wait_until 120 "8000 messages over both" both 8000
grep -q "revoked" "$TMP/e5a" || fail "the first mars never saw a rebalance: $(show_log "$TMP/e5a")"
pass "5. shared $n1 / $n2, then the survivor took over: 8000 distinct"
