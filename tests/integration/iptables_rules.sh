#!/usr/bin/env bash
# Managed rules of the iptables source on nf_tables, in a network namespace of its own:
# `mars validate` names bad rules at FILE:LINE:COL; a `count` rule counts exactly (3 pings
# to 127.0.0.1 through an OUTPUT rule on lo: 6 packets, 504 bytes); a `drop` rule makes a
# TCP connect to a local listener fail; a reload changes only the difference (the unchanged
# rule keeps its counter and its handle); SIGTERM removes table inet mars; keep_on_exit
# leaves it and a restart takes it over untouched; the namespace never gets a legacy table;
# without CAP_NET_ADMIN one clear error while the rest of the pipeline runs.
set -euo pipefail
source "$(dirname "$0")/lib/netns.bash"
source "$(dirname "$0")/lib/common.bash"
need_netfilter_tools

say "mars validate: bad rules at FILE:LINE:COL"
cat >"$TMP/bad.yaml" <<'YAML'
sources:
  ipt:
    type: iptables
    rules:
      - {name: a, direction: input, source: 10.0.0.1/8}
      - {name: b, direction: input, destination: "300.1.2.3"}
      - {name: c, direction: output, protocol: tcp, ports: ["80", "90000"]}
      - {name: a, direction: output}
      - {name: d, direction: input, protocol: icmp, source: "fd00::/8"}
      - {name: e, direction: input, port: 80}
sinks:
  out: {type: blackhole, inputs: [ipt]}
YAML
run_mars 10 validate -c "$TMP/bad.yaml" >"$TMP/v.out" 2>"$TMP/v.err"
expect_eq "$MARS_RC" 1 "validate exit code"
want() { grep -qF "$1" "$TMP/v.err" || fail "validate did not say '$1': $(cat "$TMP/v.err")"; }
want "$TMP/bad.yaml:5:45: rule 1: '10.0.0.1/8' has host bits set (the network is 10.0.0.0/8)"
want "$TMP/bad.yaml:6:50: rule 2: '300.1.2.3' is not an IPv4 or IPv6 address or CIDR"
want "$TMP/bad.yaml:7:67: rule 3: '90000' is not a port (1-65535) or a range of them"
want "$TMP/bad.yaml:8:16: rule 4: the name 'a' is used by rule 1 already"
want "$TMP/bad.yaml:9:61: rule 5: 'fd00::/8' is IPv6 but the rule is IPv4 (by its protocol)"
want "$TMP/bad.yaml:10:43: rule 6: ports need protocol tcp or udp"
cat >"$TMP/bad2.yaml" <<'YAML'
sources:
  ipt:
    type: iptables
    rules:
      - {name: a, direction: output, protocol: tcp, port: 70000}
      - {name: b, direction: output, action: block}
sinks:
  out: {type: blackhole, inputs: [ipt]}
YAML
run_mars 10 validate -c "$TMP/bad2.yaml" >"$TMP/v.out" 2>"$TMP/v.err"
expect_eq "$MARS_RC" 1 "validate exit code (schema)"
want "$TMP/bad2.yaml:5:59: option 'rules[0].port': 70000 is above the maximum 65535"
want "$TMP/bad2.yaml:6:46: option 'rules[1].action': \"block\" is not one of count, accept, drop, reject"
pass "validate"

start_tcp_listener
port=$TCP_PORT

cat >"$TMP/run.yaml" <<YAML
sources:
  ipt:
    type: iptables
    interval: 200ms
    tables: [mars]
    rules:
      - {name: "icmp out", direction: output, protocol: icmp, destination: 127.0.0.1}
      - {name: "no tcp", direction: input, protocol: tcp, port: $port, action: drop}
sinks:
  prom: {type: prometheus_exporter, inputs: [ipt], address: "127.0.0.1:0"}
YAML
prom_port() { grep -o "\[prom\] listening on 127.0.0.1:[0-9]*" "$1" | tail -n 1 | sed 's/.*://'; }
api_port() { grep -o "\[api\] listening on 127.0.0.1:[0-9]*" "$1" | tail -n 1 | sed 's/.*://'; }
scrape() { curl -sf "http://127.0.0.1:$(prom_port "$err")/metrics" >"$TMP/scrape.txt"; }
has() { scrape && grep -qF "$1" "$TMP/scrape.txt"; }
admin_has() { curl -sf "http://127.0.0.1:$(api_port "$err")/metrics" | grep -F "$1" >/dev/null; }
table_listed() { nft list tables | grep -x 'table inet mars' >/dev/null; }
handle_of() { nft -a list chain inet mars "$1" | grep -F "comment \"$2\"" | sed 's/.*# handle //'; }
icmp_p='mars_iptables_packets_total{chain="output",family="inet",rule="icmp out",table="mars",target=""}'
icmp_b='mars_iptables_bytes_total{chain="output",family="inet",rule="icmp out",table="mars",target=""}'

say "count and drop rules while mars runs"
err="$TMP/run.err"
start_mars "$TMP/run.out" "$err" -c "$TMP/run.yaml"
pid=$MARS_PID
wait_until 20 "table inet mars is listed" table_listed
wait_until 20 "the exporter shows the managed rule" has "$icmp_p 0"
ping -c3 -q 127.0.0.1 >/dev/null
wait_until 20 "6 packets through the count rule" has "$icmp_p 6"
wait_until 20 "504 bytes through the count rule" has "$icmp_b 504"
tcp_connects && fail "a TCP connect went through the drop rule"
wait_until 20 "the drop rule counted the SYNs" \
    eval "scrape && grep -q 'rule=\"no tcp\",table=\"mars\",target=\"drop\"} [1-9]' \"\$TMP/scrape.txt\""
wait_until 20 "the managed-rules gauge" admin_has 'mars_iptables_managed_rules{component_id="ipt"} 2'
grep -q 'INFO  \[ipt\] managed rules applied: 2 added, 0 removed, 0 unchanged' "$err" || fail "no apply line: $(cat "$err")"
expect_eq "$(grep -c 'managed rules applied' "$err")" 1 "applies that changed something (each interval checks)"
pass "count 6 packets / 504 bytes exactly; drop drops"

say "reload: only the difference changes"
handle=$(handle_of output "icmp out")
cat >"$TMP/run.yaml" <<YAML
sources:
  ipt:
    type: iptables
    interval: 200ms
    tables: [mars]
    rules:
      - {name: "icmp out", direction: output, protocol: icmp, destination: 127.0.0.1}
      - {name: "udp in", direction: input, protocol: udp, ports: ["5000-5010"]}
sinks:
  prom: {type: prometheus_exporter, inputs: [ipt], address: "127.0.0.1:0"}
YAML
kill -HUP "$pid"
wait_until 30 "the reload's apply" grep -q 'managed rules applied: 1 added, 1 removed, 1 unchanged' "$err"
wait_until 20 "TCP connects again" tcp_connects
expect_eq "$(handle_of output "icmp out")" "$handle" "handle of the unchanged rule"
wait_until 20 "the unchanged rule kept its counter" has "$icmp_p 6"
grep -qF "$icmp_b 504" "$TMP/scrape.txt" || fail "bytes after reload: $(grep icmp "$TMP/scrape.txt")"
nft list chain inet mars input | grep 'udp dport 5000-5010 counter .* comment "udp in"' >/dev/null ||
    fail "the new rule: $(nft list table inet mars)"
nft list table inet mars | grep 'no tcp' >/dev/null && fail "the removed rule is still there"
pass "reload kept the unchanged rule and its counter"

say "SIGTERM removes table inet mars"
kill -TERM "$pid"
wait_exit "$pid" 20 "$err"
expect_eq "$EXIT_RC" 0 "exit code after SIGTERM"
table_listed && fail "table inet mars is still listed after SIGTERM"
grep -q 'managed rules: 2 removed' "$err" || fail "no removal line: $(cat "$err")"
pass "table gone"

say "keep_on_exit keeps the rules; a restart takes them over as they are"
sed 's/    interval: 200ms/    interval: 200ms\n    keep_on_exit: true/' "$TMP/run.yaml" >"$TMP/keep.yaml"
err="$TMP/keep.err"
start_mars "$TMP/keep.out" "$err" -c "$TMP/keep.yaml"
pid=$MARS_PID
wait_until 20 "the rules applied" grep -q 'managed rules applied: 2 added' "$err"
ping -c3 -q 127.0.0.1 >/dev/null
handle=$(handle_of output "icmp out")
kill -TERM "$pid"
wait_exit "$pid" 20 "$err"
table_listed || fail "keep_on_exit: table inet mars is gone"
nft list chain inet mars output | grep 'counter packets 6 bytes 504 comment "icmp out"' >/dev/null ||
    fail "kept rule: $(nft list table inet mars)"
err="$TMP/again.err"
start_mars "$TMP/again.out" "$err" -c "$TMP/run.yaml"
pid=$MARS_PID
wait_until 20 "the exporter shows the kept counter" has "$icmp_p 6"
grep -q 'managed rules applied' "$err" && fail "a restart with the same rules changed them: $(cat "$err")"
expect_eq "$(handle_of output "icmp out")" "$handle" "handle after the restart"
kill -TERM "$pid"
wait_exit "$pid" 20 "$err"
table_listed && fail "table inet mars is still listed"
pass "keep_on_exit; idempotent restart"

say "a reload to a configuration without rules: kept, then removed at exit"
err="$TMP/orphan.err"
start_mars "$TMP/orphan.out" "$err" -c "$TMP/run.yaml"
pid=$MARS_PID
wait_until 20 "the rules applied" grep -q 'managed rules applied: 2 added' "$err"
cat >"$TMP/run.yaml" <<YAML
sources:
  ipt: {type: iptables, interval: 200ms, tables: [mars]}
sinks:
  prom: {type: prometheus_exporter, inputs: [ipt], address: "127.0.0.1:0"}
YAML
kill -HUP "$pid"
wait_until 30 "the reload" grep -q 'configuration reloaded' "$err"
wait_until 20 "the kept rule still counted" has "$icmp_p 0"
table_listed || fail "the reload removed the rules"
kill -TERM "$pid"
wait_exit "$pid" 20 "$err"
expect_eq "$EXIT_RC" 0 "exit code after SIGTERM"
table_listed && fail "rules nobody took over are still there after exit"
pass "left-over rules removed at exit"

say "two sources with rules: the second only reads counters"
cat >"$TMP/two.yaml" <<'YAML'
sources:
  a: {type: iptables, tables: [mars], rules: [{name: ra, direction: output}]}
  b: {type: iptables, tables: [mars], rules: [{name: rb, direction: output}]}
sinks:
  out: {type: stdout, inputs: [a, b]}
YAML
run_mars 30 --once -c "$TMP/two.yaml" >"$TMP/two.out" 2>"$TMP/two.err"
expect_eq "$MARS_RC" 0 "exit code with two managing sources"
expect_eq "$(grep -c "manages mars's rules already; this one only reads counters" "$TMP/two.err")" 1 "conflict errors"
expect_eq "$(grep -c 'managed rules applied: 1 added' "$TMP/two.err")" 1 "applies"
# whichever started first owns the rules; its own read follows its apply
expect_eq "$(grep -o 'rule="r[ab]"' "$TMP/two.out" | sort -u | wc -l)" 1 "managed rules in the kernel"
table_listed && fail "the --once run left its rules"
pass "one owner"

expect_eq "$(wc -c </proc/net/ip_tables_names)" 0 "legacy ipv4 tables after mars ran"
expect_eq "$(wc -c </proc/net/ip6_tables_names)" 0 "legacy ipv6 tables after mars ran"
pass "the nft namespace has no legacy table"

say "without CAP_NET_ADMIN: one clear error, the rest of the pipeline runs"
cat >"$TMP/cap.yaml" <<YAML
sources:
  ipt:
    type: iptables
    backend: nft
    rules: [{name: x, direction: input}]
  gen: {type: demo, count: 5}
sinks:
  out: {type: file, inputs: [gen], path: "$TMP/cap.log"}
  bh: {type: blackhole, inputs: [ipt]}
YAML
MARS_RC=0
timeout -k 5 30 setpriv --inh-caps=-net_admin --ambient-caps=-net_admin --bounding-set=-net_admin \
    "$MARS_BIN" --once -c "$TMP/cap.yaml" >/dev/null 2>"$TMP/cap.err" || MARS_RC=$?
expect_eq "$MARS_RC" 0 "exit code without CAP_NET_ADMIN"
grep -q 'ERROR \[ipt\] managed rules: writing nft rules needs CAP_NET_ADMIN' "$TMP/cap.err" ||
    fail "no clear error: $(cat "$TMP/cap.err")"
grep -qi 'you must be root\|Operation not permitted' "$TMP/cap.err" && fail "a library's message leaked: $(cat "$TMP/cap.err")"
expect_eq "$(lines_of "$TMP/cap.log")" 5 "lines the demo source shipped meanwhile"
table_listed && fail "a table appeared without the capability"
pass "missing capability named; pipeline unaffected"

say "without CAP_NET_ADMIN, running: retried with backoff, logged once, counted"
sed -e 's/gen: {type: demo, count: 5}/gen: {type: demo, rate: 20}/' \
    -e 's/    backend: nft/    backend: nft\n    interval: 1s/' "$TMP/cap.yaml" >"$TMP/cap2.yaml"
err="$TMP/cap2.err"
setpriv --inh-caps=-net_admin --ambient-caps=-net_admin --bounding-set=-net_admin \
    "$MARS_BIN" -c "$TMP/cap2.yaml" >/dev/null 2>"$err" &
pid=$!
_MARS_PIDS+=("$pid")
api_up() { [[ -n $(api_port "$err") ]]; }
apply_errors() {
    curl -sf "http://127.0.0.1:$(api_port "$err")/metrics" |
        sed -n 's/^mars_iptables_rule_apply_errors_total{component_id="ipt"} //p'
}
three_failures() { (($(apply_errors) >= 3)); }
shipping() { (($(lines_of "$TMP/cap.log") > 10)); }
wait_until 20 "the API listens" api_up
wait_until 30 "three failed applies" three_failures
expect_eq "$(grep -c 'managed rules: writing nft rules needs CAP_NET_ADMIN' "$err")" 1 "error lines (logged when it starts)"
grep -q 'retrying with backoff (now 1s)' "$err" || fail "no backoff in the error: $(cat "$err")"
wait_until 20 "the demo source ships meanwhile" shipping
kill -TERM "$pid"
wait_exit "$pid" 20 "$err"
pass "retries with backoff"
