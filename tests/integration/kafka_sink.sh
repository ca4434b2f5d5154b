#!/usr/bin/env bash
# The kafka sink against librdkafka's mock cluster (tests/tools/mock_kafka.c, 3 brokers),
# read back with Debian's kcat:
# 1. file -> kafka: 20,000 varied lines arrive exactly once, byte for byte and in order
#    (one partition), while Produce errors are injected and two brokers are taken down and
#    brought back mid-stream; every line is acknowledged only after its delivery report;
# 2. topic, key and headers templates land where configured;
# 3. a message over the size limit goes to the dead_letter sink and is counted, as do the
#    messages of a Produce request the broker refused as too large; the rest flows;
# 4. kill -9 mid-stream, restart: nothing missing, duplicates bounded by what was in flight.
set -euo pipefail
source "$(dirname "$0")/lib/common.bash"
source "$(dirname "$0")/lib/kafka.bash"

start_mock_kafka exact:1 t-a:2 t-b:2 dl:1 crash:1

# config FILE TOPIC [SINK OPTION LINES] [EXTRA COMPONENTS]
config() {
    cat >"$TMP/mars.yaml" <<YAML
data_dir: $TMP/data
runtime: { workers: 1 }
sources:
  in: { type: file, include: [$1], read_from: beginning }
$([[ ${4:-in} == p ]] && printf 'transforms:\n  p: { type: parse, inputs: [in], format: json }')
sinks:
  out:
    type: kafka
    inputs: [${4:-in}]
    brokers: [$BROKERS]
    topic: "$2"
${3:-}
${5:-}
YAML
    mkdir -p "$TMP/data"
}

# ---- 1. exact delivery through errors and broker outages
say "1. 20,000 lines exactly once through injected errors and broker outages"
awk 'BEGIN { for (i = 1; i <= 20000; i++) {
    k = i % 5
    if (k == 0) printf "utf8 %d h\xc3\xa9llo \xe6\x97\xa5\n", i
    else if (k == 1) printf "%d\ttab \"quoted\" back\\slash {\"k\":\"v\"}\n", i
    else printf "plain line %d lorem ipsum dolor sit amet\n", i } }' >"$TMP/all"
head -n 10000 "$TMP/all" >"$TMP/in1.log"
config "$TMP/in1.log" exact "    encoding: text"
start_mars "$TMP/out1" "$TMP/err1" -c "$TMP/mars.yaml"
wait_until 60 "first lines in kafka" kafka_has exact 1
mock_cmd errors 0 6 7 6 7 6
mock_cmd down 1
sed -n 10001,15000p "$TMP/all" >>"$TMP/in1.log"
sleep 2
mock_cmd up 1
mock_cmd down 2
tail -n +15001 "$TMP/all" >>"$TMP/in1.log"
sleep 2
mock_cmd up 2
wait_until 120 "20,000 lines in kafka" kafka_has exact 20000
kill -TERM "$MARS_PID"
wait_exit "$MARS_PID" 60 "$TMP/err1"
expect_eq "$EXIT_RC" 0 "exit code; $(show_log "$TMP/err1")"
kcat_lines exact "$TMP/got1"
cmp "$TMP/all" "$TMP/got1" || fail "kafka holds other bytes than the input ($(lines_of "$TMP/got1") lines)"
expect_eq "$(stat_of "$TMP/err1" out sent)" 20000 "sent events"
expect_eq "$(stat_of "$TMP/err1" in acknowledged)" 20000 "acknowledged events"
pass "1. 20,000 lines byte for byte, in order, once"

# ---- 2. templates
say "2. topic, key and header templates"
for i in $(seq 1 100); do
    ns=a; ((i % 2)) && ns=b
    printf '{"ns":"%s","user":"u%d","msg":"m%d"}\n' "$ns" $((i % 7)) "$i"
done >"$TMP/in2.log"
rm -rf "$TMP/data"
config "$TMP/in2.log" "t-{{ ns }}" '    key: "{{ user }}"
    headers: { ns: "{{ ns }}", fixed: mars }
    encoding: json' p
run_mars 60 -c "$TMP/mars.yaml" --once 2>"$TMP/err2"
expect_eq "$MARS_RC" 0 "exit code; $(show_log "$TMP/err2")"
kcat_lines t-a "$TMP/a" '%k|%h|%s\n'
kcat_lines t-b "$TMP/b" '%k|%h|%s\n'
expect_eq "$(lines_of "$TMP/a")" 50 "messages in t-a"
expect_eq "$(lines_of "$TMP/b")" 50 "messages in t-b"
grep -q '^u2|ns=a,fixed=mars|{.*"msg":"m2"' "$TMP/a" || fail "t-a: key, headers or JSON body wrong: $(head -3 "$TMP/a")"
if grep -v '|ns=a,fixed=mars|' "$TMP/a" | grep -q .; then fail "t-a holds events of another ns"; fi
if grep -v '|ns=b,fixed=mars|' "$TMP/b" | grep -q .; then fail "t-b holds events of another ns"; fi
pass "2. 50 + 50 messages in the templated topics with keys and headers"

# ---- 3. dead letter
say "3. a message over the size limit goes to the dead_letter sink"
awk 'BEGIN { for (i = 1; i <= 100; i++) {
    if (i == 50) { s = "big"; while (length(s) < 5000) s = s "0123456789"; print s }
    else printf "small %d\n", i } }' >"$TMP/in3.log"
rm -rf "$TMP/data"
config "$TMP/in3.log" dl '    encoding: text
    dead_letter: dlq
    librdkafka: { message.max.bytes: "2000" }' in "  dlq: { type: file, inputs: [], path: $TMP/dead3, encoding: text }"
run_mars 60 -c "$TMP/mars.yaml" --once 2>"$TMP/err3"
expect_eq "$MARS_RC" 0 "exit code; $(show_log "$TMP/err3")"
kcat_lines dl "$TMP/got3"
expect_eq "$(lines_of "$TMP/got3")" 99 "messages in kafka"
expect_eq "$(lines_of "$TMP/dead3")" 1 "lines in the dead letter file"
grep -q '^big0123' "$TMP/dead3" || fail "the big line is not in the dead letter file"
# one oversize error (the sink, per error type) + one rejected request (the engine)
expect_eq "$(stat_of "$TMP/err3" out errors)" 2 "sink errors (oversize + rejected)"
expect_eq "$(stat_of "$TMP/err3" in acknowledged)" 100 "acknowledged events"

say "3. a Produce request the broker refuses as too large: its messages are dead-lettered"
rm -rf "$TMP/data" "$TMP/dead3"
seq -f "again %g" 1 100 >"$TMP/in3.log"
mock_cmd errors 0 10
run_mars 60 -c "$TMP/mars.yaml" --once 2>"$TMP/err3b"
expect_eq "$MARS_RC" 0 "exit code; $(show_log "$TMP/err3b")"
kcat_lines dl "$TMP/got3b"
inkafka=$(grep -c '^again' "$TMP/got3b" || true)
dead=$(lines_of "$TMP/dead3")
((dead > 0)) || fail "nothing was dead-lettered after the injected MSG_SIZE_TOO_LARGE"
expect_eq $((inkafka + dead)) 100 "messages in kafka + dead letter"
pass "3. oversize messages dead-lettered and counted ($dead of the refused request); the rest flowed"

# ---- 4. kill -9 and restart
say "4. kill -9 while shipping, restart: nothing missing"
seq -f "crash line %06g" 1 50000 >"$TMP/all4"
sed -n 1,20000p "$TMP/all4" >"$TMP/in4.log"
rm -rf "$TMP/data"
config "$TMP/in4.log" crash "    encoding: text
    librdkafka: { batch.num.messages: \"500\" }"
start_mars "$TMP/out4" "$TMP/err4" -c "$TMP/mars.yaml"
wait_until 60 "some lines in kafka" kafka_has crash 1
# the kill lands while mars reads and produces the next 10,000 lines
sed -n 20001,30000p "$TMP/all4" >>"$TMP/in4.log"
sleep 0.2
kill -KILL "$MARS_PID"
wait_exit "$MARS_PID" 10
before=$(kcat_count crash)
sed -n '30001,$p' "$TMP/all4" >>"$TMP/in4.log"
run_mars 120 -c "$TMP/mars.yaml" --once 2>"$TMP/err4b"
expect_eq "$MARS_RC" 0 "restart exit code; $(show_log "$TMP/err4b")"
kcat_lines crash "$TMP/got4"
expect_eq "$(sort -u "$TMP/got4" | wc -l | tr -d ' ')" 50000 "distinct lines in kafka"
sort -u "$TMP/got4" | cmp - "$TMP/all4" || fail "kafka holds lines that were not written"
total=$(lines_of "$TMP/got4")
dups=$((total - 50000))
((dups <= before)) || fail "$dups duplicates, more than the $before lines delivered before the kill"
pass "4. all 50,000 lines after kill -9 ($before before the kill, $dups duplicates)"
